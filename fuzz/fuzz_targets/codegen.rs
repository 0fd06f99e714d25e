//! Fuzz target `codegen`: see `switchboard_fuzz::codegen` and `docs/reliability.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::codegen(data));
