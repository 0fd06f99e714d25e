//! Deterministic example values: what a payload of a given type looks like on the wire.
//!
//! The AsyncAPI document and the Markdown reference both show these, so they are the same
//! everywhere and never change between runs.

use std::cell::Cell;
use std::collections::HashMap;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use switchboard_idl::{Field, Interface, StructDef, Type};

/// A JSON value whose objects keep their keys in insertion order (the wire's field order);
/// `serde_json::Value` sorts them unless a crate-wide feature is turned on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// An object from `(key, value)` pairs, in order.
    pub(crate) fn object<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Self {
        Value::Object(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Compact JSON.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Pretty-printed JSON.
    pub(crate) fn to_pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Builds an ordered example object: `ex!({"goal": id, "status": "accepted"})`.
macro_rules! ex {
    ({}) => {
        $crate::asyncapi::example::Value::Object(Vec::new())
    };
    ({ $($key:literal : $value:expr),* $(,)? }) => {
        $crate::asyncapi::example::Value::object([
            $(($key, $crate::asyncapi::example::Value::from($value))),*
        ])
    };
}
pub(crate) use ex;

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Str(text)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Str(text.to_string())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(f) => serializer.serialize_f64(*f),
            Value::Str(s) => serializer.serialize_str(s),
            Value::Array(items) => items.serialize(serializer),
            Value::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// The example datetime, as sent on the wire.
pub(crate) const DATETIME: &str = "2030-01-01T12:00:00Z";
/// The example duration: one and a half seconds.
pub(crate) const DURATION: &str = "PT1.5S";
/// The example binary value: the bytes 0, 1, 2 in padded base64.
pub(crate) const BINARY: &str = "AAEC";
/// The example string.
pub(crate) const STRING: &str = "example";
/// The example integer.
pub(crate) const INTEGER: i64 = 42;
/// The example float.
pub(crate) const FLOAT: f64 = 1.5;
/// The example goal id.
pub(crate) const GOAL_ID: &str = "0b8c6f7e-4a4f-4a8e-9d2b-2f7f1c1f0a11";
/// The example correlation data.
pub(crate) const CORRELATION: &str = "3f2a9c1e-77b0-4d1e-8a2b-00000000002a";

/// The most bytes one example may take, pretty-printed; a larger one is left out.
///
/// Without a bound, examples of nested structs grow with the product of the members at each
/// level (30 structs that each hold two of the one before make an example of 2^30 values).
pub(crate) const MAX_EXAMPLE_BYTES: usize = 16 * 1024;

/// The deepest nesting of objects and arrays in one example; a deeper one is left out. It keeps
/// the recursion that builds examples (and the readers that parse them) shallow.
pub(crate) const MAX_EXAMPLE_DEPTH: usize = 32;

/// The most bytes all the examples of one document may take; later examples are left out.
pub(crate) const MAX_DOCUMENT_EXAMPLE_BYTES: usize = 4 * 1024 * 1024;

/// Why an example was left out, said where it would have been.
pub(crate) const LEFT_OUT: &str = "example left out: it would take more than the 16 KiB or the \
                                   32 levels of nesting one example may, or than the 4 MiB all \
                                   examples of a document may";

/// The example values of one document, each at most [`MAX_EXAMPLE_BYTES`] and all together at
/// most [`MAX_DOCUMENT_EXAMPLE_BYTES`], so the document's size stays proportional to the
/// interface's, however its structs nest.
pub(crate) struct Examples<'a> {
    types: Types<'a>,
    spent: Cell<usize>,
}

/// The interface's structs and enums by name, so each lookup is not a search of them all.
struct Types<'a> {
    structs: HashMap<&'a str, &'a StructDef>,
    /// The example value of each enum: its first value, or 0.
    enums: HashMap<&'a str, i64>,
}

impl<'a> Examples<'a> {
    pub(crate) fn new(iface: &'a Interface) -> Self {
        let structs = iface.structs.iter().map(|s| (s.name.as_str(), s)).collect();
        let enums = iface
            .enums
            .iter()
            .map(|e| (e.name.as_str(), e.values.first().map_or(0, |v| v.value)))
            .collect();
        Self { types: Types { structs, enums }, spent: Cell::new(0) }
    }

    /// The JSON object of `fields`, as senders emit it (optionals as `null` only when
    /// recursive), or `None` when it would exceed the bounds.
    pub(crate) fn object(&self, fields: &[Field]) -> Option<Value> {
        self.build(|builder| builder.object(fields, 0))
    }

    /// An example value of `ty`, or `None` when it would exceed the bounds.
    pub(crate) fn value(&self, ty: &Type) -> Option<Value> {
        self.build(|builder| builder.value(ty, 0))
    }

    fn build(
        &self,
        build: impl FnOnce(&mut Builder<'_, 'a>) -> Result<Value, TooLarge>,
    ) -> Option<Value> {
        let left = MAX_DOCUMENT_EXAMPLE_BYTES.saturating_sub(self.spent.get());
        let budget = left.min(MAX_EXAMPLE_BYTES);
        let mut builder = Builder { types: &self.types, stack: Vec::new(), left: budget };
        let value = build(&mut builder).ok()?;
        self.spent.set(self.spent.get() + (budget - builder.left));
        Some(value)
    }
}

/// The example ran out of bytes.
struct TooLarge;

/// Builds one example, charging each value the bytes it takes pretty-printed.
struct Builder<'t, 'a> {
    types: &'t Types<'a>,
    /// The structs being expanded, outermost first.
    stack: Vec<&'a str>,
    /// Bytes this example may still take.
    left: usize,
}

impl<'a> Builder<'_, 'a> {
    /// Charges one value at `depth` with `text` bytes of key and scalar.
    fn charge(&mut self, depth: usize, text: usize) -> Result<(), TooLarge> {
        let cost = 2 * depth + text + 8;
        self.left = self.left.checked_sub(cost).ok_or(TooLarge)?;
        Ok(())
    }

    fn object(&mut self, fields: &'a [Field], depth: usize) -> Result<Value, TooLarge> {
        let mut entries = Vec::with_capacity(fields.len());
        for field in fields {
            self.charge(depth + 1, field.name.len())?;
            entries.push((field.name.clone(), self.value(&field.ty, depth + 1)?));
        }
        Ok(Value::Object(entries))
    }

    fn value(&mut self, ty: &'a Type, depth: usize) -> Result<Value, TooLarge> {
        if depth > MAX_EXAMPLE_DEPTH {
            return Err(TooLarge);
        }
        self.charge(depth, 40)?;
        Ok(match ty {
            Type::Integer { .. } => Value::Int(INTEGER),
            Type::Float { .. } => Value::Float(FLOAT),
            Type::Boolean => Value::Bool(true),
            Type::String => STRING.into(),
            Type::DateTime => DATETIME.into(),
            Type::Duration => DURATION.into(),
            Type::Binary => BINARY.into(),
            Type::Enum { name } => {
                Value::Int(self.types.enums.get(name.as_str()).copied().unwrap_or(0))
            }
            Type::Struct { name } => match self.types.structs.get(name.as_str()) {
                Some(def) if !self.stack.contains(&name.as_str()) => {
                    self.stack.push(name);
                    let value = self.object(&def.fields, depth);
                    self.stack.pop();
                    value?
                }
                _ => Value::Object(Vec::new()),
            },
            Type::Array { item } if self.recursive(item) => Value::Array(Vec::new()),
            Type::Array { item } => Value::Array(vec![self.value(item, depth + 1)?]),
            Type::Map { value } if self.recursive(value) => Value::Object(Vec::new()),
            Type::Map { value } => Value::object([("key", self.value(value, depth + 1)?)]),
            Type::Optional { inner } if self.recursive(inner) => Value::Null,
            Type::Optional { inner } => self.value(inner, depth)?,
        })
    }

    /// True when `ty` names a struct being expanded already, so expanding it would never end.
    fn recursive(&self, ty: &Type) -> bool {
        match ty {
            Type::Struct { name } => self.stack.contains(&name.as_str()),
            Type::Array { item } => self.recursive(item),
            Type::Map { value } => self.recursive(value),
            Type::Optional { inner } => self.recursive(inner),
            _ => false,
        }
    }
}
