//! The MQTT topic layout of an interface: StingerIPC's default templates, the interface's
//! overrides, and the addresses they give once the interface and item names are filled in.
//!
//! This mirrors `switchboard-transport-mqtt`'s `topics.rs` (a test checks the defaults match).

use switchboard_idl::Interface;

/// The template kinds, by configuration key, with their defaults.
pub(crate) const DEFAULTS: &[(&str, &str)] = &[
    ("signals", "{interface_name}/{service_id}/signal/{signal_name}"),
    ("propertyValues", "{interface_name}/{service_id}/property/{property_name}/value"),
    ("propertyUpdates", "{interface_name}/{service_id}/property/{property_name}/update"),
    (
        "propertyUpdateResponses",
        "client/{client_id}/{interface_name}/property/{property_name}/update/response",
    ),
    ("methodRequests", "{interface_name}/{service_id}/method/{method_name}/request"),
    ("methodResponses", "client/{client_id}/{interface_name}/method/{method_name}/response"),
    ("interfaceDiscovery", "{interface_name}/{service_id}/interface"),
    ("lwt", "client/{client_id}/online"),
    ("commands", "{interface_name}/{service_id}/command/{command_name}"),
    ("clientSignals", "client/{client_id}/{interface_name}/signal/{signal_name}"),
    ("actionRequests", "{interface_name}/{service_id}/action/{action_name}"),
    ("actionEvents", "client/{client_id}/{interface_name}/action/{action_name}/event"),
    ("interfaceSchema", "{interface_name}/{service_id}/schema"),
];

/// Placeholders filled with the item's own name.
const NAME_PLACEHOLDERS: &[&str] =
    &["signal_name", "property_name", "method_name", "command_name", "action_name"];

/// The topic templates of one interface.
#[derive(Debug, Clone)]
pub(crate) struct Topics {
    interface: String,
    templates: Vec<(&'static str, String)>,
}

impl Topics {
    /// The layout of `iface`: the defaults with its `configuration.topics` overrides.
    pub(crate) fn new(iface: &Interface) -> Self {
        let templates = DEFAULTS
            .iter()
            .map(|(key, default)| {
                let template = iface
                    .configuration
                    .topics
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or_else(|| (*default).to_string(), |(_, t)| t.clone());
                (*key, template)
            })
            .collect();
        Self { interface: iface.name.clone(), templates }
    }

    /// The address of template `key` for the item `name`: the interface and item names filled
    /// in, `{instance_id}` spelled `{service_id}`, every other placeholder left as a parameter.
    pub(crate) fn address(&self, key: &str, name: &str) -> String {
        let template = self
            .templates
            .iter()
            .find(|(k, _)| *k == key)
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
