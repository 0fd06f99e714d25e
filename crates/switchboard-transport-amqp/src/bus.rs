//! One AMQP connection as a [`Bus`]: publishes to `amq.topic`, work queues on the default
//! exchange, a channel per subscription, and a supervisor that reconnects.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ErrorKind, Event,
    options::{BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions},
    tcp::OwnedTLSConfig,
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use switchboard_broker::{
    BrokerOptions, Bus, BusMessage, BusProfile, EnvelopeStyle, Headers, LinkState, ReplyRoute,
    Sink, SubscriptionId,
};
use switchboard_core::{
    TransportError, TransportErrorKind, backoff::Backoff, transport::BoxFuture,
};
use tokio::{
    sync::{Notify, watch},
    task::AbortHandle,
};

use crate::AmqpConnector;

/// How often the supervisor looks at the connection's state while the link is up.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The exchange signals, properties and presence are published to.
const TOPICS: &str = "amq.topic";

/// How long the supervisor lets a reported error settle before it looks at the connection.
const SETTLE: Duration = Duration::from_millis(20);

/// How long closing waits for the broker to agree.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One connection to an AMQP broker.
pub(crate) struct AmqpBus {
    profile: BusProfile,
    link: Arc<Link>,
    next: AtomicU64,
    supervisor: AbortHandle,
}

impl std::fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpBus").field("server", &self.link.server).finish_non_exhaustive()
    }
}

/// The connection in force and the channel that publishes on it.
#[derive(Clone)]
struct Current {
    connection: Arc<Connection>,
    publisher: Channel,
}

/// A subscription's or consumer's channel and the tasks that read it.
struct Reader {
    channel: Channel,
    tasks: Vec<AbortHandle>,
}

impl Reader {
    fn end(self) {
        self.tasks.iter().for_each(AbortHandle::abort);
        if self.channel.status().connected() {
            let channel = self.channel;
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(CLOSE_TIMEOUT, channel.close(200, "done".into())).await;
            });
        }
    }
}

/// The link's state, its connection, and the readers of its subscriptions and consumers,
/// which a lost link ends.
struct Link {
    server: String,
    uri: String,
    /// With `amqps://`, the CAs (PEM) TLS trusts besides the system roots.
    tls: Option<Option<String>>,
    name: String,
    state: watch::Sender<LinkState>,
    up: AtomicBool,
    generation: AtomicU64,
    current: Mutex<Option<Current>>,
    readers: Mutex<HashMap<u64, Reader>>,
    /// Woken by a reader whose consumer ended: the link goes down at once, and the layer
    /// declares everything anew once it is back.
    lost: Notify,
    /// Woken by an error that may or may not have broken the connection (a channel's error
    /// looks the same): the supervisor looks at the connection's state at once.
    suspect: Notify,
    connect_timeout: Duration,
}

impl Link {
    /// Opens a connection and its publishing channel, and has its errors wake the supervisor.
    async fn open(self: &Arc<Self>) -> Result<Current, TransportError> {
        let properties = ConnectionProperties::default()
            .with_connection_name(LongString::from(self.name.as_bytes().to_vec()));
        let connecting = async {
            match &self.tls {
                None => Connection::connect(&self.uri, properties).await,
                Some(trusted) => {
                    let tls = OwnedTLSConfig { identity: None, cert_chain: trusted.clone() };
                    let runtime = lapin::runtime::default_runtime()?;
                    Connection::connect_with_config(&self.uri, properties, tls, runtime).await
                }
            }
        };
        let connection = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return Err(connect_error(&self.server, &error)),
            Err(_) => {
                return Err(TransportError::new(
                    TransportErrorKind::NotFound,
                    format!(
                        "cannot connect to the AMQP broker at {}: no answer within {:?}",
                        self.server, self.connect_timeout
                    ),
                ));
            }
        };
        let mut events = connection.events_listener();
        let link = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if let Event::Error(error) = event {
                    tracing::debug!(%error, "AMQP connection error");
                    match link.upgrade() {
                        Some(link) => link.suspect.notify_one(),
                        None => return,
                    }
                }
            }
        });
        let publisher = connection.create_channel().await.map_err(|error| {
            TransportError::disconnected(format!(
                "cannot open a channel to the AMQP broker at {}: {error}",
                self.server
            ))
        })?;
        Ok(Current { connection: Arc::new(connection), publisher })
    }

    fn down(&self, why: &str) {
        if !self.up.swap(false, Ordering::AcqRel) {
            return;
        }
        let current = lock(&self.current).take();
        for (_, reader) in lock(&self.readers).drain() {
            reader.tasks.iter().for_each(AbortHandle::abort);
        }
        if let Some(current) = current {
            close_in_background(current.connection);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let error = TransportError::disconnected(format!(
            "lost the connection to the AMQP broker at {}: {why}",
            self.server
        ));
        tracing::debug!(server = %self.server, why, "AMQP link down");
        self.state.send_replace(LinkState::Down { generation, error });
    }

    fn up(&self, current: Current) {
        *lock(&self.current) = Some(current);
        self.up.store(true, Ordering::Release);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.state.send_replace(LinkState::Up { generation });
    }

    /// The connection in force and its generation, or why nothing can be sent.
    fn check(&self) -> Result<(u64, Current), TransportError> {
        let current = lock(&self.current).clone();
        match current {
            Some(current) if self.up.load(Ordering::Acquire) => {
                Ok((self.generation.load(Ordering::Acquire), current))
            }
            _ => Err(TransportError::not_connected(format!(
                "no connection to the AMQP broker at {}",
                self.server
            ))),
        }
    }

    /// The publishing channel; a new one if the broker closed the last (as it does after a
    /// refused publish) while the connection lives on.
    async fn publisher(&self) -> Result<Channel, TransportError> {
        let (generation, current) = self.check()?;
        if current.publisher.status().connected() {
            return Ok(current.publisher);
        }
        let channel = current.connection.create_channel().await.map_err(|error| {
            self.suspect.notify_one();
            TransportError::disconnected(format!(
                "cannot open a channel to the AMQP broker at {}: {error}",
                self.server
            ))
        })?;
        let mut slot = lock(&self.current);
        if let Some(current) = slot.as_mut()
            && self.generation.load(Ordering::Acquire) == generation
        {
            current.publisher = channel.clone();
        }
        Ok(channel)
    }

    /// Keeps a subscription's reader, unless the link was lost since `generation`.
    fn keep(&self, id: u64, generation: u64, reader: Reader) -> Result<(), TransportError> {
        let mut kept = lock(&self.readers);
        if !self.up.load(Ordering::Acquire) || self.generation.load(Ordering::Acquire) != generation
        {
            drop(kept);
            reader.end();
            return Err(TransportError::disconnected(format!(
                "lost the connection to the AMQP broker at {} while subscribing",
                self.server
            )));
        }
        kept.insert(id, reader);
        Ok(())
    }

    /// Keeps the link up: watches the connection while it is, reconnects with backoff when it
    /// is not.
    async fn supervise(self: Arc<Self>, backoff: Backoff) {
        let mut attempt = 0;
        loop {
            if self.up.load(Ordering::Acquire) {
                let connected = lock(&self.current)
                    .as_ref()
                    .is_some_and(|current| current.connection.status().connected());
                if !connected {
                    self.down("the connection closed");
                    continue;
                }
                tokio::select! {
                    () = self.lost.notified() => self.down("the connection broke"),
                    // The connection's state changes just after the error is reported.
                    () = self.suspect.notified() => tokio::time::sleep(SETTLE).await,
                    () = tokio::time::sleep(CHECK_EVERY) => {}
                }
                attempt = 0;
                continue;
            }
            match self.open().await {
                Ok(current) => {
                    attempt = 0;
                    self.up(current);
                }
                Err(error) => {
                    tracing::debug!(%error, "reconnecting to the AMQP broker");
                    tokio::time::sleep(backoff.delay(attempt)).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// What a failed channel operation means: a refusal is the broker's answer; anything else
    /// has the supervisor look at the connection, which takes the link down if it broke.
    fn failed(&self, what: &str, error: &lapin::Error) -> TransportError {
        if error.is_amqp_soft_error() {
            return TransportError::new(
                TransportErrorKind::InvalidAddress,
                format!("the AMQP broker at {} refused {what}: {error}", self.server),
            );
        }
        self.suspect.notify_one();
        TransportError::disconnected(format!(
            "cannot {what} on the AMQP broker at {}: {error}",
            self.server
        ))
    }
}

fn close_in_background(connection: Arc<Connection>) {
    tokio::spawn(async move {
        if connection.status().connected() {
            let closing = connection.close(200, "bye".into());
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
        }
    });
}

impl AmqpBus {
    pub(crate) async fn connect(
        connector: &AmqpConnector,
        name: &str,
        options: &BrokerOptions,
    ) -> Result<Self, TransportError> {
        let link = Arc::new(Link {
            server: connector.to_string(),
            uri: connector.server(options.connect_timeout),
            tls: if connector.tls { Some(connector.trusted()?) } else { None },
            name: name.to_owned(),
            state: watch::Sender::new(LinkState::Closed),
            up: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            current: Mutex::new(None),
            readers: Mutex::new(HashMap::new()),
            lost: Notify::new(),
            suspect: Notify::new(),
            connect_timeout: options.connect_timeout,
        });
        let current = link.open().await?;
        link.up(current);
        let supervisor = tokio::spawn(link.clone().supervise(options.backoff)).abort_handle();
        Ok(AmqpBus {
            profile: BusProfile::new("amqp", EnvelopeStyle::JsonBody, ReplyRoute::Queue, true)
                .dropping_unconsumed(),
            link,
            next: AtomicU64::new(1),
            supervisor,
        })
    }

    async fn reader_channel(&self) -> Result<(u64, Channel), TransportError> {
        let (generation, current) = self.link.check()?;
        let channel = current
            .connection
            .create_channel()
            .await
            .map_err(|error| self.link.failed("open a channel", &error))?;
        Ok((generation, channel))
    }

    async fn subscribe_topic(
        &self,
        filter: &str,
        sink: Sink,
    ) -> Result<SubscriptionId, TransportError> {
        let binding = short("subscription filter", &binding_key(filter))?;
        let (generation, channel) = self.reader_channel().await?;
        let result = async {
            let declared = QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            };
            let queue = channel
                .queue_declare(ShortString::from(""), declared, FieldTable::default())
                .await
                .map_err(|error| self.link.failed("a subscription queue", &error))?;
            let name = queue.name().clone();
            channel
                .queue_bind(
                    name.clone(),
                    TOPICS.into(),
                    binding,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|error| {
                    self.link.failed(&format!("a subscription to {filter}"), &error)
                })?;
            let consumer = consume(&channel, name).await.map_err(|error| {
                self.link.failed(&format!("a subscription to {filter}"), &error)
            })?;
            let filter = filter.to_owned();
            Ok(spawn_reader(consumer, Arc::downgrade(&self.link), move |address, message| {
                if matches(&filter, address) {
                    sink(address, message);
                }
            }))
        }
        .await;
        self.finish(generation, channel, result.map(|task| vec![task]))
    }

    async fn consume_queues(
        &self,
        queues: &[String],
        sink: Sink,
    ) -> Result<SubscriptionId, TransportError> {
        let names =
            queues.iter().map(|queue| short("queue name", queue)).collect::<Result<Vec<_>, _>>()?;
        let (generation, channel) = self.reader_channel().await?;
        let result = async {
            let mut tasks = Vec::with_capacity(names.len());
            for name in names {
                let declared =
                    QueueDeclareOptions { auto_delete: true, ..QueueDeclareOptions::default() };
                let declaring =
                    channel.queue_declare(name.clone(), declared, FieldTable::default()).await;
                let consumed = match declaring {
                    Ok(_) => consume(&channel, name.clone()).await,
                    Err(error) => Err(error),
                };
                let consumer = match consumed {
                    Ok(consumer) => consumer,
                    Err(error) => {
                        tasks.iter().for_each(AbortHandle::abort);
                        return Err(self.link.failed(&format!("the queue {name}"), &error));
                    }
                };
                let sink = sink.clone();
                tasks.push(spawn_reader(
                    consumer,
                    Arc::downgrade(&self.link),
                    move |_, message| {
                        sink(name.as_str(), message);
                    },
                ));
            }
            Ok(tasks)
        }
        .await;
        self.finish(generation, channel, result)
    }

    /// Keeps a reader that started, or closes its channel.
    fn finish(
        &self,
        generation: u64,
        channel: Channel,
        tasks: Result<Vec<AbortHandle>, TransportError>,
    ) -> Result<SubscriptionId, TransportError> {
        match tasks {
            Ok(tasks) => {
                let id = self.next.fetch_add(1, Ordering::Relaxed);
                self.link.keep(id, generation, Reader { channel, tasks })?;
                Ok(SubscriptionId(id))
            }
            Err(error) => {
                Reader { channel, tasks: Vec::new() }.end();
                Err(error)
            }
        }
    }

    async fn put(
        &self,
        exchange: &'static str,
        routing_key: &str,
        message: BusMessage,
    ) -> Result<(), TransportError> {
        let key = short("address", routing_key)?;
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("utf8".into());
        if let Some(reply_to) = &message.reply_to {
            properties = properties.with_reply_to(short("reply address", reply_to)?);
        }
        if !message.headers.is_empty() {
            let mut table = FieldTable::default();
            for (name, value) in message.headers.iter() {
                let value = LongString::from(value.as_bytes().to_vec());
                table.insert(short("header name", name)?, AMQPValue::LongString(value));
            }
            properties = properties.with_headers(table);
        }
        let mut retried = false;
        loop {
            let channel = self.link.publisher().await?;
            let published = channel
                .basic_publish(
                    exchange.into(),
                    key.clone(),
                    BasicPublishOptions::default(),
                    &message.body,
                    properties.clone(),
                )
                .await;
            match published {
                Ok(_) => return Ok(()),
                // The broker closed the channel (after an earlier publish it refused) between
                // the check and the publish: once more, on a new channel.
                Err(error)
                    if !retried && matches!(error.kind(), ErrorKind::InvalidChannelState(..)) =>
                {
                    tracing::debug!(%error, "publishing again on a new AMQP channel");
                    retried = true;
                }
                Err(error) => {
                    return Err(self.link.failed(&format!("a publish to {routing_key}"), &error));
                }
            }
        }
    }
}

/// A name as an AMQP short string, which holds at most 255 bytes.
fn short(what: &str, text: &str) -> Result<ShortString, TransportError> {
    ShortString::try_new(text).map_err(|_| {
        TransportError::new(
            TransportErrorKind::InvalidAddress,
            format!("an AMQP {what} holds at most 255 bytes; `{text:.40}…` has {}", text.len()),
        )
    })
}

async fn consume(channel: &Channel, queue: ShortString) -> Result<Consumer, lapin::Error> {
    let options = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
    channel.basic_consume(queue, ShortString::from(""), options, FieldTable::default()).await
}

/// Hands each delivery to `deliver` with its routing key; a consumer that ends while its
/// reader still runs means the connection broke.
fn spawn_reader(
    mut consumer: Consumer,
    link: Weak<Link>,
    deliver: impl Fn(&str, BusMessage) + Send + 'static,
) -> AbortHandle {
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let properties = &delivery.properties;
            let message = BusMessage {
                reply_to: properties.reply_to().as_ref().map(|r| r.as_str().to_owned()),
                headers: properties.headers().as_ref().map(headers).unwrap_or_default(),
                body: Bytes::from(delivery.data),
                status: None,
            };
            deliver(delivery.routing_key.as_str(), message);
        }
        if let Some(link) = link.upgrade() {
            link.lost.notify_one();
        }
    })
    .abort_handle()
}

/// The text headers of a message; others are left out.
fn headers(table: &FieldTable) -> Headers {
    table
        .inner()
        .iter()
        .filter_map(|(name, value)| match value {
            AMQPValue::LongString(text) => std::str::from_utf8(text.as_bytes())
                .ok()
                .map(|text| (name.as_str().to_owned(), text.to_owned())),
            AMQPValue::ShortString(text) => {
                Some((name.as_str().to_owned(), text.as_str().to_owned()))
            }
            _ => None,
        })
        .collect()
}

impl Drop for AmqpBus {
    fn drop(&mut self) {
        self.supervisor.abort();
        for (_, reader) in lock(&self.link.readers).drain() {
            reader.tasks.iter().for_each(AbortHandle::abort);
        }
        if let Some(current) = lock(&self.link.current).take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            close_in_background(current.connection);
        }
    }
}

impl Bus for AmqpBus {
    fn profile(&self) -> &BusProfile {
        &self.profile
    }

    fn publish<'a>(
        &'a self,
        topic: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.put(TOPICS, topic, message))
    }

    fn send<'a>(
        &'a self,
        queue: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.put("", queue, message))
    }

    fn subscribe<'a>(
        &'a self,
        filter: &'a str,
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>> {
        Box::pin(self.subscribe_topic(filter, sink))
    }

    fn consume<'a>(
        &'a self,
        queues: &'a [String],
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>> {
        Box::pin(self.consume_queues(queues, sink))
    }

    fn unsubscribe(&self, id: SubscriptionId) {
        if let Some(reader) = lock(&self.link.readers).remove(&id.0) {
            reader.end();
        }
    }

    fn link(&self) -> watch::Receiver<LinkState> {
        self.link.state.subscribe()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.supervisor.abort();
            for (_, reader) in lock(&self.link.readers).drain() {
                reader.tasks.iter().for_each(AbortHandle::abort);
            }
            self.link.up.store(false, Ordering::Release);
            let current = lock(&self.link.current).take();
            if let Some(current) = current
                && current.connection.status().connected()
            {
                let closing = current.connection.close(200, "bye".into());
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
            }
            self.link.state.send_replace(LinkState::Closed);
        })
    }
}

/// The layer's filter as an AMQP topic binding: `*` stays, `>` becomes `#`.
fn binding_key(filter: &str) -> String {
    filter
        .split('.')
        .map(|segment| if segment == ">" { "#" } else { segment })
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether `topic` matches the layer's `filter` (`*` one segment, `>` all the rest).
fn matches(filter: &str, topic: &str) -> bool {
    let mut topic = topic.split('.');
    for segment in filter.split('.') {
        match (segment, topic.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (literal, Some(part)) if literal == part => {}
            _ => return false,
        }
    }
    topic.next().is_none()
}

fn connect_error(server: &str, error: &lapin::Error) -> TransportError {
    let refused = match error.kind() {
        ErrorKind::ProtocolError(amqp) => {
            // 403 access-refused, 530 not-allowed (a virtual host the user may not use).
            matches!(amqp.get_id(), 403 | 530)
        }
        _ => false,
    };
    // RabbitMQ closes the socket on a failed login without saying why (before AMQP 0-9-1's
    // authentication_failure_close capability), which lapin reports as an IO error.
    let text = error.to_string();
    // A certificate rustls does not trust (an unknown issuer, another name) is refused access.
    let untrusted = text.contains("certificate") || text.contains("Certificate");
    let kind = if refused || untrusted || text.contains("ACCESS_REFUSED") {
        TransportErrorKind::AccessDenied
    } else {
        TransportErrorKind::NotFound
    };
    TransportError::new(kind, format!("cannot connect to the AMQP broker at {server}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_bindings_and_are_checked_again() {
        assert_eq!(binding_key("Clock.*.signal.>"), "Clock.*.signal.#");
        assert_eq!(binding_key("_sb.presence.>"), "_sb.presence.#");
        assert!(matches("Clock.*.signal.>", "Clock.k.signal.tick"));
        assert!(!matches("Clock.*.signal.>", "Clock.k.signal"), "an AMQP `#` matches nothing");
        assert!(!matches("Clock.*", "Clock.a.b"));
    }

    #[test]
    fn long_names_are_refused_not_panicked_on() {
        let long = "x".repeat(256);
        let error = short("address", &long).unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::InvalidAddress);
        assert!(error.message().contains("255 bytes"), "{error}");
        assert!(short("address", &"x".repeat(255)).is_ok());
    }
}
