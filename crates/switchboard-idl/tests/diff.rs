//! `diff::compare`: one interface pair per compatibility rule, snapshotted, and properties that
//! hold for generated interfaces (a file against itself, a change against its reverse).

use std::path::Path;

use proptest::prelude::*;
use switchboard_idl::{
    Interface, NoLoader,
    diff::{self, Change, ChangeKind, VersionCheck},
    parse,
};

fn load(text: &str, name: &str) -> Interface {
    let parsed = parse(name, text, &mut NoLoader);
    match parsed.interface {
        Some(iface) if parsed.diagnostics.is_empty() => iface,
        _ => panic!("{name} is not clean:\n{}\n{text}", parsed.render()),
    }
}

/// The changes, one line each, then the bump they need and the version check.
fn report(old: &Interface, new: &Interface) -> String {
    let changes = diff::compare(old, new);
    let mut out = String::new();
    for c in &changes {
        out.push_str(&format!(
            "{} [{}] clients: {}, servers: {}, bump: {}\n    {}\n",
            c.path,
            serde_json::to_value(c.kind).unwrap().as_str().unwrap(),
            c.clients.as_str(),
            c.servers.as_str(),
            c.bump.as_str(),
            c.message
        ));
    }
    let needed = diff::required_bump(&changes).map_or("none", |b| b.as_str());
    out.push_str(&format!("needs: {needed}; {} -> {}: ", old.version, new.version));
    out.push_str(&match diff::check_version(old, new, &changes) {
        VersionCheck::Ok => "ok".to_owned(),
        VersionCheck::Missing { required, declared } => format!(
            "missing: needs {}, is {}",
            required.as_str(),
            declared.map_or("no bump", |d| d.as_str())
        ),
        VersionCheck::Unreadable { version } => format!("unreadable version {version}"),
    });
    out.push('\n');
    out
}

/// Every pair under `tests/data/diff/RULE/{old,new}.yaml`, snapshotted as `diff__RULE`.
#[test]
fn every_rule_has_a_pair_and_a_snapshot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/diff");
    let mut rules: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    rules.sort();
    assert!(rules.len() >= 50, "{rules:?}");
    for rule in rules {
        let read = |file: &str| std::fs::read_to_string(root.join(&rule).join(file)).unwrap();
        let old = load(&read("old.yaml"), &format!("{rule}/old.yaml"));
        let new = load(&read("new.yaml"), &format!("{rule}/new.yaml"));
        insta::assert_snapshot!(rule.clone(), report(&old, &new));
        // Every rule pair also holds the reverse property.
        assert_mirrored(&diff::compare(&old, &new), &diff::compare(&new, &old));
    }
}

/// Is `changes` (old → new) the mirror of `reverse` (new → old)? Each change appears reversed,
/// at the same place, with the two sides' verdicts swapped: what is safe for old clients going
/// forward is safe for old servers going back. Renamed enum values are named by their new name
/// going forward and by their old name going back, so they are compared by count only.
fn assert_mirrored(changes: &[Change], reverse: &[Change]) {
    let key = |c: &Change, swap: bool| {
        let (a, b) = if swap { (c.servers, c.clients) } else { (c.clients, c.servers) };
        (c.path.clone(), a, b)
    };
    fn renamed(cs: &[Change]) -> impl Iterator<Item = &Change> {
        cs.iter().filter(|c| c.kind == ChangeKind::EnumValueRenamed)
    }
    let mut forward: Vec<_> = changes
        .iter()
        .filter(|c| c.kind != ChangeKind::EnumValueRenamed)
        .map(|c| key(c, false))
        .collect();
    let mut backward: Vec<_> = reverse
        .iter()
        .filter(|c| c.kind != ChangeKind::EnumValueRenamed)
        .map(|c| key(c, true))
        .collect();
    forward.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    backward.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(forward, backward);
    assert_eq!(renamed(changes).count(), renamed(reverse).count());
    assert!(renamed(changes).all(|c| c.clients == diff::Compat::Safe));
}

#[test]
fn the_examples_against_themselves_have_no_changes() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for rel in ["thermostat/thermostat.yaml", "interfaces/keywords.yaml", "interfaces/jobs.yaml"] {
        let text = std::fs::read_to_string(examples.join(rel)).unwrap();
        let iface = load(&text, rel);
        assert_eq!(diff::compare(&iface, &iface), vec![], "{rel}");
    }
}

#[test]
fn versions_read_like_cargo() {
    use diff::{Bump, Version};
    let v = |s| Version::parse(s).unwrap();
    assert_eq!(v("1.2.3").bump_to(v("2.0.0")), Some(Bump::Major));
    assert_eq!(v("1.2.3").bump_to(v("1.3.0")), Some(Bump::Minor));
    assert_eq!(v("1.2.3").bump_to(v("1.2.4")), Some(Bump::Patch));
    assert_eq!(v("1.2.3").bump_to(v("1.2.3")), None);
    assert_eq!(v("1.2.3").bump_to(v("1.2.0")), None);
    assert_eq!(v("0.3.1").bump_to(v("0.4.0")), Some(Bump::Major));
    assert_eq!(v("0.3.1").bump_to(v("0.3.2")), Some(Bump::Minor));
    assert_eq!(v("0.0.1").bump_to(v("0.0.2")), Some(Bump::Major));
    assert_eq!(v("1"), v("1.0.0"));
    for bad in ["", "1.2.3.4", "v1", "1..2", "1.2.x", "-1"] {
        assert_eq!(Version::parse(bad), None, "{bad}");
    }
}

// ---- generated interfaces ----

/// Types a generated field may have; `E` and `S` are always defined.
const TYPES: &[&str] = &[
    "{type: integer, format: int32}",
    "{type: integer, format: int64}",
    "{type: integer, format: uint8}",
    "{type: float}",
    "{type: float, format: float32}",
    "{type: string}",
    "{type: datetime}",
    "{type: boolean}",
    "{type: enum, enumName: E}",
    "{type: struct, structName: S}",
    "{type: array, itemType: {type: integer, format: int32}}",
    "{type: array, itemType: {type: integer, format: int64, optional: true}}",
    "{type: map, valueType: {type: enum, enumName: E}}",
    "{type: string, optional: true}",
    "{type: enum, enumName: E, optional: true}",
    "{type: integer, format: int32, optional: true}",
];

/// A list of fields named from a small pool, so two generated lists share names.
fn fields() -> impl Strategy<Value = String> {
    prop::collection::btree_map(0..4usize, 0..TYPES.len(), 0..4).prop_map(|m| {
        let items: Vec<String> = m
            .into_iter()
            .map(|(name, ty)| {
                let ty = TYPES[ty];
                format!("{{name: f{name}, {}", &ty[1..])
            })
            .collect();
        format!("[{}]", items.join(", "))
    })
}

/// Fields a structure may hold: anything but itself.
fn struct_fields() -> impl Strategy<Value = String> {
    fields().prop_map(|f| f.replace("type: struct, structName: S", "type: string"))
}

fn interface() -> impl Strategy<Value = String> {
    let enum_values = prop::collection::btree_map(0..4usize, 0..5i64, 1..4).prop_map(|m| {
        // Numbers must be unique within the enum.
        let mut used = std::collections::BTreeSet::new();
        let values: Vec<String> = m
            .into_iter()
            .filter(|(_, n)| used.insert(*n))
            .map(|(name, n)| format!("{{name: v{name}, value: {n}}}"))
            .collect();
        format!("[{}]", values.join(", "))
    });
    let method = (fields(), fields(), any::<bool>(), prop::option::of(1u8..3));
    let property = (fields(), any::<bool>());
    (
        0u8..3,
        enum_values,
        struct_fields(),
        fields(),
        prop::collection::btree_map(0..3usize, method, 0..3),
        prop::collection::btree_map(0..2usize, fields(), 0..2),
        prop::collection::btree_map(0..2usize, property, 0..2),
        prop::collection::btree_map(0..2usize, (fields(), fields(), fields()), 0..2),
        prop::option::of(0u8..2),
    )
        .prop_map(
            |(minor, values, s, error, methods, signals, props, actions, commands)| {
                let mut y = format!(
                    "switchboard: {{version: \"0.1\"}}\ninterface: {{name: Gen, version: 1.{minor}.0}}\n\
                     enums:\n  E: {{values: {values}}}\nstructures:\n  S: {{members: {s}}}\n\
                     errors:\n  Err: {{values: {error}}}\nmethods:\n"
                );
                if methods.is_empty() {
                    y = y.replace("methods:\n", "");
                }
                for (i, (args, returns, errors, timeout)) in &methods {
                    y.push_str(&format!("  m{i}: {{arguments: {args}, returnValues: {returns}"));
                    if *errors {
                        y.push_str(", errors: [Err]");
                    }
                    if let Some(t) = timeout {
                        y.push_str(&format!(", timeout: {t}"));
                    }
                    y.push_str("}\n");
                }
                if !signals.is_empty() {
                    y.push_str("signals:\n");
                    for (i, payload) in &signals {
                        y.push_str(&format!("  s{i}: {{payload: {payload}}}\n"));
                    }
                }
                // A 0.1.x property needs at least one value.
                let props: Vec<_> = props.iter().filter(|(_, (v, _))| v != "[]").collect();
                if !props.is_empty() {
                    y.push_str("properties:\n");
                    for (i, (values, read_only)) in props {
                        y.push_str(&format!("  p{i}: {{readOnly: {read_only}, values: {values}}}\n"));
                    }
                }
                if !actions.is_empty() {
                    y.push_str("actions:\n");
                    for (i, (goal, feedback, result)) in &actions {
                        y.push_str(&format!(
                            "  a{i}: {{goal: {goal}, feedback: {feedback}, result: {result}}}\n"
                        ));
                    }
                }
                if let Some(c) = commands {
                    y.push_str(&format!("commands:\n  c{c}: {{arguments: []}}\n"));
                }
                y
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `diff A A` reports nothing.
    #[test]
    fn an_interface_against_itself_has_no_changes(text in interface()) {
        let iface = load(&text, "a.yaml");
        prop_assert_eq!(diff::compare(&iface, &iface), vec![]);
        prop_assert_eq!(diff::check_version(&iface, &iface, &[]), VersionCheck::Ok);
    }

    /// A change and its reverse are classified consistently: adding X is safe for one side
    /// exactly when removing X is safe for the other, and so for every other change.
    #[test]
    fn a_change_and_its_reverse_mirror_each_other(a in interface(), b in interface()) {
        let (a, b) = (load(&a, "a.yaml"), load(&b, "b.yaml"));
        assert_mirrored(&diff::compare(&a, &b), &diff::compare(&b, &a));
    }

    /// Anything that breaks existing clients needs a major version.
    #[test]
    fn breaking_clients_needs_a_major_bump(a in interface(), b in interface()) {
        let (a, b) = (load(&a, "a.yaml"), load(&b, "b.yaml"));
        for change in diff::compare(&a, &b) {
            if change.clients == diff::Compat::Breaking {
                prop_assert_eq!(change.bump, diff::Bump::Major, "{:?}", change);
            }
        }
    }
}
