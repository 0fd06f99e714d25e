//! Load-balanced servers (`replicas=shared`): several server processes serve one instance of
//! `Jobs`, each call runs on exactly one of them, and calls go on while a server process or a
//! broker node dies. The counting rules are the same on every transport: each call that
//! returned success ran exactly once (the servers count), each call that failed says why with a
//! transport error or a timeout, and no call waits past its deadline.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use switchboard::{Endpoint, client::ClientOptions, error::CallError};
use switchboard_testkit::{
    ChildProcess, SocketDir,
    broker::{NatsCluster, PrivateMosquitto},
};
use switchboard_tests::jobs::JobsClient;

use crate::suite::within;

/// Each call's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How late past its deadline a call may come back (scheduling on a busy machine).
const SLACK: Duration = Duration::from_millis(500);

/// One server process and the file where it counts the calls it ran.
struct Replica {
    process: ChildProcess,
    counts: PathBuf,
}

impl Replica {
    fn start(dir: &Path, name: &str, url: &str) -> Self {
        let counts = dir.join(format!("{name}.count"));
        let process = ChildProcess::spawn(
            env!("CARGO_BIN_EXE_switchboard-test-server"),
            &["--replica", &counts.to_string_lossy(), url],
        );
        Replica { process, counts }
    }

    /// The keys of the calls it ran, one per call.
    fn executed(&self) -> Vec<String> {
        std::fs::read_to_string(&self.counts)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// What became of one call.
#[derive(Debug)]
struct Outcome {
    key: String,
    /// The id of the server process that answered, or why the call failed.
    result: Result<String, String>,
    elapsed: Duration,
    /// When it came back, since the traffic started (`at - elapsed` is when it was sent).
    at: Duration,
}

/// Calls `lookup` from `callers` tasks, each key unique, until `stop` is set.
async fn traffic(client: JobsClient, callers: usize, stop: Arc<AtomicBool>) -> Vec<Outcome> {
    traffic_named(client, "c", callers, stop).await
}

/// [`traffic`] whose keys start with `prefix`, so that two runs against the same replicas call
/// different keys.
async fn traffic_named(
    client: JobsClient,
    prefix: &'static str,
    callers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Outcome> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    let key = format!("{prefix}{caller}-{n}");
                    let sent = Instant::now();
                    let result = client.lookup(key.clone()).await;
                    let elapsed = sent.elapsed();
                    let result = result.map_err(|error| match error.declared() {
                        Some(declared) => panic!("{key}: the server refused: {declared:?}"),
                        None => describe_failure(&key, &error.to_string(), error.call_error()),
                    });
                    let failed = result.is_err();
                    outcomes.push(Outcome { key, result, elapsed, at: started.elapsed() });
                    if failed {
                        // A failed call comes back at once while the link is away: do not spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.expect("a caller task"));
    }
    outcomes
}

/// A failed call's reason; only a lost transport or a deadline may fail a call here.
fn describe_failure(key: &str, text: &str, error: Option<&CallError>) -> String {
    match error {
        Some(CallError::Transport(_) | CallError::Timeout(_)) if !text.is_empty() => {
            text.to_owned()
        }
        other => panic!("{key}: a call failed for an unexpected reason: {other:?} ({text})"),
    }
}

/// Holds the outcomes to the counting rules and returns (successes, failures) per phase split
/// at `split` (since the traffic started).
fn check_counts(
    outcomes: &[Outcome],
    replicas: &[&Replica],
    split: Duration,
) -> [(usize, usize); 2] {
    let mut executed: HashMap<String, usize> = HashMap::new();
    for replica in replicas {
        // The calls of `until_all_serve` are not part of the traffic.
        for key in replica.executed().into_iter().filter(|key| !key.starts_with("warm-")) {
            *executed.entry(key).or_default() += 1;
        }
    }
    let called: HashMap<&str, &Outcome> = outcomes.iter().map(|o| (o.key.as_str(), o)).collect();
    assert_eq!(called.len(), outcomes.len(), "every key is called once");
    for (key, times) in &executed {
        assert!(called.contains_key(key.as_str()), "the servers ran `{key}`, which nobody called");
        assert_eq!(*times, 1, "`{key}` ran {times} times");
    }
    let mut phases = [(0, 0); 2];
    for outcome in outcomes {
        assert!(
            outcome.elapsed <= CALL_TIMEOUT + SLACK,
            "{} waited {:?}, past its deadline of {CALL_TIMEOUT:?}",
            outcome.key,
            outcome.elapsed
        );
        let phase = &mut phases[usize::from(outcome.at >= split)];
        match &outcome.result {
            Ok(_) => {
                assert_eq!(
                    executed.get(&outcome.key),
                    Some(&1),
                    "{} succeeded, so exactly one server ran it",
                    outcome.key
                );
                phase.0 += 1;
            }
            Err(_) => phase.1 += 1,
        }
    }
    phases
}

/// The processes that answered, with how many calls each.
fn answered_by(outcomes: &[Outcome]) -> HashMap<&str, usize> {
    let mut by = HashMap::new();
    for outcome in outcomes {
        if let Ok(pid) = &outcome.result {
            *by.entry(pid.as_str()).or_default() += 1;
        }
    }
    by
}

fn failures(outcomes: &[Outcome]) -> Vec<&str> {
    outcomes.iter().filter_map(|o| o.result.as_ref().err().map(String::as_str)).collect()
}

async fn connect(url: &str) -> JobsClient {
    connect_timed(url, CALL_TIMEOUT).await
}

/// [`connect`] with calls that time out after `call_timeout`.
async fn connect_timed(url: &str, call_timeout: Duration) -> JobsClient {
    let endpoint = Endpoint::parse(url).expect("a valid URL");
    let options = ClientOptions::default().call_timeout(call_timeout);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match within("connect", JobsClient::connect_with(&endpoint, options.clone())).await {
            Ok(client) => return client,
            Err(error) if Instant::now() < deadline => {
                eprintln!("not yet: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("connect to {url}: {error}"),
        }
    }
}

/// Waits until every replica answered at least one call, so all of them are serving.
async fn until_all_serve(client: &JobsClient, replicas: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = std::collections::HashSet::new();
    let mut n = 0;
    while seen.len() < replicas {
        assert!(Instant::now() < deadline, "only {} of {replicas} replicas answered", seen.len());
        n += 1;
        if let Ok(pid) = client.lookup(format!("warm-{n}")).await {
            seen.insert(pid);
        }
    }
}

/// Two replicas on two nodes of a three-node NATS cluster, a client with a seed list: calls are
/// shared; then the node of one replica is killed (SIGKILL) during traffic, that replica moves
/// to a surviving node, calls go on, and the counts add up. Then the killed node comes back and
/// the client's own node is killed: the client moves to another node, and the counts add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_cluster_node_dies_during_traffic() {
    let Some(mut cluster) = NatsCluster::start(3) else { return };
    let dir = SocketDir::new();
    let query = "?instance=replicated&replicas=shared&heartbeat=200ms&connect_timeout=2s";
    let a = Replica::start(dir.dir(), "a", &format!("{}{query}", cluster.url(0)));
    let b = Replica::start(dir.dir(), "b", &format!("{}{query}", cluster.url(1)));
    let client = connect(&format!("{}{query}", cluster.seeds(&[2, 0, 1]))).await;
    until_all_serve(&client, 2).await;

    // Kill a node that holds a replica's connection but not the client's.
    let on = |cluster: &NatsCluster, at: usize, prefix: &str| {
        cluster.connection_names(at).iter().filter(|name| name.starts_with(prefix)).count()
    };
    let victim = (0..2)
        .find(|at| on(&cluster, *at, "switchboard-client-") == 0)
        .expect("a node without the client");
    assert_eq!(on(&cluster, victim, "switchboard-server-"), 1, "node {victim} holds one replica");

    let moved = if victim == 0 { &a } else { &b };
    let moved_pid = moved.process.id().expect("the replica runs").to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let running = tokio::spawn(traffic(client.clone(), 4, stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = started.elapsed();
    cluster.kill(victim);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Release);
    let outcomes = within("the traffic", running).await.expect("the traffic task");

    let survivors: Vec<usize> = (0..3).filter(|at| *at != victim).collect();
    let servers: usize = survivors.iter().map(|at| on(&cluster, *at, "switchboard-server-")).sum();
    assert_eq!(servers, 2, "both replicas are on the surviving nodes");
    let [(before, failed_before), (after, failed_after)] =
        check_counts(&outcomes, &[&a, &b], killed_at);
    let by = answered_by(&outcomes);
    eprintln!(
        "NATS cluster, node {victim} killed: {before} calls succeeded and {failed_before} failed before, {after} succeeded and {failed_after} failed after; answered by {by:?}; failures: {:?}",
        failures(&outcomes).iter().take(5).collect::<Vec<_>>()
    );
    assert!(before > 0 && after > 0, "calls went through before and after the kill");
    assert_eq!(by.len(), 2, "both replicas answered calls: {by:?}");
    let back = outcomes
        .iter()
        .filter(|o| {
            o.at.saturating_sub(o.elapsed) > killed_at
                && o.result.as_ref().is_ok_and(|pid| *pid == moved_pid)
        })
        .map(|o| o.at - killed_at)
        .min()
        .expect("the replica of the killed node answered again");
    eprintln!("the replica of the killed node answered again {back:?} after the kill");
    // Calls in the last second (three after the kill) all went through.
    let end = outcomes.iter().map(|o| o.at).max().unwrap_or_default();
    let late: Vec<&Outcome> =
        outcomes.iter().filter(|o| o.at + Duration::from_secs(1) >= end).collect();
    assert!(!late.is_empty(), "calls were made in the last second");
    assert!(late.iter().all(|o| o.result.is_ok()), "late failures: {late:?}");

    // Then the client's own node: the client moves to another node of its seed list.
    cluster.restart(victim);
    let client_node =
        (0..3).find(|at| on(&cluster, *at, "switchboard-client-") == 1).expect("the client's node");
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let running = tokio::spawn(traffic_named(client.clone(), "d", 4, stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = started.elapsed();
    cluster.kill(client_node);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Release);
    let second = within("the traffic", running).await.expect("the traffic task");
    let mut all = outcomes;
    all.extend(second);
    let [_, (after, failed_after)] = check_counts(&all, &[&a, &b], Duration::ZERO);
    let second: Vec<&Outcome> = all.iter().filter(|o| o.key.starts_with('d')).collect();
    let back = second
        .iter()
        .filter(|o| o.at.saturating_sub(o.elapsed) > killed_at && o.result.is_ok())
        .map(|o| o.at - killed_at)
        .min()
        .expect("a call succeeded after the client's node was killed");
    eprintln!(
        "NATS cluster, the client's node {client_node} killed: {after} calls succeeded and {failed_after} failed in both runs; the first call sent after the kill that succeeded came back {back:?} after it"
    );
    let end = second.iter().map(|o| o.at).max().unwrap_or_default();
    let late: Vec<&&Outcome> =
        second.iter().filter(|o| o.at + Duration::from_secs(1) >= end).collect();
    assert!(!late.is_empty(), "calls were made in the last second");
    assert!(late.iter().all(|o| o.result.is_ok()), "late failures: {late:?}");
}

/// Three replicas of one instance at `url` (which names the instance) share calls; one is
/// killed with SIGKILL during traffic, the other two take the calls, and the counts add up.
/// `label` names the transport in the output.
async fn calls_survive_a_killed_replica(url: &str, label: &str) {
    let dir = SocketDir::new();
    let url = url.to_owned();
    let replica_url = format!("{url}&replicas=shared");
    let mut replicas: Vec<Replica> =
        ["a", "b", "c"].iter().map(|name| Replica::start(dir.dir(), name, &replica_url)).collect();
    let client = connect(&url).await;
    until_all_serve(&client, 3).await;

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let running = tokio::spawn(traffic(client.clone(), 4, stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = started.elapsed();
    replicas[0].process.kill();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Release);
    let outcomes = within("the traffic", running).await.expect("the traffic task");

    let all: Vec<&Replica> = replicas.iter().collect();
    let [(before, failed_before), (after, failed_after)] = check_counts(&outcomes, &all, killed_at);
    let by = answered_by(&outcomes);
    eprintln!(
        "{label}, one of three replicas killed: {before} calls succeeded and {failed_before} failed before, {after} succeeded and {failed_after} failed after; answered by {by:?}; failures: {:?}",
        failures(&outcomes).iter().take(5).collect::<Vec<_>>()
    );
    assert!(before > 0 && after > 0, "calls went through before and after the kill");
    assert_eq!(by.len(), 3, "every replica answered calls: {by:?}");
    let first = outcomes
        .iter()
        .filter(|o| o.at.saturating_sub(o.elapsed) > killed_at && o.result.is_ok())
        .map(|o| o.at - killed_at)
        .min();
    eprintln!("the first call sent after the kill that succeeded came back {first:?} after it");
    let killed = replicas[0].executed().len();
    assert!(killed > 0, "the killed replica had taken calls");
    let end = outcomes.iter().map(|o| o.at).max().unwrap_or_default();
    let late: Vec<&Outcome> =
        outcomes.iter().filter(|o| o.at + Duration::from_secs(1) >= end).collect();
    assert!(!late.is_empty(), "calls were made in the last second");
    assert!(late.iter().all(|o| o.result.is_ok()), "late failures: {late:?}");
    replicas.clear();
}

/// Three replicas on a private mosquitto share calls through MQTT v5 shared subscriptions; one
/// is killed with SIGKILL during traffic, the other two take the calls, and the counts add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_shared_subscriptions_survive_a_killed_replica() {
    let Some(broker) = PrivateMosquitto::start() else { return };
    let url = format!("{}?instance=replicated", broker.url());
    calls_survive_a_killed_replica(&url, "MQTT shared subscriptions").await;
}

/// The same on a private Redis: the replicas are competing `BLPOP` consumers of the request
/// lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_competing_consumers_survive_a_killed_replica() {
    let Some(redis) = switchboard_testkit::broker::PrivateRedis::start() else { return };
    let url = format!("{}?instance=replicated", redis.url());
    calls_survive_a_killed_replica(&url, "Redis competing consumers").await;
}

/// The same on the shared RabbitMQ (the instance is this process's own): the replicas are
/// consumers of the same shared queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_shared_queues_survive_a_killed_replica() {
    let Some(rabbit) = switchboard_testkit::broker::shared_rabbitmq() else { return };
    let url = format!("{}?instance=replicated{}", rabbit.url, std::process::id());
    calls_survive_a_killed_replica(&url, "AMQP shared queues").await;
}

/// How long each step of a replicated goal takes; goals count to 100 and more, so each runs
/// for five seconds or longer: far longer than a killed replica's goals may take to fail.
const GOAL_STEP_MS: u32 = 50;

/// How soon after its replica was killed a goal must have failed: three of the replicas'
/// 200 ms heartbeats on the brokered layer (on MQTT the broker publishes the replica's last
/// will at once), and generous slack for a busy machine.
const GOAL_FAILS_WITHIN: Duration = Duration::from_millis(2500);

/// What the brokered layer's replicas and clients add to their URL: a heartbeat short enough
/// that a dead replica is missed within [`GOAL_FAILS_WITHIN`]. MQTT needs none (and has no such
/// parameter): a replica's last will says it is gone.
const BROKERED_HEARTBEAT: &str = "&heartbeat=200ms";

/// Goals on replicas: three replicas share the goals of one client; one goal on each replica
/// is cancelled (the cancel must reach the replica that runs it), then one replica is killed
/// with SIGKILL: its goals fail promptly with a transport error, the others run to their end.
/// `liveness` is what the URLs add for a dead replica to be noticed in time.
async fn goals_follow_their_replica(base: &str, liveness: &str) {
    use switchboard::action::GoalError;
    use switchboard::error::TransportErrorKind;

    let dir = SocketDir::new();
    let instance = format!("goals{}", std::process::id());
    let url = format!("{base}?instance={instance}{liveness}");
    let replica_url = format!("{url}&replicas=shared");
    let mut replicas: Vec<Replica> =
        ["a", "b", "c"].iter().map(|name| Replica::start(dir.dir(), name, &replica_url)).collect();
    let client = connect(&url).await;
    until_all_serve(&client, 3).await;

    // Which replica runs goal `to`, from the count files.
    let runner = |replicas: &[Replica], to: i64| {
        replicas.iter().position(|r| r.executed().contains(&format!("goal-{to}")))
    };
    // Send goals until every replica runs at least two.
    let mut goals = Vec::new();
    let mut to = 100;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let placed: Vec<usize> =
            (0..3).map(|at| goals.iter().filter(|(_, _, on)| *on == at).count()).collect();
        if placed.iter().all(|n| *n >= 2) {
            break;
        }
        assert!(Instant::now() < deadline, "goals did not reach every replica: {placed:?}");
        to += 1;
        let goal = within("send a goal", client.count(to, GOAL_STEP_MS, 0))
            .await
            .unwrap_or_else(|error| panic!("goal {to} was not accepted: {error:?}"));
        let started = Instant::now();
        let on = loop {
            if let Some(on) = runner(&replicas, to) {
                break on;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "no replica counts goal {to}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        goals.push((to, goal, on));
    }

    // Cancel the first goal of each replica: each cancel must reach its own replica.
    let mut cancelled = Vec::new();
    for at in 0..3 {
        let index = goals.iter().position(|(_, _, on)| *on == at).expect("a goal on each");
        let (to, goal, _) = goals.remove(index);
        within("cancel", goal.cancel()).await.unwrap_or_else(|e| panic!("cancel {to}: {e:?}"));
        let result = within("a cancelled goal's result", goal.result()).await;
        assert!(matches!(result, Err(GoalError::Cancelled)), "goal {to}: {result:?}");
        cancelled.push(to);
    }

    // Kill the replica that runs the most goals; its goals fail promptly, the others end well.
    let victim = (0..3)
        .max_by_key(|at| goals.iter().filter(|(_, _, on)| on == at).count())
        .expect("three replicas");
    let waiting: Vec<_> = goals
        .into_iter()
        .map(|(to, goal, on)| {
            tokio::spawn(async move {
                let result = tokio::time::timeout(Duration::from_secs(30), goal.result()).await;
                (to, on, result, Instant::now())
            })
        })
        .collect();
    // From the moment the signal goes: `kill` also waits for the process to be reaped.
    let killed = Instant::now();
    replicas[victim].process.kill();
    let mut failed = 0;
    let mut succeeded = 0;
    for waited in waiting {
        let (to, on, result, ended) = waited.await.expect("a goal's task");
        let result = result.unwrap_or_else(|_| panic!("goal {to} on replica {on} did not end"));
        if on == victim {
            let after = ended.saturating_duration_since(killed);
            match result {
                Err(GoalError::Call(CallError::Transport(error))) => {
                    assert_eq!(error.kind(), TransportErrorKind::Disconnected, "{error}");
                    assert!(error.to_string().contains("replica"), "{error}");
                }
                other => panic!("goal {to} of the killed replica: {other:?}"),
            }
            assert!(after <= GOAL_FAILS_WITHIN, "goal {to} failed {after:?} after the kill");
            eprintln!("{base}: goal {to} of the killed replica failed {after:?} after the kill");
            failed += 1;
        } else {
            assert_eq!(result.expect("a goal of a surviving replica"), to, "goal {to}");
            succeeded += 1;
        }
    }
    assert!(failed >= 1 && succeeded >= 2, "{failed} failed, {succeeded} succeeded");
    let ran: usize = replicas
        .iter()
        .map(|r| r.executed().iter().filter(|k| k.starts_with("goal-")).count())
        .sum();
    assert_eq!(ran, usize::try_from(to - 100).unwrap(), "each goal ran on one replica, once");
    replicas.clear();
}

/// Failover of calls: three replicas hold slow calls (4 s each) of one client; one replica is
/// killed with SIGKILL: the calls it had taken fail promptly with a transport error, long before
/// their deadline, and the others succeed, each having run once. `liveness` is what the URLs
/// add for a dead replica to be noticed in time.
async fn calls_of_a_killed_replica_fail_promptly(base: &str, liveness: &str) {
    use switchboard::error::TransportErrorKind;

    let dir = SocketDir::new();
    let instance = format!("failover{}", std::process::id());
    let url = format!("{base}?instance={instance}{liveness}");
    let replica_url = format!("{url}&replicas=shared");
    let mut replicas: Vec<Replica> =
        ["a", "b", "c"].iter().map(|name| Replica::start(dir.dir(), name, &replica_url)).collect();
    let client = connect_timed(&url, Duration::from_secs(30)).await;
    until_all_serve(&client, 3).await;

    // Which replica took call `key`, from the count files.
    let taker = |replicas: &[Replica], key: &str| {
        replicas.iter().position(|r| r.executed().iter().any(|k| k == key))
    };
    // Make slow calls until every replica holds at least one.
    let mut calls = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in 1.. {
        let placed: Vec<usize> =
            (0..3).map(|at| calls.iter().filter(|(_, _, on)| *on == at).count()).collect();
        if placed.iter().all(|n| *n >= 1) {
            break;
        }
        assert!(Instant::now() < deadline, "slow calls did not reach every replica: {placed:?}");
        let key = format!("slow-{n}");
        let call = tokio::spawn({
            let (client, key) = (client.clone(), key.clone());
            async move {
                let result = client.lookup(key).await;
                (result, Instant::now())
            }
        });
        let sent = Instant::now();
        let on = loop {
            if let Some(on) = taker(&replicas, &key) {
                break on;
            }
            assert!(sent.elapsed() < Duration::from_secs(5), "no replica took {key}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        calls.push((key, call, on));
    }
    let victim = 0;
    // From the moment the signal goes: `kill` also waits for the process to be reaped.
    let killed = Instant::now();
    replicas[victim].process.kill();
    let (mut failed, mut succeeded) = (0, 0);
    for (key, call, on) in calls {
        let (result, ended) = within("a slow call", call).await.expect("the call's task");
        if on == victim {
            let after = ended.saturating_duration_since(killed);
            let error = result.expect_err("a call of the killed replica cannot succeed");
            match error.call_error() {
                Some(CallError::Transport(error)) => {
                    assert_eq!(error.kind(), TransportErrorKind::Disconnected, "{error}");
                    assert!(error.to_string().contains("replica"), "{error}");
                }
                other => panic!("{key} of the killed replica: {other:?}"),
            }
            assert!(after <= GOAL_FAILS_WITHIN, "{key} failed {after:?} after the kill");
            eprintln!("{base}: {key} of the killed replica failed {after:?} after the kill");
            failed += 1;
        } else {
            result.unwrap_or_else(|error| panic!("{key} on a surviving replica: {error}"));
            succeeded += 1;
        }
    }
    assert!(failed >= 1 && succeeded >= 2, "{failed} failed, {succeeded} succeeded");
    let mut ran: Vec<String> =
        replicas.iter().flat_map(|r| r.executed()).filter(|key| key.starts_with("slow-")).collect();
    let total = ran.len();
    ran.sort();
    ran.dedup();
    assert_eq!(ran.len(), total, "each slow call ran once");
    replicas.clear();
}

/// [`calls_of_a_killed_replica_fail_promptly`] on a private nats-server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_calls_of_a_killed_replica_fail_promptly() {
    let Some(nats) = switchboard_testkit::broker::PrivateNats::start() else { return };
    calls_of_a_killed_replica_fail_promptly(&nats.url(), BROKERED_HEARTBEAT).await;
}

/// [`calls_of_a_killed_replica_fail_promptly`] on a private Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_calls_of_a_killed_replica_fail_promptly() {
    let Some(redis) = switchboard_testkit::broker::PrivateRedis::start() else { return };
    calls_of_a_killed_replica_fail_promptly(&redis.url(), BROKERED_HEARTBEAT).await;
}

/// [`calls_of_a_killed_replica_fail_promptly`] on a private mosquitto: the replicas say which
/// calls they took (`Taken`), and the broker publishes a killed replica's last will.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_calls_of_a_killed_replica_fail_promptly() {
    let Some(broker) = PrivateMosquitto::start() else { return };
    calls_of_a_killed_replica_fail_promptly(&broker.url(), "").await;
}

/// [`goals_follow_their_replica`] on a private nats-server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_goals_follow_their_replica() {
    let Some(nats) = switchboard_testkit::broker::PrivateNats::start() else { return };
    goals_follow_their_replica(&nats.url(), BROKERED_HEARTBEAT).await;
}

/// [`goals_follow_their_replica`] on a private Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_goals_follow_their_replica() {
    let Some(redis) = switchboard_testkit::broker::PrivateRedis::start() else { return };
    goals_follow_their_replica(&redis.url(), BROKERED_HEARTBEAT).await;
}

/// [`goals_follow_their_replica`] on a private mosquitto: a goal's cancel goes to its
/// replica's own topic, and a killed replica's last will fails its goals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_goals_follow_their_replica() {
    let Some(broker) = PrivateMosquitto::start() else { return };
    goals_follow_their_replica(&broker.url(), "").await;
}

/// A replica refuses what only one server can own: an interface with properties cannot be
/// served with `replicas=shared`, on either transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_refuse_properties() {
    use switchboard::error::TransportErrorKind;
    use switchboard_tests::thermostat::ThermostatServer;
    let mut urls = Vec::new();
    if let Some(broker) = PrivateMosquitto::start() {
        urls.push((format!("{}?instance=props&replicas=shared", broker.url()), Some(broker)));
    }
    let nats = switchboard_testkit::broker::PrivateNats::start();
    if let Some(nats) = &nats {
        urls.push((format!("{}?instance=props&replicas=shared", nats.url()), None));
    }
    for (url, _broker) in &urls {
        let endpoint = Endpoint::parse(url).expect("a valid URL");
        let properties = crate::suite::thermostat_properties();
        let handler = crate::suite::TestThermostat::default();
        let served = within("serve", ThermostatServer::serve(&endpoint, handler, properties)).await;
        let error = served.err().unwrap_or_else(|| panic!("{url}: a replica served properties"));
        assert_eq!(error.kind(), TransportErrorKind::InvalidAddress, "{url}: {error}");
        assert!(error.to_string().contains("setpoint"), "{url}: {error}");
    }
}

/// Calls per second of one instance served by 1, 2 and 4 replica processes, on a private
/// nats-server and a private mosquitto, 16 callers on one client: the numbers of
/// `docs/benchmarks.md` (section "Replicas: calls per second"). Run with
/// `cargo test --release -p switchboard-tests --test it -- replicas::throughput --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run it by hand"]
async fn throughput() {
    let (Some(nats), Some(mosquitto)) =
        (switchboard_testkit::broker::PrivateNats::start(), PrivateMosquitto::start())
    else {
        return;
    };
    let dir = SocketDir::new();
    for (name, base) in [("NATS", nats.url()), ("MQTT", mosquitto.url())] {
        for count in [1, 2, 4] {
            let instance = format!("bench{count}");
            let url = format!("{base}?instance={instance}");
            let replicas: Vec<Replica> = (0..count)
                .map(|n| {
                    Replica::start(
                        dir.dir(),
                        &format!("{name}-{count}-{n}"),
                        &format!("{url}&replicas=shared"),
                    )
                })
                .collect();
            let client = connect(&url).await;
            until_all_serve(&client, count).await;
            let mut rates = Vec::new();
            for _ in 0..3 {
                let stop = Arc::new(AtomicBool::new(false));
                let running = tokio::spawn(traffic(client.clone(), 16, stop.clone()));
                let started = Instant::now();
                tokio::time::sleep(Duration::from_secs(3)).await;
                stop.store(true, Ordering::Release);
                let outcomes = running.await.expect("the traffic task");
                let ok = outcomes.iter().filter(|o| o.result.is_ok()).count();
                assert_eq!(ok, outcomes.len(), "no call fails: {:?}", failures(&outcomes));
                rates.push(ok as f64 / started.elapsed().as_secs_f64());
            }
            rates.sort_by(f64::total_cmp);
            eprintln!(
                "{name}, {count} replica process(es): {:.0} calls/s (median of 3 rounds of 3 s; {rates:?})",
                rates[1]
            );
            drop(replicas);
        }
    }
}
