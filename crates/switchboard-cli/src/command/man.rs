//! `switchboard man`: the manual pages, rendered from the clap definitions.
//!
//! One page per command: `switchboard.1`, and `switchboard-VERB.1` for each subcommand. A page's
//! `after_help` (the exit-code table) becomes an EXIT STATUS section.

use std::{io::Write as _, process::ExitCode};

use anyhow::Context as _;
use clap::CommandFactory;

use crate::{
    cli::{Cli, ManArgs},
    exit::EXIT_CODES,
};

/// Prints `switchboard.1`, or writes every page into `--dir`.
pub(crate) fn run(args: &ManArgs) -> anyhow::Result<ExitCode> {
    // `help` is a subcommand on the command line only: it gets no page of its own.
    let mut root = Cli::command().disable_help_subcommand(true);
    // Building gives each subcommand its display name, `switchboard-VERB`.
    root.build();
    let Some(dir) = &args.dir else {
        std::io::stdout().lock().write_all(page(&root)?.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let subcommands = root.get_subcommands().filter(|c| !c.is_hide_set());
    for command in std::iter::once(&root).chain(subcommands) {
        let path = dir.join(clap_mangen::Man::new(command.clone()).get_filename());
        std::fs::write(&path, page(command)?)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The page of one command, in roff.
fn page(command: &clap::Command) -> anyhow::Result<String> {
    let has_exit_codes = command.get_after_help().is_some();
    // The exit codes get a section of their own rather than clap_mangen's generic EXTRA.
    let man = clap_mangen::Man::new(command.clone().after_help(None::<&str>));
    let mut rendered = Vec::new();
    man.render(&mut rendered)?;
    let mut page = String::from_utf8(rendered).context("the manual page is not UTF-8")?;
    if has_exit_codes {
        let section = exit_status_section();
        match page.find("\n.SH VERSION\n") {
            Some(at) => page.insert_str(at + 1, &section),
            None => page.push_str(&section),
        }
    }
    Ok(page)
}

/// The EXIT STATUS section: one tagged paragraph per exit code.
fn exit_status_section() -> String {
    let mut section = roff::Roff::new();
    section.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_CODES {
        section
            .control("TP", [])
            .text([roff::bold(code.to_string())])
            .text([roff::roman(*meaning)]);
    }
    section.to_roff()
}
