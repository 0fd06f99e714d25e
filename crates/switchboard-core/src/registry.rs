//! How a transport makes itself known to the facade: its URL schemes and its own URL parser.
//!
//! Each transport crate exports one `pub const REGISTRATION: Registration`. The facade keeps a
//! list of the registrations compiled into the build and hands a URL to the one whose scheme
//! matches; no code outside a transport crate knows how that transport's URLs look.

use std::sync::Arc;

use crate::transport::TransportAddress;

/// A transport's entry in the facade's registry.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The transport's name, for messages (`"Unix"`, `"MQTT"`, `"NATS"`).
    pub name: &'static str,
    /// The URL schemes the transport serves, without the `:` (`"mqtt"`, `"mqtts"`).
    pub schemes: &'static [&'static str],
    /// Parses a URL whose scheme is one of [`Registration::schemes`].
    pub parse: fn(&str) -> Result<ParsedUrl, String>,
    /// An instance id with a transport-specific meaning that is not a valid name, if any (on
    /// MQTT a client may use `*` for the first instance it discovers).
    pub wildcard_instance: Option<&'static str>,
}

impl Registration {
    /// Whether this transport serves URLs with `scheme`.
    pub fn serves(&self, scheme: &str) -> bool {
        self.schemes.contains(&scheme)
    }
}

/// A URL parsed by its transport: the address plus the `?instance=` value, if the URL had one.
pub struct ParsedUrl {
    /// The transport's address, with the options the URL carried.
    pub address: Arc<dyn TransportAddress>,
    /// The `?instance=` value.
    pub instance: Option<String>,
}

impl std::fmt::Debug for ParsedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedUrl")
            .field("address", &self.address.to_string())
            .field("instance", &self.instance)
            .finish()
    }
}
