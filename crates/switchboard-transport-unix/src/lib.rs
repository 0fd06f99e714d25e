//! Brokerless Unix-socket transport for switchboard: the zero-setup default.
//!
//! A server binds one stream socket per service instance and serves many clients; every client
//! holds one connection and multiplexes calls, property traffic and subscriptions over it.
//! There is no daemon: the server fans out signals and property values to each peer itself
//! ([`Fanout::PerPeer`](switchboard_core::transport::Fanout::PerPeer)).
//!
//! The wire format is described in `docs/wire/unix.md`; [`frame`] is its codec.
//!
//! # Socket location
//!
//! [`UnixEndpoint::at`] names the socket file directly. [`UnixEndpoint::default_path`] puts it at
//! `<dir>/<Interface>/<instance>.sock` where `<dir>` is [`default_socket_dir`].
//!
//! # Socket activation
//!
//! A server serves a listening socket its service manager passed (`$LISTEN_FDS`) instead of
//! binding one, when that socket is bound to the server's path or named after its interface
//! (`FileDescriptorName=`). `docs/daemons.md` shows the systemd units.
//!
//! # Slow consumers
//!
//! Each peer has bounded queues of outgoing frames, counted in bytes
//! ([`UnixOptions::peer_queue_bytes`]): signals and goal feedback, answers, and the rest.
//! The stream queue (4 MiB by default) absorbs bursts and short pauses, but the code that emits
//! never waits for the peer to read: a signal or goal feedback that finds no room, even after the
//! peer's writer has had a turn to move the queue into the socket, disconnects that peer as a
//! slow consumer, whether it stopped reading or reads more slowly than the emitter emits. An
//! emit also gives the writers a turn every so often (tokio's cooperative budget), so a loop
//! that emits and waits for nothing else, on a current-thread runtime, still has its frames
//! written as it goes.
//! So one slow subscriber costs the emitter, and every other subscriber, nothing but the frames
//! it was sent. A peer that leaves no room for another frame sent unasked (a property value, a
//! goal status) is disconnected the same way. The server counts these disconnects and logs them
//! as a warning at most once every 10 s. The client notices the disconnect, reconnects and
//! re-subscribes, and its streams report the gap (`SubscriptionError::Transport`), so a slow
//! client loses frames, visibly, but never holds up others or makes the server hold unbounded
//! memory.
//!
//! Answers to a peer's own requests are different: they have room of their own, and the server
//! reads no further request while it is taken (or while [`UnixOptions::peer_queue`] requests
//! await their answers), so a client with many calls in flight, or one that does not read its
//! answers, is slowed down, never dropped.

pub mod frame;

mod activation;
mod client;
mod discover;
mod options;
mod paths;
mod server;
mod signal;
mod wire;

pub use options::{
    DEFAULT_FRAME_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_UID,
    DEFAULT_PEER_QUEUE_BYTES, DEFAULT_READ_BUDGET, FRAME_OVERHEAD, UnixOptions,
};
pub use paths::{ParsedUrl, REGISTRATION, SCHEMES, UnixEndpoint, default_socket_dir};

/// The decoders a server and a client apply to each received frame, for the fuzz targets in
/// `fuzz/` and their corpus replay; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    use switchboard_core::message::{ClientMessage, ServerMessage};

    use crate::frame::Frame;

    /// What a server makes of a frame a client sent.
    pub fn frame_to_client(frame: Frame) -> Result<ClientMessage, String> {
        crate::wire::frame_to_client(frame)
    }

    /// What a client makes of a frame a server sent.
    pub fn frame_to_server(frame: Frame) -> Result<ServerMessage, String> {
        crate::wire::frame_to_server(frame)
    }
}
