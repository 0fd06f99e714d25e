//! `switchboard web`: an HTTP/JSON gateway to the running services — method calls, properties,
//! commands, goals, signal and property streams as server-sent events, and an OpenAPI 3.1
//! document per interface — through the CLI's runtime introspection (no generated code) — and
//! the browser console at `/`, a page built on those routes alone.
//! `docs/web.md` documents the routes, the status codes and the safety rules.

mod console;
mod error;
mod events;
mod goals;
mod guard;
mod routes;
mod state;

use std::{io::Write as _, net::SocketAddr, sync::Arc};

use crate::{cli::WebArgs, command::remote::stop_requested, exit::Failure};

/// The largest request body accepted: 1 MiB (413 above).
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// Where to listen: `--listen` resolved; refuses a non-loopback address without a token.
async fn listen_address(args: &WebArgs) -> Result<SocketAddr, Failure> {
    let listen = args.listen.as_str();
    let address = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| Failure::Usage(format!("--listen `{listen}` is not an address: {e}")))?
        .next()
        .ok_or_else(|| Failure::Usage(format!("--listen `{listen}` resolves to no address")))?;
    if args.token.as_deref() == Some("") {
        return Err(Failure::Usage("--token must not be empty".to_owned()));
    }
    if !address.ip().is_loopback() && args.token.is_none() {
        return Err(Failure::Usage(format!(
            "listening on {address}, which is not a loopback address, needs --token \
             (clients then send `Authorization: Bearer <token>`); put TLS in front of it \
             (a reverse proxy) when the network is not trusted"
        )));
    }
    Ok(address)
}

/// `switchboard web`.
pub(crate) async fn run(args: &WebArgs) -> Result<(), Failure> {
    let stop = stop_requested();
    let address = listen_address(args).await?;
    if args.max_streams == 0 {
        return Err(Failure::Usage("--max-streams must be at least 1".to_owned()));
    }
    let conn = args.services.connect_args();
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Failure::Local(format!("cannot listen on {address}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::Local(format!("cannot read the address listened on: {e}")))?;
    let gateway = Arc::new(state::Gateway::new(conn, args.max_streams));
    let guard = Arc::new(guard::Guard { token: args.token.clone(), cors: args.cors.clone() });
    let app = routes::router(gateway.clone(), guard);
    // The one line scripts and tests read to learn the port (`--listen 127.0.0.1:0`).
    println!("listening on http://{bound}");
    let _ = std::io::stdout().flush();
    // Not a graceful shutdown: event streams never end by themselves, so stopping would wait
    // for every client to leave. Stopping drops the open connections instead.
    let result = tokio::select! {
        served = axum::serve(listener, app).into_future() => {
            served.map_err(|e| Failure::Local(format!("the HTTP server failed: {e}")))
        }
        () = stop => Ok(()),
    };
    gateway.close();
    result
}
