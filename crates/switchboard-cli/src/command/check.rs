//! `switchboard check`: parses and validates interface files, and says what each one holds.

use std::process::ExitCode;

use serde_json::json;
use switchboard_idl::{
    Interface, Severity,
    english::{counted, listed},
};

use crate::cli::{CheckArgs, Format};

/// Checks every file, reports the diagnostics and a line per file, and fails if any file has
/// errors.
pub(crate) fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let human = args.format == Format::Human;
    let mut all_ok = true;
    let mut reports = Vec::new();
    for path in &args.files {
        let file = path.display().to_string();
        let (ok, diagnostics, interface) = match switchboard_codegen::load_file(path) {
            Ok(loaded) => {
                let parsed = loaded.parsed;
                let ok = !parsed.has_errors();
                if human && !parsed.diagnostics.is_empty() {
                    eprintln!("{}", parsed.render());
                }
                let count = |severity| {
                    let n = parsed.diagnostics.iter().filter(|d| d.severity == severity).count();
                    counted(n, severity.as_str())
                };
                let warnings = parsed.diagnostics.iter().any(|d| d.severity == Severity::Warning);
                if human && !ok {
                    let mut problems = vec![count(Severity::Error)];
                    problems.extend(warnings.then(|| count(Severity::Warning)));
                    eprintln!("{file}: failed with {}", listed(&problems, "and"));
                }
                // `Some` only when the file has no errors.
                let interface = parsed.interface.as_ref();
                if let Some(iface) = interface.filter(|_| human && !args.quiet) {
                    let verdict = if warnings {
                        format!("ok with {}", count(Severity::Warning))
                    } else {
                        "ok".to_owned()
                    };
                    eprintln!(
                        "{file}: {verdict}: {} {} with {}",
                        iface.name,
                        iface.version,
                        members(iface)
                    );
                }
                (ok, parsed.to_json(), interface.map(interface_json))
            }
            Err(error) => {
                if human {
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
                (false, json!([diagnostic]), None)
            }
        };
        all_ok &= ok;
        reports.push(json!({
            "file": file,
            "ok": ok,
            "interface": interface,
            "diagnostics": diagnostics,
        }));
    }
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&json!({ "files": reports }))?);
    }
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// How many of each kind of member an interface declares, kinds in the order of the file
/// format's sections; the errors are the ones it declares for its methods and actions.
fn member_counts(iface: &Interface) -> [(&'static str, &'static str, usize); 8] {
    [
        ("methods", "method", iface.methods.len()),
        ("properties", "property", iface.properties.len()),
        ("signals", "signal", iface.signals.len()),
        ("commands", "command", iface.commands.len()),
        ("actions", "action", iface.actions.len()),
        ("enums", "enum", iface.enums.len()),
        ("structs", "struct", iface.structs.len()),
        ("errors", "declared error", iface.errors.len()),
    ]
}

/// `2 methods, 1 property and 1 signal`: the kinds it has, counted.
fn members(iface: &Interface) -> String {
    let present: Vec<String> = member_counts(iface)
        .into_iter()
        .filter(|(_, _, n)| *n > 0)
        .map(|(_, noun, n)| counted(n, noun))
        .collect();
    if present.is_empty() { "no members".to_owned() } else { listed(&present, "and") }
}

/// The interface as `--format json` reports it: name, version and its member counts.
fn interface_json(iface: &Interface) -> serde_json::Value {
    let members: serde_json::Map<String, serde_json::Value> =
        member_counts(iface).into_iter().map(|(key, _, n)| (key.to_owned(), json!(n))).collect();
    json!({ "name": iface.name, "version": iface.version, "members": members })
}
