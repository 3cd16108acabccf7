"""``Faults``, ``MemoryLink``, ``Tracer`` and ``step()`` without the simulator: time is passed by hand.

Faults must work around any link (TUN later), so these tests drive it with explicit ``now``
values and, where a fault must happen on a given packet, an RNG whose draws are scripted.
"""

from __future__ import annotations

import random

import pytest

from synack.drive import earliest, step
from synack.link.faults import FaultApplied, Faults
from synack.link.memory import MemoryLink
from synack.link.tracer import PacketIn, PacketOut, Tracer, summarize
from synack.sim.host import EchoHost
from synack.wire import icmp
from synack.wire.errors import WireError
from synack.wire.packet import parse_packet

A, B = "10.0.0.1", "10.0.0.2"


def pings(n, data=b"", dst=B, src=A):
    h = EchoHost(src)
    for i in range(n):
        h.ping(dst, 1, i, data or bytes(i % 40), 0.0)
    return h.packets_to_send(0.0)


def seq_of(p: bytes) -> int:
    return icmp.decode_icmp4(icmp.parse_icmp4(parse_packet(p).payload)).seq


class Scripted(random.Random):
    """``random()`` returns the scripted values in turn (then 0.99: no fault)."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0) if self.values else 0.99


class NoDraws(random.Random):
    def random(self) -> float:
        raise AssertionError("drew from the RNG with every probability zero")


# --- MemoryLink ------------------------------------------------------------------------------

def test_memory_pair_delivers_at_the_same_now_in_order():
    a, b = MemoryLink.pair()
    assert a.next_timer() is None and b.receive(0.0) == []
    a.transmit(b"one", 1.0)
    a.transmit(b"two", 1.0)
    assert b.next_timer() == 1.0 and b.pending() == 2
    assert b.receive(1.0) == [b"one", b"two"]
    assert b.next_timer() is None and a.receive(1.0) == []
    b.transmit(b"back", 2.0)
    assert a.receive(2.0) == [b"back"]
    assert (a.counters.sent, a.counters.received, b.counters.received_bytes) == (2, 1, 6)


def test_step_drives_a_node_over_a_memory_link():
    x, y = MemoryLink.pair()
    a, b = EchoHost(A), EchoHost(B)
    a.ping(B, 1, 1, b"hi", 5.0)
    assert step(a, x, 5.0) is None         # a and its end x are idle ...
    assert y.next_timer() == 5.0           # ... the request waits at the other end, due now
    assert step(b, y, 5.0) is None
    assert x.next_timer() == 5.0           # the reply waits at x
    assert step(a, x, 5.0) is None and x.next_timer() is None and y.next_timer() is None
    assert [(r.t, r.seq, r.data) for r in a.replies] == [(5.0, 1, b"hi")]


def test_earliest():
    assert earliest() is None and earliest(None, None) is None
    assert earliest(3.0, None, 1.5, 2.0) == 1.5
    assert earliest(0.0, None) == 0.0


# --- random faults, one packet at a time -----------------------------------------------------

def test_no_probability_means_no_draws_and_a_plain_pass_through():
    x, y = MemoryLink.pair()
    f = Faults(x, NoDraws())
    for p in pings(50):
        f.transmit(p, 0.0)
    assert len(y.receive(0.0)) == 50
    assert f.next_timer() is None and f.tx.passed == 50 and f.tx.seen == 50


def test_loss_all_and_none():
    x, y = MemoryLink.pair()
    f = Faults(x, random.Random(1), loss=1.0)
    for p in pings(10):
        f.transmit(p, 0.0)
    assert y.receive(0.0) == [] and f.tx.loss == 10


def test_duplicate_copies_are_identical():
    x, y = MemoryLink.pair()
    f = Faults(x, random.Random(1), dup=1.0)
    ps = pings(3)
    for p in ps:
        f.transmit(p, 0.0)
    assert y.receive(0.0) == [ps[0], ps[0], ps[1], ps[1], ps[2], ps[2]]


def test_reorder_holds_a_packet_until_after_later_ones():
    x, y = MemoryLink.pair()
    log = []
    f = Faults(x, Scripted(0.0), reorder=0.5, reorder_delay=0.25, log=log.append)   # hold the first
    ps = pings(3)
    for i, p in enumerate(ps):
        f.transmit(p, i * 0.1)
    assert [seq_of(p) for p in y.receive(0.2)] == [1, 2]
    assert f.next_timer() == 0.25 and f.held() == 1
    f.receive(0.25)                        # any call at or after the release time flushes it
    assert [seq_of(p) for p in y.receive(0.25)] == [0]
    assert log == [FaultApplied(0.0, "reorder", "tx", len(ps[0]), "held until 0.25")]


def test_delay_holds_and_next_timer_reports_the_release():
    x, y = MemoryLink.pair()
    f = Faults(x, NoDraws(), delay=0.5)
    p = pings(1)[0]
    f.transmit(p, 1.0)
    assert y.receive(1.0) == [] and f.next_timer() == 1.5
    f.receive(1.4999)
    assert y.receive(1.5) == []
    f.transmit(p, 1.5)                     # flushes the first, then holds this one
    assert y.receive(1.5) == [p] and f.next_timer() == 2.0


def test_jitter_never_reorders():
    x, y = MemoryLink.pair()
    f = Faults(x, random.Random(9), delay=0.01, jitter=0.01)
    ps = pings(200)
    for i, p in enumerate(ps):
        f.transmit(p, i * 0.001)
    t = 0.0
    while (nt := f.next_timer()) is not None:
        t = nt
        f.receive(t)
    assert y.receive(t) == ps and f.tx.delay == 200


def test_rx_direction_faults_what_the_wrapped_side_receives():
    x, y = MemoryLink.pair()
    f = Faults(y, random.Random(1), loss=1.0, direction="rx")
    ps = pings(4)
    for p in ps:
        x.transmit(p, 0.0)
    f.transmit(ps[0], 0.0)                 # tx untouched
    assert x.receive(0.0) == [ps[0]]
    assert f.receive(0.0) == [] and (f.rx.loss, f.tx.loss) == (4, 0)


def test_rx_delay_releases_through_receive():
    x, y = MemoryLink.pair()
    f = Faults(y, NoDraws(), delay=0.25, direction="rx")
    x.transmit(b"late", 0.0)
    assert f.receive(0.0) == [] and f.next_timer() == 0.25
    x.transmit(b"later", 0.1)
    assert f.next_timer() == 0.1           # the inner link's arrival: the delay starts when seen
    assert f.receive(0.1) == [] and f.next_timer() == 0.25
    assert f.receive(0.25) == [b"late"]
    assert f.receive(0.35) == [b"later"]


def test_corruption_flips_one_bit_and_verification_catches_it():
    x, y = MemoryLink.pair()
    f = Faults(x, random.Random(3), corrupt=1.0)
    clean = pings(400)
    for p in clean:
        f.transmit(p, 0.0)
    bad = y.receive(0.0)
    assert len(bad) == 400 and f.tx.corrupt == 400
    for p, q in zip(clean, bad):
        assert bin(int.from_bytes(p, "big") ^ int.from_bytes(q, "big")).count("1") == 1
        with pytest.raises(WireError):     # IPv4 header checksum or ICMP checksum (RFC 1071)
            icmp.parse_icmp4(parse_packet(q).payload)


def test_corrupt_bits_flips_that_many():
    x, y = MemoryLink.pair()
    f = Faults(x, random.Random(4), corrupt=1.0, corrupt_bits=3)
    p = pings(1)[0]
    f.transmit(p, 0.0)
    q = y.receive(0.0)[0]
    assert bin(int.from_bytes(p, "big") ^ int.from_bytes(q, "big")).count("1") == 3


def test_statistics_over_many_packets():
    x, y = MemoryLink.pair()
    f = Faults(x, random.Random(2024), loss=0.1, dup=0.1)
    for p in pings(5000):
        f.transmit(p, 0.0)
    got = len(y.receive(0.0))
    assert 400 < f.tx.loss < 600 and 350 < f.tx.dup < 550     # 500 and 450 expected
    assert got == 5000 - f.tx.loss + f.tx.dup == f.tx.passed


# --- scripted faults --------------------------------------------------------------------------

def test_drop_nth_with_match_and_drop_if_forever():
    x, y = MemoryLink.pair()
    f = Faults(x, NoDraws())
    third_odd = f.drop_nth(3, match=lambda p: seq_of(p) % 2 == 1)
    big = f.drop_if(lambda p: seq_of(p) >= 8, count=None)
    for p in pings(10):
        f.transmit(p, 0.0)
    assert [seq_of(p) for p in y.receive(0.0)] == [0, 1, 2, 3, 4, 6, 7]
    assert (third_odd.dropped, third_odd.done, big.dropped, big.done) == (1, True, 2, False)


def test_scripted_rx_rule_and_unparsable_packets_do_not_match():
    x, y = MemoryLink.pair()
    f = Faults(y, NoDraws())
    rule = f.drop_nth(1, direction="rx", match=lambda p: seq_of(p) == 2)
    x.transmit(b"\x45junk", 0.0)           # the matcher raises WireError: no match, passed on
    for p in pings(3):
        x.transmit(p, 0.0)
    out = f.receive(0.0)
    assert out[0] == b"\x45junk" and [seq_of(p) for p in out[1:]] == [0, 1]
    assert rule.dropped == 1


def test_bad_arguments():
    x, _ = MemoryLink.pair()
    with pytest.raises(ValueError):
        Faults(x, random.Random(), loss=1.5)
    with pytest.raises(ValueError):
        Faults(x, random.Random(), direction="up")
    with pytest.raises(ValueError):
        Faults(x, random.Random()).drop_nth(0)
    with pytest.raises(ValueError):
        Faults(x, random.Random()).drop_if(bool, direction="both")


# --- Tracer -----------------------------------------------------------------------------------

def test_tracer_logs_both_ways_and_never_raises():
    x, y = MemoryLink.pair()
    log = []
    t = Tracer(x, log.append, "tun0")
    p = pings(1, data=b"abcd")[0]
    t.transmit(p, 1.0)
    y.transmit(b"\x60garbage", 2.0)
    t.transmit(p[:10] + bytes([p[10] ^ 1]) + p[11:], 3.0)       # bad header checksum
    assert t.receive(2.0) == [b"\x60garbage"]
    assert log[0] == PacketOut(1.0, "tun0", len(p), "IP 10.0.0.1 > 10.0.0.2: ICMP echo request, id 1, seq 0, length 4")
    assert isinstance(log[2], PacketIn) and log[2].summary.startswith("unparsable")
    assert log[1].summary.endswith("[bad: bad IPv4 header checksum]")
    assert Tracer(x, None, "quiet").next_timer() is None


def test_summarize_tcp_and_ipv6():
    from synack.wire.packet import build_tcp_packet
    from synack.wire.tcp import Flags, TcpSegment

    seg = TcpSegment(5000, 80, 2**32 - 3, 0, Flags.SYN, 65535)
    assert summarize(build_tcp_packet(A, B, seg)) == "IP 10.0.0.1 > 10.0.0.2: 5000 > 80 S 4294967293:4294967293(0) win 65535"
    h = EchoHost("2001:db8::1")
    h.ping("2001:db8::2", 3, 4, b"", 0.0)
    assert summarize(h.packets_to_send(0.0)[0]) == "IP6 2001:db8::1 > 2001:db8::2: ICMP6 echo request, id 3, seq 4, length 0"
    assert summarize(b"") .startswith("unparsable")
