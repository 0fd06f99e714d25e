//! Golden tests: the generated C++ library for every interface in the corpus, as insta
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
fn cpp_output_matches_snapshots() {
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
            switchboard_codegen::generate_files(iface, &name, switchboard_codegen::Lang::Cpp)
                .expect("code generation succeeds");
        for file in generated.iter().filter(|f| !f.contents.is_empty()) {
            let file_name = file.path.file_name().and_then(|s| s.to_str()).expect("a name");
            insta::assert_snapshot!(format!("cpp__{stem}__{file_name}"), file.contents);
        }
    }
}
