//! The Markdown target: a reference document for people.
//!
//! One file per interface: an overview; every signal, property, method, command, action, error,
//! struct, enum and constant with tables of names, types and documentation; the topics and
//! messages on each transport with example payloads; Mermaid sequence diagrams; and short Rust,
//! Python and C++ usage snippets. Example values come from `asyncapi::example`, so they are the
//! same as the AsyncAPI document's and never change between runs. The Rust and C++ snippets are
//! written against the names their targets really generate (each target's lowered view model).
//! The workspace's tests compile the Rust snippets of the committed references
//! (`tests/it/reference_docs.rs`), type-check their Python snippets with `mypy --strict`
//! (`crates/switchboard-codegen/tests/docs.rs`), and compile the C++ snippets of the example
//! interfaces against their generated headers with g++ and clang++ (`tests/it/cpp.rs`).

mod cpp_snippets;
mod snippets;

use std::fmt::Write as _;

use switchboard_idl::{ConstantValue, Dialect, Field, FloatFormat, Interface, Type};

use crate::GenerateError;
use crate::asyncapi::example::{self, Examples, Value, ex};
use crate::asyncapi::topics::Topics;
use switchboard_wire::{
    broker::{self, Address},
    mqtt::{self, TopicKind},
    unix::{self, FrameKind},
};

/// The name of the file [`generate`] output belongs in: `<snake_case name>.md`.
///
/// # Errors
///
/// Fails when the interface name has no usable spelling.
pub fn file_name(iface: &Interface) -> Result<String, GenerateError> {
    let what = format!("interface `{}`", iface.name);
    let snake = crate::names::snake(&iface.name, &what)?;
    Ok(format!("{}.md", crate::names::unraw(&snake)))
}

/// Generates the Markdown reference of `iface`.
///
/// # Errors
///
/// Fails when names from the interface file cannot become Rust identifiers (for the snippets).
pub fn generate(iface: &Interface, source_name: &str) -> Result<String, GenerateError> {
    let rust = snippets::rust(iface, source_name)?;
    let rust_server = snippets::rust_server(iface, source_name)?;
    let python = snippets::python(iface);
    let cpp = cpp_snippets::client(iface, source_name)
        .and_then(|client| Ok((client, cpp_snippets::server(iface, source_name)?)));
    let mut doc = Doc {
        iface,
        out: String::new(),
        topics: Topics::new(iface),
        examples: Examples::new(iface),
    };
    doc.header(source_name);
    doc.overview();
    doc.signals();
    doc.properties();
    doc.methods();
    doc.commands();
    doc.actions();
    doc.errors();
    doc.structs();
    doc.enums();
    doc.constants();
    doc.transports();
    doc.diagrams();
    doc.usage(&rust, &rust_server, &python, &cpp);
    let mut out = doc.out;
    while out.ends_with("\n\n") {
        out.pop();
    }
    Ok(out)
}

/// The Rust usage snippet alone, exactly as it appears in the reference's `rust` code block.
///
/// # Errors
///
/// Fails when names from the interface file cannot become Rust identifiers.
pub fn rust_snippet(iface: &Interface, source_name: &str) -> Result<String, GenerateError> {
    snippets::rust(iface, source_name)
}

struct Doc<'a> {
    iface: &'a Interface,
    out: String,
    topics: Topics,
    examples: Examples<'a>,
}

/// Makes `text` safe inside a table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

fn opt_cell(text: &Option<String>) -> String {
    text.as_deref().map(cell).unwrap_or_default()
}

/// The anchor of a type definition.
fn anchor(kind: &str, name: &str) -> String {
    format!("{kind}-{}", name.to_ascii_lowercase())
}

/// A type as people read it, with links to enums and structs.
fn type_name(ty: &Type) -> String {
    match ty {
        Type::Integer { format } => format!("integer ({})", format.name()),
        Type::Float { format: FloatFormat::Float32 } => "float (float32)".to_string(),
        Type::Float { format: FloatFormat::Float64 } => "float (float64)".to_string(),
        Type::Boolean => "boolean".to_string(),
        Type::String => "string".to_string(),
        Type::DateTime => "datetime".to_string(),
        Type::Duration => "duration".to_string(),
        Type::Binary => "binary".to_string(),
        Type::Enum { name } => format!("enum [`{name}`](#{})", anchor("enum", name)),
        Type::Struct { name } => format!("struct [`{name}`](#{})", anchor("struct", name)),
        Type::Array { item } => format!("array of {}", type_name(item)),
        Type::Map { value } => format!("map of string to {}", type_name(value)),
        Type::Optional { inner } => format!("{} or null", type_name(inner)),
    }
}

/// Compact JSON, or the note that stands for an example left out.
fn json(value: Option<Value>) -> String {
    value.map_or_else(|| format!("({})", example::LEFT_OUT), |value| value.to_json())
}

impl Doc<'_> {
    fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn blank(&mut self) {
        if !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn para(&mut self, text: &str) {
        let text = text.trim();
        if !text.is_empty() {
            self.line(text);
            self.blank();
        }
    }

    fn code(&mut self, lang: &str, text: &str) {
        let _ = writeln!(self.out, "```{lang}\n{}\n```", text.trim_end());
        self.blank();
    }

    fn fields_table(&mut self, fields: &[Field], empty: &str) {
        if fields.is_empty() {
            self.para(empty);
            return;
        }
        self.line("| name | type | description |");
        self.line("| --- | --- | --- |");
        for field in fields {
            let _ = writeln!(
                self.out,
                "| `{}` | {} | {} |",
                field.name,
                type_name(&field.ty),
                opt_cell(&field.description)
            );
        }
        self.blank();
    }

    fn example_object(&mut self, title: &str, fields: &[Field]) {
        let value = self.examples.object(fields);
        self.example(title, value);
    }

    /// An example under `title`, pretty-printed, or the note that it was left out.
    fn example(&mut self, title: &str, value: Option<Value>) {
        self.para(title);
        match value {
            Some(value) => self.code("json", &value.to_pretty_json()),
            None => self.para(&format!("({}.)", example::LEFT_OUT)),
        }
    }

    fn header(&mut self, source_name: &str) {
        let iface = self.iface;
        let title = iface.title.clone().unwrap_or_else(|| iface.name.clone());
        let _ = writeln!(self.out, "# {title}");
        self.blank();
        self.para(&format!(
            "<!-- @generated by switchboard from `{source_name}`; do not edit. -->\n\
             Reference of the `{}` interface, version {}, generated from `{source_name}`.",
            iface.name, iface.version
        ));
        if let Some(summary) = &iface.summary {
            self.para(summary);
        }
        if let Some(documentation) = &iface.documentation {
            self.para(documentation);
        }
        self.line("## Contents");
        self.blank();
        let mut sections = vec![("Overview", "overview")];
        let iface = self.iface;
        for (present, title, id) in [
            (!iface.signals.is_empty(), "Signals", "signals"),
            (!iface.properties.is_empty(), "Properties", "properties"),
            (!iface.methods.is_empty(), "Methods", "methods"),
            (!iface.commands.is_empty(), "Commands", "commands"),
            (!iface.actions.is_empty(), "Actions", "actions"),
            (!iface.errors.is_empty(), "Errors", "errors"),
            (!iface.structs.is_empty(), "Structs", "structs"),
            (!iface.enums.is_empty(), "Enums", "enums"),
            (!iface.constants.is_empty(), "Constants", "constants"),
        ] {
            if present {
                sections.push((title, id));
            }
        }
        sections.extend([
            ("On the wire", "on-the-wire"),
            ("Sequence diagrams", "sequence-diagrams"),
            ("Usage", "usage"),
        ]);
        for (title, id) in sections {
            let _ = writeln!(self.out, "- [{title}](#{id})");
        }
        self.blank();
    }

    fn overview(&mut self) {
        let iface = self.iface;
        self.line("## Overview");
        self.blank();
        self.line("| | |");
        self.line("| --- | --- |");
        let _ = writeln!(self.out, "| interface | `{}` |", iface.name);
        let _ = writeln!(self.out, "| version | {} |", cell(&iface.version));
        if let Some(title) = &iface.title {
            let _ = writeln!(self.out, "| title | {} |", cell(title));
        }
        if let Some(license) = &iface.license {
            let _ = writeln!(self.out, "| license | {} |", cell(license));
        }
        let dialect = match iface.format.dialect {
            Dialect::V0_1 => "0.1.x keys",
            Dialect::V0_3 => "0.3.0 keys",
            _ => "other",
        };
        let _ = writeln!(self.out, "| format | {} ({dialect}) |", cell(&iface.format.version));
        let _ = writeln!(self.out, "| hash | `{}` |", iface.description_hash());
        if !iface.configuration.topic_params.is_empty() {
            let params = iface
                .configuration
                .topic_params
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(self.out, "| MQTT topic params | {params} |");
        }
        self.blank();
        self.line("| what | count | |");
        self.line("| --- | --- | --- |");
        for (what, count, meaning) in [
            ("signals", iface.signals.len(), "server-to-client broadcasts"),
            ("properties", iface.properties.len(), "server-held, versioned values"),
            ("methods", iface.methods.len(), "request/response calls"),
            ("commands", iface.commands.len(), "fire-and-forget calls to the server"),
            ("actions", iface.actions.len(), "long-running goals with feedback and cancellation"),
            ("errors", iface.errors.len(), "declared errors"),
            ("structs", iface.structs.len(), ""),
            ("enums", iface.enums.len(), ""),
        ] {
            let _ = writeln!(self.out, "| {what} | {count} | {meaning} |");
        }
        self.blank();
        self.para(
            "JSON encodings, the same on every transport: enums travel as their integers, \
             optional values as `null`, datetimes as UTC strings such as \
             `2030-01-01T12:00:00Z`, durations as ISO 8601 strings such as `PT1.5S`, binary \
             data as padded base64, maps as objects with string keys.",
        );
    }

    fn signals(&mut self) {
        let iface = self.iface;
        if iface.signals.is_empty() {
            return;
        }
        self.line("## Signals");
        self.blank();
        for signal in &iface.signals {
            let _ = writeln!(self.out, "### `{}`", signal.name);
            self.blank();
            self.para(signal.documentation.as_deref().unwrap_or_default());
            self.fields_table(&signal.fields, "No values: the payload is `{}`.");
            self.example_object("Example payload:", &signal.fields);
        }
    }

    fn properties(&mut self) {
        let iface = self.iface;
        if iface.properties.is_empty() {
            return;
        }
        self.line("## Properties");
        self.blank();
        for property in &iface.properties {
            let access = if property.read_only { "read-only" } else { "read-write" };
            let _ = writeln!(self.out, "### `{}` ({access})", property.name);
            self.blank();
            self.para(property.documentation.as_deref().unwrap_or_default());
            self.fields_table(&property.fields, "");
            self.example_object("Example value:", &property.fields);
        }
    }

    fn declared_errors(&mut self, errors: &[String]) {
        if errors.is_empty() {
            return;
        }
        let list = errors
            .iter()
            .map(|e| format!("[`{e}`](#{})", anchor("error", e)))
            .collect::<Vec<_>>()
            .join(", ");
        self.para(&format!("Declared errors: {list}."));
    }

    fn methods(&mut self) {
        let iface = self.iface;
        if iface.methods.is_empty() {
            return;
        }
        self.line("## Methods");
        self.blank();
        for method in &iface.methods {
            let _ = writeln!(self.out, "### `{}`", method.name);
            self.blank();
            self.para(method.documentation.as_deref().unwrap_or_default());
            self.para("Arguments:");
            self.fields_table(&method.arguments, "None: the arguments are `{}`.");
            self.para("Returns:");
            self.fields_table(&method.returns, "Nothing: the reply is `{}`.");
            self.declared_errors(&method.errors);
            if let Some(timeout) = method.timeout_secs {
                self.para(&format!("Timeout: {timeout} s."));
            }
            self.example_object("Example arguments:", &method.arguments);
            self.example_object("Example reply:", &method.returns);
        }
    }

    fn commands(&mut self) {
        let iface = self.iface;
        if iface.commands.is_empty() {
            return;
        }
        self.line("## Commands");
        self.blank();
        self.para("A command is fire-and-forget: the server never answers, not even on failure.");
        for command in &iface.commands {
            let _ = writeln!(self.out, "### `{}`", command.name);
            self.blank();
            self.para(command.documentation.as_deref().unwrap_or_default());
            self.fields_table(&command.arguments, "No arguments: the payload is `{}`.");
            self.example_object("Example arguments:", &command.arguments);
        }
    }

    fn actions(&mut self) {
        let iface = self.iface;
        if iface.actions.is_empty() {
            return;
        }
        self.line("## Actions");
        self.blank();
        self.para(
            "An action is a long-running goal: the client sends a goal (with a goal id it \
             chooses), the server accepts or rejects it, reports feedback while it runs, and \
             ends it exactly once: `succeeded` with a result, `cancelled`, or `failed` with an \
             error. A client may cancel a goal, or attach to it by its id from another \
             connection.",
        );
        for action in &iface.actions {
            let _ = writeln!(self.out, "### `{}`", action.name);
            self.blank();
            self.para(action.documentation.as_deref().unwrap_or_default());
            self.para("Goal:");
            self.fields_table(&action.goal, "No values: the goal's `args` are `{}`.");
            self.para("Feedback:");
            self.fields_table(&action.feedback, "No values: feedback is `{}`.");
            self.para("Result:");
            self.fields_table(&action.result, "No values: the result is `{}`.");
            self.declared_errors(&action.errors);
            self.example_object("Example goal:", &action.goal);
        }
    }

    fn errors(&mut self) {
        let iface = self.iface;
        if iface.errors.is_empty() {
            return;
        }
        self.line("## Errors");
        self.blank();
        self.para(
            "A declared error travels with return code 1 (client error), its name and message, \
             and its fields as details.",
        );
        for error in &iface.errors {
            let _ = writeln!(
                self.out,
                "<a id=\"{}\"></a>\n### `{}`",
                anchor("error", &error.name),
                error.name
            );
            self.blank();
            self.para(error.documentation.as_deref().unwrap_or_default());
            self.fields_table(&error.fields, "No fields.");
        }
    }

    fn structs(&mut self) {
        let iface = self.iface;
        if iface.structs.is_empty() {
            return;
        }
        self.line("## Structs");
        self.blank();
        for def in &iface.structs {
            let _ = writeln!(
                self.out,
                "<a id=\"{}\"></a>\n### `{}`",
                anchor("struct", &def.name),
                def.name
            );
            self.blank();
            self.para(def.documentation.as_deref().unwrap_or_default());
            if let Some(version) = &def.version {
                self.para(&format!("Version {version}."));
            }
            self.fields_table(&def.fields, "No members: the value is `{}`.");
            let value = self.examples.value(&Type::Struct { name: def.name.clone() });
            self.example("Example:", value);
        }
    }

    fn enums(&mut self) {
        let iface = self.iface;
        if iface.enums.is_empty() {
            return;
        }
        self.line("## Enums");
        self.blank();
        self.para("An enum travels as the integer of its value.");
        for def in &iface.enums {
            let _ = writeln!(
                self.out,
                "<a id=\"{}\"></a>\n### `{}`",
                anchor("enum", &def.name),
                def.name
            );
            self.blank();
            self.para(def.documentation.as_deref().unwrap_or_default());
            self.line("| name | value | description |");
            self.line("| --- | --- | --- |");
            for value in &def.values {
                let _ = writeln!(
                    self.out,
                    "| `{}` | {} | {} |",
                    value.name,
                    value.value,
                    opt_cell(&value.description)
                );
            }
            self.blank();
        }
    }

    fn constants(&mut self) {
        let iface = self.iface;
        if iface.constants.is_empty() {
            return;
        }
        self.line("## Constants");
        self.blank();
        self.line("| name | type | value | description |");
        self.line("| --- | --- | --- | --- |");
        for constant in &iface.constants {
            let (ty, value) = match &constant.value {
                ConstantValue::Integer(v) => ("integer", v.to_string()),
                ConstantValue::Float(v) => ("float", format!("{v:?}")),
                ConstantValue::String(v) => ("string", Value::from(v.clone()).to_json()),
                ConstantValue::Boolean(v) => ("boolean", v.to_string()),
            };
            let _ = writeln!(
                self.out,
                "| `{}` | {ty} | `{}` | {} |",
                constant.name,
                value.replace('|', "\\|"),
                opt_cell(&constant.description)
            );
        }
        self.blank();
    }

    fn transports(&mut self) {
        let iface = self.iface;
        let name = &iface.name;
        self.line("## On the wire");
        self.blank();
        self.para(
            "The payloads above are the same JSON objects on every transport. \
             [docs/wire/unix.md](../wire/unix.md), [docs/wire/mqtt.md](../wire/mqtt.md) and \
             [docs/wire/brokers.md](../wire/brokers.md) specify the transports completely; this \
             section lists what this interface uses.",
        );

        self.line("### Unix socket");
        self.blank();
        self.para(&format!(
            "A server listens on `<dir>/{name}/<instance>.sock` (`unix:` URLs). Every message is \
             one frame: kind, code, correlation id, property version, a name and a JSON payload."
        ));
        self.line("| what | client sends | server answers or pushes | frame name |");
        self.line("| --- | --- | --- | --- |");
        let mut rows: Vec<(String, Vec<FrameKind>, Vec<FrameKind>, String)> = Vec::new();
        for s in &iface.signals {
            let what = format!("signal `{}`", s.name);
            rows.push((
                what,
                vec![unix::SUBSCRIBE, unix::UNSUBSCRIBE],
                vec![unix::SIGNAL],
                s.name.clone(),
            ));
        }
        for p in &iface.properties {
            let mut sent = vec![unix::GET_PROPERTY];
            if !p.read_only {
                sent.push(unix::SET_PROPERTY);
            }
            sent.extend([unix::WATCH, unix::UNWATCH]);
            let answers = vec![unix::PROPERTY_REPLY, unix::PROPERTY_VALUE];
            rows.push((format!("property `{}`", p.name), sent, answers, p.name.clone()));
        }
        for m in &iface.methods {
            let what = format!("method `{}`", m.name);
            rows.push((what, vec![unix::CALL], vec![unix::REPLY], m.name.clone()));
        }
        for c in &iface.commands {
            rows.push((
                format!("command `{}`", c.name),
                vec![unix::COMMAND],
                vec![],
                c.name.clone(),
            ));
        }
        for a in &iface.actions {
            let sent = vec![unix::SEND_GOAL, unix::CANCEL_GOAL, unix::ATTACH_GOAL];
            let answers =
                vec![unix::GOAL_REPLY, unix::GOAL_FEEDBACK, unix::GOAL_STATUS, unix::GOAL_FINISHED];
            rows.push((format!("action `{}`", a.name), sent, answers, a.name.clone()));
        }
        let description = vec![unix::DESCRIPTION];
        rows.push((
            "description".to_string(),
            vec![unix::DESCRIBE],
            description,
            "\"\"".to_string(),
        ));
        for (what, sent, answers, name) in rows {
            let listed = |kinds: Vec<FrameKind>| {
                let kinds: Vec<String> = kinds.iter().map(FrameKind::to_string).collect();
                if kinds.is_empty() { "nothing".to_string() } else { kinds.join(", ") }
            };
            let (sent, answers) = (listed(sent), listed(answers));
            let _ = writeln!(self.out, "| {what} | {sent} | {answers} | `{name}` |");
        }
        self.blank();
        let mut frames = Vec::new();
        if let Some(m) = iface.methods.first() {
            frames.push(format!(
                "c→s  {:<16}7  {}  {}",
                unix::CALL.name,
                m.name,
                json(self.examples.object(&m.arguments))
            ));
            frames.push(format!(
                "s→c  {:<16}7  \"\"  {}",
                unix::REPLY.name,
                json(self.examples.object(&m.returns))
            ));
        }
        if let Some(p) = iface.properties.iter().find(|p| !p.read_only) {
            let value = json(self.examples.object(&p.fields));
            let (set, reply) = (unix::SET_PROPERTY.name, unix::PROPERTY_REPLY.name);
            frames.push(format!("c→s  {set:<16}8  {}  {value}  (version 1)", p.name));
            frames.push(format!("s→c  {reply:<16}8  {}  {value}  (version 2)", p.name));
        }
        if let Some(s) = iface.signals.first() {
            frames.push(format!(
                "s→c  {:<16}0  {}  {}",
                unix::SIGNAL.name,
                s.name,
                json(self.examples.object(&s.fields))
            ));
        }
        if let Some(a) = iface.actions.first() {
            frames.push(format!(
                "c→s  {:<16}9  {}  {}",
                unix::SEND_GOAL.name,
                a.name,
                json(self.examples.object(&a.goal).map(|args| ex!({"goal": "G", "args": args})))
            ));
            frames.push(format!(
                "s→c  {:<16}9  \"\"  {{\"goal\":\"G\",\"status\":\"accepted\"}}",
                unix::GOAL_REPLY.name
            ));
            frames.push(format!(
                "s→c  {:<16}0  {}  {}",
                unix::GOAL_FEEDBACK.name,
                a.name,
                json(
                    self.examples
                        .object(&a.feedback)
                        .map(|feedback| ex!({"goal": "G", "feedback": feedback}))
                )
            ));
        }
        if !frames.is_empty() {
            self.para("Example frames (`direction KIND id name payload`):");
            self.code("text", &frames.join("\n"));
        }

        self.line("### MQTT");
        self.blank();
        self.para(&format!(
            "Topics of this interface (`{{service_id}}` is the server's instance id, \
             `{{client_id}}` a client's MQTT client id). Requests carry the MQTT v5 \
             `ResponseTopic` and `CorrelationData`; replies carry the user properties \
             `ReturnCode` (and on errors `DebugInfo`, `ErrorName`, `ErrorDetails`). The AsyncAPI \
             document [`{}`]({}) describes the same mapping for tools.",
            crate::asyncapi::file_name(iface).unwrap_or_default(),
            crate::asyncapi::file_name(iface).unwrap_or_default()
        ));
        self.line("| what | topic | direction | QoS | retained |");
        self.line("| --- | --- | --- | --- | --- |");
        let rows: Vec<(String, String, &str, &TopicKind)> = {
            let t = &self.topics;
            let row = |what: String, kind: &'static TopicKind, name: &str, direction| {
                (what, t.address(kind, name), direction, kind)
            };
            let mut rows = vec![
                row("interface info".to_string(), &mqtt::INTERFACE_DISCOVERY, "", "server → all"),
                row("description".to_string(), &mqtt::INTERFACE_SCHEMA, "", "server → all"),
                row("presence".to_string(), &mqtt::LWT, "", "each connection"),
            ];
            for s in &iface.signals {
                let n = &s.name;
                rows.push(row(format!("signal `{n}`"), &mqtt::SIGNALS, n, "server → subscribers"));
                rows.push(row(
                    format!("signal `{n}` to one client"),
                    &mqtt::CLIENT_SIGNALS,
                    n,
                    "server → one client",
                ));
            }
            for p in &iface.properties {
                let n = &p.name;
                rows.push(row(
                    format!("property `{n}` value"),
                    &mqtt::PROPERTY_VALUES,
                    n,
                    "server → all",
                ));
                if !p.read_only {
                    rows.push(row(
                        format!("property `{n}` update"),
                        &mqtt::PROPERTY_UPDATES,
                        n,
                        "client → server",
                    ));
                    rows.push(row(
                        format!("property `{n}` update response"),
                        &mqtt::PROPERTY_UPDATE_RESPONSES,
                        n,
                        "server → client",
                    ));
                }
            }
            for m in &iface.methods {
                let n = &m.name;
                rows.push(row(
                    format!("method `{n}` request"),
                    &mqtt::METHOD_REQUESTS,
                    n,
                    "client → server",
                ));
                rows.push(row(
                    format!("method `{n}` response"),
                    &mqtt::METHOD_RESPONSES,
                    n,
                    "server → client",
                ));
            }
            for c in &iface.commands {
                let n = &c.name;
                rows.push(row(format!("command `{n}`"), &mqtt::COMMANDS, n, "client → server"));
            }
            for a in &iface.actions {
                let n = &a.name;
                let base = t.address(&mqtt::ACTION_REQUESTS, n);
                for kind in ["goal", "cancel", "attach"] {
                    rows.push((
                        format!("action `{n}` {kind} request"),
                        format!("{base}/{kind}"),
                        "client → server",
                        &mqtt::ACTION_REQUESTS,
                    ));
                }
                rows.push(row(
                    format!("action `{n}` replies and events"),
                    &mqtt::ACTION_EVENTS,
                    n,
                    "server → client",
                ));
            }
            rows
        };
        for (what, topic, dir, kind) in rows {
            let (qos, retained) = (kind.qos, if kind.retained { "yes" } else { "no" });
            let _ = writeln!(self.out, "| {what} | `{topic}` | {dir} | {qos} | {retained} |");
        }
        self.blank();
        let service = "kitchen";
        let client = "app-1";
        let fill = |topic: String| {
            let mut topic = topic.replace("{service_id}", service).replace("{client_id}", client);
            for param in &iface.configuration.topic_params {
                topic = topic.replace(&format!("{{{param}}}"), "home1");
            }
            topic
        };
        let flags = |kind: &TopicKind| format!("q={} r={}", kind.qos, u8::from(kind.retained));
        let mut lines = Vec::new();
        if let Some(m) = iface.methods.first() {
            lines.push(format!(
                "t={} {q} ct=application/json rt={} cd={} up= | {}",
                fill(self.topics.address(&mqtt::METHOD_REQUESTS, &m.name)),
                fill(self.topics.address(&mqtt::METHOD_RESPONSES, &m.name)),
                example::CORRELATION,
                json(self.examples.object(&m.arguments)),
                q = flags(&mqtt::METHOD_REQUESTS)
            ));
            lines.push(format!(
                "t={} {q} ct=application/json rt= cd={} up=ReturnCode:0 | {}",
                fill(self.topics.address(&mqtt::METHOD_RESPONSES, &m.name)),
                example::CORRELATION,
                json(self.examples.object(&m.returns)),
                q = flags(&mqtt::METHOD_RESPONSES)
            ));
        }
        if let Some(p) = iface.properties.first() {
            lines.push(format!(
                "t={} {q} ct=application/json rt= cd= up=PropertyVersion:1 | {}",
                fill(self.topics.address(&mqtt::PROPERTY_VALUES, &p.name)),
                json(self.examples.object(&p.fields)),
                q = flags(&mqtt::PROPERTY_VALUES)
            ));
        }
        if let Some(s) = iface.signals.first() {
            lines.push(format!(
                "t={} {q} ct=application/json rt= cd= up= | {}",
                fill(self.topics.address(&mqtt::SIGNALS, &s.name)),
                json(self.examples.object(&s.fields)),
                q = flags(&mqtt::SIGNALS)
            ));
        }
        if let Some(c) = iface.commands.first() {
            lines.push(format!(
                "t={} {q} ct=application/json rt= cd= up=ClientId:{client} | {}",
                fill(self.topics.address(&mqtt::COMMANDS, &c.name)),
                json(self.examples.object(&c.arguments)),
                q = flags(&mqtt::COMMANDS)
            ));
        }
        if let Some(a) = iface.actions.first() {
            let events = fill(self.topics.address(&mqtt::ACTION_EVENTS, &a.name));
            lines.push(format!(
                "t={}/goal {q} ct=application/json rt={events} cd={} up=ClientId:{client} | {}",
                fill(self.topics.address(&mqtt::ACTION_REQUESTS, &a.name)),
                example::CORRELATION,
                json(
                    self.examples
                        .object(&a.goal)
                        .map(|args| ex!({"goal": example::GOAL_ID, "args": args}))
                ),
                q = flags(&mqtt::ACTION_REQUESTS)
            ));
            lines.push(format!(
                "t={events} {q} ct=application/json rt= cd={} up=ReturnCode:0 | {}",
                example::CORRELATION,
                json(Some(ex!({"goal": example::GOAL_ID, "status": "accepted"}))),
                q = flags(&mqtt::ACTION_EVENTS)
            ));
            lines.push(format!(
                "t={events} {q} ct=application/json rt= cd= up=GoalEvent:feedback | {}",
                json(
                    self.examples
                        .object(&a.feedback)
                        .map(|feedback| ex!({"goal": example::GOAL_ID, "feedback": feedback}))
                ),
                q = flags(&mqtt::ACTION_EVENTS)
            ));
            lines.push(format!(
                "t={events} {q} ct=application/json rt= cd= up=GoalEvent:finished ReturnCode:0 | {}",
                json(self.examples.object(&a.result).map(|result| ex!({"goal": example::GOAL_ID, "status": "succeeded", "result": result}))),
                q = flags(&mqtt::ACTION_EVENTS)
            ));
        }
        if !lines.is_empty() {
            self.para(&format!(
                "Example messages for service `{service}` and client `{client}` (`t=topic q=QoS \
                 r=retain ct=content type rt=response topic cd=correlation data up=user \
                 properties | payload`):"
            ));
            self.code("text", &lines.join("\n"));
        }
        self.brokers();
    }

    /// The subjects and queues of the brokered layer (NATS, Redis, AMQP), from the same table
    /// `switchboard-broker` builds them from.
    fn brokers(&mut self) {
        let iface = self.iface;
        let name = iface.name.as_str();
        self.line("### NATS, Redis and AMQP");
        self.blank();
        self.para(
            "Subjects and queues of this interface (`{instance}` is the server's instance, \
             `{client}` a client's id, `{request}` a request's number). On NATS a message's \
             metadata travels in `sb-…` headers, on Redis and AMQP in commlib-py's JSON envelope \
             (`{\"header\":{…},\"data\":…}`); a signal is its bare payload everywhere. A \
             *queue* gives each message to one server of the instance, a *topic* to every \
             subscriber; an *inbox* is a queue on Redis and AMQP, and on NATS the subjects \
             under it.",
        );
        self.line("| what | address | kind |");
        self.line("| --- | --- | --- |");
        let mut rows: Vec<(String, &Address, &str)> = Vec::new();
        for m in &iface.methods {
            rows.push((format!("method `{}`", m.name), &broker::METHOD, &m.name));
        }
        for s in &iface.signals {
            rows.push((format!("signal `{}`", s.name), &broker::SIGNAL, &s.name));
        }
        for p in &iface.properties {
            rows.push((format!("property `{}` values", p.name), &broker::PROPERTY, &p.name));
        }
        let mut control = Vec::new();
        if !iface.properties.is_empty() {
            control.push("property reads, updates and watches");
        }
        if !iface.commands.is_empty() {
            control.push("commands");
        }
        if !iface.actions.is_empty() {
            control.push("goals");
        }
        control.push("the description");
        let control = format!("control: {}", switchboard_idl::english::listed(&control, "and"));
        rows.push((control, &broker::CONTROL, ""));
        rows.push(("a server's presence and heartbeats".into(), &broker::PRESENCE, ""));
        rows.push(("a client's presence and heartbeats".into(), &broker::CLIENTS, ""));
        rows.push(("discovery probe".into(), &broker::DISCOVER, ""));
        rows.push(("a client's inbox: answers and events to it".into(), &broker::INBOX, ""));
        rows.push(("(NATS) the answer to one request".into(), &broker::INBOX_REPLY, ""));
        rows.push(("(NATS) events to one client".into(), &broker::INBOX_EVENTS, ""));
        for (what, address, member) in &rows {
            let filled = address.fill(&[("interface", name), ("member", member)]);
            let kind = address.delivery.word();
            let _ = writeln!(self.out, "| {what} | `{filled}` | {kind} |");
        }
        self.blank();
        let instance = [("interface", name), ("instance", "kitchen")];
        let mut peers = Vec::new();
        if let Some(m) = iface.methods.first() {
            let queue = broker::METHOD.fill(&[instance[0], instance[1], ("member", &m.name)]);
            peers.push(format!("`RPCClient(rpc_name=\"{queue}\")` calls `{}`", m.name));
        }
        if let Some(s) = iface.signals.first() {
            let topic = broker::SIGNAL.fill(&[instance[0], instance[1], ("member", &s.name)]);
            peers.push(format!("`Subscriber(topic=\"{topic}\")` receives `{}`", s.name));
        }
        if !peers.is_empty() {
            self.para(&format!(
                "On Redis and AMQP, commlib-py's endpoints reach instance `kitchen` by these \
                 names: {}.",
                switchboard_idl::english::listed(&peers, "and")
            ));
        }
    }

    fn diagrams(&mut self) {
        let iface = self.iface;
        self.line("## Sequence diagrams");
        self.blank();
        let method = iface.methods.first().map_or("someMethod", |m| m.name.as_str());
        let property = iface
            .properties
            .iter()
            .find(|p| !p.read_only)
            .map_or("someProperty", |p| p.name.as_str());
        let action = iface.actions.first().map_or("someAction", |a| a.name.as_str());
        if iface.methods.is_empty()
            || iface.properties.iter().all(|p| p.read_only)
            || iface.actions.is_empty()
        {
            self.para(
                "Where this interface has no such item, the diagrams use a placeholder name.",
            );
        }
        self.line("### A method call");
        self.blank();
        self.code(
            "mermaid",
            &format!(
                "sequenceDiagram\n    participant C as Client\n    participant S as Server\n    \
                 C->>S: call {method}(arguments) with a correlation id\n    \
                 Note over S: the handler runs\n    \
                 S-->>C: reply: return values, or an error code and message"
            ),
        );
        self.line("### A property update");
        self.blank();
        self.code(
            "mermaid",
            &format!(
                "sequenceDiagram\n    participant C as Client\n    participant S as Server\n    \
                 participant W as Watchers\n    \
                 C->>S: update {property} (new value, last version seen: 1)\n    \
                 Note over S: the handler accepts the value\n    \
                 S-->>W: value of {property}, version 2\n    \
                 S-->>C: update response: success, version 2, the value\n    \
                 C->>S: update {property} (based on version 1)\n    \
                 S-->>C: update response: OutOfSync (12), version 2, the current value"
            ),
        );
        self.line("### An action, cancelled");
        self.blank();
        self.code(
            "mermaid",
            &format!(
                "sequenceDiagram\n    participant C as Client\n    participant S as Server\n    \
                 C->>S: goal of {action} (goal id G, goal values)\n    \
                 S-->>C: reply: G accepted\n    \
                 S-->>C: status: G executing\n    \
                 S-->>C: feedback of G\n    \
                 C->>S: cancel G\n    \
                 S-->>C: status: G canceling\n    \
                 S-->>C: reply: G canceling\n    \
                 Note over S: the handler stops\n    \
                 S-->>C: finished: G cancelled"
            ),
        );
    }

    fn usage(
        &mut self,
        rust: &str,
        rust_server: &str,
        python: &str,
        cpp: &Result<(String, String), GenerateError>,
    ) {
        let module = crate::names::snake(&self.iface.name, "the interface")
            .map(|m| crate::names::unraw(&m).to_string())
            .unwrap_or_default();
        self.line("## Usage");
        self.blank();
        self.line("### Rust");
        self.blank();
        self.para(&format!(
            "Generate the code in `build.rs` with `switchboard_codegen::Builder` and include it \
             with `switchboard::include_interface!(\"{module}\")` (or write it to a file with \
             `switchboard generate FILE --lang rust --out DIR` to read the whole generated API). \
             Connect a client to any URL (`unix:`, `mqtt://host?instance=…`):"
        ));
        self.code("rust", rust);
        self.para(
            "Serve the interface by implementing its trait; `switchboard::prelude` names the \
             types the signatures use:",
        );
        self.code("rust", rust_server);
        self.line("### Python");
        self.blank();
        self.para(
            "Generate the package with `switchboard generate FILE --lang python --out DIR`, \
             install it next to the `switchboard` Python runtime, then:",
        );
        self.code("python", python);
        self.line("### C++");
        self.blank();
        let (client, server) = match cpp {
            Ok(snippets) => snippets,
            Err(error) => {
                self.para(&format!("There is no C++ for this interface: {error}."));
                return;
            }
        };
        let namespace =
            crate::cpp::names::snake(&self.iface.name, "the interface").unwrap_or_default();
        self.para(&format!(
            "Generate the header with `switchboard generate FILE --lang cpp --out DIR`; the \
             directory is one CMake target, `{namespace}::interface`, on the `switchboard` C++ \
             runtime. Calls return `std::future`s, whose `get()` throws the server's refusal \
             (a declared error as its own class); callbacks run on the client's thread. \
             Connect a client to a socket path, `unix:///path` or `mqtt://host?instance=…`:"
        ));
        self.code("cpp", client);
        self.para(
            "Serve the interface by implementing its handler; a handler refuses a call by \
             throwing a declared error or a `switchboard::RemoteError`:",
        );
        self.code("cpp", server);
    }
}
