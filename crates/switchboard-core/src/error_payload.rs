//! The JSON bodies that carry an error: `{"message","details"}` for a refused call, and
//! `{"error","message","details","value"}` for a refused property update, which also carries the
//! property's current value.
//!
//! A transport puts the error's code and name in fields of its own (a frame header, message
//! headers) and the rest in these bodies, so no transport spells the objects out again.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    error::{ErrorCode, RemoteError},
    goal_payload::raw_bytes,
};

#[derive(Serialize)]
struct ErrorOut<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorIn {
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct PropertyErrorOut<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PropertyErrorIn<'a> {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<serde_json::Value>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
}

/// `{"message":…,"details":…}`: the body of a refused call.
pub fn encode(error: &RemoteError) -> Bytes {
    let out = ErrorOut { message: error.message(), details: error.details() };
    Bytes::from(serde_json::to_vec(&out).unwrap_or_default())
}

/// The error a refused call's body describes, given the code and name carried beside it.
/// A body that is not such an object gives an error with an empty message: the name and code
/// still say what happened.
pub fn decode(code: ErrorCode, name: impl Into<String>, body: &[u8]) -> RemoteError {
    let received = serde_json::from_slice::<ErrorIn>(body)
        .unwrap_or(ErrorIn { message: String::new(), details: None });
    with_details(RemoteError::new(code, name, received.message), received.details)
}

/// `{"error":…,"message":…,"details":…,"value":…}`: the body of a refused property update,
/// with the property's current value (`null` if `value` is not JSON).
pub fn encode_property(error: &RemoteError, value: &[u8]) -> Bytes {
    let value = std::str::from_utf8(value).ok().and_then(|s| serde_json::from_str(s).ok());
    let out = PropertyErrorOut {
        error: error.name(),
        message: error.message(),
        details: error.details(),
        value,
    };
    Bytes::from(serde_json::to_vec(&out).unwrap_or_default())
}

/// The error and current value a refused property update's body carries; the value is a view
/// of `body`, not a copy, and empty when absent.
pub fn decode_property(
    code: ErrorCode,
    body: &Bytes,
) -> Result<(RemoteError, Bytes), serde_json::Error> {
    let received = serde_json::from_slice::<PropertyErrorIn<'_>>(body)?;
    let name = received.error.unwrap_or_else(|| "UnknownError".to_owned());
    let error = with_details(RemoteError::new(code, name, received.message), received.details);
    let value = match received.value {
        Some(value) => raw_bytes(body, Some(value)),
        None => Bytes::new(),
    };
    Ok((error, value))
}

fn with_details(error: RemoteError, details: Option<serde_json::Value>) -> RemoteError {
    match details {
        Some(details) => error.with_details(details),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip() {
        let error =
            RemoteError::client_error("too hot").with_details(serde_json::json!({"max": 30}));
        let body = encode(&error);
        assert_eq!(&body[..], br#"{"message":"too hot","details":{"max":30}}"#);
        assert_eq!(decode(error.code(), error.name(), &body), error);
        let junk = decode(ErrorCode::ServerError, "Internal", b"not json");
        assert_eq!((junk.name(), junk.message()), ("Internal", ""));
    }

    #[test]
    fn property_errors_carry_the_value() {
        let error = RemoteError::new(ErrorCode::OutOfSync, "OutOfSync", "stale");
        let body = encode_property(&error, br#"{"celsius":21.5}"#);
        assert_eq!(
            &body[..],
            br#"{"error":"OutOfSync","message":"stale","value":{"celsius":21.5}}"#
        );
        let (decoded, value) = decode_property(ErrorCode::OutOfSync, &body).unwrap();
        assert_eq!((decoded, &value[..]), (error.clone(), &br#"{"celsius":21.5}"#[..]));
        assert_eq!(
            &encode_property(&error, b"\xff")[..],
            br#"{"error":"OutOfSync","message":"stale","value":null}"#
        );
        assert!(decode_property(ErrorCode::OutOfSync, &Bytes::from_static(b"[")).is_err());
    }
}
