//! Where a service lives: a transport chosen from a URL, plus the service instance id.

use std::{
    fmt,
    str::FromStr,
    sync::{Arc, LazyLock},
    time::Duration,
};

use switchboard_core::registry::Registration;
use switchboard_core::transport::{
    Binder, BoundedWaits, BoxFuture, ClientInbox, ClientTransport, Connector, DEFAULT_INSTANCE,
    Discoverer, ServerInbox, ServerTransport, ServiceAddress, ServiceInfo, ServiceTarget,
    TransportAddress,
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
/// | `redis://[user:pass@]host[:6379]` | a Redis server, on commlib-py's wire (feature `redis`) |
/// | `rediss://…[:6379]` | a Redis server over TLS, certificates verified against the system roots or `?ca=PATH` |
/// | `amqp://[user:pass@]host[:5672]` | an AMQP 0-9-1 broker (RabbitMQ), on commlib-py's wire (feature `amqp`) |
/// | `amqps://…[:5671]` | an AMQP broker over TLS, certificates verified against the system roots plus `?ca=PATH` |
///
/// A `?instance=NAME` query selects the service instance; the default is `default`. MQTT URLs
/// also take `client_id=ID`, `ca=PATH` (mqtts) and topic params such as `prefix=home1`; a client
/// may use `instance=*` for the first instance it discovers. NATS URLs also take `heartbeat`,
/// `connect_timeout` and `max_body` (`docs/wire/brokers.md`).
///
/// [`Endpoint::from_address`] makes an endpoint on any other transport's address.
#[derive(Clone)]
pub struct Endpoint {
    address: Arc<dyn TransportAddress>,
    /// An instance id the transport gives a meaning beyond a name (MQTT's `*`).
    wildcard_instance: Option<&'static str>,
    instance: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address.to_string())
            .field("instance", &self.instance)
            .finish()
    }
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
    /// The scheme names a transport whose cargo feature this build leaves out.
    #[error(
        "transport `{scheme}` in `{url}` is not in this build; enable the `{feature}` feature of `switchboard`"
    )]
    FeatureDisabled {
        /// The scheme as written.
        scheme: String,
        /// The whole URL.
        url: String,
        /// The `switchboard` cargo feature that adds the transport.
        feature: &'static str,
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

/// The transports compiled into this build: one line per feature-gated transport crate.
const REGISTRY: &[Registration] = &[
    #[cfg(feature = "unix")]
    switchboard_transport_unix::REGISTRATION,
    #[cfg(feature = "mqtt")]
    switchboard_transport_mqtt::REGISTRATION,
    #[cfg(feature = "nats")]
    switchboard_transport_nats::REGISTRATION,
    #[cfg(feature = "redis")]
    switchboard_transport_redis::REGISTRATION,
    #[cfg(feature = "amqp")]
    switchboard_transport_amqp::REGISTRATION,
];

/// The transports compiled out of this build, as (feature, schemes), so that a URL for one gets
/// "enable feature X" rather than "unknown scheme".
const LEFT_OUT: &[(&str, &[&str])] = &[
    #[cfg(not(feature = "unix"))]
    ("unix", &["unix"]),
    #[cfg(not(feature = "mqtt"))]
    ("mqtt", &["mqtt", "mqtts", "mqtt+unix"]),
    #[cfg(not(feature = "nats"))]
    ("nats", &["nats", "nats+tls"]),
    #[cfg(not(feature = "redis"))]
    ("redis", &["redis"]),
    #[cfg(not(feature = "amqp"))]
    ("amqp", &["amqp", "amqps"]),
];

static SUPPORTED: LazyLock<String> = LazyLock::new(|| {
    let schemes: Vec<&str> = REGISTRY.iter().flat_map(|r| r.schemes.iter().copied()).collect();
    if schemes.is_empty() { "none".to_owned() } else { schemes.join(", ") }
});

impl Endpoint {
    /// Parses an endpoint URL.
    pub fn parse(url: &str) -> Result<Self, EndpointParseError> {
        let (scheme, _) =
            url.split_once(':').ok_or_else(|| EndpointParseError::MissingScheme(url.to_owned()))?;
        if let Some(registration) = REGISTRY.iter().find(|r| r.serves(scheme)) {
            let parsed = (registration.parse)(url).map_err(EndpointParseError::Invalid)?;
            let endpoint = Endpoint {
                address: parsed.address,
                wildcard_instance: registration.wildcard_instance,
                instance: DEFAULT_INSTANCE.to_owned(),
            };
            return match parsed.instance {
                Some(instance) => endpoint.with_instance(instance),
                None => Ok(endpoint),
            };
        }
        if let Some((feature, _)) = LEFT_OUT.iter().find(|(_, schemes)| schemes.contains(&scheme)) {
            return Err(EndpointParseError::FeatureDisabled {
                scheme: scheme.to_owned(),
                url: url.to_owned(),
                feature,
            });
        }
        Err(EndpointParseError::UnsupportedScheme {
            scheme: scheme.to_owned(),
            url: url.to_owned(),
            supported: SUPPORTED.as_str(),
        })
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
        Self::on(Arc::new(endpoint), switchboard_transport_unix::REGISTRATION)
    }

    /// An endpoint on the MQTT transport.
    #[cfg(feature = "mqtt")]
    pub fn mqtt(endpoint: switchboard_transport_mqtt::MqttEndpoint) -> Self {
        Self::on(Arc::new(endpoint), switchboard_transport_mqtt::REGISTRATION)
    }

    /// An endpoint for `instance` on any transport's address, such as a broker on the brokered
    /// layer that this build has no URL scheme for (the testkit's in-memory broker).
    pub fn from_address(
        address: Arc<dyn TransportAddress>,
        instance: impl Into<String>,
    ) -> Result<Self, EndpointParseError> {
        Endpoint { address, wildcard_instance: None, instance: DEFAULT_INSTANCE.to_owned() }
            .with_instance(instance)
    }

    /// An endpoint for the default instance on a registered transport's address.
    #[cfg(any(feature = "unix", feature = "mqtt"))]
    fn on(address: Arc<dyn TransportAddress>, registration: Registration) -> Self {
        Endpoint {
            address,
            wildcard_instance: registration.wildcard_instance,
            instance: DEFAULT_INSTANCE.to_owned(),
        }
    }

    /// Selects the service instance.
    ///
    /// On MQTT a client may use `*`: the first instance it discovers.
    pub fn with_instance(
        mut self,
        instance: impl Into<String>,
    ) -> Result<Self, EndpointParseError> {
        let instance = instance.into();
        if self.wildcard_instance == Some(instance.as_str()) {
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

    /// The transport's address as a URL, without the instance: the whole of what a node or a
    /// bridge side (which serve no instance of an interface) is reached at.
    pub fn address_url(&self) -> String {
        self.address.to_string()
    }

    /// The same endpoint with each wait of connecting and discovering cut to at most `limit`,
    /// whatever the transport: reaching the server or broker, a handshake, waiting for a server
    /// to announce itself or to be discovered (see [`BoundedWaits`]). A tool with a
    /// `--timeout` uses it so that an unreachable server fails with the transport's own error
    /// within that time.
    pub fn with_waits_within(&self, limit: Duration) -> Endpoint {
        Endpoint { address: self.address.with_waits_within(limit), ..self.clone() }
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
        let url = self.address.to_string();
        let separator = if url.contains('?') { '&' } else { '?' };
        write!(f, "{url}{separator}instance={}", self.instance)
    }
}

impl Connector for Endpoint {
    fn connect(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ClientInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ClientTransport>, TransportError>> {
        self.address.connect(target, inbox)
    }
}

impl Binder for Endpoint {
    fn bind(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ServerInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ServerTransport>, TransportError>> {
        self.address.bind(target, inbox)
    }
}

/// Every service the transport's discovery finds where this endpoint points, whatever its
/// instance: the socket directory on Unix, the broker on the others.
impl Discoverer for Endpoint {
    fn discover(&self, wait: Duration) -> BoxFuture<'_, Result<Vec<ServiceInfo>, TransportError>> {
        self.address.discover(wait)
    }
}

impl BoundedWaits for Endpoint {
    fn with_waits_within(&self, limit: Duration) -> Arc<dyn TransportAddress> {
        Arc::new(Endpoint::with_waits_within(self, limit))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "unix")]
    #[test]
    fn a_unix_endpoint_displays_as_a_url_that_parses_back() {
        for url in [
            "unix:?instance=default",
            "unix:///run/thermostat.sock?instance=kitchen",
            "unix://relative/app.sock?instance=a.b",
        ] {
            let endpoint = Endpoint::parse(url).unwrap();
            assert_eq!(endpoint.to_string(), url);
            assert_eq!(Endpoint::parse(&endpoint.to_string()).unwrap().to_string(), url);
        }
        let short = Endpoint::parse("unix:/run/x.sock").unwrap();
        assert_eq!(short.to_string(), "unix:///run/x.sock?instance=default");
    }

    #[cfg(feature = "unix")]
    #[test]
    fn the_address_url_leaves_the_instance_out() {
        let endpoint = Endpoint::parse("unix:///run/x.sock?instance=kitchen").unwrap();
        assert_eq!(endpoint.address_url(), "unix:///run/x.sock");
        assert_eq!(
            Endpoint::parse("unix:/run/x.sock").unwrap().address_url(),
            "unix:///run/x.sock"
        );
    }

    #[cfg(feature = "unix")]
    #[test]
    fn a_unix_url_with_an_unknown_parameter_is_refused() {
        let error = Endpoint::parse("unix:///run/x.sock?colour=red").unwrap_err();
        assert!(error.to_string().contains("the only parameter is `instance=NAME`"), "{error}");
    }

    #[test]
    fn an_unknown_scheme_lists_the_schemes_of_this_build() {
        let error = Endpoint::parse("carrier-pigeon://loft").unwrap_err();
        let EndpointParseError::UnsupportedScheme { scheme, supported, .. } = &error else {
            panic!("expected UnsupportedScheme, got {error:?}");
        };
        assert_eq!(scheme, "carrier-pigeon");
        for registration in REGISTRY {
            for scheme in registration.schemes {
                assert!(supported.split(", ").any(|s| s == *scheme), "{scheme} in {supported}");
            }
        }
    }

    #[cfg(not(feature = "nats"))]
    #[test]
    fn a_transport_compiled_out_names_the_feature_to_enable() {
        let error = Endpoint::parse("nats+tls://h").unwrap_err();
        assert_eq!(
            error,
            EndpointParseError::FeatureDisabled {
                scheme: "nats+tls".into(),
                url: "nats+tls://h".into(),
                feature: "nats",
            }
        );
    }

    #[test]
    fn no_scheme_is_served_by_two_transports_or_both_registered_and_left_out() {
        let mut seen: Vec<&str> = LEFT_OUT.iter().flat_map(|(_, s)| s.iter().copied()).collect();
        for scheme in REGISTRY.iter().flat_map(|r| r.schemes.iter().copied()) {
            assert!(!seen.contains(&scheme), "`{scheme}` twice");
            seen.push(scheme);
        }
    }

    /// An instance id `with_instance` accepts.
    fn instance() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("[a-zA-Z0-9_:-][a-zA-Z0-9_.:-]{0,11}").unwrap()
    }

    /// Displays `url`'s endpoint, parses that back and checks that it displays the same and
    /// names the same instance. Secrets (passwords, tokens) are never displayed, so an endpoint
    /// with one reads back without it.
    fn assert_round_trip(url: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        let endpoint = Endpoint::parse(url)
            .map_err(|e| proptest::test_runner::TestCaseError::reject(e.to_string()))?;
        let shown = endpoint.to_string();
        let again = Endpoint::parse(&shown).map_err(|e| {
            proptest::test_runner::TestCaseError::fail(format!("`{shown}` from `{url}`: {e}"))
        })?;
        proptest::prop_assert_eq!(again.to_string(), shown.clone(), "from `{}`", url);
        proptest::prop_assert_eq!(again.instance(), endpoint.instance(), "`{}`", shown);
        Ok(())
    }

    #[cfg(feature = "unix")]
    proptest::proptest! {
        #[test]
        fn a_unix_endpoint_parses_back_from_its_display(
            path in "(/?[a-zA-Z0-9 _.%:@-]{1,8}(/[a-zA-Z0-9 _.%:@-]{1,8}){0,3})?",
            slashes in proptest::bool::ANY,
            instance in instance(),
        ) {
            let prefix = if slashes && !path.is_empty() { "unix://" } else { "unix:" };
            assert_round_trip(&format!("{prefix}{path}?instance={instance}"))?;
        }
    }

    #[cfg(feature = "mqtt")]
    proptest::proptest! {
        #[test]
        fn an_mqtt_endpoint_parses_back_from_its_display(
            scheme in proptest::sample::select(vec!["mqtt", "mqtts", "mqtt+unix"]),
            host in "[a-z][a-z0-9.-]{0,10}|\\[::1\\]",
            port in proptest::option::of(1u16..),
            user in proptest::option::of("[ -~]{1,8}"),
            password in "[a-zA-Z0-9]{0,6}",
            client_id in proptest::option::of("[a-zA-Z0-9_-]{1,8}"),
            prefix in proptest::option::of("[a-zA-Z0-9 _.-]{1,8}"),
            instance in instance(),
        ) {
            let percent = |text: &str| {
                text.bytes().map(|b| format!("%{b:02X}")).collect::<String>()
            };
            let userinfo = match &user {
                Some(user) if password.is_empty() => format!("{}@", percent(user)),
                Some(user) => format!("{}:{password}@", percent(user)),
                None => String::new(),
            };
            let location = match scheme {
                "mqtt+unix" => format!("{userinfo}/run/{}.sock", host.trim_matches(['[', ']'])),
                _ => match port {
                    Some(port) => format!("{userinfo}{host}:{port}"),
                    None => format!("{userinfo}{host}"),
                },
            };
            let mut query = vec![format!("instance={instance}")];
            if let Some(id) = &client_id { query.push(format!("client_id={id}")); }
            if let Some(prefix) = &prefix { query.push(format!("prefix={}", percent(prefix))); }
            assert_round_trip(&format!("{scheme}://{location}?{}", query.join("&")))?;
        }
    }

    #[cfg(feature = "nats")]
    proptest::proptest! {
        #[test]
        fn a_nats_endpoint_parses_back_from_its_display(
            tls in proptest::bool::ANY,
            host in "[a-z][a-z0-9.-]{0,10}",
            port in proptest::option::of(1u16..),
            user in proptest::option::of("[ -~]{1,8}"),
            password in "[a-zA-Z0-9]{0,6}",
            heartbeat_ms in proptest::option::of(1u32..100_000),
            instance in instance(),
        ) {
            let scheme = if tls { "nats+tls" } else { "nats" };
            let percent = |text: &str| {
                text.bytes().map(|b| format!("%{b:02X}")).collect::<String>()
            };
            // A user alone is a token, which the display leaves out; a user with a password
            // displays with `***` for the password.
            let userinfo = match &user {
                Some(user) if password.is_empty() => format!("{}@", percent(user)),
                Some(user) => format!("{}:{password}@", percent(user)),
                None => String::new(),
            };
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let mut query = vec![format!("instance={instance}")];
            if let Some(ms) = heartbeat_ms { query.push(format!("heartbeat={ms}ms")); }
            assert_round_trip(&format!("{scheme}://{userinfo}{host}{port}?{}", query.join("&")))?;
        }
    }
}
