//! The client half of the brokered layer: finding the server by its presence and checking it is
//! compatible, requests out to the instance's queues, answers and events in from the client's
//! inbox, signals and property values from their topics, and keeping all of that alive across
//! lost links and lost servers.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
pub(crate) use switchboard_core::sync::lock;

use bytes::Bytes;
use switchboard_core::{
    ErrorCode, InterfaceDescriptor, RemoteError, TransportError, TransportErrorKind,
    action::{GoalEvent, GoalId},
    compat::Hello,
    error::names,
    error_payload, goal_payload,
    message::{ClientMessage, Name, RequestId, ServerMessage},
    transport::{BoxFuture, ClientInbox, ClientTransport, ServiceTarget},
};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    address::BrokerAddress,
    bus::{Bus, BusMessage, BusStatus, EnvelopeStyle, LinkState, Sink, SubscriptionId},
    envelope::{self, Envelope, Kind, Meta, Op, PROTOCOL},
    layout::{self, Inbox, Layout},
    log_limit::{LogLimit, limited_warn},
    options::BrokerOptions,
    presence::{DiscoveryFilter, Liveness, Presence, Role},
    replica_ledger::ReplicaLedger,
    versions::{Verdict, Versions},
};

/// A fresh id for a client or server connection: 32 hex digits.
pub(crate) fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// How long a farewell may take before the connection closes without it.
pub(crate) const FAREWELL_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects to the server of `target` through the broker at `address`.
pub(crate) async fn connect(
    address: &BrokerAddress,
    target: ServiceTarget,
    inbox: Arc<dyn ClientInbox>,
) -> Result<Arc<dyn ClientTransport>, TransportError> {
    let layout = Layout::new(&target.interface, &target.instance)?;
    let id = random_id();
    let bus =
        address.connector().open(&format!("switchboard-client-{id}"), address.options()).await?;
    let profile = bus.profile().clone();
    let options = address.options().clone();
    let client = Arc::new_cyclic(|me| Client {
        method_queues: target
            .interface
            .methods
            .iter()
            .map(|m| (m.name.clone(), layout.method(&m.name)))
            .collect(),
        mailbox: Inbox::new(&id, profile.replies),
        style: profile.envelope,
        hello: Hello::describe(&target.interface, &target.instance, PROTOCOL),
        interface: target.interface,
        broker: address.to_string(),
        bus,
        layout,
        id,
        inbox,
        options,
        state: Mutex::new(State::default()),
        value_order: Mutex::new(()),
        interface_versions: Mutex::new(Versions::default()),
        closed: AtomicBool::new(false),
        replicated: AtomicBool::new(false),
        replicas: ReplicaLedger::new(),
        tasks: Mutex::new(Vec::new()),
        log: Arc::new(LogLimit::new()),
        me: me.clone(),
    });
    let handle = BrokerClient { client: client.clone() };
    let generation = match &*client.bus.link().borrow() {
        LinkState::Up { generation } => *generation,
        _ => return Err(client.not_connected()),
    };
    client.find_server(generation).await?;
    client.announce().await;
    let link = client.bus.link();
    let tasks = [
        tokio::spawn(watch_link(client.me.clone(), link, generation)),
        tokio::spawn(keep_alive(client.me.clone())),
    ];
    lock(&client.tasks).extend(tasks);
    lock(&client.state).online = true;
    Ok(Arc::new(handle))
}

/// A connected client, as the core holds it. Dropping it closes the connection.
struct BrokerClient {
    client: Arc<Client>,
}

impl std::fmt::Debug for BrokerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerClient")
            .field("interface", &self.client.interface.name)
            .field("broker", &self.client.broker)
            .field("id", &self.client.id)
            .finish_non_exhaustive()
    }
}

impl ClientTransport for BrokerClient {
    fn send(&self, message: ClientMessage) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(self.client.send(message))
    }

    fn can_push_back(&self) -> bool {
        // A broker piles up what a slow reader leaves and drops beyond its own limits, so the
        // client never holds a delivery back.
        false
    }

    fn close(&self) {
        self.client.close();
    }
}

impl Drop for BrokerClient {
    fn drop(&mut self) {
        self.client.close();
    }
}

struct Client {
    bus: Arc<dyn Bus>,
    style: EnvelopeStyle,
    layout: Layout,
    /// Each method's queue, looked up for every call (keys are the interface's own names, so
    /// a fast hasher is safe).
    method_queues: HashMap<Name, String, foldhash::fast::RandomState>,
    mailbox: Inbox,
    /// This client's id: in its requests, its presence and its inbox's name.
    id: String,
    hello: Hello,
    interface: Arc<InterfaceDescriptor>,
    /// The broker's URL, for messages.
    broker: String,
    options: BrokerOptions,
    inbox: Arc<dyn ClientInbox>,
    state: Mutex<State>,
    /// Held from a property value's version check to its delivery, so that the topic and the
    /// inbox, which deliver on separate tasks, cannot hand the core an older value after a
    /// newer one.
    value_order: Mutex<()>,
    /// The versions of the interface met among the instance's servers: a verdict per hash (a
    /// server of another hash is compared member by member once), and the hash of each live
    /// server, from which the agreement the core holds and the hash requests carry (`request`)
    /// follow. Locked after `state` when both are.
    interface_versions: Mutex<Versions>,
    closed: AtomicBool,
    /// A server of the instance announced itself as one of several replicas: method calls and
    /// goal requests ask the replica that takes them to say so (`sb-ack`).
    replicated: AtomicBool,
    /// Which replica (by server id) took each request in flight and runs each goal: a goal's
    /// cancel and attach go to its replica's own queue, and both fail when it is gone.
    replicas: ReplicaLedger,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    log: Arc<LogLimit>,
    me: Weak<Client>,
}

#[derive(Default)]
struct State {
    /// The link generation whose subscriptions are in force; 0 while the link is down.
    generation: u64,
    /// Requests may go out: the link is up, a server is live, and everything is restored.
    online: bool,
    /// What the core must be asked to restore once a server is live again.
    restore: Restore,
    /// The servers heard from.
    servers: Liveness,
    /// The shortest heartbeat of any server heard from, for the watchdog's pace.
    server_heartbeat: Option<Duration>,
    /// Signal topics subscribed.
    signals: HashMap<Name, SubscriptionId>,
    /// Property value topics subscribed.
    values: HashMap<Name, SubscriptionId>,
    /// The version of the last value delivered per property: an older one arriving later (the
    /// topic and the inbox are separate streams) is not delivered.
    versions: HashMap<Name, u64>,
    /// The connect call waiting for the first compatible server.
    waiting: Option<oneshot::Sender<Result<(), TransportError>>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Restore {
    #[default]
    Idle,
    /// Something was lost; restore when a server is live.
    Needed,
    Running,
}

impl Client {
    /// Subscribes the inbox and the server's presence, asks the server to announce itself, and
    /// waits for a compatible one.
    async fn find_server(&self, generation: u64) -> Result<(), TransportError> {
        let (found, announced) = oneshot::channel();
        lock(&self.state).waiting = Some(found);
        let result = async {
            self.subscribe_own(generation).await?;
            self.probe().await?;
            match tokio::time::timeout(self.options.connect_timeout, announced).await {
                Ok(Ok(result)) => result,
                _ => Err(TransportError::new(
                    TransportErrorKind::NotFound,
                    format!(
                        "no server of {} instance `{}` announced itself on {} within {:?} (on `{}`)",
                        self.interface.name,
                        self.hello.instance,
                        self.broker,
                        self.options.connect_timeout,
                        self.layout.presence()
                    ),
                )),
            }
        }
        .await;
        lock(&self.state).waiting = None;
        if result.is_err() {
            self.bus.close().await;
        }
        result
    }

    /// Subscribes what the layer itself needs: the inbox and the server's presence.
    async fn subscribe_own(&self, generation: u64) -> Result<(), TransportError> {
        let me = self.me.clone();
        let inbox: Sink = Arc::new(move |address: &str, message| {
            if let Some(client) = me.upgrade() {
                client.on_inbox(address, message);
            }
        });
        let receive = self.mailbox.receive();
        match self.bus.profile().replies {
            crate::bus::ReplyRoute::Subjects => self.bus.subscribe(&receive, inbox).await?,
            _ => self.bus.consume(std::slice::from_ref(&receive), inbox).await?,
        };
        // In force from here: a presence that arrives next may find the restore to run.
        lock(&self.state).generation = generation;
        let me = self.me.clone();
        let presence: Sink = Arc::new(move |_: &str, message| {
            if let Some(client) = me.upgrade() {
                client.on_presence(message);
            }
        });
        self.bus.subscribe(&self.layout.presence(), presence).await?;
        Ok(())
    }

    /// Asks the instance's servers to announce themselves now.
    async fn probe(&self) -> Result<(), TransportError> {
        let filter = DiscoveryFilter::any()
            .interface(self.hello.interface.clone())
            .instance(self.hello.instance.clone());
        let probe = Bytes::from(serde_json::to_vec(&filter).unwrap_or_default());
        self.bus.publish(layout::DISCOVER, BusMessage::new(probe)).await
    }

    /// Announces this client as alive, so its servers know it is (its farewell goes in `Drop`).
    async fn announce(&self) {
        let announced =
            self.bus.announce(&self.layout.clients(), BusMessage::new(self.presence(true))).await;
        if let Err(error) = announced {
            tracing::debug!(%error, "could not announce the client's presence");
        }
    }

    fn presence(&self, online: bool) -> Bytes {
        let presence = Presence {
            online,
            role: Role::Client,
            id: self.id.clone(),
            heartbeat_ms: u64::try_from(self.options.heartbeat.as_millis()).unwrap_or(u64::MAX),
            title: String::new(),
            replicas: crate::options::Replicas::Single,
            brief: false,
            // Servers do not read a client's description; only a server's is compared.
            hello: Hello { description: None, ..self.hello.clone() },
        };
        Bytes::from(serde_json::to_vec(&presence).unwrap_or_default())
    }

    fn not_connected(&self) -> TransportError {
        TransportError::not_connected(format!("no connection to the broker at {}", self.broker))
    }

    /// Sends a message, or fails at once when requests cannot go out now.
    async fn send(&self, message: ClientMessage) -> Result<(), TransportError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TransportError::new(TransportErrorKind::Closed, "the client was closed"));
        }
        let local =
            matches!(message, ClientMessage::Unsubscribe { .. } | ClientMessage::Unwatch { .. });
        if !local {
            let state = lock(&self.state);
            if !state.online {
                return Err(if state.generation == 0 {
                    self.not_connected()
                } else {
                    TransportError::not_connected(format!(
                        "the server of {} instance `{}` is not there; waiting for it to announce itself on {}",
                        self.interface.name, self.hello.instance, self.broker
                    ))
                });
            }
        }
        self.dispatch(message).await
    }

    /// Maps one core message onto the bus.
    async fn dispatch(&self, message: ClientMessage) -> Result<(), TransportError> {
        match message {
            ClientMessage::Call { id, method, payload } => {
                let meta = Meta { ack: self.replicated.load(Ordering::Relaxed), ..Meta::default() };
                let envelope = self.request(Some(id), meta, payload);
                match self.method_queues.get(&method) {
                    Some(queue) => self.send_to(queue, envelope).await,
                    None => self.send_to(&self.layout.method(&method), envelope).await,
                }
            }
            ClientMessage::GetProperty { id, property } => {
                self.control(Some(id), Op::Get, Some(&property), None, Bytes::new()).await
            }
            ClientMessage::SetProperty { id, property, version, payload } => {
                self.control(Some(id), Op::Set, Some(&property), version, payload).await
            }
            ClientMessage::Subscribe { signal } => {
                let topic = self.layout.signal(&signal);
                let name = self.interface.signal(&signal).cloned().unwrap_or(signal);
                let sink = self.signal_sink(name.clone());
                self.ensure_subscribed(topic, name, sink, |state| &mut state.signals).await
            }
            ClientMessage::Unsubscribe { signal } => {
                if let Some(id) = lock(&self.state).signals.remove(&signal) {
                    self.bus.unsubscribe(id);
                }
                Ok(())
            }
            ClientMessage::Watch { property } => {
                // The topic first, then the current value: no change falls in between.
                let topic = self.layout.property(&property);
                let name = self.property_name(&property);
                let me = self.me.clone();
                let sink_name = name.clone();
                let sink: Sink = Arc::new(move |_: &str, message| {
                    if let Some(client) = me.upgrade() {
                        client.on_value(&sink_name, message);
                    }
                });
                self.ensure_subscribed(topic, name, sink, |state| &mut state.values).await?;
                self.control(None, Op::Watch, Some(&property), None, Bytes::new()).await
            }
            ClientMessage::Unwatch { property } => {
                if let Some(id) = lock(&self.state).values.remove(&property) {
                    self.bus.unsubscribe(id);
                }
                Ok(())
            }
            ClientMessage::Command { command, payload } => {
                self.control(None, Op::Command, Some(&command), None, payload).await
            }
            ClientMessage::SendGoal { id, action, goal, payload } => {
                let payload = goal_payload::encode_request(&goal, Some(&payload), None);
                self.control(Some(id), Op::Goal, Some(&action), None, payload).await
            }
            ClientMessage::CancelGoal { id, action, goal } => {
                let payload = goal_payload::encode_request(&goal, None, None);
                let queue = self.goal_queue(&goal);
                self.control_to(&queue, Some(id), Op::Cancel, Some(&action), None, payload).await
            }
            ClientMessage::AttachGoal { id, action, goal, follow } => {
                let payload = goal_payload::encode_request(&goal, None, Some(follow));
                let queue = self.goal_queue(&goal);
                self.control_to(&queue, Some(id), Op::Attach, Some(&action), None, payload).await
            }
            ClientMessage::Describe { id } => {
                self.control(Some(id), Op::Describe, None, None, Bytes::new()).await
            }
            other => Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("the brokered layer cannot carry {other:?}"),
            )),
        }
    }

    /// Subscribes `topic` for `name` unless it already is, recording it in the map `which`
    /// selects. A subscription made while the link was lost is dropped again: the restore that
    /// follows makes it anew.
    async fn ensure_subscribed(
        &self,
        topic: String,
        name: Name,
        sink: Sink,
        which: fn(&mut State) -> &mut HashMap<Name, SubscriptionId>,
    ) -> Result<(), TransportError> {
        let generation = {
            let mut state = lock(&self.state);
            if which(&mut state).contains_key(&name) {
                return Ok(());
            }
            state.generation
        };
        let id = self.bus.subscribe(&topic, sink).await?;
        let mut state = lock(&self.state);
        if state.generation != generation || which(&mut state).contains_key(&name) {
            drop(state);
            self.bus.unsubscribe(id);
        } else {
            which(&mut state).insert(name, id);
        }
        Ok(())
    }

    /// A request's envelope: who sends it, the interface it was generated from, and where the
    /// answer to `id` goes.
    fn request(&self, id: Option<RequestId>, mut meta: Meta, payload: Bytes) -> Envelope {
        meta.client = Some(self.id.clone());
        // The hash of the live servers this client was checked against: equal to its own unless
        // the descriptions differ compatibly, and none when live replicas serve several (each
        // was checked). A dynamic client (no hash) sends none.
        meta.hash = lock(&self.interface_versions).request_hash(&self.hello.hash);
        if self.mailbox.needs_correlation() {
            meta.id = id.map(|id| id.to_string());
        }
        Envelope { meta, reply_to: Some(self.mailbox.reply_to(id)), payload }
    }

    async fn control(
        &self,
        id: Option<RequestId>,
        op: Op,
        name: Option<&str>,
        version: Option<u64>,
        payload: Bytes,
    ) -> Result<(), TransportError> {
        self.control_to(&self.layout.control(), id, op, name, version, payload).await
    }

    /// Sends a control request to `queue`: the instance's control queue, or a replica's own.
    async fn control_to(
        &self,
        queue: &str,
        id: Option<RequestId>,
        op: Op,
        name: Option<&str>,
        version: Option<u64>,
        payload: Bytes,
    ) -> Result<(), TransportError> {
        let ack = op == Op::Goal && self.replicated.load(Ordering::Relaxed);
        let meta =
            Meta { op: Some(op), name: name.map(str::to_owned), version, ack, ..Meta::default() };
        let mut envelope = self.request(id, meta, payload);
        if op == Op::Command {
            envelope.reply_to = None;
        }
        self.send_to(queue, envelope).await
    }

    /// Where a goal's cancel and attach go: the queue of the replica that accepted it, else
    /// the instance's control queue.
    fn goal_queue(&self, goal: &GoalId) -> String {
        match self.replicas.goal_replica(goal) {
            Some(replica) => self.layout.replica(&replica),
            None => self.layout.control(),
        }
    }

    /// Notes which replica runs a goal, from an answer about it; an ended goal is forgotten.
    fn note_goal_replica(&self, goal: &GoalId, replica: Option<&str>, ended: bool) {
        let replica = replica.filter(|replica| layout::valid_segment(replica));
        self.replicas.goal_answer(goal, replica, ended);
    }

    /// Notes that replica `replica` took request `id`, while the request is still awaited.
    fn note_taken(&self, id: RequestId, replica: &str) {
        if layout::valid_segment(replica) {
            self.replicas.taken(&*self.inbox, id, replica);
        }
    }

    /// Forgets which replica took request `id`: its answer is here.
    fn answered(&self, id: Option<RequestId>) {
        if let Some(id) = id
            && self.replicated.load(Ordering::Relaxed)
        {
            self.replicas.answered(id);
        }
    }

    /// Replicas that are gone while the link stays up: the requests they took and the goals
    /// they ran fail at once.
    fn replicas_gone(&self, replicas: &[String], why: &str) {
        let service = format!("{} instance `{}`", self.interface.name, self.hello.instance);
        self.replicas.replicas_gone(&*self.inbox, replicas, &service, why);
    }

    async fn send_to(&self, queue: &str, envelope: Envelope) -> Result<(), TransportError> {
        if envelope.payload.len() > self.options.max_body {
            return Err(too_large(envelope.payload.len(), self.options.max_body));
        }
        let message = envelope::encode(self.style, envelope)
            .map_err(|e| TransportError::new(TransportErrorKind::Protocol, e.to_string()))?;
        self.bus.send(queue, message).await
    }

    fn property_name(&self, name: &str) -> Name {
        match self.interface.property(name) {
            Some(property) => property.name.clone(),
            None => Name::Owned(name.to_owned()),
        }
    }

    fn deliver(&self, message: ServerMessage) {
        // This transport declares it cannot push back, so the core never holds a delivery;
        // should it ever, the delivery finishes in the background rather than being lost
        // (as in `signal_sink`).
        if let Some(held) = self.inbox.deliver(message) {
            tokio::spawn(held);
        }
    }

    /// Notes a value's version; false if a newer one was delivered already.
    fn newer(&self, property: &Name, version: u64) -> bool {
        let mut state = lock(&self.state);
        let last = state.versions.entry(property.clone()).or_insert(0);
        if version <= *last && *last != 0 {
            return false;
        }
        *last = version;
        true
    }

    /// Notes the version of the value a watch asked for; false only if a newer one was delivered
    /// already. The client's own update answered with this very version does not count: the
    /// watch has not seen it yet.
    fn not_older(&self, property: &Name, version: u64) -> bool {
        let mut state = lock(&self.state);
        let last = state.versions.entry(property.clone()).or_insert(0);
        if version < *last {
            return false;
        }
        *last = version;
        true
    }

    // -----------------------------------------------------------------------------------------
    // What arrives.

    /// Where a signal's topic delivers: straight to the core. Signals are the hot path, so
    /// this sink holds what it needs itself rather than finding the client for each one.
    fn signal_sink(&self, signal: Name) -> Sink {
        let (inbox, log, max_body) = (self.inbox.clone(), self.log.clone(), self.options.max_body);
        Arc::new(move |_: &str, message: BusMessage| {
            if message.body.len() > max_body {
                limited_warn!(log, %signal, size = message.body.len(), "a signal larger than max_body was dropped");
                return;
            }
            let signal = ServerMessage::Signal { signal: signal.clone(), payload: message.body };
            if let Some(held) = inbox.deliver(signal) {
                tokio::spawn(held);
            }
        })
    }

    fn on_value(&self, property: &Name, message: BusMessage) {
        if message.body.len() > self.options.max_body {
            limited_warn!(self.log, %property, size = message.body.len(), "a property value larger than max_body was dropped");
            return;
        }
        let envelope = match envelope::decode(self.style, message) {
            Ok(envelope) => envelope,
            Err(error) => {
                limited_warn!(self.log, %property, %error, "an unreadable property value was dropped");
                return;
            }
        };
        let Some(version) = envelope.meta.version else {
            limited_warn!(self.log, %property, "a property value without a version was dropped");
            return;
        };
        let _order = lock(&self.value_order);
        if self.newer(property, version) {
            self.deliver(ServerMessage::PropertyValue {
                property: property.clone(),
                version,
                payload: envelope.payload,
            });
        }
    }

    fn on_inbox(&self, address: &str, message: BusMessage) {
        let addressed = self.mailbox.request_of(address);
        if message.status == Some(BusStatus::NoResponders) {
            match addressed {
                Some(id) => self.inbox.request_failed(
                    id,
                    TransportError::new(
                        TransportErrorKind::NotFound,
                        format!(
                            "no server of {} instance `{}` receives this request (it serves no such method, or it is gone): the broker at {} has no responders for it",
                            self.interface.name, self.hello.instance, self.broker
                        ),
                    ),
                ),
                None => tracing::debug!(%address, "no responders for a request that expects no answer"),
            }
            return;
        }
        let fail = |id: Option<RequestId>, error: TransportError| match id {
            Some(id) => self.inbox.request_failed(id, error),
            None => limited_warn!(self.log, %error, "an unusable message in the inbox was dropped"),
        };
        if message.body.len() > self.options.max_body {
            fail(addressed, too_large(message.body.len(), self.options.max_body));
            return;
        }
        let envelope = match envelope::decode(self.style, message) {
            Ok(envelope) => envelope,
            Err(error) => {
                let message = format!("the server's answer is unreadable: {error}");
                fail(addressed, TransportError::new(TransportErrorKind::Protocol, message));
                return;
            }
        };
        let id = addressed.or_else(|| envelope.meta.id.as_deref().and_then(|id| id.parse().ok()));
        // An answer may carry a property value: its version check and its delivery are one step.
        let _order = lock(&self.value_order);
        match self.read_answer(id, envelope) {
            Ok(Some(message)) => self.deliver(message),
            Ok(None) => {}
            Err(reason) => fail(id, TransportError::new(TransportErrorKind::Protocol, reason)),
        }
    }

    /// Turns what arrived in the inbox into the core's message.
    /// `None` when there is nothing to deliver (a value older than one delivered already).
    fn read_answer(
        &self,
        id: Option<RequestId>,
        envelope: Envelope,
    ) -> Result<Option<ServerMessage>, String> {
        let Envelope { meta, payload, .. } = envelope;
        let need_id = || id.ok_or_else(|| "an answer without a correlation id".to_owned());
        let name = || meta.name.clone().ok_or_else(|| "a message without `sb-name`".to_owned());
        let error = |code: u8| {
            let code = ErrorCode::from_u8(code);
            meta.error.clone().unwrap_or_else(|| default_error_name(code).to_owned())
        };
        Ok(Some(match meta.kind.unwrap_or(Kind::Reply) {
            Kind::Reply => {
                let result = reply_result(&meta, payload);
                self.answered(id);
                ServerMessage::Reply { id: need_id()?, result }
            }
            Kind::Taken => {
                let replica = meta.replica.as_deref().ok_or("`taken` without `sb-replica`")?;
                self.note_taken(need_id()?, replica);
                return Ok(None);
            }
            Kind::Property => {
                let property = self.property_name(&name()?);
                let version = meta.version.unwrap_or(0);
                let (payload, error) = match meta.code {
                    0 => (payload, None),
                    code => {
                        let (error, value) =
                            error_payload::decode_property(ErrorCode::from_u8(code), &payload)
                                .map_err(|e| format!("an unreadable property error: {e}"))?;
                        (value, Some(error))
                    }
                };
                // The answer moves the client's view of the value, so an older value arriving
                // later on the topic must not move it back.
                self.newer(&property, version);
                ServerMessage::PropertyReply { id: need_id()?, property, version, payload, error }
            }
            Kind::Value => {
                let property = self.property_name(&name()?);
                let version = meta.version.ok_or("a value without `sb-version`")?;
                if !self.not_older(&property, version) {
                    // The current value was asked for, and a newer one is here already.
                    return Ok(None);
                }
                ServerMessage::PropertyValue { property, version, payload }
            }
            Kind::GoalReply => {
                self.answered(id);
                let action = Name::Owned(meta.name.clone().unwrap_or_default());
                let (goal, result) = match meta.code {
                    0 => {
                        let (goal, snapshot) = goal_payload::decode_state(&payload)?;
                        let ended = snapshot.status.is_terminal();
                        self.note_goal_replica(&goal, meta.replica.as_deref(), ended);
                        (goal, Ok(snapshot))
                    }
                    code => {
                        let (goal, error) =
                            goal_payload::decode_error(&payload, code, error(code))?;
                        (goal, Err(error))
                    }
                };
                ServerMessage::GoalReply { id: need_id()?, action, goal, result }
            }
            Kind::Goal => {
                let action = Name::Owned(name()?);
                let (goal, event) = goal_payload::decode_event(meta.goal.as_deref(), &payload)?;
                if matches!(event, GoalEvent::Finished(_)) {
                    self.note_goal_replica(&goal, None, true);
                }
                ServerMessage::GoalEvent { action, goal, event }
            }
            Kind::Signal => {
                let signal = name()?;
                let signal = match self.interface.signal(&signal) {
                    Some(known) => known.clone(),
                    None => Name::Owned(signal),
                };
                ServerMessage::Signal { signal, payload }
            }
            Kind::Description => {
                ServerMessage::Description { id: need_id()?, description: payload }
            }
        }))
    }

    fn on_presence(&self, message: BusMessage) {
        let presence = match serde_json::from_slice::<Presence>(&message.body) {
            Ok(presence) if presence.role == Role::Server => presence,
            Ok(_) => return,
            Err(error) => {
                limited_warn!(self.log, %error, topic = %self.layout.presence(), "an unreadable presence announcement was ignored");
                return;
            }
        };
        let now = Instant::now();
        let mut state = lock(&self.state);
        if !presence.online {
            let last = state.servers.farewell(&presence.id);
            let agreed = lock(&self.interface_versions).gone([presence.id.as_str()]);
            drop(state);
            if let Some(agreement) = agreed {
                self.inbox.agreed(agreement);
            }
            self.replicas_gone(std::slice::from_ref(&presence.id), "it said goodbye");
            if last {
                self.server_gone("it said goodbye (`\"online\":false`)");
            }
            return;
        }
        let verdict =
            lock(&self.interface_versions).decide(&self.hello, &presence.hello, presence.brief);
        let error = match verdict {
            Verdict::Compatible => None,
            Verdict::Incompatible(error) => Some(error),
            Verdict::Undescribed => {
                // A heartbeat of a hash not met before: ask the servers for their description
                // (once per hash and heartbeat), and decide when it comes.
                let hash = presence.hello.hash.as_deref().unwrap_or_default();
                if lock(&self.interface_versions).ask(hash)
                    && let Some(me) = self.me.upgrade()
                {
                    tokio::spawn(async move {
                        if let Err(error) = me.probe().await {
                            tracing::debug!(%error, "could not ask the servers for their description");
                        }
                    });
                }
                return;
            }
        };
        if let Some(error) = error {
            let error = TransportError::from(error);
            match state.waiting.take() {
                Some(waiting) => {
                    let _ = waiting.send(Err(error));
                }
                None => {
                    limited_warn!(self.log, %error, "an incompatible server announced itself on this client's instance; ignored")
                }
            }
            return;
        }
        if let Some(agreement) =
            lock(&self.interface_versions).live(&presence.id, &presence.hello.hash)
        {
            self.inbox.agreed(agreement);
        }
        if presence.replicas == crate::options::Replicas::Shared {
            self.replicated.store(true, Ordering::Relaxed);
        }
        let heartbeat = Duration::from_millis(presence.heartbeat_ms.max(1));
        state.server_heartbeat =
            Some(state.server_heartbeat.map_or(heartbeat, |h| h.min(heartbeat)));
        if !state.servers.knows(&presence.id) {
            // A server not heard from before (a restarted one, say): its versions start afresh.
            state.versions.clear();
        }
        state.servers.heard(&presence, now);
        if let Some(waiting) = state.waiting.take() {
            let _ = waiting.send(Ok(()));
        }
        if state.restore == Restore::Needed && state.generation != 0 {
            state.restore = Restore::Running;
            let generation = state.generation;
            drop(state);
            if let Some(me) = self.me.upgrade() {
                tokio::spawn(async move { me.restore(generation).await });
            }
        }
    }

    /// Asks the core what to restore after a loss, sends it, and lets requests out again.
    async fn restore(&self, generation: u64) {
        tracing::info!(interface = %self.interface.name, instance = %self.hello.instance, "the server is back; restoring subscriptions");
        for message in self.inbox.reconnected() {
            if let Err(error) = self.dispatch(message).await {
                tracing::warn!(%error, "could not restore a subscription");
            }
        }
        let mut state = lock(&self.state);
        if state.generation == generation && state.restore == Restore::Running {
            state.restore = Restore::Idle;
            state.online = true;
        } else if state.restore == Restore::Running {
            state.restore = Restore::Needed;
        }
    }

    /// The server is gone while the link stays up: fail what waits for it.
    fn server_gone(&self, why: &str) {
        {
            let mut state = lock(&self.state);
            state.online = false;
            state.restore = Restore::Needed;
            state.versions.clear();
            // Every request in flight fails below.
            self.replicas.forget_requests();
        }
        tracing::warn!(interface = %self.interface.name, instance = %self.hello.instance, "the server is gone: {why}");
        self.inbox.disconnected(TransportError::disconnected(format!(
            "the server of {} instance `{}` on {} is gone: {why}",
            self.interface.name, self.hello.instance, self.broker
        )));
    }

    fn link_down(&self, error: TransportError) {
        {
            let mut state = lock(&self.state);
            state.generation = 0;
            state.online = false;
            state.restore = Restore::Needed;
            state.servers.clear();
            lock(&self.interface_versions).clear_live();
            state.signals.clear();
            state.values.clear();
            state.versions.clear();
            self.replicas.forget_requests();
        }
        tracing::warn!(broker = %self.broker, %error, "lost the broker; reconnecting");
        self.inbox.disconnected(error);
    }

    async fn link_up(&self, generation: u64) {
        if let Err(error) = self.subscribe_own(generation).await {
            tracing::warn!(%error, "could not subscribe after reconnecting");
            return;
        }
        self.announce().await;
        if let Err(error) = self.probe().await {
            tracing::debug!(%error, "could not ask the server to announce itself");
        }
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let bus = self.bus.clone();
        let (topic, farewell) = (self.layout.clients(), BusMessage::new(self.presence(false)));
        runtime.spawn(async move {
            let _ = tokio::time::timeout(FAREWELL_TIMEOUT, bus.publish(&topic, farewell)).await;
            bus.close().await;
        });
    }
}

pub(crate) fn too_large(size: usize, limit: usize) -> TransportError {
    TransportError::new(
        TransportErrorKind::FrameTooLarge,
        format!("a body of {size} bytes is larger than max_body ({limit} bytes)"),
    )
}

/// What a method's answer says: its payload, or the error in it (`sb-code`, `sb-error`).
pub(crate) fn reply_result(meta: &Meta, payload: Bytes) -> Result<Bytes, RemoteError> {
    match meta.code {
        0 => Ok(payload),
        code => {
            let code = ErrorCode::from_u8(code);
            let name = meta.error.clone().unwrap_or_else(|| default_error_name(code).to_owned());
            Err(error_payload::decode(code, name, &payload))
        }
    }
}

/// The error name an answer without `sb-error` stands for.
fn default_error_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::ServerError => names::INTERNAL,
        ErrorCode::ServerDeserializationError => names::INVALID_ARGUMENTS,
        ErrorCode::MethodNotFound => names::UNKNOWN_METHOD,
        ErrorCode::OutOfSync => names::OUT_OF_SYNC,
        ErrorCode::Unauthorized => names::ACCESS_DENIED,
        _ => names::APPLICATION,
    }
}

/// Follows the link's state: a lost link fails what waits; a new one is subscribed anew.
async fn watch_link(client: Weak<Client>, mut link: watch::Receiver<LinkState>, mut current: u64) {
    while link.changed().await.is_ok() {
        let state = link.borrow_and_update().clone();
        let Some(client) = client.upgrade() else { return };
        match state {
            LinkState::Down { error, .. } if current != 0 => {
                current = 0;
                client.link_down(error);
            }
            LinkState::Up { generation } if generation != current => {
                if current != 0 {
                    // Lost and back before this task saw it go.
                    client.link_down(TransportError::disconnected(format!(
                        "the connection to the broker at {} was lost",
                        client.broker
                    )));
                }
                current = generation;
                client.link_up(generation).await;
            }
            LinkState::Closed => return,
            _ => {}
        }
    }
}

/// Announces the client every heartbeat, and notices a server that stopped announcing itself.
async fn keep_alive(client: Weak<Client>) {
    let mut next_announcement = Instant::now();
    loop {
        let pace = {
            let Some(client) = client.upgrade() else { return };
            let own = client.options.heartbeat;
            let server = lock(&client.state).server_heartbeat.unwrap_or(own);
            (own.min(server) / 4).max(Duration::from_millis(5))
        };
        tokio::time::sleep(pace).await;
        let Some(client) = client.upgrade() else { return };
        if client.closed.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let (linked, (gone, expired), agreed) = {
            let mut state = lock(&client.state);
            let (gone, expired) = state.servers.expire(now);
            let agreed = lock(&client.interface_versions).gone(gone.iter().map(String::as_str));
            (state.generation != 0, (gone, expired), agreed)
        };
        if let Some(agreement) = agreed {
            client.inbox.agreed(agreement);
        }
        if !gone.is_empty() {
            client.replicas_gone(
                &gone,
                "it stopped announcing itself (no heartbeat for three of its intervals)",
            );
        }
        if expired {
            client.server_gone(
                "it stopped announcing itself (no heartbeat for three of its intervals)",
            );
        }
        if linked && now >= next_announcement {
            next_announcement = now + client.options.heartbeat;
            // A description asked for and not received is asked for again from now on.
            lock(&client.interface_versions).retry();
            client.announce().await;
        }
    }
}
