//! Connecting to a service with no generated code: a descriptor built at run time from the
//! server's own description (or from `--interface FILE`).

use std::{io::IsTerminal, time::Duration};

use anstyle::{AnsiColor, Style};
use switchboard::{Endpoint, transport::SEQUENTIAL_WAITS};
use switchboard_core::{
    InterfaceDescriptor,
    client::{ClientCore, ClientOptions},
};
use switchboard_idl::Interface;

use crate::{
    cli::{ConnectArgs, OutputFormat},
    credentials,
    exit::Failure,
    types::Types,
};

/// How long connecting may take when `--timeout` is not given.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer than its own waits a transport may take to report why it failed.
const TRANSPORT_GRACE: Duration = Duration::from_secs(1);

/// `Interface` or `Interface/instance`.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub(crate) interface: String,
    pub(crate) instance: Option<String>,
}

impl Service {
    pub(crate) fn parse(text: &str) -> Result<Self, Failure> {
        let (interface, instance) = match text.split_once('/') {
            Some((i, n)) => (i, Some(n.to_owned())),
            None => (text, None),
        };
        if interface.is_empty() || instance.as_deref() == Some("") {
            return Err(Failure::Usage(format!(
                "`{text}` is not a service; expected `Interface` or `Interface/instance`"
            )));
        }
        Ok(Service { interface: interface.to_owned(), instance })
    }
}

/// The endpoint `--connect` (or `$SWITCHBOARD_URL`, or the Unix default) names, at the
/// service's instance, with each of its transport's waits cut to `--timeout`: reaching the
/// server or broker, and finding the instance. So an unreachable broker or an instance nobody
/// announces is reported as such within `--timeout`, however short, rather than as a timeout.
///
/// A `--connect` URL without a password takes the credentials of `$SWITCHBOARD_URL` when both
/// name the same broker ([`credentials::borrowed`]), so an address `list` printed works.
pub(crate) fn endpoint(conn: &ConnectArgs, instance: Option<&str>) -> Result<Endpoint, Failure> {
    let url = url(conn);
    let url = match (&conn.connect, environment_url()) {
        (Some(_), Some(source)) => credentials::borrowed(&url, &source).into_owned(),
        _ => url,
    };
    let mut endpoint = Endpoint::parse(&url).map_err(|e| Failure::Usage(e.to_string()))?;
    if let Some(timeout) = conn.timeout {
        endpoint = endpoint.with_waits_within(timeout);
    }
    match instance {
        Some(instance) => {
            endpoint.with_instance(instance).map_err(|e| Failure::Usage(e.to_string()))
        }
        None => Ok(endpoint),
    }
}

/// The URL in use, for messages: as given, never with credentials borrowed from elsewhere.
pub(crate) fn url(conn: &ConnectArgs) -> String {
    conn.connect.clone().or_else(environment_url).unwrap_or_else(|| "unix:".to_owned())
}

/// `$SWITCHBOARD_URL`, unless it is empty.
fn environment_url() -> Option<String> {
    std::env::var(switchboard::transport::URL_ENV).ok().filter(|u| !u.is_empty())
}

/// The runtime descriptor of a model; an empty `hash` makes a dynamic client that accepts any.
pub(crate) fn descriptor(iface: &Interface, hash: String) -> InterfaceDescriptor {
    InterfaceDescriptor::from_model(iface, hash, iface.description_json())
}

/// Reads and validates `--interface FILE`.
pub(crate) fn load_interface(path: &std::path::Path) -> Result<Interface, Failure> {
    let loaded = switchboard_codegen::load_file(path).map_err(|e| Failure::Usage(e.to_string()))?;
    let parsed = loaded.parsed;
    match parsed.interface {
        Some(iface) if !parsed.has_errors() => Ok(iface),
        _ => Err(Failure::Usage(format!("`{}` has errors:\n{}", path.display(), parsed.render()))),
    }
}

/// Parses a description JSON into the model.
pub(crate) fn parse_description(json: &str) -> Result<Interface, Failure> {
    if json.trim().is_empty() {
        return Err(Failure::Transport(
            "the server has no interface description; pass --interface FILE".to_owned(),
        ));
    }
    serde_json::from_str(json).map_err(|e| {
        Failure::Transport(format!("the server's interface description is unreadable: {e}"))
    })
}

/// A connection to one service, with its interface.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) client: ClientCore,
    pub(crate) iface: Interface,
}

async fn connect_with(
    endpoint: &Endpoint,
    descriptor: &InterfaceDescriptor,
    options: ClientOptions,
    limit: Duration,
) -> Result<ClientCore, Failure> {
    match tokio::time::timeout(limit, ClientCore::connect(endpoint, descriptor, options)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(error.into()),
        Err(_) => Err(Failure::Timeout(format!(
            "could not connect to {} within {limit:?}",
            descriptor.name
        ))),
    }
}

impl Session {
    /// Connects to `service`: describes it first unless `--interface` gave the interface.
    pub(crate) async fn open(conn: &ConnectArgs, service: &Service) -> Result<Session, Failure> {
        let endpoint = endpoint(conn, service.instance.as_deref())?;
        let mut options = ClientOptions::default();
        if let Some(timeout) = conn.timeout {
            options = options.call_timeout(timeout);
        }
        // The transport bounds each of its waits by `--timeout`: leave it room to say which
        // one failed.
        let limit = conn.timeout.unwrap_or(CONNECT_TIMEOUT) * SEQUENTIAL_WAITS + TRANSPORT_GRACE;
        let iface = match &conn.interface {
            Some(path) => {
                let iface = load_interface(path)?;
                if iface.name != service.interface {
                    return Err(Failure::Usage(format!(
                        "`{}` describes {}, not {}",
                        path.display(),
                        iface.name,
                        service.interface
                    )));
                }
                iface
            }
            None => {
                let bare = InterfaceDescriptor::named(service.interface.as_str());
                let probe = connect_with(&endpoint, &bare, options.clone(), limit).await?;
                let description = probe.describe().await.map_err(Failure::from);
                probe.close();
                parse_description(&description?)?
            }
        };
        let descriptor = descriptor(&iface, String::new());
        let client = connect_with(&endpoint, &descriptor, options, limit).await?;
        Ok(Session { client, iface })
    }

    pub(crate) fn types(&self) -> Types<'_> {
        Types { iface: &self.iface }
    }
}

/// The output format in effect, and whether to colour.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) format: OutputFormat,
    pub(crate) colour: bool,
}

impl Output {
    pub(crate) fn new(conn: &ConnectArgs) -> Self {
        let stdout = std::io::stdout();
        let format = conn.format.unwrap_or(if stdout.is_terminal() {
            OutputFormat::Text
        } else {
            OutputFormat::Json
        });
        // The policy clap's own help follows: colour on a terminal that supports it, never with
        // a non-empty NO_COLOR (no-color.org) or CLICOLOR=0, always with CLICOLOR_FORCE.
        let colour = format == OutputFormat::Text
            && anstream::AutoStream::choice(&stdout) != anstream::ColorChoice::Never;
        Output { format, colour }
    }

    pub(crate) fn json(self) -> bool {
        self.format == OutputFormat::Json
    }

    /// The same output with no colour, for values inlined into a line of their own.
    pub(crate) fn plain(self) -> Self {
        Output { colour: false, ..self }
    }

    /// A heading, bold when colouring.
    pub(crate) fn bold(self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    /// A field's name, cyan when colouring.
    pub(crate) fn field_name(self, text: &str) -> String {
        self.paint(AnsiColor::Cyan.on_default(), text)
    }

    fn paint(self, style: Style, text: &str) -> String {
        if self.colour { format!("{style}{text}{style:#}") } else { text.to_owned() }
    }
}
