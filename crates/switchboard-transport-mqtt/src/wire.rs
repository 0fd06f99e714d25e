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
/// switchboard's request to replicas (`replicas=shared`), on a method request or a goal request:
/// `1` asks the replica that takes it to say so at once, with a taken message.
pub(crate) const ACK: &str = "Ack";
/// switchboard's taken message: `1` on the empty message with which a replica says it took the
/// request of the correlation data.
pub(crate) const TAKEN: &str = "Taken";
/// switchboard's replica name: the MQTT client id of the replica that sends a taken message or
/// answers a goal request (its presence is that client id's presence topic).
pub(crate) const REPLICA: &str = "Replica";

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
