//! switchboard's integration tests: one binary, one module per area.
//!
//! `suite` holds test bodies written against `Endpoint` only, so every transport runs the same
//! bodies; `unix`, `mqtt`, `memory`, `nats`, `redis` and `amqp` instantiate them and add their transport's own
//! fault tests, those of the brokered layer's brokers from `brokered`;
//! `interop` runs StingerIPC's real Python peers against ours over MQTT.

mod amqp;
mod bridge;
mod brokered;
mod commlib;
mod conformance;
mod cpp;
mod doc_snippets;
mod evolve;
mod fuzz_corpus;
mod interop;
mod memory;
mod mqtt;
mod nats;
mod node;
mod python;
mod redis;
mod reference_docs;
mod replicas;
mod suite;
mod systemd;
mod unix;
mod user_crate;
