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

use serde_json::{Value, json};
use switchboard::Endpoint;
use switchboard_testkit::{
    broker::{shared_rabbitmq, shared_redis},
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
