"""RFC 6675 (SACK-based loss recovery) as packet dialogues, with RACK off (``TcpConfig.rack =
False``: IsLost() and DupThresh detect the losses, as the RFC has it): DupAcks (§2, §5), entering
recovery (§5 steps 1-4), NextSeg() (§4), leaving recovery (§5 (A)), the timeout (§5.1) and the
RTO during recovery (§6). ISS and IRS just below 2**32: sequence numbers wrap in every test."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.events import RecoveryEntered, RecoveryExited, SegmentLost
from synack.testing import Dialogue
from synack.testing import sack_option as sack
from synack.wire.tcp import Mss, Nop, SackPermitted

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
SACK_OK = (Mss(1000), Nop(), Nop(), SackPermitted())


def segs(*pairs):
    """SACK option for segment numbers: (2, 4) = segments 2 and 3 = [A + 2000, A + 4000)."""
    return sack(*[(A + 1000 * a, A + 1000 * b) for a, b in pairs])


def established(config=None, *, log=None):
    cfg = config if config is not None else TcpConfig(nagle=False, rack=False, cc="newreno")
    return Dialogue.established(iss=ISS, irs=IRS, config=cfg, peer_options=SACK_OK, rtt=0.1, log=log)


def send_segments(d, n, size=1000, first=0):
    d.conn.send(b"x" * (size * n))
    for i in range(n):
        d.expect("." if i < n - 1 else "P.", seq=A + size * (first + i), length=size)


def sent_now(d):
    """Segment numbers sent in answer to the last input (and nothing else)."""
    d._collect()
    out = []
    while d.sent:
        out.append(((d.sent.popleft().seq - A) & M) // 1000)
    return out


def kinds(log, cls):
    return [r for r in log if isinstance(r, cls)]


# ---------------------------------------------------------------- §2, §5: DupAcks

def test_dupacks_count_new_sack_information_and_reset_on_a_cumulative_ack():
    """§2: a duplicate ACK is one whose SACK blocks name previously un-SACKed octets, "even if
    it carries new data, changes the advertised window, or moves the cumulative acknowledgment
    point"; §5: "If the incoming ACK is a cumulative acknowledgment, the TCP MUST reset DupAcks
    to zero", and a duplicate outside recovery "MUST increase DupAcks by one"."""
    d = established()
    send_segments(d, 8)
    d.now += 0.1
    # blocks of half segments: at most 2000 octets SACKed, so IsLost() stays false throughout
    d.peer(".", seq=R, ack=A, options=sack((A + 3000, A + 3500)))
    assert d.conn._dupacks == 1
    d.peer(".", seq=R, ack=A, options=sack((A + 3000, A + 3500)))   # nothing new: not a DupAck
    assert d.conn._dupacks == 1
    d.peer(".", seq=R, ack=A, window=30000, options=sack((A + 3000, A + 4000)))   # a new window
    assert d.conn._dupacks == 2
    d.peer(".", seq=R, ack=A + 1000, options=sack((A + 3000, A + 4000)))   # cumulative: reset
    assert d.conn._dupacks == 0
    d.peer(".", seq=R, ack=A + 1000, options=sack((A + 3000, A + 4500)))
    assert d.conn._dupacks == 1
    d.peer(".", seq=R, ack=A + 2000, options=sack((A + 3000, A + 5000)))   # cumulative, new SACK
    assert d.conn._dupacks == 1
    assert kinds(d.all_events, RecoveryEntered) == []


# ---------------------------------------------------------------- §5 steps (1), (2), (4)

def test_dupthresh_duplicates_of_small_segments_start_recovery():
    """§5 step (1): "If DupAcks >= DupThresh, go to step (4)" — the case of segments smaller
    than SMSS, where IsLost() (more than 2 * SMSS SACKed above) stays false; (4.3) retransmits
    the first segment, HighACK + 1."""
    log = []
    d = established(log=log.append)
    for i in range(5):
        d.conn.send(b"y" * 100)
        d.expect("P.", seq=A + 100 * i, length=100)
    d.now += 0.1
    for k in range(1, 4):
        d.peer(".", seq=R, ack=A, options=sack((A + 100, A + 100 * (k + 1))))
        if k < 3:
            d.expect_nothing()
    d.expect(".", seq=A, length=100)
    d.expect_nothing()
    assert [(r.trigger, r.recover) for r in kinds(log, RecoveryEntered)] == [("dupacks", (A + 500) & M)]
    assert [(r.detector, r.seq) for r in kinds(log, SegmentLost)] == [("dupthresh", A)]


def test_islost_on_the_first_duplicate_starts_recovery():
    """§5 step (2): "If DupAcks < DupThresh but IsLost (HighACK + 1) returns true" — here more
    than (DupThresh - 1) * SMSS octets SACKed above it by one ACK — "go to step (4)"."""
    log = []
    d = established(log=log.append)
    send_segments(d, 5)
    d.now += 0.1
    d.peer(".", seq=R, ack=A, options=segs((1, 4)))
    assert d.conn._dupacks == 1
    d.expect(".", seq=A, length=1000)
    assert [r.detector for r in kinds(log, SegmentLost)] == ["sack"]
    assert [r.trigger for r in kinds(log, RecoveryEntered)] == ["dupacks"]


def test_limited_transmit_segments_are_not_in_the_flightsize_that_sets_ssthresh():
    """§5 (4.2): "ssthresh = cwnd = (FlightSize / 2)" and "[RFC5681] requires that any segments
    sent as part of the Limited Transmit mechanism not be counted in FlightSize" (RFC 5681 §3.2
    step 2: "additional data sent in limited transmit MUST NOT be included in this
    calculation"). Eight segments in flight (the application had no more; cwnd is ten); two
    more leave on the first DupAck (step 3: cwnd - pipe allows them): ssthresh is half of eight
    segments, not of ten. RFC 6937's RecoverFS is snd.nxt - snd.una, ten."""
    log = []
    d = established(log=log.append)
    send_segments(d, 8)
    d.now += 0.1
    d.peer(".", seq=R, ack=A, options=segs((1, 2)))
    d.conn.send(b"y" * 2000)
    d.expect(".", seq=A + 8000, length=1000)                      # Limited Transmit
    d.expect("P.", seq=A + 9000, length=1000)
    d.peer(".", seq=R, ack=A, options=segs((1, 3)))
    d.peer(".", seq=R, ack=A, options=segs((1, 4)))
    d.expect(".", seq=A, length=1000)
    entered = kinds(log, RecoveryEntered)
    assert [(r.flight, r.ssthresh) for r in entered] == [(8000, 4000)]
    assert d.conn.cc.ssthresh == 4000 and d.conn._recover_fs == 10000


# ---------------------------------------------------------------- §4 NextSeg(), §5 (C)

def test_nextseg_resends_each_lost_segment_once_then_new_data():
    """§4 NextSeg() rule (1): the lowest lost octet above HighRxt, below the highest SACKed one,
    IsLost(); (C.2): HighRxt moves up, so a retransmitted hole is not sent again while the later
    SACKs still show it missing; rule (2) once no hole is lost: new data, as cwnd - pipe (PRR)
    allows. Segments 1, 4 and 7 of 10 are lost; RecoveryPoint is HighData (4.1); the ACK that
    covers it ends recovery (A)."""
    log = []
    d = established(TcpConfig(nagle=False, rack=False, cc="newreno"), log=log.append)
    d.conn.send(b"x" * 20000)
    for i in range(10):
        d.expect(".", seq=A + 1000 * i, length=1000)
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 1000)                              # slow start: 10 and 11 go
    assert sent_now(d) == [10, 11]
    sent = []
    for blocks in [((2, 3),), ((2, 4),), ((2, 4), (5, 6)), ((5, 7), (2, 4)), ((8, 9), (5, 7), (2, 4)),
                   ((8, 10), (5, 7), (2, 4)), ((10, 11), (8, 9), (5, 7), (2, 4)),
                   ((10, 12), (8, 9), (5, 7), (2, 4))]:
        d.peer(".", seq=R, ack=A + 1000, options=segs(*blocks))
        sent.append(sent_now(d))
    # segments 12, 13 by Limited Transmit (step 3); segment 1 lost by IsLost() on the third
    # DupAck; 4 once three blocks lie above it, 7 once more than 2 * SMSS do, and it goes with
    # the next ACK (ssthresh is 5 segments, FlightSize 11 / 2 in whole segments, so PRR has no
    # room on the one that marked it); the later ACKs still show 1 and 4 missing, but they are
    # not sent again (HighRxt)
    assert [s for s in sum(sent, []) if s < 10] == [1, 4, 7]
    assert sent[:2] == [[12], [13]] and sent[2][0] == 1 and sent[4][0] == 4 and sent[7] == [7]
    assert [((r.seq - A) & M) // 1000 for r in kinds(log, SegmentLost)] == [1, 4, 7]
    rp = kinds(log, RecoveryEntered)[0].recover
    assert rp == (A + 14000) & M
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 13000, options=segs((14, 15)))      # below RecoveryPoint: stays
    assert d.conn._in_recovery
    d.peer(".", seq=R, ack=A + 15000)                              # covers it: recovery ends
    assert len(kinds(log, RecoveryExited)) == 1 and not d.conn._in_recovery
    assert d.conn.total_retrans == 3


def test_scoreboard_above_the_recovery_point_is_kept_when_recovery_ends():
    """§5 (A): "Any information contained in the scoreboard for sequence numbers greater than
    the new value of HighACK SHOULD NOT be cleared when leaving the loss recovery phase": a
    segment sent during recovery and SACKed stays SACKed after the ACK of RecoveryPoint, and is
    not sent again."""
    log = []
    d = established(log=log.append)
    d.conn.send(b"x" * 15000)
    for i in range(10):
        d.expect(".", seq=A + 1000 * i, length=1000)
    d.now += 0.1
    sent = []
    for k in range(2, 11):                                        # segment 0 lost
        d.peer(".", seq=R, ack=A, options=segs((1, k)))
        sent += sent_now(d)
    assert sent[:3] == [10, 11, 0] and sent[3:5] == [12, 13]      # LT, fast retransmit, PRR
    rp = kinds(log, RecoveryEntered)[0].recover
    assert rp == (A + 12000) & M                                  # HighData at entry (4.1)
    d.now += 0.1
    d.peer(".", seq=R, ack=rp, options=segs((13, 14)))             # 12 missing, 13 SACKed
    assert not d.conn._in_recovery and len(kinds(log, RecoveryExited)) == 1
    assert d.conn.sb.sacked_bytes == 1000 and d.conn.sb.ranges == [[13000, 14000]]
    assert 13 not in sent_now(d)


# ---------------------------------------------------------------- NextSeg() rules (3) and (4)

def test_nextseg_rule3_resends_an_unsacked_segment_below_the_highest_sack():
    """§4 NextSeg() rule (3): no lost segment (1) and no new data (2), but segment 3 is
    un-SACKed, above HighRxt and below the highest SACKed octet: "one segment of up to SMSS
    octets starting with S3 SHOULD be returned" when cwnd - pipe allows (PRR-SSRB here)."""
    d = established()
    send_segments(d, 6)                                           # segments 0 and 3 lost
    d.now += 0.1
    for blocks in [((1, 2),), ((1, 3),), ((4, 5), (1, 3))]:
        d.peer(".", seq=R, ack=A, options=segs(*blocks))
    assert sent_now(d) == [0]                                     # IsLost(0): 3000 octets above
    d.peer(".", seq=R, ack=A, options=segs((4, 6), (1, 3)))       # IsLost(3) still false
    assert sent_now(d) == [3]


def test_nextseg_rule4_rescue_retransmission_of_the_tail():
    """§4 NextSeg() rule (4): segments 0 and 5 of 6 are lost and there is no new data. After
    the retransmission of segment 0 is acknowledged (HighACK > RescueRxt), nothing is lost by
    IsLost() and nothing lies below a SACK: "one segment of up to SMSS octets that MUST include
    the highest outstanding unSACKed sequence number SHOULD be returned", once per recovery."""
    d = established()
    send_segments(d, 6)
    d.now += 0.1
    for k in range(2, 6):
        d.peer(".", seq=R, ack=A, options=segs((1, k)))
    assert sent_now(d) == [0]
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 5000)                               # partial ACK: 5 is missing
    assert d.conn._in_recovery
    assert sent_now(d) == [5]


# ---------------------------------------------------------------- §5.1 the timeout, §6 the RTO timer

def test_rto_during_recovery_sets_the_recovery_point_and_no_new_recovery_before_it():
    """§5.1: "If an RTO occurs during loss recovery ..., RecoveryPoint MUST be set to HighData.
    Further, the new value of RecoveryPoint MUST be preserved and the loss recovery algorithm
    ... MUST be terminated. In addition, a new recovery phase ... MUST NOT be initiated until
    HighACK is greater than or equal to the new value of RecoveryPoint." The SACK information
    of the ACKs after it is used (the SACKed segment is skipped, §5.1 SHOULDs)."""
    log = []
    d = established(log=log.append)
    send_segments(d, 8)
    d.now += 0.1
    d.peer(".", seq=R, ack=A, options=segs((1, 4)))
    d.expect(".", seq=A, length=1000)                             # fast retransmit; lost again
    assert d.conn._in_recovery
    t = d.now
    d.expect(".", seq=A, length=1000, at=t + 1.0)                 # the RTO
    assert not d.conn._in_recovery
    rto = kinds(log, RecoveryEntered)[-1]
    assert (rto.kind, rto.recover) == ("rto", (A + 8000) & M)
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 4000, options=segs((5, 6)))         # 4 lost; 5 SACKed
    d.expect(".", seq=A + 4000, length=1000)                      # (cwnd 2 SMSS: 4, then 6)
    d.expect(".", seq=A + 6000, length=1000)
    d.peer(".", seq=R, ack=A + 4000, options=segs((7, 8), (5, 6)))
    d.peer(".", seq=R, ack=A + 4000, options=segs((6, 8), (5, 6)))
    assert [r.kind for r in kinds(log, RecoveryEntered)] == ["sack", "rto"]   # no new one


def test_rto_restarted_by_each_retransmission_during_recovery():
    """§6: "a more careful variant that re-arms the RTO timer on each retransmission that is
    sent during recovery MAY be used" (synack does): the timer runs from the last repair."""
    d = established()
    send_segments(d, 10)
    d.now += 0.1
    d.peer(".", seq=R, ack=A, options=segs((1, 4)))
    d.expect(".", seq=A, length=1000)
    assert d.conn.timers.rto == pytest.approx(d.now + d.conn.rtt.rto)
    d.now += 0.05                                                 # no ACK of new data since
    d.peer(".", seq=R, ack=A, options=segs((5, 10), (1, 4)))       # 4 is lost (IsLost)
    d.expect(".", seq=A + 4000, length=1000)
    assert d.conn.timers.rto == pytest.approx(d.now + d.conn.rtt.rto)
