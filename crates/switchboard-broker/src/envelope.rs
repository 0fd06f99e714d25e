//! The layer's envelope: what a message says besides its payload, in either of the two styles a
//! bus carries it (`docs/wire/brokers.md`).
//!
//! - [`EnvelopeStyle::Headers`]: `sb-…` message headers, and the payload as the body, unchanged.
//! - [`EnvelopeStyle::JsonBody`]: commlib-py's RPC envelope,
//!   `{"header":{"reply_to":…,"correlation_id":…,"timestamp":…,"content_type":"json","encoding":"utf8","agent":"switchboard","sb":{…}},"data":<payload>}`,
//!   with switchboard's fields under `header.sb`, which commlib-py ignores. The payload is
//!   spliced in on the way out and borrowed on the way in, never re-encoded.
//!
//! Signals are neither: they travel as their bare payload in both styles.

use std::{
    borrow::Cow,
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::bus::{BusMessage, EnvelopeStyle, Headers};

/// The protocol number of the brokered layer, in every presence announcement.
pub const PROTOCOL: u64 = 1;

/// Declares a wire enum with its names.
macro_rules! wire_names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant),*
        }

        impl $name {
            /// The name on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            /// Reads a name on the wire.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

wire_names! {
    /// What a message to one client is (`sb-kind`); a message without one is a method's reply.
    Kind {
        /// The answer to a method call.
        Reply = "reply",
        /// The answer to a property read or update.
        Property = "property",
        /// A property's value: a watch's first value, and every value on a property's topic.
        Value = "value",
        /// The answer to a goal, cancel or attach request.
        GoalReply = "goal-reply",
        /// An event of a goal the client follows.
        Goal = "goal",
        /// A signal to this client alone.
        Signal = "signal",
        /// The interface description.
        Description = "description",
        /// A replica took the request (`sb-ack` asked it to say so), and names itself in
        /// `sb-replica`; the answer follows.
        Taken = "taken",
    }
}

wire_names! {
    /// What a request on the control queue asks for (`sb-op`).
    Op {
        /// Read a property.
        Get = "get",
        /// Update a property.
        Set = "set",
        /// Send a property's current value to the client's inbox.
        Watch = "watch",
        /// Run a command.
        Command = "command",
        /// Start a goal.
        Goal = "goal",
        /// Cancel a goal.
        Cancel = "cancel",
        /// Learn a goal's state, and follow it.
        Attach = "attach",
        /// Describe the interface.
        Describe = "describe",
    }
}

/// Header names of [`EnvelopeStyle::Headers`]; the same names, without `sb-`, are the fields of
/// `header.sb` in [`EnvelopeStyle::JsonBody`].
pub mod header {
    /// [`Kind`](super::Kind) of a message to one client.
    pub const KIND: &str = "sb-kind";
    /// [`Op`](super::Op) of a control request.
    pub const OP: &str = "sb-op";
    /// The property, action or command a control request or answer is about.
    pub const NAME: &str = "sb-name";
    /// The correlation id, where the reply address does not carry it.
    pub const ID: &str = "sb-id";
    /// The sending client's id.
    pub const CLIENT: &str = "sb-client";
    /// The sending client's interface hash.
    pub const HASH: &str = "sb-hash";
    /// The result code of an answer: 0 (or absent) for success, else StingerIPC's codes 1–15.
    pub const CODE: &str = "sb-code";
    /// The error's stable name, on a failed answer.
    pub const ERROR: &str = "sb-error";
    /// A property value's version.
    pub const VERSION: &str = "sb-version";
    /// The kind of a goal event: `feedback`, `status` or `finished`.
    pub const GOAL: &str = "sb-goal";
    /// In a replica's answer to a goal: the replica's server id, whose own queue takes the
    /// goal's cancel and attach.
    pub const REPLICA: &str = "sb-replica";
    /// On a method call or goal request to replicas: `1` asks the replica that takes it to say
    /// so at once (`sb-kind: taken`), so that the client can fail it when that replica dies.
    pub const ACK: &str = "sb-ack";
}

/// Names of the errors the layer itself answers requests with (code 4, `PayloadError`).
pub mod refusal {
    /// The request's envelope or arguments to the layer are unreadable.
    pub const MALFORMED_REQUEST: &str = "MalformedRequest";
    /// The request (or its reply) is larger than `max_body`.
    pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";
    /// The request was made for another description of the interface (`sb-hash`).
    pub const INCOMPATIBLE_INTERFACE: &str = "IncompatibleInterface";
}

/// What a message says besides its payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Meta {
    /// What a message to one client is.
    pub kind: Option<Kind>,
    /// What a control request asks for.
    pub op: Option<Op>,
    /// The property, action, command or signal concerned.
    pub name: Option<String>,
    /// The correlation id.
    pub id: Option<String>,
    /// The sending client's id.
    pub client: Option<String>,
    /// The sending client's interface hash.
    pub hash: Option<String>,
    /// The result code; 0 is success.
    pub code: u8,
    /// The error's name, on failure.
    pub error: Option<String>,
    /// A property value's version.
    pub version: Option<u64>,
    /// The kind of a goal event.
    pub goal: Option<String>,
    /// The replica that answered a goal, or took a request: its server id.
    pub replica: Option<String>,
    /// The request asks a replica to say it took it.
    pub ack: bool,
}

/// A message of the layer: metadata, where an answer goes, and the payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    /// The metadata.
    pub meta: Meta,
    /// Where an answer goes.
    pub reply_to: Option<String>,
    /// The payload: a JSON document, carried unchanged.
    pub payload: Bytes,
}

/// A message that is not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EnvelopeError(String);

impl EnvelopeError {
    fn new(message: impl Into<String>) -> Self {
        EnvelopeError(message.into())
    }
}

/// Encodes `envelope` in `style`.
///
/// In [`EnvelopeStyle::JsonBody`] the payload is spliced into the body, so it must be JSON (an
/// empty payload stands for `{}`); anything else is refused rather than sent broken.
pub fn encode(style: EnvelopeStyle, envelope: Envelope) -> Result<BusMessage, EnvelopeError> {
    match style {
        EnvelopeStyle::Headers => Ok(BusMessage {
            headers: to_headers(&envelope.meta),
            reply_to: envelope.reply_to,
            body: envelope.payload,
            ..BusMessage::default()
        }),
        _ => {
            let body = to_json_body(&envelope)?;
            // The id goes outside the body as well, where the broker carries it: commlib-py's
            // AMQP services echo that property, never the body's.
            let correlation_id = envelope.meta.id;
            Ok(BusMessage {
                reply_to: envelope.reply_to,
                correlation_id,
                body,
                ..BusMessage::default()
            })
        }
    }
}

/// Decodes a message sent in `style`.
///
/// The reply address is the one the broker carried (a NATS reply subject, AMQP's `reply_to`),
/// else the body's `header.reply_to`. In [`EnvelopeStyle::JsonBody`] the payload is a view of
/// the body (`{}` when `data` is absent).
pub fn decode(style: EnvelopeStyle, message: BusMessage) -> Result<Envelope, EnvelopeError> {
    match style {
        EnvelopeStyle::Headers => Ok(Envelope {
            meta: from_headers(message.headers)?,
            reply_to: message.reply_to,
            payload: message.body,
        }),
        _ => from_json_body(message),
    }
}

/// Replaces control characters, which header values and names cannot hold.
fn printable(text: &str) -> Cow<'_, str> {
    // Every request's headers go through here: plain ASCII is checked byte by byte.
    let control = if text.is_ascii() {
        text.bytes().any(|b| b.is_ascii_control())
    } else {
        text.chars().any(char::is_control)
    };
    if control {
        Cow::Owned(text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect())
    } else {
        Cow::Borrowed(text)
    }
}

fn to_headers(meta: &Meta) -> Headers {
    let mut headers = Headers::default();
    let mut put = |name: &'static str, value: Option<&str>| {
        if let Some(value) = value {
            headers.insert(name, printable(value).into_owned());
        }
    };
    put(header::KIND, meta.kind.map(Kind::as_str));
    put(header::OP, meta.op.map(Op::as_str));
    put(header::NAME, meta.name.as_deref());
    put(header::ID, meta.id.as_deref());
    put(header::CLIENT, meta.client.as_deref());
    put(header::HASH, meta.hash.as_deref());
    put(header::CODE, (meta.code != 0).then(|| meta.code.to_string()).as_deref());
    put(header::ERROR, meta.error.as_deref());
    put(header::VERSION, meta.version.map(|v| v.to_string()).as_deref());
    put(header::GOAL, meta.goal.as_deref());
    put(header::REPLICA, meta.replica.as_deref());
    put(header::ACK, meta.ack.then_some("1"));
    headers
}

fn from_headers(headers: Headers) -> Result<Meta, EnvelopeError> {
    let mut meta = Meta::default();
    for (name, value) in headers {
        match &*name {
            header::KIND => meta.kind = Some(parse_kind(&value)?),
            header::OP => meta.op = Some(parse_op(&value)?),
            header::NAME => meta.name = Some(value),
            header::ID => meta.id = Some(value),
            header::CLIENT => meta.client = Some(value),
            header::HASH => meta.hash = Some(value),
            header::CODE => meta.code = parse_code(&value)?,
            header::ERROR => meta.error = Some(value),
            header::VERSION => meta.version = Some(parse_version(&value)?),
            header::GOAL => meta.goal = Some(value),
            header::REPLICA => meta.replica = Some(value),
            header::ACK => meta.ack = value.trim() == "1",
            _ => {}
        }
    }
    Ok(meta)
}

fn parse_kind(text: &str) -> Result<Kind, EnvelopeError> {
    Kind::parse(text).ok_or_else(|| EnvelopeError::new(format!("unknown message kind `{text}`")))
}

fn parse_op(text: &str) -> Result<Op, EnvelopeError> {
    Op::parse(text).ok_or_else(|| EnvelopeError::new(format!("unknown request `{text}`")))
}

fn parse_code(text: &str) -> Result<u8, EnvelopeError> {
    text.trim().parse().map_err(|_| {
        EnvelopeError::new(format!("result code `{text}` is not a number from 0 to 255"))
    })
}

fn parse_version(text: &str) -> Result<u64, EnvelopeError> {
    text.trim()
        .parse()
        .map_err(|_| EnvelopeError::new(format!("version `{text}` is not a non-negative integer")))
}

// ---------------------------------------------------------------------------------------------
// The JSON body: commlib-py's RPC envelope.

/// commlib-py's `header`, with our fields under `sb`.
#[derive(Serialize)]
struct HeaderOut<'a> {
    reply_to: &'a str,
    correlation_id: Option<&'a str>,
    timestamp: u64,
    content_type: &'static str,
    encoding: &'static str,
    agent: &'static str,
    #[serde(skip_serializing_if = "SbOut::is_empty")]
    sb: SbOut<'a>,
}

#[derive(Serialize)]
struct SbOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    goal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    ack: bool,
}

impl SbOut<'_> {
    fn is_empty(&self) -> bool {
        self.kind.is_none()
            && self.op.is_none()
            && self.name.is_none()
            && self.client.is_none()
            && self.hash.is_none()
            && self.code == 0
            && self.error.is_none()
            && self.version.is_none()
            && self.goal.is_none()
            && self.replica.is_none()
            && !self.ack
    }
}

fn is_zero(code: &u8) -> bool {
    *code == 0
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

#[derive(Deserialize)]
struct BodyIn<'a> {
    #[serde(borrow)]
    header: HeaderIn<'a>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct HeaderIn<'a> {
    #[serde(borrow, default)]
    reply_to: Option<Cow<'a, str>>,
    #[serde(default)]
    correlation_id: Option<serde_json::Value>,
    #[serde(default)]
    sb: Option<SbIn>,
}

#[derive(Deserialize)]
struct SbIn {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    code: u8,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    goal: Option<String>,
    #[serde(default)]
    replica: Option<String>,
    #[serde(default)]
    ack: bool,
}

const EMPTY_OBJECT: &[u8] = b"{}";

fn to_json_body(envelope: &Envelope) -> Result<Bytes, EnvelopeError> {
    let meta = &envelope.meta;
    let payload: &[u8] = if envelope.payload.is_empty() { EMPTY_OBJECT } else { &envelope.payload };
    if serde_json::from_slice::<&RawValue>(payload).is_err() {
        return Err(EnvelopeError::new("the payload is not JSON, so it cannot go in a JSON body"));
    }
    let header = HeaderOut {
        reply_to: envelope.reply_to.as_deref().unwrap_or(""),
        correlation_id: meta.id.as_deref(),
        timestamp: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)),
        content_type: "json",
        encoding: "utf8",
        agent: "switchboard",
        sb: SbOut {
            kind: meta.kind.map(Kind::as_str),
            op: meta.op.map(Op::as_str),
            name: meta.name.as_deref(),
            client: meta.client.as_deref(),
            hash: meta.hash.as_deref(),
            code: meta.code,
            error: meta.error.as_deref(),
            version: meta.version,
            goal: meta.goal.as_deref(),
            replica: meta.replica.as_deref(),
            ack: meta.ack,
        },
    };
    let mut body = Vec::with_capacity(payload.len() + 256);
    body.extend_from_slice(br#"{"header":"#);
    serde_json::to_writer(&mut body, &header)
        .map_err(|e| EnvelopeError::new(format!("the envelope could not be encoded: {e}")))?;
    body.extend_from_slice(br#","data":"#);
    body.extend_from_slice(payload);
    body.push(b'}');
    Ok(Bytes::from(body))
}

fn from_json_body(message: BusMessage) -> Result<Envelope, EnvelopeError> {
    let body = &message.body;
    let parsed: BodyIn<'_> = serde_json::from_slice(body).map_err(|e| {
        EnvelopeError::new(format!("not a JSON envelope (`{{\"header\":{{…}},\"data\":…}}`): {e}"))
    })?;
    let sb = parsed.header.sb;
    let mut meta = Meta::default();
    if let Some(sb) = sb {
        meta.kind = sb.kind.as_deref().map(parse_kind).transpose()?;
        meta.op = sb.op.as_deref().map(parse_op).transpose()?;
        meta.name = sb.name;
        meta.client = sb.client;
        meta.hash = sb.hash;
        meta.code = sb.code;
        meta.error = sb.error;
        meta.version = sb.version;
        meta.goal = sb.goal;
        meta.replica = sb.replica;
        meta.ack = sb.ack;
    }
    meta.id = match parsed.header.correlation_id {
        None | Some(serde_json::Value::Null) => message.correlation_id.clone(),
        Some(serde_json::Value::String(id)) => Some(id),
        Some(other) => Some(other.to_string()),
    };
    let reply_to = message
        .reply_to
        .clone()
        .or_else(|| parsed.header.reply_to.filter(|r| !r.is_empty()).map(Cow::into_owned));
    let payload = match parsed.data {
        Some(data) => body.slice_ref(data.get().as_bytes()),
        None => Bytes::from_static(EMPTY_OBJECT),
    };
    Ok(Envelope { meta, reply_to, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Envelope {
        Envelope {
            meta: Meta {
                op: Some(Op::Set),
                name: Some("setpoint".into()),
                id: Some("17".into()),
                client: Some("c0ffee".into()),
                hash: Some("sha256:00ff".into()),
                version: Some(3),
                ..Meta::default()
            },
            reply_to: Some("_sb.inbox.c0ffee".into()),
            payload: Bytes::from_static(br#"{"celsius":21.5}"#),
        }
    }

    #[test]
    fn both_styles_round_trip() {
        for style in [EnvelopeStyle::Headers, EnvelopeStyle::JsonBody] {
            let mut failed = request();
            failed.meta = Meta {
                kind: Some(Kind::Goal),
                name: Some("preheat".into()),
                code: 12,
                error: Some("OutOfSync".into()),
                goal: Some("finished".into()),
                ..Meta::default()
            };
            let mut asking = request();
            asking.meta.ack = true;
            let mut accepted = request();
            accepted.meta = Meta {
                kind: Some(Kind::GoalReply),
                name: Some("preheat".into()),
                replica: Some("5e1f".into()),
                ..Meta::default()
            };
            for envelope in [request(), failed, asking, accepted, Envelope::default()] {
                let message = encode(style, envelope.clone()).expect("encodable");
                let mut decoded = decode(style, message).expect("decodable");
                if envelope.payload.is_empty() && style == EnvelopeStyle::JsonBody {
                    assert_eq!(&decoded.payload[..], b"{}", "an empty payload stands for {{}}");
                    decoded.payload = Bytes::new();
                }
                assert_eq!(decoded, envelope, "{style:?}");
            }
        }
    }

    #[test]
    fn headers_carry_the_payload_unchanged() {
        let message = encode(EnvelopeStyle::Headers, request()).unwrap();
        assert_eq!(&message.body[..], br#"{"celsius":21.5}"#);
        let names: Vec<&str> = message.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["sb-op", "sb-name", "sb-id", "sb-client", "sb-hash", "sb-version"]);
        let mut reply = Envelope::default();
        reply.meta.error = Some("Bad\r\nName".into());
        reply.meta.code = 1;
        let message = encode(EnvelopeStyle::Headers, reply).unwrap();
        assert_eq!(message.headers.get("sb-error"), Some("Bad  Name"));
    }

    #[test]
    fn bad_headers_are_refused_clearly() {
        for (name, value, needle) in [
            ("sb-kind", "shout", "unknown message kind `shout`"),
            ("sb-op", "delete", "unknown request `delete`"),
            ("sb-code", "x", "result code"),
            ("sb-code", "300", "result code"),
            ("sb-version", "-1", "version `-1`"),
        ] {
            let message = BusMessage {
                headers: [(name, value)].into_iter().collect(),
                ..BusMessage::default()
            };
            let error = decode(EnvelopeStyle::Headers, message).unwrap_err();
            assert!(error.to_string().contains(needle), "{name}: {error}");
        }
    }

    /// A request commlib-py 0.13.2 sent (`commlib-wire/redis_rpc.txt`, 1.483 s).
    const COMMLIB_REQUEST: &str = r#"{"header":{"reply_to":"rpc-6269aeba2d6a41a8a40bedfba392fd7c","correlation_id":null,"timestamp":1796452843096763567,"content_type":"json","encoding":"utf8","agent":"commlib"},"data":{"a":0,"b":10}}"#;

    /// The reply commlib-py's service sent to it.
    const COMMLIB_REPLY: &str = r#"{"header":{"reply_to":"","correlation_id":null,"timestamp":1796452843099860073,"content_type":"json","encoding":"utf8","agent":"commlib"},"data":{"c":10}}"#;

    #[test]
    fn reads_a_commlib_request() {
        let body = Bytes::from_static(COMMLIB_REQUEST.as_bytes());
        let envelope = decode(EnvelopeStyle::JsonBody, BusMessage::new(body.clone())).unwrap();
        assert_eq!(envelope.reply_to.as_deref(), Some("rpc-6269aeba2d6a41a8a40bedfba392fd7c"));
        assert_eq!(envelope.meta, Meta::default(), "commlib sends none of our fields");
        assert_eq!(&envelope.payload[..], br#"{"a":0,"b":10}"#);
        let (whole, part) = (body.as_ptr_range(), envelope.payload.as_ptr_range());
        assert!(whole.start <= part.start && part.end <= whole.end, "the payload is borrowed");
        // A reply address the broker carried (AMQP's `reply_to`) wins over the body's.
        let mut carried = BusMessage::new(body);
        carried.reply_to = Some("amq.rabbitmq.reply-to.g1h2".into());
        let envelope = decode(EnvelopeStyle::JsonBody, carried).unwrap();
        assert_eq!(envelope.reply_to.as_deref(), Some("amq.rabbitmq.reply-to.g1h2"));
    }

    #[test]
    fn a_correlation_id_outside_the_body_is_read_and_written() {
        // commlib-py's AMQP service echoes the request's `correlation_id` property, never the
        // body's: a reply with `null` in its body takes the id the broker carried.
        let mut reply = BusMessage::new(Bytes::from_static(COMMLIB_REPLY.as_bytes()));
        reply.correlation_id = Some("17".into());
        let envelope = decode(EnvelopeStyle::JsonBody, reply).unwrap();
        assert_eq!(envelope.meta.id.as_deref(), Some("17"));
        // The body's own id wins where it has one.
        let mut ours = encode(EnvelopeStyle::JsonBody, request()).unwrap();
        assert_eq!(ours.correlation_id.as_deref(), Some("17"), "written outside the body too");
        ours.correlation_id = Some("99".into());
        assert_eq!(decode(EnvelopeStyle::JsonBody, ours).unwrap().meta.id.as_deref(), Some("17"));
        // Headers carry the id themselves.
        let headers = encode(EnvelopeStyle::Headers, request()).unwrap();
        assert_eq!(headers.correlation_id, None);
    }

    #[test]
    fn writes_what_commlib_reads() {
        let reply = Envelope { payload: Bytes::from_static(br#"{"c":10}"#), ..Envelope::default() };
        let ours: serde_json::Value =
            serde_json::from_slice(&encode(EnvelopeStyle::JsonBody, reply).unwrap().body).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(COMMLIB_REPLY).unwrap();
        // The same keys, in the same shape; only the timestamp and the agent differ.
        let keys = |v: &serde_json::Value| {
            v["header"].as_object().unwrap().keys().cloned().collect::<Vec<_>>()
        };
        assert_eq!(keys(&ours), keys(&theirs));
        for key in ["reply_to", "correlation_id", "content_type", "encoding"] {
            assert_eq!(ours["header"][key], theirs["header"][key], "{key}");
        }
        assert!(
            ours["header"]["timestamp"].as_u64().is_some_and(|t| t > 1_700_000_000_000_000_000)
        );
        assert_eq!(ours["header"]["agent"], "switchboard");
        assert_eq!(ours["data"], theirs["data"]);
        // Our fields go under `header.sb`, which commlib ignores.
        let mut failed = Envelope::default();
        failed.meta.code = 2;
        failed.meta.error = Some("Internal".into());
        failed.meta.id = Some("9".into());
        let body = encode(EnvelopeStyle::JsonBody, failed).unwrap().body;
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["header"]["sb"], serde_json::json!({"code": 2, "error": "Internal"}));
        assert_eq!(value["header"]["correlation_id"], "9");
        assert_eq!(value["data"], serde_json::json!({}));
    }

    #[test]
    fn junk_is_refused_not_sent() {
        let junk = Envelope { payload: Bytes::from_static(b"{\"a\":"), ..Envelope::default() };
        assert!(encode(EnvelopeStyle::JsonBody, junk).is_err());
        for body in [&b"not json"[..], b"{}", br#"{"header":1,"data":{}}"#, b"\xff"] {
            let message = BusMessage::new(Bytes::copy_from_slice(body));
            assert!(decode(EnvelopeStyle::JsonBody, message).is_err(), "{body:?}");
        }
        let numeric = br#"{"header":{"correlation_id":42},"data":[1]}"#;
        let envelope =
            decode(EnvelopeStyle::JsonBody, BusMessage::new(Bytes::from_static(numeric))).unwrap();
        assert_eq!((envelope.meta.id.as_deref(), &envelope.payload[..]), (Some("42"), &b"[1]"[..]));
    }
}
