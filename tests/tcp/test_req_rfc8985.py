"""RFC 8985 (RACK-TLP) requirements as packet dialogues (and, for the arithmetic of §6.2 and
§6.3, on ``Rack`` and ``Scoreboard`` directly): the example of Figure 1 (§3.4), the reordering
window (§3.3.2, §6.2 Step 4), RACK.rtt (§6.2 Step 2), the RTO (§6.3), the loss probe (§7.2,
§7.3, §7.4.2) and RACK with congestion control (§9.3). RACK is on by default; ISS and IRS sit
just below 2**32, so sequence numbers wrap in the dialogues."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.events import LossProbe, RecoveryEntered, RecoveryExited, RtoBackoff, SegmentLost
from synack.tcp.rack import Rack, sent_after
from synack.tcp.sack import Scoreboard
from synack.testing import Dialogue
from synack.testing import sack_option as sack
from synack.wire.tcp import Mss, Nop, SackPermitted, Timestamps

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
SACK_OK = (Mss(1000), Nop(), Nop(), SackPermitted())
TS_OK = (Mss(1012), SackPermitted(), Timestamps(1, 0))     # 1000 octets beside the TS option


def established(config=None, *, log=None, rtt=0.1, peer_options=SACK_OK):
    cfg = config if config is not None else TcpConfig(nagle=False)
    return Dialogue.established(iss=ISS, irs=IRS, config=cfg, peer_options=peer_options, rtt=rtt,
                                log=log.append if log is not None else None)


def send_segments(d, n, first=0):
    d.conn.send(b"x" * (1000 * n))
    for i in range(n):
        d.expect("." if i < n - 1 else "P.", seq=A + 1000 * (first + i), length=1000)


def send_then_wait(d, n):
    """Send segments 0..n-1 now and move the clock one RTT (0.1 s) on; returns when they left."""
    t0 = d.now
    send_segments(d, n)
    d.now = t0 + 0.1
    return t0


def kinds(log, cls):
    return [r for r in log if isinstance(r, cls)]


def nums(recs):
    return [((r.seq - A) & M) // 1000 for r in recs]


# ---------------------------------------------------------------- §3.4 Figure 1, §9.2

def test_figure1_tail_loss_probe_then_rack_repairs_a_lost_retransmission():
    """§3.4 Figure 1: P0-P3 sent, P1-P3 dropped. (3) 2 RTTs after the ACK of P0 the TLP
    retransmits P3 (§7.3: the highest-sequence segment, no new data); (5) its SACK makes RACK
    mark P1 and P2 lost (sent before the probe, one RTT ago: §7.4.1) and fast recovery resends
    both (PRR-SSRB allows two); the P1 retransmission is dropped; (7) the SACK of the P2
    retransmission makes RACK mark P1's retransmission lost (sent at the same time, lower
    sequence: §6.2's tie-break) and P1 goes a third time; (8) the ACK of P3 ends recovery. §9.2:
    the recovery handles the lost retransmission (RFC 6675's HighRxt would have blocked it)."""
    log: list = []
    d = established(log=log)
    t0 = send_then_wait(d, 4)
    d.peer(".", seq=R, ack=A + 1000)                                   # (2) ACK P0
    assert d.conn.timers.tlp == pytest.approx(d.now + 0.2)             # PTO = 2 * SRTT
    probe = d.expect("P.", seq=A + 3000, length=1000, at=t0 + 0.3)     # (3) TLP: P3 again
    assert [(p.seq, p.retransmit) for p in kinds(log, LossProbe)] == [(probe.seq, True)]
    assert d.conn.tlp.end_seq == 4000 and d.conn.tlp.is_retrans
    last = d.conn.sb.last()                                            # §7.3: RACK_retransmit_data
    assert last.retrans and last.xmit_ts == d.now and not last.lost
    d.now += 0.11
    d.peer(".", seq=R, ack=A + 1000, options=sack((A + 3000, A + 4000)))   # (4) SACK P3
    d.expect(".", seq=A + 1000, length=1000)                           # (5c) P1 and P2 again
    d.expect(".", seq=A + 2000, length=1000)
    d.expect_nothing()
    assert [(r.detector, n) for r, n in zip(kinds(log, SegmentLost), nums(kinds(log, SegmentLost)))] \
        == [("rack", 1), ("rack", 2)]
    assert [r.trigger for r in kinds(log, RecoveryEntered)] == ["rack"]
    assert d.conn.tlp.end_seq is None                                  # §7.1: reset on recovery
    d.now += 0.11
    d.peer(".", seq=R, ack=A + 1000, options=sack((A + 2000, A + 4000)))   # (6) SACK P2 & P3
    d.expect(".", seq=A + 1000, length=1000, at=d.now)                 # (7b) P1 a third time
    assert nums(kinds(log, SegmentLost)) == [1, 2, 1]
    d.now += 0.11
    d.peer(".", seq=R, ack=A + 4000)                                   # (8) ACK P3
    assert len(kinds(log, RecoveryExited)) == 1
    d.expect_nothing(until=d.now + 100)


# ---------------------------------------------------------------- §4 requirements

def test_rack_tlp_needs_sack():
    """§4: "The connection MUST use selective acknowledgment (SACK) options"; "TLP requires
    RACK". Without SACK-permitted: no probe timer, no RACK timer; the RTO is the timer."""
    log: list = []
    d = established(log=log, peer_options=(Mss(1000),))
    send_segments(d, 3)
    assert not d.conn._rack_on
    assert d.conn.timers.tlp is None and d.conn.timers.rack is None
    d.expect(".", seq=A, length=1000, at=d.now + 1.0)
    assert kinds(log, LossProbe) == []


# ---------------------------------------------------------------- §3.3.2, §6.2 Step 4: the reordering window

def test_reordering_window_is_zero_once_three_segments_are_sacked():
    """§3.3.2 rule 1: with no reordering seen, "the reordering window SHOULD be set to zero if
    ... three segments have been SACKed"; otherwise it starts at min_RTT / 4. Two SACKed
    segments: the hole waits 25 ms (the RACK timer); the third SACKed one: it is lost at once."""
    log: list = []
    d = established(log=log)
    t0 = send_then_wait(d, 5)
    d.peer(".", seq=R, ack=A, options=sack((A + 1000, A + 3000)))
    assert d.conn.rack.reo_wnd == pytest.approx(0.025)
    assert d.conn.timers.rack == pytest.approx(t0 + 0.125)
    d.expect_nothing()
    d.peer(".", seq=R, ack=A, options=sack((A + 1000, A + 4000)))
    assert d.conn.rack.reo_wnd == 0
    d.expect(".", seq=A, length=1000, at=t0 + 0.1)
    assert [r.detector for r in kinds(log, SegmentLost)] == ["rack"]


def test_reordering_window_grows_once_per_round_with_dsack_and_is_bounded_by_srtt():
    """§3.3.2 rules 2 and 3, §6.2 Step 4: a D-SACK grows RACK.reo_wnd_mult by one per round
    trip (RACK.dsack_round = SND.NXT, until SND.UNA passes it); reo_wnd = mult * min_RTT / 4,
    "MUST be bounded, and this bound SHOULD be SRTT"; after 16 recoveries without a D-SACK the
    multiplier returns to 1."""
    rack = Rack()
    rack.rtt_sample(0.0, 0.1)
    rack.reordering_seen = True
    assert rack.update_reo_wnd(0, 1000, False, False, 0, 3, 0.1) == pytest.approx(0.025)
    assert rack.update_reo_wnd(0, 1000, True, False, 0, 3, 0.1) == pytest.approx(0.05)
    assert rack.update_reo_wnd(500, 2000, True, False, 0, 3, 0.1) == pytest.approx(0.05)   # same round
    assert rack.update_reo_wnd(1000, 3000, True, False, 0, 3, 0.1) == pytest.approx(0.075)
    assert rack.update_reo_wnd(3000, 4000, True, False, 0, 3, 0.1) == pytest.approx(0.1)
    assert rack.update_reo_wnd(4000, 5000, True, False, 0, 3, 0.1) == pytest.approx(0.1)   # SRTT
    assert rack.reo_wnd_mult == 5
    for _ in range(15):
        rack.recovery_exited()
    assert rack.reo_wnd_mult == 5
    rack.recovery_exited()                                              # the 16th
    assert rack.reo_wnd_mult == 1


def test_dsack_in_a_dialogue_widens_the_window_only_once_per_round():
    """§6.2 Step 4 in a dialogue: two D-SACKs in the same round trip (SND.UNA has not passed
    RACK.dsack_round = SND.NXT) count once; one after it, again."""
    d = established()
    send_segments(d, 4)
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 2000, options=sack((A, A + 1000)))
    d.peer(".", seq=R, ack=A + 3000, options=sack((A + 1000, A + 2000)))
    assert d.conn.rack.reo_wnd_mult == 2 and d.conn.rack.dsack_round == 4000
    d.conn.send(b"y" * 1000)
    d.expect("P.", seq=A + 4000, length=1000)
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 5000, options=sack((A + 2000, A + 3000)))
    assert d.conn.rack.reo_wnd_mult == 3


def test_after_reordering_three_dupacks_do_not_start_recovery_before_the_window():
    """§6.2 Step 4: "if some reordering has been observed, then RACK does not trigger fast
    recovery based on DupThresh". P0's ACK arrives after P1's SACK: reordering seen. Later three
    segments are SACKed above a hole (three DupAcks): the hole is not lost until min_RTT / 4
    has passed since RACK.segment's delivery would have allowed it; the reordering timer finds
    it then."""
    log: list = []
    d = established(log=log)
    t0 = send_then_wait(d, 3)
    d.peer(".", seq=R, ack=A, options=sack((A + 1000, A + 2000)))
    d.now = t0 + 0.11
    d.peer(".", seq=R, ack=A + 3000)                                   # P0 late: reordering
    assert d.conn.rack.reordering_seen and kinds(log, RecoveryEntered) == []
    t1 = d.now
    send_segments(d, 5, first=3)
    d.now = t1 + 0.1
    for k in range(5, 8):
        d.peer(".", seq=R, ack=A + 3000, options=sack((A + 4000, A + 1000 * k)))
    assert d.conn._dupacks == 3
    d.expect_nothing()
    assert kinds(log, RecoveryEntered) == []
    rack = d.conn.rack
    assert rack.reo_wnd > 0
    d.expect(".", seq=A + 3000, length=1000, at=t1 + rack.rtt + rack.reo_wnd)
    assert [r.trigger for r in kinds(log, RecoveryEntered)] == ["rack-timer"]


# ---------------------------------------------------------------- §6.2 Steps 2 and 3

def test_rack_update_ignores_ambiguous_retransmissions():
    """§6.2 Step 2: a retransmitted segment is no RTT sample "if ... the TSecr ... indicates the
    ACK was not acknowledging the last retransmission" or "the segment was last retransmitted
    less than RACK.min_rtt ago"; otherwise it is."""
    sb = Scoreboard()
    for i in range(3):
        sb.on_transmit(i * 100, (i + 1) * 100, 0.0)
    sb.retransmitted(sb.recs[0], 1.0)
    rack = Rack()
    rack.rtt_sample(0.0, 0.1)
    tsval = lambda t: int(t * 1000)                                    # noqa: E731 (our TSval at t)
    rack.update([sb.recs[0]], 1.05, None, tsval)                       # 50 ms < min_RTT: ignored
    assert rack.end_seq == -1
    rack.update([sb.recs[0]], 1.2, tsval(0.0), tsval)                  # echoes the original: ignored
    assert rack.end_seq == -1
    rack.update([sb.recs[0]], 1.2, tsval(1.0), tsval)                  # the retransmission's echo
    assert (rack.end_seq, rack.rtt) == (100, pytest.approx(0.2))


def test_rack_rtt_comes_from_each_ack_even_when_rack_segment_stays():
    """§6.2 Step 2 RACK_update(): for each segment newly acknowledged, in ascending order of
    xmit_ts, that passes the checks, "RACK.rtt = rtt"; only RACK.xmit_ts / RACK.end_seq wait for
    RACK_sent_after(). P0, P1, P2 leave at t0, t0 + 20 ms, t0 + 50 ms (handshake RTT 400 ms, so
    reo_wnd = 100 ms at first). P2 is SACKed after 100 ms: RACK.rtt = 0.1. P0's ACK comes 10 ms
    later (reordered): RACK.rtt = 0.16, its RTT; min_RTT = 0.16 and reordering was seen, so
    reo_wnd = 40 ms, and P1 is lost at t0 + 0.02 + 0.16 + 0.04 = t0 + 0.22, not at once as
    RACK.rtt = 0.1 would have it."""
    log: list = []
    d = established(log=log, rtt=0.4)
    t0 = d.now
    for i, t in enumerate((0.0, 0.02, 0.05)):
        d.now = t0 + t
        d.conn.send(b"p" * 1000)
        d.expect("P.", seq=A + 1000 * i, length=1000)
    d.now = t0 + 0.15
    d.peer(".", seq=R, ack=A, options=sack((A + 2000, A + 3000)))
    assert d.conn.rack.rtt == pytest.approx(0.1)
    d.expect_nothing()
    d.now = t0 + 0.16
    d.peer(".", seq=R, ack=A + 1000, options=sack((A + 2000, A + 3000)))
    assert d.conn.rack.rtt == pytest.approx(0.16) and d.conn.rack.reordering_seen
    assert d.conn.rack.end_seq == 3000                                 # RACK.segment: still P2
    d.expect_nothing()
    d.expect(".", seq=A + 1000, length=1000, at=t0 + 0.22)
    assert [r.detector for r in kinds(log, SegmentLost)] == ["rack-timer"]


def test_rack_segment_ties_break_on_sequence():
    """§6.2 RACK_sent_after(): the later transmission, and at equal times the higher end."""
    assert sent_after(2.0, 100, 1.0, 900) and not sent_after(1.0, 900, 2.0, 100)
    assert sent_after(1.0, 200, 1.0, 100) and not sent_after(1.0, 100, 1.0, 100)


# ---------------------------------------------------------------- §6.3 the RTO

def test_rto_marks_the_first_segment_and_those_sent_an_rtt_and_reo_wnd_ago():
    """§6.3 RACK_mark_losses_on_RTO(): SND.UNA's segment, and every segment with
    Segment.xmit_ts + RACK.rtt + RACK.reo_wnd - Now() <= 0; the recently sent ones are not
    marked (§3.5)."""
    sb = Scoreboard()
    for i, t in enumerate((0.0, 0.5, 0.95, 0.96)):
        sb.on_transmit(i * 100, (i + 1) * 100, t)
    rack = Rack()
    rack.rtt, rack.reo_wnd = 0.1, 0.025
    assert [r.start for r in rack.lost_on_rto(sb, 1.0)] == [0, 100]


def test_rto_with_rack_resends_the_left_edge_then_the_rest_in_slow_start():
    """§6.3 in a dialogue: five segments and the tail loss probe lost; at the RTO every segment
    was sent long ago, all are marked lost; the left edge goes first (RFC 2018 §5), then two
    per ACK as slow start allows."""
    log: list = []
    d = established(log=log)
    t0 = d.now
    send_segments(d, 5)
    d.expect("P.", seq=A + 4000, length=1000, at=t0 + 0.2)            # the probe (lost)
    d.expect(".", seq=A, length=1000, at=t0 + 1.2)                    # RTO: RTO re-armed by it
    assert sorted(nums([r for r in kinds(log, SegmentLost) if r.detector == "rto"])) == [0, 1, 2, 3, 4]
    d.expect_nothing()
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 1000)
    d.expect(".", seq=A + 1000, length=1000)
    d.expect(".", seq=A + 2000, length=1000)
    d.expect_nothing()


# ---------------------------------------------------------------- §7.2 scheduling the probe

def test_no_probe_timer_while_segments_are_sacked_or_in_recovery():
    """§7.2: the PTO is (re)started after new data or a cumulative ACK "unless it is already in
    fast recovery, RTO recovery, or segments have been SACKed"."""
    d = established()
    t0 = d.now
    send_segments(d, 4)
    assert d.conn.timers.tlp == pytest.approx(t0 + 0.2)
    d.now = t0 + 0.1
    d.peer(".", seq=R, ack=A + 1000, options=sack((A + 2000, A + 3000)))
    assert d.conn.timers.tlp is None                                  # a SACKed segment
    d.expect(".", seq=A + 1000, length=1000, at=t0 + 0.125)           # RACK timer: recovery
    assert d.conn._in_recovery and d.conn.timers.tlp is None
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 3000)                                  # partial ACK: 3 is missing
    d.expect("P.", seq=A + 3000, length=1000)                         # (RACK: sent before 1's repair)
    assert d.conn._in_recovery and d.conn.timers.tlp is None
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 4000)                                  # recovery ends, all acked
    d.conn.send(b"z" * 1000)
    d.expect("P.", seq=A + 4000, length=1000)
    assert d.conn.timers.tlp is not None                              # new data: armed again


def test_pto_is_capped_at_the_rto():
    """§7.2 TLP_calc_PTO(): "If Now() + PTO > TCP_RTO_expiration(): PTO =
    TCP_RTO_expiration() - Now()". One segment: 2 * SRTT + TLP.max_ack_delay = 0.4 s, but the RTO
    (min_rto 0.2 s, RTO 0.3 s) comes sooner: the probe goes at the RTO's time, instead of the
    timeout, and the RTO is re-armed from there (§7.3)."""
    log: list = []
    d = established(TcpConfig(nagle=False, min_rto=0.2), log=log)
    t0 = d.now
    d.conn.send(b"q" * 1000)
    d.expect("P.", seq=A, length=1000)
    rto = d.conn.rtt.rto
    assert rto == pytest.approx(0.3)
    assert d.conn.timers.tlp == d.conn.timers.rto == pytest.approx(t0 + rto)
    d.expect("P.", seq=A, length=1000, at=t0 + rto)
    assert len(kinds(log, LossProbe)) == 1 and kinds(log, RtoBackoff) == []
    assert d.conn.timers.rto == pytest.approx(t0 + 2 * rto)


# ---------------------------------------------------------------- §7.3 sending the probe

def test_no_second_probe_while_one_is_outstanding():
    """§7.3 condition 1: "there is no other previous loss probe still in flight" (TLP.end_seq),
    else the sender "MUST skip sending a loss probe and MUST proceed to re-arm the RTO timer".
    With timestamps every ACK is an RTT sample, so condition 2 holds throughout."""
    log: list = []
    d = established(log=log, peer_options=TS_OK)
    ts = d.conn._ts_now
    t0 = send_then_wait(d, 4)
    d.peer(".", seq=R, ack=A + 2000, options=(Nop(), Nop(), Timestamps(2, ts(t0))))
    d.expect("P.", seq=A + 3000, length=1000, at=d.conn.timers.tlp)   # the probe: P3
    assert d.conn.tlp.end_seq == 4000
    d.now += 0.05
    d.peer(".", seq=R, ack=A + 3000, options=(Nop(), Nop(), Timestamps(3, ts(t0))))   # P2, late
    assert d.conn.tlp.rtt_sampled and d.conn.tlp.end_seq == 4000
    pto = d.conn.timers.tlp
    assert pto is not None and pto < d.conn.timers.rto
    d.expect_nothing(until=pto + 0.001)                               # PTO fired: no probe
    assert len(kinds(log, LossProbe)) == 1
    assert d.conn.timers.rto == pytest.approx(pto + d.conn.rtt.rto)   # ... the RTO re-armed
    d.expect("P.", seq=A + 3000, length=1000, at=pto + d.conn.rtt.rto)   # the RTO's, at last


def test_no_probe_before_an_rtt_sample():
    """§7.3 condition 2: "the sender has obtained an RTT measurement since the last loss probe
    transmission or the start of the connection"; without it the sender "MUST skip sending a
    loss probe and MUST proceed to re-arm the RTO timer". The SYN was retransmitted, so the
    handshake gave no RTT sample (Karn), and there are no timestamps: the PTO (1 s without
    SRTT, §7.2) fires but sends nothing; the RTO, re-armed there, resends the first segment."""
    log: list = []
    d = Dialogue(iss=ISS, config=TcpConfig(nagle=False), log=log.append)
    d.irs = IRS
    d.conn.connect(d.now)
    d.expect("S", seq=ISS)
    d.expect("S", seq=ISS, at=1.0)
    d.now = 1.1
    d.peer("S.", seq=IRS, ack=A, options=SACK_OK)
    d.expect(".", seq=A, ack=R)
    assert d.conn.rtt.srtt is None
    send_segments(d, 3)
    assert d.conn.timers.tlp == pytest.approx(2.1)
    d.expect_nothing(until=2.1 + 0.001)
    assert kinds(log, LossProbe) == []
    rto_at = d.conn.timers.rto
    assert rto_at == pytest.approx(2.1 + d.conn.rtt.rto)
    d.expect(".", seq=A, length=1000, at=rto_at)


# ---------------------------------------------------------------- §7.4.2 the probe's ACK

def test_tlp_duplicate_ack_without_sack_means_no_loss():
    """§7.4.2 case 2: a receiver without D-SACK answers the probe of a segment it had with a
    DupAck "without any SACK option": both copies arrived, "TLP.end_seq = None", and no
    congestion response follows."""
    d = established()
    t0 = send_then_wait(d, 3)
    d.peer(".", seq=R, ack=A + 2000)
    d.expect("P.", seq=A + 2000, length=1000, at=t0 + 0.5)           # the probe of P2
    ssthresh = d.conn.cc.ssthresh
    d.now += 0.01
    d.peer(".", seq=R, ack=A + 3000)                                 # the original's ACK
    assert d.conn.tlp.end_seq == 3000
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 3000)                                 # the probe's: a DupAck
    assert d.conn.tlp.end_seq is None
    d.conn.send(b"z" * 1000)
    d.expect("P.", seq=A + 3000, length=1000)
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 4000)
    assert d.conn.cc.ssthresh == ssthresh


def test_tlp_of_new_data_delivered_ends_the_episode_without_a_response():
    """§7.4.2 TLP_process_ack(): "If not TLP.is_retrans: TLP.end_seq = None /* TLP of new data
    delivered */"."""
    d = established(TcpConfig(nagle=False, initial_window=2000))
    t0 = d.now
    d.conn.send(b"y" * 3000)
    d.expect(".", seq=A, length=1000)
    d.expect(".", seq=A + 1000, length=1000)
    d.expect("P.", seq=A + 2000, length=1000, at=t0 + 0.2)           # a probe of new data
    assert d.conn.tlp.end_seq == 3000 and not d.conn.tlp.is_retrans
    ssthresh = d.conn.cc.ssthresh
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 3000)
    assert d.conn.tlp.end_seq is None and d.conn.cc.ssthresh == ssthresh


# ---------------------------------------------------------------- §9.3 with congestion control

def test_segments_rack_marks_lost_wait_for_congestion_control():
    """§9.3: "A segment marked as lost by RACK-TLP MUST NOT be retransmitted until congestion
    control deems this appropriate" (PRR, RECOMMENDED there). Six of ten segments are lost;
    one ACK SACKs the other four: RACK marks all six lost at once (reo_wnd 0: three SACKed),
    PRR-SSRB lets five go (DeliveredData + 1 SMSS); the sixth waits for the next ACK."""
    log: list = []
    d = established(log=log)
    send_segments(d, 10)
    d.now += 0.1
    d.peer(".", seq=R, ack=A, options=sack((A + 6000, A + 10000)))
    assert nums(kinds(log, SegmentLost)) == [0, 1, 2, 3, 4, 5]
    for i in range(5):
        d.expect(".", seq=A + 1000 * i, length=1000)
    d.expect_nothing()
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 1000, options=sack((A + 6000, A + 10000)))
    d.expect(".", seq=A + 5000, length=1000)
