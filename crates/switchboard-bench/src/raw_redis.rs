//! The raw redis-rs baselines of rows 9, 13 and 14: a request pushed onto a list the responder
//! pops with `BLPOP`, the answer pushed onto the caller's own reply list, as commlib-py does it;
//! and a raw `PUBLISH` loop with a subscriber.

use std::time::Instant;

use futures_util::StreamExt;
use redis::{AsyncConnectionConfig, aio::MultiplexedConnection};

use crate::util::{Blast, Msg, Samples};

/// The Redis server every row uses.
pub(crate) const REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// A connection whose commands may block for as long as they like (`BLPOP` waits for work).
pub(crate) async fn connect() -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(REDIS_URL).map_err(|e| e.to_string())?;
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| format!("cannot connect to Redis at {REDIS_URL}: {e}"))
}

/// Pops a request from `list` (`BLPOP`, waiting as long as it takes).
async fn pop(connection: &mut MultiplexedConnection, list: &str) -> Result<Vec<u8>, String> {
    let popped: Option<(String, Vec<u8>)> = redis::cmd("BLPOP")
        .arg(list)
        .arg(0)
        .query_async(connection)
        .await
        .map_err(|e| e.to_string())?;
    popped.map(|(_, value)| value).ok_or_else(|| format!("BLPOP on {list} returned nothing"))
}

async fn push(
    connection: &mut MultiplexedConnection,
    list: &str,
    value: &[u8],
) -> Result<(), String> {
    redis::cmd("RPUSH")
        .arg(list)
        .arg(value)
        .query_async::<i64>(connection)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A request on the wire: the list to answer on, a newline, then the payload.
fn request(reply_list: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(reply_list.len() + 1 + payload.len());
    out.extend_from_slice(reply_list.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload);
    out
}

/// The lists and the channel of a responder on `list`: requests, blasts, ticks.
fn names(list: &str) -> (String, String, String) {
    (list.to_owned(), format!("{list}.blast"), format!("{list}.tick"))
}

/// The responder role: answers every request on `list` with its payload after a serde_json
/// decode and encode (as our server does); a request on `list.blast` publishes `count` messages
/// on `list.tick`, then answers. Until killed.
pub(crate) async fn responder(list: &str) {
    let mut connection = connect().await.expect("connect to Redis");
    let (requests, blasts, tick) = names(list);
    println!("ready");
    loop {
        let popped: Option<(String, Vec<u8>)> = redis::cmd("BLPOP")
            .arg(&requests)
            .arg(&blasts)
            .arg(0)
            .query_async(&mut connection)
            .await
            .expect("BLPOP");
        let Some((from, message)) = popped else { continue };
        let Some(split) = message.iter().position(|&b| b == b'\n') else {
            eprintln!("raw redis responder: a request without a reply list");
            continue;
        };
        let (reply_list, payload) = (&message[..split], &message[split + 1..]);
        let reply_list = String::from_utf8_lossy(reply_list);
        let answer = if from == blasts {
            let args: Blast = serde_json::from_slice(payload).expect("args");
            let tick_payload = serde_json::to_vec(&Msg { data: args.data }).expect("encode");
            for _ in 0..args.count {
                redis::cmd("PUBLISH")
                    .arg(&tick)
                    .arg(&tick_payload)
                    .query_async::<i64>(&mut connection)
                    .await
                    .expect("PUBLISH");
            }
            serde_json::to_vec(&serde_json::json!({ "sent": args.count })).expect("encode")
        } else {
            let args: Msg = serde_json::from_slice(payload).expect("args");
            serde_json::to_vec(&Msg { data: args.data }).expect("encode")
        };
        push(&mut connection, &reply_list, &answer).await.expect("RPUSH");
    }
}

/// The raw requester of rows 13 and 14: one request in flight, answered on its own list.
#[derive(Debug)]
pub(crate) struct RawRequester {
    connection: MultiplexedConnection,
    requests: String,
    blasts: String,
    reply_list: String,
    data: String,
}

impl RawRequester {
    pub(crate) async fn connect(list: &str) -> RawRequester {
        let (requests, blasts, _) = names(list);
        let reply_list = format!("{list}.reply.{}", std::process::id());
        let connection = connect().await.expect("connect to Redis");
        RawRequester { connection, requests, blasts, reply_list, data: crate::util::payload_data() }
    }

    async fn ask(&mut self, list: &str, payload: &[u8]) -> Vec<u8> {
        let request = request(&self.reply_list, payload);
        push(&mut self.connection, list, &request).await.expect("RPUSH");
        pop(&mut self.connection, &self.reply_list).await.expect("BLPOP")
    }

    /// Asks the responder to publish `count` ticks; returns once it has answered.
    pub(crate) async fn blast(&mut self, count: u32) {
        let payload =
            serde_json::to_vec(&Blast { count, data: self.data.clone() }).expect("encode");
        let blasts = self.blasts.clone();
        self.ask(&blasts, &payload).await;
    }
}

impl crate::scenarios::RoundTrip for RawRequester {
    async fn once(&mut self) {
        let payload = serde_json::to_vec(&Msg { data: self.data.clone() }).expect("encode");
        let requests = self.requests.clone();
        let answer = self.ask(&requests, &payload).await;
        let reply: Msg = serde_json::from_slice(&answer).expect("decode");
        assert_eq!(reply.data.len(), self.data.len());
    }
}

/// A raw subscriber to `list.tick` (`SUBSCRIBE` on a connection of its own), its messages'
/// payloads forwarded to the receiver; the subscription is in force when this returns.
pub(crate) async fn raw_subscriber(list: &str) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
    let client = redis::Client::open(REDIS_URL).expect("a Redis URL");
    let mut pubsub = client.get_async_pubsub().await.expect("a pub/sub connection");
    pubsub.subscribe(names(list).2).await.expect("SUBSCRIBE");
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            if sender.send(message.get_payload_bytes().to_vec()).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Makes `n` calls to the responder on `list` after a warm-up; returns p50 and p99 in µs.
pub(crate) async fn round_trips(list: &str, n: usize) -> Result<(f64, f64), String> {
    let mut connection = connect().await?;
    let reply_list = format!("{list}.reply.{}", std::process::id());
    let payload = serde_json::to_vec(&crate::util::Msg { data: crate::util::payload_data() })
        .map_err(|e| e.to_string())?;
    let mut samples = Samples::with_capacity(n);
    for i in 0..n + n / 10 {
        let start = Instant::now();
        push(&mut connection, list, &request(&reply_list, &payload)).await?;
        let answer = pop(&mut connection, &reply_list).await?;
        if answer != payload {
            return Err("the responder answered with other bytes".into());
        }
        if i >= n / 10 {
            samples.push(start.elapsed());
        }
    }
    Ok((samples.quantile_us(0.5), samples.quantile_us(0.99)))
}
