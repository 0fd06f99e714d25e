//! Project automation. `cargo xtask codegen` regenerates the generated code committed in this
//! repository; `cargo xtask codegen --check` fails when it is stale. A test runs the check, so
//! `cargo test` catches drift. `cargo xtask doctor` says what this machine lacks for the full
//! test suite.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use switchboard_codegen::{Lang, generate_files, load_file, source_name};

mod doctor;
#[cfg(test)]
mod tidy;

/// Interface files whose generated code is committed, and where it lives.
const COMMITTED: &[(&str, &str, Lang)] = &[
    ("examples/thermostat/thermostat.yaml", "examples/thermostat/src/generated", Lang::Rust),
    ("examples/thermostat/thermostat.yaml", "examples/python/thermostat", Lang::Python),
    ("examples/thermostat/thermostat.yaml", "docs/reference", Lang::AsyncApi),
    ("examples/thermostat/thermostat.yaml", "docs/reference", Lang::Markdown),
    ("examples/interfaces/everything.yaml", "docs/reference", Lang::AsyncApi),
    ("examples/interfaces/everything.yaml", "docs/reference", Lang::Markdown),
    ("examples/interfaces/jobs.yaml", "docs/reference", Lang::AsyncApi),
    ("examples/interfaces/jobs.yaml", "docs/reference", Lang::Markdown),
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["codegen"] => codegen(Mode::Write),
        ["codegen", "--check"] => codegen(Mode::Check),
        ["doctor"] => {
            doctor::doctor();
            Ok(())
        }
        _ => bail!("usage: cargo xtask codegen [--check] | cargo xtask doctor"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Write,
    Check,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn codegen(mode: Mode) -> anyhow::Result<()> {
    let root = workspace_root();
    let mut stale = Vec::new();
    for (interface, out_dir, lang) in COMMITTED {
        let path = root.join(interface);
        let loaded = load_file(&path)?;
        let Some(iface) = loaded.parsed.interface.as_ref() else {
            bail!("{interface} has errors:\n{}", loaded.parsed.render());
        };
        for file in generate_files(iface, &source_name(&path), *lang)? {
            let target = root.join(out_dir).join(&file.path);
            let current = std::fs::read_to_string(&target).unwrap_or_default();
            if current == file.contents {
                continue;
            }
            match mode {
                Mode::Check => stale.push(target.display().to_string()),
                Mode::Write => {
                    std::fs::create_dir_all(target.parent().unwrap_or(&root))?;
                    std::fs::write(&target, &file.contents)
                        .with_context(|| format!("writing {}", target.display()))?;
                    println!("wrote {}", target.display());
                }
            }
        }
    }
    if !stale.is_empty() {
        bail!(
            "generated code is out of date: {}\nrun `cargo xtask codegen` and commit the result",
            stale.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_generated_code_is_up_to_date() {
        if let Err(error) = super::codegen(super::Mode::Check) {
            panic!("{error:#}");
        }
    }
}
