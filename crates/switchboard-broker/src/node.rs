//! The node naming of the brokered layer (`Naming::Node`, the API without codegen), in
//! commlib-py's shape: an RPC's requests wait in the queue named by the RPC itself, each one
//! answered in a reply queue of its own (on a reply subject where the broker has them, and in
//! the client's one reply queue, told apart by correlation id, on AMQP), and
//! messages go to topics named by themselves, as their bare JSON. There is no presence and no
//! compatibility check: a call goes out at once, and times out if nobody serves it (or fails at
//! once with `NotFound` where the broker says nobody receives it, NATS' "no responders").
//!
//! The core's correlation, deadlines, dispatch and reader queues work as for any interface;
//! this module only maps its messages onto these names. `docs/commlib.md` has the wire per broker.

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
    ErrorCode, GoalEvent, GoalStatus, PeerCredentials, PeerId, RemoteError, TransportError,
    TransportErrorKind,
    action::{GoalId, GoalOutcome, GoalSnapshot},
    message::{ClientMessage, Name, RequestId, ServerMessage},
    transport::{
        BoxFuture, ClientInbox, ClientTransport, Fanout, Peer, PeerLink, ServerInbox,
        ServerTransport, ServiceTarget,
    },
};
use switchboard_wire::node as wire;
use tokio::{sync::watch, task::JoinHandle, time::Instant};

use crate::{
    address::BrokerAddress,
    bus::{Bus, BusMessage, BusStatus, EnvelopeStyle, LinkState, ReplyRoute, Sink, SubscriptionId},
    client::{lock, random_id, reply_result, too_large},
    envelope::{self, Envelope, Meta, refusal},
    layout::{self, Inbox},
    log_limit::{LogLimit, limited_warn},
    node_action::{self, Request},
    options::BrokerOptions,
    outbox::{Outbox, Outgoing},
    server::answer,
};

/// How long one wait on a reply queue lasts before the client checks that the call still
/// waits for its answer.
const REPLY_POLL: Duration = Duration::from_secs(1);

/// Connects a node's client (RPC calls, subscriptions) to the broker at `address`.
pub(crate) async fn connect(
    address: &BrokerAddress,
    target: ServiceTarget,
    inbox: Arc<dyn ClientInbox>,
) -> Result<Arc<dyn ClientTransport>, TransportError> {
    for method in target.interface.methods.iter() {
        layout::check_node_name("RPC name", &method.name)?;
    }
    let id = random_id();
    let bus =
        address.connector().open(&format!("switchboard-node-{id}"), address.options()).await?;
    let profile = bus.profile().clone();
    let generation = match &*bus.link().borrow() {
        LinkState::Up { generation } => *generation,
        _ => 0,
    };
    let client = Arc::new_cyclic(|me| NodeClient {
        mailbox: Inbox::new(&id, profile.replies),
        reply_queue: (profile.replies == ReplyRoute::Queue && profile.drops_unconsumed)
            .then(layout::reply_queue),
        style: profile.envelope,
        route: profile.replies,
        broker: address.to_string(),
        options: address.options().clone(),
        bus: bus.clone(),
        inbox,
        subscriptions: Mutex::new(HashMap::new()),
        linked: AtomicBool::new(false),
        awaited: Mutex::new(HashMap::new()),
        goals: Mutex::new(Goals::default()),
        next_internal: AtomicU64::new(1 << 62),
        following: tokio::sync::Mutex::new(()),
        closed: AtomicBool::new(false),
        tasks: Mutex::new(Vec::new()),
        log: Arc::new(LogLimit::new()),
        me: me.clone(),
    });
    if generation == 0 {
        bus.close().await;
        return Err(client.not_connected());
    }
    if let Err(error) = client.subscribe_own().await {
        bus.close().await;
        return Err(error);
    }
    client.linked.store(true, Ordering::Release);
    let task = tokio::spawn(watch_client_link(client.me.clone(), bus.link(), generation));
    lock(&client.tasks).push(task);
    Ok(Arc::new(NodeClientHandle { client }))
}

/// A node's client, as the core holds it. Dropping it closes the connection.
struct NodeClientHandle {
    client: Arc<NodeClient>,
}

impl std::fmt::Debug for NodeClientHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient").field("broker", &self.client.broker).finish_non_exhaustive()
    }
}

impl ClientTransport for NodeClientHandle {
    fn send(&self, message: ClientMessage) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(self.client.send(message))
    }

    fn can_push_back(&self) -> bool {
        false
    }

    fn close(&self) {
        self.client.close();
    }
}

impl Drop for NodeClientHandle {
    fn drop(&mut self) {
        self.client.close();
    }
}

struct NodeClient {
    bus: Arc<dyn Bus>,
    style: EnvelopeStyle,
    route: ReplyRoute,
    /// Where answers arrive on a broker with reply subjects.
    mailbox: Inbox,
    /// Where every answer arrives on a broker that loses what is sent to a queue nobody
    /// consumes (AMQP): one queue of this client's, consumed from the time it connects, the
    /// answers told apart by the correlation id the service echoes. Elsewhere each call names
    /// a reply queue of its own, as commlib-py's clients do.
    reply_queue: Option<String>,
    broker: String,
    options: BrokerOptions,
    inbox: Arc<dyn ClientInbox>,
    /// The bus subscription of each topic filter.
    subscriptions: Mutex<HashMap<Name, SubscriptionId>>,
    /// The link is up and what the client subscribes itself is in force.
    linked: AtomicBool,
    /// What the answers to this client's goal requests are read as, by request id.
    awaited: Mutex<HashMap<RequestId, (Awaited, Instant)>>,
    /// The goals this client sent, and what came for goals it does not know yet.
    goals: Mutex<Goals>,
    /// Ids of the requests this client makes of its own (a goal's result once it ended).
    next_internal: AtomicU64,
    /// Held while an action's topics are being subscribed, so that no goal of it goes out
    /// before they are in force.
    following: tokio::sync::Mutex<()>,
    closed: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    log: Arc<LogLimit>,
    me: Weak<NodeClient>,
}

/// What the answer to a goal request of a node's client is read as.
#[derive(Debug, Clone)]
enum Awaited {
    /// `send_goal`: the server's id of goal `goal`.
    SendGoal(Name, GoalId),
    /// `cancel_goal`.
    Cancel(Name, GoalId),
    /// `get_result`, for the core (its status, and outcome once ended).
    Attach(Name, GoalId),
    /// `get_result`, asked by this client once the goal ended: its outcome.
    Outcome(Name, GoalId),
}

/// How long the client waits for the outcome of a goal it saw end.
const OUTCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after a goal's end status the client asks for its result: commlib-py 0.13.2's
/// service publishes the end before it stores the result, and answers `get_result` in between
/// with the result's defaults.
const RESULT_GRACE: Duration = Duration::from_millis(100);

/// How many events for goals not known yet are kept, and for how long: an action service may
/// publish a goal's first status and feedback before it answers `send_goal` with its id.
const EARLY_EVENTS: usize = 1024;
const EARLY_EVENTS_AGE: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Goals {
    /// The server's id of each goal sent, by the core's id.
    by_client: HashMap<GoalId, String>,
    /// The action and the core's id of each goal, by the server's id.
    by_server: HashMap<String, (Name, GoalId)>,
    /// Events of goals whose id the server has not answered yet, in arrival order.
    early: std::collections::VecDeque<(Instant, String, Early)>,
    /// The actions whose topics are subscribed.
    actions: std::collections::HashSet<Name>,
}

/// An event for a goal not known yet.
enum Early {
    Event(GoalEvent),
    /// It ended: its outcome is to be asked for.
    Ended,
}

impl NodeClient {
    fn not_connected(&self) -> TransportError {
        TransportError::not_connected(format!("no connection to the broker at {}", self.broker))
    }

    /// Subscribes the client's reply subjects where the broker has them, or consumes its reply
    /// queue where it has one.
    async fn subscribe_own(&self) -> Result<(), TransportError> {
        if let Some(queue) = &self.reply_queue {
            let me = self.me.clone();
            let sink: Sink = Arc::new(move |_: &str, message: BusMessage| {
                if let Some(client) = me.upgrade() {
                    let id = message.correlation_id.as_deref().and_then(|id| id.parse().ok());
                    client.on_answer(id, message);
                }
            });
            self.bus.consume(std::slice::from_ref(queue), sink).await?;
            return Ok(());
        }
        if self.route != ReplyRoute::Subjects {
            return Ok(());
        }
        let me = self.me.clone();
        let sink: Sink = Arc::new(move |address: &str, message| {
            if let Some(client) = me.upgrade() {
                let id = client.mailbox.request_of(address);
                client.on_answer(id, message);
            }
        });
        self.bus.subscribe(&self.mailbox.receive(), sink).await?;
        Ok(())
    }

    async fn send(&self, message: ClientMessage) -> Result<(), TransportError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TransportError::new(TransportErrorKind::Closed, "the client was closed"));
        }
        if !self.linked.load(Ordering::Acquire) {
            return Err(self.not_connected());
        }
        self.dispatch(message).await
    }

    async fn dispatch(&self, message: ClientMessage) -> Result<(), TransportError> {
        match message {
            ClientMessage::Call { id, method, payload } => self.call(id, &method, payload).await,
            ClientMessage::SendGoal { id, action, goal, payload } => {
                self.follow_action(&action).await?;
                let request = node_action::send_goal_request(&payload);
                let rpc = format!("{action}.{}", wire::SEND_GOAL);
                self.await_answer(id, Awaited::SendGoal(action, goal), None);
                self.call(id, &rpc, request).await
            }
            ClientMessage::CancelGoal { id, action, goal } => {
                self.goal_call(id, wire::CANCEL_GOAL, Awaited::Cancel(action, goal)).await
            }
            ClientMessage::AttachGoal { id, action, goal, .. } => {
                self.goal_call(id, wire::GET_RESULT, Awaited::Attach(action, goal)).await
            }
            ClientMessage::Subscribe { signal: filter } => self.subscribe(filter).await,
            ClientMessage::Unsubscribe { signal: filter } => {
                if let Some(id) = lock(&self.subscriptions).remove(&filter) {
                    self.bus.unsubscribe(id);
                }
                Ok(())
            }
            other => Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("a node's endpoint carries calls and subscriptions only, not {other:?}"),
            )),
        }
    }

    async fn call(
        &self,
        id: RequestId,
        method: &str,
        payload: Bytes,
    ) -> Result<(), TransportError> {
        layout::check_node_name("RPC name", method)?;
        if payload.len() > self.options.max_body {
            return Err(too_large(payload.len(), self.options.max_body));
        }
        let reply_to = match (self.route, &self.reply_queue) {
            (ReplyRoute::Subjects, _) => self.mailbox.reply_to(Some(id)),
            (_, Some(queue)) => queue.clone(),
            _ => layout::reply_queue(),
        };
        let meta = Meta { id: Some(id.to_string()), ..Meta::default() };
        let envelope = Envelope { meta, reply_to: Some(reply_to.clone()), payload };
        let message = envelope::encode(self.style, envelope)
            .map_err(|e| TransportError::new(TransportErrorKind::Protocol, e.to_string()))?;
        if self.route == ReplyRoute::Subjects || self.reply_queue.is_some() {
            return self.bus.send(method, message).await;
        }
        self.bus.send(method, message).await?;
        let task = tokio::spawn(wait_for_reply(self.me.clone(), id, reply_to));
        let mut tasks = lock(&self.tasks);
        tasks.retain(|task| !task.is_finished());
        tasks.push(task);
        Ok(())
    }

    /// Notes how the answer to request `id` is read, and until when an internal one waits.
    fn await_answer(&self, id: RequestId, awaited: Awaited, timeout: Option<Duration>) {
        let until = Instant::now() + timeout.unwrap_or(Duration::from_secs(86_400));
        lock(&self.awaited).insert(id, (awaited, until));
    }

    /// Whether someone still waits for the answer to request `id`.
    fn awaits(&self, id: RequestId) -> bool {
        let mut awaited = lock(&self.awaited);
        match awaited.get(&id) {
            Some((Awaited::Outcome(..), until)) if *until <= Instant::now() => {
                awaited.remove(&id);
                false
            }
            Some((Awaited::Outcome(..), _)) => true,
            _ => {
                drop(awaited);
                self.inbox.awaits(id)
            }
        }
    }

    /// Calls `<action>.<rpc>` about a goal this client sent.
    async fn goal_call(
        &self,
        id: RequestId,
        rpc: &str,
        awaited: Awaited,
    ) -> Result<(), TransportError> {
        let (Awaited::Cancel(action, goal) | Awaited::Attach(action, goal)) = &awaited else {
            return Ok(());
        };
        let known = lock(&self.goals).by_client.get(goal).cloned();
        let Some(server_goal) = known else {
            let error = RemoteError::new(
                ErrorCode::MethodNotFound,
                switchboard_core::error::names::UNKNOWN_GOAL,
                format!("this client sent no goal `{goal}` of action `{action}`"),
            );
            let (action, goal) = (action.clone(), goal.clone());
            self.deliver(ServerMessage::GoalReply { id, action, goal, result: Err(error) });
            return Ok(());
        };
        let rpc = format!("{action}.{rpc}");
        self.await_answer(id, awaited.clone(), None);
        self.call(id, &rpc, node_action::goal_request(&server_goal)).await
    }

    /// Subscribes the status and feedback topics of `action`, once.
    async fn follow_action(&self, action: &Name) -> Result<(), TransportError> {
        let _following = self.following.lock().await;
        if !lock(&self.goals).actions.insert(action.clone()) {
            return Ok(());
        }
        for feedback in [false, true] {
            let topic = format!(
                "{action}.{}",
                if feedback { wire::ACTION_FEEDBACK } else { wire::ACTION_STATUS }
            );
            let me = self.me.clone();
            let sink_action = action.clone();
            let sink: Sink = Arc::new(move |_: &str, message: BusMessage| {
                if let Some(client) = me.upgrade() {
                    client.on_goal_message(&sink_action, feedback, &message.body);
                }
            });
            let subscribed = self.bus.subscribe(&topic, sink).await;
            match subscribed {
                Ok(id) => {
                    lock(&self.subscriptions).insert(Name::Owned(topic), id);
                }
                Err(error) => {
                    lock(&self.goals).actions.remove(action);
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// A message on an action's status or feedback topic.
    fn on_goal_message(&self, action: &Name, feedback: bool, payload: &[u8]) {
        let (server_goal, early) = if feedback {
            let Some((goal, payload)) = node_action::read_feedback(payload) else { return };
            (goal, Early::Event(GoalEvent::Feedback(payload)))
        } else {
            let Some((goal, code)) = node_action::read_status(payload) else { return };
            match node_action::status_of(code) {
                Some(status) if status.is_terminal() => (goal, Early::Ended),
                Some(status) => (goal, Early::Event(GoalEvent::Status(status))),
                None => return,
            }
        };
        let known = {
            let mut goals = lock(&self.goals);
            let known = goals.by_server.get(&server_goal).map(|(_, goal)| goal.clone());
            if known.is_none() {
                let now = Instant::now();
                while goals.early.front().is_some_and(|(at, ..)| *at + EARLY_EVENTS_AGE < now)
                    || goals.early.len() >= EARLY_EVENTS
                {
                    goals.early.pop_front();
                }
                goals.early.push_back((now, server_goal.clone(), early));
                return;
            }
            known
        };
        if let Some(goal) = known {
            self.goal_event(action, &goal, &server_goal, early);
        }
    }

    /// Hands an event of a known goal to the core; an end has its outcome asked for.
    fn goal_event(&self, action: &Name, goal: &GoalId, server_goal: &str, early: Early) {
        match early {
            Early::Event(event) => {
                let (action, goal) = (action.clone(), goal.clone());
                self.deliver(ServerMessage::GoalEvent { action, goal, event });
            }
            Early::Ended => {
                let id = self.next_internal.fetch_add(1, Ordering::Relaxed);
                let awaited = Awaited::Outcome(action.clone(), goal.clone());
                self.await_answer(id, awaited, Some(OUTCOME_TIMEOUT));
                let Some(me) = self.me.upgrade() else { return };
                let (rpc, request) = (
                    format!("{action}.{}", wire::GET_RESULT),
                    node_action::goal_request(server_goal),
                );
                tokio::spawn(async move {
                    tokio::time::sleep(RESULT_GRACE).await;
                    if let Err(error) = me.call(id, &rpc, request).await {
                        lock(&me.awaited).remove(&id);
                        tracing::warn!(%error, "could not ask for an ended goal's result");
                    }
                });
            }
        }
    }

    /// Reads the answer to one of this client's goal requests.
    fn on_goal_answer(&self, id: RequestId, awaited: Awaited, result: Result<Bytes, RemoteError>) {
        let reply = |action: Name, goal: GoalId, result| ServerMessage::GoalReply {
            id,
            action,
            goal,
            result,
        };
        let answer = result.map(|payload| node_action::read_answer(&payload));
        let protocol = |error: String| TransportError::new(TransportErrorKind::Protocol, error);
        match (awaited, answer) {
            (Awaited::Outcome(action, goal), Ok(Ok(answer))) => {
                let outcome = node_action::outcome(&answer).unwrap_or_else(|| {
                    GoalOutcome::Failed(RemoteError::internal(format!(
                        "the goal ended, but its result says status {}",
                        answer.status
                    )))
                });
                self.forget_goal(&goal);
                let event = GoalEvent::Finished(outcome);
                self.deliver(ServerMessage::GoalEvent { action, goal, event });
            }
            (Awaited::Outcome(action, goal), Ok(Err(error))) => {
                self.forget_goal(&goal);
                let event = GoalEvent::Finished(GoalOutcome::Failed(RemoteError::internal(error)));
                self.deliver(ServerMessage::GoalEvent { action, goal, event });
            }
            (Awaited::Outcome(action, goal), Err(error)) => {
                self.forget_goal(&goal);
                let event = GoalEvent::Finished(GoalOutcome::Failed(error));
                self.deliver(ServerMessage::GoalEvent { action, goal, event });
            }
            (
                Awaited::SendGoal(action, goal)
                | Awaited::Cancel(action, goal)
                | Awaited::Attach(action, goal),
                Err(error),
            ) => self.deliver(reply(action, goal, Err(error))),
            (_, Ok(Err(error))) => self.inbox.request_failed(id, protocol(error)),
            (Awaited::SendGoal(action, goal), Ok(Ok(answer))) => {
                if answer.status != 1 || answer.goal_id.is_empty() {
                    let message = if answer.error.is_empty() {
                        "the goal was rejected"
                    } else {
                        &answer.error
                    };
                    let error = RemoteError::new(ErrorCode::ClientError, "GoalRejected", message);
                    self.deliver(reply(action, goal, Err(error)));
                    return;
                }
                let early = {
                    let mut goals = lock(&self.goals);
                    goals.by_client.insert(goal.clone(), answer.goal_id.clone());
                    goals.by_server.insert(answer.goal_id.clone(), (action.clone(), goal.clone()));
                    let (mine, others) = std::mem::take(&mut goals.early)
                        .into_iter()
                        .partition::<Vec<_>, _>(|(_, server, _)| *server == answer.goal_id);
                    goals.early = others.into();
                    mine
                };
                let accepted = Ok(GoalSnapshot::running(GoalStatus::Accepted));
                self.deliver(reply(action.clone(), goal.clone(), accepted));
                for (_, server_goal, early) in early {
                    self.goal_event(&action, &goal, &server_goal, early);
                }
            }
            (Awaited::Cancel(action, goal), Ok(Ok(answer))) => {
                let result = if answer.status == 1 {
                    Ok(GoalSnapshot::running(GoalStatus::Canceling))
                } else {
                    let message = if answer.error.is_empty() {
                        "the goal is not cancellable"
                    } else {
                        &answer.error
                    };
                    Err(RemoteError::new(ErrorCode::ClientError, "NotCancelled", message))
                };
                self.deliver(reply(action, goal, result));
            }
            (Awaited::Attach(action, goal), Ok(Ok(answer))) => {
                match node_action::snapshot(&answer) {
                    Ok(snapshot) => self.deliver(reply(action, goal, Ok(snapshot))),
                    Err(error) => self.inbox.request_failed(id, protocol(error)),
                }
            }
        }
    }

    fn forget_goal(&self, goal: &GoalId) {
        let mut goals = lock(&self.goals);
        if let Some(server_goal) = goals.by_client.remove(goal) {
            goals.by_server.remove(&server_goal);
        }
    }

    fn deliver(&self, message: ServerMessage) {
        if let Some(held) = self.inbox.deliver(message) {
            tokio::spawn(held);
        }
    }

    async fn subscribe(&self, filter: Name) -> Result<(), TransportError> {
        layout::check_node_filter(&filter)?;
        if lock(&self.subscriptions).contains_key(&filter) {
            return Ok(());
        }
        let (inbox, log, max_body) = (self.inbox.clone(), self.log.clone(), self.options.max_body);
        let sink_filter = filter.clone();
        let sink: Sink = Arc::new(move |topic: &str, message: BusMessage| {
            if message.body.len() > max_body {
                limited_warn!(log, %topic, size = message.body.len(), "a message larger than max_body was dropped");
                return;
            }
            let published = ServerMessage::Published {
                filter: sink_filter.clone(),
                topic: Name::Owned(topic.to_owned()),
                payload: message.body,
            };
            if let Some(held) = inbox.deliver(published) {
                tokio::spawn(held);
            }
        });
        let id = self.bus.subscribe(&filter, sink).await?;
        let replaced = lock(&self.subscriptions).insert(filter, id);
        if let Some(replaced) = replaced {
            self.bus.unsubscribe(replaced);
        }
        Ok(())
    }

    /// An answer arrived for request `id` (when its address says which).
    fn on_answer(&self, id: Option<RequestId>, message: BusMessage) {
        if message.status == Some(BusStatus::NoResponders) {
            if let Some(id) = id {
                self.inbox.request_failed(
                    id,
                    TransportError::new(
                        TransportErrorKind::NotFound,
                        format!(
                            "nobody serves this RPC: the broker at {} has no responders for it",
                            self.broker
                        ),
                    ),
                );
            }
            return;
        }
        let Some(id) = id else {
            limited_warn!(self.log, "an answer for no request of this client was dropped");
            return;
        };
        if message.body.len() > self.options.max_body {
            self.inbox.request_failed(id, too_large(message.body.len(), self.options.max_body));
            return;
        }
        match envelope::decode(self.style, message) {
            Ok(Envelope { meta, payload, .. }) => {
                let result = reply_result(&meta, payload);
                let awaited = lock(&self.awaited).remove(&id);
                match awaited {
                    Some((awaited, _)) => self.on_goal_answer(id, awaited, result),
                    None => {
                        let _ = self.inbox.deliver(ServerMessage::Reply { id, result });
                    }
                }
            }
            Err(error) => self.inbox.request_failed(
                id,
                TransportError::new(
                    TransportErrorKind::Protocol,
                    format!("the answer is unreadable: {error}"),
                ),
            ),
        }
    }

    fn link_down(&self, error: TransportError) {
        self.linked.store(false, Ordering::Release);
        lock(&self.subscriptions).clear();
        lock(&self.awaited).retain(|_, (awaited, _)| !matches!(awaited, Awaited::Outcome(..)));
        tracing::warn!(broker = %self.broker, %error, "a node's client lost its broker; reconnecting");
        self.inbox.disconnected(error);
    }

    async fn link_up(&self) {
        if let Err(error) = self.subscribe_own().await {
            tracing::warn!(%error, "could not subscribe again after reconnecting");
            return;
        }
        let actions: Vec<Name> = lock(&self.goals).actions.drain().collect();
        for action in actions {
            if let Err(error) = self.follow_action(&action).await {
                tracing::warn!(%error, %action, "could not follow an action again");
            }
        }
        for message in self.inbox.reconnected() {
            if let Err(error) = self.dispatch(message).await {
                tracing::warn!(%error, "could not restore a subscription");
            }
        }
        self.linked.store(true, Ordering::Release);
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
        runtime.spawn(async move { bus.close().await });
    }
}

/// Waits on a request's own reply queue until its answer comes, or the core stops waiting.
async fn wait_for_reply(client: Weak<NodeClient>, id: RequestId, queue: String) {
    loop {
        let bus = match client.upgrade() {
            Some(client) if client.awaits(id) => client.bus.clone(),
            _ => return,
        };
        let received = bus.receive(&queue, REPLY_POLL).await;
        let Some(client) = client.upgrade() else { return };
        match received {
            Ok(Some(message)) => return client.on_answer(Some(id), message),
            Ok(None) => {}
            Err(error) => return client.inbox.request_failed(id, error),
        }
    }
}

/// Follows a client's link: a lost one fails what waits, a new one is subscribed anew.
async fn watch_client_link(
    client: Weak<NodeClient>,
    mut link: watch::Receiver<LinkState>,
    mut current: u64,
) {
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
                    client.link_down(TransportError::disconnected(format!(
                        "the connection to the broker at {} was lost",
                        client.broker
                    )));
                }
                current = generation;
                client.link_up().await;
            }
            LinkState::Closed => return,
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The serving side: RPC services and publishers.

/// Serves a node's RPCs (the target's methods, each consumed from the queue of its name) and
/// publishes its messages (the target's signals, each a topic) on the broker at `address`.
pub(crate) async fn bind(
    address: &BrokerAddress,
    target: ServiceTarget,
    inbox: Arc<dyn ServerInbox>,
) -> Result<Arc<dyn ServerTransport>, TransportError> {
    let methods: Vec<Name> = target.interface.methods.iter().map(|m| m.name.clone()).collect();
    for method in &methods {
        layout::check_node_name("RPC name", method)?;
    }
    for topic in target.interface.signals.iter() {
        layout::check_node_name("topic", topic)?;
    }
    let name = format!("switchboard-node-{}", random_id());
    let bus = address.connector().open(&name, address.options()).await?;
    let profile = bus.profile().clone();
    let generation = match &*bus.link().borrow() {
        LinkState::Up { generation } => *generation,
        _ => 0,
    };
    let server = Arc::new_cyclic(|me| NodeServer {
        outbox: Outbox::start(bus.clone(), String::new()),
        style: profile.envelope,
        broker: address.to_string(),
        options: address.options().clone(),
        bus: bus.clone(),
        methods,
        inbox,
        linked: AtomicBool::new(false),
        next_request: AtomicU64::new(1),
        next_peer: AtomicU64::new(1),
        closed: AtomicBool::new(false),
        tasks: Mutex::new(Vec::new()),
        log: LogLimit::new(),
        me: me.clone(),
    });
    server.register(generation).await?;
    let task = tokio::spawn(watch_server_link(server.me.clone(), bus.link(), generation));
    lock(&server.tasks).push(task);
    Ok(Arc::new(NodeServerHandle { server }))
}

/// A node's serving endpoint, as the core holds it.
struct NodeServerHandle {
    server: Arc<NodeServer>,
}

impl std::fmt::Debug for NodeServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeServer")
            .field("methods", &self.server.methods)
            .field("broker", &self.server.broker)
            .finish_non_exhaustive()
    }
}

impl ServerTransport for NodeServerHandle {
    fn fanout(&self) -> Fanout {
        Fanout::Broker
    }

    fn publish(&self, message: ServerMessage) -> BoxFuture<'_, Result<(), TransportError>> {
        self.server.publish(message)
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.server.close()
    }
}

impl Drop for NodeServerHandle {
    fn drop(&mut self) {
        let closing = self.server.close();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(closing);
        }
    }
}

struct NodeServer {
    bus: Arc<dyn Bus>,
    style: EnvelopeStyle,
    broker: String,
    options: BrokerOptions,
    /// The RPCs served: each one's queue is its name.
    methods: Vec<Name>,
    inbox: Arc<dyn ServerInbox>,
    outbox: Outbox,
    linked: AtomicBool,
    next_request: AtomicU64,
    next_peer: AtomicU64,
    closed: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    log: LogLimit,
    me: Weak<NodeServer>,
}

impl NodeServer {
    /// Consumes the RPCs' queues, as one consumer of all of them.
    async fn register(&self, generation: u64) -> Result<(), TransportError> {
        if generation == 0 {
            return Err(TransportError::not_connected(format!(
                "no connection to the broker at {}",
                self.broker
            )));
        }
        if !self.methods.is_empty() {
            let queues: Vec<String> = self.methods.iter().map(|m| m.to_string()).collect();
            let me = self.me.clone();
            let sink: Sink = Arc::new(move |queue: &str, message| {
                if let Some(server) = me.upgrade() {
                    server.on_request(queue, message);
                }
            });
            self.bus.consume(&queues, sink).await?;
        }
        self.linked.store(true, Ordering::Release);
        Ok(())
    }

    fn publish(&self, message: ServerMessage) -> BoxFuture<'_, Result<(), TransportError>> {
        let refused = |error| -> BoxFuture<'_, _> { Box::pin(std::future::ready(Err(error))) };
        let ServerMessage::Signal { signal: topic, payload } = message else {
            return refused(TransportError::new(
                TransportErrorKind::Protocol,
                format!("a node's endpoint publishes messages only, not {message:?}"),
            ));
        };
        if !self.linked.load(Ordering::Acquire) {
            return refused(TransportError::not_connected(format!(
                "no connection to the broker at {}",
                self.broker
            )));
        }
        if payload.len() > self.options.max_body {
            return refused(too_large(payload.len(), self.options.max_body));
        }
        Box::pin(async move { self.bus.publish(&topic, BusMessage::new(payload)).await })
    }

    fn on_request(&self, queue: &str, message: BusMessage) {
        let Some(method) = self.methods.iter().find(|m| *m == queue).cloned() else { return };
        let carried_reply = message.reply_to.clone();
        let envelope = if message.body.len() > self.options.max_body {
            Err(RemoteError::new(
                ErrorCode::PayloadError,
                refusal::PAYLOAD_TOO_LARGE,
                format!(
                    "a request of {} bytes is larger than this server's max_body ({} bytes)",
                    message.body.len(),
                    self.options.max_body
                ),
            ))
        } else {
            envelope::decode(self.style, message).map_err(|error| {
                RemoteError::new(
                    ErrorCode::PayloadError,
                    refusal::MALFORMED_REQUEST,
                    format!("the request's envelope is unreadable: {error}"),
                )
            })
        };
        let (reply_to, correlation, payload) = match envelope {
            Ok(envelope) => (envelope.reply_to, envelope.meta.id, Ok(envelope.payload)),
            Err(error) => (carried_reply, None, Err(error)),
        };
        let Some(reply_to) = reply_to else {
            limited_warn!(self.log, rpc = %method, "a request with no reply address was dropped");
            return;
        };
        let request = node_action::request_of(&method, &self.methods);
        // Goals outlive their requests, so every goal request comes from one peer that never
        // goes away (the core would cancel the goals of a departed one).
        let peer = match request {
            Request::Rpc => PeerId(self.next_peer.fetch_add(1, Ordering::Relaxed)),
            _ => GOAL_PEER,
        };
        let link = Arc::new(Caller {
            server: self.me.clone(),
            peer,
            reply_to,
            correlation,
            request: request.clone(),
        });
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let message = payload.and_then(|payload| match &request {
            Request::Rpc => Ok(ClientMessage::Call { id, method, payload }),
            goal => node_action::read(goal, id, &payload, random_id).map_err(|error| {
                RemoteError::new(ErrorCode::PayloadError, refusal::MALFORMED_REQUEST, error)
            }),
        });
        match message {
            Ok(message) => {
                self.inbox.deliver(&Peer::new(link), message);
                if request == Request::Rpc {
                    // One peer per call: nothing waits for it once its request is delivered.
                    self.inbox.peer_gone(peer);
                }
            }
            Err(error) => {
                let refusal = match request {
                    Request::Rpc => ServerMessage::Reply { id, result: Err(error) },
                    _ => ServerMessage::GoalReply {
                        id,
                        action: Name::Borrowed(""),
                        goal: GoalId::from(""),
                        result: Err(error),
                    },
                };
                if let Err(send) = link.send(refusal) {
                    limited_warn!(self.log, error = %send, "could not refuse a request");
                }
            }
        }
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Box::pin(std::future::ready(()));
        }
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        self.linked.store(false, Ordering::Release);
        self.outbox.close(None)
    }
}

/// The peer of every goal request a node's action service receives.
const GOAL_PEER: PeerId = PeerId(0);

/// The sender of one request: where its answer goes, and for a goal, where its events go.
struct Caller {
    server: Weak<NodeServer>,
    peer: PeerId,
    reply_to: String,
    /// The request's correlation id, echoed in its answer (commlib-py sends none).
    correlation: Option<String>,
    /// What the request asked for, which shapes its answer.
    request: Request,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("peer", &self.peer)
            .field("reply_to", &self.reply_to)
            .finish_non_exhaustive()
    }
}

impl PeerLink for Caller {
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
        let (meta, payload) = match message {
            ServerMessage::Reply { result, .. } => {
                answer(self.correlation.clone(), result, server.options.max_body)
            }
            ServerMessage::GoalReply { goal, result, .. } => {
                let meta = Meta { id: self.correlation.clone(), ..Meta::default() };
                (meta, node_action::answer(&self.request, &goal, &result))
            }
            ServerMessage::GoalEvent { action, goal, event } => {
                let (topic, body) = match event {
                    GoalEvent::Feedback(payload) => {
                        (wire::ACTION_FEEDBACK, node_action::feedback(&goal, &payload))
                    }
                    GoalEvent::Status(status) => {
                        (wire::ACTION_STATUS, node_action::status(&goal, status))
                    }
                    GoalEvent::Finished(outcome) => {
                        (wire::ACTION_STATUS, node_action::status(&goal, outcome.status()))
                    }
                    other => {
                        return Err(TransportError::new(
                            TransportErrorKind::Protocol,
                            format!("a node's action cannot send {other:?}"),
                        ));
                    }
                };
                let topic = format!("{action}.{topic}");
                return server.outbox.push(Outgoing::Publish(topic, BusMessage::new(body)));
            }
            other => {
                return Err(TransportError::new(
                    TransportErrorKind::Protocol,
                    format!("a node's endpoint cannot answer with {other:?}"),
                ));
            }
        };
        let envelope = Envelope { meta, reply_to: None, payload };
        let message = envelope::encode(server.style, envelope)
            .map_err(|e| TransportError::new(TransportErrorKind::Protocol, e.to_string()))?;
        server.outbox.push(Outgoing::Send(self.reply_to.clone(), message))
    }
}

/// Follows a server's link: once it is back, its queues are consumed anew.
async fn watch_server_link(
    server: Weak<NodeServer>,
    mut link: watch::Receiver<LinkState>,
    mut current: u64,
) {
    while link.changed().await.is_ok() {
        let state = link.borrow_and_update().clone();
        let Some(server) = server.upgrade() else { return };
        match state {
            LinkState::Down { error, .. } => {
                current = 0;
                server.linked.store(false, Ordering::Release);
                tracing::warn!(broker = %server.broker, %error, "a node's service lost its broker; reconnecting");
            }
            LinkState::Up { generation } if generation != current => {
                current = generation;
                server.linked.store(false, Ordering::Release);
                if let Err(error) = server.register(generation).await {
                    tracing::warn!(%error, "could not consume again after reconnecting");
                }
            }
            LinkState::Closed => return,
            _ => {}
        }
    }
}
