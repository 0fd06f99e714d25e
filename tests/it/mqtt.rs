//! The shared suite over MQTT v5 on the loopback mosquitto, plus what only a broker shows:
//! broker restarts, raw StingerIPC-style requests (malformed ones included) and the exact bytes
//! we put on the wire.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use switchboard::{
    Endpoint,
    error::{CallError, ErrorCode, TransportErrorKind, names as error_names},
};
use switchboard_core::InterfaceDescriptor;
use switchboard_testkit::{
    ChildProcess,
    broker::{PrivateMosquitto, shared_mosquitto},
};
use switchboard_tests::thermostat::{INTERFACE, ThermostatClient};

use crate::{
    conformance,
    suite::{self, within},
};

/// A fresh instance id, so tests sharing the broker never see each other.
fn unique(tag: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

fn endpoint(url: &str, instance: &str) -> Endpoint {
    let separator = if url.contains('?') { '&' } else { '?' };
    Endpoint::parse(&format!("{url}{separator}instance={instance}")).expect("a valid MQTT URL")
}

/// One test per body of a transport-independent module (`suite`, `conformance`), each on its own
/// instance of the shared broker, whose retained messages it clears afterwards.
macro_rules! mqtt_tests {
    ($module:ident: $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            switchboard_testkit::init_tracing();
            let Some(broker) = shared_mosquitto() else { return };
            let instance = unique(stringify!($name));
            $module::$name(endpoint(&broker.url, &instance)).await;
            raw::clear_retained(&broker.url, &instance).await;
        }
    )*};
}

mqtt_tests!(
    suite:
    every_type_round_trip,
    signals_arrive_in_order,
    streams_work_with_stream_ext,
    methods,
    call_timeout,
    handler_panic_is_contained,
    properties,
    a_watch_after_an_update_gets_the_current_value
);

conformance::every_body!(mqtt_tests);

mod extensions;
mod lifecycle;
mod liveness;
pub(crate) mod raw;
mod tls;

use raw::{Raw, request, text, user};

/// Waits until `check` passes, for at most ten seconds.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} did not happen within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The broker dies and comes back empty: server and client reconnect and re-subscribe by
/// themselves, the server republishes its retained state, a call during the outage fails at
/// once with a transport error, and calls after recovery succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_lags_without_stalling_calls() {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("stalled_reader");
    let endpoint = endpoint(&broker.url, &instance);
    suite::a_stalled_reader_lags_without_stalling_calls(endpoint, suite::Link::Brokered).await;
    raw::clear_retained(&broker.url, &instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_feedback_reader() {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("paused_feedback");
    let endpoint = endpoint(&broker.url, &instance);
    conformance::paused_feedback_reader(endpoint, suite::Link::Brokered).await;
    raw::clear_retained(&broker.url, &instance).await;
}

impl crate::brokered::Outage for PrivateMosquitto {
    fn stop(&mut self) {
        PrivateMosquitto::stop(self);
    }

    fn start(&mut self) {
        self.restart();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_broker_restart_is_survived() {
    switchboard_testkit::init_tracing();
    let Some(mut broker) = PrivateMosquitto::start() else { return };
    let endpoint = Endpoint::parse(&broker.url()).expect("a URL");
    let node = switchboard::node::Node::new("restart", endpoint);
    crate::node::a_broker_restart_is_survived(node, &mut broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_is_survived() {
    switchboard_testkit::init_tracing();
    let Some(mut broker) = PrivateMosquitto::start() else { return };
    let endpoint = endpoint(&broker.url(), "restart");
    let (server, _) = suite::serve_thermostat(&endpoint).await;
    let client = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");
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
    // A change while the broker is away is kept and published once it is back.
    server.set_setpoint(30.0).await.expect("a server-side change during the outage");

    broker.restart();
    let status = eventually("a call after recovery", async || client.get_status().await.ok()).await;
    assert_eq!(status.celsius, 20.0);
    // Retained values were lost with the broker; the server republished them.
    assert_eq!(within("get", client.get_setpoint()).await.unwrap(), 30.0);
    eventually("the watch resumes", async || {
        match tokio::time::timeout(Duration::from_millis(200), watch.next()).await {
            Ok(Some(Ok(30.0))) => Some(()),
            _ => None,
        }
    })
    .await;
    // The client re-subscribed to signals by itself.
    eventually("a signal after recovery", async || {
        server.emit_temperature_changed(1.5, switchboard::DateTime::UNIX_EPOCH).await.ok()?;
        match tokio::time::timeout(Duration::from_millis(200), readings.next()).await {
            Ok(Some(Ok(reading))) => Some(reading),
            _ => None,
        }
    })
    .await;
    // The server re-subscribed too: a new client finds it and is served.
    let late =
        within("connect after recovery", ThermostatClient::connect(&endpoint)).await.unwrap();
    within("getStatus", late.get_status()).await.expect("a new client is served");
}

/// Without a broker, connecting fails at once with `Unreachable`, as on every broker: `NotFound`
/// would claim the service is missing, which an unreachable broker cannot tell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_broker_is_unreachable() {
    let closed = switchboard_testkit::broker::ClosedPort::new();
    let port = closed.port();
    let endpoint = endpoint(&format!("mqtt://127.0.0.1:{port}"), "nobody");
    let error = within("connect", ThermostatClient::connect(&endpoint)).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Unreachable, "{error}");
}

/// Every message our server and client publish goes at the QoS, and with the retain flag, that
/// the wire description (`switchboard_wire::mqtt`, which the generated documents show) gives
/// its kind of topic: a transport that publishes anything else fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publish_has_the_qos_and_retain_flag_of_the_wire_description() {
    use switchboard_wire::mqtt;

    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("wire-qos");
    let (server_id, client_id) = (format!("qs-{instance}"), format!("qc-{instance}"));
    let mut observer = Raw::connect(&broker.url, &format!("observer-{instance}")).await;
    observer
        .subscribe_as_published(&[
            format!("Thermostat/{instance}/#"),
            format!("client/{server_id}/#"),
            format!("client/{client_id}/#"),
        ])
        .await;
    let with_id = |id: &str| endpoint(&format!("{}?client_id={id}", broker.url), &instance);
    let (server, _) = suite::serve_thermostat(&with_id(&server_id)).await;
    let client = within("connect", ThermostatClient::connect(&with_id(&client_id))).await.unwrap();
    let mut readings = within("subscribe", client.subscribe_temperature_changed()).await.unwrap();
    within("getStatus", client.get_status()).await.expect("getStatus");
    server.emit_temperature_changed(20.5, switchboard::DateTime::UNIX_EPOCH).await.expect("emit");
    within("reading", readings.next()).await.expect("a reading").expect("decoded");
    within("set", client.set_setpoint(22.5)).await.expect("set");
    let goal = within("preheat", client.preheat(21.0)).await.expect("a goal");
    within("result", goal.result()).await.expect("preheated");
    drop(client);
    within("shutdown", server.shutdown()).await;

    // Whether `topic` is of `kind`: each level of its template is the same literal, this
    // test's instance or one of its client ids, or any name for a member's placeholder; an
    // action request has `/goal`, `/cancel` or `/attach` after it.
    let matches = |kind: &mqtt::TopicKind, topic: &str| {
        let mut levels = topic.split('/');
        let fits = kind.template.split('/').all(|template| {
            let Some(level) = levels.next() else { return false };
            match template {
                "{interface_name}" => level == "Thermostat",
                "{service_id}" => level == instance,
                "{client_id}" => level == server_id || level == client_id,
                _ if template.starts_with('{') => true,
                literal => level == literal,
            }
        });
        let rest: Vec<&str> = levels.collect();
        fits && match kind.key == mqtt::ACTION_REQUESTS.key {
            true => matches!(rest[..], ["goal" | "cancel" | "attach"]),
            false => rest.is_empty(),
        }
    };
    let seen = observer.drain(Duration::from_millis(500)).await;
    let mut kinds_seen = std::collections::BTreeSet::new();
    for publish in &seen {
        let topic = String::from_utf8_lossy(&publish.topic).into_owned();
        let kinds: Vec<&mqtt::TopicKind> =
            mqtt::TOPIC_KINDS.iter().filter(|kind| matches(kind, &topic)).collect();
        let [kind] = kinds[..] else { panic!("{topic} is of {} kinds: {kinds:?}", kinds.len()) };
        let qos = publish.qos as u8;
        // Requests and replies go at the RPC QoS, whose default the table gives.
        assert_eq!(qos, kind.qos, "{topic} ({})", kind.key);
        // An empty retained message clears a retained value: only retained kinds send one.
        assert_eq!(publish.retain, kind.retained, "{topic} ({})", kind.key);
        kinds_seen.insert(kind.key);
    }
    for kind in [
        &mqtt::SIGNALS,
        &mqtt::PROPERTY_VALUES,
        &mqtt::PROPERTY_UPDATES,
        &mqtt::PROPERTY_UPDATE_RESPONSES,
        &mqtt::METHOD_REQUESTS,
        &mqtt::METHOD_RESPONSES,
        &mqtt::INTERFACE_DISCOVERY,
        &mqtt::LWT,
        &mqtt::ACTION_REQUESTS,
        &mqtt::ACTION_EVENTS,
        &mqtt::INTERFACE_SCHEMA,
    ] {
        assert!(kinds_seen.contains(kind.key), "nothing seen on {} in {seen:?}", kind.key);
    }
    raw::clear_retained(&broker.url, &instance).await;
}

/// A broker on a Unix socket works like one on TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_broker() {
    let Some(broker) = PrivateMosquitto::start() else { return };
    let url = format!("mqtt+unix://{}", broker.socket().display());
    let endpoint = endpoint(&url, "unix");
    let (_server, _) = suite::serve_thermostat(&endpoint).await;
    let client = within("connect", ThermostatClient::connect(&endpoint)).await.unwrap();
    within("getStatus", client.get_status()).await.expect("a call over mqtt+unix");
}

/// Discovery: an absent instance is `NotFound`; `*` finds one of several; a different interface
/// hash is refused naming both versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_compatibility() {
    let Some(broker) = shared_mosquitto() else { return };
    let tag = unique("discovery");
    let missing = endpoint(&broker.url, &format!("{tag}-absent"));
    let mut options = switchboard::transport::mqtt::MqttOptions::default();
    options.discovery_timeout = Duration::from_millis(300);
    let parsed = switchboard::transport::mqtt::MqttEndpoint::parse(&broker.url).unwrap();
    let quick = Endpoint::mqtt(parsed.endpoint.with_options(options))
        .with_instance(format!("{tag}-absent"))
        .unwrap();
    let error = within("connect", ThermostatClient::connect(&quick)).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::NotFound, "{error}");
    drop(missing);

    let one = endpoint(&broker.url, &format!("{tag}-1"));
    let two = endpoint(&broker.url, &format!("{tag}-2"));
    let (_s1, _) = suite::serve_thermostat(&one).await;
    let (_s2, _) = suite::serve_thermostat(&two).await;
    for e in [&one, &two] {
        let client = within("connect", ThermostatClient::connect(e)).await.unwrap();
        within("getStatus", client.get_status()).await.unwrap();
    }
    // `*` on a broker of its own, where the only instance is this test's: on the shared broker
    // other tests' servers come and go, and `*` could pick one that is shutting down.
    let Some(private) = PrivateMosquitto::start() else { return };
    let lone = endpoint(&private.url(), &format!("{tag}-lone"));
    let (_lone_server, _) = suite::serve_thermostat(&lone).await;
    let any = endpoint(&private.url(), "*");
    let client = within("connect to *", ThermostatClient::connect(&any)).await.unwrap();
    within("getStatus via *", client.get_status()).await.unwrap();

    let other = InterfaceDescriptor {
        version: "2.0.0".into(),
        hash: "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into(),
        // No description, as a client older than the per-member check sends: another hash is
        // refused outright (tests/it/evolve.rs compares descriptions).
        description: "".into(),
        ..INTERFACE.clone()
    };
    let error = within(
        "connect",
        switchboard_core::client::ClientCore::connect(&one, &other, Default::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::IncompatibleInterface, "{error}");
    let message = error.to_string();
    for expected in ["2.0.0", "001122334455", "1.0.0", INTERFACE.short_hash()] {
        assert!(message.contains(expected), "`{message}` should mention {expected}");
    }
    for i in ["1", "2"] {
        raw::clear_retained(&broker.url, &format!("{tag}-{i}")).await;
    }
}

/// Raw StingerIPC-style requests, malformed ones included: each gets the matching ReturnCode,
/// nothing we send carries control characters, and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_requests_get_return_codes() {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("raw");
    let endpoint = endpoint(&broker.url, &instance);
    let (_server, _) = suite::serve_thermostat(&endpoint).await;
    let bystander = within("connect", ThermostatClient::connect(&endpoint)).await.unwrap();
    let mut raw = Raw::connect(&broker.url, &format!("raw-{instance}")).await;
    let responses = format!("client/raw-{instance}/Thermostat/#");
    raw.subscribe(&responses).await;
    let base = format!("Thermostat/{instance}");
    let method_response = |m: &str| format!("client/raw-{instance}/Thermostat/method/{m}/response");
    let update_response =
        |p: &str| format!("client/raw-{instance}/Thermostat/property/{p}/update/response");

    // Each answer: ReturnCode always, ErrorName on errors, no control characters anywhere.
    let mut call = async |method: &str, payload: &'static str, correlation: &[u8]| {
        let response = method_response(method);
        raw.publish(
            &format!("{base}/method/{method}/request"),
            false,
            payload,
            request(&response, correlation),
        )
        .await;
        let reply = raw.next_on(&response).await;
        let properties = reply.properties.clone().unwrap();
        assert_eq!(
            properties.correlation_data.as_deref(),
            Some(correlation),
            "echoed byte for byte"
        );
        assert_eq!(properties.content_type.as_deref(), Some("application/json"));
        for (k, v) in &properties.user_properties {
            assert!(!k.chars().chain(v.chars()).any(char::is_control), "{k}: {v:?}");
        }
        let code: u8 = user(&reply, "ReturnCode").expect("ReturnCode").parse().unwrap();
        (code, user(&reply, "ErrorName"), user(&reply, "DebugInfo"), text(&reply))
    };

    let (code, name, _, body) = call("getStatus", "{}", b"raw-1").await;
    assert_eq!(
        (code, name, body.as_str()),
        (0, None, r#"{"mode":1,"celsius":20.0,"history":[19.0,19.5,20.0]}"#)
    );
    let (code, name, _, body) = call("selfDestruct", "{}", b"raw-2").await;
    assert_eq!(
        (code, name.as_deref(), body.as_str()),
        (9, Some(error_names::UNKNOWN_METHOD), "{}")
    );
    let (code, name, debug, _) = call("boost", "{not json", b"raw-3").await;
    assert_eq!((code, name.as_deref()), (8, Some(error_names::INVALID_ARGUMENTS)), "{debug:?}");
    let wrong = r#"{"extraCelsius":"hot\n\u0007","forHowLong":"PT1S","reason":null}"#;
    let (code, _, debug, _) = call("boost", wrong, b"raw-4").await;
    assert_eq!(code, 8);
    assert!(debug.unwrap().contains("extraCelsius"));
    // Arguments are named: a JSON array of positional arguments is refused (issue 15, defect 17).
    let (code, name, debug, _) = call("boost", r#" [1,"PT1M",null]"#, b"raw-array").await;
    assert_eq!((code, name.as_deref()), (8, Some(error_names::INVALID_ARGUMENTS)), "{debug:?}");
    assert!(debug.unwrap().contains("JSON object of named arguments"));
    let (code, name, _, _) = call("getStatus", "[]", b"raw-empty-array").await;
    assert_eq!((code, name.as_deref()), (8, Some(error_names::INVALID_ARGUMENTS)));
    let unknown = r#"{"extraCelsius":1.0,"forHowLong":"PT0S","reason":null,"bogus\n":1}"#;
    let (code, name, debug, _) = call("boost", unknown, b"raw-5").await;
    assert_eq!(
        (code, name.as_deref()),
        (0, None),
        "a key the server does not know is ignored (docs/interface-format.md): {debug:?}"
    );
    // A handler error message with control characters reaches the wire as one clean line.
    let (code, name, debug, _) = call(
        "boost",
        r#"{"extraCelsius":-1.0,"forHowLong":"PT0S","reason":"a\nb"}"#,
        b"\xff\x00\n\x01",
    )
    .await;
    assert_eq!(
        (code, name.as_deref(), debug.as_deref()),
        (1, Some("ApplicationError"), Some("boosts only go up"))
    );
    let (code, _, _, body) = call(
        "boost",
        r#"{"extraCelsius":1.5,"forHowLong":"PT0.0015S","reason":"\u0001\n"}"#,
        &[0xff, 0, 1, b'\n'],
    )
    .await;
    assert_eq!((code, body.as_str()), (0, r#"{"endsAt":"2030-01-01T00:00:01.500Z"}"#));

    // A request with no response topic runs and gets no answer.
    raw.publish(
        &format!("{base}/method/getStatus/request"),
        false,
        "{}",
        PublishProperties::default(),
    )
    .await;
    assert!(
        raw.try_next_on(&method_response("getStatus"), Duration::from_millis(300)).await.is_none()
    );

    // Property updates: PropertyVersion missing, garbage, stale, right; wrong content type.
    let mut update = async |version: Option<&str>,
                            content_type: Option<&str>,
                            payload: &'static str| {
        let response = update_response("setpoint");
        let mut properties = request(&response, b"u");
        properties.content_type = content_type.map(str::to_owned);
        if let Some(version) = version {
            properties.user_properties.push(("PropertyVersion".into(), version.into()));
        }
        raw.publish(&format!("{base}/property/setpoint/update"), false, payload, properties).await;
        let reply = raw.next_on(&response).await;
        let code: u8 = user(&reply, "ReturnCode").expect("ReturnCode").parse().unwrap();
        let version: u64 =
            user(&reply, "PropertyVersion").expect("PropertyVersion").parse().unwrap();
        (code, version, text(&reply))
    };
    let json = Some("application/json");
    assert_eq!(
        update(None, json, r#"{"celsius":22.0}"#).await,
        (12, 1, r#"{"celsius":21.0}"#.into())
    );
    assert_eq!(
        update(Some("abc"), json, r#"{"celsius":22.0}"#).await,
        (4, 1, r#"{"celsius":21.0}"#.into())
    );
    assert_eq!(
        update(Some("-1"), json, r#"{"celsius":22.0}"#).await,
        (4, 1, r#"{"celsius":21.0}"#.into())
    );
    assert_eq!(update(Some("1"), Some("text/plain"), r#"{"celsius":22.0}"#).await.0, 8);
    assert_eq!(update(Some("1"), json, r#"{"celsius":"warm"}"#).await.0, 8);
    assert_eq!(update(Some("1"), json, "][").await.0, 8);
    assert_eq!(
        update(Some("7"), json, r#"{"celsius":22.0}"#).await,
        (12, 1, r#"{"celsius":21.0}"#.into())
    );
    assert_eq!(
        update(Some("1"), None, r#"{"celsius":22.0}"#).await,
        (0, 2, r#"{"celsius":22.0}"#.into())
    );
    // Read-only properties refuse updates with Unauthorized.
    let response = update_response("mode");
    let mut properties = request(&response, b"m");
    properties.user_properties.push(("PropertyVersion".into(), "1".into()));
    raw.publish(&format!("{base}/property/mode/update"), false, r#"{"mode":0}"#, properties).await;
    assert_eq!(user(&raw.next_on(&response).await, "ReturnCode").as_deref(), Some("10"));

    // Every refusal left the server serving everyone else.
    within("getStatus", bystander.get_status()).await.expect("the server still serves");
    assert_eq!(within("get", bystander.get_setpoint()).await.unwrap(), 22.0);
    raw::clear_retained(&broker.url, &instance).await;
}

/// What we put on the wire, byte for byte: interface info, retained values with versions,
/// signals, value encodings, ReturnCode strings, and presence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_bytes() {
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("bytes");
    let url = format!("{}?client_id=srv-{instance}", broker.url);
    let server_endpoint = endpoint(&url, &instance);
    let mut raw = Raw::connect(&broker.url, &format!("raw-{instance}")).await;
    raw.subscribe(&format!("Thermostat/{instance}/#")).await;
    raw.subscribe(&format!("client/srv-{instance}/online")).await;
    raw.subscribe(&format!("client/raw-{instance}/#")).await;
    let (server, _) = suite::serve_thermostat(&server_endpoint).await;

    let info = raw.next_on(&format!("Thermostat/{instance}/interface")).await;
    let properties = info.properties.clone().unwrap();
    assert_eq!(properties.content_type.as_deref(), Some("application/json"));
    assert_eq!(properties.message_expiry_interval, Some(144));
    let doc: serde_json::Value = serde_json::from_slice(&info.payload).unwrap();
    let body = text(&info);
    let keys: Vec<&str> = body.split("\":").filter_map(|k| k.rsplit('"').next()).collect();
    assert_eq!(
        &keys[..7],
        ["interface_name", "title", "version", "instance", "connection_topic", "timestamp", "hash"]
    );
    assert_eq!(doc["interface_name"], "Thermostat");
    assert_eq!(doc["instance"], instance.as_str());
    assert_eq!(doc["connection_topic"], format!("client/srv-{instance}/online"));
    assert!(doc["timestamp"].as_str().unwrap().ends_with('Z'), "{doc}");
    assert_eq!(doc["hash"], INTERFACE.hash.as_ref());

    let value = raw.next_on(&format!("Thermostat/{instance}/property/setpoint/value")).await;
    assert!(!value.payload.is_empty());
    assert_eq!(user(&value, "PropertyVersion").as_deref(), Some("1"));
    assert_eq!(text(&value), r#"{"celsius":21.0}"#);
    let mode = raw.next_on(&format!("Thermostat/{instance}/property/mode/value")).await;
    assert_eq!(text(&mode), r#"{"mode":1}"#, "enums are integers");
    let presence = raw.next_on(&format!("client/srv-{instance}/online")).await;
    assert_eq!(text(&presence), r#"{"online":true}"#);

    // A reply: `ReturnCode:0`, a `Z` datetime; fractional durations are accepted.
    let response = format!("client/raw-{instance}/Thermostat/method/boost/response");
    let args = r#"{"extraCelsius":1.5,"forHowLong":"PT0.0015S","reason":null}"#;
    raw.publish(
        &format!("Thermostat/{instance}/method/boost/request"),
        false,
        args,
        request(&response, b"t"),
    )
    .await;
    let reply = raw.next_on(&response).await;
    assert_eq!(user(&reply, "ReturnCode").as_deref(), Some("0"));
    assert_eq!(text(&reply), r#"{"endsAt":"2030-01-01T00:00:01.500Z"}"#);

    // A signal: not retained, with content type; datetimes in `Z` form.
    server.emit_temperature_changed(20.5, switchboard::DateTime::UNIX_EPOCH).await.unwrap();
    let signal = raw.next_on(&format!("Thermostat/{instance}/signal/temperatureChanged")).await;
    assert!(!signal.retain);
    assert_eq!(
        signal.properties.as_ref().unwrap().content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(text(&signal), r#"{"celsius":20.5,"measuredAt":"1970-01-01T00:00:00Z"}"#);

    // A clean shutdown clears discovery and the retained values and says offline.
    server.shutdown().await;
    let cleared = raw.next_on(&format!("Thermostat/{instance}/interface")).await;
    assert!(cleared.payload.is_empty());
    let cleared = raw.next_on(&format!("Thermostat/{instance}/property/setpoint/value")).await;
    assert!(cleared.payload.is_empty());
    let offline = raw.next_on(&format!("client/srv-{instance}/online")).await;
    assert_eq!(text(&offline), r#"{"online":false}"#);
    raw.publish(
        &format!("client/srv-{instance}/online"),
        true,
        Bytes::new(),
        PublishProperties::default(),
    )
    .await;
}

/// A server killed with SIGKILL is announced offline by its last will.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_is_announced_offline() {
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("killed");
    let url = format!("{}?client_id=killed-{instance}&instance={instance}", broker.url);
    let mut raw = Raw::connect(&broker.url, &format!("raw-{instance}")).await;
    let presence = format!("client/killed-{instance}/online");
    raw.subscribe(&presence).await;
    let mut server = ChildProcess::spawn(env!("CARGO_BIN_EXE_switchboard-test-server"), &[&url]);
    assert_eq!(text(&raw.next_on(&presence).await), r#"{"online":true}"#);
    let client = within("connect", ThermostatClient::connect(&endpoint(&broker.url, &instance)))
        .await
        .unwrap();
    within("getStatus", client.get_status()).await.unwrap();
    server.kill();
    assert_eq!(text(&raw.next_on(&presence).await), r#"{"online":false}"#);
    // A new client does not take the dead server's leftover announcement for a live one.
    let mut options = switchboard::transport::mqtt::MqttOptions::default();
    options.discovery_timeout = Duration::from_millis(500);
    let quick = Endpoint::mqtt(
        switchboard::transport::mqtt::MqttEndpoint::parse(&broker.url)
            .unwrap()
            .endpoint
            .with_options(options),
    )
    .with_instance(instance.clone())
    .unwrap();
    let error = within("connect", ThermostatClient::connect(&quick)).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::NotFound, "{error}");
    let _ = ErrorCode::ClientError;
    let _ = Bytes::new();
    raw::clear_retained(&broker.url, &instance).await;
    raw.publish(&presence, true, Bytes::new(), PublishProperties::default()).await;
}

/// Calls through the Debian-default mosquitto (Nagle on at the broker) do not stall: our
/// sockets set TCP_NODELAY. Prints the median round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_do_not_stall() {
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("latency");
    let endpoint = endpoint(&broker.url, &instance);
    let (_server, _) = suite::serve_thermostat(&endpoint).await;
    let client = within("connect", ThermostatClient::connect(&endpoint)).await.unwrap();
    let mut times = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        within("getStatus", client.get_status()).await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "median call latency through mosquitto: {median:?} (p90 {:?})",
        times[times.len() * 9 / 10]
    );
    assert!(median < Duration::from_millis(20), "median {median:?}: Nagle/delayed-ACK stall?");
    raw::clear_retained(&broker.url, &instance).await;
}

mod node {
    use switchboard::{Endpoint, node::Node};
    use switchboard_testkit::broker::shared_mosquitto;

    fn node() -> Option<(Node, String, ())> {
        let server = shared_mosquitto()?;
        let endpoint = Endpoint::parse(&server.url).expect("a valid URL");
        Some((Node::new("mqtt-test", endpoint), crate::node::prefix("mqtt"), ()))
    }

    crate::node::node_tests!(node());
    crate::node::brokered_node_tests!(node());

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_broker_is_unreachable() {
        crate::node::no_broker_is_unreachable("mqtt").await;
    }
}
