"""Runs StingerIPC's generated Python server for InteropProbe, as the interop tests' reference peer.

Usage: py_server.py INSTANCE_ID [--client-id ID] [--host HOST] [--port PORT] [--verbose]

The handlers are deterministic (see probe_values.py); `emitAll` emits every signal once with
fixed values. Prints "ready" on standard output once it serves, and shuts down cleanly on SIGTERM
(the generated server then clears its retained interface info).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from datetime import datetime, timedelta

# The generated modules call logging.basicConfig(level=DEBUG) on import; configuring logging first
# makes that a no-op, so only warnings reach standard error unless --verbose is given.
_handler = logging.StreamHandler(sys.stderr)
_handler.setLevel(logging.WARNING)
logging.basicConfig(level=logging.DEBUG, handlers=[_handler])

from interopprobeipc.interface_types import (  # noqa: E402
    DescribeMethodResponse,
    EchoBytesMethodResponse,
    EchoListsMethodResponse,
    LocateMethodResponse,
    Point,
    Reading,
)
from interopprobeipc.lwt import StingerPresence  # noqa: E402
from interopprobeipc.server import InteropProbeServer  # noqa: E402
from pyqttier import Mqtt5Connection, MqttTransport, MqttTransportType  # noqa: E402
from stinger_python_utils.return_codes import ClientErrorStingerMethodException  # noqa: E402

import probe_values as values  # noqa: E402


def serve(server: InteropProbeServer) -> None:
    """Registers a handler for every method of the interface."""

    @server.handle_add_numbers
    def add_numbers(first: int, second: int, third: int | None = None) -> int:
        total = values.add_numbers(first, second, third)
        if total is None:
            raise ClientErrorStingerMethodException(values.NEGATIVE_REFUSAL)
        return total

    @server.handle_divide
    def divide(numerator: float, denominator: float) -> float:
        # Dividing by zero raises ZeroDivisionError, which the generated server answers with
        # ReturnCode 2 (Server Error).
        return numerator / denominator

    @server.handle_describe
    def describe() -> DescribeMethodResponse:
        return values.DESCRIBED

    @server.handle_reset
    def reset() -> None:
        return None

    @server.handle_locate
    def locate(where: Point, loop: int, match: str | None = None) -> LocateMethodResponse:
        return values.locate(where, loop, match)

    @server.handle_echo_bytes
    def echo_bytes(
        data: bytes, when: datetime, maybe_data: bytes | None = None
    ) -> EchoBytesMethodResponse:
        return EchoBytesMethodResponse(data=data, when=when, maybe_data=maybe_data)

    @server.handle_echo_reading
    def echo_reading(reading: Reading) -> Reading:
        return reading

    @server.handle_echo_lists
    def echo_lists(
        numbers: list[int],
        stamps: list[datetime],
        gaps: list[timedelta],
        blobs: list[bytes],
        colors: list,
        points: list[Point],
        maybe_words: list[str] | None = None,
    ) -> EchoListsMethodResponse:
        return EchoListsMethodResponse(
            numbers=numbers,
            stamps=stamps,
            gaps=gaps,
            blobs=blobs,
            colors=colors,
            points=points,
            maybe_words=maybe_words,
        )

    @server.handle_emit_all
    def emit_all() -> int:
        emit_every_signal(server)
        return values.EMITTED


def emit_every_signal(server: InteropProbeServer) -> None:
    """Emits each signal once, with the fixed values of probe_values.py."""
    changed = values.VALUE_CHANGED
    server.emit_value_changed(changed.new_value, changed.color, changed.note)
    taken = values.READING_TAKEN
    server.emit_reading_taken(taken.reading, taken.modes)
    s = values.SCALARS_SENT
    server.emit_scalars_sent(
        s.number,
        s.ratio,
        s.flag,
        s.text,
        s.at,
        s.lasts,
        s.blob,
        s.mode,
        s.maybe_number,
        s.maybe_ratio,
        s.maybe_flag,
        s.maybe_at,
        s.maybe_lasts,
        s.maybe_blob,
        s.maybe_color,
    )
    lists = values.LISTS_SENT
    server.emit_lists_sent(
        lists.numbers,
        lists.ratios,
        lists.flags,
        lists.words,
        lists.stamps,
        lists.gaps,
        lists.blobs,
        lists.colors,
        lists.points,
        lists.maybe_numbers,
    )
    server.emit_tick()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instance_id")
    parser.add_argument(
        "--client-id", default=None, help="MQTT client id (default: py-server-<instance>)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--verbose", action="store_true", help="log everything to standard error")
    args = parser.parse_args()
    if args.verbose:
        _handler.setLevel(logging.DEBUG)

    client_id = args.client_id or f"py-server-{args.instance_id}"
    transport = MqttTransport(MqttTransportType.TCP, args.host, args.port)
    conn = Mqtt5Connection(transport, client_id=client_id, lwt=StingerPresence(client_id=client_id))
    server = InteropProbeServer(conn, args.instance_id, values.initial_property_values())
    serve(server)

    stop = threading.Event()
    # Replaces the generated SIGTERM handler, which shuts the server down but keeps the process.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    deadline = time.monotonic() + 10
    while not conn.is_connected():
        if time.monotonic() > deadline:
            print(f"no connection to {args.host}:{args.port} within 10 s", file=sys.stderr)
            return 1
        time.sleep(0.02)
    # The subscriptions and retained property values queued before the connection go out on
    # connect. The advert thread publishes the interface info only after its first poll (up to
    # 2 s later), so publish it now; the thread's copy then merely refreshes it.
    server.publish_interface_info()
    time.sleep(0.2)
    print("ready", flush=True)

    stop.wait()
    server.shutdown(timeout=1.0)
    time.sleep(0.3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
