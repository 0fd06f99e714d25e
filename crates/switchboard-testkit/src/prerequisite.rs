//! What a test does when this machine lacks something it needs (a broker, mosquitto, Python 3.12,
//! Node): outside CI it is skipped with a notice the person running `cargo test` sees; under
//! `CI=true` it fails, so CI never skips.
//!
//! libtest captures what a test prints with `print!` and `eprint!` and shows it only when the
//! test fails, so a skipped test that passes would hide its reason. The notice is written to the
//! process's standard error handle directly, which libtest does not capture.

use std::io::Write;

/// Whether this is a CI run (`CI=true`), where a missing prerequisite fails the test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// Reports that the running test cannot run on this machine because of `reason` (which should
/// say what is missing and how to get it). The caller then returns without testing.
///
/// # Panics
/// Under `CI=true`, with `reason`: there a missing prerequisite is a failure.
#[track_caller]
pub fn missing(reason: impl std::fmt::Display) {
    let test = std::thread::current().name().map(str::to_owned);
    let test = test.as_deref().filter(|name| *name != "main");
    if in_ci() {
        panic!("{reason}; CI=true requires it, so this test fails instead of skipping");
    }
    // Straight to the handle: `eprintln!` would be captured and never shown for a passing test.
    let _ = std::io::stderr().lock().write_all(notice(test, &reason.to_string()).as_bytes());
}

/// The line a skipped test writes: which test, and why.
fn notice(test: Option<&str>, reason: &str) -> String {
    let hint = "`cargo xtask doctor` lists what this machine lacks";
    match test {
        Some(test) => format!("skipped {test}: {reason} ({hint})\n"),
        None => format!("skipped: {reason} ({hint})\n"),
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Output};

    use super::*;

    /// What the child test prints with `eprintln!`, which libtest must capture.
    const CAPTURED: &str = "printed with eprintln, so captured";
    const REASON: &str = "the test prerequisite is absent";
    const CHILD: &str = "prerequisite::tests::child_test_with_a_missing_prerequisite";

    #[test]
    #[ignore = "run as a child process by the tests below"]
    fn child_test_with_a_missing_prerequisite() {
        eprintln!("{CAPTURED}");
        missing(REASON);
    }

    /// Runs the child test in this test binary, under libtest's usual output capture.
    fn run_child(ci: Option<&str>) -> Output {
        let mut command = Command::new(std::env::current_exe().expect("the test binary"));
        command.args(["--exact", CHILD, "--ignored", "--test-threads", "1"]);
        command.env_remove("CI").env_remove("RUST_TEST_NOCAPTURE");
        if let Some(value) = ci {
            command.env("CI", value);
        }
        command.output().expect("the test binary runs")
    }

    #[test]
    fn a_skip_notice_gets_past_libtests_capture() {
        let output = run_child(None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "the skipped test passes: {output:?}");
        assert!(stderr.contains(&format!("skipped {CHILD}: {REASON} (")), "stderr: {stderr}");
        assert!(
            !stderr.contains(CAPTURED),
            "libtest should have captured eprintln! output; stderr: {stderr}"
        );
    }

    #[test]
    fn under_ci_a_missing_prerequisite_fails_the_test() {
        let output = run_child(Some("true"));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.status.success(), "the test must fail under CI=true: {all}");
        assert!(all.contains(&format!("{REASON}; CI=true requires it")), "{all}");
        assert!(!all.contains("skipped"), "{all}");
    }

    #[test]
    fn the_notice_names_the_test_and_the_reason() {
        assert_eq!(
            notice(Some("mqtt::calls"), "no MQTT broker on 127.0.0.1:1883"),
            "skipped mqtt::calls: no MQTT broker on 127.0.0.1:1883 \
             (`cargo xtask doctor` lists what this machine lacks)\n"
        );
        assert!(notice(None, "no node").starts_with("skipped: no node ("));
    }
}
