//! Transport-independent test bodies: each takes an endpoint, starts a server on it and drives a
//! generated client against it. Transport modules instantiate them.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use switchboard::{
    DateTime, Endpoint,
    client::{ClientOptions, DEFAULT_SLOW_READER_TIMEOUT, SIGNAL_BUFFER, SubscriptionError},
    error::{CallError, ErrorCode, MethodError, RemoteError, names as error_names},
    server::{CallContext, PeerCredentials},
};
use switchboard_core::client::ClientCore;
use switchboard_tests::{
    everything::{
        Color, EchoCollectionsReply, EchoNestedReply, EchoScalarsError, EchoScalarsReply,
        EchoTimesReply, EverythingClient, EverythingProperties, EverythingServer, Label, Point,
        SettingsProperty, Shape, Tree, Unsupported, UptimeProperty,
    },
    fixtures::EverythingEcho,
    thermostat::{
        GetStatusReply, Mode, PreheatError, PreheatFeedback, Thermostat, ThermostatClient,
        ThermostatProperties, ThermostatServer,
    },
};

/// Nothing in a test may wait longer than this.
pub(crate) const STEP: Duration = Duration::from_secs(5);

/// Awaits `future`, failing the test if it takes longer than [`STEP`].
pub(crate) async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {STEP:?}"),
    }
}

pub(crate) fn datetime(text: &str) -> DateTime {
    switchboard_core::codec::parse_datetime(text).expect("a valid test datetime")
}

// ---------------------------------------------------------------------------------------------
// Every type, with edge values.

pub(crate) fn everything_properties() -> EverythingProperties {
    EverythingProperties {
        settings: SettingsProperty { name: "start".into(), brightness: 255, favorite: None },
        uptime: UptimeProperty {
            since: datetime("2026-11-21T00:00:00.000000001Z"),
            elapsed: switchboard::Duration::nanoseconds(-1),
        },
    }
}

fn shape(note: Option<&str>, label: Option<Label>) -> Shape {
    Shape {
        origin: Point { x: -0.0, y: f64::MAX },
        label,
        note: note.map(str::to_owned),
        weight: Some(f32::MIN_POSITIVE),
        corners: vec![Point { x: 1.5, y: -2.25 }, Point { x: f64::MIN_POSITIVE, y: 1e-300 }],
    }
}

/// Every type and shape survives a round trip exactly, including edge values.
pub(crate) async fn every_type_round_trip(endpoint: Endpoint) {
    let _server = within(
        "serve",
        EverythingServer::serve(&endpoint, EverythingEcho::default(), everything_properties()),
    )
    .await
    .expect("serve Everything");
    let client = within("connect", EverythingClient::connect(&endpoint)).await.expect("connect");

    for (low, text, color) in [
        (true, "", Color::Red),
        (false, "héllo wörld ✓ 日本語 🚀 \"quoted\" \\ \n\t\u{1}", Color::Black),
    ] {
        let sent = if low {
            EchoScalarsReply {
                i8: i8::MIN,
                i16: i16::MIN,
                i32: i32::MIN,
                i64: i64::MIN,
                u8: 0,
                u16: 0,
                u32: 0,
                u64: 0,
                plain: i64::MIN,
                f32: f32::MIN,
                f64: f64::MIN_POSITIVE,
                flag: false,
                text: text.into(),
                color,
            }
        } else {
            EchoScalarsReply {
                i8: i8::MAX,
                i16: i16::MAX,
                i32: i32::MAX,
                i64: i64::MAX,
                u8: u8::MAX,
                u16: u16::MAX,
                u32: u32::MAX,
                u64: u64::MAX,
                plain: i64::MAX,
                f32: f32::MAX,
                f64: -f64::MAX,
                flag: true,
                text: text.into(),
                color,
            }
        };
        let s = sent.clone();
        let got = within(
            "echoScalars",
            client.echo_scalars(
                s.i8, s.i16, s.i32, s.i64, s.u8, s.u16, s.u32, s.u64, s.plain, s.f32, s.f64,
                s.flag, s.text, s.color,
            ),
        )
        .await
        .expect("echoScalars");
        assert_eq!(got, sent);
    }

    let times = [
        EchoTimesReply {
            at: datetime("2024-02-29T12:00:00.123456789Z"),
            lasts: switchboard::Duration::nanoseconds(1),
            blob: Vec::new(),
            maybe_at: None,
            maybe_lasts: None,
            maybe_blob: None,
            stamps: BTreeMap::new(),
            gaps: vec![],
        },
        EchoTimesReply {
            at: datetime("1970-01-01T00:00:00Z"),
            lasts: switchboard::Duration::seconds(-1),
            blob: vec![0u8, 255, 1, 128],
            maybe_at: Some(datetime("1969-12-31T23:59:59.999999999Z")),
            maybe_lasts: Some(switchboard::Duration::zero()),
            maybe_blob: Some(Vec::new()),
            stamps: BTreeMap::from([("née".to_owned(), datetime("2000-02-29T00:00:00.000001Z"))]),
            gaps: vec![None, Some(switchboard::Duration::milliseconds(-1500)), None],
        },
        EchoTimesReply {
            at: datetime("9999-12-31T23:59:59.999999999Z"),
            lasts: switchboard::Duration::days(400) + switchboard::Duration::nanoseconds(5),
            blob: (0..=255).collect(),
            maybe_at: Some(datetime("2026-11-21T05:10:00.5Z")),
            maybe_lasts: Some(switchboard::Duration::days(-2)),
            maybe_blob: Some(vec![0]),
            stamps: BTreeMap::from([(String::new(), datetime("2026-11-21T05:10:00Z"))]),
            gaps: vec![Some(switchboard::Duration::nanoseconds(999_999_999))],
        },
    ];
    for sent in times {
        let s = sent.clone();
        let got = within(
            "echoTimes",
            client.echo_times(
                s.at,
                s.lasts,
                s.blob,
                s.maybe_at,
                s.maybe_lasts,
                s.maybe_blob,
                s.stamps,
                s.gaps,
            ),
        )
        .await
        .expect("echoTimes");
        assert_eq!(got, sent);
    }

    let leaf = |name: &str| Tree { name: name.into(), parent: None, children: vec![] };
    let tree = Tree {
        name: "root".into(),
        parent: Some(Box::new(Tree {
            name: "grand".into(),
            parent: Some(Box::new(leaf("great"))),
            children: vec![],
        })),
        children: vec![
            leaf("a"),
            Tree { name: "b".into(), parent: None, children: vec![leaf("b1")] },
        ],
    };
    assert_eq!(within("echoTree", client.echo_tree(tree.clone())).await.expect("echoTree"), tree);

    let collections = EchoCollectionsReply {
        numbers: vec![i32::MIN, 0, i32::MAX],
        names: vec![String::new(), "ß".into()],
        points: vec![Point { x: 0.1, y: 0.2 }],
        colors: vec![Color::Red, Color::Green, Color::Blue, Color::Black],
        times: vec![datetime("2000-01-01T00:00:00.5Z")],
        blobs: vec![vec![], vec![1, 2, 3]],
        maybe: vec![Some(1.0), None, Some(-0.5)],
        scores: BTreeMap::from([("a".to_owned(), 1.0), ("ü".to_owned(), -1.0)]),
        shapes: BTreeMap::from([("one".to_owned(), shape(None, None))]),
    };
    let c = collections.clone();
    let got = within(
        "echoCollections",
        client.echo_collections(
            c.numbers, c.names, c.points, c.colors, c.times, c.blobs, c.maybe, c.scores, c.shapes,
        ),
    )
    .await
    .expect("echoCollections");
    assert_eq!(got, collections);
    let empty = within(
        "echoCollections (empty)",
        client.echo_collections(
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            BTreeMap::new(),
            BTreeMap::new(),
        ),
    )
    .await
    .expect("echoCollections with empty collections");
    assert!(empty.numbers.is_empty() && empty.scores.is_empty() && empty.shapes.is_empty());

    let nested = [
        EchoNestedReply {
            shape: shape(None, None),
            maybe_shape: None,
            maybe_text: None,
            maybe_list: None,
        },
        EchoNestedReply {
            shape: shape(Some("outer"), Some(Label { text: "l".into(), color: Color::Blue })),
            maybe_shape: Some(shape(None, Some(Label { text: String::new(), color: Color::Red }))),
            maybe_text: Some(String::new()),
            maybe_list: Some(vec![]),
        },
    ];
    for sent in nested {
        let s = sent.clone();
        let got = within(
            "echoNested",
            client.echo_nested(s.shape, s.maybe_shape, s.maybe_text, s.maybe_list),
        )
        .await
        .expect("echoNested");
        assert_eq!(got, sent);
    }

    within("echoNothing", client.echo_nothing()).await.expect("echoNothing");

    let error = within(
        "echoScalars (refused)",
        client.echo_scalars(
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0.0,
            0.0,
            false,
            "unsupported".into(),
            Color::Red,
        ),
    )
    .await
    .expect_err("the server refuses");
    match error {
        MethodError::Declared(EchoScalarsError::Unsupported(Unsupported { reason })) => {
            assert_eq!(reason, "this text is not echoed");
        }
        other => panic!("expected the declared `Unsupported`, got {other:?}"),
    }

    // Properties of every kind: a struct-valued one with an optional enum, and a read-only one.
    let settings = within("get settings", client.get_settings()).await.expect("get settings");
    assert_eq!(settings, everything_properties().settings);
    let changed =
        SettingsProperty { name: "ünïcode".into(), brightness: 0, favorite: Some(Color::Blue) };
    within("set settings", client.set_settings(changed.clone())).await.expect("set settings");
    assert_eq!(within("get settings", client.get_settings()).await.expect("get settings"), changed);
    assert_eq!(
        within("get uptime", client.get_uptime()).await.expect("get uptime"),
        everything_properties().uptime
    );
}

/// A signal carrying many types arrives intact and in order.
pub(crate) async fn signals_arrive_in_order(endpoint: Endpoint) {
    let server = within(
        "serve",
        EverythingServer::serve(&endpoint, EverythingEcho::default(), everything_properties()),
    )
    .await
    .expect("serve");
    let client = within("connect", EverythingClient::connect(&endpoint)).await.expect("connect");
    let mut samples = within("subscribe", client.subscribe_sample()).await.expect("subscribe");
    // A round trip puts the subscription in force on every transport before the server emits.
    within("echoNothing", client.echo_nothing()).await.expect("echoNothing");
    let at = datetime("2026-01-01T00:00:00.000000007Z");
    for counter in 0..200u64 {
        let shape = (counter % 2 == 0).then(|| shape(Some("s"), None));
        server
            .emit_sample(
                counter,
                counter as f64 / 3.0,
                at,
                Color::Green,
                shape,
                vec![counter as u8],
            )
            .await
            .expect("emit");
    }
    for counter in 0..200u64 {
        let sample =
            within("next sample", samples.next()).await.expect("stream open").expect("a sample");
        assert_eq!(sample.counter, counter);
        assert_eq!(sample.level, counter as f64 / 3.0);
        assert_eq!((sample.at, sample.color, sample.raw), (at, Color::Green, vec![counter as u8]));
        assert_eq!(sample.shape.is_some(), counter % 2 == 0);
    }
}

/// Signal streams and property watches are `Stream`s, so `StreamExt` combinators work on them.
pub(crate) async fn streams_work_with_stream_ext(endpoint: Endpoint) {
    use futures_util::StreamExt;

    let (server, _) = serve_thermostat(&endpoint).await;
    let client = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");
    let readings = within("subscribe", client.subscribe_temperature_changed()).await.unwrap();
    // A round trip puts the subscription in force on every transport before the server emits.
    within("getStatus", client.get_status()).await.expect("getStatus");
    for celsius in [20.0, 20.5, 21.0] {
        server.emit_temperature_changed(celsius, DateTime::UNIX_EPOCH).await.expect("emit");
    }
    let celsius = readings.map(|reading| reading.expect("a reading").celsius).take(3);
    assert_eq!(within("three readings", celsius.collect::<Vec<_>>()).await, [20.0, 20.5, 21.0]);

    let watch = within("watch", client.watch_setpoint()).await.expect("watch");
    let mut values = watch.map(|value| value.expect("a value"));
    assert_eq!(within("first value", values.next()).await, Some(21.0));
    server.set_setpoint(23.5).await.expect("server set");
    assert_eq!(within("change", values.next()).await, Some(23.5));
}

/// Emits `count` samples numbered from `first`, as fast as the transport takes them.
async fn emit_samples(server: &EverythingServer, first: u64, count: u64) {
    let at = datetime("2026-01-01T00:00:00Z");
    for counter in first..first + count {
        server
            .emit_sample(counter, 0.0, at, Color::Red, None, Vec::new())
            .await
            .expect("emit a sample");
    }
}

/// A reader that pauses while the server emits several queues' worth of signals misses none:
/// its full queue holds the connection back, and the server queues what is emitted meanwhile
/// (over Unix, up to 4 MiB per peer), instead of dropping.
pub(crate) async fn a_paused_reader_misses_no_signal(endpoint: Endpoint) {
    let server = within(
        "serve",
        EverythingServer::serve(&endpoint, EverythingEcho::default(), everything_properties()),
    )
    .await
    .expect("serve");
    let client = within("connect", EverythingClient::connect(&endpoint)).await.expect("connect");
    let mut samples = within("subscribe", client.subscribe_sample()).await.expect("subscribe");
    within("echoNothing", client.echo_nothing()).await.expect("echoNothing");
    let total = 3 * SIGNAL_BUFFER as u64;
    let emitter = tokio::spawn(async move {
        emit_samples(&server, 0, total).await;
        server
    });
    // Longer than the emitter needs to fill the queue, shorter than the slow-reader timeout.
    tokio::time::sleep(DEFAULT_SLOW_READER_TIMEOUT / 2).await;
    for counter in 0..total {
        match within("next sample", samples.next()).await {
            Some(Ok(sample)) => assert_eq!(sample.counter, counter),
            other => panic!("sample {counter}: expected it, got {other:?}"),
        }
    }
    let _server = within("emitter", emitter).await.expect("the emitter finished");
    // The connection is still usable afterwards.
    within("echoNothing", client.echo_nothing()).await.expect("echoNothing");
}

/// How a client is linked to its server, which decides what a full local reader does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// A direct connection (the Unix socket): a full reader holds the connection back, for up to
    /// the slow-reader timeout, while the server's queue for it fills; every message is read or
    /// counted.
    Direct,
    /// Through a broker (MQTT): a full reader misses messages at once and is told how many;
    /// the broker may drop more under its own limits, uncounted.
    Brokered,
}

/// A stream nobody reads holds its connection back only once, for the slow-reader timeout:
/// calls keep working, and when the stream is read again it reports how much it missed.
pub(crate) async fn a_stalled_reader_lags_without_stalling_calls(endpoint: Endpoint, link: Link) {
    let server = within(
        "serve",
        EverythingServer::serve(&endpoint, EverythingEcho::default(), everything_properties()),
    )
    .await
    .expect("serve");
    // The default. Over Unix, the server's 4 MiB stream queue takes what the connection does
    // not read meanwhile, so the server does not drop the connection while it waits.
    let patience = DEFAULT_SLOW_READER_TIMEOUT;
    let options = ClientOptions::default().slow_reader_timeout(patience);
    let client = within("connect", EverythingClient::connect_with(&endpoint, options))
        .await
        .expect("connect");
    let mut stalled = within("subscribe", client.subscribe_sample()).await.expect("subscribe");
    within("echoNothing", client.echo_nothing()).await.expect("echoNothing");
    let total = 4 * SIGNAL_BUFFER as u64;
    let emitter = tokio::spawn(async move {
        emit_samples(&server, 0, total).await;
        server
    });
    // The stream is not read at all while the server emits, long enough for every queue on
    // the way to fill up; calls still get through.
    tokio::time::sleep(patience / 2).await;
    for _ in 0..3 {
        within("echoNothing while a stream is stalled", client.echo_nothing())
            .await
            .expect("echoNothing");
    }
    // A hang guard, longer than STEP: a brokered emit waits for the broker's answer to each
    // publish, so in a debug build these signals alone have taken about 5 s over Redis, MQTT
    // and AMQP (1.2 s over NATS, whose client does not wait), which STEP cut off.
    let emitted = tokio::time::timeout(Duration::from_secs(30), emitter).await;
    let server = emitted.expect("the emit finishes within 30 s").expect("the emitter finished");
    // Read until the stream has been quiet for a while.
    let (mut seen, mut missed, mut next) = (0u64, 0u64, 0u64);
    while let Ok(item) = tokio::time::timeout(Duration::from_millis(500), stalled.next()).await {
        match item {
            Some(Ok(sample)) => {
                assert!(sample.counter >= next, "sample {} after {next}", sample.counter);
                next = sample.counter + 1;
                seen += 1;
            }
            Some(Err(SubscriptionError::Lagged { missed: count })) => missed += count,
            other => panic!("expected a sample or a gap, got {other:?}"),
        }
    }
    assert!(seen >= SIGNAL_BUFFER as u64, "a full queue is kept: saw {seen}");
    assert!(missed > 0, "a stalled reader misses signals, and is told");
    match link {
        Link::Direct => assert_eq!(seen + missed, total, "read or counted, every one"),
        Link::Brokered => assert!(seen + missed <= total, "{seen} + {missed} > {total}"),
    }
    // Caught up: new signals arrive again, with nothing missed.
    emit_samples(&server, total, 10).await;
    for counter in total..total + 10 {
        match within("next sample", stalled.next()).await {
            Some(Ok(sample)) => assert_eq!(sample.counter, counter),
            other => panic!("sample {counter}: expected it, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The thermostat: methods, properties and their versions, timeouts, many calls in flight.

/// A thermostat whose `boost` sleeps for `forHowLong` and which records its callers.
#[derive(Clone, Default)]
pub(crate) struct TestThermostat {
    callers: Arc<Mutex<Vec<Option<PeerCredentials>>>>,
}

impl Thermostat for TestThermostat {
    async fn boost(
        &self,
        ctx: &CallContext,
        extra_celsius: f64,
        for_how_long: switchboard::Duration,
        reason: Option<String>,
    ) -> Result<DateTime, RemoteError> {
        self.callers.lock().unwrap().push(ctx.credentials());
        if reason.as_deref() == Some("panic") {
            panic!("secret detail /home/user/.ssh/id_rsa");
        }
        if extra_celsius < 0.0 {
            return Err(RemoteError::client_error("boosts only go up"));
        }
        tokio::time::sleep(for_how_long.to_std().unwrap_or_default()).await;
        // Encodes the boost in the reply so each concurrent call can check it got its own answer.
        Ok(datetime("2030-01-01T00:00:00Z")
            + switchboard::Duration::milliseconds((extra_celsius * 1000.0) as i64))
    }

    async fn get_status(&self, _ctx: &CallContext) -> Result<GetStatusReply, RemoteError> {
        Ok(GetStatusReply { mode: Mode::Heat, celsius: 20.0, history: vec![19.0, 19.5, 20.0] })
    }

    async fn preheat(
        &self,
        goal: switchboard::action::GoalContext<PreheatFeedback>,
        target_celsius: f64,
    ) -> Result<f64, switchboard::error::HandlerError<PreheatError>> {
        goal.feedback(PreheatFeedback { celsius: target_celsius, percent: 100 }).await;
        Ok(target_celsius)
    }

    async fn update_setpoint(&self, _ctx: &CallContext, celsius: &f64) -> Result<(), RemoteError> {
        if *celsius > 35.5 {
            return Err(RemoteError::client_error("too hot"));
        }
        Ok(())
    }
}

impl TestThermostat {
    /// The credentials of every `boost` caller so far.
    pub(crate) fn callers(&self) -> Vec<Option<PeerCredentials>> {
        self.callers.lock().unwrap().clone()
    }
}

pub(crate) fn thermostat_properties() -> ThermostatProperties {
    ThermostatProperties { setpoint: 21.0, mode: Mode::Heat }
}

/// Starts a [`TestThermostat`] at `endpoint`.
pub(crate) async fn serve_thermostat(endpoint: &Endpoint) -> (ThermostatServer, TestThermostat) {
    let handler = TestThermostat::default();
    let server = within(
        "serve",
        ThermostatServer::serve(endpoint, handler.clone(), thermostat_properties()),
    )
    .await
    .expect("serve Thermostat");
    (server, handler)
}

/// Methods answer, refuse with named errors, and many calls share one connection.
pub(crate) async fn methods(endpoint: Endpoint) {
    let (_server, handler) = serve_thermostat(&endpoint).await;
    let client = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");

    let status = within("getStatus", client.get_status()).await.expect("getStatus");
    assert_eq!(
        status,
        GetStatusReply { mode: Mode::Heat, celsius: 20.0, history: vec![19.0, 19.5, 20.0] }
    );

    let refused =
        within("boost", client.boost(-1.0, switchboard::Duration::zero(), None)).await.unwrap_err();
    assert!(
        matches!(&refused, CallError::Remote(e) if e.message() == "boosts only go up"),
        "{refused:?}"
    );

    // 64 calls in flight on one connection, finishing in reverse order, each matched to its caller.
    let calls = (0..64).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            let delay = switchboard::Duration::milliseconds(200 - 3 * i);
            (i, client.boost(i as f64, delay, Some(format!("call {i}"))).await)
        })
    });
    for call in calls.collect::<Vec<_>>() {
        let (i, result) = within("concurrent boost", call).await.expect("task");
        let ends_at = result.expect("boost");
        assert_eq!(
            ends_at,
            datetime("2030-01-01T00:00:00Z") + switchboard::Duration::milliseconds(i * 1000)
        );
    }

    assert_eq!(handler.callers().len(), 65, "every call reached the handler once");
}

/// A call that outlives its timeout fails with `Timeout`; the connection stays usable.
pub(crate) async fn call_timeout(endpoint: Endpoint) {
    let (_server, _) = serve_thermostat(&endpoint).await;
    let options = ClientOptions::default().call_timeout(Duration::from_millis(150));
    let client = within("connect", ThermostatClient::connect_with(&endpoint, options))
        .await
        .expect("connect");
    let error = within("slow boost", client.boost(1.0, switchboard::Duration::seconds(3), None))
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Timeout(t) if t == Duration::from_millis(150)), "{error:?}");
    within("getStatus", client.get_status()).await.expect("the client still works after a timeout");
}

/// A panicking handler gives the caller a generic error that leaks nothing; the server goes on.
pub(crate) async fn handler_panic_is_contained(endpoint: Endpoint) {
    let (_server, _) = serve_thermostat(&endpoint).await;
    let client = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");
    let error =
        within("boost", client.boost(1.0, switchboard::Duration::zero(), Some("panic".into())))
            .await
            .unwrap_err();
    let remote = error.as_remote().expect("a remote error");
    assert_eq!((remote.name(), remote.code()), (error_names::INTERNAL, ErrorCode::ServerError));
    assert!(
        !remote.message().contains("secret") && !remote.message().contains(".ssh"),
        "{remote:?}"
    );
    within("getStatus", client.get_status()).await.expect("the server still serves");
}

/// A client that updated a property and then watches it gets the current value first. On the
/// brokered layer the update's answer carried the same version as the value the watch asks for,
/// which was dropped as not newer, so the watch waited for the next change.
pub(crate) async fn a_watch_after_an_update_gets_the_current_value(endpoint: Endpoint) {
    let (_server, _) = serve_thermostat(&endpoint).await;
    let client = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");
    within("set", client.set_setpoint(22.5)).await.expect("set");
    let mut watch = within("watch", client.watch_setpoint()).await.expect("watch");
    let first = within("first value", watch.next()).await.expect("a value");
    assert_eq!(first.expect("decoded"), 22.5);
}

/// Properties: get, watch (current value, then every change), set, stale versions, read-only.
pub(crate) async fn properties(endpoint: Endpoint) {
    let (server, _) = serve_thermostat(&endpoint).await;
    let alice = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");
    let bob = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");

    assert_eq!(within("get", alice.get_setpoint()).await.unwrap(), 21.0);
    assert_eq!(within("get", alice.get_mode()).await.unwrap(), Mode::Heat);

    let mut watch = within("watch", bob.watch_setpoint()).await.unwrap();
    assert_eq!(within("first value", watch.next()).await.unwrap().unwrap(), 21.0);
    let first_version = watch.version().expect("a version");

    within("set", alice.set_setpoint(22.5)).await.expect("set");
    assert_eq!(within("change", watch.next()).await.unwrap().unwrap(), 22.5);
    assert_eq!(watch.version(), Some(first_version + 1));
    assert_eq!(within("get", bob.get_setpoint()).await.unwrap(), 22.5);

    // The server refuses an update the handler rejects, and the value stays.
    let refused = within("set", alice.set_setpoint(99.0)).await.unwrap_err();
    assert!(matches!(&refused, CallError::Remote(e) if e.message() == "too hot"), "{refused:?}");
    assert_eq!(within("get", alice.get_setpoint()).await.unwrap(), 22.5);

    // A server-side change reaches watchers too.
    server.set_setpoint(19.0).await.expect("server set");
    assert_eq!(within("change", watch.next()).await.unwrap().unwrap(), 19.0);
    assert_eq!(server.setpoint(), 19.0);

    // An update based on a stale version is refused, and the refusal brings the current version.
    // Alice last saw version 2; the server's own change moved it to 3.
    let stale = within("stale set", alice.set_setpoint(20.0)).await.unwrap_err();
    let remote = stale.as_remote().expect("a remote error");
    assert_eq!((remote.name(), remote.code()), (error_names::OUT_OF_SYNC, ErrorCode::OutOfSync));
    assert!(
        remote.message().contains("version 2") && remote.message().contains("version is 3"),
        "{remote:?}"
    );
    assert_eq!(
        within("get", bob.get_setpoint()).await.unwrap(),
        19.0,
        "a refused update changes nothing"
    );
    // The refusal updated alice's view, so her retry is based on the current version and succeeds.
    within("retry", alice.set_setpoint(20.0)).await.expect("retry");

    // The same through the untyped core API, which the CLI will use.
    let carol = within(
        "connect",
        ClientCore::connect(
            &endpoint,
            &switchboard_tests::thermostat::INTERFACE,
            ClientOptions::default(),
        ),
    )
    .await
    .unwrap();
    let (version, _) = within("get", carol.get_property_raw("setpoint")).await.unwrap();
    within("set", alice.set_setpoint(21.5)).await.expect("set");
    let error = within(
        "stale set",
        carol.set_property_raw("setpoint", br#"{"celsius":25.0}"#.as_slice().into()),
    )
    .await
    .unwrap_err();
    let remote = error.as_remote().expect("a remote error");
    assert_eq!(remote.name(), error_names::OUT_OF_SYNC);
    assert!(remote.message().contains(&format!("version {version}")), "{remote:?}");
    within("retry", carol.set_property_raw("setpoint", br#"{"celsius":25.0}"#.as_slice().into()))
        .await
        .expect("retry");
    assert_eq!(within("get", alice.get_setpoint()).await.unwrap(), 25.0);

    // Read-only properties refuse updates.
    let error =
        within("set mode", carol.set_property_raw("mode", br#"{"mode":10}"#.as_slice().into()))
            .await
            .unwrap_err();
    let remote = error.as_remote().expect("a remote error");
    assert_eq!(remote.name(), error_names::READ_ONLY);
    assert_eq!(within("get", alice.get_mode()).await.unwrap(), Mode::Heat);

    // A watcher that joins during a burst of changes sees a consistent, increasing sequence
    // ending with the final value: nothing between snapshot and changes is lost.
    let writer = server.clone();
    let burst = tokio::spawn(async move {
        for i in 0..200 {
            writer.set_setpoint(f64::from(i)).await.expect("server set");
        }
    });
    let mut late = within("watch", alice.watch_setpoint()).await.unwrap();
    let mut last_version = 0;
    loop {
        let value = within("burst value", late.next()).await.unwrap().unwrap();
        let version = late.version().unwrap();
        assert!(version > last_version, "versions must increase: {version} after {last_version}");
        last_version = version;
        if value == 199.0 {
            break;
        }
    }
    burst.await.unwrap();
}
