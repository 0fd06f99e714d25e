//! English wording for messages: indefinite articles and plurals, so no message picks them by
//! hand. Diagnostics here and the command line's messages both use it.
//!
//! ```
//! use switchboard_idl::english::{counted, listed, plural, with_article};
//!
//! assert_eq!(with_article("integer"), "an integer");
//! assert_eq!(with_article("uint8"), "a uint8");
//! assert_eq!(plural("property"), "properties");
//! assert_eq!(counted(1, "signal"), "1 signal");
//! assert_eq!(listed(&["a", "b", "c"], "and"), "a, b and c");
//! ```

use std::fmt;

/// Starts of words spelled with a vowel but said with a consonant (`a uint8`, `a unit`, `a
/// user`, `a one-off`), compared without regard to case.
const CONSONANT_SOUNDS: &[&str] = &["uint", "uni", "use", "usu", "uti", "utf", "one", "eu"];

/// Returns `word` after its indefinite article: `an integer`, `a float`, `a uint8`, `an
/// array<float>`, `a Mode`, `an OutOfRange`.
///
/// The article follows how the word starts when said aloud, judged from its spelling: a vowel
/// letter takes `an`, except for starts said with a consonant, such as `uint`, `uni` and `use`.
pub fn with_article(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let vowel_sound = lower.starts_with(['a', 'e', 'i', 'o', 'u'])
        && !CONSONANT_SOUNDS.iter().any(|start| lower.starts_with(start));
    if vowel_sound { format!("an {word}") } else { format!("a {word}") }
}

/// Returns the plural of a noun, or of a phrase ending in one: `method` → `methods`,
/// `property` → `properties`, `class` → `classes`, `more diagnostic` → `more diagnostics`.
pub fn plural(noun: &str) -> String {
    let ends_in_consonant_y = noun.ends_with('y')
        && !noun[..noun.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']);
    if ends_in_consonant_y {
        format!("{}ies", &noun[..noun.len() - 1])
    } else if noun.ends_with(['s', 'x', 'z']) || noun.ends_with("ch") || noun.ends_with("sh") {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

/// Returns `count` and the noun, plural unless the count is one: `1 method`, `2 properties`,
/// `0 signals`.
pub fn counted<N: fmt::Display + PartialEq + From<u8>>(count: N, noun: &str) -> String {
    if count == N::from(1) { format!("1 {noun}") } else { format!("{count} {}", plural(noun)) }
}

/// Returns the items as a list in a sentence: `a`, `a or b`, `a, b and c`.
pub fn listed(items: &[impl AsRef<str>], conjunction: &str) -> String {
    match items {
        [] => String::new(),
        [only] => only.as_ref().to_owned(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} {conjunction} {}", init.join(", "), last.as_ref())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn articles_follow_the_sound() {
        for (word, expected) in [
            ("integer", "an integer"),
            ("float", "a float"),
            ("int8", "an int8"),
            ("uint8", "a uint8"),
            ("array<float>", "an array<float>"),
            ("map<string>", "a map<string>"),
            ("enumeration", "an enumeration"),
            ("structure", "a structure"),
            ("error", "an error"),
            ("OutOfRange", "an OutOfRange"),
            ("UserProfile", "a UserProfile"),
            ("Mode", "a Mode"),
            ("", "a "),
        ] {
            assert_eq!(with_article(word), expected);
        }
    }

    #[test]
    fn plurals_follow_the_ending() {
        for (noun, expected) in [
            ("method", "methods"),
            ("property", "properties"),
            ("key", "keys"),
            ("class", "classes"),
            ("box", "boxes"),
            ("match", "matches"),
            ("more diagnostic", "more diagnostics"),
        ] {
            assert_eq!(plural(noun), expected);
        }
        assert_eq!(counted(0, "signal"), "0 signals");
        assert_eq!(counted(1, "property"), "1 property");
        assert_eq!(counted(3u64, "property"), "3 properties");
    }

    #[test]
    fn lists_join_the_last_item_with_the_conjunction() {
        assert_eq!(listed(&[] as &[&str], "and"), "");
        assert_eq!(listed(&["signal"], "or"), "signal");
        assert_eq!(listed(&["signal", "property"], "or"), "signal or property");
        assert_eq!(
            listed(&["1 method", "2 properties", "1 signal"], "and"),
            "1 method, 2 properties and 1 signal"
        );
    }
}
