//! The generated Python and the `switchboard` Python runtime (`python/`) against Rust peers and
//! against each other, over the Unix socket and over MQTT (the shared broker on 127.0.0.1:1883),
//! and against StingerIPC's generated Python peers over MQTT.
//!
//! The first test to need it prepares a virtual environment under the target directory, one per
//! version of the `python3` on `PATH` (so `PYENV_VERSION=3.10.13 cargo test …` runs the same tests
//! on another Python), in which pip installs paho-mqtt, ruff, mypy and vermin, and it generates
//! the Python packages of `everything.yaml`, `jobs.yaml` and `tests/python/garden.yaml` with
//! `switchboard_codegen`, so no manual step is needed.
//! The Python peers live in `tests/python/`. Outside CI, a machine without `python3` or without
//! access to PyPI prints "skipped: …"; under `CI=true` that is a failure.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use switchboard::{
    DateTime, Endpoint,
    action::{GoalError, GoalStatus},
    error::{CallError, ErrorCode, MethodError, RemoteError, names as error_names},
};
use switchboard_testkit::{
    broker::shared_mosquitto,
    prerequisite,
    python::{PeerProcess, StingerPeers},
};
use switchboard_tests::{
    everything::{
        Color, EchoNestedReply, EchoScalarsError, EchoTimesReply, EverythingClient,
        EverythingProperties, EverythingServer, Label, Point, SettingsProperty, Shape, Tree,
        Unsupported, UptimeProperty,
    },
    fixtures::{self, EverythingEcho, FAILING_COUNT, OnNothing, PANICKING_COUNT, resets_at},
    jobs::{BadInput, CountError, JobsClient, JobsServer, LookupError, NotFound, QuotaExceeded},
};

use crate::suite::within;

/// How long a Python peer may take to start or to run all its checks.
pub(crate) const PEER_RUN: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The prepared environment: the venv's interpreter, its bin directory and `PYTHONPATH`.
pub(crate) struct PyEnv {
    python: PathBuf,
    bin: PathBuf,
    path: String,
    generated: PathBuf,
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `major.minor` of the `python3` on `PATH`.
fn python3_version() -> Result<String, String> {
    let output = Command::new("python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run python3 (is it installed?): {e}"))?;
    if !output.status.success() {
        return Err(format!("python3 failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Writes the Python package generated from the interface `file` into `out`.
fn generate_python(file: &Path, out: &Path) -> Result<(), String> {
    let loaded = switchboard_codegen::load_file(file).map_err(|e| e.to_string())?;
    let iface = loaded.parsed.interface.as_ref().ok_or("interface has errors")?;
    let name = switchboard_codegen::source_name(file);
    let files =
        switchboard_codegen::generate_files(iface, &name, switchboard_codegen::Lang::Python)
            .map_err(|e| e.to_string())?;
    for generated_file in files {
        let target = out.join(&generated_file.path);
        std::fs::create_dir_all(target.parent().expect("a parent")).map_err(|e| e.to_string())?;
        std::fs::write(&target, generated_file.contents).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn setup() -> Result<PyEnv, String> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python");
    let venv = root.join(format!("venv-{}", python3_version()?));
    let python = venv.join("bin/python");
    let marker = venv.join(".switchboard-ready");
    if !marker.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg("--clear").arg(&venv))
            .map_err(|e| format!("cannot create a venv (is python3 installed?): {e}"))?;
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "paho-mqtt>=2,<3",
            "ruff",
            "mypy",
            "vermin",
        ]))
        .map_err(|e| format!("cannot install from PyPI: {e}"))?;
        std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
    }
    let generated = root.join("generated");
    for file in [
        "examples/interfaces/everything.yaml",
        "examples/interfaces/jobs.yaml",
        "tests/interop/interop_probe.yaml",
        "tests/python/garden.yaml",
    ] {
        let file = repo().join(file);
        generate_python(&file, &generated.join(file.file_stem().expect("a stem")))?;
    }
    // The compatibility matrix's versions (tests/it/evolve.rs) are all the package `evolving`,
    // so each goes in a directory of its own, which tests/python/evolve_peer.py loads by path.
    let evolve = repo().join("tests/interfaces/evolve");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(&evolve)
        .map_err(|e| format!("{}: {e}", evolve.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    versions.sort();
    for file in versions {
        generate_python(&file, &generated.join("evolve").join(file.file_stem().expect("a stem")))?;
    }
    let path = [
        repo().join("python/src"),
        generated.join("everything"),
        generated.join("jobs"),
        generated.join("interop_probe"),
        generated.join("garden"),
        repo().join("tests/python"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect::<Vec<_>>()
    .join(":");
    Ok(PyEnv { bin: venv.join("bin"), python, path, generated })
}

/// The environment, or `None` (with a skip notice) when this machine cannot run Python.
///
/// # Panics
/// Under `CI=true`, when the environment is unavailable.
pub(crate) fn py() -> Option<&'static PyEnv> {
    static ENV: OnceLock<Result<PyEnv, String>> = OnceLock::new();
    match ENV.get_or_init(setup) {
        Ok(env) => Some(env),
        Err(reason) => {
            prerequisite::missing(format_args!(
                "the Python test environment is unavailable: {reason}"
            ));
            None
        }
    }
}

impl PyEnv {
    pub(crate) fn command(&self, script: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.python);
        command
            .arg("-u")
            .arg(repo().join("tests/python").join(script))
            .args(args)
            .env("PYTHONPATH", &self.path)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null());
        command
    }

    pub(crate) fn spawn(&self, script: &str, args: &[&str]) -> PeerProcess {
        PeerProcess::spawn(self.command(script, args), script)
    }

    /// The directory holding one generated package per file of `tests/interfaces/evolve/`.
    pub(crate) fn evolve_packages(&self) -> PathBuf {
        self.generated.join("evolve")
    }
}

/// A fresh socket path in a directory of its own.
pub(crate) fn socket_url() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sbpy-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    format!("unix://{}/s.sock", dir.display())
}

/// A fresh instance on the shared broker (`None`, with a printed reason, when it is not running
/// outside CI).
pub(crate) fn mqtt_url() -> Option<String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let broker = shared_mosquitto()?;
    let instance = format!("sbpy-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    Some(format!("{}?instance={instance}", broker.url))
}

/// Stops a Python server with SIGTERM, so that it clears its retained messages.
pub(crate) async fn stop_python_server(server: &mut PeerProcess) {
    server.terminate();
    let _ = server.wait_for("CLOSED", Duration::from_secs(10)).await;
}

pub(crate) async fn expect_line(peer: &mut PeerProcess, line: &str) {
    if let Err(error) = peer.wait_for(line, PEER_RUN).await {
        panic!("{error}\nstderr:\n{}", peer.stderr());
    }
}

/// Runs a Python client script to its end; it must print PASS.
async fn python_client_passes(env: &PyEnv, script: &str, url: &str) {
    let mut client = env.spawn(script, &[url]);
    expect_line(&mut client, "PASS").await;
}

// ---------------------------------------------------------------------------------------------
// Rust servers with the behaviour of tests/python/{everything,jobs}_server.py.

fn datetime(text: &str) -> DateTime {
    switchboard_core::codec::parse_datetime(text).expect("a valid datetime")
}

/// `values.AT` in tests/python/values.py.
fn at() -> DateTime {
    datetime("2024-02-29T23:59:59.999999Z")
}

const BLOB: &[u8] = b"\x00\x01hello\xff";

fn py_shape() -> Shape {
    Shape {
        origin: Point { x: 0.0, y: -0.0 },
        label: Some(Label { text: "l\u{e4}bel".into(), color: Color::Blue }),
        note: None,
        weight: Some(1.5),
        corners: vec![Point { x: 1.0, y: 2.0 }, Point { x: -1e300, y: 1e-300 }],
    }
}

fn everything_properties() -> EverythingProperties {
    EverythingProperties {
        settings: SettingsProperty { name: "initial".into(), brightness: 255, favorite: None },
        uptime: UptimeProperty {
            since: at(),
            elapsed: switchboard::Duration::milliseconds(86_401_500),
        },
    }
}

/// Serves `Everything`; `echoNothing` emits two samples with edge values for the Python scripts.
async fn serve_everything(url: &str) -> EverythingServer {
    let serving = Arc::new(OnceLock::<EverythingServer>::new());
    let emitter = serving.clone();
    let on_nothing: OnNothing = Arc::new(move || {
        let server = emitter.get().cloned();
        Box::pin(async move {
            let server = server.ok_or_else(|| RemoteError::internal("not serving"))?;
            let fail = |e: switchboard::error::TransportError| RemoteError::internal(e.to_string());
            server
                .emit_sample(u64::MAX, -0.5, at(), Color::Blue, Some(py_shape()), BLOB.to_vec())
                .await
                .map_err(fail)?;
            server.emit_sample(0, 0.0, at(), Color::Red, None, Vec::new()).await.map_err(fail)
        })
    });
    let echo = EverythingEcho { on_nothing: Some(on_nothing) };
    let endpoint = Endpoint::parse(url).expect("an endpoint");
    let server = within("serve", EverythingServer::serve(&endpoint, echo, everything_properties()))
        .await
        .expect("serve");
    let _ = serving.set(server.clone());
    server
}

async fn serve_jobs(url: &str) -> JobsServer {
    let endpoint = Endpoint::parse(url).expect("an endpoint");
    fixtures::serve_jobs(&endpoint, switchboard::server::ServerOptions::default()).await
}

// ---------------------------------------------------------------------------------------------
// Rust clients against the Python servers.

async fn rust_client_checks_everything(url: &str) {
    let endpoint = Endpoint::parse(url).expect("an endpoint");
    let client = within("connect", EverythingClient::connect(&endpoint)).await.expect("connect");
    let low = within(
        "scalars",
        client.echo_scalars(
            i8::MIN,
            i16::MIN,
            i32::MIN,
            i64::MIN,
            0,
            0,
            0,
            0,
            i64::MIN,
            f32::MIN,
            f64::MIN,
            false,
            String::new(),
            Color::Red,
        ),
    )
    .await
    .expect("low scalars");
    assert_eq!(
        (low.i8, low.i64, low.f32, low.f64, low.color),
        (i8::MIN, i64::MIN, f32::MIN, f64::MIN, Color::Red)
    );
    let text = "h\u{e9}llo \"quoted\" \\ \n\t \u{1f600} \u{0}".to_string();
    let high = within(
        "scalars",
        client.echo_scalars(
            i8::MAX,
            i16::MAX,
            i32::MAX,
            i64::MAX,
            u8::MAX,
            u16::MAX,
            u32::MAX,
            u64::MAX,
            i64::MAX,
            f32::MAX,
            f64::MIN_POSITIVE,
            true,
            text.clone(),
            Color::Black,
        ),
    )
    .await
    .expect("high scalars");
    assert_eq!(
        (high.u64, high.u32, high.f32, high.f64, high.text.as_str(), high.color),
        (u64::MAX, u32::MAX, f32::MAX, f64::MIN_POSITIVE, text.as_str(), Color::Black)
    );
    match within(
        "declared",
        client.echo_scalars(
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0.0,
            0.0,
            false,
            "unsupported".into(),
            Color::Green,
        ),
    )
    .await
    {
        Err(MethodError::Declared(EchoScalarsError::Unsupported(Unsupported { reason }))) => {
            assert_eq!(reason, "this text is not echoed");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    match within(
        "failing",
        client.echo_scalars(
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0.0,
            0.0,
            false,
            "fail".into(),
            Color::Green,
        ),
    )
    .await
    {
        Err(MethodError::Call(CallError::Remote(error))) => {
            assert_eq!(
                (error.name(), error.code()),
                (error_names::INTERNAL, ErrorCode::ServerError)
            );
            assert!(!format!("{error:?}").contains("secret"));
        }
        other => panic!("expected Internal, got {other:?}"),
    }

    let gaps = vec![
        Some(switchboard::Duration::zero()),
        None,
        Some(switchboard::Duration::milliseconds(-1500)),
        Some(switchboard::Duration::days(400) + switchboard::Duration::microseconds(7)),
    ];
    let stamps: BTreeMap<String, DateTime> =
        [("a".to_string(), at()), (String::new(), datetime("1970-01-01T00:00:00Z"))].into();
    let times = within(
        "times",
        client.echo_times(
            at(),
            switchboard::Duration::milliseconds(1500),
            BLOB.to_vec(),
            None,
            Some(switchboard::Duration::seconds(-1)),
            Some(Vec::new()),
            stamps.clone(),
            gaps.clone(),
        ),
    )
    .await
    .expect("times");
    assert_eq!(
        times,
        EchoTimesReply {
            at: at(),
            lasts: switchboard::Duration::milliseconds(1500),
            blob: BLOB.to_vec(),
            maybe_at: None,
            maybe_lasts: Some(switchboard::Duration::seconds(-1)),
            maybe_blob: Some(Vec::new()),
            stamps,
            gaps,
        }
    );

    let shapes: BTreeMap<String, Shape> = [("s".to_string(), py_shape())].into();
    let scores: BTreeMap<String, f64> = [("x".to_string(), -0.5), ("y".to_string(), 1e308)].into();
    let collections = within(
        "collections",
        client.echo_collections(
            vec![i32::MIN, 0, i32::MAX],
            vec![String::new(), "\u{e9}".into()],
            vec![Point { x: 1.0, y: 2.0 }],
            vec![Color::Red, Color::Green, Color::Blue, Color::Black],
            vec![at()],
            vec![vec![], BLOB.to_vec()],
            vec![None, Some(1.5)],
            scores.clone(),
            shapes.clone(),
        ),
    )
    .await
    .expect("collections");
    assert_eq!(collections.numbers, vec![i32::MIN, 0, i32::MAX]);
    assert_eq!((collections.scores, collections.shapes), (scores, shapes));
    assert_eq!(collections.maybe, vec![None, Some(1.5)]);

    let nested =
        within("nested", client.echo_nested(py_shape(), None, Some(String::new()), Some(vec![])))
            .await
            .expect("nested");
    assert_eq!(
        nested,
        EchoNestedReply {
            shape: py_shape(),
            maybe_shape: None,
            maybe_text: Some(String::new()),
            maybe_list: Some(vec![])
        }
    );
    let leaf = Tree { name: "leaf".into(), parent: None, children: vec![] };
    let tree = Tree {
        name: "root".into(),
        parent: Some(Box::new(leaf.clone())),
        children: vec![
            leaf.clone(),
            Tree { name: "mid".into(), parent: None, children: vec![leaf] },
        ],
    };
    assert_eq!(within("tree", client.echo_tree(tree.clone())).await.expect("tree"), tree);

    let mut samples = within("subscribe", client.subscribe_sample()).await.expect("subscribe");
    within("nothing", client.echo_nothing()).await.expect("echo nothing");
    let first = within("sample", samples.next()).await.expect("open").expect("a sample");
    assert_eq!(
        (first.counter, first.shape, first.raw),
        (u64::MAX, Some(py_shape()), BLOB.to_vec())
    );
    let second = within("sample", samples.next()).await.expect("open").expect("a sample");
    assert_eq!((second.shape, second.raw, second.color), (None, vec![], Color::Red));

    let initial = within("get", client.get_settings()).await.expect("get");
    assert_eq!(
        initial,
        SettingsProperty { name: "initial".into(), brightness: 255, favorite: None }
    );
    let mut watch = within("watch", client.watch_settings()).await.expect("watch");
    assert_eq!(within("first", watch.next()).await.expect("open").expect("a value"), initial);
    let new =
        SettingsProperty { name: "n\u{e4}me".into(), brightness: 0, favorite: Some(Color::Green) };
    within("set", client.set_settings(new.clone())).await.expect("set");
    assert_eq!(within("change", watch.next()).await.expect("open").expect("a value"), new);
    assert_eq!(within("get", client.get_settings()).await.expect("get"), new);
    let uptime = within("uptime", client.get_uptime()).await.expect("uptime");
    assert_eq!(uptime.elapsed, switchboard::Duration::milliseconds(86_401_500));
    assert_eq!(uptime.since, at());
}

async fn rust_client_checks_jobs(url: &str) {
    let endpoint = Endpoint::parse(url).expect("an endpoint");
    let client = within("connect", JobsClient::connect(&endpoint)).await.expect("connect");
    assert_eq!(within("lookup", client.lookup("abc".into())).await.expect("found"), "ABC");
    match within("lookup", client.lookup("missing".into())).await {
        Err(MethodError::Declared(LookupError::NotFound(NotFound { key }))) => {
            assert_eq!(key, "missing")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    match within("lookup", client.lookup("quota".into())).await {
        Err(MethodError::Declared(LookupError::QuotaExceeded(quota))) => {
            assert_eq!(quota, QuotaExceeded { used: 7, limit: 5, resets_at: Some(resets_at()) });
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    match within("lookup", client.lookup("other".into())).await {
        Err(MethodError::Call(CallError::Remote(error))) => {
            assert_eq!(
                (error.name(), error.message(), error.code()),
                ("RateLimited", "slow down", ErrorCode::ClientError)
            );
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    match within("lookup", client.lookup("panic".into())).await {
        Err(MethodError::Call(CallError::Remote(error))) => {
            assert_eq!(
                (error.name(), error.code()),
                (error_names::INTERNAL, ErrorCode::ServerError)
            );
            assert!(!format!("{error:?}").contains("secret"));
        }
        other => panic!("expected Internal, got {other:?}"),
    }

    let goal = within("send", client.count(3, 1, 0)).await.expect("accepted");
    assert_eq!(within("result", goal.result()).await.expect("succeeded"), 3);
    match within("send", client.count(-1, 1, 0)).await {
        Err(MethodError::Declared(CountError::BadInput(BadInput { field, reason }))) => {
            assert_eq!((field.as_str(), reason.as_str()), ("to", "must not be negative"));
        }
        other => panic!("expected BadInput, got {other:?}"),
    }
    let mut goal = within("send", client.count(100, 0, 0)).await.expect("accepted");
    let mut seen = Vec::new();
    while let Some(feedback) = within("feedback", goal.next_feedback()).await {
        seen.push(feedback.value);
    }
    assert_eq!(seen, (1..=100).collect::<Vec<_>>());
    assert_eq!(within("result", goal.result()).await.expect("succeeded"), 100);

    let goal = within("send", client.count(5, 10, 30_000)).await.expect("accepted");
    assert_eq!(within("cancel", goal.cancel()).await.expect("cancel"), GoalStatus::Canceling);
    assert!(matches!(within("result", goal.result()).await, Err(GoalError::Cancelled)));

    let mut goal = within("send", client.count(10_000, 10, 0)).await.expect("accepted");
    assert_eq!(within("feedback", goal.next_feedback()).await.expect("a feedback").value, 1);
    within("cancel", goal.cancel()).await.expect("cancel");
    assert!(matches!(within("result", goal.result()).await, Err(GoalError::Cancelled)));

    let goal = within("send", client.count(FAILING_COUNT, 0, 0)).await.expect("accepted");
    match within("result", goal.result()).await {
        Err(GoalError::Declared(CountError::QuotaExceeded(quota))) => {
            assert_eq!(quota, QuotaExceeded { used: 1, limit: 1, resets_at: None });
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    let goal = within("send", client.count(PANICKING_COUNT, 0, 0)).await.expect("accepted");
    match within("result", goal.result()).await {
        Err(GoalError::Call(CallError::Remote(error))) => {
            assert_eq!(error.name(), error_names::INTERNAL)
        }
        other => panic!("expected Internal, got {other:?}"),
    }

    let done = within("send", client.count(2, 0, 0)).await.expect("accepted");
    within("result", done.result()).await.expect("succeeded");
    let late = within("connect", JobsClient::connect(&endpoint)).await.expect("connect");
    let attached = within("attach", late.attach_count(done.id().clone())).await.expect("attach");
    assert_eq!(attached.status(), GoalStatus::Succeeded);
    match within("attach", late.attach_count(switchboard::action::GoalId::random())).await {
        Err(MethodError::Call(CallError::Remote(error))) => {
            assert_eq!(error.name(), error_names::UNKNOWN_GOAL)
        }
        other => panic!("expected UnknownGoal, got {other:?}"),
    }

    let mut mine = within("subscribe", client.subscribe_notice()).await.expect("subscribe");
    let mut theirs = within("subscribe", late.subscribe_notice()).await.expect("subscribe");
    within("note", late.note("for late only".into(), true)).await.expect("sent");
    assert_eq!(
        within("notice", theirs.next()).await.expect("open").expect("a notice").text,
        "for late only"
    );
    within("note", client.note("for everyone".into(), false)).await.expect("sent");
    assert_eq!(
        within("notice", mine.next()).await.expect("open").expect("a notice").text,
        "for everyone"
    );
    assert_eq!(
        within("notice", theirs.next()).await.expect("open").expect("a notice").text,
        "for everyone"
    );
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_rust_server_python_client_every_type() {
    let Some(env) = py() else { return };
    let url = socket_url();
    let _server = serve_everything(&url).await;
    python_client_passes(env, "everything_client.py", &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_rust_server_python_client_actions_errors_commands() {
    let Some(env) = py() else { return };
    let url = socket_url();
    let _server = serve_jobs(&url).await;
    python_client_passes(env, "jobs_client.py", &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_python_server_rust_client_every_type() {
    let Some(env) = py() else { return };
    let url = socket_url();
    let mut server = env.spawn("everything_server.py", &[&url]);
    expect_line(&mut server, "READY").await;
    rust_client_checks_everything(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_python_server_rust_client_actions_errors_commands() {
    let Some(env) = py() else { return };
    let url = socket_url();
    let mut server = env.spawn("jobs_server.py", &[&url]);
    expect_line(&mut server, "READY").await;
    rust_client_checks_jobs(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_python_server_python_client() {
    let Some(env) = py() else { return };
    for (server_script, client_script) in
        [("everything_server.py", "everything_client.py"), ("jobs_server.py", "jobs_client.py")]
    {
        let url = socket_url();
        let mut server = env.spawn(server_script, &[&url]);
        expect_line(&mut server, "READY").await;
        python_client_passes(env, client_script, &url).await;
    }
}

/// A Python client of a server that is not there fails at once with a clear error, and a call
/// whose server dies fails with `DisconnectedError` instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_python_client_faults() {
    let Some(env) = py() else { return };
    let url = socket_url();
    let mut client = env.spawn("faults_client.py", &[&url]);
    expect_line(&mut client, "PASS").await;
}

/// Optional values can be left out of every generated constructor and call, and a Python server
/// receives them as `None` (`tests/python/optional_values.py` serves and calls itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_python_optional_values_default_to_none() {
    let Some(env) = py() else { return };
    python_client_passes(env, "optional_values.py", &socket_url()).await;
}

// ---------------------------------------------------------------------------------------------
// The same over MQTT, each test with its own instance on the shared broker.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_rust_server_python_client_every_type() {
    let Some(env) = py() else { return };
    let Some(url) = mqtt_url() else { return };
    let server = serve_everything(&url).await;
    python_client_passes(env, "everything_client.py", &url).await;
    within("shutdown", server.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_rust_server_python_client_actions_errors_commands() {
    let Some(env) = py() else { return };
    let Some(url) = mqtt_url() else { return };
    let server = serve_jobs(&url).await;
    python_client_passes(env, "jobs_client.py", &url).await;
    within("shutdown", server.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_python_server_rust_client_every_type() {
    let Some(env) = py() else { return };
    let Some(url) = mqtt_url() else { return };
    let mut server = env.spawn("everything_server.py", &[&url]);
    expect_line(&mut server, "READY").await;
    rust_client_checks_everything(&url).await;
    stop_python_server(&mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_python_server_rust_client_actions_errors_commands() {
    let Some(env) = py() else { return };
    let Some(url) = mqtt_url() else { return };
    let mut server = env.spawn("jobs_server.py", &[&url]);
    expect_line(&mut server, "READY").await;
    rust_client_checks_jobs(&url).await;
    stop_python_server(&mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_python_server_python_client() {
    let Some(env) = py() else { return };
    for (server_script, client_script) in
        [("everything_server.py", "everything_client.py"), ("jobs_server.py", "jobs_client.py")]
    {
        let Some(url) = mqtt_url() else { return };
        let mut server = env.spawn(server_script, &[&url]);
        expect_line(&mut server, "READY").await;
        python_client_passes(env, client_script, &url).await;
        stop_python_server(&mut server).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Our generated Python against StingerIPC's generated Python (tests/interop/).

/// Removes what a test left retained on the broker (StingerIPC never clears property values).
struct ClearRetained(&'static StingerPeers, Vec<String>);

impl Drop for ClearRetained {
    fn drop(&mut self) {
        let _ = self
            .0
            .command("capture.py")
            .arg("--clear")
            .args(&self.1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn probe_names(prefix: &str) -> (String, String, String) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    (
        format!("{prefix}-probe-{pid}-{n}"),
        format!("{prefix}-server-{pid}-{n}"),
        format!("{prefix}-client-{pid}-{n}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_our_python_client_against_their_python_server() {
    let Some(env) = py() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let Some(peers) = StingerPeers::get() else { return };
    let (instance, server_id, _) = probe_names("sbpy-theirs");
    let _clear = ClearRetained(
        peers,
        vec![format!("InteropProbe/{instance}/#"), format!("client/{server_id}/online")],
    );
    let mut server = peers.spawn("py_server.py", &[&instance, "--client-id", &server_id]);
    if let Err(error) = server.wait_for("ready", PEER_RUN).await {
        panic!("their server did not start: {error}");
    }
    let url = format!("{}?instance={instance}", broker.url);
    python_client_passes(env, "probe_client.py", &url).await;
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_their_python_client_against_our_python_server() {
    let Some(env) = py() else { return };
    let Some(broker) = shared_mosquitto() else { return };
    let Some(peers) = StingerPeers::get() else { return };
    let (instance, server_id, client_id) = probe_names("sbpy-ours");
    let _clear = ClearRetained(
        peers,
        vec![
            format!("InteropProbe/{instance}/#"),
            format!("client/{server_id}/online"),
            format!("client/{client_id}/online"),
        ],
    );
    let url = format!("{}?instance={instance}&client_id={server_id}", broker.url);
    let mut server = env.spawn("probe_server.py", &[&url]);
    expect_line(&mut server, "READY").await;
    let mut client = peers.spawn("py_client.py", &[&instance, "--client-id", &client_id]);
    let (status, lines) =
        client.finish(Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}"));
    let failed: Vec<&String> = lines.iter().filter(|line| !line.contains("\"ok\": true")).collect();
    let summary = lines.iter().any(|line| line.contains("\"check\": \"summary\""));
    assert!(
        status.success() && failed.is_empty() && summary && lines.len() > 30,
        "their client failed against our Python server: {failed:#?}\nall: {lines:#?}\nstderr:\n{}\nour server's stderr:\n{}",
        client.stderr(),
        server.stderr()
    );
    stop_python_server(&mut server).await;
}

/// The generated Python, the runtime, and the compatibility matrix's Python scripts
/// (`tests/python/evolve_peer.py`, `compat_check.py`) pass `ruff check` and `mypy --strict` with
/// the runtime's settings (`python/pyproject.toml`), and the generated Python and the runtime need
/// no Python newer than its `requires-python` (`vermin`).
#[test]
fn generated_python_passes_ruff_mypy_and_vermin() {
    let Some(env) = py() else { return };
    let config = repo().join("python/pyproject.toml");
    let settings = std::fs::read_to_string(&config).expect("python/pyproject.toml");
    let oldest = settings
        .lines()
        .find_map(|line| line.strip_prefix("requires-python = \">="))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("python/pyproject.toml has `requires-python = \">=X.Y\"`");
    let packages = [
        env.generated.join("everything/everything"),
        env.generated.join("jobs/jobs"),
        env.generated.join("interop_probe/interop_probe"),
        env.generated.join("garden/garden"),
    ];
    // The compatibility matrix's Python peer and classifier driver are held to the same checks.
    let scripts =
        ["evolve_peer.py", "compat_check.py"].map(|s| repo().join("tests/python").join(s));
    run(Command::new(env.bin.join("ruff"))
        .args(["check", "--no-cache", "--config"])
        .arg(&config)
        .args(&packages)
        .arg(repo().join("python/src"))
        .args(&scripts))
    .unwrap_or_else(|e| panic!("{e}"));
    run(Command::new(env.bin.join("mypy"))
        .args(["--no-incremental", "--cache-dir", "/dev/null", "--config-file"])
        .arg(&config)
        .env("MYPYPATH", repo().join("python/src"))
        .args(&packages)
        .arg(repo().join("python/src/switchboard"))
        .args(&scripts))
    .unwrap_or_else(|e| panic!("{e}"));
    run(Command::new(env.bin.join("vermin"))
        .args([&format!("-t={oldest}-"), "--no-tips", "--violations"])
        .args(&packages)
        .arg(repo().join("python/src/switchboard")))
    .unwrap_or_else(|e| panic!("{e}"));
}
