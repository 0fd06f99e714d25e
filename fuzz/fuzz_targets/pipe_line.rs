//! Fuzz target `pipe_line`: see `switchboard_fuzz::pipe_line` and `docs/reliability.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::pipe_line(data));
