//! `switchboard list`: running services, through the transport's own discovery.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::transport::{Discoverer, ServiceInfo};

use crate::{
    cli::{ConnectArgs, ListArgs},
    exit::Failure,
    session::{Output, endpoint, url},
};

/// How long discovery may wait for answers when `--timeout` is not given.
const DISCOVERY_WAIT: Duration = Duration::from_secs(3);

/// The running services at `--connect`, each as `list --format json` prints it.
pub(crate) async fn discover(conn: &ConnectArgs) -> Result<Vec<Value>, Failure> {
    let url = url(conn);
    let endpoint = endpoint(conn, None)?;
    let wait = conn.timeout.unwrap_or(DISCOVERY_WAIT);
    let services = endpoint.discover(wait).await.map_err(|error| {
        Failure::Transport(format!("cannot list the services at {url}: {error}"))
    })?;
    let transport = url.split(':').next().unwrap_or_default();
    Ok(services.iter().map(|s| listed(s, transport)).collect())
}

/// `switchboard list`.
pub(crate) async fn run(args: &ListArgs) -> Result<(), Failure> {
    let url = url(&args.conn);
    let services = discover(&args.conn).await?;
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

/// One service as `list` prints it (`docs/shell.md`).
fn listed(service: &ServiceInfo, transport: &str) -> Value {
    json!({
        "interface": service.interface,
        "instance": service.instance,
        "version": service.version,
        "title": service.title,
        "transport": transport,
        "address": service.address,
    })
}
