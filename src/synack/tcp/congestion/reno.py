"""Reno congestion control (RFC 5681), also registered as "newreno".

The NewReno part (RFC 6582: partial ACKs keep the sender in fast recovery) lives in the
connection, which owns recovery; the window arithmetic is the same, hence the alias.
"""

from __future__ import annotations

from synack.tcp.congestion.base import CongestionControl


class Reno(CongestionControl):
    name = "reno"
    aliases = ("newreno",)

    def _congestion_avoidance(self, now: float, acked: int, flight_size: int,
                              rtt: float | None) -> None:
        # RFC 5681 §3.1, the RECOMMENDED byte-counting form: "When the number of bytes
        # acknowledged reaches cwnd, then cwnd can be incremented by up to SMSS bytes", and
        # "cwnd MUST NOT be increased by more than SMSS bytes per RTT". The counter is capped
        # below cwnd so one huge cumulative ACK cannot bank increments for later ACKs.
        self._ca_acked += acked
        if self._ca_acked >= self.cwnd:
            self._ca_acked = min(self._ca_acked - self.cwnd, self.cwnd - 1)
            self.cwnd += self.mss

    def _loss_ssthresh(self, flight_size: int) -> int:
        # RFC 5681 §3.1 eq. (4): ssthresh = max(FlightSize / 2, 2*SMSS); §3.2 step 2 uses it too.
        # Both set ssthresh to "no more than" that: it is rounded down to whole segments, as
        # FreeBSD's newreno_cong_signal does and Linux's packet counts do. Half a segment of
        # cwnd is never sent (k segments fly under a cwnd of k + 1/2), and the byte counting
        # above then needs k + 1/2 segments of ACKs per increment: two round trips. On the
        # simulator's Mathis cells (bench/cc.py, 1-2 % loss) rounding raised goodput 1-5 %.
        return max(flight_size // 2 // self.mss * self.mss, 2 * self.mss)
