//! Real Python peers for cross-language tests (StingerIPC's and commlib-py's): a virtual
//! environment prepared once per test process by a `setup.sh`, and child Python processes killed
//! on drop.
//!
//! Outside CI, a machine without the Python a peer needs or without access to the package index
//! cannot run these tests; [`PythonPeers::get`] and [`PythonPeers::commlib`] then report the test
//! as skipped, with the reason (see [`prerequisite`]). Under `CI=true` the same failure panics,
//! so CI never skips.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use crate::prerequisite;

/// The directory with the interop interface, `setup.sh` and the Python scripts.
fn interop_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop");
    dir.canonicalize().unwrap_or(dir)
}

/// A prepared Python environment: StingerIPC's with its generated `interopprobeipc` package
/// ([`PythonPeers::get`]), or commlib-py's ([`PythonPeers::commlib`]).
#[derive(Debug)]
pub struct PythonPeers {
    python: PathBuf,
    generated: PathBuf,
    scripts: PathBuf,
}

/// Why the environment could not be prepared.
#[derive(Debug)]
struct SetupFailure {
    /// True when the machine lacks something (Python 3.12, the package index); false for a
    /// genuine failure, such as generated code that does not import.
    missing_prerequisite: bool,
    message: String,
}

/// StingerIPC's peers: the name the tests that use them know them by.
pub type StingerPeers = PythonPeers;

impl PythonPeers {
    /// Prepares the environment on first use (running `tests/interop/setup.sh`) and returns it,
    /// or `None`, with a skip notice, when this machine lacks what it needs.
    ///
    /// # Panics
    /// Under `CI=true`, on any failure. Elsewhere, when the failure is not a missing
    /// prerequisite (for example, StingerIPC's generated code does not import): that is a bug,
    /// not a property of the machine.
    pub fn get() -> Option<&'static PythonPeers> {
        static PEERS: OnceLock<Result<PythonPeers, SetupFailure>> = OnceLock::new();
        ready("StingerIPC's Python peers", PEERS.get_or_init(|| setup(interop_dir())))
    }

    /// commlib-py 0.13.2's environment (`tests/interop/commlib/setup.sh`), prepared on first use;
    /// its scripts are `tests/interop/commlib/*.py`. `None` and panics as for [`PythonPeers::get`].
    pub fn commlib() -> Option<&'static PythonPeers> {
        static PEERS: OnceLock<Result<PythonPeers, SetupFailure>> = OnceLock::new();
        ready(
            "commlib-py's Python peers",
            PEERS.get_or_init(|| setup(interop_dir().join("commlib"))),
        )
    }

    /// The virtual environment's Python interpreter.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// The directory holding the generated `interopprobeipc` package.
    pub fn generated(&self) -> &Path {
        &self.generated
    }

    /// A command running `script` (a file in `tests/interop/`) with the virtual environment's
    /// Python, with the generated package and the scripts importable.
    pub fn command(&self, script: &str) -> Command {
        let mut command = Command::new(&self.python);
        command
            .arg("-u")
            .arg(self.scripts.join(script))
            .env("PYTHONPATH", format!("{}:{}", self.generated.display(), self.scripts.display()))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null());
        command
    }

    /// Starts `script` with `args`; its standard output arrives line by line through
    /// [`PeerProcess::next_line`].
    ///
    /// # Panics
    /// If the interpreter cannot be started.
    pub fn spawn(&self, script: &str, args: &[&str]) -> PeerProcess {
        let mut command = self.command(script);
        command.args(args);
        PeerProcess::spawn(command, script)
    }
}

/// The prepared environment, `None` with a skip notice when the machine lacks a prerequisite,
/// or a panic (see [`PythonPeers::get`]).
fn ready(
    what: &str,
    prepared: &'static Result<PythonPeers, SetupFailure>,
) -> Option<&'static PythonPeers> {
    match prepared {
        Ok(peers) => Some(peers),
        Err(failure) if failure.missing_prerequisite => {
            prerequisite::missing(format_args!("{what} are unavailable: {}", failure.message));
            None
        }
        Err(failure) => panic!("{what} are unavailable: {}", failure.message),
    }
}

/// Runs `scripts/setup.sh` and reads the paths it reports.
fn setup(scripts: PathBuf) -> Result<PythonPeers, SetupFailure> {
    let script = scripts.join("setup.sh");
    let output = Command::new("bash").arg(&script).stdin(Stdio::null()).output().map_err(|e| {
        SetupFailure { missing_prerequisite: true, message: format!("cannot run bash: {e}") }
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let missing_prerequisite = matches!(output.status.code(), Some(2 | 3));
        return Err(SetupFailure {
            missing_prerequisite,
            message: format!("{} failed ({}):\n{}", script.display(), output.status, stderr.trim()),
        });
    }
    let value = |key: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
            .map(PathBuf::from)
            .ok_or_else(|| SetupFailure {
                missing_prerequisite: false,
                message: format!("{} printed no `{key}=` line:\n{stdout}", script.display()),
            })
    };
    Ok(PythonPeers { python: value("python")?, generated: value("generated")?, scripts })
}

/// A child process (usually a Python peer) whose standard output is read line by line; it is
/// killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct PeerProcess {
    name: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl PeerProcess {
    /// Starts `command`, naming it `name` in error messages; standard output and standard error
    /// are captured.
    ///
    /// # Panics
    /// If the program cannot be started.
    pub fn spawn(mut command: Command, name: &str) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let (sender, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0_u8; 4096];
            while let Ok(read @ 1..) = pipe.read(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..read]);
                collected.lock().unwrap_or_else(|e| e.into_inner()).push_str(&text);
            }
        });
        PeerProcess { name: name.to_owned(), child, lines, stderr }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The next line of standard output; `None` once the output has ended or `timeout` passed.
    pub async fn next_line(&mut self, timeout: Duration) -> Option<String> {
        tokio::time::timeout(timeout, self.lines.recv()).await.ok().flatten()
    }

    /// Waits for a line that ends with `wanted` (a test harness may print on the same line
    /// first), returning the lines before it; fails with the process's standard error if the
    /// line does not come within `timeout`.
    pub async fn wait_for(
        &mut self,
        wanted: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left).await {
                Some(line) if line.ends_with(wanted) => return Ok(before),
                Some(line) => before.push(line),
                None => {
                    return Err(format!(
                        "{} did not print {wanted:?} within {timeout:?}; stdout: {before:?}; stderr:\n{}",
                        self.name,
                        self.stderr()
                    ));
                }
            }
        }
    }

    /// Collects standard output until it ends, then waits for the exit status; fails if this
    /// takes longer than `timeout`.
    pub async fn finish(&mut self, timeout: Duration) -> Result<(ExitStatus, Vec<String>), String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) => lines.push(line),
                Ok(None) => break,
                Err(_) => {
                    return Err(format!(
                        "{} did not finish within {timeout:?}; stdout: {lines:?}; stderr:\n{}",
                        self.name,
                        self.stderr()
                    ));
                }
            }
        }
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok((status, lines)),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(None) => {
                    return Err(format!("{} closed its output but did not exit", self.name));
                }
                Err(e) => return Err(format!("wait for {}: {e}", self.name)),
            }
        }
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop with SIGTERM, as a service manager would.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
