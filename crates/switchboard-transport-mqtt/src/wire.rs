//! User property names, return codes and correlation ids: the small print of the wire.

use rumqttc::v5::mqttbytes::v5::PublishProperties;
use switchboard_core::{ErrorCode, RemoteError, error::names};

/// StingerIPC's result code, a decimal string 0–15, on every response.
pub(crate) const RETURN_CODE: &str = "ReturnCode";
/// StingerIPC's human-readable error text.
pub(crate) const DEBUG_INFO: &str = "DebugInfo";
/// StingerIPC's property version, a decimal integer.
pub(crate) const PROPERTY_VERSION: &str = "PropertyVersion";
/// switchboard's stable error name (StingerIPC peers ignore it).
pub(crate) const ERROR_NAME: &str = "ErrorName";
/// switchboard's structured error details as JSON (StingerIPC peers ignore it).
pub(crate) const ERROR_DETAILS: &str = "ErrorDetails";

/// switchboard's sender identity on commands and action requests: the MQTT client id.
pub(crate) const CLIENT_ID: &str = "ClientId";
/// switchboard's goal event kind: `status`, `feedback` or `finished`.
pub(crate) const GOAL_EVENT: &str = "GoalEvent";

/// The first value of user property `name`.
pub(crate) fn user_property<'a>(properties: &'a PublishProperties, name: &str) -> Option<&'a str> {
    properties.user_properties.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A stable 64-bit hash (FNV-1a), used to turn MQTT client ids into peer ids.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The error name used when a reply carries a code but no `ErrorName` (a StingerIPC peer).
pub(crate) fn name_for(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::ClientError => names::APPLICATION,
        ErrorCode::ServerError => names::INTERNAL,
        ErrorCode::TransportError => "TransportError",
        ErrorCode::PayloadError => "PayloadError",
        ErrorCode::ClientSerializationError => "ClientSerializationError",
        ErrorCode::ClientDeserializationError => "ClientDeserializationError",
        ErrorCode::ServerSerializationError => "ServerSerializationError",
        ErrorCode::ServerDeserializationError => names::INVALID_ARGUMENTS,
        ErrorCode::MethodNotFound => names::UNKNOWN_METHOD,
        ErrorCode::Unauthorized => names::ACCESS_DENIED,
        ErrorCode::Timeout => "Timeout",
        ErrorCode::OutOfSync => names::OUT_OF_SYNC,
        ErrorCode::NotImplemented => "NotImplemented",
        ErrorCode::ServiceUnavailable => "ServiceUnavailable",
        _ => "UnknownError",
    }
}

/// Reads a response's outcome: `None` for success (missing or `0`), else the remote error.
/// Codes outside 0–15 and garbage become `UnknownError`.
pub(crate) fn outcome(properties: &PublishProperties) -> Option<RemoteError> {
    let code = match user_property(properties, RETURN_CODE) {
        None => return None,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(0) => return None,
            Ok(code) if code <= 15 => ErrorCode::from_u8(code as u8),
            _ => ErrorCode::UnknownError,
        },
    };
    let name = user_property(properties, ERROR_NAME)
        .filter(|n| !n.is_empty())
        .map_or_else(|| name_for(code).to_owned(), str::to_owned);
    let message = user_property(properties, DEBUG_INFO).unwrap_or_default();
    let mut error = RemoteError::new(code, name, message);
    if let Some(details) = user_property(properties, ERROR_DETAILS)
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
    {
        error = error.with_details(details);
    }
    Some(error)
}

// ---------------------------------------------------------------------------------------------
// Action payloads: the same JSON objects as on the Unix socket (docs/wire/unix.md §5.5).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchboard_core::action::{GoalEvent, GoalId, GoalOutcome, GoalSnapshot, GoalStatus};

/// A JSON payload as a raw value; anything that is not JSON becomes `{}`.
fn raw(payload: &[u8]) -> Box<RawValue> {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|s| serde_json::from_str::<&RawValue>(s).ok())
        .map(|r| r.to_owned())
        .unwrap_or_else(|| {
            RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| RawValue::NULL.to_owned())
        })
}

fn raw_bytes(value: Option<&RawValue>) -> Bytes {
    value.map_or_else(|| Bytes::from_static(b"{}"), |v| Bytes::copy_from_slice(v.get().as_bytes()))
}

/// The payload of a goal, cancel or attach request, and of a feedback event.
#[derive(Serialize)]
struct GoalOut<'a> {
    goal: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    follow: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback: Option<Box<RawValue>>,
}

/// A received goal, cancel or attach request, or a feedback event.
#[derive(Deserialize)]
pub(crate) struct GoalIn<'a> {
    pub(crate) goal: String,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
    #[serde(default)]
    pub(crate) follow: bool,
    #[serde(borrow, default)]
    feedback: Option<&'a RawValue>,
}

impl GoalIn<'_> {
    pub(crate) fn args(&self) -> Bytes {
        raw_bytes(self.args)
    }

    pub(crate) fn feedback(&self) -> Option<Bytes> {
        self.feedback.map(|f| raw_bytes(Some(f)))
    }
}

/// Reads a request or feedback payload.
pub(crate) fn read_goal(payload: &[u8]) -> Result<GoalIn<'_>, String> {
    let goal: GoalIn<'_> =
        serde_json::from_slice(payload).map_err(|e| format!("not a goal object: {e}"))?;
    if goal.goal.is_empty() {
        return Err("the goal id is empty".to_owned());
    }
    Ok(goal)
}

/// `{"goal":…,"args":…}`, `{"goal":…}` or `{"goal":…,"follow":…}`.
pub(crate) fn goal_request(goal: &GoalId, args: Option<&Bytes>, follow: Option<bool>) -> Bytes {
    let out = GoalOut { goal: goal.as_str(), args: args.map(|a| raw(a)), follow, feedback: None };
    Bytes::from(serde_json::to_vec(&out).unwrap_or_default())
}

#[derive(Serialize)]
struct StateOut<'a> {
    goal: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Box<RawValue>>,
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
    goal: String,
    #[serde(default)]
    status: Option<String>,
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

/// The goal state object; also returns the error code of a failed outcome (else 0).
pub(crate) fn goal_state(
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

/// The payload of a failed reply: `{"goal":…,"message":…,"details":…}`.
pub(crate) fn goal_error(goal: &GoalId, error: &RemoteError) -> Bytes {
    let mut out = serde_json::Map::new();
    out.insert("goal".into(), goal.as_str().into());
    out.insert("message".into(), error.message().into());
    if let Some(details) = error.details() {
        out.insert("details".into(), details.clone());
    }
    Bytes::from(serde_json::Value::Object(out).to_string())
}

/// Reads a goal state.
pub(crate) fn read_state(payload: &[u8]) -> Result<(GoalId, GoalSnapshot), String> {
    let state: StateIn<'_> =
        serde_json::from_slice(payload).map_err(|e| format!("unreadable goal state: {e}"))?;
    let name = state.status.unwrap_or_default();
    let status = GoalStatus::parse(&name).ok_or_else(|| format!("unknown goal status `{name}`"))?;
    let outcome = match status {
        GoalStatus::Succeeded => Some(GoalOutcome::Succeeded(raw_bytes(state.result))),
        GoalStatus::Cancelled => Some(GoalOutcome::Cancelled),
        GoalStatus::Failed | GoalStatus::Rejected => {
            let error = match state.error {
                Some(e) => {
                    let code = match e.code {
                        1..=15 => ErrorCode::from_u8(e.code),
                        _ => ErrorCode::UnknownError,
                    };
                    let error = RemoteError::new(code, e.name, e.message);
                    match e.details.filter(|d| !d.is_null()) {
                        Some(details) => error.with_details(details),
                        None => error,
                    }
                }
                None => RemoteError::new(ErrorCode::UnknownError, "UnknownError", ""),
            };
            Some(GoalOutcome::Failed(error))
        }
        _ => None,
    };
    Ok((GoalId::from(state.goal), GoalSnapshot { status, outcome }))
}

/// A goal event's payload and its `GoalEvent` kind (and `ReturnCode` for `finished`).
pub(crate) fn goal_event(goal: &GoalId, event: &GoalEvent) -> (&'static str, Option<u8>, Bytes) {
    match event {
        GoalEvent::Feedback(payload) => {
            let out = GoalOut {
                goal: goal.as_str(),
                args: None,
                follow: None,
                feedback: Some(raw(payload)),
            };
            ("feedback", None, Bytes::from(serde_json::to_vec(&out).unwrap_or_default()))
        }
        GoalEvent::Status(status) => ("status", None, goal_state(goal, *status, None).1),
        GoalEvent::Finished(outcome) => {
            let (code, payload) = goal_state(goal, outcome.status(), Some(outcome));
            ("finished", Some(code), payload)
        }
        _ => ("status", None, goal_state(goal, GoalStatus::Executing, None).1),
    }
}

/// Reads a goal event (a message without correlation data on an event topic).
pub(crate) fn read_event(
    kind: Option<&str>,
    payload: &[u8],
) -> Result<(GoalId, GoalEvent), String> {
    let is_feedback = match kind {
        Some("feedback") => true,
        Some(_) => false,
        None => read_goal(payload).is_ok_and(|g| g.feedback.is_some()),
    };
    if is_feedback {
        let goal = read_goal(payload)?;
        let feedback = goal.feedback().ok_or("a feedback event without `feedback`")?;
        return Ok((GoalId::from(goal.goal), GoalEvent::Feedback(feedback)));
    }
    let (goal, snapshot) = read_state(payload)?;
    Ok(match snapshot.outcome {
        Some(outcome) => (goal, GoalEvent::Finished(outcome)),
        None => (goal, GoalEvent::Status(snapshot.status)),
    })
}

/// Correlation ids: a UUID-format ASCII string whose first four groups are random per
/// connection and whose last group is the request id in hex.
#[derive(Debug, Clone)]
pub(crate) struct Correlator {
    prefix: String,
}

impl Correlator {
    pub(crate) fn new() -> Self {
        let hex = uuid::Uuid::new_v4().simple().to_string();
        // `xxxxxxxx-xxxx-4xxx-8xxx-`: version 4 and the RFC variant, like a real UUID4.
        let prefix = format!("{}-{}-4{}-8{}-", &hex[0..8], &hex[8..12], &hex[12..15], &hex[15..18]);
        Correlator { prefix }
    }

    pub(crate) fn encode(&self, id: u64) -> bytes::Bytes {
        bytes::Bytes::from(format!("{}{:012x}", self.prefix, id & 0xffff_ffff_ffff))
    }

    /// The request id, if the data is one of ours (non-UTF-8 and foreign data give `None`).
    pub(crate) fn decode(&self, data: &[u8]) -> Option<u64> {
        let text = std::str::from_utf8(data).ok()?;
        let hex = text.strip_prefix(&self.prefix)?;
        if hex.len() != 12 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> PublishProperties {
        PublishProperties {
            user_properties: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn return_codes() {
        assert!(outcome(&props(&[])).is_none());
        assert!(outcome(&props(&[("ReturnCode", "0")])).is_none());
        let e =
            outcome(&props(&[("ReturnCode", "1"), ("DebugInfo", "first must be >= 0")])).unwrap();
        assert_eq!(
            (e.code(), e.name(), e.message()),
            (ErrorCode::ClientError, "ApplicationError", "first must be >= 0")
        );
        let e = outcome(&props(&[("ReturnCode", "12"), ("ErrorName", "OutOfSync")])).unwrap();
        assert_eq!(e.code(), ErrorCode::OutOfSync);
        for garbage in ["99", "-1", "x", "", "18446744073709551616"] {
            let e = outcome(&props(&[("ReturnCode", garbage)])).unwrap();
            assert_eq!(e.code(), ErrorCode::UnknownError, "{garbage}");
        }
    }

    #[test]
    fn correlation_ids() {
        let c = Correlator::new();
        let data = c.encode(42);
        assert_eq!(data.len(), 36);
        assert_eq!(&data[14..15], b"4");
        assert_eq!(c.decode(&data), Some(42));
        assert_eq!(c.decode(b"\xff\xfe"), None);
        assert_eq!(Correlator::new().decode(&data), None);
    }
}
