"""The Unix-socket transport, implemented from docs/wire/unix.md (protocol 1)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
import struct
from typing import TYPE_CHECKING, Any

from . import _codec, _compat
from .client import ClientCore
from .errors import (
    ConnectError,
    DisconnectedError,
    ErrorCode,
    IncompatibleInterfaceError,
    NotConnectedError,
    RemoteError,
    RequestTimeoutError,
    TransportError,
)

if TYPE_CHECKING:
    from ._spec import InterfaceSpec
    from .server import ServerCore

log = logging.getLogger("switchboard.unix")

PROTOCOL = 1
MAX_FRAME = 16 * 1024 * 1024
#: The largest handshake frame (HELLO, WELCOME, REFUSED) either side reads, whatever the frame
#: limit for the rest of the connection (docs/wire/unix.md, section 2).
HANDSHAKE_LIMIT = 64 * 1024
HEADER = struct.Struct(">BBHQQ")
HANDSHAKE_TIMEOUT = 5.0

HELLO, WELCOME, REFUSED = 0x01, 0x02, 0x03
CALL, REPLY = 0x10, 0x11
GET_PROPERTY, SET_PROPERTY, PROPERTY_REPLY, WATCH, UNWATCH, PROPERTY_VALUE = (
    0x20,
    0x21,
    0x22,
    0x23,
    0x24,
    0x25,
)
SUBSCRIBE, UNSUBSCRIBE, SIGNAL = 0x30, 0x31, 0x32
SEND_GOAL, CANCEL_GOAL, ATTACH_GOAL, GOAL_REPLY = 0x40, 0x41, 0x42, 0x43
GOAL_FEEDBACK, GOAL_STATUS, GOAL_FINISHED = 0x44, 0x45, 0x46
COMMAND = 0x50
ERROR = 0x7F

CLIENT_KINDS = {
    HELLO,
    CALL,
    GET_PROPERTY,
    SET_PROPERTY,
    WATCH,
    UNWATCH,
    SUBSCRIBE,
    UNSUBSCRIBE,
    SEND_GOAL,
    CANCEL_GOAL,
    ATTACH_GOAL,
    COMMAND,
    ERROR,
}


class Frame:
    __slots__ = ("code", "id", "kind", "name", "payload", "version")

    def __init__(
        self,
        kind: int,
        name: str = "",
        payload: bytes = b"",
        *,
        code: int = 0,
        id: int = 0,
        version: int = 0,
    ) -> None:
        self.kind, self.name, self.payload = kind, name, payload
        self.code, self.id, self.version = code, id, version

    def encode(self) -> bytes:
        name = self.name.encode()
        body = HEADER.pack(self.kind, self.code, len(name), self.id, self.version)
        length = len(body) + len(name) + len(self.payload)
        if length > MAX_FRAME:
            raise TransportError(f"frame of {length} bytes exceeds the limit of {MAX_FRAME} bytes")
        return struct.pack(">I", length) + body + name + self.payload

    def json(self) -> Any:
        return _codec.loads(self.payload)


class FrameError(Exception):
    """A correctly delimited but malformed frame; ``id`` is what the answer carries."""

    def __init__(self, message: str, id: int) -> None:
        super().__init__(message)
        self.id = id


class TooLarge(Exception):
    pass


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> Frame:
    """Reads one frame of at most ``limit`` bytes; raises ``asyncio.IncompleteReadError`` at
    end of stream."""
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    if length > limit:
        raise TooLarge(f"frame of {length} bytes exceeds the limit of {limit} bytes")
    body = await reader.readexactly(length)
    if length < 20:
        fid = struct.unpack_from(">Q", body, 4)[0] if length >= 12 else 0
        raise FrameError("frame shorter than its 20-byte header", fid)
    kind, code, name_len, fid, version = HEADER.unpack_from(body)
    if 20 + name_len > length:
        raise FrameError("name runs past the end of the frame", fid)
    try:
        name = body[20 : 20 + name_len].decode()
    except UnicodeDecodeError:
        raise FrameError("name is not UTF-8", fid) from None
    return Frame(kind, name, body[20 + name_len :], code=code, id=fid, version=version)


def json_payload(value: Any) -> bytes:
    return _codec.dumps(value)


def hello_frame(kind: int, hello: dict[str, Any]) -> Frame:
    """A HELLO or WELCOME frame. A HELLO whose description would take it past
    :data:`HANDSHAKE_LIMIT` goes without it, as an older client's does: an equal hash still
    connects, another one is refused."""
    payload = json_payload(hello)
    framing = 64 + len(str(hello.get("interface", "")).encode())
    if kind == HELLO and "description" in hello and len(payload) + framing > HANDSHAKE_LIMIT:
        payload = json_payload({k: v for k, v in hello.items() if k != "description"})
    return Frame(kind, str(hello.get("interface", "")), payload)


# --- where sockets live (§1) -----------------------------------------------------------------


def default_socket_dir() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/"):
        return os.path.join(runtime, "switchboard")
    if os.geteuid() == 0 or (
        os.path.isdir("/run/switchboard") and os.access("/run/switchboard", os.W_OK)
    ):
        return "/run/switchboard"
    tmp = os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(tmp, f"switchboard-{os.getuid()}")


def _check_name(kind: str, value: str) -> None:
    if value in ("", ".", "..") or "/" in value or "\0" in value:
        raise ValueError(f"invalid {kind} `{value}` for a socket path")


def socket_path(path: str | None, interface: str, instance: str) -> str:
    if path:
        result = path
    else:
        _check_name("interface name", interface)
        _check_name("instance id", instance)
        result = os.path.join(default_socket_dir(), interface, f"{instance}.sock")
    if len(os.fsencode(result)) > 107:
        raise ValueError(f"socket path `{result}` is longer than 107 bytes")
    return result


def _prepare_default_dirs(path: str) -> None:
    base = os.path.dirname(os.path.dirname(path))
    if base == "/run/switchboard":
        mode = 0o755
    elif os.environ.get("XDG_RUNTIME_DIR", "").startswith("/"):
        mode = 0o700
    else:
        mode = 0o711
    for directory in (base, os.path.dirname(path)):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, mode)
        if mode == 0o711 and directory == base:
            info = os.stat(directory)
            if info.st_uid != os.getuid() or info.st_mode & 0o022:
                raise TransportError(f"refusing {directory}: not owned by this user or writable by others")


# --- client ----------------------------------------------------------------------------------


class UnixClient(ClientCore):
    """A client connection; reconnects with backoff (50 ms doubling to 2 s) after a loss."""

    def __init__(
        self, spec: InterfaceSpec, path: str, instance: str, timeout: float | None
    ) -> None:
        super().__init__(spec, timeout)
        self.path = path
        self.instance = instance
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Frame]] = {}
        self._next_id = 1
        self._closed = False
        self._connected = asyncio.Event()

    async def start(self, connect_timeout: float) -> None:
        try:
            await asyncio.wait_for(self._open(), connect_timeout)
        except asyncio.TimeoutError:
            raise ConnectError(f"no answer from {self.path} within {connect_timeout} s") from None

    async def _open(self) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(self.path, limit=MAX_FRAME + 64)
        except OSError as error:
            raise ConnectError(f"cannot connect to {self.path}: {error.strerror or error}") from None
        try:
            writer.write(hello_frame(HELLO, self.hello(self.instance)).encode())
            await writer.drain()
            answer = await asyncio.wait_for(
                read_frame(reader, HANDSHAKE_LIMIT), HANDSHAKE_TIMEOUT
            )
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, TooLarge, FrameError):
            writer.close()
            raise ConnectError(f"handshake with {self.path} failed") from None
        if answer.kind == REFUSED:
            writer.close()
            try:
                message = str(answer.json().get("message", ""))
            except ValueError:
                message = ""
            if answer.name == "IncompatibleInterface":
                raise IncompatibleInterfaceError(message)
            raise ConnectError(f"refused ({answer.name}, code {answer.code}): {message}")
        if answer.kind != WELCOME:
            writer.close()
            raise ConnectError(f"unexpected answer to HELLO (kind {answer.kind:#04x})")
        # The server has checked this client already; the same check here learns which members
        # the server lacks (none for an equal hash, or from an older server, which sends no
        # description and accepts only an equal hash).
        try:
            welcome = answer.json()
        except ValueError:
            welcome = None
        self._lacking = set()
        if isinstance(welcome, dict):
            try:
                self._agreed(welcome)
            except IncompatibleInterfaceError as error:
                log.debug("the server accepted this client, which reads it as: %s", error)
        self._writer = writer
        for name in self._signal_subs:
            writer.write(Frame(SUBSCRIBE, name).encode())
        for name in self._watch_subs:
            writer.write(Frame(WATCH, name).encode())
        for goal_id, goal in self._goals.items():
            rid = self._take_id()
            payload = json_payload({"goal": goal_id, "follow": True})
            writer.write(Frame(ATTACH_GOAL, goal._spec.name, payload, id=rid).encode())
        await writer.drain()
        self._connected.set()
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop(reader, writer))

    def _take_id(self) -> int:
        rid = self._next_id
        self._next_id += 1
        return rid

    async def _read_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    frame = await read_frame(reader)
                except FrameError as error:
                    log.warning("malformed frame from server: %s", error)
                    continue
                self._dispatch(frame)
        except (asyncio.IncompleteReadError, OSError, TooLarge) as error:
            if not self._closed:
                log.info("connection to %s lost: %s", self.path, error)
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()
            self._lost()

    def _lost(self) -> None:
        self._writer = None
        self._connected.clear()
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(DisconnectedError(f"connection to {self.path} was lost"))
        if not self._closed and self._reconnect_task is None:
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.05
        try:
            while not self._closed:
                await asyncio.sleep(delay)
                try:
                    await self._open()
                    return
                except (ConnectError, OSError) as error:
                    log.debug("reconnect to %s failed: %s", self.path, error)
                    delay = min(delay * 2, 2.0)
        finally:
            self._reconnect_task = None

    def _dispatch(self, frame: Frame) -> None:
        kind = frame.kind
        if kind in (REPLY, PROPERTY_REPLY, GOAL_REPLY) or (kind == ERROR and frame.id):
            fut = self._pending.pop(frame.id, None)
            if fut is not None and not fut.done():
                fut.set_result(frame)
            return
        try:
            data = frame.json()
        except ValueError:
            log.warning("frame %#04x `%s` with invalid JSON dropped", kind, frame.name)
            return
        if kind == SIGNAL:
            self._on_signal(frame.name, data)
        elif kind == PROPERTY_VALUE:
            if frame.version:
                self._versions[frame.name] = frame.version
            self._on_property_value(frame.name, data)
        elif kind == GOAL_FEEDBACK:
            self._on_goal_event("feedback", data)
        elif kind in (GOAL_STATUS, GOAL_FINISHED):
            self._on_goal_event("status", data)
        elif kind == ERROR:
            log.warning("server reported: %s", data)

    def _send(self, frame: Frame) -> None:
        if self._writer is None or self._closed:
            raise NotConnectedError(f"not connected to {self.path}")
        self._writer.write(frame.encode())

    async def _request(self, frame: Frame, timeout: float) -> Frame:
        frame.id = self._take_id()
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._send(frame)
        self._pending[frame.id] = fut
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise RequestTimeoutError(
                f"no answer to `{frame.name}` within {timeout} s"
            ) from None
        finally:
            self._pending.pop(frame.id, None)

    @staticmethod
    def _error(frame: Frame) -> RemoteError:
        try:
            data = frame.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        name = frame.name or "ProtocolError"
        if frame.kind == ERROR:
            name = "ProtocolError"
        if frame.kind == PROPERTY_REPLY:
            name = str(data.get("error") or name)
        return RemoteError(
            ErrorCode.from_int(frame.code), name, str(data.get("message", "")), data.get("details")
        )

    async def _wire_call(self, name: str, args: dict[str, Any], timeout: float) -> Any:
        reply = await self._request(Frame(CALL, name, json_payload(args)), timeout)
        if reply.code or reply.kind == ERROR:
            raise self._error(reply)
        return reply.json()

    async def _wire_get(self, name: str, timeout: float) -> Any:
        reply = await self._request(Frame(GET_PROPERTY, name), timeout)
        if reply.code or reply.kind == ERROR:
            raise self._error(reply)
        self._versions[name] = reply.version
        return reply.json()

    async def _wire_set(self, name: str, value: dict[str, Any], timeout: float) -> Any:
        if name not in self._versions:
            # Version 0 ("none seen") is always refused with OutOfSync: read the property first.
            await self._wire_get(name, timeout)
        version = self._versions.get(name, 0)
        frame = Frame(SET_PROPERTY, name, json_payload(value), version=version)
        reply = await self._request(frame, timeout)
        if reply.code or reply.kind == ERROR:
            raise self._error(reply)
        self._versions[name] = reply.version
        return reply.json()

    @property
    def _versions(self) -> dict[str, int]:
        try:
            return self.__versions
        except AttributeError:
            self.__versions: dict[str, int] = {}
            return self.__versions

    async def _wire_watch(self, name: str, on: bool) -> None:
        self._send(Frame(WATCH if on else UNWATCH, name))

    async def _wire_subscribe(self, name: str, on: bool) -> None:
        self._send(Frame(SUBSCRIBE if on else UNSUBSCRIBE, name))

    async def _wire_command(self, name: str, args: dict[str, Any]) -> None:
        self._send(Frame(COMMAND, name, json_payload(args)))

    async def _wire_goal(
        self, kind: str, action: str, payload: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        frame_kind = {"send": SEND_GOAL, "cancel": CANCEL_GOAL, "attach": ATTACH_GOAL}[kind]
        reply = await self._request(Frame(frame_kind, action, json_payload(payload)), timeout)
        if reply.code or reply.kind == ERROR:
            raise self._error(reply)
        data = reply.json()
        return data if isinstance(data, dict) else {}

    async def close(self) -> None:
        self._closed = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
        self._fail_all(DisconnectedError("the client was closed"))
        self._end_subscriptions()


# --- server ----------------------------------------------------------------------------------


class _Connection:
    def __init__(self, peer: int, writer: asyncio.StreamWriter) -> None:
        self.peer = peer
        self.writer = writer
        self.signals: set[str] = set()
        self.watches: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def send(self, frame: Frame) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame.encode())


class UnixServer:
    """Serves one :class:`ServerCore` on a Unix socket."""

    def __init__(self, core: ServerCore, path: str) -> None:
        self.core = core
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._connections: dict[int, _Connection] = {}
        self._next_peer = 1
        self._inode: tuple[int, int] | None = None

    async def start(self, default_location: bool) -> None:
        if default_location:
            _prepare_default_dirs(self.path)
        else:
            parent = os.path.dirname(self.path)
            if parent:
                os.makedirs(parent, 0o755, exist_ok=True)
        self._remove_stale()
        self._server = await asyncio.start_unix_server(
            self._serve, self.path, limit=MAX_FRAME + 64
        )
        os.chmod(self.path, 0o660)
        info = os.stat(self.path)
        self._inode = (info.st_dev, info.st_ino)

    def _remove_stale(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise TransportError(f"{self.path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(self.path)
        except ConnectionRefusedError:
            os.unlink(self.path)
            return
        except OSError as error:
            if error.errno == errno.ENOENT:
                return
            raise TransportError(f"another server is already listening on {self.path}") from None
        finally:
            probe.close()
        raise TransportError(f"another server is already listening on {self.path}")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections.values()):
            conn.writer.close()
            for task in conn.tasks:
                task.cancel()
        self._connections.clear()
        with contextlib.suppress(OSError):
            info = os.stat(self.path)
            if (info.st_dev, info.st_ino) == self._inode:
                os.unlink(self.path)

    # Broadcasts, called by the core.

    def broadcast_signal(self, name: str, payload: bytes) -> None:
        frame = Frame(SIGNAL, name, payload).encode()
        for conn in self._connections.values():
            if name in conn.signals and not conn.writer.is_closing():
                conn.writer.write(frame)

    def send_signal_to(self, peer: int, name: str, payload: bytes) -> bool:
        conn = self._connections.get(peer)
        if conn is None:
            return False
        conn.send(Frame(SIGNAL, name, payload))
        return True

    def publish_property(self, name: str, version: int, payload: bytes) -> None:
        frame = Frame(PROPERTY_VALUE, name, payload, version=version).encode()
        for conn in self._connections.values():
            if name in conn.watches and not conn.writer.is_closing():
                conn.writer.write(frame)

    def send_goal_event(self, peers: list[int], kind: str, action: str, data: Any, code: int) -> None:
        frame_kind = {"feedback": GOAL_FEEDBACK, "status": GOAL_STATUS, "finished": GOAL_FINISHED}
        frame = Frame(frame_kind[kind], action, json_payload(data), code=code)
        for peer in peers:
            conn = self._connections.get(peer)
            if conn is not None:
                conn.send(frame)

    def is_connected(self, peer: int) -> bool:
        return peer in self._connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = self._next_peer
        self._next_peer += 1
        try:
            if not await self._handshake(reader, writer):
                writer.close()
                return
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError, TooLarge, FrameError):
            writer.close()
            return
        conn = _Connection(peer, writer)
        self._connections[peer] = conn
        try:
            while True:
                try:
                    frame = await read_frame(reader)
                except FrameError as error:
                    conn.send(self._protocol_error(str(error), error.id))
                    continue
                self._handle(conn, frame)
        except TooLarge as error:
            conn.send(self._protocol_error(str(error), 0))
        except (asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.pop(peer, None)
            writer.close()
            self.core._peer_left(peer)

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        spec = self.core.spec

        def refuse(message: str, name: str = "UnsupportedProtocol", code: int = 4) -> bool:
            writer.write(Frame(REFUSED, name, json_payload({"message": message}), code=code).encode())
            return False

        try:
            frame = await asyncio.wait_for(read_frame(reader, HANDSHAKE_LIMIT), HANDSHAKE_TIMEOUT)
        except TooLarge as error:
            return refuse(f"the HELLO is too large: {error}")

        if frame.kind != HELLO:
            return refuse("the first frame must be HELLO")
        try:
            hello = frame.json()
        except ValueError:
            return refuse("HELLO carries no JSON payload")
        if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL:
            return refuse(f"unsupported protocol; this server speaks protocol {PROTOCOL}")
        welcome: dict[str, Any] = {
            "protocol": PROTOCOL,
            "interface": spec.name,
            "version": spec.version,
            "hash": spec.hash,
            "instance": self.core.instance,
        }
        description = spec.parsed_description()
        if description is not None:
            welcome["description"] = description
        try:
            _compat.check(hello, welcome)
        except IncompatibleInterfaceError as error:
            return refuse(str(error), "IncompatibleInterface")
        # Only a client of another hash compares members, so only it gets the description.
        theirs = hello.get("hash")
        if theirs is None or theirs == spec.hash:
            welcome.pop("description", None)
        writer.write(hello_frame(WELCOME, welcome).encode())
        return True

    @staticmethod
    def _protocol_error(message: str, fid: int, code: int = 4) -> Frame:
        return Frame(ERROR, "ProtocolError", json_payload({"message": message}), code=code, id=fid)

    def _spawn(self, conn: _Connection, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        conn.tasks.add(task)
        task.add_done_callback(conn.tasks.discard)

    def _handle(self, conn: _Connection, frame: Frame) -> None:
        kind = frame.kind
        if kind not in CLIENT_KINDS or kind == HELLO:
            conn.send(self._protocol_error(f"unexpected frame kind {kind:#04x}", frame.id))
            return
        if kind == ERROR:
            log.info("client %d reported: %r", conn.peer, frame.payload[:200])
            return
        if kind == SUBSCRIBE:
            conn.signals.add(frame.name)
        elif kind == UNSUBSCRIBE:
            conn.signals.discard(frame.name)
        elif kind == WATCH:
            state = self.core._property_state(frame.name)
            if state is not None:
                conn.watches.add(frame.name)
                version, payload = state
                conn.send(Frame(PROPERTY_VALUE, frame.name, payload, version=version))
        elif kind == UNWATCH:
            conn.watches.discard(frame.name)
        elif kind == CALL:
            self._spawn(conn, self._call(conn, frame))
        elif kind == GET_PROPERTY:
            self._get(conn, frame)
        elif kind == SET_PROPERTY:
            self._spawn(conn, self._set(conn, frame))
        elif kind == COMMAND:
            self._spawn(conn, self.core._command(conn.peer, frame.name, frame.payload))
        elif kind in (SEND_GOAL, CANCEL_GOAL, ATTACH_GOAL):
            self._spawn(conn, self._goal(conn, frame))

    async def _call(self, conn: _Connection, frame: Frame) -> None:
        code, name, payload = await self.core._call(conn.peer, frame.name, frame.payload)
        conn.send(Frame(REPLY, name, payload, code=code, id=frame.id))

    def _get(self, conn: _Connection, frame: Frame) -> None:
        state = self.core._property_state(frame.name)
        if state is None:
            body = {
                "error": "UnknownProperty",
                "message": f"interface {self.core.spec.name} has no property `{frame.name}`",
                "value": None,
            }
            conn.send(
                Frame(PROPERTY_REPLY, frame.name, json_payload(body), code=9, id=frame.id)
            )
            return
        version, payload = state
        conn.send(Frame(PROPERTY_REPLY, frame.name, payload, version=version, id=frame.id))

    async def _set(self, conn: _Connection, frame: Frame) -> None:
        code, version, payload = await self.core._set_property(
            conn.peer, frame.name, frame.payload, frame.version
        )
        conn.send(
            Frame(PROPERTY_REPLY, frame.name, payload, code=code, version=version, id=frame.id)
        )

    async def _goal(self, conn: _Connection, frame: Frame) -> None:
        op = {SEND_GOAL: "send", CANCEL_GOAL: "cancel", ATTACH_GOAL: "attach"}[frame.kind]
        code, name, body = await self.core._goal_request(conn.peer, op, frame.name, frame.payload)
        conn.send(Frame(GOAL_REPLY, name, json_payload(body), code=code, id=frame.id))
        if code == 0:
            self.core._goal_replied(conn.peer, op, body)
