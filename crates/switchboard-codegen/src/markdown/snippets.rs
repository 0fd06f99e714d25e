//! The usage snippets of the Markdown reference.
//!
//! The Rust snippet uses the Rust target's own lowered view model, so every identifier and type
//! in it is the one the generated code has; the workspace's tests compile the snippets of the
//! committed references against the generated code.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;

use heck::{ToSnakeCase, ToUpperCamelCase};
use switchboard_idl::{Field, Interface, Type};

use crate::GenerateError;
use crate::asyncapi::example;
use crate::rust::lower;
use crate::rust::model::{Module, Returns, RustType, Struct};

/// The Rust server snippet: the handler trait implemented with example values, and a function
/// that serves it and emits a signal.
pub(super) fn rust_server(iface: &Interface, source_name: &str) -> Result<String, GenerateError> {
    let module = lower::lower(iface, source_name)?;
    let what = format!("interface `{}`", iface.name);
    let m = crate::names::snake(&iface.name, &what)?;
    let func = crate::names::prefixed_snake("serve", &iface.name, &what)?;
    let service = &module.service;
    let handler = format!("My{}", service.trait_ident);
    let values = RustValues::new(&module, &m, DateTimes::Fixed);
    let value = |ty: &RustType| values.expr(ty);
    let ty = |ty: &RustType| rust_type(&m, ty);
    let mut imports = vec![service.trait_ident.clone(), service.server_ident.clone()];
    imports.extend(service.initial_values.as_ref().map(|values| values.ident.clone()));
    imports.sort();
    let mut out = String::new();
    let _ = writeln!(out, "use switchboard::prelude::*;");
    let _ = writeln!(out, "use {m}::{{{}}};", imports.join(", "));
    out.push('\n');
    let _ = writeln!(
        out,
        "/// Answers `{}` calls; every function the trait requires, with example results.",
        iface.name
    );
    let _ = writeln!(out, "struct {handler};");
    out.push('\n');
    let _ = writeln!(out, "impl {} for {handler} {{", service.trait_ident);
    let mut functions = Vec::new();
    for method in &service.methods {
        let mut params = vec!["_ctx: &CallContext".to_string()];
        params.extend(method.args.iter().map(|a| format!("_{}: {}", unraw(&a.ident), ty(&a.ty))));
        let error = match &method.errors {
            Some(errors) => format!("HandlerError<{m}::{errors}>"),
            None => "RemoteError".to_string(),
        };
        let (output, result) = returns(&values, &m, &method.returns);
        let signature = signature(&method.fn_ident, &params, &format!("Result<{output}, {error}>"));
        functions.push(format!("{signature}\n        Ok({result})\n    }}\n"));
    }
    for command in &service.commands {
        let mut params = vec!["_ctx: &CallContext".to_string()];
        params.extend(command.args.iter().map(|a| format!("_{}: {}", unraw(&a.ident), ty(&a.ty))));
        let signature = signature(&command.fn_ident, &params, "Result<(), RemoteError>");
        functions.push(format!("{signature}\n        Ok(())\n    }}\n"));
    }
    for action in &service.actions {
        let feedback = format!("{m}::{}", action.feedback_struct);
        let mut params = vec![format!("goal: GoalContext<{feedback}>")];
        params.extend(action.goal.iter().map(|a| format!("_{}: {}", unraw(&a.ident), ty(&a.ty))));
        let error = match &action.errors {
            Some(errors) => format!("{m}::{errors}"),
            None => "std::convert::Infallible".to_string(),
        };
        let (output, result) = returns(&values, &m, &action.result);
        let signature = signature(
            &action.fn_ident,
            &params,
            &format!("Result<{output}, HandlerError<{error}>>"),
        );
        let progress = value(&RustType::Named(action.feedback_struct.clone()));
        functions.push(format!(
            "{signature}\n        goal.feedback({progress}).await;\n        Ok({result})\n    }}\n"
        ));
    }
    out.push_str(&functions.join("\n"));
    let _ = writeln!(out, "}}");
    out.push('\n');
    let _ = writeln!(out, "/// Serves `{}` at `endpoint` and emits one signal.", iface.name);
    let _ = writeln!(out, "pub async fn {func}(");
    let _ = writeln!(out, "    endpoint: &Endpoint,");
    let _ = writeln!(out, ") -> Result<{}, Box<dyn std::error::Error>> {{", service.server_ident);
    let serve = match &service.initial_values {
        Some(values) => {
            let fields: Vec<String> = values
                .fields
                .iter()
                .map(|f| format!("        {}: {},", f.ident, value(&f.ty)))
                .collect();
            let _ = writeln!(out, "    let properties = {} {{", values.ident);
            for field in fields {
                let _ = writeln!(out, "{field}");
            }
            let _ = writeln!(out, "    }};");
            format!("{}::serve(endpoint, {handler}, properties)", service.server_ident)
        }
        None => format!("{}::serve(endpoint, {handler})", service.server_ident),
    };
    let _ = writeln!(out, "    let server = {serve}.await?;");
    if let Some(signal) = service.signals.first() {
        let args: Vec<String> = signal.fields.iter().map(|f| value(&f.ty)).collect();
        let _ = writeln!(out, "    server.{}({}).await?;", signal.emit_fn, arg_list(&args));
    }
    let _ = writeln!(out, "    Ok(server)");
    let _ = writeln!(out, "}}");
    Ok(out)
}

/// An identifier without its `r#`, for use after a prefix.
fn unraw(ident: &str) -> &str {
    crate::names::unraw(ident)
}

/// The type and an example value of a method's reply or an action's result.
fn returns(values: &RustValues<'_>, m: &str, returns: &Returns) -> (String, String) {
    match returns {
        Returns::Unit => ("()".to_string(), "()".to_string()),
        Returns::Single { field, .. } => (rust_type(m, &field.ty), values.expr(&field.ty)),
        Returns::Struct { ident } => {
            let ty = RustType::Named(ident.clone());
            (rust_type(m, &ty), values.expr(&ty))
        }
    }
}

/// A trait function's first line(s), up to and including `{`, wrapped as rustfmt would.
fn signature(name: &str, params: &[String], output: &str) -> String {
    let line = format!("    async fn {name}(&self, {}) -> {output} {{", params.join(", "));
    if line.len() <= 100 {
        return line;
    }
    let mut out = format!("    async fn {name}(\n        &self,\n");
    for param in params {
        let _ = writeln!(out, "        {param},");
    }
    let _ = write!(out, "    ) -> {output} {{");
    out
}

/// A Rust type as a user writes it, with generated types qualified by their module `m`.
fn rust_type(m: &str, ty: &RustType) -> String {
    match ty {
        RustType::Primitive(p) => (*p).to_string(),
        RustType::String => "String".to_string(),
        RustType::DateTime => "DateTime".to_string(),
        RustType::Duration => "Duration".to_string(),
        RustType::Binary => "Vec<u8>".to_string(),
        RustType::Named(ident) => format!("{m}::{ident}"),
        RustType::Vec(item) => format!("Vec<{}>", rust_type(m, item)),
        RustType::Map(value) => {
            format!("std::collections::BTreeMap<String, {}>", rust_type(m, value))
        }
        RustType::Option(inner) => format!("Option<{}>", rust_type(m, inner)),
        RustType::Boxed(inner) => format!("Box<{}>", rust_type(m, inner)),
    }
}

/// The Rust client snippet: one function that uses the first item of each kind.
pub(super) fn rust(iface: &Interface, source_name: &str) -> Result<String, GenerateError> {
    let module = lower::lower(iface, source_name)?;
    let what = format!("interface `{}`", iface.name);
    let m = crate::names::snake(&iface.name, &what)?;
    let plain = crate::names::unraw(&m).to_string();
    let func = crate::names::prefixed_snake("use", &iface.name, &what)?;
    let service = &module.service;
    let client = &service.client_ident;
    let mut out = String::new();
    let _ = writeln!(out, "// The generated code, where your crate includes it:");
    let _ = writeln!(out, "// mod {m} {{ switchboard::include_interface!(\"{plain}\"); }}");
    let _ = writeln!(out, "use {m}::{client};");
    out.push('\n');
    let _ = writeln!(
        out,
        "/// Connects to the `{}` server at `endpoint` and uses one item of each kind.",
        iface.name
    );
    let _ = writeln!(out, "pub async fn {func}(");
    let _ = writeln!(out, "    endpoint: &switchboard::Endpoint,");
    let _ = writeln!(out, ") -> Result<(), Box<dyn std::error::Error>> {{");
    let _ = writeln!(out, "    let client = {client}::connect(endpoint).await?;");
    let values = RustValues::new(&module, &m, DateTimes::Parsed);
    let expr = |ty: &RustType| values.expr(ty);
    if let Some(method) = service.methods.first() {
        let args: Vec<String> = method.args.iter().map(|a| expr(&a.ty)).collect();
        let _ = writeln!(out, "\n    // Call a method.");
        let call = format!("client.{}({}).await?", method.fn_ident, arg_list(&args));
        if matches!(method.returns, Returns::Unit) {
            let _ = writeln!(out, "    {call};");
        } else {
            let _ = writeln!(out, "    let reply = {call};");
            let _ = writeln!(out, "    println!(\"{} -> {{reply:?}}\");", method.wire);
        }
    }
    if let Some(property) =
        service.properties.iter().find(|p| !p.read_only).or(service.properties.first())
    {
        let _ = writeln!(
            out,
            "\n    // Read and watch a property{}.",
            if property.read_only { "" } else { ", and update it" }
        );
        let _ = writeln!(out, "    let value = client.{}().await?;", property.get_fn);
        if property.read_only {
            let _ = writeln!(out, "    println!(\"{} = {{value:?}}\");", property.wire);
        } else {
            let _ = writeln!(out, "    client.{}(value).await?;", property.set_fn);
        }
        let _ = writeln!(out, "    let mut values = client.{}().await?;", property.watch_fn);
        let _ = writeln!(out, "    if let Some(value) = values.next().await {{");
        let _ = writeln!(out, "        println!(\"{} = {{:?}}\", value?);", property.wire);
        let _ = writeln!(out, "    }}");
    }
    if let Some(signal) = service.signals.first() {
        let _ = writeln!(out, "\n    // Receive a signal.");
        let _ = writeln!(out, "    let mut signals = client.{}().await?;", signal.subscribe_fn);
        let _ = writeln!(out, "    if let Some(signal) = signals.next().await {{");
        let _ = writeln!(out, "        println!(\"{}: {{:?}}\", signal?);", signal.wire);
        let _ = writeln!(out, "    }}");
    }
    if let Some(command) = service.commands.first() {
        let args: Vec<String> = command.args.iter().map(|a| expr(&a.ty)).collect();
        let _ = writeln!(out, "\n    // Send a command (never answered).");
        let _ = writeln!(out, "    client.{}({}).await?;", command.fn_ident, arg_list(&args));
    }
    if let Some(action) = service.actions.first() {
        let args: Vec<String> = action.goal.iter().map(|a| expr(&a.ty)).collect();
        let _ = writeln!(
            out,
            "\n    // Start a goal, read its feedback, cancel it and see how it ended."
        );
        let _ = writeln!(
            out,
            "    let mut goal = client.{}({}).await?;",
            action.fn_ident,
            arg_list(&args)
        );
        let _ = writeln!(out, "    if let Some(feedback) = goal.next_feedback().await {{");
        let _ = writeln!(out, "        println!(\"{} feedback: {{feedback:?}}\");", action.wire);
        let _ = writeln!(out, "    }}");
        let _ = writeln!(out, "    goal.cancel().await?;");
        let _ = writeln!(out, "    match goal.result().await {{");
        let _ = writeln!(
            out,
            "        Ok(result) => println!(\"{} result: {{result:?}}\"),",
            action.wire
        );
        let _ =
            writeln!(out, "        Err(error) => println!(\"{} ended: {{error}}\"),", action.wire);
        let _ = writeln!(out, "    }}");
    }
    let _ = writeln!(out, "\n    client.close();");
    let _ = writeln!(out, "    Ok(())");
    let _ = writeln!(out, "}}");
    Ok(out)
}

/// Arguments on one line, or one per line (indented for a call in the function body) when long.
fn arg_list(args: &[String]) -> String {
    let line = args.join(", ");
    if line.len() <= 60 {
        return line;
    }
    let mut out = String::from("\n");
    for arg in args {
        let _ = writeln!(out, "        {arg},");
    }
    out.push_str("    ");
    out
}

/// How a snippet writes a datetime value.
#[derive(Debug, Clone, Copy)]
enum DateTimes {
    /// The example datetime, parsed with `?` (the function returns a boxed error).
    Parsed,
    /// A constant (`switchboard::prelude` is in scope), where no `?` can be used.
    Fixed,
}

/// Rust example expressions of one snippet, bounded like the JSON examples: each at most
/// [`example::MAX_EXAMPLE_BYTES`], all together at most [`example::MAX_DOCUMENT_EXAMPLE_BYTES`].
/// One that would be larger is `todo!()`, which still compiles.
struct RustValues<'a> {
    /// The module's structs by identifier.
    structs: HashMap<&'a str, &'a Struct>,
    /// The first variant of each of the module's enums, by the enum's identifier.
    enums: HashMap<&'a str, &'a str>,
    m: &'a str,
    datetimes: DateTimes,
    spent: Cell<usize>,
}

impl<'a> RustValues<'a> {
    fn new(module: &'a Module, m: &'a str, datetimes: DateTimes) -> Self {
        let structs = module.structs.iter().map(|s| (s.ident.as_str(), s)).collect();
        let enums = module
            .enums
            .iter()
            .map(|e| (e.ident.as_str(), e.variants.first().map_or("", |v| v.ident.as_str())))
            .collect();
        Self { structs, enums, m, datetimes, spent: Cell::new(0) }
    }

    /// A Rust expression of type `ty`: the example values, or the empty value of collections.
    fn expr(&self, ty: &RustType) -> String {
        let left = example::MAX_DOCUMENT_EXAMPLE_BYTES.saturating_sub(self.spent.get());
        let budget = left.min(example::MAX_EXAMPLE_BYTES);
        let mut remaining = budget;
        match self.value(ty, &mut remaining, 0) {
            Some(expr) => {
                self.spent.set(self.spent.get() + (budget - remaining));
                expr
            }
            None => format!("todo!(\"{}\")", example::LEFT_OUT),
        }
    }

    /// The expression of `ty`, or `None` once it takes more than `left` bytes.
    fn value(&self, ty: &RustType, left: &mut usize, depth: usize) -> Option<String> {
        if depth > example::MAX_EXAMPLE_DEPTH {
            return None;
        }
        let m = self.m;
        let expr = match ty {
            RustType::Primitive("bool") => "true".to_string(),
            RustType::Primitive(p) if p.starts_with('f') => "1.5".to_string(),
            RustType::Primitive(_) => "42".to_string(),
            RustType::String => "\"example\".to_string()".to_string(),
            RustType::DateTime => match self.datetimes {
                DateTimes::Parsed => format!("\"{}\".parse()?", example::DATETIME),
                DateTimes::Fixed => "DateTime::UNIX_EPOCH".to_string(),
            },
            RustType::Duration => "switchboard::Duration::milliseconds(1500)".to_string(),
            RustType::Binary => "vec![0, 1, 2]".to_string(),
            RustType::Vec(_) => "Vec::new()".to_string(),
            RustType::Map(_) => "Default::default()".to_string(),
            RustType::Option(_) => "None".to_string(),
            RustType::Boxed(inner) => format!("Box::new({})", self.value(inner, left, depth + 1)?),
            RustType::Named(ident) => {
                if let Some(variant) = self.enums.get(ident.as_str()) {
                    format!("{m}::{ident}::{variant}")
                } else if let Some(def) = self.structs.get(ident.as_str()) {
                    let mut fields = Vec::with_capacity(def.fields.len());
                    for field in &def.fields {
                        *left = left.checked_sub(field.ident.len() + 2)?;
                        let value = self.value(&field.ty, left, depth + 1)?;
                        fields.push(format!("{}: {value}", field.ident));
                    }
                    if fields.is_empty() {
                        format!("{m}::{ident} {{}}")
                    } else {
                        format!("{m}::{ident} {{ {} }}", fields.join(", "))
                    }
                } else {
                    "Default::default()".to_string()
                }
            }
        };
        *left = left.checked_sub(expr.len())?;
        Some(expr)
    }
}

/// Python's keywords, which the Python target escapes with a trailing underscore.
const PY_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

fn py_snake(name: &str) -> String {
    let snake = name.to_snake_case();
    if PY_KEYWORDS.contains(&snake.as_str()) { format!("{snake}_") } else { snake }
}

/// A Python value of `ty`, or `None` when the snippet should not build one (structs).
fn py_value(iface: &Interface, package: &str, ty: &Type, imports: &mut bool) -> Option<String> {
    Some(match ty {
        Type::Integer { .. } => "42".to_string(),
        Type::Float { .. } => "1.5".to_string(),
        Type::Boolean => "True".to_string(),
        Type::String => "\"example\"".to_string(),
        Type::DateTime => {
            *imports = true;
            "dt.datetime(2030, 1, 1, 12, tzinfo=dt.timezone.utc)".to_string()
        }
        Type::Duration => {
            *imports = true;
            "dt.timedelta(seconds=1.5)".to_string()
        }
        Type::Binary => "b\"\\x00\\x01\\x02\"".to_string(),
        Type::Enum { name } => {
            let value = iface.enum_def(name)?.values.first()?.value;
            format!("{package}.{}({value})", name.to_upper_camel_case())
        }
        Type::Struct { .. } => return None,
        Type::Array { .. } => "[]".to_string(),
        Type::Map { .. } => "{}".to_string(),
        Type::Optional { .. } => "None".to_string(),
    })
}

fn py_args(
    iface: &Interface,
    package: &str,
    fields: &[Field],
    imports: &mut bool,
) -> Option<String> {
    let values: Option<Vec<String>> =
        fields.iter().map(|f| py_value(iface, package, &f.ty, imports)).collect();
    values.map(|v| v.join(", "))
}

/// The Python snippet, with the blocking client.
pub(super) fn python(iface: &Interface) -> String {
    let package =
        crate::python::names::package(&iface.name).unwrap_or_else(|_| py_snake(&iface.name));
    let client = format!("{}BlockingClient", iface.name.to_upper_camel_case());
    let mut imports = false;
    let mut body = String::new();
    if let Some((method, args)) = iface
        .methods
        .iter()
        .find_map(|m| py_args(iface, &package, &m.arguments, &mut imports).map(|a| (m, a)))
    {
        let _ = writeln!(
            body,
            "    print(\"{} ->\", client.{}({args}))",
            method.name,
            py_snake(&method.name)
        );
    }
    if let Some(property) = iface.properties.first() {
        let get = format!("get_{}", property.name.to_snake_case());
        let _ = writeln!(body, "    value = client.{get}()");
        let _ = writeln!(body, "    print(\"{} =\", value)", property.name);
        if !property.read_only {
            let _ = writeln!(body, "    client.set_{}(value)", property.name.to_snake_case());
        }
    }
    if let Some(signal) = iface.signals.first() {
        let _ = writeln!(
            body,
            "    signals = client.subscribe_{}()\n    print(\"{}:\", signals.next(timeout=10))",
            signal.name.to_snake_case(),
            signal.name
        );
    }
    if let Some((command, args)) = iface
        .commands
        .iter()
        .find_map(|c| py_args(iface, &package, &c.arguments, &mut imports).map(|a| (c, a)))
    {
        let _ = writeln!(body, "    client.{}({args})", py_snake(&command.name));
    }
    if body.is_empty() {
        body.push_str("    pass\n");
    }
    let mut out = String::new();
    if imports {
        out.push_str("import datetime as dt\n\n");
    }
    let _ = writeln!(out, "import {package}");
    let _ = writeln!(out, "from {package} import {client}");
    out.push('\n');
    let _ = writeln!(out, "with {client}.connect(\"unix:\") as client:");
    out.push_str(&body);
    out
}
