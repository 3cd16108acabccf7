"""TIME-WAIT without a TCB: the few numbers RFC 9293 needs to finish a connection's life.

A connection that closed first waits 2 MSL in TIME-WAIT (RFC 9293 §3.6, MUST-13) — 60 s — and a
busy server has one such connection for every connection it closed in the last minute. A whole
``TcpConnection`` (buffers, scoreboard, RTT and congestion state: some 40 objects) is far more
than TIME-WAIT uses, so the stack keeps a ``TimeWait`` record instead, as Linux keeps a
``tcp_timewait_sock``: the 4-tuple, SND.NXT, RCV.NXT and the window, the timestamp state and
the deadline. It answers as §3.10.7.4 says for TIME-WAIT:

* a retransmitted FIN (our ACK of it was lost) is ACKed again and the 2 MSL timer restarts
  (eighth step, MUST-13); so is a FIN at RCV.NXT;
* a RST at RCV.NXT ends it (second step); one elsewhere in the window gets a challenge ACK
  (RFC 5961 §3.2), outside it nothing;
* a SYN that may open a new incarnation (RFC 6191, decided by the stack) ends it; any other SYN
  gets a challenge ACK (RFC 5961 §4.2);
* anything unacceptable — an old duplicate, data beyond the window, an old timestamp (PAWS,
  RFC 7323 §5.3 R1) — is answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (first step);
  text in the window is ignored (seventh step: the peer's FIN came already);
* at the deadline the record goes (§3.10.8, time-wait timeout).

While anything else still holds the ``TcpConnection`` (a socket not yet closed, a test), the
record hands every segment and its deadline to it instead (``tcb``, a weak reference), so a TCB
someone can see behaves exactly as before and reaches CLOSED at its own time. The record does
not send D-SACK blocks or ECN echoes (a full TCB in TIME-WAIT might, for a duplicate or a CE mark).
Sans-IO like the connection: every call takes ``now``; the stack sends what they return.
"""

from __future__ import annotations

import weakref

from synack.tcp.connection import TcpConnection
from synack.tcp.input import acceptable, rst_ts_echo
from synack.tcp.events import ConnId, Dropped, LogSink, SegmentIn, SegmentOut, StateChanged, TimerFired
from synack.tcp.output import PAWS_IDLE
from synack.tcp.states import Cause, State
from synack.wire.seq import MASK, seq_le, seq_lt, seq_sub
from synack.wire.tcp import Flags, Nop, TcpSegment, Timestamps

_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_NOP = Nop()


class TimeWait:
    """One connection in TIME-WAIT, kept by ``Stack.time_wait`` under its 4-tuple ``key``."""

    # what TcpConnection.time_wait_snapshot() returns, in its order
    FIELDS = ("snd_nxt", "rcv_nxt", "rcv_wnd", "window", "max_snd_wnd", "ts_ok", "ts_recent", "ts_age",
              "ts_offset", "last_ack_sent", "chal_second", "chal_count", "expiry", "msl", "rfc5961",
              "chal_limit", "tolerate_missing_ts", "tos", "rst_timestamps")
    __slots__ = FIELDS + ("key", "tcb")

    def __init__(self, key: tuple, conn: TcpConnection) -> None:
        self.key = key
        self.refresh(conn)
        self.tcb: weakref.ref[TcpConnection] | None = weakref.ref(conn)

    def refresh(self, conn: TcpConnection) -> None:
        """Take over what ``conn`` (in TIME-WAIT) knows now."""
        (self.snd_nxt, self.rcv_nxt, self.rcv_wnd, self.window, self.max_snd_wnd, self.ts_ok, self.ts_recent,
         self.ts_age, self.ts_offset, self.last_ack_sent, self.chal_second, self.chal_count, self.expiry,
         self.msl, self.rfc5961, self.chal_limit, self.tolerate_missing_ts, self.tos,
         self.rst_timestamps) = conn.time_wait_snapshot()

    @property
    def state(self) -> State:
        return State.TIME_WAIT

    @property
    def id(self) -> ConnId:
        laddr, lport, raddr, rport = self.key
        return ConnId(str(laddr), lport, str(raddr), rport)

    def live_tcb(self) -> TcpConnection | None:
        """The ``TcpConnection`` while something else still holds it, else None."""
        return self.tcb() if self.tcb is not None else None

    # ================================================================ a segment arrives

    def receive_segment(self, seg: TcpSegment, now: float, log: LogSink = None) -> tuple[list[TcpSegment], bool]:
        """RFC 9293 §3.10.7.4 in TIME-WAIT. Returns the segments to send and whether the record
        stays (False: RST or an RFC 793 SYN ended it)."""
        cid = self.id if log else None
        if log:
            log(SegmentIn(now, cid, seg))
        out: list[TcpSegment] = []
        f = int(seg.flags)
        ts = seg.timestamps
        if self.ts_ok and not f & _RST:
            if ts is None and not self.tolerate_missing_ts:
                # RFC 7323 §3.2: a non-RST segment without TSopt SHOULD be dropped silently
                return self._drop(seg, "no timestamp option (RFC 7323 §3.2)", now, log, out)
            if ts is not None and seq_lt(ts.val, self.ts_recent) and now - self.ts_age <= PAWS_IDLE:
                self._ack(now, log, out)                      # RFC 7323 §5.3 R1: ACK and drop
                return self._drop(seg, "PAWS: SEG.TSval < TS.Recent (RFC 7323 §5.3 R1)", now, log, out)
        # ---- first: sequence number acceptability (the four cases) ----
        seg_len = len(seg.payload) + (1 if f & _SYN else 0) + (f & _FIN)
        d = seq_sub(seg.seq, self.rcv_nxt)
        end = d + seg_len
        wnd = self.rcv_wnd
        text = bool(seg.payload)
        ok = acceptable(d, seg_len, wnd)
        if wnd == 0 and d == 0 and seg_len > 0 and not f & _SYN:
            # zero window: "special allowance should be made to accept valid ACKs, URGs, and RSTs"
            self._ack(now, log, out)
            self._drop(seg, "zero window: data discarded, ACK processed", now, log, out)
            ok, text, f = True, False, f & ~_FIN
        if not ok:
            if f & _FIN and end == 0:
                # a retransmitted FIN: ACK it and restart the 2 MSL timer (eighth step)
                self.expiry = now + 2 * self.msl
            if not f & _RST:
                self._ack(now, log, out)
            return self._drop(seg, "unacceptable sequence number", now, log, out)
        # ---- second: RST ----
        if f & _RST:
            if seg.seq != self.rcv_nxt and self.rfc5961:
                self._challenge_ack(now, log, out)           # RFC 5961 §3.2
                return self._drop(seg, "RST in window but not at RCV.NXT: challenge ACK", now, log, out)
            self._close(now, Cause.RCV_RST, log)             # "enter the CLOSED state, delete the TCB"
            return out, False
        # ---- fourth: SYN ----
        if f & _SYN:
            if self.rfc5961:
                self._challenge_ack(now, log, out)           # RFC 5961 §4.2
                return self._drop(seg, "SYN in synchronized state: challenge ACK", now, log, out)
            lport, rport = self.key[1], self.key[3]
            self._emit(TcpSegment(lport, rport, self.snd_nxt, 0, Flags.RST, 0,       # RFC 793
                                  options=rst_ts_echo(seg, self.rst_timestamps)), now, log, out)
            self._close(now, Cause.ABORT, log)
            return out, False
        # ---- fifth: ACK ----
        if not f & _ACK:
            return self._drop(seg, "no ACK", now, log, out)
        if self.ts_ok and ts is not None and seq_le(seg.seq, self.last_ack_sent) \
                and (seq_le(self.ts_recent, ts.val) or now - self.ts_age > PAWS_IDLE):
            self.ts_recent, self.ts_age = ts.val, now        # RFC 7323 §5.3 R3
        a = seq_sub(seg.ack, self.snd_nxt)                   # everything we sent is acknowledged
        if a > 0:
            self._ack(now, log, out)
            return self._drop(seg, "ACK of data not yet sent", now, log, out)
        if self.rfc5961 and a < -max(self.max_snd_wnd, 1):
            self._challenge_ack(now, log, out)               # RFC 5961 §5.2
            return self._drop(seg, "ACK below SND.UNA - MAX.SND.WND: challenge ACK", now, log, out)
        # ---- seventh: text; eighth: FIN ----
        if text:
            self._drop(seg, f"text ignored in {State.TIME_WAIT}", now, log, out)
        if f & _FIN:
            self.expiry = now + 2 * self.msl                 # the FIN again: ACK, restart 2 MSL
            self._ack(now, log, out)
        return out, True

    def expire(self, now: float, log: LogSink = None) -> None:
        """The 2 MSL deadline passed (§3.10.8): TIME-WAIT -> CLOSED."""
        if log:
            log(TimerFired(now, self.id, "time_wait"))
        self._close(now, Cause.TIMEOUT_2MSL, log)

    # ================================================================ helpers

    def _close(self, now: float, cause: Cause, log: LogSink) -> None:
        if log:
            log(StateChanged(now, self.id, State.TIME_WAIT, State.CLOSED, cause.value))

    def _drop(self, seg: TcpSegment, reason: str, now: float, log: LogSink,
              out: list[TcpSegment]) -> tuple[list[TcpSegment], bool]:
        if log:
            log(Dropped(now, self.id, seg, reason))
        return out, True

    def _ack(self, now: float, log: LogSink, out: list[TcpSegment]) -> None:
        """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, with the window and timestamps the TCB would send."""
        opts = (_NOP, _NOP, Timestamps((int(now * 1000) + self.ts_offset) & MASK, self.ts_recent)) \
            if self.ts_ok else ()
        self._emit(TcpSegment(self.key[1], self.key[3], self.snd_nxt, self.rcv_nxt, Flags.ACK, self.window,
                              0, opts), now, log, out)

    def _challenge_ack(self, now: float, log: LogSink, out: list[TcpSegment]) -> None:
        """An ACK, at most ``challenge_ack_limit`` a second (RFC 5961 §7), as the TCB counts them."""
        second = int(now)
        if second != self.chal_second:
            self.chal_second, self.chal_count = second, 0
        if self.chal_count < self.chal_limit:
            self.chal_count += 1
            self._ack(now, log, out)

    def _emit(self, seg: TcpSegment, now: float, log: LogSink, out: list[TcpSegment]) -> None:
        if log:
            log(SegmentOut(now, self.id, seg))
        out.append(seg)

    def __repr__(self) -> str:
        return f"<TimeWait {self.id} expiry={self.expiry:.3f}>"


__all__ = ["TimeWait"]
