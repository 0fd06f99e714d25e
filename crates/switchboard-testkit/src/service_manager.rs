//! Plays systemd for tests: starts a service with listening sockets passed as systemd passes
//! them (`$LISTEN_FDS` from fd 3, `$LISTEN_PID` naming the service), and receives what a service
//! notifies (`$NOTIFY_SOCKET`).

use std::{
    os::{
        fd::{AsRawFd, BorrowedFd, RawFd},
        unix::process::CommandExt,
    },
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use crate::ChildProcess;

/// The most sockets [`spawn_service`] passes.
const MAX_SOCKETS: usize = 8;

/// Starts `program` with `args` as systemd starts a service: with `env` set, and with `sockets`
/// (any descriptors, as a test may pass the wrong kind) passed from fd 3 on, described by `$LISTEN_FDS`, `$LISTEN_FDNAMES` (each socket's name; an
/// empty name is passed as such) and `$LISTEN_PID`, which names the service itself (a shell
/// sets it, then runs the program in its place).
///
/// # Panics
/// With more than eight sockets, or if the process cannot be started.
pub fn spawn_service(
    program: impl AsRef<Path>,
    args: &[&str],
    sockets: &[(BorrowedFd<'_>, &str)],
    env: &[(&str, &str)],
) -> ChildProcess {
    assert!(sockets.len() <= MAX_SOCKETS, "at most {MAX_SOCKETS} sockets");
    let mut command = Command::new("/bin/sh");
    // `$$` is the shell's pid, which `exec` hands on to the program.
    let script =
        if sockets.is_empty() { r#"exec "$0" "$@""# } else { r#"LISTEN_PID=$$ exec "$0" "$@""# };
    command.arg("-c").arg(script).arg(program.as_ref()).args(args);
    command.envs(env.iter().copied()).stdin(Stdio::null()).stdout(Stdio::null());
    if !sockets.is_empty() {
        let names: Vec<&str> = sockets.iter().map(|(_, name)| *name).collect();
        command.env("LISTEN_FDS", sockets.len().to_string());
        command.env("LISTEN_FDNAMES", names.join(":"));
        let sources: Vec<RawFd> = sockets.iter().map(|(socket, _)| socket.as_raw_fd()).collect();
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: it calls `fcntl`, `dup2` and `close` only, and
        // allocates nothing (`sources` was made before the fork).
        unsafe {
            command.pre_exec(move || {
                // Each source first moves above the range it goes to, so that placing one never
                // overwrites another that is still to be placed.
                let mut moved = [0; MAX_SOCKETS];
                for (slot, source) in moved.iter_mut().zip(&sources) {
                    *slot = libc::fcntl(*source, libc::F_DUPFD, 3 + MAX_SOCKETS as RawFd);
                    if *slot < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (target, high) in (3..).zip(&moved[..sources.len()]) {
                    // `dup2` leaves the copy open across exec.
                    if libc::dup2(*high, target) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(*high);
                }
                Ok(())
            });
        }
    }
    ChildProcess::spawn_command(command)
}

/// A notification socket like systemd's: a Unix datagram socket whose address a service gets in
/// `$NOTIFY_SOCKET`.
#[derive(Debug)]
pub struct NotifySocket {
    socket: tokio::net::UnixDatagram,
    address: String,
    _dir: Option<tempfile::TempDir>,
}

impl NotifySocket {
    /// A socket at a path in a fresh directory.
    ///
    /// # Panics
    /// If it cannot be made; must be called within a Tokio runtime.
    pub fn at_path() -> Self {
        let dir =
            tempfile::Builder::new().prefix("switchboard-notify-").tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let socket = tokio::net::UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifySocket { socket, address: path.display().to_string(), _dir: Some(dir) }
    }

    /// A socket with an abstract name (Linux), which `$NOTIFY_SOCKET` writes as `@name`.
    ///
    /// # Panics
    /// If it cannot be made; must be called within a Tokio runtime.
    #[cfg(target_os = "linux")]
    pub fn abstract_name() -> Self {
        use std::os::linux::net::SocketAddrExt;
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("switchboard-test-notify-{}-{n}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(&name).expect("a name");
        let socket = std::os::unix::net::UnixDatagram::bind_addr(&address).expect("bind");
        socket.set_nonblocking(true).expect("non-blocking");
        let socket = tokio::net::UnixDatagram::from_std(socket).expect("a Tokio socket");
        NotifySocket { socket, address: format!("@{name}"), _dir: None }
    }

    /// The value for `$NOTIFY_SOCKET`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The next notification, or `None` if none arrives within `wait`.
    pub async fn next(&self, wait: Duration) -> Option<String> {
        let mut buffer = vec![0; 4096];
        let received = tokio::time::timeout(wait, self.socket.recv(&mut buffer)).await.ok()?;
        let length = received.expect("receive a notification");
        Some(String::from_utf8_lossy(&buffer[..length]).into_owned())
    }
}
