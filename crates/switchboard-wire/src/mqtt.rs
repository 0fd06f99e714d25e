//! The MQTT transport's topics (`docs/wire/mqtt.md`): StingerIPC's topic templates and
//! switchboard's own, the placeholders they use, and the QoS and retain flag each is published
//! with.

/// One kind of topic: its template and how messages on it are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicKind {
    /// The configuration key that names it (StingerIPC's camelCase key for its own kinds).
    pub key: &'static str,
    /// The default template.
    pub template: &'static str,
    /// Whether an interface file may replace the template (`configuration.topics.<key>`):
    /// true for StingerIPC's kinds, false for switchboard's own.
    pub configurable: bool,
    /// The placeholders a template of this kind must contain.
    pub required: &'static [&'static str],
    /// The QoS messages are published with (for requests and replies, the default of the
    /// transport's RPC QoS setting, [`RPC_QOS`]).
    pub qos: u8,
    /// Whether messages are published retained.
    pub retained: bool,
}

/// The QoS of requests and replies unless configured otherwise: QoS 1 through a
/// Debian-default mosquitto stalls each call on Nagle and delayed ACKs.
pub const RPC_QOS: u8 = 0;

/// The maximum QoS every subscription asks for, but for the command topics', which ask for
/// [`COMMANDS`]' own QoS so that commands are exactly-once end to end (StingerIPC 0.3.0).
pub const SUBSCRIPTION_QOS: u8 = 1;

/// The QoS of a node's publications (`switchboard::node` over MQTT, in commlib-py's notation),
/// commlib-py's own; a node's RPC requests and replies go at the RPC QoS ([`RPC_QOS`]).
pub const NODE_QOS: u8 = 0;

/// Signals to every subscriber.
pub const SIGNALS: TopicKind = TopicKind {
    key: "signals",
    template: "{interface_name}/{service_id}/signal/{signal_name}",
    configurable: true,
    required: &["signal_name"],
    qos: 1,
    retained: false,
};
/// A property's current value.
pub const PROPERTY_VALUES: TopicKind = TopicKind {
    key: "propertyValues",
    template: "{interface_name}/{service_id}/property/{property_name}/value",
    configurable: true,
    required: &["property_name", "service_id"],
    qos: 1,
    retained: true,
};
/// A client's update of a property.
pub const PROPERTY_UPDATES: TopicKind = TopicKind {
    key: "propertyUpdates",
    template: "{interface_name}/{service_id}/property/{property_name}/update",
    configurable: true,
    required: &["property_name"],
    qos: RPC_QOS,
    retained: false,
};
/// The answer to a property update.
pub const PROPERTY_UPDATE_RESPONSES: TopicKind = TopicKind {
    key: "propertyUpdateResponses",
    template: "client/{client_id}/{interface_name}/property/{property_name}/update/response",
    configurable: true,
    required: &["property_name"],
    qos: RPC_QOS,
    retained: false,
};
/// A method call.
pub const METHOD_REQUESTS: TopicKind = TopicKind {
    key: "methodRequests",
    template: "{interface_name}/{service_id}/method/{method_name}/request",
    configurable: true,
    required: &["method_name"],
    qos: RPC_QOS,
    retained: false,
};
/// The answer to a method call.
pub const METHOD_RESPONSES: TopicKind = TopicKind {
    key: "methodResponses",
    template: "client/{client_id}/{interface_name}/method/{method_name}/response",
    configurable: true,
    required: &["method_name"],
    qos: RPC_QOS,
    retained: false,
};
/// A server's interface info, which discovery reads.
pub const INTERFACE_DISCOVERY: TopicKind = TopicKind {
    key: "interfaceDiscovery",
    template: "{interface_name}/{service_id}/interface",
    configurable: true,
    required: &[],
    qos: 1,
    retained: true,
};
/// Each connection's presence (its last will).
pub const LWT: TopicKind = TopicKind {
    key: "lwt",
    template: "client/{client_id}/online",
    configurable: true,
    required: &[],
    qos: 1,
    retained: true,
};
/// A command, which has no answer.
pub const COMMANDS: TopicKind = TopicKind {
    key: "commands",
    template: "{interface_name}/{service_id}/command/{command_name}",
    configurable: true,
    required: &["command_name"],
    qos: 2,
    retained: false,
};
/// A signal to one client (switchboard's own).
pub const CLIENT_SIGNALS: TopicKind = TopicKind {
    key: "clientSignals",
    template: "client/{client_id}/{interface_name}/signal/{signal_name}",
    configurable: false,
    required: &["signal_name"],
    qos: 1,
    retained: false,
};
/// A goal request of an action, with `/goal`, `/cancel` or `/attach` appended (switchboard's
/// own).
pub const ACTION_REQUESTS: TopicKind = TopicKind {
    key: "actionRequests",
    template: "{interface_name}/{service_id}/action/{action_name}",
    configurable: false,
    required: &["action_name"],
    qos: RPC_QOS,
    retained: false,
};
/// Replies and events of an action's goals (switchboard's own).
pub const ACTION_EVENTS: TopicKind = TopicKind {
    key: "actionEvents",
    template: "client/{client_id}/{interface_name}/action/{action_name}/event",
    configurable: false,
    required: &["action_name"],
    qos: 1,
    retained: false,
};
/// The interface description (switchboard's own).
pub const INTERFACE_SCHEMA: TopicKind = TopicKind {
    key: "interfaceSchema",
    template: "{interface_name}/{service_id}/schema",
    configurable: false,
    required: &[],
    qos: 1,
    retained: true,
};

/// Every kind of topic: StingerIPC's first, then switchboard's own.
pub const TOPIC_KINDS: &[TopicKind] = &[
    SIGNALS,
    PROPERTY_VALUES,
    PROPERTY_UPDATES,
    PROPERTY_UPDATE_RESPONSES,
    METHOD_REQUESTS,
    METHOD_RESPONSES,
    INTERFACE_DISCOVERY,
    LWT,
    COMMANDS,
    CLIENT_SIGNALS,
    ACTION_REQUESTS,
    ACTION_EVENTS,
    INTERFACE_SCHEMA,
];

/// The kind of topic named `key`, if there is one.
pub fn topic_kind(key: &str) -> Option<&'static TopicKind> {
    TOPIC_KINDS.iter().find(|kind| kind.key == key)
}

/// The placeholders filled with the item's own name (the signal, property, method, command or
/// action).
pub const NAME_PLACEHOLDERS: &[&str] =
    &["signal_name", "property_name", "method_name", "command_name", "action_name"];

/// The placeholders an interface file's templates may use besides its own topic params.
pub const PLACEHOLDERS: &[&str] = &[
    "interface_name",
    "service_id",
    "signal_name",
    "property_name",
    "method_name",
    "command_name",
    "client_id",
    "instance_id",
];

/// Whether `name` is a placeholder the transport fills in itself, which a topic param may not
/// be named.
pub fn is_reserved(name: &str) -> bool {
    PLACEHOLDERS.contains(&name) || NAME_PLACEHOLDERS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each template contains what it requires, and uses no placeholder the transport does not
    /// fill in.
    #[test]
    fn templates_are_consistent() {
        for kind in TOPIC_KINDS {
            let used: Vec<&str> = kind
                .template
                .split('{')
                .skip(1)
                .filter_map(|part| part.split_once('}').map(|(name, _)| name))
                .collect();
            for required in kind.required {
                assert!(used.contains(required), "{} lacks {required}", kind.key);
            }
            for name in used {
                assert!(is_reserved(name), "{} uses {name}", kind.key);
            }
            assert_eq!(topic_kind(kind.key), Some(kind));
        }
        assert_eq!(topic_kind("nope"), None);
    }
}
