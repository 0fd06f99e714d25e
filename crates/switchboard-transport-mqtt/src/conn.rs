//! One broker connection: owns rumqttc's event loop, reconnects with backoff, re-subscribes
//! everything itself after each reconnect (rumqttc #250) and routes publishes by subscription
//! identifier.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};
use switchboard_core::sync::lock;

use bytes::Bytes;
use rumqttc::v5::{
    AsyncClient, ClientError, ConnectionError, Event, EventLoop, Request,
    mqttbytes::{
        QoS,
        v5::{
            ConnectReturnCode, LastWill, LastWillProperties, Packet, Publish, PublishProperties,
            SubscribeProperties,
        },
    },
};
use switchboard_core::{TransportError, TransportErrorKind, message::Name, transport::BoxFuture};
use tokio::{
    sync::{oneshot, watch},
    time::Instant,
};

use switchboard_wire::mqtt;

use crate::endpoint::MqttEndpoint;
use crate::topics::{self, Kind};

/// The content type of every message with a body.
pub(crate) const JSON: &str = "application/json";

/// What a subscription's messages are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Server: method requests (`…/method/+/request`).
    Requests,
    /// Server: property updates (`…/property/+/update`).
    Updates,
    /// Client: method responses.
    MethodResponses,
    /// Client: property update responses.
    UpdateResponses,
    /// Client: interface info during discovery.
    Interface,
    /// Client: a property's retained value.
    Value(Name),
    /// Client: a signal.
    Signal(Name),
    /// Client: a server's presence topic, checked during discovery.
    Presence,
    /// Client: the connected server's presence topic, watched for as long as the client lives.
    ServerPresence,
    /// Client: the connected instance's interface info, watched for as long as the client lives
    /// (a restarted server announces itself there, possibly with a new presence topic).
    ServerInfo,
    /// Server: commands (`…/command/+`).
    Commands,
    /// Server: action requests (`…/action/+/+`).
    ActionRequests,
    /// Server, a replica: action requests to this replica only (`…/action/+/+/{client_id}`).
    ReplicaActionRequests,
    /// Client: the presence of a replica that took a request or runs a goal, by its client id.
    ReplicaPresence(String),
    /// Server: every client's presence (`client/+/online`).
    ClientPresence,
    /// Server: its own presence topic, watched so that a `{"online":false}` someone else
    /// published there is answered at once with `{"online":true}`.
    OwnPresence,
    /// Client: signals to this client only (`client/{client_id}/…/signal/+`).
    ClientSignals,
    /// Client: replies to action requests and goal events (`client/{client_id}/…/action/+/event`).
    ActionEvents,
    /// A node's connection (`node_bus`): one subscription of its bus, by route id.
    Bus(u64),
}

/// What a connection does when the broker cannot be reached at its first connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstConnect {
    /// Fail at once: a client's caller decides what to do.
    FailFast,
    /// Retry with backoff, logging why, until `until` if set: a server started before its
    /// broker waits for it.
    Wait { until: Option<Instant> },
}

/// How often a server waiting for its broker says it still waits.
const WAIT_REPORT_INTERVAL: Duration = Duration::from_secs(30);

/// A server's wait for a broker it could not reach at start.
#[derive(Debug)]
struct BrokerWait {
    started: Instant,
    until: Option<Instant>,
    attempts: u32,
    reported: Option<Instant>,
}

impl BrokerWait {
    fn new(until: Option<Instant>) -> Self {
        BrokerWait { started: Instant::now(), until, attempts: 0, reported: None }
    }

    /// Whether to try again after `error`: when it may go away by itself and the wait is not
    /// over. Says why it waits at warn level, then at most every [`WAIT_REPORT_INTERVAL`].
    fn try_again(&mut self, broker: &str, error: &ConnectionError) -> bool {
        self.attempts += 1;
        let now = Instant::now();
        if !may_pass(error) || self.until.is_some_and(|until| now >= until) {
            return false;
        }
        let due = self.reported.is_none_or(|at| now.duration_since(at) >= WAIT_REPORT_INTERVAL);
        if due {
            self.reported = Some(now);
            let waited = now.duration_since(self.started);
            tracing::warn!(%broker, %error, attempts = self.attempts, ?waited, "cannot reach the MQTT broker; the server waits for it and keeps retrying");
        } else {
            tracing::debug!(%broker, %error, attempts = self.attempts, "the MQTT broker is still unreachable");
        }
        true
    }

    /// The error a server reports when it stops waiting: the last one, saying how long it
    /// waited when it waited at all.
    fn gave_up(&self, error: TransportError) -> TransportError {
        if self.attempts <= 1 {
            return error;
        }
        let waited = self.started.elapsed();
        TransportError::new(
            error.kind(),
            format!(
                "{} (gave up after {waited:.1?} and {} attempts)",
                error.message(),
                self.attempts
            ),
        )
    }

    /// Says that the wait is over, when there was one.
    fn reached(&self, broker: &str) {
        if self.attempts > 0 {
            let waited = self.started.elapsed();
            tracing::info!(%broker, attempts = self.attempts + 1, ?waited, "reached the MQTT broker");
        }
    }
}

/// Whether a failed connect may succeed later without anyone changing anything: the broker is
/// not up yet (refused, absent socket, timeout, reset) or says it is busy. Credentials,
/// certificates, client ids and protocol errors fail at once.
fn may_pass(error: &ConnectionError) -> bool {
    match error {
        ConnectionError::Io(io) => io.kind() != std::io::ErrorKind::PermissionDenied,
        ConnectionError::Timeout(_) | ConnectionError::MqttState(_) => true,
        ConnectionError::ConnectionRefused(code) => matches!(
            code,
            ConnectReturnCode::ServerUnavailable
                | ConnectReturnCode::ServiceUnavailable
                | ConnectReturnCode::ServerBusy
                | ConnectReturnCode::ConnectionRateExceeded
        ),
        _ => false,
    }
}

/// Stops a connection whose `start` did not succeed; disarmed on success.
struct Abandoned(Option<Arc<Conn>>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            conn.shutdown();
        }
    }
}

/// Whether a connection is open, and how it is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Open,
    /// A farewell was queued: the connection's task sees it out before it ends.
    Farewell,
    /// Closed without a farewell (never connected, down, or given up on).
    Silent,
}

/// One publish waiting in a connection's ordered queue.
type Ordered = (String, QoS, Bytes, PublishProperties);

/// What a connection reports to its owner (server or client state).
pub(crate) trait Handler: Send + Sync + 'static {
    /// A CONNACK arrived and every subscription was re-issued. `first` on the initial connect.
    fn on_connected(&self, conn: &Arc<Conn>, first: bool);
    /// A message arrived on a subscription.
    fn on_publish(&self, conn: &Arc<Conn>, route: &Route, publish: Publish);
    /// An established connection was lost; reconnecting has begun.
    fn on_lost(&self, conn: &Arc<Conn>, error: TransportError);
}

struct Subscription {
    id: usize,
    qos: QoS,
    route: Route,
}

/// A live broker connection shared by a server or client and its event-loop task.
pub(crate) struct Conn {
    client: AsyncClient,
    client_id: String,
    broker: String,
    connected: AtomicBool,
    closed: watch::Sender<Closing>,
    /// Set when the connection's task has ended: whatever it was to send has left or never will.
    finished: watch::Sender<bool>,
    subscriptions: Mutex<BTreeMap<String, Subscription>>,
    routes: Mutex<HashMap<usize, Route>>,
    next_id: AtomicUsize,
    options: crate::endpoint::MqttOptions,
    /// The broker's confirmations of the subscriptions made at the first connect; `start`
    /// waits for them, so a server is reachable when it returns.
    first_confirmations: Mutex<Vec<oneshot::Receiver<()>>>,
    /// Waiters for SUBACKs: queued in the order SUBSCRIBEs were queued, then keyed by packet id
    /// once rumqttc reports the id it used.
    acks: Mutex<Acks>,
    /// Publishes that must leave in exactly the order they were queued (goal replies and events).
    ordered: tokio::sync::mpsc::UnboundedSender<Ordered>,
}

#[derive(Default)]
struct Acks {
    queued: std::collections::VecDeque<Option<oneshot::Sender<()>>>,
    by_packet: HashMap<u16, oneshot::Sender<()>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("client_id", &self.client_id)
            .field("broker", &self.broker)
            .field("connected", &self.connected.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Client ids in use by connections of this process, so a reused explicit id fails clearly
/// instead of two connections taking each other's session over forever.
static IN_USE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Request channel capacity between our code and rumqttc's event loop.
const CHANNEL: usize = 4096;

/// Replaces control characters, which brokers reject in MQTT strings (mosquitto drops the
/// connection), and bounds the length.
pub(crate) fn clean(text: &str) -> String {
    const LIMIT: usize = 4096;
    let mut out: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if out.len() > LIMIT {
        let mut end = LIMIT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

/// Publish properties with our content type.
pub(crate) fn json_properties() -> PublishProperties {
    PublishProperties { content_type: Some(JSON.to_owned()), ..Default::default() }
}

/// How long a retained `{"online":false}` (a last will, or a clean close's farewell) stays on
/// the broker: longer than interface info lives (144 s), so a dead server's leftover
/// announcement is never mistaken for a live one, yet departed clients do not pile up
/// retained messages on the broker forever.
pub(crate) const OFFLINE_EXPIRY_SECS: u32 = 600;

/// The longest a clean close waits for its farewell to reach the broker.
pub(crate) const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);

/// One message of a farewell: topic, retain flag, payload and properties.
pub(crate) type Farewell = (Kind, String, Bytes, PublishProperties);

/// The properties of a retained `{"online":false}`.
pub(crate) fn offline_properties() -> PublishProperties {
    PublishProperties { message_expiry_interval: Some(OFFLINE_EXPIRY_SECS), ..json_properties() }
}

impl Conn {
    /// Connects, waits for the first CONNACK and starts the event-loop task. `first_connect`
    /// says what to do while the broker cannot be reached.
    pub(crate) async fn start(
        endpoint: &MqttEndpoint,
        client_id: String,
        will_topic: String,
        handler: Arc<dyn Handler>,
        initial: Vec<(String, Route)>,
        first_connect: FirstConnect,
    ) -> Result<Arc<Conn>, TransportError> {
        {
            let mut in_use = lock(&IN_USE);
            if in_use.contains(&client_id) {
                return Err(TransportError::new(
                    TransportErrorKind::InvalidAddress,
                    format!(
                        "MQTT client id `{client_id}` is already used by another connection of this process; each server and client needs its own"
                    ),
                ));
            }
            in_use.push(client_id.clone());
        }
        let release = ReleaseId(client_id.clone());
        let mut options = endpoint.raw_options(&client_id)?;
        let will_properties = LastWillProperties {
            content_type: Some(JSON.to_owned()),
            delay_interval: None,
            payload_format_indicator: None,
            message_expiry_interval: Some(OFFLINE_EXPIRY_SECS),
            response_topic: None,
            correlation_data: None,
            user_properties: Vec::new(),
        };
        options.set_last_will(LastWill::new(
            will_topic,
            &br#"{"online":false}"#[..],
            Kind::Lwt.qos(),
            Kind::Lwt.retained(),
            Some(will_properties),
        ));
        let (client, eventloop) = AsyncClient::new(options, CHANNEL);
        let (closed, _) = watch::channel(Closing::Open);
        let (finished, _) = watch::channel(false);
        let (ordered, mut queue) = tokio::sync::mpsc::unbounded_channel::<Ordered>();
        {
            // One task publishes them one after the other, waiting for room in rumqttc's queue
            // rather than falling back to a task per message, which could reorder them.
            let client = client.clone();
            tokio::spawn(async move {
                while let Some((topic, qos, payload, properties)) = queue.recv().await {
                    if let Err(error) =
                        client.publish_with_properties(topic, qos, false, payload, properties).await
                    {
                        tracing::debug!(%error, "an ordered publish was dropped");
                    }
                }
            });
        }
        let conn = Arc::new(Conn {
            client,
            client_id,
            broker: endpoint.broker().to_string(),
            connected: AtomicBool::new(false),
            closed,
            finished,
            subscriptions: Mutex::new(BTreeMap::new()),
            routes: Mutex::new(HashMap::new()),
            next_id: AtomicUsize::new(10),
            options: endpoint.options().clone(),
            acks: Mutex::new(Acks::default()),
            ordered,
            first_confirmations: Mutex::new(Vec::new()),
        });
        // Registered before the first CONNACK, so they go out before anything is published.
        for (filter, route) in initial {
            // Commands are exactly-once end to end (StingerIPC 0.3.0).
            let qos = if route == Route::Commands {
                Kind::Commands.subscription_qos()
            } else {
                topics::qos(mqtt::SUBSCRIPTION_QOS)
            };
            let _ = conn.subscribe_qos(&filter, route, false, qos);
        }
        let (first_tx, first_rx) = oneshot::channel();
        let wait = match first_connect {
            FirstConnect::FailFast => None,
            FirstConnect::Wait { until } => Some(BrokerWait::new(until)),
        };
        tokio::spawn(run(conn.clone(), eventloop, handler, first_tx, wait, release));
        // From here on, every way out of `start` but success (this future dropped while it
        // waits for the broker included) stops the connection's task.
        let mut abandoned = Abandoned(Some(conn.clone()));
        let answer_within = endpoint.options().connect_timeout + Duration::from_millis(500);
        let deadline = match first_connect {
            FirstConnect::FailFast => Some(Instant::now() + answer_within),
            FirstConnect::Wait { until } => until.map(|until| until + answer_within),
        };
        let first = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, first_rx).await,
            None => Ok(first_rx.await),
        };
        match first {
            Ok(Ok(Ok(()))) => {
                // A server is reachable only once the broker has confirmed its subscriptions:
                // a request published before that would be dropped (requests go at QoS 0).
                let confirmations = std::mem::take(&mut *lock(&conn.first_confirmations));
                let confirmed = async {
                    for confirmation in confirmations {
                        let _ = confirmation.await;
                    }
                };
                if tokio::time::timeout(endpoint.options().connect_timeout, confirmed)
                    .await
                    .is_err()
                {
                    return Err(TransportError::new(
                        TransportErrorKind::Io,
                        format!(
                            "the MQTT broker at {} did not confirm the subscriptions in time",
                            endpoint.broker()
                        ),
                    ));
                }
                abandoned.0 = None;
                Ok(conn)
            }
            Ok(Ok(Err(error))) => Err(error),
            Ok(Err(_)) => Err(TransportError::new(
                TransportErrorKind::Closed,
                "the MQTT connection task ended",
            )),
            Err(_) => Err(TransportError::new(
                TransportErrorKind::Io,
                format!("the MQTT broker at {} did not answer in time", endpoint.broker()),
            )),
        }
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn broker(&self) -> &str {
        &self.broker
    }

    pub(crate) fn options(&self) -> &crate::endpoint::MqttOptions {
        &self.options
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow() != Closing::Open
    }

    /// The error for a send while the connection is down.
    pub(crate) fn not_connected(&self) -> TransportError {
        if self.is_closed() {
            TransportError::new(TransportErrorKind::Closed, "the MQTT connection was closed")
        } else {
            TransportError::not_connected(format!(
                "not connected to the MQTT broker at {} (reconnecting)",
                self.broker
            ))
        }
    }

    /// Subscribes to `filter` (once; later calls only re-issue it when `refresh` is set, which
    /// makes the broker send its retained messages again).
    pub(crate) fn subscribe(
        &self,
        filter: &str,
        route: Route,
        refresh: bool,
    ) -> Option<oneshot::Receiver<()>> {
        self.subscribe_qos(filter, route, refresh, topics::qos(mqtt::SUBSCRIPTION_QOS))
    }

    /// [`subscribe`](Self::subscribe) at another maximum QoS.
    pub(crate) fn subscribe_qos(
        &self,
        filter: &str,
        route: Route,
        refresh: bool,
        qos: QoS,
    ) -> Option<oneshot::Receiver<()>> {
        let (id, qos, fresh) = {
            let mut subscriptions = lock(&self.subscriptions);
            match subscriptions.get(filter) {
                Some(existing) => (existing.id, existing.qos, false),
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    lock(&self.routes).insert(id, route.clone());
                    subscriptions.insert(filter.to_owned(), Subscription { id, qos, route });
                    (id, qos, true)
                }
            }
        };
        if (fresh || refresh) && self.is_connected() {
            let (tx, rx) = oneshot::channel();
            self.send_subscribe(filter, id, qos, Some(tx));
            return Some(rx);
        }
        None
    }

    /// Subscribes and waits (bounded) until the broker confirmed it, so that messages
    /// published after this returns are delivered.
    pub(crate) async fn subscribe_confirmed(
        &self,
        filter: &str,
        route: Route,
    ) -> Result<(), TransportError> {
        let Some(ack) = self.subscribe(filter, route, false) else { return Ok(()) };
        match tokio::time::timeout(self.options.connect_timeout, ack).await {
            Ok(Ok(())) => Ok(()),
            _ if !self.is_connected() => Err(self.not_connected()),
            Ok(Err(_)) => Ok(()),
            Err(_) => Err(TransportError::new(
                TransportErrorKind::Io,
                format!(
                    "the MQTT broker at {} did not confirm a subscription in time",
                    self.broker
                ),
            )),
        }
    }

    /// Drops a subscription.
    pub(crate) fn unsubscribe(&self, filter: &str) {
        let removed = lock(&self.subscriptions).remove(filter);
        if let Some(subscription) = removed {
            lock(&self.routes).remove(&subscription.id);
            if self.is_connected()
                && let Err(error) = self.client.try_unsubscribe(filter)
            {
                let client = self.client.clone();
                let filter = filter.to_owned();
                tracing::debug!(%error, "request queue full; unsubscribing from a task");
                tokio::spawn(async move { client.unsubscribe(filter).await });
            }
        }
    }

    fn send_subscribe(&self, filter: &str, id: usize, qos: QoS, ack: Option<oneshot::Sender<()>>) {
        let properties = SubscribeProperties { id: Some(id), user_properties: Vec::new() };
        let mut acks = lock(&self.acks);
        let queued = self.client.try_subscribe_with_properties(filter, qos, properties.clone());
        if queued.is_ok() {
            acks.queued.push_back(ack);
        }
        drop(acks);
        if let Err(error) = queued {
            tracing::debug!(%error, "request queue full; subscribing from a task");
            let client = self.client.clone();
            let filter = filter.to_owned();
            tokio::spawn(
                async move { client.subscribe_with_properties(filter, qos, properties).await },
            );
        }
    }

    /// Re-issues every subscription; the receivers resolve as the broker confirms each one.
    fn resubscribe_all(&self) -> Vec<oneshot::Receiver<()>> {
        let all: Vec<(String, usize, QoS)> = lock(&self.subscriptions)
            .iter()
            .map(|(filter, s)| (filter.clone(), s.id, s.qos))
            .collect();
        all.into_iter()
            .map(|(filter, id, qos)| {
                let (tx, rx) = oneshot::channel();
                self.send_subscribe(&filter, id, qos, Some(tx));
                rx
            })
            .collect()
    }

    fn route(&self, publish: &Publish) -> Option<Route> {
        let routes = lock(&self.routes);
        let ids = publish.properties.as_ref().map(|p| p.subscription_identifiers.as_slice());
        if let Some(route) = ids.unwrap_or_default().iter().find_map(|id| routes.get(id)) {
            return Some(route.clone());
        }
        // A broker that drops identifiers: fall back to the first matching filter.
        let topic = std::str::from_utf8(&publish.topic).ok()?;
        let subscriptions = lock(&self.subscriptions);
        subscriptions
            .iter()
            .find(|(filter, _)| filter_matches(unshared(filter), topic))
            .map(|(_, s)| s.route.clone())
    }

    /// Queues a publish of `kind`, at its QoS and retain flag, without waiting (falls back to a
    /// task when the queue is full).
    pub(crate) fn publish_now(
        &self,
        kind: Kind,
        topic: String,
        payload: Bytes,
        properties: PublishProperties,
    ) -> Result<(), TransportError> {
        self.publish_now_qos(topic, kind.qos(), kind.retained(), payload, properties)
    }

    /// Queues a request or reply at the configured RPC QoS (see [`MqttOptions::rpc_qos`]).
    ///
    /// [`MqttOptions::rpc_qos`]: crate::MqttOptions::rpc_qos
    pub(crate) fn publish_rpc(
        &self,
        topic: String,
        payload: Bytes,
        properties: PublishProperties,
    ) -> Result<(), TransportError> {
        // 0 or 1, which `MqttOptions::rpc_qos` allows.
        let qos = topics::qos(self.options.rpc_qos.min(1));
        self.publish_now_qos(topic, qos, false, payload, properties)
    }

    /// Queues a publish of `kind` (at its QoS, not retained) behind every earlier ordered one;
    /// never reorders.
    pub(crate) fn publish_ordered(
        &self,
        kind: Kind,
        topic: String,
        payload: Bytes,
        properties: PublishProperties,
    ) -> Result<(), TransportError> {
        let qos = kind.qos();
        if !valid_topic(&topic) {
            return Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("`{}` is not a valid MQTT topic to publish to", clean(&topic)),
            ));
        }
        self.ordered.send((topic, qos, payload, properties)).map_err(|_| {
            TransportError::new(TransportErrorKind::Closed, "the MQTT connection was closed")
        })
    }

    pub(crate) fn publish_now_qos(
        &self,
        topic: String,
        qos: QoS,
        retain: bool,
        payload: Bytes,
        properties: PublishProperties,
    ) -> Result<(), TransportError> {
        match self.client.try_publish_with_properties(
            topic.clone(),
            qos,
            retain,
            payload.clone(),
            properties.clone(),
        ) {
            Ok(()) => Ok(()),
            Err(ClientError::TryRequest(_)) | Err(ClientError::Request(_))
                if !valid_topic(&topic) =>
            {
                Err(TransportError::new(
                    TransportErrorKind::Protocol,
                    format!("`{}` is not a valid MQTT topic to publish to", clean(&topic)),
                ))
            }
            Err(_) => {
                let client = self.client.clone();
                tokio::spawn(async move {
                    let sent = client
                        .publish_with_properties(topic, qos, retain, payload, properties)
                        .await;
                    if let Err(error) = sent {
                        tracing::debug!(%error, "a queued publish was dropped");
                    }
                });
                Ok(())
            }
        }
    }

    /// Queues a publish of `kind`, at its QoS and retain flag, waiting for room in the queue
    /// (keeps order under load).
    pub(crate) async fn publish(
        &self,
        kind: Kind,
        topic: String,
        payload: Bytes,
        properties: PublishProperties,
    ) -> Result<(), TransportError> {
        if !valid_topic(&topic) {
            return Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("`{}` is not a valid MQTT topic to publish to", clean(&topic)),
            ));
        }
        self.client
            .publish_with_properties(topic, kind.qos(), kind.retained(), payload, properties)
            .await
            .map_err(|_| self.not_connected())
    }

    /// Queues a publish of `kind` like [`publish`](Self::publish), but without building a
    /// waiting future when rumqttc's request queue has room, which is nearly always: the
    /// returned future is then zero-sized, so boxing it allocates nothing. When the queue is
    /// full, the future waits for room, so the caller's publishes stay in order.
    pub(crate) fn publish_when_ready(
        &self,
        kind: Kind,
        topic: String,
        payload: Bytes,
        properties: PublishProperties,
    ) -> BoxFuture<'_, Result<(), TransportError>> {
        let retain = kind.retained();
        if !valid_topic(&topic) {
            return Box::pin(std::future::ready(Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("`{}` is not a valid MQTT topic to publish to", clean(&topic)),
            ))));
        }
        match self.client.try_publish_with_properties(
            topic,
            kind.qos(),
            retain,
            payload,
            properties,
        ) {
            Ok(()) => Box::pin(Queued),
            Err(ClientError::TryRequest(Request::Publish(publish))) => Box::pin(async move {
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                let properties = publish.properties.unwrap_or_default();
                self.client
                    .publish_with_properties(
                        topic,
                        publish.qos,
                        retain,
                        publish.payload,
                        properties,
                    )
                    .await
                    .map_err(|_| self.not_connected())
            }),
            Err(_) => Box::pin(std::future::ready(Err(self.not_connected()))),
        }
    }

    /// Says goodbye and closes: publishes `finals` as their kinds say, then disconnects normally (so the
    /// broker sends no will), and returns once the broker has closed the connection, for at most
    /// [`FAREWELL_TIMEOUT`]. When the runtime is dropped right after, nothing is left unsent.
    pub(crate) async fn close(&self, finals: Vec<Farewell>) {
        if self.begin_close() {
            for (kind, topic, payload, properties) in finals {
                // Room in the queue is made by the connection's task, which is saying goodbye
                // now; once it has ended, these fail at once instead of waiting.
                let (qos, retain) = (kind.qos(), kind.retained());
                let _ = self
                    .client
                    .publish_with_properties(topic, qos, retain, payload, properties)
                    .await;
            }
            let _ = self.client.disconnect().await;
        }
        let mut finished = self.finished.subscribe();
        // The task bounds its farewell itself; this bound only guards against a task that
        // never ran (its runtime gone).
        let _ = tokio::time::timeout(FAREWELL_TIMEOUT * 2, finished.wait_for(|done| *done)).await;
    }

    /// Like [`close`](Self::close), without waiting: the farewell leaves from the connection's
    /// task while the runtime still runs it. For `Drop`, and for clients, whose `close` is not
    /// awaited.
    pub(crate) fn start_close(&self, finals: Vec<Farewell>) {
        if self.begin_close() {
            for (kind, topic, payload, properties) in finals {
                let _ = self.client.try_publish_with_properties(
                    topic,
                    kind.qos(),
                    kind.retained(),
                    payload,
                    properties,
                );
            }
            let _ = self.client.try_disconnect();
        }
    }

    /// Marks the connection closed. True when this is the first close and the connection is
    /// up: the caller queues the farewell, and the connection's task sees it out.
    fn begin_close(&self) -> bool {
        let goodbye = if self.is_connected() { Closing::Farewell } else { Closing::Silent };
        self.mark_closed(goodbye) && goodbye == Closing::Farewell
    }

    /// Moves the connection from open to closed `how`; false when it was closed already.
    fn mark_closed(&self, how: Closing) -> bool {
        self.closed.send_if_modified(|closing| {
            let first = *closing == Closing::Open;
            if first {
                *closing = how;
            }
            first
        })
    }

    /// Stops without any farewell messages.
    fn shutdown(&self) {
        self.mark_closed(Closing::Silent);
    }
}

/// The future of a publish rumqttc took at once: complete, and zero-sized.
struct Queued;

impl std::future::Future for Queued {
    type Output = Result<(), TransportError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(Ok(()))
    }
}

struct ReleaseId(String);

impl Drop for ReleaseId {
    fn drop(&mut self) {
        lock(&IN_USE).retain(|id| *id != self.0);
    }
}

fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// MQTT topic filter matching (`+` one level, `#` the rest).
pub(crate) fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if topic_levels.next().is_none() {
                    return false;
                }
            }
            literal => {
                if topic_levels.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    topic_levels.next().is_none()
}

fn map_error(broker: &str, error: &ConnectionError) -> TransportError {
    match error {
        ConnectionError::Io(io) => {
            // An unreachable broker says nothing about the service, so this is never `NotFound`
            // (kept for an instance nobody announces): a refused or unanswered connection is
            // `Unreachable`, as on every broker.
            TransportError::from_io(
                format!("cannot reach the MQTT broker at {broker}"),
                std::io::Error::new(io.kind(), io.to_string()),
            )
        }
        ConnectionError::ConnectionRefused(code) => {
            let kind = match code {
                ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword => {
                    TransportErrorKind::AccessDenied
                }
                ConnectReturnCode::ClientIdentifierNotValid => TransportErrorKind::InvalidAddress,
                _ => TransportErrorKind::Protocol,
            };
            TransportError::new(
                kind,
                format!("the MQTT broker at {broker} refused the connection: {code:?}"),
            )
        }
        ConnectionError::Tls(tls) => {
            // A certificate the verifier refuses (unknown issuer, wrong name, expired) denies
            // access; any other handshake failure (such as a plain-MQTT port) breaks the protocol.
            let rustls_error = match tls {
                rumqttc::TlsError::TLS(e) => Some(e),
                rumqttc::TlsError::Io(io) => io.get_ref().and_then(|e| e.downcast_ref()),
                _ => None,
            };
            let kind = match rustls_error {
                Some(rustls::Error::InvalidCertificate(_)) => TransportErrorKind::AccessDenied,
                _ => TransportErrorKind::Protocol,
            };
            let reason = match rustls_error {
                Some(e) => e.to_string(),
                None => tls.to_string(),
            };
            TransportError::new(
                kind,
                format!("the TLS handshake with the MQTT broker at {broker} failed: {reason}"),
            )
        }
        ConnectionError::Timeout(_) => TransportError::new(
            TransportErrorKind::Unreachable,
            format!("the MQTT broker at {broker} did not answer in time"),
        ),
        other => TransportError::new(
            TransportErrorKind::Disconnected,
            format!("lost the connection to the MQTT broker at {broker}: {other}"),
        ),
    }
}

async fn run(
    conn: Arc<Conn>,
    mut eventloop: EventLoop,
    handler: Arc<dyn Handler>,
    first: oneshot::Sender<Result<(), TransportError>>,
    wait: Option<BrokerWait>,
    release: ReleaseId,
) {
    let mut closed = conn.closed.subscribe();
    // Raced once rather than around every event: a `select!` per event moves rumqttc's large
    // poll future (2.7 kB) several times per message.
    let closing = tokio::select! {
        biased;
        closing = closed.wait_for(|closing| *closing != Closing::Open) => {
            closing.map_or(Closing::Silent, |closing| *closing)
        }
        () = drive(conn.clone(), &mut eventloop, handler, first, wait) => Closing::Silent,
    };
    if closing == Closing::Farewell && conn.is_connected() {
        let farewell = tokio::time::timeout(FAREWELL_TIMEOUT, farewell(&mut eventloop));
        if farewell.await.is_err() {
            tracing::warn!(broker = %conn.broker, "the MQTT broker did not close the connection within {FAREWELL_TIMEOUT:?} of our farewell");
        }
    }
    conn.connected.store(false, Ordering::Release);
    conn.shutdown();
    drop(release);
    drop(eventloop);
    conn.finished.send_replace(true);
    tracing::debug!(client_id = %conn.client_id, "MQTT connection task ended");
}

/// Polls the event loop while the farewell [`Conn::close`] queues goes out, until the broker
/// closes the connection in answer to our DISCONNECT. Nothing received is delivered any more.
///
/// The broker handles a connection's packets in order, so once it closes the connection it
/// has stored (or cleared) every retained message queued before the DISCONNECT, and drops the
/// will. Reading on until then also keeps unread acknowledgements from turning our close into
/// a reset.
async fn farewell(eventloop: &mut EventLoop) {
    let mut disconnected = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => disconnected = true,
            Ok(_) => {}
            Err(error) => {
                if !disconnected {
                    tracing::debug!(%error, "the MQTT connection broke during the farewell");
                }
                return;
            }
        }
    }
}

/// Polls the event loop until the connection is closed (or the first connect fails, after the
/// server's `wait` for its broker if it has one), routing what arrives and reconnecting with
/// backoff.
async fn drive(
    conn: Arc<Conn>,
    eventloop: &mut EventLoop,
    handler: Arc<dyn Handler>,
    first: oneshot::Sender<Result<(), TransportError>>,
    mut wait: Option<BrokerWait>,
) {
    let mut first = Some(first);
    let mut closed = conn.closed.subscribe();
    let mut backoff = conn.options.min_backoff;
    let mut up = false;
    loop {
        let event = eventloop.poll().await;
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = conn.options.min_backoff;
                let confirmations = conn.resubscribe_all();
                if first.is_some() {
                    *lock(&conn.first_confirmations) = confirmations;
                }
                conn.connected.store(true, Ordering::Release);
                up = true;
                tracing::debug!(client_id = %conn.client_id, broker = %conn.broker, "connected");
                handler.on_connected(&conn, first.is_some());
                if let Some(first) = first.take() {
                    if let Some(wait) = wait.take() {
                        wait.reached(&conn.broker);
                    }
                    let _ = first.send(Ok(()));
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => match conn.route(&publish) {
                Some(route) => handler.on_publish(&conn, &route, publish),
                None => {
                    tracing::debug!(topic = ?publish.topic, "a message matched no subscription")
                }
            },
            Ok(Event::Outgoing(rumqttc::Outgoing::Subscribe(packet))) => {
                let mut acks = lock(&conn.acks);
                if let Some(Some(waiter)) = acks.queued.pop_front() {
                    acks.by_packet.insert(packet, waiter);
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if let Some(waiter) = lock(&conn.acks).by_packet.remove(&ack.pkid) {
                    let _ = waiter.send(());
                }
            }
            Ok(Event::Incoming(Packet::Disconnect(disconnect))) => {
                tracing::warn!(reason = ?disconnect.reason_code, broker = %conn.broker, "the broker disconnected us");
            }
            Ok(_) => {}
            Err(error) => {
                let was_up = std::mem::replace(&mut up, false);
                conn.connected.store(false, Ordering::Release);
                *lock(&conn.acks) = Acks::default();
                if conn.is_closed() {
                    break;
                }
                if first.is_some() {
                    if !wait.as_mut().is_some_and(|wait| wait.try_again(&conn.broker, &error)) {
                        let mut failure = map_error(&conn.broker, &error);
                        if let Some(wait) = &wait {
                            failure = wait.gave_up(failure);
                        }
                        if let Some(first) = first.take() {
                            let _ = first.send(Err(failure));
                        }
                        break;
                    }
                } else if was_up {
                    tracing::warn!(%error, broker = %conn.broker, "lost the MQTT connection; reconnecting");
                    let lost = TransportError::disconnected(format!(
                        "lost the connection to the MQTT broker at {}: {error}",
                        conn.broker
                    ));
                    handler.on_lost(&conn, lost);
                } else {
                    tracing::debug!(%error, "reconnect failed");
                }
                let jitter =
                    Duration::from_millis(u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 20);
                tokio::select! {
                    _ = tokio::time::sleep(backoff + jitter) => {}
                    _ = closed.changed() => break,
                }
                backoff = (backoff * 2).min(conn.options.max_backoff);
            }
        }
    }
}

/// The topic filter of a subscription, without its shared subscription group
/// (`$share/GROUP/filter` → `filter`).
fn unshared(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_, filter)| filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_cleaning() {
        assert_eq!(unshared("$share/switchboard/a/+/c"), "a/+/c");
        assert_eq!(unshared("a/+/c"), "a/+/c");
        assert!(filter_matches(unshared("$share/g/a/+/c"), "a/b/c"));
        assert!(filter_matches("a/+/c", "a/b/c"));
        assert!(filter_matches("a/#", "a/b/c"));
        assert!(!filter_matches("a/+", "a/b/c"));
        assert!(!filter_matches("a/b/c", "a/b"));
        assert_eq!(clean("a\nb\t\u{7}c\u{9b}"), "a b  c ");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_server_reports_now_and_then_and_gives_up_in_time() {
        let refused = || ConnectionError::Io(std::io::ErrorKind::ConnectionRefused.into());
        let mut wait = BrokerWait::new(Some(Instant::now() + Duration::from_secs(70)));
        assert!(wait.try_again("b", &refused()));
        let first = wait.reported.expect("the first failure is reported");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(wait.try_again("b", &refused()));
        assert_eq!(wait.reported, Some(first), "reported again within 30 s");
        tokio::time::advance(Duration::from_secs(25)).await;
        assert!(wait.try_again("b", &refused()));
        assert_eq!(wait.reported, Some(first + Duration::from_secs(35)), "not reported after 30 s");
        tokio::time::advance(Duration::from_secs(40)).await;
        assert!(!wait.try_again("b", &refused()), "retried past the deadline");
        let error = TransportError::new(TransportErrorKind::Io, "cannot reach it");
        let error = wait.gave_up(error);
        assert_eq!(error.kind(), TransportErrorKind::Io);
        assert_eq!(error.message(), "cannot reach it (gave up after 75.0s and 4 attempts)");

        let mut forever = BrokerWait::new(None);
        let busy = ConnectionError::ConnectionRefused(ConnectReturnCode::ServerBusy);
        assert!(forever.try_again("b", &busy));
        let denied = ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        assert!(!forever.try_again("b", &denied), "waited for credentials to change");
    }
}
