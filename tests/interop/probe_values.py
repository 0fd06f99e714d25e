"""The fixed values both sides of the interop tests use, in StingerIPC's generated Python types.

`tests/it/interop.rs` holds the same values in Rust; change both together. The generated package
`interopprobeipc` must be importable (setup.sh prints the directory to put on PYTHONPATH).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from interopprobeipc.interface_types import (
    Color,
    DescribeMethodResponse,
    FirmwareProperty,
    ListsSentSignalPayload,
    LocateMethodResponse,
    Mode,
    Point,
    PositionProperty,
    Reading,
    ReadingTakenSignalPayload,
    ScalarsSentSignalPayload,
    ValueChangedSignalPayload,
)
from interopprobeipc.property import InteropProbeInitialPropertyValues

# 2025-01-02T03:04:05.678000Z on the wire: six fractional digits and `Z`.
TAKEN_AT = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
# 2024-02-29T12:00:00Z on the wire: no fraction.
LEAP_DAY = datetime(2024, 2, 29, 12, 0, 0, tzinfo=UTC)
# PT1.5S on the wire.
ONE_AND_A_HALF_SECONDS = timedelta(seconds=1.5)
# PT2M3S on the wire.
TWO_MINUTES_THREE = timedelta(minutes=2, seconds=3)
# AAFoZWxsb/8= on the wire: padded standard base64 with a `/`.
RAW = b"\x00\x01hello\xff"

READING = Reading(
    taken_at=TAKEN_AT,
    exposure=ONE_AND_A_HALF_SECONDS,
    raw_data=RAW,
    where=Point(x=1.5, y=-2.0, label=None),
    color=Color.BLUE,
    tags=["a", "b"],
    samples=None,
    count=3,
    valid=True,
    origin=Point(x=0.0, y=0.0, label="origin"),
    last_seen=None,
    timeout=TWO_MINUTES_THREE,
    checksum=b"\xde\xad\xbe\xef",
    mode=Mode.PAUSED,
)

INITIAL_LEVEL = 7
INITIAL_POSITION = PositionProperty(x=1.0, y=2.0, mode=Mode.IDLE, label=None)
INITIAL_FIRMWARE = FirmwareProperty(image=b"\x7fELF\x00", built_at=LEAP_DAY, sizes=[1, 2, 3])
# PT1H0.5S on the wire.
INITIAL_UPTIME = timedelta(hours=1, milliseconds=500)


def initial_property_values() -> InteropProbeInitialPropertyValues:
    """The properties a test server starts with; `lastReading` starts as null."""
    return InteropProbeInitialPropertyValues(
        current_level=INITIAL_LEVEL,
        position=INITIAL_POSITION,
        last_reading=None,
        firmware=INITIAL_FIRMWARE,
        uptime=INITIAL_UPTIME,
    )


VALUE_CHANGED = ValueChangedSignalPayload(new_value=42, color=Color.BLUE, note="apples")
READING_TAKEN = ReadingTakenSignalPayload(
    reading=READING, modes=[Mode.IDLE, Mode.PAUSED, Mode.STOPPED]
)
SCALARS_SENT = ScalarsSentSignalPayload(
    number=-7,
    ratio=2.5,
    flag=True,
    text='h\u00e9llo "quoted"',
    at=TAKEN_AT,
    lasts=ONE_AND_A_HALF_SECONDS,
    blob=RAW,
    mode=Mode.RUNNING,
    maybe_number=None,
    maybe_ratio=0.25,
    maybe_flag=None,
    maybe_at=None,
    maybe_lasts=TWO_MINUTES_THREE,
    maybe_blob=None,
    maybe_color=Color.GREEN,
)
LISTS_SENT = ListsSentSignalPayload(
    numbers=[1, -2, 3],
    ratios=[0.5, 1.0, -2.25],
    flags=[True, False],
    words=["a", "b c", ""],
    stamps=[LEAP_DAY, TAKEN_AT],
    gaps=[timedelta(0), ONE_AND_A_HALF_SECONDS, timedelta(days=1, hours=2)],
    blobs=[b"", b"\x01", b"\x01\x02", b"\x01\x02\x03"],
    colors=[Color.RED, Color.GREEN, Color.BLUE],
    points=[Point(x=0.0, y=0.0, label=None), Point(x=1.5, y=-2.0, label="p")],
    maybe_numbers=None,
)
# What `emitAll` answers: the number of signals it emitted.
EMITTED = 5

DESCRIBED = DescribeMethodResponse(
    name="probe", mode=Mode.PAUSED, uptime=TWO_MINUTES_THREE, center=Point(x=0.5, y=0.25, label="c")
)
# Refusal text of `addNumbers` for negative input (ReturnCode 1).
NEGATIVE_REFUSAL = "negative numbers are refused"


def add_numbers(first: int, second: int, third: int | None) -> int | None:
    """The sum, or None when a number is negative (the server then answers ReturnCode 1)."""
    numbers = [first, second] + ([third] if third is not None else [])
    if any(n < 0 for n in numbers):
        return None
    return sum(numbers)


def locate(where: Point, loop: int, match: str | None) -> LocateMethodResponse:
    """The distance of `where` from the origin times `loop`, labelled with `match`."""
    return LocateMethodResponse(distance=math.hypot(where.x, where.y) * loop, label=match)
