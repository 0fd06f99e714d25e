//! The runtime types users name: errors, options, streams and handles, re-exported from the core.

pub use switchboard_core::{
    CallContext, CallError, DecodeError, ErrorCode, PeerCredentials, PeerId, RemoteError,
    TransportError, TransportErrorKind,
    client::{ClientOptions, DEFAULT_CALL_TIMEOUT, PropertyWatch, SignalStream, SubscriptionError},
    error::names as error_names,
};
