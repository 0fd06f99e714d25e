"""Edge values shared by the Python test peers; tests/it/python.rs mirrors them."""

from __future__ import annotations

import datetime as dt

from everything import Color, Label, Point, Shape, Tree

UTC = dt.timezone.utc
AT = dt.datetime(2024, 2, 29, 23, 59, 59, 999999, UTC)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
BLOB = b"\x00\x01hello\xff"


def scalars(low: bool) -> dict[str, object]:
    """The extremes of every integer and float format, and awkward text."""
    if low:
        return dict(
            i8=-128, i16=-32768, i32=-(2**31), i64=-(2**63), u8=0, u16=0, u32=0, u64=0,
            plain=-(2**63), f32=-3.4028234663852886e38, f64=-1.7976931348623157e308,
            flag=False, text="", color=Color.RED,
        )
    return dict(
        i8=127, i16=32767, i32=2**31 - 1, i64=2**63 - 1, u8=255, u16=65535, u32=2**32 - 1,
        u64=2**64 - 1, plain=2**63 - 1, f32=0.5, f64=5e-324, flag=True,
        text='h\u00e9llo "quoted" \\ \n\t \U0001f600 \u0000', color=Color.BLACK,
    )


def shape() -> Shape:
    return Shape(
        origin=Point(0.0, -0.0),
        label=Label("l\u00e4bel", Color.BLUE),
        note=None,
        weight=1.5,
        corners=[Point(1.0, 2.0), Point(-1e300, 1e-300)],
    )


def tree() -> Tree:
    leaf = Tree("leaf", children=[])
    return Tree("root", Tree("parent", children=[]), children=[leaf, Tree("mid", children=[leaf])])
