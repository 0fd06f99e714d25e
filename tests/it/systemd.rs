//! A server under systemd, with the test playing systemd: serving the listening socket it is
//! passed (socket activation), and notifying readiness, watchdog pings and stopping.

use std::{
    os::{
        fd::AsFd,
        unix::net::{UnixDatagram, UnixListener},
    },
    time::Duration,
};

use switchboard::{Endpoint, transport::unix::UnixEndpoint};
use switchboard_testkit::{
    ChildProcess, SocketDir,
    service_manager::{NotifySocket, spawn_service},
};
use switchboard_tests::thermostat::ThermostatClient;

use crate::suite::within;

const SERVER: &str = env!("CARGO_BIN_EXE_switchboard-test-server");

/// How long a test waits for a notification that must come, and for one that must not.
const NOTICE: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(500);

/// Calls the server at `endpoint` once.
async fn assert_served(endpoint: &Endpoint) {
    let client = within("connect", ThermostatClient::connect(endpoint)).await.expect("connect");
    let status = within("getStatus", client.get_status()).await.expect("getStatus");
    assert_eq!(status.celsius, 18.5, "answered by the test server");
    client.close();
}

/// Stops the server as systemd does and checks it exits 0.
fn stop(mut server: ChildProcess) {
    let exited = server.terminate(Duration::from_secs(5));
    assert!(exited.is_some_and(|status| status.success()), "exit on SIGTERM: {exited:?}");
}

/// The server serves the socket passed for its path instead of binding one (it could not: the
/// socket is listening already), and leaves the socket file, which is systemd's, when it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_socket_is_served_and_left_in_place() {
    let dir = SocketDir::new();
    let path = dir.path("activated");
    let passed = UnixListener::bind(&path).expect("bind the socket systemd would");
    let arg = path.display().to_string();
    let server = spawn_service(SERVER, &[&arg], &[(passed.as_fd(), "thermostat.socket")], &[]);
    drop(passed);

    assert_served(&dir.endpoint("activated")).await;
    tokio::task::spawn_blocking(move || stop(server)).await.unwrap();
    assert!(path.exists(), "the server removed the socket file systemd made");
}

/// A socket named after the interface (`FileDescriptorName=Thermostat`) is served even when the
/// server's own path is another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_socket_is_found_by_its_name() {
    let dir = SocketDir::new();
    let other = dir.path("unrelated");
    let unnamed = UnixListener::bind(&other).expect("bind an unrelated socket");
    let passed = UnixListener::bind(dir.path("named")).expect("bind the named socket");
    let own_path = dir.path("own").display().to_string();
    let sockets = [(unnamed.as_fd(), ""), (passed.as_fd(), "Thermostat")];
    let server = spawn_service(SERVER, &[&own_path], &sockets, &[]);
    drop((unnamed, passed));

    assert_served(&dir.endpoint("named")).await;
    assert!(!dir.path("own").exists(), "the server bound its own path as well");
    tokio::task::spawn_blocking(move || stop(server)).await.unwrap();
}

/// A socket meant for the server that it cannot serve (a datagram socket named after its
/// interface) is refused clearly: the server exits with an error instead of serving elsewhere
/// and leaving that socket's clients waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_socket_that_does_not_listen_is_refused() {
    let dir = SocketDir::new();
    let datagram = UnixDatagram::bind(dir.path("datagram")).expect("bind a datagram socket");
    let own_path = dir.path("own").display().to_string();
    let mut server = spawn_service(SERVER, &[&own_path], &[(datagram.as_fd(), "Thermostat")], &[]);
    let exited = tokio::task::spawn_blocking(move || server.exit_status(NOTICE)).await.unwrap();
    assert!(exited.is_some_and(|status| !status.success()), "served without it: {exited:?}");
}

/// Under `Type=notify`: `READY=1` once the server serves (a client is served right after),
/// `WATCHDOG=1` every half `WATCHDOG_USEC`, and `STOPPING=1` on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_watchdog_and_stopping_are_notified() {
    let dir = SocketDir::new();
    let notify = NotifySocket::at_path();
    let arg = dir.path("notified").display().to_string();
    let env = [("NOTIFY_SOCKET", notify.address()), ("WATCHDOG_USEC", "200000")];
    let server = spawn_service(SERVER, &[&arg], &[], &env);

    let ready = notify.next(NOTICE).await.expect("a notification when serving");
    assert!(ready.lines().any(|line| line == "READY=1"), "{ready:?}");
    assert!(ready.contains("STATUS=serving Thermostat"), "{ready:?}");
    let endpoint = dir.endpoint("notified");
    let client = ThermostatClient::connect(&endpoint).await.expect("serving when ready");
    client.close();

    let started = std::time::Instant::now();
    let mut pings = 0;
    while pings < 3 {
        let ping = notify.next(NOTICE).await.expect("a watchdog ping");
        assert_eq!(ping, "WATCHDOG=1");
        pings += 1;
    }
    // Three pings at 100 ms intervals, the first at once.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "three pings took {took:?}");

    let stopping = tokio::spawn(async move {
        loop {
            match notify.next(NOTICE).await {
                Some(notice) if notice == "WATCHDOG=1" => continue,
                other => return other,
            }
        }
    });
    tokio::task::spawn_blocking(move || stop(server)).await.unwrap();
    let stopped = stopping.await.unwrap().expect("a notification when stopping");
    assert!(stopped.lines().any(|line| line == "STOPPING=1"), "{stopped:?}");
}

/// An abstract notification socket (`@name`) works too; a watchdog meant for another process
/// (`WATCHDOG_PID`) gets no pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abstract_socket_is_notified_and_another_process_watchdog_is_not_pinged() {
    let dir = SocketDir::new();
    let notify = NotifySocket::abstract_name();
    let arg = dir.path("abstract").display().to_string();
    let env =
        [("NOTIFY_SOCKET", notify.address()), ("WATCHDOG_USEC", "100000"), ("WATCHDOG_PID", "1")];
    let server = spawn_service(SERVER, &[&arg], &[], &env);

    let ready = notify.next(NOTICE).await.expect("a notification when serving");
    assert!(ready.lines().any(|line| line == "READY=1"), "{ready:?}");
    assert_served(&Endpoint::unix(UnixEndpoint::at(dir.path("abstract")))).await;
    assert_eq!(notify.next(QUIET).await, None, "pinged another process's watchdog");
    tokio::task::spawn_blocking(move || stop(server)).await.unwrap();
    let stopped = notify.next(NOTICE).await.expect("a notification when stopping");
    assert!(stopped.lines().any(|line| line == "STOPPING=1"), "{stopped:?}");
}
