//! Live servers for the shell tests, and running the binary against them.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use switchboard::{Endpoint, server::ServerOptions, transport::unix::UnixEndpoint};
use switchboard_tests::{fixtures::serve_jobs, jobs::JobsServer};
use tokio::sync::oneshot;

/// How long each of the five steps of the test thermostat's preheat lasts (the example's own
/// default is 40 ms): a goal of two seconds, which the console and TUI tests can cancel.
pub(crate) const PREHEAT_STEP: Duration = Duration::from_millis(400);

/// The runtime the in-process servers run on.
pub(crate) fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    })
}

/// The `switchboard` binary.
pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_switchboard")
}

/// A private runtime directory (`XDG_RUNTIME_DIR`) with servers in the standard layout.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) url: String,
    stops: Vec<oneshot::Sender<()>>,
    _jobs: Vec<JobsServer>,
}

impl Live {
    /// A thermostat and a jobs server on Unix sockets in a fresh runtime directory.
    pub(crate) fn unix() -> Live {
        let dir = tempfile::Builder::new().prefix("sb-shell-").tempdir().unwrap();
        let mut live = Live { url: "unix:".to_owned(), dir, stops: Vec::new(), _jobs: Vec::new() };
        let base = live.dir.path().join("switchboard");
        let thermostat = Endpoint::unix(UnixEndpoint::at(base.join("Thermostat/default.sock")));
        let jobs = Endpoint::unix(UnixEndpoint::at(base.join("Jobs/default.sock")));
        live.start(thermostat, jobs);
        for name in ["Thermostat", "Jobs"] {
            wait_for(&base.join(name).join("default.sock"));
        }
        live
    }

    /// The same servers on the shared MQTT broker, under unique instances; `None` to skip.
    pub(crate) fn mqtt(tag: &str) -> Option<Live> {
        Live::on_broker(&switchboard_testkit::broker::shared_mosquitto()?, tag)
    }

    /// The same servers on a shared broker, under unique instances.
    pub(crate) fn on_broker(
        broker: &switchboard_testkit::broker::SharedBroker,
        tag: &str,
    ) -> Option<Live> {
        Some(Live::on_url(&broker.url, tag))
    }

    /// The same servers on the broker at `broker_url` (without a query), under unique
    /// instances; `SWITCHBOARD_URL` is that URL with the instance.
    pub(crate) fn on_url(broker_url: &str, tag: &str) -> Live {
        let instance = format!("cli-{tag}-{}", std::process::id());
        let dir = tempfile::Builder::new().prefix("sb-shell-").tempdir().unwrap();
        let url = format!("{broker_url}?instance={instance}");
        let mut live = Live { url: url.clone(), dir, stops: Vec::new(), _jobs: Vec::new() };
        let endpoint = Endpoint::parse(&url).unwrap();
        live.start(endpoint.clone(), endpoint);
        std::thread::sleep(Duration::from_millis(500));
        live
    }

    fn start(&mut self, thermostat: Endpoint, jobs: Endpoint) {
        let (stop, stopped) = oneshot::channel::<()>();
        self.stops.push(stop);
        rt().spawn(async move {
            let zone = thermostat_example::server::Zone::with_preheat_step(PREHEAT_STEP);
            let _ = thermostat_example::server::run_zone_until(&thermostat, zone, async {
                let _ = stopped.await;
            })
            .await;
        });
        let server = rt().block_on(serve_jobs(&jobs, ServerOptions::default()));
        self._jobs.push(server);
    }

    /// The instance the servers serve, from the URL.
    pub(crate) fn instance(&self) -> String {
        self.url.split("instance=").nth(1).unwrap_or("default").to_owned()
    }

    /// A command running the binary against these servers.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin());
        command.args(args);
        self.environment(&mut command);
        command
    }

    /// Points `command` at these servers, in their directory, with no colour settings inherited.
    fn environment(&self, command: &mut Command) {
        command
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env("SWITCHBOARD_URL", &self.url)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
    }

    /// Runs the binary on a pseudo-terminal (util-linux `script`) with `TERM=xterm` and `env`, as
    /// at a terminal; returns everything the terminal showed.
    pub(crate) fn on_terminal(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let line: Vec<String> =
            std::iter::once(bin()).chain(args.iter().copied()).map(|a| format!("'{a}'")).collect();
        let mut script = Command::new("script");
        script.args(["-qec", &line.join(" "), "/dev/null"]);
        self.environment(&mut script);
        script.env("TERM", "xterm").envs(env.iter().copied());
        let output = run_bounded(script, Duration::from_secs(30));
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs the binary to completion (within 30 s).
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args), Duration::from_secs(30))
    }

    /// Runs and expects success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs and parses the one JSON object printed.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?} printed {out:?}: {e}"))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}

/// Waits (at most 10 s) for a path to appear.
pub(crate) fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a command, killing it if it outlives `limit`.
pub(crate) fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("binary runs");
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(id as i32, libc::SIGKILL) };
            panic!("{command:?} did not finish within {limit:?}");
        }
    }
}

/// Sends a signal to a process.
pub(crate) fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child of this test.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Output with volatile parts replaced: datetimes, UUIDs and the temporary directory.
pub(crate) fn normalise(text: &str, dir: &Path) -> String {
    let text = text.replace(&dir.display().to_string(), "[dir]");
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let digit = |c: char| c.is_ascii_digit();
    let hex = |c: char| c.is_ascii_hexdigit();
    while i < chars.len() {
        // 2026-11-21T06:07:29.410618915Z
        let date_shape = "dddd-dd-ddTdd:dd:dd";
        if i + date_shape.len() <= chars.len()
            && date_shape
                .chars()
                .zip(&chars[i..])
                .all(|(s, c)| if s == 'd' { digit(*c) } else { s == *c })
        {
            let mut j = i + date_shape.len();
            if chars.get(j) == Some(&'.') {
                j += 1;
                while chars.get(j).is_some_and(|c| digit(*c)) {
                    j += 1;
                }
            }
            if chars.get(j) == Some(&'Z') {
                j += 1;
            }
            out.push_str("[datetime]");
            i = j;
            continue;
        }
        let uuid_shape = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
        if i + uuid_shape.len() <= chars.len()
            && uuid_shape
                .chars()
                .zip(&chars[i..])
                .all(|(s, c)| if s == 'x' { hex(*c) } else { s == *c })
        {
            out.push_str("[uuid]");
            i += uuid_shape.len();
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The interface files of the examples.
pub(crate) fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

/// Exit code and both streams, for snapshots.
pub(crate) fn transcript(live: &Live, args: &[&str]) -> String {
    let output = live.run(args);
    normalise(
        &format!(
            "$ switchboard {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        live.dir.path(),
    )
}
