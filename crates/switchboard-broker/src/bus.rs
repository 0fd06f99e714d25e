//! The contract between the brokered layer and a broker adapter: [`Bus`], one connection to a
//! message broker that can publish to topics, send to work queues, subscribe and consume.
//!
//! A bus knows nothing about interfaces, envelopes or correlation; the layer above does all of
//! that once for every broker.

use std::{borrow::Cow, fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use switchboard_core::{TransportError, transport::BoxFuture};
use switchboard_wire::filter::{self, Wildcards};
use tokio::sync::watch;

use crate::options::BrokerOptions;

/// One connection to a message broker.
///
/// Addresses are segments separated by `.`. A subscription filter may use `*` for one segment
/// and `>` for all the rest; the adapter maps that onto its broker's syntax.
///
/// The adapter reconnects by itself and reports its [`LinkState`]. A lost link takes every
/// subscription with it: the adapter does not replay them, the layer does once the link is up.
pub trait Bus: Send + Sync + fmt::Debug + 'static {
    /// What this broker is and how the layer talks over it.
    fn profile(&self) -> &BusProfile;

    /// Fan-out publish: every subscriber whose filter matches `topic` receives the message.
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>>;

    /// Publishes a presence announcement (a heartbeat, or an answer to a discovery probe) to
    /// `topic`, as [`publish`](Self::publish) does (the default).
    ///
    /// Presence is what tells peers a server or client is alive, so it must keep its pace
    /// whatever else the connection carries. An adapter whose broker reads a connection only
    /// as fast as its queues take the messages (RabbitMQ holds a publishing connection back
    /// under load) sends presence on a connection of its own, so that a burst of signals does
    /// not delay it. A farewell is [`publish`](Self::publish)ed instead, behind everything the
    /// connection sent before it.
    fn announce<'a>(
        &'a self,
        topic: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        self.publish(topic, message)
    }

    /// Work-queue send: exactly one consumer of `queue` receives the message (a Redis list, the
    /// AMQP default exchange, a NATS subject whose subscribers share a queue group).
    fn send<'a>(
        &'a self,
        queue: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>>;

    /// Subscribes to every topic matching `filter`; `sink` receives each message. When this
    /// returns, the subscription is in force at the broker.
    fn subscribe<'a>(
        &'a self,
        filter: &'a str,
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>>;

    /// Consumes `queues` as one of their competing consumers; `sink` receives each message.
    fn consume<'a>(
        &'a self,
        queues: &'a [String],
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>>;

    /// Ends a subscription or consumption; an id of a lost link's subscription is ignored.
    fn unsubscribe(&self, id: SubscriptionId);

    /// Takes the next message off `queue`, the queue of one request's reply, waiting at most
    /// `wait` for it; `None` when none came. A message sent to the queue meanwhile waits there
    /// for the next call.
    ///
    /// A node's client receives every reply this way where answers go to queues
    /// ([`ReplyRoute::Queue`]), since commlib-py answers in the queue the request names and
    /// never says which request it answers. The default consumes the queue for that long; an
    /// adapter where a consumer costs a connection (Redis) does better.
    fn receive<'a>(
        &'a self,
        queue: &'a str,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Option<BusMessage>, TransportError>> {
        Box::pin(async move {
            let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
            let sink: Sink = Arc::new(move |_: &str, message| {
                let _ = sender.send(message);
            });
            let id = self.consume(&[queue.to_owned()], sink).await?;
            let first = tokio::time::timeout(wait, received.recv()).await.ok().flatten();
            self.unsubscribe(id);
            // One may have come between the timeout and the end of the consumption.
            Ok(first.or_else(|| received.try_recv().ok()))
        })
    }

    /// The link's state: `Up` after every (re)connect, with a new generation each time, and
    /// `Down` while it is lost.
    fn link(&self) -> watch::Receiver<LinkState>;

    /// Sends what is still queued (for a bounded time) and closes the connection.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Opens bus connections: what a broker URL parses into. Each server and client opened on a
/// broker address gets a connection of its own.
pub trait BusConnector: Send + Sync + fmt::Debug + fmt::Display + 'static {
    /// Opens a connection; `name` identifies it to the broker where the broker shows names.
    /// Reaching the broker may take at most `options.connect_timeout`, and the connection
    /// reconnects as `options.backoff` says.
    fn open<'a>(
        &'a self,
        name: &'a str,
        options: &'a BrokerOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Bus>, TransportError>>;
}

/// Whether `topic` matches a subscription's `filter` as [`Bus`] reads filters. An adapter whose
/// broker matches more loosely (a Redis glob's `*` spans dots; AMQP's `#` matches no segment)
/// checks each message it receives with this.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    filter::matches(filter, topic, Wildcards::Layer)
}

/// Where a received message goes: called with the address it arrived on (the topic, or the
/// queue) and the message. It must not block: it runs on the adapter's reader.
pub type Sink = Arc<dyn Fn(&str, BusMessage) + Send + Sync>;

/// Identifies one subscription or consumption on one bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(pub u64);

/// One message on a bus.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BusMessage {
    /// Where an answer goes, when the broker carries that outside the body (a NATS reply
    /// subject, AMQP's `reply_to` property).
    pub reply_to: Option<String>,
    /// The request's correlation id outside the body, on brokers that carry one (AMQP's
    /// `correlation_id` property, which commlib-py's AMQP services echo in their answers);
    /// `None` elsewhere.
    pub correlation_id: Option<String>,
    /// Headers, on brokers that have them; empty elsewhere.
    pub headers: Headers,
    /// The body, never re-encoded by the adapter.
    pub body: Bytes,
    /// What the broker itself says about a message it generated.
    pub status: Option<BusStatus>,
}

impl BusMessage {
    /// A message with just a body.
    pub fn new(body: Bytes) -> Self {
        BusMessage { body, ..BusMessage::default() }
    }
}

/// A message the broker generated instead of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusStatus {
    /// Nobody receives what was sent to the request's address (NATS "no responders"); the
    /// message arrives on the request's reply address.
    NoResponders,
}

/// Message headers: names and values, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(Cow<'static, str>, String)>);

impl Headers {
    /// Adds a header.
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The first value of header `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_ref(), v.as_str()))
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IntoIterator for Headers {
    type Item = (Cow<'static, str>, String);
    type IntoIter = std::vec::IntoIter<(Cow<'static, str>, String)>;

    /// Every header, in order, taken out of the message.
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<N: Into<Cow<'static, str>>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        Headers(pairs.into_iter().map(|(n, v)| (n.into(), v.into())).collect())
    }
}

/// What a broker is and how the layer talks over it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusProfile {
    /// The broker's name, for messages: `nats`, `redis`, `memory`.
    pub name: &'static str,
    /// Where the layer's metadata travels.
    pub envelope: EnvelopeStyle,
    /// How answers find their way back to a client.
    pub replies: ReplyRoute,
    /// Whether the broker carries a message's reply address outside its body (NATS reply
    /// subjects, AMQP's `reply_to`), so that even an unreadable body can be answered.
    pub reply_to_outside_body: bool,
    /// Whether a message sent to a queue nobody consumes yet is lost (AMQP's default exchange
    /// drops it) rather than kept until someone does (a Redis list): then a reply queue is
    /// consumed before its request goes out.
    pub drops_unconsumed: bool,
}

impl BusProfile {
    /// A profile.
    pub fn new(
        name: &'static str,
        envelope: EnvelopeStyle,
        replies: ReplyRoute,
        reply_to_outside_body: bool,
    ) -> Self {
        BusProfile { name, envelope, replies, reply_to_outside_body, drops_unconsumed: false }
    }

    /// Says that a message sent to a queue nobody consumes is lost (see
    /// [`drops_unconsumed`](Self::drops_unconsumed)).
    pub fn dropping_unconsumed(mut self) -> Self {
        self.drops_unconsumed = true;
        self
    }
}

/// Where the layer's metadata travels; see `docs/wire/brokers.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeStyle {
    /// In message headers (`sb-…`); the body is the payload unchanged (NATS).
    Headers,
    /// In a JSON body that commlib-py reads: `{"header":{…},"data":<payload>}` (Redis, AMQP).
    JsonBody,
}

/// How answers find their way back to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyRoute {
    /// Each request names a reply subject of its own under the client's inbox
    /// (`_sb.inbox.<client>.<request>`), which the client subscribes to with one wildcard (NATS,
    /// MQTT); NATS answers a request nobody receives with [`BusStatus::NoResponders`].
    Subjects,
    /// Every answer goes to the client's inbox queue and carries the request's correlation id
    /// in its envelope (Redis, AMQP).
    Queue,
}

/// The state of a bus connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LinkState {
    /// Connected; the generation grows by one with every reconnect.
    Up {
        /// Which connection this is.
        generation: u64,
    },
    /// Lost; the adapter is reconnecting.
    Down {
        /// The generation that was lost.
        generation: u64,
        /// Why.
        error: TransportError,
    },
    /// Closed by its owner; it stays closed.
    Closed,
}
