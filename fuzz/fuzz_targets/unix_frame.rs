//! Fuzz target `unix_frame`: see `switchboard_fuzz::unix_frame` and `docs/reliability.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::unix_frame(data));
