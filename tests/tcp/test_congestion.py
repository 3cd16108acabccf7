"""Congestion control: RFC 5681 / 6928 (Reno) and RFC 9438 = draft-ietf-tcpm-rfc8312bis (CUBIC)."""

import math

import pytest

from synack.tcp import congestion
from synack.tcp.congestion import INFINITE_SSTHRESH, CongestionControl, Cubic, Reno
from synack.tcp.config import TcpConfig
from synack.testing import Dialogue

MSS = 1000
RTT = 0.1


def ack_round(cc, now, rtt=RTT, per_ack=1):
    """One RTT of ACK clocking: the window's segments are ACKed evenly over the round,
    ``per_ack`` segments per ACK (2 models a delayed-ACK receiver). Returns the end time."""
    segments = max(1, cc.cwnd // MSS)
    acks = [per_ack] * (segments // per_ack) + ([segments % per_ack] if segments % per_ack else [])
    flight = cc.cwnd
    for i, k in enumerate(acks):
        cc.on_ack(now + rtt * (i + 1) / len(acks), k * MSS, flight, rtt)
    return now + rtt


def in_congestion_avoidance(cls, segments, **kw):
    """A controller that just left fast recovery from a window of ``segments`` (flight = cwnd)."""
    cc = cls(MSS, **kw)
    cc.on_ack(0.0, MSS, MSS, RTT)               # past the initial window (no RFC 6928 fallback)
    cc.cwnd = segments * MSS
    cc.on_congestion_event(0.0, segments * MSS)
    cc.on_recovery_exit(0.0)
    return cc


# --- initial window and registry -------------------------------------------------------------

@pytest.mark.parametrize("mss, iw", [(1460, 14600), (1000, 10000), (536, 5360), (2000, 14600),
                                     (4000, 14600), (9000, 18000)])
def test_initial_window_rfc6928(mss, iw):
    assert congestion.initial_window(mss) == iw          # min(10*MSS, max(2*MSS, 14600))
    for cls in (Reno, Cubic):
        cc = cls(mss)
        assert cc.cwnd == iw and cc.ssthresh == INFINITE_SSTHRESH and cc.in_slow_start
        assert cc.pacing_rate is None
    assert Reno(mss, initial_window=mss).cwnd == mss


def test_registry():
    assert congestion.get("reno") is Reno
    assert congestion.get("newreno") is Reno
    assert congestion.get("cubic") is Cubic
    assert {"reno", "newreno", "cubic"} <= set(congestion.available())
    with pytest.raises(KeyError, match="cubic.*reno"):
        congestion.get("vegas")
    with pytest.raises(TypeError):
        CongestionControl(MSS)                            # abstract


def test_register_decorator(monkeypatch):
    monkeypatch.setattr(congestion, "_REGISTRY", dict(congestion._REGISTRY))

    @congestion.register
    class Slow(Reno):
        name = "slow"
        aliases = ()

    assert congestion.get("slow") is Slow and "slow" in congestion.available()

    class Impostor(Reno):
        name = "cubic"
        aliases = ()

    with pytest.raises(ValueError):
        congestion.register(Impostor)


def test_set_mss_and_syn_loss():
    cc = Reno(536)
    cc.set_mss(1460)                                      # negotiated before any data: IW follows
    assert cc.cwnd == 14600
    cc.on_ack(0.1, 1460, 14600, RTT)
    cc.set_mss(730)                                       # PMTUD: scale by the ratio (5681 §3.1)
    assert cc.cwnd == (14600 + 1460) // 2
    cc = Reno(MSS)
    cc.syn_lost(1)                                        # RFC 6928 §2: one SYN loss keeps IW
    assert cc.cwnd == 10 * MSS
    cc.syn_lost(2)
    assert cc.cwnd == MSS


# --- slow start and congestion avoidance (RFC 5681 §3.1) --------------------------------------

@pytest.mark.parametrize("cls", [Reno, Cubic])
@pytest.mark.parametrize("per_ack", [1, 2])
def test_slow_start_doubles_per_rtt(cls, per_ack):
    cc = cls(MSS)
    now, seen = 0.0, [cc.cwnd // MSS]
    for _ in range(4):
        now = ack_round(cc, now, per_ack=per_ack)
        seen.append(cc.cwnd // MSS)
    assert seen == [10, 20, 40, 80, 160]


def test_strict_byte_counting_with_delayed_acks_grows_by_half():
    cc = Reno(MSS, abc_limit=1)                          # RFC 5681 eq. (2): min(N, SMSS)
    ack_round(cc, 0.0, per_ack=2)
    assert cc.cwnd == 15 * MSS


def test_slow_start_stops_at_ssthresh():
    cc = Reno(MSS)
    cc.ssthresh = 15 * MSS
    ack_round(cc, 0.0)
    assert cc.cwnd == 15 * MSS and not cc.in_slow_start


@pytest.mark.parametrize("per_ack", [1, 2])
def test_congestion_avoidance_adds_one_mss_per_rtt(per_ack):
    cc = in_congestion_avoidance(Reno, 40)
    assert cc.cwnd == cc.ssthresh == 20 * MSS
    now = 0.0
    for k in range(1, 11):
        now = ack_round(cc, now, per_ack=per_ack)
        assert cc.cwnd == (20 + k) * MSS


def test_congestion_avoidance_never_more_than_one_mss_per_ack():
    cc = in_congestion_avoidance(Reno, 40)
    cc.on_ack(0.1, 100 * MSS, 100 * MSS, RTT)            # one huge cumulative ACK
    assert cc.cwnd == 21 * MSS
    cc.on_ack(0.2, MSS, 21 * MSS, RTT)
    assert cc.cwnd == 21 * MSS


# --- losses ------------------------------------------------------------------------------------

def test_reno_fast_retransmit_and_recovery():
    cc = Reno(MSS)
    cc.cwnd = 30 * MSS
    cc.on_congestion_event(1.0, 24 * MSS)                 # §3.2 step 2: FlightSize / 2
    assert cc.ssthresh == cc.cwnd == 12 * MSS and cc.in_recovery
    cc.cwnd += 3 * MSS + 4 * MSS                          # the connection's inflation
    cc.on_recovery_exit(1.2)                              # §3.2 step 6: deflate
    assert cc.cwnd == 12 * MSS and not cc.in_recovery
    cc.on_congestion_event(2.0, 3 * MSS)
    assert cc.ssthresh == 2 * MSS                         # eq. (4) floor


@pytest.mark.parametrize("flight, ssthresh", [(7 * MSS, 3 * MSS), (8 * MSS - 1, 3 * MSS),
                                              (8 * MSS, 4 * MSS), (5 * MSS, 2 * MSS)])
def test_reno_halves_to_whole_segments(flight, ssthresh):
    # eq. (4) sets "no more than" FlightSize / 2; Reno rounds it down to whole segments, as
    # FreeBSD's newreno and Linux (which counts in packets) do: half a segment of cwnd is never
    # sent, and with k segments in flight under a cwnd of k + 1/2, the k + 1/2 segments of ACKs
    # each increment needs take two round trips.
    cc = Reno(MSS)
    cc.cwnd = 20 * MSS
    cc.on_congestion_event(1.0, flight)
    assert cc.ssthresh == cc.cwnd == ssthresh
    cc = Reno(MSS)
    cc.cwnd = 20 * MSS
    cc.on_rto(1.0, flight)
    assert cc.ssthresh == ssthresh and cc.cwnd == MSS


@pytest.mark.parametrize("cls, factor", [(Reno, 0.5), (Cubic, 0.7)])
def test_reduction_starts_from_the_smaller_of_flight_and_cwnd(cls, factor):
    # A loss found just after a recovery: cwnd is the episode's ssthresh (20), but FlightSize
    # still counts the segments that recovery lost and nobody has detected yet (40). From
    # FlightSize the "reduction" would raise ssthresh to 28 (CUBIC); from cwnd it is 14.
    # RFC 5681 §3.2 step 2: "no more than" eq. (4); RFC 9438 §4.6: cwnd, given §5.8.
    cc = cls(MSS)
    cc.cwnd = 20 * MSS
    cc.on_congestion_event(1.0, 40 * MSS)
    assert cc.ssthresh == cc.cwnd == int(20 * MSS * factor)
    # an application-limited flight below cwnd: FlightSize, as the RFCs write it
    cc = cls(MSS)
    cc.cwnd = 20 * MSS
    cc.on_congestion_event(1.0, 10 * MSS)
    assert cc.ssthresh == cc.cwnd == int(10 * MSS * factor)


@pytest.mark.parametrize("cls, factor", [(Reno, 0.5), (Cubic, 0.7)])
def test_rto_loss_window_and_ssthresh(cls, factor):
    cc = cls(MSS)
    cc.cwnd = 40 * MSS
    cc.on_rto(1.0, 30 * MSS)
    assert cc.cwnd == MSS                                 # loss window, RFC 5681 §3.1
    assert cc.ssthresh == int(30 * MSS * factor)          # Reno: max(flight/2, 2*MSS)
    cc.on_rto(3.0, 30 * MSS)                              # same segment times out again:
    assert cc.ssthresh == int(30 * MSS * factor)          # "held constant" (not 0.5 * 1 MSS)
    cc.on_ack(4.0, MSS, 30 * MSS, RTT)
    cc.on_rto(5.0, MSS)                                   # a new timeout: eq. (4) again
    assert cc.ssthresh == 2 * MSS and cc.cwnd == MSS and cc.in_slow_start


@pytest.mark.parametrize("cls, factor", [(Reno, 0.5), (Cubic, 0.7)])
def test_rto_in_fast_recovery_keeps_the_episode_ssthresh(cls, factor):
    # FlightSize at the timeout still counts every segment the episode lost: eq. (4) on it
    # would raise ssthresh above the reduction fast retransmit made ("no more than", §3.1)
    cc = cls(MSS)
    cc.cwnd = 40 * MSS
    cc.on_congestion_event(1.0, 40 * MSS)
    assert cc.ssthresh == int(40 * MSS * factor)
    cc.on_rto(2.0, 80 * MSS)
    assert cc.ssthresh == int(40 * MSS * factor) and cc.cwnd == MSS
    if cls is Cubic:
        assert cc.cwnd_prior == 40                        # still the window before the episode
    cc.on_ack(3.0, MSS, MSS, RTT)
    cc.on_rto(4.0, 2 * MSS)                               # a later timeout, out of recovery:
    assert cc.ssthresh == 2 * MSS                         # eq. (4) as always


def test_take_over_keeps_the_window_and_a_recovery_in_progress():
    old = Reno(MSS)
    old.cwnd = 40 * MSS
    old.on_congestion_event(1.0, 40 * MSS)                # in fast recovery, ssthresh 20
    new = Cubic(MSS)
    new.take_over(old)
    assert (new.cwnd, new.ssthresh, new.in_recovery) == (20 * MSS, 20 * MSS, True)
    new.cwnd += 5 * MSS                                   # the connection's inflation
    new.on_recovery_exit(2.0)                             # ends the recovery the old one began
    assert new.cwnd == 20 * MSS and not new.in_recovery
    new.on_ack(2.1, MSS, 20 * MSS, RTT)                   # and grows as CUBIC from there
    assert new.cwnd >= 20 * MSS and new.w_max is not None


def test_rto_during_recovery_is_not_undone_by_recovery_exit():
    cc = Reno(MSS)
    cc.on_congestion_event(1.0, 20 * MSS)
    cc.on_rto(2.0, 20 * MSS)
    cc.on_recovery_exit(2.5)
    assert cc.cwnd == MSS


def test_restart_after_idle():
    cc = Reno(MSS)
    cc.cwnd = 50 * MSS
    cc.on_idle(10.0, 0.5, 1.0)                            # not idle for an RTO: unchanged
    assert cc.cwnd == 50 * MSS
    cc.on_idle(10.0, 1.5, 1.0)                            # RW = min(IW, cwnd), RFC 5681 §4.1
    assert cc.cwnd == 10 * MSS
    cc.cwnd = 4 * MSS
    cc.on_idle(20.0, 5.0, 1.0)
    assert cc.cwnd == 4 * MSS                             # never raised by a restart


# --- CUBIC -------------------------------------------------------------------------------------

def reference_w_cubic(t, w_max, beta=0.7, c=0.4):
    """RFC 8312 / 9438 Figure 1 with K = cbrt(W_max * (1 - beta) / C), in segments."""
    k = (w_max * (1 - beta) / c) ** (1 / 3)
    return c * (t - k) ** 3 + w_max


def test_cubic_multiplicative_decrease():
    cc = Cubic(MSS)
    cc.cwnd = 100 * MSS
    cc.on_congestion_event(0.0, 100 * MSS)                # §4.6 Figure 5
    assert cc.ssthresh == cc.cwnd == 70 * MSS
    assert cc.w_max == 100 and cc.cwnd_prior == 100
    cc.on_congestion_event(1.0, MSS)
    assert cc.ssthresh == cc.cwnd == 2 * MSS              # at least 2 MSS


@pytest.mark.parametrize("per_ack", [1, 2])
def test_cubic_follows_w_cubic_within_one_percent(per_ack):
    w_max = 400
    cc = in_congestion_avoidance(Cubic, w_max)
    k = (w_max * 0.3 / 0.4) ** (1 / 3)                    # ~6.69 s
    now, worst, regions = 0.0, 0.0, set()
    t0 = None
    while now < 2 * k:
        n = max(1, cc.cwnd // MSS // per_ack)
        for i in range(n):
            at = now + RTT * (i + 1) / n
            cc.on_ack(at, per_ack * MSS, cc.cwnd, RTT)
            t0 = at if t0 is None else t0                 # the epoch starts at the first ACK
            expected = reference_w_cubic(at - t0, w_max)
            if at - t0 >= RTT:
                worst = max(worst, abs(cc.cwnd / MSS - expected) / expected)
            regions.add("concave" if cc.cwnd < w_max * MSS else "convex")
        now += RTT
    assert worst < 0.01
    assert regions == {"concave", "convex"}
    assert cc.cwnd / MSS == pytest.approx(reference_w_cubic(now - t0, w_max), rel=0.01)


def test_cubic_fast_convergence_lowers_w_max():
    cc = Cubic(MSS)
    cc.cwnd = 100 * MSS
    cc.on_congestion_event(0.0, 100 * MSS)
    cc.on_recovery_exit(0.0)                              # cwnd 70 < W_max 100
    cc.on_congestion_event(1.0, 70 * MSS)                 # §4.7: W_max = cwnd * (1 + β) / 2
    assert cc.w_max == pytest.approx(70 * 1.7 / 2)
    assert cc.ssthresh == 49 * MSS

    cc = Cubic(MSS, fast_convergence=False)
    cc.cwnd = 100 * MSS
    cc.on_congestion_event(0.0, 100 * MSS)
    cc.on_recovery_exit(0.0)
    cc.on_congestion_event(1.0, 70 * MSS)
    assert cc.w_max == 70


def test_cc_options_reach_the_controller_and_a_wrong_one_is_a_clear_error():
    """``TcpConfig.cc_options``: how a user alone on a path turns CUBIC's fast convergence off
    (RFC 9438 §4.7: "fast convergence SHOULD be disabled" there; synack cannot tell by itself)."""
    cc = Dialogue(config=TcpConfig(cc="cubic", cc_options=(("fast_convergence", False),))).conn.cc
    assert isinstance(cc, Cubic) and cc.fast_convergence is False
    assert Dialogue(config=TcpConfig(cc="cubic")).conn.cc.fast_convergence is True
    with pytest.raises(ValueError, match=r"'newreno' does not take the options \['fast_convergence'\]"):
        Dialogue(config=TcpConfig(cc="newreno", cc_options=(("fast_convergence", False),)))


def test_cubic_reno_friendly_region_at_small_bdp():
    rtt, w_max = 0.01, 10                                 # 10 segments, 10 ms: a small BDP
    cc = in_congestion_avoidance(Cubic, w_max)
    now, t0 = 0.0, None
    w_est = 7.0
    alpha = 3 * 0.3 / 1.7                                 # §4.3: ~0.53 segments per RTT
    for _ in range(5):
        cwnd_before = cc.cwnd / MSS
        now = ack_round(cc, now, rtt=rtt)
        t0 = cc.t_epoch if t0 is None else t0
        w_est += alpha * int(cwnd_before) / cwnd_before   # Figure 4 summed over one round
        assert reference_w_cubic(now - t0, w_max) < cc.cwnd / MSS
    assert cc.cwnd / MSS == pytest.approx(w_est, rel=0.05)
    assert cc.cwnd / MSS == pytest.approx(7 + 5 * alpha, rel=0.05)


def test_cubic_after_timeout_starts_with_k_zero():
    cc = Cubic(MSS)
    cc.cwnd = 100 * MSS
    cc.on_rto(0.0, 100 * MSS)                             # §4.8
    assert cc.cwnd == MSS and cc.ssthresh == 70 * MSS
    now = 0.0
    while cc.in_slow_start:
        now += 0.01
        cc.on_ack(now, MSS, cc.cwnd, RTT)
    assert cc.cwnd == 70 * MSS
    cc.on_ack(now + 0.01, MSS, cc.cwnd, RTT)              # first ACK of congestion avoidance
    assert cc.k == 0 and cc.w_max == 70 and cc.t_epoch == now + 0.01


def test_cubic_idle_time_is_not_growth_time():
    cc = in_congestion_avoidance(Cubic, 400)
    now = ack_round(cc, 0.0)
    t_epoch, cwnd = cc.t_epoch, cc.cwnd
    cc.on_idle(now + 0.5, 0.5, 1.0)                       # §4.2 / §5.8: shift the epoch
    assert cc.t_epoch == t_epoch + 0.5 and cc.cwnd == cwnd
    cc.on_idle(now + 5, 4.0, 1.0)                         # past an RTO: restart window too
    assert cc.cwnd == 10 * MSS and cc.t_epoch is None


def test_cubic_growth_is_bounded_by_one_and_a_half_per_rtt():
    cc = in_congestion_avoidance(Cubic, 400)
    cc.on_ack(0.0, MSS, cc.cwnd, RTT)
    before = cc.cwnd
    ack_round(cc, 1000.0)                                 # far past K: W_cubic is enormous
    assert before < cc.cwnd <= math.ceil(1.5 * before) + MSS


def test_restart_window_falls_back_to_rfc3390_after_a_loss_in_a_first_window():
    # RFC 6928 §2 SHOULD: a loss "during either the initial window or a restart window" (more
    # than 4 KB sent) makes later restart windows RFC 3390's, min(4*MSS, max(2*MSS, 4380)).
    cc = Reno(MSS)
    cc.on_ack(0.0, MSS, MSS, RTT)                          # the initial window went through
    cc.on_congestion_event(1.0, 12 * MSS)                  # a later loss: no fallback
    cc.on_recovery_exit(1.1)
    cc.cwnd = 30 * MSS
    cc.on_idle(5.0, 3.0, 1.0)
    assert cc.cwnd == 10 * MSS                             # RW = min(IW10, cwnd)
    cc.on_ack(5.1, 4 * MSS, 10 * MSS, RTT)                 # 6 segments of it still unacked
    cc.on_rto(6.0, 6 * MSS)                                # a loss in the restart window
    cc.cwnd = 30 * MSS
    cc.on_idle(9.0, 3.0, 1.0)
    assert cc.cwnd == 4 * MSS
    # an ECN mark in the initial window is no packet loss: IW10 restarts stay
    cc = Reno(MSS)
    cc.on_ecn_echo(0.1, 10 * MSS)
    cc.cwnd = 30 * MSS
    cc.on_idle(5.0, 3.0, 1.0)
    assert cc.cwnd == 10 * MSS
