//! Generates Rust for every interface in the corpus, through the same `Builder` users call.

fn main() {
    let mut files = Vec::new();
    for dir in ["../examples/interfaces", "../examples/thermostat", "interop"] {
        let mut found: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {dir}: {e}"))
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        found.sort();
        files.extend(found);
    }
    println!("cargo:rerun-if-changed=../examples/interfaces");
    println!("cargo:rerun-if-changed=../examples/thermostat/thermostat.yaml");
    println!("cargo:rerun-if-changed=interop/interop_probe.yaml");
    if let Err(error) = switchboard_codegen::Builder::new().compile(&files) {
        panic!("code generation failed:\n{error}");
    }
    extract_reference_snippets();
}

/// Copies the `rust` code blocks of the generated references in `docs/reference/` into
/// `$OUT_DIR/reference_snippets/<name>.rs`, for `it/reference_docs.rs` to compile.
fn extract_reference_snippets() {
    println!("cargo:rerun-if-changed=../docs/reference");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR"))
        .join("reference_snippets");
    std::fs::create_dir_all(&out).expect("create reference_snippets");
    for entry in std::fs::read_dir("../docs/reference").expect("read docs/reference") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|ext| ext != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a reference");
        let mut code = String::new();
        let mut inside = false;
        for line in text.lines() {
            match (inside, line) {
                (false, "```rust") => inside = true,
                (true, "```") => inside = false,
                (true, _) => {
                    code.push_str(line);
                    code.push('\n');
                }
                _ => {}
            }
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("a UTF-8 name");
        std::fs::write(out.join(format!("{stem}.rs")), code).expect("write a snippet");
    }
}
