//! The runtime types users name: errors, options, streams and handles, re-exported from the core.

pub use switchboard_core::{
    CallContext, CallError, DeclaredError, DecodeError, ErrorCode, GoalContext, GoalError,
    GoalHandle, GoalId, GoalStatus, HandlerError, MethodError, PeerCredentials, PeerId,
    RemoteError, TransportError, TransportErrorKind,
    action::{FEEDBACK_BUFFER, GoalOutcome, GoalSnapshot},
    client::{
        ClientOptions, DEFAULT_CALL_TIMEOUT, DEFAULT_GOAL_RECONNECT_TIMEOUT,
        DEFAULT_SLOW_READER_TIMEOUT, PropertyWatch, SIGNAL_BUFFER, SignalStream, SubscriptionError,
    },
    error::names as error_names,
    server::{
        DEFAULT_ACTION_LIMIT, DEFAULT_DISCONNECT_GRACE, DEFAULT_GOAL_RETENTION, ServerOptions,
    },
};
