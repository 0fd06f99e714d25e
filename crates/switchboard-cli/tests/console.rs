//! The browser console of `switchboard web`, driven in Debian's headless chromium through
//! playwright-core (`tests/console/drive.mjs`) against the thermostat and the jobs service over
//! the Unix socket and the loopback MQTT broker: a method called through its form, a signal
//! arriving, a property edited, an action run to its end with progress and one cancelled, a
//! declared error shown with its fields, the token asked for, and the forms of an interface with
//! every type (structs, optionals, lists, maps, bytes, datetimes) turning input into JSON; over
//! Unix also an instance that starts and stops, seen coming and going in the list. With
//! `SWITCHBOARD_WRITE_SCREENSHOTS=1` the Unix run writes the screenshots of `docs/images/`.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use switchboard::{Endpoint, transport::unix::UnixEndpoint};
use switchboard_testkit::{
    node::{self, run},
    prerequisite,
};
use tokio::sync::oneshot;

// Shared with tests/cli.rs and tests/web.rs, which use the parts this file does not.
#[allow(dead_code)]
#[path = "shell/support.rs"]
mod support;

use support::Live;

/// The browser Debian installs (`apt-get install chromium`; `.ci/run` does).
const CHROMIUM: &str = "/usr/bin/chromium";

/// The token the gateways under test are started with.
const TOKEN: &str = "console-test-token";

/// A running gateway, killed when dropped.
struct Gateway {
    child: Child,
    base: String,
}

impl Gateway {
    /// `switchboard web --listen 127.0.0.1:0 --token TOKEN` against `live`'s servers.
    fn start(live: &Live) -> Gateway {
        let mut command = live.command(&["web", "--listen", "127.0.0.1:0", "--token", TOKEN]);
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line =
            rx.recv_timeout(Duration::from_secs(30)).expect("the gateway says where it listens");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Gateway { child, base }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs playwright-core (pinned by the committed lockfile) into the target directory once
/// per lockfile, with the driving script beside it; returns that directory.
fn install_driver() -> Result<PathBuf, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-browser");
    node::install(&source, &dir, &["drive.mjs"])
}

/// The description JSON the gateway would serve for `examples/interfaces/everything.yaml`
/// (every type the format has), for the checks of the forms built from it.
fn everything_description() -> String {
    let path = support::example("examples/interfaces/everything.yaml");
    let loaded = switchboard_codegen::load_file(&path).expect("everything.yaml loads");
    loaded.parsed.interface.expect("everything.yaml is valid").description_json()
}

/// How the page gets the token.
#[derive(Clone, Copy)]
enum TokenBy {
    /// Typed into the page when the gateway answers 401.
    Panel,
    /// In the address: `/#token=…`.
    Fragment,
}

/// The browser, Node and playwright-core, or why not (a skip outside CI, a failure under it).
fn prerequisites() -> Option<PathBuf> {
    let missing = |reason: String| {
        prerequisite::missing(format_args!("the browser console test needs {reason}"));
        None
    };
    if !Path::new(CHROMIUM).exists() {
        return missing(format!("chromium at {CHROMIUM} (`apt-get install chromium`)"));
    }
    match run("node", &["--version"], Path::new(".")) {
        Ok((true, _)) => {}
        Ok((false, output)) => return missing(format!("Node (`node --version` failed: {output})")),
        Err(reason) => return missing(format!("Node and npm: {reason}")),
    }
    match install_driver() {
        Ok(dir) => Some(dir),
        Err(reason) => missing(format!("playwright-core from npm: {reason}")),
    }
}

/// A second thermostat instance, `second`, in `live`'s runtime directory, for the page to see
/// come and go: started when the driving script writes `start-second` into `signals`, stopped
/// when it writes `stop-second` (each waited for at most the test's length).
fn come_and_go(live: &Live, signals: PathBuf) {
    let socket = live.dir.path().join("switchboard/Thermostat/second.sock");
    std::thread::spawn(move || {
        let wait_for = |name: &str| {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !signals.join(name).exists() {
                if Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            true
        };
        if !wait_for("start-second") {
            return;
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let endpoint = Endpoint::unix(UnixEndpoint::at(socket));
        let server = support::rt().spawn(async move {
            let _ = thermostat_example::server::run_until(&endpoint, async {
                let _ = stopped.await;
            })
            .await;
        });
        wait_for("stop-second");
        let _ = stop.send(());
        let _ = support::rt().block_on(server);
    });
}

/// Drives the console against `live` in the browser; screenshots into `screenshots` if given.
fn drive(live: &Live, token_by: TokenBy, screenshots: Option<&Path>) {
    let Some(driver) = prerequisites() else { return };
    let gateway = Gateway::start(live);
    let failure_shot = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("console-failure-{}.png", live.instance()));
    let mut node = Command::new("node");
    node.arg(driver.join("drive.mjs"))
        .current_dir(&driver)
        .env("CONSOLE_URL", &gateway.base)
        .env("INSTANCE", live.instance())
        .env("TOKEN", TOKEN)
        .env(
            "TOKEN_BY",
            match token_by {
                TokenBy::Panel => "panel",
                TokenBy::Fragment => "fragment",
            },
        )
        .env("CHROMIUM", CHROMIUM)
        .env("EVERYTHING", everything_description())
        .env("FAILURE_SCREENSHOT", &failure_shot);
    if let Some(dir) = screenshots {
        node.env("SCREENSHOTS", dir);
    }
    if live.url == "unix:" {
        let signals = live.dir.path().join("come-and-go");
        std::fs::create_dir_all(&signals).unwrap();
        come_and_go(live, signals.clone());
        node.env("COME_AND_GO", signals);
    }
    let output = support::run_bounded(node, Duration::from_secs(300));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the console test failed in the browser:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("console: every step passed"), "{stdout}");
    if live.url == "unix:" {
        assert!(stdout.contains("step: an instance that starts appears"), "{stdout}");
    }
}

/// `docs/images`, when `SWITCHBOARD_WRITE_SCREENSHOTS=1` asks for new screenshots.
fn screenshot_dir() -> Option<PathBuf> {
    if std::env::var("SWITCHBOARD_WRITE_SCREENSHOTS").as_deref() != Ok("1") {
        return None;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/images");
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

#[test]
fn the_console_works_in_a_browser_over_unix() {
    let live = Live::unix();
    drive(&live, TokenBy::Panel, screenshot_dir().as_deref());
}

#[test]
fn the_console_works_in_a_browser_over_mqtt() {
    let Some(live) = Live::mqtt("console") else { return };
    drive(&live, TokenBy::Fragment, None);
}
