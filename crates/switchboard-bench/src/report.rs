//! `all`: runs every row and writes the report.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use switchboard::Endpoint;

use crate::{
    scenarios::{self, Ours, Plan, RawStd, RawTokio},
    util::{Paired, Server},
};

/// One row of the report.
#[derive(Debug)]
struct Row {
    number: u32,
    scenario: String,
    result: String,
    goal: String,
    verdict: String,
}

fn met(ok: bool) -> String {
    if ok { "met".into() } else { "**missed**".into() }
}

fn lat(p: &Paired, base: &str) -> String {
    format!(
        "ours p50 {:.1} µs, p99 {:.1} µs; {base} p50 {:.1} µs, p99 {:.1} µs; ratio p50 **{:.2}×**, p99 {:.2}× ({} rounds × {})",
        p.ours_p50,
        p.ours_p99,
        p.base_p50,
        p.base_p99,
        p.ratio_p50,
        p.ratio_p99,
        p.rounds,
        p.per_round
    )
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// The note on a signal throughput row's CPU time per message.
/// The shared redis-server's pid, when one process of that name runs.
fn redis_server_pid() -> Option<u32> {
    let output = std::process::Command::new("pidof").arg("redis-server").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut pids = text.split_whitespace();
    let pid = pids.next()?.parse().ok()?;
    pids.next().is_none().then_some(pid)
}

fn cpu_note(row: u32, cpu: &scenarios::CpuPerMessage, broker_known: bool) -> String {
    let [(op, ob, os), (bp, bb, bs)] = [cpu.ours, cpu.base].map(|[p, b, s]| (p, b, s));
    let broker = if broker_known {
        format!("broker ours {ob:.2} µs, raw {bb:.2} µs ({:.2}×); ", ob / bb)
    } else {
        "broker not counted; ".to_owned()
    };
    format!(
        "Row {row} CPU time per message delivered (on-CPU time of each process's main thread, summed over the rounds; much less sensitive to the machine's load than the rates): publisher ours {op:.2} µs, raw {bp:.2} µs ({:.2}×); {broker}subscriber ours {os:.2} µs, raw {bs:.2} µs ({:.2}×); all ours {:.2} µs, raw {:.2} µs ({:.2}×).",
        op / bp,
        os / bs,
        op + ob + os,
        bp + bb + bs,
        (op + ob + os) / (bp + bb + bs),
    )
}

/// `all [--quick] [--rows 1,2] [--out FILE]`.
pub(crate) fn all(args: &[&str]) {
    let quick = args.contains(&"--quick");
    let rows: Option<Vec<u32>> = args
        .iter()
        .position(|a| *a == "--rows")
        .map(|i| args[i + 1].split(',').map(|r| r.parse().expect("row number")).collect());
    let out = args
        .iter()
        .position(|a| *a == "--out")
        .map(|i| PathBuf::from(args[i + 1]))
        .unwrap_or_else(|| repo_root().join("docs/benchmarks.md"));
    let want = |n: u32| rows.as_ref().is_none_or(|r| r.contains(&n));
    let scale = if quick { 5 } else { 1 };
    let unix_plan = Plan { warmup: 1000, rounds: 10, per_round: 5000 / scale };
    let mqtt_plan = Plan { warmup: 500, rounds: 10, per_round: 1000 / scale };
    let load_before = sh("cat /proc/loadavg");
    let started = Instant::now();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = crate::util::socket_dir();
    let mut results: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut echo_unix_p50 = None::<f64>;

    let (raw_std_path, raw_tokio_path, ours_path) =
        (dir.path("raw-std.sock"), dir.path("raw-tokio.sock"), dir.path("ours.sock"));
    let _raw_std = Server::spawn("raw-std", &raw_std_path);
    let _raw_tokio = Server::spawn("raw-tokio", &raw_tokio_path);
    let ours_server = Server::spawn("ours-unix", &ours_path);
    let ours_endpoint = Endpoint::parse(&format!("unix://{ours_path}")).expect("url");

    rt.block_on(async {
        if want(1) || want(8) {
            eprintln!("row 1: Unix RTT vs raw std");
            let mut base = RawStd::connect(&raw_std_path);
            let mut ours = Ours::connect(&ours_endpoint).await;
            let p = scenarios::compare(&mut base, &mut ours, unix_plan).await;
            echo_unix_p50 = Some(p.ours_p50);
            results.push(Row {
                number: 1,
                scenario: "Unix method round trip, 64 B, vs raw blocking std UDS ping-pong (same bytes)".into(),
                result: lat(&p, "raw std"),
                goal: "p50 ≤ 2.0×".into(),
                verdict: met(p.ratio_p50 <= 2.0),
            });
        }
        if want(2) {
            eprintln!("row 2: Unix RTT vs raw tokio");
            let mut base = RawTokio::connect(&raw_tokio_path).await;
            let mut ours = Ours::connect(&ours_endpoint).await;
            let p = scenarios::compare(&mut base, &mut ours, unix_plan).await;
            results.push(Row {
                number: 2,
                scenario: "Unix method round trip, 64 B, vs raw tokio UDS ping-pong (same framing + serde_json)".into(),
                result: lat(&p, "raw tokio"),
                goal: "p50 ≤ 1.2×".into(),
                verdict: met(p.ratio_p50 <= 1.2),
            });
        }
        if want(3) || want(9) {
            eprintln!("row 3: MQTT RTT vs raw rumqttc");
            let instance = format!("b{}", std::process::id());
            let raw_addr = format!("127.0.0.1:1883#{instance}");
            let _raw = Server::spawn("raw-mqtt", &raw_addr);
            let _ours = Server::spawn("ours-mqtt", &format!("mqtt://127.0.0.1:1883#{instance}"));
            let endpoint = Endpoint::parse("mqtt://127.0.0.1:1883").expect("url").with_instance(&instance).expect("id");
            let mut base = crate::mqtt::RawRequester::connect(&raw_addr).await;
            let mut ours = Ours::connect(&endpoint).await;
            let p = scenarios::compare(&mut base, &mut ours, mqtt_plan).await;
            results.push(Row {
                number: 3,
                scenario: "MQTT method round trip (QoS 0 request/reply, 64 B) vs raw rumqttc v5 request/response (response topic + correlation data), shared mosquitto (nodelay default of this machine's broker)".into(),
                result: lat(&p, "raw rumqttc"),
                goal: "p50 ≤ 1.2×".into(),
                verdict: met(p.ratio_p50 <= 1.2),
            });
            crate::peers::set_ours_mqtt(p.ours_p50, p.ours_p99);
        }
        if want(4) {
            eprintln!("row 4: MQTT RTT through a Nagle-on private mosquitto");
            match switchboard_testkit::broker::PrivateMosquitto::start() {
                Some(broker) => {
                    let instance = format!("n{}", std::process::id());
                    let _ours = Server::spawn("ours-mqtt", &format!("{}#{instance}", broker.url()));
                    let endpoint = Endpoint::parse(&broker.url()).expect("url").with_instance(&instance).expect("id");
                    let mut ours = Ours::connect(&endpoint).await;
                    for _ in 0..mqtt_plan.warmup {
                        scenarios::RoundTrip::once(&mut ours).await;
                    }
                    let mut all = crate::util::Samples::default();
                    for _ in 0..mqtt_plan.rounds {
                        all.0.extend(scenarios::round(&mut ours, mqtt_plan.per_round).await.0);
                    }
                    let (p50, p99) = (all.quantile_us(0.5), all.quantile_us(0.99));
                    let max = all.quantile_us(1.0);
                    results.push(Row {
                        number: 4,
                        scenario: "MQTT method round trip through a private mosquitto with the Debian default configuration (no `set_tcp_nodelay`, so Nagle on at the broker)".into(),
                        result: format!("ours p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.1} µs ({} calls)", all.0.len()),
                        goal: "p50 < 1 ms".into(),
                        verdict: met(p50 < 1000.0),
                    });
                }
                None => notes.push("Row 4: mosquitto is not installed at /usr/sbin/mosquitto, so no private broker could be started.".into()),
            }
        }
        if want(5) {
            eprintln!("row 5: MQTT signal throughput");
            let instance = format!("s{}", std::process::id());
            let raw_addr = format!("127.0.0.1:1883#{instance}");
            let raw = Server::spawn("raw-mqtt", &raw_addr);
            let ours = Server::spawn("ours-mqtt", &format!("mqtt://127.0.0.1:1883#{instance}"));
            let endpoint = Endpoint::parse("mqtt://127.0.0.1:1883").expect("url").with_instance(&instance).expect("id");
            let broker = std::fs::read_to_string("/run/mosquitto/mosquitto.pid").ok().and_then(|p| p.trim().parse().ok());
            let pids = scenarios::ServerPids { raw_server: raw.pid(), ours_server: ours.pid(), broker };
            let control = crate::mqtt::RawRequester::connect(&raw_addr).await;
            let subscriber = crate::mqtt::raw_subscriber(&raw_addr).await;
            let (t, cpu) = scenarios::broker_signals(control, subscriber, scenarios::mqtt_next, &endpoint, 20_000 / scale as u32, 6, pids).await;
            notes.push(cpu_note(5, &cpu, broker.is_some()));
            results.push(Row {
                number: 5,
                scenario: "MQTT signal throughput 1 → 1 (64 B, QoS 1 both sides) vs a raw rumqttc publish loop and subscriber".into(),
                result: format!("ours {:.0} msg/s; raw {:.0} msg/s; ratio **{:.2}×** (median of {} rounds × {} messages; lost: ours {}, raw {})", t.ours_rate, t.base_rate, t.ratio, t.rounds, t.count, t.ours_lost, t.base_lost),
                goal: "≥ 0.9×".into(),
                verdict: met(t.ratio >= 0.9),
            });
        }
        if want(11) {
            eprintln!("row 11: NATS RTT vs raw async-nats");
            let instance = format!("b{}", std::process::id());
            let _raw = Server::spawn("raw-nats", &instance);
            let url = crate::nats::NATS_URL;
            let _ours = Server::spawn("ours-nats", &format!("{url}#{instance}"));
            let endpoint = Endpoint::parse(url).expect("url").with_instance(&instance).expect("id");
            let mut base = crate::nats::RawRequester::connect(&instance).await;
            let mut ours = Ours::connect(&endpoint).await;
            let p = scenarios::compare(&mut base, &mut ours, mqtt_plan).await;
            results.push(Row {
                number: 11,
                scenario: "NATS method round trip (64 B) vs a raw async-nats request/reply (`Client::request`, a responder publishing to the reply subject), shared nats-server".into(),
                result: lat(&p, "raw async-nats"),
                goal: "p50 ≤ 1.2×".into(),
                verdict: met(p.ratio_p50 <= 1.2),
            });
        }
        if want(12) {
            eprintln!("row 12: NATS signal throughput");
            let instance = format!("s{}", std::process::id());
            let raw = Server::spawn("raw-nats", &instance);
            let url = crate::nats::NATS_URL;
            let ours = Server::spawn("ours-nats", &format!("{url}#{instance}"));
            let endpoint = Endpoint::parse(url).expect("url").with_instance(&instance).expect("id");
            // nats-server works on many threads, not its main one: its time is not counted.
            let pids = scenarios::ServerPids { raw_server: raw.pid(), ours_server: ours.pid(), broker: None };
            let control = crate::nats::RawRequester::connect(&instance).await;
            let subscriber = crate::nats::raw_subscriber(&instance).await;
            let (t, cpu) = scenarios::broker_signals(control, subscriber, scenarios::nats_next, &endpoint, 20_000 / scale as u32, 6, pids).await;
            notes.push(cpu_note(12, &cpu, false));
            results.push(Row {
                number: 12,
                scenario: "NATS signal throughput 1 → 1 (64 B) vs a raw async-nats publish loop and subscriber, shared nats-server".into(),
                result: format!("ours {:.0} msg/s; raw {:.0} msg/s; ratio **{:.2}×** (median of {} rounds × {} messages; lost: ours {}, raw {})", t.ours_rate, t.base_rate, t.ratio, t.rounds, t.count, t.ours_lost, t.base_lost),
                goal: "≥ 0.9×".into(),
                verdict: met(t.ratio >= 0.9),
            });
        }
        if want(13) || want(9) {
            eprintln!("row 13: Redis RTT vs raw redis-rs");
            let list = format!("sbbench.r{}", std::process::id());
            let _raw = Server::spawn("raw-redis", &list);
            let url = crate::raw_redis::REDIS_URL.trim_end_matches('/');
            let instance = format!("r{}", std::process::id());
            let _ours = Server::spawn("ours-redis", &format!("{url}#{instance}"));
            let endpoint = Endpoint::parse(url).expect("url").with_instance(&instance).expect("id");
            let mut base = crate::raw_redis::RawRequester::connect(&list).await;
            let mut ours = Ours::connect(&endpoint).await;
            let p = scenarios::compare(&mut base, &mut ours, mqtt_plan).await;
            results.push(Row {
                number: 13,
                scenario: "Redis method round trip (64 B) vs a raw redis-rs request/response (RPUSH to a list the responder BLPOPs, the answer RPUSHed to the caller's list, serde_json on both sides), shared Redis".into(),
                result: lat(&p, "raw redis-rs"),
                goal: "p50 ≤ 1.2×".into(),
                verdict: met(p.ratio_p50 <= 1.2),
            });
            crate::peers::set_ours_redis(p.ours_p50, p.ours_p99);
        }
        if want(14) {
            eprintln!("row 14: Redis signal throughput");
            let list = format!("sbbench.t{}", std::process::id());
            let raw = Server::spawn("raw-redis", &list);
            let url = crate::raw_redis::REDIS_URL.trim_end_matches('/');
            let instance = format!("t{}", std::process::id());
            let ours = Server::spawn("ours-redis", &format!("{url}#{instance}"));
            let endpoint = Endpoint::parse(url).expect("url").with_instance(&instance).expect("id");
            // redis-server runs its commands on its main thread.
            let broker = redis_server_pid();
            let pids = scenarios::ServerPids { raw_server: raw.pid(), ours_server: ours.pid(), broker };
            let control = crate::raw_redis::RawRequester::connect(&list).await;
            let subscriber = crate::raw_redis::raw_subscriber(&list).await;
            let (t, cpu) = scenarios::broker_signals(control, subscriber, scenarios::redis_next, &endpoint, 20_000 / scale as u32, 6, pids).await;
            notes.push(cpu_note(14, &cpu, broker.is_some()));
            results.push(Row {
                number: 14,
                scenario: "Redis signal throughput 1 → 1 (64 B) vs a raw redis-rs PUBLISH loop and SUBSCRIBE subscriber, shared Redis".into(),
                result: format!("ours {:.0} msg/s; raw {:.0} msg/s; ratio **{:.2}×** (median of {} rounds × {} messages; lost: ours {}, raw {})", t.ours_rate, t.base_rate, t.ratio, t.rounds, t.count, t.ours_lost, t.base_lost),
                goal: "≥ 0.9×".into(),
                verdict: met(t.ratio >= 0.9),
            });
        }
        if want(15) {
            eprintln!("row 15: AMQP RTT vs raw lapin");
            let instance = format!("q{}", std::process::id());
            let _raw = Server::spawn("raw-amqp", &instance);
            let url = crate::raw_amqp::AMQP_URL;
            let _ours = Server::spawn("ours-amqp", &format!("{url}#{instance}"));
            let endpoint = Endpoint::parse(url).expect("url").with_instance(&instance).expect("id");
            let mut base = crate::raw_amqp::RawRequester::connect(&instance).await;
            let mut ours = Ours::connect(&endpoint).await;
            let p = scenarios::compare(&mut base, &mut ours, mqtt_plan).await;
            results.push(Row {
                number: 15,
                scenario: "AMQP method round trip (64 B) vs a raw lapin request/response (publish on the default exchange to a queue the responder consumes, `reply_to` naming the caller's own queue, the answer published there; serde_json on both sides), shared RabbitMQ".into(),
                result: lat(&p, "raw lapin"),
                goal: "p50 ≤ 1.2×".into(),
                verdict: met(p.ratio_p50 <= 1.2),
            });
        }
        if want(16) {
            eprintln!("row 16: AMQP signal throughput");
            let instance = format!("u{}", std::process::id());
            let raw = Server::spawn("raw-amqp", &instance);
            let url = crate::raw_amqp::AMQP_URL;
            let ours = Server::spawn("ours-amqp", &format!("{url}#{instance}"));
            let endpoint = Endpoint::parse(url).expect("url").with_instance(&instance).expect("id");
            // RabbitMQ works on many Erlang schedulers: its time is not counted.
            let pids = scenarios::ServerPids { raw_server: raw.pid(), ours_server: ours.pid(), broker: None };
            let control = crate::raw_amqp::RawRequester::connect(&instance).await;
            let subscriber = crate::raw_amqp::raw_subscriber(&instance).await;
            let (t, cpu) = scenarios::broker_signals(control, subscriber, scenarios::amqp_next, &endpoint, 20_000 / scale as u32, 6, pids).await;
            notes.push(cpu_note(16, &cpu, false));
            results.push(Row {
                number: 16,
                scenario: "AMQP signal throughput 1 → 1 (64 B) vs a raw lapin publish loop to `amq.topic` and a consumer of a queue bound to it, shared RabbitMQ".into(),
                result: format!("ours {:.0} msg/s; raw {:.0} msg/s; ratio **{:.2}×** (median of {} rounds × {} messages; lost: ours {}, raw {})", t.ours_rate, t.base_rate, t.ratio, t.rounds, t.count, t.ours_lost, t.base_lost),
                goal: "≥ 0.9×".into(),
                verdict: met(t.ratio >= 0.9),
            });
        }
        if want(17) {
            eprintln!("row 17: a bridge between MQTT and Redis");
            let plan = Plan { warmup: 100, rounds: 10, per_round: 200 / scale };
            let (l, t) = crate::bridge::run(plan, 5_000 / scale as u64, 6).await;
            results.push(Row {
                number: 17,
                scenario: "Node RPC through a bridge (`switchboard::bridge`, its own process): called on Redis, forwarded to an echo on MQTT, vs the two hops measured apart (a node call on MQTT alone, and on Redis alone), rounds interleaved".into(),
                result: format!(
                    "bridged p50 {:.1} µs, p99 {:.1} µs; MQTT alone p50 {:.1} µs, p99 {:.1} µs; Redis alone p50 {:.1} µs, p99 {:.1} µs; bridged ÷ (MQTT + Redis) p50 **{:.2}×**; for scale, bridged ÷ MQTT alone p50 {:.2}× ({} rounds × {})",
                    l.bridged.0, l.bridged.1, l.hop_a.0, l.hop_a.1, l.hop_b.0, l.hop_b.1, l.ratio_to_hops, l.ratio_to_direct, l.rounds, l.per_round
                ),
                goal: "p50 ≤ 1.3× the two hops".into(),
                verdict: met(l.ratio_to_hops <= 1.3),
            });
            results.push(Row {
                number: 17,
                scenario: format!("Node messages published on MQTT and read on Redis through the bridge (its writer keeping up to {} publishes on their way) vs each broker alone (publish and read on MQTT; on Redis) and vs a second bridge publishing one message at a time (`in_flight` 1), at most {} in flight, 64 B", t.in_flight, 256),
                result: format!(
                    "bridged {:.0} msg/s; one at a time {:.0} msg/s; MQTT alone {:.0} msg/s; Redis alone {:.0} msg/s; bridged ÷ the slower alone **{:.2}×**; bridged ÷ one at a time {:.2}× (median of {} rounds × {} messages; lost {})",
                    t.bridged, t.bridged_one_at_a_time, t.direct_a, t.direct_b, t.ratio, t.ratio_to_one_at_a_time, t.rounds, t.count, t.lost
                ),
                goal: "report".into(),
                verdict: "reported".into(),
            });
        }
        if want(18) {
            for (label, url) in crate::node_rows::BROKERS {
                eprintln!("row 18: node pub/sub throughput over {label}");
                let tag = format!("sbbench.pubsub{}", std::process::id());
                let (node_topic, raw_topic) = (format!("{tag}.node"), format!("{tag}.raw"));
                let mut ours = crate::node_rows::NodePubSub::connect(url, &node_topic).await;
                let count = 20_000 / scale as u64;
                let (t, raw_client) = match label {
                    "MQTT" => {
                        let mut raw = crate::node_rows::RawMqtt::connect(&raw_topic.replace('.', "/")).await;
                        (crate::node_rows::pubsub(&mut raw, &mut ours, count, 6).await, "rumqttc v5 (QoS 0 publishes, a subscriber on a second connection)")
                    }
                    "Redis" => {
                        let mut raw = crate::node_rows::RawRedis::connect(&raw_topic).await;
                        (crate::node_rows::pubsub(&mut raw, &mut ours, count, 6).await, "redis-rs 1.8 (`PUBLISH` on a multiplexed connection, `SUBSCRIBE` on a pub/sub connection)")
                    }
                    _ => {
                        let mut raw = crate::node_rows::RawAmqp::connect(&raw_topic).await;
                        (crate::node_rows::pubsub(&mut raw, &mut ours, count, 6).await, "lapin (publishes to `amq.topic`, a consumer of a queue bound to it, no acknowledgements)")
                    }
                };
                results.push(Row {
                    number: 18,
                    scenario: format!("Node pub/sub throughput over {label} (`switchboard::node` publisher and subscriber of one topic, 64 B JSON, both in this process) vs a raw {raw_client} doing the same through the same broker, at most 256 in flight"),
                    result: format!("ours {:.0} msg/s; raw {:.0} msg/s; ratio **{:.2}×** (median of 6 rounds × {count} messages, alternating; lost: ours {}, raw {})", t.ours, t.raw, t.ratio, t.ours_lost, t.raw_lost),
                    goal: "≥ 0.9×".into(),
                    verdict: met(t.ratio >= 0.9),
                });
            }
        }
        if want(19) {
            eprintln!("row 19: the HTTP gateway");
            match crate::gateway::measure(quick).await {
                Ok(f) => {
                    results.push(Row {
                        number: 19,
                        scenario: "HTTP gateway (`switchboard web`): the bench's echo method (64 B JSON) as `POST …/methods/echo` on one keep-alive HTTP/1.1 connection, vs the generated Rust client calling the same server directly (Unix socket)".into(),
                        result: lat(&f.against_direct, "direct Rust client"),
                        goal: "none (issue 19 asks for the measurement): the gateway adds a TCP hop, HTTP parsing and a JSON check and re-encoding".into(),
                        verdict: "reported".into(),
                    });
                    let p = &f.against_cli;
                    results.push(Row {
                        number: 19,
                        scenario: "HTTP gateway call (as above) vs a `switchboard call Bench echo data=…` process per call (start, connect, read the interface, call, print)".into(),
                        result: format!("{}; a call through the gateway is **{:.0}× faster**", lat(p, "`switchboard call`"), 1.0 / p.ratio_p50),
                        goal: "faster than `switchboard call` per call (p50)".into(),
                        verdict: met(p.ratio_p50 < 1.0),
                    });
                }
                Err(e) => notes.push(format!("Row 19: the gateway was not measured: {e}.")),
            }
        }
        if want(20) {
            eprintln!("row 20: C++ client RTT vs Rust client");
            match crate::cpp_peer::build() {
                Ok(peer) => {
                    let instance = format!("cpp{}", std::process::id());
                    let _mqtt_server = Server::spawn("ours-mqtt", &format!("mqtt://127.0.0.1:1883#{instance}"));
                    let mqtt = Endpoint::parse("mqtt://127.0.0.1:1883").expect("url").with_instance(&instance).expect("id");
                    let transports = [
                        ("Unix socket", &ours_endpoint, ours_path.clone(), unix_plan),
                        ("MQTT (shared mosquitto, QoS 0 request/reply)", &mqtt, format!("mqtt://127.0.0.1:1883?instance={instance}"), mqtt_plan),
                    ];
                    for (label, endpoint, cpp_where, plan) in transports {
                        let measured = match crate::cpp_peer::CppClient::start(&peer, &cpp_where) {
                            Ok(mut cpp) => {
                                let mut rust = Ours::connect(endpoint).await;
                                Ok(scenarios::compare(&mut rust, &mut cpp, plan).await)
                            }
                            Err(e) => Err(e),
                        };
                        results.push(Row {
                            number: 20,
                            scenario: format!("C++ client (generated from bench.yaml, C++ runtime built with CMake in Release) method round trip, 64 B, vs the generated Rust client, the same Rust server, {label}"),
                            result: match &measured {
                                Ok(p) => format!(
                                    "C++ p50 {:.1} µs, p99 {:.1} µs; Rust p50 {:.1} µs, p99 {:.1} µs; ratio p50 **{:.2}×**, p99 {:.2}× ({} rounds × {})",
                                    p.ours_p50, p.ours_p99, p.base_p50, p.base_p99, p.ratio_p50, p.ratio_p99, p.rounds, p.per_round
                                ),
                                Err(e) => format!("not measured: {e}"),
                            },
                            goal: "p50 ≤ 1.2×".into(),
                            verdict: match &measured {
                                Ok(p) => met(p.ratio_p50 <= 1.2),
                                Err(_) => "not measured".into(),
                            },
                        });
                    }
                }
                Err(e) => notes.push(format!("Row 20: the C++ peer could not be built, so the row was not measured: {e}")),
            }
        }
        if want(6) {
            for subscribers in [1usize, 4] {
                eprintln!("row 6: Unix signal throughput 1 → {subscribers}");
                let t = scenarios::unix_signals(&raw_tokio_path, &ours_endpoint, subscribers, 50_000 / scale as u32, 6).await;
                results.push(Row {
                    number: 6,
                    scenario: format!("Unix signal throughput 1 → {subscribers} (64 B) vs a raw tokio framed UDS writer and readers"),
                    result: format!("ours {:.0} msg/s per subscriber; raw {:.0} msg/s; ratio **{:.2}×** (median of {} rounds × {} messages; lost: ours {}, raw {})", t.ours_rate, t.base_rate, t.ratio, t.rounds, t.count, t.ours_lost, t.base_lost),
                    goal: "≥ 0.8×".into(),
                    verdict: met(t.ratio >= 0.8),
                });
            }
        }
        if want(7) {
            eprintln!("row 7: pipelined calls");
            let rate = scenarios::pipelined(&ours_endpoint, 64, Duration::from_secs(if quick { 2 } else { 5 })).await;
            let mut base = RawTokio::connect(&raw_tokio_path).await;
            let seq = scenarios::round(&mut base, 5000).await;
            let seq_rate = 1e6 / (seq.0.iter().sum::<u64>() as f64 / seq.0.len() as f64 / 1000.0);
            results.push(Row {
                number: 7,
                scenario: "Pipelined Unix calls, 64 in flight on one connection (client and server in separate processes)".into(),
                result: format!("ours **{rate:.0} calls/s**; for scale, the raw tokio ping-pong with 1 in flight does {seq_rate:.0} calls/s"),
                goal: "report calls/s; profile".into(),
                verdict: "reported (profile below)".into(),
            });
        }
        if want(8) {
            eprintln!("row 8: properties and actions");
            let mut echo = Ours::connect(&ours_endpoint).await;
            let mut set = scenarios::SetNotify::connect(&ours_endpoint).await;
            let p = scenarios::compare(&mut echo, &mut set, unix_plan).await;
            results.push(Row {
                number: 8,
                scenario: "Property set-and-notify (set, then our own watch sees the new value) vs our method round trip, Unix".into(),
                result: lat(&p, "method RTT"),
                goal: "≤ 1.1×".into(),
                verdict: met(p.ratio_p50 <= 1.1),
            });
            let mut echo = Ours::connect(&ours_endpoint).await;
            let mut goal = scenarios::GoalAccepted::connect(&ours_endpoint).await;
            let p = scenarios::compare(&mut echo, &mut goal, Plan { per_round: unix_plan.per_round / 5, ..unix_plan }).await;
            results.push(Row {
                number: 8,
                scenario: "Action goal → accepted vs our method round trip, Unix".into(),
                result: match &goal.error {
                    None => lat(&p, "method RTT"),
                    Some(e) => format!("not measured: the goal stream failed with `{e}`; the figures of the rounds before it are not reported"),
                },
                goal: "≤ 1.3×".into(),
                verdict: if goal.error.is_none() { met(p.ratio_p50 <= 1.3) } else { "not measured".into() },
            });
            match scenarios::feedback_vs_signals(&ours_endpoint, 20_000 / scale as u32, 6).await {
                Ok(t) => results.push(Row {
                    number: 8,
                    scenario: "Action feedback rate (handler sends feedback back to back) vs our Unix signal throughput 1 → 1, rounds alternating".into(),
                    result: format!("ours {:.0} feedback/s delivered; signals {:.0} msg/s; time per message **{:.2}×** the signal's (median of {} rounds × {} messages; dropped: feedback {}, signals {})", t.ours_rate, t.base_rate, t.ratio, t.rounds, t.count, t.ours_lost, t.base_lost),
                    goal: "≤ 1.3×".into(),
                    verdict: met(t.ratio <= 1.3),
                }),
                Err(e) => results.push(Row {
                    number: 8,
                    scenario: "Action feedback rate vs our Unix signal throughput 1 → 1".into(),
                    result: format!("not measured: `{e}`"),
                    goal: "≤ 1.3×".into(),
                    verdict: "not measured".into(),
                }),
            }
        }
    });
    let _ = echo_unix_p50;

    if want(7) {
        eprintln!("row 7: callgrind profile");
        notes.push(crate::peers::profile());
    }
    if want(9) {
        eprintln!("row 9: peers");
        results.extend(crate::peers::rows(quick).into_iter().map(
            |(scenario, result, goal, verdict)| Row { number: 9, scenario, result, goal, verdict },
        ));
    }
    if want(10) {
        eprintln!("row 10: footprint");
        let ours_rss = crate::peers::rss_kib(ours_server.pid());
        let (rows, n) = crate::peers::footprint(ours_rss);
        notes.extend(n);
        results.extend(rows.into_iter().map(|(scenario, result, goal, verdict)| Row {
            number: 10,
            scenario,
            result,
            goal,
            verdict,
        }));
    }
    drop(ours_server);
    let load_after = sh("cat /proc/loadavg");
    let elapsed = started.elapsed();

    let mut md = String::new();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Every figure below comes from one run of the suite. Regenerate it with:\n\n```sh\ncargo run --release -p switchboard-bench -- all\n```\n"
    );
    let _ = writeln!(
        md,
        "(add `--quick` for a 5× shorter run, `--rows 1,2` for some rows only). Needs mosquitto on 127.0.0.1:1883 and `/usr/sbin/mosquitto` (row 4 starts a private one), nats-server on 127.0.0.1:4222 (rows 11 and 12), Redis on 6379 (rows 9, 13, 14, 17 and 18), RabbitMQ on 5672 with guest/guest (rows 9, 15, 16 and 18), the `switchboard` binary of the same profile for row 19 (the row runs `cargo build -p switchboard-cli` itself), CMake, a C++20 compiler, nlohmann-json3-dev and libmosquitto-dev for row 20 (the row builds its C++ peer itself), Python 3.12 with PyPI access for row 9, and valgrind for the profile.\n"
    );
    let _ = writeln!(
        md,
        "Method: the client runs in this process on a `current_thread` runtime; every server runs in a separate process (the bench binary in a server role, or a Python peer){}. Latency rows interleave baseline and ours round by round (ABAB…) after a warm-up; p50/p99 are over all samples, and the ratio is the **median of the per-round p50 ratios** (ours ÷ baseline). Throughput rows interleave rounds too and report the median per-round ratio. Payloads are 64 bytes of JSON (`{{\"data\":\"…\"}}`).\n",
        if crate::util::pinning() {
            " pinned to CPU 1 with `taskset`, so that it never shares a CPU with the client (the client and the brokers are left to the scheduler)"
        } else {
            " (not pinned: this machine has one CPU or no `taskset`)"
        }
    );
    let _ = writeln!(md, "## This run\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| command | `{command}` |");
    let _ = writeln!(md, "| date | {} |", sh("date -u +%Y-%m-%dT%H:%M:%SZ"));
    let _ = writeln!(
        md,
        "| machine | {} CPUs, {} |",
        sh("nproc"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
    );
    let _ = writeln!(md, "| kernel | {} |", sh("uname -sr"));
    let _ = writeln!(md, "| rustc | {} |", sh("rustc --version"));
    let _ = writeln!(md, "| mosquitto | {} |", sh("/usr/sbin/mosquitto -h 2>/dev/null | head -1"));
    let _ = writeln!(md, "| redis | {} |", sh("redis-server --version 2>/dev/null"));
    let _ = writeln!(md, "| nats-server | {} |", sh("nats-server --version 2>/dev/null"));
    let _ = writeln!(md, "| load average before / after | {load_before} / {load_after} |");
    let _ = writeln!(md, "| duration | {:.0} s |", elapsed.as_secs_f64());
    let _ = writeln!(
        md,
        "\nAbsolute times depend on the machine and on what else it runs (see the load averages), which is why every goal is a ratio measured in the same run.\n"
    );
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(md, "| # | scenario | measured | goal | |\n|---|---|---|---|---|");
    results.sort_by_key(|row| row.number);
    for row in &results {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            row.number, row.scenario, row.result, row.goal, row.verdict
        );
    }
    for note in &notes {
        let _ = writeln!(md, "\n{note}");
    }
    let _ = writeln!(md, "\n{}", include_str!("../analysis.md").trim_end());
    let _ = writeln!(md, "\n## The CI gate\n\n{}", crate::peers::gate_section());
    std::fs::write(&out, md).expect("write report");
    eprintln!("wrote {}", out.display());
}
