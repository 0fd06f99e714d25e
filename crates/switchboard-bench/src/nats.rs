//! The raw async-nats baselines of rows 11 and 12: a request/reply responder and requester
//! through the same nats-server, and a raw publish loop with a subscriber.

use futures_util::StreamExt;

use crate::util::{Blast, Msg};

/// The NATS server every NATS row uses.
pub(crate) const NATS_URL: &str = "nats://127.0.0.1:4222";

fn subjects(instance: &str) -> (String, String, String) {
    (
        format!("sbbench.{instance}.req"),
        format!("sbbench.{instance}.blast"),
        format!("sbbench.{instance}.tick"),
    )
}

async fn connect() -> async_nats::Client {
    async_nats::connect(NATS_URL).await.expect("connect to the NATS server")
}

/// `serve raw-nats INSTANCE`: answers `…req` requests with serde_json decode and encode of the
/// same struct; a request on `…blast` publishes `count` messages on `…tick`, then answers.
pub(crate) async fn raw_responder(instance: &str) {
    let client = connect().await;
    let (req, blast, tick) = subjects(instance);
    let mut requests = futures_util::stream::select(
        client.subscribe(req).await.expect("subscribe"),
        client.subscribe(blast.clone()).await.expect("subscribe"),
    );
    client.flush().await.expect("flush");
    println!("ready");
    while let Some(message) = requests.next().await {
        let Some(reply) = message.reply else { continue };
        let answer = if message.subject.as_str() == blast {
            let args: Blast = serde_json::from_slice(&message.payload).expect("args");
            for _ in 0..args.count {
                let payload = serde_json::to_vec(&Msg { data: args.data.clone() }).expect("encode");
                client.publish(tick.clone(), payload.into()).await.expect("publish");
            }
            serde_json::to_vec(&serde_json::json!({ "sent": args.count })).expect("encode")
        } else {
            let args: Msg = serde_json::from_slice(&message.payload).expect("args");
            serde_json::to_vec(&Msg { data: args.data }).expect("encode")
        };
        client.publish(reply, answer.into()).await.expect("publish the answer");
    }
}

/// The raw requester: async-nats' own request/reply, one request in flight.
#[derive(Debug)]
pub(crate) struct RawRequester {
    client: async_nats::Client,
    req: String,
    blast: String,
    data: String,
}

impl RawRequester {
    pub(crate) async fn connect(instance: &str) -> RawRequester {
        let (req, blast, _) = subjects(instance);
        RawRequester { client: connect().await, req, blast, data: crate::util::payload_data() }
    }

    /// Asks the responder to publish `count` ticks; returns once it has answered.
    pub(crate) async fn blast(&mut self, count: u32) {
        let payload =
            serde_json::to_vec(&Blast { count, data: self.data.clone() }).expect("encode");
        self.client.request(self.blast.clone(), payload.into()).await.expect("blast");
    }
}

impl crate::scenarios::RoundTrip for RawRequester {
    async fn once(&mut self) {
        let payload = serde_json::to_vec(&Msg { data: self.data.clone() }).expect("encode");
        let reply = self.client.request(self.req.clone(), payload.into()).await.expect("request");
        let reply: Msg = serde_json::from_slice(&reply.payload).expect("decode");
        assert_eq!(reply.data.len(), self.data.len());
    }
}

/// A raw subscriber to `…tick`; the subscription is in force when this returns.
pub(crate) async fn raw_subscriber(instance: &str) -> async_nats::Subscriber {
    let client = connect().await;
    let subscriber = client.subscribe(subjects(instance).2).await.expect("subscribe");
    client.flush().await.expect("flush");
    subscriber
}
