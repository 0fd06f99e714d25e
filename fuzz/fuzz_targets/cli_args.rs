//! Fuzz target `cli_args`: see `switchboard_fuzz::cli_args` and `docs/reliability.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::cli_args(data));
