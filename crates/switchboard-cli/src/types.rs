//! Arguments and results checked against the interface's declared types.
//!
//! `NAME=VALUE` text and `--json` objects become wire JSON (enum names become their integers,
//! datetimes are normalised); results are rendered as text with enum names.

use base64::Engine as _;
use serde_json::{Map, Value};
use switchboard_idl::{Field, FloatFormat, IntFormat, Interface, Type, english::with_article};

use crate::session::Output;

/// The interface a dynamic client talks to.
#[derive(Debug, Clone)]
pub(crate) struct Types<'a> {
    pub(crate) iface: &'a Interface,
}

/// The type as people write it: `float`, `uint8`, `Mode`, `array<float>`, `string?`.
pub(crate) fn type_name(ty: &Type) -> String {
    match ty {
        Type::Integer { format: IntFormat::Int64 } => "integer".to_owned(),
        Type::Integer { format } => format.name().to_owned(),
        Type::Float { format: FloatFormat::Float32 } => "float32".to_owned(),
        Type::Float { .. } => "float".to_owned(),
        Type::Boolean => "boolean".to_owned(),
        Type::String => "string".to_owned(),
        Type::DateTime => "datetime".to_owned(),
        Type::Duration => "duration".to_owned(),
        Type::Binary => "binary".to_owned(),
        Type::Enum { name } | Type::Struct { name } => name.clone(),
        Type::Array { item } => format!("array<{}>", type_name(item)),
        Type::Map { value } => format!("map<{}>", type_name(value)),
        Type::Optional { inner } => format!("{}?", type_name(inner)),
        #[allow(unreachable_patterns)]
        _ => "?".to_owned(),
    }
}

/// `name: type, …` for a field list.
pub(crate) fn signature(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.name, type_name(&f.ty)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Types<'_> {
    /// Builds the wire object for `fields` from `NAME=VALUE` pairs or a `--json` object.
    pub(crate) fn build(
        &self,
        fields: &[Field],
        pairs: &[String],
        json: Option<&str>,
    ) -> Result<Value, String> {
        let given: Map<String, Value> = match json {
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err("--json must be a JSON object".to_owned()),
                Err(e) => return Err(format!("--json is not valid JSON: {e}")),
            },
            None => {
                let mut map = Map::new();
                for pair in pairs {
                    let Some((name, text)) = pair.split_once('=') else {
                        return Err(format!("`{pair}` is not NAME=VALUE"));
                    };
                    let field = fields.iter().find(|f| f.name == name).ok_or_else(|| {
                        format!("no argument `{name}`; expected {}", expected(fields))
                    })?;
                    if map.contains_key(name) {
                        return Err(format!("`{name}` is given twice"));
                    }
                    let value =
                        self.parse_text(&field.ty, text).map_err(|e| format!("{name}: {e}"))?;
                    map.insert(name.to_owned(), value);
                }
                map
            }
        };
        self.check_fields(fields, given, "")
    }

    /// Checks a JSON object (a request body) against `fields`: the wire object, or why not.
    pub(crate) fn check_object(
        &self,
        fields: &[Field],
        given: Map<String, Value>,
    ) -> Result<Value, String> {
        self.check_fields(fields, given, "")
    }

    /// Checks a JSON object against `fields`, converting as it goes.
    fn check_fields(
        &self,
        fields: &[Field],
        mut given: Map<String, Value>,
        path: &str,
    ) -> Result<Value, String> {
        if let Some(unknown) = given.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
            return Err(format!("no argument `{path}{unknown}`; expected {}", expected(fields)));
        }
        let mut out = Map::new();
        let mut missing = Vec::new();
        for field in fields {
            let key = format!("{path}{}", field.name);
            match given.remove(&field.name) {
                Some(value) => {
                    out.insert(field.name.clone(), self.check_json(&field.ty, value, &key)?);
                }
                None if matches!(field.ty, Type::Optional { .. }) => {
                    out.insert(field.name.clone(), Value::Null);
                }
                None => missing.push(format!("{key}: {}", type_name(&field.ty))),
            }
        }
        if !missing.is_empty() {
            return Err(format!("missing {}", missing.join(", ")));
        }
        Ok(Value::Object(out))
    }

    /// Parses one `VALUE` by its type.
    pub(crate) fn parse_text(&self, ty: &Type, text: &str) -> Result<Value, String> {
        match ty {
            Type::Optional { .. } if text == "null" => Ok(Value::Null),
            Type::Optional { inner } => self.parse_text(inner, text),
            Type::String => Ok(Value::String(text.to_owned())),
            Type::DateTime | Type::Duration | Type::Binary => {
                self.check_json(ty, Value::String(text.to_owned()), "")
            }
            Type::Boolean => match text {
                "true" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
                "false" | "no" | "off" | "0" => Ok(Value::Bool(false)),
                _ => Err(format!("`{text}` is not a boolean (true or false)")),
            },
            Type::Enum { .. } => {
                let value = match text.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => Value::String(text.to_owned()),
                };
                self.check_json(ty, value, "")
            }
            Type::Integer { .. } | Type::Float { .. } => {
                let value: Value = serde_json::from_str(text)
                    .map_err(|_| format!("`{text}` is not {}", with_article(&type_name(ty))))?;
                self.check_json(ty, value, "")
            }
            _ => {
                let value: Value = serde_json::from_str(text).map_err(|e| {
                    format!("`{text}` is not JSON for {}: {e}", with_article(&type_name(ty)))
                })?;
                self.check_json(ty, value, "")
            }
        }
    }

    /// Checks a JSON value against a type; enum names become integers.
    pub(crate) fn check_json(&self, ty: &Type, value: Value, path: &str) -> Result<Value, String> {
        let at = |message: String| {
            if path.is_empty() { message } else { format!("{path}: {message}") }
        };
        let wrong = |value: &Value| at(format!("expected {}, got {value}", type_name(ty)));
        match ty {
            Type::Optional { .. } if value.is_null() => Ok(Value::Null),
            Type::Optional { inner } => self.check_json(inner, value, path),
            Type::Integer { format } => {
                let n = match &value {
                    Value::Number(n) => n
                        .as_i64()
                        .map(i128::from)
                        .or_else(|| n.as_u64().map(i128::from))
                        .ok_or_else(|| wrong(&value))?,
                    _ => return Err(wrong(&value)),
                };
                let (min, max) = format.range();
                if n < min || n > max {
                    return Err(at(format!(
                        "{n} is out of range for {} ({min} to {max})",
                        type_name(ty)
                    )));
                }
                Ok(value)
            }
            Type::Float { format } => {
                let x = value.as_f64().ok_or_else(|| wrong(&value))?;
                if *format == FloatFormat::Float32 && x.abs() > f64::from(f32::MAX) {
                    return Err(at(format!("{x} is out of range for float32")));
                }
                // Sent as a float (`18.0`), as typed peers send it.
                Ok(Value::from(x))
            }
            Type::Boolean => {
                value.is_boolean().then_some(value.clone()).ok_or_else(|| wrong(&value))
            }
            Type::String => value.is_string().then_some(value.clone()).ok_or_else(|| wrong(&value)),
            Type::DateTime => {
                let text = value.as_str().ok_or_else(|| wrong(&value))?;
                let parsed = if text == "now" {
                    chrono::Utc::now()
                } else {
                    switchboard_core::codec::parse_datetime(text)
                        .map_err(|e| at(format!("`{text}` is not an RFC 3339 datetime: {e}")))?
                };
                Ok(Value::String(switchboard_core::codec::format_datetime(&parsed)))
            }
            Type::Duration => {
                let text = value.as_str().ok_or_else(|| wrong(&value))?;
                let parsed = switchboard_core::codec::parse_duration(text).map_err(|e| {
                    at(format!("`{text}` is not an ISO 8601 duration (like PT1M30S): {e}"))
                })?;
                Ok(Value::String(switchboard_core::codec::format_duration(&parsed)))
            }
            Type::Binary => {
                let text = value.as_str().ok_or_else(|| wrong(&value))?;
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| at(format!("not padded standard base64: {e}")))?;
                Ok(value)
            }
            Type::Enum { name } => {
                let def =
                    self.iface.enum_def(name).ok_or_else(|| at(format!("unknown enum {name}")))?;
                let not_one = |shown: String| {
                    let names = def.values.iter().map(|v| v.name.as_str()).collect::<Vec<_>>();
                    at(format!(
                        "{shown} is not {}: one of {}",
                        with_article(name),
                        names.join(", ")
                    ))
                };
                match &value {
                    Value::String(text) => def
                        .values
                        .iter()
                        .find(|v| v.name == *text)
                        .map(|v| Value::from(v.value))
                        .ok_or_else(|| not_one(format!("`{text}`"))),
                    Value::Number(n) => match n.as_i64() {
                        Some(n) if def.values.iter().any(|v| v.value == n) => Ok(value),
                        _ => Err(not_one(value.to_string())),
                    },
                    _ => Err(wrong(&value)),
                }
            }
            Type::Struct { name } => {
                let def = self
                    .iface
                    .struct_def(name)
                    .ok_or_else(|| at(format!("unknown struct {name}")))?;
                match value {
                    Value::Object(map) => {
                        let prefix =
                            if path.is_empty() { String::new() } else { format!("{path}.") };
                        self.check_fields(&def.fields, map, &prefix)
                    }
                    other => Err(wrong(&other)),
                }
            }
            Type::Array { item } => match value {
                Value::Array(items) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| self.check_json(item, v, &format!("{path}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                other => Err(wrong(&other)),
            },
            Type::Map { value: inner } => match value {
                Value::Object(map) => map
                    .into_iter()
                    .map(|(k, v)| {
                        let checked = self.check_json(inner, v, &format!("{path}[{k}]"))?;
                        Ok((k, checked))
                    })
                    .collect::<Result<Map<_, _>, String>>()
                    .map(Value::Object),
                other => Err(wrong(&other)),
            },
            #[allow(unreachable_patterns)]
            _ => Ok(value),
        }
    }

    /// Renders a value for people: enum integers become names.
    pub(crate) fn render(&self, ty: &Type, value: &Value) -> String {
        match (ty, value) {
            (Type::Optional { .. }, Value::Null) => "null".to_owned(),
            (Type::Optional { inner }, _) => self.render(inner, value),
            (Type::Enum { name }, Value::Number(n)) => self
                .iface
                .enum_def(name)
                .and_then(|def| def.values.iter().find(|v| Some(v.value) == n.as_i64()))
                .map_or_else(|| n.to_string(), |v| v.name.clone()),
            (Type::String | Type::DateTime | Type::Duration | Type::Binary, Value::String(s)) => {
                s.clone()
            }
            (Type::Struct { name }, Value::Object(map)) => match self.iface.struct_def(name) {
                Some(def) => format!("{{{}}}", self.render_inline(&def.fields, map)),
                None => value.to_string(),
            },
            (Type::Array { item }, Value::Array(items)) => {
                format!(
                    "[{}]",
                    items.iter().map(|v| self.render(item, v)).collect::<Vec<_>>().join(", ")
                )
            }
            (Type::Map { value: inner }, Value::Object(map)) => format!(
                "{{{}}}",
                map.iter()
                    .map(|(k, v)| format!("{k}: {}", self.render(inner, v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => value.to_string(),
        }
    }

    fn render_inline(&self, fields: &[Field], map: &Map<String, Value>) -> String {
        fields
            .iter()
            .filter_map(|f| {
                map.get(&f.name).map(|v| format!("{}: {}", f.name, self.render(&f.ty, v)))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Renders an object of `fields` as `name: value` lines, names styled for `out`.
    pub(crate) fn render_fields(&self, fields: &[Field], value: &Value, out: Output) -> String {
        let Value::Object(map) = value else { return value.to_string() };
        let mut lines = String::new();
        for field in fields {
            if let Some(v) = map.get(&field.name) {
                let rendered = self.render(&field.ty, v);
                lines.push_str(&format!("{}: {rendered}\n", out.field_name(&field.name)));
            }
        }
        // Keys the interface does not know (a newer server) still show.
        for (k, v) in map.iter().filter(|(k, _)| !fields.iter().any(|f| &f.name == *k)) {
            lines.push_str(&format!("{k}: {v}\n"));
        }
        if lines.is_empty() {
            lines.push_str("(no values)\n");
        }
        lines
    }
}

fn expected(fields: &[Field]) -> String {
    if fields.is_empty() { "no arguments".to_owned() } else { signature(fields) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thermostat() -> Interface {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/thermostat/thermostat.yaml");
        let loaded = switchboard_codegen::load_file(&path).unwrap();
        loaded.parsed.interface.unwrap()
    }

    #[test]
    fn description_json_round_trips_through_the_model() {
        let iface = thermostat();
        let back: Interface = serde_json::from_str(&iface.description_json()).unwrap();
        assert_eq!(back.description_hash(), iface.description_hash());
    }

    #[test]
    fn values_are_checked_by_type() {
        let iface = thermostat();
        let types = Types { iface: &iface };
        let boost = &iface.methods.iter().find(|m| m.name == "boost").unwrap().arguments;
        let args =
            types.build(boost, &["extraCelsius=2".into(), "forHowLong=PT5M".into()], None).unwrap();
        assert_eq!(args, serde_json::json!({"extraCelsius":2.0,"forHowLong":"PT5M","reason":null}));
        assert!(types.build(boost, &["extraCelsius=warm".into()], None).is_err());
        assert!(
            types
                .build(boost, &["extraCelsius=1".into()], None)
                .unwrap_err()
                .contains("missing forHowLong")
        );
        assert!(
            types
                .build(boost, &["nope=1".into()], None)
                .unwrap_err()
                .contains("no argument `nope`")
        );
        let mode = Type::Enum { name: "Mode".into() };
        assert_eq!(types.parse_text(&mode, "eco").unwrap(), serde_json::json!(10));
        assert_eq!(types.parse_text(&mode, "1").unwrap(), serde_json::json!(1));
        assert!(types.parse_text(&mode, "7").is_err());
        assert_eq!(types.render(&mode, &serde_json::json!(10)), "eco");
        let byte = Type::Integer { format: IntFormat::Uint8 };
        assert!(types.parse_text(&byte, "256").unwrap_err().contains("out of range"));
        assert_eq!(types.parse_text(&byte, "two").unwrap_err(), "`two` is not a uint8");
        let integer = Type::Integer { format: IntFormat::Int64 };
        assert_eq!(types.parse_text(&integer, "two").unwrap_err(), "`two` is not an integer");
        let list = Type::Array { item: Box::new(Type::Float { format: FloatFormat::Float64 }) };
        assert!(
            types
                .parse_text(&list, "[1,")
                .unwrap_err()
                .starts_with("`[1,` is not JSON for an array<float>"),
        );
        assert_eq!(
            types.parse_text(&mode, "warm").unwrap_err(),
            "`warm` is not a Mode: one of off, heat, eco"
        );
        assert!(types.parse_text(&Type::Binary, "not base64!").is_err());
        assert_eq!(types.parse_text(&Type::Binary, "AAE=").unwrap(), serde_json::json!("AAE="));
        assert!(types.parse_text(&Type::DateTime, "yesterday").is_err());
        let list = Type::Array { item: Box::new(mode.clone()) };
        assert_eq!(
            types.parse_text(&list, r#"["off","eco"]"#).unwrap(),
            serde_json::json!([0, 10])
        );
    }
}
