//! Runs the client walkthrough against the thermostat at `$SWITCHBOARD_URL` (default: the standard Unix socket).

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    thermostat_example::init_logging();
    let endpoint = switchboard::Endpoint::from_env()?;
    thermostat_example::client::walkthrough(&endpoint).await
}
