//! Compares two versions of an interface and classifies every change by who it breaks.
//!
//! [`compare`] lists the changes from an old [`Interface`] to a new one. Each [`Change`] says
//! whether clients built from the old file keep working against a server built from the new one
//! ([`Change::clients`]), whether servers built from the old file keep working for clients built
//! from the new one ([`Change::servers`]), and which semantic-version bump it needs
//! ([`Change::bump`]). The rules are written down in `docs/interface-format.md`, section
//! "Compatibility between versions".
//!
//! ```
//! use switchboard_idl::{NoLoader, diff};
//! let old = "stingeripc: {version: 0.1.1}\ninterface: {name: Demo, version: 1.0.0}\n";
//! let new = "stingeripc: {version: 0.1.1}\ninterface: {name: Demo, version: 1.1.0}\n\
//!            methods: {ping: {arguments: []}}\n";
//! let old = switchboard_idl::parse("old.yaml", old, &mut NoLoader).interface.unwrap();
//! let new = switchboard_idl::parse("new.yaml", new, &mut NoLoader).interface.unwrap();
//! let changes = diff::compare(&old, &new);
//! assert_eq!(changes[0].path, "methods.ping");
//! assert_eq!(changes[0].clients, diff::Compat::Safe);
//! assert_eq!(changes[0].servers, diff::Compat::Breaking);
//! assert_eq!(diff::required_bump(&changes), Some(diff::Bump::Minor));
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{
    Action, Command, EnumDef, ErrorDef, Field, FloatFormat, Interface, Method, Property, Signal,
    StructDef, Type,
};

/// Whether running peers of one side keep working after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compat {
    /// They keep working.
    Safe,
    /// Some call, value or subscription of theirs fails.
    Breaking,
}

impl Compat {
    fn from_ok(ok: bool) -> Self {
        if ok { Compat::Safe } else { Compat::Breaking }
    }

    /// `safe` or `breaking`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compat::Safe => "safe",
            Compat::Breaking => "breaking",
        }
    }
}

/// The part of `MAJOR.MINOR.PATCH` a change needs raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bump {
    /// Prose and metadata only: nothing on the wire or in generated signatures changes.
    Patch,
    /// Additions and other changes existing clients survive.
    Minor,
    /// Breaks existing clients, or removes, renames or reorders something generated code names.
    Major,
}

impl Bump {
    /// `patch`, `minor` or `major`.
    pub fn as_str(self) -> &'static str {
        match self {
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        }
    }
}

/// What kind of change a [`Change`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChangeKind {
    /// A method, signal, property, command, action, error, enum, structure or constant is new.
    MemberAdded,
    /// One of those is gone.
    MemberRemoved,
    /// An argument, return value, member or value is new.
    FieldAdded,
    /// One is gone.
    FieldRemoved,
    /// A field's type changed (including `optional` and the integer or float `format`).
    FieldTypeChanged,
    /// The fields of one list are in another order.
    FieldsReordered,
    /// An enum has a new value.
    EnumValueAdded,
    /// An enum value is gone.
    EnumValueRemoved,
    /// An enum value kept its name and got another integer.
    EnumValueRenumbered,
    /// An enum value kept its integer and got another name.
    EnumValueRenamed,
    /// A property became read-only, or writable.
    ReadOnlyChanged,
    /// A method or action declares an error it did not.
    ErrorDeclared,
    /// A method or action no longer declares an error.
    ErrorUndeclared,
    /// The interface has another name.
    InterfaceRenamed,
    /// The topic layout (`configuration`) changed.
    ConfigurationChanged,
    /// A method's `timeout` changed.
    TimeoutChanged,
    /// A constant's value or type changed.
    ConstantChanged,
    /// A component's `version` or `consumers` changed.
    MetadataChanged,
    /// Documentation, a description, the title, summary or license changed.
    DocumentationChanged,
}

/// One difference between two versions of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Where, as dotted file keys: `methods.setTarget.arguments.celsius`.
    pub path: String,
    /// What kind of change.
    pub kind: ChangeKind,
    /// What changed, for people: `optional argument added (string)`.
    pub message: String,
    /// Clients built from the old file, against a server built from the new one.
    pub clients: Compat,
    /// Servers built from the old file, serving clients built from the new one.
    pub servers: Compat,
    /// The version bump this change needs.
    pub bump: Bump,
}

impl Change {
    /// True when the change breaks the side `side` names.
    pub fn breaks(&self, side: Side) -> bool {
        match side {
            Side::Clients => self.clients == Compat::Breaking,
            Side::Servers => self.servers == Compat::Breaking,
            Side::Both => self.clients == Compat::Breaking || self.servers == Compat::Breaking,
        }
    }
}

/// Whose running peers a check protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Existing clients, against an updated server.
    Clients,
    /// Existing servers, serving updated clients.
    Servers,
    /// Both.
    Both,
}

/// The largest bump any change needs; `None` when there are no changes.
pub fn required_bump(changes: &[Change]) -> Option<Bump> {
    changes.iter().map(|c| c.bump).max()
}

/// A `MAJOR.MINOR.PATCH` version; a missing minor or patch counts as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// MAJOR
    pub major: u64,
    /// MINOR
    pub minor: u64,
    /// PATCH
    pub patch: u64,
}

impl Version {
    /// Reads `1`, `1.2` or `1.2.3`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().split('.');
        let mut next = |required: bool| match parts.next() {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok(),
            None if !required => Some(0),
            _ => None,
        };
        let version = Version { major: next(true)?, minor: next(false)?, patch: next(false)? };
        parts.next().is_none().then_some(version)
    }

    /// The bump that going from `self` to `new` makes, read the way Cargo reads versions: below
    /// 1.0.0 the first non-zero part is the major one, so `0.3.1` → `0.4.0` is a major bump
    /// and `0.3.1` → `0.3.2` a minor one. `None` when `new` is not greater.
    pub fn bump_to(self, new: Version) -> Option<Bump> {
        if new <= self {
            return None;
        }
        Some(if self.major > 0 {
            if new.major != self.major {
                Bump::Major
            } else if new.minor != self.minor {
                Bump::Minor
            } else {
                Bump::Patch
            }
        } else if self.minor > 0 {
            if new.major != 0 || new.minor != self.minor { Bump::Major } else { Bump::Minor }
        } else {
            Bump::Major
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Whether the new file's `version` carries the bump its changes need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionCheck {
    /// No change needs a bump, or the version carries at least the bump needed.
    Ok,
    /// The version does not carry the bump needed.
    Missing {
        /// What the changes need.
        required: Bump,
        /// What the version change is (`None`: the same version, or a lower one).
        declared: Option<Bump>,
    },
    /// One of the versions is not `MAJOR.MINOR.PATCH`, so nothing can be said.
    Unreadable {
        /// The version that could not be read.
        version: String,
    },
}

/// Checks the bump from `old.version` to `new.version` against what `changes` need.
pub fn check_version(old: &Interface, new: &Interface, changes: &[Change]) -> VersionCheck {
    let Some(required) = required_bump(changes) else { return VersionCheck::Ok };
    let Some(old_version) = Version::parse(&old.version) else {
        return VersionCheck::Unreadable { version: old.version.clone() };
    };
    let Some(new_version) = Version::parse(&new.version) else {
        return VersionCheck::Unreadable { version: new.version.clone() };
    };
    let declared = old_version.bump_to(new_version);
    if declared.is_some_and(|d| d >= required) {
        VersionCheck::Ok
    } else {
        VersionCheck::Missing { required, declared }
    }
}

/// Lists every change from `old` to `new`, in the order of the file format's sections.
///
/// Reordering members of a section is not a change; reordering the fields of one list is (it
/// changes generated signatures, though not the wire). The function is pure and never panics.
pub fn compare(old: &Interface, new: &Interface) -> Vec<Change> {
    let mut d = Differ { out: Vec::new(), old_flows: flows_of(old), new_flows: flows_of(new) };
    d.interface(old, new);
    d.out
}

/// Which way values of a list, enum or structure travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Flows {
    /// Clients send them and servers read them (arguments, goals, property updates).
    to_server: bool,
    /// Servers send them and clients read them (replies, signals, property values, errors).
    to_client: bool,
}

impl Flows {
    const TO_SERVER: Flows = Flows { to_server: true, to_client: false };
    const TO_CLIENT: Flows = Flows { to_server: false, to_client: true };
    const BOTH: Flows = Flows { to_server: true, to_client: true };

    fn union(self, other: Flows) -> Flows {
        Flows {
            to_server: self.to_server || other.to_server,
            to_client: self.to_client || other.to_client,
        }
    }

    /// The verdicts for a change whose values still decode from an old sender at a new receiver
    /// (`old_to_new`) and from a new sender at an old receiver (`new_to_old`).
    ///
    /// An old client with a new server: the client is the old sender of what goes to the server,
    /// and the old receiver of what comes back. An old server with a new client: the reverse.
    fn verdicts(self, old_to_new: bool, new_to_old: bool) -> (Compat, Compat) {
        let clients = (!self.to_server || old_to_new) && (!self.to_client || new_to_old);
        let servers = (!self.to_server || new_to_old) && (!self.to_client || old_to_new);
        (Compat::from_ok(clients), Compat::from_ok(servers))
    }
}

/// The flows of every enum and structure, keyed by `enum:Name` and `struct:Name`.
fn flows_of(iface: &Interface) -> BTreeMap<String, Flows> {
    let mut flows: BTreeMap<String, Flows> = BTreeMap::new();
    let mut lists: Vec<(&[Field], Flows)> = Vec::new();
    for m in &iface.methods {
        lists.push((&m.arguments, Flows::TO_SERVER));
        lists.push((&m.returns, Flows::TO_CLIENT));
    }
    for s in &iface.signals {
        lists.push((&s.fields, Flows::TO_CLIENT));
    }
    for p in &iface.properties {
        lists.push((&p.fields, property_flows(p)));
    }
    for c in &iface.commands {
        lists.push((&c.arguments, Flows::TO_SERVER));
    }
    for a in &iface.actions {
        lists.push((&a.goal, Flows::TO_SERVER));
        lists.push((&a.feedback, Flows::TO_CLIENT));
        lists.push((&a.result, Flows::TO_CLIENT));
    }
    for e in &iface.errors {
        lists.push((&e.fields, Flows::TO_CLIENT));
    }
    // Structures pass their flows on to what they hold; repeat until nothing grows (each round
    // adds at least one flow to one name, so this ends within twice the number of names).
    loop {
        let before = flows.clone();
        for (fields, flow) in &lists {
            for f in *fields {
                mark(&f.ty, *flow, &mut flows);
            }
        }
        for s in &iface.structs {
            if let Some(flow) = flows.get(&format!("struct:{}", s.name)).copied() {
                for f in &s.fields {
                    mark(&f.ty, flow, &mut flows);
                }
            }
        }
        if flows == before {
            return flows;
        }
    }
}

fn mark(ty: &Type, flow: Flows, flows: &mut BTreeMap<String, Flows>) {
    let key = match ty {
        Type::Enum { name } => format!("enum:{name}"),
        Type::Struct { name } => format!("struct:{name}"),
        Type::Array { item: inner } | Type::Map { value: inner } | Type::Optional { inner } => {
            return mark(inner, flow, flows);
        }
        _ => return,
    };
    let entry = flows.entry(key).or_default();
    *entry = entry.union(flow);
}

fn property_flows(p: &Property) -> Flows {
    if p.read_only { Flows::TO_CLIENT } else { Flows::BOTH }
}

/// Whether every value a sender of `from` writes decodes as `to` (JSON on the wire: names and
/// types matter, field order does not).
fn fits(from: &Type, to: &Type) -> bool {
    match (from, to) {
        _ if from == to => true,
        (Type::Optional { inner: a }, Type::Optional { inner: b }) => fits(a, b),
        (_, Type::Optional { inner }) => fits(from, inner),
        (Type::Integer { format: a }, Type::Integer { format: b }) => {
            let (a_min, a_max) = a.range();
            let (b_min, b_max) = b.range();
            b_min <= a_min && a_max <= b_max
        }
        (
            Type::Float { format: FloatFormat::Float32 },
            Type::Float { format: FloatFormat::Float64 },
        ) => true,
        (Type::DateTime | Type::Duration | Type::Binary, Type::String) => true,
        (Type::Array { item: a }, Type::Array { item: b }) => fits(a, b),
        (Type::Map { value: a }, Type::Map { value: b }) => fits(a, b),
        _ => false,
    }
}

/// `integer (int32)`, `optional string`, `array of struct Point`.
pub fn describe_type(ty: &Type) -> String {
    match ty {
        Type::Integer { format } => format!("integer ({})", format.name()),
        Type::Float { format: FloatFormat::Float32 } => "float (float32)".to_owned(),
        Type::Float { format: FloatFormat::Float64 } => "float (float64)".to_owned(),
        Type::Boolean => "boolean".to_owned(),
        Type::String => "string".to_owned(),
        Type::DateTime => "datetime".to_owned(),
        Type::Duration => "duration".to_owned(),
        Type::Binary => "binary".to_owned(),
        Type::Enum { name } => format!("enum {name}"),
        Type::Struct { name } => format!("struct {name}"),
        Type::Array { item } => format!("array of {}", describe_type(item)),
        Type::Map { value } => format!("map of {}", describe_type(value)),
        Type::Optional { inner } => format!("optional {}", describe_type(inner)),
    }
}

fn is_optional(ty: &Type) -> bool {
    matches!(ty, Type::Optional { .. })
}

/// How a list's fields are called in messages and paths.
#[derive(Clone, Copy)]
struct ListKind {
    /// The file key: `arguments`, `returnValues`, `payload`, `members`, ...
    key: &'static str,
    /// The noun for one field: `argument`, `return value`, `member`, ...
    noun: &'static str,
}

const ARGUMENTS: ListKind = ListKind { key: "arguments", noun: "argument" };
const RETURNS: ListKind = ListKind { key: "returnValues", noun: "return value" };
const PAYLOAD: ListKind = ListKind { key: "payload", noun: "value" };
const VALUES: ListKind = ListKind { key: "values", noun: "value" };
const MEMBERS: ListKind = ListKind { key: "members", noun: "member" };
const GOAL: ListKind = ListKind { key: "goal", noun: "goal field" };
const FEEDBACK: ListKind = ListKind { key: "feedback", noun: "feedback field" };
const RESULT: ListKind = ListKind { key: "result", noun: "result field" };

struct Differ {
    out: Vec<Change>,
    old_flows: BTreeMap<String, Flows>,
    new_flows: BTreeMap<String, Flows>,
}

impl Differ {
    fn push(
        &mut self,
        path: String,
        kind: ChangeKind,
        message: String,
        (clients, servers): (Compat, Compat),
    ) {
        let bump = match kind {
            _ if clients == Compat::Breaking => Bump::Major,
            ChangeKind::MemberRemoved
            | ChangeKind::FieldRemoved
            | ChangeKind::FieldsReordered
            | ChangeKind::EnumValueRemoved
            | ChangeKind::EnumValueRenamed
            | ChangeKind::ErrorUndeclared => Bump::Major,
            ChangeKind::DocumentationChanged | ChangeKind::MetadataChanged => Bump::Patch,
            _ => Bump::Minor,
        };
        self.out.push(Change { path, kind, message, clients, servers, bump });
    }

    /// The flows of an enum or structure in either version.
    fn flows(&self, key: &str) -> Flows {
        let old = self.old_flows.get(key).copied().unwrap_or_default();
        old.union(self.new_flows.get(key).copied().unwrap_or_default())
    }

    fn interface(&mut self, old: &Interface, new: &Interface) {
        const SAFE: (Compat, Compat) = (Compat::Safe, Compat::Safe);
        const BOTH_BREAK: (Compat, Compat) = (Compat::Breaking, Compat::Breaking);
        if old.name != new.name {
            self.push(
                "interface.name".into(),
                ChangeKind::InterfaceRenamed,
                format!("interface renamed from `{}` to `{}`", old.name, new.name),
                BOTH_BREAK,
            );
        }
        for (key, a, b) in [
            ("title", &old.title, &new.title),
            ("summary", &old.summary, &new.summary),
            ("documentation", &old.documentation, &new.documentation),
            ("license", &old.license, &new.license),
        ] {
            if a != b {
                self.push(
                    format!("interface.{key}"),
                    ChangeKind::DocumentationChanged,
                    format!("{key} changed"),
                    SAFE,
                );
            }
        }
        self.constants(old, new);
        self.members("enums", "enum", &old.enums, &new.enums, |e| &e.name, SAFE, Self::enum_def);
        self.members(
            "structures",
            "structure",
            &old.structs,
            &new.structs,
            |s| &s.name,
            SAFE,
            Self::struct_def,
        );
        self.members("errors", "error", &old.errors, &new.errors, |e| &e.name, SAFE, Self::error);
        let capability = (Compat::Safe, Compat::Breaking);
        self.members(
            "signals",
            "signal",
            &old.signals,
            &new.signals,
            |s| &s.name,
            capability,
            Self::signal,
        );
        self.members(
            "properties",
            "property",
            &old.properties,
            &new.properties,
            |p| &p.name,
            capability,
            Self::property,
        );
        self.members(
            "methods",
            "method",
            &old.methods,
            &new.methods,
            |m| &m.name,
            capability,
            Self::method,
        );
        self.members(
            "commands",
            "command",
            &old.commands,
            &new.commands,
            |c| &c.name,
            capability,
            Self::command,
        );
        self.members(
            "actions",
            "action",
            &old.actions,
            &new.actions,
            |a| &a.name,
            capability,
            Self::action,
        );
        if old.configuration != new.configuration {
            self.push(
                "configuration".into(),
                ChangeKind::ConfigurationChanged,
                "topic layout changed: MQTT peers of the two versions use different topics".into(),
                BOTH_BREAK,
            );
        }
    }

    /// Members of one section: added, removed, and the changes inside those in both.
    /// `added` is the verdict for an addition; a removal gets it mirrored.
    #[allow(clippy::too_many_arguments)]
    fn members<T>(
        &mut self,
        section: &str,
        noun: &str,
        old: &[T],
        new: &[T],
        name: impl Fn(&T) -> &String,
        added: (Compat, Compat),
        inner: impl Fn(&mut Self, &str, &T, &T),
    ) {
        for o in old {
            match new.iter().find(|n| name(n) == name(o)) {
                Some(n) => inner(self, &format!("{section}.{}", name(o)), o, n),
                None => self.push(
                    format!("{section}.{}", name(o)),
                    ChangeKind::MemberRemoved,
                    format!("{noun} removed"),
                    (added.1, added.0),
                ),
            }
        }
        for n in new {
            if !old.iter().any(|o| name(o) == name(n)) {
                self.push(
                    format!("{section}.{}", name(n)),
                    ChangeKind::MemberAdded,
                    format!("{noun} added"),
                    added,
                );
            }
        }
    }

    fn constants(&mut self, old: &Interface, new: &Interface) {
        const SAFE: (Compat, Compat) = (Compat::Safe, Compat::Safe);
        for o in &old.constants {
            let path = format!("constants.{}", o.name);
            match new.constants.iter().find(|n| n.name == o.name) {
                None => {
                    self.push(path, ChangeKind::MemberRemoved, "constant removed".into(), SAFE);
                }
                Some(n) => {
                    if n.value != o.value {
                        let show = |v: &crate::ConstantValue| {
                            serde_json::to_value(v)
                                .ok()
                                .and_then(|v| v.get("value").map(ToString::to_string))
                                .unwrap_or_default()
                        };
                        self.push(
                            path.clone(),
                            ChangeKind::ConstantChanged,
                            format!(
                                "constant changed from {} to {}",
                                show(&o.value),
                                show(&n.value)
                            ),
                            SAFE,
                        );
                    }
                    self.prose(&path, "description", &o.description, &n.description);
                }
            }
        }
        for n in &new.constants {
            if !old.constants.iter().any(|o| o.name == n.name) {
                self.push(
                    format!("constants.{}", n.name),
                    ChangeKind::MemberAdded,
                    "constant added".into(),
                    SAFE,
                );
            }
        }
    }

    fn prose(&mut self, path: &str, key: &str, old: &Option<String>, new: &Option<String>) {
        if old != new {
            self.push(
                format!("{path}.{key}"),
                ChangeKind::DocumentationChanged,
                format!("{key} changed"),
                (Compat::Safe, Compat::Safe),
            );
        }
    }

    fn metadata(
        &mut self,
        path: &str,
        (old_version, new_version): (&Option<String>, &Option<String>),
        (old_consumers, new_consumers): (&[String], &[String]),
    ) {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        if old_version != new_version {
            self.push(
                format!("{path}.version"),
                ChangeKind::MetadataChanged,
                format!("version changed from {} to {}", show(old_version), show(new_version)),
                (Compat::Safe, Compat::Safe),
            );
        }
        if old_consumers != new_consumers {
            self.push(
                format!("{path}.consumers"),
                ChangeKind::MetadataChanged,
                format!(
                    "consumers changed from [{}] to [{}]",
                    old_consumers.join(", "),
                    new_consumers.join(", ")
                ),
                (Compat::Safe, Compat::Safe),
            );
        }
    }

    /// The fields of one list, whose values travel as `flows`.
    fn fields(&mut self, path: &str, list: ListKind, old: &[Field], new: &[Field], flows: Flows) {
        let base = format!("{path}.{}", list.key);
        for o in old {
            let at = format!("{base}.{}", o.name);
            match new.iter().find(|n| n.name == o.name) {
                None => {
                    self.push(
                        at,
                        ChangeKind::FieldRemoved,
                        format!("{} removed ({})", list.noun, describe_type(&o.ty)),
                        // An old sender's extra key is ignored by a new receiver; an old
                        // receiver misses the value unless it was optional.
                        flows.verdicts(true, is_optional(&o.ty)),
                    );
                }
                Some(n) => {
                    if o.ty != n.ty {
                        self.push(
                            at.clone(),
                            ChangeKind::FieldTypeChanged,
                            format!(
                                "{} type changed from {} to {}",
                                list.noun,
                                describe_type(&o.ty),
                                describe_type(&n.ty)
                            ),
                            flows.verdicts(fits(&o.ty, &n.ty), fits(&n.ty, &o.ty)),
                        );
                    }
                    self.prose(&at, "description", &o.description, &n.description);
                }
            }
        }
        for n in new {
            if !old.iter().any(|o| o.name == n.name) {
                self.push(
                    format!("{base}.{}", n.name),
                    ChangeKind::FieldAdded,
                    format!("{} added ({})", list.noun, describe_type(&n.ty)),
                    flows.verdicts(is_optional(&n.ty), true),
                );
            }
        }
        let common = |a: &[Field], b: &[Field]| -> Vec<String> {
            a.iter()
                .filter(|f| b.iter().any(|g| g.name == f.name))
                .map(|f| f.name.clone())
                .collect()
        };
        let (old_order, new_order) = (common(old, new), common(new, old));
        if old_order != new_order {
            self.push(
                base,
                ChangeKind::FieldsReordered,
                format!(
                    "{}s reordered from ({}) to ({}); the wire does not care, generated \
                     signatures do",
                    list.noun,
                    old_order.join(", "),
                    new_order.join(", ")
                ),
                (Compat::Safe, Compat::Safe),
            );
        }
    }

    fn declared_errors(&mut self, path: &str, old: &[String], new: &[String]) {
        // An error a client does not declare still arrives, as an undeclared remote error
        // with its name and message, so neither direction breaks.
        for o in old.iter().filter(|o| !new.contains(o)) {
            self.push(
                format!("{path}.errors.{o}"),
                ChangeKind::ErrorUndeclared,
                "error no longer declared".into(),
                (Compat::Safe, Compat::Safe),
            );
        }
        for n in new.iter().filter(|n| !old.contains(n)) {
            self.push(
                format!("{path}.errors.{n}"),
                ChangeKind::ErrorDeclared,
                "error declared".into(),
                (Compat::Safe, Compat::Safe),
            );
        }
    }

    fn enum_def(&mut self, path: &str, old: &EnumDef, new: &EnumDef) {
        self.prose(path, "documentation", &old.documentation, &new.documentation);
        self.metadata(path, (&old.version, &new.version), (&[], &[]));
        let flows = self.flows(&format!("enum:{}", old.name));
        let mut renamed_from: BTreeSet<&str> = BTreeSet::new();
        for o in &old.values {
            let at = format!("{path}.values.{}", o.name);
            if let Some(n) = new.values.iter().find(|n| n.name == o.name) {
                if n.value != o.value {
                    self.push(
                        at.clone(),
                        ChangeKind::EnumValueRenumbered,
                        format!("value renumbered from {} to {}", o.value, n.value),
                        // Each side reads the other's integer as another value, or none.
                        flows.verdicts(false, false),
                    );
                }
                self.prose(&at, "description", &o.description, &n.description);
            } else if let Some(n) = new
                .values
                .iter()
                .find(|n| n.value == o.value && !old.values.iter().any(|x| x.name == n.name))
            {
                renamed_from.insert(&n.name);
                self.push(
                    at,
                    ChangeKind::EnumValueRenamed,
                    format!(
                        "value {} renamed to `{}`; the wire carries the integer",
                        o.value, n.name
                    ),
                    (Compat::Safe, Compat::Safe),
                );
            } else {
                self.push(
                    at,
                    ChangeKind::EnumValueRemoved,
                    format!("value {} removed", o.value),
                    // An old sender may still send it; a new sender never does.
                    flows.verdicts(false, true),
                );
            }
        }
        for n in &new.values {
            if !old.values.iter().any(|o| o.name == n.name) && !renamed_from.contains(&*n.name) {
                self.push(
                    format!("{path}.values.{}", n.name),
                    ChangeKind::EnumValueAdded,
                    format!("value {} added", n.value),
                    // An old receiver refuses a value it does not know.
                    flows.verdicts(true, false),
                );
            }
        }
    }

    fn struct_def(&mut self, path: &str, old: &StructDef, new: &StructDef) {
        self.prose(path, "documentation", &old.documentation, &new.documentation);
        self.metadata(path, (&old.version, &new.version), (&[], &[]));
        let flows = self.flows(&format!("struct:{}", old.name));
        self.fields(path, MEMBERS, &old.fields, &new.fields, flows);
    }

    fn error(&mut self, path: &str, old: &ErrorDef, new: &ErrorDef) {
        self.prose(path, "documentation", &old.documentation, &new.documentation);
        self.fields(path, VALUES, &old.fields, &new.fields, Flows::TO_CLIENT);
    }

    fn signal(&mut self, path: &str, old: &Signal, new: &Signal) {
        self.prose(path, "documentation", &old.documentation, &new.documentation);
        self.metadata(path, (&old.version, &new.version), (&old.consumers, &new.consumers));
        self.fields(path, PAYLOAD, &old.fields, &new.fields, Flows::TO_CLIENT);
    }

    fn property(&mut self, path: &str, old: &Property, new: &Property) {
        self.prose(path, "documentation", &old.documentation, &new.documentation);
        self.metadata(path, (&old.version, &new.version), (&old.consumers, &new.consumers));
        if old.read_only != new.read_only {
            let (message, verdicts) = if new.read_only {
                // Old clients may still try to set it.
                ("property made read-only", (Compat::Breaking, Compat::Safe))
            } else {
                // New clients may set it; an old server refuses.
                ("property made writable", (Compat::Safe, Compat::Breaking))
            };
            self.push(
                format!("{path}.readOnly"),
                ChangeKind::ReadOnlyChanged,
                message.into(),
                verdicts,
            );
        }
        let flows = property_flows(old).union(property_flows(new));
        self.fields(path, VALUES, &old.fields, &new.fields, flows);
    }

    fn method(&mut self, path: &str, old: &Method, new: &Method) {
        self.prose(path, "documentation", &old.documentation, &new.documentation);
        self.metadata(path, (&old.version, &new.version), (&old.consumers, &new.consumers));
        self.fields(path, ARGUMENTS, &old.arguments, &new.arguments, Flows::TO_SERVER);
        self.fields(path, RETURNS, &old.returns, &new.returns, Flows::TO_CLIENT);
        self.declared_errors(path, &old.errors, &new.errors);
        if old.timeout_secs != new.timeout_secs {
            let show =
                |t: Option<f64>| t.map_or_else(|| "the default".into(), |t| format!("{t} s"));
            self.push(
                format!("{path}.timeout"),
                ChangeKind::TimeoutChanged,
                format!(
                    "timeout changed from {} to {}",
                    show(old.timeout_secs),
                    show(new.timeout_secs)
                ),
                (Compat::Safe, Compat::Safe),
            );
        }
    }

    fn command(&mut self, path: &str, old: &Command, new: &Command) {
        self.prose(path, "documentation", &old.documentation, &new.documentation);
        self.metadata(path, (&old.version, &new.version), (&old.consumers, &new.consumers));
        self.fields(path, ARGUMENTS, &old.arguments, &new.arguments, Flows::TO_SERVER);
    }

    fn action(&mut self, path: &str, old: &Action, new: &Action) {
        self.prose(path, "documentation", &old.documentation, &new.documentation);
        self.metadata(path, (&old.version, &new.version), (&[], &[]));
        self.fields(path, GOAL, &old.goal, &new.goal, Flows::TO_SERVER);
        self.fields(path, FEEDBACK, &old.feedback, &new.feedback, Flows::TO_CLIENT);
        self.fields(path, RESULT, &old.result, &new.result, Flows::TO_CLIENT);
        self.declared_errors(path, &old.errors, &new.errors);
    }
}
