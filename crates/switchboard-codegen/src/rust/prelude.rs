//! Keeps the prelude items generated code names (`Option`, `Result`, `Send`, …) meaning Rust's
//! own when the interface defines types of the same names.
//!
//! Rendering writes prelude items by their plain names, as hand-written code does, and every
//! name that comes from the interface through [`ident`], which spells a prelude name raw
//! (`r#Option`, the same identifier to the compiler). [`resolve`] then walks the tokens once: a
//! raw prelude name is the interface's and becomes plain again; a plain one that the interface
//! has taken becomes a private alias, imported at the top of the module
//! (`use std::option::Option as StdOption;`). Interfaces that take no prelude name generate
//! exactly what they would without this step.

use std::collections::BTreeSet;

use proc_macro2::{Group, Ident, Literal, Spacing, TokenStream, TokenTree};
use quote::{format_ident, quote};

/// Every item of Rust's 2024 prelude with an uppercase name, by where it is defined: the names an
/// interface's types, traits and enum values can take from it. (Derive macros live in a
/// namespace of their own that no generated item enters.)
pub(crate) const PRELUDE: &[(&str, &str)] = &[
    ("AsMut", "std::convert::AsMut"),
    ("AsRef", "std::convert::AsRef"),
    ("AsyncFn", "std::ops::AsyncFn"),
    ("AsyncFnMut", "std::ops::AsyncFnMut"),
    ("AsyncFnOnce", "std::ops::AsyncFnOnce"),
    ("Box", "std::boxed::Box"),
    ("Clone", "std::clone::Clone"),
    ("Copy", "std::marker::Copy"),
    ("Default", "std::default::Default"),
    ("DoubleEndedIterator", "std::iter::DoubleEndedIterator"),
    ("Drop", "std::ops::Drop"),
    ("Eq", "std::cmp::Eq"),
    ("Err", "std::result::Result::Err"),
    ("ExactSizeIterator", "std::iter::ExactSizeIterator"),
    ("Extend", "std::iter::Extend"),
    ("Fn", "std::ops::Fn"),
    ("FnMut", "std::ops::FnMut"),
    ("FnOnce", "std::ops::FnOnce"),
    ("From", "std::convert::From"),
    ("FromIterator", "std::iter::FromIterator"),
    ("Future", "std::future::Future"),
    ("Into", "std::convert::Into"),
    ("IntoFuture", "std::future::IntoFuture"),
    ("IntoIterator", "std::iter::IntoIterator"),
    ("Iterator", "std::iter::Iterator"),
    ("None", "std::option::Option::None"),
    ("Ok", "std::result::Result::Ok"),
    ("Option", "std::option::Option"),
    ("Ord", "std::cmp::Ord"),
    ("PartialEq", "std::cmp::PartialEq"),
    ("PartialOrd", "std::cmp::PartialOrd"),
    ("Result", "std::result::Result"),
    ("Send", "std::marker::Send"),
    ("Sized", "std::marker::Sized"),
    ("Some", "std::option::Option::Some"),
    ("String", "std::string::String"),
    ("Sync", "std::marker::Sync"),
    ("ToOwned", "std::borrow::ToOwned"),
    ("ToString", "std::string::ToString"),
    ("TryFrom", "std::convert::TryFrom"),
    ("TryInto", "std::convert::TryInto"),
    ("Unpin", "std::marker::Unpin"),
    ("Vec", "std::vec::Vec"),
];

/// The path of the prelude item called `name`, if there is one.
pub(crate) fn prelude_path(name: &str) -> Option<&'static str> {
    PRELUDE.iter().find(|(item, _)| *item == name).map(|(_, path)| *path)
}

/// A prelude item the interface takes the name of, and the alias generated code uses for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Alias {
    /// The item's name in the prelude, e.g. `Option`.
    pub(crate) name: &'static str,
    /// Where it is defined, e.g. `std::option::Option`.
    pub(crate) path: &'static str,
    /// What the module calls it, e.g. `StdOption`.
    pub(crate) alias: String,
}

/// An identifier for a name from the interface (or one the lowering made from it), raw when it
/// starts with `r#` or is a prelude name, so that [`resolve`] can tell it from the prelude's.
pub(crate) fn ident(name: &str) -> Ident {
    match prelude_path(name) {
        Some(_) => Ident::new_raw(name, proc_macro2::Span::call_site()),
        None => format_ident!("{name}"),
    }
}

/// Makes `tokens` mean the prelude's items by their plain names and the interface's by theirs,
/// and puts the `use` lines of the aliases it needed in front.
pub(crate) fn resolve(tokens: TokenStream, aliases: &[Alias]) -> TokenStream {
    let mut used = BTreeSet::new();
    let body = rewrite(tokens, aliases, &mut used);
    let mut needed: Vec<&Alias> = aliases.iter().filter(|a| used.contains(a.name)).collect();
    needed.sort_by_key(|a| a.path);
    let uses = needed.into_iter().map(|a| {
        let path: TokenStream = a.path.parse().expect("a prelude path is a path");
        let alias = format_ident!("{}", a.alias);
        quote!(use #path as #alias;)
    });
    quote!(#(#uses)* #body)
}

/// One level of [`resolve`]'s walk; `used` collects the names of the aliases it wrote.
fn rewrite(
    tokens: TokenStream,
    aliases: &[Alias],
    used: &mut BTreeSet<&'static str>,
) -> TokenStream {
    let mut out = Vec::new();
    // What the previous token was: the first `:` of a `::`; the second `:` of one, or a `.`, after
    // which a name is a path's later segment, a field or a method, never a prelude item; a `#`,
    // which starts an attribute.
    let (mut half_path_sep, mut after_path_sep, mut after_hash) = (false, false, false);
    for tree in tokens {
        let next = match tree {
            TokenTree::Ident(ident) => {
                let name = ident.to_string();
                match name.strip_prefix("r#") {
                    Some(plain) if prelude_path(plain).is_some() => {
                        TokenTree::Ident(Ident::new(plain, ident.span()))
                    }
                    _ => match aliases.iter().find(|a| a.name == name) {
                        Some(alias) if !after_path_sep => {
                            used.insert(alias.name);
                            TokenTree::Ident(Ident::new(&alias.alias, ident.span()))
                        }
                        _ => TokenTree::Ident(ident),
                    },
                }
            }
            TokenTree::Group(group) => {
                // An attribute names derive macros, which types do not shadow; only the serde
                // adapters in it are types.
                let stream = if after_hash {
                    adapters(group.stream(), aliases, used)
                } else {
                    rewrite(group.stream(), aliases, used)
                };
                let mut rewritten = Group::new(group.delimiter(), stream);
                rewritten.set_span(group.span());
                TokenTree::Group(rewritten)
            }
            other => other,
        };
        let punct = match &next {
            TokenTree::Punct(punct) => Some((punct.as_char(), punct.spacing())),
            _ => None,
        };
        after_path_sep = matches!(punct, Some(('.', _)))
            || (half_path_sep && punct.is_some_and(|(c, _)| c == ':'));
        half_path_sep = punct == Some((':', Spacing::Joint));
        after_hash = matches!(punct, Some(('#', _)));
        out.push(next);
    }
    out.into_iter().collect()
}

/// The tokens of an attribute, with prelude names in `with = "sb::As::<…>"` adapter types
/// (which the lowering spells with plain prelude names and `sb::` paths only) aliased.
fn adapters(
    tokens: TokenStream,
    aliases: &[Alias],
    used: &mut BTreeSet<&'static str>,
) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => {
                let mut rewritten =
                    Group::new(group.delimiter(), adapters(group.stream(), aliases, used));
                rewritten.set_span(group.span());
                TokenTree::Group(rewritten)
            }
            TokenTree::Literal(literal) => {
                let text = literal.to_string();
                match text.strip_prefix("\"sb::As::<").and_then(|t| t.strip_suffix('"')) {
                    Some(_) => {
                        let inner = &text[1..text.len() - 1];
                        TokenTree::Literal(Literal::string(&alias_words(inner, aliases, used)))
                    }
                    None => TokenTree::Literal(literal),
                }
            }
            other => other,
        })
        .collect()
}

/// `text` with each word that is an aliased prelude name, and not a later segment of a path,
/// replaced by its alias.
fn alias_words(text: &str, aliases: &[Alias], used: &mut BTreeSet<&'static str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_alphanumeric() || c == '_') {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let end = from.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(from.len());
        let (word, after) = from.split_at(end);
        match aliases.iter().find(|a| a.name == word) {
            Some(alias) if !out.ends_with("::") => {
                used.insert(alias.name);
                out.push_str(&alias.alias);
            }
            _ => out.push_str(word),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases(names: &[&'static str]) -> Vec<Alias> {
        names
            .iter()
            .map(|name| Alias {
                name,
                path: prelude_path(name).expect("a prelude name"),
                alias: format!("Std{name}"),
            })
            .collect()
    }

    #[test]
    fn plain_prelude_names_become_aliases_and_the_interfaces_stay() {
        let option = ident("Option");
        let tokens = quote! {
            #[derive(Clone)]
            pub struct #option { pub x: Option<String> }
            fn f<S: sb::Serializer>() -> Result<S::Ok, std::fmt::Error> { Ok(x.clone()) }
        };
        let out = resolve(tokens, &aliases(&["Option", "Ok", "Clone"])).to_string();
        assert_eq!(
            out,
            quote! {
                use std::option::Option as StdOption;
                use std::result::Result::Ok as StdOk;
                #[derive(Clone)]
                pub struct Option { pub x: StdOption<String> }
                fn f<S: sb::Serializer>() -> Result<S::Ok, std::fmt::Error> { StdOk(x.clone()) }
            }
            .to_string()
        );
    }

    #[test]
    fn adapter_types_in_serde_attributes_are_aliased() {
        let tokens = quote!(#[serde(default, with = "sb::As::<Option<Vec<sb::Base64>>>")] x: u8);
        let out = resolve(tokens, &aliases(&["Option"])).to_string();
        assert!(out.contains(r#""sb::As::<StdOption<Vec<sb::Base64>>>""#), "{out}");
        assert!(out.starts_with("use std :: option :: Option as StdOption ;"), "{out}");
    }

    #[test]
    fn nothing_changes_when_the_interface_takes_no_prelude_name() {
        let vec = ident("Point");
        let tokens = quote!(struct #vec { v: Vec<Option<u8>> });
        assert_eq!(resolve(tokens.clone(), &[]).to_string(), tokens.to_string());
    }
}
