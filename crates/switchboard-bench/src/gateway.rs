//! Row 19: a method call through the HTTP gateway (`switchboard web`, one keep-alive HTTP/1.1
//! connection) against a direct Rust client call and against a `switchboard call` process per
//! call, all to the bench's echo server on a Unix socket in the standard layout.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use switchboard::Endpoint;

use crate::{
    scenarios::{self, Ours, Plan, RoundTrip},
    util::{self, Paired, Server},
};

/// The `switchboard` binary beside this one (built by `cargo build --release -p switchboard-cli`).
fn cli_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe.parent().ok_or("no directory")?.to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = profile_dir.parent().ok_or("no target directory")?;
    let profile = if profile_dir.ends_with("release") { "--release" } else { "--profile=dev" };
    let built = Command::new(&cargo)
        .args(["build", profile, "-p", "switchboard-cli", "--bin", "switchboard"])
        .env("CARGO_TARGET_DIR", target)
        .status()
        .is_ok_and(|s| s.success());
    let binary = profile_dir.join("switchboard");
    if built && binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("`cargo build {profile} -p switchboard-cli` did not give {}", binary.display()))
    }
}

/// A running `switchboard web`, killed on drop.
struct Gateway {
    child: Child,
    address: String,
}

impl Gateway {
    fn start(cli: &Path, runtime_dir: &str) -> Gateway {
        let mut child = util::server_command(cli)
            .args(["web", "--connect", "unix:", "--listen", "127.0.0.1:0"])
            .env("XDG_RUNTIME_DIR", runtime_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn switchboard web");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the gateway's first line");
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Gateway { child, address }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `POST /api/services/Bench/default/methods/echo` over one keep-alive connection (blocking, as
/// a simple HTTP client would; the gateway runs in another process).
struct HttpEcho {
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
    body: Vec<u8>,
}

impl HttpEcho {
    fn connect(address: &str) -> HttpEcho {
        let stream = TcpStream::connect(address).expect("connect to the gateway");
        stream.set_nodelay(true).expect("nodelay");
        let body = serde_json::json!({ "data": util::payload_data() }).to_string();
        let request = format!(
            "POST /api/services/Bench/default/methods/echo HTTP/1.1\r\nHost: {address}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        HttpEcho { reader: BufReader::new(stream), request: request.into_bytes(), body: Vec::new() }
    }
}

impl RoundTrip for HttpEcho {
    async fn once(&mut self) {
        self.reader.get_mut().write_all(&self.request).expect("send the request");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        assert!(line.starts_with("HTTP/1.1 200"), "the gateway answered {line:?}");
        let mut length = None;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("a header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let length = length.expect("a Content-Length");
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body).expect("the body");
        // The reply is the request's JSON again: `{"data":"…53 bytes…"}`.
        assert_eq!(self.body.len(), 64, "{:?}", String::from_utf8_lossy(&self.body));
    }
}

/// One `switchboard call Bench echo data=…` process per call.
struct CliCall {
    command: Command,
}

impl CliCall {
    fn new(cli: &Path, runtime_dir: &str) -> CliCall {
        let mut command = Command::new(cli);
        command
            .args(["call", "--connect", "unix:", "Bench", "echo"])
            .arg(format!("data={}", util::payload_data()))
            .env("XDG_RUNTIME_DIR", runtime_dir)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        CliCall { command }
    }
}

impl RoundTrip for CliCall {
    async fn once(&mut self) {
        let output = self.command.output().expect("run switchboard call");
        assert!(output.status.success(), "switchboard call failed");
        assert!(output.stdout.len() > 53);
    }
}

/// The row's two lines: gateway vs a direct client call, and gateway vs `switchboard call`.
pub(crate) struct Figures {
    /// ours = HTTP through the gateway, base = the generated Rust client, directly.
    pub(crate) against_direct: Paired,
    /// ours = HTTP through the gateway, base = `switchboard call` per call.
    pub(crate) against_cli: Paired,
}

/// Measures row 19; `quick` shortens it 5×.
pub(crate) async fn measure(quick: bool) -> Result<Figures, String> {
    let cli = cli_binary()?;
    let dir = util::socket_dir();
    let runtime_dir = dir.path("runtime");
    let socket = format!("{runtime_dir}/switchboard/Bench/default.sock");
    std::fs::create_dir_all(format!("{runtime_dir}/switchboard/Bench"))
        .map_err(|e| e.to_string())?;
    let _server = Server::spawn("ours-unix", &socket);
    let gateway = Gateway::start(&cli, &runtime_dir);
    let scale = if quick { 5 } else { 1 };
    let endpoint = Endpoint::parse(&format!("unix://{socket}")).map_err(|e| e.to_string())?;
    let mut direct = Ours::connect(&endpoint).await;
    let mut http = HttpEcho::connect(&gateway.address);
    let against_direct = scenarios::compare(
        &mut direct,
        &mut http,
        Plan { warmup: 500, rounds: 10, per_round: 2000 / scale },
    )
    .await;
    let mut cli_call = CliCall::new(&cli, &runtime_dir);
    let against_cli = scenarios::compare(
        &mut cli_call,
        &mut http,
        Plan { warmup: 5, rounds: 10, per_round: 50 / scale },
    )
    .await;
    Ok(Figures { against_direct, against_cli })
}
