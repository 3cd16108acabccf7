"""Packet dialogues: a loss reported by a stretch ACK (one that acknowledges several segments
at once, as Linux's receiver does when it ACKs what the application read).

* The reduction halves the FlightSize the ACK found, before its own cumulative part: RFC 6937
  §3 RecoverFS ("FlightSize at the start of recovery") counts from the same SND.UNA as
  prr_delivered, which includes that ACK; RFC 5681 §3.1 eq. (4).
* ACKs read from the link together (one output pass after them) reduce from the FlightSize
  before the first of them.
* Limited Transmit is what went beyond cwnd (RFC 5681 §3.2 step 1, RFC 3042 §2): the segments a
  cumulative ACK with new SACK information lets out within cwnd are not taken off FlightSize.
"""

from synack.tcp.config import TcpConfig
from synack.tcp.events import RecoveryEntered
from synack.testing import Dialogue
from synack.testing import sack_option as sack
from synack.wire.tcp import Flags, Mss, Nop, SackPermitted, TcpSegment

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
SACK_OK = (Mss(1000), Nop(), Nop(), SackPermitted())
RTT = 0.1


def established(log):
    return Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(nagle=False, cc="newreno"),
                                peer_options=SACK_OK, rtt=RTT, log=log)


def send_iw(d):
    """The initial window: ten 1000-byte segments (RFC 6928 §2), the flight filling cwnd."""
    d.conn.send(b"x" * 40000)
    for i in range(10):
        d.expect(".", seq=A + 1000 * i, length=1000)
    d.expect_nothing()


def iw_out():
    """The initial window sent, one RTT earlier: (dialogue, its event log, when it was sent)."""
    log = []
    d = established(log.append)
    t0 = d.now
    send_iw(d)
    d.now = t0 + RTT
    return d, log, t0


def test_stretch_ack_reporting_a_loss_halves_the_flight_it_found():
    """Ten segments out; one ACK acknowledges four and SACKs three above a hole (the fifth).
    FlightSize when it arrived: 10 segments, so ssthresh = 5 (eq. (4)); the ACK then left 2 in
    the pipe, and PRR's slow-start bound (RFC 6937 §3) sends the retransmission and two new
    segments. Halving the 6 still outstanding after the ACK gave ssthresh 3 and one segment."""
    d, log, t0 = iw_out()
    d.peer(".", seq=R, ack=A + 4000, options=sack((A + 5000, A + 8000)))
    d.expect(".", seq=A + 4000, length=1000)             # the fast retransmit
    d.expect(".", seq=A + 10000, length=1000)
    d.expect(".", seq=A + 11000, length=1000)
    d.expect_nothing()
    (rec,) = [r for r in log if isinstance(r, RecoveryEntered)]
    assert (rec.flight, rec.ssthresh) == (10000, 5000)


def test_segments_sent_within_cwnd_are_not_limited_transmit():
    """Ten segments out; an ACK acknowledges three and SACKs the fifth (a duplicate ACK by RFC
    6675 §2, DupAcks = 1). Slow start made cwnd 12; pipe is 6, so six new segments go: five are
    the ACK clock's (the three acknowledged, the two cwnd grew by), only the sixth (FlightSize
    13 > cwnd 12) is Limited Transmit. When the RACK timer (RFC 8985 §6.2) finds the fourth
    segment lost, ssthresh halves FlightSize less that one: min(12, cwnd 12) / 2 = 6 segments,
    not (13 - 6) / 2 = 3."""
    d, log, t0 = iw_out()
    d.peer(".", seq=R, ack=A + 3000, options=sack((A + 4000, A + 5000)))
    for i in range(10, 16):
        d.expect(".", seq=A + 1000 * i, length=1000)
    d.expect(".", seq=A + 3000, length=1000, at=t0 + RTT + RTT / 4)   # reo_wnd = min_RTT / 4
    d.expect_nothing()
    (rec,) = [r for r in log if isinstance(r, RecoveryEntered)]
    assert rec.trigger == "rack-timer"
    assert (rec.flight, rec.ssthresh) == (12000, 6000)


def arrive_together(d, *acks):
    """Several ACKs read from the link at once, one output pass after them (as host.Stack
    makes per turn of its loop): ``acks`` are (ack, sack blocks) pairs."""
    for ack, blocks in acks:
        seg = TcpSegment(d.id.remote_port, d.id.local_port, R & M, ack & M, Flags.ACK, 65535, 0,
                         tuple(sack(*blocks)) if blocks else (), b"")
        d.history.append((d.now, "<", seg))
        d.conn.receive_segment(seg, d.now)


def test_acks_read_together_reduce_from_the_flight_before_them():
    """Ten segments out; two ACKs come in one read: the first acknowledges four, the second two
    more and SACKs three above the seventh. The first emptied the flight with no output pass
    to refill it; FlightSize when they arrived was 10, so ssthresh = 5 and PRR's slow-start
    bound (RFC 6937 §3, prr_delivered counting both ACKs) sends the retransmission and four
    new segments. Halving the 6 outstanding before the second ACK gave ssthresh 3."""
    d, log, t0 = iw_out()
    arrive_together(d, (A + 4000, ()), (A + 6000, ((A + 7000, A + 10000),)))
    d.expect(".", seq=A + 6000, length=1000)             # the fast retransmit
    for i in range(10, 14):
        d.expect(".", seq=A + 1000 * i, length=1000)
    d.expect_nothing()
    (rec,) = [r for r in log if isinstance(r, RecoveryEntered)]
    assert (rec.flight, rec.ssthresh) == (10000, 5000)
