//! `switchboard web`, the HTTP/JSON gateway, run as a process against a real thermostat (and
//! the jobs service) over the Unix socket and the loopback MQTT broker: calls, properties,
//! signal and property streams, goals, the status codes and JSON bodies of failures, the
//! safety rules (token, loopback, CORS, body and stream limits), the console's files served
//! without the token, the served OpenAPI document,
//! the curl example of docs/web.md, and a schemathesis fuzz run against the documents.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

// Shared with tests/cli.rs, which uses the parts this file does not.
#[allow(dead_code)]
#[path = "shell/support.rs"]
mod support;

use support::Live;

/// How long any single step may take before the test calls it a hang (generous: 2 cores,
/// other builds running).
const STEP: Duration = Duration::from_secs(30);

/// A running gateway, killed when dropped.
struct Gateway {
    child: Child,
    address: String,
}

impl Gateway {
    /// Starts `switchboard web --listen 127.0.0.1:0 EXTRA…` against `live`'s servers.
    fn start(live: &Live, extra: &[&str]) -> Gateway {
        let mut args = vec!["web", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut command = live.command(&args);
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(STEP).expect("the gateway says where it listens");
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Gateway { child, address }
    }

    /// Sends one request; returns the status, the headers (lower-cased names) and the body.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(&self.address).expect("connect to the gateway");
        stream.set_read_timeout(Some(STEP)).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        // The server may answer (413) before taking the whole body; that is fine.
        let _ = stream.write_all(body);
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        let mut body = Vec::new();
        if headers.iter().any(|(n, v)| n == "transfer-encoding" && v == "chunked") {
            while let Some(chunk) = read_chunk(&mut reader) {
                body.extend(chunk);
            }
        } else {
            reader.read_to_end(&mut body).expect("read the body");
        }
        Reply { status, headers, body }
    }

    fn json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let body = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
        let reply = self.request(method, path, &[("Content-Type", "application/json")], &body);
        let value = serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
            panic!("{method} {path}: not JSON ({e}): {}", String::from_utf8_lossy(&reply.body))
        });
        (reply.status, value)
    }

    /// Opens an event stream; `Events::next` reads its events.
    fn events(&self, path: &str) -> Events {
        let mut stream = TcpStream::connect(&self.address).expect("connect to the gateway");
        stream.set_read_timeout(Some(STEP)).unwrap();
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.address
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        Events { reader, status, headers, pending: String::new() }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a status line");
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("a header line");
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').expect("a header");
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    (status, headers)
}

/// One chunk of a chunked body; `None` at the last.
fn read_chunk(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let size = usize::from_str_radix(line.trim(), 16).ok()?;
    if size == 0 {
        return None;
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).ok()?;
    chunk.truncate(size);
    Some(chunk)
}

/// An open event stream.
struct Events {
    reader: BufReader<TcpStream>,
    status: u16,
    headers: Vec<(String, String)>,
    pending: String,
}

impl Events {
    /// The next event: its name and its data as JSON (`None` once the stream ends).
    fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_owned();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, serde_json::from_str(&data).expect("event data is JSON")));
            }
            let chunk = read_chunk(&mut self.reader)?;
            self.pending.push_str(&String::from_utf8(chunk).expect("UTF-8 events"));
        }
    }

    /// The next event named `name`, skipping others.
    fn next_named(&mut self, name: &str) -> Value {
        let deadline = Instant::now() + STEP;
        while Instant::now() < deadline {
            match self.next() {
                Some((n, data)) if n == name => return data,
                Some(_) => {}
                None => panic!("the stream ended before a `{name}` event"),
            }
        }
        panic!("no `{name}` event within {STEP:?}");
    }
}

fn service(live: &Live, interface: &str) -> String {
    format!("/api/services/{interface}/{}", live.instance())
}

/// What both transports must do: call, get/set, stream a signal and a property, run a goal to
/// its end, cancel one, and report a declared error with its status and fields.
fn exercise(live: &Live, gateway: &Gateway) {
    let thermostat = service(live, "Thermostat");
    let jobs = service(live, "Jobs");

    let (status, reply) = gateway.json(
        "POST",
        &format!("{thermostat}/methods/boost"),
        &json!({ "extraCelsius": 2.0, "forHowLong": "PT1M", "reason": "test" }),
    );
    assert_eq!(status, 200, "{reply}");
    assert!(reply["endsAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{reply}");
    let (status, reply) =
        gateway.json("POST", &format!("{thermostat}/methods/getStatus"), &Value::Null);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["mode"], 1, "{reply}");

    // A signal arrives on its stream.
    let mut signals = gateway.events(&format!("{thermostat}/signals/temperatureChanged/events"));
    assert_eq!(signals.status, 200);
    assert!(
        signals.headers.iter().any(|(n, v)| n == "content-type" && v == "text/event-stream"),
        "{:?}",
        signals.headers
    );
    let signal = signals.next_named("signal");
    assert_eq!(signal["signal"], "temperatureChanged", "{signal}");
    assert!(signal["args"]["celsius"].is_f64(), "{signal}");
    drop(signals);

    // A property: set, read back, and the change arrives on its stream.
    let setpoint = format!("{thermostat}/properties/setpoint");
    let mut changes = gateway.events(&format!("{setpoint}/events"));
    assert_eq!(changes.status, 200);
    let (status, reply) = gateway.json("PUT", &setpoint, &json!({ "celsius": 23.5 }));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({ "celsius": 23.5 }));
    let (status, reply) = gateway.json("GET", &setpoint, &Value::Null);
    assert_eq!((status, reply), (200, json!({ "celsius": 23.5 })));
    let deadline = Instant::now() + STEP;
    loop {
        let change = changes.next_named("property");
        assert_eq!(change["property"], "setpoint", "{change}");
        if change["value"]["celsius"] == 23.5 {
            break;
        }
        assert!(Instant::now() < deadline, "the change to 23.5 did not arrive");
    }
    drop(changes);

    // A goal runs to its end, followed over its stream.
    let (status, started) = gateway.json(
        "POST",
        &format!("{thermostat}/actions/preheat/goals"),
        &json!({ "targetCelsius": 25.0 }),
    );
    assert_eq!(status, 202, "{started}");
    let id = started["goal"].as_str().expect("a goal id").to_owned();
    let goal = format!("{thermostat}/actions/preheat/goals/{id}");
    let mut follow = gateway.events(&format!("{goal}/events"));
    assert_eq!(follow.status, 200);
    let end = follow.next_named("end");
    assert_eq!(end["status"], "succeeded", "{end}");
    assert_eq!(end["result"]["reachedCelsius"], 25.0, "{end}");
    let (status, state) = gateway.json("GET", &goal, &Value::Null);
    assert_eq!(status, 200);
    assert_eq!(state["status"], "succeeded", "{state}");
    assert_eq!(state["feedback"]["percent"], 100, "{state}");

    // A preheat is cancelled (the test servers take two seconds to preheat).
    let (status, started) = gateway.json(
        "POST",
        &format!("{thermostat}/actions/preheat/goals"),
        &json!({ "targetCelsius": 24.0 }),
    );
    assert_eq!(status, 202, "{started}");
    let id = started["goal"].as_str().expect("a goal id");
    let (status, state) =
        gateway.json("DELETE", &format!("{thermostat}/actions/preheat/goals/{id}"), &Value::Null);
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["status"], "cancelled", "{state}");

    // A long goal is cancelled.
    let (status, started) = gateway.json(
        "POST",
        &format!("{jobs}/actions/count/goals"),
        &json!({ "to": 100000, "stepMs": 50, "startAfterMs": 0 }),
    );
    assert_eq!(status, 202, "{started}");
    let id = started["goal"].as_str().expect("a goal id");
    let goal = format!("{jobs}/actions/count/goals/{id}");
    let (status, state) = gateway.json("DELETE", &goal, &Value::Null);
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["status"], "cancelled", "{state}");

    // A declared error: 422, its name, code and fields.
    let (status, refused) = gateway.json(
        "POST",
        &format!("{thermostat}/actions/preheat/goals"),
        &json!({ "targetCelsius": 99.0 }),
    );
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["kind"], "remote", "{refused}");
    assert_eq!(refused["error"]["name"], "OutOfRange", "{refused}");
    assert_eq!(refused["error"]["code"], 1, "{refused}");
    assert_eq!(
        refused["error"]["details"],
        json!({ "requestedCelsius": 99.0, "minCelsius": 5.0, "maxCelsius": 30.0 })
    );
}

#[test]
fn the_gateway_serves_the_thermostat_over_unix() {
    let live = Live::unix();
    let gateway = Gateway::start(&live, &[]);
    exercise(&live, &gateway);
    let thermostat = service(&live, "Thermostat");

    let (status, listed) = gateway.json("GET", "/api/services", &Value::Null);
    assert_eq!(status, 200, "{listed}");
    let services = listed["services"].as_array().expect("a list");
    assert!(
        services.iter().any(|s| s["interface"] == "Thermostat" && s["instance"] == "default"),
        "{listed}"
    );

    let (status, described) = gateway.json("GET", &thermostat, &Value::Null);
    assert_eq!(status, 200);
    assert_eq!(described["name"], "Thermostat", "{described}");

    // Unknown members, services and routes: 404 with a clear message.
    let (status, error) = gateway.json("POST", &format!("{thermostat}/methods/nope"), &json!({}));
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["error"]["kind"], "not_found");
    assert_eq!(
        error["error"]["message"],
        "Thermostat has no method `nope`; its methods: boost, getStatus"
    );
    let (status, error) =
        gateway.json("GET", "/api/services/Nothing/default/properties/x", &Value::Null);
    assert_eq!(status, 404, "{error}");
    let (status, error) = gateway.json("GET", "/nowhere", &Value::Null);
    assert_eq!(status, 404, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("no such route"), "{error}");

    // Bodies that do not fit: 400 with the reason.
    let (status, error) = gateway.json(
        "PUT",
        &format!("{thermostat}/properties/setpoint"),
        &json!({ "celsius": "hot" }),
    );
    assert_eq!(status, 400, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("celsius"), "{error}");
    let reply = gateway.request("POST", &format!("{thermostat}/methods/getStatus"), &[], b"[1,");
    assert_eq!(reply.status, 400);
    let (status, error) =
        gateway.json("PUT", &format!("{thermostat}/properties/mode"), &json!({ "mode": 0 }));
    assert_eq!(status, 405, "{error}");
    // An undeclared refusal of the server is 422 too.
    let (status, error) = gateway.json(
        "POST",
        &format!("{thermostat}/methods/boost"),
        &json!({ "extraCelsius": 50.0, "forHowLong": "PT1M" }),
    );
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["name"], "ApplicationError", "{error}");

    // More than 1 MiB: 413, with a JSON body.
    let big = vec![b' '; 2 * 1024 * 1024];
    let reply = gateway.request("POST", &format!("{thermostat}/methods/getStatus"), &[], &big);
    assert_eq!(reply.status, 413);
    let error: Value = serde_json::from_slice(&reply.body).expect("a JSON body");
    assert!(error["error"]["message"].as_str().unwrap().contains("larger than"), "{error}");

    // The served OpenAPI document is the generator's, for the interface the server describes.
    let (status, served) = gateway.json("GET", "/openapi/Thermostat.json", &Value::Null);
    assert_eq!(status, 200);
    let iface =
        switchboard_codegen::load_file(&support::example("examples/thermostat/thermostat.yaml"))
            .unwrap()
            .parsed
            .interface
            .unwrap();
    let generated = switchboard_codegen::openapi::document(&iface, None);
    assert_eq!(served["paths"], generated["paths"]);
    assert_eq!(served["components"], generated["components"]);
    let (status, _) = gateway.json("GET", "/openapi/Nothing.json", &Value::Null);
    assert_eq!(status, 404);

    // No CORS headers unless asked for.
    let reply = gateway.request("GET", "/api/services", &[("Origin", "https://example.org")], b"");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[test]
fn the_gateway_serves_the_thermostat_over_mqtt() {
    let Some(live) = Live::mqtt("web") else { return };
    let gateway = Gateway::start(&live, &[]);
    exercise(&live, &gateway);
}

/// The same routes over the other shared brokers.
fn serves_the_thermostat_on(broker: Option<switchboard_testkit::broker::SharedBroker>) {
    let Some(broker) = broker else { return };
    let Some(live) = Live::on_broker(&broker, "web") else { return };
    let gateway = Gateway::start(&live, &[]);
    exercise(&live, &gateway);
}

#[test]
fn the_gateway_serves_the_thermostat_over_nats() {
    serves_the_thermostat_on(switchboard_testkit::broker::shared_nats());
}

#[test]
fn the_gateway_serves_the_thermostat_over_redis() {
    serves_the_thermostat_on(switchboard_testkit::broker::shared_redis());
}

#[test]
fn the_gateway_serves_the_thermostat_over_amqp() {
    serves_the_thermostat_on(switchboard_testkit::broker::shared_rabbitmq());
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let live = Live::unix();
    let output = live.run(&["web", "--listen", "0.0.0.0:0"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a loopback address, needs --token"), "{stderr}");
    let output = live.run(&["web", "--listen", "127.0.0.1:0", "--token", ""]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn a_token_is_required_when_set_and_cors_only_when_configured() {
    let live = Live::unix();
    let gateway = Gateway::start(
        &live,
        &["--token", "s3cret", "--cors", "https://console.example", "--max-streams", "1"],
    );
    let path = format!("{}/properties/setpoint", service(&live, "Thermostat"));
    let reply = gateway.request("GET", &path, &[], b"");
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    let reply = gateway.request("GET", &path, &[("Authorization", "Bearer wrong")], b"");
    assert_eq!(reply.status, 401);
    let auth = ("Authorization", "Bearer s3cret");
    let reply = gateway.request("GET", &path, &[auth], b"");
    assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(&reply.body));

    // The console's page and files need no token (they hold no data), and are locked to
    // their own origin; the API behind them still needs it.
    let page = gateway.request("GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let policy = page.header("content-security-policy").expect("a Content-Security-Policy");
    assert!(policy.contains("connect-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert!(String::from_utf8_lossy(&page.body).contains("/console/app.js"));
    for file in ["app.js", "api.js", "forms.js"] {
        let script = gateway.request("GET", &format!("/console/{file}"), &[], b"");
        assert_eq!(script.status, 200, "{file}");
        assert_eq!(script.header("content-type"), Some("text/javascript; charset=utf-8"));
    }
    let style = gateway.request("GET", "/console/style.css", &[], b"");
    assert_eq!(style.header("content-type"), Some("text/css; charset=utf-8"));
    let missing = gateway.request("GET", "/console/secrets.txt", &[], b"");
    assert_eq!(missing.status, 404);
    let listing = gateway.request("GET", "/api/services", &[], b"");
    assert_eq!(listing.status, 401);

    // CORS: the named origin only; preflights need no token.
    let console = ("Origin", "https://console.example");
    let reply = gateway.request("GET", &path, &[auth, console], b"");
    assert_eq!(reply.header("access-control-allow-origin"), Some("https://console.example"));
    let reply = gateway.request("GET", &path, &[auth, ("Origin", "https://evil.example")], b"");
    assert_eq!(reply.header("access-control-allow-origin"), None);
    let reply = gateway.request(
        "OPTIONS",
        &path,
        &[console, ("Access-Control-Request-Method", "PUT")],
        b"",
    );
    assert_eq!(reply.status, 204);
    assert!(reply.header("access-control-allow-methods").unwrap().contains("PUT"));

    // One stream at a time with --max-streams 1: the second is refused with 503.
    let mut stream_gateway = TcpStream::connect(&gateway.address).unwrap();
    stream_gateway.set_read_timeout(Some(STEP)).unwrap();
    let events = format!("{}/signals/temperatureChanged/events", service(&live, "Thermostat"));
    let head = format!("GET {events} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n");
    stream_gateway.write_all(head.as_bytes()).unwrap();
    let mut first = BufReader::new(stream_gateway);
    let (status, _) = read_head(&mut first);
    assert_eq!(status, 200);
    let reply = gateway.request("GET", &events, &[auth], b"");
    assert_eq!(reply.status, 503, "{:?}", String::from_utf8_lossy(&reply.body));
    // Closing the first frees its place.
    drop(first);
    let deadline = Instant::now() + STEP;
    loop {
        let mut second = {
            let mut s = TcpStream::connect(&gateway.address).unwrap();
            s.set_read_timeout(Some(STEP)).unwrap();
            s.write_all(head.as_bytes()).unwrap();
            BufReader::new(s)
        };
        let (status, _) = read_head(&mut second);
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the closed stream's place was not freed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The block of docs/web.md marked `<!-- tested against the thermostat -->`, run by bash with
/// the built binary first on PATH, against a thermostat on the Unix socket.
#[test]
fn the_web_md_curl_example_works() {
    let live = Live::unix();
    let doc = include_str!("../../../docs/web.md");
    let marker = "<!-- tested against the thermostat -->\n```bash\n";
    let start = doc.find(marker).expect("docs/web.md has the tested block") + marker.len();
    let block = &doc[start..start + doc[start..].find("```").expect("the block ends")];
    let bin_dir = std::path::Path::new(support::bin()).parent().expect("a dir");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut bash = Command::new("bash");
    bash.args(["-euo", "pipefail", "-c", block])
        .env("PATH", path)
        .env("XDG_RUNTIME_DIR", live.dir.path())
        .env_remove("SWITCHBOARD_URL")
        .current_dir(live.dir.path());
    let output = support::run_bounded(bash, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{block}\n--- stdout\n{stdout}--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("\"endsAt\""), "{stdout}");
    assert!(stdout.contains("\"OutOfRange\""), "{stdout}");
}

/// Schemathesis, pinned.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// Installs schemathesis into a venv under the target directory, once; returns its `st`.
fn schemathesis() -> Result<std::path::PathBuf, String> {
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("schemathesis-venv");
    let stamp = venv.join("installed.stamp");
    let st = venv.join("bin/st");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == SCHEMATHESIS) {
        return Ok(st);
    }
    let run = |program: &str, args: &[&str]| -> Result<(), String> {
        let output = Command::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run `{program}`: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{program} {}` failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    };
    run("python3", &["-m", "venv", "--clear", &venv.display().to_string()])?;
    let python = venv.join("bin/python").display().to_string();
    run(
        &python,
        &["-m", "pip", "install", "--quiet", "--disable-pip-version-check", SCHEMATHESIS],
    )?;
    std::fs::write(&stamp, SCHEMATHESIS).map_err(|e| e.to_string())?;
    Ok(st)
}

/// The served document with the instance fixed to `instance`, so the fuzzer reaches the live
/// services rather than mostly unknown instances.
fn for_instance(mut document: Value, instance: &str) -> Value {
    let paths = document["paths"].as_object().cloned().unwrap_or_default();
    let mut fixed = serde_json::Map::new();
    for (path, mut item) in paths {
        if let Some(parameters) = item.get_mut("parameters").and_then(Value::as_array_mut) {
            parameters.retain(|p| p["name"] != "instance");
        }
        fixed.insert(path.replace("{instance}", instance), item);
    }
    document["paths"] = Value::Object(fixed);
    document
}

/// A schema-driven fuzz run (schemathesis: its coverage, fuzzing and stateful phases) against
/// the gateway in front of the thermostat: no 5xx, answers with the
/// statuses, content types and schemas the OpenAPI documents declare, and the gateway still
/// answers afterwards. The event streams are left out (they never end by themselves).
#[test]
fn schemathesis_finds_no_server_error() {
    let st = match schemathesis() {
        Ok(st) => st,
        Err(reason) => {
            return switchboard_testkit::prerequisite::missing(format_args!(
                "the gateway fuzz run needs Python with venv and PyPI: {reason}"
            ));
        }
    };
    let live = Live::unix();
    let gateway = Gateway::start(&live, &[]);
    let work = live.dir.path().join("fuzz");
    std::fs::create_dir_all(&work).unwrap();
    let interface = "Thermostat";
    let (status, document) =
        gateway.json("GET", &format!("/openapi/{interface}.json"), &Value::Null);
    assert_eq!(status, 200, "{document}");
    let file = work.join(format!("{interface}.openapi.json"));
    std::fs::write(&file, for_instance(document, "default").to_string()).unwrap();
    let mut command = Command::new(&st);
    command
        .arg("run")
        .arg(&file)
        .args(["--url", &format!("http://{}", gateway.address)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--exclude-path-regex", "events$"])
        .args(["--max-examples", "20", "--request-timeout", "20", "--workers", "1"])
        .args(["--seed", "20261207"])
        .current_dir(&work);
    let output = support::run_bounded(command, Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems with {interface}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
    let (status, _) = gateway.json("GET", "/api/services", &Value::Null);
    assert_eq!(status, 200, "the gateway still answers after the fuzz run");
}
