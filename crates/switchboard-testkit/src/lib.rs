//! Helpers for switchboard's own tests: private socket directories, child server processes,
//! brokers (shared, private, in memory) and waiting with deadlines, so no test can hang.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use switchboard::{Endpoint, transport::unix::UnixEndpoint};

pub mod broker;
pub mod memory;
pub mod node;
pub mod prerequisite;
pub mod python;
pub mod service_manager;

/// A private directory for the sockets of one test, removed when dropped.
#[derive(Debug)]
pub struct SocketDir {
    dir: tempfile::TempDir,
}

impl SocketDir {
    /// Creates a fresh directory.
    ///
    /// # Panics
    /// If the temporary directory cannot be created; a test cannot go on without it.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-test-")
            .tempdir()
            .expect("create a temporary socket directory");
        SocketDir { dir }
    }

    /// The directory itself, for other files a test keeps there.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The path of socket `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.sock"))
    }

    /// A Unix-socket endpoint for socket `name` inside the directory.
    pub fn endpoint(&self, name: &str) -> Endpoint {
        Endpoint::unix(UnixEndpoint::at(self.path(name)))
    }
}

impl Default for SocketDir {
    fn default() -> Self {
        Self::new()
    }
}

/// Waits until `path` exists, or fails after `timeout`.
pub async fn wait_for_path(path: &Path, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() > deadline {
            return Err(format!("{} did not appear within {timeout:?}", path.display()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// A child process that is killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct ChildProcess {
    child: Option<Child>,
}

impl ChildProcess {
    /// Starts `program` with `args`, inheriting stderr so its log shows in test output.
    ///
    /// # Panics
    /// If the program cannot be started.
    pub fn spawn(program: impl AsRef<Path>, args: &[&str]) -> Self {
        let mut command = Command::new(program.as_ref());
        command.args(args).stdin(Stdio::null()).stdout(Stdio::null());
        Self::spawn_command(command)
    }

    /// Starts `command`, its stderr inherited so its log shows in test output.
    ///
    /// # Panics
    /// If the program cannot be started.
    pub fn spawn_command(mut command: Command) -> Self {
        let child = command
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
        ChildProcess { child: Some(child) }
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the process to stop with SIGTERM, as systemd does, and waits for it to exit, for at
    /// most `timeout`. Returns its exit status, or `None` if it was still running (then it is
    /// killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let pid = libc::pid_t::try_from(self.id()?).expect("a process id fits pid_t");
        // SAFETY: `kill` has no memory-safety preconditions; the child is ours and not yet
        // reaped, so the pid still names it.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        self.exit_status(timeout)
    }

    /// Waits for the process to exit by itself, for at most `timeout`. Returns its exit
    /// status, or `None` if it was still running (then it is killed).
    pub fn exit_status(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends test logs to the test's output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
