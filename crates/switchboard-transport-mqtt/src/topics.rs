//! StingerIPC's topic templates: the defaults (`switchboard_wire::mqtt`, which the generated
//! documents show too), the interface's overrides, filling them in and reading placeholders
//! back out of a received topic.

use std::collections::BTreeMap;

use rumqttc::v5::mqttbytes::QoS;
use switchboard_core::{InterfaceDescriptor, TransportError, TransportErrorKind};
use switchboard_wire::mqtt::{self, TopicKind};

/// One kind of topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Signals,
    PropertyValues,
    PropertyUpdates,
    PropertyUpdateResponses,
    MethodRequests,
    MethodResponses,
    InterfaceDiscovery,
    Lwt,
    Commands,
    ClientSignals,
    /// Append `/goal`, `/cancel` or `/attach`.
    ActionRequests,
    ActionEvents,
    InterfaceSchema,
}

impl Kind {
    /// What the wire description says of this kind: its key, default template and QoS.
    fn wire(self) -> &'static TopicKind {
        match self {
            Kind::Signals => &mqtt::SIGNALS,
            Kind::PropertyValues => &mqtt::PROPERTY_VALUES,
            Kind::PropertyUpdates => &mqtt::PROPERTY_UPDATES,
            Kind::PropertyUpdateResponses => &mqtt::PROPERTY_UPDATE_RESPONSES,
            Kind::MethodRequests => &mqtt::METHOD_REQUESTS,
            Kind::MethodResponses => &mqtt::METHOD_RESPONSES,
            Kind::InterfaceDiscovery => &mqtt::INTERFACE_DISCOVERY,
            Kind::Lwt => &mqtt::LWT,
            Kind::Commands => &mqtt::COMMANDS,
            Kind::ClientSignals => &mqtt::CLIENT_SIGNALS,
            Kind::ActionRequests => &mqtt::ACTION_REQUESTS,
            Kind::ActionEvents => &mqtt::ACTION_EVENTS,
            Kind::InterfaceSchema => &mqtt::INTERFACE_SCHEMA,
        }
    }

    fn key(self) -> &'static str {
        self.wire().key
    }

    /// The QoS the wire description gives this kind.
    pub(crate) fn qos(self) -> QoS {
        qos(self.wire().qos)
    }

    /// Whether the wire description has this kind published retained.
    pub(crate) fn retained(self) -> bool {
        self.wire().retained
    }

    /// The maximum QoS a subscription to this kind asks for (see [`mqtt::SUBSCRIPTION_QOS`]).
    pub(crate) fn subscription_qos(self) -> QoS {
        match self {
            Kind::Commands => self.qos(),
            _ => qos(mqtt::SUBSCRIPTION_QOS),
        }
    }
}

/// rumqttc's QoS for a level of the wire description (0, 1, or 2 and above).
pub(crate) fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The topic layout of one interface instance, as seen by one MQTT connection.
#[derive(Debug, Clone)]
pub(crate) struct Topics {
    templates: BTreeMap<&'static str, String>,
    /// Known placeholder values: interface name, service id (may be `+`), client id, params.
    values: BTreeMap<String, String>,
}

/// True when `level` can be one MQTT topic level: non-empty, no `/`, `+`, `#`, no NUL.
pub(crate) fn valid_level(level: &str) -> bool {
    !level.is_empty() && !level.contains(['/', '+', '#', '\0'])
}

/// True when `name` is a valid topic param name, as StingerIPC defines it.
pub(crate) fn valid_param_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('_')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
        && !mqtt::is_reserved(name)
}

impl Topics {
    /// The layout for `interface`, with the given service id, client id and param values.
    ///
    /// A param without a value becomes a `+` wildcard, which only subscriptions can use.
    pub(crate) fn new(
        interface: &InterfaceDescriptor,
        service_id: &str,
        client_id: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Self, TransportError> {
        let mut templates: BTreeMap<&'static str, String> =
            mqtt::TOPIC_KINDS.iter().map(|kind| (kind.key, kind.template.to_owned())).collect();
        for (key, template) in interface.topic_templates.iter() {
            match mqtt::topic_kind(key) {
                Some(kind) => {
                    templates.insert(kind.key, template.to_string());
                }
                None => tracing::warn!(%key, "unknown topic template ignored"),
            }
        }
        let mut values = BTreeMap::new();
        values.insert("interface_name".to_owned(), interface.name.to_string());
        values.insert("service_id".to_owned(), service_id.to_owned());
        values.insert("instance_id".to_owned(), service_id.to_owned());
        values.insert("client_id".to_owned(), client_id.to_owned());
        for param in interface.topic_params.iter() {
            let value = params.get(&**param).cloned().unwrap_or_else(|| "+".to_owned());
            values.insert(param.to_string(), value);
        }
        for (name, template) in &templates {
            for placeholder in placeholders(template) {
                let known = values.contains_key(placeholder)
                    || mqtt::is_reserved(placeholder)
                    || interface.topic_params.iter().any(|p| p == placeholder);
                if !known {
                    return Err(TransportError::new(
                        TransportErrorKind::InvalidAddress,
                        format!(
                            "topic template `{name}` (`{template}`) uses `{{{placeholder}}}`, which is neither a standard placeholder nor a topic param of interface {}",
                            interface.name
                        ),
                    ));
                }
            }
        }
        Ok(Topics { templates, values })
    }

    /// Fills in template `kind`; `name` is the signal, property or method name (or `+`).
    pub(crate) fn topic(&self, kind: Kind, name: &str) -> String {
        let template = &self.templates[kind.key()];
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template.as_str();
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let placeholder = &rest[start + 1..start + end];
            match placeholder {
                "signal_name" | "property_name" | "method_name" | "command_name"
                | "action_name" => out.push_str(name),
                other => out.push_str(self.values.get(other).map_or("+", String::as_str)),
            }
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The same layout as seen for another client id (`+` for a wildcard).
    pub(crate) fn for_client(&self, client_id: &str) -> Topics {
        let mut topics = self.clone();
        topics.values.insert("client_id".to_owned(), client_id.to_owned());
        topics
    }

    /// The topic of action request `op` (`goal`, `cancel` or `attach`) of `action` to one
    /// replica only (`replicas=shared`): the action's request topic, then `op`, then the
    /// replica's client id. The replicas' shared filter (`…/action/+/+`) does not match it.
    pub(crate) fn replica_action(&self, action: &str, op: &str, replica: &str) -> String {
        format!("{}/{op}/{replica}", self.topic(Kind::ActionRequests, action))
    }

    /// The filter with which replica `client_id` takes the action requests sent to it alone.
    pub(crate) fn replica_action_filter(&self, client_id: &str) -> String {
        self.replica_action("+", "+", client_id)
    }

    /// Reads placeholder `wanted` out of `topic`, which was built from template `kind`.
    pub(crate) fn extract(&self, kind: Kind, topic: &str, wanted: &str) -> Option<String> {
        extract(&self.templates[kind.key()], topic, wanted)
    }
}

/// A topic of `kind` in the default layout, for connections that serve no one interface
/// (discovery, a will): `{client_id}` is `client_id`, every other placeholder the `+` wildcard.
pub(crate) fn in_default_layout(kind: Kind, client_id: &str) -> String {
    let mut topic = kind.wire().template.to_owned();
    for placeholder in placeholders(kind.wire().template) {
        let value = if placeholder == "client_id" { client_id } else { "+" };
        topic = topic.replace(&format!("{{{placeholder}}}"), value);
    }
    topic
}

/// The placeholder names in a template.
fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template.split('{').skip(1).filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// Matches `topic` against `template` level by level and returns the value of `wanted`.
///
/// Each level of the template is literal text with at most one placeholder; other placeholders
/// match any single level.
pub(crate) fn extract(template: &str, topic: &str, wanted: &str) -> Option<String> {
    let template_levels: Vec<&str> = template.split('/').collect();
    let topic_levels: Vec<&str> = topic.split('/').collect();
    if template_levels.len() != topic_levels.len() {
        return None;
    }
    let mut found = None;
    for (pattern, level) in template_levels.iter().zip(&topic_levels) {
        match pattern.find('{').zip(pattern.find('}')) {
            None => {
                if pattern != level {
                    return None;
                }
            }
            Some((start, end)) if start < end => {
                let (prefix, suffix) = (&pattern[..start], &pattern[end + 1..]);
                let value = level.strip_prefix(prefix)?.strip_suffix(suffix)?;
                if &pattern[start + 1..end] == wanted {
                    found = Some(value.to_owned());
                }
            }
            Some(_) => return None,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(
        templates: &[(&'static str, &'static str)],
        params: &[&'static str],
    ) -> InterfaceDescriptor {
        InterfaceDescriptor {
            name: "Thermostat".into(),
            version: "1.0.0".into(),
            title: "Thermostat".into(),
            hash: "sha256:00".into(),
            description: "{}".into(),
            methods: vec![].into(),
            signals: vec![].into(),
            properties: vec![].into(),
            topic_params: params.iter().map(|p| (*p).into()).collect::<Vec<_>>().into(),
            topic_templates: templates
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect::<Vec<_>>()
                .into(),
        }
    }

    #[test]
    fn default_layout() {
        let topics = Topics::new(&descriptor(&[], &[]), "probe-1", "me", &BTreeMap::new()).unwrap();
        assert_eq!(topics.topic(Kind::Signals, "x"), "Thermostat/probe-1/signal/x");
        assert_eq!(topics.topic(Kind::PropertyValues, "+"), "Thermostat/probe-1/property/+/value");
        assert_eq!(
            topics.topic(Kind::MethodResponses, "boost"),
            "client/me/Thermostat/method/boost/response"
        );
        assert_eq!(topics.topic(Kind::Lwt, ""), "client/me/online");
        assert_eq!(topics.topic(Kind::InterfaceDiscovery, ""), "Thermostat/probe-1/interface");
        assert_eq!(
            topics.extract(
                Kind::MethodRequests,
                "Thermostat/probe-1/method/boost/request",
                "method_name"
            ),
            Some("boost".into())
        );
        assert_eq!(
            topics.extract(
                Kind::MethodResponses,
                "client/abc/Thermostat/method/boost/response",
                "client_id"
            ),
            Some("abc".into())
        );
        assert_eq!(
            topics.extract(Kind::MethodRequests, "Thermostat/probe-1/method/boost", "method_name"),
            None
        );
    }

    #[test]
    fn the_default_layout_for_discovery() {
        assert_eq!(in_default_layout(Kind::InterfaceDiscovery, "+"), "+/+/interface");
        assert_eq!(in_default_layout(Kind::Lwt, "+"), "client/+/online");
        assert_eq!(in_default_layout(Kind::Lwt, "me"), "client/me/online");
    }

    #[test]
    fn templates_and_params() {
        let d = descriptor(
            &[("signals", "{prefix}/{interface_name}/{service_id}/sig-{signal_name}")],
            &["prefix"],
        );
        let params = BTreeMap::from([("prefix".to_owned(), "home1".to_owned())]);
        let topics = Topics::new(&d, "a", "c", &params).unwrap();
        assert_eq!(topics.topic(Kind::Signals, "s"), "home1/Thermostat/a/sig-s");
        assert_eq!(
            topics.extract(Kind::Signals, "home1/Thermostat/a/sig-s", "signal_name"),
            Some("s".into())
        );
        let wild = Topics::new(&d, "+", "c", &BTreeMap::new()).unwrap();
        assert_eq!(wild.topic(Kind::Signals, "s"), "+/Thermostat/+/sig-s");
        let bad = descriptor(&[("signals", "{nope}/{signal_name}")], &[]);
        assert!(Topics::new(&bad, "a", "c", &BTreeMap::new()).is_err());
        assert!(
            valid_param_name("prefix")
                && valid_param_name("a_b1")
                && !valid_param_name("client_id")
        );
        assert!(!valid_param_name("a__b") && !valid_param_name("_a") && !valid_param_name("a-b"));
    }

    /// The wire description holds StingerIPC's QoS and retain flags: requests and replies at
    /// the RPC QoS, commands at QoS 2, everything else at QoS 1, and only values, interface
    /// info, presence and descriptions retained. The transport publishes each kind as the table
    /// says (`Conn::publish…` take the kind); `tests/it/mqtt.rs` watches it do so on a broker
    /// (`every_publish_has_the_qos_and_retain_flag_of_the_wire_description`).
    #[test]
    fn the_wire_description_says_what_the_transport_does() {
        let every = [
            Kind::Signals,
            Kind::PropertyValues,
            Kind::PropertyUpdates,
            Kind::PropertyUpdateResponses,
            Kind::MethodRequests,
            Kind::MethodResponses,
            Kind::InterfaceDiscovery,
            Kind::Lwt,
            Kind::Commands,
            Kind::ClientSignals,
            Kind::ActionRequests,
            Kind::ActionEvents,
            Kind::InterfaceSchema,
        ];
        assert_eq!(every.len(), mqtt::TOPIC_KINDS.len());
        for kind in every {
            let wire = kind.wire();
            let expected = match kind {
                Kind::MethodRequests
                | Kind::MethodResponses
                | Kind::PropertyUpdates
                | Kind::PropertyUpdateResponses
                | Kind::ActionRequests => mqtt::RPC_QOS,
                Kind::Commands => 2,
                _ => 1,
            };
            assert_eq!(wire.qos, expected, "{}", wire.key);
            let retained = matches!(
                kind,
                Kind::PropertyValues | Kind::InterfaceDiscovery | Kind::Lwt | Kind::InterfaceSchema
            );
            assert_eq!(wire.retained, retained, "{}", wire.key);
        }
        assert_eq!(Kind::Commands.qos(), QoS::ExactlyOnce);
        assert_eq!(Kind::Commands.subscription_qos(), QoS::ExactlyOnce);
        assert_eq!(Kind::Signals.subscription_qos(), qos(mqtt::SUBSCRIPTION_QOS));
        assert_eq!(crate::MqttOptions::default().rpc_qos, mqtt::RPC_QOS);
    }
}
