//! The soak (`switchboard-bench soak --minutes N`): the thermostat server in a process of its
//! own, serving on a Unix socket and through a private mosquitto at once, while clients over
//! both call, read and set properties, watch signals and property changes, and start, cancel and
//! abandon goals. Clients drop their connections on a schedule and the private broker is killed
//! and restarted on another. The server's RSS and open file descriptors are sampled from
//! `/proc`; the run ends by itself, prints a report and fails (exit status 1) when something was
//! lost or left pending, an answer was wrong, the MQTT side did not recover from a restart, or
//! the server's memory or descriptors did not level off.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use switchboard::{
    Endpoint,
    action::GoalError,
    client::ClientOptions,
    error::{CallError, ErrorCode, MethodError},
};
use switchboard_testkit::broker::PrivateMosquitto;
use thermostat_example::generated::thermostat::{PreheatError, ThermostatClient};

use crate::util::{Server, socket_dir};

/// Callers (clients making requests) per transport.
const CALLERS: usize = 6;
/// Watchers (clients only subscribed) per transport.
const WATCHERS: usize = 2;
/// The call timeout the soak's clients use, and how long a goal handle waits for a lost
/// connection to come back.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// A request with no outcome after this long is lost: well past every timeout that applies.
const LOST_AFTER: Duration = Duration::from_secs(30);
/// How long the private broker stays down at each restart.
const BROKER_DOWNTIME: Duration = Duration::from_secs(1);
/// How much the server's peak RSS of the last third of the run may exceed its peak over the
/// first two thirds for memory to count as level: 5 %, and at least [`RSS_SLACK_KIB`].
const RSS_GROWTH_PERCENT: u64 = 5;
const RSS_SLACK_KIB: u64 = 2048;
/// How many more descriptors than before the clients came the server may hold once they have
/// all gone.
const FD_SLACK: u64 = 2;

/// `soak --minutes N` or `soak --seconds N`: runs the soak and returns the exit status.
pub(crate) fn run(args: &[&str]) -> i32 {
    let duration = match args {
        ["--minutes", n] => n.parse::<f64>().ok().map(|m| m * 60.0),
        ["--seconds", n] => n.parse::<f64>().ok(),
        _ => None,
    };
    let Some(duration) = duration.filter(|s| s.is_finite() && *s >= 30.0) else {
        eprintln!("usage: switchboard-bench soak (--minutes N | --seconds N), at least 30 s");
        return 2;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(soak(Duration::from_secs_f64(duration)))
}

/// Serves the thermostat at each URL of `urls` (separated by spaces) in this process, until killed.
pub(crate) async fn serve_thermostat(urls: &str) {
    let endpoints: Vec<Endpoint> =
        urls.split(' ').map(|url| Endpoint::parse(url).expect("a server URL")).collect();
    println!("ready");
    let servers = endpoints
        .iter()
        .map(|endpoint| thermostat_example::server::run_until(endpoint, std::future::pending()));
    for result in futures_util::future::join_all(servers).await {
        if let Err(error) = result {
            eprintln!("thermostat server failed: {error:#}");
            std::process::exit(1);
        }
    }
}

async fn soak(duration: Duration) -> i32 {
    let Some(broker) = PrivateMosquitto::start() else {
        eprintln!("soak: mosquitto is not installed; the soak needs a private broker");
        return 1;
    };
    let dir = socket_dir();
    let (unix_url, mqtt_url) = (format!("unix://{}", dir.path("thermostat.sock")), broker.url());
    let unix = Endpoint::parse(&unix_url).expect("URL");
    let mqtt = Endpoint::parse(&mqtt_url).expect("URL");
    let server = Server::spawn("thermostat", &format!("{unix_url} {mqtt_url}"));
    let pid = server.pid();
    for endpoint in [&unix, &mqtt] {
        if let Err(error) = connect_within(endpoint, Duration::from_secs(10)).await {
            eprintln!("soak: the server never answered at {endpoint}: {error}");
            return 1;
        }
    }
    let before = sample(pid, Duration::ZERO);
    let restart_every = (duration / 6).clamp(Duration::from_secs(10), Duration::from_secs(120));
    let sample_every = (duration / 60).clamp(Duration::from_secs(1), Duration::from_secs(30));
    println!(
        "soak: {} s; thermostat pid {pid} on {unix_url} and {mqtt_url}; {CALLERS} callers and {WATCHERS} watchers per transport; broker killed every {} s for {} s; samples every {} s",
        duration.as_secs(),
        restart_every.as_secs(),
        BROKER_DOWNTIME.as_secs(),
        sample_every.as_secs()
    );

    let started = Instant::now();
    let end = started + duration;
    let tallies = [Arc::new(Tally::new("unix")), Arc::new(Tally::new("mqtt"))];
    let mut clients = Vec::new();
    for (t, (tally, endpoint)) in tallies.iter().zip([&unix, &mqtt]).enumerate() {
        for n in 0..CALLERS {
            let seed = 0x9E37_79B9_7F4A_7C15 ^ (((t * CALLERS + n) as u64 + 1) * 7919);
            clients.push(tokio::spawn(caller(endpoint.clone(), tally.clone(), end, seed)));
        }
        for n in 0..WATCHERS {
            let seed = 0xD1B5_4A32_D192_ED03 ^ (((t * WATCHERS + n) as u64 + 1) * 104_729);
            clients.push(tokio::spawn(watcher(
                endpoint.clone(),
                tally.clone(),
                started,
                end,
                seed,
            )));
        }
    }
    let restarts = tokio::spawn(restart_broker(broker, restart_every, end, tallies[1].clone()));
    let samples = sampler(pid, started, end, sample_every, &tallies).await;

    // Every client stops at `end`; one still running long after has something stuck.
    let mut stuck_clients = 0;
    let give_up = tokio::time::Instant::now() + LOST_AFTER * 3;
    for client in clients {
        let abort = client.abort_handle();
        if tokio::time::timeout_at(give_up, client).await.is_err() {
            abort.abort();
            stuck_clients += 1;
        }
    }
    eprintln!("soak: every client has stopped ({stuck_clients} stuck)");
    let (broker, recoveries) = restarts.await.expect("the restart task");
    // Once every client has gone (and the goals they abandoned are cancelled, after the
    // server's 10 s grace), the server should hold what it held before they came.
    let settled = settle_fds(pid, before.fds, Duration::from_secs(15)).await;
    drop(broker);

    let report = Report { duration, before, samples, settled, tallies, recoveries, stuck_clients };
    print!("{}", report.render());
    let failures = report.failures();
    drop(server);
    if failures.is_empty() {
        println!("soak: passed");
        0
    } else {
        for failure in &failures {
            println!("soak: FAILED: {failure}");
        }
        1
    }
}

fn options() -> ClientOptions {
    ClientOptions::default().call_timeout(CLIENT_TIMEOUT).goal_reconnect_timeout(CLIENT_TIMEOUT)
}

async fn connect_within(endpoint: &Endpoint, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        match ThermostatClient::connect_with(endpoint, options()).await {
            Ok(client) => {
                client.close();
                return Ok(());
            }
            Err(error) if Instant::now() > deadline => return Err(error.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// What the clients of one transport saw.
#[derive(Debug)]
struct Tally {
    name: &'static str,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    /// Requests made: calls, property reads and updates, goals sent.
    requests: AtomicU64,
    /// Requests that were answered as expected: a value, or the refusal (an error the server
    /// sent) a bad argument earns.
    answered: AtomicU64,
    /// Requests answered, but not as expected (a bad argument accepted, a good one refused).
    wrong: AtomicU64,
    /// Requests that failed with a typed error other than a refusal, by kind.
    failed: Mutex<BTreeMap<String, u64>>,
    /// Requests with no outcome after [`LOST_AFTER`].
    lost: AtomicU64,
    goals: AtomicU64,
    goals_succeeded: AtomicU64,
    goals_cancelled: AtomicU64,
    /// Goals whose result failed with a typed error (a lost connection that stayed lost).
    goals_failed: AtomicU64,
    goals_lost: AtomicU64,
    /// Goals that ended in a way they should not have (a declared error, or cancelled unasked).
    goals_wrong: AtomicU64,
    /// Goals left running when their client dropped its connection on purpose.
    goals_abandoned: AtomicU64,
    cancels: AtomicU64,
    signals: AtomicU64,
    /// Signals received in each third of the run.
    signals_by_third: [AtomicU64; 3],
    property_changes: AtomicU64,
    lagged: AtomicU64,
    drops: AtomicU64,
}

impl Tally {
    fn new(name: &'static str) -> Tally {
        Tally {
            name,
            connects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            wrong: AtomicU64::new(0),
            failed: Mutex::new(BTreeMap::new()),
            lost: AtomicU64::new(0),
            goals: AtomicU64::new(0),
            goals_succeeded: AtomicU64::new(0),
            goals_cancelled: AtomicU64::new(0),
            goals_failed: AtomicU64::new(0),
            goals_lost: AtomicU64::new(0),
            goals_wrong: AtomicU64::new(0),
            goals_abandoned: AtomicU64::new(0),
            cancels: AtomicU64::new(0),
            signals: AtomicU64::new(0),
            signals_by_third: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            property_changes: AtomicU64::new(0),
            lagged: AtomicU64::new(0),
            drops: AtomicU64::new(0),
        }
    }

    fn failures(&self) -> u64 {
        self.failed.lock().expect("tally").values().sum()
    }

    /// Counts one request's outcome; `refusal` says whether the request was meant to be refused.
    fn settle<T>(&self, outcome: Option<Result<T, CallError>>, refusal: bool) -> bool {
        match outcome {
            None => {
                self.lost.fetch_add(1, Ordering::Relaxed);
                false
            }
            Some(Ok(_)) if !refusal => {
                self.answered.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some(Err(CallError::Remote(_))) if refusal => {
                self.answered.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some(Err(CallError::Remote(error))) if expected_refusal(&error) => {
                *self
                    .failed
                    .lock()
                    .expect("tally")
                    .entry(format!("remote {}", error.name()))
                    .or_default() += 1;
                false
            }
            Some(Ok(_)) => {
                self.wrong.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: wrong: a bad request was accepted");
                false
            }
            Some(Err(error @ CallError::Remote(_))) => {
                self.wrong.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: wrong: {error}");
                false
            }
            Some(Err(error)) => {
                *self.failed.lock().expect("tally").entry(kind(&error)).or_default() += 1;
                false
            }
        }
    }
}

/// Whether the server may refuse a good request with `error` in the soak: a set-point update
/// that raced another client's (`OutOfSync`: six callers set it at once), or, over MQTT, a
/// property read in the moment after a broker restart before the server has published its value
/// again (`NoRetainedValue`). Both are the server saying no, typed; neither is lost.
fn expected_refusal(error: &switchboard::error::RemoteError) -> bool {
    error.code() == ErrorCode::OutOfSync || error.name() == "NoRetainedValue"
}

/// The kind of a typed failure, for the report.
fn kind(error: &CallError) -> String {
    match error {
        CallError::Remote(error) => format!("remote {}", error.name()),
        CallError::Timeout(_) => "timeout".into(),
        CallError::Decode(_) => "decode".into(),
        CallError::Transport(error) => format!("transport {:?}", error.kind()),
        _ => "other".into(),
    }
}

/// A request's outcome, or `None` when it has none after [`LOST_AFTER`].
async fn within<T>(request: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(LOST_AFTER, request).await.ok()
}

/// A small deterministic generator (xorshift64*), so a run's mix of requests is reproducible.
#[derive(Debug)]
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Connects, or counts a failure and waits a little; `None` once the run is over.
async fn connect(endpoint: &Endpoint, tally: &Tally, end: Instant) -> Option<ThermostatClient> {
    while Instant::now() < end {
        match within(ThermostatClient::connect_with(endpoint, options())).await {
            Some(Ok(client)) => {
                tally.connects.fetch_add(1, Ordering::Relaxed);
                return Some(client);
            }
            _ => {
                tally.connect_failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    None
}

/// A client making requests until `end`: sessions of 20 to 200 requests, each ended by
/// dropping the connection, sometimes with a goal still running.
async fn caller(endpoint: Endpoint, tally: Arc<Tally>, end: Instant, seed: u64) {
    let mut dice = Dice(seed | 1);
    while let Some(client) = connect(&endpoint, &tally, end).await {
        let session = 20 + dice.below(180);
        for _ in 0..session {
            if Instant::now() >= end {
                break;
            }
            let ok = request(&client, &tally, &mut dice).await;
            let pause = if ok { dice.below(5) } else { 100 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        if dice.below(4) == 0 {
            // Leave a goal running: the server cancels it once the client is gone for good.
            tally.requests.fetch_add(1, Ordering::Relaxed);
            if tally
                .settle(within(client.preheat(22.0)).await.map(|r| r.map_err(call_error)), false)
            {
                tally.goals_abandoned.fetch_add(1, Ordering::Relaxed);
            }
        }
        client.close();
        tally.drops.fetch_add(1, Ordering::Relaxed);
    }
}

fn call_error(error: MethodError<PreheatError>) -> CallError {
    match error {
        MethodError::Call(error) => error,
        // Reported as a refusal, which `settle` checks against what was asked.
        MethodError::Declared(error) => {
            CallError::Remote(switchboard::error::RemoteError::client_error(error.to_string()))
        }
        _ => CallError::Remote(switchboard::error::RemoteError::internal("unknown")),
    }
}

/// Makes one request of a random kind and counts its outcome; false when it failed.
async fn request(client: &ThermostatClient, tally: &Tally, dice: &mut Dice) -> bool {
    tally.requests.fetch_add(1, Ordering::Relaxed);
    let half_hour = switchboard::Duration::minutes(30);
    match dice.below(9) {
        0 | 1 => tally.settle(within(client.get_status()).await, false),
        2 => tally.settle(within(client.boost(2.0, half_hour, Some("soak".into()))).await, false),
        3 => tally.settle(within(client.boost(50.0, half_hour, None)).await, true),
        4 => tally.settle(within(client.get_setpoint()).await, false),
        5 => {
            let celsius = 20.0 + dice.below(20) as f64 / 10.0;
            tally.settle(within(client.set_setpoint(celsius)).await, false)
        }
        6 => tally.settle(within(client.set_setpoint(99.0)).await, true),
        7 => {
            let refused = within(client.preheat(80.0)).await.map(|r| r.map_err(call_error));
            tally.settle(refused, true)
        }
        _ => goal(client, tally, dice).await,
    }
}

/// Sends a preheat, cancels it at once, after its first feedback or not at all, and waits for
/// it to end.
async fn goal(client: &ThermostatClient, tally: &Tally, dice: &mut Dice) -> bool {
    let sent = within(client.preheat(23.0)).await.map(|r| r.map_err(call_error));
    let Some(Ok(mut handle)) = sent else { return tally.settle(sent, false) };
    tally.answered.fetch_add(1, Ordering::Relaxed);
    tally.goals.fetch_add(1, Ordering::Relaxed);
    let cancel = dice.below(3);
    if cancel == 1 {
        within(handle.next_feedback()).await;
    }
    if cancel < 2 {
        tally.cancels.fetch_add(1, Ordering::Relaxed);
        // Its outcome shows in the goal's end; a cancel lost with the connection is fine.
        let _ = within(handle.cancel()).await;
    }
    match within(handle.result()).await {
        None => {
            tally.goals_lost.fetch_add(1, Ordering::Relaxed);
            false
        }
        Some(Ok(_)) => {
            tally.goals_succeeded.fetch_add(1, Ordering::Relaxed);
            true
        }
        Some(Err(GoalError::Cancelled)) if cancel < 2 => {
            tally.goals_cancelled.fetch_add(1, Ordering::Relaxed);
            true
        }
        Some(Err(GoalError::Call(error))) if !matches!(error, CallError::Remote(_)) => {
            tally.goals_failed.fetch_add(1, Ordering::Relaxed);
            *tally
                .failed
                .lock()
                .expect("tally")
                .entry(format!("goal {}", kind(&error)))
                .or_default() += 1;
            false
        }
        Some(Err(_)) => {
            tally.goals_wrong.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// A client watching the temperature signal and the set-point until `end`, reconnecting every
/// 5 to 15 s.
async fn watcher(endpoint: Endpoint, tally: Arc<Tally>, started: Instant, end: Instant, seed: u64) {
    let mut dice = Dice(seed | 1);
    let third = (end - started) / 3;
    while let Some(client) = connect(&endpoint, &tally, end).await {
        let session_end = (Instant::now() + Duration::from_secs(5 + dice.below(10))).min(end);
        let subscribed = within(async {
            Ok::<_, CallError>((
                client.subscribe_temperature_changed().await?,
                client.watch_setpoint().await?,
            ))
        })
        .await;
        tally.requests.fetch_add(1, Ordering::Relaxed);
        let Some(Ok((mut readings, mut setpoint))) = subscribed else {
            tally.settle(subscribed, false);
            client.close();
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        tally.answered.fetch_add(1, Ordering::Relaxed);
        let session = tokio::time::sleep_until(session_end.into());
        tokio::pin!(session);
        loop {
            tokio::select! {
                () = &mut session => break,
                reading = readings.next() => match reading {
                    Some(Ok(_)) => {
                        tally.signals.fetch_add(1, Ordering::Relaxed);
                        let part = ((Instant::now() - started).as_secs_f64() / third.as_secs_f64()) as usize;
                        tally.signals_by_third[part.min(2)].fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Err(switchboard::client::SubscriptionError::Lagged { .. })) => {
                        tally.lagged.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Err(_)) => {}
                    None => break,
                },
                value = setpoint.next() => match value {
                    Some(Ok(_)) => { tally.property_changes.fetch_add(1, Ordering::Relaxed); }
                    Some(Err(_)) => {}
                    None => break,
                },
            }
        }
        client.close();
        tally.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether the MQTT side answered again after one broker restart.
#[derive(Debug)]
struct Recovery {
    at: Duration,
    /// Requests answered over MQTT between this restart and the next (or the end).
    answered_after: u64,
}

/// Kills and restarts the private broker every `every` until `end`.
async fn restart_broker(
    broker: PrivateMosquitto,
    every: Duration,
    end: Instant,
    mqtt: Arc<Tally>,
) -> (PrivateMosquitto, Vec<Recovery>) {
    let started = Instant::now();
    let broker = Arc::new(Mutex::new(broker));
    let mut recoveries: Vec<Recovery> = Vec::new();
    let mut next = started + every;
    while next + every / 2 < end {
        tokio::time::sleep_until(next.into()).await;
        let answered = mqtt.answered.load(Ordering::Relaxed);
        if let Some(last) = recoveries.last_mut() {
            last.answered_after = answered - last.answered_after;
        }
        let restarting = broker.clone();
        tokio::task::spawn_blocking(move || {
            let mut broker = restarting.lock().expect("broker");
            broker.stop();
            std::thread::sleep(BROKER_DOWNTIME);
            broker.restart();
        })
        .await
        .expect("restart the broker");
        recoveries.push(Recovery { at: next - started, answered_after: answered });
        next += every;
    }
    tokio::time::sleep_until(end.into()).await;
    if let Some(last) = recoveries.last_mut() {
        last.answered_after = mqtt.answered.load(Ordering::Relaxed) - last.answered_after;
    }
    let broker = Arc::try_unwrap(broker).expect("one owner").into_inner().expect("broker");
    (broker, recoveries)
}

/// One reading of the server process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: u64,
    /// Requests answered so far, over both transports.
    answered: u64,
}

/// Reads the server's RSS and descriptor count from `/proc`; zero RSS when it has exited.
fn sample(pid: u32, at: Duration) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|rest| rest.trim().trim_end_matches(" kB").trim().to_owned())
    };
    let zombie = field("State:").is_some_and(|state| state.starts_with('Z'));
    let rss_kib =
        if zombie { 0 } else { field("VmRSS:").and_then(|v| v.parse().ok()).unwrap_or(0) };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64);
    Sample { at, rss_kib, fds, answered: 0 }
}

async fn sampler(
    pid: u32,
    started: Instant,
    end: Instant,
    every: Duration,
    tallies: &[Arc<Tally>; 2],
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut next = started;
    while next <= end {
        tokio::time::sleep_until(next.into()).await;
        let mut sample = sample(pid, started.elapsed());
        sample.answered = tallies.iter().map(|t| t.answered.load(Ordering::Relaxed)).sum();
        eprintln!(
            "soak: {:>5} s  RSS {:>7} KiB  {:>3} fds  {:>8} answered",
            sample.at.as_secs(),
            sample.rss_kib,
            sample.fds,
            sample.answered
        );
        samples.push(sample);
        next += every;
    }
    samples
}

/// Waits up to `within` for the server's descriptors to come back to `baseline` (plus
/// [`FD_SLACK`]); returns the last count.
async fn settle_fds(pid: u32, baseline: u64, within: Duration) -> Sample {
    let deadline = Instant::now() + within;
    loop {
        let now = sample(pid, Duration::ZERO);
        if now.fds <= baseline + FD_SLACK || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[derive(Debug)]
struct Report {
    duration: Duration,
    before: Sample,
    samples: Vec<Sample>,
    settled: Sample,
    tallies: [Arc<Tally>; 2],
    recoveries: Vec<Recovery>,
    stuck_clients: usize,
}

impl Report {
    /// The peak RSS of the first two thirds of the run and of the last third, in KiB.
    fn rss_peaks(&self) -> (u64, u64) {
        let cut = self.duration.mul_f64(2.0 / 3.0);
        let peak = |last: bool| {
            self.samples.iter().filter(|s| (s.at >= cut) == last).map(|s| s.rss_kib).max()
        };
        (peak(false).unwrap_or(0), peak(true).unwrap_or(0))
    }

    fn rss_bound(earlier: u64) -> u64 {
        earlier + (earlier * RSS_GROWTH_PERCENT / 100).max(RSS_SLACK_KIB)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\nserver (thermostat on Unix and MQTT), sampled from /proc:");
        let _ = writeln!(out, "{:>8} {:>10} {:>5} {:>10}", "time s", "RSS KiB", "fds", "answered");
        let _ = writeln!(
            out,
            "{:>8} {:>10} {:>5} {:>10}",
            "before", self.before.rss_kib, self.before.fds, 0
        );
        for s in &self.samples {
            let _ = writeln!(
                out,
                "{:>8} {:>10} {:>5} {:>10}",
                s.at.as_secs(),
                s.rss_kib,
                s.fds,
                s.answered
            );
        }
        let _ =
            writeln!(out, "{:>8} {:>10} {:>5}", "after", self.settled.rss_kib, self.settled.fds);
        let (earlier, last) = self.rss_peaks();
        let _ = writeln!(
            out,
            "peak RSS: {earlier} KiB in the first two thirds, {last} KiB in the last (bound {} KiB)",
            Self::rss_bound(earlier)
        );
        for tally in &self.tallies {
            let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
            let failed = tally.failed.lock().expect("tally").clone();
            let failures: u64 = failed.values().sum();
            let _ = writeln!(
                out,
                "{}: {} connects ({} failed), {} dropped on purpose; {} requests: {} answered as expected, {} wrong, {} failed typed {:?}, {} lost",
                tally.name,
                load(&tally.connects),
                load(&tally.connect_failures),
                load(&tally.drops),
                load(&tally.requests),
                load(&tally.answered),
                load(&tally.wrong),
                failures,
                failed,
                load(&tally.lost)
            );
            let _ = writeln!(
                out,
                "{}: {} goals followed to their end: {} succeeded, {} cancelled ({} cancels asked), {} failed typed, {} lost, {} ended wrongly; {} abandoned running",
                tally.name,
                load(&tally.goals),
                load(&tally.goals_succeeded),
                load(&tally.goals_cancelled),
                load(&tally.cancels),
                load(&tally.goals_failed),
                load(&tally.goals_lost),
                load(&tally.goals_wrong),
                load(&tally.goals_abandoned)
            );
            let thirds: Vec<u64> = tally.signals_by_third.iter().map(load).collect();
            let _ = writeln!(
                out,
                "{}: {} signals received (by third: {thirds:?}), {} set-point values, {} lag reports",
                tally.name,
                load(&tally.signals),
                load(&tally.property_changes),
                load(&tally.lagged)
            );
        }
        for r in &self.recoveries {
            let _ = writeln!(
                out,
                "broker restart at {} s: {} MQTT requests answered before the next",
                r.at.as_secs(),
                r.answered_after
            );
        }
        out
    }

    fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.samples.iter().chain([&self.settled]).any(|s| s.rss_kib == 0) {
            failures.push("the server process exited".to_owned());
        }
        let (earlier, last) = self.rss_peaks();
        if last > Self::rss_bound(earlier) {
            failures.push(format!(
                "memory did not level off: peak RSS {last} KiB in the last third, {earlier} KiB before"
            ));
        }
        if self.settled.fds > self.before.fds + FD_SLACK {
            failures.push(format!(
                "the server holds {} descriptors after every client left, {} before they came",
                self.settled.fds, self.before.fds
            ));
        }
        if self.stuck_clients > 0 {
            failures
                .push(format!("{} clients were still busy long after the end", self.stuck_clients));
        }
        for tally in &self.tallies {
            let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
            let settled =
                load(&tally.answered) + load(&tally.wrong) + tally.failures() + load(&tally.lost);
            let requests = load(&tally.requests);
            if settled != requests {
                failures.push(format!(
                    "{}: {requests} requests made but {settled} have an outcome",
                    tally.name
                ));
            }
            let ended = load(&tally.goals_succeeded)
                + load(&tally.goals_cancelled)
                + load(&tally.goals_failed)
                + load(&tally.goals_lost)
                + load(&tally.goals_wrong);
            let goals = load(&tally.goals);
            if ended != goals {
                failures.push(format!("{}: {goals} goals followed but {ended} ended", tally.name));
            }
            for (what, n) in [
                ("requests lost", load(&tally.lost)),
                ("goals lost", load(&tally.goals_lost)),
                ("wrong answers", load(&tally.wrong)),
                ("goals that ended wrongly", load(&tally.goals_wrong)),
            ] {
                if n > 0 {
                    failures.push(format!("{}: {n} {what}", tally.name));
                }
            }
            if tally.signals_by_third.iter().any(|n| load(n) == 0) {
                failures.push(format!("{}: a third of the run without signals", tally.name));
            }
        }
        // Nothing stands between a Unix client and the server: every request must succeed but
        // for set-point updates that raced another's.
        let unix = &self.tallies[0];
        let raced = unix.failed.lock().expect("tally").get("remote OutOfSync").copied();
        if unix.failures() > raced.unwrap_or(0) || unix.connect_failures.load(Ordering::Relaxed) > 0
        {
            failures.push(format!(
                "unix: {} requests and {} connects failed with no broker in between",
                unix.failures(),
                unix.connect_failures.load(Ordering::Relaxed)
            ));
        }
        for r in &self.recoveries {
            if r.answered_after == 0 {
                failures.push(format!(
                    "mqtt: nothing answered after the restart at {} s",
                    r.at.as_secs()
                ));
            }
        }
        failures
    }
}
