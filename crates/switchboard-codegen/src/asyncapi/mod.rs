//! The AsyncAPI target: one AsyncAPI 3.0 document (JSON) describing an interface's MQTT mapping.
//!
//! The document is built as typed data (the serde types in `model`) and serialised with
//! `serde_json`; nothing is templated. It describes exactly what `docs/wire/mqtt.md` specifies:
//! every topic as a channel (with parameters for the service id, the client id and the
//! interface's topic params), every publish and subscription of the **server** as an operation
//! (`send` for what the server publishes, `receive` for what it handles, with `reply` for
//! requests), JSON Schemas for every payload, the user properties as message `headers`, and the
//! MQTT bindings (QoS, retain, message expiry, response topic, correlation data).
//!
//! JSON rather than YAML: JSON is a subset of YAML, so every AsyncAPI tool reads it, and
//! `serde_json` writes it exactly (no YAML quoting rules for strings such as `{service_id}`,
//! `on` or `null` to get wrong), so no YAML emitter is needed.

pub(crate) mod example;
mod model;
pub(crate) mod topics;

use serde_json::json;

use self::example::{Value as Ex, ex};
use switchboard_idl::{Field, FloatFormat, Interface, Type};

use self::model::{
    Action, Additional, Channel, Components, CorrelationId, Document, Info, License, Message,
    MessageBindings, MessageExample, MqttMessageBinding, MqttOperationBinding, Operation,
    OperationBindings, OrderedMap, Parameter, Reference, Reply, Schema, Server,
};
use self::topics::Topics;
use crate::GenerateError;
use switchboard_idl::english::with_article;
use switchboard_wire::mqtt::{self, TopicKind};

/// The AsyncAPI version the document declares.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// The MQTT binding version used throughout.
const MQTT_BINDING: &str = "0.2.0";

/// The content type of every message with a body.
const JSON: &str = "application/json";

/// An ISO 8601 duration as the runtime reads it: `PT1.5S`, `P1DT2H`, `-PT1S`, `PT0S`.
const DURATION_PATTERN: &str =
    r"^-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$";

/// How long retained interface info and descriptions live, in seconds.
const INFO_EXPIRY: u32 = 144;

/// The name of the file [`generate`] output belongs in: `<snake_case name>.asyncapi.json`.
///
/// # Errors
///
/// Fails when the interface name has no usable spelling.
pub fn file_name(iface: &Interface) -> Result<String, GenerateError> {
    let what = format!("interface `{}`", iface.name);
    let snake = crate::names::snake(&iface.name, &what)?;
    Ok(format!("{}.asyncapi.json", crate::names::unraw(&snake)))
}

/// Generates the AsyncAPI 3.0 document of `iface`, as pretty-printed JSON ending in a newline.
///
/// # Errors
///
/// Never fails today; the `Result` keeps the signature in line with the other targets.
pub fn generate(iface: &Interface, source_name: &str) -> Result<String, GenerateError> {
    let document = Builder::new(iface, source_name).build();
    let mut text = serde_json::to_string_pretty(&document)
        .map_err(|e| GenerateError::Syntax(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// The JSON Schema of a value of type `ty` (structs and enums as `$ref`s into the components).
pub(crate) fn type_schema(ty: &Type) -> Schema {
    match ty {
        Type::Integer { format } => {
            let (min, max) = format.range();
            Schema {
                format: Some(format.name()),
                minimum: i64::try_from(min).ok(),
                maximum: u64::try_from(max).ok(),
                ..Schema::of("integer")
            }
        }
        Type::Float { format } => Schema {
            format: Some(match format {
                FloatFormat::Float32 => "float32",
                FloatFormat::Float64 => "float64",
            }),
            ..Schema::of("number")
        },
        Type::Boolean => Schema::of("boolean"),
        Type::String => Schema::of("string"),
        Type::DateTime => Schema { format: Some("date-time"), ..Schema::of("string") },
        // Not `format: duration`: JSON Schema's format (RFC 3339 appendix A) has no fractions
        // or sign, and the wire has both (`PT1.5S`, `-PT1S`).
        Type::Duration => Schema { pattern: Some(DURATION_PATTERN), ..Schema::of("string") }
            .describe("An ISO 8601 duration, e.g. `PT1.5S`."),
        Type::Binary => Schema { content_encoding: Some("base64"), ..Schema::of("string") },
        Type::Enum { name } | Type::Struct { name } => Schema::component(name),
        Type::Array { item } => {
            Schema { items: Some(Box::new(type_schema(item))), ..Schema::of("array") }
        }
        Type::Map { value } => Schema {
            additional_properties: Some(Additional::Schema(Box::new(type_schema(value)))),
            ..Schema::of("object")
        },
        Type::Optional { inner } => {
            Schema { one_of: vec![Schema::of("null"), type_schema(inner)], ..Schema::default() }
        }
    }
}

/// The schema of one field, with its description (a `$ref` is wrapped, since draft 7 ignores
/// keywords beside `$ref`).
fn field_schema(field: &Field) -> Schema {
    let schema = type_schema(&field.ty);
    match &field.description {
        Some(text) if schema.reference.is_some() => {
            Schema { all_of: vec![schema], ..Schema::default() }.describe(text.clone())
        }
        Some(text) => schema.describe(text.clone()),
        None => schema,
    }
}

/// The closed JSON object of `fields`; optional fields may be `null` or absent.
pub(crate) fn fields_schema(fields: &[Field]) -> Schema {
    let mut properties = OrderedMap::default();
    let mut required = Vec::new();
    for field in fields {
        properties.insert(field.name.clone(), field_schema(field));
        if !matches!(field.ty, Type::Optional { .. }) {
            required.push(field.name.clone());
        }
    }
    Schema::object(properties, required)
}

/// A string user property.
fn user_property(description: &str) -> Schema {
    Schema::of("string").describe(description)
}

/// The `ReturnCode` user property of a successful reply.
fn return_code_ok() -> Schema {
    Schema::constant_string("0").describe("`0`: success. StingerIPC's return code.")
}

/// The `ReturnCode` user property of a failed reply.
fn return_code_error() -> Schema {
    Schema {
        pattern: Some("^([1-9]|1[0-5])$"),
        ..user_property(
            "The error code, in decimal (StingerIPC's return codes): 1 client error (a handler \
             refused, declared errors), 2 server error (`Internal`), 4 payload error, 8 server \
             deserialization error (`InvalidArguments`), 9 not found (`UnknownMethod`, \
             `UnknownProperty`, `UnknownAction`, `UnknownGoal`), 10 unauthorized \
             (`AccessDenied`, `ReadOnlyProperty`), 12 out of sync, 15 service unavailable \
             (`TooManyGoals`); the others as in StingerIPC.",
        )
    }
}

/// `PropertyVersion`: a decimal integer that grows by one with every change.
fn property_version(description: &str) -> Schema {
    Schema { pattern: Some("^[0-9]+$"), ..user_property(description) }
}

/// A headers (user properties) schema: an object of strings.
fn headers(properties: Vec<(&str, Schema)>, required: &[&str]) -> Schema {
    let mut map = OrderedMap::default();
    for (name, schema) in properties {
        map.insert(name, schema);
    }
    Schema {
        ty: Some("object"),
        properties: Some(map),
        required: required.iter().map(|s| (*s).to_string()).collect(),
        ..Schema::default()
    }
}

/// The error user properties of a failed reply (besides `ReturnCode`).
fn error_headers(errors: &[String]) -> Vec<(&'static str, Schema)> {
    let declared = if errors.is_empty() {
        String::new()
    } else {
        format!(
            " Declared errors: {}.",
            errors.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
        )
    };
    vec![
        ("ReturnCode", return_code_error()),
        ("DebugInfo", user_property("The error message, on one line.")),
        (
            "ErrorName",
            user_property(&format!(
                "switchboard's stable error name, e.g. `InvalidArguments` or a declared error's \
                 name (StingerIPC peers ignore it).{declared}"
            )),
        ),
        (
            "ErrorDetails",
            Schema {
                content_media_type: Some(JSON),
                ..user_property(
                    "The error's structured details as JSON, when it has any; for a declared \
                     error, the object of its fields (see its schema in the components).",
                )
            },
        ),
    ]
}

/// The MQTT binding of a message without request/reply properties.
fn plain_binding() -> MessageBindings {
    MessageBindings {
        mqtt: MqttMessageBinding {
            content_type: JSON,
            correlation_data: None,
            response_topic: None,
            binding_version: MQTT_BINDING,
        },
    }
}

/// The MQTT binding of a request: `CorrelationData` and `ResponseTopic`.
fn request_binding(response: &str) -> MessageBindings {
    MessageBindings {
        mqtt: MqttMessageBinding {
            content_type: JSON,
            correlation_data: Some(correlation_schema()),
            response_topic: Some(Schema::of("string").describe(format!(
                "Where the reply goes; switchboard and StingerIPC clients use `{response}`."
            ))),
            binding_version: MQTT_BINDING,
        },
    }
}

/// The MQTT binding of a reply: the request's `CorrelationData`, echoed.
fn reply_binding() -> MessageBindings {
    MessageBindings {
        mqtt: MqttMessageBinding {
            content_type: JSON,
            correlation_data: Some(correlation_schema()),
            response_topic: None,
            binding_version: MQTT_BINDING,
        },
    }
}

fn correlation_schema() -> Schema {
    Schema::of("string").describe(
        "Chosen by the requester (switchboard and StingerIPC use a UUID-format string) and echoed \
         byte for byte in the reply.",
    )
}

fn correlation_id() -> Option<CorrelationId> {
    Some(CorrelationId {
        description: "The MQTT v5 Correlation Data property (a protocol property, described by \
                      the `mqtt` message binding's `correlationData`); the reply carries the \
                      request's value unchanged."
            .to_string(),
        location: "$message.header#/correlationData".to_string(),
    })
}

/// MQTT operation bindings: how the transport publishes topics of `kind`.
fn op_binding(kind: &TopicKind, expiry: Option<u32>) -> OperationBindings {
    OperationBindings {
        mqtt: MqttOperationBinding {
            qos: kind.qos,
            retain: kind.retained,
            message_expiry_interval: expiry,
            binding_version: MQTT_BINDING,
        },
    }
}

/// The documentation of an item, or an empty string.
fn doc(text: &Option<String>) -> String {
    text.as_deref().map(str::trim).unwrap_or_default().to_string()
}

/// `a` and `b` joined by a blank line, skipping an empty `a`.
fn paragraphs(a: &str, b: &str) -> String {
    if a.is_empty() { b.to_string() } else { format!("{a}\n\n{b}") }
}

/// A message with the usual defaults.
fn message(name: &str, title: &str, payload: Schema, bindings: MessageBindings) -> Message {
    Message {
        name: name.to_string(),
        title: title.to_string(),
        description: None,
        content_type: JSON,
        headers: None,
        payload,
        correlation_id: None,
        bindings,
        examples: Vec::new(),
    }
}

/// One example of a message.
/// A message example; none when the payload's example was left out (see [`example::Examples`])
/// and no headers remain to show.
fn example(
    name: &str,
    headers: Option<Ex>,
    payload: impl Into<Option<Ex>>,
) -> Option<MessageExample> {
    let payload = payload.into();
    (headers.is_some() || payload.is_some()).then(|| MessageExample {
        name: name.to_string(),
        headers,
        payload,
    })
}

struct Builder<'a> {
    iface: &'a Interface,
    source_name: &'a str,
    topics: Topics,
    channels: OrderedMap<Channel>,
    operations: OrderedMap<Operation>,
    components: Components,
    examples: example::Examples<'a>,
}

impl<'a> Builder<'a> {
    fn new(iface: &'a Interface, source_name: &'a str) -> Self {
        Self {
            iface,
            source_name,
            topics: Topics::new(iface),
            channels: OrderedMap::default(),
            operations: OrderedMap::default(),
            components: Components::default(),
            examples: example::Examples::new(iface),
        }
    }

    fn build(mut self) -> Document {
        self.parameters();
        self.schemas();
        self.discovery();
        for signal in &self.iface.signals {
            self.signal(signal);
        }
        for property in &self.iface.properties {
            self.property(property);
        }
        for method in &self.iface.methods {
            self.method(method);
        }
        for command in &self.iface.commands {
            self.command(command);
        }
        for action in &self.iface.actions {
            self.action(action);
        }
        let iface = self.iface;
        let mut servers = OrderedMap::default();
        servers.insert(
            "broker",
            Server {
                host: "localhost:1883",
                protocol: "mqtt",
                protocol_version: "5",
                description: "Any MQTT v5 broker; `mqtts` (port 8883) works the same way.",
            },
        );
        Document {
            asyncapi: ASYNCAPI_VERSION,
            id: format!("urn:switchboard:{}:{}", iface.name, iface.version),
            info: Info {
                title: iface.title.clone().unwrap_or_else(|| iface.name.clone()),
                version: iface.version.clone(),
                description: self.info_description(),
                license: iface.license.clone().map(|name| License { name }),
                hash: iface.description_hash(),
            },
            servers,
            default_content_type: JSON,
            channels: self.channels,
            operations: self.operations,
            components: self.components,
        }
    }

    fn info_description(&self) -> String {
        let iface = self.iface;
        let mut text = String::new();
        if let Some(summary) = &iface.summary {
            text.push_str(summary.trim());
            text.push_str("\n\n");
        }
        if let Some(documentation) = &iface.documentation {
            text.push_str(documentation.trim());
            text.push_str("\n\n");
        }
        text.push_str(&format!(
            "Generated by switchboard from `{}` (interface `{}` {}). This document describes the \
             interface's MQTT v5 mapping (switchboard's `docs/wire/mqtt.md`, wire-compatible \
             with StingerIPC).\n\n\
             **Point of view.** Operations are those of the **server** application: `send` is \
             what the server publishes (signals, property values, goal events, discovery), \
             `receive` is what it subscribes to and handles (property updates, method calls, \
             commands, action requests, client presence). A client does the mirror image.\n\n\
             **Requests and replies.** A request carries the MQTT v5 `ResponseTopic` and \
             `CorrelationData` properties (the `mqtt` message binding); the server publishes \
             the reply to the response topic with the same correlation data. Each request \
             operation's `reply` names the channel of the default response topic, which \
             switchboard and StingerIPC clients use. Errors travel as user properties \
             (`ReturnCode`, `DebugInfo`, `ErrorName`, `ErrorDetails`), described as message \
             `headers`; all user-property values are strings.\n\n\
             **Parameters.** `service_id` is the server's instance id, `client_id` a client's \
             MQTT client id; other parameters are the interface's topic params.\n\n\
             **Encodings.** Enums travel as integers (names in `x-enum-names`), optional values \
             as `null`, datetimes as UTC RFC 3339 strings, durations as ISO 8601 strings, binary \
             data as padded base64.\n\n\
             **Clean close.** A server clears its retained interface info, description and \
             property values with zero-length retained messages, then publishes \
             `{{\"online\":false}}` on its presence topic (also its last will).",
            self.source_name, iface.name, iface.version
        ));
        text
    }

    fn parameters(&mut self) {
        let params = &mut self.components.parameters;
        params.insert(
            "service_id",
            Parameter {
                description: "The service id: which instance of the interface (the URL's \
                              `instance`). A client may subscribe with `+` to find any instance."
                    .to_string(),
                examples: vec!["kitchen".to_string()],
            },
        );
        params.insert(
            "client_id",
            Parameter {
                description: "The MQTT client id of a client connection (the URL's \
                              `client_id`, by default a random UUID per connection)."
                    .to_string(),
                examples: vec!["app-1".to_string()],
            },
        );
        for param in &self.iface.configuration.topic_params {
            params.insert(
                param.clone(),
                Parameter {
                    description: format!(
                        "Topic param `{param}` of the interface: the URL's `{param}=…`; servers \
                         announce its value in their interface info."
                    ),
                    examples: vec!["home1".to_string()],
                },
            );
        }
    }

    fn schemas(&mut self) {
        let iface = self.iface;
        let schemas = &mut self.components.schemas;
        for def in &iface.enums {
            let listing = def
                .values
                .iter()
                .map(|v| format!("{} = {}", v.name, v.value))
                .collect::<Vec<_>>()
                .join(", ");
            let description = paragraphs(
                &doc(&def.documentation),
                &format!("Enum `{}`, sent as its integer: {listing}.", def.name),
            );
            schemas.insert(
                def.name.clone(),
                Schema {
                    title: Some(def.name.clone()),
                    one_of_values: def.values.iter().map(|v| json!(v.value)).collect(),
                    enum_names: def.values.iter().map(|v| v.name.clone()).collect(),
                    enum_descriptions: if def.values.iter().any(|v| v.description.is_some()) {
                        def.values
                            .iter()
                            .map(|v| v.description.clone().unwrap_or_default())
                            .collect()
                    } else {
                        Vec::new()
                    },
                    ..Schema::of("integer")
                }
                .describe(description),
            );
        }
        for def in &iface.structs {
            let mut schema = fields_schema(&def.fields);
            schema.title = Some(def.name.clone());
            let text = paragraphs(&doc(&def.documentation), &format!("Struct `{}`.", def.name));
            schemas.insert(def.name.clone(), schema.describe(text));
        }
        for def in &iface.errors {
            let mut schema = fields_schema(&def.fields);
            schema.title = Some(def.name.clone());
            let text = paragraphs(
                &doc(&def.documentation),
                &format!(
                    "The details (fields) of error `{}`, sent as `ErrorDetails` and in a failed \
                     goal's `error.details`.",
                    def.name
                ),
            );
            schemas.insert(def.name.clone(), schema.describe(text));
        }
    }

    /// Adds a channel for `address`, declaring its parameters.
    fn channel(&mut self, id: &str, address: String, title: String, description: String) {
        let mut parameters = OrderedMap::default();
        for param in topics::parameters(&address) {
            let target = format!("components/parameters/{param}");
            parameters.insert(param, Reference::to(target));
        }
        self.channels.insert(
            id,
            Channel { address, title, description, messages: OrderedMap::default(), parameters },
        );
    }

    /// Adds `message` to channel `channel` under `key` and returns a reference to it.
    fn add_message(&mut self, channel: &str, key: &str, message: Message) -> Reference {
        if let Some(ch) = self.channels.get_mut(channel) {
            ch.messages.insert(key, message);
        }
        Reference::to(format!("channels/{channel}/messages/{key}"))
    }

    #[allow(clippy::too_many_arguments)]
    fn operation(
        &mut self,
        id: String,
        action: Action,
        channel: &str,
        title: String,
        description: String,
        messages: Vec<Reference>,
        reply: Option<Reply>,
        bindings: OperationBindings,
    ) {
        self.operations.insert(
            id,
            Operation {
                action,
                channel: Reference::to(format!("channels/{channel}")),
                title,
                description,
                messages,
                reply,
                bindings,
            },
        );
    }

    fn discovery(&mut self) {
        let iface = self.iface;
        // Interface info.
        let address = self.topics.address(&mqtt::INTERFACE_DISCOVERY, "");
        self.channel(
            "interface",
            address,
            "Interface info".to_string(),
            "Discovery: the server's announcement, retained, republished every 120 s and after \
             every reconnect; cleared with a zero-length retained message on a clean close."
                .to_string(),
        );
        let mut properties = OrderedMap::default();
        properties.insert("interface_name", Schema::constant_string(&iface.name));
        properties.insert("title", Schema::of("string"));
        properties.insert("version", Schema::of("string").describe("The interface version."));
        properties.insert("instance", Schema::of("string").describe("The service id."));
        properties.insert(
            "connection_topic",
            Schema::of("string").describe("The server's presence topic."),
        );
        properties.insert(
            "timestamp",
            Schema { format: Some("date-time"), ..Schema::of("string") }
                .describe("When it was published (UTC, microseconds)."),
        );
        for param in &iface.configuration.topic_params {
            properties
                .insert(param.clone(), Schema::of("string").describe("The topic param's value."));
        }
        properties.insert(
            "hash",
            Schema::of("string").describe(
                "switchboard's interface hash; switchboard clients refuse a server whose hash \
                 differs from theirs (StingerIPC peers ignore it).",
            ),
        );
        let required = ["interface_name", "title", "version", "instance", "connection_topic"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        let payload = Schema {
            ty: Some("object"),
            properties: Some(properties),
            required,
            ..Schema::default()
        };
        let mut info = message("interfaceInfo", "Interface info", payload, plain_binding());
        let mut sample: Vec<(String, Ex)> = vec![
            ("interface_name".into(), iface.name.as_str().into()),
            ("title".into(), iface.title.clone().unwrap_or(iface.name.clone()).into()),
            ("version".into(), iface.version.as_str().into()),
            ("instance".into(), "kitchen".into()),
            ("connection_topic".into(), "client/server-1/online".into()),
            ("timestamp".into(), "2030-01-01T12:00:00.000000Z".into()),
        ];
        for param in &iface.configuration.topic_params {
            sample.push((param.clone(), "home1".into()));
        }
        sample.push(("hash".into(), iface.description_hash().into()));
        info.examples.extend(example("announcement", None, Ex::Object(sample)));
        let msg = self.add_message("interface", "info", info);
        self.operation(
            "publishInterfaceInfo".to_string(),
            Action::Send,
            "interface",
            "Announce the interface".to_string(),
            format!(
                "Published retained at QoS {} with a message expiry of 144 s.",
                mqtt::INTERFACE_DISCOVERY.qos
            ),
            vec![msg],
            None,
            op_binding(&mqtt::INTERFACE_DISCOVERY, Some(INFO_EXPIRY)),
        );

        // Description (runtime introspection).
        let address = self.topics.address(&mqtt::INTERFACE_SCHEMA, "");
        self.channel(
            "schema",
            address,
            "Interface description".to_string(),
            "The interface description JSON (the full interface model), for runtime \
             introspection; switchboard's own topic, which StingerIPC peers never read."
                .to_string(),
        );
        let payload = Schema::of("object").describe(
            "The interface model as JSON (`switchboard_idl::Interface::description_json`).",
        );
        let msg = self.add_message(
            "schema",
            "description",
            message("interfaceDescription", "Interface description", payload, plain_binding()),
        );
        self.operation(
            "publishDescription".to_string(),
            Action::Send,
            "schema",
            "Publish the interface description".to_string(),
            format!(
                "Retained, QoS {}, message expiry 144 s; republished with the interface info.",
                mqtt::INTERFACE_SCHEMA.qos
            ),
            vec![msg],
            None,
            op_binding(&mqtt::INTERFACE_SCHEMA, Some(INFO_EXPIRY)),
        );

        // Presence.
        let address = self.topics.address(&mqtt::LWT, "");
        self.channel(
            "presence",
            address,
            "Presence".to_string(),
            format!(
                "Every connection's presence: `{{\"online\":true}}` after each CONNACK, \
                 `{{\"online\":false}}` as its last will and on a clean close, both retained at \
                 QoS {}.",
                mqtt::LWT.qos
            ),
        );
        let mut props = OrderedMap::default();
        props.insert("online", Schema::of("boolean"));
        let mut online = message(
            "presence",
            "Presence",
            Schema::object(props, vec!["online".to_string()]),
            plain_binding(),
        );
        online.examples.extend(example("online", None, ex!({"online": true})));
        online.examples.extend(example("offline", None, ex!({"online": false})));
        let msg = self.add_message("presence", "online", online);
        self.operation(
            "publishPresence".to_string(),
            Action::Send,
            "presence",
            "Publish the server's presence".to_string(),
            "The server's own presence (its `connection_topic`), and its last will.".to_string(),
            vec![msg.clone()],
            None,
            op_binding(&mqtt::LWT, None),
        );
        self.operation(
            "receiveClientPresence".to_string(),
            Action::Receive,
            "presence",
            "Follow clients' presence".to_string(),
            "The server subscribes to `client/+/online`: when a client it has seen goes \
             offline, events to it fail and its goals start their grace period."
                .to_string(),
            vec![msg],
            None,
            op_binding(&mqtt::LWT, None),
        );
    }

    fn signal(&mut self, signal: &switchboard_idl::Signal) {
        let name = &signal.name;
        let documentation = doc(&signal.documentation);
        let payload = fields_schema(&signal.fields);
        let sample = self.examples.object(&signal.fields);

        let id = format!("signal.{name}");
        self.channel(
            &id,
            self.topics.address(&mqtt::SIGNALS, name),
            format!("Signal {name}"),
            paragraphs(
                &documentation,
                &format!("Broadcast to every subscriber; QoS {}, not retained.", mqtt::SIGNALS.qos),
            ),
        );
        let mut msg = message(name, &format!("Signal {name}"), payload.clone(), plain_binding());
        msg.description = (!documentation.is_empty()).then(|| documentation.clone());
        msg.examples.extend(example(name, None, sample.clone()));
        let msg = self.add_message(&id, "signal", msg);
        self.operation(
            format!("emitSignal.{name}"),
            Action::Send,
            &id,
            format!("Emit {name}"),
            documentation.clone(),
            vec![msg],
            None,
            op_binding(&mqtt::SIGNALS, None),
        );

        let id = format!("clientSignal.{name}");
        self.channel(
            &id,
            self.topics.address(&mqtt::CLIENT_SIGNALS, name),
            format!("Signal {name} to one client"),
            "The same signal, sent to one client only (switchboard's events to one client)."
                .to_string(),
        );
        let mut msg = message(name, &format!("Signal {name}"), payload, plain_binding());
        msg.examples.extend(example(name, None, sample));
        let msg = self.add_message(&id, "signal", msg);
        self.operation(
            format!("emitSignalToClient.{name}"),
            Action::Send,
            &id,
            format!("Emit {name} to one client"),
            format!(
                "Published on the client's own signal topic; QoS {}, not retained.",
                mqtt::CLIENT_SIGNALS.qos
            ),
            vec![msg],
            None,
            op_binding(&mqtt::CLIENT_SIGNALS, None),
        );
    }

    fn property(&mut self, property: &switchboard_idl::Property) {
        let name = &property.name;
        let documentation = doc(&property.documentation);
        let value = fields_schema(&property.fields);
        let sample = self.examples.object(&property.fields);
        let version_header = |required: bool| {
            headers(
                vec![(
                    "PropertyVersion",
                    property_version("The value's version: 1 at start, one more per change."),
                )],
                if required { &["PropertyVersion"] } else { &[] },
            )
        };

        let id = format!("propertyValue.{name}");
        let access = if property.read_only { "Read-only." } else { "Clients may update it." };
        self.channel(
            &id,
            self.topics.address(&mqtt::PROPERTY_VALUES, name),
            format!("Property {name}"),
            paragraphs(
                &documentation,
                &format!(
                    "The current value, retained at QoS {}. {access}",
                    mqtt::PROPERTY_VALUES.qos
                ),
            ),
        );
        let mut msg = message(name, &format!("Value of {name}"), value.clone(), plain_binding());
        msg.description = (!documentation.is_empty()).then(|| documentation.clone());
        msg.headers = Some(version_header(true));
        msg.examples.extend(example("value", Some(ex!({"PropertyVersion": "1"})), sample.clone()));
        let msg = self.add_message(&id, "value", msg);
        self.operation(
            format!("publishPropertyValue.{name}"),
            Action::Send,
            &id,
            format!("Publish {name}"),
            "Published at start (version 1), after every reconnect and on every change."
                .to_string(),
            vec![msg],
            None,
            op_binding(&mqtt::PROPERTY_VALUES, None),
        );
        if property.read_only {
            return;
        }

        let response_id = format!("propertyUpdateResponse.{name}");
        let response_address = self.topics.address(&mqtt::PROPERTY_UPDATE_RESPONSES, name);
        let request_id = format!("propertyUpdate.{name}");
        self.channel(
            &request_id,
            self.topics.address(&mqtt::PROPERTY_UPDATES, name),
            format!("Update {name}"),
            "A client asks to change the value: the complete new value, and the version it \
             last saw."
                .to_string(),
        );
        let mut update = message(
            name,
            &format!("Update of {name}"),
            value.clone(),
            request_binding(&response_address),
        );
        update.headers = Some(headers(
            vec![(
                "PropertyVersion",
                property_version(
                    "The version the client last saw; a stale or missing one is refused with \
                     `OutOfSync` (12).",
                ),
            )],
            &[],
        ));
        update.correlation_id = correlation_id();
        update.examples.extend(example(
            "update",
            Some(ex!({"PropertyVersion": "1"})),
            sample.clone(),
        ));
        let update = self.add_message(&request_id, "update", update);

        self.channel(
            &response_id,
            response_address,
            format!("Update response of {name}"),
            "The answer to an update, to the client's response topic (QoS 0 by default): the \
             return code, and the current version and value, also on error."
                .to_string(),
        );
        let mut response_headers = vec![
            (
                "ReturnCode",
                Schema {
                    pattern: Some("^([0-9]|1[0-5])$"),
                    ..user_property("`0` on success, else the error code (see the method replies).")
                },
            ),
            ("PropertyVersion", property_version("The current version.")),
        ];
        response_headers.extend(error_headers(&[]).into_iter().skip(1));
        let mut response =
            message(name, &format!("Update response of {name}"), value, reply_binding());
        response.headers = Some(headers(response_headers, &["ReturnCode", "PropertyVersion"]));
        response.correlation_id = correlation_id();
        response.examples.extend(example(
            "accepted",
            Some(ex!({"ReturnCode": "0", "PropertyVersion": "2"})),
            sample.clone(),
        ));
        response.examples.extend(example(
            "outOfSync",
            Some(ex!({
                "ReturnCode": "12",
                "PropertyVersion": "2",
                "DebugInfo": format!("update of property `{name}` was based on version 1, but the current version is 2"),
                "ErrorName": "OutOfSync",
            })),
            sample,
        ));
        let response = self.add_message(&response_id, "response", response);
        self.operation(
            format!("handlePropertyUpdate.{name}"),
            Action::Receive,
            &request_id,
            format!("Handle updates of {name}"),
            "The server publishes the new value, then answers.".to_string(),
            vec![update],
            Some(Reply {
                channel: Reference::to(format!("channels/{response_id}")),
                messages: vec![response],
            }),
            op_binding(&mqtt::PROPERTY_UPDATES, None),
        );
    }

    fn method(&mut self, method: &switchboard_idl::Method) {
        let name = &method.name;
        let documentation = doc(&method.documentation);
        let response_address = self.topics.address(&mqtt::METHOD_RESPONSES, name);
        let request_id = format!("methodRequest.{name}");
        let response_id = format!("methodResponse.{name}");
        let timeout = method
            .timeout_secs
            .map(|t| format!(" Clients wait {t} s for the reply."))
            .unwrap_or_default();
        self.channel(
            &request_id,
            self.topics.address(&mqtt::METHOD_REQUESTS, name),
            format!("Call {name}"),
            paragraphs(&documentation, &format!("The arguments of a call.{timeout}")),
        );
        let mut request = message(
            name,
            &format!("Arguments of {name}"),
            fields_schema(&method.arguments),
            request_binding(&response_address),
        );
        request.description = (!documentation.is_empty()).then(|| documentation.clone());
        request.correlation_id = correlation_id();
        request.examples.extend(example("call", None, self.examples.object(&method.arguments)));
        let request = self.add_message(&request_id, "request", request);

        self.channel(
            &response_id,
            response_address,
            format!("Reply of {name}"),
            "The reply, to the caller's response topic (QoS 0 by default).".to_string(),
        );
        let mut result = message(
            name,
            &format!("Result of {name}"),
            fields_schema(&method.returns),
            reply_binding(),
        );
        result.headers = Some(headers(vec![("ReturnCode", return_code_ok())], &[]));
        result.correlation_id = correlation_id();
        result.examples.extend(example(
            "success",
            Some(ex!({"ReturnCode": "0"})),
            self.examples.object(&method.returns),
        ));
        let result = self.add_message(&response_id, "result", result);
        let mut error = message(
            name,
            &format!("Error of {name}"),
            Schema { max_properties: Some(0), ..Schema::of("object") }
                .describe("Always `{}`: the error is in the user properties."),
            reply_binding(),
        );
        error.headers = Some(headers(error_headers(&method.errors), &["ReturnCode", "DebugInfo"]));
        error.correlation_id = correlation_id();
        let (error_name, error_code) =
            method.errors.first().map_or(("InvalidArguments", "8"), |e| (e.as_str(), "1"));
        error.examples.extend(example(
            "error",
            Some(ex!({"ReturnCode": error_code, "DebugInfo": "…", "ErrorName": error_name})),
            ex!({}),
        ));
        let error = self.add_message(&response_id, "error", error);
        self.operation(
            format!("handleMethodCall.{name}"),
            Action::Receive,
            &request_id,
            format!("Handle calls of {name}"),
            documentation,
            vec![request],
            Some(Reply {
                channel: Reference::to(format!("channels/{response_id}")),
                messages: vec![result, error],
            }),
            op_binding(&mqtt::METHOD_REQUESTS, None),
        );
    }

    fn command(&mut self, command: &switchboard_idl::Command) {
        let name = &command.name;
        let documentation = doc(&command.documentation);
        let id = format!("command.{name}");
        self.channel(
            &id,
            self.topics.address(&mqtt::COMMANDS, name),
            format!("Command {name}"),
            paragraphs(
                &documentation,
                "Fire-and-forget at QoS 2: never answered; the server logs failures.",
            ),
        );
        let mut msg = message(
            name,
            &format!("Command {name}"),
            fields_schema(&command.arguments),
            plain_binding(),
        );
        msg.description = (!documentation.is_empty()).then(|| documentation.clone());
        msg.headers = Some(headers(vec![("ClientId", client_id_header())], &[]));
        msg.examples.extend(example(
            "command",
            Some(ex!({"ClientId": "app-1"})),
            self.examples.object(&command.arguments),
        ));
        let msg = self.add_message(&id, "command", msg);
        self.operation(
            format!("handleCommand.{name}"),
            Action::Receive,
            &id,
            format!("Handle command {name}"),
            documentation,
            vec![msg],
            None,
            op_binding(&mqtt::COMMANDS, None),
        );
    }

    fn action(&mut self, action: &switchboard_idl::Action) {
        let name = &action.name;
        let documentation = doc(&action.documentation);
        let events_id = format!("actionEvents.{name}");
        let events_address = self.topics.address(&mqtt::ACTION_EVENTS, name);
        let base = self.topics.address(&mqtt::ACTION_REQUESTS, name);
        let goal_id = || {
            Schema { format: Some("uuid"), ..Schema::of("string") }
                .describe("The goal id, chosen by the client.")
        };

        // The goal state, shared by replies and status/finished events.
        let state_name = format!("{name}.GoalState");
        let mut error_props = OrderedMap::default();
        error_props.insert("name", Schema::of("string"));
        error_props.insert(
            "code",
            Schema { minimum: Some(1), maximum: Some(15), ..Schema::of("integer") },
        );
        error_props.insert("message", Schema::of("string"));
        error_props.insert(
            "details",
            Schema::default()
                .describe("The error's details; for a declared error, the object of its fields."),
        );
        let mut state_props = OrderedMap::default();
        state_props.insert("goal", goal_id());
        state_props.insert(
            "status",
            Schema {
                one_of_values: [
                    "accepted",
                    "executing",
                    "canceling",
                    "succeeded",
                    "cancelled",
                    "failed",
                ]
                .iter()
                .map(|s| json!(s))
                .collect(),
                ..Schema::of("string")
            },
        );
        let mut result_schema = fields_schema(&action.result);
        result_schema.description = Some("The result, once `succeeded`.".to_string());
        state_props.insert("result", result_schema);
        state_props.insert(
            "error",
            Schema::object(error_props, vec!["name".into(), "code".into(), "message".into()])
                .describe("The error, once `failed`."),
        );
        self.components.schemas.insert(
            state_name.clone(),
            Schema::object(state_props, vec!["goal".into(), "status".into()])
                .describe(format!("The state of a goal of action `{name}`.")),
        );
        let state = || Schema::component(&state_name);

        // Requests.
        self.channel(
            &events_id,
            events_address.clone(),
            format!("Replies and events of {name}"),
            "A client's event topic for this action: replies to its goal, cancel and attach \
             requests (with correlation data) and the events of the goals it follows (without), \
             all at QoS 1 and in order."
                .to_string(),
        );
        let mut reply = message(name, &format!("Reply of {name}"), state(), reply_binding());
        reply.headers = Some(headers(vec![("ReturnCode", return_code_ok())], &["ReturnCode"]));
        reply.correlation_id = correlation_id();
        reply.examples.extend(example(
            "accepted",
            Some(ex!({"ReturnCode": "0"})),
            ex!({"goal": example::GOAL_ID, "status": "accepted"}),
        ));
        let reply = self.add_message(&events_id, "reply", reply);
        let mut reject_props = OrderedMap::default();
        reject_props.insert("goal", goal_id());
        reject_props.insert("message", Schema::of("string"));
        reject_props.insert(
            "details",
            Schema::default()
                .describe("The error's details; for a declared error, the object of its fields."),
        );
        let mut rejection = message(
            name,
            &format!("Rejection of {} request", with_article(name)),
            Schema::object(reject_props, vec!["goal".into(), "message".into()]),
            reply_binding(),
        );
        rejection.headers =
            Some(headers(error_headers(&action.errors), &["ReturnCode", "DebugInfo"]));
        rejection.correlation_id = correlation_id();
        rejection.examples.extend(example(
            "tooManyGoals",
            Some(ex!({"ReturnCode": "15", "DebugInfo": "…", "ErrorName": "TooManyGoals"})),
            ex!({"goal": example::GOAL_ID, "message": "…"}),
        ));
        let rejection = self.add_message(&events_id, "rejection", rejection);

        let requests: [(&str, &str, Schema, Option<Ex>, &str); 3] = [
            (
                "goal",
                "Start a goal",
                {
                    let mut props = OrderedMap::default();
                    props.insert("goal", goal_id());
                    let mut args = fields_schema(&action.goal);
                    args.description = Some("The goal's values.".to_string());
                    props.insert("args", args);
                    Schema::object(props, vec!["goal".into(), "args".into()])
                },
                self.examples
                    .object(&action.goal)
                    .map(|args| ex!({"goal": example::GOAL_ID, "args": args})),
                "Accepted (`accepted`) or rejected; the server then sends the goal's events.",
            ),
            (
                "cancel",
                "Cancel a goal",
                {
                    let mut props = OrderedMap::default();
                    props.insert("goal", goal_id());
                    Schema::object(props, vec!["goal".into()])
                },
                Some(ex!({"goal": example::GOAL_ID})),
                "Answered with the goal's state: `canceling`, or its end state if it has ended.",
            ),
            (
                "attach",
                "Attach to or query a goal",
                {
                    let mut props = OrderedMap::default();
                    props.insert("goal", goal_id());
                    props.insert(
                        "follow",
                        Schema::of("boolean").describe(
                            "`true` makes the sender the goal's owner and a receiver of its later \
                         events; `false` is a status query.",
                        ),
                    );
                    Schema::object(props, vec!["goal".into(), "follow".into()])
                },
                Some(ex!({"goal": example::GOAL_ID, "follow": true})),
                "Answered with the goal's state, before any later event.",
            ),
        ];
        for (kind, title, payload, sample, answer) in requests {
            let id = format!("action{}.{name}", capitalize(kind));
            self.channel(
                &id,
                format!("{base}/{kind}"),
                format!("{title} of {name}"),
                paragraphs(&documentation, answer),
            );
            let mut msg = message(
                name,
                &format!("{title} of {name}"),
                payload,
                request_binding(&events_address),
            );
            msg.headers = Some(headers(vec![("ClientId", client_id_header())], &[]));
            msg.correlation_id = correlation_id();
            msg.examples.extend(example(kind, Some(ex!({"ClientId": "app-1"})), sample));
            let msg = self.add_message(&id, kind, msg);
            self.operation(
                format!("handle{}.{name}", capitalize(kind)),
                Action::Receive,
                &id,
                format!("{title} of {name}"),
                answer.to_string(),
                vec![msg],
                Some(Reply {
                    channel: Reference::to(format!("channels/{events_id}")),
                    messages: vec![reply.clone(), rejection.clone()],
                }),
                op_binding(&mqtt::ACTION_REQUESTS, None),
            );
        }

        // Goal events.
        let goal_event = |kind: &str| Schema::constant_string(kind).describe("The event's kind.");
        let mut status = message(
            name,
            &format!("Status of {} goal", with_article(name)),
            state(),
            plain_binding(),
        );
        status.headers = Some(headers(vec![("GoalEvent", goal_event("status"))], &["GoalEvent"]));
        status.examples.extend(example(
            "executing",
            Some(ex!({"GoalEvent": "status"})),
            ex!({"goal": example::GOAL_ID, "status": "executing"}),
        ));
        let status = self.add_message(&events_id, "status", status);
        let mut props = OrderedMap::default();
        props.insert("goal", goal_id());
        let mut feedback_schema = fields_schema(&action.feedback);
        feedback_schema.description = Some("The feedback values.".to_string());
        props.insert("feedback", feedback_schema);
        let mut feedback = message(
            name,
            &format!("Feedback of {} goal", with_article(name)),
            Schema::object(props, vec!["goal".into(), "feedback".into()]),
            plain_binding(),
        );
        feedback.headers =
            Some(headers(vec![("GoalEvent", goal_event("feedback"))], &["GoalEvent"]));
        feedback.examples.extend(example(
            "feedback",
            Some(ex!({"GoalEvent": "feedback"})),
            self.examples
                .object(&action.feedback)
                .map(|feedback| ex!({"goal": example::GOAL_ID, "feedback": feedback})),
        ));
        let feedback = self.add_message(&events_id, "feedback", feedback);
        let mut finished =
            message(name, &format!("End of {} goal", with_article(name)), state(), plain_binding());
        finished.headers = Some(headers(
            vec![
                ("GoalEvent", goal_event("finished")),
                (
                    "ReturnCode",
                    Schema {
                        pattern: Some("^([0-9]|1[0-5])$"),
                        ..user_property("`0`, or the error's code when the goal `failed`.")
                    },
                ),
            ],
            &["GoalEvent", "ReturnCode"],
        ));
        finished.examples.extend(example(
            "succeeded",
            Some(ex!({"GoalEvent": "finished", "ReturnCode": "0"})),
            self.examples.object(&action.result).map(
                |result| ex!({"goal": example::GOAL_ID, "status": "succeeded", "result": result}),
            ),
        ));
        finished.examples.extend(example(
            "cancelled",
            Some(ex!({"GoalEvent": "finished", "ReturnCode": "0"})),
            ex!({"goal": example::GOAL_ID, "status": "cancelled"}),
        ));
        let finished = self.add_message(&events_id, "finished", finished);
        self.operation(
            format!("sendGoalEvents.{name}"),
            Action::Send,
            &events_id,
            format!("Events of {name} goals"),
            "To every connection following a goal, in order: status `executing`, any number of \
             feedbacks, possibly status `canceling`, and exactly one end state."
                .to_string(),
            vec![status, feedback, finished],
            None,
            op_binding(&mqtt::ACTION_EVENTS, None),
        );
    }
}

fn client_id_header() -> Schema {
    user_property(
        "The sender's MQTT client id (switchboard clients send it; without it the sender is the \
         anonymous peer).",
    )
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    /// An action whose name starts with a vowel gets `an`, as English says it.
    #[test]
    fn titles_pick_the_article_of_the_action_name() {
        let text = "stingeripc:\n  version: 0.1.1\ninterface:\n  name: Valves\n  version: 1.0.0\n\
                    actions:\n  openValve:\n    goal:\n      - name: percent\n        type: integer\n\
                    \x20 count:\n    goal:\n      - name: to\n        type: integer\n";
        let parsed = switchboard_idl::parse("valves.yaml", text, &mut switchboard_idl::NoLoader);
        let iface = parsed.interface.as_ref().expect("a valid interface");
        let document = super::generate(iface, "valves.yaml").expect("a document");
        for title in [
            "Rejection of an openValve request",
            "Status of an openValve goal",
            "Feedback of an openValve goal",
            "End of an openValve goal",
            "Rejection of a count request",
        ] {
            assert!(document.contains(title), "no `{title}` in\n{document}");
        }
        assert!(!document.contains("a openValve"));
    }
}
