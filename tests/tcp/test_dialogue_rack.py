"""Packet dialogues: RACK-TLP (RFC 8985): loss marked by time (§6.2 Step 5, the reordering
timer), the tail loss probe (§7), its loss detection (§7.4), D-SACK-driven reordering window
growth (§6.2 Step 4), and RACK switched off."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.events import LossProbe, RecoveryEntered, SegmentLost, TimerFired
from synack.testing import Dialogue
from synack.testing import sack_option as sack
from synack.wire.tcp import Mss, Nop, SackPermitted

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
SACK_OK = (Mss(1000), Nop(), Nop(), SackPermitted())
RTT = 0.1


def established(config=None, log=None):
    """Handshake with a 100 ms RTT: SRTT = RACK.min_RTT = 0.1 s."""
    return Dialogue.established(iss=ISS, irs=IRS, config=config if config is not None else TcpConfig(nagle=False),
                                peer_options=SACK_OK, rtt=RTT, log=log)


def send_segments(d, n, start=A):
    d.conn.send(b"x" * (1000 * n))
    for i in range(n):
        d.expect("." if i < n - 1 else "P.", seq=start + 1000 * i, length=1000)


def test_rack_marks_a_segment_lost_by_time():
    """One segment SACKed above a hole: no three duplicates, but once RACK.rtt + reo_wnd
    (min_RTT / 4 = 25 ms) have passed since the hole was sent it is lost (Step 5), found by
    the reordering timer, and repaired in fast recovery."""
    log = []
    d = established(log=log.append)
    t0 = d.now
    send_segments(d, 3)
    d.now = t0 + RTT
    d.peer(".", seq=R, ack=A, options=sack((A + 1000, A + 2000)))
    d.expect_nothing()                                         # 1 SACKed segment: wait 25 ms
    d.expect(".", seq=A, length=1000, at=t0 + RTT + RTT / 4)   # the RACK timer: lost, resent
    assert [(r.detector, (r.seq - A) & M) for r in log if isinstance(r, SegmentLost)] == [("rack-timer", 0)]
    assert [r.trigger for r in log if isinstance(r, RecoveryEntered)] == ["rack-timer"]
    assert any(isinstance(r, TimerFired) and r.timer == "rack" for r in log)


def test_rack_marks_lost_at_once_after_the_reordering_window():
    """The hole was sent 50 ms before the SACKed segment: when the SACK arrives, RACK.rtt +
    reo_wnd (125 ms) have passed since the hole left, so it is lost at once, no timer."""
    log = []
    d = established(log=log.append)
    t0 = d.now
    d.conn.send(b"a" * 1000)
    d.expect("P.", seq=A, length=1000)
    d.now = t0 + 0.05
    d.conn.send(b"b" * 1000)
    d.expect("P.", seq=A + 1000, length=1000)
    d.now = t0 + 0.05 + RTT
    d.peer(".", seq=R, ack=A, options=sack((A + 1000, A + 2000)))
    d.expect(".", seq=A, length=1000, at=d.now)
    assert [r.detector for r in log if isinstance(r, SegmentLost)] == ["rack"]


def test_tail_loss_probe_retransmits_the_last_segment():
    """The last segment of a flight is lost and nothing else is left to send: the PTO (2*SRTT,
    plus TLP.max_ack_delay for a single outstanding segment) sends it again well before the
    RTO, and the RTO is re-armed from there (§7.3)."""
    log = []
    d = established(log=log.append)
    t0 = d.now
    send_segments(d, 3)
    d.now = t0 + RTT
    d.peer(".", seq=R, ack=A + 2000)                           # segment 3 lost
    pto = 2 * RTT + 0.2
    seg = d.expect("P.", seq=A + 2000, length=1000, at=t0 + RTT + pto)
    assert [(p.seq, p.retransmit) for p in log if isinstance(p, LossProbe)] == [(seg.seq, True)]
    assert d.conn.timers.rto == pytest.approx(t0 + RTT + pto + 1.0)
    d.now += RTT
    d.peer(".", seq=R, ack=A + 3000)                           # the probe repaired it
    d.expect_nothing(until=d.now + 100)


def test_tail_loss_probe_sends_new_data_when_there_is_some():
    """§7.3: "transmit a previously unsent data segment, if one exists and the receive window
    allows": here the peer's window held it back, not cwnd; the probe may ignore cwnd only."""
    log = []
    d = established(TcpConfig(nagle=False, initial_window=2000), log=log.append)
    t0 = d.now
    d.conn.send(b"y" * 3000)
    d.expect(".", seq=A, length=1000)
    d.expect(".", seq=A + 1000, length=1000)
    d.expect_nothing()                                         # cwnd (2000) is full
    seg = d.expect("P.", seq=A + 2000, length=1000, at=t0 + 2 * RTT)
    assert [(p.seq, p.retransmit) for p in log if isinstance(p, LossProbe)] == [(seg.seq, False)]


def test_tlp_loss_detected_by_the_probe_ack_reduces_cwnd():
    """§7.4.2: the probe was a retransmission and the next ACK goes past TLP.end_seq without a
    D-SACK: a loss happened and was repaired: congestion control reacts as to a fast recovery."""
    d = established()
    t0 = d.now
    send_segments(d, 3)
    d.now = t0 + RTT
    d.peer(".", seq=R, ack=A + 2000)
    d.expect("P.", seq=A + 2000, length=1000, at=t0 + RTT + 0.4)
    cwnd = d.conn.info().snd_cwnd
    d.now += RTT
    d.peer(".", seq=R, ack=A + 3000)                           # == TLP.end_seq: wait
    d.conn.send(b"z" * 1000)
    d.expect("P.", seq=A + 3000, length=1000)
    d.now += RTT
    d.peer(".", seq=R, ack=A + 4000)                           # beyond it: respond
    assert d.conn.info().snd_cwnd < cwnd


def test_tlp_spurious_probe_seen_by_dsack_keeps_cwnd():
    """§7.4.2 case 1: the receiver had the segment; the probe comes back as a D-SACK."""
    d = established()
    t0 = d.now
    send_segments(d, 3)
    d.now = t0 + RTT
    d.peer(".", seq=R, ack=A + 2000)
    d.expect("P.", seq=A + 2000, length=1000, at=t0 + RTT + 0.4)
    d.now += 0.01
    d.peer(".", seq=R, ack=A + 3000)                           # the original's (late) ACK
    cwnd = d.conn.info().snd_cwnd
    d.now += RTT
    d.peer(".", seq=R, ack=A + 3000, options=sack((A + 2000, A + 3000)))   # D-SACK
    d.conn.send(b"z" * 1000)
    d.expect("P.", seq=A + 3000, length=1000)
    d.now += RTT
    d.peer(".", seq=R, ack=A + 4000)
    assert d.conn.info().snd_cwnd >= cwnd


def test_dsack_widens_the_reordering_window():
    """Step 4: a D-SACK (a spurious retransmission) grows reo_wnd by min_RTT / 4 per round."""
    d = established()
    rack = d.conn.rack
    t0 = d.now
    send_segments(d, 2)
    d.now = t0 + RTT
    d.peer(".", seq=R, ack=A + 2000, options=sack((A, A + 1000)))    # D-SACK below SND.UNA
    assert rack.reo_wnd_mult == 2


def test_rack_off_uses_dupthresh_and_no_probe():
    d = established(TcpConfig(nagle=False, rack=False))
    t0 = d.now
    send_segments(d, 3)
    d.now = t0 + RTT
    d.peer(".", seq=R, ack=A, options=sack((A + 1000, A + 2000)))
    d.expect_nothing()                                         # no timer-based loss, no TLP
    d.expect(".", seq=A, length=1000, at=t0 + 1.0)             # only the RTO
