//! switchboard's benchmark suite and callgrind gate.
//!
//! - `switchboard-bench all [--quick]` runs every scenario and writes `docs/benchmarks.md`;
//! - `switchboard-bench gate [--update]` is the CI instruction-count gate;
//! - `switchboard-bench soak (--minutes N | --seconds N)` runs the soak (`soak.rs`);
//! - `serve ROLE ADDR` and `gate-workload …` are roles the suite starts itself.
//!
//! `SB_PROFILE_SERVERS=DIR` runs every server role under callgrind, one profile per role in `DIR`.

mod bridge;
mod cpp_peer;
mod gate;
mod gateway;
mod mqtt;
mod nats;
mod node_rows;
mod peers;
mod raw_amqp;
mod raw_redis;
mod report;
mod scenarios;
mod servers;
mod soak;
mod util;

mod generated {
    #![allow(missing_docs, unreachable_pub, dead_code, missing_debug_implementations)]
    pub(crate) mod bench {
        switchboard::include_interface!("bench");
    }
    pub(crate) mod thermostat {
        switchboard::include_interface!("thermostat");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve", role, addr] => servers::serve(role, addr),
        ["gate-workload", which, n] => gate::workload(which, n.parse().expect("a count")),
        ["gate"] => std::process::exit(gate::run(false)),
        ["gate", "--update"] => std::process::exit(gate::run(true)),
        ["all", rest @ ..] => report::all(rest),
        ["soak", rest @ ..] => std::process::exit(soak::run(rest)),
        _ => {
            eprintln!(
                "usage: switchboard-bench all [--quick] [--rows 1,2,…] [--out FILE]\n       switchboard-bench gate [--update]\n       switchboard-bench soak (--minutes N | --seconds N)"
            );
            std::process::exit(2);
        }
    }
}
