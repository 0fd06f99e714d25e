//! Golden tests: the generated Rust for every interface in the corpus, as insta snapshots.

use std::path::{Path, PathBuf};

/// The repository root, two levels above this crate.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `*.yaml` in `dir`, sorted, or nothing when `dir` does not exist.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// The corpus: the example interfaces, the thermostat, this crate's corner cases and StingerIPC's
/// complete example.
fn corpus() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = yaml_files(&root.join("examples/interfaces"));
    files.push(root.join("examples/thermostat/thermostat.yaml"));
    files.extend(yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")));
    files.push(root.join("crates/switchboard-idl/tests/data/valid/stinger_complete.yaml"));
    files.push(root.join("tests/interfaces/prelude_names.yaml"));
    files
}

/// Generates Rust for `path`, panicking with the diagnostics if it does not parse.
fn generate(path: &Path) -> String {
    let loaded = switchboard_codegen::load_file(path).expect("interface file is readable");
    let Some(iface) = loaded.parsed.interface.as_ref() else {
        panic!("{} has errors:\n{}", path.display(), loaded.parsed.render());
    };
    let name = switchboard_codegen::source_name(path);
    switchboard_codegen::rust::generate(iface, &name).expect("code generation succeeds")
}

#[test]
fn rust_output_matches_snapshots() {
    let files = corpus();
    assert!(!files.is_empty(), "the corpus is empty");
    for path in files {
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 file name");
        let output = generate(&path);
        insta::assert_snapshot!(format!("rust__{stem}"), output);
    }
}

/// Parses `yaml` (the body after the `stingeripc` and `interface` headers) and generates Rust.
fn generate_inline(yaml: &str) -> Result<String, switchboard_codegen::GenerateError> {
    let text = format!(
        "stingeripc:\n  version: 0.1.1\ninterface:\n  name: Thermostat\n  version: 1.0.0\n{yaml}"
    );
    let parsed = switchboard_idl::parse("inline.yaml", &text, &mut switchboard_idl::NoLoader);
    let Some(iface) = parsed.interface.as_ref() else {
        panic!("inline interface has errors:\n{}", parsed.render());
    };
    switchboard_codegen::rust::generate(iface, "inline.yaml")
}

#[test]
fn method_colliding_with_property_getter_is_an_error() {
    let err = generate_inline(
        "properties:\n  setpoint:\n    values:\n      - {name: celsius, type: float}\n\
         methods:\n  getSetpoint:\n    arguments: []\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the getter of property `setpoint` and method `getSetpoint` would both be named \
         `get_setpoint` in the functions of `ThermostatClient`; rename one of them in the \
         interface file"
    );
}

#[test]
fn user_type_named_like_a_generated_one_is_an_error() {
    let err = generate_inline(
        "structures:\n  ThermostatClient:\n    members:\n      - {name: x, type: integer}\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the generated `ThermostatClient` and struct `ThermostatClient` would both be named \
         `ThermostatClient` in the generated module's types; rename one of them in the \
         interface file"
    );
}

/// A user type may take a prelude name; generated code then names Rust's item through a private
/// alias, and an alias the interface takes too gets a number.
#[test]
fn a_user_type_named_like_the_prelude_gets_the_name_and_the_prelude_an_alias() {
    let code = generate_inline(
        "structures:\n  option:\n    members:\n      - {name: x, type: integer}\n\
         \x20 StdOption:\n    members:\n      - {name: o, type: struct, structName: option, optional: true}\n",
    )
    .unwrap();
    assert!(
        code.contains(
            "\nuse switchboard::__private as sb;\nuse std::option::Option as StdOption2;\n"
        ),
        "{code}"
    );
    assert!(code.contains("pub struct Option {"), "{code}");
    assert!(code.contains("    pub o: StdOption2<Option>,"), "{code}");
    assert!(code.contains("pub fn with_o(mut self, o: Option) -> Self {"), "{code}");
    assert!(!code.contains("std::result::Result"), "only the items taken get an alias: {code}");
}

#[test]
fn signal_payload_colliding_with_a_struct_gets_a_suffix() {
    let code = generate_inline(
        "structures:\n  alarm:\n    members:\n      - {name: x, type: integer}\n\
         signals:\n  alarm:\n    payload:\n      - {name: level, type: integer}\n",
    )
    .unwrap();
    assert!(code.contains("pub struct Alarm {"), "{code}");
    assert!(code.contains("pub struct AlarmSignal {"), "{code}");
    assert!(code.contains("switchboard::client::SignalStream<AlarmSignal>,"), "{code}");
}

#[test]
fn argument_named_ctx_steps_around_the_context_parameter() {
    let code =
        generate_inline("methods:\n  run:\n    arguments:\n      - {name: ctx, type: string}\n")
            .unwrap();
    assert!(
        code.contains("ctx: &switchboard::server::CallContext,\n        ctx_: String,"),
        "{code}"
    );
    assert!(code.contains("#[serde(rename = \"ctx\")]\n    ctx_: String,"), "{code}");
}

#[test]
fn nested_adapters_are_composed() {
    let code = generate_inline(
        "structures:\n  Blobs:\n    members:\n\
         \x20     - {name: maybe, type: array, optional: true, itemType: {type: binary}}\n\
         \x20     - {name: stamps, type: map, valueType: {type: datetime}}\n\
         \x20     - {name: plain, type: array, itemType: {type: integer}}\n",
    )
    .unwrap();
    assert!(
        code.contains("#[serde(default, with = \"sb::As::<Option<Vec<sb::Base64>>>\")]"),
        "{code}"
    );
    assert!(
        code.contains("with = \"sb::As::<std::collections::BTreeMap<sb::Same, sb::IsoDateTime>>\""),
        "{code}"
    );
    assert!(code.contains("    pub plain: Vec<i64>,"), "{code}");
}

/// The server reads a property with a getter named like the property (Rust's C-GETTER); when
/// that name is taken, by a fixed function or `Clone`, it falls back to `get_…`.
#[test]
fn server_getters_are_named_after_their_property() {
    let code = generate_inline(
        "properties:\n  setpoint:\n    values:\n      - {name: celsius, type: float}\n\
         \x20 shutdown:\n    values:\n      - {name: at, type: integer}\n\
         \x20 clone:\n    values:\n      - {name: copies, type: integer}\n",
    )
    .unwrap();
    assert!(code.contains("    pub fn setpoint(&self) -> f64 {"), "{code}");
    assert!(code.contains("    pub fn get_shutdown(&self) -> i64 {"), "{code}");
    assert!(code.contains("    pub fn get_clone(&self) -> i64 {"), "{code}");
    assert!(code.contains("    pub async fn get_setpoint(&self)"), "the client still asks: {code}");
}

/// An interface without properties has no properties struct to fill in: `serve` takes none.
#[test]
fn serve_takes_no_properties_when_there_are_none() {
    let code = generate_inline("methods:\n  ping:\n    arguments: []\n").unwrap();
    assert!(!code.contains("ThermostatProperties"), "{code}");
    assert!(
        code.contains(
            "    pub async fn serve<T: Thermostat>(\n        endpoint: &switchboard::Endpoint,\n        \
             handler: T,\n    ) -> Result<Self, switchboard::error::TransportError> {"
        ),
        "{code}"
    );
}

/// Public structs with optional fields get `Default` (all optional) or `new` with the required
/// fields, plus a `with_…` setter per optional field; structs without optional fields get neither.
#[test]
fn optional_fields_get_constructors_and_setters() {
    let code = generate_inline(
        "structures:\n\
         \x20 Loose:\n    members:\n      - {name: note, type: string, optional: true}\n\
         \x20 Mixed:\n    members:\n      - {name: id, type: integer}\n\
         \x20     - {name: label, type: string, optional: true}\n\
         \x20 Strict:\n    members:\n      - {name: id, type: integer}\n\
         properties:\n  limit:\n    values:\n      - {name: max, type: integer, optional: true}\n",
    )
    .unwrap();
    let derive = "#[derive(Debug, Clone, PartialEq, Default, sb::serde::Serialize, \
                  sb::serde::Deserialize)]\n#[serde(crate = \"sb::serde\")]\n";
    assert!(code.contains(&format!("{derive}pub struct Loose {{")), "{code}");
    assert!(code.contains("    pub fn with_note(mut self, note: String) -> Self {"), "{code}");
    assert!(!code.contains(&format!("{derive}pub struct Mixed {{")), "{code}");
    assert!(code.contains("    pub fn new(id: i64) -> Self {\n        Self { id, label: None }"));
    assert!(code.contains("    pub fn with_label(mut self, label: String) -> Self {"), "{code}");
    assert!(!code.contains("impl Strict {"), "{code}");
    assert!(!code.contains(&format!("{derive}pub struct Strict {{")), "{code}");
    assert!(
        code.contains(
            "#[derive(Debug, Clone, PartialEq, Default)]\npub struct ThermostatProperties"
        ),
        "{code}"
    );
    assert!(code.contains("    pub fn with_limit(mut self, limit: i64) -> Self {"), "{code}");
}

/// What users implement and call names only public paths, so a trait signature can be copied
/// into their code; the runtime's machinery (`sb::`) stays inside bodies and private items.
#[test]
fn the_handler_trait_names_only_public_paths() {
    let path = repo_root().join("examples/thermostat/thermostat.yaml");
    let code = generate(&path);
    let start = code.find("pub trait Thermostat").expect("the trait");
    let end = start + code[start..].find("\n}\n").expect("the trait's end");
    let handler_trait = &code[start..end];
    assert!(handler_trait.contains("switchboard::server::CallContext"), "{handler_trait}");
    assert!(!handler_trait.contains("sb::"), "{handler_trait}");
}

/// The description JSON is split into short lines instead of one long one.
#[test]
fn no_generated_line_is_very_long() {
    for path in corpus() {
        let code = generate(&path);
        let longest = code.lines().map(str::len).max().unwrap_or(0);
        assert!(longest <= 200, "{}: a line of {longest} characters", path.display());
    }
}

/// A type named like a standard trait must not change what the generated impls refer to.
#[test]
fn a_type_named_from_does_not_shadow_the_from_trait() {
    let text = "stingeripc: {version: 0.1.1}\ninterface: {name: T, version: 1.0.0}\nstructures:\n  From:\n    members:\n      - {name: a, type: integer}\nerrors:\n  Nope:\n    values:\n      - {name: why, type: string}\nmethods:\n  go:\n    arguments:\n      - {name: f, type: struct, structName: From}\n    errors: [Nope]\n";
    let parsed = switchboard_idl::parse("t.yaml", text, &mut switchboard_idl::NoLoader);
    let iface = parsed.interface.as_ref().unwrap_or_else(|| panic!("{}", parsed.render()));
    let output = switchboard_codegen::rust::generate(iface, "t.yaml").expect("generates");
    assert!(output.contains("pub struct From"), "{output}");
    assert!(
        !output.contains("impl From<"),
        "an unqualified `From` names the user's struct:\n{output}"
    );
}
