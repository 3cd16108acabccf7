"""Packet dialogues: the retransmission timer during NewReno recovery without SACK (RFC 6582
§3.2 step 5 and §8). Several segments of one window are lost; each partial ACK resends the next
hole. ``partial_ack_rto="each"`` (the default; RFC 6298 §5.3, Linux, FreeBSD) restarts the timer
on every partial ACK, so the holes are repaired one per round trip while the window stays near
ssthresh; ``"first"`` (RFC 6582's Impatient variant) restarts it on the first only, so a window
with many holes ends in a timeout and slow start from one segment."""

from synack.tcp.config import TcpConfig
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
SEG = 536                                   # the default MSS without an MSS option
RTO = 1.0                                   # the initial RTO: no RTT sample is taken below


def seg(i: int) -> int:
    return (A + SEG * i) & 0xFFFFFFFF


def three_holes(variant: str) -> Dialogue:
    """Ten segments (IW10) leave at t=0; 0, 3 and 6 are lost. Three duplicate ACKs at 0.1 s start
    fast retransmit; the partial ACK at 0.2 s (up to 3) resends 3 and restarts the timer."""
    cfg = TcpConfig(nagle=False, cc="newreno", sack=False, timestamps=False, partial_ack_rto=variant,
                    newreno_exit="ssthresh")     # RFC 6582 §3.2 step 3 option (2) at the full ACK
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg, window=65535)
    d.conn.send(b"z" * (SEG * 10))
    for i in range(10):
        d.expect("." if i < 9 else "P.", seq=seg(i), length=SEG)
    d.advance(0.1)
    for _ in range(3):
        d.peer(".", seq=R, ack=A)
    d.expect(".", seq=seg(0), length=SEG)         # fast retransmit (RFC 5681 §3.2 step 2)
    d.advance(0.1)
    d.peer(".", seq=R, ack=seg(3))                # the first partial ACK: resend the next hole
    d.expect(".", seq=seg(3), length=SEG)
    assert d.conn.timers.rto == d.now + RTO
    return d


def test_each_partial_ack_restarts_the_timer():
    d = three_holes("each")
    d.advance(0.5)
    d.peer(".", seq=R, ack=seg(6))                # the second partial ACK, at 0.7 s
    d.expect(".", seq=seg(6), length=SEG)
    assert d.conn.timers.rto == d.now + RTO       # 1.7 s, not 1.2 s
    d.expect_nothing(until=1.6)                   # no timeout at 1.2 s
    d.peer(".", seq=R, ack=seg(10))               # the full ACK ends recovery
    d.expect_nothing()
    assert not d.conn._in_recovery
    assert d.conn.cc.cwnd == d.conn.cc.ssthresh == 5 * SEG     # FlightSize 10 / 2 (RFC 6582 §3.2 step 3)


def test_first_partial_ack_only_restarts_the_timer():
    d = three_holes("first")
    d.advance(0.5)
    d.peer(".", seq=R, ack=seg(6))
    d.expect(".", seq=seg(6), length=SEG)
    assert d.conn.timers.rto == 1.2               # still from the first partial ACK
    d.expect(".", seq=seg(6), length=SEG, at=1.2)  # the timeout resends the hole again...
    assert d.conn.cc.cwnd == SEG                  # ... with the loss window (RFC 5681 §3.1)
    assert not d.conn._in_recovery
