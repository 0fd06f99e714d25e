//! Discovery on MQTT: the services whose interface info is retained on the broker, less those
//! whose presence topic says they are offline.
//!
//! Every server publishes its interface info retained on `{interface}/{instance}/interface`
//! (StingerIPC's default layout) and names its presence topic there (`connection_topic`). One
//! connection, with the endpoint's credentials and TLS, reads both and leaves.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::Publish;
use serde_json::Value;
use switchboard_core::{
    TransportError,
    sync::lock,
    transport::{BoxFuture, Discoverer, ServiceInfo},
};
use tokio::sync::mpsc;

use crate::{
    conn::{Conn, FirstConnect, Handler, Route},
    endpoint::MqttEndpoint,
    presence_state, presence_topic, random_client_id,
    topics::{Kind, in_default_layout},
};

/// Once the subscriptions are confirmed the retained messages come at once: a pause this long
/// means they are all in.
const QUIET: Duration = Duration::from_millis(300);

impl Discoverer for MqttEndpoint {
    /// Reads the retained interface info and presence on the broker for at most `wait`.
    fn discover(&self, wait: Duration) -> BoxFuture<'_, Result<Vec<ServiceInfo>, TransportError>> {
        Box::pin(async move {
            let client_id = format!("switchboard-discover-{}", random_client_id());
            let (arrivals, mut arrived) = mpsc::unbounded_channel();
            let listener = Arc::new(Listener { arrivals: Mutex::new(Some(arrivals)) });
            let initial = vec![
                // Where every server's interface info and presence are retained.
                (in_default_layout(Kind::InterfaceDiscovery, "+"), Route::Interface),
                (in_default_layout(Kind::Lwt, "+"), Route::Presence),
            ];
            let will = in_default_layout(Kind::Lwt, &client_id);
            let conn = Conn::start(
                self,
                client_id,
                will,
                listener.clone(),
                initial,
                FirstConnect::FailFast,
            )
            .await?;
            let mut infos = BTreeMap::new();
            let mut presence = HashMap::new();
            let hard = tokio::time::Instant::now() + wait;
            loop {
                let until = (tokio::time::Instant::now() + QUIET).min(hard);
                let Ok(Some((route, topic, payload))) =
                    tokio::time::timeout_at(until, arrived.recv()).await
                else {
                    break;
                };
                if route == Route::Presence {
                    presence.insert(topic, presence_state(&payload));
                } else if let Ok(info) = serde_json::from_slice::<Value>(&payload) {
                    infos.insert(topic, info);
                }
            }
            lock(&listener.arrivals).take();
            conn.close(Vec::new()).await;
            let mut found: Vec<ServiceInfo> = infos
                .into_iter()
                .filter(|(_, info)| {
                    // A server that died without clearing its info: its presence says so.
                    presence_topic(info).and_then(|t| presence.get(t).copied().flatten())
                        != Some(false)
                })
                .filter_map(|(topic, info)| self.service(&topic, &info))
                .collect();
            found.sort_by(|a, b| (&a.interface, &a.instance).cmp(&(&b.interface, &b.instance)));
            found.dedup_by(|a, b| a.interface == b.interface && a.instance == b.instance);
            Ok(found)
        })
    }
}

impl MqttEndpoint {
    /// The service an interface info on `topic` announces, with a URL that reaches it.
    fn service(&self, topic: &str, info: &Value) -> Option<ServiceInfo> {
        let mut levels = topic.split('/');
        let (from_topic, instance_from_topic) = (levels.next()?, levels.next()?);
        let text = |key: &str| info.get(key).and_then(Value::as_str);
        let interface = text("interface_name").unwrap_or(from_topic);
        let instance = text("instance").unwrap_or(instance_from_topic);
        let url = self.to_string();
        let separator = if url.contains('?') { '&' } else { '?' };
        let mut service =
            ServiceInfo::new(interface, instance, format!("{url}{separator}instance={instance}"));
        if let Some(title) = text("title") {
            service.title = title.to_owned();
        }
        service.version = text("version").unwrap_or_default().to_owned();
        service.hash = text("hash").map(str::to_owned);
        Some(service)
    }
}

/// Hands what the subscriptions bring to the discovering task, until it has finished.
struct Listener {
    arrivals: Mutex<Option<mpsc::UnboundedSender<(Route, String, Bytes)>>>,
}

impl Handler for Listener {
    fn on_connected(&self, _: &Arc<Conn>, _: bool) {}

    fn on_publish(&self, _: &Arc<Conn>, route: &Route, publish: Publish) {
        if publish.payload.is_empty() {
            return;
        }
        if let Some(arrivals) = lock(&self.arrivals).as_ref() {
            let topic = String::from_utf8_lossy(&publish.topic).into_owned();
            let _ = arrivals.send((route.clone(), topic, publish.payload));
        }
    }

    fn on_lost(&self, _: &Arc<Conn>, _: TransportError) {}
}
