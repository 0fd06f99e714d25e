"""A Python Everything server: echoes every value; `echoNothing` emits a `sample` signal.

Usage: everything_server.py ENDPOINT_URL. Prints READY once serving.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sys

from values import AT, BLOB, shape

from everything import (
    Color,
    EchoCollectionsReply,
    EchoNestedReply,
    EchoScalarsReply,
    EchoTimesReply,
    EverythingHandler,
    EverythingProperties,
    EverythingServer,
    SettingsProperty,
    Tree,
    Unsupported,
    UptimeProperty,
)
import switchboard as sb


class Echo(EverythingHandler):
    server: EverythingServer

    async def echo_scalars(self, ctx: sb.CallContext, i8: int, i16: int, i32: int, i64: int, u8: int, u16: int, u32: int, u64: int, plain: int, f32: float, f64: float, flag: bool, text: str, color: Color) -> EchoScalarsReply:  # noqa: E501
        if text == "unsupported":
            raise Unsupported("this text is not echoed")
        if text == "fail":
            raise RuntimeError("secret detail at /srv/everything.py:1")
        return EchoScalarsReply(i8, i16, i32, i64, u8, u16, u32, u64, plain, f32, f64, flag, text, color)

    async def echo_times(self, ctx: sb.CallContext, at: dt.datetime, lasts: dt.timedelta, blob: bytes, maybe_at: dt.datetime | None, maybe_lasts: dt.timedelta | None, maybe_blob: bytes | None, stamps: dict[str, dt.datetime], gaps: list[dt.timedelta | None]) -> EchoTimesReply:  # noqa: E501
        return EchoTimesReply(at, lasts, blob, maybe_at, maybe_lasts, maybe_blob, stamps=stamps, gaps=gaps)

    async def echo_collections(self, ctx, numbers, names, points, colors, times, blobs, maybe, scores, shapes):  # type: ignore[no-untyped-def]
        return EchoCollectionsReply(numbers, names, points, colors, times, blobs, maybe, scores, shapes)

    async def echo_nested(self, ctx, shape, maybe_shape, maybe_text, maybe_list):  # type: ignore[no-untyped-def]
        return EchoNestedReply(shape, maybe_shape, maybe_text, maybe_list)

    async def echo_nothing(self, ctx: sb.CallContext) -> None:
        await self.server.emit_sample(2**64 - 1, -0.5, AT, Color.BLUE, shape(), raw=BLOB)
        await self.server.emit_sample(0, 0.0, AT, Color.RED, raw=b"")

    async def echo_tree(self, ctx: sb.CallContext, tree: Tree) -> Tree:
        return tree


async def main() -> None:
    handler = Echo()
    properties = EverythingProperties(
        settings=SettingsProperty("initial", 255, None),
        uptime=UptimeProperty(AT, dt.timedelta(days=1, seconds=1, microseconds=500000)),
    )
    handler.server = await EverythingServer.serve(handler, properties, sys.argv[1])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await handler.server.close()  # clears its retained messages on an MQTT broker
    print("CLOSED", flush=True)


asyncio.run(main())
