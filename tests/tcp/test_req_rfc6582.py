"""Packet dialogues for RFC 6582 (NewReno) requirements (docs/rfc-requirements-timers-cc.md): the
steps of §3.2 and the duplicate ACKs after a timeout (§4). Without SACK or timestamps, Reno
window arithmetic, MSS 1000. ISS and IRS lie just below 2**32: sequence numbers wrap mid-test."""

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
    d = Dialogue(iss=ISS, config=cfg)
    d.irs = IRS
    d.conn.connect(d.now)
    d.expect("S", seq=ISS)
    d.peer("S.", seq=IRS, ack=A, options=(Mss(MSS),))
    d.expect(".", seq=A, ack=R)
    assert d.state is S.ESTABLISHED
    d.events()
    return d


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
