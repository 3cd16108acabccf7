"""Packet dialogues: a fast retransmit without SACK that the timestamps show was spurious (the
original arrived, late) is undone (Eifel detection, RFC 3522; response RFC 4015): the window
before it comes back, recovery ends, and the duplicate ACKs still on their way start no new one
(RFC 6582 §3.2 step 1)."""

from synack.tcp.config import TcpConfig
from synack.testing import Dialogue
from synack.wire.tcp import Mss, Nop, Timestamps, WindowScale

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
SEG = 988                                     # MSS 1000 less the timestamps option
CFG = TcpConfig(sack=False, nagle=False, cc="newreno", ack_delay=None,
                newreno_exit="ssthresh")        # RFC 6582 §3.2 step 3 option (2): cwnd = ssthresh at exit


def ts(val, ecr):
    return (Nop(), Nop(), Timestamps(val & M, ecr & M))


def seg(i: int) -> int:
    return (A + SEG * i) & M


def flight_then_fast_retransmit():
    """Ten segments leave at 0.05 s (TSval 50); three duplicate ACKs at 0.15 s: segment 0 is
    resent with TSval 150."""
    d = Dialogue.established(iss=ISS, irs=IRS, config=CFG,
                             peer_options=(Mss(1000), Timestamps(1, 0), Nop(), WindowScale(7)))
    d.peer(".", seq=R, ack=A, options=ts(1, 0))          # the window, now scaled (RFC 7323 §2.2)
    d.advance(0.05)
    d.conn.send(b"z" * (SEG * 10))
    for i in range(10):
        d.expect("." if i < 9 else "P.", seq=seg(i), length=SEG)
    before = (d.conn.cc.cwnd, d.conn.cc.ssthresh)
    d.advance(0.1)
    for _ in range(3):
        d.peer(".", seq=R, ack=A, options=ts(2, 50))
    rexmit = d.expect(".", seq=seg(0), length=SEG)
    assert rexmit.timestamps.val == 150
    assert d.conn.cc.ssthresh == 5 * SEG                 # FlightSize / 2
    return d, before


def test_ack_echoing_the_original_undoes_the_reduction():
    d, before = flight_then_fast_retransmit()
    d.peer(".", seq=R, ack=seg(4), options=ts(3, 50))     # echoes TSval 50: the original came
    d.expect_nothing()                                    # no partial-ACK retransmission
    assert not d.conn._in_recovery and d.conn.cc.ssthresh == before[1]
    assert d.conn.cc.cwnd == before[0] + 2 * SEG          # and this ACK grows it (slow start, L = 2)
    for _ in range(3):                                    # the rest of the duplicates' ACKs:
        d.peer(".", seq=R, ack=seg(4), options=ts(4, 50))  # below "recover", no fast retransmit
    d.expect_nothing()
    d.peer(".", seq=R, ack=seg(10), options=ts(5, 50))
    d.expect_nothing()
    assert d.conn.cc.ssthresh == before[1]


def test_ack_echoing_the_retransmission_keeps_the_reduction():
    d, before = flight_then_fast_retransmit()
    d.peer(".", seq=R, ack=seg(4), options=ts(3, 150))    # echoes TSval 150: the resent one
    d.expect(".", seq=seg(4), length=SEG)                 # a partial ACK (RFC 6582 step 5)
    assert d.conn._in_recovery and d.conn.cc.ssthresh == 5 * SEG
    d.peer(".", seq=R, ack=seg(10), options=ts(4, 150))
    assert not d.conn._in_recovery and d.conn.cc.cwnd == 5 * SEG
