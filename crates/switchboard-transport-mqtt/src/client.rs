//! The client half: discovery at connect, requests with response topics and correlation data,
//! retained property values, and signal subscriptions.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicBool, Ordering},
    },
};
use switchboard_core::sync::lock;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use switchboard_broker::ReplicaLedger;
use switchboard_core::{
    ErrorCode, InterfaceDescriptor, RemoteError, TransportError, TransportErrorKind,
    action::GoalId,
    goal_payload,
    message::{ClientMessage, Name, ServerMessage},
    transport::{BoxFuture, ClientInbox, ClientTransport},
};
use tokio::sync::mpsc;

use crate::{
    conn::{Conn, Handler, JSON, Route, json_properties, offline_properties},
    topics::valid_level,
    topics::{Kind, Topics},
    wire::{self, ACK, CLIENT_ID, Correlator, GOAL_EVENT, PROPERTY_VERSION, REPLICA, TAKEN},
};

/// A discovered interface info message: its topic and payload.
pub(crate) type Announcement = (String, Bytes);

/// What the client knows of the server it talks to, from its presence topic and its
/// announcements (see "Server liveness" in `docs/wire/mqtt.md`).
struct Liveness {
    /// The resolved instance, for messages.
    instance: String,
    /// The presence topic watched: the `connection_topic` of the latest announcement, if it
    /// had a usable one.
    presence: Option<String>,
    /// False from the moment that presence said `{"online":false}` until the server is back.
    online: bool,
}

/// The state a client's connection task and its transport handle share.
pub(crate) struct ClientShared {
    pub(crate) conn: OnceLock<Arc<Conn>>,
    /// The topic layout, fixed once discovery resolved the instance and params.
    pub(crate) topics: OnceLock<Topics>,
    pub(crate) interface: Arc<InterfaceDescriptor>,
    pub(crate) inbox: Arc<dyn ClientInbox>,
    correlator: Correlator,
    /// Where discovery receives interface info messages.
    pub(crate) discovery: Mutex<Option<mpsc::UnboundedSender<Announcement>>>,
    /// Where discovery receives the announcing server's presence.
    pub(crate) presence: Mutex<Option<mpsc::UnboundedSender<Announcement>>>,
    watched: Mutex<HashSet<Name>>,
    /// The discovered server's liveness; `None` until discovery finished.
    server: Mutex<Option<Liveness>>,
    /// Property reads waiting for the broker to resend the retained value.
    gets: Mutex<HashMap<Name, Vec<u64>>>,
    /// The last value and version seen per property.
    known: Mutex<HashMap<Name, (u64, Bytes)>>,
    /// This connection's presence topic.
    pub(crate) lwt: String,
    /// The instance is served by replicas (its interface info says `"replicas":"shared"`):
    /// method calls and goal requests ask the replica that takes them to say so (`Ack`).
    replicated: AtomicBool,
    /// Which replica (by client id) took each request in flight and runs each goal.
    replicas: ReplicaLedger,
    /// The replicas whose presence topic is watched, so that what they took fails once they
    /// are gone.
    replica_presences: Mutex<HashSet<String>>,
    me: Weak<ClientShared>,
}

impl ClientShared {
    pub(crate) fn new(
        interface: Arc<InterfaceDescriptor>,
        inbox: Arc<dyn ClientInbox>,
        lwt: String,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| ClientShared {
            conn: OnceLock::new(),
            topics: OnceLock::new(),
            interface,
            inbox,
            correlator: Correlator::new(),
            discovery: Mutex::new(None),
            presence: Mutex::new(None),
            watched: Mutex::new(HashSet::new()),
            server: Mutex::new(None),
            gets: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            lwt,
            replicated: AtomicBool::new(false),
            replicas: ReplicaLedger::new(),
            replica_presences: Mutex::new(HashSet::new()),
            me: me.clone(),
        })
    }

    /// Notes whether the interface info announces replicas (`"replicas":"shared"`).
    pub(crate) fn note_replicas(&self, info: &serde_json::Value) {
        let shared = info.get("replicas").and_then(|v| v.as_str()) == Some("shared");
        self.replicated.store(shared, Ordering::Relaxed);
    }

    /// Asks the replica that takes a request to say so (`Ack: 1`), when replicas serve.
    fn ask_for_ack(&self, properties: &mut PublishProperties) {
        if self.replicated.load(Ordering::Relaxed) {
            properties.user_properties.push((ACK.to_owned(), "1".to_owned()));
        }
    }

    /// The replica a message names (`Replica`), if it is a usable client id.
    fn replica_of(properties: &PublishProperties) -> Option<&str> {
        wire::user_property(properties, REPLICA).filter(|replica| valid_level(replica))
    }

    /// A replica said it took request `id`: the request fails at once should the replica go.
    fn note_taken(&self, conn: &Conn, id: u64, properties: &PublishProperties) {
        let Some(replica) = Self::replica_of(properties) else {
            tracing::debug!("a taken message that names no replica was ignored");
            return;
        };
        self.replicas.taken(&*self.inbox, id, replica);
        self.watch_replica(conn, replica);
    }

    /// Watches the presence topic of `replica` (once): its last will says it is gone.
    fn watch_replica(&self, conn: &Conn, replica: &str) {
        if !lock(&self.replica_presences).insert(replica.to_owned()) {
            return;
        }
        let Ok(topics) = self.topics() else { return };
        let presence = topics.for_client(replica).topic(Kind::Lwt, "");
        let _ = conn.subscribe(&presence, Route::ReplicaPresence(replica.to_owned()), false);
    }

    /// A message on a watched replica's presence topic: once it says `{"online":false}` (its
    /// last will, which the broker publishes when the replica's connection dies, or its
    /// farewell), what the replica took fails.
    fn on_replica_presence(&self, conn: &Conn, replica: &str, publish: &Publish) {
        if crate::presence_state(&publish.payload) != Some(false) {
            return;
        }
        let topic = String::from_utf8_lossy(&publish.topic).into_owned();
        lock(&self.replica_presences).remove(replica);
        conn.unsubscribe(&topic);
        let service = match lock(&self.server).as_ref() {
            Some(server) => format!("{} instance `{}`", self.interface.name, server.instance),
            None => self.interface.name.to_string(),
        };
        let why = format!("its presence `{topic}` turned {{\"online\":false}}");
        self.replicas.replicas_gone(&*self.inbox, &[replica.to_owned()], &service, &why);
    }

    fn topics(&self) -> Result<&Topics, TransportError> {
        self.topics.get().ok_or_else(|| {
            TransportError::new(
                TransportErrorKind::NotConnected,
                "the service was not discovered yet",
            )
        })
    }

    /// The canonical name of a property, if the interface has it.
    fn property_name(&self, name: &str) -> Option<Name> {
        self.interface.property(name).map(|p| p.name.clone())
    }

    /// Starts watching the discovered server: its presence topic (when the interface info
    /// named one) and the instance's interface info topic, where a restarted server announces
    /// itself again.
    pub(crate) fn watch_server(
        &self,
        conn: &Conn,
        instance: String,
        info_topic: String,
        presence: Option<String>,
    ) {
        *lock(&self.server) = Some(Liveness { instance, presence: presence.clone(), online: true });
        if let Some(presence) = &presence {
            let _ = conn.subscribe(presence, Route::ServerPresence, true);
        }
        if !info_topic.contains(['+', '#']) {
            let _ = conn.subscribe(&info_topic, Route::ServerInfo, true);
        }
    }

    /// True while the server's presence says it is offline.
    fn server_is_offline(&self) -> bool {
        lock(&self.server).as_ref().is_some_and(|server| !server.online)
    }

    /// The error for a send while the server is offline.
    fn server_offline(&self) -> Option<TransportError> {
        let server = lock(&self.server);
        let server = server.as_ref().filter(|server| !server.online)?;
        Some(TransportError::not_connected(format!(
            "the server of {} instance `{}` is offline (its presence `{}` says so); waiting for it to announce itself again",
            self.interface.name,
            server.instance,
            server.presence.as_deref().unwrap_or("?"),
        )))
    }

    /// A message on the watched server's presence topic.
    fn on_server_presence(&self, conn: &Arc<Conn>, publish: Publish) {
        let topic = String::from_utf8_lossy(&publish.topic).into_owned();
        // A cleared retained presence, or something unreadable, says nothing.
        let Some(online) = crate::presence_state(&publish.payload) else { return };
        let instance = {
            let mut server = lock(&self.server);
            let Some(server) = server.as_mut() else { return };
            // Late messages on a presence topic we stopped watching are ignored.
            if server.presence.as_deref() != Some(topic.as_str()) || server.online == online {
                return;
            }
            server.online = online;
            server.instance.clone()
        };
        if online {
            self.server_back(conn, &instance, &format!("its presence `{topic}` is online again"));
        } else {
            self.server_gone(&instance, &topic);
        }
    }

    /// An interface info message on the resolved instance's discovery topic.
    fn on_server_info(&self, conn: &Arc<Conn>, publish: Publish) {
        if publish.payload.is_empty() {
            // A clean close clears it; the presence that follows tells the rest.
            return;
        }
        let topic = String::from_utf8_lossy(&publish.topic).into_owned();
        let Ok(info) = serde_json::from_slice::<serde_json::Value>(&publish.payload) else {
            tracing::debug!(%topic, "unreadable interface info ignored");
            return;
        };
        match crate::check_compatible(&self.interface, &info, &topic) {
            Ok(agreement) => self.inbox.agreed(agreement),
            Err(error) => {
                tracing::warn!(%error, "an incompatible server announced itself on this client's instance; ignored");
                return;
            }
        }
        self.note_replicas(&info);
        let presence = crate::presence_topic(&info).map(str::to_owned);
        // Brokers forward a live publish with the retain flag cleared: only a server that is
        // running right now sends one. A retained copy (after a (re)subscribe) may be stale.
        let live = !publish.retain;
        let (switched, back) = {
            let mut server = lock(&self.server);
            let Some(server) = server.as_mut() else { return };
            let switched = match &presence {
                Some(new) if server.presence.as_ref() != Some(new) => {
                    Some(server.presence.replace(new.clone()))
                }
                _ => None,
            };
            let back = live && !server.online;
            if back {
                server.online = true;
            }
            (switched, back.then(|| server.instance.clone()))
        };
        if let Some(old) = switched {
            if let Some(old) = old {
                conn.unsubscribe(&old);
            }
            if let Some(new) = &presence {
                tracing::debug!(presence = %new, "the server announced a new presence topic");
                // Its retained presence tells whether that server is online.
                let _ = conn.subscribe(new, Route::ServerPresence, true);
            }
        }
        if let Some(instance) = back {
            self.server_back(conn, &instance, "it announced itself again");
        }
    }

    fn server_gone(&self, instance: &str, presence: &str) {
        tracing::warn!(interface = %self.interface.name, %instance, %presence, "the server went offline");
        lock(&self.gets).clear();
        self.inbox.disconnected(TransportError::disconnected(format!(
            "the server of {} instance `{instance}` went offline (its presence `{presence}` turned {{\"online\":false}})",
            self.interface.name
        )));
    }

    fn server_back(&self, conn: &Arc<Conn>, instance: &str, why: &str) {
        tracing::info!(interface = %self.interface.name, %instance, "the server is back: {why}");
        for message in self.inbox.reconnected() {
            if let Err(error) = self.handle(conn, message) {
                tracing::warn!(%error, "could not restore a subscription after the server came back");
            }
        }
    }

    /// Subscribes to the response topics once the topic layout is known.
    pub(crate) fn subscribe_responses(&self, conn: &Conn) -> Result<(), TransportError> {
        let topics = self.topics()?;
        let _ = conn.subscribe(
            &topics.topic(Kind::MethodResponses, "+"),
            Route::MethodResponses,
            false,
        );
        let _ = conn.subscribe(
            &topics.topic(Kind::PropertyUpdateResponses, "+"),
            Route::UpdateResponses,
            false,
        );
        if !self.interface.signals.is_empty() {
            // Signals the server sends to this client only.
            let _ = conn.subscribe(
                &topics.topic(Kind::ClientSignals, "+"),
                Route::ClientSignals,
                false,
            );
        }
        Ok(())
    }

    /// Publishes an action request (`goal`, `cancel` or `attach`) whose reply comes on the
    /// action's event topic, behind any event already sent.
    /// A goal's cancel and attach go to the replica that runs it, when a replica said so.
    fn action_request(
        &self,
        conn: &Conn,
        id: u64,
        action: &str,
        op: &str,
        goal: &GoalId,
        payload: Bytes,
    ) -> Result<(), TransportError> {
        let topics = self.topics()?;
        // Subscribed before the first request goes out (the broker handles them in order),
        // and re-subscribed after every reconnect like every other subscription.
        let _ = conn.subscribe(&topics.topic(Kind::ActionEvents, "+"), Route::ActionEvents, false);
        let mut properties = json_properties();
        properties.response_topic = Some(topics.topic(Kind::ActionEvents, action));
        properties.correlation_data = Some(self.correlator.encode(id));
        properties.user_properties.push((CLIENT_ID.to_owned(), conn.client_id().to_owned()));
        let topic = match self.replicas.goal_replica(goal) {
            Some(replica) if op != "goal" => topics.replica_action(action, op, &replica),
            _ => {
                if op == "goal" {
                    self.ask_for_ack(&mut properties);
                }
                format!("{}/{op}", topics.topic(Kind::ActionRequests, action))
            }
        };
        conn.publish_rpc(topic, payload, properties)
    }

    /// A message on an action's event topic: a reply (it has our correlation data), a replica's
    /// taken message (`Taken`), or an event.
    fn on_action_message(&self, conn: &Conn, publish: Publish) {
        let topic = String::from_utf8_lossy(&publish.topic).into_owned();
        let Some(action) =
            self.topics.get().and_then(|t| t.extract(Kind::ActionEvents, &topic, "action_name"))
        else {
            tracing::debug!(%topic, "an action message on an unexpected topic was ignored");
            return;
        };
        let action: Name = action.into();
        let properties = publish.properties.unwrap_or_default();
        if let Some(data) = properties.correlation_data.as_deref() {
            let Some(id) = self.correlator.decode(data) else {
                tracing::debug!("an action reply with foreign correlation data was ignored");
                return;
            };
            if wire::user_property(&properties, TAKEN) == Some("1") {
                self.note_taken(conn, id, &properties);
                return;
            }
            self.replicas.answered(id);
            let result = match wire::outcome(&properties) {
                None => goal_payload::decode_state(&publish.payload).map_err(|reason| {
                    RemoteError::new(
                        ErrorCode::ClientDeserializationError,
                        "ClientDeserializationError",
                        format!(
                            "the reply to a request of action `{action}` is unreadable: {reason}"
                        ),
                    )
                }),
                Some(error) => Err(error_from_payload(error, &publish.payload)),
            };
            let (goal, result) = match result {
                Ok((goal, snapshot)) => {
                    let replica = Self::replica_of(&properties);
                    let ended = snapshot.status.is_terminal();
                    self.replicas.goal_answer(&goal, replica, ended);
                    if let Some(replica) = replica.filter(|_| !ended) {
                        self.watch_replica(conn, replica);
                    }
                    (goal, Ok(snapshot))
                }
                Err(error) => (goal_of(&publish.payload), Err(error)),
            };
            deliver(&*self.inbox, ServerMessage::GoalReply { id, action, goal, result });
            return;
        }
        match goal_payload::decode_event(
            wire::user_property(&properties, GOAL_EVENT),
            &publish.payload,
        ) {
            Ok((goal, event)) => {
                if matches!(event, switchboard_core::action::GoalEvent::Finished(_)) {
                    self.replicas.goal_answer(&goal, None, true);
                }
                deliver(&*self.inbox, ServerMessage::GoalEvent { action, goal, event })
            }
            Err(reason) => tracing::warn!(%action, %reason, "an unreadable goal event was ignored"),
        }
    }

    fn ensure_value_subscription(
        &self,
        conn: &Conn,
        property: &Name,
        refresh: bool,
    ) -> Result<(), TransportError> {
        let filter = self.topics()?.topic(Kind::PropertyValues, property);
        let _ = conn.subscribe(&filter, Route::Value(property.clone()), refresh);
        Ok(())
    }

    /// Maps one core message onto the wire.
    fn handle(&self, conn: &Arc<Conn>, message: ClientMessage) -> Result<(), TransportError> {
        let topics = self.topics()?;
        match message {
            ClientMessage::Call { id, method, payload } => {
                let mut properties = json_properties();
                properties.response_topic = Some(topics.topic(Kind::MethodResponses, &method));
                properties.correlation_data = Some(self.correlator.encode(id));
                self.ask_for_ack(&mut properties);
                conn.publish_rpc(topics.topic(Kind::MethodRequests, &method), payload, properties)
            }
            ClientMessage::GetProperty { id, property } => {
                let Some(name) = self.property_name(&property) else {
                    deliver(&*self.inbox, unknown_property(id, property, &self.interface.name));
                    return Ok(());
                };
                lock(&self.gets).entry(name.clone()).or_default().push(id);
                // Re-subscribing makes the broker send the retained value again: a fresh read.
                self.ensure_value_subscription(conn, &name, true)?;
                let timeout = conn.options().discovery_timeout;
                let shared_gets = self.gets_timeout(name, id, timeout);
                tokio::spawn(shared_gets);
                Ok(())
            }
            ClientMessage::SetProperty { id, property, version, payload } => {
                let Some(descriptor) = self.interface.property(&property) else {
                    deliver(&*self.inbox, unknown_property(id, property, &self.interface.name));
                    return Ok(());
                };
                if descriptor.read_only {
                    // StingerIPC servers do not even subscribe to read-only updates; answer here
                    // rather than let the caller wait for a reply that never comes.
                    let (version, payload) = self.best_known(&property);
                    deliver(
                        &*self.inbox,
                        ServerMessage::PropertyReply {
                            id,
                            property: descriptor.name.clone(),
                            version,
                            payload,
                            error: Some(RemoteError::read_only(&property)),
                        },
                    );
                    return Ok(());
                }
                let mut properties = json_properties();
                properties.response_topic =
                    Some(topics.topic(Kind::PropertyUpdateResponses, &property));
                properties.correlation_data = Some(self.correlator.encode(id));
                if let Some(version) = version {
                    properties
                        .user_properties
                        .push((PROPERTY_VERSION.to_owned(), version.to_string()));
                }
                conn.publish_rpc(
                    topics.topic(Kind::PropertyUpdates, &property),
                    payload,
                    properties,
                )
            }
            ClientMessage::Subscribe { signal } => {
                let name = self.interface.signal(&signal).cloned().unwrap_or(signal);
                let _ =
                    conn.subscribe(&topics.topic(Kind::Signals, &name), Route::Signal(name), false);
                Ok(())
            }
            ClientMessage::Unsubscribe { signal } => {
                conn.unsubscribe(&topics.topic(Kind::Signals, &signal));
                Ok(())
            }
            ClientMessage::Watch { property } => {
                let Some(name) = self.property_name(&property) else {
                    tracing::debug!(%property, "watch of an unknown property ignored");
                    return Ok(());
                };
                lock(&self.watched).insert(name.clone());
                self.ensure_value_subscription(conn, &name, true)
            }
            ClientMessage::Unwatch { property } => {
                lock(&self.watched).remove(&property);
                Ok(())
            }
            ClientMessage::Command { command, payload } => {
                let mut properties = json_properties();
                properties
                    .user_properties
                    .push((CLIENT_ID.to_owned(), conn.client_id().to_owned()));
                conn.publish_now_qos(
                    topics.topic(Kind::Commands, &command),
                    Kind::Commands.qos(),
                    false,
                    payload,
                    properties,
                )
            }
            ClientMessage::SendGoal { id, action, goal, payload } => {
                let payload = goal_payload::encode_request(&goal, Some(&payload), None);
                self.action_request(conn, id, &action, "goal", &goal, payload)
            }
            ClientMessage::CancelGoal { id, action, goal } => {
                let payload = goal_payload::encode_request(&goal, None, None);
                self.action_request(conn, id, &action, "cancel", &goal, payload)
            }
            ClientMessage::AttachGoal { id, action, goal, follow } => {
                let payload = goal_payload::encode_request(&goal, None, Some(follow));
                self.action_request(conn, id, &action, "attach", &goal, payload)
            }
            other => Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("the MQTT transport does not support {other:?}"),
            )),
        }
    }

    fn gets_timeout(
        &self,
        property: Name,
        id: u64,
        timeout: std::time::Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        // Only weak holds: a closed client must not be kept alive by a timer.
        let inbox = Arc::downgrade(&self.inbox);
        let waiting = self.me.clone();
        async move {
            tokio::time::sleep(timeout).await;
            let Some(shared) = waiting.upgrade() else { return };
            let still_waiting = {
                let mut gets = lock(&shared.gets);
                match gets.get_mut(&property) {
                    Some(ids) if ids.contains(&id) => {
                        ids.retain(|i| *i != id);
                        true
                    }
                    _ => false,
                }
            };
            if still_waiting && let Some(inbox) = inbox.upgrade() {
                let (version, payload) = shared.best_known(&property);
                deliver(
                    &*inbox,
                    ServerMessage::PropertyReply {
                        id,
                        property: property.clone(),
                        version,
                        payload,
                        error: Some(RemoteError::new(
                            ErrorCode::ServiceUnavailable,
                            "NoRetainedValue",
                            format!(
                                "the broker holds no retained value for property `{property}`; is the service running?"
                            ),
                        )),
                    },
                );
            }
        }
    }

    fn best_known(&self, property: &str) -> (u64, Bytes) {
        lock(&self.known).get(property).cloned().unwrap_or((0, Bytes::from_static(b"{}")))
    }

    fn on_value(&self, property: &Name, publish: Publish) {
        if publish.payload.is_empty() {
            // A cleared retained value: the service shut down cleanly.
            return;
        }
        let properties = publish.properties.unwrap_or_default();
        if let Some(content_type) = properties.content_type.as_deref()
            && content_type != JSON
        {
            tracing::warn!(%property, %content_type, "property value with a foreign content type ignored");
            return;
        }
        let version = wire::user_property(&properties, PROPERTY_VERSION)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let payload = publish.payload;
        lock(&self.known).insert(property.clone(), (version, payload.clone()));
        if publish.retain {
            let waiting = lock(&self.gets).remove(property).unwrap_or_default();
            for id in waiting {
                deliver(
                    &*self.inbox,
                    ServerMessage::PropertyReply {
                        id,
                        property: property.clone(),
                        version,
                        payload: payload.clone(),
                        error: None,
                    },
                );
            }
        }
        if lock(&self.watched).contains(property) {
            deliver(
                &*self.inbox,
                ServerMessage::PropertyValue { property: property.clone(), version, payload },
            );
        }
    }
}

/// Hands a message to the core. A broker cannot be made to wait for one slow reader (it would
/// drop messages of its own accord), so this transport declares that it does not push back
/// ([`ClientTransport::can_push_back`]) and the core never holds a delivery; should it ever,
/// the delivery is finished in the background rather than lost.
fn deliver(inbox: &dyn ClientInbox, message: ServerMessage) {
    if let Some(held) = inbox.deliver(message) {
        tokio::spawn(held);
    }
}

/// The goal id a failed reply's payload names (empty if none).
pub(crate) fn goal_of(payload: &[u8]) -> GoalId {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("goal").and_then(|g| g.as_str()).map(GoalId::from))
        .unwrap_or_else(|| GoalId::from(""))
}

/// A failed reply's error: code and name from the user properties, message and details from the
/// payload when it has them (it keeps what a one-line `DebugInfo` cannot).
pub(crate) fn error_from_payload(error: RemoteError, payload: &[u8]) -> RemoteError {
    let Ok(serde_json::Value::Object(body)) = serde_json::from_slice::<serde_json::Value>(payload)
    else {
        return error;
    };
    let message =
        body.get("message").and_then(|m| m.as_str()).unwrap_or(error.message()).to_owned();
    let details =
        body.get("details").filter(|d| !d.is_null()).cloned().or_else(|| error.details().cloned());
    let rebuilt = RemoteError::new(error.code(), error.name().to_owned(), message);
    match details {
        Some(details) => rebuilt.with_details(details),
        None => rebuilt,
    }
}

fn unknown_property(id: u64, property: Name, interface: &str) -> ServerMessage {
    ServerMessage::PropertyReply {
        id,
        property: property.clone(),
        version: 0,
        payload: Bytes::from_static(b"{}"),
        error: Some(RemoteError::unknown_property(interface, &property)),
    }
}

impl Handler for ClientShared {
    fn on_connected(&self, conn: &Arc<Conn>, first: bool) {
        let _ = conn.publish_now(
            Kind::Lwt,
            self.lwt.clone(),
            Bytes::from_static(br#"{"online":true}"#),
            json_properties(),
        );
        if first {
            return;
        }
        if self.server_is_offline() {
            // The broker is back but the server is not: `reconnected` waits for the server.
            return;
        }
        for message in self.inbox.reconnected() {
            if let Err(error) = self.handle(conn, message) {
                tracing::warn!(%error, "could not restore a subscription after reconnecting");
            }
        }
    }

    fn on_publish(&self, conn: &Arc<Conn>, route: &Route, publish: Publish) {
        match route {
            Route::Interface => {
                if publish.payload.is_empty() {
                    return;
                }
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                if let Some(sender) = lock(&self.discovery).as_ref() {
                    let _ = sender.send((topic, publish.payload));
                }
            }
            Route::Presence => {
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                if let Some(sender) = lock(&self.presence).as_ref() {
                    let _ = sender.send((topic, publish.payload));
                }
            }
            Route::ServerPresence => self.on_server_presence(conn, publish),
            Route::ServerInfo => self.on_server_info(conn, publish),
            Route::MethodResponses => {
                let properties = publish.properties.unwrap_or_default();
                let Some(id) =
                    properties.correlation_data.as_deref().and_then(|d| self.correlator.decode(d))
                else {
                    tracing::debug!("a method response with foreign correlation data was ignored");
                    return;
                };
                if wire::user_property(&properties, TAKEN) == Some("1") {
                    self.note_taken(conn, id, &properties);
                    return;
                }
                self.replicas.answered(id);
                let result = match wire::outcome(&properties) {
                    None => Ok(publish.payload),
                    Some(error) => Err(error),
                };
                deliver(&*self.inbox, ServerMessage::Reply { id, result });
            }
            Route::UpdateResponses => {
                let properties = publish.properties.unwrap_or_default();
                let Some(id) =
                    properties.correlation_data.as_deref().and_then(|d| self.correlator.decode(d))
                else {
                    tracing::debug!("an update response with foreign correlation data was ignored");
                    return;
                };
                let topic = String::from_utf8_lossy(&publish.topic);
                let Some(property) = self
                    .topics
                    .get()
                    .and_then(|t| t.extract(Kind::PropertyUpdateResponses, &topic, "property_name"))
                    .and_then(|p| self.property_name(&p))
                else {
                    tracing::debug!(%topic, "an update response for an unknown property was ignored");
                    return;
                };
                let error = wire::outcome(&properties);
                let (known_version, _) = self.best_known(&property);
                let version = wire::user_property(&properties, PROPERTY_VERSION)
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(if error.is_none() { known_version + 1 } else { known_version });
                deliver(
                    &*self.inbox,
                    ServerMessage::PropertyReply {
                        id,
                        property,
                        version,
                        payload: publish.payload,
                        error,
                    },
                );
            }
            Route::Value(property) => self.on_value(property, publish),
            Route::Signal(signal) => {
                let properties = publish.properties.unwrap_or_default();
                if let Some(content_type) = properties.content_type.as_deref()
                    && content_type != JSON
                {
                    tracing::warn!(%signal, %content_type, "signal with a foreign content type ignored");
                    return;
                }
                deliver(
                    &*self.inbox,
                    ServerMessage::Signal { signal: signal.clone(), payload: publish.payload },
                );
            }
            Route::ClientSignals => {
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                let Some(signal) = self
                    .topics
                    .get()
                    .and_then(|t| t.extract(Kind::ClientSignals, &topic, "signal_name"))
                    .and_then(|s| self.interface.signal(&s).cloned())
                else {
                    tracing::debug!(%topic, "a signal to this client of an unknown name was ignored");
                    return;
                };
                let properties = publish.properties.unwrap_or_default();
                if let Some(content_type) = properties.content_type.as_deref()
                    && content_type != JSON
                {
                    tracing::warn!(%signal, %content_type, "signal with a foreign content type ignored");
                    return;
                }
                deliver(&*self.inbox, ServerMessage::Signal { signal, payload: publish.payload });
            }
            Route::ActionEvents => self.on_action_message(conn, publish),
            Route::ReplicaPresence(replica) => self.on_replica_presence(conn, replica, &publish),
            Route::Requests
            | Route::Updates
            | Route::Commands
            | Route::ActionRequests
            | Route::ReplicaActionRequests
            | Route::ClientPresence
            | Route::OwnPresence
            | Route::Bus(_) => {}
        }
    }

    fn on_lost(&self, _conn: &Arc<Conn>, error: TransportError) {
        lock(&self.gets).clear();
        // Every request in flight fails here; goals are attached to again after reconnecting.
        self.replicas.forget_requests();
        self.inbox.disconnected(error);
    }
}

/// A connected MQTT client transport.
pub(crate) struct MqttClient {
    pub(crate) shared: Arc<ClientShared>,
}

impl std::fmt::Debug for MqttClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttClient")
            .field("interface", &self.shared.interface.name)
            .field("conn", &self.shared.conn.get())
            .finish()
    }
}

impl ClientTransport for MqttClient {
    fn send(&self, message: ClientMessage) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let conn = self.shared.conn.get().ok_or_else(|| {
                TransportError::new(TransportErrorKind::NotConnected, "the client is not connected")
            })?;
            if !conn.is_connected() {
                return Err(conn.not_connected());
            }
            if !matches!(message, ClientMessage::Unsubscribe { .. } | ClientMessage::Unwatch { .. })
                && let Some(error) = self.shared.server_offline()
            {
                return Err(error);
            }
            if let ClientMessage::Subscribe { signal } = &message {
                // Wait for the SUBACK: signals emitted after `subscribe` returns must arrive.
                let topics = self.shared.topics()?;
                let name =
                    self.shared.interface.signal(signal).cloned().unwrap_or_else(|| signal.clone());
                let filter = topics.topic(Kind::Signals, &name);
                return conn.subscribe_confirmed(&filter, Route::Signal(name)).await;
            }
            if let ClientMessage::Describe { id } = message {
                // Runtime introspection: the server keeps its description retained on
                // `…/schema`; read it through the discovery route and answer locally.
                let topic = self.shared.topics()?.topic(Kind::InterfaceSchema, "");
                let (found_tx, mut found) = mpsc::unbounded_channel();
                *lock(&self.shared.discovery) = Some(found_tx);
                let subscribed = conn.subscribe_confirmed(&topic, Route::Interface).await;
                let wait = conn.options().discovery_timeout;
                let description = tokio::time::timeout(wait, async {
                    while let Some((from, payload)) = found.recv().await {
                        if from == topic {
                            return Some(payload);
                        }
                    }
                    None
                })
                .await;
                *lock(&self.shared.discovery) = None;
                conn.unsubscribe(&topic);
                subscribed?;
                let message = match description {
                    Ok(Some(description)) => ServerMessage::Description { id, description },
                    _ => ServerMessage::Reply {
                        id,
                        result: Err(RemoteError::new(
                            ErrorCode::MethodNotFound,
                            "NoDescription",
                            format!(
                                "nothing is retained on `{topic}`: the service does not describe itself (a StingerIPC peer?)"
                            ),
                        )),
                    },
                };
                deliver(&*self.shared.inbox, message);
                return Ok(());
            }
            self.shared.handle(conn, message)
        })
    }

    fn can_push_back(&self) -> bool {
        // Waiting before reading on would pile messages up in the broker, which drops beyond
        // its own limits (`max_queued_messages`), silently and without regard to what they are.
        false
    }

    fn close(&self) {
        if let Some(conn) = self.shared.conn.get() {
            let offline = (
                Kind::Lwt,
                self.shared.lwt.clone(),
                Bytes::from_static(br#"{"online":false}"#),
                offline_properties(),
            );
            conn.start_close(vec![offline]);
        }
    }
}

impl Drop for MqttClient {
    fn drop(&mut self) {
        self.close();
    }
}
