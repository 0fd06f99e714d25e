//! The terminal UI's state and key handling: a plain model that keys and service reports update,
//! and that asks for work by returning [`Effect`]s instead of doing it, so tests drive it
//! without a terminal or a server.

use std::collections::{BTreeMap, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::Value;
use switchboard_idl::{Field, Interface};

use super::form::{Form, Purpose};
use crate::{
    cli::OutputFormat,
    command::remote::WatchEvent,
    session::Output,
    types::{Types, signature},
};

/// The most lines the log keeps; older ones are dropped.
const LOG_LINES: usize = 200;

/// A running service as discovery reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceEntry {
    pub(crate) interface: String,
    pub(crate) instance: String,
    pub(crate) version: String,
}

impl ServiceEntry {
    /// From one service as `list --format json` prints it.
    pub(crate) fn from_listed(listed: &Value) -> Option<Self> {
        Some(ServiceEntry {
            interface: listed["interface"].as_str()?.to_owned(),
            instance: listed["instance"].as_str()?.to_owned(),
            version: listed["version"].as_str().unwrap_or("?").to_owned(),
        })
    }

    /// `Interface/instance`.
    pub(crate) fn name(&self) -> String {
        format!("{}/{}", self.interface, self.instance)
    }
}

/// Which list the arrow keys move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Focus {
    Services,
    Members,
}

/// The kinds of member an interface declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberKind {
    Method,
    Property,
    Signal,
    Action,
    Command,
}

impl MemberKind {
    pub(crate) fn word(self) -> &'static str {
        match self {
            MemberKind::Method => "method",
            MemberKind::Property => "property",
            MemberKind::Signal => "signal",
            MemberKind::Action => "action",
            MemberKind::Command => "command",
        }
    }
}

/// One member of the open interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) kind: MemberKind,
    pub(crate) name: String,
}

/// The latest value of a signal or property, and how many have arrived.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub(crate) value: Value,
    pub(crate) count: u64,
    pub(crate) version: Option<u64>,
}

/// The service the UI is connected to.
#[derive(Debug, Clone)]
pub(crate) struct Connected {
    pub(crate) service: ServiceEntry,
    pub(crate) iface: Interface,
    pub(crate) members: Vec<Member>,
    pub(crate) selected: usize,
    /// By member name: the signals and properties seen so far.
    pub(crate) live: BTreeMap<String, Live>,
}

/// Where the connection stands.
#[derive(Debug, Clone)]
pub(crate) enum Connection {
    None,
    Opening(ServiceEntry),
    Open(Box<Connected>),
    Failed(ServiceEntry, String),
}

/// How a goal stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GoalState {
    Starting,
    Running,
    Cancelling,
    /// Ended: `succeeded …`, `cancelled`, `failed: …`.
    Ended(String),
}

/// The goal started last.
#[derive(Debug, Clone)]
pub(crate) struct Goal {
    pub(crate) action: String,
    pub(crate) state: GoalState,
    /// From 0 to 1, when the feedback has a `percent` or `progress` field.
    pub(crate) progress: Option<f64>,
    pub(crate) feedback: Option<String>,
    pub(crate) feedback_count: u64,
}

impl Goal {
    pub(crate) fn running(&self) -> bool {
        !matches!(self.state, GoalState::Ended(_))
    }
}

/// What a log line reports, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogKind {
    Info,
    Result,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine {
    pub(crate) kind: LogKind,
    pub(crate) text: String,
}

/// Work the model asks the runner to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    /// Discover the services again now.
    Refresh,
    /// Connect to this service (dropping the current connection and its goal).
    Open(ServiceEntry),
    Call {
        method: String,
        args: Value,
    },
    SetProperty {
        name: String,
        value: Value,
    },
    StartGoal {
        action: String,
        goal: Value,
    },
    CancelGoal,
    SendCommand {
        name: String,
        args: Value,
    },
}

/// What the runner reports back.
#[derive(Debug)]
pub(crate) enum Report {
    /// Discovery's answer (or why it failed).
    Services(Result<Vec<ServiceEntry>, String>),
    /// The connection to this service is open, with its interface (or why not).
    Opened(ServiceEntry, Result<Box<Interface>, String>),
    /// A signal or property change of the open service, or a problem watching it.
    Watch(WatchEvent),
    /// The connection ended.
    Closed(String),
    CallDone {
        method: String,
        result: Result<Value, String>,
    },
    SetDone {
        name: String,
        result: Result<Value, String>,
    },
    CommandSent {
        name: String,
        result: Result<(), String>,
    },
    GoalAccepted {
        id: String,
    },
    GoalFeedback(Value),
    /// `Ok(result)`, or what ended the goal otherwise (`cancelled`, `failed: …`).
    GoalEnded(Result<Value, String>),
}

/// The whole UI state.
#[derive(Debug)]
pub(crate) struct App {
    /// Where the services live, for titles.
    pub(crate) url: String,
    pub(crate) services: Vec<ServiceEntry>,
    pub(crate) service_selected: usize,
    /// Discovery has answered at least once.
    pub(crate) discovered: bool,
    pub(crate) discovery_error: Option<String>,
    pub(crate) focus: Focus,
    pub(crate) connection: Connection,
    pub(crate) goal: Option<Goal>,
    pub(crate) form: Option<Form>,
    pub(crate) help: bool,
    pub(crate) log: VecDeque<LogLine>,
    pub(crate) quit: bool,
}

/// Text with no colour, for one line.
const PLAIN: Output = Output { format: OutputFormat::Text, colour: false };

/// `a: 1, b: x` for an object of `fields`.
pub(crate) fn inline(iface: &Interface, fields: &[Field], value: &Value) -> String {
    Types { iface }.render_fields(fields, value, PLAIN).trim_end().replace('\n', ", ")
}

/// How far along a goal is, from its feedback: a `percent` (0 to 100) or `progress` field (0 to
/// 1, or 0 to 100 when above 1).
pub(crate) fn progress_of(feedback: &Value) -> Option<f64> {
    let map = feedback.as_object()?;
    let (name, value) = map.iter().find(|(name, value)| {
        let name = name.to_ascii_lowercase();
        (name.contains("percent") || name.contains("progress")) && value.is_number()
    })?;
    let value = value.as_f64()?;
    let ratio = if name.to_ascii_lowercase().contains("percent") || value > 1.0 {
        value / 100.0
    } else {
        value
    };
    Some(ratio.clamp(0.0, 1.0))
}

impl App {
    pub(crate) fn new(url: String) -> Self {
        App {
            url,
            services: Vec::new(),
            service_selected: 0,
            discovered: false,
            discovery_error: None,
            focus: Focus::Services,
            connection: Connection::None,
            goal: None,
            form: None,
            help: false,
            log: VecDeque::new(),
            quit: false,
        }
    }

    pub(crate) fn connected(&self) -> Option<&Connected> {
        match &self.connection {
            Connection::Open(connected) => Some(&**connected),
            _ => None,
        }
    }

    fn connected_mut(&mut self) -> Option<&mut Connected> {
        match &mut self.connection {
            Connection::Open(connected) => Some(&mut **connected),
            _ => None,
        }
    }

    fn log(&mut self, kind: LogKind, text: impl Into<String>) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(LogLine { kind, text: text.into() });
    }

    /// The member under the cursor, when connected.
    #[cfg(test)]
    pub(crate) fn selected_member(&self) -> Option<&Member> {
        let connected = self.connected()?;
        connected.members.get(connected.selected)
    }

    /// Handles one key press.
    pub(crate) fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        if self.form.is_some() {
            return self.form_key(key);
        }
        if self.help {
            if matches!(key.code, KeyCode::Esc | KeyCode::Char('?' | 'q')) {
                self.help = false;
            }
            return Vec::new();
        }
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char('r') => return vec![Effect::Refresh],
            KeyCode::Char('c') => return self.cancel_goal(),
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Left | KeyCode::Right => {
                self.focus = match self.focus {
                    Focus::Services if self.connected().is_some() => Focus::Members,
                    _ => Focus::Services,
                };
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Enter => return self.enter(),
            _ => {}
        }
        Vec::new()
    }

    fn move_selection(&mut self, by: isize) {
        let step = |at: usize, len: usize| {
            if len == 0 { 0 } else { at.saturating_add_signed(by).min(len - 1) }
        };
        match self.focus {
            Focus::Services => {
                self.service_selected = step(self.service_selected, self.services.len());
            }
            Focus::Members => {
                if let Some(connected) = self.connected_mut() {
                    connected.selected = step(connected.selected, connected.members.len());
                }
            }
        }
    }

    fn enter(&mut self) -> Vec<Effect> {
        match self.focus {
            Focus::Services => match self.services.get(self.service_selected) {
                Some(service) => {
                    let service = service.clone();
                    self.goal = None;
                    self.connection = Connection::Opening(service.clone());
                    vec![Effect::Open(service)]
                }
                None => Vec::new(),
            },
            Focus::Members => self.use_member(),
        }
    }

    /// Enter on a member: a form for its fields, or the call itself when it takes none.
    fn use_member(&mut self) -> Vec<Effect> {
        let Some(connected) = self.connected() else { return Vec::new() };
        let Some(member) = connected.members.get(connected.selected) else { return Vec::new() };
        let iface = &connected.iface;
        let name = member.name.clone();
        let form = match member.kind {
            MemberKind::Method => {
                let Some(method) = iface.methods.iter().find(|m| m.name == name) else {
                    return Vec::new();
                };
                Form::new(Purpose::Call(name.clone()), &method.arguments)
            }
            MemberKind::Property => {
                let Some(property) = iface.properties.iter().find(|p| p.name == name) else {
                    return Vec::new();
                };
                if property.read_only {
                    self.log(LogKind::Error, format!("property {name} is read-only"));
                    return Vec::new();
                }
                let current = connected.live.get(&name).map(|live| &live.value);
                Form::prefilled(Purpose::SetProperty(name), &property.fields, iface, current)
            }
            MemberKind::Action => {
                if self.goal.as_ref().is_some_and(Goal::running) {
                    self.log(LogKind::Error, "a goal is running; press c to cancel it first");
                    return Vec::new();
                }
                let Some(action) = iface.actions.iter().find(|a| a.name == name) else {
                    return Vec::new();
                };
                Form::new(Purpose::StartGoal(name.clone()), &action.goal)
            }
            MemberKind::Command => {
                let Some(command) = iface.commands.iter().find(|c| c.name == name) else {
                    return Vec::new();
                };
                Form::new(Purpose::SendCommand(name.clone()), &command.arguments)
            }
            MemberKind::Signal => {
                self.log(LogKind::Info, format!("signal {name} is watched live (see Live)"));
                return Vec::new();
            }
        };
        if form.fields.is_empty() {
            // Nothing to fill in: go straight ahead.
            self.form = Some(form);
            return self.submit_form();
        }
        self.form = Some(form);
        Vec::new()
    }

    fn form_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(form) = self.form.as_mut() else { return Vec::new() };
        match key.code {
            KeyCode::Esc => self.form = None,
            KeyCode::Enter => return self.submit_form(),
            KeyCode::Tab | KeyCode::Down => form.next_field(),
            KeyCode::BackTab | KeyCode::Up => form.previous_field(),
            KeyCode::Backspace => form.backspace(),
            KeyCode::Char(c) => form.type_char(c),
            _ => {}
        }
        Vec::new()
    }

    /// Checks the form; on success closes it and asks for the call.
    fn submit_form(&mut self) -> Vec<Effect> {
        let Some(iface) = self.connected().map(|c| c.iface.clone()) else {
            self.form = None;
            return Vec::new();
        };
        let Some(form) = self.form.as_mut() else { return Vec::new() };
        let Ok(value) = form.submit(&iface) else { return Vec::new() };
        let purpose = form.purpose.clone();
        self.form = None;
        let shown = match &value {
            Value::Object(map) if map.is_empty() => String::new(),
            _ => format!(" {value}"),
        };
        self.log(LogKind::Info, format!("{}{shown}", purpose.title()));
        vec![match purpose {
            Purpose::Call(method) => Effect::Call { method, args: value },
            Purpose::SetProperty(name) => Effect::SetProperty { name, value },
            Purpose::SendCommand(name) => Effect::SendCommand { name, args: value },
            Purpose::StartGoal(action) => {
                self.goal = Some(Goal {
                    action: action.clone(),
                    state: GoalState::Starting,
                    progress: None,
                    feedback: None,
                    feedback_count: 0,
                });
                Effect::StartGoal { action, goal: value }
            }
        }]
    }

    fn cancel_goal(&mut self) -> Vec<Effect> {
        match self.goal.as_mut() {
            Some(goal) if goal.running() && goal.state != GoalState::Cancelling => {
                goal.state = GoalState::Cancelling;
                let action = goal.action.clone();
                self.log(LogKind::Info, format!("cancelling {action}"));
                vec![Effect::CancelGoal]
            }
            _ => {
                self.log(LogKind::Error, "no goal is running");
                Vec::new()
            }
        }
    }

    /// Applies one report from the runner.
    pub(crate) fn report(&mut self, report: Report) {
        match report {
            Report::Services(Ok(mut services)) => {
                services.sort_by_key(ServiceEntry::name);
                // Keep the cursor on the same service when the list changes.
                let current = self.services.get(self.service_selected).cloned();
                self.services = services;
                self.service_selected = current
                    .and_then(|c| self.services.iter().position(|s| *s == c))
                    .unwrap_or(0)
                    .min(self.services.len().saturating_sub(1));
                self.discovered = true;
                self.discovery_error = None;
            }
            Report::Services(Err(message)) => {
                self.discovered = true;
                self.discovery_error = Some(message);
            }
            Report::Opened(service, result) => {
                // A report for a service the user has since left behind is stale.
                let expected = matches!(&self.connection, Connection::Opening(s) if *s == service);
                if !expected {
                    return;
                }
                match result {
                    Ok(iface) => {
                        self.log(LogKind::Info, format!("connected to {}", service.name()));
                        self.connection = Connection::Open(Box::new(Connected {
                            members: members(&iface),
                            service,
                            iface: *iface,
                            selected: 0,
                            live: BTreeMap::new(),
                        }));
                        self.focus = Focus::Members;
                    }
                    Err(message) => {
                        self.log(LogKind::Error, format!("{}: {message}", service.name()));
                        self.connection = Connection::Failed(service, message);
                    }
                }
            }
            Report::Watch(WatchEvent::Problem(message)) => self.log(LogKind::Error, message),
            Report::Watch(WatchEvent::Signal { name, args }) => self.live(name, args, None),
            Report::Watch(WatchEvent::Property { name, value, version }) => {
                self.live(name, value, version);
            }
            Report::Closed(message) => {
                if let Connection::Open(connected) = &self.connection {
                    let service = connected.service.clone();
                    self.log(LogKind::Error, format!("{}: {message}", service.name()));
                    self.connection = Connection::Failed(service, message);
                    self.focus = Focus::Services;
                }
            }
            Report::CallDone { method, result } => {
                let fields = self.fields_of(MemberKind::Method, &method);
                match result {
                    Ok(reply) => {
                        let text = self.render(&fields, &reply);
                        self.log(LogKind::Result, format!("{method} → {text}"));
                    }
                    Err(message) => self.log(LogKind::Error, format!("{method} failed: {message}")),
                }
            }
            Report::SetDone { name, result } => match result {
                Ok(value) => {
                    let fields = self.fields_of(MemberKind::Property, &name);
                    let text = self.render(&fields, &value);
                    self.log(LogKind::Result, format!("{name} set to {text}"));
                }
                Err(message) => self.log(LogKind::Error, format!("set {name} failed: {message}")),
            },
            Report::CommandSent { name, result } => match result {
                Ok(()) => self.log(LogKind::Result, format!("sent {name}")),
                Err(message) => self.log(LogKind::Error, format!("{name} failed: {message}")),
            },
            Report::GoalAccepted { id } => {
                if let Some(goal) = self.goal.as_mut() {
                    if goal.state == GoalState::Starting {
                        goal.state = GoalState::Running;
                    }
                    let action = goal.action.clone();
                    self.log(LogKind::Info, format!("{action}: goal {id} accepted"));
                }
            }
            Report::GoalFeedback(feedback) => {
                let Some(action) = self.goal.as_ref().map(|g| g.action.clone()) else { return };
                let fields = self.action_fields(&action, |a| &a.feedback);
                let text = self.render(&fields, &feedback);
                if let Some(goal) = self.goal.as_mut() {
                    goal.feedback_count += 1;
                    goal.feedback = Some(text);
                    if let Some(progress) = progress_of(&feedback) {
                        goal.progress = Some(progress);
                    }
                }
            }
            Report::GoalEnded(result) => {
                let Some(action) = self.goal.as_ref().map(|g| g.action.clone()) else { return };
                let end = match result {
                    Ok(result) => {
                        let fields = self.action_fields(&action, |a| &a.result);
                        format!("succeeded: {}", self.render(&fields, &result))
                    }
                    Err(message) => message,
                };
                let kind =
                    if end.starts_with("succeeded") { LogKind::Result } else { LogKind::Error };
                self.log(kind, format!("{action} {end}"));
                if let Some(goal) = self.goal.as_mut() {
                    if end.starts_with("succeeded") {
                        goal.progress = Some(1.0);
                    }
                    goal.state = GoalState::Ended(end);
                }
            }
        }
    }

    fn live(&mut self, name: String, value: Value, version: Option<u64>) {
        if let Some(connected) = self.connected_mut() {
            let entry = connected.live.entry(name).or_insert(Live {
                value: Value::Null,
                count: 0,
                version,
            });
            entry.value = value;
            entry.count += 1;
            entry.version = version;
        }
    }

    fn fields_of(&self, kind: MemberKind, name: &str) -> Vec<Field> {
        let Some(connected) = self.connected() else { return Vec::new() };
        let iface = &connected.iface;
        let fields = match kind {
            MemberKind::Method => iface.methods.iter().find(|m| m.name == name).map(|m| &m.returns),
            MemberKind::Property => {
                iface.properties.iter().find(|p| p.name == name).map(|p| &p.fields)
            }
            MemberKind::Signal => iface.signals.iter().find(|s| s.name == name).map(|s| &s.fields),
            MemberKind::Action | MemberKind::Command => None,
        };
        fields.cloned().unwrap_or_default()
    }

    fn action_fields(
        &self,
        action: &str,
        pick: impl Fn(&switchboard_idl::Action) -> &Vec<Field>,
    ) -> Vec<Field> {
        self.connected()
            .and_then(|c| c.iface.actions.iter().find(|a| a.name == action))
            .map(|a| pick(a).clone())
            .unwrap_or_default()
    }

    fn render(&self, fields: &[Field], value: &Value) -> String {
        match self.connected() {
            Some(connected) => inline(&connected.iface, fields, value),
            None => value.to_string(),
        }
    }

    /// The documentation of the selected member, with its signature, for the details pane.
    pub(crate) fn member_details(&self) -> Vec<String> {
        let Some(connected) = self.connected() else { return Vec::new() };
        let iface = &connected.iface;
        let Some(member) = connected.members.get(connected.selected) else {
            return vec![iface.documentation.clone().unwrap_or_default()];
        };
        let mut lines = Vec::new();
        let (documentation, signature_lines) = match member.kind {
            MemberKind::Method => {
                let m = iface.methods.iter().find(|m| m.name == member.name);
                (
                    m.and_then(|m| m.documentation.clone()),
                    m.map(|m| {
                        let mut lines = vec![format!(
                            "{}({}) -> ({})",
                            m.name,
                            signature(&m.arguments),
                            signature(&m.returns)
                        )];
                        if !m.errors.is_empty() {
                            lines.push(format!("errors: {}", m.errors.join(", ")));
                        }
                        lines
                    }),
                )
            }
            MemberKind::Property => {
                let p = iface.properties.iter().find(|p| p.name == member.name);
                (
                    p.and_then(|p| p.documentation.clone()),
                    p.map(|p| {
                        let access = if p.read_only { "read-only" } else { "writable" };
                        vec![format!("{} {{{}}} ({access})", p.name, signature(&p.fields))]
                    }),
                )
            }
            MemberKind::Signal => {
                let s = iface.signals.iter().find(|s| s.name == member.name);
                (
                    s.and_then(|s| s.documentation.clone()),
                    s.map(|s| vec![format!("{}({})", s.name, signature(&s.fields))]),
                )
            }
            MemberKind::Action => {
                let a = iface.actions.iter().find(|a| a.name == member.name);
                (
                    a.and_then(|a| a.documentation.clone()),
                    a.map(|a| {
                        vec![
                            format!("{}({})", a.name, signature(&a.goal)),
                            format!("feedback ({})", signature(&a.feedback)),
                            format!("result ({})", signature(&a.result)),
                        ]
                    }),
                )
            }
            MemberKind::Command => {
                let c = iface.commands.iter().find(|c| c.name == member.name);
                (
                    c.and_then(|c| c.documentation.clone()),
                    c.map(|c| vec![format!("{}({})", c.name, signature(&c.arguments))]),
                )
            }
        };
        lines.push(format!("{} {}", member.kind.word(), member.name));
        lines.extend(signature_lines.unwrap_or_default());
        lines.push(String::new());
        lines.extend(
            documentation
                .unwrap_or_else(|| "(no documentation)".to_owned())
                .lines()
                .map(str::to_owned),
        );
        if let Some(live) = connected.live.get(&member.name) {
            let fields = match member.kind {
                MemberKind::Signal | MemberKind::Property => {
                    self.fields_of(member.kind, &member.name)
                }
                _ => Vec::new(),
            };
            lines.push(String::new());
            lines.push(format!("latest: {}", inline(iface, &fields, &live.value)));
        }
        lines
    }

    /// The signals and properties seen so far, one line each: `signal temperatureChanged #12
    /// celsius: 20.1, …`.
    pub(crate) fn live_lines(&self) -> Vec<String> {
        let Some(connected) = self.connected() else { return Vec::new() };
        let iface = &connected.iface;
        let mut lines = Vec::new();
        for property in &iface.properties {
            let value = match connected.live.get(&property.name) {
                Some(live) => {
                    let version = live.version.map(|v| format!(" v{v}")).unwrap_or_default();
                    format!("{version} {}", inline(iface, &property.fields, &live.value))
                }
                None => " (no value yet)".to_owned(),
            };
            lines.push(format!("property {}{value}", property.name));
        }
        for signal in &iface.signals {
            let value = match connected.live.get(&signal.name) {
                Some(live) => {
                    format!(" #{} {}", live.count, inline(iface, &signal.fields, &live.value))
                }
                None => " (none yet)".to_owned(),
            };
            lines.push(format!("signal {}{value}", signal.name));
        }
        lines
    }

    /// The key hints for the footer, for what has the keyboard now.
    pub(crate) fn footer(&self) -> &'static str {
        if self.form.is_some() {
            "Enter submit · Tab/↑↓ field · Esc cancel · Ctrl-C quit"
        } else if self.help {
            "Esc or ? close help · Ctrl-C quit"
        } else {
            match self.focus {
                Focus::Services => {
                    "↑↓ select · Enter open · Tab members · r refresh · c cancel goal · ? help · q quit"
                }
                Focus::Members => {
                    "↑↓ select · Enter call/set/run · c cancel goal · Tab services · ? help · q quit"
                }
            }
        }
    }
}

/// Every member, in the order `introspect` prints them.
fn members(iface: &Interface) -> Vec<Member> {
    let mut members = Vec::new();
    let mut add =
        |kind: MemberKind, name: &String| members.push(Member { kind, name: name.clone() });
    iface.methods.iter().for_each(|m| add(MemberKind::Method, &m.name));
    iface.properties.iter().for_each(|p| add(MemberKind::Property, &p.name));
    iface.signals.iter().for_each(|s| add(MemberKind::Signal, &s.name));
    iface.actions.iter().for_each(|a| add(MemberKind::Action, &a.name));
    iface.commands.iter().for_each(|c| add(MemberKind::Command, &c.name));
    members
}

/// The help overlay's lines: every key, in every context.
pub(crate) const HELP: &[(&str, &str)] = &[
    ("↑ ↓ / k j", "move in the focused list"),
    ("Tab ← →", "switch between services and members"),
    ("Enter", "open a service; call a method, set a property, run an action"),
    ("c", "cancel the running goal"),
    ("r", "discover the services again now"),
    ("?", "show or hide this help"),
    ("q", "quit"),
    ("Ctrl-C", "quit, from anywhere"),
    ("In a form", ""),
    ("Tab ↑ ↓", "next or previous field"),
    ("Enter", "check the values and send"),
    ("Esc", "close the form without sending"),
];

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    pub(crate) fn thermostat() -> Interface {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/thermostat/thermostat.yaml");
        crate::session::load_interface(std::path::Path::new(path)).expect("the thermostat loads")
    }

    fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
        app.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            press(app, KeyCode::Char(c));
        }
    }

    fn entry(interface: &str) -> ServiceEntry {
        ServiceEntry {
            interface: interface.to_owned(),
            instance: "default".to_owned(),
            version: "1.0.0".to_owned(),
        }
    }

    /// An app connected to the thermostat, with the cursor on `member`.
    pub(crate) fn connected_app(member: &str) -> App {
        let mut app = App::new("unix:".to_owned());
        app.report(Report::Services(Ok(vec![entry("Thermostat"), entry("Jobs")])));
        press(&mut app, KeyCode::Down);
        let effects = press(&mut app, KeyCode::Enter);
        assert_eq!(effects, vec![Effect::Open(entry("Thermostat"))]);
        app.report(Report::Opened(entry("Thermostat"), Ok(Box::new(thermostat()))));
        while app.selected_member().is_some_and(|m| m.name != member) {
            press(&mut app, KeyCode::Down);
        }
        app
    }

    #[test]
    fn services_are_sorted_and_the_cursor_follows_its_service() {
        let mut app = App::new("unix:".to_owned());
        app.report(Report::Services(Ok(vec![entry("Thermostat"), entry("Jobs")])));
        assert_eq!(app.services[0].interface, "Jobs");
        press(&mut app, KeyCode::Down);
        assert_eq!(app.services[app.service_selected].interface, "Thermostat");
        app.report(Report::Services(Ok(vec![entry("Thermostat"), entry("Alarm"), entry("Jobs")])));
        assert_eq!(app.services[app.service_selected].interface, "Thermostat");
        app.report(Report::Services(Ok(vec![])));
        assert_eq!(app.service_selected, 0);
        assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    }

    #[test]
    fn opening_a_service_lists_its_members_and_moves_the_focus() {
        let app = connected_app("boost");
        assert_eq!(app.focus, Focus::Members);
        let connected = app.connected().unwrap();
        let names: Vec<_> =
            connected.members.iter().map(|m| format!("{} {}", m.kind.word(), m.name)).collect();
        assert_eq!(
            names,
            [
                "method boost",
                "method getStatus",
                "property setpoint",
                "property mode",
                "signal temperatureChanged",
                "action preheat"
            ]
        );
        assert!(app.member_details().iter().any(|l| l.contains("Raises the set-point")));
    }

    #[test]
    fn a_stale_open_report_is_ignored() {
        let mut app = connected_app("boost");
        app.report(Report::Opened(entry("Jobs"), Err("gone".to_owned())));
        assert!(app.connected().is_some());
    }

    #[test]
    fn a_method_form_submits_a_call_and_the_reply_is_logged() {
        let mut app = connected_app("boost");
        assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
        assert!(app.form.is_some());
        // `q` and `?` are text inside a form.
        type_text(&mut app, "q");
        assert!(!app.quit);
        press(&mut app, KeyCode::Backspace);
        type_text(&mut app, "2");
        press(&mut app, KeyCode::Tab);
        type_text(&mut app, "PT5M");
        let effects = press(&mut app, KeyCode::Enter);
        let [Effect::Call { method, args }] = effects.as_slice() else { panic!("{effects:?}") };
        assert_eq!(method, "boost");
        assert_eq!(args["extraCelsius"], json!(2.0));
        assert!(app.form.is_none());
        app.report(Report::CallDone {
            method: "boost".to_owned(),
            result: Ok(json!({ "endsAt": "2026-12-07T06:00:00Z" })),
        });
        assert_eq!(app.log.back().unwrap().text, "boost → endsAt: 2026-12-07T06:00:00Z");
    }

    #[test]
    fn a_bad_value_keeps_the_form_open_with_the_reason() {
        let mut app = connected_app("boost");
        press(&mut app, KeyCode::Enter);
        type_text(&mut app, "hot");
        assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
        let form = app.form.as_ref().expect("still open");
        assert!(form.error.as_deref().unwrap().contains("`hot` is not a float"), "{form:?}");
        press(&mut app, KeyCode::Esc);
        assert!(app.form.is_none());
    }

    #[test]
    fn a_method_without_arguments_is_called_at_once() {
        let mut app = connected_app("getStatus");
        let effects = press(&mut app, KeyCode::Enter);
        assert_eq!(effects, vec![Effect::Call { method: "getStatus".to_owned(), args: json!({}) }]);
        app.report(Report::CallDone {
            method: "getStatus".to_owned(),
            result: Err("Timeout: no answer".to_owned()),
        });
        assert_eq!(app.log.back().unwrap().kind, LogKind::Error);
    }

    #[test]
    fn signals_and_properties_update_the_live_pane() {
        let mut app = connected_app("setpoint");
        app.report(Report::Watch(WatchEvent::Property {
            name: "setpoint".to_owned(),
            version: Some(3),
            value: json!({ "celsius": 21.5 }),
        }));
        app.report(Report::Watch(WatchEvent::Property {
            name: "mode".to_owned(),
            version: Some(1),
            value: json!({ "mode": 10 }),
        }));
        for celsius in [20.0, 20.5] {
            app.report(Report::Watch(WatchEvent::Signal {
                name: "temperatureChanged".to_owned(),
                args: json!({ "celsius": celsius, "measuredAt": "2026-12-07T06:00:00Z" }),
            }));
        }
        assert_eq!(
            app.live_lines(),
            [
                "property setpoint v3 celsius: 21.5",
                "property mode v1 mode: eco",
                "signal temperatureChanged #2 celsius: 20.5, measuredAt: 2026-12-07T06:00:00Z",
            ]
        );
        // Editing a writable property starts from its value.
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.form.as_ref().unwrap().inputs, ["21.5"]);
        for _ in 0..4 {
            press(&mut app, KeyCode::Backspace);
        }
        type_text(&mut app, "19");
        let effects = press(&mut app, KeyCode::Enter);
        assert_eq!(
            effects,
            vec![Effect::SetProperty {
                name: "setpoint".to_owned(),
                value: json!({ "celsius": 19.0 })
            }]
        );
    }

    #[test]
    fn a_read_only_property_opens_no_form() {
        let mut app = connected_app("mode");
        assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
        assert!(app.form.is_none());
        assert_eq!(app.log.back().unwrap().text, "property mode is read-only");
    }

    #[test]
    fn a_goal_shows_progress_from_feedback_and_can_be_cancelled() {
        let mut app = connected_app("preheat");
        press(&mut app, KeyCode::Enter);
        type_text(&mut app, "22");
        let effects = press(&mut app, KeyCode::Enter);
        assert_eq!(
            effects,
            vec![Effect::StartGoal {
                action: "preheat".to_owned(),
                goal: json!({ "targetCelsius": 22.0 })
            }]
        );
        app.report(Report::GoalAccepted { id: "g1".to_owned() });
        app.report(Report::GoalFeedback(json!({ "celsius": 19.5, "percent": 40 })));
        let goal = app.goal.as_ref().unwrap();
        assert_eq!(goal.state, GoalState::Running);
        assert_eq!(goal.progress, Some(0.4));
        assert_eq!(goal.feedback.as_deref(), Some("celsius: 19.5, percent: 40"));
        // A second goal waits for the first.
        assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
        assert_eq!(press(&mut app, KeyCode::Char('c')), vec![Effect::CancelGoal]);
        assert_eq!(app.goal.as_ref().unwrap().state, GoalState::Cancelling);
        // Pressing again does not ask twice.
        assert_eq!(press(&mut app, KeyCode::Char('c')), vec![]);
        app.report(Report::GoalEnded(Err("cancelled".to_owned())));
        assert_eq!(app.goal.as_ref().unwrap().state, GoalState::Ended("cancelled".to_owned()));
        assert_eq!(app.log.back().unwrap().text, "preheat cancelled");
    }

    #[test]
    fn progress_comes_from_percent_or_progress_fields() {
        assert_eq!(progress_of(&json!({ "percent": 50 })), Some(0.5));
        assert_eq!(progress_of(&json!({ "progress": 0.25 })), Some(0.25));
        assert_eq!(progress_of(&json!({ "progress": 75 })), Some(0.75));
        assert_eq!(progress_of(&json!({ "percent": 250 })), Some(1.0));
        assert_eq!(progress_of(&json!({ "value": 3 })), None);
    }

    #[test]
    fn help_opens_and_closes_and_q_quits_and_ctrl_c_quits_from_a_form() {
        let mut app = connected_app("boost");
        press(&mut app, KeyCode::Char('?'));
        assert!(app.help);
        press(&mut app, KeyCode::Char('q'));
        assert!(!app.help && !app.quit);
        press(&mut app, KeyCode::Enter);
        app.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(app.quit);
        let mut app = App::new("unix:".to_owned());
        press(&mut app, KeyCode::Char('q'));
        assert!(app.quit);
    }

    #[test]
    fn a_closed_connection_sends_the_focus_back_to_the_services() {
        let mut app = connected_app("boost");
        app.report(Report::Closed("the connection was closed".to_owned()));
        assert!(matches!(app.connection, Connection::Failed(..)));
        assert_eq!(app.focus, Focus::Services);
    }
}
