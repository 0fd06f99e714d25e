//! Where everything lives on a broker: the subjects and queues of the brokered layer, filled in
//! from the templates of `switchboard_wire::broker` (which `docs/wire/brokers.md` and the
//! generated references show), and the names that may go into them.

use switchboard_core::{
    InterfaceDescriptor, TransportError, TransportErrorKind, message::RequestId,
};
use switchboard_wire::broker::{self as wire, Address};

use crate::bus::ReplyRoute;

/// Where clients ask every server to announce itself at once.
pub const DISCOVER: &str = wire::DISCOVER.template;

/// The filter of every server's presence, for discovery.
pub const ALL_PRESENCE: &str = wire::ALL_PRESENCE;

/// The addresses of one service instance.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    interface: String,
    instance: String,
}

impl Layout {
    /// The layout of `interface` at `instance`; every name must be a valid segment.
    pub(crate) fn new(
        interface: &InterfaceDescriptor,
        instance: &str,
    ) -> Result<Self, TransportError> {
        check_segment("interface name", &interface.name)?;
        check_segment("instance", instance)?;
        let members = interface.methods.iter().map(|m| ("method", &*m.name));
        let members = members.chain(interface.signals.iter().map(|s| ("signal", &**s)));
        let members = members.chain(interface.properties.iter().map(|p| ("property", &*p.name)));
        for (what, name) in members {
            check_segment(what, name)?;
        }
        Ok(Layout { interface: interface.name.to_string(), instance: instance.to_owned() })
    }

    fn address(&self, address: &Address, member: &str) -> String {
        address.fill(&[
            ("interface", &self.interface),
            ("instance", &self.instance),
            ("member", member),
        ])
    }

    /// The queue of method `name`.
    pub(crate) fn method(&self, name: &str) -> String {
        self.address(&wire::METHOD, name)
    }

    /// The topic of signal `name`.
    pub(crate) fn signal(&self, name: &str) -> String {
        self.address(&wire::SIGNAL, name)
    }

    /// The topic of property `name`'s values.
    pub(crate) fn property(&self, name: &str) -> String {
        self.address(&wire::PROPERTY, name)
    }

    /// The queue of everything else a client asks: property reads, updates and watches,
    /// commands, goals, and the interface description.
    pub(crate) fn control(&self) -> String {
        self.address(&wire::CONTROL, "")
    }

    /// The queue of the replica whose server id is `replica`: cancel and attach of the goals
    /// it runs.
    pub(crate) fn replica(&self, replica: &str) -> String {
        wire::REPLICA.fill(&[
            ("interface", &self.interface),
            ("instance", &self.instance),
            ("replica", replica),
        ])
    }

    /// The topic where the instance's servers announce themselves.
    pub(crate) fn presence(&self) -> String {
        self.address(&wire::PRESENCE, "")
    }

    /// The topic where the instance's clients announce themselves to its servers.
    pub(crate) fn clients(&self) -> String {
        self.address(&wire::CLIENTS, "")
    }
}

/// A client's inbox: where answers and events to that client go.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    client: String,
    /// [`wire::INBOX`] of the client.
    base: String,
    route: ReplyRoute,
}

impl Inbox {
    /// The inbox of client `client` on a bus whose answers take `route`.
    pub(crate) fn new(client: &str, route: ReplyRoute) -> Self {
        Inbox { client: client.to_owned(), base: wire::INBOX.fill(&[("client", client)]), route }
    }

    /// What the client subscribes to (with [`ReplyRoute::Subjects`]: every request's reply
    /// subject and the events' subject, under the inbox) or consumes.
    pub(crate) fn receive(&self) -> String {
        match self.route {
            ReplyRoute::Subjects => format!("{}.>", self.base),
            _ => self.base.clone(),
        }
    }

    /// Where the answer to request `id` goes; without an id, where events go.
    pub(crate) fn reply_to(&self, id: Option<RequestId>) -> String {
        match (self.route, id) {
            (ReplyRoute::Subjects, Some(id)) => {
                wire::INBOX_REPLY.fill(&[("client", &self.client), ("request", &id.to_string())])
            }
            (ReplyRoute::Subjects, None) => self.events(),
            _ => self.base.clone(),
        }
    }

    /// Where events to the client go (signals to it alone, goal events, a watch's first value).
    pub(crate) fn events(&self) -> String {
        match self.route {
            ReplyRoute::Subjects => wire::INBOX_EVENTS.fill(&[("client", &self.client)]),
            _ => self.base.clone(),
        }
    }

    /// Whether requests must carry their correlation id in the envelope: only where the reply
    /// address does not already say it.
    pub(crate) fn needs_correlation(&self) -> bool {
        self.route != ReplyRoute::Subjects
    }

    /// The request a message that arrived on `address` answers, read from the address itself
    /// (with [`ReplyRoute::Subjects`]).
    pub(crate) fn request_of(&self, address: &str) -> Option<RequestId> {
        if self.route != ReplyRoute::Subjects {
            return None;
        }
        address.strip_prefix(&self.base)?.strip_prefix('.')?.parse().ok()
    }
}

/// Checks a node's RPC name or topic (`Naming::Node`): dotted segments, each one a valid
/// segment (see [`valid_segment`]), used on the broker as they are.
pub(crate) fn check_node_name(what: &str, name: &str) -> Result<(), TransportError> {
    if !name.is_empty() && name.len() <= 1024 && name.split('.').all(valid_segment) {
        return Ok(());
    }
    Err(TransportError::new(
        TransportErrorKind::InvalidAddress,
        format!(
            "{what} `{name}` cannot be used on a broker: it must be dotted segments (`sensors.front`), each 1 to 128 bytes without whitespace or any of . * > # + / ? [ ]"
        ),
    ))
}

/// Checks a node's topic filter: dotted segments, where `*` stands for one and a last `>` for
/// one or more.
pub(crate) fn check_node_filter(filter: &str) -> Result<(), TransportError> {
    let segments: Vec<&str> = filter.split('.').collect();
    let last = segments.len() - 1;
    let valid = segments.iter().enumerate().all(|(at, segment)| {
        *segment == "*" || (*segment == ">" && at == last) || valid_segment(segment)
    });
    if valid && filter.len() <= 1024 {
        return Ok(());
    }
    Err(TransportError::new(
        TransportErrorKind::InvalidAddress,
        format!(
            "topic filter `{filter}` cannot be used on a broker: it must be dotted segments, each `*` (any one segment), a last `>` (one or more) or a name without whitespace or any of . * > # + / ? [ ]"
        ),
    ))
}

/// The reply queue of one request of a node's client: `rpc-` and 32 hex digits, as commlib-py
/// names its own (no dots, so an MQTT peer that maps dots to slashes leaves it alone).
pub(crate) fn reply_queue() -> String {
    format!("{}{}", switchboard_wire::node::REPLY_QUEUE_PREFIX, crate::client::random_id())
}

/// Whether `name` can be one segment of a broker address: not empty, at most 128 bytes, and
/// free of separators, wildcards and glob characters of any broker (`.` `*` `>` `#` `+` `/`
/// `?` `[` `]`), whitespace and control characters.
pub(crate) fn valid_segment(name: &str) -> bool {
    let forbidden = |c: char| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '.' | '*' | '>' | '#' | '+' | '/' | '?' | '[' | ']')
    };
    // Every request's client id goes through here: plain ASCII is checked byte by byte.
    let clean = if name.is_ascii() {
        !name.bytes().any(|b| forbidden(char::from(b)))
    } else {
        !name.chars().any(forbidden)
    };
    !name.is_empty() && name.len() <= 128 && clean
}

fn check_segment(what: &str, name: &str) -> Result<(), TransportError> {
    if valid_segment(name) {
        return Ok(());
    }
    Err(TransportError::new(
        TransportErrorKind::InvalidAddress,
        format!(
            "{what} `{name}` cannot be used on a broker: it becomes one segment of an address, so it must be 1 to 128 bytes without whitespace or any of . * > # + / ? [ ]"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use switchboard_core::{MethodDescriptor, PropertyDescriptor};

    use super::*;

    fn interface(method: &'static str) -> InterfaceDescriptor {
        InterfaceDescriptor {
            name: "Thermostat".into(),
            version: "1.0.0".into(),
            title: "Thermostat".into(),
            hash: "".into(),
            description: "{}".into(),
            methods: vec![MethodDescriptor { name: method.into(), timeout: None }].into(),
            signals: Cow::Borrowed(&[Cow::Borrowed("changed")]),
            properties: vec![PropertyDescriptor { name: "setpoint".into(), read_only: false }]
                .into(),
            topic_params: Cow::Borrowed(&[]),
            topic_templates: Cow::Borrowed(&[]),
        }
    }

    #[test]
    fn the_table() {
        let layout = Layout::new(&interface("boost"), "kitchen").unwrap();
        assert_eq!(layout.method("boost"), "Thermostat.kitchen.method.boost");
        assert_eq!(layout.signal("changed"), "Thermostat.kitchen.signal.changed");
        assert_eq!(layout.property("setpoint"), "Thermostat.kitchen.property.setpoint");
        assert_eq!(layout.control(), "Thermostat.kitchen.control");
        assert_eq!(layout.presence(), "_sb.presence.Thermostat.kitchen");
        assert_eq!(layout.clients(), "_sb.clients.Thermostat.kitchen");

        let subjects = Inbox::new("c1", ReplyRoute::Subjects);
        assert_eq!(subjects.receive(), "_sb.inbox.c1.>");
        assert_eq!(subjects.reply_to(Some(7)), "_sb.inbox.c1.7");
        assert_eq!(subjects.reply_to(None), "_sb.inbox.c1.event");
        assert_eq!(subjects.request_of("_sb.inbox.c1.7"), Some(7));
        assert_eq!(subjects.request_of("_sb.inbox.c1.event"), None);
        assert_eq!(subjects.request_of("_sb.inbox.c10.7"), None);
        assert!(!subjects.needs_correlation());
        let queue = Inbox::new("c1", ReplyRoute::Queue);
        assert_eq!(
            (queue.receive(), queue.reply_to(Some(7)), queue.events()),
            ("_sb.inbox.c1".into(), "_sb.inbox.c1".into(), "_sb.inbox.c1".into())
        );
        assert_eq!(queue.request_of("_sb.inbox.c1"), None);
        assert!(queue.needs_correlation());
    }

    /// The layer puts on the broker exactly what the wire description (which the documents
    /// show) says for each kind of address, and the description keeps what the layer relies on:
    /// a NATS reply subject and the events' subject lie under the inbox, and presence under the
    /// discovery filter.
    #[test]
    fn the_layer_uses_the_wire_description() {
        let layout = Layout::new(&interface("boost"), "kitchen").unwrap();
        let instance = [("interface", "Thermostat"), ("instance", "kitchen")];
        let member = |name| [instance[0], instance[1], ("member", name)];
        let subjects = Inbox::new("c1", ReplyRoute::Subjects);
        let queue = Inbox::new("c1", ReplyRoute::Queue);
        for address in wire::ADDRESSES {
            let (used, described) = match address.key {
                "method" => (layout.method("boost"), address.fill(&member("boost"))),
                "signal" => (layout.signal("changed"), address.fill(&member("changed"))),
                "property" => (layout.property("setpoint"), address.fill(&member("setpoint"))),
                "control" => (layout.control(), address.fill(&instance)),
                "replica" => (
                    layout.replica("s1"),
                    address.fill(&[instance[0], instance[1], ("replica", "s1")]),
                ),
                "presence" => (layout.presence(), address.fill(&instance)),
                "clients" => (layout.clients(), address.fill(&instance)),
                "discover" => (DISCOVER.to_owned(), address.fill(&[])),
                "inbox" => (queue.reply_to(Some(7)), address.fill(&[("client", "c1")])),
                "inboxReply" => (
                    subjects.reply_to(Some(7)),
                    address.fill(&[("client", "c1"), ("request", "7")]),
                ),
                "inboxEvents" => (subjects.events(), address.fill(&[("client", "c1")])),
                other => panic!("the layer does not use the `{other}` address of the description"),
            };
            assert_eq!(used, described, "{}", address.key);
            assert!(!described.contains(['{', '}']), "{}: {described}", address.key);
        }
        let inbox = format!("{}.", wire::INBOX.template);
        assert!(wire::INBOX_REPLY.template.starts_with(&inbox));
        assert!(wire::INBOX_EVENTS.template.starts_with(&inbox));
        assert_eq!(subjects.request_of(&subjects.reply_to(Some(7))), Some(7));
        assert_eq!(
            (queue.events(), subjects.receive()),
            (queue.reply_to(None), format!("{}.>", queue.receive()))
        );
        assert!(
            ALL_PRESENCE
                .strip_suffix('>')
                .is_some_and(|prefix| layout.presence().starts_with(prefix))
        );
        assert!(reply_queue().starts_with(switchboard_wire::node::REPLY_QUEUE_PREFIX));
    }

    #[test]
    fn node_names_and_filters() {
        for good in ["demo.add_two_ints", "sensors", "a-b.c_d.e:1"] {
            assert!(check_node_name("RPC", good).is_ok(), "{good}");
            assert!(check_node_filter(good).is_ok(), "{good}");
        }
        for bad in ["", "a..b", ".a", "a.", "a b", "a.*", "a/b", "a.>", "x?"] {
            let error = check_node_name("topic", bad).unwrap_err();
            assert_eq!(error.kind(), TransportErrorKind::InvalidAddress, "{bad}");
            assert!(error.message().contains(&format!("topic `{bad}`")), "{error}");
        }
        for good in ["a.*", "*.b", "a.>", ">", "a.*.c.>"] {
            assert!(check_node_filter(good).is_ok(), "{good}");
        }
        for bad in ["a.>.b", "a..b", "a*", "a.#", ""] {
            assert!(check_node_filter(bad).is_err(), "{bad}");
        }
        let reply = reply_queue();
        assert!(reply.starts_with("rpc-") && reply.len() == 36 && !reply.contains('.'), "{reply}");
    }

    #[test]
    fn names_must_be_single_segments() {
        for bad in ["a.b", "*", ">", "a#", "a b", "", "a/b", "a+b", "x?", "[x]", "tab\t"] {
            let error = Layout::new(&interface("boost"), bad).unwrap_err();
            assert_eq!(error.kind(), TransportErrorKind::InvalidAddress, "{bad}");
            assert!(error.message().contains("instance"), "{error}");
        }
        let error = Layout::new(&interface("boost.now"), "kitchen").unwrap_err();
        assert!(error.message().contains("method `boost.now`"), "{error}");
        assert!(Layout::new(&interface("boost"), "kitchen-2:a_b").is_ok());
    }
}
