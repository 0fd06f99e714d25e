//! A thermostat server for fault tests, which kill it with SIGKILL and start it again.
//!
//! Usage: `switchboard-test-server SOCKET_PATH` or `switchboard-test-server ENDPOINT_URL` (any
//! argument containing `://`, such as `mqtt://127.0.0.1:1883?instance=x`). Unlike the example, `boost` answers only after
//! `forHowLong` has passed, so a test can kill the server while a call is in flight. It emits
//! `temperatureChanged` every 50 ms so tests can see signals resume after a restart. SIGINT or
//! SIGTERM shut it down cleanly, and it exits 0.

use std::time::Duration;

use switchboard::{
    DateTime, Endpoint, error::RemoteError, server::CallContext, transport::unix::UnixEndpoint,
};
use switchboard_tests::thermostat::{
    GetStatusReply, Mode, PreheatError, PreheatFeedback, Thermostat, ThermostatProperties,
    ThermostatServer,
};

struct SlowThermostat;

impl Thermostat for SlowThermostat {
    async fn boost(
        &self,
        _ctx: &CallContext,
        _extra_celsius: f64,
        for_how_long: switchboard::Duration,
        _reason: Option<String>,
    ) -> Result<DateTime, RemoteError> {
        tokio::time::sleep(for_how_long.to_std().unwrap_or_default()).await;
        Ok(DateTime::from(std::time::SystemTime::now()))
    }

    async fn get_status(&self, _ctx: &CallContext) -> Result<GetStatusReply, RemoteError> {
        Ok(GetStatusReply { mode: Mode::Eco, celsius: 18.5, history: vec![18.0, 18.5] })
    }

    async fn preheat(
        &self,
        goal: switchboard::action::GoalContext<PreheatFeedback>,
        target_celsius: f64,
    ) -> Result<f64, switchboard::error::HandlerError<PreheatError>> {
        goal.feedback(PreheatFeedback { celsius: target_celsius, percent: 100 }).await;
        Ok(target_celsius)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) = std::env::args().nth(1) else {
        return Err("usage: switchboard-test-server SOCKET_PATH|ENDPOINT_URL".into());
    };
    let endpoint = if path.contains("://") {
        Endpoint::parse(&path)?
    } else {
        Endpoint::unix(UnixEndpoint::at(path))
    };
    let mut stop = switchboard::server::shutdown_signal()?;
    let properties = ThermostatProperties { setpoint: 21.0, mode: Mode::Eco };
    let server = ThermostatServer::serve(&endpoint, SlowThermostat, properties).await?;
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    let mut celsius = 18.0;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut stop => break,
        }
        celsius += 0.5;
        // Over a broker, emitting fails while the broker is away; keep going.
        if let Err(error) = server
            .emit_temperature_changed(celsius, DateTime::from(std::time::SystemTime::now()))
            .await
        {
            eprintln!("switchboard-test-server: could not emit: {error}");
        }
    }
    server.shutdown().await;
    Ok(())
}
