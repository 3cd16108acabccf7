"""Packet dialogues for RFC 6582 (NewReno) requirements (docs/rfc-requirements-timers-cc.md): the
steps of §3.2 and the duplicate ACKs after a timeout (§4). Without SACK or timestamps, Reno
window arithmetic, MSS 1000. ISS and IRS lie just below 2**32: sequence numbers wrap mid-test."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.wire.tcp import Mss

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
S = State
MSS = 1000


def established(**changes):
    cfg = TcpConfig(nagle=False, cc="newreno", **changes)
    return Dialogue.established(iss=ISS, irs=IRS, config=cfg, peer_options=(Mss(MSS),))


def flight(d):
    """The data segments the connection sends now: (index, length), index = offset / MSS."""
    d.advance(0)
    out = []
    while d.sent:
        seg = d.sent.popleft()
        assert seg.payload and not seg.flags & 0x07, seg.summary()
        out.append((((seg.seq - A) & M) // MSS, len(seg.payload)))
    return out


def idx(d):
    return [i for i, _ in flight(d)]


def dupacks(d, n, ack):
    sent = []
    for _ in range(n):
        d.peer(".", seq=R, ack=ack)
        sent.append(idx(d))
    return sent


def test_timeout_records_recover_and_ends_fast_recovery():
    """§3.2 step 4: "After a retransmit timeout, record the highest sequence number transmitted
    in the variable recover, and exit the fast recovery procedure"; §4: duplicate ACKs that do
    not cover more than recover then start no fast retransmit (the timer stays the backup)."""
    d = established()
    d.conn.send(b"x" * 30000)
    assert idx(d) == list(range(10))                      # segments 0 and 5 are lost
    assert dupacks(d, 3, A) == [[10], [11], [0]]          # Limited Transmit, fast retransmit
    assert dupacks(d, 7, A) == [[], [], [], [], [12], [13], [14]]
    ssthresh = d.conn.cc.ssthresh
    assert d.conn._in_recovery and ssthresh == 5 * MSS
    d.expect(".", seq=A, length=MSS, at=1.0)              # the retransmission was lost too
    assert not d.conn._in_recovery and d.conn._recover == 15 * MSS
    assert d.conn.cc.cwnd == MSS
    d.now = 1.1
    d.peer(".", seq=R, ack=A + 5 * MSS)                   # 0 to 4: slow start from SND.UNA
    assert idx(d) == [5, 6, 7]                            # (cwnd 1 + 2 SMSS, RFC 3465 L = 2)
    d.now = 1.2
    assert dupacks(d, 3, A + 5 * MSS) == [[8], [9], []]   # 5 lost again: 3 duplicates, no
    assert not d.conn._in_recovery                        # fast retransmit below recover
    assert d.conn.cc.ssthresh == ssthresh


@pytest.mark.parametrize("past", [
    pytest.param(0, id="ack-of-recover"),
    pytest.param(1, id="ack-past-recover")])
def test_no_second_fast_retransmit_until_the_ack_covers_more_than_recover(past):
    """§3.2 step 2: on the third duplicate ACK the sender enters fast retransmit only if the
    cumulative ACK "covers more than recover", i.e. ack_number - 1 > recover (the highest
    sequence number sent when the last fast retransmit began). After a full ACK of exactly
    recover, duplicates of that ACK start none and leave ssthresh alone (the loss they report
    is left to the timer); after one a segment further, they do. (Option (2) at the full ACK,
    cwnd = ssthresh, so that the next flight is the same either way.)"""
    d = established(newreno_exit="ssthresh")
    d.conn.send(b"x" * 40000)
    assert idx(d) == list(range(10))
    assert dupacks(d, 3, A) == [[10], [11], [0]]          # recover: the end of segment 11
    assert dupacks(d, 6, A) == [[], [], [], [], [12], [13]]
    una = 12 + past
    d.peer(".", seq=R, ack=A + una * MSS)                 # full ACK; segment ``una`` is lost
    assert not d.conn._in_recovery and d.conn.cc.cwnd == 5 * MSS
    assert idx(d) == list(range(14, 17 + past))
    nxt = 17 + past
    third = [una] if past else []
    assert dupacks(d, 3, A + una * MSS) == [[nxt], [nxt + 1], third]
    assert d.conn._in_recovery == bool(past)
    assert d.conn.cc.ssthresh == (2 * MSS if past else 5 * MSS)  # FlightSize 13..17 / 2, whole segments
    if not past:
        d.expect(".", seq=A + una * MSS, length=MSS, at=1.0)        # the timer repairs it


def test_partial_ack_deflates_and_adds_back_one_smss_only_for_a_full_smss():
    """§3.2 step 3, partial acknowledgments: "retransmit the first unacknowledged segment.
    Deflate the congestion window by the amount of new data acknowledged ... If the partial ACK
    acknowledges at least one SMSS of new data, then add back SMSS bytes". A partial ACK of
    half a segment (the receiver got part of the retransmission) deflates by 500 and adds
    nothing; one of 2500 octets deflates by 2500 and adds back 1000. The full ACK then sets
    cwnd = ssthresh (option (2) of step 3, chosen here)."""
    d = established(newreno_exit="ssthresh")
    d.conn.send(b"x" * 10000)
    assert idx(d) == list(range(10))                      # 0 and 3 are lost
    assert dupacks(d, 8, A) == [[], [], [0], [], [], [], [], []]
    before = d.conn.cwnd
    assert before == 5 * MSS + 8 * MSS
    d.peer(".", seq=R, ack=A + 500)                       # partial: 500 < SMSS
    assert flight(d) == [(0, MSS)]                         # from A + 500, one SMSS
    assert d.conn._in_recovery and d.conn.cwnd == before - 500
    d.peer(".", seq=R, ack=A + 3 * MSS)                   # partial: 2500 >= SMSS
    assert flight(d) == [(3, MSS)]
    assert d.conn._in_recovery and d.conn.cwnd == before - 500 - 2500 + MSS
    d.peer(".", seq=R, ack=A + 10 * MSS)                  # full ACK
    assert not d.conn._in_recovery and d.conn.cwnd == 5 * MSS
