//! Exit codes and the errors that lead to them.

use std::process::ExitCode;

use switchboard_core::{CallError, RemoteError, TransportError, TransportErrorKind};

/// `check`/`generate`/`diff` found problems in a file, or a local failure (I/O, git) occurred.
pub(crate) const FAILURE: u8 = 1;
/// Bad command line: unknown option, bad `NAME=VALUE`, missing argument (clap uses 2 as well).
pub(crate) const USAGE: u8 = 2;
/// The server answered with an error; its name is on standard error.
pub(crate) const REMOTE: u8 = 3;
/// No such service, or no such method, property, signal, action or command.
pub(crate) const NOT_FOUND: u8 = 4;
/// No answer in time (`--timeout`, or the 30 s request default).
pub(crate) const TIMEOUT: u8 = 5;
/// The connection failed, broke, or the server speaks another interface.
pub(crate) const TRANSPORT: u8 = 6;
/// `diff`: a change breaks the side `--for` names.
pub(crate) const BREAKING: u8 = 7;
/// `diff --require-version-bump`: the new version does not carry the bump the changes need.
pub(crate) const VERSION_BUMP: u8 = 8;
/// Interrupted by Ctrl-C (or SIGTERM) while a goal ran: it was cancelled.
pub(crate) const INTERRUPTED: u8 = 130;

/// Every exit code and what it means: the table `--help` and the manual page show.
pub(crate) const EXIT_CODES: &[(u8, &str)] = &[
    (0, "success (`watch` stopped by --count or --timeout succeeds too)"),
    (FAILURE, "check/generate/diff found problems in a file; a local failure"),
    (USAGE, "usage: bad options or arguments (NAME=VALUE that does not fit its type)"),
    (REMOTE, "the server answered with an error (its name is printed on stderr)"),
    (NOT_FOUND, "not found: no such service, method, property, signal, action or command"),
    (TIMEOUT, "timeout: a request or a goal got no answer in time"),
    (
        TRANSPORT,
        "transport failure: cannot connect (e.g. no broker), connection lost, incompatible interface",
    ),
    (BREAKING, "diff: a change breaks the clients or servers `--for` names"),
    (VERSION_BUMP, "diff --require-version-bump: the new version lacks the bump the changes need"),
    (INTERRUPTED, "interrupted (Ctrl-C): a running goal was cancelled"),
];

/// The exit-code table as `--help` shows it.
pub(crate) fn exit_codes_help() -> String {
    let mut help = String::from("Exit codes:");
    for (code, meaning) in EXIT_CODES {
        help.push_str(&format!("\n  {code:<4} {meaning}"));
    }
    help
}

/// A failure of a verb, carrying what decides the exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Exit 2.
    Usage(String),
    /// Exit 3, with the error's name.
    Remote(RemoteError),
    /// Exit 4.
    NotFound(String),
    /// Exit 5.
    Timeout(String),
    /// Exit 6.
    Transport(String),
    /// Exit 1.
    Local(String),
    /// Exit 130: already reported.
    Interrupted,
}

impl Failure {
    /// The process exit code.
    pub(crate) fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => USAGE,
            Failure::Remote(_) => REMOTE,
            Failure::NotFound(_) => NOT_FOUND,
            Failure::Timeout(_) => TIMEOUT,
            Failure::Transport(_) => TRANSPORT,
            Failure::Local(_) => FAILURE,
            Failure::Interrupted => INTERRUPTED,
        }
    }

    /// Prints the failure on standard error and returns the exit code.
    pub(crate) fn report(&self) -> ExitCode {
        match self {
            Failure::Remote(error) => {
                if error.message().is_empty() {
                    eprintln!("error: {}", error.name());
                } else {
                    eprintln!("error: {}: {}", error.name(), error.message());
                }
                if let Some(details) = error.details() {
                    eprintln!("details: {details}");
                }
            }
            Failure::Usage(message) => eprintln!("usage error: {message}"),
            Failure::NotFound(message) => eprintln!("not found: {message}"),
            Failure::Timeout(message) => eprintln!("timeout: {message}"),
            Failure::Transport(message) => eprintln!("transport error: {message}"),
            Failure::Local(message) => eprintln!("error: {message}"),
            Failure::Interrupted => {}
        }
        ExitCode::from(self.code())
    }

    /// The short name used in pipe-gateway error lines.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Failure::Usage(_) => "usage",
            Failure::Remote(_) => "remote",
            Failure::NotFound(_) => "not_found",
            Failure::Timeout(_) => "timeout",
            Failure::Transport(_) => "transport",
            Failure::Local(_) => "local",
            Failure::Interrupted => "interrupted",
        }
    }

    /// The failure as a JSON error object: `{"kind":…,"name":…,"message":…,"details":…}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Failure::Remote(error) => serde_json::json!({
                "kind": self.kind(),
                "name": error.name(),
                "code": error.code().as_u8(),
                "message": error.message(),
                "details": error.details(),
            }),
            Failure::Usage(m)
            | Failure::NotFound(m)
            | Failure::Timeout(m)
            | Failure::Transport(m)
            | Failure::Local(m) => serde_json::json!({ "kind": self.kind(), "message": m }),
            Failure::Interrupted => {
                serde_json::json!({ "kind": self.kind(), "message": "interrupted" })
            }
        }
    }
}

/// The one place a transport's failure becomes an exit code, whatever the transport: a service
/// nobody serves is not found (4), a bad address a usage error (2), and everything else,
/// `Unreachable` (no broker at the address) included, a transport failure (6).
impl From<TransportError> for Failure {
    fn from(error: TransportError) -> Self {
        match error.kind() {
            TransportErrorKind::NotFound => Failure::NotFound(error.to_string()),
            TransportErrorKind::InvalidAddress => Failure::Usage(error.to_string()),
            TransportErrorKind::Unreachable => Failure::Transport(error.to_string()),
            _ => Failure::Transport(error.to_string()),
        }
    }
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Remote(remote) => Failure::Remote(remote),
            CallError::Timeout(after) => Failure::Timeout(format!("no answer within {after:?}")),
            CallError::Transport(transport) => transport.into(),
            other => Failure::Transport(other.to_string()),
        }
    }
}
