//! What every broker on the brokered layer runs: test bodies written against an `Endpoint` and a
//! raw `Bus` on the same broker, so each broker adapter (the in-memory one, NATS, Redis and
//! AMQP) runs the same faults and the same junk, and [`every_broker_test!`], which instantiates
//! them with the shared suites in a broker's module, so that module says only what differs.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use switchboard::{
    Endpoint,
    client::ClientOptions,
    error::{CallError, ErrorCode, TransportErrorKind, names as error_names},
};
use switchboard_broker::{
    Bus, BusMessage, BusStatus, EnvelopeStyle, ReplyRoute,
    envelope::{self, Envelope, Meta, Op, refusal},
};
use switchboard_core::{InterfaceDescriptor, client::ClientCore};
use switchboard_tests::thermostat::{INTERFACE, ThermostatClient};
use tokio::sync::mpsc;

use crate::suite::{self, within};

/// What a fault test does to the broker: take it away, and bring it back.
pub(crate) trait Outage {
    /// The broker goes away (killed: nothing it held survives).
    fn stop(&mut self);
    /// The broker is back, on the same address.
    fn start(&mut self);
}

/// Waits until `check` passes, for at most ten seconds.
pub(crate) async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} did not happen within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The broker dies and comes back empty: server and client reconnect and subscribe again by
/// themselves, calls during the outage fail with a transport error well within their deadline,
/// calls after recovery succeed, and no signal published after recovery is lost.
pub(crate) async fn broker_restart_is_survived(endpoint: Endpoint, broker: &mut dyn Outage) {
    let (server, _) = suite::serve_thermostat(&endpoint).await;
    let options = ClientOptions::default().call_timeout(Duration::from_secs(20));
    let client = within("connect", ThermostatClient::connect_with(&endpoint, options))
        .await
        .expect("connect");
    let mut watch = within("watch", client.watch_setpoint()).await.unwrap();
    assert_eq!(within("first value", watch.next()).await.unwrap().unwrap(), 21.0);
    let mut readings = within("subscribe", client.subscribe_temperature_changed()).await.unwrap();
    within("getStatus", client.get_status()).await.expect("before the outage");

    broker.stop();
    let started = Instant::now();
    let error = eventually("a failing call", async || {
        within("call during the outage", client.get_status()).await.err()
    })
    .await;
    assert!(matches!(&error, CallError::Transport(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    // A call in the outage fails at once, not at its 20 s deadline.
    let started = Instant::now();
    let error = within("a call while down", client.get_status()).await.unwrap_err();
    assert!(error.is_disconnect(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    // A change while the broker is away is kept, and read again once it is back.
    server.set_setpoint(30.0).await.expect("a server-side change during the outage");

    broker.start();
    let status = eventually("a call after recovery", async || client.get_status().await.ok()).await;
    assert_eq!(status.celsius, 20.0);
    assert_eq!(within("get", client.get_setpoint()).await.unwrap(), 30.0);
    eventually("the watch resumes", async || {
        match tokio::time::timeout(Duration::from_millis(200), watch.next()).await {
            Ok(Some(Ok(30.0))) => Some(()),
            _ => None,
        }
    })
    .await;
    // The server is back on the broker once a signal it emits arrives (while it reconnects, its
    // signals are dropped, not errors); from then on nothing is lost.
    eventually("the server's signals arrive again", async || {
        server.emit_temperature_changed(-1.0, switchboard::DateTime::UNIX_EPOCH).await.ok()?;
        match tokio::time::timeout(Duration::from_millis(200), readings.next()).await {
            Ok(Some(Ok(reading))) if reading.celsius == -1.0 => Some(()),
            _ => None,
        }
    })
    .await;
    for reading in 0..50 {
        server
            .emit_temperature_changed(f64::from(reading), switchboard::DateTime::UNIX_EPOCH)
            .await
            .expect("emit after recovery");
    }
    let mut received = Vec::new();
    while received.len() < 50 {
        match within("a reading after recovery", readings.next()).await {
            Some(Ok(reading)) if reading.celsius >= 0.0 => received.push(reading.celsius),
            Some(_) => {}
            None => panic!("the stream closed"),
        }
    }
    assert_eq!(received, (0..50).map(f64::from).collect::<Vec<_>>(), "every signal, in order");
    // A new client finds the server, and is served.
    let late =
        within("connect after recovery", ThermostatClient::connect(&endpoint)).await.unwrap();
    within("getStatus", late.get_status()).await.expect("a new client is served");
}

/// A client generated from another description of the interface is refused, naming both; a
/// server that does not exist is `NotFound` after the connect timeout.
pub(crate) async fn incompatible_and_absent_servers(endpoint: Endpoint, absent: Endpoint) {
    let (_server, _) = suite::serve_thermostat(&endpoint).await;
    let other = InterfaceDescriptor {
        version: "2.0.0".into(),
        hash: "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into(),
        // No description, as a client older than the per-member check sends: another hash is
        // refused outright (tests/it/evolve.rs compares descriptions).
        description: "".into(),
        ..INTERFACE.clone()
    };
    let error = within("connect", ClientCore::connect(&endpoint, &other, ClientOptions::default()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::IncompatibleInterface, "{error}");
    assert!(error.message().contains("2.0.0") && error.message().contains("1.0.0"), "{error}");
    // The server goes on serving compatible clients.
    let good = within("connect", ThermostatClient::connect(&endpoint)).await.unwrap();
    within("getStatus", good.get_status()).await.expect("served");

    let started = Instant::now();
    let error = within("connect", ThermostatClient::connect(&absent)).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::NotFound, "{error}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

/// A peer on the broker speaking the layer's wire by hand, with an inbox of its own.
pub(crate) struct RawPeer {
    bus: Arc<dyn Bus>,
    style: EnvelopeStyle,
    route: ReplyRoute,
    inbox: String,
    answers: mpsc::UnboundedReceiver<BusMessage>,
    next: AtomicU32,
}

impl RawPeer {
    pub(crate) async fn new(bus: Arc<dyn Bus>) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let inbox =
            format!("_sb.inbox.raw{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let profile = bus.profile().clone();
        let (tx, answers) = mpsc::unbounded_channel();
        let sink = Arc::new(move |_: &str, message: BusMessage| {
            let _ = tx.send(message);
        });
        match profile.replies {
            ReplyRoute::Subjects => bus.subscribe(&format!("{inbox}.>"), sink).await,
            _ => bus.consume(std::slice::from_ref(&inbox), sink).await,
        }
        .expect("the raw peer's inbox");
        RawPeer {
            bus,
            style: profile.envelope,
            route: profile.replies,
            inbox,
            answers,
            next: AtomicU32::new(1),
        }
    }

    fn reply_to(&self) -> String {
        match self.route {
            ReplyRoute::Subjects => {
                format!("{}.{}", self.inbox, self.next.fetch_add(1, Ordering::Relaxed))
            }
            _ => self.inbox.clone(),
        }
    }

    /// Sends an envelope to `queue`, answers to this peer's inbox.
    async fn request(
        &mut self,
        queue: &str,
        meta: Meta,
        payload: &'static [u8],
    ) -> Option<BusMessage> {
        let envelope = Envelope {
            meta,
            reply_to: Some(self.reply_to()),
            payload: Bytes::from_static(payload),
        };
        let message = envelope::encode(self.style, envelope).expect("encodable");
        self.send_raw(queue, message).await
    }

    /// Sends a message as it is to `queue` and waits briefly for an answer.
    async fn send_raw(&mut self, queue: &str, message: BusMessage) -> Option<BusMessage> {
        self.bus.send(queue, message).await.expect("sent");
        tokio::time::timeout(Duration::from_secs(2), self.answers.recv()).await.ok().flatten()
    }

    /// The answer's error name and code.
    fn refusal(&self, answer: Option<BusMessage>, what: &str) -> (String, ErrorCode) {
        let answer = answer.unwrap_or_else(|| panic!("{what}: no answer"));
        let envelope =
            envelope::decode(self.style, answer).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_ne!(envelope.meta.code, 0, "{what}: a success");
        let name = envelope.meta.error.unwrap_or_else(|| panic!("{what}: no error name"));
        (name, ErrorCode::from_u8(envelope.meta.code))
    }
}

fn op(op: Op, name: Option<&str>) -> Meta {
    let mut meta = Meta::default();
    meta.op = Some(op);
    meta.name = name.map(str::to_owned);
    meta
}

/// Bad input on our subjects and queues gets an error answer where it says where answers go,
/// and a log line where it does not; nothing stops the server or its clients.
///
/// `endpoint`'s server must allow bodies of at most 4096 bytes (`max_body=4096`).
pub(crate) async fn bad_input_is_answered_and_survived(
    endpoint: Endpoint,
    raw: Arc<dyn Bus>,
    instance: &str,
) {
    let (server, _) = suite::serve_thermostat(&endpoint).await;
    let client = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");
    let mut readings = within("subscribe", client.subscribe_temperature_changed()).await.unwrap();
    let mut peer = RawPeer::new(raw.clone()).await;
    let service = format!("Thermostat.{instance}");
    let method = |name: &str| format!("{service}.method.{name}");
    let control = format!("{service}.control");

    // Wrong types: the core refuses the arguments.
    let answer =
        peer.request(&method("boost"), Meta::default(), br#"{"extraCelsius":"hot"}"#).await;
    let (name, code) = peer.refusal(answer, "wrong types");
    assert_eq!(
        (name.as_str(), code),
        (error_names::INVALID_ARGUMENTS, ErrorCode::ServerDeserializationError)
    );

    // A request made for another description of the interface.
    let mut meta = Meta::default();
    meta.hash = Some("sha256:dead".into());
    let answer = peer.request(&method("getStatus"), meta, b"{}").await;
    assert_eq!(peer.refusal(answer, "another hash").0, refusal::INCOMPATIBLE_INTERFACE);

    // Control requests the layer cannot read.
    let answer = peer.request(&control, Meta::default(), b"{}").await;
    assert_eq!(peer.refusal(answer, "no op").0, refusal::MALFORMED_REQUEST);
    let answer = peer.request(&control, op(Op::Get, None), b"{}").await;
    assert_eq!(peer.refusal(answer, "get without a name").0, refusal::MALFORMED_REQUEST);
    let answer = peer.request(&control, op(Op::Goal, Some("preheat")), b"[1,2]").await;
    assert_eq!(peer.refusal(answer, "an unreadable goal").0, refusal::MALFORMED_REQUEST);
    let answer = peer.request(&control, op(Op::Get, Some("nope")), b"").await;
    assert_eq!(peer.refusal(answer, "an unknown property").0, error_names::UNKNOWN_PROPERTY);

    // An envelope that is not one, and a body over max_body: answered where the broker carries
    // the reply address outside the body, else dropped with a log line.
    let carried = raw.profile().reply_to_outside_body;
    let junk = match peer.style {
        EnvelopeStyle::Headers => BusMessage {
            headers: [("sb-op", "delete")].into_iter().collect(),
            reply_to: Some(peer.reply_to()),
            body: Bytes::from_static(b"{}"),
            ..BusMessage::default()
        },
        _ => BusMessage {
            reply_to: Some(peer.reply_to()),
            ..BusMessage::new(Bytes::from_static(b"\xffnot json"))
        },
    };
    let answer = peer.send_raw(&control, junk).await;
    if carried {
        assert_eq!(peer.refusal(answer, "a malformed envelope").0, refusal::MALFORMED_REQUEST);
    }
    let oversized = BusMessage {
        reply_to: Some(peer.reply_to()),
        ..BusMessage::new(Bytes::from(vec![b' '; 5000]))
    };
    let answer = peer.send_raw(&method("getStatus"), oversized).await;
    if carried {
        let (name, code) = peer.refusal(answer, "an oversized body");
        assert_eq!((name.as_str(), code), (refusal::PAYLOAD_TOO_LARGE, ErrorCode::PayloadError));
    }

    // A method the server does not serve: where the broker says nobody receives it, that is the
    // answer, and our own clients fail at once.
    if peer.route == ReplyRoute::Subjects {
        let answer =
            peer.request(&method("nope"), Meta::default(), b"{}").await.expect("an answer");
        assert_eq!(answer.status, Some(BusStatus::NoResponders));
        let dynamic =
            ClientCore::connect(&endpoint, &INTERFACE, ClientOptions::default()).await.unwrap();
        let started = Instant::now();
        let error =
            within("call", dynamic.call_raw("nope", Bytes::from_static(b"{}"))).await.unwrap_err();
        assert!(
            matches!(&error, CallError::Transport(e) if e.kind() == TransportErrorKind::NotFound),
            "{error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    }

    // Junk on every topic and queue of ours, with no reply address.
    let junk = || BusMessage::new(Bytes::from_static(b"\x00\xffjunk"));
    for topic in [
        format!("_sb.presence.{service}"),
        format!("_sb.clients.{service}"),
        "_sb.discover".to_owned(),
        format!("{service}.property.setpoint"),
        format!("{service}.signal.temperatureChanged"),
    ] {
        raw.publish(&topic, junk()).await.expect("published");
    }
    raw.send(&control, junk()).await.expect("sent");
    raw.send(&method("boost"), junk()).await.expect("sent");

    // The junk signal reaches the subscriber as a decode error, and the stream goes on.
    match within("the junk signal", readings.next()).await {
        Some(Err(switchboard::client::SubscriptionError::Decode(_))) => {}
        other => panic!("expected the junk signal as a decode error, got {other:?}"),
    }
    server.emit_temperature_changed(7.0, switchboard::DateTime::UNIX_EPOCH).await.expect("emit");
    let reading = within("a reading", readings.next()).await.expect("open").expect("a reading");
    assert_eq!(reading.celsius, 7.0);
    // Everyone keeps working.
    within("getStatus", client.get_status()).await.expect("the server still serves");
    assert_eq!(within("get", client.get_setpoint()).await.unwrap(), 21.0);
    let late = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");
    within("getStatus", late.get_status()).await.expect("a new client is served");
}

/// A fresh instance id, so tests sharing a broker never see each other.
pub(crate) fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

/// The endpoint of `instance` on the broker at `url`.
pub(crate) fn endpoint(url: &str, instance: &str) -> Endpoint {
    let separator = if url.contains('?') { '&' } else { '?' };
    Endpoint::parse(&format!("{url}{separator}instance={instance}")).expect("a valid broker URL")
}

/// A server killed with SIGKILL says no goodbye: its clients notice its missing heartbeats and
/// fail what waits for it long before the deadline, fail later calls at once, and resume by
/// themselves when a new server comes.
pub(crate) async fn killed_server_fails_pending_calls_promptly(shared_url: &str) {
    let instance = unique("killed");
    let separator = if shared_url.contains('?') { '&' } else { '?' };
    let url = format!("{shared_url}{separator}heartbeat=200ms&instance={instance}");
    let server_binary = env!("CARGO_BIN_EXE_switchboard-test-server");

    let mut server = switchboard_testkit::ChildProcess::spawn(server_binary, &[&url]);
    let client = eventually("connect", async || {
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

    let _restarted = switchboard_testkit::ChildProcess::spawn(server_binary, &[&url]);
    let status =
        eventually("a call after the restart", async || client.get_status().await.ok()).await;
    assert_eq!(status.celsius, 18.5);
    // Signals flow again on the old stream.
    eventually("a reading after the restart", async || {
        match tokio::time::timeout(Duration::from_millis(200), readings.next()).await {
            Ok(Some(Ok(reading))) => Some(reading),
            _ => None,
        }
    })
    .await;
}

/// Without a broker listening, connecting fails at once with `Unreachable`, never `NotFound`,
/// which would claim the service is missing (`scheme` is the broker's plain URL scheme).
pub(crate) async fn no_broker_is_unreachable(scheme: &str) {
    let closed = switchboard_testkit::broker::ClosedPort::new();
    let port = closed.port();
    let started = Instant::now();
    let nowhere = endpoint(&format!("{scheme}://127.0.0.1:{port}"), "nobody");
    let error = within("connect", ThermostatClient::connect(&nowhere)).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Unreachable, "{error}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

/// Discovery on the broker at `shared_url` (`address`, as the adapter parses that URL) finds the
/// running servers of an interface by their presence, and says how to reach each: at `base`
/// with the instance, a URL that connects to it when `base` needs no password.
pub(crate) async fn discovery_finds_servers(
    shared_url: &str,
    address: switchboard_broker::BrokerAddress,
    base: &str,
    needs_password: bool,
) {
    let (one, two) = (unique("found"), unique("found"));
    let (_s1, _) = suite::serve_thermostat(&endpoint(shared_url, &one)).await;
    let (_s2, _) = suite::serve_thermostat(&endpoint(shared_url, &two)).await;
    let any = switchboard_broker::DiscoveryFilter::any();
    let found = within(
        "discover",
        address.discover(any.clone().interface("Thermostat"), Duration::from_millis(500)),
    )
    .await
    .expect("discover");
    for instance in [&one, &two] {
        let service = found.iter().find(|s| &s.instance == instance).expect("found");
        assert_eq!((service.interface.as_str(), service.version.as_str()), ("Thermostat", "1.0.0"));
        assert_eq!(service.address, format!("{base}?instance={instance}"));
        if needs_password {
            continue;
        }
        let client = ThermostatClient::connect(&Endpoint::parse(&service.address).unwrap()).await;
        within("getStatus", client.expect("connect").get_status()).await.expect("served");
    }
    let only =
        within("discover", address.discover(any.instance(one.clone()), Duration::from_millis(300)))
            .await
            .expect("discover");
    assert_eq!(only.iter().map(|s| s.instance.as_str()).collect::<Vec<_>>(), [one.as_str()]);
}

/// One test per body of a transport-independent module (`suite`, `conformance`), each on its
/// own instance of the shared broker that `$shared()` finds.
macro_rules! on_shared_broker {
    ($shared:path; $module:ident: $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            switchboard_testkit::init_tracing();
            let Some(server) = $shared() else { return };
            let instance = $crate::brokered::unique(stringify!($name));
            $crate::$module::$name($crate::brokered::endpoint(&server.url, &instance)).await;
        }
    )*};
}
pub(crate) use on_shared_broker;

/// Everything every broker on the brokered layer runs, in the module of one broker: the shared
/// suites and conformance bodies, the layer's faults and bad input, a server killed with
/// SIGKILL, no broker at all, and discovery. `shared` finds the shared loopback broker,
/// `private` is the testkit's private server (stopped and restarted by the restart test),
/// `parse` the adapter's URL parser, `scheme` its plain URL scheme, and `discovered` the URL
/// that discovery on the shared broker reports before `?instance=` (and whether connecting there
/// needs the password it leaves out).
macro_rules! every_broker_test {
    (
        shared: $shared:path,
        private: $private:ident,
        parse: $parse:path,
        scheme: $scheme:literal,
        discovered: $discovered:literal,
        needs_password: $needs_password:literal $(,)?
    ) => {
        use $crate::brokered::on_shared_broker;

        impl $crate::brokered::Outage for $private {
            fn stop(&mut self) {
                $private::stop(self);
            }

            fn start(&mut self) {
                self.restart();
            }
        }

        on_shared_broker!(
            $shared;
            suite:
            every_type_round_trip,
            signals_arrive_in_order,
            methods,
            call_timeout,
            handler_panic_is_contained,
            properties,
            a_watch_after_an_update_gets_the_current_value
        );

        $crate::conformance::every_body!(on_shared_broker($shared;));

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_stalled_reader_lags_without_stalling_calls() {
            let Some(server) = $shared() else { return };
            let endpoint = $crate::brokered::endpoint(&server.url, &$crate::brokered::unique("stalled_reader"));
            $crate::suite::a_stalled_reader_lags_without_stalling_calls(endpoint, $crate::suite::Link::Brokered)
                .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn paused_feedback_reader() {
            let Some(server) = $shared() else { return };
            let endpoint = $crate::brokered::endpoint(&server.url, &$crate::brokered::unique("paused_feedback"));
            $crate::conformance::paused_feedback_reader(endpoint, $crate::suite::Link::Brokered).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn broker_restart_is_survived() {
            switchboard_testkit::init_tracing();
            let Some(mut server) = $private::start() else { return };
            let endpoint = $crate::brokered::endpoint(&server.url(), "restart");
            $crate::brokered::broker_restart_is_survived(endpoint, &mut server).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn node_broker_restart_is_survived() {
            switchboard_testkit::init_tracing();
            let Some(mut server) = $private::start() else { return };
            let endpoint = switchboard::Endpoint::parse(&server.url()).expect("a URL");
            let node = switchboard::node::Node::new("restart", endpoint);
            $crate::node::a_broker_restart_is_survived(node, &mut server).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn incompatible_and_absent_servers() {
            let Some(server) = $shared() else { return };
            let absent = format!("{}?connect_timeout=300ms", server.url);
            let absent = $crate::brokered::endpoint(&absent, &$crate::brokered::unique("absent"));
            let compat = $crate::brokered::endpoint(&server.url, &$crate::brokered::unique("compat"));
            $crate::brokered::incompatible_and_absent_servers(compat, absent).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn bad_input_is_answered_and_survived() {
            switchboard_testkit::init_tracing();
            let Some(server) = $shared() else { return };
            let instance = $crate::brokered::unique("junk");
            let url = format!("{}?max_body=4096", server.url);
            let raw = $parse(&server.url).unwrap().address;
            let raw = raw.open("raw").await.expect("a raw connection");
            let endpoint = $crate::brokered::endpoint(&url, &instance);
            $crate::brokered::bad_input_is_answered_and_survived(endpoint, raw, &instance).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn killed_server_fails_pending_calls_promptly() {
            switchboard_testkit::init_tracing();
            let Some(shared) = $shared() else { return };
            $crate::brokered::killed_server_fails_pending_calls_promptly(&shared.url).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn no_broker_is_unreachable() {
            $crate::brokered::no_broker_is_unreachable($scheme).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn discovery_finds_servers() {
            let Some(shared) = $shared() else { return };
            let address = $parse(&shared.url).unwrap().address;
            $crate::brokered::discovery_finds_servers(&shared.url, address, $discovered, $needs_password)
                .await;
        }
    };
}
pub(crate) use every_broker_test;
