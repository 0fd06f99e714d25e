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
            properties,
            a_watch_after_an_update_gets_the_current_value
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

/// The brokered layer puts on a broker only the addresses of the wire description
/// (`switchboard_wire::broker`, which `docs/wire/brokers.md` and every generated reference
/// show), each used as its kind says: queues and inboxes are sent to and consumed, topics
/// published and subscribed. Both reply routes: NATS' subjects and Redis' and AMQP's queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_uses_only_the_addresses_of_the_wire_description() {
    use switchboard_testkit::memory::AddressUse;
    use switchboard_tests::thermostat::ThermostatClient;
    use switchboard_wire::broker::{self as wire, Delivery};

    switchboard_testkit::init_tracing();
    let profiles =
        [(true, MemoryBroker::nats_like("wire-n")), (false, MemoryBroker::redis_like("wire-r"))];
    for (nats_like, broker) in profiles {
        broker.record_addresses();
        let endpoint = broker.endpoint("kitchen");
        let (server, _) = suite::serve_thermostat(&endpoint).await;
        let client = suite::within("connect", ThermostatClient::connect(&endpoint)).await.unwrap();
        let mut readings =
            suite::within("subscribe", client.subscribe_temperature_changed()).await.unwrap();
        suite::within("getStatus", client.get_status()).await.expect("getStatus");
        let at = switchboard::DateTime::UNIX_EPOCH;
        server.emit_temperature_changed(20.5, at).await.expect("emit");
        suite::within("reading", readings.next()).await.expect("a reading").expect("decoded");
        let mut watch = suite::within("watch", client.watch_setpoint()).await.expect("watch");
        suite::within("value", watch.next()).await.expect("a value").expect("decoded");
        suite::within("set", client.set_setpoint(22.5)).await.expect("set");
        let goal = suite::within("preheat", client.preheat(21.0)).await.expect("a goal");
        suite::within("result", goal.result()).await.expect("preheated");
        let wait = std::time::Duration::from_millis(300);
        let discovering = switchboard_core::transport::Discoverer::discover(&endpoint, wait);
        let found = suite::within("discover", discovering).await.expect("discovered");
        assert!(!found.is_empty(), "discovery found the server");
        drop(client);
        server.shutdown().await;

        // Whether `address` is of `kind`: each segment of its template is this instance, this
        // interface, or any one segment for a member, client or request; a subscription's
        // filter may end in `>` where the kind's subjects lie under it (a NATS inbox).
        let of_kind = |kind: &wire::Address, address: &str| {
            let template: Vec<&str> = kind.template.split('.').collect();
            let segments: Vec<&str> = address.split('.').collect();
            let fits = |count: usize| {
                template[..count].iter().zip(&segments).all(|(t, s)| match *t {
                    "{interface}" => *s == "Thermostat",
                    "{instance}" => *s == "kitchen",
                    _ if t.starts_with('{') => !s.is_empty() && *s != "*" && *s != ">",
                    literal => literal == *s,
                })
            };
            match segments.split_last() {
                Some((&">", init)) => init.len() < template.len() && fits(init.len()),
                _ => segments.len() == template.len() && fits(template.len()),
            }
        };
        for (how, address) in broker.recorded_addresses() {
            if how == AddressUse::Subscribe && address == wire::ALL_PRESENCE {
                continue;
            }
            let kinds: Vec<&wire::Address> =
                wire::ADDRESSES.iter().filter(|kind| of_kind(kind, &address)).collect();
            assert!(!kinds.is_empty(), "{how:?} {address}: no address of the description");
            let allowed = |kind: &&wire::Address| match (how, kind.delivery) {
                (AddressUse::Publish | AddressUse::Subscribe, Delivery::Topic) => true,
                (AddressUse::Send | AddressUse::Consume, Delivery::Queue) => true,
                // Answers and events are sent to an inbox; a queue broker's client consumes
                // it, a NATS client subscribes to every subject under it.
                (AddressUse::Send, Delivery::Inbox) => true,
                (AddressUse::Consume, Delivery::Inbox) => !nats_like,
                (AddressUse::Subscribe, Delivery::Inbox) => nats_like && address.ends_with('>'),
                _ => false,
            };
            assert!(
                kinds.iter().any(allowed),
                "{how:?} {address}: the description makes it {:?}",
                kinds.iter().map(|kind| (kind.key, kind.delivery)).collect::<Vec<_>>()
            );
        }
    }
}

/// The table of names in `docs/wire/brokers.md` is the wire description: the same templates,
/// each of the same kind, and nothing else.
#[test]
fn docs_wire_brokers_lists_the_addresses_of_the_wire_description() {
    use switchboard_wire::broker as wire;

    let doc = include_str!("../../docs/wire/brokers.md");
    let names = doc.split("\n## Names\n").nth(1).expect("a Names section");
    let names = names.split("\n## ").next().unwrap();
    let rows: Vec<(String, String)> = names
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| what "))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            assert_eq!(cells.len(), 3, "{line}");
            (cells[1].trim_matches('`').to_owned(), cells[2].trim_end_matches(" |").to_owned())
        })
        .collect();
    assert_eq!(rows.len(), wire::ADDRESSES.len(), "{rows:?}");
    for address in wire::ADDRESSES {
        let (_, kind) = rows
            .iter()
            .find(|(template, _)| template == address.template)
            .unwrap_or_else(|| panic!("docs/wire/brokers.md lacks {}", address.template));
        assert!(kind.starts_with(address.delivery.word()), "{}: {kind}", address.template);
    }
}
