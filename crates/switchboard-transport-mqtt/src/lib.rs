//! MQTT v5 transport for switchboard, wire-compatible with StingerIPC.
//!
//! [`MqttEndpoint`] implements the core's [`Connector`] and [`Binder`]: every server and client
//! opened on it gets its own broker connection, whose event loop this crate owns. It reconnects
//! with backoff and re-subscribes by itself. Messages map onto StingerIPC's topics, user
//! properties and payloads exactly; `docs/wire/mqtt.md` has the complete mapping.
//!
//! ```no_run
//! let parsed = switchboard_transport_mqtt::MqttEndpoint::parse("mqtt://127.0.0.1:1883?instance=kitchen")?;
//! assert_eq!(parsed.instance.as_deref(), Some("kitchen"));
//! # Ok::<(), switchboard_transport_mqtt::MqttUrlError>(())
//! ```

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use switchboard_broker::{BrokerAddress, Replicas};
use tokio::time::Instant;

use switchboard_core::{
    InterfaceDescriptor, TransportError, TransportErrorKind,
    compat::{self, Agreement, Hello},
    transport::{
        Binder, BoundedWaits, BoxFuture, ClientInbox, ClientTransport, Connector, Naming,
        ServerInbox, ServerTransport, ServiceTarget, TransportAddress,
    },
};

#[doc(hidden)]
pub mod __fuzz;
mod client;
mod conn;
mod discover;
mod endpoint;
mod node_bus;
mod server;
mod topics;
mod wire;

pub use endpoint::{
    Broker, DEFAULT_MAX_INFLIGHT, MqttEndpoint, MqttOptions, MqttUrlError, ParsedUrl, SCHEMES,
};

use crate::{
    client::{ClientShared, MqttClient},
    conn::{Conn, FirstConnect, Route},
    server::{MqttServer, ServerShared},
    topics::{Kind, Topics, valid_level},
};

/// What the request filters of a replicated server (`replicas=shared`) start with: the MQTT v5
/// shared subscription group every replica joins.
pub const SHARE_PREFIX: &str = "$share/switchboard/";

/// The instance id that makes a client take the first instance it discovers.
pub const ANY_INSTANCE: &str = "*";

fn invalid(message: String) -> TransportError {
    TransportError::new(TransportErrorKind::InvalidAddress, message)
}

/// A random client id in UUID form, as StingerIPC's Python peers use.
fn random_client_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

impl MqttEndpoint {
    /// Checks the URL's topic params against the interface's.
    fn params_for(
        &self,
        interface: &InterfaceDescriptor,
        all_required: bool,
    ) -> Result<BTreeMap<String, String>, TransportError> {
        for name in self.params.keys() {
            if !interface.topic_params.iter().any(|p| p == name) {
                return Err(invalid(format!(
                    "interface {} has no topic param `{name}` (it has: {})",
                    interface.name,
                    if interface.topic_params.is_empty() {
                        "none".to_owned()
                    } else {
                        interface.topic_params.join(", ")
                    }
                )));
            }
        }
        if all_required {
            for param in interface.topic_params.iter() {
                if !self.params.contains_key(&**param) {
                    return Err(invalid(format!(
                        "interface {} needs topic param `{param}`; add `?{param}=VALUE` to the URL",
                        interface.name
                    )));
                }
            }
        }
        Ok(self.params.clone())
    }

    fn client_id_for_connection(&self) -> String {
        self.client_id.clone().unwrap_or_else(random_client_id)
    }
}

/// The brokered layer over this endpoint, which carries a node's endpoints (`Naming::Node`) in
/// commlib-py's shape (`node_bus`).
fn nodes(endpoint: &MqttEndpoint) -> BrokerAddress {
    BrokerAddress::new(Arc::new(node_bus::NodeBusConnector(endpoint.clone())))
}

impl Binder for MqttEndpoint {
    fn bind(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ServerInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ServerTransport>, TransportError>> {
        Box::pin(async move {
            if target.naming == Naming::Node {
                return nodes(self).bind(target, inbox).await;
            }
            let instance = target.instance;
            if !valid_level(&instance) {
                return Err(invalid(format!(
                    "a server needs a concrete instance id, not `{instance}` (no `/`, `+`, `#`, `*` means any only for clients)"
                )));
            }
            if instance == ANY_INSTANCE {
                return Err(invalid("a server needs a concrete instance id, not `*`".into()));
            }
            let interface = target.interface;
            let replicated = self.replicas == Replicas::Shared;
            if replicated && !interface.properties.is_empty() {
                let names: Vec<&str> = interface.properties.iter().map(|p| &*p.name).collect();
                return Err(invalid(format!(
                    "interface {} cannot be served with `replicas=shared`: it has properties ({}), and each replica would publish retained values of its own; serve it from one server (without `replicas`), or move the properties to an interface of their own",
                    interface.name,
                    names.join(", ")
                )));
            }
            let params = self.params_for(&interface, true)?;
            let client_id = self.client_id_for_connection();
            let topics = Topics::new(&interface, &instance, &client_id, &params)?;
            let mut initial = vec![
                (topics.topic(Kind::MethodRequests, "+"), Route::Requests),
                (topics.topic(Kind::PropertyUpdates, "+"), Route::Updates),
                (topics.topic(Kind::Commands, "+"), Route::Commands),
                (format!("{}/+", topics.topic(Kind::ActionRequests, "+")), Route::ActionRequests),
            ];
            if replicated {
                // Each request goes to one member of the group (MQTT v5 shared subscriptions).
                for (filter, _) in &mut initial {
                    *filter = format!("{SHARE_PREFIX}{filter}");
                }
                // A goal's cancel and attach come to the replica that runs it, on its own topic.
                initial
                    .push((topics.replica_action_filter(&client_id), Route::ReplicaActionRequests));
            }
            let lwt = topics.topic(Kind::Lwt, "");
            initial.push((lwt.clone(), Route::OwnPresence));
            let shared =
                ServerShared::new(topics, interface, instance, params, inbox, self.replicas);
            // A daemon may start before its broker: it waits for it (as long as configured).
            let until = self.options.wait_for_broker.map(|wait| Instant::now() + wait);
            let first_connect = FirstConnect::Wait { until };
            let conn =
                Conn::start(self, client_id, lwt, shared.clone(), initial, first_connect).await?;
            let _ = shared.conn.set(conn.clone());
            tokio::spawn(server::advertise(Arc::downgrade(&shared), conn));
            Ok(Arc::new(MqttServer { shared }) as Arc<dyn ServerTransport>)
        })
    }
}

/// A client makes two waits, reaching the broker (`connect_timeout`) and then finding its
/// service's retained interface info (`discovery_timeout`).
impl BoundedWaits for MqttEndpoint {
    fn with_waits_within(&self, limit: Duration) -> Arc<dyn TransportAddress> {
        let mut options = self.options.clone();
        options.connect_timeout = options.connect_timeout.min(limit);
        options.discovery_timeout = options.discovery_timeout.min(limit);
        Arc::new(self.clone().with_options(options))
    }
}

impl Connector for MqttEndpoint {
    fn connect(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ClientInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ClientTransport>, TransportError>> {
        Box::pin(async move {
            if target.naming == Naming::Node {
                return nodes(self).connect(target, inbox).await;
            }
            let instance = target.instance;
            let any = instance == ANY_INSTANCE;
            if !any && !valid_level(&instance) {
                return Err(invalid(format!("`{instance}` is not a valid instance id")));
            }
            let interface = target.interface;
            let mut params = self.params_for(&interface, false)?;
            let client_id = self.client_id_for_connection();
            let wanted = if any { "+" } else { instance.as_str() };
            let discovery = Topics::new(&interface, wanted, &client_id, &params)?;
            let lwt = Some(discovery.topic(Kind::Lwt, ""))
                .filter(|t| !t.contains('+'))
                .unwrap_or_else(|| topics::in_default_layout(Kind::Lwt, &client_id));
            let filter = discovery.topic(Kind::InterfaceDiscovery, "");
            let shared = ClientShared::new(interface.clone(), inbox, lwt.clone());
            let (found_tx, mut found_rx) = tokio::sync::mpsc::unbounded_channel();
            *switchboard_core::sync::lock(&shared.discovery) = Some(found_tx);
            let initial = vec![(filter.clone(), Route::Interface)];
            // A client fails at once: its caller decides whether to try again.
            let first_connect = FirstConnect::FailFast;
            let conn =
                Conn::start(self, client_id.clone(), lwt, shared.clone(), initial, first_connect)
                    .await?;
            let _ = shared.conn.set(conn.clone());
            // From here on, dropping the handle closes the connection on every error path.
            let handle = MqttClient { shared: shared.clone() };

            let timeout = self.options.discovery_timeout;
            let deadline = tokio::time::Instant::now() + timeout;
            let described =
                if any { "any instance".to_owned() } else { format!("instance `{instance}`") };
            let (topic, info) = loop {
                let Ok(Some((topic, payload))) =
                    tokio::time::timeout_at(deadline, found_rx.recv()).await
                else {
                    return Err(TransportError::new(
                        TransportErrorKind::NotFound,
                        format!(
                            "no {described} of interface {} is announced on the MQTT broker at {} (waited {timeout:?} for a retained `{filter}`)",
                            interface.name,
                            conn.broker()
                        ),
                    ));
                };
                let info: serde_json::Value = serde_json::from_slice(&payload).map_err(|e| {
                    TransportError::new(
                        TransportErrorKind::Protocol,
                        format!("the interface info on `{topic}` is not JSON: {e}"),
                    )
                })?;
                if announcer_offline(&shared, &conn, &info, deadline).await {
                    tracing::debug!(%topic, "skipping the announcement of a server that is offline");
                    continue;
                }
                // With `*`, an instance serving another version of the interface is not a
                // candidate; a named instance that does is an error.
                if any && let Err(error) = check_compatible(&interface, &info, &topic) {
                    tracing::debug!(%topic, %error, "skipping an incompatible instance");
                    continue;
                }
                break (topic, info);
            };
            *switchboard_core::sync::lock(&shared.discovery) = None;
            conn.unsubscribe(&filter);
            shared.inbox.agreed(check_compatible(&interface, &info, &topic)?);
            let resolved = if any {
                info.get("instance")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .or_else(|| discovery.extract(Kind::InterfaceDiscovery, &topic, "service_id"))
                    .filter(|i| valid_level(i))
                    .ok_or_else(|| {
                        TransportError::new(
                            TransportErrorKind::Protocol,
                            format!("the interface info on `{topic}` names no valid instance"),
                        )
                    })?
            } else {
                instance.clone()
            };
            for param in interface.topic_params.iter() {
                if !params.contains_key(&**param) {
                    let value = info
                        .get(&**param)
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                        .or_else(|| discovery.extract(Kind::InterfaceDiscovery, &topic, param))
                        .filter(|v| valid_level(v))
                        .ok_or_else(|| {
                            invalid(format!(
                                "the service does not announce topic param `{param}`; add `?{param}=VALUE` to the URL"
                            ))
                        })?;
                    params.insert(param.to_string(), value);
                }
            }
            let topics = Topics::new(&interface, &resolved, &client_id, &params)?;
            let info_topic = topics.topic(Kind::InterfaceDiscovery, "");
            let _ = shared.topics.set(topics);
            shared.note_replicas(&info);
            shared.subscribe_responses(&conn)?;
            let presence = presence_topic(&info).map(str::to_owned);
            shared.watch_server(&conn, resolved, info_topic, presence);
            Ok(Arc::new(handle) as Arc<dyn ClientTransport>)
        })
    }
}

/// True when the announcing server's presence topic (its `connection_topic`) says it is
/// offline: it died without clearing its retained interface info. Waits briefly for the
/// retained presence; servers that publish none count as online.
///
/// One `{"online":false}` is not trusted over a live server: anyone may publish one there, and
/// a running switchboard server answers it at once with `{"online":true}`. So an offline
/// presence is only believed when no online one follows within the wait.
async fn announcer_offline(
    shared: &ClientShared,
    conn: &Conn,
    info: &serde_json::Value,
    deadline: tokio::time::Instant,
) -> bool {
    let Some(presence) = presence_topic(info) else {
        return false;
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    *switchboard_core::sync::lock(&shared.presence) = Some(tx);
    let _ = conn.subscribe(presence, Route::Presence, true);
    let wait = deadline.min(tokio::time::Instant::now() + std::time::Duration::from_millis(300));
    let mut offline = false;
    loop {
        match tokio::time::timeout_at(wait, rx.recv()).await {
            Ok(Some((topic, payload))) if topic == presence => match presence_state(&payload) {
                Some(false) => offline = true,
                Some(true) => {
                    offline = false;
                    break;
                }
                None if !offline => break,
                None => {}
            },
            Ok(Some(_)) => continue,
            _ => break,
        }
    }
    *switchboard_core::sync::lock(&shared.presence) = None;
    conn.unsubscribe(presence);
    offline
}

/// The announcing server's presence topic (its `connection_topic`), if the interface info
/// names a usable one.
pub(crate) fn presence_topic(info: &serde_json::Value) -> Option<&str> {
    info.get("connection_topic")
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty() && !t.contains(['+', '#']) && t.ends_with("/online"))
}

/// What a presence message says: `Some(online)`, or `None` when it is empty or unreadable.
/// Any JSON spacing is accepted.
pub(crate) fn presence_state(payload: &[u8]) -> Option<bool> {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("online").and_then(serde_json::Value::as_bool))
}

/// Compares the announced interface with ours: by hash when the server is a switchboard one,
/// and member by member (`compat::check`) when the hashes differ and the info carries the
/// server's description; by version (only a warning, as StingerIPC does) otherwise. Returns what
/// the client agreed with the server: the members it lacks.
fn check_compatible(
    interface: &InterfaceDescriptor,
    info: &serde_json::Value,
    topic: &str,
) -> Result<Agreement, TransportError> {
    let theirs_version = info.get("version").and_then(|v| v.as_str()).unwrap_or("?");
    if let Some(name) = info.get("interface_name").and_then(|v| v.as_str())
        && name != interface.name
    {
        return Err(TransportError::new(
            TransportErrorKind::IncompatibleInterface,
            format!("`{topic}` announces interface {name}, not {}", interface.name),
        ));
    }
    match info.get("hash").and_then(|v| v.as_str()) {
        Some(hash) => {
            // MQTT has no protocol number: both sides say 0.
            let ours = Hello::describe(interface, "", 0);
            let theirs = Hello {
                protocol: 0,
                interface: interface.name.to_string(),
                version: theirs_version.to_owned(),
                hash: Some(hash.to_owned()),
                instance: String::new(),
                description: info.get("description").cloned(),
            };
            compat::check(&ours, &theirs).map_err(|error| {
                TransportError::new(
                    TransportErrorKind::IncompatibleInterface,
                    format!("the service on `{topic}` does not fit this client: {error}"),
                )
            })
        }
        None => {
            if !semver_compatible(theirs_version, &interface.version) {
                tracing::warn!(
                    interface = %interface.name,
                    ours = %interface.version,
                    theirs = %theirs_version,
                    "the service announces an interface version that may not be compatible"
                );
            }
            Ok(Agreement::default())
        }
    }
}

/// Same major version (and same minor while the major is 0).
fn semver_compatible(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.trim_start_matches('v')
            .split(['.', '-', '+'])
            .take(2)
            .map(|p| p.parse().unwrap_or(u64::MAX))
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    match (a.first(), b.first()) {
        (Some(0), Some(0)) => a.get(1) == b.get(1),
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// This transport's entry in the facade's registry.
pub const REGISTRATION: switchboard_core::registry::Registration =
    switchboard_core::registry::Registration {
        name: "MQTT",
        schemes: SCHEMES,
        parse: parse_registered,
        wildcard_instance: Some(ANY_INSTANCE),
    };

fn parse_registered(url: &str) -> Result<switchboard_core::registry::ParsedUrl, String> {
    let parsed = MqttEndpoint::parse(url).map_err(|e| e.to_string())?;
    Ok(switchboard_core::registry::ParsedUrl {
        address: Arc::new(parsed.endpoint),
        instance: parsed.instance,
    })
}

/// The endpoint's URL, without the password and without `instance` (see [`MqttEndpoint::url`]).
impl std::fmt::Display for MqttEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn semver() {
        assert!(super::semver_compatible("1.2.0", "1.0.0"));
        assert!(!super::semver_compatible("2.0.0", "1.0.0"));
        assert!(!super::semver_compatible("0.3.0", "0.2.0"));
        assert!(super::semver_compatible("0.3.1", "0.3.0"));
    }
}
