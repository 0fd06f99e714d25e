//! Interface routes: a service of a generated interface, running on one side, served again on
//! the other by a bridge that has no generated code of it.
//!
//! The bridge learns the interface from the description the service gives when asked (runtime
//! introspection), and computes its hash as the generator does. It connects a
//! [`ClientCore`] to the service (the holder) and starts a [`ServerCore`] with the same name,
//! version, hash and description on the other side, whose [`Service`] forwards each request to
//! the client with its payload undecoded (held as [`RawValue`], JSON checked but never parsed
//! into values): calls, property updates, commands and goals (feedback, cancel and result).
//! Property values and versions are mirrored from the holder's watches, signals re-emitted from
//! its subscriptions. A declared error is a `RemoteError` with its name and fields, and passes
//! through unchanged.

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use serde_json::value::RawValue;
use switchboard_core::{
    CallError, ErrorCode, GoalContext, GoalError, GoalOutcome, InterfaceDescriptor, MethodError,
    RemoteError, TransportError,
    action::{GoalRun, RawGoal},
    client::{ClientCore, ClientOptions, SubscriptionError},
    context::CallContext,
    error::names,
    server::{ServerCore, ServerOptions, Service},
    transport::{BoxFuture, ServiceTarget},
};
use switchboard_idl::Interface;
use tokio::{sync::watch, task::JoinHandle};

use super::{Counters, SideState};
use crate::Endpoint;

/// An interface route's settings, shared by its tasks.
pub(super) struct Spec {
    pub(super) route: String,
    pub(super) interface: String,
    pub(super) holder: Arc<SideState>,
    pub(super) served: Arc<SideState>,
    pub(super) holder_endpoint: Endpoint,
    pub(super) served_endpoint: Endpoint,
    pub(super) timeout: Duration,
    pub(super) counters: Arc<Counters>,
}

/// A running interface route: the server on the side it is served on, and the tasks that
/// mirror the holder's properties and signals into it.
pub(super) struct Exposed {
    server: Arc<ServerCore>,
    client: ClientCore,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Exposed {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.client.close();
    }
}

impl Exposed {
    /// Stops serving, once the transport's farewell has left.
    pub(super) async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.server.shutdown().await;
    }
}

/// Why an interface route did not start: the side that failed, and how.
pub(super) enum ExposeError {
    Holder(TransportError),
    Served(TransportError),
}

/// Learns the interface from the holder, connects to it, and serves it on the other side.
pub(super) async fn expose(spec: &Arc<Spec>) -> Result<Exposed, ExposeError> {
    let descriptor = learn(spec).await.map_err(ExposeError::Holder)?;
    let descriptor = Arc::new(descriptor);
    let options = ClientOptions::default().call_timeout(spec.timeout);
    let client = ClientCore::connect(&spec.holder_endpoint, &descriptor, options)
        .await
        .map_err(ExposeError::Holder)?;
    let mut watches = Vec::new();
    let mut initial = Vec::new();
    let mut mirrored = Vec::new();
    for property in descriptor.properties.iter() {
        let name = property.name.to_string();
        let mut watch = client
            .watch_property::<Box<RawValue>, Box<RawValue>>(name.clone(), |raw| raw)
            .await
            .map_err(|e| ExposeError::Holder(transport_error(e)))?;
        let first = tokio::time::timeout(spec.timeout, watch.next()).await;
        let Ok(Some(Ok(value))) = first else {
            return Err(ExposeError::Holder(TransportError::new(
                switchboard_core::TransportErrorKind::Protocol,
                format!("the value of property `{name}` did not arrive"),
            )));
        };
        let version = watch.version().unwrap_or(0);
        initial.push((name.clone(), version, raw_bytes(&value)));
        let (seen, _) = watch::channel(version);
        mirrored.push((name.clone(), seen.clone()));
        watches.push((name, watch, seen));
    }
    let mut signals = Vec::new();
    for signal in descriptor.signals.iter() {
        let stream = client
            .subscribe::<Box<RawValue>>(signal.clone())
            .await
            .map_err(|e| ExposeError::Holder(transport_error(e)))?;
        signals.push((signal.to_string(), stream));
    }
    let forwarder = Arc::new(Forwarder {
        spec: spec.clone(),
        client: client.clone(),
        descriptor: descriptor.clone(),
        mirrored: Arc::new(mirrored),
    });
    let target = ServiceTarget::new(descriptor.clone(), spec.served_endpoint.instance());
    // The holder limits its goals; each one here is one there, so this side adds no limit.
    let options = ServerOptions::default().default_action_limit(usize::MAX);
    let server =
        ServerCore::start_mirror(&spec.served_endpoint, target, forwarder, initial, options)
            .await
            .map_err(ExposeError::Served)?;
    let server = Arc::new(server);
    let mut tasks = Vec::new();
    for (name, mut watch, seen) in watches {
        let server = server.clone();
        let route = spec.route.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(next) = watch.next().await {
                let Ok(value) = next else { continue };
                let version = watch.version().unwrap_or(0);
                if let Err(error) = server.mirror_property(&name, version, raw_bytes(&value)).await
                {
                    tracing::warn!(route = %route, property = %name, %error, "a property change was not mirrored");
                }
                seen.send_replace(version);
            }
        }));
    }
    for (name, mut stream) in signals {
        let server = server.clone();
        let spec = spec.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(next) = stream.next().await {
                match next {
                    Ok(payload) => match server.emit_raw(&name, raw_bytes(&payload)).await {
                        Ok(()) => Counters::add(&spec.counters.forwarded, 1),
                        Err(error) => {
                            tracing::warn!(route = %spec.route, signal = %name, %error, "a signal was dropped");
                            Counters::add(&spec.counters.dropped, 1);
                        }
                    },
                    Err(SubscriptionError::Lagged { missed }) => {
                        tracing::warn!(route = %spec.route, signal = %name, missed, "the signal subscription fell behind");
                        Counters::add(&spec.counters.dropped, missed);
                    }
                    Err(SubscriptionError::Transport(error)) => {
                        tracing::warn!(route = %spec.route, %error, "the side serving the interface is away");
                    }
                    Err(error) => {
                        tracing::warn!(route = %spec.route, signal = %name, %error, "a signal was dropped");
                        Counters::add(&spec.counters.dropped, 1);
                    }
                }
            }
        }));
    }
    Ok(Exposed { server, client, tasks })
}

/// The holder's interface, from the description it gives (its hash computed as the generator
/// computes it, so clients generated from the same file accept this side's server).
async fn learn(spec: &Spec) -> Result<InterfaceDescriptor, TransportError> {
    let bare = InterfaceDescriptor::named(spec.interface.as_str());
    let options = ClientOptions::default().call_timeout(spec.timeout);
    let probe = ClientCore::connect(&spec.holder_endpoint, &bare, options).await?;
    let description = probe.describe().await;
    probe.close();
    let description = description.map_err(transport_error)?;
    descriptor_of(&spec.interface, &description).map_err(|reason| {
        TransportError::new(
            switchboard_core::TransportErrorKind::Protocol,
            format!("the description of {} is unusable: {reason}", spec.interface),
        )
    })
}

/// The runtime descriptor a description (the interface model as JSON) stands for, with the hash
/// the generator computes from it and the description exactly as the holder gave it.
fn descriptor_of(interface: &str, description: &str) -> Result<InterfaceDescriptor, String> {
    let model: Interface = serde_json::from_str(description).map_err(|e| e.to_string())?;
    if model.name != interface {
        return Err(format!("it describes {}", model.name));
    }
    let hash = model.description_hash();
    Ok(InterfaceDescriptor::from_model(&model, hash, description.to_owned()))
}

/// The service the bridge serves: every request goes to the holder. Clones share everything.
#[derive(Clone)]
struct Forwarder {
    spec: Arc<Spec>,
    client: ClientCore,
    descriptor: Arc<InterfaceDescriptor>,
    /// The last version of each property mirrored from the holder.
    mirrored: Arc<Vec<(String, watch::Sender<u64>)>>,
}

impl Forwarder {
    /// The error a caller gets when the holder cannot be reached: it names the bridge and the side.
    fn away(&self, error: &TransportError) -> RemoteError {
        Counters::add(&self.spec.counters.failed, 1);
        RemoteError::new(
            ErrorCode::ServiceUnavailable,
            names::INTERNAL,
            format!(
                "bridge: side {} ({}) is unreachable: {error}",
                self.spec.holder.side,
                self.spec.holder.url()
            ),
        )
    }

    /// The holder's answer to a request, or the bridge's own error when there is none.
    fn answer<T>(&self, what: &str, result: Result<T, CallError>) -> Result<T, RemoteError> {
        match result {
            Ok(value) => {
                Counters::add(&self.spec.counters.forwarded, 1);
                Ok(value)
            }
            Err(CallError::Remote(error)) => {
                Counters::add(&self.spec.counters.forwarded, 1);
                Err(error)
            }
            Err(CallError::Timeout(timeout)) => {
                Counters::add(&self.spec.counters.failed, 1);
                Err(RemoteError::new(
                    ErrorCode::Timeout,
                    names::INTERNAL,
                    format!(
                        "bridge: {what} on side {} did not answer within {timeout:?}",
                        self.spec.holder.side
                    ),
                ))
            }
            Err(CallError::Transport(error)) => Err(self.away(&error)),
            Err(other) => {
                Counters::add(&self.spec.counters.failed, 1);
                Err(RemoteError::internal(format!("bridge: {what}: {other}")))
            }
        }
    }
}

fn raw_bytes(value: &RawValue) -> Bytes {
    Bytes::copy_from_slice(value.get().as_bytes())
}

/// A payload as JSON the client sends on as it is; one that is not JSON is the caller's error.
fn raw_payload(what: &str, payload: &[u8]) -> Result<Box<RawValue>, RemoteError> {
    serde_json::from_slice(payload).map_err(|error| {
        RemoteError::new(
            ErrorCode::ServerDeserializationError,
            names::INVALID_ARGUMENTS,
            format!("invalid arguments for `{what}`: {error}"),
        )
    })
}

fn transport_error(error: CallError) -> TransportError {
    match error {
        CallError::Transport(error) => error,
        other => {
            TransportError::new(switchboard_core::TransportErrorKind::Protocol, other.to_string())
        }
    }
}

impl Service for Forwarder {
    fn call(
        &self,
        method: &str,
        payload: Bytes,
        _ctx: CallContext,
    ) -> BoxFuture<'static, Result<Bytes, RemoteError>> {
        let this = self.clone();
        let method = method.to_owned();
        Box::pin(async move {
            let timeout = this
                .descriptor
                .method(&method)
                .and_then(|m| m.timeout)
                .unwrap_or(this.spec.timeout);
            let answer = this.client.call_raw_within(method.clone(), payload, timeout).await;
            this.answer(&format!("`{method}`"), answer)
        })
    }

    fn update_property(
        &self,
        property: &str,
        payload: Bytes,
        _ctx: CallContext,
    ) -> BoxFuture<'static, Result<Bytes, RemoteError>> {
        let this = self.clone();
        let property = property.to_owned();
        Box::pin(async move {
            let set = this.client.set_property_raw(property.clone(), payload.clone()).await;
            let version = this.answer(&format!("property `{property}`"), set)?;
            // The reply gives the client the version this side holds: wait (a bounded time)
            // until the holder's change has been mirrored.
            if let Some((_, seen)) = this.mirrored.iter().find(|(name, _)| *name == property) {
                let mut seen = seen.subscribe();
                let _ =
                    tokio::time::timeout(this.spec.timeout, seen.wait_for(|v| *v >= version)).await;
            }
            Ok(payload)
        })
    }

    fn command(
        &self,
        command: &str,
        payload: Bytes,
        _ctx: CallContext,
    ) -> BoxFuture<'static, Result<(), RemoteError>> {
        let this = self.clone();
        let command = command.to_owned();
        Box::pin(async move {
            let args = raw_payload(&command, &payload)?;
            let sent = this.client.command(command.clone(), &args).await;
            this.answer(&format!("command `{command}`"), sent)
        })
    }

    fn start_goal(
        &self,
        action: &str,
        payload: Bytes,
        goal: RawGoal,
    ) -> BoxFuture<'static, Result<GoalRun, RemoteError>> {
        let this = self.clone();
        let action = action.to_owned();
        Box::pin(async move {
            let args = raw_payload(&action, &payload)?;
            let sent = this
                .client
                .send_goal::<_, Box<RawValue>, Box<RawValue>, Box<RawValue>, Infallible>(
                    action.clone(),
                    &args,
                    |raw| raw,
                )
                .await
                .map_err(|error| match error {
                    MethodError::Call(error) => error,
                    // The holder's declared errors are remote errors to a client of no types.
                    _ => CallError::Remote(RemoteError::internal("bridge: the goal was refused")),
                });
            let mut handle = this.answer(&format!("action `{action}`"), sent)?;
            let context = GoalContext::<Box<RawValue>>::new(goal);
            let run: GoalRun = Box::pin(async move {
                let mut cancel_sent = false;
                loop {
                    tokio::select! {
                        feedback = handle.next_feedback() => match feedback {
                            Some(feedback) => context.feedback(feedback).await,
                            None => break,
                        },
                        () = context.cancelled(), if !cancel_sent => {
                            cancel_sent = true;
                            if let Err(error) = handle.cancel().await {
                                tracing::warn!(route = %this.spec.route, %action, %error, "a cancel did not reach the goal");
                            }
                        }
                    }
                }
                match handle.result().await {
                    Ok(result) => GoalOutcome::Succeeded(raw_bytes(&result)),
                    Err(GoalError::Cancelled) => GoalOutcome::Cancelled,
                    Err(GoalError::Call(CallError::Remote(error))) => GoalOutcome::Failed(error),
                    Err(GoalError::Call(CallError::Transport(error))) => {
                        GoalOutcome::Failed(this.away(&error))
                    }
                    Err(GoalError::Call(other)) => GoalOutcome::Failed(RemoteError::internal(
                        format!("bridge: action `{action}`: {other}"),
                    )),
                    // `Infallible` declares no errors: the holder's arrive as `Call` above.
                    Err(_) => GoalOutcome::Failed(RemoteError::internal(format!(
                        "bridge: action `{action}` ended in an unknown way"
                    ))),
                }
            });
            Ok(run)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_gives_the_runtime_descriptor_and_the_generated_hash() {
        let text = include_str!("../../../../examples/thermostat/thermostat.yaml");
        let parsed =
            switchboard_idl::parse("thermostat.yaml", text, &mut switchboard_idl::NoLoader);
        let model = parsed.interface.expect("a valid interface");
        let description = model.description_json();
        let descriptor = descriptor_of("Thermostat", &description).expect("usable");
        assert_eq!(descriptor.hash, model.description_hash());
        assert_eq!((&*descriptor.name, &*descriptor.version), ("Thermostat", "1.0.0"));
        assert!(descriptor.property("mode").expect("a property").read_only);
        assert!(descriptor.signal("temperatureChanged").is_some());
        assert_eq!(&*descriptor.description, description);
        let error = descriptor_of("Other", &description).expect_err("another interface");
        assert!(error.contains("describes Thermostat"), "{error}");
        assert!(descriptor_of("Thermostat", "not json").is_err());
    }
}
