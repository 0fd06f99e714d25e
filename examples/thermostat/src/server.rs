//! The thermostat server: a simulated heating zone implementing the generated `Thermostat` trait.

use std::sync::{Arc, Mutex};

use switchboard::{chrono::Utc, prelude::*};

use crate::generated::thermostat::{
    GetStatusReply, Mode, OutOfRange, PreheatError, PreheatFeedback, PreheatGoal, Thermostat,
    ThermostatProperties, ThermostatServer,
};

/// The lowest and highest temperatures the zone can preheat to.
const PREHEAT_RANGE: (f64, f64) = (5.0, 30.0);

/// How many steps a preheat takes, and how long each one lasts unless the zone says otherwise.
const PREHEAT_STEPS: u8 = 5;
const PREHEAT_STEP: std::time::Duration = std::time::Duration::from_millis(40);

/// The simulated zone: it keeps a short history of readings. Clones share the history.
#[derive(Debug, Clone)]
pub struct Zone {
    history: Arc<Mutex<Vec<f64>>>,
    preheat_step: std::time::Duration,
}

impl Default for Zone {
    fn default() -> Self {
        Zone { history: Arc::default(), preheat_step: PREHEAT_STEP }
    }
}

impl Zone {
    /// A zone whose preheat takes `step` for each of its five steps (40 ms by default): a
    /// slower one leaves a person time to cancel it from a console.
    pub fn with_preheat_step(step: std::time::Duration) -> Zone {
        Zone { preheat_step: step, ..Zone::default() }
    }

    fn record(&self, celsius: f64) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history.push(celsius);
        if history.len() > 10 {
            history.remove(0);
        }
    }
}

/// When a boost of `for_how_long` from `now` ends; a duration too long for the calendar is the
/// caller's error, never a panic (the duration comes from the caller, unchecked).
fn boost_ends_at(now: DateTime, for_how_long: Duration) -> Result<DateTime, RemoteError> {
    now.checked_add_signed(for_how_long).ok_or_else(|| {
        RemoteError::client_error(format!("a boost of {for_how_long} ends past the calendar's end"))
    })
}

impl Thermostat for Zone {
    async fn boost(
        &self,
        _ctx: &CallContext,
        extra_celsius: f64,
        for_how_long: Duration,
        reason: Option<String>,
    ) -> Result<DateTime, RemoteError> {
        if !(0.0..=10.0).contains(&extra_celsius) {
            return Err(RemoteError::client_error(format!(
                "a boost of {extra_celsius} °C is outside 0 to 10 °C"
            )));
        }
        tracing::info!(extra_celsius, %for_how_long, reason = reason.as_deref().unwrap_or("none"), "boosting");
        boost_ends_at(Utc::now(), for_how_long)
    }

    async fn get_status(&self, _ctx: &CallContext) -> Result<GetStatusReply, RemoteError> {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let celsius = history.last().copied().unwrap_or(20.0);
        Ok(GetStatusReply { mode: Mode::Heat, celsius, history })
    }

    async fn accept_preheat(
        &self,
        _ctx: &CallContext,
        goal: &PreheatGoal,
    ) -> Result<(), HandlerError<PreheatError>> {
        let (min_celsius, max_celsius) = PREHEAT_RANGE;
        if !(min_celsius..=max_celsius).contains(&goal.target_celsius) {
            // A declared error: the client receives it as `PreheatError::OutOfRange`, fields and all.
            let requested_celsius = goal.target_celsius;
            let error = OutOfRange { requested_celsius, min_celsius, max_celsius };
            return Err(PreheatError::OutOfRange(error).into());
        }
        Ok(())
    }

    async fn preheat(
        &self,
        goal: GoalContext<PreheatFeedback>,
        target_celsius: f64,
    ) -> Result<f64, HandlerError<PreheatError>> {
        let start = self.history.lock().unwrap_or_else(|p| p.into_inner()).last().copied();
        let start = start.unwrap_or(20.0);
        let mut celsius = start;
        for step in 1..=PREHEAT_STEPS {
            tokio::select! {
                () = tokio::time::sleep(self.preheat_step) => {}
                // The client cancelled (or went away): stop heating and say so.
                () = goal.cancelled() => return Err(HandlerError::Cancelled),
            }
            celsius = start + (target_celsius - start) * f64::from(step) / f64::from(PREHEAT_STEPS);
            let percent = step * (100 / PREHEAT_STEPS);
            goal.feedback(PreheatFeedback { celsius, percent }).await;
        }
        Ok(celsius)
    }

    async fn update_setpoint(&self, _ctx: &CallContext, celsius: &f64) -> Result<(), RemoteError> {
        if !(5.0..=35.5).contains(celsius) {
            return Err(RemoteError::client_error(format!(
                "a set-point of {celsius} °C is outside 5 to 35.5 °C"
            )));
        }
        Ok(())
    }
}

/// Serves a thermostat at `endpoint` until Ctrl-C or SIGTERM, emitting a reading every 200 ms.
pub async fn run(endpoint: &Endpoint) -> anyhow::Result<()> {
    run_until(endpoint, std::future::pending()).await
}

/// Like [`run`], but also stops when `stop` completes.
pub async fn run_until(endpoint: &Endpoint, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_zone_until(endpoint, Zone::default(), stop).await
}

/// Like [`run_until`], serving `zone`.
pub async fn run_zone_until(
    endpoint: &Endpoint,
    zone: Zone,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Listening from the start, so a signal while the server starts still stops it cleanly.
    let mut signal = switchboard::server::shutdown_signal()?;
    let properties = ThermostatProperties { setpoint: 21.0, mode: Mode::Heat };
    let server = ThermostatServer::serve(endpoint, zone.clone(), properties).await?;
    tracing::info!(%endpoint, "thermostat serving");

    let mut stop = std::pin::pin!(stop);
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(200));
    let mut celsius = 19.5;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                celsius += 0.1;
                zone.record(celsius);
                server.emit_temperature_changed(celsius, Utc::now()).await?;
            }
            () = &mut signal => break,
            () = &mut stop => break,
        }
    }
    tracing::info!("thermostat stopping");
    // Returns once clients are told: over MQTT, the retained announcement is cleared.
    server.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boost_too_long_for_the_calendar_is_refused_not_a_panic() {
        let now = Utc::now();
        let huge = Duration::try_days(100_000_000).expect("a representable duration");
        let error = boost_ends_at(now, huge).unwrap_err();
        assert!(error.to_string().contains("past the calendar's end"), "{error}");
        let hour = Duration::try_hours(1).expect("an hour");
        assert_eq!(boost_ends_at(now, hour).unwrap(), now + hour);
    }
}
