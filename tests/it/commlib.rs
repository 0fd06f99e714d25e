//! Interoperability with the real commlib-py 0.13.2: its `RPCClient` calls a generated switchboard
//! service and its `Subscriber` receives the service's signals, with nothing in between.
//!
//! `tests/interop/commlib/setup.sh` installs commlib-py and its pinned dependencies in a virtual
//! environment; `tests/interop/commlib/peer.py` is the commlib-py side. The names are those of
//! `docs/wire/brokers.md`: method `m` of instance `i` of `Thermostat` is the RPC
//! `Thermostat.i.method.m`, signal `s` the topic `Thermostat.i.signal.s`.
//!
//! Outside CI, a machine without PyPI prints "skipped: …" and passes; under `CI=true` that is a
//! failure.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard::{
    Endpoint,
    error::{CallError, RemoteError},
    node::Node,
};
use switchboard_testkit::{
    broker::{shared_mosquitto, shared_rabbitmq, shared_redis},
    python::PythonPeers,
};

use crate::suite::{serve_thermostat, within};

/// How long a commlib-py process may take to start, call and answer.
const PEER_STEP: Duration = Duration::from_secs(20);

/// A commlib-py peer's broker: its transport name for `peer.py`, host and port.
struct Broker {
    transport: &'static str,
    host: String,
    port: String,
    url: String,
}

impl Broker {
    fn from_url(transport: &'static str, url: &str) -> Broker {
        let authority = url.split("://").nth(1).expect("a URL").rsplit('@').next().unwrap();
        let (host, port) = authority.split_once(':').expect("host:port");
        Broker { transport, host: host.to_owned(), port: port.to_owned(), url: url.to_owned() }
    }

    fn endpoint(&self, instance: &str) -> Endpoint {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        Endpoint::parse(&format!("{}{separator}instance={instance}", self.url)).expect("a URL")
    }
}

/// Runs `peer.py call` and returns the data it printed.
async fn commlib_call(peers: &PythonPeers, broker: &Broker, rpc: &str, data: Value) -> Value {
    let data = data.to_string();
    let args = ["call", broker.transport, &broker.host, &broker.port, rpc, &data];
    let mut peer = peers.spawn("peer.py", &args);
    let (status, lines) = peer.finish(PEER_STEP).await.expect("commlib-py's call finishes");
    assert!(status.success(), "peer.py call failed: {lines:?}\n{}", peer.stderr());
    let answer = lines.iter().find_map(|line| line.strip_prefix("answer "));
    let answer = answer.unwrap_or_else(|| panic!("peer.py printed no answer: {lines:?}"));
    serde_json::from_str(answer).expect("the answer is JSON")
}

/// commlib-py's `RPCClient` calls our methods: the result is the method's return object, and a
/// refusal is an answer too, whose data carries the server's message (commlib-py has no error
/// channel: its own services answer `{}`).
async fn rpc_client_calls_a_generated_service(broker: Broker) {
    let Some(peers) = PythonPeers::commlib() else { return };
    let instance = format!("commlib-rpc-{}", std::process::id());
    let (_server, handler) = serve_thermostat(&broker.endpoint(&instance)).await;
    let rpc = |method: &str| format!("Thermostat.{instance}.method.{method}");

    let status = commlib_call(peers, &broker, &rpc("getStatus"), json!({})).await;
    assert_eq!(status, json!({"mode": 1, "celsius": 20.0, "history": [19.0, 19.5, 20.0]}));

    let boost = json!({"extraCelsius": 1.5, "forHowLong": "PT0S", "reason": "commlib"});
    let ends = commlib_call(peers, &broker, &rpc("boost"), boost).await;
    assert_eq!(ends, json!({"endsAt": "2030-01-01T00:00:01.500Z"}));
    assert_eq!(handler.callers().len(), 1, "the handler ran once");

    let refused = json!({"extraCelsius": -1.0, "forHowLong": "PT0S"});
    let answer = commlib_call(peers, &broker, &rpc("boost"), refused).await;
    assert_eq!(answer["message"], "boosts only go up", "{answer}");

    let wrong = json!({"extraCelsius": "warm", "forHowLong": "PT0S"});
    let answer = commlib_call(peers, &broker, &rpc("boost"), wrong).await;
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains("extraCelsius"), "a wrong type is named: {answer}");
}

/// commlib-py's `Subscriber` receives our signals as their bare payload.
async fn subscriber_receives_signals(broker: Broker) {
    let Some(peers) = PythonPeers::commlib() else { return };
    let instance = format!("commlib-signal-{}", std::process::id());
    let (server, _) = serve_thermostat(&broker.endpoint(&instance)).await;
    let topic = format!("Thermostat.{instance}.signal.temperatureChanged");
    let args = ["subscribe", broker.transport, &broker.host, &broker.port, &topic, "3"];
    let mut peer = peers.spawn("peer.py", &args);
    peer.wait_for("ready", PEER_STEP).await.expect("commlib-py subscribes");
    let at = switchboard_core::codec::parse_datetime("2025-01-02T03:04:05Z").unwrap();
    for celsius in [20.5, 21.0, 21.5] {
        within("emit", server.emit_temperature_changed(celsius, at)).await.expect("emit");
    }
    let (status, lines) = peer.finish(PEER_STEP).await.expect("the subscriber finishes");
    assert!(status.success(), "peer.py subscribe failed: {lines:?}\n{}", peer.stderr());
    let received: Vec<Value> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("message "))
        .map(|message| serde_json::from_str(message).expect("JSON"))
        .collect();
    let expected: Vec<Value> = [20.5, 21.0, 21.5]
        .iter()
        .map(|c| json!({"celsius": c, "measuredAt": "2025-01-02T03:04:05Z"}))
        .collect();
    assert_eq!(received, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rpc_client_calls_a_generated_service() {
    let Some(server) = shared_redis() else { return };
    rpc_client_calls_a_generated_service(Broker::from_url("redis", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_subscriber_receives_signals() {
    let Some(server) = shared_redis() else { return };
    subscriber_receives_signals(Broker::from_url("redis", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_rpc_client_calls_a_generated_service() {
    let Some(server) = shared_rabbitmq() else { return };
    rpc_client_calls_a_generated_service(Broker::from_url("amqp", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_subscriber_receives_signals() {
    let Some(server) = shared_rabbitmq() else { return };
    subscriber_receives_signals(Broker::from_url("amqp", &server.url)).await;
}

// ---------------------------------------------------------------------------------------------
// Nodes (`switchboard::node`) and commlib-py's own nodes, both ways.

/// A node on `broker`, and a prefix that keeps this test's names apart.
fn node_on(broker: &Broker, tag: &str) -> (Node, String) {
    let endpoint = Endpoint::parse(&broker.url).expect("a URL");
    (Node::new("switchboard-peer", endpoint), crate::node::prefix(tag))
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct AddTwoInts {
    a: i64,
    b: i64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Sum {
    c: i64,
}

/// commlib-py's `RPCClient` calls a node's RPC: the result; a handler's error, whose message
/// reaches it in the reply's data; and a reply that comes too late, for which commlib-py's
/// client returns `None` (its own behaviour on Redis and AMQP).
async fn rpc_client_calls_a_node_service(broker: Broker) {
    let Some(peers) = PythonPeers::commlib() else { return };
    let (node, prefix) = node_on(&broker, "their_client");
    let rpc = format!("{prefix}.add_two_ints");
    let service = node.rpc_service(&rpc, |request: AddTwoInts| async move {
        if request.a < 0 {
            return Err(RemoteError::client_error("a must not be negative"));
        }
        if request.b < 0 {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        Ok(Sum { c: request.a + request.b })
    });
    let _service = within("serving", service).await.expect("served");

    let sum = commlib_call(peers, &broker, &rpc, json!({"a": 2, "b": 40})).await;
    assert_eq!(sum, json!({"c": 42}));
    let refused = commlib_call(peers, &broker, &rpc, json!({"a": -1, "b": 1})).await;
    assert_eq!(refused["message"], "a must not be negative", "{refused}");
    let data = json!({"a": 1, "b": -1}).to_string();
    let args = ["call", broker.transport, &broker.host, &broker.port, &rpc, &data, "1"];
    let mut peer = peers.spawn("peer.py", &args);
    let (status, lines) = peer.finish(PEER_STEP).await.expect("commlib-py's call finishes");
    assert!(status.success(), "peer.py call failed: {lines:?}\n{}", peer.stderr());
    // commlib-py's MQTT client raises its timeout; on Redis and AMQP it returns `None`.
    let timed_out = if broker.transport == "mqtt" { "timeout" } else { "answer null" };
    assert!(lines.iter().any(|line| line == timed_out), "commlib-py timed out: {lines:?}");
}

/// A node's client calls commlib-py's `RPCService`: the result, many calls at once, and its
/// failures. On Redis and AMQP a whitelisted exception (`ValueError`) is answered with `{}`,
/// which the raw client takes and the typed one cannot decode; any other exception goes
/// unanswered on Redis (a `CallError::Timeout`, never an empty value) and is answered `{}` on
/// AMQP. On MQTT commlib-py answers no exception at all. A reply that comes too late is a
/// timeout everywhere.
async fn node_client_calls_an_rpc_service(broker: Broker) {
    let Some(peers) = PythonPeers::commlib() else { return };
    let (node, prefix) = node_on(&broker, "their_service");
    let rpc = format!("{prefix}.add_two_ints");
    let args = ["serve", broker.transport, &broker.host, &broker.port, &rpc, "30"];
    let mut peer = peers.spawn("peer.py", &args);
    peer.wait_for("ready", PEER_STEP).await.expect("commlib-py serves");

    let typed = node.rpc_client::<AddTwoInts, Sum>(&rpc).await.expect("a client");
    let sum = within("a call", typed.call(&AddTwoInts { a: 2, b: 40 })).await;
    assert_eq!(sum.expect("the sum"), Sum { c: 42 });
    // commlib-py's AMQP service queue keeps at most 10 requests and drops the oldest beyond.
    let calls = (0..8).map(|a| {
        let typed = typed.clone();
        async move { (a, typed.call(&AddTwoInts { a, b: 1000 }).await) }
    });
    for (a, sum) in within("8 calls at once", futures_util::future::join_all(calls)).await {
        assert_eq!(sum.expect("a sum"), Sum { c: a + 1000 }, "call {a}");
    }

    let raw = node.rpc_client::<Value, Value>(&rpc).await.expect("a raw client");
    let quick = raw.clone().with_timeout(Duration::from_millis(1500));
    let raised = within("a call that raises", quick.call(&json!({"raise": true}))).await;
    let sums = node.rpc_client::<Value, Sum>(&rpc).await.expect("a typed client");
    let sums = sums.with_timeout(Duration::from_millis(1500));
    let undecodable = within("a typed call that raises", sums.call(&json!({"raise": true}))).await;
    let crashed = within("a call that crashes", quick.call(&json!({"crash": true}))).await;
    match broker.transport {
        "mqtt" => {
            assert!(matches!(raised, Err(CallError::Timeout(_))), "{raised:?}");
            assert!(matches!(undecodable, Err(CallError::Timeout(_))), "{undecodable:?}");
            assert!(matches!(crashed, Err(CallError::Timeout(_))), "{crashed:?}");
        }
        transport => {
            assert_eq!(raised.expect("commlib-py answers a ValueError"), json!({}));
            assert!(matches!(undecodable, Err(CallError::Decode(_))), "{undecodable:?}");
            if transport == "amqp" {
                assert_eq!(crashed.expect("an answer to any exception"), json!({}));
            } else {
                assert!(matches!(crashed, Err(CallError::Timeout(_))), "{crashed:?}");
            }
        }
    }
    let late = within("a late call", quick.call(&json!({"sleep": 3, "a": 1}))).await;
    assert!(matches!(late, Err(CallError::Timeout(_))), "{late:?}");
    peer.kill();
}

/// Ours to theirs: commlib-py's `Subscriber` receives a publisher's messages, and its
/// `PSubscriber` the messages of publishers on several topics, each with its topic.
async fn commlib_subscribers_receive_node_publishes(broker: Broker) {
    let Some(peers) = PythonPeers::commlib() else { return };
    let (node, prefix) = node_on(&broker, "their_subscriber");
    let topic = format!("{prefix}.sonar.front");
    let publisher = node.publisher::<Value>(&topic).await.expect("a publisher");
    let args = ["subscribe", broker.transport, &broker.host, &broker.port, &topic, "2"];
    let mut subscriber = peers.spawn("peer.py", &args);
    subscriber.wait_for("ready", PEER_STEP).await.expect("commlib-py subscribes");
    let pattern = format!("{prefix}.*");
    let args = ["psubscribe", broker.transport, &broker.host, &broker.port, &pattern, "3"];
    let mut psubscriber = peers.spawn("peer.py", &args);
    psubscriber.wait_for("ready", PEER_STEP).await.expect("commlib-py subscribes");

    let other = format!("{prefix}.sonar.back");
    let back = node.publisher::<Value>(&other).await.expect("a publisher");
    publisher.publish(&json!({"distance": 1.25, "tags": ["a"]})).await.expect("published");
    back.publish(&json!({"distance": 9.5})).await.expect("published");
    publisher.publish(&json!({"distance": 1.5})).await.expect("published");

    let (status, lines) = subscriber.finish(PEER_STEP).await.expect("the subscriber finishes");
    assert!(status.success(), "{lines:?}\n{}", subscriber.stderr());
    assert_eq!(
        messages(&lines),
        [json!({"distance": 1.25, "tags": ["a"]}), json!({"distance": 1.5})]
    );
    let (status, lines) = psubscriber.finish(PEER_STEP).await.expect("the subscriber finishes");
    assert!(status.success(), "{lines:?}\n{}", psubscriber.stderr());
    let mut seen = messages(&lines);
    seen.sort_by_key(|m| m.to_string());
    // commlib-py's MQTT PSubscriber reports topics in MQTT's notation.
    let notation = |topic: &str| {
        if broker.transport == "mqtt" { topic.replace('.', "/") } else { topic.to_owned() }
    };
    let mut expected = vec![
        json!({"topic": notation(&topic), "data": {"distance": 1.25, "tags": ["a"]}}),
        json!({"topic": notation(&other), "data": {"distance": 9.5}}),
        json!({"topic": notation(&topic), "data": {"distance": 1.5}}),
    ];
    expected.sort_by_key(|m| m.to_string());
    assert_eq!(seen, expected);
}

/// Theirs to ours: a node's subscriber and pattern subscriber receive what commlib-py's
/// publishers publish, the pattern subscriber with each message's topic.
async fn node_subscribers_receive_commlib_publishes(broker: Broker) {
    let Some(peers) = PythonPeers::commlib() else { return };
    let (node, prefix) = node_on(&broker, "their_publisher");
    let front = format!("{prefix}.sonar.front");
    let back = format!("{prefix}.sonar.back");
    let mut subscriber = node.subscriber::<Value>(&front).await.expect("a subscriber");
    let mut everything =
        node.pattern_subscriber::<Value>(&format!("{prefix}.*")).await.expect("a pattern");
    let pairs = json!([[front, {"seq": 1}], [back, {"seq": 2}], [front, {"seq": 3}]]).to_string();
    let args = ["publish", broker.transport, &broker.host, &broker.port, "-", &pairs];
    let mut publisher = peers.spawn("peer.py", &args);
    let (status, lines) = publisher.finish(PEER_STEP).await.expect("the publisher finishes");
    assert!(status.success(), "{lines:?}\n{}", publisher.stderr());

    for seq in [1, 3] {
        let message = within("a message", subscriber.next()).await.expect("open").expect("JSON");
        assert_eq!(message, json!({"seq": seq}));
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let received = within("a message", everything.next()).await.expect("open").expect("JSON");
        seen.push((received.topic, received.message["seq"].as_u64().expect("seq")));
    }
    // Each topic has a publisher of its own, so only each one's order is kept.
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen, [(back, 2), (front.clone(), 1), (front, 3)]);
}

/// The `message ` lines a peer printed, as JSON.
fn messages(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix("message "))
        .map(|message| serde_json::from_str(message).expect("JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rpc_client_calls_a_node_service() {
    let Some(server) = shared_redis() else { return };
    rpc_client_calls_a_node_service(Broker::from_url("redis", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_node_client_calls_an_rpc_service() {
    let Some(server) = shared_redis() else { return };
    node_client_calls_an_rpc_service(Broker::from_url("redis", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_commlib_subscribers_receive_node_publishes() {
    let Some(server) = shared_redis() else { return };
    commlib_subscribers_receive_node_publishes(Broker::from_url("redis", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_node_subscribers_receive_commlib_publishes() {
    let Some(server) = shared_redis() else { return };
    node_subscribers_receive_commlib_publishes(Broker::from_url("redis", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_rpc_client_calls_a_node_service() {
    let Some(server) = shared_rabbitmq() else { return };
    rpc_client_calls_a_node_service(Broker::from_url("amqp", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_node_client_calls_an_rpc_service() {
    let Some(server) = shared_rabbitmq() else { return };
    node_client_calls_an_rpc_service(Broker::from_url("amqp", &server.url)).await;
}

/// commlib-py's AMQP `PSubscriber` cannot be made with a `*` and fails on every message
/// without one (docs/commlib.md), so on AMQP only its `Subscriber` hears ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_commlib_subscriber_receives_node_publishes() {
    let Some(server) = shared_rabbitmq() else { return };
    let broker = Broker::from_url("amqp", &server.url);
    let Some(peers) = PythonPeers::commlib() else { return };
    let (node, prefix) = node_on(&broker, "their_amqp_subscriber");
    let topic = format!("{prefix}.sonar.front");
    let publisher = node.publisher::<Value>(&topic).await.expect("a publisher");
    let args = ["subscribe", broker.transport, &broker.host, &broker.port, &topic, "2"];
    let mut subscriber = peers.spawn("peer.py", &args);
    subscriber.wait_for("ready", PEER_STEP).await.expect("commlib-py subscribes");
    publisher.publish(&json!({"distance": 1.25})).await.expect("published");
    publisher.publish(&json!({"distance": 1.5})).await.expect("published");
    let (status, lines) = subscriber.finish(PEER_STEP).await.expect("the subscriber finishes");
    assert!(status.success(), "{lines:?}\n{}", subscriber.stderr());
    assert_eq!(messages(&lines), [json!({"distance": 1.25}), json!({"distance": 1.5})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_node_subscribers_receive_commlib_publishes() {
    let Some(server) = shared_rabbitmq() else { return };
    node_subscribers_receive_commlib_publishes(Broker::from_url("amqp", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_rpc_client_calls_a_node_service() {
    let Some(server) = shared_mosquitto() else { return };
    rpc_client_calls_a_node_service(Broker::from_url("mqtt", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_node_client_calls_an_rpc_service() {
    let Some(server) = shared_mosquitto() else { return };
    node_client_calls_an_rpc_service(Broker::from_url("mqtt", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_commlib_subscribers_receive_node_publishes() {
    let Some(server) = shared_mosquitto() else { return };
    commlib_subscribers_receive_node_publishes(Broker::from_url("mqtt", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_node_subscribers_receive_commlib_publishes() {
    let Some(server) = shared_mosquitto() else { return };
    node_subscribers_receive_commlib_publishes(Broker::from_url("mqtt", &server.url)).await;
}

/// Heartbeats and control RPCs, both ways: a commlib-py node's heartbeats reach a node's
/// subscriber and its control RPCs answer a node's client; a node's heartbeats reach
/// commlib-py's subscriber and its control RPCs answer commlib-py's client as commlib-py's own
/// would (and its `stop` stops the heartbeats, which commlib-py's does not).
async fn heartbeats_and_control_both_ways(broker: Broker) {
    use switchboard::node::{CANNOT_TRANSITION, ControlReply, Heartbeat};
    let Some(peers) = PythonPeers::commlib() else { return };
    let (node, prefix) = node_on(&broker, "nodes");
    let theirs = format!("{prefix}.theirs");
    let args = ["node", broker.transport, &broker.host, &broker.port, &theirs, "30"];
    let mut peer = peers.spawn("peer.py", &args);
    let mut heartbeats =
        node.subscriber::<Heartbeat>(&format!("{theirs}.heartbeat")).await.expect("sub");
    peer.wait_for("ready", PEER_STEP).await.expect("commlib-py's node runs");
    let beat = within("their heartbeat", heartbeats.next()).await.expect("open").expect("JSON");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let age = u64::try_from(now.as_nanos()).unwrap().abs_diff(beat.ts);
    assert!(age < 5_000_000_000, "a heartbeat of now, in ns: {beat:?}");
    let control = |verb: &str| {
        let rpc = format!("{theirs}.{verb}");
        let node = node.clone();
        async move { node.rpc_client::<Value, ControlReply>(&rpc).await.expect("a client") }
    };
    let start = control("start").await;
    let refused = within("their start", start.call(&json!({}))).await.expect("an answer");
    assert_eq!((refused.status, refused.error.as_str()), (1, CANNOT_TRANSITION));
    let stop = control("stop").await;
    let stopped = within("their stop", stop.call(&json!({}))).await.expect("an answer");
    assert_eq!((stopped.status, stopped.error.as_str()), (0, ""));
    peer.kill();

    let ours = format!("{prefix}.ours");
    let endpoint = node.endpoint().clone();
    let robot = Node::with_options(&ours, endpoint, Duration::from_millis(200), true);
    within("running our node", robot.run()).await.expect("it runs");
    let topic = robot.heartbeat_topic();
    let args = ["subscribe", broker.transport, &broker.host, &broker.port, &topic, "2"];
    let mut subscriber = peers.spawn("peer.py", &args);
    let (status, lines) = subscriber.finish(PEER_STEP).await.expect("the subscriber finishes");
    assert!(status.success(), "{lines:?}\n{}", subscriber.stderr());
    let beats = messages(&lines);
    // It stops after two, but a third may arrive while it stops.
    assert!(beats.len() >= 2, "{lines:?}");
    assert!(beats.iter().all(|beat| beat["ts"].as_u64().is_some_and(|ts| ts > 0)), "{beats:?}");
    for (verb, expected) in [
        ("stop", json!({"status": 0, "error": ""})),
        ("start", json!({"status": 0, "error": ""})),
        ("start", json!({"status": 1, "error": CANNOT_TRANSITION})),
    ] {
        let answer = commlib_call(peers, &broker, &format!("{ours}.{verb}"), json!({})).await;
        assert_eq!(answer, expected, "{verb}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_heartbeats_and_control_both_ways() {
    let Some(server) = shared_redis() else { return };
    heartbeats_and_control_both_ways(Broker::from_url("redis", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_heartbeats_and_control_both_ways() {
    let Some(server) = shared_mosquitto() else { return };
    heartbeats_and_control_both_ways(Broker::from_url("mqtt", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_heartbeats_and_control_both_ways() {
    let Some(server) = shared_rabbitmq() else { return };
    heartbeats_and_control_both_ways(Broker::from_url("amqp", &server.url)).await;
}

/// commlib-py's `ActionClient` drives a node's action service: the goal is accepted with a
/// goal id, its feedback and terminal status arrive on the action's topics and its result
/// through `get_result`; a cancelled goal ends as CANCELED (6).
async fn action_client_drives_a_node_action(broker: Broker) {
    use switchboard::{action::GoalContext, error::HandlerError};
    let Some(peers) = PythonPeers::commlib() else { return };
    let (node, prefix) = node_on(&broker, "their_action_client");
    let action = format!("{prefix}.move");
    let service = node.action_service(&action, |goal: Value, ctx: GoalContext<Value>| async move {
        let steps = goal["steps"].as_u64().unwrap_or_default();
        for step in 0..steps {
            // commlib-py's client drops what comes before it knows the goal's id.
            tokio::select! {
                () = ctx.cancelled() => return Err(HandlerError::Cancelled),
                () = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
            ctx.feedback(json!({"step": step})).await;
        }
        Ok(json!({"done": steps}))
    });
    let _service = within("serving an action", service).await.expect("served");

    let args =
        ["goal", broker.transport, &broker.host, &broker.port, &action, r#"{"steps":3}"#, "-1"];
    let mut client = peers.spawn("peer.py", &args);
    let (status, lines) = client.finish(PEER_STEP).await.expect("the goal ends");
    assert!(status.success(), "{lines:?}\n{}", client.stderr());
    let line = |prefix: &str| -> Vec<Value> {
        lines
            .iter()
            .filter_map(|line| line.strip_prefix(prefix))
            .map(|json| serde_json::from_str(json).expect("JSON"))
            .collect()
    };
    let accepted = &line("accepted ")[0];
    assert_eq!(accepted["status"], 1, "{lines:?}");
    assert_eq!(accepted["goal_id"].as_str().map(str::len), Some(32), "{lines:?}");
    let feedback = line("feedback ");
    assert_eq!(feedback, [json!({"step": 0}), json!({"step": 1}), json!({"step": 2})]);
    assert_eq!(line("result "), [json!({"status": 4, "result": {"done": 3}})], "{lines:?}");

    let args =
        ["goal", broker.transport, &broker.host, &broker.port, &action, r#"{"steps":50}"#, "0.8"];
    let mut client = peers.spawn("peer.py", &args);
    let (status, lines) = client.finish(PEER_STEP).await.expect("the goal ends");
    assert!(status.success(), "{lines:?}\n{}", client.stderr());
    let cancel: Vec<&String> = lines.iter().filter(|l| l.starts_with("cancel ")).collect();
    assert_eq!(cancel, ["cancel {\"status\": 1}"], "{lines:?}");
    let result = lines.iter().find_map(|l| l.strip_prefix("result ")).expect("a result");
    let result: Value = serde_json::from_str(result).expect("JSON");
    assert_eq!(result, json!({"status": 6, "result": {}}), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_action_client_drives_a_node_action() {
    let Some(server) = shared_redis() else { return };
    action_client_drives_a_node_action(Broker::from_url("redis", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_action_client_drives_a_node_action() {
    let Some(server) = shared_mosquitto() else { return };
    action_client_drives_a_node_action(Broker::from_url("mqtt", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_action_client_drives_a_node_action() {
    let Some(server) = shared_rabbitmq() else { return };
    action_client_drives_a_node_action(Broker::from_url("amqp", &server.url)).await;
}

/// A node's action client drives commlib-py's `ActionService`: every feedback arrives, the
/// first included (commlib-py publishes it before it answers with the goal's id, and its own
/// client loses it), then the result; a cancelled goal ends cancelled.
async fn node_action_client_drives_an_action_service(broker: Broker) {
    use switchboard::action::{GoalError, GoalStatus};
    let Some(peers) = PythonPeers::commlib() else { return };
    let (node, prefix) = node_on(&broker, "their_action_service");
    let action = format!("{prefix}.move");
    let args = ["action", broker.transport, &broker.host, &broker.port, &action, "30"];
    let mut peer = peers.spawn("peer.py", &args);
    peer.wait_for("ready", PEER_STEP).await.expect("commlib-py serves");
    let client = node.action_client::<Value, Value, Value>(&action).await.expect("a client");

    let mut goal =
        within("a goal", client.send_goal(&json!({"steps": 3}))).await.expect("accepted");
    let mut feedback = Vec::new();
    while let Some(step) = within("feedback", goal.next_feedback()).await {
        feedback.push(step);
    }
    assert_eq!(feedback, [json!({"step": 0}), json!({"step": 1}), json!({"step": 2})]);
    assert_eq!(within("the result", goal.result()).await.ok(), Some(json!({"done": 3})));
    assert_eq!(goal.status(), GoalStatus::Succeeded);

    // commlib-py runs one goal at a time: the next is sent once this one has ended.
    let mut long =
        within("a long goal", client.send_goal(&json!({"steps": 50}))).await.expect("accepted");
    within("its first feedback", long.next_feedback()).await.expect("feedback");
    within("cancelling", long.cancel()).await.expect("cancel is taken");
    let result = within("its end", long.result()).await;
    assert!(matches!(result, Err(GoalError::Cancelled)), "{result:?}");
    peer.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_node_action_client_drives_an_action_service() {
    let Some(server) = shared_redis() else { return };
    node_action_client_drives_an_action_service(Broker::from_url("redis", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_node_action_client_drives_an_action_service() {
    let Some(server) = shared_mosquitto() else { return };
    node_action_client_drives_an_action_service(Broker::from_url("mqtt", &server.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_node_action_client_drives_an_action_service() {
    let Some(server) = shared_rabbitmq() else { return };
    node_action_client_drives_an_action_service(Broker::from_url("amqp", &server.url)).await;
}

// ---------------------------------------------------------------------------------------------
// Bridges (`switchboard::bridge`) with commlib-py on one side.

/// commlib-py's `RPCClient` on Redis calls a node's RPC served on MQTT through a bridge: the
/// result, and the service's refusal, whose message reaches commlib-py as it would directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rpc_client_calls_an_mqtt_node_through_a_bridge() {
    use switchboard::bridge::{Bridge, BridgeOptions, Route, Side};
    let (Some(redis), Some(mqtt)) = (shared_redis(), shared_mosquitto()) else { return };
    let Some(peers) = PythonPeers::commlib() else { return };
    let (redis, mqtt) =
        (Broker::from_url("redis", &redis.url), Broker::from_url("mqtt", &mqtt.url));
    let (node, prefix) = node_on(&mqtt, "bridged");
    let rpc = format!("{prefix}.add_two_ints");
    let service = node.rpc_service(&rpc, |request: AddTwoInts| async move {
        if request.a < 0 {
            return Err(RemoteError::client_error("a must not be negative"));
        }
        Ok(Sum { c: request.a + request.b })
    });
    let _service = within("serving", service).await.expect("served");
    let bridged = format!("{prefix}.site1.add_two_ints");
    let a = Endpoint::parse(&mqtt.url).expect("a URL");
    let b = Endpoint::parse(&redis.url).expect("a URL");
    let routes = vec![Route::rpc(Side::B, &bridged, &rpc)];
    let bridge = within("a bridge", Bridge::start(a, b, routes, BridgeOptions::default())).await;
    let bridge = bridge.expect("the bridge starts");

    let sum = commlib_call(peers, &redis, &bridged, json!({"a": 2, "b": 40})).await;
    assert_eq!(sum, json!({"c": 42}));
    let refused = commlib_call(peers, &redis, &bridged, json!({"a": -1, "b": 1})).await;
    assert_eq!(refused["message"], "a must not be negative", "{refused}");
    assert_eq!(bridge.counts()[0].forwarded, 2, "{:?}", bridge.counts());
}

// ---------------------------------------------------------------------------------------------
// A broker restart with commlib-py on one side.

/// A node's client calls commlib-py's `RPCService` on a private broker that is killed and
/// started again: while it is away a call fails with a transport error, well before its
/// timeout; once it is back, calls get answers again, with nothing restarted by hand on either
/// side. How long commlib-py takes to serve again is printed: it reconnects on its own
/// schedule (Redis: a retry every `reconnect_delay`, 5 s by default; MQTT: paho's backoff).
async fn node_client_survives_a_restart_with_a_commlib_service(
    transport: &'static str,
    broker: &mut dyn crate::brokered::Outage,
    url: &str,
) {
    let Some(peers) = PythonPeers::commlib() else { return };
    let broker_at = Broker::from_url(transport, url);
    let (node, prefix) = node_on(&broker_at, "restart");
    let rpc = format!("{prefix}.add_two_ints");
    let args = ["serve", transport, &broker_at.host, &broker_at.port, &rpc, "120"];
    let mut peer = peers.spawn("peer.py", &args);
    peer.wait_for("ready", PEER_STEP).await.expect("commlib-py serves");
    let client = node.rpc_client::<AddTwoInts, Sum>(&rpc).await.expect("a client");
    let client = client.with_timeout(Duration::from_secs(2));
    let sum = within("a call", client.call(&AddTwoInts { a: 1, b: 2 })).await;
    assert_eq!(sum.expect("before the restart"), Sum { c: 3 });

    broker.stop();
    // The client notices the lost link at once or at its next read; from then on a call fails
    // at once, not at its 2 s timeout.
    let outage = std::time::Instant::now();
    let failed = loop {
        let started = std::time::Instant::now();
        let result = within("a call in the outage", client.call(&AddTwoInts { a: 1, b: 1 })).await;
        match result {
            Err(CallError::Transport(error)) => break (error, started.elapsed()),
            other => {
                assert!(outage.elapsed() < Duration::from_secs(10), "still {other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(failed.1 < Duration::from_secs(1), "{transport}: failed after {:?}", failed.1);

    broker.start();
    let restarted = std::time::Instant::now();
    let sum = loop {
        match within("a call after the restart", client.call(&AddTwoInts { a: 2, b: 2 })).await {
            Ok(sum) => break sum,
            Err(error) => {
                let waited = restarted.elapsed();
                assert!(
                    waited < Duration::from_secs(45),
                    "{transport}: still {error} after {waited:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(sum, Sum { c: 4 });
    eprintln!(
        "{transport}: calls answered again {:?} after the broker was back",
        restarted.elapsed()
    );
    for a in 0..5 {
        let sum = within("calls after the restart", client.call(&AddTwoInts { a, b: 10 })).await;
        assert_eq!(sum.expect("a sum"), Sum { c: a + 10 }, "call {a}");
    }
    peer.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_node_client_survives_a_restart_with_a_commlib_service() {
    let Some(mut redis) = switchboard_testkit::broker::PrivateRedis::start() else { return };
    let url = redis.url();
    node_client_survives_a_restart_with_a_commlib_service("redis", &mut redis, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_node_client_survives_a_restart_with_a_commlib_service() {
    let Some(mut mosquitto) = switchboard_testkit::broker::PrivateMosquitto::start() else {
        return;
    };
    let url = mosquitto.url();
    node_client_survives_a_restart_with_a_commlib_service("mqtt", &mut mosquitto, &url).await;
}
