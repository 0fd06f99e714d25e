//! Every verb end to end against live servers on Unix sockets, plus snapshots of output formats
//! and exit codes.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::Duration,
};

use serde_json::json;

use crate::support::{Live, example, signal, transcript};

#[test]
fn introspect_lists_the_interface() {
    let live = Live::unix();
    let described = live.json(&["introspect", "Thermostat"]);
    assert_eq!(described["name"], "Thermostat");
    assert_eq!(described["methods"][0]["name"], "boost");
    insta::assert_snapshot!(
        "introspect_text",
        transcript(&live, &["introspect", "Thermostat", "--format", "text"])
    );
}

#[test]
fn call_get_set_and_command() {
    let live = Live::unix();
    let status = live.json(&["call", "Thermostat", "getStatus"]);
    assert_eq!(status["mode"], 1, "{status}");
    let boosted = live.json(&[
        "call",
        "Thermostat",
        "boost",
        "extraCelsius=2",
        "forHowLong=PT5M",
        "reason=tests",
    ]);
    assert!(boosted["endsAt"].as_str().unwrap().ends_with('Z'));
    let by_json = live.json(&[
        "call",
        "Thermostat/default",
        "boost",
        "--json",
        r#"{"extraCelsius":1,"forHowLong":"PT1M"}"#,
    ]);
    assert!(by_json["endsAt"].is_string());
    assert_eq!(live.json(&["get", "Thermostat", "setpoint"]), json!({"celsius": 21.0}));
    assert_eq!(
        live.json(&["set", "Thermostat", "setpoint", "celsius=23.5"]),
        json!({"celsius": 23.5})
    );
    assert_eq!(live.json(&["get", "Thermostat", "setpoint"]), json!({"celsius": 23.5}));
    assert_eq!(live.json(&["call", "Jobs", "lookup", "key=abc"]), json!({"value": "ABC"}));
    assert_eq!(live.json(&["command", "Jobs", "note", "text=hi", "private=false"]), json!({}));
    insta::assert_snapshot!(
        "get_text",
        transcript(&live, &["get", "Thermostat", "mode", "--format", "text"])
    );
    insta::assert_snapshot!(
        "call_json",
        transcript(&live, &["call", "Jobs", "lookup", "key=snap"])
    );
}

#[test]
fn exit_codes_are_distinct() {
    let live = Live::unix();
    insta::assert_snapshot!(
        "exit_remote",
        transcript(&live, &["call", "Jobs", "lookup", "key=missing"])
    );
    insta::assert_snapshot!(
        "exit_remote_action",
        transcript(&live, &["action", "Thermostat", "preheat", "targetCelsius=99"])
    );
    insta::assert_snapshot!(
        "exit_usage_type",
        transcript(&live, &["call", "Thermostat", "boost", "extraCelsius=warm", "forHowLong=PT1M"])
    );
    insta::assert_snapshot!(
        "exit_usage_missing",
        transcript(&live, &["call", "Thermostat", "boost", "extraCelsius=1"])
    );
    insta::assert_snapshot!(
        "exit_usage_read_only",
        transcript(&live, &["set", "Thermostat", "mode", "mode=eco"])
    );
    insta::assert_snapshot!(
        "exit_not_found_member",
        transcript(&live, &["call", "Thermostat", "nosuch"])
    );
    insta::assert_snapshot!(
        "exit_not_found_property",
        transcript(&live, &["get", "Thermostat", "nosuch"])
    );
    insta::assert_snapshot!(
        "exit_not_found_watched",
        transcript(&live, &["watch", "Thermostat", "nosuch"])
    );
    insta::assert_snapshot!("exit_not_found_service", transcript(&live, &["get", "Nobody", "x"]));
    insta::assert_snapshot!(
        "exit_timeout",
        transcript(
            &live,
            &[
                "action",
                "Jobs",
                "count",
                "to=1000",
                "stepMs=2000",
                "startAfterMs=0",
                "--timeout",
                "300ms"
            ]
        )
    );
    // A socket that serves another interface: the handshake refuses.
    let jobs = live.dir.path().join("switchboard/Jobs/default.sock");
    let url = format!("unix://{}", jobs.display());
    insta::assert_snapshot!(
        "exit_transport",
        transcript(&live, &["get", "--connect", &url, "Thermostat", "setpoint"])
    );
    let usage = live.run(&["call"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn help_documents_exit_codes() {
    let live = Live::unix();
    let help = live.ok(&["call", "--help"]);
    let table = &help[help.find("Exit codes:").expect("exit codes in --help")..];
    insta::assert_snapshot!("help_exit_codes", table);
    // docs/shell.md's table lists the same codes.
    let codes =
        |lines: Vec<&str>| -> Vec<u8> { lines.iter().filter_map(|l| l.parse().ok()).collect() };
    let in_help =
        codes(table.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect());
    let doc = std::fs::read_to_string(example("docs/shell.md")).unwrap();
    let in_doc =
        codes(doc.lines().filter_map(|l| l.strip_prefix("| ")?.split(' ').next()).collect());
    assert_eq!(in_doc, in_help);
}

#[test]
fn watch_prints_signals_and_properties_as_lines() {
    let live = Live::unix();
    let out = live.ok(&["watch", "Thermostat", "setpoint", "temperatureChanged", "--count", "3"]);
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], json!({"property": "setpoint", "version": 1, "value": {"celsius": 21.0}}));
    assert_eq!(lines[1]["signal"], "temperatureChanged");
    // Without names, everything; no timeout unless asked, and --timeout ends it with 0: it
    // stopped as asked.
    insta::assert_snapshot!(
        "watch_timeout_succeeds",
        transcript(&live, &["watch", "Jobs", "--timeout", "200ms"])
    );
    // A command's notice arrives on a watch.
    let mut watcher = live.command(&["watch", "Jobs", "notice", "--count", "1"]);
    let child = watcher.stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    live.ok(&["command", "Jobs", "note", "text=hello", "private=false"]);
    let output = child.wait_with_output().unwrap();
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(line, json!({"signal": "notice", "args": {"text": "hello"}}));
}

#[test]
fn action_prints_feedback_then_the_end() {
    let live = Live::unix();
    let out = live.ok(&["action", "Jobs", "count", "to=3", "stepMs=1", "startAfterMs=0"]);
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["status"], "accepted");
    assert_eq!(
        lines[1..4],
        [
            json!({"feedback":{"value":1}}),
            json!({"feedback":{"value":2}}),
            json!({"feedback":{"value":3}})
        ]
    );
    assert_eq!(lines[4], json!({"status": "succeeded", "result": {"total": 3}}));
}

#[test]
fn ctrl_c_cancels_a_running_goal() {
    let live = Live::unix();
    let mut child = live
        .command(&["action", "Jobs", "count", "to=1000", "stepMs=20", "startAfterMs=0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("accepted"), "{line}");
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("feedback"), "{line}");
    signal(child.id(), libc::SIGINT);
    let rest: Vec<String> = stdout.lines().map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(rest.last().map(String::as_str), Some(r#"{"status":"cancelled"}"#));
}

#[test]
fn list_shows_live_services_only() {
    let live = Live::unix();
    // A stale socket file of a dead server is not listed.
    let stale = live.dir.path().join("switchboard/Gone/default.sock");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let listed = live.json(&["list"]);
    let names: Vec<String> = listed["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{} {}",
                s["interface"].as_str().unwrap(),
                s["instance"].as_str().unwrap(),
                s["version"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["Jobs/default 1.0.0", "Thermostat/default 1.0.0"]);
    // The title each server declares: the file's, or the interface name when it gives none
    // (the same as MQTT discovery shows).
    let titles: Vec<&str> =
        listed["services"].as_array().unwrap().iter().filter_map(|s| s["title"].as_str()).collect();
    assert_eq!(titles, ["Jobs", "Smart thermostat"]);
    insta::assert_snapshot!("list_text", transcript(&live, &["list", "--format", "text"]));
}

#[test]
fn interface_file_replaces_introspection() {
    let live = Live::unix();
    let file = example("examples/thermostat/thermostat.yaml");
    let file = file.to_str().unwrap();
    assert_eq!(
        live.json(&["get", "--interface", file, "Thermostat", "setpoint"]),
        json!({"celsius": 21.0})
    );
    let wrong = live.run(&["get", "--interface", file, "Jobs", "x"]);
    assert_eq!(wrong.status.code(), Some(2));
}

/// The `<!-- tested -->` bash blocks of docs/shell.md, run against live servers.
#[test]
fn shell_md_examples_work() {
    let live = Live::unix();
    let doc = std::fs::read_to_string(example("docs/shell.md")).unwrap();
    let mut blocks = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "<!-- tested -->" {
            assert_eq!(
                lines.next().map(str::trim),
                Some("```bash"),
                "a tested block must be ```bash"
            );
            let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            blocks.push(block.join("\n"));
        }
    }
    assert!(blocks.len() >= 6, "found {} tested blocks", blocks.len());
    let bin_dir = std::path::Path::new(crate::support::bin()).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    for block in blocks {
        let command = live.command(&[]);
        let mut bash = std::process::Command::new("bash");
        bash.arg("-euo").arg("pipefail").arg("-c").arg(&block).env("PATH", &path);
        for (k, v) in command.get_envs() {
            match v {
                Some(v) => bash.env(k, v),
                None => bash.env_remove(k),
            };
        }
        bash.current_dir(live.dir.path());
        let output = crate::support::run_bounded(bash, Duration::from_secs(60));
        assert!(
            output.status.success(),
            "docs/shell.md block failed ({:?}):\n{block}\n--- stdout\n{}--- stderr\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Colour only on a terminal, and never with a non-empty `NO_COLOR` (no-color.org).
#[test]
fn colour_only_on_a_terminal_unless_no_color() {
    let live = Live::unix();
    let escape = '\x1b';
    let verbs: [&[&str]; 4] = [
        &["get", "Thermostat", "mode", "--format", "text"],
        &["introspect", "Thermostat", "--format", "text"],
        &["list", "--format", "text"],
        &["watch", "Thermostat", "setpoint", "--count", "1", "--format", "text"],
    ];
    for args in verbs {
        let shown = live.on_terminal(args, &[]);
        assert!(shown.contains(escape), "{args:?} on a terminal: {shown:?}");
        // An empty NO_COLOR counts as unset.
        assert!(live.on_terminal(args, &[("NO_COLOR", "")]).contains(escape), "{args:?}");
        let plain = live.on_terminal(args, &[("NO_COLOR", "1")]);
        assert!(!plain.contains(escape), "{args:?} with NO_COLOR: {plain:?}");
        let piped = live.run(args);
        assert_eq!(piped.status.code(), Some(0), "{args:?}");
        assert!(!piped.stdout.contains(&0x1b) && !piped.stderr.contains(&0x1b), "{args:?} piped");
    }
}
