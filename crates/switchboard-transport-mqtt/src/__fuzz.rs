//! The decoding that this transport's clients and servers apply to incoming publishes, run
//! without a broker or a connection: an entry point for the fuzz targets in `fuzz/` and their
//! corpus replay, not part of the API.
//!
//! It calls the same functions the handlers in `client.rs` and `server.rs` call on a publish
//! (topic placeholders, return codes, correlation data, property versions, presence and interface
//! info, goal requests, replies and events); the connection-bound glue around them is not run.

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use switchboard_core::goal_payload;

use crate::{
    client, topics,
    wire::{self, CLIENT_ID, GOAL_EVENT, PROPERTY_VERSION},
};

/// One publish as a broker could deliver it, from any client.
#[derive(Debug, Default, Clone)]
pub struct IncomingPublish {
    /// The topic it arrived on.
    pub topic: String,
    /// Whether the broker delivered it as retained.
    pub retain: bool,
    /// Its payload.
    pub payload: Bytes,
    /// Its MQTT v5 user properties, in order.
    pub user_properties: Vec<(String, String)>,
    /// Its correlation data.
    pub correlation_data: Option<Bytes>,
    /// Its response topic.
    pub response_topic: Option<String>,
    /// Its content type.
    pub content_type: Option<String>,
}

/// Runs every decoder a client or a server applies to `publish`, reading topic placeholders
/// against `template` (a topic template such as `thermostat/{instance}/method/{method_name}`).
pub fn decode(publish: &IncomingPublish, template: &str) {
    let properties = PublishProperties {
        user_properties: publish.user_properties.clone(),
        correlation_data: publish.correlation_data.clone(),
        response_topic: publish.response_topic.clone(),
        content_type: publish.content_type.clone(),
        ..Default::default()
    };
    let topic = publish.topic.as_str();
    let payload = &publish.payload;

    // A server: client presence, commands, action requests, property updates, the sender.
    for wanted in ["client_id", "command_name", "action_name", "property_name", "signal_name"] {
        let _ = topics::extract(template, topic, wanted);
    }
    if let Some((base, _op)) = topic.rsplit_once('/') {
        let _ = topics::extract(template, base, "action_name");
    }
    let _ = crate::presence_state(payload);
    let _ = goal_payload::decode_request(payload);
    if let Some(id) = wire::user_property(&properties, CLIENT_ID) {
        let _ = topics::valid_level(id);
    }
    if let Some(response_topic) = properties.response_topic.as_deref() {
        let _ = topics::extract(template, response_topic, "client_id");
    }

    // A client: server presence and info, method and update responses, values, action messages.
    if let Ok(info) = serde_json::from_slice::<serde_json::Value>(payload) {
        let _ = crate::presence_topic(&info);
    }
    if let Some(data) = properties.correlation_data.as_deref() {
        let _ = wire::Correlator::new().decode(data);
    }
    let _ = wire::user_property(&properties, PROPERTY_VERSION).map(|v| v.trim().parse::<u64>());
    match wire::outcome(&properties) {
        None => {
            let _ = goal_payload::decode_state(payload);
        }
        Some(error) => {
            let _ = client::error_from_payload(error, payload);
            let _ = client::goal_of(payload);
        }
    }
    let _ = goal_payload::decode_event(wire::user_property(&properties, GOAL_EVENT), payload);
}
