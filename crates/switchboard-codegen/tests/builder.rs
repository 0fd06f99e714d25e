//! The build-script front end: what `Builder` writes, what it removes, and how it fails.

use std::path::{Path, PathBuf};

use switchboard_codegen::{Builder, Error};

/// The repository root, two levels above this crate.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh directory under the target directory, for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// Writes an interface file named `file` in `dir` for an interface named `name`.
fn interface(dir: &Path, file: &str, name: &str) -> PathBuf {
    let path = dir.join(file);
    let text = format!(
        "stingeripc: {{version: 0.1.1}}\ninterface: {{name: {name}, version: 1.0.0}}\n\
         methods:\n  ping:\n    arguments: []\n"
    );
    std::fs::write(&path, text).expect("write the interface file");
    path
}

fn compile(out: &Path, files: &[&Path]) -> Result<(), Error> {
    Builder::new().out_dir(out).emit_cargo_directives(false).compile(files)
}

#[test]
fn builder_writes_what_generate_returns() {
    let path = repo_root().join("examples/thermostat/thermostat.yaml");
    let out = scratch("builder-output");
    compile(&out, &[&path]).expect("the builder succeeds");
    let written = std::fs::read_to_string(out.join("thermostat.rs")).expect("thermostat.rs exists");
    let loaded = switchboard_codegen::load_file(&path).expect("readable");
    let iface = loaded.parsed.interface.as_ref().expect("valid");
    assert_eq!(written, switchboard_codegen::rust::generate(iface, "thermostat.yaml").unwrap());
}

#[test]
fn builder_reports_diagnostics() {
    let dir = scratch("builder-invalid");
    let path = dir.join("broken.yaml");
    std::fs::write(&path, "stingeripc: {version: 0.1.1}\ninterface: {version: 1.0.0}\n").unwrap();
    let err = compile(&dir.join("out"), &[&path]).expect_err("the interface has no name");
    assert!(matches!(err, Error::Interface { .. }));
    assert!(err.to_string().contains("broken.yaml"), "{err}");
}

/// `build.rs` users write `.compile(…).unwrap()` or return the error from `main`; both print the
/// error's `Debug`, which must be the diagnostics `switchboard check` prints, carets and all, not
/// an escaped one-line string.
#[test]
fn an_interface_error_debugs_as_the_rendered_diagnostics() {
    let dir = scratch("builder-debug");
    let path = dir.join("typo.yaml");
    std::fs::write(
        &path,
        "stingeripc: {version: 0.1.1}\ninterface: {name: Typo, version: 1.0.0}\n\
         methods:\n  m:\n    arguments:\n      - name: x\n        type: integr\n",
    )
    .unwrap();
    let err = compile(&dir.join("out"), &[&path]).expect_err("`integr` is not a type");
    let rendered = switchboard_codegen::load_file(&path).unwrap().parsed.render();
    assert!(rendered.contains("^^^^^^"), "the diagnostics have carets:\n{rendered}");
    assert_eq!(format!("{err:?}"), rendered);
    assert_eq!(format!("{err}"), rendered);
}

/// Every other error reads the same through `Debug` as through `Display`.
#[test]
fn other_errors_debug_as_their_message() {
    let dir = scratch("builder-missing");
    let err = compile(&dir.join("out"), &[&dir.join("missing.yaml")]).expect_err("no such file");
    assert!(matches!(err, Error::Read { .. }));
    assert_eq!(format!("{err:?}"), err.to_string());
    assert!(err.to_string().starts_with("cannot read `"), "{err}");
}

/// The index `include_interface!` reads maps each generated name to its file, and names every
/// generated interface in the error for any other name.
#[test]
fn the_index_names_what_was_generated() {
    let dir = scratch("builder-index");
    let path = interface(&dir, "greenhouse.yaml", "GreenHouse");
    let out = dir.join("out");
    compile(&out, &[&path]).expect("the builder succeeds");
    assert!(out.join("green_house.rs").exists(), "the file is named after the interface");
    let index = std::fs::read_to_string(out.join("index.rs")).expect("index.rs exists");
    let generated = out.join("green_house.rs").display().to_string();
    assert!(
        index.contains(&format!("(\"green_house\") => {{\n        include!({generated:?});")),
        "{index}"
    );
    assert!(
        index.contains(
            "build.rs generated: `green_house` (interface `GreenHouse` in greenhouse.yaml)"
        ),
        "the fallback arm names what exists:\n{index}"
    );
}

/// A build removes the files an earlier build generated and this one did not, so a renamed or
/// deleted interface cannot be picked up from a stale file.
#[test]
fn a_build_removes_what_an_earlier_build_generated() {
    let dir = scratch("builder-stale");
    let out = dir.join("out");
    // What an earlier build (another build-script process) left: its file and its index.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("old_name.rs"), "// generated earlier").unwrap();
    std::fs::write(out.join("index.rs"), "// file: old_name.rs (interface `OldName` in a.yaml)\n")
        .unwrap();
    // Something in the directory the builder did not write stays.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();

    let path = interface(&dir, "a.yaml", "NewName");
    compile(&out, &[&path]).expect("the builder succeeds");
    assert!(out.join("new_name.rs").exists());
    assert!(!out.join("old_name.rs").exists(), "the stale file is removed");
    assert!(out.join("notes.txt").exists(), "files the builder did not write are kept");
    let index = std::fs::read_to_string(out.join("index.rs")).unwrap();
    assert!(!index.contains("old_name"), "{index}");
}

/// Several `compile` calls in one build script add up; none removes what another generated.
#[test]
fn compile_calls_in_one_build_add_up() {
    let dir = scratch("builder-calls");
    let out = dir.join("out");
    let first = interface(&dir, "first.yaml", "First");
    let second = interface(&dir, "second.yaml", "Second");
    compile(&out, &[&first]).expect("first call");
    compile(&out, &[&second]).expect("second call");
    assert!(out.join("first.rs").exists() && out.join("second.rs").exists());
    let index = std::fs::read_to_string(out.join("index.rs")).unwrap();
    assert!(index.contains("(\"first\") =>") && index.contains("(\"second\") =>"), "{index}");
    // Compiling a file again replaces its entry instead of adding another.
    compile(&out, &[&first]).expect("first file again");
    let again = std::fs::read_to_string(out.join("index.rs")).unwrap();
    assert_eq!(again, index);
}

/// Two files that define interfaces with the same generated name would overwrite each other.
#[test]
fn two_interfaces_with_one_name_are_an_error() {
    let dir = scratch("builder-duplicate");
    let a = interface(&dir, "a.yaml", "Heater");
    let b = interface(&dir, "b.yaml", "heater");
    let err = compile(&dir.join("out"), &[&a, &b]).expect_err("both are `heater`");
    assert!(matches!(err, Error::SameName { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` and `{}` both generate `heater.rs`; rename one of the interfaces",
            a.display(),
            b.display()
        )
    );
}
