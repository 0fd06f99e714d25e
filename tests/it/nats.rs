//! The shared suites over NATS on the loopback nats-server, plus the brokered layer's faults and
//! bad input, a server killed with SIGKILL, no server at all and discovery (all from
//! [`brokered`]), then what is NATS' own: TLS, credentials and tokens, and how an endpoint
//! prints.

use switchboard::{Endpoint, error::TransportErrorKind};
use switchboard_testkit::broker::{PrivateNats, shared_nats};
use switchboard_tests::thermostat::ThermostatClient;

use crate::{
    brokered::endpoint,
    suite::{self, within},
};

crate::brokered::every_broker_test! {
    shared: shared_nats,
    private: PrivateNats,
    parse: switchboard_transport_nats::parse,
    scheme: "nats",
    discovered: "nats://127.0.0.1:4222",
    needs_password: false,
}

/// TLS with the server's certificate verified against the URL's CA file; the system roots do
/// not trust it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified() {
    let Some(server) = PrivateNats::start_tls() else { return };
    let secure = endpoint(&server.url(), "tls");
    let (_server, _) = suite::serve_thermostat(&secure).await;
    let client = within("connect", ThermostatClient::connect(&secure)).await.expect("connect");
    within("getStatus", client.get_status()).await.expect("a call over TLS");

    let untrusted = endpoint(&format!("nats+tls://127.0.0.1:{}", server.port()), "tls");
    let error = within("connect", ThermostatClient::connect(&untrusted)).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::AccessDenied, "{error}");
    let plain = endpoint(&format!("nats://127.0.0.1:{}", server.port()), "tls");
    let error = within("connect", ThermostatClient::connect(&plain)).await.unwrap_err();
    assert_ne!(error.kind(), TransportErrorKind::IncompatibleInterface, "{error}");
}

/// A user and password, or a token, from the URL; wrong ones are `AccessDenied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_used() {
    let Some(server) = PrivateNats::start_with(&["--user", "alice", "--pass", "s3cret"]) else {
        return;
    };
    let url = |userinfo: &str| format!("nats://{userinfo}@127.0.0.1:{}", server.port());
    let good = endpoint(&url("alice:s3cret"), "creds");
    let (_server, _) = suite::serve_thermostat(&good).await;
    let client = within("connect", ThermostatClient::connect(&good)).await.expect("connect");
    within("getStatus", client.get_status()).await.expect("served");
    assert!(!good.to_string().contains("s3cret"), "{good}");
    let error =
        within("connect", ThermostatClient::connect(&endpoint(&url("alice:wrong"), "creds")))
            .await
            .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::AccessDenied, "{error}");

    let Some(server) = PrivateNats::start_with(&["--auth", "t0ken"]) else { return };
    let good = endpoint(&format!("nats://t0ken@127.0.0.1:{}", server.port()), "token");
    let (_server, _) = suite::serve_thermostat(&good).await;
    let client = within("connect", ThermostatClient::connect(&good)).await.expect("connect");
    within("getStatus", client.get_status()).await.expect("served");
    assert!(!good.to_string().contains("t0ken"), "{good}");
}

/// A NATS endpoint prints as a URL that parses back to the same endpoint. Secrets are never
/// printed: a password shows as `***`, and a token not at all.
#[test]
fn endpoints_print_as_urls_that_parse_back() {
    for url in [
        "nats://127.0.0.1:4222?instance=a",
        "nats://h:4333?heartbeat=250ms&connect_timeout=2s&instance=k",
        "nats+tls://h:4222?ca=/etc/ca.pem&max_body=4096&instance=x",
    ] {
        let endpoint = Endpoint::parse(url).unwrap();
        assert_eq!(endpoint.to_string(), url);
        assert_eq!(Endpoint::parse(&endpoint.to_string()).unwrap().to_string(), url);
    }
    // A user alone would read back as a token: the password's place says it is withheld.
    let secret = Endpoint::parse("nats://alice:s3cret@h?instance=k").unwrap();
    assert_eq!(secret.to_string(), "nats://alice:***@h:4222?instance=k");
    let again = Endpoint::parse(&secret.to_string()).unwrap();
    assert_eq!(again.to_string(), secret.to_string());
    let token = Endpoint::parse("nats://t0ken@h?instance=k").unwrap();
    assert_eq!(token.to_string(), "nats://h:4222?instance=k");
}

mod node {
    use switchboard::{Endpoint, node::Node};
    use switchboard_testkit::broker::shared_nats;

    fn node() -> Option<(Node, String, ())> {
        let server = shared_nats()?;
        let endpoint = Endpoint::parse(&server.url).expect("a valid URL");
        Some((Node::new("nats-test", endpoint), crate::node::prefix("nats"), ()))
    }

    crate::node::node_tests!(node());
    crate::node::brokered_node_tests!(node());

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_broker_is_unreachable() {
        crate::node::no_broker_is_unreachable("nats").await;
    }
    crate::node::node_tests!(@each node(); services_share_their_requests);
}
