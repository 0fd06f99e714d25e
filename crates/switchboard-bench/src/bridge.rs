//! Row 17: a bridge (`switchboard::bridge`) between MQTT and Redis. An RPC called on Redis and
//! answered on MQTT through the bridge, against the two hops measured apart (MQTT alone, Redis
//! alone); and messages published on MQTT and read on Redis through the bridge, against each
//! broker alone and against a second bridge that publishes one message at a time (the
//! writer's window of publishes on their way set to 1). Every server and each bridge run as
//! processes of their own.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::{
    Endpoint,
    bridge::{Bridge, BridgeOptions, Route, Side},
    error::RemoteError,
    node::{Node, Publisher, RpcClient, Subscriber},
};

use crate::{
    scenarios::{Plan, RoundTrip, round},
    util::{self, Samples, Server},
};

/// Side A: the services and publishers.
pub(crate) const A_URL: &str = "mqtt://127.0.0.1:1883";
/// Side B: the callers and subscribers.
pub(crate) const B_URL: &str = "redis://127.0.0.1:6379";

/// Messages a throughput run keeps in flight (published, not yet received).
const WINDOW: u64 = 256;

/// `serve node-echo URL#NAME`: a node RPC answering each request with itself.
pub(crate) async fn serve_echo(addr: &str) {
    let (url, name) = addr.split_once('#').expect("URL#NAME");
    let node = Node::new("bench-echo", Endpoint::parse(url).expect("url"));
    let _service = node
        .rpc_service(name, |request: Value| async move { Ok::<_, RemoteError>(request) })
        .await
        .expect("serve the echo");
    println!("ready");
    std::future::pending::<()>().await;
}

/// `serve bridge TAG`: a bridge from [`B_URL`] callers of `TAG.bridged` to `TAG.echo` on
/// [`A_URL`], and from `TAG.topic` on A to `TAG.bridged_topic` on B.
pub(crate) async fn serve_bridge(tag: &str) {
    let a = Endpoint::parse(A_URL).expect("url");
    let b = Endpoint::parse(B_URL).expect("url");
    let routes = vec![
        Route::rpc(Side::B, format!("{tag}.bridged"), format!("{tag}.echo")),
        Route::topic(Side::A, format!("{tag}.topic"), format!("{tag}.bridged_topic")),
    ];
    let _bridge = Bridge::start(a, b, routes, BridgeOptions::default()).await.expect("a bridge");
    println!("ready");
    std::future::pending::<()>().await;
}

/// `serve bridge-one-at-a-time TAG`: a bridge from `TAG.topic_serial` on [`A_URL`] to
/// `TAG.bridged_serial` on [`B_URL`] that publishes one message and waits for it before the
/// next (`in_flight` 1).
pub(crate) async fn serve_bridge_one_at_a_time(tag: &str) {
    let a = Endpoint::parse(A_URL).expect("url");
    let b = Endpoint::parse(B_URL).expect("url");
    let routes =
        vec![Route::topic(Side::A, format!("{tag}.topic_serial"), format!("{tag}.bridged_serial"))];
    let options = BridgeOptions::default().in_flight(1);
    let _bridge = Bridge::start(a, b, routes, options).await.expect("a bridge");
    println!("ready");
    std::future::pending::<()>().await;
}

/// A node client's call of an echo RPC.
pub(crate) struct NodeCall {
    client: RpcClient<Value, Value>,
    request: Value,
}

impl NodeCall {
    pub(crate) async fn connect(url: &str, name: &str) -> NodeCall {
        let node = Node::new("bench-caller", Endpoint::parse(url).expect("url"));
        let client = node.rpc_client::<Value, Value>(name).await.expect("a client");
        NodeCall { client, request: json!({ "data": util::payload_data() }) }
    }
}

impl RoundTrip for NodeCall {
    async fn once(&mut self) {
        let reply = self.client.call(&self.request).await.expect("an answer");
        assert_eq!(reply, self.request);
    }
}

/// Row 17's latency figures, µs.
pub(crate) struct Latency {
    pub(crate) hop_a: (f64, f64),
    pub(crate) hop_b: (f64, f64),
    pub(crate) bridged: (f64, f64),
    /// Median over rounds of bridged p50 ÷ (hop A p50 + hop B p50).
    pub(crate) ratio_to_hops: f64,
    /// Median over rounds of bridged p50 ÷ hop A p50.
    pub(crate) ratio_to_direct: f64,
    pub(crate) rounds: usize,
    pub(crate) per_round: usize,
}

/// Row 17's throughput figures, messages per second (median of the rounds).
pub(crate) struct Throughput {
    pub(crate) direct_a: f64,
    pub(crate) direct_b: f64,
    pub(crate) bridged: f64,
    /// Through the bridge that publishes one message at a time.
    pub(crate) bridged_one_at_a_time: f64,
    /// The bridge's own publishes on their way at once at most (its default).
    pub(crate) in_flight: usize,
    /// Median over rounds of bridged ÷ the slower broker alone.
    pub(crate) ratio: f64,
    /// Median over rounds of bridged ÷ bridged one at a time.
    pub(crate) ratio_to_one_at_a_time: f64,
    pub(crate) lost: u64,
    pub(crate) rounds: usize,
    pub(crate) count: u64,
}

/// Runs row 17: its servers and bridge, then the latency and the throughput rounds.
pub(crate) async fn run(plan: Plan, count: u64, rounds: usize) -> (Latency, Throughput) {
    let tag = format!("sbbench.bridge{}", std::process::id());
    let _echo_a = Server::spawn("node-echo", &format!("{A_URL}#{tag}.echo"));
    let _echo_b = Server::spawn("node-echo", &format!("{B_URL}#{tag}.echo"));
    let _bridge = Server::spawn("bridge", &tag);
    let _bridge_one_at_a_time = Server::spawn("bridge-one-at-a-time", &tag);
    let mut hop_a = NodeCall::connect(A_URL, &format!("{tag}.echo")).await;
    let mut hop_b = NodeCall::connect(B_URL, &format!("{tag}.echo")).await;
    let mut bridged = NodeCall::connect(B_URL, &format!("{tag}.bridged")).await;
    eprintln!("row 17: warming up");
    for _ in 0..plan.warmup {
        hop_a.once().await;
        hop_b.once().await;
        bridged.once().await;
    }
    let (mut all_a, mut all_b, mut all_bridged) =
        (Samples::default(), Samples::default(), Samples::default());
    let (mut to_hops, mut to_direct) = (Vec::new(), Vec::new());
    for _ in 0..plan.rounds {
        let a = round(&mut hop_a, plan.per_round).await;
        let b = round(&mut hop_b, plan.per_round).await;
        let through = round(&mut bridged, plan.per_round).await;
        let (pa, pb, pt) = (a.quantile_us(0.5), b.quantile_us(0.5), through.quantile_us(0.5));
        to_hops.push(pt / (pa + pb));
        to_direct.push(pt / pa);
        all_a.0.extend(a.0);
        all_b.0.extend(b.0);
        all_bridged.0.extend(through.0);
    }
    let quantiles = |s: &Samples| (s.quantile_us(0.5), s.quantile_us(0.99));
    let latency = Latency {
        hop_a: quantiles(&all_a),
        hop_b: quantiles(&all_b),
        bridged: quantiles(&all_bridged),
        ratio_to_hops: util::median(to_hops),
        ratio_to_direct: util::median(to_direct),
        rounds: plan.rounds,
        per_round: plan.per_round,
    };

    eprintln!("row 17: latency done; throughput");
    let (node_a, node_b) = (
        Node::new("bench-pub", Endpoint::parse(A_URL).expect("url")),
        Node::new("bench-sub", Endpoint::parse(B_URL).expect("url")),
    );
    // The direct runs use a topic of their own, which the bridge does not read.
    let direct = format!("{tag}.direct");
    let pub_a = node_a.publisher::<Value>(&direct).await.expect("a publisher");
    let mut sub_a = node_a.subscriber::<Value>(&direct).await.expect("a subscriber");
    let pub_b = node_b.publisher::<Value>(&direct).await.expect("a publisher");
    let mut sub_b = node_b.subscriber::<Value>(&direct).await.expect("a subscriber");
    let pub_bridged =
        node_a.publisher::<Value>(&format!("{tag}.topic")).await.expect("a publisher");
    let mut sub_bridged =
        node_b.subscriber::<Value>(&format!("{tag}.bridged_topic")).await.expect("a subscriber");
    let pub_serial =
        node_a.publisher::<Value>(&format!("{tag}.topic_serial")).await.expect("a publisher");
    let mut sub_serial =
        node_b.subscriber::<Value>(&format!("{tag}.bridged_serial")).await.expect("a subscriber");
    let (mut rates_a, mut rates_b, mut rates_bridged, mut rates_serial) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ratios, mut ratios_to_serial) = (Vec::new(), Vec::new());
    let mut lost = 0;
    for _ in 0..rounds {
        let (a, lost_a) = blast(&pub_a, &mut sub_a, count).await;
        let (b, lost_b) = blast(&pub_b, &mut sub_b, count).await;
        let (through, lost_t) = blast(&pub_bridged, &mut sub_bridged, count).await;
        let (serial, lost_s) = blast(&pub_serial, &mut sub_serial, count).await;
        lost += lost_a + lost_b + lost_t + lost_s;
        ratios.push(through / a.min(b));
        ratios_to_serial.push(through / serial);
        rates_a.push(a);
        rates_b.push(b);
        rates_bridged.push(through);
        rates_serial.push(serial);
    }
    let throughput = Throughput {
        direct_a: util::median(rates_a),
        direct_b: util::median(rates_b),
        bridged: util::median(rates_bridged),
        bridged_one_at_a_time: util::median(rates_serial),
        in_flight: switchboard::bridge::DEFAULT_IN_FLIGHT,
        ratio: util::median(ratios),
        ratio_to_one_at_a_time: util::median(ratios_to_serial),
        lost,
        rounds,
        count,
    };
    (latency, throughput)
}

/// Publishes `count` messages with at most [`WINDOW`] in flight, and returns the rate at which
/// they arrived and how many did not (a message missing for 2 s ends the run).
async fn blast(
    publisher: &Publisher<Value>,
    subscriber: &mut Subscriber<Value>,
    count: u64,
) -> (f64, u64) {
    let message = json!({ "data": util::payload_data() });
    let (mut sent, mut received) = (0u64, 0u64);
    let started = Instant::now();
    while received < count {
        while sent < count && sent - received < WINDOW {
            publisher.publish(&message).await.expect("published");
            sent += 1;
        }
        match tokio::time::timeout(Duration::from_secs(2), subscriber.next()).await {
            Ok(Some(Ok(_))) => received += 1,
            Ok(Some(Err(_))) => {}
            Ok(None) | Err(_) => break,
        }
    }
    (received as f64 / started.elapsed().as_secs_f64(), count - received)
}
