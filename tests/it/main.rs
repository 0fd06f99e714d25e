//! switchboard's integration tests: one binary, one module per area.
//!
//! `suite` holds test bodies written against `Endpoint` only, so every transport runs the same
//! bodies; `unix` and `mqtt` instantiate them and add their transport's own fault tests;
//! `interop` runs StingerIPC's real Python peers against ours over MQTT.

mod conformance;
mod doc_snippets;
mod interop;
mod mqtt;
mod python;
mod reference_docs;
mod suite;
mod systemd;
mod unix;
mod user_crate;
