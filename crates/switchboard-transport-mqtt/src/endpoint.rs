//! MQTT endpoints: broker address, credentials, client id and topic params, parsed from URLs.

use std::{collections::BTreeMap, fmt, path::PathBuf, sync::Arc, time::Duration};

use rumqttc::v5::MqttOptions as RawOptions;
use switchboard_broker::Replicas;
use switchboard_core::TransportError;

use crate::topics::{valid_level, valid_param_name};

/// Where the broker is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Broker {
    /// Plain TCP (`mqtt://host:1883`).
    Tcp {
        /// Host name or IP address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// TLS through rustls, with certificate verification (`mqtts://host:8883`).
    Tls {
        /// Host name (checked against the certificate) or IP address.
        host: String,
        /// TCP port.
        port: u16,
        /// A PEM file of CA certificates to trust instead of the system roots.
        ca: Option<PathBuf>,
    },
    /// A broker listening on a Unix socket (`mqtt+unix:///run/mosquitto.sock`).
    Unix(PathBuf),
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broker::Tcp { host, port } => write!(f, "mqtt://{}:{port}", bracket(host)),
            Broker::Tls { host, port, .. } => write!(f, "mqtts://{}:{port}", bracket(host)),
            Broker::Unix(path) => write!(f, "mqtt+unix://{}", path.display()),
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_owned() }
}

/// The default [`MqttOptions::max_inflight`].
pub const DEFAULT_MAX_INFLIGHT: u16 = 1024;

/// Tunables of an MQTT connection. The defaults suit a broker on the same machine or LAN.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MqttOptions {
    /// How long to wait for the broker's CONNACK on the first connect. Default 5 s.
    pub connect_timeout: Duration,
    /// How long a client waits for the service's retained interface info, and for a retained
    /// property value. Default 5 s.
    pub discovery_timeout: Duration,
    /// MQTT keepalive. Default 30 s.
    pub keep_alive: Duration,
    /// First reconnect delay; it doubles up to [`max_backoff`](Self::max_backoff). Default 50 ms.
    pub min_backoff: Duration,
    /// Longest reconnect delay. Default 2 s.
    pub max_backoff: Duration,
    /// How often a server republishes its interface info (StingerIPC: 120 s). The message expiry
    /// is 1.2 × this (144 s).
    pub advert_interval: Duration,
    /// The largest packet accepted from or sent to the broker. Default 16 MiB.
    pub max_packet_size: u32,
    /// The QoS of method and property-update requests and their replies: 0 (default) or 1.
    ///
    /// QoS 1 makes the broker answer each request with a PUBACK just before it forwards the
    /// reply; with Nagle on at the broker (mosquitto's default) and delayed ACKs here, the reply
    /// then waits ~40 ms for that PUBACK's ACK. QoS 0 avoids the stall. Nothing is lost that QoS 1
    /// would save: a request or reply can only go missing with the connection, and then the call
    /// fails with a transport error anyway. Signals, values, discovery and presence stay QoS 1.
    pub rpc_qos: u8,
    /// The most QoS 1 messages this connection keeps unacknowledged at once. Default 1024.
    ///
    /// The broker's Receive Maximum lowers it further (mosquitto's default is 20). The MQTT
    /// client sets aside room for this many messages up front, about 200 bytes each: the
    /// protocol's own maximum, 65535, would cost every connection some 14 MB.
    pub max_inflight: u16,
    /// How long a server waits for a broker it cannot reach when it starts. Default `None`: as
    /// long as it takes, since a daemon may start before its broker.
    ///
    /// While it waits, `serve` retries with backoff ([`min_backoff`](Self::min_backoff) doubling
    /// to [`max_backoff`](Self::max_backoff)) and logs why at warn level, then again every 30 s.
    /// `Some(Duration::ZERO)` fails at once, as a tool wants. Only errors that may pass by
    /// themselves are waited out (refused or absent, timed out, broker busy); refused
    /// credentials and certificates fail at once. Clients never wait: `connect` fails at once.
    pub wait_for_broker: Option<Duration>,
}

impl Default for MqttOptions {
    fn default() -> Self {
        MqttOptions {
            connect_timeout: Duration::from_secs(5),
            discovery_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(30),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            advert_interval: Duration::from_secs(120),
            max_packet_size: 16 * 1024 * 1024,
            rpc_qos: switchboard_wire::mqtt::RPC_QOS,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            wait_for_broker: None,
        }
    }
}

/// An MQTT v5 broker plus everything a connection to it needs, except the service instance.
///
/// Each server or client opened on it makes its own broker connection.
#[derive(Debug, Clone)]
pub struct MqttEndpoint {
    pub(crate) broker: Broker,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) client_id: Option<String>,
    pub(crate) params: BTreeMap<String, String>,
    pub(crate) options: MqttOptions,
    /// Whether a server is one of several serving its instance (`?replicas=shared`).
    pub(crate) replicas: Replicas,
}

/// Why an MQTT URL is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MQTT URL `{url}`: {reason}")]
pub struct MqttUrlError {
    url: String,
    reason: String,
}

impl MqttUrlError {
    fn new(url: &str, reason: impl Into<String>) -> Self {
        MqttUrlError { url: url.to_owned(), reason: reason.into() }
    }

    /// What is wrong, without the URL.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A parsed MQTT URL: the endpoint, and the `instance` query parameter if given.
#[derive(Debug, Clone)]
pub struct ParsedUrl {
    /// The endpoint.
    pub endpoint: MqttEndpoint,
    /// The `?instance=` value, undecoded checks left to the caller.
    pub instance: Option<String>,
}

/// The URL schemes this transport handles.
pub const SCHEMES: &[&str] = &["mqtt", "mqtts", "mqtt+unix"];

impl MqttEndpoint {
    /// An endpoint for `broker` with a random client id per connection and no topic params.
    pub fn new(broker: Broker) -> Self {
        MqttEndpoint {
            broker,
            credentials: None,
            client_id: None,
            params: BTreeMap::new(),
            options: MqttOptions::default(),
            replicas: Replicas::Single,
        }
    }

    /// Parses `mqtt://[user:pass@]host[:1883]`, `mqtts://…[:8883]` or `mqtt+unix:///path`, with
    /// query parameters `instance`, `client_id`, `ca` (mqtts only), `replicas` (`single` or
    /// `shared`) and topic params.
    pub fn parse(url: &str) -> Result<ParsedUrl, MqttUrlError> {
        let err = |reason: String| MqttUrlError::new(url, reason);
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| err("expected `mqtt://`, `mqtts://` or `mqtt+unix://`".into()))?;
        let (location, query) = match rest.split_once('?') {
            Some((location, query)) => (location, Some(query)),
            None => (rest, None),
        };
        if location.contains('#') {
            return Err(err("fragments (`#…`) are not allowed".into()));
        }
        let mut instance = None;
        let mut replicas = None;
        let mut client_id = None;
        let mut ca = None;
        let mut params = BTreeMap::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| err(format!("query `{pair}` has no `=VALUE`")))?;
            let value =
                percent_decode(value).ok_or_else(|| err(format!("bad %-escape in `{pair}`")))?;
            let duplicate = match key {
                "instance" => instance.replace(value).is_some(),
                "replicas" => replicas.replace(Replicas::parse(&value).map_err(err)?).is_some(),
                "client_id" => {
                    if !valid_level(&value) || value.len() > 256 {
                        return Err(err(format!(
                            "client id `{value}` must be non-empty and free of `/`, `+`, `#`"
                        )));
                    }
                    client_id.replace(value).is_some()
                }
                "ca" => ca.replace(PathBuf::from(value)).is_some(),
                name if valid_param_name(name) => {
                    if !valid_level(&value) {
                        return Err(err(format!(
                            "topic param `{name}` must be non-empty and free of `/`, `+`, `#`"
                        )));
                    }
                    params.insert(name.to_owned(), value).is_some()
                }
                other => {
                    let hint = if switchboard_wire::mqtt::is_reserved(other) {
                        format!("`{other}` is filled in by the transport and cannot be set")
                    } else {
                        format!(
                            "unknown query parameter `{other}`; expected `instance`, `client_id`, `ca`, `replicas` or a topic param name (letters and digits, `_`-separated)"
                        )
                    };
                    return Err(err(hint));
                }
            };
            if duplicate {
                return Err(err(format!("query parameter `{key}` is given twice")));
            }
        }
        let (userinfo, hostport) = match location.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, location),
        };
        let credentials = match userinfo {
            None => None,
            Some(userinfo) => {
                let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user =
                    percent_decode(user).ok_or_else(|| err("bad %-escape in user".into()))?;
                let pass =
                    percent_decode(pass).ok_or_else(|| err("bad %-escape in password".into()))?;
                Some((user, pass))
            }
        };
        let broker = match scheme {
            "mqtt" | "mqtts" => {
                let hostport = hostport.strip_suffix('/').unwrap_or(hostport);
                if hostport.contains('/') {
                    return Err(err("an MQTT URL has no path; put options in the query".into()));
                }
                let default_port = if scheme == "mqtt" { 1883 } else { 8883 };
                let (host, port) = split_host_port(hostport, default_port).map_err(err)?;
                if scheme == "mqtt" {
                    if ca.is_some() {
                        return Err(err("`ca` only applies to `mqtts://`".into()));
                    }
                    Broker::Tcp { host, port }
                } else {
                    Broker::Tls { host, port, ca }
                }
            }
            "mqtt+unix" => {
                if userinfo.is_some() && hostport.is_empty() {
                    return Err(err(
                        "put credentials before an empty host: `mqtt+unix://user:pass@/path`"
                            .into(),
                    ));
                }
                if !hostport.starts_with('/') || hostport.len() < 2 {
                    return Err(err(
                        "expected an absolute socket path: `mqtt+unix:///run/mosquitto.sock`"
                            .into(),
                    ));
                }
                if ca.is_some() {
                    return Err(err("`ca` only applies to `mqtts://`".into()));
                }
                let path =
                    percent_decode(hostport).ok_or_else(|| err("bad %-escape in path".into()))?;
                Broker::Unix(PathBuf::from(path))
            }
            other => return Err(err(format!("unknown scheme `{other}`"))),
        };
        let endpoint = MqttEndpoint {
            broker,
            credentials,
            client_id,
            params,
            options: MqttOptions::default(),
            replicas: replicas.unwrap_or_default(),
        };
        Ok(ParsedUrl { endpoint, instance })
    }

    /// Sets the username and password.
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Uses this exact MQTT client id. It must be unique per connection on the broker.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Makes servers on this endpoint replicas of their instance ([`Replicas::Shared`]): method
    /// calls, commands and action requests go to one of them through MQTT v5 shared
    /// subscriptions (`$share/switchboard/…`), as `docs/scaling.md` says.
    pub fn with_replicas(mut self, replicas: Replicas) -> Self {
        self.replicas = replicas;
        self
    }

    /// Sets a topic param value (such as `prefix`).
    pub fn with_topic_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Replaces the connection tunables.
    pub fn with_options(mut self, options: MqttOptions) -> Self {
        self.options = options;
        self
    }

    /// The broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The explicit client id, if one was set.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The topic param values.
    pub fn topic_params(&self) -> &BTreeMap<String, String> {
        &self.params
    }

    /// The connection tunables.
    pub fn options(&self) -> &MqttOptions {
        &self.options
    }

    /// The URL of this endpoint, without the password and without `instance`.
    pub fn url(&self) -> String {
        let mut url = self.broker.to_string();
        if let Some((user, _)) = &self.credentials {
            let (scheme, rest) = url.split_once("://").unwrap_or(("mqtt", ""));
            // A `:` in the user name would read back as the start of a password.
            url = format!("{scheme}://{}@{rest}", percent_encode(user).replace(':', "%3A"));
        }
        let mut query = Vec::new();
        if let Some(id) = &self.client_id {
            query.push(format!("client_id={}", percent_encode(id)));
        }
        if let Broker::Tls { ca: Some(ca), .. } = &self.broker {
            query.push(format!("ca={}", percent_encode(&ca.to_string_lossy())));
        }
        for (k, v) in &self.params {
            query.push(format!("{k}={}", percent_encode(v)));
        }
        if self.replicas != Replicas::Single {
            query.push(format!("replicas={}", self.replicas.as_str()));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }

    /// Builds rumqttc's options for one connection.
    pub(crate) fn raw_options(&self, client_id: &str) -> Result<RawOptions, TransportError> {
        let mut options = match &self.broker {
            Broker::Tcp { host, port } | Broker::Tls { host, port, .. } => {
                RawOptions::new(client_id, host.clone(), *port)
            }
            Broker::Unix(path) => {
                let mut options = RawOptions::new(client_id, path.to_string_lossy(), 0);
                options.set_transport(rumqttc::Transport::unix());
                options
            }
        };
        if let Broker::Tls { ca, .. } = &self.broker {
            let config = switchboard_core::tls::client_config(ca.as_deref())?;
            options.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(Arc::new(config)),
            ));
        }
        options.set_clean_start(true);
        options.set_keep_alive(self.options.keep_alive.max(Duration::from_secs(1)));
        options.set_connection_timeout(self.options.connect_timeout.as_secs().max(1));
        options.set_max_packet_size(Some(self.options.max_packet_size));
        options.set_outgoing_inflight_upper_limit(self.options.max_inflight.max(1));
        if let Some((user, pass)) = &self.credentials {
            options.set_credentials(user.clone(), pass.clone());
        }
        // Nagle on our side would hold a small PUBLISH until the previous one is acknowledged;
        // with the broker's delayed ACKs that is a 40 ms stall per call.
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        network.set_connection_timeout(self.options.connect_timeout.as_secs().max(1));
        options.set_network_options(network);
        Ok(options)
    }
}

fn split_host_port(hostport: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed `[` in IPv6 host")?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or("expected `:PORT` after `]`")?)),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("the URL names no broker host".into());
    }
    let port = match port {
        None => default_port,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{port}` is not a TCP port"))?,
    };
    Ok((host.to_owned(), port))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_url_forms() {
        let p = MqttEndpoint::parse("mqtt://127.0.0.1").unwrap();
        assert_eq!(p.endpoint.broker, Broker::Tcp { host: "127.0.0.1".into(), port: 1883 });
        assert_eq!(p.instance, None);
        let p = MqttEndpoint::parse("mqtts://u%40x:p%3Aw@broker.example:9000?ca=/etc/ca.pem&instance=a1&prefix=home1&client_id=me").unwrap();
        assert_eq!(
            p.endpoint.broker,
            Broker::Tls {
                host: "broker.example".into(),
                port: 9000,
                ca: Some("/etc/ca.pem".into())
            }
        );
        assert_eq!(p.endpoint.credentials, Some(("u@x".into(), "p:w".into())));
        assert_eq!(p.instance.as_deref(), Some("a1"));
        assert_eq!(p.endpoint.client_id.as_deref(), Some("me"));
        assert_eq!(p.endpoint.params["prefix"], "home1");
        assert_eq!(
            p.endpoint.url(),
            "mqtts://u%40x@broker.example:9000?client_id=me&ca=/etc/ca.pem&prefix=home1"
        );
        let p = MqttEndpoint::parse("mqtts://[::1]").unwrap();
        assert_eq!(p.endpoint.broker, Broker::Tls { host: "::1".into(), port: 8883, ca: None });
        let p = MqttEndpoint::parse("mqtt+unix:///run/m.sock?instance=*").unwrap();
        assert_eq!(p.endpoint.broker, Broker::Unix("/run/m.sock".into()));
        assert_eq!(p.instance.as_deref(), Some("*"));
    }

    #[test]
    fn bounds_the_in_flight_window() {
        let mut endpoint = MqttEndpoint::parse("mqtt://127.0.0.1").unwrap().endpoint;
        let raw = endpoint.raw_options("c").unwrap();
        assert_eq!(raw.get_outgoing_inflight_upper_limit(), Some(DEFAULT_MAX_INFLIGHT));
        endpoint.options.max_inflight = 0;
        let raw = endpoint.raw_options("c").unwrap();
        assert_eq!(raw.get_outgoing_inflight_upper_limit(), Some(1), "at least one in flight");
    }

    #[test]
    fn rejects_bad_urls_clearly() {
        for (url, needle) in [
            ("mqtt:/host", "expected"),
            ("mqtt://", "no broker host"),
            ("mqtt://h:99999", "not a TCP port"),
            ("mqtt://h/path", "no path"),
            ("mqtt://h?bogus-key=1", "unknown query parameter"),
            ("mqtt://h?client_id=a/b", "client id"),
            ("mqtt://h?client_id=", "client id"),
            ("mqtt://h?prefix=a+b", "topic param"),
            ("mqtt://h?service_id=x", "filled in by the transport"),
            ("mqtt://h?ca=/x", "only applies"),
            ("mqtt://h?instance=a&instance=b", "twice"),
            ("mqtt+unix://relative", "absolute socket path"),
            ("mqtt://h?instance", "no `=VALUE`"),
        ] {
            let error = MqttEndpoint::parse(url).unwrap_err().to_string();
            assert!(error.contains(needle), "{url}: {error}");
        }
    }
}
