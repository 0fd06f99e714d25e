//! Checks of the repository's Markdown, run as tests: every relative link reaches a file inside
//! the repository (and a heading or anchor that exists there), and a document's "Contents" list
//! names every one of its sections.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// Every Markdown file of the repository, skipping build output, dependencies and hidden
/// directories.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with('.') || matches!(name, "target" | "node_modules" | "__pycache__") {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(".md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The lines of `text` outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match fence {
            Some(marker) if trimmed.starts_with(marker) => fence = None,
            Some(_) => {}
            None if trimmed.starts_with("```") => fence = Some("```"),
            None if trimmed.starts_with("~~~") => fence = Some("~~~"),
            None => lines.push((index + 1, line)),
        }
    }
    lines
}

/// `line` with its inline code spans blanked out, so `[a](b)` inside backticks is no link.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(c);
        } else {
            out.push(if in_code { ' ' } else { c });
        }
    }
    out
}

/// The targets of the inline links (`[text](target)`) and images of one line of prose.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let mut rest = line.as_str();
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let mut depth = 0_usize;
        let end = after.char_indices().find_map(|(i, c)| match c {
            '(' => {
                depth += 1;
                None
            }
            ')' if depth == 0 => Some(i),
            ')' => {
                depth -= 1;
                None
            }
            _ => None,
        });
        let Some(end) = end else { break };
        // A link may carry a title: `[text](target "title")`.
        let target = after[..end].split_whitespace().next().unwrap_or_default();
        targets.push(target.trim_matches(['<', '>']).to_owned());
        rest = &after[end..];
    }
    targets
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The headings of a document, with their levels, in order.
fn headings(text: &str) -> Vec<(usize, String)> {
    prose_lines(text)
        .into_iter()
        .filter_map(|(_, line)| {
            let level = line.chars().take_while(|&c| c == '#').count();
            let title = line.get(level..)?.strip_prefix(' ')?;
            (1..=6).contains(&level).then(|| (level, title.trim().to_owned()))
        })
        .collect()
}

/// Every anchor a link may name in a document: heading slugs (GitHub numbers repeats `-1`,
/// `-2`, …) and explicit `<a id="…">` anchors.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for (_, title) in headings(text) {
        let base = slug(&title);
        let mut candidate = base.clone();
        let mut repeat = 0;
        while anchors.contains(&candidate) {
            repeat += 1;
            candidate = format!("{base}-{repeat}");
        }
        anchors.insert(candidate);
    }
    for marker in ["<a id=\"", "<a name=\""] {
        for (position, _) in text.match_indices(marker) {
            let rest = &text[position + marker.len()..];
            if let Some(end) = rest.find('"') {
                anchors.insert(rest[..end].to_owned());
            }
        }
    }
    anchors
}

/// What is wrong with the relative links of the Markdown file `file`, one line per problem.
fn broken_links(root: &Path, file: &Path) -> Vec<String> {
    let root = root.canonicalize().expect("the repository root exists");
    let text = std::fs::read_to_string(file).expect("a Markdown file is readable");
    let here = file.strip_prefix(&root).unwrap_or(file).display().to_string();
    let mut problems = Vec::new();
    for (number, line) in prose_lines(&text) {
        for target in link_targets(line) {
            if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.to_path_buf()
            } else {
                file.parent().expect("a file has a directory").join(path)
            };
            let Ok(resolved) = resolved.canonicalize() else {
                problems.push(format!("{here}:{number}: `{target}` does not exist"));
                continue;
            };
            if !resolved.starts_with(&root) {
                problems.push(format!("{here}:{number}: `{target}` is outside the repository"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if resolved.extension().is_none_or(|ext| ext != "md") {
                continue;
            }
            let target_text = std::fs::read_to_string(&resolved).unwrap_or_default();
            if !anchors(&target_text).contains(anchor) {
                problems.push(format!("{here}:{number}: `{target}` names no heading or anchor"));
            }
        }
    }
    problems
}

/// What a document's "Contents" section leaves out: the `##` sections after it that no entry of
/// the list links to. Documents without such a section have nothing to leave out.
fn sections_missing_from_contents(text: &str) -> Vec<String> {
    let sections: Vec<String> =
        headings(text).into_iter().filter(|(level, _)| *level == 2).map(|(_, t)| t).collect();
    let Some(contents) = sections.iter().position(|title| title == "Contents") else {
        return Vec::new();
    };
    let listed: BTreeSet<String> = contents_entries(text).into_iter().collect();
    sections[contents + 1..]
        .iter()
        .filter(|title| !listed.contains(&format!("#{}", slug(title))))
        .cloned()
        .collect()
}

/// The link targets of the list under the "## Contents" heading.
fn contents_entries(text: &str) -> Vec<String> {
    prose_lines(text)
        .into_iter()
        .skip_while(|(_, line)| line.trim() != "## Contents")
        .skip(1)
        .take_while(|(_, line)| !line.starts_with("## "))
        .flat_map(|(_, line)| link_targets(line))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_links_stay_inside_the_repository_and_resolve() {
        let root = crate::workspace_root();
        let files = markdown_files(&root);
        assert!(files.iter().any(|f| f.ends_with("docs/shell.md")), "found {files:?}");
        let problems: Vec<String> = files.iter().flat_map(|f| broken_links(&root, f)).collect();
        assert!(problems.is_empty(), "broken links:\n{}", problems.join("\n"));
    }

    #[test]
    fn contents_lists_name_every_section() {
        let root = crate::workspace_root();
        let mut checked = 0;
        let mut problems = Vec::new();
        for file in markdown_files(&root) {
            let text = std::fs::read_to_string(&file).expect("readable");
            if !text.lines().any(|line| line.trim() == "## Contents") {
                continue;
            }
            checked += 1;
            for missing in sections_missing_from_contents(&text) {
                problems.push(format!("{}: \"{missing}\"", file.display()));
            }
        }
        assert!(checked >= 1, "no document has a Contents section");
        assert!(problems.is_empty(), "sections missing from Contents:\n{}", problems.join("\n"));
    }

    #[test]
    fn finds_links_outside_code() {
        let text = "See [a](a.md) and [b](../b.md#part \"title\").\n\
                    ```\n[not](code.md)\n```\n\
                    `[not](inline.md)` and ![image](img/x.png)\n";
        let targets: Vec<String> =
            prose_lines(text).into_iter().flat_map(|(_, line)| link_targets(line)).collect();
        assert_eq!(targets, ["a.md", "../b.md#part", "img/x.png"]);
    }

    #[test]
    fn slugs_follow_github() {
        assert_eq!(slug("`errors` (extension)"), "errors-extension");
        assert_eq!(slug("`$ref`"), "ref");
        assert_eq!(slug("Types and their JSON encoding"), "types-and-their-json-encoding");
        assert_eq!(slug("5.5 Goals: send, cancel"), "55-goals-send-cancel");
        let repeated = anchors("## Usage\n## Usage\n<a id=\"error-x\"></a>\n");
        assert_eq!(repeated.into_iter().collect::<Vec<_>>(), ["error-x", "usage", "usage-1"]);
    }

    #[test]
    fn reports_links_that_leave_the_repository_or_miss() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let docs = dir.join("repo/docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(dir.join("outside.md"), "# Outside\n").unwrap();
        std::fs::write(docs.join("other.md"), "# Other\n## Part two\n").unwrap();
        let page = docs.join("page.md");
        std::fs::write(
            &page,
            "[ok](other.md#part-two) [out](../../outside.md) [gone](missing.md) \
             [no anchor](other.md#part-three) [web](https://example.com/x.md)\n",
        )
        .unwrap();
        let problems = broken_links(&dir.join("repo"), &page);
        assert_eq!(
            problems,
            [
                "docs/page.md:1: `../../outside.md` is outside the repository",
                "docs/page.md:1: `missing.md` does not exist",
                "docs/page.md:1: `other.md#part-three` names no heading or anchor",
            ]
        );
    }

    #[test]
    fn reports_sections_missing_from_contents() {
        let text = "# Doc\n## Contents\n\n1. [One](#one)\n\n## One\n## Two\n### Two a\n";
        assert_eq!(sections_missing_from_contents(text), ["Two"]);
        assert!(sections_missing_from_contents("# Doc\n## One\n").is_empty());
    }
}
