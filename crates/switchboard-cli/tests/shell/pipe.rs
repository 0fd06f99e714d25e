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
        let dir = tempfile::Builder::new().prefix("sb-pipe-").tempdir().unwrap();
        let child = live
            .command(&["pipe", service, "--dir", dir.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
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

    /// SIGTERM: must exit 0 within a second and remove the FIFOs.
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
    let mut end = out.next();
    let mut cancel_reply = None;
    while end.get("status").is_none()
        || end["status"] == "accepted"
        || end.get("feedback").is_some()
    {
        if end["id"] == 10 {
            cancel_reply = Some(end.clone());
        }
        end = out.next();
    }
    assert_eq!(end, json!({"id":9,"status":"cancelled"}));
    let _ = cancel_reply;
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
    let error = out.next();
    assert!(error["error"]["message"].as_str().unwrap().contains("limit"), "{error}");
    assert_eq!(out.next()["id"], "next");
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
