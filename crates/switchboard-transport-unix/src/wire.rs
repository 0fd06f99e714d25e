//! The mapping between switchboard's message model and frames, plus the handshake documents.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchboard_core::{
    ErrorCode, InterfaceDescriptor, RemoteError, TransportError, TransportErrorKind,
    action::GoalEvent,
    compat::{Hello, Incompatible},
    error_payload, goal_payload,
    message::{ClientMessage, ServerMessage},
};

use crate::frame::{Frame, FrameError, FrameRef, Kind, PROTOCOL_VERSION};

/// The error name a REFUSED frame carries when interface name, protocol or hash do not match.
pub(crate) const INCOMPATIBLE_INTERFACE: &str = "IncompatibleInterface";
/// The error name a REFUSED frame carries when the peer's credentials are not allowed.
pub(crate) const ACCESS_DENIED: &str = "AccessDenied";
/// The error name a REFUSED frame carries when the protocol number or handshake is wrong.
pub(crate) const UNSUPPORTED_PROTOCOL: &str = "UnsupportedProtocol";
/// The error name a REFUSED frame carries when the server serves as many connections as it may,
/// in total or for the peer's uid.
pub(crate) const TOO_MANY_CONNECTIONS: &str = "TooManyConnections";
/// The name an ERROR frame carries, and the name of the remote error it becomes on the client.
pub(crate) const PROTOCOL_ERROR: &str = "ProtocolError";

/// Describes `interface` as served or expected at `instance` in this protocol's handshake.
pub(crate) fn hello(interface: &InterfaceDescriptor, instance: &str) -> Hello {
    Hello::describe(interface, instance, PROTOCOL_VERSION)
}

/// The largest handshake frame (HELLO or WELCOME) either side reads, whatever its frame limit
/// for the rest of the connection: a Hello is small (its description aside), and a peer that has
/// not yet been admitted must not make the server hold a large frame.
pub(crate) const HELLO_LIMIT: usize = 64 * 1024;

/// Encodes a Hello as a HELLO or WELCOME frame. A HELLO whose description would take it past
/// [`HELLO_LIMIT`] goes without the description, as an older client's does: an equal hash still
/// connects, another one is refused.
pub(crate) fn hello_frame(hello: &Hello, kind: Kind) -> Frame {
    let mut payload = serde_json::to_vec(hello).unwrap_or_default();
    // The header, the name and the length field, with room to spare.
    let framing = 64 + hello.interface.len();
    if kind == Kind::Hello && hello.description.is_some() && payload.len() + framing > HELLO_LIMIT {
        payload =
            serde_json::to_vec(&Hello { description: None, ..hello.clone() }).unwrap_or_default();
    }
    Frame::new(kind, hello.interface.clone()).with_payload(payload)
}

/// Encodes the server's WELCOME for `client`. Only a client of another hash compares members,
/// so only it gets the server's description; any other (the same hash, or a dynamic client)
/// gets the Hello without it.
pub(crate) fn welcome_frame(server: &Hello, client: &Hello) -> Frame {
    if client.hash.is_some() && client.hash != server.hash {
        hello_frame(server, Kind::Welcome)
    } else {
        hello_frame(&Hello { description: None, ..server.clone() }, Kind::Welcome)
    }
}

/// The name a REFUSED frame carries for an incompatibility found by
/// [`switchboard_core::compat::check`].
pub(crate) fn refusal_name(error: &Incompatible) -> &'static str {
    match error {
        Incompatible::Protocol { .. } => UNSUPPORTED_PROTOCOL,
        _ => INCOMPATIBLE_INTERFACE,
    }
}

/// The JSON payload of REFUSED and ERROR frames.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MessageOnly {
    #[serde(default)]
    pub(crate) message: String,
}

/// Builds a frame whose payload is `{"message": …}`.
pub(crate) fn message_frame(
    kind: Kind,
    code: ErrorCode,
    name: &str,
    id: u64,
    message: &str,
) -> Frame {
    let payload =
        serde_json::to_vec(&MessageOnly { message: message.to_owned() }).unwrap_or_default();
    Frame::new(kind, name).with_code(code.as_u8()).with_id(id).with_payload(payload)
}

/// Reads the `message` field of a REFUSED or ERROR payload, tolerating junk.
pub(crate) fn message_of(payload: &[u8]) -> String {
    serde_json::from_slice::<MessageOnly>(payload).map(|m| m.message).unwrap_or_default()
}

/// A message as it goes on the wire: a frame's fields, with the name and, where it can, the
/// payload borrowed from the message, so a sender encodes it with no copy in between.
#[derive(Debug)]
pub(crate) struct Outgoing<'a> {
    kind: Kind,
    code: u8,
    id: u64,
    version: u64,
    name: &'a str,
    payload: Cow<'a, Bytes>,
}

impl<'a> Outgoing<'a> {
    fn new(kind: Kind, name: &'a str) -> Self {
        Outgoing { kind, code: 0, id: 0, version: 0, name, payload: Cow::Owned(Bytes::new()) }
    }

    fn with_code(mut self, code: u8) -> Self {
        self.code = code;
        self
    }

    fn with_id(mut self, id: u64) -> Self {
        self.id = id;
        self
    }

    fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    fn with_payload(mut self, payload: &'a Bytes) -> Self {
        self.payload = Cow::Borrowed(payload);
        self
    }

    fn with_owned_payload(mut self, payload: impl Into<Bytes>) -> Self {
        self.payload = Cow::Owned(payload.into());
        self
    }

    /// The frame's fields.
    pub(crate) fn fields(&self) -> FrameRef<'_> {
        FrameRef {
            kind: self.kind,
            code: self.code,
            id: self.id,
            version: self.version,
            name: self.name,
            payload: &self.payload,
        }
    }

    /// The frame, owning its fields.
    #[cfg(test)]
    pub(crate) fn into_frame(self) -> Frame {
        Frame {
            kind: self.kind,
            code: self.code,
            id: self.id,
            version: self.version,
            name: self.name.to_owned(),
            payload: self.payload.into_owned(),
        }
    }
}

/// Refuses a frame whose body is longer than `limit` bytes.
pub(crate) fn check_size(frame: FrameRef<'_>, limit: usize) -> Result<(), TransportError> {
    let length = frame.body_len();
    if length > limit {
        let error = FrameError::TooLarge { length: length as u64, limit };
        return Err(TransportError::new(TransportErrorKind::FrameTooLarge, error.to_string()));
    }
    Ok(())
}

/// Appends `frame` to `out`, refusing one whose body is longer than `limit` bytes.
pub(crate) fn encode_limited(
    frame: FrameRef<'_>,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), TransportError> {
    check_size(frame, limit)?;
    frame
        .encode(out)
        .map_err(|e| TransportError::new(TransportErrorKind::FrameTooLarge, e.to_string()))
}

fn owned(name: String) -> Cow<'static, str> {
    Cow::Owned(name)
}

fn unsupported(what: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Protocol,
        format!("the unix transport cannot carry this {what} message"),
    )
}

/// Maps a client message to the frame it is sent as.
pub(crate) fn client_outgoing(message: &ClientMessage) -> Result<Outgoing<'_>, TransportError> {
    Ok(match message {
        ClientMessage::Call { id, method, payload } => {
            Outgoing::new(Kind::Call, method.as_ref()).with_id(*id).with_payload(payload)
        }
        ClientMessage::GetProperty { id, property } => {
            Outgoing::new(Kind::GetProperty, property.as_ref()).with_id(*id)
        }
        ClientMessage::SetProperty { id, property, version, payload } => {
            Outgoing::new(Kind::SetProperty, property.as_ref())
                .with_id(*id)
                .with_version(version.unwrap_or(0))
                .with_payload(payload)
        }
        ClientMessage::Subscribe { signal } => Outgoing::new(Kind::Subscribe, signal.as_ref()),
        ClientMessage::Unsubscribe { signal } => Outgoing::new(Kind::Unsubscribe, signal.as_ref()),
        ClientMessage::Watch { property } => Outgoing::new(Kind::Watch, property.as_ref()),
        ClientMessage::Unwatch { property } => Outgoing::new(Kind::Unwatch, property.as_ref()),
        ClientMessage::Command { command, payload } => {
            Outgoing::new(Kind::Command, command.as_ref()).with_payload(payload)
        }
        ClientMessage::SendGoal { id, action, goal, payload } => {
            Outgoing::new(Kind::SendGoal, action.as_ref())
                .with_id(*id)
                .with_owned_payload(goal_payload::encode_request(goal, Some(payload), None))
        }
        ClientMessage::CancelGoal { id, action, goal } => {
            Outgoing::new(Kind::CancelGoal, action.as_ref())
                .with_id(*id)
                .with_owned_payload(goal_payload::encode_request(goal, None, None))
        }
        ClientMessage::AttachGoal { id, action, goal, follow } => {
            Outgoing::new(Kind::AttachGoal, action.as_ref())
                .with_id(*id)
                .with_owned_payload(goal_payload::encode_request(goal, None, Some(*follow)))
        }
        ClientMessage::Describe { id } => Outgoing::new(Kind::Describe, "").with_id(*id),
        _ => return Err(unsupported("client")),
    })
}

/// The kind of frame that answers a request of kind `request`, or `None` for a frame that is
/// never answered (SUBSCRIBE, WATCH, COMMAND, …).
pub(crate) fn answer_kind(request: Kind) -> Option<Kind> {
    match request {
        Kind::Call => Some(Kind::Reply),
        Kind::GetProperty | Kind::SetProperty => Some(Kind::PropertyReply),
        Kind::SendGoal | Kind::CancelGoal | Kind::AttachGoal => Some(Kind::GoalReply),
        Kind::Describe => Some(Kind::Description),
        _ => None,
    }
}

/// Maps a frame received by a server to a client message.
///
/// HELLO and ERROR are handled by the caller; any other kind a client may not send is an error
/// whose text goes back to the client in an ERROR frame.
pub(crate) fn frame_to_client(frame: Frame) -> Result<ClientMessage, String> {
    let Frame { kind, id, version, name, payload, .. } = frame;
    Ok(match kind {
        Kind::Call => ClientMessage::Call { id, method: owned(name), payload },
        Kind::GetProperty => ClientMessage::GetProperty { id, property: owned(name) },
        Kind::SetProperty => ClientMessage::SetProperty {
            id,
            property: owned(name),
            version: (version != 0).then_some(version),
            payload,
        },
        Kind::Subscribe => ClientMessage::Subscribe { signal: owned(name) },
        Kind::Unsubscribe => ClientMessage::Unsubscribe { signal: owned(name) },
        Kind::Watch => ClientMessage::Watch { property: owned(name) },
        Kind::Unwatch => ClientMessage::Unwatch { property: owned(name) },
        Kind::Command => ClientMessage::Command { command: owned(name), payload },
        Kind::Describe => ClientMessage::Describe { id },
        Kind::SendGoal | Kind::CancelGoal | Kind::AttachGoal => {
            let request = goal_payload::decode_request(&payload)
                .map_err(|e| format!("unreadable {kind} payload: {e}"))?;
            let action = owned(name);
            let goal_id = request.goal;
            match kind {
                Kind::SendGoal => {
                    ClientMessage::SendGoal { id, action, goal: goal_id, payload: request.args }
                }
                Kind::CancelGoal => ClientMessage::CancelGoal { id, action, goal: goal_id },
                _ => {
                    ClientMessage::AttachGoal { id, action, goal: goal_id, follow: request.follow }
                }
            }
        }
        Kind::Hello => return Err("HELLO is only valid as the first frame".to_owned()),
        other => return Err(format!("{other} frames are sent by servers, not clients")),
    })
}

/// Maps a server message to the frame it is sent as.
pub(crate) fn server_outgoing(message: &ServerMessage) -> Result<Outgoing<'_>, TransportError> {
    Ok(match message {
        ServerMessage::Reply { id, result: Ok(payload) } => {
            Outgoing::new(Kind::Reply, "").with_id(*id).with_payload(payload)
        }
        ServerMessage::Reply { id, result: Err(error) } => Outgoing::new(Kind::Reply, error.name())
            .with_id(*id)
            .with_code(error.code().as_u8())
            .with_owned_payload(error_payload::encode(error)),
        ServerMessage::PropertyReply { id, property, version, payload, error: None } => {
            Outgoing::new(Kind::PropertyReply, property.as_ref())
                .with_id(*id)
                .with_version(*version)
                .with_payload(payload)
        }
        ServerMessage::PropertyReply { id, property, version, payload, error: Some(error) } => {
            Outgoing::new(Kind::PropertyReply, property.as_ref())
                .with_id(*id)
                .with_version(*version)
                .with_code(error.code().as_u8())
                .with_owned_payload(error_payload::encode_property(error, payload))
        }
        ServerMessage::Signal { signal, payload } => {
            Outgoing::new(Kind::Signal, signal.as_ref()).with_payload(payload)
        }
        ServerMessage::PropertyValue { property, version, payload } => {
            Outgoing::new(Kind::PropertyValue, property.as_ref())
                .with_version(*version)
                .with_payload(payload)
        }
        ServerMessage::GoalReply { id, goal, result: Ok(snapshot), .. } => {
            let (_, payload) =
                goal_payload::encode_state(goal, snapshot.status, snapshot.outcome.as_ref());
            Outgoing::new(Kind::GoalReply, "").with_id(*id).with_owned_payload(payload)
        }
        ServerMessage::GoalReply { id, goal, result: Err(error), .. } => {
            let payload = goal_payload::encode_error(goal, error);
            Outgoing::new(Kind::GoalReply, error.name())
                .with_id(*id)
                .with_code(error.code().as_u8())
                .with_owned_payload(payload)
        }
        ServerMessage::GoalEvent { action, goal, event } => match event {
            GoalEvent::Feedback(payload) => {
                let payload = goal_payload::encode_feedback(goal, payload);
                Outgoing::new(Kind::GoalFeedback, action.as_ref()).with_owned_payload(payload)
            }
            GoalEvent::Status(status) => {
                let (_, payload) = goal_payload::encode_state(goal, *status, None);
                Outgoing::new(Kind::GoalStatus, action.as_ref()).with_owned_payload(payload)
            }
            GoalEvent::Finished(outcome) => {
                let (code, payload) =
                    goal_payload::encode_state(goal, outcome.status(), Some(outcome));
                Outgoing::new(Kind::GoalFinished, action.as_ref())
                    .with_code(code)
                    .with_owned_payload(payload)
            }
            _ => return Err(unsupported("server")),
        },
        ServerMessage::Description { id, description } => {
            Outgoing::new(Kind::Description, "").with_id(*id).with_payload(description)
        }
        _ => return Err(unsupported("server")),
    })
}

fn nonzero_code(code: u8) -> ErrorCode {
    ErrorCode::from_u8(code)
}

/// Maps a frame received by a client to a server message.
///
/// ERROR frames with an id become an error reply to that request; other kinds a server may not
/// send, and ERROR frames without an id, give `Err` with a description to log.
pub(crate) fn frame_to_server(frame: Frame) -> Result<ServerMessage, String> {
    let Frame { kind, code, id, version, name, payload } = frame;
    Ok(match kind {
        Kind::Reply if code == 0 => ServerMessage::Reply { id, result: Ok(payload) },
        Kind::Reply => ServerMessage::Reply {
            id,
            result: Err(error_payload::decode(nonzero_code(code), name, &payload)),
        },
        Kind::PropertyReply if code == 0 => ServerMessage::PropertyReply {
            id,
            property: owned(name),
            version,
            payload,
            error: None,
        },
        Kind::PropertyReply => {
            let (error, value) = match error_payload::decode_property(nonzero_code(code), &payload)
            {
                Ok(decoded) => decoded,
                Err(e) => (
                    RemoteError::new(
                        nonzero_code(code),
                        PROTOCOL_ERROR,
                        format!("unreadable PROPERTY_REPLY error payload: {e}"),
                    ),
                    Bytes::new(),
                ),
            };
            ServerMessage::PropertyReply {
                id,
                property: owned(name),
                version,
                payload: value,
                error: Some(error),
            }
        }
        Kind::Signal => ServerMessage::Signal { signal: owned(name), payload },
        Kind::PropertyValue => {
            ServerMessage::PropertyValue { property: owned(name), version, payload }
        }
        Kind::GoalReply if code == 0 => {
            let (goal, snapshot) = goal_payload::decode_state(&payload)?;
            ServerMessage::GoalReply { id, action: Cow::Borrowed(""), goal, result: Ok(snapshot) }
        }
        Kind::GoalReply => {
            let (goal, error) = goal_payload::decode_error(&payload, code, name)
                .map_err(|e| format!("unreadable GOAL_REPLY error payload: {e}"))?;
            ServerMessage::GoalReply { id, action: Cow::Borrowed(""), goal, result: Err(error) }
        }
        Kind::GoalFeedback => {
            let request = goal_payload::decode_request(&payload)
                .map_err(|e| format!("unreadable GOAL_FEEDBACK payload: {e}"))?;
            let feedback = request.feedback.ok_or("a GOAL_FEEDBACK frame without `feedback`")?;
            ServerMessage::GoalEvent {
                action: owned(name),
                goal: request.goal,
                event: GoalEvent::Feedback(feedback),
            }
        }
        Kind::GoalStatus => {
            let (goal, snapshot) = goal_payload::decode_state(&payload)?;
            ServerMessage::GoalEvent {
                action: owned(name),
                goal,
                event: GoalEvent::Status(snapshot.status),
            }
        }
        Kind::GoalFinished => {
            let (goal, snapshot) = goal_payload::decode_state(&payload)?;
            let outcome = snapshot.outcome.ok_or_else(|| {
                format!("GOAL_FINISHED with the non-final status {}", snapshot.status)
            })?;
            ServerMessage::GoalEvent {
                action: owned(name),
                goal,
                event: GoalEvent::Finished(outcome),
            }
        }
        Kind::Description => ServerMessage::Description { id, description: payload },
        Kind::Error if id != 0 => ServerMessage::Reply {
            id,
            result: Err(RemoteError::new(nonzero_code(code), PROTOCOL_ERROR, message_of(&payload))),
        },
        Kind::Error => {
            return Err(format!("the server reported a protocol error: {}", message_of(&payload)));
        }
        other => return Err(format!("unexpected {other} frame from the server")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::action::{GoalId, GoalOutcome, GoalSnapshot, GoalStatus};
    use switchboard_core::compat;

    fn round_trip_server(message: ServerMessage) {
        let frame = server_outgoing(&message).expect("mappable").into_frame();
        let bytes = frame.to_vec().expect("encodable");
        let (decoded, _) = crate::frame::decode(&bytes, 1 << 20).expect("ok").expect("whole");
        assert_eq!(frame_to_server(decoded.expect("valid")).expect("server kind"), message);
    }

    fn round_trip_client(message: ClientMessage) {
        let frame = client_outgoing(&message).expect("mappable").into_frame();
        assert_eq!(frame_to_client(frame).expect("client kind"), message);
    }

    #[test]
    fn server_messages_round_trip() {
        round_trip_server(ServerMessage::Description {
            id: 9,
            description: Bytes::from_static(br#"{"name":"Thermostat"}"#),
        });
        round_trip_server(ServerMessage::Reply {
            id: 3,
            result: Ok(Bytes::from_static(b"{\"a\":1}")),
        });
        round_trip_server(ServerMessage::Reply {
            id: 4,
            result: Err(
                RemoteError::client_error("too hot").with_details(serde_json::json!({"limit": 30}))
            ),
        });
        round_trip_server(ServerMessage::Reply {
            id: 4,
            result: Err(RemoteError::internal("boom")),
        });
        round_trip_server(ServerMessage::PropertyReply {
            id: 5,
            property: "target".into(),
            version: 9,
            payload: Bytes::from_static(b"{\"celsius\":21.5}"),
            error: None,
        });
        round_trip_server(ServerMessage::PropertyReply {
            id: 6,
            property: "target".into(),
            version: 9,
            payload: Bytes::from_static(b"{\"celsius\":21.5}"),
            error: Some(RemoteError::new(ErrorCode::OutOfSync, "OutOfSync", "stale version 8")),
        });
        round_trip_server(ServerMessage::Signal {
            signal: "changed".into(),
            payload: Bytes::from_static(b"{}"),
        });
        round_trip_server(ServerMessage::PropertyValue {
            property: "target".into(),
            version: 1,
            payload: Bytes::from_static(b"{\"celsius\":20}"),
        });
    }

    #[test]
    fn client_messages_round_trip() {
        round_trip_client(ClientMessage::Describe { id: 9 });
        round_trip_client(ClientMessage::Call {
            id: 1,
            method: "boost".into(),
            payload: Bytes::from_static(b"{}"),
        });
        round_trip_client(ClientMessage::GetProperty { id: 2, property: "target".into() });
        round_trip_client(ClientMessage::SetProperty {
            id: 3,
            property: "target".into(),
            version: None,
            payload: Bytes::from_static(b"{}"),
        });
        round_trip_client(ClientMessage::SetProperty {
            id: 3,
            property: "target".into(),
            version: Some(4),
            payload: Bytes::from_static(b"{}"),
        });
        round_trip_client(ClientMessage::Subscribe { signal: "s".into() });
        round_trip_client(ClientMessage::Unsubscribe { signal: "s".into() });
        round_trip_client(ClientMessage::Watch { property: "p".into() });
        round_trip_client(ClientMessage::Unwatch { property: "p".into() });
        round_trip_client(ClientMessage::Command {
            command: "note".into(),
            payload: Bytes::from_static(b"{\"text\":\"hi\"}"),
        });
        let goal = GoalId::from("0b8c6f7e-4a4f-4a8e-9d2b-2f7f1c1f0a11");
        round_trip_client(ClientMessage::SendGoal {
            id: 4,
            action: "count".into(),
            goal: goal.clone(),
            payload: Bytes::from_static(b"{\"to\":3}"),
        });
        round_trip_client(ClientMessage::CancelGoal {
            id: 5,
            action: "count".into(),
            goal: goal.clone(),
        });
        for follow in [true, false] {
            round_trip_client(ClientMessage::AttachGoal {
                id: 6,
                action: "count".into(),
                goal: goal.clone(),
                follow,
            });
        }
    }

    #[test]
    fn goal_messages_round_trip() {
        let goal = GoalId::from("0b8c6f7e-4a4f-4a8e-9d2b-2f7f1c1f0a11");
        let action: Cow<'static, str> = "count".into();
        let reply = |result| ServerMessage::GoalReply {
            id: 9,
            action: "".into(),
            goal: goal.clone(),
            result,
        };
        round_trip_server(reply(Ok(GoalSnapshot::running(GoalStatus::Accepted))));
        round_trip_server(reply(Ok(GoalSnapshot::finished(GoalOutcome::Succeeded(
            Bytes::from_static(b"{\"total\":3}"),
        )))));
        round_trip_server(reply(Ok(GoalSnapshot::finished(GoalOutcome::Cancelled))));
        round_trip_server(reply(Err(RemoteError::new(
            ErrorCode::ServiceUnavailable,
            "TooManyGoals",
            "limit 2",
        )
        .with_details(serde_json::json!({"limit": 2})))));
        let event =
            |event| ServerMessage::GoalEvent { action: action.clone(), goal: goal.clone(), event };
        round_trip_server(event(GoalEvent::Feedback(Bytes::from_static(b"{\"value\":1}"))));
        round_trip_server(event(GoalEvent::Status(GoalStatus::Executing)));
        round_trip_server(event(GoalEvent::Status(GoalStatus::Canceling)));
        round_trip_server(event(GoalEvent::Finished(GoalOutcome::Succeeded(Bytes::from_static(
            b"{\"total\":[1,2]}",
        )))));
        round_trip_server(event(GoalEvent::Finished(GoalOutcome::Cancelled)));
        round_trip_server(event(GoalEvent::Finished(GoalOutcome::Failed(
            RemoteError::new(ErrorCode::ClientError, "BadInput", "no")
                .with_details(serde_json::json!({"field": "to"})),
        ))));
        round_trip_server(event(GoalEvent::Finished(GoalOutcome::Failed(RemoteError::internal(
            "the server failed",
        )))));
    }

    #[test]
    fn messages_encode_straight_to_frame_bytes() {
        let call = ClientMessage::Call {
            id: 7,
            method: "boost".into(),
            payload: Bytes::from_static(b"{\"minutes\":5}"),
        };
        let mut out = b"left alone".to_vec();
        encode_limited(client_outgoing(&call).expect("mappable").fields(), &mut out, 1 << 20)
            .expect("encodable");
        let mut expected = b"left alone".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 38, 0x10, 0, 0, 5]);
        expected.extend_from_slice(&7u64.to_be_bytes());
        expected.extend_from_slice(&0u64.to_be_bytes());
        expected.extend_from_slice(b"boost{\"minutes\":5}");
        assert_eq!(out, expected);

        let reply =
            ServerMessage::Reply { id: 4, result: Err(RemoteError::client_error("too hot")) };
        let outgoing = server_outgoing(&reply).expect("mappable");
        let mut out = Vec::new();
        encode_limited(outgoing.fields(), &mut out, 1 << 20).expect("encodable");
        assert_eq!(out, outgoing.into_frame().to_vec().expect("encodable"));

        let body = 20 + "boost".len() + "{\"minutes\":5}".len();
        let frame = client_outgoing(&call).expect("mappable");
        let mut out = Vec::new();
        let error = encode_limited(frame.fields(), &mut out, body - 1).expect_err("too large");
        assert_eq!(error.kind(), TransportErrorKind::FrameTooLarge);
        assert!(out.is_empty(), "nothing is written for a refused frame");
        encode_limited(frame.fields(), &mut out, body).expect("exactly at the limit");
    }

    #[test]
    fn error_frame_with_id_fails_that_request() {
        let frame = message_frame(Kind::Error, ErrorCode::PayloadError, PROTOCOL_ERROR, 12, "bad");
        match frame_to_server(frame) {
            Ok(ServerMessage::Reply { id: 12, result: Err(e) }) => {
                assert_eq!(e.name(), "ProtocolError");
                assert_eq!(e.message(), "bad");
                assert_eq!(e.code(), ErrorCode::PayloadError);
            }
            other => panic!("unexpected {other:?}"),
        }
        let anonymous = message_frame(Kind::Error, ErrorCode::PayloadError, PROTOCOL_ERROR, 0, "x");
        assert!(frame_to_server(anonymous).is_err());
    }

    #[test]
    fn direction_is_enforced() {
        assert!(frame_to_client(Frame::new(Kind::Signal, "s")).is_err());
        assert!(frame_to_client(Frame::new(Kind::Hello, "s")).is_err());
        assert!(frame_to_server(Frame::new(Kind::Call, "m")).is_err());
    }

    #[test]
    fn refusals_are_named_by_what_did_not_match() {
        let server = hello(&test_interface(), "default");
        let mut client = server.clone();
        client.protocol = 2;
        let error = compat::check(&client, &server).expect_err("mismatch");
        assert_eq!(refusal_name(&error), UNSUPPORTED_PROTOCOL);
        client = server.clone();
        client.interface = "Other".into();
        let error = compat::check(&client, &server).expect_err("mismatch");
        assert_eq!(refusal_name(&error), INCOMPATIBLE_INTERFACE);
        let frame = hello_frame(&server, Kind::Welcome);
        assert_eq!((frame.kind, frame.name.as_str()), (Kind::Welcome, "Thermostat"));
        assert_eq!(serde_json::from_slice::<Hello>(&frame.payload).unwrap(), server);
    }

    fn test_interface() -> InterfaceDescriptor {
        InterfaceDescriptor {
            name: "Thermostat".into(),
            version: "1.3.0".into(),
            title: "Thermostat".into(),
            hash: "sha256:0123456789abcdef".into(),
            description: "{}".into(),
            methods: Cow::Borrowed(&[]),
            signals: Cow::Borrowed(&[]),
            properties: Cow::Borrowed(&[]),
            topic_params: Cow::Borrowed(&[]),
            topic_templates: Cow::Borrowed(&[]),
        }
    }
}
