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

#[test]
fn builder_writes_what_generate_returns() {
    let path = repo_root().join("examples/thermostat/thermostat.yaml");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("builder-output");
    let _ = std::fs::remove_dir_all(&out);
    switchboard_codegen::Builder::new()
        .out_dir(&out)
        .emit_cargo_directives(false)
        .compile(&[&path])
        .expect("the builder succeeds");
    let written = std::fs::read_to_string(out.join("thermostat.rs")).expect("thermostat.rs exists");
    assert_eq!(written, generate(&path));
}

#[test]
fn builder_reports_diagnostics() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("builder-invalid");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.yaml");
    std::fs::write(&path, "stingeripc: {version: 0.1.1}\ninterface: {version: 1.0.0}\n").unwrap();
    let err = switchboard_codegen::Builder::new()
        .out_dir(dir.join("out"))
        .emit_cargo_directives(false)
        .compile(&[&path])
        .expect_err("the interface has no name");
    assert!(matches!(err, switchboard_codegen::Error::Interface { .. }));
    assert!(err.to_string().contains("broken.yaml"), "{err}");
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

#[test]
fn user_type_shadowing_the_prelude_is_an_error() {
    let err =
        generate_inline("structures:\n  option:\n    members:\n      - {name: x, type: integer}\n")
            .unwrap_err();
    assert!(err.to_string().contains("Rust's `Option`, which generated code uses,"), "{err}");
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
    assert!(code.contains("Result<sb::SignalStream<AlarmSignal>, sb::CallError>"), "{code}");
}

#[test]
fn argument_named_ctx_steps_around_the_context_parameter() {
    let code =
        generate_inline("methods:\n  run:\n    arguments:\n      - {name: ctx, type: string}\n")
            .unwrap();
    assert!(code.contains("ctx: &sb::CallContext,\n        ctx_: String,"), "{code}");
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
        code.contains("with = \"sb::As::<sb::BTreeMap<sb::Same, sb::IsoDateTime>>\""),
        "{code}"
    );
    assert!(code.contains("    pub plain: Vec<i64>,"), "{code}");
}
