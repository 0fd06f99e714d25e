//! Actions: long-running goals with feedback, cancellation and exactly one end state.
//!
//! A client picks a goal id ([`GoalId`], UUID format) and sends the goal. The server accepts or
//! rejects it, runs the handler with a [`GoalContext`] (feedback sender, cancellation, caller
//! identity), and sends every feedback, status change and the final [`GoalOutcome`] as
//! [`GoalEvent`]s, in order, to the connections following the goal. The client registers its
//! routing before it sends the goal, so the first feedback cannot be lost, and it keeps the
//! outcome apart from the feedback queue, so the end state is never dropped.
//!
//! The server side of the bookkeeping (limits, retention, grace periods) lives in
//! [`crate::server`]; this module holds the types both sides share, the handler's
//! [`GoalContext`] and the client's [`GoalHandle`].

use crate::sync::lock;
use std::{
    collections::VecDeque,
    fmt,
    marker::PhantomData,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::{Notify, watch};

use crate::{
    codec,
    context::CallContext,
    error::{CallError, DeclaredError, DecodeError, HandlerError, RemoteError, TransportError},
    message::{Name, ServerMessage},
    transport::{Backpressure, BoxFuture, Peer},
};

/// The id of one goal, chosen by the client in UUID format (`8-4-4-4-12` hex digits).
///
/// Because the client chooses it, the client knows it before the server answers, can route the
/// goal's first events, and can re-attach by it after a reconnect.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GoalId(Arc<str>);

impl GoalId {
    /// A fresh random id (a version 4 UUID).
    pub fn random() -> Self {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        GoalId(Arc::from(&*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for GoalId {
    fn from(id: String) -> Self {
        GoalId(Arc::from(id))
    }
}

impl From<&str> for GoalId {
    fn from(id: &str) -> Self {
        GoalId(Arc::from(id))
    }
}

impl fmt::Display for GoalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a goal is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GoalStatus {
    /// The server accepted the goal; the handler has not started yet.
    Accepted,
    /// The handler is running.
    Executing,
    /// Cancellation was requested; the handler decides how to finish.
    Canceling,
    /// The goal ended with a result.
    Succeeded,
    /// The goal ended because it was cancelled.
    Cancelled,
    /// The goal ended with an error.
    Failed,
    /// The server refused the goal; the refusal is the error of the answer to sending it.
    Rejected,
}

impl GoalStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [GoalStatus; 7] = [
        GoalStatus::Accepted,
        GoalStatus::Executing,
        GoalStatus::Canceling,
        GoalStatus::Succeeded,
        GoalStatus::Cancelled,
        GoalStatus::Failed,
        GoalStatus::Rejected,
    ];

    /// The lower-case wire name, e.g. `executing`.
    pub fn as_str(self) -> &'static str {
        match self {
            GoalStatus::Accepted => "accepted",
            GoalStatus::Executing => "executing",
            GoalStatus::Canceling => "canceling",
            GoalStatus::Succeeded => "succeeded",
            GoalStatus::Cancelled => "cancelled",
            GoalStatus::Failed => "failed",
            GoalStatus::Rejected => "rejected",
        }
    }

    /// Reads a wire name; unknown names give `None`.
    pub fn parse(name: &str) -> Option<GoalStatus> {
        GoalStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// True for the end states: succeeded, cancelled, failed and rejected.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            GoalStatus::Succeeded
                | GoalStatus::Cancelled
                | GoalStatus::Failed
                | GoalStatus::Rejected
        )
    }
}

impl fmt::Display for GoalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a goal ended. Every goal ends exactly once.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GoalOutcome {
    /// The handler returned a result: the result values as a JSON object.
    Succeeded(Bytes),
    /// The goal was cancelled.
    Cancelled,
    /// The handler failed: a declared error, another error, or a panic (a generic `Internal`).
    Failed(RemoteError),
}

impl GoalOutcome {
    /// The end status this outcome stands for.
    pub fn status(&self) -> GoalStatus {
        match self {
            GoalOutcome::Succeeded(_) => GoalStatus::Succeeded,
            GoalOutcome::Cancelled => GoalStatus::Cancelled,
            GoalOutcome::Failed(_) => GoalStatus::Failed,
        }
    }
}

/// Something that happened to a goal.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GoalEvent {
    /// Progress: the feedback values as a JSON object.
    Feedback(Bytes),
    /// The status changed (to executing or canceling; end states come as [`GoalEvent::Finished`]).
    Status(GoalStatus),
    /// The goal ended.
    Finished(GoalOutcome),
}

/// A goal's state at one moment: its status, and its outcome once it has ended.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalSnapshot {
    /// The status.
    pub status: GoalStatus,
    /// The outcome, present exactly when the status is an end state.
    pub outcome: Option<GoalOutcome>,
}

impl GoalSnapshot {
    /// A snapshot of a goal that has not ended.
    pub fn running(status: GoalStatus) -> Self {
        GoalSnapshot { status, outcome: None }
    }

    /// A snapshot of a goal that has ended.
    pub fn finished(outcome: GoalOutcome) -> Self {
        GoalSnapshot { status: outcome.status(), outcome: Some(outcome) }
    }
}

/// Why a goal did not produce a result.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum GoalError<E> {
    /// The goal was cancelled.
    Cancelled,
    /// The goal failed with one of the action's declared errors.
    Declared(E),
    /// Any other failure: an undeclared remote error (including `Internal` after a panic), a
    /// result that did not decode, or a closed client.
    Call(CallError),
}

impl<E: fmt::Display> fmt::Display for GoalError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoalError::Cancelled => f.write_str("the goal was cancelled"),
            GoalError::Declared(error) => error.fmt(f),
            GoalError::Call(error) => error.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for GoalError<E> {}

// ---------------------------------------------------------------------------------------------
// Server side.

/// What the handler's future ends with, before it is encoded.
pub type GoalRun = BoxFuture<'static, GoalOutcome>;

/// One goal as the server keeps it.
pub(crate) struct ServerGoal {
    pub(crate) id: GoalId,
    pub(crate) action: Name,
    pub(crate) state: Mutex<ServerGoalState>,
    cancel: watch::Sender<bool>,
}

/// The mutable part of a [`ServerGoal`]; events are sent while this is locked, so snapshots and
/// events reach every follower in a consistent order.
pub(crate) struct ServerGoalState {
    pub(crate) status: GoalStatus,
    pub(crate) outcome: Option<GoalOutcome>,
    /// The connections that receive the goal's events.
    pub(crate) followers: Vec<Peer>,
    /// The connection that owns the goal: the sender, or the last to re-attach.
    pub(crate) owner: crate::context::PeerId,
}

impl ServerGoal {
    pub(crate) fn new(id: GoalId, action: Name, owner: &Peer) -> Self {
        let state = ServerGoalState {
            status: GoalStatus::Accepted,
            outcome: None,
            followers: vec![owner.clone()],
            owner: owner.id(),
        };
        ServerGoal { id, action, state: Mutex::new(state), cancel: watch::channel(false).0 }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ServerGoalState> {
        lock(&self.state)
    }

    pub(crate) fn snapshot(state: &ServerGoalState) -> GoalSnapshot {
        GoalSnapshot { status: state.status, outcome: state.outcome.clone() }
    }

    /// Records `event` and sends it to every follower, unless the goal has already ended.
    pub(crate) fn emit(&self, event: GoalEvent) {
        let mut state = self.lock();
        self.emit_locked(&mut state, event);
    }

    /// Sends feedback to every follower, waiting while a follower's queue is full, so a handler
    /// that reports progress faster than a client reads it is slowed down instead of getting
    /// the client disconnected. Feedback after the end is dropped.
    pub(crate) async fn emit_feedback(&self, payload: Bytes) {
        let (message, followers) = {
            let state = self.lock();
            if state.outcome.is_some() {
                return;
            }
            let event = GoalEvent::Feedback(payload);
            let message = ServerMessage::GoalEvent {
                action: self.action.clone(),
                goal: self.id.clone(),
                event,
            };
            (message, state.followers.clone())
        };
        let sends = followers.iter().map(|peer| peer.send_when_ready(message.clone()));
        futures_util::future::join_all(sends).await;
    }

    fn emit_locked(&self, state: &mut ServerGoalState, event: GoalEvent) {
        if state.outcome.is_some() {
            return;
        }
        match &event {
            GoalEvent::Feedback(_) => {}
            GoalEvent::Status(status) => state.status = *status,
            GoalEvent::Finished(outcome) => {
                state.status = outcome.status();
                state.outcome = Some(outcome.clone());
            }
        }
        let message =
            ServerMessage::GoalEvent { action: self.action.clone(), goal: self.id.clone(), event };
        for peer in &state.followers {
            // A failed send means the transport applied its slow-consumer policy; the client
            // re-attaches and learns the state from the snapshot.
            let _ = peer.send(message.clone());
        }
    }

    /// Requests cancellation: the status becomes canceling and the handler is told.
    /// Returns the snapshot after the request.
    pub(crate) fn request_cancel(&self) -> GoalSnapshot {
        let mut state = self.lock();
        if state.outcome.is_none() && state.status != GoalStatus::Canceling {
            self.emit_locked(&mut state, GoalEvent::Status(GoalStatus::Canceling));
            self.cancel.send_replace(true);
        }
        Self::snapshot(&state)
    }

    pub(crate) fn is_cancel_requested(&self) -> bool {
        *self.cancel.borrow()
    }

    pub(crate) fn cancel_receiver(&self) -> watch::Receiver<bool> {
        self.cancel.subscribe()
    }
}

/// The untyped goal context the runtime hands to generated dispatch code.
pub struct RawGoal {
    goal: Arc<ServerGoal>,
    client: CallContext,
    cancel: watch::Receiver<bool>,
}

impl fmt::Debug for RawGoal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawGoal")
            .field("action", &self.goal.action)
            .field("id", &self.goal.id)
            .finish_non_exhaustive()
    }
}

impl RawGoal {
    pub(crate) fn new(goal: Arc<ServerGoal>, client: CallContext) -> Self {
        let cancel = goal.cancel_receiver();
        RawGoal { goal, client, cancel }
    }

    /// Who sent the goal.
    pub fn client(&self) -> &CallContext {
        &self.client
    }
}

/// What an action handler receives: the goal's id, a feedback sender, cancellation, and the
/// identity of the client that sent it. `F` is the action's feedback type.
pub struct GoalContext<F> {
    raw: RawGoal,
    _feedback: PhantomData<fn(F)>,
}

impl<F> fmt::Debug for GoalContext<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.raw.fmt(f)
    }
}

impl<F: Serialize> GoalContext<F> {
    /// Wraps the runtime's context; generated code calls this.
    pub fn new(raw: RawGoal) -> Self {
        GoalContext { raw, _feedback: PhantomData }
    }

    /// The goal's id.
    pub fn id(&self) -> &GoalId {
        &self.raw.goal.id
    }

    /// The client that sent the goal.
    pub fn client(&self) -> &CallContext {
        &self.raw.client
    }

    /// Sends progress to the clients following the goal, in order.
    ///
    /// Feedback sent after the goal has ended is dropped. With no client connected (the owner
    /// went away and nobody re-attached yet) it is dropped too; the goal keeps running.
    pub async fn feedback(&self, value: F) {
        match codec::encode(&value) {
            Ok(payload) => self.raw.goal.emit_feedback(payload).await,
            Err(error) => tracing::error!(%error, "goal feedback could not be encoded"),
        }
    }

    /// True once cancellation has been requested (by a client, or because the owner left).
    pub fn is_cancelled(&self) -> bool {
        *self.raw.cancel.borrow()
    }

    /// Resolves when cancellation is requested; at once if it already was.
    ///
    /// End the goal by returning `Err(HandlerError::Cancelled)`, or return a result anyway.
    pub async fn cancelled(&self) {
        let mut cancel = self.raw.cancel.clone();
        // An error means the goal is gone, which also means nobody will wait for the result.
        let _ = cancel.wait_for(|cancelled| *cancelled).await;
    }
}

/// Turns a typed handler future into the runtime's [`GoalRun`]: the result is encoded, a declared
/// error becomes its wire form, and [`HandlerError::Cancelled`] ends the goal as cancelled.
pub fn goal_run<T, E>(
    future: impl Future<Output = Result<T, HandlerError<E>>> + Send + 'static,
) -> GoalRun
where
    T: Serialize + Send + 'static,
    E: DeclaredError,
{
    Box::pin(async move {
        match future.await {
            Ok(value) => match crate::server::encode_reply(&value) {
                Ok(payload) => GoalOutcome::Succeeded(payload),
                Err(error) => GoalOutcome::Failed(error),
            },
            Err(HandlerError::Cancelled) => GoalOutcome::Cancelled,
            Err(HandlerError::Declared(error)) => GoalOutcome::Failed(error.into_remote()),
            Err(HandlerError::Other(error)) => GoalOutcome::Failed(error),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Client side.

/// How much feedback a goal queues for its reader.
///
/// A full queue makes the connection wait for the reader, for up to
/// [`ClientOptions::slow_reader_timeout`](crate::client::ClientOptions::slow_reader_timeout);
/// a reader still full then lags, and the oldest feedback is dropped (counted in
/// [`GoalHandle::missed_feedback`]) until it has read half the queue. A goal whose handle awaits
/// [`GoalHandle::result`] without ever having asked for feedback never slows its connection
/// down: it keeps the newest feedback. Over a transport that cannot push back (a broker), a full
/// queue always drops the oldest.
pub const FEEDBACK_BUFFER: usize = 1024;

/// What the client knows about one goal it follows.
pub(crate) struct GoalTrack {
    pub(crate) action: Name,
    pub(crate) id: GoalId,
    state: Mutex<TrackState>,
    /// Counts the changes to `state`; a handle compares it with the count it last saw.
    version: AtomicU64,
    /// Wakes the handles waiting for a change.
    changed: Notify,
    /// Wakes a held feedback delivery when a reader takes feedback.
    feedback_taken: Notify,
}

#[derive(Default)]
struct TrackState {
    status: Option<GoalStatus>,
    feedback: VecDeque<Bytes>,
    missed: u64,
    /// A handle has asked for feedback.
    reading: bool,
    /// A handle awaits the result. If nobody has asked for feedback, nobody will: a full queue
    /// drops the oldest instead of waiting.
    awaiting_result: bool,
    /// The reader stayed full past the timeout: drop the oldest instead of waiting, until it has
    /// read half the queue.
    lagging: bool,
    outcome: Option<GoalOutcome>,
    closed: Option<TransportError>,
    /// The connection was lost: until a re-attach brings news of the goal, waiting for it ends
    /// with this error at this deadline.
    lost: Option<(tokio::time::Instant, TransportError)>,
}

impl GoalTrack {
    pub(crate) fn new(action: Name, id: GoalId) -> Self {
        GoalTrack {
            action,
            id,
            state: Mutex::default(),
            version: AtomicU64::new(0),
            changed: Notify::new(),
            feedback_taken: Notify::new(),
        }
    }

    fn bump(&self) {
        self.version.fetch_add(1, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Waits until the state has changed since the handle saw version `seen`, and moves `seen`
    /// on to the version it now has.
    async fn changed_since(&self, seen: &mut u64) {
        loop {
            let mut notified = std::pin::pin!(self.changed.notified());
            // Registered before the version is read, so a change in between still wakes it.
            notified.as_mut().enable();
            let version = self.version.load(Ordering::Acquire);
            if version != *seen {
                *seen = version;
                return;
            }
            notified.await;
        }
    }

    /// Applies an event; nothing changes after the end state.
    ///
    /// Feedback for a reader whose queue is full comes back as [`Backpressure`]: the connection
    /// waits (up to `patience`; never when it is zero) until the reader has taken some.
    pub(crate) fn apply(
        self: &Arc<Self>,
        event: GoalEvent,
        patience: Duration,
    ) -> Option<Backpressure> {
        {
            let mut state = lock(&self.state);
            if state.outcome.is_some() {
                return None;
            }
            // Any news of the goal means the client reached the server again.
            state.lost = None;
            match event {
                GoalEvent::Feedback(payload) => {
                    if state.lagging && state.feedback.len() <= FEEDBACK_BUFFER / 2 {
                        state.lagging = false;
                    }
                    if state.feedback.len() >= FEEDBACK_BUFFER {
                        let unread = state.awaiting_result && !state.reading;
                        if !unread && !state.lagging && !patience.is_zero() {
                            let track = self.clone();
                            let deadline = tokio::time::Instant::now() + patience;
                            return Some(Backpressure::new(track.hold_feedback(payload, deadline)));
                        }
                        state.feedback.pop_front();
                        state.missed += 1;
                    }
                    state.feedback.push_back(payload);
                }
                GoalEvent::Status(status) => state.status = Some(status),
                GoalEvent::Finished(outcome) => {
                    state.status = Some(outcome.status());
                    state.outcome = Some(outcome);
                }
            }
        }
        self.bump();
        None
    }

    /// Waits until the feedback queue has room for `payload`, but not past `deadline`: then the
    /// reader is declared lagging and the oldest feedback makes room. Returns early when the goal
    /// ends, the client closes or every handle is gone.
    async fn hold_feedback(self: Arc<Self>, payload: Bytes, deadline: tokio::time::Instant) {
        loop {
            let mut taken = std::pin::pin!(self.feedback_taken.notified());
            taken.as_mut().enable();
            let queued = {
                let mut state = lock(&self.state);
                let abandoned = Arc::strong_count(&self) == 1;
                if state.outcome.is_some() || state.closed.is_some() || abandoned {
                    return;
                }
                let full = state.feedback.len() >= FEEDBACK_BUFFER;
                if full && tokio::time::Instant::now() >= deadline {
                    state.lagging = true;
                    state.feedback.pop_front();
                    state.missed += 1;
                }
                if full && !state.lagging {
                    false
                } else {
                    state.feedback.push_back(payload.clone());
                    true
                }
            };
            if queued {
                self.bump();
                return;
            }
            let _ = tokio::time::timeout_at(deadline, taken).await;
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        lock(&self.state).outcome.is_some()
    }

    /// The client was closed, or the server running the goal is gone: waiting ends with this
    /// error unless the goal already ended.
    pub(crate) fn close(&self, error: TransportError) {
        lock(&self.state).closed = Some(error);
        self.bump();
    }

    /// The connection was lost. Unless the client re-attaches within `patience`, waiting for the
    /// goal ends with `error`.
    pub(crate) fn lose(&self, error: TransportError, patience: std::time::Duration) {
        {
            let mut state = lock(&self.state);
            if state.outcome.is_some() || state.lost.is_some() {
                return;
            }
            state.lost = Some((tokio::time::Instant::now() + patience, error));
        }
        self.bump();
    }

    /// The error to end waiting with, when the connection has stayed lost past its deadline;
    /// otherwise the deadline to wait until, if any.
    fn lost_state(&self) -> Result<Option<tokio::time::Instant>, TransportError> {
        match &lock(&self.state).lost {
            Some((deadline, error)) if tokio::time::Instant::now() >= *deadline => {
                Err(error.clone())
            }
            Some((deadline, _)) => Ok(Some(*deadline)),
            None => Ok(None),
        }
    }

    /// Waits for the next change after version `seen`, or until a lost connection's deadline
    /// passes.
    async fn wait(&self, seen: &mut u64) -> Result<(), TransportError> {
        match self.lost_state()? {
            Some(deadline) => {
                match tokio::time::timeout_at(deadline, self.changed_since(seen)).await {
                    Ok(()) => Ok(()),
                    Err(_) => self.lost_state().map(|_| ()),
                }
            }
            None => {
                self.changed_since(seen).await;
                Ok(())
            }
        }
    }
}

/// Decodes a goal's result into what [`GoalHandle::result`] returns.
pub(crate) type ResultFn<R> = Arc<dyn Fn(&[u8]) -> Result<R, serde_json::Error> + Send + Sync>;

/// A goal the client sent or re-attached to: its feedback, status, cancellation and result.
///
/// `F` is the feedback type, `R` the result and `E` the action's declared error type. Clones
/// share the feedback queue. The handle survives reconnects: the client re-attaches by itself.
pub struct GoalHandle<F, R, E> {
    track: Arc<GoalTrack>,
    /// The version of the goal's state this handle last looked at.
    seen: u64,
    canceller: Arc<dyn GoalCanceller>,
    decode_result: ResultFn<R>,
    _types: PhantomData<fn() -> (F, E)>,
}

impl<F, R, E> Drop for GoalHandle<F, R, E> {
    fn drop(&mut self) {
        // A feedback delivery held for a full queue stops waiting once no handle is left.
        self.track.feedback_taken.notify_one();
    }
}

impl<F, R, E> Clone for GoalHandle<F, R, E> {
    fn clone(&self) -> Self {
        GoalHandle {
            track: self.track.clone(),
            seen: self.seen,
            canceller: self.canceller.clone(),
            decode_result: self.decode_result.clone(),
            _types: PhantomData,
        }
    }
}

impl<F, R, E> fmt::Debug for GoalHandle<F, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoalHandle")
            .field("action", &self.track.action)
            .field("id", &self.track.id)
            .finish_non_exhaustive()
    }
}

/// How a handle asks the server to cancel; implemented by the client core.
pub(crate) trait GoalCanceller: Send + Sync {
    fn cancel(
        &self,
        action: Name,
        goal: GoalId,
    ) -> BoxFuture<'static, Result<GoalSnapshot, CallError>>;
}

impl<F, R, E> GoalHandle<F, R, E>
where
    F: DeserializeOwned,
    E: DeclaredError,
{
    pub(crate) fn new(
        track: Arc<GoalTrack>,
        canceller: Arc<dyn GoalCanceller>,
        decode_result: ResultFn<R>,
    ) -> Self {
        // Not a version the state has had: the first wait looks at the state at once.
        let seen = track.version.load(Ordering::Acquire).wrapping_sub(1);
        GoalHandle { track, seen, canceller, decode_result, _types: PhantomData }
    }

    /// The goal's id: keep it to re-attach from another connection.
    pub fn id(&self) -> &GoalId {
        &self.track.id
    }

    /// The last status the client heard of.
    pub fn status(&self) -> GoalStatus {
        lock(&self.track.state).status.unwrap_or(GoalStatus::Accepted)
    }

    /// How many feedback messages were dropped: while the result was awaited and nobody read
    /// feedback, or while a reader stayed full for longer than the slow-reader timeout (see
    /// [`FEEDBACK_BUFFER`]).
    pub fn missed_feedback(&self) -> u64 {
        lock(&self.track.state).missed
    }

    /// Waits for the next feedback, in the order the server sent it.
    ///
    /// Returns `None` once the goal has ended and every feedback sent before the end has been
    /// read, when the client is closed, or when the connection stays lost for longer than
    /// [`ClientOptions::goal_reconnect_timeout`](crate::client::ClientOptions). A feedback that
    /// does not decode is skipped and logged.
    pub async fn next_feedback(&mut self) -> Option<F> {
        loop {
            let next = {
                let mut state = lock(&self.track.state);
                state.reading = true;
                match state.feedback.pop_front() {
                    Some(payload) => {
                        self.track.feedback_taken.notify_one();
                        Some(payload)
                    }
                    None if state.outcome.is_some() || state.closed.is_some() => return None,
                    None => None,
                }
            };
            match next.map(|payload| codec::decode::<F>(&payload)) {
                Some(Ok(value)) => return Some(value),
                Some(Err(error)) => {
                    tracing::warn!(action = %self.track.action, %error, "goal feedback did not decode");
                }
                None => {
                    if self.track.wait(&mut self.seen).await.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    /// Asks the server to cancel the goal and returns the status it then had.
    ///
    /// The goal's end state still arrives through [`result`](Self::result): usually cancelled,
    /// but a handler may finish anyway, and a goal that had already ended keeps its outcome.
    pub async fn cancel(&self) -> Result<GoalStatus, CallError> {
        let snapshot =
            self.canceller.cancel(self.track.action.clone(), self.track.id.clone()).await?;
        // The client core already applied the snapshot as it arrived.
        Ok(snapshot.status)
    }

    /// Waits for the goal to end and returns its result.
    ///
    /// The wait survives a reconnect (the client re-attaches by itself), but not a connection
    /// that stays lost for longer than
    /// [`ClientOptions::goal_reconnect_timeout`](crate::client::ClientOptions): then it fails with
    /// the transport error. Re-attach with the goal's id later to learn how it ended.
    pub async fn result(&self) -> Result<R, GoalError<E>> {
        lock(&self.track.state).awaiting_result = true;
        let mut seen = self.seen;
        loop {
            {
                let state = lock(&self.track.state);
                if let Some(outcome) = &state.outcome {
                    return self.outcome_result(outcome);
                }
                if let Some(error) = &state.closed {
                    return Err(GoalError::Call(error.clone().into()));
                }
            }
            if let Err(error) = self.track.wait(&mut seen).await {
                return Err(GoalError::Call(error.into()));
            }
        }
    }

    fn outcome_result(&self, outcome: &GoalOutcome) -> Result<R, GoalError<E>> {
        match outcome {
            GoalOutcome::Succeeded(payload) => (self.decode_result)(payload).map_err(|e| {
                GoalError::Call(
                    DecodeError::new(format!("result of action `{}`", self.track.action), e).into(),
                )
            }),
            GoalOutcome::Cancelled => Err(GoalError::Cancelled),
            GoalOutcome::Failed(error) => Err(match E::from_remote(error) {
                Some(declared) => GoalError::Declared(declared),
                None => GoalError::Call(CallError::Remote(error.clone())),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_look_like_uuids_and_differ() {
        let a = GoalId::random();
        let b = GoalId::random();
        assert_ne!(a, b);
        let text = a.as_str();
        assert_eq!(text.len(), 36);
        let groups: Vec<&str> = text.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(groups[2].starts_with('4'), "version 4: {text}");
        assert!(matches!(groups[3].chars().next(), Some('8' | '9' | 'a' | 'b')), "variant: {text}");
    }

    #[test]
    fn statuses_round_trip() {
        for status in GoalStatus::ALL {
            assert_eq!(GoalStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(GoalStatus::parse("paused"), None);
        assert!(GoalStatus::Cancelled.is_terminal());
        assert!(!GoalStatus::Canceling.is_terminal());
    }

    #[test]
    fn track_keeps_exactly_one_end_state() {
        let track = Arc::new(GoalTrack::new("count".into(), GoalId::random()));
        let patience = Duration::from_secs(1);
        let events = [
            GoalEvent::Feedback(Bytes::from_static(b"{}")),
            GoalEvent::Finished(GoalOutcome::Cancelled),
            GoalEvent::Finished(GoalOutcome::Succeeded(Bytes::from_static(b"{}"))),
            GoalEvent::Status(GoalStatus::Executing),
        ];
        for event in events {
            assert!(track.apply(event, patience).is_none());
        }
        let state = lock(&track.state);
        assert_eq!(state.outcome, Some(GoalOutcome::Cancelled));
        assert_eq!(state.status, Some(GoalStatus::Cancelled));
        assert_eq!(state.feedback.len(), 1);
    }

    #[test]
    fn unread_feedback_keeps_the_newest_without_holding_the_connection() {
        let track = Arc::new(GoalTrack::new("count".into(), GoalId::random()));
        lock(&track.state).awaiting_result = true;
        for n in 0..FEEDBACK_BUFFER + 3 {
            let feedback = GoalEvent::Feedback(Bytes::from(n.to_string()));
            assert!(track.apply(feedback, Duration::from_secs(1)).is_none());
        }
        let state = lock(&track.state);
        assert_eq!(state.feedback.len(), FEEDBACK_BUFFER);
        assert_eq!(state.feedback.front().map(|b| &b[..]), Some(&b"3"[..]));
        assert_eq!(state.missed, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn read_feedback_holds_the_connection_then_lags() {
        let track = Arc::new(GoalTrack::new("count".into(), GoalId::random()));
        let patience = Duration::from_secs(1);
        // Feedback not yet asked for, but nobody said it never will be: it waits too.
        lock(&track.state).awaiting_result = false;
        for n in 0..FEEDBACK_BUFFER {
            assert!(
                track.apply(GoalEvent::Feedback(Bytes::from(n.to_string())), patience).is_none()
            );
        }
        // Full: the next one waits for the reader, then gives up and drops the oldest.
        let held = track.apply(GoalEvent::Feedback(Bytes::from_static(b"late")), patience);
        let started = tokio::time::Instant::now();
        held.expect("a full queue with a reader holds the delivery").await;
        assert_eq!(started.elapsed(), patience);
        // Lagging now: no more waiting until the reader has read half the queue.
        assert!(track.apply(GoalEvent::Feedback(Bytes::from_static(b"later")), patience).is_none());
        let state = lock(&track.state);
        assert_eq!(state.missed, 2);
        assert_eq!(state.feedback.back().map(|b| &b[..]), Some(&b"later"[..]));
    }

    #[tokio::test]
    async fn held_feedback_is_queued_once_the_reader_takes_some() {
        let track = Arc::new(GoalTrack::new("count".into(), GoalId::random()));
        let patience = Duration::from_secs(30);
        lock(&track.state).reading = true;
        for n in 0..FEEDBACK_BUFFER {
            assert!(
                track.apply(GoalEvent::Feedback(Bytes::from(n.to_string())), patience).is_none()
            );
        }
        let held = track.apply(GoalEvent::Feedback(Bytes::from_static(b"last")), patience);
        let held = tokio::spawn(held.expect("a full queue with a reader holds the delivery"));
        tokio::task::yield_now().await;
        assert!(!held.is_finished());
        lock(&track.state).feedback.pop_front();
        track.feedback_taken.notify_one();
        held.await.unwrap();
        let state = lock(&track.state);
        assert_eq!(state.missed, 0);
        assert_eq!(state.feedback.len(), FEEDBACK_BUFFER);
        assert_eq!(state.feedback.back().map(|b| &b[..]), Some(&b"last"[..]));
    }
}
