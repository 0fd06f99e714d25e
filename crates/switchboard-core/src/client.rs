//! The client machinery generated clients are built on: correlation of replies, timeouts,
//! signal fan-in and property watches, over any [`ClientTransport`].
//!
//! It also sends commands and goals. A goal's routing is registered before the goal is sent, so
//! the first feedback cannot be lost; after a reconnect the client re-attaches to every goal it
//! still follows, before sending anything else, and learns what happened meanwhile.

use crate::sync::lock;
use std::{
    collections::HashMap,
    fmt,
    marker::PhantomData,
    pin::Pin,
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use futures_core::Stream;
use serde::{Serialize, de::DeserializeOwned};
use tokio::{
    sync::{Notify, oneshot, watch},
    time::Instant,
};
use tokio_util::sync::ReusableBoxFuture;

use crate::{
    action::{
        GoalCanceller, GoalEvent, GoalHandle, GoalId, GoalOutcome, GoalSnapshot, GoalTrack,
        ResultFn,
    },
    codec,
    compat::{Agreement, Member, MemberKind},
    descriptor::InterfaceDescriptor,
    error::{
        CallError, DeclaredError, DecodeError, MethodError, TransportError, TransportErrorKind,
    },
    message::{ClientMessage, Name, ServerMessage},
    reader_queue::{Entry, Offer, QueueReader, ReaderQueue},
    transport::{
        Backpressure, BoxFuture, ClientInbox, ClientTransport, Naming, ServiceAddress,
        ServiceTarget,
    },
};

/// The default time a call may take before it fails with [`CallError::Timeout`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How many signals a [`SignalStream`] holds for its reader; when it is full, the connection
/// waits for the reader (see [`ClientOptions::slow_reader_timeout`]).
pub const SIGNAL_BUFFER: usize = 4096;

/// Settings for a client connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// How long a call, property read or property update may take. Default: 30 s.
    /// A `timeout` in the interface file overrides it per method.
    pub call_timeout: Duration,
    /// How long a goal handle keeps waiting for the connection to come back after it was lost
    /// before its `result()` fails with the transport error. Default: 30 s.
    pub goal_reconnect_timeout: Duration,
    /// How long the connection waits for a local reader whose queue is full: a
    /// [`SignalStream`] holding [`SIGNAL_BUFFER`] signals, or a goal handle that reads feedback
    /// and holds [`FEEDBACK_BUFFER`](crate::action::FEEDBACK_BUFFER) of it. Default: 1 s.
    ///
    /// While it waits nothing else is read from the connection, so a fast sender slows down to
    /// the reader's pace and nothing is lost. A reader still full after this long is declared
    /// lagging: its messages are dropped (and reported, as [`SubscriptionError::Lagged`] or in
    /// [`GoalHandle::missed_feedback`]) until it has read half its queue. A reader that stopped
    /// reading therefore holds its connection back once, for this long, not for every message.
    ///
    /// Only transports that can slow the server down wait
    /// ([`ClientTransport::can_push_back`]: the Unix socket does). Over a broker (MQTT) a
    /// full reader misses messages at once, and is told how many: holding the connection back
    /// would only make the broker drop messages of its own accord, replies and goal outcomes
    /// among them.
    pub slow_reader_timeout: Duration,
}

/// The default [`ClientOptions::goal_reconnect_timeout`].
pub const DEFAULT_GOAL_RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default [`ClientOptions::slow_reader_timeout`].
pub const DEFAULT_SLOW_READER_TIMEOUT: Duration = Duration::from_secs(1);

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            call_timeout: DEFAULT_CALL_TIMEOUT,
            goal_reconnect_timeout: DEFAULT_GOAL_RECONNECT_TIMEOUT,
            slow_reader_timeout: DEFAULT_SLOW_READER_TIMEOUT,
        }
    }
}

impl ClientOptions {
    /// Sets the default call timeout.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets how long goal handles wait for a lost connection to come back.
    pub fn goal_reconnect_timeout(mut self, timeout: Duration) -> Self {
        self.goal_reconnect_timeout = timeout;
        self
    }

    /// Sets how long the connection waits for a local reader whose queue is full.
    pub fn slow_reader_timeout(mut self, timeout: Duration) -> Self {
        self.slow_reader_timeout = timeout;
        self
    }
}

/// A connection to one service instance, shared by clones.
///
/// Dropping the last clone closes the connection.
#[derive(Clone)]
pub struct ClientCore {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    transport: Arc<dyn ClientTransport>,
    shared: Arc<ClientShared>,
    interface: Arc<InterfaceDescriptor>,
    options: ClientOptions,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.transport.close();
        self.shared.close();
    }
}

impl fmt::Debug for ClientCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCore")
            .field("interface", &self.inner.interface.name)
            .field("transport", &self.inner.transport)
            .finish_non_exhaustive()
    }
}

/// What a reply slot receives: the server's answer, or why there will be none.
type ReplySlot = oneshot::Sender<Result<ServerMessage, NoAnswer>>;

/// Why a request gets no answer.
#[derive(Debug)]
enum NoAnswer {
    /// The connection was lost, or the client closed.
    Lost(TransportError),
    /// Its deadline passed first; the request turns this into [`CallError::Timeout`].
    TimedOut,
}

/// A request waiting for its answer.
struct Pending {
    slot: ReplySlot,
    /// When the deadline sweeper gives up on it.
    deadline: Instant,
}

impl Pending {
    /// Hands the answer (or why there is none) to the waiting caller; false if it stopped waiting.
    fn send(self, answer: Result<ServerMessage, NoAnswer>) -> bool {
        self.slot.send(answer).is_ok()
    }
}

/// The requests in flight on one client, and what its deadline sweeper needs to know.
///
/// Each request carries its deadline; one task per client ([`sweep_deadlines`]) sleeps until
/// the earliest one and fails the requests whose deadline has passed, so a call costs no timer
/// of its own.
#[derive(Default)]
struct PendingCalls {
    /// Keyed by request id. The ids are this client's own sequence numbers, so a fast hasher
    /// is safe here: no peer chooses them.
    calls: HashMap<u64, Pending, foldhash::fast::RandomState>,
    /// When the sweeper wakes next; `None` while nothing is pending. Lowered (and the sweeper
    /// notified) when a request's deadline comes before it; a call that completes leaves it
    /// alone, so the sweeper may wake once for nothing.
    wake: Option<Instant>,
    /// Set by [`ClientShared::close`]: no request is registered after it, and the sweeper stops.
    closed: bool,
}

impl PendingCalls {
    /// Takes the request `id` out, to answer it.
    fn remove(&mut self, id: &u64) -> Option<Pending> {
        self.calls.remove(id)
    }

    /// Fails every request with `error`.
    fn fail_all(&mut self, error: &TransportError) {
        for (_, call) in self.calls.drain() {
            let _ = call.send(Err(NoAnswer::Lost(error.clone())));
        }
    }
}

/// A signal as local subscribers receive it: the payload, or notice of a lost connection.
type SignalEvent = Result<Bytes, TransportError>;

/// A property's last known value and version.
type PropertySnapshot = Option<(u64, Bytes)>;

/// The queues of a signal's local readers, one per [`SignalStream`].
type SignalReaders = Vec<Arc<ReaderQueue<SignalEvent>>>;

/// A message on a topic as local subscribers receive it: the topic and the payload, or notice
/// of a lost connection.
type TopicEvent = Result<(Name, Bytes), TransportError>;

/// The queues of a topic filter's local readers, one per [`TopicStream`].
type TopicReaders = Vec<Arc<ReaderQueue<TopicEvent>>>;

#[derive(Default)]
struct ClientShared {
    next_id: AtomicU64,
    pending: Mutex<PendingCalls>,
    /// Wakes the deadline sweeper when a request's deadline comes before its wake time, or
    /// when the client closes.
    sweeper: Notify,
    /// The local readers of each signal, looked up for every signal that arrives. Only this
    /// client adds names (by subscribing), so a fast hasher is safe here.
    signals: Mutex<HashMap<Name, SignalReaders, foldhash::fast::RandomState>>,
    /// The local readers of each topic filter (a node's subscriptions, [`Naming::Node`]).
    topics: Mutex<HashMap<Name, TopicReaders>>,
    /// Set for a node's endpoint: a signal from a transport that does not tell filters from
    /// topics (a direct connection to one publisher) is a message on the topic it names.
    node: bool,
    watches: Mutex<HashMap<Name, watch::Sender<PropertySnapshot>>>,
    versions: Mutex<HashMap<Name, u64>>,
    /// The goals this client follows. Only this client adds to it (the server's messages only
    /// look goals up), so a fast hasher is safe here too.
    goals: Mutex<HashMap<GoalId, Weak<GoalTrack>, foldhash::fast::RandomState>>,
    /// Copied from [`ClientOptions::goal_reconnect_timeout`] at connect time.
    goal_reconnect_timeout: Duration,
    /// How long a delivery waits for a full local reader: [`ClientOptions::slow_reader_timeout`]
    /// when the transport can push back, zero (drop and count at once) when it cannot. Set once
    /// connected; nothing is subscribed before.
    slow_reader_timeout: OnceLock<Duration>,
    /// Whether the server lacks any member of this client's interface: the one check a call
    /// makes when it does not (the transport's last [`ClientInbox::agreed`]).
    lacks_any: AtomicBool,
    /// What the transport last agreed with the server.
    agreement: Mutex<Agreement>,
}

impl ClientShared {
    /// Fails when the server is known to lack `name`, a member of kind `kind`.
    fn check_member(&self, kind: MemberKind, name: &str) -> Result<(), CallError> {
        if !self.lacks_any.load(Ordering::Acquire) {
            return Ok(());
        }
        let agreement = lock(&self.agreement);
        let member = Member { kind, name: name.to_owned() };
        if agreement.lacking.contains(&member) {
            return Err(CallError::Remote(agreement.refusal(&member)));
        }
        Ok(())
    }

    fn close(&self) {
        let error = closed_error();
        {
            let mut pending = lock(&self.pending);
            pending.closed = true;
            pending.fail_all(&error);
        }
        self.sweeper.notify_one();
        for queue in lock(&self.signals).drain().flat_map(|(_, readers)| readers) {
            queue.close();
        }
        for queue in lock(&self.topics).drain().flat_map(|(_, readers)| readers) {
            queue.close();
        }
        lock(&self.watches).clear();
        for (_, track) in lock(&self.goals).drain() {
            if let Some(track) = track.upgrade() {
                track.close(error.clone());
            }
        }
    }

    /// Registers a request that waits for its answer until `deadline`; fails once closed.
    fn register(&self, id: u64, slot: ReplySlot, deadline: Instant) -> Result<(), TransportError> {
        let wake_earlier = {
            let mut pending = lock(&self.pending);
            if pending.closed {
                return Err(closed_error());
            }
            pending.calls.insert(id, Pending { slot, deadline });
            let earlier = pending.wake.is_none_or(|wake| deadline < wake);
            if earlier {
                pending.wake = Some(deadline);
            }
            earlier
        };
        if wake_earlier {
            self.sweeper.notify_one();
        }
        Ok(())
    }

    /// Fails the requests whose deadline is not after `now`, and sets the next wake time.
    fn expire(&self, now: Instant) {
        let expired: Vec<Pending> = {
            let mut pending = lock(&self.pending);
            let expired =
                pending.calls.extract_if(|_, call| call.deadline <= now).map(|(_, call)| call);
            let expired = expired.collect();
            pending.wake = pending.calls.values().map(|call| call.deadline).min();
            expired
        };
        for call in expired {
            let _ = call.send(Err(NoAnswer::TimedOut));
        }
    }

    fn goal(&self, goal: &GoalId) -> Option<Arc<GoalTrack>> {
        let mut goals = lock(&self.goals);
        let track = goals.get(goal).and_then(Weak::upgrade);
        if track.is_none() {
            goals.remove(goal);
        }
        track
    }

    /// Applies an event to the goal it belongs to; a goal that ended stops being routed.
    fn goal_event(&self, goal: &GoalId, event: GoalEvent) -> Option<Backpressure> {
        let track = self.goal(goal)?;
        let backpressure = track.apply(event, self.patience());
        if track.is_finished() {
            lock(&self.goals).remove(goal);
        }
        backpressure
    }

    /// How long a delivery may wait for a full local reader.
    fn patience(&self) -> Duration {
        self.slow_reader_timeout.get().copied().unwrap_or(Duration::ZERO)
    }

    /// Hands a signal to each of its local readers; waits for those that are full.
    fn deliver_signal(&self, signal: &Name, payload: Bytes) -> Option<Backpressure> {
        if self.node {
            return self.deliver_topic(signal, signal.clone(), payload);
        }
        let mut signals = lock(&self.signals);
        offer_each(signals.get_mut(signal)?, Ok(payload), self.patience())
    }

    /// Hands a message on `topic` to each local reader of `filter`; waits for those that are full.
    fn deliver_topic(&self, filter: &Name, topic: Name, payload: Bytes) -> Option<Backpressure> {
        let mut topics = lock(&self.topics);
        offer_each(topics.get_mut(filter)?, Ok((topic, payload)), self.patience())
    }

    fn note_version(&self, property: &Name, version: u64) {
        lock(&self.versions).insert(property.clone(), version);
    }

    fn update_watch(&self, property: &Name, version: u64, payload: &Bytes) {
        if let Some(sender) = lock(&self.watches).get(property) {
            sender.send_if_modified(|current| {
                let changed = current.as_ref().is_none_or(|(v, p)| *v != version || p != payload);
                if changed {
                    *current = Some((version, payload.clone()));
                }
                changed
            });
        }
    }
}

impl ClientInbox for ClientShared {
    fn deliver(&self, message: ServerMessage) -> Option<Backpressure> {
        match message {
            ServerMessage::Reply { id, .. } => {
                if let Some(slot) = lock(&self.pending).remove(&id) {
                    let _ = slot.send(Ok(message));
                }
            }
            ServerMessage::PropertyReply { id, ref property, version, ref payload, .. } => {
                self.note_version(property, version);
                self.update_watch(property, version, payload);
                if let Some(slot) = lock(&self.pending).remove(&id) {
                    let _ = slot.send(Ok(message));
                }
            }
            ServerMessage::Signal { signal, payload } => {
                return self.deliver_signal(&signal, payload);
            }
            ServerMessage::PropertyValue { property, version, payload } => {
                self.note_version(&property, version);
                self.update_watch(&property, version, &payload);
            }
            ServerMessage::GoalReply { id, goal, result, .. } => {
                // The snapshot is applied here, in arrival order, so that events which follow it
                // on the connection are never overwritten by it.
                // Status and outcome are never held back: only feedback waits for its reader.
                if let Ok(snapshot) = &result {
                    let _ = match &snapshot.outcome {
                        Some(outcome) => {
                            self.goal_event(&goal, GoalEvent::Finished(outcome.clone()))
                        }
                        None => self.goal_event(&goal, GoalEvent::Status(snapshot.status)),
                    };
                }
                let waiting = lock(&self.pending).remove(&id);
                match waiting {
                    Some(slot) => {
                        let _ = slot.send(Ok(ServerMessage::GoalReply {
                            id,
                            action: Name::Borrowed(""),
                            goal,
                            result,
                        }));
                    }
                    // The answer to a re-attach sent after a reconnect. An error means the server
                    // no longer knows the goal (it restarted, or the goal's retention ran out):
                    // the goal ended with that error.
                    None => {
                        if let Err(error) = result {
                            let _ = self
                                .goal_event(&goal, GoalEvent::Finished(GoalOutcome::Failed(error)));
                        }
                    }
                }
            }
            ServerMessage::GoalEvent { goal, event, .. } => return self.goal_event(&goal, event),
            ServerMessage::Published { filter, topic, payload } => {
                return self.deliver_topic(&filter, topic, payload);
            }
            ServerMessage::Description { id, .. } => {
                if let Some(slot) = lock(&self.pending).remove(&id) {
                    let _ = slot.send(Ok(message));
                }
            }
        }
        None
    }

    fn request_failed(&self, id: u64, error: TransportError) {
        let waiting = lock(&self.pending).remove(&id);
        if let Some(call) = waiting {
            let _ = call.send(Err(NoAnswer::Lost(error)));
        }
    }

    fn awaits(&self, id: u64) -> bool {
        lock(&self.pending).calls.contains_key(&id)
    }

    fn disconnected(&self, error: TransportError) {
        lock(&self.pending).fail_all(&error);
        for queue in lock(&self.signals).values().flatten() {
            queue.force(Err(error.clone()));
        }
        for queue in lock(&self.topics).values().flatten() {
            queue.force(Err(error.clone()));
        }
        // A restarted server starts its versions afresh; forget what we saw.
        lock(&self.versions).clear();
        let patience = self.goal_reconnect_timeout;
        for track in lock(&self.goals).values().filter_map(Weak::upgrade) {
            track.lose(error.clone(), patience);
        }
    }

    fn goal_lost(&self, goal: &GoalId, error: TransportError) {
        let track = lock(&self.goals).remove(goal).and_then(|track| track.upgrade());
        if let Some(track) = track {
            track.close(error);
        }
    }

    fn agreed(&self, agreement: Agreement) {
        let mut current = lock(&self.agreement);
        self.lacks_any.store(!agreement.lacking.is_empty(), Ordering::Release);
        *current = agreement;
    }

    fn reconnected(&self) -> Vec<ClientMessage> {
        let mut signals = lock(&self.signals).keys().cloned().collect::<Vec<_>>();
        signals.extend(lock(&self.topics).keys().cloned());
        let watches = lock(&self.watches).keys().cloned().collect::<Vec<_>>();
        let goals = {
            let mut goals = lock(&self.goals);
            goals.retain(|_, track| track.upgrade().is_some_and(|t| !t.is_finished()));
            goals.values().filter_map(Weak::upgrade).collect::<Vec<_>>()
        };
        let attaches = goals.into_iter().map(|track| ClientMessage::AttachGoal {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            action: track.action.clone(),
            goal: track.id.clone(),
            follow: true,
        });
        signals
            .into_iter()
            .map(|signal| ClientMessage::Subscribe { signal })
            .chain(watches.into_iter().map(|property| ClientMessage::Watch { property }))
            .chain(attaches)
            .collect()
    }
}

/// Offers `event` to each of `readers` (forgetting those whose reader is gone). A full reader
/// misses it at once when `patience` is zero; otherwise the delivery waits for it, for at most
/// `patience`, through the returned [`Backpressure`].
fn offer_each<T: Clone + Send + Sync + 'static>(
    readers: &mut Vec<Arc<ReaderQueue<T>>>,
    event: T,
    patience: Duration,
) -> Option<Backpressure> {
    let mut held = Vec::new();
    readers.retain(|queue| !queue.reader_gone());
    for queue in readers.iter() {
        match queue.offer(event.clone()) {
            Offer::Done => {}
            Offer::Full(_) if patience.is_zero() => queue.give_up(),
            Offer::Full(event) => held.push((queue.clone(), event)),
        }
    }
    if held.is_empty() {
        return None;
    }
    let deadline = tokio::time::Instant::now() + patience;
    Some(Backpressure::new(async move {
        for (queue, event) in held {
            queue.hold(event, deadline).await;
        }
    }))
}

/// Removes a pending request when its caller stops waiting without an answer (a failed send,
/// or the future was dropped); an answered or timed-out request is already gone.
struct PendingGuard<'a> {
    shared: &'a ClientShared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).remove(&self.id);
    }
}

/// The client's deadline sweeper: sleeps until the earliest deadline of a pending request,
/// fails every request whose deadline has passed with [`CallError::Timeout`], and stops when
/// the client closes.
async fn sweep_deadlines(shared: Arc<ClientShared>) {
    loop {
        let wake = {
            let pending = lock(&shared.pending);
            if pending.closed {
                return;
            }
            pending.wake
        };
        match wake {
            None => shared.sweeper.notified().await,
            Some(at) => {
                tokio::select! {
                    biased;
                    () = shared.sweeper.notified() => continue,
                    () = tokio::time::sleep_until(at) => {}
                }
                shared.expire(Instant::now());
            }
        }
    }
}

/// The error of requests on a closed client.
fn closed_error() -> TransportError {
    TransportError::new(TransportErrorKind::Closed, "the client was closed")
}

/// The deadline of a request that may wait `timeout` from now.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    // A timeout too long to represent never fires, as with `tokio::time::timeout`.
    now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30))
}

impl ClientCore {
    /// Connects to the service at `address`, which serves `interface`.
    pub async fn connect(
        address: &dyn ServiceAddress,
        interface: &InterfaceDescriptor,
        options: ClientOptions,
    ) -> Result<Self, TransportError> {
        let target = ServiceTarget::new(Arc::new(interface.clone()), address.instance());
        Self::connect_to(address, target, options).await
    }

    /// Connects to `target` through `address`: an interface instance, or a node's endpoint
    /// ([`Naming::Node`]), whose subscriptions are topic filters ([`subscribe_topic`](Self::subscribe_topic)).
    pub async fn connect_to(
        address: &dyn ServiceAddress,
        target: ServiceTarget,
        options: ClientOptions,
    ) -> Result<Self, TransportError> {
        let interface = target.interface.clone();
        let shared = Arc::new(ClientShared {
            goal_reconnect_timeout: options.goal_reconnect_timeout,
            node: target.naming == Naming::Node,
            ..ClientShared::default()
        });
        let transport = address.connect(target, shared.clone()).await?;
        let patience =
            if transport.can_push_back() { options.slow_reader_timeout } else { Duration::ZERO };
        let _ = shared.slow_reader_timeout.set(patience);
        tokio::spawn(sweep_deadlines(shared.clone()));
        Ok(ClientCore { inner: Arc::new(ClientInner { transport, shared, interface, options }) })
    }

    /// The interface this client speaks.
    pub fn interface(&self) -> &InterfaceDescriptor {
        &self.inner.interface
    }

    /// Calls a method with typed arguments and decodes the typed reply.
    pub async fn call<A, R>(&self, method: impl Into<Name>, args: &A) -> Result<R, CallError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let method = method.into();
        let payload = codec::encode(args)
            .map_err(|e| DecodeError::new(format!("arguments of method `{method}`"), e))?;
        let reply = self.call_raw(method.clone(), payload).await?;
        codec::decode(&reply)
            .map_err(|e| DecodeError::new(format!("reply of method `{method}`"), e).into())
    }

    /// Calls a method with an already-encoded JSON object and returns the encoded reply.
    pub async fn call_raw(
        &self,
        method: impl Into<Name>,
        payload: Bytes,
    ) -> Result<Bytes, CallError> {
        let method = method.into();
        self.inner.shared.check_member(MemberKind::Method, &method)?;
        let timeout = self
            .inner
            .interface
            .method(&method)
            .and_then(|m| m.timeout)
            .unwrap_or(self.inner.options.call_timeout);
        match self.request(timeout, |id| ClientMessage::Call { id, method, payload }).await? {
            ServerMessage::Reply { result, .. } => result.map_err(CallError::Remote),
            other => Err(unexpected(&other)),
        }
    }

    /// Calls a method with an already-encoded JSON object, waiting at most `timeout` for the
    /// reply, whatever the interface or the options say.
    pub async fn call_raw_within(
        &self,
        method: impl Into<Name>,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let method = method.into();
        self.inner.shared.check_member(MemberKind::Method, &method)?;
        match self.request(timeout, |id| ClientMessage::Call { id, method, payload }).await? {
            ServerMessage::Reply { result, .. } => result.map_err(CallError::Remote),
            other => Err(unexpected(&other)),
        }
    }

    /// Subscribes to the topics matching `filter` (a node's endpoint, [`Naming::Node`]: `*`
    /// stands for one dotted segment, `>` for all the rest); each message arrives with the
    /// topic it was published on, in the order the broker delivered it.
    pub async fn subscribe_topic(&self, filter: impl Into<Name>) -> Result<TopicStream, CallError> {
        let filter = filter.into();
        let queue = Arc::new(ReaderQueue::new(SIGNAL_BUFFER));
        let first = {
            let mut topics = lock(&self.inner.shared.topics);
            let first = !topics.contains_key(&filter);
            topics.entry(filter.clone()).or_default().push(queue.clone());
            first
        };
        if first {
            let sent = self
                .inner
                .transport
                .send(ClientMessage::Subscribe { signal: filter.clone() })
                .await;
            if let Err(error) = sent {
                lock(&self.inner.shared.topics).remove(&filter);
                return Err(error.into());
            }
        }
        Ok(TopicStream { reader: QueueReader::new(queue), filter })
    }

    /// Asks the server to describe its interface (runtime introspection) and returns the
    /// description JSON: the interface model as `switchboard-idl` serializes it.
    ///
    /// A dynamic client connects with a descriptor whose hash is empty, describes the server,
    /// and builds its full descriptor from the answer.
    pub async fn describe(&self) -> Result<String, CallError> {
        let timeout = self.inner.options.call_timeout;
        match self.request(timeout, |id| ClientMessage::Describe { id }).await? {
            ServerMessage::Description { description, .. } => {
                String::from_utf8(description.to_vec())
                    .map_err(|e| DecodeError::new("the interface description", e).into())
            }
            ServerMessage::Reply { result: Err(error), .. } => Err(CallError::Remote(error)),
            other => Err(unexpected(&other)),
        }
    }

    /// Subscribes to a signal; signals are delivered in the order the server emitted them.
    ///
    /// The subscription is in force for everything the server does on behalf of this client's
    /// later requests. Whether a signal the server emits on its own just after this returns is
    /// delivered depends on the transport: over MQTT it is (the broker acknowledged the
    /// subscription); over a Unix socket it is once any later request of this client has been
    /// answered (see `docs/wire/unix.md`, "Signals").
    pub async fn subscribe<T: DeserializeOwned>(
        &self,
        signal: impl Into<Name>,
    ) -> Result<SignalStream<T>, CallError> {
        let signal = signal.into();
        self.inner.shared.check_member(MemberKind::Signal, &signal)?;
        let queue = Arc::new(ReaderQueue::new(SIGNAL_BUFFER));
        let first = {
            let mut signals = lock(&self.inner.shared.signals);
            let first = !signals.contains_key(&signal);
            signals.entry(signal.clone()).or_default().push(queue.clone());
            first
        };
        if first {
            let sent = self
                .inner
                .transport
                .send(ClientMessage::Subscribe { signal: signal.clone() })
                .await;
            if let Err(error) = sent {
                lock(&self.inner.shared.signals).remove(&signal);
                return Err(error.into());
            }
        }
        Ok(SignalStream { reader: QueueReader::new(queue), signal, _type: PhantomData })
    }

    /// Reads a property's current value from the server.
    pub async fn get_property<W: DeserializeOwned>(
        &self,
        property: impl Into<Name>,
    ) -> Result<W, CallError> {
        let property = property.into();
        self.inner.shared.check_member(MemberKind::Property, &property)?;
        let (_, payload) = self.get_property_raw(property.clone()).await?;
        codec::decode_explained(&payload)
            .map_err(|e| DecodeError::new(format!("value of property `{property}`"), e).into())
    }

    /// Reads a property's current version and encoded value.
    pub async fn get_property_raw(
        &self,
        property: impl Into<Name>,
    ) -> Result<(u64, Bytes), CallError> {
        let property = property.into();
        self.inner.shared.check_member(MemberKind::Property, &property)?;
        let timeout = self.inner.options.call_timeout;
        match self.request(timeout, |id| ClientMessage::GetProperty { id, property }).await? {
            ServerMessage::PropertyReply { error: Some(error), .. } => {
                Err(CallError::Remote(error))
            }
            ServerMessage::PropertyReply { version, payload, .. } => Ok((version, payload)),
            other => Err(unexpected(&other)),
        }
    }

    /// Asks the server to replace a property's value.
    ///
    /// The request carries the last version this client saw (reading it first if it has seen
    /// none). If someone else changed the property since, the server refuses with `OutOfSync`
    /// and this client's view is updated to the current value.
    pub async fn set_property<W: Serialize + ?Sized>(
        &self,
        property: impl Into<Name>,
        value: &W,
    ) -> Result<(), CallError> {
        let property = property.into();
        self.inner.shared.check_member(MemberKind::Property, &property)?;
        let payload = codec::encode(value)
            .map_err(|e| DecodeError::new(format!("value of property `{property}`"), e))?;
        self.set_property_raw(property, payload).await.map(|_| ())
    }

    /// Replaces a property's value with an encoded JSON object; returns the new version.
    pub async fn set_property_raw(
        &self,
        property: impl Into<Name>,
        payload: Bytes,
    ) -> Result<u64, CallError> {
        let property = property.into();
        self.inner.shared.check_member(MemberKind::Property, &property)?;
        let known = lock(&self.inner.shared.versions).get(&property).copied();
        let version = match known {
            Some(version) => version,
            None => self.get_property_raw(property.clone()).await?.0,
        };
        let timeout = self.inner.options.call_timeout;
        let message =
            |id| ClientMessage::SetProperty { id, property, version: Some(version), payload };
        match self.request(timeout, message).await? {
            ServerMessage::PropertyReply { error: Some(error), .. } => {
                Err(CallError::Remote(error))
            }
            ServerMessage::PropertyReply { version, .. } => Ok(version),
            other => Err(unexpected(&other)),
        }
    }

    /// Watches a property: the first [`PropertyWatch::next`] gives the current value, later ones
    /// each change, with nothing lost in between.
    pub async fn watch_property<W, T>(
        &self,
        property: impl Into<Name>,
        map: fn(W) -> T,
    ) -> Result<PropertyWatch<T>, CallError>
    where
        W: DeserializeOwned + 'static,
        T: 'static,
    {
        let property = property.into();
        self.inner.shared.check_member(MemberKind::Property, &property)?;
        let (mut receiver, first) = {
            let mut watches = lock(&self.inner.shared.watches);
            match watches.get(&property) {
                Some(sender) => (sender.subscribe(), false),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    watches.insert(property.clone(), sender);
                    (receiver, true)
                }
            }
        };
        if first {
            let sent = self
                .inner
                .transport
                .send(ClientMessage::Watch { property: property.clone() })
                .await;
            if let Err(error) = sent {
                lock(&self.inner.shared.watches).remove(&property);
                return Err(error.into());
            }
        }
        receiver.mark_changed();
        let decode = move |payload: &[u8]| codec::decode::<W>(payload).map(map);
        Ok(PropertyWatch {
            change: ReusableBoxFuture::new(next_change(receiver)),
            property,
            decode: Box::new(decode),
            version: None,
        })
    }

    /// Runs a command: sends it and returns; the server never answers.
    ///
    /// `Ok` means the command was handed to the transport, not that the server ran it.
    pub async fn command<A: Serialize + ?Sized>(
        &self,
        command: impl Into<Name>,
        args: &A,
    ) -> Result<(), CallError> {
        let command = command.into();
        self.inner.shared.check_member(MemberKind::Command, &command)?;
        let payload = codec::encode(args)
            .map_err(|e| DecodeError::new(format!("arguments of command `{command}`"), e))?;
        self.inner.transport.send(ClientMessage::Command { command, payload }).await?;
        Ok(())
    }

    /// Sends a goal of `action` and returns its handle once the server accepted it.
    ///
    /// The goal's routing is registered before it is sent, so no event is lost. A rejection
    /// gives the error the server answered with. `map` turns the decoded result object into
    /// what [`GoalHandle::result`] returns.
    pub async fn send_goal<G, F, W, R, E>(
        &self,
        action: impl Into<Name>,
        goal: &G,
        map: fn(W) -> R,
    ) -> Result<GoalHandle<F, R, E>, MethodError<E>>
    where
        G: Serialize + ?Sized,
        F: DeserializeOwned,
        W: DeserializeOwned + 'static,
        R: 'static,
        E: DeclaredError,
    {
        let action = action.into();
        self.inner.shared.check_member(MemberKind::Action, &action)?;
        let payload = codec::encode(goal).map_err(|e| {
            CallError::from(DecodeError::new(format!("goal of action `{action}`"), e))
        })?;
        let id = GoalId::random();
        let track = Arc::new(GoalTrack::new(action.clone(), id.clone()));
        lock(&self.inner.shared.goals).insert(id.clone(), Arc::downgrade(&track));
        let sent = self
            .goal_request(|rid| ClientMessage::SendGoal {
                id: rid,
                action: action.clone(),
                goal: id.clone(),
                payload,
            })
            .await;
        match sent {
            Ok(_) => Ok(self.handle(track, result_decoder::<W, R>(map))),
            Err(error) => {
                lock(&self.inner.shared.goals).remove(&id);
                Err(error.into())
            }
        }
    }

    /// Follows a goal by its id, from any connection: its handle gives the status now, the
    /// feedback from now on, and the result (also when the goal has already ended, while the
    /// server remembers it). This connection becomes the goal's owner.
    pub async fn attach_goal<F, W, R, E>(
        &self,
        action: impl Into<Name>,
        goal: GoalId,
        map: fn(W) -> R,
    ) -> Result<GoalHandle<F, R, E>, MethodError<E>>
    where
        F: DeserializeOwned,
        W: DeserializeOwned + 'static,
        R: 'static,
        E: DeclaredError,
    {
        let action = action.into();
        self.inner.shared.check_member(MemberKind::Action, &action)?;
        let track = {
            let mut goals = lock(&self.inner.shared.goals);
            match goals.get(&goal).and_then(Weak::upgrade) {
                Some(track) => track,
                None => {
                    let track = Arc::new(GoalTrack::new(action.clone(), goal.clone()));
                    goals.insert(goal.clone(), Arc::downgrade(&track));
                    track
                }
            }
        };
        let snapshot = self
            .goal_request(|id| ClientMessage::AttachGoal {
                id,
                action: action.clone(),
                goal: goal.clone(),
                follow: true,
            })
            .await;
        match snapshot {
            Ok(_) => Ok(self.handle(track, result_decoder::<W, R>(map))),
            Err(error) => {
                lock(&self.inner.shared.goals).remove(&goal);
                Err(error.into())
            }
        }
    }

    /// Asks for a goal's status (and outcome, if it ended) without following it.
    pub async fn goal_status(
        &self,
        action: impl Into<Name>,
        goal: GoalId,
    ) -> Result<GoalSnapshot, CallError> {
        let action = action.into();
        self.inner.shared.check_member(MemberKind::Action, &action)?;
        self.goal_request(|id| ClientMessage::AttachGoal { id, action, goal, follow: false }).await
    }

    /// Asks the server to cancel a goal; returns its state at that moment.
    pub async fn cancel_goal(
        &self,
        action: impl Into<Name>,
        goal: GoalId,
    ) -> Result<GoalSnapshot, CallError> {
        let action = action.into();
        self.inner.shared.check_member(MemberKind::Action, &action)?;
        self.goal_request(|id| ClientMessage::CancelGoal { id, action, goal }).await
    }

    fn handle<F, R, E>(&self, track: Arc<GoalTrack>, decode: ResultFn<R>) -> GoalHandle<F, R, E>
    where
        F: DeserializeOwned,
        E: DeclaredError,
    {
        GoalHandle::new(track, Arc::new(self.clone()), decode)
    }

    async fn goal_request(
        &self,
        make: impl FnOnce(u64) -> ClientMessage,
    ) -> Result<GoalSnapshot, CallError> {
        match self.request(self.inner.options.call_timeout, make).await? {
            ServerMessage::GoalReply { result, .. } => result.map_err(CallError::Remote),
            other => Err(unexpected(&other)),
        }
    }

    /// Closes the connection; pending and later requests fail with a `Closed` transport error.
    pub fn close(&self) {
        self.inner.transport.close();
        self.inner.shared.close();
    }

    /// Sends a request and waits for its answer until its deadline, `timeout` from now.
    async fn request(
        &self,
        timeout: Duration,
        make: impl FnOnce(u64) -> ClientMessage,
    ) -> Result<ServerMessage, CallError> {
        let shared = &*self.inner.shared;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (slot, reply) = oneshot::channel();
        let deadline = deadline_after(timeout);
        shared.register(id, slot, deadline)?;
        let _guard = PendingGuard { shared, id };
        // The deadline also covers the time the request cannot be written (a server that does
        // not read): a transport drops a connection whose write was abandoned half-way.
        match tokio::time::timeout_at(deadline, self.inner.transport.send(make(id))).await {
            Ok(sent) => sent?,
            Err(_) => return Err(CallError::Timeout(timeout)),
        }
        match reply.await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(NoAnswer::Lost(error))) => Err(error.into()),
            Ok(Err(NoAnswer::TimedOut)) => Err(CallError::Timeout(timeout)),
            Err(_) => Err(closed_error().into()),
        }
    }
}

impl GoalCanceller for ClientCore {
    fn cancel(
        &self,
        action: Name,
        goal: GoalId,
    ) -> BoxFuture<'static, Result<GoalSnapshot, CallError>> {
        let this = self.clone();
        Box::pin(async move { this.cancel_goal(action, goal).await })
    }
}

/// Builds the decoder of a goal's result: the result object as `W`, mapped to `R`.
fn result_decoder<W: DeserializeOwned + 'static, R: 'static>(map: fn(W) -> R) -> ResultFn<R> {
    Arc::new(move |payload| codec::decode::<W>(payload).map(map))
}

fn unexpected(message: &ServerMessage) -> CallError {
    TransportError::new(
        TransportErrorKind::Protocol,
        format!("unexpected answer from the server: {message:?}"),
    )
    .into()
}

/// Why a subscription yielded no value this time. The stream goes on after each of these.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// This stream's queue stayed full for longer than
    /// [`ClientOptions::slow_reader_timeout`], and `missed` signals were dropped for it here.
    #[error("fell behind and missed {missed} signals")]
    Lagged {
        /// How many signals were skipped.
        missed: u64,
    },
    /// A signal did not decode as the interface declares.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The connection was lost; signals sent until it is restored are missed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// The signals of one kind, decoded as `T`.
///
/// Read it with [`next`](Self::next), or as a [`Stream`] (with `StreamExt` from `futures` or
/// `tokio-stream`, for `map`, `filter`, `select` and the like).
///
/// Each stream has its own queue of [`SIGNAL_BUFFER`] signals. When it is full the connection
/// waits for this reader, for up to [`ClientOptions::slow_reader_timeout`], before it reads on;
/// only a reader that stays full that long misses signals, and learns how many from
/// [`SubscriptionError::Lagged`]. Drop a stream you no longer read.
pub struct SignalStream<T> {
    reader: QueueReader<SignalEvent>,
    signal: Name,
    _type: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for SignalStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalStream").field("signal", &self.signal).finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> SignalStream<T> {
    /// Waits for the next signal. Returns `None` once the client is closed.
    pub async fn next(&mut self) -> Option<Result<T, SubscriptionError>> {
        std::future::poll_fn(|cx| self.poll_signal(cx)).await
    }

    fn poll_signal(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, SubscriptionError>>> {
        let Some(entry) = ready!(self.reader.poll_next(cx)) else { return Poll::Ready(None) };
        Poll::Ready(Some(match entry {
            Entry::Item(Ok(payload)) => codec::decode(&payload)
                .map_err(|e| DecodeError::new(format!("signal `{}`", self.signal), e).into()),
            Entry::Item(Err(error)) => Err(error.into()),
            Entry::Missed(missed) => Err(SubscriptionError::Lagged { missed }),
        }))
    }
}

impl<T: DeserializeOwned> Stream for SignalStream<T> {
    type Item = Result<T, SubscriptionError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_signal(cx)
    }
}

/// The messages on the topics that match one filter, each with its topic, still encoded.
///
/// Like a [`SignalStream`], it has its own queue of [`SIGNAL_BUFFER`] messages, and a reader
/// that falls behind learns how many it missed ([`SubscriptionError::Lagged`]).
pub struct TopicStream {
    reader: QueueReader<TopicEvent>,
    filter: Name,
}

impl fmt::Debug for TopicStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicStream").field("filter", &self.filter).finish_non_exhaustive()
    }
}

impl TopicStream {
    /// The filter subscribed.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Waits for the next message and the topic it was published on. Returns `None` once the
    /// client is closed.
    pub async fn next(&mut self) -> Option<Result<(Name, Bytes), SubscriptionError>> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(Name, Bytes), SubscriptionError>>> {
        let Some(entry) = ready!(self.reader.poll_next(cx)) else { return Poll::Ready(None) };
        Poll::Ready(Some(match entry {
            Entry::Item(Ok(message)) => Ok(message),
            Entry::Item(Err(error)) => Err(error.into()),
            Entry::Missed(missed) => Err(SubscriptionError::Lagged { missed }),
        }))
    }
}

impl Stream for TopicStream {
    type Item = Result<(Name, Bytes), SubscriptionError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx)
    }
}

/// Turns a property's encoded value into what a [`PropertyWatch`] yields.
type DecodeFn<T> = dyn Fn(&[u8]) -> Result<T, serde_json::Error> + Send + Sync;

/// The wait for a property's next value, which owns the receiver while it waits.
type NextChange = ReusableBoxFuture<
    'static,
    (Result<(), watch::error::RecvError>, watch::Receiver<PropertySnapshot>),
>;

/// Waits for `receiver` to see a value it has not seen, and hands it back.
async fn next_change(
    mut receiver: watch::Receiver<PropertySnapshot>,
) -> (Result<(), watch::error::RecvError>, watch::Receiver<PropertySnapshot>) {
    let changed = receiver.changed().await;
    (changed, receiver)
}

/// The value of one property over time, decoded as `T`.
///
/// Read it with [`next`](Self::next), or as a [`Stream`] (with `StreamExt` from `futures` or
/// `tokio-stream`).
pub struct PropertyWatch<T> {
    change: NextChange,
    property: Name,
    decode: Box<DecodeFn<T>>,
    version: Option<u64>,
}

impl<T> fmt::Debug for PropertyWatch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PropertyWatch").field("property", &self.property).finish_non_exhaustive()
    }
}

impl<T> PropertyWatch<T> {
    /// Waits for the next value: the current one first, then each change.
    ///
    /// Values that change faster than they are read are coalesced: the latest wins.
    /// Returns `None` once the client is closed.
    pub async fn next(&mut self) -> Option<Result<T, DecodeError>> {
        std::future::poll_fn(|cx| self.poll_value(cx)).await
    }

    /// The version of the value the last [`next`](Self::next) returned.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    fn poll_value(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, DecodeError>>> {
        loop {
            let (changed, mut receiver) = ready!(self.change.poll(cx));
            let snapshot = receiver.borrow_and_update().clone();
            self.change.set(next_change(receiver));
            if changed.is_err() {
                return Poll::Ready(None);
            }
            if let Some((version, payload)) = snapshot {
                self.version = Some(version);
                return Poll::Ready(Some((self.decode)(&payload).map_err(|e| {
                    DecodeError::new(format!("value of property `{}`", self.property), e)
                })));
            }
        }
    }
}

impl<T> Stream for PropertyWatch<T> {
    type Item = Result<T, DecodeError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_value(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::{
        descriptor::MethodDescriptor,
        transport::{Binder, Connector, ServerInbox, ServerTransport},
    };

    /// A method whose interface gives it a timeout of its own.
    const SLOW: &str = "slow";
    const SLOW_TIMEOUT: Duration = Duration::from_secs(2);
    /// A method that uses the client's `call_timeout`.
    const PLAIN: &str = "plain";

    fn interface() -> InterfaceDescriptor {
        InterfaceDescriptor {
            name: "Test".into(),
            version: "1.0.0".into(),
            title: "Test".into(),
            hash: "".into(),
            description: "{}".into(),
            methods: vec![
                MethodDescriptor { name: SLOW.into(), timeout: Some(SLOW_TIMEOUT) },
                MethodDescriptor { name: PLAIN.into(), timeout: None },
            ]
            .into(),
            signals: Cow::Borrowed(&[]),
            properties: Cow::Borrowed(&[]),
            topic_params: Cow::Borrowed(&[]),
            topic_templates: Cow::Borrowed(&[]),
        }
    }

    /// A server that never answers by itself: the test answers through the client's inbox.
    #[derive(Debug, Default)]
    struct Silent {
        inbox: Mutex<Option<Weak<dyn ClientInbox>>>,
        sent: Arc<Mutex<Vec<ClientMessage>>>,
        /// Whether no write ever finishes, as with a server that stopped reading.
        stuck: bool,
    }

    impl Silent {
        fn inbox(&self) -> Arc<dyn ClientInbox> {
            lock(&self.inbox).as_ref().and_then(Weak::upgrade).expect("a connected client")
        }

        fn sent_ids(&self) -> Vec<u64> {
            lock(&self.sent)
                .iter()
                .filter_map(|m| match m {
                    ClientMessage::Call { id, .. } => Some(*id),
                    _ => None,
                })
                .collect()
        }
    }

    /// The client side of [`Silent`]: records what is sent and holds the inbox, as transports do.
    struct Recorder {
        sent: Arc<Mutex<Vec<ClientMessage>>>,
        stuck: bool,
        _inbox: Arc<dyn ClientInbox>,
    }

    impl fmt::Debug for Recorder {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Recorder").finish_non_exhaustive()
        }
    }

    impl ClientTransport for Recorder {
        fn send(&self, message: ClientMessage) -> BoxFuture<'_, Result<(), TransportError>> {
            lock(&self.sent).push(message);
            if self.stuck {
                return Box::pin(std::future::pending());
            }
            Box::pin(std::future::ready(Ok(())))
        }

        fn can_push_back(&self) -> bool {
            true
        }

        fn close(&self) {}
    }

    impl Connector for Silent {
        fn connect(
            &self,
            _target: ServiceTarget,
            inbox: Arc<dyn ClientInbox>,
        ) -> BoxFuture<'_, Result<Arc<dyn ClientTransport>, TransportError>> {
            *lock(&self.inbox) = Some(Arc::downgrade(&inbox));
            let transport: Arc<dyn ClientTransport> =
                Arc::new(Recorder { sent: self.sent.clone(), stuck: self.stuck, _inbox: inbox });
            Box::pin(std::future::ready(Ok(transport)))
        }
    }

    impl Binder for Silent {
        fn bind(
            &self,
            _target: ServiceTarget,
            _inbox: Arc<dyn ServerInbox>,
        ) -> BoxFuture<'_, Result<Arc<dyn ServerTransport>, TransportError>> {
            Box::pin(std::future::ready(Err(TransportError::new(
                TransportErrorKind::Io,
                "a test server only answers through the inbox",
            ))))
        }
    }

    impl ServiceAddress for Silent {
        fn instance(&self) -> &str {
            "default"
        }
    }

    async fn connect(call_timeout: Duration) -> (ClientCore, Arc<Silent>) {
        let server = Arc::new(Silent::default());
        let options = ClientOptions::default().call_timeout(call_timeout);
        let client = ClientCore::connect(&*server, &interface(), options).await.expect("connect");
        (client, server)
    }

    fn call(client: &ClientCore, method: &'static str) -> BoxFuture<'static, CallResult> {
        let client = client.clone();
        Box::pin(async move {
            let result = client.call_raw(method, Bytes::from_static(b"{}")).await;
            (result, Instant::now())
        })
    }

    type CallResult = (Result<Bytes, CallError>, Instant);

    fn pending(client: &ClientCore) -> usize {
        lock(&client.inner.shared.pending).calls.len()
    }

    fn assert_timeout(result: Result<Bytes, CallError>, expected: Duration) {
        match result {
            Err(CallError::Timeout(timeout)) => assert_eq!(timeout, expected),
            other => panic!("expected a timeout after {expected:?}, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_whose_request_cannot_be_written_times_out() {
        let server = Arc::new(Silent { stuck: true, ..Silent::default() });
        let options = ClientOptions::default().call_timeout(Duration::from_millis(300));
        let client = ClientCore::connect(&*server, &interface(), options).await.expect("connect");
        let started = Instant::now();
        let finished = tokio::time::timeout(Duration::from_secs(10), call(&client, PLAIN)).await;
        let (result, ended) =
            finished.expect("the call ends although its request is never written");
        assert_timeout(result, Duration::from_millis(300));
        assert_eq!(ended - started, Duration::from_millis(300));
        assert_eq!(pending(&client), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_times_out_after_its_own_timeout() {
        let (client, _server) = connect(Duration::from_secs(30)).await;
        let started = Instant::now();
        let (result, ended) = call(&client, SLOW).await;
        assert_timeout(result, SLOW_TIMEOUT);
        assert_eq!(ended - started, SLOW_TIMEOUT);
        let started = Instant::now();
        let (result, ended) = call(&client, PLAIN).await;
        assert_timeout(result, Duration::from_secs(30));
        assert_eq!(ended - started, Duration::from_secs(30));
        assert_eq!(pending(&client), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_timeout_issued_later_fires_first() {
        let (client, _server) = connect(Duration::from_secs(10)).await;
        let started = Instant::now();
        let long = tokio::spawn(call(&client, PLAIN));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (result, ended) = call(&client, SLOW).await;
        assert_timeout(result, SLOW_TIMEOUT);
        assert_eq!(ended - started, Duration::from_secs(1) + SLOW_TIMEOUT);
        assert!(!long.is_finished(), "the longer call is still waiting");
        assert_eq!(pending(&client), 1);
        let (result, ended) = long.await.expect("the long call");
        assert_timeout(result, Duration::from_secs(10));
        assert_eq!(ended - started, Duration::from_secs(10));
        assert_eq!(pending(&client), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_left_behind() {
        let (client, server) = connect(Duration::from_secs(10)).await;
        // An answered call.
        let answered = tokio::spawn(call(&client, PLAIN));
        tokio::task::yield_now().await;
        let id = *server.sent_ids().last().expect("the call was sent");
        let reply = ServerMessage::Reply { id, result: Ok(Bytes::from_static(b"{\"ok\":1}")) };
        assert!(server.inbox().deliver(reply).is_none());
        let (result, _) = answered.await.expect("the answered call");
        assert_eq!(result.expect("the answer"), Bytes::from_static(b"{\"ok\":1}"));
        assert_eq!(pending(&client), 0);
        // A call whose caller gave up.
        let abandoned = tokio::spawn(call(&client, PLAIN));
        tokio::task::yield_now().await;
        assert_eq!(pending(&client), 1);
        abandoned.abort();
        assert!(abandoned.await.expect_err("aborted").is_cancelled());
        assert_eq!(pending(&client), 0);
        // A late answer goes nowhere.
        let id = *server.sent_ids().last().expect("the call was sent");
        assert!(
            server.inbox().deliver(ServerMessage::Reply { id, result: Ok(Bytes::new()) }).is_none()
        );
        // Once the earliest deadline has passed, the sweeper has nothing left to wait for.
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(lock(&client.inner.shared.pending).wake, None);
        // Dropping the client stops the sweeper, which frees the client's state.
        let shared = Arc::downgrade(&client.inner.shared);
        drop(client);
        tokio::task::yield_now().await;
        assert!(shared.upgrade().is_none(), "the sweeper let go of the client");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_no_server_receives_fails_alone_and_at_once() {
        let (client, server) = connect(Duration::from_secs(10)).await;
        let other = tokio::spawn(call(&client, PLAIN));
        tokio::task::yield_now().await;
        let failing = tokio::spawn(call(&client, PLAIN));
        tokio::task::yield_now().await;
        let ids = server.sent_ids();
        let started = Instant::now();
        server.inbox().request_failed(ids[1], TransportError::not_connected("no responders"));
        let (result, ended) = failing.await.expect("the call");
        match result {
            Err(CallError::Transport(e)) => {
                assert_eq!(
                    (e.kind(), e.message()),
                    (TransportErrorKind::NotConnected, "no responders")
                )
            }
            other => panic!("expected the transport error, got {other:?}"),
        }
        assert_eq!(ended, started, "failed at once");
        assert!(!other.is_finished(), "the other call still waits");
        assert_eq!(pending(&client), 1);
        // An id that is not pending (answered, or never sent) changes nothing.
        server.inbox().request_failed(9999, TransportError::not_connected("late"));
        assert_eq!(pending(&client), 1);
        other.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn close_and_disconnect_fail_pending_calls() {
        let (client, server) = connect(Duration::from_secs(10)).await;
        let waiting = tokio::spawn(call(&client, PLAIN));
        tokio::task::yield_now().await;
        let started = Instant::now();
        server.inbox().disconnected(TransportError::disconnected("gone"));
        let (result, ended) = waiting.await.expect("the call");
        match result {
            Err(CallError::Transport(e)) => assert_eq!(e.kind(), TransportErrorKind::Disconnected),
            other => panic!("expected a disconnect, got {other:?}"),
        }
        assert_eq!(ended, started, "failed at once");
        // The sweeper goes on after a disconnect.
        assert_timeout(call(&client, SLOW).await.0, SLOW_TIMEOUT);

        let waiting = tokio::spawn(call(&client, PLAIN));
        tokio::task::yield_now().await;
        client.close();
        for result in [waiting.await.expect("the call").0, call(&client, PLAIN).await.0] {
            match result {
                Err(CallError::Transport(e)) => assert_eq!(e.kind(), TransportErrorKind::Closed),
                other => panic!("expected a closed client, got {other:?}"),
            }
        }
        assert_eq!(pending(&client), 0);
    }
}
