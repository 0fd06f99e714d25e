//! The Rust view model: the interface restated with every Rust name, type and doc line decided.
//!
//! Lowering fills these structs in; rendering only turns them into tokens and makes no choices.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::prelude::Alias;

/// Everything one generated file contains.
#[derive(Debug)]
pub(crate) struct Module {
    /// The `//` provenance line at the top of the file.
    pub(crate) header: String,
    /// `pub const` items from the interface's constants.
    pub(crate) consts: Vec<Const>,
    /// Enumerations.
    pub(crate) enums: Vec<Enum>,
    /// Public data structures: user structs, errors, signal payloads, property and reply structs.
    pub(crate) structs: Vec<Struct>,
    /// Private wire structs: method arguments, single-value replies and single-field properties.
    pub(crate) wire_structs: Vec<Struct>,
    /// The typed error enums of methods and actions that declare errors.
    pub(crate) error_enums: Vec<ErrorEnum>,
    /// The trait, dispatcher, server and client.
    pub(crate) service: Service,
    /// The prelude items whose names the interface takes, with the aliases the module uses.
    pub(crate) prelude_aliases: Vec<Alias>,
}

/// A `pub const`.
#[derive(Debug)]
pub(crate) struct Const {
    /// The constant's identifier.
    pub(crate) ident: String,
    /// Doc lines.
    pub(crate) doc: Vec<String>,
    /// The type and value.
    pub(crate) value: ConstValue,
}

/// The value of a [`Const`].
#[derive(Debug)]
pub(crate) enum ConstValue {
    /// An `i64`.
    Integer(i64),
    /// An `f64`.
    Float(f64),
    /// A `&str`.
    String(String),
    /// A `bool`.
    Boolean(bool),
}

/// An enumeration carried as its integer value.
#[derive(Debug)]
pub(crate) struct Enum {
    /// The type's identifier.
    pub(crate) ident: String,
    /// The enum's name in the interface file, for error messages.
    pub(crate) wire: String,
    /// Doc lines.
    pub(crate) doc: Vec<String>,
    /// The variants in file order.
    pub(crate) variants: Vec<Variant>,
    /// True when Clippy's `enum_variant_names` might fire on these names.
    pub(crate) allow_variant_names: bool,
}

/// One enum variant.
#[derive(Debug)]
pub(crate) struct Variant {
    /// The variant's identifier.
    pub(crate) ident: String,
    /// Doc lines.
    pub(crate) doc: Vec<String>,
    /// The wire integer.
    pub(crate) value: i64,
}

/// The errors one method or action declares, as an enum of the per-error structs.
#[derive(Debug)]
pub(crate) struct ErrorEnum {
    /// The enum's identifier, e.g. `LookupError`.
    pub(crate) ident: String,
    /// Doc lines.
    pub(crate) doc: Vec<String>,
    /// One variant per declared error.
    pub(crate) variants: Vec<ErrorVariant>,
}

/// One declared error inside an [`ErrorEnum`].
#[derive(Debug)]
pub(crate) struct ErrorVariant {
    /// The variant's identifier, which is also the error struct's.
    pub(crate) ident: String,
    /// The error's name on the wire.
    pub(crate) wire: String,
    /// The human-readable message sent with it.
    pub(crate) message: String,
}

/// A serde struct sent as a JSON object.
#[derive(Debug)]
pub(crate) struct Struct {
    /// The type's identifier.
    pub(crate) ident: String,
    /// Doc lines.
    pub(crate) doc: Vec<String>,
    /// Public structs have public fields; private wire structs have private ones.
    pub(crate) public: bool,
    /// The fields in order.
    pub(crate) fields: Vec<Field>,
}

/// A struct field, function parameter or both.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// The Rust identifier.
    pub(crate) ident: String,
    /// The JSON key.
    pub(crate) wire: String,
    /// Doc lines.
    pub(crate) doc: Vec<String>,
    /// The Rust type.
    pub(crate) ty: RustType,
    /// The `with_…` setter of an optional field of a public struct.
    pub(crate) setter: Option<String>,
}

/// A Rust type, which also knows its serde adapter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RustType {
    /// A primitive such as `i64`, `f32` or `bool`.
    Primitive(&'static str),
    /// `String`.
    String,
    /// `switchboard::DateTime`, ISO 8601 on the wire.
    DateTime,
    /// `switchboard::Duration`, ISO 8601 on the wire.
    Duration,
    /// `Vec<u8>`, base64 on the wire.
    Binary,
    /// A generated enum or struct.
    Named(String),
    /// `Vec<T>`.
    Vec(Box<RustType>),
    /// `std::collections::BTreeMap<String, T>`.
    Map(Box<RustType>),
    /// `Option<T>`.
    Option(Box<RustType>),
    /// `Box<T>`, breaking a cycle of structs that contain each other.
    Boxed(Box<RustType>),
}

impl RustType {
    /// The type as tokens.
    pub(crate) fn tokens(&self) -> TokenStream {
        match self {
            RustType::Primitive(name) => {
                let ident = format_ident!("{name}");
                quote!(#ident)
            }
            RustType::String => quote!(String),
            RustType::DateTime => quote!(switchboard::DateTime),
            RustType::Duration => quote!(switchboard::Duration),
            RustType::Binary => quote!(Vec<u8>),
            RustType::Named(name) => {
                let ident = super::prelude::ident(name);
                quote!(#ident)
            }
            RustType::Vec(item) => {
                let item = item.tokens();
                quote!(Vec<#item>)
            }
            RustType::Map(value) => {
                let value = value.tokens();
                quote!(std::collections::BTreeMap<String, #value>)
            }
            RustType::Option(inner) => {
                let inner = inner.tokens();
                quote!(Option<#inner>)
            }
            RustType::Boxed(inner) => {
                let inner = inner.tokens();
                quote!(Box<#inner>)
            }
        }
    }

    /// The `serde_with` adapter type, or `None` when plain serde handles the type.
    pub(crate) fn adapter(&self) -> Option<String> {
        if !self.needs_adapter() {
            return None;
        }
        Some(self.adapter_text())
    }

    /// True when some part of the type needs a `serde_with` adapter.
    fn needs_adapter(&self) -> bool {
        match self {
            RustType::DateTime | RustType::Duration | RustType::Binary => true,
            RustType::Vec(inner)
            | RustType::Map(inner)
            | RustType::Option(inner)
            | RustType::Boxed(inner) => inner.needs_adapter(),
            RustType::Primitive(_) | RustType::String | RustType::Named(_) => false,
        }
    }

    /// The adapter spelled out, with `sb::Same` for parts that need nothing special.
    fn adapter_text(&self) -> String {
        match self {
            RustType::DateTime => "sb::IsoDateTime".to_string(),
            RustType::Duration => "sb::IsoDuration".to_string(),
            RustType::Binary => "sb::Base64".to_string(),
            RustType::Vec(item) => format!("Vec<{}>", item.adapter_text()),
            RustType::Map(value) => {
                format!("std::collections::BTreeMap<sb::Same, {}>", value.adapter_text())
            }
            RustType::Option(inner) => format!("Option<{}>", inner.adapter_text()),
            RustType::Boxed(inner) => format!("Box<{}>", inner.adapter_text()),
            RustType::Primitive(_) | RustType::String | RustType::Named(_) => {
                "sb::Same".to_string()
            }
        }
    }

    /// True for `Option<T>`, which also accepts an absent key.
    pub(crate) fn is_option(&self) -> bool {
        matches!(self, RustType::Option(_))
    }

    /// `T` for `Option<T>`.
    pub(crate) fn option_inner(&self) -> Option<&RustType> {
        match self {
            RustType::Option(inner) => Some(inner),
            _ => None,
        }
    }
}

/// The interface's behaviour: what the trait, dispatcher, server and client are built from.
#[derive(Debug)]
pub(crate) struct Service {
    /// The interface name as written.
    pub(crate) wire: String,
    /// The interface version.
    pub(crate) version: String,
    /// The interface title, falling back to its name.
    pub(crate) title: String,
    /// Extra topic parameters, from `configuration.topics.params`.
    pub(crate) topic_params: Vec<String>,
    /// Topic template overrides, from `configuration.topics`.
    pub(crate) topic_templates: Vec<(String, String)>,
    /// The full `sha256:…` description hash.
    pub(crate) hash: String,
    /// The canonical description JSON.
    pub(crate) description_json: String,
    /// Doc lines for the trait.
    pub(crate) doc: Vec<String>,
    /// The handler trait, e.g. `Thermostat`.
    pub(crate) trait_ident: String,
    /// The private dispatcher, e.g. `ThermostatService`.
    pub(crate) service_ident: String,
    /// The struct of initial property values, e.g. `ThermostatProperties`, whose fields are the
    /// properties' `initial_field`s; `None` when the interface has no properties.
    pub(crate) initial_values: Option<Struct>,
    /// The server handle, e.g. `ThermostatServer`.
    pub(crate) server_ident: String,
    /// The client, e.g. `ThermostatClient`.
    pub(crate) client_ident: String,
    /// Methods in file order.
    pub(crate) methods: Vec<Method>,
    /// Signals in file order.
    pub(crate) signals: Vec<Signal>,
    /// Properties in file order.
    pub(crate) properties: Vec<Property>,
    /// Commands in file order.
    pub(crate) commands: Vec<Command>,
    /// Actions in file order.
    pub(crate) actions: Vec<Action>,
}

/// One method.
#[derive(Debug)]
pub(crate) struct Method {
    /// The wire name.
    pub(crate) wire: String,
    /// The function name on the trait and on the client.
    pub(crate) fn_ident: String,
    /// Doc lines.
    pub(crate) doc: Vec<String>,
    /// The arguments, which are also the fields of the arguments struct.
    pub(crate) args: Vec<Field>,
    /// The private arguments struct.
    pub(crate) args_struct: String,
    /// What the call returns.
    pub(crate) returns: Returns,
    /// The per-method timeout in milliseconds.
    pub(crate) timeout_ms: Option<u64>,
    /// The typed error enum, when the method declares errors.
    pub(crate) errors: Option<String>,
}

/// One command: a fire-and-forget call.
#[derive(Debug)]
pub(crate) struct Command {
    /// The wire name.
    pub(crate) wire: String,
    /// The function name on the trait and on the client.
    pub(crate) fn_ident: String,
    /// Doc lines.
    pub(crate) doc: Vec<String>,
    /// The arguments.
    pub(crate) args: Vec<Field>,
    /// The private arguments struct.
    pub(crate) args_struct: String,
}

/// One action: a long-running goal with feedback and a result.
#[derive(Debug)]
pub(crate) struct Action {
    /// The wire name.
    pub(crate) wire: String,
    /// The handler on the trait and the goal sender on the client.
    pub(crate) fn_ident: String,
    /// The trait's `accept_…` hook.
    pub(crate) accept_fn: String,
    /// The client's `attach_…` function.
    pub(crate) attach_fn: String,
    /// Doc lines.
    pub(crate) doc: Vec<String>,
    /// The public goal struct, whose fields are also the parameters.
    pub(crate) goal_struct: String,
    /// The goal's fields.
    pub(crate) goal: Vec<Field>,
    /// The public feedback struct.
    pub(crate) feedback_struct: String,
    /// What a successful goal returns.
    pub(crate) result: Returns,
    /// The typed error enum, when the action declares errors.
    pub(crate) errors: Option<String>,
}

/// The result shape of a method.
#[derive(Debug)]
pub(crate) enum Returns {
    /// No return values: `()`, `{}` on the wire.
    Unit,
    /// One return value, carried by a private wire struct.
    Single {
        /// The private reply struct.
        wire_struct: String,
        /// The one field.
        field: Field,
    },
    /// Several return values, in a public reply struct.
    Struct {
        /// The public reply struct.
        ident: String,
    },
}

/// One signal.
#[derive(Debug)]
pub(crate) struct Signal {
    /// The wire name.
    pub(crate) wire: String,
    /// Doc lines for the emit and subscribe functions.
    pub(crate) doc: Vec<String>,
    /// The payload struct.
    pub(crate) payload: String,
    /// The payload fields, which are also the emit function's parameters.
    pub(crate) fields: Vec<Field>,
    /// The server's `emit_…` function.
    pub(crate) emit_fn: String,
    /// The server's `emit_…_to` function, for one client.
    pub(crate) emit_to_fn: String,
    /// The name of `emit_…_to`'s parameter that names the client.
    pub(crate) peer_param: String,
    /// The client's `subscribe_…` function.
    pub(crate) subscribe_fn: String,
}

/// One property.
#[derive(Debug)]
pub(crate) struct Property {
    /// The wire name.
    pub(crate) wire: String,
    /// Doc lines.
    pub(crate) doc: Vec<String>,
    /// True when clients may not update it.
    pub(crate) read_only: bool,
    /// How the value is represented.
    pub(crate) shape: PropertyShape,
    /// The field of the properties struct holding the initial value.
    pub(crate) initial_field: String,
    /// The server's getter: the property's own name, or `get_…` when that is taken.
    pub(crate) value_fn: String,
    /// `get_…` on the client, which asks the server.
    pub(crate) get_fn: String,
    /// `set_…` on the server and the client.
    pub(crate) set_fn: String,
    /// `watch_…` on the client.
    pub(crate) watch_fn: String,
    /// `update_…` on the trait.
    pub(crate) update_fn: String,
}

/// How a property's value appears in the API.
#[derive(Debug)]
pub(crate) enum PropertyShape {
    /// One field: the API uses the bare field type; a private struct carries it.
    Single {
        /// The private wire struct.
        wire_struct: String,
        /// The one field.
        field: Field,
    },
    /// Several fields: a public struct is both the API value and the wire object.
    Struct {
        /// The public struct.
        ident: String,
    },
}

impl PropertyShape {
    /// The type the API uses for the value.
    pub(crate) fn value_type(&self) -> RustType {
        match self {
            PropertyShape::Single { field, .. } => field.ty.clone(),
            PropertyShape::Struct { ident } => RustType::Named(ident.clone()),
        }
    }
}
