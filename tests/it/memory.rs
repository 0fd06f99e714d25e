//! The shared suites on the brokered layer over the testkit's in-memory broker, in both of the
//! layer's envelope styles, plus a broker restart and bad input: every body runs with no broker
//! process and no socket.

use std::sync::Arc;

use switchboard_broker::{BrokerOptions, BusConnector};
use switchboard_testkit::memory::MemoryBroker;

use crate::{brokered, conformance, suite};

impl brokered::Outage for Arc<MemoryBroker> {
    fn stop(&mut self) {
        MemoryBroker::stop(self);
    }

    fn start(&mut self) {
        MemoryBroker::start(self);
    }
}

/// One test per body of a transport-independent module, each on a broker of its own made by
/// `broker()` in the module the macro is used in.
macro_rules! memory_tests {
    ($module:ident: $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            switchboard_testkit::init_tracing();
            $module::$name(broker().endpoint("service")).await;
        }
    )*};
}

/// The tests of one profile of the in-memory broker.
macro_rules! memory_profile {
    ($profile:ident) => {
        use super::*;

        fn broker() -> Arc<MemoryBroker> {
            MemoryBroker::$profile(stringify!($profile))
        }

        memory_tests!(
            suite:
            every_type_round_trip,
            signals_arrive_in_order,
            methods,
            call_timeout,
            handler_panic_is_contained,
            properties
        );

        conformance::every_body!(memory_tests);

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_stalled_reader_lags_without_stalling_calls() {
            let endpoint = broker().endpoint("service");
            suite::a_stalled_reader_lags_without_stalling_calls(endpoint, suite::Link::Brokered).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn paused_feedback_reader() {
            let endpoint = broker().endpoint("jobs");
            conformance::paused_feedback_reader(endpoint, suite::Link::Brokered).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn broker_restart_is_survived() {
            switchboard_testkit::init_tracing();
            let mut broker = broker();
            let endpoint = broker.endpoint("restart");
            brokered::broker_restart_is_survived(endpoint, &mut broker).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn incompatible_and_absent_servers() {
            let broker = broker();
            let quick = BrokerOptions::default().connect_timeout(std::time::Duration::from_millis(300));
            let absent = broker.endpoint_with(quick, "absent");
            brokered::incompatible_and_absent_servers(broker.endpoint("service"), absent).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn node_broker_restart_is_survived() {
            switchboard_testkit::init_tracing();
            let mut broker = broker();
            let node = switchboard::node::Node::new("restart", broker.endpoint("node"));
            crate::node::a_broker_restart_is_survived(node, &mut broker).await;
        }

        mod node {
            use switchboard::node::Node;

            fn node() -> Option<(Node, String, ())> {
                let endpoint = super::broker().endpoint("node");
                Some((Node::new("memory-test", endpoint), crate::node::prefix("memory"), ()))
            }

            crate::node::node_tests!(node());
            crate::node::brokered_node_tests!(node());
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn bad_input_is_answered_and_survived() {
            switchboard_testkit::init_tracing();
            let broker = broker();
            let endpoint = broker.endpoint_with(BrokerOptions::default().max_body(4096), "junk");
            let raw = broker.open("raw", &BrokerOptions::default()).await.expect("a raw connection");
            brokered::bad_input_is_answered_and_survived(endpoint, raw, "junk").await;
        }
    };
}

/// Headers, reply subjects and "no responders", as on NATS.
mod headers {
    memory_profile!(nats_like);
}

/// commlib-py's JSON body and inbox queues, as on Redis and AMQP.
mod json_body {
    memory_profile!(redis_like);
}
