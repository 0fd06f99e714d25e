//! The MQTT topic layout of an interface: the transport's templates
//! (`switchboard_wire::mqtt`), the interface's overrides, and the addresses they give once the
//! interface and item names are filled in.

use switchboard_idl::Interface;
use switchboard_wire::mqtt::{NAME_PLACEHOLDERS, TOPIC_KINDS, TopicKind};

/// The topic templates of one interface.
#[derive(Debug, Clone)]
pub(crate) struct Topics {
    interface: String,
    templates: Vec<(&'static str, String)>,
}

impl Topics {
    /// The layout of `iface`: the defaults with its `configuration.topics` overrides.
    pub(crate) fn new(iface: &Interface) -> Self {
        let templates = TOPIC_KINDS
            .iter()
            .map(|kind| {
                let template = iface
                    .configuration
                    .topics
                    .iter()
                    .find(|(k, _)| k == kind.key)
                    .map_or_else(|| kind.template.to_string(), |(_, t)| t.clone());
                (kind.key, template)
            })
            .collect();
        Self { interface: iface.name.clone(), templates }
    }

    /// The address of topics of `kind` for the item `name`: the interface and item names filled
    /// in, `{instance_id}` spelled `{service_id}`, every other placeholder left as a parameter.
    pub(crate) fn address(&self, kind: &TopicKind, name: &str) -> String {
        let template = self
            .templates
            .iter()
            .find(|(k, _)| *k == kind.key)
            .map(|(_, t)| t.as_str())
            .unwrap_or_default();
        let mut out = String::with_capacity(template.len() + 16);
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else { break };
            let placeholder = &rest[start + 1..start + len];
            if placeholder == "interface_name" {
                out.push_str(&self.interface);
            } else if NAME_PLACEHOLDERS.contains(&placeholder) {
                out.push_str(name);
            } else if placeholder == "instance_id" {
                out.push_str("{service_id}");
            } else {
                out.push('{');
                out.push_str(placeholder);
                out.push('}');
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// The placeholders left in an address, in order.
pub(crate) fn parameters(address: &str) -> Vec<String> {
    address
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_string()))
        .collect()
}
