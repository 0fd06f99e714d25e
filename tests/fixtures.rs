//! Test fixtures shared by the integration tests and the CLI's tests: the `Everything` echo
//! handler and the `Jobs` handler whose behaviour the suites, the Python cross-language tests and
//! the MQTT wire tests rely on.

use std::{
    collections::BTreeMap,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    time::Duration,
};

use switchboard::{
    DateTime, Endpoint,
    error::{ErrorCode, HandlerError, RemoteError},
    server::{CallContext, ServerOptions},
};

use crate::everything::{
    Color, EchoCollectionsReply, EchoNestedReply, EchoScalarsError, EchoScalarsReply,
    EchoTimesReply, Everything, Point, Shape, Tree, Unsupported,
};
use crate::jobs::{
    BadInput, CountError, CountFeedback, CountGoal, Jobs, JobsServer, LookupError, NotFound,
    QuotaExceeded,
};

/// What `echoNothing` does before it answers, when a test needs more than an empty reply.
pub type OnNothing =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), RemoteError>> + Send>> + Send + Sync>;

/// The `Everything` handler the tests serve: echoes every argument back; `echoScalars` refuses
/// the text "unsupported"; `echoNothing` runs [`EverythingEcho::on_nothing`] first, if set.
#[derive(Clone, Default)]
pub struct EverythingEcho {
    /// Runs on every `echoNothing` (the Python tests make it emit samples).
    pub on_nothing: Option<OnNothing>,
}

impl std::fmt::Debug for EverythingEcho {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EverythingEcho").field("on_nothing", &self.on_nothing.is_some()).finish()
    }
}

impl Everything for EverythingEcho {
    async fn echo_scalars(
        &self,
        _ctx: &CallContext,
        i8: i8,
        i16: i16,
        i32: i32,
        i64: i64,
        u8: u8,
        u16: u16,
        u32: u32,
        u64: u64,
        plain: i64,
        f32: f32,
        f64: f64,
        flag: bool,
        text: String,
        color: Color,
    ) -> Result<EchoScalarsReply, HandlerError<EchoScalarsError>> {
        if text == "unsupported" {
            return Err(EchoScalarsError::Unsupported(Unsupported {
                reason: "this text is not echoed".into(),
            })
            .into());
        }
        Ok(EchoScalarsReply {
            i8,
            i16,
            i32,
            i64,
            u8,
            u16,
            u32,
            u64,
            plain,
            f32,
            f64,
            flag,
            text,
            color,
        })
    }

    async fn echo_times(
        &self,
        _ctx: &CallContext,
        at: DateTime,
        lasts: switchboard::Duration,
        blob: Vec<u8>,
        maybe_at: Option<DateTime>,
        maybe_lasts: Option<switchboard::Duration>,
        maybe_blob: Option<Vec<u8>>,
        stamps: BTreeMap<String, DateTime>,
        gaps: Vec<Option<switchboard::Duration>>,
    ) -> Result<EchoTimesReply, RemoteError> {
        Ok(EchoTimesReply { at, lasts, blob, maybe_at, maybe_lasts, maybe_blob, stamps, gaps })
    }

    async fn echo_tree(&self, _ctx: &CallContext, tree: Tree) -> Result<Tree, RemoteError> {
        Ok(tree)
    }

    async fn echo_collections(
        &self,
        _ctx: &CallContext,
        numbers: Vec<i32>,
        names: Vec<String>,
        points: Vec<Point>,
        colors: Vec<Color>,
        times: Vec<DateTime>,
        blobs: Vec<Vec<u8>>,
        maybe: Vec<Option<f64>>,
        scores: BTreeMap<String, f64>,
        shapes: BTreeMap<String, Shape>,
    ) -> Result<EchoCollectionsReply, RemoteError> {
        Ok(EchoCollectionsReply {
            numbers,
            names,
            points,
            colors,
            times,
            blobs,
            maybe,
            scores,
            shapes,
        })
    }

    async fn echo_nested(
        &self,
        _ctx: &CallContext,
        shape: Shape,
        maybe_shape: Option<Shape>,
        maybe_text: Option<String>,
        maybe_list: Option<Vec<i64>>,
    ) -> Result<EchoNestedReply, RemoteError> {
        Ok(EchoNestedReply { shape, maybe_shape, maybe_text, maybe_list })
    }

    async fn echo_nothing(&self, _ctx: &CallContext) -> Result<(), RemoteError> {
        match &self.on_nothing {
            Some(on_nothing) => on_nothing().await,
            None => Ok(()),
        }
    }
}

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
        goal: switchboard::action::GoalContext<CountFeedback>,
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
    let serving = JobsServer::serve_with(endpoint, worker, options);
    let server = tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the jobs server starts within 10 s")
        .expect("the jobs server starts");
    let _ = cell.set(server.clone());
    server
}
