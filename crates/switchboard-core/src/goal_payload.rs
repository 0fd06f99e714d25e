//! The JSON bodies of goal messages, which every transport carries the same way: goal, cancel and
//! attach requests, feedback, goal states and goal errors (docs/wire/unix.md §5.5).
//!
//! They live here so that each transport frames them its own way but no transport spells the
//! objects out again.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    action::{GoalEvent, GoalId, GoalOutcome, GoalSnapshot, GoalStatus},
    error::{ErrorCode, RemoteError},
};

/// The `{}` that stands in for a payload that is not JSON.
const EMPTY_OBJECT: &str = "{}";

/// A payload as a raw JSON value; anything that is not JSON becomes `{}`.
fn raw(payload: &[u8]) -> &RawValue {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|s| serde_json::from_str::<&RawValue>(s).ok())
        // `{}` is a valid literal, so its own fallback to `null` is never taken.
        .unwrap_or_else(|| {
            serde_json::from_str::<&RawValue>(EMPTY_OBJECT).unwrap_or(RawValue::NULL)
        })
}

/// A value decoded from `payload`, as a view of `payload`'s own bytes rather than a copy;
/// `{}` when absent.
pub(crate) fn raw_bytes(payload: &Bytes, value: Option<&RawValue>) -> Bytes {
    let Some(value) = value else {
        return Bytes::from_static(EMPTY_OBJECT.as_bytes());
    };
    let part = value.get().as_bytes();
    let (whole, within) = (payload.as_ptr_range(), part.as_ptr_range());
    if whole.start <= within.start && within.end <= whole.end {
        payload.slice_ref(part)
    } else {
        Bytes::copy_from_slice(part)
    }
}

/// The payload of a goal, cancel or attach request, and of a feedback event.
#[derive(Serialize)]
struct GoalOut<'a> {
    goal: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    follow: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct GoalIn<'a> {
    #[serde(borrow)]
    goal: Cow<'a, str>,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
    #[serde(default)]
    follow: bool,
    #[serde(borrow, default)]
    feedback: Option<&'a RawValue>,
}

/// A decoded goal, cancel or attach request, or feedback event.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalRequest {
    /// The goal's id.
    pub goal: GoalId,
    /// The goal's arguments (`{}` when absent).
    pub args: Bytes,
    /// For an attach: whether to keep receiving the goal's events.
    pub follow: bool,
    /// For a feedback event: the feedback values.
    pub feedback: Option<Bytes>,
}

/// `{"goal":…,"args":…}`, `{"goal":…}` or `{"goal":…,"follow":…}`.
pub fn encode_request(goal: &GoalId, args: Option<&Bytes>, follow: Option<bool>) -> Bytes {
    encode_goal_out(&GoalOut {
        goal: goal.as_str(),
        args: args.map(|a| raw(a)),
        follow,
        feedback: None,
    })
}

/// `{"goal":…,"feedback":…}`.
///
/// Feedback is the JSON the codec made of the handler's value, so it goes in as it is, unlike
/// a request's arguments, which are checked. This is the one goal message sent many times a
/// second.
pub fn encode_feedback(goal: &GoalId, feedback: &Bytes) -> Bytes {
    debug_assert!(
        serde_json::from_slice::<serde::de::IgnoredAny>(feedback).is_ok(),
        "feedback must be JSON"
    );
    let mut out = Vec::with_capacity(goal.as_str().len() + feedback.len() + 24);
    out.extend_from_slice(br#"{"goal":"#);
    if serde_json::to_writer(&mut out, goal.as_str()).is_err() {
        // Writing a string into a Vec cannot fail.
        return Bytes::new();
    }
    out.extend_from_slice(br#","feedback":"#);
    out.extend_from_slice(feedback);
    out.push(b'}');
    Bytes::from(out)
}

fn encode_goal_out(out: &GoalOut<'_>) -> Bytes {
    Bytes::from(serde_json::to_vec(out).unwrap_or_default())
}

/// The longest goal id accepted, in bytes.
pub const MAX_GOAL_ID_LEN: usize = 128;

/// Checks a goal id received from a peer: 1 to [`MAX_GOAL_ID_LEN`] bytes, each an ASCII letter,
/// digit, `-`, `_`, `.` or `:`. A UUID in its usual text form passes. The server keeps goal ids
/// for a while after their goals end, so an id of any size or bytes would let a peer make it
/// hold what it likes.
pub fn check_goal_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the goal id is empty".to_owned());
    }
    if id.len() > MAX_GOAL_ID_LEN {
        return Err(format!(
            "the goal id is {} bytes long; at most {MAX_GOAL_ID_LEN} are allowed",
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c))) {
        return Err(format!(
            "the goal id contains {c:?}; only ASCII letters, digits, `-`, `_`, `.` and `:` are allowed"
        ));
    }
    Ok(())
}

/// Reads a goal, cancel or attach request, or a feedback event. The arguments and feedback are
/// views of `payload`, not copies. The goal id must pass [`check_goal_id`].
pub fn decode_request(payload: &Bytes) -> Result<GoalRequest, String> {
    let goal: GoalIn<'_> =
        serde_json::from_slice(payload).map_err(|e| format!("not a goal object: {e}"))?;
    check_goal_id(&goal.goal)?;
    Ok(GoalRequest {
        args: raw_bytes(payload, goal.args),
        follow: goal.follow,
        feedback: goal.feedback.map(|f| raw_bytes(payload, Some(f))),
        goal: GoalId::from(&*goal.goal),
    })
}

/// A goal's state: the payload of an accepted reply, a status event and a finished event.
#[derive(Serialize)]
struct StateOut<'a> {
    goal: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<GoalErrorOut<'a>>,
}

#[derive(Serialize)]
struct GoalErrorOut<'a> {
    name: &'a str,
    code: u8,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
}

#[derive(Deserialize)]
struct StateIn<'a> {
    #[serde(borrow)]
    goal: Cow<'a, str>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<GoalErrorIn>,
}

#[derive(Deserialize)]
struct GoalErrorIn {
    name: String,
    #[serde(default)]
    code: u8,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<serde_json::Value>,
}

/// Encodes a goal state; also returns the error code of a failed outcome (else 0), which
/// transports put in their own status field.
pub fn encode_state(
    goal: &GoalId,
    status: GoalStatus,
    outcome: Option<&GoalOutcome>,
) -> (u8, Bytes) {
    let mut code = 0;
    let mut state =
        StateOut { goal: goal.as_str(), status: status.as_str(), result: None, error: None };
    match outcome {
        Some(GoalOutcome::Succeeded(payload)) => state.result = Some(raw(payload)),
        Some(GoalOutcome::Failed(error)) => {
            code = error.code().as_u8();
            state.error = Some(GoalErrorOut {
                name: error.name(),
                code,
                message: error.message(),
                details: error.details(),
            });
        }
        _ => {}
    }
    (code, Bytes::from(serde_json::to_vec(&state).unwrap_or_default()))
}

/// Reads a goal state; the status must be known. A result is a view of `payload`, not a copy.
pub fn decode_state(payload: &Bytes) -> Result<(GoalId, GoalSnapshot), String> {
    let state: StateIn<'_> =
        serde_json::from_slice(payload).map_err(|e| format!("unreadable goal state: {e}"))?;
    let name = state.status.unwrap_or_default();
    let status = GoalStatus::parse(&name).ok_or_else(|| format!("unknown goal status `{name}`"))?;
    let outcome = match status {
        GoalStatus::Succeeded => Some(GoalOutcome::Succeeded(raw_bytes(payload, state.result))),
        GoalStatus::Cancelled => Some(GoalOutcome::Cancelled),
        GoalStatus::Failed | GoalStatus::Rejected => Some(GoalOutcome::Failed(match state.error {
            Some(e) => remote_error(e.code, e.name, e.message, e.details),
            None => RemoteError::new(ErrorCode::UnknownError, "UnknownError", ""),
        })),
        _ => None,
    };
    Ok((GoalId::from(&*state.goal), GoalSnapshot { status, outcome }))
}

/// A goal event's payload, its kind (`feedback`, `status` or `finished`, which transports carry
/// beside the payload) and, for `finished`, the code of its outcome (0 unless it failed).
pub fn encode_event(goal: &GoalId, event: &GoalEvent) -> (&'static str, Option<u8>, Bytes) {
    match event {
        GoalEvent::Feedback(payload) => (FEEDBACK, None, encode_feedback(goal, payload)),
        GoalEvent::Status(status) => (STATUS, None, encode_state(goal, *status, None).1),
        GoalEvent::Finished(outcome) => {
            let (code, payload) = encode_state(goal, outcome.status(), Some(outcome));
            (FINISHED, Some(code), payload)
        }
    }
}

/// Reads a goal event given the kind carried beside it: `feedback`, or else a state; with no
/// kind, a payload with `feedback` is feedback.
pub fn decode_event(kind: Option<&str>, payload: &Bytes) -> Result<(GoalId, GoalEvent), String> {
    let is_feedback = match kind {
        Some(kind) => kind == FEEDBACK,
        None => decode_request(payload).is_ok_and(|g| g.feedback.is_some()),
    };
    if is_feedback {
        let request = decode_request(payload)?;
        let feedback = request.feedback.ok_or("a feedback event without `feedback`")?;
        return Ok((request.goal, GoalEvent::Feedback(feedback)));
    }
    let (goal, snapshot) = decode_state(payload)?;
    Ok(match snapshot.outcome {
        Some(outcome) => (goal, GoalEvent::Finished(outcome)),
        None => (goal, GoalEvent::Status(snapshot.status)),
    })
}

/// The kind of a feedback event.
pub const FEEDBACK: &str = "feedback";
/// The kind of a status change.
pub const STATUS: &str = "status";
/// The kind of a goal's end.
pub const FINISHED: &str = "finished";

#[derive(Serialize)]
struct ErrorOut<'a> {
    goal: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorIn {
    goal: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<serde_json::Value>,
}

/// The payload of a refused goal, cancel or attach request: `{"goal":…,"message":…,"details":…}`.
/// The error's name and code travel in the transport's own fields.
pub fn encode_error(goal: &GoalId, error: &RemoteError) -> Bytes {
    let out = ErrorOut { goal: goal.as_str(), message: error.message(), details: error.details() };
    Bytes::from(serde_json::to_vec(&out).unwrap_or_default())
}

/// Reads a refused request's payload into the error it carries, given the name and code the
/// transport carried alongside.
pub fn decode_error(
    payload: &[u8],
    code: u8,
    name: String,
) -> Result<(GoalId, RemoteError), String> {
    let error: ErrorIn =
        serde_json::from_slice(payload).map_err(|e| format!("unreadable goal error: {e}"))?;
    Ok((GoalId::from(error.goal), remote_error(code, name, error.message, error.details)))
}

/// A remote error from wire fields; codes outside 1–15 become `UnknownError`, `null` details none.
fn remote_error(
    code: u8,
    name: String,
    message: String,
    details: Option<serde_json::Value>,
) -> RemoteError {
    let error = RemoteError::new(ErrorCode::from_u8(code), name, message);
    match details.filter(|d| !d.is_null()) {
        Some(details) => error.with_details(details),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15, defect 4: goal ids are bounded and plain, so a peer cannot make the server keep
    /// megabytes of id, or ids that need escaping, for a goal's retention.
    #[test]
    fn goal_ids_are_checked() {
        let uuid = "0b8c6f7e-4a4f-4a8e-9d2b-2f7f1c1f0a11";
        for good in [uuid, "g", "goal-a", "job_7.retry:2", &"a".repeat(MAX_GOAL_ID_LEN)] {
            check_goal_id(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            let request = encode_request(&GoalId::from(good), None, None);
            assert_eq!(decode_request(&request).unwrap().goal.as_str(), good);
        }
        let long = "a".repeat(MAX_GOAL_ID_LEN + 1);
        for bad in ["", long.as_str(), "a b", "a\"b", "a/b", "a\u{0}b", "é", "a\nb"] {
            assert!(check_goal_id(bad).is_err(), "{bad:?} passed");
            let request = encode_request(&GoalId::from(bad), None, None);
            assert!(decode_request(&request).is_err(), "{bad:?} decoded");
        }
        let huge = "a".repeat(16 * 1024 * 1024);
        let error =
            decode_request(&encode_request(&GoalId::from(huge.as_str()), None, None)).unwrap_err();
        assert!(error.contains("at most 128"), "{error}");
    }

    #[test]
    fn requests_and_feedback_round_trip() {
        let goal = GoalId::from("0b8c6f7e-4a4f-4a8e-9d2b-2f7f1c1f0a11".to_owned());
        let args = Bytes::from_static(br#"{"to":2}"#);
        let encoded = encode_request(&goal, Some(&args), None);
        assert_eq!(
            &encoded[..],
            br#"{"goal":"0b8c6f7e-4a4f-4a8e-9d2b-2f7f1c1f0a11","args":{"to":2}}"#
        );
        let decoded = decode_request(&encoded).unwrap();
        assert_eq!((&decoded.goal, &decoded.args, decoded.follow), (&goal, &args, false));
        let attach = decode_request(&encode_request(&goal, None, Some(true))).unwrap();
        assert!(attach.follow);
        assert_eq!(&attach.args[..], b"{}");
        let feedback =
            decode_request(&encode_feedback(&goal, &Bytes::from_static(br#"{"value":1}"#)))
                .unwrap();
        assert_eq!(feedback.feedback.as_deref(), Some(&br#"{"value":1}"#[..]));
        // Arguments and feedback are views of the frame, not copies.
        let within = |part: &Bytes, whole: &Bytes| {
            let (part, whole) = (part.as_ptr_range(), whole.as_ptr_range());
            whole.start <= part.start && part.end <= whole.end
        };
        assert!(within(&decoded.args, &encoded));
        let frame = encode_feedback(&goal, &Bytes::from_static(br#"{"value":2}"#));
        assert!(within(&decode_request(&frame).unwrap().feedback.unwrap(), &frame));
        // A goal id that needs escaping is escaped.
        let odd = GoalId::from("a\"b");
        let frame = encode_feedback(&odd, &Bytes::from_static(br#"{"value":3}"#));
        assert_eq!(&frame[..], br#"{"goal":"a\"b","feedback":{"value":3}}"#);
        // … and refused on the way in (issue 15, defect 4).
        assert!(decode_request(&frame).unwrap_err().contains("'\"'"));
        assert!(decode_request(&Bytes::from_static(br#"{"goal":""}"#)).is_err());
        assert!(decode_request(&Bytes::from_static(b"not json")).is_err());
    }

    #[test]
    fn events_round_trip_with_their_kind() {
        let goal = GoalId::from("g");
        for event in [
            GoalEvent::Feedback(Bytes::from_static(br#"{"value":1}"#)),
            GoalEvent::Status(GoalStatus::Canceling),
            GoalEvent::Finished(GoalOutcome::Failed(RemoteError::client_error("no"))),
        ] {
            let (kind, code, payload) = encode_event(&goal, &event);
            assert_eq!(code.is_some(), kind == FINISHED, "{kind}");
            assert_eq!(decode_event(Some(kind), &payload), Ok((goal.clone(), event.clone())));
            assert_eq!(decode_event(None, &payload), Ok((goal.clone(), event)), "kind guessed");
        }
        let (_, payload) = encode_state(&goal, GoalStatus::Executing, None);
        assert!(decode_event(Some(FEEDBACK), &payload).is_err(), "a state is not feedback");
    }

    #[test]
    fn states_and_errors_round_trip() {
        let goal = GoalId::from("g".to_owned());
        let failure = RemoteError::new(ErrorCode::ClientError, "BadInput", "no")
            .with_details(serde_json::json!({"field": "to"}));
        for (status, outcome) in [
            (GoalStatus::Executing, None),
            (
                GoalStatus::Succeeded,
                Some(GoalOutcome::Succeeded(Bytes::from_static(br#"{"total":2}"#))),
            ),
            (GoalStatus::Cancelled, Some(GoalOutcome::Cancelled)),
            (GoalStatus::Failed, Some(GoalOutcome::Failed(failure.clone()))),
        ] {
            let (code, payload) = encode_state(&goal, status, outcome.as_ref());
            assert_eq!(code, if status == GoalStatus::Failed { 1 } else { 0 });
            let (decoded_goal, snapshot) = decode_state(&payload).unwrap();
            assert_eq!(
                (decoded_goal, snapshot.status, snapshot.outcome),
                (goal.clone(), status, outcome)
            );
        }
        assert!(decode_state(&Bytes::from_static(br#"{"goal":"g","status":"paused"}"#)).is_err());
        // Escaped text cannot be borrowed from the payload; it decodes all the same.
        let (escaped, snapshot) =
            decode_state(&Bytes::from_static(br#"{"goal":"a\"b","status":"execut\u0069ng"}"#))
                .unwrap();
        assert_eq!((escaped.as_str(), snapshot.status), ("a\"b", GoalStatus::Executing));

        let payload = encode_error(&goal, &failure);
        let (decoded_goal, error) = decode_error(&payload, 1, "BadInput".to_owned()).unwrap();
        assert_eq!((decoded_goal, error), (goal, failure));
    }
}
