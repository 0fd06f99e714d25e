//! Golden tests: the generated Python package for every interface in the corpus, as insta
//! snapshots (one per generated file).

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn python_output_matches_snapshots() {
    let root = repo_root();
    let mut files = yaml_files(&root.join("examples/interfaces"));
    files.push(root.join("examples/thermostat/thermostat.yaml"));
    files.extend(yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")));
    files.push(root.join("crates/switchboard-idl/tests/data/valid/stinger_complete.yaml"));
    for path in files {
        let loaded = switchboard_codegen::load_file(&path).expect("interface file is readable");
        let Some(iface) = loaded.parsed.interface.as_ref() else {
            panic!("{} has errors:\n{}", path.display(), loaded.parsed.render());
        };
        let name = switchboard_codegen::source_name(&path);
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 file name");
        let generated =
            switchboard_codegen::generate_files(iface, &name, switchboard_codegen::Lang::Python)
                .expect("code generation succeeds");
        for file in generated.iter().filter(|f| !f.contents.is_empty()) {
            let file_name = file.path.file_name().and_then(|s| s.to_str()).expect("a name");
            insta::assert_snapshot!(format!("python__{stem}__{file_name}"), file.contents);
        }
    }
}

/// The value of `key = "…"` in a TOML file as simple as ours (each key once per file).
fn toml_string<'a>(text: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key} = ");
    let line = text.lines().find_map(|l| l.strip_prefix(&prefix));
    let line = line.unwrap_or_else(|| panic!("no `{key}` in\n{text}"));
    line.trim_matches(|c| c == '"' || c == '[' || c == ']')
}

/// A generated package installs on the runtime in `python/`: it depends on the runtime's
/// distribution (its name and minor version), and both name the same oldest Python in
/// `requires-python`, ruff's `target-version` and mypy's `python_version`.
#[test]
fn generated_pyproject_agrees_with_the_runtime() {
    let runtime = std::fs::read_to_string(repo_root().join("python/pyproject.toml")).unwrap();
    let path = repo_root().join("examples/thermostat/thermostat.yaml");
    let loaded = switchboard_codegen::load_file(&path).unwrap();
    let iface = loaded.parsed.interface.as_ref().unwrap();
    let files =
        switchboard_codegen::generate_files(iface, "t.yaml", switchboard_codegen::Lang::Python)
            .unwrap();
    let generated = &files.iter().find(|f| f.path.ends_with("pyproject.toml")).unwrap().contents;

    let name = toml_string(&runtime, "name");
    let version = toml_string(&runtime, "version");
    let (major, rest) = version.split_once('.').unwrap();
    let minor: u32 = rest.split('.').next().unwrap().parse().unwrap();
    let range = format!(">={major}.{minor},<{major}.{}", minor + 1);
    assert_eq!(toml_string(generated, "dependencies"), format!("{name}{range}"));
    assert_eq!(toml_string(generated, "mqtt"), format!("{name}[mqtt]{range}"));
    assert!(runtime.contains("\nmqtt = ["), "the runtime has no `mqtt` extra");

    for (file, text) in [("python/pyproject.toml", runtime.as_str()), ("generated", generated)] {
        let requires = toml_string(text, "requires-python");
        let oldest = requires.strip_prefix(">=").unwrap_or_else(|| panic!("{file}: {requires}"));
        assert_eq!(requires, toml_string(generated, "requires-python"), "{file}");
        assert_eq!(toml_string(text, "python_version"), oldest, "{file}: mypy");
        assert_eq!(toml_string(text, "target-version"), format!("py{}", oldest.replace('.', "")));
    }
}
