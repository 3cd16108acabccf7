"""Packet dialogues: RFC 6675 §4 NextSeg() rules (3) and (4), the "last resort" retransmissions of
fast recovery, with RACK off (``TcpConfig.rack = False``) and, for contrast, on (RFC 8985 §9.2:
RFC 6675 "MUST NOT be used with RACK-TLP"). A connection in recovery, one ACK in, exactly these
segments out. ISS and IRS just below 2**32: the sequence numbers wrap in every test.

The rules, as RFC 6675 §4 words them:
(3) no lost segment (1) and no new data (2), but "an unSACKed sequence number 'S3'" above HighRxt
    and below the highest SACKed octet: one segment from S3;
(4) "a single 'rescue' retransmission per entry into loss recovery": if HighACK > RescueRxt, one
    segment that "MUST include the highest outstanding unSACKed sequence number", RescueRxt set
    to RecoveryPoint, HighRxt not updated.
"""

from synack.tcp.config import TcpConfig
from synack.tcp.events import RecoveryExited, SegmentLost
from synack.testing import Dialogue
from synack.testing import sack_option as sack
from synack.wire.tcp import Mss, Nop, SackPermitted

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
SACK_OK = (Mss(1000), Nop(), Nop(), SackPermitted())
RACK_OFF = TcpConfig(nagle=False, rack=False, cc="newreno")


def segs(*pairs):
    """SACK option for segment numbers: (2, 4) = segments 2 and 3 = [A + 2000, A + 4000)."""
    return sack(*[(A + 1000 * a, A + 1000 * b) for a, b in pairs])


def established(config=RACK_OFF, log=None):
    return Dialogue.established(iss=ISS, irs=IRS, config=config, peer_options=SACK_OK, rtt=0.1, log=log)


def send_segments(d, n):
    d.conn.send(b"x" * (1000 * n))
    for i in range(n):
        d.expect("." if i < n - 1 else "P.", seq=A + 1000 * i, length=1000)


def fast_retransmit_of_segment_0(d, sacked_to):
    """SACKs of segments 1, 2, ... up to ``sacked_to`` (exclusive), one per ACK; IsLost(0) on
    the third (3000 octets SACKed above it): the fast retransmission of segment 0 (4.3)."""
    d.now += 0.1
    for k in range(2, sacked_to + 1):
        d.peer(".", seq=R, ack=A, options=segs((1, k)))
        if k == 4:
            d.expect(".", seq=A, length=1000)
        d.expect_nothing()
    assert d.conn._in_recovery


def test_rescue_resends_the_highest_unsacked_segment_once_then_rule3_fills_the_tail():
    """Segment 0 and the tail 5, 6, 7 of eight are lost; the application has no more data. The
    ACK of the fast retransmission (HighACK past RescueRxt, the retransmission's end) leaves
    rules (1)-(3) nothing: rule (4) resends the segment holding the highest un-SACKed octet, 7
    (not 5: the rescue MUST include that octet). A second ACK with room under PRR (a window
    update) gets nothing: one rescue per recovery. The SACK of the rescue puts 5 and 6 below
    the highest SACKed octet and above HighRxt (which the rescue left at segment 0's end): rule
    (3) resends both, and pipe counts two copies of each (SetPipe())."""
    log = []
    d = established(log=log.append)
    send_segments(d, 8)
    fast_retransmit_of_segment_0(d, 5)
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 5000)
    d.expect("P.", seq=A + 7000, length=1000)                     # the rescue
    d.expect_nothing()
    assert d.conn._high_rxt == 1000 and d.conn._rescue_rxt == d.conn._recover
    d.peer(".", seq=R, ack=A + 5000, window=30000)
    assert d.conn._sack_send_budget() > 0                         # PRR would allow a segment
    d.expect_nothing()
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 5000, options=segs((7, 8)))
    d.expect(".", seq=A + 5000, length=1000)                      # rule (3), twice
    d.expect(".", seq=A + 6000, length=1000)
    d.expect_nothing()
    sb = d.conn.sb
    assert sb.dup_bytes == 2000 and sb.pipe == 2000 + 2000
    assert [r.detector for r in log if isinstance(r, SegmentLost)] == ["sack"]   # 5-7 never IsLost()
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 8000)
    d.expect_nothing()
    assert not d.conn._in_recovery and len([r for r in log if isinstance(r, RecoveryExited)]) == 1
    assert d.conn.total_retrans == 4


def test_rescue_of_the_tail_carries_the_fin():
    """The last segment before a FIN (both in one segment) and segment 0 are lost: the rescue
    retransmission is that last segment with the FIN, the highest outstanding sequence number
    (RFC 9293 §3.10.4: the FIN takes one); its ACK ends recovery and the close goes on."""
    d = established()
    d.conn.send(b"x" * 6000)
    d.conn.close(d.now)
    for i in range(6):
        d.expect("." if i < 5 else "FP.", seq=A + 1000 * i, length=1000)
    fast_retransmit_of_segment_0(d, 5)
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 5000)
    d.expect("FP.", seq=A + 5000, length=1000)
    d.expect_nothing()
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 6001)
    d.expect_nothing()
    assert not d.conn._in_recovery and d.conn.state.name == "FIN_WAIT_2"


def test_rescue_may_repeat_a_segment_rule1_already_resent():
    """Segments 0 and 3 of eight are lost; 4-7 arrive. IsLost(3) once more than 2 * SMSS are
    SACKed above it: rule (1) resends it. When the ACK of segment 0's retransmission comes, the
    highest un-SACKed octet is in segment 3, whose retransmission is still on its way. Rule (4)
    asks only for "outstanding unSACKed data" and HighACK > RescueRxt, both true: segment 3 goes
    a third time, once, as the text reads ("the sender has two copies of the same data
    considered to be in the network", §4). HighRxt stays (rule (4) does not move it)."""
    d = established()
    send_segments(d, 8)
    d.now += 0.1
    for blocks, out in [(((1, 2),), None), (((1, 3),), None), (((4, 5), (1, 3)), 0),
                        (((4, 6), (1, 3)), None), (((4, 7), (1, 3)), 3), (((4, 8), (1, 3)), None)]:
        d.peer(".", seq=R, ack=A, options=segs(*blocks))
        if out is not None:
            d.expect(".", seq=A + 1000 * out, length=1000)
        d.expect_nothing()
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 3000, options=segs((4, 8)))
    d.expect(".", seq=A + 3000, length=1000)
    d.expect_nothing()
    assert d.conn._high_rxt == 4000 and d.conn.total_retrans == 3
    d.peer(".", seq=R, ack=A + 3000, options=segs((4, 8)), window=30000)
    d.expect_nothing()                                            # no second rescue


def test_rule3_waits_for_room_under_prr():
    """Rule (3) sends only "If cwnd - pipe >= 1 SMSS" (RFC 6675 §5 (C)), cwnd being PRR's
    (RFC 6937 §3). Ten segments, 0, 4 and 5 lost; the peer SACKs half segments above 5, so
    IsLost(4) stays false (one block, at most 2 * SMSS above it) for a while. Recovery: ssthresh
    5000, RecoverFS 10000, and pipe above ssthresh, so sndcnt = CEIL(prr_delivered / 2) -
    prr_out, with prr_out 1000 after the fast retransmission: no room until prr_delivered
    passes 2000. Segment 4 is rule (3)'s from the first SACK above it, and goes when PRR has
    room (pipe then counts both copies); then IsLost(5), once 2500 octets are SACKed above it,
    and IsLost(4) (no longer two copies in pipe): rule (1) resends 5."""
    d = established()
    send_segments(d, 10)
    d.now += 0.1
    half = [(6, 6.5), (6, 7), (6, 7.5), (6, 8), (6, 8.5)]
    sent = []
    for blocks in [((1, 2),), ((1, 3),), ((1, 4),)] + [(h, (1, 4)) for h in half]:
        d.peer(".", seq=R, ack=A, options=sack(*[(A + int(1000 * a), A + int(1000 * b)) for a, b in blocks]))
        d._collect()
        sent.append([((s.seq - A) & M) // 1000 for s in d.sent])
        d.sent.clear()
        if blocks[0] == (6, 7.5):
            assert d.conn.sb.dup_bytes == 1000 and d.conn._high_rxt == 5000
    assert d.conn.cc.ssthresh == 5000 and d.conn._recover_fs == 10000
    assert sent == [[], [], [0], [], [], [4], [], [5]]
    assert d.conn.sb.dup_bytes == 0


def test_with_rack_the_lost_tail_is_found_by_time_not_rescued():
    """RACK on (the default): RFC 8985 §9.2, "the algorithm [RFC6675] MUST NOT be used with
    RACK-TLP", so no rule (3) or (4). The case rule (4) is for needs neither: the ACK of segment
    0's retransmission, sent after segment 5, makes RACK find 5 lost by time (§6.2: it was sent
    before a delivered segment, more than RACK.rtt + reo_wnd ago), and it goes as a loss."""
    log = []
    d = established(TcpConfig(nagle=False, cc="newreno"), log=log.append)
    send_segments(d, 6)
    fast_retransmit_of_segment_0(d, 5)
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 5000)
    d.expect("P.", seq=A + 5000, length=1000)
    d.expect_nothing()
    lost = [(r.detector, ((r.seq - A) & M) // 1000) for r in log if isinstance(r, SegmentLost)]
    assert lost == [("rack", 0), ("rack", 5)]
    assert d.conn.sb.dup_bytes == 0
