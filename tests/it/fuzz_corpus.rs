//! Replays every committed fuzz corpus file (`fuzz/corpus/NAME/`) through the same target
//! function `cargo +nightly fuzz run NAME` drives, on stable, as an ordinary test: inputs that
//! once crashed a target stay fixed, and each target is proven to build and run.

use std::path::{Path, PathBuf};

#[allow(unreachable_pub, dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod targets;

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

/// The files of one target's corpus, sorted, so a failure names the same file every run.
fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = corpus_root().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} cannot be listed: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_corpus_and_every_corpus_a_target() {
    let mut dirs: Vec<String> = std::fs::read_dir(corpus_root())
        .expect("fuzz/corpus lists")
        .map(|entry| entry.expect("a corpus directory").file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut names: Vec<String> =
        targets::TARGETS.iter().map(|(name, _)| (*name).to_owned()).collect();
    names.sort();
    assert_eq!(dirs, names, "fuzz/corpus/ holds one directory per target");
    for name in &names {
        assert!(!corpus_files(name).is_empty(), "fuzz/corpus/{name}/ has seed files");
    }
}

#[test]
fn corpora_replay_without_panics() {
    for (name, target) in targets::TARGETS {
        for file in corpus_files(name) {
            let data = std::fs::read(&file).expect("a corpus file reads");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "fuzz target {name} panicked on {}", file.display());
        }
    }
}
