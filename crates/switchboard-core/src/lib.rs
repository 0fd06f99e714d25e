//! Transport-independent runtime core: the message model, errors, codec, and the client and server machinery.
//!
//! Transports (`switchboard-transport-*`) implement the traits in [`transport`]; generated code
//! uses [`client::ClientCore`] and [`server::ServerCore`] through the facade's `__private` module.
//! See ARCHITECTURE.md for how the pieces fit.

pub mod action;
pub mod backoff;
pub mod client;
pub mod codec;
pub mod compat;
pub mod context;
pub mod descriptor;
pub mod error;
pub mod error_payload;
pub mod goal_payload;
pub mod message;
mod notify;
mod reader_queue;
pub mod registry;
pub mod server;
pub mod sync;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;

pub use action::{GoalContext, GoalError, GoalEvent, GoalHandle, GoalId, GoalOutcome, GoalStatus};
pub use context::{CallContext, PeerCredentials, PeerId};
pub use descriptor::{InterfaceDescriptor, MethodDescriptor, PropertyDescriptor};
pub use error::{
    CallError, DeclaredError, DecodeError, ErrorCode, HandlerError, MethodError, RemoteError,
    TransportError, TransportErrorKind,
};
