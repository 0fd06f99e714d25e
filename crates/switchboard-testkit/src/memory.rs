//! An in-memory broker for the brokered layer: topics with `*` and `>` filters, work queues
//! with competing consumers, and a link a test can take down and bring back, as a broker
//! restart would. Every conformance body runs on it with no broker process and no socket.
//!
//! It has two profiles, so both envelope styles of the layer run end to end:
//! [`MemoryBroker::nats_like`] (headers, reply subjects, "no responders") and
//! [`MemoryBroker::redis_like`] (commlib-py's JSON body, inbox queues, queued requests that
//! wait for a consumer).

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    fmt,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
};
use switchboard_core::sync::lock;

use switchboard::Endpoint;
use switchboard_broker::{
    BrokerAddress, BrokerOptions, Bus, BusConnector, BusMessage, BusProfile, BusStatus,
    EnvelopeStyle, LinkState, ReplyRoute, Sink, SubscriptionId, filter_matches,
};
use switchboard_core::{TransportError, TransportErrorKind, transport::BoxFuture};
use tokio::sync::{mpsc, watch};

/// How many messages a queue without a consumer keeps; more push out the oldest.
const BACKLOG: usize = 100_000;

/// A broker in this process. Cheap to make: give each test its own.
#[derive(Debug)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

/// The broker itself, shared by its handle and its connections.
#[derive(Debug)]
struct Inner {
    name: String,
    profile: BusProfile,
    state: Mutex<Broker>,
}

#[derive(Debug, Default)]
struct Broker {
    /// Every address used and how, once [`MemoryBroker::record_addresses`] was called.
    recorded: Option<BTreeSet<(AddressUse, String)>>,
    down: bool,
    generation: u64,
    next_id: u64,
    connections: Vec<Weak<MemoryBus>>,
    topics: Vec<Subscriber>,
    queues: HashMap<String, Queue>,
}

#[derive(Default)]
struct Queue {
    consumers: Vec<Subscriber>,
    turn: usize,
    backlog: VecDeque<BusMessage>,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("consumers", &self.consumers.len())
            .field("backlog", &self.backlog.len())
            .finish()
    }
}

#[derive(Clone)]
struct Subscriber {
    id: u64,
    filter: String,
    connection: Weak<MemoryBus>,
    sink: Sink,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber").field("id", &self.id).field("filter", &self.filter).finish()
    }
}

/// How a connection used an address of the broker (see [`MemoryBroker::recorded_addresses`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddressUse {
    /// Published to a topic.
    Publish,
    /// Sent to a queue.
    Send,
    /// Subscribed to topics with a filter.
    Subscribe,
    /// Consumed a queue.
    Consume,
}

impl Broker {
    fn record(&mut self, how: AddressUse, address: &str) {
        if let Some(recorded) = &mut self.recorded {
            recorded.insert((how, address.to_owned()));
        }
    }
}

impl MemoryBroker {
    /// From now on, remembers every address a connection publishes or sends to, subscribes or
    /// consumes, for a test of what the brokered layer puts on a broker. Off by default: the
    /// set grows with every request's reply subject.
    pub fn record_addresses(&self) {
        lock(&self.inner.state).recorded.get_or_insert_with(BTreeSet::new);
    }

    /// The addresses used since [`record_addresses`](Self::record_addresses), each with how.
    pub fn recorded_addresses(&self) -> Vec<(AddressUse, String)> {
        lock(&self.inner.state).recorded.iter().flatten().cloned().collect()
    }

    /// A broker that behaves like NATS: metadata in headers, a reply subject per request, and
    /// an immediate "no responders" for a request nobody receives.
    pub fn nats_like(name: &str) -> Arc<Self> {
        Self::new(
            name,
            BusProfile::new("memory", EnvelopeStyle::Headers, ReplyRoute::Subjects, true),
        )
    }

    /// A broker that behaves like Redis with commlib-py's envelope: metadata in a JSON body,
    /// answers in the client's inbox queue, and requests that wait in their queue for a
    /// consumer. It carries reply addresses outside the body, as AMQP does.
    pub fn redis_like(name: &str) -> Arc<Self> {
        Self::new(name, BusProfile::new("memory", EnvelopeStyle::JsonBody, ReplyRoute::Queue, true))
    }

    fn new(name: &str, profile: BusProfile) -> Arc<Self> {
        let state = Mutex::new(Broker { generation: 1, ..Broker::default() });
        Arc::new(MemoryBroker { inner: Arc::new(Inner { name: name.to_owned(), profile, state }) })
    }

    /// An endpoint for `instance` on this broker, with default options.
    pub fn endpoint(self: &Arc<Self>, instance: &str) -> Endpoint {
        self.endpoint_with(BrokerOptions::default(), instance)
    }

    /// An endpoint for `instance` on this broker, with `options`.
    ///
    /// # Panics
    /// If `instance` is not a valid instance id.
    pub fn endpoint_with(self: &Arc<Self>, options: BrokerOptions, instance: &str) -> Endpoint {
        let address = BrokerAddress::new(self.clone()).with_options(options);
        Endpoint::from_address(Arc::new(address), instance).expect("a valid instance id")
    }

    /// The broker goes away, as a restarted broker process would: every connection's link goes
    /// down, every subscription and every queued message is lost, and sending fails.
    pub fn stop(&self) {
        let inner = &self.inner;
        let connections = {
            let mut state = lock(&inner.state);
            state.down = true;
            state.topics.clear();
            state.queues.clear();
            state.connections.iter().filter_map(Weak::upgrade).collect::<Vec<_>>()
        };
        let generation = lock(&inner.state).generation;
        for connection in connections {
            connection.link.send_replace(LinkState::Down {
                generation,
                error: TransportError::disconnected(format!(
                    "the memory broker `{}` went away",
                    inner.name
                )),
            });
        }
    }

    /// The broker is back: every connection's link comes up again, with a new generation.
    pub fn start(&self) {
        let (connections, generation) = {
            let mut state = lock(&self.inner.state);
            state.down = false;
            state.generation += 1;
            state.connections.retain(|c| c.strong_count() > 0);
            (
                state.connections.iter().filter_map(Weak::upgrade).collect::<Vec<_>>(),
                state.generation,
            )
        };
        for connection in connections {
            if !connection.closed.load(Ordering::Acquire) {
                connection.link.send_replace(LinkState::Up { generation });
            }
        }
    }
}

impl Inner {
    /// Routes a message to every matching topic subscriber (with `topics`) and to one consumer
    /// of the queue of that name (with `queues`); with `keep`, a queue without consumers keeps
    /// it until one comes. Returns how many received it (a kept message counts).
    fn route(
        &self,
        address: &str,
        message: BusMessage,
        topics: bool,
        queues: bool,
        keep: bool,
    ) -> usize {
        let mut deliveries = Vec::new();
        {
            let mut state = lock(&self.state);
            if topics {
                let matching = state.topics.iter().filter(|s| filter_matches(&s.filter, address));
                deliveries.extend(matching.cloned());
            }
            if queues {
                let queue = state.queues.entry(address.to_owned()).or_default();
                queue.consumers.retain(|c| c.connection.strong_count() > 0);
                if !queue.consumers.is_empty() {
                    queue.turn = (queue.turn + 1) % queue.consumers.len();
                    deliveries.push(queue.consumers[queue.turn].clone());
                } else if keep {
                    if queue.backlog.len() == BACKLOG {
                        queue.backlog.pop_front();
                    }
                    queue.backlog.push_back(message);
                    return 1;
                }
            }
        }
        let count = deliveries.len();
        for subscriber in deliveries {
            if let Some(connection) = subscriber.connection.upgrade() {
                connection.deliver(subscriber.sink, address, message.clone());
            }
        }
        count
    }
}

impl fmt::Display for MemoryBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memory://{}", self.inner.name)
    }
}

impl BusConnector for MemoryBroker {
    fn open<'a>(
        &'a self,
        _name: &'a str,
        _options: &'a BrokerOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Bus>, TransportError>> {
        let inner = &self.inner;
        let generation = {
            let state = lock(&inner.state);
            if state.down {
                return Box::pin(std::future::ready(Err(TransportError::new(
                    TransportErrorKind::Unreachable,
                    format!("the memory broker `{}` is down", inner.name),
                ))));
            }
            state.generation
        };
        let (deliveries, mut pending) = mpsc::unbounded_channel::<Delivery>();
        tokio::spawn(async move {
            while let Some((sink, address, message)) = pending.recv().await {
                sink(&address, message);
            }
        });
        let bus = Arc::new_cyclic(|me| MemoryBus {
            broker: inner.clone(),
            link: watch::Sender::new(LinkState::Up { generation }),
            deliveries,
            closed: AtomicBool::new(false),
            me: me.clone(),
        });
        lock(&inner.state).connections.push(Arc::downgrade(&bus));
        Box::pin(std::future::ready(Ok(bus as Arc<dyn Bus>)))
    }
}

/// A message on its way to a subscriber's sink.
type Delivery = (Sink, String, BusMessage);

/// One connection to a [`MemoryBroker`]. Each delivers in order, on a task of its own, like a
/// socket read by one reader.
pub struct MemoryBus {
    broker: Arc<Inner>,
    link: watch::Sender<LinkState>,
    deliveries: mpsc::UnboundedSender<Delivery>,
    closed: AtomicBool,
    me: Weak<MemoryBus>,
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBus").field("broker", &self.broker.name).finish_non_exhaustive()
    }
}

impl MemoryBus {
    fn deliver(&self, sink: Sink, address: &str, message: BusMessage) {
        if !self.closed.load(Ordering::Acquire) {
            let _ = self.deliveries.send((sink, address.to_owned(), message));
        }
    }

    fn check_up(&self) -> Result<(), TransportError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TransportError::new(TransportErrorKind::Closed, "the bus was closed"));
        }
        if lock(&self.broker.state).down {
            return Err(TransportError::not_connected(format!(
                "the memory broker `{}` is down",
                self.broker.name
            )));
        }
        Ok(())
    }

    fn add(
        &self,
        filters: &[String],
        sink: Sink,
        queue: bool,
    ) -> Result<SubscriptionId, TransportError> {
        self.check_up()?;
        for filter in filters {
            if !valid_filter(filter, !queue) {
                return Err(TransportError::new(
                    TransportErrorKind::InvalidAddress,
                    format!("`{filter}` is not a valid {}", if queue { "queue" } else { "filter" }),
                ));
            }
        }
        let me = self.me.clone();
        let mut state = lock(&self.broker.state);
        let how = if queue { AddressUse::Consume } else { AddressUse::Subscribe };
        for filter in filters {
            state.record(how, filter);
        }
        state.next_id += 1;
        let id = state.next_id;
        let mut backlog = Vec::new();
        for filter in filters {
            let subscriber = Subscriber {
                id,
                filter: filter.clone(),
                connection: me.clone(),
                sink: sink.clone(),
            };
            if queue {
                let queue = state.queues.entry(filter.clone()).or_default();
                queue.consumers.push(subscriber);
                backlog.extend(queue.backlog.drain(..).map(|m| (filter.clone(), m)));
            } else {
                state.topics.push(subscriber);
            }
        }
        drop(state);
        for (address, message) in backlog {
            self.deliver(sink.clone(), &address, message);
        }
        Ok(SubscriptionId(id))
    }

    /// Publishes (`send` false) or sends to a queue (`send` true), as this broker's profile
    /// does: like NATS both reach topic subscribers and one queue consumer, and a request nobody
    /// receives is answered "no responders"; like Redis topics and queues are apart, and a queue
    /// keeps what no consumer takes.
    fn publish_now(
        &self,
        address: &str,
        message: BusMessage,
        send: bool,
    ) -> Result<(), TransportError> {
        self.check_up()?;
        let how = if send { AddressUse::Send } else { AddressUse::Publish };
        lock(&self.broker.state).record(how, address);
        let nats_like = self.broker.profile.replies == ReplyRoute::Subjects;
        let reply_to = message.reply_to.clone();
        let reached = match (nats_like, send) {
            (true, _) => self.broker.route(address, message, true, true, false),
            (false, false) => self.broker.route(address, message, true, false, false),
            (false, true) => self.broker.route(address, message, false, true, true),
        };
        if reached == 0
            && nats_like
            && let Some(reply_to) = reply_to
        {
            let status =
                BusMessage { status: Some(BusStatus::NoResponders), ..BusMessage::default() };
            self.broker.route(&reply_to, status, true, true, false);
        }
        Ok(())
    }
}

impl Bus for MemoryBus {
    fn profile(&self) -> &BusProfile {
        &self.broker.profile
    }

    fn publish<'a>(
        &'a self,
        topic: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(std::future::ready(self.publish_now(topic, message, false)))
    }

    fn send<'a>(
        &'a self,
        queue: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(std::future::ready(self.publish_now(queue, message, true)))
    }

    fn subscribe<'a>(
        &'a self,
        filter: &'a str,
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>> {
        Box::pin(std::future::ready(self.add(&[filter.to_owned()], sink, false)))
    }

    fn consume<'a>(
        &'a self,
        queues: &'a [String],
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>> {
        Box::pin(std::future::ready(self.add(queues, sink, true)))
    }

    fn unsubscribe(&self, id: SubscriptionId) {
        let mut state = lock(&self.broker.state);
        state.topics.retain(|s| s.id != id.0);
        for queue in state.queues.values_mut() {
            queue.consumers.retain(|s| s.id != id.0);
        }
    }

    fn link(&self) -> watch::Receiver<LinkState> {
        self.link.subscribe()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.closed.store(true, Ordering::Release);
        {
            let mut state = lock(&self.broker.state);
            state.topics.retain(|s| !s.connection.ptr_eq(&self.me));
            for queue in state.queues.values_mut() {
                queue.consumers.retain(|s| !s.connection.ptr_eq(&self.me));
            }
        }
        self.link.send_replace(LinkState::Closed);
        Box::pin(std::future::ready(()))
    }
}

fn valid_filter(filter: &str, wildcards: bool) -> bool {
    let parts: Vec<&str> = filter.split('.').collect();
    parts.iter().enumerate().all(|(i, part)| {
        !part.is_empty()
            && !part.contains(char::is_whitespace)
            && match *part {
                "*" => wildcards,
                ">" => wildcards && i + 1 == parts.len(),
                _ => !part.contains(['*', '>']),
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert!(filter_matches("a.b.c", "a.b.c"));
        assert!(filter_matches("a.*.c", "a.b.c"));
        assert!(filter_matches("a.>", "a.b.c"));
        assert!(!filter_matches("a.>", "a"));
        assert!(!filter_matches("a.*", "a.b.c"));
        assert!(!filter_matches("a.b.c", "a.b"));
        assert!(!filter_matches("a.b", "a.b.c"));
        assert!(valid_filter("_sb.inbox.c1.>", true));
        assert!(!valid_filter("a.>.b", true));
        assert!(!valid_filter("a..b", true));
        assert!(!valid_filter("a.*", false));
    }
}
