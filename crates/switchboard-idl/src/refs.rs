//! Owns `$ref` resolution: loading referenced files through the [`Loader`] and splicing targets in.

use std::collections::HashMap;
use std::rc::Rc;

use crate::Loader;
use crate::diagnostic::Diagnostic;
use crate::source::{SourceMap, Span};
use crate::yaml::{self, Node, Value};

/// The most `$ref`s that may be followed one inside another.
const MAX_REF_CHAIN: usize = 32;

/// The most nodes the expanded document may have, so references cannot blow up memory.
const MAX_NODES: usize = 1_000_000;

/// Expands every `$ref` in one document, remembering loaded files.
pub(crate) struct Resolver<'l> {
    loader: &'l mut dyn Loader,
    files: HashMap<String, Option<Rc<Node>>>,
    budget: usize,
    budget_reported: bool,
}

impl<'l> Resolver<'l> {
    /// Starts with the main file already loaded under `name`.
    pub(crate) fn new(loader: &'l mut dyn Loader, name: &str, root: Rc<Node>) -> Self {
        let mut files = HashMap::new();
        files.insert(name.to_string(), Some(root));
        Resolver { loader, files, budget: MAX_NODES, budget_reported: false }
    }

    /// Returns `node` with every `$ref` replaced by its target.
    pub(crate) fn expand(
        &mut self,
        node: &Node,
        base: &str,
        chain: &mut Vec<String>,
        sources: &mut SourceMap,
        diags: &mut Vec<Diagnostic>,
    ) -> Node {
        if self.budget == 0 {
            if !self.budget_reported {
                self.budget_reported = true;
                diags.push(
                    Diagnostic::error(
                        "too-large",
                        node.span,
                        format!("the expanded document has more than {MAX_NODES} nodes"),
                    )
                    .with_label("expansion stopped here"),
                );
            }
            return bad(node.span);
        }
        self.budget -= 1;
        match &node.value {
            Value::Map(entries) => {
                if let Some((_, target)) = entries.iter().find(|(k, _)| k.as_key() == Some("$ref"))
                {
                    for (k, _) in entries.iter().filter(|(k, _)| k.as_key() != Some("$ref")) {
                        diags.push(
                            Diagnostic::warning(
                                "ref-siblings",
                                k.span,
                                "keys next to `$ref` are ignored",
                            )
                            .with_label("ignored")
                            .with_help("a `$ref` mapping should hold nothing else"),
                        );
                    }
                    return self.resolve(target, base, chain, sources, diags);
                }
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    out.push((k.clone(), self.expand(v, base, chain, sources, diags)));
                }
                Node { value: Value::Map(out), span: node.span, raw: None }
            }
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.expand(item, base, chain, sources, diags));
                }
                Node { value: Value::Seq(out), span: node.span, raw: None }
            }
            _ => node.clone(),
        }
    }

    fn resolve(
        &mut self,
        target: &Node,
        base: &str,
        chain: &mut Vec<String>,
        sources: &mut SourceMap,
        diags: &mut Vec<Diagnostic>,
    ) -> Node {
        let Some(reference) = target.as_str() else {
            diags.push(
                Diagnostic::error(
                    "wrong-type",
                    target.span,
                    format!("`$ref` must be a string, found {}", target.kind()),
                )
                .with_label("expected a string like \"file.yaml#/enums/Name\""),
            );
            return bad(target.span);
        };
        let (file_part, pointer) = match reference.split_once('#') {
            Some((f, p)) => (f, p),
            None => (reference, ""),
        };
        if file_part.contains("://") {
            diags.push(
                Diagnostic::error(
                    "unresolved-ref",
                    target.span,
                    format!(
                        "cannot follow `{reference}`: only relative file references are supported"
                    ),
                )
                .with_label("not a file path"),
            );
            return bad(target.span);
        }
        let path = if file_part.is_empty() { base.to_string() } else { join_path(base, file_part) };
        let key = format!("{path}#{pointer}");
        if chain.contains(&key) {
            diags.push(
                Diagnostic::error(
                    "ref-cycle",
                    target.span,
                    format!("`$ref` to `{reference}` refers back to itself"),
                )
                .with_label("this reference is part of a cycle")
                .with_help(format!("the chain is {} -> {key}", chain.join(" -> "))),
            );
            return bad(target.span);
        }
        if chain.len() >= MAX_REF_CHAIN {
            diags.push(
                Diagnostic::error(
                    "ref-too-deep",
                    target.span,
                    format!("more than {MAX_REF_CHAIN} `$ref`s nested inside each other"),
                )
                .with_label("stopped here"),
            );
            return bad(target.span);
        }
        let Some(root) = self.file(&path, target.span, sources, diags) else {
            return bad(target.span);
        };
        let Some(found) = navigate(&root, pointer) else {
            diags.push(
                Diagnostic::error(
                    "unresolved-ref",
                    target.span,
                    format!("`{path}` has nothing at `#{pointer}`"),
                )
                .with_label("target not found")
                .with_help(
                    "references look like \"file.yaml#/enums/Name\" or \"#/structures/Name\"",
                ),
            );
            return bad(target.span);
        };
        chain.push(key);
        let out = self.expand(found, &path, chain, sources, diags);
        chain.pop();
        out
    }

    fn file(
        &mut self,
        path: &str,
        at: Span,
        sources: &mut SourceMap,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Rc<Node>> {
        if let Some(cached) = self.files.get(path) {
            return cached.clone();
        }
        let loaded = match self.loader.load(path) {
            Ok(text) => {
                let id = sources.add(path, text.clone());
                match yaml::load(&text, id) {
                    Ok(root) => Some(Rc::new(root)),
                    Err(e) => {
                        let from = sources.get(at.file).map_or("", |f| f.name.as_str());
                        let mut d = Diagnostic::error(e.code, e.span, e.message)
                            .with_help(format!("this file is referenced from {from}:{}", at.line));
                        d.label = e.label;
                        diags.push(d);
                        None
                    }
                }
            }
            Err(e) => {
                diags.push(
                    Diagnostic::error("unresolved-ref", at, format!("cannot read `{path}`: {e}"))
                        .with_label("referenced here"),
                );
                None
            }
        };
        self.files.insert(path.to_string(), loaded.clone());
        loaded
    }
}

fn bad(span: Span) -> Node {
    Node { value: Value::Bad, span, raw: None }
}

/// Follows a JSON pointer such as `/enums/Severity` through mappings and sequences.
fn navigate<'n>(root: &'n Node, pointer: &str) -> Option<&'n Node> {
    let mut node = root;
    for part in pointer.split('/').filter(|p| !p.is_empty()) {
        let part = part.replace("~1", "/").replace("~0", "~");
        node = match &node.value {
            Value::Map(_) => node.get(&part)?,
            Value::Seq(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// Joins a reference onto the directory of the referencing file, purely as strings.
pub(crate) fn join_path(base: &str, reference: &str) -> String {
    if reference.starts_with('/') {
        return normalize(reference);
    }
    let dir = base.rfind('/').map_or("", |i| base.get(..=i).unwrap_or(""));
    normalize(&format!("{dir}{reference}"))
}

/// Removes `.` segments and resolves `..` segments where possible.
fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if matches!(parts.last(), Some(p) if *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    if absolute { format!("/{joined}") } else { joined }
}
