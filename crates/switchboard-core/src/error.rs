//! The errors callers see, kept apart by cause: the server said no, the call timed out,
//! a message did not decode, or the transport broke.

use std::{fmt, io, sync::Arc, time::Duration};

/// Why a call, property read or property update did not produce a value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The server handled the request and answered with an error.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// No answer arrived within the call's timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// A message could not be encoded or decoded as the interface says it should be.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The connection failed, was never made, or the peer went away.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl CallError {
    /// The remote error, when the server answered with one.
    pub fn as_remote(&self) -> Option<&RemoteError> {
        match self {
            CallError::Remote(e) => Some(e),
            _ => None,
        }
    }

    /// True when the peer disconnected or no connection exists.
    pub fn is_disconnect(&self) -> bool {
        matches!(
            self,
            CallError::Transport(e)
                if matches!(e.kind(), TransportErrorKind::Disconnected | TransportErrorKind::NotConnected)
        )
    }
}

/// The result codes a reply can carry.
///
/// The numbers are StingerIPC's `ReturnCode` values, so they mean the same on every transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum ErrorCode {
    /// The request was wrong in a way the application decided (a declared error).
    ClientError = 1,
    /// The server failed while handling the request.
    ServerError = 2,
    /// A transport failed on the way.
    TransportError = 3,
    /// The message envelope was wrong (content type, version field).
    PayloadError = 4,
    /// The client could not encode its request.
    ClientSerializationError = 5,
    /// The client could not decode the reply.
    ClientDeserializationError = 6,
    /// The server could not encode its reply.
    ServerSerializationError = 7,
    /// The server could not decode the request: bad JSON or wrong types.
    ServerDeserializationError = 8,
    /// No such method or property.
    MethodNotFound = 9,
    /// The caller may not do this.
    Unauthorized = 10,
    /// The server timed out.
    Timeout = 11,
    /// A property update named a version that is no longer current.
    OutOfSync = 12,
    /// A code this library does not know.
    UnknownError = 13,
    /// The method exists but is not implemented.
    NotImplemented = 14,
    /// The service cannot serve right now.
    ServiceUnavailable = 15,
}

impl ErrorCode {
    /// Maps a wire code to an [`ErrorCode`]; unknown codes (and 0, which means success) become [`ErrorCode::UnknownError`].
    pub fn from_u8(code: u8) -> ErrorCode {
        use ErrorCode::*;
        match code {
            1 => ClientError,
            2 => ServerError,
            3 => TransportError,
            4 => PayloadError,
            5 => ClientSerializationError,
            6 => ClientDeserializationError,
            7 => ServerSerializationError,
            8 => ServerDeserializationError,
            9 => MethodNotFound,
            10 => Unauthorized,
            11 => Timeout,
            12 => OutOfSync,
            14 => NotImplemented,
            15 => ServiceUnavailable,
            _ => UnknownError,
        }
    }

    /// The wire number.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// An error the remote side sent back, by name, with a message and optional structured details.
///
/// Handlers return it to refuse a request; clients receive it as [`CallError::Remote`].
/// The name is stable and meant for matching; the message is for people.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteError {
    code: ErrorCode,
    name: String,
    message: String,
    details: Option<serde_json::Value>,
}

/// Names of the errors the runtime itself produces.
pub mod names {
    /// The method or property does not exist on the server.
    pub const UNKNOWN_METHOD: &str = "UnknownMethod";
    /// The property does not exist on the server.
    pub const UNKNOWN_PROPERTY: &str = "UnknownProperty";
    /// The arguments did not decode into the declared types.
    pub const INVALID_ARGUMENTS: &str = "InvalidArguments";
    /// The handler failed in a way it did not declare (including a panic).
    pub const INTERNAL: &str = "Internal";
    /// A property update carried a stale version.
    pub const OUT_OF_SYNC: &str = "OutOfSync";
    /// A client tried to update a read-only property.
    pub const READ_ONLY: &str = "ReadOnlyProperty";
    /// The caller is not allowed to do this.
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// A generic application error with no declared name.
    pub const APPLICATION: &str = "ApplicationError";
}

impl RemoteError {
    /// Creates an error with an explicit code and name.
    pub fn new(code: ErrorCode, name: impl Into<String>, message: impl Into<String>) -> Self {
        RemoteError { code, name: name.into(), message: message.into(), details: None }
    }

    /// A refusal caused by the caller's request (code 1, name `ApplicationError`).
    pub fn client_error(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ClientError, names::APPLICATION, message)
    }

    /// A failure inside the server (code 2, name `Internal`).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServerError, names::INTERNAL, message)
    }

    /// The caller is not allowed to do this (code 10, name `AccessDenied`).
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, names::ACCESS_DENIED, message)
    }

    /// Attaches structured details, sent as JSON.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The result code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The stable error name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Structured details, if the server sent any.
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.details.as_ref()
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "the server answered {}", self.name)
        } else {
            write!(f, "the server answered {}: {}", self.name, self.message)
        }
    }
}

impl std::error::Error for RemoteError {}

/// A payload that did not match the type the interface declares for it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot decode {what}: {detail}")]
pub struct DecodeError {
    what: String,
    detail: String,
}

impl DecodeError {
    /// Describes what was being decoded and why it failed.
    pub fn new(what: impl Into<String>, detail: impl fmt::Display) -> Self {
        DecodeError { what: what.into(), detail: detail.to_string() }
    }

    /// What was being decoded, e.g. `reply of method boost`.
    pub fn what(&self) -> &str {
        &self.what
    }
}

/// What kind of transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// An established connection was lost; the peer went away.
    Disconnected,
    /// There is no connection right now (never made, or lost and not yet restored).
    NotConnected,
    /// Nothing is listening at the address.
    NotFound,
    /// The server does not serve the interface (or version) the client was generated from.
    IncompatibleInterface,
    /// The peer broke the wire protocol.
    Protocol,
    /// A frame exceeded the configured maximum size.
    FrameTooLarge,
    /// The operating system or the server refused access.
    AccessDenied,
    /// The address could not be parsed or is not supported.
    InvalidAddress,
    /// The local endpoint was closed by its owner.
    Closed,
    /// Any other I/O failure.
    Io,
}

/// A failure of the connection itself, as opposed to an error the server sent.
#[derive(Debug, Clone)]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
    source: Option<Arc<io::Error>>,
}

impl TransportError {
    /// Creates an error of `kind` with a message.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError { kind, message: message.into(), source: None }
    }

    /// Creates an error of `kind` caused by an I/O error.
    pub fn io(kind: TransportErrorKind, message: impl Into<String>, source: io::Error) -> Self {
        TransportError { kind, message: message.into(), source: Some(Arc::new(source)) }
    }

    /// The connection to the peer was lost.
    pub fn disconnected(message: impl Into<String>) -> Self {
        Self::new(TransportErrorKind::Disconnected, message)
    }

    /// There is no connection right now.
    pub fn not_connected(message: impl Into<String>) -> Self {
        Self::new(TransportErrorKind::NotConnected, message)
    }

    /// What went wrong.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The human-readable description.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}
