//! How failures become HTTP responses: a status by whose failure it is, and a JSON body
//! `{"error": {...}}` carrying the failure as the CLI's JSON output does (a declared error's
//! name, code and fields among it).

use axum::{
    Json,
    extract::rejection::{BytesRejection, PathRejection, QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use switchboard_core::ErrorCode;

use crate::exit::Failure;

/// A failed request: its status and its JSON body.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    /// A failure of the gateway itself (`kind` as in [`Failure::kind`]), with a message.
    pub(crate) fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        ApiError { status, body: json!({ "error": { "kind": kind, "message": message.into() } }) }
    }

    /// The gateway cannot take this on now (too many streams, goals or services).
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "local", message)
    }
}

/// The status a failure maps to: "the server said no" is 4xx, "the way to it broke" is 502
/// (transport, or the server failed inside) or 504 (no answer); 503 is the gateway's own limits.
pub(crate) fn status_of(failure: &Failure) -> StatusCode {
    match failure {
        Failure::Usage(_) => StatusCode::BAD_REQUEST,
        Failure::NotFound(_) => StatusCode::NOT_FOUND,
        Failure::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        Failure::Transport(_) => StatusCode::BAD_GATEWAY,
        Failure::Local(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Failure::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
        Failure::Remote(error) => match error.code() {
            ErrorCode::ClientError => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::PayloadError
            | ErrorCode::ClientSerializationError
            | ErrorCode::ServerDeserializationError => StatusCode::BAD_REQUEST,
            ErrorCode::MethodNotFound => StatusCode::NOT_FOUND,
            ErrorCode::Unauthorized => StatusCode::FORBIDDEN,
            ErrorCode::OutOfSync => StatusCode::CONFLICT,
            ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            // `TooManyGoals` and the like: the server refuses for now.
            ErrorCode::ServiceUnavailable => StatusCode::TOO_MANY_REQUESTS,
            // The server failed inside, or sent what cannot be read: the upstream is broken.
            _ => StatusCode::BAD_GATEWAY,
        },
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        ApiError { status: status_of(&failure), body: json!({ "error": failure.to_json() }) }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the request body is larger than {} bytes", super::MAX_BODY)
        } else {
            format!("cannot read the request body: {}", rejection.body_text())
        };
        Self::new(status, "usage", message)
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "usage", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "usage", rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use switchboard_core::RemoteError;

    use super::*;

    #[test]
    fn server_refusals_are_4xx_and_broken_ways_5xx() {
        let declared = Failure::Remote(
            RemoteError::new(ErrorCode::ClientError, "OutOfRange", "too hot")
                .with_details(json!({ "requestedCelsius": 99.0 })),
        );
        assert_eq!(status_of(&declared), StatusCode::UNPROCESSABLE_ENTITY);
        let error = ApiError::from(declared);
        assert_eq!(error.body["error"]["name"], "OutOfRange");
        assert_eq!(error.body["error"]["code"], 1);
        assert_eq!(error.body["error"]["details"]["requestedCelsius"], 99.0);
        assert_eq!(status_of(&Failure::Usage(String::new())), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(&Failure::NotFound(String::new())), StatusCode::NOT_FOUND);
        assert_eq!(status_of(&Failure::Transport(String::new())), StatusCode::BAD_GATEWAY);
        assert_eq!(status_of(&Failure::Timeout(String::new())), StatusCode::GATEWAY_TIMEOUT);
        let internal = Failure::Remote(RemoteError::internal("boom"));
        assert_eq!(status_of(&internal), StatusCode::BAD_GATEWAY);
        let read_only = Failure::Remote(RemoteError::read_only("mode"));
        assert_eq!(status_of(&read_only), StatusCode::FORBIDDEN);
    }
}
