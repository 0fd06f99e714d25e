//! Interoperability with StingerIPC's real generated Python peers over MQTT v5, on the Mosquitto
//! at 127.0.0.1:1883.
//!
//! `tests/interop/setup.sh` installs stinger-ipc 0.9.7.post1 (Python 3.12) and generates its
//! Python package from `tests/interop/interop_probe.yaml`, the interface our Rust here is
//! generated from too. The tests run their server against our client, our server against their
//! client, their pair against each other as a baseline, their client against our server on a
//! Unix socket exposed on MQTT by an interface bridge, and check presence after `kill -9`.
//! A raw paho subscriber (`capture.py`) records what their peers and ours put on the wire, so
//! the byte-level encodings are asserted from both sides. The fixed values below mirror
//! `tests/interop/probe_values.py`; change both together.
//!
//! Outside CI, a machine without Python 3.12 or PyPI prints "skipped: …" and passes; under
//! `CI=true` that is a failure.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use switchboard::{
    DateTime, Endpoint,
    error::{CallError, ErrorCode, RemoteError},
    server::CallContext,
};
use switchboard_testkit::python::{PeerProcess, StingerPeers};
use switchboard_tests::interop_probe::{
    Color, DescribeReply, EchoBytesReply, EchoListsReply, FirmwareProperty, InteropProbe,
    InteropProbeClient, InteropProbeProperties, InteropProbeServer, ListsSent, LocateReply, Mode,
    Point, PositionProperty, Reading, ReadingTaken, ScalarsSent, ValueChanged,
};

/// The broker every interop test uses; StingerIPC's peers need one with MQTT v5 subscription
/// identifiers, which Mosquitto 2 has.
const BROKER: &str = "127.0.0.1:1883";

/// How long a Python peer may take to start, discover, or finish its checks.
const PEER_STEP: Duration = Duration::from_secs(10);

/// How long one call or one awaited message may take.
const STEP: Duration = Duration::from_secs(5);

/// Awaits `future`, failing the test if it takes longer than [`STEP`].
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {STEP:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed values, the same as tests/interop/probe_values.py.

/// Refusal text of `addNumbers` for negative input (ReturnCode 1).
const NEGATIVE_REFUSAL: &str = "negative numbers are refused";
/// `AAFoZWxsb/8=` on the wire.
const RAW: &[u8] = b"\x00\x01hello\xff";
/// What `emitAll` answers: the number of signals it emitted.
const EMITTED: i64 = 5;

fn datetime(text: &str) -> DateTime {
    switchboard_core::codec::parse_datetime(text).expect("a valid test datetime")
}

fn taken_at() -> DateTime {
    datetime("2025-01-02T03:04:05.678Z")
}

fn leap_day() -> DateTime {
    datetime("2024-02-29T12:00:00Z")
}

fn millis(ms: i64) -> switchboard::Duration {
    switchboard::Duration::milliseconds(ms)
}

fn point(x: f64, y: f64, label: Option<&str>) -> Point {
    Point { x, y, label: label.map(str::to_owned) }
}

fn reading() -> Reading {
    Reading {
        taken_at: taken_at(),
        exposure: millis(1500),
        raw_data: RAW.to_vec(),
        r#where: point(1.5, -2.0, None),
        color: Color::Blue,
        tags: vec!["a".into(), "b".into()],
        samples: None,
        count: Some(3),
        valid: true,
        origin: Some(point(0.0, 0.0, Some("origin"))),
        last_seen: None,
        timeout: Some(millis(123_000)),
        checksum: Some(vec![0xde, 0xad, 0xbe, 0xef]),
        mode: Some(Mode::Paused),
    }
}

fn initial_properties() -> InteropProbeProperties {
    InteropProbeProperties {
        current_level: 7,
        position: PositionProperty { x: 1.0, y: 2.0, mode: Mode::Idle, label: None },
        last_reading: None,
        firmware: FirmwareProperty {
            image: b"\x7fELF\x00".to_vec(),
            built_at: leap_day(),
            sizes: vec![1, 2, 3],
        },
        uptime: millis(3_600_500),
    }
}

fn value_changed() -> ValueChanged {
    ValueChanged { new_value: 42, color: Color::Blue, note: Some("apples".into()) }
}

fn reading_taken() -> ReadingTaken {
    ReadingTaken { reading: reading(), modes: vec![Mode::Idle, Mode::Paused, Mode::Stopped] }
}

fn scalars_sent() -> ScalarsSent {
    ScalarsSent {
        number: -7,
        ratio: 2.5,
        flag: true,
        text: "h\u{e9}llo \"quoted\"".into(),
        at: taken_at(),
        lasts: millis(1500),
        blob: RAW.to_vec(),
        mode: Mode::Running,
        maybe_number: None,
        maybe_ratio: Some(0.25),
        maybe_flag: None,
        maybe_at: None,
        maybe_lasts: Some(millis(123_000)),
        maybe_blob: None,
        maybe_color: Some(Color::Green),
    }
}

fn lists_sent() -> ListsSent {
    ListsSent {
        numbers: vec![1, -2, 3],
        ratios: vec![0.5, 1.0, -2.25],
        flags: vec![true, false],
        words: vec!["a".into(), "b c".into(), String::new()],
        stamps: vec![leap_day(), taken_at()],
        gaps: vec![millis(0), millis(1500), millis(26 * 3_600_000)],
        blobs: vec![vec![], vec![1], vec![1, 2], vec![1, 2, 3]],
        colors: vec![Color::Red, Color::Green, Color::Blue],
        points: vec![point(0.0, 0.0, None), point(1.5, -2.0, Some("p"))],
        maybe_numbers: None,
    }
}

fn described() -> DescribeReply {
    DescribeReply {
        name: "probe".into(),
        mode: Mode::Paused,
        uptime: millis(123_000),
        center: point(0.5, 0.25, Some("c")),
    }
}

// ---------------------------------------------------------------------------------------------
// Our server, with the same behaviour as tests/interop/py_server.py.

/// Answers like the Python test server; `emitAll` emits through the server handle once it is set.
#[derive(Clone, Default)]
struct Probe {
    server: Arc<OnceLock<InteropProbeServer>>,
}

impl InteropProbe for Probe {
    async fn add_numbers(
        &self,
        _ctx: &CallContext,
        first: i64,
        second: i64,
        third: Option<i64>,
    ) -> Result<i64, RemoteError> {
        let numbers = [Some(first), Some(second), third];
        if numbers.iter().flatten().any(|n| *n < 0) {
            return Err(RemoteError::client_error(NEGATIVE_REFUSAL));
        }
        Ok(numbers.iter().flatten().sum())
    }

    async fn divide(
        &self,
        _ctx: &CallContext,
        numerator: f64,
        denominator: f64,
    ) -> Result<f64, RemoteError> {
        if denominator == 0.0 {
            return Err(RemoteError::internal("float division by zero"));
        }
        Ok(numerator / denominator)
    }

    async fn describe(&self, _ctx: &CallContext) -> Result<DescribeReply, RemoteError> {
        Ok(described())
    }

    async fn reset(&self, _ctx: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }

    async fn locate(
        &self,
        _ctx: &CallContext,
        r#where: Point,
        r#loop: i64,
        r#match: Option<String>,
    ) -> Result<LocateReply, RemoteError> {
        Ok(LocateReply { distance: r#where.x.hypot(r#where.y) * r#loop as f64, label: r#match })
    }

    async fn echo_bytes(
        &self,
        _ctx: &CallContext,
        data: Vec<u8>,
        when: DateTime,
        maybe_data: Option<Vec<u8>>,
    ) -> Result<EchoBytesReply, RemoteError> {
        Ok(EchoBytesReply { data, when, maybe_data })
    }

    async fn echo_reading(
        &self,
        _ctx: &CallContext,
        reading: Reading,
    ) -> Result<Reading, RemoteError> {
        Ok(reading)
    }

    async fn echo_lists(
        &self,
        _ctx: &CallContext,
        numbers: Vec<i64>,
        stamps: Vec<DateTime>,
        gaps: Vec<switchboard::Duration>,
        blobs: Vec<Vec<u8>>,
        colors: Vec<Color>,
        points: Vec<Point>,
        maybe_words: Option<Vec<String>>,
    ) -> Result<EchoListsReply, RemoteError> {
        Ok(EchoListsReply { numbers, stamps, gaps, blobs, colors, points, maybe_words })
    }

    async fn emit_all(&self, _ctx: &CallContext) -> Result<i64, RemoteError> {
        let server = self.server.get().ok_or_else(|| RemoteError::internal("not serving yet"))?;
        let emit = async {
            let v = value_changed();
            server.emit_value_changed(v.new_value, v.color, v.note).await?;
            let r = reading_taken();
            server.emit_reading_taken(r.reading, r.modes).await?;
            let s = scalars_sent();
            server
                .emit_scalars_sent(
                    s.number,
                    s.ratio,
                    s.flag,
                    s.text,
                    s.at,
                    s.lasts,
                    s.blob,
                    s.mode,
                    s.maybe_number,
                    s.maybe_ratio,
                    s.maybe_flag,
                    s.maybe_at,
                    s.maybe_lasts,
                    s.maybe_blob,
                    s.maybe_color,
                )
                .await?;
            let l = lists_sent();
            server
                .emit_lists_sent(
                    l.numbers,
                    l.ratios,
                    l.flags,
                    l.words,
                    l.stamps,
                    l.gaps,
                    l.blobs,
                    l.colors,
                    l.points,
                    l.maybe_numbers,
                )
                .await?;
            server.emit_tick().await
        };
        emit.await.map_err(|e| RemoteError::internal(e.to_string()))?;
        Ok(EMITTED)
    }
}

/// Serves `Probe` at `url` (an MQTT endpoint).
async fn serve_probe(url: &str) -> InteropProbeServer {
    serve_probe_on(&Endpoint::parse(url).expect("a valid MQTT endpoint URL")).await
}

/// Serves `Probe` on `endpoint`, any transport.
async fn serve_probe_on(endpoint: &Endpoint) -> InteropProbeServer {
    let probe = Probe::default();
    let server = within(
        "our server starts",
        InteropProbeServer::serve(endpoint, probe.clone(), initial_properties()),
    )
    .await
    .expect("our server serves");
    let _ = probe.server.set(server.clone());
    server
}

// ---------------------------------------------------------------------------------------------
// Harness.

/// A name no other test, run or process uses at the same time.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn mqtt_url(instance: &str, client_id: &str) -> String {
    format!("mqtt://{BROKER}?instance={instance}&client_id={client_id}")
}

/// Removes the retained messages a test left on the broker (property values, interface info and
/// presence), when dropped.
struct Retained {
    peers: &'static StingerPeers,
    filters: Vec<String>,
}

impl Retained {
    fn new(peers: &'static StingerPeers) -> Self {
        Retained { peers, filters: Vec::new() }
    }

    fn instance(&mut self, instance: &str) {
        self.filters.push(format!("InteropProbe/{instance}/#"));
    }

    fn client(&mut self, client_id: &str) {
        self.filters.push(format!("client/{client_id}/online"));
    }
}

impl Drop for Retained {
    fn drop(&mut self) {
        if self.filters.is_empty() {
            return;
        }
        let _ = self
            .peers
            .command("capture.py")
            .arg("--clear")
            .args(&self.filters)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Starts their Python server for `instance` and waits until it serves.
async fn start_their_server(peers: &StingerPeers, instance: &str, client_id: &str) -> PeerProcess {
    let mut server = peers.spawn("py_server.py", &[instance, "--client-id", client_id]);
    if let Err(error) = server.wait_for("ready", PEER_STEP).await {
        panic!("their server did not start: {error}");
    }
    server
}

/// One message as `capture.py` prints it.
#[derive(Debug, Clone)]
struct Captured {
    topic: String,
    qos: String,
    content_type: String,
    user_properties: String,
    payload: String,
}

impl Captured {
    fn parse(line: &str) -> Option<Captured> {
        let (header, payload) = line.split_once(" | ").unwrap_or((line, ""));
        let rest = header.strip_prefix("t=")?;
        let (topic, rest) = rest.split_once(" q=")?;
        let (qos, rest) = rest.split_once(" r=")?;
        let (_retain, rest) = rest.split_once(" ct=")?;
        let (content_type, rest) = rest.split_once(" rt=")?;
        let (_response_topic, rest) = rest.split_once(" cd=")?;
        let (_correlation, rest) = rest.split_once(" exp=")?;
        let (_expiry, user_properties) = rest.split_once(" up=")?;
        Some(Captured {
            topic: topic.to_owned(),
            qos: qos.to_owned(),
            content_type: content_type.to_owned(),
            user_properties: user_properties.to_owned(),
            payload: payload.to_owned(),
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|e| panic!("{} carried no JSON ({e}): {}", self.topic, self.payload))
    }
}

/// A running `capture.py`, subscribed to `filters`, and the messages it printed so far.
struct Capture {
    process: PeerProcess,
    messages: Vec<Captured>,
}

impl Capture {
    async fn start(peers: &StingerPeers, filters: &[String]) -> Capture {
        let mut args = vec!["--seconds", "30"];
        args.extend(filters.iter().map(String::as_str));
        let mut process = peers.spawn("capture.py", &args);
        if let Err(error) = process.wait_for("ready", PEER_STEP).await {
            panic!("the raw subscriber did not start: {error}");
        }
        Capture { process, messages: Vec::new() }
    }

    /// Waits until a message on `topic` arrives (or has arrived) and returns it.
    async fn on(&mut self, topic: &str) -> Captured {
        let deadline = tokio::time::Instant::now() + PEER_STEP;
        loop {
            if let Some(found) = self.messages.iter().find(|m| m.topic == topic) {
                return found.clone();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.process.next_line(left).await {
                Some(line) => self.messages.extend(Captured::parse(&line)),
                None => panic!("nothing arrived on {topic}; got {:?}", self.messages),
            }
        }
    }
}

/// Asserts that `text` is a UTC datetime in the `YYYY-MM-DDTHH:MM:SS[.f]Z` form.
fn assert_z_datetime(what: &str, value: &serde_json::Value) {
    let text = value.as_str().unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() >= 20
        && text.ends_with('Z')
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && (bytes.len() == 20
            || (bytes[19] == b'.' && bytes[20..bytes.len() - 1].iter().all(u8::is_ascii_digit)));
    assert!(shape_ok, "{what} is not in the `YYYY-MM-DDTHH:MM:SS[.f]Z` form: {text}");
    assert_eq!(datetime(text), datetime(&text.replace('Z', "+00:00")), "{what} parses");
}

/// The encodings every StingerIPC peer must put on the wire, asserted on the `readingTaken`,
/// `scalarsSent` and `listsSent` signals a server emitted for `emitAll`.
fn assert_signal_encodings(who: &str, capture: &Capture, instance: &str) {
    let topic = |signal: &str| format!("InteropProbe/{instance}/signal/{signal}");
    let find = |signal: &str| {
        capture
            .messages
            .iter()
            .find(|m| m.topic == topic(signal))
            .unwrap_or_else(|| panic!("{who}: no {signal} signal captured"))
            .clone()
    };
    let taken = find("readingTaken");
    assert_eq!(taken.content_type, "application/json", "{who}: content type");
    let json = taken.json();
    let reading = &json["reading"];
    assert_z_datetime(&format!("{who}: takenAt"), &reading["takenAt"]);
    assert_eq!(reading["exposure"], "PT1.5S", "{who}: durations are ISO 8601 with fractions");
    assert_eq!(reading["timeout"], "PT2M3S", "{who}: minutes and seconds");
    assert_eq!(reading["rawData"], "AAFoZWxsb/8=", "{who}: padded standard base64");
    assert_eq!(reading["checksum"], "3q2+7w==", "{who}: padded standard base64 with `+`");
    assert_eq!(reading["color"], 30, "{who}: enums are integers");
    assert_eq!(reading["mode"], 10, "{who}: enums are integers");
    assert!(reading["lastSeen"].is_null(), "{who}: optional values are explicit null");
    assert_eq!(reading["where"]["x"], 1.5, "{who}: keyword-named member");
    assert_eq!(json["modes"], serde_json::json!([1, 10, 11]), "{who}: enum arrays are integers");

    let scalars = find("scalarsSent").json();
    assert_eq!(scalars["blob"], "AAFoZWxsb/8=");
    for key in ["maybeNumber", "maybeFlag", "maybeAt", "maybeBlob"] {
        assert!(
            scalars.as_object().is_some_and(|o| o.get(key).is_some_and(serde_json::Value::is_null)),
            "{who}: optional `{key}` is sent as explicit null: {scalars}"
        );
    }
    assert_eq!(scalars["maybeColor"], 20);

    let lists = find("listsSent").json();
    assert_eq!(lists["blobs"], serde_json::json!(["", "AQ==", "AQI=", "AQID"]), "{who}: base64");
    assert_eq!(lists["gaps"], serde_json::json!(["PT0S", "PT1.5S", "P1DT2H"]), "{who}: durations");
    assert_eq!(lists["colors"], serde_json::json!([10, 20, 30]), "{who}: enum integers");
    for (i, stamp) in lists["stamps"].as_array().expect("stamps is an array").iter().enumerate() {
        assert_z_datetime(&format!("{who}: stamps[{i}]"), stamp);
    }
    assert_eq!(find("tick").payload, "{}", "{who}: an empty signal is an empty object");
}

// ---------------------------------------------------------------------------------------------
// Baseline: their client against their server, proving the harness before ours is involved.

#[tokio::test(flavor = "multi_thread")]
async fn their_client_passes_against_their_server() {
    let Some(peers) = StingerPeers::get() else { return };
    let instance = unique("py-baseline");
    let server_id = unique("py-server");
    let mut retained = Retained::new(peers);
    retained.instance(&instance);
    retained.client(&server_id);
    let _server = start_their_server(peers, &instance, &server_id).await;

    let client_id = unique("py-client");
    retained.client(&client_id);
    let mut client = peers.spawn("py_client.py", &[&instance, "--client-id", &client_id]);
    let (status, lines) =
        client.finish(Duration::from_secs(30)).await.expect("their client finishes");
    assert_client_checks(&lines, status.success(), &client.stderr());
}

/// Every check `py_client.py` must report, so a check that silently did not run fails too.
const CLIENT_CHECKS: &[&str] = &[
    "discovered",
    "interface_info",
    "initial_current_level",
    "initial_position",
    "initial_last_reading",
    "initial_firmware",
    "initial_uptime",
    "add_numbers",
    "add_numbers_optional",
    "add_numbers_refused",
    "divide",
    "divide_by_zero",
    "describe",
    "reset",
    "locate",
    "locate_without_match",
    "echo_bytes",
    "echo_bytes_empty",
    "echo_reading",
    "echo_lists",
    "echo_lists_words",
    "emit_all",
    "signal_value_changed",
    "signal_reading_taken",
    "signal_scalars_sent",
    "signal_lists_sent",
    "signal_tick",
    "set_current_level",
    "set_position",
    "set_last_reading",
    "stale_version_out_of_sync",
    "stale_version_reports_current_version",
    "stale_version_not_applied",
    "read_only_firmware_no_setter",
    "read_only_uptime_no_setter",
    "read_only_update_refused",
    "summary",
];

/// Asserts that `py_client.py` printed a passing line for every check in [`CLIENT_CHECKS`].
fn assert_client_checks(lines: &[String], exited_ok: bool, stderr: &str) {
    let mut seen = BTreeSet::new();
    let mut failed = Vec::new();
    for line in lines {
        let Ok(check) = serde_json::from_str::<serde_json::Value>(line) else {
            panic!("their client printed a line that is not JSON: {line}\nstderr:\n{stderr}");
        };
        let name = check["check"].as_str().unwrap_or_default().to_owned();
        if check["ok"] != true {
            failed.push(line.clone());
        }
        seen.insert(name);
    }
    let missing: Vec<_> = CLIENT_CHECKS.iter().filter(|name| !seen.contains(**name)).collect();
    assert!(
        failed.is_empty() && missing.is_empty() && exited_ok,
        "their client's checks failed: {failed:#?}\nmissing: {missing:?}\nexit ok: {exited_ok}\nstderr:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Their Python server, our Rust client.

/// Connects our generated client to `instance` over MQTT, as `client_id`.
async fn connect(instance: &str, client_id: &str) -> InteropProbeClient {
    let endpoint =
        Endpoint::parse(&mqtt_url(instance, client_id)).expect("a valid MQTT endpoint URL");
    match tokio::time::timeout(PEER_STEP, InteropProbeClient::connect(&endpoint)).await {
        Ok(Ok(client)) => client,
        Ok(Err(error)) => panic!("our client did not connect to {instance}: {error}"),
        Err(_) => panic!("our client did not connect to {instance} within {PEER_STEP:?}"),
    }
}

/// Reads `watch` until it yields `wanted`.
async fn watch_until<T: PartialEq + std::fmt::Debug>(
    what: &str,
    watch: &mut switchboard::client::PropertyWatch<T>,
    wanted: &T,
) {
    within(what, async {
        loop {
            let value = watch.next().await.expect("the watch is open").expect("the value decodes");
            if value == *wanted {
                return;
            }
        }
    })
    .await;
}

/// The remote error inside `result`, which must have failed that way.
fn remote_error<T: std::fmt::Debug>(result: Result<T, CallError>) -> RemoteError {
    match result {
        Err(CallError::Remote(error)) => error,
        other => panic!("expected an error answer from the server, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn our_client_calls_every_method_of_their_server() {
    let Some(peers) = StingerPeers::get() else { return };
    let (instance, server_id, client_id) =
        (unique("py-methods"), unique("py-server"), unique("rs-client"));
    let mut retained = Retained::new(peers);
    retained.instance(&instance);
    retained.client(&server_id);
    retained.client(&client_id);
    let _server = start_their_server(peers, &instance, &server_id).await;
    let client = connect(&instance, &client_id).await;

    assert_eq!(within("addNumbers", client.add_numbers(1, 2, None)).await.unwrap(), 3);
    assert_eq!(within("addNumbers", client.add_numbers(1, 2, Some(3))).await.unwrap(), 6);
    let refused = remote_error(within("addNumbers", client.add_numbers(-1, 2, None)).await);
    assert_eq!(refused.code(), ErrorCode::ClientError, "ReturnCode 1: {refused}");
    assert!(refused.message().contains(NEGATIVE_REFUSAL), "DebugInfo arrives: {refused}");

    assert_eq!(within("divide", client.divide(3.0, 2.0)).await.unwrap(), 1.5);
    let failed = remote_error(within("divide", client.divide(1.0, 0.0)).await);
    assert_eq!(failed.code(), ErrorCode::ServerError, "ReturnCode 2: {failed}");
    assert!(failed.message().contains("division by zero"), "DebugInfo arrives: {failed}");

    assert_eq!(within("describe", client.describe()).await.unwrap(), described());
    within("reset", client.reset()).await.unwrap();
    assert_eq!(
        within("locate", client.locate(point(3.0, 4.0, Some("p")), 2, Some("m".into())))
            .await
            .unwrap(),
        LocateReply { distance: 10.0, label: Some("m".into()) }
    );
    assert_eq!(
        within("locate", client.locate(point(0.0, 1.5, None), 1, None)).await.unwrap(),
        LocateReply { distance: 1.5, label: None }
    );
    assert_eq!(
        within("echoBytes", client.echo_bytes(RAW.to_vec(), taken_at(), None)).await.unwrap(),
        EchoBytesReply { data: RAW.to_vec(), when: taken_at(), maybe_data: None }
    );
    assert_eq!(
        within("echoBytes", client.echo_bytes(Vec::new(), leap_day(), Some(vec![1, 2])))
            .await
            .unwrap(),
        EchoBytesReply { data: Vec::new(), when: leap_day(), maybe_data: Some(vec![1, 2]) }
    );
    assert_eq!(within("echoReading", client.echo_reading(reading())).await.unwrap(), reading());
    let lists = EchoListsReply {
        numbers: vec![0, -1, i64::from(i32::MAX)],
        stamps: vec![taken_at(), leap_day()],
        gaps: vec![millis(1500), millis(26 * 3_600_000), millis(0)],
        blobs: vec![vec![], vec![1], vec![1, 2], vec![1, 2, 3]],
        colors: vec![Color::Blue, Color::Red],
        points: vec![point(1.0, 2.0, None), point(-1.0, 0.5, Some("q"))],
        maybe_words: Some(vec!["x".into(), String::new()]),
    };
    let echoed = within(
        "echoLists",
        client.echo_lists(
            lists.numbers.clone(),
            lists.stamps.clone(),
            lists.gaps.clone(),
            lists.blobs.clone(),
            lists.colors.clone(),
            lists.points.clone(),
            lists.maybe_words.clone(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(echoed, lists);
}

#[tokio::test(flavor = "multi_thread")]
async fn our_client_discovers_several_of_their_instances() {
    let Some(peers) = StingerPeers::get() else { return };
    let (first, second) = (unique("py-first"), unique("py-second"));
    let (first_server, second_server) = (unique("py-server"), unique("py-server"));
    let (first_client, second_client) = (unique("rs-client"), unique("rs-client"));
    let mut retained = Retained::new(peers);
    for id in [&first, &second] {
        retained.instance(id);
    }
    for id in [&first_server, &second_server, &first_client, &second_client] {
        retained.client(id);
    }
    let _first = start_their_server(peers, &first, &first_server).await;
    let _second = start_their_server(peers, &second, &second_server).await;

    let a = connect(&first, &first_client).await;
    let b = connect(&second, &second_client).await;
    assert_eq!(within("describe first", a.describe()).await.unwrap(), described());
    assert_eq!(within("describe second", b.describe()).await.unwrap(), described());

    // A change to one instance is seen there and nowhere else.
    let mut first_level = within("watch first", a.watch_current_level()).await.unwrap();
    let mut second_level = within("watch second", b.watch_current_level()).await.unwrap();
    within("set first", a.set_current_level(11)).await.unwrap();
    watch_until("the first instance's level", &mut first_level, &11).await;
    assert_eq!(within("second level", second_level.next()).await.unwrap().unwrap(), 7);
    assert_eq!(within("get second", b.get_current_level()).await.unwrap(), 7);
    within("set second", b.set_current_level(12)).await.unwrap();
    watch_until("the second instance's level", &mut second_level, &12).await;
    assert_eq!(within("get first", a.get_current_level()).await.unwrap(), 11);
}

#[tokio::test(flavor = "multi_thread")]
async fn our_client_updates_the_properties_of_their_server() {
    let Some(peers) = StingerPeers::get() else { return };
    let (instance, server_id, client_id) =
        (unique("py-props"), unique("py-server"), unique("rs-client"));
    let mut retained = Retained::new(peers);
    retained.instance(&instance);
    retained.client(&server_id);
    retained.client(&client_id);
    let _server = start_their_server(peers, &instance, &server_id).await;
    let client = connect(&instance, &client_id).await;
    let initial = initial_properties();

    // The initial values come from their retained messages.
    assert_eq!(within("currentLevel", client.get_current_level()).await.unwrap(), 7);
    assert_eq!(within("position", client.get_position()).await.unwrap(), initial.position);
    assert_eq!(within("lastReading", client.get_last_reading()).await.unwrap(), None);
    assert_eq!(within("firmware", client.get_firmware()).await.unwrap(), initial.firmware);
    assert_eq!(within("uptime", client.get_uptime()).await.unwrap(), initial.uptime);

    let mut level = within("watch", client.watch_current_level()).await.unwrap();
    within("set currentLevel", client.set_current_level(8)).await.unwrap();
    watch_until("currentLevel", &mut level, &8).await;

    let moved =
        PositionProperty { x: 3.0, y: -4.5, mode: Mode::Stopped, label: Some("moved".into()) };
    let mut position = within("watch", client.watch_position()).await.unwrap();
    within("set position", client.set_position(moved.clone())).await.unwrap();
    watch_until("position", &mut position, &moved).await;

    let mut last = within("watch", client.watch_last_reading()).await.unwrap();
    within("set lastReading", client.set_last_reading(Some(reading()))).await.unwrap();
    watch_until("lastReading", &mut last, &Some(reading())).await;

    // Two updates sent at once carry the same version: their server applies the first and
    // refuses the second with OutOfSync (ReturnCode 12).
    let (one, two) = within("two concurrent updates", async {
        tokio::join!(client.set_current_level(20), client.set_current_level(21))
    })
    .await;
    let (winner, refused) = match (one, two) {
        (Ok(()), Err(error)) => (20, remote_error::<()>(Err(error))),
        (Err(error), Ok(())) => (21, remote_error::<()>(Err(error))),
        other => panic!("exactly one of two same-version updates must win, got {other:?}"),
    };
    assert_eq!(refused.code(), ErrorCode::OutOfSync, "ReturnCode 12: {refused}");
    watch_until("the winning update", &mut level, &winner).await;
    // Our client has caught up with the version, so the next update goes through.
    within("set after OutOfSync", client.set_current_level(22)).await.unwrap();
    watch_until("currentLevel", &mut level, &22).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn our_client_decodes_every_signal_and_encoding_of_their_server() {
    let Some(peers) = StingerPeers::get() else { return };
    let (instance, server_id, client_id) =
        (unique("py-signals"), unique("py-server"), unique("rs-client"));
    let mut retained = Retained::new(peers);
    retained.instance(&instance);
    retained.client(&server_id);
    retained.client(&client_id);
    let mut capture = Capture::start(peers, &[format!("InteropProbe/{instance}/#")]).await;
    let _server = start_their_server(peers, &instance, &server_id).await;
    let client = connect(&instance, &client_id).await;

    let mut changed = within("subscribe", client.subscribe_value_changed()).await.unwrap();
    let mut taken = within("subscribe", client.subscribe_reading_taken()).await.unwrap();
    let mut scalars = within("subscribe", client.subscribe_scalars_sent()).await.unwrap();
    let mut lists = within("subscribe", client.subscribe_lists_sent()).await.unwrap();
    let mut tick = within("subscribe", client.subscribe_tick()).await.unwrap();
    assert_eq!(within("emitAll", client.emit_all()).await.unwrap(), EMITTED);
    assert_eq!(within("valueChanged", changed.next()).await.unwrap().unwrap(), value_changed());
    assert_eq!(within("readingTaken", taken.next()).await.unwrap().unwrap(), reading_taken());
    assert_eq!(within("scalarsSent", scalars.next()).await.unwrap().unwrap(), scalars_sent());
    assert_eq!(within("listsSent", lists.next()).await.unwrap().unwrap(), lists_sent());
    within("tick", tick.next()).await.unwrap().unwrap();

    // What their server put on the wire, byte for byte where the format is fixed.
    for signal in ["valueChanged", "readingTaken", "scalarsSent", "listsSent", "tick"] {
        let message = capture.on(&format!("InteropProbe/{instance}/signal/{signal}")).await;
        assert_eq!(
            (message.qos.as_str(), message.content_type.as_str()),
            ("1", "application/json")
        );
    }
    assert_signal_encodings("their server", &capture, &instance);
    let taken = capture.on(&format!("InteropProbe/{instance}/signal/readingTaken")).await;
    assert!(
        taken.payload.contains(r#""takenAt":"2025-01-02T03:04:05.678000Z""#),
        "their datetimes have six fractional digits and `Z`: {}",
        taken.payload
    );
    let firmware = capture.on(&format!("InteropProbe/{instance}/property/firmware/value")).await;
    assert_eq!(
        firmware.payload,
        r#"{"image":"f0VMRgA=","builtAt":"2024-02-29T12:00:00Z","sizes":[1,2,3]}"#
    );
    assert!(firmware.user_properties.starts_with("PropertyVersion:"), "{firmware:?}");
    let uptime = capture.on(&format!("InteropProbe/{instance}/property/uptime/value")).await;
    assert_eq!(uptime.payload, r#"{"uptime":"PT1H0.5S"}"#);
    let last = capture.on(&format!("InteropProbe/{instance}/property/lastReading/value")).await;
    assert_eq!(last.payload, r#"{"reading":null}"#, "a null property value is retained too");
}

// ---------------------------------------------------------------------------------------------
// Our Rust server, their Python client.

#[tokio::test(flavor = "multi_thread")]
async fn their_client_passes_against_our_server() {
    let Some(peers) = StingerPeers::get() else { return };
    let (instance, server_id, client_id) =
        (unique("rs-probe"), unique("rs-server"), unique("py-client"));
    let mut retained = Retained::new(peers);
    retained.instance(&instance);
    retained.client(&server_id);
    retained.client(&client_id);
    let mut capture = Capture::start(peers, &[format!("InteropProbe/{instance}/#")]).await;
    let server = serve_probe(&mqtt_url(&instance, &server_id)).await;

    let mut client = peers.spawn("py_client.py", &[&instance, "--client-id", &client_id]);
    let (status, lines) =
        client.finish(Duration::from_secs(30)).await.expect("their client finishes");
    assert_client_checks(&lines, status.success(), &client.stderr());

    // What our server put on the wire follows StingerIPC's encodings.
    for signal in ["valueChanged", "readingTaken", "scalarsSent", "listsSent", "tick"] {
        let message = capture.on(&format!("InteropProbe/{instance}/signal/{signal}")).await;
        assert_eq!(message.content_type, "application/json", "{message:?}");
    }
    assert_signal_encodings("our server", &capture, &instance);
    let firmware = capture.on(&format!("InteropProbe/{instance}/property/firmware/value")).await;
    assert!(firmware.user_properties.contains("PropertyVersion:"), "{firmware:?}");
    let json = firmware.json();
    assert_eq!(json["image"], "f0VMRgA=");
    assert_z_datetime("our firmware builtAt", &json["builtAt"]);
    let uptime = capture.on(&format!("InteropProbe/{instance}/property/uptime/value")).await;
    assert_eq!(uptime.json(), serde_json::json!({"uptime": "PT1H0.5S"}));
    within("shutdown", server.shutdown()).await;
}

// ---------------------------------------------------------------------------------------------
// Presence after kill -9.

/// The retained presence message of `client_id`, as JSON.
async fn presence(peers: &StingerPeers, client_id: &str) -> serde_json::Value {
    let topic = format!("client/{client_id}/online");
    let mut capture = Capture::start(peers, std::slice::from_ref(&topic)).await;
    capture.on(&topic).await.json()
}

/// Issue 16's interface bridge with StingerIPC's peers: our server runs on a Unix socket, a
/// bridge serves its interface on MQTT, and StingerIPC's generated client passes every check
/// against it there (discovery, methods and their refusals, properties with versions, signals),
/// as it does against our server on MQTT directly.
#[tokio::test(flavor = "multi_thread")]
async fn their_client_passes_against_our_server_through_an_interface_bridge() {
    use switchboard::bridge::{Bridge, BridgeOptions, Route, Side};
    let Some(peers) = StingerPeers::get() else { return };
    let (instance, bridge_id, client_id) =
        (unique("rs-bridged"), unique("rs-bridge"), unique("py-client"));
    let mut retained = Retained::new(peers);
    retained.instance(&instance);
    retained.client(&bridge_id);
    retained.client(&client_id);
    let dir = switchboard_testkit::SocketDir::new();
    let unix = dir.endpoint("probe");
    let _server =
        serve_probe_on(&unix.clone().with_instance(&instance).expect("an instance")).await;
    let mqtt = Endpoint::parse(&mqtt_url(&instance, &bridge_id)).expect("a valid MQTT URL");
    let routes = vec![Route::interface(Side::B, "InteropProbe", &instance)];
    let options = BridgeOptions::default().forward_timeout(STEP);
    let bridge = within("the bridge starts", Bridge::start(unix, mqtt, routes, options))
        .await
        .expect("started");

    let mut client = peers.spawn("py_client.py", &[&instance, "--client-id", &client_id]);
    let (status, lines) =
        client.finish(Duration::from_secs(30)).await.expect("their client finishes");
    assert_client_checks(&lines, status.success(), &client.stderr());
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn our_presence_says_offline_after_kill_9() {
    let Some(peers) = StingerPeers::get() else { return };
    let (instance, server_id) = (unique("rs-presence"), unique("rs-server"));
    let mut retained = Retained::new(peers);
    retained.instance(&instance);
    retained.client(&server_id);

    // Our server in a process of its own, so it can be SIGKILLed: the test server binary
    // serves the thermostat at any endpoint URL.
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard-test-server"));
    command.arg(mqtt_url(&instance, &server_id)).stdin(std::process::Stdio::null());
    let mut server = PeerProcess::spawn(command, "our server process");
    let deadline = tokio::time::Instant::now() + PEER_STEP;
    loop {
        let now = presence(peers, &server_id).await;
        if now == serde_json::json!({"online": true}) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "our server never said it was online: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    server.kill();
    let deadline = tokio::time::Instant::now() + PEER_STEP;
    loop {
        let now = presence(peers, &server_id).await;
        if now == serde_json::json!({"online": false}) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "presence still says {now} after kill -9");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
