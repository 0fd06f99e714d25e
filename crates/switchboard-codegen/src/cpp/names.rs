//! Decides every C++ identifier the generator emits: one convention and its keyword escapes.
//!
//! Types (enums, structures, errors, the generated classes) are `PascalCase`; everything else
//! (namespaces, functions, members, parameters, enumerators, constants) is `snake_case`. A name
//! that is a C++ keyword, an alternative token, or a standard macro a header may define gets a
//! trailing underscore (`class_`, `and_`, `assert_`). Collisions are caught with the shared
//! [`NameTable`](crate::names::NameTable).

use heck::{ToSnakeCase, ToUpperCamelCase};

use crate::names::NameError;

/// C++20's keywords and alternative tokens, GNU's (`typeof`, and the `unix` and `linux` macros
/// of `-std=gnu++20`), the standard library's macros that a field or function name would meet
/// (`assert`, `errno`, …), and the namespaces generated code names (`std`, `switchboard`).
pub(crate) const KEYWORDS: &[&str] = &[
    "alignas",
    "alignof",
    "and",
    "and_eq",
    "asm",
    "auto",
    "bitand",
    "bitor",
    "bool",
    "break",
    "case",
    "catch",
    "char",
    "char8_t",
    "char16_t",
    "char32_t",
    "class",
    "co_await",
    "co_return",
    "co_yield",
    "compl",
    "concept",
    "const",
    "const_cast",
    "consteval",
    "constexpr",
    "constinit",
    "continue",
    "decltype",
    "default",
    "delete",
    "do",
    "double",
    "dynamic_cast",
    "else",
    "enum",
    "explicit",
    "export",
    "extern",
    "false",
    "float",
    "for",
    "friend",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "not_eq",
    "nullptr",
    "operator",
    "or",
    "or_eq",
    "private",
    "protected",
    "public",
    "register",
    "reinterpret_cast",
    "requires",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "static_assert",
    "static_cast",
    "struct",
    "switch",
    "template",
    "this",
    "thread_local",
    "throw",
    "true",
    "try",
    "typedef",
    "typeid",
    "typename",
    "union",
    "unsigned",
    "using",
    "virtual",
    "void",
    "volatile",
    "wchar_t",
    "while",
    "xor",
    "xor_eq",
    "final",
    "override",
    "import",
    "module",
    "assert",
    "errno",
    "stdin",
    "stdout",
    "stderr",
    "EOF",
    "NULL",
    "offsetof",
    "setjmp",
    "major",
    "minor",
    "unix",
    "linux",
    "typeof",
    "std",
    "switchboard",
];

/// Converts `name` to `snake_case` and escapes keywords.
pub(crate) fn snake(name: &str, what: &str) -> Result<String, NameError> {
    escape(name.to_snake_case(), what)
}

/// `prefix_<snake name>`, e.g. `get_setpoint`.
pub(crate) fn prefixed_snake(prefix: &str, name: &str, what: &str) -> Result<String, NameError> {
    escape(format!("{prefix}_{}", name.to_snake_case()), what)
}

/// Converts `name` to `PascalCase` and appends `suffix`.
pub(crate) fn pascal(name: &str, suffix: &str, what: &str) -> Result<String, NameError> {
    escape(format!("{}{suffix}", name.to_upper_camel_case()), what)
}

fn escape(ident: String, what: &str) -> Result<String, NameError> {
    let invalid =
        |reason| NameError::Invalid { what: what.to_string(), ident: ident.clone(), reason };
    let mut chars = ident.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        Some(c) if c.is_ascii_digit() => return Err(invalid("starts with a digit")),
        Some('_') | None => {
            return Err(invalid(
                "is empty or starts with `_`, which C++ reserves for the implementation",
            ));
        }
        _ => return Err(invalid("contains characters other than ASCII letters, digits and `_`")),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid("contains characters other than ASCII letters, digits and `_`"));
    }
    if KEYWORDS.contains(&ident.as_str()) { Ok(format!("{ident}_")) } else { Ok(ident) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_convention_and_escapes() {
        assert_eq!(snake("extraCelsius", "x").unwrap(), "extra_celsius");
        assert_eq!(snake("class", "x").unwrap(), "class_");
        assert_eq!(snake("and", "x").unwrap(), "and_");
        assert_eq!(snake("assert", "x").unwrap(), "assert_");
        assert_eq!(snake("self", "x").unwrap(), "self");
        assert_eq!(pascal("temperatureChanged", "", "x").unwrap(), "TemperatureChanged");
        assert_eq!(pascal("getStatus", "Reply", "x").unwrap(), "GetStatusReply");
        assert_eq!(prefixed_snake("get", "setPoint", "x").unwrap(), "get_set_point");
        assert!(snake("2fast", "x").is_err());
    }
}
