//! The contract between the runtime core and a transport.
//!
//! A transport moves [`ClientMessage`]s and [`ServerMessage`]s; it never interprets payloads.
//! The core owns correlation, timeouts, property state and dispatch. A transport crate
//! implements [`Connector`], [`Binder`] and [`Discoverer`] for its endpoint type, and the facade
//! picks one from a URL.
//!
//! Incoming messages are pushed into an inbox ([`ClientInbox`], [`ServerInbox`]) straight from the
//! transport's reader task, so a reply reaches its waiting caller with no extra channel hop.

use std::{
    fmt::{Debug, Display},
    future::Future,
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use crate::{
    context::{PeerCredentials, PeerId},
    descriptor::InterfaceDescriptor,
    error::TransportError,
    message::{ClientMessage, RequestId, ServerMessage},
};

/// A boxed, sendable future, as used by the object-safe transport traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a client needs to reach one service instance.
#[derive(Debug, Clone)]
pub struct ServiceTarget {
    /// The interface the client was generated from.
    pub interface: Arc<InterfaceDescriptor>,
    /// The service instance id; `"default"` unless the user chose one.
    pub instance: String,
    /// How the transport names the interface's members.
    pub naming: Naming,
}

impl ServiceTarget {
    /// An instance of a generated interface, in the transport's own layout.
    pub fn new(interface: Arc<InterfaceDescriptor>, instance: impl Into<String>) -> Self {
        ServiceTarget { interface, instance: instance.into(), naming: Naming::Interface }
    }

    /// One endpoint of a node (the API without codegen): its methods and signals are named by
    /// themselves; see [`Naming::Node`].
    pub fn node(interface: Arc<InterfaceDescriptor>, instance: impl Into<String>) -> Self {
        ServiceTarget { interface, instance: instance.into(), naming: Naming::Node }
    }
}

/// The methods a node's action `X` is served as under [`Naming::Node`]: `X.send_goal`,
/// `X.cancel_goal` and `X.get_result`, the RPCs of commlib-py's action protocol. A transport
/// that carries goals as they are (a Unix socket) has no use for them; a broker's node server
/// maps their requests onto the core's goals. The names are `switchboard_wire::node`'s.
pub const NODE_ACTION_RPCS: [&str; 3] = switchboard_wire::node::ACTION_RPCS;

/// How a transport names what a [`ServiceTarget`] serves or reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Naming {
    /// An instance of a generated interface: the transport's own layout (on a broker
    /// `{Interface}.{instance}.method.{m}`, …), with its handshake or presence and its
    /// compatibility check.
    #[default]
    Interface,
    /// An endpoint of a node, the API without codegen: each method is an RPC name and each
    /// signal a topic, both dotted (`demo.add_two_ints`, `sensors.front`), placed where
    /// commlib-py places them on brokers that it speaks. No handshake, presence or hash: a
    /// call goes out at once and, with nobody serving it, times out. On a client, every
    /// subscription is a topic filter (`*` one segment, `>` the rest) and its messages arrive
    /// as [`ServerMessage::Published`], with the
    /// topic each was published on.
    Node,
}

/// The default instance id when none is given.
pub const DEFAULT_INSTANCE: &str = "default";

/// Opens client connections. Implemented by each transport's endpoint type.
pub trait Connector: Send + Sync + Debug {
    /// Connects to the service and completes any handshake before returning.
    ///
    /// The transport keeps the connection alive afterwards: if it drops, the transport reports
    /// [`ClientInbox::disconnected`], reconnects by itself, and calls [`ClientInbox::reconnected`]
    /// to learn which subscriptions to restore.
    fn connect(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ClientInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ClientTransport>, TransportError>>;
}

/// Serves one service instance. Implemented by each transport's endpoint type.
pub trait Binder: Send + Sync + Debug {
    /// Starts accepting clients for `target` and delivers their messages to `inbox`.
    fn bind(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ServerInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ServerTransport>, TransportError>>;
}

/// The sending half of a client connection.
pub trait ClientTransport: Send + Sync + Debug {
    /// Sends one message to the server. Fails at once when there is no connection.
    fn send(&self, message: ClientMessage) -> BoxFuture<'_, Result<(), TransportError>>;

    /// Whether waiting before reading on slows the server down. True for a direct connection,
    /// whose sender waits for room; false where a broker sits in between, since it would pile
    /// messages up and drop beyond its own limits. Only a transport that can push back is handed
    /// [`Backpressure`] by [`ClientInbox::deliver`]; for the others a full local reader misses
    /// messages, and is told how many.
    fn can_push_back(&self) -> bool;

    /// Closes the connection and stops reconnecting.
    fn close(&self);
}

/// Where a client transport delivers what it receives. Implemented by the core.
pub trait ClientInbox: Send + Sync {
    /// A message arrived from the server.
    ///
    /// Returns [`Backpressure`] when a local reader (a signal stream, a goal's feedback reader)
    /// has no room for it: the transport must await that before it reads anything else from
    /// its connection, so that a fast sender is slowed down instead of messages being dropped.
    #[must_use = "a transport must wait for a full reader before reading on"]
    fn deliver(&self, message: ServerMessage) -> Option<Backpressure>;

    /// The request `id` cannot be answered: the transport learned that it reached no server (a
    /// broker said no one receives it, as NATS does with "no responders"). It fails with `error`
    /// at once instead of waiting for its deadline.
    fn request_failed(&self, id: RequestId, error: TransportError);

    /// Whether the request `id` still waits for its answer (it has not been answered, timed
    /// out or abandoned). A transport that waits for each answer on its own (a reply queue
    /// per request) stops waiting once this is false; the default says yes.
    fn awaits(&self, id: RequestId) -> bool {
        let _ = id;
        true
    }

    /// The connection was lost; every request in flight must fail with this error.
    fn disconnected(&self, error: TransportError);

    /// The server that runs goal `goal` is gone while the connection stays up (one of several
    /// replicas died): waiting for the goal ends with `error` at once, and the client stops
    /// following it. The default does nothing.
    fn goal_lost(&self, goal: &crate::action::GoalId, error: TransportError) {
        let _ = (goal, error);
    }

    /// A lost connection was restored. Returns the messages (subscriptions and watches)
    /// the transport must send before anything else.
    fn reconnected(&self) -> Vec<ClientMessage>;

    /// The transport checked the server it (re)connected to with [`compat::check`]: from now
    /// on, uses of the members `agreement` says the server lacks fail before anything is sent.
    /// Called before the messages of [`reconnected`](Self::reconnected) are asked for; a
    /// transport that never calls it leaves every member to the server to refuse.
    ///
    /// [`compat::check`]: crate::compat::check
    fn agreed(&self, agreement: crate::compat::Agreement) {
        let _ = agreement;
    }
}

/// A delivery waiting for a full local reader; see [`ClientInbox::deliver`].
///
/// It completes when the reader has taken the message, when the reader goes away, or after the
/// client's `slow_reader_timeout`: a reader still full then starts missing messages (and is told
/// so), so one stalled reader holds its connection back for at most that long.
#[must_use = "a transport must wait for a full reader before reading on"]
pub struct Backpressure(BoxFuture<'static, ()>);

impl Backpressure {
    /// Wraps the wait for a reader.
    pub fn new(wait: impl Future<Output = ()> + Send + 'static) -> Self {
        Backpressure(Box::pin(wait))
    }
}

impl Future for Backpressure {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl Debug for Backpressure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Backpressure")
    }
}

/// How a server transport delivers signals and property changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fanout {
    /// There is no broker: the core tracks subscribers and sends to each [`Peer`] itself.
    PerPeer,
    /// A broker fans out: the core calls [`ServerTransport::publish`] once.
    Broker,
}

/// The serving half of a transport.
pub trait ServerTransport: Send + Sync + Debug {
    /// Who fans out signals and property values.
    fn fanout(&self) -> Fanout;

    /// Publishes a signal or property value to every subscriber, for [`Fanout::Broker`] transports.
    fn publish(&self, message: ServerMessage) -> BoxFuture<'_, Result<(), TransportError>>;

    /// Stops accepting clients and closes every connection. Completes once whatever the
    /// transport says on the way out (an MQTT server's farewell) has left the process, waiting
    /// for a bounded time the transport chooses, so a process may exit right after.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Where a server transport delivers what clients send. Implemented by the core.
pub trait ServerInbox: Send + Sync {
    /// A client sent a message.
    fn deliver(&self, peer: &Peer, message: ClientMessage);

    /// A client connected (after any handshake). Transports call it so the core knows every
    /// connected peer, for events to one client; the default does nothing.
    ///
    /// A transport that calls it calls it for every peer, before delivering anything from it:
    /// from then on the core no longer looks the sender of each message up.
    fn peer_connected(&self, peer: &Peer) {
        let _ = peer;
    }

    /// A client went away; the core forgets its subscriptions.
    fn peer_gone(&self, peer: PeerId);
}

/// A connected client, as the server sees it: an identity and a way to send to it.
#[derive(Clone, Debug)]
pub struct Peer {
    link: Arc<dyn PeerLink>,
}

/// The transport side of a [`Peer`].
pub trait PeerLink: Send + Sync + Debug {
    /// The connection's id.
    fn id(&self) -> PeerId;

    /// The peer process's credentials, when the transport knows them.
    fn credentials(&self) -> Option<PeerCredentials>;

    /// Queues a message to this peer without waiting.
    ///
    /// A transport with bounded queues applies its slow-consumer policy here and returns an error
    /// when the message was not queued.
    fn send(&self, message: ServerMessage) -> Result<(), TransportError>;

    /// Queues a message to this peer, waiting (for a bounded time the transport chooses, which
    /// may be none) while its queue is full. Streams of signals and goal feedback use it. The
    /// Unix transport never waits here: its per-peer stream queue absorbs bursts, and a peer
    /// whose queue is full is disconnected at once, so one slow subscriber cannot pace the
    /// emitter and everyone else with it. By default it is [`send`](Self::send).
    fn send_when_ready(&self, message: ServerMessage) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(std::future::ready(self.send(message)))
    }
}

impl Peer {
    /// Wraps a transport's link.
    pub fn new(link: Arc<dyn PeerLink>) -> Self {
        Peer { link }
    }

    /// The connection's id.
    pub fn id(&self) -> PeerId {
        self.link.id()
    }

    /// The peer process's credentials, when known.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        self.link.credentials()
    }

    /// Queues a message to this peer.
    pub fn send(&self, message: ServerMessage) -> Result<(), TransportError> {
        self.link.send(message)
    }

    /// Queues a message to this peer, waiting while its queue is full (see [`PeerLink::send_when_ready`]).
    pub async fn send_when_ready(&self, message: ServerMessage) -> Result<(), TransportError> {
        self.link.send_when_ready(message).await
    }
}

/// A running service that a transport's discovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// The interface name.
    pub interface: String,
    /// The instance.
    pub instance: String,
    /// The interface version.
    pub version: String,
    /// The interface title: the interface name when the file gives none.
    pub title: String,
    /// The description hash, when the server announces one.
    pub hash: Option<String>,
    /// How to reach it: a URL that connects to this instance (never with a password).
    pub address: String,
}

impl ServiceInfo {
    /// A service of `interface` at `instance`, reached at `address`; the title is the
    /// interface name and the version empty until set.
    pub fn new(
        interface: impl Into<String>,
        instance: impl Into<String>,
        address: impl Into<String>,
    ) -> Self {
        let interface = interface.into();
        ServiceInfo {
            title: interface.clone(),
            interface,
            instance: instance.into(),
            version: String::new(),
            hash: None,
            address: address.into(),
        }
    }
}

/// Finds the services running where an address points: a transport's own discovery, with its
/// credentials, TLS and layout. Implemented by each transport's endpoint type.
pub trait Discoverer: Send + Sync {
    /// The live services this address reaches, one per interface and instance, sorted by
    /// interface and instance. Waits at most about `wait` for answers; an unreachable
    /// transport is an error, an empty answer is not.
    fn discover(&self, wait: Duration) -> BoxFuture<'_, Result<Vec<ServiceInfo>, TransportError>>;
}

/// Bounds how long an address's waits may take, for code that does not know which waits the
/// transport makes (a tool's `--timeout`). Implemented by each transport's endpoint type.
pub trait BoundedWaits {
    /// The same address with each wait of connecting and discovering (reaching the server or
    /// broker, a handshake, waiting for a server to announce itself or to be discovered) cut to
    /// at most `limit`; waits already shorter stay as they are.
    ///
    /// A connect makes at most [`SEQUENTIAL_WAITS`] such waits one after the other, so it
    /// fails with the transport's own error within that many times `limit`.
    fn with_waits_within(&self, limit: Duration) -> Arc<dyn TransportAddress>;
}

/// How many bounded waits (see [`BoundedWaits`]) a connect may make one after the other on any
/// transport: reaching the server or broker, then its answer (a handshake, or a server's
/// announcement).
pub const SEQUENTIAL_WAITS: u32 = 2;

/// A transport's address, for code that does not know the transport: it connects, binds,
/// discovers, bounds its waits, and displays as a URL that names it (never with a password).
///
/// The facade builds an `Endpoint` from one with `Endpoint::from_address`; every transport's
/// endpoint type is one.
pub trait TransportAddress: Connector + Binder + Discoverer + BoundedWaits + Display {}

impl<T: Connector + Binder + Discoverer + BoundedWaits + Display + ?Sized> TransportAddress for T {}

/// Where to serve or connect: a transport's endpoint plus a service instance id.
///
/// The facade's `Endpoint` implements it; generated code passes one to the core.
pub trait ServiceAddress: Connector + Binder {
    /// The service instance id.
    fn instance(&self) -> &str;
}
