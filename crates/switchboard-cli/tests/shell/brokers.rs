//! `list` on every transport: the transport's own discovery finds the services, and the address
//! each is listed with connects to it.

use switchboard_testkit::broker::{shared_mosquitto, shared_nats, shared_redis};

use crate::support::Live;

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
