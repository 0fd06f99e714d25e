//! The serving half: requests and updates in from wildcard subscriptions, replies out to each
//! request's response topic, signals and retained property values out through the broker, plus
//! discovery and presence.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use switchboard_core::{
    ErrorCode, InterfaceDescriptor, PeerCredentials, PeerId, RemoteError, TransportError,
    TransportErrorKind,
    message::{ClientMessage, Name, ServerMessage},
    transport::{Fanout, Peer, PeerLink, ServerInbox, ServerTransport},
};

use crate::{
    conn::{Conn, Handler, JSON, Route, clean, json_properties},
    topics::{Kind, Topics},
    wire::{self, ERROR_NAME, PROPERTY_VERSION, RETURN_CODE},
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The state a server's connection task and its transport handle share.
pub(crate) struct ServerShared {
    pub(crate) conn: OnceLock<Arc<Conn>>,
    pub(crate) topics: Topics,
    pub(crate) interface: Arc<InterfaceDescriptor>,
    pub(crate) instance: String,
    pub(crate) params: BTreeMap<String, String>,
    pub(crate) inbox: Arc<dyn ServerInbox>,
    /// The last published value and version of each property, republished after reconnects.
    values: Mutex<BTreeMap<Name, (u64, Bytes)>>,
    next_request: AtomicU64,
}

impl ServerShared {
    pub(crate) fn new(
        topics: Topics,
        interface: Arc<InterfaceDescriptor>,
        instance: String,
        params: BTreeMap<String, String>,
        inbox: Arc<dyn ServerInbox>,
    ) -> Self {
        ServerShared {
            conn: OnceLock::new(),
            topics,
            interface,
            instance,
            params,
            inbox,
            values: Mutex::new(BTreeMap::new()),
            next_request: AtomicU64::new(1),
        }
    }

    /// The interface info document, keys in StingerIPC's order, then params, then `hash`.
    pub(crate) fn interface_info(&self, client_id: &str) -> Bytes {
        let s = |v: &str| serde_json::Value::from(v).to_string();
        let mut out = format!(
            "{{\"interface_name\":{},\"title\":{},\"version\":{},\"instance\":{},\"connection_topic\":{},\"timestamp\":{}",
            s(&self.interface.name),
            s(&self.interface.title),
            s(&self.interface.version),
            s(&self.instance),
            s(&self.topics.topic(Kind::Lwt, "")),
            s(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        for param in self.interface.topic_params.iter() {
            if let Some(value) = self.params.get(&**param) {
                out.push_str(&format!(",{}:{}", s(param), s(value)));
            }
        }
        out.push_str(&format!(",\"hash\":{}}}", s(&self.interface.hash)));
        let _ = client_id;
        Bytes::from(out)
    }

    fn publish_info(&self, conn: &Conn) {
        let expiry = (conn.options().advert_interval.as_secs_f64() * 1.2) as u32;
        let properties = PublishProperties {
            content_type: Some(JSON.to_owned()),
            message_expiry_interval: Some(expiry.max(1)),
            ..Default::default()
        };
        let topic = self.topics.topic(Kind::InterfaceDiscovery, "");
        if let Err(error) =
            conn.publish_now(topic, true, self.interface_info(conn.client_id()), properties)
        {
            tracing::warn!(%error, "could not publish the interface info");
        }
    }

    fn value_message(
        &self,
        property: &str,
        version: u64,
        payload: Bytes,
    ) -> (String, Bytes, PublishProperties) {
        let mut properties = json_properties();
        properties.user_properties.push((PROPERTY_VERSION.to_owned(), version.to_string()));
        (self.topics.topic(Kind::PropertyValues, property), payload, properties)
    }

    /// The farewell messages of a clean close: discovery and values cleared, presence offline.
    pub(crate) fn farewell(&self) -> Vec<(String, bool, Bytes, PublishProperties)> {
        let mut finals = vec![(
            self.topics.topic(Kind::InterfaceDiscovery, ""),
            true,
            Bytes::new(),
            PublishProperties::default(),
        )];
        for property in self.interface.properties.iter() {
            finals.push((
                self.topics.topic(Kind::PropertyValues, &property.name),
                true,
                Bytes::new(),
                PublishProperties::default(),
            ));
        }
        finals.push((
            self.topics.topic(Kind::Lwt, ""),
            true,
            Bytes::from_static(br#"{"online":false}"#),
            json_properties(),
        ));
        finals
    }

    fn peer_for(&self, response_topic: Option<&str>) -> PeerId {
        let client = response_topic.and_then(|topic| {
            self.topics
                .extract(Kind::MethodResponses, topic, "client_id")
                .or_else(|| self.topics.extract(Kind::PropertyUpdateResponses, topic, "client_id"))
                .or_else(|| {
                    topic
                        .strip_prefix("client/")
                        .and_then(|t| t.split('/').next())
                        .map(str::to_owned)
                })
        });
        PeerId(wire::fnv1a(client.as_deref().or(response_topic).unwrap_or("").as_bytes()))
    }

    fn current_value(&self, property: &str) -> (u64, Bytes) {
        lock(&self.values).get(property).cloned().unwrap_or((0, Bytes::from_static(b"{}")))
    }

    fn handle_update(
        &self,
        conn: &Arc<Conn>,
        property: String,
        publish: Publish,
        link: RequestLink,
    ) {
        let properties = publish.properties.unwrap_or_default();
        let refuse = |code: ErrorCode, name: &str, message: String| {
            let (version, payload) = self.current_value(&property);
            let error = RemoteError::new(code, name, message);
            let _ = link.send(ServerMessage::PropertyReply {
                id: 0,
                property: property.clone().into(),
                version,
                payload,
                error: Some(error),
            });
        };
        if let Some(content_type) = properties.content_type.as_deref()
            && content_type != JSON
        {
            refuse(
                ErrorCode::ServerDeserializationError,
                "UnsupportedContentType",
                format!(
                    "Unsupported content type '{content_type}' for property update of '{property}' property"
                ),
            );
            return;
        }
        let version = match wire::user_property(&properties, PROPERTY_VERSION) {
            None => None,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(version) => Some(version),
                Err(_) => {
                    refuse(
                        ErrorCode::PayloadError,
                        "InvalidPropertyVersion",
                        format!(
                            "PropertyVersion '{text}' of the update of '{property}' is not a non-negative integer"
                        ),
                    );
                    return;
                }
            },
        };
        let _ = conn;
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let message = ClientMessage::SetProperty {
            id,
            property: property.into(),
            version,
            payload: publish.payload,
        };
        self.inbox.deliver(&Peer::new(Arc::new(link)), message);
    }
}

impl Handler for ServerShared {
    fn on_connected(&self, conn: &Arc<Conn>, _first: bool) {
        let lwt = self.topics.topic(Kind::Lwt, "");
        let _ = conn.publish_now(
            lwt,
            true,
            Bytes::from_static(br#"{"online":true}"#),
            json_properties(),
        );
        self.publish_info(conn);
        let values: Vec<_> =
            lock(&self.values).iter().map(|(k, (v, p))| (k.clone(), *v, p.clone())).collect();
        for (property, version, payload) in values {
            let (topic, payload, properties) = self.value_message(&property, version, payload);
            let _ = conn.publish_now(topic, true, payload, properties);
        }
    }

    fn on_publish(&self, conn: &Arc<Conn>, route: &Route, publish: Publish) {
        let Ok(topic) = std::str::from_utf8(&publish.topic) else {
            tracing::debug!("a request on a non-UTF-8 topic was ignored");
            return;
        };
        let properties = publish.properties.clone().unwrap_or_default();
        let response_topic = properties.response_topic.clone();
        let link = RequestLink {
            conn: conn.clone(),
            peer: self.peer_for(response_topic.as_deref()),
            response_topic,
            correlation: properties.correlation_data.clone(),
        };
        match route {
            Route::Requests => {
                let Some(method) = self.topics.extract(Kind::MethodRequests, topic, "method_name")
                else {
                    tracing::debug!(%topic, "a request on an unexpected topic was ignored");
                    return;
                };
                let id = self.next_request.fetch_add(1, Ordering::Relaxed);
                let message =
                    ClientMessage::Call { id, method: method.into(), payload: publish.payload };
                self.inbox.deliver(&Peer::new(Arc::new(link)), message);
            }
            Route::Updates => {
                let Some(property) =
                    self.topics.extract(Kind::PropertyUpdates, topic, "property_name")
                else {
                    tracing::debug!(%topic, "an update on an unexpected topic was ignored");
                    return;
                };
                self.handle_update(conn, property, publish, link);
            }
            other => tracing::debug!(?other, "unexpected route on a server connection"),
        }
    }

    fn on_lost(&self, _conn: &Arc<Conn>, error: TransportError) {
        tracing::warn!(%error, interface = %self.interface.name, instance = %self.instance, "server lost its broker; reconnecting");
    }
}

/// The reply path of one request: its response topic and correlation data.
struct RequestLink {
    conn: Arc<Conn>,
    peer: PeerId,
    response_topic: Option<String>,
    correlation: Option<Bytes>,
}

impl std::fmt::Debug for RequestLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLink")
            .field("peer", &self.peer)
            .field("response_topic", &self.response_topic)
            .finish_non_exhaustive()
    }
}

fn error_properties(properties: &mut PublishProperties, error: &RemoteError) {
    properties.user_properties.push((RETURN_CODE.to_owned(), error.code().as_u8().to_string()));
    properties.user_properties.push((wire::DEBUG_INFO.to_owned(), clean(error.message())));
    properties.user_properties.push((ERROR_NAME.to_owned(), clean(error.name())));
    if let Some(details) = error.details() {
        properties
            .user_properties
            .push((wire::ERROR_DETAILS.to_owned(), clean(&details.to_string())));
    }
}

impl PeerLink for RequestLink {
    fn id(&self) -> PeerId {
        self.peer
    }

    fn credentials(&self) -> Option<PeerCredentials> {
        None
    }

    fn send(&self, message: ServerMessage) -> Result<(), TransportError> {
        let Some(topic) = self.response_topic.clone() else {
            // StingerIPC: a request without a response topic runs, and nothing is sent.
            return Ok(());
        };
        let mut properties = json_properties();
        properties.correlation_data = self.correlation.clone();
        let payload = match message {
            ServerMessage::Reply { result: Ok(payload), .. } => {
                properties.user_properties.push((RETURN_CODE.to_owned(), "0".to_owned()));
                payload
            }
            ServerMessage::Reply { result: Err(error), .. } => {
                error_properties(&mut properties, &error);
                Bytes::from_static(b"{}")
            }
            ServerMessage::PropertyReply { version, payload, error, .. } => {
                match &error {
                    None => {
                        properties.user_properties.push((RETURN_CODE.to_owned(), "0".to_owned()))
                    }
                    Some(error) => error_properties(&mut properties, error),
                }
                // After `ReturnCode`, as StingerIPC's Python server orders them.
                properties
                    .user_properties
                    .insert(1, (PROPERTY_VERSION.to_owned(), version.to_string()));
                payload
            }
            other => {
                tracing::debug!(?other, "a message with no MQTT reply mapping was dropped");
                return Ok(());
            }
        };
        self.conn.publish_rpc(topic, payload, properties)
    }
}

/// A running MQTT server transport. Closing (or dropping) it clears its discovery entry and
/// retained values and announces it offline.
pub(crate) struct MqttServer {
    pub(crate) shared: Arc<ServerShared>,
}

impl std::fmt::Debug for MqttServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttServer")
            .field("interface", &self.shared.interface.name)
            .field("instance", &self.shared.instance)
            .field("conn", &self.shared.conn.get())
            .finish()
    }
}

impl MqttServer {
    fn conn(&self) -> Result<&Arc<Conn>, TransportError> {
        self.shared.conn.get().ok_or_else(|| {
            TransportError::new(TransportErrorKind::Closed, "the server is not running")
        })
    }
}

impl ServerTransport for MqttServer {
    fn fanout(&self) -> Fanout {
        Fanout::Broker
    }

    fn publish(
        &self,
        message: ServerMessage,
    ) -> switchboard_core::transport::BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let conn = self.conn()?;
            match message {
                ServerMessage::Signal { signal, payload } => {
                    if !conn.is_connected() {
                        return Err(conn.not_connected());
                    }
                    let topic = self.shared.topics.topic(Kind::Signals, &signal);
                    conn.publish(topic, false, payload, json_properties()).await
                }
                ServerMessage::PropertyValue { property, version, payload } => {
                    lock(&self.shared.values).insert(property.clone(), (version, payload.clone()));
                    if !conn.is_connected() {
                        // Republished with everything else once the broker is back.
                        return Ok(());
                    }
                    let (topic, payload, properties) =
                        self.shared.value_message(&property, version, payload);
                    conn.publish(topic, true, payload, properties).await
                }
                other => Err(TransportError::new(
                    TransportErrorKind::Protocol,
                    format!("the MQTT transport cannot broadcast {other:?}"),
                )),
            }
        })
    }

    fn close(&self) {
        if let Some(conn) = self.shared.conn.get() {
            conn.close(self.shared.farewell());
        }
    }
}

impl Drop for MqttServer {
    fn drop(&mut self) {
        self.close();
    }
}

/// Republishes the interface info every advert interval until the connection closes.
pub(crate) async fn advertise(shared: std::sync::Weak<ServerShared>, conn: Arc<Conn>) {
    let period = conn.options().advert_interval;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticks.tick().await;
        if conn.is_closed() {
            return;
        }
        let Some(shared) = shared.upgrade() else { return };
        if conn.is_connected() {
            shared.publish_info(&conn);
        }
    }
}
