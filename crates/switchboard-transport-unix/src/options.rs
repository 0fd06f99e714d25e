//! Tunables of the Unix transport and the access-control decision they drive.

use std::time::Duration;

use switchboard_core::PeerCredentials;

use crate::frame::{DEFAULT_MAX_FRAME_SIZE, HEADER_LEN};

/// The default of [`UnixOptions::peer_queue_bytes`]: 4 MiB.
pub const DEFAULT_PEER_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// The default of [`UnixOptions::frame_timeout`]: 30 s.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// The default of [`UnixOptions::max_connections`]: 1024.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The default of [`UnixOptions::max_connections_per_uid`]: 512.
pub const DEFAULT_MAX_CONNECTIONS_PER_UID: usize = 512;
/// The default of [`UnixOptions::read_budget`]: 256 MiB.
pub const DEFAULT_READ_BUDGET: usize = 256 * 1024 * 1024;
/// What a queued frame costs beyond its length, in bytes, when queues are counted in bytes.
pub const FRAME_OVERHEAD: usize = 64;

/// Limits, permissions and timings of a Unix endpoint.
///
/// Build one with [`UnixOptions::default`] and the `with_*` setters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnixOptions {
    /// The largest frame accepted or sent, counted after the length field. Default 16 MiB.
    pub max_frame_size: usize,
    /// The permission bits the server gives its socket file. Default `0o660`.
    pub socket_mode: u32,
    /// Users allowed to connect, besides the server's own user. See [`UnixOptions::allows`].
    pub allowed_uids: Vec<u32>,
    /// Groups whose members may connect. See [`UnixOptions::allows`].
    pub allowed_gids: Vec<u32>,
    /// Requests of one peer the server reads before their answers are written: while this many
    /// wait, it reads no further request from that peer (the peer is pushed back on, not
    /// disconnected). Default 1024.
    pub peer_queue: usize,
    /// Bytes of signal and goal-feedback frames queued per peer, each frame counted as its
    /// length plus [`FRAME_OVERHEAD`] bytes (a frame larger than the whole budget still fits
    /// alone). It absorbs bursts and short pauses of the peer; the emitter never waits for it:
    /// a signal or feedback that finds no room disconnects the peer at once as a slow consumer
    /// (it reconnects, re-subscribes, and its streams report the gap), so one slow subscriber
    /// never paces the emitter or the other subscribers.
    /// A quarter of it bounds the peer's unwritten answers (the server reads no further request
    /// while they reach it), and another quarter the other frames it is sent unasked (property
    /// values, goal status, ERROR; a peer that leaves no room is disconnected as too slow).
    /// Default 4 MiB.
    pub peer_queue_bytes: usize,
    /// The first delay before a client tries to reconnect. Default 50 ms.
    pub reconnect_initial: Duration,
    /// The longest delay between reconnect attempts. Default 2 s.
    pub reconnect_max: Duration,
    /// How long either side waits for the other's handshake frame. Default 5 s.
    pub handshake_timeout: Duration,
    /// How long the rest of a frame may take to arrive once its first byte has, after the
    /// handshake; a connection that leaves a frame half-sent for longer is closed. A connection
    /// with no frame under way may stay idle for ever. Default 30 s.
    pub frame_timeout: Duration,
    /// The most connections a server serves at once; more are refused with REFUSED
    /// `TooManyConnections`. The limit actually used is also kept below the process's
    /// open-file limit (less 64 descriptors). Default 1024.
    pub max_connections: usize,
    /// The most connections a server serves at once for one uid. Default 512.
    pub max_connections_per_uid: usize,
    /// Bytes of frames over 64 KiB a server reads at once, over all its connections. A
    /// connection whose large frame finds too little waits (its bytes stay in the kernel) until
    /// others finish; the frame timeout starts again once it may read. A frame larger than the
    /// budget is read alone. Default 256 MiB.
    pub read_budget: usize,
}

impl Default for UnixOptions {
    fn default() -> Self {
        UnixOptions {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            socket_mode: 0o660,
            allowed_uids: Vec::new(),
            allowed_gids: Vec::new(),
            peer_queue: 1024,
            peer_queue_bytes: DEFAULT_PEER_QUEUE_BYTES,
            reconnect_initial: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_uid: DEFAULT_MAX_CONNECTIONS_PER_UID,
            read_budget: DEFAULT_READ_BUDGET,
        }
    }
}

impl UnixOptions {
    /// Sets [`UnixOptions::max_frame_size`].
    pub fn with_max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`UnixOptions::socket_mode`], e.g. `0o600`.
    pub fn with_socket_mode(mut self, mode: u32) -> Self {
        self.socket_mode = mode;
        self
    }

    /// Sets [`UnixOptions::allowed_uids`].
    pub fn with_allowed_uids(mut self, uids: impl IntoIterator<Item = u32>) -> Self {
        self.allowed_uids = uids.into_iter().collect();
        self
    }

    /// Sets [`UnixOptions::allowed_gids`].
    pub fn with_allowed_gids(mut self, gids: impl IntoIterator<Item = u32>) -> Self {
        self.allowed_gids = gids.into_iter().collect();
        self
    }

    /// Sets [`UnixOptions::peer_queue`].
    pub fn with_peer_queue(mut self, frames: usize) -> Self {
        self.peer_queue = frames;
        self
    }

    /// Sets [`UnixOptions::peer_queue_bytes`].
    pub fn with_peer_queue_bytes(mut self, bytes: usize) -> Self {
        self.peer_queue_bytes = bytes;
        self
    }

    /// Sets the reconnect backoff: the first delay and the cap it doubles up to.
    pub fn with_reconnect(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_initial = initial;
        self.reconnect_max = max;
        self
    }

    /// Sets [`UnixOptions::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`UnixOptions::frame_timeout`].
    pub fn with_frame_timeout(mut self, timeout: Duration) -> Self {
        self.frame_timeout = timeout;
        self
    }

    /// Sets [`UnixOptions::max_connections`] and [`UnixOptions::max_connections_per_uid`].
    pub fn with_max_connections(mut self, total: usize, per_uid: usize) -> Self {
        self.max_connections = total;
        self.max_connections_per_uid = per_uid;
        self
    }

    /// Sets [`UnixOptions::read_budget`].
    pub fn with_read_budget(mut self, bytes: usize) -> Self {
        self.read_budget = bytes;
        self
    }

    /// The server-wide read budget actually used: at least one byte, at most `u32::MAX`.
    pub(crate) fn read_budget_bytes(&self) -> usize {
        self.read_budget.clamp(1, u32::MAX as usize)
    }

    /// The frame limit actually enforced: never below the 20-byte header, never above `u32::MAX`.
    pub(crate) fn frame_limit(&self) -> usize {
        self.max_frame_size.clamp(HEADER_LEN, u32::MAX as usize)
    }

    /// The per-peer queue capacity actually used (at least one frame).
    pub(crate) fn queue_capacity(&self) -> usize {
        self.peer_queue.max(1)
    }

    /// The per-peer stream queue budget actually used, in bytes: at least one, at most
    /// `u32::MAX`.
    pub(crate) fn stream_budget(&self) -> usize {
        self.peer_queue_bytes.clamp(1, u32::MAX as usize)
    }

    /// The per-peer byte budget of answers and of other frames: a quarter of the stream budget,
    /// at least one byte.
    pub(crate) fn small_budget(&self) -> usize {
        (self.stream_budget() / 4).max(1)
    }

    /// Decides whether a peer may use a server running as `server_uid`.
    ///
    /// With both allow-lists empty, anyone who can open the socket file is allowed (the file
    /// mode is the access control). Otherwise the peer's uid must be in `allowed_uids`, or its
    /// gid in `allowed_gids`, or be the server's own uid. A peer whose credentials are unknown
    /// is refused whenever a list is set.
    pub fn allows(&self, peer: Option<&PeerCredentials>, server_uid: u32) -> bool {
        if self.allowed_uids.is_empty() && self.allowed_gids.is_empty() {
            return true;
        }
        let Some(peer) = peer else {
            return false;
        };
        peer.uid == server_uid
            || self.allowed_uids.contains(&peer.uid)
            || self.allowed_gids.contains(&peer.gid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(uid: u32, gid: u32) -> PeerCredentials {
        PeerCredentials { uid, gid, pid: Some(1) }
    }

    #[test]
    fn empty_lists_allow_everyone() {
        let options = UnixOptions::default();
        assert!(options.allows(Some(&creds(1234, 1234)), 1000));
        assert!(options.allows(None, 1000));
    }

    #[test]
    fn lists_restrict_other_users() {
        let options = UnixOptions::default().with_allowed_uids([2000]).with_allowed_gids([300]);
        assert!(options.allows(Some(&creds(2000, 1)), 1000), "listed uid");
        assert!(options.allows(Some(&creds(5, 300)), 1000), "listed gid");
        assert!(options.allows(Some(&creds(1000, 1)), 1000), "server's own uid");
        assert!(!options.allows(Some(&creds(3000, 3000)), 1000), "unlisted");
        assert!(!options.allows(None, 1000), "unknown credentials");
        let uid_only = UnixOptions::default().with_allowed_uids([2000]);
        assert!(!uid_only.allows(Some(&creds(0, 0)), 1000), "root is not special");
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(UnixOptions::default().with_max_frame_size(3).frame_limit(), HEADER_LEN);
        assert_eq!(UnixOptions::default().with_peer_queue(0).queue_capacity(), 1);
        assert_eq!(UnixOptions::default().with_peer_queue_bytes(0).stream_budget(), 1);
        assert_eq!(UnixOptions::default().with_peer_queue_bytes(0).small_budget(), 1);
        assert_eq!(UnixOptions::default().small_budget(), 1024 * 1024);
    }
}
