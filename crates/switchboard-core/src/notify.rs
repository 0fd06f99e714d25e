//! What a process's servers tell its service manager through systemd's notify protocol
//! (`$NOTIFY_SOCKET`, as `sd_notify(3)` defines it): `READY=1` once the first server serves,
//! `STOPPING=1` when the last one shuts down, and `WATCHDOG=1` every half `$WATCHDOG_USEC` while
//! any serves, when the service manager asks for a watchdog.
//!
//! Without `$NOTIFY_SOCKET` nothing is sent. A failed notification is logged, never an error:
//! the servers work on without their service manager's bookkeeping.

use std::{
    env, io,
    os::unix::net::UnixDatagram,
    sync::{Mutex, MutexGuard, OnceLock},
    time::Duration,
};

use tokio::task::AbortHandle;

const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// The servers running in this process, and the watchdog task while any runs.
#[derive(Debug, Default)]
struct Process {
    serving: usize,
    watchdog: Option<AbortHandle>,
}

fn process() -> MutexGuard<'static, Process> {
    static PROCESS: Mutex<Process> = Mutex::new(Process { serving: 0, watchdog: None });
    crate::sync::lock(&PROCESS)
}

/// Held by a running server. The first one makes the process ready; dropping the last one
/// (when the server shuts down or is dropped) says the process stops.
#[derive(Debug)]
pub(crate) struct Serving(());

/// Counts a server that started serving `what` (such as `Thermostat (instance default)`).
///
/// Must be called within a Tokio runtime: the watchdog pings from a task of it.
pub(crate) fn serving(what: &str) -> Serving {
    let mut process = process();
    process.serving += 1;
    if process.serving == 1 {
        send(&format!("READY=1\nSTATUS=serving {what}"));
        if let Some(interval) = watchdog_interval() {
            let pings = tokio::spawn(async move {
                let mut ticks = tokio::time::interval(interval);
                loop {
                    ticks.tick().await;
                    send("WATCHDOG=1");
                }
            });
            process.watchdog = Some(pings.abort_handle());
        }
    } else {
        send(&format!("STATUS=serving {what}, and {} more", process.serving - 1));
    }
    Serving(())
}

impl Drop for Serving {
    fn drop(&mut self) {
        let mut process = process();
        process.serving -= 1;
        if process.serving == 0 {
            if let Some(watchdog) = process.watchdog.take() {
                watchdog.abort();
            }
            send("STOPPING=1\nSTATUS=stopping");
        }
    }
}

/// How often to ping the watchdog: half its timeout, when the service manager set one for this
/// process (`$WATCHDOG_PID`, when set, names it).
fn watchdog_interval() -> Option<Duration> {
    let usec = env::var(WATCHDOG_USEC).ok()?;
    let interval =
        parse_watchdog(&usec, env::var(WATCHDOG_PID).ok().as_deref(), std::process::id());
    if interval.is_none() {
        tracing::debug!(%usec, "no watchdog pings: WATCHDOG_USEC is not for this process or not a duration");
    }
    interval
}

/// The ping interval for `$WATCHDOG_USEC` and `$WATCHDOG_PID` in process `pid`.
fn parse_watchdog(usec: &str, watchdog_pid: Option<&str>, pid: u32) -> Option<Duration> {
    if let Some(watchdog_pid) = watchdog_pid
        && watchdog_pid.trim().parse::<u32>().ok() != Some(pid)
    {
        return None;
    }
    let usec: u64 = usec.trim().parse().ok().filter(|usec| *usec > 0)?;
    Some(Duration::from_micros(usec) / 2)
}

/// Sends `state` to the service manager, if it listens; a failure is logged.
fn send(state: &str) {
    static SOCKET: OnceLock<Option<String>> = OnceLock::new();
    let Some(address) = SOCKET.get_or_init(|| env::var(NOTIFY_SOCKET).ok()) else { return };
    if let Err(error) = send_to(address, state) {
        tracing::warn!(%address, %error, state, "could not notify the service manager");
    }
}

/// Sends one datagram to the socket `address` names: a path, or with `@` an abstract name.
fn send_to(address: &str, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    // A service manager that cannot keep up misses a notification; the server never waits.
    socket.set_nonblocking(true)?;
    let sent = if let Some(name) = address.strip_prefix('@') {
        send_to_abstract(&socket, name, state)?
    } else if address.starts_with('/') {
        socket.send_to(state.as_bytes(), address)?
    } else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "NOTIFY_SOCKET is neither a path (`/…`) nor an abstract name (`@…`)",
        ));
    };
    if sent != state.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "the notification was cut short"));
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_to_abstract(socket: &UnixDatagram, name: &str, state: &str) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    socket.send_to_addr(state.as_bytes(), &address)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_to_abstract(_: &UnixDatagram, _: &str, _: &str) -> io::Result<usize> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "abstract sockets exist on Linux only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_at_half_the_timeout_of_this_process_only() {
        let pid = 4242;
        assert_eq!(parse_watchdog("2000000", None, pid), Some(Duration::from_secs(1)));
        assert_eq!(parse_watchdog("2000000", Some("4242"), pid), Some(Duration::from_secs(1)));
        assert_eq!(parse_watchdog("2000000", Some("1"), pid), None, "another process's watchdog");
        assert_eq!(parse_watchdog("0", None, pid), None);
        assert_eq!(parse_watchdog("soon", None, pid), None);
    }

    #[test]
    fn sends_to_paths_and_abstract_names() {
        let dir = std::env::temp_dir().join(format!("switchboard-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).unwrap();
        send_to(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buffer = [0u8; 64];
        let n = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"READY=1");
        std::fs::remove_dir_all(&dir).unwrap();

        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("switchboard-notify-test-{}", std::process::id());
            let address = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
            let receiver = UnixDatagram::bind_addr(&address).unwrap();
            send_to(&format!("@{name}"), "WATCHDOG=1").unwrap();
            let n = receiver.recv(&mut buffer).unwrap();
            assert_eq!(&buffer[..n], b"WATCHDOG=1");
        }

        let error = send_to("relative/notify.sock", "READY=1").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::Unsupported);
    }
}
