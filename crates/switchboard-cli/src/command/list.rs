//! `switchboard list`: running services, from the socket directory or MQTT discovery.

use std::{
    os::unix::fs::FileTypeExt,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Value, json};
use switchboard::Endpoint;
use switchboard_core::client::{ClientCore, ClientOptions};

use crate::{
    cli::ListArgs,
    exit::Failure,
    session::{Output, is_broker, url},
};

/// How long one socket may take to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `switchboard list`.
pub(crate) async fn run(args: &ListArgs) -> Result<(), Failure> {
    let url = url(&args.conn);
    let services = if is_broker(&url) {
        mqtt_services(&url).await?
    } else if let Some(rest) = url.strip_prefix("unix:") {
        let location = rest.split('?').next().unwrap_or("");
        let location = location.strip_prefix("//").unwrap_or(location);
        let path = if location.is_empty() {
            switchboard::transport::unix::default_socket_dir()
        } else {
            PathBuf::from(location)
        };
        unix_services(&path).await
    } else {
        return Err(Failure::Usage(format!("cannot list services at `{url}`")));
    };
    let out = Output::new(&args.conn);
    if out.json() {
        println!("{}", json!({ "services": services }));
    } else if services.is_empty() {
        println!("no running services found at {url}");
    } else {
        for s in &services {
            let service = format!(
                "{}/{}",
                s["interface"].as_str().unwrap_or("?"),
                s["instance"].as_str().unwrap_or("?")
            );
            println!(
                "{:<32} {:<10} {}",
                out.bold(&service),
                s["version"].as_str().unwrap_or("?"),
                s["address"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// Scans `<dir>/<Interface>/<instance>.sock` (or one socket file) and keeps the live ones.
async fn unix_services(path: &Path) -> Vec<Value> {
    let mut candidates = Vec::new();
    if path.is_dir() {
        let mut interfaces: Vec<_> =
            std::fs::read_dir(path).into_iter().flatten().flatten().collect();
        interfaces.sort_by_key(|e| e.file_name());
        for iface in interfaces {
            let mut sockets: Vec<_> =
                std::fs::read_dir(iface.path()).into_iter().flatten().flatten().collect();
            sockets.sort_by_key(|e| e.file_name());
            for socket in sockets {
                let p = socket.path();
                if p.extension().is_some_and(|e| e == "sock")
                    && socket.file_type().is_ok_and(|t| t.is_socket())
                {
                    candidates.push(p);
                }
            }
        }
    } else {
        candidates.push(path.to_path_buf());
    }
    let mut found = Vec::new();
    for socket in candidates {
        let (Some(instance), Some(interface)) = (
            socket.file_stem().and_then(|s| s.to_str()),
            socket.parent().and_then(|p| p.file_name()).and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let Ok(endpoint) =
            Endpoint::parse(&format!("unix://{}?instance={instance}", socket.display()))
        else {
            continue;
        };
        let probe = async {
            let client = ClientCore::connect(
                &endpoint,
                &crate::session::bare_descriptor(interface),
                ClientOptions::default().call_timeout(PROBE_TIMEOUT),
            )
            .await
            .ok()?;
            let description = client.describe().await.ok();
            client.close();
            Some(description)
        };
        // Not live (stale socket file, another interface, no answer): not listed.
        let Ok(Some(description)) = tokio::time::timeout(PROBE_TIMEOUT, probe).await else {
            continue;
        };
        let described: Value =
            description.and_then(|d| serde_json::from_str(&d).ok()).unwrap_or(Value::Null);
        // The title the server declares: as in its descriptor (and MQTT discovery), the
        // interface name when the file gives none.
        let title = described.get("title").filter(|t| t.is_string()).cloned();
        found.push(json!({
            "interface": interface,
            "instance": instance,
            "version": described.get("version").cloned().unwrap_or(Value::Null),
            "title": title.unwrap_or_else(|| json!(interface)),
            "transport": "unix",
            "address": format!("unix://{}", socket.display()),
        }));
    }
    found
}

/// Discovers services through their retained `+/+/interface` messages.
async fn mqtt_services(url: &str) -> Result<Vec<Value>, Failure> {
    use rumqttc::v5::{AsyncClient, Event, MqttOptions, mqttbytes::QoS, mqttbytes::v5::Packet};

    let parsed = switchboard::transport::mqtt::MqttEndpoint::parse(url)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let (host, port) = match parsed.endpoint.broker() {
        switchboard::transport::mqtt::Broker::Tcp { host, port } => (host.clone(), *port),
        other => {
            return Err(Failure::Usage(format!(
                "`list` discovers over plain mqtt:// brokers only, not {other}"
            )));
        }
    };
    let client_id = format!("switchboard-list-{}", std::process::id());
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(10));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    client
        .subscribe("+/+/interface", QoS::AtLeastOnce)
        .await
        .map_err(|e| Failure::Transport(e.to_string()))?;
    client
        .subscribe("client/+/online", QoS::AtLeastOnce)
        .await
        .map_err(|e| Failure::Transport(e.to_string()))?;
    let mut infos: Vec<(String, Value)> = Vec::new();
    let mut presence = std::collections::HashMap::new();
    let mut acks = 0;
    let hard = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        // After both subscriptions are acknowledged, retained messages come at once; stop after
        // a quiet moment.
        let quiet = if acks >= 2 { Duration::from_millis(300) } else { Duration::from_secs(3) };
        let wait = (tokio::time::Instant::now() + quiet).min(hard);
        match tokio::time::timeout_at(wait, eventloop.poll()).await {
            Err(_) => break,
            Ok(Err(error)) => {
                return Err(Failure::Transport(format!(
                    "cannot reach the broker at {url}: {error}"
                )));
            }
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => acks += 1,
            Ok(Ok(Event::Incoming(Packet::Publish(publish)))) => {
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                let Ok(payload) = serde_json::from_slice::<Value>(&publish.payload) else {
                    continue;
                };
                if topic.ends_with("/online") && topic.starts_with("client/") {
                    presence.insert(
                        topic,
                        payload.get("online").and_then(Value::as_bool).unwrap_or(true),
                    );
                } else {
                    infos.push((topic, payload));
                }
            }
            Ok(Ok(_)) => {}
        }
    }
    let _ = client.disconnect().await;
    let mut found: Vec<Value> = infos
        .into_iter()
        .filter(|(_, info)| {
            let topic = info.get("connection_topic").and_then(Value::as_str).unwrap_or("");
            presence.get(topic).copied().unwrap_or(true)
        })
        .map(|(topic, info)| {
            let mut levels = topic.split('/');
            let interface =
                info.get("interface_name").cloned().unwrap_or_else(|| json!(levels.next()));
            json!({
                "interface": interface,
                "instance": info.get("instance").cloned().unwrap_or(Value::Null),
                "version": info.get("version").cloned().unwrap_or(Value::Null),
                "title": info.get("title").cloned().unwrap_or(Value::Null),
                "transport": "mqtt",
                "address": topic,
            })
        })
        .collect();
    found.sort_by_key(|v| (v["interface"].to_string(), v["instance"].to_string()));
    Ok(found)
}
