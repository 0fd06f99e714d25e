//! The compatibility matrix: for each rule of docs/interface-format.md ("Compatibility between
//! versions") that `tests/interfaces/evolve/` has a file for, a client generated from the old
//! version against a server generated from the new one, and a client of the new version against
//! a server of the old one, for real over each transport. The compatible pairs work end to end;
//! the breaking ones are refused at connect time with the first breaking difference, or, for a
//! member the server lacks, fail when used with an error naming it.
//!
//! Each body takes `endpoint(tag)`, which gives a fresh endpoint (a socket, an MQTT instance, an
//! instance on the in-memory broker of the brokered layer) per server it starts.

use switchboard::{
    Endpoint,
    error::{CallError, ErrorCode, RemoteError, TransportError, TransportErrorKind},
    server::CallContext,
};
use switchboard_tests::evolve::{
    added_enum_value, added_method, added_optional_argument, added_struct_field, changed_type,
    optional_to_required, removed_method, v1,
};

use crate::suite::within;

/// The handler of one version: it answers every method the version has.
#[derive(Clone, Copy)]
struct Handler;

/// Implements the methods every version shares in its v1 form (`read` without `humidity`,
/// `mode`), plus the `setTarget` and extra methods given.
macro_rules! handler {
    ($version:ident { $($methods:tt)* }) => {
        impl $version::Evolving for Handler {
            $($methods)*
        }
    };
}

handler!(v1 {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>) -> Result<bool, RemoteError> {
        Ok(celsius > 0.0 && note.as_deref() != Some("refuse"))
    }
    async fn read(&self, _: &CallContext) -> Result<v1::Reading, RemoteError> {
        Ok(v1::Reading { celsius: 21.5 })
    }
    async fn mode(&self, _: &CallContext) -> Result<v1::Mode, RemoteError> {
        Ok(v1::Mode::Heat)
    }
    async fn ping(&self, _: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }
});

handler!(added_method {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>) -> Result<bool, RemoteError> {
        Ok(celsius > 0.0 && note.as_deref() != Some("refuse"))
    }
    async fn read(&self, _: &CallContext) -> Result<added_method::Reading, RemoteError> {
        Ok(added_method::Reading { celsius: 21.5 })
    }
    async fn mode(&self, _: &CallContext) -> Result<added_method::Mode, RemoteError> {
        Ok(added_method::Mode::Heat)
    }
    async fn ping(&self, _: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }
    async fn boost(&self, _: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }
});

handler!(added_optional_argument {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>, urgent: Option<bool>) -> Result<bool, RemoteError> {
        // An old client sends no `urgent`; it reads as `None`.
        Ok(celsius > 0.0 && note.as_deref() != Some("refuse") && urgent != Some(false))
    }
    async fn read(&self, _: &CallContext) -> Result<added_optional_argument::Reading, RemoteError> {
        Ok(added_optional_argument::Reading { celsius: 21.5 })
    }
    async fn mode(&self, _: &CallContext) -> Result<added_optional_argument::Mode, RemoteError> {
        Ok(added_optional_argument::Mode::Heat)
    }
    async fn ping(&self, _: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }
});

handler!(added_struct_field {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>) -> Result<bool, RemoteError> {
        Ok(celsius > 0.0 && note.as_deref() != Some("refuse"))
    }
    async fn read(&self, _: &CallContext) -> Result<added_struct_field::Reading, RemoteError> {
        // The new member goes on the wire, so an old client sees a key it does not know.
        Ok(added_struct_field::Reading::new(21.5).with_humidity(40.0))
    }
    async fn mode(&self, _: &CallContext) -> Result<added_struct_field::Mode, RemoteError> {
        Ok(added_struct_field::Mode::Heat)
    }
    async fn ping(&self, _: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }
});

handler!(added_enum_value {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>) -> Result<bool, RemoteError> {
        Ok(celsius > 0.0 && note.as_deref() != Some("refuse"))
    }
    async fn read(&self, _: &CallContext) -> Result<added_enum_value::Reading, RemoteError> {
        Ok(added_enum_value::Reading { celsius: 21.5 })
    }
    async fn mode(&self, _: &CallContext) -> Result<added_enum_value::Mode, RemoteError> {
        Ok(added_enum_value::Mode::Cool)
    }
    async fn ping(&self, _: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }
});

handler!(removed_method {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>) -> Result<bool, RemoteError> {
        Ok(celsius > 0.0 && note.as_deref() != Some("refuse"))
    }
    async fn read(&self, _: &CallContext) -> Result<removed_method::Reading, RemoteError> {
        Ok(removed_method::Reading { celsius: 21.5 })
    }
    async fn mode(&self, _: &CallContext) -> Result<removed_method::Mode, RemoteError> {
        Ok(removed_method::Mode::Heat)
    }
});

handler!(changed_type {
    async fn set_target(&self, _: &CallContext, celsius: String, note: Option<String>) -> Result<bool, RemoteError> {
        Ok(!celsius.is_empty() && note.as_deref() != Some("refuse"))
    }
    async fn read(&self, _: &CallContext) -> Result<changed_type::Reading, RemoteError> {
        Ok(changed_type::Reading { celsius: 21.5 })
    }
    async fn mode(&self, _: &CallContext) -> Result<changed_type::Mode, RemoteError> {
        Ok(changed_type::Mode::Heat)
    }
    async fn ping(&self, _: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }
});

handler!(optional_to_required {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: String) -> Result<bool, RemoteError> {
        Ok(celsius > 0.0 && note != "refuse")
    }
    async fn read(&self, _: &CallContext) -> Result<optional_to_required::Reading, RemoteError> {
        Ok(optional_to_required::Reading { celsius: 21.5 })
    }
    async fn mode(&self, _: &CallContext) -> Result<optional_to_required::Mode, RemoteError> {
        Ok(optional_to_required::Mode::Heat)
    }
    async fn ping(&self, _: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }
});

/// Serves `version` at `endpoint` with [`Handler`].
macro_rules! serve {
    ($version:ident, $endpoint:expr) => {
        within("serve", $version::EvolvingServer::serve($endpoint, Handler))
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

/// A v1 client's calls, all of which the server has: each answers as v1's handler does.
macro_rules! v1_calls_work {
    ($client:expr) => {{
        let client = &$client;
        assert!(within("setTarget", client.set_target(21.5, Some("hi".into()))).await.unwrap());
        assert!(
            !within("setTarget", client.set_target(21.5, Some("refuse".into()))).await.unwrap()
        );
        assert!(within("setTarget", client.set_target(21.5, None)).await.unwrap());
        assert_eq!(within("read", client.read()).await.unwrap().celsius, 21.5);
        assert_eq!(within("mode", client.mode()).await.unwrap(), v1::Mode::Heat);
    }};
}

/// The connect failed because the pair is incompatible at `path`, and says so.
fn refused_at(result: Result<impl Sized, TransportError>, path: &str) {
    let Err(error) = result else { panic!("connected, but `{path}` should refuse the pair") };
    assert_eq!(error.kind(), TransportErrorKind::IncompatibleInterface, "{error}");
    let message = error.to_string();
    assert!(message.contains(&format!("`{path}`")), "`{message}` should name `{path}`");
}

/// The call failed, before reaching the server, because the server lacks method `method`.
fn lacks_method(result: Result<(), CallError>, method: &str) {
    let error = match result {
        Err(CallError::Remote(error)) => error,
        other => panic!("calling `{method}` should fail as unknown, got {other:?}"),
    };
    assert_eq!((error.code(), error.name()), (ErrorCode::MethodNotFound, "UnknownMethod"));
    assert!(error.message().contains(&format!("method `{method}`")), "{error}");
}

/// Adding a method: old clients work; a new client works against an old server until it calls
/// the new method, which fails naming it.
pub(crate) async fn added_method(endpoint: &dyn Fn(&str) -> Endpoint) {
    let new_server = endpoint("new-server");
    let _server = serve!(added_method, &new_server);
    v1_calls_work!(connect!(v1, &new_server).expect("an old client connects"));

    let old_server = endpoint("old-server");
    let _server = serve!(v1, &old_server);
    let client = connect!(added_method, &old_server).expect("a new client connects");
    within("ping", client.ping()).await.expect("a method both have");
    assert!(within("setTarget", client.set_target(1.0, None)).await.unwrap());
    lacks_method(within("boost", client.boost()).await, "boost");
}

/// Adding an optional argument: both directions work; the old server ignores the new key.
pub(crate) async fn added_optional_argument(endpoint: &dyn Fn(&str) -> Endpoint) {
    let new_server = endpoint("new-server");
    let _server = serve!(added_optional_argument, &new_server);
    v1_calls_work!(connect!(v1, &new_server).expect("an old client connects"));

    let old_server = endpoint("old-server");
    let _server = serve!(v1, &old_server);
    let client = connect!(added_optional_argument, &old_server).expect("a new client connects");
    let accepted = within("setTarget", client.set_target(21.5, Some("hi".into()), Some(false)));
    assert!(accepted.await.expect("the old server ignores `urgent`"));
    let refused = within("setTarget", client.set_target(21.5, Some("refuse".into()), Some(true)));
    assert!(!refused.await.unwrap(), "the old server read the arguments it knows");
}

/// Adding an optional member to a structure the server sends: an old client ignores the new
/// key, a new client reads its absence from an old server as `None`.
pub(crate) async fn added_struct_field(endpoint: &dyn Fn(&str) -> Endpoint) {
    let new_server = endpoint("new-server");
    let _server = serve!(added_struct_field, &new_server);
    v1_calls_work!(connect!(v1, &new_server).expect("an old client connects"));

    let old_server = endpoint("old-server");
    let _server = serve!(v1, &old_server);
    let client = connect!(added_struct_field, &old_server).expect("a new client connects");
    let reading = within("read", client.read()).await.unwrap();
    assert_eq!((reading.celsius, reading.humidity), (21.5, None));
    let new_server = endpoint("new-server-2");
    let _server = serve!(added_struct_field, &new_server);
    let client = connect!(added_struct_field, &new_server).expect("same versions connect");
    assert_eq!(within("read", client.read()).await.unwrap().humidity, Some(40.0));
}

/// Adding an enum value the server sends: an old client could not read it, so the pair is
/// refused; a new client reads everything an old server sends.
pub(crate) async fn added_enum_value(endpoint: &dyn Fn(&str) -> Endpoint) {
    let new_server = endpoint("new-server");
    let _server = serve!(added_enum_value, &new_server);
    refused_at(connect!(v1, &new_server), "enums.Mode.values.cool");

    let old_server = endpoint("old-server");
    let _server = serve!(v1, &old_server);
    let client = connect!(added_enum_value, &old_server).expect("a new client connects");
    assert_eq!(within("mode", client.mode()).await.unwrap(), added_enum_value::Mode::Heat);
    within("ping", client.ping()).await.unwrap();
}

/// Removing a method: an old client connects and everything else works, but calling the
/// removed method fails naming it; a new client works against an old server.
pub(crate) async fn removed_method(endpoint: &dyn Fn(&str) -> Endpoint) {
    let new_server = endpoint("new-server");
    let _server = serve!(removed_method, &new_server);
    let client = connect!(v1, &new_server).expect("an old client connects");
    lacks_method(within("ping", client.ping()).await, "ping");
    v1_calls_work!(client);

    let old_server = endpoint("old-server");
    let _server = serve!(v1, &old_server);
    let client = connect!(removed_method, &old_server).expect("a new client connects");
    assert!(within("setTarget", client.set_target(1.0, None)).await.unwrap());
}

/// Changing an argument's type breaks both directions: each pair is refused, naming it.
pub(crate) async fn changed_type(endpoint: &dyn Fn(&str) -> Endpoint) {
    let new_server = endpoint("new-server");
    let _server = serve!(changed_type, &new_server);
    refused_at(connect!(v1, &new_server), "methods.setTarget.arguments.celsius");

    let old_server = endpoint("old-server");
    let _server = serve!(v1, &old_server);
    refused_at(connect!(changed_type, &old_server), "methods.setTarget.arguments.celsius");
    // The refusals cost the servers nothing: a client of their own version still works.
    v1_calls_work!(connect!(v1, &old_server).expect("the same version connects"));
}

/// Making an optional argument required breaks old clients (they may send `null`), so that
/// pair is refused; new clients always send it, so an old server serves them.
pub(crate) async fn optional_to_required(endpoint: &dyn Fn(&str) -> Endpoint) {
    let new_server = endpoint("new-server");
    let _server = serve!(optional_to_required, &new_server);
    refused_at(connect!(v1, &new_server), "methods.setTarget.arguments.note");

    let old_server = endpoint("old-server");
    let _server = serve!(v1, &old_server);
    let client = connect!(optional_to_required, &old_server).expect("a new client connects");
    assert!(within("setTarget", client.set_target(21.5, "hi".into())).await.unwrap());
    assert!(!within("setTarget", client.set_target(21.5, "refuse".into())).await.unwrap());
}

/// Every body above, for a transport's instantiating macro.
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
        );
    };
}

mod unix {
    use switchboard_testkit::SocketDir;

    macro_rules! unix_matrix {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                switchboard_testkit::init_tracing();
                let dir = SocketDir::new();
                super::$name(&|tag: &str| dir.endpoint(tag)).await;
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
                super::$name(&endpoint).await;
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
                super::$name(&|tag: &str| broker.endpoint(tag)).await;
            }
        )*};
    }

    every_body!(memory_matrix);
}
