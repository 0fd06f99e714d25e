//! The goals started through the gateway: a task per goal follows it (feedback, cancel, end)
//! and keeps its state for `GET`, and its events for the streams that follow it.
//!
//! At most [`MAX_GOALS`] are remembered; the oldest ended ones make room for new ones, and a
//! gateway with that many goals still running refuses more (503).

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use switchboard_core::{GoalError, GoalHandle};
use tokio::sync::{Notify, broadcast, watch};

use super::{error::ApiError, state::ServiceKey};
use crate::command::remote;

/// The most goals remembered at once.
pub(crate) const MAX_GOALS: usize = 1024;
/// How long a cancelled goal may take to end before it counts as cancelled anyway.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// How many events a slow follower may fall behind before it is told it missed some.
const EVENT_BUFFER: usize = 256;

/// One event of a goal, as a stream sends it.
#[derive(Debug, Clone)]
pub(crate) enum GoalEvent {
    /// A feedback value.
    Feedback(Value),
    /// The goal's final state.
    End(Value),
}

/// One goal.
#[derive(Debug)]
pub(crate) struct Goal {
    /// The goal's id.
    pub(crate) id: String,
    /// The service it runs on.
    pub(crate) service: ServiceKey,
    /// The action.
    pub(crate) action: String,
    /// When it started, in the order of this gateway (to evict the oldest first).
    order: u64,
    /// The state `GET` returns.
    state: Mutex<Value>,
    /// Feedback and the end, for followers.
    events: broadcast::Sender<GoalEvent>,
    /// Whether it ended.
    ended: watch::Sender<bool>,
    /// Asks the goal's task to cancel it.
    cancel: Notify,
}

impl Goal {
    /// The state: `goal`, `action`, `status`, the latest `feedback`, and `result` or `error`.
    pub(crate) fn state(&self) -> Value {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn is_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// The events from now on, and the state as it is (subscribed first, so nothing between
    /// the two is lost).
    pub(crate) fn follow(&self) -> (broadcast::Receiver<GoalEvent>, Value) {
        let events = self.events.subscribe();
        (events, self.state())
    }

    fn feedback(&self, feedback: Value) {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state["status"] = json!("running");
            state["feedback"] = feedback.clone();
        }
        let _ = self.events.send(GoalEvent::Feedback(feedback));
    }

    fn end(&self, end: Value) {
        let state = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let (Value::Object(state), Value::Object(end)) = (&mut *state, end) {
                state.extend(end);
            }
            state.clone()
        };
        self.ended.send_replace(true);
        let _ = self.events.send(GoalEvent::End(state));
    }

    /// Asks the goal to cancel and waits (a few seconds at most) for it to end; its state then.
    pub(crate) async fn cancel(&self) -> Value {
        let mut ended = self.ended.subscribe();
        if !*ended.borrow_and_update() {
            self.cancel.notify_one();
            let _ = tokio::time::timeout(CANCEL_GRACE + Duration::from_secs(1), async {
                while !*ended.borrow_and_update() {
                    if ended.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await;
        }
        self.state()
    }
}

/// The goals the gateway started, by id.
#[derive(Debug, Default)]
pub(crate) struct Goals {
    goals: Mutex<HashMap<String, Arc<Goal>>>,
    started: AtomicU64,
}

impl Goals {
    /// Remembers a goal that was just accepted and starts following it.
    pub(crate) fn start(
        &self,
        service: ServiceKey,
        action: &str,
        mut handle: GoalHandle<Value, Value, Infallible>,
    ) -> Result<Arc<Goal>, ApiError> {
        let id = handle.id().as_str().to_owned();
        let state = json!({ "goal": id, "action": action, "status": "accepted", "feedback": null });
        let goal = Arc::new(Goal {
            id: id.clone(),
            service,
            action: action.to_owned(),
            order: self.started.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(state),
            events: broadcast::channel(EVENT_BUFFER).0,
            ended: watch::channel(false).0,
            cancel: Notify::new(),
        });
        {
            let mut goals = self.goals.lock().unwrap_or_else(PoisonError::into_inner);
            if goals.len() >= MAX_GOALS {
                let oldest_ended =
                    goals.values().filter(|g| g.is_ended()).min_by_key(|g| g.order).cloned();
                match oldest_ended {
                    Some(old) => {
                        goals.remove(&old.id);
                    }
                    None => {
                        let cancel = Arc::new(handle);
                        tokio::spawn(async move {
                            let _ = cancel.cancel().await;
                        });
                        return Err(ApiError::unavailable(format!(
                            "{MAX_GOALS} goals started through the gateway are still running"
                        )));
                    }
                }
            }
            goals.insert(id, goal.clone());
        }
        let following = goal.clone();
        tokio::spawn(async move {
            let goal = following;
            let mut cancelled = false;
            loop {
                tokio::select! {
                    feedback = handle.next_feedback() => match feedback {
                        Some(feedback) => goal.feedback(feedback),
                        None => break,
                    },
                    () = goal.cancel.notified() => {
                        cancelled = true;
                        let _ = handle.cancel().await;
                        break;
                    }
                }
            }
            let result = if cancelled {
                match tokio::time::timeout(CANCEL_GRACE, handle.result()).await {
                    Ok(result) => result,
                    Err(_) => Err(GoalError::Cancelled),
                }
            } else {
                handle.result().await
            };
            let (end, _) = remote::goal_end(result, cancelled);
            goal.end(end);
        });
        Ok(goal)
    }

    /// The goal `id` of `action` on `service`.
    pub(crate) fn get(&self, service: &ServiceKey, action: &str, id: &str) -> Option<Arc<Goal>> {
        let goals = self.goals.lock().unwrap_or_else(PoisonError::into_inner);
        goals.get(id).filter(|g| &g.service == service && g.action == action).cloned()
    }
}
