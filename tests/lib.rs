//! Rust generated (by `build.rs`, through `switchboard_codegen::Builder`) from every interface in
//! `examples/interfaces/` and `tests/interfaces/`, shared by the integration tests and the test server.

/// Generated from `examples/interfaces/everything.yaml`.
pub mod everything {
    switchboard::include_interface!("everything");
}

/// Generated from `tests/interop/interop_probe.yaml`, the interface of the StingerIPC interop tests.
pub mod interop_probe {
    switchboard::include_interface!("interop_probe");
}

/// Generated from `examples/interfaces/keywords.yaml`.
pub mod keywords {
    switchboard::include_interface!("keywords");
}

/// Generated from `tests/interfaces/prelude_names.yaml`, whose types are named after every item
/// of Rust's prelude: that it compiles is the test.
pub mod prelude_names {
    switchboard::include_interface!("sync");
}

/// Generated from `examples/thermostat/thermostat.yaml`.
pub mod thermostat {
    switchboard::include_interface!("thermostat");
}

/// Generated from `examples/interfaces/jobs.yaml`: the conformance suite's interface.
pub mod jobs {
    switchboard::include_interface!("jobs");
}

/// Versions of one interface, `Evolving`, generated from `tests/interfaces/evolve/`: `v1` and,
/// for each rule the compatibility matrix (`it/evolve.rs`) runs, `v1` with that one change.
pub mod evolve {
    macro_rules! versions {
        ($($version:ident),* $(,)?) => {$(
            #[doc = concat!("Generated from `tests/interfaces/evolve/", stringify!($version), ".yaml`.")]
            pub mod $version {
                include!(concat!(env!("OUT_DIR"), "/evolve/", stringify!($version), "/evolving.rs"));
            }
        )*};
    }
    versions!(
        v1,
        added_method,
        added_optional_argument,
        added_struct_field,
        added_enum_value,
        removed_method,
        changed_type,
        optional_to_required,
        added_signal,
        enum_value_renumbered,
        added_property,
        added_read_only_property,
        added_action,
        added_command,
        added_optional_return_value,
        added_required_return_value,
        return_value_made_optional,
        added_required_argument,
        reordered_arguments,
        narrowed_argument,
        narrowed_return_value,
        declared_error,
        renamed_method,
        renamed_enum_value,
        added_definitions,
        added_constant,
        timeout_changed,
        documentation_changed,
        integer_argument,
        integer_argument_widened,
        integer_argument_made_unsigned,
        added_property_value,
    );
}

pub mod fixtures;
