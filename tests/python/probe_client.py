"""Our generated Python client against an InteropProbe server (StingerIPC's Python server, or
ours): every method, typed errors, every property and every signal with the values of
tests/interop/probe_values.py. Usage: probe_client.py ENDPOINT_URL. Prints PASS."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys

import probe_common as v
from interop_probe import (
    Color,
    EchoBytesReply,
    EchoListsReply,
    InteropProbeClient,
    LocateReply,
    Mode,
    Point,
    PositionProperty,
)
import switchboard as sb

URL = sys.argv[1]
STEP = 5.0


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    print("ok", what, flush=True)


async def main() -> None:
    client = await asyncio.wait_for(InteropProbeClient.connect(URL), 10)

    check(await client.add_numbers(1, 2, None) == 3, "add_numbers")
    check(await client.add_numbers(1, 2, 3) == 6, "add_numbers with the optional argument")
    try:
        await client.add_numbers(-1, 2, None)
        check(False, "negative numbers refused")
    except sb.RemoteError as error:
        check(error.code == sb.ErrorCode.CLIENT_ERROR and v.NEGATIVE_REFUSAL in error.message, "ReturnCode 1 with DebugInfo")
    check(await client.divide(3.0, 2.0) == 1.5, "divide")
    try:
        await client.divide(1.0, 0.0)
        check(False, "division by zero fails")
    except sb.RemoteError as error:
        check(error.code == sb.ErrorCode.SERVER_ERROR, "ReturnCode 2")
    check(await client.describe() == v.DESCRIBED, "several return values")
    check(await client.reset() is None, "no arguments, no return values")
    check(await client.locate(Point(3.0, 4.0, "p"), 2, "m") == LocateReply(10.0, "m"), "keyword-named arguments")
    check(await client.locate(Point(0.0, 1.5, None), 1, None) == LocateReply(1.5, None), "optional argument absent")
    check(await client.echo_bytes(v.RAW, v.TAKEN_AT, None) == EchoBytesReply(v.RAW, v.TAKEN_AT, None), "binary and datetime")
    check(await client.echo_bytes(b"", v.LEAP_DAY, b"\x01\x02") == EchoBytesReply(b"", v.LEAP_DAY, b"\x01\x02"), "empty binary")
    check(await client.echo_reading(v.READING) == v.READING, "nested struct with every type")
    lists = EchoListsReply(
        [0, -1, 2**31 - 1], [v.TAKEN_AT, v.LEAP_DAY],
        [v.ONE_AND_A_HALF_SECONDS, dt.timedelta(days=1, hours=2), dt.timedelta(0)],
        [b"", b"\x01", b"\x01\x02"], [Color.BLUE, Color.RED], [Point(1.0, 2.0, None), Point(-1.0, 0.5, "q")], ["x", ""],
    )
    got = await client.echo_lists(lists.numbers, lists.stamps, lists.gaps, lists.blobs, lists.colors, lists.points, lists.maybe_words)
    check(got == lists, "arrays of every item kind")

    check(await client.get_current_level() == v.INITIAL_LEVEL, "read a property")
    check(await client.get_position() == v.INITIAL_POSITION, "read a multi-value property")
    check(await client.get_last_reading() is None, "read a null optional struct property")
    check(await client.get_firmware() == v.INITIAL_FIRMWARE, "read a read-only property")
    check(await client.get_uptime() == v.INITIAL_UPTIME, "read a duration property")
    watch = await client.watch_current_level()
    check(await watch.next(STEP) == v.INITIAL_LEVEL, "watch starts with the retained value")
    check(await client.set_current_level(8) == 8, "update a property")
    check(await watch.next(STEP) == 8, "the watch sees the update")
    moved = PositionProperty(3.0, -4.5, Mode.STOPPED, "moved")
    check(await client.set_position(moved) == moved, "update a multi-value property")
    check(await client.set_last_reading(v.READING) == v.READING, "update a struct property")
    check(await client.get_last_reading() == v.READING, "read back the struct")
    check(not hasattr(client, "set_firmware"), "read-only properties have no setter")
    watch.close()

    names = ["value_changed", "reading_taken", "scalars_sent", "lists_sent", "tick"]
    subs = [await getattr(client, f"subscribe_{n}")() for n in names]
    check(await client.emit_all() == v.EMITTED, "emit_all")
    received = [await s.next(STEP) for s in subs]
    check(received[0] == v.VALUE_CHANGED, "signal valueChanged")
    check(received[1] == v.READING_TAKEN, "signal readingTaken")
    check(received[2] == v.SCALARS_SENT, "signal scalarsSent")
    check(received[3] == v.LISTS_SENT, "signal listsSent")
    check(received[4] is not None, "signal tick")
    await client.close()
    print("PASS", flush=True)


asyncio.run(main())
