//! The shared suites over AMQP on the loopback RabbitMQ, plus the brokered layer's faults and
//! bad input (a private RabbitMQ node for the broker's restart), a server killed with SIGKILL,
//! no broker at all, credentials and discovery.

use std::time::{Duration, Instant};

use switchboard::{
    Endpoint,
    error::{CallError, TransportErrorKind},
};
use switchboard_testkit::{
    ChildProcess,
    broker::{PrivateRabbitMq, shared_rabbitmq},
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
    Endpoint::parse(&format!("{url}{separator}instance={instance}")).expect("a valid AMQP URL")
}

impl brokered::Outage for PrivateRabbitMq {
    fn stop(&mut self) {
        PrivateRabbitMq::stop(self);
    }

    fn start(&mut self) {
        self.restart();
    }
}

/// One test per body of a transport-independent module, each on its own instance of the shared
/// server.
macro_rules! amqp_tests {
    ($module:ident: $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            switchboard_testkit::init_tracing();
            let Some(server) = shared_rabbitmq() else { return };
            $module::$name(endpoint(&server.url, &unique(stringify!($name)))).await;
        }
    )*};
}

amqp_tests!(
    suite:
    every_type_round_trip,
    signals_arrive_in_order,
    methods,
    call_timeout,
    handler_panic_is_contained,
    properties
);

conformance::every_body!(amqp_tests);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_lags_without_stalling_calls() {
    let Some(server) = shared_rabbitmq() else { return };
    let endpoint = endpoint(&server.url, &unique("stalled_reader"));
    suite::a_stalled_reader_lags_without_stalling_calls(endpoint, suite::Link::Brokered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_feedback_reader() {
    let Some(server) = shared_rabbitmq() else { return };
    let endpoint = endpoint(&server.url, &unique("paused_feedback"));
    conformance::paused_feedback_reader(endpoint, suite::Link::Brokered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_is_survived() {
    switchboard_testkit::init_tracing();
    let Some(mut server) = PrivateRabbitMq::start() else { return };
    let endpoint = endpoint(&server.url(), "restart");
    brokered::broker_restart_is_survived(endpoint, &mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_and_absent_servers() {
    let Some(server) = shared_rabbitmq() else { return };
    let absent = endpoint(&format!("{}?connect_timeout=300ms", server.url), &unique("absent"));
    brokered::incompatible_and_absent_servers(endpoint(&server.url, &unique("compat")), absent)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_and_survived() {
    switchboard_testkit::init_tracing();
    let Some(server) = shared_rabbitmq() else { return };
    let instance = unique("junk");
    let url = format!("{}?max_body=4096", server.url);
    let raw = switchboard_transport_amqp::parse(&server.url).unwrap().address;
    let raw = raw.open("raw").await.expect("a raw connection");
    brokered::bad_input_is_answered_and_survived(endpoint(&url, &instance), raw, &instance).await;
}

/// A server killed with SIGKILL says no goodbye (its connection drops, and with it its queues): its clients notice its missing heartbeats and
/// fail what waits for it long before the deadline, fail later calls at once, and resume by
/// themselves when a new server comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_fails_pending_calls_promptly() {
    switchboard_testkit::init_tracing();
    let Some(shared) = shared_rabbitmq() else { return };
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

/// Without an AMQP broker, connecting fails at once with `NotFound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_broker_is_not_found() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let error = within(
        "connect",
        ThermostatClient::connect(&endpoint(&format!("amqp://127.0.0.1:{port}"), "nobody")),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::NotFound, "{error}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

/// The user and password from the URL; a wrong password is `AccessDenied`, and the password
/// is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_used() {
    let Some(shared) = shared_rabbitmq() else { return };
    let port = shared.url.rsplit(':').next().unwrap().to_owned();
    let url = |userinfo: &str| format!("amqp://{userinfo}@127.0.0.1:{port}");
    let good = endpoint(&url("guest:guest"), &unique("creds"));
    let (_server, _) = suite::serve_thermostat(&good).await;
    let client = within("connect", ThermostatClient::connect(&good)).await.expect("connect");
    within("getStatus", client.get_status()).await.expect("served");
    assert!(!good.to_string().contains(":guest@"), "{good}");
    let started = Instant::now();
    let error =
        within("connect", ThermostatClient::connect(&endpoint(&url("guest:wrong"), "creds")))
            .await
            .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::AccessDenied, "{error}");
    assert!(!error.to_string().contains("wrong"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// An AMQP endpoint prints as a URL that parses back to the same endpoint, without its
/// password.
#[test]
fn endpoints_print_as_urls_that_parse_back() {
    for url in [
        "amqp://127.0.0.1:5672?instance=a",
        "amqp://guest@h:5673?heartbeat=250ms&connect_timeout=2s&instance=k",
        "amqp://h:5672?max_body=4096&instance=x",
    ] {
        let endpoint = Endpoint::parse(url).unwrap();
        assert_eq!(endpoint.to_string(), url);
        assert_eq!(Endpoint::parse(&endpoint.to_string()).unwrap().to_string(), url);
    }
    let secret = Endpoint::parse("amqp://alice:s3cret@h?instance=k").unwrap();
    assert_eq!(secret.to_string(), "amqp://alice@h:5672?instance=k");
}

/// Discovery finds the running servers of an interface by their presence, and says how to
/// reach each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_servers() {
    let Some(shared) = shared_rabbitmq() else { return };
    let (one, two) = (unique("found"), unique("found"));
    let (_s1, _) = suite::serve_thermostat(&endpoint(&shared.url, &one)).await;
    let (_s2, _) = suite::serve_thermostat(&endpoint(&shared.url, &two)).await;
    let address = switchboard_transport_amqp::parse(&shared.url).unwrap().address;
    let found = within(
        "discover",
        address.discover(
            switchboard_broker::DiscoveryFilter::any().interface("Thermostat"),
            Duration::from_millis(500),
        ),
    )
    .await
    .expect("discover");
    for instance in [&one, &two] {
        let service = found.iter().find(|s| &s.instance == instance).expect("found");
        assert_eq!((service.interface.as_str(), service.version.as_str()), ("Thermostat", "1.0.0"));
        assert_eq!(service.address, format!("amqp://guest@127.0.0.1:5672?instance={instance}"));
    }
    let only = within(
        "discover",
        address.discover(
            switchboard_broker::DiscoveryFilter::any().instance(one.clone()),
            Duration::from_millis(300),
        ),
    )
    .await
    .expect("discover");
    assert_eq!(only.iter().map(|s| s.instance.as_str()).collect::<Vec<_>>(), [one.as_str()]);
}

/// What the broker refuses or cannot take costs at most a channel, never the link: reply
/// addresses nobody holds (a bogus direct reply-to name, one longer than an AMQP short string)
/// lose their answers while the server goes on answering everyone else; a refused queue fails
/// its consumption alone; subscriptions ended one by one close their own channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_cost_a_channel_not_the_link() {
    switchboard_testkit::init_tracing();
    let Some(shared) = shared_rabbitmq() else { return };
    let instance = unique("reply_to");
    let endpoint = endpoint(&shared.url, &instance);
    let (_server, _) = suite::serve_thermostat(&endpoint).await;
    let client = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");
    let raw = switchboard_transport_amqp::parse(&shared.url).unwrap().address;
    let raw = raw.open("raw").await.expect("a raw connection");
    let queue = format!("Thermostat.{instance}.method.getStatus");
    let long = "r".repeat(300);
    for reply_to in ["amq.rabbitmq.reply-to.bogus", long.as_str()] {
        let body = format!(r#"{{"header":{{"reply_to":"{reply_to}"}},"data":{{}}}}"#);
        let carried = (reply_to.len() <= 255).then(|| reply_to.to_owned());
        let message = switchboard_broker::BusMessage {
            reply_to: carried,
            ..switchboard_broker::BusMessage::new(body.into())
        };
        for _ in 0..3 {
            raw.send(&queue, message.clone()).await.expect("sent");
            within("getStatus", client.get_status()).await.expect("still served");
        }
    }
    // The raw peer itself sends to a name the broker refuses: that closes its publishing
    // channel, not its connection, and the next send takes a new channel.
    let link = raw.link();
    let bogus = || switchboard_broker::BusMessage::new("{}".into());
    for _ in 0..20 {
        raw.send("amq.rabbitmq.reply-to.bogus", bogus()).await.expect("sent");
        raw.send(&queue, bogus()).await.expect("sent, on a new channel if need be");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        matches!(*link.borrow(), switchboard_broker::LinkState::Up { generation: 1, .. }),
        "the link went down: {:?}",
        *link.borrow()
    );
    // Subscriptions and consumers ended one by one close their own channels only.
    for round in 0..10 {
        let sink: switchboard_broker::Sink = std::sync::Arc::new(|_: &str, _| {});
        let topic = raw.subscribe("a.*.b.>", sink.clone()).await.expect("subscribed");
        let queue = format!("_sb.test.{instance}.{round}");
        let consumer = raw.consume(&[queue], sink).await.expect("consumed");
        raw.unsubscribe(topic);
        raw.unsubscribe(consumer);
    }
    // A queue the broker refuses to declare (names starting `amq.` are its own) fails that
    // consumption, and only its channel.
    let sink: switchboard_broker::Sink = std::sync::Arc::new(|_: &str, _| {});
    let error = raw.consume(&["amq.refused".to_owned()], sink).await.expect_err("refused");
    assert_eq!(error.kind(), TransportErrorKind::InvalidAddress, "{error}");
    raw.send(&queue, bogus()).await.expect("sent");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        matches!(*link.borrow(), switchboard_broker::LinkState::Up { generation: 1, .. }),
        "the link went down: {:?}",
        *link.borrow()
    );
    // A raw send of a name over 255 bytes is refused, not sent and not a panic.
    let error = raw
        .send(&long, switchboard_broker::BusMessage::new("{}".into()))
        .await
        .expect_err("refused");
    assert_eq!(error.kind(), TransportErrorKind::InvalidAddress, "{error}");
    within("getStatus", client.get_status()).await.expect("still served");
}

/// `amqps://`: TLS with verification on. Trusting the node's CA through `?ca=`, a server and a
/// client meet over it; a certificate nothing trusted issued (the system roots alone) is
/// `AccessDenied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verifies_the_broker() {
    switchboard_testkit::init_tracing();
    let Some(node) = PrivateRabbitMq::start_tls() else { return };
    let good = endpoint(&node.url(), "tls");
    assert!(good.to_string().starts_with("amqps://guest@127.0.0.1:"), "{good}");
    let (_server, _) = suite::serve_thermostat(&good).await;
    let client = within("connect", ThermostatClient::connect(&good)).await.expect("connect");
    within("getStatus", client.get_status()).await.expect("served over TLS");
    let system_roots = endpoint(&format!("amqps://guest:guest@127.0.0.1:{}", node.port()), "tls");
    let error = within("connect", ThermostatClient::connect(&system_roots)).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::AccessDenied, "{error}");
    // The TLS port does not speak plain AMQP.
    let plain = endpoint(
        &format!("amqp://guest:guest@127.0.0.1:{}?connect_timeout=1s", node.port()),
        "tls",
    );
    within("connect", ThermostatClient::connect(&plain)).await.expect_err("no plain AMQP there");
}

mod node {
    use switchboard::{Endpoint, node::Node};
    use switchboard_testkit::broker::shared_rabbitmq;

    fn node() -> Option<(Node, String, ())> {
        let server = shared_rabbitmq()?;
        let endpoint = Endpoint::parse(&server.url).expect("a valid URL");
        Some((Node::new("amqp-test", endpoint), crate::node::prefix("amqp"), ()))
    }

    crate::node::node_tests!(node());
    crate::node::brokered_node_tests!(node());
}
