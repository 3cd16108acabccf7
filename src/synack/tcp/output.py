"""Options, windows and segment output, as a part of ``TcpConnection``.

``OutputMixin`` decides what leaves and when: SYN options, the advertised window with
receiver-side SWS avoidance, the send decision (window, cwnd, sender SWS avoidance, Nagle) and the
book-keeping of every segment sent.
"""

from __future__ import annotations

from synack.tcp.events import OptionError, SegmentOut
from synack.tcp.states import State
from synack.wire.seq import HALF, MASK, MOD, seq_sub
# _new_segment, _new_timestamps: TcpSegment(...), Timestamps(...) without the class call, per
# segment (synack.wire.frozen.maker; wire.tcp makes them for its own parsing)
from synack.wire.tcp import (_FLAGS, Eol, Flags, Mss, Nop, Sack, SackPermitted, TcpSegment, Timestamps, WindowScale,
                             _new_segment, _new_timestamps)

S = State
# The states tested on every output pass as module globals (see connection.py: reading a member
# off the Enum class is some ten times slower)
SYN_SENT, SYN_RECEIVED, FIN_WAIT_1, TIME_WAIT = S.SYN_SENT, S.SYN_RECEIVED, S.FIN_WAIT_1, S.TIME_WAIT
PAWS_IDLE = 24 * 86400.0    # RFC 7323 §5.5: TS.Recent is invalidated after 24 days idle
ACK, SYN, FIN, RST, PSH, URG = Flags.ACK, Flags.SYN, Flags.FIN, Flags.RST, Flags.PSH, Flags.URG
ECE, CWR = Flags.ECE, Flags.CWR
SYN_ACK = SYN | ACK
_FIN, _SYN, _RST, _PSH, _ACK, _URG, _ECE, _CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80   # plain ints
_NOP, _SACK_PERMITTED = Nop(), SackPermitted()   # values without fields: one of each
_NO_DEADLINES = (None,) * 10                       # Timers.deadlines() with no timer armed


class OutputMixin:
    __slots__ = ()                 # TcpConnection declares every attribute

    # ================================================================ options and windows

    def _take_syn_options(self, seg: TcpSegment, syn_ack: bool) -> Timestamps | None:
        """Negotiate from the peer's SYN (or SYN-ACK): MSS (MUST-14/15), window scale (only when
        both SYNs carry it, RFC 7323 §2.2), SACK-permitted (RFC 2018 §2), timestamps (RFC 7323 §3.2).
        Returns the segment's Timestamps option (``seg.timestamps``), for TS.Recent."""
        cfg = self.config
        offered = not self._syn_bare()                   # what our (last) SYN offered
        # seg.mss, seg.wscale, seg.sack_permitted and seg.timestamps (each the first option of
        # its kind), read in one walk over the options instead of four property reads and searches
        mss = wscale = ts = None
        sack = False
        for o in seg.options:
            cls = o.__class__                            # (the option classes are final)
            if cls is Mss:
                if mss is None:
                    mss = o.value
            elif cls is WindowScale:
                if wscale is None:
                    wscale = o.shift
            elif cls is SackPermitted:
                sack = True
            elif cls is Timestamps and ts is None:
                ts = o
        if mss is not None:
            self.peer_mss = mss if mss > 64 else 64
        if cfg.window_scaling and wscale is not None and offered:
            self.ws_ok = True
            self.snd_wscale = wscale if wscale < 14 else 14   # RFC 7323 §2.3: shifts above 14 are 14
            if wscale > 14 and self.log:
                # RFC 7323 §2.3: "the TCP SHOULD log the error but MUST use 14"
                self.log(OptionError(self._now, self.id, "wscale", wscale, 14))
            self.rcv_wscale = cfg.offered_wscale()
        else:
            self.ws_ok = False
            self.snd_wscale = self.rcv_wscale = 0
        self.sack_ok = cfg.sack and sack and offered
        self.ts_ok = cfg.timestamps and ts is not None and offered
        self.cc.set_mss(self._eff_mss())
        return ts

    def _syn_bare(self) -> bool:
        """FreeBSD rexmit_drop_options (TcpConfig.syn_rexmit_drop_options): from the third
        retransmission on our SYN offers only MSS, in case a middlebox drops SYNs with options."""
        return self.config.syn_rexmit_drop_options and not self.passive and self._syn_rexmits >= 3

    def _update_window_from_syn(self, seg: TcpSegment) -> None:
        self.snd_wnd = w = seg.window                    # never scaled in a SYN (RFC 7323 §2.2)
        if w > self.max_snd_wnd:
            self.max_snd_wnd = w
        self._wl1, self._wl2 = seg.seq, seg.ack

    def _ts_from_segment(self, seg: TcpSegment, now: float, force: bool = False) -> None:
        """TS.Recent, RFC 7323 §4.3 rule (2) and §5.3 R3: "If SEG.TSval >= TS.Recent and SEG.SEQ
        <= Last.ACK.sent then SEG.TSval is copied to TS.Recent". So with delayed ACKs the oldest
        unacknowledged segment's TSval is echoed (case A), out-of-order segments leave it alone
        (B) and the segment filling a hole sets it (C). A stale TS.Recent (§5.5) is replaced."""
        ts = seg.timestamps
        if ts is None:
            return
        # (seq_le(a, b) written out as ((b - a) & MASK) < HALF: this runs for every segment)
        val = ts.val
        if force or (((self._last_ack_sent - seg.seq) & MASK) < HALF
                     and (((val - self.ts_recent) & MASK) < HALF or self._ts_recent_stale(now))):
            self.ts_recent = val
            self._ts_recent_age = now

    def _ts_recent_stale(self, now: float) -> bool:
        """RFC 7323 §5.5: TS.Recent is invalid after the connection was idle for 24 days."""
        return now - self._ts_recent_age > PAWS_IDLE

    def _paws_reject(self, seg: TcpSegment, now: float) -> bool:
        """RFC 7323 §5.3 R1: a timestamp older than TS.Recent (valid, §5.5) on a non-RST
        segment: not acceptable. Timestamps compare modulo 2**32 like sequence numbers (§5.2)."""
        ts = seg.timestamps
        # (seq_lt(a, b) written out as 0 < ((b - a) & MASK) < HALF: this runs for every segment)
        return (ts is not None and not int(seg.flags) & _RST and 0 < ((self.ts_recent - ts.val) & MASK) < HALF
                and not self._ts_recent_stale(now))

    def _ts_now(self, now: float) -> int:
        return (int(now * 1000) + self._ts_offset) & MASK

    def _syn_options(self, syn_ack: bool, now: float) -> tuple:
        cfg = self.config
        adv = cfg.advertised_mss(self.ipv6)
        mss = Mss(min(adv, self.pmtu_mss + (12 if self.ts_ok else 0)) if self.pmtu_mss else adv)
        if syn_ack:
            # the shift _take_syn_options agreed on (cfg.offered_wscale() then), which scales
            # every window we send from now on
            wscale = WindowScale(self.rcv_wscale) if self.ws_ok else None
            sack = self.sack_ok
            ts = Timestamps((int(now * 1000) + self._ts_offset) & MASK, self.ts_recent) if self.ts_ok else None
        else:
            bare = self._syn_bare()
            wscale = WindowScale(cfg.offered_wscale()) if cfg.window_scaling and not bare else None
            sack = cfg.sack and not bare
            ts = Timestamps(self._ts_now(now), 0) if cfg.timestamps and not bare else None
        return syn_option_layout(cfg.syn_option_order, mss, wscale, sack, ts)

    def _advertise_window(self, rcv_nxt: int | None = None) -> int:
        """The window field for a non-SYN segment, with receiver-side SWS avoidance
        (RFC 9293 §3.8.6.2.2): the right edge moves only by at least min(buffer/2, MSS), and
        never moves left (RFC 7323 §2.4: no shrinking). ``rcv_nxt``: RCV.NXT if the caller has
        it at hand. (min, max, seq_sub and seq_lt written out: this runs for every segment.)"""
        if rcv_nxt is None:
            rcv_nxt = self._rcv_nxt()
        adv = self._rcv_adv
        cur = (adv - rcv_nxt) & MASK
        if cur >= HALF:
            cur = 0                                      # max(seq_sub(RCV.ADV, RCV.NXT), 0)
        rb = self.rcvbuf
        cap = rb._capacity                               # rb.capacity (the property's attribute)
        free = cap - len(rb._ready)                      # rb.window: capacity - readable ...
        if free < 0:
            free = 0                                     # ... never negative
        step = cap // 2
        cfg = self.config           # cfg.advertised_mss(self.ipv6), written out (every segment;
        # its twin in TcpConnection._eff_mss)
        mss = cfg.mss
        if mss is None:
            mss = (cfg.mtu or 1500) - (60 if self.ipv6 else 40)
            if mss < 88:
                mss = 88
        if mss < step:
            step = mss
        new = free if free - cur >= step or free >= cap else cur
        if new < cur:
            new = cur
        shift = self.rcv_wscale
        field = new >> shift
        if field > 65535:
            field = 65535
        wnd = field << shift
        edge = (rcv_nxt + wnd) & MASK
        if 0 < ((edge - adv) & MASK) < HALF:             # seq_lt(RCV.ADV, edge)
            self._rcv_adv = edge
        if wnd > self._rcv_wnd_max:
            self._rcv_wnd_max = wnd
        return field

    def _maybe_window_update(self) -> None:
        """After the application reads: send a window update if the right edge may move by the
        SWS step of RFC 9293 §3.8.6.2.2 (MUST-39) *and* the window at least doubles *and* the
        peer has used at least half of the largest window offered so far (Linux
        tcp_cleanup_rbuf, where that is window_clamp). So reads do not turn into a stream of
        ACKs, nor the first read after the handshake into a segment of its own only to say the
        buffer is larger than the SYN's unscaled window could tell: the peer still has most of
        that window, and the next ACK carries the larger one. The window a segment can carry is
        capped at 65535 << Rcv.Wind.Shift: a larger free buffer is no reason for an update that
        cannot say more (and would look like a duplicate ACK to the peer)."""
        # (max/min written out: the builtins parse keyword arguments on every call)
        cur = (self._rcv_adv - self._rcv_nxt()) & MASK
        if cur >= HALF:
            cur = 0                                      # max(seq_sub(RCV.ADV, RCV.NXT), 0)
        rb = self.rcvbuf
        cap = rb._capacity                               # rb.capacity (the property's attribute)
        could, limit = cap - len(rb._ready), 65535 << self.rcv_wscale    # rb.window ...
        if could < 0:
            could = 0                                    # ... never negative
        if limit < could:
            could = limit
        step, mss = cap // 2, self.config.advertised_mss(self.ipv6)
        if mss < step:
            step = mss
        if step < 1:
            step = 1
        if could - cur >= step and could >= 2 * cur and 2 * cur <= self._rcv_wnd_max:
            self._ack_now = True

    # ================================================================ output

    def _seq(self, off: int) -> int:
        return (self.iss + 1 + off) & MASK

    def _ack_off(self, ack: int) -> int:
        d = (ack - (self.iss + 1 + self._una)) & MASK    # seq_sub(ack, self._seq(self._una))
        return self._una + (d - MOD if d >= HALF else d)

    def _nxt_for_rst(self) -> int:
        """The highest SND.NXT reached (BSD snd_max): what RSTs and pure ACKs carry."""
        return self._max if self._max > self._nxt else self._nxt

    def _segment(self, seq: int, flags: Flags, payload: bytes = b"", *, ack: bool = True,
                 options: tuple = (), ts_on_rst: bool = False) -> TcpSegment:
        """Build an outgoing segment of this connection (window, ACK and options filled in).
        A RST carries timestamps only with ``ts_on_rst`` (a user abort, RFC 7323 §5.2).
        (The flag bits are tested on a plain int: each ``&`` on ``Flags`` is a Python call.)"""
        f = int(flags)
        if not ack:
            f &= ~_ACK
        if self._ecn_echo and f & _ACK and not f & (_SYN | _RST):
            f |= _ECE                            # RFC 3168 §6.1.3, until a CWR arrives
        # RCV.NXT: self._rcv_nxt(), written out (every segment)
        rcv_nxt = (self.irs + 1 + self.rcvbuf.next_offset + (1 if self._fin_rcvd else 0)) & MASK
        ackno = rcv_nxt if f & _ACK else 0
        if f & _RST:
            window = 0
        elif f & _SYN:
            # the window in a SYN is never scaled (RFC 7323 §2.2)
            cfg = self.config
            window = cfg.syn_window_field(self.rcvbuf.capacity,
                                          cfg.advertised_mss(self.ipv6) - (12 if f & _ACK and self.ts_ok else 0))
            if f & _ACK:
                self._rcv_adv = (rcv_nxt + window) & MASK
                if window > self._rcv_wnd_max:
                    self._rcv_wnd_max = window
        else:
            window = self._advertise_window(rcv_nxt)
        if self.ts_ok and (not f & (_SYN | _RST) or (ts_on_rst and not f & _SYN)):
            ts = _new_timestamps((int(self._now * 1000) + self._ts_offset) & MASK, self.ts_recent)   # _ts_now()
            options = (_NOP, _NOP, ts) + options if options else (_NOP, _NOP, ts)
        # (rcvbuf._ooo: what the ooo_bytes property returns, without the property call)
        if self.sack_ok and f & _ACK and not f & _SYN and (self.rcvbuf._ooo or self._dsack):
            base = self.irs + 1
            blocks = tuple(((base + a) & MASK, (base + b) & MASK) for a, b in self._sack_out_blocks())
            if blocks:
                options = options + (_NOP, _NOP, Sack(blocks))
        urgent = 0
        if self._snd_up is not None and payload:
            up_rel = seq_sub(self._seq(self._snd_up), seq)
            if up_rel > 0:
                f |= _URG
                urgent = min(up_rel, 65535)
        cid = self.id
        return _new_segment(cid.local_port, cid.remote_port, seq, ackno, _FLAGS[f], window,   # TcpSegment(...)
                            urgent, options, payload)

    def _payload_mss(self) -> int:
        """Payload room in the next segment: the effective MSS less the SACK option it will
        carry (RFC 9293 §3.7.1: the MSS counts data only, options come out of the same MTU)."""
        if self.sack_ok and (self.rcvbuf._ooo or self._dsack):      # (_ooo: rcvbuf.ooo_bytes)
            n = len(self._sack_out_blocks())
            return max(self._eff_mss() - (4 + 8 * n), 64)
        return self._eff_mss()

    def _syn_owed(self) -> bool:
        """Our SYN (SYN-SENT) or SYN,ACK is to be (re)sent. CLOSE in SYN-RECEIVED enters
        FIN-WAIT-1 before our SYN is acknowledged (§3.10.4); the SYN,ACK is still ours to repeat."""
        return self._nxt < 0 and (self.state is SYN_SENT or self.state is SYN_RECEIVED
                                  or (self._una < 0 and self.state is FIN_WAIT_1))

    def _sendable(self) -> bool:
        """Is a segment owed right now? (No side effects: this feeds next_timer.)"""
        if self._queue or self._ack_now:
            return True
        st = self.state
        if self._nxt < 0 and self._syn_owed():          # (never owed once SND.NXT >= 0)
            return True
        if not st.synchronized or st is TIME_WAIT or self._una < 0:
            return False
        # (_sack_rexmit_due() is None without lost octets, _sack_last_resort() outside fast
        # recovery: both tested here first, which saves the calls on nearly every pass)
        if self.sack_ok and self.sb.lost_bytes > 0 and self._sack_rexmit_due() is not None:
            return True
        # (a dry run: it changes nothing. Nothing unsent and no FIN to send: it would say None,
        # tested here without the call, as on nearly every query)
        nxt = self._nxt
        if ((nxt < self.sndbuf.end or (self._fin_off is not None and nxt <= self._fin_off))
                and self._next_data_segment() is not None):
            return True
        return self.sack_ok and self._in_recovery and self._sack_last_resort() is not None

    def _next_data_segment(self, dry_run: bool = False, probe: bool = False) -> tuple[int, bool] | None:
        """How many data bytes (and whether the FIN) to send next at SND.NXT, or None.
        Applies the send window, cwnd, sender SWS avoidance (§3.8.6.2.1) and Nagle (RFC 896).
        ``probe``: a tail loss probe, which only the peer's window limits (RFC 8985 §7.3)."""
        nxt = self._nxt
        end = self.sndbuf.end
        fin_pending = self._fin_off is not None and nxt <= self._fin_off
        avail = end - nxt
        wnd_room = self._una + self.snd_wnd - nxt
        if avail <= 0:
            return (0, True) if fin_pending else None
        mss = self._payload_mss()
        if probe:
            n = min(avail, mss, wnd_room)
            return (n, fin_pending and nxt + n == self._fin_off) if n > 0 else None
        if self.timers.ecn_hold is not None and nxt >= self._max:
            return None                            # RFC 3168 §6.1.2: until the timer expires
        if self.sack_ok:
            budget = self._sack_send_budget()
            if self._in_recovery and budget > 0:
                budget = max(budget, mss)          # PRR counts whole segments (RFC 6937 §3)
            usable = wnd_room if wnd_room < budget else budget      # min(); see below
        else:
            cwnd = self._cwnd()
            if self._ghost:
                # duplicates overtaken by a cumulative ACK are still in the network (see
                # InputMixin._note_go_back_n); one segment may always go, for the timer's sake
                cwnd = max(cwnd - self._ghost, self._eff_mss())
            if (self.config.limited_transmit and not self._in_recovery
                    and 0 < self._dupacks < self.config.dupthresh):
                # RFC 3042 §2: on the first two duplicate ACKs, up to cwnd + 2 segments.
                cwnd += min(self._dupacks, 2) * self._eff_mss()
            w = self.snd_wnd
            usable = self._una + (w if w < cwnd else cwnd) - nxt      # min(snd_wnd, cwnd)
        # n = min(avail, mss, usable), written out as the other min() and max() on the
        # per-segment path: the builtins parse keyword arguments on every call
        n = avail if avail < mss else mss
        if usable < n:
            n = usable
        if n <= 0:
            return None
        if n == mss and self._tso_ok(nxt, mss):
            # TSO: several whole MSS pieces in one segment; the link cuts it where an MSS
            # segment would have ended, so the peer sees what per-MSS output would send. The
            # sub-MSS tail goes through the rules below on the next call.
            big = min(avail, usable, self.config.tso_max)
            n = big - big % mss
        fin = fin_pending and nxt + n == self._fin_off
        if n > mss:
            return (n, fin)
        if n < mss:
            if n < avail and (nxt >= self._max or nxt > self._una):
                # window- or cwnd-limited and less than a full segment: SWS avoidance — send
                # only if at least half the largest window the peer ever offered (§3.8.6.2.1,
                # MUST-38). Also when going back N (nxt < _max) behind a resent head: SND.NXT
                # went back, so what follows it is queued and not yet sent, and a byte-counted
                # cwnd that opens by a few octets per ACK in congestion avoidance would
                # otherwise resend a window as 1-2 octet segments, each a packet in the path's
                # queue and a duplicate ACK back (which go-back-N counts as a whole segment
                # delivered). The head itself, the timer's retransmission (RFC 6298 §5.4), is
                # never held back.
                if n < self.max_snd_wnd // 2:
                    return None
            elif (nxt >= self._max and self.config.nagle and self._fin_off is None
                    and not self._in_recovery
                    and not (self._idle_pass and self.config.nagle_idle_tail)
                    and (self._una < self._sml <= self._nxt if self.config.nagle_minshall
                         else self._nxt > self._una)):
                # Nagle: a small tail waits for the ACK of what is in flight (RFC 9293 §3.7.4);
                # Minshall's variant (Linux tcp_minshall_check) only for an unacknowledged
                # small segment, so the sub-MSS tail of one large write leaves at once; so does
                # BSD's, when the output pass began idle (nagle_idle_tail).
                return None
        return (n, fin)

    def _note_cwnd_use(self) -> None:
        """After an output pass: how much of cwnd the flight uses, for ``_cwnd_limited`` (as
        Linux's tcp_cwnd_validate). Per window of data: whether the flight came within a segment
        of cwnd (what stopped the sending), and the most that was in flight. A new window starts
        when SND.UNA passes the previous one's end, or at once on a stronger signal."""
        # self._pipe() and self._cwnd(), written out (this runs after every output pass)
        if self.sack_ok and self._una >= 0:
            sb = self.sb                                 # sb._pipe()
            p = (sb.high - sb.una) - sb.sacked_bytes - sb.lost_bytes + sb.dup_bytes
        else:
            p = self._nxt - self._una                    # self._flight_size()
            if p < 0:
                p = 0
        cwnd = self._prr_cwnd if self._in_recovery and self.sack_ok else self.cc.cwnd + self._inflate
        # p + self._eff_mss() > cwnd. The effective MSS is never above peer_mss (at least 64),
        # so with a peer_mss's room to spare it is not asked
        limited = p + self.peer_mss > cwnd and p + self._eff_mss() > cwnd
        if (self._una >= self._cwnd_used_end or limited
                or (not self._cwnd_full and p > self._cwnd_used)):
            self._cwnd_full = limited
            self._cwnd_used = p
            self._cwnd_used_end = self._nxt

    def _tso_ok(self, nxt: int, mss: int) -> bool:
        """May new data at ``nxt`` leave as a TSO segment? Only new data outside loss recovery
        (retransmissions stay MSS-sized), and only when an MSS piece plus headers is exactly the
        MTU: the link cuts at MTU - headers, which must be our MSS and no more than the peer's."""
        cfg = self.config
        if cfg.tso_max < 2 * mss or nxt < self._max or self._in_recovery or self._dupacks:
            return False
        return cfg.mss is None and self._eff_mss() + (12 if self.ts_ok else 0) == cfg.advertised_mss(self.ipv6)

    def segments_to_send(self, now: float) -> list[TcpSegment]:
        """Every segment owed at ``now`` (due timers are handled first)."""
        if now > self._now:
            self._now = now                                  # max(self._now, now)
        t = self.timers           # _due() less its "send" check (a dry run of the sending below)
        ds = t.deadlines(t)
        if ds != _NO_DEADLINES:                              # (no timer armed: no loop)
            for d in ds:
                if d is not None and d <= now:
                    self.handle_timer(now)
                    break
        out: list[TcpSegment] = []
        if self._queue:
            for seg, retransmit in self._queue:
                out.append(seg)
                self._trace_out(seg, now, retransmit)
            self._queue = []
        st = self.state
        if st is SYN_SENT and self._nxt < 0:
            out.append(self._send_syn(now, SYN))
        elif self._nxt < 0 and self._syn_owed():            # (never owed once SND.NXT >= 0)
            out.append(self._send_syn(now, SYN_ACK))
        if st.synchronized and st is not TIME_WAIT and self._una >= 0:
            if self.sack_ok:
                # RFC 6675 NextSeg() rule (1) before rule (2): lost segments first.
                # (no lost octets: _sack_rexmit_due() is None, tested here without the call)
                while self.sb.lost_bytes > 0 and (rec := self._sack_rexmit_due()) is not None:
                    out.append(self._note_sent(self._retransmit_rec(rec, now), now, True))
            sent_new = False
            self._idle_pass = self._una >= self._max
            nxt = self._nxt           # (nothing unsent and no FIN to send: no segment, no call)
            while ((nxt < self.sndbuf.end or (self._fin_off is not None and nxt <= self._fin_off))
                   and (nf := self._next_data_segment()) is not None):
                if self._una >= self._max and self._last_data_snd is not None and not sent_new:
                    # RFC 5681 §4.1 restart window (and CUBIC §5.8 epoch shift): the first
                    # data after the pipe ran empty.
                    before = self.cc.cwnd
                    self.cc.on_idle(now, now - self._last_data_snd, self.rtt.rto)
                    if self.cc.cwnd != before:
                        self._trace_cwnd(now, "restart after idle")
                        if (nf := self._next_data_segment()) is None:
                            break
                n, fin = nf
                retransmit = self._nxt < self._max
                out.append(self._note_sent(self._transmit_new(self._nxt, n, fin, now), now, retransmit))
                sent_new = sent_new or not retransmit
                nxt = self._nxt
            self._idle_pass = False
            if self.sack_ok and self._in_recovery:
                # NextSeg() rules (3) and (4), when (1) and (2) have nothing (RFC 6675 §4)
                while (seg := self._sack_resend_last_resort(now)) is not None:
                    out.append(self._note_sent(seg, now, True))
            if sent_new:
                self._arm_tlp(now)                                   # RFC 8985 §7.2
            self._note_cwnd_use()
            if self._nxt < self.sndbuf.end:                          # (_check_persist's first test)
                self._check_persist(now)
            self._out_una = self._una
        if self._ack_now and (st.synchronized or st is SYN_RECEIVED):
            # A pure ACK carries the highest sequence number sent, not a rewound SND.NXT: a peer
            # that already has the retransmitted data would find SND.NXT old and drop the ACK
            # unread (4.4BSD tcp_output uses snd_max here for the same reason).
            # (self._seq(self._nxt_for_rst()), written out)
            top = self._max if self._max > self._nxt else self._nxt
            out.append(self._note_sent(self._segment((self.iss + 1 + top) & MASK, ACK), now, False))
        if self._ect_new or self._ect_out:                   # (what _ecn_batch_done tests first)
            self._ecn_batch_done()
        return out

    def _transmit_new(self, off: int, n: int, fin: bool, now: float) -> TcpSegment:
        """Book-keeping for data (and/or FIN) leaving at SND.NXT = ``off``; returns the segment."""
        payload = self.sndbuf.peek(off, n) if n else b""
        f = _ACK | (_FIN if fin else 0) | (_PSH if payload and off + n == self.sndbuf.end else 0)
        retransmit = off < self._max
        if self._ecn_cwr and payload and not retransmit:
            f |= _CWR                            # RFC 3168 §6.1.2: the first new data after a reduction
            self._ecn_cwr = False
        seg = self._segment((self.iss + 1 + off) & MASK, _FLAGS[f], payload)     # (self._seq(off))
        room = self._payload_mss() if payload else 0     # (asked below, with the segment built)
        if payload and not retransmit:
            if self.ecn_ok:                      # (what _ecn_mark_new tests first)
                self._ecn_mark_new(seg)          # ECT(0): RFC 3168 §6.1.2, not on retransmissions (§6.1.5)
            if (self.config.quickack_pingpong and self._last_data_rcv is not None
                    and now - self._last_data_rcv < (self.config.ack_delay or 0.0)):
                self._pingpong = True            # a reply: Linux tcp_event_data_sent, pingpong
            if n < room:
                self._sml = off + n + (1 if fin else 0)    # Minshall: the last small segment's end
        self._nxt = off + n + (1 if fin else 0)
        if retransmit:
            self.total_retrans += 1 if off == self._una else 0
        elif self._rtt_off is None and payload:
            self._rtt_off, self._rtt_time = off, now
        if self.sack_ok:
            if n > 64 and n > (step := room):
                # a TSO segment: one scoreboard record per MSS piece the link will cut, so
                # partial SACKs and retransmissions work as for MSS-sized output
                self.sb.on_transmit_pieces(off, self._nxt, step, now)
            else:
                self.sb.on_transmit(off, self._nxt, now)             # RFC 8985 §6.1
            if self._in_recovery:
                self._prr_out += self._nxt - off
        if not self._in_recovery and 0 < self._dupacks < self.config.dupthresh:
            # RFC 3042 segments (with SACK: RFC 6675 §5 step 3), kept out of the FlightSize
            # that sets ssthresh (RFC 5681 §3.2 step 2, RFC 6675 §5 (4.2))
            if self.sack_ok:
                # An ACK that advances SND.UNA and brings new SACK information is a duplicate
                # (RFC 6675 §2, "regardless of its status as a cumulative acknowledgment"), but
                # what its cumulative part (and the cwnd growth it gave) lets out is the ACK
                # clock's, sent within cwnd as any ACK's would be, not "additional data sent in
                # limited transmit" (RFC 5681 §3.2 step 2; RFC 3042 §2: segments "beyond the
                # congestion window"). Counted here, a stretch ACK's worth of segments came off
                # the FlightSize that sets ssthresh: a whole window, ssthresh down to 2 segments.
                sent = self._nxt - off
                clock = min(self._lt_credit, sent)
                self._lt_credit -= clock
                self._lt_sent += sent - clock
            else:
                self._lt_sent += self._nxt - off
        if self._nxt > self._max:
            self._max = self._nxt
        self._last_data_snd = now
        timers = self.timers
        if timers.rto is None:
            timers.rto = now + self.rtt._rto     # RFC 6298 §5.1: self._arm_rto(now, self.rtt.rto)
        return seg

    def _send_syn(self, now: float, flags: Flags) -> TcpSegment:
        # Sent before: a retransmission — except the SYN,ACK of a simultaneous open, which is a
        # new segment answering the peer's SYN (RFC 9293 §3.5 Figure 8).
        retransmit = self._max >= 0 and not self._synack_fresh
        self._synack_fresh = False
        syn_ack = bool(int(flags) & _ACK)                            # (else a SYN)
        ecn = self._ecn_syn_flags(syn_ack)                           # RFC 3168 §6.1.1
        if ecn:
            flags |= ecn
        seg = self._segment(self.iss, flags, options=self._syn_options(syn_ack, now), ack=syn_ack)
        self._nxt = 0
        if self._max < 0:
            self._max = 0
        if not retransmit:
            self._rtt_off, self._rtt_time = -1, now
        timers = self.timers
        if timers.rto is None:
            timers.rto = now + self.rtt._rto     # self._arm_rto(now, self.rtt.rto)
        return self._note_sent(seg, now, retransmit)

    def _note_sent(self, seg: TcpSegment, now: float, retransmit: bool) -> TcpSegment:
        """Book-keeping for a segment leaving from segments_to_send."""
        self._book_ack(seg, now)
        if self.log:                            # self._trace_out(seg, now, retransmit)
            self.log(SegmentOut(now, self.id, seg, retransmit))
        return seg

    def _book_ack(self, seg: TcpSegment, now: float) -> None:
        """Every segment carrying an ACK settles what was owed (delayed ACK, window update)."""
        if int(seg.flags) & _ACK:
            if self._quickacks and (self._ack_now or self._unacked_bytes or self.timers.delayed_ack is not None):
                self._quickacks -= 1             # one quick ACK used (Linux tcp_dec_quickack_mode)
            self._ack_now = False
            self._unacked_bytes = self._unacked_segs = 0
            self.timers.delayed_ack = None
            self._last_ack_sent = seg.ack
            self._dsack = None                  # each duplicate is reported once (RFC 2883 §4 (2))
        self._last_snd = now

    def _emit_now(self, seg: TcpSegment, now: float, retransmit: bool) -> None:
        """Queue a segment built outside segments_to_send (retransmissions, probes)."""
        self._book_ack(seg, now)
        self._queue.append((seg, retransmit))

    def _check_persist(self, now: float) -> None:
        """Arm the persist timer when data waits, nothing is in flight and the window (zero, or
        too small for SWS avoidance) keeps it back: nothing else would wake the sender if the
        peer's window update were lost (RFC 9293 §3.8.6.1, §3.8.6.2.1)."""
        if (self._nxt < self.sndbuf.end and self._una >= self._max and self.timers.persist is None
                and self.timers.rto is None and self._next_data_segment() is None):
            interval = max(min(self.rtt.rto * (1 << min(self._persist_backoff, 16)), self.config.persist_max),
                           self.config.persist_min)
            self._arm("persist", now + interval, now)


def syn_option_layout(order: str, mss: Mss, wscale: WindowScale | None, sack: bool,
                      ts: Timestamps | None) -> tuple:
    """The options of a SYN or SYN-ACK, laid out as the named stack does (RFC 9293 §3.2: any
    order is legal; packetdrill scripts check the exact bytes). One function for connections and
    for SYN-cookie SYN-ACKs, so both look alike on the wire.

    ``"linux"``: mss, sackOK, TS, nop, wscale (NOPs where sackOK or TS is missing).
    ``"freebsd"``: mss, nop, wscale, sackOK, then NOPs to align TS, EOL padding (tcp_addoptions).
    """
    if order == "freebsd":
        opts: list = [mss]
        n = 4
        if wscale:
            opts += [_NOP, wscale]
            n = 8
        if sack:
            opts.append(_SACK_PERMITTED)
            n += 2
        if ts:
            while n % 4 != 2:
                opts.append(_NOP)
                n += 1
            opts.append(ts)
            n += 10
        if n % 4:
            opts.append(Eol())              # emit_options pads the rest with zeros
        return tuple(opts)
    if sack and ts:
        opts = (mss, _SACK_PERMITTED, ts)
    elif ts:
        opts = (mss, _NOP, _NOP, ts)
    elif sack:
        opts = (mss, _NOP, _NOP, _SACK_PERMITTED)
    else:
        opts = (mss,)
    return opts + (_NOP, wscale) if wscale else opts
