//! Parses the example and test-data interface files: valid ones must be clean, invalid ones are snapshotted.

use std::path::{Path, PathBuf};

use switchboard_idl::{Loader, Parsed, Severity, parse};

/// Reads `$ref`'d files from disk relative to the crate directory.
struct FsLoader;

impl Loader for FsLoader {
    fn load(&mut self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
            .map_err(|e| e.to_string())
    }
}

fn parse_path(rel: &str) -> Parsed {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{rel}: {e}"));
    parse(rel, &text, &mut FsLoader)
}

const VALID: &[&str] = &[
    "tests/data/valid/stinger_complete.yaml",
    "tests/data/valid/dialect_0_3.yaml",
    "tests/data/valid/extensions.yaml",
    "../../examples/interfaces/everything.yaml",
    "../../examples/interfaces/keywords.yaml",
];

#[test]
fn valid_files_parse_cleanly() {
    for rel in VALID {
        let parsed = parse_path(rel);
        assert!(parsed.diagnostics.is_empty(), "{rel}:\n{}", parsed.render());
        let iface = parsed.interface.unwrap_or_else(|| panic!("{rel}: no interface"));
        assert!(iface.description_hash().starts_with("sha256:"));
        assert!(serde_json::from_str::<serde_json::Value>(&iface.description_json()).is_ok());
    }
}

#[test]
fn invalid_files_match_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("invalid dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "only {} invalid files", files.len());
    for path in files {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        // Referenced helper files are parsed only through the files that name them.
        if stem.starts_with("_") {
            continue;
        }
        let rel = format!("tests/data/invalid/{stem}.yaml");
        let parsed = parse_path(&rel);
        assert!(parsed.has_errors(), "{rel} should have errors");
        assert!(parsed.interface.is_none());
        let errors = parsed.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
        assert!(errors > 0);
        insta::assert_snapshot!(stem, parsed.render());
    }
}
