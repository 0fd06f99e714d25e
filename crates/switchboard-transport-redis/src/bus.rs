//! One Redis connection set as a [`Bus`]: `PUBLISH` and `PSUBSCRIBE`, lists as work queues
//! (`RPUSH`, `BLPOP`), and a supervisor that pings the server and reconnects.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use redis::{AsyncConnectionConfig, Client, aio::MultiplexedConnection};
use switchboard_broker::{
    BrokerOptions, Bus, BusMessage, BusProfile, EnvelopeStyle, LinkState, ReplyRoute, Sink,
    SubscriptionId,
};
use switchboard_core::{
    TransportError, TransportErrorKind, backoff::Backoff, transport::BoxFuture,
};
use tokio::{
    sync::{Notify, watch},
    task::AbortHandle,
};

use crate::RedisConnector;

/// How often the supervisor pings the server while the link is up.
const PING_EVERY: Duration = Duration::from_millis(500);

/// How many idle connections for [`Bus::receive`] a link keeps for the next waits.
const IDLE_RECEIVERS: usize = 16;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One connection set to a Redis server.
pub(crate) struct RedisBus {
    profile: BusProfile,
    link: Arc<Link>,
    next: AtomicU64,
    supervisor: AbortHandle,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").field("server", &self.link.server).finish_non_exhaustive()
    }
}

/// The link's state, its command connection, and the tasks of its subscriptions and
/// consumers, which a lost link ends.
struct Link {
    server: String,
    client: Client,
    state: watch::Sender<LinkState>,
    up: AtomicBool,
    generation: AtomicU64,
    commands: Mutex<Option<MultiplexedConnection>>,
    /// Connections for `BLPOP` on reply lists, idle between waits; dropped with the link.
    receivers: Mutex<Vec<(u64, MultiplexedConnection)>>,
    tasks: Mutex<HashMap<u64, Vec<AbortHandle>>>,
    /// Woken by any task whose connection broke, so that the link goes down at once.
    lost: Notify,
    connect_timeout: Duration,
}

impl Link {
    async fn open(&self, blocking: bool) -> Result<MultiplexedConnection, TransportError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(if blocking { None } else { Some(self.connect_timeout) });
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|error| connect_error(&self.server, &error))
    }

    fn down(&self, why: &str) {
        if !self.up.swap(false, Ordering::AcqRel) {
            return;
        }
        *lock(&self.commands) = None;
        lock(&self.receivers).clear();
        for task in lock(&self.tasks).drain().flat_map(|(_, tasks)| tasks) {
            task.abort();
        }
        let generation = self.generation.load(Ordering::Acquire);
        let error = TransportError::disconnected(format!(
            "lost the connection to the Redis server at {}: {why}",
            self.server
        ));
        tracing::debug!(server = %self.server, why, "Redis link down");
        self.state.send_replace(LinkState::Down { generation, error });
    }

    fn up(&self, commands: MultiplexedConnection) {
        *lock(&self.commands) = Some(commands);
        self.up.store(true, Ordering::Release);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.state.send_replace(LinkState::Up { generation });
    }

    /// The command connection in force and its generation, or why nothing can be sent.
    fn check(&self) -> Result<(u64, MultiplexedConnection), TransportError> {
        let commands = lock(&self.commands).clone();
        match commands {
            Some(commands) if self.up.load(Ordering::Acquire) => {
                Ok((self.generation.load(Ordering::Acquire), commands))
            }
            _ => Err(TransportError::not_connected(format!(
                "no connection to the Redis server at {}",
                self.server
            ))),
        }
    }

    /// Keeps a subscription's tasks, unless the link was lost since `generation`.
    fn keep(
        &self,
        id: u64,
        generation: u64,
        tasks: Vec<AbortHandle>,
    ) -> Result<(), TransportError> {
        let mut kept = lock(&self.tasks);
        if !self.up.load(Ordering::Acquire) || self.generation.load(Ordering::Acquire) != generation
        {
            drop(kept);
            tasks.iter().for_each(AbortHandle::abort);
            return Err(TransportError::disconnected(format!(
                "lost the connection to the Redis server at {} while subscribing",
                self.server
            )));
        }
        kept.insert(id, tasks);
        Ok(())
    }

    /// Keeps the link up: pings while it is, reconnects with backoff when it is not.
    async fn supervise(self: Arc<Self>, backoff: Backoff) {
        let mut attempt = 0;
        loop {
            if self.up.load(Ordering::Acquire) {
                let commands = lock(&self.commands).clone();
                let Some(mut commands) = commands else {
                    self.down("no command connection");
                    continue;
                };
                tokio::select! {
                    () = self.lost.notified() => self.down("a connection broke"),
                    () = tokio::time::sleep(PING_EVERY) => {
                        let ping = redis::cmd("PING");
                        if let Err(error) = ping.query_async::<()>(&mut commands).await {
                            self.down(&error.to_string());
                        }
                    }
                }
                attempt = 0;
                continue;
            }
            match self.open(false).await {
                Ok(commands) => {
                    attempt = 0;
                    self.up(commands);
                }
                Err(error) => {
                    tracing::debug!(%error, "reconnecting to Redis");
                    tokio::time::sleep(backoff.delay(attempt)).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }
}

impl RedisBus {
    pub(crate) async fn connect(
        connector: &RedisConnector,
        name: &str,
        options: &BrokerOptions,
    ) -> Result<Self, TransportError> {
        let server = connector.to_string();
        let invalid = |error: redis::RedisError| {
            TransportError::new(TransportErrorKind::InvalidAddress, format!("{server}: {error}"))
        };
        let client = match connector.ca() {
            Some(ca) => {
                let root_cert = std::fs::read(ca).map_err(|error| {
                    TransportError::new(
                        TransportErrorKind::InvalidAddress,
                        format!("{server}: cannot read the CA file {}: {error}", ca.display()),
                    )
                })?;
                let certificates =
                    redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) };
                Client::build_with_tls(connector.server(), certificates).map_err(invalid)?
            }
            None => Client::open(connector.server()).map_err(invalid)?,
        };
        let link = Arc::new(Link {
            server,
            client,
            state: watch::Sender::new(LinkState::Closed),
            up: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            commands: Mutex::new(None),
            receivers: Mutex::new(Vec::new()),
            tasks: Mutex::new(HashMap::new()),
            lost: Notify::new(),
            connect_timeout: options.connect_timeout,
        });
        let mut commands = link.open(false).await?;
        // Names the connection where `CLIENT LIST` shows it; a server that refuses is fine.
        let mut named = redis::cmd("CLIENT");
        named.arg("SETNAME").arg(name.replace(' ', "_"));
        if let Err(error) = named.query_async::<()>(&mut commands).await {
            tracing::debug!(%error, "Redis did not take the connection's name");
        }
        link.up(commands);
        let supervisor = tokio::spawn(link.clone().supervise(options.backoff)).abort_handle();
        Ok(RedisBus {
            profile: BusProfile::new("redis", EnvelopeStyle::JsonBody, ReplyRoute::Queue, false),
            link,
            next: AtomicU64::new(1),
            supervisor,
        })
    }

    async fn subscribe_pattern(
        &self,
        filter: &str,
        sink: Sink,
    ) -> Result<SubscriptionId, TransportError> {
        let (generation, _) = self.link.check()?;
        let mut pubsub = self.link.client.get_async_pubsub().await.map_err(|error| {
            TransportError::disconnected(format!(
                "cannot open a subscription on the Redis server at {}: {error}",
                self.link.server
            ))
        })?;
        pubsub.psubscribe(glob(filter)).await.map_err(|error| {
            TransportError::disconnected(format!(
                "the Redis server at {} refused a subscription to {filter}: {error}",
                self.link.server
            ))
        })?;
        let link = Arc::downgrade(&self.link);
        let filter = filter.to_owned();
        let task = tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let channel = message.get_channel_name();
                if matches(&filter, channel) {
                    let body = Bytes::copy_from_slice(message.get_payload_bytes());
                    sink(channel, BusMessage::new(body));
                }
            }
            if let Some(link) = link.upgrade() {
                link.lost.notify_one();
            }
        })
        .abort_handle();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.link.keep(id, generation, vec![task])?;
        Ok(SubscriptionId(id))
    }

    async fn consume_lists(
        &self,
        queues: &[String],
        sink: Sink,
    ) -> Result<SubscriptionId, TransportError> {
        let (generation, _) = self.link.check()?;
        let mut blocking = self.link.open(true).await?;
        let link = Arc::downgrade(&self.link);
        let queues = queues.to_vec();
        let task = tokio::spawn(async move {
            loop {
                let popped = redis::cmd("BLPOP")
                    .arg(&queues)
                    .arg(0)
                    .query_async::<Option<(String, Vec<u8>)>>(&mut blocking)
                    .await;
                match popped {
                    Ok(Some((queue, body))) => sink(&queue, BusMessage::new(Bytes::from(body))),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::debug!(%error, "BLPOP failed");
                        if let Some(link) = link.upgrade() {
                            link.lost.notify_one();
                        }
                        return;
                    }
                }
            }
        })
        .abort_handle();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.link.keep(id, generation, vec![task])?;
        Ok(SubscriptionId(id))
    }

    /// `BLPOP` on one reply list, on an idle connection of the link's (or a new one), which
    /// goes back to the idle ones afterwards; a wait abandoned half-way drops its connection.
    async fn pop_reply(
        &self,
        queue: &str,
        wait: Duration,
    ) -> Result<Option<BusMessage>, TransportError> {
        let (generation, _) = self.link.check()?;
        let idle = lock(&self.link.receivers).pop();
        let mut connection = match idle {
            Some((kept, connection)) if kept == generation => connection,
            _ => self.link.open(true).await?,
        };
        // Redis takes a timeout in seconds, as a double; zero would mean forever.
        let seconds = wait.as_secs_f64().max(0.01);
        let popped = redis::cmd("BLPOP")
            .arg(queue)
            .arg(seconds)
            .query_async::<Option<(String, Vec<u8>)>>(&mut connection)
            .await
            .map_err(|error| {
                self.link.lost.notify_one();
                TransportError::disconnected(format!(
                    "BLPOP on the Redis server at {} failed: {error}",
                    self.link.server
                ))
            })?;
        let mut idle = lock(&self.link.receivers);
        if idle.len() < IDLE_RECEIVERS && self.link.generation.load(Ordering::Acquire) == generation
        {
            idle.push((generation, connection));
        }
        Ok(popped.map(|(_, body)| BusMessage::new(Bytes::from(body))))
    }

    async fn command(&self, command: &str, key: &str, body: Bytes) -> Result<(), TransportError> {
        let (_, mut commands) = self.link.check()?;
        redis::cmd(command)
            .arg(key)
            .arg(body.as_ref())
            .query_async::<()>(&mut commands)
            .await
            .map_err(|error| {
                if error.is_io_error() || error.is_connection_dropped() || error.is_timeout() {
                    self.link.lost.notify_one();
                    TransportError::disconnected(format!(
                        "cannot {command} to the Redis server at {}: {error}",
                        self.link.server
                    ))
                } else {
                    TransportError::new(
                        TransportErrorKind::InvalidAddress,
                        format!(
                            "the Redis server at {} refused {command}: {error}",
                            self.link.server
                        ),
                    )
                }
            })
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.supervisor.abort();
        for task in lock(&self.link.tasks).drain().flat_map(|(_, tasks)| tasks) {
            task.abort();
        }
    }
}

impl Bus for RedisBus {
    fn profile(&self) -> &BusProfile {
        &self.profile
    }

    fn publish<'a>(
        &'a self,
        topic: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.command("PUBLISH", topic, message.body))
    }

    fn send<'a>(
        &'a self,
        queue: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.command("RPUSH", queue, message.body))
    }

    fn subscribe<'a>(
        &'a self,
        filter: &'a str,
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>> {
        Box::pin(self.subscribe_pattern(filter, sink))
    }

    fn consume<'a>(
        &'a self,
        queues: &'a [String],
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>> {
        Box::pin(self.consume_lists(queues, sink))
    }

    fn unsubscribe(&self, id: SubscriptionId) {
        if let Some(tasks) = lock(&self.link.tasks).remove(&id.0) {
            tasks.iter().for_each(AbortHandle::abort);
        }
    }

    fn receive<'a>(
        &'a self,
        queue: &'a str,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Option<BusMessage>, TransportError>> {
        Box::pin(self.pop_reply(queue, wait))
    }

    fn link(&self) -> watch::Receiver<LinkState> {
        self.link.state.subscribe()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.supervisor.abort();
            for task in lock(&self.link.tasks).drain().flat_map(|(_, tasks)| tasks) {
                task.abort();
            }
            self.link.up.store(false, Ordering::Release);
            *lock(&self.link.commands) = None;
            self.link.state.send_replace(LinkState::Closed);
        })
    }
}

/// The layer's filter as a Redis glob: `*` and `>` become `*`, glob characters in names are
/// escaped.
fn glob(filter: &str) -> String {
    filter
        .split('.')
        .map(|segment| match segment {
            "*" | ">" => "*".to_owned(),
            literal => literal
                .chars()
                .flat_map(|c| {
                    let escape = matches!(c, '*' | '?' | '[' | ']' | '\\').then_some('\\');
                    escape.into_iter().chain(std::iter::once(c))
                })
                .collect(),
        })
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

fn connect_error(server: &str, error: &redis::RedisError) -> TransportError {
    let kind = match error.kind() {
        redis::ErrorKind::AuthenticationFailed => TransportErrorKind::AccessDenied,
        _ if switchboard_core::tls::refused_certificate(error) => TransportErrorKind::AccessDenied,
        // redis-rs 1.8 keeps only the text of a TLS error: rustls' own words for a refused
        // certificate.
        _ if error.to_string().contains("invalid peer certificate") => {
            TransportErrorKind::AccessDenied
        }
        _ => TransportErrorKind::NotFound,
    };
    TransportError::new(kind, format!("cannot connect to the Redis server at {server}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_globs_and_are_checked_again() {
        assert_eq!(glob("Clock.*.signal.>"), "Clock.*.signal.*");
        assert_eq!(glob("a[1].b?"), "a\\[1\\].b\\?");
        assert!(matches("Clock.*.signal.>", "Clock.k.signal.tick"));
        assert!(matches("Clock.*.signal.>", "Clock.k.signal.tick.x"));
        assert!(!matches("Clock.*.signal.>", "Clock.k.x.signal.tick"), "a glob `*` spans dots");
        assert!(!matches("Clock.*", "Clock"));
        assert!(!matches("Clock.*", "Clock.a.b"));
    }
}
