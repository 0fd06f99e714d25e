//! Who is calling: the identity of a connected client as the server's handlers see it.

use std::fmt;

/// Identifies one client connection for as long as the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer-{}", self.0)
    }
}

/// The operating-system identity of a peer process, where the transport can know it
/// (`SO_PEERCRED` on Unix sockets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerCredentials {
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
    /// The peer's process id, when the kernel reports one.
    pub pid: Option<i32>,
}

/// What a handler knows about the request it is serving.
#[derive(Debug, Clone)]
pub struct CallContext {
    peer: PeerId,
    credentials: Option<PeerCredentials>,
}

impl CallContext {
    /// Creates a context; transports and the server core build these.
    pub fn new(peer: PeerId, credentials: Option<PeerCredentials>) -> Self {
        CallContext { peer, credentials }
    }

    /// The connection the request came from.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The caller's uid, gid and pid, when the transport knows them.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        self.credentials
    }
}
