//! The C++ target: a header-only library per interface, built on the `switchboard` C++ runtime
//! in `cpp/`, with a `CMakeLists.txt` that makes it one CMake target.
//!
//! As for Python, generation has two steps: `lower` (here) restates the interface as a view
//! model in which every identifier, C++ type and JSON conversion is decided, and the minijinja
//! template in `templates/cpp/` only interpolates it.

pub(crate) mod names;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use switchboard_idl::{self as idl, ConstantValue, FloatFormat, IntFormat, Interface, Type};

use crate::names::{NameError, NameTable};
use crate::{GenerateError, GeneratedFile};

const HEADER_TEMPLATE: &str = include_str!("../../templates/cpp/interface.hpp.j2");
const CMAKE_TEMPLATE: &str = include_str!("../../templates/cpp/CMakeLists.txt.j2");

/// The scope of namespace-level names in the generated header.
const NAMESPACE: &str = "the generated C++ namespace";

/// The generated library.
#[derive(Debug, Serialize)]
pub(crate) struct Library {
    pub(crate) header: String,
    pub(crate) namespace: String,
    pub(crate) target: String,
    pub(crate) doc: String,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) hash: String,
    pub(crate) description: String,
    pub(crate) base: String,
    pub(crate) consts: Vec<Const>,
    pub(crate) enums: Vec<Enum>,
    pub(crate) structs: Vec<Struct>,
    pub(crate) errors: Vec<ErrorClass>,
    pub(crate) methods: Vec<Method>,
    pub(crate) signals: Vec<Signal>,
    pub(crate) properties: Vec<Property>,
    pub(crate) commands: Vec<Command>,
    pub(crate) actions: Vec<Action>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Const {
    pub(crate) name: String,
    pub(crate) ty: String,
    pub(crate) value: String,
    pub(crate) doc: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Enum {
    pub(crate) name: String,
    pub(crate) doc: String,
    pub(crate) values: Vec<EnumValue>,
}

#[derive(Debug, Serialize)]
pub(crate) struct EnumValue {
    pub(crate) name: String,
    pub(crate) value: i64,
    pub(crate) doc: String,
}

/// A member of a structure or error, or a parameter.
#[derive(Debug, Serialize, Clone)]
pub(crate) struct Field {
    pub(crate) wire: String,
    pub(crate) name: String,
    /// The C++ type of the value.
    pub(crate) ty: String,
    /// How a parameter of this type is declared: by value for scalars, `const T&` otherwise.
    pub(crate) param: String,
    pub(crate) doc: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Struct {
    pub(crate) name: String,
    pub(crate) doc: String,
    pub(crate) fields: Vec<Field>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ErrorClass {
    pub(crate) name: String,
    pub(crate) wire: String,
    pub(crate) doc: String,
    pub(crate) fields: Vec<Field>,
    pub(crate) message: String,
}

/// How the values of a reply or property are held in C++ and converted: no value (`void`), one
/// bare value, or a generated structure. `encode` reads `sb_value`, `decode` reads `sb_data`.
#[derive(Debug, Serialize)]
pub(crate) struct Shape {
    pub(crate) ty: String,
    pub(crate) param: String,
    pub(crate) encode: String,
    pub(crate) decode: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Method {
    pub(crate) wire: String,
    pub(crate) name: String,
    pub(crate) doc: String,
    pub(crate) params: Vec<Field>,
    pub(crate) returns: Shape,
    pub(crate) timeout_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Signal {
    pub(crate) wire: String,
    pub(crate) class: String,
    pub(crate) subscribe: String,
    pub(crate) emit: String,
    pub(crate) doc: String,
    pub(crate) params: Vec<Field>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Property {
    pub(crate) wire: String,
    pub(crate) name: String,
    pub(crate) get: String,
    pub(crate) set: String,
    pub(crate) watch: String,
    pub(crate) doc: String,
    pub(crate) read_only: bool,
    pub(crate) value: Shape,
    /// The parameter name of the setters.
    pub(crate) param_name: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Command {
    pub(crate) wire: String,
    pub(crate) name: String,
    pub(crate) doc: String,
    pub(crate) params: Vec<Field>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Action {
    pub(crate) wire: String,
    /// The handler's function that runs a goal, and the client's that sends one.
    pub(crate) name: String,
    /// The handler's function that decides whether to accept a goal.
    pub(crate) accept: String,
    pub(crate) doc: String,
    /// The structure of the goal's values, and its members.
    pub(crate) goal_class: String,
    pub(crate) goal_members: Vec<Field>,
    pub(crate) feedback_class: String,
    /// The goal's values as parameters of the handler and the client.
    pub(crate) params: Vec<Field>,
    pub(crate) result: Shape,
}

/// The directory and file name of the generated header: `include/<namespace>/<namespace>.hpp`.
fn header_path(namespace: &str) -> String {
    format!("include/{namespace}/{namespace}.hpp")
}

/// Generates the files of the C++ library for `iface`, relative to the output directory:
/// `CMakeLists.txt` and `include/<namespace>/<namespace>.hpp`.
///
/// # Errors
///
/// Fails when names from the interface file cannot become C++ identifiers or would collide.
pub fn generate(iface: &Interface, source_name: &str) -> Result<Vec<GeneratedFile>, GenerateError> {
    let library = lower(iface, source_name)?;
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.add_filter("comment", comment);
    env.add_filter("cppstr", |s: String| cpp_str(&s));
    let render = |template: &str| {
        env.render_str(template, &library).map_err(|e| GenerateError::Syntax(format!("{e:#}")))
    };
    let header = tidy(&render(HEADER_TEMPLATE)?);
    let cmake = render(CMAKE_TEMPLATE)?;
    Ok(vec![
        GeneratedFile { path: "CMakeLists.txt".into(), contents: cmake },
        GeneratedFile { path: header_path(&library.namespace).into(), contents: header },
    ])
}

/// The view model of the C++ library for `iface`: every name and C++ type the header has (the
/// Markdown reference's C++ snippets are written against it).
pub(crate) fn lower(iface: &Interface, source_name: &str) -> Result<Library, GenerateError> {
    Ok(Lowering::new(iface)?.run(source_name)?)
}

/// Collapses runs of blank lines left by template control blocks to one.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            if blank {
                continue;
            }
            blank = true;
        } else {
            blank = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// A C++ string literal for `s`.
fn cpp_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '?' => out.push_str("\\?"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}\"\"", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders `text` as `///` comment lines indented by `indent` spaces (the first line is not
/// indented); empty text renders nothing.
fn comment(text: String, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&pad);
        }
        // A backslash at the end of a line would continue the comment onto the next line.
        let line = line.trim_end().trim_end_matches('\\');
        if line.is_empty() { out.push_str("///") } else { out.push_str(&format!("/// {line}")) }
    }
    out
}

fn doc_or(doc: Option<&str>, fallback: impl FnOnce() -> String) -> String {
    match doc.map(str::trim) {
        Some(d) if !d.is_empty() => d.to_string(),
        _ => fallback(),
    }
}

/// Whether a value of this C++ type is passed by value (scalars) rather than by `const&`.
fn by_value(ty: &Type) -> bool {
    matches!(
        ty,
        Type::Integer { .. }
            | Type::Float { .. }
            | Type::Boolean
            | Type::DateTime
            | Type::Duration
            | Type::Enum { .. }
    )
}

struct Lowering<'a> {
    iface: &'a Interface,
    table: NameTable,
    types: HashMap<&'a str, String>,
    errors: HashMap<&'a str, String>,
    base: String,
    namespace: String,
    /// Generated message structures (replies, signals, properties), after the user's.
    messages: Vec<Struct>,
}

impl<'a> Lowering<'a> {
    fn new(iface: &'a Interface) -> Result<Self, NameError> {
        let what = format!("interface `{}`", iface.name);
        let base = names::pascal(&iface.name, "", &what)?;
        let namespace = names::snake(&iface.name, &what)?;
        let mut this = Lowering {
            iface,
            table: NameTable::new(),
            types: HashMap::new(),
            errors: HashMap::new(),
            base,
            namespace,
            messages: Vec::new(),
        };
        for fixed in [
            "interface_name",
            "interface_version",
            "interface_hash",
            "interface_description",
            "detail",
        ] {
            this.table.claim(NAMESPACE, fixed, &format!("the generated `{fixed}`"))?;
        }
        for suffix in ["Client", "Handler", "Server", "Properties"] {
            let ident = format!("{}{suffix}", this.base);
            this.table.claim(NAMESPACE, &ident, &format!("the generated `{ident}`"))?;
        }
        for def in &iface.enums {
            let what = format!("enum `{}`", def.name);
            let ident = names::pascal(&def.name, "", &what)?;
            this.table.claim(NAMESPACE, &ident, &what)?;
            this.types.insert(&def.name, ident);
        }
        for def in &iface.structs {
            let what = format!("struct `{}`", def.name);
            let ident = names::pascal(&def.name, "", &what)?;
            this.table.claim(NAMESPACE, &ident, &what)?;
            this.types.insert(&def.name, ident);
        }
        for def in &iface.errors {
            let what = format!("error `{}`", def.name);
            let ident = names::pascal(&def.name, "", &what)?;
            this.table.claim(NAMESPACE, &ident, &what)?;
            this.errors.insert(&def.name, ident);
        }
        Ok(this)
    }

    fn run(mut self, source_name: &str) -> Result<Library, NameError> {
        let iface = self.iface;
        let hash = iface.description_hash();
        let short = hash.strip_prefix("sha256:").unwrap_or(&hash);
        let header = format!(
            "// @generated by switchboard-codegen {} from {source_name} (sha256:{}). Do not edit \
             by hand;\n// regenerate with `switchboard generate --lang cpp`.",
            env!("CARGO_PKG_VERSION"),
            short.get(..12).unwrap_or(short),
        );
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

        let consts = iface.constants.iter().map(|c| self.constant(c)).collect::<Result<_, _>>()?;
        let enums = iface.enums.iter().map(|e| self.enumeration(e)).collect::<Result<_, _>>()?;
        let mut structs = self.user_structs()?;
        let mut errors = Vec::new();
        for def in &iface.errors {
            let name = self.errors[def.name.as_str()].clone();
            let doc = doc_or(def.documentation.as_deref(), || format!("The `{}` error.", def.name));
            let reserved = ["code", "name", "message", "details", "what"];
            let scope = format!("the members of `{name}`");
            let fields = self.fields(&def.fields, &scope, &reserved, &HashSet::new())?;
            let message = def
                .documentation
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .unwrap_or(&def.name)
                .to_string();
            errors.push(ErrorClass { name, wire: def.name.clone(), doc, fields, message });
        }
        let methods = iface.methods.iter().map(|m| self.method(m)).collect::<Result<_, _>>()?;
        let signals = iface.signals.iter().map(|s| self.signal(s)).collect::<Result<_, _>>()?;
        let properties =
            iface.properties.iter().map(|p| self.property(p)).collect::<Result<_, _>>()?;
        let commands = iface.commands.iter().map(|c| self.command(c)).collect::<Result<_, _>>()?;
        let actions = iface.actions.iter().map(|a| self.action(a)).collect::<Result<_, _>>()?;
        structs.append(&mut self.messages);
        let description = iface.description_json();
        Ok(Library {
            header,
            target: format!("{}_interface", self.namespace),
            namespace: self.namespace.clone(),
            doc,
            name: iface.name.clone(),
            version: iface.version.clone(),
            hash,
            description,
            base: self.base.clone(),
            consts,
            enums,
            structs,
            errors,
            methods,
            signals,
            properties,
            commands,
            actions,
        })
    }

    /// The user's structures, each after the ones it holds; a member whose type is in its own
    /// cycle (directly or through `optional`) is held in a `switchboard::Box`.
    fn user_structs(&mut self) -> Result<Vec<Struct>, NameError> {
        let iface = self.iface;
        let index: HashMap<&str, usize> =
            iface.structs.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let edges: Vec<Vec<usize>> = iface
            .structs
            .iter()
            .map(|s| {
                let mut out = Vec::new();
                for f in &s.fields {
                    referenced_structs(&f.ty, &mut |name| {
                        if let Some(&i) = index.get(name) {
                            out.push(i);
                        }
                    });
                }
                out
            })
            .collect();
        let components = switchboard_idl::graph::strongly_connected(&edges);
        let mut out = Vec::new();
        // Components come after every component they reach: dependencies first, as C++ needs.
        for component in components {
            let cycle: HashSet<String> =
                component.iter().map(|&i| iface.structs[i].name.clone()).collect();
            let mut ordered = component.clone();
            ordered.sort_unstable();
            for i in ordered {
                let def = &iface.structs[i];
                let name = self.types[def.name.as_str()].clone();
                let doc = doc_or(def.documentation.as_deref(), || {
                    format!("The `{}` structure.", def.name)
                });
                let scope = format!("the members of `{name}`");
                let fields = self.fields(&def.fields, &scope, &[], &cycle)?;
                out.push(Struct { name, doc, fields });
            }
        }
        Ok(out)
    }

    fn constant(&mut self, c: &idl::Constant) -> Result<Const, NameError> {
        let what = format!("constant `{}`", c.name);
        let name = names::snake(&c.name, &what)?;
        self.table.claim(NAMESPACE, &name, &what)?;
        let (ty, value) = match &c.value {
            ConstantValue::Integer(v) if *v == i64::MIN => {
                ("std::int64_t", "std::numeric_limits<std::int64_t>::min()".to_string())
            }
            ConstantValue::Integer(v) => ("std::int64_t", v.to_string()),
            ConstantValue::Float(v) => ("double", format!("{v:?}")),
            ConstantValue::String(v) => ("std::string_view", cpp_str(v)),
            ConstantValue::Boolean(v) => ("bool", v.to_string()),
        };
        let doc = doc_or(c.description.as_deref(), || format!("The `{}` constant.", c.name));
        Ok(Const { name, ty: ty.into(), value, doc })
    }

    fn enumeration(&mut self, def: &idl::EnumDef) -> Result<Enum, NameError> {
        let name = self.types[def.name.as_str()].clone();
        let scope = format!("the enumerators of `{name}`");
        let mut values = Vec::new();
        for v in &def.values {
            let what = format!("value `{}` of enum `{}`", v.name, def.name);
            let ident = names::snake(&v.name, &what)?;
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
        cycle: &HashSet<String>,
    ) -> Result<Vec<Field>, NameError> {
        for r in reserved {
            self.table.claim(scope, r, &format!("generated `{r}`"))?;
        }
        fields
            .iter()
            .map(|f| {
                let what = format!("field `{}`", f.name);
                let ident = names::snake(&f.name, &what)?;
                let name = self.table.claim_field(scope, &ident, &what)?;
                let ty = self.ty(&f.ty, cycle);
                let param = if by_value(&f.ty) { ty.clone() } else { format!("const {ty}&") };
                Ok(Field {
                    wire: f.name.clone(),
                    name,
                    ty,
                    param,
                    doc: f.description.clone().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The C++ type of an IDL type; structures in `cycle` are boxed unless in a collection.
    fn ty(&self, ty: &Type, cycle: &HashSet<String>) -> String {
        match ty {
            Type::Integer { format } => match format {
                IntFormat::Int8 => "std::int8_t",
                IntFormat::Int16 => "std::int16_t",
                IntFormat::Int32 => "std::int32_t",
                IntFormat::Int64 => "std::int64_t",
                IntFormat::Uint8 => "std::uint8_t",
                IntFormat::Uint16 => "std::uint16_t",
                IntFormat::Uint32 => "std::uint32_t",
                IntFormat::Uint64 => "std::uint64_t",
            }
            .to_string(),
            Type::Float { format } => {
                if *format == FloatFormat::Float32 { "float" } else { "double" }.to_string()
            }
            Type::Boolean => "bool".into(),
            Type::String => "std::string".into(),
            Type::DateTime => "switchboard::DateTime".into(),
            Type::Duration => "switchboard::Duration".into(),
            Type::Binary => "switchboard::Bytes".into(),
            Type::Enum { name } => self.types[name.as_str()].clone(),
            Type::Struct { name } => {
                let ident = self.types[name.as_str()].clone();
                if cycle.contains(name) { format!("switchboard::Box<{ident}>") } else { ident }
            }
            Type::Array { item } => format!("std::vector<{}>", self.ty(item, &HashSet::new())),
            Type::Map { value } => {
                format!("std::map<std::string, {}>", self.ty(value, &HashSet::new()))
            }
            Type::Optional { inner } => format!("std::optional<{}>", self.ty(inner, cycle)),
        }
    }

    /// Claims a class name for a message structure: `name + suffix`, or `name + fallback`.
    fn message_class(
        &mut self,
        name: &str,
        suffixes: &[&str],
        what: &str,
    ) -> Result<String, NameError> {
        let candidates =
            suffixes.iter().map(|s| names::pascal(name, s, what)).collect::<Result<Vec<_>, _>>()?;
        self.table.claim_first(NAMESPACE, &candidates, what)
    }

    /// The shape of a list of values: `void` for none, bare for one, a new structure for more.
    fn shape(
        &mut self,
        fields: Vec<Field>,
        name: &str,
        suffixes: &[&str],
        what: &str,
        doc: String,
    ) -> Result<Shape, NameError> {
        match fields.len() {
            0 => Ok(Shape {
                ty: "void".into(),
                param: "void".into(),
                encode: "switchboard::Json::object()".into(),
                decode: String::new(),
            }),
            1 => {
                let field = &fields[0];
                Ok(Shape {
                    ty: field.ty.clone(),
                    param: field.param.clone(),
                    encode: format!(
                        "switchboard::Json{{{{{}, switchboard::encode(sb_value)}}}}",
                        cpp_str(&field.wire)
                    ),
                    decode: format!(
                        "switchboard::decode_field<{}>(sb_data, {}, \"\")",
                        field.ty,
                        cpp_str(&field.wire)
                    ),
                })
            }
            _ => {
                let class = self.message_class(name, suffixes, what)?;
                self.messages.push(Struct { name: class.clone(), doc, fields });
                Ok(Shape {
                    param: format!("const {class}&"),
                    encode: "switchboard::encode(sb_value)".into(),
                    decode: format!("switchboard::decode<{class}>(sb_data, \"\")"),
                    ty: class,
                })
            }
        }
    }

    fn member(&mut self, scope: &str, ident: &str, what: &str) -> Result<String, NameError> {
        self.table.claim(scope, ident, what)?;
        Ok(ident.to_string())
    }

    fn client_scope(&self) -> String {
        format!("the members of `{}Client`", self.base)
    }

    fn server_scope(&self) -> String {
        format!("the members of `{}Server`", self.base)
    }

    fn handler_scope(&self) -> String {
        format!("the members of `{}Handler`", self.base)
    }

    /// Parameters: `context` and `timeout` are the generated ones, and the `sb_` names are the
    /// generated functions' locals.
    fn params(&mut self, fields: &[idl::Field], scope: &str) -> Result<Vec<Field>, NameError> {
        let reserved = ["context", "timeout", "sb_args", "sb_promise", "sb_outcome", "sb_data"];
        self.fields(fields, scope, &reserved, &HashSet::new())
    }

    fn method(&mut self, m: &idl::Method) -> Result<Method, NameError> {
        let what = format!("method `{}`", m.name);
        let name = names::snake(&m.name, &what)?;
        let (client, handler) = (self.client_scope(), self.handler_scope());
        self.member(&client, &name, &what)?;
        self.member(&handler, &name, &what)?;
        let params = self.params(&m.arguments, &format!("the parameters of `{name}`"))?;
        let scope = format!("the reply of `{name}`");
        let returns = self.fields(&m.returns, &scope, &[], &HashSet::new())?;
        let doc = doc_or(m.documentation.as_deref(), || format!("Calls `{}`.", m.name));
        let returns = self.shape(
            returns,
            &m.name,
            &["Reply", "MethodReply"],
            &format!("the reply of {what}"),
            format!("What `{}` returns.", m.name),
        )?;
        // Rounded up to whole milliseconds, at least 1.
        let timeout_ms = m.timeout_secs.map(|t| ((t * 1000.0).ceil() as u64).max(1));
        Ok(Method { wire: m.name.clone(), name, doc, params, returns, timeout_ms })
    }

    fn signal(&mut self, s: &idl::Signal) -> Result<Signal, NameError> {
        let what = format!("signal `{}`", s.name);
        let subscribe = names::prefixed_snake("subscribe", &s.name, &what)?;
        let emit = names::prefixed_snake("emit", &s.name, &what)?;
        let (client, server) = (self.client_scope(), self.server_scope());
        self.member(&client, &subscribe, &what)?;
        self.member(&server, &emit, &what)?;
        let params = self.params(&s.fields, &format!("the parameters of `{emit}`"))?;
        let scope = format!("the values of signal `{}`", s.name);
        let fields = self.fields(&s.fields, &scope, &[], &HashSet::new())?;
        let doc = doc_or(s.documentation.as_deref(), || format!("The `{}` signal.", s.name));
        let class = self.message_class(&s.name, &["", "Signal"], &what)?;
        self.messages.push(Struct { name: class.clone(), doc: doc.clone(), fields });
        Ok(Signal { wire: s.name.clone(), class, subscribe, emit, doc, params })
    }

    fn property(&mut self, p: &idl::Property) -> Result<Property, NameError> {
        let what = format!("property `{}`", p.name);
        let name = names::snake(&p.name, &what)?;
        let get = names::prefixed_snake("get", &p.name, &what)?;
        let set = names::prefixed_snake("set", &p.name, &what)?;
        let watch = names::prefixed_snake("watch", &p.name, &what)?;
        let (client, server) = (self.client_scope(), self.server_scope());
        self.member(&client, &get, &what)?;
        self.member(&client, &watch, &what)?;
        if !p.read_only {
            self.member(&client, &set, &what)?;
        }
        self.member(&server, &name, &what)?;
        self.member(&server, &set, &what)?;
        self.member("the members of the properties structure", &name, &what)?;
        let scope = format!("the values of property `{}`", p.name);
        let fields = self.fields(&p.fields, &scope, &[], &HashSet::new())?;
        let param_name = match fields.as_slice() {
            [one] => one.name.clone(),
            _ => "value".to_string(),
        };
        let doc = doc_or(p.documentation.as_deref(), || format!("The `{}` property.", p.name));
        let value =
            self.shape(fields, &p.name, &["Property", "PropertyValue"], &what, doc.clone())?;
        Ok(Property {
            wire: p.name.clone(),
            name,
            get,
            set,
            watch,
            doc,
            read_only: p.read_only,
            value,
            param_name,
        })
    }

    fn command(&mut self, c: &idl::Command) -> Result<Command, NameError> {
        let what = format!("command `{}`", c.name);
        let name = names::snake(&c.name, &what)?;
        let (client, handler) = (self.client_scope(), self.handler_scope());
        self.member(&client, &name, &what)?;
        self.member(&handler, &name, &what)?;
        let params = self.params(&c.arguments, &format!("the parameters of `{name}`"))?;
        let doc = doc_or(c.documentation.as_deref(), || format!("Sends the `{}` command.", c.name));
        Ok(Command { wire: c.name.clone(), name, doc, params })
    }
}

impl Lowering<'_> {
    fn action(&mut self, a: &idl::Action) -> Result<Action, NameError> {
        let what = format!("action `{}`", a.name);
        let name = names::snake(&a.name, &what)?;
        let accept = names::prefixed_snake("accept", &a.name, &what)?;
        let (client, handler) = (self.client_scope(), self.handler_scope());
        self.member(&client, &name, &what)?;
        self.member(&handler, &name, &what)?;
        self.member(&handler, &accept, &what)?;
        // `goal` is the handler's goal context, `on_feedback` the client's feedback callback.
        let reserved = [
            "goal",
            "on_feedback",
            "context",
            "timeout",
            "sb_args",
            "sb_promise",
            "sb_outcome",
            "sb_data",
        ];
        let params_scope = format!("the parameters of `{name}`");
        let params = self.fields(&a.goal, &params_scope, &reserved, &HashSet::new())?;
        let goal_class =
            self.message_class(&a.name, &["Goal", "ActionGoal"], &format!("the goal of {what}"))?;
        let goal_members =
            self.fields(&a.goal, &format!("the members of `{goal_class}`"), &[], &HashSet::new())?;
        self.messages.push(Struct {
            name: goal_class.clone(),
            doc: format!("The values of a `{}` goal.", a.name),
            fields: goal_members.clone(),
        });
        let feedback_class = self.message_class(
            &a.name,
            &["Feedback", "ActionFeedback"],
            &format!("the feedback of {what}"),
        )?;
        let feedback = self.fields(
            &a.feedback,
            &format!("the members of `{feedback_class}`"),
            &[],
            &HashSet::new(),
        )?;
        self.messages.push(Struct {
            name: feedback_class.clone(),
            doc: format!("The progress a `{}` goal reports.", a.name),
            fields: feedback,
        });
        let result_scope = format!("the result of `{name}`");
        let result = self.fields(&a.result, &result_scope, &[], &HashSet::new())?;
        let result = self.shape(
            result,
            &a.name,
            &["Result", "ActionResult"],
            &format!("the result of {what}"),
            format!("What a `{}` goal ends with.", a.name),
        )?;
        let doc = doc_or(a.documentation.as_deref(), || format!("The `{}` action.", a.name));
        Ok(Action {
            wire: a.name.clone(),
            name,
            accept,
            doc,
            goal_class,
            goal_members,
            feedback_class,
            params,
            result,
        })
    }
}

/// Calls `found` with the name of every structure `ty` refers to.
fn referenced_structs(ty: &Type, found: &mut impl FnMut(&str)) {
    match ty {
        Type::Struct { name } => found(name),
        Type::Array { item } => referenced_structs(item, found),
        Type::Map { value } => referenced_structs(value, found),
        Type::Optional { inner } => referenced_structs(inner, found),
        _ => {}
    }
}
