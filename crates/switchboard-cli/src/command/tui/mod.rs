//! `switchboard tui`: browse and drive services in a terminal, on the same discovery
//! (`list::discover`), sessions (`Session`, runtime introspection) and member calls as the other
//! verbs. The model (`app`) decides, the view (`view`) draws, and this runner owns the terminal,
//! the keyboard and the connection, and does the work the model asks for.

mod app;
mod form;
mod view;

use std::{
    io::IsTerminal,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use ratatui::{
    DefaultTerminal,
    crossterm::event::{self, Event, KeyEventKind},
};
use serde_json::Value;
use tokio::{
    sync::{Notify, mpsc, oneshot},
    task::JoinHandle,
};

use self::app::{App, Connection, Effect, Report, ServiceEntry};
use super::{
    list,
    remote::{
        WatchEvent, decode, encode, goal_end, property, send_goal, start_watch, stop_requested,
    },
};
use crate::{
    cli::{ConnectArgs, TuiArgs},
    credentials::masked,
    exit::Failure,
    session::{Service, Session, endpoint, url},
};

/// How often the services are discovered again (`r` asks at once).
const REDISCOVER: Duration = Duration::from_secs(2);
/// How long the keyboard reader waits for a key before it checks whether to stop.
const KEY_POLL: Duration = Duration::from_millis(100);
/// How long a goal may take to end after a cancel.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// How long quitting waits for a running goal's cancel to reach the server.
const QUIT_GRACE: Duration = Duration::from_secs(1);

/// `switchboard tui`.
pub(crate) async fn run(args: &TuiArgs) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(Failure::Usage(
            "`switchboard tui` needs a terminal on standard input and output".to_owned(),
        ));
    }
    let conn = args.services.connect_args();
    // A bad URL is reported before the screen changes.
    endpoint(&conn, None)?;
    let stop = stop_requested();
    // Raw mode and the alternate screen; also installs a panic hook that restores the terminal.
    let terminal = ratatui::try_init()
        .map_err(|e| Failure::Local(format!("cannot set up the terminal: {e}")))?;
    let restore = RestoreTerminal;
    let keyboard = Keyboard::start();
    let result = Runner::new(conn).run(terminal, keyboard, stop).await;
    drop(restore);
    result
}

/// Restores the terminal when dropped: on success, on error and while unwinding alike.
struct RestoreTerminal;

impl Drop for RestoreTerminal {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Reads terminal events on a thread of its own (crossterm's reads block) until dropped.
struct Keyboard {
    events: mpsc::Receiver<Event>,
    stop: Arc<AtomicBool>,
}

impl Keyboard {
    fn start() -> Self {
        let (tx, events) = mpsc::channel(64);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match event::poll(KEY_POLL) {
                    Ok(true) => match event::read() {
                        Ok(event) => {
                            if tx.blocking_send(event).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    },
                    Ok(false) => {}
                    // The terminal is gone: the closed channel tells the runner.
                    Err(_) => break,
                }
            }
        });
        Keyboard { events, stop }
    }
}

impl Drop for Keyboard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What the runner's tasks send back.
enum Message {
    Report(Report),
    Opened {
        service: ServiceEntry,
        result: Result<(Arc<Session>, mpsc::Receiver<WatchEvent>), String>,
    },
}

/// One thing the loop waits for.
enum Input {
    Terminal(Option<Event>),
    Message(Message),
    Watch(Option<WatchEvent>),
    Stop,
}

/// The connection and the tasks doing the model's work.
struct Runner {
    conn: ConnectArgs,
    tx: mpsc::Sender<Message>,
    messages: Option<mpsc::Receiver<Message>>,
    session: Option<Arc<Session>>,
    watch: Option<mpsc::Receiver<WatchEvent>>,
    /// Dropping or sending cancels the running goal.
    goal_cancel: Option<oneshot::Sender<()>>,
    goal_task: Option<JoinHandle<()>>,
    refresh: Arc<Notify>,
}

/// A failure as one line.
fn failure_text(failure: &Failure) -> String {
    match failure {
        Failure::Remote(error) if error.message().is_empty() => error.name().to_string(),
        Failure::Remote(error) => format!("{}: {}", error.name(), error.message()),
        Failure::Usage(message)
        | Failure::NotFound(message)
        | Failure::Timeout(message)
        | Failure::Transport(message)
        | Failure::Local(message) => message.clone(),
        Failure::Interrupted => "interrupted".to_owned(),
    }
}

async fn next_watch(watch: &mut Option<mpsc::Receiver<WatchEvent>>) -> Option<WatchEvent> {
    match watch {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

impl Runner {
    fn new(conn: ConnectArgs) -> Self {
        let (tx, messages) = mpsc::channel(256);
        Runner {
            conn,
            tx,
            messages: Some(messages),
            session: None,
            watch: None,
            goal_cancel: None,
            goal_task: None,
            refresh: Arc::new(Notify::new()),
        }
    }

    async fn run(
        mut self,
        mut terminal: DefaultTerminal,
        mut keyboard: Keyboard,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), Failure> {
        let mut app = App::new(masked(&url(&self.conn)).into_owned());
        let mut messages = self.messages.take().expect("the runner runs once");
        self.start_discovery();
        tokio::pin!(stop);
        loop {
            terminal
                .draw(|frame| view::draw(frame, &app))
                .map_err(|e| Failure::Local(format!("cannot draw on the terminal: {e}")))?;
            let input = tokio::select! {
                event = keyboard.events.recv() => Input::Terminal(event),
                Some(message) = messages.recv() => Input::Message(message),
                event = next_watch(&mut self.watch) => Input::Watch(event),
                () = &mut stop => Input::Stop,
            };
            match input {
                Input::Terminal(Some(Event::Key(key))) if key.kind == KeyEventKind::Press => {
                    for effect in app.key(key) {
                        self.execute(effect);
                    }
                }
                // A resize or a key release: drawing again is all it takes.
                Input::Terminal(Some(_)) => {}
                // The terminal went away.
                Input::Terminal(None) | Input::Stop => break,
                Input::Message(Message::Report(report)) => app.report(report),
                Input::Message(Message::Opened { service, result }) => {
                    self.opened(&mut app, service, result);
                }
                Input::Watch(Some(event)) => app.report(Report::Watch(event)),
                Input::Watch(None) => {
                    self.watch = None;
                    self.drop_session();
                    app.report(Report::Closed("the connection was closed".to_owned()));
                }
            }
            if app.quit {
                break;
            }
        }
        self.finish().await;
        Ok(())
    }

    fn send(tx: &mpsc::Sender<Message>, report: Report) -> impl Future<Output = ()> + use<> {
        let tx = tx.clone();
        async move {
            let _ = tx.send(Message::Report(report)).await;
        }
    }

    fn start_discovery(&self) {
        let conn = self.conn.clone();
        let tx = self.tx.clone();
        let refresh = Arc::clone(&self.refresh);
        tokio::spawn(async move {
            loop {
                let result = list::discover(&conn)
                    .await
                    .map(|listed| listed.iter().filter_map(ServiceEntry::from_listed).collect())
                    .map_err(|failure| failure_text(&failure));
                if tx.send(Message::Report(Report::Services(result))).await.is_err() {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(REDISCOVER) => {}
                    () = refresh.notified() => {}
                }
            }
        });
    }

    /// Keeps a new connection if the model still wants it.
    fn opened(
        &mut self,
        app: &mut App,
        service: ServiceEntry,
        result: Result<(Arc<Session>, mpsc::Receiver<WatchEvent>), String>,
    ) {
        let wanted = matches!(&app.connection, Connection::Opening(s) if *s == service);
        match result {
            Ok((session, watch)) if wanted => {
                let iface = Box::new(session.iface.clone());
                self.drop_session();
                self.session = Some(session);
                self.watch = Some(watch);
                app.report(Report::Opened(service, Ok(iface)));
            }
            Ok((session, _)) => session.client.close(),
            Err(message) => app.report(Report::Opened(service, Err(message))),
        }
    }

    fn drop_session(&mut self) {
        // Dropping the sender cancels the goal.
        self.goal_cancel = None;
        if let Some(session) = self.session.take() {
            session.client.close();
        }
    }

    /// Does what the model asked for.
    fn execute(&mut self, effect: Effect) {
        let tx = self.tx.clone();
        match effect {
            Effect::Refresh => self.refresh.notify_one(),
            Effect::Open(service) => {
                self.watch = None;
                self.drop_session();
                let conn = self.conn.clone();
                tokio::spawn(async move {
                    let result = open(&conn, &service).await.map_err(|f| failure_text(&f));
                    let _ = tx.send(Message::Opened { service, result }).await;
                });
            }
            Effect::Call { method, args } => {
                let Some(session) = self.session.clone() else { return };
                tokio::spawn(async move {
                    let result = async {
                        let reply = session.client.call_raw(method.clone(), encode(&args)).await?;
                        decode(&reply, "reply")
                    }
                    .await
                    .map_err(|f| failure_text(&f));
                    Self::send(&tx, Report::CallDone { method, result }).await;
                });
            }
            Effect::SetProperty { name, value } => {
                let Some(session) = self.session.clone() else { return };
                tokio::spawn(async move {
                    let result = async {
                        let property = property(&session.iface, &name)?;
                        session
                            .client
                            .set_property_raw(property.name.clone(), encode(&value))
                            .await?;
                        Ok::<_, Failure>(value)
                    }
                    .await
                    .map_err(|f| failure_text(&f));
                    Self::send(&tx, Report::SetDone { name, result }).await;
                });
            }
            Effect::SendCommand { name, args } => {
                let Some(session) = self.session.clone() else { return };
                tokio::spawn(async move {
                    let result = session
                        .client
                        .command(name.clone(), &args)
                        .await
                        .map_err(|e| failure_text(&Failure::from(e)));
                    Self::send(&tx, Report::CommandSent { name, result }).await;
                });
            }
            Effect::StartGoal { action, goal } => {
                let Some(session) = self.session.clone() else { return };
                let (cancel, cancelled) = oneshot::channel();
                self.goal_cancel = Some(cancel);
                self.goal_task =
                    Some(tokio::spawn(follow_goal(session, action, goal, cancelled, tx)));
            }
            Effect::CancelGoal => {
                if let Some(cancel) = self.goal_cancel.take() {
                    let _ = cancel.send(());
                }
            }
        }
    }

    /// Cancels a running goal (waiting briefly for the server to hear it) and closes.
    async fn finish(mut self) {
        self.goal_cancel = None;
        if let Some(task) = self.goal_task.take() {
            let _ = tokio::time::timeout(QUIT_GRACE, task).await;
        }
        self.drop_session();
    }
}

/// Connects to `service` and watches all its signals and properties.
async fn open(
    conn: &ConnectArgs,
    service: &ServiceEntry,
) -> Result<(Arc<Session>, mpsc::Receiver<WatchEvent>), Failure> {
    let wanted =
        Service { interface: service.interface.clone(), instance: Some(service.instance.clone()) };
    let session = Session::open(conn, &wanted).await?;
    let (_, events) = match start_watch(&session, &[]).await {
        Ok(watching) => watching,
        Err(failure) => {
            session.client.close();
            return Err(failure);
        }
    };
    Ok((Arc::new(session), events))
}

/// Sends a goal and reports its acceptance, feedback and end; cancels it when `cancelled`
/// resolves (sent, or its sender dropped).
async fn follow_goal(
    session: Arc<Session>,
    action: String,
    goal: Value,
    mut cancelled: oneshot::Receiver<()>,
    tx: mpsc::Sender<Message>,
) {
    let report = |report: Report| Runner::send(&tx, report);
    let mut handle = match send_goal(&session, &action, &goal).await {
        Ok(handle) => handle,
        Err(failure) => {
            report(Report::GoalEnded(Err(format!("failed: {}", failure_text(&failure))))).await;
            return;
        }
    };
    report(Report::GoalAccepted { id: handle.id().to_string() }).await;
    let mut cancelling = false;
    loop {
        tokio::select! {
            feedback = handle.next_feedback() => match feedback {
                Some(feedback) => report(Report::GoalFeedback(feedback)).await,
                None => break,
            },
            _ = &mut cancelled, if !cancelling => {
                cancelling = true;
                let _ = handle.cancel().await;
                break;
            }
        }
    }
    let result = if cancelling {
        tokio::time::timeout(CANCEL_GRACE, handle.result())
            .await
            .unwrap_or(Err(switchboard_core::GoalError::Cancelled))
    } else {
        handle.result().await
    };
    let (end, failure) = goal_end(result, cancelling);
    let end = match (end["status"].as_str(), failure) {
        (Some("succeeded"), _) => Ok(end["result"].clone()),
        (Some("cancelled"), _) => Err("cancelled".to_owned()),
        (_, Some(failure)) => Err(format!("failed: {}", failure_text(&failure))),
        (_, None) => Err(format!("ended: {end}")),
    };
    report(Report::GoalEnded(end)).await;
}
