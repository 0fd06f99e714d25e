//! The compatibility matrix: for each rule of docs/interface-format.md ("Compatibility between
//! versions"), a row of two interface versions from `tests/interfaces/evolve/`, run for real
//! over each transport: a client of the old version against a server of the new one, and a
//! client of the new version against a server of the old one. The compatible pairs work end to
//! end; the breaking ones are refused at connect time with the first breaking difference, or,
//! for a member the server lacks, fail when used with an error naming it.
//!
//! Each body takes the [`Servers`] its clients meet: one of the row's old version and one of its
//! new version, each at an endpoint of its own (a socket, an MQTT instance, an instance on the
//! in-memory broker of the brokered layer). The Rust rows serve them in Rust; the Python rows run
//! the same bodies against Python servers, and `tests/python/evolve_peer.py`'s Python clients,
//! with the same expectations, against Rust servers.
//!
//! Most rows evolve `v1.yaml` by one change, and are named after the file that makes it; a row
//! whose old version is another file says so in [`versions`]. A row runs both directions, so
//! the row that adds something also runs the rule that removes it: the clients of the removal
//! (built from the file with it) meet the servers of the addition's old version, and the other
//! way round. Which row runs which rule:
//!
//! | rule | row |
//! | --- | --- |
//! | add an `optional` field; remove one | `added_optional_argument`, `added_optional_return_value`, `added_struct_field` |
//! | add a required argument; remove one | `added_required_argument` |
//! | add a required return value; remove one | `added_required_return_value` |
//! | make an argument `optional`; make an `optional` argument required | `optional_to_required` |
//! | make a return value `optional`; make it required again | `return_value_made_optional` |
//! | narrow an argument's `format`; widen it | `narrowed_argument` |
//! | narrow a return value's `format`; widen it | `narrowed_return_value` |
//! | widen an integer argument's `format`; narrow it | `integer_argument_widened` |
//! | change an integer's signedness | `integer_argument_made_unsigned` |
//! | any other change of type | `changed_type` |
//! | reorder the fields of a list | `reordered_arguments` |
//! | change a `description`, documentation, a title, or a member's `version` | `documentation_changed` |
//! | add a method; remove one | `added_method`, `removed_method` |
//! | add a signal, property, command or action; remove one | `added_signal`, `added_property`, `added_command`, `added_action` |
//! | rename a member (a removal and an addition) | `renamed_method` |
//! | make a property read-only; make it writable | `property_made_read_only` |
//! | add a required value to a writable property; remove one | `property_value_added_required` |
//! | add an error definition, enum or structure; remove one | `added_definitions` |
//! | declare another error on a method; stop declaring it | `declared_error` |
//! | add an enum value the server writes; remove one | `added_enum_value` |
//! | give an enum value another integer | `enum_value_renumbered` |
//! | rename an enum value, keeping its integer | `renamed_enum_value` |
//! | change a method's `timeout` | `timeout_changed` |
//! | add a constant | `added_constant` |
//!
//! Rules no row runs, and why:
//!
//! - adding an enum value where the client writes the enum, and adding a required member to a
//!   structure used both ways: `Mode` and `Reading` travel only in replies, and no base version
//!   has an enum or a structure that a client writes; `switchboard diff`'s tests and the
//!   classifier test below decide them.
//! - renaming the interface and changing `configuration`: the two peers do not meet. The
//!   generated types are named after the interface (`EvolvingClient`), so a renamed one cannot
//!   share this module's bodies; over MQTT a client of another name or other topic templates
//!   uses other topics, so it hears of no server, as when there is none
//!   (`mqtt::discovery_and_compatibility`); over the Unix socket the refusal is the one
//!   `unix::mismatched_interface_is_refused_clearly` and `switchboard_core::compat`'s tests
//!   check.

use switchboard::{
    Endpoint,
    action::GoalContext,
    error::{
        CallError, ErrorCode, HandlerError, MethodError, RemoteError, TransportError,
        TransportErrorKind,
    },
    server::CallContext,
};
use switchboard_tests::evolve::{
    added_action, added_command, added_constant, added_definitions, added_enum_value, added_method,
    added_optional_argument, added_optional_return_value, added_property, added_property_value,
    added_read_only_property, added_required_argument, added_required_return_value, added_signal,
    added_struct_field, changed_type, declared_error, documentation_changed, enum_value_renumbered,
    integer_argument, integer_argument_made_unsigned, integer_argument_widened, narrowed_argument,
    narrowed_return_value, optional_to_required, removed_method, renamed_enum_value,
    renamed_method, reordered_arguments, return_value_made_optional, timeout_changed, v1,
};

use std::any::Any;

use crate::suite::within;

/// The handler of every version: it answers every method the version has.
#[derive(Clone, Copy)]
pub(crate) struct Handler;

/// Whether `setTarget` accepts, in every version: a positive temperature, unless the note is
/// `refuse`.
fn accepts(celsius: f64, note: Option<&str>) -> bool {
    celsius > 0.0 && note != Some("refuse")
}

/// One of the methods every version shares, in its v1 form: `setTarget` as [`accepts`] says,
/// `read` 21.5 °C, `mode` heat, `ping` nothing.
macro_rules! shared {
    ($version:ident, set_target) => {
        async fn set_target(
            &self,
            _: &CallContext,
            celsius: f64,
            note: Option<String>,
        ) -> Result<bool, RemoteError> {
            Ok(accepts(celsius, note.as_deref()))
        }
    };
    ($version:ident, read) => {
        async fn read(&self, _: &CallContext) -> Result<$version::Reading, RemoteError> {
            Ok($version::Reading { celsius: 21.5 })
        }
    };
    ($version:ident, mode) => {
        async fn mode(&self, _: &CallContext) -> Result<$version::Mode, RemoteError> {
            Ok($version::Mode::Heat)
        }
    };
    ($version:ident, ping) => {
        async fn ping(&self, _: &CallContext) -> Result<(), RemoteError> {
            Ok(())
        }
    };
}

/// Implements `version` for [`Handler`]: the `shared` methods in their v1 form, and the rest as
/// given.
macro_rules! handler {
    ($version:ident [$($shared:ident),* $(,)?] { $($methods:tt)* }) => {
        impl $version::Evolving for Handler {
            $(shared!($version, $shared);)*
            $($methods)*
        }
    };
}

handler!(v1[set_target, read, mode, ping] {});
handler!(added_method[set_target, read, mode, ping] {
    async fn boost(&self, _: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }
});
handler!(added_optional_argument[read, mode, ping] {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>, urgent: Option<bool>) -> Result<bool, RemoteError> {
        // An old client sends no `urgent`; it reads as `None`.
        Ok(accepts(celsius, note.as_deref()) && urgent != Some(false))
    }
});
handler!(added_struct_field[set_target, mode, ping] {
    async fn read(&self, _: &CallContext) -> Result<added_struct_field::Reading, RemoteError> {
        // The new member goes on the wire, so an old client sees a key it does not know.
        Ok(added_struct_field::Reading::new(21.5).with_humidity(40.0))
    }
});
handler!(added_enum_value[set_target, read, ping] {
    async fn mode(&self, _: &CallContext) -> Result<added_enum_value::Mode, RemoteError> {
        Ok(added_enum_value::Mode::Cool)
    }
});
handler!(removed_method[set_target, read, mode] {});
handler!(changed_type[read, mode, ping] {
    async fn set_target(&self, _: &CallContext, celsius: String, note: Option<String>) -> Result<bool, RemoteError> {
        Ok(!celsius.is_empty() && note.as_deref() != Some("refuse"))
    }
});
handler!(optional_to_required[read, mode, ping] {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: String) -> Result<bool, RemoteError> {
        Ok(accepts(celsius, Some(&note)))
    }
});
handler!(added_signal[set_target, read, mode, ping] {});
handler!(enum_value_renumbered[set_target, read, mode, ping] {});
handler!(added_property[set_target, read, mode, ping] {});
handler!(added_read_only_property[set_target, read, mode, ping] {});
handler!(added_action[set_target, read, mode, ping] {
    async fn preheat(&self, _: GoalContext<added_action::PreheatFeedback>, target_celsius: f64) -> Result<f64, HandlerError<std::convert::Infallible>> {
        Ok(target_celsius)
    }
});
handler!(added_command[set_target, read, mode, ping] {
    async fn ring(&self, _: &CallContext, _: String) -> Result<(), RemoteError> {
        Ok(())
    }
});
handler!(added_optional_return_value[read, mode, ping] {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>) -> Result<added_optional_return_value::SetTargetReply, RemoteError> {
        let accepted = accepts(celsius, note.as_deref());
        Ok(added_optional_return_value::SetTargetReply { accepted, previous: Some(20.0) })
    }
});
handler!(added_required_return_value[read, mode, ping] {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>) -> Result<added_required_return_value::SetTargetReply, RemoteError> {
        let accepted = accepts(celsius, note.as_deref());
        Ok(added_required_return_value::SetTargetReply { accepted, previous: 20.0 })
    }
});
handler!(return_value_made_optional[read, mode, ping] {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>) -> Result<Option<bool>, RemoteError> {
        Ok(Some(accepts(celsius, note.as_deref())))
    }
});
handler!(added_required_argument[read, mode, ping] {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>, zone: String) -> Result<bool, RemoteError> {
        Ok(accepts(celsius, note.as_deref()) && !zone.is_empty())
    }
});
handler!(reordered_arguments[read, mode, ping] {
    async fn set_target(&self, _: &CallContext, note: Option<String>, celsius: f64) -> Result<bool, RemoteError> {
        Ok(accepts(celsius, note.as_deref()))
    }
});
handler!(narrowed_argument[read, mode, ping] {
    async fn set_target(&self, _: &CallContext, celsius: f32, note: Option<String>) -> Result<bool, RemoteError> {
        Ok(accepts(celsius.into(), note.as_deref()))
    }
});
handler!(narrowed_return_value[set_target, read, mode, ping] {});
handler!(declared_error[read, mode, ping] {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>) -> Result<bool, HandlerError<declared_error::SetTargetError>> {
        if celsius > 30.0 {
            let too_hot = declared_error::TooHot { limit_celsius: 30.0 };
            return Err(HandlerError::Declared(too_hot.into()));
        }
        Ok(accepts(celsius, note.as_deref()))
    }
});
handler!(added_definitions[set_target, read, mode, ping] {});
handler!(added_constant[set_target, read, mode, ping] {});
handler!(timeout_changed[set_target, read, mode, ping] {});
handler!(documentation_changed[set_target, read, mode, ping] {});
handler!(renamed_method[set_target, read, mode] {
    async fn pong(&self, _: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }
});
handler!(renamed_enum_value[set_target, read, ping] {
    async fn mode(&self, _: &CallContext) -> Result<renamed_enum_value::Mode, RemoteError> {
        Ok(renamed_enum_value::Mode::Warm)
    }
});

handler!(added_property_value[set_target, read, mode, ping] {});
handler!(integer_argument[set_target, read, mode, ping] {
    async fn set_level(&self, _: &CallContext, level: i32) -> Result<bool, RemoteError> {
        Ok(level > 0)
    }
});
handler!(integer_argument_widened[set_target, read, mode, ping] {
    async fn set_level(&self, _: &CallContext, level: i64) -> Result<bool, RemoteError> {
        Ok(level > 0)
    }
});
handler!(integer_argument_made_unsigned[set_target, read, mode, ping] {
    async fn set_level(&self, _: &CallContext, level: u32) -> Result<bool, RemoteError> {
        Ok(level > 0)
    }
});

/// Serves `version` at `endpoint` with [`Handler`], starting from `properties` when the version
/// has properties.
macro_rules! serve {
    ($version:ident, $endpoint:expr) => {
        within("serve", $version::EvolvingServer::serve($endpoint, Handler))
            .await
            .expect(concat!("serve ", stringify!($version)))
    };
    ($version:ident, $endpoint:expr, $properties:expr) => {
        within("serve", $version::EvolvingServer::serve($endpoint, Handler, $properties))
            .await
            .expect(concat!("serve ", stringify!($version)))
    };
}

/// Connects a client of `version` to `endpoint`.
macro_rules! connect {
    ($version:ident, $endpoint:expr) => {
        within("connect", $version::EvolvingClient::connect($endpoint)).await
    };
}

/// The calls of v1's methods, which the server has in their v1 form: each answers as v1's
/// handler does. `version` is the client's version (v1 unless given).
macro_rules! v1_calls_work {
    ($version:ident, $client:expr) => {{
        let client = &$client;
        assert!(within("setTarget", client.set_target(21.5, Some("hi".into()))).await.unwrap());
        assert!(
            !within("setTarget", client.set_target(21.5, Some("refuse".into()))).await.unwrap()
        );
        assert!(within("setTarget", client.set_target(21.5, None)).await.unwrap());
        assert_eq!(within("read", client.read()).await.unwrap().celsius, 21.5);
        assert_eq!(within("mode", client.mode()).await.unwrap(), $version::Mode::Heat);
    }};
    ($client:expr) => {
        v1_calls_work!(v1, $client)
    };
}

/// The connect failed because the pair is incompatible at `path`, and says so.
fn refused_at(result: Result<impl Sized, TransportError>, path: &str) {
    let Err(error) = result else { panic!("connected, but `{path}` should refuse the pair") };
    assert_eq!(error.kind(), TransportErrorKind::IncompatibleInterface, "{error}");
    let message = error.to_string();
    assert!(message.contains(&format!("`{path}`")), "`{message}` should name `{path}`");
}

/// The use of a member failed before anything was sent, because the server lacks it: with the
/// error the server itself would answer (`name`: `UnknownMethod`, `UnknownProperty`, ...),
/// naming `member` (``method `boost` ``).
fn lacks(result: Result<(), CallError>, name: &str, member: &str) {
    let error = match result {
        Err(CallError::Remote(error)) => error,
        other => panic!("using {member} should fail as unknown, got {other:?}"),
    };
    assert_eq!((error.code(), error.name()), (ErrorCode::MethodNotFound, name));
    let message = error.message();
    assert!(message.contains(member) && message.contains("nothing was sent"), "{error}");
}

/// The call failed, before reaching the server, because the server lacks method `method`.
fn lacks_method(result: Result<(), CallError>, method: &str) {
    lacks(result, "UnknownMethod", &format!("method `{method}`"));
}

/// The call failure of a method or action that declares no errors.
fn undeclared(error: MethodError<std::convert::Infallible>) -> CallError {
    match error {
        MethodError::Call(error) => error,
        MethodError::Declared(never) => match never {},
        other => panic!("a method that declares no errors failed with {other:?}"),
    }
}

/// The two servers a body's clients meet, each at an endpoint of its own: one of the row's old
/// version (`old`) and one of its new version (`new`), as [`versions`] names them. The rows
/// serve them in Rust, or in Python.
pub(crate) struct Servers {
    pub(crate) old: Endpoint,
    pub(crate) new: Endpoint,
}

/// The versions (files of `tests/interfaces/evolve/`) a row's servers serve, old and new: `v1`
/// and the file the row is named after, unless the row's change is between two other files.
pub(crate) fn versions(row: &'static str) -> (&'static str, &'static str) {
    match row {
        "property_made_read_only" => ("added_property", "added_read_only_property"),
        "property_value_added_required" => ("added_property", "added_property_value"),
        "integer_argument_widened" => ("integer_argument", "integer_argument_widened"),
        "integer_argument_made_unsigned" => ("integer_argument", "integer_argument_made_unsigned"),
        row => ("v1", row),
    }
}

/// Serves `version` at `endpoint` in Rust; dropping the result stops it.
pub(crate) async fn serve_version(version: &str, endpoint: &Endpoint) -> Box<dyn Any + Send> {
    match version {
        "v1" => Box::new(serve!(v1, endpoint)),
        "added_method" => Box::new(serve!(added_method, endpoint)),
        "added_optional_argument" => Box::new(serve!(added_optional_argument, endpoint)),
        "added_struct_field" => Box::new(serve!(added_struct_field, endpoint)),
        "added_enum_value" => Box::new(serve!(added_enum_value, endpoint)),
        "removed_method" => Box::new(serve!(removed_method, endpoint)),
        "changed_type" => Box::new(serve!(changed_type, endpoint)),
        "optional_to_required" => Box::new(serve!(optional_to_required, endpoint)),
        "added_signal" => Box::new(serve!(added_signal, endpoint)),
        "enum_value_renumbered" => Box::new(serve!(enum_value_renumbered, endpoint)),
        "added_property" => {
            let properties = added_property::EvolvingProperties { limit: 25.0 };
            Box::new(serve!(added_property, endpoint, properties))
        }
        "added_read_only_property" => {
            let properties = added_read_only_property::EvolvingProperties { limit: 25.0 };
            Box::new(serve!(added_read_only_property, endpoint, properties))
        }
        "added_action" => Box::new(serve!(added_action, endpoint)),
        "added_command" => Box::new(serve!(added_command, endpoint)),
        "added_optional_return_value" => Box::new(serve!(added_optional_return_value, endpoint)),
        "added_required_return_value" => Box::new(serve!(added_required_return_value, endpoint)),
        "return_value_made_optional" => Box::new(serve!(return_value_made_optional, endpoint)),
        "added_required_argument" => Box::new(serve!(added_required_argument, endpoint)),
        "reordered_arguments" => Box::new(serve!(reordered_arguments, endpoint)),
        "narrowed_argument" => Box::new(serve!(narrowed_argument, endpoint)),
        "narrowed_return_value" => Box::new(serve!(narrowed_return_value, endpoint)),
        "declared_error" => Box::new(serve!(declared_error, endpoint)),
        "added_definitions" => Box::new(serve!(added_definitions, endpoint)),
        "added_constant" => Box::new(serve!(added_constant, endpoint)),
        "timeout_changed" => Box::new(serve!(timeout_changed, endpoint)),
        "documentation_changed" => Box::new(serve!(documentation_changed, endpoint)),
        "renamed_method" => Box::new(serve!(renamed_method, endpoint)),
        "renamed_enum_value" => Box::new(serve!(renamed_enum_value, endpoint)),
        "added_property_value" => {
            let limit = added_property_value::LimitProperty { celsius: 25.0, margin: 1.0 };
            let properties = added_property_value::EvolvingProperties { limit };
            Box::new(serve!(added_property_value, endpoint, properties))
        }
        "integer_argument" => Box::new(serve!(integer_argument, endpoint)),
        "integer_argument_widened" => Box::new(serve!(integer_argument_widened, endpoint)),
        "integer_argument_made_unsigned" => {
            Box::new(serve!(integer_argument_made_unsigned, endpoint))
        }
        other => panic!("no version `{other}` in tests/interfaces/evolve/"),
    }
}

/// Serves the two versions of `row` in Rust, the old at `old` and the new at `new`; dropping the
/// result stops both.
async fn serve_rust(row: &'static str, old: &Endpoint, new: &Endpoint) -> Vec<Box<dyn Any + Send>> {
    let (old_version, new_version) = versions(row);
    vec![serve_version(old_version, old).await, serve_version(new_version, new).await]
}

/// Adding a method: old clients work; a new client works against an old server until it calls
/// the new method, which fails naming it.
pub(crate) async fn added_method(servers: &Servers) {
    v1_calls_work!(connect!(v1, &servers.new).expect("an old client connects"));

    let client = connect!(added_method, &servers.old).expect("a new client connects");
    within("ping", client.ping()).await.expect("a method both have");
    assert!(within("setTarget", client.set_target(1.0, None)).await.unwrap());
    lacks_method(within("boost", client.boost()).await, "boost");
}

/// Adding an optional argument: both directions work; the old server ignores the new key.
pub(crate) async fn added_optional_argument(servers: &Servers) {
    v1_calls_work!(connect!(v1, &servers.new).expect("an old client connects"));

    let client = connect!(added_optional_argument, &servers.old).expect("a new client connects");
    let accepted = within("setTarget", client.set_target(21.5, Some("hi".into()), Some(false)));
    assert!(accepted.await.expect("the old server ignores `urgent`"));
    let refused = within("setTarget", client.set_target(21.5, Some("refuse".into()), Some(true)));
    assert!(!refused.await.unwrap(), "the old server read the arguments it knows");
}

/// Adding an optional member to a structure the server sends: an old client ignores the new
/// key, a new client reads its absence from an old server as `None`.
pub(crate) async fn added_struct_field(servers: &Servers) {
    v1_calls_work!(connect!(v1, &servers.new).expect("an old client connects"));

    let client = connect!(added_struct_field, &servers.old).expect("a new client connects");
    let reading = within("read", client.read()).await.unwrap();
    assert_eq!((reading.celsius, reading.humidity), (21.5, None));
    let client = connect!(added_struct_field, &servers.new).expect("same versions connect");
    assert_eq!(within("read", client.read()).await.unwrap().humidity, Some(40.0));
}

/// Adding an enum value the server sends: an old client could not read it, so the pair is
/// refused; a new client reads everything an old server sends.
pub(crate) async fn added_enum_value(servers: &Servers) {
    refused_at(connect!(v1, &servers.new), "enums.Mode.values.cool");

    let client = connect!(added_enum_value, &servers.old).expect("a new client connects");
    assert_eq!(within("mode", client.mode()).await.unwrap(), added_enum_value::Mode::Heat);
    within("ping", client.ping()).await.unwrap();
}

/// Removing a method: an old client connects and everything else works, but calling the
/// removed method fails naming it; a new client works against an old server.
pub(crate) async fn removed_method(servers: &Servers) {
    let client = connect!(v1, &servers.new).expect("an old client connects");
    lacks_method(within("ping", client.ping()).await, "ping");
    v1_calls_work!(client);

    let client = connect!(removed_method, &servers.old).expect("a new client connects");
    assert!(within("setTarget", client.set_target(1.0, None)).await.unwrap());
}

/// Changing an argument's type breaks both directions: each pair is refused, naming it.
pub(crate) async fn changed_type(servers: &Servers) {
    refused_at(connect!(v1, &servers.new), "methods.setTarget.arguments.celsius");

    refused_at(connect!(changed_type, &servers.old), "methods.setTarget.arguments.celsius");
    // The refusals cost the servers nothing: a client of their own version still works.
    v1_calls_work!(connect!(v1, &servers.old).expect("the same version connects"));
}

/// Making an optional argument required breaks old clients (they may send `null`), so that
/// pair is refused; new clients always send it, so an old server serves them. (The other way
/// round, this row runs making a required argument optional.)
pub(crate) async fn optional_to_required(servers: &Servers) {
    refused_at(connect!(v1, &servers.new), "methods.setTarget.arguments.note");

    let client = connect!(optional_to_required, &servers.old).expect("a new client connects");
    assert!(within("setTarget", client.set_target(21.5, "hi".into())).await.unwrap());
    assert!(!within("setTarget", client.set_target(21.5, "refuse".into())).await.unwrap());
}

/// Adding a signal: old clients work; a new client's subscription to it fails on an old server
/// before anything is sent, naming it, and works on a new one.
pub(crate) async fn added_signal(servers: &Servers) {
    v1_calls_work!(connect!(v1, &servers.new).expect("an old client connects"));

    let client = connect!(added_signal, &servers.old).expect("a new client connects");
    within("ping", client.ping()).await.expect("a method both have");
    let subscribed = within("subscribe", client.subscribe_alarm()).await;
    lacks(subscribed.map(drop), "UnknownSignal", "signal `alarm`");
    let client = connect!(added_signal, &servers.new).expect("same versions connect");
    within("subscribe", client.subscribe_alarm()).await.expect("the new server has `alarm`");
}

/// Giving an enum value another integer breaks both directions wherever the enum travels: each
/// pair is refused, naming the value.
pub(crate) async fn enum_value_renumbered(servers: &Servers) {
    refused_at(connect!(v1, &servers.new), "enums.Mode.values.heat");

    refused_at(connect!(enum_value_renumbered, &servers.old), "enums.Mode.values.heat");
}

/// Adding a property: old clients work; a new client's reads and updates of it fail on an old
/// server before anything is sent, naming it, and work on a new one.
pub(crate) async fn added_property(servers: &Servers) {
    v1_calls_work!(connect!(v1, &servers.new).expect("an old client connects"));

    let client = connect!(added_property, &servers.old).expect("a new client connects");
    v1_calls_work!(added_property, client);
    lacks(within("get", client.get_limit()).await.map(drop), "UnknownProperty", "property `limit`");
    lacks(within("set", client.set_limit(20.0)).await, "UnknownProperty", "property `limit`");
    let client = connect!(added_property, &servers.new).expect("same versions connect");
    assert_eq!(within("get", client.get_limit()).await.unwrap(), 25.0);
}

/// Making a property read-only: an old client may still set it, so that pair is refused,
/// naming the change; a new client only reads it, which an old server serves. (The other way
/// round, this row runs making a read-only property writable.)
pub(crate) async fn property_made_read_only(servers: &Servers) {
    refused_at(connect!(added_property, &servers.new), "properties.limit.readOnly");

    let client = connect!(added_read_only_property, &servers.old).expect("a new client connects");
    assert_eq!(within("get", client.get_limit()).await.unwrap(), 25.0);
    v1_calls_work!(added_read_only_property, client);
}

/// Adding an action: old clients work; a new client's goal fails on an old server before
/// anything is sent, naming the action, and reaches its result on a new one.
pub(crate) async fn added_action(servers: &Servers) {
    v1_calls_work!(connect!(v1, &servers.new).expect("an old client connects"));

    let client = connect!(added_action, &servers.old).expect("a new client connects");
    v1_calls_work!(added_action, client);
    let sent = within("preheat", client.preheat(25.0)).await;
    lacks(sent.map(drop).map_err(undeclared), "UnknownAction", "action `preheat`");
    let client = connect!(added_action, &servers.new).expect("same versions connect");
    let goal = within("preheat", client.preheat(25.0)).await.expect("the new server accepts");
    assert_eq!(within("result", goal.result()).await.expect("the goal succeeds"), 25.0);
}

/// Adding a command: old clients work; a new client's command fails on an old server before
/// anything is sent, naming it, and is sent to a new one.
pub(crate) async fn added_command(servers: &Servers) {
    v1_calls_work!(connect!(v1, &servers.new).expect("an old client connects"));

    let client = connect!(added_command, &servers.old).expect("a new client connects");
    v1_calls_work!(added_command, client);
    lacks(within("ring", client.ring("chime".into())).await, "UnknownCommand", "command `ring`");
    let client = connect!(added_command, &servers.new).expect("same versions connect");
    within("ring", client.ring("chime".into())).await.expect("the new server has `ring`");
    within("ping", client.ping()).await.expect("the server still answers after the command");
}

/// Adding an optional return value: an old client ignores the new key; a new client reads its
/// absence from an old server as `None`. (The other way round: removing one.)
pub(crate) async fn added_optional_return_value(servers: &Servers) {
    v1_calls_work!(connect!(v1, &servers.new).expect("an old client connects"));

    let client =
        connect!(added_optional_return_value, &servers.old).expect("a new client connects");
    let reply = within("setTarget", client.set_target(21.5, None)).await.unwrap();
    assert_eq!((reply.accepted, reply.previous), (true, None));
    let reply = within("setTarget", client.set_target(21.5, Some("refuse".into()))).await;
    assert!(!reply.unwrap().accepted);
    let client = connect!(added_optional_return_value, &servers.new).expect("same versions");
    let reply = within("setTarget", client.set_target(21.5, None)).await.unwrap();
    assert_eq!((reply.accepted, reply.previous), (true, Some(20.0)));
}

/// Adding a required return value: an old client ignores the new key; an old server does not
/// send it, so a new client's pair with one is refused, naming it. (The other way round:
/// removing one.)
pub(crate) async fn added_required_return_value(servers: &Servers) {
    v1_calls_work!(connect!(v1, &servers.new).expect("an old client connects"));

    let refused = connect!(added_required_return_value, &servers.old);
    refused_at(refused, "methods.setTarget.returnValues.previous");
    let client = connect!(added_required_return_value, &servers.new).expect("same versions");
    let reply = within("setTarget", client.set_target(21.5, None)).await.unwrap();
    assert_eq!((reply.accepted, reply.previous), (true, 20.0));
}

/// Making a return value optional: an old client cannot read `null`, so that pair is refused,
/// naming it; a new client reads what an old server sends. (The other way round: making an
/// optional return value required.)
pub(crate) async fn return_value_made_optional(servers: &Servers) {
    refused_at(connect!(v1, &servers.new), "methods.setTarget.returnValues.accepted");

    let client = connect!(return_value_made_optional, &servers.old).expect("a new client");
    let accepted = within("setTarget", client.set_target(21.5, Some("hi".into()))).await;
    assert_eq!(accepted.unwrap(), Some(true));
    let refused = within("setTarget", client.set_target(21.5, Some("refuse".into()))).await;
    assert_eq!(refused.unwrap(), Some(false));
}

/// Adding a required argument: an old client does not send it, so that pair is refused, naming
/// it; an old server ignores it, so a new client works. (The other way round: removing one.)
pub(crate) async fn added_required_argument(servers: &Servers) {
    refused_at(connect!(v1, &servers.new), "methods.setTarget.arguments.zone");

    let client = connect!(added_required_argument, &servers.old).expect("a new client connects");
    let accepted = within("setTarget", client.set_target(21.5, Some("hi".into()), "hall".into()));
    assert!(accepted.await.expect("the old server ignores `zone`"));
    let refused = client.set_target(21.5, Some("refuse".into()), "hall".into());
    assert!(!within("setTarget", refused).await.unwrap(), "it read the arguments it knows");
}

/// Reordering arguments: the wire carries names, so both directions work.
pub(crate) async fn reordered_arguments(servers: &Servers) {
    v1_calls_work!(connect!(v1, &servers.new).expect("an old client connects"));

    let client = connect!(reordered_arguments, &servers.old).expect("a new client connects");
    assert!(within("setTarget", client.set_target(Some("hi".into()), 21.5)).await.unwrap());
    let refused = within("setTarget", client.set_target(Some("refuse".into()), 21.5)).await;
    assert!(!refused.unwrap(), "the old server read each argument by its name");
    assert!(!within("setTarget", client.set_target(None, -1.0)).await.unwrap());
}

/// Narrowing an argument's format (`float64` to `float32`): an old client may send what the
/// new server refuses, so that pair is refused, naming it; a new client's values fit an old
/// server. (The other way round: widening an argument's format.)
pub(crate) async fn narrowed_argument(servers: &Servers) {
    refused_at(connect!(v1, &servers.new), "methods.setTarget.arguments.celsius");

    let client = connect!(narrowed_argument, &servers.old).expect("a new client connects");
    assert!(within("setTarget", client.set_target(21.5, None)).await.unwrap());
    let refused = within("setTarget", client.set_target(21.5, Some("refuse".into()))).await;
    assert!(!refused.unwrap());
    assert!(within("setTarget", client.set_target(f32::MAX, None)).await.unwrap());
}

/// Narrowing the format of a member the server sends (`float64` to `float32`): an old client
/// reads what a new server sends; a new client could not read everything an old server sends,
/// so that pair is refused, naming it. (The other way round: widening it.)
pub(crate) async fn narrowed_return_value(servers: &Servers) {
    v1_calls_work!(connect!(v1, &servers.new).expect("an old client connects"));

    refused_at(connect!(narrowed_return_value, &servers.old), "structures.Reading.members.celsius");
    let client = connect!(narrowed_return_value, &servers.new).expect("same versions connect");
    assert_eq!(within("read", client.read()).await.unwrap().celsius, 21.5);
}

/// Declaring another error on a method: an old client receives it as an undeclared remote
/// error with its name and values; a new client works against an old server, which never
/// raises it, and receives it declared from a new one. (The other way round: no longer
/// declaring it.)
pub(crate) async fn declared_error(servers: &Servers) {
    let client = connect!(v1, &servers.new).expect("an old client connects");
    v1_calls_work!(client);
    let error = match within("setTarget", client.set_target(35.0, None)).await {
        Err(CallError::Remote(error)) => error,
        other => panic!("35 °C should fail as `TooHot` on the new server, got {other:?}"),
    };
    assert_eq!(error.name(), "TooHot", "{error}");
    assert_eq!(error.details(), Some(&serde_json::json!({"limitCelsius": 30.0})), "{error}");

    let client = connect!(declared_error, &servers.old).expect("a new client connects");
    assert!(within("setTarget", client.set_target(35.0, None)).await.expect("the old server"));
    let client = connect!(declared_error, &servers.new).expect("same versions connect");
    match within("setTarget", client.set_target(35.0, None)).await {
        Err(MethodError::Declared(declared_error::SetTargetError::TooHot(too_hot))) => {
            assert_eq!(too_hot.limit_celsius, 30.0);
        }
        other => panic!("35 °C should fail as the declared `TooHot`, got {other:?}"),
    }
}

/// Renaming a method is removing one and adding another: each client connects, and its call
/// to the name the other side lacks fails, naming it.
pub(crate) async fn renamed_method(servers: &Servers) {
    let client = connect!(v1, &servers.new).expect("an old client connects");
    lacks_method(within("ping", client.ping()).await, "ping");
    v1_calls_work!(client);

    let client = connect!(renamed_method, &servers.old).expect("a new client connects");
    lacks_method(within("pong", client.pong()).await, "pong");
    v1_calls_work!(renamed_method, client);
}

/// Renaming an enum value, keeping its integer: the wire carries the integer, so each side
/// reads the value under its own name.
pub(crate) async fn renamed_enum_value(servers: &Servers) {
    let client = connect!(v1, &servers.new).expect("an old client connects");
    assert_eq!(within("mode", client.mode()).await.unwrap(), v1::Mode::Heat);

    let client = connect!(renamed_enum_value, &servers.old).expect("a new client connects");
    assert_eq!(within("mode", client.mode()).await.unwrap(), renamed_enum_value::Mode::Warm);
}

/// Adding a required value to a writable property: clients and servers both write its values
/// (reads and updates), and an old one never writes the new value, so each pair is refused,
/// naming it.
pub(crate) async fn property_value_added_required(servers: &Servers) {
    refused_at(connect!(added_property, &servers.new), "properties.limit.values.margin");

    refused_at(connect!(added_property_value, &servers.old), "properties.limit.values.margin");
    let client = connect!(added_property_value, &servers.new).expect("same versions connect");
    let limit = within("get", client.get_limit()).await.unwrap();
    assert_eq!((limit.celsius, limit.margin), (25.0, 1.0));
}

/// Widening an integer argument's format (`int32` to `int64`): what an old client sends fits a
/// new server; a new client may send what an old server refuses, so that pair is refused,
/// naming it. (The other way round: narrowing it.)
pub(crate) async fn integer_argument_widened(servers: &Servers) {
    let client = connect!(integer_argument, &servers.new).expect("an old client connects");
    assert!(within("setLevel", client.set_level(i32::MAX)).await.unwrap());
    assert!(!within("setLevel", client.set_level(i32::MIN)).await.unwrap());
    v1_calls_work!(integer_argument, client);

    let refused = connect!(integer_argument_widened, &servers.old);
    refused_at(refused, "methods.setLevel.arguments.level");
    let client = connect!(integer_argument_widened, &servers.new).expect("same versions connect");
    assert!(within("setLevel", client.set_level(i64::MAX)).await.unwrap());
}

/// Making an integer argument unsigned (`int32` to `uint32`): each side may send what the other
/// refuses, so each pair is refused, naming it.
pub(crate) async fn integer_argument_made_unsigned(servers: &Servers) {
    refused_at(connect!(integer_argument, &servers.new), "methods.setLevel.arguments.level");

    let refused = connect!(integer_argument_made_unsigned, &servers.old);
    refused_at(refused, "methods.setLevel.arguments.level");
    // The refusals cost the servers nothing: a client of their own version still works.
    let client = connect!(integer_argument, &servers.old).expect("the same version connects");
    assert!(within("setLevel", client.set_level(1)).await.unwrap());
}

/// Rows whose change is safe both ways and changes nothing a call carries: every call works in
/// both directions.
macro_rules! works_both_ways {
    ($($row:ident: $doc:literal),* $(,)?) => {$(
        #[doc = $doc]
        pub(crate) async fn $row(servers: &Servers) {
            let client = connect!(v1, &servers.new).expect("an old client connects");
            v1_calls_work!(client);
            within("ping", client.ping()).await.expect("a method both have");
            let client = connect!($row, &servers.old).expect("a new client connects");
            v1_calls_work!($row, client);
            within("ping", client.ping()).await.expect("a method both have");
        }
    )*};
}

works_both_ways!(
    added_definitions: "Adding an error definition, an enum and a structure nothing uses.",
    added_constant: "Adding a constant: constants never travel.",
    timeout_changed: "Changing a method's timeout: it is the client's own.",
    documentation_changed: "Changing documentation, a title, a description and a method's version.",
);

/// Serves the two versions of `row` in Rust at endpoints from `endpoint`, and runs `row`'s
/// body against them.
macro_rules! rust_row {
    ($row:ident, $endpoint:expr) => {{
        let endpoint = $endpoint;
        let servers = super::Servers { old: endpoint("old-server"), new: endpoint("new-server") };
        let _running = super::serve_rust(stringify!($row), &servers.old, &servers.new).await;
        super::$row(&servers).await;
    }};
}

/// Every row above, for a transport's instantiating macro.
macro_rules! every_body {
    ($instantiate:ident) => {
        $instantiate!(
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
            property_made_read_only,
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
            property_value_added_required,
            integer_argument_widened,
            integer_argument_made_unsigned,
        );
    };
}

pub(crate) use every_body;

mod unix {
    use switchboard_testkit::SocketDir;

    macro_rules! unix_matrix {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                switchboard_testkit::init_tracing();
                let dir = SocketDir::new();
                rust_row!($name, |tag: &str| dir.endpoint(tag));
            }
        )*};
    }

    every_body!(unix_matrix);
}

mod mqtt {
    use switchboard::Endpoint;
    use switchboard_testkit::broker::shared_mosquitto;

    macro_rules! mqtt_matrix {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                switchboard_testkit::init_tracing();
                let Some(broker) = shared_mosquitto() else { return };
                let prefix = format!("evolve-{}-{}", stringify!($name), std::process::id());
                let used = std::sync::Mutex::new(Vec::new());
                let endpoint = |tag: &str| {
                    let instance = format!("{prefix}-{tag}");
                    used.lock().unwrap().push(instance.clone());
                    let separator = if broker.url.contains('?') { '&' } else { '?' };
                    Endpoint::parse(&format!("{}{separator}instance={instance}", broker.url))
                        .expect("a valid MQTT URL")
                };
                rust_row!($name, &endpoint);
                for instance in used.into_inner().unwrap() {
                    crate::mqtt::raw::clear_retained(&broker.url, &instance).await;
                }
            }
        )*};
    }

    every_body!(mqtt_matrix);
}

mod memory {
    use switchboard_testkit::memory::MemoryBroker;

    macro_rules! memory_matrix {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                switchboard_testkit::init_tracing();
                let broker = MemoryBroker::nats_like(concat!("evolve-", stringify!($name)));
                rust_row!($name, |tag: &str| broker.endpoint(tag));
            }
        )*};
    }

    every_body!(memory_matrix);
}

/// The Python rows: for each change, over the Unix socket and MQTT, `tests/python/evolve_peer.py`'s
/// Python clients of v1 and of the change against Rust servers, and the body's Rust clients
/// against Python servers.
mod python {
    use switchboard::Endpoint;
    use switchboard_testkit::broker::shared_mosquitto;

    use crate::python::{PyEnv, expect_line, py, socket_url, stop_python_server};

    /// Two fresh URLs (old server, new server) on `transport` for the test `role` of `change`,
    /// and the MQTT instances to clear afterwards; `None` when the transport is unavailable
    /// outside CI.
    fn urls(transport: &str, role: &str, change: &str) -> Option<(String, String, Vec<String>)> {
        if transport == "unix" {
            return Some((socket_url(), socket_url(), Vec::new()));
        }
        let broker = shared_mosquitto()?;
        let separator = if broker.url.contains('?') { '&' } else { '?' };
        let instance =
            |tag: &str| format!("evolve-py-{role}-{change}-{}-{tag}", std::process::id());
        let (old, new) = (instance("old"), instance("new"));
        Some((
            format!("{}{separator}instance={old}", broker.url),
            format!("{}{separator}instance={new}", broker.url),
            vec![old, new],
        ))
    }

    /// `evolve_peer.py`'s arguments for `role` in `row`, with the row's two versions.
    fn args(role: &str, row: &'static str, env: &PyEnv, urls: &(String, String)) -> Vec<String> {
        let generated = env.evolve_packages().display().to_string();
        let (old, new) = super::versions(row);
        [role, row, old, new, &generated, &urls.0, &urls.1].map(str::to_owned).to_vec()
    }

    /// Python clients of the old and the new version of `row` against Rust servers: they must
    /// print PASS.
    pub(super) async fn python_clients(transport: &str, change: &'static str) {
        let Some(env) = py() else { return };
        let Some((old, new, instances)) = urls(transport, "clients", change) else { return };
        let servers = super::Servers {
            old: Endpoint::parse(&old).expect("a valid URL"),
            new: Endpoint::parse(&new).expect("a valid URL"),
        };
        let running = super::serve_rust(change, &servers.old, &servers.new).await;
        let pair = (old, new);
        let args = args("client", change, env, &pair);
        let mut client =
            env.spawn("evolve_peer.py", &args.iter().map(String::as_str).collect::<Vec<_>>());
        expect_line(&mut client, "PASS").await;
        drop(running);
        if let Some(broker) = shared_mosquitto() {
            for instance in instances {
                crate::mqtt::raw::clear_retained(&broker.url, &instance).await;
            }
        }
    }

    /// Python servers of the two versions of `change`; the body's Rust clients run against them.
    macro_rules! python_servers {
        ($transport:literal, $change:ident) => {{
            let Some(env) = py() else { return };
            let Some((old, new, _)) = urls($transport, "servers", stringify!($change)) else {
                return;
            };
            let pair = (old, new);
            let args = args("serve", stringify!($change), env, &pair);
            let mut server =
                env.spawn("evolve_peer.py", &args.iter().map(String::as_str).collect::<Vec<_>>());
            expect_line(&mut server, "READY").await;
            let servers = crate::evolve::Servers {
                old: Endpoint::parse(&pair.0).expect("a valid URL"),
                new: Endpoint::parse(&pair.1).expect("a valid URL"),
            };
            crate::evolve::$change(&servers).await;
            stop_python_server(&mut server).await;
        }};
    }

    macro_rules! python_matrix {
        ($($name:ident),* $(,)?) => {$(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn unix_python_clients() {
                    switchboard_testkit::init_tracing();
                    python_clients("unix", stringify!($name)).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn unix_python_servers() {
                    switchboard_testkit::init_tracing();
                    python_servers!("unix", $name);
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mqtt_python_clients() {
                    switchboard_testkit::init_tracing();
                    python_clients("mqtt", stringify!($name)).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mqtt_python_servers() {
                    switchboard_testkit::init_tracing();
                    python_servers!("mqtt", $name);
                }
            }
        )*};
    }

    every_body!(python_matrix);

    /// A Python client over MQTT follows the interface info of its instance after connecting, as
    /// the Rust client does: a client of `added_method` meets a v1 server (so `boost` fails as
    /// lacking, before sending), the server is restarted as `added_method` at the same instance,
    /// and `boost` then reaches it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mqtt_python_client_decides_again_when_the_server_changes_version() {
        use super::Handler;
        use crate::suite::within;
        use switchboard_tests::evolve::{added_method, v1};

        switchboard_testkit::init_tracing();
        let Some(env) = py() else { return };
        let Some((_, url, instances)) = urls("mqtt", "follow", "added_method") else { return };
        let endpoint = Endpoint::parse(&url).expect("a valid URL");
        let old_server = serve!(v1, &endpoint);
        let pair = (url.clone(), url);
        let args = args("follow", "added_method", env, &pair);
        let mut client =
            env.spawn("evolve_peer.py", &args.iter().map(String::as_str).collect::<Vec<_>>());
        expect_line(&mut client, "SWAP").await;
        drop(old_server);
        let _new_server = serve!(added_method, &endpoint);
        expect_line(&mut client, "PASS").await;
        if let Some(broker) = shared_mosquitto() {
            for instance in instances {
                crate::mqtt::raw::clear_retained(&broker.url, &instance).await;
            }
        }
    }
}

/// The handshake a peer built from `file` sends: its interface with its description.
pub(crate) fn hello_of(file: &std::path::Path) -> switchboard_core::compat::Hello {
    let loaded = switchboard_codegen::load_file(file).expect("a readable file");
    let iface = loaded
        .parsed
        .interface
        .unwrap_or_else(|| panic!("{} is a valid interface", file.display()));
    switchboard_core::compat::Hello {
        protocol: 1,
        interface: iface.name.clone(),
        version: iface.version.clone(),
        hash: Some(iface.description_hash()),
        instance: "default".into(),
        description: serde_json::from_str(&iface.description_json()).ok(),
    }
}

/// The pairs of peers every second classifier is held to: every client and server of
/// `tests/interfaces/evolve/`, and both directions (old client and new server, new client and
/// old server) of every rule pair of `switchboard diff`'s tests
/// (`crates/switchboard-idl/tests/data/diff/RULE/{old,new}.yaml`), which hold one pair per rule
/// of docs/interface-format.md.
pub(crate) struct ClassifierCases {
    /// What each pair is, for messages.
    names: Vec<String>,
    /// Each pair as JSON, `[client Hello, server Hello]`, the input of a second classifier.
    pairs: serde_json::Value,
    /// What `switchboard_core::compat::check` decides for each pair:
    /// `{"lacking": [[section, name], ...]}` (sorted) or `{"refused": message}`.
    expected: Vec<serde_json::Value>,
}

impl ClassifierCases {
    /// Every pair, with the Rust classifier's decisions.
    pub(crate) fn all() -> Self {
        use switchboard_core::compat;

        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let sorted_entries = |dir: &std::path::Path| {
            let mut paths: Vec<_> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|entry| entry.expect("a directory entry").path())
                .collect();
            paths.sort();
            paths
        };
        // (what the pair is, client's file, server's file)
        let mut cases: Vec<(String, std::path::PathBuf, std::path::PathBuf)> = Vec::new();
        let versions: Vec<_> = sorted_entries(&root.join("interfaces/evolve"))
            .into_iter()
            .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
            .collect();
        for client in &versions {
            for server in &versions {
                let what = format!(
                    "a client of {} against a server of {}",
                    client.display(),
                    server.display()
                );
                cases.push((what, client.clone(), server.clone()));
            }
        }
        let rules = sorted_entries(&root.join("../crates/switchboard-idl/tests/data/diff"));
        assert!(rules.len() > 50, "the rule pairs of switchboard-idl's diff tests");
        for rule in &rules {
            let (old, new) = (rule.join("old.yaml"), rule.join("new.yaml"));
            let name = rule.file_name().unwrap().to_string_lossy();
            cases.push((
                format!("rule {name}: an old client, a new server"),
                old.clone(),
                new.clone(),
            ));
            cases.push((format!("rule {name}: a new client, an old server"), new, old));
        }
        let mut pairs = Vec::new();
        let mut expected = Vec::new();
        for (_, client, server) in &cases {
            let (client, server) = (hello_of(client), hello_of(server));
            expected.push(match compat::check(&client, &server) {
                Ok(agreement) => {
                    let mut lacking: Vec<[String; 2]> = agreement
                        .lacking
                        .iter()
                        .map(|m| [m.kind.section().to_owned(), m.name.clone()])
                        .collect();
                    lacking.sort();
                    serde_json::json!({ "lacking": lacking })
                }
                Err(error) => serde_json::json!({ "refused": error.to_string() }),
            });
            pairs.push(serde_json::json!([client, server]));
        }
        let refusals = expected.iter().filter(|e| e.get("refused").is_some()).count();
        let lacking =
            expected.iter().filter(|e| e["lacking"].as_array().is_some_and(|l| !l.is_empty()));
        assert!(refusals > 0 && refusals < expected.len(), "the pairs cover both outcomes");
        assert!(lacking.count() > 0, "some pairs connect with members lacking");
        let names = cases.into_iter().map(|(what, _, _)| what).collect();
        ClassifierCases { names, pairs: serde_json::Value::Array(pairs), expected }
    }

    /// Writes the pairs to a JSON file of their own, runs `classifier` on it (a program that
    /// prints its decisions as one JSON list, in the form of `expected`) and fails the test
    /// unless `who`'s classifier decided every pair as the Rust one did, word for word.
    pub(crate) fn assert_agree(
        &self,
        who: &str,
        classifier: impl FnOnce(&std::path::Path) -> std::process::Output,
    ) {
        let input =
            std::env::temp_dir().join(format!("evolve-pairs-{who}-{}.json", std::process::id()));
        std::fs::write(&input, serde_json::to_vec(&self.pairs).unwrap()).unwrap();
        let output = classifier(&input);
        let _ = std::fs::remove_file(&input);
        assert!(
            output.status.success(),
            "{who}'s classifier failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let got: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{who}'s classifier prints one JSON list: {e}"));
        assert_eq!(got.len(), self.expected.len(), "{who} decided every pair");
        let disagreements: Vec<String> = self
            .names
            .iter()
            .zip(got.iter().zip(&self.expected))
            .filter(|(_, (got, expected))| got != expected)
            .map(|(what, (got, expected))| format!("{what}: {who} decided {got}, Rust {expected}"))
            .collect();
        assert!(
            disagreements.is_empty(),
            "{} disagreements:\n{}",
            disagreements.len(),
            disagreements.join("\n")
        );
    }
}

/// The Python runtime's classifier (`python/src/switchboard/_compat.py`, a second implementation
/// of docs/interface-format.md's rules) decides every pair of [`ClassifierCases`] as
/// `switchboard_core::compat::check` does: the same members lacking, or the same refusal, word
/// for word. (`cpp::cpp_classifier_agrees_with_rust` holds the C++ runtime's to the same.)
#[test]
fn python_classifier_agrees_with_rust() {
    let Some(env) = crate::python::py() else { return };
    ClassifierCases::all().assert_agree("Python", |input| {
        env.command("compat_check.py", &[input.to_str().unwrap()]).output().unwrap()
    });
}

/// Versions meeting on the brokered layer (NATS): what a server's heartbeat carries, and a
/// rolling upgrade, in which replicas of one instance (`replicas=shared`) serve two versions.
mod brokered {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use switchboard::{Endpoint, error::CallError};
    use switchboard_broker::{BusMessage, DiscoveryFilter, layout};
    use switchboard_testkit::{ChildProcess, broker::shared_nats};
    use switchboard_tests::evolve::{added_method, v1};
    use tokio::sync::mpsc;

    use super::{Handler, lacks_method};
    use crate::suite::within;

    fn instance(what: &str) -> String {
        format!("evolve-{what}-{}", std::process::id())
    }

    async fn next(
        announcements: &mut mpsc::UnboundedReceiver<serde_json::Value>,
    ) -> serde_json::Value {
        within("an announcement", announcements.recv()).await.expect("the subscription is open")
    }

    /// A server's heartbeat carries its hash but not its description; a discovery probe is
    /// answered with the description, once. Prints both sizes (the figure docs/wire/brokers.md
    /// quotes).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nats_heartbeats_carry_the_hash_and_a_probe_gets_the_description() {
        switchboard_testkit::init_tracing();
        let Some(nats) = shared_nats() else { return };
        let instance = instance("heartbeat");
        let raw = switchboard_transport_nats::parse(&nats.url).unwrap().address;
        let raw = raw.open("raw").await.expect("a raw connection");
        let (tx, mut announcements) = mpsc::unbounded_channel::<serde_json::Value>();
        let sink: switchboard_broker::Sink = std::sync::Arc::new(move |_: &str, m: BusMessage| {
            let _ = tx.send(serde_json::from_slice(&m.body).expect("a JSON presence"));
        });
        let presence = format!("_sb.presence.Evolving.{instance}");
        raw.subscribe(&presence, sink).await.expect("subscribed");
        let url = format!("{}?instance={instance}&heartbeat=100ms", nats.url);
        let _server = serve!(added_method, &Endpoint::parse(&url).unwrap());

        // The announcement at start carries the description; the heartbeats after it do not
        // (an announcement answering another test's probe may come between them).
        let first = next(&mut announcements).await;
        assert!(first.get("description").is_some() && first.get("brief").is_none(), "{first}");
        let full = serde_json::to_vec(&first).unwrap().len();
        let mut heartbeats = Vec::new();
        for _ in 0..20 {
            let heartbeat = next(&mut announcements).await;
            if heartbeat["brief"] == true {
                assert!(heartbeat.get("description").is_none(), "{heartbeat}");
                assert_eq!(heartbeat["hash"], first["hash"]);
                heartbeats.push(serde_json::to_vec(&heartbeat).unwrap().len());
            }
            if heartbeats.len() == 3 {
                break;
            }
        }
        assert_eq!(heartbeats.len(), 3, "three brief heartbeats among 20 announcements");
        let brief = heartbeats[0];
        eprintln!(
            "server presence: {full} bytes with the description, {brief} bytes in a heartbeat"
        );
        assert!(brief * 2 < full, "a heartbeat ({brief} B) is much smaller than {full} B");

        // A probe is answered with the description.
        let probe = DiscoveryFilter::any().interface("Evolving").instance(instance.clone());
        let probe = Bytes::from(serde_json::to_vec(&probe).unwrap());
        raw.publish(layout::DISCOVER, BusMessage::new(probe)).await.expect("probed");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let answer = next(&mut announcements).await;
            if answer.get("brief").is_none() {
                assert_eq!(answer["description"]["name"], "Evolving", "{answer}");
                break;
            }
            assert!(Instant::now() < deadline, "no answer to the probe with the description");
        }
    }

    /// Waits until `call` fails locally because a live server lacks `method` and the refusal
    /// names replicas of several versions (the client has heard of both replicas), for at most
    /// 10 s; returns the refusal's message.
    async fn until_lacking_on_replicas<F: std::future::Future<Output = Result<(), CallError>>>(
        method: &str,
        mut call: impl FnMut() -> F,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Err(CallError::Remote(error)) = within(method, call()).await
                && error.message().contains("nothing was sent")
                && error.message().contains("replicas of ")
            {
                let message = error.message().to_owned();
                lacks_method(Err(CallError::Remote(error)), method);
                return message;
            }
            assert!(Instant::now() < deadline, "`{method}` never failed as lacking on replicas");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A rolling upgrade: two replica processes of one instance (`switchboard-test-server
    /// --evolving`), one serving v1 and one `added_method` (v1 plus `boost`). A v1 client's calls all work, whichever replica takes them (its
    /// requests carry no hash while the live replicas serve two); a client of `added_method` may
    /// use everything both have, but `boost`, which the v1 replica lacks, fails before sending
    /// and names both versions; once the v1 replica leaves, `boost` works.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nats_replicas_of_two_versions() {
        switchboard_testkit::init_tracing();
        let Some(nats) = shared_nats() else { return };
        let url = format!("{}?instance={}&heartbeat=200ms", nats.url, instance("rolling"));
        let replica = format!("{url}&replicas=shared");
        let endpoint = Endpoint::parse(&url).unwrap();
        let server = env!("CARGO_BIN_EXE_switchboard-test-server");
        let mut old_replica = ChildProcess::spawn(server, &["--evolving", "v1", &replica]);
        let _new_replica = ChildProcess::spawn(server, &["--evolving", "added_method", &replica]);

        let new_client = connect!(added_method, &endpoint).expect("a new client connects");
        let message = until_lacking_on_replicas("boost", || new_client.boost()).await;
        assert!(
            message.contains("Evolving 1.0.0 (sha256:")
                && message.contains("Evolving 1.1.0 (sha256:"),
            "the refusal names both versions: {message}"
        );
        let old_client = connect!(v1, &endpoint).expect("an old client connects");
        // Give the old client time to hear both replicas, then call often enough that both
        // replicas take some calls.
        tokio::time::sleep(Duration::from_millis(600)).await;
        for _ in 0..20 {
            v1_calls_work!(old_client);
            within("ping", new_client.ping()).await.expect("a method both replicas have");
        }

        // A clean stop: its farewell tells the clients at once.
        let stopped = old_replica.terminate(Duration::from_secs(10));
        assert!(
            stopped.is_some_and(|status| status.success()),
            "the v1 replica stops: {stopped:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while within("boost", new_client.boost()).await.is_err() {
            assert!(Instant::now() < deadline, "`boost` did not work once only its version served");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        v1_calls_work!(old_client);
    }
}
