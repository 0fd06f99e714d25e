//! The raw Redis request/response baseline of row 9: a request pushed onto a list the responder
//! pops with `BLPOP`, the answer pushed onto the caller's own reply list, as commlib-py does it.
//!
//! switchboard has no Redis transport yet; this shows what a Rust peer pays on the same Redis,
//! the floor a transport would build on.

use std::time::Instant;

use redis::{AsyncConnectionConfig, aio::MultiplexedConnection};

use crate::util::Samples;

/// The Redis server every row uses.
pub(crate) const REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// A connection whose commands may block for as long as they like (`BLPOP` waits for work).
async fn connect() -> Result<MultiplexedConnection, String> {
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

/// The responder role: answers every request on `list` with its payload, until killed.
pub(crate) async fn responder(list: &str) {
    let mut connection = connect().await.expect("connect to Redis");
    println!("ready");
    loop {
        let message = pop(&mut connection, list).await.expect("BLPOP");
        let Some(split) = message.iter().position(|&b| b == b'\n') else {
            eprintln!("raw redis responder: a request without a reply list");
            continue;
        };
        let (reply_list, payload) = (&message[..split], &message[split + 1..]);
        let reply_list = String::from_utf8_lossy(reply_list);
        push(&mut connection, &reply_list, payload).await.expect("RPUSH");
    }
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
