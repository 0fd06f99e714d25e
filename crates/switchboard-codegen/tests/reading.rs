//! Reading interface files from disk: only regular files, and never more than the size limit
//! (issue 15, defect 14: `check /dev/zero` grew until allocation failed; a `$ref` to a FIFO hung).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// A fresh directory under the target directory, for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// Loads `path` on a thread, failing the test when that takes over ten seconds (a hang).
fn load_in_time(path: PathBuf) -> Result<switchboard_codegen::LoadedFile, String> {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(switchboard_codegen::load_file(&path).map_err(|e| e.to_string()));
    });
    result.recv_timeout(Duration::from_secs(10)).expect("loading ends without hanging")
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_device_is_refused_without_reading_it() {
    let error = load_in_time(PathBuf::from("/dev/zero")).expect_err("/dev/zero is refused");
    assert!(error.contains("not a regular file"), "{error}");
}

#[test]
fn a_fifo_is_refused_as_the_file_and_as_a_ref() {
    let dir = scratch("reading-fifo");
    let fifo = dir.join("fifo.yaml");
    mkfifo(&fifo);
    let error = load_in_time(fifo).expect_err("a FIFO is refused");
    assert!(error.contains("not a regular file"), "{error}");

    let file = dir.join("refs.yaml");
    let text = "stingeripc: {version: 0.1.1}\ninterface: {name: R, version: 1.0.0}\n\
                enums:\n  E:\n    $ref: \"fifo.yaml#/enums/E\"\n";
    std::fs::write(&file, text).expect("write the interface");
    let loaded = load_in_time(file).expect("the interface file itself is read");
    let rendered = loaded.parsed.render();
    assert!(loaded.parsed.interface.is_none());
    assert!(rendered.contains("not a regular file"), "{rendered}");
}

#[test]
fn a_file_past_the_limit_is_too_large_and_read_only_up_to_it() {
    let dir = scratch("reading-large");
    let file = dir.join("large.yaml");
    let mut text = "# padding\n".repeat(switchboard_idl::MAX_FILE_BYTES / 10 + 1);
    text.push_str("stingeripc: {version: 0.1.1}\n");
    std::fs::write(&file, &text).expect("write the file");
    let read = switchboard_codegen::read_interface_text(&file).expect("the file is read");
    assert_eq!(read.len(), switchboard_idl::MAX_FILE_BYTES + 1, "read one byte past the limit");
    let loaded = load_in_time(file).expect("the file is read");
    assert!(loaded.parsed.render().contains("error[too-large]"));
}

/// Generated Python packages named like modules broke: `switchboard`, `typing`, `dataclasses`
/// and `_enum` failed to import ("partially initialized module"), `json` and `asyncio` shadowed
/// the standard library (issue 15, defect 10). Each now gets a `_interface` package that
/// imports beside the real module.
#[test]
fn python_packages_named_like_modules_import_and_shadow_nothing() {
    let python_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python/src");
    let out = scratch("python-module-names");
    let mut script = String::from("import json, asyncio, typing, dataclasses, enum, switchboard\n");
    for name in ["Switchboard", "typing", "dataclasses", "_enum", "json", "asyncio"] {
        let text = format!(
            "stingeripc: {{version: 0.1.1}}\ninterface: {{name: {name}, version: 1.0.0}}\n\
             methods:\n  ping:\n    arguments: []\n"
        );
        let parsed = switchboard_idl::parse("m.yaml", &text, &mut switchboard_idl::NoLoader);
        let Some(iface) = parsed.interface.clone() else {
            panic!("{name}: {}", parsed.render());
        };
        let files = switchboard_codegen::generate_files(
            &iface,
            "m.yaml",
            switchboard_codegen::Lang::Python,
        )
        .expect("generates");
        let mut package = None;
        for file in files {
            let path = out.join(&file.path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&path, file.contents).expect("write");
            if file.path.ends_with("__init__.py") {
                package = file.path.parent().map(|p| p.display().to_string());
            }
        }
        let package = package.expect("a package directory");
        assert!(package.ends_with("_interface"), "{name} gave the package `{package}`");
        script.push_str(&format!("import {package}\n"));
    }
    script.push_str(
        "assert json.dumps([1]) == '[1]' and json.__file__.endswith('json/__init__.py')\n\
         assert hasattr(asyncio, 'run') and hasattr(typing, 'Any') and hasattr(enum, 'IntEnum')\n\
         assert hasattr(switchboard, '__path__')\n",
    );
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .current_dir(&out)
        .env("PYTHONPATH", format!("{}:{}", out.display(), python_src.display()))
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
