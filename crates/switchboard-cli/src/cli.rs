//! The command-line grammar, declared with clap's derive API.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Work with switchboard interface files.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Parse and validate interface files, reporting every problem found.
    Check(CheckArgs),
    /// Generate code from an interface file.
    Generate(GenerateArgs),
}

/// Arguments of `switchboard check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The interface files to check.
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// How to report the diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(crate) format: Format,
}

/// How `check` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Rendered diagnostics on standard error.
    Human,
    /// One JSON document on standard output.
    Json,
}

/// Arguments of `switchboard generate`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// The interface file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// The language to generate.
    #[arg(long, value_enum)]
    pub(crate) lang: Lang,
    /// The directory to write into; created if missing.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Write nothing; exit with status 1 if the files in the directory are not up to date.
    #[arg(long)]
    pub(crate) check: bool,
}

/// Target languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Lang {
    /// Rust, for the `switchboard` runtime.
    Rust,
}
