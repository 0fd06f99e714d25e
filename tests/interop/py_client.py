"""Drives StingerIPC's generated Python client for InteropProbe against one server instance.

Usage: py_client.py INSTANCE_ID [--client-id ID] [--host HOST] [--port PORT] [--verbose]

It finds the instance through the generated discoverer, calls every method and checks the
results and error return codes, updates every writable property, sends a property update with a
stale version through raw paho (the generated client cannot) and expects OutOfSync (12), checks
that read-only properties cannot be updated, and receives every signal. Each check prints one
JSON line, `{"check": NAME, "ok": BOOL, ...}`; the last line is `{"check": "summary", ...}`. The
exit status is 0 only if every check passed. Expected values are in probe_values.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

_handler = logging.StreamHandler(sys.stderr)
_handler.setLevel(logging.CRITICAL)
logging.basicConfig(level=logging.DEBUG, handlers=[_handler])

import paho.mqtt.client as mqtt  # noqa: E402
from interopprobeipc.client import (  # noqa: E402
    DiscoveredInstance,
    InteropProbeClient,
    InteropProbeClientBuilder,
    InteropProbeClientDiscoverer,
)
from interopprobeipc.interface_types import (  # noqa: E402
    Color,
    EchoBytesMethodResponse,
    EchoListsMethodResponse,
    ListsSentSignalPayload,
    LocateMethodResponse,
    Mode,
    Point,
    PositionProperty,
    ReadingTakenSignalPayload,
    ScalarsSentSignalPayload,
    ValueChangedSignalPayload,
)
from interopprobeipc.lwt import StingerPresence  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from pyqttier import Mqtt5Connection, MqttTransport, MqttTransportType  # noqa: E402
from stinger_python_utils.return_codes import StingerMethodException  # noqa: E402

import probe_values as values  # noqa: E402

STEP = 5.0
"""No single wait takes longer than this many seconds."""


class Checks:
    """Records check results as JSON lines."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def record(self, name: str, ok: bool, **detail: Any) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(json.dumps({"check": name, "ok": ok, **detail}, default=repr), flush=True)
        return ok

    def equal(self, name: str, got: Any, want: Any) -> bool:
        if got == want:
            return self.record(name, True)
        return self.record(name, False, got=got, want=want)

    def call(self, name: str, future: Future, want: Any) -> None:
        """Waits for a method call and compares its result."""
        try:
            got = future.result(STEP)
        except Exception as error:  # noqa: BLE001 -- any failure is a failed check.
            self.record(name, False, error=f"{type(error).__name__}: {error}")
            return
        self.equal(name, got, want)

    def call_fails(self, name: str, future: Future, code: int, text: str | None = None) -> None:
        """Waits for a method call that must fail with ReturnCode `code`."""
        try:
            got = future.result(STEP)
        except StingerMethodException as error:
            ok = error.return_code.value == code and (text is None or text in str(error))
            self.record(name, ok, code=error.return_code.value, debug=str(error), want_code=code)
            return
        except Exception as error:  # noqa: BLE001 -- any other failure is a failed check.
            self.record(name, False, error=f"{type(error).__name__}: {error}", want_code=code)
            return
        self.record(name, False, got=got, want_code=code)


def wait_until(condition: Callable[[], bool], seconds: float = STEP) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class RawPeer:
    """A plain paho connection for what the generated client cannot do: stale property versions
    and updates to read-only properties. It records every update response it receives."""

    def __init__(self, host: str, port: int, instance_id: str) -> None:
        self.client_id = f"py-raw-{uuid.uuid4().hex[:12]}"
        self.instance_id = instance_id
        self.responses: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.values: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(STEP):
            raise RuntimeError("the raw peer could not subscribe")

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        props = Properties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = 1
        client.subscribe(
            [
                (f"client/{self.client_id}/InteropProbe/property/+/update/response", 1),
                (f"InteropProbe/{self.instance_id}/property/+/value", 1),
            ],
            properties=props,
        )

    def _on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        if message.retain:
            return
        if message.topic.startswith("client/"):
            self.responses.put(message)
        else:
            self.values.put(message)

    def update(self, prop: str, payload: dict[str, Any], version: int) -> str:
        """Publishes an update request for `prop` with `PropertyVersion: version`; returns its
        correlation id."""
        correlation = str(uuid.uuid4())
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        props.ResponseTopic = (
            f"client/{self.client_id}/InteropProbe/property/{prop}/update/response"
        )
        props.CorrelationData = correlation.encode()
        props.UserProperty = [("PropertyVersion", str(version))]
        self._client.publish(
            f"InteropProbe/{self.instance_id}/property/{prop}/update",
            json.dumps(payload).encode(),
            qos=1,
            properties=props,
        ).wait_for_publish(STEP)
        return correlation

    def response(self, correlation: str, seconds: float = STEP) -> mqtt.MQTTMessage | None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.responses.get(timeout=left)
            except queue.Empty:
                return None
            if getattr(message.properties, "CorrelationData", b"") == correlation.encode():
                return message
        return None

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def user_properties(message: mqtt.MQTTMessage) -> dict[str, str]:
    return dict(getattr(message.properties, "UserProperty", None) or [])


class Signals:
    """Collects the signals the generated client delivers, re-validated into payload models.

    The generated client calls handlers with `model_dump()` keyword arguments (snake_case names,
    nested structs as dicts, binary as base64 text), so each is turned back into its model."""

    def __init__(self) -> None:
        self.received: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    def handler(self, name: str, model: Any) -> Callable[..., None]:
        def receive(**kwargs: Any) -> None:
            value = model.model_validate(kwargs) if model is not None else kwargs
            with self._lock:
                self.received.setdefault(name, []).append(value)

        return receive

    def first(self, name: str) -> Any:
        with self._lock:
            got = self.received.get(name)
            return got[0] if got else None

    def count(self, name: str) -> int:
        with self._lock:
            return len(self.received.get(name, []))


def discover(
    conn: Mqtt5Connection, builder: InteropProbeClientBuilder, instance_id: str, checks: Checks
) -> InteropProbeClient | None:
    found: dict[str, DiscoveredInstance] = {}
    event = threading.Event()

    def on_discovered(entry: DiscoveredInstance) -> None:
        found[entry.instance_id] = entry
        if entry.instance_id == instance_id:
            event.set()

    discoverer = InteropProbeClientDiscoverer(conn, builder)
    discoverer.add_discovered_service_callback(on_discovered)
    if not checks.record("discovered", event.wait(10.0), instance=instance_id, seen=sorted(found)):
        return None
    entry = found[instance_id]
    info = entry.info
    checks.equal(
        "interface_info",
        (info.interface_name, info.title, info.version, info.instance),
        ("InteropProbe", "Interop probe interface", "0.3.0", instance_id),
    )
    return builder.build(conn, entry)


def check_initial_properties(client: InteropProbeClient, checks: Checks) -> None:
    checks.equal("initial_current_level", client.current_level, values.INITIAL_LEVEL)
    checks.equal("initial_position", client.position, values.INITIAL_POSITION)
    checks.equal("initial_last_reading", client.last_reading, None)
    checks.equal("initial_firmware", client.firmware, values.INITIAL_FIRMWARE)
    checks.equal("initial_uptime", client.uptime, values.INITIAL_UPTIME)


def check_methods(client: InteropProbeClient, checks: Checks) -> None:
    checks.call("add_numbers", client.add_numbers(1, 2), 3)
    checks.call("add_numbers_optional", client.add_numbers(1, 2, 3), 6)
    checks.call_fails("add_numbers_refused", client.add_numbers(-1, 2), 1, values.NEGATIVE_REFUSAL)
    checks.call("divide", client.divide(3.0, 2.0), 1.5)
    checks.call_fails("divide_by_zero", client.divide(1.0, 0.0), 2)
    checks.call("describe", client.describe(), values.DESCRIBED)
    checks.call("reset", client.reset(), None)
    checks.call(
        "locate",
        client.locate(where=Point(x=3.0, y=4.0, label="p"), loop=2, match="m"),
        LocateMethodResponse(distance=10.0, label="m"),
    )
    checks.call(
        "locate_without_match",
        client.locate(where=Point(x=0.0, y=1.5, label=None), loop=1),
        LocateMethodResponse(distance=1.5, label=None),
    )
    checks.call(
        "echo_bytes",
        client.echo_bytes(values.RAW, values.TAKEN_AT, None),
        EchoBytesMethodResponse(data=values.RAW, when=values.TAKEN_AT, maybe_data=None),
    )
    checks.call(
        "echo_bytes_empty",
        client.echo_bytes(b"", values.LEAP_DAY, b"\x01\x02"),
        EchoBytesMethodResponse(data=b"", when=values.LEAP_DAY, maybe_data=b"\x01\x02"),
    )
    checks.call("echo_reading", client.echo_reading(values.READING), values.READING)
    lists = EchoListsMethodResponse(
        numbers=[0, -1, 2**31 - 1],
        stamps=[values.TAKEN_AT, values.LEAP_DAY],
        gaps=[values.ONE_AND_A_HALF_SECONDS, timedelta(days=1, hours=2), timedelta(0)],
        blobs=[b"", b"\x01", b"\x01\x02", b"\x01\x02\x03"],
        colors=[Color.BLUE, Color.RED],
        points=[Point(x=1.0, y=2.0, label=None), Point(x=-1.0, y=0.5, label="q")],
        maybe_words=None,
    )
    checks.call(
        "echo_lists",
        client.echo_lists(
            lists.numbers, lists.stamps, lists.gaps, lists.blobs, lists.colors, lists.points, None
        ),
        lists,
    )
    checks.call(
        "echo_lists_words",
        client.echo_lists([], [], [], [], [], [], ["x", ""]),
        EchoListsMethodResponse(
            numbers=[], stamps=[], gaps=[], blobs=[], colors=[], points=[], maybe_words=["x", ""]
        ),
    )


def check_signals(client: InteropProbeClient, signals: Signals, checks: Checks) -> None:
    checks.call("emit_all", client.emit_all(), values.EMITTED)
    expected = {
        "value_changed": values.VALUE_CHANGED,
        "reading_taken": values.READING_TAKEN,
        "scalars_sent": values.SCALARS_SENT,
        "lists_sent": values.LISTS_SENT,
        "tick": {},
    }
    wait_until(lambda: all(signals.count(name) > 0 for name in expected))
    for name, want in expected.items():
        checks.equal(f"signal_{name}", signals.first(name), want)


def check_properties(client: InteropProbeClient, raw: RawPeer, checks: Checks) -> None:
    client.current_level = 8
    checks.record(
        "set_current_level", wait_until(lambda: client.current_level == 8), got=client.current_level
    )

    moved = PositionProperty(x=3.0, y=-4.5, mode=Mode.STOPPED, label="moved")
    client.position = moved
    checks.record("set_position", wait_until(lambda: client.position == moved), got=client.position)

    client.last_reading = values.READING
    checks.record(
        "set_last_reading",
        wait_until(lambda: client.last_reading == values.READING),
        got=client.last_reading,
    )

    # A stale version: one behind the version the client last saw.
    current = client._property_current_level_version  # noqa: SLF001 -- no public accessor.
    correlation = raw.update("currentLevel", {"level": 99}, current - 1)
    response = raw.response(correlation)
    if response is None:
        checks.record("stale_version_out_of_sync", False, error="no update response")
    else:
        props = user_properties(response)
        body = json.loads(response.payload or b"null")
        checks.record(
            "stale_version_out_of_sync",
            props.get("ReturnCode") == "12" and body == {"level": 8},
            user_properties=props,
            payload=body,
        )
        checks.equal(
            "stale_version_reports_current_version", props.get("PropertyVersion"), str(current)
        )
    time.sleep(0.3)
    checks.equal("stale_version_not_applied", client.current_level, 8)

    # Read-only properties: the generated client has no setter, and a raw update changes nothing.
    for prop in ("firmware", "uptime"):
        try:
            setattr(client, prop, getattr(client, prop))
            checks.record(f"read_only_{prop}_no_setter", False, error="the setter exists")
        except AttributeError:
            checks.record(f"read_only_{prop}_no_setter", True)
    while not raw.values.empty():
        raw.values.get_nowait()
    firmware_version = client._property_firmware_version  # noqa: SLF001 -- no public accessor.
    correlation = raw.update(
        "firmware",
        {"image": "AA==", "builtAt": "2020-01-01T00:00:00Z", "sizes": []},
        firmware_version,
    )
    response = raw.response(correlation, seconds=1.5)
    changed = [m.topic for m in list(raw.values.queue) if m.topic.endswith("/firmware/value")]
    refused = response is None or user_properties(response).get("ReturnCode") not in (None, "0")
    checks.record(
        "read_only_update_refused",
        refused and not changed and client.firmware == values.INITIAL_FIRMWARE,
        response=None if response is None else user_properties(response),
        value_messages=changed,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instance_id")
    parser.add_argument("--client-id", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if args.verbose:
        _handler.setLevel(logging.DEBUG)

    checks = Checks()
    client_id = args.client_id or f"py-client-{uuid.uuid4().hex[:12]}"
    transport = MqttTransport(MqttTransportType.TCP, args.host, args.port)
    conn = Mqtt5Connection(transport, client_id=client_id, lwt=StingerPresence(client_id=client_id))

    signals = Signals()
    builder = InteropProbeClientBuilder()
    builder.receive_value_changed(signals.handler("value_changed", ValueChangedSignalPayload))
    builder.receive_reading_taken(signals.handler("reading_taken", ReadingTakenSignalPayload))
    builder.receive_scalars_sent(signals.handler("scalars_sent", ScalarsSentSignalPayload))
    builder.receive_lists_sent(signals.handler("lists_sent", ListsSentSignalPayload))
    builder.receive_tick(signals.handler("tick", None))

    client = discover(conn, builder, args.instance_id, checks)
    if client is not None:
        raw = RawPeer(args.host, args.port, args.instance_id)
        try:
            check_initial_properties(client, checks)
            check_methods(client, checks)
            check_signals(client, signals, checks)
            check_properties(client, raw, checks)
        finally:
            raw.close()

    ok = checks.failed == 0 and checks.passed > 0
    print(
        json.dumps(
            {"check": "summary", "ok": ok, "passed": checks.passed, "failed": checks.failed}
        ),
        flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
