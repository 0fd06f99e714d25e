//! The verbs that talk to a running service: introspect, call, get, set, watch, action, command.

use std::{convert::Infallible, time::Duration};

use bytes::Bytes;
use serde_json::{Value, json};
use switchboard_core::{GoalError, GoalHandle, client::SubscriptionError};
use switchboard_idl::{
    Field, Interface,
    english::{counted, listed, plural},
};
use tokio::sync::mpsc;

use crate::{
    cli::{GetArgs, IntrospectArgs, InvokeArgs, WatchArgs},
    exit::Failure,
    session::{Output, Service, Session},
    types::{Types, signature},
};

/// How long to wait for a goal's end state after Ctrl-C asked to cancel it.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

pub(crate) fn decode(payload: &[u8], what: &str) -> Result<Value, Failure> {
    serde_json::from_slice(payload)
        .map_err(|e| Failure::Transport(format!("the server sent an unreadable {what}: {e}")))
}

/// "Thermostat has no method `x`; its methods: …", for one or more kinds of member (`signal or
/// property`, `signals and properties`).
fn not_found(iface: &Interface, kinds: &[&str], name: &str, known: Vec<&str>) -> Failure {
    let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
    let kind = listed(kinds, "or");
    let kinds = listed(&kinds.iter().map(|k| plural(k)).collect::<Vec<_>>(), "and");
    Failure::NotFound(format!("{} has no {kind} `{name}`; its {kinds}: {known}", iface.name))
}

/// The fields of a method's arguments.
pub(crate) fn method<'a>(
    iface: &'a Interface,
    name: &str,
) -> Result<&'a switchboard_idl::Method, Failure> {
    iface.methods.iter().find(|m| m.name == name).ok_or_else(|| {
        not_found(iface, &["method"], name, iface.methods.iter().map(|m| m.name.as_str()).collect())
    })
}

pub(crate) fn property<'a>(
    iface: &'a Interface,
    name: &str,
) -> Result<&'a switchboard_idl::Property, Failure> {
    iface.properties.iter().find(|p| p.name == name).ok_or_else(|| {
        not_found(
            iface,
            &["property"],
            name,
            iface.properties.iter().map(|p| p.name.as_str()).collect(),
        )
    })
}

pub(crate) fn action<'a>(
    iface: &'a Interface,
    name: &str,
) -> Result<&'a switchboard_idl::Action, Failure> {
    iface.actions.iter().find(|a| a.name == name).ok_or_else(|| {
        not_found(iface, &["action"], name, iface.actions.iter().map(|a| a.name.as_str()).collect())
    })
}

pub(crate) fn command<'a>(
    iface: &'a Interface,
    name: &str,
) -> Result<&'a switchboard_idl::Command, Failure> {
    iface.commands.iter().find(|c| c.name == name).ok_or_else(|| {
        not_found(
            iface,
            &["command"],
            name,
            iface.commands.iter().map(|c| c.name.as_str()).collect(),
        )
    })
}

fn build(types: &Types<'_>, fields: &[Field], args: &InvokeArgs) -> Result<Value, Failure> {
    types.build(fields, &args.args, args.json.as_deref()).map_err(Failure::Usage)
}

pub(crate) fn encode(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// Prints one result object.
fn print_object(out: Output, types: &Types<'_>, fields: &[Field], value: &Value) {
    if out.json() {
        println!("{value}");
    } else {
        print!("{}", types.render_fields(fields, value, out));
    }
}

/// `switchboard introspect`.
pub(crate) async fn introspect(args: &IntrospectArgs) -> Result<(), Failure> {
    let service = Service::parse(&args.service)?;
    let session = Session::open(&args.conn, &service).await?;
    let out = Output::new(&args.conn);
    if out.json() {
        println!("{}", session.iface.description_json());
    } else {
        print!("{}", describe_text(&session.iface, out));
    }
    session.client.close();
    Ok(())
}

/// The readable summary `introspect` prints.
pub(crate) fn describe_text(iface: &Interface, out: Output) -> String {
    let mut s = String::new();
    let title = iface.title.as_deref().map(|t| format!(" — {t}")).unwrap_or_default();
    s.push_str(&format!("{} {}{title}\n", out.bold(&iface.name), iface.version));
    if let Some(summary) = &iface.summary {
        s.push_str(&format!("{summary}\n"));
    }
    let mut section = |name: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            s.push_str(&format!("\n{}\n", out.bold(name)));
            for line in lines {
                s.push_str(&format!("  {line}\n"));
            }
        }
    };
    section(
        "methods",
        iface
            .methods
            .iter()
            .map(|m| {
                let errors = if m.errors.is_empty() {
                    String::new()
                } else {
                    format!(" errors {}", m.errors.join(", "))
                };
                format!(
                    "{}({}) -> ({}){errors}",
                    m.name,
                    signature(&m.arguments),
                    signature(&m.returns)
                )
            })
            .collect(),
    );
    section(
        "properties",
        iface
            .properties
            .iter()
            .map(|p| {
                let ro = if p.read_only { " (read-only)" } else { "" };
                format!("{} {{{}}}{ro}", p.name, signature(&p.fields))
            })
            .collect(),
    );
    section(
        "signals",
        iface.signals.iter().map(|x| format!("{}({})", x.name, signature(&x.fields))).collect(),
    );
    section(
        "actions",
        iface
            .actions
            .iter()
            .map(|a| {
                format!(
                    "{}({}) feedback ({}) -> ({})",
                    a.name,
                    signature(&a.goal),
                    signature(&a.feedback),
                    signature(&a.result)
                )
            })
            .collect(),
    );
    section(
        "commands",
        iface.commands.iter().map(|c| format!("{}({})", c.name, signature(&c.arguments))).collect(),
    );
    section(
        "enums",
        iface
            .enums
            .iter()
            .map(|e| {
                let values = e
                    .values
                    .iter()
                    .map(|v| format!("{}={}", v.name, v.value))
                    .collect::<Vec<_>>()
                    .join(" | ");
                format!("{} = {values}", e.name)
            })
            .collect(),
    );
    section(
        "structs",
        iface.structs.iter().map(|x| format!("{} {{{}}}", x.name, signature(&x.fields))).collect(),
    );
    section(
        "errors",
        iface.errors.iter().map(|e| format!("{} {{{}}}", e.name, signature(&e.fields))).collect(),
    );
    s
}

/// `switchboard call`.
pub(crate) async fn call(args: &InvokeArgs) -> Result<(), Failure> {
    let service = Service::parse(&args.service)?;
    let session = Session::open(&args.conn, &service).await?;
    let types = session.types();
    let method = method(&session.iface, &args.member)?;
    let payload = build(&types, &method.arguments, args)?;
    let reply = session.client.call_raw(method.name.clone(), encode(&payload)).await?;
    let reply = decode(&reply, "reply")?;
    print_object(Output::new(&args.conn), &types, &method.returns, &reply);
    session.client.close();
    Ok(())
}

/// `switchboard get`.
pub(crate) async fn get(args: &GetArgs) -> Result<(), Failure> {
    let service = Service::parse(&args.service)?;
    let session = Session::open(&args.conn, &service).await?;
    let types = session.types();
    let property = property(&session.iface, &args.property)?;
    let (_, value) = session.client.get_property_raw(property.name.clone()).await?;
    let value = decode(&value, "property value")?;
    print_object(Output::new(&args.conn), &types, &property.fields, &value);
    session.client.close();
    Ok(())
}

/// `switchboard set`.
pub(crate) async fn set(args: &InvokeArgs) -> Result<(), Failure> {
    let service = Service::parse(&args.service)?;
    let session = Session::open(&args.conn, &service).await?;
    let types = session.types();
    let property = property(&session.iface, &args.member)?;
    if property.read_only {
        return Err(Failure::Usage(format!("property `{}` is read-only", property.name)));
    }
    let value = build(&types, &property.fields, args)?;
    session.client.set_property_raw(property.name.clone(), encode(&value)).await?;
    print_object(Output::new(&args.conn), &types, &property.fields, &value);
    session.client.close();
    Ok(())
}

/// `switchboard command`.
pub(crate) async fn run_command(args: &InvokeArgs) -> Result<(), Failure> {
    let service = Service::parse(&args.service)?;
    let session = Session::open(&args.conn, &service).await?;
    let types = session.types();
    let command = command(&session.iface, &args.member)?;
    let value = build(&types, &command.arguments, args)?;
    session.client.command(command.name.clone(), &value).await?;
    if Output::new(&args.conn).json() {
        println!("{{}}");
    } else {
        println!("sent {}", command.name);
    }
    // Let the transport hand the command over before the connection closes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    session.client.close();
    Ok(())
}

/// One line of `watch` output.
#[derive(Debug)]
pub(crate) enum WatchEvent {
    Signal { name: String, args: Value },
    Property { name: String, version: Option<u64>, value: Value },
    Problem(String),
}

impl WatchEvent {
    pub(crate) fn to_json(&self) -> Value {
        match self {
            WatchEvent::Signal { name, args } => json!({ "signal": name, "args": args }),
            WatchEvent::Property { name, version, value } => {
                json!({ "property": name, "version": version, "value": value })
            }
            WatchEvent::Problem(message) => json!({ "warning": message }),
        }
    }
}

fn identity(value: Value) -> Value {
    value
}

/// Subscribes to every name (all signals and properties when `names` is empty). Returns the
/// names watched, and the channel events arrive on, which closes when the client does.
pub(crate) async fn start_watch(
    session: &Session,
    names: &[String],
) -> Result<(Vec<String>, mpsc::Receiver<WatchEvent>), Failure> {
    let iface = &session.iface;
    let names: Vec<String> = if names.is_empty() {
        iface
            .signals
            .iter()
            .map(|s| s.name.clone())
            .chain(iface.properties.iter().map(|p| p.name.clone()))
            .collect()
    } else {
        names.to_vec()
    };
    let (tx, rx) = mpsc::channel(256);
    for name in names.iter().cloned() {
        if iface.signals.iter().any(|s| s.name == name) {
            let mut stream = session.client.subscribe::<Value>(name.clone()).await?;
            let tx = tx.clone();
            tokio::spawn(async move {
                // Ends when the receiver goes, even while no signal arrives.
                while let Some(next) = tokio::select! {
                    next = stream.next() => next,
                    () = tx.closed() => None,
                } {
                    let event = match next {
                        Ok(args) => WatchEvent::Signal { name: name.clone(), args },
                        Err(SubscriptionError::Lagged { missed }) => WatchEvent::Problem(format!(
                            "missed {}",
                            counted(missed, &format!("`{name}` signal"))
                        )),
                        Err(error) => WatchEvent::Problem(format!("`{name}`: {error}")),
                    };
                    if tx.send(event).await.is_err() {
                        break;
                    }
                }
            });
        } else if iface.properties.iter().any(|p| p.name == name) {
            let mut watch =
                session.client.watch_property::<Value, Value>(name.clone(), identity).await?;
            let tx = tx.clone();
            tokio::spawn(async move {
                // Ends when the receiver goes, even while the property does not change.
                while let Some(next) = tokio::select! {
                    next = watch.next() => next,
                    () = tx.closed() => None,
                } {
                    let event = match next {
                        Ok(value) => WatchEvent::Property {
                            name: name.clone(),
                            version: watch.version(),
                            value,
                        },
                        Err(error) => WatchEvent::Problem(format!("`{name}`: {error}")),
                    };
                    if tx.send(event).await.is_err() {
                        break;
                    }
                }
            });
        } else {
            let known = iface
                .signals
                .iter()
                .map(|s| s.name.as_str())
                .chain(iface.properties.iter().map(|p| p.name.as_str()))
                .collect();
            return Err(not_found(iface, &["signal", "property"], &name, known));
        }
    }
    Ok((names, rx))
}

/// Resolves when the process is asked to stop (SIGINT, i.e. Ctrl-C, or SIGTERM).
///
/// The handlers are installed when this is called, not when the future is first polled, so a
/// signal that arrives in between is not lost (and does not kill the process).
pub(crate) fn stop_requested() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
}

async fn deadline(timeout: Option<Duration>) {
    match timeout {
        Some(timeout) => tokio::time::sleep(timeout).await,
        None => std::future::pending().await,
    }
}

/// `switchboard watch`.
pub(crate) async fn watch(args: &WatchArgs) -> Result<(), Failure> {
    let stop = stop_requested();
    let service = Service::parse(&args.service)?;
    let session = Session::open(&args.conn, &service).await?;
    let out = Output::new(&args.conn);
    let (_, mut events) = start_watch(&session, &args.names).await?;
    let types = session.types();
    let mut seen = 0u64;
    let timeout = deadline(args.conn.timeout);
    tokio::pin!(timeout);
    tokio::pin!(stop);
    loop {
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
        tokio::select! {
            event = events.recv() => match event {
                Some(WatchEvent::Problem(message)) => eprintln!("warning: {message}"),
                Some(event) => {
                    seen += 1;
                    if out.json() {
                        println!("{}", event.to_json());
                    } else {
                        println!("{}", watch_text(&types, &event, out));
                    }
                }
                None => return Err(Failure::Transport("the connection was closed".to_owned())),
            },
            // Watching for as long as `--timeout` said is what was asked: a success.
            () = &mut timeout => break,
            () = &mut stop => break,
        }
    }
    session.client.close();
    Ok(())
}

fn watch_text(types: &Types<'_>, event: &WatchEvent, out: Output) -> String {
    let inline = |fields: &[Field], value: &Value| {
        types.render_fields(fields, value, out.plain()).trim_end().replace('\n', ", ")
    };
    match event {
        WatchEvent::Signal { name, args } => {
            let fields = types
                .iface
                .signals
                .iter()
                .find(|s| &s.name == name)
                .map(|s| s.fields.as_slice())
                .unwrap_or(&[]);
            format!("{} {}", out.bold(&format!("signal {name}")), inline(fields, args))
        }
        WatchEvent::Property { name, version, value } => {
            let fields = types
                .iface
                .properties
                .iter()
                .find(|p| &p.name == name)
                .map(|p| p.fields.as_slice())
                .unwrap_or(&[]);
            let version = version.map(|v| format!(" v{v}")).unwrap_or_default();
            format!("{}{version} {}", out.bold(&format!("property {name}")), inline(fields, value))
        }
        WatchEvent::Problem(message) => message.clone(),
    }
}

/// A goal's end as a JSON line, and the failure to exit with (if any).
pub(crate) fn goal_end(
    result: Result<Value, GoalError<Infallible>>,
    cancelled_by_us: bool,
) -> (Value, Option<Failure>) {
    match result {
        Ok(result) => (json!({ "status": "succeeded", "result": result }), None),
        Err(GoalError::Cancelled) => (
            json!({ "status": "cancelled" }),
            Some(if cancelled_by_us {
                Failure::Interrupted
            } else {
                Failure::Remote(switchboard_core::RemoteError::new(
                    switchboard_core::ErrorCode::ServerError,
                    "Cancelled",
                    "the goal was cancelled",
                ))
            }),
        ),
        Err(GoalError::Call(error)) => {
            let failure = Failure::from(error);
            (json!({ "status": "failed", "error": failure.to_json() }), Some(failure))
        }
        Err(GoalError::Declared(never)) => match never {},
        #[allow(unreachable_patterns)]
        Err(_) => (
            json!({ "status": "failed" }),
            Some(Failure::Transport("unknown goal error".to_owned())),
        ),
    }
}

/// Sends a goal; the handle yields feedback and the result as JSON values.
pub(crate) async fn send_goal(
    session: &Session,
    action: &str,
    goal: &Value,
) -> Result<GoalHandle<Value, Value, Infallible>, Failure> {
    session
        .client
        .send_goal::<Value, Value, Value, Value, Infallible>(action.to_owned(), goal, identity)
        .await
        .map_err(|error| match error {
            switchboard_core::MethodError::Call(error) => Failure::from(error),
            switchboard_core::MethodError::Declared(never) => match never {},
            #[allow(unreachable_patterns)]
            _ => Failure::Transport("unknown goal error".to_owned()),
        })
}

/// `switchboard action`.
pub(crate) async fn run_action(args: &InvokeArgs) -> Result<(), Failure> {
    let stop = stop_requested();
    let service = Service::parse(&args.service)?;
    let session = Session::open(&args.conn, &service).await?;
    let out = Output::new(&args.conn);
    let types = session.types();
    let action = action(&session.iface, &args.member)?;
    let goal = build(&types, &action.goal, args)?;
    let mut handle = send_goal(&session, &action.name, &goal).await?;
    let line = |value: Value, text: String| {
        if out.json() {
            println!("{value}");
        } else {
            println!("{text}");
        }
    };
    line(
        json!({ "goal": handle.id().as_str(), "status": "accepted" }),
        format!("goal {} accepted", handle.id()),
    );
    let timeout = deadline(args.conn.timeout);
    tokio::pin!(timeout);
    tokio::pin!(stop);
    let mut cancelled_by_us = false;
    let mut timed_out = false;
    loop {
        tokio::select! {
            feedback = handle.next_feedback() => match feedback {
                Some(feedback) => {
                    let text = format!("feedback {}", types.render_fields(&action.feedback, &feedback, out.plain()).trim_end().replace('\n', ", "));
                    line(json!({ "feedback": feedback }), text);
                }
                None => break,
            },
            () = &mut stop, if !cancelled_by_us => {
                cancelled_by_us = true;
                let _ = handle.cancel().await;
                break;
            }
            () = &mut timeout, if !cancelled_by_us => {
                cancelled_by_us = true;
                timed_out = true;
                let _ = handle.cancel().await;
                break;
            }
        }
    }
    let result = if cancelled_by_us {
        match tokio::time::timeout(CANCEL_GRACE, handle.result()).await {
            Ok(result) => result,
            Err(_) => Err(GoalError::Cancelled),
        }
    } else {
        handle.result().await
    };
    let (end, failure) = goal_end(result, cancelled_by_us);
    let text = match end["status"].as_str() {
        Some("succeeded") => format!(
            "succeeded {}",
            types
                .render_fields(&action.result, &end["result"], out.plain())
                .trim_end()
                .replace('\n', ", ")
        ),
        Some(status) => status.to_owned(),
        None => end.to_string(),
    };
    line(end, text);
    session.client.close();
    match failure {
        Some(_) if timed_out => Err(Failure::Timeout(format!(
            "the goal did not end within {:?} and was cancelled",
            args.conn.timeout.unwrap_or_default()
        ))),
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}
