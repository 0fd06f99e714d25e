//! A thermostat server for fault tests, which kill it with SIGKILL and start it again.
//!
//! Usage: `switchboard-test-server SOCKET_PATH` or `switchboard-test-server ENDPOINT_URL` (any
//! argument containing `://`, such as `mqtt://127.0.0.1:1883?instance=x`). Unlike the example, `boost` answers only after
//! `forHowLong` has passed, so a test can kill the server while a call is in flight. It emits
//! `temperatureChanged` every 50 ms so tests can see signals resume after a restart. SIGINT or
//! SIGTERM shut it down cleanly, and it exits 0.
//!
//! `switchboard-test-server --replica COUNT_FILE ENDPOINT_URL` serves `Jobs` instead, as one of
//! several replicas: each `lookup` appends its key to COUNT_FILE before it answers, so scaling
//! tests can count on the servers how often each call ran (a key that starts with `slow-` is
//! answered 4 s later). Its `count` goal writes `goal-{to}`
//! there as it starts and counts to `to`, one feedback every `stepMs`, until cancelled.
//!
//! `switchboard-test-server --evolving VERSION ENDPOINT_URL` serves `Evolving` as generated from
//! `tests/interfaces/evolve/VERSION.yaml` (`v1` or `added_method`), for the compatibility tests
//! that run replicas of two versions: `setTarget` accepts a positive temperature unless the note
//! is `refuse`, `read` answers 21.5 °C, `mode` heat; `ping` and `boost` answer nothing.

use std::time::Duration;

use switchboard::error::HandlerError;
use switchboard::{
    DateTime, Endpoint, error::RemoteError, server::CallContext, transport::unix::UnixEndpoint,
};
use switchboard_tests::jobs::{CountError, CountFeedback, Jobs, JobsServer, LookupError};
use switchboard_tests::thermostat::{
    GetStatusReply, Mode, PreheatError, PreheatFeedback, Thermostat, ThermostatProperties,
    ThermostatServer,
};

struct SlowThermostat;

impl Thermostat for SlowThermostat {
    async fn boost(
        &self,
        _ctx: &CallContext,
        _extra_celsius: f64,
        for_how_long: switchboard::Duration,
        _reason: Option<String>,
    ) -> Result<DateTime, RemoteError> {
        tokio::time::sleep(for_how_long.to_std().unwrap_or_default()).await;
        Ok(DateTime::from(std::time::SystemTime::now()))
    }

    async fn get_status(&self, _ctx: &CallContext) -> Result<GetStatusReply, RemoteError> {
        Ok(GetStatusReply { mode: Mode::Eco, celsius: 18.5, history: vec![18.0, 18.5] })
    }

    async fn preheat(
        &self,
        goal: switchboard::action::GoalContext<PreheatFeedback>,
        target_celsius: f64,
    ) -> Result<f64, switchboard::error::HandlerError<PreheatError>> {
        goal.feedback(PreheatFeedback { celsius: target_celsius, percent: 100 }).await;
        Ok(target_celsius)
    }
}

/// A `lookup` of a key that starts with this answers only after [`SLOW_LOOKUP`], so a test
/// can kill a replica while it holds calls.
const SLOW_KEY: &str = "slow-";

/// How long a slow `lookup` takes.
const SLOW_LOOKUP: Duration = Duration::from_secs(4);

/// A `Jobs` server that is one of several replicas: `lookup` writes its key as a line to the
/// count file (flushed before it answers, so a test can count what a killed replica executed)
/// and answers with this process's id.
struct CountingJobs {
    executed: std::sync::Mutex<std::fs::File>,
}

impl CountingJobs {
    /// Appends `key` to the count file, flushed.
    fn record(&self, key: &str) -> Result<(), RemoteError> {
        use std::io::Write;
        let mut file = self.executed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        writeln!(file, "{key}")
            .and_then(|()| file.flush())
            .map_err(|e| RemoteError::internal(format!("cannot count the call: {e}")))
    }
}

impl Jobs for CountingJobs {
    async fn lookup(
        &self,
        _ctx: &CallContext,
        key: String,
    ) -> Result<String, HandlerError<LookupError>> {
        self.record(&key)?;
        if key.starts_with(SLOW_KEY) {
            tokio::time::sleep(SLOW_LOOKUP).await;
        }
        Ok(std::process::id().to_string())
    }

    async fn note(
        &self,
        _ctx: &CallContext,
        _text: String,
        _private: bool,
    ) -> Result<(), RemoteError> {
        Ok(())
    }

    async fn count(
        &self,
        goal: switchboard::action::GoalContext<CountFeedback>,
        to: i64,
        step_ms: u32,
        _start_after_ms: u32,
    ) -> Result<i64, HandlerError<CountError>> {
        // The goal is counted as it starts, so a test knows which replica runs it.
        self.record(&format!("goal-{to}"))?;
        for value in 1..=to {
            goal.feedback(CountFeedback { value }).await;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(step_ms.into())) => {}
                () = goal.cancelled() => return Err(HandlerError::Cancelled),
            }
        }
        Ok(to)
    }
}

/// `--replica COUNT_FILE ENDPOINT_URL`: serves [`CountingJobs`] until SIGINT or SIGTERM.
async fn serve_replica(count_file: &str, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = Endpoint::parse(url)?;
    let stop = switchboard::server::shutdown_signal()?;
    let executed = std::fs::OpenOptions::new().create(true).append(true).open(count_file)?;
    let jobs = CountingJobs { executed: std::sync::Mutex::new(executed) };
    let server = JobsServer::serve(&endpoint, jobs).await?;
    stop.await;
    server.shutdown().await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) = std::env::args().nth(1) else {
        return Err("usage: switchboard-test-server SOCKET_PATH|ENDPOINT_URL, or --replica COUNT_FILE ENDPOINT_URL".into());
    };
    if path == "--evolving" {
        let (Some(version), Some(url)) = (std::env::args().nth(2), std::env::args().nth(3)) else {
            return Err("usage: switchboard-test-server --evolving VERSION ENDPOINT_URL".into());
        };
        return evolving::serve(&version, &Endpoint::parse(&url)?).await;
    }
    if path == "--replica" {
        let (Some(count_file), Some(url)) = (std::env::args().nth(2), std::env::args().nth(3))
        else {
            return Err("usage: switchboard-test-server --replica COUNT_FILE ENDPOINT_URL".into());
        };
        return serve_replica(&count_file, &url).await;
    }
    let endpoint = if path.contains("://") {
        Endpoint::parse(&path)?
    } else {
        Endpoint::unix(UnixEndpoint::at(path))
    };
    let mut stop = switchboard::server::shutdown_signal()?;
    let properties = ThermostatProperties { setpoint: 21.0, mode: Mode::Eco };
    let server = ThermostatServer::serve(&endpoint, SlowThermostat, properties).await?;
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    let mut celsius = 18.0;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut stop => break,
        }
        celsius += 0.5;
        // Over a broker, emitting fails while the broker is away; keep going.
        if let Err(error) = server
            .emit_temperature_changed(celsius, DateTime::from(std::time::SystemTime::now()))
            .await
        {
            eprintln!("switchboard-test-server: could not emit: {error}");
        }
    }
    server.shutdown().await;
    Ok(())
}

/// `Evolving` in two of its versions, one handler each.
mod evolving {
    use switchboard::{Endpoint, error::RemoteError, server::CallContext};
    use switchboard_tests::evolve::{added_method, v1};

    struct Handler;

    /// The methods both versions have, answered alike.
    macro_rules! common {
        ($version:ident) => {
            async fn set_target(
                &self,
                _: &CallContext,
                celsius: f64,
                note: Option<String>,
            ) -> Result<bool, RemoteError> {
                Ok(celsius > 0.0 && note.as_deref() != Some("refuse"))
            }
            async fn read(&self, _: &CallContext) -> Result<$version::Reading, RemoteError> {
                Ok($version::Reading { celsius: 21.5 })
            }
            async fn mode(&self, _: &CallContext) -> Result<$version::Mode, RemoteError> {
                Ok($version::Mode::Heat)
            }
            async fn ping(&self, _: &CallContext) -> Result<(), RemoteError> {
                Ok(())
            }
        };
    }

    impl v1::Evolving for Handler {
        common!(v1);
    }

    impl added_method::Evolving for Handler {
        common!(added_method);
        async fn boost(&self, _: &CallContext) -> Result<(), RemoteError> {
            Ok(())
        }
    }

    /// Serves `version` at `endpoint` until SIGINT or SIGTERM, then shuts down cleanly.
    pub(super) async fn serve(
        version: &str,
        endpoint: &Endpoint,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let stop = switchboard::server::shutdown_signal()?;
        match version {
            "v1" => {
                let server = v1::EvolvingServer::serve(endpoint, Handler).await?;
                stop.await;
                server.shutdown().await;
            }
            "added_method" => {
                let server = added_method::EvolvingServer::serve(endpoint, Handler).await?;
                stop.await;
                server.shutdown().await;
            }
            other => return Err(format!("no version `{other}` here (v1, added_method)").into()),
        }
        Ok(())
    }
}
