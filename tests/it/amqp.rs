//! The shared suites over AMQP on the loopback RabbitMQ, plus the brokered layer's faults and
//! bad input (a private RabbitMQ node for the broker's restart), a server killed with SIGKILL,
//! no broker at all and discovery (all from [`brokered`]), then what is AMQP's own: refusals
//! that cost a channel, TLS, credentials, how an endpoint prints, and presence on a connection
//! of its own.

use std::time::{Duration, Instant};

use switchboard::{Endpoint, error::TransportErrorKind};
use switchboard_testkit::broker::{PrivateRabbitMq, shared_rabbitmq};
use switchboard_tests::thermostat::ThermostatClient;

use crate::{
    brokered::{endpoint, unique},
    suite::{self, within},
};

crate::brokered::every_broker_test! {
    shared: shared_rabbitmq,
    private: PrivateRabbitMq,
    parse: switchboard_transport_amqp::parse,
    scheme: "amqp",
    // The shared broker's `guest:guest`, without the password, which a client would need.
    discovered: "amqp://guest@127.0.0.1:5672",
    needs_password: true,
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_broker_is_unreachable() {
        crate::node::no_broker_is_unreachable("amqp").await;
    }
    crate::node::node_tests!(@each node(); services_share_their_requests);
}

/// A TCP proxy to RabbitMQ that can hold up every connection but presence's: a connection
/// whose first bytes from the client name it `…-presence` (the AMQP adapter's name for the
/// connection that carries presence alone) always flows; the others stop being read in either
/// direction while [`hold`](HoldingProxy::hold) is set, as a connection RabbitMQ stops reading
/// under flow control would.
struct HoldingProxy {
    port: u16,
    hold: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl HoldingProxy {
    async fn start(upstream: String) -> HoldingProxy {
        use std::sync::{Arc, atomic::AtomicBool};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let hold = Arc::new(tokio::sync::watch::Sender::new(false));
        let holds = hold.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { continue };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let presence = Arc::new(AtomicBool::new(false));
                let ((client_read, client_write), (server_read, server_write)) =
                    (client.into_split(), server.into_split());
                let up = Self::pump(client_read, server_write, true, presence.clone(), &holds);
                let down = Self::pump(server_read, client_write, false, presence, &holds);
                tokio::spawn(up);
                tokio::spawn(down);
            }
        });
        HoldingProxy { port, hold, task }
    }

    /// Copies `from` to `to`, passing nothing on while held unless the connection is
    /// presence's; `sniff` looks for presence's name in the first bytes.
    fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        sniff: bool,
        presence: std::sync::Arc<std::sync::atomic::AtomicBool>,
        hold: &tokio::sync::watch::Sender<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut hold = hold.subscribe();
        async move {
            let (mut seen, mut buffer) = (Vec::new(), vec![0u8; 16 * 1024]);
            loop {
                let n = match from.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if sniff && seen.len() < 4096 {
                    seen.extend_from_slice(&buffer[..n]);
                    if seen.windows(b"-presence".len()).any(|w| w == b"-presence") {
                        presence.store(true, Ordering::Release);
                    }
                }
                // What was read while held waits here, and nothing more is read meanwhile.
                while *hold.borrow_and_update() && !presence.load(Ordering::Acquire) {
                    if hold.changed().await.is_err() {
                        return;
                    }
                }
                if to.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
        }
    }

    fn hold(&self, held: bool) {
        self.hold.send_replace(held);
    }
}

impl Drop for HoldingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server's heartbeats keep their pace while its main connection is held up (RabbitMQ stops
/// reading a connection that publishes faster than its queues take messages, and a heartbeat
/// published behind a burst of signals waited with them until clients took the server for
/// gone): presence has a connection of its own. The server reaches RabbitMQ through a proxy
/// that stops its main connection for 2 s; an observer on the broker must still see at least
/// 5 of the 10 heartbeats (200 ms apart) of those 2 s, and a client's call must neither be
/// answered then (so the hold is real) nor fail because the client took the server for gone.
/// With presence on the main connection, the call fails that way within 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_their_pace_while_the_main_connection_is_held_up() {
    use std::sync::{Arc, Mutex};
    use switchboard_broker::{BusMessage, Sink};
    let Some(shared) = shared_rabbitmq() else { return };
    let upstream = shared.url.rsplit('@').next().expect("host:port").to_owned();
    let proxy = HoldingProxy::start(upstream).await;
    let instance = unique("held");
    let proxied = format!("amqp://guest:guest@127.0.0.1:{}?heartbeat=200ms", proxy.port);
    let (_server, _) = suite::serve_thermostat(&endpoint(&proxied, &instance)).await;

    let observer = switchboard_transport_amqp::parse(&shared.url).expect("a URL").address;
    let observer = within("a raw connection", observer.open("observer")).await.expect("open");
    let heartbeats = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = heartbeats.clone();
    let suffix = format!(".{instance}");
    let sink: Sink = Arc::new(move |topic: &str, _: BusMessage| {
        if topic.ends_with(&suffix) {
            seen.lock().unwrap().push(Instant::now());
        }
    });
    let filter = switchboard_wire::broker::ALL_PRESENCE;
    within("subscribe", observer.subscribe(filter, sink)).await.expect("subscribed");
    let client = endpoint(&shared.url, &instance);
    let client = within("connect", ThermostatClient::connect(&client)).await.expect("connect");
    within("getStatus", client.get_status()).await.expect("served");

    proxy.hold(true);
    let held = Instant::now();
    let unanswered = tokio::time::timeout(Duration::from_secs(1), client.get_status()).await;
    match unanswered {
        Err(_) => {}
        Ok(Ok(answer)) => panic!("the main connection is not held up: answered {answer:?}"),
        Ok(Err(error)) => panic!("the client took the held-up server for gone: {error}"),
    }
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(held.elapsed())).await;
    let released = Instant::now();
    proxy.hold(false);
    let during =
        heartbeats.lock().unwrap().iter().filter(|at| **at > held && **at < released).count();
    assert!(
        during >= 5,
        "{during} heartbeats in the {:?} the main connection was held up",
        released - held
    );
    within("getStatus", client.get_status()).await.expect("served after the hold");
}
