"""What every congestion controller shares: IW, slow start, the loss window, the restart window.

The connection owns loss detection and recovery bookkeeping (the SACK scoreboard, RACK-TLP and
PRR of RFC 6675 / 8985 / 6937; without SACK duplicate ACK counting, RFC 5681 §3.2 window
inflation, NewReno partial ACKs of RFC 6582); a controller only answers "what are cwnd and
ssthresh now" (docs/congestion.md). The call protocol, in connection terms:

``on_ack(now, acked, flight_size, rtt)``
    An ACK advanced SND.UNA by ``acked`` bytes while *not* in fast recovery. ``flight_size`` is
    the bytes outstanding before this ACK (RFC 5681 §2 FlightSize), ``rtt`` the current SRTT in
    seconds if known (CUBIC needs it, RFC 9438 §4.2; Reno ignores it). Before it the connection
    sets ``cwnd_limited``: when False the flight did not fill cwnd (the application or the
    peer's window held the sender back) and cwnd must not grow (RFC 9438 §5.8).
``on_congestion_event(now, flight_size)``
    Three duplicate ACKs (or SACK loss detection): entering fast recovery. Sets ssthresh and
    ``cwnd = ssthresh``. The RFC 5681 §3.2 step 3/4 inflation (+3*SMSS, then +SMSS per further
    duplicate ACK) is **not** applied here: the connection adds it on top (to ``cwnd`` or in its
    own variable) and ``on_recovery_exit`` deflates back to ssthresh.
``on_recovery_exit(now, flight_size=None)``
    The ACK that ends fast recovery arrived: ``cwnd = ssthresh`` (RFC 5681 §3.2 step 6), or with
    ``flight_size`` (NewReno, RFC 6582 §3.2 step 3 option (1)) at most FlightSize + SMSS.
``on_ecn_echo(now, flight_size)``
    An ECN-Echo ACK (RFC 3168 §6.1.2): the reduction of a loss, with no recovery to follow.
``on_rto(now, flight_size)``
    The retransmission timer expired (RFC 5681 §3.1 eq. 4 and the loss window).
``on_idle(now, idle, rto)``
    About to send new data after ``idle`` seconds without sending any (RFC 5681 §4.1).
``on_rtt_sample(now, rtt, una, high)``
    An ACK gave an RTT sample (seconds); ``una`` and ``high`` are SND.UNA after that ACK and the
    highest octet sent so far, as offsets that grow without wrapping (round tracking). Called
    before that ACK's ``on_ack``. The base class runs HyStart++ with it.

Windows and sizes are ints in bytes; times are float seconds from the caller's clock.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

# RFC 5681 §3.1: "The initial value of ssthresh SHOULD be set arbitrarily high (e.g., to the size
# of the largest possible advertised window)". 2**62 exceeds any window (65535 << 14 < 2**30).
INFINITE_SSTHRESH = 1 << 62

# HyStart++ (RFC 9406 §4.3) constants. The RFC text is not in shared/rfc; these are its values.
HYSTART_MIN_RTT_THRESH = 0.004       # s
HYSTART_MAX_RTT_THRESH = 0.016       # s
HYSTART_MIN_RTT_DIVISOR = 8
HYSTART_N_RTT_SAMPLE = 8
HYSTART_CSS_GROWTH_DIVISOR = 4
HYSTART_CSS_ROUNDS = 5


def initial_window(mss: int) -> int:
    """RFC 6928 §2 upper bound for IW, in bytes: min(10*MSS, max(2*MSS, 14600))."""
    # written out: the builtins parse keyword arguments on every call (twice per connection)
    floor = 2 * mss
    if floor < 14600:
        floor = 14600                       # max(2*MSS, 14600)
    iw = 10 * mss
    return iw if iw < floor else floor      # min(10*MSS, ...)


_initial_window = initial_window        # (for CongestionControl.__init__, whose argument hides it)


def rfc3390_window(mss: int) -> int:
    """RFC 3390 §1's initial window, in bytes: min(4*MSS, max(2*MSS, 4380))."""
    return min(4 * mss, max(2 * mss, 4380))


class CongestionControl(ABC):
    """Base class: RFC 5681 slow start (with byte counting), timeout and restart behaviour.

    Subclasses implement ``_congestion_avoidance`` and ``_loss_ssthresh`` and may override any
    ``on_*`` hook. ``abc_limit`` is L of Appropriate Byte Counting in segments: slow start adds
    ``min(acked, abc_limit * SMSS)`` per ACK. L = 2 (the default) lets slow start double per RTT
    behind a delayed-ACK receiver; RFC 5681 §3.1 notes RFC 3465 allows this "on an experimental
    basis" while the standard's equation (2) is L = 1 (pass ``abc_limit=1`` for strict 5681).

    ``hystart=True`` runs the connection's first slow start as HyStart++ (RFC 9406, see
    ``HyStart``): when the round's minimum RTT rises, growth slows to a quarter (Conservative
    Slow Start) and, unless the RTT falls back, congestion avoidance starts five rounds later
    without a loss. CUBIC "SHOULD use the HyStart++ slow start algorithm" (RFC 9438 §4.10).
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()

    cwnd: int
    ssthresh: int
    mss: int

    def __init__(self, mss: int, initial_window: int | None = None, *, abc_limit: int = 2,
                 hystart: bool = False) -> None:
        if mss <= 0:
            raise ValueError("mss must be positive")
        if initial_window is not None and initial_window <= 0:
            raise ValueError("initial_window must be positive")
        self.mss = mss
        self.abc_limit = abc_limit
        self._iw_given = initial_window
        # self.initial_window (the parameter hides the module's function: _initial_window)
        self.cwnd = initial_window if initial_window is not None else _initial_window(mss)
        self.ssthresh = INFINITE_SSTHRESH
        self._pristine = True          # nothing acked or lost yet: IW may still follow the MSS
        self._in_recovery = False
        self._rto_repeated = False     # the RTO-retransmitted segment timed out again
        self._ca_acked = 0             # bytes acked in congestion avoidance (RFC 5681 §3.1)
        self._restart_left = 0         # bytes of the current restart window not yet acked
        self._rw_3390 = False          # a loss in the initial or a restart window (RFC 6928 §2)
        self.hystart = HyStart() if hystart else None
        # Set by the connection before each on_ack: did the flight fill cwnd lately? When it did
        # not (the application or the peer's window held the sender back), cwnd does not grow
        # (RFC 9438 §5.8; RFC 7661 §4.3; Linux tcp_is_cwnd_limited).
        self.cwnd_limited = True

    # --- queries -------------------------------------------------------------------------------

    @property
    def initial_window(self) -> int:
        """IW in bytes: the value given to the constructor, else RFC 6928 §2 for the current MSS."""
        return self._iw_given if self._iw_given is not None else initial_window(self.mss)

    @property
    def in_slow_start(self) -> bool:
        """RFC 5681 §3.1: "The slow start algorithm is used when cwnd < ssthresh"."""
        return self.cwnd < self.ssthresh

    @property
    def in_recovery(self) -> bool:
        """Between ``on_congestion_event`` and ``on_recovery_exit`` (or an RTO)."""
        return self._in_recovery

    @property
    def pacing_rate(self) -> float | None:
        """Bytes per second to pace at, or None for pure ACK clocking (Reno, CUBIC)."""
        return None

    def take_over(self, other: "CongestionControl") -> None:
        """Continue from ``other``'s window when a live connection switches algorithm
        (TCP_CONGESTION): cwnd, ssthresh, a recovery in progress and the initial slow start's
        HyStart++ state carry over, the new algorithm's own state starts fresh (Linux
        tcp_reinit_congestion_control keeps snd_cwnd and snd_ssthresh too)."""
        self.cwnd, self.ssthresh = other.cwnd, other.ssthresh
        self._pristine = other._pristine
        self._restart_left, self._rw_3390 = other._restart_left, other._rw_3390
        self._rto_repeated = other._rto_repeated
        self._in_recovery = other._in_recovery
        self.hystart = other.hystart

    # --- inputs --------------------------------------------------------------------------------

    def set_mss(self, mss: int) -> None:
        """The sender's MSS changed (option negotiated, or PMTUD found a smaller path MTU).

        Before any data was acknowledged the IW simply follows the new MSS. Later, a smaller MSS
        scales cwnd down: RFC 5681 §3.1, "cwnd SHOULD be reduced by the ratio of the old segment
        size to the new segment size".
        """
        if mss <= 0:
            raise ValueError("mss must be positive")
        old, self.mss = self.mss, mss
        if self._pristine:
            iw = self._iw_given                 # self.initial_window (asked once per connection)
            self.cwnd = iw if iw is not None else initial_window(mss)
        elif mss < old:
            self.cwnd = max(mss, self.cwnd * mss // old)

    def syn_lost(self, retransmissions: int) -> None:
        """The SYN or SYN/ACK was retransmitted ``retransmissions`` times before the handshake.

        RFC 5681 §3.1 (MUST): after a lost SYN the initial window "MUST be one segment"; RFC 6928
        §2 then RECOMMENDS not doing so "unless there have been more than one SYN or SYN/ACK
        retransmissions", because a 1 s initial RTO makes one spurious SYN timeout likely.
        """
        if retransmissions > 1 and self._pristine:
            self.cwnd = self.mss

    def on_ack(self, now: float, acked: int, flight_size: int, rtt: float | None) -> None:
        """New data cumulatively acknowledged outside fast recovery."""
        if acked <= 0:
            return
        self._pristine = False
        left = self._restart_left - acked
        self._restart_left = left if left > 0 else 0            # max(left, 0)
        self._rto_repeated = False        # a new ACK ends the run of timeouts (RFC 5681 §3.1)
        if not self.cwnd_limited:
            return                        # RFC 9438 §5.8: "does not increase its congestion window"
        if self.cwnd < self.ssthresh:     # self.in_slow_start, without the property call
            cwnd, ssthresh = self.cwnd, self.ssthresh
            # RFC 5681 §3.1 eq. (2): cwnd += min(N, SMSS), with L = abc_limit * SMSS (RFC 3465).
            # Slow start stops at ssthresh; congestion avoidance takes over from the next ACK.
            limit = self.abc_limit * self.mss
            grow = limit if limit < acked else acked            # min(acked, limit)
            hs = self.hystart
            if hs is not None and hs.css:
                # RFC 9406 §4.2, in CSS: "cwnd = cwnd + (min(N, L * SMSS) / CSS_GROWTH_DIVISOR)"
                hs.css_bytes += grow
                grow, hs.css_bytes = divmod(hs.css_bytes, HYSTART_CSS_GROWTH_DIVISOR)
            cwnd += grow
            self.cwnd = ssthresh if ssthresh < cwnd else cwnd   # min(cwnd + grow, ssthresh)
            return
        self._congestion_avoidance(now, acked, flight_size, rtt)

    def on_rtt_sample(self, now: float, rtt: float, una: int, high: int) -> None:
        """An RTT sample from the ACK about to be passed to ``on_ack`` (HyStart++ input)."""
        hs = self.hystart
        if hs is None:
            return
        # (not self.in_slow_start: the property's test, written out)
        if self.ssthresh < INFINITE_SSTHRESH or not self.cwnd < self.ssthresh:
            # RFC 9406 §4.2: HyStart++ is for the initial slow start only; later slow starts
            # stop at the ssthresh a loss set.
            self.hystart = None
            return
        if hs.sample(rtt, una, high) == "ca":
            # CSS_ROUNDS rounds of CSS: "enter congestion avoidance by setting the ssthresh to
            # the current cwnd" (§4.2).
            self.ssthresh = self.cwnd
            self.hystart = None

    def on_congestion_event(self, now: float, flight_size: int) -> None:
        """Fast retransmit: set ssthresh (RFC 5681 §3.2 step 2, MUST) and cwnd = ssthresh.

        The connection adds the step 3/4 inflation itself (see the module docstring).
        """
        self._note_loss_in_first_window()
        self._rto_repeated = False        # a new loss episode: the next RTO recomputes ssthresh
        # The reduction starts from the smaller of FlightSize and cwnd. FlightSize (SND.NXT -
        # SND.UNA) still counts segments already lost but not yet detected: a loss found just
        # after a recovery whose window (0.7 x the overshoot) was still above what the path
        # holds comes with a FlightSize inflated by the segments that recovery lost, and
        # FlightSize * beta could raise ssthresh above the last one, again and again. Both
        # RFCs allow the smaller base: RFC 5681 §3.2 step 2 sets ssthresh to "no more than"
        # eq. (4); RFC 9438 §4.6 lets CUBIC use cwnd when cwnd cannot grow while the flight
        # does not fill it (RFC 9438 §5.8, `cwnd_limited` here), as Linux does.
        self.ssthresh = self._loss_ssthresh(self._reduction_base(flight_size))
        self.cwnd = self.ssthresh
        self._ca_acked = 0
        self._in_recovery = True
        self.hystart = None               # RFC 9406 §4.2: a loss ends SS or CSS for good

    def on_recovery_exit(self, now: float, flight_size: int | None = None) -> None:
        """Fast recovery ends: "a TCP MUST set cwnd to ssthresh" (RFC 5681 §3.2 step 6).

        With ``flight_size`` (a NewReno full ACK, RFC 6582 §3.2 step 3, option (1)): "Set cwnd
        to either (1) min (ssthresh, max(FlightSize, SMSS) + SMSS) or (2) ssthresh", FlightSize
        being what is outstanding now. Option (1) (FreeBSD's newreno_after_recovery) avoids the
        burst option (2) may send when little is outstanding, which the RFC asks implementations
        choosing (2) to take measures against; slow start then climbs back to ssthresh."""
        if self._in_recovery:
            self.cwnd = self.ssthresh
            if flight_size is not None:
                self.cwnd = min(self.ssthresh, max(flight_size, self.mss) + self.mss)
            self._in_recovery = False

    def _note_loss_in_first_window(self) -> None:
        """RFC 6928 §2: "implementations SHOULD fall back to RFC 3390 for the restart window (RW)
        if any packet loss is detected during either the initial window or a restart window,
        and more than 4 KB of data is sent" (``on_idle``; the fallback is min(IW, RFC 3390's),
        so an IW of 4 KB or less is left as it is)."""
        if self._pristine or self._restart_left > 0:
            self._rw_3390 = True
        self._pristine = False
        self._restart_left = 0

    def _reduction_base(self, flight_size: int) -> int:
        """What a congestion event reduces from: min(FlightSize, cwnd) (see on_congestion_event)."""
        return min(flight_size, self.cwnd)

    def on_ecn_echo(self, now: float, flight_size: int) -> None:
        """An ECN-Echo ACK: "treated just as a congestion loss" (RFC 3168 §6.1.2), ssthresh and
        cwnd as for a fast retransmit, but no recovery follows."""
        rw_3390 = self._rw_3390               # a mark, not a loss: RFC 6928's fallback is for losses
        self.on_congestion_event(now, flight_size)
        self._rw_3390 = rw_3390
        self.on_recovery_exit(now)

    def on_rto(self, now: float, flight_size: int) -> None:
        """Retransmission timeout.

        RFC 5681 §3.1: ssthresh MUST be set to no more than eq. (4) the first time a segment
        times out, and "is held constant" when it had already been retransmitted by the timer;
        "cwnd MUST be set to no more than the loss window, LW, which equals 1 full-sized segment".
        """
        self._note_loss_in_first_window()
        if not self._rto_repeated:
            if self._in_recovery:
                # A timeout in fast recovery is the same loss episode, whose reduction is made
                # already: ssthresh never rises here ("no more than" eq. (4); Linux's
                # tcp_enter_loss also keeps it). FlightSize then still counts every segment the
                # episode lost, so eq. (4) alone would undo the reduction.
                self.ssthresh = min(self.ssthresh, self._loss_ssthresh(flight_size))
            else:
                self.ssthresh = self._loss_ssthresh(flight_size)
        self._rto_repeated = True
        self.cwnd = self.mss
        self._ca_acked = 0
        self._in_recovery = False
        self.hystart = None

    def on_idle(self, now: float, idle: float, rto: float) -> None:
        """Restarting after ``idle`` seconds without sending data, with the current RTO.

        RFC 5681 §4.1: "a TCP SHOULD set cwnd to no more than RW before beginning transmission if
        the TCP has not sent data in an interval exceeding the retransmission timeout", where
        RW = min(IW, cwnd).
        """
        if idle > rto:
            iw = self.initial_window
            if self._rw_3390:
                iw = min(iw, rfc3390_window(self.mss))     # RFC 6928 §2 (SHOULD)
            self.cwnd = min(iw, self.cwnd)
            self._restart_left = self.cwnd

    # --- algorithm hooks -----------------------------------------------------------------------

    @abstractmethod
    def _congestion_avoidance(self, now: float, acked: int, flight_size: int,
                              rtt: float | None) -> None:
        """Grow cwnd for ``acked`` new bytes when cwnd >= ssthresh."""

    @abstractmethod
    def _loss_ssthresh(self, flight_size: int) -> int:
        """ssthresh after a loss (fast retransmit or timeout), in bytes."""

    def __repr__(self) -> str:
        ss = "inf" if self.ssthresh >= INFINITE_SSTHRESH else str(self.ssthresh)
        return f"{type(self).__name__}(cwnd={self.cwnd}, ssthresh={ss}, mss={self.mss})"


class HyStart:
    """HyStart++ state for one initial slow start (RFC 9406 §4.2), fed one RTT sample per ACK.

    A round begins when an ACK covers ``window_end`` (SND.NXT when the previous round began).
    Within a round the minimum RTT is tracked; once a round has N_RTT_SAMPLE samples and the
    previous round's minimum is known, a rise of at least RttThresh = clamp(lastRoundMinRTT / 8,
    4 ms, 16 ms) moves slow start into CSS (Conservative Slow Start) with that round's minimum
    as the baseline. In a round that began in CSS a minimum below the baseline was a false alarm
    ("resume slow start"); CSS_ROUNDS rounds in CSS end slow start. Without timestamps a
    connection takes one RTT sample per round trip, N_RTT_SAMPLE is never reached and slow start
    stays standard.
    """

    __slots__ = ("window_end", "last_min", "cur_min", "samples", "css", "css_baseline",
                 "css_rounds", "css_bytes")

    def __init__(self) -> None:
        self.window_end: int | None = None
        self.last_min = math.inf
        self.cur_min = math.inf
        self.samples = 0
        self.css = False
        self.css_baseline = math.inf
        self.css_rounds = 0
        self.css_bytes = 0              # growth not yet added (a quarter of bytes, rounded down)

    def sample(self, rtt: float, una: int, high: int) -> str | None:
        """Take one sample; "ca" when slow start must end now, else None."""
        if self.window_end is None or una >= self.window_end:
            # a new round: "lastRoundMinRTT = currentRoundMinRTT; currentRoundMinRTT = infinity;
            # rttSampleCount = 0", windowEnd = SND.NXT
            if self.window_end is not None and self.css:
                self.css_rounds += 1
                if self.css_rounds >= HYSTART_CSS_ROUNDS:
                    return "ca"
            self.window_end = high
            self.last_min, self.cur_min, self.samples = self.cur_min, math.inf, 0
        if rtt < self.cur_min:
            self.cur_min = rtt                  # min(self.cur_min, rtt)
        self.samples += 1
        if self.samples < HYSTART_N_RTT_SAMPLE:
            return None
        if not self.css:
            if self.last_min < math.inf:
                thresh = max(HYSTART_MIN_RTT_THRESH,
                             min(self.last_min / HYSTART_MIN_RTT_DIVISOR, HYSTART_MAX_RTT_THRESH))
                if self.cur_min >= self.last_min + thresh:
                    self.css, self.css_baseline, self.css_rounds = True, self.cur_min, 0
        elif self.css_rounds > 0 and self.cur_min < self.css_baseline:
            # "For CSS rounds where at least N_RTT_SAMPLE RTT samples have been obtained, check
            # to see if the current round's minRTT drops below baseline": the delay increase
            # was likely spurious, resume slow start. Only in a round that began in CSS: in the
            # round CSS was entered, the baseline IS this round's minimum over its first
            # N_RTT_SAMPLE samples, and a later sample of the same round below it says nothing
            # about the queue (in slow start the RTT rises and falls within a round with the
            # bursts the ACK clock sends, so that test would leave CSS on the next dip).
            self.css, self.css_baseline = False, math.inf
        return None
