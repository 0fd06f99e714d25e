//! A server's start and end on a broker: waiting for a broker that is not up yet (or not), and a
//! shutdown whose farewell has left the process before `shutdown().await` returns, so nothing of
//! a stopped server stays retained.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use switchboard::{
    Endpoint,
    error::{TransportError, TransportErrorKind},
    transport::mqtt::MqttOptions,
};
use switchboard_testkit::broker::{PrivateMosquitto, shared_mosquitto};

use switchboard_testkit::ChildProcess;
use switchboard_tests::thermostat::{ThermostatClient, ThermostatServer};

use super::{
    endpoint,
    raw::{self, Raw},
    text, unique,
};
use crate::suite::{self, within};

/// How long an observer waits for messages that must not come.
const QUIET: Duration = Duration::from_millis(300);

/// A runtime for the observing MQTT clients, which outlives the servers' runtimes.
fn observer_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("an observer runtime")
}

/// The retained messages a fresh subscriber gets for everything under `instance`.
async fn retained_under(url: &str, instance: &str) -> Vec<Publish> {
    let mut fresh = Raw::connect(url, &format!("fresh-{instance}")).await;
    for filter in [format!("+/{instance}/#"), format!("+/+/{instance}/#")] {
        fresh.subscribe_keeping(&filter).await;
    }
    let retained = fresh.drain(QUIET).await.into_iter().filter(|p| p.retain).collect();
    let _ = fresh.client.disconnect().await;
    retained
}

/// Clears what a test's server left on the shared broker: anything retained under its instance,
/// and its offline presence (which a farewell leaves retained on purpose).
async fn tidy(url: &str, instance: &str, presence: &str) {
    raw::clear_retained(url, instance).await;
    let mut raw = Raw::connect(url, &format!("tidy-{instance}")).await;
    raw.publish(presence, true, Bytes::new(), PublishProperties::default()).await;
    raw.flush().await;
}

/// `shutdown().await` returns only once the farewell has left the process: when the runtime is
/// dropped right after it (as when `main` returns), a fresh subscriber finds nothing retained
/// under the instance, and the server's presence turned offline exactly once (the farewell, with
/// no will after it). Twenty times in a row, so a race shows.
#[test]
fn shutdown_returns_after_the_farewell_left() {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let observer = observer_runtime();
    for round in 0..20 {
        let instance = unique("farewell");
        let client_id = format!("{instance}-server");
        let presence = format!("client/{client_id}/online");
        let mut watcher = observer.block_on(async {
            let mut watcher = Raw::connect(&broker.url, &format!("watch-{instance}")).await;
            watcher.subscribe(&presence).await;
            watcher
        });

        let server_runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a server runtime");
        let url = format!("{}?client_id={client_id}", broker.url);
        let took = server_runtime.block_on(async {
            let (server, _) = suite::serve_thermostat(&endpoint(&url, &instance)).await;
            let started = std::time::Instant::now();
            server.shutdown().await;
            started.elapsed()
        });
        drop(server_runtime);

        let (offline, retained) = observer.block_on(async {
            let states: Vec<String> =
                watcher.drain(QUIET).await.iter().filter(|p| !p.retain).map(text).collect();
            let offline = states.iter().filter(|s| s.contains("false")).count();
            (offline, retained_under(&broker.url, &instance).await)
        });
        let leftovers: Vec<String> =
            retained.iter().map(|p| String::from_utf8_lossy(&p.topic).into_owned()).collect();
        // Tidied before checking, so that a failing round leaves the shared broker clean.
        observer.block_on(tidy(&broker.url, &instance, &presence));
        assert!(
            leftovers.is_empty(),
            "round {round}: still retained after shutdown: {leftovers:?}"
        );
        assert_eq!(offline, 1, "round {round}: the presence turned offline {offline} times");
        // The broker answers at once; a shutdown that ran into its bound never saw it close.
        assert!(took < Duration::from_secs(1), "round {round}: the shutdown took {took:?}");
    }
}

/// The same through a process of its own, stopped with SIGTERM as systemd stops a service: the
/// test server (which stops on `switchboard::server::shutdown_signal`) exits 0 and leaves nothing
/// retained under its instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_by_sigterm_leaves_nothing_retained() {
    switchboard_testkit::init_tracing();
    let Some(broker) = shared_mosquitto() else { return };
    let server_binary = env!("CARGO_BIN_EXE_switchboard-test-server");
    for round in 0..3 {
        let instance = unique("sigterm");
        let client_id = format!("{instance}-server");
        let url = format!("{}?client_id={client_id}&instance={instance}", broker.url);
        let mut server = ChildProcess::spawn(server_binary, &[&url]);
        let client =
            within("connect", ThermostatClient::connect(&endpoint(&broker.url, &instance)))
                .await
                .expect("the server announces itself");
        within("getStatus", client.get_status()).await.expect("the server answers");
        client.close();

        let exited = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(5)))
            .await
            .expect("waiting for the server");
        let retained = retained_under(&broker.url, &instance).await;
        let leftovers: Vec<String> =
            retained.iter().map(|p| String::from_utf8_lossy(&p.topic).into_owned()).collect();
        tidy(&broker.url, &instance, &format!("client/{client_id}/online")).await;
        assert!(
            exited.is_some_and(|status| status.success()),
            "round {round}: the server did not exit cleanly on SIGTERM: {exited:?}"
        );
        assert!(leftovers.is_empty(), "round {round}: still retained after SIGTERM: {leftovers:?}");
    }
}

/// Serves a test thermostat, however that ends.
async fn serve(endpoint: Endpoint) -> Result<ThermostatServer, TransportError> {
    let handler = suite::TestThermostat::default();
    ThermostatServer::serve(&endpoint, handler, suite::thermostat_properties()).await
}

/// An endpoint on `url` whose MQTT options `adjust` changed.
fn with_options(url: &str, instance: &str, adjust: impl FnOnce(&mut MqttOptions)) -> Endpoint {
    let parsed = switchboard::transport::mqtt::MqttEndpoint::parse(url).expect("a valid MQTT URL");
    let mut options = parsed.endpoint.options().clone();
    adjust(&mut options);
    Endpoint::mqtt(parsed.endpoint.with_options(options))
        .with_instance(instance)
        .expect("a valid instance")
}

/// A server started before its broker waits for it, by default, and serves once it is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_waits_for_a_broker_that_starts_later() {
    switchboard_testkit::init_tracing();
    let Some(mut broker) = PrivateMosquitto::stopped() else { return };
    let endpoint = endpoint(&broker.url(), "late-broker");
    let serving = tokio::spawn(serve(endpoint.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!serving.is_finished(), "serve gave up on the broker: {:?}", serving.await);

    tokio::task::block_in_place(|| broker.restart());
    let server = within("serve after the broker started", serving)
        .await
        .expect("the serving task")
        .expect("serve once the broker is up");
    let client = within("connect", ThermostatClient::connect(&endpoint)).await.expect("connect");
    within("getStatus", client.get_status()).await.expect("the late server answers");
    within("shutdown", server.shutdown()).await;
}

/// A bounded wait ends with the connection error, saying how long it waited; a zero wait (for
/// tools) fails at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_wait_for_the_broker_gives_up() {
    let closed = switchboard_testkit::broker::ClosedPort::new();
    let port = closed.port();
    let url = format!("mqtt://127.0.0.1:{port}");
    for (wait, gave_up) in [(Duration::ZERO, false), (Duration::from_millis(400), true)] {
        let endpoint = with_options(&url, "nobody", |o| o.wait_for_broker = Some(wait));
        let started = std::time::Instant::now();
        let error = within("serve", serve(endpoint)).await.unwrap_err();
        let took = started.elapsed();
        // An unreachable broker is `Unreachable`, never "not found" (docs/shell.md, exit 6).
        assert_eq!(error.kind(), TransportErrorKind::Unreachable, "{error}");
        assert!(error.message().contains(&format!("127.0.0.1:{port}")), "{error}");
        assert_eq!(error.message().contains("gave up after"), gave_up, "{error}");
        assert!(took >= wait, "a wait of {wait:?} ended after {took:?}");
        assert!(took < wait + Duration::from_secs(3), "a wait of {wait:?} took {took:?}");
    }
}

/// A `serve` abandoned while it waits (its future dropped, as on a signal) stops waiting: the
/// broker that starts afterwards never sees that server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_serve_stops_waiting() {
    let Some(mut broker) = PrivateMosquitto::stopped() else { return };
    let endpoint = endpoint(&broker.url(), "abandoned");
    let serving = tokio::spawn(serve(endpoint.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    serving.abort();
    assert!(serving.await.is_err_and(|e| e.is_cancelled()), "serve ended by itself");

    tokio::task::block_in_place(|| broker.restart());
    // Longer than the longest backoff (2 s), so a server still retrying would have connected.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let quick = with_options(&broker.url(), "abandoned", |o| {
        o.discovery_timeout = Duration::from_millis(500)
    });
    let error = within("connect", ThermostatClient::connect(&quick)).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::NotFound, "a server announced itself: {error}");
}
