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
    /// The signal does not exist on the server (known from its description before subscribing).
    pub const UNKNOWN_SIGNAL: &str = "UnknownSignal";
    /// The command does not exist on the server (logged there; commands get no answer).
    pub const UNKNOWN_COMMAND: &str = "UnknownCommand";
    /// The action does not exist on the server.
    pub const UNKNOWN_ACTION: &str = "UnknownAction";
    /// No goal with this id is running or remembered.
    pub const UNKNOWN_GOAL: &str = "UnknownGoal";
    /// A goal with this id already exists.
    pub const DUPLICATE_GOAL: &str = "DuplicateGoal";
    /// The action already runs as many goals as its limit allows.
    pub const TOO_MANY_GOALS: &str = "TooManyGoals";
    /// A method handler gave up because it was cancelled.
    pub const CANCELLED: &str = "Cancelled";
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

    /// `interface` has no property `property` (code 5, name `UnknownProperty`), the same on
    /// every transport.
    pub fn unknown_property(interface: &str, property: &str) -> Self {
        Self::new(
            ErrorCode::MethodNotFound,
            names::UNKNOWN_PROPERTY,
            format!("interface {interface} has no property `{property}`"),
        )
    }

    /// A client tried to update read-only `property` (code 10, name `ReadOnlyProperty`), the
    /// same on every transport.
    pub fn read_only(property: &str) -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            names::READ_ONLY,
            format!("property `{property}` is read-only"),
        )
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

/// A typed error declared in the interface file: generated `<Method>Error` enums implement it.
///
/// On the wire a declared error is a [`RemoteError`] whose name is the error's name, whose code is
/// [`ErrorCode::ClientError`] and whose details are the error's fields as a JSON object.
pub trait DeclaredError: fmt::Debug + Send + Sync + Sized + 'static {
    /// Converts the error into what goes on the wire.
    fn into_remote(self) -> RemoteError;

    /// Recognises a received error by its name and decodes its fields; `None` when the name is
    /// not one of the declared errors or the fields do not decode.
    fn from_remote(error: &RemoteError) -> Option<Self>;
}

/// No declared errors: the error type of methods and actions that declare none.
impl DeclaredError for std::convert::Infallible {
    fn into_remote(self) -> RemoteError {
        match self {}
    }

    fn from_remote(_: &RemoteError) -> Option<Self> {
        None
    }
}

/// Why a handler did not produce a value: a declared error, any other error, or cancellation.
///
/// Handlers of methods and actions with declared errors return it; `?` converts both the
/// declared error type and [`RemoteError`] into it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HandlerError<E> {
    /// One of the errors the interface declares, sent with its name and fields.
    Declared(E),
    /// Any other error, sent as it is.
    Other(RemoteError),
    /// The handler stopped because cancellation was requested. An action's goal ends as
    /// cancelled; a method call fails with a `Cancelled` error.
    Cancelled,
}

impl<E: DeclaredError> HandlerError<E> {
    /// The error as it goes on the wire (for methods; actions keep cancellation apart).
    pub fn into_remote(self) -> RemoteError {
        match self {
            HandlerError::Declared(error) => error.into_remote(),
            HandlerError::Other(error) => error,
            HandlerError::Cancelled => RemoteError::new(
                ErrorCode::ServerError,
                names::CANCELLED,
                "the handler was cancelled",
            ),
        }
    }
}

impl<E: DeclaredError> From<E> for HandlerError<E> {
    fn from(error: E) -> Self {
        HandlerError::Declared(error)
    }
}

impl<E> From<RemoteError> for HandlerError<E> {
    fn from(error: RemoteError) -> Self {
        HandlerError::Other(error)
    }
}

impl<E: fmt::Display> fmt::Display for HandlerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Declared(error) => error.fmt(f),
            HandlerError::Other(error) => error.fmt(f),
            HandlerError::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for HandlerError<E> {}

/// Why a call to a method with declared errors failed: one of those errors, or anything a call
/// can fail with.
///
/// An error whose name the client does not know (from a newer server, say) stays
/// [`MethodError::Call`] with [`CallError::Remote`], keeping its name and message.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MethodError<E> {
    /// The server answered with one of the declared errors.
    Declared(E),
    /// Any other failure: an undeclared remote error, a timeout, a decode or transport failure.
    Call(CallError),
}

impl<E: DeclaredError> From<CallError> for MethodError<E> {
    fn from(error: CallError) -> Self {
        match &error {
            CallError::Remote(remote) => match E::from_remote(remote) {
                Some(declared) => MethodError::Declared(declared),
                None => MethodError::Call(error),
            },
            _ => MethodError::Call(error),
        }
    }
}

impl<E> MethodError<E> {
    /// The declared error, if that is what the server answered.
    pub fn declared(&self) -> Option<&E> {
        match self {
            MethodError::Declared(error) => Some(error),
            MethodError::Call(_) => None,
        }
    }

    /// The call failure, if the error is not a declared one.
    pub fn call_error(&self) -> Option<&CallError> {
        match self {
            MethodError::Declared(_) => None,
            MethodError::Call(error) => Some(error),
        }
    }
}

impl<E: fmt::Display> fmt::Display for MethodError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MethodError::Declared(error) => error.fmt(f),
            MethodError::Call(error) => error.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for MethodError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MethodError::Declared(_) => None,
            MethodError::Call(error) => Some(error),
        }
    }
}

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
    /// Nothing is listening at the address: on a broker, no server announced the instance; on a
    /// Unix socket, no server listens on the socket's path (the path names the service itself).
    NotFound,
    /// The broker at the address cannot be reached: it refused the connection, the network has
    /// no way to it, or it did not answer within the connect timeout. This says nothing about
    /// the service, which may be running once the broker is back.
    Unreachable,
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

    /// Creates an error caused by an I/O error, of the kind every transport gives it: the
    /// operating system refusing access is `AccessDenied`, a peer that refuses the connection,
    /// has no route or does not answer `Unreachable`, anything else `Io`.
    pub fn from_io(message: impl Into<String>, source: io::Error) -> Self {
        let kind = match source.kind() {
            io::ErrorKind::PermissionDenied => TransportErrorKind::AccessDenied,
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::TimedOut => TransportErrorKind::Unreachable,
            _ => TransportErrorKind::Io,
        };
        Self::io(kind, message, source)
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

/// Builds the wire form of a declared error: code 1 (`ClientError`), the error's name, a
/// message, and its fields as a JSON object in the details.
pub fn declared_error<T: serde::Serialize + ?Sized>(
    name: &str,
    message: &str,
    fields: &T,
) -> RemoteError {
    let error = RemoteError::new(ErrorCode::ClientError, name, message);
    match serde_json::to_value(fields) {
        Ok(details) => error.with_details(details),
        Err(e) => {
            tracing::error!(error = %e, name, "the fields of a declared error could not be encoded");
            error
        }
    }
}

/// Decodes a declared error's fields from a received error's details (`{}` when it has none).
pub fn declared_details<T: serde::de::DeserializeOwned>(error: &RemoteError) -> Option<T> {
    let details = error.details().cloned().unwrap_or_else(|| serde_json::json!({}));
    serde_json::from_value(details).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_io_error_maps_to_access_denied_unreachable_or_io() {
        let denied = TransportError::from_io(
            "cannot bind",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(denied.kind(), TransportErrorKind::AccessDenied);
        for refused in [io::ErrorKind::ConnectionRefused, io::ErrorKind::TimedOut] {
            let error = TransportError::from_io("cannot reach", io::Error::from(refused));
            assert_eq!(error.kind(), TransportErrorKind::Unreachable, "{refused:?}");
        }
        let other = TransportError::from_io("cannot bind", io::Error::from(io::ErrorKind::Other));
        assert_eq!(other.kind(), TransportErrorKind::Io);
        assert!(std::error::Error::source(&other).is_some());
    }

    use super::*;

    #[derive(Debug, PartialEq)]
    enum LookupError {
        NotFound(String),
    }

    impl DeclaredError for LookupError {
        fn into_remote(self) -> RemoteError {
            match self {
                LookupError::NotFound(id) => {
                    declared_error("NotFound", "no such key", &serde_json::json!({ "id": id }))
                }
            }
        }

        fn from_remote(error: &RemoteError) -> Option<Self> {
            #[derive(serde::Deserialize)]
            struct Fields {
                id: String,
            }
            match error.name() {
                "NotFound" => {
                    declared_details::<Fields>(error).map(|f| LookupError::NotFound(f.id))
                }
                _ => None,
            }
        }
    }

    #[test]
    fn declared_errors_round_trip_and_unknown_ones_stay_remote() {
        let remote = LookupError::NotFound("k".into()).into_remote();
        assert_eq!((remote.code(), remote.name()), (ErrorCode::ClientError, "NotFound"));
        let error = MethodError::<LookupError>::from(CallError::Remote(remote));
        assert_eq!(error.declared(), Some(&LookupError::NotFound("k".into())));

        let newer = RemoteError::new(ErrorCode::ClientError, "RateLimited", "slow down");
        match MethodError::<LookupError>::from(CallError::Remote(newer)) {
            MethodError::Call(CallError::Remote(e)) => {
                assert_eq!((e.name(), e.message()), ("RateLimited", "slow down"));
            }
            other => panic!("unexpected {other:?}"),
        }
        // Fields that do not decode leave the error undeclared rather than inventing values.
        let broken = RemoteError::new(ErrorCode::ClientError, "NotFound", "x")
            .with_details(serde_json::json!({"id": 5}));
        assert!(MethodError::<LookupError>::from(CallError::Remote(broken)).declared().is_none());
    }

    #[test]
    fn handler_errors_convert_with_question_mark() {
        fn declared() -> Result<(), HandlerError<LookupError>> {
            Err(LookupError::NotFound("a".into()))?
        }
        fn other() -> Result<(), HandlerError<LookupError>> {
            Err(RemoteError::internal("x"))?
        }
        assert_eq!(declared().unwrap_err().into_remote().name(), "NotFound");
        assert_eq!(other().unwrap_err().into_remote().name(), names::INTERNAL);
        assert_eq!(HandlerError::<LookupError>::Cancelled.into_remote().name(), names::CANCELLED);
    }
}
