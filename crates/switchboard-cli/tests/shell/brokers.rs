//! `list` on every transport: the transport's own discovery finds the services, and the address
//! each is listed with connects to it; and `--timeout` bounding every wait of each broker.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use switchboard_testkit::broker::{
    PrivateRedis, shared_mosquitto, shared_nats, shared_rabbitmq, shared_redis,
};

use crate::support::{Live, bin, run_bounded};

/// Lists the services, keeps this test's instance (every one on the Unix socket directory),
/// and checks that each listed address reaches its service.
fn listed_services_are_reachable(live: &Live, instance: Option<&str>) {
    let listed = live.json(&["list"]);
    let mut ours: Vec<(String, String, String)> = listed["services"]
        .as_array()
        .expect("a list of services")
        .iter()
        .filter(|s| instance.is_none_or(|i| s["instance"] == i))
        .map(|s| {
            let text = |key: &str| s[key].as_str().unwrap_or_default().to_owned();
            (text("interface"), text("title"), text("address"))
        })
        .collect();
    ours.sort_unstable();
    let names: Vec<(&str, &str)> = ours.iter().map(|(i, t, _)| (i.as_str(), t.as_str())).collect();
    assert_eq!(names, [("Jobs", "Jobs"), ("Thermostat", "Smart thermostat")], "{listed}");
    for (interface, _, address) in &ours {
        let described = live.json(&["introspect", "--connect", address, interface]);
        assert_eq!(described["name"], interface.as_str(), "{address}");
    }
}

#[test]
fn list_over_unix() {
    listed_services_are_reachable(&Live::unix(), None);
}

#[test]
fn list_over_mqtt() {
    let Some(broker) = shared_mosquitto() else { return };
    let live = Live::on_broker(&broker, "list").expect("servers");
    listed_services_are_reachable(&live, Some(&live.instance()));
}

#[test]
fn list_over_nats() {
    let Some(broker) = shared_nats() else { return };
    let live = Live::on_broker(&broker, "list").expect("servers");
    listed_services_are_reachable(&live, Some(&live.instance()));
}

#[test]
fn list_over_redis() {
    let Some(broker) = shared_redis() else { return };
    let live = Live::on_broker(&broker, "list").expect("servers");
    listed_services_are_reachable(&live, Some(&live.instance()));
}

#[test]
fn list_over_amqp() {
    let Some(broker) = shared_rabbitmq() else { return };
    let live = Live::on_broker(&broker, "list").expect("servers");
    listed_services_are_reachable(&live, Some(&live.instance()));
}

/// On a broker that needs a password (a private Redis with `requirepass`), `list` prints no
/// password, and each address it lists reaches its service with the password of
/// `$SWITCHBOARD_URL`, which it borrows for the same broker. Without that password (no
/// `$SWITCHBOARD_URL`, or one naming another broker) the same address is refused by the
/// broker, so the password did come from `$SWITCHBOARD_URL`.
#[test]
fn listed_addresses_borrow_the_password_of_switchboard_url() {
    const PASSWORD: &str = "n0t-the-default";
    let Some(redis) = PrivateRedis::start_with(&["--requirepass", PASSWORD]) else { return };
    let live = Live::on_url(&format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port()), "secret");
    let text = live.ok(&["list", "--format", "text"]);
    let json = live.ok(&["list", "--format", "json"]);
    for printed in [&text, &json] {
        assert!(!printed.contains(PASSWORD), "{printed}");
        assert!(printed.contains(&format!("redis://127.0.0.1:{}", redis.port())), "{printed}");
    }
    listed_services_are_reachable(&live, Some(&live.instance()));

    let address = format!("redis://127.0.0.1:{}?instance={}", redis.port(), live.instance());
    let introspect = ["introspect", "--connect", &address, "--timeout", "3s", "Thermostat"];
    let elsewhere = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port() + 1);
    for url in [None, Some(elsewhere.as_str())] {
        let mut command = live.command(&introspect);
        match url {
            None => command.env_remove("SWITCHBOARD_URL"),
            Some(url) => command.env("SWITCHBOARD_URL", url),
        };
        let output = run_bounded(command, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The transport's failure (6): the server refused the connection without a password.
        assert_eq!(output.status.code(), Some(6), "SWITCHBOARD_URL={url:?}: {stderr}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");
    }
}

/// A loopback port that accepts connections and never says a word, as a broker that hangs
/// does: only a bound on the transport's own waits ends a connect there.
fn silent_broker() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// `call` and `list` against a broker that never answers fail with the transport's error
/// within `--timeout` (1 s), on every broker the CLI speaks, although each transport's own
/// waits default to 5 s.
#[test]
fn timeout_bounds_every_wait_on_a_silent_broker() {
    let (_listener, port) = silent_broker();
    let timeout = Duration::from_secs(1);
    for scheme in ["mqtt", "nats", "redis", "amqp"] {
        let url = format!("{scheme}://127.0.0.1:{port}");
        for args in [
            &["call", "--connect", &url, "--timeout", "1s", "Jobs", "lookup", "key=k"][..],
            &["list", "--connect", &url, "--timeout", "1s"][..],
        ] {
            let mut command = Command::new(bin());
            command.args(args).stdin(Stdio::null());
            let started = Instant::now();
            let output = run_bounded(command, Duration::from_secs(20));
            let took = started.elapsed();
            let stderr = String::from_utf8_lossy(&output.stderr);
            // The transport's own failure (not found, or the transport broke), not the CLI
            // giving up on it (5).
            assert!(matches!(output.status.code(), Some(4 | 6)), "{args:?}: {stderr}");
            assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{args:?}: {stderr}");
            assert!(took >= timeout, "{args:?} gave up before its timeout: {took:?}");
            assert!(took < 2 * timeout, "{args:?} took {took:?}: {stderr}");
        }
    }
}
