//! The raw rumqttc v5 baselines: a request/response responder and requester using Response
//! Topic and Correlation Data, and a raw publish loop with a subscriber.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::{
    AsyncClient, Event, MqttOptions,
    mqttbytes::{
        QoS,
        v5::{Packet, PublishProperties},
    },
};
use tokio::sync::mpsc;

use crate::util::{Blast, Msg};

fn options(id: &str, hostport: &str) -> MqttOptions {
    let (host, port) = hostport.split_once(':').expect("host:port");
    let mut options = MqttOptions::new(id, host, port.parse().expect("port"));
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_start(true);
    let mut network = rumqttc::NetworkOptions::new();
    // The same socket setting our transport uses.
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    options
}

/// Incoming publishes of a raw client.
pub(crate) type Incoming = mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Publish>;

/// Connects, drives the event loop in a task, and forwards incoming publishes. Returns after
/// the CONNACK and after every `subscriptions` entry is acknowledged.
pub(crate) async fn connect(
    id: &str,
    hostport: &str,
    subscriptions: &[(&str, QoS)],
) -> (AsyncClient, Incoming) {
    // The request queue capacity our transport uses (`conn.rs`, `CHANNEL`).
    let (client, mut eventloop) = AsyncClient::new(options(id, hostport), 4096);
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if tx.send(publish).is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::ConnAck(_) | Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(_) => {}
                Err(error) => {
                    eprintln!("raw mqtt client: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    ready_rx.recv().await.expect("connack");
    for (topic, qos) in subscriptions {
        client.subscribe(*topic, *qos).await.expect("subscribe");
        ready_rx.recv().await.expect("suback");
    }
    (client, rx)
}

fn split(addr: &str) -> (&str, &str) {
    addr.split_once('#').expect("host:port#instance")
}

/// `serve raw-mqtt HOST:PORT#INSTANCE`: answers `…/req` requests on their response topic with
/// the same correlation data, decoding and encoding the same struct with serde_json; a request
/// on `…/blast` publishes `count` messages on `…/tick` at QoS 1 (our signals' QoS), then answers.
pub(crate) async fn raw_responder(addr: &str) {
    let (hostport, instance) = split(addr);
    let req = format!("sbbench/{instance}/req");
    let blast = format!("sbbench/{instance}/blast");
    let tick = format!("sbbench/{instance}/tick");
    let (client, mut incoming) = connect(
        &format!("sbbench-raw-srv-{instance}"),
        hostport,
        &[(req.as_str(), QoS::AtMostOnce), (blast.as_str(), QoS::AtMostOnce)],
    )
    .await;
    println!("ready");
    while let Some(publish) = incoming.recv().await {
        let Some(props) = publish.properties else { continue };
        let Some(response_topic) = props.response_topic else { continue };
        let reply = if publish.topic.as_ref() == req.as_bytes() {
            let args: Msg = serde_json::from_slice(&publish.payload).expect("args");
            serde_json::to_vec(&Msg { data: args.data }).expect("encode")
        } else {
            let args: Blast = serde_json::from_slice(&publish.payload).expect("args");
            for _ in 0..args.count {
                let payload = serde_json::to_vec(&Msg { data: args.data.clone() }).expect("encode");
                client.publish(tick.as_str(), QoS::AtLeastOnce, false, payload).await.expect("pub");
            }
            serde_json::to_vec(&serde_json::json!({ "sent": args.count })).expect("encode")
        };
        let properties = PublishProperties {
            correlation_data: props.correlation_data,
            ..PublishProperties::default()
        };
        client
            .publish_with_properties(response_topic, QoS::AtMostOnce, false, reply, properties)
            .await
            .expect("publish reply");
    }
}

/// The raw requester: one request in flight, matched by correlation data.
#[derive(Debug)]
pub(crate) struct RawRequester {
    client: AsyncClient,
    incoming: Incoming,
    req: String,
    blast: String,
    resp: String,
    next: u64,
    data: String,
}

impl RawRequester {
    pub(crate) async fn connect(addr: &str) -> RawRequester {
        let (hostport, instance) = split(addr);
        let resp = format!("sbbench/{instance}/resp/{}", std::process::id());
        let (client, incoming) = connect(
            &format!("sbbench-raw-cli-{instance}-{}", std::process::id()),
            hostport,
            &[(resp.as_str(), QoS::AtMostOnce)],
        )
        .await;
        RawRequester {
            client,
            incoming,
            req: format!("sbbench/{instance}/req"),
            blast: format!("sbbench/{instance}/blast"),
            resp,
            next: 0,
            data: crate::util::payload_data(),
        }
    }

    async fn request(&mut self, topic: String, payload: Vec<u8>) -> Bytes {
        self.next += 1;
        let correlation = Bytes::copy_from_slice(&self.next.to_be_bytes());
        let properties = PublishProperties {
            response_topic: Some(self.resp.clone()),
            correlation_data: Some(correlation.clone()),
            ..PublishProperties::default()
        };
        self.client
            .publish_with_properties(topic, QoS::AtMostOnce, false, payload, properties)
            .await
            .expect("publish request");
        loop {
            let publish = self.incoming.recv().await.expect("reply");
            let matches = publish
                .properties
                .as_ref()
                .and_then(|p| p.correlation_data.as_ref())
                .is_some_and(|c| *c == correlation);
            if matches {
                return publish.payload;
            }
        }
    }

    /// One echo round trip.
    pub(crate) async fn echo(&mut self) {
        let payload = serde_json::to_vec(&Msg { data: self.data.clone() }).expect("encode");
        let reply = self.request(self.req.clone(), payload).await;
        let reply: Msg = serde_json::from_slice(&reply).expect("decode");
        assert_eq!(reply.data.len(), self.data.len());
    }

    /// Asks the responder to publish `count` ticks; returns once it has answered.
    pub(crate) async fn blast(&mut self, count: u32) {
        let payload =
            serde_json::to_vec(&Blast { count, data: self.data.clone() }).expect("encode");
        self.request(self.blast.clone(), payload).await;
    }
}

/// A raw subscriber to `…/tick` at QoS 1.
pub(crate) async fn raw_subscriber(addr: &str) -> Incoming {
    let (hostport, instance) = split(addr);
    let tick = format!("sbbench/{instance}/tick");
    let (client, incoming) = connect(
        &format!("sbbench-raw-sub-{instance}-{}", std::process::id()),
        hostport,
        &[(tick.as_str(), QoS::AtLeastOnce)],
    )
    .await;
    // The client must outlive this function, or its event loop stops.
    std::mem::forget(client);
    incoming
}
