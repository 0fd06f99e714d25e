//! Owns diagnostics: what a problem in an interface file looks like, and how it is shown.

use std::fmt::Write as _;

use crate::source::{SourceMap, Span};

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The file is unusable; no [`Interface`](crate::Interface) is produced.
    Error,
    /// The file is usable but something looks wrong or is ignored.
    Warning,
}

impl Severity {
    /// The lower-case word used in rendered output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found in an interface file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Whether this stops the file from being used.
    pub severity: Severity,
    /// A stable, kebab-case identifier such as `unknown-type`.
    pub code: &'static str,
    /// The one-line explanation.
    pub message: String,
    /// Where the problem is.
    pub span: Span,
    /// A short note printed next to the caret.
    pub label: Option<String>,
    /// A suggestion for fixing the problem.
    pub help: Option<String>,
}

impl Diagnostic {
    /// Makes an error.
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: None,
            help: None,
        }
    }

    /// Makes a warning.
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, span, message) }
    }

    /// Sets the caret label.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the help text.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help text when there is one.
    #[must_use]
    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    /// Renders the diagnostic rustc-style, quoting the source line with a caret under the span.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}[{}]: {}", self.severity.as_str(), self.code, self.message);
        let file = sources.get(self.span.file);
        let name = file.map_or("<unknown>", |f| f.name.as_str());
        let line_no = self.span.line.max(1);
        let gutter = line_no.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad}--> {name}:{line_no}:{}", self.span.column.max(1));
        if let Some(text) = file.map(|f| f.text.as_str()) {
            let line_start = line_start(text, self.span.start);
            let line_text = text.get(line_start..).unwrap_or("");
            let line_text = line_text.split('\n').next().unwrap_or("").trim_end_matches('\r');
            let prefix = text.get(line_start..self.span.start.min(text.len())).unwrap_or("");
            let span_text = text.get(self.span.start..self.span.end.min(text.len())).unwrap_or("");
            let first = span_text.split('\n').next().unwrap_or("").trim_end_matches('\r');
            let quote = Quote::of(line_text, prefix.chars().count(), first.chars().count().max(1));
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{line_no} | {}", quote.line);
            let _ = write!(out, "{pad} | {}{}", quote.indent, "^".repeat(quote.carets));
            if let Some(label) = &self.label {
                let _ = write!(out, " {label}");
            }
            out.push('\n');
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "{pad} = help: {help}");
        }
        out
    }

    /// Returns the diagnostic as a JSON object with file, line, column and end position.
    pub fn to_json(&self, sources: &SourceMap) -> serde_json::Value {
        let file = sources.get(self.span.file);
        let mut obj = serde_json::Map::new();
        obj.insert("severity".into(), self.severity.as_str().into());
        obj.insert("code".into(), self.code.into());
        obj.insert("message".into(), self.message.clone().into());
        obj.insert("file".into(), file.map_or("<unknown>", |f| f.name.as_str()).into());
        obj.insert("line".into(), self.span.line.into());
        obj.insert("column".into(), self.span.column.into());
        if let Some(text) = file.map(|f| f.text.as_str())
            && self.span.end > self.span.start
        {
            let (line, column) = line_column(text, self.span.end);
            obj.insert("end_line".into(), line.into());
            obj.insert("end_column".into(), column.into());
        }
        obj.insert("label".into(), self.label.clone().into());
        obj.insert("help".into(), self.help.clone().into());
        serde_json::Value::Object(obj)
    }
}

/// The most characters of a source line a diagnostic quotes; a longer line is cut to a window
/// around the span, marked with `…`, so a file of one 4 MiB line does not make every one of
/// its diagnostics 4 MiB long.
const MAX_QUOTED_CHARS: usize = 200;

/// How much of the span's line a diagnostic quotes, with the indent and carets under it.
struct Quote {
    line: String,
    indent: String,
    carets: usize,
}

impl Quote {
    /// The quote of `line`, whose span starts `column` characters in and is `width` long.
    fn of(line: &str, column: usize, width: usize) -> Self {
        let blank = |c: char| if c == '\t' { '\t' } else { ' ' };
        let total = line.chars().count();
        if total <= MAX_QUOTED_CHARS {
            let indent = line.chars().take(column).map(blank).collect();
            return Self { line: line.to_string(), indent, carets: width };
        }
        let start = column.saturating_sub(MAX_QUOTED_CHARS / 3).min(total);
        let end = (start + MAX_QUOTED_CHARS).min(total);
        let shown: String = line.chars().skip(start).take(end - start).collect();
        let lead = if start > 0 { "…" } else { "" };
        let tail = if end < total { "…" } else { "" };
        let mut indent: String = lead.chars().map(|_| ' ').collect();
        indent.extend(line.chars().skip(start).take(column - start).map(blank));
        let carets = width.min(end.saturating_sub(column)).max(1);
        Self { line: format!("{lead}{shown}{tail}"), indent, carets }
    }
}

/// Returns the byte offset where the line holding `offset` starts.
fn line_start(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.get(..offset).and_then(|s| s.rfind('\n')).map_or(0, |i| i + 1)
}

/// Returns the 1-based line and character column of a byte offset.
fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.bytes().filter(|b| *b == b'\n').count() as u64 + 1;
    let start = line_start(text, offset);
    let column = text.get(start..offset).map_or(0, |s| s.chars().count()) as u64 + 1;
    (line, column)
}

/// Suggests the closest candidate to `word`, if any is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (*c, strsim::jaro_winkler(&lower, &c.to_ascii_lowercase())))
        .filter(|(c, score)| {
            *score >= 0.85
                || (lower.len() > 3 && strsim::levenshtein(&lower, &c.to_ascii_lowercase()) <= 2)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}
