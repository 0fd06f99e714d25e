//! `switchboard node publish|subscribe|call` as a process, against Rust nodes in the test, on
//! the loopback MQTT, Redis, AMQP and NATS brokers: publishes reach a node's subscriber, a node's
//! publishes are printed with their concrete topics, and calls print the reply or exit with the
//! codes of docs/shell.md (3 for the handler's error, 5 for no answer, 6 for no broker, 2 for
//! bad input); and `node call` against a real commlib-py `RPCService`.

use std::{
    io::Read,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use switchboard::{
    Endpoint,
    error::{ErrorCode, RemoteError},
    node::Node,
};
use switchboard_testkit::broker::{shared_mosquitto, shared_nats, shared_rabbitmq, shared_redis};

/// Runs `switchboard ARGS` to its end (within 30 s, else the test fails).
fn run(args: &[&str]) -> Output {
    spawn(args).finish(Duration::from_secs(30))
}

/// A running `switchboard`, killed if a test fails half-way.
struct Running(Child);

impl Running {
    /// Waits (at most `limit`) for the end; the outputs are small enough for the pipes.
    fn finish(mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.0.try_wait().expect("waits") {
                break status;
            }
            assert!(Instant::now() < deadline, "did not end within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |pipe: Option<&mut dyn Read>| {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                pipe.read_to_end(&mut bytes).expect("read");
            }
            bytes
        };
        let stdout = read(self.0.stdout.as_mut().map(|p| p as &mut dyn Read));
        let stderr = read(self.0.stderr.as_mut().map(|p| p as &mut dyn Read));
        Output { status, stdout, stderr }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env_remove("SWITCHBOARD_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    Running(child)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A prefix no other run on the same brokers uses.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .subsec_nanos();
    format!("cli_node.{tag}_{}_{nanos}", std::process::id())
}

/// How `node call` fails when nobody serves the RPC: the exit code and the start of stderr.
/// MQTT, Redis and AMQP cannot tell, so the call times out (5); a NATS server answers at once
/// that nothing receives the request, which is "no such service" (4), as a missing Unix socket.
const NO_SERVICE_TIMES_OUT: (i32, &str) = (5, "timeout: ");

/// The three verbs against Rust nodes on `url`.
async fn verbs_reach_nodes(url: &str, tag: &str, no_service: (i32, &str)) {
    let prefix = unique(tag);
    let node = Node::new("cli_node_test", Endpoint::parse(url).expect("a URL"));

    // `node publish` → a node's subscriber. The subscription may take a moment to be in place
    // at the broker: publish until it arrives.
    let topic = format!("{prefix}.setpoint");
    let mut subscriber = node.subscriber::<Value>(&topic).await.expect("a subscriber");
    let mut received = None;
    for attempt in 0..20 {
        let message = json!({"celsius": 21.5, "attempt": attempt});
        let output = run(&["node", "publish", "--connect", url, &topic, &message.to_string()]);
        assert_eq!(output.status.code(), Some(0), "{url}: {}", text(&output.stderr));
        assert!(output.stdout.is_empty(), "{url}: publish prints nothing");
        if let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_millis(500), subscriber.next()).await
        {
            received = Some(message);
            break;
        }
    }
    let received = received.unwrap_or_else(|| panic!("{url}: nothing published arrived"));
    assert_eq!(received["celsius"], 21.5, "{url}: {received}");

    // A node's publisher → `node subscribe PATTERN`, which prints each message with its
    // concrete topic; a last `*` matches more than one segment, as in commlib-py on MQTT.
    let pattern = format!("{prefix}.sensors.*");
    let child = spawn(&[
        "node",
        "subscribe",
        "--connect",
        url,
        "--count",
        "2",
        "--timeout",
        "20s",
        &pattern,
    ]);
    let front = node.publisher::<Value>(&format!("{prefix}.sensors.front")).await.expect("pub");
    let left = node.publisher::<Value>(&format!("{prefix}.sensors.rear.left")).await.expect("pub");
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut n = 0;
    while child.0.try_wait().expect("waits").is_none() {
        assert!(Instant::now() < deadline, "{url}: `node subscribe --count 2` did not end");
        front.publish(&json!({"n": n})).await.expect("published");
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        left.publish(&json!({"left": true})).await.expect("published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = child.finish(Duration::from_secs(1));
    assert_eq!(output.status.code(), Some(0), "{url}: {}", text(&output.stderr));
    let lines: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2, "{url}: {lines:?}");
    // Once the subscription is in place, the two topics alternate: one line of each.
    let mut topics: Vec<&str> =
        lines.iter().map(|l| l["topic"].as_str().expect("a topic")).collect();
    topics.sort_unstable();
    assert_eq!(
        topics,
        [format!("{prefix}.sensors.front"), format!("{prefix}.sensors.rear.left")],
        "{url}: {lines:?}"
    );
    for line in &lines {
        if line["topic"].as_str().is_some_and(|t| t.ends_with(".front")) {
            assert!(line["message"]["n"].is_u64(), "{url}: {line}");
        } else {
            assert_eq!(line["message"], json!({"left": true}), "{url}: {line}");
        }
    }

    // `node call` against a node's RPC service: a reply, the handler's error, and a timeout
    // with nobody serving.
    let rpc = format!("{prefix}.divide");
    let _service = node
        .rpc_service(&rpc, |request: Value| async move {
            let (a, b) = (request["a"].as_i64().unwrap_or(0), request["b"].as_i64().unwrap_or(0));
            if b == 0 {
                return Err(RemoteError::new(
                    ErrorCode::ServerError,
                    "DivisionByZero",
                    format!("cannot divide {a} by zero"),
                ));
            }
            Ok(json!({"quotient": a / b}))
        })
        .await
        .expect("served");
    let mut output =
        run(&["node", "call", "--connect", url, "--timeout", "5s", &rpc, r#"{"a":84,"b":2}"#]);
    // A broker may take a moment to route to a service that just started.
    for _ in 0..10 {
        if output.status.code() != Some(5) {
            break;
        }
        output =
            run(&["node", "call", "--connect", url, "--timeout", "5s", &rpc, r#"{"a":84,"b":2}"#]);
    }
    assert_eq!(output.status.code(), Some(0), "{url}: {}", text(&output.stderr));
    let reply: Value = serde_json::from_slice(&output.stdout).expect("the reply is JSON");
    assert_eq!(reply, json!({"quotient": 42}), "{url}");

    let output =
        run(&["node", "call", "--connect", url, "--timeout", "5s", &rpc, r#"{"a":1,"b":0}"#]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{url}: {stderr}");
    assert!(stderr.contains("cannot divide 1 by zero"), "{url}: {stderr}");
    assert!(output.stdout.is_empty(), "{url}");

    let nobody = format!("{prefix}.nobody");
    let started = Instant::now();
    let output = run(&["node", "call", "--connect", url, "--timeout", "1s", &nobody, "{}"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(no_service.0), "{url}: {stderr}");
    assert!(stderr.starts_with(no_service.1), "{url}: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "{url}: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_verbs_over_mqtt() {
    let Some(broker) = shared_mosquitto() else { return };
    verbs_reach_nodes(&broker.url, "mqtt", NO_SERVICE_TIMES_OUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_verbs_over_redis() {
    let Some(broker) = shared_redis() else { return };
    verbs_reach_nodes(&broker.url, "redis", NO_SERVICE_TIMES_OUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_verbs_over_amqp() {
    let Some(broker) = shared_rabbitmq() else { return };
    verbs_reach_nodes(&broker.url, "amqp", NO_SERVICE_TIMES_OUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_verbs_over_nats() {
    let Some(broker) = shared_nats() else { return };
    verbs_reach_nodes(
        &broker.url,
        "nats",
        (4, "not found: nobody serves this RPC: the broker at nats://"),
    )
    .await;
}

/// `node call` against a real commlib-py 0.13.2 `RPCService` (tests/interop/commlib/peer.py,
/// `serve`) on `url`: the reply is printed as JSON, and a request its handler raises
/// `ValueError` for is answered `{}` on Redis (commlib-py's own answer) but never on MQTT,
/// where the call times out (5).
async fn node_call_reaches_a_commlib_service(url: &str, transport: &str, tag: &str) {
    let Some(peers) = switchboard_testkit::python::PythonPeers::commlib() else { return };
    let authority = url.split("://").nth(1).expect("a URL").rsplit('@').next().expect("host");
    let (host, port) = authority.split_once(':').expect("host:port");
    let rpc = format!("{}.add_two_ints", unique(tag));
    let mut peer = peers.spawn("peer.py", &["serve", transport, host, port, &rpc, "60"]);
    peer.wait_for("ready", Duration::from_secs(30)).await.expect("commlib-py serves");

    let output =
        run(&["node", "call", "--connect", url, "--timeout", "5s", &rpc, r#"{"a":2,"b":40}"#]);
    assert_eq!(output.status.code(), Some(0), "{url}: {}", text(&output.stderr));
    let reply: Value = serde_json::from_slice(&output.stdout).expect("the reply is JSON");
    assert_eq!(reply, json!({"c": 42}), "{url}");

    let output =
        run(&["node", "call", "--connect", url, "--timeout", "2s", &rpc, r#"{"raise":true}"#]);
    let stderr = text(&output.stderr);
    if transport == "mqtt" {
        assert_eq!(output.status.code(), Some(5), "{url}: {stderr}");
        assert!(stderr.starts_with("timeout: "), "{url}: {stderr}");
    } else {
        assert_eq!(output.status.code(), Some(0), "{url}: {stderr}");
        let reply: Value = serde_json::from_slice(&output.stdout).expect("the reply is JSON");
        assert_eq!(reply, json!({}), "{url}");
    }
    peer.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_call_reaches_a_commlib_service_over_redis() {
    let Some(broker) = shared_redis() else { return };
    node_call_reaches_a_commlib_service(&broker.url, "redis", "commlib_redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_call_reaches_a_commlib_service_over_mqtt() {
    let Some(broker) = shared_mosquitto() else { return };
    node_call_reaches_a_commlib_service(&broker.url, "mqtt", "commlib_mqtt").await;
}

/// Bad input is a usage error (2) with a clear message, before any connection is tried.
#[test]
fn bad_input_exits_2_saying_what_is_wrong() {
    let url = "mqtt://127.0.0.1:1";
    let cases: [(&[&str], &str); 7] = [
        (&["publish", "t.x", "{"], "the message is not valid JSON"),
        (&["publish", "t.x", "[1, 2]"], "the message must be a JSON object"),
        (&["publish", "t.*", "{}"], "topic `t.*`: has the wildcard `*`"),
        (&["publish", "a..b", "{}"], "has an empty segment"),
        (&["call", "r x", "{}"], "RPC name `r x`: has ' '"),
        (&["call", "r", "nope"], "the request is not valid JSON"),
        (&["subscribe", "s.a*"], "pattern `s.a*`: `*` must be a whole segment"),
    ];
    for (args, expected) in cases {
        let mut line = vec!["node", args[0], "--connect", url];
        line.extend_from_slice(&args[1..]);
        let output = run(&line);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{line:?}: {stderr}");
        assert!(
            stderr.starts_with("usage error: ") && stderr.contains(expected),
            "{line:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{line:?}: {stderr}");
    }
    let output = run(&["node", "call", "--connect", "nope://x", "r", "{}"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
}

/// No broker at the address: a transport failure (6) naming it, for every verb.
#[test]
fn an_unreachable_broker_exits_6() {
    for url in ["mqtt://127.0.0.1:1", "redis://127.0.0.1:1", "amqp://guest:guest@127.0.0.1:1"] {
        for args in [
            vec!["node", "publish", "--connect", url, "--timeout", "2s", "t.x", "{}"],
            vec!["node", "subscribe", "--connect", url, "--timeout", "2s", "t.*"],
            vec!["node", "call", "--connect", url, "--timeout", "2s", "r", "{}"],
        ] {
            let output = run(&args);
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(6), "{args:?}: {stderr}");
            assert!(stderr.starts_with("transport error: "), "{args:?}: {stderr}");
        }
    }
}

/// `node subscribe` with no `--count` or `--timeout` runs until SIGINT or SIGTERM, and then
/// ends cleanly (exit 0).
#[test]
fn subscribe_stops_on_sigint_and_sigterm() {
    let Some(broker) = shared_redis() else { return };
    for signal in ["-INT", "-TERM"] {
        let mut child =
            spawn(&["node", "subscribe", "--connect", &broker.url, "cli_node.signal.*"]);
        std::thread::sleep(Duration::from_millis(700));
        assert!(child.0.try_wait().expect("waits").is_none(), "it runs until stopped");
        let kill = Command::new("kill").args([signal, &child.0.id().to_string()]).status();
        assert!(kill.expect("kill runs").success());
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("waits") {
                break status;
            }
            assert!(Instant::now() < deadline, "{signal}: still running after 5 s");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "{signal}");
    }
}

/// The block of docs/shell.md marked `<!-- tested with a node on Redis -->`, run by bash
/// against a Rust node on the loopback Redis: it serves `demo.add_two_ints`, hears the
/// setpoint, and publishes the temperature that `node subscribe` prints the topic of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_md_node_example_works() {
    let Some(broker) = shared_redis() else { return };
    let doc = include_str!("../../../docs/shell.md");
    let marker = "<!-- tested with a node on Redis -->\n```bash\n";
    let start = doc.find(marker).expect("docs/shell.md has the node block") + marker.len();
    let block = &doc[start..start + doc[start..].find("```").expect("the block ends")];
    assert!(block.contains(&format!("SWITCHBOARD_URL={}", broker.url)), "{block}");

    let node = Node::new("shell_md_node", Endpoint::parse(&broker.url).expect("a URL"));
    let _adder = node
        .rpc_service("demo.add_two_ints", |request: Value| async move {
            let sum = request["a"].as_i64().unwrap_or(0) + request["b"].as_i64().unwrap_or(0);
            Ok::<_, RemoteError>(json!({"c": sum}))
        })
        .await
        .expect("served");
    let mut setpoint =
        node.subscriber::<Value>("sensors.front.setpoint").await.expect("a subscriber");
    let temperature = node.publisher::<Value>("sensors.front.temp").await.expect("a publisher");
    let publishing = tokio::spawn(async move {
        loop {
            let _ = temperature.publish(&json!({"celsius": 19.5})).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_switchboard")).parent().expect("a dir");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut bash = Command::new("bash");
    bash.args(["-euo", "pipefail", "-c", block]).env("PATH", path).env_remove("SWITCHBOARD_URL");
    let output = tokio::task::spawn_blocking(move || {
        let child = bash.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("bash runs");
        Running(child).finish(Duration::from_secs(60))
    })
    .await
    .expect("joined");
    publishing.abort();
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{block}\n--- stdout\n{stdout}--- stderr\n{}",
        text(&output.stderr)
    );
    assert_eq!(stdout.lines().last(), Some("sensors.front.temp"), "{stdout}");
    let heard = tokio::time::timeout(Duration::from_secs(5), setpoint.next()).await;
    assert!(
        matches!(&heard, Ok(Some(Ok(message))) if message["celsius"] == 21.5),
        "the node heard the setpoint: {heard:?}"
    );
}
