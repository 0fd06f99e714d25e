//! Whether a client and a server can talk: the Hello document each side describes itself with,
//! and the one check that compares two of them.
//!
//! The Unix transport exchanges Hellos in its handshake; the brokered layer reads the server's
//! from its presence announcement. Both decide with [`check`].

use serde::{Deserialize, Serialize};

use crate::{
    descriptor::InterfaceDescriptor,
    error::{TransportError, TransportErrorKind},
};

/// What one side says about itself: its protocol, and the interface it serves or was generated
/// from. Its JSON form is part of the wire (`docs/wire/unix.md`, `docs/wire/brokers.md`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hello {
    /// The transport's protocol number.
    pub protocol: u64,
    /// The interface name.
    pub interface: String,
    /// The interface version.
    #[serde(default)]
    pub version: String,
    /// The description hash; `None` for a dynamic client, which accepts any.
    #[serde(default)]
    pub hash: Option<String>,
    /// The service instance.
    #[serde(default)]
    pub instance: String,
}

impl Hello {
    /// Describes `interface` as served or expected at `instance` over `protocol`; an empty hash
    /// becomes `None`.
    pub fn describe(interface: &InterfaceDescriptor, instance: &str, protocol: u64) -> Self {
        Hello {
            protocol,
            interface: interface.name.to_string(),
            version: interface.version.to_string(),
            hash: (!interface.hash.is_empty()).then(|| interface.hash.to_string()),
            instance: instance.to_owned(),
        }
    }

    /// `Thermostat 1.2.0 (sha256:ab12cd34ef56)`, for error messages.
    pub fn summary(&self) -> String {
        match &self.hash {
            Some(hash) => {
                format!("{} {} (sha256:{})", self.interface, self.version, short_hash(hash))
            }
            None => format!("{} {} (any hash)", self.interface, self.version),
        }
    }
}

/// The first 12 hex digits of a description hash (`sha256:…`), for messages people read.
pub fn short_hash(hash: &str) -> &str {
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    hex.get(..12).unwrap_or(hex)
}

/// Why a client and a server cannot talk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Incompatible {
    /// They speak different protocol versions.
    #[error("client speaks protocol {client}, server speaks protocol {server}")]
    Protocol {
        /// The client's protocol.
        client: u64,
        /// The server's protocol.
        server: u64,
    },
    /// The server serves another interface, or another description of it.
    #[error("client was generated from {client}, server serves {server}")]
    Interface {
        /// The client's [`Hello::summary`].
        client: String,
        /// The server's [`Hello::summary`].
        server: String,
    },
}

impl From<Incompatible> for TransportError {
    fn from(error: Incompatible) -> Self {
        TransportError::new(TransportErrorKind::IncompatibleInterface, error.to_string())
    }
}

/// Decides whether a server that says `server` serves a client that says `client`.
///
/// Protocols must be equal, interface names too, and the hashes when both sides have one.
pub fn check(client: &Hello, server: &Hello) -> Result<(), Incompatible> {
    if client.protocol != server.protocol {
        return Err(Incompatible::Protocol { client: client.protocol, server: server.protocol });
    }
    let hash_differs = match (&client.hash, &server.hash) {
        (Some(c), Some(s)) => c != s,
        _ => false,
    };
    if client.interface != server.interface || hash_differs {
        return Err(Incompatible::Interface { client: client.summary(), server: server.summary() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_protocol_name_and_hash() {
        let server = Hello {
            protocol: 1,
            interface: "Thermostat".into(),
            version: "1.3.0".into(),
            hash: Some("sha256:0123456789abcdef".into()),
            instance: "default".into(),
        };
        let mut client = server.clone();
        assert_eq!(check(&client, &server), Ok(()));
        client.hash = None;
        assert_eq!(check(&client, &server), Ok(()), "a dynamic client accepts any hash");
        client.hash = Some("sha256:ab12cd34ef56ffff".into());
        client.version = "1.2.0".into();
        let error = check(&client, &server).expect_err("mismatch");
        assert!(matches!(error, Incompatible::Interface { .. }));
        assert_eq!(
            error.to_string(),
            "client was generated from Thermostat 1.2.0 (sha256:ab12cd34ef56), \
             server serves Thermostat 1.3.0 (sha256:0123456789ab)"
        );
        client = server.clone();
        client.interface = "Other".into();
        assert!(matches!(check(&client, &server), Err(Incompatible::Interface { .. })));
        client = server.clone();
        client.protocol = 2;
        assert_eq!(check(&client, &server), Err(Incompatible::Protocol { client: 2, server: 1 }));
        let transport = TransportError::from(Incompatible::Protocol { client: 2, server: 1 });
        assert_eq!(transport.kind(), TransportErrorKind::IncompatibleInterface);
    }

    #[test]
    fn hello_json_is_the_wire_form() {
        let hello: Hello = serde_json::from_str(r#"{"protocol":1,"interface":"X"}"#).unwrap();
        assert_eq!((hello.version.as_str(), hello.hash, hello.instance.as_str()), ("", None, ""));
        let text = serde_json::to_string(&Hello {
            protocol: 1,
            interface: "X".into(),
            version: "1.0.0".into(),
            hash: None,
            instance: "a".into(),
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"protocol":1,"interface":"X","version":"1.0.0","hash":null,"instance":"a"}"#
        );
    }
}
