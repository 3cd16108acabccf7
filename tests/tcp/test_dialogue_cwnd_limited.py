"""Packet dialogues: cwnd grows only while the flight fills it (RFC 9438 §5.8: "CUBIC does not
increase its congestion window if a flow is application-limited", limited by the sending
application or by the receiver's window; RFC 7661 §4.3; Linux tcp_is_cwnd_limited). In slow
start cwnd may still grow up to twice the most that was in flight, so it can double once."""

import pytest

from synack.tcp.config import TcpConfig
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
SEG = 536                                   # the default MSS without an MSS option
IW = 10 * SEG


def seg(i: int) -> int:
    return (A + SEG * i) & 0xFFFFFFFF


def established(cc: str, window: int = 65535) -> Dialogue:
    cfg = TcpConfig(nagle=False, cc=cc, sack=False, timestamps=False, ack_delay=None)
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg, window=window)
    assert d.conn.cc.cwnd == IW
    return d


@pytest.mark.parametrize("cc", ["newreno", "cubic"])
def test_an_application_limited_flight_does_not_grow_cwnd(cc):
    d = established(cc)
    for k in range(3):                            # one segment at a time, each ACKed
        d.conn.send(b"a" * SEG)
        d.expect("P.", seq=seg(k), length=SEG)
        d.advance(0.05)
        d.peer(".", seq=R, ack=seg(k + 1))
        d.expect_nothing()
    assert d.conn.cc.cwnd == IW                   # slow start would have made it 13 segments


def flight_acked(d: Dialogue, n: int) -> None:
    """``n`` segments leave at once; 50 ms later each is ACKed on its own."""
    d.conn.send(b"f" * (n * SEG))
    for i in range(n):
        d.expect("." if i < n - 1 else "P.", seq=seg(i), length=SEG)
    d.advance(0.05)
    for i in range(n):
        d.peer(".", seq=R, ack=seg(i + 1))


@pytest.mark.parametrize("cc", ["newreno", "cubic"])
def test_a_full_flight_grows_cwnd(cc):
    d = established(cc)
    flight_acked(d, 10)
    assert d.conn.cc.cwnd == 2 * IW               # slow start: one SMSS per ACK, doubled


def test_a_flight_the_peer_window_holds_back_does_not_grow_cwnd():
    """The peer offers 2 segments; 10 would fit cwnd. Ten ACKs later cwnd is what it was."""
    d = established("cubic", window=2 * SEG)
    d.conn.send(b"w" * (20 * SEG))
    d.expect(".", seq=seg(0), length=SEG)
    d.expect(".", seq=seg(1), length=SEG)
    d.expect_nothing()
    for i in range(2, 12, 2):
        d.advance(0.05)
        d.peer(".", seq=R, ack=seg(i), window=2 * SEG)
        d.expect(".", seq=seg(i), length=SEG)
        d.expect(".", seq=seg(i + 1), length=SEG)
    assert d.conn.cc.cwnd == IW


def test_slow_start_may_double_what_was_in_flight():
    """Six segments in flight of a 10-segment window: cwnd may grow to 12 (twice 6) and no more."""
    d = established("newreno")
    flight_acked(d, 6)
    assert d.conn.cc.cwnd == 12 * SEG             # 10 + 2, then 12 < 2 x 6 no longer holds
