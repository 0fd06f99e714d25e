"""Descriptions of an interface's members, which generated code builds and the runtime reads."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _codec
from .errors import DeclaredError, InvalidValueError, RemoteError

Fields = _codec.Fields


@dataclass(frozen=True)
class Shape:
    """A list of wire fields and how Python holds them.

    ``bare`` means the Python value is the single field's value itself; otherwise it is an
    instance of ``cls`` (a generated dataclass), or ``None`` for "no values".
    """

    fields: Fields
    cls: type | None = None
    bare: bool = False

    def to_wire(self, value: Any, path: str) -> dict[str, Any]:
        if self.bare:
            return _codec.encode_values(self.fields, [value], path)
        if self.cls is None:
            return {}
        if not isinstance(value, self.cls):
            raise InvalidValueError(
                f"expected a {self.cls.__name__}, got {type(value).__name__}", path
            )
        return _codec.encode_fields(self.fields, value, path)

    def from_wire(self, data: Any, path: str) -> Any:
        values = _codec.decode_fields(self.fields, data, path)
        if self.bare:
            return values[self.fields[0][1]]
        if self.cls is None:
            return None
        return self.cls(**values)

    def args_to_wire(self, values: list[Any], path: str) -> dict[str, Any]:
        return _codec.encode_values(self.fields, values, path)

    def args_from_wire(self, data: Any, path: str) -> list[Any]:
        return _codec.decode_values(self.fields, data, path)

    def keywords(self, values: list[Any]) -> dict[str, Any]:
        """``{attribute: value}`` for ``values`` in field order, to build ``cls`` by keyword."""
        return {attr: value for (_, attr, _), value in zip(self.fields, values)}


def shape(fields: Fields, cls: type | None = None) -> Shape:
    """A shape that is bare for exactly one field without a class, else held by ``cls``."""
    return Shape(tuple(fields), cls, bare=cls is None and len(fields) == 1)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    attr: str
    args: Shape
    returns: Shape
    errors: Mapping[str, type[DeclaredError]] = field(default_factory=dict)
    timeout: float | None = None


@dataclass(frozen=True)
class PropertySpec:
    name: str
    attr: str
    value: Shape
    read_only: bool = False


@dataclass(frozen=True)
class SignalSpec:
    name: str
    attr: str
    value: Shape


@dataclass(frozen=True)
class CommandSpec:
    name: str
    attr: str
    args: Shape


@dataclass(frozen=True)
class ActionSpec:
    name: str
    attr: str
    goal: Shape
    goal_cls: type | None
    feedback: Shape
    result: Shape
    errors: Mapping[str, type[DeclaredError]] = field(default_factory=dict)


@dataclass(frozen=True)
class InterfaceSpec:
    name: str
    version: str
    hash: str
    methods: Mapping[str, MethodSpec] = field(default_factory=dict)
    properties: Mapping[str, PropertySpec] = field(default_factory=dict)
    signals: Mapping[str, SignalSpec] = field(default_factory=dict)
    commands: Mapping[str, CommandSpec] = field(default_factory=dict)
    actions: Mapping[str, ActionSpec] = field(default_factory=dict)
    #: The interface's title (its name when the file gives none), for MQTT discovery.
    title: str = ""
    #: The interface description (JSON text) a server publishes on the MQTT schema topic.
    description: str = "{}"
    #: Extra MQTT topic placeholders (``configuration.topic_params``).
    topic_params: tuple[str, ...] = ()
    #: MQTT topic template overrides keyed by kind (``signals``, ``methodRequests``, ...).
    topics: Mapping[str, str] = field(default_factory=dict)

    def parsed_description(self) -> dict[str, Any] | None:
        """The description as a JSON object, for handshakes; ``None`` when the generated code
        carries none (code generated before descriptions, which has ``{}``)."""
        cached = self.__dict__.get("_parsed_description", False)
        if cached is False:
            try:
                cached = _codec.loads(self.description.encode())
            except ValueError:
                cached = None
            if not isinstance(cached, dict) or not cached:
                cached = None
            object.__setattr__(self, "_parsed_description", cached)
        return cached  # type: ignore[no-any-return]


def interface(
    name: str,
    version: str,
    hash: str,
    *,
    methods: list[MethodSpec] = [],  # noqa: B006
    properties: list[PropertySpec] = [],  # noqa: B006
    signals: list[SignalSpec] = [],  # noqa: B006
    commands: list[CommandSpec] = [],  # noqa: B006
    actions: list[ActionSpec] = [],  # noqa: B006
    title: str = "",
    description: str = "{}",
    topic_params: list[str] = [],  # noqa: B006
    topics: dict[str, str] = {},  # noqa: B006
) -> InterfaceSpec:
    return InterfaceSpec(
        name,
        version,
        hash,
        {m.name: m for m in methods},
        {p.name: p for p in properties},
        {s.name: s for s in signals},
        {c.name: c for c in commands},
        {a.name: a for a in actions},
        title or name,
        description,
        tuple(topic_params),
        dict(topics),
    )


def to_declared(error: RemoteError, declared: Mapping[str, type[DeclaredError]]) -> RemoteError:
    """Turns a remote error whose name is a declared error into that error's class, with fields."""
    cls = declared.get(error.name)
    if cls is None or isinstance(error, DeclaredError):
        return error
    try:
        values = _codec.decode_fields(cls._sb_fields, error.details or {}, error.name)
    except InvalidValueError:
        return error
    result: RemoteError = cls(**values, message=error.message)
    result.details = error.details
    return result


class GoalStatus(str, enum.Enum):
    """Where a goal is in its life."""

    ACCEPTED = "accepted"
    EXECUTING = "executing"
    CANCELING = "canceling"
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    FAILED = "failed"
    REJECTED = "rejected"

    @property
    def is_end(self) -> bool:
        return self in (GoalStatus.SUCCEEDED, GoalStatus.CANCELLED, GoalStatus.FAILED)
