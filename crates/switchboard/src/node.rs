//! Nodes: RPCs, publishers and subscribers named at run time, with no interface file, over a
//! Unix socket, MQTT, NATS, Redis and AMQP. On MQTT, Redis and AMQP they speak commlib-py's
//! wire, so a commlib-py node and a switchboard one talk to each other
//! (`docs/commlib.md` in the repository is the guide).
//!
//! Each endpoint runs on the same core as generated code: an [`RpcService`] is a server whose
//! one method is the RPC, a [`Publisher`] a server whose one signal is the topic, and an
//! [`RpcClient`] or a [`Subscriber`] a client of them. Correlation, deadlines, many calls in
//! flight, error answers, panic containment and bounded reader queues are the core's.
//!
//! Every endpoint is typed with serde; with `serde_json::Value` as its type it is the raw
//! JSON form (`RpcClient<Value, Value>`, `Publisher<Value>`, …). Requests and replies are JSON
//! objects, as commlib-py's messages are.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use serde::{Deserialize, Serialize};
//! use switchboard::{Endpoint, node::Node, prelude::RemoteError};
//!
//! #[derive(Serialize, Deserialize)]
//! struct AddTwoInts { a: i64, b: i64 }
//! #[derive(Serialize, Deserialize)]
//! struct Sum { c: i64 }
//!
//! let node = Node::new("adder", Endpoint::parse("redis://127.0.0.1:6379")?);
//! let _service = node
//!     .rpc_service("demo.add_two_ints", |request: AddTwoInts| async move {
//!         Ok::<_, RemoteError>(Sum { c: request.a + request.b })
//!     })
//!     .await?;
//! let client = node.rpc_client::<AddTwoInts, Sum>("demo.add_two_ints").await?;
//! assert_eq!(client.call(&AddTwoInts { a: 1, b: 2 }).await?.c, 3);
//! # Ok(()) }
//! ```

use std::{
    borrow::Cow, collections::HashMap, convert::Infallible, fmt, future::Future,
    marker::PhantomData, sync::Arc, time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use switchboard_core::{
    CallContext, CallError, DecodeError, ErrorCode, GoalContext, GoalHandle, HandlerError,
    InterfaceDescriptor, MethodDescriptor, MethodError, RemoteError, TransportError,
    TransportErrorKind,
    action::{GoalRun, RawGoal, goal_run},
    client::{ClientCore, ClientOptions, SubscriptionError, TopicStream},
    codec,
    error::names,
    server::{ServerCore, ServerOptions, Service, decode_args, encode_reply, unknown_property},
    transport::{BoxFuture, NODE_ACTION_RPCS, ServiceTarget},
};

use crate::Endpoint;

/// How long a node's call waits for its reply unless told otherwise: commlib-py's default.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a running node says it is alive unless told otherwise: commlib-py's default.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);

/// What a node's control RPC `<name>.start` answers when the node runs already, in
/// commlib-py's words.
pub const CANNOT_TRANSITION: &str = "Cannot make the transition from current state!";

/// A node: a name and the transport its endpoints use, the factory of those endpoints, and,
/// once it [runs](Self::run), its heartbeats and control RPCs.
///
/// Each endpoint has a connection of its own, as in commlib-py, and lives until it is dropped.
/// Clones share the node's state.
#[derive(Debug, Clone)]
pub struct Node {
    name: String,
    endpoint: Endpoint,
    shared: Arc<NodeShared>,
}

/// A node's lifecycle, as commlib-py's `NodeState` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeState {
    /// Made, not run yet.
    Idle = 1,
    /// Running: heartbeats go out.
    Running = 2,
    /// Stopped (by [`Node::stop`] or its `stop` RPC): no heartbeats until started again.
    Stopped = 4,
}

/// A node's heartbeat, commlib-py's `HeartbeatMessage`: when it was sent, in nanoseconds since
/// the Unix epoch. Subscribe to `<node name>.heartbeat` to hear a node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Heartbeat {
    /// When it was sent, in nanoseconds since the Unix epoch.
    pub ts: u64,
}

/// The answer of a node's control RPCs (`<name>.start`, `<name>.stop`): commlib-py's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ControlReply {
    /// 0 when the node made the transition, 1 when it could not.
    pub status: u8,
    /// Why it could not; empty otherwise.
    pub error: String,
}

#[derive(Debug)]
struct NodeShared {
    heartbeat_interval: Duration,
    control: bool,
    lifecycle: tokio::sync::Mutex<Lifecycle>,
}

#[derive(Debug)]
struct Lifecycle {
    state: NodeState,
    /// The task that publishes heartbeats while the node runs.
    heartbeats: Option<tokio::task::JoinHandle<()>>,
    /// The publisher of the heartbeats, from the first run on.
    heartbeat: Option<Arc<Publisher<Heartbeat>>>,
    /// The control RPCs, served from the first run on.
    control: Vec<RpcService>,
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        if let Some(task) = self.heartbeats.take() {
            task.abort();
        }
    }
}

impl Node {
    /// A node called `name` (commlib-py replaces `-` with `_` in node names; so does this) on
    /// `endpoint`. On a Unix socket the endpoint's path is the directory of the node's sockets.
    pub fn new(name: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::with_options(name, endpoint, DEFAULT_HEARTBEAT_INTERVAL, false)
    }

    /// Like [`new`](Self::new), with the interval of its heartbeats and, with `control`, the
    /// control RPCs `<name>.start` and `<name>.stop` (commlib-py's `ctrl_services`) served
    /// while it runs.
    pub fn with_options(
        name: impl Into<String>,
        endpoint: Endpoint,
        heartbeat_interval: Duration,
        control: bool,
    ) -> Self {
        let lifecycle = Lifecycle {
            state: NodeState::Idle,
            heartbeats: None,
            heartbeat: None,
            control: Vec::new(),
        };
        let shared = Arc::new(NodeShared {
            heartbeat_interval,
            control,
            lifecycle: tokio::sync::Mutex::new(lifecycle),
        });
        Node { name: name.into().replace('-', "_"), endpoint, shared }
    }

    /// Runs the node: its heartbeats go out every interval on `<name>.heartbeat`, and its
    /// control RPCs are served if it has them. Running a node that runs already does nothing.
    pub async fn run(&self) -> Result<(), TransportError> {
        let mut lifecycle = self.shared.lifecycle.lock().await;
        if self.shared.control && lifecycle.control.is_empty() {
            lifecycle.control = self.serve_control().await?;
        }
        self.start_heartbeats(&mut lifecycle).await
    }

    /// Stops the node's heartbeats; its endpoints and control RPCs go on, so its `start` RPC
    /// can run it again. (commlib-py's `stop` RPC stops nothing; this one does.)
    pub async fn stop(&self) {
        let mut lifecycle = self.shared.lifecycle.lock().await;
        Self::stop_heartbeats(&mut lifecycle);
    }

    /// Where the node is in its lifecycle.
    pub async fn state(&self) -> NodeState {
        self.shared.lifecycle.lock().await.state
    }

    /// The topic of this node's heartbeats: `<name>.heartbeat`.
    pub fn heartbeat_topic(&self) -> String {
        format!("{}.{}", self.name, switchboard_wire::node::HEARTBEAT)
    }

    async fn start_heartbeats(&self, lifecycle: &mut Lifecycle) -> Result<(), TransportError> {
        if lifecycle.state == NodeState::Running {
            return Ok(());
        }
        let publisher = match &lifecycle.heartbeat {
            Some(publisher) => publisher.clone(),
            None => {
                let publisher = Arc::new(self.publisher(&self.heartbeat_topic()).await?);
                lifecycle.heartbeat.insert(publisher).clone()
            }
        };
        let interval = self.shared.heartbeat_interval;
        lifecycle.heartbeats = Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX));
                if let Err(error) = publisher.publish(&Heartbeat { ts }).await {
                    tracing::debug!(%error, "a heartbeat was not published");
                }
            }
        }));
        lifecycle.state = NodeState::Running;
        Ok(())
    }

    fn stop_heartbeats(lifecycle: &mut Lifecycle) {
        if let Some(task) = lifecycle.heartbeats.take() {
            task.abort();
        }
        if lifecycle.state == NodeState::Running {
            lifecycle.state = NodeState::Stopped;
        }
    }

    /// Serves `<name>.start` and `<name>.stop`, which answer as commlib-py's do. Their handlers
    /// hold the node weakly: the services belong to it.
    async fn serve_control(&self) -> Result<Vec<RpcService>, TransportError> {
        let [start, stop] =
            switchboard_wire::node::CONTROL_RPCS.map(|rpc| format!("{}.{rpc}", self.name));
        let node = self.weak();
        let start = self.rpc_service(&start, move |_: Value| {
            let node = node.clone();
            async move {
                let node = node.upgrade()?;
                let mut lifecycle = node.shared.lifecycle.lock().await;
                if lifecycle.state == NodeState::Running {
                    return Ok(ControlReply { status: 1, error: CANNOT_TRANSITION.to_owned() });
                }
                node.start_heartbeats(&mut lifecycle)
                    .await
                    .map_err(|error| RemoteError::internal(error.to_string()))?;
                Ok(ControlReply { status: 0, error: String::new() })
            }
        });
        let start = start.await?;
        let node = self.weak();
        let stop = self.rpc_service(&stop, move |_: Value| {
            let node = node.clone();
            async move {
                let node = node.upgrade()?;
                Self::stop_heartbeats(&mut *node.shared.lifecycle.lock().await);
                Ok(ControlReply { status: 0, error: String::new() })
            }
        });
        Ok(vec![start, stop.await?])
    }

    fn weak(&self) -> WeakNode {
        WeakNode {
            name: self.name.clone(),
            endpoint: self.endpoint.clone(),
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the node's endpoints connect.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Serves the RPC `name` (`demo.add_two_ints`): each request is decoded as `Req` and
    /// answered with what `handler` returns. Requests are handled concurrently. A handler's
    /// error reaches the caller as [`CallError::Remote`] with its name and message; a request
    /// that does not decode is answered with `InvalidArguments`, and a panic with `Internal`.
    pub async fn rpc_service<Req, Resp, F, Fut>(
        &self,
        name: &str,
        handler: F,
    ) -> Result<RpcService, TransportError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RemoteError>> + Send + 'static,
    {
        let descriptor = descriptor(name, Some(name), None);
        let service = Arc::new(RpcHandler { handler, _types: PhantomData });
        let target = ServiceTarget::node(Arc::new(descriptor), self.endpoint.instance());
        let server = ServerCore::start_at(
            &self.endpoint,
            target,
            service,
            Vec::new(),
            ServerOptions::default(),
        )
        .await?;
        Ok(RpcService { name: name.to_owned(), server })
    }

    /// Serves the action `name` (`robot.move`): each goal is decoded as `G` and run by
    /// `handler`, which sends feedback `F` through its [`GoalContext`], watches for
    /// cancellation there, and returns the result `R` (or `Err(HandlerError::Cancelled)` once
    /// cancelled, or another error). Several goals run at once, up to the core's default limit.
    ///
    /// On MQTT, Redis and AMQP it speaks commlib-py's action protocol: the RPCs
    /// `<name>.send_goal`, `<name>.cancel_goal` and `<name>.get_result` and the topics
    /// `<name>.status` and `<name>.feedback`, so commlib-py's `ActionClient` drives it.
    pub async fn action_service<G, F, R, H, Fut>(
        &self,
        name: &str,
        handler: H,
    ) -> Result<ActionService, TransportError>
    where
        G: DeserializeOwned + Send + 'static,
        F: Serialize + Send + 'static,
        R: Serialize + Send + 'static,
        H: Fn(G, GoalContext<F>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError<Infallible>>> + Send + 'static,
    {
        let mut descriptor = InterfaceDescriptor::named(name);
        descriptor.methods = NODE_ACTION_RPCS
            .iter()
            .map(|rpc| MethodDescriptor {
                name: Cow::Owned(format!("{name}.{rpc}")),
                timeout: None,
            })
            .collect::<Vec<_>>()
            .into();
        descriptor.signals =
            vec![Cow::Owned(format!("{name}.status")), Cow::Owned(format!("{name}.feedback"))]
                .into();
        let service = Arc::new(ActionHandler { handler, _types: PhantomData });
        let target = ServiceTarget::node(Arc::new(descriptor), self.endpoint.instance());
        let server = ServerCore::start_at(
            &self.endpoint,
            target,
            service,
            Vec::new(),
            ServerOptions::default(),
        )
        .await?;
        Ok(ActionService { name: name.to_owned(), server })
    }

    /// A client of the action `name`: it sends goals `G` and follows each one's feedback `F`
    /// and result `R` through a [`GoalHandle`]; several goals may run at once. No feedback is
    /// lost, the first included: events that come before the service says the goal's id are
    /// kept until it does.
    pub async fn action_client<G, F, R>(
        &self,
        name: &str,
    ) -> Result<ActionClient<G, F, R>, TransportError>
    where
        G: Serialize,
        F: DeserializeOwned,
        R: DeserializeOwned + 'static,
    {
        let client = self.connect(descriptor(name, None, None)).await?;
        Ok(ActionClient { name: Cow::Owned(name.to_owned()), client, _types: PhantomData })
    }

    /// A client of the RPC `name`, sending `Req` and expecting `Resp`. It connects at once
    /// even if nobody serves the RPC yet: calls made until someone does time out.
    pub async fn rpc_client<Req, Resp>(
        &self,
        name: &str,
    ) -> Result<RpcClient<Req, Resp>, TransportError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let client = self.connect(descriptor(name, Some(name), None)).await?;
        Ok(RpcClient {
            name: Cow::Owned(name.to_owned()),
            client,
            timeout: DEFAULT_RPC_TIMEOUT,
            _types: PhantomData,
        })
    }

    /// A publisher of `T` on `topic` (`sensors.front`).
    pub async fn publisher<T: Serialize>(
        &self,
        topic: &str,
    ) -> Result<Publisher<T>, TransportError> {
        let descriptor = descriptor(topic, None, Some(topic));
        let target = ServiceTarget::node(Arc::new(descriptor), self.endpoint.instance());
        let service = Arc::new(NoRpc);
        let server = ServerCore::start_at(
            &self.endpoint,
            target,
            service,
            Vec::new(),
            ServerOptions::default(),
        )
        .await?;
        Ok(Publisher { topic: topic.to_owned(), server, _type: PhantomData })
    }

    /// A publisher of `T` to any topic, each named when publishing. It opens a publisher per
    /// topic the first time it publishes there.
    pub fn multi_publisher<T: Serialize>(&self) -> MultiPublisher<T> {
        MultiPublisher { node: self.clone(), publishers: tokio::sync::Mutex::new(HashMap::new()) }
    }

    /// An emitter of events: fire-and-forget messages with a name, each published on the topic
    /// it names (commlib-py's former `EventEmitter`; see [`Event`]).
    pub fn event_emitter<T: Serialize>(&self) -> EventEmitter<T> {
        EventEmitter { publisher: self.multi_publisher() }
    }

    /// A subscriber to `topic`, receiving each message as `T`. On a Unix socket the topic's
    /// publisher must be serving already: the subscriber connects to it.
    pub async fn subscriber<T: DeserializeOwned>(
        &self,
        topic: &str,
    ) -> Result<Subscriber<T>, TransportError> {
        let stream = self.subscribe(topic).await?;
        Ok(Subscriber { stream, _type: PhantomData })
    }

    /// A subscriber to every topic matching `pattern`, receiving each message as `T` with the
    /// topic it was published on. In a pattern, `*` stands for one dotted segment, and a `*`
    /// (or `>`) at the end for one or more (commlib-py's meaning on MQTT: `sensors.*` matches
    /// `sensors.front` and `sensors.front.left`). It needs a broker.
    pub async fn pattern_subscriber<T: DeserializeOwned>(
        &self,
        pattern: &str,
    ) -> Result<PatternSubscriber<T>, TransportError> {
        let stream = self.subscribe(&filter_of(pattern)).await?;
        Ok(PatternSubscriber { stream, _type: PhantomData })
    }

    async fn subscribe(&self, filter: &str) -> Result<Kept, TransportError> {
        let client = self.connect(descriptor(filter, None, None)).await?;
        let stream =
            client.subscribe_topic(filter.to_owned()).await.map_err(|error| match error {
                CallError::Transport(error) => error,
                other => TransportError::new(TransportErrorKind::Protocol, other.to_string()),
            })?;
        Ok(Kept { stream, _client: client })
    }

    async fn connect(&self, descriptor: InterfaceDescriptor) -> Result<ClientCore, TransportError> {
        let target = ServiceTarget::node(Arc::new(descriptor), self.endpoint.instance());
        ClientCore::connect_to(&self.endpoint, target, ClientOptions::default()).await
    }
}

/// The descriptor of one endpoint of a node: named after it, with its RPC or its topic.
fn descriptor(name: &str, rpc: Option<&str>, topic: Option<&str>) -> InterfaceDescriptor {
    let mut descriptor = InterfaceDescriptor::named(name);
    if let Some(rpc) = rpc {
        descriptor.methods =
            vec![MethodDescriptor { name: Cow::Owned(rpc.to_owned()), timeout: None }].into();
    }
    if let Some(topic) = topic {
        descriptor.signals = vec![Cow::Owned(topic.to_owned())].into();
    }
    descriptor
}

/// A commlib-py pattern as the core's topic filter: a last `*` stands for the rest.
fn filter_of(pattern: &str) -> String {
    match pattern.strip_suffix("*") {
        Some(head) if head.is_empty() || head.ends_with('.') => format!("{head}>"),
        _ => pattern.to_owned(),
    }
}

/// A node as its own control services hold it.
#[derive(Clone)]
struct WeakNode {
    name: String,
    endpoint: Endpoint,
    shared: std::sync::Weak<NodeShared>,
}

impl WeakNode {
    /// The node, or the error of a control RPC whose node is gone.
    fn upgrade(&self) -> Result<Node, RemoteError> {
        let shared = self.shared.upgrade().ok_or_else(|| {
            RemoteError::new(ErrorCode::ServiceUnavailable, names::INTERNAL, "the node is gone")
        })?;
        Ok(Node { name: self.name.clone(), endpoint: self.endpoint.clone(), shared })
    }
}

/// A topic stream and the client connection it arrives on.
struct Kept {
    stream: TopicStream,
    _client: ClientCore,
}

/// A subscription whose messages a bridge forwards undecoded: a [`Subscriber`]'s or a
/// [`PatternSubscriber`]'s, each message with its dotted topic.
pub(crate) struct RawSubscription(Kept);

impl RawSubscription {
    /// Subscribes to `topic`, or with `pattern` to every topic matching it (commlib-py's
    /// pattern syntax, as [`Node::pattern_subscriber`] reads it).
    pub(crate) async fn open(
        node: &Node,
        topic: &str,
        pattern: bool,
    ) -> Result<Self, TransportError> {
        let filter = if pattern { filter_of(topic) } else { topic.to_owned() };
        Ok(RawSubscription(node.subscribe(&filter).await?))
    }

    /// The next message and its topic; `None` once the connection is closed.
    pub(crate) async fn next(
        &mut self,
    ) -> Option<Result<(String, bytes::Bytes), SubscriptionError>> {
        let next = self.0.stream.next().await?;
        Some(next.map(|(topic, payload)| (topic.into_owned(), payload)))
    }
}

// ---------------------------------------------------------------------------------------------
// RPC.

/// A served RPC; dropping it stops serving.
pub struct RpcService {
    name: String,
    server: ServerCore,
}

impl fmt::Debug for RpcService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcService").field("name", &self.name).finish_non_exhaustive()
    }
}

impl RpcService {
    /// The RPC's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops serving, once what is on its way out has left.
    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}

/// The handler of one RPC, as the core's dispatch sees it.
struct RpcHandler<F, Req, Resp> {
    handler: F,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<F, Fut, Req, Resp> Service for RpcHandler<F, Req, Resp>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, RemoteError>> + Send + 'static,
{
    fn call(
        &self,
        method: &str,
        payload: bytes::Bytes,
        _ctx: CallContext,
    ) -> BoxFuture<'static, Result<bytes::Bytes, RemoteError>> {
        let request = match decode_args::<Req>(method, &payload) {
            Ok(request) => request,
            Err(error) => return Box::pin(std::future::ready(Err(error))),
        };
        let reply = (self.handler)(request);
        Box::pin(async move { encode_reply(&reply.await?) })
    }

    fn update_property(
        &self,
        property: &str,
        _payload: bytes::Bytes,
        _ctx: CallContext,
    ) -> BoxFuture<'static, Result<bytes::Bytes, RemoteError>> {
        unknown_property(property)
    }
}

/// A served action; dropping it stops serving (and ends its goals).
pub struct ActionService {
    name: String,
    server: ServerCore,
}

impl fmt::Debug for ActionService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionService").field("name", &self.name).finish_non_exhaustive()
    }
}

impl ActionService {
    /// The action's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops serving, once what is on its way out has left.
    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}

/// The handler of one action, as the core's goal table sees it.
struct ActionHandler<H, G, F, R> {
    handler: H,
    _types: PhantomData<fn(G, F) -> R>,
}

impl<H, Fut, G, F, R> Service for ActionHandler<H, G, F, R>
where
    G: DeserializeOwned + Send + 'static,
    F: Serialize + Send + 'static,
    R: Serialize + Send + 'static,
    H: Fn(G, GoalContext<F>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, HandlerError<Infallible>>> + Send + 'static,
{
    fn call(
        &self,
        method: &str,
        _payload: bytes::Bytes,
        _ctx: CallContext,
    ) -> BoxFuture<'static, Result<bytes::Bytes, RemoteError>> {
        switchboard_core::server::unknown_method(method)
    }

    fn update_property(
        &self,
        property: &str,
        _payload: bytes::Bytes,
        _ctx: CallContext,
    ) -> BoxFuture<'static, Result<bytes::Bytes, RemoteError>> {
        unknown_property(property)
    }

    fn start_goal(
        &self,
        action: &str,
        payload: bytes::Bytes,
        goal: RawGoal,
    ) -> BoxFuture<'static, Result<GoalRun, RemoteError>> {
        let started = decode_args::<G>(action, &payload)
            .map(|request| goal_run((self.handler)(request, GoalContext::new(goal))));
        Box::pin(std::future::ready(started))
    }
}

/// A client of one action. Clones share the connection.
pub struct ActionClient<G, F, R> {
    name: Cow<'static, str>,
    client: ClientCore,
    _types: PhantomData<ActionTypes<G, F, R>>,
}

/// What an [`ActionClient`] sends and receives, for its `PhantomData`.
type ActionTypes<G, F, R> = fn(&G) -> (F, R);

impl<G, F, R> Clone for ActionClient<G, F, R> {
    fn clone(&self) -> Self {
        ActionClient { name: self.name.clone(), client: self.client.clone(), _types: PhantomData }
    }
}

impl<G, F, R> fmt::Debug for ActionClient<G, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionClient").field("name", &self.name).finish_non_exhaustive()
    }
}

impl<G, F, R> ActionClient<G, F, R>
where
    G: Serialize,
    F: DeserializeOwned,
    R: DeserializeOwned + 'static,
{
    /// The action's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a goal; once the service accepted it, its handle gives the feedback, the status,
    /// a way to cancel it, and its result. A refused goal is the service's error.
    pub async fn send_goal(
        &self,
        goal: &G,
    ) -> Result<GoalHandle<F, R, Infallible>, MethodError<Infallible>> {
        self.client.send_goal(self.name.clone(), goal, std::convert::identity).await
    }
}

/// A client of one RPC. Clones share the connection; many calls may be in flight at once.
pub struct RpcClient<Req, Resp> {
    name: Cow<'static, str>,
    client: ClientCore,
    timeout: Duration,
    _types: PhantomData<fn(&Req) -> Resp>,
}

impl<Req, Resp> Clone for RpcClient<Req, Resp> {
    fn clone(&self) -> Self {
        RpcClient {
            name: self.name.clone(),
            client: self.client.clone(),
            timeout: self.timeout,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> fmt::Debug for RpcClient<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<Req: Serialize, Resp: DeserializeOwned> RpcClient<Req, Resp> {
    /// The RPC's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets how long [`call`](Self::call) waits for a reply ([`DEFAULT_RPC_TIMEOUT`] until set).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Calls the RPC and waits for its reply. No reply in time is [`CallError::Timeout`],
    /// never an empty value; the handler's error is [`CallError::Remote`].
    pub async fn call(&self, request: &Req) -> Result<Resp, CallError> {
        self.call_within(request, self.timeout).await
    }

    /// Calls the RPC, waiting at most `timeout` for its reply.
    pub async fn call_within(&self, request: &Req, timeout: Duration) -> Result<Resp, CallError> {
        let payload = codec::encode(request)
            .map_err(|e| DecodeError::new(format!("request of RPC `{}`", self.name), e))?;
        let reply = self.client.call_raw_within(self.name.clone(), payload, timeout).await?;
        codec::decode(&reply)
            .map_err(|e| DecodeError::new(format!("reply of RPC `{}`", self.name), e).into())
    }
}

// ---------------------------------------------------------------------------------------------
// Publish and subscribe.

/// Serves no RPC: a publisher's server.
struct NoRpc;

impl Service for NoRpc {
    fn call(
        &self,
        method: &str,
        _payload: bytes::Bytes,
        _ctx: CallContext,
    ) -> BoxFuture<'static, Result<bytes::Bytes, RemoteError>> {
        switchboard_core::server::unknown_method(method)
    }

    fn update_property(
        &self,
        property: &str,
        _payload: bytes::Bytes,
        _ctx: CallContext,
    ) -> BoxFuture<'static, Result<bytes::Bytes, RemoteError>> {
        unknown_property(property)
    }
}

/// A publisher of `T` on one topic; dropping it stops publishing.
pub struct Publisher<T> {
    topic: String,
    server: ServerCore,
    _type: PhantomData<fn(&T)>,
}

impl<T> fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl<T: Serialize> Publisher<T> {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publishes `message` to the subscribers there are. As with a signal, a message published
    /// while a broker is away reaches no one (and is counted by the core), but is no error.
    pub async fn publish(&self, message: &T) -> Result<(), TransportError> {
        let payload = codec::encode(message).map_err(|error| {
            TransportError::new(
                TransportErrorKind::Protocol,
                format!("a message for `{}` does not encode as JSON: {error}", self.topic),
            )
        })?;
        self.server.emit_raw(&self.topic, payload).await
    }

    /// Stops publishing, once what is on its way out has left: a short-lived publisher (a
    /// script's one message) calls it so that its message is not lost with the connection.
    pub async fn stop(self) {
        self.server.shutdown().await;
    }

    /// Publishes an already encoded JSON message, for bridges, which forward what they
    /// receive without decoding it and count each message's fate: one published while the
    /// broker is away is a `NotConnected` error here, not a silent drop.
    pub(crate) async fn publish_raw(&self, payload: bytes::Bytes) -> Result<(), TransportError> {
        self.server.try_emit_raw(&self.topic, payload).await
    }
}

/// A publisher of `T` to topics named per message.
pub struct MultiPublisher<T> {
    node: Node,
    publishers: tokio::sync::Mutex<HashMap<String, Arc<Publisher<T>>>>,
}

impl<T> fmt::Debug for MultiPublisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiPublisher").field("node", &self.node.name).finish_non_exhaustive()
    }
}

impl<T: Serialize> MultiPublisher<T> {
    /// Publishes `message` on `topic`.
    pub async fn publish(&self, topic: &str, message: &T) -> Result<(), TransportError> {
        let publisher = {
            let mut publishers = self.publishers.lock().await;
            match publishers.get(topic) {
                Some(publisher) => publisher.clone(),
                None => {
                    let publisher = Arc::new(self.node.publisher(topic).await?);
                    publishers.insert(topic.to_owned(), publisher.clone());
                    publisher
                }
            }
        };
        publisher.publish(message).await
    }
}

/// An event: a name and its data, published on a topic, in the shape of commlib-py's former
/// `EventEmitter` (`{"name":…,"uri":…,"description":…,"data":…}`, `uri` being the topic).
/// Subscribe to the topic with `Subscriber<Event<T>>` to receive them.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Event<T> {
    /// What happened.
    pub name: String,
    /// The topic it was published on.
    #[serde(default)]
    pub uri: String,
    /// A description for people; often empty.
    #[serde(default)]
    pub description: String,
    /// The event's data.
    pub data: T,
}

impl<T> Event<T> {
    /// An event called `name` carrying `data`.
    pub fn new(name: impl Into<String>, data: T) -> Self {
        Event { name: name.into(), uri: String::new(), description: String::new(), data }
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }
}

/// Emits [`Event`]s carrying `T` to topics named per event.
pub struct EventEmitter<T> {
    publisher: MultiPublisher<Event<T>>,
}

impl<T> fmt::Debug for EventEmitter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventEmitter").field("publisher", &self.publisher).finish()
    }
}

impl<T: Serialize> EventEmitter<T> {
    /// Publishes `event` on `topic`, fire and forget (its `uri` is set to the topic).
    pub async fn emit(&self, topic: &str, mut event: Event<T>) -> Result<(), TransportError> {
        event.uri = topic.to_owned();
        self.publisher.publish(topic, &event).await
    }
}

/// The messages on one topic, decoded as `T`, in the order they arrived.
///
/// A reader that falls behind by more than [`SIGNAL_BUFFER`](crate::client::SIGNAL_BUFFER)
/// messages misses some, and learns how many ([`SubscriptionError::Lagged`]).
pub struct Subscriber<T> {
    stream: Kept,
    _type: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Subscriber<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber").field("stream", &self.stream.stream).finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> Subscriber<T> {
    /// Waits for the next message; `None` once the connection is closed.
    pub async fn next(&mut self) -> Option<Result<T, SubscriptionError>> {
        let next = self.stream.stream.next().await?;
        Some(next.and_then(|(topic, payload)| decode(&topic, &payload)))
    }
}

/// A message and the topic it was published on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Received<T> {
    /// The topic, dotted (`sensors.front`), whatever the broker's own notation.
    pub topic: String,
    /// The message.
    pub message: T,
}

/// The messages on every topic matching a pattern, decoded as `T`, each with its topic.
pub struct PatternSubscriber<T> {
    stream: Kept,
    _type: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for PatternSubscriber<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatternSubscriber")
            .field("stream", &self.stream.stream)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> PatternSubscriber<T> {
    /// Waits for the next message; `None` once the connection is closed.
    pub async fn next(&mut self) -> Option<Result<Received<T>, SubscriptionError>> {
        let next = self.stream.stream.next().await?;
        Some(next.and_then(|(topic, payload)| {
            let message = decode(&topic, &payload)?;
            Ok(Received { topic: topic.into_owned(), message })
        }))
    }
}

fn decode<T: DeserializeOwned>(topic: &str, payload: &[u8]) -> Result<T, SubscriptionError> {
    codec::decode(payload).map_err(|e| {
        SubscriptionError::Decode(DecodeError::new(format!("message on `{topic}`"), e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commlib_patterns_become_filters() {
        assert_eq!(filter_of("sensors.*"), "sensors.>");
        assert_eq!(filter_of("*"), ">");
        assert_eq!(filter_of("sensors.*.temp"), "sensors.*.temp");
        assert_eq!(filter_of("sensors.>"), "sensors.>");
        assert_eq!(filter_of("a*"), "a*");
    }
}
