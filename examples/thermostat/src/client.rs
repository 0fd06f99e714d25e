//! The client walkthrough: call a method, set a property and watch it change, receive a signal,
//! run an action with progress, cancel one, and match a typed error.

use std::time::Duration;

use anyhow::Context;
use switchboard::{client::PropertyWatch, prelude::*};

use crate::generated::thermostat::{OutOfRange, PreheatError, ThermostatClient};

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
        Err(CallError::Remote(error)) => {
            println!("property setpoint = 99 refused: {}", error.message())
        }
        other => anyhow::bail!("expected the server to refuse 99 °C, got {other:?}"),
    }

    // An action: send a goal, follow its progress, and await its result.
    let mut preheat = client.preheat(23.0).await?;
    while let Some(progress) = timeout(preheat.next_feedback()).await? {
        println!("action   preheat: {:>3} % at {:.1} °C", progress.percent, progress.celsius);
    }
    let reached = timeout(preheat.result()).await??;
    println!("action   preheat done: {reached:.1} °C");

    // Cancelling: the handler sees it and the goal ends cancelled.
    let mut second = client.preheat(25.0).await?;
    timeout(second.next_feedback()).await?;
    second.cancel().await?;
    match timeout(second.result()).await? {
        Err(GoalError::Cancelled) => println!("action   preheat cancelled after the first step"),
        other => anyhow::bail!("expected the preheat to be cancelled, got {other:?}"),
    }

    // A typed error: match the declared error and read its fields.
    match client.preheat(80.0).await {
        Err(MethodError::Declared(PreheatError::OutOfRange(OutOfRange {
            requested_celsius,
            max_celsius,
            ..
        }))) => println!(
            "action   preheat to {requested_celsius} °C rejected: the maximum is {max_celsius} °C"
        ),
        other => anyhow::bail!("expected OutOfRange, got {other:?}"),
    }
    Ok(())
}

async fn timeout<T>(future: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(STEP_TIMEOUT, future).await.context("the server took too long")
}

async fn next_value(watch: &mut PropertyWatch<f64>) -> anyhow::Result<f64> {
    Ok(tokio::time::timeout(STEP_TIMEOUT, watch.next())
        .await
        .context("no property value arrived")?
        .context("the connection closed")??)
}
