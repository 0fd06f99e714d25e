//! The parts of an AsyncAPI 3.0 document this generator emits, as serde types.
//!
//! Only what the generator needs is modelled; every field is optional unless AsyncAPI requires
//! it, and maps keep insertion order so the document reads in interface-file order.

use std::collections::HashMap;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// A JSON object whose keys keep the order they were inserted in.
#[derive(Debug, Clone)]
pub(crate) struct OrderedMap<T> {
    entries: Vec<(String, T)>,
    /// The position of each key in `entries`, so inserting stays fast in large documents.
    index: HashMap<String, usize>,
}

impl<T> Default for OrderedMap<T> {
    fn default() -> Self {
        Self { entries: Vec::new(), index: HashMap::new() }
    }
}

impl<T> OrderedMap<T> {
    /// Appends `key`, replacing an earlier entry with the same key in place.
    pub(crate) fn insert(&mut self, key: impl Into<String>, value: T) {
        let key = key.into();
        match self.index.get(&key) {
            Some(&at) => self.entries[at].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    /// The value of `key`, to change it.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut T> {
        let at = *self.index.get(key)?;
        Some(&mut self.entries[at].1)
    }

    /// True when the map has no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<T: Serialize> Serialize for OrderedMap<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The root of the document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Document {
    pub(crate) asyncapi: &'static str,
    pub(crate) id: String,
    pub(crate) info: Info,
    pub(crate) servers: OrderedMap<Server>,
    pub(crate) default_content_type: &'static str,
    pub(crate) channels: OrderedMap<Channel>,
    pub(crate) operations: OrderedMap<Operation>,
    pub(crate) components: Components,
}

/// The Info Object.
#[derive(Debug, Serialize)]
pub(crate) struct Info {
    pub(crate) title: String,
    pub(crate) version: String,
    pub(crate) description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) license: Option<License>,
    /// The interface hash, which switchboard peers compare when they connect.
    #[serde(rename = "x-switchboard-hash")]
    pub(crate) hash: String,
}

/// The License Object.
#[derive(Debug, Serialize)]
pub(crate) struct License {
    pub(crate) name: String,
}

/// A Server Object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Server {
    pub(crate) host: &'static str,
    pub(crate) protocol: &'static str,
    pub(crate) protocol_version: &'static str,
    pub(crate) description: &'static str,
}

/// A Channel Object: one topic (template).
#[derive(Debug, Serialize)]
pub(crate) struct Channel {
    pub(crate) address: String,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) messages: OrderedMap<Message>,
    #[serde(skip_serializing_if = "OrderedMap::is_empty")]
    pub(crate) parameters: OrderedMap<Reference>,
}

/// A Reference Object.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Reference {
    #[serde(rename = "$ref")]
    pub(crate) target: String,
}

impl Reference {
    /// A reference to `#/<path>`; `/` and `~` inside the segments must already be escaped.
    pub(crate) fn to(path: impl AsRef<str>) -> Self {
        Self { target: format!("#/{}", path.as_ref()) }
    }
}

/// A Message Object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Message {
    pub(crate) name: String,
    pub(crate) title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    pub(crate) content_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) headers: Option<Schema>,
    pub(crate) payload: Schema,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) correlation_id: Option<CorrelationId>,
    pub(crate) bindings: MessageBindings,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) examples: Vec<MessageExample>,
}

/// A Correlation ID Object.
#[derive(Debug, Serialize)]
pub(crate) struct CorrelationId {
    pub(crate) description: String,
    pub(crate) location: String,
}

/// A Message Example Object.
#[derive(Debug, Serialize)]
pub(crate) struct MessageExample {
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) headers: Option<super::example::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<super::example::Value>,
}

/// Message bindings; only MQTT.
#[derive(Debug, Serialize)]
pub(crate) struct MessageBindings {
    pub(crate) mqtt: MqttMessageBinding,
}

/// The MQTT message binding, version 0.2.0.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MqttMessageBinding {
    pub(crate) content_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) correlation_data: Option<Schema>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_topic: Option<Schema>,
    pub(crate) binding_version: &'static str,
}

/// An Operation Object.
#[derive(Debug, Serialize)]
pub(crate) struct Operation {
    pub(crate) action: Action,
    pub(crate) channel: Reference,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) messages: Vec<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reply: Option<Reply>,
    pub(crate) bindings: OperationBindings,
}

/// Whether the application sends or receives.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    Send,
    Receive,
}

/// An Operation Reply Object.
#[derive(Debug, Serialize)]
pub(crate) struct Reply {
    pub(crate) channel: Reference,
    pub(crate) messages: Vec<Reference>,
}

/// Operation bindings; only MQTT.
#[derive(Debug, Serialize)]
pub(crate) struct OperationBindings {
    pub(crate) mqtt: MqttOperationBinding,
}

/// The MQTT operation binding, version 0.2.0.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MqttOperationBinding {
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message_expiry_interval: Option<u32>,
    pub(crate) binding_version: &'static str,
}

/// The Components Object.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Components {
    pub(crate) schemas: OrderedMap<Schema>,
    pub(crate) parameters: OrderedMap<Parameter>,
}

/// A Parameter Object.
#[derive(Debug, Serialize)]
pub(crate) struct Parameter {
    pub(crate) description: String,
    pub(crate) examples: Vec<String>,
}

/// A JSON Schema (draft 7, as AsyncAPI's default schema format).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Schema {
    #[serde(rename = "$ref", skip_serializing_if = "Option::is_none")]
    pub(crate) reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) ty: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) minimum: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) maximum: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pattern: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content_encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content_media_type: Option<&'static str>,
    #[serde(rename = "const", skip_serializing_if = "Option::is_none")]
    pub(crate) constant: Option<Value>,
    #[serde(rename = "enum", skip_serializing_if = "Vec::is_empty")]
    pub(crate) one_of_values: Vec<Value>,
    #[serde(rename = "x-enum-names", skip_serializing_if = "Vec::is_empty")]
    pub(crate) enum_names: Vec<String>,
    #[serde(rename = "x-enum-descriptions", skip_serializing_if = "Vec::is_empty")]
    pub(crate) enum_descriptions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) properties: Option<OrderedMap<Schema>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) required: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) additional_properties: Option<Additional>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_properties: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) items: Option<Box<Schema>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) one_of: Vec<Schema>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) all_of: Vec<Schema>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) examples: Vec<Value>,
}

/// `additionalProperties`: `false` or a schema.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Additional {
    Allowed(bool),
    Schema(Box<Schema>),
}

impl Schema {
    /// A schema of one JSON type.
    pub(crate) fn of(ty: &'static str) -> Self {
        Self { ty: Some(ty), ..Self::default() }
    }

    /// `{"$ref": "#/components/schemas/<name>"}`.
    pub(crate) fn component(name: &str) -> Self {
        Self { reference: Some(format!("#/components/schemas/{name}")), ..Self::default() }
    }

    /// Sets the description.
    pub(crate) fn describe(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// A closed object with `properties`, all of `required` present.
    pub(crate) fn object(properties: OrderedMap<Schema>, required: Vec<String>) -> Self {
        Self {
            ty: Some("object"),
            properties: Some(properties),
            required,
            additional_properties: Some(Additional::Allowed(false)),
            ..Self::default()
        }
    }

    /// A string that must equal `value`.
    pub(crate) fn constant_string(value: &str) -> Self {
        Self { ty: Some("string"), constant: Some(Value::from(value)), ..Self::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::OrderedMap;

    /// Inserting searched every earlier key, so 10,000 properties took seconds (defect 12);
    /// 200,000 keys would take minutes that way.
    #[test]
    fn inserting_many_keys_is_fast_and_keeps_order() {
        let start = std::time::Instant::now();
        let mut map = OrderedMap::default();
        for i in 0..200_000 {
            map.insert(format!("key{i}"), i);
        }
        map.insert("key7", -7);
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "{:?}", start.elapsed());
        assert_eq!(map.entries.len(), 200_000);
        assert_eq!(map.entries[7], ("key7".to_string(), -7));
        assert_eq!(map.entries[199_999].0, "key199999");
        assert_eq!(map.get_mut("key9").copied(), Some(9));
    }
}
