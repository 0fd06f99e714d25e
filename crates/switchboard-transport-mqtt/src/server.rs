//! The serving half: requests and updates in from wildcard subscriptions, replies out to each
//! request's response topic, signals and retained property values out through the broker, plus
//! discovery and presence.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use switchboard_core::sync::lock;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use switchboard_broker::Replicas;
use switchboard_core::{
    ErrorCode, InterfaceDescriptor, PeerCredentials, PeerId, RemoteError, TransportError,
    TransportErrorKind, goal_payload,
    message::{ClientMessage, Name, ServerMessage},
    transport::{Fanout, Peer, PeerLink, ServerInbox, ServerTransport},
};

use crate::{
    conn::{Conn, Farewell, Handler, JSON, Route, clean, json_properties, offline_properties},
    topics::{Kind, Topics},
    wire::{
        self, ACK, CLIENT_ID, ERROR_NAME, GOAL_EVENT, PROPERTY_VERSION, REPLICA, RETURN_CODE, TAKEN,
    },
};

/// The peer id of requests that name no client: StingerIPC commands, requests without a
/// response topic. No event can be sent to it.
pub(crate) const ANONYMOUS: PeerId = PeerId(0);

/// The state a server's connection task and its transport handle share.
pub(crate) struct ServerShared {
    pub(crate) conn: OnceLock<Arc<Conn>>,
    pub(crate) topics: Topics,
    pub(crate) interface: Arc<InterfaceDescriptor>,
    pub(crate) instance: String,
    pub(crate) params: BTreeMap<String, String>,
    pub(crate) inbox: Arc<dyn ServerInbox>,
    /// Each signal's topic, filled in once rather than on every emit.
    signal_topics: HashMap<Name, String>,
    /// The last published value and version of each property, republished after reconnects.
    values: Mutex<BTreeMap<Name, (u64, Bytes)>>,
    next_request: AtomicU64,
    /// Every client id seen, with its generation: bumped when the client's presence turns
    /// offline, so a later connection with the same id is a new peer.
    clients: Mutex<HashMap<String, u64>>,
    /// How many times someone else said this running server is offline, and when that was last
    /// logged (once per [`SPOOF_LOG_INTERVAL`] at most).
    presence_spoofs: AtomicU64,
    spoof_logged: Mutex<Option<Instant>>,
    /// One of several replicas of the instance (`replicas=shared`).
    replicated: bool,
    me: Weak<ServerShared>,
}

/// The least time between two warnings about a spoofed presence.
const SPOOF_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl ServerShared {
    pub(crate) fn new(
        topics: Topics,
        interface: Arc<InterfaceDescriptor>,
        instance: String,
        params: BTreeMap<String, String>,
        inbox: Arc<dyn ServerInbox>,
        replicas: Replicas,
    ) -> Arc<Self> {
        let signal_topics = interface
            .signals
            .iter()
            .map(|signal| (signal.clone(), topics.topic(Kind::Signals, signal)))
            .collect();
        Arc::new_cyclic(|me| ServerShared {
            conn: OnceLock::new(),
            signal_topics,
            topics,
            interface,
            instance,
            params,
            inbox,
            values: Mutex::new(BTreeMap::new()),
            next_request: AtomicU64::new(1),
            clients: Mutex::new(HashMap::new()),
            presence_spoofs: AtomicU64::new(0),
            spoof_logged: Mutex::new(None),
            replicated: replicas == Replicas::Shared,
            me: me.clone(),
        })
    }

    /// The interface info document, keys in StingerIPC's order, then params, then `hash` and
    /// `description` (the interface description, for clients of another hash to compare
    /// member by member).
    /// A replica's names no `connection_topic` (no one replica's presence is the service's) and
    /// says `"replicas":"shared"`, so that clients ask it to say which requests it took.
    pub(crate) fn interface_info(&self, client_id: &str) -> Bytes {
        let s = |v: &str| serde_json::Value::from(v).to_string();
        let connection = if self.replicated {
            String::new()
        } else {
            format!(",\"connection_topic\":{}", s(&self.topics.topic(Kind::Lwt, "")))
        };
        let mut out = format!(
            "{{\"interface_name\":{},\"title\":{},\"version\":{},\"instance\":{}{connection},\"timestamp\":{}",
            s(&self.interface.name),
            s(&self.interface.title),
            s(&self.interface.version),
            s(&self.instance),
            s(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        for param in self.interface.topic_params.iter() {
            if let Some(value) = self.params.get(&**param) {
                out.push_str(&format!(",{}:{}", s(param), s(value)));
            }
        }
        if self.replicated {
            out.push_str(",\"replicas\":\"shared\"");
        }
        out.push_str(&format!(",\"hash\":{}", s(&self.interface.hash)));
        match serde_json::from_str::<serde_json::Value>(&self.interface.description) {
            Ok(description) => out.push_str(&format!(",\"description\":{description}}}")),
            Err(_) => out.push('}'),
        }
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
        if let Err(error) = conn.publish_now(
            Kind::InterfaceDiscovery,
            topic,
            self.interface_info(conn.client_id()),
            properties.clone(),
        ) {
            tracing::warn!(%error, "could not publish the interface info");
        }
        let schema = self.topics.topic(Kind::InterfaceSchema, "");
        let description = Bytes::from(self.interface.description.to_string());
        if let Err(error) = conn.publish_now(Kind::InterfaceSchema, schema, description, properties)
        {
            tracing::warn!(%error, "could not publish the interface description");
        }
    }

    /// The topic of `signal`.
    fn signal_topic(&self, signal: &str) -> String {
        match self.signal_topics.get(signal) {
            Some(topic) => topic.clone(),
            None => self.topics.topic(Kind::Signals, signal),
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
    /// A replica leaves the discovery topics to the others (they expire once no replica
    /// republishes them).
    pub(crate) fn farewell(&self) -> Vec<Farewell> {
        if self.replicated {
            return vec![(
                Kind::Lwt,
                self.topics.topic(Kind::Lwt, ""),
                Bytes::from_static(br#"{"online":false}"#),
                offline_properties(),
            )];
        }
        let mut finals = vec![
            (
                Kind::InterfaceDiscovery,
                self.topics.topic(Kind::InterfaceDiscovery, ""),
                Bytes::new(),
                PublishProperties::default(),
            ),
            (
                Kind::InterfaceSchema,
                self.topics.topic(Kind::InterfaceSchema, ""),
                Bytes::new(),
                PublishProperties::default(),
            ),
        ];
        for property in self.interface.properties.iter() {
            finals.push((
                Kind::PropertyValues,
                self.topics.topic(Kind::PropertyValues, &property.name),
                Bytes::new(),
                PublishProperties::default(),
            ));
        }
        finals.push((
            Kind::Lwt,
            self.topics.topic(Kind::Lwt, ""),
            Bytes::from_static(br#"{"online":false}"#),
            offline_properties(),
        ));
        finals
    }

    /// The sender's client id: `ClientId`, else read from the response topic.
    fn client_of(&self, properties: &PublishProperties) -> Option<String> {
        if let Some(id) = wire::user_property(properties, CLIENT_ID)
            && crate::topics::valid_level(id)
        {
            return Some(id.to_owned());
        }
        let topic = properties.response_topic.as_deref()?;
        self.topics
            .extract(Kind::MethodResponses, topic, "client_id")
            .or_else(|| self.topics.extract(Kind::PropertyUpdateResponses, topic, "client_id"))
            .or_else(|| self.topics.extract(Kind::ActionEvents, topic, "client_id"))
            .or_else(|| {
                topic.strip_prefix("client/").and_then(|t| t.split('/').next()).map(str::to_owned)
            })
            .filter(|id| crate::topics::valid_level(id))
    }

    /// The peer id of `client` in its current generation; remembers the client.
    ///
    /// The first message from a client subscribes to its presence topic, so the server learns
    /// when that client goes away. Only the server's own clients are watched: a subscription to
    /// every client's presence would bring each server the whole broker's retained presence.
    fn peer_of(&self, client: &str) -> PeerId {
        let (generation, first) = {
            let mut clients = lock(&self.clients);
            match clients.get(client) {
                Some(generation) => (*generation, false),
                None => {
                    clients.insert(client.to_owned(), 0);
                    (0, true)
                }
            }
        };
        if first && let Some(conn) = self.conn.get() {
            let _ = conn.subscribe(
                &self.topics.for_client(client).topic(Kind::Lwt, ""),
                Route::ClientPresence,
                false,
            );
        }
        peer_id(client, generation)
    }

    /// The reply path and identity of one received message.
    fn link(&self, conn: &Arc<Conn>, properties: &PublishProperties) -> MqttPeer {
        let client = self.client_of(properties);
        let peer = match &client {
            Some(client) => self.peer_of(client),
            // A response topic we cannot read a client id from still names a stable peer.
            None => properties
                .response_topic
                .as_deref()
                .map_or(ANONYMOUS, |t| PeerId(wire::fnv1a(t.as_bytes()))),
        };
        MqttPeer {
            conn: conn.clone(),
            shared: self.me.clone(),
            peer,
            client,
            reply: ReplyRoute::of(properties),
            replica: self.replicated,
        }
    }

    /// A client's presence changed; a known client going offline is gone.
    fn on_presence(&self, topic: &str, payload: &[u8]) {
        let online = serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v.get("online").and_then(serde_json::Value::as_bool));
        if online != Some(false) {
            return;
        }
        let Some(client) = self.topics.extract(Kind::Lwt, topic, "client_id") else { return };
        let gone = {
            let mut clients = lock(&self.clients);
            match clients.get_mut(&client) {
                Some(generation) => {
                    let peer = peer_id(&client, *generation);
                    *generation += 1;
                    Some(peer)
                }
                None => None,
            }
        };
        if let Some(peer) = gone {
            tracing::debug!(%client, %peer, "a client went offline");
            self.inbox.peer_gone(peer);
        }
    }

    /// A message on this server's own presence topic. While the server runs, it is online
    /// whatever anyone else publishes there: a `{"online":false}` (retained or not, e.g. from
    /// any client of the broker, or its own will from before a reconnect) is answered at once
    /// with its retained `{"online":true}`, so callers that saw the false one see the server
    /// back, and later callers find it online. Its own farewell, sent while closing, is left.
    fn on_own_presence(&self, conn: &Arc<Conn>, payload: &[u8]) {
        if crate::presence_state(payload) != Some(false) || conn.is_closed() {
            return;
        }
        let spoofs = self.presence_spoofs.fetch_add(1, Ordering::Relaxed) + 1;
        let log = {
            let mut logged = lock(&self.spoof_logged);
            let due = logged.is_none_or(|at| at.elapsed() >= SPOOF_LOG_INTERVAL);
            if due {
                *logged = Some(Instant::now());
            }
            due
        };
        if log {
            tracing::warn!(interface = %self.interface.name, instance = %self.instance, spoofs, "someone said this running server is offline; restoring its presence");
        }
        let _ = conn.publish_now(
            Kind::Lwt,
            self.topics.topic(Kind::Lwt, ""),
            Bytes::from_static(br#"{"online":true}"#),
            json_properties(),
        );
    }

    /// A replica says at once that it took a request that asks for it (`Ack: 1`): an empty
    /// message to the request's response topic with its correlation data, `Taken: 1` and
    /// `Replica` (this replica's client id). A goal request's goes through the ordered queue, as
    /// the goal's reply does, so it comes first.
    fn acknowledge(&self, conn: &Conn, properties: &PublishProperties, goal: bool) {
        if !self.replicated || wire::user_property(properties, ACK) != Some("1") {
            return;
        }
        let Some(topic) = properties.response_topic.clone() else { return };
        let taken = PublishProperties {
            correlation_data: properties.correlation_data.clone(),
            user_properties: vec![
                (TAKEN.to_owned(), "1".to_owned()),
                (REPLICA.to_owned(), conn.client_id().to_owned()),
            ],
            ..Default::default()
        };
        let sent = if goal {
            conn.publish_ordered(Kind::ActionEvents, topic, Bytes::new(), taken)
        } else {
            conn.publish_rpc(topic, Bytes::new(), taken)
        };
        if let Err(error) = sent {
            tracing::debug!(%error, "could not say that a request was taken");
        }
    }

    /// An action request on this replica's own topic (`…/action/{action}/{op}/{client_id}`): a
    /// goal's cancel or attach, sent to the replica that runs the goal.
    fn handle_replica_action(&self, conn: &Arc<Conn>, topic: &str, publish: Publish) {
        match topic.rsplit_once('/') {
            Some((request, replica)) if replica == conn.client_id() => {
                self.handle_action(conn, request, publish)
            }
            _ => tracing::debug!(%topic, "an action request on an unexpected topic was ignored"),
        }
    }

    fn handle_command(&self, conn: &Arc<Conn>, topic: &str, publish: Publish) {
        let Some(command) = self.topics.extract(Kind::Commands, topic, "command_name") else {
            tracing::debug!(%topic, "a command on an unexpected topic was ignored");
            return;
        };
        let properties = publish.properties.unwrap_or_default();
        if let Some(content_type) = properties.content_type.as_deref()
            && content_type != JSON
        {
            tracing::warn!(%command, %content_type, "a command with a foreign content type was dropped");
            return;
        }
        let link = self.link(conn, &properties);
        let message = ClientMessage::Command { command: command.into(), payload: publish.payload };
        self.inbox.deliver(&Peer::new(Arc::new(link)), message);
    }

    fn handle_action(&self, conn: &Arc<Conn>, topic: &str, publish: Publish) {
        let Some((base, op)) = topic.rsplit_once('/') else { return };
        let Some(action) = self.topics.extract(Kind::ActionRequests, base, "action_name") else {
            tracing::debug!(%topic, "an action request on an unexpected topic was ignored");
            return;
        };
        let properties = publish.properties.unwrap_or_default();
        let link = self.link(conn, &properties);
        let action: Name = action.into();
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let request = goal_payload::decode_request(&publish.payload);
        let message = match (op, request) {
            (_, Err(reason)) => {
                let error = RemoteError::new(
                    ErrorCode::PayloadError,
                    "PayloadError",
                    format!("the {op} request of action `{action}` is malformed: {reason}"),
                );
                let goal = switchboard_core::action::GoalId::from("");
                let _ =
                    link.send(ServerMessage::GoalReply { id, action, goal, result: Err(error) });
                return;
            }
            ("goal", Ok(goal)) => {
                self.acknowledge(conn, &properties, true);
                ClientMessage::SendGoal { id, action, payload: goal.args, goal: goal.goal }
            }
            ("cancel", Ok(goal)) => ClientMessage::CancelGoal { id, action, goal: goal.goal },
            ("attach", Ok(goal)) => {
                ClientMessage::AttachGoal { id, action, follow: goal.follow, goal: goal.goal }
            }
            (other, Ok(goal)) => {
                let error = RemoteError::new(
                    ErrorCode::MethodNotFound,
                    "UnknownRequest",
                    format!("actions have no `{other}` request (expected goal, cancel or attach)"),
                );
                let goal = goal.goal;
                let _ =
                    link.send(ServerMessage::GoalReply { id, action, goal, result: Err(error) });
                return;
            }
        };
        self.inbox.deliver(&Peer::new(Arc::new(link)), message);
    }

    fn current_value(&self, property: &str) -> (u64, Bytes) {
        lock(&self.values).get(property).cloned().unwrap_or((0, Bytes::from_static(b"{}")))
    }

    fn handle_update(&self, conn: &Arc<Conn>, property: String, publish: Publish, link: MqttPeer) {
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
            Kind::Lwt,
            lwt,
            Bytes::from_static(br#"{"online":true}"#),
            json_properties(),
        );
        self.publish_info(conn);
        let values: Vec<_> =
            lock(&self.values).iter().map(|(k, (v, p))| (k.clone(), *v, p.clone())).collect();
        for (property, version, payload) in values {
            let (topic, payload, properties) = self.value_message(&property, version, payload);
            let _ = conn.publish_now(Kind::PropertyValues, topic, payload, properties);
        }
    }

    fn on_publish(&self, conn: &Arc<Conn>, route: &Route, publish: Publish) {
        let Ok(topic) = std::str::from_utf8(&publish.topic).map(str::to_owned) else {
            tracing::debug!("a request on a non-UTF-8 topic was ignored");
            return;
        };
        let topic = topic.as_str();
        let properties = publish.properties.clone().unwrap_or_default();
        match route {
            Route::Requests => {
                let Some(method) = self.topics.extract(Kind::MethodRequests, topic, "method_name")
                else {
                    tracing::debug!(%topic, "a request on an unexpected topic was ignored");
                    return;
                };
                let link = self.link(conn, &properties);
                self.acknowledge(conn, &properties, false);
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
                let link = self.link(conn, &properties);
                self.handle_update(conn, property, publish, link);
            }
            Route::Commands => self.handle_command(conn, topic, publish),
            Route::ActionRequests => self.handle_action(conn, topic, publish),
            Route::ReplicaActionRequests => self.handle_replica_action(conn, topic, publish),
            Route::ClientPresence => self.on_presence(topic, &publish.payload),
            Route::OwnPresence => self.on_own_presence(conn, &publish.payload),
            other => tracing::debug!(?other, "unexpected route on a server connection"),
        }
    }

    fn on_lost(&self, _conn: &Arc<Conn>, error: TransportError) {
        tracing::warn!(%error, interface = %self.interface.name, instance = %self.instance, "server lost its broker; reconnecting");
    }
}

/// The peer id of `client` in generation `generation`.
fn peer_id(client: &str, generation: u64) -> PeerId {
    let id = if generation == 0 {
        wire::fnv1a(client.as_bytes())
    } else {
        wire::fnv1a(format!("{client}\u{0}{generation}").as_bytes())
    };
    // Never the anonymous peer.
    PeerId(id.max(1))
}

/// One received message's sender, as the core's `Peer`: the client's identity (its client id,
/// which names the client-specific topics for events to it), plus the reply route of the one
/// request it came with.
struct MqttPeer {
    conn: Arc<Conn>,
    shared: Weak<ServerShared>,
    peer: PeerId,
    client: Option<String>,
    reply: ReplyRoute,
    /// The server is one of several replicas: its answers to goal requests name it.
    replica: bool,
}

/// Where the answer to one request goes: the response topic and correlation data the request
/// carried. It belongs to the request, not to the client: one client's requests may each name a
/// different route, and a request without a response topic gets no answer (as in StingerIPC).
#[derive(Debug, Clone, Default)]
struct ReplyRoute {
    topic: Option<String>,
    correlation: Option<Bytes>,
}

impl ReplyRoute {
    fn of(properties: &PublishProperties) -> Self {
        ReplyRoute {
            topic: properties.response_topic.clone(),
            correlation: properties.correlation_data.clone(),
        }
    }

    /// The topic to answer on and JSON publish properties carrying the correlation data, or
    /// `None` when the request asked for no answer.
    fn answer(&self) -> Option<(String, PublishProperties)> {
        let topic = self.topic.clone()?;
        let mut properties = json_properties();
        properties.correlation_data = self.correlation.clone();
        Some((topic, properties))
    }
}

impl MqttPeer {
    /// The sender's client-specific topic of `kind`, or why there is none.
    fn client_topic(&self, kind: Kind, name: &str) -> Result<String, TransportError> {
        let (Some(client), Some(shared)) = (&self.client, self.shared.upgrade()) else {
            return Err(TransportError::not_connected(format!(
                "{} names no MQTT client id, so nothing can be sent to it",
                self.peer
            )));
        };
        Ok(shared.topics.for_client(client).topic(kind, name))
    }
}

impl std::fmt::Debug for MqttPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttPeer")
            .field("peer", &self.peer)
            .field("client", &self.client)
            .field("reply", &self.reply.topic)
            .finish_non_exhaustive()
    }
}

fn error_properties(properties: &mut PublishProperties, error: &RemoteError) {
    properties.user_properties.push((RETURN_CODE.to_owned(), error.code().as_u8().to_string()));
    properties.user_properties.push((wire::DEBUG_INFO.to_owned(), clean(error.message())));
    properties.user_properties.push((ERROR_NAME.to_owned(), clean(error.name())));
    if let Some(details) = error.details() {
        // JSON text never holds raw control characters; it is not shortened, so fields round-trip.
        properties.user_properties.push((wire::ERROR_DETAILS.to_owned(), details.to_string()));
    }
}

impl PeerLink for MqttPeer {
    fn id(&self) -> PeerId {
        self.peer
    }

    fn credentials(&self) -> Option<PeerCredentials> {
        None
    }

    fn send(&self, message: ServerMessage) -> Result<(), TransportError> {
        let message = match message {
            ServerMessage::Signal { signal, payload } => {
                let topic = self.client_topic(Kind::ClientSignals, &signal)?;
                if !self.conn.is_connected() {
                    return Err(self.conn.not_connected());
                }
                return self.conn.publish_ordered(
                    Kind::ClientSignals,
                    topic,
                    payload,
                    json_properties(),
                );
            }
            ServerMessage::GoalEvent { action, goal, event } => {
                let topic = self.client_topic(Kind::ActionEvents, &action)?;
                let (kind, code, payload) = goal_payload::encode_event(&goal, &event);
                let mut properties = json_properties();
                properties.user_properties.push((GOAL_EVENT.to_owned(), kind.to_owned()));
                if let Some(code) = code {
                    properties.user_properties.push((RETURN_CODE.to_owned(), code.to_string()));
                }
                return self.conn.publish_ordered(Kind::ActionEvents, topic, payload, properties);
            }
            ServerMessage::GoalReply { goal, result, .. } => {
                let Some((topic, mut properties)) = self.reply.answer() else { return Ok(()) };
                if self.replica {
                    // The client sends the goal's cancel and attach to this replica alone.
                    let replica = self.conn.client_id().to_owned();
                    properties.user_properties.push((REPLICA.to_owned(), replica));
                }
                let payload = match result {
                    Ok(snapshot) => {
                        properties.user_properties.push((RETURN_CODE.to_owned(), "0".to_owned()));
                        goal_payload::encode_state(
                            &goal,
                            snapshot.status,
                            snapshot.outcome.as_ref(),
                        )
                        .1
                    }
                    Err(error) => {
                        error_properties(&mut properties, &error);
                        goal_payload::encode_error(&goal, &error)
                    }
                };
                return self.conn.publish_ordered(Kind::ActionEvents, topic, payload, properties);
            }
            other => other,
        };
        let Some((topic, mut properties)) = self.reply.answer() else {
            // StingerIPC: a request without a response topic runs, and nothing is sent.
            return Ok(());
        };
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

/// A running MQTT server transport. Closing it clears its discovery entry and retained values
/// and announces it offline, and completes once that farewell has reached the broker; dropping
/// it sends the same farewell without waiting.
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
        let conn = match self.conn() {
            Ok(conn) => conn,
            Err(error) => return Box::pin(std::future::ready(Err(error))),
        };
        if let ServerMessage::Signal { signal, payload } = message {
            // Signals are the hot path: no waiting future unless rumqttc's queue is full.
            if !conn.is_connected() {
                return Box::pin(std::future::ready(Err(conn.not_connected())));
            }
            let topic = self.shared.signal_topic(&signal);
            return conn.publish_when_ready(Kind::Signals, topic, payload, json_properties());
        }
        Box::pin(async move {
            match message {
                ServerMessage::PropertyValue { property, version, payload } => {
                    lock(&self.shared.values).insert(property.clone(), (version, payload.clone()));
                    if !conn.is_connected() {
                        // Republished with everything else once the broker is back.
                        return Ok(());
                    }
                    let (topic, payload, properties) =
                        self.shared.value_message(&property, version, payload);
                    conn.publish(Kind::PropertyValues, topic, payload, properties).await
                }
                other => Err(TransportError::new(
                    TransportErrorKind::Protocol,
                    format!("the MQTT transport cannot broadcast {other:?}"),
                )),
            }
        })
    }

    fn close(&self) -> switchboard_core::transport::BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(conn) = self.shared.conn.get() {
                conn.close(self.shared.farewell()).await;
            }
        })
    }
}

impl Drop for MqttServer {
    fn drop(&mut self) {
        if let Some(conn) = self.shared.conn.get() {
            conn.start_close(self.shared.farewell());
        }
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
