//! switchboard's MQTT extensions seen on the wire: commands on StingerIPC 0.3.0's topic at QoS 2,
//! events to one client on its own topic only, the action topics and payloads, and the retained
//! interface description.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::{QoS, v5::PublishProperties};
use switchboard::{
    Endpoint,
    action::{GoalError, GoalStatus},
    server::ServerOptions,
};
use switchboard_testkit::broker::shared_mosquitto;
use switchboard_tests::jobs::{INTERFACE, JobsClient, JobsServer};

use super::{endpoint, raw, unique};
use crate::suite::within;
use raw::{Raw, request, text, user};

async fn serve(endpoint: &Endpoint) -> JobsServer {
    serve_with(endpoint, ServerOptions::default()).await
}

async fn serve_with(endpoint: &Endpoint, options: ServerOptions) -> JobsServer {
    switchboard_tests::fixtures::serve_jobs(endpoint, options).await
}

/// Removes the retained presence of connections with explicit client ids, once they closed.
async fn forget_presence(url: &str, client_ids: &[&str]) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let raw = Raw::connect(url, &format!("forget-{}", client_ids.join("-"))).await;
    for id in client_ids {
        raw.publish(
            &format!("client/{id}/online"),
            true,
            Bytes::new(),
            PublishProperties::default(),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// A client with a known MQTT client id.
async fn connect_as(url: &str, instance: &str, client_id: &str) -> JobsClient {
    let endpoint = endpoint(&format!("{url}?client_id={client_id}"), instance);
    within("connect", JobsClient::connect(&endpoint)).await.expect("connect")
}

/// A command goes out on `{interface}/{service_id}/command/{name}` at QoS 2, not retained, with
/// JSON content, the sender's `ClientId` and no response topic; a StingerIPC-style command
/// without `ClientId` runs too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_uses_the_stinger_topic_at_qos_2() {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("command");
    let _server = serve(&endpoint(&broker.url, &instance)).await;
    let mut raw = Raw::connect(&broker.url, &format!("raw-{instance}")).await;
    let topic = format!("Jobs/{instance}/command/note");
    raw.subscribe_qos(&format!("Jobs/{instance}/command/+"), QoS::ExactlyOnce).await;

    let app = format!("app-{instance}");
    let client = connect_as(&broker.url, &instance, &app).await;
    let mut notices = within("subscribe", client.subscribe_notice()).await.expect("subscribe");
    within("note", client.note("hello".into(), false)).await.expect("sent");
    let command = raw.next_on(&topic).await;
    assert_eq!(command.qos, QoS::ExactlyOnce);
    assert!(!command.retain);
    assert_eq!(text(&command), r#"{"text":"hello","private":false}"#);
    let properties = command.properties.clone().expect("properties");
    assert_eq!(properties.content_type.as_deref(), Some("application/json"));
    assert_eq!(properties.response_topic, None);
    assert_eq!(properties.correlation_data, None);
    assert_eq!(user(&command, "ClientId").as_deref(), Some(app.as_str()));
    let notice = within("notice", notices.next()).await.expect("open").expect("a notice");
    assert_eq!(notice.text, "hello");

    // A StingerIPC peer's command: QoS 2, no ClientId. It runs; a private one has nobody to go
    // to (the anonymous peer) and only fails in the server's log.
    let stinger =
        PublishProperties { content_type: Some("application/json".into()), ..Default::default() };
    raw.client
        .publish_with_properties(
            topic.clone(),
            QoS::ExactlyOnce,
            false,
            r#"{"text":"private to nobody","private":true}"#,
            stinger.clone(),
        )
        .await
        .unwrap();
    raw.client
        .publish_with_properties(
            topic.clone(),
            QoS::ExactlyOnce,
            false,
            r#"{"text":"from stinger","private":false}"#,
            stinger,
        )
        .await
        .unwrap();
    let notice = within("notice", notices.next()).await.expect("open").expect("a notice");
    assert_eq!(notice.text, "from stinger");
    drop((notices, client));
    forget_presence(&broker.url, &[&app]).await;
    raw::clear_retained(&broker.url, &instance).await;
}

/// An event to one client is published once, on that client's own signal topic, and on no
/// topic another client listens to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_to_one_client_uses_its_own_topic() {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("private");
    let _server = serve(&endpoint(&broker.url, &instance)).await;
    let (alice_id, bob_id) = (format!("alice-{instance}"), format!("bob-{instance}"));
    let mut raw = Raw::connect(&broker.url, &format!("raw-{instance}")).await;
    raw.subscribe(&format!("client/{alice_id}/#")).await;
    raw.subscribe(&format!("client/{bob_id}/#")).await;
    raw.subscribe(&format!("Jobs/{instance}/signal/#")).await;
    let alice = connect_as(&broker.url, &instance, &alice_id).await;
    let bob = connect_as(&broker.url, &instance, &bob_id).await;
    let mut to_alice = within("subscribe", alice.subscribe_notice()).await.expect("subscribe");
    let mut to_bob = within("subscribe", bob.subscribe_notice()).await.expect("subscribe");

    within("note", alice.note("psst".into(), true)).await.expect("sent");
    assert_eq!(within("notice", to_alice.next()).await.unwrap().unwrap().text, "psst");
    let seen: Vec<_> = raw
        .drain(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|p| !String::from_utf8_lossy(&p.topic).ends_with("/online"))
        .collect();
    let topics: Vec<String> =
        seen.iter().map(|p| String::from_utf8_lossy(&p.topic).into_owned()).collect();
    assert_eq!(topics, [format!("client/{alice_id}/Jobs/signal/notice")], "only alice's topic");
    assert_eq!(text(&seen[0]), r#"{"text":"psst"}"#);
    assert_eq!(seen[0].qos, QoS::AtLeastOnce);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), to_bob.next()).await.is_err(),
        "bob heard alice's notice"
    );
    drop((to_alice, to_bob, alice, bob));
    forget_presence(&broker.url, &[&alice_id, &bob_id]).await;
    raw::clear_retained(&broker.url, &instance).await;
}

/// The action topics and payloads, driven by a raw client: accept, status, feedback and result
/// on the sender's event topic in order with the reply first; a rejection with the declared
/// error's fields; a malformed request; an attach of an ended goal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_messages_on_the_wire() {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("actions");
    let _server = serve(&endpoint(&broker.url, &instance)).await;
    let me = format!("raw-{instance}");
    let mut raw = Raw::connect(&broker.url, &me).await;
    let events = format!("client/{me}/Jobs/action/count/event");
    raw.subscribe(&events).await;
    let base = format!("Jobs/{instance}/action/count");
    let goal = "0b8c6f7e-4a4f-4a8e-9d2b-2f7f1c1f0a11";
    let ask = |correlation: &[u8]| {
        let mut properties = request(&events, correlation);
        properties.user_properties.push(("ClientId".into(), me.clone()));
        properties
    };

    let args = format!(r#"{{"goal":"{goal}","args":{{"to":2,"stepMs":0,"startAfterMs":0}}}}"#);
    raw.publish(&format!("{base}/goal"), false, args, ask(b"g-1")).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let message = raw.next_on(&events).await;
        assert_eq!(message.qos, QoS::AtLeastOnce);
        let properties = message.properties.clone().unwrap();
        assert_eq!(properties.content_type.as_deref(), Some("application/json"));
        got.push((
            properties.correlation_data.clone(),
            user(&message, "GoalEvent"),
            user(&message, "ReturnCode"),
            text(&message),
        ));
    }
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        got,
        [
            (
                Some(Bytes::from_static(b"g-1")),
                None,
                s("0"),
                format!(r#"{{"goal":"{goal}","status":"accepted"}}"#)
            ),
            (None, s("status"), None, format!(r#"{{"goal":"{goal}","status":"executing"}}"#)),
            (None, s("feedback"), None, format!(r#"{{"goal":"{goal}","feedback":{{"value":1}}}}"#)),
            (None, s("feedback"), None, format!(r#"{{"goal":"{goal}","feedback":{{"value":2}}}}"#)),
            (
                None,
                s("finished"),
                s("0"),
                format!(r#"{{"goal":"{goal}","status":"succeeded","result":{{"total":2}}}}"#)
            ),
        ]
    );

    // A late attach (status query) of the ended goal answers its end state.
    let attach = format!(r#"{{"goal":"{goal}","follow":false}}"#);
    raw.publish(&format!("{base}/attach"), false, attach, ask(b"a-1")).await;
    let reply = raw.next_on(&events).await;
    assert_eq!(
        text(&reply),
        format!(r#"{{"goal":"{goal}","status":"succeeded","result":{{"total":2}}}}"#)
    );

    // Rejected by the acceptance hook with a declared error: code 1, name, fields.
    let other = "5d7a2c1e-1111-4a8e-9d2b-2f7f1c1f0a11";
    let args = format!(r#"{{"goal":"{other}","args":{{"to":-1,"stepMs":0,"startAfterMs":0}}}}"#);
    raw.publish(&format!("{base}/goal"), false, args, ask(b"g-2")).await;
    let reply = raw.next_on(&events).await;
    assert_eq!(user(&reply, "ReturnCode").as_deref(), Some("1"));
    assert_eq!(user(&reply, "ErrorName").as_deref(), Some("BadInput"));
    let details = r#"{"field":"to","reason":"must not be negative"}"#;
    assert_eq!(user(&reply, "ErrorDetails").as_deref(), Some(details));
    let body: serde_json::Value = serde_json::from_str(&text(&reply)).unwrap();
    assert_eq!(body["goal"], other);
    assert_eq!(body["details"], serde_json::from_str::<serde_json::Value>(details).unwrap());

    // A goal id the server would have to keep as it came is refused, and nothing is kept
    // (issue 15, defects 4 and 17).
    let long = "g".repeat(129);
    for bad in ["a b", "a/b", long.as_str()] {
        let args = format!(r#"{{"goal":"{bad}","args":{{"to":1,"stepMs":0,"startAfterMs":0}}}}"#);
        raw.publish(&format!("{base}/goal"), false, args, ask(b"g-bad")).await;
        let reply = raw.next_on(&events).await;
        assert_eq!(user(&reply, "ReturnCode").as_deref(), Some("4"), "{bad}");
    }

    // Not a goal object: PayloadError, and the server keeps serving.
    raw.publish(&format!("{base}/goal"), false, "{not json", ask(b"g-3")).await;
    let reply = raw.next_on(&events).await;
    assert_eq!(user(&reply, "ReturnCode").as_deref(), Some("4"));
    let cancel = format!(r#"{{"goal":"{goal}"}}"#);
    raw.publish(&format!("{base}/cancel"), false, cancel, ask(b"c-1")).await;
    let reply = raw.next_on(&events).await;
    assert_eq!(user(&reply, "ReturnCode").as_deref(), Some("0"));
    assert!(text(&reply).contains(r#""status":"succeeded""#), "cancelling an ended goal");
    raw::clear_retained(&broker.url, &instance).await;
}

/// The interface description is retained on `{interface}/{service_id}/schema` with the interface
/// info's expiry, and cleared on a clean shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn description_is_published_and_cleared() {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("schema");
    let mut raw = Raw::connect(&broker.url, &format!("raw-{instance}")).await;
    let topic = format!("Jobs/{instance}/schema");
    raw.subscribe(&topic).await;
    let server = serve(&endpoint(&broker.url, &instance)).await;
    raw.next_on(&topic).await;
    // Published, so a later subscriber gets the retained copy.
    let mut late = Raw::connect(&broker.url, &format!("late-{instance}")).await;
    late.subscribe(&topic).await;
    let schema = late.next_on(&topic).await;
    assert!(schema.retain);
    let properties = schema.properties.clone().unwrap();
    assert_eq!(properties.content_type.as_deref(), Some("application/json"));
    assert_eq!(properties.message_expiry_interval.map(|e| e > 100 && e <= 144), Some(true));
    assert_eq!(text(&schema), INTERFACE.description);
    let _: serde_json::Value = serde_json::from_str(&text(&schema)).expect("JSON");
    server.shutdown().await;
    let cleared = raw.next_on(&topic).await;
    assert!(cleared.payload.is_empty());
    raw::clear_retained(&broker.url, &instance).await;
}

const GRACE: Duration = Duration::from_millis(300);

/// A client whose last will fires (simulated: its presence turns offline while it is in fact
/// still connected) is gone for the server: its goal is cancelled after the grace period. A
/// connection with the same client id that re-attaches within the grace period is a new peer and
/// keeps its goal alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_of_the_owner_starts_the_grace_period() {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("will");
    let options = ServerOptions::default().disconnect_grace(Some(GRACE));
    let _server = serve_with(&endpoint(&broker.url, &instance), options).await;
    let owner_id = format!("owner-{instance}");
    let owner = connect_as(&broker.url, &instance, &owner_id).await;
    let raw = Raw::connect(&broker.url, &format!("raw-{instance}")).await;
    let presence = format!("client/{owner_id}/online");
    let will = || async {
        let properties = PublishProperties {
            content_type: Some("application/json".into()),
            ..Default::default()
        };
        raw.publish(&presence, true, r#"{"online":false}"#, properties).await;
    };

    // Re-attached within the grace period: the goal survives.
    let mut kept = within("send", owner.count(8, 100, 0)).await.expect("accepted");
    within("feedback", kept.next_feedback()).await.expect("a feedback");
    will().await;
    tokio::time::sleep(GRACE / 3).await;
    let again = within("attach", owner.attach_count(kept.id().clone())).await.expect("attach");
    assert_eq!(within("result", again.result()).await.expect("not cancelled"), 8);

    // Nobody re-attaches: cancelled once the grace period has passed.
    let mut lost = within("send", owner.count(10_000, 10, 0)).await.expect("accepted");
    within("feedback", lost.next_feedback()).await.expect("a feedback");
    will().await;
    // A gone client gets no more events (a real one would not be there to read them); asked
    // after the grace period, the server tells the goal was cancelled.
    tokio::time::sleep(GRACE * 3).await;
    let late = within("attach", owner.attach_count(lost.id().clone())).await.expect("attach");
    assert!(matches!(within("result", late.result()).await, Err(GoalError::Cancelled)));
    assert_eq!(lost.status(), GoalStatus::Cancelled);
    drop((kept, lost, again, late, owner));
    forget_presence(&broker.url, &[&owner_id]).await;
    raw::clear_retained(&broker.url, &instance).await;
}

/// The broker restarts while a goal runs: server and client reconnect by themselves, the client
/// re-attaches, and the goal's result still arrives (feedback sent during the outage is lost, but
/// never the end state, and what arrives is in order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goal_survives_a_broker_restart() {
    switchboard_testkit::init_tracing();
    let Some(mut broker) = switchboard_testkit::broker::PrivateMosquitto::start() else { return };
    let endpoint = endpoint(&broker.url(), "restart");
    let _server = serve(&endpoint).await;
    let client = within("connect", JobsClient::connect(&endpoint)).await.expect("connect");
    let mut goal = within("send", client.count(30, 50, 0)).await.expect("accepted");
    let first = within("feedback", goal.next_feedback()).await.expect("a feedback").value;
    broker.restart();
    let mut last = first;
    while let Some(feedback) = within("feedback", goal.next_feedback()).await {
        assert!(feedback.value > last, "feedback in order");
        last = feedback.value;
    }
    assert_eq!(within("result", goal.result()).await.expect("succeeded"), 30);
}
