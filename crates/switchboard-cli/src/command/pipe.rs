//! `switchboard pipe`: a named-pipe gateway to one service, for bash, awk and anything that can
//! open a file.
//!
//! `DIR/requests` takes one request per line; `DIR/responses` gives one JSON line per response
//! or event. The robustness policies (prior-art §2.7) are documented in `docs/shell.md`:
//!
//! - the request FIFO is opened read-only and non-blocking, and reopened (new descriptor first)
//!   whenever every writer has closed, so each writer session's end is seen: a partial line left
//!   by a writer that died is discarded with an error line. A writer opening before that close
//!   is seen continues the unfinished line (a FIFO does not say whose bytes it carries); a line
//!   that then does not parse, or is compact, but ends in a whole JSON request is split there
//!   (`merged_request`, `merged_compact_request`): an error line for the unfinished part, and
//!   the request handled;
//! - the response FIFO is held open for writing only (a drain descriptor is open just while
//!   opening it), so writing with no reader fails at once with EPIPE instead of blocking: a
//!   response produced while nobody reads is dropped, and bytes a departed reader left unread
//!   are discarded when the last reader goes (a reader opening at that moment can still get
//!   them: a known race, documented in `docs/shell.md`);
//! - request intake pushes back: a line is taken only while fewer than [`QUEUE`] requests are in
//!   progress, and responses wait for room in a queue of [`QUEUE`] lines, so a burst makes its
//!   writers wait rather than losing responses;
//! - lines are limited to [`MAX_LINE`]; longer ones are answered with an error and skipped;
//! - the FIFO paths are checked every [`CHECK_EVERY`]; a deleted or replaced FIFO is recreated;
//! - a client can have a pair of its own: `{"session":"NAME"}` creates `DIR/NAME/requests` and
//!   `DIR/NAME/responses`, served like the main pair, and removed on `{"close":"NAME"}`, once
//!   unused for `--session-idle`, or on stop ([`Sessions`]). Nobody else writes or reads a
//!   private pair, so the two races of the shared pair cannot happen there;
//! - SIGTERM or SIGINT stops everything at once (nothing blocks: every descriptor is
//!   non-blocking and every wait is a `select!` with the stop signal) and removes the FIFOs.

use std::{
    collections::HashMap,
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::{ffi::OsStrExt, fs::DirBuilderExt, fs::FileTypeExt, fs::MetadataExt},
    },
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Map, Value, json};
use switchboard_core::GoalId;
use switchboard_idl::english::counted;
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch},
    task::JoinSet,
};

use crate::{
    cli::PipeArgs,
    command::remote::{self, WatchEvent},
    exit::Failure,
    session::{Service, Session},
};

/// The longest request line accepted, newline excluded: 16 MiB.
pub(crate) const MAX_LINE: usize = 16 * 1024 * 1024;
/// How many response lines may wait for the writer task, and how many requests may be in
/// progress (read, but without their first response queued) before the gateway stops reading
/// requests: the backpressure that makes a burst wait instead of losing responses.
const QUEUE: usize = 1024;
/// The most sessions (private FIFO pairs, `{"session":"NAME"}`) open at once.
pub(crate) const MAX_SESSIONS: usize = 64;
/// How long a pair that ends (a session closed or idle) may take to write the responses
/// already queued for it, its `close` answer among them. Generous: the writer is an ordinary
/// task, and on a busy machine half a second could pass before it runs, losing that answer.
const FLUSH: Duration = Duration::from_secs(2);
/// How often the FIFO paths are checked for deletion or replacement.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// The request FIFO's name inside DIR.
pub(crate) const REQUESTS: &str = "requests";
/// The response FIFO's name inside DIR.
pub(crate) const RESPONSES: &str = "responses";

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("path contains NUL"))
}

fn open_raw(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: `c` is a valid NUL-terminated path; the returned descriptor is owned by us.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Registers an owned descriptor with the reactor.
fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` stays open and refers to the same file until the `AsyncFd` drops it.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(io::Error::from)
}

fn read_raw(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

fn write_raw(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// Bytes waiting in the pipe (works on either end).
fn pending_bytes(fd: &OwnedFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc < 0 { 0 } else { n.max(0) as usize }
}

/// Creates a FIFO at `path` with mode 0600 (mkfifo, then chmod so the umask does not matter).
/// An old FIFO there is replaced; anything else is an error.
fn make_fifo(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_fifo() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a FIFO", path.display()),
            ));
        }
        Err(_) => {}
    }
    let c = cstr(path)?;
    // SAFETY: `c` is a valid path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
}

/// Where one request's responses go: a bounded queue to the writer task, waited on when full.
/// It holds the request's place in the intake until its first response is queued (or the
/// request ends without one), so at most [`QUEUE`] requests are in progress at once.
#[derive(Debug)]
struct Out {
    tx: mpsc::Sender<String>,
    place: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Out {
    fn new(tx: mpsc::Sender<String>, place: Option<OwnedSemaphorePermit>) -> Out {
        Out { tx, place: Mutex::new(place) }
    }

    /// Queues one response line, waiting while the queue is full (the reader is slow); then
    /// gives up the request's place in the intake.
    async fn send(&self, value: Value) {
        // Fails only when the writer task has ended, that is when the gateway stops.
        let _ = self.tx.send(value.to_string()).await;
        switchboard_core::sync::lock(&self.place).take();
    }
}

/// `switchboard pipe`.
pub(crate) async fn run(args: &PipeArgs) -> Result<(), Failure> {
    let stopping = remote::stop_requested();
    let service = Service::parse(&args.service)?;
    let session = Arc::new(Session::open(&args.conn, &service).await?);
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| Failure::Local(format!("cannot create {}: {e}", args.dir.display())))?;
    let requests = args.dir.join(REQUESTS);
    let responses = args.dir.join(RESPONSES);
    for path in [&requests, &responses] {
        make_fifo(path)
            .map_err(|e| Failure::Local(format!("cannot create {}: {e}", path.display())))?;
    }
    remove_stale_sessions(&args.dir);
    let (stop_tx, stop) = watch::channel(false);
    let sessions = Arc::new(Sessions {
        dir: args.dir.clone(),
        idle: args.session_idle,
        stop: stop.clone(),
        live: Mutex::new(HashMap::new()),
    });
    let ctx = Arc::new(Ctx {
        service: session.clone(),
        goals: Goals::default(),
        sessions: sessions.clone(),
        own: None,
    });
    eprintln!(
        "switchboard pipe: serving {} through {} (write) and {} (read)",
        service.interface,
        requests.display(),
        responses.display()
    );
    let mut main = tokio::spawn(serve_pair(
        ctx,
        requests.clone(),
        responses.clone(),
        stop.clone(),
        stop.clone(),
        None,
    ));
    let mut ended = false;
    tokio::select! {
        () = stopping => {}
        _ = &mut main => ended = true,
    }
    let _ = stop_tx.send(true);
    if !ended && tokio::time::timeout(Duration::from_millis(600), &mut main).await.is_err() {
        main.abort();
    }
    sessions.shutdown().await;
    session.client.close();
    for path in [&requests, &responses] {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Serves one pair of FIFOs, the main pair or a session's, until `stop` (SIGTERM or SIGINT:
/// everything ends at once) or `end` (a session closed or idle: responses already queued are
/// still written, for at most [`FLUSH`]). With `idle`, the pair also ends once neither FIFO has
/// been open for that long (checked every [`CHECK_EVERY`]).
async fn serve_pair(
    ctx: Arc<Ctx>,
    requests: PathBuf,
    responses: PathBuf,
    stop: watch::Receiver<bool>,
    mut end: watch::Receiver<bool>,
    idle: Option<Duration>,
) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let intake = Arc::new(Semaphore::new(QUEUE));
    let (lines_tx, mut lines) = mpsc::channel::<Result<Vec<u8>, String>>(64);
    let activity = Arc::new(Activity::default());
    // Stops the reader and the guard: set when the pair ends either way.
    let (pair_stop_tx, pair_stop) = watch::channel(false);
    // Bumped when a FIFO had to be recreated: the reader and writer reopen.
    let (reopen_requests, reopen_requests_rx) = watch::channel(0u64);
    let (reopen_responses, reopen_responses_rx) = watch::channel(0u64);

    let mut tasks = JoinSet::new();
    tasks.spawn(reader(
        requests.clone(),
        lines_tx,
        pair_stop.clone(),
        reopen_requests_rx,
        activity.clone(),
    ));
    tasks.spawn(guard(
        vec![(requests.clone(), reopen_requests), (responses.clone(), reopen_responses)],
        pair_stop.clone(),
    ));
    // The writer ends at once on `stop`, and otherwise when every sender is gone and the
    // queue is written out.
    let mut writing =
        tokio::spawn(writer(responses.clone(), rx, stop.clone(), reopen_responses_rx));

    let mut handlers = JoinSet::new();
    let mut stop_main = stop.clone();
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unused_since: Option<Instant> = None;
    let mut reads_seen = 0;
    // A request line is taken only with a place in the intake: while every place is taken, the
    // request FIFO is not read, so its writers wait instead of their responses being dropped.
    let mut place = None;
    loop {
        tokio::select! {
            _ = stop_main.wait_for(|stopped| *stopped) => break,
            _ = end.wait_for(|ended| *ended) => break,
            _ = ticks.tick(), if idle.is_some() => {
                let reads = activity.reads.load(Ordering::Relaxed);
                let used = reads != reads_seen
                    || activity.writing.load(Ordering::Relaxed)
                    || has_reader(&responses);
                reads_seen = reads;
                if used {
                    unused_since = None;
                } else if unused_since.get_or_insert_with(Instant::now).elapsed()
                    >= idle.unwrap_or_default()
                {
                    break;
                }
            }
            acquired = intake.clone().acquire_owned(), if place.is_none() => place = acquired.ok(),
            line = lines.recv(), if place.is_some() => match line {
                Some(line) => {
                    let ctx = ctx.clone();
                    let out = Out::new(tx.clone(), place.take());
                    handlers.spawn(async move {
                        match line {
                            Ok(line) => handle_line(&ctx, &out, &line).await,
                            Err(message) => {
                                let error = json!({ "id": null, "error": { "kind": "usage", "message": message } });
                                out.send(error).await;
                            }
                        }
                    });
                }
                None => break,
            },
            Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
        }
    }
    let _ = pair_stop_tx.send(true);
    handlers.abort_all();
    while handlers.join_next().await.is_some() {}
    drop(tx);
    if tokio::time::timeout(FLUSH, &mut writing).await.is_err() {
        writing.abort();
    }
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

/// Whether a client has the response FIFO open for reading: opening its write end without
/// blocking fails (ENXIO) when nobody reads.
fn has_reader(path: &Path) -> bool {
    open_raw(path, libc::O_WRONLY).is_ok()
}

/// What a pair's reader saw of its writers, for a session's idle check.
#[derive(Debug, Default)]
struct Activity {
    /// A writer wrote to `requests` and has not closed it yet.
    writing: AtomicBool,
    /// Bumped on every read that returned bytes.
    reads: AtomicU64,
}

/// What request handlers share: the service, the pair's running goals, and the sessions.
struct Ctx {
    service: Arc<Session>,
    goals: Goals,
    sessions: Arc<Sessions>,
    /// The session this pair belongs to; `None` for the main pair.
    own: Option<String>,
}

/// The open sessions: private FIFO pairs `DIR/NAME/requests` and `DIR/NAME/responses`.
///
/// A FIFO does not say whose bytes it carries, and a gateway cannot count its readers, so on
/// one shared pair a writer that dies mid-line can merge into the next writer's line, and a
/// reader that replaces another at once can get its unread lines. A client with a pair of its
/// own has neither problem: nobody else writes its requests or reads its responses.
struct Sessions {
    dir: PathBuf,
    idle: Duration,
    stop: watch::Receiver<bool>,
    live: Mutex<HashMap<String, LiveSession>>,
}

struct LiveSession {
    end: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Session names: 1 to 64 ASCII letters, digits, `.`, `_` and `-`, not starting with `.`, and
/// not the main pair's FIFO names.
fn check_session_name(name: &str) -> Result<(), Failure> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name != REQUESTS
        && name != RESPONSES;
    if ok {
        Ok(())
    } else {
        Err(Failure::Usage(format!(
            "{} is not a session name: use 1 to 64 letters, digits, `.`, `_` or `-`, not \
             starting with `.` (and not `{REQUESTS}` or `{RESPONSES}`)",
            Value::String(name.to_owned())
        )))
    }
}

/// Removes a session's FIFOs and its directory (only if empty: anything else a client put
/// there stays).
fn remove_session_dir(dir: &Path) {
    for name in [REQUESTS, RESPONSES] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let _ = std::fs::remove_dir(dir);
}

/// Removes the sessions a gateway that was killed left in `dir`: directories that hold nothing
/// but the FIFOs `requests` and `responses` (or one of them). Anything else is left alone.
fn remove_stale_sessions(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        let Ok(inside) = std::fs::read_dir(&path) else { continue };
        let inside: Vec<_> = inside.flatten().collect();
        let stale = is_dir
            && !inside.is_empty()
            && inside.iter().all(|e| {
                let name = e.file_name();
                (name == REQUESTS || name == RESPONSES) && e.file_type().is_ok_and(|t| t.is_fifo())
            });
        if stale {
            remove_session_dir(&path);
        }
    }
}

impl Sessions {
    /// Opens session `name`: creates `DIR/NAME` (mode 0700) and its two FIFOs (mode 0600), and
    /// serves them. Returns the two paths.
    fn open(
        self: &Arc<Self>,
        service: &Arc<Session>,
        name: &str,
    ) -> Result<(PathBuf, PathBuf), Failure> {
        check_session_name(name)?;
        if *self.stop.borrow() {
            return Err(Failure::Usage("the gateway is stopping".to_owned()));
        }
        let mut live = switchboard_core::sync::lock(&self.live);
        if live.contains_key(name) {
            return Err(Failure::Usage(format!("session `{name}` is already open")));
        }
        if live.len() >= MAX_SESSIONS {
            return Err(Failure::Usage(format!(
                "{} are open, the most at once; close one first",
                counted(MAX_SESSIONS, "session")
            )));
        }
        let dir = self.dir.join(name);
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Failure::Usage(format!("{} already exists; choose another name", dir.display()))
            } else {
                Failure::Local(format!("cannot create {}: {e}", dir.display()))
            }
        })?;
        let requests = dir.join(REQUESTS);
        let responses = dir.join(RESPONSES);
        for path in [&requests, &responses] {
            if let Err(e) = make_fifo(path) {
                remove_session_dir(&dir);
                return Err(Failure::Local(format!("cannot create {}: {e}", path.display())));
            }
        }
        let (end, ended) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            service: service.clone(),
            goals: Goals::default(),
            sessions: self.clone(),
            own: Some(name.to_owned()),
        });
        let this = self.clone();
        let (owned, paths) = (name.to_owned(), (requests.clone(), responses.clone()));
        let task = tokio::spawn(async move {
            let (requests, responses) = paths;
            serve_pair(ctx, requests, responses, this.stop.clone(), ended, Some(this.idle)).await;
            // The entry goes only after the files: a new session of the same name can then
            // create them afresh.
            remove_session_dir(&this.dir.join(&owned));
            switchboard_core::sync::lock(&this.live).remove(&owned);
        });
        live.insert(name.to_owned(), LiveSession { end, task });
        Ok((requests, responses))
    }

    fn is_open(&self, name: &str) -> bool {
        switchboard_core::sync::lock(&self.live).contains_key(name)
    }

    /// Ends session `name`: its queued responses are written (briefly), then its FIFOs go.
    fn close(&self, name: &str) {
        if let Some(session) = switchboard_core::sync::lock(&self.live).get(name) {
            let _ = session.end.send(true);
        }
    }

    /// On stop: ends every session and removes its FIFOs and directory.
    async fn shutdown(&self) {
        let all: Vec<(String, LiveSession)> =
            switchboard_core::sync::lock(&self.live).drain().collect();
        for (_, session) in &all {
            let _ = session.end.send(true);
        }
        for (name, mut session) in all {
            if tokio::time::timeout(Duration::from_millis(600), &mut session.task).await.is_err() {
                session.task.abort();
            }
            remove_session_dir(&self.dir.join(name));
        }
    }
}

#[derive(Default)]
struct Goals(Mutex<HashMap<String, (String, GoalId)>>);

/// Reads request lines; every writer session's end discards its unfinished line.
async fn reader(
    path: PathBuf,
    lines: mpsc::Sender<Result<Vec<u8>, String>>,
    mut stop: watch::Receiver<bool>,
    mut reopen: watch::Receiver<u64>,
    activity: Arc<Activity>,
) {
    let open = |path: &Path| {
        open_raw(path, libc::O_RDONLY).and_then(|fd| register(fd, Interest::READABLE))
    };
    let Some(mut fd) = first_open(&path, open, &mut stop, &mut reopen).await else { return };
    let mut buf = vec![0u8; 64 * 1024];
    let mut line: Vec<u8> = Vec::new();
    let mut skipping = false;
    loop {
        let mut ready = tokio::select! {
            _ = stop.changed() => return,
            _ = reopen.changed() => {
                if let Ok(new) = open(&path) { fd = new; }
                line.clear();
                skipping = false;
                continue;
            }
            ready = fd.readable() => match ready { Ok(r) => r, Err(_) => return },
        };
        match ready.try_io(|inner| read_raw(inner.get_ref(), &mut buf)) {
            Err(_would_block) => continue,
            Ok(Ok(0)) => {
                // Every writer closed: open a fresh descriptor (first, so a writer arriving now
                // still finds a reader) and drop the old one, whose hang-up would stay set.
                drop(ready);
                activity.writing.store(false, Ordering::Relaxed);
                if !line.is_empty() && !skipping {
                    let _ = lines
                        .send(Err(format!(
                            "discarded an unfinished line of {}: its writer closed before the newline",
                            counted(line.len(), "byte")
                        )))
                        .await;
                }
                line.clear();
                skipping = false;
                match open(&path) {
                    Ok(new) => fd = new,
                    Err(error) => {
                        eprintln!("switchboard pipe: cannot reopen {}: {error}", path.display());
                        // The guard recreates the FIFO and asks for a reopen.
                        tokio::select! {
                            _ = stop.changed() => return,
                            _ = reopen.changed() => { if let Ok(new) = open(&path) { fd = new; } }
                        }
                    }
                }
            }
            Ok(Ok(n)) => {
                activity.writing.store(true, Ordering::Relaxed);
                activity.reads.fetch_add(1, Ordering::Relaxed);
                for item in split_lines(&mut line, &mut skipping, &buf[..n], MAX_LINE) {
                    if lines.send(item).await.is_err() {
                        return;
                    }
                }
            }
            Ok(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(error)) => {
                eprintln!("switchboard pipe: reading {} failed: {error}", path.display());
                return;
            }
        }
    }
}

/// Splits a chunk read from the request FIFO into finished lines, keeping the unfinished tail in
/// `line`. Every line longer than `limit` bytes, finished in this chunk or not, becomes one error
/// and is skipped to its newline (`skipping`), so no line over the limit ever gets through.
pub(crate) fn split_lines(
    line: &mut Vec<u8>,
    skipping: &mut bool,
    mut chunk: &[u8],
    limit: usize,
) -> Vec<Result<Vec<u8>, String>> {
    let too_long = || Err(format!("request line longer than the limit of {limit} bytes; skipped"));
    let mut out = Vec::new();
    while let Some(at) = chunk.iter().position(|b| *b == b'\n') {
        if *skipping {
            *skipping = false;
        } else if line.len() + at > limit {
            out.push(too_long());
        } else {
            line.extend_from_slice(&chunk[..at]);
            out.push(Ok(std::mem::take(line)));
        }
        line.clear();
        chunk = &chunk[at + 1..];
    }
    if !*skipping {
        if line.len() + chunk.len() > limit {
            out.push(too_long());
            *line = Vec::new();
            *skipping = true;
        } else {
            line.extend_from_slice(chunk);
        }
    }
    out
}

/// Opens the response FIFO for writing without blocking: a drain descriptor is the reader for
/// the moment of opening, then closed, so later writes see whether a real reader exists.
fn open_writer(path: &Path) -> io::Result<AsyncFd<OwnedFd>> {
    let drain = open_raw(path, libc::O_RDONLY)?;
    let fd = open_raw(path, libc::O_WRONLY)?;
    drop(drain);
    register(fd, Interest::WRITABLE)
}

/// Throws away whatever a departed reader left in the pipe.
fn drain(path: &Path) {
    if let Ok(fd) = open_raw(path, libc::O_RDONLY) {
        let mut buf = vec![0u8; 64 * 1024];
        while matches!(read_raw(&fd, &mut buf), Ok(n) if n > 0) {}
    }
}

/// Opens a FIFO of the pair when its reader or writer starts. A FIFO deleted between its
/// creation and this (a client that cleans up at once, or a busy machine) is waited for: the
/// guard recreates it and asks for a reopen. `None` once the pair stops.
async fn first_open<T>(
    path: &Path,
    open: impl Fn(&Path) -> io::Result<T>,
    stop: &mut watch::Receiver<bool>,
    reopen: &mut watch::Receiver<u64>,
) -> Option<T> {
    loop {
        match open(path) {
            Ok(fd) => return Some(fd),
            Err(error) => {
                eprintln!("switchboard pipe: cannot open {} yet: {error}", path.display());
            }
        }
        tokio::select! {
            _ = stop.changed() => return None,
            changed = reopen.changed() => changed.ok()?,
        }
    }
}

/// Writes response lines to whoever reads the response FIFO right now.
async fn writer(
    path: PathBuf,
    mut rx: mpsc::Receiver<String>,
    mut stop: watch::Receiver<bool>,
    mut reopen: watch::Receiver<u64>,
) {
    let Some(mut fd) = first_open(&path, open_writer, &mut stop, &mut reopen).await else {
        return;
    };
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = reopen.changed() => {
                if let Ok(new) = open_writer(&path) { fd = new; }
            }
            ready = fd.ready(Interest::ERROR) => {
                // The last reader went away. What it left unread is stale: discard it.
                if let Ok(mut ready) = ready {
                    if pending_bytes(fd.get_ref()) > 0 {
                        drain(&path);
                    }
                    ready.clear_ready();
                }
            }
            line = rx.recv() => {
                let Some(mut line) = line else { return };
                line.push('\n');
                tokio::select! {
                    _ = stop.changed() => return,
                    () = write_line(&fd, line.as_bytes()) => {}
                }
            }
        }
    }
}

/// Writes one whole line, or drops it when there is no reader.
async fn write_line(fd: &AsyncFd<OwnedFd>, bytes: &[u8]) {
    let mut offset = 0;
    while offset < bytes.len() {
        let Ok(mut ready) = fd.writable().await else { return };
        match ready.try_io(|inner| write_raw(inner.get_ref(), &bytes[offset..])) {
            Err(_would_block) => {}
            Ok(Ok(n)) => offset += n,
            Ok(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
            // EPIPE: nobody reads. The line is dropped (policy: no stale backlog). The readiness
            // stays set, so the next line tries again at once, for whichever reader comes.
            Ok(Err(_)) => return,
        }
    }
}

/// Recreates a FIFO that was deleted or replaced while running, and tells its user to reopen.
async fn guard(paths: Vec<(PathBuf, watch::Sender<u64>)>, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ids: Vec<Option<(u64, u64)>> = paths
        .iter()
        .map(|(p, _)| std::fs::symlink_metadata(p).ok().map(|m| (m.dev(), m.ino())))
        .collect();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticks.tick() => {}
        }
        for (i, (path, reopen)) in paths.iter().enumerate() {
            let now = std::fs::symlink_metadata(path).ok();
            let ok = now
                .as_ref()
                .is_some_and(|m| m.file_type().is_fifo() && Some((m.dev(), m.ino())) == ids[i]);
            if ok {
                continue;
            }
            eprintln!(
                "switchboard pipe: {} was deleted or replaced; recreating it",
                path.display()
            );
            if now.as_ref().is_some_and(|m| !m.file_type().is_fifo()) {
                eprintln!(
                    "switchboard pipe: {} is no longer a FIFO; leaving it alone",
                    path.display()
                );
                ids[i] = now.map(|m| (m.dev(), m.ino()));
                continue;
            }
            if let Err(error) = make_fifo(path) {
                eprintln!("switchboard pipe: cannot recreate {}: {error}", path.display());
                continue;
            }
            ids[i] = std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()));
            reopen.send_modify(|g| *g += 1);
        }
    }
}

/// One parsed request.
#[derive(Debug, PartialEq)]
pub(crate) struct Request {
    pub(crate) id: Value,
    pub(crate) verb: String,
    pub(crate) name: Option<String>,
    pub(crate) args: Option<Map<String, Value>>,
    pub(crate) pairs: Vec<String>,
    pub(crate) names: Vec<String>,
}

const VERBS: &[&str] =
    &["call", "get", "set", "watch", "action", "command", "cancel", "describe", "session", "close"];

/// Splits a compact line into words; `'…'` and `"…"` quote, `\` escapes, and a JSON object or
/// array right after the `=` of `NAME=` is taken as written, up to its closing bracket.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                current.push(chars.next().ok_or("a trailing backslash")?);
                in_word = true;
            }
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '{' | '[') if current.ends_with('=') => {
                current.push_str(&json_value(c, &mut chars)?)
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("an unterminated quote".to_owned());
    }
    if in_word {
        out.push(current);
    }
    Ok(out)
}

/// Takes a JSON object or array whose opening bracket `open` was just read, through its matching
/// closing bracket; brackets inside JSON strings do not count.
fn json_value(open: char, chars: &mut std::str::Chars<'_>) -> Result<String, String> {
    let mut value = String::from(open);
    let mut depth = 1;
    let mut in_string = false;
    while let Some(c) = chars.next() {
        value.push(c);
        match c {
            '\\' if in_string => value.extend(chars.next()),
            '"' => in_string = !in_string,
            '{' | '[' if !in_string => depth += 1,
            '}' | ']' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return Ok(value);
                }
            }
            _ => {}
        }
    }
    Err(format!("an unterminated JSON value `{value}`"))
}

/// Parses one request line (JSON or compact).
pub(crate) fn parse_request(line: &str) -> Result<Request, (Value, String)> {
    let trimmed = line.trim();
    if trimmed.starts_with('{') {
        let mut object = match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err((Value::Null, "a request must be a JSON object".to_owned())),
            Err(e) => return Err((Value::Null, format!("malformed JSON request: {e}"))),
        };
        let id = object.remove("id").unwrap_or(Value::Null);
        let present: Vec<&str> =
            VERBS.iter().copied().filter(|v| object.contains_key(*v)).collect();
        let verb = match present.as_slice() {
            [verb] => (*verb).to_owned(),
            [] => {
                return Err((
                    id,
                    format!("the request names no verb; use one of {}", VERBS.join(", ")),
                ));
            }
            _ => {
                return Err((
                    id,
                    format!("the request names several verbs: {}", present.join(", ")),
                ));
            }
        };
        let target = object.remove(&verb).unwrap_or(Value::Null);
        let (name, names) = match target {
            // The request id of the goal, as JSON, so a string id matches its goal's key.
            other if verb == "cancel" => (Some(other.to_string()), Vec::new()),
            Value::String(s) => (Some(s.clone()), vec![s]),
            Value::Array(items) => {
                let mut names = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(name) => names.push(name),
                        other => {
                            return Err((
                                id,
                                format!("`{verb}` lists member names, and {other} is not one"),
                            ));
                        }
                    }
                }
                (None, names)
            }
            Value::Null | Value::Bool(true) => (None, Vec::new()),
            other => return Err((id, format!("`{verb}` must name a member, not {other}"))),
        };
        let args = match object.remove("args") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => return Err((id, format!("`args` must be an object, not {other}"))),
        };
        if let Some(key) = object.keys().next() {
            return Err((id, format!("unknown request key `{key}`")));
        }
        return Ok(Request { id, verb, name, args, pairs: Vec::new(), names });
    }
    let words = words(trimmed).map_err(|e| (Value::Null, format!("malformed request: {e}")))?;
    let Some(first) = words.first() else { return Err((Value::Null, "empty request".to_owned())) };
    let (verb, rest) =
        if VERBS.contains(&first.as_str()) && words.len() > 1 && !words[1].contains('=')
            || first == "describe"
        {
            (first.clone(), &words[1..])
        } else {
            ("call".to_owned(), &words[..])
        };
    let name = rest.first().cloned();
    let (names, pairs) = if verb == "watch" {
        (rest.to_vec(), Vec::new())
    } else {
        (Vec::new(), rest.iter().skip(1).cloned().collect())
    };
    Ok(Request { id: Value::Null, verb, name, args: None, pairs, names })
}

/// Splits a line that does not parse into the unfinished line of a writer that closed and the
/// JSON request of the writer that followed it at once, if it ends in one.
///
/// A FIFO does not say whose bytes it carries, so a writer that opens `requests` before the
/// gateway has seen the previous one close continues that one's unfinished line. The earliest
/// `{` from which the rest of the line is a whole, valid JSON request starts the new writer's
/// line (an unfinished line cannot end inside it: the rest would not be one JSON value).
pub(crate) fn merged_request(line: &str) -> Option<(&str, Request)> {
    merged_where(line, |_| true)
}

/// Splits a compact line that parses, but is an unfinished compact line run together with the
/// JSON request of the writer that followed it (`get setpo{"get":"mode"}`), the same way.
///
/// A compact line holds JSON only as a value right after `NAME=`, or quoted, so a `{` is taken
/// as the start of another writer's request only where the text before it is whole compact
/// words: not right after `=`, and not inside a quote or a JSON value.
pub(crate) fn merged_compact_request(line: &str) -> Option<(&str, Request)> {
    if line.trim_start().starts_with('{') {
        return None;
    }
    merged_where(line, |before| !before.ends_with('=') && words(before).is_ok())
}

/// The earliest `{` after the start from which the rest of `line` is a whole, valid JSON
/// request, where `before` accepts the text before it.
fn merged_where(line: &str, before: impl Fn(&str) -> bool) -> Option<(&str, Request)> {
    let line = line.trim_end();
    line.char_indices().filter(|&(at, c)| c == '{' && at > 0).find_map(|(at, _)| {
        if !before(&line[..at]) {
            return None;
        }
        let request = parse_request(&line[at..]).ok()?;
        Some((&line[..at], request))
    })
}

/// The start of `text`, for an error message: at most 80 characters, JSON-quoted.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((end, _)) => format!("{}…", Value::String(text[..end].to_owned())),
        None => Value::String(text.to_owned()).to_string(),
    }
}

/// The key of the goal that `cancel` names: the starting request's id as JSON. The JSON form
/// names it as JSON (`7`, `"goal-a"`); a compact word that is not JSON is a string id.
fn goal_key(named: &str) -> String {
    serde_json::from_str::<Value>(named)
        .unwrap_or_else(|_| Value::String(named.to_owned()))
        .to_string()
}

fn error_line(id: &Value, failure: &Failure) -> Value {
    json!({ "id": id, "error": failure.to_json() })
}

async fn handle_line(ctx: &Ctx, out: &Out, line: &[u8]) {
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(_) => {
            out.send(json!({ "id": null, "error": { "kind": "usage", "message": "the request is not UTF-8" } })).await;
            return;
        }
    };
    // Blank lines are ignored.
    if text.trim().is_empty() {
        return;
    }
    let (parsed, merged) = match parse_request(text) {
        Ok(request) => (Ok(request), merged_compact_request(text)),
        Err(error) => (Err(error), merged_request(text)),
    };
    let request = match (parsed, merged) {
        (_, Some((unfinished, request))) => {
            let message = format!(
                "discarded an unfinished line of {} that another writer's request followed \
                 before its newline: {}",
                counted(unfinished.len(), "byte"),
                excerpt(unfinished),
            );
            out.send(error_line(&Value::Null, &Failure::Usage(message))).await;
            request
        }
        (Ok(request), None) => request,
        (Err((id, message)), None) => {
            out.send(error_line(&id, &Failure::Usage(message))).await;
            return;
        }
    };
    let id = request.id.clone();
    if let Err(failure) = handle(ctx, out, request).await {
        out.send(error_line(&id, &failure)).await;
    }
}

fn name_of(request: &Request) -> Result<&str, Failure> {
    request
        .name
        .as_deref()
        .ok_or_else(|| Failure::Usage(format!("`{}` needs a name", request.verb)))
}

async fn handle(ctx: &Ctx, out: &Out, request: Request) -> Result<(), Failure> {
    let (session, goals) = (&*ctx.service, &ctx.goals.0);
    let types = session.types();
    let iface = &session.iface;
    let id = request.id.clone();
    let build = |fields: &[switchboard_idl::Field]| -> Result<Value, Failure> {
        match &request.args {
            Some(args) => types
                .build(fields, &[], Some(&Value::Object(args.clone()).to_string()))
                .map_err(Failure::Usage),
            None => types.build(fields, &request.pairs, None).map_err(Failure::Usage),
        }
    };
    let encode = |v: &Value| bytes::Bytes::from(serde_json::to_vec(v).unwrap_or_default());
    match request.verb.as_str() {
        "call" => {
            let method = remote::method(iface, name_of(&request)?)?;
            let payload = build(&method.arguments)?;
            let reply = session.client.call_raw(method.name.clone(), encode(&payload)).await?;
            let reply: Value = serde_json::from_slice(&reply).unwrap_or(Value::Null);
            out.send(json!({ "id": id, "result": reply })).await;
        }
        "get" => {
            let property = remote::property(iface, name_of(&request)?)?;
            let (version, value) = session.client.get_property_raw(property.name.clone()).await?;
            let value: Value = serde_json::from_slice(&value).unwrap_or(Value::Null);
            out.send(json!({ "id": id, "result": value, "version": version })).await;
        }
        "set" => {
            let property = remote::property(iface, name_of(&request)?)?;
            if property.read_only {
                return Err(Failure::Usage(format!("property `{}` is read-only", property.name)));
            }
            let value = build(&property.fields)?;
            let version =
                session.client.set_property_raw(property.name.clone(), encode(&value)).await?;
            out.send(json!({ "id": id, "result": value, "version": version })).await;
        }
        "command" => {
            let command = remote::command(iface, name_of(&request)?)?;
            let value = build(&command.arguments)?;
            session.client.command(command.name.clone(), &value).await?;
            out.send(json!({ "id": id, "result": {} })).await;
        }
        "describe" => {
            out.send(
                json!({ "id": id, "result": serde_json::to_value(iface).unwrap_or(Value::Null) }),
            )
            .await;
        }
        "watch" => {
            let (watching, mut events) = remote::start_watch(session, &request.names).await?;
            out.send(json!({ "id": id, "result": { "watching": watching } })).await;
            while let Some(event) = events.recv().await {
                let mut line = event.to_json();
                if let (
                    Value::Object(map),
                    WatchEvent::Signal { .. } | WatchEvent::Property { .. },
                ) = (&mut line, &event)
                {
                    map.insert("id".to_owned(), id.clone());
                }
                if let WatchEvent::Problem(message) = &event {
                    line = json!({ "id": id, "warning": message });
                }
                out.send(line).await;
            }
        }
        "action" => {
            let action = remote::action(iface, name_of(&request)?)?;
            let goal = build(&action.goal)?;
            let mut handle = remote::send_goal(session, &action.name, &goal).await?;
            let key = id.to_string();
            switchboard_core::sync::lock(goals)
                .insert(key.clone(), (action.name.clone(), handle.id().clone()));
            out.send(json!({ "id": id, "goal": handle.id().as_str(), "status": "accepted" })).await;
            while let Some(feedback) = handle.next_feedback().await {
                out.send(json!({ "id": id, "feedback": feedback })).await;
            }
            let (end, _) = remote::goal_end(handle.result().await, false);
            switchboard_core::sync::lock(goals).remove(&key);
            let mut end = end;
            if let Value::Object(map) = &mut end {
                map.insert("id".to_owned(), id.clone());
            }
            out.send(end).await;
        }
        "session" => {
            let name = name_of(&request)?;
            let (requests, responses) = ctx.sessions.open(&ctx.service, name)?;
            let result = json!({ "session": name, "requests": requests, "responses": responses });
            out.send(json!({ "id": id, "result": result })).await;
        }
        "close" => {
            let name = match (request.name.as_deref(), ctx.own.as_deref()) {
                (Some(name), _) | (None, Some(name)) => name,
                (None, None) => {
                    return Err(Failure::Usage(
                        "`close` names the session to end: {\"close\":\"NAME\"}".to_owned(),
                    ));
                }
            };
            if !ctx.sessions.is_open(name) {
                return Err(Failure::NotFound(format!("no session `{name}` is open")));
            }
            // Answered first: a session that closes itself still gets the answer.
            out.send(json!({ "id": id, "result": { "closed": name } })).await;
            ctx.sessions.close(name);
        }
        "cancel" => {
            // `{"cancel": 7}` cancels the goal started by the request with id 7.
            let key = goal_key(request.name.as_deref().unwrap_or_default());
            let found = switchboard_core::sync::lock(goals).get(&key).cloned();
            let Some((action, goal)) = found else {
                return Err(Failure::NotFound(format!(
                    "no running goal was started by request id {key}"
                )));
            };
            let snapshot = session.client.cancel_goal(action, goal).await?;
            out.send(json!({ "id": id, "result": { "status": snapshot.status.as_str() } })).await;
        }
        other => return Err(Failure::Usage(format!("unknown verb `{other}`"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_json_requests_parse() {
        let r = parse_request("boost extraCelsius=1 'reason=for a guest'").unwrap();
        assert_eq!(r.verb, "call");
        assert_eq!(r.name.as_deref(), Some("boost"));
        assert_eq!(r.pairs, ["extraCelsius=1", "reason=for a guest"]);
        let r = parse_request("get setpoint").unwrap();
        assert_eq!((r.verb.as_str(), r.name.as_deref()), ("get", Some("setpoint")));
        let r = parse_request("watch setpoint temperatureChanged").unwrap();
        assert_eq!(r.names, ["setpoint", "temperatureChanged"]);
        let r = parse_request(r#"{"call":"boost","args":{"extraCelsius":1},"id":7}"#).unwrap();
        assert_eq!((r.verb.as_str(), r.id.clone()), ("call", json!(7)));
        assert!(parse_request(r#"{"call":"a","get":"b"}"#).is_err());
        assert!(parse_request(r#"{"call":"a","#).is_err());
        assert!(parse_request("say 'unterminated").is_err());
    }

    #[test]
    fn a_json_request_merged_into_an_unfinished_line_is_split_off() {
        let (unfinished, request) = merged_request(
            r#"{"call":"boost","args":{"extraCelsius":1}{"call":"getStatus","id":2}"#,
        )
        .expect("the new writer's request");
        assert_eq!(unfinished, r#"{"call":"boost","args":{"extraCelsius":1}"#);
        assert_eq!((request.verb.as_str(), request.id.clone()), ("call", json!(2)));
        // Nothing to split off: a line that ends in no valid request, or in a nested value only.
        assert!(merged_request(r#"{"call":"boost","args":{"extraCelsius":1}"#).is_none());
        assert!(merged_request(r#"{"call":"a","args":{"x":{"call":"b"}}"#).is_none());
        assert!(merged_request(r#"{"call":"a"{"nothing":1}"#).is_none());
        assert_eq!(excerpt("ab"), r#""ab""#);
    }

    #[test]
    fn a_json_request_run_into_an_unfinished_compact_line_is_split_off() {
        let (unfinished, request) =
            merged_compact_request(r#"get setpo{"session":"me","id":1}"#).expect("split");
        assert_eq!(unfinished, "get setpo");
        assert_eq!((request.verb.as_str(), request.name.as_deref()), ("session", Some("me")));
        let (unfinished, _) = merged_compact_request(r#"boost extraCelsius=1 {"get":"mode"}"#)
            .expect("after whole words");
        assert_eq!(unfinished, "boost extraCelsius=1 ");
        // JSON that belongs to a compact line is not split: a value after `NAME=`, inside it,
        // or quoted.
        for whole in [
            r#"set config value={"get":"mode"}"#,
            r#"addPlant plant={"a": {"get":"mode"}}"#,
            r#"note 'text={"get":"mode"}'"#,
            r#"note text='{"get":"mode"}'"#,
            r#"note text="{\"get\":\"mode\"}""#,
            r#"{"call":"a","args":{"x":{"call":"b"}}}"#,
            "getStatus",
        ] {
            assert!(parse_request(whole).is_ok(), "{whole}");
            assert!(merged_compact_request(whole).is_none(), "{whole}");
        }
        assert_eq!(excerpt(&"x".repeat(100)), format!("\"{}\"…", "x".repeat(80)));
    }

    #[test]
    fn cancel_names_a_goal_by_its_request_id_string_or_number() {
        let started_as = |id: Value| id.to_string();
        let r = parse_request(r#"{"cancel":"goal-a","id":1}"#).unwrap();
        assert_eq!(goal_key(r.name.as_deref().unwrap()), started_as(json!("goal-a")));
        let r = parse_request(r#"{"cancel":7}"#).unwrap();
        assert_eq!(goal_key(r.name.as_deref().unwrap()), started_as(json!(7)));
        let r = parse_request("cancel goal-a").unwrap();
        assert_eq!(goal_key(r.name.as_deref().unwrap()), started_as(json!("goal-a")));
    }

    #[test]
    fn every_line_over_the_limit_is_refused_finished_in_one_chunk_or_not() {
        let (mut line, mut skipping) = (Vec::new(), false);
        let mut split = |chunk: &[u8]| split_lines(&mut line, &mut skipping, chunk, 4);
        // A whole line over the limit inside one chunk, between two that fit.
        let out = split(b"ab\nabcdef\nabcd\n");
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Ok(b"ab".to_vec()));
        assert!(out[1].as_ref().unwrap_err().contains("limit of 4 bytes"), "{out:?}");
        assert_eq!(out[2], Ok(b"abcd".to_vec()));
        // A line split across chunks that ends over the limit in the chunk with its newline.
        assert!(split(b"abc").is_empty());
        let out = split(b"de\nx\n");
        assert!(out[0].is_err(), "{out:?}");
        assert_eq!(out[1], Ok(b"x".to_vec()));
        // An unfinished line over the limit: one error, then skipped to its newline.
        assert!(split(b"abcdefgh")[0].is_err());
        assert!(split(b"ijk").is_empty());
        assert_eq!(split(b"lm\nok\n"), [Ok(b"ok".to_vec())]);
    }

    #[test]
    fn a_watch_list_of_non_names_is_refused() {
        let (id, message) = parse_request(r#"{"watch":[1,2,3],"id":4}"#).unwrap_err();
        assert_eq!(id, json!(4));
        assert!(message.contains("`watch` lists member names, and 1 is not one"), "{message}");
        let r = parse_request(r#"{"watch":["setpoint","temperatureChanged"]}"#).unwrap();
        assert_eq!(r.names, ["setpoint", "temperatureChanged"]);
    }

    #[test]
    fn compact_values_keep_json_as_written() {
        let plant = r#"plant={"species":"fern"}"#;
        let r = parse_request(&format!("addPlant {plant}")).unwrap();
        assert_eq!((r.verb.as_str(), r.name.as_deref()), ("call", Some("addPlant")));
        assert_eq!(r.pairs, [plant]);
        // Spaces, quotes and brackets inside strings belong to the value.
        let spaced = r#"plant={"species": "fern", "tags": ["a b", "]"]}"#;
        let r = parse_request(&format!("call addPlant {spaced} count=2")).unwrap();
        assert_eq!(r.pairs, [spaced, "count=2"]);
        let r = parse_request(r#"set tags list=[1, 2, 3]"#).unwrap();
        assert_eq!(r.pairs, ["list=[1, 2, 3]"]);
        // Quoting the whole pair, or the value, as a shell would, still works.
        for quoted in [r#"'plant={"species": "fern"}'"#, r#"plant='{"species": "fern"}'"#] {
            let r = parse_request(&format!("addPlant {quoted}")).unwrap();
            assert_eq!(r.pairs, [r#"plant={"species": "fern"}"#], "{quoted}");
        }
        let (_, message) = parse_request(r#"addPlant plant={"species":"fern""#).unwrap_err();
        assert!(message.contains("unterminated JSON"), "{message}");
    }

    #[test]
    fn a_compact_struct_argument_reaches_the_type_check_intact() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/interfaces/everything.yaml");
        let iface = switchboard_codegen::load_file(&path).unwrap().parsed.interface.unwrap();
        let echo = iface.methods.iter().find(|m| m.name == "echoNested").unwrap();
        let line = r#"echoNested shape={"origin": {"x": 1, "y": 2}, "note": "a b", "corners": []}"#;
        let request = parse_request(line).unwrap();
        let types = crate::types::Types { iface: &iface };
        let args = types.build(&echo.arguments, &request.pairs, None).unwrap();
        assert_eq!(args["shape"]["origin"], json!({"x": 1.0, "y": 2.0}));
        assert_eq!(args["shape"]["note"], "a b");
    }
}
