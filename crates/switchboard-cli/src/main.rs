//! The `switchboard` command's entry point; the command itself is the library (`src/lib.rs`).

use std::process::ExitCode;

fn main() -> ExitCode {
    switchboard_cli::main()
}
