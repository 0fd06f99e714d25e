//! What every scenario shares: frames of the Unix wire protocol, the 64-byte payload, child
//! server processes, and the statistics of interleaved rounds.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// The JSON object every method and signal carries: `{"data":"…"}`, 64 bytes encoded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Msg {
    pub(crate) data: String,
}

/// The 53-character string that makes `{"data":"…"}` exactly 64 bytes.
pub(crate) fn payload_data() -> String {
    "x".repeat(53)
}

/// `blast`'s arguments, as the raw baselines send them too.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Blast {
    pub(crate) count: u32,
    pub(crate) data: String,
}

/// Frame kinds used by the raw baselines (docs/wire/unix.md §3).
pub(crate) const CALL: u8 = 0x10;
pub(crate) const REPLY: u8 = 0x11;
pub(crate) const SUBSCRIBE: u8 = 0x30;
pub(crate) const SIGNAL: u8 = 0x32;

/// Appends one frame (20-byte header, name, payload) to `out`.
pub(crate) fn put_frame(out: &mut Vec<u8>, kind: u8, id: u64, name: &str, payload: &[u8]) {
    let length = 20 + name.len() + payload.len();
    out.extend_from_slice(&(length as u32).to_be_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(payload);
}

/// A parsed frame body (everything after the length field).
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub(crate) kind: u8,
    pub(crate) id: u64,
    pub(crate) name: &'a str,
    pub(crate) payload: &'a [u8],
}

pub(crate) fn parse_frame(body: &[u8]) -> Frame<'_> {
    let kind = body[0];
    let name_len = u16::from_be_bytes([body[2], body[3]]) as usize;
    let id = u64::from_be_bytes(body[4..12].try_into().expect("8 bytes"));
    let name = std::str::from_utf8(&body[20..20 + name_len]).expect("UTF-8 name");
    Frame { kind, id, name, payload: &body[20 + name_len..] }
}

/// The environment variable that runs server roles under callgrind (see [`Server::spawn`]).
const PROFILE_SERVERS: &str = "SB_PROFILE_SERVERS";

/// The CPU every server the suite measures runs on, when [`pinning`].
const SERVER_CPU: &str = "1";

/// Whether servers are kept on a CPU of their own: on a machine with two CPUs or more, where
/// `taskset` works. Left to the scheduler, a client and its server share a CPU in some rounds
/// and not in others, and a throughput round then runs at either of two rates about 2× apart
/// (row 5 swung from 0.77× to 1.50× between runs; with the servers pinned, 0.96× to 1.02×).
/// The client and the shared brokers are left to the scheduler.
pub(crate) fn pinning() -> bool {
    static PINNING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PINNING.get_or_init(|| {
        std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
            && Command::new("taskset")
                .args(["-c", SERVER_CPU, "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    })
}

/// A command for a server the suite measures (its own roles and the peers' servers): on the
/// servers' CPU when [`pinning`], so that it never shares the client's.
pub(crate) fn server_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    if pinning() {
        let mut command = Command::new("taskset");
        command.args(["-c", SERVER_CPU]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A child server process (this binary in a server role), killed on drop.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
}

impl Server {
    /// Starts `switchboard-bench serve ROLE ADDR` and waits for its `ready` line.
    ///
    /// With `SB_PROFILE_SERVERS=DIR` in the environment, the role runs under callgrind, which
    /// writes `DIR/ROLE.PID` when the server is stopped.
    pub(crate) fn spawn(role: &str, addr: &str) -> Server {
        let exe = std::env::current_exe().expect("own path");
        let mut command = match std::env::var(PROFILE_SERVERS) {
            Ok(dir) => {
                let mut command = Command::new("valgrind");
                command
                    .args(["--tool=callgrind", "--quiet"])
                    .arg(format!("--callgrind-out-file={dir}/{role}.%p"))
                    .arg(&exe);
                command
            }
            Err(_) => server_command(&exe),
        };
        let mut child = command
            .args(["serve", role, addr])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a server role");
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read ready");
        assert_eq!(line.trim(), "ready", "server role {role} did not start");
        Server { child }
    }

    /// Starts `switchboard-bench serve ROLE ADDR` as [`Server::spawn`] does, but reports a
    /// server that does not start as an error, for rows that go on without it.
    pub(crate) fn try_spawn(role: &str, addr: &str, what: &str) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| format!("spawn {what}: {e}"))?;
        let mut command = server_command(exe);
        command.args(["serve", role, addr]);
        Server::spawn_command(command, what)
    }

    /// Starts an arbitrary command that prints `ready` (or a line starting with `ready`).
    pub(crate) fn spawn_command(mut command: Command, what: &str) -> Result<Server, String> {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = command.spawn().map_err(|e| format!("spawn {what}: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                let _ = child.kill();
                return Err(format!("{what} exited before it was ready"));
            }
            if line.trim_start().starts_with("ready") {
                break;
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        Ok(Server { child })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::env::var_os(PROFILE_SERVERS).is_some() {
            // SIGTERM, so that callgrind writes its profile.
            let _ = Command::new("kill").arg(self.child.id().to_string()).status();
            let _ = self.child.wait();
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Latency samples of one round, in nanoseconds.
#[derive(Debug, Default, Clone)]
pub(crate) struct Samples(pub(crate) Vec<u64>);

impl Samples {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Samples(Vec::with_capacity(n))
    }
    pub(crate) fn push(&mut self, d: Duration) {
        self.0.push(d.as_nanos() as u64);
    }
    /// The `q` quantile (0..=1), nearest rank, in µs.
    pub(crate) fn quantile_us(&self, q: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort_unstable();
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1] as f64 / 1000.0
    }
}

/// The result of a paired latency comparison.
#[derive(Debug, Clone)]
pub(crate) struct Paired {
    /// p50 and p99 over all of B's samples (the baseline), µs.
    pub(crate) base_p50: f64,
    pub(crate) base_p99: f64,
    /// The same for ours.
    pub(crate) ours_p50: f64,
    pub(crate) ours_p99: f64,
    /// Median of per-round p50 ratios (ours / baseline).
    pub(crate) ratio_p50: f64,
    /// Median of per-round p99 ratios.
    pub(crate) ratio_p99: f64,
    pub(crate) rounds: usize,
    pub(crate) per_round: usize,
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Combines interleaved rounds (baseline round i, ours round i) into a [`Paired`].
pub(crate) fn pair(base: &[Samples], ours: &[Samples]) -> Paired {
    let all =
        |rounds: &[Samples]| Samples(rounds.iter().flat_map(|s| s.0.iter().copied()).collect());
    let (b, o) = (all(base), all(ours));
    let ratios = |q: f64| {
        median(base.iter().zip(ours).map(|(b, o)| o.quantile_us(q) / b.quantile_us(q)).collect())
    };
    Paired {
        base_p50: b.quantile_us(0.5),
        base_p99: b.quantile_us(0.99),
        ours_p50: o.quantile_us(0.5),
        ours_p99: o.quantile_us(0.99),
        ratio_p50: ratios(0.5),
        ratio_p99: ratios(0.99),
        rounds: base.len(),
        per_round: base.first().map_or(0, |s| s.0.len()),
    }
}

/// A fresh private directory for sockets, removed on drop.
pub(crate) fn socket_dir() -> tempfile_dir::Dir {
    tempfile_dir::Dir::new()
}

pub(crate) mod tempfile_dir {
    use std::path::PathBuf;

    /// A directory under the temp dir, removed on drop.
    #[derive(Debug)]
    pub(crate) struct Dir(PathBuf);

    impl Dir {
        pub(crate) fn new() -> Dir {
            let path = std::env::temp_dir().join(format!(
                "sb-bench-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_nanos()
            ));
            std::fs::create_dir_all(&path).expect("create socket dir");
            Dir(path)
        }
        pub(crate) fn path(&self, name: &str) -> String {
            self.0.join(name).display().to_string()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs `measure` to its end on a runtime of its own (one thread, as the client rows run).
pub(crate) fn measure_on_runtime<T>(
    measure: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(measure)
}
