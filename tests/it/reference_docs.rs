//! The Rust snippets of the generated Markdown references (those in `docs/reference/` and those of
//! the other interfaces here) compile against the code generated from the same interfaces
//! (`build.rs` extracts them; `cargo xtask codegen --check` keeps the committed ones current).
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

#[allow(dead_code, unreachable_pub)]
mod keywords_reference {
    use switchboard_tests::keywords;
    include!(concat!(env!("OUT_DIR"), "/reference_snippets/keywords.rs"));
}

#[allow(dead_code, unreachable_pub)]
mod interop_probe_reference {
    use switchboard_tests::interop_probe;
    include!(concat!(env!("OUT_DIR"), "/reference_snippets/interop_probe.rs"));
}

/// The snippets are there at all, client and server: a reference without them would compile
/// trivially.
#[test]
fn reference_snippets_were_extracted() {
    for snippet in [
        include_str!(concat!(env!("OUT_DIR"), "/reference_snippets/thermostat.rs")),
        include_str!(concat!(env!("OUT_DIR"), "/reference_snippets/everything.rs")),
        include_str!(concat!(env!("OUT_DIR"), "/reference_snippets/jobs.rs")),
        include_str!(concat!(env!("OUT_DIR"), "/reference_snippets/keywords.rs")),
        include_str!(concat!(env!("OUT_DIR"), "/reference_snippets/interop_probe.rs")),
    ] {
        assert!(snippet.contains("::connect(endpoint).await?"), "no client: {snippet}");
        assert!(snippet.contains("Server::serve(endpoint, My"), "no server: {snippet}");
    }
}
