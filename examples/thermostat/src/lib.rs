//! The thermostat example: a server implementation and a client walkthrough, shared by the
//! `thermostat-server`, `thermostat-client` and `quickstart` binaries.
//!
//! `generated/thermostat.rs` is written by `switchboard generate thermostat.yaml
//! --lang rust --out src/generated` and committed, so you can read exactly what the generator makes.

pub mod client;
pub mod server;

/// Code generated from `thermostat.yaml`.
pub mod generated {
    /// The `Thermostat` interface: server trait, server handle, client and types.
    // The generator formats its own output; `cargo xtask codegen --check` keeps it as generated.
    #[rustfmt::skip]
    pub mod thermostat;
}

/// Sends logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
