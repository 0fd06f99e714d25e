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
    added_enum_value, added_method, added_optional_argument, added_struct_field, changed_type,
    optional_to_required, removed_method, v1,
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
}

/// The Python runtime's classifier (`python/src/switchboard/_compat.py`, a second implementation
/// of docs/interface-format.md's rules) decides every pair of `tests/interfaces/evolve/` as
/// `switchboard_core::compat::check` does: the same members lacking, or the same refusal, word
/// for word.
#[test]
fn python_classifier_agrees_with_rust() {
    use switchboard_core::compat::{self, Hello};

    let Some(env) = crate::python::py() else { return };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interfaces/evolve");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/interfaces/evolve")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let hellos: Vec<Hello> = files
        .iter()
        .map(|file| {
            let loaded = switchboard_codegen::load_file(file).expect("a readable file");
            let iface = loaded.parsed.interface.expect("a valid interface");
            Hello {
                protocol: 1,
                interface: iface.name.clone(),
                version: iface.version.clone(),
                hash: Some(iface.description_hash()),
                instance: "default".into(),
                description: serde_json::from_str(&iface.description_json()).ok(),
            }
        })
        .collect();
    let mut pairs = Vec::new();
    let mut expected = Vec::new();
    for client in &hellos {
        for server in &hellos {
            pairs.push(serde_json::json!([client, server]));
            expected.push(match compat::check(client, server) {
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
        }
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
    assert!(refusals > 0 && refusals < expected.len(), "the pairs cover both outcomes");
    let names: Vec<String> =
        files.iter().map(|f| f.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    for (index, (got, expected)) in got.iter().zip(&expected).enumerate() {
        let (client, server) = (&names[index / names.len()], &names[index % names.len()]);
        assert_eq!(got, expected, "a client of {client}.yaml against a server of {server}.yaml");
    }
}
