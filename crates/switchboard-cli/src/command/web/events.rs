//! Server-sent event streams: signals and property changes (through the same subscriptions as
//! `switchboard watch`), and a goal's feedback and end. Each open stream holds one of the
//! gateway's stream permits until the client goes.

use std::{convert::Infallible, sync::Arc};

use axum::response::{
    IntoResponse, Response,
    sse::{Event, KeepAlive, Sse},
};
use futures_util::{Stream, stream};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, broadcast};

use super::{
    error::ApiError,
    goals::{Goal, GoalEvent},
    state::Gateway,
};
use crate::{
    command::remote::{self, WatchEvent},
    session::Session,
};

/// A response streaming server-sent events.
pub(crate) type EventStream = Response;

/// One event named `kind` whose data is `data` as JSON.
fn event(kind: &str, data: &Value) -> Event {
    Event::default().event(kind).data(data.to_string())
}

/// A permit for one more stream, or 503.
fn permit(gateway: &Gateway) -> Result<OwnedSemaphorePermit, ApiError> {
    gateway.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::unavailable(format!(
            "{} event streams are open already; close one first",
            gateway.max_streams
        ))
    })
}

fn sse(stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> EventStream {
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Streams `names` (every signal and property when empty): `signal`, `property` and `warning`
/// events, until the client goes or the connection to the service ends.
pub(crate) async fn members(
    gateway: &Gateway,
    session: &Session,
    names: &[String],
) -> Result<EventStream, ApiError> {
    let permit = permit(gateway)?;
    let (_, events) = remote::start_watch(session, names).await?;
    let stream = stream::unfold((events, permit), |(mut events, permit)| async move {
        let next = events.recv().await?;
        let kind = match &next {
            WatchEvent::Signal { .. } => "signal",
            WatchEvent::Property { .. } => "property",
            WatchEvent::Problem(_) => "warning",
        };
        Some((Ok(event(kind, &next.to_json())), (events, permit)))
    });
    Ok(sse(stream))
}

/// Streams a goal: `feedback` events, then one `end` event with its final state.
pub(crate) fn goal(gateway: &Gateway, goal: Arc<Goal>) -> Result<EventStream, ApiError> {
    let permit = permit(gateway)?;
    let (events, state) = goal.follow();
    let first = if state["status"] == "accepted" || state["status"] == "running" {
        None
    } else {
        Some(state)
    };
    // (events, the end already known, whether the end was sent, the permit)
    let stream = stream::unfold(
        (events, first, false, permit),
        |(mut events, first, done, permit)| async move {
            if done {
                return None;
            }
            if let Some(end) = first {
                return Some((Ok(event("end", &end)), (events, None, true, permit)));
            }
            match events.recv().await {
                Ok(GoalEvent::Feedback(feedback)) => {
                    let data = json!({ "feedback": feedback });
                    Some((Ok(event("feedback", &data)), (events, None, false, permit)))
                }
                Ok(GoalEvent::End(end)) => {
                    Some((Ok(event("end", &end)), (events, None, true, permit)))
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let data = json!({ "warning": format!("missed {missed} feedback events") });
                    Some((Ok(event("warning", &data)), (events, None, false, permit)))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        },
    );
    Ok(sse(stream))
}
