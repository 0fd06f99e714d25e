//! Bridges (`switchboard::bridge`) between two transports: the same bodies run on each pair
//! (Unix and MQTT, Redis and NATS, AMQP and MQTT; an interface route from Unix to each broker);
//! the bodies that read a pattern, or that read a topic on the side they publish it on, need a
//! broker on both sides. Then the faults: a side unreachable at start, a side's broker
//! restarting under traffic, a side that comes up later, an interface's service restarting.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard::{
    Endpoint,
    bridge::{Bridge, BridgeError, BridgeOptions, Route, Side},
    error::{CallError, ErrorCode, RemoteError},
    node::{Node, PatternSubscriber, Publisher, Subscriber},
};

use switchboard::{
    action::{GoalContext, GoalError},
    error::{HandlerError, MethodError},
    server::CallContext,
};
use switchboard_tests::thermostat::{
    GetStatusReply, Mode, OutOfRange, PreheatError, PreheatFeedback, PreheatGoal, Thermostat,
    ThermostatClient, ThermostatProperties, ThermostatServer,
};

use crate::{brokered::eventually, suite::within};

/// Instantiates bodies on one pair of sides: `$make` is an expression of type
/// `Option<(Endpoint, Endpoint, G)>` (side A, side B, and what must live as long as the test);
/// `None` skips the test (no broker outside CI).
macro_rules! bridge_tests {
    ($tag:literal, $make:expr; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            switchboard_testkit::init_tracing();
            let Some((a, b, _guard)) = $make else { return };
            crate::bridge::$name(a, b, crate::node::prefix($tag)).await;
        }
    )*};
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Reading {
    seq: u64,
}

fn nodes(a: &Endpoint, b: &Endpoint) -> (Node, Node) {
    (Node::new("bridge-test-a", a.clone()), Node::new("bridge-test-b", b.clone()))
}

/// Publishes probes (`seq` 0) until `subscriber` hears one, so every subscription on the way
/// (the bridge's and the test's) is in force; returns how many it published.
async fn settle(publisher: &Publisher<Reading>, subscriber: &mut Subscriber<Reading>) -> u64 {
    for probes in 1..=100 {
        publisher.publish(&Reading { seq: 0 }).await.expect("a probe is published");
        if let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(50), subscriber.next()).await
        {
            return probes;
        }
    }
    panic!("no probe crossed the bridge");
}

/// The next `n` readings that are not probes.
async fn readings(subscriber: &mut Subscriber<Reading>, n: usize) -> Vec<u64> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let reading = within("a reading", subscriber.next()).await.expect("open").expect("JSON");
        if reading.seq != 0 {
            seen.push(reading.seq);
        }
    }
    seen
}

/// Topic routes both ways, each renaming its topic: every message crosses, in order, once,
/// though the bridge keeps many publishes on their way at once (several windows' worth here).
pub(crate) async fn topic_routes_carry_messages_in_order(a: Endpoint, b: Endpoint, prefix: String) {
    let (node_a, node_b) = nodes(&a, &b);
    let (up, up_renamed) = (format!("{prefix}.sensors.front"), format!("{prefix}.site1.front"));
    let (down, down_renamed) = (format!("{prefix}.setpoint"), format!("{prefix}.site1.setpoint"));
    // Over a Unix socket a subscriber connects to a publisher: the one read must exist first.
    let publisher_a = within("a publisher", node_a.publisher::<Reading>(&up)).await.expect("pub");
    let publisher_b = within("a publisher", node_b.publisher::<Reading>(&down)).await.expect("pub");
    let routes =
        vec![Route::topic(Side::A, &up, &up_renamed), Route::topic(Side::B, &down, &down_renamed)];
    let bridge = within("a bridge", Bridge::start(a, b, routes, BridgeOptions::default())).await;
    let bridge = bridge.expect("the bridge starts");
    let mut on_b = node_b.subscriber::<Reading>(&up_renamed).await.expect("a subscriber");
    let mut on_a = node_a.subscriber::<Reading>(&down_renamed).await.expect("a subscriber");
    settle(&publisher_a, &mut on_b).await;
    settle(&publisher_b, &mut on_a).await;

    const N: u64 = 4 * switchboard::bridge::DEFAULT_IN_FLIGHT as u64;
    for seq in 1..=N {
        publisher_a.publish(&Reading { seq }).await.expect("published");
        publisher_b.publish(&Reading { seq: 10_000 + seq }).await.expect("published");
    }
    assert_eq!(readings(&mut on_b, N as usize).await, (1..=N).collect::<Vec<_>>());
    assert_eq!(readings(&mut on_a, N as usize).await, (10_001..=10_000 + N).collect::<Vec<_>>());
    // A route counts a message once its publish returns, which can be after the far side's
    // subscriber has it: wait for the counts to catch up with what arrived.
    let counts = eventually("the counts of the messages forwarded each way", async || {
        let counts = bridge.counts();
        (counts[0].forwarded > N && counts[1].forwarded > N).then_some(counts)
    })
    .await;
    assert_eq!(counts[0].route, format!("topic a:{up} -> b:{up_renamed}"));
    assert_eq!((counts[0].dropped, counts[1].dropped), (0, 0), "{counts:?}");
}

/// An RPC route answers calls on one side with a service on the other: answers, the service's
/// own errors (unchanged), many calls in flight, and a far side that does not answer in time.
pub(crate) async fn rpc_routes_forward_calls(a: Endpoint, b: Endpoint, prefix: String) {
    let (node_a, node_b) = nodes(&a, &b);
    let add = format!("{prefix}.add");
    let _service = node_a
        .rpc_service(&add, |request: Value| async move {
            let (x, y) = (request["a"].as_i64().unwrap_or(0), request["b"].as_i64().unwrap_or(0));
            if x < 0 {
                return Err(RemoteError::new(ErrorCode::ClientError, "Negative", "no negatives"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(json!({"c": x + y}))
        })
        .await
        .expect("served");
    let slow = format!("{prefix}.slow");
    let _slow = node_a
        .rpc_service(&slow, |_: Value| async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok::<_, RemoteError>(json!({}))
        })
        .await
        .expect("served");
    let (bridged, silent) = (format!("{prefix}.bridged_add"), format!("{prefix}.silent"));
    let routes = vec![Route::rpc(Side::B, &bridged, &add), Route::rpc(Side::B, &silent, &slow)];
    // Far above the 50 ms answers even on a loaded machine, and far below the silent one's 2 s.
    let options = BridgeOptions::default().forward_timeout(Duration::from_secs(1));
    let bridge = within("a bridge", Bridge::start(a, b, routes, options)).await.expect("started");
    let client = node_b.rpc_client::<Value, Value>(&bridged).await.expect("a client");
    let sum = within("a bridged call", client.call(&json!({"a": 2, "b": 40}))).await;
    assert_eq!(sum.expect("an answer"), json!({"c": 42}));

    let refused = within("a refused call", client.call(&json!({"a": -1, "b": 0}))).await;
    let error = refused.expect_err("refused").as_remote().cloned().expect("the service's error");
    assert_eq!(
        (error.code(), error.name(), error.message()),
        (ErrorCode::ClientError, "Negative", "no negatives")
    );

    let calls = (0..20).map(|n| {
        let client = client.clone();
        async move { (n, client.call(&json!({"a": n, "b": n})).await) }
    });
    let started = Instant::now();
    for (n, answer) in within("20 calls at once", futures_util::future::join_all(calls)).await {
        assert_eq!(answer.expect("an answer"), json!({"c": 2 * n}), "call {n}");
    }
    assert!(started.elapsed() < Duration::from_millis(20 * 50), "calls were serialised");

    let silent = node_b.rpc_client::<Value, Value>(&silent).await.expect("a client");
    let error = within("a call nobody answers", silent.call(&json!({}))).await.expect_err("fails");
    let error = error.as_remote().cloned().expect("the bridge's error");
    assert_eq!(error.code(), ErrorCode::Timeout, "{error}");
    assert!(error.message().contains("did not answer within 1s"), "{error}");
    let counts = bridge.counts();
    assert_eq!((counts[0].forwarded, counts[0].failed), (22, 0), "{counts:?}");
    assert_eq!((counts[1].forwarded, counts[1].failed), (0, 1), "{counts:?}");
}

/// A pattern route carries every matching topic, each renamed, and nothing else.
pub(crate) async fn pattern_routes_rename_each_topic(a: Endpoint, b: Endpoint, prefix: String) {
    let (node_a, node_b) = nodes(&a, &b);
    let routes =
        vec![Route::pattern(Side::A, format!("{prefix}.sensors.*"), format!("{prefix}.site1"))];
    let bridge = within("a bridge", Bridge::start(a, b, routes, BridgeOptions::default())).await;
    let bridge = bridge.expect("started");
    let mut on_b: PatternSubscriber<Reading> =
        node_b.pattern_subscriber(&format!("{prefix}.site1.*")).await.expect("a subscriber");
    let topics = ["front", "back.temp", "back.temp.raw"];
    let mut publishers = Vec::new();
    for topic in topics {
        let topic = format!("{prefix}.sensors.{topic}");
        publishers.push(node_a.publisher::<Reading>(&topic).await.expect("a publisher"));
    }
    let elsewhere =
        node_a.publisher::<Reading>(&format!("{prefix}.actuators.front")).await.expect("pub");
    // Probes until one crosses: the bridge's subscription is in force.
    'settle: {
        for _ in 0..100 {
            publishers[0].publish(&Reading { seq: 0 }).await.expect("a probe");
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), on_b.next()).await
            {
                break 'settle;
            }
        }
        panic!("no probe crossed the bridge");
    }
    for (seq, publisher) in publishers.iter().enumerate() {
        elsewhere.publish(&Reading { seq: 99 }).await.expect("published");
        publisher.publish(&Reading { seq: seq as u64 + 1 }).await.expect("published");
    }
    let mut seen = BTreeSet::new();
    while seen.len() < topics.len() {
        let received = within("a message", on_b.next()).await.expect("open").expect("JSON");
        assert_ne!(received.message.seq, 99, "a topic outside the pattern crossed");
        if received.message.seq != 0 {
            seen.insert((received.topic, received.message.seq));
        }
    }
    let expected: BTreeSet<(String, u64)> = topics
        .iter()
        .enumerate()
        .map(|(seq, topic)| (format!("{prefix}.site1.{topic}"), seq as u64 + 1))
        .collect();
    assert_eq!(seen, expected);
    let more = tokio::time::timeout(Duration::from_millis(200), on_b.next()).await;
    assert!(more.is_err(), "nothing else crosses: {more:?}");
    assert!(bridge.counts()[0].forwarded >= 4, "{:?}", bridge.counts());
}

/// Routes both ways between the same names: each message crosses once and never comes back.
pub(crate) async fn routes_both_ways_do_not_loop(a: Endpoint, b: Endpoint, prefix: String) {
    let (node_a, node_b) = nodes(&a, &b);
    let topic = format!("{prefix}.shared");
    let routes = vec![Route::topic(Side::A, &topic, &topic), Route::topic(Side::B, &topic, &topic)];
    let bridge = within("a bridge", Bridge::start(a, b, routes, BridgeOptions::default())).await;
    let bridge = bridge.expect("started");
    let publisher = node_a.publisher::<Reading>(&topic).await.expect("a publisher");
    let mut on_a = node_a.subscriber::<Reading>(&topic).await.expect("a subscriber");
    let mut on_b = node_b.subscriber::<Reading>(&topic).await.expect("a subscriber");
    settle(&publisher, &mut on_b).await;
    for seq in 1..=5 {
        publisher.publish(&Reading { seq }).await.expect("published");
    }
    assert_eq!(readings(&mut on_b, 5).await, [1, 2, 3, 4, 5]);
    assert_eq!(readings(&mut on_a, 5).await, [1, 2, 3, 4, 5]);
    // An echo would arrive on A after the originals, and again and again.
    let deadline = Instant::now() + Duration::from_millis(500);
    while let Ok(Some(next)) = tokio::time::timeout_at(deadline.into(), on_a.next()).await {
        let reading = next.expect("JSON");
        assert_eq!(reading.seq, 0, "{reading:?} came back across the bridge");
    }
    let counts = bridge.counts();
    assert!(counts[1].looped >= 5, "{counts:?}");
    assert_eq!(counts[1].forwarded, 0, "{counts:?}");
}

/// The thermostat interface routes expose: a preheat to 25 °C or more is slow enough to cancel,
/// and one past 30 °C is refused with the declared `OutOfRange`.
#[derive(Debug, Clone, Default)]
struct Zone;

impl Thermostat for Zone {
    async fn boost(
        &self,
        _ctx: &CallContext,
        extra_celsius: f64,
        _for_how_long: switchboard::Duration,
        _reason: Option<String>,
    ) -> Result<switchboard::DateTime, RemoteError> {
        if extra_celsius < 0.0 {
            return Err(RemoteError::client_error("boosts only go up"));
        }
        Ok(crate::suite::datetime("2030-01-01T00:00:00Z")
            + switchboard::Duration::milliseconds((extra_celsius * 1000.0) as i64))
    }

    async fn get_status(&self, _ctx: &CallContext) -> Result<GetStatusReply, RemoteError> {
        Ok(GetStatusReply { mode: Mode::Eco, celsius: 18.5, history: vec![18.0, 18.5] })
    }

    async fn accept_preheat(
        &self,
        _ctx: &CallContext,
        goal: &PreheatGoal,
    ) -> Result<(), HandlerError<PreheatError>> {
        if goal.target_celsius > 30.0 {
            let requested_celsius = goal.target_celsius;
            let error = OutOfRange { requested_celsius, min_celsius: 5.0, max_celsius: 30.0 };
            return Err(PreheatError::OutOfRange(error).into());
        }
        Ok(())
    }

    async fn preheat(
        &self,
        goal: GoalContext<PreheatFeedback>,
        target_celsius: f64,
    ) -> Result<f64, HandlerError<PreheatError>> {
        let (steps, step) = if target_celsius >= 25.0 { (200, 50) } else { (4, 10) };
        for n in 1..=steps {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(step)) => {}
                () = goal.cancelled() => return Err(HandlerError::Cancelled),
            }
            let percent = (n * 100 / steps) as u8;
            goal.feedback(PreheatFeedback { celsius: target_celsius, percent }).await;
        }
        Ok(target_celsius)
    }

    async fn update_setpoint(&self, _ctx: &CallContext, celsius: &f64) -> Result<(), RemoteError> {
        if *celsius > 35.5 {
            return Err(RemoteError::client_error("too hot"));
        }
        Ok(())
    }
}

async fn serve_zone(endpoint: &Endpoint, setpoint: f64) -> ThermostatServer {
    let properties = ThermostatProperties { setpoint, mode: Mode::Heat };
    let server = within("serve", ThermostatServer::serve(endpoint, Zone, properties)).await;
    server.expect("the thermostat serves")
}

/// An interface route serves on side B the thermostat that runs on side A, and the generated
/// client on B uses all of it: methods and their errors, properties (read, set, watched, a
/// read-only one refused, versions as A counts them), a signal, and an action with feedback, a
/// declared error and a cancel.
pub(crate) async fn interface_routes_expose_a_service(a: Endpoint, b: Endpoint, prefix: String) {
    // An instance is one segment of a broker's addresses: no dots.
    let prefix = prefix.replace('.', "_");
    let at = |side: &Endpoint| side.clone().with_instance(&prefix).expect("an instance");
    let (on_a, on_b) = (at(&a), at(&b));
    let server = serve_zone(&on_a, 21.0).await;
    let routes = vec![Route::interface(Side::B, "Thermostat", &prefix)];
    let options = BridgeOptions::default().forward_timeout(Duration::from_secs(5));
    let bridge = within("a bridge", Bridge::start(a, b, routes, options)).await.expect("started");
    assert_eq!(bridge.counts()[0].route, format!("interface b:Thermostat/{prefix} -> a"));
    // The generated client checks the interface's hash: the bridge presents the original's.
    let client = within("connect", ThermostatClient::connect(&on_b)).await.expect("connected");
    let direct = within("connect", ThermostatClient::connect(&on_a)).await.expect("connected");

    let status = within("getStatus", client.get_status()).await.expect("an answer");
    assert_eq!(
        status,
        GetStatusReply { mode: Mode::Eco, celsius: 18.5, history: vec![18.0, 18.5] }
    );
    let ends = within("boost", client.boost(2.0, switchboard::Duration::zero(), None)).await;
    let expected = crate::suite::datetime("2030-01-01T00:00:02Z");
    assert_eq!(ends.expect("an answer"), expected);
    let refused = within("boost", client.boost(-1.0, switchboard::Duration::zero(), None)).await;
    let refused = refused.expect_err("refused").as_remote().cloned().expect("the server's error");
    assert_eq!((refused.code(), refused.message()), (ErrorCode::ClientError, "boosts only go up"));

    // Properties: B holds what A holds, at A's versions, and an update from B is A's update.
    assert_eq!(within("get", client.get_setpoint()).await.expect("a value"), 21.0);
    assert_eq!(within("get", client.get_mode()).await.expect("a value"), Mode::Heat);
    let mut watch = within("watch", client.watch_setpoint()).await.expect("a watch");
    assert_eq!(within("first value", watch.next()).await.expect("open").expect("decoded"), 21.0);
    within("set", client.set_setpoint(23.5)).await.expect("accepted");
    assert_eq!(within("a change", watch.next()).await.expect("open").expect("decoded"), 23.5);
    assert_eq!(server.setpoint(), 23.5, "the update reached the service on side A");
    let too_hot = within("set", client.set_setpoint(40.0)).await.expect_err("refused");
    assert!(matches!(&too_hot, CallError::Remote(e) if e.message() == "too hot"), "{too_hot:?}");
    within("set on A", server.set_setpoint(19.0)).await.expect("set");
    assert_eq!(within("a change", watch.next()).await.expect("open").expect("decoded"), 19.0);
    within("set after A's change", client.set_setpoint(20.0)).await.expect("accepted");
    assert_eq!(within("a change", watch.next()).await.expect("open").expect("decoded"), 20.0);
    let mut direct_watch = within("watch", direct.watch_setpoint()).await.expect("a watch");
    assert_eq!(within("value", direct_watch.next()).await.expect("open").expect("decoded"), 20.0);
    assert_eq!(watch.version(), direct_watch.version(), "B counts versions as A does");
    let raw = switchboard_core::client::ClientCore::connect(
        &on_b,
        &switchboard_tests::thermostat::INTERFACE,
        switchboard::client::ClientOptions::default(),
    );
    let raw = within("connect", raw).await.expect("connected");
    let read_only = raw.set_property_raw("mode", bytes::Bytes::from_static(b"{\"mode\":0}"));
    let read_only = within("set a read-only property", read_only).await.expect_err("refused");
    let read_only = read_only.as_remote().cloned().expect("the server's error");
    assert_eq!(read_only.name(), switchboard::error::names::READ_ONLY, "{read_only}");
    assert_eq!(server.mode(), Mode::Heat);

    // A signal emitted on A reaches the subscriber on B.
    let readings = within("subscribe", client.subscribe_temperature_changed()).await;
    let mut readings = readings.expect("subscribed");
    let reading = eventually("a signal across the bridge", async || {
        server.emit_temperature_changed(17.25, expected).await.expect("emitted");
        match tokio::time::timeout(Duration::from_millis(100), readings.next()).await {
            Ok(Some(Ok(reading))) => Some(reading),
            _ => None,
        }
    })
    .await;
    assert_eq!((reading.celsius, reading.measured_at), (17.25, expected));

    // An action: feedback in order and the result; a declared error, typed; a cancel.
    let mut goal = within("preheat", client.preheat(22.0)).await.expect("accepted");
    let mut percents = Vec::new();
    while let Some(feedback) = within("feedback", goal.next_feedback()).await {
        assert_eq!(feedback.celsius, 22.0);
        percents.push(feedback.percent);
    }
    assert_eq!(percents, [25, 50, 75, 100]);
    assert_eq!(within("result", goal.result()).await.expect("a result"), 22.0);
    let out_of_range = within("preheat", client.preheat(99.0)).await.expect_err("rejected");
    match out_of_range {
        MethodError::Declared(PreheatError::OutOfRange(error)) => {
            assert_eq!((error.requested_celsius, error.max_celsius), (99.0, 30.0));
        }
        other => panic!("not the declared error: {other:?}"),
    }
    let mut slow = within("preheat", client.preheat(28.0)).await.expect("accepted");
    within("first feedback", slow.next_feedback()).await.expect("feedback");
    within("cancel", slow.cancel()).await.expect("cancel sent");
    let cancelled = within("result", slow.result()).await;
    assert!(matches!(cancelled, Err(GoalError::Cancelled)), "{cancelled:?}");

    let counts = bridge.counts();
    assert!(counts[0].forwarded >= 10, "{counts:?}");
    assert_eq!(counts[0].failed, 0, "{counts:?}");
    bridge.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Pairs.

mod unix_mqtt {
    use switchboard::Endpoint;
    use switchboard_testkit::{SocketDir, broker::shared_mosquitto};

    fn pair() -> Option<(Endpoint, Endpoint, SocketDir)> {
        let mqtt = Endpoint::parse(&shared_mosquitto()?.url).expect("a URL");
        let dir = SocketDir::new();
        Some((dir.endpoint("node"), mqtt, dir))
    }

    bridge_tests!("bridge_unix_mqtt", pair();
        topic_routes_carry_messages_in_order,
        rpc_routes_forward_calls,
        interface_routes_expose_a_service,
    );
}

mod unix_nats {
    use switchboard::Endpoint;
    use switchboard_testkit::{SocketDir, broker::shared_nats};

    fn pair() -> Option<(Endpoint, Endpoint, SocketDir)> {
        let nats = Endpoint::parse(&shared_nats()?.url).expect("a URL");
        let dir = SocketDir::new();
        Some((dir.endpoint("node"), nats, dir))
    }

    bridge_tests!("bridge_unix_nats", pair(); interface_routes_expose_a_service);
}

mod unix_redis {
    use switchboard::Endpoint;
    use switchboard_testkit::{SocketDir, broker::shared_redis};

    fn pair() -> Option<(Endpoint, Endpoint, SocketDir)> {
        let redis = Endpoint::parse(&shared_redis()?.url).expect("a URL");
        let dir = SocketDir::new();
        Some((dir.endpoint("node"), redis, dir))
    }

    bridge_tests!("bridge_unix_redis", pair(); interface_routes_expose_a_service);
}

mod unix_amqp {
    use switchboard::Endpoint;
    use switchboard_testkit::{SocketDir, broker::shared_rabbitmq};

    fn pair() -> Option<(Endpoint, Endpoint, SocketDir)> {
        let amqp = Endpoint::parse(&shared_rabbitmq()?.url).expect("a URL");
        let dir = SocketDir::new();
        Some((dir.endpoint("node"), amqp, dir))
    }

    bridge_tests!("bridge_unix_amqp", pair(); interface_routes_expose_a_service);
}

mod redis_nats {
    use switchboard::Endpoint;
    use switchboard_testkit::broker::{shared_nats, shared_redis};

    fn pair() -> Option<(Endpoint, Endpoint, ())> {
        let redis = Endpoint::parse(&shared_redis()?.url).expect("a URL");
        let nats = Endpoint::parse(&shared_nats()?.url).expect("a URL");
        Some((redis, nats, ()))
    }

    bridge_tests!("bridge_redis_nats", pair();
        topic_routes_carry_messages_in_order,
        rpc_routes_forward_calls,
        pattern_routes_rename_each_topic,
        routes_both_ways_do_not_loop,
    );
}

mod amqp_mqtt {
    use switchboard::Endpoint;
    use switchboard_testkit::broker::{shared_mosquitto, shared_rabbitmq};

    fn pair() -> Option<(Endpoint, Endpoint, ())> {
        let amqp = Endpoint::parse(&shared_rabbitmq()?.url).expect("a URL");
        let mqtt = Endpoint::parse(&shared_mosquitto()?.url).expect("a URL");
        Some((amqp, mqtt, ()))
    }

    bridge_tests!("bridge_amqp_mqtt", pair();
        topic_routes_carry_messages_in_order,
        rpc_routes_forward_calls,
        pattern_routes_rename_each_topic,
        routes_both_ways_do_not_loop,
    );
}

// ---------------------------------------------------------------------------------------------
// Faults.

/// A side that cannot be reached at start is a clear error naming the side and its URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_side_is_a_clear_error() {
    let Some(redis) = switchboard_testkit::broker::shared_redis() else { return };
    let a = Endpoint::parse(&redis.url).expect("a URL");
    let b = Endpoint::parse("redis://127.0.0.1:1").expect("a URL");
    let routes = vec![Route::topic(Side::A, "bridge_fault.in", "bridge_fault.out")];
    let started = within("a bridge", Bridge::start(a, b, routes, BridgeOptions::default())).await;
    let error = started.expect_err("side b is unreachable");
    assert!(matches!(error, BridgeError::Unreachable { side: Side::B, .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("side b (redis://127.0.0.1:1)"), "{message}");
    assert!(message.contains("is unreachable: ") && message.contains("refused"), "{message}");
}

/// Side B's broker dies under traffic and comes back empty: messages and calls in the outage
/// fail and are counted, each message exactly once, and both flow again afterwards with
/// nothing restarted by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_side_restarting_is_survived() {
    switchboard_testkit::init_tracing();
    let Some(mqtt) = switchboard_testkit::broker::shared_mosquitto() else { return };
    let Some(mut redis) = switchboard_testkit::broker::PrivateRedis::start() else { return };
    let prefix = crate::node::prefix("bridge_restart");
    let a = Endpoint::parse(&mqtt.url).expect("a URL");
    let b = Endpoint::parse(&redis.url()).expect("a URL");
    let (node_a, node_b) = nodes(&a, &b);
    let (topic, add) = (format!("{prefix}.sensor"), format!("{prefix}.add"));
    let _service = node_b
        .rpc_service(&add, |request: Value| async move {
            Ok::<_, RemoteError>(json!({"c": request["a"]}))
        })
        .await
        .expect("served");
    let routes = vec![Route::topic(Side::A, &topic, &topic), Route::rpc(Side::A, &add, &add)];
    let options = BridgeOptions::default().forward_timeout(Duration::from_secs(1));
    let bridge = within("a bridge", Bridge::start(a, b, routes, options)).await.expect("started");
    let publisher = node_a.publisher::<Reading>(&topic).await.expect("a publisher");
    let mut on_b = node_b.subscriber::<Reading>(&topic).await.expect("a subscriber");
    let client = node_a.rpc_client::<Value, Value>(&add).await.expect("a client");
    let client = client.with_timeout(Duration::from_secs(3));
    // Every message published on A's topic, each of which the route counts once: forwarded or
    // dropped.
    let mut published = settle(&publisher, &mut on_b).await;
    assert_eq!(
        within("a call", client.call(&json!({"a": 1}))).await.expect("an answer"),
        json!({"c": 1})
    );

    redis.stop();
    let error =
        eventually("a failing bridged call", async || client.call(&json!({"a": 2})).await.err())
            .await;
    let CallError::Remote(error) = error else { panic!("the bridge answers: {error:?}") };
    assert!(error.message().starts_with("bridge: "), "{error}");
    eventually("a dropped message", async || {
        publisher.publish(&Reading { seq: 1 }).await.expect("published on a");
        published += 1;
        (bridge.counts()[0].dropped > 0).then_some(())
    })
    .await;

    redis.restart();
    let answer =
        eventually("a call after the outage", async || client.call(&json!({"a": 3})).await.ok())
            .await;
    assert_eq!(answer, json!({"c": 3}));
    let reading = eventually("a message after the outage", async || {
        publisher.publish(&Reading { seq: 7 }).await.expect("published on a");
        published += 1;
        match tokio::time::timeout(Duration::from_millis(100), on_b.next()).await {
            Ok(Some(Ok(reading))) if reading.seq == 7 => Some(reading),
            _ => None,
        }
    })
    .await;
    assert_eq!(reading.seq, 7);
    let counts = eventually("every message counted", async || {
        let counts = bridge.counts();
        (counts[0].forwarded + counts[0].dropped >= published).then_some(counts)
    })
    .await;
    let topic_counts = &counts[0];
    assert_eq!(topic_counts.forwarded + topic_counts.dropped, published, "{counts:?}");
    assert!(topic_counts.dropped > 0 && topic_counts.forwarded > 0, "{counts:?}");
    assert_eq!(topic_counts.looped, 0, "{counts:?}");
    assert!(counts[1].failed > 0, "{counts:?}");
}

/// The service behind an interface route stops and comes back: calls in the outage fail at
/// once with the bridge's error naming the side, and afterwards the same client on B reaches
/// the new service, whose property values (counted afresh) B mirrors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interface_holder_restarting_is_survived() {
    switchboard_testkit::init_tracing();
    let Some(mqtt) = switchboard_testkit::broker::shared_mosquitto() else { return };
    let dir = switchboard_testkit::SocketDir::new();
    let prefix = crate::node::prefix("bridge_interface_restart").replace('.', "_");
    let (a, b) = (dir.endpoint("node"), Endpoint::parse(&mqtt.url).expect("a URL"));
    let at = |side: &Endpoint| side.clone().with_instance(&prefix).expect("an instance");
    let (on_a, on_b) = (at(&a), at(&b));
    let server = serve_zone(&on_a, 21.0).await;
    let routes = vec![Route::interface(Side::B, "Thermostat", &prefix)];
    let options = BridgeOptions::default().forward_timeout(Duration::from_secs(2));
    let bridge = within("a bridge", Bridge::start(a, b, routes, options)).await.expect("started");
    let client = within("connect", ThermostatClient::connect(&on_b)).await.expect("connected");
    within("getStatus", client.get_status()).await.expect("an answer");

    server.shutdown().await;
    drop(server);
    let started = Instant::now();
    let error = within("a call in the outage", client.get_status()).await.expect_err("fails");
    assert!(started.elapsed() < Duration::from_secs(2), "the failure took {:?}", started.elapsed());
    let error = error.as_remote().cloned().expect("the bridge's error");
    assert_eq!(error.code(), ErrorCode::ServiceUnavailable, "{error}");
    assert!(error.message().starts_with("bridge: side a ("), "{error}");

    let _server = serve_zone(&on_a, 25.0).await;
    eventually("a call after the restart", async || client.get_status().await.ok()).await;
    let setpoint = eventually("the new service's value", async || {
        client.get_setpoint().await.ok().filter(|celsius| *celsius == 25.0)
    })
    .await;
    assert_eq!(setpoint, 25.0);
    within("set after the restart", client.set_setpoint(26.0)).await.expect("accepted");
    assert_eq!(within("get", client.get_setpoint()).await.expect("a value"), 26.0);
    // The new service counts versions afresh (its first value, then the update), and B with it.
    let mut on_b = within("watch", client.watch_setpoint()).await.expect("a watch");
    assert_eq!(within("value", on_b.next()).await.expect("open").expect("decoded"), 26.0);
    let direct = within("connect", ThermostatClient::connect(&on_a)).await.expect("connected");
    let mut held = within("watch", direct.watch_setpoint()).await.expect("a watch");
    assert_eq!(within("value", held.next()).await.expect("open").expect("decoded"), 26.0);
    assert_eq!((held.version(), on_b.version()), (Some(2), Some(2)));
    assert!(bridge.counts()[0].failed > 0, "{:?}", bridge.counts());
}

/// With `wait`, a bridge starts while a side is down and carries messages once it is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_bridge_starts_before_its_side() {
    switchboard_testkit::init_tracing();
    let Some(nats) = switchboard_testkit::broker::shared_nats() else { return };
    let Some(mut redis) = switchboard_testkit::broker::PrivateRedis::start() else { return };
    redis.stop();
    let prefix = crate::node::prefix("bridge_wait");
    let a = Endpoint::parse(&nats.url).expect("a URL");
    let b = Endpoint::parse(&redis.url()).expect("a URL");
    let topic = format!("{prefix}.sensor");
    let routes = vec![Route::topic(Side::B, &topic, &topic)];
    let options = BridgeOptions::default().wait(true);
    let bridge = within("a bridge", Bridge::start(a.clone(), b.clone(), routes, options)).await;
    let _bridge = bridge.expect("a waiting bridge starts");
    redis.restart();
    let (node_a, node_b) = nodes(&a, &b);
    let mut on_a = node_a.subscriber::<Reading>(&topic).await.expect("a subscriber");
    let publisher = node_b.publisher::<Reading>(&topic).await.expect("a publisher");
    let reading = eventually("a message once side b is up", async || {
        publisher.publish(&Reading { seq: 5 }).await.expect("published on b");
        match tokio::time::timeout(Duration::from_millis(100), on_a.next()).await {
            Ok(Some(Ok(reading))) => Some(reading),
            _ => None,
        }
    })
    .await;
    assert_eq!(reading.seq, 5);
}
