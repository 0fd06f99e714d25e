//! The command-line grammar, declared with clap's derive API.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Work with switchboard interface files, and talk to running switchboard services.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, after_help = crate::exit::exit_codes_help())]
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
    /// Compare two versions of an interface file and say which changes break old clients or servers.
    #[command(after_help = crate::exit::exit_codes_help())]
    Diff(DiffArgs),
    /// List running services: scans the socket directory, or discovers over MQTT.
    #[command(after_help = crate::exit::exit_codes_help())]
    List(ListArgs),
    /// Print a service's interface, as the server describes it at run time.
    #[command(after_help = crate::exit::exit_codes_help())]
    Introspect(IntrospectArgs),
    /// Call a method and print its reply.
    #[command(after_help = crate::exit::exit_codes_help())]
    Call(InvokeArgs),
    /// Read a property and print its value.
    #[command(after_help = crate::exit::exit_codes_help())]
    Get(GetArgs),
    /// Replace a property's value and print the new value.
    #[command(after_help = crate::exit::exit_codes_help())]
    Set(InvokeArgs),
    /// Print signals and property changes, one JSON line each, until stopped.
    #[command(after_help = crate::exit::exit_codes_help())]
    Watch(WatchArgs),
    /// Start a goal of an action; print its feedback as JSON lines and then its end. Ctrl-C cancels it.
    #[command(after_help = crate::exit::exit_codes_help())]
    Action(InvokeArgs),
    /// Run a command (fire and forget).
    #[command(after_help = crate::exit::exit_codes_help())]
    #[allow(clippy::enum_variant_names)]
    Command(InvokeArgs),
    /// Serve a named-pipe gateway to a service: one request per line in, one JSON line out.
    #[command(after_help = crate::exit::exit_codes_help())]
    Pipe(PipeArgs),
    /// Carry topics, topic patterns, RPCs and whole services between two URLs, as a YAML file
    /// says, until stopped.
    #[command(after_help = crate::exit::exit_codes_help())]
    Bridge(BridgeArgs),
    /// Serve an HTTP/JSON gateway to the services (methods, properties, commands, goals, event
    /// streams, OpenAPI documents) until stopped.
    #[command(after_help = crate::exit::exit_codes_help())]
    Web(WebArgs),
    /// Browse and drive the services in a terminal UI: members and their documentation, forms
    /// for calls, live signals and properties, goals with progress. `?` shows the keys.
    #[command(after_help = crate::exit::exit_codes_help())]
    Tui(TuiArgs),
    /// Talk to nodes without an interface file (commlib-py's and switchboard's): publish,
    /// subscribe to a pattern, call an RPC by name, with JSON.
    #[command(subcommand, after_help = crate::exit::exit_codes_help())]
    Node(NodeCommand),
    /// Print a shell completion script: `source <(switchboard completions bash)`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per subcommand with `--dir`.
    Man(ManArgs),
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// One compact JSON object (or one per line for `watch` and `action`).
    Json,
    /// Readable text, coloured when standard output is a terminal and `NO_COLOR` is not set.
    Text,
}

/// Options every verb that talks to a service shares.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConnectArgs {
    /// Where the service lives (`unix:`, `unix:///path.sock`, `mqtt://host:1883`, …).
    /// Default: `$SWITCHBOARD_URL`, then the standard Unix socket. A URL without a password
    /// takes the user and password of `$SWITCHBOARD_URL` when both have the same scheme, host
    /// and port (so the addresses `list` prints, which never show a password, work).
    #[arg(long, value_name = "URL")]
    pub(crate) connect: Option<String>,
    /// The interface file, for peers that cannot describe themselves (StingerIPC).
    /// Without it the server is asked for its description.
    #[arg(long, value_name = "FILE")]
    pub(crate) interface: Option<PathBuf>,
    /// How to print results. Default: `text` when standard output is a terminal, else `json`.
    #[arg(long, value_enum)]
    pub(crate) format: Option<OutputFormat>,
    /// Give up after this long (`500ms`, `2s`, `1m`, or seconds). Requests default to 30 s;
    /// `watch` and `action` have no timeout unless this is given.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub(crate) timeout: Option<std::time::Duration>,
}

/// Parses `500ms`, `2s`, `1.5`, `1m`.
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("`{text}` is not a duration"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("`{text}`: use ms, s, m or h")),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{text}` is not a duration"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Arguments of `switchboard list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) conn: ConnectArgs,
}

/// Arguments of `switchboard introspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct IntrospectArgs {
    #[command(flatten)]
    pub(crate) conn: ConnectArgs,
    /// `Interface` or `Interface/instance`.
    #[arg(value_name = "SERVICE")]
    pub(crate) service: String,
}

/// Arguments of `call`, `set`, `action` and `command`.
#[derive(Debug, clap::Args)]
pub(crate) struct InvokeArgs {
    #[command(flatten)]
    pub(crate) conn: ConnectArgs,
    /// `Interface` or `Interface/instance`.
    #[arg(value_name = "SERVICE")]
    pub(crate) service: String,
    /// The method, property, action or command.
    #[arg(value_name = "NAME")]
    pub(crate) member: String,
    /// Arguments as `NAME=VALUE`; each value is parsed by the argument's declared type.
    #[arg(value_name = "NAME=VALUE", conflicts_with = "json")]
    pub(crate) args: Vec<String>,
    /// All arguments as one JSON object.
    #[arg(long, value_name = "JSON")]
    pub(crate) json: Option<String>,
}

/// Arguments of `switchboard get`.
#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    pub(crate) conn: ConnectArgs,
    /// `Interface` or `Interface/instance`.
    #[arg(value_name = "SERVICE")]
    pub(crate) service: String,
    /// The property.
    #[arg(value_name = "PROPERTY")]
    pub(crate) property: String,
}

/// Arguments of `switchboard watch`.
#[derive(Debug, clap::Args)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    pub(crate) conn: ConnectArgs,
    /// `Interface` or `Interface/instance`.
    #[arg(value_name = "SERVICE")]
    pub(crate) service: String,
    /// Signals and properties to watch; all of them when none is given.
    #[arg(value_name = "SIGNAL_OR_PROPERTY")]
    pub(crate) names: Vec<String>,
    /// Stop (successfully) after this many events.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
}

/// Arguments of `switchboard pipe`.
#[derive(Debug, clap::Args)]
pub(crate) struct PipeArgs {
    #[command(flatten)]
    pub(crate) conn: ConnectArgs,
    /// `Interface` or `Interface/instance`.
    #[arg(value_name = "SERVICE")]
    pub(crate) service: String,
    /// The directory to create the FIFOs `requests` and `responses` in (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// How long a session's FIFOs (`{"session":"NAME"}`) may both be closed before the session
    /// ends and they are removed (`500ms`, `2s`, `1m`, or seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout, default_value = "10s")]
    pub(crate) session_idle: std::time::Duration,
}

/// Where the services are, for the verbs that show all of them (`web`, `tui`).
#[derive(Debug, clap::Args)]
pub(crate) struct BrowseArgs {
    /// Where the services live (`unix:`, `mqtt://host:1883`, …), as for the other verbs.
    /// Default: `$SWITCHBOARD_URL`, then the standard Unix socket.
    #[arg(long, value_name = "URL")]
    pub(crate) connect: Option<String>,
    /// The interface file, for peers that cannot describe themselves (StingerIPC).
    #[arg(long, value_name = "FILE")]
    pub(crate) interface: Option<PathBuf>,
    /// Bound connecting, each request and each discovery round to this long (`500ms`, `2s`,
    /// `1m`, or seconds). Requests default to 30 s, discovery to 3 s.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub(crate) timeout: Option<std::time::Duration>,
}

impl BrowseArgs {
    /// The connection arguments each service is opened with.
    pub(crate) fn connect_args(&self) -> ConnectArgs {
        ConnectArgs {
            connect: self.connect.clone(),
            interface: self.interface.clone(),
            format: None,
            timeout: self.timeout,
        }
    }
}

/// Arguments of `switchboard web`.
#[derive(Debug, clap::Args)]
pub(crate) struct WebArgs {
    #[command(flatten)]
    pub(crate) services: BrowseArgs,
    /// The address to serve on. Anything but a loopback address needs `--token`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// Require `Authorization: Bearer TOKEN` on every request (but CORS preflights).
    #[arg(long, value_name = "TOKEN", env = "SWITCHBOARD_WEB_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Allow browser pages from this origin (`https://console.example`) to call the gateway;
    /// repeatable. No CORS headers are sent without it.
    #[arg(long, value_name = "ORIGIN")]
    pub(crate) cors: Vec<String>,
    /// The most event streams (server-sent events) open at once; more are refused with 503.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub(crate) max_streams: usize,
}

/// Arguments of `switchboard tui`.
#[derive(Debug, clap::Args)]
pub(crate) struct TuiArgs {
    #[command(flatten)]
    pub(crate) services: BrowseArgs,
}

/// Arguments of `switchboard bridge`.
#[derive(Debug, clap::Args)]
pub(crate) struct BridgeArgs {
    /// The bridge's configuration: the URLs `a` and `b` and its `routes` (see docs/bridges.md).
    #[arg(value_name = "CONFIG.yaml")]
    pub(crate) config: PathBuf,
}

/// The verbs of `switchboard node`.
#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Publish one JSON object on a topic.
    #[command(after_help = crate::exit::exit_codes_help())]
    Publish(NodePublishArgs),
    /// Print the messages on every topic matching a pattern, one JSON line each with its topic.
    #[command(after_help = crate::exit::exit_codes_help())]
    Subscribe(NodeSubscribeArgs),
    /// Call an RPC by name with a JSON object and print its reply.
    #[command(after_help = crate::exit::exit_codes_help())]
    Call(NodeCallArgs),
}

/// Options every `node` verb shares.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NodeConnectArgs {
    /// The broker or socket directory (`mqtt://host:1883`, `redis://host:6379`,
    /// `amqp://guest:guest@host:5672`, `nats://host:4222`, `unix:`).
    /// Default: `$SWITCHBOARD_URL`, then the standard Unix socket directory.
    #[arg(long, value_name = "URL")]
    pub(crate) connect: Option<String>,
    /// Give up after this long (`500ms`, `2s`, `1m`, or seconds); it also bounds connecting.
    /// `call` defaults to 30 s; `subscribe` runs until stopped unless this is given.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub(crate) timeout: Option<std::time::Duration>,
}

/// Arguments of `switchboard node publish`.
#[derive(Debug, clap::Args)]
pub(crate) struct NodePublishArgs {
    #[command(flatten)]
    pub(crate) conn: NodeConnectArgs,
    /// The topic, dotted (`sensors.front`).
    #[arg(value_name = "TOPIC")]
    pub(crate) topic: String,
    /// The message: one JSON object.
    #[arg(value_name = "JSON")]
    pub(crate) json: String,
}

/// Arguments of `switchboard node subscribe`.
#[derive(Debug, clap::Args)]
pub(crate) struct NodeSubscribeArgs {
    #[command(flatten)]
    pub(crate) conn: NodeConnectArgs,
    /// A topic, or a pattern: `*` stands for one segment, a last `*` or `>` for the rest
    /// (`sensors.*` matches `sensors.front` and `sensors.front.left`).
    #[arg(value_name = "PATTERN")]
    pub(crate) pattern: String,
    /// Stop (successfully) after this many messages.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
}

/// Arguments of `switchboard node call`.
#[derive(Debug, clap::Args)]
pub(crate) struct NodeCallArgs {
    #[command(flatten)]
    pub(crate) conn: NodeConnectArgs,
    /// The RPC's name (`demo.add_two_ints`).
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// The request: one JSON object.
    #[arg(value_name = "JSON")]
    pub(crate) json: String,
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
    /// Print problems only: no line for each file that is fine.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// How `check` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Rendered diagnostics, and one line per file saying what it holds, on standard error.
    Human,
    /// One JSON document on standard output.
    Json,
}

/// Arguments of `switchboard diff`.
#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    /// The old version: a file, or `REV:PATH` for a file at a git revision (`HEAD~1:api.yaml`,
    /// `main:api.yaml`), read with `git show` in the current directory. A file wins when both exist.
    #[arg(value_name = "OLD")]
    pub(crate) old: String,
    /// The new version, in the same forms.
    #[arg(value_name = "NEW")]
    pub(crate) new: String,
    /// Whose running peers must not break: `clients` built from OLD talking to a server built
    /// from NEW, `servers` built from OLD serving clients built from NEW, or `both`.
    #[arg(long = "for", value_enum, default_value_t = DiffSide::Clients, value_name = "SIDE")]
    pub(crate) side: DiffSide,
    /// How to print the changes.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub(crate) format: DiffFormat,
    /// Fail (exit 8) when NEW's `version` does not carry the bump the changes need; without it,
    /// that is only a warning.
    #[arg(long)]
    pub(crate) require_version_bump: bool,
}

/// `--for` of `switchboard diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiffSide {
    /// Existing clients, against an updated server.
    Clients,
    /// Existing servers, serving updated clients.
    Servers,
    /// Both.
    Both,
}

/// `--format` of `switchboard diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiffFormat {
    /// One line per change, then a summary.
    Text,
    /// One JSON document.
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

/// Arguments of `switchboard completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub(crate) shell: clap_complete::Shell,
}

/// Arguments of `switchboard man`.
#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// Write `switchboard.1` and a `switchboard-VERB.1` per subcommand into this directory
    /// (created if missing) instead of printing `switchboard.1`.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// Target languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Lang {
    /// Rust, for the `switchboard` runtime.
    Rust,
    /// Python: an installable package for the `switchboard` Python runtime.
    Python,
    /// An AsyncAPI 3.0 document (JSON) of the interface's MQTT mapping.
    #[value(name = "asyncapi")]
    AsyncApi,
    /// A Markdown reference of the interface.
    Markdown,
    /// C++20: a header-only CMake library for the `switchboard` C++ runtime.
    Cpp,
    /// An OpenAPI 3.1 document (JSON) of the routes `switchboard web` serves for the interface.
    #[value(name = "openapi")]
    OpenApi,
}
