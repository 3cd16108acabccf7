"""One TCP connection (the TCB), sans-IO, as RFC 9293 describes it.

The connection is driven by three inputs, each taking ``now`` (float seconds, any monotonic
scale): user calls (``connect``, ``send``, ``receive``, ``shutdown_write``, ``close``, ``abort``),
received segments (``receive_segment``) and timers (``handle_timer``). It answers with segments to
send (``segments_to_send``), the next deadline (``next_timer``) and application events
(``next_event``). Nothing here reads a clock, opens a socket or draws a random number.

Sequence numbers on the wire wrap modulo 2**32; inside, the send and receive streams are kept as
unbounded *offsets* (offset 0 is the first data byte, the SYN is offset -1), converted at the
edge with the helpers of ``synack.wire.seq``. That keeps every comparison below wrap-free.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

from synack.tcp import congestion
from synack.tcp.config import TcpConfig
from synack.tcp.errors import (BrokenPipe, ConnectionExists, ConnectionRefused, ConnectionReset,
                               ConnectionTimedOut, HostUnreachable, LocalError, NotConnected)
from synack.tcp.events import (Closed, Connected, ConnId, CwndChanged, DataDelivered, DataReceived,
                               Dropped, EndOfStream, LogSink, Reset, RttSample, SegmentIn, SegmentOut,
                               SoftError, StateChanged, TcpEvent, TimedOut, TimerFired, Writable)
from synack.tcp.info import TcpInfo
from synack.tcp.recvbuf import ReceiveBuffer
from synack.tcp.rtt import RttEstimator
from synack.tcp.sendbuf import SendBuffer
from synack.tcp.states import Cause, State, advance
from synack.wire.seq import MASK, seq_le, seq_lt, seq_sub
from synack.wire.tcp import Flags, Mss, Nop, Sack, SackPermitted, TcpSegment, Timestamps, WindowScale

S = State
ACK, SYN, FIN, RST, PSH, URG = Flags.ACK, Flags.SYN, Flags.FIN, Flags.RST, Flags.PSH, Flags.URG
SYNCHRONIZED_DATA_STATES = (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2)   # where text is accepted


@dataclass(slots=True)
class Timers:
    """Every deadline of the connection (None = not armed). Read only through ``_due()``.
    RFC 6298 §5 (rto), RFC 9293 §3.8.6.3 (delayed_ack, MUST-40), §3.8.6.1 (persist),
    §3.8.4 (keepalive), §3.6 (time_wait, MUST-13)."""
    rto: float | None = None
    delayed_ack: float | None = None
    persist: float | None = None
    keepalive: float | None = None
    time_wait: float | None = None


class TcpConnection:
    """A TCB. Create it with the 4-tuple and the initial send sequence number (from
    ``IsnGenerator``), then ``connect(now)`` (active open) or ``listen(now)`` (passive open)."""

    def __init__(self, conn: ConnId, iss: int, config: TcpConfig | None = None, *,
                 log: LogSink = None, ts_offset: int = 0) -> None:
        self.id = conn
        self.config = cfg = config if config is not None else TcpConfig()
        self.log = log
        self.state = S.CLOSED
        self.iss = iss & MASK
        self.irs = 0
        self.ipv6 = ":" in conn.remote_addr
        self.passive = False
        self.error: LocalError | None = None   # what the next user call reports (reset, timed out)
        self.soft_error: str | None = None     # the last ICMP soft error (SO_ERROR)
        self.timers = Timers()
        self._events: deque[TcpEvent] = deque()
        self._queue: list[tuple[TcpSegment, bool]] = []   # segments decided already: RSTs, probes, rexmits
        self._now = 0.0
        # --- send side, in stream offsets: offset o <-> seq (iss + 1 + o); the SYN is offset -1 ---
        self.sndbuf = SendBuffer(cfg.snd_buf)
        self._una = -1                 # SND.UNA
        self._nxt = -1                 # SND.NXT (may be rewound below _max by an RTO)
        self._max = -1                 # highest SND.NXT ever (BSD snd_max)
        self._fin_off: int | None = None   # offset of our FIN once CLOSE was called
        self._snd_up: int | None = None    # urgent pointer (offset after the urgent data)
        self.snd_wnd = 0
        self.max_snd_wnd = 0
        self._wl1 = 0
        self._wl2 = 0
        self._was_full = False
        # --- receive side: offset o <-> seq (irs + 1 + o) ---
        self.rcvbuf = ReceiveBuffer(cfg.rcv_buf)
        self._fin_rcvd = False
        self._peer_fin_off: int | None = None   # a FIN seen beyond a hole
        self._rcv_adv = 0              # right edge of the window we advertised (seq)
        self._rcv_up: int | None = None
        self._read_closed = False      # close() was called: arriving data is answered with RST
        # --- options ---
        self.peer_mss = 1220 if self.ipv6 else 536     # RFC 9293 §3.7.1 default, MUST-15
        self.snd_wscale = 0            # shift applied to the peer's window field
        self.rcv_wscale = 0            # shift applied to ours
        self.ws_ok = self.ts_ok = self.sack_ok = False
        self.ts_recent = 0
        self._ts_recent_age = 0.0
        self._ts_offset = ts_offset & MASK
        self._last_ack_sent = 0
        self.pmtu_mss: int | None = None
        # --- ACK generation ---
        self._ack_now = False
        self._unacked_bytes = 0
        # --- retransmission and congestion ---
        self.rtt = RttEstimator(cfg.initial_rto, cfg.min_rto, cfg.max_rto)
        self._rtt_off: int | None = None
        self._rtt_time = 0.0
        self.retries = 0               # consecutive RTO expirations
        self.total_retrans = 0
        self._first_rexmit_time: float | None = None
        self.cc = congestion.get(cfg.cc)(self.mss, cfg.initial_window)
        self._dupacks = 0
        self._in_recovery = False
        self._recover = -1
        self._inflate = 0
        self._persist_backoff = 0
        self._ka_probes = 0
        self._last_rcv = 0.0
        self._last_snd = 0.0
        self._chal_second = -1
        self._chal_count = 0
        self.state_history: list[tuple[float, State]] = []

    # ================================================================ user calls (§3.10.1-3.10.6)

    def listen(self, now: float) -> None:
        """[OPEN, passive] CLOSED -> LISTEN. The next SYN from the 4-tuple's peer is accepted."""
        if self.state is not S.CLOSED:
            raise ConnectionExists("connection already exists")   # §3.10.1
        self.passive = True
        self._advance(Cause.PASSIVE_OPEN, now)

    def connect(self, now: float) -> None:
        """[OPEN, active] CLOSED -> SYN-SENT; the SYN goes out at the next ``segments_to_send``."""
        if self.state is not S.CLOSED:
            raise ConnectionExists("connection already exists")   # §3.10.1
        self._now = now
        self._advance(Cause.ACTIVE_OPEN, now)

    def send(self, data: bytes, *, urgent: bool = False) -> int:
        """[SEND] Queue bytes; returns how many were taken (fewer when the buffer is full).
        Allowed before ESTABLISHED (queued until then, §3.10.2)."""
        st = self.state
        if self.error is not None and st is S.CLOSED:
            raise self.error
        if st in (S.CLOSED, S.LISTEN):
            raise NotConnected("connection does not exist")
        if self._fin_off is not None or st in (S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK, S.TIME_WAIT):
            raise BrokenPipe("connection closing")
        n = self.sndbuf.append(bytes(data))
        if n < len(data):
            self._was_full = True
        if urgent and n:
            self._snd_up = self.sndbuf.end   # RFC 9293 §3.8.5: points after the urgent data (MUST-62)
        return n

    def receive(self, max_bytes: int = 65536) -> bytes | None:
        """[RECEIVE] Up to ``max_bytes`` in-order bytes; ``b""`` at end of stream (peer FIN);
        ``None`` when nothing is there yet. Reading opens the window (a window update may follow)."""
        data = self.rcvbuf.read(max_bytes)
        if data:
            if self.log:
                self.log(DataDelivered(self._now, self.id, len(data)))
            if self.state.synchronized or self.state is S.SYN_RECEIVED:
                self._maybe_window_update()
            return data
        if self._fin_rcvd:
            return b""
        if self.state is S.CLOSED:
            if self.error is not None:
                raise self.error
            raise NotConnected("connection does not exist")
        return None

    @property
    def readable(self) -> int:
        return self.rcvbuf.readable

    @property
    def at_eof(self) -> bool:
        return self._fin_rcvd and self.rcvbuf.readable == 0

    def shutdown_write(self, now: float) -> None:
        """[CLOSE] (half close): FIN after the queued data; receiving goes on (§3.10.4)."""
        self._now = now
        st = self.state
        if st is S.CLOSED:
            if self.error is not None:
                raise self.error
            raise NotConnected("connection does not exist")
        if st in (S.LISTEN, S.SYN_SENT):
            self._advance(Cause.CLOSE_UNSYNCED, now)              # delete the TCB
            return
        if self._fin_off is not None:
            return                                                # FIN already queued
        if st in (S.SYN_RECEIVED, S.ESTABLISHED, S.CLOSE_WAIT):
            self._fin_off = self.sndbuf.end
            self._advance(Cause.CLOSE, now)   # SYN-RECEIVED/ESTABLISHED -> FIN-WAIT-1, CLOSE-WAIT -> LAST-ACK
            return
        raise BrokenPipe("connection closing")

    def close(self, now: float) -> None:
        """[CLOSE] Full close: no more sending or receiving. With unread data, or data still
        arriving, the peer gets a RST (RFC 2525 §2.17, RFC 9293 §3.10.4)."""
        self._now = now
        self._read_closed = True
        if (self.config.rst_on_close_with_unread and self.rcvbuf.readable
                and self.state in (S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_1, S.FIN_WAIT_2, S.SYN_RECEIVED)):
            self.abort(now)
            return
        if self.state is S.CLOSED:
            return
        if self._fin_off is None:
            self.shutdown_write(now)

    def abort(self, now: float) -> None:
        """[ABORT] Send RST where the peer has state (§3.10.5), then CLOSED."""
        self._now = now
        st = self.state
        if st is S.CLOSED:
            return
        if st in (S.SYN_RECEIVED, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT):
            self._queue.append((self._segment(self._seq(self._nxt_for_rst()), RST, ack=False), False))
        self._advance(Cause.ABORT, now)

    # ================================================================ queries

    def next_event(self) -> TcpEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def next_timer(self) -> float | None:
        """Earliest deadline, or ``self._now`` when a segment is owed already. Pure query."""
        due = self._due()
        return min(due.values()) if due else None

    @property
    def mss(self) -> int:
        """Effective send MSS (RFC 9293 §3.7.1, MUST-16): the peer's MSS, our own limit and the
        path MTU, less the TCP options every segment carries (RFC 6691 §2)."""
        m = min(self.peer_mss, self.config.mss)
        if self.pmtu_mss is not None:
            m = min(m, self.pmtu_mss)
        if self.ts_ok:
            m -= 12
        return max(m, 64)

    @property
    def snd_una(self) -> int:
        return self._seq(self._una)

    @property
    def snd_nxt(self) -> int:
        return self._seq(self._nxt)

    @property
    def rcv_nxt(self) -> int:
        return (self.irs + 1 + self.rcvbuf.next_offset + (1 if self._fin_rcvd else 0)) & MASK

    @property
    def rcv_wnd(self) -> int:
        return max(seq_sub(self._rcv_adv, self.rcv_nxt), 0)

    @property
    def flight_size(self) -> int:
        return max(self._nxt - self._una, 0)

    @property
    def cwnd(self) -> int:
        return self.cc.cwnd + self._inflate

    def info(self) -> TcpInfo:
        """[STATUS] A snapshot like Linux TCP_INFO (RFC 9293 §3.10.6)."""
        return TcpInfo(
            state=self.state, rto=self.rtt.rto, rtt=self.rtt.srtt, rttvar=self.rtt.rttvar,
            snd_cwnd=self.cwnd, snd_ssthresh=self.cc.ssthresh, snd_mss=self.mss,
            rcv_mss=self.config.mss, unacked=self.flight_size, retransmits=self.retries,
            total_retrans=self.total_retrans, backoff=self.rtt.backoff_count,
            snd_wnd=self.snd_wnd, rcv_wnd=self.rcv_wnd, snd_wscale=self.snd_wscale,
            rcv_wscale=self.rcv_wscale, wscale_ok=self.ws_ok, timestamps_ok=self.ts_ok,
            sack_ok=self.sack_ok, iss=self.iss, irs=self.irs, snd_una=self.snd_una,
            snd_nxt=self.snd_nxt, rcv_nxt=self.rcv_nxt, send_queue=len(self.sndbuf),
            recv_queue=self.rcvbuf.readable, cc=self.cc.name,
            timers={k: v for k, v in asdict(self.timers).items() if v is not None})

    # ================================================================ timers (§3.10.8)

    def _due(self) -> dict[str, float]:
        """THE predicate: every armed deadline, plus "send" when a segment is owed now."""
        due = {k: t for k, t in (("rto", self.timers.rto), ("delayed_ack", self.timers.delayed_ack),
                                 ("persist", self.timers.persist), ("keepalive", self.timers.keepalive),
                                 ("time_wait", self.timers.time_wait)) if t is not None}
        if self._sendable():
            due["send"] = self._now
        return due

    def handle_timer(self, now: float) -> None:
        """Fire every timer whose deadline is <= now."""
        self._now = max(self._now, now)
        t = self.timers
        if t.time_wait is not None and t.time_wait <= now:
            t.time_wait = None
            self._trace_timer("time_wait", now)
            self._advance(Cause.TIMEOUT_2MSL, now)      # §3.10.8 time-wait timeout
            return
        if t.rto is not None and t.rto <= now:
            t.rto = None
            self._trace_timer("rto", now)
            self._on_rto(now)
        if t.persist is not None and t.persist <= now:
            t.persist = None
            self._trace_timer("persist", now)
            self._on_persist(now)
        if t.delayed_ack is not None and t.delayed_ack <= now:
            t.delayed_ack = None
            self._trace_timer("delayed_ack", now)
            self._ack_now = True
        if t.keepalive is not None and t.keepalive <= now:
            t.keepalive = None
            self._trace_timer("keepalive", now)
            self._on_keepalive(now)

    def _on_rto(self, now: float) -> None:
        """Retransmission timeout: RFC 6298 §5.4-5.6 (retransmit the earliest unacked segment,
        back off), RFC 5681 §3.1 (cwnd = 1 SMSS), RFC 9293 §3.8.3 (give up after R1/R2)."""
        st = self.state
        if st in (S.CLOSED, S.LISTEN, S.TIME_WAIT) or self._una >= self._max:
            return
        self.retries += 1
        self.total_retrans += 1
        if self._first_rexmit_time is None:
            self._first_rexmit_time = now
        limit = (self.config.syn_retries if st is S.SYN_SENT else
                 self.config.synack_retries if st is S.SYN_RECEIVED else self.config.r2_retries)
        too_old = (self.config.user_timeout is not None
                   and now - self._first_rexmit_time >= self.config.user_timeout)
        if self.retries > limit or too_old:
            self._give_up(now, "retransmissions exhausted" if st.synchronized or st is S.SYN_RECEIVED
                          else "SYN retransmissions exhausted")
            return
        self.rtt.backoff()
        if st.synchronized:
            self.cc.on_rto(now, self.flight_size)
            self._trace_cwnd(now, "rto")
        self._in_recovery = False
        self._inflate = 0
        self._dupacks = 0
        self._recover = self._max            # RFC 6582 §4: no fast retransmit for old dupacks
        self._rtt_off = None                 # Karn's algorithm (RFC 6298 §3)
        self._nxt = self._una                # go back: resend from SND.UNA
        self._arm_rto(now, self.rtt.rto + self.config.rto_slop * (self.rtt.backoff_count > 0))

    def _give_up(self, now: float, reason: str) -> None:
        self.error = ConnectionTimedOut("connection timed out")
        self._events.append(TimedOut(now, self.id, reason))
        self._advance(Cause.TIMEOUT, now)

    def _on_persist(self, now: float) -> None:
        """Zero-window probe (RFC 9293 §3.8.6.1, MUST-36): one byte of new data beyond the
        window. Probes do not count towards R2: the peer ACKing them keeps us open (MUST-37)."""
        if self.snd_wnd > 0 or self._nxt >= self.sndbuf.end or not self.state.synchronized:
            self._persist_backoff = 0
            return
        payload = self.sndbuf.peek(self._nxt, 1)
        self._emit_now(self._segment(self._seq(self._nxt), ACK, payload=payload), now, retransmit=False)
        self._persist_backoff += 1
        interval = min(self.rtt.base_rto * (1 << min(self._persist_backoff, 16)), self.config.persist_max)
        self._arm("persist", now + interval, now)

    def _on_keepalive(self, now: float) -> None:
        """Keep-alive probe: SEG.SEQ = SND.NXT-1, no data (RFC 9293 §3.8.4, MUST-26..29)."""
        if not self.config.keepalive or self.state not in (S.ESTABLISHED, S.CLOSE_WAIT):
            return
        if now - self._last_rcv < self.config.keepalive_idle - 1e-9 and self._ka_probes == 0:
            self._arm("keepalive", self._last_rcv + self.config.keepalive_idle, now)
            return
        if self._ka_probes >= self.config.keepalive_count:
            self._queue.append((self._segment(self._seq(self._nxt), RST, ack=False), False))
            self._give_up(now, "keep-alive probes unanswered")
            return
        self._ka_probes += 1
        self._emit_now(self._segment(self._seq(self._nxt - 1), ACK), now, retransmit=False)
        self._arm("keepalive", now + self.config.keepalive_interval, now)

    # ================================================================ ICMP errors (§3.9.2.2)

    # Destination Unreachable codes that are hard errors (Linux's icmp_err_convert "fatal").
    _HARD4 = {2: "protocol unreachable", 3: "port unreachable", 6: "network unknown", 7: "host unknown",
              8: "host isolated", 9: "network prohibited", 10: "host prohibited", 13: "administratively prohibited",
              14: "host precedence violation", 15: "precedence cutoff"}
    _HARD6 = {1: "administratively prohibited", 4: "port unreachable", 5: "source address failed policy",
              6: "reject route"}

    def icmp_error(self, kind: str, code: int, mtu: int, quoted_seq: int, now: float) -> bool:
        """An ICMP error quoting one of our segments. ``kind``: "unreachable" (v4),
        "unreachable6", "packet_too_big", "time_exceeded", "parameter_problem". Returns whether
        it was accepted: the quoted sequence number must be in flight (RFC 5927 §4.1)."""
        self._now = max(self._now, now)
        off = self._una + seq_sub(quoted_seq, self._seq(self._una))
        if not self._una <= off < max(self._max, self._una + 1):
            return False
        if kind == "packet_too_big" or (kind == "unreachable" and code == 4):
            return self._lower_pmtu(mtu, now)             # RFC 1191 §6.4, RFC 8201 §5.4
        hard = (self._HARD4 if kind == "unreachable" else self._HARD6 if kind == "unreachable6" else {}).get(code)
        if hard and self.state is S.SYN_SENT:
            # RFC 1122 §4.2.3.9: hard errors may abort a connection still being opened.
            refused = "port" in hard or "protocol" in hard
            self.error = ConnectionRefused("connection refused") if refused else HostUnreachable(hard)
            self._events.append(Reset(now, self.id, refused=refused))
            self._advance(Cause.ICMP_HARD_ERROR, now)
            return True
        # Soft error (RFC 5927 §5.2: in synchronized states even hard errors are soft).
        self.soft_error = f"ICMP {kind} code {code}" + (f" ({hard})" if hard else "")
        self._events.append(SoftError(now, self.id, self.soft_error))
        return True

    def _lower_pmtu(self, mtu: int, now: float) -> bool:
        if mtu <= 0:
            mtu = 576 if not self.ipv6 else 1280          # RFC 1191 §5: no MTU given
        new = max(mtu - (60 if self.ipv6 else 40), 88)
        if new >= min(self.peer_mss, self.config.mss) and self.pmtu_mss is None:
            return False
        if self.pmtu_mss is not None and new >= self.pmtu_mss:
            return False
        self.pmtu_mss = new
        self.cc.set_mss(self.mss)
        if self._nxt > self._una >= 0:
            self._nxt = self._una          # resend what is in flight in smaller segments
            self._rtt_off = None
        return True

    # ================================================================ segment arrives (§3.10.7)

    def receive_segment(self, seg: TcpSegment, now: float) -> None:
        self._now = max(self._now, now)
        if self.log:
            self.log(SegmentIn(now, self.id, seg))
        st = self.state
        if st is S.CLOSED:
            self._closed_reply(seg, now)                  # §3.10.7.1
        elif st is S.LISTEN:
            self._in_listen(seg, now)                     # §3.10.7.2
        elif st is S.SYN_SENT:
            self._in_syn_sent(seg, now)                   # §3.10.7.3
        else:
            self._in_other(seg, now)                      # §3.10.7.4

    def _drop(self, seg: TcpSegment, reason: str, now: float) -> None:
        if self.log:
            self.log(Dropped(now, self.id, seg, reason))

    def _closed_reply(self, seg: TcpSegment, now: float) -> None:
        """RFC 9293 §3.10.7.1: a RST is never answered; otherwise RST to the segment."""
        self._drop(seg, "closed", now)
        if not seg.flags & RST:
            self._queue.append((rst_for(seg), False))

    def _in_listen(self, seg: TcpSegment, now: float) -> None:
        f = seg.flags
        if f & RST:
            return self._drop(seg, "listen: RST ignored", now)          # first check
        if f & ACK:
            self._queue.append((TcpSegment(seg.dport, seg.sport, seg.ack, 0, RST, 0), False))   # second check
            return self._drop(seg, "listen: ACK answered with RST", now)
        if not f & SYN:
            return self._drop(seg, "listen: no SYN", now)               # fourth: "drop it"
        if f & FIN and self.config.drop_synfin:
            return self._drop(seg, "listen: SYN+FIN dropped (drop_synfin)", now)
        # third check, SYN: RCV.NXT = SEG.SEQ+1, IRS = SEG.SEQ, send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
        # Data on the SYN is not kept (the peer retransmits it): RFC 9293 §3.10.7.2 lets us queue it,
        # and Linux (without TFO) does not either.
        self.irs = seg.seq
        self._take_syn_options(seg, syn_ack=False)
        self._update_window_from_syn(seg)
        self._ts_from_segment(seg, now, force=True)
        self._rcv_adv = self.rcv_nxt
        self._last_rcv = now
        self._advance(Cause.RCV_SYN, now)

    def _in_syn_sent(self, seg: TcpSegment, now: float) -> None:
        f = seg.flags
        ack_ok = False
        if f & ACK:                                                     # first: the ACK
            ack_off = self._ack_off(seg.ack)
            if ack_off <= -1 or ack_off > self._max:                    # SEG.ACK =< ISS or > SND.NXT
                if not f & RST:
                    self._queue.append((TcpSegment(seg.dport, seg.sport, seg.ack, 0, RST, 0), False))
                return self._drop(seg, "syn-sent: unacceptable ACK", now)
            ack_ok = True
        if f & RST:                                                     # second: RST
            if ack_ok:    # RFC 5961 §3.2 for SYN-SENT: acceptable only if it ACKs our SYN
                self.error = ConnectionRefused("connection refused")
                self._events.append(Reset(now, self.id, refused=True))
                self._advance(Cause.RCV_RST, now)
            else:
                self._drop(seg, "syn-sent: RST without acceptable ACK", now)
            return
        if not f & SYN:                                                 # fifth
            return self._drop(seg, "syn-sent: neither SYN nor RST", now)
        # fourth: the SYN
        self.irs = seg.seq
        self._take_syn_options(seg, syn_ack=True)
        self._ts_from_segment(seg, now, force=True)
        self._rcv_adv = self.rcv_nxt
        self._last_rcv = now
        if ack_ok:
            self._new_ack(self._ack_off(seg.ack), seg, now)
            self._update_window_from_syn(seg)
            self._ack_now = True
            self._advance(Cause.RCV_SYN_ACK, now)
            if seg.payload or f & (FIN | URG):
                # "continue processing at the sixth step ... where the URG bit is checked"
                self._process_text_and_fin(seg.replace(seq=(seg.seq + 1) & MASK,
                                                       flags=f & ~SYN), now)
        else:
            # Simultaneous open (§3.5 Figure 8, MUST-10): SYN-RECEIVED, SYN,ACK with our ISS.
            self._update_window_from_syn(seg)
            self._nxt = -1                      # the SYN goes again, now with an ACK
            self._rtt_off = None
            self._advance(Cause.RCV_SYN, now)

    def _in_other(self, seg: TcpSegment, now: float) -> None:
        """SYN-RECEIVED and the synchronized states, §3.10.7.4, steps one to eight."""
        f = seg.flags
        if (self.state is S.SYN_RECEIVED and f & SYN and not f & (ACK | RST) and seg.seq == self.irs):
            # the peer retransmitted its SYN: our SYN,ACK was lost; send it again (as Linux does)
            self._nxt = -1
            return self._drop(seg, "syn-received: retransmitted SYN, SYN,ACK again", now)
        # ---- first: sequence number acceptability (the four cases) ----
        seg = self._trim_to_window(seg, now)
        if seg is None:
            return
        f = seg.flags
        # ---- second: RST ----
        if f & RST:
            return self._on_rst(seg, now)
        # ---- fourth: SYN (third, security, does not apply) ----
        if f & SYN:
            if self.state is S.SYN_RECEIVED and self.passive:
                # "return this connection to the LISTEN state": this half-open TCB goes away
                self._drop(seg, "syn-received: SYN, back to LISTEN", now)
                return self._advance(Cause.ABORT, now)
            if self.config.rfc5961:
                self._challenge_ack(now)                # RFC 5961 §4.2, RFC 9293 §3.10.7.4
                return self._drop(seg, "SYN in synchronized state: challenge ACK", now)
            self._queue.append((self._segment(self._seq(self._nxt), RST, ack=False), False))   # RFC 793
            self.error = ConnectionReset("connection reset")
            self._events.append(Reset(now, self.id))
            return self._advance(Cause.ABORT, now)
        # ---- fifth: ACK ----
        if not f & ACK:
            return self._drop(seg, "no ACK", now)
        if not self._process_ack(seg, now):
            return
        if self.state is S.CLOSED:
            return
        self._last_rcv = now
        self._ka_probes = 0
        if self.config.keepalive and self.state in (S.ESTABLISHED, S.CLOSE_WAIT):
            self._arm("keepalive", now + self.config.keepalive_idle, now)
        # ---- sixth to eighth: URG, text, FIN ----
        self._process_text_and_fin(seg, now)

    def _trim_to_window(self, seg: TcpSegment, now: float) -> TcpSegment | None:
        """First check (§3.10.7.4): the four-case acceptability test, then trim to the window.
        Unacceptable: send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (unless RST) and drop."""
        rcv_nxt, wnd = self.rcv_nxt, self.rcv_wnd
        seg_len = seg.seg_len
        d = seq_sub(seg.seq, rcv_nxt)            # where the segment starts, relative to RCV.NXT
        end = d + seg_len                        # one past its last octet
        if seg_len == 0:
            ok = (d == 0) if wnd == 0 else (0 <= d < wnd)
        elif wnd == 0:
            ok = False
        else:
            ok = (0 <= d < wnd) or (0 < end <= wnd)
        if wnd == 0 and d == 0 and seg_len > 0 and not seg.flags & SYN:
            # zero window: "special allowance should be made to accept valid ACKs, URGs, and RSTs"
            self._ack_now = True
            self._drop(seg, "zero window: data discarded, ACK processed", now)
            return seg.replace(payload=b"", flags=seg.flags & ~FIN)
        if not ok:
            if self.state is S.TIME_WAIT and seg.flags & FIN and end == 0:
                # a retransmitted FIN: ACK it and restart the 2 MSL timer (§3.10.7.4 eighth step)
                self._arm("time_wait", now + 2 * self.config.msl, now)
            if not seg.flags & RST:
                self._ack_now = True
            self._drop(seg, "unacceptable sequence number", now)
            return None
        # Trim: octets before RCV.NXT (a SYN there is an old one) and past the window.
        flags, payload, seq = seg.flags, seg.payload, seg.seq
        if d < 0:
            cut = -d
            if flags & SYN:
                flags &= ~SYN
                cut -= 1
            payload = payload[cut:]
            seq = rcv_nxt
            d = 0
        room = wnd - d - (1 if flags & SYN else 0)
        if len(payload) > room:
            payload = payload[:max(room, 0)]
            flags &= ~FIN                       # the FIN lies past the window
        if (flags, payload, seq) != (seg.flags, seg.payload, seg.seq):
            seg = seg.replace(flags=flags, payload=payload, seq=seq)
        return seg

    def _on_rst(self, seg: TcpSegment, now: float) -> None:
        """Second check (§3.10.7.4) with RFC 5961 §3.2: reset only when SEG.SEQ == RCV.NXT;
        an in-window RST gets a challenge ACK."""
        if seg.seq != self.rcv_nxt and self.config.rfc5961:
            self._challenge_ack(now)
            return self._drop(seg, "RST in window but not at RCV.NXT: challenge ACK", now)
        st = self.state
        if st is S.SYN_RECEIVED:
            if self.passive:
                self._drop(seg, "syn-received: RST, back to LISTEN", now)
                return self._advance(Cause.RCV_RST, now)
            self.error = ConnectionRefused("connection refused")
            self._events.append(Reset(now, self.id, refused=True))
        elif st in (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT):
            self.error = ConnectionReset("connection reset")
            self._events.append(Reset(now, self.id))
        self._advance(Cause.RCV_RST, now)

    def _process_ack(self, seg: TcpSegment, now: float) -> bool:
        """Fifth check (§3.10.7.4). Returns False when the segment is to be dropped."""
        ack_off = self._ack_off(seg.ack)
        st = self.state
        if st is S.SYN_RECEIVED:
            if self._una < ack_off <= self._max:
                self._advance(Cause.RCV_ACK_OF_SYN, now)
                self._update_window(seg, force=True)
                st = self.state
            else:
                self._queue.append((TcpSegment(seg.dport, seg.sport, seg.ack, 0, RST, 0), False))
                self._drop(seg, "syn-received: unacceptable ACK, RST", now)
                return False
        # RFC 5961 §5.2: acceptable when SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.NXT
        if ack_off > self._max:
            self._ack_now = True
            self._drop(seg, "ACK of data not yet sent", now)
            return False
        if self.config.rfc5961 and ack_off < self._una - max(self.max_snd_wnd, 1):
            self._challenge_ack(now)
            self._drop(seg, "ACK below SND.UNA - MAX.SND.WND: challenge ACK", now)
            return False
        if self.ts_ok:
            self._ts_from_segment(seg, now)
        if ack_off > self._una:
            self._new_ack(ack_off, seg, now)
        elif ack_off == self._una:
            self._maybe_dupack(seg, now)
        self._update_window(seg)
        # state-specific parts of the fifth step
        fin_acked = self._fin_off is not None and self._una > self._fin_off
        if st is S.FIN_WAIT_1 and fin_acked:
            self._advance(Cause.RCV_ACK_OF_FIN, now)
        elif st is S.CLOSING and fin_acked:
            self._advance(Cause.RCV_ACK_OF_FIN, now)
        elif st is S.LAST_ACK and fin_acked:
            self._advance(Cause.RCV_ACK_OF_FIN, now)
            return False
        return True

    def _new_ack(self, ack_off: int, seg: TcpSegment, now: float) -> None:
        """SND.UNA < SEG.ACK =< SND.NXT: new data (or our SYN/FIN) acknowledged."""
        acked = ack_off - self._una
        data_end = self.sndbuf.end
        self.sndbuf.ack_to(min(max(ack_off, 0), data_end))
        self._una = ack_off
        if self._nxt < self._una:
            self._nxt = self._una
        self.retries = 0
        self._first_rexmit_time = None
        self._persist_backoff = 0
        # RTT: a timestamp echo, else the one timed segment (Karn: never a retransmitted one)
        rtt = None
        ts = seg.timestamps if self.ts_ok else None
        if ts is not None and ts.ecr:
            rtt = max(((self._ts_now(now) - ts.ecr) & MASK) / 1000.0, 0.0)
            if rtt > 3600:
                rtt = None
        elif self._rtt_off is not None and ack_off > self._rtt_off:
            rtt = now - self._rtt_time
        if self._rtt_off is not None and ack_off > self._rtt_off:
            self._rtt_off = None
        if rtt is not None:
            self.rtt.sample(rtt)
            if self.log:
                self.log(RttSample(now, self.id, rtt, self.rtt.srtt, self.rtt.rttvar, self.rtt.rto))
        if self.state.synchronized or self.state is S.SYN_RECEIVED:
            self._cc_on_ack(ack_off, acked, now, rtt)
        self._dupacks = 0
        # RFC 6298 §5.2/5.3: all acked -> stop the timer, else restart it
        if self._una >= self._max:
            self.timers.rto = None
        elif not self._in_recovery or ack_off >= self._recover:
            self._arm_rto(now, self.rtt.rto)
        if self._was_full and self.sndbuf.free > 0:
            self._was_full = False
            self._events.append(Writable(now, self.id))

    def _cc_on_ack(self, ack_off: int, acked: int, now: float, rtt: float | None) -> None:
        if self._in_recovery:
            if ack_off > self._recover:
                # full ACK: leave fast recovery (RFC 6582 §3.2 step 3, RFC 5681 §3.2 step 6)
                self._in_recovery = False
                self._inflate = 0
                self.cc.on_recovery_exit(now)
                self._trace_cwnd(now, "recovery exit")
            else:
                # partial ACK (RFC 6582 §3.2 step 5): retransmit the first unacked segment,
                # deflate by the amount acked, add back one SMSS
                self._inflate = max(self._inflate - acked + self.mss, 0)
                self._retransmit_head(now)
                self._arm_rto(now, self.rtt.rto)
            return
        self.cc.on_ack(now, acked, self.flight_size + acked, rtt)
        if self.log:
            self._trace_cwnd(now, "ack")

    def _maybe_dupack(self, seg: TcpSegment, now: float) -> None:
        """RFC 5681 §2 duplicate ACK; fast retransmit on the third (§3.2), NewReno (RFC 6582)."""
        if (seg.payload or seg.flags & (SYN | FIN) or self._una >= self._max
                or (seg.window << self.snd_wscale) != self.snd_wnd):
            return
        self._dupacks += 1
        if self._in_recovery:
            self._inflate += self.mss                     # RFC 5681 §3.2 step 4
            return
        if self._dupacks == 3 and self._una >= self._recover:   # RFC 6582 §3.2 step 1 / §4
            self._in_recovery = True
            self._recover = self._max
            self.cc.on_congestion_event(now, self.flight_size)
            self._inflate = 3 * self.mss                  # RFC 5681 §3.2 step 3
            self._trace_cwnd(now, "fast retransmit")
            self._retransmit_head(now)
            self._arm_rto(now, self.rtt.rto)

    def _retransmit_head(self, now: float) -> None:
        """Resend the first unacknowledged segment (data or FIN)."""
        off = self._una
        if off < 0:
            return
        n = min(self.mss, max(self.sndbuf.end - off, 0))
        payload = self.sndbuf.peek(off, n) if n else b""
        fin = self._fin_off is not None and off + n == self._fin_off
        if not payload and not fin:
            return
        flags = ACK | (PSH if payload and off + n == self.sndbuf.end else 0) | (FIN if fin else 0)
        self._rtt_off = None
        self.total_retrans += 1
        self._emit_now(self._segment(self._seq(off), flags, payload=payload), now, retransmit=True)

    def _update_window(self, seg: TcpSegment, force: bool = False) -> None:
        """SND.WND update guarded by SND.WL1/SND.WL2 (§3.10.7.4 fifth step)."""
        if force or seq_lt(self._wl1, seg.seq) or (self._wl1 == seg.seq and seq_le(self._wl2, seg.ack)):
            self.snd_wnd = seg.window << self.snd_wscale
            self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
            self._wl1, self._wl2 = seg.seq, seg.ack
            if self.snd_wnd > 0 and self.timers.persist is not None:
                self.timers.persist = None
                self._persist_backoff = 0

    def _process_text_and_fin(self, seg: TcpSegment, now: float) -> None:
        st = self.state
        f = seg.flags
        # ---- sixth: URG (§3.8.5, MUST-30/31) ----
        if f & URG and st in SYNCHRONIZED_DATA_STATES + (S.SYN_RECEIVED,):
            up = (seg.seq + seg.urgent) & MASK
            if self._rcv_up is None or seq_lt(self._rcv_up, up):
                self._rcv_up = up
        # ---- seventh: segment text ----
        if seg.payload:
            if st not in SYNCHRONIZED_DATA_STATES:
                self._drop(seg, f"text ignored in {st}", now)       # after the peer's FIN
            elif self._read_closed and self.config.rst_on_close_with_unread:
                # data for an application that closed: RFC 9293 §3.10.4 / RFC 2525 §2.17
                self._queue.append((self._segment(self._seq(self._nxt), RST, ack=False), False))
                self.error = ConnectionReset("connection reset")
                self._advance(Cause.ABORT, now)
                return
            else:
                self._take_text(seg, now)
        # ---- eighth: FIN ----
        if f & FIN and st not in (S.CLOSED, S.LISTEN, S.SYN_SENT):
            off = self.rcvbuf.next_offset + seq_sub(seg.seq, self.rcv_nxt) + len(seg.payload)
            if self._fin_rcvd:
                self._ack_now = True                            # a repeated FIN: ACK it again
                if self.state is S.TIME_WAIT:
                    self._arm("time_wait", now + 2 * self.config.msl, now)
            elif off == self.rcvbuf.next_offset:
                self._take_fin(now)
            else:
                self._peer_fin_off = off                        # the FIN waits for the hole to fill
                self._ack_now = True

    def _take_text(self, seg: TcpSegment, now: float) -> None:
        had_gap = self.rcvbuf.ooo_bytes > 0
        off = self.rcvbuf.next_offset + seq_sub(seg.seq, self.rcv_nxt)
        in_order = off == self.rcvbuf.next_offset
        advanced = self.rcvbuf.insert(off, seg.payload)
        if advanced:
            self._events.append(DataReceived(now, self.id, advanced, urgent=self._urgent_pending()))
        # When to ACK (§3.8.6.3, RFC 5681 §4.2): at once for out-of-order data and for data that
        # fills a hole; otherwise at least every second full-sized segment, else after ack_delay.
        if not in_order or had_gap:
            self._ack_now = True
        else:
            self._unacked_bytes += len(seg.payload)
            if (self.config.ack_delay is None
                    or self._unacked_bytes >= self.config.ack_every * min(self.config.mss, self.peer_mss)):
                self._ack_now = True
            elif self.timers.delayed_ack is None:
                self._arm("delayed_ack", now + self.config.ack_delay, now)
        if self._peer_fin_off is not None and self.rcvbuf.next_offset == self._peer_fin_off:
            self._take_fin(now)

    def _urgent_pending(self) -> bool:
        return self._rcv_up is not None and seq_lt(self.rcv_nxt, (self._rcv_up + 1) & MASK)

    def _take_fin(self, now: float) -> None:
        """The FIN is in order: RCV.NXT advances over it, ACK it, signal end of stream."""
        self._fin_rcvd = True
        self._peer_fin_off = None
        self._ack_now = True
        self._events.append(EndOfStream(now, self.id))
        st = self.state
        if st in (S.SYN_RECEIVED, S.ESTABLISHED, S.FIN_WAIT_2):
            self._advance(Cause.RCV_FIN, now)
        elif st is S.FIN_WAIT_1:
            fin_acked = self._fin_off is not None and self._una > self._fin_off
            self._advance(Cause.RCV_FIN_ACK_OF_FIN if fin_acked else Cause.RCV_FIN, now)

    def _challenge_ack(self, now: float) -> None:
        """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, at most challenge_ack_limit a second (RFC 5961 §7)."""
        second = int(now)
        if second != self._chal_second:
            self._chal_second, self._chal_count = second, 0
        if self._chal_count < self.config.challenge_ack_limit:
            self._chal_count += 1
            self._ack_now = True

    # ================================================================ options and windows

    def _take_syn_options(self, seg: TcpSegment, syn_ack: bool) -> None:
        """Negotiate from the peer's SYN (or SYN-ACK): MSS (MUST-14/15), window scale (only when
        both SYNs carry it, RFC 7323 §2.2), SACK-permitted (RFC 2018 §2), timestamps (RFC 7323 §3.2)."""
        cfg = self.config
        if seg.mss is not None:
            self.peer_mss = max(seg.mss, 64)
        if cfg.window_scaling and seg.wscale is not None:
            self.ws_ok = True
            self.snd_wscale = min(seg.wscale, 14)         # RFC 7323 §2.3: shifts above 14 are 14
            self.rcv_wscale = cfg.offered_wscale()
        else:
            self.ws_ok = False
            self.snd_wscale = self.rcv_wscale = 0
        self.sack_ok = cfg.sack and seg.sack_permitted
        self.ts_ok = cfg.timestamps and seg.timestamps is not None
        self.cc.set_mss(self.mss)

    def _update_window_from_syn(self, seg: TcpSegment) -> None:
        self.snd_wnd = seg.window                        # never scaled in a SYN (RFC 7323 §2.2)
        self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
        self._wl1, self._wl2 = seg.seq, seg.ack

    def _ts_from_segment(self, seg: TcpSegment, now: float, force: bool = False) -> None:
        """TS.Recent (RFC 7323 §4.3): take TSval of a segment that covers Last.ACK.sent."""
        ts = seg.timestamps
        if ts is None:
            return
        if force or (seq_le(seg.seq, self._last_ack_sent) and not seq_lt(self._last_ack_sent, seg.seq)):
            self.ts_recent = ts.val
            self._ts_recent_age = now

    def _ts_now(self, now: float) -> int:
        return (int(now * 1000) + self._ts_offset) & MASK

    def _syn_options(self, syn_ack: bool, now: float) -> tuple:
        cfg = self.config
        mss = Mss(min(cfg.mss, self.pmtu_mss + (12 if self.ts_ok else 0)) if self.pmtu_mss else cfg.mss)
        if syn_ack:
            ws = self.ws_ok
            sack = self.sack_ok
            ts = Timestamps(self._ts_now(now), self.ts_recent) if self.ts_ok else None
        else:
            ws, sack = cfg.window_scaling, cfg.sack
            ts = Timestamps(self._ts_now(now), 0) if cfg.timestamps else None
        wscale = WindowScale(cfg.offered_wscale()) if ws else None
        opts: list = [mss]
        if cfg.syn_option_order == "freebsd":
            if wscale:
                opts += [Nop(), wscale]
            if sack:
                opts += [SackPermitted()] if ts else [Nop(), Nop(), SackPermitted()]
            if ts:
                opts += [ts] if sack else [Nop(), Nop(), ts]
        else:   # Linux: mss, sackOK, TS, nop, wscale
            if sack and ts:
                opts += [SackPermitted(), ts]
            elif ts:
                opts += [Nop(), Nop(), ts]
            elif sack:
                opts += [Nop(), Nop(), SackPermitted()]
            if wscale:
                opts += [Nop(), wscale]
        return tuple(opts)

    def _advertise_window(self) -> int:
        """The window field for a non-SYN segment, with receiver-side SWS avoidance
        (RFC 9293 §3.8.6.2.2): the right edge moves only by at least min(buffer/2, MSS), and
        never moves left (RFC 7323 §2.4: no shrinking)."""
        rcv_nxt = self.rcv_nxt
        cur = max(seq_sub(self._rcv_adv, rcv_nxt), 0)
        free = self.rcvbuf.window
        step = min(self.rcvbuf.capacity // 2, self.config.mss)
        new = free if free - cur >= step or free >= self.rcvbuf.capacity else cur
        new = max(new, cur)
        field = min(new >> self.rcv_wscale, 65535)
        edge = (rcv_nxt + (field << self.rcv_wscale)) & MASK
        if seq_lt(self._rcv_adv, edge):
            self._rcv_adv = edge
        return field

    def _maybe_window_update(self) -> None:
        """After the application reads: send a window update if the window opens by at least
        the SWS threshold (RFC 9293 §3.8.6.2.2; RFC 1122 §4.2.3.3)."""
        cur = max(seq_sub(self._rcv_adv, self.rcv_nxt), 0)
        if self.rcvbuf.window - cur >= max(min(self.rcvbuf.capacity // 2, 2 * self.config.mss), 1):
            self._ack_now = True

    # ================================================================ output

    def _seq(self, off: int) -> int:
        return (self.iss + 1 + off) & MASK

    def _ack_off(self, ack: int) -> int:
        return self._una + seq_sub(ack, self._seq(self._una))

    def _nxt_for_rst(self) -> int:
        return self._max if self._max > self._nxt else self._nxt

    def _segment(self, seq: int, flags: Flags, payload: bytes = b"", *, ack: bool = True,
                 options: tuple = ()) -> TcpSegment:
        """Build an outgoing segment of this connection (window, ACK and options filled in)."""
        if ack and flags & ACK:
            ackno = self.rcv_nxt
            window = self._advertise_window() if not flags & SYN else min(
                self.config.syn_window if self.config.syn_window is not None else self.rcvbuf.capacity, 65535)
        else:
            ackno, window = 0, 0
            flags &= ~ACK
        if not flags & SYN and self.ts_ok and not flags & RST:
            options = (Nop(), Nop(), Timestamps(self._ts_now(self._now), self.ts_recent)) + options
        if self.sack_ok and flags & ACK and not flags & SYN and self.rcvbuf.ooo_bytes:
            base = self.irs + 1
            blocks = tuple(((base + a) & MASK, (base + b) & MASK)
                           for a, b in self.rcvbuf.sack_ranges(3 if self.ts_ok else 4))
            if blocks:
                options = options + (Nop(), Nop(), Sack(blocks))
        urgent = 0
        if self._snd_up is not None and payload:
            up_rel = seq_sub(self._seq(self._snd_up), seq)
            if up_rel > 0:
                flags |= URG
                urgent = min(up_rel, 65535)
        return TcpSegment(self.id.local_port, self.id.remote_port, seq, ackno, flags, window,
                          urgent, options, payload)

    def _sendable(self) -> bool:
        """Is a segment owed right now? (No side effects: this feeds next_timer.)"""
        if self._queue or self._ack_now:
            return True
        st = self.state
        if st in (S.SYN_SENT, S.SYN_RECEIVED) and self._nxt < 0:
            return True
        if not st.synchronized or st is S.TIME_WAIT or self._una < 0:
            return False
        return self._next_data_segment(dry_run=True) is not None

    def _next_data_segment(self, dry_run: bool = False) -> tuple[int, bool] | None:
        """How many data bytes (and whether the FIN) to send next at SND.NXT, or None.
        Applies the send window, cwnd, sender SWS avoidance (§3.8.6.2.1) and Nagle (RFC 896)."""
        nxt = self._nxt
        end = self.sndbuf.end
        fin_pending = self._fin_off is not None and nxt <= self._fin_off
        avail = end - nxt
        if avail <= 0:
            return (0, True) if fin_pending else None
        usable = self._una + min(self.snd_wnd, self.cwnd) - nxt
        mss = self.mss
        n = min(avail, mss, usable)
        if n <= 0:
            return None
        if n < mss:
            if n < avail:
                # window-limited and less than a full segment: SWS avoidance — send only if at
                # least half the largest window the peer ever offered (§3.8.6.2.1)
                if n < self.max_snd_wnd // 2:
                    return None
            elif (self.config.nagle and self._nxt > self._una and self._fin_off is None
                    and not self._in_recovery):
                return None                     # Nagle: a small tail waits for the ACK
        fin = fin_pending and nxt + n == self._fin_off
        return (n, fin)

    def segments_to_send(self, now: float) -> list[TcpSegment]:
        """Every segment owed at ``now`` (due timers are handled first)."""
        self._now = max(self._now, now)
        if any(t <= now for k, t in self._due().items() if k != "send"):
            self.handle_timer(now)
        out: list[TcpSegment] = []
        if self._queue:
            for seg, retransmit in self._queue:
                out.append(seg)
                self._trace_out(seg, now, retransmit)
            self._queue = []
        st = self.state
        if st is S.SYN_SENT and self._nxt < 0:
            out.append(self._send_syn(now, SYN))
        elif st is S.SYN_RECEIVED and self._nxt < 0:
            out.append(self._send_syn(now, SYN | ACK))
        if st.synchronized and st is not S.TIME_WAIT and self._una >= 0:
            while (nf := self._next_data_segment()) is not None:
                n, fin = nf
                off = self._nxt
                payload = self.sndbuf.peek(off, n) if n else b""
                flags = ACK | (FIN if fin else 0) | (PSH if payload and off + n == self.sndbuf.end else 0)
                retransmit = off < self._max
                seg = self._segment(self._seq(off), flags, payload)
                self._nxt = off + n + (1 if fin else 0)
                if retransmit:
                    self.total_retrans += 1 if off == self._una else 0
                elif self._rtt_off is None and payload:
                    self._rtt_off, self._rtt_time = off, now
                self._max = max(self._max, self._nxt)
                if self.timers.rto is None:
                    self._arm_rto(now, self.rtt.rto)                 # RFC 6298 §5.1
                out.append(self._note_sent(seg, now, retransmit))
            self._check_persist(now)
        if self._ack_now and (st.synchronized or st is S.SYN_RECEIVED):
            out.append(self._note_sent(self._segment(self._seq(self._nxt), ACK), now, False))
        return out

    def _send_syn(self, now: float, flags: Flags) -> TcpSegment:
        retransmit = self._max >= 0
        seg = self._segment(self.iss, flags, options=self._syn_options(bool(flags & ACK), now),
                            ack=bool(flags & ACK))
        self._nxt = 0
        self._max = max(self._max, 0)
        if not retransmit:
            self._rtt_off, self._rtt_time = -1, now
        if self.timers.rto is None:
            self._arm_rto(now, self.rtt.rto)
        return self._note_sent(seg, now, retransmit)

    def _note_sent(self, seg: TcpSegment, now: float, retransmit: bool) -> TcpSegment:
        """Book-keeping for a segment leaving from segments_to_send."""
        self._book_ack(seg, now)
        self._trace_out(seg, now, retransmit)
        return seg

    def _book_ack(self, seg: TcpSegment, now: float) -> None:
        """Every segment carrying an ACK settles what was owed (delayed ACK, window update)."""
        if seg.flags & ACK:
            self._ack_now = False
            self._unacked_bytes = 0
            self.timers.delayed_ack = None
            self._last_ack_sent = seg.ack
        self._last_snd = now

    def _emit_now(self, seg: TcpSegment, now: float, retransmit: bool) -> None:
        """Queue a segment built outside segments_to_send (retransmissions, probes)."""
        self._book_ack(seg, now)
        self._queue.append((seg, retransmit))

    def _check_persist(self, now: float) -> None:
        """Arm the persist timer when data waits behind a zero window and nothing is in flight."""
        if (self.snd_wnd == 0 and self._nxt < self.sndbuf.end and self._una >= self._max
                and self.timers.persist is None):
            interval = min(self.rtt.rto * (1 << min(self._persist_backoff, 16)), self.config.persist_max)
            self._arm("persist", now + interval, now)

    # ================================================================ book-keeping

    def _trace_out(self, seg: TcpSegment, now: float, retransmit: bool = False) -> None:
        if self.log:
            self.log(SegmentOut(now, self.id, seg, retransmit))

    def _trace_timer(self, name: str, now: float) -> None:
        if self.log:
            self.log(TimerFired(now, self.id, name))

    def _trace_cwnd(self, now: float, reason: str) -> None:
        if self.log:
            self.log(CwndChanged(now, self.id, self.cwnd, self.cc.ssthresh, reason))

    def _arm(self, name: str, deadline: float, now: float) -> None:
        setattr(self.timers, name, deadline)

    def _arm_rto(self, now: float, rto: float) -> None:
        self.timers.rto = now + rto

    def _advance(self, cause: Cause, now: float) -> None:
        """The only writer of ``self.state`` (STYLE §4): the table says where ``cause`` leads."""
        old = self.state
        new = advance(old, cause)
        self.state = new
        self.state_history.append((now, new))
        self._events.append(StateChanged(now, self.id, old, new, cause.value))
        if self.log:
            self.log(self._events[-1])
        if new is S.ESTABLISHED:
            self._events.append(Connected(now, self.id))
            if self.config.keepalive:
                self._arm("keepalive", now + self.config.keepalive_idle, now)
        elif new is S.TIME_WAIT:
            t = self.timers
            t.rto = t.persist = t.keepalive = t.delayed_ack = None
            t.time_wait = now + 2 * self.config.msl             # MUST-13
        elif new is S.CLOSED:
            self.timers = Timers()
            self._ack_now = False
            self._events.append(Closed(now, self.id))


def rst_for(seg: TcpSegment) -> TcpSegment:
    """The RST answering a segment that has no connection (RFC 9293 §3.10.7.1; never for a RST):
    ACK-bearing -> <SEQ=SEG.ACK><CTL=RST>; else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    if seg.flags & ACK:
        return TcpSegment(seg.dport, seg.sport, seg.ack, 0, RST, 0)
    return TcpSegment(seg.dport, seg.sport, 0, (seg.seq + seg.seg_len) & MASK, RST | ACK, 0)


__all__ = ["TcpConnection", "Timers", "rst_for", "SoftError"]
