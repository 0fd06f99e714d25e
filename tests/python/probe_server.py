"""Our generated Python server for InteropProbe, with the handlers of tests/interop/py_server.py.

Usage: probe_server.py ENDPOINT_URL. Prints READY once serving; closes cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import signal
import sys

import probe_common as v
from interop_probe import (
    Color,
    DescribeReply,
    EchoBytesReply,
    EchoListsReply,
    InteropProbeHandler,
    InteropProbeProperties,
    InteropProbeServer,
    LocateReply,
    Point,
    Reading,
)
import switchboard as sb


class Probe(InteropProbeHandler):
    server: InteropProbeServer

    async def add_numbers(self, ctx: sb.CallContext, first: int, second: int, third: int | None) -> int:
        numbers = [first, second] + ([third] if third is not None else [])
        if any(n < 0 for n in numbers):
            raise sb.RemoteError.client_error(v.NEGATIVE_REFUSAL)
        return sum(numbers)

    async def divide(self, ctx: sb.CallContext, numerator: float, denominator: float) -> float:
        return numerator / denominator  # ZeroDivisionError: code 2

    async def describe(self, ctx: sb.CallContext) -> DescribeReply:
        return v.DESCRIBED

    async def reset(self, ctx: sb.CallContext) -> None:
        return None

    async def locate(self, ctx: sb.CallContext, where: Point, loop: int, match: str | None) -> LocateReply:
        return LocateReply(math.hypot(where.x, where.y) * loop, match)

    async def echo_bytes(self, ctx: sb.CallContext, data: bytes, when: dt.datetime, maybe_data: bytes | None) -> EchoBytesReply:
        return EchoBytesReply(data, when, maybe_data)

    async def echo_reading(self, ctx: sb.CallContext, reading: Reading) -> Reading:
        return reading

    async def echo_lists(self, ctx, numbers, stamps, gaps, blobs, colors, points, maybe_words):  # type: ignore[no-untyped-def]
        return EchoListsReply(numbers, stamps, gaps, blobs, colors, points, maybe_words)

    async def emit_all(self, ctx: sb.CallContext) -> int:
        s = self.server
        c = v.VALUE_CHANGED
        await s.emit_value_changed(c.new_value, c.color, c.note)
        await s.emit_reading_taken(v.READING_TAKEN.reading, v.READING_TAKEN.modes)
        x = v.SCALARS_SENT
        await s.emit_scalars_sent(
            x.number, x.ratio, x.flag, x.text, x.at, x.lasts, x.blob, x.mode, x.maybe_number,
            x.maybe_ratio, x.maybe_flag, x.maybe_at, x.maybe_lasts, x.maybe_blob, x.maybe_color,
        )
        ls = v.LISTS_SENT
        await s.emit_lists_sent(
            ls.numbers, ls.ratios, ls.flags, ls.words, ls.stamps, ls.gaps, ls.blobs, ls.colors,
            ls.points, ls.maybe_numbers,
        )
        await s.emit_tick()
        return v.EMITTED


async def main() -> None:
    handler = Probe()
    properties = InteropProbeProperties(
        current_level=v.INITIAL_LEVEL,
        position=v.INITIAL_POSITION,
        last_reading=None,
        firmware=v.INITIAL_FIRMWARE,
        uptime=v.INITIAL_UPTIME,
    )
    handler.server = await InteropProbeServer.serve(handler, properties, sys.argv[1])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await handler.server.close()
    print("CLOSED", flush=True)


assert Color.RED == 10
asyncio.run(main())
