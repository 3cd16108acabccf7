"""wire/frozen.fast_init: the same __init__ as the frozen dataclass's own (arguments, defaults,
equality, frozenness), refused where it would not be; ``maker(cls)``, its class-call-free
constructor, gives the same values as ``cls(...)``."""

from __future__ import annotations

import dataclasses

import pytest

from synack.tcp import events
from synack.wire.frozen import fast_init, maker
from synack.wire.tcp import Flags, TcpSegment, Timestamps


@fast_init
@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 7


@dataclasses.dataclass(frozen=True, slots=True)
class PlainPoint:
    x: int
    y: int = 7


def test_same_values_as_the_dataclass_init():
    assert (Point(1).x, Point(1).y) == (1, 7)
    assert Point(1, 2) == Point(x=1, y=2) == Point(y=2, x=1)
    assert repr(Point(3, 4)).endswith("Point(x=3, y=4)")
    assert repr(Point(3, 4)).replace("Point", "") == repr(PlainPoint(3, 4)).replace("PlainPoint", "")
    assert hash(Point(3, 4)) == hash(Point(3, 4))
    with pytest.raises(TypeError):
        Point()                                   # x has no default
    with pytest.raises(TypeError):
        Point(1, 2, 3)
    with pytest.raises(TypeError):
        Point(1, z=3)


def test_still_frozen():
    p = Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 5                                   # type: ignore[misc]
    assert dataclasses.replace(p, y=9) == Point(1, 9)


def test_segments_and_options_compare_as_before():
    ts = Timestamps(4294967295, 1)
    assert (ts.val, ts.ecr) == (4294967295, 1)
    seg = TcpSegment(1, 2, 3, 4, Flags(0x10), 65535)
    assert seg == TcpSegment(sport=1, dport=2, seq=3, ack=4, flags=Flags(0x10), window=65535)
    assert seg.payload == b"" and seg.options == ()


@pytest.mark.parametrize("field", [
    dataclasses.field(default_factory=list),
    dataclasses.field(default=0, init=False),
    dataclasses.field(default=0, kw_only=True),
])
def test_fields_it_cannot_keep_are_refused(field):
    cls = dataclasses.make_dataclass("C", [("a", int), ("b", int, field)], frozen=True, slots=True)
    with pytest.raises(TypeError, match="not a plain field"):
        fast_init(cls)


def test_post_init_and_missing_slots_are_refused():
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithPost:
        a: int

        def __post_init__(self) -> None:
            pass

    with pytest.raises(TypeError, match="__post_init__"):
        fast_init(WithPost)

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    with pytest.raises(TypeError, match="slots"):
        fast_init(NoSlots)


def test_the_maker_builds_what_the_class_call_builds():
    make = maker(Point)
    for args, kwargs in (((1,), {}), ((1, 2), {}), ((), {"y": 3, "x": 4})):
        p, q = make(*args, **kwargs), Point(*args, **kwargs)
        assert type(p) is Point and p == q and hash(p) == hash(q) and repr(p) == repr(q)
        assert (p.x, p.y) == (q.x, q.y)
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.x = 5                               # type: ignore[misc]
    with pytest.raises(TypeError):
        make()                                    # x has no default
    with pytest.raises(TypeError):
        make(1, 2, 3)


def test_the_makers_of_the_per_segment_values():
    seg = maker(TcpSegment)(1, 2, 3, 4, Flags(0x10), 65535, 0, (Timestamps(5, 6),), b"ab", 1)
    assert type(seg) is TcpSegment
    assert seg == TcpSegment(1, 2, 3, 4, Flags(0x10), 65535, 0, (Timestamps(5, 6),), b"ab", 1)
    assert dataclasses.astuple(seg) == (1, 2, 3, 4, Flags(0x10), 65535, 0, ((5, 6),), b"ab", 1)
    assert maker(TcpSegment)(1, 2, 3, 4, Flags(0x10), 65535) == TcpSegment(1, 2, 3, 4, Flags(0x10), 65535)
    assert maker(Timestamps)(7, 8) == Timestamps(7, 8) and type(maker(Timestamps)(7, 8)) is Timestamps
    cid = events.ConnId("192.0.2.1", 80, "192.0.2.2", 1234)
    ev = maker(events.DataReceived)(1.5, cid, 10, True)
    assert type(ev) is events.DataReceived and ev == events.DataReceived(1.5, cid, 10, urgent=True)
    assert dataclasses.asdict(ev) == dataclasses.asdict(events.DataReceived(1.5, cid, 10, True))
    assert maker(events.DataReceived)(1.5, cid, 10) == events.DataReceived(1.5, cid, 10)
    assert maker(events.Closed)(2.0, cid) == events.Closed(2.0, cid)


def test_a_subclass_is_refused():
    @dataclasses.dataclass(frozen=True, slots=True)
    class Base:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Derived(Base):
        b: int

    with pytest.raises(TypeError, match="derive from object"):
        fast_init(Derived)
