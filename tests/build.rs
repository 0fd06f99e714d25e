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
}
