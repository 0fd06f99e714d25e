//! `switchboard generate`: writes generated code into a directory, or checks that it is current.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{GenerateArgs, Lang};

/// Generates the files for one interface and writes them, or compares them with `--check`.
pub(crate) fn run(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let loaded = switchboard_codegen::load_file(&args.file)?;
    let parsed = loaded.parsed;
    if !parsed.diagnostics.is_empty() {
        eprintln!("{}", parsed.render());
    }
    let iface = match parsed.interface.as_ref() {
        Some(iface) if !parsed.has_errors() => iface,
        _ => bail!("`{}` has errors; nothing was generated", args.file.display()),
    };
    let lang = match args.lang {
        Lang::Rust => switchboard_codegen::Lang::Rust,
        Lang::Python => switchboard_codegen::Lang::Python,
        Lang::AsyncApi => switchboard_codegen::Lang::AsyncApi,
        Lang::Markdown => switchboard_codegen::Lang::Markdown,
        Lang::Cpp => switchboard_codegen::Lang::Cpp,
        Lang::OpenApi => switchboard_codegen::Lang::OpenApi,
    };
    let source_name = switchboard_codegen::source_name(&args.file);
    let files = switchboard_codegen::generate_files(iface, &source_name, lang)
        .with_context(|| format!("cannot generate code from `{}`", args.file.display()))?;

    if args.check {
        let stale: Vec<PathBuf> = files
            .iter()
            .map(|f| args.out.join(&f.path))
            .zip(&files)
            .filter(|(target, f)| {
                std::fs::read_to_string(target).ok().as_ref() != Some(&f.contents)
            })
            .map(|(target, _)| target)
            .collect();
        if stale.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        for target in &stale {
            let state = if target.exists() { "out of date" } else { "missing" };
            eprintln!("{} is {state}", target.display());
        }
        eprintln!(
            "regenerate with: switchboard generate {} --lang {} --out {}",
            args.file.display(),
            lang_name(args.lang),
            args.out.display()
        );
        return Ok(ExitCode::FAILURE);
    }

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create `{}`", args.out.display()))?;
    for file in &files {
        let target = args.out.join(&file.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::write(&target, &file.contents)
            .with_context(|| format!("cannot write `{}`", target.display()))?;
        eprintln!("wrote {}", target.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--lang` spelling of `lang`.
fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "rust",
        Lang::Python => "python",
        Lang::AsyncApi => "asyncapi",
        Lang::Markdown => "markdown",
        Lang::Cpp => "cpp",
        Lang::OpenApi => "openapi",
    }
}
