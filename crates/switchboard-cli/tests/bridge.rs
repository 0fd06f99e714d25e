//! `switchboard bridge` as a process: the sample configurations of `docs/bridges.md` run against
//! the loopback mosquitto and Redis (the interface sample with the example thermostat on a Unix
//! socket), and the exit codes and messages of bad configurations and
//! an unreachable side.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Output, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use switchboard::{Endpoint, error::RemoteError, node::Node};

/// A fresh scratch directory named `name` for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-bridge").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory can be created");
    dir
}

/// Writes `text` as `name` in `dir` and runs `switchboard bridge` on it to its end.
fn bridge_with(dir: &Path, name: &str, text: &str) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("bridge")
        .arg(&path)
        .output()
        .expect("binary runs")
}

/// The first YAML block of `docs/bridges.md`: the sample configuration.
fn sample_config() -> String {
    let doc = include_str!("../../../docs/bridges.md");
    let start = doc.find("```yaml\n").expect("docs/bridges.md has a YAML block") + 8;
    let end = start + doc[start..].find("```").expect("the block ends");
    doc[start..end].to_owned()
}

/// The YAML block of `docs/bridges.md` with an interface route.
fn interface_sample_config() -> String {
    let doc = include_str!("../../../docs/bridges.md");
    doc.split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains("- interface:"))
        .expect("docs/bridges.md has an interface route sample")
        .to_owned()
}

#[test]
fn bad_configs_exit_2_naming_the_file_and_the_problem() {
    let dir = scratch("bad");
    let cases = [
        ("missing.yaml", "a: mqtt://127.0.0.1:1883\nroutes: []\n", "missing field `b`"),
        (
            "side.yaml",
            "a: mqtt://127.0.0.1:1883\nb: redis://127.0.0.1:6379\nroutes:\n  - topic: x\n    from: c\n",
            "route 1: `from: c`: use `a` or `b` or `both`",
        ),
        (
            "wildcard.yaml",
            "a: mqtt://127.0.0.1:1883\nb: redis://127.0.0.1:6379\nroutes:\n  - topic: x.*\n    from: a\n",
            "has a wildcard; only patterns do",
        ),
        ("syntax.yaml", "a: [unclosed\n", "line 1"),
    ];
    for (name, text, expected) in cases {
        let output = bridge_with(&dir, name, text);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(name) && stderr.contains(expected), "{name}: {stderr}");
        assert!(output.stdout.is_empty(), "{name}: nothing runs");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["bridge", "no-such-file.yaml"])
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot read no-such-file.yaml"), "{stderr}");
}

#[test]
fn an_unreachable_side_exits_6_naming_it() {
    let Some(redis) = switchboard_testkit::broker::shared_redis() else { return };
    let dir = scratch("unreachable");
    let text =
        format!("a: {}\nb: redis://127.0.0.1:1\nroutes:\n  - topic: x\n    from: a\n", redis.url);
    let output = bridge_with(&dir, "unreachable.yaml", &text);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("side b (redis://127.0.0.1:1"), "{stderr}");
}

/// Stops the bridge process if a test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `switchboard bridge CONFIG` and reads the JSON line it prints once its routes run:
/// the running bridge, the rest of its standard output, and that line.
async fn start_bridge(config: &Path, wait: Duration) -> (Running, BufReader<ChildStdout>, Value) {
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("bridge")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the bridge starts");
    let mut child = Running(child);
    let mut stdout = BufReader::new(child.0.stdout.take().expect("stdout"));
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("a line");
        (line, stdout)
    });
    let (line, stdout) = tokio::time::timeout(wait, first)
        .await
        .unwrap_or_else(|_| panic!("the bridge says it runs within {wait:?}"))
        .expect("read");
    let running = serde_json::from_str(&line).unwrap_or_else(|e| panic!("JSON ({e}): {line}"));
    (child, stdout, running)
}

/// The documented sample runs: a pattern crosses from MQTT to Redis renamed, the setpoint
/// crosses both ways, a Redis caller is answered on MQTT, and SIGTERM ends it with counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_sample_runs() {
    let (Some(_mqtt), Some(_redis)) = (
        switchboard_testkit::broker::shared_mosquitto(),
        switchboard_testkit::broker::shared_redis(),
    ) else {
        return;
    };
    let dir = scratch("sample");
    let config = dir.join("bridge.yaml");
    std::fs::write(&config, sample_config()).expect("written");
    let a = Node::new("cli-bridge-a", Endpoint::parse("mqtt://127.0.0.1:1883").expect("a URL"));
    let b = Node::new("cli-bridge-b", Endpoint::parse("redis://127.0.0.1:6379").expect("a URL"));
    let _service = a
        .rpc_service("demo.add_two_ints", |request: Value| async move {
            let sum = request["a"].as_i64().unwrap_or(0) + request["b"].as_i64().unwrap_or(0);
            Ok::<_, RemoteError>(json!({"c": sum}))
        })
        .await
        .expect("served");

    let (mut child, stdout, running) = start_bridge(&config, Duration::from_secs(10)).await;
    assert_eq!(running["bridge"], "running", "{running}");
    assert_eq!(running["routes"].as_array().expect("routes").len(), 4, "{running}");

    // A nonce, so that another run on the same brokers cannot pass for this one.
    let nonce = std::process::id();
    let mut on_b = b.pattern_subscriber::<Value>("site1.sensors.*").await.expect("a subscriber");
    let sensor = a.publisher::<Value>("sensors.front.temp").await.expect("a publisher");
    let mut crossed = None;
    for _ in 0..100 {
        sensor.publish(&json!({"nonce": nonce})).await.expect("published");
        if let Ok(Some(Ok(received))) =
            tokio::time::timeout(Duration::from_millis(100), on_b.next()).await
            && received.message["nonce"] == nonce
        {
            crossed = Some(received.topic);
            break;
        }
    }
    assert_eq!(crossed.as_deref(), Some("site1.sensors.front.temp"));

    let mut setpoint_on_a = a.subscriber::<Value>("setpoint").await.expect("a subscriber");
    let setpoint_b = b.publisher::<Value>("site1.setpoint").await.expect("a publisher");
    let mut back = false;
    for _ in 0..100 {
        setpoint_b.publish(&json!({"nonce": nonce})).await.expect("published");
        if let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_millis(100), setpoint_on_a.next()).await
            && message["nonce"] == nonce
        {
            back = true;
            break;
        }
    }
    assert!(back, "the setpoint crossed from b to a");

    let client = b.rpc_client::<Value, Value>("site1.add_two_ints").await.expect("a client");
    let sum = client.call(&json!({"a": 20, "b": 22})).await.expect("answered through the bridge");
    assert_eq!(sum, json!({"c": 42}));

    // SIGTERM: the counts, one line per route, and exit 0.
    let kill = Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status();
    assert!(kill.expect("kill runs").success());
    let rest = tokio::task::spawn_blocking(move || {
        stdout.lines().map(|line| line.expect("a line")).collect::<Vec<_>>()
    });
    let lines =
        tokio::time::timeout(Duration::from_secs(10), rest).await.expect("it ends").expect("read");
    let status = child.0.wait().expect("exited");
    assert_eq!(status.code(), Some(0), "{lines:?}");
    let counts: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(counts.len(), 4, "{lines:?}");
    assert_eq!(counts[0]["route"], "pattern a:sensors.* -> b:site1.sensors", "{lines:?}");
    assert!(counts[0]["forwarded"].as_u64().expect("a count") >= 1, "{lines:?}");
    assert!(counts[2]["forwarded"].as_u64().expect("a count") >= 1, "{lines:?}");
    assert!(counts[3]["forwarded"].as_u64().expect("a count") >= 1, "{lines:?}");
}

/// The documented interface sample runs: the example thermostat serves on a Unix socket, and
/// the client generated from its file uses it over MQTT through the bridge process: a method,
/// a property set and read back, a declared error, a signal; SIGTERM ends it with its counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_interface_sample_runs() {
    use thermostat_example::generated::thermostat::{PreheatError, ThermostatClient};

    let Some(_mqtt) = switchboard_testkit::broker::shared_mosquitto() else { return };
    let dir = scratch("interface");
    // Its own socket directory and instance, so that other runs on the broker are not this one.
    let sockets = format!("unix://{}", dir.join("sockets").display());
    let instance = format!("kitchen_{}", std::process::id());
    let sample = interface_sample_config();
    let text = sample
        .replace("unix:///run/thermostat", &sockets)
        .replace("instance: kitchen", &format!("instance: {instance}"));
    assert!(text.contains(&sockets) && text.contains(&instance), "the sample changed: {sample}");
    let config = dir.join("interface.yaml");
    std::fs::write(&config, text).expect("written");

    let on_a = Endpoint::parse(&sockets).expect("a URL").with_instance(&instance).expect("ok");
    let on_b = Endpoint::parse("mqtt://127.0.0.1:1883").expect("a URL");
    let on_b = on_b.with_instance(&instance).expect("an instance");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = on_a.clone();
    let server = tokio::spawn(async move {
        thermostat_example::server::run_until(&serving, async {
            let _ = stopped.await;
        })
        .await
    });
    let mut direct = None;
    for _ in 0..100 {
        if let Ok(client) = ThermostatClient::connect(&on_a).await {
            direct = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    direct.expect("the thermostat serves on the Unix socket").close();

    let (mut child, stdout, running) = start_bridge(&config, Duration::from_secs(20)).await;
    assert_eq!(running["routes"], json!([format!("interface b:Thermostat/{instance} -> a")]));

    let step = Duration::from_secs(10);
    let client = tokio::time::timeout(step, ThermostatClient::connect(&on_b)).await;
    let client = client.expect("in time").expect("the generated client connects over MQTT");
    let status = tokio::time::timeout(step, client.get_status()).await.expect("in time");
    assert_eq!(
        status.expect("an answer").mode,
        thermostat_example::generated::thermostat::Mode::Heat
    );
    tokio::time::timeout(step, client.set_setpoint(22.5)).await.expect("in time").expect("set");
    let setpoint = tokio::time::timeout(step, client.get_setpoint()).await.expect("in time");
    assert_eq!(setpoint.expect("a value"), 22.5);
    let refused = tokio::time::timeout(step, client.preheat(99.0)).await.expect("in time");
    assert!(
        matches!(
            refused,
            Err(switchboard::error::MethodError::Declared(PreheatError::OutOfRange(_)))
        ),
        "{refused:?}"
    );
    let mut readings = client.subscribe_temperature_changed().await.expect("subscribed");
    let reading = tokio::time::timeout(step, readings.next()).await.expect("a reading in time");
    assert!(reading.expect("open").expect("decoded").celsius > 19.0);

    let kill = Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status();
    assert!(kill.expect("kill runs").success());
    let rest = tokio::task::spawn_blocking(move || {
        stdout.lines().map(|line| line.expect("a line")).collect::<Vec<_>>()
    });
    let lines = tokio::time::timeout(step, rest).await.expect("it ends").expect("read");
    assert_eq!(child.0.wait().expect("exited").code(), Some(0), "{lines:?}");
    let counts: Value = serde_json::from_str(&lines[0]).expect("JSON");
    assert!(counts["forwarded"].as_u64().expect("a count") >= 4, "{lines:?}");
    let _ = stop.send(());
    let _ = server.await;
}
