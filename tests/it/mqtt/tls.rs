//! MQTT over TLS (`mqtts://`) against a private mosquitto whose certificate comes from a
//! throwaway CA: calls and property reads work when the client trusts that CA through `?ca=`,
//! and a client verifying against the system roots is refused at once with a transport error.

use std::time::{Duration, Instant};

use switchboard::error::TransportErrorKind;
use switchboard_testkit::broker::PrivateMosquitto;
use switchboard_tests::thermostat::ThermostatClient;

use super::endpoint;
use crate::suite::{self, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_broker_with_private_ca() {
    switchboard_testkit::init_tracing();
    let Some(broker) = PrivateMosquitto::start_tls() else { return };
    let url = broker.url();
    assert!(url.starts_with("mqtts://127.0.0.1:") && url.contains("?ca="), "{url}");

    let trusted = endpoint(&url, "tls");
    let (_server, _) = suite::serve_thermostat(&trusted).await;
    let client = within("connect over TLS", ThermostatClient::connect(&trusted))
        .await
        .expect("a client trusting the test CA connects");
    let status = within("getStatus", client.get_status()).await.expect("a method call over TLS");
    assert_eq!(status.celsius, 20.0);
    assert_eq!(within("get setpoint", client.get_setpoint()).await.unwrap(), 21.0);

    // Without `?ca=` the broker's certificate is checked against the system roots and refused.
    let untrusted = endpoint(&format!("mqtts://127.0.0.1:{}", broker.port()), "tls");
    let started = Instant::now();
    let error = within("connect without the CA", ThermostatClient::connect(&untrusted))
        .await
        .expect_err("a client without the test CA must not connect");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    let message = error.to_string();
    // (A machine without system roots refuses earlier, saying so.)
    let no_roots = error.kind() == TransportErrorKind::InvalidAddress
        && message.contains("no system root certificates");
    assert!(
        error.kind() == TransportErrorKind::AccessDenied || no_roots,
        "{:?}: {message}",
        error.kind()
    );
    assert!(message.contains("certificate"), "the error should say why: {message}");
}
