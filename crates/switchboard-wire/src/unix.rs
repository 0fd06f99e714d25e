//! The Unix-socket transport's frame kinds: each one's name and its code on the wire
//! (`docs/wire/unix.md`).

use std::fmt;

/// One kind of frame: the name the specification uses and the code in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameKind {
    /// The name, in capitals (`CALL`).
    pub name: &'static str,
    /// The code in the frame's header.
    pub code: u8,
}

/// `CALL (0x10)`, as the documents name a frame kind.
impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:02x})", self.name, self.code)
    }
}

macro_rules! frame_kinds {
    ($($(#[$doc:meta])* $constant:ident = $code:literal,)*) => {
        $($(#[$doc])* pub const $constant: FrameKind = FrameKind { name: stringify!($constant), code: $code };)*

        /// Every frame kind, in the order of their codes.
        pub const FRAME_KINDS: &[FrameKind] = &[$($constant),*];
    };
}

frame_kinds! {
    /// Client → server: the first frame, announcing the interface the client expects.
    HELLO = 0x01,
    /// Server → client: the handshake succeeded; describes the server.
    WELCOME = 0x02,
    /// Server → client: the handshake failed; the server closes afterwards.
    REFUSED = 0x03,
    /// Client → server: invoke a method.
    CALL = 0x10,
    /// Server → client: a method's outcome.
    REPLY = 0x11,
    /// Client → server: read a property.
    GET_PROPERTY = 0x20,
    /// Client → server: replace a property's value.
    SET_PROPERTY = 0x21,
    /// Server → client: the outcome of a property read or update.
    PROPERTY_REPLY = 0x22,
    /// Client → server: receive a property's value now and on every change.
    WATCH = 0x23,
    /// Client → server: stop receiving a property's changes.
    UNWATCH = 0x24,
    /// Server → client: a property's value.
    PROPERTY_VALUE = 0x25,
    /// Client → server: start receiving a signal.
    SUBSCRIBE = 0x30,
    /// Client → server: stop receiving a signal.
    UNSUBSCRIBE = 0x31,
    /// Server → client: a signal emission (to every subscriber, or to one client).
    SIGNAL = 0x32,
    /// Client → server: start a goal of an action.
    SEND_GOAL = 0x40,
    /// Client → server: ask for a goal to be cancelled.
    CANCEL_GOAL = 0x41,
    /// Client → server: learn a goal's state, and optionally follow it.
    ATTACH_GOAL = 0x42,
    /// Server → client: the answer to SEND_GOAL, CANCEL_GOAL or ATTACH_GOAL.
    GOAL_REPLY = 0x43,
    /// Server → client: a goal's progress.
    GOAL_FEEDBACK = 0x44,
    /// Server → client: a goal's status changed.
    GOAL_STATUS = 0x45,
    /// Server → client: a goal ended.
    GOAL_FINISHED = 0x46,
    /// Client → server: run a command; never answered.
    COMMAND = 0x50,
    /// Client → server: describe the served interface (runtime introspection).
    DESCRIBE = 0x60,
    /// Server → client: the answer to DESCRIBE, carrying the interface description JSON.
    DESCRIPTION = 0x61,
    /// Either direction: a protocol error about a frame.
    ERROR = 0x7f,
}
