//! Parses and validates interface files into [`Interface`]; performs no I/O of its own.
//!
//! Call [`parse`] with the file's name and text. Files named by `$ref` are read through the
//! [`Loader`] you pass in, so the caller decides where they come from. The result carries the
//! validated model when there are no errors, and every diagnostic found either way.
//!
//! ```
//! let text = "stingeripc: {version: 0.1.1}\ninterface: {name: Demo, version: 1.0.0}\n";
//! let parsed = switchboard_idl::parse("demo.yaml", text, &mut switchboard_idl::NoLoader);
//! assert!(!parsed.has_errors());
//! assert_eq!(parsed.interface.map(|i| i.name), Some("Demo".to_string()));
//! ```

#[cfg(feature = "parse")]
mod check;
#[cfg(feature = "parse")]
mod diagnostic;
pub mod diff;
pub mod english;
pub mod graph;
mod hash;
mod model;
#[cfg(feature = "parse")]
mod refs;
mod source;
#[cfg(feature = "parse")]
mod yaml;

#[cfg(test)]
mod tests;

#[cfg(feature = "parse")]
use std::rc::Rc;

#[cfg(feature = "parse")]
pub use diagnostic::{Diagnostic, Severity};
pub use model::*;
pub use source::{FileId, SourceFile, SourceMap, Span};
/// The largest interface file (and `$ref`'d file), in bytes, that is parsed at all; a longer
/// text is refused with a `too-large` diagnostic. Readers need read no more than one byte past it.
#[cfg(feature = "parse")]
pub use yaml::MAX_BYTES as MAX_FILE_BYTES;

#[cfg(feature = "parse")]
/// The most diagnostics one parse reports; the rest are summarised in one line.
const MAX_DIAGNOSTICS: usize = 1000;

#[cfg(feature = "parse")]
/// Supplies the text of files named by `$ref`.
pub trait Loader {
    /// Returns the text of the file at `path` (already resolved relative to the referencing file by
    /// this crate, using pure string path joining — no I/O here).
    fn load(&mut self, path: &str) -> Result<String, String>;
}

#[cfg(feature = "parse")]
/// A [`Loader`] that refuses every file, for inputs that must be self-contained.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLoader;

#[cfg(feature = "parse")]
impl Loader for NoLoader {
    fn load(&mut self, path: &str) -> Result<String, String> {
        Err(format!("`{path}` cannot be read: references to other files are not available here"))
    }
}

#[cfg(feature = "parse")]
/// The outcome of [`parse`]: the model (when valid), every diagnostic, and the files read.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The validated interface; `Some` only when there are no errors.
    pub interface: Option<Interface>,
    /// Every error and warning, ordered by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// The main file and every file pulled in through `$ref`, for rendering.
    pub sources: SourceMap,
}

#[cfg(feature = "parse")]
impl Parsed {
    /// Returns true when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }

    /// Renders every diagnostic for people, separated by blank lines.
    pub fn render(&self) -> String {
        let parts: Vec<String> = self.diagnostics.iter().map(|d| d.render(&self.sources)).collect();
        parts.join("\n")
    }

    /// Returns every diagnostic as a JSON array of objects.
    ///
    /// Each object has `severity`, `code`, `message`, `file`, `line`, `column`, optionally
    /// `end_line` and `end_column`, and `label` and `help` (which may be null).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.diagnostics.iter().map(|d| d.to_json(&self.sources)).collect(),
        )
    }
}

#[cfg(feature = "parse")]
/// Parses and validates the interface file `name` whose text is `text`.
///
/// `$ref`s are resolved relative to `name` and read through `loader`. This never panics; every
/// problem becomes a [`Diagnostic`].
pub fn parse(name: &str, text: &str, loader: &mut dyn Loader) -> Parsed {
    let mut sources = SourceMap::default();
    let file = sources.add(name, text);
    let mut diagnostics = Vec::new();
    let root = match yaml::load(text, file) {
        Ok(root) => root,
        Err(e) => {
            let mut d = Diagnostic::error(e.code, e.span, e.message);
            d.label = e.label;
            return Parsed { interface: None, diagnostics: vec![d], sources };
        }
    };
    let root = Rc::new(root);
    let mut resolver = refs::Resolver::new(loader, name, Rc::clone(&root));
    let mut chain = vec![format!("{name}#")];
    let expanded = resolver.expand(&root, name, &mut chain, &mut sources, &mut diagnostics);
    let mut checker = check::Checker::new();
    let model = checker.check(&expanded);
    diagnostics.append(&mut checker.diags);
    diagnostics.sort_by_key(|d| (d.span.file.0, d.span.start, d.span.end));
    diagnostics.dedup();
    if diagnostics.len() > MAX_DIAGNOSTICS {
        let hidden = diagnostics.len() - MAX_DIAGNOSTICS;
        diagnostics.truncate(MAX_DIAGNOSTICS);
        let span = diagnostics.last().map(|d| d.span).unwrap_or_default();
        diagnostics.push(
            Diagnostic::error(
                "too-many-diagnostics",
                span,
                format!("{} not shown after this one", english::counted(hidden, "more diagnostic")),
            )
            .with_label("stopped listing here"),
        );
    }
    let has_errors = diagnostics.iter().any(|d| d.severity == Severity::Error);
    Parsed { interface: if has_errors { None } else { model }, diagnostics, sources }
}
