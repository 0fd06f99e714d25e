//! Transport-independent bodies for nodes, the API without codegen (`switchboard::node`): each
//! takes a node and a prefix that keeps its names apart from other tests on a shared broker.
//! `unix`, `memory`, `nats` and `redis` instantiate them with [`node_tests!`]; the pattern
//! subscriber's bodies need a broker and run on those that have one.

use std::time::Duration;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use switchboard::{
    error::{CallError, ErrorCode, RemoteError, names},
    node::{Node, Publisher, Received, Subscriber},
};

use crate::suite::within;

/// Instantiates every body that runs on any transport; `$make` is an expression of type
/// `Option<(Node, String, G)>`: the node, the prefix of its names, and what must live as long
/// as the test (a socket directory); `None` skips the test (no broker outside CI).
macro_rules! node_tests {
    ($make:expr) => {
        crate::node::node_tests!(@each $make;
            rpc_typed_and_raw,
            many_calls_in_flight,
            a_timeout_is_an_error,
            a_failing_handler_sends_its_error,
            a_request_that_does_not_decode_is_refused,
            publish_and_subscribe,
            heartbeats_and_control,
            events_carry_their_name,
            actions_run_goals_with_feedback_cancel_and_result,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            switchboard_testkit::init_tracing();
            let Some((node, prefix, _guard)) = $make else { return };
            crate::node::$name(node, prefix).await;
        }
    )*};
}
pub(crate) use node_tests;

/// Instantiates the bodies that need a broker (pattern subscriptions).
macro_rules! brokered_node_tests {
    ($make:expr) => {
        crate::node::node_tests!(@each $make;
            pattern_subscriber_reports_each_topic,
            multi_publisher_reaches_every_topic,
        );
    };
}
pub(crate) use brokered_node_tests;

/// A unique prefix for one test's names.
pub(crate) fn prefix(tag: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("t{}_{n}.{tag}", std::process::id())
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Reading {
    seq: u64,
    value: f64,
}

async fn serve_adder(node: &Node, rpc: &str) -> switchboard::node::RpcService {
    let service = node.rpc_service(rpc, |request: AddTwoInts| async move {
        Ok::<_, RemoteError>(Sum { c: request.a + request.b })
    });
    within("serving an RPC", service).await.expect("the RPC is served")
}

/// A typed client and a raw one (`serde_json::Value`) call the same typed service.
pub(crate) async fn rpc_typed_and_raw(node: Node, prefix: String) {
    let rpc = format!("{prefix}.add_two_ints");
    let _service = serve_adder(&node, &rpc).await;
    let typed = node.rpc_client::<AddTwoInts, Sum>(&rpc).await.expect("a typed client");
    let sum = within("a typed call", typed.call(&AddTwoInts { a: 2, b: 40 })).await;
    assert_eq!(sum.expect("the sum"), Sum { c: 42 });

    let raw = node.rpc_client::<Value, Value>(&rpc).await.expect("a raw client");
    let sum = within("a raw call", raw.call(&json!({"a": -5, "b": 3, "extra": true}))).await;
    assert_eq!(sum.expect("the sum"), json!({"c": -2}));
}

/// Many calls from one client are in flight at once, and each gets its own answer.
pub(crate) async fn many_calls_in_flight(node: Node, prefix: String) {
    let rpc = format!("{prefix}.slow_double");
    let service = node.rpc_service(&rpc, |request: Value| async move {
        let n = request["n"].as_i64().unwrap_or_default();
        // Later requests answer first, so answers come back out of order.
        tokio::time::sleep(Duration::from_millis(200 - 4 * n as u64)).await;
        Ok::<_, RemoteError>(json!({"double": 2 * n}))
    });
    let _service = within("serving", service).await.expect("served");
    let client = node.rpc_client::<Value, Value>(&rpc).await.expect("a client");
    let calls = (0..40).map(|n| {
        let client = client.clone();
        async move { (n, client.call(&json!({"n": n})).await) }
    });
    let started = std::time::Instant::now();
    let answers = within("40 calls at once", futures_util::future::join_all(calls)).await;
    for (n, answer) in answers {
        assert_eq!(answer.expect("an answer"), json!({"double": 2 * n}), "call {n}");
    }
    // One at a time they would take 40 × 120 ms on average.
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

/// No answer in time is `CallError::Timeout`, never an empty value; the client goes on.
pub(crate) async fn a_timeout_is_an_error(node: Node, prefix: String) {
    let rpc = format!("{prefix}.sleepy");
    let service = node.rpc_service(&rpc, |request: Value| async move {
        let ms = request["ms"].as_u64().unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, RemoteError>(json!({"slept": ms}))
    });
    let _service = within("serving", service).await.expect("served");
    let client = node.rpc_client::<Value, Value>(&rpc).await.expect("a client");
    let client = client.with_timeout(Duration::from_millis(300));
    let late = within("a late call", client.call(&json!({"ms": 1000}))).await;
    assert!(
        matches!(late, Err(CallError::Timeout(timeout)) if timeout == Duration::from_millis(300)),
        "{late:?}"
    );
    // The same client, now with room for a loaded machine: the point is that it still answers.
    let client = client.with_timeout(Duration::from_secs(4));
    let prompt = within("a prompt call", client.call(&json!({"ms": 0}))).await;
    assert_eq!(prompt.expect("an answer"), json!({"slept": 0}));
}

/// A handler's error reaches the caller with its code, name and message.
pub(crate) async fn a_failing_handler_sends_its_error(node: Node, prefix: String) {
    let rpc = format!("{prefix}.picky");
    let service = node.rpc_service(&rpc, |request: AddTwoInts| async move {
        if request.a < 0 {
            return Err(RemoteError::new(
                ErrorCode::ClientError,
                "NegativeOperand",
                format!("a is {}", request.a),
            ));
        }
        if request.b < 0 {
            panic!("b is negative");
        }
        Ok(Sum { c: request.a + request.b })
    });
    let _service = within("serving", service).await.expect("served");
    let client = node.rpc_client::<AddTwoInts, Sum>(&rpc).await.expect("a client");
    let refused = within("a refused call", client.call(&AddTwoInts { a: -1, b: 1 })).await;
    let error = refused.expect_err("the handler refused").as_remote().cloned().expect("remote");
    assert_eq!(
        (error.code(), error.name(), error.message()),
        (ErrorCode::ClientError, "NegativeOperand", "a is -1")
    );

    let panicked =
        within("a call whose handler panics", client.call(&AddTwoInts { a: 1, b: -1 })).await;
    let error = panicked.expect_err("the handler panicked").as_remote().cloned().expect("remote");
    assert_eq!(error.name(), names::INTERNAL);
    let fine = within("a fine call", client.call(&AddTwoInts { a: 1, b: 1 })).await;
    assert_eq!(fine.expect("the service survived"), Sum { c: 2 });
}

/// A request that is not what the service takes is answered with `InvalidArguments`.
pub(crate) async fn a_request_that_does_not_decode_is_refused(node: Node, prefix: String) {
    let rpc = format!("{prefix}.add");
    let _service = serve_adder(&node, &rpc).await;
    let client = node.rpc_client::<Value, Value>(&rpc).await.expect("a client");
    let wrong = within("a wrong call", client.call(&json!({"a": "two", "b": 1}))).await;
    let error = wrong.expect_err("refused").as_remote().cloned().expect("remote");
    assert_eq!(error.name(), names::INVALID_ARGUMENTS);
    assert!(error.message().contains('a'), "{error}");
}

/// Publishes a probe (`seq` 0) until `subscriber` sees one, so the subscription is in force on
/// every transport (over a Unix socket a subscription takes effect a moment after it is sent).
async fn settle<P: Serialize, S: DeserializeOwned>(
    publisher: &Publisher<P>,
    probe: &P,
    subscriber: &mut Subscriber<S>,
) {
    for _ in 0..100 {
        publisher.publish(probe).await.expect("a probe is published");
        if let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(50), subscriber.next()).await
        {
            return;
        }
    }
    panic!("the subscription never saw a probe");
}

/// A typed and a raw subscriber receive every message of a topic, in order, and nothing of a
/// topic next to it.
pub(crate) async fn publish_and_subscribe(node: Node, prefix: String) {
    let topic = format!("{prefix}.sensors.front");
    let publisher = within("a publisher", node.publisher::<Reading>(&topic)).await.expect("pub");
    let other = format!("{prefix}.sensors.back");
    let neighbour = within("a publisher", node.publisher::<Reading>(&other)).await.expect("pub");
    let mut typed = node.subscriber::<Reading>(&topic).await.expect("a typed subscriber");
    let mut raw = node.subscriber::<Value>(&topic).await.expect("a raw subscriber");
    let probe = Reading { seq: 0, value: 0.0 };
    settle(&publisher, &probe, &mut typed).await;
    settle(&publisher, &probe, &mut raw).await;

    for seq in 1..=20 {
        neighbour.publish(&Reading { seq: 1000 + seq, value: 0.0 }).await.expect("published");
        publisher.publish(&Reading { seq, value: seq as f64 / 2.0 }).await.expect("published");
    }
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let reading = within("a reading", typed.next()).await.expect("open").expect("a reading");
        if reading.seq != 0 {
            seen.push(reading);
        }
    }
    let expected: Vec<Reading> =
        (1..=20).map(|seq| Reading { seq, value: seq as f64 / 2.0 }).collect();
    assert_eq!(seen, expected);
    let mut raw_seen = Vec::new();
    while raw_seen.len() < 20 {
        let message = within("a message", raw.next()).await.expect("open").expect("JSON");
        if message["seq"] != 0 {
            raw_seen.push(message["seq"].as_u64().expect("seq"));
        }
    }
    assert_eq!(raw_seen, (1..=20).collect::<Vec<_>>());
}

/// A pattern subscriber receives the messages of every matching topic, each with its topic;
/// a last `*` matches the rest of the name, an inner one a single segment.
pub(crate) async fn pattern_subscriber_reports_each_topic(node: Node, prefix: String) {
    let mut everything = node
        .pattern_subscriber::<Reading>(&format!("{prefix}.sensors.*"))
        .await
        .expect("a pattern subscriber");
    let mut temperatures = node
        .pattern_subscriber::<Value>(&format!("{prefix}.sensors.*.temp"))
        .await
        .expect("another");
    let topics = ["front.temp", "back.temp", "front.temp.raw", "front"];
    let mut publishers = Vec::new();
    for topic in topics {
        let topic = format!("{prefix}.sensors.{topic}");
        publishers.push(node.publisher::<Reading>(&topic).await.expect("a publisher"));
    }
    let elsewhere =
        node.publisher::<Reading>(&format!("{prefix}.actuators.front")).await.expect("pub");
    for (seq, publisher) in publishers.iter().enumerate() {
        elsewhere.publish(&Reading { seq: 99, value: 0.0 }).await.expect("published");
        publisher.publish(&Reading { seq: seq as u64, value: 1.0 }).await.expect("published");
    }
    let mut seen = Vec::new();
    for _ in topics {
        let Received { topic, message, .. } =
            within("a message", everything.next()).await.expect("open").expect("a reading");
        seen.push((topic, message.seq));
    }
    // Each topic has a publisher (a connection) of its own, so only each one's order is kept.
    seen.sort();
    let mut expected: Vec<(String, u64)> = topics
        .iter()
        .enumerate()
        .map(|(seq, t)| (format!("{prefix}.sensors.{t}"), seq as u64))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
    let mut temps = Vec::new();
    for _ in 0..2 {
        let received =
            within("a temperature", temperatures.next()).await.expect("open").expect("JSON");
        temps.push(received.topic);
    }
    temps.sort();
    assert_eq!(
        temps,
        [format!("{prefix}.sensors.back.temp"), format!("{prefix}.sensors.front.temp")]
    );
    let nothing_more = tokio::time::timeout(Duration::from_millis(200), temperatures.next()).await;
    assert!(nothing_more.is_err(), "only two topics match: {nothing_more:?}");
}

/// A multi-publisher reaches the subscribers of each topic it names.
pub(crate) async fn multi_publisher_reaches_every_topic(node: Node, prefix: String) {
    let mut all =
        node.pattern_subscriber::<Value>(&format!("{prefix}.events.*")).await.expect("sub");
    let publisher = node.multi_publisher::<Value>();
    for (n, topic) in ["a", "b", "a", "c"].iter().enumerate() {
        let topic = format!("{prefix}.events.{topic}");
        within("publishing", publisher.publish(&topic, &json!({"n": n}))).await.expect("published");
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        let received = within("an event", all.next()).await.expect("open").expect("JSON");
        seen.push((received.topic, received.message["n"].as_u64().expect("n")));
    }
    // Each topic has a publisher (a connection) of its own, so only each one's order is kept.
    seen.sort();
    let mut expected: Vec<(String, u64)> = ["a", "b", "a", "c"]
        .iter()
        .enumerate()
        .map(|(n, t)| (format!("{prefix}.events.{t}"), n as u64))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}

/// A running node says it is alive on `<name>.heartbeat` (commlib-py's `{"ts": ns}`), and its
/// control RPCs answer as commlib-py's do; its `stop` stops the heartbeats and `start` resumes
/// them.
pub(crate) async fn heartbeats_and_control(node: Node, prefix: String) {
    use switchboard::node::{CANNOT_TRANSITION, ControlReply, Heartbeat, NodeState};
    let name = format!("{prefix}.robot");
    let robot =
        Node::with_options(&name, node.endpoint().clone(), Duration::from_millis(100), true);
    assert_eq!(robot.state().await, NodeState::Idle);
    within("running the node", robot.run()).await.expect("it runs");
    assert_eq!(robot.state().await, NodeState::Running);
    assert_eq!(robot.heartbeat_topic(), format!("{name}.heartbeat"));
    let mut heartbeats = node.subscriber::<Heartbeat>(&robot.heartbeat_topic()).await.expect("sub");
    let now = || {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        u64::try_from(since.as_nanos()).unwrap()
    };
    let first = within("a heartbeat", heartbeats.next()).await.expect("open").expect("one");
    let second = within("a heartbeat", heartbeats.next()).await.expect("open").expect("one");
    assert!(second.ts > first.ts && now() - second.ts < 2_000_000_000, "{first:?} {second:?}");

    let start = node.rpc_client::<Value, ControlReply>(&format!("{name}.start")).await.expect("c");
    let stop = node.rpc_client::<Value, ControlReply>(&format!("{name}.stop")).await.expect("c");
    let refused = within("start while running", start.call(&json!({}))).await.expect("answer");
    assert_eq!((refused.status, refused.error.as_str()), (1, CANNOT_TRANSITION));
    let stopped = within("stop", stop.call(&json!({}))).await.expect("answer");
    assert_eq!((stopped.status, stopped.error.as_str()), (0, ""));
    assert_eq!(robot.state().await, NodeState::Stopped);
    // What was on its way is read; then nothing comes.
    while tokio::time::timeout(Duration::from_millis(300), heartbeats.next()).await.is_ok() {}
    let silent = tokio::time::timeout(Duration::from_millis(400), heartbeats.next()).await;
    assert!(silent.is_err(), "a stopped node sends no heartbeat: {silent:?}");
    let started = within("start", start.call(&json!({}))).await.expect("answer");
    assert_eq!((started.status, started.error.as_str()), (0, ""));
    let again = within("a heartbeat", heartbeats.next()).await.expect("open").expect("one");
    assert!(again.ts > second.ts, "{again:?}");
    robot.stop().await;
    assert_eq!(robot.state().await, NodeState::Stopped);
}

/// Events are fire-and-forget messages with a name, received with their topic as `uri`.
pub(crate) async fn events_carry_their_name(node: Node, prefix: String) {
    use switchboard::node::Event;
    let topic = format!("{prefix}.events.door");
    let emitter = node.event_emitter::<Value>();
    // The emitter's publisher for the topic is made by its first event.
    within("an event", emitter.emit(&topic, Event::new("warmup", json!({})))).await.expect("sent");
    let mut events = node.subscriber::<Event<Value>>(&topic).await.expect("a subscriber");
    let mut received = None;
    for _ in 0..100 {
        let event = Event::new("opened", json!({"by": "alice"})).with_description("front door");
        emitter.emit(&topic, event).await.expect("emitted");
        if let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(50), events.next()).await
        {
            received = Some(event.expect("an event"));
            break;
        }
    }
    let expected = Event::new("opened", json!({"by": "alice"})).with_description("front door");
    let mut expected = expected;
    expected.uri = topic.clone();
    assert_eq!(received, Some(expected));
}

/// An action runs several goals at once, each with every feedback (the first included), its
/// result, and cancel.
pub(crate) async fn actions_run_goals_with_feedback_cancel_and_result(node: Node, prefix: String) {
    use switchboard::{
        action::{GoalContext, GoalError, GoalStatus},
        error::HandlerError,
    };
    let action = format!("{prefix}.move");
    let service = node.action_service(&action, |goal: Value, ctx: GoalContext<Value>| async move {
        let steps = goal["steps"].as_u64().unwrap_or_default();
        for step in 0..steps {
            // The first feedback goes out at once, before the goal's acceptance arrives.
            ctx.feedback(json!({"step": step})).await;
            tokio::select! {
                () = ctx.cancelled() => return Err(HandlerError::Cancelled),
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        Ok(json!({"done": steps}))
    });
    let _service = within("serving an action", service).await.expect("served");
    let client = node.action_client::<Value, Value, Value>(&action).await.expect("a client");

    let goals = (1..=3u64).map(|steps| {
        let client = client.clone();
        async move {
            let mut goal = client.send_goal(&json!({"steps": steps})).await.expect("accepted");
            let mut feedback = Vec::new();
            while let Some(step) = goal.next_feedback().await {
                feedback.push(step["step"].as_u64().expect("a step"));
            }
            (steps, feedback, goal.result().await.ok(), goal.status())
        }
    });
    for (steps, feedback, result, status) in
        within("three goals at once", futures_util::future::join_all(goals)).await
    {
        assert_eq!(feedback, (0..steps).collect::<Vec<_>>(), "every feedback of goal {steps}");
        assert_eq!(result, Some(json!({"done": steps})));
        assert_eq!(status, GoalStatus::Succeeded);
    }

    let mut long =
        within("a long goal", client.send_goal(&json!({"steps": 1000}))).await.expect("accepted");
    within("its first feedback", long.next_feedback()).await.expect("feedback");
    within("cancelling", long.cancel()).await.expect("cancel is taken");
    let result = within("its end", long.result()).await;
    assert!(matches!(result, Err(GoalError::Cancelled)), "{result:?}");
    assert_eq!(long.status(), GoalStatus::Cancelled);
}

/// The broker dies and comes back empty: a node's RPC service, client, publisher and subscriber
/// reconnect and subscribe again by themselves; calls during the outage fail with a transport
/// error, and calls and messages after it arrive.
pub(crate) async fn a_broker_restart_is_survived(
    node: Node,
    broker: &mut dyn crate::brokered::Outage,
) {
    use crate::brokered::eventually;
    let rpc = "restart.add_two_ints";
    let _service = serve_adder(&node, rpc).await;
    let client = node.rpc_client::<AddTwoInts, Sum>(rpc).await.expect("a client");
    let client = client.with_timeout(Duration::from_secs(2));
    let sum = within("a call", client.call(&AddTwoInts { a: 1, b: 2 })).await;
    assert_eq!(sum.expect("before the outage"), Sum { c: 3 });
    let publisher = node.publisher::<Reading>("restart.sensor").await.expect("a publisher");
    let mut subscriber = node.subscriber::<Reading>("restart.sensor").await.expect("a subscriber");
    settle(&publisher, &Reading { seq: 0, value: 0.0 }, &mut subscriber).await;

    broker.stop();
    let error = eventually("a failing call", async || {
        within("a call in the outage", client.call(&AddTwoInts { a: 1, b: 2 })).await.err()
    })
    .await;
    assert!(matches!(error, CallError::Transport(_)), "{error:?}");

    broker.start();
    let sum = eventually("a call after the outage", async || {
        client.call(&AddTwoInts { a: 2, b: 2 }).await.ok()
    })
    .await;
    assert_eq!(sum, Sum { c: 4 });
    let reading = eventually("a message after the outage", async || {
        let _ = publisher.publish(&Reading { seq: 7, value: 1.0 }).await;
        match tokio::time::timeout(Duration::from_millis(100), subscriber.next()).await {
            Ok(Some(Ok(reading))) if reading.seq == 7 => Some(reading),
            _ => None,
        }
    })
    .await;
    assert_eq!(reading, Reading { seq: 7, value: 1.0 });
}

/// Two services of one RPC share its requests (on brokers with work queues: Redis, AMQP,
/// NATS), where commlib-py's AMQP service refuses a second instance.
pub(crate) async fn services_share_their_requests(node: Node, prefix: String) {
    let rpc = format!("{prefix}.shared");
    let serve = |name: &'static str| {
        node.rpc_service(&rpc, move |_: Value| async move {
            Ok::<_, RemoteError>(json!({"served_by": name}))
        })
    };
    let _first = within("a first service", serve("first")).await.expect("served");
    let _second = within("a second service", serve("second")).await.expect("served");
    let client = node.rpc_client::<Value, Value>(&rpc).await.expect("a client");
    let mut served = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let answer = within("a call", client.call(&json!({}))).await.expect("an answer");
        served.insert(answer["served_by"].as_str().expect("a name").to_owned());
    }
    assert_eq!(served.into_iter().collect::<Vec<_>>(), ["first", "second"]);
}

/// With nothing listening where the node's broker should be, each kind of endpoint fails at
/// once with `Unreachable` (never `NotFound`, and never a silent retry): an RPC service and
/// client, a publisher, a subscriber, an action service and the node's own heartbeats.
/// `scheme` is the broker's plain URL scheme.
pub(crate) async fn no_broker_is_unreachable(scheme: &str) {
    use std::{convert::Infallible, time::Instant};
    use switchboard::{
        Endpoint,
        action::GoalContext,
        error::{HandlerError, TransportError, TransportErrorKind},
    };
    let closed = switchboard_testkit::broker::ClosedPort::new();
    let port = closed.port();
    let url = format!("{scheme}://127.0.0.1:{port}");
    let node = Node::new("nowhere", Endpoint::parse(&url).expect("a URL"));
    let check = |what: &str, error: TransportError, started: Instant| {
        assert_eq!(error.kind(), TransportErrorKind::Unreachable, "{url}: {what}: {error}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{url}: {what} took {took:?}");
    };
    let started = Instant::now();
    let error = within("an RPC service", node.rpc_service("n.rpc", |r: Value| async { Ok(r) }))
        .await
        .expect_err("no broker");
    check("an RPC service", error, started);
    let started = Instant::now();
    let error = within("an RPC client", node.rpc_client::<Value, Value>("n.rpc"))
        .await
        .expect_err("no broker");
    check("an RPC client", error, started);
    let started = Instant::now();
    let error =
        within("a publisher", node.publisher::<Value>("n.topic")).await.expect_err("no broker");
    check("a publisher", error, started);
    let started = Instant::now();
    let error =
        within("a subscriber", node.subscriber::<Value>("n.topic")).await.expect_err("no broker");
    check("a subscriber", error, started);
    let started = Instant::now();
    let action = node.action_service("n.act", |goal: Value, _context: GoalContext<Value>| async {
        Ok::<Value, HandlerError<Infallible>>(goal)
    });
    let error = within("an action service", action).await.expect_err("no broker");
    check("an action service", error, started);
    let started = Instant::now();
    let error = within("running the node", node.run()).await.expect_err("no broker");
    check("running the node", error, started);
}
