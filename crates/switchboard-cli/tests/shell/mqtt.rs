//! The verbs over MQTT (shared broker, unique instances), and against StingerIPC's Python server
//! with `--interface`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Live, example, transcript};

#[test]
fn every_verb_over_mqtt() {
    let Some(live) = Live::mqtt("verbs") else { return };
    let described = live.json(&["introspect", "Thermostat"]);
    assert_eq!(described["name"], "Thermostat");
    assert_eq!(live.json(&["call", "Jobs", "lookup", "key=mqtt"]), json!({"value": "MQTT"}));
    assert!(live.json(&["call", "Thermostat", "getStatus"])["history"].is_array());
    assert_eq!(
        live.json(&["set", "Thermostat", "setpoint", "celsius=18"]),
        json!({"celsius": 18.0})
    );
    assert_eq!(live.json(&["get", "Thermostat", "setpoint"]), json!({"celsius": 18.0}));
    let watched = live.ok(&["watch", "Thermostat", "setpoint", "--count", "1"]);
    assert!(watched.contains("\"property\":\"setpoint\""), "{watched}");
    let action = live.ok(&["action", "Thermostat", "preheat", "targetCelsius=21"]);
    assert!(action.lines().last().unwrap().contains("succeeded"), "{action}");
    assert_eq!(live.json(&["command", "Jobs", "note", "text=x", "private=false"]), json!({}));
    let missing = live.run(&["call", "Jobs", "lookup", "key=missing"]);
    assert_eq!(missing.status.code(), Some(3));
    let listed = live.json(&["list"]);
    let instance = live.url.split("instance=").nth(1).unwrap();
    let mut ours: Vec<(&str, &str)> = listed["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["instance"] == instance)
        .map(|s| (s["interface"].as_str().unwrap(), s["title"].as_str().unwrap_or("(none)")))
        .collect();
    ours.sort_unstable();
    assert_eq!(ours, [("Jobs", "Jobs"), ("Thermostat", "Smart thermostat")], "{listed}");
}

#[test]
fn stinger_python_server_with_interface_file() {
    let Some(peers) = switchboard_testkit::python::StingerPeers::get() else { return };
    let Some(broker) = switchboard_testkit::broker::shared_mosquitto() else { return };
    let instance = format!("cli-py-{}", std::process::id());
    let client_id = format!("{instance}-server");
    let rt = crate::support::rt();
    let mut server = peers.spawn("py_server.py", &[&instance, "--client-id", &client_id]);
    rt.block_on(server.wait_for("ready", Duration::from_secs(30))).expect("their server starts");
    let file = example("tests/interop/interop_probe.yaml");
    let file = file.to_str().unwrap();
    let url = format!("{}?instance={instance}", broker.url);
    let live = Live::mqtt("py").expect("broker");
    let args = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            rest[0].into(),
            "--connect".into(),
            url.clone(),
            "--interface".into(),
            file.into(),
        ];
        v.extend(rest[1..].iter().map(|s| s.to_string()));
        v
    };
    let run = |rest: &[&str]| {
        let a = args(rest);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        live.json(&a)
    };
    assert_eq!(
        run(&["call", "InteropProbe", "addNumbers", "first=1", "second=2"]),
        json!({"sum": 3})
    );
    let refused = {
        let a = args(&["call", "InteropProbe", "addNumbers", "first=-1", "second=2"]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        live.run(&a)
    };
    assert_eq!(refused.status.code(), Some(3), "{}", String::from_utf8_lossy(&refused.stderr));
    run(&["set", "InteropProbe", "currentLevel", "level=4"]);
    assert_eq!(run(&["get", "InteropProbe", "currentLevel"]), json!({"level": 4}));
    drop(server);
}

/// A broker that cannot be reached is a transport failure (6), not a missing service.
#[test]
fn unreachable_broker_exits_with_transport_failure() {
    let live = Live::unix();
    let closed = switchboard_testkit::broker::ClosedPort::new();
    let port = closed.port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let run = transcript(&live, &["get", "--connect", &url, "Thermostat", "setpoint"]);
    insta::assert_snapshot!("exit_transport_no_broker", run.replace(&port.to_string(), "[port]"));
}

/// An instance nobody announces is not found (4), also when `--timeout` is shorter than the
/// discovery time, and the CLI gives up within that timeout.
#[test]
fn unknown_instance_is_not_found_within_the_timeout() {
    let Some(live) = Live::mqtt("absent") else { return };
    let url = live.url.replace("instance=cli-absent", "instance=cli-nobody");
    let started = Instant::now();
    let run = transcript(&live, &["get", "--connect", &url, "--timeout", "1s", "Jobs", "lookup"]);
    let took = started.elapsed();
    let instance = url.split("instance=").nth(1).unwrap();
    insta::assert_snapshot!("exit_not_found_instance", run.replace(instance, "[instance]"));
    assert!(took < Duration::from_secs(4), "took {took:?}");
}
