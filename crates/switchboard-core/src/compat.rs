//! Whether a client and a server can talk: the Hello document each side describes itself with,
//! and the one check that compares two of them.
//!
//! The Unix transport exchanges Hellos in its handshake; the brokered layer reads the server's
//! from its presence announcement, MQTT from the server's retained description. All decide
//! with [`check`]: equal hashes agree at once; different hashes are compared member by member
//! with `switchboard_idl::diff`, the one classifier of changes (its rules are in
//! `docs/interface-format.md`, "Compatibility between versions").

use serde::{Deserialize, Serialize};
use switchboard_idl::{
    Interface,
    diff::{self, ChangeKind, Compat},
};

use crate::{
    descriptor::InterfaceDescriptor,
    error::{ErrorCode, RemoteError, TransportError, TransportErrorKind, names},
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
    /// The interface description (the JSON introspection returns), so that a peer with another
    /// hash can decide member by member; peers older than this field send none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<serde_json::Value>,
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
            description: serde_json::from_str(&interface.description).ok(),
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
    /// The server serves another interface, or another description of it and one side sent
    /// no description to compare member by member.
    #[error("client was generated from {client}, server serves {server}")]
    Interface {
        /// The client's [`Hello::summary`].
        client: String,
        /// The server's [`Hello::summary`].
        server: String,
    },
    /// The two descriptions differ in a way that breaks this client against this server.
    #[error(
        "client was generated from {client}, server serves {server}, and the change at \
         `{path}` breaks this client: {change}"
    )]
    Breaking {
        /// The client's [`Hello::summary`].
        client: String,
        /// The server's [`Hello::summary`].
        server: String,
        /// Where the first breaking difference is, as dotted file keys
        /// (`methods.setTarget.arguments.celsius`).
        path: String,
        /// What changed, read from the client's description to the server's.
        change: String,
    },
}

impl From<Incompatible> for TransportError {
    fn from(error: Incompatible) -> Self {
        TransportError::new(TransportErrorKind::IncompatibleInterface, error.to_string())
    }
}

/// What a client and a compatible server agreed on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Agreement {
    /// The server's [`Hello::summary`], for messages.
    pub server: String,
    /// The members the client's interface has and the server's lacks; using one fails before
    /// anything is sent, with the remote error the server would answer (`UnknownMethod`, ...).
    /// Empty when the hashes are equal.
    pub lacking: Vec<Member>,
}

impl Agreement {
    /// Whether the server lacks the member `name` of kind `kind`.
    pub fn lacks(&self, kind: MemberKind, name: &str) -> bool {
        self.lacking.iter().any(|m| m.kind == kind && m.name == name)
    }

    /// The error a use of `member`, which the server lacks, fails with: the one the server
    /// itself answers for an unknown member (`UnknownMethod`, `UnknownProperty`, ...).
    pub fn refusal(&self, member: &Member) -> RemoteError {
        let name = match member.kind {
            MemberKind::Method => names::UNKNOWN_METHOD,
            MemberKind::Signal => names::UNKNOWN_SIGNAL,
            MemberKind::Property => names::UNKNOWN_PROPERTY,
            MemberKind::Command => names::UNKNOWN_COMMAND,
            MemberKind::Action => names::UNKNOWN_ACTION,
        };
        RemoteError::new(
            ErrorCode::MethodNotFound,
            name,
            format!("the server serves {}, which has no {member}; nothing was sent", self.server),
        )
    }
}

/// One member of an interface, as a call names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// What kind of member.
    pub kind: MemberKind,
    /// Its name in the interface file.
    pub name: String,
}

/// The kinds of member a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemberKind {
    /// A method.
    Method,
    /// A signal.
    Signal,
    /// A property.
    Property,
    /// A command.
    Command,
    /// An action.
    Action,
}

impl MemberKind {
    /// The interface file's section for this kind: `methods`, `signals`, ...
    pub fn section(self) -> &'static str {
        match self {
            MemberKind::Method => "methods",
            MemberKind::Signal => "signals",
            MemberKind::Property => "properties",
            MemberKind::Command => "commands",
            MemberKind::Action => "actions",
        }
    }

    /// `method`, `signal`, ...
    pub fn noun(self) -> &'static str {
        match self {
            MemberKind::Method => "method",
            MemberKind::Signal => "signal",
            MemberKind::Property => "property",
            MemberKind::Command => "command",
            MemberKind::Action => "action",
        }
    }

    const ALL: [MemberKind; 5] = [
        MemberKind::Method,
        MemberKind::Signal,
        MemberKind::Property,
        MemberKind::Command,
        MemberKind::Action,
    ];
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} `{}`", self.kind.noun(), self.name)
    }
}

/// Decides whether a server that says `server` serves a client that says `client`.
///
/// Protocols must be equal, and interface names too. A side without a hash (a dynamic client)
/// accepts any description, and equal hashes agree at once. Different hashes need both
/// descriptions: the client's is compared with the server's by `switchboard_idl::diff`, and
/// the first change that breaks clients built from the client's description against servers
/// built from the server's refuses the pair, except a member the server lacks altogether, which
/// only fails when used ([`Agreement::lacking`]).
pub fn check(client: &Hello, server: &Hello) -> Result<Agreement, Incompatible> {
    if client.protocol != server.protocol {
        return Err(Incompatible::Protocol { client: client.protocol, server: server.protocol });
    }
    let mismatch =
        || Incompatible::Interface { client: client.summary(), server: server.summary() };
    if client.interface != server.interface {
        return Err(mismatch());
    }
    match (&client.hash, &server.hash) {
        (Some(c), Some(s)) if c != s => {}
        _ => return Ok(Agreement { server: server.summary(), lacking: Vec::new() }),
    }
    let read =
        |hello: &Hello| hello.description.as_ref().and_then(|d| Interface::deserialize(d).ok());
    let (Some(ours), Some(theirs)) = (read(client), read(server)) else {
        return Err(mismatch());
    };
    let mut agreement = Agreement { server: server.summary(), lacking: Vec::new() };
    for change in diff::compare(&ours, &theirs) {
        if change.clients != Compat::Breaking {
            continue;
        }
        if change.kind == ChangeKind::MemberRemoved
            && let Some(member) = member_at(&change.path)
        {
            agreement.lacking.push(member);
            continue;
        }
        return Err(Incompatible::Breaking {
            client: client.summary(),
            server: server.summary(),
            path: change.path,
            change: change.message,
        });
    }
    Ok(agreement)
}

/// The member a diff path such as `methods.setTarget` names, if it names a whole one.
fn member_at(path: &str) -> Option<Member> {
    let (section, name) = path.split_once('.')?;
    let kind = MemberKind::ALL.into_iter().find(|k| k.section() == section)?;
    (!name.contains('.')).then(|| Member { kind, name: name.to_owned() })
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
            description: None,
        };
        let mut client = server.clone();
        assert!(check(&client, &server).is_ok_and(|a| a.lacking.is_empty()));
        client.hash = None;
        assert!(check(&client, &server).is_ok(), "a dynamic client accepts any hash");
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
            description: None,
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"protocol":1,"interface":"X","version":"1.0.0","hash":null,"instance":"a"}"#
        );
    }

    /// A description with `methods` and `signals` (JSON lists of the model's form), named
    /// `Thermostat`, and the Hello of a peer with it and hash `hash`.
    fn peer(hash: &str, methods: serde_json::Value, signals: serde_json::Value) -> Hello {
        let description = serde_json::json!({
            "name": "Thermostat", "version": "1.0.0",
            "format": {"version": "0.1.1", "dialect": "V0_1"},
            "constants": [], "enums": [], "structs": [], "errors": [],
            "signals": signals, "properties": [], "methods": methods,
            "commands": [], "actions": [],
            "configuration": {"topic_params": [], "topics": []}
        });
        Hello {
            protocol: 1,
            interface: "Thermostat".into(),
            version: "1.0.0".into(),
            hash: Some(hash.into()),
            instance: "default".into(),
            description: Some(description),
        }
    }

    fn method(name: &str, arguments: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"name": name, "consumers": [], "arguments": arguments,
                           "returns": [], "errors": []})
    }

    fn field(name: &str, ty: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"name": name, "type": ty})
    }

    #[test]
    fn different_hashes_are_decided_member_by_member() {
        let float = serde_json::json!({"kind": "float", "format": "float64"});
        let optional_string = serde_json::json!({"kind": "optional", "inner": {"kind": "string"}});
        let set = |args| method("setTarget", args);
        let old = peer(
            "sha256:aa",
            serde_json::json!([set(serde_json::json!([field("c", float.clone())]))]),
            serde_json::json!([]),
        );
        // The new server adds an optional argument and a method: old clients keep working.
        let new = peer(
            "sha256:bb",
            serde_json::json!([
                set(serde_json::json!([field("c", float.clone()), field("note", optional_string)])),
                method("boost", serde_json::json!([]))
            ]),
            serde_json::json!([{"name": "alarm", "consumers": [], "fields": []}]),
        );
        let agreement = check(&old, &new).expect("an old client, a new server");
        assert!(agreement.lacking.is_empty(), "{agreement:?}");
        // A new client with an old server connects, and knows what the server lacks.
        let agreement = check(&new, &old).expect("a new client, an old server");
        let lacking: Vec<String> = agreement.lacking.iter().map(ToString::to_string).collect();
        assert_eq!(lacking, ["signal `alarm`", "method `boost`"]);
        assert!(agreement.lacks(MemberKind::Method, "boost"));
        assert!(!agreement.lacks(MemberKind::Method, "setTarget"));
        let refusal = agreement.refusal(&agreement.lacking[1]);
        assert_eq!((refusal.code(), refusal.name()), (ErrorCode::MethodNotFound, "UnknownMethod"));
        assert_eq!(
            refusal.message(),
            "the server serves Thermostat 1.0.0 (sha256:aa), which has no method `boost`; \
             nothing was sent"
        );
        // A changed type breaks both ways, and the refusal names it.
        let changed = peer(
            "sha256:cc",
            serde_json::json!([set(serde_json::json!([field(
                "c",
                serde_json::json!({"kind": "string"})
            )]))]),
            serde_json::json!([]),
        );
        let error = check(&old, &changed).expect_err("a changed type");
        assert!(
            matches!(&error, Incompatible::Breaking { path, .. } if path == "methods.setTarget.arguments.c")
        );
        assert_eq!(
            error.to_string(),
            "client was generated from Thermostat 1.0.0 (sha256:aa), server serves Thermostat \
             1.0.0 (sha256:cc), and the change at `methods.setTarget.arguments.c` breaks this \
             client: argument type changed from float (float64) to string"
        );
        // Without a description on either side, different hashes refuse as before.
        let mut bare = new.clone();
        bare.description = None;
        assert!(matches!(check(&old, &bare), Err(Incompatible::Interface { .. })));
        assert!(matches!(check(&bare, &old), Err(Incompatible::Interface { .. })));
        // An unreadable description counts as none.
        bare.description = Some(serde_json::json!({"name": 1}));
        assert!(matches!(check(&old, &bare), Err(Incompatible::Interface { .. })));
    }
}
