//! The Rust snippets of the generated references in `docs/reference/` compile against the code
//! generated from the same interfaces (`build.rs` extracts them from the committed Markdown).
//!
//! Each snippet is written for a crate that includes the generated code as a module named after
//! the interface, so here each is included next to an import of that module.

#[allow(dead_code, unreachable_pub)]
mod thermostat_reference {
    use switchboard_tests::thermostat;
    include!(concat!(env!("OUT_DIR"), "/reference_snippets/thermostat.rs"));
}

#[allow(dead_code, unreachable_pub)]
mod everything_reference {
    use switchboard_tests::everything;
    include!(concat!(env!("OUT_DIR"), "/reference_snippets/everything.rs"));
}

#[allow(dead_code, unreachable_pub)]
mod jobs_reference {
    use switchboard_tests::jobs;
    include!(concat!(env!("OUT_DIR"), "/reference_snippets/jobs.rs"));
}

/// The snippets are there at all: a reference without one would compile trivially.
#[test]
fn reference_snippets_were_extracted() {
    for snippet in [
        include_str!(concat!(env!("OUT_DIR"), "/reference_snippets/thermostat.rs")),
        include_str!(concat!(env!("OUT_DIR"), "/reference_snippets/everything.rs")),
        include_str!(concat!(env!("OUT_DIR"), "/reference_snippets/jobs.rs")),
    ] {
        assert!(snippet.contains("::connect(endpoint).await?"), "{snippet}");
    }
}
