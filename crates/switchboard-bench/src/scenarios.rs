//! The client side of every scenario: interleaved rounds of a baseline and ours.

use std::{
    io::{Read, Write},
    time::{Duration, Instant},
};

use switchboard::Endpoint;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, BufReader},
    net::{
        UnixStream,
        unix::{OwnedReadHalf, OwnedWriteHalf},
    },
    task::JoinSet,
};

use crate::{
    generated::bench::BenchClient,
    util::{self, Blast, Msg, Paired, Samples},
};

/// How many rounds and iterations a latency comparison runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) warmup: usize,
    pub(crate) rounds: usize,
    pub(crate) per_round: usize,
}

/// One request/response exchange.
pub(crate) trait RoundTrip {
    async fn once(&mut self);
    /// Untimed work after each exchange.
    async fn settle(&mut self) {}
    /// `n` timed exchanges, one after another; a peer in another process that times its own
    /// exchanges overrides it.
    async fn timed(&mut self, n: usize) -> Samples
    where
        Self: Sized,
    {
        round(self, n).await
    }
}

/// Runs `plan.rounds` rounds of `base` then `ours` (ABAB…), after a warm-up of each.
pub(crate) async fn compare<A: RoundTrip, B: RoundTrip>(
    base: &mut A,
    ours: &mut B,
    plan: Plan,
) -> Paired {
    for _ in 0..plan.warmup {
        base.once().await;
        base.settle().await;
        ours.once().await;
        ours.settle().await;
    }
    let (mut b, mut o) = (Vec::new(), Vec::new());
    for _ in 0..plan.rounds {
        b.push(base.timed(plan.per_round).await);
        o.push(ours.timed(plan.per_round).await);
    }
    util::pair(&b, &o)
}

pub(crate) async fn round<A: RoundTrip>(a: &mut A, n: usize) -> Samples {
    let mut samples = Samples::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        a.once().await;
        samples.push(start.elapsed());
        a.settle().await;
    }
    samples
}

/// The raw blocking std client: writes the exact CALL frame bytes ours sends, reads the reply.
#[derive(Debug)]
pub(crate) struct RawStd {
    stream: std::os::unix::net::UnixStream,
    frame: Vec<u8>,
    body: Vec<u8>,
}

impl RawStd {
    pub(crate) fn connect(path: &str) -> RawStd {
        let stream = std::os::unix::net::UnixStream::connect(path).expect("connect raw std");
        let payload = serde_json::to_vec(&Msg { data: util::payload_data() }).expect("encode");
        assert_eq!(payload.len(), 64);
        let mut frame = Vec::new();
        util::put_frame(&mut frame, util::CALL, 1, "echo", &payload);
        RawStd { stream, frame, body: Vec::new() }
    }
}

impl RoundTrip for RawStd {
    async fn once(&mut self) {
        self.stream.write_all(&self.frame).expect("write");
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).expect("read");
        self.body.resize(u32::from_be_bytes(len) as usize, 0);
        self.stream.read_exact(&mut self.body).expect("read");
    }
}

/// The raw tokio client: the same framing as ours, serde_json encode and decode.
#[derive(Debug)]
pub(crate) struct RawTokio {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
    next: u64,
    data: String,
    out: Vec<u8>,
    body: Vec<u8>,
}

impl RawTokio {
    pub(crate) async fn connect(path: &str) -> RawTokio {
        let (read, write) = UnixStream::connect(path).await.expect("connect").into_split();
        RawTokio {
            read: BufReader::new(read),
            write,
            next: 0,
            data: util::payload_data(),
            out: Vec::new(),
            body: Vec::new(),
        }
    }

    async fn request(&mut self, name: &str, payload: &[u8]) -> &[u8] {
        self.next += 1;
        self.out.clear();
        util::put_frame(&mut self.out, util::CALL, self.next, name, payload);
        self.write.write_all(&self.out).await.expect("write");
        let len = self.read.read_u32().await.expect("read");
        self.body.resize(len as usize, 0);
        self.read.read_exact(&mut self.body).await.expect("read");
        let frame = util::parse_frame(&self.body);
        assert_eq!(frame.id, self.next);
        frame.payload
    }

    pub(crate) async fn blast(&mut self, count: u32) {
        let payload = serde_json::to_vec(&Blast { count, data: self.data.clone() }).expect("enc");
        self.request("blast", &payload).await;
    }
}

impl RoundTrip for RawTokio {
    async fn once(&mut self) {
        let payload = serde_json::to_vec(&Msg { data: self.data.clone() }).expect("encode");
        let reply = self.request("echo", &payload).await;
        let reply: Msg = serde_json::from_slice(reply).expect("decode");
        assert_eq!(reply.data.len(), 53);
    }
}

/// Ours: one typed `echo` call.
#[derive(Debug)]
pub(crate) struct Ours {
    pub(crate) client: BenchClient,
    data: String,
}

impl Ours {
    pub(crate) async fn connect(endpoint: &Endpoint) -> Ours {
        let client = BenchClient::connect(endpoint).await.expect("connect ours");
        Ours { client, data: util::payload_data() }
    }
}

impl RoundTrip for Ours {
    async fn once(&mut self) {
        let reply = self.client.echo(self.data.clone()).await.expect("echo");
        assert_eq!(reply.len(), 53);
    }
}

/// The raw rumqttc requester.
impl RoundTrip for crate::mqtt::RawRequester {
    async fn once(&mut self) {
        self.echo().await;
    }
}

/// Ours: set the property, then wait until our own watch shows the new value.
#[derive(Debug)]
pub(crate) struct SetNotify {
    client: BenchClient,
    watch: switchboard::client::PropertyWatch<String>,
    n: u64,
}

impl SetNotify {
    pub(crate) async fn connect(endpoint: &Endpoint) -> SetNotify {
        let client = BenchClient::connect(endpoint).await.expect("connect");
        let mut watch = client.watch_value().await.expect("watch");
        // The current value comes first.
        watch.next().await.expect("initial").expect("decode");
        SetNotify { client, watch, n: 0 }
    }
}

impl RoundTrip for SetNotify {
    async fn once(&mut self) {
        self.n += 1;
        // 53 characters, like every other payload here, and different every time.
        let value = format!("{:053}", self.n);
        self.client.set_value(value.clone()).await.expect("set");
        loop {
            let seen = self.watch.next().await.expect("watch open").expect("decode");
            if seen == value {
                return;
            }
        }
    }
}

/// Ours: send a goal of `work` with no steps and wait for "accepted".
#[derive(Debug)]
pub(crate) struct GoalAccepted {
    client: BenchClient,
    pub(crate) error: Option<String>,
    done: u64,
    pending: Option<
        switchboard::action::GoalHandle<
            crate::generated::bench::WorkFeedback,
            u32,
            std::convert::Infallible,
        >,
    >,
}

impl GoalAccepted {
    pub(crate) async fn connect(endpoint: &Endpoint) -> GoalAccepted {
        GoalAccepted {
            client: BenchClient::connect(endpoint).await.expect("connect"),
            error: None,
            done: 0,
            pending: None,
        }
    }
}

impl RoundTrip for GoalAccepted {
    async fn once(&mut self) {
        if self.error.is_some() {
            return;
        }
        match self.client.work(0).await {
            Ok(handle) => {
                self.done += 1;
                self.pending = Some(handle);
            }
            Err(e) => self.error = Some(format!("{e} (after {} goals)", self.done)),
        }
    }
    async fn settle(&mut self) {
        if let Some(handle) = self.pending.take() {
            let _ = handle.result().await;
        }
    }
}

/// Feedback delivered per second when the handler sends `steps` back to back, and how many the
/// client's queue dropped.
pub(crate) async fn feedback_rate(endpoint: &Endpoint, steps: u32) -> Result<(f64, u64), String> {
    let client = BenchClient::connect(endpoint).await.map_err(|e| e.to_string())?;
    feedback_round(&client, steps).await
}

async fn feedback_round(client: &BenchClient, steps: u32) -> Result<(f64, u64), String> {
    let start = Instant::now();
    let mut handle = client.work(steps).await.map_err(|e| e.to_string())?;
    let mut received = 0u64;
    while let Some(_feedback) = handle.next_feedback().await {
        received += 1;
    }
    handle.result().await.map_err(|e| e.to_string())?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok((received as f64 / elapsed, handle.missed_feedback()))
}

/// Row 8's feedback rate against our own signal throughput 1 → 1, in alternating rounds of
/// `count` signals and a goal of `count` feedback. `ratio` is the median per-round ratio of time
/// per message (feedback ÷ signal); `ours_lost` counts dropped feedback, `base_lost` lost signals.
pub(crate) async fn feedback_vs_signals(
    endpoint: &Endpoint,
    count: u32,
    rounds: usize,
) -> Result<Throughput, String> {
    let client = BenchClient::connect(endpoint).await.map_err(|e| e.to_string())?;
    let subscriber = BenchClient::connect(endpoint).await.map_err(|e| e.to_string())?;
    let stream = share(subscriber.subscribe_tick().await.map_err(|e| e.to_string())?);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let data = util::payload_data();
    let (mut signal_rates, mut feedback_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut signals_lost, mut feedback_dropped) = (0u64, 0u64);
    for _ in 0..rounds {
        let start = Instant::now();
        let drained = tokio::spawn(drain(vec![stream.clone()], count, ours_next));
        client.blast(count, data.clone()).await.map_err(|e| e.to_string())?;
        let (got, last) = drained.await.map_err(|e| e.to_string())?;
        signals_lost += u64::from(count) - got[0];
        let signal_rate = got[0] as f64 / (last - start).as_secs_f64();

        let (feedback_rate, dropped) = feedback_round(&client, count).await?;
        feedback_dropped += dropped;
        signal_rates.push(signal_rate);
        feedback_rates.push(feedback_rate);
        ratios.push(signal_rate / feedback_rate);
    }
    Ok(Throughput {
        base_rate: util::median(signal_rates),
        ours_rate: util::median(feedback_rates),
        ratio: util::median(ratios),
        rounds,
        count,
        ours_lost: feedback_dropped,
        base_lost: signals_lost,
    })
}

/// Result of a throughput comparison.
#[derive(Debug, Clone)]
pub(crate) struct Throughput {
    pub(crate) base_rate: f64,
    pub(crate) ours_rate: f64,
    pub(crate) ratio: f64,
    pub(crate) rounds: usize,
    pub(crate) count: u32,
    pub(crate) ours_lost: u64,
    pub(crate) base_lost: u64,
}

/// Counts up to `count` messages on every stream; returns (messages each stream got, when
/// the last message arrived). A stream that goes quiet for 1 s has lost the rest.
async fn drain<S, F, Fut>(streams: Vec<Shared<S>>, count: u32, next: F) -> (Vec<u64>, Instant)
where
    S: Send + 'static,
    F: Fn(Shared<S>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let mut set = JoinSet::new();
    for (i, stream) in streams.into_iter().enumerate() {
        set.spawn(async move {
            let mut got = 0u64;
            let mut last = Instant::now();
            while got < u64::from(count) {
                match tokio::time::timeout(Duration::from_secs(1), next(stream.clone())).await {
                    Ok(true) => {
                        got += 1;
                        last = Instant::now();
                    }
                    Ok(false) => panic!("subscriber {i} closed after {got} of {count}"),
                    Err(_) => break,
                }
            }
            (i, got, last)
        });
    }
    let mut counts = vec![0; set.len()];
    let mut last = None::<Instant>;
    while let Some(result) = set.join_next().await {
        let (i, got, at) = result.expect("subscriber task");
        counts[i] = got;
        last = Some(last.map_or(at, |l| l.max(at)));
    }
    (counts, last.expect("a subscriber"))
}

/// A stream shared with the task draining it.
pub(crate) type Shared<S> = std::sync::Arc<tokio::sync::Mutex<S>>;

fn share<S>(s: S) -> Shared<S> {
    std::sync::Arc::new(tokio::sync::Mutex::new(s))
}

/// Raw tokio framed reader.
type RawReader = BufReader<UnixStream>;

async fn raw_next(r: Shared<RawReader>) -> bool {
    let mut r = r.lock().await;
    let len = match r.read_u32().await {
        Ok(len) => len,
        Err(e) => {
            eprintln!("raw reader: {e}");
            return false;
        }
    };
    let mut body = vec![0u8; len as usize];
    if r.read_exact(&mut body).await.is_err() {
        return false;
    }
    let frame = util::parse_frame(&body);
    let ok = frame.kind == util::SIGNAL && serde_json::from_slice::<Msg>(frame.payload).is_ok();
    if !ok {
        eprintln!("raw reader: unexpected frame {frame:?}");
    }
    ok
}

type OursStream = switchboard::client::SignalStream<crate::generated::bench::Tick>;

async fn ours_next(s: Shared<OursStream>) -> bool {
    let mut s = s.lock().await;
    loop {
        match s.next().await {
            Some(Ok(_)) => return true,
            // A lag notice: the missed messages show up as lost in the count.
            Some(Err(_)) => {}
            None => return false,
        }
    }
}

/// Unix signal throughput, `subscribers` readers, ABAB rounds of `count` messages each.
pub(crate) async fn unix_signals(
    raw_path: &str,
    ours: &Endpoint,
    subscribers: usize,
    count: u32,
    rounds: usize,
) -> Throughput {
    let mut control = RawTokio::connect(raw_path).await;
    let mut raw_readers = Vec::new();
    for _ in 0..subscribers {
        let mut stream = UnixStream::connect(raw_path).await.expect("connect");
        let mut frame = Vec::new();
        util::put_frame(&mut frame, util::SUBSCRIBE, 0, "tick", b"");
        stream.write_all(&frame).await.expect("subscribe");
        raw_readers.push(share(BufReader::new(stream)));
    }
    let ours_control = BenchClient::connect(ours).await.expect("connect");
    let mut ours_clients = Vec::new();
    let mut ours_streams = Vec::new();
    for _ in 0..subscribers {
        let client = BenchClient::connect(ours).await.expect("connect");
        ours_streams.push(share(client.subscribe_tick().await.expect("subscribe")));
        ours_clients.push(client);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let data = util::payload_data();
    let (mut base_rates, mut ours_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut base_lost, mut ours_lost) = (0u64, 0u64);
    for _ in 0..rounds {
        let start = Instant::now();
        let drained = tokio::spawn(drain(raw_readers.clone(), count, raw_next));
        control.blast(count).await;
        let (got, last) = drained.await.expect("drain");
        base_lost += got.iter().map(|g| u64::from(count) - g).sum::<u64>();
        let base = got.iter().sum::<u64>() as f64 / got.len() as f64 / (last - start).as_secs_f64();

        let start = Instant::now();
        let drained = tokio::spawn(drain(ours_streams.clone(), count, ours_next));
        ours_control.blast(count, data.clone()).await.expect("blast");
        let (got, last) = drained.await.expect("drain");
        ours_lost += got.iter().map(|g| u64::from(count) - g).sum::<u64>();
        let rate = got.iter().sum::<u64>() as f64 / got.len() as f64 / (last - start).as_secs_f64();
        base_rates.push(base);
        ours_rates.push(rate);
        ratios.push(rate / base);
    }
    Throughput {
        base_rate: util::median(base_rates),
        ours_rate: util::median(ours_rates),
        ratio: util::median(ratios),
        rounds,
        count,
        ours_lost,
        base_lost,
    }
}

type RawMqttSub = tokio::sync::mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Publish>;

/// The next message of a raw MQTT subscriber.
pub(crate) async fn mqtt_next(r: Shared<RawMqttSub>) -> bool {
    r.lock().await.recv().await.is_some_and(|p| serde_json::from_slice::<Msg>(&p.payload).is_ok())
}

/// The next message of a raw NATS subscriber.
pub(crate) async fn nats_next(s: Shared<async_nats::Subscriber>) -> bool {
    use futures_util::StreamExt;
    s.lock().await.next().await.is_some_and(|m| serde_json::from_slice::<Msg>(&m.payload).is_ok())
}

/// The next message of a raw Redis subscriber.
pub(crate) async fn redis_next(r: Shared<tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>>) -> bool {
    r.lock().await.recv().await.is_some_and(|p| serde_json::from_slice::<Msg>(&p).is_ok())
}

/// The next message of a raw AMQP subscriber.
pub(crate) async fn amqp_next(s: Shared<crate::raw_amqp::RawSubscriber>) -> bool {
    use futures_util::StreamExt;
    let next = s.lock().await.deliveries.next().await;
    next.is_some_and(|d| d.is_ok_and(|d| serde_json::from_slice::<Msg>(&d.data).is_ok()))
}

/// The processes of a broker throughput comparison whose CPU time is counted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerPids {
    pub(crate) raw_server: u32,
    pub(crate) ours_server: u32,
    /// The broker, when its pid is known.
    pub(crate) broker: Option<u32>,
}

/// CPU time per message delivered, µs: `[publisher, broker, subscriber]` (the subscriber is
/// this process, which runs nothing else during a round).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuPerMessage {
    pub(crate) base: [f64; 3],
    pub(crate) ours: [f64; 3],
}

/// On-CPU time of a process's main thread in ns (`/proc/PID/schedstat`), which is where a
/// `current_thread` runtime and the broker (mosquitto) do all their work. Unlike wall-clock rates it hardly
/// depends on what else the machine runs.
fn cpu_ns(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// CPU time of the publisher, the broker and this process (ns).
fn cpu_sample(publisher: u32, broker: Option<u32>) -> [u64; 3] {
    [
        cpu_ns(&publisher.to_string()).unwrap_or(0),
        broker.and_then(|b| cpu_ns(&b.to_string())).unwrap_or(0),
        cpu_ns("self").unwrap_or(0),
    ]
}

fn add_delta(total: &mut [u64; 3], before: [u64; 3], after: [u64; 3]) {
    for i in 0..3 {
        total[i] += after[i].saturating_sub(before[i]);
    }
}

/// A raw baseline's control client: asks its server to publish `count` messages and returns
/// once the server has answered.
pub(crate) trait Blaster {
    async fn blast(&mut self, count: u32);
}

impl Blaster for crate::mqtt::RawRequester {
    async fn blast(&mut self, count: u32) {
        crate::mqtt::RawRequester::blast(self, count).await;
    }
}

impl Blaster for crate::nats::RawRequester {
    async fn blast(&mut self, count: u32) {
        crate::nats::RawRequester::blast(self, count).await;
    }
}

impl Blaster for crate::raw_redis::RawRequester {
    async fn blast(&mut self, count: u32) {
        crate::raw_redis::RawRequester::blast(self, count).await;
    }
}

impl Blaster for crate::raw_amqp::RawRequester {
    async fn blast(&mut self, count: u32) {
        crate::raw_amqp::RawRequester::blast(self, count).await;
    }
}

/// Signal throughput 1 → 1 through a broker, ABAB rounds: a raw server's publish loop (driven
/// by `control`) read by `raw` with `raw_next`, against our server's signals read by a
/// generated client.
pub(crate) async fn broker_signals<S, F, Fut>(
    mut control: impl Blaster,
    raw: S,
    raw_next: F,
    ours: &Endpoint,
    count: u32,
    rounds: usize,
    pids: ServerPids,
) -> (Throughput, CpuPerMessage)
where
    S: Send + 'static,
    F: Fn(Shared<S>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let raw_subs = vec![share(raw)];
    let ours_control = BenchClient::connect(ours).await.expect("connect");
    let subscriber = BenchClient::connect(ours).await.expect("connect");
    let ours_streams = vec![share(subscriber.subscribe_tick().await.expect("subscribe"))];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let data = util::payload_data();
    let (mut base_rates, mut ours_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut base_lost, mut ours_lost) = (0u64, 0u64);
    let (mut base_cpu, mut ours_cpu) = ([0u64; 3], [0u64; 3]);
    let (mut base_got, mut ours_got) = (0u64, 0u64);
    for _ in 0..rounds {
        let before = cpu_sample(pids.raw_server, pids.broker);
        let start = Instant::now();
        let drained = tokio::spawn(drain(raw_subs.clone(), count, raw_next));
        control.blast(count).await;
        let (got, last) = drained.await.expect("drain");
        add_delta(&mut base_cpu, before, cpu_sample(pids.raw_server, pids.broker));
        base_got += got.iter().sum::<u64>();
        base_lost += got.iter().map(|g| u64::from(count) - g).sum::<u64>();
        let base = got.iter().sum::<u64>() as f64 / got.len() as f64 / (last - start).as_secs_f64();

        let before = cpu_sample(pids.ours_server, pids.broker);
        let start = Instant::now();
        let drained = tokio::spawn(drain(ours_streams.clone(), count, ours_next));
        ours_control.blast(count, data.clone()).await.expect("blast");
        let (got, last) = drained.await.expect("drain");
        add_delta(&mut ours_cpu, before, cpu_sample(pids.ours_server, pids.broker));
        ours_got += got.iter().sum::<u64>();
        ours_lost += got.iter().map(|g| u64::from(count) - g).sum::<u64>();
        let rate = got.iter().sum::<u64>() as f64 / got.len() as f64 / (last - start).as_secs_f64();
        base_rates.push(base);
        ours_rates.push(rate);
        ratios.push(rate / base);
    }
    drop(subscriber);
    let per_message =
        |cpu: [u64; 3], got: u64| cpu.map(|ns| ns as f64 / 1000.0 / got.max(1) as f64);
    let throughput = Throughput {
        base_rate: util::median(base_rates),
        ours_rate: util::median(ours_rates),
        ratio: util::median(ratios),
        rounds,
        count,
        ours_lost,
        base_lost,
    };
    let cpu = CpuPerMessage {
        base: per_message(base_cpu, base_got),
        ours: per_message(ours_cpu, ours_got),
    };
    (throughput, cpu)
}

/// Pipelined calls: `in_flight` tasks calling `echo` back to back on one connection for
/// `duration`; returns calls per second.
pub(crate) async fn pipelined(endpoint: &Endpoint, in_flight: usize, duration: Duration) -> f64 {
    let client = BenchClient::connect(endpoint).await.expect("connect");
    let data = util::payload_data();
    // Warm up.
    for _ in 0..1000 {
        client.echo(data.clone()).await.expect("echo");
    }
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..in_flight {
        let client = client.clone();
        let data = data.clone();
        set.spawn(async move {
            let mut calls = 0u64;
            while Instant::now() < deadline {
                client.echo(data.clone()).await.expect("echo");
                calls += 1;
            }
            calls
        });
    }
    let mut total = 0u64;
    while let Some(calls) = set.join_next().await {
        total += calls.expect("task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}
