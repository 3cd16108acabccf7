"""RACK-TLP loss detection (RFC 8985): the arithmetic, over the SACK scoreboard.

``Rack`` holds the per-connection variables of RFC 8985 §5.3 and runs §6.2 Steps 1-5 on the
records an ACK newly delivered; ``Tlp`` holds the loss-probe state of §7. The connection
(``recovery.py``) decides what to send, owns the timers (``Timers.rack``, ``Timers.tlp``) and
tells congestion control; nothing here sends, arms or reads a clock.
"""

from __future__ import annotations

import math
from operator import attrgetter

from synack.tcp.sack import Rec, Scoreboard
from synack.wire.seq import MASK

MIN_RTT_WINDOW = 300.0      # seconds; Linux tcp_min_rtt_wlen (RFC 8985 §6.2 Step 1: "windowed")
REO_WND_PERSIST = 16        # §6.2 Step 4: keep an inflated window for 16 recoveries
_END = attrgetter("end")
_NEG_INF = -math.inf


class WindowedMin:
    """Kathleen Nichols' windowed min filter (three samples; as Linux's win_minmax): the smallest
    sample of the last ``window`` seconds, adapting when the path's RTT grows for good."""

    __slots__ = ("window", "_s")

    def __init__(self, window: float) -> None:
        self.window = window
        self._s: list[tuple[float, float]] = []        # (time, value), best first

    @property
    def value(self) -> float | None:
        return self._s[0][1] if self._s else None

    def update(self, now: float, v: float) -> None:
        s = self._s
        if not s or v <= s[0][1] or now - s[2][0] > self.window:
            self._s = [(now, v)] * 3
            return
        if v <= s[1][1]:
            s[1] = s[2] = (now, v)
        elif v <= s[2][1]:
            s[2] = (now, v)
        dt = now - s[0][0]
        if dt > self.window:                           # the best sample expired: promote
            s[0], s[1], s[2] = s[1], s[2], (now, v)
            if now - s[0][0] > self.window:
                s[0], s[1] = s[1], s[2]
        elif s[1][0] == s[0][0] and dt > self.window / 4:
            s[1] = s[2] = (now, v)
        elif s[2][0] == s[1][0] and dt > self.window / 2:
            s[2] = (now, v)


def sent_after(t1: float, seq1: int, t2: float, seq2: int) -> bool:
    """RFC 8985 §6.2 RACK_sent_after: time first, the sequence space breaks ties."""
    return t1 > t2 or (t1 == t2 and seq1 > seq2)


class Rack:
    """RFC 8985 §5.3 per-connection variables and §6.2 / §6.3 procedures."""

    __slots__ = ("min_rtt", "rtt", "xmit_ts", "end_seq", "ack_ts", "fack", "reordering_seen", "reo_wnd",
                 "reo_wnd_mult", "reo_wnd_persist", "dsack_round")     # (one per connection: no __dict__)

    def __init__(self) -> None:
        self.min_rtt = WindowedMin(MIN_RTT_WINDOW)      # RACK.min_RTT
        self.rtt = 0.0                                  # RACK.rtt
        self.xmit_ts = _NEG_INF                         # RACK.xmit_ts
        self.end_seq = -1                               # RACK.end_seq
        self.ack_ts = _NEG_INF                          # RACK.ack_ts
        self.fack = 0                                   # RACK.fack
        self.reordering_seen = False
        self.reo_wnd = 0.0
        self.reo_wnd_mult = 1
        self.reo_wnd_persist = REO_WND_PERSIST
        self.dsack_round: int | None = None

    # Step 1
    def rtt_sample(self, now: float, rtt: float) -> None:
        """An RTT measurement of RFC 6298 / RFC 7323 (Step 1: update RACK.min_RTT)."""
        self.min_rtt.update(now, rtt)

    # Steps 2 and 3
    def update(self, delivered: list[Rec], now: float, tsecr: int | None, tsval_at) -> None:
        """``delivered``: the records this ACK newly acknowledged, cumulatively or selectively.
        ``tsecr``: the ACK's TSecr (None without timestamps); ``tsval_at(t)``: our TSval at t."""
        s = self.min_rtt._s
        min_rtt = s[0][1] if s else None                # self.min_rtt.value
        latest: Rec | None = None
        for r in delivered:
            if r.retrans:
                # Step 2: a retransmitted segment is only a valid sample if the ACK is for the
                # last retransmission (TSecr) and it was retransmitted at least min_rtt ago.
                if tsecr is not None and 0 < (tsval_at(r.xmit_ts) - tsecr) & MASK < 2**31:
                    continue
                if min_rtt is not None and now - r.xmit_ts < min_rtt:
                    continue
            if latest is None or sent_after(r.xmit_ts, r.end, latest.xmit_ts, latest.end):
                latest = r
        if latest is not None:
            # RACK_update() walks the valid segments in xmit_ts order setting RACK.rtt from each:
            # it ends as the latest one's, even when RACK.segment stays (a reordered ACK of
            # earlier segments; RFC 8985 §6.2 Step 2)
            self.rtt = now - latest.xmit_ts
            if sent_after(latest.xmit_ts, latest.end, self.xmit_ts, self.end_seq):
                self.xmit_ts, self.end_seq = latest.xmit_ts, latest.end
                self.ack_ts = now
        # Step 3: "a never-retransmitted segment that's below RACK.fack" delivered: reordering.
        for r in (sorted(delivered, key=_END) if len(delivered) > 1 else delivered):
            if r.end > self.fack:
                self.fack = r.end
            elif r.end < self.fack and not r.retrans:
                self.reordering_seen = True

    # Step 4
    def update_reo_wnd(self, una: int, nxt: int, dsack: bool, in_recovery: bool, segs_sacked: int,
                       dupthresh: int, srtt: float | None) -> float:
        """RACK_update_reo_wnd(): the reordering window in seconds."""
        if self.dsack_round is not None and una >= self.dsack_round:
            self.dsack_round = None
        if self.dsack_round is None and dsack:
            self.dsack_round = nxt
            self.reo_wnd_mult += 1
            self.reo_wnd_persist = REO_WND_PERSIST
        if not self.reordering_seen and (in_recovery or segs_sacked >= dupthresh):
            self.reo_wnd = 0.0
            return 0.0
        s = self.min_rtt._s
        min_rtt = (s[0][1] if s else None) or 0.0       # self.min_rtt.value or 0.0
        w = self.reo_wnd_mult * min_rtt / 4
        self.reo_wnd = (srtt if srtt < w else w) if srtt is not None else w     # min(w, srtt)
        return self.reo_wnd

    def recovery_exited(self) -> None:
        """Step 4: "Else if exiting Fast or RTO recovery": count down the inflated window."""
        self.reo_wnd_persist -= 1
        if self.reo_wnd_persist <= 0:
            self.reo_wnd_mult = 1

    # Step 5
    def detect_loss(self, sb: Scoreboard, now: float) -> tuple[list[Rec], float]:
        """RACK_detect_loss(): the records now deemed lost and the time (s) until the next one
        would be (0: none pending). Only segments not yet delivered nor lost are looked at, in
        transmission order, up to the first sent after RACK.segment (§6.2's optimisation)."""
        lost: list[Rec] = []
        timeout = 0.0
        for r in sb.in_flight_by_time():
            if sent_after(self.xmit_ts, self.end_seq, r.xmit_ts, r.end):
                remaining = r.xmit_ts + self.rtt + self.reo_wnd - now
                if remaining <= 0:
                    lost.append(r)
                else:
                    timeout = max(timeout, remaining)
            elif r.xmit_ts > self.xmit_ts:
                break
        return lost, timeout

    # §6.3
    def lost_on_rto(self, sb: Scoreboard, now: float) -> list[Rec]:
        """RACK_mark_losses_on_RTO(): the first outstanding segment, and every other one sent
        at least RACK.rtt + RACK.reo_wnd ago."""
        return [r for r in sb.in_flight_by_time()
                if r.start == sb.una or r.xmit_ts + self.rtt + self.reo_wnd - now <= 0]


class Tlp:
    """RFC 8985 §7 loss-probe state."""

    __slots__ = ("end_seq", "is_retrans", "rtt_sampled")

    def __init__(self) -> None:
        self.end_seq: int | None = None       # TLP.end_seq (offset), None: no probe outstanding
        self.is_retrans = False               # TLP.is_retrans
        # an RTT sample since the last probe "or the start of the connection" (§7.3, 2.): none
        # yet (a handshake that gave one sets it, InputMixin._new_ack)
        self.rtt_sampled = False

    def reset(self) -> None:
        """TLP_init() (§7.1): at connection start, fast recovery, RTO recovery."""
        self.end_seq = None
        self.is_retrans = False
