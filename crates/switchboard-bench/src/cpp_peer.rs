//! Row 20's C++ client: `cpp/bench/rtt_peer.cpp`, the C++ client generated from `bench.yaml` on
//! the C++ runtime in `cpp/`, built here with CMake in Release and driven over its standard
//! input and output. It times its own calls, so that the pipe to this process is not in them.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

use crate::{
    scenarios::RoundTrip,
    util::{self, Samples},
};

/// Builds `rtt_peer` (the runtime and the generated C++ of `bench.yaml`) in Release under the
/// target directory; returns its path.
pub(crate) fn build() -> Result<PathBuf, String> {
    let build = crate::peers::target_dir().join("cpp-bench");
    let generated = PathBuf::from(env!("OUT_DIR")).join("cpp");
    let mut configure = Command::new("cmake");
    configure
        .arg("-S")
        .arg(crate::peers::repo_root().join("cpp/bench"))
        .arg("-B")
        .arg(&build)
        .arg("-DCMAKE_BUILD_TYPE=Release")
        .arg(format!("-DSB_BENCH_GENERATED={}", generated.display()));
    run(&mut configure)?;
    run(Command::new("cmake").arg("--build").arg(&build).args(["--target", "rtt_peer", "-j2"]))?;
    Ok(build.join("rtt_peer"))
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// A running `rtt_peer`, connected to its server.
#[derive(Debug)]
pub(crate) struct CppClient {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    line: String,
}

impl CppClient {
    /// Starts `peer` against `where_` (a socket path or an `mqtt://` URL) and waits until it is
    /// connected.
    pub(crate) fn start(peer: &std::path::Path, where_: &str) -> Result<CppClient, String> {
        let mut child = Command::new(peer)
            .arg(where_)
            .arg(util::payload_data())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", peer.display()))?;
        let input = child.stdin.take().expect("piped");
        let output = BufReader::new(child.stdout.take().expect("piped"));
        let mut client = CppClient { child, input, output, line: String::new() };
        client.read_line()?;
        if client.line.trim() != "ready" {
            return Err(format!("rtt_peer did not connect to {where_}: {:?}", client.line));
        }
        Ok(client)
    }

    fn read_line(&mut self) -> Result<(), String> {
        self.line.clear();
        match self.output.read_line(&mut self.line) {
            Ok(0) => Err("rtt_peer ended".to_owned()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("cannot read rtt_peer's output: {e}")),
        }
    }

    /// Has the peer make `n` calls, and reads their round-trip times.
    fn calls(&mut self, n: usize) -> Samples {
        writeln!(self.input, "{n}").expect("write to rtt_peer");
        self.input.flush().expect("write to rtt_peer");
        self.read_line().expect("rtt_peer's round");
        let samples: Vec<u64> = self
            .line
            .split_whitespace()
            .map(|ns| ns.parse().expect("a time in nanoseconds"))
            .collect();
        assert_eq!(samples.len(), n, "rtt_peer timed another number of calls");
        Samples(samples)
    }
}

impl RoundTrip for CppClient {
    async fn once(&mut self) {
        self.calls(1);
    }

    async fn timed(&mut self, n: usize) -> Samples {
        self.calls(n)
    }
}

impl Drop for CppClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
