//! Every Rust code block of README.md and `docs/` compiles: `build.rs` extracts each into a
//! module of this crate (see its `extract_doc_snippets` for the rules a block follows). The
//! generated references are compiled by `reference_docs`, and `docs/rust.md` by `user_crate`.

include!(concat!(env!("OUT_DIR"), "/doc_snippets/all.rs"));

/// The blocks are there: a README whose blocks went unnoticed would compile trivially.
#[test]
fn the_readme_code_blocks_are_compiled() {
    let readme: Vec<_> = DOC_SNIPPETS.iter().filter(|s| s.starts_with("README.md")).collect();
    assert!(readme.len() >= 4, "{readme:?}");
    // `rust,excerpt` blocks are pieces of compiled files, checked by the thermostat's tests.
    let fences = include_str!("../../README.md")
        .lines()
        .filter(|l| l.starts_with("```rust") && !l.contains("excerpt"));
    assert_eq!(fences.count(), readme.len(), "every README block is extracted");
}
