//! What the runtime knows about an interface: names, hash and flags, produced by generated code
//! or built from an interface model learned at run time.
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

    /// The descriptor of an interface model that was read or learned at run time rather than
    /// generated (the CLI's dynamic client, a bridge's interface route), with `hash` (empty for
    /// a client that accepts any server of the name) and `description` (the model's JSON, as it
    /// should be introspected) as given.
    pub fn from_model(
        model: &switchboard_idl::Interface,
        hash: String,
        description: String,
    ) -> Self {
        let methods = model.methods.iter().map(|m| MethodDescriptor {
            name: Cow::Owned(m.name.clone()),
            timeout: m
                .timeout_secs
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64),
        });
        let properties = model.properties.iter().map(|p| PropertyDescriptor {
            name: Cow::Owned(p.name.clone()),
            read_only: p.read_only,
        });
        let configuration = &model.configuration;
        InterfaceDescriptor {
            name: Cow::Owned(model.name.clone()),
            version: Cow::Owned(model.version.clone()),
            title: Cow::Owned(model.title.clone().unwrap_or_else(|| model.name.clone())),
            hash: Cow::Owned(hash),
            description: Cow::Owned(description),
            methods: Cow::Owned(methods.collect()),
            signals: Cow::Owned(model.signals.iter().map(|s| Cow::Owned(s.name.clone())).collect()),
            properties: Cow::Owned(properties.collect()),
            topic_params: Cow::Owned(
                configuration.topic_params.iter().map(|p| Cow::Owned(p.clone())).collect(),
            ),
            topic_templates: Cow::Owned(
                configuration
                    .topics
                    .iter()
                    .map(|(kind, template)| {
                        (Cow::Owned(kind.clone()), Cow::Owned(template.clone()))
                    })
                    .collect(),
            ),
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
