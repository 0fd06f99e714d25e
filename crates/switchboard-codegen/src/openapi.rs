//! The OpenAPI target: one OpenAPI 3.1 document (JSON) per interface, describing the HTTP/JSON
//! routes `switchboard web` serves for it.
//!
//! The gateway serves the same document at `/openapi/<Interface>.json`, built by [`document`]
//! from the interface the server describes, so the file `switchboard generate --lang openapi`
//! writes and the served one cannot disagree. Schemas are JSON Schema 2020-12 (OpenAPI 3.1's
//! dialect), built from the interface's types: sized integers carry their `minimum` and
//! `maximum`, binary is a base64 string, datetimes are `date-time` strings, durations ISO 8601
//! strings, optional fields may be `null` or absent, enums take their names or their numbers.
//!
//! JSON rather than YAML, as for AsyncAPI: every OpenAPI tool reads it, and `serde_json` writes
//! it exactly. Object keys are sorted (serde_json's map), so the output is stable.

use serde_json::{Map, Value, json};
use switchboard_idl::{Field, FloatFormat, Interface, Type};

use crate::GenerateError;

/// The OpenAPI version the document declares.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// Where the gateway's service routes start: `/api/services/<Interface>/<instance>/…`.
pub const SERVICES_PATH: &str = "/api/services";

/// A duration as the runtime reads it (`PT1.5S`, `P1DT2H`, `-PT1S`), without look-ahead so
/// that schema-driven test generators can produce matching strings.
const DURATION_PATTERN: &str =
    r"^-?P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$";

/// The name of the file [`generate`] output belongs in: `<snake_case name>.openapi.json`.
///
/// # Errors
///
/// Fails when the interface name has no usable spelling.
pub fn file_name(iface: &Interface) -> Result<String, GenerateError> {
    let what = format!("interface `{}`", iface.name);
    let snake = crate::names::snake(&iface.name, &what)?;
    Ok(format!("{}.openapi.json", crate::names::unraw(&snake)))
}

/// Generates the OpenAPI 3.1 document of `iface` as pretty-printed JSON ending in a newline;
/// `source_name` names the interface file in the document's description.
///
/// # Errors
///
/// Never fails today; the `Result` keeps the signature in line with the other targets.
pub fn generate(iface: &Interface, source_name: &str) -> Result<String, GenerateError> {
    let document = document(iface, Some(source_name));
    let mut text = serde_json::to_string_pretty(&document)
        .map_err(|e| GenerateError::Syntax(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// The OpenAPI 3.1 document of `iface`; `source_name` names the interface file, if any.
pub fn document(iface: &Interface, source_name: Option<&str>) -> Value {
    let mut description = iface.documentation.clone().or_else(|| iface.summary.clone());
    let origin = match source_name {
        Some(name) => format!("Generated from `{name}` by switchboard."),
        None => "Served by `switchboard web` from the service's own description.".to_owned(),
    };
    description = Some(match description {
        Some(text) => format!("{}\n\n{origin}", text.trim_end()),
        None => origin,
    });
    let mut info = json!({
        "title": iface.title.clone().unwrap_or_else(|| format!("{} (switchboard gateway)", iface.name)),
        "version": iface.version,
        "description": description,
        "x-switchboard-interface": iface.name,
    });
    if let Some(summary) = &iface.summary {
        info["summary"] = json!(summary);
    }
    if let Some(license) = &iface.license {
        info["license"] = json!({ "name": license });
    }
    json!({
        "openapi": OPENAPI_VERSION,
        "info": info,
        "servers": [{ "url": "/", "description": "The `switchboard web` gateway serving this document." }],
        "security": [{}, { "bearer": [] }],
        "tags": [{ "name": iface.name, "description": format!("The {} services the gateway reaches.", iface.name) }],
        "paths": paths(iface),
        "components": components(iface),
    })
}

/// `#/components/schemas/<name>`.
fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `#/components/responses/<name>`.
fn response_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

/// The JSON Schema of a value of type `ty`.
pub fn type_schema(ty: &Type) -> Value {
    match ty {
        Type::Integer { format } => {
            let (min, max) = format.range();
            let bound = |n: i128| {
                i64::try_from(n)
                    .map(Value::from)
                    .or_else(|_| u64::try_from(n).map(Value::from))
                    .unwrap_or(Value::Null)
            };
            json!({ "type": "integer", "format": format.name(), "minimum": bound(min), "maximum": bound(max) })
        }
        Type::Float { format } => json!({
            "type": "number",
            "format": match format { FloatFormat::Float32 => "float", FloatFormat::Float64 => "double" },
        }),
        Type::Boolean => json!({ "type": "boolean" }),
        Type::String => json!({ "type": "string" }),
        Type::DateTime => json!({ "type": "string", "format": "date-time" }),
        Type::Duration => json!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "An ISO 8601 duration, e.g. `PT1.5S`.",
        }),
        Type::Binary => json!({ "type": "string", "contentEncoding": "base64" }),
        Type::Enum { name } | Type::Struct { name } => schema_ref(name),
        Type::Array { item } => json!({ "type": "array", "items": type_schema(item) }),
        Type::Map { value } => {
            json!({ "type": "object", "additionalProperties": type_schema(value) })
        }
        Type::Optional { inner } => json!({ "anyOf": [{ "type": "null" }, type_schema(inner)] }),
    }
}

/// The closed JSON object of `fields`; optional fields may be `null` or absent.
pub fn fields_schema(fields: &[Field]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in fields {
        let mut schema = type_schema(&field.ty);
        if let (Some(text), Some(object)) = (&field.description, schema.as_object_mut()) {
            object.insert("description".to_owned(), json!(text));
        }
        properties.insert(field.name.clone(), schema);
        if !matches!(field.ty, Type::Optional { .. }) {
            required.push(json!(field.name));
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A JSON body of `schema`.
fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

/// A request body of `fields`; required only when some field is.
fn request_body(fields: &[Field], description: &str) -> Value {
    let required = fields.iter().any(|f| !matches!(f.ty, Type::Optional { .. }));
    json!({
        "description": description,
        "required": required,
        "content": json_content(fields_schema(fields)),
    })
}

/// The error responses every service route can give, by status.
fn common_errors(responses: &mut Map<String, Value>) {
    for (status, name) in [
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("404", "NotFound"),
        ("502", "BadGateway"),
        ("503", "Unavailable"),
        ("504", "GatewayTimeout"),
    ] {
        responses.insert(status.to_owned(), response_ref(name));
    }
}

/// The further responses of a request that sends a body and may be refused by the server,
/// with `declared` the errors its member declares.
fn refusals(responses: &mut Map<String, Value>, declared: &[String]) {
    for (status, name) in
        [("403", "Forbidden"), ("409", "Conflict"), ("413", "TooLarge"), ("429", "TooMany")]
    {
        responses.insert(status.to_owned(), response_ref(name));
    }
    let refused = if declared.is_empty() {
        response_ref("Refused")
    } else {
        let mut choices: Vec<Value> =
            declared.iter().map(|e| schema_ref(&format!("error.{e}"))).collect();
        choices.push(schema_ref("switchboard.Error"));
        let names = declared.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ");
        json!({
            "description": format!(
                "The server refused the request: one of the declared errors ({names}), with its \
                 fields in `details`, or another refusal."
            ),
            "content": json_content(json!({ "anyOf": choices })),
        })
    };
    responses.insert("422".to_owned(), refused);
}

/// Which failures an operation lists besides its success.
#[derive(Clone, Copy)]
enum Failures<'a> {
    /// Those every service route can give.
    Common,
    /// Those of a request the server may refuse, with the errors its member declares.
    Refusable(&'a [String]),
}

/// The responses of an operation: `success` under `status`, then its failures.
fn responses(status: &str, success: Value, failures: Failures<'_>) -> Map<String, Value> {
    let mut responses = Map::new();
    responses.insert(status.to_owned(), success);
    common_errors(&mut responses);
    if let Failures::Refusable(declared) = failures {
        refusals(&mut responses, declared);
    }
    responses
}

/// A response whose body is JSON of `schema`.
fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": json_content(schema) })
}

/// A server-sent event stream whose events are described in `x-switchboard-events`.
fn event_stream(description: &str, events: Value) -> Value {
    json!({
        "description": description,
        "content": {
            "text/event-stream": {
                "schema": { "type": "string", "description": "Server-sent events; each `data:` line is one JSON object." },
                "x-switchboard-events": events,
            }
        }
    })
}

/// The event a signal produces on a stream.
fn signal_event(signal: &switchboard_idl::Signal) -> Value {
    json!({
        "type": "object",
        "properties": { "signal": { "const": signal.name }, "args": fields_schema(&signal.fields) },
        "required": ["signal", "args"],
    })
}

/// The event a property change produces on a stream.
fn property_event(property: &switchboard_idl::Property) -> Value {
    json!({
        "type": "object",
        "properties": {
            "property": { "const": property.name },
            "version": { "anyOf": [{ "type": "null" }, { "type": "integer", "minimum": 0 }] },
            "value": fields_schema(&property.fields),
        },
        "required": ["property", "value"],
    })
}

/// The warning event: a stream missed events or one of its subscriptions failed.
fn warning_event() -> Value {
    json!({ "type": "object", "properties": { "warning": { "type": "string" } }, "required": ["warning"] })
}

/// The events of the all-members stream by kind (`signal`, `property`, `warning`).
fn events_by_kind(events: &[Value]) -> Value {
    let mut kinds = Map::new();
    for kind in ["signal", "property"] {
        let of_kind: Vec<Value> =
            events.iter().filter(|e| e["properties"].get(kind).is_some()).cloned().collect();
        if !of_kind.is_empty() {
            kinds.insert(kind.to_owned(), json!({ "anyOf": of_kind }));
        }
    }
    kinds.insert("warning".to_owned(), warning_event());
    Value::Object(kinds)
}

fn doc(documentation: &Option<String>) -> Option<String> {
    documentation.as_ref().map(|d| d.trim_end().to_owned())
}

/// One operation: its tag, id and summary, its request body if it takes one, its responses,
/// and the member's documentation as its description.
fn operation(
    tag: &str,
    id: String,
    summary: String,
    request: Option<Value>,
    responses: Map<String, Value>,
    documentation: &Option<String>,
) -> Value {
    let mut operation = Map::new();
    operation.insert("tags".to_owned(), json!([tag]));
    operation.insert("operationId".to_owned(), json!(id));
    operation.insert("summary".to_owned(), json!(summary));
    if let Some(request) = request {
        operation.insert("requestBody".to_owned(), request);
    }
    operation.insert("responses".to_owned(), Value::Object(responses));
    if let Some(text) = doc(documentation) {
        operation.insert("description".to_owned(), json!(text));
    }
    Value::Object(operation)
}

/// A GET operation streaming events, described by `stream` (an [`event_stream`]).
fn stream_operation(
    tag: &str,
    id: String,
    summary: String,
    stream: Value,
    documentation: &Option<String>,
) -> Value {
    operation(tag, id, summary, None, responses("200", stream, Failures::Common), documentation)
}

fn paths(iface: &Interface) -> Value {
    let tag = iface.name.as_str();
    let base = format!("{SERVICES_PATH}/{}/{{instance}}", iface.name);
    let mut paths = Map::new();
    let instance = json!({
        "name": "instance", "in": "path", "required": true,
        "description": "The service instance (`default` for the standard Unix socket).",
        "schema": { "type": "string", "minLength": 1 },
    });

    let list = responses(
        "200",
        json_response("The services found.", schema_ref("switchboard.ServiceList")),
        Failures::Common,
    );
    let summary =
        "Lists the running services the gateway finds (the discovery `switchboard list` uses).";
    paths.insert(
        SERVICES_PATH.to_owned(),
        json!({ "get": operation(tag, "listServices".to_owned(), summary.to_owned(), None, list, &None) }),
    );

    let describe = responses(
        "200",
        json_response(
            "The interface, as the server describes it (`switchboard introspect --format json`).",
            json!({ "type": "object" }),
        ),
        Failures::Common,
    );
    let summary = format!("Describes {}.", iface.name);
    paths.insert(
        base.clone(),
        json!({
            "parameters": [instance],
            "get": operation(tag, "describe".to_owned(), summary, None, describe, &None),
        }),
    );

    let mut all_events: Vec<Value> = Vec::new();

    for method in &iface.methods {
        let post = operation(
            tag,
            format!("call_{}", method.name),
            format!("Calls `{}`.", method.name),
            Some(request_body(&method.arguments, "The arguments, by name.")),
            responses(
                "200",
                json_response("The method's return values.", fields_schema(&method.returns)),
                Failures::Refusable(&method.errors),
            ),
            &method.documentation,
        );
        paths.insert(
            format!("{base}/methods/{}", method.name),
            json!({ "parameters": [instance], "post": post }),
        );
    }

    for property in &iface.properties {
        let value = fields_schema(&property.fields);
        let get = operation(
            tag,
            format!("get_{}", property.name),
            format!("Reads `{}`.", property.name),
            None,
            responses(
                "200",
                json_response("The property's value.", value.clone()),
                Failures::Common,
            ),
            &property.documentation,
        );
        let mut item = json!({ "parameters": [instance], "get": get });
        if !property.read_only {
            item["put"] = operation(
                tag,
                format!("set_{}", property.name),
                format!("Replaces `{}`.", property.name),
                Some(request_body(&property.fields, "The new value.")),
                responses("200", json_response("The value set.", value), Failures::Refusable(&[])),
                &None,
            );
        }
        paths.insert(format!("{base}/properties/{}", property.name), item);
        let event = property_event(property);
        all_events.push(event.clone());
        let stream = stream_operation(
            tag,
            format!("property_events_{}", property.name),
            format!("Streams `{}`: its value now and every change.", property.name),
            event_stream(
                "One `property` event per value; `warning` events when changes were missed.",
                json!({ "property": event, "warning": warning_event() }),
            ),
            &None,
        );
        paths.insert(
            format!("{base}/properties/{}/events", property.name),
            json!({ "parameters": [instance], "get": stream }),
        );
    }

    for signal in &iface.signals {
        let event = signal_event(signal);
        all_events.push(event.clone());
        let stream = stream_operation(
            tag,
            format!("signal_events_{}", signal.name),
            format!("Streams the `{}` signal.", signal.name),
            event_stream(
                "One `signal` event per signal received; `warning` events when some were missed.",
                json!({ "signal": event, "warning": warning_event() }),
            ),
            &signal.documentation,
        );
        paths.insert(
            format!("{base}/signals/{}/events", signal.name),
            json!({ "parameters": [instance], "get": stream }),
        );
    }

    if !all_events.is_empty() {
        let stream = stream_operation(
            tag,
            "watch".to_owned(),
            "Streams every signal and property change of the service.".to_owned(),
            event_stream(
                "`signal` and `property` events, as the streams of each member give them.",
                events_by_kind(&all_events),
            ),
            &None,
        );
        paths.insert(format!("{base}/events"), json!({ "parameters": [instance], "get": stream }));
    }

    for command in &iface.commands {
        let post = operation(
            tag,
            format!("command_{}", command.name),
            format!("Sends the `{}` command.", command.name),
            Some(request_body(&command.arguments, "The arguments, by name.")),
            responses(
                "202",
                json_response(
                    "The command was handed to the transport (commands get no answer).",
                    json!({ "type": "object", "additionalProperties": false }),
                ),
                Failures::Refusable(&[]),
            ),
            &command.documentation,
        );
        paths.insert(
            format!("{base}/commands/{}", command.name),
            json!({ "parameters": [instance], "post": post }),
        );
    }

    for action in &iface.actions {
        let goal_param = json!({
            "name": "goal", "in": "path", "required": true,
            "description": "The goal's id, as starting it returned.",
            "schema": { "type": "string", "minLength": 1 },
        });
        let state = schema_ref(&format!("goal.{}", action.name));
        let post = operation(
            tag,
            format!("start_{}", action.name),
            format!("Starts a goal of the `{}` action.", action.name),
            Some(request_body(&action.goal, "The goal, by field.")),
            responses(
                "202",
                json_response(
                    "The goal was accepted and runs; follow it with its `events`.",
                    state.clone(),
                ),
                Failures::Refusable(&action.errors),
            ),
            &action.documentation,
        );
        paths.insert(
            format!("{base}/actions/{}/goals", action.name),
            json!({ "parameters": [instance], "post": post }),
        );
        let get = operation(
            tag,
            format!("goal_{}", action.name),
            format!("Reads the state of a `{}` goal.", action.name),
            None,
            responses(
                "200",
                json_response(
                    "The goal's state: its latest feedback, and its end once it ended.",
                    state.clone(),
                ),
                Failures::Common,
            ),
            &None,
        );
        let cancel = operation(
            tag,
            format!("cancel_{}", action.name),
            format!(
                "Cancels a `{}` goal and waits (a few seconds at most) for its end.",
                action.name
            ),
            None,
            responses(
                "200",
                json_response(
                    "The goal's state after cancelling: `cancelled`, or how it ended first.",
                    state.clone(),
                ),
                Failures::Common,
            ),
            &None,
        );
        paths.insert(
            format!("{base}/actions/{}/goals/{{goal}}", action.name),
            json!({ "parameters": [instance, goal_param], "get": get, "delete": cancel }),
        );
        let stream = stream_operation(
            tag,
            format!("follow_{}", action.name),
            format!("Streams a `{}` goal: each feedback, then its end.", action.name),
            event_stream(
                "`feedback` events, then one `end` event with the goal's final state; the stream then closes.",
                json!({
                    "feedback": { "type": "object", "properties": { "feedback": fields_schema(&action.feedback) }, "required": ["feedback"] },
                    "end": state,
                }),
            ),
            &None,
        );
        paths.insert(
            format!("{base}/actions/{}/goals/{{goal}}/events", action.name),
            json!({ "parameters": [instance, goal_param], "get": stream }),
        );
    }
    Value::Object(paths)
}

/// The error body every failure carries.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "A failure. `kind` says whose: `usage` (the request does not fit the interface), \
                        `not_found`, `remote` (the server refused: `name`, `code` and the declared error's \
                        fields in `details`), `timeout`, `transport` (the connection failed or broke), `local`.",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "kind": { "type": "string", "enum": ["usage", "not_found", "remote", "timeout", "transport", "local", "interrupted"] },
                    "name": { "type": "string" },
                    "code": { "type": "integer", "minimum": 0, "maximum": 255 },
                    "message": { "type": "string" },
                    "details": {},
                },
                "required": ["kind", "message"],
            }
        },
        "required": ["error"],
    })
}

/// The body of one declared error.
fn declared_error_schema(error: &switchboard_idl::ErrorDef) -> Value {
    let mut schema = json!({
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "kind": { "const": "remote" },
                    "name": { "const": error.name },
                    "code": { "const": 1 },
                    "message": { "type": "string" },
                    "details": fields_schema(&error.fields),
                },
                "required": ["kind", "name", "code", "message"],
            }
        },
        "required": ["error"],
    });
    if let Some(text) = doc(&error.documentation) {
        schema["description"] = json!(text);
    }
    schema
}

/// The state of a goal of `action`.
fn goal_state_schema(action: &switchboard_idl::Action) -> Value {
    json!({
        "type": "object",
        "properties": {
            "goal": { "type": "string" },
            "action": { "const": action.name },
            "status": { "type": "string", "enum": ["accepted", "running", "succeeded", "failed", "cancelled"] },
            "feedback": { "anyOf": [{ "type": "null" }, fields_schema(&action.feedback)] },
            "result": fields_schema(&action.result),
            "error": schema_ref("switchboard.Error"),
        },
        "required": ["goal", "action", "status"],
    })
}

fn components(iface: &Interface) -> Value {
    let mut schemas = Map::new();
    for def in &iface.enums {
        let numbers: Vec<Value> = def.values.iter().map(|v| json!(v.value)).collect();
        let names: Vec<Value> = def.values.iter().map(|v| json!(v.name)).collect();
        let mut schema = json!({
            "title": def.name,
            "anyOf": [
                { "type": "integer", "enum": numbers, "description": "The value's number, as the wire carries it (replies use it)." },
                { "type": "string", "enum": names, "description": "The value's name (accepted in requests)." },
            ],
            "x-enum-names": def.values.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
        });
        if let Some(text) = doc(&def.documentation) {
            schema["description"] = json!(text);
        }
        schemas.insert(def.name.clone(), schema);
    }
    for def in &iface.structs {
        let mut schema = fields_schema(&def.fields);
        schema["title"] = json!(def.name);
        if let Some(text) = doc(&def.documentation) {
            schema["description"] = json!(text);
        }
        schemas.insert(def.name.clone(), schema);
    }
    for error in &iface.errors {
        schemas.insert(format!("error.{}", error.name), declared_error_schema(error));
    }
    for action in &iface.actions {
        schemas.insert(format!("goal.{}", action.name), goal_state_schema(action));
    }
    schemas.insert("switchboard.Error".to_owned(), error_schema());
    schemas.insert(
        "switchboard.ServiceList".to_owned(),
        json!({
            "type": "object",
            "properties": {
                "services": { "type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "interface": { "type": "string" },
                        "instance": { "type": "string" },
                        "version": { "type": "string" },
                        "title": { "anyOf": [{ "type": "null" }, { "type": "string" }] },
                        "transport": { "type": "string" },
                        "address": { "type": "string" },
                    },
                    "required": ["interface", "instance", "version"],
                } }
            },
            "required": ["services"],
        }),
    );
    let error = |description: &str| json!({ "description": description, "content": json_content(schema_ref("switchboard.Error")) });
    json!({
        "schemas": schemas,
        "responses": {
            "BadRequest": error("The request does not fit the interface: not JSON, a missing or unknown field, a value of the wrong type (`usage`), or the server could not decode it."),
            "Unauthorized": error("The gateway needs `Authorization: Bearer <token>` and the request lacks it or carries another token."),
            "Forbidden": error("The server does not allow this (a read-only property, access denied)."),
            "NotFound": error("No such service, instance, member or goal."),
            "Conflict": error("The request is out of date (a property changed meanwhile)."),
            "TooLarge": error("The request body is larger than the gateway accepts (1 MiB)."),
            "Refused": error("The server refused the request (`remote`, code 1)."),
            "TooMany": error("The server refuses for now: too many goals, or it cannot serve now."),
            "BadGateway": error("The server failed (an internal error) or the connection to it failed or broke (`transport`)."),
            "Unavailable": error("The gateway cannot take this on now: too many open event streams, running goals or connected services."),
            "GatewayTimeout": error("The server did not answer in time (`timeout`)."),
        },
        "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer", "description": "Required when the gateway was started with `--token`." }
        },
    })
}
