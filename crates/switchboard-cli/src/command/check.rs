//! `switchboard check`: parses and validates interface files.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::{CheckArgs, Format};

/// Checks every file, reports the diagnostics, and fails if any file has errors.
pub(crate) fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut all_ok = true;
    let mut reports = Vec::new();
    for path in &args.files {
        let file = path.display().to_string();
        let (ok, diagnostics) = match switchboard_codegen::load_file(path) {
            Ok(loaded) => {
                let parsed = loaded.parsed;
                let ok = !parsed.has_errors();
                if args.format == Format::Human && !parsed.diagnostics.is_empty() {
                    eprintln!("{}", parsed.render());
                }
                (ok, parsed.to_json())
            }
            Err(error) => {
                if args.format == Format::Human {
                    eprintln!("error: {error}");
                }
                let diagnostic = json!({
                    "severity": "error",
                    "code": "unreadable",
                    "message": error.to_string(),
                    "file": file,
                    "line": null,
                    "column": null,
                    "label": null,
                    "help": null,
                });
                (false, json!([diagnostic]))
            }
        };
        all_ok &= ok;
        reports.push(json!({ "file": file, "ok": ok, "diagnostics": diagnostics }));
    }
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&json!({ "files": reports }))?);
    }
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
