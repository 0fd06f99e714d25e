//! The shared suites over Redis on the loopback redis-server, plus the brokered layer's faults
//! and bad input, a server killed with SIGKILL, no server at all and discovery (all from
//! [`brokered`]), then what is Redis' own: TLS, credentials and how an endpoint prints.

use switchboard::{Endpoint, error::TransportErrorKind};
use switchboard_testkit::broker::{PrivateRedis, shared_redis};
use switchboard_tests::thermostat::ThermostatClient;

use crate::{
    brokered::endpoint,
    suite::{self, within},
};

crate::brokered::every_broker_test! {
    shared: shared_redis,
    private: PrivateRedis,
    parse: switchboard_transport_redis::parse,
    scheme: "redis",
    discovered: "redis://127.0.0.1:6379",
    needs_password: false,
}

/// `rediss://`: TLS with the server's certificate verified against the URL's CA file; the
/// system roots do not trust it, and a plain connection to the TLS port does not get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified() {
    let Some(server) = PrivateRedis::start_tls() else { return };
    let secure = endpoint(&server.url(), "tls");
    assert_eq!(secure.to_string(), format!("{}&instance=tls", server.url()));
    let (_server, _) = suite::serve_thermostat(&secure).await;
    let client = within("connect", ThermostatClient::connect(&secure)).await.expect("connect");
    within("getStatus", client.get_status()).await.expect("a call over TLS");

    let untrusted = endpoint(&format!("rediss://127.0.0.1:{}", server.port()), "tls");
    let error = within("connect", ThermostatClient::connect(&untrusted)).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::AccessDenied, "{error}");
    let plain = endpoint(&format!("redis://127.0.0.1:{}", server.port()), "tls");
    let error = within("connect", ThermostatClient::connect(&plain)).await.unwrap_err();
    assert_ne!(error.kind(), TransportErrorKind::IncompatibleInterface, "{error}");
}

/// An ACL user and password from the URL; a wrong password is `AccessDenied`, and the password
/// is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_used() {
    let acl = ["--user", "alice", "on", ">s3cret", "~*", "&*", "+@all", "--user", "default", "off"];
    let Some(server) = PrivateRedis::start_with(&acl) else { return };
    let url = |userinfo: &str| format!("redis://{userinfo}@127.0.0.1:{}", server.port());
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
}

/// A Redis endpoint prints as a URL that parses back to the same endpoint, without its
/// password.
#[test]
fn endpoints_print_as_urls_that_parse_back() {
    for url in [
        "redis://127.0.0.1:6379?instance=a",
        "redis://h:6380?heartbeat=250ms&connect_timeout=2s&instance=k",
        "redis://h:6379?max_body=4096&instance=x",
    ] {
        let endpoint = Endpoint::parse(url).unwrap();
        assert_eq!(endpoint.to_string(), url);
        assert_eq!(Endpoint::parse(&endpoint.to_string()).unwrap().to_string(), url);
    }
    let secret = Endpoint::parse("redis://alice:s3cret@h?instance=k").unwrap();
    assert_eq!(secret.to_string(), "redis://alice@h:6379?instance=k");
}

mod node {
    use switchboard::{Endpoint, node::Node};
    use switchboard_testkit::broker::shared_redis;

    fn node() -> Option<(Node, String, ())> {
        let server = shared_redis()?;
        let endpoint = Endpoint::parse(&server.url).expect("a valid URL");
        Some((Node::new("redis-test", endpoint), crate::node::prefix("redis"), ()))
    }

    crate::node::node_tests!(node());
    crate::node::brokered_node_tests!(node());

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_broker_is_unreachable() {
        crate::node::no_broker_is_unreachable("redis").await;
    }
    crate::node::node_tests!(@each node(); services_share_their_requests);
}
