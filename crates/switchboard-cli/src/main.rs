//! The `switchboard` command: checks interface files, generates code from them, and talks to
//! running services from a shell (call, get, set, watch, action, command, list, introspect, and
//! a named-pipe gateway). See `docs/shell.md`.

mod cli;
mod command;
mod exit;
mod session;
mod types;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match command::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
