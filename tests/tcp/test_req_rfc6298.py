"""Packet dialogues for RFC 6298 requirements (docs/rfc-requirements-timers-cc.md): the RTO from
RTT samples (§2), Karn's algorithm and one sample per RTT (§3), and the management of the
retransmission timer (§5). Without timestamps unless a test says otherwise, so the RTT comes
from the one timed segment. ISS and IRS lie just below 2**32: sequence numbers wrap mid-test."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.events import RttSample
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.wire.tcp import Mss, Nop, Timestamps

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
S = State
NO_TS = (Mss(1000),)


def established(config=None, *, rtt=0.0, log=None, peer_options=NO_TS):
    """Active open; the SYN,ACK comes ``rtt`` seconds after the SYN."""
    return Dialogue.established(iss=ISS, irs=IRS, config=config if config is not None else TcpConfig(nagle=False),
                                peer_options=peer_options, rtt=rtt, log=log)


def samples(log):
    return [round(r.rtt, 6) for r in log if isinstance(r, RttSample)]


# ---------------------------------------------------------------- §2 the RTO

def test_first_sample_sets_the_rto_and_a_small_one_is_rounded_up_to_one_second():
    """(2.2) SRTT <- R, RTTVAR <- R/2, RTO <- SRTT + max(G, 4*RTTVAR); (2.4) below 1 s it is
    rounded up to 1 s: a 0.1 s path times out after 1 s, not 0.3 s."""
    d = established(rtt=0.1)
    assert (d.conn.rtt.srtt, d.conn.rtt.rttvar) == (pytest.approx(0.1), pytest.approx(0.05))
    assert d.conn.rtt.rto == 1.0
    t = d.now
    d.conn.send(b"x" * 100)
    d.expect("P.", seq=A, length=100, at=t)
    d.expect("P.", seq=A, length=100, at=t + 1.0)


def test_a_lower_minimum_rto_is_a_knob():
    """(2.4) is a SHOULD: ``TcpConfig.min_rto`` (Linux's 0.2 s in the linux profile) lets the
    computed RTO, 0.1 + 4 * 0.05 = 0.3 s, stand."""
    d = established(TcpConfig(nagle=False, min_rto=0.2), rtt=0.1)
    t = d.now
    d.conn.send(b"x" * 100)
    d.expect("P.", seq=A, length=100, at=t)
    d.expect("P.", seq=A, length=100, at=t + 0.3)


# ---------------------------------------------------------------- §3 taking RTT samples

def test_karn_no_sample_from_a_retransmitted_segment():
    """§3: "RTT samples MUST NOT be made using segments that were retransmitted". Without
    timestamps the ACK after a timeout is ambiguous: no sample, and the backed-off RTO (2 s)
    stays for the next segment until a sample is taken."""
    log = []
    d = established(rtt=0.0, log=log.append)
    log.clear()
    d.conn.send(b"a" * 100)
    d.expect("P.", seq=A, length=100, at=0.0)
    d.expect("P.", seq=A, length=100, at=1.0)
    d.now = 1.2
    d.peer(".", seq=R, ack=A + 100)
    assert samples(log) == []
    d.conn.send(b"b" * 100)
    d.expect("P.", seq=A + 100, length=100, at=1.2)
    d.expect("P.", seq=A + 100, length=100, at=3.2)       # RTO still 2 s


def test_timestamps_disambiguate_a_retransmitted_segment():
    """§3: "The only case when TCP can safely take RTT samples from retransmitted segments is
    when the TCP timestamp option is employed": the ACK echoes the retransmission's TSval."""
    log = []
    d = established(TcpConfig(nagle=False, sack=False), log=log.append,
                    peer_options=(Mss(1000), Nop(), Nop(), Timestamps(2**32 - 10, 0)))
    log.clear()
    d.conn.send(b"a" * 100)
    d.expect("P.", seq=A, length=100, at=0.0)
    again = d.expect("P.", seq=A, length=100, at=1.0)
    d.now = 1.2
    d.peer(".", seq=R, ack=A + 100, options=(Nop(), Nop(), Timestamps(1, again.timestamps.val)))
    assert samples(log) == [0.2]
    assert d.conn.rtt.backoff_count == 0                  # the sample collapses the backoff (§5)


def test_one_rtt_sample_per_round_trip_without_timestamps():
    """§3: "A TCP implementation MUST take at least one RTT measurement per RTT": one segment
    of each flight is timed; each round trip (every ACK in it acknowledging one segment) gives
    exactly one sample."""
    log = []
    d = established(TcpConfig(nagle=False, cc="newreno"), log=log.append)
    log.clear()
    d.conn.send(b"x" * 200000)
    acked = 0
    for rnd in range(1, 4):
        flight = []
        while d.sent or d.conn.next_timer() == d.now:
            flight.append(d.expect("."))
        assert flight and flight[0].seq == (A + acked) & M
        d.now = 0.1 * rnd
        for seg in flight:
            acked += len(seg.payload)
            d.peer(".", seq=R, ack=A + acked)
        assert samples(log) == [0.1] * rnd


# ---------------------------------------------------------------- §5 managing the timer

def test_timer_runs_from_the_first_unacknowledged_send():
    """(5.1): sending data starts the timer only "if the timer is not running": a second segment
    half an RTO later does not push the timeout back. (5.4): the earliest unacknowledged data
    goes again (as one segment, within the loss window of RFC 5681 §3.1)."""
    d = established()
    d.conn.send(b"a" * 100)
    d.expect("P.", seq=A, length=100, at=0.0)
    d.now = 0.5
    d.conn.send(b"b" * 100)
    d.expect("P.", seq=A + 100, length=100, at=0.5)
    d.expect("P.", seq=A, data=b"a" * 100 + b"b" * 100, at=1.0)
    d.expect_nothing()


def test_ack_of_new_data_restarts_the_timer_with_the_current_rto():
    """(5.3): an ACK of new data restarts the timer, with the RTO its sample just gave, for what
    is still unacknowledged. The handshake took 0.6 s (RTO 0.6 + 4 * 0.3 = 1.8 s); the ACK of
    the first segment 0.6 s after it gives RTTVAR 0.225 and RTO 1.5 s from that ACK on."""
    d = established(rtt=0.6)
    assert d.conn.rtt.rto == pytest.approx(1.8)
    d.conn.send(b"a" * 100)
    d.expect("P.", seq=A, length=100, at=0.6)
    d.now = 1.1
    d.conn.send(b"b" * 100)
    d.expect("P.", seq=A + 100, length=100, at=1.1)
    d.now = 1.2
    d.peer(".", seq=R, ack=A + 100)
    assert d.conn.rtt.rto == pytest.approx(1.5)
    d.expect_nothing(until=2.69)                          # not at 0.6 + 1.8 = 2.4
    d.expect("P.", seq=A + 100, length=100, at=2.7)


def test_fast_retransmit_restarts_the_timer():
    """§5: "a segment is never retransmitted too early, i.e., less than one RTO after the
    previous transmission of that segment": the timer armed at 0 s would expire at 1 s, 0.1 s
    after the fast retransmission of the same segment; it is restarted instead."""
    d = established(TcpConfig(nagle=False, cc="newreno"))
    d.conn.send(b"x" * 10000)
    for i in range(10):
        d.expect("P." if i == 9 else ".", seq=A + 1000 * i, length=1000)
    d.now = 0.9
    for _ in range(3):
        d.peer(".", seq=R, ack=A)
    d.expect(".", seq=A, length=1000, at=0.9)             # fast retransmit
    d.expect_nothing(until=1.89)
    d.expect(".", seq=A, length=1000, at=1.9)


def test_backoff_is_capped_at_max_rto():
    """(5.5) "The maximum value discussed in (2.5) above may be used to provide an upper bound
    to this doubling operation"; (5.6) the timer restarts with the doubled RTO."""
    d = established(TcpConfig(nagle=False, max_rto=4.0, r2_retries=10))
    d.conn.send(b"a")
    for t in (0.0, 1.0, 3.0, 7.0, 11.0, 15.0):
        d.expect("P.", seq=A, length=1, at=t)


def test_syn_timeout_gives_three_seconds_even_with_a_timestamp_sample():
    d = Dialogue(iss=ISS, config=TcpConfig(nagle=False))
    d.irs = IRS
    d.conn.connect(d.now)
    d.expect("S", seq=ISS, at=0.0)
    syn = d.expect("S", seq=ISS, at=1.0)
    d.now = 1.1
    d.peer("S.", seq=IRS, ack=A, options=(Mss(1000), Nop(), Nop(), Timestamps(5, syn.timestamps.val)))
    d.expect(".", seq=A, ack=R)
    d.conn.send(b"data")
    d.expect("P.", seq=A, data=b"data", at=1.1)
    d.expect("P.", seq=A, data=b"data", at=4.1)
