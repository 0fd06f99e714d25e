//! Fuzz target `idl_check`: see `switchboard_fuzz::idl_check` and `docs/reliability.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::idl_check(data));
