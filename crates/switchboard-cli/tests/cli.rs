//! Runs the built `switchboard` binary the way people and CI do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The thermostat example interface.
fn thermostat() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/thermostat/thermostat.yaml")
}

/// A fresh scratch directory named `name` for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory can be created");
    dir
}

/// An interface file with one error (no interface name) on line 4.
fn invalid_file(dir: &Path) -> PathBuf {
    let path = dir.join("broken.yaml");
    std::fs::write(&path, "stingeripc:\n  version: 0.1.1\ninterface:\n  version: 1.0.0\n").unwrap();
    path
}

/// Runs `switchboard` with `args`.
fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard")).args(args).output().expect("binary runs")
}

/// Standard error as text.
fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `switchboard` with `args` in `dir`: exit code and both streams, for snapshots.
fn transcript_in(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("binary runs");
    format!(
        "$ switchboard {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_accepts_a_valid_file_and_says_what_it_checked() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    insta::assert_snapshot!(
        "check_ok",
        transcript_in(&examples, &["check", "thermostat/thermostat.yaml", "interfaces/jobs.yaml"])
    );
    insta::assert_snapshot!(
        "check_ok_quiet",
        transcript_in(&examples, &["check", "--quiet", "thermostat/thermostat.yaml"])
    );
    let report =
        run(&["check".as_ref(), "--format".as_ref(), "json".as_ref(), thermostat().as_os_str()]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).expect("stdout is JSON");
    assert_eq!(
        report["files"][0]["interface"],
        serde_json::json!({
            "name": "Thermostat",
            "version": "1.0.0",
            "members": {
                "methods": 2, "properties": 2, "signals": 1, "commands": 0, "actions": 1,
                "enums": 1, "structs": 0, "errors": 1
            }
        })
    );
}

#[test]
fn check_counts_problems_per_file() {
    let dir = scratch("check-counts");
    invalid_file(&dir);
    std::fs::copy(thermostat(), dir.join("thermostat.yaml")).unwrap();
    insta::assert_snapshot!(
        "check_failed",
        transcript_in(&dir, &["check", "thermostat.yaml", "broken.yaml"])
    );
}

#[test]
fn check_rejects_an_invalid_file_with_its_location() {
    let dir = scratch("check-invalid");
    let broken = invalid_file(&dir);
    let output = run(&["check".as_ref(), thermostat().as_os_str(), broken.as_os_str()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("broken.yaml:"), "{err}");
    assert!(err.contains("error"), "{err}");
}

#[test]
fn check_reports_json() {
    let dir = scratch("check-json");
    let broken = invalid_file(&dir);
    let output = run(&[
        "check".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        thermostat().as_os_str(),
        broken.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    let files = report["files"].as_array().expect("a `files` array");
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["ok"], true);
    assert_eq!(files[1]["ok"], false);
    assert!(files[1]["file"].as_str().unwrap().ends_with("broken.yaml"));
    let diagnostics = files[1]["diagnostics"].as_array().expect("a diagnostics array");
    assert!(diagnostics.iter().any(|d| d["severity"] == "error"), "{report}");
}

#[test]
fn check_of_a_missing_file_fails() {
    let dir = scratch("check-missing");
    let output = run(&["check".as_ref(), dir.join("nope.yaml").as_os_str()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("nope.yaml"));
}

#[test]
fn generate_writes_and_check_detects_drift() {
    let out = scratch("generate").join("src/generated");
    let interface = thermostat();
    let generate = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "generate".as_ref(),
            interface.as_os_str(),
            "--lang".as_ref(),
            "rust".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ];
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        run(&args)
    };

    let missing = generate(&["--check"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("missing"), "{}", stderr(&missing));
    assert!(!out.exists(), "--check must not write anything");

    let written = generate(&[]);
    assert_eq!(written.status.code(), Some(0), "{}", stderr(&written));
    let file = out.join("thermostat.rs");
    let contents = std::fs::read_to_string(&file).expect("thermostat.rs was written");
    assert!(contents.starts_with("// @generated by switchboard-codegen"));
    assert!(contents.contains("pub trait Thermostat: Send + Sync + 'static"));

    let fresh = generate(&["--check"]);
    assert_eq!(fresh.status.code(), Some(0), "{}", stderr(&fresh));

    std::fs::write(&file, contents.replace("Thermostat", "Thermometer")).unwrap();
    let stale = generate(&["--check"]);
    assert_eq!(stale.status.code(), Some(1));
    let err = stderr(&stale);
    assert!(err.contains("thermostat.rs is out of date"), "{err}");
    assert!(err.contains("switchboard generate"), "{err}");
}

#[test]
fn generate_refuses_an_unknown_language() {
    let out = scratch("generate-lang");
    let output = run(&[
        "generate".as_ref(),
        thermostat().as_os_str(),
        "--lang".as_ref(),
        "cobol".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn generate_refuses_an_invalid_file() {
    let dir = scratch("generate-invalid");
    let broken = invalid_file(&dir);
    let out = dir.join("out");
    let output = run(&[
        "generate".as_ref(),
        broken.as_os_str(),
        "--lang".as_ref(),
        "rust".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("broken.yaml:"), "{}", stderr(&output));
    assert!(!out.exists());
}

/// A file from the interface parser's valid corpus.
fn valid_corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/switchboard-idl/tests/data/valid")
        .join(name)
}

#[test]
fn check_accepts_stinger_ipc_files_unchanged() {
    // StingerIPC's complete 0.1.x example (with its `$ref` to common_types.yaml) and a file in the
    // 0.3.0 pre-release dialect.
    for name in ["stinger_complete.yaml", "dialect_0_3.yaml"] {
        let output = run(&["check".as_ref(), valid_corpus(name).as_os_str()]);
        assert_eq!(output.status.code(), Some(0), "{name}: {}", stderr(&output));
        assert!(!stderr(&output).contains("error"), "{name}: {}", stderr(&output));
    }
}

#[path = "shell/support.rs"]
mod support;

#[path = "shell/remote.rs"]
mod remote;

#[path = "shell/pipe.rs"]
mod pipe;

#[path = "shell/mqtt.rs"]
mod mqtt;

#[path = "shell/brokers.rs"]
mod brokers;

#[path = "shell/diff.rs"]
mod diff;

/// The subcommands `switchboard --help` lists, `help` aside.
fn subcommands() -> Vec<String> {
    let help = run(&["--help".as_ref()]);
    let text = String::from_utf8(help.stdout).unwrap();
    let listed = text.split("Commands:\n").nth(1).expect("a Commands section");
    let names: Vec<String> = listed
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .filter(|name| name != "help")
        .collect();
    assert!(names.len() >= 13, "{names:?}");
    names
}

#[test]
fn completions_cover_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let output = run(&["completions".as_ref(), shell.as_ref()]);
        assert_eq!(output.status.code(), Some(0), "{shell}: {}", stderr(&output));
        let script = String::from_utf8(output.stdout).unwrap();
        for name in subcommands() {
            assert!(script.contains(&name), "{shell} completion lacks `{name}`");
        }
        assert!(script.contains("connect"), "{shell} completion lacks --connect");
    }
    let unknown = run(&["completions".as_ref(), "tcsh".as_ref()]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn bash_accepts_the_bash_completion() {
    let dir = scratch("completions");
    let script = dir.join("switchboard.bash");
    std::fs::write(&script, run(&["completions".as_ref(), "bash".as_ref()]).stdout).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&script).output().expect("bash runs");
    assert!(checked.status.success(), "bash -n: {}", stderr(&checked));
    // Sourced, it registers a completion for `switchboard`.
    let registered = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p switchboard", script.display()))
        .output()
        .expect("bash runs");
    assert!(registered.status.success(), "{}", stderr(&registered));
    assert!(String::from_utf8_lossy(&registered.stdout).contains("switchboard"));
}

#[test]
fn man_page_lists_every_subcommand_and_the_exit_codes() {
    let output = run(&["man".as_ref()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(page.contains(".TH switchboard 1"), "{page}");
    for name in subcommands() {
        assert!(page.contains(&format!("switchboard\\-{name}(1)")), "no `{name}` in:\n{page}");
    }
    assert!(!page.contains("switchboard\\-help(1)"), "{page}");
    let exit_status = &page[page.find(".SH \"EXIT STATUS\"").expect("an EXIT STATUS section")..];
    for code in ["0", "1", "2", "3", "4", "5", "6", "7", "8", "130"] {
        assert!(exit_status.contains(&format!("\\fB{code}\\fR")), "no exit code {code}");
    }
}

#[test]
fn man_dir_writes_a_page_per_subcommand() {
    let dir = scratch("man");
    let output = run(&["man".as_ref(), "--dir".as_ref(), dir.as_os_str()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut pages = vec!["switchboard.1".to_owned()];
    pages.extend(subcommands().iter().map(|name| format!("switchboard-{name}.1")));
    for page in &pages {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".SH SYNOPSIS"), "{page}");
    }
    let written = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(written, pages.len());
    let call = std::fs::read_to_string(dir.join("switchboard-call.1")).unwrap();
    assert!(call.contains("\\-\\-connect") && call.contains(".SH \"EXIT STATUS\""), "{call}");
    // groff, where installed, renders every page without a warning (`-k`: UTF-8 input, as man
    // reads it).
    if Command::new("groff").arg("-v").output().is_ok() {
        for page in &pages {
            let rendered = Command::new("groff")
                .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
                .arg(dir.join(page))
                .output()
                .expect("groff runs");
            assert!(
                rendered.status.success() && rendered.stderr.is_empty(),
                "{page}: {}",
                stderr(&rendered)
            );
        }
    }
}

/// A port on 127.0.0.1 that nothing listens on: bound once by the OS, then released.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Runs `switchboard` with `args` and kills it if it has not ended within `limit`.
fn run_within(args: &[&str], limit: std::time::Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env_remove("SWITCHBOARD_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    let started = std::time::Instant::now();
    while child.try_wait().expect("the child can be waited for").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().expect("the killed child is reaped");
            panic!("`switchboard {}` ran past {limit:?}: {}", args.join(" "), stderr(&output));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("binary runs")
}

/// One failure, one code: a broker nobody listens for is a transport failure (exit 6) on every
/// broker transport, reported at once with the broker's address, never "not found" (4), which
/// is kept for a service nobody serves (docs/shell.md's exit-code table).
#[test]
fn an_unreachable_broker_is_a_transport_failure_on_every_transport() {
    let limit = std::time::Duration::from_secs(10);
    for scheme in ["mqtt", "nats", "redis", "amqp"] {
        let url = format!("{scheme}://127.0.0.1:{}", free_port());
        for verb in
            [&["call", "Thermostat", "getStatus"][..], &["list"], &["introspect", "Thermostat"]]
        {
            let mut args = vec!["--connect", &url, "--timeout", "3s"];
            args.splice(0..0, verb[..1].iter().copied());
            args.extend(&verb[1..]);
            let output = run_within(&args, limit);
            let error = stderr(&output);
            assert_eq!(output.status.code(), Some(6), "{scheme} {}: {error}", verb[0]);
            assert!(error.starts_with("transport error: "), "{scheme} {}: {error}", verb[0]);
            assert!(error.contains(&url), "{scheme} {}: the message names {url}: {error}", verb[0]);
        }
    }
}
