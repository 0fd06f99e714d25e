//! Decides every Rust identifier the generator emits, and catches identifiers that would collide.
//!
//! Interface files use whatever spelling their authors like (`extraCelsius`, `temperature_changed`,
//! `HTTPMode`). Rust wants `snake_case` for functions, fields and arguments, `UpperCamelCase` for
//! types and variants, and `SHOUTY_SNAKE_CASE` for constants. The conversions, the keyword escapes
//! and the collision rules all live here so the rest of the generator never invents a name.

use std::collections::BTreeMap;

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

/// Keywords that can be used as raw identifiers (`r#type`).
const RAW_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers; they get a trailing underscore instead.
const UNRAWABLE_KEYWORDS: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Why a name from the interface file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name has no valid spelling in the generated language (Rust or Python).
    #[error("{what} cannot become an identifier in generated code: `{ident}` {reason}")]
    Invalid {
        /// What the name belongs to, e.g. "method `2fast`".
        what: String,
        /// The identifier the conversion produced.
        ident: String,
        /// Why that identifier is not valid.
        reason: &'static str,
    },
    /// Two things would get the same identifier in the same place.
    #[error(
        "{first} and {second} would both be named `{ident}` in {scope}; rename one of them in the interface file"
    )]
    Collision {
        /// The identifier both would get.
        ident: String,
        /// Where they would collide, e.g. "the methods of `ThermostatClient`".
        scope: String,
        /// The item that claimed the identifier first.
        first: String,
        /// The item that wanted it second.
        second: String,
    },
}

/// Converts `name` to `snake_case` and escapes keywords.
pub(crate) fn snake(name: &str, what: &str) -> Result<String, NameError> {
    escape(name.to_snake_case(), what)
}

/// Builds a `snake_case` function name such as `get_setpoint` from a prefix and a name.
pub(crate) fn prefixed_snake(prefix: &str, name: &str, what: &str) -> Result<String, NameError> {
    escape(format!("{prefix}_{}", name.to_snake_case()), what)
}

/// Converts `name` to `UpperCamelCase`, appends `suffix` and escapes keywords.
pub(crate) fn camel(name: &str, suffix: &str, what: &str) -> Result<String, NameError> {
    escape(format!("{}{suffix}", name.to_upper_camel_case()), what)
}

/// Converts `name` to `SHOUTY_SNAKE_CASE`.
pub(crate) fn shouty(name: &str, what: &str) -> Result<String, NameError> {
    escape(name.to_shouty_snake_case(), what)
}

/// Returns `ident` without a leading `r#`, which is the name serde and people see.
pub(crate) fn unraw(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

/// Checks a converted identifier and escapes it if it is a keyword.
fn escape(ident: String, what: &str) -> Result<String, NameError> {
    let ident = if ident.is_empty() { "_".to_string() } else { ident };
    let invalid =
        |reason| NameError::Invalid { what: what.to_string(), ident: ident.clone(), reason };
    let mut chars = ident.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        Some(c) if c.is_ascii_digit() => return Err(invalid("starts with a digit")),
        _ => return Err(invalid("contains characters other than ASCII letters, digits and `_`")),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid("contains characters other than ASCII letters, digits and `_`"));
    }
    if UNRAWABLE_KEYWORDS.contains(&ident.as_str()) {
        Ok(format!("{ident}_"))
    } else if RAW_KEYWORDS.contains(&ident.as_str()) {
        Ok(format!("r#{ident}"))
    } else {
        Ok(ident)
    }
}

/// Every identifier handed out so far, by scope, with a description of its owner.
///
/// A scope is described in words ("the module's types", "the fields of `Foo`") because that text
/// goes straight into error messages.
#[derive(Debug, Default)]
pub(crate) struct NameTable {
    scopes: BTreeMap<String, BTreeMap<String, String>>,
}

impl NameTable {
    /// Creates an empty table.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records `ident` in `scope` for `owner`, failing if something already has it.
    pub(crate) fn claim(&mut self, scope: &str, ident: &str, owner: &str) -> Result<(), NameError> {
        let names = self.scopes.entry(scope.to_string()).or_default();
        if let Some(first) = names.get(unraw(ident)) {
            return Err(NameError::Collision {
                ident: ident.to_string(),
                scope: scope.to_string(),
                first: first.clone(),
                second: owner.to_string(),
            });
        }
        names.insert(unraw(ident).to_string(), owner.to_string());
        Ok(())
    }

    /// Returns true when `ident` is taken in `scope`.
    pub(crate) fn is_taken(&self, scope: &str, ident: &str) -> bool {
        self.scopes.get(scope).is_some_and(|names| names.contains_key(unraw(ident)))
    }

    /// Claims the first of `candidates` that is free, or reports the collision of the last one.
    pub(crate) fn claim_first(
        &mut self,
        scope: &str,
        candidates: &[String],
        owner: &str,
    ) -> Result<String, NameError> {
        let free = candidates.iter().find(|c| !self.is_taken(scope, c));
        let chosen = free.or(candidates.last()).cloned().unwrap_or_default();
        self.claim(scope, &chosen, owner)?;
        Ok(chosen)
    }

    /// Claims `ident`, or `ident2`, `ident3`, … for private helpers nobody names by hand.
    pub(crate) fn claim_numbered(&mut self, scope: &str, ident: &str, owner: &str) -> String {
        let mut chosen = ident.to_string();
        let mut n = 2;
        while self.is_taken(scope, &chosen) {
            chosen = format!("{ident}{n}");
            n += 1;
        }
        self.scopes
            .entry(scope.to_string())
            .or_default()
            .insert(unraw(&chosen).to_string(), owner.to_string());
        chosen
    }

    /// Claims a field or parameter name; a clash with a generator-reserved name adds `_`.
    ///
    /// Reserved names are recorded with an owner starting with "generated", and only those are
    /// stepped around; two names from the interface file that collide are an error.
    pub(crate) fn claim_field(
        &mut self,
        scope: &str,
        ident: &str,
        owner: &str,
    ) -> Result<String, NameError> {
        let mut chosen = ident.to_string();
        while let Some(first) = self.scopes.get(scope).and_then(|n| n.get(unraw(&chosen))) {
            if !first.starts_with("generated") {
                break;
            }
            chosen = format!("{}_", unraw(&chosen));
        }
        self.claim(scope, &chosen, owner)?;
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_case() {
        assert_eq!(snake("extraCelsius", "x").unwrap(), "extra_celsius");
        assert_eq!(snake("HTTPServer", "x").unwrap(), "http_server");
        assert_eq!(snake("temperature_changed", "x").unwrap(), "temperature_changed");
        assert_eq!(camel("temperatureChanged", "", "x").unwrap(), "TemperatureChanged");
        assert_eq!(camel("setpoint", "Wire", "x").unwrap(), "SetpointWire");
        assert_eq!(camel("HTTP_MODE", "", "x").unwrap(), "HttpMode");
        assert_eq!(shouty("maxTemp", "x").unwrap(), "MAX_TEMP");
        assert_eq!(prefixed_snake("get", "setPoint", "x").unwrap(), "get_set_point");
    }

    #[test]
    fn escapes_keywords() {
        assert_eq!(snake("type", "x").unwrap(), "r#type");
        assert_eq!(snake("where", "x").unwrap(), "r#where");
        assert_eq!(snake("gen", "x").unwrap(), "r#gen");
        assert_eq!(snake("self", "x").unwrap(), "self_");
        assert_eq!(snake("super", "x").unwrap(), "super_");
        assert_eq!(snake("crate", "x").unwrap(), "crate_");
        assert_eq!(camel("self", "", "x").unwrap(), "Self_");
        assert_eq!(camel("type", "", "x").unwrap(), "Type");
        assert_eq!(prefixed_snake("get", "type", "x").unwrap(), "get_type");
        assert_eq!(snake("union", "x").unwrap(), "union");
        assert_eq!(unraw("r#type"), "type");
    }

    #[test]
    fn rejects_invalid_identifiers() {
        let err = snake("2fast", "method `2fast`").unwrap_err();
        assert_eq!(
            err.to_string(),
            "method `2fast` cannot become an identifier in generated code: `2fast` starts with a digit"
        );
        assert!(snake("température", "field").is_err());
    }

    #[test]
    fn reports_collisions() {
        let mut table = NameTable::new();
        table.claim("the module's types", "FooBar", "struct `foo_bar`").unwrap();
        let err = table.claim("the module's types", "FooBar", "enum `FooBar`").unwrap_err();
        assert_eq!(
            err.to_string(),
            "struct `foo_bar` and enum `FooBar` would both be named `FooBar` in the module's \
             types; rename one of them in the interface file"
        );
        table.claim("another scope", "FooBar", "struct `foo_bar`").unwrap();
    }

    #[test]
    fn raw_and_plain_spellings_collide() {
        let mut table = NameTable::new();
        table.claim("s", "r#type", "field `type`").unwrap();
        assert!(table.claim("s", "type", "field `Type`").is_err());
    }

    #[test]
    fn resolves_by_suffix() {
        let mut table = NameTable::new();
        table.claim("types", "Alarm", "struct `Alarm`").unwrap();
        let candidates = ["Alarm".to_string(), "AlarmSignal".to_string()];
        assert_eq!(
            table.claim_first("types", &candidates, "signal `alarm`").unwrap(),
            "AlarmSignal"
        );
        assert!(table.claim_first("types", &candidates, "signal `ALARM`").is_err());

        assert_eq!(table.claim_numbered("types", "Alarm", "helper"), "Alarm2");
        assert_eq!(table.claim_numbered("types", "Alarm", "helper"), "Alarm3");

        table.claim("params", "ctx", "generated context parameter").unwrap();
        assert_eq!(table.claim_field("params", "ctx", "argument `ctx`").unwrap(), "ctx_");
        assert!(table.claim_field("params", "ctx_", "argument `ctx_`").is_err());
    }
}
