//! A server under systemd, with the test playing systemd: serving the listening socket it is
//! passed (socket activation).

use std::{
    os::{
        fd::AsFd,
        unix::net::{UnixDatagram, UnixListener},
    },
    time::Duration,
};

use switchboard::Endpoint;
use switchboard_testkit::{
    ChildProcess, SocketDir,
    service_manager::spawn_service,
};
use switchboard_tests::thermostat::ThermostatClient;

use crate::suite::within;

const SERVER: &str = env!("CARGO_BIN_EXE_switchboard-test-server");

/// How long a test waits for what must happen.
const NOTICE: Duration = Duration::from_secs(5);

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
