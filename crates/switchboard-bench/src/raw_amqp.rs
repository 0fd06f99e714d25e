//! The raw lapin baselines of rows 15 and 16: a request published on the default exchange to a
//! queue the responder consumes, with `reply_to` naming the caller's own queue, which the answer
//! goes to (as our AMQP adapter and commlib-py do it); and a raw publish loop to `amq.topic`
//! with a subscriber on a queue bound to it.

use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer,
    options::{BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions},
    types::{FieldTable, ShortString},
};

use crate::util::{Blast, Msg};

/// The RabbitMQ every AMQP row uses.
pub(crate) const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672";

/// The exchange the responder's ticks are published to.
pub(crate) const TOPICS: &str = "amq.topic";

/// The queues of a responder for `instance` (requests, blasts) and its ticks' routing key.
fn names(instance: &str) -> (String, String, String) {
    (
        format!("sbbench.{instance}.req"),
        format!("sbbench.{instance}.blast"),
        format!("sbbench.{instance}.tick"),
    )
}

/// A connection and one channel on it (dropping the connection closes it).
pub(crate) async fn channel() -> (Connection, Channel) {
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let channel = connection.create_channel().await.expect("a channel");
    (connection, channel)
}

/// Declares `queue` (server-named when empty; exclusive and auto-deleted) and consumes it
/// without acknowledgements, as our adapter does.
pub(crate) async fn consume(channel: &Channel, queue: &str) -> (ShortString, Consumer) {
    let options = QueueDeclareOptions {
        exclusive: queue.is_empty(),
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .expect("declare a queue");
    let name = declared.name().clone();
    let options = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
    let consumer = channel
        .basic_consume(name.clone(), ShortString::from(""), options, FieldTable::default())
        .await
        .expect("consume");
    (name, consumer)
}

pub(crate) async fn publish(
    channel: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    properties: BasicProperties,
) {
    channel
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .expect("publish");
}

/// `serve raw-amqp INSTANCE`: answers requests on `…req` with serde_json decode and encode of
/// the same struct, to the request's `reply_to`; a request on `…blast` publishes `count`
/// messages to `amq.topic` with the routing key `…tick`, then answers. Until killed.
pub(crate) async fn responder(instance: &str) {
    let (_connection, channel) = channel().await;
    let (req, blast, tick) = names(instance);
    let (_, requests) = consume(&channel, &req).await;
    let (_, blasts) = consume(&channel, &blast).await;
    let mut deliveries = futures_util::stream::select(requests, blasts);
    println!("ready");
    while let Some(Ok(delivery)) = deliveries.next().await {
        let Some(reply_to) = delivery.properties.reply_to().clone() else { continue };
        let answer = if delivery.routing_key.as_str() == blast {
            let args: Blast = serde_json::from_slice(&delivery.data).expect("args");
            let payload = serde_json::to_vec(&Msg { data: args.data }).expect("encode");
            for _ in 0..args.count {
                publish(&channel, TOPICS, &tick, &payload, BasicProperties::default()).await;
            }
            serde_json::to_vec(&serde_json::json!({ "sent": args.count })).expect("encode")
        } else {
            let args: Msg = serde_json::from_slice(&delivery.data).expect("args");
            serde_json::to_vec(&Msg { data: args.data }).expect("encode")
        };
        publish(&channel, "", reply_to.as_str(), &answer, BasicProperties::default()).await;
    }
}

/// The raw requester of rows 15 and 16: one request in flight, answered on its own queue.
pub(crate) struct RawRequester {
    _connection: Connection,
    channel: Channel,
    replies: Consumer,
    reply_queue: ShortString,
    req: String,
    blast: String,
    data: String,
}

impl std::fmt::Debug for RawRequester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRequester").field("req", &self.req).finish_non_exhaustive()
    }
}

impl RawRequester {
    pub(crate) async fn connect(instance: &str) -> RawRequester {
        let (req, blast, _) = names(instance);
        let (connection, channel) = channel().await;
        let (reply_queue, replies) = consume(&channel, "").await;
        RawRequester {
            _connection: connection,
            channel,
            replies,
            reply_queue,
            req,
            blast,
            data: crate::util::payload_data(),
        }
    }

    async fn ask(&mut self, queue: &str, payload: &[u8]) -> Vec<u8> {
        let properties = BasicProperties::default().with_reply_to(self.reply_queue.clone());
        publish(&self.channel, "", queue, payload, properties).await;
        let delivery = self.replies.next().await.expect("a reply").expect("a delivery");
        delivery.data
    }

    /// Asks the responder to publish `count` ticks; returns once it has answered.
    pub(crate) async fn blast(&mut self, count: u32) {
        let payload =
            serde_json::to_vec(&Blast { count, data: self.data.clone() }).expect("encode");
        let blast = self.blast.clone();
        self.ask(&blast, &payload).await;
    }
}

impl crate::scenarios::RoundTrip for RawRequester {
    async fn once(&mut self) {
        let payload = serde_json::to_vec(&Msg { data: self.data.clone() }).expect("encode");
        let req = self.req.clone();
        let answer = self.ask(&req, &payload).await;
        let reply: Msg = serde_json::from_slice(&answer).expect("decode");
        assert_eq!(reply.data.len(), self.data.len());
    }
}

/// A raw subscriber to `…tick`: a server-named queue bound to `amq.topic`, on a connection of
/// its own.
pub(crate) struct RawSubscriber {
    _connection: Connection,
    _channel: Channel,
    pub(crate) deliveries: Consumer,
}

/// Subscribes to `…tick`; the binding is in force when this returns.
pub(crate) async fn raw_subscriber(instance: &str) -> RawSubscriber {
    let (connection, channel) = channel().await;
    let (queue, consumer) = consume(&channel, "").await;
    channel
        .queue_bind(
            queue,
            TOPICS.into(),
            names(instance).2.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    RawSubscriber { _connection: connection, _channel: channel, deliveries: consumer }
}
