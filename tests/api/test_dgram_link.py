"""DgramLink: a Link over an AF_UNIX datagram socketpair."""

from __future__ import annotations

import select

from synack.link.dgram import DgramLink


def test_packets_cross_in_order_both_ways():
    a, b = DgramLink.pair()
    try:
        for i in range(5):
            a.transmit(bytes([i]) * (i + 1), 0.0)
        b.transmit(b"back", 0.0)
        assert b.receive(0.0) == [bytes([i]) * (i + 1) for i in range(5)]
        assert b.receive(0.0) == []
        assert a.receive(1.0) == [b"back"]
        assert a.next_timer() is None and b.next_timer() is None
        assert a.fileno() >= 0 and a.fileno() != b.fileno()
        assert a.counters.sent == 5 and b.counters.received == 5
    finally:
        a.close()
        b.close()


def test_eagain_backlog_keeps_order_and_flushes_when_writable():
    a, b = DgramLink.pair(bufsize=4096, backlog_max=10_000)   # a tiny socket buffer
    try:
        packets = [i.to_bytes(4, "big") * 250 for i in range(300)]       # 1000 bytes each
        for p in packets:
            a.transmit(p, 0.0)
        assert a.wants_write and a.counters.deferred > 0
        got: list[bytes] = []
        for _ in range(1000):
            got += b.receive(0.0)
            if a.wants_write:
                _, w, _ = select.select([], [a.fileno()], [], 1.0)
                assert w, "the fd never became writable"
                a.flush()
            elif len(got) == len(packets):
                break
        assert got == packets and not a.wants_write and a.counters.dropped == 0
    finally:
        a.close()
        b.close()


def test_backlog_overflow_drops_and_counts():
    a, b = DgramLink.pair(bufsize=4096, backlog_max=5)
    try:
        for i in range(200):
            a.transmit(b"x" * 1000, 0.0)
        assert a.counters.dropped > 0
        assert a.counters.sent + a.counters.dropped + len(a._backlog) == 200
    finally:
        a.close()
        b.close()
