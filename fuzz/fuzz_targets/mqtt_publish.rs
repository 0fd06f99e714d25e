//! Fuzz target `mqtt_publish`: see `switchboard_fuzz::mqtt_publish` and `docs/reliability.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::mqtt_publish(data));
