//! The shared suites over NATS on the loopback nats-server, plus the brokered layer's faults and
//! bad input, a server killed with SIGKILL, TLS and credentials, and discovery.

use std::time::{Duration, Instant};

use switchboard::{
    Endpoint,
    error::{CallError, TransportErrorKind},
};
use switchboard_broker::DiscoveryFilter;
use switchboard_testkit::{
    ChildProcess,
    broker::{PrivateNats, shared_nats},
};
use switchboard_tests::thermostat::ThermostatClient;

use crate::{
    brokered, conformance,
    suite::{self, within},
};

/// A fresh instance id, so tests sharing the server never see each other.
fn unique(tag: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

fn endpoint(url: &str, instance: &str) -> Endpoint {
    let separator = if url.contains('?') { '&' } else { '?' };
    Endpoint::parse(&format!("{url}{separator}instance={instance}")).expect("a valid NATS URL")
}

impl brokered::Outage for PrivateNats {
    fn stop(&mut self) {
        PrivateNats::stop(self);
    }

    fn start(&mut self) {
        self.restart();
    }
}

/// One test per body of a transport-independent module, each on its own instance of the shared
/// server.
macro_rules! nats_tests {
    ($module:ident: $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            switchboard_testkit::init_tracing();
            let Some(server) = shared_nats() else { return };
            $module::$name(endpoint(&server.url, &unique(stringify!($name)))).await;
        }
    )*};
}

nats_tests!(
    suite:
    every_type_round_trip,
    signals_arrive_in_order,
    methods,
    call_timeout,
    handler_panic_is_contained,
    properties
);

conformance::every_body!(nats_tests);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_lags_without_stalling_calls() {
    let Some(server) = shared_nats() else { return };
    let endpoint = endpoint(&server.url, &unique("stalled_reader"));
    suite::a_stalled_reader_lags_without_stalling_calls(endpoint, suite::Link::Brokered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_feedback_reader() {
    let Some(server) = shared_nats() else { return };
    let endpoint = endpoint(&server.url, &unique("paused_feedback"));
    conformance::paused_feedback_reader(endpoint, suite::Link::Brokered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_is_survived() {
    switchboard_testkit::init_tracing();
    let Some(mut server) = PrivateNats::start() else { return };
    let endpoint = endpoint(&server.url(), "restart");
    brokered::broker_restart_is_survived(endpoint, &mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_and_absent_servers() {
    let Some(server) = shared_nats() else { return };
    let absent = endpoint(&format!("{}?connect_timeout=300ms", server.url), &unique("absent"));
    brokered::incompatible_and_absent_servers(endpoint(&server.url, &unique("compat")), absent)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_and_survived() {
    switchboard_testkit::init_tracing();
    let Some(server) = shared_nats() else { return };
    let instance = unique("junk");
    let url = format!("{}?max_body=4096", server.url);
    let raw = switchboard_transport_nats::parse(&server.url).unwrap().address;
    let raw = raw.open("raw").await.expect("a raw connection");
    brokered::bad_input_is_answered_and_survived(endpoint(&url, &instance), raw, &instance).await;
}

/// A server killed with SIGKILL says no goodbye: its clients notice its missing heartbeats and
/// fail what waits for it long before the deadline, fail later calls at once, and resume by
/// themselves when a new server comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_fails_pending_calls_promptly() {
    switchboard_testkit::init_tracing();
    let Some(shared) = shared_nats() else { return };
    let instance = unique("killed");
    let url = format!("{}?heartbeat=200ms&instance={instance}", shared.url);
    let server_binary = env!("CARGO_BIN_EXE_switchboard-test-server");

    let mut server = ChildProcess::spawn(server_binary, &[&url]);
    let client = brokered::eventually("connect", async || {
        ThermostatClient::connect(&Endpoint::parse(&url).unwrap()).await.ok()
    })
    .await;
    let mut readings = within("subscribe", client.subscribe_temperature_changed()).await.unwrap();
    within("a reading", readings.next()).await.unwrap().expect("a reading before the kill");

    // A call that would take 30 s is in flight when the server dies.
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.boost(1.0, switchboard::Duration::seconds(30), None).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed_at = Instant::now();
    server.kill();
    let error = within("the pending call", pending).await.unwrap().unwrap_err();
    let took = killed_at.elapsed();
    eprintln!("SIGKILL to the failed call: {took:?}");
    let CallError::Transport(transport) = &error else { panic!("{error:?}") };
    assert_eq!(transport.kind(), TransportErrorKind::Disconnected, "{transport}");
    assert!(transport.message().contains(&instance), "`{transport}` should name the server");
    // Three missed heartbeats of 200 ms, and the watchdog's pace.
    assert!(took < Duration::from_millis(1500), "the failure took {took:?}");

    let started = Instant::now();
    let error = within("call while down", client.get_status()).await.unwrap_err();
    assert!(error.is_disconnect(), "{error:?}");
    assert!(started.elapsed() < Duration::from_millis(500), "took {:?}", started.elapsed());

    let _restarted = ChildProcess::spawn(server_binary, &[&url]);
    let status =
        brokered::eventually("a call after the restart", async || client.get_status().await.ok())
            .await;
    assert_eq!(status.celsius, 18.5);
    // Signals flow again on the old stream.
    brokered::eventually("a reading after the restart", async || {
        match tokio::time::timeout(Duration::from_millis(200), readings.next()).await {
            Ok(Some(Ok(reading))) => Some(reading),
            _ => None,
        }
    })
    .await;
}

/// Without a NATS server, connecting fails at once with `NotFound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_broker_is_not_found() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let error = within(
        "connect",
        ThermostatClient::connect(&endpoint(&format!("nats://127.0.0.1:{port}"), "nobody")),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::NotFound, "{error}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

/// TLS with the server's certificate verified against the URL's CA file; the system roots do
/// not trust it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified() {
    let Some(server) = PrivateNats::start_tls() else { return };
    let secure = endpoint(&server.url(), "tls");
    let (_server, _) = suite::serve_thermostat(&secure).await;
    let client = within("connect", ThermostatClient::connect(&secure)).await.expect("connect");
    within("getStatus", client.get_status()).await.expect("a call over TLS");

    let untrusted = endpoint(&format!("nats+tls://127.0.0.1:{}", server.port()), "tls");
    let error = within("connect", ThermostatClient::connect(&untrusted)).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::AccessDenied, "{error}");
    let plain = endpoint(&format!("nats://127.0.0.1:{}", server.port()), "tls");
    let error = within("connect", ThermostatClient::connect(&plain)).await.unwrap_err();
    assert_ne!(error.kind(), TransportErrorKind::IncompatibleInterface, "{error}");
}

/// A user and password, or a token, from the URL; wrong ones are `AccessDenied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_used() {
    let Some(server) = PrivateNats::start_with(&["--user", "alice", "--pass", "s3cret"]) else {
        return;
    };
    let url = |userinfo: &str| format!("nats://{userinfo}@127.0.0.1:{}", server.port());
    let good = endpoint(&url("alice:s3cret"), "creds");
    let (_server, _) = suite::serve_thermostat(&good).await;
    let client = within("connect", ThermostatClient::connect(&good)).await.expect("connect");
    within("getStatus", client.get_status()).await.expect("served");
    assert!(!good.to_string().contains("s3cret"), "{good}");
    let error =
        within("connect", ThermostatClient::connect(&endpoint(&url("alice:wrong"), "creds")))
            .await
            .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::AccessDenied, "{error}");

    let Some(server) = PrivateNats::start_with(&["--auth", "t0ken"]) else { return };
    let good = endpoint(&format!("nats://t0ken@127.0.0.1:{}", server.port()), "token");
    let (_server, _) = suite::serve_thermostat(&good).await;
    let client = within("connect", ThermostatClient::connect(&good)).await.expect("connect");
    within("getStatus", client.get_status()).await.expect("served");
    assert!(!good.to_string().contains("t0ken"), "{good}");
}

/// Discovery finds the running servers of an interface by their presence, and says how to
/// reach each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_servers() {
    let Some(shared) = shared_nats() else { return };
    let (one, two) = (unique("found"), unique("found"));
    let (_s1, _) = suite::serve_thermostat(&endpoint(&shared.url, &one)).await;
    let (_s2, _) = suite::serve_thermostat(&endpoint(&shared.url, &two)).await;
    let address = switchboard_transport_nats::parse(&shared.url).unwrap().address;
    let found = within(
        "discover",
        address
            .discover(DiscoveryFilter::any().interface("Thermostat"), Duration::from_millis(500)),
    )
    .await
    .expect("discover");
    for instance in [&one, &two] {
        let service = found.iter().find(|s| &s.instance == instance).expect("found");
        assert_eq!((service.interface.as_str(), service.version.as_str()), ("Thermostat", "1.0.0"));
        assert_eq!(service.address, format!("nats://127.0.0.1:4222?instance={instance}"));
        let client = ThermostatClient::connect(&Endpoint::parse(&service.address).unwrap()).await;
        within("getStatus", client.expect("connect").get_status()).await.expect("served");
    }
    let only = within(
        "discover",
        address.discover(DiscoveryFilter::any().instance(one.clone()), Duration::from_millis(300)),
    )
    .await
    .expect("discover");
    assert_eq!(only.iter().map(|s| s.instance.as_str()).collect::<Vec<_>>(), [one.as_str()]);
}

/// A NATS endpoint prints as a URL that parses back to the same endpoint. Secrets are never
/// printed: a password is left out, and a token altogether.
#[test]
fn endpoints_print_as_urls_that_parse_back() {
    for url in [
        "nats://127.0.0.1:4222?instance=a",
        "nats://h:4333?heartbeat=250ms&connect_timeout=2s&instance=k",
        "nats+tls://h:4222?ca=/etc/ca.pem&max_body=4096&instance=x",
    ] {
        let endpoint = Endpoint::parse(url).unwrap();
        assert_eq!(endpoint.to_string(), url);
        assert_eq!(Endpoint::parse(&endpoint.to_string()).unwrap().to_string(), url);
    }
    let secret = Endpoint::parse("nats://alice:s3cret@h?instance=k").unwrap();
    assert_eq!(secret.to_string(), "nats://alice@h:4222?instance=k");
    let token = Endpoint::parse("nats://t0ken@h?instance=k").unwrap();
    assert_eq!(token.to_string(), "nats://h:4222?instance=k");
}

mod node {
    use switchboard::{Endpoint, node::Node};
    use switchboard_testkit::broker::shared_nats;

    fn node() -> Option<(Node, String, ())> {
        let server = shared_nats()?;
        let endpoint = Endpoint::parse(&server.url).expect("a valid URL");
        Some((Node::new("nats-test", endpoint), crate::node::prefix("nats"), ()))
    }

    crate::node::node_tests!(node());
    crate::node::brokered_node_tests!(node());
}
