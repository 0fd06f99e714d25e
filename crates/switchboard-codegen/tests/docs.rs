//! The documentation targets: AsyncAPI, OpenAPI and Markdown for every interface in the corpus,
//! as insta snapshots, every AsyncAPI document validated with the official AsyncAPI tools, and
//! every OpenAPI document with `openapi-spec-validator` (pinned, from PyPI, in a venv under the
//! target directory; skipped without Python's venv outside CI, like the other tools).
//!
//! Validation runs `tests/asyncapi/validate.mjs` with the machine's Node, after installing the
//! pinned `@asyncapi/specs` and `@asyncapi/parser` (`npm ci`, from the committed lockfile) into
//! the target directory once. Without Node or npm the test is skipped with a notice, except
//! under `CI=true`, where that is a failure.
//!
//! The Python snippets of the committed references in `docs/reference/` are type-checked with
//! `mypy --strict` (pinned, installed into a venv under the target directory) against the
//! generated packages; the Rust snippets are compiled by `tests/it/reference_docs.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use switchboard_testkit::{
    node::{self, run},
    prerequisite,
};

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

/// Every interface of the corpus: the examples, the thermostat, the code generator's corner
/// cases, the parser's valid files (but not `$ref` fragments) and the interop probe.
fn corpus() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = yaml_files(&root.join("examples/interfaces"));
    files.push(root.join("examples/thermostat/thermostat.yaml"));
    files.extend(yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")));
    files.extend(
        yaml_files(&root.join("crates/switchboard-idl/tests/data/valid"))
            .into_iter()
            .filter(|p| !p.ends_with("common_types.yaml")),
    );
    files.push(root.join("tests/interop/interop_probe.yaml"));
    files
}

fn stem(path: &Path) -> &str {
    path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 file name")
}

fn generate(
    path: &Path,
    lang: switchboard_codegen::Lang,
) -> Vec<switchboard_codegen::GeneratedFile> {
    let loaded = switchboard_codegen::load_file(path).expect("interface file is readable");
    let Some(iface) = loaded.parsed.interface.as_ref() else {
        panic!("{} has errors:\n{}", path.display(), loaded.parsed.render());
    };
    let name = switchboard_codegen::source_name(path);
    switchboard_codegen::generate_files(iface, &name, lang).expect("generation succeeds")
}

#[test]
fn asyncapi_matches_snapshots() {
    for path in corpus() {
        let files = generate(&path, switchboard_codegen::Lang::AsyncApi);
        assert_eq!(files.len(), 1);
        let document: serde_json::Value =
            serde_json::from_str(&files[0].contents).expect("the document is JSON");
        assert_eq!(document["asyncapi"], "3.0.0");
        insta::assert_snapshot!(format!("asyncapi__{}", stem(&path)), files[0].contents);
    }
}

#[test]
fn openapi_matches_snapshots() {
    for path in corpus() {
        let files = generate(&path, switchboard_codegen::Lang::OpenApi);
        assert_eq!(files.len(), 1);
        assert!(files[0].path.to_string_lossy().ends_with(".openapi.json"), "{:?}", files[0].path);
        let document: serde_json::Value =
            serde_json::from_str(&files[0].contents).expect("the document is JSON");
        assert_eq!(document["openapi"], "3.1.0");
        insta::assert_snapshot!(format!("openapi__{}", stem(&path)), files[0].contents);
    }
}

/// The validator, pinned.
const OPENAPI_VALIDATOR: &str = "openapi-spec-validator==0.9.0";

/// Installs `openapi-spec-validator` into a venv under the target directory, once.
fn openapi_validator_venv() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi-validator-venv");
    let stamp = venv.join("installed.stamp");
    let python = venv.join("bin/python");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == OPENAPI_VALIDATOR) {
        return Ok(python);
    }
    let (ok, output) =
        run("python3", &["-m", "venv", "--clear", &venv.display().to_string()], Path::new("."))?;
    if !ok {
        return Err(format!("cannot create a venv: {output}"));
    }
    let (ok, output) = run(
        &python.display().to_string(),
        &["-m", "pip", "install", "--quiet", "--disable-pip-version-check", OPENAPI_VALIDATOR],
        Path::new("."),
    )?;
    if !ok {
        return Err(format!("cannot install {OPENAPI_VALIDATOR}: {output}"));
    }
    std::fs::write(&stamp, OPENAPI_VALIDATOR).map_err(|e| e.to_string())?;
    Ok(python)
}

/// Validates each file named on the command line; prints `valid <file>` for each.
const VALIDATE_OPENAPI: &str = r#"
import sys
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
failed = 0
for path in sys.argv[1:]:
    spec, _ = read_from_filename(path)
    try:
        validate(spec)
        print("valid", path)
    except Exception as error:
        failed += 1
        print("INVALID", path, error)
sys.exit(1 if failed else 0)
"#;

/// Every interface's OpenAPI document passes `openapi-spec-validator` (OpenAPI 3.1, with its
/// JSON Schema 2020-12 dialect), and a broken one does not, so the check can fail.
#[test]
fn openapi_documents_pass_a_validator() {
    let python = match openapi_validator_venv() {
        Ok(python) => python,
        Err(reason) => {
            return prerequisite::missing(format_args!(
                "OpenAPI validation needs Python with venv and PyPI: {reason}"
            ));
        }
    };
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi-documents");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("create the output directory");
    let mut documents = Vec::new();
    for path in corpus() {
        for file in generate(&path, switchboard_codegen::Lang::OpenApi) {
            let target = out.join(format!("{}.openapi.json", stem(&path)));
            std::fs::write(&target, &file.contents).expect("write the document");
            documents.push(target.display().to_string());
        }
    }
    let python = python.display().to_string();
    let mut args = vec!["-c", VALIDATE_OPENAPI];
    args.extend(documents.iter().map(String::as_str));
    let (ok, output) = run(&python, &args, Path::new(".")).expect("python runs");
    assert!(ok, "openapi-spec-validator reports errors:\n{output}");
    assert_eq!(
        output.lines().filter(|l| l.starts_with("valid ")).count(),
        documents.len(),
        "every document was validated:\n{output}"
    );

    // A document with a response lacking its description must be refused.
    let broken = out.join("broken.openapi.json");
    let mut document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&documents[0]).unwrap()).unwrap();
    document["paths"]["/api/services"]["get"]["responses"]["200"] = serde_json::json!({});
    std::fs::write(&broken, document.to_string()).unwrap();
    let (ok, output) =
        run(&python, &["-c", VALIDATE_OPENAPI, &broken.display().to_string()], Path::new("."))
            .expect("python runs");
    assert!(!ok, "a response without a description passed:\n{output}");
}

#[test]
fn markdown_matches_snapshots() {
    for path in corpus() {
        let files = generate(&path, switchboard_codegen::Lang::Markdown);
        assert_eq!(files.len(), 1);
        insta::assert_snapshot!(format!("markdown__{}", stem(&path)), files[0].contents);
    }
}

/// Installs the validator's npm packages into the target directory, once per lockfile.
fn install_validator() -> Result<PathBuf, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asyncapi");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("asyncapi-validator");
    node::install(&source, &dir, &["validate.mjs"])
}

#[test]
fn asyncapi_documents_pass_the_official_validators() {
    let skip = |reason: String| {
        prerequisite::missing(format_args!("AsyncAPI validation needs Node and npm: {reason}"));
    };
    match run("node", &["--version"], Path::new(".")) {
        Ok((true, _)) => {}
        Ok((false, output)) => return skip(format!("`node --version` failed: {output}")),
        Err(reason) => return skip(reason),
    }
    let validator = match install_validator() {
        Ok(dir) => dir,
        Err(reason) => return skip(reason),
    };
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("asyncapi-documents");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("create the output directory");
    let mut documents = Vec::new();
    for path in corpus() {
        for file in generate(&path, switchboard_codegen::Lang::AsyncApi) {
            let target = out.join(format!("{}.{}", stem(&path), "asyncapi.json"));
            std::fs::write(&target, &file.contents).expect("write the document");
            documents.push(target.display().to_string());
        }
    }
    let mut args = vec!["validate.mjs"];
    args.extend(documents.iter().map(String::as_str));
    let (ok, output) = run("node", &args, &validator).expect("node runs");
    // Print everything, warnings included, so they show up with --nocapture.
    println!("{output}");
    assert!(ok, "the official AsyncAPI tools report errors:\n{output}");
    assert_eq!(
        output.lines().filter(|l| l.ends_with(" warnings")).count(),
        documents.len(),
        "every document was validated:\n{output}"
    );
}

/// The parser does not check this for AsyncAPI 3, so this test does: every `{placeholder}` of a
/// channel address is a declared parameter, every parameter appears in the address, and every
/// parameter reference resolves.
#[test]
fn asyncapi_channel_parameters_match_addresses() {
    for path in corpus() {
        let files = generate(&path, switchboard_codegen::Lang::AsyncApi);
        let document: serde_json::Value = serde_json::from_str(&files[0].contents).unwrap();
        let declared = &document["components"]["parameters"];
        for (id, channel) in document["channels"].as_object().unwrap() {
            let address = channel["address"].as_str().unwrap();
            let used: Vec<&str> = address
                .split('{')
                .skip(1)
                .filter_map(|part| part.split_once('}').map(|(name, _)| name))
                .collect();
            let params = channel["parameters"].as_object().cloned().unwrap_or_default();
            let mut names: Vec<&str> = params.keys().map(String::as_str).collect();
            let mut sorted_used = used.clone();
            names.sort_unstable();
            sorted_used.sort_unstable();
            assert_eq!(names, sorted_used, "{}: channel {id} ({address})", path.display());
            for (name, reference) in &params {
                let target = reference["$ref"].as_str().unwrap();
                assert_eq!(target, format!("#/components/parameters/{name}"));
                assert!(declared.get(name).is_some(), "{}: {name} is not declared", path.display());
            }
        }
    }
}

/// The code blocks of `lang` in `markdown`, joined.
fn code_blocks(markdown: &str, lang: &str) -> String {
    let mut code = String::new();
    let mut inside = false;
    for line in markdown.lines() {
        if !inside && line == format!("```{lang}") {
            inside = true;
        } else if inside && line == "```" {
            inside = false;
        } else if inside {
            code.push_str(line);
            code.push('\n');
        }
    }
    code
}

/// Installs mypy (pinned) into a venv under the target directory, once.
fn mypy_venv() -> Result<PathBuf, String> {
    const MYPY: &str = "mypy==2.4.1";
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-python-venv");
    let stamp = venv.join("installed.stamp");
    let mypy = venv.join("bin/mypy");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == MYPY) {
        return Ok(mypy);
    }
    let (ok, output) =
        run("python3", &["-m", "venv", "--clear", &venv.display().to_string()], Path::new("."))?;
    if !ok {
        return Err(format!("cannot create a venv: {output}"));
    }
    let python = venv.join("bin/python").display().to_string();
    let (ok, output) = run(
        &python,
        &["-m", "pip", "install", "--quiet", "--disable-pip-version-check", MYPY],
        Path::new("."),
    )?;
    if !ok {
        return Err(format!("cannot install {MYPY}: {output}"));
    }
    std::fs::write(&stamp, MYPY).map_err(|e| e.to_string())?;
    Ok(mypy)
}

/// The Python snippets of the committed references type-check (`mypy --strict`) against the
/// Python packages generated from the same interfaces and the `switchboard` Python runtime.
#[test]
fn reference_python_snippets_type_check() {
    let mypy = match mypy_venv() {
        Ok(mypy) => mypy,
        Err(reason) => {
            return prerequisite::missing(format_args!(
                "the Python snippet check needs mypy in a venv: {reason}"
            ));
        }
    };
    let root = repo_root();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-python-snippets");
    let _ = std::fs::remove_dir_all(&work);
    let mut checked = 0;
    for interface in [
        "examples/thermostat/thermostat.yaml",
        "examples/interfaces/everything.yaml",
        "examples/interfaces/jobs.yaml",
    ] {
        let path = root.join(interface);
        let name = stem(&path).to_string();
        let package = work.join("packages").join(&name);
        for file in generate(&path, switchboard_codegen::Lang::Python) {
            let target = package.join(&file.path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, file.contents).unwrap();
        }
        let reference =
            std::fs::read_to_string(root.join(format!("docs/reference/{name}.md"))).unwrap();
        let snippet = code_blocks(&reference, "python");
        assert!(snippet.contains("BlockingClient.connect("), "{name}: no Python snippet");
        let file = work.join(format!("{name}_snippet.py"));
        std::fs::write(&file, snippet).unwrap();
        let mypy_path = format!("{}:{}", root.join("python/src").display(), package.display());
        let output = Command::new(&mypy)
            .args(["--strict", "--follow-imports=silent", "--ignore-missing-imports"])
            .args(["--no-incremental", "--cache-dir=/dev/null"])
            .arg(&file)
            .env("MYPYPATH", mypy_path)
            .output()
            .expect("mypy runs");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{name}: mypy --strict rejects the snippet:\n{text}");
        checked += 1;
    }
    assert_eq!(checked, 3);
}
