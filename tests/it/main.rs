//! switchboard's integration tests: one binary, one module per area.
//!
//! `suite` holds test bodies written against `Endpoint` only, so every transport runs the same
//! bodies; `unix` instantiates them for the Unix socket and adds the Unix-specific fault tests.

mod generated_code;
mod suite;
mod unix;
