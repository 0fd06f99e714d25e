"""The fixed values of tests/interop/probe_values.py in our generated `interop_probe` types.

Our Python peers for StingerIPC's Python peers use them; change both files together.
"""

from __future__ import annotations

import datetime as dt

from interop_probe import (
    Color,
    DescribeReply,
    FirmwareProperty,
    ListsSent,
    Mode,
    Point,
    PositionProperty,
    Reading,
    ReadingTaken,
    ScalarsSent,
    ValueChanged,
)

UTC = dt.timezone.utc
TAKEN_AT = dt.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
LEAP_DAY = dt.datetime(2024, 2, 29, 12, 0, 0, tzinfo=UTC)
ONE_AND_A_HALF_SECONDS = dt.timedelta(seconds=1.5)
TWO_MINUTES_THREE = dt.timedelta(minutes=2, seconds=3)
RAW = b"\x00\x01hello\xff"

READING = Reading(
    taken_at=TAKEN_AT,
    exposure=ONE_AND_A_HALF_SECONDS,
    raw_data=RAW,
    where=Point(1.5, -2.0, None),
    color=Color.BLUE,
    tags=["a", "b"],
    samples=None,
    count=3,
    valid=True,
    origin=Point(0.0, 0.0, "origin"),
    last_seen=None,
    timeout=TWO_MINUTES_THREE,
    checksum=b"\xde\xad\xbe\xef",
    mode=Mode.PAUSED,
)

INITIAL_LEVEL = 7
INITIAL_POSITION = PositionProperty(1.0, 2.0, Mode.IDLE, None)
INITIAL_FIRMWARE = FirmwareProperty(b"\x7fELF\x00", LEAP_DAY, [1, 2, 3])
INITIAL_UPTIME = dt.timedelta(hours=1, milliseconds=500)

VALUE_CHANGED = ValueChanged(42, Color.BLUE, "apples")
READING_TAKEN = ReadingTaken(READING, [Mode.IDLE, Mode.PAUSED, Mode.STOPPED])
SCALARS_SENT = ScalarsSent(
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
LISTS_SENT = ListsSent(
    numbers=[1, -2, 3],
    ratios=[0.5, 1.0, -2.25],
    flags=[True, False],
    words=["a", "b c", ""],
    stamps=[LEAP_DAY, TAKEN_AT],
    gaps=[dt.timedelta(0), ONE_AND_A_HALF_SECONDS, dt.timedelta(days=1, hours=2)],
    blobs=[b"", b"\x01", b"\x01\x02", b"\x01\x02\x03"],
    colors=[Color.RED, Color.GREEN, Color.BLUE],
    points=[Point(0.0, 0.0, None), Point(1.5, -2.0, "p")],
    maybe_numbers=None,
)
EMITTED = 5
DESCRIBED = DescribeReply("probe", Mode.PAUSED, TWO_MINUTES_THREE, Point(0.5, 0.25, "c"))
NEGATIVE_REFUSAL = "negative numbers are refused"
