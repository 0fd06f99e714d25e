//! The server half of the brokered layer: consuming the instance's queues, answering each
//! request where it says, publishing signals and property values, announcing the server's
//! presence, and knowing which clients are alive.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use switchboard_core::{
    ErrorCode, InterfaceDescriptor, PeerCredentials, PeerId, RemoteError, TransportError,
    TransportErrorKind,
    action::GoalId,
    compat::{Hello, short_hash},
    error_payload, goal_payload,
    message::{ClientMessage, Name, ServerMessage},
    transport::{BoxFuture, Fanout, Peer, PeerLink, ServerInbox, ServerTransport, ServiceTarget},
};
use tokio::{sync::watch, task::JoinHandle, time::Instant};

use crate::{
    address::BrokerAddress,
    bus::{Bus, BusMessage, EnvelopeStyle, LinkState, ReplyRoute, Sink},
    client::{lock, random_id, too_large},
    envelope::{self, Envelope, Kind, Meta, Op, PROTOCOL, refusal},
    layout::{self, Inbox, Layout, valid_segment},
    log_limit::{LogLimit, limited_warn},
    options::{BrokerOptions, DEFAULT_HEARTBEAT, Replicas},
    outbox::{Outbox, Outgoing},
    presence::{DiscoveryFilter, Presence, Role},
};

/// How long an event to one client waits for room in the outbox.
const OUTBOX_PATIENCE: Duration = Duration::from_secs(2);

/// Starts serving `target` on the broker at `address`.
pub(crate) async fn bind(
    address: &BrokerAddress,
    target: ServiceTarget,
    inbox: Arc<dyn ServerInbox>,
) -> Result<Arc<dyn ServerTransport>, TransportError> {
    let layout = Layout::new(&target.interface, &target.instance)?;
    refuse_unreplicable(&target.interface, address.options().replicas)?;
    let id = random_id();
    let bus =
        address.connector().open(&format!("switchboard-server-{id}"), address.options()).await?;
    let profile = bus.profile().clone();
    let outbox = Outbox::start(bus.clone(), layout.presence());
    let interface = target.interface;
    let server = Arc::new_cyclic(|me| Server {
        signal_topics: interface.signals.iter().map(|s| (s.clone(), layout.signal(s))).collect(),
        property_topics: interface
            .properties
            .iter()
            .map(|p| (p.name.clone(), layout.property(&p.name)))
            .collect(),
        hello: Hello::describe(&interface, &target.instance, PROTOCOL),
        style: profile.envelope,
        route: profile.replies,
        broker: address.to_string(),
        options: address.options().clone(),
        bus: bus.clone(),
        interface,
        layout,
        id,
        inbox,
        outbox,
        clients: Mutex::new(HashMap::new()),
        linked: AtomicBool::new(false),
        next_request: AtomicU64::new(1),
        next_peer: AtomicU64::new(1),
        closed: AtomicBool::new(false),
        tasks: Mutex::new(Vec::new()),
        log: LogLimit::new(),
        me: me.clone(),
    });
    let handle = BrokerServer { server: server.clone() };
    let generation = match &*bus.link().borrow() {
        LinkState::Up { generation } => *generation,
        _ => 0,
    };
    // On failure, dropping the server ends its writer, which closes the bus.
    server.register(generation).await?;
    server.announce(false).await;
    let tasks = [
        tokio::spawn(watch_link(server.me.clone(), bus.link(), generation)),
        tokio::spawn(keep_alive(server.me.clone())),
    ];
    lock(&server.tasks).extend(tasks);
    Ok(Arc::new(handle))
}

/// Refuses to serve, as one of several replicas, an interface with properties: each replica
/// would keep and publish its own values, so two of them could contradict each other.
fn refuse_unreplicable(
    interface: &InterfaceDescriptor,
    replicas: Replicas,
) -> Result<(), TransportError> {
    if replicas != Replicas::Shared || interface.properties.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = interface.properties.iter().map(|p| &*p.name).collect();
    Err(TransportError::new(
        TransportErrorKind::InvalidAddress,
        format!(
            "interface {} cannot be served with `replicas=shared`: it has properties ({}), and each replica would publish values of its own; serve it from one server (without `replicas`), or move the properties to an interface of their own",
            interface.name,
            names.join(", ")
        ),
    ))
}

/// A running server, as the core holds it. Closing (or dropping) it says goodbye.
struct BrokerServer {
    server: Arc<Server>,
}

impl std::fmt::Debug for BrokerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerServer")
            .field("interface", &self.server.interface.name)
            .field("instance", &self.server.hello.instance)
            .field("broker", &self.server.broker)
            .finish_non_exhaustive()
    }
}

impl ServerTransport for BrokerServer {
    fn fanout(&self) -> Fanout {
        Fanout::Broker
    }

    fn publish(&self, message: ServerMessage) -> BoxFuture<'_, Result<(), TransportError>> {
        match message {
            ServerMessage::Signal { signal, payload } => {
                self.server.publish_signal(&signal, payload)
            }
            other => Box::pin(self.server.publish(other)),
        }
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.server.close()
    }
}

impl Drop for BrokerServer {
    /// Says goodbye without waiting, where a runtime is there to say it.
    fn drop(&mut self) {
        let farewell = self.server.close();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(farewell);
        }
    }
}

struct Server {
    bus: Arc<dyn Bus>,
    style: EnvelopeStyle,
    route: ReplyRoute,
    layout: Layout,
    /// This server's id, in its presence.
    id: String,
    hello: Hello,
    interface: Arc<InterfaceDescriptor>,
    broker: String,
    options: BrokerOptions,
    inbox: Arc<dyn ServerInbox>,
    /// Each signal's topic, looked up for every signal emitted (keys are the interface's own
    /// names, so a fast hasher is safe).
    signal_topics: HashMap<Name, String, foldhash::fast::RandomState>,
    property_topics: HashMap<Name, String>,
    outbox: Outbox,
    /// Our clients, by client id.
    clients: Mutex<HashMap<String, Known>>,
    linked: AtomicBool,
    next_request: AtomicU64,
    next_peer: AtomicU64,
    closed: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    log: LogLimit,
    me: Weak<Server>,
}

/// A client of ours the server knows.
struct Known {
    peer: PeerId,
    /// Where events to it go.
    events: Arc<str>,
    /// When it must be heard from again.
    deadline: Instant,
}

/// What a consumed queue is.
#[derive(Clone)]
enum Route {
    Method(Name),
    Control,
}

impl Server {
    /// Consumes the instance's queues and subscribes to discovery and the clients' presence.
    async fn register(&self, generation: u64) -> Result<(), TransportError> {
        if generation == 0 {
            return Err(TransportError::not_connected(format!(
                "no connection to the broker at {}",
                self.broker
            )));
        }
        for method in self.interface.methods.iter() {
            let queue = self.layout.method(&method.name);
            self.bus
                .consume(&[queue], self.request_sink(Route::Method(method.name.clone())))
                .await?;
        }
        self.bus.consume(&[self.layout.control()], self.request_sink(Route::Control)).await?;
        if self.options.replicas == Replicas::Shared {
            // A goal's later requests come here: its answer names this replica.
            let own = self.layout.replica(&self.id);
            self.bus.consume(&[own], self.request_sink(Route::Control)).await?;
        }
        let me = self.me.clone();
        let probe: Sink = Arc::new(move |_: &str, message| {
            if let Some(server) = me.upgrade() {
                server.on_probe(message);
            }
        });
        self.bus.subscribe(layout::DISCOVER, probe).await?;
        let me = self.me.clone();
        let clients: Sink = Arc::new(move |_: &str, message| {
            if let Some(server) = me.upgrade() {
                server.on_client_presence(message);
            }
        });
        self.bus.subscribe(&self.layout.clients(), clients).await?;
        let me = self.me.clone();
        let servers: Sink = Arc::new(move |_: &str, message| {
            if let Some(server) = me.upgrade() {
                server.on_server_presence(message);
            }
        });
        self.bus.subscribe(&self.layout.presence(), servers).await?;
        self.linked.store(true, Ordering::Release);
        Ok(())
    }

    fn request_sink(&self, route: Route) -> Sink {
        let me = self.me.clone();
        Arc::new(move |_: &str, message| {
            if let Some(server) = me.upgrade() {
                server.on_request(&route, message);
            }
        })
    }

    /// The server's announcement; a `brief` one (a heartbeat) leaves the description out.
    fn presence(&self, online: bool, brief: bool) -> BusMessage {
        let hello = if brief || !online {
            Hello { description: None, ..self.hello.clone() }
        } else {
            self.hello.clone()
        };
        let presence = Presence {
            online,
            role: Role::Server,
            id: self.id.clone(),
            heartbeat_ms: u64::try_from(self.options.heartbeat.as_millis()).unwrap_or(u64::MAX),
            title: self.interface.title.to_string(),
            replicas: self.options.replicas,
            brief: brief && online,
            hello,
        };
        BusMessage::new(Bytes::from(serde_json::to_vec(&presence).unwrap_or_default()))
    }

    /// Announces this server as alive (its farewell is the outbox's last message): with its
    /// description, or `brief`ly (a heartbeat), without it.
    async fn announce(&self, brief: bool) {
        let announced =
            self.bus.announce(&self.layout.presence(), self.presence(true, brief)).await;
        if let Err(error) = announced {
            tracing::debug!(%error, "could not announce the server's presence");
        }
    }

    /// Publishes a signal: the hot path, so the bus's own future is the only one made.
    fn publish_signal(
        &self,
        signal: &str,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), TransportError>> {
        let refused = |error| -> BoxFuture<'_, _> { Box::pin(std::future::ready(Err(error))) };
        if !self.linked.load(Ordering::Acquire) {
            return refused(self.not_connected());
        }
        if payload.len() > self.options.max_body {
            return refused(too_large(payload.len(), self.options.max_body));
        }
        match self.signal_topics.get(signal) {
            Some(topic) => self.bus.publish(topic, BusMessage::new(payload)),
            None => refused(TransportError::new(
                TransportErrorKind::Protocol,
                format!("interface {} has no signal `{signal}`", self.interface.name),
            )),
        }
    }

    /// Publishes a property's value.
    async fn publish(&self, message: ServerMessage) -> Result<(), TransportError> {
        match message {
            ServerMessage::PropertyValue { property, version, payload } => {
                if !self.linked.load(Ordering::Acquire) {
                    // Kept by the core; watchers read it again when they are back.
                    return Ok(());
                }
                let meta = Meta { version: Some(version), ..Meta::default() };
                let envelope = Envelope { meta, reply_to: None, payload };
                let message = self.encode(envelope)?;
                let topic = match self.property_topics.get(&property) {
                    Some(topic) => topic,
                    None => &self.layout.property(&property),
                };
                match self.bus.publish(topic, message).await {
                    // The link went down just now; as above.
                    Err(error)
                        if matches!(
                            error.kind(),
                            TransportErrorKind::NotConnected | TransportErrorKind::Disconnected
                        ) =>
                    {
                        tracing::debug!(%property, %error, "a property change is not published while the broker is away");
                        Ok(())
                    }
                    sent => sent,
                }
            }
            other => Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("the brokered layer cannot broadcast {other:?}"),
            )),
        }
    }

    fn encode(&self, envelope: Envelope) -> Result<BusMessage, TransportError> {
        if envelope.payload.len() > self.options.max_body {
            return Err(too_large(envelope.payload.len(), self.options.max_body));
        }
        envelope::encode(self.style, envelope)
            .map_err(|e| TransportError::new(TransportErrorKind::Protocol, e.to_string()))
    }

    fn not_connected(&self) -> TransportError {
        TransportError::not_connected(format!("no connection to the broker at {}", self.broker))
    }

    // -----------------------------------------------------------------------------------------
    // Requests.

    fn on_request(&self, route: &Route, message: BusMessage) {
        let carried_reply = message.reply_to.clone();
        if message.body.len() > self.options.max_body {
            let error = RemoteError::new(
                ErrorCode::PayloadError,
                refusal::PAYLOAD_TOO_LARGE,
                format!(
                    "a request of {} bytes is larger than this server's max_body ({} bytes)",
                    message.body.len(),
                    self.options.max_body
                ),
            );
            self.refuse_unreadable(carried_reply, error);
            return;
        }
        let envelope = match envelope::decode(self.style, message) {
            Ok(envelope) => envelope,
            Err(error) => {
                let error = malformed(format!("the request's envelope is unreadable: {error}"));
                self.refuse_unreadable(carried_reply, error);
                return;
            }
        };
        let op = match route {
            Route::Method(_) => None,
            Route::Control => envelope.meta.op,
        };
        let (link, anonymous) = self.link_for(&envelope);
        if let (Some(theirs), Some(ours)) = (&envelope.meta.hash, &self.hello.hash)
            && theirs != ours
        {
            let error = RemoteError::new(
                ErrorCode::PayloadError,
                refusal::INCOMPATIBLE_INTERFACE,
                format!(
                    "the request was made for interface hash sha256:{}, but this server serves {}",
                    short_hash(theirs),
                    self.hello.summary()
                ),
            );
            self.refuse(&link, op, envelope.meta.name.as_deref(), error);
            return;
        }
        let ack = envelope.meta.ack;
        let request = match route {
            Route::Method(method) => Ok(ClientMessage::Call {
                id: self.next_request.fetch_add(1, Ordering::Relaxed),
                method: method.clone(),
                payload: envelope.payload,
            }),
            Route::Control => self.control_request(envelope.meta, envelope.payload),
        };
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                self.refuse(&link, op, None, error);
                return;
            }
        };
        if ack && self.options.replicas == Replicas::Shared {
            self.say_taken(&link);
        }
        let follows_a_goal = matches!(
            request,
            ClientMessage::SendGoal { .. } | ClientMessage::AttachGoal { follow: true, .. }
        );
        let peer = link.peer;
        self.inbox.deliver(&Peer::new(Arc::new(link)), request);
        if anonymous && !follows_a_goal {
            // A client that names itself not is one peer per request: nothing waits for it
            // to come back once its request is delivered.
            self.inbox.peer_gone(peer);
        }
    }

    /// Tells the client that this replica took its request (it asked, with `sb-ack`), ahead of
    /// the answer: the client then fails the request at once should this replica die.
    fn say_taken(&self, link: &Link) {
        let Some(reply_to) = &link.reply_to else { return };
        let meta = Meta {
            kind: Some(Kind::Taken),
            id: link.correlation.clone(),
            replica: Some(self.id.clone()),
            ..Meta::default()
        };
        let taken = self.encode(Envelope { meta, reply_to: None, payload: Bytes::new() });
        let sent =
            taken.and_then(|message| self.outbox.push(Outgoing::Send(reply_to.clone(), message)));
        if let Err(error) = sent {
            limited_warn!(self.log, %error, "could not say that this replica took a request");
        }
    }

    /// The request on the control queue a message asks for.
    fn control_request(&self, meta: Meta, payload: Bytes) -> Result<ClientMessage, RemoteError> {
        let op = meta.op.ok_or_else(|| malformed("a control request without `sb-op`".into()))?;
        let name = || {
            meta.name
                .clone()
                .ok_or_else(|| malformed(format!("a `{}` request without `sb-name`", op.as_str())))
        };
        let property = || -> Result<Name, RemoteError> {
            let name = name()?;
            Ok(match self.interface.property(&name) {
                Some(property) => property.name.clone(),
                None => Name::Owned(name),
            })
        };
        let goal = |payload: &Bytes| {
            goal_payload::decode_request(payload)
                .map_err(|e| malformed(format!("the `{}` request is unreadable: {e}", op.as_str())))
        };
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        Ok(match op {
            Op::Get => ClientMessage::GetProperty { id, property: property()? },
            Op::Set => ClientMessage::SetProperty {
                id,
                property: property()?,
                version: meta.version,
                payload,
            },
            Op::Watch => ClientMessage::Watch { property: property()? },
            Op::Command => ClientMessage::Command { command: Name::Owned(name()?), payload },
            Op::Goal => {
                let request = goal(&payload)?;
                let action = Name::Owned(name()?);
                ClientMessage::SendGoal { id, action, goal: request.goal, payload: request.args }
            }
            Op::Cancel => {
                let request = goal(&payload)?;
                ClientMessage::CancelGoal { id, action: Name::Owned(name()?), goal: request.goal }
            }
            Op::Attach => {
                let request = goal(&payload)?;
                let action = Name::Owned(name()?);
                ClientMessage::AttachGoal { id, action, goal: request.goal, follow: request.follow }
            }
            Op::Describe => ClientMessage::Describe { id },
        })
    }

    /// The sender of a request: one of our clients (by the id it names), or an anonymous peer.
    fn link_for(&self, envelope: &Envelope) -> (Link, bool) {
        let client = envelope.meta.client.as_deref().filter(|c| valid_segment(c));
        let (peer, events) = match client {
            Some(client) => {
                let (peer, events) = self.known(client, None);
                (peer, Some(events))
            }
            None => (PeerId(self.next_peer.fetch_add(1, Ordering::Relaxed)), None),
        };
        let link = Link {
            server: self.me.clone(),
            peer,
            events,
            reply_to: envelope.reply_to.clone(),
            correlation: envelope.meta.id.clone(),
        };
        (link, client.is_none())
    }

    /// The peer of client `client`, told to the core when first seen; `lifetime` is how long
    /// it may now stay silent, when its presence says.
    fn known(&self, client: &str, lifetime: Option<Duration>) -> (PeerId, Arc<str>) {
        let now = Instant::now();
        let fallback = 3 * self.options.heartbeat.max(DEFAULT_HEARTBEAT);
        let mut clients = lock(&self.clients);
        if let Some(known) = clients.get_mut(client) {
            known.deadline = known.deadline.max(now + lifetime.unwrap_or(fallback));
            return (known.peer, known.events.clone());
        }
        let peer = PeerId(self.next_peer.fetch_add(1, Ordering::Relaxed));
        let events: Arc<str> = Arc::from(Inbox::new(client, self.route).events());
        let deadline = now + lifetime.unwrap_or(fallback);
        clients.insert(client.to_owned(), Known { peer, events: events.clone(), deadline });
        drop(clients);
        tracing::debug!(%client, %peer, "a client came");
        let identity = Link {
            server: self.me.clone(),
            peer,
            events: Some(events.clone()),
            reply_to: None,
            correlation: None,
        };
        self.inbox.peer_connected(&Peer::new(Arc::new(identity)));
        (peer, events)
    }

    /// Answers a request that could not be read, where the broker carried a reply address.
    fn refuse_unreadable(&self, reply_to: Option<String>, error: RemoteError) {
        match reply_to {
            Some(reply_to) => {
                let link = Link {
                    server: self.me.clone(),
                    peer: PeerId(0),
                    events: None,
                    reply_to: Some(reply_to),
                    correlation: None,
                };
                let _ = link.send(ServerMessage::Reply { id: 0, result: Err(error) });
            }
            None => {
                limited_warn!(self.log, %error, "an unreadable request with no reply address was dropped")
            }
        }
    }

    /// Refuses a request with the answer its kind expects.
    fn refuse(&self, link: &Link, op: Option<Op>, name: Option<&str>, error: RemoteError) {
        let name = || Name::Owned(name.unwrap_or_default().to_owned());
        let answer = match op {
            None | Some(Op::Describe) => ServerMessage::Reply { id: 0, result: Err(error) },
            Some(Op::Get | Op::Set) => ServerMessage::PropertyReply {
                id: 0,
                property: name(),
                version: 0,
                payload: Bytes::from_static(b"{}"),
                error: Some(error),
            },
            Some(Op::Goal | Op::Cancel | Op::Attach) => ServerMessage::GoalReply {
                id: 0,
                action: name(),
                goal: GoalId::from(""),
                result: Err(error),
            },
            Some(_) => {
                limited_warn!(self.log, %error, "a request that expects no answer was refused");
                return;
            }
        };
        if let Err(send) = link.send(answer) {
            limited_warn!(self.log, error = %send, "could not refuse a request");
        }
    }

    // -----------------------------------------------------------------------------------------
    // Presence.

    fn on_probe(&self, message: BusMessage) {
        let filter = if message.body.is_empty() {
            DiscoveryFilter::any()
        } else {
            match serde_json::from_slice::<DiscoveryFilter>(&message.body) {
                Ok(filter) => filter,
                Err(error) => {
                    limited_warn!(self.log, %error, "an unreadable discovery probe was ignored");
                    return;
                }
            }
        };
        if filter.matches(&self.hello) && self.linked.load(Ordering::Acquire) {
            let _ = self.outbox.push(Outgoing::Announce(self.presence(true, false)));
        }
    }

    /// Reports another server announcing itself on this instance, unless both were started as
    /// replicas: calls would be split between them without anyone having asked for it.
    fn on_server_presence(&self, message: BusMessage) {
        let Ok(presence) = serde_json::from_slice::<Presence>(&message.body) else { return };
        if presence.role != Role::Server || !presence.online || presence.id == self.id {
            return;
        }
        if self.options.replicas == Replicas::Shared && presence.replicas == Replicas::Shared {
            return;
        }
        limited_warn!(
            self.log,
            other = %presence.id,
            "another server announces itself on {} `{}`: calls are split between the two; start every server of one instance with `replicas=shared`, or only one",
            self.interface.name,
            self.hello.instance
        );
    }

    fn on_client_presence(&self, message: BusMessage) {
        let presence = match serde_json::from_slice::<Presence>(&message.body) {
            Ok(presence) if presence.role == Role::Client && valid_segment(&presence.id) => {
                presence
            }
            Ok(_) => return,
            Err(error) => {
                limited_warn!(self.log, %error, topic = %self.layout.clients(), "an unreadable client presence was ignored");
                return;
            }
        };
        if presence.online {
            self.known(&presence.id, Some(presence.lifetime()));
            return;
        }
        let gone = lock(&self.clients).remove(&presence.id);
        if let Some(known) = gone {
            tracing::debug!(client = %presence.id, peer = %known.peer, "a client said goodbye");
            self.inbox.peer_gone(known.peer);
        }
    }

    /// Gives every known client a new lifetime from now: while the server had no broker, it
    /// could not hear them.
    fn forgive_silence(&self) {
        let deadline = Instant::now() + 3 * self.options.heartbeat.max(DEFAULT_HEARTBEAT);
        for known in lock(&self.clients).values_mut() {
            known.deadline = known.deadline.max(deadline);
        }
    }

    /// Forgets the clients silent past their lifetime.
    fn expire_clients(&self, now: Instant) {
        let gone: Vec<(String, PeerId)> = {
            let mut clients = lock(&self.clients);
            let gone = clients.extract_if(|_, known| known.deadline <= now);
            gone.map(|(client, known)| (client, known.peer)).collect()
        };
        for (client, peer) in gone {
            tracing::debug!(%client, %peer, "a client stopped announcing itself");
            self.inbox.peer_gone(peer);
        }
    }

    /// Stops serving and says goodbye; the future completes once the farewell has left (bounded).
    fn close(&self) -> BoxFuture<'static, ()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Box::pin(std::future::ready(()));
        }
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        self.linked.store(false, Ordering::Release);
        self.outbox.close(Some(self.presence(false, true)))
    }
}

fn malformed(message: String) -> RemoteError {
    RemoteError::new(ErrorCode::PayloadError, refusal::MALFORMED_REQUEST, message)
}

/// The envelope's metadata and the payload of a method's answer: the reply, or its error
/// (`sb-code`, `sb-error` and the error's body); a reply larger than `max_body` becomes that
/// error. `correlation` is the request's id, echoed.
pub(crate) fn answer(
    correlation: Option<String>,
    result: Result<Bytes, RemoteError>,
    max_body: usize,
) -> (Meta, Bytes) {
    let mut meta = Meta { id: correlation, ..Meta::default() };
    let result = result.and_then(|payload| {
        if payload.len() <= max_body {
            return Ok(payload);
        }
        Err(RemoteError::new(
            ErrorCode::ServerSerializationError,
            refusal::PAYLOAD_TOO_LARGE,
            format!(
                "the reply of {} bytes is larger than the server's max_body ({max_body} bytes)",
                payload.len()
            ),
        ))
    });
    match result {
        Ok(payload) => (meta, payload),
        Err(error) => {
            meta.code = error.code().as_u8();
            meta.error = Some(error.name().to_owned());
            (meta, error_payload::encode(&error))
        }
    }
}

/// One request's sender, as the core sees it: the client's identity and where answers to this
/// request go. The identity link of a client (told to the core when it first shows up) has no
/// request, only the client's inbox for events.
struct Link {
    server: Weak<Server>,
    peer: PeerId,
    /// Where events to the client go; `None` for a client that named itself not.
    events: Option<Arc<str>>,
    /// Where answers to the request go.
    reply_to: Option<String>,
    /// The request's correlation id, echoed in its answers.
    correlation: Option<String>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("peer", &self.peer)
            .field("events", &self.events)
            .field("reply_to", &self.reply_to)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// The message on the wire and where it goes; `None` when it has nowhere to go.
    fn outgoing(
        &self,
        server: &Server,
        message: ServerMessage,
    ) -> Result<Option<Outgoing>, TransportError> {
        if let ServerMessage::Reply { result, .. } = message {
            let Some(reply_to) = &self.reply_to else { return Ok(None) };
            let (meta, payload) = answer(self.correlation.clone(), result, server.options.max_body);
            let message = server.encode(Envelope { meta, reply_to: None, payload })?;
            return Ok(Some(Outgoing::Send(reply_to.clone(), message)));
        }
        let mut meta = Meta { id: self.correlation.clone(), ..Meta::default() };
        let mut failed = |error: &RemoteError| {
            meta.code = error.code().as_u8();
            meta.error = Some(error.name().to_owned());
        };
        let (to_events, payload) = match message {
            ServerMessage::PropertyReply { property, version, payload, error, .. } => {
                let payload = match &error {
                    Some(error) => {
                        failed(error);
                        error_payload::encode_property(error, &payload)
                    }
                    None => payload,
                };
                meta.kind = Some(Kind::Property);
                meta.name = Some(property.into_owned());
                meta.version = Some(version);
                (false, payload)
            }
            ServerMessage::PropertyValue { property, version, payload } => {
                meta.kind = Some(Kind::Value);
                meta.name = Some(property.into_owned());
                meta.version = Some(version);
                (self.reply_to.is_none(), payload)
            }
            ServerMessage::GoalReply { action, goal, result, .. } => {
                let payload = match &result {
                    Ok(snapshot) => {
                        goal_payload::encode_state(
                            &goal,
                            snapshot.status,
                            snapshot.outcome.as_ref(),
                        )
                        .1
                    }
                    Err(error) => {
                        failed(error);
                        goal_payload::encode_error(&goal, error)
                    }
                };
                meta.kind = Some(Kind::GoalReply);
                meta.name = Some(action.into_owned());
                if server.options.replicas == Replicas::Shared {
                    meta.replica = Some(server.id.clone());
                }
                (false, payload)
            }
            ServerMessage::GoalEvent { action, goal, event } => {
                let (kind, code, payload) = goal_payload::encode_event(&goal, &event);
                meta.kind = Some(Kind::Goal);
                meta.name = Some(action.into_owned());
                meta.goal = Some(kind.to_owned());
                meta.code = code.unwrap_or(0);
                meta.id = None;
                (true, payload)
            }
            ServerMessage::Signal { signal, payload } => {
                meta.kind = Some(Kind::Signal);
                meta.name = Some(signal.into_owned());
                meta.id = None;
                (true, payload)
            }
            ServerMessage::Description { description, .. } => {
                meta.kind = Some(Kind::Description);
                (false, description)
            }
            other => {
                return Err(TransportError::new(
                    TransportErrorKind::Protocol,
                    format!("the brokered layer cannot send {other:?} to one client"),
                ));
            }
        };
        let address = if to_events {
            match &self.events {
                Some(events) => events.to_string(),
                None => {
                    return Err(TransportError::not_connected(format!(
                        "{} named no client id, so nothing can be sent to it",
                        self.peer
                    )));
                }
            }
        } else {
            match &self.reply_to {
                Some(reply_to) => reply_to.clone(),
                // Nobody waits for this answer (a request sent without a reply address).
                None => return Ok(None),
            }
        };
        let message = server.encode(Envelope { meta, reply_to: None, payload })?;
        Ok(Some(Outgoing::Send(address, message)))
    }
}

impl PeerLink for Link {
    fn id(&self) -> PeerId {
        self.peer
    }

    fn credentials(&self) -> Option<PeerCredentials> {
        None
    }

    fn send(&self, message: ServerMessage) -> Result<(), TransportError> {
        let Some(server) = self.server.upgrade() else {
            return Err(TransportError::new(TransportErrorKind::Closed, "the server was closed"));
        };
        match self.outgoing(&server, message)? {
            Some(outgoing) => server.outbox.push(outgoing),
            None => Ok(()),
        }
    }

    fn send_when_ready(&self, message: ServerMessage) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let Some(server) = self.server.upgrade() else {
                return Err(TransportError::new(
                    TransportErrorKind::Closed,
                    "the server was closed",
                ));
            };
            let Some(outgoing) = self.outgoing(&server, message)? else { return Ok(()) };
            server.outbox.push_waiting(outgoing, OUTBOX_PATIENCE).await
        })
    }
}

/// Follows the link's state: once it is back, everything is consumed and subscribed anew.
async fn watch_link(server: Weak<Server>, mut link: watch::Receiver<LinkState>, mut current: u64) {
    while link.changed().await.is_ok() {
        let state = link.borrow_and_update().clone();
        let Some(server) = server.upgrade() else { return };
        match state {
            LinkState::Down { error, .. } => {
                current = 0;
                server.linked.store(false, Ordering::Release);
                tracing::warn!(broker = %server.broker, %error, interface = %server.interface.name, "the server lost its broker; reconnecting");
            }
            LinkState::Up { generation } if generation != current => {
                current = generation;
                server.linked.store(false, Ordering::Release);
                match server.register(generation).await {
                    Ok(()) => {
                        tracing::info!(broker = %server.broker, "the server is back on its broker");
                        server.announce(false).await;
                        server.forgive_silence();
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not subscribe again after reconnecting")
                    }
                }
            }
            LinkState::Closed => return,
            _ => {}
        }
    }
}

/// Announces the server every heartbeat and forgets clients that went silent.
async fn keep_alive(server: Weak<Server>) {
    let heartbeat = match server.upgrade() {
        Some(server) => server.options.heartbeat,
        None => return,
    };
    let mut ticks = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(server) = server.upgrade() else { return };
        if server.closed.load(Ordering::Acquire) {
            return;
        }
        if server.linked.load(Ordering::Acquire) {
            // Heartbeats carry the hash, not the description: a client asks for that once per
            // new hash (`versions`).
            server.announce(true).await;
            server.expire_clients(Instant::now());
        }
    }
}
