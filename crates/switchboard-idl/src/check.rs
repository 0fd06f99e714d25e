//! Owns validation: walks the expanded YAML tree, reports every problem, and builds the model.

use std::collections::{HashMap, HashSet};

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::english::with_article;
use crate::model::*;
use crate::source::Span;
use crate::yaml::{Node, Value};
use switchboard_wire::mqtt;

/// Words no name may be.
pub(crate) const RESERVED: &[&str] = &[
    "type", "class", "struct", "enum", "list", "map", "set", "optional", "bool", "int", "float",
    "string", "datetime", "duration", "binary",
];

/// The `type` values an argument may have.
const TYPES: &[&str] = &[
    "integer", "float", "boolean", "string", "datetime", "duration", "binary", "enum", "struct",
    "array", "map",
];

const INT_FORMATS: &[&str] =
    &["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"];
const FLOAT_FORMATS: &[&str] = &["float32", "float64"];

const TOP_KEYS: &[&str] = &[
    "stingeripc",
    "switchboard",
    "interface",
    "constants",
    "enums",
    "structures",
    "errors",
    "signals",
    "properties",
    "methods",
    "commands",
    "actions",
    "configuration",
];

const TOP_HINTS: &[(&str, &str)] = &[
    ("enumerations", "enumerations go under `enums`"),
    ("enum", "enumerations go under `enums`"),
    ("enumeration", "enumerations go under `enums`"),
    ("structs", "structures go under `structures`"),
    ("struct", "structures go under `structures`"),
    ("structure", "structures go under `structures`"),
    ("sigs", "signals go under `signals`"),
    ("signal", "signals go under `signals`"),
    ("props", "properties go under `properties`"),
    ("property", "properties go under `properties`"),
    ("method", "methods go under `methods`"),
    ("const", "constants go under `constants`"),
    ("constant", "constants go under `constants`"),
    ("command", "commands go under `commands`"),
    ("action", "actions go under `actions`"),
    ("error", "errors go under `errors`"),
];

const INTERFACE_KEYS: &[&str] =
    &["name", "version", "title", "summary", "documentation", "license"];

const INTERFACE_HINTS: &[(&str, &str)] = &[
    ("enums", "`enums` belongs at the top level, not inside `interface`"),
    ("structures", "`structures` belongs at the top level, not inside `interface`"),
    ("signals", "`signals` belongs at the top level, not inside `interface`"),
    ("properties", "`properties` belongs at the top level, not inside `interface`"),
    ("methods", "`methods` belongs at the top level, not inside `interface`"),
    ("constants", "`constants` belongs at the top level, not inside `interface`"),
    ("description", "use `summary` for one line or `documentation` for Markdown"),
];

const ARG_KEYS: &[&str] = &[
    "name",
    "type",
    "optional",
    "description",
    "enumName",
    "enumVersion",
    "structName",
    "structVersion",
    "itemType",
    "valueType",
    "format",
    "contentType",
    "schema",
    "index",
    "example",
];

const ITEM_KEYS: &[&str] = &[
    "type",
    "optional",
    "description",
    "enumName",
    "enumVersion",
    "structName",
    "structVersion",
    "itemType",
    "valueType",
    "format",
    "contentType",
    "schema",
    "example",
];

const ARG_HINTS: &[(&str, &str)] = &[
    ("documentation", "arguments take a one-line `description`, not `documentation`"),
    ("enum", "name the enumeration with `enumName`"),
    ("struct", "name the structure with `structName`"),
    ("items", "give the element type with `itemType`"),
    ("nullable", "use `optional: true`"),
];

const ITEM_HINTS: &[(&str, &str)] = &[
    ("name", "an `itemType` or `valueType` has no `name`"),
    ("documentation", "use a one-line `description`"),
    ("enum", "name the enumeration with `enumName`"),
    ("struct", "name the structure with `structName`"),
];

/// The keys of `configuration.topics`: the topic kinds an interface file may configure, plus
/// its own placeholders.
fn topic_keys() -> Vec<&'static str> {
    let configurable = mqtt::TOPIC_KINDS.iter().filter(|kind| kind.configurable);
    configurable.map(|kind| kind.key).chain(["params"]).collect()
}

/// Whether a definition section holds enums, structs or errors.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum DefKind {
    Enum,
    Struct,
    Error,
}

impl DefKind {
    fn noun(self) -> &'static str {
        match self {
            DefKind::Enum => "enumeration",
            DefKind::Struct => "structure",
            DefKind::Error => "error",
        }
    }
}

/// Where arguments sit, which decides the version rules.
#[derive(Clone, Copy)]
struct Versioning<'a> {
    /// True when the component has a `version`, which makes `enumVersion`/`structVersion` required.
    required: bool,
    /// What the component is, for messages.
    what: &'a str,
}

/// The keys every component shares, read once.
struct Common {
    name: String,
    what: String,
    documentation: Option<String>,
    version: Option<String>,
    consumers: Vec<String>,
}

/// The `interface` section.
#[derive(Default)]
struct Header {
    name: Option<String>,
    version: Option<String>,
    title: Option<String>,
    summary: Option<String>,
    documentation: Option<String>,
    license: Option<String>,
}

/// The state of one validation run.
pub(crate) struct Checker {
    /// Everything found so far.
    pub(crate) diags: Vec<Diagnostic>,
    dialect: Dialect,
    /// Names of enums, structs and errors with their `version` (if any), gathered before anything else.
    defs: HashMap<(DefKind, String), Option<String>>,
    /// All names per kind, in file order, for suggestions.
    def_names: HashMap<DefKind, Vec<String>>,
}

impl Checker {
    /// Creates an empty checker.
    pub(crate) fn new() -> Self {
        Checker {
            diags: Vec::new(),
            dialect: Dialect::V0_1,
            defs: HashMap::new(),
            def_names: HashMap::new(),
        }
    }

    fn error(
        &mut self,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(code, span, message));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn warn(
        &mut self,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diags.push(Diagnostic::warning(code, span, message));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    /// Returns the entries of a mapping, treating null as empty and reporting anything else.
    fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.value {
            Value::Map(m) => Some(m),
            Value::Null => Some(&[]),
            Value::Bad => None,
            _ => {
                let found = node.kind();
                let d = self.error(
                    "wrong-type",
                    node.span,
                    format!("{what} must be a mapping, found {found}"),
                );
                d.label = Some("expected a mapping".into());
                None
            }
        }
    }

    /// Returns the items of a sequence, treating null as empty and reporting anything else.
    fn seq<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(s) => Some(s),
            Value::Null => Some(&[]),
            Value::Bad => None,
            _ => {
                let found = node.kind();
                let d = self.error(
                    "wrong-type",
                    node.span,
                    format!("{what} must be a list, found {found}"),
                );
                d.label = Some("expected a list".into());
                None
            }
        }
    }

    /// Returns an optional string value, reporting non-strings.
    fn string(&mut self, node: Option<&Node>, what: &str) -> Option<String> {
        let node = node?;
        match &node.value {
            Value::Null | Value::Bad => None,
            Value::Str(s) => Some(s.clone()),
            _ => {
                if let Some(text) = node.scalar_text() {
                    return Some(text.to_string());
                }
                let found = node.kind();
                let d = self.error(
                    "wrong-type",
                    node.span,
                    format!("{what} must be a string, found {found}"),
                );
                d.label = Some("expected a string".into());
                None
            }
        }
    }

    /// Returns an optional boolean value, reporting anything else.
    fn boolean(&mut self, node: Option<&Node>, what: &str) -> Option<bool> {
        let node = node?;
        match &node.value {
            Value::Bool(b) => Some(*b),
            Value::Null | Value::Bad => None,
            _ => {
                let shown = node
                    .scalar_text()
                    .map_or_else(|| node.kind().to_string(), |t| format!("`{t}`"));
                let d = self.error(
                    "wrong-type",
                    node.span,
                    format!("{what} must be `true` or `false`, found {shown}"),
                );
                d.label = Some("expected a boolean".into());
                d.help = Some("write `true` or `false` (YAML 1.2 reads `yes`, `no`, `on` and `off` as strings)".into());
                None
            }
        }
    }

    /// Reports keys outside `allowed`, with a specific hint for known mistakes or a suggestion.
    fn check_keys(
        &mut self,
        entries: &[(Node, Node)],
        allowed: &[&str],
        hints: &[(&str, &str)],
        what: &str,
        lenient: bool,
    ) {
        let what = if what == "the top level" {
            "at the top level".to_string()
        } else {
            format!("in {what}")
        };
        let what = what.as_str();
        for (k, _) in entries {
            let Some(key) = k.as_key() else {
                let found = k.kind();
                let d = self.error(
                    "invalid-key",
                    k.span,
                    format!("keys {what} must be strings, found {found}"),
                );
                d.label = Some("not a string key".into());
                continue;
            };
            if allowed.contains(&key) {
                continue;
            }
            if let Some((_, hint)) = hints.iter().find(|(h, _)| *h == key) {
                let d = self.error("unknown-key", k.span, format!("`{key}` is not allowed {what}"));
                d.label = Some("not allowed here".into());
                d.help = Some((*hint).to_string());
            } else if let Some(sugg) = did_you_mean(key, allowed) {
                let d = self.error("unknown-key", k.span, format!("unknown key `{key}` {what}"));
                d.label = Some("unknown key".into());
                d.help = Some(format!("did you mean `{sugg}`?"));
            } else if lenient {
                let d = self.warn(
                    "unknown-key",
                    k.span,
                    format!("unknown key `{key}` {what} is ignored"),
                );
                d.label = Some("ignored".into());
            } else {
                let d = self.error("unknown-key", k.span, format!("unknown key `{key}` {what}"));
                d.label = Some("unknown key".into());
                d.help = Some(format!("allowed keys: {}", allowed.join(", ")));
            }
        }
    }

    /// Checks a name against the character set and the reserved words.
    fn check_name(&mut self, name: &str, span: Span, what: &str, reserved: bool) {
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            let d =
                self.error("invalid-name", span, format!("{what} `{name}` is not a valid name"));
            d.label = Some("invalid name".into());
            d.help = Some("names may use only letters, digits, `_` and `-`".into());
        } else if !name
            .trim_start_matches(['_', '-'])
            .starts_with(|c: char| c.is_ascii_alphabetic())
        {
            let d = self.error(
                "invalid-name",
                span,
                format!("{what} `{name}` cannot become an identifier in generated code"),
            );
            d.label = Some("unusable in generated code".into());
            d.help = Some(
                "after any leading `_` and `-`, a name must start with a letter: Rust and Python \
                 identifiers cannot start with a digit, and `_` and `-` alone leave no name"
                    .into(),
            );
        } else if reserved && RESERVED.contains(&name) {
            let d =
                self.error("reserved-name", span, format!("{what} `{name}` is a reserved word"));
            d.label = Some("reserved".into());
            d.help = Some(format!("reserved words are: {}", RESERVED.join(" ")));
        }
    }

    /// Returns the name of a map entry's key, checked; `None` when it is not a string.
    fn entry_name(&mut self, key: &Node, what: &str) -> Option<String> {
        let Some(name) = key.scalar_text() else {
            let found = key.kind();
            let d = self.error(
                "invalid-name",
                key.span,
                format!("{what} name must be a string, found {found}"),
            );
            d.label = Some("not a name".into());
            return None;
        };
        let name = name.to_string();
        self.check_name(&name, key.span, what, true);
        Some(name)
    }

    /// Checks a `version` value on an enum, struct or component.
    fn def_version(&mut self, node: Option<&Node>, what: &str) -> Option<String> {
        let node = node?;
        let text = self.string(Some(node), &format!("the `version` of {what}"))?;
        if !is_dotted_version(&text) {
            let d = self.error(
                "invalid-version",
                node.span,
                format!("`{text}` is not a valid version for {what}"),
            );
            d.label = Some("expected up to three dot-separated numbers".into());
            d.help = Some("write it like `1.2.0`".into());
        }
        Some(text)
    }

    /// Runs every check on the expanded root and returns the model when nothing failed.
    pub(crate) fn check(&mut self, root: &Node) -> Option<Interface> {
        let entries = match &root.value {
            Value::Map(m) => m.as_slice(),
            Value::Bad => return None,
            _ => {
                let found = root.kind();
                let d = self.error(
                    "wrong-type",
                    root.span,
                    format!("an interface file must be a mapping, found {found}"),
                );
                d.label = Some("expected keys such as `stingeripc` and `interface`".into());
                return None;
            }
        };
        self.check_keys(entries, TOP_KEYS, TOP_HINTS, "the top level", true);
        let format = self.format_version(root);
        self.dialect = format.dialect;

        // Definitions are named before any argument refers to them.
        for (kind, section) in
            [(DefKind::Enum, "enums"), (DefKind::Struct, "structures"), (DefKind::Error, "errors")]
        {
            self.collect_defs(root, kind, section);
        }
        self.check_def_clashes(root);

        let iface = root.get("interface");
        let Header { name, version, title, summary, documentation, license } =
            self.interface_section(iface, root.span, root.key_span("interface"));

        let constants = self.constants(root.get("constants"));
        let enums = self.enums(root.get("enums"));
        let structs = self.structs(root.get("structures"));
        let errors = self.errors(root.get("errors"));
        let signals = self.signals(root.get("signals"));
        let properties = self.properties(root.get("properties"));
        let methods = self.methods(root.get("methods"));
        let commands = self.commands(root.get("commands"));
        let actions = self.actions(root.get("actions"));
        let configuration = self.configuration(root.get("configuration"));
        self.check_recursion(&structs);
        self.check_nesting(&structs);

        let failed = self.diags.iter().any(|d| d.severity == crate::Severity::Error);
        if failed {
            return None;
        }
        Some(Interface {
            name: name?,
            version: version?,
            title,
            summary,
            documentation,
            license,
            format,
            constants,
            enums,
            structs,
            errors,
            signals,
            properties,
            methods,
            commands,
            actions,
            configuration,
        })
    }

    fn format_version(&mut self, root: &Node) -> FormatVersion {
        let fallback = FormatVersion { version: String::new(), dialect: Dialect::V0_1 };
        let stinger = root.get("stingeripc");
        let ours = root.get("switchboard");
        let (node, key) = match (stinger, ours) {
            (Some(s), Some(_)) => {
                let span = root.key_span("switchboard").unwrap_or(root.span);
                let d = self.error(
                    "conflicting-format",
                    span,
                    "a file declares either `stingeripc` or `switchboard`, not both",
                );
                d.label = Some("second format declaration".into());
                (s, "stingeripc")
            }
            (Some(s), None) => (s, "stingeripc"),
            (None, Some(o)) => (o, "switchboard"),
            (None, None) => {
                let d = self.error(
                    "missing-key",
                    Span { end: root.span.start, ..root.span },
                    "missing the `stingeripc` section",
                );
                d.help = Some("start the file with `stingeripc: {version: 0.1.1}` (or `switchboard: {version: \"0.1\"}`)".into());
                return fallback;
            }
        };
        let Some(entries) = self.map(node, &format!("`{key}`")) else {
            return fallback;
        };
        self.check_keys(entries, &["version"], &[], &format!("`{key}`"), false);
        let Some(vnode) = node.get("version") else {
            let d = self.error("missing-key", node.span, format!("`{key}` needs a `version`"));
            d.label = Some("no `version` here".into());
            return fallback;
        };
        let Some(version) = self.string(Some(vnode), "the format version") else {
            return fallback;
        };
        let dialect = match (key, version.as_str()) {
            ("stingeripc", "0.0.7" | "0.0.8" | "0.0.9" | "0.1.0" | "0.1.1") => Some(Dialect::V0_1),
            ("stingeripc", "0.3.0") => Some(Dialect::V0_3),
            ("switchboard", "0.1" | "0.1.0") => Some(Dialect::V0_1),
            _ => None,
        };
        match dialect {
            Some(dialect) => FormatVersion { version, dialect },
            None => {
                let supported = if key == "stingeripc" {
                    "0.0.7, 0.0.8, 0.0.9, 0.1.0, 0.1.1 and 0.3.0"
                } else {
                    "0.1"
                };
                let d = self.error(
                    "unsupported-version",
                    vnode.span,
                    format!("unsupported {key} format version `{version}`"),
                );
                d.label = Some("not supported".into());
                d.help = Some(format!("supported versions are {supported}"));
                FormatVersion { version, dialect: Dialect::V0_1 }
            }
        }
    }

    fn collect_defs(&mut self, root: &Node, kind: DefKind, section: &str) {
        let Some(node) = root.get(section) else { return };
        let Some(entries) = self.map(node, &format!("`{section}`")) else { return };
        for (k, v) in entries {
            let Some(name) = k.scalar_text() else { continue };
            let version = v.get("version").and_then(|n| n.scalar_text()).map(str::to_string);
            self.defs.insert((kind, name.to_string()), version);
            self.def_names.entry(kind).or_default().push(name.to_string());
        }
    }

    /// Enums, structures and errors share one namespace in generated code.
    fn check_def_clashes(&mut self, root: &Node) {
        let mut seen: HashMap<String, DefKind> = HashMap::new();
        for (kind, section) in
            [(DefKind::Enum, "enums"), (DefKind::Struct, "structures"), (DefKind::Error, "errors")]
        {
            let Some(entries) = root.get(section).and_then(Node::as_map) else { continue };
            for (k, _) in entries {
                let Some(name) = k.scalar_text() else { continue };
                if let Some(prev) = seen.get(name) {
                    let d = self.error(
                        "duplicate-name",
                        k.span,
                        format!(
                            "`{name}` is defined both as {} and as {}",
                            with_article(prev.noun()),
                            with_article(kind.noun())
                        ),
                    );
                    d.label = Some("second definition".into());
                    d.help = Some("enumerations, structures and errors share one namespace".into());
                } else {
                    seen.insert(name.to_string(), kind);
                }
            }
        }
    }

    fn interface_section(
        &mut self,
        node: Option<&Node>,
        root_span: Span,
        key_span: Option<Span>,
    ) -> Header {
        let none = Header::default();
        let Some(node) = node else {
            let d = self.error(
                "missing-key",
                Span { end: root_span.start, ..root_span },
                "missing the `interface` section",
            );
            d.help = Some("add `interface: {name: MyInterface, version: 0.1.0}`".into());
            return none;
        };
        let Some(entries) = self.map(node, "`interface`") else { return none };
        let at = key_span.unwrap_or(node.span);
        self.check_keys(entries, INTERFACE_KEYS, INTERFACE_HINTS, "`interface`", false);
        // An empty value (`name:`) is as missing as no key: without it there is no model.
        let given = |key: &str| node.get(key).filter(|n| !matches!(n.value, Value::Null));
        let name = match given("name") {
            None => {
                let d = self.error("missing-key", at, "`interface` needs a `name`");
                d.label = Some("no `name` here".into());
                None
            }
            Some(n) => {
                let name = self.string(Some(n), "the interface name");
                if let Some(name) = &name {
                    self.check_name(name, n.span, "interface name", true);
                    self.check_len(name, 32, n.span, "the interface name");
                }
                name
            }
        };
        let version = match given("version") {
            None => {
                let d = self.error("missing-key", at, "`interface` needs a `version`");
                d.label = Some("no `version` here".into());
                d.help = Some("use `MAJOR.MINOR.PATCH`, e.g. `version: 1.0.0`".into());
                None
            }
            Some(n) => {
                let v = self.string(Some(n), "the interface version");
                if let Some(v) = &v {
                    self.check_len(v, 32, n.span, "the interface version");
                    if !is_semver(v) {
                        let d = self.warn(
                            "non-semver-version",
                            n.span,
                            format!("interface version `{v}` is not `MAJOR.MINOR.PATCH`"),
                        );
                        d.label = Some("clients compare versions semver-style".into());
                    }
                }
                v
            }
        };
        let title = self.string(node.get("title"), "`title`");
        if let (Some(t), Some(n)) = (&title, node.get("title")) {
            self.check_len(t, 64, n.span, "the title");
        }
        let summary = self.string(node.get("summary"), "`summary`");
        if let (Some(t), Some(n)) = (&summary, node.get("summary")) {
            self.check_len(t, 128, n.span, "the summary");
        }
        let documentation = self.string(node.get("documentation"), "`documentation`");
        let license = self.string(node.get("license"), "`license`");
        Header { name, version, title, summary, documentation, license }
    }

    fn check_len(&mut self, text: &str, max: usize, span: Span, what: &str) {
        let n = text.chars().count();
        if n > max {
            let d = self.error(
                "too-long",
                span,
                format!("{what} is {n} characters long; the limit is {max}"),
            );
            d.label = Some("too long".into());
        }
    }

    fn constants(&mut self, node: Option<&Node>) -> Vec<Constant> {
        let mut out = Vec::new();
        let Some(node) = node else { return out };
        let Some(entries) = self.map(node, "`constants`") else { return out };
        for (k, v) in entries {
            let Some(name) = self.entry_name(k, "constant") else { continue };
            let what = format!("constant `{name}`");
            let Some(body) = self.map(v, &what) else { continue };
            self.check_keys(
                body,
                &["type", "value", "description"],
                &[("documentation", "constants take a one-line `description`")],
                &what,
                false,
            );
            let description = self.string(v.get("description"), "`description`");
            let Some(tnode) = v.get("type") else {
                let d = self.error("missing-key", k.span, format!("{what} needs a `type`"));
                d.help = Some("one of integer, float, string, boolean".into());
                continue;
            };
            let Some(ty) = self.string(Some(tnode), "`type`") else { continue };
            let Some(vnode) = v.get("value") else {
                self.error("missing-key", k.span, format!("{what} needs a `value`"));
                continue;
            };
            let value = match (ty.as_str(), &vnode.value) {
                ("integer", Value::Int(i)) => Some(ConstantValue::Integer(*i)),
                ("float", Value::Int(i)) => Some(ConstantValue::Float(*i as f64)),
                ("float", Value::Float(f)) => Some(ConstantValue::Float(*f)),
                ("string", Value::Str(s)) => Some(ConstantValue::String(s.clone())),
                ("boolean", Value::Bool(b)) => Some(ConstantValue::Boolean(*b)),
                ("integer" | "float" | "string" | "boolean", _) => {
                    let shown = vnode
                        .scalar_text()
                        .map_or_else(|| vnode.kind().to_string(), |t| format!("`{t}`"));
                    let article = if ty == "integer" { "an" } else { "a" };
                    let d = self.error(
                        "wrong-type",
                        vnode.span,
                        format!("the value of {what} must be {article} {ty}, found {shown}"),
                    );
                    d.label = Some(format!("not {article} {ty}"));
                    if ty == "string" {
                        d.help = Some("quote the value to make it a string".into());
                    }
                    None
                }
                _ => {
                    let d = self.error(
                        "unknown-type",
                        tnode.span,
                        format!("constants cannot have type `{ty}`"),
                    );
                    d.label = Some("not a constant type".into());
                    d.help = Some(
                        did_you_mean(&ty, &["integer", "float", "string", "boolean"]).map_or_else(
                            || "use integer, float, string or boolean".to_string(),
                            |s| format!("did you mean `{s}`?"),
                        ),
                    );
                    None
                }
            };
            if let Some(value) = value {
                out.push(Constant { name, value, description, span: k.span });
            }
        }
        out
    }

    fn enums(&mut self, node: Option<&Node>) -> Vec<EnumDef> {
        let mut out = Vec::new();
        let Some(node) = node else { return out };
        let Some(entries) = self.map(node, "`enums`") else { return out };
        for (k, v) in entries {
            let Some(name) = self.entry_name(k, "enumeration") else { continue };
            let what = format!("enumeration `{name}`");
            let Some(body) = self.map(v, &what) else { continue };
            self.check_keys(
                body,
                &["values", "documentation", "version"],
                &[("members", "enumerations list their values under `values`")],
                &what,
                false,
            );
            let documentation = self.string(v.get("documentation"), "`documentation`");
            let version = self.def_version(v.get("version"), &what);
            let Some(vals) = v.get("values") else {
                let d = self.error("missing-key", k.span, format!("{what} needs `values`"));
                d.label = Some("no `values`".into());
                continue;
            };
            let Some(items) = self.seq(vals, &format!("the values of {what}")) else { continue };
            if items.is_empty() {
                let d = self.error("empty-enum", vals.span, format!("{what} has no values"));
                d.label = Some("empty".into());
            }
            let mut values: Vec<EnumValue> = Vec::new();
            let mut value_names: HashSet<String> = HashSet::new();
            let mut numbers: HashMap<i64, String> = HashMap::new();
            let mut max: i64 = 0;
            for item in items {
                let Some(ientries) = self.map(item, &format!("a value of {what}")) else {
                    continue;
                };
                self.check_keys(
                    ientries,
                    &["name", "value", "description"],
                    &[("documentation", "enum values take a one-line `description`")],
                    &format!("a value of {what}"),
                    false,
                );
                let Some(nnode) = item.get("name") else {
                    let d = self.error(
                        "missing-key",
                        item.span,
                        format!("a value of {what} needs a `name`"),
                    );
                    d.label = Some("no `name`".into());
                    continue;
                };
                let Some(vname) = self.string(Some(nnode), "the value name") else { continue };
                self.check_name(&vname, nnode.span, "enum value", false);
                if !value_names.insert(vname.clone()) {
                    let d = self.error(
                        "duplicate-name",
                        nnode.span,
                        format!("{what} has two values named `{vname}`"),
                    );
                    d.label = Some("second value with this name".into());
                }
                let number = match item.get("value") {
                    None => max.checked_add(1),
                    Some(n) => match &n.value {
                        Value::Int(i) => {
                            if let Some(prev) = numbers.get(i) {
                                let d = self.error(
                                    "duplicate-enum-value",
                                    n.span,
                                    format!("{what} uses the integer {i} twice"),
                                );
                                d.label = Some("already used".into());
                                d.help = Some(format!("`{prev}` already has the value {i}"));
                            }
                            Some(*i)
                        }
                        _ => {
                            let shown = n
                                .scalar_text()
                                .map_or_else(|| n.kind().to_string(), |t| format!("`{t}`"));
                            let d = self.error(
                                "wrong-type",
                                n.span,
                                format!("enum value must be an integer, found {shown}"),
                            );
                            d.label = Some("not an integer".into());
                            None
                        }
                    },
                };
                let Some(number) = number else { continue };
                if item.get("value").is_none()
                    && let Some(prev) = numbers.get(&number)
                {
                    let d = self.error(
                        "duplicate-enum-value",
                        nnode.span,
                        format!("{what} uses the integer {number} twice"),
                    );
                    d.label = Some(format!("gets {number} automatically"));
                    d.help = Some(format!("`{prev}` already has the value {number}"));
                }
                max = max.max(number);
                numbers.entry(number).or_insert_with(|| vname.clone());
                let description = self.string(item.get("description"), "`description`");
                values.push(EnumValue { name: vname, value: number, description, span: item.span });
            }
            out.push(EnumDef { name, documentation, version, values, span: k.span });
        }
        out
    }

    fn structs(&mut self, node: Option<&Node>) -> Vec<StructDef> {
        let mut out = Vec::new();
        let Some(node) = node else { return out };
        let Some(entries) = self.map(node, "`structures`") else { return out };
        let (members_key, hints): (&str, &[(&str, &str)]) = match self.dialect {
            Dialect::V0_3 => (
                "values",
                &[
                    ("members", "format 0.3.0 renamed `members` to `values`"),
                    ("fields", "use `values`"),
                ],
            ),
            _ => (
                "members",
                &[
                    (
                        "values",
                        "format 0.1.x lists structure members under `members` (`values` is 0.3.0)",
                    ),
                    ("fields", "use `members`"),
                ],
            ),
        };
        for (k, v) in entries {
            let Some(name) = self.entry_name(k, "structure") else { continue };
            let what = format!("structure `{name}`");
            let Some(body) = self.map(v, &what) else { continue };
            self.check_keys(body, &[members_key, "documentation", "version"], hints, &what, false);
            let documentation = self.string(v.get("documentation"), "`documentation`");
            let version = self.def_version(v.get("version"), &what);
            let vers = Versioning { required: version.is_some(), what: &what };
            let fields = match v.get(members_key) {
                Some(m) => self.fields(m, vers),
                None if has_hinted(v, hints) => Vec::new(),
                None => {
                    let d =
                        self.error("missing-key", k.span, format!("{what} needs `{members_key}`"));
                    d.help =
                        Some(format!("use `{members_key}: []` for a structure without fields"));
                    Vec::new()
                }
            };
            out.push(StructDef { name, documentation, version, fields, span: k.span });
        }
        out
    }

    fn errors(&mut self, node: Option<&Node>) -> Vec<ErrorDef> {
        let mut out = Vec::new();
        let Some(node) = node else { return out };
        let Some(entries) = self.map(node, "`errors`") else { return out };
        for (k, v) in entries {
            let Some(name) = self.entry_name(k, "error") else { continue };
            let what = format!("error `{name}`");
            let Some(body) = self.map(v, &what) else { continue };
            self.check_keys(
                body,
                &["values", "documentation"],
                &[("fields", "use `values`"), ("members", "use `values`")],
                &what,
                false,
            );
            let documentation = self.string(v.get("documentation"), "`documentation`");
            let vers = Versioning { required: false, what: &what };
            let fields = v.get("values").map(|m| self.fields(m, vers)).unwrap_or_default();
            out.push(ErrorDef { name, documentation, fields, span: k.span });
        }
        out
    }

    /// Reads the shared component keys and returns (name, documentation, version, consumers).
    fn component_common(&mut self, k: &Node, v: &Node, noun: &str) -> Option<Common> {
        let name = self.entry_name(k, noun)?;
        let what = format!("{noun} `{name}`");
        self.map(v, &what)?;
        let documentation = self.string(v.get("documentation"), "`documentation`");
        let version = self.def_version(v.get("version"), &what);
        let mut consumers = Vec::new();
        if let Some(c) = v.get("consumers") {
            if let Some(items) = self.seq(c, "`consumers`") {
                for item in items {
                    if let Some(s) = self.string(Some(item), "a consumer") {
                        consumers.push(s);
                    }
                }
            }
            if version.is_none() {
                let d = self.error(
                    "consumers-without-version",
                    c.span,
                    format!("{what} lists `consumers` but has no `version`"),
                );
                d.label = Some("requires `version`".into());
                d.help = Some("add a `version` to the component".into());
            }
        }
        Some(Common { name, what, documentation, version, consumers })
    }

    fn signals(&mut self, node: Option<&Node>) -> Vec<Signal> {
        let mut out = Vec::new();
        let Some(node) = node else { return out };
        let Some(entries) = self.map(node, "`signals`") else { return out };
        let (key, hints): (&str, &[(&str, &str)]) = match self.dialect {
            Dialect::V0_3 => (
                "values",
                &[
                    ("payload", "format 0.3.0 renamed `payload` to `values`"),
                    ("arguments", "signals carry their values under `values`"),
                    ("args", "signals carry their values under `values`"),
                    ("params", "signals carry their values under `values`"),
                ],
            ),
            _ => (
                "payload",
                &[
                    ("values", "format 0.1.x signals carry their values under `payload`"),
                    ("arguments", "signals carry their values under `payload`"),
                    ("args", "signals carry their values under `payload`"),
                    ("params", "signals carry their values under `payload`"),
                ],
            ),
        };
        for (k, v) in entries {
            let Some(Common { name, what, documentation, version, consumers }) =
                self.component_common(k, v, "signal")
            else {
                continue;
            };
            if let Some(body) = v.as_map() {
                self.check_keys(
                    body,
                    &[key, "documentation", "version", "consumers"],
                    hints,
                    &what,
                    false,
                );
            }
            let vers = Versioning { required: version.is_some(), what: &what };
            let fields = match v.get(key) {
                Some(p) => self.fields(p, vers),
                None if has_hinted(v, hints) => Vec::new(),
                None => {
                    let d = self.error("missing-key", k.span, format!("{what} needs `{key}`"));
                    d.help = Some(format!("use `{key}: []` for a signal without values"));
                    Vec::new()
                }
            };
            out.push(Signal { name, documentation, version, consumers, fields, span: k.span });
        }
        out
    }

    fn properties(&mut self, node: Option<&Node>) -> Vec<Property> {
        let mut out = Vec::new();
        let Some(node) = node else { return out };
        let Some(entries) = self.map(node, "`properties`") else { return out };
        let v3 = self.dialect == Dialect::V0_3;
        let (key, hints): (&str, &[(&str, &str)]) = if v3 {
            (
                "value",
                &[
                    (
                        "values",
                        "format 0.3.0 properties hold a single `value`; use a struct for several fields",
                    ),
                    ("payload", "properties hold a single `value`"),
                    ("arguments", "properties hold a single `value`"),
                    ("params", "properties hold a single `value`"),
                ],
            )
        } else {
            (
                "values",
                &[
                    (
                        "value",
                        "format 0.1.x properties list their values under `values` (single `value` is 0.3.0)",
                    ),
                    ("payload", "properties list their values under `values`"),
                    ("arguments", "properties list their values under `values`"),
                    ("params", "properties list their values under `values`"),
                ],
            )
        };
        for (k, v) in entries {
            let Some(Common { name, what, documentation, version, consumers }) =
                self.component_common(k, v, "property")
            else {
                continue;
            };
            if let Some(body) = v.as_map() {
                self.check_keys(
                    body,
                    &[key, "readOnly", "documentation", "version", "consumers"],
                    hints,
                    &what,
                    false,
                );
            }
            let read_only = self.boolean(v.get("readOnly"), "`readOnly`").unwrap_or(false);
            let vers = Versioning { required: version.is_some(), what: &what };
            let fields = match v.get(key) {
                Some(p) if v3 => self.field(p, vers).into_iter().collect(),
                Some(p) => {
                    let f = self.fields(p, vers);
                    if f.is_empty() && p.as_seq().is_some_and(<[Node]>::is_empty) {
                        let d =
                            self.error("empty-property", p.span, format!("{what} has no values"));
                        d.label = Some("needs at least one value".into());
                    }
                    f
                }
                None if has_hinted(v, hints) => Vec::new(),
                None => {
                    let d = self.error("missing-key", k.span, format!("{what} needs `{key}`"));
                    d.label = Some(format!("no `{key}`"));
                    Vec::new()
                }
            };
            out.push(Property {
                name,
                documentation,
                version,
                consumers,
                read_only,
                fields,
                span: k.span,
            });
        }
        out
    }

    fn methods(&mut self, node: Option<&Node>) -> Vec<Method> {
        let mut out = Vec::new();
        let Some(node) = node else { return out };
        let Some(entries) = self.map(node, "`methods`") else { return out };
        let v3 = self.dialect == Dialect::V0_3;
        let ret_key = if v3 { "returnValue" } else { "returnValues" };
        let mut hints: Vec<(&str, &str)> = vec![
            ("argument", "use `arguments`"),
            ("params", "use `arguments`"),
            ("payload", "use `arguments`"),
            ("args", "use `arguments`"),
            ("arg", "use `arguments`"),
        ];
        let ret_hint = if v3 {
            "use `returnValue` (a single argument; use a struct for several)"
        } else {
            "use `returnValues` (a list)"
        };
        for bad in ["returnArgs", "returnParams", "returnPayload", "returns", "returnArg"] {
            hints.push((bad, ret_hint));
        }
        if v3 {
            hints.push((
                "returnValues",
                "format 0.3.0 uses a single `returnValue`; use a struct for several values",
            ));
        } else {
            hints.push((
                "returnValue",
                "format 0.1.x uses a `returnValues` list (single `returnValue` is 0.3.0)",
            ));
        }
        for (k, v) in entries {
            let Some(Common { name, what, documentation, version, consumers }) =
                self.component_common(k, v, "method")
            else {
                continue;
            };
            if let Some(body) = v.as_map() {
                self.check_keys(
                    body,
                    &[
                        "arguments",
                        ret_key,
                        "errors",
                        "timeout",
                        "documentation",
                        "version",
                        "consumers",
                    ],
                    &hints,
                    &what,
                    false,
                );
            }
            let vers = Versioning { required: version.is_some(), what: &what };
            let arguments = match v.get("arguments") {
                Some(a) => self.fields(a, vers),
                None if v3 || has_hinted(v, &hints[..5]) => Vec::new(),
                None => {
                    let d = self.error("missing-key", k.span, format!("{what} needs `arguments`"));
                    d.help = Some("use `arguments: []` for a method without arguments".into());
                    Vec::new()
                }
            };
            let returns = match v.get(ret_key) {
                Some(r) if v3 => self.field(r, vers).into_iter().collect(),
                Some(r) => self.fields(r, vers),
                None => Vec::new(),
            };
            let errors = self.error_list(v.get("errors"), &what);
            let timeout_secs = self.timeout(v.get("timeout"));
            out.push(Method {
                name,
                documentation,
                version,
                consumers,
                arguments,
                returns,
                errors,
                timeout_secs,
                span: k.span,
            });
        }
        out
    }

    fn timeout(&mut self, node: Option<&Node>) -> Option<f64> {
        let node = node?;
        let secs = match node.value {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            Value::Null | Value::Bad => return None,
            _ => {
                let d =
                    self.error("wrong-type", node.span, "`timeout` must be a number of seconds");
                d.label = Some("not a number".into());
                return None;
            }
        };
        if !(secs.is_finite() && secs > 0.0) {
            let d = self.error(
                "invalid-value",
                node.span,
                "`timeout` must be a positive number of seconds",
            );
            d.label = Some("not positive".into());
            return None;
        }
        Some(secs)
    }

    fn error_list(&mut self, node: Option<&Node>, what: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut listed: HashSet<String> = HashSet::new();
        let Some(node) = node else { return out };
        let Some(items) = self.seq(node, &format!("the `errors` of {what}")) else { return out };
        for item in items {
            let Some(name) = self.string(Some(item), "an error name") else { continue };
            if !self.defs.contains_key(&(DefKind::Error, name.clone())) {
                let msg = format!("unknown error `{name}`");
                let help = self.suggest(DefKind::Error, &name).map_or_else(
                    || "declare it in the top-level `errors` section".to_string(),
                    |s| format!("did you mean `{s}`?"),
                );
                let d = self.error("unknown-error", item.span, msg);
                d.label = Some("not declared in `errors`".into());
                d.help = Some(help);
            } else if !listed.insert(name.clone()) {
                let d = self.warn(
                    "duplicate-name",
                    item.span,
                    format!("{what} lists error `{name}` twice"),
                );
                d.label = Some("listed again".into());
            } else {
                out.push(name);
            }
        }
        out
    }

    fn commands(&mut self, node: Option<&Node>) -> Vec<Command> {
        let mut out = Vec::new();
        let Some(node) = node else { return out };
        let Some(entries) = self.map(node, "`commands`") else { return out };
        let hints: &[(&str, &str)] = &[
            ("args", "use `arguments`"),
            ("params", "use `arguments`"),
            ("payload", "use `arguments`"),
            ("returnValue", "commands have no response; use a method"),
            ("returnValues", "commands have no response; use a method"),
        ];
        for (k, v) in entries {
            let Some(Common { name, what, documentation, version, consumers }) =
                self.component_common(k, v, "command")
            else {
                continue;
            };
            if let Some(body) = v.as_map() {
                self.check_keys(
                    body,
                    &["arguments", "documentation", "version", "consumers"],
                    hints,
                    &what,
                    false,
                );
            }
            let vers = Versioning { required: version.is_some(), what: &what };
            let arguments = v.get("arguments").map(|a| self.fields(a, vers)).unwrap_or_default();
            out.push(Command { name, documentation, version, consumers, arguments, span: k.span });
        }
        out
    }

    fn actions(&mut self, node: Option<&Node>) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(node) = node else { return out };
        let Some(entries) = self.map(node, "`actions`") else { return out };
        for (k, v) in entries {
            let Some(name) = self.entry_name(k, "action") else { continue };
            let what = format!("action `{name}`");
            let Some(body) = self.map(v, &what) else { continue };
            self.check_keys(
                body,
                &["goal", "feedback", "result", "errors", "documentation", "version"],
                &[
                    ("arguments", "an action's inputs go under `goal`"),
                    ("returnValues", "an action's outputs go under `result`"),
                ],
                &what,
                false,
            );
            let documentation = self.string(v.get("documentation"), "`documentation`");
            let version = self.def_version(v.get("version"), &what);
            let vers = Versioning { required: version.is_some(), what: &what };
            let goal = v.get("goal").map(|a| self.fields(a, vers)).unwrap_or_default();
            let feedback = v.get("feedback").map(|a| self.fields(a, vers)).unwrap_or_default();
            let result = v.get("result").map(|a| self.fields(a, vers)).unwrap_or_default();
            let errors = self.error_list(v.get("errors"), &what);
            out.push(Action {
                name,
                documentation,
                version,
                goal,
                feedback,
                result,
                errors,
                span: k.span,
            });
        }
        out
    }

    fn configuration(&mut self, node: Option<&Node>) -> Configuration {
        let mut cfg = Configuration::default();
        let Some(node) = node else { return cfg };
        let Some(entries) = self.map(node, "`configuration`") else { return cfg };
        self.check_keys(entries, &["mimeType", "topics"], &[], "`configuration`", false);
        if let Some(m) = node.get("mimeType")
            && let Some(mime) = self.string(Some(m), "`mimeType`")
            && mime != "application/json"
        {
            let d = self.error(
                "unsupported-mime-type",
                m.span,
                format!("payload encoding `{mime}` is not supported"),
            );
            d.label = Some("only JSON is supported".into());
            d.help = Some("use `mimeType: application/json` or leave it out".into());
        }
        let Some(topics) = node.get("topics") else { return cfg };
        let Some(tentries) = self.map(topics, "`configuration.topics`") else { return cfg };
        self.check_keys(tentries, &topic_keys(), &[], "`configuration.topics`", false);
        if let Some(p) = topics.get("params")
            && let Some(items) = self.seq(p, "`topics.params`")
        {
            for item in items {
                let Some(param) = self.string(Some(item), "a topic parameter") else { continue };
                let valid = !param.is_empty()
                    && param
                        .split('_')
                        .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()));
                if !valid {
                    let d = self.error(
                        "invalid-name",
                        item.span,
                        format!("topic parameter `{param}` is not a valid name"),
                    );
                    d.help =
                        Some("use letters and digits, optionally separated by single `_`".into());
                } else if mqtt::PLACEHOLDERS.contains(&param.as_str()) {
                    let d = self.error(
                        "reserved-name",
                        item.span,
                        format!("topic parameter `{param}` is a built-in placeholder"),
                    );
                    d.label = Some("reserved".into());
                } else if cfg.topic_params.contains(&param) {
                    let d = self.error(
                        "duplicate-name",
                        item.span,
                        format!("topic parameter `{param}` is listed twice"),
                    );
                    d.label = Some("listed again".into());
                } else {
                    cfg.topic_params.push(param);
                }
            }
        }
        let mut templates: HashMap<String, (String, Span)> = HashMap::new();
        for (k, v) in tentries {
            let Some(key) = k.as_key() else { continue };
            if !mqtt::topic_kind(key).is_some_and(|kind| kind.configurable) {
                continue;
            }
            let Some(template) = self.string(Some(v), "a topic template") else { continue };
            self.check_template(key, &template, v.span, &cfg.topic_params);
            templates.insert(key.to_string(), (template.clone(), v.span));
            cfg.topics.push((key.to_string(), template));
        }
        if let (Some((a, span)), Some((b, _))) =
            (templates.get("propertyUpdateResponses"), templates.get("methodResponses"))
            && a == b
        {
            let d = self.error(
                "invalid-topic",
                *span,
                "`propertyUpdateResponses` must differ from `methodResponses`",
            );
            d.label = Some("same as `methodResponses`".into());
        }
        cfg
    }

    fn check_template(&mut self, key: &str, template: &str, span: Span, params: &[String]) {
        let mut seen: Vec<String> = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let after = rest.get(open + 1..).unwrap_or("");
            let Some(close) = after.find('}') else {
                let d = self.error(
                    "invalid-topic",
                    span,
                    format!("topic `{key}` has an unclosed `{{`"),
                );
                d.label = Some("unclosed placeholder".into());
                return;
            };
            let name = after.get(..close).unwrap_or("");
            if !mqtt::PLACEHOLDERS.contains(&name) && !params.iter().any(|p| p == name) {
                let d = self.error(
                    "invalid-topic",
                    span,
                    format!("topic `{key}` uses unknown placeholder `{{{name}}}`"),
                );
                d.label = Some("unknown placeholder".into());
                d.help = Some("declare extra placeholders in `topics.params`".into());
            } else if seen.iter().any(|s| s == name) {
                let d = self.error(
                    "invalid-topic",
                    span,
                    format!("topic `{key}` uses `{{{name}}}` twice"),
                );
                d.label = Some("repeated placeholder".into());
            }
            seen.push(name.to_string());
            rest = after.get(close + 1..).unwrap_or("");
        }
        let required = mqtt::topic_kind(key).map_or(&[][..], |kind| kind.required);
        for r in required {
            if !seen.iter().any(|s| s == r) {
                let d = self.error(
                    "invalid-topic",
                    span,
                    format!("topic `{key}` must contain `{{{r}}}`"),
                );
                d.label = Some(format!("missing `{{{r}}}`"));
            }
        }
    }

    /// Parses a list of named arguments.
    fn fields(&mut self, node: &Node, vers: Versioning<'_>) -> Vec<Field> {
        let mut out: Vec<Field> = Vec::new();
        let Some(items) = self.seq(node, &format!("the values of {}", vers.what)) else {
            return out;
        };
        let mut seen: HashSet<String> = HashSet::new();
        for item in items {
            if let Some(n) = item.get("name")
                && let Some(name) = n.scalar_text()
                && !seen.insert(name.to_string())
            {
                let d = self.error(
                    "duplicate-name",
                    n.span,
                    format!("{} has two values named `{name}`", vers.what),
                );
                d.label = Some("second value with this name".into());
                continue;
            }
            if let Some(field) = self.field(item, vers) {
                out.push(field);
            }
        }
        out
    }

    /// Parses one named argument.
    fn field(&mut self, node: &Node, vers: Versioning<'_>) -> Option<Field> {
        let entries = self.map(node, &format!("a value of {}", vers.what))?;
        self.check_keys(entries, ARG_KEYS, ARG_HINTS, "an argument", false);
        let name_node = node.get("name");
        let name = match name_node {
            None => {
                let d = self.error(
                    "missing-key",
                    node.span,
                    format!("a value of {} needs a `name`", vers.what),
                );
                d.label = Some("no `name`".into());
                None
            }
            Some(n) => {
                let name = self.string(Some(n), "an argument name");
                if let Some(name) = &name {
                    self.check_name(name, n.span, "argument name", true);
                }
                name
            }
        };
        let description = self.string(node.get("description"), "`description`");
        let ty = self.ty(node, vers, 0);
        let span = name_node.map_or(node.span, |n| n.span);
        Some(Field { name: name?, ty: ty?, description, span })
    }

    /// Resolves the type described by an argument or item mapping, including `optional`.
    fn ty(&mut self, node: &Node, vers: Versioning<'_>, depth: usize) -> Option<Type> {
        let Some(tnode) = node.get("type") else {
            let d = self.error("missing-key", node.span, "missing `type`");
            d.label = Some("no `type` here".into());
            d.help = Some(format!("one of: {}", TYPES.join(", ")));
            return None;
        };
        let optional = self.boolean(node.get("optional"), "`optional`").unwrap_or(false);
        let tname = match &tnode.value {
            Value::Str(s) => s.as_str(),
            Value::Bad => return None,
            _ => {
                let found = tnode.kind();
                let d = self.error(
                    "wrong-type",
                    tnode.span,
                    format!("`type` must be a string, found {found}"),
                );
                d.label = Some("not a type name".into());
                return None;
            }
        };
        for (key, applies) in [
            ("format", matches!(tname, "integer" | "float")),
            ("enumName", tname == "enum"),
            ("enumVersion", tname == "enum"),
            ("structName", tname == "struct"),
            ("structVersion", tname == "struct"),
            ("itemType", tname == "array"),
            ("valueType", tname == "map"),
            ("contentType", tname == "binary"),
        ] {
            if !applies
                && TYPES.contains(&tname)
                && let Some((k, _)) =
                    node.as_map().and_then(|m| m.iter().find(|(k, _)| k.as_key() == Some(key)))
            {
                let d = self.warn(
                    "misplaced-key",
                    k.span,
                    format!("`{key}` does not apply to type `{tname}` and is ignored"),
                );
                d.label = Some("ignored".into());
            }
        }
        let base = match tname {
            "integer" => Type::Integer { format: self.int_format(node.get("format"))? },
            "float" => Type::Float { format: self.float_format(node.get("format"))? },
            "boolean" => Type::Boolean,
            "string" => Type::String,
            "datetime" => Type::DateTime,
            "duration" => Type::Duration,
            "binary" => {
                self.string(node.get("contentType"), "`contentType`");
                Type::Binary
            }
            "enum" => Type::Enum { name: self.reference(node, DefKind::Enum, vers)? },
            "struct" => Type::Struct { name: self.reference(node, DefKind::Struct, vers)? },
            "array" | "map" => {
                let key = if tname == "array" { "itemType" } else { "valueType" };
                let Some(inner) = node.get(key) else {
                    let code =
                        if tname == "array" { "missing-item-type" } else { "missing-value-type" };
                    let d = self.error(
                        code,
                        tnode.span,
                        format!("{} needs `{key}`", with_article(tname)),
                    );
                    d.label = Some(format!("no `{key}`"));
                    d.help = Some(format!("add e.g. `{key}: {{type: string}}`"));
                    return None;
                };
                let entries = self.map(inner, &format!("`{key}`"))?;
                self.check_keys(entries, ITEM_KEYS, ITEM_HINTS, &format!("`{key}`"), false);
                if let Some(it) = inner.get("type").and_then(Node::as_str)
                    && matches!(it, "array" | "map")
                {
                    let span = inner.get("type").map_or(inner.span, |n| n.span);
                    let d = self.error(
                        "nested-collection",
                        span,
                        format!(
                            "{} cannot directly hold {}",
                            with_article(tname),
                            with_article(it)
                        ),
                    );
                    d.label = Some("collection inside a collection".into());
                    d.help = Some("wrap the inner collection in a structure".into());
                    return None;
                }
                if depth > 4 {
                    return None;
                }
                let item = self.ty(inner, vers, depth + 1)?;
                if tname == "array" {
                    Type::Array { item: Box::new(item) }
                } else {
                    Type::Map { value: Box::new(item) }
                }
            }
            other => {
                let d = self.error("unknown-type", tnode.span, format!("unknown type `{other}`"));
                d.label = Some("not a type".into());
                d.help = Some(did_you_mean(other, TYPES).map_or_else(
                    || format!("types are: {}", TYPES.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                ));
                return None;
            }
        };
        Some(if optional { Type::Optional { inner: Box::new(base) } } else { base })
    }

    fn int_format(&mut self, node: Option<&Node>) -> Option<IntFormat> {
        let Some(node) = node else { return Some(IntFormat::Int64) };
        let text = self.string(Some(node), "`format`")?;
        Some(match text.as_str() {
            "int8" => IntFormat::Int8,
            "int16" => IntFormat::Int16,
            "int32" => IntFormat::Int32,
            "int64" => IntFormat::Int64,
            "uint8" => IntFormat::Uint8,
            "uint16" => IntFormat::Uint16,
            "uint32" => IntFormat::Uint32,
            "uint64" => IntFormat::Uint64,
            other => {
                let d = self.error(
                    "unknown-format",
                    node.span,
                    format!("unknown integer format `{other}`"),
                );
                d.label = Some("not an integer format".into());
                d.help = Some(did_you_mean(other, INT_FORMATS).map_or_else(
                    || format!("formats are: {}", INT_FORMATS.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                ));
                return None;
            }
        })
    }

    fn float_format(&mut self, node: Option<&Node>) -> Option<FloatFormat> {
        let Some(node) = node else { return Some(FloatFormat::Float64) };
        let text = self.string(Some(node), "`format`")?;
        Some(match text.as_str() {
            "float32" => FloatFormat::Float32,
            "float64" => FloatFormat::Float64,
            other => {
                let d = self.error(
                    "unknown-format",
                    node.span,
                    format!("unknown float format `{other}`"),
                );
                d.label = Some("not a float format".into());
                d.help = Some(did_you_mean(other, FLOAT_FORMATS).map_or_else(
                    || format!("formats are: {}", FLOAT_FORMATS.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                ));
                return None;
            }
        })
    }

    fn suggest(&self, kind: DefKind, name: &str) -> Option<String> {
        let names = self.def_names.get(&kind)?;
        // Suggestions compare against every name, so skip them for enormous files.
        if names.len() > 2000 {
            return None;
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        did_you_mean(name, &refs).map(str::to_string)
    }

    /// Resolves `enumName`/`structName` and checks `enumVersion`/`structVersion`.
    fn reference(&mut self, node: &Node, kind: DefKind, vers: Versioning<'_>) -> Option<String> {
        let (name_key, version_key, code, tname) = match kind {
            DefKind::Enum => ("enumName", "enumVersion", "unknown-enum", "enum"),
            _ => ("structName", "structVersion", "unknown-struct", "struct"),
        };
        let Some(nnode) = node.get(name_key) else {
            let span = node.get("type").map_or(node.span, |n| n.span);
            let d = self.error("missing-key", span, format!("type `{tname}` needs `{name_key}`"));
            d.label = Some(format!("no `{name_key}`"));
            return None;
        };
        let name = self.string(Some(nnode), &format!("`{name_key}`"))?;
        let Some(def_version) = self.defs.get(&(kind, name.clone())).cloned() else {
            let other = if kind == DefKind::Enum { DefKind::Struct } else { DefKind::Enum };
            let help = if self.defs.contains_key(&(other, name.clone())) {
                format!(
                    "`{name}` is {} {}; use `type: {}`",
                    if other == DefKind::Enum { "an" } else { "a" },
                    other.noun(),
                    if other == DefKind::Enum { "enum" } else { "struct" }
                )
            } else {
                self.suggest(kind, &name).map_or_else(
                    || format!("no {} named `{name}` is defined", kind.noun()),
                    |s| format!("did you mean `{s}`?"),
                )
            };
            let d = self.error(code, nnode.span, format!("unknown {} `{name}`", kind.noun()));
            d.label = Some(format!("no such {}", kind.noun()));
            d.help = Some(help);
            return None;
        };
        match node.get(version_key) {
            Some(vnode) => {
                let wanted = self.string(Some(vnode), &format!("`{version_key}`"))?;
                match def_version {
                    None => {
                        let d = self.error(
                            "version-mismatch",
                            vnode.span,
                            format!(
                                "`{version_key}` is given but {} `{name}` has no `version`",
                                kind.noun()
                            ),
                        );
                        d.label = Some("nothing to compare with".into());
                        d.help =
                            Some(format!("add `version: {wanted}` to {} `{name}`", kind.noun()));
                    }
                    Some(have) if major_minor(&have) != major_minor(&wanted) => {
                        let d = self.error(
                            "version-mismatch",
                            vnode.span,
                            format!(
                                "{} `{name}` has version {have}, which does not match {wanted}",
                                kind.noun()
                            ),
                        );
                        d.label = Some("major.minor differ".into());
                    }
                    Some(_) => {}
                }
            }
            None if vers.required => {
                let d = self.error(
                    "missing-version",
                    nnode.span,
                    format!(
                        "{} has a `version`, so this reference needs `{version_key}`",
                        vers.what
                    ),
                );
                d.label = Some(format!("no `{version_key}`"));
                d.help = Some(match def_version {
                    Some(v) => format!("add `{version_key}: {v}`"),
                    None => format!(
                        "give {} `{name}` a `version` and reference it with `{version_key}`",
                        kind.noun()
                    ),
                });
            }
            None => {}
        }
        Some(name)
    }

    /// Rejects structures nested more than [`MAX_STRUCT_NESTING`] deep: a chain of structures
    /// each holding the next (inline, optional, in an array or in a map). Generated Rust stops
    /// compiling somewhere past 48 levels ("reached the recursion limit finding the struct
    /// tail", "queries overflow the depth limit"). Structures that hold each other in a cycle
    /// count as one level, since the generator boxes them.
    fn check_nesting(&mut self, structs: &[StructDef]) {
        let index: HashMap<&str, usize> =
            structs.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let edges: Vec<Vec<usize>> = structs
            .iter()
            .map(|s| {
                let mut names = Vec::new();
                for field in &s.fields {
                    struct_names(&field.ty, &mut names);
                }
                names.iter().filter_map(|n| index.get(n).copied()).collect()
            })
            .collect();
        let Some((deepest, depth, chain)) = deepest_nesting(&edges) else { return };
        if depth <= MAX_STRUCT_NESTING {
            return;
        }
        let Some(def) = structs.get(deepest) else { return };
        let names: Vec<&str> =
            chain.iter().filter_map(|i| structs.get(*i)).map(|s| s.name.as_str()).collect();
        let shown = if names.len() > 6 {
            format!(
                "{} -> ... -> {}",
                names[..3].join(" -> "),
                names[names.len() - 2..].join(" -> ")
            )
        } else {
            names.join(" -> ")
        };
        let d = self.error(
            "too-deep",
            def.span,
            format!(
                "structure `{}` nests structures {depth} deep ({shown}); the limit is \
                 {MAX_STRUCT_NESTING}",
                def.name
            ),
        );
        d.label = Some("nested too deep".into());
        d.help = Some(
            "generated Rust stops compiling past about 48 levels; flatten the chain, holding \
             the members of some levels directly"
                .into(),
        );
    }

    /// Rejects structures that contain themselves without an `optional`, array or map in between.
    fn check_recursion(&mut self, structs: &[StructDef]) {
        // Edges are the members whose type is a plain struct; optional, array and map members can
        // be empty, so they end a value and do not count.
        let index: HashMap<&str, usize> =
            structs.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let edges: Vec<Vec<(usize, Span)>> = structs
            .iter()
            .map(|s| {
                s.fields
                    .iter()
                    .filter_map(|f| match &f.ty {
                        Type::Struct { name } => index.get(name.as_str()).map(|t| (*t, f.span)),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        // 0 = unvisited, 1 = on the current path, 2 = finished.
        let mut state = vec![0u8; structs.len()];
        let mut cycles: Vec<(Vec<usize>, Span)> = Vec::new();
        for root in 0..structs.len() {
            if state.get(root) != Some(&0) {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            if let Some(st) = state.get_mut(root) {
                *st = 1;
            }
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let Some(&(target, span)) = edges.get(node).and_then(|e| e.get(*next)) else {
                    if let Some(st) = state.get_mut(node) {
                        *st = 2;
                    }
                    stack.pop();
                    continue;
                };
                *next += 1;
                match state.get(target) {
                    Some(0) => {
                        if let Some(st) = state.get_mut(target) {
                            *st = 1;
                        }
                        stack.push((target, 0));
                    }
                    Some(1) => {
                        let start = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                        let path: Vec<usize> = stack.iter().skip(start).map(|(n, _)| *n).collect();
                        cycles.push((path, span));
                    }
                    _ => {}
                }
            }
        }
        for (path, span) in cycles {
            let names: Vec<&str> =
                path.iter().filter_map(|i| structs.get(*i)).map(|s| s.name.as_str()).collect();
            let Some(first) = names.first().copied() else { continue };
            let mut shown: Vec<&str> = names.iter().take(8).copied().collect();
            if names.len() > 8 {
                shown.push("...");
            }
            shown.push(first);
            let cycle = shown.join(" -> ");
            let d = self.error(
                "recursive-struct",
                span,
                format!("structure `{first}` contains itself: {cycle}"),
            );
            d.label = Some("closes the cycle".into());
            d.help = Some(
                "make one of these members `optional: true` (or hold it in an array or map) \
                 so a value can end"
                    .into(),
            );
        }
    }
}

/// The deepest chain of structures holding one another that an interface may have.
pub(crate) const MAX_STRUCT_NESTING: usize = 32;

/// Adds the structures `ty` names, through optionals, arrays and maps, to `out`.
fn struct_names<'a>(ty: &'a Type, out: &mut Vec<&'a str>) {
    match ty {
        Type::Struct { name } => out.push(name),
        Type::Optional { inner } => struct_names(inner, out),
        Type::Array { item } => struct_names(item, out),
        Type::Map { value } => struct_names(value, out),
        _ => {}
    }
}

/// The node that starts the longest chain of the graph `edges`, the chain's length in nodes
/// and the chain itself, one node per cycle; `None` for an empty graph. Nodes of one cycle
/// (strongly connected component, [`crate::graph`]) count once; linear in nodes and edges.
fn deepest_nesting(edges: &[Vec<usize>]) -> Option<(usize, usize, Vec<usize>)> {
    let count = edges.len();
    let components = crate::graph::strongly_connected(edges);
    let component = crate::graph::component_of(&components, count);
    // Per component: its depth, and the node of the next component on its deepest chain. A
    // component comes after every one it reaches, so their depths are known already.
    let mut depth: Vec<usize> = Vec::with_capacity(components.len());
    let mut next_in_chain: Vec<Option<usize>> = Vec::with_capacity(components.len());
    for (id, members) in components.iter().enumerate() {
        let mut best = (0, None);
        for &member in members {
            for &target in &edges[member] {
                let c = component[target];
                if c != id && depth[c] > best.0 {
                    best = (depth[c], Some(target));
                }
            }
        }
        depth.push(best.0 + 1);
        next_in_chain.push(best.1);
    }
    let start = (0..count).max_by_key(|&n| (depth[component[n]], std::cmp::Reverse(n)))?;
    let mut chain = vec![start];
    let mut at = start;
    while let Some(next) = next_in_chain[component[at]] {
        chain.push(next);
        at = next;
    }
    Some((start, depth[component[start]], chain))
}

/// Returns true when the mapping holds any of the keys that hints describe as misspellings.
fn has_hinted(node: &Node, hints: &[(&str, &str)]) -> bool {
    hints.iter().any(|(k, _)| node.get(k).is_some())
}

/// True for `1`, `1.2` or `1.2.3`.
fn is_dotted_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    (1..=3).contains(&parts.len())
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// True for `MAJOR.MINOR.PATCH`, optionally followed by a pre-release or build suffix.
fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Returns the first two dot-separated parts, padding a missing minor with `0`.
fn major_minor(v: &str) -> (String, String) {
    let mut parts = v.split('.');
    let major = parts.next().unwrap_or("").to_string();
    let minor = parts.next().unwrap_or("0").to_string();
    (major, minor)
}
