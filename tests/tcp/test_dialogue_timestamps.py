"""Packet dialogues: the Timestamps option (RFC 7323 §3-5): which TSval is echoed (§4.3), RTT
samples from TSecr (§4.1), PAWS (§5.3) with its RST and 24-day exceptions (§5.2, §5.5), the
missing-option rule (§3.2), and a peer without timestamps."""

from synack.tcp.config import TcpConfig
from synack.tcp.events import DataReceived, Dropped, Reset, RttSample
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.wire.tcp import Mss, Nop, SackPermitted, Timestamps, WindowScale

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
TS_OK = (Mss(1000), SackPermitted(), Timestamps(2**32 - 10, 0), Nop(), WindowScale(7))


def ts(val, ecr=0):
    return (Nop(), Nop(), Timestamps(val & M, ecr & M))


def established(config=None, log=None):
    d = Dialogue(iss=ISS, config=config if config is not None else TcpConfig(), log=log)
    d.irs = IRS
    d.conn.connect(d.now)
    d.expect("S", seq=ISS)
    d.peer("S.", seq=IRS, ack=A, options=TS_OK)
    d.expect(".", seq=A, ack=R, options=ts(0, 2**32 - 10))     # TSecr = the SYN-ACK's TSval
    d.events()
    return d


def echoed(seg):
    return seg.timestamps.ecr


def test_delayed_acks_echo_the_earliest_unacknowledged_segment():
    """§4.3 case (A): two full segments, one ACK: TSecr is the first one's TSval."""
    d = established()
    d.peer(".", seq=R, ack=A, data=b"a" * 988, options=ts(1))
    d.expect_nothing()
    d.peer(".", seq=R + 988, ack=A, data=b"b" * 988, options=ts(2))
    assert echoed(d.expect(".", ack=R + 1976)) == 1


def test_out_of_order_echoes_last_in_order_then_the_hole_filler():
    """§4.3 case (B) then (C), the RFC's second example: A.1, C.3 (hole), B.2 fills, E.5, D.4."""
    d = established(TcpConfig(ack_delay=None))
    d.peer(".", seq=R, ack=A, data=b"A" * 100, options=ts(1))
    assert echoed(d.expect(".", ack=R + 100)) == 1
    d.peer(".", seq=R + 200, ack=A, data=b"C" * 100, options=ts(3))
    assert echoed(d.expect(".", ack=R + 100)) == 1             # (B): not C's TSval
    d.peer(".", seq=R + 100, ack=A, data=b"B" * 100, options=ts(2))
    assert echoed(d.expect(".", ack=R + 300)) == 2             # (C): the segment that filled it
    d.peer(".", seq=R + 400, ack=A, data=b"E" * 100, options=ts(5))
    assert echoed(d.expect(".", ack=R + 300)) == 2
    d.peer(".", seq=R + 300, ack=A, data=b"D" * 100, options=ts(4))
    assert echoed(d.expect(".", ack=R + 500)) == 4


def test_ts_recent_never_goes_backwards():
    """§4.3 rule (2): SEG.TSval >= TS.Recent, even for a segment at Last.ACK.sent."""
    d = established(TcpConfig(ack_delay=None))
    d.peer(".", seq=R, ack=A, data=b"a" * 10, options=ts(100))
    assert echoed(d.expect(".", ack=R + 10)) == 100
    d.peer(".", seq=R + 10, ack=A, data=b"b" * 10, options=ts(100))   # equal TSval: accepted
    assert echoed(d.expect(".", ack=R + 20)) == 100


def test_rtt_sample_from_tsecr():
    log = []
    d = established(log=log.append)
    d.now = 5.0
    d.conn.send(b"ping")
    seg = d.expect("P.", seq=A, data=b"ping")
    d.now = 5.25
    d.peer(".", seq=R, ack=A + 4, options=ts(7, seg.timestamps.val))
    samples = [r.rtt for r in log if isinstance(r, RttSample)]
    assert samples[-1] == 0.25


def test_paws_drops_an_old_duplicate_and_acks():
    log = []
    d = established(TcpConfig(ack_delay=None), log=log.append)
    d.peer(".", seq=R, ack=A, data=b"new", options=ts(1000))
    d.expect(".", ack=R + 3)
    d.events()
    # an old duplicate from an earlier wrap of the sequence space: in the window, old TSval
    d.peer(".", seq=R + 3, ack=A, data=b"old", options=ts(999))
    seg = d.expect(".", ack=R + 3)                              # R1: ACK and drop
    assert echoed(seg) == 1000
    assert not [e for e in d.events() if isinstance(e, DataReceived)]
    assert any(isinstance(r, Dropped) and "PAWS" in r.reason for r in log)
    assert d.conn.receive(10) == b"new"
    # TSval compares modulo 2**32 (§5.2): 1000 - 2**31 + 1 is "older" than 1000 too
    d.peer(".", seq=R + 3, ack=A, data=b"old", options=ts(1000 + 2**31 + 1))
    d.expect(".", ack=R + 3)
    assert d.conn.receive(10) is None


def test_paws_does_not_apply_to_rst():
    """§5.2: a RST "MUST NOT be subjected to the PAWS check"."""
    d = established()
    d.peer(".", seq=R, ack=A, data=b"x", options=ts(1000))
    d.peer("R", seq=R + 1, options=ts(5))
    assert d.state is State.CLOSED
    assert any(isinstance(e, Reset) for e in d.events())


def test_paws_accepts_old_tsval_after_24_days_idle():
    """§5.5: after more than 24 days idle TS.Recent is invalid: the segment is taken and its
    TSval becomes TS.Recent (R3)."""
    d = established(TcpConfig(ack_delay=None))
    d.peer(".", seq=R, ack=A, data=b"a", options=ts(1000))
    d.expect(".", ack=R + 1)
    d.advance(25 * 86400)
    d.peer(".", seq=R + 1, ack=A, data=b"b", options=ts(7))
    assert echoed(d.expect(".", ack=R + 2)) == 7
    assert d.conn.receive(10) == b"ab"


def test_segment_without_timestamp_is_silently_dropped():
    """§3.2: "If a non-<RST> segment is received without a TSopt, a TCP SHOULD silently drop
    the segment"; the connection stays (MUST NOT abort)."""
    d = established(TcpConfig(ack_delay=None))
    d.peer(".", seq=R, ack=A, data=b"no ts")
    d.expect_nothing()
    assert d.state is State.ESTABLISHED and d.conn.receive(10) is None
    d.peer(".", seq=R, ack=A, data=b"ts", options=ts(1))
    d.expect(".", ack=R + 2)


def test_segment_without_timestamp_accepted_when_tolerated():
    """TcpConfig.tolerate_missing_ts (Linux; FreeBSD tolerate_missing_ts=1): the segment is
    processed, with no PAWS check and TS.Recent left as it was; later segments are checked as usual."""
    d = established(TcpConfig(ack_delay=None, tolerate_missing_ts=True))
    d.peer(".", seq=R, ack=A, data=b"ab", options=ts(5))
    assert echoed(d.expect(".", ack=R + 2)) == 5
    d.peer(".", seq=R + 2, ack=A, data=b"no ts")
    assert echoed(d.expect(".", ack=R + 7)) == 5              # TS.Recent unchanged
    assert d.conn.receive(10) == b"abno ts"
    d.peer(".", seq=R + 7, ack=A, data=b"old", options=ts(4))  # PAWS still applies with a TSopt
    assert echoed(d.expect(".", ack=R + 7)) == 5
    assert d.state is State.ESTABLISHED


def test_peer_without_timestamps():
    d = Dialogue.established(iss=ISS, irs=IRS, peer_options=(Mss(1000),))
    assert not d.conn.info().timestamps_ok
    d.peer("P.", seq=R, ack=A, data=b"hi")
    d.conn.send(b"yo")
    seg = d.expect("P.", seq=A, ack=R + 2, data=b"yo")
    assert seg.timestamps is None
    assert d.conn.info().snd_mss == 1000                       # no 12 octets for the option
