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
