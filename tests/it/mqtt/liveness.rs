//! Server liveness over a broker that stays up: a client watches its server's presence topic,
//! fails what is in flight the moment the server's will says `{"online":false}`, and resumes
//! on the same client once a restarted server announces itself.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use switchboard::error::{CallError, TransportErrorKind};
use switchboard_testkit::{ChildProcess, broker::shared_mosquitto};
use switchboard_tests::thermostat::ThermostatClient;

use super::{endpoint, raw, unique};
use crate::suite::within;

/// Kills the server (SIGKILL) during a 30 s call, checks the call fails with a disconnect at
/// once and later calls fail fast, then restarts the server (with a new MQTT client id, so a new
/// presence topic, unless `same_client_id`) and checks the same client is served again.
async fn killed_server_fails_calls_and_restart_resumes(tag: &str, same_client_id: bool) {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique(tag);
    let server_binary = env!("CARGO_BIN_EXE_switchboard-test-server");
    let first_id = format!("{instance}-a");
    let second_id = if same_client_id { first_id.clone() } else { format!("{instance}-b") };
    let url = |id: &str| format!("{}?client_id={id}&instance={instance}", broker.url);

    let mut server = ChildProcess::spawn(server_binary, &[&url(&first_id)]);
    let client = within("connect", ThermostatClient::connect(&endpoint(&broker.url, &instance)))
        .await
        .expect("connect");
    within("getStatus", client.get_status()).await.expect("a call before the kill");
    let mut readings = within("subscribe", client.subscribe_temperature_changed()).await.unwrap();
    within("a reading", readings.next()).await.unwrap().expect("a reading before the kill");

    // A call that would take 30 s is in flight when the server dies.
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.boost(1.0, switchboard::Duration::seconds(30), None).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed_at = Instant::now();
    server.kill();
    let error = within("the pending call", pending).await.unwrap().unwrap_err();
    let took = killed_at.elapsed();
    eprintln!("SIGKILL to the failed call: {took:?}");
    assert!(error.is_disconnect(), "expected a disconnect, got {error:?}");
    let CallError::Transport(transport) = &error else { panic!("{error:?}") };
    assert_eq!(transport.kind(), TransportErrorKind::Disconnected, "{transport}");
    assert!(transport.message().contains(&instance), "`{transport}` should name the server");
    assert!(took < Duration::from_secs(2), "the disconnect took {took:?}");

    // While the server is gone, calls fail at once rather than time out.
    let started = Instant::now();
    let error = within("call while down", client.get_status()).await.unwrap_err();
    let CallError::Transport(transport) = &error else { panic!("{error:?}") };
    assert_eq!(transport.kind(), TransportErrorKind::NotConnected, "{transport}");
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    // The signal stream reports the gap.
    within("gap notice", async {
        while let Some(item) = readings.next().await {
            if item.is_err() {
                return;
            }
        }
        panic!("the stream closed instead of reporting the lost server");
    })
    .await;

    let _restarted = ChildProcess::spawn(server_binary, &[&url(&second_id)]);
    let restarted_at = Instant::now();
    let deadline = restarted_at + Duration::from_secs(10);
    let status = loop {
        match client.get_status().await {
            Ok(status) => break status,
            Err(error) if Instant::now() < deadline => {
                assert!(matches!(error, CallError::Transport(_)), "{error:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the client did not resume with the restarted server: {error:?}"),
        }
    };
    eprintln!("restart to the first successful call: {:?}", restarted_at.elapsed());
    assert_eq!(status.celsius, 18.5);
    // Signals flow again on the old stream, re-subscribed by the client itself.
    let reading = within("a reading after restart", readings.next()).await.unwrap();
    assert!(reading.is_ok(), "{reading:?}");
    // And a long call in flight is served by the new process.
    within("boost", client.boost(1.0, switchboard::Duration::milliseconds(100), None))
        .await
        .expect("a call to the restarted server");

    drop(_restarted);
    raw::clear_retained(&broker.url, &instance).await;
    // Only now that the announcement is gone: a cleared presence with a leftover announcement
    // would look like a live server to a client connecting to instance `*`.
    let mut cleanup = raw::Raw::connect(&broker.url, &format!("cleanup-presence-{instance}")).await;
    for id in [&first_id, &second_id] {
        let topic = format!("client/{id}/online");
        cleanup.publish(&topic, true, Bytes::new(), PublishProperties::default()).await;
    }
    cleanup.flush().await;
}

/// The restarted server is a new MQTT client: its presence topic is a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_fails_calls_at_once_and_new_server_is_resumed() {
    killed_server_fails_calls_and_restart_resumes("liveness-new", false).await;
}

/// The restarted server reuses its MQTT client id: the same presence topic turns online again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_fails_calls_at_once_and_same_server_is_resumed() {
    killed_server_fails_calls_and_restart_resumes("liveness-same", true).await;
}

/// Issue 15, defect 7: any broker client can publish a retained `{"online":false}` on a live
/// server's presence topic. The server notices and restores its presence at once, so the client
/// already connected is served again and a new client finds the server, instead of both
/// refusing it until it reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_offline_presence_is_restored_by_the_live_server() {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let instance = unique("spoofed-presence");
    let server_id = format!("{instance}-server");
    let presence = format!("client/{server_id}/online");
    let server_url = format!("{}?client_id={server_id}", broker.url);
    let (_server, _) = crate::suite::serve_thermostat(&endpoint(&server_url, &instance)).await;
    let client = within("connect", ThermostatClient::connect(&endpoint(&broker.url, &instance)))
        .await
        .expect("connect");
    within("getStatus", client.get_status()).await.expect("a call before the spoof");

    let mut spoofer = raw::Raw::connect(&broker.url, &format!("{instance}-spoofer")).await;
    let offline = Bytes::from_static(br#"{"online":false}"#);
    spoofer.publish(&presence, true, offline, PublishProperties::default()).await;
    spoofer.flush().await;

    // The client already connected is served again within moments.
    let spoofed_at = Instant::now();
    loop {
        match within("call after the spoof", client.get_status()).await {
            Ok(_) => break,
            Err(error) => {
                assert!(
                    spoofed_at.elapsed() < Duration::from_secs(3),
                    "the client still refuses the live server 3 s after the spoof: {error:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    // The broker holds the server's own presence again, and a new client finds the server.
    let mut reader = raw::Raw::connect(&broker.url, &format!("{instance}-reader")).await;
    reader.subscribe(&presence).await;
    let retained = reader.next_on(&presence).await;
    assert_eq!(raw::text(&retained), r#"{"online":true}"#);
    let late = within(
        "connect after the spoof",
        ThermostatClient::connect(&endpoint(&broker.url, &instance)),
    )
    .await
    .expect("a new client finds the live server");
    within("getStatus", late.get_status()).await.expect("a new client is served");

    drop(_server);
    raw::clear_retained(&broker.url, &instance).await;
    spoofer.publish(&presence, true, Bytes::new(), PublishProperties::default()).await;
    spoofer.flush().await;
}
