//! The compatibility matrix: for each rule of docs/interface-format.md ("Compatibility between
//! versions") that `tests/interfaces/evolve/` has a file for, a client generated from the old
//! version against a server generated from the new one, and a client of the new version against
//! a server of the old one, for real over each transport. The compatible pairs work end to end;
//! the breaking ones are refused at connect time with the first breaking difference, or, for a
//! member the server lacks, fail when used with an error naming it.
//!
//! Each body takes the [`Servers`] its clients meet: one of v1 and one of the changed version,
//! each at an endpoint of its own (a socket, an MQTT instance, an instance on the in-memory
//! broker of the brokered layer). The Rust rows serve them in Rust; the Python rows run the
//! same bodies against Python servers, and `tests/python/evolve_peer.py`'s Python clients, with
//! the same expectations, against Rust servers.

use switchboard::{
    Endpoint,
    error::{CallError, ErrorCode, RemoteError, TransportError, TransportErrorKind},
    server::CallContext,
};
use switchboard_tests::evolve::{
    added_enum_value, added_method, added_optional_argument, added_signal, added_struct_field,
    changed_type, enum_value_renumbered, optional_to_required, removed_method, v1,
};

use std::any::Any;

use crate::suite::within;

/// The handler of one version: it answers every method the version has.
#[derive(Clone, Copy)]
pub(crate) struct Handler;

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

handler!(added_signal {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>) -> Result<bool, RemoteError> {
        Ok(celsius > 0.0 && note.as_deref() != Some("refuse"))
    }
    async fn read(&self, _: &CallContext) -> Result<added_signal::Reading, RemoteError> {
        Ok(added_signal::Reading { celsius: 21.5 })
    }
    async fn mode(&self, _: &CallContext) -> Result<added_signal::Mode, RemoteError> {
        Ok(added_signal::Mode::Heat)
    }
    async fn ping(&self, _: &CallContext) -> Result<(), RemoteError> {
        Ok(())
    }
});

handler!(enum_value_renumbered {
    async fn set_target(&self, _: &CallContext, celsius: f64, note: Option<String>) -> Result<bool, RemoteError> {
        Ok(celsius > 0.0 && note.as_deref() != Some("refuse"))
    }
    async fn read(&self, _: &CallContext) -> Result<enum_value_renumbered::Reading, RemoteError> {
        Ok(enum_value_renumbered::Reading { celsius: 21.5 })
    }
    async fn mode(&self, _: &CallContext) -> Result<enum_value_renumbered::Mode, RemoteError> {
        Ok(enum_value_renumbered::Mode::Heat)
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

/// The two servers a body's clients meet, each at an endpoint of its own: one of v1 (`old`) and
/// one of the version the body is named after (`new`). The rows serve them in Rust, or in Python.
pub(crate) struct Servers {
    old: Endpoint,
    new: Endpoint,
}

/// Serves v1 at `old` and the version `change` names at `new` in Rust; dropping the result stops
/// both.
async fn serve_rust(change: &str, old: &Endpoint, new: &Endpoint) -> Vec<Box<dyn Any + Send>> {
    let old_server: Box<dyn Any + Send> = Box::new(serve!(v1, old));
    let new_server: Box<dyn Any + Send> = match change {
        "added_method" => Box::new(serve!(added_method, new)),
        "added_optional_argument" => Box::new(serve!(added_optional_argument, new)),
        "added_struct_field" => Box::new(serve!(added_struct_field, new)),
        "added_enum_value" => Box::new(serve!(added_enum_value, new)),
        "removed_method" => Box::new(serve!(removed_method, new)),
        "changed_type" => Box::new(serve!(changed_type, new)),
        "optional_to_required" => Box::new(serve!(optional_to_required, new)),
        "added_signal" => Box::new(serve!(added_signal, new)),
        "enum_value_renumbered" => Box::new(serve!(enum_value_renumbered, new)),
        other => panic!("no version `{other}` in tests/interfaces/evolve/"),
    };
    vec![old_server, new_server]
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
/// pair is refused; new clients always send it, so an old server serves them.
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
    let error = match within("subscribe", client.subscribe_alarm()).await {
        Err(CallError::Remote(error)) => error,
        Err(other) => panic!("subscribing to `alarm` should fail as unknown, got {other:?}"),
        Ok(_) => panic!("subscribing to `alarm` should fail as unknown, but it was accepted"),
    };
    assert_eq!((error.code(), error.name()), (ErrorCode::MethodNotFound, "UnknownSignal"));
    assert!(error.message().contains("signal `alarm`"), "{error}");
    let client = connect!(added_signal, &servers.new).expect("same versions connect");
    within("subscribe", client.subscribe_alarm()).await.expect("the new server has `alarm`");
}

/// Giving an enum value another integer breaks both directions wherever the enum travels: each
/// pair is refused, naming the value.
pub(crate) async fn enum_value_renumbered(servers: &Servers) {
    refused_at(connect!(v1, &servers.new), "enums.Mode.values.heat");

    refused_at(connect!(enum_value_renumbered, &servers.old), "enums.Mode.values.heat");
}

/// Serves v1 and the version `change` names in Rust at endpoints from `endpoint`, and runs
/// `change`'s body against them.
macro_rules! rust_row {
    ($change:ident, $endpoint:expr) => {{
        let endpoint = $endpoint;
        let servers = super::Servers { old: endpoint("old-server"), new: endpoint("new-server") };
        let _running = super::serve_rust(stringify!($change), &servers.old, &servers.new).await;
        super::$change(&servers).await;
    }};
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
            added_signal,
            enum_value_renumbered,
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

    fn args<'a>(
        role: &'a str,
        change: &'a str,
        env: &PyEnv,
        urls: &'a (String, String),
    ) -> Vec<String> {
        let generated = env.evolve_packages().display().to_string();
        vec![role.into(), change.into(), generated, urls.0.clone(), urls.1.clone()]
    }

    /// Python clients of v1 and of `change` against Rust servers: they must print PASS.
    pub(super) async fn python_clients(transport: &str, change: &str) {
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

    /// Python servers of v1 and `change`; the body's Rust clients run against them.
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
fn hello_of(file: &std::path::Path) -> switchboard_core::compat::Hello {
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

/// The Python runtime's classifier (`python/src/switchboard/_compat.py`, a second implementation
/// of docs/interface-format.md's rules) decides pairs of peers as `switchboard_core::compat::check`
/// does: the same members lacking, or the same refusal, word for word. The pairs are every client
/// and server of `tests/interfaces/evolve/`, and both directions (old client and new server, new
/// client and old server) of every rule pair of `switchboard diff`'s tests
/// (`crates/switchboard-idl/tests/data/diff/RULE/{old,new}.yaml`), which hold one pair per rule
/// of docs/interface-format.md.
#[test]
fn python_classifier_agrees_with_rust() {
    use switchboard_core::compat;

    let Some(env) = crate::python::py() else { return };
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
        cases.push((format!("rule {name}: an old client, a new server"), old.clone(), new.clone()));
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
    let input = std::env::temp_dir().join(format!("evolve-pairs-{}.json", std::process::id()));
    std::fs::write(&input, serde_json::to_vec(&pairs).unwrap()).unwrap();
    let output = env.command("compat_check.py", &[input.to_str().unwrap()]).output().unwrap();
    let _ = std::fs::remove_file(&input);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let got: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("compat_check.py prints JSON");
    assert_eq!(got.len(), expected.len());
    let refusals = expected.iter().filter(|e| e.get("refused").is_some()).count();
    let lacking =
        expected.iter().filter(|e| e["lacking"].as_array().is_some_and(|l| !l.is_empty()));
    assert!(refusals > 0 && refusals < expected.len(), "the pairs cover both outcomes");
    assert!(lacking.count() > 0, "some pairs connect with members lacking");
    let disagreements: Vec<String> = cases
        .iter()
        .zip(got.iter().zip(&expected))
        .filter(|(_, (got, expected))| got != expected)
        .map(|((what, _, _), (got, expected))| {
            format!("{what}: Python decided {got}, Rust {expected}")
        })
        .collect();
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
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
