"""The MQTT v5 transport, implemented from docs/wire/mqtt.md on paho-mqtt 2.x.

paho's network loop runs in its own thread; every callback is handed to the asyncio loop that
opened the connection (``call_soon_threadsafe``), so all state lives on that loop. Publishing and
subscribing are thread-safe in paho and are called from the loop directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import logging
import re
import socket
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _codec, _compat
from .client import ClientCore
from .errors import (
    CODE_NAMES,
    ConnectError,
    DisconnectedError,
    ErrorCode,
    IncompatibleInterfaceError,
    NotConnectedError,
    RemoteError,
    RequestTimeoutError,
    TransportError,
)

try:
    import paho.mqtt.client as _paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties as _Properties
    from paho.mqtt.reasoncodes import ReasonCode
    from paho.mqtt.subscribeoptions import SubscribeOptions
except ImportError as _error:  # pragma: no cover - depends on the installation
    raise TransportError(
        "MQTT needs paho-mqtt 2.x: pip install 'switchboard-ipc[mqtt]' (or 'paho-mqtt>=2,<3')"
    ) from _error

if TYPE_CHECKING:
    from ._spec import InterfaceSpec
    from .endpoint import Endpoint
    from .server import ServerCore

log = logging.getLogger("switchboard.mqtt")

#: paho's ``Properties`` constructor has no annotations.
Properties: Any = _Properties

JSON = "application/json"
#: MessageExpiryInterval of the interface info and the schema, and how often they are refreshed.
INFO_EXPIRY = 144
INFO_PERIOD = 120.0
#: QoS of requests and replies (``MqttOptions::rpc_qos`` on the Rust side).
RPC_QOS = 0
KEEPALIVE = 30
#: How long a SUBSCRIBE or UNSUBSCRIBE may wait for its acknowledgement.
ACK_TIMEOUT = 10.0
DISCOVERY_TIMEOUT = 5.0

DEFAULT_TOPICS = {
    "signals": "{interface_name}/{service_id}/signal/{signal_name}",
    "propertyValues": "{interface_name}/{service_id}/property/{property_name}/value",
    "propertyUpdates": "{interface_name}/{service_id}/property/{property_name}/update",
    "propertyUpdateResponses": (
        "client/{client_id}/{interface_name}/property/{property_name}/update/response"
    ),
    "methodRequests": "{interface_name}/{service_id}/method/{method_name}/request",
    "methodResponses": "client/{client_id}/{interface_name}/method/{method_name}/response",
    "interfaceDiscovery": "{interface_name}/{service_id}/interface",
    "lwt": "client/{client_id}/online",
    "commands": "{interface_name}/{service_id}/command/{command_name}",
    "clientSignals": "client/{client_id}/{interface_name}/signal/{signal_name}",
    "actionRequests": "{interface_name}/{service_id}/action/{action_name}",
    "actionEvents": "client/{client_id}/{interface_name}/action/{action_name}/event",
    "interfaceSchema": "{interface_name}/{service_id}/schema",
}
NAME_KEYS = {
    "signals": "signal_name",
    "clientSignals": "signal_name",
    "propertyValues": "property_name",
    "propertyUpdates": "property_name",
    "propertyUpdateResponses": "property_name",
    "methodRequests": "method_name",
    "methodResponses": "method_name",
    "commands": "command_name",
    "actionRequests": "action_name",
    "actionEvents": "action_name",
}
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

Message = _paho.MQTTMessage


def clean(text: str) -> str:
    """Replaces control characters by spaces (mosquitto drops connections that send them)."""
    return _CONTROL.sub(" ", text)


def valid_level(value: str) -> bool:
    return bool(value) and not any(c in value for c in "/+#\0")


def fnv1a64(text: str) -> int:
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def user_properties(message: Message) -> dict[str, str]:
    pairs = getattr(message.properties, "UserProperty", None) or []
    return {str(k): str(v) for k, v in pairs}


def _prop(message: Message, name: str) -> Any:
    return getattr(message.properties, name, None) if message.properties is not None else None


def json_content(message: Message) -> bool:
    """False for a message whose content type is present and not JSON."""
    content_type = _prop(message, "ContentType")
    return not content_type or content_type == JSON


def utc_timestamp() -> str:
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Topics:
    """Renders the interface's topic templates (defaults overridden per interface)."""

    def __init__(self, spec: InterfaceSpec, service_id: str, params: dict[str, str]) -> None:
        self.templates = {**DEFAULT_TOPICS, **dict(spec.topics)}
        self.values = {"interface_name": spec.name, "service_id": service_id, **params}

    def _values(self, kind: str, client_id: str, name: str) -> dict[str, str]:
        values = dict(self.values)
        values["client_id"] = client_id
        if kind in NAME_KEYS:
            values[NAME_KEYS[kind]] = name
        return values

    def topic(self, kind: str, client_id: str = "", name: str = "") -> str:
        values = self._values(kind, client_id, name)
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), self.templates[kind])

    def filter(self, kind: str, client_id: str = "", wild: tuple[str, ...] = ()) -> str:
        """A subscription filter: levels holding the name placeholder (and ``wild`` ones) are ``+``."""
        wild = (*wild, NAME_KEYS.get(kind, ""))
        values = self._values(kind, client_id, "")
        levels = []
        for level in self.templates[kind].split("/"):
            if any(w and "{" + w + "}" in level for w in wild):
                levels.append("+")
            else:
                levels.append(
                    _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), level)
                )
        return "/".join(levels)

    def match(
        self, kind: str, topic: str, client_id: str = "", wild: tuple[str, ...] = ()
    ) -> dict[str, str] | None:
        """The values of the name placeholder (and ``wild`` ones) in ``topic``, or None."""
        captured = (*wild, NAME_KEYS.get(kind, ""))
        values = self._values(kind, client_id, "")
        pattern = ""
        pos = 0
        template = self.templates[kind]
        seen: set[str] = set()
        for m in _PLACEHOLDER.finditer(template):
            pattern += re.escape(template[pos : m.start()])
            key = m.group(1)
            if key in captured and key not in seen:
                pattern += f"(?P<{key}>[^/]*)"
                seen.add(key)
            elif key in captured:
                pattern += f"(?P={key})"
            else:
                pattern += re.escape(values.get(key, m.group(0)))
            pos = m.end()
        pattern += re.escape(template[pos:])
        found = re.fullmatch(pattern, topic)
        return found.groupdict() if found else None


_explicit_ids: set[str] = set()
_ids_lock = threading.Lock()


class _Conn:
    """One MQTT connection: presence, routing by Subscription Identifier, reconnect."""

    def __init__(self, ep: Endpoint, topics: Topics) -> None:
        self.ep = ep
        self.loop = asyncio.get_running_loop()
        if ep.client_id is not None:
            if not valid_level(ep.client_id):
                raise ValueError(f"client_id `{ep.client_id}` is not a valid topic level")
            with _ids_lock:
                if ep.client_id in _explicit_ids:
                    raise ValueError(
                        f"client_id `{ep.client_id}` is already used by a connection of this process"
                    )
                _explicit_ids.add(ep.client_id)
            self.client_id = ep.client_id
            self._explicit = True
        else:
            self.client_id = str(uuid.uuid4())
            self._explicit = False
        self.presence = topics.topic("lwt", self.client_id)
        self.connected = False
        self.closing = False
        self.on_connected: Callable[[bool], None] = lambda first: None
        self.on_lost: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._subs: dict[int, tuple[str, int, Callable[[Message], None]]] = {}
        self._next_sub = 10
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._first: asyncio.Future[None] | None = None
        self._ever_connected = False
        if ep.scheme == "mqtt+unix":
            client = _paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=MQTTProtocolVersion.MQTTv5,
                transport="unix",
            )
        else:
            client = _paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=MQTTProtocolVersion.MQTTv5,
            )
        self.client = client
        will = Properties(PacketTypes.WILLMESSAGE)
        will.ContentType = JSON
        client.will_set(self.presence, b'{"online":false}', 1, True, will)
        if ep.username is not None:
            client.username_pw_set(ep.username, ep.password)
        if ep.scheme == "mqtts":
            client.tls_set(ca_certs=ep.params.get("ca") or None)
        # 50 ms doubling to 2 s; paho types the delays as int but computes with floats.
        min_delay: Any = 0.05
        client.reconnect_delay_set(min_delay, 2)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_ack
        client.on_unsubscribe = self._on_ack
        client.on_socket_open = self._on_socket_open

    # --- paho's thread ---------------------------------------------------------------------------

    @staticmethod
    def _on_socket_open(client: Any, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError, AttributeError):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            message = f"the broker refused the connection: {reason}"
            self.loop.call_soon_threadsafe(self._first_failed, message)
            return
        self.connected = True
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = JSON
        client.publish(self.presence, b'{"online":true}', 1, True, props)
        with self._lock:
            subs = list(self._subs.items())
        for sid, (topic_filter, qos, _) in subs:
            self._send_subscribe(sid, topic_filter, qos)
        self.loop.call_soon_threadsafe(self._connected)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self.connected = False
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._lost)

    def _on_message(self, client: Any, userdata: Any, message: Message) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._route, message)

    def _on_ack(self, client: Any, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._acked, mid, reasons)

    def _send_subscribe(self, sid: int, topic_filter: str, qos: int) -> int:
        props = Properties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = sid
        _, mid = self.client.subscribe(
            topic_filter, options=SubscribeOptions(qos=qos, retainHandling=0), properties=props
        )
        return int(mid or 0)

    # --- the asyncio loop ------------------------------------------------------------------------

    def _first_failed(self, message: str) -> None:
        if self._first is not None and not self._first.done():
            self._first.set_exception(ConnectError(message))

    def _connected(self) -> None:
        first = not self._ever_connected
        self._ever_connected = True
        if self._first is not None and not self._first.done():
            self._first.set_result(None)
        if not self.closing:
            self.on_connected(first)

    def _lost(self) -> None:
        for fut in self._acks.values():
            if not fut.done():
                fut.set_exception(DisconnectedError("the connection to the broker was lost"))
        self._acks.clear()
        if not self.closing:
            log.info("connection %s to the broker lost; reconnecting", self.client_id)
            self.on_lost()

    def _acked(self, mid: int, reasons: Any) -> None:
        fut = self._acks.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(reasons)

    def _route(self, message: Message) -> None:
        ids = _prop(message, "SubscriptionIdentifier") or []
        if isinstance(ids, int):
            ids = [ids]
        for sid in ids:
            sub = self._subs.get(sid)
            if sub is not None:
                try:
                    sub[2](message)
                except Exception:
                    log.exception("handling a message on %s failed", message.topic)
                return

    async def start(self, timeout: float) -> None:
        self._first = self.loop.create_future()
        ep = self.ep
        if ep.scheme == "mqtt+unix":
            host, port = ep.path, 0
        else:
            host, port = ep.host, ep.port

        def connect() -> None:
            self.client.connect(host, port, KEEPALIVE, clean_start=True)

        try:
            await asyncio.wait_for(self.loop.run_in_executor(None, connect), timeout)
        except (OSError, ValueError, asyncio.TimeoutError) as error:
            self._release()
            where = host if ep.scheme == "mqtt+unix" else f"{host}:{port}"
            raise ConnectError(f"cannot connect to the MQTT broker at {where}: {error}") from None
        self.client.loop_start()
        try:
            await asyncio.wait_for(asyncio.shield(self._first), timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise ConnectError("the MQTT broker did not answer CONNECT") from None
        except ConnectError:
            await self.close()
            raise

    def _release(self) -> None:
        if self._explicit:
            with _ids_lock:
                _explicit_ids.discard(self.client_id)
            self._explicit = False

    async def _wait_ack(self, mid: int, what: str) -> Any:
        fut: asyncio.Future[Any] = self.loop.create_future()
        self._acks[mid] = fut
        try:
            return await asyncio.wait_for(fut, ACK_TIMEOUT)
        except asyncio.TimeoutError:
            raise TransportError(f"the broker did not acknowledge {what}") from None
        finally:
            self._acks.pop(mid, None)

    def add(self, topic_filter: str, qos: int, callback: Callable[[Message], None]) -> int:
        """Registers a subscription without sending it (it goes out with the next CONNACK)."""
        sid = self._next_sub
        self._next_sub += 1
        with self._lock:
            self._subs[sid] = (topic_filter, qos, callback)
        return sid

    async def subscribe(
        self, topic_filter: str, qos: int, callback: Callable[[Message], None]
    ) -> int:
        """Subscribes and returns once the broker acknowledged it."""
        sid = self.add(topic_filter, qos, callback)
        try:
            await self.resubscribe(sid)
        except BaseException:
            with self._lock:
                self._subs.pop(sid, None)
            raise
        return sid

    async def resubscribe(self, sid: int) -> None:
        """Sends subscription ``sid`` again (the broker then resends the retained message)."""
        if not self.connected:
            raise NotConnectedError("not connected to the MQTT broker")
        topic_filter, qos, _ = self._subs[sid]
        mid = self._send_subscribe(sid, topic_filter, qos)
        reasons = await self._wait_ack(mid, f"the subscription to {topic_filter}")
        for reason in reasons or []:
            if getattr(reason, "is_failure", False):
                raise TransportError(f"the broker refused the subscription to {topic_filter}: {reason}")

    async def unsubscribe(self, sid: int) -> None:
        with self._lock:
            sub = self._subs.pop(sid, None)
        if sub is None or not self.connected:
            return
        _, mid = self.client.unsubscribe(sub[0])
        with contextlib.suppress(TransportError):
            await self._wait_ack(int(mid or 0), f"the end of the subscription to {sub[0]}")

    async def barrier(self) -> None:
        """Returns once everything the broker sent before now has been handled."""
        if not self.connected:
            raise NotConnectedError("not connected to the MQTT broker")
        _, mid = self.client.unsubscribe(f"client/{self.client_id}/barrier")
        await self._wait_ack(int(mid or 0), "a barrier")

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        *,
        retain: bool = False,
        json_body: bool = True,
        response_topic: str | None = None,
        correlation: bytes | None = None,
        user: list[tuple[str, str]] | None = None,
        expiry: int | None = None,
    ) -> _paho.MQTTMessageInfo:
        props = Properties(PacketTypes.PUBLISH)
        if json_body:
            props.ContentType = JSON
        if response_topic is not None:
            props.ResponseTopic = clean(response_topic)
        if correlation is not None:
            props.CorrelationData = correlation
        if user:
            props.UserProperty = [(clean(k), clean(v)) for k, v in user]
        if expiry is not None:
            props.MessageExpiryInterval = expiry
        return self.client.publish(clean(topic), payload, qos, retain, props)

    async def close(self) -> None:
        """Says ``{"online":false}``, disconnects normally (the broker drops the will) and stops."""
        if self.closing:
            return
        self.closing = True

        def stop() -> None:
            if self.connected:
                info = self.publish(self.presence, b'{"online":false}', 1, retain=True)
                with contextlib.suppress(Exception):
                    info.wait_for_publish(2.0)
                self.client.disconnect()
            self.client.loop_stop()

        with contextlib.suppress(Exception):
            await self.loop.run_in_executor(None, stop)
        for fut in self._acks.values():
            if not fut.done():
                fut.set_exception(DisconnectedError("the connection was closed"))
        self._release()


def _error_of(message: Message, body: Any = None) -> RemoteError | None:
    """The error a reply reports (``ReturnCode`` 1–15; other codes are UnknownError), or None."""
    up = user_properties(message)
    text = up.get("ReturnCode")
    if text is None or text.strip() == "0":
        return None
    try:
        code = int(text)
    except ValueError:
        code = 13
    if not 0 <= code <= 15:
        code = 13
    if code == 0:
        return None
    name = up.get("ErrorName") or CODE_NAMES.get(ErrorCode(code), "UnknownError")
    text_message = up.get("DebugInfo", "")
    details: Any = None
    if "ErrorDetails" in up:
        with contextlib.suppress(ValueError):
            details = json.loads(up["ErrorDetails"])
    if isinstance(body, dict):
        text_message = str(body.get("message", text_message))
        details = body.get("details", details)
    return RemoteError(code, name, text_message, details)


def _loads(message: Message) -> Any:
    return _codec.loads(bytes(message.payload))


class MqttClient(ClientCore):
    """A client over MQTT: discovery, requests by correlation id, retained property values."""

    def __init__(self, spec: InterfaceSpec, ep: Endpoint, timeout: float | None) -> None:
        super().__init__(spec, timeout)
        self.ep = ep
        self.instance = ep.instance
        self.params = dict(ep.params)
        unknown = [k for k in self.params if k not in spec.topic_params and k != "ca"]
        if unknown:
            raise ValueError(f"unknown query parameter `{unknown[0]}` in the MQTT endpoint")
        if self.instance != "*" and not valid_level(self.instance):
            raise ValueError(f"instance `{self.instance}` is not a valid topic level")
        self.topics = Topics(spec, self.instance, self.params)
        self.conn: _Conn | None = None
        self._pending: dict[bytes, asyncio.Future[Message]] = {}
        self._prefix = str(uuid.uuid4()).rsplit("-", 1)[0]
        self._next_id = 1
        self._versions: dict[str, int] = {}
        self._value_sids: dict[str, int] = {}
        self._reads: dict[str, list[asyncio.Future[Any]]] = {}
        self._delivered: dict[str, tuple[int, bytes]] = {}
        self._signal_sids: dict[str, int] = {}
        self._events_sid: int | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def client_id(self) -> str:
        assert self.conn is not None
        return self.conn.client_id

    async def start(self, connect_timeout: float) -> None:
        conn = _Conn(self.ep, self.topics)
        self.conn = conn
        conn.on_connected = self._on_connected
        conn.on_lost = self._on_lost
        await conn.start(connect_timeout)
        try:
            await self._discover(max(connect_timeout, DISCOVERY_TIMEOUT))
            cid = conn.client_id
            t = self.topics
            await conn.subscribe(t.topic("interfaceDiscovery"), 1, self._on_info)
            await conn.subscribe(t.filter("methodResponses", cid), 1, self._on_reply)
            await conn.subscribe(t.filter("propertyUpdateResponses", cid), 1, self._on_reply)
            if self.spec.signals:
                await conn.subscribe(t.filter("clientSignals", cid), 1, self._on_client_signal)
        except BaseException:
            await conn.close()
            raise

    async def _discover(self, timeout: float) -> None:
        conn = self.conn
        assert conn is not None
        wild = tuple(p for p in self.spec.topic_params if p not in self.params)
        if self.instance == "*":
            wild = (*wild, "service_id")
        found: asyncio.Queue[Message] = asyncio.Queue()
        sid = await conn.subscribe(
            self.topics.filter("interfaceDiscovery", wild=wild), 1, found.put_nowait
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                left = deadline - loop.time()
                try:
                    message = await asyncio.wait_for(found.get(), max(left, 0.0))
                except asyncio.TimeoutError:
                    which = "any instance" if self.instance == "*" else f"instance `{self.instance}`"
                    raise ConnectError(
                        f"NotFound: no live {self.spec.name} server announced {which} "
                        f"within {timeout} s"
                    ) from None
                if not message.payload:
                    continue
                try:
                    info = _loads(message)
                except ValueError:
                    continue
                if not isinstance(info, dict) or not isinstance(info.get("instance"), str):
                    continue
                if self.instance != "*" and info["instance"] != self.instance:
                    continue
                theirs = info.get("hash")
                try:
                    lacking, summary = self._decide(info)
                except IncompatibleInterfaceError as error:
                    if self.instance == "*":
                        log.warning(
                            "skipping incompatible instance `%s`: %s", info["instance"], error
                        )
                        continue
                    raise
                presence = info.get("connection_topic")
                if isinstance(presence, str) and not await self._alive(presence):
                    continue
                if theirs is None and str(info.get("version")) != self.spec.version:
                    log.warning(
                        "server `%s` serves %s version %s; this client was generated from %s",
                        info["instance"], self.spec.name, info.get("version"), self.spec.version,
                    )
                for param in self.spec.topic_params:
                    if param not in self.params and isinstance(info.get(param), str):
                        self.params[param] = info[param]
                self.instance = info["instance"]
                self.topics = Topics(self.spec, self.instance, self.params)
                self._lacking, self._server_summary = lacking, summary
                return
        finally:
            await conn.unsubscribe(sid)

    def _decide(self, info: dict[str, Any]) -> tuple[set[tuple[str, str]], str]:
        """What this client agrees with the server that published the interface info ``info``:
        the members it lacks, and how to name that server; raises
        :class:`IncompatibleInterfaceError` for a server this client cannot use."""
        theirs = info.get("hash")
        if not isinstance(theirs, str) or theirs == self.spec.hash:
            return set(), ""
        # Another hash: compare the descriptions member by member, as the Unix handshake does;
        # without a description only the same hash connects.
        server = {
            "interface": info.get("interface_name"),
            "version": info.get("version"),
            "hash": theirs,
            "description": info.get("description"),
        }
        return _compat.check(self.hello(), server), _compat.summary(server)

    def _on_info(self, message: Message) -> None:
        """An interface info on the resolved instance's discovery topic, after connecting: a
        server (re)started there, perhaps of another version, so the client decides again what
        that server lacks, as the Rust client does. An incompatible one is logged and ignored:
        the client keeps what it agreed with the last compatible server."""
        if not message.payload:
            return  # a clean close clears the info
        try:
            info = _loads(message)
        except ValueError:
            return
        if not isinstance(info, dict) or info.get("instance") != self.instance:
            return
        try:
            self._lacking, self._server_summary = self._decide(info)
        except IncompatibleInterfaceError as error:
            log.warning("an incompatible server announced itself on this instance; ignored: %s",
                        error)

    async def _alive(self, presence: str) -> bool:
        """False when the announcing server's retained presence says it is offline."""
        conn = self.conn
        assert conn is not None
        if not presence or "+" in presence or "#" in presence:
            return True
        seen: list[Message] = []
        sid = await conn.subscribe(presence, 1, seen.append)
        await conn.unsubscribe(sid)  # UNSUBACK comes after the retained message
        for message in seen:
            with contextlib.suppress(ValueError):
                data = _loads(message)
                if isinstance(data, dict) and data.get("online") is False:
                    return False
        return True

    # --- connection events -----------------------------------------------------------------------

    def _on_connected(self, first: bool) -> None:
        if first or self._closed:
            return
        for goal_id, goal in list(self._goals.items()):
            payload = {"goal": goal_id, "follow": True}
            task = asyncio.get_running_loop().create_task(
                self._wire_goal("attach", goal._spec.name, payload, self.timeout)
            )
            self._tasks.add(task)
            task.add_done_callback(self._reattached)

    def _reattached(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is not None:
            return
        state = task.result()
        goal = self._goals.get(str(state.get("goal")))
        if goal is not None:
            goal._on_status(state)

    def _on_lost(self) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(DisconnectedError("the connection to the broker was lost"))

    # --- incoming ----------------------------------------------------------------------------------

    def _on_reply(self, message: Message) -> None:
        correlation = _prop(message, "CorrelationData")
        if not correlation:
            return
        fut = self._pending.pop(bytes(correlation), None)
        if fut is not None and not fut.done():
            fut.set_result(message)

    def _on_client_signal(self, message: Message) -> None:
        found = self.topics.match("clientSignals", message.topic, self.client_id)
        if found is not None:
            self._signal_message(found["signal_name"], message)

    def _signal_message(self, name: str, message: Message) -> None:
        if not json_content(message):
            log.warning("signal `%s` with content type %s dropped", name, _prop(message, "ContentType"))
            return
        try:
            data = _loads(message)
        except ValueError:
            log.warning("signal `%s` with invalid JSON dropped", name)
            return
        self._on_signal(name, data)

    def _value_message(self, name: str, message: Message) -> None:
        if not message.payload or not json_content(message):
            return
        try:
            data = _loads(message)
        except ValueError:
            log.warning("value of `%s` with invalid JSON dropped", name)
            return
        version = 0
        with contextlib.suppress(ValueError):
            version = int(user_properties(message).get("PropertyVersion", "0"))
        if version:
            self._versions[name] = version
        for fut in self._reads.pop(name, []):
            if not fut.done():
                fut.set_result(data)
        if self._watch_subs.get(name):
            key = (version, bytes(message.payload))
            if self._delivered.get(name) != key:
                self._delivered[name] = key
                self._on_property_value(name, data)

    def _on_event(self, message: Message) -> None:
        if _prop(message, "CorrelationData"):
            self._on_reply(message)
            return
        try:
            data = _loads(message)
        except ValueError:
            return
        kind = user_properties(message).get("GoalEvent")
        if kind is None and isinstance(data, dict) and "feedback" in data:
            kind = "feedback"
        self._on_goal_event("feedback" if kind == "feedback" else "status", data)

    # --- requests ----------------------------------------------------------------------------------

    def _connected_conn(self) -> _Conn:
        if self._closed or self.conn is None or not self.conn.connected:
            raise NotConnectedError("not connected to the MQTT broker")
        return self.conn

    async def _rpc(
        self,
        topic: str,
        payload: bytes,
        response_topic: str,
        timeout: float,
        what: str,
        user: list[tuple[str, str]] | None = None,
    ) -> Message:
        conn = self._connected_conn()
        correlation = f"{self._prefix}-{self._next_id:012x}".encode()
        self._next_id += 1
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = fut
        try:
            conn.publish(
                topic, payload, RPC_QOS, response_topic=response_topic,
                correlation=correlation, user=user,
            )
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise RequestTimeoutError(f"no answer to `{what}` within {timeout} s") from None
        finally:
            self._pending.pop(correlation, None)

    async def _wire_call(self, name: str, args: dict[str, Any], timeout: float) -> Any:
        t, cid = self.topics, self.client_id
        reply = await self._rpc(
            t.topic("methodRequests", name=name), _codec.dumps(args),
            t.topic("methodResponses", cid, name), timeout, name,
        )
        error = _error_of(reply)
        if error is not None:
            raise error
        return _loads(reply)

    async def _value_subscription(self, name: str) -> None:
        conn = self._connected_conn()
        sid = self._value_sids.get(name)
        if sid is None:
            topic = self.topics.topic("propertyValues", name=name)
            self._value_sids[name] = await conn.subscribe(
                topic, 1, lambda m: self._value_message(name, m)
            )
        else:
            await conn.resubscribe(sid)

    async def _wire_get(self, name: str, timeout: float) -> Any:
        conn = self._connected_conn()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._reads.setdefault(name, []).append(fut)
        try:
            await asyncio.wait_for(self._value_subscription(name), timeout)
            if not fut.done():
                await asyncio.wait_for(conn.barrier(), timeout)
        except asyncio.TimeoutError:
            raise RequestTimeoutError(f"no value of `{name}` within {timeout} s") from None
        finally:
            waiting = self._reads.get(name, [])
            if fut in waiting:
                waiting.remove(fut)
        if not fut.done():
            raise RemoteError(
                ErrorCode.SERVICE_UNAVAILABLE, "NoRetainedValue",
                f"the broker holds no value of property `{name}`",
            )
        return fut.result()

    async def _wire_set(self, name: str, value: dict[str, Any], timeout: float) -> Any:
        if name not in self._versions:
            await self._wire_get(name, timeout)
        t, cid = self.topics, self.client_id
        user = [("PropertyVersion", str(self._versions.get(name, 0)))]
        reply = await self._rpc(
            t.topic("propertyUpdates", name=name), _codec.dumps(value),
            t.topic("propertyUpdateResponses", cid, name), timeout, name, user,
        )
        with contextlib.suppress(ValueError, KeyError):
            self._versions[name] = int(user_properties(reply)["PropertyVersion"])
        error = _error_of(reply)
        if error is not None:
            raise error
        return _loads(reply)

    async def _wire_watch(self, name: str, on: bool) -> None:
        if on:
            self._delivered.pop(name, None)
            await self._value_subscription(name)

    async def _wire_subscribe(self, name: str, on: bool) -> None:
        conn = self.conn
        if conn is None:
            return
        if on:
            self._connected_conn()
            topic = self.topics.topic("signals", name=name)
            self._signal_sids[name] = await conn.subscribe(
                topic, 1, lambda m: self._signal_message(name, m)
            )
        else:
            sid = self._signal_sids.pop(name, None)
            if sid is not None:
                await conn.unsubscribe(sid)

    async def _wire_command(self, name: str, args: dict[str, Any]) -> None:
        conn = self._connected_conn()
        conn.publish(
            self.topics.topic("commands", name=name), _codec.dumps(args), 2,
            user=[("ClientId", conn.client_id)],
        )

    async def _wire_goal(
        self, kind: str, action: str, payload: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        conn = self._connected_conn()
        t, cid = self.topics, conn.client_id
        if self._events_sid is None:
            self._events_sid = await conn.subscribe(t.filter("actionEvents", cid), 1, self._on_event)
        op = {"send": "goal", "cancel": "cancel", "attach": "attach"}[kind]
        reply = await self._rpc(
            t.topic("actionRequests", name=action) + "/" + op, _codec.dumps(payload),
            t.topic("actionEvents", cid, action), timeout, action, [("ClientId", cid)],
        )
        try:
            body = _loads(reply)
        except ValueError:
            body = {}
        error = _error_of(reply, body)
        if error is not None:
            raise error
        return body if isinstance(body, dict) else {}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._on_lost()
        for task in list(self._tasks):
            task.cancel()
        self._fail_all(DisconnectedError("the client was closed"))
        self._end_subscriptions()
        if self.conn is not None:
            await self.conn.close()


class MqttServer:
    """Serves one :class:`ServerCore` over MQTT."""

    def __init__(self, core: ServerCore, ep: Endpoint) -> None:
        spec = core.spec
        self.core = core
        self.ep = ep
        unknown = [k for k in ep.params if k not in spec.topic_params and k != "ca"]
        if unknown:
            raise ValueError(f"unknown query parameter `{unknown[0]}` in the MQTT endpoint")
        missing = [p for p in spec.topic_params if p not in ep.params]
        if missing:
            raise ValueError(f"the MQTT endpoint needs the topic parameter `{missing[0]}`")
        if not valid_level(ep.instance) or ep.instance == "*":
            raise ValueError(f"instance `{ep.instance}` is not a valid service id")
        self.params = {p: ep.params[p] for p in spec.topic_params}
        self.topics = Topics(spec, ep.instance, self.params)
        self.conn: _Conn | None = None
        self._peers: dict[str, int] = {}
        self._clients: dict[int, str] = {}
        self._generation: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresh: asyncio.Task[None] | None = None

    async def start(self, connect_timeout: float) -> None:
        conn = _Conn(self.ep, self.topics)
        self.conn = conn
        t = self.topics
        conn.add(t.filter("methodRequests"), 1, self._on_method)
        conn.add(t.filter("propertyUpdates"), 1, self._on_update)
        conn.add(t.filter("commands"), 2, self._on_command)
        conn.add(t.filter("actionRequests") + "/+", 1, self._on_action)
        conn.add(t.filter("lwt", wild=("client_id",)), 1, self._on_presence)
        conn.on_connected = self._on_connected
        await conn.start(connect_timeout)
        self._refresh = asyncio.get_running_loop().create_task(self._republish())

    # --- publishing --------------------------------------------------------------------------------

    def _on_connected(self, first: bool) -> None:
        self._publish_info()
        for name in self.core.spec.properties:
            state = self.core._property_state(name)
            if state is not None:
                self.publish_property(name, state[0], state[1])

    def _publish_info(self) -> None:
        conn = self.conn
        if conn is None or not conn.connected or conn.closing:
            return
        spec = self.core.spec
        info: dict[str, Any] = {
            "interface_name": spec.name,
            "title": spec.title or spec.name,
            "version": spec.version,
            "instance": self.ep.instance,
            "connection_topic": conn.presence,
            "timestamp": utc_timestamp(),
        }
        info.update(self.params)
        info["hash"] = spec.hash
        description = spec.parsed_description()
        if description is not None:
            info["description"] = description
        t = self.topics
        conn.publish(
            t.topic("interfaceDiscovery"), _codec.dumps(info), 1, retain=True, expiry=INFO_EXPIRY
        )
        conn.publish(
            t.topic("interfaceSchema"), spec.description.encode(), 1, retain=True,
            expiry=INFO_EXPIRY,
        )

    async def _republish(self) -> None:
        while True:
            await asyncio.sleep(INFO_PERIOD)
            self._publish_info()

    def broadcast_signal(self, name: str, payload: bytes) -> None:
        conn = self.conn
        if conn is None or not conn.connected:
            raise NotConnectedError("not connected to the MQTT broker")
        conn.publish(self.topics.topic("signals", name=name), payload, 1)

    def send_signal_to(self, peer: int, name: str, payload: bytes) -> bool:
        client_id = self._clients.get(peer)
        conn = self.conn
        if client_id is None or conn is None or not conn.connected:
            return False
        conn.publish(self.topics.topic("clientSignals", client_id, name), payload, 1)
        return True

    def publish_property(self, name: str, version: int, payload: bytes) -> None:
        conn = self.conn
        if conn is None or not conn.connected or conn.closing:
            return  # republished after the next CONNACK
        conn.publish(
            self.topics.topic("propertyValues", name=name), payload, 1, retain=True,
            user=[("PropertyVersion", str(version))],
        )

    def send_goal_event(
        self, peers: list[int], kind: str, action: str, data: Any, code: int
    ) -> None:
        conn = self.conn
        if conn is None:
            return
        payload = _codec.dumps(data)
        user = [("GoalEvent", kind)]
        if kind == "finished":
            user.append(("ReturnCode", str(code)))
        for peer in peers:
            client_id = self._clients.get(peer)
            if client_id is not None:
                conn.publish(self.topics.topic("actionEvents", client_id, action), payload, 1, user=user)

    def is_connected(self, peer: int) -> bool:
        return peer in self._clients

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
        for task in list(self._tasks):
            task.cancel()
        conn = self.conn
        if conn is None:
            return
        if conn.connected and not conn.closing:
            t = self.topics
            empty = [t.topic("interfaceDiscovery"), t.topic("interfaceSchema")]
            empty += [t.topic("propertyValues", name=n) for n in self.core.spec.properties]
            for topic in empty:
                conn.publish(topic, b"", 1, retain=True, json_body=False)
        await conn.close()

    # --- peers -------------------------------------------------------------------------------------

    def _client_of(self, message: Message) -> str | None:
        client_id = user_properties(message).get("ClientId")
        if client_id:
            return client_id
        response = str(_prop(message, "ResponseTopic") or "")
        if not response:
            return None
        for kind in ("methodResponses", "propertyUpdateResponses", "actionEvents"):
            found = self.topics.match(kind, response, wild=("client_id",))
            if found is not None and found.get("client_id"):
                return found["client_id"]
        parts = response.split("/")
        if len(parts) > 1 and parts[0] == "client" and parts[1]:
            return parts[1]
        return None

    def _peer(self, client_id: str | None) -> int:
        if not client_id:
            return 0
        peer = self._peers.get(client_id)
        if peer is None:
            generation = self._generation.get(client_id, 0)
            key = client_id if generation == 0 else f"{client_id}#{generation}"
            peer = fnv1a64(key) or 1
            self._peers[client_id] = peer
            self._clients[peer] = client_id
        return peer

    def _on_presence(self, message: Message) -> None:
        found = self.topics.match("lwt", message.topic, wild=("client_id",))
        if found is None or not message.payload:
            return
        client_id = found["client_id"]
        with contextlib.suppress(ValueError):
            data = _loads(message)
            if isinstance(data, dict) and data.get("online") is False:
                peer = self._peers.pop(client_id, None)
                if peer is not None:
                    self._clients.pop(peer, None)
                    self._generation[client_id] = self._generation.get(client_id, 0) + 1
                    self.core._peer_left(peer)

    # --- requests ----------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reply(
        self, message: Message, payload: bytes, user: list[tuple[str, str]], qos: int = RPC_QOS
    ) -> None:
        response = _prop(message, "ResponseTopic")
        conn = self.conn
        if not response or conn is None:
            return
        try:
            conn.publish(
                response, payload, qos, correlation=_prop(message, "CorrelationData"), user=user
            )
        except ValueError as error:
            log.warning("cannot answer on `%s`: %s", response, error)

    @staticmethod
    def _error_user(code: int, name: str, body: Any) -> list[tuple[str, str]]:
        body = body if isinstance(body, dict) else {}
        user = [
            ("ReturnCode", str(code)),
            ("DebugInfo", clean(str(body.get("message", "")))),
            ("ErrorName", name),
        ]
        if body.get("details") is not None:
            user.append(("ErrorDetails", _codec.dumps(body["details"]).decode()))
        return user

    def _on_method(self, message: Message) -> None:
        found = self.topics.match("methodRequests", message.topic)
        if found is None:
            return
        peer = self._peer(self._client_of(message))
        self._spawn(self._method(message, found["method_name"], peer))

    async def _method(self, message: Message, name: str, peer: int) -> None:
        code, error_name, payload = await self.core._call(peer, name, bytes(message.payload))
        if code == 0:
            self._reply(message, payload, [("ReturnCode", "0")])
        else:
            body = _codec.loads(payload)
            self._reply(message, b"{}", self._error_user(code, error_name, body))

    def _on_update(self, message: Message) -> None:
        found = self.topics.match("propertyUpdates", message.topic)
        if found is None:
            return
        peer = self._peer(self._client_of(message))
        self._spawn(self._update(message, found["property_name"], peer))

    async def _update(self, message: Message, name: str, peer: int) -> None:
        state = self.core._property_state(name)
        if state is None:
            body = {"message": f"interface {self.core.spec.name} has no property `{name}`"}
            self._reply(message, b"{}", self._error_user(9, "UnknownProperty", body))
            return
        current, current_payload = state

        def refuse(code: int, error_name: str, text: str) -> None:
            user = self._error_user(code, error_name, {"message": text})
            user.insert(1, ("PropertyVersion", str(current)))
            self._reply(message, current_payload, user)

        if not json_content(message):
            content_type = _prop(message, "ContentType")
            refuse(8, "InvalidArguments", f"unsupported content type `{content_type}` for `{name}`")
            return
        text = user_properties(message).get("PropertyVersion")
        version: int | None = None
        if text is not None:
            if not text.strip().isdigit():
                refuse(
                    4, "InvalidPropertyVersion",
                    f"PropertyVersion '{text}' of the update of '{name}' is not a non-negative integer",
                )
                return
            version = int(text)
        code, now, payload = await self.core._set_property(
            peer, name, bytes(message.payload), version
        )
        if code == 0:
            self._reply(message, payload, [("ReturnCode", "0"), ("PropertyVersion", str(now))])
            return
        body = _codec.loads(payload)
        user = self._error_user(code, str(body.get("error", "")), body)
        user.insert(1, ("PropertyVersion", str(now)))
        value = body.get("value")
        self._reply(message, _codec.dumps(value) if value is not None else b"{}", user)

    def _on_command(self, message: Message) -> None:
        found = self.topics.match("commands", message.topic)
        if found is None:
            return
        if not json_content(message):
            log.warning("command `%s` with content type %s dropped", found["command_name"],
                        _prop(message, "ContentType"))
            return
        peer = self._peer(user_properties(message).get("ClientId"))
        self._spawn(self.core._command(peer, found["command_name"], bytes(message.payload)))

    def _on_action(self, message: Message) -> None:
        topic, _, op = message.topic.rpartition("/")
        found = self.topics.match("actionRequests", topic)
        ops = {"goal": "send", "cancel": "cancel", "attach": "attach"}
        if found is None or op not in ops:
            return
        peer = self._peer(self._client_of(message))
        self._spawn(self._action(message, found["action_name"], ops[op], peer))

    async def _action(self, message: Message, action: str, op: str, peer: int) -> None:
        try:
            data = _loads(message)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("goal"), str):
            body = {"goal": "", "message": "the payload is not a goal object"}
            self._reply(message, _codec.dumps(body), self._error_user(4, "PayloadError", body), 1)
            return
        code, name, body = await self.core._goal_request(peer, op, action, bytes(message.payload))
        if code == 0:
            self._reply(message, _codec.dumps(body), [("ReturnCode", "0")], 1)
            self.core._goal_replied(peer, op, body)
        else:
            self._reply(message, _codec.dumps(body), self._error_user(code, name, body), 1)
