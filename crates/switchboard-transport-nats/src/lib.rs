//! NATS transport for switchboard: a [`switchboard_broker::Bus`] adapter for the brokered
//! layer, on async-nats.
//!
//! Everything above the bus (subjects, envelopes, correlation, presence, discovery,
//! re-subscription) is `switchboard-broker`'s. This crate maps the bus onto NATS:
//!
//! - metadata travels in headers (`sb-…`) and the body is the payload unchanged;
//! - a request names a reply subject of its own under the client's inbox, and a request no
//!   server receives comes back at once as "no responders" ([`switchboard_broker::BusStatus`]),
//!   which the layer turns into a `NotFound` failure of that call instead of letting it wait
//!   for its deadline;
//! - work queues are subjects whose consumers share a queue group;
//! - async-nats reconnects by itself, waiting as the core's
//!   [`switchboard_core::backoff::Backoff`] says; this crate reports the link going down and
//!   coming back, and drops its subscriptions when it goes down, so that the layer subscribes
//!   anew once it is back.
//!
//! URLs: `nats://[user:password@ or token@]host[:4222]` and `nats+tls://…` (TLS through rustls
//! with verification on; `?ca=PATH` trusts a CA file instead of the system roots), plus the
//! layer's `instance`, `heartbeat`, `connect_timeout`, `max_body` and `replicas` parameters.
//! The host may be a cluster's seed list, `nats://a:4222,b:4223,c`: the connection starts at one
//! of them and, when its node goes away, moves to another (or to one the cluster told it of),
//! and the layer subscribes everything anew there.
//!
//! ```
//! let parsed = switchboard_transport_nats::parse("nats://127.0.0.1?instance=kitchen&heartbeat=500ms")?;
//! assert_eq!(parsed.instance.as_deref(), Some("kitchen"));
//! assert_eq!(parsed.address.to_string(), "nats://127.0.0.1:4222?heartbeat=500ms");
//! let cluster = switchboard_transport_nats::parse("nats://n1,n2:4223?replicas=shared")?;
//! assert_eq!(cluster.address.to_string(), "nats://n1:4222,n2:4223?replicas=shared");
//! # Ok::<(), switchboard_broker::BrokerUrlError>(())
//! ```

use std::{fmt, path::PathBuf, sync::Arc};

use switchboard_broker::{
    BrokerAddress, BrokerOptions, BrokerUrl, BrokerUrlError, Bus, BusConnector, with_query,
};
use switchboard_core::{TransportError, transport::BoxFuture};

mod bus;

/// The URL schemes this transport handles.
pub const SCHEMES: &[&str] = &["nats", "nats+tls"];

/// The port when a URL names none.
pub const DEFAULT_PORT: u16 = 4222;

/// A parsed NATS URL: where to serve and connect, and the `instance` parameter if given.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ParsedUrl {
    /// The broker address, with the layer's options from the URL.
    pub address: BrokerAddress,
    /// The `?instance=` value.
    pub instance: Option<String>,
}

/// Parses `nats://[user:password@ or token@]host[:4222]` or `nats+tls://…`, where the host may
/// be a seed list (`host1[:port],host2[:port],…`), with the query parameters `instance`,
/// `heartbeat`, `connect_timeout`, `max_body`, `replicas` and (TLS only) `ca`.
pub fn parse(url: &str) -> Result<ParsedUrl, BrokerUrlError> {
    let (parsed, seeds) = BrokerUrl::parse_seeds("NATS", url, SCHEMES, DEFAULT_PORT)?;
    let err = |reason: String| BrokerUrlError::new("NATS", url, reason);
    let tls = parsed.scheme == "nats+tls";
    let ca = parsed.tls_ca(tls, "nats+tls").map_err(err)?;
    let credentials = match (&parsed.user, &parsed.password) {
        (Some(user), Some(password)) => Credentials::UserPassword(user.clone(), password.clone()),
        (Some(token), None) => Credentials::Token(token.clone()),
        _ => Credentials::None,
    };
    let options = parsed.options.clone();
    let connector = NatsConnector { tls, ca, credentials, url: parsed.clone(), seeds };
    let address = BrokerAddress::new(Arc::new(connector)).with_options(options);
    Ok(ParsedUrl { address, instance: parsed.instance })
}

/// How to authenticate.
#[derive(Clone)]
enum Credentials {
    None,
    /// `nats://token@host`.
    Token(String),
    /// `nats://user:password@host`.
    UserPassword(String, String),
}

/// Opens connections to one NATS server, or to any node of a cluster.
#[derive(Clone)]
pub(crate) struct NatsConnector {
    /// The URL, with the first seed as its host.
    url: BrokerUrl,
    /// Every server the URL names (host and port), the first one included.
    seeds: Vec<(String, u16)>,
    tls: bool,
    ca: Option<PathBuf>,
    credentials: Credentials,
}

impl NatsConnector {
    /// The addresses async-nats connects to (credentials go separately).
    fn servers(&self) -> Vec<String> {
        let scheme = if self.tls { "tls" } else { "nats" };
        let seeds =
            self.seeds.iter().map(|(host, port)| format!("{scheme}://{}", authority(host, *port)));
        seeds.collect()
    }
}

/// `host:port`, an IPv6 address in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

impl NatsConnector {
    /// The URL's location, then the other seeds (`nats://a:4222,b:4223`).
    fn locations(&self, first: String) -> String {
        let mut location = first;
        for (host, port) in self.seeds.iter().skip(1) {
            location.push(',');
            location.push_str(&authority(host, *port));
        }
        location
    }
}

impl fmt::Display for NatsConnector {
    /// The URL without secrets: a password shows as `***` (a user alone would read back as a
    /// token), and a token (in the user's place) is not shown at all.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = self.locations(match self.credentials {
            Credentials::UserPassword(..) => self.url.location_masking_password(),
            Credentials::Token(_) | Credentials::None => self.url.location(false),
        });
        let query: Vec<(&str, String)> =
            self.ca.iter().map(|ca| ("ca", ca.to_string_lossy().into_owned())).collect();
        f.write_str(&with_query(location, &query))
    }
}

impl fmt::Debug for NatsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConnector").field("url", &self.to_string()).finish_non_exhaustive()
    }
}

impl BusConnector for NatsConnector {
    fn open<'a>(
        &'a self,
        name: &'a str,
        options: &'a BrokerOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Bus>, TransportError>> {
        Box::pin(async move {
            let bus = bus::NatsBus::connect(self, name, options).await?;
            Ok(Arc::new(bus) as Arc<dyn Bus>)
        })
    }
}

/// This transport's entry in the facade's registry.
pub const REGISTRATION: switchboard_core::registry::Registration =
    switchboard_core::registry::Registration {
        name: "NATS",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_url_forms() {
        let p = parse("nats://127.0.0.1").unwrap();
        assert_eq!(p.address.to_string(), "nats://127.0.0.1:4222");
        assert_eq!(p.instance, None);
        let p = parse("nats://alice:s3cret@nats.example:4333?instance=k1&max_body=4096").unwrap();
        assert_eq!(p.address.to_string(), "nats://alice:***@nats.example:4333?max_body=4096");
        assert_eq!(p.instance.as_deref(), Some("k1"));
        let p = parse("nats://t0ken@h").unwrap();
        assert_eq!(p.address.to_string(), "nats://h:4222", "a token is never shown");
        let p = parse("nats+tls://h?ca=/etc/ca.pem&heartbeat=2s").unwrap();
        assert_eq!(p.address.to_string(), "nats+tls://h:4222?ca=/etc/ca.pem&heartbeat=2s");
        assert!(!format!("{:?}", p.address).contains("s3cret"));
    }

    #[test]
    fn the_server_addresses_async_nats_gets() {
        let connector = |url: &str| {
            let (parsed, seeds) =
                BrokerUrl::parse_seeds("NATS", url, SCHEMES, DEFAULT_PORT).unwrap();
            NatsConnector {
                tls: parsed.scheme == "nats+tls",
                url: parsed,
                seeds,
                ca: None,
                credentials: Credentials::None,
            }
        };
        assert_eq!(connector("nats://u:p@h").servers(), ["nats://h:4222"]);
        assert_eq!(connector("nats+tls://[::1]:5000").servers(), ["tls://[::1]:5000"]);
        assert_eq!(
            connector("nats://a,b:4223,[::1]").servers(),
            ["nats://a:4222", "nats://b:4223", "nats://[::1]:4222"]
        );
    }

    #[test]
    fn seed_lists_display_and_parse_back() {
        for (url, shown) in [
            ("nats://a:4001,b", "nats://a:4001,b:4222"),
            ("nats://alice:s3cret@a,b?instance=k", "nats://alice:***@a:4222,b:4222"),
            ("nats://t0ken@a,b:7", "nats://a:4222,b:7"),
            (
                "nats+tls://a,b?ca=/ca.pem&replicas=shared",
                "nats+tls://a:4222,b:4222?ca=/ca.pem&replicas=shared",
            ),
        ] {
            let parsed = parse(url).unwrap();
            assert_eq!(parsed.address.to_string(), shown, "{url}");
            assert!(!format!("{:?}", parsed.address).contains("s3cret"));
            if !shown.contains("***") {
                assert_eq!(parse(shown).unwrap().address.to_string(), shown);
            }
        }
    }

    #[test]
    fn refuses_bad_urls_clearly() {
        for (url, needle) in [
            ("nats://h?ca=/x", "only applies"),
            ("nats://h?client_id=x", "unknown query parameter `client_id`"),
            ("tls://h", "expected `nats://` or `nats+tls://`"),
            ("nats://h/subject", "no path"),
        ] {
            let error = parse(url).unwrap_err().to_string();
            assert!(error.contains(needle), "{url}: {error}");
        }
    }
}
