//! One NATS connection as a [`Bus`]: publishes with headers and reply subjects, subscriptions
//! and queue groups, and the link's state from async-nats' connection events.

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};
use switchboard_core::sync::lock;

use async_nats::{
    Client, ConnectErrorKind, ConnectOptions, Event, HeaderMap, HeaderName, Message,
    PublishErrorKind, StatusCode, Subscriber,
};
use futures_util::{StreamExt, TryFutureExt};
use switchboard_broker::{
    BrokerOptions, Bus, BusMessage, BusProfile, BusStatus, EnvelopeStyle, Headers, LinkState,
    ReplyRoute, Sink, SubscriptionId,
};
use switchboard_core::{TransportError, TransportErrorKind, transport::BoxFuture};
use tokio::{sync::watch, task::AbortHandle};

use crate::{Credentials, NatsConnector};

/// How long closing waits for what is still queued to reach the server.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// One connection to a NATS server.
pub(crate) struct NatsBus {
    client: Client,
    profile: BusProfile,
    link: Arc<Link>,
    next: AtomicU64,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus").field("server", &self.link.server).finish_non_exhaustive()
    }
}

/// The link's state, shared with async-nats' event callback, and the tasks that forward each
/// subscription's messages, which a lost link ends.
struct Link {
    server: String,
    state: watch::Sender<LinkState>,
    up: AtomicBool,
    generation: AtomicU64,
    subscriptions: Mutex<HashMap<u64, Vec<AbortHandle>>>,
}

impl Link {
    fn on_event(&self, event: Event) {
        match event {
            Event::Disconnected => self.down(),
            Event::Connected => self.up(),
            Event::Closed => {
                self.up.store(false, Ordering::Release);
                self.state.send_replace(LinkState::Closed);
            }
            Event::SlowConsumer(sid) => {
                tracing::warn!(server = %self.server, sid, "a subscription fell behind; the NATS client dropped messages for it")
            }
            other => {
                tracing::debug!(server = %self.server, event = %other, "NATS connection event")
            }
        }
    }

    fn down(&self) {
        if !self.up.swap(false, Ordering::AcqRel) {
            return;
        }
        // The subscriptions go with the link: async-nats would make them again on reconnect,
        // but the layer does that, once it has seen the link come back.
        for task in lock(&self.subscriptions).drain().flat_map(|(_, tasks)| tasks) {
            task.abort();
        }
        let generation = self.generation.load(Ordering::Acquire);
        let error = TransportError::disconnected(format!(
            "lost the connection to the NATS server at {}",
            self.server
        ));
        self.state.send_replace(LinkState::Down { generation, error });
    }

    fn up(&self) {
        if self.up.swap(true, Ordering::AcqRel) {
            return;
        }
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.state.send_replace(LinkState::Up { generation });
    }

    /// The generation in force, or why nothing can be sent.
    fn check(&self) -> Result<u64, TransportError> {
        if self.up.load(Ordering::Acquire) {
            Ok(self.generation.load(Ordering::Acquire))
        } else {
            Err(TransportError::not_connected(format!(
                "no connection to the NATS server at {}",
                self.server
            )))
        }
    }

    /// Keeps a subscription's tasks, unless the link was lost since `generation`.
    fn keep(
        &self,
        id: u64,
        generation: u64,
        tasks: Vec<AbortHandle>,
    ) -> Result<(), TransportError> {
        let mut subscriptions = lock(&self.subscriptions);
        if self.check().ok() != Some(generation) {
            drop(subscriptions);
            tasks.iter().for_each(AbortHandle::abort);
            return Err(TransportError::disconnected(format!(
                "lost the connection to the NATS server at {} while subscribing",
                self.server
            )));
        }
        subscriptions.insert(id, tasks);
        Ok(())
    }
}

impl NatsBus {
    pub(crate) async fn connect(
        connector: &NatsConnector,
        name: &str,
        options: &BrokerOptions,
    ) -> Result<Self, TransportError> {
        let server = connector.to_string();
        let link = Arc::new(Link {
            state: watch::Sender::new(LinkState::Up { generation: 1 }),
            up: AtomicBool::new(true),
            generation: AtomicU64::new(1),
            subscriptions: Mutex::new(HashMap::new()),
            server: server.clone(),
        });
        let events = Arc::downgrade(&link);
        let backoff = options.backoff;
        let mut options = ConnectOptions::new()
            .name(name)
            .connection_timeout(options.connect_timeout)
            .max_reconnects(None)
            .reconnect_delay_callback(move |attempt| backoff.delay(attempt))
            .event_callback(move |event| {
                let link = events.upgrade();
                async move {
                    if let Some(link) = link {
                        link.on_event(event);
                    }
                }
            });
        options = match &connector.credentials {
            Credentials::None => options,
            Credentials::Token(token) => options.token(token.clone()),
            Credentials::UserPassword(user, password) => {
                options.user_and_password(user.clone(), password.clone())
            }
        };
        if connector.tls {
            let config = switchboard_core::tls::client_config(connector.ca.as_deref())?;
            options = options.require_tls(true).tls_client_config(config);
        }
        let client = options
            .connect(connector.servers())
            .await
            .map_err(|error| connect_error(&server, &error))?;
        Ok(NatsBus {
            client,
            profile: BusProfile::new("nats", EnvelopeStyle::Headers, ReplyRoute::Subjects, true),
            link,
            next: AtomicU64::new(1),
        })
    }

    /// Starts forwarding a subscription's messages to `sink`.
    fn forward(subscriber: Subscriber, sink: Sink) -> AbortHandle {
        let mut subscriber = subscriber;
        tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let (subject, message) = bus_message(message);
                sink(subject.as_str(), message);
            }
        })
        .abort_handle()
    }

    /// Makes the subscriptions `make` opens, checks they are in force at the server, and keeps
    /// them under one id.
    async fn add<'a>(
        &'a self,
        subscriptions: impl Iterator<
            Item = BoxFuture<'a, Result<Subscriber, async_nats::SubscribeError>>,
        >,
        sink: Sink,
    ) -> Result<SubscriptionId, TransportError> {
        let generation = self.link.check()?;
        let mut tasks = Vec::new();
        let made = async {
            for subscription in subscriptions {
                let subscriber = subscription.await.map_err(|e| {
                    TransportError::new(
                        TransportErrorKind::InvalidAddress,
                        format!("cannot subscribe: {e}"),
                    )
                })?;
                tasks.push(Self::forward(subscriber, sink.clone()));
            }
            // A PING answered means the server has processed every SUB before it.
            self.client.flush().await.map_err(|e| {
                TransportError::disconnected(format!(
                    "the NATS server at {} did not confirm a subscription: {e}",
                    self.link.server
                ))
            })
        }
        .await;
        if let Err(error) = made {
            tasks.iter().for_each(AbortHandle::abort);
            return Err(error);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.link.keep(id, generation, tasks)?;
        Ok(SubscriptionId(id))
    }

    async fn publish_message(
        &self,
        subject: &str,
        message: BusMessage,
    ) -> Result<(), TransportError> {
        self.link.check()?;
        let subject = subject.to_owned();
        let headers = header_map(message.headers);
        let body = message.body;
        let sent = match (message.reply_to, headers) {
            (None, None) => self.client.publish(subject, body).await,
            (Some(reply), None) => self.client.publish_with_reply(subject, reply, body).await,
            (None, Some(headers)) => self.client.publish_with_headers(subject, headers, body).await,
            (Some(reply), Some(headers)) => {
                self.client.publish_with_reply_and_headers(subject, reply, headers, body).await
            }
        };
        sent.map_err(|error| self.publish_error(&error))
    }

    fn publish_error(&self, error: &async_nats::PublishError) -> TransportError {
        let kind = match error.kind() {
            PublishErrorKind::MaxPayloadExceeded => TransportErrorKind::FrameTooLarge,
            PublishErrorKind::InvalidSubject => TransportErrorKind::InvalidAddress,
            _ => TransportErrorKind::Disconnected,
        };
        TransportError::new(
            kind,
            format!("cannot publish to the NATS server at {}: {error}", self.link.server),
        )
    }
}

impl Bus for NatsBus {
    fn profile(&self) -> &BusProfile {
        &self.profile
    }

    fn publish<'a>(
        &'a self,
        topic: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        if message.headers.is_empty() && message.reply_to.is_none() {
            // Signals, the hot path: nothing around async-nats' own future but the error's
            // mapping, so the future to box stays small.
            if let Err(error) = self.link.check() {
                return Box::pin(std::future::ready(Err(error)));
            }
            let sent = self.client.publish(topic.to_owned(), message.body);
            return Box::pin(sent.map_err(|error| self.publish_error(&error)));
        }
        Box::pin(self.publish_message(topic, message))
    }

    /// A subject whose subscribers share a queue group is a work queue: sending is publishing.
    fn send<'a>(
        &'a self,
        queue: &'a str,
        message: BusMessage,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.publish_message(queue, message))
    }

    fn subscribe<'a>(
        &'a self,
        filter: &'a str,
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>> {
        let subscription: BoxFuture<'a, _> = Box::pin(self.client.subscribe(filter.to_owned()));
        Box::pin(self.add(std::iter::once(subscription), sink))
    }

    fn consume<'a>(
        &'a self,
        queues: &'a [String],
        sink: Sink,
    ) -> BoxFuture<'a, Result<SubscriptionId, TransportError>> {
        let subscriptions = queues.iter().map(|queue| {
            let group: BoxFuture<'a, _> =
                Box::pin(self.client.queue_subscribe(queue.clone(), queue.clone()));
            group
        });
        Box::pin(self.add(subscriptions, sink))
    }

    fn unsubscribe(&self, id: SubscriptionId) {
        if let Some(tasks) = lock(&self.link.subscriptions).remove(&id.0) {
            tasks.iter().for_each(AbortHandle::abort);
        }
    }

    fn link(&self) -> watch::Receiver<LinkState> {
        self.link.state.subscribe()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for task in lock(&self.link.subscriptions).drain().flat_map(|(_, tasks)| tasks) {
                task.abort();
            }
            if let Err(error) = tokio::time::timeout(DRAIN_TIMEOUT, self.client.drain()).await {
                tracing::debug!(%error, server = %self.link.server, "the NATS connection did not drain in time");
            }
            self.link.up.store(false, Ordering::Release);
            self.link.state.send_replace(LinkState::Closed);
        })
    }
}

/// A received NATS message as the layer reads it, and its subject.
fn bus_message(message: Message) -> (async_nats::Subject, BusMessage) {
    let headers = match &message.headers {
        Some(map) => map
            .iter()
            .flat_map(|(name, values)| {
                let name: &str = name.as_ref();
                values.iter().map(move |value| (name.to_owned(), value.as_str().to_owned()))
            })
            .collect(),
        None => Headers::default(),
    };
    let bus_message = BusMessage {
        reply_to: message.reply.map(|reply| reply.to_string()),
        headers,
        body: message.payload,
        status: (message.status == Some(StatusCode::NO_RESPONDERS))
            .then_some(BusStatus::NoResponders),
        correlation_id: None,
    };
    (message.subject, bus_message)
}

/// The layer's headers as NATS headers; `None` when there are none. A name NATS cannot carry
/// is left out (and logged), never a panic.
fn header_map(headers: Headers) -> Option<HeaderMap> {
    if headers.is_empty() {
        return None;
    }
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let parsed = match &name {
            // The layer's own names (`sb-…`), on every request: no parsing, no allocation.
            Cow::Borrowed(name) if is_token(name) => Ok(HeaderName::from_static(name)),
            name => name.parse::<HeaderName>(),
        };
        match parsed {
            Ok(parsed) => map.append(parsed, value),
            Err(error) => tracing::warn!(%name, %error, "a header NATS cannot carry was left out"),
        }
    }
    Some(map)
}

/// Whether `name` is a header name NATS carries as it is: visible ASCII without `:`.
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

fn connect_error(server: &str, error: &async_nats::ConnectError) -> TransportError {
    let kind = match error.kind() {
        ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
            TransportErrorKind::AccessDenied
        }
        ConnectErrorKind::Tls => TransportErrorKind::AccessDenied,
        ConnectErrorKind::ServerParse => TransportErrorKind::InvalidAddress,
        _ if switchboard_core::tls::refused_certificate(error) => TransportErrorKind::AccessDenied,
        _ => TransportErrorKind::Unreachable,
    };
    TransportError::new(kind, format!("cannot connect to the NATS server at {server}: {error}"))
}
