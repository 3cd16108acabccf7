"""CUBIC requirements (draft-ietf-tcpm-rfc8312bis-15, the last draft before RFC 9438, same
section numbers) that no other test asserted; docs/rfc-requirements-cubic.md names each one
beside its requirement. Controller tests drive ``Cubic`` directly with ``now`` values; the
connection tests are packet dialogues (ISNs near 2**32)."""

import math

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.congestion import INFINITE_SSTHRESH, Cubic
from synack.tcp.congestion.cubic import ALPHA_CUBIC, BETA_CUBIC, C
from synack.testing import Dialogue
from synack.wire.tcp import Mss, Nop, Timestamps, WindowScale

MSS = 1000
RTT = 0.1


def w_cubic(t, k, w_max):
    return C * (t - k) ** 3 + w_max                       # §4.2 Figure 1


def after_loss(segments, flight=None, **kw):
    """A CUBIC controller that just left fast recovery from a window of ``segments``."""
    cc = Cubic(MSS, **kw)
    cc.cwnd = segments * MSS
    cc.on_congestion_event(0.0, (segments if flight is None else flight) * MSS)
    cc.on_recovery_exit(0.0)
    return cc


def segs(cc):
    return cc.cwnd / MSS


# ---------------------------------------------------------------- §4.1, §5.1: constants

def test_constants_c_beta_and_alpha():
    assert C == 0.4                                       # §5.1: "C SHOULD be set to 0.4"
    assert BETA_CUBIC == 0.7                              # §4.6: "β_cubic SHOULD be set to 0.7"
    assert ALPHA_CUBIC == pytest.approx(3 * (1 - 0.7) / (1 + 0.7))   # §4.3


# ---------------------------------------------------------------- §4.2: W_cubic, K, target

def test_epoch_starts_at_the_first_ack_of_congestion_avoidance_with_k_of_figure_2():
    cc = after_loss(100, fast_convergence=False)          # W_max 100, cwnd 70
    assert cc.t_epoch is None                             # not in congestion avoidance yet
    cc.on_ack(3.0, MSS, 70 * MSS, RTT)
    assert cc.t_epoch == 3.0 and cc.cwnd_epoch == 70
    assert cc.k == pytest.approx(math.cbrt((100 - 70) / 0.4))     # Figure 2


@pytest.mark.parametrize("w_max, at", [(1000, 1.0), (1000, 12.0)])   # concave, then convex
def test_each_new_ack_adds_target_minus_cwnd_over_cwnd(w_max, at):
    """§4.4 and §4.5 (MUST): cwnd += (target - cwnd) / cwnd for each new ACK (of one MSS),
    target = W_cubic(t + RTT) bounded to [cwnd, 1.5 cwnd] (§4.2)."""
    cc = after_loss(w_max, fast_convergence=False)
    cc.on_ack(0.0, MSS, cc.cwnd, RTT)                     # the epoch starts at 0
    now = 0.0
    while now < at:                                       # ACK-clocked up to ``at``
        now += RTT / max(cc.cwnd // MSS, 1)
        cc.on_ack(now, MSS, cc.cwnd, RTT)
    assert (segs(cc) < w_max) == (at < cc.k)              # the region the case is about
    cwnd, t = (cc.cwnd + cc._frac) / MSS, now + 0.001 - cc.t_epoch
    assert w_cubic(t, cc.k, cc.w_max) > cc.w_est          # not the Reno-friendly region
    target = min(max(w_cubic(t + RTT, cc.k, cc.w_max), cwnd), 1.5 * cwnd)
    cc.on_ack(now + 0.001, MSS, cc.cwnd, RTT)
    assert (cc.cwnd + cc._frac) / MSS == pytest.approx(cwnd + (target - cwnd) / cwnd, rel=1e-9)


def test_target_looks_one_rtt_ahead():
    """§4.2: target = W_cubic(t + RTT); the longer the RTT, the bigger the step."""
    steps = {}
    for rtt in (0.05, 0.4):
        cc = after_loss(100, fast_convergence=False)
        cc.on_ack(0.0, MSS, cc.cwnd, rtt)
        before = (cc.cwnd + cc._frac) / MSS
        cc.on_ack(1.0, MSS, cc.cwnd, rtt)
        steps[rtt] = (cc.cwnd + cc._frac) / MSS - before
        target = w_cubic(1.0 + rtt, cc.k, cc.w_max)
        assert steps[rtt] == pytest.approx((target - before) / before, rel=1e-9)
    assert steps[0.4] > steps[0.05]


def test_target_below_cwnd_is_cwnd_growth_is_never_negative():
    """§4.2: "target = cwnd if W_cubic(t + RTT) < cwnd"."""
    cc = after_loss(100, fast_convergence=False)
    cc.on_ack(0.0, MSS, cc.cwnd, RTT)
    cc.cwnd = 90 * MSS                                    # far above W_cubic(RTT) ~ 70.4
    cc.on_ack(0.001, MSS, cc.cwnd, RTT)
    assert w_cubic(0.001 + RTT, cc.k, cc.w_max) < 90
    assert cc.cwnd == 90 * MSS


def test_cwnd_grows_only_on_a_new_ack():
    """§4.2: CUBIC increases cwnd "only at the reception of a new ACK"."""
    cc = after_loss(100)
    cc.on_ack(0.0, MSS, cc.cwnd, RTT)
    state = (cc.cwnd, cc.w_est, cc.t_epoch)
    cc.on_ack(5.0, 0, cc.cwnd, RTT)                       # nothing newly acknowledged
    assert (cc.cwnd, cc.w_est, cc.t_epoch) == state


def test_connection_gives_cubic_its_smoothed_rtt():
    """§4.1.2: RTT is the smoothed round-trip time of RFC 6298: every ACK passes SRTT."""
    cfg = TcpConfig(nagle=False, cc="cubic", sack=False, timestamps=False, ack_delay=None)
    d = Dialogue.established(iss=2**32 - 3, irs=2**32 - 5, config=cfg)
    a, r, seg = 2**32 - 2, 2**32 - 4, 536
    seen = []
    on_ack = d.conn.cc.on_ack
    d.conn.cc.on_ack = lambda now, acked, flight, rtt: (seen.append((rtt, d.conn.rtt.srtt)),
                                                        on_ack(now, acked, flight, rtt))
    d.conn.send(b"s" * (4 * seg))
    for i in range(4):
        d.expect("." if i < 3 else "P.", seq=a + i * seg, length=seg)
    for i in range(4):
        d.advance(0.05 + 0.01 * i)
        d.peer(".", seq=r, ack=a + (i + 1) * seg)
    assert len(seen) == 4 and all(rtt is not None and rtt == srtt for rtt, srtt in seen)


# ---------------------------------------------------------------- §4.3: the Reno-friendly region

def test_w_est_starts_at_cwnd_epoch_and_follows_figure_4_with_delayed_acks():
    """W_est = cwnd_epoch at the start of the stage; W_est += α_cubic * segments_acked / cwnd,
    segments_acked counted in bytes / MSS (an ACK of two segments counts two)."""
    cc = after_loss(10)                                    # cwnd 7, a small BDP
    cc.on_ack(0.0, 2 * MSS, 7 * MSS, 0.01)
    assert cc.cwnd_epoch == 7
    assert cc.w_est == pytest.approx(7 + ALPHA_CUBIC * 2 / 7)
    assert cc.cwnd == int(cc.w_est * MSS)                  # Reno-friendly: cwnd = W_est


def test_alpha_becomes_one_once_w_est_reaches_cwnd_prior():
    """§4.3: "Once W_est has grown to reach the cwnd at the time of most recently setting
    ssthresh, that is, W_est >= cwnd_prior, the sender SHOULD set α_cubic to 1"."""
    cc = after_loss(10)                                    # cwnd_prior 10, W_est from 7
    assert cc.cwnd_prior == 10
    now = 0.0
    while cc.w_est < 10:
        assert cc.alpha == ALPHA_CUBIC
        now += 0.001
        cc.on_ack(now, MSS, cc.cwnd, 0.01)
    assert cc.alpha == 1.0
    w_est, cwnd = cc.w_est, (cc.cwnd + cc._frac) / MSS
    now += 0.001
    cc.on_ack(now, MSS, cc.cwnd, 0.01)
    assert cc.w_est == pytest.approx(w_est + 1.0 / cwnd)  # Reno's one segment per window


# ---------------------------------------------------------------- §4.6: multiplicative decrease

def test_ssthresh_follows_flight_size_not_cwnd():
    """§4.6 Figure 5: ssthresh = flight_size * β_cubic; cwnd_prior and W_max are cwnd."""
    cc = Cubic(MSS)
    cc.cwnd = 100 * MSS
    cc.on_congestion_event(0.0, 60 * MSS)                  # the application sent only 60
    assert cc.ssthresh == cc.cwnd == 42 * MSS
    assert cc.cwnd_prior == 100 and cc.w_max == 100


# ECN: the connection's side of RFC 3168 §6.1.2, with CUBIC

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
ECT0 = 2


def ecn_cubic() -> Dialogue:
    cfg = TcpConfig(ack_delay=None, cc="cubic", mss=MSS, timestamps=False, sack=False,
                    window_scaling=False, nagle=False)
    d = Dialogue(iss=ISS, config=cfg)
    d.irs = IRS
    d.conn.listen(d.now)
    d.peer("SEW", seq=IRS, window=65535, options=(Mss(MSS),))
    d.expect("SE.", seq=ISS, ack=R)
    d.peer(".", seq=R, ack=A)
    return d


def test_ece_reduces_cwnd_down_to_one_mss():
    """§4.6: "CUBIC MUST continue to reduce cwnd in response to congestion events due to
    ECN-Echo ACKs until it reaches a value of 1 MSS"; Figure 5 on ECE: cwnd =
    max(flight_size * β_cubic, 1 MSS) while ssthresh keeps its floor of 2 MSS."""
    d = ecn_cubic()
    cc = d.conn.cc
    d.conn.send(b"a" * (2 * MSS))
    d.expect(".", seq=A, length=MSS, ecn=ECT0)
    d.expect("P.", seq=A + MSS, length=MSS, ecn=ECT0)
    d.advance(0.05)
    d.peer("E.", seq=R, ack=A + MSS)                       # 2 segments in flight
    assert cc.ssthresh == 2 * MSS and cc.cwnd == 1400      # 0.7 * 2 MSS, not the 2 MSS floor
    d.peer(".", seq=R, ack=A + 2 * MSS)
    assert cc.cwnd == 2 * MSS                              # slow start back to ssthresh
    d.conn.send(b"b" * MSS)
    d.expect("PW.", seq=A + 2 * MSS, length=MSS, ecn=ECT0)
    d.advance(0.05)
    d.peer("E.", seq=R, ack=A + 3 * MSS)                   # one segment in flight: 0.7 MSS
    assert cc.cwnd == MSS and cc.ssthresh == 2 * MSS


def test_ece_at_one_mss_slows_below_one_segment_per_rtt():
    """§4.6: "a sender with a cwnd of 1 MSS MUST reduce its sending rate even further", by
    the retransmission timer of RFC 3168 ("able to send a new packet only when the retransmit
    timer expires")."""
    d = ecn_cubic()
    d.conn.send(b"a" * (2 * MSS))
    d.expect(".", seq=A, length=MSS)
    d.expect("P.", seq=A + MSS, length=MSS)
    d.advance(0.05)
    d.peer("E.", seq=R, ack=A + MSS)
    d.peer(".", seq=R, ack=A + 2 * MSS)
    d.conn.send(b"b" * MSS)
    d.expect("PW.", seq=A + 2 * MSS, length=MSS)
    d.advance(0.05)
    d.peer("E.", seq=R, ack=A + 3 * MSS)
    assert d.conn.cc.cwnd == MSS
    d.conn.send(b"c" * MSS)
    d.expect("PW.", seq=A + 3 * MSS, length=MSS)
    d.advance(0.05)
    t = d.now
    d.peer("E.", seq=R, ack=A + 4 * MSS)                   # ECE again, at cwnd = 1 MSS
    assert d.conn.cc.cwnd == MSS                           # (the ACK's own growth is not kept)
    d.conn.send(b"d" * MSS)
    d.expect_nothing(until=d.now + 0.5)                    # not before the RTO (1 s here)
    d.expect("PW.", seq=A + 4 * MSS, length=MSS, at=t + d.conn.rtt.rto)


# ---------------------------------------------------------------- §4.8: timeout

def test_after_a_timeout_w_est_starts_at_the_window_where_congestion_avoidance_begins():
    """§4.8 (and cwnd_prior is the window the timeout found): "for the Reno-friendly region, W_est SHOULD be set to the congestion window size
    at the beginning of the current congestion avoidance"."""
    cc = after_loss(100)
    cc.on_ack(0.0, MSS, cc.cwnd, RTT)
    cwnd = (cc.cwnd + cc._frac) / MSS
    cc.on_rto(1.0, 70 * MSS)                               # ssthresh 49
    assert cc.cwnd_prior == cwnd                           # §4.1.2: cwnd when ssthresh was set
    now = 1.0
    while cc.in_slow_start:
        now += 0.01
        cc.on_ack(now, MSS, cc.cwnd, RTT)
    now += 0.01
    cc.on_ack(now, MSS, cc.cwnd, RTT)
    assert cc.cwnd_epoch == 49 and cc.k == 0 and cc.w_max == 49
    assert cc.w_est == pytest.approx(49 + ALPHA_CUBIC / 49)    # W_est = 49, then Figure 4


# ---------------------------------------------------------------- §4.9.2: undo

M = 0xFFFFFFFF
TSEG = 988                                                 # MSS 1000 less the timestamps option


def ts(val, ecr):
    return (Nop(), Nop(), Timestamps(val & M, ecr & M))


def test_spurious_fast_retransmit_restores_every_cubic_variable():
    """§4.9.2: undo_cwnd, undo_cwnd_prior, undo_ssthresh, undo_W_max, undo_K, undo_t_epoch and
    undo_W_est are saved before the reduction and restored once the loss proves spurious
    (here: Eifel detection without SACK, the first new ACK echoing the original's TSval)."""
    cfg = TcpConfig(sack=False, nagle=False, cc="cubic", ack_delay=None, hystart=False)
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg,
                             peer_options=(Mss(1000), Timestamps(1, 0), Nop(), WindowScale(7)))
    d.peer(".", seq=R, ack=A, options=ts(1, 0))
    cc = d.conn.cc
    cc.cwnd = 20 * TSEG                                    # a loss before: W_max 20, cwnd 14
    cc.on_congestion_event(d.now, 20 * TSEG)
    cc.on_recovery_exit(d.now)
    d.advance(0.05)
    d.conn.send(b"z" * (TSEG * 14))
    for i in range(14):
        d.expect("." if i < 13 else "P.", seq=A + TSEG * i, length=TSEG)
    d.advance(0.1)
    d.peer(".", seq=R, ack=A + TSEG, options=ts(2, 50))     # congestion avoidance: an epoch
    assert cc.t_epoch == pytest.approx(0.15) and cc.k > 0
    d.peer(".", seq=R, ack=A + TSEG, options=ts(3, 50))
    d.peer(".", seq=R, ack=A + TSEG, options=ts(3, 50))
    saved = (cc.cwnd, cc.cwnd_prior, cc.ssthresh, cc.w_max, cc.k, cc.t_epoch, cc.w_est)
    d.peer(".", seq=R, ack=A + TSEG, options=ts(3, 50))     # third duplicate: fast retransmit
    d.expect(".", seq=A + TSEG, length=TSEG)
    assert d.conn.cc.ssthresh == int(0.7 * 13 * TSEG)      # §4.6: at once, from FlightSize
    assert d.conn.cc.w_max == pytest.approx(saved[0] / TSEG * 0.85, rel=1e-3)   # §4.7: cwnd < W_max
    d.peer(".", seq=R, ack=A + 5 * TSEG, options=ts(4, 50))  # echoes the original: spurious
    cc = d.conn.cc
    assert not d.conn._in_recovery
    assert (cc.cwnd_prior, cc.ssthresh, cc.w_max, cc.k) == saved[1:5]
    assert cc.t_epoch == saved[5]
    assert cc.cwnd >= saved[0] and cc.w_est >= saved[6]    # and this ACK grows them on


# ---------------------------------------------------------------- §4.10: slow start, HyStart++

def test_connection_uses_hystart_by_default():
    """§4.10: "CUBIC SHOULD use the HyStart++ slow start algorithm"."""
    d = Dialogue.established(iss=ISS, irs=IRS)
    assert isinstance(d.conn.cc, Cubic) and d.conn.cc.hystart is not None


def test_leaving_slow_start_without_loss_sets_cwnd_prior_and_k_zero():
    """§4.10: after HyStart++ ends the first slow start without a loss, "CUBIC sets cwnd_prior =
    cwnd and switches to congestion avoidance", with K = 0 and W_max = cwnd at its start."""
    cc = Cubic(MSS, hystart=True)
    una, high, now = 0, cc.cwnd, 0.0
    rnd = 0
    while cc.hystart is not None:                          # RTT 50 ms, then 60 ms from round 3
        end = high
        while una < end and cc.hystart is not None:
            now += 0.001
            una += MSS
            cc.on_rtt_sample(now, 0.050 if rnd < 2 else 0.060, una, high)
            cc.on_ack(now, MSS, high - una + MSS, 0.05)
            high = max(high, una + cc.cwnd)
        rnd += 1
    # the ACK that ended slow start (ssthresh = cwnd) began congestion avoidance at once
    assert rnd < 12 and cc.ssthresh < INFINITE_SSTHRESH and not cc.in_slow_start
    cwnd = cc.ssthresh / MSS
    assert cc.t_epoch == now and cc.cwnd_epoch == cwnd
    assert cc.cwnd_prior == cwnd and cc.w_max == cwnd and cc.k == 0


# ---------------------------------------------------------------- §4.2 / §5.8: application-limited

def test_application_limited_acks_in_congestion_avoidance_grow_nothing():
    """§5.8: "CUBIC does not increase its congestion window if a flow is application-limited"."""
    cc = after_loss(100)
    cc.on_ack(0.0, MSS, cc.cwnd, RTT)
    cwnd, w_est = cc.cwnd, cc.w_est
    cc.cwnd_limited = False
    for i in range(1, 50):
        cc.on_ack(i * 0.1, MSS, 10 * MSS, RTT)
    assert (cc.cwnd, cc.w_est) == (cwnd, w_est)


def test_application_limited_time_is_not_growth_time():
    """§4.2: "The elapsed time t in Figure 1 MUST NOT include periods during which cwnd has not
    been updated due to application-limited behavior" (§5.8): an application-limited stretch
    of ACKs (the flight never ran empty, so no restart after idle) leaves the trajectory that
    follows it as it would have been without the stretch."""
    def run(limited_for):
        cc = after_loss(100, fast_convergence=False)
        now = 0.0
        for _ in range(10):                                # 1 s of cwnd-limited growth
            now += RTT / 10
            cc.on_ack(now, MSS, cc.cwnd, RTT)
        cc.cwnd_limited = False
        end = now + limited_for
        while now + 0.05 <= end:                           # one ACK per 50 ms, a small flight
            now += 0.05
            cc.on_ack(now, MSS, 2 * MSS, RTT)
        cc.cwnd_limited = True
        start, out = now, []
        while now < start + 3.0:                           # then bulk again, 3 s
            now += RTT / max(cc.cwnd // MSS, 1)
            cc.on_ack(now, MSS, cc.cwnd, RTT)
            out.append(cc.cwnd)
        return out[-1]

    assert run(10.0) == pytest.approx(run(0.0), rel=0.01)


def test_idle_and_application_limited_time_are_not_excluded_twice():
    """The restart after idle (§5.8, ``on_idle``) and the application-limited ACKs before it
    take out the same stretch once: t stays the time cwnd was being grown."""
    cc = after_loss(100)
    cc.on_ack(0.0, MSS, cc.cwnd, RTT)
    cc.on_ack(0.5, MSS, cc.cwnd, RTT)                      # 0.5 s of growth
    cc.cwnd_limited = False
    cc.on_ack(0.6, MSS, MSS, RTT)                          # the last of a small flight
    cc.on_idle(0.9, 0.35, 1.0)                             # last data sent at 0.55
    cc.cwnd_limited = True
    cc.on_ack(1.0, MSS, cc.cwnd, RTT)
    assert 1.0 - cc.t_epoch == pytest.approx(0.6)          # 0.5 s, and 0.9 .. 1.0
