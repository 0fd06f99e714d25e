//! The frame codec: the byte layout of every message on a switchboard Unix socket.
//!
//! A frame is a big-endian `u32` length followed by that many bytes:
//!
//! ```text
//! u32 length    bytes after this field; at least 20, at most the configured maximum
//! u8  kind      see [`Kind`]
//! u8  code      0 = ok, otherwise an ErrorCode number
//! u16 name_len
//! u64 id        correlation id, 0 when unused
//! u64 version   property version, 0 when unused
//! name_len bytes: name (UTF-8)
//! the rest: payload (UTF-8 JSON, may be empty)
//! ```
//!
//! `docs/wire/unix.md` describes the protocol in full. This module knows nothing about sockets:
//! [`encode`] appends a frame to a buffer and [`decode`] takes one from the front of a buffer,
//! so tests and tools can speak the raw protocol.

use std::{fmt, io};

use bytes::Bytes;
use switchboard_wire::unix;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt};

/// The bytes of a frame after the length field that are always present.
pub const HEADER_LEN: usize = 20;

/// The size of the length prefix.
pub const LENGTH_LEN: usize = 4;

/// The default largest frame (counted after the length field): 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

/// The protocol number a client announces in its HELLO.
pub const PROTOCOL_VERSION: u64 = 1;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Kind {
    /// Client → server: the first frame, announcing the interface the client expects.
    Hello = unix::HELLO.code,
    /// Server → client: the handshake succeeded; describes the server.
    Welcome = unix::WELCOME.code,
    /// Server → client: the handshake failed; the server closes afterwards.
    Refused = unix::REFUSED.code,
    /// Client → server: invoke a method.
    Call = unix::CALL.code,
    /// Server → client: a method's outcome.
    Reply = unix::REPLY.code,
    /// Client → server: read a property.
    GetProperty = unix::GET_PROPERTY.code,
    /// Client → server: replace a property's value.
    SetProperty = unix::SET_PROPERTY.code,
    /// Server → client: the outcome of a property read or update.
    PropertyReply = unix::PROPERTY_REPLY.code,
    /// Client → server: receive a property's value now and on every change.
    Watch = unix::WATCH.code,
    /// Client → server: stop receiving a property's changes.
    Unwatch = unix::UNWATCH.code,
    /// Server → client: a property's value.
    PropertyValue = unix::PROPERTY_VALUE.code,
    /// Client → server: start receiving a signal.
    Subscribe = unix::SUBSCRIBE.code,
    /// Client → server: stop receiving a signal.
    Unsubscribe = unix::UNSUBSCRIBE.code,
    /// Server → client: a signal emission (to every subscriber, or to one client).
    Signal = unix::SIGNAL.code,
    /// Client → server: start a goal of an action.
    SendGoal = unix::SEND_GOAL.code,
    /// Client → server: ask for a goal to be cancelled.
    CancelGoal = unix::CANCEL_GOAL.code,
    /// Client → server: learn a goal's state, and optionally follow it.
    AttachGoal = unix::ATTACH_GOAL.code,
    /// Server → client: the answer to SEND_GOAL, CANCEL_GOAL or ATTACH_GOAL.
    GoalReply = unix::GOAL_REPLY.code,
    /// Server → client: a goal's progress.
    GoalFeedback = unix::GOAL_FEEDBACK.code,
    /// Server → client: a goal's status changed.
    GoalStatus = unix::GOAL_STATUS.code,
    /// Server → client: a goal ended.
    GoalFinished = unix::GOAL_FINISHED.code,
    /// Client → server: run a command; never answered.
    Command = unix::COMMAND.code,
    /// Client → server: describe the served interface (runtime introspection).
    Describe = unix::DESCRIBE.code,
    /// Server → client: the answer to DESCRIBE, carrying the interface description JSON.
    Description = unix::DESCRIPTION.code,
    /// Either direction: a protocol error about a frame.
    Error = unix::ERROR.code,
}

impl Kind {
    /// Every kind this version of the protocol defines.
    pub const ALL: [Kind; 25] = [
        Kind::Hello,
        Kind::Welcome,
        Kind::Refused,
        Kind::Call,
        Kind::Reply,
        Kind::GetProperty,
        Kind::SetProperty,
        Kind::PropertyReply,
        Kind::Watch,
        Kind::Unwatch,
        Kind::PropertyValue,
        Kind::Subscribe,
        Kind::Unsubscribe,
        Kind::Signal,
        Kind::SendGoal,
        Kind::CancelGoal,
        Kind::AttachGoal,
        Kind::GoalReply,
        Kind::GoalFeedback,
        Kind::GoalStatus,
        Kind::GoalFinished,
        Kind::Command,
        Kind::Describe,
        Kind::Description,
        Kind::Error,
    ];

    /// Maps a wire byte to a kind; reserved and unknown values give `None`.
    pub fn from_u8(byte: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_u8() == byte)
    }

    /// The wire byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The upper-case name used in the protocol document, e.g. `CALL`.
    pub fn name(self) -> &'static str {
        unix::FRAME_KINDS
            .iter()
            .find(|kind| kind.code == self.as_u8())
            .map_or("?", |kind| kind.name)
    }

    /// True for kinds a client may send.
    pub fn sent_by_client(self) -> bool {
        matches!(
            self,
            Kind::Hello
                | Kind::Call
                | Kind::GetProperty
                | Kind::SetProperty
                | Kind::Watch
                | Kind::Unwatch
                | Kind::Subscribe
                | Kind::Unsubscribe
                | Kind::SendGoal
                | Kind::CancelGoal
                | Kind::AttachGoal
                | Kind::Command
                | Kind::Describe
                | Kind::Error
        )
    }

    /// True for kinds a server may send.
    pub fn sent_by_server(self) -> bool {
        matches!(
            self,
            Kind::Welcome
                | Kind::Refused
                | Kind::Reply
                | Kind::PropertyReply
                | Kind::PropertyValue
                | Kind::Signal
                | Kind::GoalReply
                | Kind::GoalFeedback
                | Kind::GoalStatus
                | Kind::GoalFinished
                | Kind::Error
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the frame is.
    pub kind: Kind,
    /// 0 for success, otherwise an `ErrorCode` number.
    pub code: u8,
    /// The correlation id, 0 when unused.
    pub id: u64,
    /// The property version, 0 when unused.
    pub version: u64,
    /// A method, property, signal, interface or error name.
    pub name: String,
    /// UTF-8 JSON, possibly empty.
    pub payload: Bytes,
}

impl Frame {
    /// A frame of `kind` with `name` and every other field zero or empty.
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Frame { kind, code: 0, id: 0, version: 0, name: name.into(), payload: Bytes::new() }
    }

    /// Sets the code.
    pub fn with_code(mut self, code: u8) -> Self {
        self.code = code;
        self
    }

    /// Sets the correlation id.
    pub fn with_id(mut self, id: u64) -> Self {
        self.id = id;
        self
    }

    /// Sets the property version.
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    /// Sets the payload.
    pub fn with_payload(mut self, payload: impl Into<Bytes>) -> Self {
        self.payload = payload.into();
        self
    }

    /// The value of the length field this frame encodes to.
    pub fn body_len(&self) -> usize {
        self.fields().body_len()
    }

    /// The number of bytes this frame encodes to, length field included.
    pub fn encoded_len(&self) -> usize {
        LENGTH_LEN + self.body_len()
    }

    /// Encodes the frame into a new buffer.
    pub fn to_vec(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        encode(self, &mut out)?;
        Ok(out)
    }

    /// The frame's fields, borrowed.
    pub fn fields(&self) -> FrameRef<'_> {
        FrameRef {
            kind: self.kind,
            code: self.code,
            id: self.id,
            version: self.version,
            name: &self.name,
            payload: &self.payload,
        }
    }
}

/// A frame whose name and payload are borrowed: what a sender encodes straight from the
/// message it holds, without building a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// What the frame is.
    pub kind: Kind,
    /// 0 for success, otherwise an `ErrorCode` number.
    pub code: u8,
    /// The correlation id, 0 when unused.
    pub id: u64,
    /// The property version, 0 when unused.
    pub version: u64,
    /// A method, property, signal, interface or error name.
    pub name: &'a str,
    /// UTF-8 JSON, possibly empty.
    pub payload: &'a [u8],
}

impl FrameRef<'_> {
    /// The value of the length field this frame encodes to.
    pub fn body_len(&self) -> usize {
        HEADER_LEN + self.name.len() + self.payload.len()
    }

    /// Appends the frame, length field included, to `out`; see [`encode`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let name_len = u16::try_from(self.name.len())
            .map_err(|_| FrameError::NameTooLong { length: self.name.len() })?;
        let body_len = self.body_len();
        let length = u32::try_from(body_len).map_err(|_| FrameError::TooLarge {
            length: body_len as u64,
            limit: u32::MAX as usize,
        })?;
        out.reserve(LENGTH_LEN + body_len);
        out.extend_from_slice(&length.to_be_bytes());
        out.push(self.kind.as_u8());
        out.push(self.code);
        out.extend_from_slice(&name_len.to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(self.payload);
        Ok(())
    }
}

/// Why bytes are not a valid frame, or a frame cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length field exceeds the limit. The stream cannot be resynchronised.
    #[error("frame of {length} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The declared length.
        length: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A name longer than a `u16` can count.
    #[error("name of {length} bytes is longer than the limit of 65535 bytes")]
    NameTooLong {
        /// The name's length.
        length: usize,
    },
    /// The frame was delimited correctly but its contents are invalid; the stream stays usable.
    #[error("malformed frame: {reason}")]
    Malformed {
        /// The frame's id if the header was long enough to hold one, else 0.
        id: u64,
        /// What is wrong, for people.
        reason: String,
    },
}

impl FrameError {
    fn malformed(id: u64, reason: impl Into<String>) -> Self {
        FrameError::Malformed { id, reason: reason.into() }
    }
}

/// Appends `frame`, length field included, to `out`.
///
/// Fails only when the name is longer than 65535 bytes or the frame longer than `u32::MAX`;
/// callers check their own size limit with [`Frame::body_len`].
pub fn encode(frame: &Frame, out: &mut Vec<u8>) -> Result<(), FrameError> {
    frame.fields().encode(out)
}

/// The id field of a body, if the body is long enough to hold one.
fn body_id(body: &[u8]) -> u64 {
    body.get(4..12).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes)
}

fn be_u64(bytes: &[u8], at: usize) -> u64 {
    bytes.get(at..at + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes)
}

/// Decodes the bytes after the length field of one frame.
pub fn decode_body(body: &[u8]) -> Result<Frame, FrameError> {
    let id = body_id(body);
    if body.len() < HEADER_LEN {
        return Err(FrameError::malformed(
            id,
            format!("frame of {} bytes is shorter than the 20-byte header", body.len()),
        ));
    }
    let kind_byte = body[0];
    let code = body[1];
    let name_len = usize::from(u16::from_be_bytes([body[2], body[3]]));
    let version = be_u64(body, 12);
    let Some(kind) = Kind::from_u8(kind_byte) else {
        return Err(FrameError::malformed(id, format!("unknown frame kind 0x{kind_byte:02x}")));
    };
    let rest = &body[HEADER_LEN..];
    if name_len > rest.len() {
        return Err(FrameError::malformed(
            id,
            format!("name length {name_len} overruns the {} bytes left in the frame", rest.len()),
        ));
    }
    let (name, payload) = rest.split_at(name_len);
    let name = std::str::from_utf8(name)
        .map_err(|_| FrameError::malformed(id, "frame name is not valid UTF-8"))?;
    Ok(Frame {
        kind,
        code,
        id,
        version,
        name: name.to_owned(),
        payload: Bytes::copy_from_slice(payload),
    })
}

/// Decodes one frame from the front of `buf`.
///
/// - `Ok(None)`: `buf` does not yet hold a whole frame; read more and call again.
/// - `Ok(Some((result, consumed)))`: the first `consumed` bytes were one frame; `result` is the
///   frame or why it is malformed. Either way the stream stays in sync: drop `consumed` bytes.
/// - `Err(FrameError::TooLarge)`: the length field exceeds `max_frame_size`; the stream cannot
///   be resynchronised and should be closed.
#[allow(clippy::type_complexity)]
pub fn decode(
    buf: &[u8],
    max_frame_size: usize,
) -> Result<Option<(Result<Frame, FrameError>, usize)>, FrameError> {
    let Some(prefix) = buf.get(..LENGTH_LEN) else {
        return Ok(None);
    };
    let length = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let length_usize = length as usize;
    if length_usize > max_frame_size {
        return Err(FrameError::TooLarge { length: u64::from(length), limit: max_frame_size });
    }
    let Some(body) = buf.get(LENGTH_LEN..).and_then(|rest| rest.get(..length_usize)) else {
        return Ok(None);
    };
    Ok(Some((decode_body(body), LENGTH_LEN + length_usize)))
}

/// What [`read_frame`] found on a stream.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// A valid frame.
    Frame(Frame),
    /// A correctly delimited but invalid frame; the stream is still in sync.
    Malformed(FrameError),
    /// The length field exceeded the limit; the stream is out of sync.
    TooLarge(FrameError),
    /// The peer closed the stream (cleanly or in the middle of a frame).
    Eof,
}

/// Reads frames up to this size with one `read_exact` into a pre-sized buffer; larger ones grow
/// the buffer only as bytes actually arrive, so a lying length field cannot reserve memory.
const PRESIZE_LIMIT: usize = 64 * 1024;

/// Reads one whole frame from `reader`, handling partial reads, using `buf` as scratch space.
pub(crate) async fn read_frame<R>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max_frame_size: usize,
) -> io::Result<ReadOutcome>
where
    R: AsyncRead + Unpin,
{
    let Some(length) = read_length(reader).await? else {
        return Ok(ReadOutcome::Eof);
    };
    read_body(reader, buf, length, max_frame_size).await
}

/// Takes a frame that is already whole in `reader`'s buffer, without waiting and without a
/// timer: the usual case on a busy connection. `None` when the buffer holds no whole frame of
/// at most [`PRESIZE_LIMIT`] bytes (nor one over `max_frame_size`): read it the slow way then.
pub(crate) fn take_buffered<R>(
    reader: &mut tokio::io::BufReader<R>,
    max_frame_size: usize,
) -> Option<ReadOutcome>
where
    R: AsyncRead + Unpin,
{
    let available = reader.buffer();
    let prefix = available.get(..LENGTH_LEN)?;
    let length = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if length > PRESIZE_LIMIT || length > max_frame_size {
        return None;
    }
    let body = available.get(LENGTH_LEN..LENGTH_LEN + length)?;
    let outcome = match decode_body(body) {
        Ok(frame) => ReadOutcome::Frame(frame),
        Err(e) => ReadOutcome::Malformed(e),
    };
    std::pin::Pin::new(reader).consume(LENGTH_LEN + length);
    Some(outcome)
}

/// Whether a frame of `length` bytes (after the length field) is read into a pre-sized buffer;
/// a larger one grows its buffer as bytes arrive.
pub(crate) fn is_large(length: u32) -> bool {
    length as usize > PRESIZE_LIMIT
}

/// Reads a frame's length field; `None` at end of stream.
pub(crate) async fn read_length<R>(reader: &mut R) -> io::Result<Option<u32>>
where
    R: AsyncRead + Unpin,
{
    let mut prefix = [0u8; LENGTH_LEN];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => Ok(Some(u32::from_be_bytes(prefix))),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the rest of a frame whose length field said `length`, using `buf` as scratch space.
pub(crate) async fn read_body<R>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    length: u32,
    max_frame_size: usize,
) -> io::Result<ReadOutcome>
where
    R: AsyncRead + Unpin,
{
    let length_usize = length as usize;
    if length_usize > max_frame_size {
        return Ok(ReadOutcome::TooLarge(FrameError::TooLarge {
            length: u64::from(length),
            limit: max_frame_size,
        }));
    }
    buf.clear();
    if length_usize <= PRESIZE_LIMIT {
        buf.resize(length_usize, 0);
        match reader.read_exact(buf).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(ReadOutcome::Eof),
            Err(e) => return Err(e),
        }
    } else {
        let read = (&mut *reader).take(u64::from(length)).read_to_end(buf).await?;
        if read < length_usize {
            return Ok(ReadOutcome::Eof);
        }
    }
    let outcome = match decode_body(buf) {
        Ok(frame) => ReadOutcome::Frame(frame),
        Err(e) => ReadOutcome::Malformed(e),
    };
    if buf.capacity() > 4 * PRESIZE_LIMIT {
        // A large frame passed; give the memory back instead of holding it per connection.
        buf.clear();
        buf.shrink_to(PRESIZE_LIMIT);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_kind() -> impl Strategy<Value = Kind> {
        proptest::sample::select(Kind::ALL.to_vec())
    }

    fn any_frame() -> impl Strategy<Value = Frame> {
        (
            any_kind(),
            any::<u8>(),
            any::<u64>(),
            any::<u64>(),
            ".{0,40}",
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(kind, code, id, version, name, payload)| Frame {
                kind,
                code,
                id,
                version,
                name,
                payload: Bytes::from(payload),
            })
    }

    proptest! {
        #[test]
        fn round_trip(frames in proptest::collection::vec(any_frame(), 1..5)) {
            let mut buf = Vec::new();
            for f in &frames {
                encode(f, &mut buf).expect("encodable");
            }
            let mut at = 0;
            for f in &frames {
                let (got, used) = decode(&buf[at..], DEFAULT_MAX_FRAME_SIZE)
                    .expect("within limit")
                    .expect("complete");
                prop_assert_eq!(used, f.encoded_len());
                prop_assert_eq!(&got.expect("valid"), f);
                at += used;
            }
            prop_assert_eq!(at, buf.len());
            // Every strict prefix of a frame is incomplete, never an error.
            let first = frames[0].encoded_len();
            for cut in 0..first {
                prop_assert!(matches!(decode(&buf[..cut], DEFAULT_MAX_FRAME_SIZE), Ok(None)));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), limit in 0usize..300) {
            let mut at = 0;
            while let Ok(Some((_, used))) = decode(&bytes[at..], limit) {
                prop_assert!(used >= LENGTH_LEN);
                at += used;
            }
            let _ = decode_body(&bytes);
        }
    }

    #[tokio::test]
    async fn a_whole_buffered_frame_is_taken_and_a_partial_one_left() {
        use tokio::io::AsyncBufReadExt;
        let frame = Frame::new(Kind::Call, "boost").with_id(7);
        let mut bytes = frame.to_vec().expect("encodable");
        let whole = bytes.len();
        bytes.extend_from_slice(&frame.to_vec().expect("encodable")[..whole - 1]);
        let mut reader = tokio::io::BufReader::new(bytes.as_slice());
        reader.fill_buf().await.expect("in memory");
        match take_buffered(&mut reader, 1024) {
            Some(ReadOutcome::Frame(taken)) => assert_eq!(taken, frame),
            other => panic!("expected the first frame, got {other:?}"),
        }
        assert_eq!(reader.buffer().len(), whole - 1, "exactly one frame consumed");
        assert!(take_buffered(&mut reader, 1024).is_none(), "a partial frame waits");
        assert!(take_buffered(&mut reader, 4).is_none(), "one over the limit goes the slow way");
    }

    #[test]
    fn call_frame_bytes() {
        let frame = Frame::new(Kind::Call, "boost")
            .with_id(7)
            .with_payload(Bytes::from_static(b"{\"minutes\":5}"));
        let bytes = frame.to_vec().expect("encodable");
        let mut expected = vec![0, 0, 0, 38, 0x10, 0, 0, 5];
        expected.extend_from_slice(&7u64.to_be_bytes());
        expected.extend_from_slice(&0u64.to_be_bytes());
        expected.extend_from_slice(b"boost{\"minutes\":5}");
        assert_eq!(bytes, expected);
    }

    #[test]
    fn malformed_frames_keep_their_id() {
        let mut body = vec![0x10, 0, 0, 50];
        body.extend_from_slice(&9u64.to_be_bytes());
        body.extend_from_slice(&0u64.to_be_bytes());
        match decode_body(&body) {
            Err(FrameError::Malformed { id, reason }) => {
                assert_eq!(id, 9);
                assert!(reason.contains("name length"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
        body[0] = 0x45;
        assert!(matches!(decode_body(&body), Err(FrameError::Malformed { id: 9, .. })));
        assert!(matches!(decode_body(&[1, 2]), Err(FrameError::Malformed { id: 0, .. })));
        let mut bad_name = vec![0x10, 0, 0, 1];
        bad_name.extend_from_slice(&[0; 16]);
        bad_name.push(0xff);
        assert!(matches!(decode_body(&bad_name), Err(FrameError::Malformed { .. })));
    }

    #[test]
    fn too_large_is_fatal() {
        let buf = [0, 0x10, 0, 0, 0];
        assert!(matches!(
            decode(&buf, 1024),
            Err(FrameError::TooLarge { length: 0x0010_0000, limit: 1024 })
        ));
    }

    #[tokio::test]
    async fn read_frame_handles_split_input() {
        let frame = Frame::new(Kind::Signal, "changed").with_payload(vec![b'x'; 100_000]);
        let bytes = frame.to_vec().expect("encodable");
        let (mut a, mut b) = tokio::io::duplex(1000);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for chunk in bytes.chunks(777) {
                a.write_all(chunk).await.expect("write");
            }
        });
        let mut buf = Vec::new();
        match read_frame(&mut b, &mut buf, DEFAULT_MAX_FRAME_SIZE).await.expect("read") {
            ReadOutcome::Frame(got) => assert_eq!(got, frame),
            other => panic!("unexpected {other:?}"),
        }
        writer.await.expect("writer");
        assert!(matches!(read_frame(&mut b, &mut buf, 100).await, Ok(ReadOutcome::Eof)));
    }

    /// The frame kinds are the wire description's, one for one, so the generated documents
    /// name each with its code.
    #[test]
    fn kinds_are_the_wire_description() {
        let codes: Vec<u8> = Kind::ALL.iter().map(|kind| kind.as_u8()).collect();
        let described: Vec<u8> = unix::FRAME_KINDS.iter().map(|kind| kind.code).collect();
        assert_eq!(codes, described);
        assert_eq!(Kind::SetProperty.name(), "SET_PROPERTY");
    }
}
