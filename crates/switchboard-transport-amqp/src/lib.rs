//! AMQP 0-9-1 transport for switchboard: a [`switchboard_broker::Bus`] adapter for the brokered
//! layer, on lapin, for RabbitMQ.
//!
//! Everything above the bus (names, envelopes, correlation, presence, discovery,
//! re-subscription) is `switchboard-broker`'s. This crate maps the bus onto AMQP the way
//! commlib-py uses it:
//!
//! - metadata travels in commlib-py's JSON body (`{"header":{…},"data":…}`), and a request's
//!   reply address also in the AMQP `reply_to` property, so commlib-py's direct reply-to
//!   (`amq.rabbitmq.reply-to`) works;
//! - a publish goes to the topic exchange `amq.topic` with the topic as routing key; a
//!   subscription is a server-named exclusive queue bound there (the layer's `*` stays `*`,
//!   its `>` becomes `#`, and what arrives is checked against the layer's filter again, since
//!   a `#` also matches nothing);
//! - a work queue is a queue of that name on the default exchange, declared non-durable and
//!   auto-deleted by its consumers, consumed without acknowledgements;
//! - a supervisor of this crate's own watches the connection and reconnects, waiting as the
//!   core's [`switchboard_core::backoff::Backoff`] says; lapin's own recovery stays off. Every
//!   queue, binding and consumer goes with the link and the layer declares them anew once it
//!   is back.
//!
//! URLs: `amqp://[user:password@]host[:5672]` and `amqps://…[:5671]` (TLS through rustls with
//! verification on, against the system roots plus the CAs of a PEM file given as `?ca=PATH`),
//! on the virtual host `/`, plus the layer's `instance`, `heartbeat`, `connect_timeout` and
//! `max_body` parameters. Without credentials the connection logs in as RabbitMQ's `guest`.
//!
//! ```
//! let parsed = switchboard_transport_amqp::parse("amqp://guest:guest@127.0.0.1?instance=kitchen")?;
//! assert_eq!(parsed.instance.as_deref(), Some("kitchen"));
//! assert_eq!(parsed.address.to_string(), "amqp://guest@127.0.0.1:5672");
//! # Ok::<(), switchboard_broker::BrokerUrlError>(())
//! ```

use std::{fmt, path::PathBuf, sync::Arc, time::Duration};

use switchboard_broker::{
    BrokerAddress, BrokerOptions, BrokerUrl, BrokerUrlError, Bus, BusConnector, with_query,
};
use switchboard_core::{TransportError, transport::BoxFuture};

mod bus;

/// The URL schemes this transport handles.
pub const SCHEMES: &[&str] = &["amqp", "amqps"];

/// The port when an `amqp://` URL names none.
pub const DEFAULT_PORT: u16 = 5672;

/// The port when an `amqps://` URL names none.
pub const DEFAULT_TLS_PORT: u16 = 5671;

/// A parsed AMQP URL: where to serve and connect, and the `instance` parameter if given.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ParsedUrl {
    /// The broker address, with the layer's options from the URL.
    pub address: BrokerAddress,
    /// The `?instance=` value.
    pub instance: Option<String>,
}

/// Parses `amqp://[user:password@]host[:5672]` or `amqps://…[:5671]`, with the query
/// parameters `instance`, `heartbeat`, `connect_timeout`, `max_body` and (TLS only) `ca`.
pub fn parse(url: &str) -> Result<ParsedUrl, BrokerUrlError> {
    // Port 0 stands for "none given": the default depends on the scheme.
    let mut parsed = BrokerUrl::parse("AMQP", url, SCHEMES, 0)?;
    let err = |reason: String| BrokerUrlError::new("AMQP", url, reason);
    let tls = parsed.scheme == "amqps";
    if parsed.port == 0 {
        parsed.port = if tls { DEFAULT_TLS_PORT } else { DEFAULT_PORT };
    }
    let ca = parsed.tls_ca(tls, "amqps").map_err(err)?;
    let options = parsed.options.clone();
    let connector = AmqpConnector { tls, ca, url: parsed.clone() };
    let address = BrokerAddress::new(Arc::new(connector)).with_options(options);
    Ok(ParsedUrl { address, instance: parsed.instance })
}

/// This transport's entry in the facade's registry.
pub const REGISTRATION: switchboard_core::registry::Registration =
    switchboard_core::registry::Registration {
        name: "AMQP",
        schemes: SCHEMES,
        parse: parse_registered,
        wildcard_instance: None,
    };

fn parse_registered(url: &str) -> Result<switchboard_core::registry::ParsedUrl, String> {
    let parsed = parse(url).map_err(|e| e.to_string())?;
    Ok(switchboard_core::registry::ParsedUrl {
        address: Arc::new(parsed.address),
        instance: parsed.instance,
    })
}

/// Opens connections to one AMQP broker.
#[derive(Clone)]
pub(crate) struct AmqpConnector {
    url: BrokerUrl,
    tls: bool,
    /// A PEM file of CAs trusted besides the system roots.
    ca: Option<PathBuf>,
}

impl AmqpConnector {
    /// The URI lapin connects to, credentials included, on the virtual host `/`, giving up on
    /// the TCP connection after `connect_timeout`.
    fn server(&self, connect_timeout: Duration) -> String {
        let host = &self.url.host;
        let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
        let credentials = match (&self.url.user, &self.url.password) {
            (Some(user), Some(password)) => {
                format!("{}:{}@", percent_encode(user), percent_encode(password))
            }
            (None, Some(password)) => format!("guest:{}@", percent_encode(password)),
            (Some(user), None) => format!("{}:@", percent_encode(user)),
            (None, None) => String::new(),
        };
        let timeout = connect_timeout.as_millis().max(1);
        let scheme = if self.tls { "amqps" } else { "amqp" };
        format!("{scheme}://{credentials}{host}:{}/%2f?connection_timeout={timeout}", self.url.port)
    }

    /// The PEM text of the `ca` file, trusted besides the system roots, if one is given.
    fn trusted(&self) -> Result<Option<String>, TransportError> {
        let Some(path) = &self.ca else { return Ok(None) };
        std::fs::read_to_string(path).map(Some).map_err(|error| {
            TransportError::new(
                switchboard_core::TransportErrorKind::InvalidAddress,
                format!("cannot read the CA file {} of {self}: {error}", path.display()),
            )
        })
    }
}

/// Escapes everything but URL-unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl fmt::Display for AmqpConnector {
    /// The URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query: Vec<(&str, String)> =
            self.ca.iter().map(|ca| ("ca", ca.to_string_lossy().into_owned())).collect();
        f.write_str(&with_query(self.url.location(true), &query))
    }
}

impl fmt::Debug for AmqpConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpConnector").field("url", &self.to_string()).finish_non_exhaustive()
    }
}

impl BusConnector for AmqpConnector {
    fn open<'a>(
        &'a self,
        name: &'a str,
        options: &'a BrokerOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Bus>, TransportError>> {
        Box::pin(async move {
            let bus = bus::AmqpBus::connect(self, name, options).await?;
            Ok(Arc::new(bus) as Arc<dyn Bus>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_url_forms() {
        let p = parse("amqp://127.0.0.1").unwrap();
        assert_eq!(p.address.to_string(), "amqp://127.0.0.1:5672");
        assert_eq!(p.instance, None);
        let p = parse("amqp://alice:s3cret@rabbit.example:5673?instance=k1&max_body=4096").unwrap();
        assert_eq!(p.address.to_string(), "amqp://alice@rabbit.example:5673?max_body=4096");
        assert_eq!(p.instance.as_deref(), Some("k1"));
        assert!(!format!("{:?}", p.address).contains("s3cret"));
        let p = parse("amqps://h?ca=/etc/ca.pem&heartbeat=2s").unwrap();
        assert_eq!(p.address.to_string(), "amqps://h:5671?ca=/etc/ca.pem&heartbeat=2s");
        assert_eq!(parse("amqps://h:5999").unwrap().address.to_string(), "amqps://h:5999");
    }

    #[test]
    fn the_uri_lapin_gets_escapes_credentials() {
        let parsed = BrokerUrl::parse("AMQP", "amqp://a:p%40ss@h", SCHEMES, DEFAULT_PORT).unwrap();
        let connector = AmqpConnector { url: parsed, tls: false, ca: None };
        assert_eq!(
            connector.server(Duration::from_secs(1)),
            "amqp://a:p%40ss@h:5672/%2f?connection_timeout=1000"
        );
    }

    #[test]
    fn refuses_bad_urls_clearly() {
        for (url, needle) in [
            ("amqp://h?client_id=x", "unknown query parameter `client_id`"),
            ("amqp://h/vhost", "no path"),
            ("amqp://h?ca=/etc/ca.pem", "`ca` only applies to `amqps://`"),
            ("redis://h", "expected `amqp://`"),
        ] {
            let error = parse(url).unwrap_err().to_string();
            assert!(error.contains(needle), "{url}: {error}");
        }
    }
}
