//! The `switchboard` command: checks interface files, generates code from them, compares two versions of one, and talks to
//! running services from a shell (call, get, set, watch, action, command, list, introspect, and
//! a named-pipe gateway), and to nodes without an interface file (`node publish|subscribe|call`).
//! See `docs/shell.md`.
//!
//! This library is the command's implementation; the binary (`src/main.rs`) only calls [`main`].
//! It offers no API beyond that, apart from hidden entry points for the fuzz targets in `fuzz/`.

mod cli;
mod command;
mod credentials;
mod exit;
mod session;
mod types;

use std::process::ExitCode;

use clap::Parser;

/// Runs the command on the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match command::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command's parsers of untrusted text, for the fuzz targets in `fuzz/` and their corpus
/// replay; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    use clap::Parser;

    /// Parses a command line (`args[0]` is the program name) as the command does: the parsed
    /// command, or clap's rendered error (which includes `--help` and `--version` output).
    pub fn parse_args(args: &[String]) -> Result<String, String> {
        crate::cli::Cli::try_parse_from(args)
            .map(|cli| format!("{cli:?}"))
            .map_err(|error| error.render().to_string())
    }

    /// Parses one request line of the pipe gateway (JSON or compact): the request, or the id
    /// and message of the error line it is answered with.
    pub fn parse_pipe_request(line: &str) -> Result<String, String> {
        crate::command::pipe::parse_request(line)
            .map(|request| format!("{request:?}"))
            .map_err(|(id, message)| format!("{id}: {message}"))
    }

    /// Splits a chunk read from the gateway's request FIFO into lines at most `limit` bytes
    /// long, carrying the unfinished line and the skipping state between chunks.
    pub fn split_pipe_lines(
        line: &mut Vec<u8>,
        skipping: &mut bool,
        chunk: &[u8],
        limit: usize,
    ) -> Vec<Result<Vec<u8>, String>> {
        crate::command::pipe::split_lines(line, skipping, chunk, limit)
    }
}
