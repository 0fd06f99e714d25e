//! What every broker URL may say besides where the broker is: liveness, limits, waits and
//! replication (`?heartbeat=…&connect_timeout=…&max_body=…&replicas=shared`), plus the URL
//! parsing adapters share.

use std::{path::PathBuf, time::Duration};

use switchboard_core::backoff::Backoff;

/// Tunables of the brokered layer, the same on every broker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerOptions {
    /// How often servers and clients announce that they are alive; a peer silent for three of
    /// its own intervals is gone. Default 1 s; URL parameter `heartbeat`.
    pub heartbeat: Duration,
    /// How long a client waits for its server to announce itself when it connects. Default
    /// 5 s; URL parameter `connect_timeout`.
    pub connect_timeout: Duration,
    /// The largest body sent or accepted; larger ones are refused. Default 16 MiB; URL
    /// parameter `max_body` (in bytes).
    pub max_body: usize,
    /// How the adapter waits between reconnect attempts.
    pub backoff: Backoff,
    /// Whether this server is one of several serving the same instance. Default
    /// [`Replicas::Single`]; URL parameter `replicas`.
    pub replicas: Replicas,
}

/// Whether several server processes serve one instance (`docs/scaling.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Replicas {
    /// One server serves the instance (`replicas=single`, the default). A second one started
    /// on the same instance is reported in the log, since calls would be split between them.
    #[default]
    Single,
    /// Several servers share the instance's calls (`replicas=shared`): each method call and
    /// command goes to exactly one of them. They refuse what only one server can own: an
    /// interface with properties cannot be served this way, and goals are refused.
    Shared,
}

impl Replicas {
    /// Whether this is [`Replicas::Single`].
    pub fn is_single(&self) -> bool {
        *self == Replicas::Single
    }

    /// The URL parameter's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Replicas::Single => "single",
            Replicas::Shared => "shared",
        }
    }

    /// Reads the URL parameter's value.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "single" => Ok(Replicas::Single),
            "shared" => Ok(Replicas::Shared),
            other => Err(format!("`replicas={other}` is neither `single` nor `shared`")),
        }
    }
}

/// The default [`BrokerOptions::heartbeat`].
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// The default [`BrokerOptions::max_body`]: 16 MiB, as on the Unix socket.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            heartbeat: DEFAULT_HEARTBEAT,
            connect_timeout: Duration::from_secs(5),
            max_body: DEFAULT_MAX_BODY,
            backoff: Backoff::default(),
            replicas: Replicas::Single,
        }
    }
}

impl BrokerOptions {
    /// Sets the heartbeat interval.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// Sets how long a client waits for its server at connect time.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the largest body sent or accepted.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sets whether this server is one of several serving the same instance.
    pub fn replicas(mut self, replicas: Replicas) -> Self {
        self.replicas = replicas;
        self
    }

    /// Applies URL query parameter `key`; `Ok(false)` when it is not one of these options.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "heartbeat" => self.heartbeat = positive_duration(key, value)?,
            "connect_timeout" => self.connect_timeout = positive_duration(key, value)?,
            "max_body" => {
                self.max_body = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("`max_body={value}` is not a positive number of bytes")
                })?
            }
            "replicas" => self.replicas = Replicas::parse(value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The query parameters that differ from the defaults, as [`set`](Self::set) reads them.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let default = BrokerOptions::default();
        let mut query = Vec::new();
        if self.heartbeat != default.heartbeat {
            query.push(("heartbeat", format_duration(self.heartbeat)));
        }
        if self.connect_timeout != default.connect_timeout {
            query.push(("connect_timeout", format_duration(self.connect_timeout)));
        }
        if self.max_body != default.max_body {
            query.push(("max_body", self.max_body.to_string()));
        }
        if self.replicas != default.replicas {
            query.push(("replicas", self.replicas.as_str().to_owned()));
        }
        query
    }
}

/// Reads `250ms` or `2s`.
fn positive_duration(key: &str, value: &str) -> Result<Duration, String> {
    let parsed = if let Some(ms) = value.strip_suffix("ms") {
        ms.parse().ok().map(Duration::from_millis)
    } else if let Some(s) = value.strip_suffix('s') {
        s.parse().ok().map(Duration::from_secs)
    } else {
        None
    };
    parsed
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{key}={value}` is not a duration such as `500ms` or `2s`"))
}

fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// A broker URL taken apart: `scheme://[user[:password]@]host[:port][?query]`.
///
/// It holds what every adapter needs; each adapter checks the scheme-specific rest
/// ([`BrokerUrl::extra`]) itself. Its `Debug` shows no password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerUrl {
    /// The scheme, as written.
    pub scheme: String,
    /// The host name or address (IPv6 without brackets).
    pub host: String,
    /// The port, or the adapter's default.
    pub port: u16,
    /// The user name, percent-decoded.
    pub user: Option<String>,
    /// The password, percent-decoded.
    pub password: Option<String>,
    /// The `instance` parameter.
    pub instance: Option<String>,
    /// The layer's options, from their parameters.
    pub options: BrokerOptions,
    /// Every other parameter, for the adapter, in order.
    pub extra: Vec<(String, String)>,
}

impl std::fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerUrl")
            .field("location", &self.location(false))
            .field("user", &self.user.as_ref().map(|_| "***"))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("instance", &self.instance)
            .field("options", &self.options)
            .field("extra", &self.extra)
            .finish()
    }
}

/// Why a broker URL is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {broker} URL `{url}`: {reason}")]
pub struct BrokerUrlError {
    broker: &'static str,
    url: String,
    reason: String,
}

impl BrokerUrlError {
    /// Says why `url` is not a usable URL of `broker`.
    pub fn new(broker: &'static str, url: &str, reason: impl Into<String>) -> Self {
        BrokerUrlError { broker, url: redact(url), reason: reason.into() }
    }

    /// What is wrong, without the URL.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Unparsable (a seed list, say): whatever lies between the user's `:` and the `@` goes.
        Err(_) => {
            let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            match authority.rsplit_once('@') {
                Some((user_info, hosts)) => {
                    let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
                    let masked = if user_info.contains(':') { ":***" } else { "" };
                    format!("{scheme}://{user}{masked}@{hosts}{tail}")
                }
                None => url.to_owned(),
            }
        }
    }
}

impl BrokerUrl {
    /// The CA file of a TLS URL (`?ca=PATH`), the one query parameter an adapter takes beyond
    /// the layer's own. `tls` says whether the URL's scheme is the TLS one, `tls_scheme`
    /// names it for the error: `ca` on a plain URL, or any other unknown parameter, is one.
    pub fn tls_ca(&self, tls: bool, tls_scheme: &str) -> Result<Option<PathBuf>, String> {
        let mut ca = None;
        for (key, value) in &self.extra {
            match key.as_str() {
                "ca" if tls => ca = Some(PathBuf::from(value)),
                "ca" => return Err(format!("`ca` only applies to `{tls_scheme}://`")),
                other => {
                    return Err(format!(
                        "unknown query parameter `{other}`; expected `instance`, `heartbeat`, `connect_timeout`, `max_body`, `replicas` or (with TLS) `ca`"
                    ));
                }
            }
        }
        Ok(ca)
    }

    /// Parses `url` for `broker`, whose schemes are `schemes`, with `default_port` when the URL
    /// gives none.
    pub fn parse(
        broker: &'static str,
        url: &str,
        schemes: &[&str],
        default_port: u16,
    ) -> Result<Self, BrokerUrlError> {
        let err = |reason: String| BrokerUrlError::new(broker, url, reason);
        let parsed = url::Url::parse(url).map_err(|e| err(e.to_string()))?;
        let scheme = parsed.scheme().to_owned();
        if !schemes.contains(&scheme.as_str()) {
            return Err(err(format!(
                "expected {}",
                schemes.iter().map(|s| format!("`{s}://`")).collect::<Vec<_>>().join(" or ")
            )));
        }
        let host = match parsed.host() {
            Some(url::Host::Ipv6(address)) => address.to_string(),
            Some(host) => host.to_string(),
            None => return Err(err("the URL names no host".into())),
        };
        if host.is_empty() {
            return Err(err("the URL names no host".into()));
        }
        if !matches!(parsed.path(), "" | "/") {
            return Err(err("a broker URL has no path; put options in the query".into()));
        }
        if parsed.fragment().is_some() {
            return Err(err("fragments (`#…`) are not allowed".into()));
        }
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(|decoded| decoded.into_owned())
                .map_err(|_| err("the user or password is not UTF-8 once %-decoded".into()))
        };
        let user = Some(parsed.username()).filter(|u| !u.is_empty()).map(decode).transpose()?;
        let password = parsed.password().map(decode).transpose()?;
        let mut broker_url = BrokerUrl {
            scheme,
            host,
            port: parsed.port().unwrap_or(default_port),
            user,
            password,
            instance: None,
            options: BrokerOptions::default(),
            extra: Vec::new(),
        };
        let mut seen = Vec::new();
        for (key, value) in parsed.query_pairs() {
            if seen.contains(&key) {
                return Err(err(format!("query parameter `{key}` is given twice")));
            }
            seen.push(key.clone());
            if key == "instance" {
                broker_url.instance = Some(value.into_owned());
            } else if !broker_url.options.set(&key, &value).map_err(err)? {
                broker_url.extra.push((key.into_owned(), value.into_owned()));
            }
        }
        Ok(broker_url)
    }

    /// Parses a URL whose authority may name several brokers of one cluster, separated by
    /// commas (`nats://a:4222,b:4223,c`, each port defaulting to `default_port`): the URL with
    /// its first broker, as [`BrokerUrl::parse`] reads it, and every broker's host and port, the
    /// first one included. Credentials and the query apply to all of them.
    pub fn parse_seeds(
        broker: &'static str,
        url: &str,
        schemes: &[&str],
        default_port: u16,
    ) -> Result<(Self, Vec<(String, u16)>), BrokerUrlError> {
        let err = |reason: &str| BrokerUrlError::new(broker, url, reason);
        let Some((scheme, rest)) = url.split_once("://") else {
            let parsed = Self::parse(broker, url, schemes, default_port)?;
            let seed = (parsed.host.clone(), parsed.port);
            return Ok((parsed, vec![seed]));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (user_info, hosts) = match authority.rsplit_once('@') {
            Some((user_info, hosts)) => (format!("{user_info}@"), hosts),
            None => (String::new(), authority),
        };
        let mut first = None;
        let mut seeds = Vec::new();
        for host in hosts.split(',') {
            if host.is_empty() {
                return Err(err("the list of brokers has an empty entry (`a:4222,,b`)"));
            }
            let one = Self::parse(
                broker,
                &format!("{scheme}://{user_info}{host}{tail}"),
                schemes,
                default_port,
            )?;
            seeds.push((one.host.clone(), one.port));
            first.get_or_insert(one);
        }
        let first = first.ok_or_else(|| err("the URL names no host"))?;
        Ok((first, seeds))
    }

    /// `scheme://[user@]host:port`, never with the password; with `show_user` false, without
    /// the user either (a token in the user's place is a secret too).
    pub fn location(&self, show_user: bool) -> String {
        self.location_with(show_user, "")
    }

    /// `scheme://user:***@host:port`: the user, and `***` in the password's place, for a broker
    /// where `user@` alone means something else (a NATS token); as [`BrokerUrl::location`]
    /// without a user.
    pub fn location_masking_password(&self) -> String {
        self.location_with(true, ":***")
    }

    /// The location, with the user and then `password` when `show_user`.
    fn location_with(&self, show_user: bool, password: &str) -> String {
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.user.as_deref().filter(|_| show_user) {
            Some(name) => {
                let name = percent_encoding::utf8_percent_encode(name, USER);
                format!("{}://{name}{password}@{host}:{}", self.scheme, self.port)
            }
            None => format!("{}://{host}:{}", self.scheme, self.port),
        }
    }
}

/// What a query value keeps unescaped besides letters and digits: enough for paths and
/// durations to stay readable.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b':');

/// What a user name in a URL keeps unescaped.
const USER: &percent_encoding::AsciiSet = &QUERY_VALUE.add(b'/').add(b':');

/// Appends `query` to `url` (`?a=1&b=2`, or `&a=1…` when it has a query already), each value
/// %-escaped where it must be.
pub fn with_query(mut url: String, query: &[(&str, String)]) -> String {
    for (key, value) in query {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(key);
        url.push('=');
        url.extend(percent_encoding::utf8_percent_encode(value, QUERY_VALUE));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_common_parts() {
        let url = BrokerUrl::parse(
            "nats",
            "nats://u%40x:p%3Aw@broker.example:4333?instance=k1&heartbeat=250ms&ca=/etc/ca.pem",
            &["nats"],
            4222,
        )
        .unwrap();
        assert_eq!((url.host.as_str(), url.port), ("broker.example", 4333));
        assert_eq!((url.user.as_deref(), url.password.as_deref()), (Some("u@x"), Some("p:w")));
        assert_eq!(url.instance.as_deref(), Some("k1"));
        assert_eq!(url.options.heartbeat, Duration::from_millis(250));
        assert_eq!(url.extra, [("ca".to_owned(), "/etc/ca.pem".to_owned())]);
        assert_eq!(url.location(true), "nats://u%40x@broker.example:4333");
        assert_eq!(url.location(false), "nats://broker.example:4333");
        assert_eq!(url.location_masking_password(), "nats://u%40x:***@broker.example:4333");
        let url = BrokerUrl::parse("nats", "nats://[::1]", &["nats"], 4222).unwrap();
        assert_eq!((url.host.as_str(), url.location(false).as_str()), ("::1", "nats://[::1]:4222"));
    }

    #[test]
    fn parses_seed_lists() {
        let (url, seeds) = BrokerUrl::parse_seeds(
            "nats",
            "nats://u:p@a:4001,b,[::1]:4003?instance=k1&heartbeat=250ms",
            &["nats"],
            4222,
        )
        .unwrap();
        assert_eq!(
            seeds,
            [("a".to_owned(), 4001), ("b".to_owned(), 4222), ("::1".to_owned(), 4003)]
        );
        assert_eq!((url.host.as_str(), url.port, url.password.as_deref()), ("a", 4001, Some("p")));
        assert_eq!(url.instance.as_deref(), Some("k1"));
        assert_eq!(url.options.heartbeat, Duration::from_millis(250));
        let (_, one) = BrokerUrl::parse_seeds("nats", "nats://h", &["nats"], 4222).unwrap();
        assert_eq!(one, [("h".to_owned(), 4222)]);
        for (url, needle) in [
            ("nats://a,,b", "empty entry"),
            ("nats://a,", "empty entry"),
            ("nats://a,b:x", "invalid port"),
            ("nats://a,b/path", "no path"),
        ] {
            let error =
                BrokerUrl::parse_seeds("nats", url, &["nats"], 4222).unwrap_err().to_string();
            assert!(error.contains(needle), "{url}: {error}");
        }
        let error = BrokerUrl::parse_seeds("nats", "nats://u:secret@a,,b", &["nats"], 4222)
            .unwrap_err()
            .to_string();
        assert!(!error.contains("secret") && error.contains("u:***@a,,b"), "{error}");
    }

    #[test]
    fn options_round_trip_through_the_query() {
        let mut options = BrokerOptions::default();
        assert!(options.query().is_empty());
        for (key, value) in [
            ("heartbeat", "200ms"),
            ("connect_timeout", "3s"),
            ("max_body", "4096"),
            ("replicas", "shared"),
        ] {
            assert_eq!(options.set(key, value), Ok(true));
        }
        assert_eq!(options.set("other", "1"), Ok(false));
        let query = options.query();
        assert_eq!(
            with_query("x://h".into(), &query),
            "x://h?heartbeat=200ms&connect_timeout=3s&max_body=4096&replicas=shared"
        );
        let mut again = BrokerOptions::default();
        for (key, value) in &query {
            again.set(key, value).unwrap();
        }
        assert_eq!(again, options);
    }

    #[test]
    fn refuses_bad_urls_clearly() {
        for (url, needle) in [
            ("redis://h", "expected `nats://`"),
            ("nats://", "no host"),
            ("nats://h/path", "no path"),
            ("nats://h?heartbeat=soon", "duration"),
            ("nats://h?heartbeat=0ms", "duration"),
            ("nats://h?max_body=-1", "positive number"),
            ("nats://h?replicas=many", "neither `single` nor `shared`"),
            ("nats://h?instance=a&instance=b", "twice"),
            ("nats://h:99999", "invalid port"),
            ("nats://h#x", "fragments"),
        ] {
            let error = BrokerUrl::parse("nats", url, &["nats"], 4222).unwrap_err().to_string();
            assert!(error.contains(needle), "{url}: {error}");
        }
        let error = BrokerUrl::parse("nats", "nats://u:secret@h/x", &["nats"], 4222).unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
