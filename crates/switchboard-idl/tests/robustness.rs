//! Property tests: no input, however strange, makes the parser panic or hang.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use switchboard_idl::{Loader, NoLoader, parse};

/// Serves every `$ref` with the same document, including references back to itself.
struct EchoLoader(String);

impl Loader for EchoLoader {
    fn load(&mut self, _path: &str) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

const KEYS: &[&str] = &[
    "stingeripc",
    "switchboard",
    "interface",
    "name",
    "version",
    "enums",
    "structures",
    "signals",
    "properties",
    "methods",
    "commands",
    "actions",
    "errors",
    "constants",
    "configuration",
    "values",
    "members",
    "payload",
    "arguments",
    "returnValues",
    "returnValue",
    "value",
    "type",
    "itemType",
    "valueType",
    "enumName",
    "structName",
    "optional",
    "readOnly",
    "format",
    "$ref",
    "timeout",
    "topics",
    "params",
    "goal",
    "result",
    "feedback",
    "enumVersion",
    "consumers",
];

const SCALARS: &[&str] = &[
    "0.1.1",
    "0.3.0",
    "\"0.1\"",
    "integer",
    "float",
    "struct",
    "enum",
    "array",
    "map",
    "true",
    "yes",
    "-1",
    "1e999",
    "null",
    "~",
    "\"#/enums/A\"",
    "\"x.yaml#/structures/B\"",
    "A",
    "B",
    "uint8",
    "int128",
    "[]",
    "{}",
    "\"\"",
    "'a b'",
    "&a x",
    "*a",
    "!!str 5",
];

/// Generates a YAML-ish document as indented block text.
fn doc() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(SCALARS).prop_map(|s| s.to_string());
    let tree = leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec((prop::sample::select(KEYS), inner.clone()), 0..6).prop_map(
                |entries| {
                    let body: Vec<String> =
                        entries.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    format!("{{{}}}", body.join(", "))
                }
            ),
            prop::collection::vec(inner, 0..5).prop_map(|items| format!("[{}]", items.join(", "))),
        ]
    });
    prop::collection::vec((prop::sample::select(KEYS), tree), 0..8).prop_map(|entries| {
        entries.into_iter().map(|(k, v)| format!("{k}: {v}\n")).collect::<String>()
    })
}

fn check(text: &str) {
    let start = Instant::now();
    let parsed = parse("fuzz.yaml", text, &mut EchoLoader(text.to_string()));
    let _ = parsed.render();
    let _ = parsed.to_json();
    if let Some(iface) = &parsed.interface {
        let _ = iface.description_hash();
        let _ = iface.description_json();
    }
    assert_eq!(parsed.interface.is_some(), !parsed.has_errors());
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn yamlish_documents_never_panic(text in doc()) {
        check(&text);
    }

    #[test]
    fn valid_prefix_with_random_tail_never_panics(text in doc()) {
        check(&format!("stingeripc: {{version: 0.1.1}}\ninterface: {{name: F, version: 1.0.0}}\n{text}"));
    }
}

#[test]
fn deep_and_large_inputs_are_rejected_quickly() {
    for text in [
        "[".repeat(100_000),
        "{a: ".repeat(10_000),
        format!("a:\n{}", (1..2000).map(|i| format!("{}- x\n", " ".repeat(i))).collect::<String>()),
        "- ".repeat(50_000) + "x",
        "x".repeat(5 * 1024 * 1024),
        "a: &a [1,2,3,4,5,6,7,8,9]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n".to_string(),
    ] {
        let start = Instant::now();
        let parsed = parse("big.yaml", &text, &mut NoLoader);
        assert!(parsed.has_errors());
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn self_referencing_files_terminate() {
    let text = "stingeripc: {version: 0.1.1}\ninterface: {name: F, version: 1.0.0}\nenums:\n  A: {$ref: \"same.yaml#/enums/A\"}\n  B: {$ref: \"#/enums/C\"}\n  C: {$ref: \"#/enums/B\"}\n";
    let parsed = parse("same.yaml", text, &mut EchoLoader(text.to_string()));
    assert!(parsed.diagnostics.iter().any(|d| d.code == "ref-cycle"), "{}", parsed.render());
}

#[test]
fn big_files_stay_fast() {
    let header = "stingeripc: {version: 0.1.1}\ninterface: {name: Big, version: 1.0.0}\n";
    // A long chain of structures that closes into one cycle.
    let n = 20_000;
    let mut chain = format!("{header}structures:\n");
    for i in 0..n {
        let next = (i + 1) % n;
        chain.push_str(&format!(
            "  S{i}:\n    members:\n      - {{name: next, type: struct, structName: S{next}}}\n"
        ));
    }
    // One long flow line with many entries.
    let values: Vec<String> = (0..100_000).map(|i| format!("{{name: v{i}}}")).collect();
    let flow = format!("{header}enums: {{E: {{values: [{}]}}}}\n", values.join(", "));
    // Many problems at once.
    let mut noisy = format!("{header}methods:\n");
    for i in 0..20_000 {
        noisy.push_str(&format!("  m{i}: {{argz: []}}\n"));
    }
    for (label, text) in [("chain", chain), ("flow", flow), ("noisy", noisy)] {
        assert!(text.len() < 4 * 1024 * 1024, "{label} is too big for the test");
        let start = Instant::now();
        let parsed = parse("big.yaml", &text, &mut NoLoader);
        let _ = parsed.render();
        let _ = parsed.to_json();
        assert!(start.elapsed() < Duration::from_secs(20), "{label} took {:?}", start.elapsed());
        assert!(parsed.diagnostics.len() <= 1001, "{label}");
    }
}

/// A file of one long line quoted that whole line in every diagnostic: 1,000 diagnostics on a
/// 4 MiB line rendered gigabytes. A quote is now a window of at most 200 characters (plus
/// `…` marks) around the span.
#[test]
fn diagnostics_on_a_long_line_quote_a_window_of_it() {
    let mut text =
        String::from("{stingeripc: {version: 0.1.1}, interface: {name: L, version: 1.0.0}");
    for i in 0..2_000 {
        text.push_str(&format!(", unknownSection{i}: {{}}"));
    }
    text.push_str(", padding: \"");
    text.push_str(&"x".repeat(200_000));
    text.push_str("\"}\n");
    let parsed = parse("long.yaml", &text, &mut NoLoader);
    assert!(parsed.diagnostics.len() > 100, "{} diagnostics", parsed.diagnostics.len());
    let rendered = parsed.render();
    assert!(
        rendered.len() < parsed.diagnostics.len() * 1_000,
        "{} bytes for {} diagnostics",
        rendered.len(),
        parsed.diagnostics.len()
    );
    assert!(rendered.contains("…, unknownSection"), "{}", &rendered[..2_000.min(rendered.len())]);
}
