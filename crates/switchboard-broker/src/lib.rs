//! switchboard's brokered layer: one transport over any message broker.
//!
//! A broker adapter implements [`Bus`] (publish, send to a work queue, subscribe with wildcards,
//! consume, and report its link) and a [`BusConnector`] that opens one bus connection per server
//! or client. Everything else is done here, once for every broker:
//!
//! - the subject layout (`{Interface}.{instance}.method.{m}`, …; [`layout`]);
//! - the envelope, in message headers or in commlib-py's JSON body ([`envelope`]);
//! - correlation of answers with requests, and peers that are clients, not requests;
//! - presence: servers and clients announce themselves every heartbeat, clients check the
//!   server is compatible before they say they are connected, and a silent server fails what
//!   waits for it at once;
//! - discovery over presence ([`BrokerAddress::discover`]);
//! - re-subscribing after the link comes back, and restoring the core's subscriptions;
//! - for adapters whose client library does not reconnect by itself, a link that watches its
//!   connection and reconnects with the core's backoff ([`link`]);
//! - bounded bodies, error answers to bad requests, and rate-limited logs of junk.
//!
//! [`BrokerAddress`] is what a broker URL parses into: it implements the core's `Connector` and
//! `Binder`, so the facade serves and connects on it like on any other transport.
//! `docs/wire/brokers.md` specifies the wire.

mod address;
mod bus;
mod client;
pub mod envelope;
pub mod layout;
pub mod link;
mod log_limit;
mod node;
mod node_action;
mod options;
mod outbox;
mod presence;
pub mod replica_ledger;
mod server;
mod versions;

pub use address::BrokerAddress;
pub use bus::{
    Bus, BusConnector, BusMessage, BusProfile, BusStatus, EnvelopeStyle, Headers, LinkState,
    ReplyRoute, Sink, SubscriptionId, filter_matches,
};
pub use options::{
    BrokerOptions, BrokerUrl, BrokerUrlError, DEFAULT_HEARTBEAT, DEFAULT_MAX_BODY, Replicas,
    with_query,
};
pub use presence::DiscoveryFilter;
pub use replica_ledger::ReplicaLedger;
pub use switchboard_core::transport::ServiceInfo;
