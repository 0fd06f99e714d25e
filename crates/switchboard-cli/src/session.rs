//! Connecting to a service with no generated code: a descriptor built at run time from the
//! server's own description (or from `--interface FILE`).

use std::{borrow::Cow, io::IsTerminal, time::Duration};

use switchboard::Endpoint;
use switchboard_core::{
    InterfaceDescriptor, MethodDescriptor, PropertyDescriptor,
    client::{ClientCore, ClientOptions},
};
use switchboard_idl::Interface;

use crate::{
    cli::{ConnectArgs, OutputFormat},
    exit::Failure,
    types::Types,
};

/// How long connecting may take when `--timeout` is not given.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
/// service's instance.
pub(crate) fn endpoint(conn: &ConnectArgs, instance: Option<&str>) -> Result<Endpoint, Failure> {
    let endpoint = match &conn.connect {
        Some(url) => Endpoint::parse(url),
        None => Endpoint::from_env(),
    }
    .map_err(|e| Failure::Usage(e.to_string()))?;
    match instance {
        Some(instance) => {
            endpoint.with_instance(instance).map_err(|e| Failure::Usage(e.to_string()))
        }
        None => Ok(endpoint),
    }
}

/// The URL in use, for messages.
pub(crate) fn url(conn: &ConnectArgs) -> String {
    conn.connect
        .clone()
        .or_else(|| std::env::var(switchboard::transport::URL_ENV).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unix:".to_owned())
}

/// The runtime descriptor of a model; an empty `hash` makes a dynamic client that accepts any.
pub(crate) fn descriptor(iface: &Interface, hash: String) -> InterfaceDescriptor {
    InterfaceDescriptor {
        name: Cow::Owned(iface.name.clone()),
        version: Cow::Owned(iface.version.clone()),
        title: Cow::Owned(iface.title.clone().unwrap_or_else(|| iface.name.clone())),
        hash: Cow::Owned(hash),
        description: Cow::Owned(iface.description_json()),
        methods: Cow::Owned(
            iface
                .methods
                .iter()
                .map(|m| MethodDescriptor {
                    name: Cow::Owned(m.name.clone()),
                    timeout: m
                        .timeout_secs
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .map(Duration::from_secs_f64),
                })
                .collect(),
        ),
        signals: Cow::Owned(iface.signals.iter().map(|s| Cow::Owned(s.name.clone())).collect()),
        properties: Cow::Owned(
            iface
                .properties
                .iter()
                .map(|p| PropertyDescriptor {
                    name: Cow::Owned(p.name.clone()),
                    read_only: p.read_only,
                })
                .collect(),
        ),
        topic_params: Cow::Owned(
            iface.configuration.topic_params.iter().map(|p| Cow::Owned(p.clone())).collect(),
        ),
        topic_templates: Cow::Owned(
            iface
                .configuration
                .topics
                .iter()
                .map(|(k, v)| (Cow::Owned(k.clone()), Cow::Owned(v.clone())))
                .collect(),
        ),
    }
}

/// A descriptor that knows only the interface's name: enough to connect and describe.
pub(crate) fn bare_descriptor(name: &str) -> InterfaceDescriptor {
    InterfaceDescriptor {
        name: Cow::Owned(name.to_owned()),
        version: Cow::Borrowed(""),
        title: Cow::Owned(name.to_owned()),
        hash: Cow::Borrowed(""),
        description: Cow::Borrowed(""),
        methods: Cow::Borrowed(&[]),
        signals: Cow::Borrowed(&[]),
        properties: Cow::Borrowed(&[]),
        topic_params: Cow::Borrowed(&[]),
        topic_templates: Cow::Borrowed(&[]),
    }
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
        let limit = conn.timeout.unwrap_or(CONNECT_TIMEOUT);
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
                let bare = bare_descriptor(&service.interface);
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
        let terminal = std::io::stdout().is_terminal();
        let format =
            conn.format.unwrap_or(if terminal { OutputFormat::Text } else { OutputFormat::Json });
        let colour =
            terminal && format == OutputFormat::Text && std::env::var_os("NO_COLOR").is_none();
        Output { format, colour }
    }

    pub(crate) fn json(self) -> bool {
        self.format == OutputFormat::Json
    }

    /// A heading, bold when colouring.
    pub(crate) fn bold(self, text: &str) -> String {
        if self.colour { format!("\x1b[1m{text}\x1b[0m") } else { text.to_owned() }
    }
}
