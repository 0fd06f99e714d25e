//! Deterministic example values: what a payload of a given type looks like on the wire.
//!
//! The AsyncAPI document and the Markdown reference both show these, so they are the same
//! everywhere and never change between runs.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use switchboard_idl::{Field, Interface, Type};

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

/// The JSON object of `fields`, as senders emit it (optionals as `null` only when recursive).
pub(crate) fn object(iface: &Interface, fields: &[Field]) -> Value {
    object_in(iface, fields, &mut Vec::new())
}

/// An example value of `ty`.
pub(crate) fn value(iface: &Interface, ty: &Type) -> Value {
    value_in(iface, ty, &mut Vec::new())
}

fn object_in<'a>(iface: &'a Interface, fields: &'a [Field], stack: &mut Vec<&'a str>) -> Value {
    Value::Object(fields.iter().map(|f| (f.name.clone(), value_in(iface, &f.ty, stack))).collect())
}

fn value_in<'a>(iface: &'a Interface, ty: &'a Type, stack: &mut Vec<&'a str>) -> Value {
    match ty {
        Type::Integer { .. } => Value::Int(INTEGER),
        Type::Float { .. } => Value::Float(FLOAT),
        Type::Boolean => Value::Bool(true),
        Type::String => STRING.into(),
        Type::DateTime => DATETIME.into(),
        Type::Duration => DURATION.into(),
        Type::Binary => BINARY.into(),
        Type::Enum { name } => {
            Value::Int(iface.enum_def(name).and_then(|e| e.values.first()).map_or(0, |v| v.value))
        }
        Type::Struct { name } => match iface.struct_def(name) {
            Some(def) if !stack.contains(&name.as_str()) => {
                stack.push(name);
                let value = object_in(iface, &def.fields, stack);
                stack.pop();
                value
            }
            _ => Value::Object(Vec::new()),
        },
        Type::Array { item } if recursive(item, stack) => Value::Array(Vec::new()),
        Type::Array { item } => Value::Array(vec![value_in(iface, item, stack)]),
        Type::Map { value } if recursive(value, stack) => Value::Object(Vec::new()),
        Type::Map { value } => Value::object([("key", value_in(iface, value, stack))]),
        Type::Optional { inner } if recursive(inner, stack) => Value::Null,
        Type::Optional { inner } => value_in(iface, inner, stack),
    }
}

/// True when `ty` names a struct being expanded already, so expanding it would never end.
fn recursive(ty: &Type, stack: &[&str]) -> bool {
    match ty {
        Type::Struct { name } => stack.contains(&name.as_str()),
        Type::Array { item } => recursive(item, stack),
        Type::Map { value } => recursive(value, stack),
        Type::Optional { inner } => recursive(inner, stack),
        _ => false,
    }
}
