//! Running as a daemon: the future that resolves when the process is asked to stop.
//!
//! The rest of a daemon's life needs no code: a server tells systemd when it is ready, when it
//! stops and that it is alive, and serves a socket systemd passes it, whenever systemd sets the
//! variables for that (`docs/daemons.md`).

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM (systemd, `kill`,
/// `docker stop`). Made by [`shutdown_signal`].
///
/// It is `Unpin`, so a loop can `select!` on `&mut` one without pinning it.
#[derive(Debug)]
#[must_use = "the signals are only noticed while this future is awaited"]
pub struct ShutdownSignal {
    interrupt: Signal,
    terminate: Signal,
}

/// Starts listening for SIGINT and SIGTERM, and returns the future that resolves on either.
///
/// From this call on, those signals no longer end the process: they complete this future, even
/// one that is first awaited after the signal arrived. So call it before anything that takes
/// time, such as serving over a broker that is not up yet.
///
/// Serving until a signal:
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let stop = switchboard::server::shutdown_signal()?;
/// // let server = ThermostatServer::serve(&endpoint, Zone, properties).await?;
/// stop.await;
/// // server.shutdown().await;
/// # Ok(()) }
/// ```
///
/// Working in a loop until a signal:
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let mut stop = switchboard::server::shutdown_signal()?;
/// let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
/// loop {
///     tokio::select! {
///         _ = ticks.tick() => { /* server.emit_temperature_changed(…).await?; */ }
///         () = &mut stop => break,
///     }
/// }
/// // server.shutdown().await;
/// # Ok(()) }
/// ```
///
/// # Errors
/// When the operating system refuses to install the signal handlers.
///
/// # Panics
/// Outside a Tokio runtime with I/O enabled (as `#[tokio::main]` makes), as Tokio's own signal
/// functions do.
pub fn shutdown_signal() -> io::Result<ShutdownSignal> {
    Ok(ShutdownSignal {
        interrupt: signal(SignalKind::interrupt())?,
        terminate: signal(SignalKind::terminate())?,
    })
}

impl Future for ShutdownSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let received = if self.interrupt.poll_recv(cx).is_ready() {
            "SIGINT"
        } else if self.terminate.poll_recv(cx).is_ready() {
            "SIGTERM"
        } else {
            return Poll::Pending;
        };
        tracing::info!("received {received}; shutting down");
        Poll::Ready(())
    }
}
