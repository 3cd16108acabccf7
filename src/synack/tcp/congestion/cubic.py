"""CUBIC congestion control (draft-ietf-tcpm-rfc8312bis-15, published as RFC 9438).

Section numbers below are the draft's (the same as RFC 9438's). The draft works in segments;
this class keeps ``cwnd`` in bytes (an int, like every controller) and converts with the MSS,
carrying the fractional byte between ACKs so per-ACK growth of a fraction of a byte still adds up.

Slow start is the base class's: §4.10 "SHOULD use the HyStart++ slow start algorithm", which the
base class runs when constructed with ``hystart=True`` (``TcpConfig.hystart``, on by default);
leaving slow start without a loss is the §4.10 case handled in ``_start_epoch``. Fast retransmit and recovery are
unchanged (§4.2: CUBIC "does not make any changes to the TCP Fast Recovery and Fast Retransmit
algorithms"), so the connection's recovery code serves both.
"""

from __future__ import annotations

import math

from synack.tcp.congestion.base import CongestionControl

C = 0.4                                      # §5.1: "_C_ SHOULD be set to 0.4" (segment/s^3)
BETA_CUBIC = 0.7                             # §4.6: "β_cubic SHOULD be set to 0.7"
ALPHA_CUBIC = 3 * (1 - BETA_CUBIC) / (1 + BETA_CUBIC)   # §4.3, Reno-friendly additive factor


def w_cubic(t: float, k: float, w_max: float) -> float:
    """§4.2 Figure 1: W_cubic(t) = C * (t - K)^3 + W_max, in segments."""
    return C * (t - k) ** 3 + w_max


def cubic_k(w_max: float, cwnd_epoch: float) -> float:
    """§4.2 Figure 2: K = cbrt((W_max - cwnd_epoch) / C), seconds (0 when cwnd_epoch >= W_max).

    With cwnd_epoch = β·W_max this is RFC 8312's K = cbrt(W_max·(1 - β) / C).
    """
    return math.cbrt(max(0.0, w_max - cwnd_epoch) / C)


class Cubic(CongestionControl):
    """CUBIC. ``fast_convergence`` (§4.7) defaults on: it "SHOULD be implemented", and is
    meant to be turned off only "with only a single CUBIC flow and without any other traffic"."""

    name = "cubic"

    def __init__(self, mss: int, initial_window: int | None = None, *, abc_limit: int = 2,
                 hystart: bool = False, fast_convergence: bool = True) -> None:
        # (the base class's __init__, set_mss and on_ack, asked per connection or per ACK, are
        # called by name, not through super(): a super object costs as much as the call)
        CongestionControl.__init__(self, mss, initial_window, abc_limit=abc_limit, hystart=hystart)
        self.fast_convergence = fast_convergence
        self.w_max: float | None = None      # segments; None until the first congestion event
        self.cwnd_prior: float | None = None # segments (§4.1.2)
        self.k = 0.0                         # seconds
        self.t_epoch: float | None = None    # start of the current congestion avoidance stage
        self.cwnd_epoch = 0.0                # segments
        self.w_est = 0.0                     # segments, Reno-friendly estimate (§4.3)
        self.alpha = ALPHA_CUBIC
        self._srtt: float | None = None
        self._frac = 0.0                     # bytes of growth not yet added to the int cwnd
        self._after_rto = False              # next CA stage uses K = 0 (§4.8)
        self._t_seen = 0.0                   # growth time is accounted up to here (§4.2, §5.8)

    # --- congestion avoidance ------------------------------------------------------------------

    def on_ack(self, now: float, acked: int, flight_size: int, rtt: float | None) -> None:
        if acked > 0 and self.t_epoch is not None:
            if not self.cwnd_limited:
                # §4.2: "The elapsed time t in Figure 1 MUST NOT include periods during which
                # cwnd has not been updated due to application-limited behavior" (§5.8). This
                # ACK grows nothing (the base class), so the time since the last one is moved
                # out of t; an idle gap is on_idle's.
                self.t_epoch += max(0.0, now - self._t_seen)
            self._t_seen = now
        CongestionControl.on_ack(self, now, acked, flight_size, rtt)

    def _congestion_avoidance(self, now: float, acked: int, flight_size: int,
                              rtt: float | None) -> None:
        mss = self.mss
        if rtt is not None:
            self._srtt = rtt                 # §4.1.2: RTT is the smoothed RTT of RFC 6298
        cwnd = (self.cwnd + self._frac) / mss
        if self.t_epoch is None:
            self._start_epoch(now, cwnd)
        assert self.w_max is not None and self.cwnd_prior is not None
        t = now - self.t_epoch               # type: ignore[operator]
        segments_acked = acked / mss

        # §4.3 Figure 4: W_est += α_cubic * segments_acked / cwnd; once W_est >= cwnd_prior the
        # sender "SHOULD set α_cubic to 1" to grow like Reno's AIMD(1, 0.5).
        self.w_est += self.alpha * segments_acked / cwnd
        if self.w_est >= self.cwnd_prior:
            self.alpha = 1.0

        if w_cubic(t, self.k, self.w_max) < self.w_est:
            # §4.3: in the Reno-friendly region "cwnd SHOULD be set to W_est" (never lowered here:
            # an ACK of new data does not shrink the window).
            new = max(cwnd, self.w_est)
        else:
            # §4.2: target = W_cubic(t + RTT), bounded to [cwnd, 1.5 * cwnd] so growth is never
            # negative and stays below slow start's rate.
            target = w_cubic(t + (self._srtt or 0.0), self.k, self.w_max)
            target = min(max(target, cwnd), 1.5 * cwnd)
            # §4.4 (concave) and §4.5 (convex), MUST: cwnd += (target - cwnd) / cwnd per new ACK;
            # scaled by segments_acked because cwnd counts bytes (§4.1: "factoring in the maximum
            # segment size wherever necessary"), so delayed ACKs do not halve the growth.
            # One ACK covering more than a window would overshoot the target: stop at it.
            new = cwnd + (target - cwnd) * min(1.0, segments_acked / cwnd)
        self._set_cwnd_segments(new)

    def _start_epoch(self, now: float, cwnd: float) -> None:
        """Begin a congestion avoidance stage at ``now`` with cwnd (segments)."""
        self.t_epoch = now
        self._t_seen = now
        self.cwnd_epoch = cwnd
        self.w_est = cwnd                    # §4.3: "W_est is set equal to cwnd_epoch"
        if self.w_max is None or self._after_rto or self.w_max <= cwnd:
            # §4.8 (after a timeout) and §4.10 (no congestion event yet): "K is set to 0, and
            # W_max is set to the congestion window size at the beginning of the current
            # congestion avoidance stage". Starting at or above W_max is the same convex case.
            self.w_max = cwnd
            self.k = 0.0
        else:
            self.k = cubic_k(self.w_max, cwnd)
        if self.cwnd_prior is None:
            self.cwnd_prior = cwnd           # §4.10: "CUBIC sets cwnd_prior = cwnd"
        self._after_rto = False

    def _set_cwnd_segments(self, segments: float) -> None:
        grow = segments * self.mss - self.cwnd
        whole = math.floor(grow)
        self.cwnd += whole
        self._frac = grow - whole

    # --- reductions ----------------------------------------------------------------------------

    def _loss_ssthresh(self, flight_size: int) -> int:
        # §4.6 Figure 5: ssthresh = flight_size * β_cubic, at least 2 MSS.
        return max(int(flight_size * BETA_CUBIC), 2 * self.mss)

    def on_congestion_event(self, now: float, flight_size: int) -> None:
        """§4.6 multiplicative decrease, with §4.7 fast convergence applied to W_max first."""
        cwnd = (self.cwnd + self._frac) / self.mss
        if self.fast_convergence and self.w_max is not None and cwnd < self.w_max:
            # §4.7: W_max = cwnd * (1 + β_cubic) / 2 "if cwnd < W_max and fast convergence
            # enabled, further reduce W_max".
            self.w_max = cwnd * (1 + BETA_CUBIC) / 2
        else:
            self.w_max = cwnd
        self.cwnd_prior = cwnd               # §4.6 Figure 5: "cwnd_prior = cwnd, save cwnd"
        # Base: ssthresh per Figure 5 and "cwnd = max(ssthresh, 2)" (ssthresh >= 2 MSS already).
        super().on_congestion_event(now, flight_size)
        self._new_stage()

    def on_ecn_echo(self, now: float, flight_size: int) -> None:
        """§4.6 Figure 5 on ECE: "cwnd = max(ssthresh, 1)  reduction on ECE, cwnd is at least 1
        MSS", taken before ssthresh gets its floor of 2 MSS: "CUBIC MUST continue to reduce cwnd
        in response to congestion events due to ECN-Echo ACKs until it reaches a value of 1 MSS".
        (A loss keeps cwnd at 2 MSS or more.)"""
        base = self._reduction_base(flight_size)   # as for a loss
        super().on_ecn_echo(now, flight_size)
        self.cwnd = max(int(base * BETA_CUBIC), self.mss)

    def on_rto(self, now: float, flight_size: int) -> None:
        """§4.8: cwnd as Reno (the 1-segment loss window), ssthresh with β_cubic; the next
        congestion avoidance stage starts with K = 0 and W_max = cwnd at its start."""
        if not self._rto_repeated and not self._in_recovery:
            # (in fast recovery, cwnd_prior is still the one the episode's reduction saved)
            self.cwnd_prior = (self.cwnd + self._frac) / self.mss
        super().on_rto(now, flight_size)
        self._after_rto = True
        self._new_stage()

    def on_idle(self, now: float, idle: float, rto: float) -> None:
        """Shift the epoch over the idle time, then apply the restart window (RFC 5681 §4.1).

        §4.2: "The elapsed time t in Figure 1 MUST NOT include periods during which cwnd has not
        been updated due to application-limited behavior" (§5.8). If the restart window cut
        cwnd, growth back to ssthresh is slow start and a fresh stage follows.
        """
        if self.t_epoch is not None and idle > 0:
            # only the time since the last ACK: application-limited ACKs before it took out
            # their own share (on_ack), which must not go twice
            self.t_epoch += min(idle, max(0.0, now - self._t_seen))
            self._t_seen = now
        before = self.cwnd
        super().on_idle(now, idle, rto)
        if self.cwnd < before:
            self._new_stage()

    def _new_stage(self) -> None:
        self.t_epoch = None
        self.alpha = ALPHA_CUBIC
        self._frac = 0.0

    def set_mss(self, mss: int) -> None:
        """W_max and cwnd_prior are in segments: rescale them to keep their byte values, and
        start a new stage (K was computed in the old segment size)."""
        old = self.mss
        CongestionControl.set_mss(self, mss)
        if mss != old:
            r = old / mss
            if self.w_max is not None:
                self.w_max *= r
            if self.cwnd_prior is not None:
                self.cwnd_prior *= r
            self._new_stage()
