//! The thermostat's systemd units, played by the test: `thermostat-server` started as
//! `thermostat.service` with the socket `thermostat.socket` describes. And the daemon
//! documentation, whose code is this example's.

use std::{os::fd::AsFd, path::Path, time::Duration};

use switchboard::Endpoint;
use switchboard_testkit::service_manager::{NotifySocket, spawn_service};
use thermostat_example::generated::thermostat::ThermostatClient;

const EXAMPLE: &str = env!("CARGO_MANIFEST_DIR");
const SERVER: &str = env!("CARGO_BIN_EXE_thermostat-server");
const WAIT: Duration = Duration::from_secs(5);

fn read(path: impl AsRef<Path>) -> String {
    let path = Path::new(EXAMPLE).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The value of `key=` in a unit file (the last one, as systemd takes it).
fn setting<'a>(unit: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .next_back()
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

/// Runs the server as the units say, with a temporary directory as systemd's `%t` (and the
/// server's `$XDG_RUNTIME_DIR`): it serves the socket, is ready, pings the watchdog, and stops
/// on SIGTERM, leaving the socket to systemd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_units_run_the_server() {
    let socket_unit = read("systemd/thermostat.socket");
    let service_unit = read("systemd/thermostat.service");
    assert_eq!(setting(&service_unit, "Type"), "notify");
    let watchdog = setting(&service_unit, "WatchdogSec").strip_suffix('s').expect("seconds");
    let watchdog_usec = (watchdog.parse::<u64>().expect("a number") * 1_000_000).to_string();

    let runtime_dir = tempfile::tempdir().expect("a runtime directory");
    let listen = setting(&socket_unit, "ListenStream")
        .replace("%t", &runtime_dir.path().display().to_string());
    let listen = Path::new(&listen);
    std::fs::create_dir_all(listen.parent().unwrap()).expect("the socket's directory");
    let socket = std::os::unix::net::UnixListener::bind(listen).expect("the socket systemd makes");
    let name = setting(&socket_unit, "FileDescriptorName");
    let notify = NotifySocket::at_path();
    let env = [
        ("XDG_RUNTIME_DIR", runtime_dir.path().to_str().unwrap()),
        ("NOTIFY_SOCKET", notify.address()),
        ("WATCHDOG_USEC", &watchdog_usec),
    ];
    let mut server = spawn_service(SERVER, &[], &[(socket.as_fd(), name)], &env);
    drop(socket);

    let ready = notify.next(WAIT).await.expect("READY=1");
    assert!(ready.lines().any(|line| line == "READY=1"), "{ready:?}");
    // Pings start at once, then come every half WatchdogSec.
    assert_eq!(notify.next(WAIT).await.as_deref(), Some("WATCHDOG=1"));
    let endpoint = Endpoint::parse(&format!("unix://{}", listen.display())).unwrap();
    let client = ThermostatClient::connect(&endpoint).await.expect("served through the socket");
    let setpoint = tokio::time::timeout(WAIT, client.get_setpoint()).await.unwrap().unwrap();
    assert_eq!(setpoint, 21.0);
    client.close();

    let exited = tokio::task::spawn_blocking(move || server.terminate(WAIT)).await.unwrap();
    assert!(exited.is_some_and(|status| status.success()), "exit on SIGTERM: {exited:?}");
    let stopping = notify.next(WAIT).await.expect("STOPPING=1");
    assert!(stopping.lines().any(|line| line == "STOPPING=1"), "{stopping:?}");
    assert!(listen.exists(), "the server removed the socket systemd made");
}

/// The fenced blocks of `language` in `markdown`, in order.
fn blocks(markdown: &str, language: &str) -> Vec<String> {
    let opening = format!("```{language}");
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_end() == opening => current = Some(String::new()),
            Some(block) if line.trim_end() == "```" => {
                found.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    found
}

/// Checks that `block` is an excerpt of `source`: its pieces between `// …` lines appear in the
/// source in order, each as consecutive lines (indentation aside).
fn assert_excerpt(block: &str, source: &str, what: &str) {
    let source: Vec<&str> = source.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut from = 0;
    for piece in block.split("// …\n") {
        let piece: Vec<&str> = piece.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if piece.is_empty() {
            continue;
        }
        let found = (from..=source.len().saturating_sub(piece.len()))
            .find(|&start| source[start..start + piece.len()] == piece[..]);
        let start = found.unwrap_or_else(|| {
            panic!(
                "{what}: this is not in src/server.rs (after what came before):\n{}",
                piece.join("\n")
            )
        });
        from = start + piece.len();
    }
}

/// The daemon pages show this example's code and unit files, as they are.
#[test]
fn the_docs_show_this_example() {
    let server = read("src/server.rs");
    let readme = read("../../README.md");
    let section = readme.split("## Running as a daemon").nth(1).expect("the README's section");
    let section = section.split("\n## ").next().unwrap();
    let daemons = read("../../docs/daemons.md");
    let samples: Vec<(String, &str)> = blocks(section, "rust,excerpt")
        .into_iter()
        .map(|b| (b, "README.md"))
        .chain(blocks(&daemons, "rust,excerpt").into_iter().map(|b| (b, "docs/daemons.md")))
        .collect();
    assert_eq!(samples.len(), 2, "one Rust sample on each page");
    for (block, page) in &samples {
        assert_excerpt(block, &server, page);
    }
    let units = blocks(&daemons, "ini");
    assert_eq!(units, [read("systemd/thermostat.socket"), read("systemd/thermostat.service")]);
}
