//! Rust generated (by `build.rs`, through `switchboard_codegen::Builder`) from every interface in
//! `examples/interfaces/` and `tests/interfaces/`, shared by the integration tests and the test server.

/// Generated from `examples/interfaces/everything.yaml`.
pub mod everything {
    switchboard::include_interface!("everything");
}

/// Generated from `examples/interfaces/keywords.yaml`.
pub mod keywords {
    switchboard::include_interface!("keywords");
}

/// Generated from `examples/thermostat/thermostat.yaml`.
pub mod thermostat {
    switchboard::include_interface!("thermostat");
}
