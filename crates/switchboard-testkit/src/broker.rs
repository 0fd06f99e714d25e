//! Access to the brokers tests run against: the shared loopback mosquitto, NATS, Redis and
//! RabbitMQ, and private mosquitto, nats-server, redis-server and RabbitMQ instances started per test (which a test may stop and
//! restart).

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::prerequisite;

/// The shared broker every MQTT test uses unless it needs its own.
pub const SHARED_BROKER: &str = "127.0.0.1:1883";

/// The mosquitto binary private brokers run.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// The shared NATS server every NATS test uses unless it needs its own.
pub const SHARED_NATS: &str = "127.0.0.1:4222";

/// The nats-server binary private NATS servers run.
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// The shared Redis server's address.
pub const SHARED_REDIS: &str = "127.0.0.1:6379";

/// Where Debian installs redis-server.
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// The shared RabbitMQ broker's address (AMQP 0-9-1, user `guest`, password `guest`).
pub const SHARED_RABBITMQ: &str = "127.0.0.1:5672";

/// The script that runs a RabbitMQ node as the calling user (Debian's `rabbitmq-server`
/// package), for private nodes.
pub const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// A reachable broker.
#[derive(Debug, Clone)]
pub struct SharedBroker {
    /// `mqtt://host:port` or `nats://host:port`.
    pub url: String,
}

fn reachable(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("a socket address");
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// The shared broker on 127.0.0.1:1883, or `None` (with a skip notice) when it is not running.
///
/// # Panics
/// Under `CI=true` a missing broker fails the test instead: CI must run the MQTT tests.
pub fn shared_mosquitto() -> Option<SharedBroker> {
    shared("MQTT broker", "mqtt", SHARED_BROKER, "mosquitto")
}

/// The shared NATS server on 127.0.0.1:4222, or `None` (with a printed reason) when it is not
/// running.
///
/// # Panics
/// Under `CI=true` a missing server fails the test instead: CI must run the NATS tests.
pub fn shared_nats() -> Option<SharedBroker> {
    shared("NATS server", "nats", SHARED_NATS, "nats-server")
}

/// The shared Redis server on 127.0.0.1:6379, or `None` (with a printed reason) when it is not
/// running.
///
/// # Panics
/// Under `CI=true` a missing server fails the test instead: CI must run the Redis tests.
pub fn shared_redis() -> Option<SharedBroker> {
    shared("Redis server", "redis", SHARED_REDIS, "redis-server")
}

/// The shared RabbitMQ broker on 127.0.0.1:5672 as `amqp://guest:guest@127.0.0.1:5672`, or
/// `None` (with a printed reason) when it is not running.
///
/// # Panics
/// Under `CI=true` a missing broker fails the test instead: CI must run the AMQP tests.
pub fn shared_rabbitmq() -> Option<SharedBroker> {
    let broker = shared("RabbitMQ broker", "amqp", SHARED_RABBITMQ, "rabbitmq-server")?;
    Some(SharedBroker { url: broker.url.replace("amqp://", "amqp://guest:guest@") })
}

fn shared(what: &str, scheme: &str, address: &str, install: &str) -> Option<SharedBroker> {
    if reachable(address) {
        return Some(SharedBroker { url: format!("{scheme}://{address}") });
    }
    prerequisite::missing(format_args!("no {what} on {address} (install and start {install})"));
    None
}

/// Whether `program` is installed; if not, the test is skipped with a notice, or fails under
/// `CI=true` ([`prerequisite::missing`]).
fn installed(program: &str, package: &str) -> bool {
    if Path::new(program).exists() {
        return true;
    }
    prerequisite::missing(format_args!(
        "{program} is not installed (Debian: apt-get install {package})"
    ));
    false
}

/// A mosquitto of this test's own, on a free port, with anonymous access. Killed on drop.
#[derive(Debug)]
pub struct PrivateMosquitto {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// The CA certificate (PEM) of a TLS broker's listener.
    ca: Option<PathBuf>,
}

impl PrivateMosquitto {
    /// Starts a broker on a free loopback port (and a Unix socket in its directory) and waits
    /// until it accepts connections. Returns `None` (with a skip notice) if mosquitto is not
    /// installed, unless `CI=true`.
    ///
    /// # Panics
    /// If mosquitto is installed but does not start, or is missing under `CI=true`.
    pub fn start() -> Option<Self> {
        let mut broker = Self::stopped()?;
        broker.launch();
        Some(broker)
    }

    /// Like [`start`](Self::start), but the broker does not run until [`restart`](Self::restart):
    /// for a server or client started before its broker. Its port is free now, and as free as
    /// any other when the broker starts.
    pub fn stopped() -> Option<Self> {
        let dir = Self::prepare()?;
        let port = free_port();
        let config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nlistener 0 {}\nallow_anonymous true\npersistence false\n",
            dir.path().join("mosquitto.sock").display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), config).expect("write mosquitto.conf");
        Some(PrivateMosquitto { dir, port, child: None, ca: None })
    }

    /// Starts a broker with only a TLS listener on a free loopback port, its certificate (for
    /// `127.0.0.1` and `localhost`) issued by a throwaway CA made now. Connect with
    /// [`url`](Self::url), which trusts that CA through `?ca=`. Returns `None` as
    /// [`start`](Self::start) does.
    ///
    /// # Panics
    /// As [`start`](Self::start), or if the certificates cannot be made.
    pub fn start_tls() -> Option<Self> {
        let dir = Self::prepare()?;
        let port = free_port();
        let (ca, cert, key) = write_test_certificates(dir.path());
        let config = format!(
            "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nallow_anonymous true\npersistence false\n",
            ca.display(),
            cert.display(),
            key.display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), config).expect("write mosquitto.conf");
        let mut broker = PrivateMosquitto { dir, port, child: None, ca: Some(ca) };
        broker.launch();
        Some(broker)
    }

    /// The broker's temp dir, or `None` (or a panic under `CI=true`) without mosquitto.
    fn prepare() -> Option<tempfile::TempDir> {
        if !installed(MOSQUITTO, "mosquitto") {
            return None;
        }
        let dir =
            tempfile::Builder::new().prefix("switchboard-mosquitto-").tempdir().expect("temp dir");
        // mosquitto started as root drops to its own user, which must be able to make the socket.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777));
        }
        Some(dir)
    }

    fn launch(&mut self) {
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {MOSQUITTO}: {e}"));
        self.child = Some(child);
        wait_until_listening("mosquitto", self.port);
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:PORT`, or for a TLS broker `mqtts://127.0.0.1:PORT?ca=CA_PATH`.
    pub fn url(&self) -> String {
        match &self.ca {
            None => format!("mqtt://127.0.0.1:{}", self.port),
            Some(ca) => format!("mqtts://127.0.0.1:{}?ca={}", self.port, ca.display()),
        }
    }

    /// The PEM file of the CA that issued a TLS broker's certificate (`None` for plain TCP).
    pub fn ca(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// The broker's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("mosquitto.sock")
    }

    /// Kills the broker (SIGKILL: every connection drops at once, no retained state survives).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker (again) on its port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

fn wait_until_listening(what: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let addr = format!("127.0.0.1:{port}");
    while !reachable(&addr) {
        assert!(Instant::now() < deadline, "{what} did not listen on {addr} within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A nats-server of this test's own, on a free loopback port. Killed on drop.
#[derive(Debug)]
pub struct PrivateNats {
    dir: tempfile::TempDir,
    port: u16,
    args: Vec<String>,
    child: Option<Child>,
    /// The CA certificate (PEM) of a TLS server.
    ca: Option<PathBuf>,
}

impl PrivateNats {
    /// Starts a server with anonymous access on a free port and waits until it accepts
    /// connections. Returns `None` (with a printed reason) if nats-server is not installed,
    /// unless `CI=true`.
    ///
    /// # Panics
    /// If nats-server is installed but does not start, or is missing under `CI=true`.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Like [`start`](Self::start), with more nats-server arguments (such as
    /// `--user u --pass p`).
    pub fn start_with(args: &[&str]) -> Option<Self> {
        if !installed(NATS_SERVER, "nats-server") {
            return None;
        }
        let dir = tempfile::Builder::new().prefix("switchboard-nats-").tempdir().expect("temp dir");
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        let mut server = PrivateNats { dir, port: free_port(), args, child: None, ca: None };
        server.launch();
        Some(server)
    }

    /// Starts a server that requires TLS, its certificate (for `127.0.0.1` and `localhost`)
    /// issued by a throwaway CA made now; [`url`](Self::url) trusts that CA through `?ca=`.
    pub fn start_tls() -> Option<Self> {
        if !installed(NATS_SERVER, "nats-server") {
            return None;
        }
        let dir = tempfile::Builder::new().prefix("switchboard-nats-").tempdir().expect("temp dir");
        let (ca, cert, key) = write_test_certificates(dir.path());
        let args = vec![
            "--tls".to_owned(),
            "--tlscert".to_owned(),
            cert.display().to_string(),
            "--tlskey".to_owned(),
            key.display().to_string(),
        ];
        let mut server = PrivateNats { dir, port: free_port(), args, child: None, ca: Some(ca) };
        server.launch();
        Some(server)
    }

    fn launch(&mut self) {
        let mut command = Command::new(NATS_SERVER);
        command.args(["-a", "127.0.0.1", "-p", &self.port.to_string()]).args(&self.args);
        self.child = Some(spawn_nats(command, self.dir.path(), self.port));
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:PORT`, or for a TLS server `nats+tls://127.0.0.1:PORT?ca=CA_PATH`.
    pub fn url(&self) -> String {
        match &self.ca {
            None => format!("nats://127.0.0.1:{}", self.port),
            Some(ca) => format!("nats+tls://127.0.0.1:{}?ca={}", self.port, ca.display()),
        }
    }

    /// The PEM file of the CA that issued a TLS server's certificate.
    pub fn ca(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// Kills the server (SIGKILL: every connection drops at once, nothing survives).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A redis-server of this test's own, on a free loopback port, without persistence. Killed on
/// drop.
#[derive(Debug)]
pub struct PrivateRedis {
    dir: tempfile::TempDir,
    port: u16,
    args: Vec<String>,
    child: Option<Child>,
    /// The CA certificate (PEM) of a TLS server.
    ca: Option<PathBuf>,
}

impl PrivateRedis {
    /// Starts a server on a free port and waits until it accepts connections. Returns `None`
    /// (with a printed reason) if redis-server is not installed, unless `CI=true`.
    ///
    /// # Panics
    /// If redis-server is installed but does not start, or is missing under `CI=true`.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Like [`start`](Self::start), with more redis-server arguments (such as
    /// `--requirepass p`).
    pub fn start_with(args: &[&str]) -> Option<Self> {
        if !installed(REDIS_SERVER, "redis-server") {
            return None;
        }
        let dir =
            tempfile::Builder::new().prefix("switchboard-redis-").tempdir().expect("temp dir");
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        let mut server = PrivateRedis { dir, port: free_port(), args, child: None, ca: None };
        server.launch();
        Some(server)
    }

    /// Starts a server that takes only TLS connections, its certificate (for `127.0.0.1` and
    /// `localhost`) issued by a throwaway CA made now; [`url`](Self::url) trusts that CA through
    /// `?ca=`. Clients need no certificate of their own.
    pub fn start_tls() -> Option<Self> {
        if !installed(REDIS_SERVER, "redis-server") {
            return None;
        }
        let dir =
            tempfile::Builder::new().prefix("switchboard-redis-").tempdir().expect("temp dir");
        let (ca, cert, key) = write_test_certificates(dir.path());
        let port = free_port();
        let path = |p: &Path| p.display().to_string();
        let args = vec![
            "--tls-port".to_owned(),
            port.to_string(),
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-cert-file".to_owned(),
            path(&cert),
            "--tls-key-file".to_owned(),
            path(&key),
            "--tls-ca-cert-file".to_owned(),
            path(&ca),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ];
        let mut server = PrivateRedis { dir, port, args, child: None, ca: Some(ca) };
        server.launch();
        Some(server)
    }

    fn launch(&mut self) {
        let child = Command::new(REDIS_SERVER)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {REDIS_SERVER}: {e}"));
        self.child = Some(child);
        wait_until_listening("redis-server", self.port);
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`, or for a TLS server `rediss://127.0.0.1:PORT?ca=CA_PATH`.
    pub fn url(&self) -> String {
        match &self.ca {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(ca) => format!("rediss://127.0.0.1:{}?ca={}", self.port, ca.display()),
        }
    }

    /// Kills the server (SIGKILL: every connection drops at once, nothing survives).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A RabbitMQ node of this test's own: its own node name, directories, Erlang cookie and
/// listener on a free loopback port (user `guest`, password `guest`). A node takes some 10 s to
/// boot. Killed on drop.
#[derive(Debug)]
pub struct PrivateRabbitMq {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// The CA certificate (PEM) of a TLS node's listener.
    ca: Option<PathBuf>,
}

impl PrivateRabbitMq {
    /// How long a node may take to listen.
    const BOOT: Duration = Duration::from_secs(90);

    /// Starts a node on a free port and waits until it accepts connections. Returns `None`
    /// (with a printed reason) if RabbitMQ is not installed, unless `CI=true`.
    ///
    /// # Panics
    /// If RabbitMQ is installed but the node does not start, or is missing under `CI=true`.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// Starts a node with only a TLS listener on a free loopback port, its certificate (for
    /// `127.0.0.1` and `localhost`) issued by a throwaway CA made now. Connect with
    /// [`url`](Self::url), which trusts that CA through `?ca=`. Returns `None` as
    /// [`start`](Self::start) does.
    pub fn start_tls() -> Option<Self> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Self> {
        if !installed(RABBITMQ_SERVER, "rabbitmq-server") {
            return None;
        }
        let dir =
            tempfile::Builder::new().prefix("switchboard-rabbitmq-").tempdir().expect("temp dir");
        let port = free_port();
        let (config, ca) = if tls {
            let (ca, cert, key) = write_test_certificates(dir.path());
            let config = format!(
                "listeners.tcp = none\nlisteners.ssl.default = 127.0.0.1:{port}\nssl_options.cacertfile = {}\nssl_options.certfile = {}\nssl_options.keyfile = {}\nssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\nloopback_users = none\n",
                ca.display(),
                cert.display(),
                key.display()
            );
            (config, Some(ca))
        } else {
            (format!("listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"), None)
        };
        std::fs::write(dir.path().join("rabbit.conf"), config).expect("write rabbit.conf");
        let mut node = PrivateRabbitMq { dir, port, child: None, ca };
        node.launch();
        Some(node)
    }

    fn launch(&mut self) {
        use std::os::unix::process::CommandExt;
        let dir = self.dir.path();
        let log = std::fs::File::create(dir.join("node.log")).expect("the node's log file");
        let child = Command::new(RABBITMQ_SERVER)
            .env("RABBITMQ_NODENAME", format!("switchboard-{}@localhost", self.port))
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbit"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("node.pid"))
            // The Erlang cookie lives in $HOME: a node of its own needs a home of its own.
            .env("HOME", dir)
            .current_dir(dir)
            // Its own process group, so that stopping it kills the Erlang VM too.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the node's log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {RABBITMQ_SERVER}: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Self::BOOT;
        let addr = format!("127.0.0.1:{}", self.port);
        while !reachable(&addr) {
            let log = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "the RabbitMQ node did not listen on {addr} within {:?}:\n{log}",
                Self::BOOT
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `amqp://guest:guest@127.0.0.1:PORT`, or for a TLS node
    /// `amqps://guest:guest@127.0.0.1:PORT?ca=…` (trusting its CA).
    pub fn url(&self) -> String {
        match &self.ca {
            Some(ca) => format!("amqps://guest:guest@127.0.0.1:{}?ca={}", self.port, ca.display()),
            None => format!("amqp://guest:guest@127.0.0.1:{}", self.port),
        }
    }

    /// Kills the node with SIGKILL: every connection drops at once, nothing survives.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(group) = libc::pid_t::try_from(child.id()) {
                // SAFETY: signals the process group this node leads, made in `launch`.
                unsafe { libc::kill(-group, libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node again on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for PrivateRabbitMq {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A loopback port where no broker is, for as long as this value lives: the port is bound but
/// never listened on, so a connection to it is refused at once, and no server another test starts
/// meanwhile can take it. (A port merely found free and released can go to another test's private
/// server, and a client sent there then waits on a server of another protocol instead of being
/// refused.)
#[derive(Debug)]
pub struct ClosedPort {
    _reserved: tokio::net::TcpSocket,
    port: u16,
}

impl ClosedPort {
    /// Reserves a loopback port.
    ///
    /// # Panics
    /// If no socket can be bound on 127.0.0.1; a test cannot go on without it.
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("a loopback port");
        let port = socket.local_addr().expect("the bound port").port();
        ClosedPort { _reserved: socket, port }
    }

    /// The reserved port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `ca.pem` (a throwaway CA) plus `server.pem` and `server.key` (a certificate it issued
/// for `127.0.0.1` and `localhost`) into `dir`, returning their paths in that order.
fn write_test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::new()).expect("CA params");
    ca_params.distinguished_name.push(DnType::CommonName, "switchboard test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("a CA key"))
        .expect("a CA certificate");
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
    server_params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().expect("a server key");
    let server = server_params.signed_by(&server_key, &ca).expect("a server certificate");
    let paths = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&paths.0, ca.pem()).expect("write ca.pem");
    std::fs::write(&paths.1, server.pem()).expect("write server.pem");
    // mosquitto started as root reads the key after dropping to its own user.
    std::fs::write(&paths.2, server_key.serialize_pem()).expect("write server.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&paths.2, std::fs::Permissions::from_mode(0o644));
    }
    paths
}

impl Drop for PrivateMosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `command` (a nats-server invocation) quietly in `dir` and waits until it listens on
/// `port`.
///
/// # Panics
/// If nats-server cannot be started or does not listen in time.
fn spawn_nats(mut command: Command, dir: &Path, port: u16) -> Child {
    let child = command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {NATS_SERVER}: {e}"));
    // Killed (by the guard's drop) if it does not come up, rather than left running.
    let mut guard = KillOnDrop(Some(child));
    wait_until_listening("nats-server", port);
    guard.0.take().expect("the child is held until here")
}

/// Kills and reaps a child process it still holds when dropped.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A cluster of nats-servers of this test's own: `n` nodes on free loopback ports, routed to
/// one another, each with JetStream (in its own store directory), as
/// `../shared/reference/cluster/` configures them. Every node is killed on drop.
#[derive(Debug)]
pub struct NatsCluster {
    dir: tempfile::TempDir,
    nodes: Vec<ClusterNode>,
}

#[derive(Debug)]
struct ClusterNode {
    port: u16,
    monitor: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl NatsCluster {
    /// Starts `n` nodes and waits (at most 10 s) until every one has a route to every other.
    /// Returns `None` (with a printed reason) if nats-server is not installed, unless `CI=true`.
    ///
    /// # Panics
    /// If nats-server is installed but the cluster does not form, or it is missing under
    /// `CI=true`.
    pub fn start(n: usize) -> Option<Self> {
        if !installed(NATS_SERVER, "nats-server") {
            return None;
        }
        let dir = tempfile::Builder::new().prefix("switchboard-nats-cluster-").tempdir().ok()?;
        let ports: Vec<(u16, u16, u16)> =
            (0..n).map(|_| (free_port(), free_port(), free_port())).collect();
        let routes: Vec<String> =
            ports.iter().map(|(_, route, _)| format!("nats-route://127.0.0.1:{route}")).collect();
        let mut nodes = Vec::new();
        for (at, (port, route, monitor)) in ports.iter().enumerate() {
            let store = dir.path().join(format!("js{at}"));
            let config = dir.path().join(format!("n{at}.conf"));
            let text = format!(
                "listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\nserver_name: n{at}\n\
                 jetstream {{ store_dir: \"{}\", max_mem: 64MB, max_file: 256MB }}\n\
                 cluster {{ name: sbtest, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                store.display(),
                routes.join(", ")
            );
            std::fs::write(&config, text).expect("write a node's configuration");
            nodes.push(ClusterNode { port: *port, monitor: *monitor, config, child: None });
        }
        let mut cluster = NatsCluster { dir, nodes };
        for at in 0..n {
            cluster.launch(at);
        }
        cluster.wait_for_routes(Duration::from_secs(10));
        Some(cluster)
    }

    fn launch(&mut self, at: usize) {
        let node = &mut self.nodes[at];
        let mut command = Command::new(NATS_SERVER);
        command.arg("-c").arg(&node.config);
        node.child = Some(spawn_nats(command, self.dir.path(), node.port));
    }

    /// Waits until every running node has a route to every other running node.
    ///
    /// # Panics
    /// If they do not within `timeout`.
    pub fn wait_for_routes(&self, timeout: Duration) {
        let running: Vec<&ClusterNode> =
            self.nodes.iter().filter(|node| node.child.is_some()).collect();
        let want = format!("\"num_routes\": {}", running.len() - 1);
        let deadline = Instant::now() + timeout;
        for node in &running {
            while !http_get(node.monitor, "/routez").is_some_and(|body| body.contains(&want)) {
                assert!(
                    Instant::now() < deadline,
                    "the NATS node on port {} did not route to its {} peers within {timeout:?}",
                    node.port,
                    running.len() - 1
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `nats://127.0.0.1:PORT` of node `at` alone (a client learns the others from it).
    pub fn url(&self, at: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[at].port)
    }

    /// The seed list of the nodes `order` names, in that order:
    /// `nats://127.0.0.1:P1,127.0.0.1:P2,…`.
    pub fn seeds(&self, order: &[usize]) -> String {
        let hosts: Vec<String> =
            order.iter().map(|at| format!("127.0.0.1:{}", self.nodes[*at].port)).collect();
        format!("nats://{}", hosts.join(","))
    }

    /// The names of the client connections node `at` holds now (from its monitoring port).
    pub fn connection_names(&self, at: usize) -> Vec<String> {
        let Some(body) = http_get(self.nodes[at].monitor, "/connz?limit=1024") else {
            return Vec::new();
        };
        body.match_indices("\"name\": \"")
            .filter_map(|(start, key)| {
                let rest = &body[start + key.len()..];
                rest.find('"').map(|end| rest[..end].to_owned())
            })
            .collect()
    }

    /// Kills node `at` with SIGKILL: its connections drop at once, as in a crash.
    pub fn kill(&mut self, at: usize) {
        if let Some(mut child) = self.nodes[at].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `at` again on its ports and waits until it is routed to the others.
    pub fn restart(&mut self, at: usize) {
        self.kill(at);
        self.launch(at);
        self.wait_for_routes(Duration::from_secs(10));
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for at in 0..self.nodes.len() {
            self.kill(at);
        }
    }
}

/// The body of `GET path` from the HTTP server on loopback `port`, or `None` if it does not
/// answer within a second.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}
