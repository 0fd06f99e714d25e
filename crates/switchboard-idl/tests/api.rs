//! Checks the public API: several problems at once, JSON output, hashing and the model itself.

use switchboard_idl::{Dialect, IntFormat, NoLoader, Severity, Type, parse};

const MANY_PROBLEMS: &str = "\
stingeripc:
  version: 0.1.1
interface:
  name: Many
  version: 1.0.0
enumerations: {}
enums:
  Mode:
    values:
      - name: a
        value: 1
      - name: b
        value: 1
structures:
  Loop:
    members:
      - name: again
        type: struct
        structName: Loop
methods:
  go:
    arguments:
      - name: x
        type: integr
      - name: x
        type: string
      - name: m
        type: enum
        enumName: Mood
      - name: list
        type: array
properties:
  p:
    readOnly: yes-please
    values:
      - name: v
        type: boolean
";

#[test]
fn one_file_reports_every_problem() {
    let parsed = parse("many.yaml", MANY_PROBLEMS, &mut NoLoader);
    assert!(parsed.interface.is_none());
    let codes: Vec<&str> = parsed.diagnostics.iter().map(|d| d.code).collect();
    for expected in [
        "unknown-key",
        "duplicate-enum-value",
        "recursive-struct",
        "unknown-type",
        "duplicate-name",
        "unknown-enum",
        "reserved-name",
        "missing-item-type",
        "wrong-type",
    ] {
        assert!(codes.contains(&expected), "missing {expected} in {codes:?}\n{}", parsed.render());
    }
    let lines: Vec<u32> = parsed.diagnostics.iter().map(|d| d.span.line).collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted, "diagnostics are ordered by position");
    let typo = parsed.diagnostics.iter().find(|d| d.code == "unknown-type").expect("unknown-type");
    assert_eq!((typo.span.line, typo.span.column), (24, 15));
    assert_eq!(typo.help.as_deref(), Some("did you mean `integer`?"));
}

#[test]
fn rendering_matches_the_rustc_style() {
    let text = "stingeripc: {version: 0.1.1}\ninterface: {name: T, version: 1.0.0}\nmethods:\n  m:\n    arguments:\n      - name: a\n        type: integr\n";
    let parsed = parse("thermostat.yaml", text, &mut NoLoader);
    assert_eq!(
        parsed.render(),
        "error[unknown-type]: unknown type `integr`\n --> thermostat.yaml:7:15\n  |\n7 |         type: integr\n  |               ^^^^^^ not a type\n  = help: did you mean `integer`?\n"
    );
}

#[test]
fn json_output_has_positions() {
    let text = "stingeripc: {version: 0.1.1}\ninterface: {name: T, version: 1.0.0}\nmethods:\n  m:\n    arguments:\n      - name: a\n        type: integr\n";
    let parsed = parse("t.yaml", text, &mut NoLoader);
    let json = parsed.to_json();
    let first = &json[0];
    assert_eq!(first["severity"], "error");
    assert_eq!(first["code"], "unknown-type");
    assert_eq!(first["file"], "t.yaml");
    assert_eq!(first["line"], 7);
    assert_eq!(first["column"], 15);
    assert_eq!(first["end_line"], 7);
    assert_eq!(first["end_column"], 21);
    assert_eq!(first["label"], "not a type");
    assert_eq!(first["help"], "did you mean `integer`?");
}

#[test]
fn documentation_does_not_change_the_hash() {
    let a = "stingeripc: {version: 0.1.1}\ninterface: {name: T, version: 1.0.0, summary: one}\nsignals:\n  s:\n    documentation: first\n    payload:\n      - {name: a, type: integer, description: x}\n";
    let b = "stingeripc: {version: 0.3.0}\ninterface: {name: T, version: 1.0.0, title: Other}\nsignals:\n  s:\n    values:\n      - {name: a, type: integer}\n";
    let c = "stingeripc: {version: 0.1.1}\ninterface: {name: T, version: 1.0.0}\nsignals:\n  s:\n    payload:\n      - {name: a, type: integer, format: int32}\n";
    let ha = parse("a.yaml", a, &mut NoLoader).interface.expect("a").description_hash();
    let hb = parse("b.yaml", b, &mut NoLoader).interface.expect("b").description_hash();
    let hc = parse("c.yaml", c, &mut NoLoader).interface.expect("c").description_hash();
    assert_eq!(ha, hb);
    assert_ne!(ha, hc);
    assert_eq!(ha.len(), "sha256:".len() + 64);
}

#[test]
fn model_folds_optional_and_formats() {
    let text = "switchboard: {version: \"0.1\"}\ninterface: {name: T, version: 1.0.0}\nmethods:\n  m:\n    arguments:\n      - name: xs\n        type: array\n        optional: true\n        itemType: {type: integer, format: uint16, optional: true}\n";
    let parsed = parse("t.yaml", text, &mut NoLoader);
    let iface = parsed.interface.expect("valid");
    assert_eq!(iface.format.dialect, Dialect::V0_1);
    assert_eq!(iface.format.version, "0.1");
    let ty = &iface.methods[0].arguments[0].ty;
    let expected = Type::Optional {
        inner: Box::new(Type::Array {
            item: Box::new(Type::Optional {
                inner: Box::new(Type::Integer { format: IntFormat::Uint16 }),
            }),
        }),
    };
    assert_eq!(ty, &expected);
}

#[test]
fn warnings_do_not_block_the_model() {
    let text = "stingeripc: {version: 0.1.1}\ninterface: {name: T, version: \"1.0\"}\nx-extra: 1\n";
    let parsed = parse("t.yaml", text, &mut NoLoader);
    assert!(!parsed.has_errors());
    assert!(parsed.interface.is_some());
    assert!(parsed.diagnostics.iter().all(|d| d.severity == Severity::Warning));
    assert_eq!(parsed.diagnostics.len(), 2, "{}", parsed.render());
}

#[test]
fn no_loader_reports_refs_at_the_ref_line() {
    let text = "stingeripc: {version: 0.1.1}\ninterface: {name: T, version: 1.0.0}\nenums:\n  E:\n    $ref: \"other.yaml#/enums/E\"\n";
    let parsed = parse("dir/t.yaml", text, &mut NoLoader);
    let d = parsed.diagnostics.first().expect("a diagnostic");
    assert_eq!(d.code, "unresolved-ref");
    assert_eq!(d.span.line, 5);
    assert!(d.message.contains("dir/other.yaml"), "{}", d.message);
}
