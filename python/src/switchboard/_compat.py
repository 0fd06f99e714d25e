"""Whether a client and a server of two versions of an interface can talk.

A second implementation, written from docs/interface-format.md ("Compatibility between
versions"), of the classifier the Rust runtime uses (``switchboard_idl::diff``): it lists the
changes from one interface description (the JSON introspection answers with) to another, with
whether each breaks clients built from the first against a server built from the second, and
whether it breaks servers built from the first serving clients built from the second. Prose and
metadata are safe both ways and are not listed. :func:`check` applies it to two handshakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ErrorCode, IncompatibleInterfaceError, RemoteError

#: The integer range of each integer ``format``.
_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}

#: The member sections a client uses, with the noun for one member and the error a server
#: answers for a member it does not have.
MEMBER_KINDS = {
    "signals": ("signal", "UnknownSignal"),
    "properties": ("property", "UnknownProperty"),
    "methods": ("method", "UnknownMethod"),
    "commands": ("command", "UnknownCommand"),
    "actions": ("action", "UnknownAction"),
}


@dataclass(frozen=True)
class Change:
    """One difference between two descriptions that matters on the wire."""

    #: Where, as dotted file keys: ``methods.setTarget.arguments.celsius``.
    path: str
    #: ``member_removed``, ``field_type_changed``, ... (the Rust ``ChangeKind`` names).
    kind: str
    #: What changed, for people.
    message: str
    #: Clients of the old description keep working against a server of the new one.
    clients_ok: bool
    #: Servers of the old description keep serving clients of the new one.
    servers_ok: bool


class _Flows:
    """Which way the values of a list, enum or structure travel."""

    __slots__ = ("to_client", "to_server")

    def __init__(self, to_server: bool = False, to_client: bool = False) -> None:
        self.to_server, self.to_client = to_server, to_client

    def union(self, other: _Flows) -> _Flows:
        return _Flows(self.to_server or other.to_server, self.to_client or other.to_client)

    def verdicts(self, old_to_new: bool, new_to_old: bool) -> tuple[bool, bool]:
        """(clients, servers) for a change whose values decode from an old writer at a new
        reader (``old_to_new``) and from a new writer at an old reader (``new_to_old``)."""
        clients = (not self.to_server or old_to_new) and (not self.to_client or new_to_old)
        servers = (not self.to_server or new_to_old) and (not self.to_client or old_to_new)
        return clients, servers


_TO_SERVER = _Flows(to_server=True)
_TO_CLIENT = _Flows(to_client=True)


def _list(value: Any, key: str) -> list[Any]:
    found = value.get(key) if isinstance(value, dict) else None
    return [v for v in found if isinstance(v, dict)] if isinstance(found, list) else []


def _property_flows(prop: dict[str, Any]) -> _Flows:
    return _TO_CLIENT if prop.get("read_only") else _Flows(True, True)


def _flows_of(iface: dict[str, Any]) -> dict[str, _Flows]:
    """The flows of every enum and structure, keyed ``enum:Name`` and ``struct:Name``."""
    lists: list[tuple[list[Any], _Flows]] = []
    for m in _list(iface, "methods"):
        lists += [(_list(m, "arguments"), _TO_SERVER), (_list(m, "returns"), _TO_CLIENT)]
    for s in _list(iface, "signals"):
        lists.append((_list(s, "fields"), _TO_CLIENT))
    for p in _list(iface, "properties"):
        lists.append((_list(p, "fields"), _property_flows(p)))
    for c in _list(iface, "commands"):
        lists.append((_list(c, "arguments"), _TO_SERVER))
    for a in _list(iface, "actions"):
        lists.append((_list(a, "goal"), _TO_SERVER))
        lists += [(_list(a, "feedback"), _TO_CLIENT), (_list(a, "result"), _TO_CLIENT)]
    for e in _list(iface, "errors"):
        lists.append((_list(e, "fields"), _TO_CLIENT))
    flows: dict[str, _Flows] = {}

    def mark(ty: Any, flow: _Flows) -> None:
        while isinstance(ty, dict) and ty.get("kind") in ("array", "map", "optional"):
            ty = ty.get({"array": "item", "map": "value", "optional": "inner"}[ty["kind"]])
        if isinstance(ty, dict) and ty.get("kind") in ("enum", "struct"):
            key = f"{ty['kind']}:{ty.get('name')}"
            flows[key] = flows.get(key, _Flows()).union(flow)

    # Structures pass their flows on to what they hold: repeat until nothing grows.
    while True:
        before = {k: (v.to_server, v.to_client) for k, v in flows.items()}
        for fields, flow in lists:
            for f in fields:
                mark(f.get("type"), flow)
        for s in _list(iface, "structs"):
            held = flows.get(f"struct:{s.get('name')}")
            if held is not None:
                for f in _list(s, "fields"):
                    mark(f.get("type"), held)
        if {k: (v.to_server, v.to_client) for k, v in flows.items()} == before:
            return flows


def _fits(src: Any, dst: Any) -> bool:
    """Whether every value a writer of type ``src`` sends decodes as type ``dst``."""
    if src == dst:
        return True
    if not isinstance(src, dict) or not isinstance(dst, dict):
        return False
    a, b = src.get("kind"), dst.get("kind")
    if a == "optional" and b == "optional":
        return _fits(src.get("inner"), dst.get("inner"))
    if b == "optional":
        return _fits(src, dst.get("inner"))
    if a == b == "integer":
        ra, rb = _RANGES.get(src.get("format", "")), _RANGES.get(dst.get("format", ""))
        return ra is not None and rb is not None and rb[0] <= ra[0] and ra[1] <= rb[1]
    if a == b == "float":
        return src.get("format") == "float32" and dst.get("format") == "float64"
    if a in ("date_time", "duration", "binary") and b == "string":
        return True
    if a == b == "array":
        return _fits(src.get("item"), dst.get("item"))
    if a == b == "map":
        return _fits(src.get("value"), dst.get("value"))
    return False


def describe_type(ty: Any) -> str:
    """``integer (int32)``, ``optional string``, ``array of struct Point``."""
    if not isinstance(ty, dict):
        return "unknown"
    kind = ty.get("kind")
    if kind in ("integer", "float"):
        return f"{kind} ({ty.get('format')})"
    if kind == "date_time":
        return "datetime"
    if kind in ("enum", "struct"):
        return f"{kind} {ty.get('name')}"
    if kind == "array":
        return f"array of {describe_type(ty.get('item'))}"
    if kind == "map":
        return f"map of {describe_type(ty.get('value'))}"
    if kind == "optional":
        return f"optional {describe_type(ty.get('inner'))}"
    return str(kind)


def _is_optional(ty: Any) -> bool:
    return isinstance(ty, dict) and ty.get("kind") == "optional"


class _Differ:
    def __init__(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.out: list[Change] = []
        self.old_flows, self.new_flows = _flows_of(old), _flows_of(new)

    def push(self, path: str, kind: str, message: str, verdicts: tuple[bool, bool]) -> None:
        self.out.append(Change(path, kind, message, verdicts[0], verdicts[1]))

    def flows(self, key: str) -> _Flows:
        return self.old_flows.get(key, _Flows()).union(self.new_flows.get(key, _Flows()))

    def interface(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if old.get("name") != new.get("name"):
            self.push(
                "interface.name",
                "interface_renamed",
                f"interface renamed from `{old.get('name')}` to `{new.get('name')}`",
                (False, False),
            )
        # Constants never travel, definitions travel only through the lists that use them.
        self.members("enums", "enum", old, new, (True, True), self.enum_def)
        self.members("structures", "structure", old, new, (True, True), self.struct_def,
                     key="structs")
        self.members("errors", "error", old, new, (True, True), self.error_def)
        # A member added is safe for old clients (they never use it) and breaks old servers.
        for section in MEMBER_KINDS:
            self.members(section, MEMBER_KINDS[section][0], old, new, (True, False),
                         getattr(self, section))
        if old.get("configuration") != new.get("configuration"):
            self.push(
                "configuration",
                "configuration_changed",
                "topic layout changed: MQTT peers of the two versions use different topics",
                (False, False),
            )

    def members(
        self,
        section: str,
        noun: str,
        old_iface: dict[str, Any],
        new_iface: dict[str, Any],
        added: tuple[bool, bool],
        inner: Callable[[str, dict[str, Any], dict[str, Any]], None],
        key: str = "",
    ) -> None:
        old, new = _list(old_iface, key or section), _list(new_iface, key or section)
        new_by_name = {n.get("name"): n for n in new}
        old_names = {o.get("name") for o in old}
        for o in old:
            path = f"{section}.{o.get('name')}"
            n = new_by_name.get(o.get("name"))
            if n is not None:
                inner(path, o, n)
            else:
                # Removing mirrors adding.
                self.push(path, "member_removed", f"{noun} removed", (added[1], added[0]))
        for n in new:
            if n.get("name") not in old_names:
                self.push(f"{section}.{n.get('name')}", "member_added", f"{noun} added", added)

    def fields(self, path: str, key: str, noun: str, old: list[Any], new: list[Any],
               flows: _Flows) -> None:
        base = f"{path}.{key}"
        new_by_name = {n.get("name"): n for n in new}
        old_names = {o.get("name") for o in old}
        for o in old:
            at = f"{base}.{o.get('name')}"
            n = new_by_name.get(o.get("name"))
            if n is None:
                # An old writer's extra key is ignored by a new reader; an old reader misses the
                # value unless it was optional.
                self.push(at, "field_removed", f"{noun} removed ({describe_type(o.get('type'))})",
                          flows.verdicts(True, _is_optional(o.get("type"))))
            elif o.get("type") != n.get("type"):
                self.push(
                    at,
                    "field_type_changed",
                    f"{noun} type changed from {describe_type(o.get('type'))} to "
                    f"{describe_type(n.get('type'))}",
                    flows.verdicts(_fits(o.get("type"), n.get("type")),
                                   _fits(n.get("type"), o.get("type"))),
                )
        for n in new:
            if n.get("name") not in old_names:
                self.push(f"{base}.{n.get('name')}", "field_added",
                          f"{noun} added ({describe_type(n.get('type'))})",
                          flows.verdicts(_is_optional(n.get("type")), True))

    def enum_def(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        flows = self.flows(f"enum:{old.get('name')}")
        old_values, new_values = _list(old, "values"), _list(new, "values")
        old_names = {v.get("name") for v in old_values}
        renamed_to: set[Any] = set()
        for o in old_values:
            at = f"{path}.values.{o.get('name')}"
            same = next((n for n in new_values if n.get("name") == o.get("name")), None)
            if same is not None:
                if same.get("value") != o.get("value"):
                    # Each side reads the other's integer as another value, or none.
                    self.push(at, "enum_value_renumbered",
                              f"value renumbered from {o.get('value')} to {same.get('value')}",
                              flows.verdicts(False, False))
                continue
            renamed = next(
                (n for n in new_values
                 if n.get("value") == o.get("value") and n.get("name") not in old_names),
                None,
            )
            if renamed is not None:
                renamed_to.add(renamed.get("name"))
                self.push(at, "enum_value_renamed",
                          f"value {o.get('value')} renamed to `{renamed.get('name')}`; "
                          "the wire carries the integer", (True, True))
            else:
                # An old writer may still send it; a new writer never does.
                self.push(at, "enum_value_removed", f"value {o.get('value')} removed",
                          flows.verdicts(False, True))
        for n in new_values:
            if n.get("name") not in old_names and n.get("name") not in renamed_to:
                # An old reader refuses a value it does not know.
                self.push(f"{path}.values.{n.get('name')}", "enum_value_added",
                          f"value {n.get('value')} added", flows.verdicts(True, False))

    def struct_def(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        flows = self.flows(f"struct:{old.get('name')}")
        self.fields(path, "members", "member", _list(old, "fields"), _list(new, "fields"), flows)

    def error_def(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.fields(path, "values", "value", _list(old, "fields"), _list(new, "fields"),
                    _TO_CLIENT)

    def signals(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.fields(path, "payload", "value", _list(old, "fields"), _list(new, "fields"),
                    _TO_CLIENT)

    def properties(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        if bool(old.get("read_only")) != bool(new.get("read_only")):
            if new.get("read_only"):
                # Old clients may still try to set it.
                self.push(f"{path}.readOnly", "read_only_changed", "property made read-only",
                          (False, True))
            else:
                # New clients may set it; an old server refuses.
                self.push(f"{path}.readOnly", "read_only_changed", "property made writable",
                          (True, False))
        flows = _property_flows(old).union(_property_flows(new))
        self.fields(path, "values", "value", _list(old, "fields"), _list(new, "fields"), flows)

    def methods(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.fields(path, "arguments", "argument", _list(old, "arguments"),
                    _list(new, "arguments"), _TO_SERVER)
        self.fields(path, "returnValues", "return value", _list(old, "returns"),
                    _list(new, "returns"), _TO_CLIENT)

    def commands(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.fields(path, "arguments", "argument", _list(old, "arguments"),
                    _list(new, "arguments"), _TO_SERVER)

    def actions(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.fields(path, "goal", "goal field", _list(old, "goal"), _list(new, "goal"),
                    _TO_SERVER)
        self.fields(path, "feedback", "feedback field", _list(old, "feedback"),
                    _list(new, "feedback"), _TO_CLIENT)
        self.fields(path, "result", "result field", _list(old, "result"), _list(new, "result"),
                    _TO_CLIENT)


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every change from ``old`` to ``new`` that matters on the wire, in the order of the file
    format's sections (the order ``switchboard diff`` lists them in)."""
    differ = _Differ(old, new)
    differ.interface(old, new)
    return differ.out


def short_hash(hash: Any) -> str:
    """``sha256:`` and the first 12 hex digits, for messages people read."""
    text = str(hash)
    return f"sha256:{text.removeprefix('sha256:')[:12]}"


def summary(hello: dict[str, Any]) -> str:
    """``Thermostat 1.2.0 (sha256:ab12cd34ef56)``, for messages."""
    hash = hello.get("hash")
    which = short_hash(hash) if isinstance(hash, str) else "any hash"
    return f"{hello.get('interface')} {hello.get('version', '')} ({which})"


def readable(description: Any) -> bool:
    """Whether ``description`` looks like an interface description this module can compare."""
    return (
        isinstance(description, dict)
        and isinstance(description.get("name"), str)
        and all(isinstance(description.get(k, []), list) for k in (
            "enums", "structs", "errors", "signals", "properties", "methods", "commands",
            "actions",
        ))
    )


def check(client: dict[str, Any], server: dict[str, Any]) -> set[tuple[str, str]]:
    """Whether a server whose handshake says ``server`` serves a client that says ``client``.

    Both are Hello documents (``interface``, ``version``, ``hash``, optional ``description``).
    Returns the members, as ``(section, name)``, that the client has and the server lacks.
    Raises :class:`IncompatibleInterfaceError` naming both sides, and the first breaking change
    when the descriptions were compared.
    """
    mismatch = f"client was generated from {summary(client)}, server serves {summary(server)}"
    if client.get("interface") != server.get("interface"):
        raise IncompatibleInterfaceError(mismatch)
    ours, theirs = client.get("hash"), server.get("hash")
    if ours is None or theirs is None or ours == theirs:
        return set()
    mine, other = client.get("description"), server.get("description")
    if not isinstance(mine, dict) or not isinstance(other, dict):
        raise IncompatibleInterfaceError(mismatch)
    if not readable(mine) or not readable(other):
        raise IncompatibleInterfaceError(mismatch)
    lacking: set[tuple[str, str]] = set()
    for change in compare(mine, other):
        if change.clients_ok:
            continue
        section, _, name = change.path.partition(".")
        if change.kind == "member_removed" and section in MEMBER_KINDS and "." not in name:
            lacking.add((section, name))
            continue
        raise IncompatibleInterfaceError(
            f"{mismatch}, and the change at `{change.path}` breaks this client: {change.message}"
        )
    return lacking


def refusal(section: str, name: str, server_summary: str) -> RemoteError:
    """The error a use of a member the server lacks fails with, before anything is sent."""
    noun, error_name = MEMBER_KINDS[section]
    return RemoteError(
        ErrorCode.METHOD_NOT_FOUND,
        error_name,
        f"the server serves {server_summary}, which has no {noun} `{name}`; nothing was sent",
    )
