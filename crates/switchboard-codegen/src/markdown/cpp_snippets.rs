//! The C++ usage snippets of the Markdown reference: a client that uses one item of each kind,
//! and a server whose handler overrides every generated function.
//!
//! They are written against the C++ target's own view model (`cpp::lower`), so every name and
//! type in them is the one the generated header has; `tests/it/cpp.rs` compiles the snippets of
//! the example interfaces against their generated headers with g++ and clang++.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use switchboard_idl::{Field, Interface, Type};

use crate::GenerateError;
use crate::asyncapi::example;
use crate::cpp::{self, Library, Shape};

/// The client snippet: one function that connects and uses the first item of each kind.
pub(super) fn client(iface: &Interface, source_name: &str) -> Result<String, GenerateError> {
    let library = cpp::lower(iface, source_name)?;
    let values = CppValues::new(iface, &library)?;
    let ns = &library.namespace;
    let mut out = String::new();
    let _ = writeln!(out, "#include <exception>");
    let _ = writeln!(out, "#include <iostream>");
    let _ = writeln!(out, "#include <string>");
    out.push('\n');
    let _ = writeln!(out, "#include <{ns}/{ns}.hpp>");
    out.push('\n');
    let _ = writeln!(
        out,
        "/// Connects to the `{}` server at `where` and uses one item of each kind; throws what\n\
         /// a call throws.",
        iface.name
    );
    let _ = writeln!(out, "void use_{ns}(const std::string& where) {{");
    let _ = writeln!(out, "    auto client = {ns}::{}Client::connect(where);", library.base);
    if let (Some(method), Some(def)) = (library.methods.first(), iface.methods.first()) {
        let args = values.args(&def.arguments);
        let _ = writeln!(out, "\n    // Call a method.");
        let call = format!("client.{}({}).get()", method.name, arg_list(&args));
        if method.returns.ty == "void" {
            let _ = writeln!(out, "    {call};");
        } else {
            let _ = writeln!(out, "    const auto reply = {call};");
            let _ = writeln!(
                out,
                "    std::cout << \"{} -> \" << switchboard::encode(reply).dump() << '\\n';",
                method.wire
            );
        }
    }
    if let Some(property) =
        library.properties.iter().find(|p| !p.read_only).or(library.properties.first())
    {
        let _ = writeln!(
            out,
            "\n    // Read and watch a property{}.",
            if property.read_only { "" } else { ", and update it" }
        );
        let _ = writeln!(out, "    const auto value = client.{}().get();", property.get);
        if property.read_only {
            let _ = writeln!(
                out,
                "    std::cout << \"{} = \" << switchboard::encode(value).dump() << '\\n';",
                property.wire
            );
        } else {
            let _ = writeln!(out, "    client.{}(value).get();", property.set);
        }
        let _ = writeln!(
            out,
            "    // Watchers are called on the client's thread until `values` is destroyed."
        );
        let _ = writeln!(
            out,
            "    auto values = client.{}([](const {}& value, std::uint64_t version) {{",
            property.watch,
            values.qualify(&property.value.ty)
        );
        let _ = writeln!(
            out,
            "        std::cout << \"{} = \" << switchboard::encode(value).dump() << \" (version \" \
             << version << \")\\n\";",
            property.wire
        );
        let _ = writeln!(out, "    }});");
    }
    if let Some(signal) = library.signals.first() {
        let _ = writeln!(out, "\n    // Receive a signal, until `signals` is destroyed.");
        let _ = writeln!(
            out,
            "    auto signals = client.{}([](const {ns}::{}& signal) {{",
            signal.subscribe, signal.class
        );
        let _ = writeln!(
            out,
            "        std::cout << \"{}: \" << switchboard::encode(signal).dump() << '\\n';",
            signal.wire
        );
        let _ = writeln!(out, "    }});");
    }
    if let (Some(command), Some(def)) = (library.commands.first(), iface.commands.first()) {
        let args = values.args(&def.arguments);
        let _ = writeln!(out, "\n    // Send a command (never answered).");
        let _ = writeln!(out, "    client.{}({});", command.name, arg_list(&args));
    }
    if let (Some(action), Some(def)) = (library.actions.first(), iface.actions.first()) {
        let mut args = values.args(&def.goal);
        args.push(format!("[](const {ns}::{}& feedback) {{", action.feedback_class));
        let _ = writeln!(
            out,
            "\n    // Start a goal, follow its feedback, cancel it and see how it ended."
        );
        let _ = writeln!(out, "    auto goal = client.{}({}", action.name, args.join(", "));
        let _ = writeln!(
            out,
            "        std::cout << \"{} feedback: \" << switchboard::encode(feedback).dump() << \
             '\\n';",
            action.wire
        );
        let _ = writeln!(out, "    }}).get();");
        let _ = writeln!(out, "    goal.cancel().get();");
        let _ = writeln!(out, "    try {{");
        if action.result.ty == "void" {
            let _ = writeln!(out, "        goal.result().get();");
            let _ = writeln!(out, "        std::cout << \"{} succeeded\\n\";", action.wire);
        } else {
            let _ = writeln!(
                out,
                "        std::cout << \"{} result: \" << \
                 switchboard::encode(goal.result().get()).dump() << '\\n';",
                action.wire
            );
        }
        let _ = writeln!(out, "    }} catch (const std::exception& error) {{");
        let _ = writeln!(
            out,
            "        std::cout << \"{} ended: \" << error.what() << '\\n';",
            action.wire
        );
        let _ = writeln!(out, "    }}");
    }
    let _ = writeln!(out, "}}");
    Ok(out)
}

/// The server snippet: the handler implemented with example results, and a function that
/// serves it and emits a signal.
pub(super) fn server(iface: &Interface, source_name: &str) -> Result<String, GenerateError> {
    let library = cpp::lower(iface, source_name)?;
    let values = CppValues::new(iface, &library)?;
    let ns = &library.namespace;
    let base = &library.base;
    let handler = format!("My{base}");
    let mut out = String::new();
    let _ = writeln!(out, "#include <memory>");
    let _ = writeln!(out, "#include <string>");
    out.push('\n');
    let _ = writeln!(out, "#include <{ns}/{ns}.hpp>");
    out.push('\n');
    let _ = writeln!(
        out,
        "/// Answers `{}` calls; every function the handler requires, with example results.",
        iface.name
    );
    let _ = writeln!(out, "class {handler} final : public {ns}::{base}Handler {{");
    let _ = writeln!(out, "public:");
    let mut functions = Vec::new();
    for (method, def) in library.methods.iter().zip(&iface.methods) {
        let mut params = vec!["const switchboard::CallContext& /*context*/".to_string()];
        params.extend(method.params.iter().map(|p| values.unused_param(&p.ty, &p.name)));
        let signature = signature(&values.qualify(&method.returns.ty), &method.name, &params);
        functions.push(match values.returned(&method.returns, &def.returns) {
            Some(value) => format!("{signature}\n        return {value};\n    }}\n"),
            None => format!("{signature}}}\n"),
        });
    }
    for command in &library.commands {
        let mut params = vec!["const switchboard::CallContext& /*context*/".to_string()];
        params.extend(command.params.iter().map(|p| values.unused_param(&p.ty, &p.name)));
        functions.push(format!("{}}}\n", signature("void", &command.name, &params)));
    }
    for (action, def) in library.actions.iter().zip(&iface.actions) {
        let mut params =
            vec![format!("switchboard::GoalContext<{ns}::{}>& goal", action.feedback_class)];
        params.extend(action.params.iter().map(|p| values.unused_param(&p.ty, &p.name)));
        let signature = signature(&values.qualify(&action.result.ty), &action.name, &params);
        let progress = values.object(&action.feedback_class, &def.feedback);
        let mut body = format!("        goal.feedback({progress});\n");
        if let Some(value) = values.returned(&action.result, &def.result) {
            let _ = writeln!(body, "        return {value};");
        }
        functions.push(format!("{signature}\n{body}    }}\n"));
    }
    out.push_str(&functions.join("\n"));
    let _ = writeln!(out, "}};");
    out.push('\n');
    let _ = writeln!(
        out,
        "/// Serves `{}` at `where` (a socket path, `unix:///path` or `mqtt://host?instance=…`)\n\
         /// and emits one signal.",
        iface.name
    );
    let _ = writeln!(out, "{ns}::{base}Server serve_{ns}(const std::string& where) {{");
    if library.properties.is_empty() {
        let _ = writeln!(out, "    {ns}::{base}Properties properties{{}};");
    } else {
        let _ = writeln!(out, "    {ns}::{base}Properties properties{{");
        for (property, def) in library.properties.iter().zip(&iface.properties) {
            let value = match def.fields.as_slice() {
                [one] => values.expr(&one.ty),
                fields => values.object(&property.value.ty, fields),
            };
            let _ = writeln!(out, "        .{} = {value},", property.name);
        }
        let _ = writeln!(out, "    }};");
    }
    let _ = writeln!(
        out,
        "    auto server = {ns}::{base}Server::serve(std::make_shared<{handler}>(), properties, \
         where);"
    );
    if let (Some(signal), Some(def)) = (library.signals.first(), iface.signals.first()) {
        let args = values.args(&def.fields);
        let _ = writeln!(out, "    server.{}({});", signal.emit, arg_list(&args));
    }
    let _ = writeln!(out, "    return server;");
    let _ = writeln!(out, "}}");
    Ok(out)
}

/// A handler function's first line(s), up to and including `{`, wrapped at 100 columns.
fn signature(returns: &str, name: &str, params: &[String]) -> String {
    let line = format!("    {returns} {name}({}) override {{", params.join(", "));
    if line.len() <= 100 {
        return line;
    }
    let mut out = format!("    {returns} {name}(");
    for (i, param) in params.iter().enumerate() {
        let end = if i + 1 == params.len() { ") override {" } else { "," };
        let _ = write!(out, "\n            {param}{end}");
    }
    out
}

/// Arguments on one line, or one per line (indented for a call in a function body) when long.
fn arg_list(args: &[String]) -> String {
    let line = args.join(", ");
    if line.len() <= 60 {
        return line;
    }
    let mut out = String::from("\n");
    for (i, arg) in args.iter().enumerate() {
        let comma = if i + 1 == args.len() { "" } else { "," };
        let _ = writeln!(out, "        {arg}{comma}");
    }
    out.push_str("    ");
    out
}

/// C++ example expressions of one snippet, bounded like the JSON examples: each at most
/// [`example::MAX_EXAMPLE_BYTES`], all together at most [`example::MAX_DOCUMENT_EXAMPLE_BYTES`].
/// One that would be larger is the type's empty value, `{}`, with a comment saying so.
struct CppValues<'a> {
    iface: &'a Interface,
    ns: &'a str,
    /// The C++ name of each structure, by its name in the interface file.
    structs: HashMap<&'a str, String>,
    /// The C++ name and first enumerator of each enum, by its name in the interface file.
    enums: HashMap<&'a str, (String, &'a str)>,
    /// The member names of every structure the header declares, by its C++ name.
    members: HashMap<&'a str, Vec<&'a str>>,
    /// Every type name the header declares, which the snippets qualify with the namespace.
    generated: HashSet<&'a str>,
    spent: Cell<usize>,
}

impl<'a> CppValues<'a> {
    fn new(iface: &'a Interface, library: &'a Library) -> Result<Self, GenerateError> {
        let members = library
            .structs
            .iter()
            .map(|s| (s.name.as_str(), s.fields.iter().map(|f| f.name.as_str()).collect()))
            .collect();
        let mut structs = HashMap::new();
        for def in &iface.structs {
            let name = cpp::names::pascal(&def.name, "", &format!("struct `{}`", def.name))?;
            structs.insert(def.name.as_str(), name);
        }
        let first_values: HashMap<&str, &str> = library
            .enums
            .iter()
            .map(|e| (e.name.as_str(), e.values.first().map_or("", |v| v.name.as_str())))
            .collect();
        let mut enums = HashMap::new();
        for def in &iface.enums {
            let name = cpp::names::pascal(&def.name, "", &format!("enum `{}`", def.name))?;
            let first = first_values.get(name.as_str()).copied().unwrap_or_default();
            enums.insert(def.name.as_str(), (name, first));
        }
        let generated = library
            .structs
            .iter()
            .map(|s| s.name.as_str())
            .chain(library.enums.iter().map(|e| e.name.as_str()))
            .chain(library.errors.iter().map(|e| e.name.as_str()))
            .collect();
        Ok(Self {
            iface,
            ns: &library.namespace,
            structs,
            enums,
            members,
            generated,
            spent: Cell::new(0),
        })
    }

    /// `ty` (a C++ type as the header spells it, inside its namespace) as a user writes it
    /// outside: every type the header declares qualified with the namespace.
    fn qualify(&self, ty: &str) -> String {
        let mut out = String::with_capacity(ty.len());
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            if self.generated.contains(word.as_str()) && !out.ends_with("::") {
                out.push_str(self.ns);
                out.push_str("::");
            }
            out.push_str(word);
            word.clear();
        };
        for c in ty.chars() {
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
            } else {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
        flush(&mut word, &mut out);
        out
    }

    /// A handler parameter the example does not use: its name commented out.
    fn unused_param(&self, ty: &str, name: &str) -> String {
        format!("{} /*{name}*/", self.qualify(ty))
    }

    /// Example arguments for `fields`.
    fn args(&self, fields: &[Field]) -> Vec<String> {
        fields.iter().map(|f| self.expr(&f.ty)).collect()
    }

    /// What a handler returns for a reply or result of this shape and these values, or `None`
    /// for `void`.
    fn returned(&self, shape: &Shape, fields: &[Field]) -> Option<String> {
        match fields {
            [] => None,
            [one] => Some(self.expr(&one.ty)),
            fields => Some(self.object(&shape.ty, fields)),
        }
    }

    /// A value of the generated structure `class` (its name in the header) holding `fields`.
    fn object(&self, class: &str, fields: &[Field]) -> String {
        let types: Vec<&Type> = fields.iter().map(|f| &f.ty).collect();
        let mut left = self.budget();
        match self.initializer(class, &types, &mut left, 0) {
            Some(expr) => self.spend(left, expr),
            None => format!("{}::{class}{{}} /* {} */", self.ns, example::LEFT_OUT),
        }
    }

    /// A C++ expression of type `ty`: the example values, or the empty value of collections.
    fn expr(&self, ty: &Type) -> String {
        let mut left = self.budget();
        match self.value(ty, &mut left, 0) {
            Some(expr) => self.spend(left, expr),
            None => format!("{{}} /* {} */", example::LEFT_OUT),
        }
    }

    /// The bytes one more example may take.
    fn budget(&self) -> usize {
        example::MAX_DOCUMENT_EXAMPLE_BYTES
            .saturating_sub(self.spent.get())
            .min(example::MAX_EXAMPLE_BYTES)
    }

    /// Counts what an example took out of its budget (`left` is what remains), and returns it.
    fn spend(&self, left: usize, expr: String) -> String {
        self.spent.set(self.spent.get() + (self.budget() - left));
        expr
    }

    /// The expression of `ty`, or `None` once it takes more than `left` bytes.
    fn value(&self, ty: &Type, left: &mut usize, depth: usize) -> Option<String> {
        if depth > example::MAX_EXAMPLE_DEPTH {
            return None;
        }
        let expr = match ty {
            Type::Integer { .. } => example::INTEGER.to_string(),
            Type::Float { .. } => format!("{:?}", example::FLOAT),
            Type::Boolean => "true".to_string(),
            Type::String => format!("\"{}\"", example::STRING),
            Type::DateTime => {
                format!("switchboard::parse_datetime(\"{}\").value()", example::DATETIME)
            }
            Type::Duration => "std::chrono::milliseconds(1500)".to_string(),
            Type::Binary => {
                "switchboard::Bytes{std::byte{0}, std::byte{1}, std::byte{2}}".to_string()
            }
            Type::Array { .. } | Type::Map { .. } => "{}".to_string(),
            Type::Optional { .. } => "std::nullopt".to_string(),
            Type::Enum { name } => {
                let (ident, first) = self.enums.get(name.as_str())?;
                format!("{}::{ident}::{first}", self.ns)
            }
            Type::Struct { name } => {
                let def = self.iface.struct_def(name)?;
                let class = self.structs.get(name.as_str())?;
                let types: Vec<&Type> = def.fields.iter().map(|f| &f.ty).collect();
                self.initializer(class, &types, left, depth)?
            }
        };
        *left = left.checked_sub(expr.len())?;
        Some(expr)
    }

    /// `ns::Class{.member = value, …}` for the generated structure `class` whose members have
    /// `types`, with designated initializers in declaration order.
    fn initializer(
        &self,
        class: &str,
        types: &[&Type],
        left: &mut usize,
        depth: usize,
    ) -> Option<String> {
        let names = self.members.get(class)?;
        let mut members = Vec::with_capacity(names.len());
        for (name, ty) in names.iter().zip(types) {
            *left = left.checked_sub(name.len() + 5)?;
            let value = self.value(ty, left, depth + 1)?;
            members.push(format!(".{name} = {value}"));
        }
        Some(format!("{}::{class}{{{}}}", self.ns, members.join(", ")))
    }
}
