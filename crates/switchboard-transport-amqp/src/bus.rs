//! One AMQP connection as a [`Bus`]: publishes to `amq.topic`, work queues on the default
//! exchange, a channel per subscription, on a [`Link`] that watches the connection and
//! reconnects; and a second connection, supervised the same way, that only carries presence.
//!
//! RabbitMQ reads a publishing connection only as fast as the queues it routes to take the
//! messages (its credit flow), so a burst of signals sits in the socket and anything published
//! behind it on the same connection waits too; a second channel does not help, it is the same
//! byte stream. Presence announcements say a peer is alive and must keep their pace, so they go
//! on a connection of their own; they fall back to the main one while that is down.

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
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
    Sink, SubscriptionId, filter_matches,
    link::{Link, LinkDriver, LinkReader},
};
use switchboard_core::{TransportError, TransportErrorKind, transport::BoxFuture};
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

/// One connection to an AMQP broker, plus presence's own.
pub(crate) struct AmqpBus {
    profile: BusProfile,
    link: Arc<AmqpLink>,
    driver: Arc<Driver>,
    supervisor: AbortHandle,
    /// The connection presence announcements go out on, apart from everything else.
    presence: Presence,
}

/// The connection that carries presence announcements alone: it only publishes, to
/// `amq.topic`, which the broker always has, so there is nothing to declare again after it
/// reconnects.
struct Presence {
    link: Arc<AmqpLink>,
    driver: Arc<Driver>,
    supervisor: AbortHandle,
}

impl std::fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpBus").field("server", &self.driver.server).finish_non_exhaustive()
    }
}

/// The link: its connection and publishing channel, and the readers of its subscriptions and
/// consumers.
type AmqpLink = Link<Current, Reader>;

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
    /// Set when the subscription is ended on purpose: its readers then end without taking the
    /// link down.
    ended: Arc<AtomicBool>,
}

impl LinkReader for Reader {
    fn abort(&self) {
        self.tasks.abort();
    }

    fn end(self) {
        self.ended.store(true, Ordering::Release);
        if !self.channel.status().connected() {
            self.tasks.abort();
            return;
        }
        // Closing the channel ends its consumers, and then their readers. Aborting the readers
        // first would drop live consumers, whose cancel lapin then sends on a channel already
        // closing, and takes that for a broken connection.
        let Reader { channel, tasks, .. } = self;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, channel.close(200, "done".into())).await;
            tasks.abort();
        });
    }
}

/// How the link opens connections and checks them: it looks at the connection's state every
/// 250 ms, and at once after an error that may have broken it.
struct Driver {
    server: String,
    uri: String,
    /// With `amqps://`, the CAs (PEM) TLS trusts besides the system roots.
    tls: Option<Option<String>>,
    name: String,
    /// Woken by an error that may or may not have broken the connection (a channel's error
    /// looks the same).
    suspect: Notify,
    connect_timeout: Duration,
}

impl Driver {
    /// Opens a connection and its publishing channel, and has its errors wake the check.
    async fn connect(self: &Arc<Self>) -> Result<Current, TransportError> {
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
                    TransportErrorKind::Unreachable,
                    format!(
                        "cannot connect to the AMQP broker at {}: no answer within {:?}",
                        self.server, self.connect_timeout
                    ),
                ));
            }
        };
        let mut events = connection.events_listener();
        let driver = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if let Event::Error(error) = event {
                    tracing::debug!(%error, "AMQP connection error");
                    match driver.upgrade() {
                        Some(driver) => driver.suspect.notify_one(),
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

    /// What a failed channel operation means: a refusal is the broker's answer; anything else
    /// has the check look at the connection, which takes the link down if it broke.
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

impl LinkDriver for Driver {
    type Connection = Current;

    fn open(self: &Arc<Self>) -> BoxFuture<'_, Result<Current, TransportError>> {
        Box::pin(self.connect())
    }

    fn check<'a>(&'a self, current: &'a Current) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let closed = || Err("the connection closed".to_owned());
            if !current.connection.status().connected() {
                return closed();
            }
            tokio::select! {
                // The connection's state changes just after the error is reported.
                () = self.suspect.notified() => tokio::time::sleep(SETTLE).await,
                () = tokio::time::sleep(CHECK_EVERY) => {}
            }
            if current.connection.status().connected() { Ok(()) } else { closed() }
        })
    }

    fn release(&self, current: Current) {
        close_in_background(current.connection);
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
        let tls = if connector.tls { Some(connector.trusted()?) } else { None };
        let driver = |name: String| {
            Arc::new(Driver {
                server: connector.to_string(),
                uri: connector.server(options.connect_timeout),
                tls: tls.clone(),
                name,
                suspect: Notify::new(),
                connect_timeout: options.connect_timeout,
            })
        };
        let (main, presence) = (driver(name.to_owned()), driver(format!("{name}-presence")));
        // Both at once, so that the second connection costs no time.
        let (current, presence_current) = tokio::join!(main.connect(), presence.connect());
        let (current, presence_current) = match (current, presence_current) {
            (Ok(current), Ok(presence_current)) => (current, presence_current),
            (Err(error), Ok(opened)) | (Ok(opened), Err(error)) => {
                close_in_background(opened.connection);
                return Err(error);
            }
            (Err(error), Err(_)) => return Err(error),
        };
        let server = format!("the AMQP broker at {}", main.server);
        let link = Link::new(server.clone(), current);
        let supervisor = link.supervise(main.clone(), options.backoff);
        let presence_link = Link::new(format!("{server} (presence)"), presence_current);
        let presence = Presence {
            supervisor: presence_link.supervise(presence.clone(), options.backoff),
            link: presence_link,
            driver: presence,
        };
        Ok(AmqpBus {
            profile: BusProfile::new("amqp", EnvelopeStyle::JsonBody, ReplyRoute::Queue, true)
                .dropping_unconsumed(),
            link,
            driver: main,
            supervisor,
            presence,
        })
    }

    async fn reader_channel(&self) -> Result<(u64, Channel), TransportError> {
        let (generation, current) = self.link.check()?;
        let channel = current
            .connection
            .create_channel()
            .await
            .map_err(|error| self.driver.failed("open a channel", &error))?;
        Ok((generation, channel))
    }

    async fn subscribe_topic(
        &self,
        filter: &str,
        sink: Sink,
    ) -> Result<SubscriptionId, TransportError> {
        let binding = short("subscription filter", &binding_key(filter))?;
        let (generation, channel) = self.reader_channel().await?;
        let ended = Arc::new(AtomicBool::new(false));
        let result = async {
            let declared = QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            };
            let queue = channel
                .queue_declare(ShortString::from(""), declared, FieldTable::default())
                .await
                .map_err(|error| self.driver.failed("a subscription queue", &error))?;
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
                    self.driver.failed(&format!("a subscription to {filter}"), &error)
                })?;
            let consumer = consume(&channel, name).await.map_err(|error| {
                self.driver.failed(&format!("a subscription to {filter}"), &error)
            })?;
            let filter = filter.to_owned();
            let link = Arc::downgrade(&self.link);
            Ok(spawn_reader(consumer, link, ended.clone(), move |address, message| {
                if filter_matches(&filter, address) {
                    sink(address, message);
                }
            }))
        }
        .await;
        self.finish(generation, channel, ended, result.map(|task| vec![task]))
    }

    async fn consume_queues(
        &self,
        queues: &[String],
        sink: Sink,
    ) -> Result<SubscriptionId, TransportError> {
        let names =
            queues.iter().map(|queue| short("queue name", queue)).collect::<Result<Vec<_>, _>>()?;
        let (generation, channel) = self.reader_channel().await?;
        let ended = Arc::new(AtomicBool::new(false));
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
                        return Err(self.driver.failed(&format!("the queue {name}"), &error));
                    }
                };
                let sink = sink.clone();
                let link = Arc::downgrade(&self.link);
                tasks.push(spawn_reader(consumer, link, ended.clone(), move |_, message| {
                    sink(name.as_str(), message);
                }));
            }
            Ok(tasks)
        }
        .await;
        self.finish(generation, channel, ended, result)
    }

    /// Keeps a reader that started, or closes its channel.
    fn finish(
        &self,
        generation: u64,
        channel: Channel,
        ended: Arc<AtomicBool>,
        tasks: Result<Vec<AbortHandle>, TransportError>,
    ) -> Result<SubscriptionId, TransportError> {
        match tasks {
            Ok(tasks) => self.link.keep(generation, Reader { channel, tasks, ended }),
            Err(error) => {
                Reader { channel, tasks: Vec::new(), ended }.end();
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
        put(&self.link, &self.driver, exchange, routing_key, &message).await
    }

    /// Publishes presence on its own connection, or on the main one while that is down.
    async fn announce_apart(&self, topic: &str, message: BusMessage) -> Result<(), TransportError> {
        let presence = &self.presence;
        if presence.link.check().is_ok()
            && put(&presence.link, &presence.driver, TOPICS, topic, &message).await.is_ok()
        {
            return Ok(());
        }
        self.put(TOPICS, topic, message).await
    }
}

/// Publishes `message` on `link`'s publishing channel.
async fn put(
    link: &AmqpLink,
    driver: &Driver,
    exchange: &'static str,
    routing_key: &str,
    message: &BusMessage,
) -> Result<(), TransportError> {
    let key = short("address", routing_key)?;
    let mut properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf8".into());
    if let Some(reply_to) = &message.reply_to {
        properties = properties.with_reply_to(short("reply address", reply_to)?);
    }
    if let Some(correlation_id) = &message.correlation_id {
        properties = properties.with_correlation_id(short("correlation id", correlation_id)?);
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
        let channel = publisher(link, driver).await?;
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
            // The broker closed the channel (after an earlier publish it refused) between the
            // check and the publish: once more, on a new channel.
            Err(error)
                if !retried && matches!(error.kind(), ErrorKind::InvalidChannelState(..)) =>
            {
                tracing::debug!(%error, "publishing again on a new AMQP channel");
                retried = true;
            }
            Err(error) => {
                return Err(driver.failed(&format!("a publish to {routing_key}"), &error));
            }
        }
    }
}

/// `link`'s publishing channel; a new one if the broker closed the last (as it does after a
/// refused publish) while the connection lives on.
async fn publisher(link: &AmqpLink, driver: &Driver) -> Result<Channel, TransportError> {
    let (generation, current) = link.check()?;
    if current.publisher.status().connected() {
        return Ok(current.publisher);
    }
    let channel = current.connection.create_channel().await.map_err(|error| {
        driver.suspect.notify_one();
        TransportError::disconnected(format!(
            "cannot open a channel to the AMQP broker at {}: {error}",
            driver.server
        ))
    })?;
    let publisher = channel.clone();
    link.replace(generation, Current { connection: current.connection, publisher });
    Ok(channel)
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
/// reader still runs means the connection broke, unless the subscription was `ended`.
fn spawn_reader(
    mut consumer: Consumer,
    link: Weak<AmqpLink>,
    ended: Arc<AtomicBool>,
    deliver: impl Fn(&str, BusMessage) + Send + 'static,
) -> AbortHandle {
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let properties = &delivery.properties;
            let message = BusMessage {
                reply_to: properties.reply_to().as_ref().map(|r| r.as_str().to_owned()),
                correlation_id: properties.correlation_id().as_ref().map(|c| c.as_str().to_owned()),
                headers: properties.headers().as_ref().map(headers).unwrap_or_default(),
                body: Bytes::from(delivery.data),
                status: None,
            };
            deliver(delivery.routing_key.as_str(), message);
        }
        if !ended.load(Ordering::Acquire)
            && let Some(link) = link.upgrade()
        {
            link.lost();
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
        self.presence.supervisor.abort();
        for link in [&self.link, &self.presence.link] {
            if let Some(current) = link.close()
                && tokio::runtime::Handle::try_current().is_ok()
            {
                close_in_background(current.connection);
            }
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

    fn announce<'a>(
        &'a self,
        topic: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.announce_apart(topic, message))
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
        self.link.unsubscribe(id);
    }

    fn link(&self) -> watch::Receiver<LinkState> {
        self.link.state()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.supervisor.abort();
            self.presence.supervisor.abort();
            if let Some(current) = self.presence.link.close() {
                close_in_background(current.connection);
            }
            if let Some(current) = self.link.close()
                && current.connection.status().connected()
            {
                let closing = current.connection.close(200, "bye".into());
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
            }
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
        TransportErrorKind::Unreachable
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
        assert!(filter_matches("Clock.*.signal.>", "Clock.k.signal.tick"));
        assert!(
            !filter_matches("Clock.*.signal.>", "Clock.k.signal"),
            "an AMQP `#` matches nothing"
        );
        assert!(!filter_matches("Clock.*", "Clock.a.b"));
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
