//! The validated interface model: what an interface file means once every name and type resolves.
//!
//! Everything here is plain data. Names are kept exactly as written in the file, because they are
//! the wire names; each target language derives its own identifiers from them.

use serde::{Deserialize, Serialize};

use crate::source::Span;

/// One interface, with everything its `$ref`s pulled in and every reference resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Interface {
    /// The `interface.name`, used verbatim in topics and socket paths.
    pub name: String,
    /// The `interface.version`, ideally `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Short human title; `None` when the file gave none.
    pub title: Option<String>,
    /// One-line summary.
    pub summary: Option<String>,
    /// Long-form Markdown documentation.
    pub documentation: Option<String>,
    /// The `license` string, if any.
    pub license: Option<String>,
    /// Which dialect of the format the file was written in.
    pub format: FormatVersion,
    /// Named constants.
    pub constants: Vec<Constant>,
    /// Enumerations, in file order.
    pub enums: Vec<EnumDef>,
    /// Structures, in file order.
    pub structs: Vec<StructDef>,
    /// Named errors that methods and actions may declare.
    pub errors: Vec<ErrorDef>,
    /// Server-to-client broadcasts.
    pub signals: Vec<Signal>,
    /// Server-held, versioned values.
    pub properties: Vec<Property>,
    /// Request/response calls.
    pub methods: Vec<Method>,
    /// Fire-and-forget calls from client to server.
    pub commands: Vec<Command>,
    /// Long-running goals with feedback, cancellation and a result.
    pub actions: Vec<Action>,
    /// Topic layout overrides and extra topic parameters (StingerIPC 0.3.0 `configuration`).
    pub configuration: Configuration,
}

/// The `stingeripc.version` (or `switchboard.version`) a file declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatVersion {
    /// The version string as written, e.g. `0.1.1` or `0.3.0`.
    pub version: String,
    /// Which family of keys the file uses.
    pub dialect: Dialect,
}

/// The two families of keys StingerIPC files come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Dialect {
    /// Format 0.0.7 … 0.1.x (stinger-ipc 0.9.x): `members`, `payload`, `values: [...]`, `returnValues`.
    V0_1,
    /// Format 0.3.0 (stinger-ipc 0.10/0.11 pre-releases): `values`, single `value`, single `returnValue`.
    V0_3,
}

/// A named constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constant {
    /// Name as written.
    pub name: String,
    /// The constant's value; its variant gives the type.
    pub value: ConstantValue,
    /// The `description`.
    pub description: Option<String>,
    /// Where the constant is defined.
    #[serde(skip)]
    pub span: Span,
}

/// The value of a [`Constant`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum ConstantValue {
    /// `type: integer`
    Integer(i64),
    /// `type: float`
    Float(f64),
    /// `type: string`
    String(String),
    /// `type: boolean`
    Boolean(bool),
}

/// An enumeration; the wire carries each value's integer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnumDef {
    /// Name as written.
    pub name: String,
    /// Markdown documentation.
    pub documentation: Option<String>,
    /// The enum's own `version`.
    pub version: Option<String>,
    /// The values, in file order, with their integers already assigned.
    pub values: Vec<EnumValue>,
    /// Where the enum is defined (possibly in a `$ref`'d file).
    #[serde(skip)]
    pub span: Span,
}

/// One value of an [`EnumDef`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnumValue {
    /// Name as written.
    pub name: String,
    /// The integer sent on the wire: explicit, or the previous maximum plus one (the first is 1).
    pub value: i64,
    /// The `description`.
    pub description: Option<String>,
    /// Where the value is defined.
    #[serde(skip)]
    pub span: Span,
}

/// A structure: an ordered set of named fields, sent as a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructDef {
    /// Name as written.
    pub name: String,
    /// Markdown documentation.
    pub documentation: Option<String>,
    /// The structure's own `version`.
    pub version: Option<String>,
    /// The members in file order.
    pub fields: Vec<Field>,
    /// Where the struct is defined.
    #[serde(skip)]
    pub span: Span,
}

/// A named error that methods and actions can declare (switchboard extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDef {
    /// Name as written; this is the error's wire name.
    pub name: String,
    /// Markdown documentation.
    pub documentation: Option<String>,
    /// The fields the error carries.
    pub fields: Vec<Field>,
    /// Where the error is defined.
    #[serde(skip)]
    pub span: Span,
}

/// A server-to-client broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Name as written.
    pub name: String,
    /// Markdown documentation.
    pub documentation: Option<String>,
    /// The component `version`.
    pub version: Option<String>,
    /// The `consumers` tags.
    pub consumers: Vec<String>,
    /// The values the signal carries.
    pub fields: Vec<Field>,
    /// Where the signal is defined.
    #[serde(skip)]
    pub span: Span,
}

/// A server-held value with a version counter. All fields travel together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Property {
    /// Name as written.
    pub name: String,
    /// Markdown documentation.
    pub documentation: Option<String>,
    /// The component `version`.
    pub version: Option<String>,
    /// The `consumers` tags.
    pub consumers: Vec<String>,
    /// When true, clients may read and watch but never update.
    pub read_only: bool,
    /// The values making up the property (one or more).
    pub fields: Vec<Field>,
    /// Where the property is defined.
    #[serde(skip)]
    pub span: Span,
}

/// A request/response call from client to server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    /// Name as written.
    pub name: String,
    /// Markdown documentation.
    pub documentation: Option<String>,
    /// The component `version`.
    pub version: Option<String>,
    /// The `consumers` tags.
    pub consumers: Vec<String>,
    /// The arguments, in order.
    pub arguments: Vec<Field>,
    /// The return values, in order; empty means the reply is `{}`.
    pub returns: Vec<Field>,
    /// Names of the declared errors, each resolving to an [`ErrorDef`].
    pub errors: Vec<String>,
    /// Per-method timeout in seconds (StingerIPC 0.3.0 `timeout`).
    pub timeout_secs: Option<f64>,
    /// Where the method is defined.
    #[serde(skip)]
    pub span: Span,
}

/// A fire-and-forget call from client to server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Name as written.
    pub name: String,
    /// Markdown documentation.
    pub documentation: Option<String>,
    /// The component `version`.
    pub version: Option<String>,
    /// The `consumers` tags.
    pub consumers: Vec<String>,
    /// The arguments, in order.
    pub arguments: Vec<Field>,
    /// Where the command is defined.
    #[serde(skip)]
    pub span: Span,
}

/// A long-running goal: accepted or rejected, then feedback, then one end state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Name as written.
    pub name: String,
    /// Markdown documentation.
    pub documentation: Option<String>,
    /// The component `version`.
    pub version: Option<String>,
    /// What the client sends to start a goal.
    pub goal: Vec<Field>,
    /// What the server reports while the goal runs.
    pub feedback: Vec<Field>,
    /// What the server sends when the goal succeeds.
    pub result: Vec<Field>,
    /// Names of the declared errors.
    pub errors: Vec<String>,
    /// Where the action is defined.
    #[serde(skip)]
    pub span: Span,
}

/// A named, typed value: an argument, return value, struct member, property value or error field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// Name as written; also the JSON key on the wire.
    pub name: String,
    /// The resolved type, with `optional: true` already folded into [`Type::Optional`].
    #[serde(rename = "type")]
    pub ty: Type,
    /// The one-line `description`.
    pub description: Option<String>,
    /// Where the field is defined.
    #[serde(skip)]
    pub span: Span,
}

/// A resolved type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Type {
    /// `integer`, with its `format` (default `int64`).
    Integer {
        /// The width and signedness.
        format: IntFormat,
    },
    /// `float`, with its `format` (default `float64`).
    Float {
        /// The width.
        format: FloatFormat,
    },
    /// `boolean`
    Boolean,
    /// `string`
    String,
    /// `datetime`: an ISO 8601 / RFC 3339 timestamp on the wire.
    DateTime,
    /// `duration`: an ISO 8601 duration on the wire.
    Duration,
    /// `binary`: padded standard base64 on the wire.
    Binary,
    /// `enum` with `enumName`.
    Enum {
        /// The [`EnumDef`] name.
        name: String,
    },
    /// `struct` with `structName`.
    Struct {
        /// The [`StructDef`] name.
        name: String,
    },
    /// `array` with `itemType`.
    Array {
        /// The element type.
        item: Box<Type>,
    },
    /// `map` with `valueType`; keys are always strings.
    Map {
        /// The value type.
        value: Box<Type>,
    },
    /// Anything with `optional: true`: `null` or absent on the wire.
    Optional {
        /// The type when present.
        inner: Box<Type>,
    },
}

/// The `format` of an `integer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum IntFormat {
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
}

impl IntFormat {
    /// The format's name in an interface file: `int32`, `uint8`, ….
    pub fn name(self) -> &'static str {
        match self {
            IntFormat::Int8 => "int8",
            IntFormat::Int16 => "int16",
            IntFormat::Int32 => "int32",
            IntFormat::Int64 => "int64",
            IntFormat::Uint8 => "uint8",
            IntFormat::Uint16 => "uint16",
            IntFormat::Uint32 => "uint32",
            IntFormat::Uint64 => "uint64",
        }
    }

    /// The smallest and the largest value of the format.
    pub fn range(self) -> (i128, i128) {
        match self {
            IntFormat::Int8 => (i8::MIN.into(), i8::MAX.into()),
            IntFormat::Int16 => (i16::MIN.into(), i16::MAX.into()),
            IntFormat::Int32 => (i32::MIN.into(), i32::MAX.into()),
            IntFormat::Int64 => (i64::MIN.into(), i64::MAX.into()),
            IntFormat::Uint8 => (0, u8::MAX.into()),
            IntFormat::Uint16 => (0, u16::MAX.into()),
            IntFormat::Uint32 => (0, u32::MAX.into()),
            IntFormat::Uint64 => (0, u64::MAX.into()),
        }
    }
}

/// The `format` of a `float`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum FloatFormat {
    Float32,
    Float64,
}

/// Topic templates and extra topic parameters.
///
/// Empty by default, meaning StingerIPC's default layout. Only the MQTT transport reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    /// Extra topic placeholders such as `prefix`.
    pub topic_params: Vec<String>,
    /// Template overrides keyed by the 0.3.0 camelCase name (`signals`, `propertyValues`, ...).
    pub topics: Vec<(String, String)>,
}

impl Interface {
    /// Looks up an enum by name.
    pub fn enum_def(&self, name: &str) -> Option<&EnumDef> {
        self.enums.iter().find(|e| e.name == name)
    }

    /// Looks up a struct by name.
    pub fn struct_def(&self, name: &str) -> Option<&StructDef> {
        self.structs.iter().find(|s| s.name == name)
    }

    /// Looks up an error by name.
    pub fn error_def(&self, name: &str) -> Option<&ErrorDef> {
        self.errors.iter().find(|e| e.name == name)
    }
}
