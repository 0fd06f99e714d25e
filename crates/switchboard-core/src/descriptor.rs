//! What the runtime knows about an interface: names, hash and flags, produced by generated code.
//!
//! The runtime never reads interface files (ARCHITECTURE.md); this descriptor is all it gets.

use std::{borrow::Cow, time::Duration};

/// The runtime's view of one interface.
#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceDescriptor {
    /// The interface name as written in the file.
    pub name: Cow<'static, str>,
    /// The interface version string.
    pub version: Cow<'static, str>,
    /// The human title, or the name when the file gives none.
    pub title: Cow<'static, str>,
    /// The description hash (`sha256:…`); peers compare it at connect time.
    pub hash: Cow<'static, str>,
    /// The full interface description as JSON, for runtime introspection.
    pub description: Cow<'static, str>,
    /// The methods the server implements.
    pub methods: Cow<'static, [MethodDescriptor]>,
    /// The signals the server emits.
    pub signals: Cow<'static, [Cow<'static, str>]>,
    /// The properties the server holds.
    pub properties: Cow<'static, [PropertyDescriptor]>,
    /// Extra topic placeholders (such as `prefix`) for broker transports.
    pub topic_params: Cow<'static, [Cow<'static, str>]>,
    /// Topic template overrides for broker transports, keyed by StingerIPC's camelCase names
    /// (`signals`, `propertyValues`, `methodRequests`, …).
    pub topic_templates: Cow<'static, [(Cow<'static, str>, Cow<'static, str>)]>,
}

/// One method.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodDescriptor {
    /// The method name.
    pub name: Cow<'static, str>,
    /// A per-method timeout from the interface file, overriding the client's default.
    pub timeout: Option<Duration>,
}

/// One property.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDescriptor {
    /// The property name.
    pub name: Cow<'static, str>,
    /// True when clients may not update it.
    pub read_only: bool,
}

impl InterfaceDescriptor {
    /// A descriptor that knows only the interface's name: a dynamic client built from it
    /// accepts any server of that name (its hash is empty) and learns the rest by asking.
    pub fn named(name: impl Into<String>) -> Self {
        let name = name.into();
        InterfaceDescriptor {
            title: Cow::Owned(name.clone()),
            name: Cow::Owned(name),
            version: Cow::Borrowed(""),
            hash: Cow::Borrowed(""),
            description: Cow::Borrowed(""),
            methods: Cow::Borrowed(&[]),
            signals: Cow::Borrowed(&[]),
            properties: Cow::Borrowed(&[]),
            topic_params: Cow::Borrowed(&[]),
            topic_templates: Cow::Borrowed(&[]),
        }
    }

    /// Finds a method by name.
    pub fn method(&self, name: &str) -> Option<&MethodDescriptor> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// Finds a property by name.
    pub fn property(&self, name: &str) -> Option<&PropertyDescriptor> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// Finds a signal by name, returning the descriptor's own copy of the name.
    pub fn signal(&self, name: &str) -> Option<&Cow<'static, str>> {
        self.signals.iter().find(|s| *s == name)
    }

    /// The first 12 hex digits of the hash, for messages people read.
    pub fn short_hash(&self) -> &str {
        crate::compat::short_hash(&self.hash)
    }
}
