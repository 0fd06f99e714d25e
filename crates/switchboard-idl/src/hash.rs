//! Owns the interface fingerprint and the introspection JSON.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::Interface;

/// Object keys that only carry prose or codegen hints, never anything that changes the wire.
const NON_WIRE_KEYS: &[&str] =
    &["documentation", "description", "title", "summary", "license", "consumers"];

impl Interface {
    /// Returns `sha256:` and the hex digest of the canonical JSON of the wire-relevant model.
    ///
    /// Documentation, descriptions, title, summary, license, the format dialect, `consumers` and
    /// source positions are left out, so editing prose does not change the hash. Keys are sorted.
    pub fn description_hash(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        // The dialect is how the file was spelled, not what travels; only the top level has it.
        if let Value::Object(map) = &mut value {
            map.remove("format");
        }
        strip(&mut value);
        let mut canonical = String::new();
        write_canonical(&value, &mut canonical);
        let digest = Sha256::digest(canonical.as_bytes());
        let mut out = String::from("sha256:");
        for b in digest {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    /// Returns the full model (without source positions) as compact JSON, for runtime introspection.
    pub fn description_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !NON_WIRE_KEYS.contains(&k.as_str()));
            for v in map.values_mut() {
                strip(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

/// Writes JSON with object keys sorted, independent of serde_json's map ordering features.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(*k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
