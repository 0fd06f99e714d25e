//! Bridges: topics, topic patterns and RPCs carried between two endpoints (any two URLs the
//! facade accepts), commlib-py's `TopicBridge`, `PTopicBridge` and `RPCBridge` on nodes.
//!
//! A bridge joins side [`Side::A`] and side [`Side::B`] and runs [`Route`]s between them:
//! - a topic route subscribes to one topic on one side and publishes each message on a topic
//!   of the other, under the name it maps it to;
//! - a pattern route does the same for every topic matching a pattern, renaming each topic by
//!   swapping the pattern's literal head for another prefix (`sensors.*` to `site1.sensors`
//!   carries `sensors.front.temp` as `site1.sensors.front.temp`);
//! - an RPC route serves an RPC on one side and answers each call with the answer of an RPC
//!   on the other (errors included: the far service's error reaches the caller unchanged).
//!
//! Messages pass through undecoded. Between the subscription and the publisher of each route
//! sits a bounded queue; what does not fit, what arrives while the target side is away, and
//! what a slow bridge misses are dropped and counted ([`Bridge::counts`]), never buffered
//! without bound. A route's publisher keeps a bounded window of publishes on their way at once
//! ([`BridgeOptions::in_flight`]), started in the queue's order and settled in that order, so
//! that the far side's publish round trip does not pace the route. A side's broker may go
//! away and come back: the node endpoints underneath reconnect and subscribe again by
//! themselves, and a route whose subscription ends opens it again. Routes in both directions
//! between the same names do not loop: a message a bridge published on a side is recognised
//! when its own subscription there hears it back, and is not carried back.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard::{Endpoint, bridge::{Bridge, BridgeOptions, Route, Side}};
//!
//! let a = Endpoint::parse("mqtt://127.0.0.1:1883")?;
//! let b = Endpoint::parse("redis://127.0.0.1:6379")?;
//! let routes = vec![
//!     Route::pattern(Side::A, "sensors.*", "site1.sensors"),
//!     Route::rpc(Side::B, "site1.add_two_ints", "demo.add_two_ints"),
//! ];
//! let bridge = Bridge::start(a, b, routes, BridgeOptions::default()).await?;
//! println!("{:?}", bridge.counts());
//! # Ok(()) }
//! ```

use std::{
    collections::{HashMap, VecDeque, hash_map::DefaultHasher},
    fmt,
    hash::{Hash, Hasher},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::{StreamExt, stream::FuturesOrdered};
use serde_json::Value;
use switchboard_core::{
    CallError, ErrorCode, RemoteError, TransportError, TransportErrorKind, backoff::Backoff,
    client::SubscriptionError, error::names, sync::lock,
};
use switchboard_wire::filter::{self, Wildcards};
use tokio::{sync::mpsc, task::JoinHandle};

mod interface;

use crate::{
    Endpoint,
    node::{Node, Publisher, RawSubscription, RpcClient, RpcService},
};

/// How many messages a route holds between its subscription and its publisher unless told
/// otherwise; past it, messages are dropped and counted.
pub const DEFAULT_QUEUE: usize = 1024;

/// How long a bridged call waits for the far side's answer unless told otherwise: a second
/// under a node client's default timeout, so that a caller with the default hears why.
pub const DEFAULT_FORWARD_TIMEOUT: Duration = Duration::from_secs(9);

/// How many topics a pattern route keeps a publisher open for unless told otherwise; past it,
/// the publisher opened first is closed.
pub const DEFAULT_MAX_PUBLISHERS: usize = 256;

/// How many publishes a topic or pattern route keeps on their way at once unless told
/// otherwise.
pub const DEFAULT_IN_FLIGHT: usize = 64;

/// How many messages a side remembers having published, to know them when they come back.
const ECHO_CAPACITY: usize = 4096;

/// One of the two sides of a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The first endpoint given to [`Bridge::start`].
    A,
    /// The second endpoint given to [`Bridge::start`].
    B,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::A => "a",
            Side::B => "b",
        })
    }
}

/// What a bridge carries, and in which direction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// Messages on `topic` on side `from` are published on `to` on the other side.
    Topic {
        /// The side whose messages are carried.
        from: Side,
        /// The topic read there (dotted, no wildcard).
        topic: String,
        /// The topic they are published on, on the other side.
        to: String,
    },
    /// Messages on every topic matching `pattern` on side `from` are published on the other
    /// side, each on its topic with the pattern's literal head replaced by `prefix`.
    Pattern {
        /// The side whose messages are carried.
        from: Side,
        /// The pattern (commlib-py's: `*` one segment, a last `*` the rest).
        pattern: String,
        /// What replaces the pattern's literal head; empty keeps each topic as it is.
        prefix: String,
    },
    /// The RPC `name` is served on side `served_on`; each call is made to the RPC `to` on the
    /// other side, and its answer returned.
    Rpc {
        /// The side callers call.
        served_on: Side,
        /// The RPC served there.
        name: String,
        /// The RPC that answers, on the other side.
        to: String,
    },
    /// The service `interface` at `instance` runs on the side opposite `served_on` (its
    /// holder) and is served, as the same interface and instance, on side `served_on`: every
    /// method, property, signal, command and action passes through.
    Interface {
        /// The side its clients reach it on.
        served_on: Side,
        /// The interface name, as its file writes it.
        interface: String,
        /// The service instance, on both sides.
        instance: String,
    },
}

impl Route {
    /// A topic route: `topic` on `from` is published as `to` on the other side.
    pub fn topic(from: Side, topic: impl Into<String>, to: impl Into<String>) -> Route {
        Route::Topic { from, topic: topic.into(), to: to.into() }
    }

    /// A pattern route: topics matching `pattern` on `from` are published on the other side,
    /// with the pattern's literal head replaced by `prefix`.
    pub fn pattern(from: Side, pattern: impl Into<String>, prefix: impl Into<String>) -> Route {
        Route::Pattern { from, pattern: pattern.into(), prefix: prefix.into() }
    }

    /// An RPC route: `name` served on `served_on` is answered by `to` on the other side.
    pub fn rpc(served_on: Side, name: impl Into<String>, to: impl Into<String>) -> Route {
        Route::Rpc { served_on, name: name.into(), to: to.into() }
    }

    /// An interface route: the service `interface` at `instance` on the other side is served
    /// on `served_on` too, learned from the service itself (no generated code).
    pub fn interface(
        served_on: Side,
        interface: impl Into<String>,
        instance: impl Into<String>,
    ) -> Route {
        Route::Interface { served_on, interface: interface.into(), instance: instance.into() }
    }

    /// Why the route cannot run, if it cannot.
    fn check(&self, same_endpoint: bool) -> Result<(), String> {
        let plain = |what: &str, name: &str| -> Result<(), String> {
            if name.is_empty() {
                return Err(format!("the {what} is empty"));
            }
            if name.split('.').any(|segment| segment.is_empty()) {
                return Err(format!("the {what} `{name}` has an empty segment"));
            }
            if name.contains(['*', '>']) {
                return Err(format!("the {what} `{name}` has a wildcard; only patterns do"));
            }
            Ok(())
        };
        match self {
            Route::Topic { topic, to, .. } => {
                plain("topic", topic)?;
                plain("target topic", to)?;
                if same_endpoint && topic == to {
                    return Err("both sides are one endpoint: it would carry each message back \
                                to where it came from forever"
                        .into());
                }
            }
            Route::Pattern { pattern, prefix, .. } => {
                plain("pattern", &pattern.replace(['*', '>'], "x"))?;
                if pattern.split('.').rev().skip(1).any(|segment| segment == ">") {
                    return Err(format!("the pattern `{pattern}` has `>` before its end"));
                }
                if !prefix.is_empty() {
                    plain("prefix", prefix)?;
                }
                if same_endpoint
                    && matches(
                        pattern,
                        &PatternMap::new(pattern, prefix).map(&pattern.replace(['*', '>'], "x")),
                    )
                {
                    return Err("both sides are one endpoint and the renamed topics match the \
                                pattern again: it would carry each message forever"
                        .into());
                }
            }
            Route::Rpc { name, to, .. } => {
                plain("RPC name", name)?;
                plain("target RPC name", to)?;
                if same_endpoint && name == to {
                    return Err("both sides are one endpoint: the RPC would call itself".into());
                }
            }
            Route::Interface { interface, instance, .. } => {
                if interface.is_empty() || interface.contains(['/', '*', '>']) {
                    return Err(format!("`{interface}` is not an interface name"));
                }
                if instance.is_empty() {
                    return Err("the instance is empty".into());
                }
                if same_endpoint {
                    return Err("both sides are one endpoint: the bridge would serve the \
                                instance where it already runs, and call itself"
                        .into());
                }
            }
        }
        Ok(())
    }

    /// The side it reads from or serves on.
    fn source(&self) -> Side {
        match self {
            Route::Topic { from, .. } | Route::Pattern { from, .. } => *from,
            Route::Rpc { served_on, .. } | Route::Interface { served_on, .. } => *served_on,
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Topic { from, topic, to } => {
                write!(f, "topic {from}:{topic} -> {}:{to}", from.other())
            }
            Route::Pattern { from, pattern, prefix } => {
                let to = if prefix.is_empty() { "(same names)" } else { prefix };
                write!(f, "pattern {from}:{pattern} -> {}:{to}", from.other())
            }
            Route::Rpc { served_on, name, to } => {
                write!(f, "rpc {served_on}:{name} -> {}:{to}", served_on.other())
            }
            Route::Interface { served_on, interface, instance } => {
                write!(f, "interface {served_on}:{interface}/{instance} -> {}", served_on.other())
            }
        }
    }
}

/// How a bridge runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeOptions {
    /// Messages a route holds between its subscription and its publisher
    /// ([`DEFAULT_QUEUE`]); at least 1.
    pub queue: usize,
    /// How long a bridged call waits for the far side ([`DEFAULT_FORWARD_TIMEOUT`]).
    pub forward_timeout: Duration,
    /// Publishers a pattern route keeps open, one per topic ([`DEFAULT_MAX_PUBLISHERS`]).
    pub max_publishers: usize,
    /// Publishes a topic or pattern route keeps on their way at once ([`DEFAULT_IN_FLIGHT`]);
    /// at least 1, which publishes one message at a time. They start in the order the route
    /// read the messages and each transport takes them in that order, so messages still leave
    /// in order; each one's outcome is counted when its turn comes.
    pub in_flight: usize,
    /// Whether [`Bridge::start`] starts routes whose side is unreachable anyway, to run them
    /// once it is reachable (`true`), or fails (`false`, the default).
    pub wait: bool,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            queue: DEFAULT_QUEUE,
            forward_timeout: DEFAULT_FORWARD_TIMEOUT,
            max_publishers: DEFAULT_MAX_PUBLISHERS,
            in_flight: DEFAULT_IN_FLIGHT,
            wait: false,
        }
    }
}

impl BridgeOptions {
    /// Sets [`queue`](Self::queue).
    pub fn queue(mut self, queue: usize) -> Self {
        self.queue = queue.max(1);
        self
    }

    /// Sets [`forward_timeout`](Self::forward_timeout).
    pub fn forward_timeout(mut self, timeout: Duration) -> Self {
        self.forward_timeout = timeout;
        self
    }

    /// Sets [`max_publishers`](Self::max_publishers).
    pub fn max_publishers(mut self, max: usize) -> Self {
        self.max_publishers = max.max(1);
        self
    }

    /// Sets [`in_flight`](Self::in_flight).
    pub fn in_flight(mut self, in_flight: usize) -> Self {
        self.in_flight = in_flight.max(1);
        self
    }

    /// Sets [`wait`](Self::wait).
    pub fn wait(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }
}

/// Why a bridge did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// A route cannot run as given.
    #[error("route {route}: {reason}")]
    InvalidRoute {
        /// The route, as it displays.
        route: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A side could not be reached for a route.
    #[error("route {route}: side {side} ({url}) is unreachable: {source}")]
    Unreachable {
        /// The route, as it displays.
        route: String,
        /// The side.
        side: Side,
        /// The side's URL (without secrets).
        url: String,
        /// The transport's failure.
        #[source]
        source: TransportError,
    },
}

/// What one route did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteCounts {
    /// The route, as it displays.
    pub route: String,
    /// Messages published on the far side, or calls answered by it (its errors included).
    pub forwarded: u64,
    /// Messages lost on the way: the queue was full, the far side was away or refused them,
    /// or the bridge's subscription fell behind.
    pub dropped: u64,
    /// Messages not carried because the bridge had published them itself (loop prevention).
    pub looped: u64,
    /// Calls the far side did not answer (unreachable, or no answer in time).
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    forwarded: AtomicU64,
    dropped: AtomicU64,
    looped: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A running bridge; dropping it stops every route.
pub struct Bridge {
    routes: Vec<Running>,
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<&str> = self.routes.iter().map(|r| r.route.as_str()).collect();
        f.debug_struct("Bridge").field("routes", &routes).finish()
    }
}

/// One running route: its counters, its tasks and (for an RPC route) its service.
struct Running {
    route: String,
    counters: Arc<Counters>,
    tasks: Vec<JoinHandle<()>>,
    service: Arc<tokio::sync::Mutex<Option<RpcService>>>,
    /// An interface route's server, once it serves.
    exposed: Arc<tokio::sync::Mutex<Option<interface::Exposed>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One side: its node, the topics the bridge reads there, and what it published there.
struct SideState {
    side: Side,
    node: Node,
    /// The topics and patterns the bridge's routes read on this side.
    readers: Vec<String>,
    echoes: Mutex<Echoes>,
}

impl SideState {
    fn url(&self) -> String {
        self.node.endpoint().address_url()
    }

    /// Notes that the bridge publishes `payload` on `topic` here, if one of its routes reads
    /// that topic here and so will hear it back; says whether it did.
    fn expect_echo(&self, topic: &str, payload: &[u8]) -> bool {
        let heard_back = self.readers.iter().any(|reader| matches(reader, topic));
        if heard_back {
            lock(&self.echoes).expect(key(topic, payload));
        }
        heard_back
    }

    /// Whether a message heard here is one the bridge published (it is then forgotten).
    fn is_echo(&self, topic: &str, payload: &[u8]) -> bool {
        !self.readers.is_empty() && lock(&self.echoes).take(&key(topic, payload))
    }

    /// Forgets a message [`expect_echo`](Self::expect_echo) noted that never left, so that the
    /// same message published later is not taken for its echo.
    fn forget_echo(&self, topic: &str, payload: &[u8]) {
        lock(&self.echoes).take(&key(topic, payload));
    }
}

fn key(topic: &str, payload: &[u8]) -> (String, u64) {
    let mut hasher = DefaultHasher::new();
    payload.hash(&mut hasher);
    (topic.to_owned(), hasher.finish())
}

/// The messages a side published, oldest first, until heard back; at most [`ECHO_CAPACITY`].
#[derive(Default)]
struct Echoes {
    counts: HashMap<(String, u64), u32>,
    order: VecDeque<(String, u64)>,
}

impl Echoes {
    fn expect(&mut self, key: (String, u64)) {
        if self.order.len() >= ECHO_CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.forget(&oldest);
        }
        *self.counts.entry(key.clone()).or_default() += 1;
        self.order.push_back(key);
    }

    fn take(&mut self, key: &(String, u64)) -> bool {
        if !self.counts.contains_key(key) {
            return false;
        }
        self.forget(key);
        if let Some(at) = self.order.iter().position(|k| k == key) {
            self.order.remove(at);
        }
        true
    }

    fn forget(&mut self, key: &(String, u64)) {
        if let Some(count) = self.counts.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(key);
            }
        }
    }
}

/// Whether `topic` matches `pattern`, read as commlib-py reads it: `*` one segment, a last
/// `*` or `>` one or more.
fn matches(pattern: &str, topic: &str) -> bool {
    filter::matches(pattern, topic, Wildcards::Commlib)
}

/// How a pattern route renames topics: its literal head (the segments before the first
/// wildcard) is replaced by a prefix.
#[derive(Debug, Clone)]
struct PatternMap {
    head: Vec<String>,
    prefix: String,
}

impl PatternMap {
    fn new(pattern: &str, prefix: &str) -> Self {
        let head = pattern
            .split('.')
            .take_while(|segment| *segment != "*" && *segment != ">")
            .map(str::to_owned)
            .collect();
        PatternMap { head, prefix: prefix.to_owned() }
    }

    fn map(&self, topic: &str) -> String {
        if self.prefix.is_empty() {
            return topic.to_owned();
        }
        let rest: Vec<&str> = topic.split('.').skip(self.head.len()).collect();
        if rest.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}.{}", self.prefix, rest.join("."))
        }
    }
}

impl Bridge {
    /// Starts `routes` between `a` and `b`. Each route's subscription, publisher or service
    /// and client are opened now: a side that cannot be reached is
    /// [`BridgeError::Unreachable`] unless [`BridgeOptions::wait`] is set, and a route that
    /// cannot run is [`BridgeError::InvalidRoute`].
    pub async fn start(
        a: Endpoint,
        b: Endpoint,
        routes: Vec<Route>,
        options: BridgeOptions,
    ) -> Result<Bridge, BridgeError> {
        let same_endpoint = a.to_string() == b.to_string();
        for route in &routes {
            route
                .check(same_endpoint)
                .map_err(|reason| BridgeError::InvalidRoute { route: route.to_string(), reason })?;
        }
        // Two routes exposing one service would serve it on both sides: each would find the
        // other's server and call it back.
        let mut exposed = std::collections::HashSet::new();
        for route in &routes {
            if let Route::Interface { interface, instance, .. } = route
                && !exposed.insert((interface, instance))
            {
                let reason = format!(
                    "another route exposes {interface}/{instance} already: the two would serve \
                     it to each other in a loop"
                );
                return Err(BridgeError::InvalidRoute { route: route.to_string(), reason });
            }
        }
        let readers = |side: Side| -> Vec<String> {
            routes
                .iter()
                .filter_map(|route| match route {
                    Route::Topic { from, topic, .. } if *from == side => Some(topic.clone()),
                    Route::Pattern { from, pattern, .. } if *from == side => Some(pattern.clone()),
                    _ => None,
                })
                .collect()
        };
        let side = |side: Side, endpoint: Endpoint| {
            Arc::new(SideState {
                side,
                node: Node::new(format!("bridge_{side}"), endpoint),
                readers: readers(side),
                echoes: Mutex::default(),
            })
        };
        let (a, b) = (side(Side::A, a), side(Side::B, b));
        let mut running = Vec::with_capacity(routes.len());
        for route in routes {
            let (from, to) = match route.source() {
                Side::A => (a.clone(), b.clone()),
                Side::B => (b.clone(), a.clone()),
            };
            running.push(start_route(route, from, to, &options).await?);
        }
        Ok(Bridge { routes: running })
    }

    /// What each route did so far, in the order the routes were given.
    pub fn counts(&self) -> Vec<RouteCounts> {
        self.routes
            .iter()
            .map(|running| {
                let c = &running.counters;
                RouteCounts {
                    route: running.route.clone(),
                    forwarded: c.forwarded.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                    looped: c.looped.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Stops every route, once what their services say on the way out has left.
    pub async fn stop(mut self) {
        for running in self.routes.drain(..) {
            for task in &running.tasks {
                task.abort();
            }
            let service = running.service.lock().await.take();
            if let Some(service) = service {
                service.stop().await;
            }
            let exposed = running.exposed.lock().await.take();
            if let Some(exposed) = exposed {
                exposed.stop().await;
            }
        }
    }
}

fn unreachable(route: &str, side: &SideState, source: TransportError) -> BridgeError {
    BridgeError::Unreachable { route: route.to_owned(), side: side.side, url: side.url(), source }
}

async fn start_route(
    route: Route,
    from: Arc<SideState>,
    to: Arc<SideState>,
    options: &BridgeOptions,
) -> Result<Running, BridgeError> {
    let name = route.to_string();
    let counters = Arc::new(Counters::default());
    let service = Arc::new(tokio::sync::Mutex::new(None));
    let exposed = Arc::new(tokio::sync::Mutex::new(None));
    let tasks = match route {
        Route::Interface { interface, instance, .. } => {
            let at = |side: &SideState| {
                side.node.endpoint().clone().with_instance(&instance).map_err(|error| {
                    BridgeError::InvalidRoute { route: name.clone(), reason: error.to_string() }
                })
            };
            let spec = Arc::new(interface::Spec {
                route: name.clone(),
                interface,
                holder_endpoint: at(&to)?,
                served_endpoint: at(&from)?,
                holder: to,
                served: from,
                timeout: options.forward_timeout,
                counters: counters.clone(),
            });
            match interface::expose(&spec).await {
                Ok(running) => {
                    *exposed.lock().await = Some(running);
                    Vec::new()
                }
                Err(error) if !options.wait => {
                    return Err(match error {
                        interface::ExposeError::Holder(e) => unreachable(&name, &spec.holder, e),
                        interface::ExposeError::Served(e) => unreachable(&name, &spec.served, e),
                    });
                }
                Err(_) => {
                    tracing::warn!(route = %name, "waiting for both sides to expose the interface");
                    let slot = exposed.clone();
                    vec![tokio::spawn(async move {
                        let mut attempt = 0;
                        loop {
                            attempt += 1;
                            tokio::time::sleep(retry_delay(attempt)).await;
                            if let Ok(running) = interface::expose(&spec).await {
                                tracing::info!(route = %spec.route, "serving");
                                *slot.lock().await = Some(running);
                                return;
                            }
                        }
                    })]
                }
            }
        }
        Route::Topic { topic, to: target, .. } => {
            let flow = Flow { name: name.clone(), from, to, source: topic, pattern: false };
            let rename = Rename::Topic(target);
            start_flow(flow, rename, &counters, options).await?
        }
        Route::Pattern { pattern, prefix, .. } => {
            let rename = Rename::Pattern(PatternMap::new(&pattern, &prefix));
            let flow = Flow { name: name.clone(), from, to, source: pattern, pattern: true };
            start_flow(flow, rename, &counters, options).await?
        }
        Route::Rpc { name: served, to: target, .. } => {
            let forward = Arc::new(Forward {
                route: name.clone(),
                to,
                target,
                timeout: options.forward_timeout,
                client: tokio::sync::Mutex::new(None),
                counters: counters.clone(),
            });
            if let Err(error) = forward.client().await
                && !options.wait
            {
                return Err(unreachable(&name, &forward.to, error));
            }
            match serve(&from, &served, &forward).await {
                Ok(served) => {
                    *service.lock().await = Some(served);
                    Vec::new()
                }
                Err(error) if !options.wait => return Err(unreachable(&name, &from, error)),
                Err(error) => {
                    tracing::warn!(route = %name, %error, "waiting for the side to serve on");
                    let slot = service.clone();
                    vec![tokio::spawn(async move {
                        let mut attempt = 0;
                        loop {
                            attempt += 1;
                            tokio::time::sleep(retry_delay(attempt)).await;
                            if let Ok(served) = serve(&from, &served, &forward).await {
                                tracing::info!(route = %forward.route, "serving");
                                *slot.lock().await = Some(served);
                                return;
                            }
                        }
                    })]
                }
            }
        }
    };
    Ok(Running { route: name, counters, tasks, service, exposed })
}

fn retry_delay(attempt: usize) -> Duration {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).delay(attempt)
}

// ---------------------------------------------------------------------------------------------
// Topic and pattern routes.

/// Where one topic or pattern route reads.
struct Flow {
    name: String,
    from: Arc<SideState>,
    to: Arc<SideState>,
    source: String,
    pattern: bool,
}

/// How a route names on the far side what it read.
enum Rename {
    Topic(String),
    Pattern(PatternMap),
}

impl Rename {
    fn map(&self, topic: &str) -> String {
        match self {
            Rename::Topic(to) => to.clone(),
            Rename::Pattern(map) => map.map(topic),
        }
    }
}

async fn start_flow(
    flow: Flow,
    rename: Rename,
    counters: &Arc<Counters>,
    options: &BridgeOptions,
) -> Result<Vec<JoinHandle<()>>, BridgeError> {
    let subscription =
        match RawSubscription::open(&flow.from.node, &flow.source, flow.pattern).await {
            Ok(subscription) => Some(subscription),
            Err(error) if !options.wait => return Err(unreachable(&flow.name, &flow.from, error)),
            Err(error) => {
                tracing::warn!(route = %flow.name, %error, "waiting for the side to read from");
                None
            }
        };
    let mut publishers = Publishers::new(options.max_publishers);
    if let Rename::Topic(target) = &rename {
        match flow.to.node.publisher::<Value>(target).await {
            Ok(publisher) => {
                publishers.insert(target.clone(), publisher);
            }
            Err(error) if !options.wait => return Err(unreachable(&flow.name, &flow.to, error)),
            Err(error) => {
                tracing::warn!(route = %flow.name, %error, "waiting for the side to publish on");
            }
        }
    }
    let flow = Arc::new(flow);
    let (queue, messages) = mpsc::channel(options.queue.max(1));
    let reader = tokio::spawn(read(flow.clone(), rename, subscription, queue, counters.clone()));
    let in_flight = options.in_flight.max(1);
    let writer = tokio::spawn(write(flow, publishers, messages, counters.clone(), in_flight));
    Ok(vec![reader, writer])
}

/// Reads the route's subscription into its queue, opening the subscription again whenever it
/// ends; what the queue has no room for is dropped and counted.
async fn read(
    flow: Arc<Flow>,
    rename: Rename,
    mut subscription: Option<RawSubscription>,
    queue: mpsc::Sender<(String, Bytes)>,
    counters: Arc<Counters>,
) {
    let mut attempt = 0;
    loop {
        let mut messages = match subscription.take() {
            Some(messages) => messages,
            None => {
                match RawSubscription::open(&flow.from.node, &flow.source, flow.pattern).await {
                    Ok(messages) => {
                        if attempt > 0 {
                            tracing::info!(route = %flow.name, "subscribed again");
                        }
                        attempt = 0;
                        messages
                    }
                    Err(error) => {
                        attempt += 1;
                        if attempt == 1 {
                            tracing::warn!(route = %flow.name, %error, "cannot subscribe; retrying");
                        }
                        tokio::time::sleep(retry_delay(attempt)).await;
                        continue;
                    }
                }
            }
        };
        let mut full = false;
        while let Some(next) = messages.next().await {
            match next {
                Ok((topic, payload)) => {
                    if flow.from.is_echo(&topic, &payload) {
                        Counters::add(&counters.looped, 1);
                        continue;
                    }
                    match queue.try_send((rename.map(&topic), payload)) {
                        Ok(()) => full = false,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            Counters::add(&counters.dropped, 1);
                            if !full {
                                tracing::warn!(route = %flow.name, "the queue is full; dropping messages");
                            }
                            full = true;
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
                Err(SubscriptionError::Lagged { missed }) => {
                    tracing::warn!(route = %flow.name, missed, "the subscription fell behind");
                    Counters::add(&counters.dropped, missed);
                }
                Err(SubscriptionError::Transport(error)) => {
                    tracing::warn!(route = %flow.name, %error, "the side to read from is away");
                }
                Err(error) => {
                    tracing::warn!(route = %flow.name, %error, "a message was dropped");
                    Counters::add(&counters.dropped, 1);
                }
            }
        }
        tracing::warn!(route = %flow.name, "the subscription ended; subscribing again");
    }
}

/// The publishers of a route's far side, one per topic, at most `max` (the oldest is closed).
struct Publishers {
    max: usize,
    open: HashMap<String, Arc<Publisher<Value>>>,
    order: VecDeque<String>,
}

impl Publishers {
    fn new(max: usize) -> Self {
        Publishers { max: max.max(1), open: HashMap::new(), order: VecDeque::new() }
    }

    fn insert(&mut self, topic: String, publisher: Publisher<Value>) -> Arc<Publisher<Value>> {
        if self.open.len() >= self.max
            && let Some(oldest) = self.order.pop_front()
        {
            self.open.remove(&oldest);
        }
        let publisher = Arc::new(publisher);
        self.order.push_back(topic.clone());
        self.open.insert(topic, publisher.clone());
        publisher
    }

    /// The publisher of `topic` on `node`, opened now if it is not open.
    async fn open(
        &mut self,
        node: &Node,
        topic: &str,
    ) -> Result<Arc<Publisher<Value>>, TransportError> {
        if let Some(publisher) = self.open.get(topic) {
            return Ok(publisher.clone());
        }
        let publisher = node.publisher::<Value>(topic).await?;
        Ok(self.insert(topic.to_owned(), publisher))
    }
}

/// One publish on its way: its topic and payload, whether its echo is expected, and what
/// became of it.
struct Sent {
    topic: String,
    payload: Bytes,
    echo: bool,
    outcome: Result<(), TransportError>,
}

/// Publishes what the route's queue holds on the far side, keeping up to `in_flight` publishes
/// on their way at once, and counts what reaches it and what does not.
///
/// The window is a [`FuturesOrdered`]: publishes are pushed in the queue's order, and its
/// futures are first polled in the order they were pushed. Every transport takes a publish in
/// the order its future is first polled (it queues the message then, or waits in a first come,
/// first served queue for room), so messages leave in the order they were read; the outcomes
/// come back in the same order, and each message is counted once, when its own comes back.
async fn write(
    flow: Arc<Flow>,
    mut publishers: Publishers,
    mut messages: mpsc::Receiver<(String, Bytes)>,
    counters: Arc<Counters>,
    in_flight: usize,
) {
    let mut window = FuturesOrdered::new();
    let mut outage = Outage::default();
    loop {
        tokio::select! {
            biased;
            Some(sent) = window.next(), if !window.is_empty() => {
                settle(&flow, &counters, &mut outage, sent);
            }
            next = messages.recv(), if window.len() < in_flight => {
                let Some((topic, payload)) = next else { break };
                // Opening a publisher for a new topic holds up the window's progress for that
                // long, never its order: a pattern route does it once per topic. A publisher
                // that cannot be opened is the message's outcome, settled in its turn.
                let publisher = publishers.open(&flow.to.node, &topic).await;
                let echo = publisher.is_ok() && flow.to.expect_echo(&topic, &payload);
                window.push_back(async move {
                    let outcome = match publisher {
                        Ok(publisher) => publisher.publish_raw(payload.clone()).await,
                        Err(error) => Err(error),
                    };
                    Sent { topic, payload, echo, outcome }
                });
            }
        }
    }
    // The queue closed (the bridge stops): settle what is on its way.
    while let Some(sent) = window.next().await {
        settle(&flow, &counters, &mut outage, sent);
    }
}

/// Counts one publish once its outcome comes back; a run of failures is logged when it starts,
/// with its reason, and when it ends, with how many messages it dropped.
fn settle(flow: &Flow, counters: &Counters, outage: &mut Outage, sent: Sent) {
    match sent.outcome {
        Ok(()) => {
            outage.end(flow);
            Counters::add(&counters.forwarded, 1);
        }
        Err(error) => {
            // Refused for want of a connection, it never left, so it will not be heard back.
            if sent.echo && error.kind() == TransportErrorKind::NotConnected {
                flow.to.forget_echo(&sent.topic, &sent.payload);
            }
            let why = match error.kind() {
                TransportErrorKind::NotConnected
                | TransportErrorKind::Disconnected
                | TransportErrorKind::Unreachable => "the side to publish on is away",
                _ => "the side to publish on refused a message",
            };
            outage.begin(flow, why, &error);
            outage.dropped += 1;
            Counters::add(&counters.dropped, 1);
        }
    }
}

/// A run of messages a route's writer could not publish.
#[derive(Default)]
struct Outage {
    /// Whether the last message failed.
    on: bool,
    /// Messages dropped in this run.
    dropped: u64,
}

impl Outage {
    fn begin(&mut self, flow: &Flow, why: &str, error: &TransportError) {
        if !self.on {
            self.on = true;
            self.dropped = 0;
            tracing::warn!(route = %flow.name, %error, "{why}; dropping messages");
        }
    }

    fn end(&mut self, flow: &Flow) {
        if self.on {
            self.on = false;
            tracing::info!(route = %flow.name, dropped = self.dropped, "publishing again");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RPC routes.

/// An RPC route's far side: the RPC that answers, and a client of it once one connected.
struct Forward {
    route: String,
    to: Arc<SideState>,
    target: String,
    timeout: Duration,
    client: tokio::sync::Mutex<Option<RpcClient<Value, Value>>>,
    counters: Arc<Counters>,
}

impl Forward {
    /// The client of the far RPC, connecting it the first time.
    async fn client(&self) -> Result<RpcClient<Value, Value>, TransportError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = &*slot {
            return Ok(client.clone());
        }
        let client = self.to.node.rpc_client::<Value, Value>(&self.target).await?;
        Ok(slot.insert(client.with_timeout(self.timeout)).clone())
    }

    /// Calls the far RPC; its own error passes through unchanged, and the bridge's failures
    /// become errors that say which side failed and how.
    async fn call(&self, request: Value) -> Result<Value, RemoteError> {
        let client = self.client().await.map_err(|error| {
            Counters::add(&self.counters.failed, 1);
            self.away(error)
        })?;
        match client.call(&request).await {
            Ok(answer) => {
                Counters::add(&self.counters.forwarded, 1);
                Ok(answer)
            }
            Err(CallError::Remote(error)) => {
                Counters::add(&self.counters.forwarded, 1);
                Err(error)
            }
            Err(CallError::Timeout { .. }) => {
                Counters::add(&self.counters.failed, 1);
                Err(RemoteError::new(
                    ErrorCode::Timeout,
                    names::INTERNAL,
                    format!(
                        "bridge: `{}` on side {} did not answer within {:?}",
                        self.target, self.to.side, self.timeout
                    ),
                ))
            }
            Err(CallError::Transport(error)) => {
                Counters::add(&self.counters.failed, 1);
                Err(self.away(error))
            }
            Err(other) => {
                Counters::add(&self.counters.failed, 1);
                Err(RemoteError::internal(format!("bridge: `{}`: {other}", self.target)))
            }
        }
    }

    fn away(&self, error: TransportError) -> RemoteError {
        RemoteError::new(
            ErrorCode::ServiceUnavailable,
            names::INTERNAL,
            format!("bridge: side {} ({}) is unreachable: {error}", self.to.side, self.to.url()),
        )
    }
}

async fn serve(
    side: &SideState,
    name: &str,
    forward: &Arc<Forward>,
) -> Result<RpcService, TransportError> {
    let forward = forward.clone();
    side.node
        .rpc_service(name, move |request: Value| {
            let forward = forward.clone();
            async move { forward.call(request).await }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_commlib_reads_them() {
        assert!(matches("sensors.*", "sensors.front"));
        assert!(matches("sensors.*", "sensors.front.temp"));
        assert!(!matches("sensors.*", "sensors"));
        assert!(matches("sensors.*.temp", "sensors.front.temp"));
        assert!(!matches("sensors.*.temp", "sensors.front.temp.raw"));
        assert!(!matches("sensors.*.temp", "actuators.front.temp"));
        assert!(matches("sensors.front", "sensors.front"));
        assert!(!matches("sensors.front", "sensors.front.x"));
        assert!(matches(">", "a.b"));
    }

    #[test]
    fn pattern_routes_swap_the_literal_head() {
        let map = PatternMap::new("sensors.*", "site1.sensors");
        assert_eq!(map.map("sensors.front.temp"), "site1.sensors.front.temp");
        let map = PatternMap::new("plant.sensors.*.temp", "remote");
        assert_eq!(map.map("plant.sensors.front.temp"), "remote.front.temp");
        let map = PatternMap::new("sensors.*", "");
        assert_eq!(map.map("sensors.front"), "sensors.front");
    }

    #[test]
    fn echoes_are_recognised_once_and_bounded() {
        let mut echoes = Echoes::default();
        echoes.expect(key("a", b"1"));
        echoes.expect(key("a", b"1"));
        assert!(echoes.take(&key("a", b"1")));
        assert!(echoes.take(&key("a", b"1")));
        assert!(!echoes.take(&key("a", b"1")));
        assert!(!echoes.take(&key("a", b"2")));
        for n in 0..ECHO_CAPACITY + 10 {
            echoes.expect(key("b", n.to_string().as_bytes()));
        }
        assert_eq!(echoes.order.len(), ECHO_CAPACITY);
        assert_eq!(echoes.counts.len(), ECHO_CAPACITY);
        assert!(!echoes.take(&key("b", b"0")), "the oldest were forgotten");
    }

    #[test]
    fn routes_that_cannot_run_are_refused() {
        let bad = [
            (Route::topic(Side::A, "", "x"), "empty"),
            (Route::topic(Side::A, "a.*", "x"), "wildcard"),
            (Route::topic(Side::A, "a..b", "x"), "empty segment"),
            (Route::pattern(Side::A, "a.>.b", "x"), "before its end"),
            (Route::pattern(Side::A, "a.*", "x.*"), "wildcard"),
            (Route::rpc(Side::B, "a", "b.>"), "wildcard"),
            (Route::interface(Side::B, "", "kitchen"), "not an interface name"),
            (Route::interface(Side::B, "Thermostat/x", "kitchen"), "not an interface name"),
            (Route::interface(Side::B, "Thermostat", ""), "instance is empty"),
        ];
        for (route, reason) in bad {
            let error = route.check(false).expect_err(&route.to_string());
            assert!(error.contains(reason), "{route}: {error}");
        }
        assert!(Route::topic(Side::A, "x", "x").check(true).is_err());
        assert!(Route::topic(Side::A, "x", "x").check(false).is_ok());
        assert!(Route::rpc(Side::A, "x", "x").check(true).is_err());
        assert!(Route::pattern(Side::A, "s.*", "").check(true).is_err());
        assert!(Route::pattern(Side::A, "s.*", "t").check(true).is_ok());
        assert!(Route::pattern(Side::A, "s.*", "s.t").check(true).is_err());
        assert!(Route::interface(Side::B, "Thermostat", "k").check(true).is_err());
        assert!(Route::interface(Side::B, "Thermostat", "k").check(false).is_ok());
    }

    #[tokio::test]
    async fn interface_routes_that_would_loop_are_refused() {
        let a = Endpoint::parse("unix:///nonexistent/bridge-a").expect("a URL");
        let b = Endpoint::parse("unix:///nonexistent/bridge-b").expect("a URL");
        let both_ways = vec![
            Route::interface(Side::B, "Thermostat", "kitchen"),
            Route::interface(Side::A, "Thermostat", "kitchen"),
        ];
        let started = Bridge::start(a.clone(), b, both_ways, BridgeOptions::default()).await;
        match started {
            Err(BridgeError::InvalidRoute { route, reason }) => {
                assert_eq!(route, "interface a:Thermostat/kitchen -> b");
                assert!(reason.contains("in a loop"), "{reason}");
            }
            other => panic!("not refused: {other:?}"),
        }
        let one_endpoint = vec![Route::interface(Side::B, "Thermostat", "kitchen")];
        let started = Bridge::start(a.clone(), a, one_endpoint, BridgeOptions::default()).await;
        match started {
            Err(BridgeError::InvalidRoute { reason, .. }) => {
                assert!(reason.contains("one endpoint"), "{reason}");
            }
            other => panic!("not refused: {other:?}"),
        }
    }
}
