//! commlib-py's action protocol, as a node's action service speaks it: action `X` is the RPCs
//! `X.send_goal`, `X.cancel_goal` and `X.get_result` and the topics `X.status` and
//! `X.feedback`, with commlib-py's JSON bodies and status codes. The core's goal table runs the
//! goals; this module only reads the requests into its messages and writes its answers and
//! events in commlib-py's shapes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchboard_core::{
    GoalStatus, RemoteError,
    action::{GoalId, GoalOutcome, GoalSnapshot},
    message::{ClientMessage, Name, RequestId},
    transport::NODE_ACTION_RPCS,
};

/// What a request on one of a node server's queues asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// An RPC.
    Rpc,
    /// `X.send_goal` of action `X`.
    SendGoal(Name),
    /// `X.cancel_goal`.
    CancelGoal(Name),
    /// `X.get_result`.
    GetResult(Name),
}

/// The RPC names of action `action`: send, cancel, result.
pub(crate) fn rpc_names(action: &str) -> [String; 3] {
    NODE_ACTION_RPCS.map(|rpc| format!("{action}.{rpc}"))
}

/// What `method` is, among `methods`: one of an action's RPCs when all three are served.
pub(crate) fn request_of(method: &str, methods: &[Name]) -> Request {
    let makers: [fn(Name) -> Request; 3] =
        [Request::SendGoal, Request::CancelGoal, Request::GetResult];
    for (rpc, make) in NODE_ACTION_RPCS.iter().zip(makers) {
        let Some(action) = method.strip_suffix(rpc).and_then(|rest| rest.strip_suffix('.')) else {
            continue;
        };
        if rpc_names(action).iter().all(|name| methods.iter().any(|m| m == name)) {
            return make(Name::Owned(action.to_owned()));
        }
    }
    Request::Rpc
}

#[derive(Deserialize)]
struct SendGoalIn<'a> {
    #[serde(borrow, default)]
    goal_data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct GoalIdIn {
    goal_id: String,
}

/// The core's message for a goal request with `payload`, or why it is unreadable.
pub(crate) fn read(
    request: &Request,
    id: RequestId,
    payload: &[u8],
    fresh_goal: impl FnOnce() -> String,
) -> Result<ClientMessage, String> {
    let goal_of = |payload: &[u8]| {
        serde_json::from_slice::<GoalIdIn>(payload)
            .map(|request| GoalId::from(request.goal_id))
            .map_err(|error| format!("a goal request without a readable goal_id: {error}"))
    };
    Ok(match request {
        Request::SendGoal(action) => {
            let request = serde_json::from_slice::<SendGoalIn<'_>>(payload)
                .map_err(|error| format!("an unreadable send_goal request: {error}"))?;
            let payload = request.goal_data.map_or("{}", RawValue::get);
            ClientMessage::SendGoal {
                id,
                action: action.clone(),
                goal: GoalId::from(fresh_goal()),
                payload: Bytes::copy_from_slice(payload.as_bytes()),
            }
        }
        Request::CancelGoal(action) => {
            ClientMessage::CancelGoal { id, action: action.clone(), goal: goal_of(payload)? }
        }
        Request::GetResult(action) => ClientMessage::AttachGoal {
            id,
            action: action.clone(),
            goal: goal_of(payload)?,
            follow: false,
        },
        Request::Rpc => return Err("not a goal request".to_owned()),
    })
}

/// commlib-py's `GoalStatus` number of a status: 1 ACCEPTED, 2 RUNNING, 3 CANCELING,
/// 4 SUCCEDED, 5 ABORTED, 6 CANCELED (0 for a goal that was refused).
pub(crate) fn status_code(status: GoalStatus) -> u8 {
    match status {
        GoalStatus::Accepted => 1,
        GoalStatus::Executing => 2,
        GoalStatus::Canceling => 3,
        GoalStatus::Succeeded => 4,
        GoalStatus::Failed => 5,
        GoalStatus::Cancelled => 6,
        _ => 0,
    }
}

#[derive(Serialize)]
struct SendGoalOut<'a> {
    status: u8,
    timestamp: i64,
    goal_id: &'a str,
    error: &'a str,
}

#[derive(Serialize)]
struct ResultOut<'a> {
    status: u8,
    timestamp: i64,
    result: &'a RawValue,
    error: &'a str,
}

#[derive(Serialize)]
struct StatusOut<'a> {
    goal_id: &'a str,
    status: u8,
}

#[derive(Serialize)]
struct FeedbackOut<'a> {
    feedback_data: &'a RawValue,
    goal_id: &'a str,
}

fn json(value: &impl Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// Borrows `payload` as JSON, or `{}` when it is not.
fn raw(payload: &[u8]) -> &RawValue {
    serde_json::from_slice(payload).unwrap_or_else(|_| empty())
}

fn empty() -> &'static RawValue {
    serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("`{{}}` is JSON"))
}

/// The answer to a goal request (`request`) in commlib-py's shape, from the core's answer.
pub(crate) fn answer(
    request: &Request,
    goal: &GoalId,
    result: &Result<GoalSnapshot, RemoteError>,
) -> Bytes {
    let error = result.as_ref().err().map_or("", RemoteError::message);
    match (request, result) {
        (Request::SendGoal(_), Ok(_)) => {
            json(&SendGoalOut { status: 1, timestamp: -1, goal_id: goal.as_str(), error })
        }
        (Request::SendGoal(_), Err(_)) => {
            json(&SendGoalOut { status: 0, timestamp: -1, goal_id: "", error })
        }
        (Request::CancelGoal(_), _) => {
            let cancelled = result.as_ref().is_ok_and(|snapshot| {
                matches!(snapshot.status, GoalStatus::Canceling | GoalStatus::Cancelled)
            });
            json(&ResultOut { status: u8::from(cancelled), timestamp: -1, result: empty(), error })
        }
        (_, Ok(snapshot)) => {
            let (result, error) = match &snapshot.outcome {
                Some(GoalOutcome::Succeeded(payload)) => (raw(payload), ""),
                Some(GoalOutcome::Failed(failure)) => (empty(), failure.message()),
                _ => (empty(), ""),
            };
            json(&ResultOut { status: status_code(snapshot.status), timestamp: -1, result, error })
        }
        (_, Err(_)) => json(&ResultOut { status: 0, timestamp: -1, result: empty(), error }),
    }
}

/// A status message for `X.status`.
pub(crate) fn status(goal: &GoalId, status: GoalStatus) -> Bytes {
    json(&StatusOut { goal_id: goal.as_str(), status: status_code(status) })
}

/// A feedback message for `X.feedback`.
pub(crate) fn feedback(goal: &GoalId, payload: &[u8]) -> Bytes {
    json(&FeedbackOut { feedback_data: raw(payload), goal_id: goal.as_str() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_in_commlibs_shapes() {
        let methods: Vec<Name> =
            rpc_names("robot.move").into_iter().map(Name::Owned).chain([Name::from("x")]).collect();
        let send = request_of("robot.move.send_goal", &methods);
        assert_eq!(send, Request::SendGoal("robot.move".into()));
        assert_eq!(request_of("x", &methods), Request::Rpc);
        assert_eq!(request_of("other.send_goal", &methods), Request::Rpc);

        let body = br#"{"description":"","goal_data":{"target_cm":3}}"#;
        let message = read(&send, 7, body, || "g1".to_owned()).unwrap();
        assert!(matches!(message, ClientMessage::SendGoal { id: 7, ref goal, ref payload, .. }
            if goal.as_str() == "g1" && &payload[..] == br#"{"target_cm":3}"#));
        let get = Request::GetResult("robot.move".into());
        let message = read(&get, 8, br#"{"goal_id":"g1"}"#, String::new).unwrap();
        assert!(matches!(message, ClientMessage::AttachGoal { follow: false, .. }));
        assert!(read(&get, 9, b"{}", String::new).is_err());

        let goal = GoalId::from("g1");
        let accepted = Ok(GoalSnapshot::running(GoalStatus::Accepted));
        assert_eq!(
            &answer(&send, &goal, &accepted)[..],
            br#"{"status":1,"timestamp":-1,"goal_id":"g1","error":""}"#
        );
        let done = Ok(GoalSnapshot {
            status: GoalStatus::Succeeded,
            outcome: Some(GoalOutcome::Succeeded(Bytes::from_static(br#"{"dest_cm":3}"#))),
        });
        assert_eq!(
            &answer(&get, &goal, &done)[..],
            br#"{"status":4,"timestamp":-1,"result":{"dest_cm":3},"error":""}"#
        );
        assert_eq!(&status(&goal, GoalStatus::Executing)[..], br#"{"goal_id":"g1","status":2}"#);
        assert_eq!(
            &feedback(&goal, br#"{"current_cm":1}"#)[..],
            br#"{"feedback_data":{"current_cm":1},"goal_id":"g1"}"#
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The client side: a node's action client, in front of commlib-py's (or a node's) service.

/// The body of a `send_goal` request for the goal `payload`.
pub(crate) fn send_goal_request(payload: &[u8]) -> Bytes {
    #[derive(Serialize)]
    struct Out<'a> {
        description: &'a str,
        goal_data: &'a RawValue,
    }
    json(&Out { description: "", goal_data: raw(payload) })
}

/// The body of a `cancel_goal` or `get_result` request for the server's goal `goal`.
pub(crate) fn goal_request(goal: &str) -> Bytes {
    #[derive(Serialize)]
    struct Out<'a> {
        goal_id: &'a str,
    }
    json(&Out { goal_id: goal })
}

/// An answer to a goal request, as any of the three RPCs gives it.
#[derive(Deserialize)]
pub(crate) struct Answer {
    #[serde(default)]
    pub(crate) status: i64,
    #[serde(default)]
    pub(crate) goal_id: String,
    #[serde(default)]
    pub(crate) error: String,
    #[serde(default)]
    result: Option<Box<RawValue>>,
}

/// Reads an answer.
pub(crate) fn read_answer(payload: &[u8]) -> Result<Answer, String> {
    serde_json::from_slice(payload).map_err(|error| format!("an unreadable goal answer: {error}"))
}

/// The status a commlib-py number stands for; `None` for one it does not define.
pub(crate) fn status_of(code: i64) -> Option<GoalStatus> {
    Some(match code {
        1 => GoalStatus::Accepted,
        2 => GoalStatus::Executing,
        3 => GoalStatus::Canceling,
        4 => GoalStatus::Succeeded,
        5 => GoalStatus::Failed,
        6 => GoalStatus::Cancelled,
        _ => return None,
    })
}

/// The outcome an ended goal's `get_result` answer says.
pub(crate) fn outcome(answer: &Answer) -> Option<GoalOutcome> {
    Some(match status_of(answer.status)? {
        GoalStatus::Succeeded => {
            let result = answer.result.as_deref().map_or("{}", RawValue::get);
            GoalOutcome::Succeeded(Bytes::copy_from_slice(result.as_bytes()))
        }
        GoalStatus::Cancelled => GoalOutcome::Cancelled,
        GoalStatus::Failed => {
            let message =
                if answer.error.is_empty() { "the goal was aborted" } else { &answer.error };
            GoalOutcome::Failed(RemoteError::new(
                switchboard_core::ErrorCode::ServerError,
                "Aborted",
                message,
            ))
        }
        _ => return None,
    })
}

/// The goal's state a `get_result` answer says.
pub(crate) fn snapshot(answer: &Answer) -> Result<GoalSnapshot, String> {
    let status = status_of(answer.status)
        .ok_or_else(|| format!("goal status {} is none of commlib-py's", answer.status))?;
    Ok(GoalSnapshot { status, outcome: outcome(answer) })
}

/// A message on an action's `status` topic: the server's goal id and the status number.
pub(crate) fn read_status(payload: &[u8]) -> Option<(String, i64)> {
    #[derive(Deserialize)]
    struct In {
        goal_id: String,
        status: i64,
    }
    serde_json::from_slice::<In>(payload).ok().map(|m| (m.goal_id, m.status))
}

/// A message on an action's `feedback` topic: the server's goal id and the feedback.
pub(crate) fn read_feedback(payload: &[u8]) -> Option<(String, Bytes)> {
    #[derive(Deserialize)]
    struct In<'a> {
        goal_id: String,
        #[serde(borrow)]
        feedback_data: &'a RawValue,
    }
    let message = serde_json::from_slice::<In<'_>>(payload).ok()?;
    Some((message.goal_id, Bytes::copy_from_slice(message.feedback_data.get().as_bytes())))
}
