//! Who is there: the presence announcements servers and clients publish as heartbeats, the
//! discovery probe that asks servers to announce themselves at once, and what a peer's silence
//! means.

use std::{collections::HashMap, time::Duration};

use serde::{Deserialize, Serialize};
use switchboard_core::compat::Hello;

use crate::options::Replicas;
use tokio::time::Instant;

/// A presence announcement (`docs/wire/brokers.md`, "Presence and liveness").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Presence {
    /// False in the farewell of a clean shutdown.
    pub(crate) online: bool,
    /// `server` or `client`.
    pub(crate) role: Role,
    /// The announcing connection's id: a server's own, or the client id its requests carry.
    pub(crate) id: String,
    /// How often it announces itself.
    pub(crate) heartbeat_ms: u64,
    /// The interface's title (servers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) title: String,
    /// `shared` for a server started as one of several replicas of its instance; absent for
    /// a single server and for clients.
    #[serde(default, skip_serializing_if = "Replicas::is_single")]
    pub(crate) replicas: Replicas,
    /// True in a server's heartbeat, which leaves its interface description out: a client that
    /// meets its hash for the first time asks for it with a discovery probe, which the server
    /// answers with its description. Absent (false) in an announcement that carries it, in a
    /// farewell, and from servers older than this field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) brief: bool,
    /// The interface served or used, and the protocol.
    #[serde(flatten)]
    pub(crate) hello: Hello,
}

/// Which side announces itself.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// A server of the instance.
    Server,
    /// A client of the instance.
    Client,
}

impl Presence {
    /// How long its announcer may stay silent before it counts as gone: three intervals.
    pub(crate) fn lifetime(&self) -> Duration {
        3 * Duration::from_millis(self.heartbeat_ms.max(1))
    }
}

/// The discovery probe: servers matching it announce themselves at once.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscoveryFilter {
    /// Only servers of this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Only servers of this instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl DiscoveryFilter {
    /// Every server.
    pub fn any() -> Self {
        DiscoveryFilter::default()
    }

    /// Only servers of `interface`.
    pub fn interface(mut self, interface: impl Into<String>) -> Self {
        self.interface = Some(interface.into());
        self
    }

    /// Only servers of `instance`.
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Whether a server announcing `hello` matches.
    pub(crate) fn matches(&self, hello: &Hello) -> bool {
        self.interface.as_ref().is_none_or(|i| *i == hello.interface)
            && self.instance.as_ref().is_none_or(|i| *i == hello.instance)
    }
}

/// The servers a client has heard from, each with when it must be heard from again.
#[derive(Debug, Default)]
pub(crate) struct Liveness {
    deadlines: HashMap<String, Instant>,
}

impl Liveness {
    /// Notes an announcement.
    pub(crate) fn heard(&mut self, presence: &Presence, now: Instant) {
        self.deadlines.insert(presence.id.clone(), now + presence.lifetime());
    }

    /// Forgets a server that said goodbye; returns true if it was the last live one.
    pub(crate) fn farewell(&mut self, id: &str) -> bool {
        self.deadlines.remove(id).is_some() && self.deadlines.is_empty()
    }

    /// Forgets the servers silent past their lifetime: returns their ids, and whether that
    /// left none of a set that had some.
    pub(crate) fn expire(&mut self, now: Instant) -> (Vec<String>, bool) {
        let before = self.deadlines.len();
        let gone: Vec<String> =
            self.deadlines.extract_if(|_, deadline| *deadline <= now).map(|(id, _)| id).collect();
        (gone, before > 0 && self.deadlines.is_empty())
    }

    /// Whether server `id` is known.
    pub(crate) fn knows(&self, id: &str) -> bool {
        self.deadlines.contains_key(id)
    }

    /// Forgets every server (the link to the broker is lost).
    pub(crate) fn clear(&mut self) {
        self.deadlines.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(id: &str, heartbeat_ms: u64) -> Presence {
        Presence {
            online: true,
            role: Role::Server,
            id: id.into(),
            heartbeat_ms,
            title: "T".into(),
            replicas: Replicas::Single,
            brief: false,
            hello: Hello {
                protocol: 1,
                interface: "Thermostat".into(),
                version: "1.0.0".into(),
                hash: Some("sha256:00".into()),
                instance: "default".into(),
                description: None,
            },
        }
    }

    #[test]
    fn the_wire_form_is_flat() {
        let text = serde_json::to_string(&presence("s1", 1000)).unwrap();
        assert_eq!(
            text,
            r#"{"online":true,"role":"server","id":"s1","heartbeat_ms":1000,"title":"T","protocol":1,"interface":"Thermostat","version":"1.0.0","hash":"sha256:00","instance":"default"}"#
        );
        assert_eq!(serde_json::from_str::<Presence>(&text).unwrap(), presence("s1", 1000));
        assert!(serde_json::from_str::<Presence>(r#"{"online":true}"#).is_err());
        let shared = Presence { replicas: Replicas::Shared, ..presence("s1", 1000) };
        let text = serde_json::to_string(&shared).unwrap();
        assert!(text.contains(r#""title":"T","replicas":"shared","protocol":1"#), "{text}");
        assert_eq!(serde_json::from_str::<Presence>(&text).unwrap(), shared);
        let brief = Presence { brief: true, ..presence("s1", 1000) };
        let text = serde_json::to_string(&brief).unwrap();
        assert!(text.contains(r#""title":"T","brief":true,"protocol":1"#), "{text}");
        assert_eq!(serde_json::from_str::<Presence>(&text).unwrap(), brief);
    }

    #[test]
    fn silence_past_three_intervals_is_gone() {
        let start = Instant::now();
        let mut live = Liveness::default();
        live.heard(&presence("a", 100), start);
        live.heard(&presence("b", 1000), start);
        assert_eq!(live.expire(start + Duration::from_millis(299)), (vec![], false));
        let a_gone = live.expire(start + Duration::from_millis(300));
        assert_eq!(a_gone, (vec!["a".to_owned()], false), "b is still live");
        assert!(!live.knows("a") && live.knows("b"));
        assert_eq!(live.expire(start + Duration::from_secs(3)), (vec!["b".to_owned()], true));
        live.heard(&presence("a", 100), start);
        assert!(live.farewell("a"));
        assert!(!live.farewell("a"), "only once");
    }

    #[test]
    fn filters_match_by_interface_and_instance() {
        let hello = presence("a", 1).hello;
        assert!(DiscoveryFilter::any().matches(&hello));
        assert!(DiscoveryFilter::any().interface("Thermostat").instance("default").matches(&hello));
        assert!(!DiscoveryFilter::any().interface("Other").matches(&hello));
        assert!(!DiscoveryFilter::any().instance("kitchen").matches(&hello));
    }
}
