//! Unit tests for the loader, the checker and the renderers.

use crate::diagnostic::did_you_mean;
use crate::refs::join_path;
use crate::source::FileId;
use crate::yaml::{self, Value};
use crate::{NoLoader, parse};

#[test]
fn paths_join_relative_to_the_referencing_file() {
    assert_eq!(join_path("a/b/main.yaml", "common.yaml"), "a/b/common.yaml");
    assert_eq!(join_path("a/b/main.yaml", "../c.yaml"), "a/c.yaml");
    assert_eq!(join_path("main.yaml", "./x/y.yaml"), "x/y.yaml");
    assert_eq!(join_path("main.yaml", "../up.yaml"), "../up.yaml");
    assert_eq!(join_path("/abs/main.yaml", "/etc/t.yaml"), "/etc/t.yaml");
    assert_eq!(join_path("/abs/main.yaml", "../../t.yaml"), "/t.yaml");
}

#[test]
fn suggestions_need_to_be_close() {
    assert_eq!(did_you_mean("integr", &["integer", "float"]), Some("integer"));
    assert_eq!(did_you_mean("readonly", &["readOnly", "values"]), Some("readOnly"));
    assert_eq!(did_you_mean("xyz", &["integer", "float"]), None);
}

#[test]
fn spans_count_characters_not_bytes() {
    let text = "a: \"é\"\nbé: [1, 2]\n";
    let root = yaml::load(text, FileId(0)).expect("valid yaml");
    let Value::Map(entries) = &root.value else { panic!("not a map") };
    let (key, value) = &entries[1];
    assert_eq!((key.span.line, key.span.column), (2, 1));
    assert_eq!(&text[key.span.start..key.span.end], "bé");
    assert_eq!((value.span.line, value.span.column), (2, 5));
    assert_eq!(&text[value.span.start..value.span.end], "[1, 2]");
}

#[test]
fn numbers_keep_their_source_text() {
    let root = yaml::load("v: 1.0\nw: 0.1\n", FileId(0)).expect("valid yaml");
    assert_eq!(root.get("v").and_then(|n| n.scalar_text()), Some("1.0"));
    assert_eq!(root.get("w").and_then(|n| n.scalar_text()), Some("0.1"));
}

#[test]
fn enum_values_are_numbered_from_the_previous_maximum() {
    let text = "stingeripc: {version: 0.1.1}\ninterface: {name: T, version: 1.0.0}\nenums:\n  E:\n    values:\n      - {name: a}\n      - {name: b, value: 0}\n      - {name: c, value: 10}\n      - {name: d}\n      - {name: e, value: 5}\n      - {name: f}\n";
    let parsed = parse("t.yaml", text, &mut NoLoader);
    let iface = parsed.interface.expect("valid");
    let values: Vec<i64> = iface.enums[0].values.iter().map(|v| v.value).collect();
    assert_eq!(values, vec![1, 0, 10, 11, 5, 12]);
}

#[test]
fn the_0_3_dialect_maps_single_values_to_one_field() {
    let text = "stingeripc: {version: 0.3.0}\ninterface: {name: T, version: 1.0.0}\nproperties:\n  p:\n    value: {name: v, type: boolean}\nmethods:\n  m:\n    timeout: 2\n    returnValue: {name: r, type: string}\n";
    let parsed = parse("t.yaml", text, &mut NoLoader);
    let iface = parsed.interface.expect("valid");
    assert_eq!(iface.properties[0].fields.len(), 1);
    assert_eq!(iface.methods[0].returns[0].name, "r");
    assert!(iface.methods[0].arguments.is_empty());
    assert_eq!(iface.methods[0].timeout_secs, Some(2.0));
}

#[test]
fn recursion_through_optional_and_collections_is_allowed() {
    let text = "stingeripc: {version: 0.1.1}\ninterface: {name: T, version: 1.0.0}\nstructures:\n  N:\n    members:\n      - {name: next, type: struct, structName: N, optional: true}\n      - {name: kids, type: array, itemType: {type: struct, structName: N}}\n      - {name: byName, type: map, valueType: {type: struct, structName: N}}\n";
    let parsed = parse("t.yaml", text, &mut NoLoader);
    assert!(!parsed.has_errors(), "{}", parsed.render());
}

#[test]
fn empty_and_odd_documents_do_not_panic() {
    for text in [
        "",
        "---",
        "~",
        "[]",
        "a",
        "? [a]\n: b",
        "---\na: 1\n---\nb: 2\n",
        "\u{feff}a: 1",
        "a: *nope",
    ] {
        let parsed = parse("t.yaml", text, &mut NoLoader);
        assert!(parsed.has_errors(), "{text:?}");
        let _ = parsed.render();
    }
}

#[test]
fn warnings_render_with_their_severity() {
    let text = "stingeripc: {version: 0.1.1}\ninterface: {name: T, version: one}\n";
    let parsed = parse("t.yaml", text, &mut NoLoader);
    assert!(parsed.render().starts_with("warning[non-semver-version]"));
}

/// An interface file with `unknown` sections it does not know, one diagnostic each.
fn with_unknown_sections(unknown: usize) -> String {
    let mut text =
        String::from("stingeripc: {version: 0.1.1}\ninterface: {name: Demo, version: 1.0.0}\n");
    for i in 0..unknown {
        text.push_str(&format!("extra{i}: 1\n"));
    }
    text
}

#[test]
fn diagnostics_past_the_limit_are_counted_in_one() {
    let last = |unknown| {
        let parsed = parse("demo.yaml", &with_unknown_sections(unknown), &mut NoLoader);
        assert_eq!(parsed.diagnostics.len(), crate::MAX_DIAGNOSTICS + 1);
        parsed.diagnostics.last().map(|d| d.message.clone()).unwrap_or_default()
    };
    assert_eq!(last(crate::MAX_DIAGNOSTICS + 1), "1 more diagnostic not shown after this one");
    assert_eq!(last(crate::MAX_DIAGNOSTICS + 2), "2 more diagnostics not shown after this one");
}

#[test]
fn brackets_inside_quoted_or_plain_text_do_not_count_as_nesting() {
    let brackets = "[".repeat(65);
    for title in [format!("\"{brackets}\""), format!("'{brackets}'")] {
        let text = format!(
            "stingeripc: {{version: 0.1.1}}\ninterface: {{name: T, version: 1.0.0, documentation: {title}}}\n"
        );
        let parsed = parse("t.yaml", &text, &mut NoLoader);
        assert!(!parsed.has_errors(), "{title}: {}", parsed.render());
    }
    // In block context a quote or bracket only starts something at the beginning of a value.
    for title in [format!("\"{brackets}\""), format!("'{brackets}'"), format!("a{brackets}")] {
        let text = format!(
            "stingeripc: {{version: 0.1.1}}\ninterface:\n  name: T\n  version: 1.0.0\n  documentation: {title}\n"
        );
        let parsed = parse("t.yaml", &text, &mut NoLoader);
        assert!(!parsed.has_errors(), "{title}: {}", parsed.render());
    }
}

/// Found by the `idl_check` fuzz target: `version:` with no value gave no diagnostic and no
/// model, so `check` passed a file that `generate` refused without saying why.
#[test]
fn an_empty_interface_name_or_version_is_missing() {
    for (text, key) in [
        ("stingeripc: {version: 0.1.1}\ninterface:\n  name: Demo\n  version:\n", "version"),
        ("stingeripc: {version: 0.1.1}\ninterface:\n  name:\n  version: 1.0.0\n", "name"),
    ] {
        let parsed = parse("demo.yaml", text, &mut NoLoader);
        assert!(parsed.interface.is_none());
        assert!(parsed.has_errors(), "no error for an empty `{key}`");
        let wanted = format!("`interface` needs a `{key}`");
        assert!(parsed.diagnostics.iter().any(|d| d.message == wanted), "{}", parsed.render());
    }
}

#[test]
fn a_value_with_an_unreadable_tag_is_an_error_not_an_absent_value() {
    // Found by the `idl_check` fuzz target: `!!foo 1` and `!!int abc` load as no value, which the
    // checker took for an absent one, so a file of only that passed `check` with no model.
    let method = "stingeripc: {version: 0.1.1}\ninterface: {name: Demo, version: 1.0.0}\n\
                  methods:\n  m:\n    arguments: !!foo 1\n";
    for text in ["!!010.7pe'0", "!!int abc", "!!foo 1", method] {
        let parsed = parse("demo.yaml", text, &mut NoLoader);
        assert!(parsed.interface.is_none(), "a model for {text:?}");
        assert!(
            parsed.diagnostics.iter().any(|d| d.code == "bad-tag"),
            "no bad-tag for {text:?}: {}",
            parsed.render()
        );
    }
}
