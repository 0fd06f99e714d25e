//! Turns the Rust view model into tokens; every name and type was decided during lowering.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::model::{
    Action, Command, Const, ConstValue, Enum, ErrorEnum, Field, Method, Module, Property,
    PropertyShape, Returns, Service, Signal, Struct,
};
use super::prelude::{self, ident};

/// Clippy's default limit on function parameters, `self` included.
const MAX_PARAMS: usize = 7;

/// Renders every item of `module`, in the order they appear in the file.
pub(crate) fn module(module: &Module) -> TokenStream {
    let consts = module.consts.iter().map(constant);
    let enums = module.enums.iter().map(enumeration);
    let structs = module.structs.iter().map(data_struct);
    let error_enums = module.error_enums.iter().map(error_enum);
    let service = &module.service;
    let descriptor = descriptor(service);
    let handler_trait = handler_trait(service);
    let properties = properties_struct(service);
    let server = server(service);
    let client = client(service);
    let dispatcher = dispatcher(service);
    let wire_structs = module.wire_structs.iter().map(data_struct);
    let items = quote! {
        #(#consts)*
        #(#enums)*
        #(#structs)*
        #(#error_enums)*
        #handler_trait
        #properties
        #server
        #client
        #dispatcher
        #(#wire_structs)*
        #descriptor
    };
    let items = prelude::resolve(items, &module.prelude_aliases);
    quote! {
        use switchboard::__private as sb;
        #items
    }
}

/// Doc attributes, one per line.
fn doc_attrs(lines: &[String]) -> TokenStream {
    let lines =
        lines.iter().map(|line| if line.is_empty() { String::new() } else { format!(" {line}") });
    quote!(#(#[doc = #lines])*)
}

/// A single generated doc line.
fn doc_attr(line: String) -> TokenStream {
    doc_attrs(&[line])
}

/// A generated sentence followed by the file's documentation, if any.
fn doc_attrs_with(first: String, rest: &[String]) -> TokenStream {
    let mut lines = vec![first];
    if !rest.is_empty() {
        lines.push(String::new());
        lines.extend_from_slice(rest);
    }
    doc_attrs(&lines)
}

/// An `i64` literal that also works for negative values and `i64::MIN`.
fn int_lit(value: i64) -> TokenStream {
    if value == i64::MIN {
        quote!(i64::MIN)
    } else if value < 0 {
        let lit = Literal::i64_unsuffixed(-value);
        quote!(-#lit)
    } else {
        let lit = Literal::i64_unsuffixed(value);
        quote!(#lit)
    }
}

/// An `f64` literal, with the named constants for values that have no literal.
fn float_lit(value: f64) -> TokenStream {
    if value.is_nan() {
        quote!(f64::NAN)
    } else if value.is_infinite() {
        if value > 0.0 { quote!(f64::INFINITY) } else { quote!(f64::NEG_INFINITY) }
    } else if value.is_sign_negative() {
        let lit = Literal::f64_unsuffixed(-value);
        quote!(-#lit)
    } else {
        let lit = Literal::f64_unsuffixed(value);
        quote!(#lit)
    }
}

/// `std::borrow::Cow::Borrowed("text")`.
fn cow(text: &str) -> TokenStream {
    quote!(std::borrow::Cow::Borrowed(#text))
}

/// A raw string literal with as few `#`s as `text` allows.
fn raw_string(text: &str) -> Literal {
    let mut hashes = 1;
    while text.contains(&format!("\"{}", "#".repeat(hashes))) {
        hashes += 1;
    }
    let hashes = "#".repeat(hashes);
    format!("r{hashes}\"{text}\"{hashes}").parse().unwrap_or_else(|_| Literal::string(text))
}

/// The widest line of JSON [`json_lines`] makes, leaving room for indentation and quotes.
const JSON_LINE: usize = 80;

/// Splits JSON text into lines of at most [`JSON_LINE`] bytes, each ending after a `,` (or else
/// a space) where one is near, so the description reads as a column of short strings instead of
/// one long line.
fn json_lines(json: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = json;
    while rest.len() > JSON_LINE {
        let mut end = JSON_LINE;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let near = |c: char| rest[..end].rfind(c).filter(|&at| at >= JSON_LINE / 2);
        let end = near(',').or_else(|| near(' ')).map_or(end, |at| at + 1);
        lines.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    lines.push(rest.to_string());
    lines
}

/// `#[allow(clippy::too_many_arguments)]` when a function takes more than Clippy likes.
fn allow_many(params: usize) -> TokenStream {
    if params > MAX_PARAMS { quote!(#[allow(clippy::too_many_arguments)]) } else { quote!() }
}

/// `#[allow(clippy::wrong_self_convention)]` for `from_…`/`into_…` names that take `&self`.
fn allow_convention(name: &str) -> TokenStream {
    let name = name.strip_prefix("r#").unwrap_or(name);
    if name.starts_with("from_") || name.starts_with("into_") {
        quote!(#[allow(clippy::wrong_self_convention)])
    } else {
        quote!()
    }
}

/// Renders a `pub const`.
fn constant(c: &Const) -> TokenStream {
    let docs = doc_attrs(&c.doc);
    let name = ident(&c.ident);
    let (ty, value) = match &c.value {
        ConstValue::Integer(v) => (quote!(i64), int_lit(*v)),
        ConstValue::Float(v) => (quote!(f64), float_lit(*v)),
        ConstValue::String(v) => (quote!(&str), quote!(#v)),
        ConstValue::Boolean(v) => (quote!(bool), quote!(#v)),
    };
    quote! {
        #docs
        pub const #name: #ty = #value;
    }
}

/// Renders an enum with its integer conversions and serde impls.
fn enumeration(e: &Enum) -> TokenStream {
    let docs = doc_attrs(&e.doc);
    let name = ident(&e.ident);
    let allow =
        if e.allow_variant_names { quote!(#[allow(clippy::enum_variant_names)]) } else { quote!() };
    let variants = e.variants.iter().map(|v| {
        let docs = doc_attrs(&v.doc);
        let variant = ident(&v.ident);
        let value = int_lit(v.value);
        quote!(#docs #variant = #value,)
    });
    let arms = e.variants.iter().map(|v| {
        let variant = ident(&v.ident);
        let value = int_lit(v.value);
        quote!(#value => Some(Self::#variant),)
    });
    let (repr, to_value, from_value) = if e.variants.is_empty() {
        (quote!(), quote!(match self {}), quote!(let _ = value; None))
    } else {
        (quote!(#[repr(i64)]), quote!(self as i64), quote!(match value { #(#arms)* _ => None }))
    };
    let message = format!(
        "{{value}} is not a value of enum {}",
        e.wire.replace('{', "{{").replace('}', "}}")
    );
    quote! {
        #docs
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #allow
        #repr
        pub enum #name {
            #(#variants)*
        }

        impl #name {
            /// Returns the integer that stands for this value on the wire.
            pub const fn value(self) -> i64 {
                #to_value
            }

            /// Returns the value that `value` stands for on the wire, or `None` if there is none.
            pub const fn from_value(value: i64) -> Option<Self> {
                #from_value
            }
        }

        impl sb::serde::Serialize for #name {
            fn serialize<S>(&self, serializer: S) -> Result<S::Ok, S::Error>
            where
                S: sb::serde::Serializer,
            {
                serializer.serialize_i64(self.value())
            }
        }

        impl<'de> sb::serde::Deserialize<'de> for #name {
            fn deserialize<D>(deserializer: D) -> Result<Self, D::Error>
            where
                D: sb::serde::Deserializer<'de>,
            {
                let value = <i64 as sb::serde::Deserialize<'de>>::deserialize(deserializer)?;
                Self::from_value(value).ok_or_else(|| {
                    <D::Error as sb::serde::de::Error>::custom(format!(#message))
                })
            }
        }
    }
}

/// Renders a serde struct, public or private.
fn data_struct(s: &Struct) -> TokenStream {
    let docs = doc_attrs(&s.doc);
    let name = ident(&s.ident);
    let vis = if s.public { quote!(pub) } else { quote!() };
    let fields = s.fields.iter().map(|f| {
        let docs = doc_attrs(&f.doc);
        let field = ident(&f.ident);
        let ty = f.ty.tokens();
        let mut serde = Vec::new();
        if f.ident.strip_prefix("r#").unwrap_or(&f.ident) != f.wire {
            let wire = &f.wire;
            serde.push(quote!(rename = #wire));
        }
        if f.ty.is_option() {
            serde.push(quote!(default));
        }
        if let Some(adapter) = f.ty.adapter() {
            let with = format!("sb::As::<{adapter}>");
            serde.push(quote!(with = #with));
        }
        let serde = if serde.is_empty() { quote!() } else { quote!(#[serde(#(#serde),*)]) };
        quote!(#docs #serde #vis #field: #ty,)
    });
    let (default, builders) = if s.public { builders(s) } else { (quote!(), quote!()) };
    quote! {
        #docs
        #[derive(Debug, Clone, PartialEq, #default sb::serde::Serialize, sb::serde::Deserialize)]
        #[serde(crate = "sb::serde")]
        #vis struct #name {
            #(#fields)*
        }

        #builders
    }
}

/// How users build a public struct with optional fields: `Default` (returned as a derive) when
/// every field is optional, `new` with the required fields otherwise, and one `with_…` setter per
/// optional field. A struct without optional fields is built with a struct literal.
fn builders(s: &Struct) -> (TokenStream, TokenStream) {
    let optional: Vec<&Field> = s.fields.iter().filter(|f| f.ty.is_option()).collect();
    let derive_default = if optional.len() == s.fields.len() { quote!(Default,) } else { quote!() };
    if optional.is_empty() {
        return (derive_default, quote!());
    }
    let new = if optional.len() == s.fields.len() {
        quote!()
    } else {
        let required: Vec<Field> = s.fields.iter().filter(|f| !f.ty.is_option()).cloned().collect();
        let allow = allow_many(required.len());
        let params = params(&required);
        let values = s.fields.iter().map(|f| {
            let field = ident(&f.ident);
            if f.ty.is_option() { quote!(#field: None) } else { quote!(#field) }
        });
        let docs = doc_attr(format!(
            "Creates `{}` from its required values; the optional ones start as `None`.",
            s.ident
        ));
        quote! {
            #docs
            #allow
            pub fn new(#(#params),*) -> Self {
                Self { #(#values),* }
            }
        }
    };
    let setters = optional.iter().filter_map(|f| {
        let setter = ident(f.setter.as_deref()?);
        let inner = f.ty.option_inner()?.tokens();
        let field = ident(&f.ident);
        let docs = doc_attr(format!("Returns this value with `{}` set.", f.wire));
        Some(quote! {
            #docs
            pub fn #setter(mut self, #field: #inner) -> Self {
                self.#field = Some(#field);
                self
            }
        })
    });
    let name = ident(&s.ident);
    (
        derive_default,
        quote! {
            impl #name {
                #new
                #(#setters)*
            }
        },
    )
}

/// Renders the `INTERFACE` descriptor.
fn descriptor(service: &Service) -> TokenStream {
    let name = cow(&service.wire);
    let version = cow(&service.version);
    let title = cow(&service.title);
    let topic_params = service.topic_params.iter().map(|p| cow(p));
    let topic_templates = service.topic_templates.iter().map(|(key, template)| {
        let (key, template) = (cow(key), cow(template));
        quote!((#key, #template))
    });
    let hash = cow(&service.hash);
    let description = json_lines(&service.description_json).into_iter().map(|l| raw_string(&l));
    let methods = service.methods.iter().map(|m| {
        let name = cow(&m.wire);
        let timeout = match m.timeout_ms {
            Some(ms) => {
                let ms = Literal::u64_unsuffixed(ms);
                quote!(Some(std::time::Duration::from_millis(#ms)))
            }
            None => quote!(None),
        };
        quote!(sb::MethodDescriptor { name: #name, timeout: #timeout })
    });
    let signals = service.signals.iter().map(|s| cow(&s.wire));
    let properties = service.properties.iter().map(|p| {
        let name = cow(&p.wire);
        let read_only = p.read_only;
        quote!(sb::PropertyDescriptor { name: #name, read_only: #read_only })
    });
    let docs = doc_attr(format!(
        "Describes the `{}` interface to the runtime: its names, version and description hash.",
        service.wire
    ));
    quote! {
        #docs
        pub const INTERFACE: sb::InterfaceDescriptor = sb::InterfaceDescriptor {
            name: #name,
            version: #version,
            title: #title,
            hash: #hash,
            description: std::borrow::Cow::Borrowed(concat!(#(#description),*)),
            methods: std::borrow::Cow::Borrowed(&[#(#methods),*]),
            signals: std::borrow::Cow::Borrowed(&[#(#signals),*]),
            properties: std::borrow::Cow::Borrowed(&[#(#properties),*]),
            topic_params: std::borrow::Cow::Borrowed(&[#(#topic_params),*]),
            topic_templates: std::borrow::Cow::Borrowed(&[#(#topic_templates),*]),
        };
    }
}

/// `name: Type` parameters for `fields`.
fn params(fields: &[Field]) -> Vec<TokenStream> {
    fields
        .iter()
        .map(|f| {
            let name = ident(&f.ident);
            let ty = f.ty.tokens();
            quote!(#name: #ty)
        })
        .collect()
}

/// A struct literal that moves same-named locals into `fields`.
fn struct_literal(name: &str, fields: &[Field]) -> TokenStream {
    let name = ident(name);
    let fields = fields.iter().map(|f| ident(&f.ident));
    quote!(#name { #(#fields),* })
}

/// What a method's handler and client function return on success.
fn return_type(method: &Method) -> TokenStream {
    returns_type(&method.returns)
}

/// The Rust type of a reply or result.
fn returns_type(returns: &Returns) -> TokenStream {
    match returns {
        Returns::Unit => quote!(()),
        Returns::Single { field, .. } => field.ty.tokens(),
        Returns::Struct { ident: name } => {
            let name = ident(name);
            quote!(#name)
        }
    }
}

/// The declared-error type of a method or action: its enum, or `Infallible` when it has none.
fn error_type(errors: &Option<String>) -> TokenStream {
    match errors {
        Some(name) => {
            let name = ident(name);
            quote!(#name)
        }
        None => quote!(std::convert::Infallible),
    }
}

/// Renders the enum of one method's or action's declared errors and its conversions.
fn error_enum(e: &ErrorEnum) -> TokenStream {
    let docs = doc_attrs(&e.doc);
    let name = ident(&e.ident);
    let variants = e.variants.iter().map(|v| {
        let docs = doc_attr(format!("The `{}` error.", v.wire));
        let variant = ident(&v.ident);
        quote!(#docs #variant(#variant),)
    });
    let name_arms = e.variants.iter().map(|v| {
        let variant = ident(&v.ident);
        let wire = &v.wire;
        quote!(Self::#variant(_) => #wire,)
    });
    let message_arms = e.variants.iter().map(|v| {
        let variant = ident(&v.ident);
        let message = &v.message;
        quote!(Self::#variant(_) => #message,)
    });
    let into_arms = e.variants.iter().map(|v| {
        let variant = ident(&v.ident);
        quote!(Self::#variant(fields) => sb::declared_error(name, message, &fields),)
    });
    let from_arms = e.variants.iter().map(|v| {
        let variant = ident(&v.ident);
        let wire = &v.wire;
        quote!(#wire => sb::declared_details(error).map(Self::#variant),)
    });
    let froms = e.variants.iter().map(|v| {
        let variant = ident(&v.ident);
        quote! {
            impl From<#variant> for #name {
                fn from(error: #variant) -> Self {
                    Self::#variant(error)
                }
            }
        }
    });
    let (name_body, message_body, into_body, from_body) = if e.variants.is_empty() {
        (
            quote!(match *self {}),
            quote!(match *self {}),
            quote!(match self {}),
            quote!({
                let _ = error;
                None
            }),
        )
    } else {
        (
            quote!(match self { #(#name_arms)* }),
            quote!(match self { #(#message_arms)* }),
            quote! {
                let (name, message) = (self.name(), self.message());
                match self { #(#into_arms)* }
            },
            quote!(match error.name() { #(#from_arms)* _ => None }),
        )
    };
    quote! {
        #docs
        #[derive(Debug, Clone, PartialEq)]
        pub enum #name {
            #(#variants)*
        }

        impl #name {
            /// The error's name on the wire.
            pub fn name(&self) -> &'static str {
                #name_body
            }

            /// The human-readable message sent with the error.
            pub fn message(&self) -> &'static str {
                #message_body
            }
        }

        impl std::fmt::Display for #name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}: {}", self.name(), self.message())
            }
        }

        impl std::error::Error for #name {}

        impl switchboard::error::DeclaredError for #name {
            fn into_remote(self) -> switchboard::error::RemoteError {
                #into_body
            }

            fn from_remote(error: &switchboard::error::RemoteError) -> Option<Self> {
                #from_body
            }
        }

        impl From<#name> for switchboard::error::RemoteError {
            fn from(error: #name) -> Self {
                switchboard::error::DeclaredError::into_remote(error)
            }
        }

        #(#froms)*
    }
}

/// Renders the handler trait.
fn handler_trait(service: &Service) -> TokenStream {
    let docs = doc_attrs(&service.doc);
    let name = ident(&service.trait_ident);
    let methods = service.methods.iter().map(|m| {
        let docs = if m.doc.is_empty() {
            doc_attr(format!("Handles a call to `{}`.", m.wire))
        } else {
            doc_attrs(&m.doc)
        };
        let allow = allow_many(m.args.len() + 2);
        let convention = allow_convention(&m.fn_ident);
        let fn_name = ident(&m.fn_ident);
        let params = params(&m.args);
        let output = return_type(m);
        let error = match &m.errors {
            Some(_) => {
                let error = error_type(&m.errors);
                quote!(switchboard::error::HandlerError<#error>)
            }
            None => quote!(switchboard::error::RemoteError),
        };
        quote! {
            #docs
            #allow
            #convention
            fn #fn_name(&self, ctx: &switchboard::server::CallContext, #(#params),*)
                -> impl std::future::Future<Output = Result<#output, #error>> + Send;
        }
    });
    let commands = service.commands.iter().map(|c| {
        let docs = doc_attrs_with(
            format!(
                "Handles the `{}` command. Nobody is answered; an error is only logged.",
                c.wire
            ),
            &c.doc,
        );
        let allow = allow_many(c.args.len() + 2);
        let convention = allow_convention(&c.fn_ident);
        let fn_name = ident(&c.fn_ident);
        let params = params(&c.args);
        quote! {
            #docs
            #allow
            #convention
            fn #fn_name(&self, ctx: &switchboard::server::CallContext, #(#params),*)
                -> impl std::future::Future<Output = Result<(), switchboard::error::RemoteError>> + Send;
        }
    });
    let actions = service.actions.iter().map(|a| {
        let docs = doc_attrs_with(
            format!(
                "Runs a goal of the `{}` action: send progress with `goal.feedback(…)`, watch \
                 `goal.cancelled()`, and end a cancelled goal with `Err(HandlerError::Cancelled)`.",
                a.wire
            ),
            &a.doc,
        );
        let allow = allow_many(a.goal.len() + 2);
        let convention = allow_convention(&a.fn_ident);
        let fn_name = ident(&a.fn_ident);
        let params = params(&a.goal);
        let output = returns_type(&a.result);
        let error = error_type(&a.errors);
        let feedback = ident(&a.feedback_struct);
        let goal_struct = ident(&a.goal_struct);
        let accept_fn = ident(&a.accept_fn);
        let accept_docs = doc_attr(format!(
            "Decides whether to accept a goal of `{}`; return an error to reject it. Accepts by default.",
            a.wire
        ));
        quote! {
            #docs
            #allow
            #convention
            fn #fn_name(&self, goal: switchboard::action::GoalContext<#feedback>, #(#params),*)
                -> impl std::future::Future<Output = Result<#output, switchboard::error::HandlerError<#error>>> + Send;

            #accept_docs
            fn #accept_fn(&self, ctx: &switchboard::server::CallContext, goal: &#goal_struct)
                -> impl std::future::Future<Output = Result<(), switchboard::error::HandlerError<#error>>> + Send {
                let _ = (ctx, goal);
                async { Ok(()) }
            }
        }
    });
    let updates = service.properties.iter().filter(|p| !p.read_only).map(|p| {
        let docs = doc_attr(format!(
            "Called when a client asks to change `{}`; return an error to refuse it. Accepts by default.",
            p.wire
        ));
        let fn_name = ident(&p.update_fn);
        let value = update_param(p);
        let ty = p.shape.value_type().tokens();
        quote! {
            #docs
            fn #fn_name(&self, ctx: &switchboard::server::CallContext, #value: &#ty)
                -> impl std::future::Future<Output = Result<(), switchboard::error::RemoteError>> + Send {
                let _ = (ctx, #value);
                async { Ok(()) }
            }
        }
    });
    quote! {
        #docs
        pub trait #name: Send + Sync + 'static {
            #(#methods)*
            #(#commands)*
            #(#actions)*
            #(#updates)*
        }
    }
}

/// The parameter name of a property's update hook: the field's name, or `value`.
fn update_param(p: &Property) -> proc_macro2::Ident {
    match &p.shape {
        PropertyShape::Single { field, .. } => ident(&field.ident),
        PropertyShape::Struct { .. } => ident("value"),
    }
}

/// Renders the initial-values struct, when the interface has properties.
fn properties_struct(service: &Service) -> TokenStream {
    let Some(initial) = &service.initial_values else { return quote!() };
    let docs = doc_attrs(&initial.doc);
    let name = ident(&initial.ident);
    let fields = initial.fields.iter().map(|f| {
        let docs = doc_attrs(&f.doc);
        let field = ident(&f.ident);
        let ty = f.ty.tokens();
        quote!(#docs pub #field: #ty,)
    });
    let (default, builders) = builders(initial);
    quote! {
        #docs
        #[derive(Debug, Clone, PartialEq, #default)]
        pub struct #name {
            #(#fields)*
        }

        #builders
    }
}

/// Encodes `value` (an expression of the property's API type) as its wire struct.
fn wire_value(p: &Property, value: TokenStream) -> TokenStream {
    match &p.shape {
        PropertyShape::Single { wire_struct, field } => {
            let wire = ident(wire_struct);
            let field = ident(&field.ident);
            quote!(&#wire { #field: #value })
        }
        PropertyShape::Struct { .. } => quote!(&#value),
    }
}

/// The parameters that carry a new value of `p`, and the wire struct built from them.
fn setter_parts(p: &Property) -> (TokenStream, TokenStream) {
    match &p.shape {
        PropertyShape::Single { wire_struct, field } => {
            let params = params(std::slice::from_ref(field));
            (quote!(#(#params),*), struct_literal(wire_struct, std::slice::from_ref(field)))
        }
        PropertyShape::Struct { ident: name } => {
            let name = ident(name);
            (quote!(value: #name), quote!(value))
        }
    }
}

/// Renders the server handle.
fn server(service: &Service) -> TokenStream {
    let name = ident(&service.server_ident);
    let handler_trait = ident(&service.trait_ident);
    let dispatcher = ident(&service.service_ident);
    let initial = service.properties.iter().map(|p| {
        let wire = &p.wire;
        let field = ident(&p.initial_field);
        let value = wire_value(p, quote!(properties.#field));
        quote!((#wire, sb::encode_property(#value)))
    });
    // Without properties, `serve` takes none and the server starts with an empty list.
    let (properties_param, properties_arg, initial, serve_docs) = match &service.initial_values {
        Some(values) => {
            let values = ident(&values.ident);
            (
                quote!(properties: #values,),
                quote!(properties,),
                quote!(Vec::from([#(#initial),*])),
                format!(
                    "Starts serving `{}` at `endpoint`, answering calls with `handler` and \
                     starting from `properties`.",
                    service.wire
                ),
            )
        }
        None => (
            quote!(),
            quote!(),
            quote!(Vec::new()),
            format!(
                "Starts serving `{}` at `endpoint`, answering calls with `handler`.",
                service.wire
            ),
        ),
    };
    let serve_docs = doc_attr(serve_docs);
    let emitters = service.signals.iter().map(emitter);
    let properties_fns = service.properties.iter().map(|p| {
        let wire = &p.wire;
        let set_docs = doc_attrs_with(
            format!("Changes the `{}` property and notifies every client watching it.", p.wire),
            &p.doc,
        );
        let value_docs =
            doc_attr(format!("Returns the current value of the `{}` property.", p.wire));
        let set_fn = ident(&p.set_fn);
        let value_fn = ident(&p.value_fn);
        let (params, value) = setter_parts(p);
        let ty = p.shape.value_type().tokens();
        let value_body = match &p.shape {
            PropertyShape::Single { wire_struct, field } => {
                let wire_struct = ident(wire_struct);
                let field = ident(&field.ident);
                quote!(self.core.property::<#wire_struct>(#wire).#field)
            }
            PropertyShape::Struct { ident: name } => {
                let name = ident(name);
                quote!(self.core.property::<#name>(#wire))
            }
        };
        quote! {
            #set_docs
            pub async fn #set_fn(&self, #params) -> Result<(), switchboard::error::TransportError> {
                self.core.set_property(#wire, &#value).await
            }

            #value_docs
            pub fn #value_fn(&self) -> #ty {
                #value_body
            }
        }
    });
    let struct_docs = doc_attrs(&[
        format!("A running `{}` server.", service.wire),
        String::new(),
        "Clones are handles to the same server.".to_string(),
    ]);
    let serve_with_docs = doc_attr(format!(
        "Like `serve`, with `options` for actions (goal limits, retention, disconnect grace) for `{}`.",
        service.wire
    ));
    quote! {
        #struct_docs
        #[derive(Debug, Clone)]
        pub struct #name {
            core: sb::ServerCore,
        }

        impl #name {
            #serve_docs
            pub async fn serve<T: #handler_trait>(
                endpoint: &switchboard::Endpoint,
                handler: T,
                #properties_param
            ) -> Result<Self, switchboard::error::TransportError> {
                let options = switchboard::server::ServerOptions::default();
                Self::serve_with(endpoint, handler, #properties_arg options).await
            }

            #serve_with_docs
            pub async fn serve_with<T: #handler_trait>(
                endpoint: &switchboard::Endpoint,
                handler: T,
                #properties_param
                options: switchboard::server::ServerOptions,
            ) -> Result<Self, switchboard::error::TransportError> {
                let initial = #initial;
                let service = #dispatcher(std::sync::Arc::new(handler));
                let core = sb::ServerCore::start_with(
                    endpoint,
                    &INTERFACE,
                    std::sync::Arc::new(service),
                    initial,
                    options,
                )
                .await?;
                Ok(Self { core })
            }

            #(#emitters)*

            #(#properties_fns)*

            /// Stops serving and disconnects every client.
            pub async fn shutdown(&self) {
                self.core.shutdown().await
            }
        }
    }
}

/// Renders a server's `emit_…` function.
fn emitter(s: &Signal) -> TokenStream {
    let docs = doc_attrs_with(
        format!("Emits the `{}` signal to every subscribed client.", s.wire),
        &s.doc,
    );
    let allow = allow_many(s.fields.len() + 1);
    let fn_name = ident(&s.emit_fn);
    let params = params(&s.fields);
    let wire = &s.wire;
    let payload = struct_literal(&s.payload, &s.fields);
    let to_docs = doc_attrs_with(
        format!(
            "Emits the `{}` signal to one connected client only; it arrives through that \
             client's ordinary subscription. Fails when the client is not connected.",
            s.wire
        ),
        &s.doc,
    );
    let to_allow = allow_many(s.fields.len() + 2);
    let to_name = ident(&s.emit_to_fn);
    let peer = ident(&s.peer_param);
    quote! {
        #docs
        #allow
        pub async fn #fn_name(&self, #(#params),*) -> Result<(), switchboard::error::TransportError> {
            self.core.emit(#wire, &#payload).await
        }

        #to_docs
        #to_allow
        pub async fn #to_name(&self, #peer: switchboard::server::PeerId, #(#params),*) -> Result<(), switchboard::error::TransportError> {
            self.core.emit_to(#peer, #wire, &#payload).await
        }
    }
}

/// Renders the client.
fn client(service: &Service) -> TokenStream {
    let name = ident(&service.client_ident);
    let methods = service.methods.iter().map(client_method);
    let commands = service.commands.iter().map(client_command);
    let actions = service.actions.iter().map(client_action);
    let subscribers = service.signals.iter().map(|s| {
        let docs = doc_attrs_with(format!("Subscribes to the `{}` signal.", s.wire), &s.doc);
        let fn_name = ident(&s.subscribe_fn);
        let payload = ident(&s.payload);
        let wire = &s.wire;
        quote! {
            #docs
            pub async fn #fn_name(&self) -> Result<switchboard::client::SignalStream<#payload>, switchboard::error::CallError> {
                self.core.subscribe(#wire).await
            }
        }
    });
    let properties = service.properties.iter().map(|p| {
        let wire = &p.wire;
        let ty = p.shape.value_type().tokens();
        let get_fn = ident(&p.get_fn);
        let watch_fn = ident(&p.watch_fn);
        let get_docs =
            doc_attrs_with(format!("Reads the `{}` property from the server.", p.wire), &p.doc);
        let watch_docs = doc_attr(format!(
            "Watches the `{}` property: the current value first, then every change.",
            p.wire
        ));
        let (get_body, extract) = match &p.shape {
            PropertyShape::Single { wire_struct, field } => {
                let wire_struct = ident(wire_struct);
                let field = ident(&field.ident);
                (
                    quote! {
                        let value: #wire_struct = self.core.get_property(#wire).await?;
                        Ok(value.#field)
                    },
                    quote!(|value: #wire_struct| value.#field),
                )
            }
            PropertyShape::Struct { ident: name } => {
                let name = ident(name);
                (quote!(self.core.get_property(#wire).await), quote!(|value: #name| value))
            }
        };
        let setter = if p.read_only {
            quote!()
        } else {
            let set_docs =
                doc_attr(format!("Asks the server to change the `{}` property.", p.wire));
            let set_fn = ident(&p.set_fn);
            let (params, value) = setter_parts(p);
            quote! {
                #set_docs
                pub async fn #set_fn(&self, #params) -> Result<(), switchboard::error::CallError> {
                    self.core.set_property(#wire, &#value).await
                }
            }
        };
        quote! {
            #get_docs
            pub async fn #get_fn(&self) -> Result<#ty, switchboard::error::CallError> {
                #get_body
            }

            #setter

            #watch_docs
            pub async fn #watch_fn(&self) -> Result<switchboard::client::PropertyWatch<#ty>, switchboard::error::CallError> {
                self.core.watch_property(#wire, #extract).await
            }
        }
    });
    let struct_docs = doc_attrs(&[
        format!("A client of the `{}` interface.", service.wire),
        String::new(),
        "Clones share the same connection.".to_string(),
    ]);
    let connect_docs = doc_attr(format!(
        "Connects to the `{}` server at `endpoint` with default options.",
        service.wire
    ));
    let connect_with_docs = doc_attr(format!(
        "Connects to the `{}` server at `endpoint` with `options`.",
        service.wire
    ));
    quote! {
        #struct_docs
        #[derive(Debug, Clone)]
        pub struct #name {
            core: sb::ClientCore,
        }

        impl #name {
            #connect_docs
            pub async fn connect(endpoint: &switchboard::Endpoint) -> Result<Self, switchboard::error::TransportError> {
                Self::connect_with(endpoint, switchboard::client::ClientOptions::default()).await
            }

            #connect_with_docs
            pub async fn connect_with(
                endpoint: &switchboard::Endpoint,
                options: switchboard::client::ClientOptions,
            ) -> Result<Self, switchboard::error::TransportError> {
                Ok(Self { core: sb::ClientCore::connect(endpoint, &INTERFACE, options).await? })
            }

            #(#methods)*

            #(#commands)*

            #(#actions)*

            #(#subscribers)*

            #(#properties)*

            /// Closes the connection; calls made afterwards fail.
            pub fn close(&self) {
                self.core.close()
            }
        }
    }
}

/// Renders one client method.
fn client_method(m: &Method) -> TokenStream {
    let docs =
        if m.doc.is_empty() { doc_attr(format!("Calls `{}`.", m.wire)) } else { doc_attrs(&m.doc) };
    let allow = allow_many(m.args.len() + 1);
    let convention = allow_convention(&m.fn_ident);
    let fn_name = ident(&m.fn_ident);
    let params = params(&m.args);
    let output = return_type(m);
    let wire = &m.wire;
    let args = struct_literal(&m.args_struct, &m.args);
    let body = match &m.returns {
        Returns::Unit => quote! {
            self.core.call::<_, sb::Empty>(#wire, &#args).await?;
            Ok(())
        },
        Returns::Single { wire_struct, field } => {
            let wire_struct = ident(wire_struct);
            let field = ident(&field.ident);
            quote! {
                let reply: #wire_struct = self.core.call(#wire, &#args).await?;
                Ok(reply.#field)
            }
        }
        Returns::Struct { .. } if m.errors.is_some() => {
            quote!(Ok(self.core.call(#wire, &#args).await?))
        }
        Returns::Struct { .. } => quote!(self.core.call(#wire, &#args).await),
    };
    let error = match &m.errors {
        Some(_) => {
            let error = error_type(&m.errors);
            quote!(switchboard::error::MethodError<#error>)
        }
        None => quote!(switchboard::error::CallError),
    };
    quote! {
        #docs
        #allow
        #convention
        pub async fn #fn_name(&self, #(#params),*) -> Result<#output, #error> {
            #body
        }
    }
}

/// Renders one client command.
fn client_command(c: &Command) -> TokenStream {
    let docs = doc_attrs_with(
        format!(
            "Sends the `{}` command; returns once it is sent, as the server never answers.",
            c.wire
        ),
        &c.doc,
    );
    let allow = allow_many(c.args.len() + 1);
    let convention = allow_convention(&c.fn_ident);
    let fn_name = ident(&c.fn_ident);
    let params = params(&c.args);
    let wire = &c.wire;
    let args = struct_literal(&c.args_struct, &c.args);
    quote! {
        #docs
        #allow
        #convention
        pub async fn #fn_name(&self, #(#params),*) -> Result<(), switchboard::error::CallError> {
            self.core.command(#wire, &#args).await
        }
    }
}

/// The function that turns an action's decoded result object into what its handle returns.
fn result_map(returns: &Returns) -> TokenStream {
    match returns {
        Returns::Unit => quote!(|_: sb::Empty| ()),
        Returns::Single { wire_struct, field } => {
            let wire_struct = ident(wire_struct);
            let field = ident(&field.ident);
            quote!(|reply: #wire_struct| reply.#field)
        }
        Returns::Struct { ident: name } => {
            let name = ident(name);
            quote!(|reply: #name| reply)
        }
    }
}

/// Renders one client action: the goal sender and the re-attacher.
fn client_action(a: &Action) -> TokenStream {
    let docs = doc_attrs_with(
        format!(
            "Sends a goal of the `{}` action; returns its handle once the server accepted it.",
            a.wire
        ),
        &a.doc,
    );
    let attach_docs = doc_attr(format!(
        "Follows a goal of `{}` by its id, e.g. one sent before a restart or from another client.",
        a.wire
    ));
    let allow = allow_many(a.goal.len() + 1);
    let convention = allow_convention(&a.fn_ident);
    let fn_name = ident(&a.fn_ident);
    let attach_fn = ident(&a.attach_fn);
    let params = params(&a.goal);
    let wire = &a.wire;
    let goal = struct_literal(&a.goal_struct, &a.goal);
    let feedback = ident(&a.feedback_struct);
    let output = returns_type(&a.result);
    let error = error_type(&a.errors);
    let map = result_map(&a.result);
    quote! {
        #docs
        #allow
        #convention
        pub async fn #fn_name(&self, #(#params),*)
            -> Result<switchboard::action::GoalHandle<#feedback, #output, #error>, switchboard::error::MethodError<#error>> {
            self.core.send_goal(#wire, &#goal, #map).await
        }

        #attach_docs
        pub async fn #attach_fn(&self, goal: switchboard::action::GoalId)
            -> Result<switchboard::action::GoalHandle<#feedback, #output, #error>, switchboard::error::MethodError<#error>> {
            self.core.attach_goal(#wire, goal, #map).await
        }
    }
}

/// Renders the private dispatcher that implements `sb::Service`.
fn dispatcher(service: &Service) -> TokenStream {
    let name = ident(&service.service_ident);
    let handler_trait = ident(&service.trait_ident);
    let call_arms: Vec<TokenStream> = service.methods.iter().map(call_arm).collect();
    let update_arms: Vec<TokenStream> =
        service.properties.iter().filter(|p| !p.read_only).map(update_arm).collect();
    let command_arms: Vec<TokenStream> = service.commands.iter().map(command_arm).collect();
    let goal_arms: Vec<TokenStream> = service.actions.iter().map(goal_arm).collect();
    let call = route(&call_arms, quote!(method), quote!(sb::unknown_method(method)));
    let update = route(&update_arms, quote!(property), quote!(sb::unknown_property(property)));
    let command = route(&command_arms, quote!(command), quote!(sb::unknown_command(command)));
    let start_goal = route(&goal_arms, quote!(action), quote!(sb::unknown_action(action)));
    // With nothing to route, the handler is only kept alive, which `dead_code` reports.
    let allow_unused = if call_arms.is_empty()
        && update_arms.is_empty()
        && command_arms.is_empty()
        && goal_arms.is_empty()
    {
        quote!(#[allow(dead_code)])
    } else {
        quote!()
    };
    let (call_payload, call_ctx) = unused_if(call_arms.is_empty());
    let (update_payload, update_ctx) = unused_if(update_arms.is_empty());
    let (command_payload, command_ctx) = unused_if(command_arms.is_empty());
    let (goal_payload, goal_raw) = if goal_arms.is_empty() {
        (ident("_payload"), ident("_goal"))
    } else {
        (ident("payload"), ident("goal"))
    };
    let command_fn = if command_arms.is_empty() {
        quote!()
    } else {
        quote! {
            fn command(
                &self,
                command: &str,
                #command_payload: sb::Bytes,
                #command_ctx: switchboard::server::CallContext,
            ) -> sb::BoxFuture<'static, Result<(), switchboard::error::RemoteError>> {
                #command
            }
        }
    };
    let goal_fn = if goal_arms.is_empty() {
        quote!()
    } else {
        quote! {
            fn start_goal(
                &self,
                action: &str,
                #goal_payload: sb::Bytes,
                #goal_raw: sb::RawGoal,
            ) -> sb::BoxFuture<'static, Result<sb::GoalRun, switchboard::error::RemoteError>> {
                #start_goal
            }
        }
    };
    let docs = doc_attr(format!(
        "Routes incoming calls and property updates to a `{}`.",
        service.trait_ident
    ));
    quote! {
        #docs
        struct #name<T>(#allow_unused std::sync::Arc<T>);

        impl<T: #handler_trait> sb::Service for #name<T> {
            fn call(
                &self,
                method: &str,
                #call_payload: sb::Bytes,
                #call_ctx: switchboard::server::CallContext,
            ) -> sb::BoxFuture<'static, Result<sb::Bytes, switchboard::error::RemoteError>> {
                #call
            }

            fn update_property(
                &self,
                property: &str,
                #update_payload: sb::Bytes,
                #update_ctx: switchboard::server::CallContext,
            ) -> sb::BoxFuture<'static, Result<sb::Bytes, switchboard::error::RemoteError>> {
                #update
            }

            #command_fn

            #goal_fn
        }
    }
}

/// The `payload` and `ctx` parameter names, underscored when nothing reads them.
fn unused_if(unused: bool) -> (proc_macro2::Ident, proc_macro2::Ident) {
    if unused { (ident("_payload"), ident("_ctx")) } else { (ident("payload"), ident("ctx")) }
}

/// A `match` over `arms` with `fallback` for anything else, or just `fallback` when there are none.
fn route(arms: &[TokenStream], scrutinee: TokenStream, fallback: TokenStream) -> TokenStream {
    if arms.is_empty() {
        return fallback;
    }
    quote! {
        let handler = std::sync::Arc::clone(&self.0);
        match #scrutinee {
            #(#arms)*
            _ => #fallback,
        }
    }
}

/// One arm of the `call` match.
fn call_arm(m: &Method) -> TokenStream {
    let wire = &m.wire;
    let args_struct = ident(&m.args_struct);
    let fn_name = ident(&m.fn_ident);
    let (decode, args) = if m.args.is_empty() {
        (quote!(let #args_struct {} = sb::decode_args(#wire, &payload)?;), Vec::new())
    } else {
        let args = m.args.iter().map(|a| {
            let a = ident(&a.ident);
            quote!(args.#a)
        });
        (quote!(let args: #args_struct = sb::decode_args(#wire, &payload)?;), args.collect())
    };
    let call = match &m.errors {
        Some(_) => {
            quote!(T::#fn_name(&handler, &ctx, #(#args),*).await.map_err(switchboard::error::HandlerError::into_remote)?)
        }
        None => quote!(T::#fn_name(&handler, &ctx, #(#args),*).await?),
    };
    let reply = match &m.returns {
        Returns::Unit => quote! {
            #call;
            sb::encode_reply(&sb::Empty {})
        },
        Returns::Single { wire_struct, field } => {
            let wire_struct = ident(wire_struct);
            let field = ident(&field.ident);
            quote! {
                let reply = #call;
                sb::encode_reply(&#wire_struct { #field: reply })
            }
        }
        Returns::Struct { .. } => quote! {
            let reply = #call;
            sb::encode_reply(&reply)
        },
    };
    quote! {
        #wire => Box::pin(async move {
            #decode
            #reply
        }),
    }
}

/// Decodes `fields` from `payload` as `strukt` and returns the statement and the field
/// expressions to pass on.
fn decode_fields(wire: &str, strukt: &str, fields: &[Field]) -> (TokenStream, Vec<TokenStream>) {
    let strukt = ident(strukt);
    if fields.is_empty() {
        return (quote!(let #strukt {} = sb::decode_args(#wire, &payload)?;), Vec::new());
    }
    let args = fields.iter().map(|a| {
        let a = ident(&a.ident);
        quote!(args.#a)
    });
    (quote!(let args: #strukt = sb::decode_args(#wire, &payload)?;), args.collect())
}

/// One arm of the `command` match.
fn command_arm(c: &Command) -> TokenStream {
    let wire = &c.wire;
    let fn_name = ident(&c.fn_ident);
    let (decode, args) = decode_fields(wire, &c.args_struct, &c.args);
    quote! {
        #wire => Box::pin(async move {
            #decode
            T::#fn_name(&handler, &ctx, #(#args),*).await
        }),
    }
}

/// One arm of the `start_goal` match: decode, ask the acceptance hook, return the run.
fn goal_arm(a: &Action) -> TokenStream {
    let wire = &a.wire;
    let fn_name = ident(&a.fn_ident);
    let accept_fn = ident(&a.accept_fn);
    let goal_struct = ident(&a.goal_struct);
    let args = a.goal.iter().map(|f| {
        let f = ident(&f.ident);
        quote!(args.#f)
    });
    let finish = match &a.result {
        Returns::Unit => quote!(.map(|()| sb::Empty {})),
        Returns::Single { wire_struct, field } => {
            let wire_struct = ident(wire_struct);
            let field = ident(&field.ident);
            quote!(.map(|#field| #wire_struct { #field }))
        }
        Returns::Struct { .. } => quote!(),
    };
    quote! {
        #wire => Box::pin(async move {
            let args: #goal_struct = sb::decode_args(#wire, &payload)?;
            handler
                .#accept_fn(goal.client(), &args)
                .await
                .map_err(switchboard::error::HandlerError::into_remote)?;
            let goal = switchboard::action::GoalContext::new(goal);
            Ok(sb::goal_run(async move {
                T::#fn_name(&handler, goal, #(#args),*).await #finish
            }))
        }),
    }
}

/// One arm of the `update_property` match.
fn update_arm(p: &Property) -> TokenStream {
    let wire = &p.wire;
    let fn_name = ident(&p.update_fn);
    let body = match &p.shape {
        PropertyShape::Single { wire_struct, field } => {
            let wire_struct = ident(wire_struct);
            let field = ident(&field.ident);
            quote! {
                let wire: #wire_struct = sb::decode_args(#wire, &payload)?;
                T::#fn_name(&handler, &ctx, &wire.#field).await?;
                sb::encode_reply(&wire)
            }
        }
        PropertyShape::Struct { ident: name } => {
            let name = ident(name);
            quote! {
                let value: #name = sb::decode_args(#wire, &payload)?;
                T::#fn_name(&handler, &ctx, &value).await?;
                sb::encode_reply(&value)
            }
        }
    };
    quote! {
        #wire => Box::pin(async move {
            #body
        }),
    }
}
