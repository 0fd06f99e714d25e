"""Wire encodings of the interface format's types (docs/interface-format.md, "Types and their JSON
encoding"), the same on every transport.

Generated code describes every field as ``(wire name, attribute, type)`` with the type objects
below; the runtime encodes Python values to JSON-ready values and decodes them back, checking
every value against its declared type and naming the offending field in errors.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import enum
import json
import math
import re
import struct
from collections.abc import Sequence
from typing import Any

from .errors import InvalidValueError

Fields = Sequence[tuple[str, str, "Type"]]


class Type:
    """A wire type: ``encode`` turns a Python value into JSON data, ``decode`` the reverse."""

    name = "value"

    def encode(self, value: Any, path: str) -> Any:
        raise NotImplementedError

    def decode(self, data: Any, path: str) -> Any:
        raise NotImplementedError


class Int(Type):
    def __init__(self, name: str, lo: int, hi: int) -> None:
        self.name, self.lo, self.hi = name, lo, hi

    def _check(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValueError(f"expected an integer ({self.name}), got {_show(value)}", path)
        if not self.lo <= value <= self.hi:
            raise InvalidValueError(
                f"{value} is out of range for {self.name} ({self.lo}..={self.hi})", path
            )
        return int(value)

    def encode(self, value: Any, path: str) -> Any:
        return self._check(value, path)

    def decode(self, data: Any, path: str) -> Any:
        return self._check(data, path)


class Float(Type):
    def __init__(self, name: str, limit: bool) -> None:
        self.name, self.limit = name, limit

    def _check(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidValueError(f"expected a number ({self.name}), got {_show(value)}", path)
        result = float(value)
        if not math.isfinite(result):
            raise InvalidValueError(f"{result} cannot be sent: JSON has no NaN or infinity", path)
        if self.limit:
            # A float32 is anything that rounds to a finite single-precision number; it is held
            # rounded, so that "3.4028235e38" from a Rust f32 reads back as f32::MAX.
            try:
                (result,) = struct.unpack("<f", struct.pack("<f", result))
            except OverflowError:
                raise InvalidValueError(f"{result} is out of range for {self.name}", path) from None
        return result

    def encode(self, value: Any, path: str) -> Any:
        return self._check(value, path)

    def decode(self, data: Any, path: str) -> Any:
        return self._check(data, path)


class Bool(Type):
    name = "boolean"

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, bool):
            raise InvalidValueError(f"expected a boolean, got {_show(value)}", path)
        return value

    def decode(self, data: Any, path: str) -> Any:
        return self.encode(data, path)


class String(Type):
    name = "string"

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise InvalidValueError(f"expected a string, got {_show(value)}", path)
        return value

    def decode(self, data: Any, path: str) -> Any:
        return self.encode(data, path)


_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def format_datetime(value: _dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in UTC; a naive datetime is taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.year < 1000:
        text = f"{value.year:04d}" + text[text.index("-") :]
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_datetime(text: str) -> _dt.datetime:
    """Parses a timestamp; offsets are converted to UTC, no offset means UTC.

    Fractions finer than a microsecond are truncated (Python's resolution).
    """
    match = _DATETIME.match(text)
    if not match:
        raise ValueError(f"`{text}` is not a timestamp like 2024-01-31T12:00:00Z")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    tz = _dt.timezone.utc
    if offset and offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    value = _dt.datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz
    )
    return value.astimezone(_dt.timezone.utc)


class DateTime(Type):
    name = "datetime"

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, _dt.datetime):
            raise InvalidValueError(f"expected a datetime.datetime, got {_show(value)}", path)
        return format_datetime(value)

    def decode(self, data: Any, path: str) -> Any:
        if not isinstance(data, str):
            raise InvalidValueError(f"expected a timestamp string, got {_show(data)}", path)
        try:
            return parse_datetime(data)
        except (ValueError, OverflowError) as error:
            raise InvalidValueError(str(error), path) from None


_DURATION = re.compile(
    r"([+-])?P(?:(\d+(?:[.,]\d+)?)W)?(?:(\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$"
)


def format_duration(value: _dt.timedelta) -> str:
    """An ISO 8601 duration such as ``PT1.5S``, ``PT2M3S``, ``P1DT2H``, ``PT0S`` or ``-PT1S``."""
    total = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86_400_000_000)
    hours, rest = divmod(rest, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, micros = divmod(rest, 1_000_000)
    text = f"{sign}P"
    if days:
        text += f"{days}D"
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if seconds or micros:
        time += f"{seconds}.{micros:06d}".rstrip("0").rstrip(".") + "S"
    if time:
        text += "T" + time
    elif not days:
        text += "T0S"
    return text


def parse_duration(text: str) -> _dt.timedelta:
    """Parses an ISO 8601 duration with weeks, days, hours, minutes and seconds."""
    match = _DURATION.match(text)
    if not match or text.endswith(("P", "T")):
        raise ValueError(f"`{text}` is not an ISO 8601 duration like PT1.5S")
    sign, weeks, days, hours, minutes, seconds = match.groups()

    def number(part: str | None) -> float:
        return float(part.replace(",", ".")) if part else 0.0

    whole_seconds, _, fraction = (seconds or "0").replace(",", ".").partition(".")
    value = _dt.timedelta(
        weeks=number(weeks),
        days=number(days),
        hours=number(hours),
        minutes=number(minutes),
        seconds=int(whole_seconds),
        microseconds=int(fraction[:6].ljust(6, "0")) if fraction else 0,
    )
    return -value if sign == "-" else value


class Duration(Type):
    name = "duration"

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, _dt.timedelta):
            raise InvalidValueError(f"expected a datetime.timedelta, got {_show(value)}", path)
        return format_duration(value)

    def decode(self, data: Any, path: str) -> Any:
        if not isinstance(data, str):
            raise InvalidValueError(f"expected a duration string, got {_show(data)}", path)
        try:
            return parse_duration(data)
        except (ValueError, OverflowError) as error:
            raise InvalidValueError(str(error), path) from None


class Binary(Type):
    name = "binary"

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidValueError(f"expected bytes, got {_show(value)}", path)
        return base64.b64encode(bytes(value)).decode("ascii")

    def decode(self, data: Any, path: str) -> Any:
        if not isinstance(data, str):
            raise InvalidValueError(f"expected a base64 string, got {_show(data)}", path)
        try:
            return base64.b64decode(data.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise InvalidValueError("not padded standard base64", path) from None


class Enum(Type):
    def __init__(self, cls: type[enum.IntEnum]) -> None:
        self.cls = cls
        self.name = cls.__name__

    def encode(self, value: Any, path: str) -> Any:
        if isinstance(value, self.cls):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return int(self.decode(value, path))
        raise InvalidValueError(f"expected a {self.name}, got {_show(value)}", path)

    def decode(self, data: Any, path: str) -> Any:
        if isinstance(data, bool) or not isinstance(data, int):
            raise InvalidValueError(f"expected a {self.name} integer, got {_show(data)}", path)
        try:
            return self.cls(data)
        except ValueError:
            raise InvalidValueError(f"{data} is not a value of {self.name}", path) from None


class Struct(Type):
    """A generated dataclass whose class attribute ``_sb_fields`` lists its fields."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.name = cls.__name__

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, self.cls):
            raise InvalidValueError(f"expected a {self.name}, got {_show(value)}", path)
        return encode_fields(self.cls._sb_fields, value, path)  # type: ignore[attr-defined]

    def decode(self, data: Any, path: str) -> Any:
        fields = self.cls._sb_fields  # type: ignore[attr-defined]
        return self.cls(**decode_fields(fields, data, path))


class Optional_(Type):
    def __init__(self, inner: Type) -> None:
        self.inner = inner
        self.name = f"optional {inner.name}"

    def encode(self, value: Any, path: str) -> Any:
        return None if value is None else self.inner.encode(value, path)

    def decode(self, data: Any, path: str) -> Any:
        return None if data is None else self.inner.decode(data, path)


class List_(Type):
    def __init__(self, item: Type) -> None:
        self.item = item
        self.name = f"array of {item.name}"

    def encode(self, value: Any, path: str) -> Any:
        if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
            raise InvalidValueError(f"expected a list, got {_show(value)}", path)
        return [self.item.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def decode(self, data: Any, path: str) -> Any:
        if not isinstance(data, list):
            raise InvalidValueError(f"expected an array, got {_show(data)}", path)
        return [self.item.decode(v, f"{path}[{i}]") for i, v in enumerate(data)]


class Map_(Type):
    def __init__(self, value: Type) -> None:
        self.value = value
        self.name = f"map of {value.name}"

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise InvalidValueError(f"expected a dict, got {_show(value)}", path)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValueError(f"map keys must be strings, got {_show(key)}", path)
            out[key] = self.value.encode(item, f"{path}[{key!r}]")
        return out

    def decode(self, data: Any, path: str) -> Any:
        if not isinstance(data, dict):
            raise InvalidValueError(f"expected an object, got {_show(data)}", path)
        return {k: self.value.decode(v, f"{path}[{k!r}]") for k, v in data.items()}


INT8 = Int("int8", -(2**7), 2**7 - 1)
INT16 = Int("int16", -(2**15), 2**15 - 1)
INT32 = Int("int32", -(2**31), 2**31 - 1)
INT64 = Int("int64", -(2**63), 2**63 - 1)
UINT8 = Int("uint8", 0, 2**8 - 1)
UINT16 = Int("uint16", 0, 2**16 - 1)
UINT32 = Int("uint32", 0, 2**32 - 1)
UINT64 = Int("uint64", 0, 2**64 - 1)
FLOAT32 = Float("float32", True)
FLOAT64 = Float("float64", False)
BOOLEAN = Bool()
STRING = String()
DATETIME = DateTime()
DURATION = Duration()
BINARY = Binary()


def optional(inner: Type) -> Type:
    return Optional_(inner)


def array(item: Type) -> Type:
    return List_(item)


def map_of(value: Type) -> Type:
    return Map_(value)


def enum_of(cls: type[enum.IntEnum]) -> Type:
    return Enum(cls)


def struct_of(cls: type) -> Type:
    return Struct(cls)


def encode_fields(fields: Fields, value: Any, path: str) -> dict[str, Any]:
    """Encodes the attributes of ``value`` named by ``fields`` into a JSON object."""
    return {
        wire: ty.encode(getattr(value, attr), f"{path}.{wire}" if path else wire)
        for wire, attr, ty in fields
    }


def encode_values(fields: Fields, values: Sequence[Any], path: str) -> dict[str, Any]:
    """Encodes positional ``values`` (one per field) into a JSON object."""
    return {
        wire: ty.encode(v, f"{path}.{wire}" if path else wire)
        for (wire, _, ty), v in zip(fields, values)
    }


def decode_fields(fields: Fields, data: Any, path: str) -> dict[str, Any]:
    """Decodes a JSON object into ``{attribute: value}``; absent optional keys become ``None``.

    Keys no field has are ignored: a peer of a newer version of the interface may send more
    (docs/interface-format.md, "Compatibility between versions").
    """
    if not isinstance(data, dict):
        raise InvalidValueError(f"expected an object, got {_show(data)}", path)
    out: dict[str, Any] = {}
    for wire, attr, ty in fields:
        where = f"{path}.{wire}" if path else wire
        if wire not in data:
            if isinstance(ty, Optional_):
                out[attr] = None
                continue
            raise InvalidValueError("missing", where)
        out[attr] = ty.decode(data[wire], where)
    return out


def decode_values(fields: Fields, data: Any, path: str) -> list[Any]:
    """Decodes a JSON object into a list of values, one per field, in order."""
    decoded = decode_fields(fields, data, path)
    return [decoded[attr] for _, attr, _ in fields]


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON, as every switchboard peer sends it."""
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except ValueError as error:
        raise InvalidValueError(str(error)) from None


def loads(payload: bytes) -> Any:
    """Parses a JSON payload; an empty payload is an empty object."""
    if not payload:
        return {}
    return json.loads(payload.decode("utf-8"))


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
