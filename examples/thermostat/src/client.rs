//! The client walkthrough: call a method, set a property and watch it change, receive a signal.

use std::time::Duration;

use anyhow::Context;
use switchboard::Endpoint;

use crate::generated::thermostat::ThermostatClient;

/// How long the walkthrough waits for any one thing before it gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the walkthrough against the thermostat at `endpoint`, printing what happens.
pub async fn walkthrough(endpoint: &Endpoint) -> anyhow::Result<()> {
    let client =
        ThermostatClient::connect(endpoint).await.context("connecting to the thermostat")?;
    println!("connected to {endpoint}");

    // A signal: subscribe, then wait for the next reading.
    let mut readings = client.subscribe_temperature_changed().await?;
    let reading = tokio::time::timeout(STEP_TIMEOUT, readings.next())
        .await
        .context("no temperature reading arrived")?
        .context("the connection closed")??;
    println!("signal   temperatureChanged: {:.1} °C at {}", reading.celsius, reading.measured_at);

    // A method call.
    let ends_at =
        client.boost(2.0, switchboard::Duration::minutes(30), Some("quickstart".into())).await?;
    println!("method   boost(+2 °C, 30 min) -> ends at {ends_at}");
    let status = client.get_status().await?;
    println!(
        "method   getStatus() -> {:?}, {:.1} °C, {} readings",
        status.mode,
        status.celsius,
        status.history.len()
    );

    // A property: watch it, change it, and see the change arrive.
    let mut setpoint = client.watch_setpoint().await?;
    let before = next_value(&mut setpoint).await?;
    println!("property setpoint is {before} °C");
    client.set_setpoint(before + 1.5).await?;
    let after = next_value(&mut setpoint).await?;
    println!("property setpoint changed to {after} °C");
    anyhow::ensure!(after == before + 1.5, "the set-point did not change as requested");

    // A refused update comes back as a typed remote error.
    match client.set_setpoint(99.0).await {
        Err(switchboard::CallError::Remote(error)) => {
            println!("property setpoint = 99 refused: {}", error.message())
        }
        other => anyhow::bail!("expected the server to refuse 99 °C, got {other:?}"),
    }
    Ok(())
}

async fn next_value(watch: &mut switchboard::PropertyWatch<f64>) -> anyhow::Result<f64> {
    Ok(tokio::time::timeout(STEP_TIMEOUT, watch.next())
        .await
        .context("no property value arrived")?
        .context("the connection closed")??)
}
