//! The named-pipe gateway: every verb, and one test per robustness checklist item
//! (prior-art §2.7, policies in docs/shell.md).

use std::{
    fs::OpenOptions,
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::support::{Live, signal, wait_for};

struct Gateway {
    child: Child,
    dir: tempfile::TempDir,
}

impl Gateway {
    fn start(live: &Live, service: &str) -> Gateway {
        Gateway::start_with(live, service, &[])
    }

    fn start_with(live: &Live, service: &str, options: &[&str]) -> Gateway {
        let dir = tempfile::Builder::new().prefix("sb-pipe-").tempdir().unwrap();
        let mut args = vec!["pipe", service, "--dir", dir.path().to_str().unwrap()];
        args.extend_from_slice(options);
        let child =
            live.command(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let gateway = Gateway { child, dir };
        wait_for(&gateway.responses());
        wait_for(&gateway.requests());
        gateway
    }

    fn requests(&self) -> PathBuf {
        self.dir.path().join("requests")
    }

    fn responses(&self) -> PathBuf {
        self.dir.path().join("responses")
    }

    /// Writes lines as one writer session (open, write, close).
    fn send(&self, text: &str) {
        let mut fifo = OpenOptions::new().write(true).open(self.requests()).unwrap();
        fifo.write_all(text.as_bytes()).unwrap();
    }

    fn reader(&self) -> Reader {
        Reader::open(self.responses())
    }

    /// Asks for session `name` on the main pair and waits for its FIFOs: its directory.
    fn open_session(&self, name: &str) -> PathBuf {
        self.send(&format!("{{\"session\":\"{name}\",\"id\":\"{name}\"}}\n"));
        let dir = self.dir.path().join(name);
        wait_for(&dir.join("responses"));
        dir
    }

    /// SIGTERM: must exit 0 within a second and remove the FIFOs, sessions' included.
    fn stop(mut self) {
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert_eq!(status.code(), Some(0));
                break;
            }
            assert!(Instant::now() < deadline, "the gateway did not stop within 1 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!self.requests().exists() && !self.responses().exists(), "FIFOs left behind");
        let left: Vec<_> = std::fs::read_dir(self.dir.path()).unwrap().collect();
        assert!(left.is_empty(), "sessions left behind: {left:?}");
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads response lines on a thread; dropping it closes the FIFO (non-blocking reads, so the
/// thread notices).
struct Reader {
    rx: mpsc::Receiver<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(30));
    }
}

impl Reader {
    fn open(path: PathBuf) -> Reader {
        Reader::open_paused(path, Duration::ZERO)
    }

    /// Opens the FIFO now, but starts reading only after `pause`: a reader that is attached and
    /// slower than the requests.
    fn open_paused(path: PathBuf, pause: Duration) -> Reader {
        use std::{io::Read, os::unix::fs::OpenOptionsExt};
        let (tx, rx) = mpsc::channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut file =
            OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).unwrap();
        let stopping = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(pause);
            let mut pending = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                match file.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(at) = pending.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=at).collect();
                            let text = String::from_utf8_lossy(&line[..at]).into_owned();
                            if tx.send(text).is_err() {
                                return;
                            }
                        }
                    }
                    _ => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Reader { rx, stop }
    }

    fn next(&self) -> Value {
        let line = self.rx.recv_timeout(Duration::from_secs(10)).expect("a response line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
    }

    /// Reads until goal `goal` has ended and request `request` (a cancel, say) is answered,
    /// which come in either order: the gateway handles requests concurrently. Returns the
    /// goal's last line and the request's answer; the goal's feedback is skipped.
    fn goal_end_and_answer(&self, goal: &Value, request: &Value) -> (Value, Value) {
        let (mut ended, mut answered) = (None, None);
        while ended.is_none() || answered.is_none() {
            let line = self.next();
            if line["id"] == *request {
                answered = Some(line);
            } else if line["id"] == *goal && line.get("feedback").is_none() {
                ended = Some(line);
            }
        }
        (ended.unwrap(), answered.unwrap())
    }

    fn nothing_for(&self, wait: Duration) -> bool {
        self.rx.recv_timeout(wait).is_err()
    }
}

#[test]
fn pipe_serves_every_verb() {
    let live = Live::unix();
    let gateway = Gateway::start(&live, "Thermostat");
    let out = gateway.reader();
    gateway.send(
        "{\"call\":\"boost\",\"args\":{\"extraCelsius\":1,\"forHowLong\":\"PT1M\"},\"id\":7}\n",
    );
    let reply = out.next();
    assert_eq!(reply["id"], 7);
    assert!(reply["result"]["endsAt"].is_string());
    gateway.send("boost extraCelsius=1 forHowLong=PT1M 'reason=two words'\n");
    assert!(out.next()["result"]["endsAt"].is_string());
    gateway.send("{\"set\":\"setpoint\",\"args\":{\"celsius\":19.5},\"id\":\"s\"}\n");
    assert_eq!(out.next(), json!({"id":"s","result":{"celsius":19.5},"version":2}));
    gateway.send("get setpoint\n");
    assert_eq!(out.next(), json!({"id":null,"result":{"celsius":19.5},"version":2}));
    gateway.send("{\"watch\":\"setpoint\",\"id\":\"w\"}\n");
    assert_eq!(out.next(), json!({"id":"w","result":{"watching":["setpoint"]}}));
    assert_eq!(
        out.next(),
        json!({"id":"w","property":"setpoint","version":2,"value":{"celsius":19.5}})
    );
    gateway.send("{\"action\":\"preheat\",\"args\":{\"targetCelsius\":22},\"id\":\"a\"}\n");
    let mut lines = Vec::new();
    loop {
        let line = out.next();
        let done = line.get("status").is_some_and(|s| s != "accepted");
        lines.push(line);
        if done {
            break;
        }
    }
    assert_eq!(lines[0]["status"], "accepted");
    assert_eq!(lines.iter().filter(|l| l.get("feedback").is_some()).count(), 5);
    assert_eq!(
        lines.last().unwrap(),
        &json!({"id":"a","status":"succeeded","result":{"reachedCelsius":22.0}})
    );
    // Watching everything is acknowledged with every name it watches; then come the properties'
    // current values (among readings of the signal).
    gateway.send("{\"watch\":null,\"id\":\"all\"}\n");
    let acknowledged = loop {
        let line = out.next();
        if line.get("result").is_some() {
            break line;
        }
    };
    assert_eq!(
        acknowledged,
        json!({"id":"all","result":{"watching":["temperatureChanged","setpoint","mode"]}})
    );
    let mut properties = Vec::new();
    while properties.len() < 2 {
        let line = out.next();
        assert_eq!(line["id"], "all", "{line}");
        properties.extend(line["property"].as_str().map(str::to_owned));
    }
    properties.sort_unstable();
    assert_eq!(properties, ["mode", "setpoint"]);
    gateway.stop();

    let jobs = Gateway::start(&live, "Jobs");
    let out = jobs.reader();
    jobs.send("{\"watch\":[\"notice\"],\"id\":1}\n");
    assert_eq!(out.next()["result"], json!({"watching":["notice"]}));
    // A compact value in JSON keeps its quotes: `lookup` answers with the key upper-cased.
    jobs.send("lookup key={\"species\": \"fern\"}\n");
    assert_eq!(out.next(), json!({"id":null,"result":{"value":"{\"SPECIES\": \"FERN\"}"}}));
    jobs.send("command note text=hey private=false\n");
    let mut seen = vec![out.next(), out.next()];
    seen.sort_by_key(|v| v.to_string());
    assert_eq!(
        seen,
        [json!({"id":1,"signal":"notice","args":{"text":"hey"}}), json!({"id":null,"result":{}})]
    );
    jobs.send("{\"action\":\"count\",\"args\":{\"to\":100000,\"stepMs\":20,\"startAfterMs\":0},\"id\":9}\n");
    assert_eq!(out.next()["status"], "accepted");
    jobs.send("{\"cancel\":9,\"id\":10}\n");
    let (ended, answered) = out.goal_end_and_answer(&json!(9), &json!(10));
    assert_eq!(ended, json!({"id":9,"status":"cancelled"}));
    assert!(answered["result"]["status"].is_string(), "{answered}");
    // Issue 15, defect 16: a goal started with a string id is cancelled by that string, and a
    // watch list of non-names is an error, not a watch of everything.
    jobs.send("{\"action\":\"count\",\"args\":{\"to\":100000,\"stepMs\":20,\"startAfterMs\":0},\"id\":\"goal-a\"}\n");
    assert_eq!(out.next()["status"], "accepted");
    jobs.send("{\"cancel\":\"goal-a\",\"id\":11}\n");
    let (ended, answered) = out.goal_end_and_answer(&json!("goal-a"), &json!(11));
    assert_eq!(ended, json!({"id":"goal-a","status":"cancelled"}));
    assert!(answered["result"]["status"].is_string(), "{answered}");
    jobs.send("{\"watch\":[1,2,3],\"id\":12}\n");
    let refused = out.next();
    assert_eq!((&refused["id"], &refused["error"]["kind"]), (&json!(12), &json!("usage")));
    jobs.stop();
}

/// §2.7 items 1 and 9: start and stop with no client ever opening the FIFOs, within 1 s.
#[test]
fn pipe_starts_and_stops_without_clients() {
    let live = Live::unix();
    let gateway = Gateway::start(&live, "Thermostat");
    let mode = std::fs::metadata(gateway.requests()).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    gateway.stop();
}

/// §2.7 item 2: stop while a client holds both ends, with unread output and the writer blocked
/// on a full pipe.
#[test]
fn pipe_stops_with_a_full_unread_pipe() {
    let live = Live::unix();
    let gateway = Gateway::start(&live, "Thermostat");
    let _held = OpenOptions::new().read(true).open(gateway.responses()).unwrap();
    let mut writer = OpenOptions::new().write(true).open(gateway.requests()).unwrap();
    let mut burst = String::new();
    for i in 0..2000 {
        burst.push_str(&format!("{{\"call\":\"getStatus\",\"id\":{i}}}\n"));
    }
    writer.write_all(burst.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    gateway.stop();
}

/// §2.7 items 3, 4 and 5: clients open and close at will; a closed write end is not shutdown.
#[test]
fn pipe_serves_sequential_clients() {
    let live = Live::unix();
    let mut gateway = Gateway::start(&live, "Thermostat");
    for round in 0..5 {
        let out = gateway.reader();
        gateway.send(&format!("{{\"get\":\"setpoint\",\"id\":{round}}}\n"));
        assert_eq!(out.next()["id"], round);
    }
    // A reader that closes before its answer arrives: the gateway survives the broken pipe.
    {
        let _gone = OpenOptions::new().read(true).open(gateway.responses()).unwrap();
    }
    gateway.send("getStatus\n");
    std::thread::sleep(Duration::from_millis(300));
    assert!(gateway.alive());
    let out = gateway.reader();
    gateway.send("{\"get\":\"setpoint\",\"id\":\"after\"}\n");
    assert_eq!(out.next()["id"], "after");
    gateway.stop();
}

/// §2.7 item 12: a partial line from a writer that died never merges into the next message.
#[test]
fn pipe_discards_a_dead_writers_partial_line() {
    let live = Live::unix();
    let gateway = Gateway::start(&live, "Thermostat");
    let out = gateway.reader();
    gateway.send("{\"get\":\"setpo");
    let error = out.next();
    assert_eq!(error["error"]["kind"], "usage", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("unfinished line"), "{error}");
    gateway.send("{\"get\":\"setpoint\",\"id\":2}\n");
    assert_eq!(out.next()["id"], 2);
    gateway.stop();
}

/// Issue 15, defect 9: a writer that dies mid-line while the next writer already has `requests`
/// open (so the gateway sees no moment without writers, and the bytes run together). The
/// unfinished line gets an error line naming it, and the next writer's request is answered.
#[test]
fn pipe_answers_a_request_written_right_after_a_dead_writers_partial_line() {
    let live = Live::unix();
    let gateway = Gateway::start(&live, "Thermostat");
    let out = gateway.reader();
    let mut dying = OpenOptions::new().write(true).open(gateway.requests()).unwrap();
    let mut next = OpenOptions::new().write(true).open(gateway.requests()).unwrap();
    dying.write_all(b"{\"call\":\"boost\",\"args\":{\"extraCelsius\":1").unwrap();
    drop(dying);
    next.write_all(b"{\"get\":\"setpoint\",\"id\":2}\n").unwrap();
    let error = out.next();
    assert_eq!((&error["id"], &error["error"]["kind"]), (&Value::Null, &json!("usage")), "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("unfinished line of 40 bytes"), "{error}");
    assert!(message.contains(r#""{\"call\":\"boost\",\"args\":{\"extraCelsius\":1""#), "{error}");
    let answer = out.next();
    assert_eq!(answer["id"], 2, "{answer}");
    assert!(answer["result"]["celsius"].is_number(), "{answer}");
    drop(next);
    gateway.stop();
}

/// §2.7 items 7 and 8: lines longer than PIPE_BUF, an over-long line, many small messages in
/// order, JSON with escaped newlines.
#[test]
fn pipe_handles_long_lines_and_bursts() {
    let live = Live::unix();
    let gateway = Gateway::start(&live, "Thermostat");
    let out = gateway.reader();
    let reason = "x\\n".repeat(100_000);
    gateway.send(&format!(
        "{{\"call\":\"boost\",\"args\":{{\"extraCelsius\":1,\"forHowLong\":\"PT1M\",\"reason\":\"{reason}\"}},\"id\":\"long\"}}\n"
    ));
    let reply = out.next();
    assert_eq!(reply["id"], "long");
    assert!(reply["result"]["endsAt"].is_string(), "{reply}");
    // Over the 16 MiB limit: an error line, and the gateway goes on.
    let mut huge = vec![b'a'; 17 * 1024 * 1024];
    huge.push(b'\n');
    let mut fifo = OpenOptions::new().write(true).open(gateway.requests()).unwrap();
    fifo.write_all(&huge).unwrap();
    fifo.write_all(b"{\"get\":\"setpoint\",\"id\":\"next\"}\n").unwrap();
    drop(fifo);
    // Requests are handled concurrently (docs/shell.md): the two answers may come either way.
    let (first, second) = (out.next(), out.next());
    let (error, next) = if first["id"].is_null() { (first, second) } else { (second, first) };
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("limit"), "{error}");
    assert_eq!(next["id"], "next", "{next}");
    let mut burst = String::new();
    for i in 0..500 {
        burst.push_str(&format!("{{\"get\":\"setpoint\",\"id\":{i}}}\n"));
    }
    gateway.send(&burst);
    let mut ids: Vec<i64> = (0..500).map(|_| out.next()["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..500).collect::<Vec<_>>());
    gateway.stop();
}

/// Issue 15, defect 9: a burst of 20,000 requests with a reader attached loses no response,
/// even when the reader falls behind (here it starts reading a second late). Request intake
/// pushes back (the gateway stops reading requests while 1024 are in progress and 1024
/// responses wait), instead of dropping responses that do not fit the queue.
#[test]
fn pipe_answers_every_request_of_a_burst() {
    const BURST: i64 = 20_000;
    let live = Live::unix();
    let gateway = Gateway::start(&live, "Thermostat");
    let out = Reader::open_paused(gateway.responses(), Duration::from_secs(1));
    let requests = gateway.requests();
    let writer = std::thread::spawn(move || {
        let mut burst = String::new();
        for i in 0..BURST {
            burst.push_str(&format!("{{\"call\":\"getStatus\",\"id\":{i}}}\n"));
        }
        let mut fifo = OpenOptions::new().write(true).open(requests).unwrap();
        fifo.write_all(burst.as_bytes()).unwrap();
    });
    let mut ids: Vec<i64> = (0..BURST)
        .map(|n| {
            let line = out.rx.recv_timeout(Duration::from_secs(10));
            let line = line.unwrap_or_else(|_| panic!("only {n} of {BURST} responses arrived"));
            let reply: Value = serde_json::from_str(&line).unwrap();
            assert!(reply["result"]["celsius"].is_number(), "{reply}");
            reply["id"].as_i64().unwrap()
        })
        .collect();
    writer.join().unwrap();
    ids.sort_unstable();
    assert_eq!(ids, (0..BURST).collect::<Vec<_>>());
    gateway.stop();
}

/// §2.7 item 14: malformed lines are answered with an error line, never by exiting.
#[test]
fn pipe_answers_malformed_lines_with_errors() {
    let live = Live::unix();
    let mut gateway = Gateway::start(&live, "Thermostat");
    let out = gateway.reader();
    let bad = [
        "{\"call\":",
        "[1,2,3]",
        "{\"id\":1}",
        "{\"call\":\"boost\",\"args\":{\"extraCelsius\":\"hot\"},\"id\":2}",
        "nosuchmethod",
        "set mode mode=eco",
        "boost 'unterminated",
        "\u{1}\u{2}",
    ];
    for line in bad {
        gateway.send(&format!("{line}\n"));
        let reply = out.next();
        assert!(reply.get("error").is_some(), "{line}: {reply}");
    }
    gateway.send("\n\n");
    gateway.send("{\"get\":\"setpoint\",\"id\":\"ok\"}\n");
    assert_eq!(out.next()["id"], "ok");
    assert!(gateway.alive());
    gateway.stop();
}

/// §2.7 item 6: FIFOs deleted while in use are recreated; new clients find them.
#[test]
fn pipe_recreates_deleted_fifos() {
    let live = Live::unix();
    let gateway = Gateway::start(&live, "Thermostat");
    std::fs::remove_file(gateway.requests()).unwrap();
    std::fs::remove_file(gateway.responses()).unwrap();
    wait_for(&gateway.requests());
    wait_for(&gateway.responses());
    std::thread::sleep(Duration::from_millis(300));
    let out = gateway.reader();
    gateway.send("{\"get\":\"setpoint\",\"id\":\"again\"}\n");
    assert_eq!(out.next()["id"], "again");
    gateway.stop();
}

/// §2.7 item 13: a new reader never receives responses meant for an earlier one.
#[test]
fn pipe_has_no_stale_backlog() {
    let live = Live::unix();
    let gateway = Gateway::start(&live, "Thermostat");
    // Responses while nobody reads are dropped.
    gateway.send("{\"get\":\"setpoint\",\"id\":\"unread\"}\n");
    std::thread::sleep(Duration::from_millis(300));
    {
        // A reader that takes one line of several and leaves.
        let file = OpenOptions::new().read(true).open(gateway.responses()).unwrap();
        let mut reader = BufReader::with_capacity(1, file);
        gateway.send("{\"get\":\"setpoint\",\"id\":\"old1\"}\n{\"get\":\"setpoint\",\"id\":\"old2\"}\n{\"get\":\"setpoint\",\"id\":\"old3\"}\n");
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        assert!(first.contains("old"), "{first}");
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(300));
    let out = gateway.reader();
    gateway.send("{\"get\":\"setpoint\",\"id\":\"fresh\"}\n");
    assert_eq!(out.next()["id"], "fresh");
    assert!(out.nothing_for(Duration::from_millis(300)));
    gateway.stop();
}

/// §2.7 item 11: two readers split the lines (documented); nothing is duplicated or corrupted,
/// and the gateway keeps working.
#[test]
fn pipe_survives_two_readers() {
    let live = Live::unix();
    let mut gateway = Gateway::start(&live, "Thermostat");
    let a = gateway.reader();
    let b = gateway.reader();
    let mut seen = Vec::new();
    for i in 0..20 {
        gateway.send(&format!("{{\"get\":\"setpoint\",\"id\":{i}}}\n"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let line = loop {
            if let Ok(line) = a.rx.recv_timeout(Duration::from_millis(20)) {
                break line;
            }
            if let Ok(line) = b.rx.recv_timeout(Duration::from_millis(20)) {
                break line;
            }
            assert!(Instant::now() < deadline, "response {i} went nowhere");
        };
        let value: Value = serde_json::from_str(&line).expect("whole JSON lines");
        seen.push(value["id"].as_i64().unwrap());
    }
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    assert!(gateway.alive());
    gateway.stop();
}

fn mode(path: &std::path::Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

/// Waits up to 5 s for `path` to go.
fn wait_gone(path: &std::path::Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// A gateway that was killed leaves its sessions' directories; the next one on the same DIR
/// removes those (nothing but the two FIFOs inside), so their names can be used again, and
/// leaves anything else alone.
#[test]
fn pipe_removes_sessions_a_killed_gateway_left() {
    let live = Live::unix();
    let mut gateway = Gateway::start(&live, "Thermostat");
    let left = gateway.open_session("left");
    gateway.child.kill().unwrap();
    gateway.child.wait().unwrap();
    assert!(left.join("requests").exists() && left.join("responses").exists());
    // Its main FIFOs go too, so that their reappearance says the next gateway is up.
    std::fs::remove_file(gateway.requests()).unwrap();
    std::fs::remove_file(gateway.responses()).unwrap();
    let mine = gateway.dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("requests"), "a file, not a FIFO").unwrap();
    let empty = gateway.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let dir = gateway.dir.path().to_str().unwrap().to_owned();
    gateway.child = live
        .command(&["pipe", "Thermostat", "--dir", &dir])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&gateway.responses());
    let main = gateway.reader();
    assert_eq!(gateway.open_session("left"), left);
    assert_eq!(main.next()["result"]["session"], "left", "the name is free again");
    assert!(mine.join("requests").is_file() && empty.is_dir(), "a client's directory was removed");
    std::fs::remove_dir_all(&mine).unwrap();
    std::fs::remove_dir(&empty).unwrap();
    gateway.stop();
}

/// Issue 15, defect 9: a session is a private pair `DIR/NAME/requests` and `DIR/NAME/responses`
/// (FIFOs 0600 in a 0700 directory), served like the main pair. Names are checked, one name is
/// one session, at most 64 are open; a session ends on `close` (from either pair), once neither
/// FIFO has been open for `--session-idle`, and on stop, and its files go with it.
#[test]
fn pipe_sessions_open_serve_and_end() {
    let live = Live::unix();
    let gateway = Gateway::start_with(&live, "Thermostat", &["--session-idle", "1s"]);
    let main = gateway.reader();
    let a = gateway.open_session("a");
    assert_eq!(
        main.next(),
        json!({"id":"a","result":{"session":"a","requests":a.join("requests"),"responses":a.join("responses")}})
    );
    assert_eq!(mode(&a), 0o700);
    assert_eq!((mode(&a.join("requests")), mode(&a.join("responses"))), (0o600, 0o600));
    // Served like the main pair; its answers go to its own reader only.
    let out = Reader::open(a.join("responses"));
    let send = |text: &str| {
        OpenOptions::new().write(true).open(a.join("requests")).unwrap().write_all(text.as_bytes())
    };
    send("{\"get\":\"setpoint\",\"id\":1}\nget setpoint\n").unwrap();
    let (first, second) = (out.next(), out.next());
    let mut ids = [first["id"].clone(), second["id"].clone()];
    ids.sort_by_key(Value::is_null);
    assert_eq!(ids, [json!(1), Value::Null]);
    assert!(first["result"]["celsius"].is_number() && second["result"]["celsius"].is_number());
    send("{\"watch\":\"setpoint\",\"id\":\"w\"}\n").unwrap();
    assert_eq!(out.next(), json!({"id":"w","result":{"watching":["setpoint"]}}));
    assert_eq!(out.next()["property"], "setpoint");
    assert!(main.nothing_for(Duration::from_millis(200)), "a session's answer on the main pair");
    // Names: checked; one session per name.
    for bad in ["", ".hidden", "a/b", "requests", &"x".repeat(65)] {
        gateway.send(&format!("{{\"session\":{},\"id\":\"bad\"}}\n", json!(bad)));
        let refused = main.next();
        assert_eq!(refused["error"]["kind"], "usage", "{bad:?}: {refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains("not a session name"));
    }
    gateway.send("{\"session\":\"a\",\"id\":\"again\"}\n");
    let refused = main.next();
    assert!(refused["error"]["message"].as_str().unwrap().contains("already open"), "{refused}");
    // While a reader has the session's responses open it stays, however long; the session ends
    // itself from its own pair (answered first), and its directory goes.
    std::thread::sleep(Duration::from_millis(1800));
    assert!(a.join("requests").exists(), "a session in use was ended as idle");
    send("{\"close\":true,\"id\":3}\n").unwrap();
    assert_eq!(out.next(), json!({"id":3,"result":{"closed":"a"}}));
    assert!(wait_gone(&a), "a closed session's directory stayed");
    drop(out);
    // Closed from the main pair; an unknown session is not_found.
    let b = gateway.open_session("b");
    assert_eq!(main.next()["id"], "b");
    gateway.send("close b\n");
    assert_eq!(main.next(), json!({"id":null,"result":{"closed":"b"}}));
    assert!(wait_gone(&b));
    gateway.send("{\"close\":\"never\",\"id\":4}\n");
    assert_eq!(main.next()["error"]["kind"], "not_found");
    gateway.send("{\"close\":true,\"id\":5}\n");
    assert_eq!(main.next()["error"]["kind"], "usage");
    // A session nobody opens, or that its client left, ends after --session-idle.
    let idle = gateway.open_session("idle");
    assert_eq!(main.next()["id"], "idle");
    assert!(wait_gone(&idle), "an unused session was kept");
    let left = gateway.open_session("left");
    assert_eq!(main.next()["id"], "left");
    {
        let _reader = OpenOptions::new().read(true).open(left.join("responses")).unwrap();
        let mut writer = OpenOptions::new().write(true).open(left.join("requests")).unwrap();
        writer.write_all(b"getStatus\n").unwrap();
        std::thread::sleep(Duration::from_millis(1800));
        assert!(left.join("responses").exists(), "a session in use was ended as idle");
    }
    assert!(wait_gone(&left), "a session its client left was kept");
    // At most 64 at once; stop removes them all.
    let names: Vec<String> = (0..64).map(|i| format!("s{i}")).collect();
    let mut readers = Vec::new();
    for name in &names {
        let dir = gateway.open_session(name);
        assert_eq!(main.next()["id"], name.as_str());
        readers.push(OpenOptions::new().read(true).open(dir.join("responses")).unwrap());
    }
    gateway.send("{\"session\":\"one-more\",\"id\":\"m\"}\n");
    let refused = main.next();
    assert!(refused["error"]["message"].as_str().unwrap().contains("64 sessions"), "{refused}");
    gateway.stop();
}

/// Writes `partial` (no newline) on one writer of `dying`, then, with a second writer that
/// opened `next` before the first closed, the compact request `get setpoint`.
fn die_mid_line_then_write(dying: PathBuf, next: PathBuf) {
    let mut first = OpenOptions::new().write(true).open(dying).unwrap();
    let mut second = OpenOptions::new().write(true).open(next).unwrap();
    first.write_all(b"{\"call\":\"boost\",\"args\":{\"extraCelsius\":1").unwrap();
    drop(first);
    second.write_all(b"get setpoint\n").unwrap();
}

/// Issue 15, defect 9, the compact case: a writer dies mid-line, and another client writes a
/// compact request at once. On the shared pair (the other writer opened before the first
/// closed) the request continues the unfinished line and is lost to an error: a FIFO does not
/// say whose bytes it carries, so no gateway can split them. With a session each, the other
/// client's request is answered, and the dead writer's line gets its own error.
#[test]
fn pipe_sessions_keep_a_dead_writers_partial_line_from_another_clients_compact_request() {
    let live = Live::unix();
    let gateway = Gateway::start(&live, "Thermostat");
    {
        let out = gateway.reader();
        die_mid_line_then_write(gateway.requests(), gateway.requests());
        let merged = out.next();
        assert_eq!(merged["error"]["kind"], "usage", "the shared pair: {merged}");
        assert!(out.nothing_for(Duration::from_millis(300)), "the shared pair answered it");
        // Printed, not asserted (a race): the other writer opens only after the first closed.
        let mut merged = 0;
        for _ in 0..10 {
            let mut first = OpenOptions::new().write(true).open(gateway.requests()).unwrap();
            first.write_all(b"{\"call\":\"boost\",\"args\":{\"extraCelsius\":1").unwrap();
            drop(first);
            gateway.send("get setpoint\n");
            let mut answered = false;
            while let Ok(line) = out.rx.recv_timeout(Duration::from_millis(300)) {
                answered |= line.contains("\"result\"");
            }
            merged += usize::from(!answered);
        }
        eprintln!("the shared pair, 10 rounds: {merged} compact requests lost to a dead writer");
        // Asking for a session is safe on the shared pair: a JSON request is split off, also
        // from an unfinished compact line with which it happens to parse.
        let mut first = OpenOptions::new().write(true).open(gateway.requests()).unwrap();
        let mut second = OpenOptions::new().write(true).open(gateway.requests()).unwrap();
        first.write_all(b"get setpo").unwrap();
        drop(first);
        second.write_all(b"{\"session\":\"asked\",\"id\":1}\n").unwrap();
        drop(second);
        let mut lines = vec![out.next(), out.next()];
        lines.sort_by_key(|line| line["id"].is_null());
        assert_eq!(lines[0]["result"]["session"], "asked", "{lines:?}");
        let message = lines[1]["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(r#"unfinished line of 9 bytes"#), "{lines:?}");
        assert!(message.contains(r#""get setpo""#), "{lines:?}");
        gateway.send("{\"close\":\"asked\"}\n");
        assert_eq!(out.next()["result"]["closed"], "asked");
    }
    for round in 0..5 {
        let (a, b) = (
            gateway.open_session(&format!("a{round}")),
            gateway.open_session(&format!("b{round}")),
        );
        let out_a = Reader::open(a.join("responses"));
        let out_b = Reader::open(b.join("responses"));
        die_mid_line_then_write(a.join("requests"), b.join("requests"));
        let answer = out_b.next();
        assert_eq!(answer["id"], Value::Null, "{answer}");
        assert!(answer["result"]["celsius"].is_number(), "{answer}");
        let error = out_a.next();
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("unfinished line of 40 bytes"), "{error}");
        assert!(out_b.nothing_for(Duration::from_millis(100)));
    }
    gateway.stop();
}

/// Requests of one client: 20 `get setpoint` lines with ids `PREFIX-0` to `PREFIX-19`.
fn twenty(prefix: &str) -> String {
    (0..20).map(|i| format!("{{\"get\":\"setpoint\",\"id\":\"{prefix}-{i}\"}}\n")).collect()
}

/// One round of a reader replaced at once: the old client's reader takes 10 bytes of 20
/// answers and leaves; the new client's reader opens right away (no pause), the new client
/// writes 20 requests, and its reader reads until 20 of its own answers came (or 10 s passed)
/// and 50 ms more. Returns (its own answers, other lines that parse, lines that do not).
fn replace_reader_at_once(
    old: (PathBuf, PathBuf),
    new: (PathBuf, PathBuf),
) -> (usize, usize, usize) {
    use std::io::Read;
    let mut file = OpenOptions::new().read(true).open(&old.1).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&old.0)
        .unwrap()
        .write_all(twenty("old").as_bytes())
        .unwrap();
    let mut some = [0u8; 10];
    file.read_exact(&mut some).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(file);
    let out = Reader::open(new.1.clone());
    OpenOptions::new()
        .write(true)
        .open(&new.0)
        .unwrap()
        .write_all(twenty("new").as_bytes())
        .unwrap();
    let (mut own, mut other, mut cut) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while own < 20 && Instant::now() < deadline {
        let Ok(line) = out.rx.recv_timeout(Duration::from_millis(100)) else { continue };
        match serde_json::from_str::<Value>(&line) {
            Ok(v) if v["id"].as_str().is_some_and(|id| id.starts_with("new-")) => own += 1,
            Ok(_) => other += 1,
            Err(_) => cut += 1,
        }
    }
    while let Ok(line) = out.rx.recv_timeout(Duration::from_millis(50)) {
        match serde_json::from_str::<Value>(&line) {
            Ok(_) => other += 1,
            Err(_) => cut += 1,
        }
    }
    (own, other, cut)
}

/// Issue 15, defect 9, the reader case: a reader that leaves unread lines is replaced at once
/// (no pause) by another client's reader. With a session each, the new reader gets exactly its
/// own answers, every one a whole line: never a line of the old session, never a cut one. The
/// same rounds on the shared pair are printed, not asserted (a race: the new reader usually
/// gets most of the old one's 19 unread lines, and sometimes a cut line).
#[test]
fn pipe_session_readers_never_see_another_sessions_lines() {
    let live = Live::unix();
    let gateway = Gateway::start(&live, "Thermostat");
    let shared = (gateway.requests(), gateway.responses());
    let (mut other, mut cut) = (0, 0);
    for _ in 0..10 {
        let round = replace_reader_at_once(shared.clone(), shared.clone());
        (other, cut) = (other + round.1, cut + round.2);
    }
    eprintln!("the shared pair, 10 rounds: {other} lines of the old reader, {cut} cut lines");
    for round in 0..10 {
        let old = gateway.open_session(&format!("old{round}"));
        let new = gateway.open_session(&format!("new{round}"));
        let pair = |dir: &PathBuf| (dir.join("requests"), dir.join("responses"));
        let seen = replace_reader_at_once(pair(&old), pair(&new));
        assert_eq!(seen, (20, 0, 0), "round {round}: (own, other, cut)");
    }
    gateway.stop();
}
