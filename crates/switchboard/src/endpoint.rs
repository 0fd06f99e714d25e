//! Where a service lives: a transport chosen from a URL, plus the service instance id.

use std::{
    fmt,
    str::FromStr,
    sync::{Arc, LazyLock},
};

use switchboard_core::transport::{
    Binder, BoxFuture, ClientInbox, ClientTransport, Connector, DEFAULT_INSTANCE, ServerInbox,
    ServerTransport, ServiceAddress, ServiceTarget, TransportAddress,
};
use switchboard_core::{TransportError, TransportErrorKind};

/// The environment variable that names the default endpoint URL.
pub const URL_ENV: &str = "SWITCHBOARD_URL";

/// Where to serve or reach a service: a transport address and an instance id.
///
/// | URL | meaning |
/// |---|---|
/// | `unix:` | the default socket for the interface and instance (see [`crate::transport::unix::default_socket_dir`]) |
/// | `unix:///run/thermostat.sock`, `unix:/run/thermostat.sock` | that socket file |
/// | `mqtt://[user:pass@]host[:1883]` | an MQTT v5 broker over TCP (feature `mqtt`) |
/// | `mqtts://[user:pass@]host[:8883]` | an MQTT v5 broker over TLS, certificates verified against the system roots or `?ca=PATH` |
/// | `mqtt+unix:///run/mosquitto.sock` | an MQTT v5 broker on a Unix socket |
/// | `nats://[user:pass@ or token@]host[:4222]` | a NATS server (feature `nats`) |
/// | `nats+tls://…[:4222]` | a NATS server over TLS, certificates verified against the system roots or `?ca=PATH` |
///
/// A `?instance=NAME` query selects the service instance; the default is `default`. MQTT URLs
/// also take `client_id=ID`, `ca=PATH` (mqtts) and topic params such as `prefix=home1`; a client
/// may use `instance=*` for the first instance it discovers. NATS URLs also take `heartbeat`,
/// `connect_timeout` and `max_body` (`docs/wire/brokers.md`).
///
/// [`Endpoint::from_address`] makes an endpoint on any other transport's address.
#[derive(Debug, Clone)]
pub struct Endpoint {
    transport: Transport,
    instance: String,
}

#[derive(Debug, Clone)]
#[non_exhaustive]
enum Transport {
    #[cfg(feature = "unix")]
    Unix(switchboard_transport_unix::UnixEndpoint),
    #[cfg(feature = "mqtt")]
    Mqtt(switchboard_transport_mqtt::MqttEndpoint),
    /// A transport known here only by its address: a broker on the brokered layer, or one a
    /// test brings.
    Address(Arc<dyn TransportAddress>),
}

/// Why a URL is not a usable endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointParseError {
    /// The URL has no `scheme:` prefix.
    #[error(
        "`{0}` is not an endpoint URL; expected something like `unix:` or `unix:///run/app.sock`"
    )]
    MissingScheme(String),
    /// The scheme names a transport this build does not include.
    #[error("unsupported transport `{scheme}` in `{url}`; this build supports: {supported}")]
    UnsupportedScheme {
        /// The scheme as written.
        scheme: String,
        /// The whole URL.
        url: String,
        /// The schemes this build supports.
        supported: &'static str,
    },
    /// A query parameter is unknown or malformed.
    #[error("invalid query `{0}`; the only parameter is `instance=NAME`")]
    InvalidQuery(String),
    /// The instance id is not a valid name.
    #[error("invalid instance id `{0}`: use letters, digits, `-`, `_`, `.` or `:`")]
    InvalidInstance(String),
    /// The URL is malformed for its transport.
    #[error("{0}")]
    Invalid(String),
}

/// The URL schemes of this build's transports.
const SCHEMES: &[&[&str]] = &[
    #[cfg(feature = "unix")]
    &["unix"],
    #[cfg(feature = "mqtt")]
    switchboard_transport_mqtt::SCHEMES,
    #[cfg(feature = "nats")]
    switchboard_transport_nats::SCHEMES,
];

static SUPPORTED: LazyLock<String> = LazyLock::new(|| SCHEMES.concat().join(", "));

impl Endpoint {
    /// Parses an endpoint URL.
    pub fn parse(url: &str) -> Result<Self, EndpointParseError> {
        let (scheme, rest) =
            url.split_once(':').ok_or_else(|| EndpointParseError::MissingScheme(url.to_owned()))?;
        #[cfg(feature = "mqtt")]
        if switchboard_transport_mqtt::SCHEMES.contains(&scheme) {
            let parsed = switchboard_transport_mqtt::MqttEndpoint::parse(url)
                .map_err(|e| EndpointParseError::Invalid(e.to_string()))?;
            let endpoint = Endpoint {
                transport: Transport::Mqtt(parsed.endpoint),
                instance: DEFAULT_INSTANCE.to_owned(),
            };
            return match parsed.instance {
                Some(instance) => endpoint.with_instance(instance),
                None => Ok(endpoint),
            };
        }
        #[cfg(feature = "nats")]
        if switchboard_transport_nats::SCHEMES.contains(&scheme) {
            let parsed = switchboard_transport_nats::parse(url)
                .map_err(|e| EndpointParseError::Invalid(e.to_string()))?;
            let instance = parsed.instance.unwrap_or_else(|| DEFAULT_INSTANCE.to_owned());
            return Self::from_address(Arc::new(parsed.address), instance);
        }
        #[cfg(feature = "unix")]
        if scheme == "unix" {
            return Self::parse_unix(rest);
        }
        let _ = rest;
        Err(EndpointParseError::UnsupportedScheme {
            scheme: scheme.to_owned(),
            url: url.to_owned(),
            supported: SUPPORTED.as_str(),
        })
    }

    #[cfg(feature = "unix")]
    fn parse_unix(rest: &str) -> Result<Self, EndpointParseError> {
        let (location, query) = match rest.split_once('?') {
            Some((location, query)) => (location, Some(query)),
            None => (rest, None),
        };
        let instance = match query {
            None => DEFAULT_INSTANCE.to_owned(),
            Some(query) => match query.split_once('=') {
                Some(("instance", value)) => value.to_owned(),
                _ => return Err(EndpointParseError::InvalidQuery(query.to_owned())),
            },
        };
        let path = location.strip_prefix("//").unwrap_or(location);
        let transport = Transport::Unix(if path.is_empty() {
            switchboard_transport_unix::UnixEndpoint::default_path()
        } else {
            switchboard_transport_unix::UnixEndpoint::at(path)
        });
        Endpoint { transport, instance: DEFAULT_INSTANCE.to_owned() }.with_instance(instance)
    }

    /// The endpoint named by `$SWITCHBOARD_URL`, or the default Unix socket when it is unset.
    pub fn from_env() -> Result<Self, EndpointParseError> {
        match std::env::var(URL_ENV) {
            Ok(url) if !url.is_empty() => Self::parse(&url),
            _ => Self::parse("unix:"),
        }
    }

    /// An endpoint on the Unix-socket transport with explicit options.
    #[cfg(feature = "unix")]
    pub fn unix(endpoint: switchboard_transport_unix::UnixEndpoint) -> Self {
        Endpoint { transport: Transport::Unix(endpoint), instance: DEFAULT_INSTANCE.to_owned() }
    }

    /// An endpoint on the MQTT transport.
    #[cfg(feature = "mqtt")]
    pub fn mqtt(endpoint: switchboard_transport_mqtt::MqttEndpoint) -> Self {
        Endpoint { transport: Transport::Mqtt(endpoint), instance: DEFAULT_INSTANCE.to_owned() }
    }

    /// An endpoint for `instance` on any transport's address, such as a broker on the brokered
    /// layer that this build has no URL scheme for (the testkit's in-memory broker).
    pub fn from_address(
        address: Arc<dyn TransportAddress>,
        instance: impl Into<String>,
    ) -> Result<Self, EndpointParseError> {
        Endpoint { transport: Transport::Address(address), instance: DEFAULT_INSTANCE.to_owned() }
            .with_instance(instance)
    }

    /// Selects the service instance.
    ///
    /// On MQTT a client may use `*`: the first instance it discovers.
    pub fn with_instance(
        mut self,
        instance: impl Into<String>,
    ) -> Result<Self, EndpointParseError> {
        let instance = instance.into();
        #[cfg(feature = "mqtt")]
        if instance == switchboard_transport_mqtt::ANY_INSTANCE
            && matches!(self.transport, Transport::Mqtt(_))
        {
            self.instance = instance;
            return Ok(self);
        }
        let valid = !instance.is_empty()
            && instance.len() <= 128
            && instance
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
            && instance != "."
            && instance != "..";
        if !valid {
            return Err(EndpointParseError::InvalidInstance(instance));
        }
        self.instance = instance;
        Ok(self)
    }

    /// The service instance id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn connector(&self) -> &dyn Connector {
        match &self.transport {
            #[cfg(feature = "unix")]
            Transport::Unix(endpoint) => endpoint,
            #[cfg(feature = "mqtt")]
            Transport::Mqtt(endpoint) => endpoint,
            Transport::Address(address) => address.as_ref(),
        }
    }

    fn binder(&self) -> &dyn Binder {
        match &self.transport {
            #[cfg(feature = "unix")]
            Transport::Unix(endpoint) => endpoint,
            #[cfg(feature = "mqtt")]
            Transport::Mqtt(endpoint) => endpoint,
            Transport::Address(address) => address.as_ref(),
        }
    }
}

impl FromStr for Endpoint {
    type Err = EndpointParseError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(url)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.transport {
            #[cfg(feature = "unix")]
            Transport::Unix(_) => write!(f, "unix:?instance={}", self.instance),
            #[cfg(feature = "mqtt")]
            Transport::Mqtt(endpoint) => {
                // The password is never shown.
                let url = endpoint.url();
                let separator = if url.contains('?') { '&' } else { '?' };
                write!(f, "{url}{separator}instance={}", self.instance)
            }
            Transport::Address(address) => {
                let url = address.to_string();
                let separator = if url.contains('?') { '&' } else { '?' };
                write!(f, "{url}{separator}instance={}", self.instance)
            }
        }
    }
}

impl Connector for Endpoint {
    fn connect(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ClientInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ClientTransport>, TransportError>> {
        self.connector().connect(target, inbox)
    }
}

impl Binder for Endpoint {
    fn bind(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ServerInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ServerTransport>, TransportError>> {
        self.binder().bind(target, inbox)
    }
}

impl ServiceAddress for Endpoint {
    fn instance(&self) -> &str {
        &self.instance
    }
}

/// Turns a URL parse failure into the transport error a `connect` would report.
impl From<EndpointParseError> for TransportError {
    fn from(error: EndpointParseError) -> Self {
        TransportError::new(TransportErrorKind::InvalidAddress, error.to_string())
    }
}
