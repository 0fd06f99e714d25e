//! Socket activation: the listening sockets a service manager passed this process
//! (`$LISTEN_FDS`, as `sd_listen_fds(3)` defines it), each taken by the server it is meant for.
//!
//! The variables are read once per process. A passed socket belongs to the server whose socket
//! path it is bound to, or whose interface it is named after (`FileDescriptorName=` in the
//! `.socket` unit, passed in `$LISTEN_FDNAMES`). Every passed descriptor is made close-on-exec, so
//! children never inherit them; the variables are unset too when that is sound (the process
//! has one thread), and `$LISTEN_PID` keeps children from using them otherwise.

use std::{
    env,
    mem::ManuallyDrop,
    os::{
        fd::{FromRawFd, OwnedFd, RawFd},
        unix::net::UnixListener,
    },
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard, OnceLock},
};

use switchboard_core::{TransportError, TransportErrorKind};
use tracing::{debug, warn};

/// The first descriptor a service manager passes.
const FIRST_FD: RawFd = 3;

/// More descriptors than any process is allowed to hold: a larger `$LISTEN_FDS` is malformed.
const MAX_PASSED: RawFd = 1 << 20;

const LISTEN_PID: &str = "LISTEN_PID";
const LISTEN_FDS: &str = "LISTEN_FDS";
const LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";

/// One descriptor the service manager passed.
#[derive(Debug)]
struct Passed {
    fd: RawFd,
    /// Its `FileDescriptorName=`, when the service manager named it.
    name: Option<String>,
    /// The path the socket is bound to, when it is a Unix socket with one.
    path: Option<PathBuf>,
    /// Whether a server took it (then it is owned, and closed, by that server).
    taken: bool,
}

/// The passed descriptors, or why the variables describing them are unusable.
type Registry = Result<Vec<Passed>, String>;

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    switchboard_core::sync::lock(REGISTRY.get_or_init(|| Mutex::new(read_environment())))
}

/// The listening socket passed for the server of `interface` at `path`, if there is one.
///
/// Fails when the variables are malformed, or when the socket meant for this server is not a
/// listening Unix stream socket: serving elsewhere would leave the passed socket's clients
/// waiting forever.
pub(crate) fn take(path: &Path, interface: &str) -> Result<Option<UnixListener>, TransportError> {
    let mut registry = registry();
    let passed = registry.as_mut().map_err(|reason| {
        TransportError::new(TransportErrorKind::InvalidAddress, reason.clone())
    })?;
    let meant_for_us = |p: &Passed| {
        !p.taken && (p.path.as_deref() == Some(path) || p.name.as_deref() == Some(interface))
    };
    let Some(socket) = passed.iter_mut().find(|p| meant_for_us(p)) else {
        let others: Vec<String> = passed.iter().filter(|p| !p.taken).map(describe).collect();
        if !others.is_empty() {
            warn!(
                path = %path.display(),
                passed = %others.join(", "),
                "the service manager passed sockets, but none is bound to this server's path or named `{interface}`; binding the path itself"
            );
        }
        return Ok(None);
    };
    if let Err(reason) = check_listening_stream(socket.fd) {
        return Err(TransportError::new(
            TransportErrorKind::InvalidAddress,
            format!(
                "the service manager passed {} for this server, but it is not a listening Unix stream socket ({reason}); use ListenStream= in the .socket unit",
                describe(socket)
            ),
        ));
    }
    socket.taken = true;
    debug!(socket = %describe(socket), "serving a socket the service manager passed");
    // SAFETY: the service manager passed this descriptor to this process (`$LISTEN_PID` names
    // it), it is open (checked when read), and `taken` makes this the only owner: no other
    // server takes it again.
    let owned = unsafe { OwnedFd::from_raw_fd(socket.fd) };
    let listener = UnixListener::from(owned);
    listener.set_nonblocking(true).map_err(|e| {
        TransportError::io(
            TransportErrorKind::Io,
            "cannot make a passed socket non-blocking".to_owned(),
            e,
        )
    })?;
    Ok(Some(listener))
}

fn describe(passed: &Passed) -> String {
    let mut text = format!("fd {}", passed.fd);
    if let Some(name) = &passed.name {
        text.push_str(&format!(" named `{name}`"));
    }
    if let Some(path) = &passed.path {
        text.push_str(&format!(" at {}", path.display()));
    }
    text
}

/// Reads the variables as `sd_listen_fds_with_names(3)` does: none when they are unset or name
/// another process, an error when they are malformed.
fn read_environment() -> Registry {
    let passed = read_variables(
        env::var(LISTEN_PID).ok().as_deref(),
        env::var(LISTEN_FDS).ok().as_deref(),
        env::var(LISTEN_FDNAMES).ok().as_deref(),
        std::process::id(),
    )?;
    let passed = passed
        .into_iter()
        .map(|(fd, name)| {
            close_on_exec(fd).map_err(|e| {
                format!("LISTEN_FDS names fd {fd}, which this process cannot use: {e}")
            })?;
            Ok(Passed { fd, name, path: bound_path(fd), taken: false })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if !passed.is_empty() {
        unset_variables();
    }
    Ok(passed)
}

/// The descriptors and their names that the variables describe for process `pid`.
fn read_variables(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    names: Option<&str>,
    pid: u32,
) -> Result<Vec<(RawFd, Option<String>)>, String> {
    let Some(listen_pid) = listen_pid else { return Ok(Vec::new()) };
    let listen_pid: u32 = listen_pid
        .trim()
        .parse()
        .map_err(|_| format!("{LISTEN_PID}=`{listen_pid}` is not a process id"))?;
    if listen_pid != pid {
        // Inherited from a parent the service manager started: not for us.
        return Ok(Vec::new());
    }
    let Some(listen_fds) = listen_fds else { return Ok(Vec::new()) };
    let count: RawFd = listen_fds
        .trim()
        .parse()
        .ok()
        .filter(|count| (0..=MAX_PASSED).contains(count))
        .ok_or_else(|| format!("{LISTEN_FDS}=`{listen_fds}` is not a number of descriptors"))?;
    let names: Vec<Option<String>> = match names {
        None => vec![None; count as usize],
        Some(names) => {
            let names: Vec<Option<String>> =
                names.split(':').map(|n| Some(n.to_owned()).filter(|n| !n.is_empty())).collect();
            if names.len() != count as usize {
                return Err(format!(
                    "{LISTEN_FDNAMES} names {} descriptors, but {LISTEN_FDS} passes {count}",
                    names.len()
                ));
            }
            names
        }
    };
    Ok((FIRST_FD..FIRST_FD + count).zip(names).collect())
}

/// Sets `FD_CLOEXEC`; fails when `fd` is not open.
fn close_on_exec(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: `fcntl` with F_GETFD and F_SETFD reads and sets descriptor flags only; it fails
    // with EBADF on a descriptor that is not open and touches no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The path an open descriptor's Unix socket is bound to, if it is one and has one.
fn bound_path(fd: RawFd) -> Option<PathBuf> {
    // SAFETY: `fd` is open (checked by `close_on_exec`), and `ManuallyDrop` never closes it: the
    // listener only borrows it to ask for its address.
    let borrowed = ManuallyDrop::new(unsafe { UnixListener::from_raw_fd(fd) });
    borrowed.local_addr().ok()?.as_pathname().map(Path::to_path_buf)
}

/// Checks that `fd` is a stream socket that listens; says what it is otherwise.
fn check_listening_stream(fd: RawFd) -> Result<(), String> {
    let option = |name: libc::c_int| -> Result<libc::c_int, String> {
        let mut value: libc::c_int = 0;
        let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `length` are valid for writes of an int and its size, as
        // `getsockopt` requires for these integer options.
        let result = unsafe {
            libc::getsockopt(fd, libc::SOL_SOCKET, name, (&raw mut value).cast(), &mut length)
        };
        if result < 0 {
            return Err(format!("not a socket: {}", std::io::Error::last_os_error()));
        }
        Ok(value)
    };
    if option(libc::SO_TYPE)? != libc::SOCK_STREAM {
        return Err("not a stream socket".to_owned());
    }
    if option(libc::SO_ACCEPTCONN)? == 0 {
        return Err("not listening".to_owned());
    }
    // SAFETY: as in `bound_path`: open, and never closed through this borrow.
    let borrowed = ManuallyDrop::new(unsafe { UnixListener::from_raw_fd(fd) });
    borrowed.local_addr().map(drop).map_err(|_| "not a Unix socket".to_owned())
}

/// Unsets the variables, as `sd_listen_fds(1)` would, when that is sound: only while this is
/// the process's only thread, since another thread may read the environment at any time.
fn unset_variables() {
    if !only_thread() {
        debug!(
            "leaving LISTEN_* in the environment: the process runs other threads; LISTEN_PID keeps children from using them"
        );
        return;
    }
    for variable in [LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES] {
        // SAFETY: this is the process's only thread, so nothing reads or writes the
        // environment at the same time; only this thread could start another one.
        unsafe { env::remove_var(variable) };
    }
}

/// Whether the process has exactly one thread (Linux: `/proc/self/status`).
fn only_thread() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return false };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .is_some_and(|count| count.trim() == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_variables_as_sd_listen_fds_does() {
        let pid = 4242;
        assert_eq!(read_variables(None, Some("2"), None, pid), Ok(vec![]));
        assert_eq!(read_variables(Some("1"), Some("2"), None, pid), Ok(vec![]), "another process");
        assert_eq!(read_variables(Some("4242"), None, None, pid), Ok(vec![]));
        assert_eq!(read_variables(Some("4242"), Some("0"), None, pid), Ok(vec![]));
        assert_eq!(
            read_variables(Some("4242"), Some("2"), None, pid),
            Ok(vec![(3, None), (4, None)])
        );
        assert_eq!(
            read_variables(Some("4242"), Some("2"), Some("Thermostat:"), pid),
            Ok(vec![(3, Some("Thermostat".to_owned())), (4, None)])
        );
        let error = |pid_text, fds, names| read_variables(Some(pid_text), fds, names, pid);
        assert!(error("x", Some("1"), None).unwrap_err().contains("LISTEN_PID=`x`"));
        assert!(error("4242", Some("-1"), None).unwrap_err().contains("LISTEN_FDS=`-1`"));
        assert!(error("4242", Some("many"), None).unwrap_err().contains("LISTEN_FDS=`many`"));
        assert!(error("4242", Some("2"), Some("a")).unwrap_err().contains("names 1 descriptors"));
    }
}
