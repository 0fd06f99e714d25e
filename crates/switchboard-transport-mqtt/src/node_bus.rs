//! Nodes over MQTT (`Naming::Node`, the API without codegen): one MQTT connection as a
//! brokered-layer [`Bus`], in commlib-py's topic notation, so that the layer's node module
//! carries RPCs and topics over MQTT as it does over Redis and AMQP.
//!
//! commlib-py maps dotted names to MQTT topics by turning `.` into `/` (`demo.add_two_ints` is
//! published on `demo/add_two_ints`); in a subscription `*` becomes `+` and a last wildcard
//! `#`. A "queue" here is a topic: an RPC's requests are published (at `MqttOptions::rpc_qos`)
//! to its topic, which its service subscribes to. Answers come back on reply subjects
//! ([`ReplyRoute::Subjects`]): a call names `_sb.inbox.<client>.<request>` as its reply
//! address, which a commlib-py service publishes to as `_sb/inbox/<client>/<request>` (it only
//! turns dots into slashes), and the client subscribes to `_sb/inbox/<client>/#` once, when it
//! connects. commlib-py's own client subscribes a fresh `rpc-<32 hex>` before every call and
//! unsubscribes after it; doing the same cost a SUBSCRIBE round trip per call, and with a broker
//! that leaves Nagle on (mosquitto's default) its UNSUBACK followed by the next call's SUBACK
//! held calls for tens of milliseconds behind delayed ACKs. Messages on topics go at QoS 0, as
//! commlib-py sends them.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use rumqttc::v5::mqttbytes::v5::Publish;
use switchboard_broker::{
    BrokerOptions, Bus, BusConnector, BusMessage, BusProfile, EnvelopeStyle, LinkState, ReplyRoute,
    Sink, SubscriptionId,
};
use switchboard_core::{TransportError, sync::lock, transport::BoxFuture};
use tokio::sync::watch;

use crate::{
    MqttEndpoint,
    conn::{Conn, FirstConnect, Handler, Route, json_properties},
    random_client_id,
};

/// Opens node connections on an MQTT endpoint.
#[derive(Debug)]
pub(crate) struct NodeBusConnector(pub(crate) MqttEndpoint);

impl std::fmt::Display for NodeBusConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl BusConnector for NodeBusConnector {
    fn open<'a>(
        &'a self,
        _name: &'a str,
        _options: &'a BrokerOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Bus>, TransportError>> {
        Box::pin(async move {
            let client_id = random_client_id();
            let shared = Arc::new(Shared {
                routes: Mutex::new(HashMap::new()),
                subscriptions: Mutex::new(HashMap::new()),
                next: AtomicU64::new(1),
                link: watch::Sender::new(LinkState::Closed),
                generation: AtomicU64::new(0),
                conn: Mutex::new(Weak::new()),
            });
            let will = format!("client/{client_id}/online");
            let handler = Arc::new(Events(Arc::downgrade(&shared)));
            let conn =
                Conn::start(&self.0, client_id, will, handler, Vec::new(), FirstConnect::FailFast)
                    .await?;
            *lock(&shared.conn) = Arc::downgrade(&conn);
            if conn.is_connected() && shared.generation.load(Ordering::Acquire) == 0 {
                shared.up();
            }
            Ok(Arc::new(NodeBus { profile: profile(), conn, shared }) as Arc<dyn Bus>)
        })
    }
}

fn profile() -> BusProfile {
    BusProfile::new("mqtt", EnvelopeStyle::JsonBody, ReplyRoute::Subjects, false)
        .dropping_unconsumed()
}

/// One MQTT connection as a bus.
struct NodeBus {
    profile: BusProfile,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NodeBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBus").field("conn", &self.conn).finish_non_exhaustive()
    }
}

/// What the connection's events and the bus share.
struct Shared {
    /// The sink of each MQTT subscription, by its route id.
    routes: Mutex<HashMap<u64, Sink>>,
    /// The MQTT subscriptions (route id and filter) of each of the bus's subscriptions.
    subscriptions: Mutex<HashMap<u64, Vec<(u64, String)>>>,
    next: AtomicU64,
    link: watch::Sender<LinkState>,
    generation: AtomicU64,
    conn: Mutex<Weak<Conn>>,
}

impl Shared {
    fn up(&self) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.link.send_replace(LinkState::Up { generation });
    }
}

/// The connection's events, for the bus.
struct Events(Weak<Shared>);

impl Handler for Events {
    fn on_connected(&self, _conn: &Arc<Conn>, _first: bool) {
        if let Some(shared) = self.0.upgrade() {
            shared.up();
        }
    }

    fn on_publish(&self, _conn: &Arc<Conn>, route: &Route, publish: Publish) {
        let (Route::Bus(id), Some(shared)) = (route, self.0.upgrade()) else { return };
        let sink = lock(&shared.routes).get(id).cloned();
        let (Some(sink), Ok(topic)) = (sink, std::str::from_utf8(&publish.topic)) else {
            return;
        };
        sink(&dotted(topic), BusMessage::new(publish.payload));
    }

    fn on_lost(&self, conn: &Arc<Conn>, error: TransportError) {
        let Some(shared) = self.0.upgrade() else { return };
        // The layer subscribes anew once the link is back; the connection must not as well.
        lock(&shared.routes).clear();
        for (_, filter) in lock(&shared.subscriptions).drain().flat_map(|(_, all)| all) {
            conn.unsubscribe(&filter);
        }
        let generation = shared.generation.load(Ordering::Acquire);
        shared.link.send_replace(LinkState::Down { generation, error });
    }
}

impl NodeBus {
    /// Subscribes `filters` (MQTT filters), all to `sink`, as one subscription of the bus.
    async fn add(
        &self,
        filters: Vec<String>,
        sink: Sink,
    ) -> Result<SubscriptionId, TransportError> {
        if !self.conn.is_connected() {
            return Err(self.conn.not_connected());
        }
        let id = self.shared.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.subscriptions).insert(id, Vec::new());
        for filter in filters {
            let route = self.shared.next.fetch_add(1, Ordering::Relaxed);
            lock(&self.shared.routes).insert(route, sink.clone());
            if let Some(all) = lock(&self.shared.subscriptions).get_mut(&id) {
                all.push((route, filter.clone()));
            }
            if let Err(error) = self.conn.subscribe_confirmed(&filter, Route::Bus(route)).await {
                self.unsubscribe(SubscriptionId(id));
                return Err(error);
            }
        }
        Ok(SubscriptionId(id))
    }
}

impl Bus for NodeBus {
    fn profile(&self) -> &BusProfile {
        &self.profile
    }

    fn publish<'a>(
        &'a self,
        topic: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        let sent = self.conn.publish_now_qos(
            slashed(topic),
            crate::topics::qos(switchboard_wire::mqtt::NODE_QOS),
            false,
            message.body,
            json_properties(),
        );
        Box::pin(std::future::ready(sent))
    }

    fn send<'a>(
        &'a self,
        queue: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        let sent = if self.conn.is_connected() {
            self.conn.publish_rpc(slashed(queue), message.body, json_properties())
        } else {
            Err(self.conn.not_connected())
        };
        Box::pin(std::future::ready(sent))
    }

    fn subscribe<'a>(
        &'a self,
        filter: &'a str,
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>> {
        Box::pin(self.add(vec![mqtt_filter(filter)], sink))
    }

    fn consume<'a>(
        &'a self,
        queues: &'a [String],
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>> {
        Box::pin(self.add(queues.iter().map(|queue| slashed(queue)).collect(), sink))
    }

    fn unsubscribe(&self, id: SubscriptionId) {
        let removed = lock(&self.shared.subscriptions).remove(&id.0).unwrap_or_default();
        for (route, filter) in removed {
            lock(&self.shared.routes).remove(&route);
            self.conn.unsubscribe(&filter);
        }
    }

    fn link(&self) -> watch::Receiver<LinkState> {
        self.shared.link.subscribe()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.shared.link.send_replace(LinkState::Closed);
            self.conn.close(Vec::new()).await;
        })
    }
}

impl Drop for NodeBus {
    fn drop(&mut self) {
        self.conn.start_close(Vec::new());
    }
}

/// A dotted name as commlib-py publishes it on MQTT: `.` becomes `/`.
fn slashed(name: &str) -> String {
    name.replace('.', "/")
}

/// An MQTT topic as a dotted name.
fn dotted(topic: &str) -> String {
    topic.replace('/', ".")
}

/// The layer's filter as an MQTT filter: `*` becomes `+`, `>` becomes `#`, `.` becomes `/`.
fn mqtt_filter(filter: &str) -> String {
    filter
        .split('.')
        .map(|segment| match segment {
            "*" => "+",
            ">" => "#",
            literal => literal,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commlib_notation() {
        assert_eq!(slashed("demo.add_two_ints"), "demo/add_two_ints");
        assert_eq!(dotted("sensors/sonar/front"), "sensors.sonar.front");
        assert_eq!(mqtt_filter("sensors.>"), "sensors/#");
        assert_eq!(mqtt_filter("sensors.*.temp"), "sensors/+/temp");
        assert_eq!(mqtt_filter("rpc-0123"), "rpc-0123");
    }
}
