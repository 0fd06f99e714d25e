//! Draws the terminal UI's model: services on the left; the open interface's members, the
//! selected member's documentation, the live signals and properties, the goal's gauge and the
//! log on the right; the key hints on the last line; the form and the help as overlays.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Margin, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Gauge, List, ListItem, ListState, Paragraph, Wrap},
};

use super::app::{App, Connection, Focus, GoalState, HELP, LogKind};

const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);

/// Draws the whole screen.
pub(crate) fn draw(frame: &mut Frame<'_>, app: &App) {
    let [body, footer] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(frame.area());
    let [left, right] =
        Layout::horizontal([Constraint::Length(34), Constraint::Min(0)]).areas(body);
    draw_services(frame, app, left);
    draw_service(frame, app, right);
    frame.render_widget(
        Paragraph::new(app.footer()).style(Style::new().fg(Color::Black).bg(Color::Cyan)),
        footer,
    );
    if let Some(form) = &app.form {
        draw_form(frame, form, body);
    } else if app.help {
        draw_help(frame, body);
    }
}

fn focused_block(title: String, focused: bool) -> Block<'static> {
    let style = if focused { Style::new().fg(Color::Cyan) } else { Style::new() };
    Block::default().borders(Borders::ALL).border_style(style).title(title)
}

fn draw_services(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let block = focused_block(format!(" Services at {} ", app.url), app.focus == Focus::Services);
    if app.services.is_empty() {
        let text = match (&app.discovery_error, app.discovered) {
            (Some(error), _) => error.clone(),
            (None, false) => "discovering…".to_owned(),
            (None, true) => "no running services found".to_owned(),
        };
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).block(block), area);
        return;
    }
    let open = match &app.connection {
        Connection::Open(c) => Some(&c.service),
        Connection::Opening(s) | Connection::Failed(s, _) => Some(s),
        Connection::None => None,
    };
    let items: Vec<ListItem<'_>> = app
        .services
        .iter()
        .map(|s| {
            let marker = if Some(s) == open { "●" } else { " " };
            ListItem::new(format!("{marker} {} {}", s.name(), s.version))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.service_selected));
    let list = List::new(items).block(block).highlight_style(SELECTED).highlight_symbol("> ");
    frame.render_stateful_widget(list, area, &mut state);
    if let Some(error) = &app.discovery_error {
        // Keep the list, say discovery failed on its last line.
        let line =
            Rect { y: area.bottom().saturating_sub(2), height: 1, ..area.inner(Margin::new(1, 1)) };
        frame.render_widget(Paragraph::new(error.as_str()).style(Color::Red), line);
    }
}

fn draw_service(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let connected = match &app.connection {
        Connection::Open(connected) => connected,
        Connection::None => {
            let text = "Select a service and press Enter to open it.";
            frame.render_widget(
                Paragraph::new(text).block(focused_block(String::new(), false)),
                area,
            );
            return;
        }
        Connection::Opening(service) => {
            let text = format!("connecting to {}…", service.name());
            frame.render_widget(
                Paragraph::new(text).block(focused_block(String::new(), false)),
                area,
            );
            return;
        }
        Connection::Failed(service, message) => {
            let block = focused_block(format!(" {} ", service.name()), false);
            let text = format!("cannot use {}: {message}", service.name());
            let paragraph = Paragraph::new(text).style(Color::Red).wrap(Wrap { trim: true });
            let [top, log] =
                Layout::vertical([Constraint::Length(6), Constraint::Min(0)]).areas(area);
            frame.render_widget(paragraph.block(block), top);
            draw_log(frame, app, log);
            return;
        }
    };
    let live = app.live_lines();
    let goal_height = if app.goal.is_some() { 3 } else { 0 };
    // The members (or the documentation, at its width) set the top's height; the log gets
    // the rest.
    let top_height = u16::try_from(connected.members.len()).unwrap_or(u16::MAX).clamp(10, 16) + 2;
    let [top, live_area, goal_area, log_area] = Layout::vertical([
        Constraint::Length(top_height),
        Constraint::Length(u16::try_from(live.len()).unwrap_or(u16::MAX).saturating_add(2)),
        Constraint::Length(goal_height),
        Constraint::Min(5),
    ])
    .areas(area);
    let [members_area, details_area] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Min(0)]).areas(top);

    let iface = &connected.iface;
    let title = format!(" {} ", connected.service.name());
    let heading = match &iface.title {
        Some(t) => format!(" {} {} — {t} ", iface.name, iface.version),
        None => format!(" {} {} ", iface.name, iface.version),
    };
    let items: Vec<ListItem<'_>> = connected
        .members
        .iter()
        .map(|m| ListItem::new(format!("{:<9}{}", m.kind.word(), m.name)))
        .collect();
    let mut state = ListState::default().with_selected(Some(connected.selected));
    let list = List::new(items)
        .block(focused_block(title, app.focus == Focus::Members))
        .highlight_style(SELECTED)
        .highlight_symbol("> ");
    frame.render_stateful_widget(list, members_area, &mut state);

    let details: Vec<Line<'_>> = app
        .member_details()
        .into_iter()
        .enumerate()
        .map(|(i, line)| if i == 0 { Line::styled(line, Modifier::BOLD) } else { Line::raw(line) })
        .collect();
    frame.render_widget(
        Paragraph::new(details)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(heading)),
        details_area,
    );

    frame.render_widget(
        Paragraph::new(live.into_iter().map(Line::raw).collect::<Vec<_>>())
            .block(Block::default().borders(Borders::ALL).title(" Live ")),
        live_area,
    );

    if let Some(goal) = &app.goal {
        let state = match &goal.state {
            GoalState::Starting => "starting".to_owned(),
            GoalState::Running => "running".to_owned(),
            GoalState::Cancelling => "cancelling".to_owned(),
            GoalState::Ended(end) => end.clone(),
        };
        let feedback = match &goal.feedback {
            Some(text) => format!(" · feedback {}: {text}", goal.feedback_count),
            None => String::new(),
        };
        let label = format!("{} {state}{feedback}", goal.action);
        let colour = match goal.state {
            GoalState::Ended(ref end) if !end.starts_with("succeeded") => Color::Red,
            _ => Color::Green,
        };
        let gauge = Gauge::default()
            .block(Block::default().borders(Borders::ALL).title(" Goal (c cancels) "))
            .gauge_style(Style::new().fg(colour))
            .ratio(goal.progress.unwrap_or(0.0))
            .label(label);
        frame.render_widget(gauge, goal_area);
    }
    draw_log(frame, app, log_area);
}

fn draw_log(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let rows = usize::from(area.height.saturating_sub(2));
    let lines: Vec<Line<'_>> = app
        .log
        .iter()
        .skip(app.log.len().saturating_sub(rows))
        .map(|line| {
            let style = match line.kind {
                LogKind::Info => Style::new(),
                LogKind::Result => Style::new().fg(Color::Green),
                LogKind::Error => Style::new().fg(Color::Red),
            };
            Line::styled(line.text.as_str(), style)
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Log ")),
        area,
    );
}

/// A rectangle `width` × `height` in the middle of `area`, no larger than it.
fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn draw_form(frame: &mut Frame<'_>, form: &super::form::Form, area: Rect) {
    let mut lines = Vec::new();
    for (index, input) in form.inputs.iter().enumerate() {
        let label = form.label(index);
        let selected = index == form.selected;
        let marker = if selected { "> " } else { "  " };
        let cursor = if selected { "▏" } else { "" };
        lines.push(Line::from(vec![
            Span::raw(marker),
            Span::styled(label, Style::new().fg(Color::Cyan)),
        ]));
        let style = if selected { SELECTED } else { Style::new() };
        lines.push(Line::from(vec![
            Span::raw("    "),
            Span::styled(format!("{input}{cursor}"), style),
        ]));
        if let Some(description) = &form.fields[index].description {
            lines.push(Line::styled(format!("    {description}"), Modifier::DIM));
        }
    }
    lines.push(Line::raw(""));
    match &form.error {
        Some(error) => lines.push(Line::styled(format!("error: {error}"), Color::Red)),
        None => lines.push(Line::raw("Enter sends, Esc closes")),
    }
    let height = u16::try_from(lines.len()).unwrap_or(u16::MAX).saturating_add(2);
    let popup = centred(area, 70, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(Style::new().fg(Color::Yellow))
                .title(format!(" {} ", form.purpose.title())),
        ),
        popup,
    );
}

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(keys, what)| {
            if what.is_empty() {
                Line::styled(*keys, Modifier::BOLD)
            } else {
                Line::from(vec![
                    Span::styled(format!("{keys:<12}"), Style::new().fg(Color::Cyan)),
                    Span::raw(*what),
                ])
            }
        })
        .collect();
    let height = u16::try_from(lines.len()).unwrap_or(u16::MAX).saturating_add(2);
    let popup = centred(area, 76, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Help ")),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::{
        Terminal,
        backend::TestBackend,
        crossterm::event::{KeyCode, KeyEvent, KeyModifiers},
    };
    use serde_json::json;

    use super::*;
    use crate::command::{
        remote::WatchEvent,
        tui::app::{Report, tests::connected_app},
    };

    fn screen(app: &App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
        terminal.draw(|frame| draw(frame, app)).unwrap();
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn the_first_screen_says_it_is_discovering_and_shows_the_keys() {
        let app = App::new("unix:".to_owned());
        let text = screen(&app);
        assert!(text.contains("Services at unix:"), "{text}");
        assert!(text.contains("discovering…"), "{text}");
        assert!(text.contains("Enter open"), "{text}");
        assert!(text.contains("? help"), "{text}");
    }

    #[test]
    fn an_open_service_shows_members_documentation_live_values_and_the_log() {
        let mut app = connected_app("boost");
        app.report(Report::Watch(WatchEvent::Signal {
            name: "temperatureChanged".to_owned(),
            args: json!({ "celsius": 20.5, "measuredAt": "2026-12-07T06:00:00Z" }),
        }));
        let text = screen(&app);
        assert!(text.contains("┌ Thermostat/default ─"), "{text}");
        assert!(text.contains(" Thermostat 1.0.0 — Smart thermostat "), "{text}");
        assert!(text.contains("> method   boost"), "{text}");
        assert!(text.contains("action   preheat"), "{text}");
        assert!(text.contains("boost(extraCelsius: float, forHowLong: duration"), "{text}");
        assert!(text.contains("Raises the set-point"), "{text}");
        assert!(text.contains("signal temperatureChanged #1 celsius: 20.5"), "{text}");
        assert!(text.contains("connected to Thermostat/default"), "{text}");
        assert!(text.contains("Enter call/set/run"), "{text}");
    }

    #[test]
    fn the_form_shows_fields_types_and_the_error() {
        let mut app = connected_app("boost");
        app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        app.key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE));
        app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        let text = screen(&app);
        assert!(text.contains(" call boost "), "{text}");
        assert!(text.contains("extraCelsius: float"), "{text}");
        assert!(text.contains("reason: string? (optional)"), "{text}");
        assert!(text.contains("error: extraCelsius: `x` is not a float"), "{text}");
        assert!(text.contains("Esc cancel"), "{text}");
    }

    #[test]
    fn the_goal_gauge_shows_progress_and_the_help_overlay_lists_the_keys() {
        let mut app = connected_app("preheat");
        app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        app.key(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::NONE));
        app.key(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::NONE));
        app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        app.report(Report::GoalAccepted { id: "g1".to_owned() });
        app.report(Report::GoalFeedback(json!({ "celsius": 19.5, "percent": 40 })));
        let text = screen(&app);
        assert!(text.contains("Goal (c cancels)"), "{text}");
        assert!(
            text.contains("preheat running · feedback 1: celsius: 19.5, percent: 40"),
            "{text}"
        );
        app.key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
        let text = screen(&app);
        assert!(text.contains(" Help "), "{text}");
        assert!(text.contains("cancel the running goal"), "{text}");
    }

    #[test]
    fn a_tiny_terminal_draws_without_panicking() {
        let app = connected_app("boost");
        let mut terminal = Terminal::new(TestBackend::new(10, 4)).unwrap();
        terminal.draw(|frame| draw(frame, &app)).unwrap();
    }
}
