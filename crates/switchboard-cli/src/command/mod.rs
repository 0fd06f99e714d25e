//! Runs the subcommands; each returns the process exit code.

mod bridge;
mod check;
mod completions;
mod diff;
mod generate;
mod list;
mod man;
mod node;
pub(crate) mod pipe;
pub(crate) mod remote;
mod tui;
mod web;

use std::process::ExitCode;

use crate::{
    cli::{Cli, Command},
    exit::Failure,
};

/// Runs the subcommand `cli` names.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Diff(args) => Ok(diff::run(&args)),
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
        other => Ok(run_remote(other)),
    }
}

/// Runs a verb that talks to services, on a Tokio runtime, and maps its failure to an exit code.
fn run_remote(command: Command) -> ExitCode {
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                return Failure::Local(format!("cannot start the runtime: {error}")).report();
            }
        };
    let result = runtime.block_on(async move {
        match command {
            Command::List(args) => list::run(&args).await,
            Command::Introspect(args) => remote::introspect(&args).await,
            Command::Call(args) => remote::call(&args).await,
            Command::Get(args) => remote::get(&args).await,
            Command::Set(args) => remote::set(&args).await,
            Command::Watch(args) => remote::watch(&args).await,
            Command::Action(args) => remote::run_action(&args).await,
            Command::Command(args) => remote::run_command(&args).await,
            Command::Pipe(args) => pipe::run(&args).await,
            Command::Bridge(args) => bridge::run(&args).await,
            Command::Web(args) => web::run(&args).await,
            Command::Tui(args) => tui::run(&args).await,
            Command::Node(command) => node::run(&command).await,
            Command::Check(_)
            | Command::Generate(_)
            | Command::Diff(_)
            | Command::Completions(_)
            | Command::Man(_) => Ok(()),
        }
    });
    // Background tasks (reconnects, readers) must not hold the process open.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
