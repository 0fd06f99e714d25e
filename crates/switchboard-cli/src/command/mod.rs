//! Runs the subcommands; each returns the process exit code.

mod check;
mod generate;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs the subcommand `cli` names.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Generate(args) => generate::run(&args),
    }
}
