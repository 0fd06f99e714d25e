//! Test fixtures shared by the integration tests and the CLI's tests: the `Jobs` handler whose
//! behaviour the conformance suite, the Python cross-language tests and the MQTT wire tests rely on.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use switchboard::{CallContext, Endpoint, ErrorCode, HandlerError, RemoteError, ServerOptions};

use crate::jobs::{
    BadInput, CountError, CountFeedback, CountGoal, Jobs, JobsProperties, JobsServer, LookupError,
    NotFound, QuotaExceeded,
};

/// The `to` that makes `count` fail with the declared `QuotaExceeded` after one step.
pub const FAILING_COUNT: i64 = 13;

/// The `to` that makes `count` panic after one step.
pub const PANICKING_COUNT: i64 = 99;

/// What a panicking handler says; none of it may reach a client.
pub const PANIC_TEXT: &str = "secret detail at /srv/jobs/src/handler.rs:42";

/// The `resetsAt` of the `QuotaExceeded` that `lookup("quota")` fails with. Microseconds only,
/// so that Python peers (whose `datetime` stops there) report it back unchanged.
pub fn resets_at() -> switchboard::DateTime {
    switchboard::DateTime::from_timestamp(1_893_553_445, 123_456_000).unwrap_or_default()
}

/// The `Jobs` handler the tests serve.
///
/// `lookup` upper-cases its key, except `missing` and `quota` (declared errors), `other` (an
/// undeclared error) and `panic`; `note` emits a notice, to the sender only when private;
/// `count` waits `startAfterMs`, then counts to `to` with one feedback per `stepMs`, failing at
/// [`FAILING_COUNT`] and panicking at [`PANICKING_COUNT`]; negative goals are rejected.
#[derive(Debug)]
pub struct JobsWorker {
    server: Arc<OnceLock<JobsServer>>,
}

impl Jobs for JobsWorker {
    async fn lookup(
        &self,
        _ctx: &CallContext,
        key: String,
    ) -> Result<String, HandlerError<LookupError>> {
        match key.as_str() {
            "missing" => Err(LookupError::NotFound(NotFound { key }).into()),
            "quota" => Err(LookupError::QuotaExceeded(QuotaExceeded {
                used: 7,
                limit: 5,
                resets_at: Some(resets_at()),
            })
            .into()),
            "other" => {
                Err(RemoteError::new(ErrorCode::ClientError, "RateLimited", "slow down").into())
            }
            "panic" => panic!("{PANIC_TEXT}"),
            _ => Ok(key.to_uppercase()),
        }
    }

    async fn note(
        &self,
        ctx: &CallContext,
        text: String,
        private: bool,
    ) -> Result<(), RemoteError> {
        let server = self.server.get().ok_or_else(|| RemoteError::internal("not serving yet"))?;
        let sent = if private {
            server.emit_notice_to(ctx.peer(), text).await
        } else {
            server.emit_notice(text).await
        };
        sent.map_err(|e| RemoteError::internal(e.to_string()))
    }

    async fn count(
        &self,
        goal: switchboard::GoalContext<CountFeedback>,
        to: i64,
        step_ms: u32,
        start_after_ms: u32,
    ) -> Result<i64, HandlerError<CountError>> {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(start_after_ms.into())) => {}
            () = goal.cancelled() => return Err(HandlerError::Cancelled),
        }
        for value in 1..=to {
            goal.feedback(CountFeedback { value }).await;
            if to == FAILING_COUNT {
                let quota = QuotaExceeded { used: 1, limit: 1, resets_at: None };
                return Err(CountError::QuotaExceeded(quota).into());
            }
            if to == PANICKING_COUNT {
                panic!("{PANIC_TEXT}");
            }
            if step_ms == 0 {
                // Back to back: a burst as fast as the transport takes it.
                if goal.is_cancelled() {
                    return Err(HandlerError::Cancelled);
                }
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(step_ms.into())) => {}
                () = goal.cancelled() => return Err(HandlerError::Cancelled),
            }
        }
        Ok(to)
    }

    async fn accept_count(
        &self,
        _ctx: &CallContext,
        goal: &CountGoal,
    ) -> Result<(), HandlerError<CountError>> {
        if goal.to < 0 {
            let reason = "must not be negative".to_owned();
            return Err(CountError::BadInput(BadInput { field: "to".into(), reason }).into());
        }
        Ok(())
    }
}

/// Serves a [`JobsWorker`] at `endpoint`.
///
/// # Panics
/// If the server cannot start within ten seconds; a test cannot go on without it.
pub async fn serve_jobs(endpoint: &Endpoint, options: ServerOptions) -> JobsServer {
    let cell = Arc::new(OnceLock::new());
    let worker = JobsWorker { server: cell.clone() };
    let serving = JobsServer::serve_with(endpoint, worker, JobsProperties {}, options);
    let server = tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the jobs server starts within 10 s")
        .expect("the jobs server starts");
    let _ = cell.set(server.clone());
    server
}
