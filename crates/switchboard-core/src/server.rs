//! The server machinery generated servers are built on: dispatch of calls to the handler,
//! property state with versions, and delivery of signals and property changes.
//!
//! Property updates and watches both take the property's lock, and every peer's messages are
//! queued in order, so a watcher sees the current value and then every later change, with no gap.
//!
//! Goals of actions are kept here too: each action runs several at once up to its limit
//! ([`ServerOptions`]); a finished goal's end state is kept for a retention period so a late
//! `AttachGoal` still learns it; and the goals of a client that went away are cancelled after a
//! grace period unless a connection re-attaches first.

use crate::sync::lock;
use std::{
    any::Any,
    collections::{HashMap, VecDeque},
    fmt,
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::Bytes;
use futures_util::{FutureExt, future::CatchUnwind};
use serde::{Serialize, de::DeserializeOwned};
use tokio::time::Instant;

use crate::{
    action::{GoalEvent, GoalId, GoalOutcome, GoalRun, GoalStatus, RawGoal, ServerGoal},
    codec,
    context::{CallContext, PeerId},
    descriptor::InterfaceDescriptor,
    error::{ErrorCode, RemoteError, TransportError, TransportErrorKind, names},
    message::{ClientMessage, Name, ServerMessage},
    notify,
    transport::{
        BoxFuture, Fanout, Peer, ServerInbox, ServerTransport, ServiceAddress, ServiceTarget,
    },
};

/// The application side of a server, as generated code implements it.
pub trait Service: Send + Sync + 'static {
    /// Decodes the arguments, runs the handler for `method` and encodes its reply.
    fn call(
        &self,
        method: &str,
        payload: Bytes,
        ctx: CallContext,
    ) -> BoxFuture<'static, Result<Bytes, RemoteError>>;

    /// Decodes a requested property value, lets the handler accept or refuse it, and returns
    /// the value to store, re-encoded.
    fn update_property(
        &self,
        property: &str,
        payload: Bytes,
        ctx: CallContext,
    ) -> BoxFuture<'static, Result<Bytes, RemoteError>>;

    /// Decodes a command's arguments and runs its handler. Nobody is answered: the server logs
    /// a failure. The default knows no commands.
    fn command(
        &self,
        command: &str,
        payload: Bytes,
        ctx: CallContext,
    ) -> BoxFuture<'static, Result<(), RemoteError>> {
        let _ = (payload, ctx);
        let error = RemoteError::new(
            ErrorCode::MethodNotFound,
            names::UNKNOWN_COMMAND,
            format!("no command `{command}`"),
        );
        Box::pin(std::future::ready(Err(error)))
    }

    /// Decodes a goal, lets the handler accept or reject it, and returns the (not yet started)
    /// future that runs it. The default knows no actions.
    fn start_goal(
        &self,
        action: &str,
        payload: Bytes,
        goal: RawGoal,
    ) -> BoxFuture<'static, Result<GoalRun, RemoteError>> {
        let _ = (payload, goal);
        unknown_action(action)
    }
}

/// The default number of goals one action may run at once.
pub const DEFAULT_ACTION_LIMIT: usize = 16;

/// The default time a finished goal's end state is kept for late `AttachGoal` requests.
pub const DEFAULT_GOAL_RETENTION: Duration = Duration::from_secs(60);

/// The default bound on the bytes finished goals' end states hold together.
pub const DEFAULT_GOAL_RETENTION_BYTES: usize = 16 * 1024 * 1024;

/// What a finished goal is counted as beyond its result (or error) and its id, when bounding
/// the retained goals in bytes: the goal's own record and its place in the tables.
pub const ENDED_GOAL_OVERHEAD: usize = 256;

/// The default time a departed client's goals keep running, waiting for a re-attach.
pub const DEFAULT_DISCONNECT_GRACE: Duration = Duration::from_secs(10);

/// Settings for a server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// How many goals an action without its own limit may run at once. Default: 16.
    pub default_action_limit: usize,
    /// Per-action limits, overriding the default.
    pub action_limits: HashMap<String, usize>,
    /// How long a finished goal's end state is kept. Default: 60 s.
    pub goal_retention: Duration,
    /// How many bytes the end states of finished goals may hold together; past it the oldest
    /// are forgotten before their retention runs out. Default: 16 MiB.
    pub goal_retention_bytes: usize,
    /// How long the goals of a client that went away keep running before they are cancelled,
    /// unless a connection re-attaches; `None` never cancels them. Default: 10 s.
    pub disconnect_grace: Option<Duration>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            default_action_limit: DEFAULT_ACTION_LIMIT,
            action_limits: HashMap::new(),
            goal_retention: DEFAULT_GOAL_RETENTION,
            goal_retention_bytes: DEFAULT_GOAL_RETENTION_BYTES,
            disconnect_grace: Some(DEFAULT_DISCONNECT_GRACE),
        }
    }
}

impl ServerOptions {
    /// Limits how many goals `action` may run at once; more are rejected with `TooManyGoals`.
    pub fn action_limit(mut self, action: impl Into<String>, limit: usize) -> Self {
        self.action_limits.insert(action.into(), limit);
        self
    }

    /// Sets the limit for actions without their own.
    pub fn default_action_limit(mut self, limit: usize) -> Self {
        self.default_action_limit = limit;
        self
    }

    /// Sets how long finished goals are remembered.
    pub fn goal_retention(mut self, retention: Duration) -> Self {
        self.goal_retention = retention;
        self
    }

    /// Sets how many bytes finished goals' end states may hold together (each counted as its
    /// result or error, its id and [`ENDED_GOAL_OVERHEAD`]); past it the oldest are forgotten
    /// early. The goal that ended last is always kept, however large.
    pub fn goal_retention_bytes(mut self, bytes: usize) -> Self {
        self.goal_retention_bytes = bytes;
        self
    }

    /// Sets how long a departed client's goals wait for a re-attach; `None` never cancels them.
    pub fn disconnect_grace(mut self, grace: Option<Duration>) -> Self {
        self.disconnect_grace = grace;
        self
    }

    fn limit_of(&self, action: &str) -> usize {
        self.action_limits.get(action).copied().unwrap_or(self.default_action_limit)
    }
}

/// A running server for one service instance, shared by clones.
#[derive(Clone)]
pub struct ServerCore {
    state: Arc<ServerState>,
}

impl fmt::Debug for ServerCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCore")
            .field("interface", &self.state.interface.name)
            .finish_non_exhaustive()
    }
}

struct ServerState {
    interface: Arc<InterfaceDescriptor>,
    service: Arc<dyn Service>,
    transport: OnceLock<Arc<dyn ServerTransport>>,
    properties: HashMap<Name, Mutex<PropertyState>>,
    signals: Mutex<HashMap<Name, Vec<Peer>>>,
    options: ServerOptions,
    /// Every connected peer, for events to one client. Keyed with the standard (SipHash)
    /// hasher: over MQTT a peer's id is derived from the client id the peer chose.
    peers: Mutex<HashMap<PeerId, Peer>>,
    /// Set once the transport reports connections ([`ServerInbox::peer_connected`]); until
    /// then every delivery makes its peer known.
    peers_reported: AtomicBool,
    goals: Mutex<GoalTable>,
    /// Counts this server among the process's running ones, for the service manager; taken
    /// when it shuts down.
    serving: Mutex<Option<notify::Serving>>,
    /// Signals dropped because a brokered transport was reconnecting when they were emitted.
    signals_dropped: AtomicU64,
    /// Set by the first dropped signal of an outage and cleared by the next one published, so
    /// each outage is logged once when it starts and once when it ends.
    dropping_signals: AtomicBool,
    /// The properties are held by another server ([`ServerCore::start_mirror`]): updates are
    /// applied there by the service, and their values and versions arrive here by
    /// [`ServerCore::mirror_property`].
    mirrored: bool,
}

/// The goals the server runs or remembers.
#[derive(Default)]
struct GoalTable {
    by_id: HashMap<GoalId, Arc<ServerGoal>>,
    /// How many goals of each action have not ended (accepted or executing or canceling).
    running: HashMap<Name, usize>,
    /// Ended goals in the order they ended. Every goal is kept for the same retention, so the
    /// front is always the first to go.
    ended: VecDeque<EndedGoal>,
    /// The bytes the goals in `ended` are counted as.
    ended_bytes: usize,
}

/// A finished goal kept for late `AttachGoal` requests.
struct EndedGoal {
    /// When it is to be forgotten; `None` for a retention too long to be a moment in time.
    forget_at: Option<Instant>,
    goal: Arc<ServerGoal>,
    bytes: usize,
}

impl GoalTable {
    /// Forgets the ended goals whose retention has run out by `now`.
    fn prune(&mut self, now: Instant) {
        while self.ended.front().is_some_and(|e| e.forget_at.is_some_and(|at| at <= now)) {
            self.forget_oldest_ended();
        }
    }

    /// Keeps an ended goal until `forget_at`, first forgetting the oldest ones for as long as
    /// the ended goals would hold more than `budget` bytes with it.
    fn keep_ended(&mut self, goal: Arc<ServerGoal>, forget_at: Option<Instant>, budget: usize) {
        let bytes = ended_goal_bytes(&goal);
        while !self.ended.is_empty() && self.ended_bytes + bytes > budget {
            self.forget_oldest_ended();
        }
        self.ended_bytes += bytes;
        self.ended.push_back(EndedGoal { forget_at, goal, bytes });
    }

    fn forget_oldest_ended(&mut self) {
        if let Some(ended) = self.ended.pop_front() {
            self.ended_bytes -= ended.bytes;
            self.by_id.remove(&ended.goal.id);
        }
    }
}

/// The bytes an ended goal is counted as: its result or error, its id and
/// [`ENDED_GOAL_OVERHEAD`].
fn ended_goal_bytes(goal: &ServerGoal) -> usize {
    let outcome = match &goal.lock().outcome {
        Some(GoalOutcome::Succeeded(result)) => result.len(),
        Some(GoalOutcome::Failed(error)) => {
            let details = error.details().map_or(0, |details| details.to_string().len());
            error.name().len() + error.message().len() + details
        }
        Some(GoalOutcome::Cancelled) | None => 0,
    };
    outcome + goal.id.as_str().len() + ENDED_GOAL_OVERHEAD
}

struct PropertyState {
    version: u64,
    payload: Bytes,
    read_only: bool,
    watchers: Vec<Peer>,
}

impl ServerCore {
    /// Starts serving `interface` at `address` with the given initial property values.
    ///
    /// Every property declared by the interface must have an initial value; missing ones start
    /// as `{}` and are reported in the log.
    pub async fn start(
        address: &dyn ServiceAddress,
        interface: &InterfaceDescriptor,
        service: Arc<dyn Service>,
        initial: Vec<(&'static str, Bytes)>,
    ) -> Result<Self, TransportError> {
        Self::start_with(address, interface, service, initial, ServerOptions::default()).await
    }

    /// Like [`start`](Self::start), with options for actions.
    pub async fn start_with(
        address: &dyn ServiceAddress,
        interface: &InterfaceDescriptor,
        service: Arc<dyn Service>,
        initial: Vec<(&'static str, Bytes)>,
        options: ServerOptions,
    ) -> Result<Self, TransportError> {
        let target = ServiceTarget::new(Arc::new(interface.clone()), address.instance());
        Self::start_at(address, target, service, initial, options).await
    }

    /// Starts serving `target` at `address`: an interface instance, or a node's endpoint
    /// (`Naming::Node`).
    pub async fn start_at(
        address: &dyn ServiceAddress,
        target: ServiceTarget,
        service: Arc<dyn Service>,
        initial: Vec<(&'static str, Bytes)>,
        options: ServerOptions,
    ) -> Result<Self, TransportError> {
        let values = initial.into_iter().map(|(name, payload)| (name.to_owned(), (1, payload)));
        Self::start_inner(address, target, service, values.collect(), options, false).await
    }

    /// Starts serving `target` at `address` for properties another server holds, as a bridge
    /// does for the server it exposes: each property starts at the version and value `initial`
    /// gives (a missing one at version 0 and `{}`), and changes only by
    /// [`mirror_property`](Self::mirror_property).
    ///
    /// A client's update is checked here (read-only, version) and then handed to
    /// [`Service::update_property`], which applies it at the holder; the value it returns is
    /// not stored. The reply tells the client the version and value this server holds when the
    /// service returns, so a service that waits until the holder's change has been mirrored
    /// gives the client the new version.
    pub async fn start_mirror(
        address: &dyn ServiceAddress,
        target: ServiceTarget,
        service: Arc<dyn Service>,
        initial: Vec<(String, u64, Bytes)>,
        options: ServerOptions,
    ) -> Result<Self, TransportError> {
        let values = initial.into_iter().map(|(name, version, payload)| (name, (version, payload)));
        Self::start_inner(address, target, service, values.collect(), options, true).await
    }

    async fn start_inner(
        address: &dyn ServiceAddress,
        target: ServiceTarget,
        service: Arc<dyn Service>,
        mut values: HashMap<String, (u64, Bytes)>,
        options: ServerOptions,
        mirrored: bool,
    ) -> Result<Self, TransportError> {
        let interface = target.interface.clone();
        let properties = interface
            .properties
            .iter()
            .map(|p| {
                let (version, payload) = values.remove(&*p.name).unwrap_or_else(|| {
                    if mirrored {
                        return (0, Bytes::from_static(b"{}"));
                    }
                    tracing::error!(property = %p.name, "no initial value given; starting with {{}}");
                    (1, Bytes::from_static(b"{}"))
                });
                let state = PropertyState { version, payload, read_only: p.read_only, watchers: Vec::new() };
                (p.name.clone(), Mutex::new(state))
            })
            .collect();
        let state = Arc::new(ServerState {
            interface: interface.clone(),
            service,
            transport: OnceLock::new(),
            properties,
            signals: Mutex::new(HashMap::new()),
            options,
            peers: Mutex::new(HashMap::new()),
            peers_reported: AtomicBool::new(false),
            goals: Mutex::new(GoalTable::default()),
            serving: Mutex::new(None),
            signals_dropped: AtomicU64::new(0),
            dropping_signals: AtomicBool::new(false),
            mirrored,
        });
        let transport = address.bind(target, Arc::new(Inbox(Arc::downgrade(&state)))).await?;
        let _ = state.transport.set(transport.clone());
        if transport.fanout() == Fanout::Broker {
            for (name, property) in &state.properties {
                let (version, payload) = {
                    let property = lock(property);
                    (property.version, property.payload.clone())
                };
                transport
                    .publish(ServerMessage::PropertyValue {
                        property: name.clone(),
                        version,
                        payload,
                    })
                    .await?;
            }
        }
        let serving = format!("{} (instance {})", state.interface.name, address.instance());
        *lock(&state.serving) = Some(notify::serving(&serving));
        Ok(ServerCore { state })
    }

    /// The interface being served.
    pub fn interface(&self) -> &InterfaceDescriptor {
        &self.state.interface
    }

    /// Emits a signal to every subscribed client.
    ///
    /// A signal is delivered to the clients subscribed and reachable when it is emitted; it is
    /// never stored. So a signal emitted while a brokered transport (MQTT, NATS, Redis) has lost
    /// its broker and is reconnecting is *dropped*, not an error: it reaches no one, as a Unix
    /// signal with no subscribers does, and the server keeps running. Each such drop is counted
    /// ([`signals_dropped`](Self::signals_dropped)); the first of an outage is logged as a
    /// warning and its end at info level. An `Err` means the server cannot emit at all (it was
    /// shut down, or the interface has no such signal), so a daemon may use `?` on it.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        signal: &'static str,
        payload: &T,
    ) -> Result<(), TransportError> {
        let payload = encode_property(payload);
        self.emit_raw(signal, payload).await
    }

    /// Emits a signal whose payload is already encoded.
    pub async fn emit_raw(&self, signal: &str, payload: Bytes) -> Result<(), TransportError> {
        match self.try_emit_raw(signal, payload).await {
            Err(error) if error.kind() == TransportErrorKind::NotConnected => {
                self.state.signals_dropped.fetch_add(1, Ordering::Relaxed);
                if !self.state.dropping_signals.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, %signal, "the broker is unreachable; dropping signals until it is back");
                }
                Ok(())
            }
            Err(error) => Err(error),
            Ok(()) => {
                if self.state.dropping_signals.load(Ordering::Relaxed)
                    && self.state.dropping_signals.swap(false, Ordering::Relaxed)
                {
                    let dropped = self.signals_dropped();
                    tracing::info!(dropped, "signals reach the broker again");
                }
                Ok(())
            }
        }
    }

    /// Emits a signal whose payload is already encoded, as [`emit_raw`](Self::emit_raw) does,
    /// except that a signal dropped because the brokered transport is reconnecting is a
    /// `NotConnected` error here, neither counted in
    /// [`signals_dropped`](Self::signals_dropped) nor logged: for a caller that counts and
    /// reports each message's fate itself (a bridge) while several are on their way at once.
    pub async fn try_emit_raw(&self, signal: &str, payload: Bytes) -> Result<(), TransportError> {
        let Some(name) = self.state.interface.signal(signal).cloned() else {
            return Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("interface {} has no signal `{signal}`", self.state.interface.name),
            ));
        };
        let message = ServerMessage::Signal { signal: name.clone(), payload };
        match self.transport().map(|t| (t.fanout(), t)) {
            Some((Fanout::Broker, transport)) => transport.publish(message).await,
            _ => {
                let peers = lock(&self.state.signals).get(&name).cloned().unwrap_or_default();
                // Each peer's send may wait while its queue is full, for as long as the transport
                // chooses (the Unix transport never waits: it disconnects a peer whose queue is
                // full, so one slow subscriber cannot pace the others).
                let sends = peers.iter().map(|peer| peer.send_when_ready(message.clone()));
                futures_util::future::join_all(sends).await;
                Ok(())
            }
        }
    }

    /// How many signals [`emit`](Self::emit) dropped since the server started because its
    /// brokered transport was reconnecting.
    pub fn signals_dropped(&self) -> u64 {
        self.state.signals_dropped.load(Ordering::Relaxed)
    }

    /// Emits a signal to one connected client only.
    ///
    /// The client receives it through its ordinary subscription to the signal. Fails with a
    /// `NotConnected` transport error when `peer` is not connected.
    pub async fn emit_to<T: Serialize + ?Sized>(
        &self,
        peer: PeerId,
        signal: &'static str,
        payload: &T,
    ) -> Result<(), TransportError> {
        let Some(name) = self.state.interface.signal(signal).cloned() else {
            return Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("interface {} has no signal `{signal}`", self.state.interface.name),
            ));
        };
        let Some(target) = lock(&self.state.peers).get(&peer).cloned() else {
            return Err(TransportError::not_connected(format!(
                "{peer} is not connected to this server"
            )));
        };
        target
            .send_when_ready(ServerMessage::Signal {
                signal: name,
                payload: encode_property(payload),
            })
            .await
    }

    /// The clients connected right now.
    pub fn peers(&self) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = lock(&self.state.peers).keys().copied().collect();
        peers.sort();
        peers
    }

    /// Replaces a property's value from the server side and notifies every watcher.
    pub async fn set_property<W: Serialize + ?Sized>(
        &self,
        property: &'static str,
        value: &W,
    ) -> Result<(), TransportError> {
        let payload = encode_property(value);
        let message = self.state.store(property, payload).ok_or_else(|| {
            TransportError::new(
                crate::error::TransportErrorKind::Protocol,
                format!("interface {} has no property `{property}`", self.state.interface.name),
            )
        })?;
        match message {
            Some(message) => match self.transport() {
                Some(transport) => transport.publish(message).await,
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Sets a property to the version and value the server holding it reported (see
    /// [`start_mirror`](Self::start_mirror)) and notifies every watcher; the same version and
    /// value again changes nothing. A version lower than the one held is taken too: the holder
    /// restarted and counts afresh.
    pub async fn mirror_property(
        &self,
        property: &str,
        version: u64,
        payload: Bytes,
    ) -> Result<(), TransportError> {
        let message = self.state.store_as(property, Some(version), payload).ok_or_else(|| {
            TransportError::new(
                TransportErrorKind::Protocol,
                format!("interface {} has no property `{property}`", self.state.interface.name),
            )
        })?;
        match (message, self.transport()) {
            (Some(message), Some(transport)) => transport.publish(message).await,
            _ => Ok(()),
        }
    }

    /// Decodes the current value of a property.
    ///
    /// # Panics
    /// Only if `W` is not the property's type, which generated code rules out: every stored value
    /// was encoded from `W` by this server.
    pub fn property<W: DeserializeOwned>(&self, property: &str) -> W {
        let (_, payload) = self.property_raw(property).unwrap_or_default();
        codec::decode(&payload)
            .unwrap_or_else(|e| panic!("stored value of property `{property}` must decode: {e}"))
    }

    /// The current version and encoded value of a property.
    pub fn property_raw(&self, property: &str) -> Option<(u64, Bytes)> {
        let state = lock(self.state.properties.get(property)?);
        Some((state.version, state.payload.clone()))
    }

    /// Stops serving and closes every client connection.
    ///
    /// Returns once the transport's farewell has left the process (over MQTT: the cleared
    /// discovery entry and retained values, and the offline presence), waiting a bounded time
    /// for it, so `main` may return right after.
    ///
    /// Under a service manager that listens (`$NOTIFY_SOCKET`), the process's first server to
    /// start serving reports `READY=1` and its last to shut down `STOPPING=1`.
    pub async fn shutdown(&self) {
        drop(lock(&self.state.serving).take());
        if let Some(transport) = self.transport() {
            transport.close().await;
        }
    }

    fn transport(&self) -> Option<Arc<dyn ServerTransport>> {
        self.state.transport.get().cloned()
    }
}

impl ServerState {
    /// Stores a new value, bumps the version and notifies watchers (for per-peer fan-out).
    ///
    /// Returns `None` for an unknown property, `Some(Some(message))` when a broker must publish it.
    fn store(&self, property: &str, payload: Bytes) -> Option<Option<ServerMessage>> {
        self.store_as(property, None, payload)
    }

    /// Like [`store`](Self::store), at `version` when given (a mirrored value) rather than the
    /// next; a mirrored value equal to the one held changes nothing and notifies nobody.
    fn store_as(
        &self,
        property: &str,
        version: Option<u64>,
        payload: Bytes,
    ) -> Option<Option<ServerMessage>> {
        let (name, slot) = self.properties.get_key_value(property)?;
        let mut state = lock(slot);
        match version {
            Some(version) if version == state.version && payload == state.payload => {
                return Some(None);
            }
            Some(version) => state.version = version,
            None => state.version += 1,
        }
        state.payload = payload;
        let message = ServerMessage::PropertyValue {
            property: name.clone(),
            version: state.version,
            payload: state.payload.clone(),
        };
        if self.fanout() == Fanout::Broker {
            return Some(Some(message));
        }
        for peer in &state.watchers {
            let _ = peer.send(message.clone());
        }
        Some(None)
    }

    fn fanout(&self) -> Fanout {
        self.transport.get().map_or(Fanout::PerPeer, |t| t.fanout())
    }

    fn property_reply(&self, id: u64, property: Name, error: Option<RemoteError>) -> ServerMessage {
        let (version, payload) = match self.properties.get(&property) {
            Some(slot) => {
                let state = lock(slot);
                (state.version, state.payload.clone())
            }
            None => (0, Bytes::from_static(b"{}")),
        };
        ServerMessage::PropertyReply { id, property, version, payload, error }
    }

    fn handle_call(self: &Arc<Self>, peer: &Peer, id: u64, method: Name, payload: Bytes) {
        if self.interface.method(&method).is_none() {
            let error = RemoteError::new(
                ErrorCode::MethodNotFound,
                names::UNKNOWN_METHOD,
                format!("interface {} has no method `{method}`", self.interface.name),
            );
            let _ = peer.send(ServerMessage::Reply { id, result: Err(error) });
            return;
        }
        let ctx = CallContext::new(peer.id(), peer.credentials());
        // The handler starts here and is polled once: one that answers without waiting (most
        // do) is answered at once, with no task of its own. One that waits goes on in a task of
        // its own, so it never holds up the requests behind it.
        let mut call = match start_guarded(&method, || self.service.call(&method, payload, ctx)) {
            Ok(call) => call,
            Err(error) => {
                let _ = peer.send(ServerMessage::Reply { id, result: Err(error) });
                return;
            }
        };
        // Nothing needs waking from this poll: if the handler waits, its task polls it again
        // at once, and its wakers then come from that task.
        let mut cx = Context::from_waker(Waker::noop());
        match call.poll_unpin(&mut cx) {
            Poll::Ready(outcome) => {
                let result = settle(&method, outcome);
                let _ = peer.send(ServerMessage::Reply { id, result });
            }
            Poll::Pending => {
                let peer = peer.clone();
                tokio::spawn(async move {
                    let result = settle(&method, call.await);
                    let _ = peer.send(ServerMessage::Reply { id, result });
                });
            }
        }
    }

    fn handle_set(
        self: &Arc<Self>,
        peer: &Peer,
        id: u64,
        property: Name,
        version: Option<u64>,
        payload: Bytes,
    ) {
        let Some(slot) = self.properties.get(&property) else {
            let error = RemoteError::unknown_property(&self.interface.name, &property);
            let _ = peer.send(self.property_reply(id, property, Some(error)));
            return;
        };
        let (read_only, current) = {
            let state = lock(slot);
            (state.read_only, state.version)
        };
        if read_only {
            let error = RemoteError::read_only(&property);
            let _ = peer.send(self.property_reply(id, property, Some(error)));
            return;
        }
        if version != Some(current) {
            let _ = peer.send(self.property_reply(
                id,
                property.clone(),
                Some(out_of_sync(&property, version, current)),
            ));
            return;
        }
        let ctx = CallContext::new(peer.id(), peer.credentials());
        let state = self.clone();
        let peer = peer.clone();
        tokio::spawn(async move {
            let validated =
                guarded(&property, || state.service.update_property(&property, payload, ctx)).await;
            let reply = match validated {
                Err(error) => state.property_reply(id, property, Some(error)),
                // The holder applied it; its change arrives through `mirror_property`.
                Ok(_) if state.mirrored => state.property_reply(id, property, None),
                Ok(payload) => match state.apply_update(&property, version, payload).await {
                    Ok(()) => state.property_reply(id, property, None),
                    Err(error) => state.property_reply(id, property, Some(error)),
                },
            };
            let _ = peer.send(reply);
        });
    }

    /// Stores a validated update unless the property changed while the handler was deciding.
    async fn apply_update(
        &self,
        property: &Name,
        version: Option<u64>,
        payload: Bytes,
    ) -> Result<(), RemoteError> {
        let slot = self
            .properties
            .get(property)
            .ok_or_else(|| RemoteError::unknown_property(&self.interface.name, property))?;
        let current = lock(slot).version;
        if version != Some(current) {
            return Err(out_of_sync(property, version, current));
        }
        if let Some(Some(message)) = self.store(property, payload)
            && let Some(transport) = self.transport.get()
            && let Err(error) = transport.publish(message).await
        {
            tracing::warn!(%property, %error, "could not publish a property change");
        }
        Ok(())
    }
}

fn out_of_sync(property: &str, requested: Option<u64>, current: u64) -> RemoteError {
    let requested = requested.map_or_else(|| "none".to_owned(), |v| v.to_string());
    RemoteError::new(
        ErrorCode::OutOfSync,
        names::OUT_OF_SYNC,
        format!(
            "update of property `{property}` was based on version {requested}, but the current version is {current}"
        ),
    )
}

/// Runs a handler, turning a panic into a generic internal error that reveals nothing.
async fn guarded<T>(
    what: &str,
    start: impl FnOnce() -> BoxFuture<'static, Result<T, RemoteError>>,
) -> Result<T, RemoteError> {
    match start_guarded(what, start) {
        Ok(run) => settle(what, run.await),
        Err(error) => Err(error),
    }
}

/// A started handler whose polls catch panics; [`settle`] turns its outcome into a result.
type GuardedRun<T> = CatchUnwind<AssertUnwindSafe<BoxFuture<'static, Result<T, RemoteError>>>>;

/// Starts a handler; a panic while starting it is the error it ends with.
fn start_guarded<T>(
    what: &str,
    start: impl FnOnce() -> BoxFuture<'static, Result<T, RemoteError>>,
) -> Result<GuardedRun<T>, RemoteError> {
    match std::panic::catch_unwind(AssertUnwindSafe(start)) {
        Ok(future) => Ok(AssertUnwindSafe(future).catch_unwind()),
        Err(panic) => settle(what, Err(panic)),
    }
}

/// A handler's result, or the generic internal error that reports its panic (to the log only).
fn settle<T>(
    what: &str,
    outcome: Result<Result<T, RemoteError>, Box<dyn Any + Send>>,
) -> Result<T, RemoteError> {
    outcome.unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(handler = what, panic = %detail, "a handler panicked");
        Err(RemoteError::internal("the server failed while handling the request"))
    })
}

/// The transport's way into the server state. It holds a weak reference, so a transport that
/// outlives its server (tasks still winding down) keeps nothing alive.
struct Inbox(Weak<ServerState>);

impl ServerInbox for Inbox {
    fn deliver(&self, peer: &Peer, message: ClientMessage) {
        if let Some(state) = self.0.upgrade() {
            state.deliver(peer, message);
        }
    }

    fn peer_connected(&self, peer: &Peer) {
        if let Some(state) = self.0.upgrade() {
            lock(&state.peers).insert(peer.id(), peer.clone());
            state.peers_reported.store(true, Ordering::Relaxed);
        }
    }

    fn peer_gone(&self, peer: PeerId) {
        if let Some(state) = self.0.upgrade() {
            state.peer_gone(peer);
        }
    }
}

impl ServerState {
    fn deliver(self: &Arc<Self>, peer: &Peer, message: ClientMessage) {
        let this = self;
        // Transports that do not report connections still make their peers known here; for
        // those that do, the peer is known already (and stays forgotten once it has gone).
        if !self.peers_reported.load(Ordering::Relaxed) {
            lock(&self.peers).entry(peer.id()).or_insert_with(|| peer.clone());
        }
        match message {
            ClientMessage::Call { id, method, payload } => {
                this.handle_call(peer, id, method, payload)
            }
            ClientMessage::GetProperty { id, property } => {
                let error = (!self.properties.contains_key(&property))
                    .then(|| RemoteError::unknown_property(&self.interface.name, &property));
                let _ = peer.send(self.property_reply(id, property, error));
            }
            ClientMessage::SetProperty { id, property, version, payload } => {
                this.handle_set(peer, id, property, version, payload)
            }
            ClientMessage::Subscribe { signal } => match self.interface.signal(&signal) {
                Some(name) => {
                    let mut signals = lock(&self.signals);
                    let peers = signals.entry(name.clone()).or_default();
                    if !peers.iter().any(|p| p.id() == peer.id()) {
                        peers.push(peer.clone());
                    }
                }
                None => {
                    tracing::debug!(%signal, peer = %peer.id(), "subscription to an unknown signal ignored")
                }
            },
            ClientMessage::Unsubscribe { signal } => {
                if let Some(peers) = lock(&self.signals).get_mut(&signal) {
                    peers.retain(|p| p.id() != peer.id());
                }
            }
            ClientMessage::Watch { property } => match self.properties.get_key_value(&property) {
                Some((name, slot)) => {
                    let mut state = lock(slot);
                    if !state.watchers.iter().any(|p| p.id() == peer.id()) {
                        state.watchers.push(peer.clone());
                    }
                    let _ = peer.send(ServerMessage::PropertyValue {
                        property: name.clone(),
                        version: state.version,
                        payload: state.payload.clone(),
                    });
                }
                None => {
                    tracing::debug!(%property, peer = %peer.id(), "watch of an unknown property ignored")
                }
            },
            ClientMessage::Unwatch { property } => {
                if let Some(slot) = self.properties.get(&property) {
                    lock(slot).watchers.retain(|p| p.id() != peer.id());
                }
            }
            ClientMessage::Command { command, payload } => {
                self.handle_command(peer, command, payload)
            }
            ClientMessage::SendGoal { id, action, goal, payload } => {
                self.handle_send_goal(peer, id, action, goal, payload)
            }
            ClientMessage::Describe { id } => {
                let description = Bytes::copy_from_slice(self.interface.description.as_bytes());
                let _ = peer.send(ServerMessage::Description { id, description });
            }
            ClientMessage::CancelGoal { id, action, goal } => {
                let result = self.find_goal(&action, &goal).map(|g| g.request_cancel());
                let _ = peer.send(ServerMessage::GoalReply { id, action, goal, result });
            }
            ClientMessage::AttachGoal { id, action, goal, follow } => {
                let result = self.find_goal(&action, &goal).map(|g| {
                    let mut state = g.lock();
                    if follow {
                        state.owner = peer.id();
                        if !state.followers.iter().any(|p| p.id() == peer.id()) {
                            state.followers.push(peer.clone());
                        }
                    }
                    // Sent under the goal's lock, so later events follow the snapshot.
                    let snapshot = ServerGoal::snapshot(&state);
                    let _ = peer.send(ServerMessage::GoalReply {
                        id,
                        action: action.clone(),
                        goal: goal.clone(),
                        result: Ok(snapshot),
                    });
                });
                if let Err(error) = result {
                    let _ = peer.send(ServerMessage::GoalReply {
                        id,
                        action,
                        goal,
                        result: Err(error),
                    });
                }
            }
        }
    }

    fn handle_command(self: &Arc<Self>, peer: &Peer, command: Name, payload: Bytes) {
        let ctx = CallContext::new(peer.id(), peer.credentials());
        let service = self.service.clone();
        let peer = peer.id();
        tokio::spawn(async move {
            if let Err(error) = guarded(&command, || service.command(&command, payload, ctx)).await
            {
                tracing::warn!(%command, %peer, %error, "a command failed");
            }
        });
    }

    fn find_goal(&self, action: &str, goal: &GoalId) -> Result<Arc<ServerGoal>, RemoteError> {
        self.goal_table().by_id.get(goal).filter(|g| g.action == action).cloned().ok_or_else(|| {
            RemoteError::new(
                ErrorCode::MethodNotFound,
                names::UNKNOWN_GOAL,
                format!("no goal `{goal}` of action `{action}` is running or remembered"),
            )
        })
    }

    fn handle_send_goal(
        self: &Arc<Self>,
        peer: &Peer,
        id: u64,
        action: Name,
        goal_id: GoalId,
        payload: Bytes,
    ) {
        let reply = {
            let (action, goal) = (action.clone(), goal_id.clone());
            move |result| ServerMessage::GoalReply {
                id,
                action: action.clone(),
                goal: goal.clone(),
                result,
            }
        };
        let goal = {
            let mut table = self.goal_table();
            if table.by_id.contains_key(&goal_id) {
                let error = RemoteError::new(
                    ErrorCode::ClientError,
                    names::DUPLICATE_GOAL,
                    format!("a goal with id `{goal_id}` already exists"),
                );
                let _ = peer.send(reply(Err(error)));
                return;
            }
            let limit = self.options.limit_of(&action);
            let running = table.running.entry(action.clone()).or_default();
            if *running >= limit {
                let error = RemoteError::new(
                    ErrorCode::ServiceUnavailable,
                    names::TOO_MANY_GOALS,
                    format!("action `{action}` already runs {limit} goals, its limit"),
                );
                let _ = peer.send(reply(Err(error)));
                return;
            }
            *running += 1;
            let goal = Arc::new(ServerGoal::new(goal_id.clone(), action.clone(), peer));
            table.by_id.insert(goal_id.clone(), goal.clone());
            goal
        };
        let ctx = CallContext::new(peer.id(), peer.credentials());
        let state = self.clone();
        let peer = peer.clone();
        tokio::spawn(async move {
            let raw = RawGoal::new(goal.clone(), ctx);
            let started =
                guarded(&action, || state.service.start_goal(&action, payload, raw)).await;
            let run = match started {
                Ok(run) => run,
                Err(error) => {
                    state.forget_goal(&goal, true);
                    let _ = peer.send(reply(Err(error)));
                    return;
                }
            };
            {
                // The reply goes out under the goal's lock, before any of its events.
                let state = goal.lock();
                let _ = peer.send(reply(Ok(ServerGoal::snapshot(&state))));
            }
            let outcome = if goal.is_cancel_requested() {
                GoalOutcome::Cancelled
            } else {
                goal.emit(GoalEvent::Status(GoalStatus::Executing));
                let run: BoxFuture<'static, Result<GoalOutcome, RemoteError>> =
                    Box::pin(async move { Ok(run.await) });
                guarded(&action, || run).await.unwrap_or_else(GoalOutcome::Failed)
            };
            goal.emit(GoalEvent::Finished(outcome));
            state.forget_goal(&goal, false);
        });
    }

    /// Locks the goal table, first forgetting the ended goals whose retention has run out.
    ///
    /// Forgetting happens here rather than on a timer per goal: a goal that outlived its
    /// retention is never found again, and the table holds no more than the goals that ended
    /// within one retention period before its last use.
    fn goal_table(&self) -> MutexGuard<'_, GoalTable> {
        let mut table = lock(&self.goals);
        table.prune(Instant::now());
        table
    }

    /// Frees the goal's slot in its action's limit; a rejected goal is forgotten at once, an
    /// ended one after the retention period.
    fn forget_goal(&self, goal: &Arc<ServerGoal>, rejected: bool) {
        let mut table = self.goal_table();
        if let Some(running) = table.running.get_mut(&goal.action) {
            *running = running.saturating_sub(1);
        }
        if rejected {
            table.by_id.remove(&goal.id);
        } else {
            let forget_at = Instant::now().checked_add(self.options.goal_retention);
            table.keep_ended(goal.clone(), forget_at, self.options.goal_retention_bytes);
        }
    }

    fn peer_gone(&self, peer: PeerId) {
        lock(&self.peers).remove(&peer);
        self.forget_peer_subscriptions(peer);
        let goals: Vec<Arc<ServerGoal>> = self.goal_table().by_id.values().cloned().collect();
        for goal in goals {
            let orphaned = {
                let mut state = goal.lock();
                state.followers.retain(|p| p.id() != peer);
                state.owner == peer && state.outcome.is_none()
            };
            if !orphaned {
                continue;
            }
            let Some(grace) = self.options.disconnect_grace else {
                continue;
            };
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let still_orphaned = {
                    let state = goal.lock();
                    state.owner == peer && state.outcome.is_none()
                };
                if still_orphaned {
                    tracing::info!(action = %goal.action, goal = %goal.id, %peer, "cancelling the goal of a client that went away");
                    goal.request_cancel();
                }
            });
        }
    }

    fn forget_peer_subscriptions(&self, peer: PeerId) {
        for peers in lock(&self.signals).values_mut() {
            peers.retain(|p| p.id() != peer);
        }
        for slot in self.properties.values() {
            lock(slot).watchers.retain(|p| p.id() != peer);
        }
    }
}

/// Encodes a value the server stores or sends. The generated types always encode; should one
/// ever fail, the failure is logged and `{}` is used, so the server keeps running.
pub fn encode_property<T: Serialize + ?Sized>(value: &T) -> Bytes {
    codec::encode(value).unwrap_or_else(|error| {
        tracing::error!(%error, "a value could not be encoded");
        Bytes::from_static(b"{}")
    })
}

/// Decodes the arguments of a call or property update, answering `InvalidArguments` when they
/// do not match the declared types.
///
/// Arguments are a JSON object keyed by name. A JSON array is refused, although serde would
/// take one as the fields in declaration order: positional arguments are not part of the wire
/// format, and would silently change meaning when an interface adds or reorders arguments.
pub fn decode_args<T: DeserializeOwned>(what: &str, payload: &[u8]) -> Result<T, RemoteError> {
    let first = payload.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return Err(RemoteError::new(
            ErrorCode::ServerDeserializationError,
            names::INVALID_ARGUMENTS,
            format!("invalid arguments for `{what}`: expected a JSON object of named arguments"),
        ));
    }
    codec::decode_explained(payload).map_err(|error| {
        RemoteError::new(
            ErrorCode::ServerDeserializationError,
            names::INVALID_ARGUMENTS,
            format!("invalid arguments for `{what}`: {error}"),
        )
    })
}

/// Encodes a handler's reply.
pub fn encode_reply<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, RemoteError> {
    codec::encode(value).map_err(|error| {
        tracing::error!(%error, "a reply could not be encoded");
        RemoteError::new(
            ErrorCode::ServerSerializationError,
            names::INTERNAL,
            "the reply could not be encoded",
        )
    })
}

/// The answer to a method the generated dispatcher does not know.
pub fn unknown_method(method: &str) -> BoxFuture<'static, Result<Bytes, RemoteError>> {
    let error = RemoteError::new(
        ErrorCode::MethodNotFound,
        names::UNKNOWN_METHOD,
        format!("no method `{method}`"),
    );
    Box::pin(std::future::ready(Err(error)))
}

/// The answer to a command the generated dispatcher does not know (logged by the server).
pub fn unknown_command(command: &str) -> BoxFuture<'static, Result<(), RemoteError>> {
    let error = RemoteError::new(
        ErrorCode::MethodNotFound,
        names::UNKNOWN_COMMAND,
        format!("no command `{command}`"),
    );
    Box::pin(std::future::ready(Err(error)))
}

/// The answer to a goal of an action the generated dispatcher does not know.
pub fn unknown_action(action: &str) -> BoxFuture<'static, Result<GoalRun, RemoteError>> {
    let error = RemoteError::new(
        ErrorCode::MethodNotFound,
        names::UNKNOWN_ACTION,
        format!("no action `{action}`"),
    );
    Box::pin(std::future::ready(Err(error)))
}

/// The answer to an update of a property the generated dispatcher does not accept updates for.
pub fn unknown_property(property: &str) -> BoxFuture<'static, Result<Bytes, RemoteError>> {
    let error = RemoteError::new(
        ErrorCode::MethodNotFound,
        names::UNKNOWN_PROPERTY,
        format!("no writable property `{property}`"),
    );
    Box::pin(std::future::ready(Err(error)))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::transport::{Binder, ClientInbox, ClientTransport, Connector};

    /// A brokered transport whose broker is away while `down` is set.
    #[derive(Debug, Default)]
    struct Broker {
        down: Arc<AtomicBool>,
        published: Arc<AtomicU64>,
    }

    impl ServerTransport for Broker {
        fn fanout(&self) -> Fanout {
            Fanout::Broker
        }

        fn publish(&self, _message: ServerMessage) -> BoxFuture<'_, Result<(), TransportError>> {
            let result = if self.down.load(Ordering::Relaxed) {
                Err(TransportError::not_connected("the broker is away (reconnecting)"))
            } else {
                self.published.fetch_add(1, Ordering::Relaxed);
                Ok(())
            };
            Box::pin(std::future::ready(result))
        }

        fn close(&self) -> BoxFuture<'_, ()> {
            self.down.store(true, Ordering::Relaxed);
            Box::pin(std::future::ready(()))
        }
    }

    impl Binder for Broker {
        fn bind(
            &self,
            _target: ServiceTarget,
            _inbox: Arc<dyn ServerInbox>,
        ) -> BoxFuture<'_, Result<Arc<dyn ServerTransport>, TransportError>> {
            let transport: Arc<dyn ServerTransport> =
                Arc::new(Broker { down: self.down.clone(), published: self.published.clone() });
            Box::pin(std::future::ready(Ok(transport)))
        }
    }

    impl Connector for Broker {
        fn connect(
            &self,
            _target: ServiceTarget,
            _inbox: Arc<dyn ClientInbox>,
        ) -> BoxFuture<'_, Result<Arc<dyn ClientTransport>, TransportError>> {
            Box::pin(std::future::ready(Err(TransportError::not_connected("server only"))))
        }
    }

    impl ServiceAddress for Broker {
        fn instance(&self) -> &str {
            "default"
        }
    }

    struct NoMethods;

    impl Service for NoMethods {
        fn call(
            &self,
            method: &str,
            _payload: Bytes,
            _ctx: CallContext,
        ) -> BoxFuture<'static, Result<Bytes, RemoteError>> {
            unknown_method(method)
        }

        fn update_property(
            &self,
            property: &str,
            _payload: Bytes,
            _ctx: CallContext,
        ) -> BoxFuture<'static, Result<Bytes, RemoteError>> {
            unknown_property(property)
        }
    }

    fn interface() -> InterfaceDescriptor {
        InterfaceDescriptor {
            name: "Test".into(),
            version: "1.0.0".into(),
            title: "Test".into(),
            hash: "".into(),
            description: "{}".into(),
            methods: Cow::Borrowed(&[]),
            signals: vec![Cow::Borrowed("ticked")].into(),
            properties: Cow::Borrowed(&[]),
            topic_params: Cow::Borrowed(&[]),
            topic_templates: Cow::Borrowed(&[]),
        }
    }

    /// Issue 15, defect 6: a signal emitted while the broker is away is dropped and counted,
    /// not an error that ends a daemon's `emit(...).await?` loop; a shut-down server still fails.
    #[tokio::test]
    async fn a_signal_emitted_while_reconnecting_is_dropped_and_counted() {
        let broker = Broker::default();
        let server = ServerCore::start(&broker, &interface(), Arc::new(NoMethods), Vec::new())
            .await
            .unwrap();
        server.emit("ticked", &1).await.expect("published");
        broker.down.store(true, Ordering::Relaxed);
        for n in 0..3 {
            server.emit("ticked", &n).await.expect("dropped, not an error");
        }
        assert_eq!(server.signals_dropped(), 3);
        broker.down.store(false, Ordering::Relaxed);
        server.emit("ticked", &2).await.expect("published again");
        assert_eq!(broker.published.load(Ordering::Relaxed), 2);
        assert_eq!(server.signals_dropped(), 3);

        let error = server.emit("nonesuch", &0).await.expect_err("no such signal");
        assert_eq!(error.kind(), TransportErrorKind::Protocol);
    }

    /// A mirror takes the holder's versions as they come (a restarted holder's lower ones
    /// too), publishes each change once, and nothing for the same version and value again.
    #[tokio::test]
    async fn a_mirror_holds_the_holders_versions() {
        let broker = Broker::default();
        let mut interface = interface();
        interface.properties =
            vec![crate::PropertyDescriptor { name: "level".into(), read_only: false }].into();
        let target = ServiceTarget::new(Arc::new(interface), "default");
        let initial = vec![("level".to_owned(), 7, Bytes::from_static(b"{\"n\":1}"))];
        let server = ServerCore::start_mirror(
            &broker,
            target,
            Arc::new(NoMethods),
            initial,
            ServerOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(server.property_raw("level"), Some((7, Bytes::from_static(b"{\"n\":1}"))));
        assert_eq!(broker.published.load(Ordering::Relaxed), 1, "the initial value");
        server.mirror_property("level", 7, Bytes::from_static(b"{\"n\":1}")).await.unwrap();
        assert_eq!(broker.published.load(Ordering::Relaxed), 1, "no change, nothing published");
        server.mirror_property("level", 9, Bytes::from_static(b"{\"n\":2}")).await.unwrap();
        assert_eq!(server.property_raw("level").map(|(v, _)| v), Some(9));
        server.mirror_property("level", 1, Bytes::from_static(b"{\"n\":0}")).await.unwrap();
        assert_eq!(server.property_raw("level"), Some((1, Bytes::from_static(b"{\"n\":0}"))));
        assert_eq!(broker.published.load(Ordering::Relaxed), 3);
        let error = server.mirror_property("nonesuch", 1, Bytes::new()).await.unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::Protocol);
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct BoostArgs {
        extra: f64,
        reason: Option<String>,
    }

    /// Issue 15, defect 17: arguments are named; serde alone would take an array positionally.
    #[test]
    fn arguments_must_be_a_json_object() {
        let args: BoostArgs = decode_args("boost", br#" {"extra":1.0,"reason":null}"#).unwrap();
        assert_eq!(args.extra, 1.0);
        for positional in [&br#"[1.0,null]"#[..], b"\n [1.0, \"x\"]", b"[]", b"1", b"", b"null"] {
            let error = decode_args::<BoostArgs>("boost", positional).unwrap_err();
            assert_eq!(error.name(), names::INVALID_ARGUMENTS);
            assert_eq!(error.code(), ErrorCode::ServerDeserializationError);
        }
    }
}
