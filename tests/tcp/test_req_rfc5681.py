"""Packet dialogues for RFC 5681 requirements, with RFC 3042 (Limited Transmit) and RFC 6928
(IW10) (docs/rfc-requirements-timers-cc.md): the initial window (§3.1), fast retransmit and fast
recovery step by step (§3.2), restart after idle (§4.1), ACK generation (§4.2), the principles of
loss recovery (§4.3). Reno (``cc="newreno"``) without SACK or timestamps unless a test says
otherwise; MSS 1000. ISS and IRS lie just below 2**32: sequence numbers wrap mid-test."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.wire.tcp import Mss, Nop, Sack, SackPermitted

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
S = State
MSS = 1000
NO_OPTS = (Mss(MSS),)
RENO = TcpConfig(nagle=False, cc="newreno", newreno_exit="ssthresh")   # §3.2 step 6: cwnd = ssthresh


def established(config=RENO, *, peer_options=NO_OPTS, window=65535, rtt=0.0):
    return Dialogue.established(iss=ISS, irs=IRS, config=config,
                                peer_options=peer_options, window=window, rtt=rtt)


def flight(d):
    """The data segments the connection sends now, as indexes (offset from A / MSS)."""
    d.advance(0)
    out = []
    while d.sent:
        seg = d.sent.popleft()
        assert seg.payload and not seg.flags & 0x07, seg.summary()    # data, no SYN/FIN/RST
        out.append(((seg.seq - A) & M) // MSS)
    return out


def dupacks(d, n, ack=A, window=65535):
    sent = []
    for _ in range(n):
        d.peer(".", seq=R, ack=ack, window=window)
        sent.append(flight(d))
    return sent


# ---------------------------------------------------------------- §3.1 and RFC 6928 §2: IW

def test_initial_window_is_ten_segments():
    """RFC 6928 §2: IW = min(10*MSS, max(2*MSS, 14600)), 10 segments of 1000 octets here."""
    d = established()
    d.conn.send(b"x" * 20000)
    assert flight(d) == list(range(10))
    assert d.conn.cc.cwnd == 10 * MSS


@pytest.mark.parametrize("lost, segments", [(1, 10), (2, 1)])
def test_lost_syns_and_the_initial_window(lost, segments):
    """RFC 5681 §3.1: after a lost SYN the initial window "MUST be one segment"; RFC 6928 §2
    RECOMMENDS not doing so "unless there have been more than one SYN or SYN/ACK
    retransmissions": one lost SYN keeps IW10, two make it one segment."""
    d = Dialogue(iss=ISS, config=RENO)
    d.irs = IRS
    d.conn.connect(d.now)
    d.expect("S", seq=ISS, at=0.0)
    for t in (1.0, 3.0)[:lost]:
        d.expect("S", seq=ISS, at=t)
    d.peer("S.", seq=IRS, ack=A, options=NO_OPTS)
    d.expect(".", seq=A, ack=R)
    d.conn.send(b"x" * 20000)
    assert flight(d) == list(range(segments))


@pytest.mark.parametrize("sack", [False, True], ids=["no-sack", "sack"])
def test_the_ack_of_our_syn_ack_does_not_grow_cwnd(sack):
    """§3.1: "the SYN/ACK and the acknowledgment of the SYN/ACK MUST NOT increase the size of
    the congestion window" (RFC 6928 §2 likewise): after a passive open cwnd is IW exactly, and
    one segment exactly after two SYN,ACK retransmissions."""
    opts = (Mss(MSS), Nop(), Nop(), SackPermitted()) if sack else NO_OPTS
    d = Dialogue.accepted(iss=ISS, irs=IRS, config=RENO, peer_options=opts)
    assert d.conn.cc.cwnd == 10 * MSS
    d.conn.send(b"x" * 20000)
    assert flight(d) == list(range(10))
    d = Dialogue.syn_received(iss=ISS, irs=IRS, config=RENO, peer_options=opts)
    d.expect("S.", seq=ISS, ack=R, at=1.0)
    d.expect("S.", seq=ISS, ack=R, at=3.0)
    d.peer(".", seq=R, ack=A)
    assert d.state is S.ESTABLISHED and d.conn.cc.cwnd == MSS


# ---------------------------------------------------------------- §3.2 and RFC 3042

def test_fast_retransmit_and_fast_recovery_step_by_step():
    """§3.2 with RFC 3042: ten segments in flight, the first lost.
    Step 1: the first two duplicate ACKs each send one new segment (Limited Transmit), cwnd
    unchanged. Step 2: the third sets ssthresh = FlightSize / 2 without the Limited Transmit
    segments (5 segments, not 6). Step 3: the segment at SND.UNA goes again, cwnd = ssthresh
    + 3 SMSS. Step 4: each further duplicate adds one SMSS. Step 5: new data goes when cwnd
    allows. Step 6: the ACK of new data sets cwnd = ssthresh."""
    d = established()
    d.conn.send(b"x" * 20000)
    assert flight(d) == list(range(10))
    assert dupacks(d, 2) == [[10], [11]]                  # RFC 3042
    assert d.conn.cc.cwnd == 10 * MSS                     # "MUST NOT change cwnd"
    assert dupacks(d, 1) == [[0]]                         # fast retransmit
    assert d.conn.cc.ssthresh == 5 * MSS
    assert d.conn.cwnd == 8 * MSS
    # segments 1..11 arrived: 11 duplicates in all; cwnd 9, 10, 11, 12 SMSS: flight is 12
    assert dupacks(d, 4) == [[], [], [], []]
    assert d.conn.cwnd == 12 * MSS
    assert dupacks(d, 4) == [[12], [13], [14], [15]]
    d.peer(".", seq=R, ack=A + 16 * MSS)                  # all of it: recovery ends
    assert d.conn.cwnd == d.conn.cc.cwnd == 5 * MSS
    assert not d.conn._in_recovery


def test_recovery_sends_at_most_half_the_flight_per_round_trip():
    """§4.3: "until all lost segments in the window of data in question are repaired, the
    number of segments transmitted in each RTT MUST be no more than half the number of
    outstanding segments when the loss was detected". Twelve were outstanding at the third
    duplicate ACK (two of them Limited Transmit); in the round trip of the repair six leave:
    the retransmission and five new ones."""
    d = established()
    d.conn.send(b"x" * 30000)
    assert flight(d) == list(range(10))
    sent = sum(dupacks(d, 11), [])
    assert sent[:3] == [10, 11, 0]
    assert len(sent[2:]) <= 12 // 2


def test_limited_transmit_needs_the_peers_window():
    """RFC 3042 §2: new data goes on a duplicate ACK only if "the receiver's advertised window
    allows the transmission of the segment"."""
    d = established(window=10 * MSS)
    d.conn.send(b"x" * 20000)
    assert flight(d) == list(range(10))
    assert dupacks(d, 2, window=10 * MSS) == [[], []]
    assert dupacks(d, 1, window=10 * MSS) == [[0]]


def test_no_new_data_on_a_duplicate_ack_without_new_sack_information():
    """RFC 3042 §2 and RFC 5681 §3.2 step 1: with SACK the sender "MUST NOT send new data unless
    the incoming duplicate acknowledgment contains new SACK information"."""
    d = established(TcpConfig(nagle=False, cc="newreno", rack=False),
                    peer_options=(Mss(MSS), Nop(), Nop(), SackPermitted()))
    d.conn.send(b"x" * 20000)
    assert flight(d) == list(range(10))
    blk = (Nop(), Nop(), Sack((((A + MSS) & M, (A + 2 * MSS) & M),)))
    d.peer(".", seq=R, ack=A, options=blk)
    assert flight(d) == [10]                              # new SACK information: Limited Transmit
    d.peer(".", seq=R, ack=A, options=blk)
    d.peer(".", seq=R, ack=A, window=60000, options=blk)
    assert flight(d) == []                                # the same block again: nothing
    assert d.conn.cc.cwnd == 10 * MSS


# ---------------------------------------------------------------- §4.1 restarting idle connections

@pytest.mark.parametrize("idle, segments", [(0.5, 20), (5.0, 10)])
def test_restart_window_after_an_idle_period(idle, segments):
    """§4.1: "a TCP SHOULD set cwnd to no more than RW [= min(IW, cwnd)] before beginning
    transmission if the TCP has not sent data in an interval exceeding the retransmission
    timeout" (1 s here): after 0.5 s the 20-segment window is used whole, after 5 s only IW."""
    d = established()
    d.conn.send(b"x" * 10000)
    assert flight(d) == list(range(10))
    d.now = 0.1
    for i in range(1, 11):
        d.peer(".", seq=R, ack=A + i * MSS)               # slow start: one SMSS per ACK
    assert d.conn.cc.cwnd == 20 * MSS and d.conn.rtt.rto == 1.0
    d.now = 0.1 + idle
    d.conn.send(b"y" * 30000)
    assert flight(d) == list(range(10, 10 + segments))


# ---------------------------------------------------------------- §4.2 generating acknowledgments

def test_at_most_one_ack_for_each_incoming_segment():
    """§4.2: "A TCP receiver MUST NOT generate more than one ACK for every incoming segment,
    other than to update the offered window": out of order, hole-filling (both ACKed at once,
    §3.2 and §4.2 SHOULDs), duplicate and in-order data each draw exactly one."""
    d = established(TcpConfig(ack_delay=None))
    d.peer("P.", seq=R + 100, ack=A, data=b"b" * 100)
    d.expect(".", seq=A, ack=R)
    d.expect_nothing()
    d.peer("P.", seq=R, ack=A, data=b"a" * 100)
    d.expect(".", seq=A, ack=R + 200)
    d.expect_nothing()
    d.peer("P.", seq=R, ack=A, data=b"a" * 100)
    d.expect(".", seq=A, ack=R + 200)
    d.expect_nothing()
    d.peer("P.", seq=R + 200, ack=A, data=b"c" * 100)
    d.expect(".", seq=A, ack=R + 300)
    d.expect_nothing(until=10.0)


# ---------------------------------------------------------------- RFC 6928 §2 restart window after a loss

def test_restart_window_falls_back_to_rfc3390_after_a_loss_in_the_initial_window():
    d = established()
    d.conn.send(b"x" * 10000)
    assert flight(d) == list(range(10))
    d.now = 0.1
    assert dupacks(d, 3) == [[], [], [0]]
    d.peer(".", seq=R, ack=A + 10 * MSS)
    assert d.conn.cc.cwnd == 5 * MSS
    d.now = 5.0
    d.conn.send(b"y" * 10000)
    assert flight(d) == list(range(10, 14))
