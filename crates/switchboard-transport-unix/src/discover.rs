//! Discovery on the Unix transport: the live servers among the socket files of a directory.
//!
//! A server's socket is `<dir>/<Interface>/<instance>.sock`. Each candidate is asked to
//! describe itself; a socket file nobody answers on (a server that died without removing it)
//! is not listed.

use std::{
    os::unix::fs::FileTypeExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use switchboard_core::{
    InterfaceDescriptor, TransportError,
    client::{ClientCore, ClientOptions},
    transport::{
        Binder, BoxFuture, ClientInbox, ClientTransport, Connector, Discoverer, ServerInbox,
        ServerTransport, ServiceAddress, ServiceInfo, ServiceTarget,
    },
};

use crate::paths::{UnixEndpoint, default_socket_dir};

impl Discoverer for UnixEndpoint {
    /// Scans the default socket directory, or the explicit path when it is a directory; an
    /// explicit socket file is probed alone. Each probe may take `wait`.
    fn discover(&self, wait: Duration) -> BoxFuture<'_, Result<Vec<ServiceInfo>, TransportError>> {
        Box::pin(async move {
            let place = self.explicit_path().map_or_else(default_socket_dir, Path::to_path_buf);
            let mut found = Vec::new();
            for (interface, instance, socket) in candidates(&place) {
                if let Some(info) = probe(self, &interface, &instance, socket, wait).await {
                    found.push(info);
                }
            }
            Ok(found)
        })
    }
}

/// The socket files under `place` as (interface, instance, path), sorted: `place` itself when
/// it is not a directory, else `place/<Interface>/<instance>.sock`.
fn candidates(place: &Path) -> Vec<(String, String, PathBuf)> {
    let named = |socket: PathBuf| {
        let instance = socket.file_stem()?.to_str()?.to_owned();
        let interface = socket.parent()?.file_name()?.to_str()?.to_owned();
        Some((interface, instance, socket))
    };
    if !place.is_dir() {
        return named(place.to_path_buf()).into_iter().collect();
    }
    let entries = |dir: &Path| {
        let mut entries: Vec<_> = std::fs::read_dir(dir).into_iter().flatten().flatten().collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        entries
    };
    let mut found = Vec::new();
    for interface in entries(place) {
        for socket in entries(&interface.path()) {
            let path = socket.path();
            let is_socket = socket.file_type().is_ok_and(|t| t.is_socket());
            if is_socket && path.extension().is_some_and(|e| e == "sock") {
                found.extend(named(path));
            }
        }
    }
    found
}

/// Asks the server on `socket` to describe itself; `None` when nobody answers within `wait`.
async fn probe(
    endpoint: &UnixEndpoint,
    interface: &str,
    instance: &str,
    socket: PathBuf,
    wait: Duration,
) -> Option<ServiceInfo> {
    let address = Socket {
        endpoint: UnixEndpoint::at(&socket).with_options(endpoint.options().clone()),
        instance: instance.to_owned(),
    };
    let described = async {
        let options = ClientOptions::default().call_timeout(wait);
        let client = ClientCore::connect(&address, &InterfaceDescriptor::named(interface), options)
            .await
            .ok()?;
        let description = client.describe().await.ok();
        client.close();
        Some(description)
    };
    let description = tokio::time::timeout(wait, described).await.ok()??;
    let described: serde_json::Value =
        description.and_then(|d| serde_json::from_str(&d).ok()).unwrap_or_default();
    let text = |key: &str| described.get(key).and_then(serde_json::Value::as_str);
    let mut info = ServiceInfo::new(interface, instance, address.endpoint.to_string());
    if let Some(title) = text("title") {
        info.title = title.to_owned();
    }
    info.version = text("version").unwrap_or_default().to_owned();
    info.hash = text("hash").map(str::to_owned);
    Some(info)
}

/// One socket file and the instance served on it, as the core's client wants an address.
#[derive(Debug)]
struct Socket {
    endpoint: UnixEndpoint,
    instance: String,
}

impl Connector for Socket {
    fn connect(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ClientInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ClientTransport>, TransportError>> {
        self.endpoint.connect(target, inbox)
    }
}

impl Binder for Socket {
    fn bind(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ServerInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ServerTransport>, TransportError>> {
        self.endpoint.bind(target, inbox)
    }
}

impl ServiceAddress for Socket {
    fn instance(&self) -> &str {
        &self.instance
    }
}
