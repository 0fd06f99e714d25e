//! Row 9 (peer frameworks), row 10 (footprint), and the callgrind profile and gate sections.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::util::Server;

static OURS_MQTT: Mutex<Option<(f64, f64)>> = Mutex::new(None);
static OURS_REDIS: Mutex<Option<(f64, f64)>> = Mutex::new(None);

/// A row of the peer table: scenario, result, goal, verdict.
pub(crate) type PeerRow = (String, String, String, String);

/// The goal against the Python frameworks over MQTT.
const TEN_TIMES: &str = "ours ≥ 10× faster (p50)";
/// The goal against commlib-py over a queue broker (issue 14).
const FIVE_TIMES: &str = "ours ≥ 5× faster (p50)";

/// Records our MQTT method round trip (row 3) for the peer comparison.
pub(crate) fn set_ours_mqtt(p50: f64, p99: f64) {
    *OURS_MQTT.lock().expect("lock") = Some((p50, p99));
}

/// Records our Redis method round trip (row 13) for the peer comparison.
pub(crate) fn set_ours_redis(p50: f64, p99: f64) {
    *OURS_REDIS.lock().expect("lock") = Some((p50, p99));
}

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub(crate) fn repo_root() -> PathBuf {
    bench_dir().join("../..").canonicalize().expect("repo root")
}

/// The target directory this binary was built into.
pub(crate) fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

/// A virtual environment with commlib-py, created on first use.
fn commlib_python() -> Result<PathBuf, String> {
    // Not the interop tests' `commlib-venv`: this one also needs paho-mqtt 1.6.1 for MQTT.
    let venv = target_dir().join("commlib-bench-venv");
    let python = venv.join("bin/python");
    let ok = |p: &Path| {
        Command::new(p)
            .args(["-c", "import commlib, redis, pika, paho.mqtt.client"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ok(&python) {
        return Ok(python);
    }
    let status = Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
    if !status.is_ok_and(|s| s.success()) {
        return Err("python3 -m venv failed".into());
    }
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "commlib-py==0.13.2",
            "paho-mqtt==1.6.1",
            "redis",
            "hiredis",
            "pika==1.4.4",
        ])
        .status();
    if status.is_ok_and(|s| s.success()) && ok(&python) {
        Ok(python)
    } else {
        Err("pip could not install commlib-py into the venv".into())
    }
}

/// The figures a Python peer printed: the last line of its output that is a JSON object with
/// `p50` and `p99`. Not simply the last line: commlib-py logs to stdout too (through rich), and
/// its AMQP client logs a torn-down connection there after the figures when its node stops.
fn parse(output: &str) -> Option<(f64, f64)> {
    output.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
        Some((v["p50"].as_f64()?, v["p99"].as_f64()?))
    })
}

/// The last lines of a peer's stderr, for the report when it printed no figures.
/// Runs a peer's benchmark client to its end and reads its figures (p50, p99) from its output.
fn figures_of(mut client: Command, what: &str) -> Result<(f64, f64), String> {
    let output = client.output().map_err(|e| format!("cannot run {what}: {e}"))?;
    parse(&String::from_utf8_lossy(&output.stdout)).ok_or_else(|| {
        format!("{what} printed no figures ({}): {}", output.status, stderr_tail(&output.stderr))
    })
}

fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

fn peer_row(name: &str, theirs: Result<(f64, f64), String>, n: usize) -> PeerRow {
    let ours = *OURS_MQTT.lock().expect("lock");
    match (theirs, ours) {
        (Ok((p50, p99)), Some((o50, o99))) => {
            let factor = p50 / o50;
            (
                format!("{name} vs ours (row 3, echo over MQTT, same mosquitto)"),
                format!(
                    "theirs p50 {p50:.0} µs, p99 {p99:.0} µs ({n} calls); ours p50 {o50:.1} µs, p99 {o99:.1} µs; ours **{factor:.0}× faster**"
                ),
                TEN_TIMES.into(),
                if factor >= 10.0 { "met".into() } else { "**missed**".into() },
            )
        }
        (Err(e), _) => {
            (name.into(), format!("not measured: {e}"), TEN_TIMES.into(), "not measured".into())
        }
        (_, None) => (
            name.into(),
            "not measured: row 3 did not run".into(),
            TEN_TIMES.into(),
            "not measured".into(),
        ),
    }
}

/// A row-9 line whose goal is ours ≥ 5× faster: theirs (p50, p99) against `ours` over `n`
/// calls, as the result text and the verdict.
fn five_times(theirs: (f64, f64), n: usize, ours: Result<(f64, f64), String>) -> (String, String) {
    let (p50, p99) = theirs;
    let mut result = format!("theirs p50 {p50:.0} µs, p99 {p99:.0} µs ({n} calls)");
    let verdict = match ours {
        Ok((o50, o99)) => {
            let factor = p50 / o50;
            result.push_str(&format!(
                "; ours p50 {o50:.1} µs, p99 {o99:.1} µs ({n} calls); ours **{factor:.1}× faster**"
            ));
            if factor >= 5.0 { "met".to_owned() } else { "**missed**".to_owned() }
        }
        Err(e) => {
            result.push_str(&format!("; ours not measured: {e}"));
            "not measured".to_owned()
        }
    };
    (result, verdict)
}

/// The row-9 line of `scenario` when commlib-py could not be measured.
fn theirs_not_measured(scenario: String, error: String) -> PeerRow {
    (scenario, format!("not measured: {error}"), FIVE_TIMES.into(), "not measured".into())
}

/// Row 9's Redis line: commlib's Redis RPC against our Redis call (row 13), with a raw Rust
/// request/response over the same Redis, measured here, for scale.
fn redis_row(theirs: Result<(f64, f64), String>, n: usize) -> PeerRow {
    let scenario = "commlib-py 0.13.2 RPC over Redis vs ours (row 13, echo over Redis, same server); a raw Rust request/response over the same Redis (redis-rs 1.8, RPUSH to a list the responder BLPOPs, answer RPUSHed to the caller's list) for scale".to_string();
    let theirs = match theirs {
        Ok(figures) => figures,
        Err(e) => return theirs_not_measured(scenario, e),
    };
    let floor = (|| {
        let list = format!("sb-bench-{}", std::process::id());
        let _responder = Server::try_spawn("raw-redis", &list, "raw Redis responder")?;
        crate::util::measure_on_runtime(crate::raw_redis::round_trips(&list, n))
    })();
    let ours = (*OURS_REDIS.lock().expect("lock")).ok_or_else(|| "row 13 did not run".to_owned());
    let (mut result, verdict) = five_times(theirs, n, ours);
    match floor {
        Ok((r50, r99)) => result.push_str(&format!(
            "; raw Rust over Redis p50 {r50:.1} µs, p99 {r99:.1} µs, {:.1}× faster than theirs",
            theirs.0 / r50
        )),
        Err(e) => result.push_str(&format!("; raw Rust over Redis not measured: {e}")),
    }
    (scenario, result, FIVE_TIMES.into(), verdict)
}

/// Row 9's AMQP line: commlib's AMQP RPC against our method round trip over the same
/// RabbitMQ, measured here (a server process of ours, the 64-byte echo).
fn amqp_row(theirs: Result<(f64, f64), String>, n: usize) -> PeerRow {
    let scenario = "commlib-py 0.13.2 RPC over AMQP vs ours (echo over AMQP, 64 B, same RabbitMQ, measured in this row)".to_string();
    let theirs = match theirs {
        Ok(figures) => figures,
        Err(e) => return theirs_not_measured(scenario, e),
    };
    let url = "amqp://guest:guest@127.0.0.1:5672";
    let instance = format!("a{}", std::process::id());
    let ours = (|| -> Result<(f64, f64), String> {
        let _server =
            Server::try_spawn("ours-amqp", &format!("{url}#{instance}"), "our AMQP server")?;
        crate::util::measure_on_runtime(async {
            let endpoint = switchboard::Endpoint::parse(url)
                .and_then(|e| e.with_instance(&instance))
                .map_err(|e| e.to_string())?;
            let mut ours = crate::scenarios::Ours::connect(&endpoint).await;
            crate::scenarios::round(&mut ours, n / 10).await;
            let samples = crate::scenarios::round(&mut ours, n).await;
            Ok((samples.quantile_us(0.5), samples.quantile_us(0.99)))
        })
    })();
    let (result, verdict) = five_times(theirs, n, ours);
    (scenario, result, FIVE_TIMES.into(), verdict)
}

/// Row 9's node lines (issue 16): commlib-py's RPC against our node RPC (`switchboard::node`,
/// the API without codegen that speaks commlib-py's wire) on the same broker, measured here.
fn node_row(kind: &str, theirs: Result<(f64, f64), String>, n: usize) -> PeerRow {
    let (label, url) = crate::node_rows::BROKERS
        .into_iter()
        .find(|(label, _)| label.eq_ignore_ascii_case(kind))
        .expect("a broker of row 18");
    let scenario = format!(
        "commlib-py 0.13.2 RPC over {label} vs our node RPC (`switchboard::node`, a JSON echo served by a process of ours, same broker, measured in this row)"
    );
    let theirs = match theirs {
        Ok(figures) => figures,
        Err(e) => return theirs_not_measured(scenario, e),
    };
    let (result, verdict) = five_times(theirs, n, crate::node_rows::node_rpc(url, n));
    (scenario, result, FIVE_TIMES.into(), verdict)
}

/// Row 9.
pub(crate) fn rows(quick: bool) -> Vec<PeerRow> {
    let mut out = Vec::new();
    let n = if quick { 200 } else { 1000 };
    // StingerIPC's generated Python server and client (tests/interop).
    let stinger = (|| -> Result<(f64, f64), String> {
        let setup = Command::new("bash")
            .arg(repo_root().join("tests/interop/setup.sh"))
            .env("CARGO_TARGET_DIR", target_dir())
            .output()
            .map_err(|e| e.to_string())?;
        if !setup.status.success() {
            return Err(format!(
                "tests/interop/setup.sh failed: {}",
                String::from_utf8_lossy(&setup.stderr)
            ));
        }
        let stdout = String::from_utf8_lossy(&setup.stdout).to_string();
        let get = |k: &str| stdout.lines().find_map(|l| l.strip_prefix(k)).map(str::to_string);
        let python = get("python=").ok_or("no python= line")?;
        let generated = get("generated=").ok_or("no generated= line")?;
        let interop = repo_root().join("tests/interop");
        let pythonpath = format!("{generated}:{}", interop.display());
        let instance = format!("bench-{}", std::process::id());
        let mut server = crate::util::server_command(&python);
        server
            .arg("-u")
            .arg(interop.join("py_server.py"))
            .arg(&instance)
            .env("PYTHONPATH", &pythonpath);
        let _server = Server::spawn_command(server, "StingerIPC py_server.py")?;
        let mut client = Command::new(&python);
        client
            .arg(bench_dir().join("python/stinger_bench.py"))
            .args([&instance, &n.to_string()])
            .env("PYTHONPATH", &pythonpath);
        figures_of(client, "stinger_bench.py")
    })();
    out.push(peer_row(
        "StingerIPC 0.9.7 generated Python client → generated Python server (addNumbers)",
        stinger,
        n,
    ));
    for kind in ["mqtt", "redis", "amqp"] {
        let calls = if kind == "mqtt" { n / 5 } else { n * 2 };
        let theirs = (|| -> Result<(f64, f64), String> {
            let python = commlib_python()?;
            let script = bench_dir().join("python/commlib_bench.py");
            let name = format!("b{}", std::process::id());
            let mut server = crate::util::server_command(&python);
            server.arg("-u").arg(&script).args(["server", kind, &name]);
            let _server = Server::spawn_command(server, "commlib server")?;
            let mut client = Command::new(&python);
            client.arg(&script).args(["client", kind, &name, &calls.to_string()]);
            figures_of(client, "the commlib client")
        })();
        out.push(node_row(kind, theirs.clone(), calls));
        match kind {
            "mqtt" => {
                let name = "commlib-py 0.13.2 RPC over MQTT (typed, mosquitto as configured on this machine)";
                out.push(peer_row(name, theirs, calls));
            }
            "redis" => out.push(redis_row(theirs, calls)),
            _ => out.push(amqp_row(theirs, calls)),
        }
    }
    out
}

/// VmRSS of a process, KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::thread::sleep(Duration::from_secs(3));
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Rows of the footprint table: scenario, result, goal, verdict.
pub(crate) type FootprintRows = Vec<(String, String, String, String)>;

/// Row 10: the footprint rows and notes.
pub(crate) fn footprint(bench_server_rss: u64) -> (FootprintRows, Vec<String>) {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile_dir =
        std::env::current_exe().expect("own path").parent().expect("dir").to_path_buf();
    let build = Command::new(&cargo)
        .args(["build", "--release", "-p", "thermostat-example", "--bins"])
        .env("CARGO_TARGET_DIR", target_dir())
        .status();
    if !build.is_ok_and(|s| s.success()) {
        notes.push("Row 10: `cargo build --release -p thermostat-example --bins` failed, so the quickstart binaries were not measured.".into());
        return (rows, notes);
    }
    let server_bin = profile_dir.join("thermostat-server");
    let mut sizes = Vec::new();
    for bin in ["thermostat-server", "quickstart"] {
        let copy =
            std::env::temp_dir().join(format!("sb-bench-strip-{bin}-{}", std::process::id()));
        let _ = std::fs::copy(profile_dir.join(bin), &copy);
        let stripped = Command::new("strip").arg(&copy).status().is_ok_and(|s| s.success());
        let size = std::fs::metadata(&copy).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(&copy);
        if stripped {
            sizes.push(format!("`{bin}` {:.2} MiB", size as f64 / 1048576.0));
        }
    }
    // Idle RSS and start-to-first-call of the thermostat server on a Unix socket.
    let dir = crate::util::socket_dir();
    let mut starts = Vec::new();
    let mut idle_rss = 0;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for i in 0..5 {
        let path = dir.path(&format!("thermo{i}.sock"));
        let url = format!("unix://{path}");
        let endpoint = switchboard::Endpoint::parse(&url).expect("url");
        let start = Instant::now();
        let mut child = crate::util::server_command(&server_bin)
            .env("SWITCHBOARD_URL", &url)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn thermostat-server");
        let first = rt.block_on(async {
            loop {
                if let Ok(client) =
                    crate::generated::thermostat::ThermostatClient::connect(&endpoint).await
                    && client.get_status().await.is_ok()
                {
                    return start.elapsed();
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        });
        starts.push(first.as_secs_f64() * 1000.0);
        if i == 0 {
            idle_rss = rss_kib(child.id());
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let start_ms = crate::util::median(starts);
    let mib = |k: u64| k as f64 / 1024.0;
    rows.push((
        "Footprint: idle RSS (VmRSS after 3 s), quickstart server (`thermostat-server`, one 200 ms reading timer) and the bench's own server process".into(),
        format!("`thermostat-server` **{:.1} MiB**; bench server (Unix) {:.1} MiB; commlib-py's idle MQTT service: 37.8 MiB (reference figure)", mib(idle_rss), mib(bench_server_rss)),
        "RSS ≤ 8 MiB".into(),
        if mib(idle_rss) <= 8.0 { "met".into() } else { "**missed**".into() },
    ));
    rows.push((
        "Footprint: stripped binary size (release profile)".into(),
        sizes.join("; "),
        "report".into(),
        "reported".into(),
    ));
    rows.push((
        "Footprint: time from spawning `thermostat-server` to the first answered `getStatus` (median of 5, client retrying every 0.2 ms)".into(),
        format!("**{start_ms:.1} ms**"),
        "report".into(),
        "reported".into(),
    ));
    (rows, notes)
}

/// Row 7's profile: callgrind over the in-process gate workload, top functions by inclusive
/// instruction count.
pub(crate) fn profile() -> String {
    let dir = crate::util::socket_dir();
    let out = PathBuf::from(dir.path("profile.out"));
    let exe = std::env::current_exe().expect("own path");
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&exe)
        .args(["gate-workload", "ours", "4000"])
        .status();
    if !status.is_ok_and(|s| s.success()) {
        return "Row 7 profile: valgrind was not available or failed; no profile.".into();
    }
    let annotate = Command::new("callgrind_annotate")
        .args(["--inclusive=no", "--threshold=90"])
        .arg(&out)
        .output();
    let text = annotate.map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default();
    let lines: Vec<&str> =
        text.lines().skip_while(|l| !l.contains("file:function")).skip(2).take(25).collect();
    format!(
        "### Row 7 profile (callgrind, self cost, 4000 in-process Unix calls: client and server in one `current_thread` runtime)\n\n```\n{}\n```",
        lines.join("\n")
    )
}

/// The gate's current figures for the report.
pub(crate) fn gate_section() -> String {
    let dir = crate::util::socket_dir();
    let out_dir = PathBuf::from(dir.path(""));
    let reference = std::fs::read_to_string(crate::gate::reference_path()).unwrap_or_default();
    let reference = reference.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("");
    let measured = match crate::gate::measure(&out_dir) {
        Ok((ours, raw, ratio)) => format!(
            "This run: **{ratio:.3}×** ({ours:.0} instructions per call for ours, {raw:.0} for the raw tokio baseline)."
        ),
        Err(e) => format!("This run could not measure it: {e}."),
    };
    format!(
        "`.ci/run` runs `cargo run --release --locked -p switchboard-bench -- gate`. It counts instructions with callgrind (deterministic, unlike wall-clock time) for one Unix-socket method call: client and server in one process on one `current_thread` runtime, 64-byte payload. Start-up is excluded by running {n} and {n2} calls and taking the difference ÷ {n}. The same is done for a raw tokio client and server with the same framing and serde_json, and the gate compares ours ÷ raw with the committed reference in `crates/switchboard-bench/gate-reference.txt`; it fails when the ratio grows more than 10%. After a deliberate change, refresh the reference with `cargo run --release -p switchboard-bench -- gate --update`.\n\n{measured} Committed reference: {reference}×.",
        n = 2000,
        n2 = 4000
    )
}
