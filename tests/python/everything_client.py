"""Drives an Everything server (Rust or Python) through every type with edge values.

Usage: everything_client.py ENDPOINT_URL. Prints PASS when every check passed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import sys

from values import AT, BLOB, EPOCH, scalars, shape, tree

from everything import (
    Color,
    EchoNestedReply,
    EchoScalarsReply,
    EverythingBlockingClient,
    EverythingClient,
    Point,
    SettingsProperty,
    Shape,
    Unsupported,
)
import switchboard as sb

URL = sys.argv[1]
STEP = 5.0


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    print("ok", what, flush=True)


async def main() -> None:
    client = await asyncio.wait_for(EverythingClient.connect(URL), STEP)

    for low in (True, False):
        values = scalars(low)
        reply = await client.echo_scalars(**values)  # type: ignore[arg-type]
        check(reply == EchoScalarsReply(**values), f"scalars round-trip (low={low})")  # type: ignore[arg-type]
        check(type(reply.color) is Color, "enums decode to the IntEnum")

    try:
        await client.echo_scalars(**{**scalars(True), "text": "unsupported"})  # type: ignore[arg-type]
        check(False, "declared error raised")
    except Unsupported as error:
        check(error.reason == "this text is not echoed", "declared error carries its fields")
        check(error.code == sb.ErrorCode.CLIENT_ERROR and error.name == "Unsupported", "declared error code and name")

    for bad, what in ((128, "i8 above range"), (True, "bool as integer"), (1.0, "float as integer")):
        try:
            await client.echo_scalars(**{**scalars(True), "i8": bad})  # type: ignore[arg-type]
            check(False, what)
        except sb.InvalidValueError as error:
            check("i8" in str(error), f"bad value refused locally: {what}")
    try:
        await client.echo_scalars(**{**scalars(True), "f64": math.nan})  # type: ignore[arg-type]
        check(False, "NaN refused")
    except sb.InvalidValueError:
        check(True, "NaN refused locally")

    gaps = [dt.timedelta(0), None, dt.timedelta(milliseconds=1500), dt.timedelta(days=-1, seconds=86399), dt.timedelta(days=400, hours=5, minutes=6, seconds=7, microseconds=8)]
    times = await client.echo_times(AT, dt.timedelta(seconds=1.5), BLOB, stamps={}, gaps=gaps)
    check(times.at == AT and times.lasts == dt.timedelta(seconds=1.5) and times.blob == BLOB, "datetime, duration, binary")
    check(times.maybe_at is None and times.maybe_lasts is None and times.maybe_blob is None, "absent optionals")
    check(times.gaps == gaps and times.stamps == {}, "durations with nulls, negative and large")
    offset = dt.datetime(2000, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    times = await client.echo_times(EPOCH, dt.timedelta(0), b"", offset, -dt.timedelta(seconds=1), b"\xff" * 1000, stamps={"a": AT, "": EPOCH, "\u00fc": offset}, gaps=[])
    check(times.maybe_at == offset and times.maybe_at.utcoffset() == dt.timedelta(0), "offsets become UTC")
    check(times.maybe_lasts == -dt.timedelta(seconds=1) and times.blob == b"", "negative duration and empty binary")
    check(times.stamps == {"a": AT, "": EPOCH, "\u00fc": offset} and times.maybe_blob == b"\xff" * 1000, "maps of datetimes")

    coll = await client.echo_collections(
        [0, -(2**31), 2**31 - 1], ["", "a b", "\u00e9"], [Point(1.0, 2.0)], list(Color), [AT, EPOCH],
        [b"", b"\x00", BLOB], [None, 1.5, None], {"x": -0.5, "y": 1e308}, {"s": shape()},
    )
    check(coll.numbers == [0, -(2**31), 2**31 - 1] and coll.colors == list(Color), "arrays of ints and enums")
    check(coll.maybe == [None, 1.5, None] and coll.blobs == [b"", b"\x00", BLOB], "arrays of optionals and binaries")
    check(coll.shapes == {"s": shape()} and coll.scores == {"x": -0.5, "y": 1e308}, "maps of structs and floats")
    empty = await client.echo_collections([], [], [], [], [], [], [], {}, {})
    check(empty.numbers == [] and empty.shapes == {}, "empty collections")

    nested = await client.echo_nested(shape(), None, None, None)
    check(nested.shape == shape() and nested.maybe_shape is None and nested.maybe_list is None, "nested struct, null optionals")
    bare = Shape(Point(0.0, 0.0), corners=[])
    check(bare.label is None and bare.note is None and bare.weight is None, "optional fields default to None")
    check(await client.echo_nested(bare) == EchoNestedReply(bare), "optional arguments default to None")
    nested = await client.echo_nested(shape(), shape(), "", [])
    check(nested.maybe_shape == shape() and nested.maybe_text == "" and nested.maybe_list == [], "present optionals")
    check(await client.echo_tree(tree()) == tree(), "recursive struct")

    samples = await client.subscribe_sample()
    check(await client.echo_nothing() is None, "no arguments, empty reply")
    first = await samples.next(STEP)
    second = await samples.next(STEP)
    assert first is not None and second is not None
    check(first.counter == 2**64 - 1 and first.shape == shape() and first.raw == BLOB and first.at == AT, "signal with every type")
    check(second.shape is None and second.raw == b"" and second.color is Color.RED, "signal with null optional")
    samples.close()

    settings = await client.get_settings()
    check(isinstance(settings, SettingsProperty), "read a property")
    watch = await client.watch_settings()
    current = await watch.next(STEP)
    check(current == settings, "a watch starts with the current value")
    new = SettingsProperty("n\u00e4me", 0, Color.GREEN)
    check(await client.set_settings(new) == new, "update a property")
    check(await watch.next(STEP) == new, "a watch sees the change")
    check(await client.get_settings() == new, "read back the update")
    uptime = await client.get_uptime()
    check(uptime.elapsed == dt.timedelta(days=1, seconds=1, microseconds=500000), "read-only property")
    try:
        await client.set_settings(SettingsProperty("x", 256, None))
        check(False, "u8 range on update")
    except sb.InvalidValueError:
        check(True, "property value checked before sending")
    watch.close()
    await client.close()

    # The blocking API, from a thread without an event loop.
    def blocking() -> None:
        with EverythingBlockingClient.connect(URL) as bc:
            check(bc.echo_tree(tree()) == tree(), "blocking call")
            check(bc.echo_nested(bare) == EchoNestedReply(bare), "blocking call without optional arguments")
            times = bc.echo_times(AT, dt.timedelta(0), b"", stamps={}, gaps=[])
            check(times.maybe_at is None and times.stamps == {}, "blocking call with keyword-only arguments")
            check(bc.get_settings() == new, "blocking property read")
            subs = bc.subscribe_sample()
            bc.echo_nothing()
            got = subs.next(STEP)
            check(got is not None and got.counter == 2**64 - 1, "blocking subscription")
            try:
                bc.echo_scalars(**{**scalars(True), "text": "unsupported"})  # type: ignore[arg-type]
            except Unsupported:
                check(True, "blocking declared error")

    await asyncio.get_running_loop().run_in_executor(None, blocking)
    print("PASS", flush=True)


asyncio.run(main())
