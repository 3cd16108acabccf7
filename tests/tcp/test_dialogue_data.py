"""Packet dialogues: data in both directions (RFC 9293 §3.10.7.4 first and seventh steps, §3.8.5
urgent data, RFC 5681 §3.2 fast retransmit, RFC 6582 NewReno, RFC 6298 retransmission)."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.errors import ConnectionTimedOut
from synack.tcp.events import DataReceived, TimedOut, Writable
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.wire.tcp import Mss, Nop, Sack, SackPermitted

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
S = State
NOACK = TcpConfig(ack_delay=None)
M = 0xFFFFFFFF


def data_events(d):
    return [e for e in d.events() if isinstance(e, DataReceived)]


# ---------------------------------------------------------------- receiving

def test_in_order_data_across_the_wrap():
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("P.", seq=R, ack=A, data=b"0123456789")       # R .. R+9 crosses 2**32
    d.expect(".", seq=A, ack=R + 10)
    ev = data_events(d)
    assert [e.nbytes for e in ev] == [10]
    assert d.conn.receive(4) == b"0123"
    assert d.conn.receive(100) == b"456789"
    assert d.conn.receive(100) is None   # nothing yet, not EOF


def test_out_of_order_held_and_reassembled():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer("P.", seq=R + 6, ack=A, data=b"ghi")
    d.expect(".", seq=A, ack=R)          # out of order: immediate duplicate ACK (RFC 5681 §4.2)
    d.peer("P.", seq=R + 12, ack=A, data=b"mno")
    d.expect(".", seq=A, ack=R)
    assert data_events(d) == []
    assert d.conn.receive(100) is None
    d.peer("P.", seq=R + 3, ack=A, data=b"def")
    d.expect(".", seq=A, ack=R)
    d.peer("P.", seq=R, ack=A, data=b"abc")               # fills the first hole
    d.expect(".", seq=A, ack=R + 9)      # hole-filling: immediate ACK
    assert d.conn.receive(100) == b"abcdefghi"
    d.peer("P.", seq=R + 9, ack=A, data=b"jkl")
    d.expect(".", seq=A, ack=R + 15)
    assert d.conn.receive(100) == b"jklmno"


def test_duplicate_data_acked_not_redelivered():
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("P.", seq=R, ack=A, data=b"once")
    d.expect(".", seq=A, ack=R + 4)
    d.events()
    d.peer("P.", seq=R, ack=A, data=b"once")
    d.expect(".", seq=A, ack=R + 4)
    assert data_events(d) == []
    assert d.conn.receive(100) == b"once"


def test_partially_overlapping_segment_only_new_part():
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("P.", seq=R, ack=A, data=b"abcde")
    d.expect(".", seq=A, ack=R + 5)
    d.peer("P.", seq=R + 2, ack=A, data=b"cdefgh")
    d.expect(".", seq=A, ack=R + 8)
    assert d.conn.receive(100) == b"abcdefgh"


def test_overlap_with_held_data():
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("P.", seq=R + 4, ack=A, data=b"efgh")
    d.expect(".", seq=A, ack=R)
    d.peer("P.", seq=R, ack=A, data=b"abcdef")
    d.expect(".", seq=A, ack=R + 8)
    assert d.conn.receive(100) == b"abcdefgh"


def test_segment_straddling_right_edge_is_trimmed():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(rcv_buf=1000, ack_delay=None))
    d.peer("P.", seq=R, ack=A, data=b"x" * 1500)
    d.expect(".", seq=A, ack=R + 1000, window=0)
    assert d.conn.receive(5000) == b"x" * 1000


def test_zero_window_rejects_data_but_takes_ack():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(rcv_buf=1000, ack_delay=None))
    d.peer("P.", seq=R, ack=A, data=b"x" * 1000)
    d.expect(".", seq=A, ack=R + 1000, window=0)
    d.conn.send(b"hi")
    d.expect("P.", seq=A, data=b"hi")
    d.peer("P.", seq=R + 1000, ack=A + 2, data=b"more")   # window is zero: data dropped
    d.expect(".", seq=A + 2, ack=R + 1000, window=0)
    assert d.conn.info().snd_una == (A + 2) & M           # but its ACK was processed
    d.expect_nothing(until=100.0)        # nothing left to retransmit


def test_ack_above_snd_nxt_drops_data_too():
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("P.", seq=R, ack=A + 10, data=b"nope")
    d.expect(".", seq=A, ack=R)
    assert d.conn.receive(10) is None


def test_delayed_ack_default_40ms():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer("P.", seq=R, ack=A, data=b"x" * 100)
    d.expect_nothing()
    d.expect(".", seq=A, ack=R + 100, at=0.040)


def test_delayed_ack_second_full_segment_immediate():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer(".", seq=R, ack=A, data=b"x" * 1460)
    d.expect_nothing()
    d.peer(".", seq=R + 1460, ack=A, data=b"y" * 1460)
    d.expect(".", seq=A, ack=R + 2920, at=0.0)


def test_delayed_ack_small_segments_wait_unless_counting_segments():
    # RFC 5681 §4.2 counts full-sized segments: two small ones still wait for the timer ...
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer("P.", seq=R, ack=A, data=b"x" * 100)
    d.peer("P.", seq=R + 100, ack=A, data=b"y" * 100)
    d.expect(".", seq=A, ack=R + 200, at=0.040)
    # ... TcpConfig.ack_count_segments (FreeBSD DELAY_ACK) ACKs every second one, whatever its size
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(ack_count_segments=True))
    d.peer("P.", seq=R, ack=A, data=b"x" * 100)
    d.expect_nothing()
    d.peer("P.", seq=R + 100, ack=A, data=b"y" * 100)
    d.expect(".", seq=A, ack=R + 200, at=0.0)
    d.peer("P.", seq=R + 200, ack=A, data=b"z" * 100)
    d.expect_nothing()
    d.expect(".", seq=A, ack=R + 300, at=0.040)


def test_delayed_ack_full_segments_with_timestamps():
    # a full-sized segment carries 1448 octets when every segment has the 12-octet TS option
    from synack.wire.tcp import Timestamps
    d = Dialogue.established(iss=ISS, irs=IRS, peer_options=(Mss(1460), Nop(), Nop(), Timestamps(5, 0)))
    ts = (Nop(), Nop(), Timestamps(6, 0))
    d.peer(".", seq=R, ack=A, data=b"x" * 1448, options=ts)
    d.expect_nothing()
    d.peer(".", seq=R + 1448, ack=A, data=b"y" * 1448, options=ts)
    d.expect(".", seq=A, ack=R + 2896, at=0.0)


def test_ack_piggybacked_on_data():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer("P.", seq=R, ack=A, data=b"ping")
    d.conn.send(b"pong")
    d.expect("P.", seq=A, ack=R + 4, data=b"pong")
    d.expect_nothing(until=0.5)          # the delayed ACK went with the data


def test_urgent_data_inline():
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("UP.", seq=R, ack=A, data=b"!abc", urgent=1)    # urgent pointer after "!" (MUST-62)
    d.expect(".", seq=A, ack=R + 4)
    ev = data_events(d)
    assert ev and ev[0].urgent
    assert d.conn.receive(10) == b"!abc"                  # delivered inline
    d.peer("P.", seq=R + 4, ack=A, data=b"plain")
    ev = data_events(d)
    assert ev and not ev[0].urgent


def test_urgent_data_spanning_segments():
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("UP.", seq=R, ack=A, data=b"abc", urgent=5)     # urgent data runs past this segment
    assert data_events(d)[0].urgent
    d.peer("P.", seq=R + 3, ack=A, data=b"defgh")          # carries its last two octets
    assert data_events(d)[0].urgent
    d.peer("P.", seq=R + 8, ack=A, data=b"ij")
    assert not data_events(d)[0].urgent
    assert d.conn.receive(100) == b"abcdefghij"


# ---------------------------------------------------------------- sending and retransmission

def test_send_and_ack_stops_rto():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.conn.send(b"abc")
    d.expect("P.", seq=A, ack=R, data=b"abc")
    d.peer(".", seq=R, ack=A + 3)
    d.expect_nothing(until=100.0)


def test_rto_backoff_and_give_up_after_r2():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(r2_retries=3))
    d.conn.send(b"lost")
    d.expect("P.", seq=A, data=b"lost", at=0.0)
    d.expect("P.", seq=A, data=b"lost", at=1.0)
    d.expect("P.", seq=A, data=b"lost", at=3.0)
    d.expect("P.", seq=A, data=b"lost", at=7.0)
    d.expect_nothing(until=14.99)
    assert d.state is S.ESTABLISHED
    d.advance(0.02)
    assert d.state is S.CLOSED
    assert any(isinstance(e, TimedOut) for e in d.events())
    with pytest.raises(ConnectionTimedOut):
        d.conn.send(b"x")
    assert d.conn.next_timer() is None


def test_rto_resets_after_ack_progress():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(r2_retries=2, nagle=False))
    d.conn.send(b"a")
    d.expect("P.", seq=A, at=0.0)
    d.expect("P.", seq=A, at=1.0)
    d.peer(".", seq=R, ack=A + 1)        # progress: retry count starts over
    d.conn.send(b"b")
    d.expect("P.", seq=A + 1, data=b"b")
    t = d.now
    # Karn (RFC 6298 §5, §3): no sample from a retransmitted segment, the backed-off RTO (2 s)
    # is kept for the next segment; the retry count starts over.
    d.expect("P.", seq=A + 1, at=t + 2.0)
    d.expect("P.", seq=A + 1, at=t + 6.0)
    assert d.state is S.ESTABLISHED
    d.expect_nothing(until=t + 13.9)
    d.advance(0.2)
    assert d.state is S.CLOSED


def test_rto_retransmits_only_first_segment_cwnd_one():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(nagle=False))
    d.conn.send(b"x" * 1608)             # 3 segments of 536
    for i in range(3):
        d.expect("." if i < 2 else "P.", seq=A + 536 * i, length=536)
    d.expect(".", seq=A, length=536, at=1.0)   # loss window: one segment (RFC 5681 §3.1)
    d.expect_nothing()
    d.peer(".", seq=R, ack=A + 536)
    d.expect(".", seq=A + 536, length=536)     # slow start again: go back N
    d.expect("P.", seq=A + 1072, length=536)


def _flight(d, n, start=A):
    d.conn.send(b"z" * (536 * n))
    for i in range(n):
        d.expect("." if i < n - 1 else "P.", seq=start + 536 * i, length=536)


def test_fast_retransmit_on_third_dupack_and_newreno():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(nagle=False, cc="newreno", newreno_exit="ssthresh"))
    _flight(d, 8)
    d.peer(".", seq=R, ack=A + 536)
    d.peer(".", seq=R, ack=A + 536)
    d.peer(".", seq=R, ack=A + 536)
    d.expect_nothing()                   # two duplicates: nothing yet
    d.peer(".", seq=R, ack=A + 536)
    d.expect(".", seq=A + 536, length=536)    # third duplicate: fast retransmit
    d.expect_nothing()
    # partial ACK (RFC 6582 §3.2 step 5): the next hole is retransmitted at once
    d.peer(".", seq=R, ack=A + 536 * 4)
    d.expect(".", seq=A + 536 * 4, length=536)
    # full ACK: recovery is over
    d.peer(".", seq=R, ack=A + 536 * 8)
    d.expect_nothing(until=d.now + 100)
    # option (2) of RFC 6582 §3.2 step 3: cwnd = ssthresh = FlightSize / 2 in whole segments: 7 / 2 -> 3
    assert d.conn.info().snd_cwnd == 3 * 536
    # a new loss episode is recognised again once an ACK covers more than recover (A + 536 * 8,
    # RFC 6582 §3.2 step 2): duplicates of an ACK of exactly recover start nothing
    t = d.now
    _flight(d, 3, start=A + 536 * 8)
    d.peer(".", seq=R, ack=A + 536 * 9)
    d.expect_nothing()
    for _ in range(3):
        d.peer(".", seq=R, ack=A + 536 * 9)
    d.expect(".", seq=A + 536 * 9, length=536, at=t)


@pytest.mark.parametrize("exit_rule,burst", [("flight", 2), ("ssthresh", 9)])
def test_newreno_full_ack_with_nothing_outstanding(exit_rule, burst):
    """RFC 6582 §3.2 step 3, a full ACK: cwnd = (1) min(ssthresh, max(FlightSize, SMSS) + SMSS)
    or (2) ssthresh; with (2) "the implementation is encouraged to take measures to avoid a
    possible burst of data, in case the amount of data outstanding in the network is much less
    than the new congestion window allows". 20 segments out, segment 1 lost, the application
    writes 12 more during recovery; the full ACK leaves nothing outstanding. Option (1)
    (``newreno_exit="flight"``, FreeBSD) sends 2 segments and slow-starts back to ssthresh;
    (2) (the default, Linux) sends 9 at once."""
    cfg = TcpConfig(nagle=False, cc="newreno", initial_window=20 * 536, newreno_exit=exit_rule)
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg)
    _flight(d, 20)
    d.peer(".", seq=R, ack=A + 536)
    for _ in range(3):
        d.peer(".", seq=R, ack=A + 536)
    d.expect(".", seq=A + 536, length=536)                   # fast retransmit; ssthresh 19 / 2 -> 9
    d.conn.send(b"y" * (536 * 12))
    d.expect_nothing()                                       # cwnd 9 + 3 inflated < 19 in flight
    d.peer(".", seq=R, ack=A + 536 * 20)                     # full ACK: nothing left outstanding
    for i in range(burst):
        d.expect(".", seq=A + 536 * (20 + i), length=536)
    d.expect_nothing()
    assert (d.conn.info().snd_cwnd, d.conn.info().snd_ssthresh) == (burst * 536, 9 * 536)
    if exit_rule == "flight":                                 # slow start below ssthresh
        d.peer(".", seq=R, ack=A + 536 * 21)
        d.expect(".", seq=A + 536 * 22, length=536)
        d.expect(".", seq=A + 536 * 23, length=536)
        d.expect_nothing()


def test_dupacks_need_same_window_and_no_data():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(nagle=False, ack_delay=None))
    _flight(d, 6)
    d.peer(".", seq=R, ack=A, window=60000)     # window changed: not a duplicate (RFC 5681 §2)
    d.peer(".", seq=R, ack=A, window=60000)
    d.peer("P.", seq=R, ack=A, window=60000, data=b"d")   # carries data: not a duplicate
    d.expect(".", ack=R + 1)
    d.peer(".", seq=R + 1, ack=A, window=60000)
    d.expect_nothing()


def test_sack_blocks_reported_in_order_of_arrival():
    d = Dialogue.established(iss=ISS, irs=IRS, peer_options=(Mss(1460), Nop(), Nop(), SackPermitted()))
    d.peer("P.", seq=R + 10, ack=A, data=b"b" * 5)
    d.expect(".", ack=R, options=(Nop(), Nop(), Sack((((R + 10) & M, (R + 15) & M),))))
    d.peer("P.", seq=R + 20, ack=A, data=b"c" * 5)
    d.expect(".", ack=R, options=(Nop(), Nop(), Sack((((R + 20) & M, (R + 25) & M),
                                                      ((R + 10) & M, (R + 15) & M)))))


def test_writable_after_full_buffer_drains():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(snd_buf=1000, nagle=False))
    assert d.conn.send(b"x" * 1500) == 1000
    d.expect(".", seq=A, length=536)
    d.expect("P.", seq=A + 536, length=464)
    d.events()
    d.peer(".", seq=R, ack=A + 536)
    assert any(isinstance(e, Writable) for e in d.events())
    assert d.conn.send(b"y" * 1000) == 536
