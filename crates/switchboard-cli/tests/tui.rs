//! `switchboard tui` driven in tmux (`send-keys`, `capture-pane`) against the thermostat and the
//! jobs service over the Unix socket and the loopback MQTT, NATS, Redis and RabbitMQ brokers:
//! browse to the instance, read a member's documentation, call a method through its form (a
//! refused value, then a good one), see signals arrive, set a property (refused, then
//! accepted), run the thermostat's preheat to the end and cancel another, run and cancel a long
//! goal of the jobs service, show the help, and quit back to a restored terminal.
//!
//! With `SWITCHBOARD_WRITE_SCREENSHOTS=1` the Unix run puts its screens into docs/tui.md.

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::{Duration, Instant},
};

// Shared with tests/cli.rs, which uses the parts this file does not.
#[allow(dead_code)]
#[path = "shell/support.rs"]
mod support;

use support::{Live, bin};

/// How long any one screen may take to appear (generous: 2 cores, other builds running).
const STEP: Duration = Duration::from_secs(30);
/// The screen's size, as the doc's captures show it.
const WIDTH: &str = "120";
const HEIGHT: &str = "40";

/// A private tmux server running `switchboard tui`, killed when dropped.
struct Tmux {
    socket: PathBuf,
}

/// Quotes `text` for `sh`.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl Tmux {
    /// Starts `switchboard tui --connect URL` in a 120×40 tmux session; `None` (after the
    /// prerequisite notice) when tmux is missing.
    fn start(live: &Live, connect: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            switchboard_testkit::prerequisite::missing(
                "tmux is not installed (apt-get install tmux)",
            );
            return None;
        }
        let socket = live.dir.path().join("tmux.sock");
        // After the UI exits the shell prints its status, on the screen the UI restored.
        let line = format!(
            "cd {dir} && XDG_RUNTIME_DIR={dir} TERM=xterm-256color {bin} tui --connect {connect}; \
             echo \"tui exited with $?\"; sleep 600",
            dir = quoted(&live.dir.path().to_string_lossy()),
            bin = quoted(bin()),
            connect = quoted(connect),
        );
        let tmux = Tmux { socket };
        tmux.run(&["new-session", "-d", "-x", WIDTH, "-y", HEIGHT, "-s", "tui", &line]);
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Sends keys by tmux's names (`Enter`, `Down`, `BSpace`, `Tab`, `Escape`, `q`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "tui"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "tui", "-l", text]);
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "tui"]).stdout).into_owned()
    }

    /// Waits until the screen satisfies `ready`; returns that screen.
    fn wait_until(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "no {what} within {STEP:?}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `text` is on the screen; returns that screen.
    fn wait_for(&self, text: &str) -> String {
        self.wait_until(&format!("`{text}`"), |screen| screen.contains(text))
    }

    /// The selected items on the screen, one per list.
    fn selection(&self) -> Vec<String> {
        self.screen().lines().flat_map(selected).map(str::to_owned).collect()
    }

    /// Moves the focused list's cursor (Down, then Up once Down no longer moves it) until the
    /// selected item contains `text`.
    fn select(&self, text: &str) {
        let mut key = "Down";
        for _ in 0..120 {
            let before = self.selection();
            if before.iter().any(|item| item.contains(text)) {
                return;
            }
            self.keys(&[key]);
            // The cursor moves at once unless it is at the end of the list.
            let deadline = Instant::now() + Duration::from_secs(1);
            while self.selection() == before {
                if Instant::now() > deadline {
                    key = "Up";
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not select `{text}`; the screen:\n{}", self.screen());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
    }
}

/// The selected items on a line: what follows a list's highlight symbol (`> ` just inside a
/// pane's border) up to the pane's next border.
fn selected(line: &str) -> impl Iterator<Item = &str> {
    line.split('│').filter_map(|cell| cell.strip_prefix("> "))
}

/// The count in `signal temperatureChanged #N` on the screen.
fn signal_count(screen: &str) -> Option<u64> {
    let rest = screen.split("signal temperatureChanged #").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

/// With `SWITCHBOARD_WRITE_SCREENSHOTS=1`, puts a screen into docs/tui.md: the `text` block
/// after the line `<!-- screenshot: NAME -->`.
fn screenshot(name: &str, screen: &str) {
    if !std::env::var("SWITCHBOARD_WRITE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        return;
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/tui.md");
    let doc = std::fs::read_to_string(&path).expect("docs/tui.md");
    let marker = format!("<!-- screenshot: {name} -->\n```text\n");
    let start =
        doc.find(&marker).unwrap_or_else(|| panic!("docs/tui.md has no {marker:?}")) + marker.len();
    let end = start + doc[start..].find("```\n").expect("the block ends");
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    let block = lines.join("\n").trim_end().to_owned() + "\n";
    std::fs::write(&path, format!("{}{block}{}", &doc[..start], &doc[end..])).unwrap();
}

/// Drives every feature against `live`'s servers, reached at `connect`; `shots` writes the
/// screens for the doc.
fn drive(live: &Live, connect: &str, shots: bool) {
    let Some(tui) = Tmux::start(live, connect) else { return };
    let instance = live.instance();
    let shot = |name: &str, screen: &str| {
        if shots {
            screenshot(name, screen);
        }
    };

    // Browse: discovery lists the thermostat; open it.
    let screen = tui.wait_for(&format!("Thermostat/{instance}"));
    // A URL's password is not shown.
    let credentials = connect.split_once("://").and_then(|(_, rest)| rest.split_once('@'));
    if let Some((user_and_password, _)) = credentials.filter(|(info, _)| info.contains(':')) {
        assert!(!screen.contains(user_and_password), "{screen}");
        assert!(screen.contains(":***@"), "{screen}");
    }
    tui.select(&format!("Thermostat/{instance}"));
    tui.keys(&["Enter"]);
    // The members, the documentation of the first, and the footer's keys for them (waited
    // for together: a capture can catch the screen half drawn).
    tui.wait_until("the open thermostat", |s| {
        s.contains("Smart thermostat")
            && s.contains("> method   boost")
            && s.contains("Raises the set-point")
            && s.contains("Enter call/set/run")
    });

    // Signals arrive, live: the count goes up.
    let screen = tui.wait_until("a temperatureChanged signal", |s| signal_count(s).is_some());
    let first = signal_count(&screen).unwrap();
    let screen = tui.wait_until("another temperatureChanged signal", |s| {
        signal_count(s).is_some_and(|n| n > first)
    });
    shot("browse", &screen);

    // A method through its form: a value that is not a float is refused, with the reason.
    tui.keys(&["Enter"]);
    tui.wait_for(" call boost ");
    tui.type_text("warm");
    tui.keys(&["Enter"]);
    let screen = tui.wait_for("error: extraCelsius: `warm` is not a float");
    shot("form-error", &screen);
    tui.keys(&["BSpace", "BSpace", "BSpace", "BSpace"]);
    tui.type_text("1.5");
    tui.keys(&["Tab"]);
    tui.type_text("PT10M");
    tui.keys(&["Tab"]);
    tui.type_text("from the tmux test");
    let screen = tui.screen();
    shot("form", &screen);
    tui.keys(&["Enter"]);
    tui.wait_for("boost → endsAt: ");
    tui.select("getStatus");
    tui.keys(&["Enter"]);
    tui.wait_for("getStatus → mode: ");

    // A property: set it through its form, see the new value live; the server refuses 99.
    tui.select("setpoint");
    tui.keys(&["Enter"]);
    tui.wait_for(" set setpoint ");
    tui.keys(&["BSpace"; 12]);
    tui.type_text("99");
    tui.keys(&["Enter"]);
    tui.wait_for("set setpoint failed: ");
    tui.keys(&["Enter"]);
    tui.wait_for(" set setpoint ");
    tui.keys(&["BSpace"; 12]);
    tui.type_text("23.5");
    tui.keys(&["Enter"]);
    tui.wait_for("setpoint set to celsius: 23.5");
    tui.wait_until("the new set-point, live", |s| {
        s.lines().any(|l| l.contains("property setpoint") && l.contains("celsius: 23.5"))
    });

    // The thermostat's preheat runs to the end: its gauge fills from the feedback's percent.
    tui.select("preheat");
    tui.keys(&["Enter"]);
    tui.wait_for(" run preheat ");
    tui.type_text("22");
    tui.keys(&["Enter"]);
    let screen = tui.wait_until("the preheat's end", |s| {
        s.contains("preheat succeeded: reachedCelsius: ") && s.contains("Goal (c cancels)")
    });
    shot("preheat", &screen);

    // Another preheat is cancelled with `c` (the test servers take two seconds to preheat).
    tui.keys(&["Enter"]);
    tui.wait_for(" run preheat ");
    tui.type_text("24");
    tui.keys(&["Enter"]);
    tui.wait_for("preheat running · feedback ");
    tui.keys(&["c"]);
    tui.wait_for("preheat cancelled");

    // A long goal (the jobs service counts slowly) is cancelled with `c`.
    tui.keys(&["Tab"]);
    tui.select(&format!("Jobs/{instance}"));
    tui.keys(&["Enter"]);
    tui.wait_for("action   count");
    tui.select("count");
    tui.keys(&["Enter"]);
    tui.wait_for(" run count ");
    tui.type_text("1000");
    tui.keys(&["Tab"]);
    tui.type_text("100");
    tui.keys(&["Tab"]);
    tui.type_text("0");
    tui.keys(&["Enter"]);
    let screen = tui.wait_for("count running · feedback ");
    shot("goal", &screen);
    tui.keys(&["c"]);
    let screen = tui.wait_for("count cancelled");
    assert!(!screen.contains("count succeeded"), "{screen}");

    // The help overlay, then quitting restores the terminal.
    tui.keys(&["?"]);
    let screen = tui.wait_for("cancel the running goal");
    shot("help", &screen);
    tui.keys(&["?"]);
    tui.wait_until("the help closed", |s| !s.contains("cancel the running goal"));
    tui.keys(&["q"]);
    let screen = tui.wait_for("tui exited with 0");
    assert!(!screen.contains("Services at"), "the alternate screen was left:\n{screen}");
}

#[test]
fn the_tui_drives_the_thermostat_over_the_unix_socket() {
    let live = Live::unix();
    drive(&live, "unix:", true);
}

#[test]
fn the_tui_drives_the_thermostat_over_mqtt() {
    let Some(live) = Live::mqtt("tui") else { return };
    let broker = live.url.split('?').next().unwrap().to_owned();
    drive(&live, &broker, false);
}

/// The same over a brokered transport: the servers on the shared broker, the UI at its URL.
fn drive_on(broker: Option<switchboard_testkit::broker::SharedBroker>) {
    let Some(broker) = broker else { return };
    let live = Live::on_broker(&broker, "tui").expect("servers");
    drive(&live, &broker.url, false);
}

#[test]
fn the_tui_drives_the_thermostat_over_nats() {
    drive_on(switchboard_testkit::broker::shared_nats());
}

#[test]
fn the_tui_drives_the_thermostat_over_redis() {
    drive_on(switchboard_testkit::broker::shared_redis());
}

#[test]
fn the_tui_drives_the_thermostat_over_amqp() {
    drive_on(switchboard_testkit::broker::shared_rabbitmq());
}

#[test]
fn ctrl_c_quits_from_a_form_and_restores_the_terminal() {
    let live = Live::unix();
    let Some(tui) = Tmux::start(&live, "unix:") else { return };
    tui.wait_for("Thermostat/default");
    tui.select("Thermostat/default");
    tui.keys(&["Enter"]);
    tui.wait_for("Smart thermostat");
    tui.keys(&["Enter"]);
    tui.wait_for(" call boost ");
    tui.keys(&["C-c"]);
    let screen = tui.wait_for("tui exited with 0");
    assert!(!screen.contains("Services at"), "{screen}");
}

#[test]
fn instances_that_start_and_stop_come_and_go_in_the_list() {
    use switchboard::{Endpoint, transport::unix::UnixEndpoint};
    let live = Live::unix();
    let Some(tui) = Tmux::start(&live, "unix:") else { return };
    tui.wait_for("Thermostat/default");
    assert!(!tui.screen().contains("Thermostat/upstairs"));
    let socket = live.dir.path().join("switchboard/Thermostat/upstairs.sock");
    let endpoint = Endpoint::unix(UnixEndpoint::at(socket));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = support::rt().spawn(async move {
        thermostat_example::server::run_until(&endpoint, async {
            let _ = stopped.await;
        })
        .await
    });
    tui.wait_for("Thermostat/upstairs");
    let _ = stop.send(());
    support::rt().block_on(server).expect("the server task").expect("the server stops cleanly");
    tui.wait_until("the stopped instance to go", |s| {
        !s.contains("Thermostat/upstairs") && s.contains("Thermostat/default")
    });
}

#[test]
fn without_a_terminal_it_says_so() {
    let live = Live::unix();
    let output = live.run(&["tui"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`switchboard tui` needs a terminal"), "{stderr}");
}

#[test]
fn an_unreachable_broker_is_shown_not_fatal() {
    let live = Live::unix();
    // Nothing listens on port 1 of the loopback address.
    let Some(tui) = Tmux::start(&live, "mqtt://127.0.0.1:1") else { return };
    // The message wraps in the narrow pane.
    tui.wait_until("the discovery failure", |s| {
        s.contains("cannot list the services at")
            && s.contains("mqtt://127.0.0.1:1")
            && s.contains("q quit")
    });
    tui.keys(&["q"]);
    tui.wait_for("tui exited with 0");
}
