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
    extract_reference_snippets(&files);
}

/// Writes the `rust` code blocks of each interface's generated Markdown reference (the ones
/// committed in `docs/reference/`, and those of the other interfaces here) into
/// `$OUT_DIR/reference_snippets/<name>.rs`, for `it/reference_docs.rs` to compile.
fn extract_reference_snippets(files: &[std::path::PathBuf]) {
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR"))
        .join("reference_snippets");
    std::fs::create_dir_all(&out).expect("create reference_snippets");
    for path in files {
        let loaded = switchboard_codegen::load_file(path).expect("a readable interface");
        let iface = loaded.parsed.interface.as_ref().expect("a valid interface");
        let name = switchboard_codegen::source_name(path);
        let markdown =
            switchboard_codegen::generate_files(iface, &name, switchboard_codegen::Lang::Markdown)
                .expect("a Markdown reference");
        for file in markdown {
            let mut code = String::new();
            let mut inside = false;
            for line in file.contents.lines() {
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
            let target = out.join(file.path.with_extension("rs"));
            std::fs::write(target, code).expect("write a snippet");
        }
    }
}
