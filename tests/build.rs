//! Generates Rust for every interface in the corpus, through the same `Builder` users call, and
//! extracts the Rust code blocks of the documentation for `it/` to compile.

fn main() {
    let mut files = Vec::new();
    for dir in ["../examples/interfaces", "../examples/thermostat", "interop", "interfaces"] {
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
    println!("cargo:rerun-if-changed=interfaces");
    if let Err(error) = switchboard_codegen::Builder::new().compile(&files) {
        panic!("code generation failed:\n{error}");
    }
    generate_versions();
    extract_reference_snippets(&files);
    extract_doc_snippets();
}

/// Generates each version of the interface in `interfaces/evolve/` (all named `Evolving`) into a
/// directory of its own, `$OUT_DIR/evolve/<file stem>/evolving.rs`, for the compatibility matrix.
fn generate_versions() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("evolve");
    let mut found: Vec<_> = std::fs::read_dir("interfaces/evolve")
        .expect("read interfaces/evolve")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    found.sort();
    println!("cargo:rerun-if-changed=interfaces/evolve");
    for path in found {
        let stem = path.file_stem().expect("a file name").to_string_lossy().into_owned();
        if let Err(error) =
            switchboard_codegen::Builder::new().out_dir(out.join(&stem)).compile(&[&path])
        {
            panic!("code generation failed for {}:\n{error}", path.display());
        }
    }
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

/// The documents whose Rust code blocks `it/doc_snippets.rs` compiles: the README and `docs/`,
/// but not `docs/reference/` (compiled through `extract_reference_snippets`) and not
/// `docs/rust.md`, whose blocks are the files of a crate that `it/user_crate.rs` builds and runs.
fn documents() -> Vec<std::path::PathBuf> {
    let mut docs = vec![std::path::PathBuf::from("../README.md")];
    for dir in ["../docs", "../docs/wire"] {
        println!("cargo:rerun-if-changed={dir}");
        let mut found: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {dir}: {e}"))
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
            .filter(|path| !path.ends_with("rust.md"))
            .collect();
        found.sort();
        docs.extend(found);
    }
    docs
}

/// Writes each Rust code block of the [`documents`] (any fence whose info string starts with
/// `rust`) to `$OUT_DIR/doc_snippets/`, and `all.rs`, which includes each block as a module.
///
/// A block marked `rust,excerpt` is left out: it is a piece of a file the workspace compiles, and
/// `examples/thermostat/tests/systemd.rs` checks that it still is.
///
/// A block is compiled as the body of a module: items, not statements. It may name the
/// generated thermostat code as `thermostat`, as the README's crate does after its
/// `mod thermostat { switchboard::include_interface!("thermostat"); }`; a block that declares that
/// module itself gets its own, included from this crate's `OUT_DIR`.
fn extract_doc_snippets() {
    let out =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("doc_snippets");
    std::fs::create_dir_all(&out).expect("create doc_snippets");
    let mut all = String::new();
    let mut names = Vec::new();
    for doc in documents() {
        println!("cargo:rerun-if-changed={}", doc.display());
        let text = std::fs::read_to_string(&doc).expect("read a document");
        let shown = doc.strip_prefix("..").unwrap_or(&doc).display().to_string();
        let shown = shown.trim_start_matches('/').to_string();
        let stem: String = shown
            .trim_end_matches(".md")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .collect();
        let mut block: Option<(usize, String)> = None;
        let mut count = 0;
        for (number, line) in text.lines().enumerate() {
            match &mut block {
                None if line.starts_with("```rust") && !line.contains("excerpt") => {
                    block = Some((number + 2, String::new()))
                }
                None => {}
                Some((first_line, code)) if line == "```" => {
                    count += 1;
                    let name = format!("{stem}_block_{count}");
                    let file = out.join(format!("{name}.rs"));
                    let origin = format!("{shown}, the code block at line {first_line}");
                    std::fs::write(&file, format!("// {origin}\n{code}")).expect("write a snippet");
                    let thermostat = if code.contains("mod thermostat") {
                        ""
                    } else {
                        "    use switchboard_tests::thermostat;\n"
                    };
                    all.push_str(&format!(
                        "/// {origin}.\n#[allow(dead_code, unused_imports, unreachable_pub)]\n\
                         mod {name} {{\n{thermostat}    include!({:?});\n}}\n\n",
                        file.display().to_string()
                    ));
                    names.push(origin);
                    block = None;
                }
                Some((_, code)) => {
                    code.push_str(line);
                    code.push('\n');
                }
            }
        }
    }
    all.push_str(&format!(
        "/// Every block compiled above.\nconst DOC_SNIPPETS: &[&str] = &{names:?};\n"
    ));
    std::fs::write(out.join("all.rs"), all).expect("write all.rs");
}
