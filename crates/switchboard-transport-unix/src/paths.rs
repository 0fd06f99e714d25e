//! Where sockets live: the endpoint type, the default socket directory and directory creation.

use std::{
    env, fs,
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use switchboard_core::{
    TransportError, TransportErrorKind,
    transport::{
        Binder, BoundedWaits, BoxFuture, ClientInbox, ClientTransport, Connector, Naming,
        ServerInbox, ServerTransport, ServiceTarget, TransportAddress,
    },
};

use crate::options::UnixOptions;

/// The longest socket path the kernel accepts (`sun_path` is 108 bytes including the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A Unix-socket endpoint: where the socket file is and how connections behave.
///
/// One value serves as both [`Connector`] (client side) and [`Binder`] (server side).
#[derive(Debug, Clone, Default)]
pub struct UnixEndpoint {
    path: Option<PathBuf>,
    options: UnixOptions,
}

impl UnixEndpoint {
    /// The default location: `<default_socket_dir()>/<Interface>/<instance>.sock`, worked out
    /// when connecting or binding.
    pub fn default_path() -> Self {
        UnixEndpoint::default()
    }

    /// An explicit socket file.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        UnixEndpoint { path: Some(path.into()), options: UnixOptions::default() }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: UnixOptions) -> Self {
        self.options = options;
        self
    }

    /// The options in use.
    pub fn options(&self) -> &UnixOptions {
        &self.options
    }

    /// The explicit path, if one was given.
    pub(crate) fn explicit_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The socket file for `interface` and `instance`: the explicit path if one was given.
    pub fn socket_path(&self, interface: &str, instance: &str) -> PathBuf {
        match &self.path {
            Some(path) => path.clone(),
            None => default_socket_dir().join(interface).join(format!("{instance}.sock")),
        }
    }

    /// The socket path for `target`, checked for names that would escape the directory and for
    /// the kernel's length limit.
    pub(crate) fn resolve(&self, target: &ServiceTarget) -> Result<PathBuf, TransportError> {
        if target.naming == Naming::Node {
            return self.node_socket(&target.interface.name);
        }
        if self.path.is_none() {
            check_component("interface name", &target.interface.name)?;
            check_component("instance id", &target.instance)?;
        }
        let path = self.socket_path(&target.interface.name, &target.instance);
        within_limit(path)
    }

    /// The socket of a node's endpoint (`Naming::Node`) named `name` (an RPC name or a topic):
    /// `<directory>/<name>.sock`, where the directory is the explicit path, if one was given,
    /// or the default socket directory. A topic filter with wildcards names no socket: with no
    /// broker, a subscriber reaches each publisher by its topic.
    fn node_socket(&self, name: &str) -> Result<PathBuf, TransportError> {
        check_component("name", name)?;
        if name.contains(['*', '>']) {
            return Err(TransportError::new(
                TransportErrorKind::InvalidAddress,
                format!(
                    "`{name}` is a pattern, and a Unix socket has no broker to match topics: subscribe to each publisher's topic instead"
                ),
            ));
        }
        let directory = self.path.clone().unwrap_or_else(default_socket_dir);
        let path = directory.join(format!("{name}.sock"));
        within_limit(path)
    }

    /// Creates the directories that hold the socket file, with the modes documented on
    /// [`default_socket_dir`].
    pub(crate) fn prepare_parent(&self, socket: &Path) -> Result<(), TransportError> {
        let Some(parent) = socket.parent().filter(|p| !p.as_os_str().is_empty()) else {
            return Ok(());
        };
        if self.path.is_some() {
            return create_dir(parent, 0o755);
        }
        let choice = default_dir_choice();
        create_dir(&choice.dir, choice.mode)?;
        if choice.must_own {
            check_private_dir(&choice.dir)?;
        }
        create_dir(parent, choice.mode)
    }
}

impl Connector for UnixEndpoint {
    fn connect(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ClientInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ClientTransport>, TransportError>> {
        Box::pin(async move {
            let path = self.resolve(&target)?;
            let client = crate::client::connect(path, self.options.clone(), target, inbox).await?;
            Ok(client as Arc<dyn ClientTransport>)
        })
    }
}

/// Connecting makes one wait, the handshake (a socket nobody listens on is refused at once),
/// and discovery's probes have the wait they are given.
impl BoundedWaits for UnixEndpoint {
    fn with_waits_within(&self, limit: Duration) -> Arc<dyn TransportAddress> {
        let mut bounded = self.clone();
        bounded.options.handshake_timeout = bounded.options.handshake_timeout.min(limit);
        Arc::new(bounded)
    }
}

impl Binder for UnixEndpoint {
    fn bind(
        &self,
        target: ServiceTarget,
        inbox: Arc<dyn ServerInbox>,
    ) -> BoxFuture<'_, Result<Arc<dyn ServerTransport>, TransportError>> {
        Box::pin(async move {
            let path = self.resolve(&target)?;
            let options = self.options.clone();
            let server = match crate::activation::take(&path, &target.interface.name)? {
                Some(passed) => crate::server::adopt(passed, path, options, target, inbox)?,
                None => {
                    self.prepare_parent(&path)?;
                    crate::server::bind(path, options, target, inbox).await?
                }
            };
            Ok(server as Arc<dyn ServerTransport>)
        })
    }
}

/// `path`, if the kernel takes a socket path that long.
fn within_limit(path: PathBuf) -> Result<PathBuf, TransportError> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(TransportError::new(
            TransportErrorKind::InvalidAddress,
            format!(
                "socket path {} is {} bytes long; Unix sockets allow at most {MAX_SOCKET_PATH}",
                path.display(),
                path.as_os_str().len()
            ),
        ));
    }
    Ok(path)
}

fn check_component(what: &str, value: &str) -> Result<(), TransportError> {
    if value.is_empty() || value == "." || value == ".." || value.contains(['/', '\0']) {
        return Err(TransportError::new(
            TransportErrorKind::InvalidAddress,
            format!("{what} {value:?} cannot be used in a socket path"),
        ));
    }
    Ok(())
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), TransportError> {
    fs::DirBuilder::new().recursive(true).mode(mode).create(dir).map_err(|e| {
        TransportError::from_io(format!("cannot create socket directory {}", dir.display()), e)
    })
}

/// Refuses a shared-temp directory that another user could have planted or can write into.
fn check_private_dir(dir: &Path) -> Result<(), TransportError> {
    let meta = fs::symlink_metadata(dir).map_err(|e| {
        TransportError::io(TransportErrorKind::Io, format!("cannot inspect {}", dir.display()), e)
    })?;
    let uid = current_uid();
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o022 != 0 {
        return Err(TransportError::new(
            TransportErrorKind::AccessDenied,
            format!(
                "socket directory {} must be a directory owned by uid {uid} and writable only by it",
                dir.display()
            ),
        ));
    }
    Ok(())
}

struct DirChoice {
    dir: PathBuf,
    mode: u32,
    must_own: bool,
}

fn default_dir_choice() -> DirChoice {
    if let Some(runtime) = env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && runtime.is_absolute()
    {
        return DirChoice { dir: runtime.join("switchboard"), mode: 0o700, must_own: false };
    }
    let uid = current_uid();
    let run = PathBuf::from("/run/switchboard");
    if uid == 0 || writable_by(&run, uid) {
        return DirChoice { dir: run, mode: 0o755, must_own: false };
    }
    let tmp = env::var_os("TMPDIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    DirChoice { dir: tmp.join(format!("switchboard-{uid}")), mode: 0o711, must_own: true }
}

/// True when `dir` exists and its mode bits let `uid` create files in it (owner or world write).
fn writable_by(dir: &Path, uid: u32) -> bool {
    fs::metadata(dir).is_ok_and(|m| {
        let mode = m.permissions().mode();
        m.is_dir() && ((m.uid() == uid && mode & 0o200 != 0) || mode & 0o002 != 0)
    })
}

/// The directory sockets go in when no explicit path is given.
///
/// In order of preference:
///
/// 1. `$XDG_RUNTIME_DIR/switchboard` when `XDG_RUNTIME_DIR` is set to an absolute path
///    (created with mode `0700`; the runtime dir is private to its user anyway);
/// 2. `/run/switchboard` when running as root, or when that directory already exists and is
///    writable by this user (created with mode `0755`, so the socket's own mode decides access);
/// 3. `$TMPDIR/switchboard-<uid>` (or `/tmp/switchboard-<uid>`), created with mode `0711`:
///    other users cannot list it but can reach a socket whose path they know and whose mode lets
///    them in. The server refuses to use it unless this user owns it and no one else can write it.
///
/// Clients and servers compute the same path from the same environment; a client run by another
/// user (or without `XDG_RUNTIME_DIR`) should be given the path explicitly.
pub fn default_socket_dir() -> PathBuf {
    default_dir_choice().dir
}

/// This process's effective uid: the owner of `/proc/self`, or of a freshly created file.
pub(crate) fn current_uid() -> u32 {
    if let Ok(meta) = fs::metadata("/proc/self") {
        return meta.uid();
    }
    let probe = env::temp_dir().join(format!(".switchboard-uid-{}", std::process::id()));
    let uid = fs::File::create(&probe).and_then(|f| f.metadata()).map(|m| m.uid());
    let _ = fs::remove_file(&probe);
    uid.unwrap_or(u32::MAX)
}

/// The URL scheme this transport handles.
pub const SCHEMES: &[&str] = &["unix"];

/// A parsed `unix:` URL: the endpoint and the `?instance=` value, if given.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ParsedUrl {
    /// The socket's endpoint.
    pub endpoint: UnixEndpoint,
    /// The `?instance=` value.
    pub instance: Option<String>,
}

impl UnixEndpoint {
    /// Parses `unix:` (the default socket), `unix:///run/app.sock` or `unix:/run/app.sock`, with
    /// the one query parameter `instance=NAME`.
    pub fn parse(url: &str) -> Result<ParsedUrl, String> {
        let rest =
            url.strip_prefix("unix:").ok_or_else(|| format!("`{url}` is not a `unix:` URL"))?;
        let (location, query) = match rest.split_once('?') {
            Some((location, query)) => (location, Some(query)),
            None => (rest, None),
        };
        let instance = match query {
            None => None,
            Some(query) => match query.split_once('=') {
                Some(("instance", value)) => Some(value.to_owned()),
                _ => {
                    return Err(format!(
                        "invalid query `{query}` in `{url}`; the only parameter is `instance=NAME`"
                    ));
                }
            },
        };
        let path = location.strip_prefix("//").unwrap_or(location);
        let endpoint =
            if path.is_empty() { UnixEndpoint::default_path() } else { UnixEndpoint::at(path) };
        Ok(ParsedUrl { endpoint, instance })
    }
}

/// `unix:` for the default socket, else `unix://` and the path (`unix:///run/app.sock`).
impl std::fmt::Display for UnixEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            None => f.write_str("unix:"),
            Some(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// This transport's entry in the facade's registry.
pub const REGISTRATION: switchboard_core::registry::Registration =
    switchboard_core::registry::Registration {
        name: "Unix",
        schemes: SCHEMES,
        parse: parse_registered,
        wildcard_instance: None,
    };

fn parse_registered(url: &str) -> Result<switchboard_core::registry::ParsedUrl, String> {
    let parsed = UnixEndpoint::parse(url)?;
    Ok(switchboard_core::registry::ParsedUrl {
        address: Arc::new(parsed.endpoint),
        instance: parsed.instance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_wins() {
        let endpoint = UnixEndpoint::at("/tmp/x.sock");
        assert_eq!(endpoint.socket_path("Thermostat", "default"), PathBuf::from("/tmp/x.sock"));
    }

    #[test]
    fn default_path_layout() {
        let path = UnixEndpoint::default_path().socket_path("Thermostat", "kitchen");
        assert!(path.ends_with("Thermostat/kitchen.sock"), "{}", path.display());
        assert!(path.starts_with(default_socket_dir()));
    }

    #[test]
    fn components_are_checked() {
        assert!(check_component("instance id", "kitchen").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(check_component("instance id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uid_matches_a_new_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        fs::write(&file, b"").expect("write");
        assert_eq!(fs::metadata(&file).expect("meta").uid(), current_uid());
    }
}
