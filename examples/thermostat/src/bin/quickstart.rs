//! The quickstart: starts the thermostat server as a second process (this same binary, run
//! with `serve`), runs the client walkthrough against it over the Unix socket, stops the server
//! and exits 0 when everything worked.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use switchboard::{Endpoint, error::TransportErrorKind};
use thermostat_example::generated::thermostat::ThermostatClient;

/// Stops the server process however the quickstart ends: closing its stdin asks it to stop,
/// and it is killed if it has not within three seconds.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    thermostat_example::init_logging();
    let endpoint = Endpoint::from_env()?;
    if std::env::args().nth(1).as_deref() == Some("serve") {
        let stdin_closed = async {
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut sink).await;
        };
        return thermostat_example::server::run_until(&endpoint, stdin_closed).await;
    }
    let this = std::env::current_exe().context("finding the quickstart binary")?;
    let _server = ServerProcess(
        Command::new(this)
            .arg("serve")
            .stdin(Stdio::piped())
            .spawn()
            .context("starting the server process")?,
    );

    wait_until_serving(&endpoint).await?;
    thermostat_example::client::walkthrough(&endpoint).await?;
    println!("quickstart finished: method, property, signal and action all worked");
    Ok(())
}

/// Waits for the server to accept connections, for at most ten seconds.
async fn wait_until_serving(endpoint: &Endpoint) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ThermostatClient::connect(endpoint).await {
            Ok(client) => {
                client.close();
                return Ok(());
            }
            Err(error)
                if error.kind() == TransportErrorKind::NotFound && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => return Err(error).context("the thermostat server did not start"),
        }
    }
}
