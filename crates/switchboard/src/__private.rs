//! The machinery generated code runs on. Not a public API: it changes with the generator.
//!
//! Generated code names the types its users see (handler arguments, results, errors, streams)
//! by their public paths; only what users never touch comes from here.

pub use bytes::Bytes;
pub use serde;
pub use serde_with::{As, Same};
pub use switchboard_core::{
    InterfaceDescriptor, MethodDescriptor, PropertyDescriptor,
    action::{GoalRun, RawGoal, goal_run},
    client::ClientCore,
    codec::{Base64, Empty, IsoDateTime, IsoDuration},
    error::{declared_details, declared_error},
    server::{
        ServerCore, Service, decode_args, encode_property, encode_reply, unknown_action,
        unknown_command, unknown_method, unknown_property,
    },
    transport::BoxFuture,
};
