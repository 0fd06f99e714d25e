//! Owns YAML loading: turns text into a small span-carrying tree that does not depend on the YAML crate.

use saphyr::{LoadableYamlNode, MarkedYaml, Marker, Scalar, YamlData};

use crate::source::{FileId, Span};

/// The deepest nesting of mappings and sequences an interface file may use.
pub(crate) const MAX_DEPTH: usize = 64;

/// The largest file, in bytes, that is parsed at all.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

/// A YAML node with the region of the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// What the node holds.
    pub(crate) value: Value,
    /// Where the node is.
    pub(crate) span: Span,
    /// The source text of a non-string scalar (such as `1.0` or `true`), for places that want text.
    pub(crate) raw: Option<String>,
}

/// The content of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer literal.
    Int(i64),
    /// A floating-point literal.
    Float(f64),
    /// Any other scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order; duplicate keys are rejected by the loader.
    Map(Vec<(Node, Node)>),
    /// Something unusable, such as an unknown alias.
    Bad,
}

/// Why a text could not be loaded as YAML.
#[derive(Debug, Clone)]
pub(crate) struct LoadError {
    /// A stable diagnostic code.
    pub(crate) code: &'static str,
    /// The human explanation.
    pub(crate) message: String,
    /// Where the problem is.
    pub(crate) span: Span,
    /// What the caret should say.
    pub(crate) label: Option<String>,
}

impl Node {
    /// Returns the mapping entries, if this is a mapping.
    pub(crate) fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Returns the sequence items, if this is a sequence.
    pub(crate) fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// Returns the entry for a string key, if this is a mapping holding it.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.as_key() == Some(key)).map(|(_, v)| v)
    }

    /// Returns the span of the key `key`, if this is a mapping holding it.
    pub(crate) fn key_span(&self, key: &str) -> Option<Span> {
        self.as_map()?.iter().find(|(k, _)| k.as_key() == Some(key)).map(|(k, _)| k.span)
    }

    /// Returns the text of a scalar usable as a key or name (strings, numbers and booleans).
    pub(crate) fn as_key(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Returns the string of a string scalar.
    pub(crate) fn as_str(&self) -> Option<&str> {
        self.as_key()
    }

    /// Returns the text of any non-null scalar as written, so `1.0` stays `1.0`.
    pub(crate) fn scalar_text(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => self.raw.as_deref(),
            _ => None,
        }
    }

    /// Describes the kind of node for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Bad => "an unusable value",
        }
    }
}

/// Maps saphyr's character-based markers to byte offsets and our spans.
struct Positions<'a> {
    text: &'a str,
    /// The byte offset of every `STRIDE`th character, so lookups never rescan long lines.
    checkpoints: Vec<usize>,
    file: FileId,
}

/// How many characters lie between two checkpoints.
const STRIDE: usize = 64;

impl<'a> Positions<'a> {
    fn new(text: &'a str, file: FileId) -> Self {
        let checkpoints =
            text.char_indices().step_by(STRIDE).map(|(i, _)| i).collect::<Vec<usize>>();
        Positions { text, checkpoints, file }
    }

    /// Converts a marker's character index to a byte offset, clamping anything out of range.
    fn offset(&self, m: &Marker) -> usize {
        let index = m.index();
        let Some(&base) = self.checkpoints.get(index / STRIDE) else {
            return self.text.len();
        };
        let rest = self.text.get(base..).unwrap_or("");
        rest.char_indices().nth(index % STRIDE).map_or(self.text.len(), |(i, _)| base + i)
    }

    fn span(&self, start: &Marker, end: &Marker) -> Span {
        let s = self.offset(start);
        let e = self.offset(end).max(s);
        Span {
            file: self.file,
            start: s,
            end: e,
            line: u32::try_from(start.line().max(1)).unwrap_or(u32::MAX),
            column: u32::try_from(start.col() + 1).unwrap_or(u32::MAX),
        }
    }
}

/// Makes a span for a byte range of `text`, computing line and column.
pub(crate) fn span_at(text: &str, file: FileId, start: usize, end: usize) -> Span {
    let start = start.min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    Span {
        file,
        start,
        end: end.clamp(start, text.len()),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
    }
}

/// Estimates nesting depth from the raw text, so the YAML crate never sees pathological input.
///
/// Flow brackets outside quotes, comments and plain text count one level each; block nesting is bounded by
/// indentation plus leading `- ` and `? ` indicators.
fn prescan(text: &str, file: FileId) -> Result<(), LoadError> {
    let mut flow: usize = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let indent =
            line.bytes().take_while(|b| matches!(b, b' ' | b'\t' | b'-' | b'?' | b':')).count();
        if indent > MAX_DEPTH * 4 {
            return Err(LoadError {
                code: "too-deep",
                message: format!("nesting is deeper than {MAX_DEPTH} levels"),
                span: span_at(text, file, offset, offset + indent),
                label: Some("indented too far".into()),
            });
        }
        let mut quote: Option<char> = None;
        let mut prev_space = true;
        // The last character outside quotes that was not whitespace; in block context a quote or
        // bracket only opens something at the start of a value (after `: `, `- `, `? ` or the
        // indentation), elsewhere it is plain text.
        let mut last_mark: Option<char> = None;
        for (i, c) in line.char_indices() {
            let value_start = flow > 0
                || last_mark.is_none()
                || (prev_space && matches!(last_mark, Some(':' | '-' | '?')));
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '#' if prev_space => break,
                    '"' | '\'' if value_start => quote = Some(c),
                    '[' | '{' if value_start => {
                        flow += 1;
                        if flow > MAX_DEPTH {
                            return Err(LoadError {
                                code: "too-deep",
                                message: format!("nesting is deeper than {MAX_DEPTH} levels"),
                                span: span_at(text, file, offset + i, offset + i + 1),
                                label: Some("too many nested brackets".into()),
                            });
                        }
                    }
                    ']' | '}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
            if quote.is_none() && !c.is_whitespace() {
                last_mark = Some(c);
            }
            prev_space = c.is_whitespace();
        }
        offset += line.len();
    }
    Ok(())
}

/// Loads the first document of `text`.
pub(crate) fn load(text: &str, file: FileId) -> Result<Node, LoadError> {
    if text.len() > MAX_BYTES {
        return Err(LoadError {
            code: "too-large",
            message: format!("the file is larger than {} MiB", MAX_BYTES / (1024 * 1024)),
            span: span_at(text, file, 0, 0),
            label: None,
        });
    }
    prescan(text, file)?;
    let pos = Positions::new(text, file);
    let docs = match MarkedYaml::load_from_str(text) {
        Ok(d) => d,
        Err(e) => {
            let m = e.marker();
            let info = e.info();
            let (code, message, label) = if info.contains("duplicated key") {
                ("duplicate-key", String::new(), "this key appears earlier in the same mapping")
            } else {
                ("yaml-syntax", format!("invalid YAML: {info}"), "here")
            };
            let span = pos.span(m, m);
            let span = widen_to_token(text, span);
            let message = if code == "duplicate-key" {
                let key = text.get(span.start..span.end).unwrap_or("");
                format!("duplicate key `{key}` in mapping")
            } else {
                message
            };
            return Err(LoadError { code, message, span, label: Some(label.into()) });
        }
    };
    let mut docs = docs.into_iter();
    let Some(first) = docs.next() else {
        return Ok(Node { value: Value::Null, span: span_at(text, file, 0, 0), raw: None });
    };
    if let Some(second) = docs.next() {
        return Err(LoadError {
            code: "multiple-documents",
            message: "an interface file must hold exactly one YAML document".into(),
            span: pos.span(&second.span.start, &second.span.start),
            label: Some("a second document starts here".into()),
        });
    }
    convert(&first, &pos, 0)
}

/// Widens a point span to the word that starts there, so carets underline something visible.
fn widen_to_token(text: &str, span: Span) -> Span {
    let rest = text.get(span.start..).unwrap_or("");
    let len: usize = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, ':' | ',' | ']' | '}'))
        .map(char::len_utf8)
        .sum();
    Span { end: span.start + len, ..span }
}

fn convert(y: &MarkedYaml<'_>, pos: &Positions<'_>, depth: usize) -> Result<Node, LoadError> {
    let mut span = pos.span(&y.span.start, &y.span.end);
    // A flow collection ends at its closing bracket; include it so carets cover the whole thing.
    if matches!(y.data, YamlData::Sequence(_) | YamlData::Mapping(_))
        && matches!(pos.text.as_bytes().get(span.end), Some(b']' | b'}'))
    {
        span.end += 1;
    }
    if depth > MAX_DEPTH {
        return Err(LoadError {
            code: "too-deep",
            message: format!("nesting is deeper than {MAX_DEPTH} levels"),
            span: Span { end: span.start, ..span },
            label: Some("too deep".into()),
        });
    }
    let value = match &y.data {
        YamlData::Value(s) => scalar(s),
        YamlData::Representation(s, _, _) => Value::Str(s.to_string()),
        YamlData::Tagged(_, inner) => return convert(inner, pos, depth),
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(convert(item, pos, depth + 1)?);
            }
            Value::Seq(out)
        }
        YamlData::Mapping(map) => {
            let mut out = Vec::with_capacity(map.len());
            for (k, v) in map {
                out.push((convert(k, pos, depth + 1)?, convert(v, pos, depth + 1)?));
            }
            Value::Map(out)
        }
        // A tag the core schema does not know (`!!foo 1`), or one its text does not fit
        // (`!!int abc`): refused here, since no later check can tell it from an absent value.
        YamlData::BadValue => {
            return Err(LoadError {
                code: "bad-tag",
                message: "this value has a tag that switchboard cannot read it with".into(),
                span,
                label: Some("an unknown `!!` tag, or one its value does not fit".into()),
            });
        }
        YamlData::Alias(_) => Value::Bad,
    };
    let raw = match value {
        Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
            pos.text.get(span.start..span.end).map(|s| s.trim().to_string())
        }
        _ => None,
    };
    Ok(Node { value, span, raw })
}

fn scalar(s: &Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Int(*i),
        Scalar::FloatingPoint(f) => Value::Float(f.0),
        Scalar::String(s) => Value::Str(s.to_string()),
    }
}
