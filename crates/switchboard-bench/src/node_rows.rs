//! Issue 16's node rows: a node's RPC (`switchboard::node`, the API without codegen) timed for
//! row 9's comparison with commlib-py, and row 18, a node's publisher and subscriber against a
//! raw client of the same crate doing the same through the same broker (MQTT, Redis, AMQP),
//! both in this process, rounds interleaved.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard::{
    Endpoint,
    node::{Node, Publisher, Subscriber},
};

use crate::{
    bridge::NodeCall,
    scenarios::round,
    util::{self, Server},
};

/// The brokers row 18 runs on, with the URL our node connects to.
pub(crate) const BROKERS: [(&str, &str); 3] = [
    ("MQTT", "mqtt://127.0.0.1:1883"),
    ("Redis", "redis://127.0.0.1:6379"),
    ("AMQP", crate::raw_amqp::AMQP_URL),
];

/// Messages a throughput run keeps in flight (published, not yet received).
const WINDOW: u64 = 256;

/// `n` node calls of an echo node RPC served by a process of ours on `url`, after `n / 10`
/// calls of warm-up: p50 and p99 in µs.
pub(crate) fn node_rpc(url: &str, n: usize) -> Result<(f64, f64), String> {
    let name = format!("sbbench.noderpc{}", std::process::id());
    let _server = Server::try_spawn("node-echo", &format!("{url}#{name}"), "our node echo")?;
    util::measure_on_runtime(async {
        let mut call = NodeCall::connect(url, &name).await;
        round(&mut call, n / 10).await;
        let samples = round(&mut call, n).await;
        Ok((samples.quantile_us(0.5), samples.quantile_us(0.99)))
    })
}

/// A publisher and a subscriber of one topic, in this process.
pub(crate) trait PubSub {
    /// Publishes one message.
    async fn publish(&mut self);
    /// Waits for the next message and decodes it; false when the stream ended.
    async fn next(&mut self) -> bool;
}

/// Our node's publisher and subscriber.
pub(crate) struct NodePubSub {
    _node: Node,
    publisher: Publisher<Value>,
    subscriber: Subscriber<Value>,
    message: Value,
}

impl NodePubSub {
    pub(crate) async fn connect(url: &str, topic: &str) -> NodePubSub {
        let node = Node::new("bench-pubsub", Endpoint::parse(url).expect("url"));
        let publisher = node.publisher::<Value>(topic).await.expect("a publisher");
        let subscriber = node.subscriber::<Value>(topic).await.expect("a subscriber");
        NodePubSub {
            _node: node,
            publisher,
            subscriber,
            message: json!({ "data": util::payload_data() }),
        }
    }
}

impl PubSub for NodePubSub {
    async fn publish(&mut self) {
        self.publisher.publish(&self.message).await.expect("published");
    }

    async fn next(&mut self) -> bool {
        matches!(self.subscriber.next().await, Some(Ok(_)))
    }
}

/// The same 64-byte JSON message, encoded for each publish as our publisher does.
fn encoded() -> Vec<u8> {
    serde_json::to_vec(&json!({ "data": util::payload_data() })).expect("encode")
}

/// Decodes a received message as our subscriber does.
fn decoded(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok()
}

/// rumqttc: QoS 0 publishes (a node's messages' QoS) and a subscription on its own connection.
pub(crate) struct RawMqtt {
    client: rumqttc::v5::AsyncClient,
    _subscriber: rumqttc::v5::AsyncClient,
    incoming: crate::mqtt::Incoming,
    topic: String,
    message: Value,
}

impl RawMqtt {
    pub(crate) async fn connect(topic: &str) -> RawMqtt {
        use rumqttc::v5::mqttbytes::QoS;
        let id = std::process::id();
        let (client, _) =
            crate::mqtt::connect(&format!("sbbench-raw-pub-{id}"), "127.0.0.1:1883", &[]).await;
        let (subscriber, incoming) = crate::mqtt::connect(
            &format!("sbbench-raw-sub-{id}"),
            "127.0.0.1:1883",
            &[(topic, QoS::AtMostOnce)],
        )
        .await;
        RawMqtt {
            client,
            _subscriber: subscriber,
            incoming,
            topic: topic.to_owned(),
            message: json!({ "data": util::payload_data() }),
        }
    }
}

impl PubSub for RawMqtt {
    async fn publish(&mut self) {
        let body = serde_json::to_vec(&self.message).expect("encode");
        self.client
            .publish(self.topic.clone(), rumqttc::v5::mqttbytes::QoS::AtMostOnce, false, body)
            .await
            .expect("publish");
    }

    async fn next(&mut self) -> bool {
        self.incoming.recv().await.is_some_and(|publish| decoded(&publish.payload))
    }
}

/// redis-rs: `PUBLISH` on a multiplexed connection, `SUBSCRIBE` on a connection of its own.
pub(crate) struct RawRedis {
    connection: redis::aio::MultiplexedConnection,
    messages: std::pin::Pin<Box<dyn futures_util::Stream<Item = redis::Msg> + Send>>,
    channel: String,
}

impl RawRedis {
    pub(crate) async fn connect(channel: &str) -> RawRedis {
        let connection = crate::raw_redis::connect().await.expect("connect to Redis");
        let client = redis::Client::open(crate::raw_redis::REDIS_URL).expect("a Redis URL");
        let mut pubsub = client.get_async_pubsub().await.expect("a pub/sub connection");
        pubsub.subscribe(channel).await.expect("SUBSCRIBE");
        RawRedis {
            connection,
            messages: Box::pin(pubsub.into_on_message()),
            channel: channel.to_owned(),
        }
    }
}

impl PubSub for RawRedis {
    async fn publish(&mut self) {
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(encoded())
            .query_async::<i64>(&mut self.connection)
            .await
            .expect("PUBLISH");
    }

    async fn next(&mut self) -> bool {
        self.messages.next().await.is_some_and(|message| decoded(message.get_payload_bytes()))
    }
}

/// lapin: publishes to `amq.topic`, and consumes a queue bound to it, on one connection.
pub(crate) struct RawAmqp {
    _connection: lapin::Connection,
    channel: lapin::Channel,
    deliveries: lapin::Consumer,
    key: String,
}

impl RawAmqp {
    pub(crate) async fn connect(key: &str) -> RawAmqp {
        use lapin::{options::QueueBindOptions, types::FieldTable};
        let (connection, channel) = crate::raw_amqp::channel().await;
        let consuming = connection.create_channel().await.expect("a channel");
        let (queue, deliveries) = crate::raw_amqp::consume(&consuming, "").await;
        consuming
            .queue_bind(
                queue,
                crate::raw_amqp::TOPICS.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        RawAmqp { _connection: connection, channel, deliveries, key: key.to_owned() }
    }
}

impl PubSub for RawAmqp {
    async fn publish(&mut self) {
        let properties = lapin::BasicProperties::default();
        crate::raw_amqp::publish(
            &self.channel,
            crate::raw_amqp::TOPICS,
            &self.key,
            &encoded(),
            properties,
        )
        .await;
    }

    async fn next(&mut self) -> bool {
        matches!(self.deliveries.next().await, Some(Ok(delivery)) if decoded(&delivery.data))
    }
}

/// Publishes `count` messages with at most [`WINDOW`] in flight, and returns the rate at which
/// they arrived and how many did not (a message missing for 2 s ends the run).
pub(crate) async fn blast(pair: &mut impl PubSub, count: u64) -> (f64, u64) {
    let (mut sent, mut received) = (0u64, 0u64);
    let started = Instant::now();
    while received < count {
        while sent < count && sent - received < WINDOW {
            pair.publish().await;
            sent += 1;
        }
        match tokio::time::timeout(Duration::from_secs(2), pair.next()).await {
            Ok(true) => received += 1,
            Ok(false) | Err(_) => break,
        }
    }
    (received as f64 / started.elapsed().as_secs_f64(), count - received)
}

/// Row 18's figures for one broker.
pub(crate) struct Rates {
    pub(crate) ours: f64,
    pub(crate) raw: f64,
    /// Median over rounds of ours ÷ raw.
    pub(crate) ratio: f64,
    pub(crate) ours_lost: u64,
    pub(crate) raw_lost: u64,
}

/// Row 18 on one broker: `rounds` rounds of `count` messages, raw and ours alternating, after
/// one round of each as a warm-up.
pub(crate) async fn pubsub(
    raw: &mut impl PubSub,
    ours: &mut impl PubSub,
    count: u64,
    rounds: usize,
) -> Rates {
    blast(raw, count / 4).await;
    blast(ours, count / 4).await;
    let (mut raws, mut ourses, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut raw_lost, mut ours_lost) = (0, 0);
    for _ in 0..rounds {
        let (r, lost_r) = blast(raw, count).await;
        let (o, lost_o) = blast(ours, count).await;
        raw_lost += lost_r;
        ours_lost += lost_o;
        ratios.push(o / r);
        raws.push(r);
        ourses.push(o);
    }
    Rates {
        ours: util::median(ourses),
        raw: util::median(raws),
        ratio: util::median(ratios),
        ours_lost,
        raw_lost,
    }
}
