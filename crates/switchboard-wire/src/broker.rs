//! The brokered layer's addresses on NATS, Redis and AMQP (`docs/wire/brokers.md`): the
//! subjects and queues of an interface's instance and of its clients. A node's endpoints are
//! named by [`crate::node`].
//!
//! Addresses are dotted segments; a template's placeholders (`{interface}`, `{instance}`,
//! `{member}`, `{client}`, `{request}`, `{replica}`) each stand for one segment.

/// How a broker delivers what is sent to an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A work queue: each message reaches one consumer (on NATS, a subject whose subscribers
    /// share a queue group named after it).
    Queue,
    /// A topic: each message reaches every subscriber.
    Topic,
    /// A queue on queue brokers (Redis, AMQP); on NATS, subjects under it that the client
    /// subscribes to with one wildcard.
    Inbox,
}

impl Delivery {
    /// The word the documents use: `queue`, `topic` or `inbox`.
    pub const fn word(self) -> &'static str {
        match self {
            Delivery::Queue => "queue",
            Delivery::Topic => "topic",
            Delivery::Inbox => "inbox",
        }
    }
}

/// One kind of address: its template, how it delivers and what travels on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// A stable name for the kind (`method`, `presence`, …).
    pub key: &'static str,
    /// The template, in dotted segments with `{placeholder}`s.
    pub template: &'static str,
    /// How the broker delivers it.
    pub delivery: Delivery,
    /// What travels on it, for people.
    pub carries: &'static str,
}

impl Address {
    /// The placeholders the template uses, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = &'static str> {
        self.template
            .split('{')
            .skip(1)
            .filter_map(|part| part.split_once('}').map(|(name, _)| name))
    }

    /// The template with each `{placeholder}` replaced by its value in `values`; a placeholder
    /// without a value stays as it is (a document shows `{instance}` that way).
    pub fn fill(&self, values: &[(&str, &str)]) -> String {
        let mut filled = String::with_capacity(self.template.len() + 64);
        let mut rest = self.template;
        while let Some(open) = rest.find('{') {
            filled.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}').map(|at| open + at) else { break };
            let name = &rest[open + 1..close];
            match values.iter().find(|(placeholder, _)| *placeholder == name) {
                Some((_, value)) => filled.push_str(value),
                None => filled.push_str(&rest[open..=close]),
            }
            rest = &rest[close + 1..];
        }
        filled.push_str(rest);
        filled
    }
}

/// The calls of one method: `{member}` is the method's name. commlib-py's `RPCClient(rpc_name=…)`
/// calls it.
pub const METHOD: Address = Address {
    key: "method",
    template: "{interface}.{instance}.method.{member}",
    delivery: Delivery::Queue,
    carries: "calls of the method (commlib-py's `RPCClient(rpc_name=…)` calls it)",
};
/// The emissions of one signal, as their bare payload: `{member}` is the signal's name.
/// commlib-py's `Subscriber(topic=…)` receives it.
pub const SIGNAL: Address = Address {
    key: "signal",
    template: "{interface}.{instance}.signal.{member}",
    delivery: Delivery::Topic,
    carries: "the signal, to every subscriber (commlib-py's `Subscriber(topic=…)` receives it)",
};
/// The values of one property: `{member}` is the property's name.
pub const PROPERTY: Address = Address {
    key: "property",
    template: "{interface}.{instance}.property.{member}",
    delivery: Delivery::Topic,
    carries: "the property's values, to every watcher",
};
/// Everything else a client asks of a server: property reads, updates and watches, commands,
/// goals and the interface description (`sb-op` says which).
pub const CONTROL: Address = Address {
    key: "control",
    template: "{interface}.{instance}.control",
    delivery: Delivery::Queue,
    carries: "property reads, updates and watches, commands, goals, the description (`sb-op` says which)",
};
/// One replica's own control queue: `{replica}` is the server's id (32 hex digits, as in its
/// presence). A server started with `replicas=shared` consumes it besides [`CONTROL`], and
/// names it in its answer to a goal (`sb-replica`), so that the goal's cancel and attach reach
/// the replica that runs it.
pub const REPLICA: Address = Address {
    key: "replica",
    template: "{interface}.{instance}.replica.{replica}",
    delivery: Delivery::Queue,
    carries: "(replicas) cancel and attach of the goals one replica runs",
};
/// A server's presence and heartbeats.
pub const PRESENCE: Address = Address {
    key: "presence",
    template: "_sb.presence.{interface}.{instance}",
    delivery: Delivery::Topic,
    carries: "each server's presence and heartbeats",
};
/// A client's presence and heartbeats, which its servers follow.
pub const CLIENTS: Address = Address {
    key: "clients",
    template: "_sb.clients.{interface}.{instance}",
    delivery: Delivery::Topic,
    carries: "each client's presence and heartbeats",
};
/// Where clients ask every server to announce itself at once.
pub const DISCOVER: Address = Address {
    key: "discover",
    template: "_sb.discover",
    delivery: Delivery::Topic,
    carries: "the discovery probe: every server announces itself at once",
};
/// A client's inbox: `{client}` is the client's id (32 hex digits). Answers, events to that
/// client alone and a watch's first value go there.
pub const INBOX: Address = Address {
    key: "inbox",
    template: "_sb.inbox.{client}",
    delivery: Delivery::Inbox,
    carries: "answers, events to one client, a watch's first value",
};
/// On a broker with reply subjects (NATS), the answer to request `{request}` of a client.
pub const INBOX_REPLY: Address = Address {
    key: "inboxReply",
    template: "_sb.inbox.{client}.{request}",
    delivery: Delivery::Inbox,
    carries: "(NATS) the answer to one request",
};
/// On a broker with reply subjects (NATS), the events to one client.
pub const INBOX_EVENTS: Address = Address {
    key: "inboxEvents",
    template: "_sb.inbox.{client}.event",
    delivery: Delivery::Inbox,
    carries: "(NATS) events to one client",
};

/// Every address of an interface's instance and its clients, in the order the documents list
/// them.
pub const ADDRESSES: &[Address] = &[
    METHOD,
    SIGNAL,
    PROPERTY,
    CONTROL,
    REPLICA,
    PRESENCE,
    CLIENTS,
    DISCOVER,
    INBOX,
    INBOX_REPLY,
    INBOX_EVENTS,
];

/// The filter of every server's presence, for discovery: [`PRESENCE`]'s fixed prefix and `>`.
pub const ALL_PRESENCE: &str = "_sb.presence.>";

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template names only placeholders of its own kind and keys are unique.
    #[test]
    fn templates_are_consistent() {
        let allowed = ["interface", "instance", "member", "client", "request", "replica"];
        for (at, address) in ADDRESSES.iter().enumerate() {
            for name in address.placeholders() {
                assert!(allowed.contains(&name), "{} uses {name}", address.key);
            }
            assert!(!address.template.contains(['*', '>', ' ']), "{}", address.key);
            assert!(
                ADDRESSES[..at].iter().all(|other| other.key != address.key),
                "{}",
                address.key
            );
        }
        assert!(ALL_PRESENCE.starts_with(PRESENCE.template.split('{').next().unwrap()));
        assert_eq!(METHOD.placeholders().collect::<Vec<_>>(), ["interface", "instance", "member"]);
        let values = [("interface", "Thermostat"), ("member", "boost")];
        assert_eq!(METHOD.fill(&values), "Thermostat.{instance}.method.boost");
        assert_eq!(DISCOVER.fill(&values), "_sb.discover");
    }
}
