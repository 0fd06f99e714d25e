//! Credentials a `--connect` URL without a password borrows from `$SWITCHBOARD_URL`, so that an
//! address `list` printed (which never shows a password) reaches its broker again.

use std::borrow::Cow;

use switchboard::Endpoint;

/// `given` with the credentials (`user:password@`, or a token) of `source` when `given` has no
/// password, both name the same broker (scheme, host and port, default ports filled in) and
/// `given` names no user or the same user as `source`; otherwise `given` as it is.
pub(crate) fn borrowed<'a>(given: &'a str, source: &str) -> Cow<'a, str> {
    let (Some(to), Some(from)) = (Authority::split(given), Authority::split(source)) else {
        return Cow::Borrowed(given);
    };
    let Some(credentials) = from.userinfo.filter(|info| !info.is_empty()) else {
        return Cow::Borrowed(given);
    };
    let fits = match to.userinfo {
        None => true,
        // A password (or an empty one) of its own.
        Some(info) if info.contains(':') => false,
        Some(user) => user == credentials.split_once(':').map_or(credentials, |(user, _)| user),
    };
    if !fits || to.location().is_none() || to.location() != from.location() {
        return Cow::Borrowed(given);
    }
    Cow::Owned(format!("{}://{credentials}@{}", to.scheme, to.rest))
}

/// `url` with its password, if it has one, shown as `***` (for a screen that shows the URL).
pub(crate) fn masked(url: &str) -> Cow<'_, str> {
    match Authority::split(url) {
        Some(Authority { scheme, userinfo: Some(info), rest }) if info.contains(':') => {
            let user = info.split_once(':').map_or(info, |(user, _)| user);
            Cow::Owned(format!("{scheme}://{user}:***@{rest}"))
        }
        _ => Cow::Borrowed(url),
    }
}

/// A URL cut at its user information.
struct Authority<'a> {
    scheme: &'a str,
    /// What comes before the `@` of the authority, if anything does.
    userinfo: Option<&'a str>,
    /// The host, port, path and query.
    rest: &'a str,
}

impl<'a> Authority<'a> {
    fn split(url: &'a str) -> Option<Self> {
        let (scheme, after) = url.split_once("://")?;
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        Some(match after[..end].rfind('@') {
            Some(at) => Authority { scheme, userinfo: Some(&after[..at]), rest: &after[at + 1..] },
            None => Authority { scheme, userinfo: None, rest: after },
        })
    }

    /// The broker this URL names, as its transport prints it (`amqp://127.0.0.1:5672`): the
    /// scheme, host and port, with the transport's default port if none is given; `None` when
    /// the URL does not parse.
    fn location(&self) -> Option<String> {
        let endpoint = Endpoint::parse(&format!("{}://{}", self.scheme, self.rest)).ok()?;
        let printed = endpoint.to_string();
        Some(printed.split('?').next().unwrap_or_default().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::{borrowed, masked};

    #[test]
    fn a_masked_url_shows_no_password() {
        assert_eq!(masked("amqp://guest:guest@127.0.0.1:5672"), "amqp://guest:***@127.0.0.1:5672");
        assert_eq!(
            masked("redis://:s3cret@host:6379?instance=x"),
            "redis://:***@host:6379?instance=x"
        );
        assert_eq!(masked("nats://token@host:4222"), "nats://token@host:4222");
        assert_eq!(masked("unix:"), "unix:");
        assert_eq!(masked("mqtt://host:1883/a@b"), "mqtt://host:1883/a@b");
    }

    const ENV: &str = "amqp://alice:s3cret@127.0.0.1:5672?instance=x";

    #[test]
    fn an_address_without_a_password_borrows_the_credentials_of_the_same_broker() {
        for (given, expected) in [
            // As `list` prints it: the user and no password, or neither.
            (
                "amqp://alice@127.0.0.1:5672?instance=k",
                "amqp://alice:s3cret@127.0.0.1:5672?instance=k",
            ),
            ("amqp://127.0.0.1:5672?instance=k", "amqp://alice:s3cret@127.0.0.1:5672?instance=k"),
            // The default port is the port.
            ("amqp://127.0.0.1", "amqp://alice:s3cret@127.0.0.1"),
        ] {
            assert_eq!(borrowed(given, ENV), expected, "{given}");
        }
        let redis = "redis://:pw@127.0.0.1:7001";
        assert_eq!(
            borrowed("redis://127.0.0.1:7001?instance=a", redis),
            "redis://:pw@127.0.0.1:7001?instance=a"
        );
    }

    #[test]
    fn anything_else_is_left_as_it_is() {
        for given in [
            // Its own password, even an empty one.
            "amqp://bob:other@127.0.0.1:5672",
            "amqp://alice:@127.0.0.1:5672",
            // Another user.
            "amqp://bob@127.0.0.1:5672",
            // Another port, host or scheme.
            "amqp://127.0.0.1:5673",
            "amqp://localhost:5672",
            "amqps://127.0.0.1:5672",
            "redis://127.0.0.1:5672",
            // Not a URL with an authority, or not one any transport parses.
            "unix:",
            "amqp://127.0.0.1:5672?nonsense=1",
        ] {
            assert_eq!(borrowed(given, ENV), given, "{given}");
        }
        // A source without credentials, or one that does not parse, lends nothing.
        assert_eq!(borrowed("amqp://127.0.0.1", "amqp://127.0.0.1"), "amqp://127.0.0.1");
        assert_eq!(borrowed("amqp://127.0.0.1", "amqp://a:b@127.0.0.1?bad=1"), "amqp://127.0.0.1");
    }
}
