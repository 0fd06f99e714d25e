//! The Rust target: one formatted file per interface, written against `switchboard::__private`.
//!
//! Generation has three steps. `lower` restates the interface as a view model in which every
//! identifier, type and doc line is decided; `render` turns that into tokens with `quote!`; and
//! the tokens are parsed with `syn` and printed with `prettyplease`, so the output needs no
//! `rustfmt` and is byte-for-byte deterministic.

pub(crate) mod lower;
pub(crate) mod model;
mod prelude;
mod render;

use switchboard_idl::Interface;

use crate::GenerateError;

/// Generates the Rust module for `iface`; `source_name` is the interface file's name, for the header.
///
/// The result holds only items (no inner attributes), so it can be `include!`d anywhere. It
/// starts with a `// @generated` line and `use switchboard::__private as sb;`.
///
/// # Errors
///
/// Fails when names from the interface file cannot become Rust identifiers or would collide.
pub fn generate(iface: &Interface, source_name: &str) -> Result<String, GenerateError> {
    let module = lower::lower(iface, source_name)?;
    let tokens = render::module(&module);
    let file: syn::File = syn::parse2(tokens).map_err(|e| GenerateError::Syntax(e.to_string()))?;
    Ok(format!("{}\n\n{}", module.header, separate_items(&prettyplease::unparse(&file))))
}

/// Puts a blank line between consecutive items, which `prettyplease` prints back to back.
///
/// A line gets a blank line before it when it starts an item (its doc comment, attributes or
/// keyword) and the line before, at the same indentation, ends the previous item; `use` lines
/// stay together.
fn separate_items(code: &str) -> String {
    const ITEM_STARTS: &[&str] =
        &["///", "#[", "pub ", "fn ", "impl", "struct ", "enum ", "const ", "trait ", "use "];
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut out = String::with_capacity(code.len() + code.len() / 16);
    let mut prev: Option<&str> = None;
    for line in code.lines() {
        let trimmed = line.trim_start();
        if let Some(prev) = prev {
            let prev_trimmed = prev.trim();
            let ends_item = (prev_trimmed.ends_with('}') || prev_trimmed.ends_with(';'))
                && !prev_trimmed.starts_with("//");
            let both_use = trimmed.starts_with("use ") && prev_trimmed.starts_with("use ");
            if ends_item
                && !both_use
                && indent(prev) == indent(line)
                && ITEM_STARTS.iter().any(|start| trimmed.starts_with(start))
            {
                out.push('\n');
            }
        }
        out.push_str(line);
        out.push('\n');
        prev = Some(line);
    }
    out
}

/// The name of the file [`generate`] output belongs in: `<snake_case interface name>.rs`.
///
/// # Errors
///
/// Fails when the interface name has no valid Rust spelling.
pub fn file_name(iface: &Interface) -> Result<String, GenerateError> {
    let what = format!("interface `{}`", iface.name);
    let snake = crate::names::snake(&iface.name, &what)?;
    Ok(format!("{}.rs", crate::names::unraw(&snake)))
}
