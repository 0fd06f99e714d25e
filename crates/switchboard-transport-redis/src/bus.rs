//! One Redis connection set as a [`Bus`]: `PUBLISH` and `PSUBSCRIBE`, lists as work queues
//! (`RPUSH`, `BLPOP`), on a [`Link`] that pings the server and reconnects.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use redis::{AsyncConnectionConfig, Client, aio::MultiplexedConnection};
use switchboard_broker::{
    BrokerOptions, Bus, BusMessage, BusProfile, EnvelopeStyle, LinkState, ReplyRoute, Sink,
    SubscriptionId, filter_matches,
    link::{Link, LinkDriver},
};
use switchboard_core::{TransportError, TransportErrorKind, sync::lock, transport::BoxFuture};
use tokio::{sync::watch, task::AbortHandle};

use crate::RedisConnector;

/// How often the supervisor pings the server while the link is up.
const PING_EVERY: Duration = Duration::from_millis(500);

/// One connection set to a Redis server.
pub(crate) struct RedisBus {
    profile: BusProfile,
    link: Arc<RedisLink>,
    driver: Arc<Driver>,
    supervisor: AbortHandle,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").field("server", &self.link.server()).finish_non_exhaustive()
    }
}

/// The link: its command connection, and the task of each subscription and consumer.
type RedisLink = Link<MultiplexedConnection, AbortHandle>;

/// How many idle connections for [`Bus::receive`] a link keeps for the next waits.
const IDLE_RECEIVERS: usize = 16;

/// How the link opens connections and checks them (a `PING` every half second).
struct Driver {
    server: String,
    client: Client,
    connect_timeout: Duration,
    /// Connections for `BLPOP` on reply lists, idle between waits, with the link's generation
    /// they were opened in; dropped when the link goes down.
    receivers: Mutex<Vec<(u64, MultiplexedConnection)>>,
}

impl Driver {
    async fn connection(&self, blocking: bool) -> Result<MultiplexedConnection, TransportError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(if blocking { None } else { Some(self.connect_timeout) });
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|error| connect_error(&self.server, &error))
    }
}

impl LinkDriver for Driver {
    type Connection = MultiplexedConnection;

    fn open(self: &Arc<Self>) -> BoxFuture<'_, Result<MultiplexedConnection, TransportError>> {
        Box::pin(self.connection(false))
    }

    fn check<'a>(
        &'a self,
        commands: &'a MultiplexedConnection,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            tokio::time::sleep(PING_EVERY).await;
            let mut commands = commands.clone();
            redis::cmd("PING").query_async::<()>(&mut commands).await.map_err(|e| e.to_string())
        })
    }

    fn release(&self, commands: MultiplexedConnection) {
        drop(commands);
        lock(&self.receivers).clear();
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
        let driver = Arc::new(Driver {
            server,
            client,
            connect_timeout: options.connect_timeout,
            receivers: Mutex::new(Vec::new()),
        });
        let mut commands = driver.connection(false).await?;
        // Names the connection where `CLIENT LIST` shows it; a server that refuses is fine.
        let mut named = redis::cmd("CLIENT");
        named.arg("SETNAME").arg(name.replace(' ', "_"));
        if let Err(error) = named.query_async::<()>(&mut commands).await {
            tracing::debug!(%error, "Redis did not take the connection's name");
        }
        let link = Link::new(format!("the Redis server at {}", driver.server), commands);
        let supervisor = link.supervise(driver.clone(), options.backoff);
        Ok(RedisBus {
            profile: BusProfile::new("redis", EnvelopeStyle::JsonBody, ReplyRoute::Queue, false),
            link,
            driver,
            supervisor,
        })
    }

    async fn subscribe_pattern(
        &self,
        filter: &str,
        sink: Sink,
    ) -> Result<SubscriptionId, TransportError> {
        let (generation, _) = self.link.check()?;
        let mut pubsub = self.driver.client.get_async_pubsub().await.map_err(|error| {
            TransportError::disconnected(format!(
                "cannot open a subscription on {}: {error}",
                self.link.server()
            ))
        })?;
        pubsub.psubscribe(glob(filter)).await.map_err(|error| {
            TransportError::disconnected(format!(
                "{} refused a subscription to {filter}: {error}",
                self.link.server()
            ))
        })?;
        let link = Arc::downgrade(&self.link);
        let filter = filter.to_owned();
        let task = tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let channel = message.get_channel_name();
                if filter_matches(&filter, channel) {
                    let body = Bytes::copy_from_slice(message.get_payload_bytes());
                    sink(channel, BusMessage::new(body));
                }
            }
            if let Some(link) = link.upgrade() {
                link.lost();
            }
        })
        .abort_handle();
        self.link.keep(generation, task)
    }

    async fn consume_lists(
        &self,
        queues: &[String],
        sink: Sink,
    ) -> Result<SubscriptionId, TransportError> {
        let (generation, _) = self.link.check()?;
        let mut blocking = self.driver.connection(true).await?;
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
                            link.lost();
                        }
                        return;
                    }
                }
            }
        })
        .abort_handle();
        self.link.keep(generation, task)
    }

    /// `BLPOP` on one reply list, on an idle connection of the link's (or a new one), which
    /// goes back to the idle ones afterwards; a wait abandoned half-way drops its connection.
    async fn pop_reply(
        &self,
        queue: &str,
        wait: Duration,
    ) -> Result<Option<BusMessage>, TransportError> {
        let (generation, _) = self.link.check()?;
        let idle = self.idle_receivers().pop();
        let mut connection = match idle {
            Some((kept, connection)) if kept == generation => connection,
            _ => self.driver.connection(true).await?,
        };
        // Redis takes a timeout in seconds, as a double; zero would mean forever.
        let seconds = wait.as_secs_f64().max(0.01);
        let popped = redis::cmd("BLPOP")
            .arg(queue)
            .arg(seconds)
            .query_async::<Option<(String, Vec<u8>)>>(&mut connection)
            .await
            .map_err(|error| {
                self.link.lost();
                TransportError::disconnected(format!(
                    "BLPOP on {} failed: {error}",
                    self.link.server()
                ))
            })?;
        let still_up = self.link.check().is_ok_and(|(now, _)| now == generation);
        let mut idle = self.idle_receivers();
        if idle.len() < IDLE_RECEIVERS && still_up {
            idle.push((generation, connection));
        }
        Ok(popped.map(|(_, body)| BusMessage::new(Bytes::from(body))))
    }

    fn idle_receivers(&self) -> std::sync::MutexGuard<'_, Vec<(u64, MultiplexedConnection)>> {
        lock(&self.driver.receivers)
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
                    self.link.lost();
                    TransportError::disconnected(format!(
                        "cannot {command} to {}: {error}",
                        self.link.server()
                    ))
                } else {
                    TransportError::new(
                        TransportErrorKind::InvalidAddress,
                        format!("{} refused {command}: {error}", self.link.server()),
                    )
                }
            })
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.supervisor.abort();
        self.link.close();
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
        self.link.unsubscribe(id);
    }

    fn receive<'a>(
        &'a self,
        queue: &'a str,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Option<BusMessage>, TransportError>> {
        Box::pin(self.pop_reply(queue, wait))
    }

    fn link(&self) -> watch::Receiver<LinkState> {
        self.link.state()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.supervisor.abort();
            self.link.close();
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

fn connect_error(server: &str, error: &redis::RedisError) -> TransportError {
    let kind = match error.kind() {
        redis::ErrorKind::AuthenticationFailed => TransportErrorKind::AccessDenied,
        _ if switchboard_core::tls::refused_certificate(error) => TransportErrorKind::AccessDenied,
        // redis-rs 1.8 keeps only the text of a TLS error: rustls' own words for a refused
        // certificate.
        _ if error.to_string().contains("invalid peer certificate") => {
            TransportErrorKind::AccessDenied
        }
        _ => TransportErrorKind::Unreachable,
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
        assert!(filter_matches("Clock.*.signal.>", "Clock.k.signal.tick"));
        assert!(filter_matches("Clock.*.signal.>", "Clock.k.signal.tick.x"));
        assert!(
            !filter_matches("Clock.*.signal.>", "Clock.k.x.signal.tick"),
            "a glob `*` spans dots"
        );
        assert!(!filter_matches("Clock.*", "Clock"));
        assert!(!filter_matches("Clock.*", "Clock.a.b"));
    }
}
