"""Exceptions raised by the switchboard runtime and by generated code."""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.IntEnum):
    """The error code numbers every switchboard transport uses (StingerIPC's ``ReturnCode``)."""

    SUCCESS = 0
    CLIENT_ERROR = 1
    SERVER_ERROR = 2
    TRANSPORT_ERROR = 3
    PAYLOAD_ERROR = 4
    CLIENT_SERIALIZATION_ERROR = 5
    CLIENT_DESERIALIZATION_ERROR = 6
    SERVER_SERIALIZATION_ERROR = 7
    SERVER_DESERIALIZATION_ERROR = 8
    METHOD_NOT_FOUND = 9
    UNAUTHORIZED = 10
    TIMEOUT = 11
    OUT_OF_SYNC = 12
    UNKNOWN_ERROR = 13
    NOT_IMPLEMENTED = 14
    SERVICE_UNAVAILABLE = 15

    @classmethod
    def from_int(cls, value: int) -> ErrorCode:
        """Reads a code number; numbers outside 0–15 become ``UNKNOWN_ERROR``."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN_ERROR


#: The error name a server uses for a code when the error has no name of its own.
CODE_NAMES = {
    ErrorCode.CLIENT_ERROR: "ApplicationError",
    ErrorCode.SERVER_ERROR: "Internal",
    ErrorCode.TRANSPORT_ERROR: "TransportError",
    ErrorCode.PAYLOAD_ERROR: "PayloadError",
    ErrorCode.CLIENT_SERIALIZATION_ERROR: "ClientSerializationError",
    ErrorCode.CLIENT_DESERIALIZATION_ERROR: "ClientDeserializationError",
    ErrorCode.SERVER_SERIALIZATION_ERROR: "ServerSerializationError",
    ErrorCode.SERVER_DESERIALIZATION_ERROR: "InvalidArguments",
    ErrorCode.METHOD_NOT_FOUND: "UnknownMethod",
    ErrorCode.UNAUTHORIZED: "AccessDenied",
    ErrorCode.TIMEOUT: "Timeout",
    ErrorCode.OUT_OF_SYNC: "OutOfSync",
    ErrorCode.UNKNOWN_ERROR: "UnknownError",
    ErrorCode.NOT_IMPLEMENTED: "NotImplemented",
    ErrorCode.SERVICE_UNAVAILABLE: "ServiceUnavailable",
}

#: What a client sees when a handler failed; nothing about the failure crosses the wire.
INTERNAL_MESSAGE = "the server failed while handling the request"


class SwitchboardError(Exception):
    """Base class of every exception the runtime raises."""


class InvalidValueError(SwitchboardError, ValueError):
    """A value does not fit its declared type (raised before anything is sent, or on decoding)."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class TransportError(SwitchboardError):
    """The transport failed: no server, a lost connection, a refused handshake."""


class NotConnectedError(TransportError):
    """A request was made while the client is disconnected (it reconnects in the background)."""


class DisconnectedError(TransportError):
    """The connection was lost while a request was in flight."""


class ConnectError(TransportError):
    """The server could not be reached."""


class IncompatibleInterfaceError(ConnectError):
    """The server serves a different interface, or a different version of it."""


class RequestTimeoutError(SwitchboardError, TimeoutError):
    """No answer came within the request's timeout."""


class RemoteError(SwitchboardError):
    """An error the other side reported: a code, a stable name, a message and optional details."""

    def __init__(
        self,
        code: ErrorCode | int,
        name: str,
        message: str,
        details: Any = None,
    ) -> None:
        self.code = ErrorCode.from_int(int(code))
        self.name = name
        self.message = message
        self.details = details
        super().__init__(f"{name} (code {int(self.code)}): {message}")

    @classmethod
    def client_error(cls, message: str, name: str = "ApplicationError") -> RemoteError:
        """A handler's refusal (code 1)."""
        return cls(ErrorCode.CLIENT_ERROR, name, message)

    @classmethod
    def internal(cls, message: str = INTERNAL_MESSAGE) -> RemoteError:
        """A server failure (code 2, ``Internal``)."""
        return cls(ErrorCode.SERVER_ERROR, "Internal", message)


class DeclaredError(RemoteError):
    """Base class of the errors an interface file declares; generated code subclasses it.

    Subclasses set ``wire_name`` and ``_sb_fields`` and take their fields as keyword arguments.
    """

    wire_name = ""
    #: (wire name, attribute, codec type) of every field; set by generated code.
    _sb_fields: Any = ()

    def __init__(self, message: str | None = None) -> None:
        super().__init__(ErrorCode.CLIENT_ERROR, self.wire_name, message or self._default_message())

    @classmethod
    def _default_message(cls) -> str:
        doc = (cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else cls.wire_name

    def _sb_details(self) -> dict[str, Any]:
        from . import _codec

        return _codec.encode_fields(self._sb_fields, self, self.wire_name)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            getattr(self, attr) == getattr(other, attr) for _, attr, _ in self._sb_fields
        )

    def __hash__(self) -> int:
        return hash(self.wire_name)

    def __repr__(self) -> str:
        fields = ", ".join(f"{attr}={getattr(self, attr)!r}" for _, attr, _ in self._sb_fields)
        return f"{type(self).__name__}({fields})"


class GoalCancelledError(SwitchboardError):
    """The goal ended cancelled. A goal handler raises it to end its goal cancelled."""


__all__ = [
    "CODE_NAMES",
    "INTERNAL_MESSAGE",
    "ConnectError",
    "DeclaredError",
    "DisconnectedError",
    "ErrorCode",
    "GoalCancelledError",
    "IncompatibleInterfaceError",
    "InvalidValueError",
    "NotConnectedError",
    "RemoteError",
    "RequestTimeoutError",
    "SwitchboardError",
    "TransportError",
]
