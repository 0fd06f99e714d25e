//! The Python target: an installable package per interface, built on the `switchboard` runtime.
//!
//! As for Rust, generation has two steps: `lower` (here) restates the interface as a view model in
//! which every identifier, annotation, codec expression and docstring is decided, and the
//! minijinja templates in `templates/python/` only interpolate it (see the README there).

pub(crate) mod names;

use std::collections::HashMap;

use serde::Serialize;
use switchboard_idl::{self as idl, ConstantValue, FloatFormat, IntFormat, Interface, Type};

use crate::names::{NameError, NameTable};
use crate::{GenerateError, GeneratedFile};

const MODULE_TEMPLATE: &str = include_str!("../../templates/python/module.py.j2");
const PYPROJECT_TEMPLATE: &str = include_str!("../../templates/python/pyproject.toml.j2");

/// The scope of module-level names in the generated module.
const MODULE: &str = "the generated Python module";

/// The oldest Python the generated code runs on (its dataclasses may have keyword-only fields,
/// new in 3.10); `python/pyproject.toml` names the same for the runtime.
const MIN_PYTHON: MinPython = MinPython { version: "3.10", ruff_target: "py310" };

/// The oldest Python, as each tool spells it.
#[derive(Debug, Serialize)]
struct MinPython {
    /// `requires-python` (after `>=`) and mypy's `python_version`.
    version: &'static str,
    /// ruff's `target-version`.
    ruff_target: &'static str,
}

/// The generated package.
#[derive(Debug, Serialize)]
struct Package {
    header: String,
    package: String,
    source: String,
    doc: String,
    name: String,
    version: String,
    hash: String,
    title: String,
    description: String,
    topic_params: Vec<String>,
    topics: Vec<(String, String)>,
    base: String,
    consts: Vec<Const>,
    enums: Vec<Enum>,
    structs: Vec<Struct>,
    errors: Vec<ErrorClass>,
    methods: Vec<Method>,
    signals: Vec<Signal>,
    properties: Vec<Property>,
    commands: Vec<Command>,
    actions: Vec<Action>,
    exports: Vec<String>,
    uses_datetime: bool,
    uses_enum: bool,
    codegen_version: String,
    python: &'static MinPython,
}

#[derive(Debug, Serialize)]
struct Const {
    name: String,
    annotation: String,
    value: String,
    doc: String,
}

#[derive(Debug, Serialize)]
struct Enum {
    name: String,
    doc: String,
    values: Vec<EnumValue>,
}

#[derive(Debug, Serialize)]
struct EnumValue {
    name: String,
    value: i64,
    doc: String,
}

/// A field of a class, or a parameter of a function.
///
/// Optional values default to `None`. Python allows no required parameter after one with a
/// default, so a required value that follows an optional one starts the keyword-only values
/// (`*` in a signature, `_dc.KW_ONLY` in a dataclass); the file's order is kept either way.
#[derive(Debug, Serialize, Clone)]
struct Field {
    wire: String,
    attr: String,
    annotation: String,
    codec: String,
    doc: String,
    /// The value is optional, so it defaults to `None`.
    optional: bool,
    /// The keyword-only values start here.
    starts_keywords: bool,
    /// The value is passed by keyword only (it is this one that starts them, or a later one).
    keyword_only: bool,
}

#[derive(Debug, Serialize)]
struct Struct {
    name: String,
    doc: String,
    fields: Vec<Field>,
}

#[derive(Debug, Serialize)]
struct ErrorClass {
    name: String,
    wire: String,
    doc: String,
    fields: Vec<Field>,
    /// The parameters of `__init__` before `message`.
    declarations: Vec<String>,
}

/// How a list of fields is held in Python: bare (one value), a class, or nothing.
#[derive(Debug, Serialize)]
struct Shape {
    /// The annotation of the Python value (`None` for no fields).
    annotation: String,
    /// The `_sb.shape(...)` expression.
    expr: String,
}

#[derive(Debug, Serialize)]
struct Method {
    wire: String,
    attr: String,
    spec: String,
    doc: String,
    params: Vec<Field>,
    /// The parameters of the client's method before `timeout`.
    declarations: Vec<String>,
    /// How the blocking client passes its parameters on to the asyncio client.
    forward: Vec<String>,
    args: String,
    returns: Shape,
    errors: Vec<(String, String)>,
    timeout: String,
}

#[derive(Debug, Serialize)]
struct Signal {
    wire: String,
    spec: String,
    class: String,
    subscribe: String,
    emit: String,
    emit_to: String,
    doc: String,
    params: Vec<Field>,
    /// The parameters of `emit` (after `peer` in `emit_to`).
    declarations: Vec<String>,
    /// The arguments that build the signal's class from the parameters of `emit`.
    construct: Vec<String>,
    value: Shape,
}

#[derive(Debug, Serialize)]
struct Property {
    wire: String,
    attr: String,
    spec: String,
    get: String,
    set: String,
    watch: String,
    doc: String,
    read_only: bool,
    value: Shape,
}

#[derive(Debug, Serialize)]
struct Command {
    wire: String,
    attr: String,
    spec: String,
    doc: String,
    params: Vec<Field>,
    declarations: Vec<String>,
    forward: Vec<String>,
    args: String,
}

#[derive(Debug, Serialize)]
struct Action {
    wire: String,
    attr: String,
    attach: String,
    accept: String,
    spec: String,
    doc: String,
    params: Vec<Field>,
    declarations: Vec<String>,
    forward: Vec<String>,
    goal_class: String,
    feedback: Shape,
    result: Shape,
    goal: String,
    errors: Vec<(String, String)>,
}

/// Generates the files of the Python package for `iface`, relative to the output directory.
///
/// # Errors
///
/// Fails when names from the interface file cannot become Python identifiers or would collide.
pub fn generate(iface: &Interface, source_name: &str) -> Result<Vec<GeneratedFile>, GenerateError> {
    let package = Lowering::new(iface)?.run(source_name)?;
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.add_filter("docstring", docstring);
    env.add_filter("pystr", |s: String| py_str(&s));
    let render = |template: &str| {
        env.render_str(template, &package).map_err(|e| GenerateError::Syntax(format!("{e:#}")))
    };
    let module = tidy(&render(MODULE_TEMPLATE)?);
    let pyproject = render(PYPROJECT_TEMPLATE)?;
    let dir = &package.package;
    Ok(vec![
        GeneratedFile { path: "pyproject.toml".into(), contents: pyproject },
        GeneratedFile { path: format!("{dir}/__init__.py").into(), contents: module },
        GeneratedFile { path: format!("{dir}/py.typed").into(), contents: String::new() },
    ])
}

/// Collapses runs of blank lines left by template control blocks to at most two.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blanks = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blanks += 1;
            if blanks > 2 {
                continue;
            }
        } else {
            blanks = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// A Python string literal for `s`.
fn py_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders `text` as a docstring indented by `indent` spaces (the first line is not indented).
fn docstring(text: String, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let text = text.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"");
    let text = text.trim();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.collect();
    let ends_quote = |s: &str| s.ends_with('"');
    if rest.is_empty() {
        let sep = if ends_quote(first) { " " } else { "" };
        return format!("\"\"\"{first}{sep}\"\"\"");
    }
    let mut out = format!("\"\"\"{first}\n");
    for line in rest {
        if line.trim().is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("{pad}{line}\n"));
        }
    }
    out.push_str(&format!("{pad}\"\"\""));
    out
}

fn doc_or(doc: Option<&str>, fallback: impl FnOnce() -> String) -> String {
    match doc.map(str::trim) {
        Some(d) if !d.is_empty() => d.to_string(),
        _ => fallback(),
    }
}

struct Lowering<'a> {
    iface: &'a Interface,
    table: NameTable,
    types: HashMap<&'a str, String>,
    errors: HashMap<&'a str, String>,
    base: String,
    structs: Vec<Struct>,
}

impl<'a> Lowering<'a> {
    fn new(iface: &'a Interface) -> Result<Self, NameError> {
        let base = names::camel(&iface.name, "", &format!("interface `{}`", iface.name))?;
        let mut this = Lowering {
            iface,
            table: NameTable::new(),
            types: HashMap::new(),
            errors: HashMap::new(),
            base,
            structs: Vec::new(),
        };
        for fixed in ["INTERFACE", "INTERFACE_NAME", "INTERFACE_VERSION", "INTERFACE_HASH", "Self"]
        {
            this.table.claim(MODULE, fixed, &format!("the generated `{fixed}`"))?;
        }
        for suffix in ["Client", "BlockingClient", "Handler", "Server", "Properties"] {
            let ident = format!("{}{suffix}", this.base);
            this.table.claim(MODULE, &ident, &format!("the generated `{ident}`"))?;
        }
        for def in &iface.enums {
            let what = format!("enum `{}`", def.name);
            let ident = names::camel(&def.name, "", &what)?;
            this.table.claim(MODULE, &ident, &what)?;
            this.types.insert(&def.name, ident);
        }
        for def in &iface.structs {
            let what = format!("struct `{}`", def.name);
            let ident = names::camel(&def.name, "", &what)?;
            this.table.claim(MODULE, &ident, &what)?;
            this.types.insert(&def.name, ident);
        }
        for def in &iface.errors {
            let what = format!("error `{}`", def.name);
            let ident = names::camel(&def.name, "", &what)?;
            this.table.claim(MODULE, &ident, &what)?;
            this.errors.insert(&def.name, ident);
        }
        Ok(this)
    }

    fn run(mut self, source_name: &str) -> Result<Package, NameError> {
        let iface = self.iface;
        let hash = iface.description_hash();
        let short = hash.strip_prefix("sha256:").unwrap_or(&hash);
        let header = format!(
            "# @generated by switchboard-codegen {} from {source_name} (sha256:{}). Do not edit \
             by hand; regenerate with `switchboard generate --lang python`.",
            env!("CARGO_PKG_VERSION"),
            short.get(..12).unwrap_or(short),
        );
        let package = names::package(&iface.name)?;
        let mut doc =
            iface.title.clone().unwrap_or_else(|| format!("The `{}` interface.", iface.name));
        for extra in [&iface.summary, &iface.documentation].into_iter().flatten() {
            doc.push_str("\n\n");
            doc.push_str(extra.trim());
        }
        doc.push_str(&format!(
            "\n\nGenerated from `{source_name}` ({} {}); wire names are those of the file.",
            iface.name, iface.version
        ));
        if iface.description_json().contains("\"date_time\"") {
            doc.push_str(
                "\n\nTimestamps are `datetime.datetime` values in UTC with microsecond resolution:\n\
                 finer fractions a peer sends (Rust keeps nanoseconds) are truncated, never\n\
                 rounded, so a received timestamp sent back is the same instant to the\n\
                 microsecond.",
            );
        }

        let consts: Vec<Const> =
            iface.constants.iter().map(|c| self.constant(c)).collect::<Result<_, _>>()?;
        let enums: Vec<Enum> =
            iface.enums.iter().map(|e| self.enumeration(e)).collect::<Result<_, _>>()?;
        for def in &iface.structs {
            let name = self.types[def.name.as_str()].clone();
            let doc =
                doc_or(def.documentation.as_deref(), || format!("The `{}` structure.", def.name));
            let fields = self.fields(&def.fields, &format!("the fields of `{name}`"), &[])?;
            self.structs.push(Struct { name, doc, fields });
        }
        let mut errors = Vec::new();
        for def in &iface.errors {
            let name = self.errors[def.name.as_str()].clone();
            let doc = doc_or(def.documentation.as_deref(), || format!("The `{}` error.", def.name));
            let reserved = ["code", "name", "message", "details", "wire_name", "args"];
            let fields = self.fields(&def.fields, &format!("the fields of `{name}`"), &reserved)?;
            let declarations = declarations(&fields, true);
            errors.push(ErrorClass { name, wire: def.name.clone(), doc, fields, declarations });
        }
        let methods = iface.methods.iter().map(|m| self.method(m)).collect::<Result<_, _>>()?;
        let signals = iface.signals.iter().map(|s| self.signal(s)).collect::<Result<_, _>>()?;
        let properties =
            iface.properties.iter().map(|p| self.property(p)).collect::<Result<_, _>>()?;
        let commands = iface.commands.iter().map(|c| self.command(c)).collect::<Result<_, _>>()?;
        let actions = iface.actions.iter().map(|a| self.action(a)).collect::<Result<_, _>>()?;

        let mut exports: Vec<String> = vec![
            "INTERFACE".into(),
            "INTERFACE_HASH".into(),
            "INTERFACE_NAME".into(),
            "INTERFACE_VERSION".into(),
        ];
        exports.extend(consts.iter().map(|c: &Const| c.name.clone()));
        exports.extend(enums.iter().map(|e: &Enum| e.name.clone()));
        exports.extend(self.structs.iter().map(|s| s.name.clone()));
        exports.extend(errors.iter().map(|e| e.name.clone()));
        for suffix in ["Client", "BlockingClient", "Handler", "Server", "Properties"] {
            exports.push(format!("{}{suffix}", self.base));
        }
        // ruff's `RUF022` order: UPPER_CASE, then CamelCase, then the rest, each alphabetical.
        exports.sort_by_key(|name| {
            let class = if name.chars().all(|c| !c.is_ascii_lowercase()) {
                0
            } else if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                1
            } else {
                2
            };
            (class, name.clone())
        });
        let uses_datetime = self
            .structs
            .iter()
            .flat_map(|s| &s.fields)
            .chain(errors.iter().flat_map(|e| &e.fields))
            .any(|f| f.annotation.contains("_dt."));

        let enums_empty = enums.is_empty();
        Ok(Package {
            header,
            package,
            source: source_name.to_string(),
            doc,
            name: iface.name.clone(),
            version: iface.version.clone(),
            hash,
            title: iface.title.clone().unwrap_or_else(|| iface.name.clone()),
            description: iface.description_json(),
            topic_params: iface.configuration.topic_params.clone(),
            topics: iface.configuration.topics.clone(),
            base: self.base.clone(),
            consts,
            enums,
            structs: self.structs,
            errors,
            methods,
            signals,
            properties,
            commands,
            actions,
            exports,
            uses_datetime,
            uses_enum: !enums_empty,
            codegen_version: env!("CARGO_PKG_VERSION").to_string(),
            python: &MIN_PYTHON,
        })
    }

    fn constant(&mut self, c: &idl::Constant) -> Result<Const, NameError> {
        let what = format!("constant `{}`", c.name);
        let name = names::shouty(&c.name, &what)?;
        self.table.claim(MODULE, &name, &what)?;
        let (annotation, value) = match &c.value {
            ConstantValue::Integer(v) => ("int", v.to_string()),
            ConstantValue::Float(v) => ("float", format!("{v:?}")),
            ConstantValue::String(v) => ("str", py_str(v)),
            ConstantValue::Boolean(v) => ("bool", if *v { "True".into() } else { "False".into() }),
        };
        let doc = doc_or(c.description.as_deref(), || format!("The `{}` constant.", c.name));
        Ok(Const { name, annotation: annotation.into(), value, doc })
    }

    fn enumeration(&mut self, def: &idl::EnumDef) -> Result<Enum, NameError> {
        let name = self.types[def.name.as_str()].clone();
        let scope = format!("the members of `{name}`");
        let mut values = Vec::new();
        for v in &def.values {
            let what = format!("value `{}` of enum `{}`", v.name, def.name);
            let ident = names::shouty(&v.name, &what)?;
            self.table.claim(&scope, &ident, &what)?;
            values.push(EnumValue {
                name: ident,
                value: v.value,
                doc: v.description.clone().unwrap_or_default(),
            });
        }
        let doc =
            doc_or(def.documentation.as_deref(), || format!("The `{}` enumeration.", def.name));
        Ok(Enum { name, doc, values })
    }

    fn fields(
        &mut self,
        fields: &[idl::Field],
        scope: &str,
        reserved: &[&str],
    ) -> Result<Vec<Field>, NameError> {
        for r in reserved {
            self.table.claim(scope, r, &format!("generated `{r}`"))?;
        }
        let (mut after_optional, mut keyword_only) = (false, false);
        fields
            .iter()
            .map(|f| {
                let what = format!("field `{}`", f.name);
                let ident = names::snake(&f.name, &what)?;
                let attr = self.table.claim_field(scope, &ident, &what)?;
                let (annotation, codec) = self.ty(&f.ty);
                let optional = matches!(f.ty, Type::Optional { .. });
                let starts_keywords = after_optional && !optional && !keyword_only;
                keyword_only |= starts_keywords;
                after_optional |= optional;
                Ok(Field {
                    wire: f.name.clone(),
                    attr,
                    annotation,
                    codec,
                    doc: f.description.clone().unwrap_or_default(),
                    optional,
                    starts_keywords,
                    keyword_only,
                })
            })
            .collect()
    }

    /// The annotation and codec expression of a type.
    fn ty(&self, ty: &Type) -> (String, String) {
        let int = |f: &IntFormat| {
            let name = match f {
                IntFormat::Int8 => "INT8",
                IntFormat::Int16 => "INT16",
                IntFormat::Int32 => "INT32",
                IntFormat::Int64 => "INT64",
                IntFormat::Uint8 => "UINT8",
                IntFormat::Uint16 => "UINT16",
                IntFormat::Uint32 => "UINT32",
                IntFormat::Uint64 => "UINT64",
            };
            ("int".to_string(), format!("_sb.codec.{name}"))
        };
        match ty {
            Type::Integer { format } => int(format),
            Type::Float { format } => {
                let name = if *format == FloatFormat::Float32 { "FLOAT32" } else { "FLOAT64" };
                ("float".into(), format!("_sb.codec.{name}"))
            }
            Type::Boolean => ("bool".into(), "_sb.codec.BOOLEAN".into()),
            Type::String => ("str".into(), "_sb.codec.STRING".into()),
            Type::DateTime => ("_dt.datetime".into(), "_sb.codec.DATETIME".into()),
            Type::Duration => ("_dt.timedelta".into(), "_sb.codec.DURATION".into()),
            Type::Binary => ("bytes".into(), "_sb.codec.BINARY".into()),
            Type::Enum { name } => {
                let ident = self.types[name.as_str()].clone();
                (ident.clone(), format!("_sb.codec.enum_of({ident})"))
            }
            Type::Struct { name } => {
                let ident = self.types[name.as_str()].clone();
                (ident.clone(), format!("_sb.codec.struct_of({ident})"))
            }
            Type::Array { item } => {
                let (a, c) = self.ty(item);
                (format!("list[{a}]"), format!("_sb.codec.array({c})"))
            }
            Type::Map { value } => {
                let (a, c) = self.ty(value);
                (format!("dict[str, {a}]"), format!("_sb.codec.map_of({c})"))
            }
            Type::Optional { inner } => {
                let (a, c) = self.ty(inner);
                (format!("{a} | None"), format!("_sb.codec.optional({c})"))
            }
        }
    }

    /// Claims a class name for a message struct: `name + suffix`, or `name + fallback`.
    fn message_class(
        &mut self,
        name: &str,
        suffixes: &[&str],
        what: &str,
    ) -> Result<String, NameError> {
        let candidates =
            suffixes.iter().map(|s| names::camel(name, s, what)).collect::<Result<Vec<_>, _>>()?;
        self.table.claim_first(MODULE, &candidates, what)
    }

    /// Adds a dataclass for `fields` and returns its shape.
    fn class_shape(&mut self, class: String, doc: String, fields: Vec<Field>) -> Shape {
        let fields_expr = fields_expr(&fields);
        let expr = format!("_sb.shape({fields_expr}, {class})");
        self.structs.push(Struct { name: class.clone(), doc, fields });
        Shape { annotation: class, expr }
    }

    /// A shape that is bare for one field, a new class for several, `None` for none.
    fn shape(
        &mut self,
        fields: Vec<Field>,
        name: &str,
        suffixes: &[&str],
        what: &str,
        doc: String,
    ) -> Result<Shape, NameError> {
        match fields.len() {
            0 => Ok(Shape { annotation: "None".into(), expr: "_sb.shape(())".into() }),
            1 => {
                let expr = format!("_sb.shape({})", fields_expr(&fields));
                Ok(Shape { annotation: fields[0].annotation.clone(), expr })
            }
            _ => {
                let class = self.message_class(name, suffixes, what)?;
                Ok(self.class_shape(class, doc, fields))
            }
        }
    }

    fn spec_name(&mut self, kind: &str, name: &str, what: &str) -> Result<String, NameError> {
        let ident = format!("_{}_{}", kind, names::shouty(name, what)?);
        Ok(self.table.claim_numbered(MODULE, &ident, what))
    }

    fn member(&mut self, scope: &str, ident: &str, what: &str) -> Result<String, NameError> {
        self.table.claim(scope, ident, what)?;
        Ok(ident.to_string())
    }

    fn client_scope(&self) -> String {
        format!("the methods of `{}Client`", self.base)
    }

    fn server_scope(&self) -> String {
        format!("the methods of `{}Server`", self.base)
    }

    fn handler_scope(&self) -> String {
        format!("the methods of `{}Handler`", self.base)
    }

    fn params(
        &mut self,
        fields: &[idl::Field],
        scope: &str,
        reserved: &[&str],
    ) -> Result<Vec<Field>, NameError> {
        let mut all = vec!["self", "timeout"];
        all.extend_from_slice(reserved);
        self.fields(fields, scope, &all)
    }

    fn errors_of(&self, names: &[String]) -> Vec<(String, String)> {
        names.iter().map(|n| (n.clone(), self.errors[n.as_str()].clone())).collect()
    }

    fn method(&mut self, m: &idl::Method) -> Result<Method, NameError> {
        let what = format!("method `{}`", m.name);
        let attr = names::snake(&m.name, &what)?;
        let (client, handler) = (self.client_scope(), self.handler_scope());
        self.member(&client, &attr, &what)?;
        self.member(&handler, &attr, &what)?;
        let params = self.params(&m.arguments, &format!("the parameters of `{attr}`"), &["ctx"])?;
        let returns = self.fields(&m.returns, &format!("the reply of `{attr}`"), &[])?;
        let doc = doc_or(m.documentation.as_deref(), || format!("Calls `{}`.", m.name));
        let returns = self.shape(
            returns,
            &m.name,
            &["Reply", "MethodReply"],
            &format!("the reply of {what}"),
            format!("What `{}` returns.", m.name),
        )?;
        let spec = self.spec_name("METHOD", &m.name, &what)?;
        let args = format!("_sb.shape({})", fields_expr(&params));
        let timeout = m.timeout_secs.map_or("None".to_string(), |t| format!("{t:?}"));
        Ok(Method {
            wire: m.name.clone(),
            attr,
            spec,
            doc,
            declarations: declarations(&params, true),
            forward: pass_on(&params, &params),
            params,
            args,
            returns,
            errors: self.errors_of(&m.errors),
            timeout,
        })
    }

    fn signal(&mut self, s: &idl::Signal) -> Result<Signal, NameError> {
        let what = format!("signal `{}`", s.name);
        let subscribe = names::prefixed_snake("subscribe", &s.name, &what)?;
        let emit = names::prefixed_snake("emit", &s.name, &what)?;
        let emit_to = format!("{emit}_to");
        let (client, server) = (self.client_scope(), self.server_scope());
        self.member(&client, &subscribe, &what)?;
        self.member(&server, &emit, &what)?;
        self.member(&server, &emit_to, &what)?;
        let params = self.params(&s.fields, &format!("the parameters of `{emit}`"), &["peer"])?;
        let fields = self.fields(&s.fields, &format!("the values of signal `{}`", s.name), &[])?;
        let doc = doc_or(s.documentation.as_deref(), || format!("The `{}` signal.", s.name));
        let class = self.message_class(&s.name, &["", "Signal"], &what)?;
        let construct = pass_on(&params, &fields);
        let value = self.class_shape(class.clone(), doc.clone(), fields);
        let spec = self.spec_name("SIGNAL", &s.name, &what)?;
        Ok(Signal {
            wire: s.name.clone(),
            spec,
            class,
            subscribe,
            emit,
            emit_to,
            doc,
            declarations: declarations(&params, false),
            params,
            construct,
            value,
        })
    }

    fn property(&mut self, p: &idl::Property) -> Result<Property, NameError> {
        let what = format!("property `{}`", p.name);
        let attr = names::snake(&p.name, &what)?;
        let get = names::prefixed_snake("get", &p.name, &what)?;
        let set = names::prefixed_snake("set", &p.name, &what)?;
        let watch = names::prefixed_snake("watch", &p.name, &what)?;
        let (client, server) = (self.client_scope(), self.server_scope());
        self.member(&client, &get, &what)?;
        self.member(&client, &watch, &what)?;
        if !p.read_only {
            self.member(&client, &set, &what)?;
        }
        self.member(&server, &attr, &what)?;
        self.member(&server, &set, &what)?;
        self.member("the fields of the properties class", &attr, &what)?;
        let fields =
            self.fields(&p.fields, &format!("the values of property `{}`", p.name), &[])?;
        let doc = doc_or(p.documentation.as_deref(), || format!("The `{}` property.", p.name));
        let value =
            self.shape(fields, &p.name, &["Property", "PropertyValue"], &what, doc.clone())?;
        let spec = self.spec_name("PROPERTY", &p.name, &what)?;
        Ok(Property {
            wire: p.name.clone(),
            attr,
            spec,
            get,
            set,
            watch,
            doc,
            read_only: p.read_only,
            value,
        })
    }

    fn command(&mut self, c: &idl::Command) -> Result<Command, NameError> {
        let what = format!("command `{}`", c.name);
        let attr = names::snake(&c.name, &what)?;
        let (client, handler) = (self.client_scope(), self.handler_scope());
        self.member(&client, &attr, &what)?;
        self.member(&handler, &attr, &what)?;
        let params = self.params(&c.arguments, &format!("the parameters of `{attr}`"), &["ctx"])?;
        let doc = doc_or(c.documentation.as_deref(), || format!("Sends the `{}` command.", c.name));
        let spec = self.spec_name("COMMAND", &c.name, &what)?;
        let args = format!("_sb.shape({})", fields_expr(&params));
        let (declarations, forward) = (declarations(&params, false), pass_on(&params, &params));
        Ok(Command { wire: c.name.clone(), attr, spec, doc, params, declarations, forward, args })
    }

    fn action(&mut self, a: &idl::Action) -> Result<Action, NameError> {
        let what = format!("action `{}`", a.name);
        let attr = names::snake(&a.name, &what)?;
        let attach = names::prefixed_snake("attach", &a.name, &what)?;
        let accept = names::prefixed_snake("accept", &a.name, &what)?;
        let (client, handler) = (self.client_scope(), self.handler_scope());
        self.member(&client, &attr, &what)?;
        self.member(&client, &attach, &what)?;
        self.member(&handler, &attr, &what)?;
        self.member(&handler, &accept, &what)?;
        let params = self.params(&a.goal, &format!("the parameters of `{attr}`"), &["goal"])?;
        let doc = doc_or(a.documentation.as_deref(), || format!("Starts a goal of `{}`.", a.name));
        let goal_fields = self.fields(&a.goal, &format!("the goal of `{}`", a.name), &[])?;
        let goal_class = self.message_class(&a.name, &["Goal", "ActionGoal"], &what)?;
        let goal =
            self.class_shape(goal_class.clone(), format!("A goal of `{}`.", a.name), goal_fields);
        let fb_fields = self.fields(&a.feedback, &format!("the feedback of `{}`", a.name), &[])?;
        let fb_class = self.message_class(&a.name, &["Feedback", "ActionFeedback"], &what)?;
        let feedback =
            self.class_shape(fb_class, format!("Feedback of a `{}` goal.", a.name), fb_fields);
        let result_fields = self.fields(&a.result, &format!("the result of `{}`", a.name), &[])?;
        let result = self.shape(
            result_fields,
            &a.name,
            &["Result", "ActionResult"],
            &what,
            format!("The result of a `{}` goal.", a.name),
        )?;
        let spec = self.spec_name("ACTION", &a.name, &what)?;
        Ok(Action {
            wire: a.name.clone(),
            attr,
            attach,
            accept,
            spec,
            doc,
            declarations: declarations(&params, false),
            forward: pass_on(&params, &params),
            params,
            goal_class,
            feedback,
            result,
            goal: goal.expr,
            errors: self.errors_of(&a.errors),
        })
    }
}

/// The declarations of `params` in a signature that callers use: `name: annotation`, with
/// `= None` for optional values and a `*` before the keyword-only ones. With `keywords_follow`
/// the signature goes on with keyword-only parameters of its own (`timeout`, `message`), so the
/// declarations end with a `*` when none came before.
fn declarations(params: &[Field], keywords_follow: bool) -> Vec<String> {
    let mut out = Vec::with_capacity(params.len() + 1);
    for p in params {
        if p.starts_keywords {
            out.push("*".to_string());
        }
        let default = if p.optional { " = None" } else { "" };
        out.push(format!("{}: {}{default}", p.attr, p.annotation));
    }
    if keywords_follow && !params.iter().any(|p| p.keyword_only) {
        out.push("*".to_string());
    }
    out
}

/// The arguments that pass each of `values` on to the matching one of `params` (a function's or a
/// class's): positional while `params` allow it, `param=value` from their keyword-only ones on.
fn pass_on(values: &[Field], params: &[Field]) -> Vec<String> {
    values
        .iter()
        .zip(params)
        .map(|(value, param)| {
            if param.keyword_only {
                format!("{}={}", param.attr, value.attr)
            } else {
                value.attr.clone()
            }
        })
        .collect()
}

/// `(("wire", "attr", codec), ...)`, always a tuple.
fn fields_expr(fields: &[Field]) -> String {
    if fields.is_empty() {
        return "()".into();
    }
    let items: Vec<String> = fields
        .iter()
        .map(|f| format!("({}, {}, {})", py_str(&f.wire), py_str(&f.attr), f.codec))
        .collect();
    format!("({},)", items.join(", "))
}
