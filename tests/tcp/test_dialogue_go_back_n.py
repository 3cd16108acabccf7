"""Packet dialogues: go-back-N after a retransmission timeout without SACK (RFC 5681 §3.1,
RFC 6582 §4 and §6). The receiver already holds much of what the sender resends; when a resent
segment fills the hole, the cumulative ACK overtakes the resent copies still in the network.
Those stay counted in flight until their duplicate ACKs come back, so the sender neither sends
their worth in one burst nor takes their duplicate ACKs for a new loss."""

from synack.tcp.config import TcpConfig
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
SEG = 536                                   # the default MSS without an MSS option
CFG = TcpConfig(nagle=False, cc="newreno", sack=False)


def seg(i: int) -> int:
    return (A + SEG * i) & 0xFFFFFFFF


def _lose_flight_and_time_out(d: Dialogue, n: int) -> None:
    """``n`` segments leave, no ACK comes back, and the first one is resent by the timer."""
    d.conn.send(b"z" * (SEG * n))
    for i in range(n):
        d.expect("." if i < n - 1 else "P.", seq=seg(i), length=SEG)
    d.expect(".", seq=seg(0), length=SEG, at=1.0)      # RTO: the loss window, 1 segment
    d.expect_nothing()


def test_overtaken_copy_stays_in_flight_until_its_duplicate_ack():
    d = Dialogue.established(iss=ISS, irs=IRS, config=CFG)
    _lose_flight_and_time_out(d, 10)
    d.peer(".", seq=R, ack=seg(1))                # cwnd 2: go back, resend 1 and 2
    d.expect(".", seq=seg(1), length=SEG)
    d.expect(".", seq=seg(2), length=SEG)
    d.expect_nothing()
    # the receiver held 2..5: the copy of 1 lifts the ACK to 6, over the copy of 2 in flight.
    # cwnd is 4 segments (slow start, L = 2); with that copy counted, 3 go now, not 4.
    d.peer(".", seq=R, ack=seg(6))
    assert d.conn.cc.cwnd == 4 * SEG
    for i in (6, 7, 8):
        d.expect(".", seq=seg(i), length=SEG)
    d.expect_nothing()
    # the copy of 2 arrives and draws a duplicate ACK: it has left the network, one more goes
    d.peer(".", seq=R, ack=seg(6))
    d.expect("P.", seq=seg(9), length=SEG)              # (the end of what was written)
    d.expect_nothing()
    # no fast retransmit, no reduction: the copy was delivered, and slow start counts it as a
    # segment of DeliveredData (RFC 6937 §3), up to ssthresh (half of 10 segments)
    assert d.conn.info().snd_cwnd == 5 * SEG


def test_duplicate_acks_of_overtaken_copies_are_no_new_loss():
    d = Dialogue.established(iss=ISS, irs=IRS, config=CFG)
    _lose_flight_and_time_out(d, 10)
    d.conn.send(b"y" * (SEG * 8))                 # more data behind the lost flight
    d.peer(".", seq=R, ack=seg(1))                # cwnd 2
    d.expect(".", seq=seg(1), length=SEG)
    d.expect(".", seq=seg(2), length=SEG)
    d.peer(".", seq=R, ack=seg(2))                # cwnd 3
    d.expect(".", seq=seg(3), length=SEG)
    d.expect(".", seq=seg(4), length=SEG)
    d.peer(".", seq=R, ack=seg(3))                # cwnd 4
    d.expect(".", seq=seg(5), length=SEG)
    d.expect(".", seq=seg(6), length=SEG)
    d.expect_nothing()
    # the receiver held 4..9: the copy of 3 completes everything sent before the timeout
    # (RFC 6582 "recover"), overtaking the copies of 4, 5 and 6 still in flight
    d.peer(".", seq=R, ack=seg(10))
    assert d.conn.cc.cwnd == 5 * SEG                   # ssthresh: half of 10 segments
    for i in (10, 11):                                 # 5 - 3 copies
        d.expect(".", seq=seg(i), length=SEG)
    d.expect_nothing()
    # their three duplicate ACKs: each clocks out one new segment, none is a fast retransmit
    for i in (12, 13, 14):
        d.peer(".", seq=R, ack=seg(10))
        d.expect(".", seq=seg(i), length=SEG)
    d.expect_nothing()
    # after them, duplicate ACKs report a loss, but of the segment right at recover (segment
    # 10, the first after the flight the timeout resent): the first two send new data (Limited
    # Transmit, RFC 3042); the third starts no fast retransmit, since the ACK does not cover
    # more than recover (RFC 6582 §3.2 step 2 and §4: such duplicates are most often copies
    # sent twice). The timer repairs it, with ssthresh from this timeout's FlightSize.
    for i in (15, 16):
        d.peer(".", seq=R, ack=seg(10))
        d.expect(".", seq=seg(i), length=SEG)
    d.peer(".", seq=R, ack=seg(10))
    d.expect_nothing()
    assert not d.conn._in_recovery and d.conn.cc.ssthresh == 5 * SEG
    d.expect(".", seq=seg(10), length=SEG, at=d.conn.timers.rto)
    assert d.conn.cc.cwnd == SEG and d.conn.cc.ssthresh == 3 * SEG   # FlightSize 7 / 2, whole segments


def test_unanswered_copies_are_forgotten_after_an_rto():
    d = Dialogue.established(iss=ISS, irs=IRS, config=CFG)
    _lose_flight_and_time_out(d, 10)
    d.peer(".", seq=R, ack=seg(1))
    d.expect(".", seq=seg(1), length=SEG)
    d.expect(".", seq=seg(2), length=SEG)
    d.peer(".", seq=R, ack=seg(6))                # one copy (of 2) overtaken
    for i in (6, 7, 8):
        d.expect(".", seq=seg(i), length=SEG)
    assert d.conn._ghost == SEG
    # its duplicate ACK never comes; an ACK of new data one RTO later finds it forgotten
    d.advance(d.conn.rtt.rto + 0.01)
    d.peer(".", seq=R, ack=seg(7))
    assert d.conn._ghost == 0


def test_slow_start_grows_on_delivered_copies_when_holes_are_far_apart():
    # 40 segments lost in flight; the receiver holds all but 0, 10, 20 and 30. Only the ACK of
    # a hole's copy is new; growing on those alone would add two segments per round trip.
    d = Dialogue.established(iss=ISS, irs=IRS, config=CFG.copy(initial_window=40 * SEG))
    _lose_flight_and_time_out(d, 40)
    d.peer(".", seq=R, ack=seg(10))               # the copy of 0: cwnd 1 + 2 (L = 2)
    for i in (10, 11, 12):
        d.expect(".", seq=seg(i), length=SEG)
    d.expect_nothing()
    d.peer(".", seq=R, ack=seg(20))               # the copy of 10 overtakes those of 11 and 12
    assert (d.conn.cc.cwnd, d.conn._ghost) == (5 * SEG, 2 * SEG)
    for i in (20, 21, 22):
        d.expect(".", seq=seg(i), length=SEG)
    d.expect_nothing()
    # each copy's duplicate ACK: one segment left the network and one was delivered, so two go
    # (slow start's doubling, RFC 5681 §3.1, on DeliveredData as RFC 6937 §3 counts it)
    for pair in ((23, 24), (25, 26)):
        d.peer(".", seq=R, ack=seg(20))
        for i in pair:
            d.expect(".", seq=seg(i), length=SEG)
        d.expect_nothing()
    assert d.conn.cc.cwnd == 7 * SEG and d.conn._ghost == 0


def test_go_back_n_resends_no_sub_mss_segment_where_cwnd_ends_between_segments():
    # RFC 9293 §3.8.6.2.1 (MUST-38), sender SWS avoidance: after SND.NXT went back to SND.UNA,
    # what follows it is queued and not yet sent; a cwnd that ends a few octets past a segment
    # boundary (CUBIC's ssthresh is 0.7 x FlightSize and its congestion avoidance adds octets
    # per ACK) must not resend those octets as a segment of their own. The bench (200 ms, no
    # SACK) resent hundreds of 1-2 octet segments that way after a timeout.
    d = Dialogue.established(iss=ISS, irs=IRS, config=CFG.copy(cc="cubic"))
    _lose_flight_and_time_out(d, 10)
    d.conn.cc.ssthresh = 2 * SEG + 100            # a reduction left it between two segments
    d.peer(".", seq=R, ack=seg(1))                # slow start: cwnd 2 segments
    d.expect(".", seq=seg(1), length=SEG)
    d.expect(".", seq=seg(2), length=SEG)
    d.expect_nothing()
    d.peer(".", seq=R, ack=seg(2))                # cwnd = ssthresh: 1 segment + 100 octets usable
    assert d.conn.cc.cwnd == 2 * SEG + 100
    d.expect(".", seq=seg(3), length=SEG)
    d.expect_nothing()                            # not the 100 octets of segment 4
    d.peer(".", seq=R, ack=seg(3))                # congestion avoidance: a few octets more
    assert 2 * SEG + 100 < d.conn.cc.cwnd < 3 * SEG
    d.expect(".", seq=seg(4), length=SEG)
    d.expect_nothing()
    # the timer's own retransmission, at SND.UNA, is never held back: the whole head goes
    d.expect(".", seq=seg(3), length=SEG, at=d.conn.timers.rto)
