//! The deterministic regression gate: callgrind instruction counts of one Unix-socket method
//! call (client and server in one process, one `current_thread` runtime), stated as a ratio to
//! a raw tokio client and server doing the same framing and serde_json work.
//!
//! Each side runs twice under callgrind, with N and 2N calls; the difference divided by N is
//! the cost of one call with start-up, connection and shutdown subtracted out.

use std::{path::Path, process::Command};

use switchboard::Endpoint;

use crate::scenarios::{Ours, RawTokio, RoundTrip};

/// Calls in the shorter run; the longer one makes twice as many.
const N: u64 = 2000;

/// The gate fails when the ratio exceeds the reference by more than this factor.
const TOLERANCE: f64 = 1.10;

/// The committed reference value.
pub(crate) fn reference_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("gate-reference.txt")
}

/// `gate-workload ours|goal|feedback|raw N`: the measured program (`goal` and `feedback` are
/// for profiles of row 8; the gate itself compares `ours` with `raw`).
pub(crate) fn workload(which: &str, n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = crate::util::socket_dir();
    let path = dir.path("gate.sock");
    rt.block_on(async {
        match which {
            "ours" => {
                let endpoint = Endpoint::parse(&format!("unix://{path}")).expect("url");
                let server = crate::servers::serve_ours(&endpoint).await;
                let mut client = Ours::connect(&endpoint).await;
                for _ in 0..n {
                    client.once().await;
                }
                client.client.close();
                server.shutdown().await;
            }
            "goal" => {
                // Row 8's goal → accepted exchange, each goal settled before the next: for profiles.
                let endpoint = Endpoint::parse(&format!("unix://{path}")).expect("url");
                let server = crate::servers::serve_ours(&endpoint).await;
                let mut client = crate::scenarios::GoalAccepted::connect(&endpoint).await;
                for _ in 0..n {
                    client.once().await;
                    client.settle().await;
                }
                server.shutdown().await;
            }
            "feedback" => {
                // Row 8's feedback rate: one goal whose handler sends N feedback back to back.
                let endpoint = Endpoint::parse(&format!("unix://{path}")).expect("url");
                let server = crate::servers::serve_ours(&endpoint).await;
                let steps = u32::try_from(n).expect("a step count");
                let (_, missed) =
                    crate::scenarios::feedback_rate(&endpoint, steps).await.expect("goal");
                assert_eq!(missed, 0, "feedback was dropped");
                server.shutdown().await;
            }
            "raw" => {
                let listener = tokio::net::UnixListener::bind(&path).expect("bind");
                let accept = tokio::spawn(crate::servers::raw_tokio_accept(listener));
                let mut client = RawTokio::connect(&path).await;
                for _ in 0..n {
                    client.once().await;
                }
                accept.abort();
            }
            other => panic!("unknown gate workload {other}"),
        }
    });
}

/// Runs the workload under callgrind and returns its total instruction count.
fn instructions(which: &str, n: u64, out_dir: &Path) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = out_dir.join(format!("callgrind.{which}.{n}"));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--quiet")
        .arg(&exe)
        .args(["gate-workload", which, &n.to_string()])
        .status()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !status.success() {
        return Err(format!("valgrind {which} {n} failed: {status}"));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no totals in {}", out.display()))
}

/// Instructions per call for `which`.
pub(crate) fn per_call(which: &str, out_dir: &Path) -> Result<f64, String> {
    let short = instructions(which, N, out_dir)?;
    let long = instructions(which, 2 * N, out_dir)?;
    Ok((long as f64 - short as f64) / N as f64)
}

/// The measurement: (ours per call, raw per call, ratio).
pub(crate) fn measure(out_dir: &Path) -> Result<(f64, f64, f64), String> {
    let ours = per_call("ours", out_dir)?;
    let raw = per_call("raw", out_dir)?;
    Ok((ours, raw, ours / raw))
}

/// `gate [--update]`: measures, compares with the reference, and exits non-zero on a regression.
pub(crate) fn run(update: bool) -> i32 {
    let dir = crate::util::socket_dir();
    let out_dir = std::path::PathBuf::from(dir.path(""));
    let (ours, raw, ratio) = match measure(&out_dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("gate: {e}");
            return 2;
        }
    };
    println!("instructions per Unix-socket method call: ours {ours:.0}, raw baseline {raw:.0}");
    println!("ratio ours/raw: {ratio:.3}");
    let path = reference_path();
    if update {
        let text = format!(
            "# Callgrind gate reference: instructions per Unix-socket method call, ours / raw tokio\n\
             # baseline (same framing and serde_json). Written by `switchboard-bench gate --update`.\n\
             # ours={ours:.0} raw={raw:.0}\n{ratio:.3}\n"
        );
        std::fs::write(&path, text).expect("write reference");
        println!("wrote {}", path.display());
        return 0;
    }
    let reference: f64 = match std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.lines().filter(|l| !l.starts_with('#')).find_map(|l| l.trim().parse().ok()))
    {
        Some(r) => r,
        None => {
            eprintln!("gate: no reference value in {}", path.display());
            return 2;
        }
    };
    let limit = reference * TOLERANCE;
    println!("reference {reference:.3}, limit {limit:.3} (+{:.0}%)", (TOLERANCE - 1.0) * 100.0);
    if ratio > limit {
        eprintln!(
            "gate FAILED: a Unix-socket method call costs {ratio:.3}× the raw baseline, over the limit {limit:.3}"
        );
        1
    } else {
        println!("gate passed");
        0
    }
}
