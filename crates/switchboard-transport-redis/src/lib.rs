//! Redis transport for switchboard: a [`switchboard_broker::Bus`] adapter for the brokered
//! layer, on redis-rs.
//!
//! Everything above the bus (names, envelopes, correlation, presence, discovery,
//! re-subscription) is `switchboard-broker`'s. This crate maps the bus onto Redis the way
//! commlib-py uses it:
//!
//! - metadata travels in commlib-py's JSON body (`{"header":{…},"data":…}`);
//! - a publish is `PUBLISH`, a subscription is `PSUBSCRIBE` (the layer's `*` and `>` become
//!   Redis globs, and what arrives is checked against the layer's filter again, since a Redis
//!   `*` also matches dots);
//! - a work queue is a list: `RPUSH` to send, `BLPOP` on a connection of its own to consume;
//! - a supervisor of this crate's own pings the server, reports the link going down as soon
//!   as any of its connections breaks, and reconnects waiting as the core's
//!   [`switchboard_core::backoff::Backoff`] says; subscriptions go with the link and the layer
//!   makes them anew once it is back.
//!
//! URLs: `redis://[user:password@ or :password@]host[:6379]`, or `rediss://…` for TLS (rustls,
//! the server's certificate verified against the system's roots, or only against `?ca=PATH`),
//! plus the layer's `instance`, `heartbeat`, `connect_timeout` and `max_body` parameters.
//!
//! ```
//! let parsed = switchboard_transport_redis::parse("redis://127.0.0.1?instance=kitchen")?;
//! assert_eq!(parsed.instance.as_deref(), Some("kitchen"));
//! assert_eq!(parsed.address.to_string(), "redis://127.0.0.1:6379");
//! # Ok::<(), switchboard_broker::BrokerUrlError>(())
//! ```

use std::{fmt, path::PathBuf, sync::Arc};

use switchboard_broker::{
    BrokerAddress, BrokerOptions, BrokerUrl, BrokerUrlError, Bus, BusConnector, with_query,
};
use switchboard_core::{TransportError, transport::BoxFuture};

mod bus;

/// The URL schemes this transport handles.
pub const SCHEMES: &[&str] = &["redis", "rediss"];

/// The port when a URL names none.
pub const DEFAULT_PORT: u16 = 6379;

/// A parsed Redis URL: where to serve and connect, and the `instance` parameter if given.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ParsedUrl {
    /// The broker address, with the layer's options from the URL.
    pub address: BrokerAddress,
    /// The `?instance=` value.
    pub instance: Option<String>,
}

/// Parses `redis://[user:password@]host[:6379]` or `rediss://…` (TLS), with the query
/// parameters `instance`, `heartbeat`, `connect_timeout`, `max_body` and (TLS only) `ca`.
pub fn parse(url: &str) -> Result<ParsedUrl, BrokerUrlError> {
    let parsed = BrokerUrl::parse("Redis", url, SCHEMES, DEFAULT_PORT)?;
    let err = |reason: String| BrokerUrlError::new("Redis", url, reason);
    let tls = parsed.scheme == "rediss";
    let ca = parsed.tls_ca(tls, "rediss").map_err(err)?;
    let options = parsed.options.clone();
    let connector = RedisConnector { tls, ca, url: parsed.clone() };
    let address = BrokerAddress::new(Arc::new(connector)).with_options(options);
    Ok(ParsedUrl { address, instance: parsed.instance })
}

/// This transport's entry in the facade's registry.
pub const REGISTRATION: switchboard_core::registry::Registration =
    switchboard_core::registry::Registration {
        name: "Redis",
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

/// Opens connections to one Redis server.
#[derive(Clone)]
pub(crate) struct RedisConnector {
    url: BrokerUrl,
    /// `rediss://`: TLS, the server's certificate verified.
    tls: bool,
    /// The only CAs to trust (PEM), instead of the system's roots.
    ca: Option<PathBuf>,
}

impl RedisConnector {
    /// The URL redis-rs connects to, credentials included.
    fn server(&self) -> String {
        let host = &self.url.host;
        let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
        let credentials = match (&self.url.user, &self.url.password) {
            (Some(user), Some(password)) => {
                format!("{}:{}@", percent_encode(user), percent_encode(password))
            }
            (None, Some(password)) => format!(":{}@", percent_encode(password)),
            (Some(user), None) => format!("{}@", percent_encode(user)),
            (None, None) => String::new(),
        };
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://{credentials}{host}:{}/", self.url.port)
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

impl RedisConnector {
    /// The CA file to trust instead of the system's roots, if the URL named one.
    fn ca(&self) -> Option<&std::path::Path> {
        self.ca.as_deref()
    }
}

impl fmt::Display for RedisConnector {
    /// The URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query: Vec<(&str, String)> =
            self.ca.iter().map(|ca| ("ca", ca.to_string_lossy().into_owned())).collect();
        f.write_str(&with_query(self.url.location(true), &query))
    }
}

impl fmt::Debug for RedisConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnector").field("url", &self.to_string()).finish_non_exhaustive()
    }
}

impl BusConnector for RedisConnector {
    fn open<'a>(
        &'a self,
        name: &'a str,
        options: &'a BrokerOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Bus>, TransportError>> {
        Box::pin(async move {
            let bus = bus::RedisBus::connect(self, name, options).await?;
            Ok(Arc::new(bus) as Arc<dyn Bus>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_url_forms() {
        let p = parse("redis://127.0.0.1").unwrap();
        assert_eq!(p.address.to_string(), "redis://127.0.0.1:6379");
        assert_eq!(p.instance, None);
        let p = parse("redis://alice:s3cret@redis.example:6380?instance=k1&max_body=4096").unwrap();
        assert_eq!(p.address.to_string(), "redis://alice@redis.example:6380?max_body=4096");
        assert_eq!(p.instance.as_deref(), Some("k1"));
        assert!(!format!("{:?}", p.address).contains("s3cret"));
    }

    #[test]
    fn the_url_redis_rs_gets_escapes_credentials() {
        let parsed =
            BrokerUrl::parse("Redis", "redis://a:p%40ss@h", SCHEMES, DEFAULT_PORT).unwrap();
        let connector = RedisConnector { url: parsed, tls: false, ca: None };
        assert_eq!(connector.server(), "redis://a:p%40ss@h:6379/");
    }

    #[test]
    fn rediss_is_tls_with_an_optional_ca() {
        let p = parse("rediss://h?ca=/etc/ca.pem&instance=k").unwrap();
        assert_eq!(p.address.to_string(), "rediss://h:6379?ca=/etc/ca.pem");
        assert_eq!(p.instance.as_deref(), Some("k"));
        assert_eq!(parse("rediss://h").unwrap().address.to_string(), "rediss://h:6379");
    }

    #[test]
    fn refuses_bad_urls_clearly() {
        for (url, needle) in [
            ("redis://h?client_id=x", "unknown query parameter `client_id`"),
            ("redis://h?ca=/etc/ca.pem", "`ca` only applies to `rediss://`"),
            ("nats://h", "expected `redis://`"),
        ] {
            let error = parse(url).unwrap_err().to_string();
            assert!(error.contains(needle), "{url}: {error}");
        }
    }
}
