//! The only surface generated code uses. Not a public API: it changes with the generator.

pub use std::collections::BTreeMap;

pub use bytes::Bytes;
pub use serde;
pub use serde_with::{As, Same};
pub use switchboard_core::{
    CallContext, CallError, DeclaredError, GoalContext, GoalHandle, GoalId, HandlerError,
    InterfaceDescriptor, MethodDescriptor, MethodError, PeerId, PropertyDescriptor, RemoteError,
    TransportError,
    action::{GoalRun, RawGoal, goal_run},
    client::{ClientCore, ClientOptions, PropertyWatch, SignalStream},
    codec::{Base64, Empty, IsoDateTime, IsoDuration},
    error::{declared_details, declared_error},
    server::{
        ServerCore, ServerOptions, Service, decode_args, encode_property, encode_reply,
        unknown_action, unknown_command, unknown_method, unknown_property,
    },
    transport::BoxFuture,
};

pub use crate::{DateTime, Duration, Endpoint};
