//! The connecting side: handshake, direct writes from the caller, the reader task, and
//! reconnection with exponential backoff.

use std::{
    io,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::task::AtomicWaker;

use switchboard_core::{
    TransportError, TransportErrorKind,
    compat::{self, Agreement, Hello},
    message::ClientMessage,
    transport::{BoxFuture, ClientInbox, ClientTransport, ServiceTarget},
};
use tokio::{
    io::{AsyncWriteExt, BufReader},
    net::{
        UnixStream,
        unix::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{Mutex, MutexGuard},
    time::timeout,
};
use tracing::{debug, warn};

use crate::{
    frame::{Kind, ReadOutcome, read_frame},
    options::UnixOptions,
    signal::wait_until,
    wire,
};

/// The read buffer size per connection.
const READ_BUFFER: usize = 64 * 1024;
/// The shortest pause between reconnect attempts, whatever the options say.
const MIN_BACKOFF: Duration = Duration::from_millis(1);

/// The write half of one live connection, tagged with that connection's number.
#[derive(Debug)]
struct Slot {
    generation: u64,
    writer: OwnedWriteHalf,
    /// Where each frame is encoded, straight from its message, before it is written.
    buf: Vec<u8>,
}

impl Slot {
    fn new(generation: u64, writer: OwnedWriteHalf) -> Self {
        Slot { generation, writer, buf: Vec::new() }
    }
}

/// A frame buffer larger than this is given back after its write.
const KEEP_BUFFER: usize = 64 * 1024;

/// State shared by the caller-facing handle and the background reader task.
struct ClientShared {
    path: PathBuf,
    options: UnixOptions,
    hello: Hello,
    inbox: Arc<dyn ClientInbox>,
    writer: Mutex<Option<Slot>>,
    /// The number of the live connection; 0 while there is none.
    live: AtomicU64,
    /// The number of the last connection a sender found broken; its reader stops on seeing it.
    lost: AtomicU64,
    closed: AtomicBool,
    /// Wakes the reader task when `lost` or `closed` changes; only that task waits on it.
    reader_waker: AtomicWaker,
}

impl std::fmt::Debug for ClientShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientShared")
            .field("path", &self.path)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl ClientShared {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Marks the client closed; returns whether it already was.
    fn set_closed(&self) -> bool {
        let was = self.closed.swap(true, Ordering::SeqCst);
        self.reader_waker.wake();
        was
    }

    /// Resolves when the client is closed.
    fn closing(&self) -> impl Future<Output = ()> + '_ {
        wait_until(&self.reader_waker, || self.is_closed())
    }

    /// Tells the reader of connection `generation` that a sender found it broken.
    fn set_lost(&self, generation: u64) {
        self.lost.store(generation, Ordering::SeqCst);
        self.reader_waker.wake();
    }

    /// Resolves when a sender found connection `generation` broken.
    fn lost(&self, generation: u64) -> impl Future<Output = ()> + '_ {
        wait_until(&self.reader_waker, move || self.lost.load(Ordering::SeqCst) == generation)
    }

    /// Marks connection `generation` as gone, if it is still the live one.
    fn mark_lost(&self, generation: u64) {
        let _ = self.live.compare_exchange(generation, 0, Ordering::SeqCst, Ordering::SeqCst);
        if let Ok(mut slot) = self.writer.try_lock()
            && slot.as_ref().is_some_and(|s| s.generation == generation)
        {
            *slot = None;
        }
    }
}

/// A client connection that reconnects by itself.
#[derive(Debug)]
pub(crate) struct UnixClient {
    shared: Arc<ClientShared>,
}

/// Fails a write that did not finish (error or cancellation) so the stream, which may now hold
/// half a frame, is never used again.
struct WriteGuard<'a> {
    slot: MutexGuard<'a, Option<Slot>>,
    shared: &'a ClientShared,
    generation: u64,
    done: bool,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            *self.slot = None;
            let _ = self.shared.live.compare_exchange(
                self.generation,
                0,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            self.shared.set_lost(self.generation);
        }
    }
}

fn not_connected(path: &Path) -> TransportError {
    TransportError::not_connected(format!("not connected to {}", path.display()))
}

impl ClientTransport for UnixClient {
    fn send(&self, message: ClientMessage) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let shared = &*self.shared;
            if shared.is_closed() {
                return Err(TransportError::new(
                    TransportErrorKind::Closed,
                    "the connection was closed by its owner",
                ));
            }
            let frame = wire::client_outgoing(&message)?;
            let limit = shared.options.frame_limit();
            wire::check_size(frame.fields(), limit)?;
            let generation = shared.live.load(Ordering::SeqCst);
            if generation == 0 {
                return Err(not_connected(&shared.path));
            }
            let slot = shared.writer.lock().await;
            let generation = shared.live.load(Ordering::SeqCst);
            let mut guard = WriteGuard { slot, shared, generation, done: false };
            let result = match guard.slot.as_mut() {
                Some(conn) if generation != 0 && conn.generation == generation => {
                    conn.buf.clear();
                    if let Err(error) = wire::encode_limited(frame.fields(), &mut conn.buf, limit) {
                        guard.done = true;
                        return Err(error);
                    }
                    let written = conn.writer.write_all(&conn.buf).await;
                    if conn.buf.capacity() > KEEP_BUFFER {
                        conn.buf = Vec::new();
                    }
                    written
                }
                _ => {
                    guard.done = true;
                    return Err(not_connected(&shared.path));
                }
            };
            match result {
                Ok(()) => {
                    guard.done = true;
                    Ok(())
                }
                Err(e) => Err(TransportError::io(
                    TransportErrorKind::Disconnected,
                    format!("lost the connection to {}", shared.path.display()),
                    e,
                )),
            }
        })
    }

    fn can_push_back(&self) -> bool {
        // While this client does not read, the server's stream queue for it (4 MiB by default)
        // takes what it sends; only when that is full is the connection dropped (and the gap
        // reported), so a short pause loses nothing.
        true
    }

    fn close(&self) {
        let shared = &*self.shared;
        if shared.set_closed() {
            return;
        }
        shared.live.store(0, Ordering::SeqCst);
        if let Ok(mut slot) = shared.writer.try_lock() {
            *slot = None;
        }
    }
}

impl Drop for UnixClient {
    fn drop(&mut self) {
        self.close();
    }
}

fn connect_error(path: &Path, e: io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => TransportError::io(
            TransportErrorKind::NotFound,
            format!("no server is listening on {}", path.display()),
            e,
        ),
        _ => TransportError::from_io(format!("cannot connect to {}", path.display()), e),
    }
}

type Reader = BufReader<OwnedReadHalf>;

/// Connects and completes the handshake; returns what this client agreed with the server (the
/// members it lacks).
async fn open(
    path: &Path,
    options: &UnixOptions,
    hello: &Hello,
) -> Result<(Reader, OwnedWriteHalf, Agreement), TransportError> {
    let exchange = async {
        let stream = UnixStream::connect(path).await.map_err(|e| connect_error(path, e))?;
        let (read, mut writer) = stream.into_split();
        let mut reader = BufReader::with_capacity(READ_BUFFER, read);
        let bytes = wire::hello_frame(hello, Kind::Hello)
            .to_vec()
            .map_err(|e| TransportError::new(TransportErrorKind::Protocol, e.to_string()))?;
        let lost = |e: io::Error| {
            TransportError::io(
                TransportErrorKind::Disconnected,
                format!("the server at {} hung up during the handshake", path.display()),
                e,
            )
        };
        writer.write_all(&bytes).await.map_err(lost)?;
        let mut buf = Vec::new();
        let answer = read_frame(&mut reader, &mut buf, wire::HELLO_LIMIT).await.map_err(lost)?;
        Ok::<_, TransportError>((reader, writer, answer))
    };
    let (reader, writer, answer) = match timeout(options.handshake_timeout, exchange).await {
        Ok(result) => result?,
        Err(_elapsed) => {
            return Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!(
                    "the server at {} did not answer the handshake within {:?}",
                    path.display(),
                    options.handshake_timeout
                ),
            ));
        }
    };
    let frame = match answer {
        ReadOutcome::Frame(frame) => frame,
        ReadOutcome::Eof => {
            return Err(TransportError::disconnected(format!(
                "the server at {} closed the connection during the handshake",
                path.display()
            )));
        }
        ReadOutcome::Malformed(e) | ReadOutcome::TooLarge(e) => {
            return Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("unreadable handshake answer from {}: {e}", path.display()),
            ));
        }
    };
    match frame.kind {
        Kind::Welcome => {
            // The server has checked this client already; the same check on this side learns
            // which members the server lacks (none when the hashes are equal, or when an older
            // server sends no description, which it does only for an equal hash).
            let agreement = match serde_json::from_slice::<Hello>(&frame.payload) {
                Ok(server) => {
                    debug!(server = %server.summary(), instance = %server.instance, "handshake done");
                    compat::check(hello, &server).unwrap_or_default()
                }
                Err(_) => Agreement::default(),
            };
            Ok((reader, writer, agreement))
        }
        Kind::Refused => {
            let kind = match frame.name.as_str() {
                wire::INCOMPATIBLE_INTERFACE => TransportErrorKind::IncompatibleInterface,
                wire::ACCESS_DENIED | wire::TOO_MANY_CONNECTIONS => {
                    TransportErrorKind::AccessDenied
                }
                _ => TransportErrorKind::Protocol,
            };
            let mut message = wire::message_of(&frame.payload);
            if message.is_empty() {
                message = format!(
                    "the server at {} refused the connection: {}",
                    path.display(),
                    frame.name
                );
            }
            Err(TransportError::new(kind, message))
        }
        other => Err(TransportError::new(
            TransportErrorKind::Protocol,
            format!("expected WELCOME or REFUSED from {}, got {other}", path.display()),
        )),
    }
}

/// Connects, completes the handshake and starts the reader task.
pub(crate) async fn connect(
    path: PathBuf,
    options: UnixOptions,
    target: ServiceTarget,
    inbox: Arc<dyn ClientInbox>,
) -> Result<Arc<UnixClient>, TransportError> {
    let hello = wire::hello(&target.interface, &target.instance);
    let (reader, writer, agreement) = open(&path, &options, &hello).await?;
    inbox.agreed(agreement);
    let shared = Arc::new(ClientShared {
        path,
        options,
        hello,
        inbox,
        writer: Mutex::new(Some(Slot::new(1, writer))),
        live: AtomicU64::new(1),
        lost: AtomicU64::new(0),
        closed: AtomicBool::new(false),
        reader_waker: AtomicWaker::new(),
    });
    tokio::spawn(run(shared.clone(), reader));
    Ok(Arc::new(UnixClient { shared }))
}

/// The life of a client: read until the connection is lost, report it, reconnect, repeat.
async fn run(shared: Arc<ClientShared>, mut reader: Reader) {
    let mut generation = 1;
    let mut buf = Vec::new();
    loop {
        let reason = tokio::select! {
            biased;
            () = shared.closing() => break,
            reason = read_until_lost(&shared, &mut reader, &mut buf, generation) => reason,
        };
        shared.mark_lost(generation);
        drop(reader);
        if shared.is_closed() {
            break;
        }
        warn!(path = %shared.path.display(), %reason, "connection lost; reconnecting");
        shared.inbox.disconnected(TransportError::disconnected(format!(
            "lost the connection to {}: {reason}",
            shared.path.display()
        )));
        generation += 1;
        match reconnect(&shared, generation).await {
            Some(next) => reader = next,
            None => break,
        }
    }
    shared.live.store(0, Ordering::SeqCst);
    debug!(path = %shared.path.display(), "client stopped");
}

/// Reads and delivers frames until the connection fails; returns why it ended.
async fn read_until_lost(
    shared: &ClientShared,
    reader: &mut Reader,
    buf: &mut Vec<u8>,
    generation: u64,
) -> String {
    let limit = shared.options.frame_limit();
    loop {
        // Only the wait for this connection's failure may interrupt a read: a read cut short
        // leaves the stream mid-frame, which is fine only because the stream is abandoned.
        let outcome = tokio::select! {
            biased;
            () = shared.lost(generation) => return "a write failed".to_owned(),
            outcome = read_frame(reader, buf, limit) => outcome,
        };
        match outcome {
            Ok(ReadOutcome::Frame(frame)) => match wire::frame_to_server(frame) {
                Ok(message) => {
                    // A full local reader holds the connection: the server waits, nothing drops.
                    if let Some(backpressure) = shared.inbox.deliver(message) {
                        backpressure.await;
                    }
                }
                Err(reason) => warn!(path = %shared.path.display(), "{reason}"),
            },
            Ok(ReadOutcome::Malformed(e)) => {
                warn!(path = %shared.path.display(), error = %e, "ignoring a malformed frame from the server");
            }
            Ok(ReadOutcome::TooLarge(e)) => return e.to_string(),
            Ok(ReadOutcome::Eof) => return "the server closed the connection".to_owned(),
            Err(e) => return e.to_string(),
        }
    }
}

/// Reconnects with exponential backoff until it succeeds or the client is closed.
async fn reconnect(shared: &ClientShared, generation: u64) -> Option<Reader> {
    let options = &shared.options;
    let max = options.reconnect_max.max(MIN_BACKOFF);
    let mut delay = options.reconnect_initial.clamp(MIN_BACKOFF, max);
    loop {
        tokio::select! {
            biased;
            () = shared.closing() => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = delay.saturating_mul(2).min(max);
        let attempt = tokio::select! {
            biased;
            () = shared.closing() => return None,
            attempt = open(&shared.path, options, &shared.hello) => attempt,
        };
        let (reader, mut writer, agreement) = match attempt {
            Ok(opened) => opened,
            Err(e) if e.kind() == TransportErrorKind::NotFound => {
                debug!(path = %shared.path.display(), error = %e, "server not back yet");
                continue;
            }
            Err(e) => {
                warn!(path = %shared.path.display(), error = %e, "reconnect attempt failed");
                continue;
            }
        };
        let mut slot = tokio::select! {
            biased;
            () = shared.closing() => return None,
            slot = shared.writer.lock() => slot,
        };
        // Restore subscriptions and watches before any caller can write. Callers that send
        // meanwhile find the connection live and wait for the writer, instead of being told
        // there is no connection when one is about to be there.
        shared.live.store(generation, Ordering::SeqCst);
        shared.inbox.agreed(agreement);
        let mut restored = true;
        let mut bytes = Vec::new();
        for message in shared.inbox.reconnected() {
            bytes.clear();
            let encoded = wire::client_outgoing(&message).and_then(|frame| {
                wire::encode_limited(frame.fields(), &mut bytes, options.frame_limit())
            });
            if let Err(e) = encoded {
                warn!(error = %e, "cannot restore a subscription");
                continue;
            }
            let written = timeout(options.handshake_timeout, writer.write_all(&bytes)).await;
            if !matches!(written, Ok(Ok(()))) {
                debug!("connection failed while restoring subscriptions");
                restored = false;
                break;
            }
        }
        if !restored {
            shared.live.store(0, Ordering::SeqCst);
            continue;
        }
        if shared.is_closed() {
            return None;
        }
        *slot = Some(Slot::new(generation, writer));
        debug!(path = %shared.path.display(), "reconnected");
        return Some(reader);
    }
}
