//! The transport-independent message model: everything a client and a server say to each other.
//!
//! Payloads are already-encoded JSON objects ([`Bytes`]); transports carry them without looking
//! inside. Each transport maps these messages onto its own wire (frames on a Unix socket, topics
//! and properties on MQTT) and documents that mapping in `docs/wire/`.

use std::borrow::Cow;

use bytes::Bytes;

use crate::{
    action::{GoalEvent, GoalId, GoalSnapshot},
    error::RemoteError,
};

/// A method, signal or property name as written in the interface file.
pub type Name = Cow<'static, str>;

/// A correlation id, unique among one client's requests in flight.
pub type RequestId = u64;

/// A message from a client to a server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientMessage {
    /// Invoke a method; the server answers with [`ServerMessage::Reply`].
    Call {
        /// Correlates the reply.
        id: RequestId,
        /// The method name.
        method: Name,
        /// The arguments as a JSON object.
        payload: Bytes,
    },
    /// Read a property; the server answers with [`ServerMessage::PropertyReply`].
    GetProperty {
        /// Correlates the reply.
        id: RequestId,
        /// The property name.
        property: Name,
    },
    /// Replace a property's value; the server answers with [`ServerMessage::PropertyReply`].
    SetProperty {
        /// Correlates the reply.
        id: RequestId,
        /// The property name.
        property: Name,
        /// The version the client last saw; `None` if it has seen none.
        version: Option<u64>,
        /// The complete new value as a JSON object.
        payload: Bytes,
    },
    /// Start receiving a signal.
    Subscribe {
        /// The signal name.
        signal: Name,
    },
    /// Stop receiving a signal.
    Unsubscribe {
        /// The signal name.
        signal: Name,
    },
    /// Receive a property's current value now, then every change, with no gap in between.
    Watch {
        /// The property name.
        property: Name,
    },
    /// Stop receiving a property's changes.
    Unwatch {
        /// The property name.
        property: Name,
    },
    /// Run a command: fire and forget, the server never answers.
    Command {
        /// The command name.
        command: Name,
        /// The arguments as a JSON object.
        payload: Bytes,
    },
    /// Start a goal of an action; the server answers with [`ServerMessage::GoalReply`]
    /// (accepted, or the error that rejected it), then sends [`ServerMessage::GoalEvent`]s.
    SendGoal {
        /// Correlates the reply.
        id: RequestId,
        /// The action name.
        action: Name,
        /// The goal id the client chose (UUID format).
        goal: GoalId,
        /// The goal's values as a JSON object.
        payload: Bytes,
    },
    /// Ask the server to cancel a goal; the reply carries the goal's status at that moment.
    CancelGoal {
        /// Correlates the reply.
        id: RequestId,
        /// The action name.
        action: Name,
        /// The goal id.
        goal: GoalId,
    },
    /// Learn a goal's status (and its outcome, if it has ended). With `follow`, this connection
    /// also becomes the goal's owner and receives its later events: how a client re-attaches.
    AttachGoal {
        /// Correlates the reply.
        id: RequestId,
        /// The action name.
        action: Name,
        /// The goal id.
        goal: GoalId,
        /// Keep receiving the goal's events and take ownership of it.
        follow: bool,
    },
    /// Ask the server to describe its interface; the server answers with
    /// [`ServerMessage::Description`]. Runtime introspection, for dynamic clients such as the CLI.
    Describe {
        /// Correlates the reply.
        id: RequestId,
    },
}

/// A message from a server to one client or to all subscribers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// The outcome of a [`ClientMessage::Call`].
    Reply {
        /// The call's id.
        id: RequestId,
        /// The return values as a JSON object, or the error.
        result: Result<Bytes, RemoteError>,
    },
    /// The outcome of a property get or set: always carries the current value and version.
    PropertyReply {
        /// The request's id.
        id: RequestId,
        /// The property name.
        property: Name,
        /// The version after the request was handled.
        version: u64,
        /// The current value after the request was handled (also on error).
        payload: Bytes,
        /// Why an update was refused, if it was.
        error: Option<RemoteError>,
    },
    /// A signal emission.
    Signal {
        /// The signal name.
        signal: Name,
        /// The signal's values as a JSON object.
        payload: Bytes,
    },
    /// A property's value: the first answer to a watch, and every later change.
    PropertyValue {
        /// The property name.
        property: Name,
        /// The value's version; it grows by one with every change.
        version: u64,
        /// The value as a JSON object.
        payload: Bytes,
    },
    /// The answer to [`ClientMessage::SendGoal`], [`ClientMessage::CancelGoal`] and
    /// [`ClientMessage::AttachGoal`]: the goal's state when the request was handled, or an error.
    GoalReply {
        /// The request's id.
        id: RequestId,
        /// The action name.
        action: Name,
        /// The goal id.
        goal: GoalId,
        /// The goal's state, or why the request failed (a rejected goal, an unknown goal).
        result: Result<GoalSnapshot, RemoteError>,
    },
    /// Something happened to a goal: sent, in order, to the connections following it.
    GoalEvent {
        /// The action name.
        action: Name,
        /// The goal id.
        goal: GoalId,
        /// What happened.
        event: GoalEvent,
    },
    /// A message on a topic a node's client subscribed to by a filter (see
    /// `transport::Naming::Node`): the filter it matched, as subscribed, and the topic it
    /// was published on.
    Published {
        /// The filter, as in [`ClientMessage::Subscribe`].
        filter: Name,
        /// The concrete topic.
        topic: Name,
        /// The message as a JSON document.
        payload: Bytes,
    },
    /// The answer to [`ClientMessage::Describe`]: the served interface's full description, the
    /// JSON of `InterfaceDescriptor::description` (the interface model as `switchboard-idl`
    /// serializes it).
    Description {
        /// The request's id.
        id: RequestId,
        /// The description JSON.
        description: Bytes,
    },
}
