//! Serves the thermostat at `$SWITCHBOARD_URL` (default: the standard Unix socket) until stopped.

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    thermostat_example::init_logging();
    let endpoint = switchboard::Endpoint::from_env()?;
    thermostat_example::server::run(&endpoint).await
}
