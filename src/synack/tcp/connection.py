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
from operator import attrgetter
from dataclasses import asdict, dataclass

from synack.tcp import congestion
from synack.tcp.config import TcpConfig
from synack.tcp.errors import BrokenPipe, ConnectionExists, ConnectionTimedOut, LocalError, NotConnected
from synack.tcp.events import (Closed, Connected, ConnId, CwndChanged, DataDelivered, LogSink, RtoBackoff,
                               SegmentOut, SoftError, StateChanged, TcpEvent, TimedOut, TimerFired)
from synack.tcp.ecn import _NO_ECT, EcnMixin
from synack.tcp.info import TcpInfo
from synack.tcp.input import InputMixin, rst_for
from synack.tcp.output import _NO_DEADLINES, OutputMixin
from synack.tcp.rack import Rack, Tlp
from synack.tcp.recovery import RecoveryMixin
from synack.tcp.recvbuf import ReceiveBuffer
from synack.tcp.rtt import RttEstimator
from synack.tcp.sack import Scoreboard
from synack.tcp.sendbuf import SendBuffer
from synack.tcp.states import _BY_NAME, Cause, State, advance
from synack.wire.frozen import maker
from synack.wire.seq import HALF, MASK
from synack.wire.tcp import Flags, TcpSegment

S = State
ACK, SYN, FIN, RST, PSH, URG = Flags.ACK, Flags.SYN, Flags.FIN, Flags.RST, Flags.PSH, Flags.URG
# The states as module globals: a member read off the Enum class (``State.CLOSED``) goes through
# EnumType.__getattr__'s attribute hook, some ten times the cost of reading a global, and the
# user calls and the output path test the state several times per segment.
CLOSED, LISTEN, SYN_SENT, SYN_RECEIVED = S.CLOSED, S.LISTEN, S.SYN_SENT, S.SYN_RECEIVED
ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT = S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT
CLOSING, LAST_ACK, TIME_WAIT = S.CLOSING, S.LAST_ACK, S.TIME_WAIT
SYNCHRONIZED_DATA_STATES = (ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2)   # where text is accepted
_PASSIVE_OPEN, _CLOSE = Cause.PASSIVE_OPEN, Cause.CLOSE   # (causes every served connection takes: globals too)
# StateChanged(...), Connected(...), Closed(...) without the class call (synack.wire.frozen.maker)
_state_changed, _connected, _closed = maker(StateChanged), maker(Connected), maker(Closed)


@dataclass(slots=True)
class Timers:
    """Every deadline of the connection (None = not armed). Read only through ``_due()``.
    RFC 6298 §5 (rto), RFC 9293 §3.8.6.3 (delayed_ack, MUST-40), §3.8.6.1 (persist),
    §3.8.4 (keepalive), §3.6 (time_wait, MUST-13), RFC 8985 §5.4 (rack: the reordering timer,
    tlp: the probe timeout; both sooner than the RTO, which stays armed as the last resort)."""
    rto: float | None = None
    delayed_ack: float | None = None
    persist: float | None = None
    keepalive: float | None = None
    time_wait: float | None = None
    rack: float | None = None
    tlp: float | None = None
    connect: float | None = None    # the opening's deadline (TcpConfig.connect_timeout)
    fin_wait_2: float | None = None  # an orphaned FIN-WAIT-2 gives up (TcpConfig.fin_wait_2_timeout)
    ecn_hold: float | None = None   # an ECE at cwnd = 1 SMSS: new data waits for it (RFC 3168 §6.1.2)


# ``t.deadlines(t)``: every field of ``t`` as a tuple, in one C call (segments_to_send asks per pass)
Timers.deadlines = staticmethod(attrgetter(*Timers.__slots__))
if _NO_DEADLINES != (None,) * len(Timers.__slots__):   # what segments_to_send compares it with
    raise TypeError("output._NO_DEADLINES must have one None per field of Timers")


class TcpConnection(InputMixin, OutputMixin, RecoveryMixin, EcnMixin):
    """A TCB. Create it with the 4-tuple and the initial send sequence number (from
    ``IsnGenerator``), then ``connect(now)`` (active open) or ``listen(now)`` (passive open)."""

    # Every attribute, here and in the mixins: no per-connection __dict__ (memory per TCB).
    __slots__ = (
        '_ack_now', '_ce_in', '_chal_count', '_chal_second', '_cwnd_full', '_cwnd_used', '_cwnd_used_end', '_dsack', '_dsack_seg', '_dupacks',
        '_ecn_cwr', '_ecn_echo', '_ecn_high', '_ecn_plain_syn', '_ect_new', '_ect_out', '_events',
        '_fin_off', '_fin_rcvd', '_first_rexmit_time', '_gbn_end', '_ghost', '_ghost_until', '_high_rxt', '_idle_pass', '_in_recovery',
        '_inflate', '_ka_probes', '_last_ack_sent', '_last_data_rcv', '_last_data_snd',
        '_last_rcv', '_last_snd', '_lt_credit', '_lt_sent', '_max', '_now', '_nxt', '_out_una', '_partial_acked',
        '_peer_fin_off', '_persist_backoff', '_pingpong', '_probe_end', '_prr_cwnd',
        '_prr_delivered', '_prr_out', '_queue', '_quickacks', '_rcv_adv', '_rcv_up',
        '_rcv_wnd_max', '_read_closed', '_recover', '_recover_fs', '_rescue_rxt', '_rto_recovery', '_rtt_off',
        '_rtt_time', '_sml', '_snd_up', '_syn_rexmits', '_synack_fresh', '_tlp_flight',
        '_ts_offset', '_ts_recent_age', '_una', '_undo', '_unacked_bytes', '_unacked_segs', '_was_full',
        '_wl1', '_wl2', 'cc', 'config', 'ecn_ok', 'error', 'id', 'ipv6', 'irs', 'iss', 'log',
        'max_snd_wnd', 'passive', 'peer_mss', 'pmtu_mss', 'rack', 'rcv_wscale', 'rcvbuf',
        'retries', 'rtt', 'sack_ok', 'sb', 'snd_wnd', 'snd_wscale', 'sndbuf', 'soft_error',
        'state', 'state_history', 'timers', 'tlp', 'total_retrans', 'ts_ok', 'ts_recent', 'ws_ok',
        '__weakref__',     # a compact TIME-WAIT record (synack.stack.timewait) refers to its TCB weakly
    )

    def __init__(self, conn: ConnId, iss: int, config: TcpConfig | None = None, *,
                 log: LogSink = None, ts_offset: int = 0) -> None:
        self.id = conn
        self.config = cfg = config if config is not None else TcpConfig()
        self.log = log
        self.state = CLOSED
        self.iss = iss & MASK
        self.irs = 0
        self.ipv6 = ":" in conn.remote_addr
        self.passive = False
        self._synack_fresh = False     # the next SYN,ACK answers a simultaneous open's SYN
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
        self._rcv_wnd_max = 0          # the largest window we have advertised
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
        self._unacked_segs = 0         # in-order data segments not yet ACKed (ack_count_segments)
        self._quickacks = 0            # segments still to ACK at once (TcpConfig.quickack)
        self._last_data_rcv: float | None = None   # when in-order data last arrived
        self._pingpong = False         # interactive: ACKs wait to ride on replies (quickack_pingpong)
        # --- ECN (RFC 3168 §6.1) ---
        self.ecn_ok = False            # negotiated: ECT on our new data, CE answered with ECE
        self._ecn_plain_syn = False    # a non-ECN-setup SYN went out after ECN-setup ones (§6.1.1)
        self._ecn_echo = False         # receiver: ECE on what we send until a CWR arrives (§6.1.3)
        self._ecn_cwr = False          # sender: CWR on the next new data segment (§6.1.2)
        self._ecn_high = -1            # offset of SND.MAX at the last window reduction
        self._ce_in = False            # the segment being processed arrived with CE
        # ECT(0) segments not yet returned, and those of the last segments_to_send: both the
        # shared empty _NO_ECT (never written) until ECN is negotiated (EcnMixin._ecn_take_syn)
        self._ect_new: dict[int, TcpSegment] = _NO_ECT
        self._ect_out: dict[int, TcpSegment] = _NO_ECT
        # --- retransmission and congestion ---
        self.rtt = RttEstimator(cfg.initial_rto, cfg.min_rto, cfg.max_rto)
        self._rtt_off: int | None = None
        self._rtt_time = 0.0
        self.retries = 0               # consecutive RTO expirations
        self.total_retrans = 0
        self._first_rexmit_time: float | None = None
        self._syn_rexmits = 0          # SYN or SYN,ACK retransmissions by the timer (RFC 6298 §5.7)
        self.cc = congestion.make(cfg, self._eff_mss())
        self._dupacks = 0
        self._in_recovery = False
        self._recover = -1
        self._inflate = 0
        self._lt_sent = 0              # RFC 3042 bytes sent on the current duplicate ACKs
        self._lt_credit = 0            # bytes the last ACK's cumulative part let out (not RFC 3042's)
        self._out_una = 0              # SND.UNA at the end of the last output pass
        self._partial_acked = False    # a partial ACK came in this NewReno recovery (RFC 6582)
        self._cwnd_used = 0            # the most in flight in the window of data ending at ...
        self._cwnd_used_end = 0        # ... this offset, and whether it filled cwnd
        self._cwnd_full = True         # (_note_cwnd_use, _cwnd_limited)
        # Go-back-N after a timeout without SACK (see _note_go_back_n): the end of the resent
        # range, and the resent segments a cumulative ACK overtook that are still in the network
        self._gbn_end = -1
        # A fast retransmit without SACK: the controller before it and the retransmission's
        # TSval, to undo the reduction when the ACKs show the original arrived (Eifel detection)
        self._undo: tuple | None = None
        self._ghost = 0
        self._ghost_until = 0.0
        self._last_data_snd: float | None = None   # when data last left (RFC 5681 §4.1)
        self._sml = -1                 # end of the last small segment sent (Minshall's Nagle)
        self._idle_pass = False        # an output pass that began with nothing in flight (nagle_idle_tail)
        # --- SACK loss recovery (recovery.py): scoreboard, RACK-TLP, PRR ---
        self.sb = Scoreboard()
        self.rack = Rack()
        self.tlp = Tlp()
        self._rto_recovery = False
        self._high_rxt = 0             # RFC 6675 HighRxt (offset one past it)
        self._rescue_rxt: int | None = None   # RFC 6675 RescueRxt (offset one past it)
        self._prr_delivered = 0        # RFC 6937 §3
        self._prr_out = 0
        self._recover_fs = 1
        self._prr_cwnd = 0
        self._tlp_flight = 0
        self._dsack: tuple[int, int] | None = None   # receive offsets of a duplicate to report
        self._dsack_seg = False        # the segment being processed set _dsack already
        self._persist_backoff = 0
        self._ka_probes = 0
        self._probe_end = -1           # one past the octet a zero-window probe carried (offset)
        self._last_rcv = 0.0
        self._last_snd = 0.0
        self._chal_second = -1
        self._chal_count = 0
        self.state_history: list[tuple[float, State]] = []

    # ================================================================ user calls (§3.10.1-3.10.6)

    def listen(self, now: float) -> None:
        """[OPEN, passive] CLOSED -> LISTEN. The next SYN from the 4-tuple's peer is accepted."""
        if self.state is not CLOSED:
            raise ConnectionExists("connection already exists")   # §3.10.1
        self.passive = True
        self._advance(_PASSIVE_OPEN, now)

    def connect(self, now: float) -> None:
        """[OPEN, active] CLOSED -> SYN-SENT; the SYN goes out at the next ``segments_to_send``."""
        if self.state is not CLOSED:
            raise ConnectionExists("connection already exists")   # §3.10.1
        self._now = now
        self._advance(Cause.ACTIVE_OPEN, now)

    def send(self, data: bytes, *, urgent: bool = False) -> int:
        """[SEND] Queue bytes; returns how many were taken (fewer when the buffer is full).
        Allowed before ESTABLISHED (queued until then, §3.10.2)."""
        st = self.state
        if self.error is not None and st is CLOSED:
            raise self.error
        if st in (CLOSED, LISTEN):
            raise NotConnected("connection does not exist")
        if self._fin_off is not None or st in (FIN_WAIT_1, FIN_WAIT_2, CLOSING, LAST_ACK, TIME_WAIT):
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
        rb = self.rcvbuf
        data = rb.read(max_bytes) if rb._ready else b""    # (nothing in order: read() says b"")
        if data:
            if self.log:
                self.log(DataDelivered(self._now, self.id, len(data)))
            if self.state.synchronized or self.state is SYN_RECEIVED:
                self._maybe_window_update()
            return data
        if self._fin_rcvd:
            return b""
        if self.state is CLOSED:
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
        if st is CLOSED:
            if self.error is not None:
                raise self.error
            raise NotConnected("connection does not exist")
        if st in (LISTEN, SYN_SENT):
            self._advance(Cause.CLOSE_UNSYNCED, now)              # delete the TCB
            return
        if st in (CLOSING, LAST_ACK, TIME_WAIT):
            raise BrokenPipe("connection closing")                # §3.10.4
        if self._fin_off is not None:
            # FIN-WAIT-1/2: "An 'ok' response would be acceptable, too, as long as a second FIN
            # is not emitted" (§3.10.4); Linux's shutdown(SHUT_WR) repeated returns 0 too.
            return
        if st in (SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT):
            self._fin_off = self.sndbuf.end
            self._advance(_CLOSE, now)   # SYN-RECEIVED/ESTABLISHED -> FIN-WAIT-1, CLOSE-WAIT -> LAST-ACK
            return
        raise BrokenPipe("connection closing")

    def close(self, now: float) -> None:
        """[CLOSE] Full close: no more sending or receiving. With unread data, or data still
        arriving, the peer gets a RST (RFC 2525 §2.17, RFC 9293 §3.10.4). Unlike
        ``shutdown_write`` it never raises: like close(2) on a socket it may be called in any
        state, again and again (CLOSED, CLOSING, LAST-ACK, TIME-WAIT: nothing to do)."""
        self._now = now
        self._read_closed = True
        self._arm_fin_wait_2(now)
        if (self.config.rst_on_close_with_unread and self.rcvbuf._ready     # (rcvbuf.readable)
                and self.state in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, FIN_WAIT_2, SYN_RECEIVED)):
            self.abort(now)
            return
        if self.state is CLOSED:
            return
        if self._fin_off is None:
            self.shutdown_write(now)

    def abort(self, now: float) -> None:
        """[ABORT] Send RST where the peer has state (§3.10.5), then CLOSED. In CLOSED it does
        nothing (§3.10.5 would say "connection does not exist"; an abort after a reset or a
        timeout is routine for a socket layer, so it is no error here, like SO_LINGER 0 close)."""
        self._now = now
        st = self.state
        if st is CLOSED:
            return
        if st in (SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT):
            with_ack = self.config.rst_ack_on_abort
            # RFC 7323 §5.2: "If an <RST> is being generated because of a user abort, and
            # Snd.TS.OK is set, then a Timestamps option SHOULD be included in the <RST>"
            self._queue.append((self._segment(self._seq(self._nxt_for_rst()), RST | (ACK if with_ack else 0),
                                              ack=with_ack, ts_on_rst=True), False))
        self._advance(Cause.ABORT, now)

    # ================================================================ queries

    def next_event(self) -> TcpEvent | None:
        return self._events.popleft() if self._events else None

    def drain_events(self) -> list[TcpEvent]:
        """Every pending event at once, oldest first (``next_event()`` until None)."""
        evs = list(self._events)
        self._events.clear()
        return evs

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def next_timer(self) -> float | None:
        """Earliest deadline, or ``self._now`` when a segment is owed already. Pure query:
        ``min(self._due().values())`` without building the dict (the stack asks after every
        segment of every connection)."""
        t = self.timers
        best = None
        for d in (t.rto, t.delayed_ack, t.persist, t.keepalive, t.time_wait, t.rack, t.tlp, t.connect,
                  t.fin_wait_2):
            if d is not None and (best is None or d < best):
                best = d
        if (best is None or self._now < best) and self._sendable():
            best = self._now
        return best

    # The queries below that the output path asks several times per segment are plain methods
    # (``_eff_mss()``...) with the public property as an alias: a property read goes through C
    # and a fresh interpreter frame, several times the cost of a method call from Python code.

    def _eff_mss(self) -> int:
        """Effective send MSS (RFC 9293 §3.7.1, MUST-16): the peer's MSS, our own limit and the
        path MTU, less the TCP options every segment carries (RFC 6691 §2)."""
        m = self.peer_mss
        cfg = self.config           # cfg.advertised_mss(self.ipv6), written out (this is asked
        adv = cfg.mss               # some ten times per connection): mss if set, else the MTU
        if adv is None:             # less the IP and TCP headers, at least 88
            adv = (cfg.mtu or 1500) - (60 if self.ipv6 else 40)
            if adv < 88:
                adv = 88
        if adv < m:                 # min() and max() written out: the builtins parse keyword
            m = adv                 # arguments on every call, ~20 times a comparison's cost
        pm = self.pmtu_mss
        if pm is not None and pm < m:
            m = pm
        if self.ts_ok:
            m -= 12
        return m if m > 64 else 64

    mss = property(_eff_mss)

    @property
    def adv_mss(self) -> int:
        """The MSS we advertise (RMSS): per address family unless configured (RFC 9293 §3.7.1)."""
        return self.config.advertised_mss(self.ipv6)

    @property
    def snd_una(self) -> int:
        return self._seq(self._una)

    @property
    def snd_nxt(self) -> int:
        return self._seq(self._nxt)

    def _rcv_nxt(self) -> int:
        return (self.irs + 1 + self.rcvbuf.next_offset + (1 if self._fin_rcvd else 0)) & MASK

    rcv_nxt = property(_rcv_nxt)

    @property
    def rcv_wnd(self) -> int:
        d = (self._rcv_adv - self._rcv_nxt()) & MASK
        return d if d < HALF else 0     # max(seq_sub(RCV.ADV, RCV.NXT), 0)

    def _flight_size(self) -> int:
        d = self._nxt - self._una
        return d if d > 0 else 0

    flight_size = property(_flight_size)

    def _cwnd(self) -> int:
        """The congestion window in force: PRR's during SACK recovery (RFC 6937), else the
        controller's plus NewReno's inflation (RFC 5681 §3.2 steps 3-4)."""
        if self._in_recovery and self.sack_ok:
            return self._prr_cwnd
        return self.cc.cwnd + self._inflate

    cwnd = property(_cwnd)

    def _pipe(self) -> int:
        """RFC 6675 pipe with SACK; FlightSize without."""
        return self.sb._pipe() if self.sack_ok and self._una >= 0 else self._flight_size()   # (sb.pipe)

    pipe = property(_pipe)

    def time_wait_snapshot(self) -> tuple:
        """What a compact TIME-WAIT record (``synack.stack.timewait.TimeWait``) keeps to answer
        for this connection once the TCB is gone, in the order of ``TimeWait.FIELDS``: SND.NXT and
        RCV.NXT of the ACK it would send (<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, RFC 9293
        §3.10.7.4), the receive window and window field, the timestamp state (RFC 7323 §5.3), the
        challenge ACK count (RFC 5961 §7), the 2 MSL deadline and the settings these rules read."""
        if self.state is not TIME_WAIT:
            raise LocalError(f"no TIME-WAIT snapshot in {self.state.name}")
        cfg = self.config
        rcv_nxt = self._rcv_nxt()
        window = self._advertise_window(rcv_nxt)
        wnd = (self._rcv_adv - rcv_nxt) & MASK          # self.rcv_wnd, RCV.ADV as the window left it
        top = self._max if self._max > self._nxt else self._nxt      # self._nxt_for_rst()
        return ((self.iss + 1 + top) & MASK, rcv_nxt, wnd if wnd < HALF else 0, window, self.max_snd_wnd,
                self.ts_ok, self.ts_recent, self._ts_recent_age, self._ts_offset, self._last_ack_sent,
                self._chal_second, self._chal_count, self.timers.time_wait, cfg.msl, cfg.rfc5961,
                cfg.challenge_ack_limit, cfg.tolerate_missing_ts, cfg.tos & ~3, cfg.rst_timestamps)

    def info(self) -> TcpInfo:
        """[STATUS] A snapshot like Linux TCP_INFO (RFC 9293 §3.10.6)."""
        return TcpInfo(
            state=self.state, rto=self.rtt.rto, rtt=self.rtt.srtt, rttvar=self.rtt.rttvar,
            snd_cwnd=self.cwnd, snd_ssthresh=self.cc.ssthresh, snd_mss=self.mss,
            rcv_mss=self.adv_mss, unacked=self.flight_size, retransmits=self.retries,
            total_retrans=self.total_retrans, backoff=self.rtt.backoff_count,
            snd_wnd=self.snd_wnd, rcv_wnd=self.rcv_wnd, snd_wscale=self.snd_wscale,
            rcv_wscale=self.rcv_wscale, wscale_ok=self.ws_ok, timestamps_ok=self.ts_ok,
            sack_ok=self.sack_ok, iss=self.iss, irs=self.irs, snd_una=self.snd_una,
            snd_nxt=self.snd_nxt, rcv_nxt=self.rcv_nxt, send_queue=len(self.sndbuf),
            recv_queue=self.rcvbuf.readable, cc=self.cc.name,
            timers={k: v for k, v in asdict(self.timers).items() if v is not None}, ecn_ok=self.ecn_ok,
            urgent_pending=self.urgent_pending)

    # ================================================================ timers (§3.10.8)

    def _due(self) -> dict[str, float]:
        """THE predicate: every armed deadline, plus "send" when a segment is owed now."""
        t = self.timers
        due = {k: v for k, v in zip(Timers.__slots__, t.deadlines(t)) if v is not None}
        if self._sendable():
            due["send"] = self._now
        return due

    def handle_timer(self, now: float) -> None:
        """Fire every timer whose deadline is <= now."""
        if now > self._now:
            self._now = now                 # max(self._now, now)
        t = self.timers
        if t.time_wait is not None and t.time_wait <= now:
            t.time_wait = None
            self._trace_timer("time_wait", now)
            self._advance(Cause.TIMEOUT_2MSL, now)      # §3.10.8 time-wait timeout
            return
        if t.fin_wait_2 is not None and t.fin_wait_2 <= now:
            t.fin_wait_2 = None
            self._trace_timer("fin_wait_2", now)
            if self.state is FIN_WAIT_2:
                # The application closed and the peer never sent its FIN: RFC 9293 would wait
                # forever; Linux (tcp_fin_timeout) lets the connection go, silently. FreeBSD
                # only once nothing came for that long (tcp_timer_2msl), else it looks again.
                cfg = self.config
                if cfg.fin_wait_2_idle and now - self._last_rcv <= (cfg.fin_wait_2_timeout or 0.0):
                    t.fin_wait_2 = now + cfg.keepalive_interval
                else:
                    self._advance(Cause.TIMEOUT, now)
                    return
        if t.connect is not None and t.connect <= now:
            t.connect = None
            self._trace_timer("connect", now)
            if self.state in (SYN_SENT, SYN_RECEIVED):
                self._give_up(now, "connection establishment timed out")   # RFC 9293 §3.8.3 (R2 for a SYN)
                return
        if t.rack is not None and t.rack <= now:
            t.rack = None
            self._trace_timer("rack", now)
            self._on_rack_timer(now)
        if t.tlp is not None and t.tlp <= now:
            t.tlp = None
            self._trace_timer("tlp", now)
            self._on_tlp_timer(now)
        if t.rto is not None and t.rto <= now:
            t.rto = None
            self._trace_timer("rto", now)
            self._on_rto(now)
            if self.state is CLOSED:
                return          # gave up: ``t`` is the old record, a due delayed ACK must not fire
        if t.persist is not None and t.persist <= now:
            t.persist = None
            self._trace_timer("persist", now)
            self._on_persist(now)
        if t.delayed_ack is not None and t.delayed_ack <= now:
            t.delayed_ack = None
            self._trace_timer("delayed_ack", now)
            self._ack_now = True
            self._pingpong = False           # no reply came to carry it (Linux tcp_delack_timer_handler)
        if t.keepalive is not None and t.keepalive <= now:
            t.keepalive = None
            self._trace_timer("keepalive", now)
            self._on_keepalive(now)
        if t.ecn_hold is not None and t.ecn_hold <= now:
            t.ecn_hold = None                 # new data may go again (EcnMixin._ecn_on_ack)
            self._trace_timer("ecn_hold", now)

    def _on_rto(self, now: float) -> None:
        """Retransmission timeout: RFC 6298 §5.4-5.6 (retransmit the earliest unacked segment,
        back off), RFC 5681 §3.1 (cwnd = 1 SMSS), RFC 9293 §3.8.3 (give up after R1/R2)."""
        st = self.state
        if st in (CLOSED, LISTEN, TIME_WAIT) or self._una >= self._max:
            return
        # The peer closed its window under data in flight. The segment at the front is sent
        # anyway (§3.10.8) and works as a window probe: while the peer answers, the connection
        # must stay open (§3.8.6.1, MUST-37), so these do not count towards R2. Like Linux
        # (tcp_retransmit_timer, "receiver dastardly shrinks window") it gives up only when
        # nothing was heard from the peer for max_rto.
        probe = st.synchronized and self._una >= 0 and self.snd_wnd == 0
        if not probe:
            self.retries += 1
            self.total_retrans += 1
        if self._una < 0:
            self._syn_rexmits += 1
        if self._first_rexmit_time is None:
            self._first_rexmit_time = now
        limit = (self.config.syn_retries if st is SYN_SENT else
                 self.config.synack_retries if st is SYN_RECEIVED else self.config.r2_retries)
        too_old = (self.config.user_timeout is not None
                   and now - self._first_rexmit_time >= self.config.user_timeout)
        if self.retries > limit or too_old or (probe and now - self._last_rcv > self.config.max_rto):
            self._give_up(now, "retransmissions exhausted" if st.synchronized or st is SYN_RECEIVED
                          else "SYN retransmissions exhausted")
            return
        if self.retries == self.config.r1_retries and not probe:
            # R1 (§3.8.3 (e), SHLD-9; for a SYN too, MUST-22): tell the application, once until
            # an ACK of new data starts ``retries`` over. The negative advice to IP of (b)
            # (MUST-20) has no one to go to: synack's IP layer keeps no routes or gateways.
            what = "SYN" if self._una < 0 else "segment"
            self._events.append(ev := SoftError(now, self.id, f"{what} retransmitted {self.retries} times (R1)"))
            if self.log:
                self.log(ev)
        self.rtt.backoff()
        if self.log:
            self.log(RtoBackoff(now, self.id, self.rtt.rto, self.rtt.backoff_count))
        self._in_recovery = False
        self._inflate = 0
        self._undo = None
        if st.synchronized:
            self.cc.on_rto(now, self._max - self._una)
            self._trace_cwnd(now, "rto")
            self._ecn_reduced()
        self._dupacks = 0
        self._recover = self._max            # RFC 6582 §4 / RFC 6675 §5.1: RecoveryPoint = HighData
        self._rtt_off = None                 # Karn's algorithm (RFC 6298 §3)
        if self.sack_ok and self._una >= 0:
            self._sack_on_rto(now)           # RFC 2018 §5, RFC 8985 §6.3: the lost ones go again
        else:
            self._nxt = self._una            # go back: resend from SND.UNA
            self._gbn_end = self._max
            self._ghost = 0
            if probe:
                self._retransmit_head(now)   # the window would hold it back otherwise
        self._arm_rto(now, self.rtt.rto + self.config.rto_slop * (self.rtt.backoff_count > 0))

    def _give_up(self, now: float, reason: str) -> None:
        self.error = ConnectionTimedOut("connection timed out")
        self._events.append(TimedOut(now, self.id, reason))
        self._advance(Cause.TIMEOUT, now)

    def _on_persist(self, now: float) -> None:
        """Zero-window probe (RFC 9293 §3.8.6.1, MUST-36): one byte of new data beyond the
        window. Probes do not count towards R2: the peer ACKing them keeps us open (MUST-37).
        With a small non-zero window this is the sender's SWS override timeout instead."""
        if self._nxt >= self.sndbuf.end or not self.state.synchronized or self._una < self._max:
            self._persist_backoff = 0
            return
        usable = self._una + min(self.snd_wnd, self.cwnd) - self._nxt
        if usable > 0:
            # A window too small for sender SWS avoidance: the override timeout has passed,
            # so send what fits (RFC 9293 §3.8.6.2.1; RFC 1122 §4.2.3.4).
            n = min(usable, self._payload_mss(), self.sndbuf.end - self._nxt)
            self._emit_now(self._transmit_new(self._nxt, n, False, now), now, retransmit=False)
            self._arm_rto(now, self.rtt.rto)
            self._persist_backoff = 0
            return
        payload = self.sndbuf.peek(self._nxt, 1)
        # The octet is not counted as in flight (no RTO, no R2), but a receiver whose window
        # opened may take it and ACK it: that ACK is acceptable (see _process_ack).
        self._probe_end = max(self._probe_end, self._nxt + 1)
        self._emit_now(self._segment(self._seq(self._nxt), ACK, payload=payload), now, retransmit=False)
        self._persist_backoff += 1
        interval = max(min(self.rtt.base_rto * (1 << min(self._persist_backoff, 16)), self.config.persist_max),
                       self.config.persist_min)
        self._arm("persist", now + interval, now)

    def congestion_control_changed(self, now: float) -> None:
        """``config.cc`` names another algorithm on a live connection (TCP_CONGESTION): it
        takes over with the window as it stands (``CongestionControl.take_over``)."""
        self._now = max(self._now, now)
        cls = congestion.get(self.config.cc)
        if type(self.cc) is cls:
            return
        new = congestion.make(self.config, self.mss)
        new.take_over(self.cc)
        self.cc = new
        self._trace_cwnd(now, f"congestion control {cls.name}")

    def keepalive_changed(self, now: float, *, restart: bool = True) -> None:
        """The keep-alive settings in ``config`` changed on a live connection (SO_KEEPALIVE,
        TCP_KEEPIDLE): arm the timer ``keepalive_idle`` from now, or disarm it when keep-alive is
        off. ``restart=False`` keeps an already armed deadline that is sooner (RFC 9293 §3.8.4)."""
        self._now = max(self._now, now)
        if not self.config.keepalive:
            self.timers.keepalive = None
        elif self.state in (ESTABLISHED, CLOSE_WAIT):
            t = now + self.config.keepalive_idle
            if restart or self.timers.keepalive is None or self.timers.keepalive > t:
                self.timers.keepalive = t

    def _on_keepalive(self, now: float) -> None:
        """Keep-alive probe: SEG.SEQ = SND.NXT-1, no data (RFC 9293 §3.8.4, MUST-26..29)."""
        if not self.config.keepalive or self.state not in (ESTABLISHED, CLOSE_WAIT):
            return
        if self._una < self._max or self._nxt < self.sndbuf.end:
            # MUST-26: only when no sent data is outstanding (the RTO or persist timer watches
            # the peer meanwhile); look again one idle period later, as Linux does ("resched").
            self._arm("keepalive", now + self.config.keepalive_idle, now)
            return
        if now - self._last_rcv < self.config.keepalive_idle - 1e-9 and self._ka_probes == 0:
            self._arm("keepalive", self._last_rcv + self.config.keepalive_idle, now)
            return
        if self._ka_probes >= self.config.keepalive_count:
            self._queue.append((self._segment(self._seq(self._nxt), RST, ack=False), False))
            self._give_up(now, "keep-alive probes unanswered")
            return
        self._ka_probes += 1
        self._emit_now(self._segment(self._seq(self._nxt_for_rst() - 1), ACK), now, retransmit=False)
        self._arm("keepalive", now + self.config.keepalive_interval, now)

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

    def _arm_fin_wait_2(self, now: float) -> None:
        """FIN-WAIT-2 after close() (no application to read the peer's data or FIN): the
        connection goes after ``fin_wait_2_timeout`` (Linux tcp_close / tcp_fin_timeout)."""
        timeout = self.config.fin_wait_2_timeout
        if (timeout is not None and self._read_closed and self.state is FIN_WAIT_2
                and self.timers.fin_wait_2 is None):
            self.timers.fin_wait_2 = now + timeout

    def _arm_rto(self, now: float, rto: float) -> None:
        self.timers.rto = now + rto

    def _advance(self, cause: Cause, now: float) -> None:
        """The only writer of ``self.state`` (STYLE §4): the table says where ``cause`` leads."""
        old = self.state
        # advance(old, cause), its table read here (a call less per transition); a missing
        # edge still goes through advance(), which raises IllegalTransition
        try:
            new = _BY_NAME[old._name_, cause._name_]
        except KeyError:
            new = advance(old, cause)
        self.state = new
        self.state_history.append((now, new))
        ev = _state_changed(now, self.id, old, new, cause._value_)   # (.value is a slow descriptor)
        self._events.append(ev)
        if self.log:
            self.log(ev)
        cfg = self.config
        if new is SYN_SENT or new is SYN_RECEIVED:
            if cfg.connect_timeout is not None and self.timers.connect is None:
                self.timers.connect = now + cfg.connect_timeout
        else:
            self.timers.connect = None
        if new is ESTABLISHED:
            self._events.append(_connected(now, self.id))
            if cfg.rcv_buf_round_mss:
                m = self._eff_mss()
                self.rcvbuf.capacity = -(-self.rcvbuf.capacity // m) * m    # FreeBSD tcp_mss()
            # RFC 6298 §5.7 (MUST): a SYN that timed out leaves RTO at 3 s for the data (Linux:
            # TCP_TIMEOUT_FALLBACK); RFC 5681 §3.1 / RFC 6928 §2: IW of one segment after more
            # than one SYN retransmission.
            self.rtt.handshake_done(self._syn_rexmits > 0)
            if self._syn_rexmits:
                self.cc.syn_lost(self._syn_rexmits)
            if self.config.keepalive:
                self._arm("keepalive", now + self.config.keepalive_idle, now)
        elif new is FIN_WAIT_2:
            self._arm_fin_wait_2(now)
        elif new is TIME_WAIT:
            t = self.timers
            t.rto = t.persist = t.keepalive = t.delayed_ack = t.rack = t.tlp = t.fin_wait_2 = None
            t.time_wait = now + 2 * self.config.msl             # MUST-13
        elif new is CLOSED:
            self.timers = Timers()
            self._ack_now = False
            self._events.append(_closed(now, self.id))



__all__ = ["TcpConnection", "Timers", "rst_for", "SoftError"]
