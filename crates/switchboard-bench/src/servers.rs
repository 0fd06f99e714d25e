//! The server roles the suite spawns as separate processes (`switchboard-bench serve ROLE ADDR`),
//! and the in-process servers the callgrind gate uses.

use std::{
    io::{Read, Write},
    os::unix::net::UnixListener as StdListener,
    sync::{Arc, OnceLock},
};

use switchboard::{
    Endpoint,
    action::GoalContext,
    error::{HandlerError, RemoteError},
    server::CallContext,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, unix::OwnedWriteHalf},
    sync::Mutex,
};

use crate::{
    generated::bench::{Bench, BenchProperties, BenchServer, WorkFeedback},
    util::{self, Blast, Msg},
};

/// Our implementation of the benchmark interface.
#[derive(Debug, Clone, Default)]
pub(crate) struct Handler {
    server: Arc<OnceLock<BenchServer>>,
}

impl Bench for Handler {
    async fn echo(&self, _ctx: &CallContext, data: String) -> Result<String, RemoteError> {
        Ok(data)
    }

    async fn blast(
        &self,
        _ctx: &CallContext,
        count: u32,
        data: String,
    ) -> Result<u32, RemoteError> {
        let server = self.server.get().expect("server set").clone();
        for _ in 0..count {
            server
                .emit_tick(data.clone())
                .await
                .map_err(|e| RemoteError::internal(e.to_string()))?;
        }
        Ok(count)
    }

    async fn work(
        &self,
        goal: GoalContext<WorkFeedback>,
        steps: u32,
    ) -> Result<u32, HandlerError<std::convert::Infallible>> {
        for step in 0..steps {
            goal.feedback(WorkFeedback { step }).await;
        }
        Ok(steps)
    }
}

/// Starts our server at `endpoint`.
pub(crate) async fn serve_ours(endpoint: &Endpoint) -> BenchServer {
    let handler = Handler::default();
    let properties = BenchProperties { value: String::new() };
    let server =
        BenchServer::serve(endpoint, handler.clone(), properties).await.expect("serve Bench");
    let _ = handler.server.set(server.clone());
    server
}

/// `serve ROLE ADDR`: runs a server role until killed.
pub(crate) fn serve(role: &str, addr: &str) {
    if role == "raw-std" {
        let listener = StdListener::bind(addr).expect("bind");
        println!("ready");
        for stream in listener.incoming() {
            let stream = stream.expect("accept");
            std::thread::spawn(move || raw_std_conn(stream));
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        match role {
            "raw-tokio" => {
                let listener = UnixListener::bind(addr).expect("bind");
                println!("ready");
                raw_tokio_accept(listener).await;
            }
            "ours-unix" => {
                let _server =
                    serve_ours(&Endpoint::parse(&format!("unix://{addr}")).expect("url")).await;
                println!("ready");
                std::future::pending::<()>().await;
            }
            "ours-mqtt" | "ours-nats" | "ours-redis" | "ours-amqp" => {
                let (url, instance) = addr.split_once('#').expect("URL#instance");
                let endpoint =
                    Endpoint::parse(url).expect("url").with_instance(instance).expect("id");
                let _server = serve_ours(&endpoint).await;
                println!("ready");
                std::future::pending::<()>().await;
            }
            "node-echo" => crate::bridge::serve_echo(addr).await,
            "bridge" => crate::bridge::serve_bridge(addr).await,
            "bridge-one-at-a-time" => crate::bridge::serve_bridge_one_at_a_time(addr).await,
            "thermostat" => crate::soak::serve_thermostat(addr).await,
            "raw-mqtt" => crate::mqtt::raw_responder(addr).await,
            "raw-redis" => crate::raw_redis::responder(addr).await,
            "raw-amqp" => crate::raw_amqp::responder(addr).await,
            "raw-nats" => crate::nats::raw_responder(addr).await,
            other => panic!("unknown server role {other}"),
        }
    });
}

/// The raw blocking baseline: reads a frame, answers with a REPLY frame carrying the same
/// payload bytes. No JSON.
fn raw_std_conn(mut stream: std::os::unix::net::UnixStream) {
    let mut len = [0u8; 4];
    let mut body = Vec::new();
    let mut out = Vec::new();
    loop {
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        body.resize(u32::from_be_bytes(len) as usize, 0);
        if stream.read_exact(&mut body).is_err() {
            return;
        }
        let frame = util::parse_frame(&body);
        out.clear();
        util::put_frame(&mut out, util::REPLY, frame.id, "", frame.payload);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// Readers subscribed to the raw signal baseline.
type Subscribers = Arc<Mutex<Vec<OwnedWriteHalf>>>;

/// Accepts connections for the raw tokio baseline.
pub(crate) async fn raw_tokio_accept(listener: UnixListener) {
    let subscribers = Subscribers::default();
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        tokio::spawn(raw_tokio_conn(stream, subscribers.clone()));
    }
}

/// The raw tokio baseline: the same framing as ours, and serde_json decode and encode of the
/// same struct. `echo` answers; `SUBSCRIBE` makes the connection a signal reader; `blast`
/// writes `count` SIGNAL frames to every reader, one `write_all` each.
async fn raw_tokio_conn(stream: tokio::net::UnixStream, subscribers: Subscribers) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut body = Vec::new();
    let mut out = Vec::new();
    loop {
        let Ok(len) = read.read_u32().await else { return };
        body.resize(len as usize, 0);
        if read.read_exact(&mut body).await.is_err() {
            return;
        }
        let frame = util::parse_frame(&body);
        match (frame.kind, frame.name) {
            (util::CALL, "echo") => {
                let args: Msg = serde_json::from_slice(frame.payload).expect("echo args");
                let reply = serde_json::to_vec(&Msg { data: args.data }).expect("encode");
                out.clear();
                util::put_frame(&mut out, util::REPLY, frame.id, "", &reply);
                if write.write_all(&out).await.is_err() {
                    return;
                }
            }
            (util::CALL, "blast") => {
                let args: Blast = serde_json::from_slice(frame.payload).expect("blast args");
                let mut readers = subscribers.lock().await;
                for _ in 0..args.count {
                    let payload =
                        serde_json::to_vec(&Msg { data: args.data.clone() }).expect("encode");
                    out.clear();
                    util::put_frame(&mut out, util::SIGNAL, 0, "tick", &payload);
                    for reader in readers.iter_mut() {
                        let _ = reader.write_all(&out).await;
                    }
                }
                drop(readers);
                let reply =
                    serde_json::to_vec(&serde_json::json!({ "sent": args.count })).expect("encode");
                out.clear();
                util::put_frame(&mut out, util::REPLY, frame.id, "", &reply);
                if write.write_all(&out).await.is_err() {
                    return;
                }
            }
            (util::SUBSCRIBE, _) => break,
            _ => panic!("unexpected frame kind {:#x}", frame.kind),
        }
    }
    subscribers.lock().await.push(write);
    // Drain (and ignore) whatever the reader sends until it goes away.
    let mut sink = [0u8; 256];
    while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
}
