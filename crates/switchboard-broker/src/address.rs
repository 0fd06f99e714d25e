//! [`BrokerAddress`]: a broker plus the layer's options, which is what a broker URL parses into.
//! It implements the core's `Connector` and `Binder` over any [`BusConnector`], and discovery.

use std::{collections::BTreeMap, fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use switchboard_core::{
    TransportError,
    transport::{
        Binder, BoundedWaits, BoxFuture, ClientInbox, ClientTransport, Connector, Discoverer,
        Naming, ServerInbox, ServerTransport, ServiceInfo, ServiceTarget, TransportAddress,
    },
};

use crate::{
    bus::{Bus, BusConnector, BusMessage},
    client, layout, node,
    options::{BrokerOptions, with_query},
    presence::{DiscoveryFilter, Presence, Role},
    server,
};

/// A broker and the layer's options: where brokered servers and clients meet.
///
/// Each server and client opened on it gets its own bus connection.
#[derive(Debug, Clone)]
pub struct BrokerAddress {
    connector: Arc<dyn BusConnector>,
    options: BrokerOptions,
}

impl BrokerAddress {
    /// An address on the broker `connector` reaches, with default options.
    pub fn new(connector: Arc<dyn BusConnector>) -> Self {
        BrokerAddress { connector, options: BrokerOptions::default() }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: BrokerOptions) -> Self {
        self.options = options;
        self
    }

    /// The options.
    pub fn options(&self) -> &BrokerOptions {
        &self.options
    }

    pub(crate) fn connector(&self) -> &dyn BusConnector {
        &*self.connector
    }

    /// Opens a bus connection of its own to this broker, outside any server or client: for
    /// tools and tests that speak the wire themselves.
    pub async fn open(&self, name: &str) -> Result<Arc<dyn Bus>, TransportError> {
        self.connector.open(name, &self.options).await
    }

    /// Asks every server matching `filter` to announce itself and collects the announcements
    /// that arrive within `wait`, one per interface and instance, sorted.
    pub async fn discover(
        &self,
        filter: DiscoveryFilter,
        wait: Duration,
    ) -> Result<Vec<ServiceInfo>, TransportError> {
        let name = format!("switchboard-discover-{}", client::random_id());
        let bus = self.connector.open(&name, &self.options).await?;
        let (found, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
        let sink = Arc::new(move |_: &str, message: BusMessage| {
            if let Ok(presence) = serde_json::from_slice::<Presence>(&message.body) {
                let _ = found.send(presence);
            }
        });
        let result = async {
            bus.subscribe(layout::ALL_PRESENCE, sink).await?;
            let probe = serde_json::to_vec(&filter).unwrap_or_default();
            bus.publish(layout::DISCOVER, BusMessage::new(Bytes::from(probe))).await?;
            let mut services = BTreeMap::new();
            let deadline = tokio::time::Instant::now() + wait;
            while let Ok(Some(presence)) = tokio::time::timeout_at(deadline, arrivals.recv()).await
            {
                if presence.role != Role::Server || !filter.matches(&presence.hello) {
                    continue;
                }
                let key = (presence.hello.interface.clone(), presence.hello.instance.clone());
                if !presence.online {
                    services.remove(&key);
                    continue;
                }
                let address = self.with_instance(&presence.hello.instance);
                let mut info =
                    ServiceInfo::new(presence.hello.interface, presence.hello.instance, address);
                if !presence.title.is_empty() {
                    info.title = presence.title;
                }
                info.version = presence.hello.version;
                info.hash = presence.hello.hash;
                services.insert(key, info);
            }
            Ok(services.into_values().collect())
        }
        .await;
        bus.close().await;
        result
    }

    /// This address's URL with `instance`.
    fn with_instance(&self, instance: &str) -> String {
        let mut query = self.options.query();
        query.push(("instance", instance.to_owned()));
        with_query(self.connector.to_string(), &query)
    }
}

impl Discoverer for BrokerAddress {
    fn discover(&self, wait: Duration) -> BoxFuture<'_, Result<Vec<ServiceInfo>, TransportError>> {
        Box::pin(BrokerAddress::discover(self, DiscoveryFilter::any(), wait))
    }
}

/// Every wait of the layer is [`BrokerOptions::connect_timeout`]: the adapter's reaching the
/// broker, and a client's waiting for its server's announcement.
impl BoundedWaits for BrokerAddress {
    fn with_waits_within(&self, limit: Duration) -> Arc<dyn TransportAddress> {
        let mut bounded = self.clone();
        bounded.options.connect_timeout = bounded.options.connect_timeout.min(limit);
        Arc::new(bounded)
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&with_query(self.connector.to_string(), &self.options.query()))
    }
}

impl Connector for BrokerAddress {
    fn connect(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ClientInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ClientTransport>, TransportError>> {
        match target.naming {
            Naming::Node => Box::pin(node::connect(self, target, inbox)),
            _ => Box::pin(client::connect(self, target, inbox)),
        }
    }
}

impl Binder for BrokerAddress {
    fn bind(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ServerInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ServerTransport>, TransportError>> {
        match target.naming {
            Naming::Node => Box::pin(node::bind(self, target, inbox)),
            _ => Box::pin(server::bind(self, target, inbox)),
        }
    }
}
