//! `switchboard diff`: exit codes per `--for`, text and JSON output, git revisions (in temporary
//! repositories), the version-bump check, and the samples of docs/shell.md and README.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The rule pairs of `switchboard-idl`'s diff tests.
fn pair(rule: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/switchboard-idl/tests/data/diff")
        .join(rule);
    (dir.join("old.yaml"), dir.join("new.yaml"))
}

fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

/// Runs `switchboard diff` on a rule pair with `extra` options.
fn diff(rule: &str, extra: &[&str]) -> Output {
    let (old, new) = pair(rule);
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("diff")
        .arg(old)
        .arg(new)
        .args(extra)
        .output()
        .expect("binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory of its own for `name`.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("diff").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs git in `dir` with a fixed identity, and requires it to succeed.
fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {}", text(&output.stderr));
}

/// Runs `switchboard` in `dir`: exit code, then both streams.
fn transcript_in(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("binary runs");
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[test]
fn diff_exits_7_only_when_a_change_breaks_the_side_asked_for() {
    // Adding a method breaks old servers (new clients may call it), not old clients.
    for (side, code) in [("clients", 0), ("servers", 7), ("both", 7)] {
        let output = diff("method_added", &["--for", side]);
        assert_eq!(output.status.code(), Some(code), "--for {side}: {}", text(&output.stderr));
    }
    // Removing one is the mirror image.
    for (side, code) in [("clients", 7), ("servers", 0), ("both", 7)] {
        let output = diff("method_removed", &["--for", side]);
        assert_eq!(output.status.code(), Some(code), "--for {side}: {}", text(&output.stderr));
    }
    // `clients` is the default; nothing changed is success whatever the side.
    assert_eq!(diff("method_removed", &[]).status.code(), Some(7));
    assert_eq!(diff("no_change", &["--for", "both"]).status.code(), Some(0));
    assert_eq!(diff("argument_added_optional", &["--for", "both"]).status.code(), Some(0));
    let breaking = diff("method_removed", &[]);
    assert_eq!(text(&breaking.stderr), "error: 1 change breaks existing clients (--for clients)\n");
    // A bad `--for` is a usage error.
    assert_eq!(diff("no_change", &["--for", "everyone"]).status.code(), Some(2));
}

#[test]
fn diff_prints_text_and_json() {
    let output = diff("enum_value_added_in_a_writable_property", &["--for", "both"]);
    assert_eq!(output.status.code(), Some(7));
    assert_eq!(
        text(&output.stdout),
        "Heater 1.0.0 -> Heater 2.0.0: 1 change\n  \
         breaks both     major  enums.Mode.values.eco: value 2 added\n\
         needs a major version bump\n"
    );
    let output = diff("argument_added_required", &["--format", "json"]);
    assert_eq!(output.status.code(), Some(7));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        report,
        serde_json::json!({
            "old": {"name": "Heater", "version": "1.0.0"},
            "new": {"name": "Heater", "version": "2.0.0"},
            "for": "clients",
            "changes": [{
                "path": "methods.setTarget.arguments.zone",
                "kind": "field_added",
                "message": "argument added (string)",
                "clients": "breaking",
                "servers": "safe",
                "bump": "major",
            }],
            "breaking": 1,
            "version": {"required": "major", "declared": "major", "ok": true},
        })
    );
    let none = diff("no_change", &["--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&none.stdout).expect("JSON");
    assert_eq!(report["changes"], serde_json::json!([]));
    assert_eq!(report["version"]["required"], serde_json::Value::Null);
}

#[test]
fn diff_warns_about_a_missing_version_bump_and_can_fail_on_it() {
    let warned = diff("change_without_version_bump", &[]);
    assert_eq!(warned.status.code(), Some(0));
    assert_eq!(
        text(&warned.stderr),
        "warning: the changes need a minor version bump, but the version stays 1.0.0\n"
    );
    let required = diff("change_without_version_bump", &["--require-version-bump"]);
    assert_eq!(required.status.code(), Some(8), "{}", text(&required.stderr));
    // A breaking change with too small a bump: 7 wins, and the warning names both versions.
    let both = diff("minor_bump_for_a_breaking_change", &["--require-version-bump"]);
    assert_eq!(both.status.code(), Some(7));
    assert!(
        text(&both.stderr).contains(
            "warning: the changes need a major version bump, but 1.0.0 -> 1.1.0 is a minor bump"
        ),
        "{}",
        text(&both.stderr)
    );
    // A bump that fits is quiet.
    let fine = diff("method_removed", &["--for", "servers", "--require-version-bump"]);
    assert_eq!(fine.status.code(), Some(0));
    assert_eq!(text(&fine.stderr), "");
}

#[test]
fn diff_refuses_unreadable_and_invalid_files() {
    let dir = scratch("invalid");
    std::fs::write(dir.join("broken.yaml"), "stingeripc: {version: 0.1.1}\ninterface: {}\n")
        .unwrap();
    let (old, _) = pair("no_change");
    let old = old.to_str().unwrap();
    let (code, stdout, stderr) = transcript_in(&dir, &["diff", old, "broken.yaml"]);
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert!(stderr.contains("error[missing-key]"), "{stderr}");
    assert!(stderr.ends_with("error: `broken.yaml` is not a valid interface file\n"), "{stderr}");
    let (code, _, stderr) = transcript_in(&dir, &["diff", old, "missing.yaml"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "error: cannot read `missing.yaml`: no such file (for a git revision, write REV:PATH)\n"
    );
}

/// The thermostat in a repository with two commits: as it is, then with `zone` added to `boost`
/// and `getStatus` removed, at version 1.1.0.
fn thermostat_repo(name: &str) -> PathBuf {
    let dir = scratch(name);
    let original = std::fs::read_to_string(example("examples/thermostat/thermostat.yaml")).unwrap();
    std::fs::write(dir.join("thermostat.yaml"), &original).unwrap();
    git(&dir, &["init", "--quiet", "--initial-branch=main"]);
    git(&dir, &["add", "thermostat.yaml"]);
    git(&dir, &["commit", "--quiet", "-m", "thermostat 1.0.0"]);
    std::fs::write(dir.join("thermostat.yaml"), changed_thermostat(&original, true)).unwrap();
    git(&dir, &["commit", "--quiet", "-am", "thermostat 1.1.0"]);
    dir
}

/// `original` with an optional `zone` argument on `boost`, at 1.1.0, and without `getStatus`
/// when `remove` is set.
fn changed_thermostat(original: &str, remove: bool) -> String {
    let mut text = original.replace("  version: 1.0.0\n", "  version: 1.1.0\n").replace(
        "        description: Why, for the log.\n",
        "        description: Why, for the log.\n      - name: zone\n        type: string\n        \
         optional: true\n",
    );
    if remove {
        let start = text.find("  getStatus:\n").unwrap();
        let end = text.find("\nactions:\n").unwrap();
        text.replace_range(start..end, "");
    }
    text
}

#[test]
fn diff_reads_git_revisions() {
    let dir = thermostat_repo("git");
    let (code, stdout, stderr) =
        transcript_in(&dir, &["diff", "HEAD~1:thermostat.yaml", "HEAD:thermostat.yaml"]);
    assert_eq!(code, Some(7), "{stderr}");
    assert!(
        stdout.contains("breaks clients  major  methods.getStatus: method removed"),
        "{stdout}"
    );
    // `./` reads relative to the current directory, from a subdirectory too.
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let (code, stdout, _) = transcript_in(
        &dir.join("sub"),
        &["diff", "HEAD~1:../thermostat.yaml", "HEAD:./../thermostat.yaml", "--for", "servers"],
    );
    assert_eq!(code, Some(0), "{stdout}");
    // A revision git does not have, a path it does not have, and no repository at all.
    let (code, _, stderr) = transcript_in(&dir, &["diff", "v9:thermostat.yaml", "thermostat.yaml"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "error: git cannot show `v9:thermostat.yaml`: fatal: invalid object name 'v9'.\n"
    );
    let (code, _, stderr) = transcript_in(&dir, &["diff", "HEAD:nope.yaml", "thermostat.yaml"]);
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with("error: git cannot show `HEAD:nope.yaml`: fatal: path"), "{stderr}");
    let outside = scratch("no-repository");
    let (code, _, stderr) = transcript_in(
        &outside,
        &["diff", "HEAD:thermostat.yaml", dir.join("thermostat.yaml").to_str().unwrap()],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not a git repository"), "{stderr}");
    // Without git on the PATH.
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["diff", "HEAD:thermostat.yaml", "thermostat.yaml"])
        .current_dir(&dir)
        .env("PATH", "")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).starts_with("error: cannot run git to read `HEAD:thermostat.yaml`"),
        "{}",
        text(&output.stderr)
    );
}

/// The example of docs/shell.md's "Comparing interface versions" is this run, verbatim.
#[test]
fn shell_md_diff_example_is_real() {
    let dir = thermostat_repo("shell-md");
    let doc = std::fs::read_to_string(example("docs/shell.md")).unwrap();
    let section = &doc[doc.find("## Comparing interface versions").unwrap()..];
    let block = section.split("```text\n").nth(1).unwrap().split("```").next().unwrap();
    let command = block.lines().next().unwrap().strip_prefix("$ switchboard ").unwrap();
    let args: Vec<&str> = command.split(' ').collect();
    let (code, stdout, stderr) = transcript_in(&dir, &args);
    assert_eq!(code, Some(7));
    assert_eq!(format!("$ switchboard {command}\n{stdout}{stderr}"), block);
}

/// README.md's pull-request gate, run in a clone whose `origin/main` has the old file: it
/// passes a compatible change with a minor bump, and fails a breaking one with 7 and a
/// change whose version was not raised with 8.
#[test]
fn readme_pull_request_gate_works() {
    let readme = std::fs::read_to_string(example("README.md")).unwrap();
    let marker = "<!-- tested: crates/switchboard-cli/tests/cli.rs runs this block in a clone -->";
    let after = &readme[readme.find(marker).expect("the README marks its gate block")..];
    let block = after.split("```bash\n").nth(1).unwrap().split("```").next().unwrap();
    let upstream = thermostat_repo("readme-upstream");
    git(&upstream, &["reset", "--quiet", "--hard", "HEAD~1"]);
    let original = std::fs::read_to_string(upstream.join("thermostat.yaml")).unwrap();
    let clone = scratch("readme-clone");
    git(&clone, &["clone", "--quiet", upstream.to_str().unwrap(), "."]);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_switchboard")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let gate = |contents: &str| {
        std::fs::write(clone.join("thermostat.yaml"), contents).unwrap();
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", block])
            .current_dir(&clone)
            .env("PATH", &path)
            .output()
            .unwrap();
        (output.status.code(), text(&output.stderr))
    };
    let compatible = changed_thermostat(&original, false);
    assert_eq!(gate(&compatible), (Some(0), String::new()));
    let (code, stderr) = gate(&changed_thermostat(&original, true));
    assert_eq!(code, Some(7), "{stderr}");
    let (code, stderr) = gate(&compatible.replace("  version: 1.1.0\n", "  version: 1.0.0\n"));
    assert_eq!(code, Some(8), "{stderr}");
}
