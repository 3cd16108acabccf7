"""Retransmission timeout: SRTT, RTTVAR and RTO with exponential backoff (RFC 6298).

The estimator only does arithmetic; the caller decides which measurements are samples and when
the timer runs (RFC 6298 §5 is the connection's job). In particular **Karn's algorithm is the
caller's job**: RFC 6298 §3, "RTT samples MUST NOT be made using segments that were
retransmitted" (unless the timestamp option disambiguates them), and "A TCP implementation MUST
take at least one RTT measurement per RTT (unless that is not possible per Karn's algorithm)".

All times are float seconds.
"""

from __future__ import annotations

ALPHA = 1 / 8       # RFC 6298 §2.3: "SHOULD be computed using alpha=1/8 and beta=1/4"
BETA = 1 / 4
K = 4               # RFC 6298 §2.2: "where K = 4"


class RttEstimator:
    """RFC 6298 RTO calculator.

    ``initial_rto``: RTO before the first sample; RFC 6298 §2.1 says it SHOULD be 1 s.
    ``min_rto``: RFC 6298 §2.4, a computed RTO below 1 s SHOULD be rounded up to 1 s.
    ``max_rto``: RFC 6298 §2.5, an upper bound MAY be placed "provided it is at least 60 seconds"
    (not enforced, so simulations can use small values; the default is 120 s).
    ``granularity``: the clock granularity G of RFC 6298 §2.2 and §4.
    """

    __slots__ = ("initial_rto", "min_rto", "max_rto", "granularity",
                 "_srtt", "_rttvar", "_base", "_rto", "_backoffs")

    def __init__(self, initial_rto: float = 1.0, min_rto: float = 1.0, max_rto: float = 120.0,
                 granularity: float = 0.001) -> None:
        if not (initial_rto > 0 and min_rto >= 0 and max_rto >= min_rto and granularity >= 0):
            raise ValueError("need initial_rto > 0, 0 <= min_rto <= max_rto, granularity >= 0")
        self.initial_rto = initial_rto
        self.min_rto = min_rto
        self.max_rto = max_rto
        self.granularity = granularity
        self._srtt: float | None = None
        self._rttvar: float | None = None
        # RFC 6298 §2.1: until a measurement is made, RTO <- initial (1 s), backoff still applies.
        self._base = initial_rto if initial_rto <= max_rto else max_rto    # min(initial_rto, max_rto)
        self._rto = self._base
        self._backoffs = 0

    # --- queries -----------------------------------------------------------------------------

    @property
    def srtt(self) -> float | None:
        """Smoothed RTT in seconds, None before the first sample."""
        return self._srtt

    @property
    def rttvar(self) -> float | None:
        """RTT variation in seconds, None before the first sample."""
        return self._rttvar

    @property
    def rto(self) -> float:
        """The retransmission timeout to arm now, in seconds, including backoff (RFC 6298 §5.5)."""
        return self._rto

    @property
    def base_rto(self) -> float:
        """RTO from the last computation (RFC 6298 §2), without backoff."""
        return self._base

    @property
    def backoff_count(self) -> int:
        """How many times ``backoff()`` ran since the last sample (or since creation)."""
        return self._backoffs

    # --- updates -----------------------------------------------------------------------------

    def sample(self, rtt: float, expected: int = 1) -> None:
        """Feed one RTT measurement R in seconds (the caller applies Karn's rule, RFC 6298 §3).

        ``expected``: how many samples one window of data yields. RFC 7323 §4.2 (SHOULD, the
        "suggestion detailed in Appendix G"): with many measurements per RTT the gains are
        alpha' = alpha / ExpectedSamples and beta' = beta / ExpectedSamples, so SRTT and RTTVAR
        keep about one RTT's worth of history per window as RFC 6298 intends.

        A sample recomputes RTO from SRTT and RTTVAR, which "may result in 'collapsing' RTO back
        down after it has been subject to exponential back off" (RFC 6298 §5, note after 5.7):
        the backoff is cleared.
        """
        if rtt < 0:
            raise ValueError(f"negative RTT sample {rtt!r}")
        if self._srtt is None or self._rttvar is None:
            # RFC 6298 §2.2 (MUST): SRTT <- R, RTTVAR <- R/2.
            self._srtt = rtt
            self._rttvar = rtt / 2
        else:
            # RFC 6298 §2.3 (MUST): RTTVAR first, using the SRTT from before this update.
            a, b = (ALPHA, BETA) if expected <= 1 else (ALPHA / expected, BETA / expected)
            self._rttvar = (1 - b) * self._rttvar + b * abs(self._srtt - rtt)
            self._srtt = (1 - a) * self._srtt + a * rtt
        self._base = self._compute()
        self._rto = self._base
        self._backoffs = 0

    def backoff(self) -> None:
        """The retransmission timer expired: RTO <- RTO * 2 (RFC 6298 §5.5, MUST), capped at
        ``max_rto`` (the §2.5 bound "may be used to provide an upper bound to this doubling")."""
        self._rto = min(self._rto * 2, self.max_rto)
        self._backoffs += 1

    def handshake_done(self, syn_timed_out: bool) -> None:
        """Call when data transmission begins after the three-way handshake.

        RFC 6298 §5.7 (MUST): "If the timer expires awaiting the ACK of a SYN segment and the TCP
        implementation is using an RTO less than 3 seconds, the RTO MUST be re-initialized to 3
        seconds when data transmission begins", also when a timestamp on the SYN,ACK gave an RTT
        sample (Linux keeps that sample's RTO); the next sample computes RTO again (§2.3).
        Without a timeout this only clears the backoff.
        """
        if syn_timed_out and self._srtt is None:
            self._base = max(self._base, 3.0)
        self._rto = max(self._base, 3.0) if syn_timed_out else self._base
        self._backoffs = 0

    def clear(self) -> None:
        """Forget SRTT and RTTVAR, keeping the current (backed-off) RTO.

        RFC 6298 §5: "a TCP implementation MAY clear SRTT and RTTVAR after backing off the timer
        multiple times"; the next sample then initialises them per §2.2 rather than §2.3.
        """
        self._srtt = None
        self._rttvar = None

    def _compute(self) -> float:
        assert self._srtt is not None and self._rttvar is not None
        # RFC 6298 §2.2/§2.3: RTO <- SRTT + max(G, K*RTTVAR); §4: a zero variance term is rounded
        # to G.
        # (max() and min() written out, each picking what the builtin would, signed zeros too)
        g, v = self.granularity, K * self._rttvar
        rto = self._srtt + (v if v > g else g)                 # max(G, K*RTTVAR)
        # RFC 6298 §2.4 (SHOULD): round up to the minimum; §2.5 (MAY): cap at the maximum.
        if self.min_rto > rto:
            rto = self.min_rto                                 # max(rto, min_rto)
        return self.max_rto if self.max_rto < rto else rto     # min(rto, max_rto)

    def __repr__(self) -> str:
        return (f"RttEstimator(srtt={self._srtt!r}, rttvar={self._rttvar!r}, "
                f"rto={self._rto!r}, backoffs={self._backoffs})")
