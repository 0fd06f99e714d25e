//! The thermostat daemon outlives a restart of its MQTT broker (issue 15, defect 6): readings
//! emitted while the broker is away are dropped and counted, not errors that end `run_until`,
//! and once the broker is back clients get readings again.

use std::time::{Duration, Instant};

use switchboard::Endpoint;
use switchboard_testkit::broker::PrivateMosquitto;
use thermostat_example::generated::thermostat::ThermostatClient;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_outlives_a_broker_restart() {
    let Some(mut broker) = PrivateMosquitto::start() else { return };
    let endpoint = Endpoint::parse(&format!("{}?instance=restart", broker.url())).expect("a URL");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let endpoint = endpoint.clone();
        async move {
            thermostat_example::server::run_until(&endpoint, async {
                let _ = stopped.await;
            })
            .await
        }
    });

    let client = tokio::time::timeout(WAIT, ThermostatClient::connect(&endpoint))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut readings = client.subscribe_temperature_changed().await.expect("subscribe");
    let first = tokio::time::timeout(WAIT, readings.next()).await.expect("a reading in time");
    assert!(matches!(first, Some(Ok(_))), "{first:?}");

    // The server emits every 200 ms: a second away gives it about five emits to fail on.
    tokio::task::block_in_place(|| broker.stop());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!server.is_finished(), "the server ended during the outage: {:?}", server.await);
    tokio::task::block_in_place(|| broker.restart());
    let back = switchboard::chrono::Utc::now();

    // The client reconnects and re-subscribes by itself; the server's readings reach it again.
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no reading within {WAIT:?} of the broker's return");
        match tokio::time::timeout(Duration::from_millis(500), readings.next()).await {
            // Readings taken before the outage may still be queued: wait for a new one.
            Ok(Some(Ok(reading))) if reading.measured_at >= back => break,
            Ok(None) => panic!("the reading stream ended"),
            _ => {}
        }
    }
    assert!(!server.is_finished(), "the server ended after the outage: {:?}", server.await);

    stop.send(()).expect("the server is still running");
    tokio::time::timeout(WAIT, server)
        .await
        .expect("the server stops in time")
        .expect("the server task did not panic")
        .expect("run_until ends without an error");
}
