"""Segment arrival (RFC 9293 §3.10.7) and ICMP errors (§3.9.2.2), as a part of ``TcpConnection``.

``InputMixin`` holds the methods that take a received segment through the eight steps of
§3.10.7.4 (or the LISTEN and SYN-SENT rules); ``TcpConnection`` (connection.py) owns the state.
"""

from __future__ import annotations

import copy

from synack.tcp.errors import ConnectionRefused, ConnectionReset, HostUnreachable
from synack.tcp.events import (DataReceived, Dropped, EndOfStream, RecoveryEntered, RecoveryExited, Reset,
                               RttSample, SegmentIn, SoftError, UrgentData, Writable)
from synack.tcp.states import Cause, State
from synack.wire.frozen import maker
from synack.wire.seq import HALF, MASK, MOD, seq_le, seq_lt, seq_sub
from synack.wire.tcp import Flags, Nop, TcpSegment, Timestamps

S = State
ACK, SYN, FIN, RST, PSH, URG = Flags.ACK, Flags.SYN, Flags.FIN, Flags.RST, Flags.PSH, Flags.URG
SYNCHRONIZED_DATA_STATES = (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2)   # where text is accepted
_FIN, _SYN, _RST, _ACK, _URG = 0x01, 0x02, 0x04, 0x10, 0x20             # the same bits as plain ints
_NOP = Nop()
# DataReceived(...) and EndOfStream(...) without the class call (synack.wire.frozen.maker)
_data_received, _end_of_stream = maker(DataReceived), maker(EndOfStream)
# The states as module constants: ``S.X`` looks the member up through the enum's metaclass,
# several times slower than a global, and the per-segment path asks many times.
_CLOSED, _LISTEN, _SYN_SENT, _SYN_RECEIVED = S.CLOSED, S.LISTEN, S.SYN_SENT, S.SYN_RECEIVED
_ESTABLISHED, _FIN_WAIT_1, _FIN_WAIT_2, _CLOSE_WAIT = S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT
_CLOSING, _LAST_ACK, _TIME_WAIT = S.CLOSING, S.LAST_ACK, S.TIME_WAIT
_RCV_ACK_OF_SYN, _RCV_ACK_OF_FIN, _RCV_FIN = Cause.RCV_ACK_OF_SYN, Cause.RCV_ACK_OF_FIN, Cause.RCV_FIN
_RCV_SYN, _RCV_FIN_ACK_OF_FIN = Cause.RCV_SYN, Cause.RCV_FIN_ACK_OF_FIN        # (Cause.X: as slow as S.X)


class InputMixin:
    __slots__ = ()                 # TcpConnection declares every attribute

    # ================================================================ ICMP errors (§3.9.2.2)

    # Destination Unreachable codes that are hard errors (Linux's icmp_err_convert "fatal").
    _HARD4 = {2: "protocol unreachable", 3: "port unreachable", 6: "network unknown", 7: "host unknown",
              8: "host isolated", 9: "network prohibited", 10: "host prohibited", 13: "administratively prohibited",
              14: "host precedence violation", 15: "precedence cutoff"}
    _HARD6 = {1: "administratively prohibited", 4: "port unreachable", 5: "source address failed policy",
              6: "reject route"}

    def icmp_error(self, kind: str, code: int, mtu: int, quoted_seq: int, now: float, *,
                   may_abort: bool = True) -> bool:
        """An ICMP error quoting one of our segments. ``kind``: "unreachable" (v4),
        "unreachable6", "packet_too_big", "time_exceeded", "parameter_problem". Returns whether
        it was accepted: the quoted sequence number must be in flight (RFC 5927 §4.1).
        ``may_abort=False`` reports hard errors in SYN-SENT as soft ones too."""
        self._now = max(self._now, now)
        off = self._una + seq_sub(quoted_seq, self._seq(self._una))
        if not self._una <= off < max(self._max, self._una + 1):
            return False
        if kind == "packet_too_big" or (kind == "unreachable" and code == 4):
            return self._lower_pmtu(mtu, now)             # RFC 1191 §6.4, RFC 8201 §5.4
        hard = (self._HARD4 if kind == "unreachable" else self._HARD6 if kind == "unreachable6" else {}).get(code)
        if hard and may_abort and self.state is S.SYN_SENT:
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
        if new >= min(self.peer_mss, self.adv_mss) and self.pmtu_mss is None:
            return False
        if self.pmtu_mss is not None and new >= self.pmtu_mss:
            return False
        self.pmtu_mss = new
        self.cc.set_mss(self.mss)
        if self.sack_ok and self._una >= 0:
            self._sack_pmtu_lowered(now)   # resend what is in flight in smaller segments
            self._rtt_off = None
        elif self._nxt > self._una >= 0:
            self._nxt = self._una          # resend what is in flight in smaller segments
            self._rtt_off = None
        return True

    # ================================================================ segment arrives (§3.10.7)

    def receive_segment(self, seg: TcpSegment, now: float, *, ecn: int = 0) -> None:
        """A segment arrives (§3.10.7). ``ecn``: the ECN field of its IP header (RFC 3168 §5:
        0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE)."""
        if now > self._now:
            self._now = now                               # max(self._now, now)
        if self.log:
            self.log(SegmentIn(now, self.id, seg))
        self._ce_in = ecn == 3
        st = self.state
        if st is _CLOSED:
            self._closed_reply(seg, now)                  # §3.10.7.1
        elif st is _LISTEN:
            self._in_listen(seg, now)                     # §3.10.7.2
        elif st is _SYN_SENT:
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
            self._queue.append((rst_for(seg, self.config.rst_timestamps), False))

    def _reset_answering(self, seg: TcpSegment) -> None:
        """Queue <SEQ=SND.NXT><CTL=RST> in answer to ``seg`` (a SYN in a synchronized state
        without RFC 5961, data for an application that closed), echoing its TSval (RFC 7323 §5.2)."""
        self._queue.append((self._segment(self._seq(self._nxt), RST, ack=False,
                                          options=rst_ts_echo(seg, self.config.rst_timestamps)), False))

    def _in_listen(self, seg: TcpSegment, now: float) -> None:
        f = int(seg.flags)
        if f & _RST:
            return self._drop(seg, "listen: RST ignored", now)          # first check
        if f & _ACK:
            self._queue.append((rst_for(seg, self.config.rst_timestamps), False))   # second check
            return self._drop(seg, "listen: ACK answered with RST", now)
        if not f & _SYN:
            return self._drop(seg, "listen: no SYN", now)               # fourth: "drop it"
        if f & _FIN and self.config.drop_synfin:
            return self._drop(seg, "listen: SYN+FIN dropped (drop_synfin)", now)
        # third check, SYN: RCV.NXT = SEG.SEQ+1, IRS = SEG.SEQ, send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
        # Data on the SYN is not kept (the peer retransmits it): RFC 9293 §3.10.7.2 lets us queue it,
        # and Linux (without TFO) does not either.
        self.irs = seg.seq
        ts = self._take_syn_options(seg, syn_ack=False)
        self._ecn_take_syn(seg)
        self._update_window_from_syn(seg)
        if ts is not None:                          # self._ts_from_segment(seg, now, force=True)
            self.ts_recent = ts.val
            self._ts_recent_age = now
        self._rcv_adv = self._rcv_nxt()             # self.rcv_nxt (the property's method)
        self._last_rcv = now
        self._advance(_RCV_SYN, now)

    def _in_syn_sent(self, seg: TcpSegment, now: float) -> None:
        f = seg.flags
        ack_ok = False
        if f & ACK:                                                     # first: the ACK
            ack_off = self._ack_off(seg.ack)
            if ack_off <= -1 or ack_off > self._max:                    # SEG.ACK =< ISS or > SND.NXT
                if not f & RST:
                    self._queue.append((rst_for(seg, self.config.rst_timestamps), False))
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
        self._ecn_take_syn(seg)
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
                urgent, flags = _urgent_after_cut(seg.urgent, f & ~SYN, 1)
                self._process_text_and_fin(seg.replace(seq=(seg.seq + 1) & MASK, flags=flags,
                                                       urgent=urgent), now)
        else:
            # Simultaneous open (§3.5 Figure 8, MUST-10): SYN-RECEIVED, SYN,ACK with our ISS.
            self._update_window_from_syn(seg)
            self._nxt = -1                      # the SYN goes again, now with an ACK
            self._synack_fresh = True
            self._rtt_off = None
            self._advance(Cause.RCV_SYN, now)

    def _in_other(self, seg: TcpSegment, now: float) -> None:
        """SYN-RECEIVED and the synchronized states, §3.10.7.4, steps one to eight."""
        f = int(seg.flags)                # a plain int: each ``&`` on Flags is a Python call
        if self.state is _SYN_RECEIVED:
            if f & _SYN and not f & (_ACK | _RST) and seg.seq == self.irs:
                # the peer retransmitted its SYN: our SYN,ACK was lost; send it again (as Linux does)
                self._nxt = -1
                return self._drop(seg, "syn-received: retransmitted SYN, SYN,ACK again", now)
            if (not self.passive and f & _SYN and f & _ACK and not f & _RST
                    and seg.seq == self.irs and not seg.payload and self._ack_off(seg.ack) == self._max):
                # Simultaneous open, RFC 9293 §3.5 Figure 8 line 6: the peer's SYN,ACK acknowledges our
                # SYN. Its SYN lies just left of the window (the first check would only ACK it), so
                # take it as the ACK it carries, as Linux does (tcp_validate_incoming, "pass"). Its ECE
                # is ECN setup (RFC 3168 §6.1.1), not an echo of congestion.
                seg = seg.replace(seq=(seg.seq + 1) & MASK, flags=seg.flags & ~(SYN | Flags.ECE | Flags.CWR))
                f = int(seg.flags)
        self._dsack_seg = False
        if self.ts_ok and not f & _RST:
            opts = seg.options      # seg.timestamps, its usual case (NOP, NOP, TS) without the property
            ts = opts[-1] if opts and opts[-1].__class__ is Timestamps else seg.timestamps
            if ts is None:
                if not self.config.tolerate_missing_ts:
                    # RFC 7323 §3.2: "If a non-<RST> segment is received without a TSopt, a TCP
                    # SHOULD silently drop the segment" (and MUST NOT abort the connection).
                    # Linux accepts it (TcpConfig.tolerate_missing_ts): no PAWS check, no TS.Recent.
                    return self._drop(seg, "no timestamp option (RFC 7323 §3.2)", now)
            elif 0 < (self.ts_recent - ts.val) & MASK < HALF and self._paws_reject(seg, now):
                # RFC 7323 §5.3 R1, before the acceptability test: ACK and drop. (The first
                # test is _paws_reject's own seq_lt(SEG.TSval, TS.Recent), written out so that
                # the usual segment, not older than TS.Recent, costs no call.)
                self._ack_now = True
                return self._drop(seg, "PAWS: SEG.TSval < TS.Recent (RFC 7323 §5.3 R1)", now)
        orig = seg
        # ---- first: sequence number acceptability (the four cases) ----
        seg = self._trim_to_window(seg, now)
        if seg is None:
            return
        if seg is not orig:
            f = int(seg.flags)
        # ---- second: RST ----
        if f & _RST:
            return self._on_rst(seg, now)
        # ---- fourth: SYN (third, security, does not apply) ----
        if f & _SYN:
            if self.state is S.SYN_RECEIVED and self.passive:
                # "return this connection to the LISTEN state": this half-open TCB goes away
                self._drop(seg, "syn-received: SYN, back to LISTEN", now)
                return self._advance(Cause.ABORT, now)
            if self.config.rfc5961:
                self._challenge_ack(now)                # RFC 5961 §4.2, RFC 9293 §3.10.7.4
                return self._drop(seg, "SYN in synchronized state: challenge ACK", now)
            self._reset_answering(seg)                  # RFC 793
            self.error = ConnectionReset("connection reset")
            self._events.append(Reset(now, self.id))
            return self._advance(Cause.ABORT, now)
        # ---- fifth: ACK ----
        if not f & _ACK:
            return self._drop(seg, "no ACK", now)
        if self.ts_ok and ts is not None:
            # RFC 7323 §5.3 R3 (SEG.SEQ as it arrived): self._ts_from_segment(orig, now) written
            # out, with orig's TSopt (``ts``, read above: ts_ok and no RST) at hand
            val = ts.val
            if (((self._last_ack_sent - orig.seq) & MASK) < HALF
                    and (((val - self.ts_recent) & MASK) < HALF or self._ts_recent_stale(now))):
                self.ts_recent = val
                self._ts_recent_age = now
        if not self._process_ack(seg, now):
            return
        st = self.state
        if st is _CLOSED:
            return
        self._last_rcv = now
        self._ka_probes = 0
        if self.config.keepalive and (st is _ESTABLISHED or st is _CLOSE_WAIT):
            self._arm("keepalive", now + self.config.keepalive_idle, now)
        if self.ecn_ok:                                 # (_ecn_in does nothing otherwise)
            self._ecn_in(seg, bool(orig.payload), now)  # RFC 3168 §6.1.3 (in-window segments only)
        # ---- sixth to eighth: URG, text, FIN ----
        self._process_text_and_fin(seg, now)

    def _trim_to_window(self, seg: TcpSegment, now: float) -> TcpSegment | None:
        """First check (§3.10.7.4): the four-case acceptability test, then trim to the window.
        Unacceptable: send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (unless RST) and drop."""
        rcvbuf = self.rcvbuf                     # RCV.NXT: self._rcv_nxt(), written out (every segment)
        rcv_nxt = (self.irs + 1 + rcvbuf.next_offset + (1 if self._fin_rcvd else 0)) & MASK
        wnd = (self._rcv_adv - rcv_nxt) & MASK   # RCV.WND: self.rcv_wnd, without RCV.NXT again
        if wnd >= HALF:
            wnd = 0
        fi = int(seg.flags)
        seg_len = len(seg.payload) + (fi & _SYN and 1) + (fi & _FIN)     # SEG.LEN
        d = (seg.seq - rcv_nxt) & MASK           # where the segment starts, relative to RCV.NXT
        if d >= HALF:                            # (seq_sub(SEG.SEQ, RCV.NXT), written out)
            d -= MOD
        end = d + seg_len                        # one past its last octet
        ok = 0 <= d < wnd or acceptable(d, seg_len, wnd)   # (the first test holds in all four cases)
        if wnd == 0 and d == 0 and seg_len > 0 and not fi & _SYN:
            # zero window: "special allowance should be made to accept valid ACKs, URGs, and RSTs"
            self._ack_now = True
            self._drop(seg, "zero window: data discarded, ACK processed", now)
            return seg.replace(payload=b"", flags=seg.flags & ~FIN)
        if not ok:
            if seg.payload and end - (fi & _FIN) <= 0:
                # an old duplicate: report it in a D-SACK block (RFC 2883 §4.1.1)
                start = self._rcv_off(seg.seq) + (1 if fi & _SYN else 0)
                self._note_dsack(start, start + len(seg.payload))
            if self.state is _TIME_WAIT and fi & _FIN and end == 0:
                # a retransmitted FIN: ACK it and restart the 2 MSL timer (§3.10.7.4 eighth step)
                self._arm("time_wait", now + 2 * self.config.msl, now)
            if not fi & _RST:
                self._ack_now = True
                if seg.payload and self.config.quickack:
                    # Linux tcp_data_queue "out_of_window": tcp_enter_quickack_mode
                    self._enter_quickack(self.config.quickack, leave_pingpong=True)
            self._drop(seg, "unacceptable sequence number", now)
            return None
        # Trim: octets before RCV.NXT (a SYN there is an old one) and past the window.
        if d >= 0 and seg_len - (fi & _FIN) <= wnd - d:
            return seg                          # all of it is in the window: nothing to trim
        flags, payload, seq, urgent = seg.flags, seg.payload, seg.seq, seg.urgent
        if d < 0:
            cut = -d
            # SEG.UP is an offset from SEG.SEQ: keep RCV.UP = SEG.SEQ + SEG.UP where it was
            urgent, flags = _urgent_after_cut(urgent, flags, cut)
            if flags & SYN:
                flags &= ~SYN
                cut -= 1
            if payload and cut > 0:
                # the part before RCV.NXT is a duplicate (RFC 2883 §4.2, partial duplicates)
                nxt = rcvbuf.next_offset
                self._note_dsack(nxt - min(cut, len(payload)), nxt)
            payload = payload[cut:]
            seq = rcv_nxt
            d = 0
        room = wnd - d - (1 if flags & SYN else 0)
        if len(payload) > room:
            payload = payload[:max(room, 0)]
            flags &= ~FIN                       # the FIN lies past the window
        if (flags, payload, seq) != (seg.flags, seg.payload, seg.seq):
            seg = seg.replace(flags=flags, payload=payload, seq=seq, urgent=urgent)
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
        una = self._una
        d = (seg.ack - self.iss - 1 - una) & MASK     # self._ack_off(seg.ack), written out:
        ack_off = una + (d - MOD if d >= HALF else d)  # SND.UNA + seq_sub(SEG.ACK, SND.UNA)
        st = self.state
        forced = False
        if st is _SYN_RECEIVED:
            if una < ack_off <= self._max:
                self._advance(_RCV_ACK_OF_SYN, now)
                self._update_window(seg, force=True)
                forced = True
                st = self.state
            else:
                self._queue.append((rst_for(seg, self.config.rst_timestamps), False))
                self._drop(seg, "syn-received: unacceptable ACK, RST", now)
                return False
        # RFC 5961 §5.2: acceptable when SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.NXT
        if ack_off > self._max and ack_off > self._probe_end:
            self._ack_now = True
            self._drop(seg, "ACK of data not yet sent", now)
            return False
        # (below SND.UNA - MAX.SND.WND is below SND.UNA, the usual ACK is not: tested first)
        if ack_off < una and self.config.rfc5961 and ack_off < una - max(self.max_snd_wnd, 1):
            self._challenge_ack(now)
            self._drop(seg, "ACK below SND.UNA - MAX.SND.WND: challenge ACK", now)
            return False
        flight, cwnd = self._max - una, self.cc.cwnd
        if self.sack_ok and una >= 0:
            if ack_off >= una:
                self._sack_ack(seg, ack_off, now)          # recovery.py: RFC 6675, RFC 8985
        elif ack_off > una:
            self._new_ack(ack_off, seg, now)
        elif ack_off == una:
            self._maybe_dupack(seg, now)
        if ack_off >= self._una:
            # "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated" (fifth step);
            # an older ACK (accepted under RFC 5961 §5.2) says nothing about the window now.
            # (Updated from this segment above already: SND.WL1, SND.WL2 are its own, so the
            # update would store the same values again.)
            if not forced:
                self._update_window(seg)
            if self.ecn_ok:                                # (_ecn_on_ack does nothing otherwise)
                self._ecn_on_ack(seg, ack_off, flight, cwnd, now)   # RFC 3168 §6.1.2
        # state-specific parts of the fifth step
        fin_off = self._fin_off
        if fin_off is not None and self._una > fin_off:    # our FIN is acknowledged
            if st is _FIN_WAIT_1 or st is _CLOSING:
                self._advance(_RCV_ACK_OF_FIN, now)
            elif st is _LAST_ACK:
                self._advance(_RCV_ACK_OF_FIN, now)
                return False
        return True

    def _new_ack(self, ack_off: int, seg: TcpSegment, now: float) -> None:
        """SND.UNA < SEG.ACK =< SND.NXT: new data (or our SYN/FIN) acknowledged."""
        if ack_off > self._max:
            # the peer took a zero-window probe octet (§3.8.6.1): it was sent after all
            self._max = ack_off
        # octets of data for the congestion controller: the ACK of our SYN (or SYN,ACK) MUST NOT
        # grow cwnd (RFC 5681 §3.1, RFC 6928 §2)
        una = self._una if self._una > 0 else 0       # max(SND.UNA, 0): the SYN is offset -1
        acked = ack_off - una
        if self._ghost and now >= self._ghost_until:
            self._ghost = 0
        if self._gbn_end > self._una:
            self._note_go_back_n(ack_off, now)
        flight = self._max - una                   # FlightSize before this ACK (Appendix G)
        sndbuf = self.sndbuf
        data_end = sndbuf.end
        # min(max(ack_off, 0), data_end)
        sndbuf.ack_to(data_end if ack_off > data_end else ack_off if ack_off > 0 else 0)
        self._una = ack_off
        if self._nxt < self._una:
            self._nxt = self._una
        self.retries = 0
        self._first_rexmit_time = None
        self._persist_backoff = 0
        self._lt_sent = 0
        # RTT: a timestamp echo, else the one timed segment (Karn: never a retransmitted one)
        rtt = None
        expected = 1                               # samples per window of data (RFC 7323 App. G)
        if self.ts_ok:
            opts = seg.options                     # seg.timestamps (see _in_other)
            ts = opts[-1] if opts and opts[-1].__class__ is Timestamps else seg.timestamps
        else:
            ts = None
        if ts is not None and ts.ecr:
            # (self._ts_now(now), written out)
            rtt = (((int(now * 1000) + self._ts_offset) - ts.ecr) & MASK) / 1000.0   # (never negative)
            if rtt > 3600:
                rtt = None
            elif self.config.rtt_appendix_g:
                # RFC 7323 §4.2 SHOULD / Appendix G: "ExpectedSamples = ceiling(FlightSize /
                # (SMSS * 2))" (the 2 for delayed ACKs), which scales alpha and beta down
                expected = -(-flight // (2 * self._eff_mss()))      # (self.mss)
        elif self._rtt_off is not None and ack_off > self._rtt_off:
            rtt = now - self._rtt_time
        if self._rtt_off is not None and ack_off > self._rtt_off:
            self._rtt_off = None
        if rtt is not None:
            self.rtt.sample(rtt, expected)
            self.rack.min_rtt.update(now, rtt)     # RFC 8985 §6.2 Step 1 (self.rack.rtt_sample)
            self.tlp.rtt_sampled = True            # §7.3 condition 2
            self.cc.on_rtt_sample(now, rtt, self._una, self._max)   # HyStart++ rounds (RFC 9406)
            if self.log:
                self.log(RttSample(now, self.id, rtt, self.rtt.srtt, self.rtt.rttvar, self.rtt.rto))
        if self._undo is not None:
            self._undo_if_spurious(ts, now)
        st = self.state
        if st.synchronized or st is _SYN_RECEIVED:
            cc = self.cc            # self._cwnd_limited(), written out (in_slow_start: its test)
            cc.cwnd_limited = self._cwnd_full or (cc.cwnd < cc.ssthresh and cc.cwnd < 2 * self._cwnd_used)
            if self.sack_ok and self._una >= 0:    # (the dispatch _cc_on_ack begins with)
                self._sack_cc_on_ack(ack_off, acked, now)
            else:
                self._cc_on_ack(ack_off, acked, now, rtt)
        self._dupacks = 0
        # RFC 6298 §5.2/5.3: all acked -> stop the timer, else restart it
        if self._una >= self._max:
            self.timers.rto = None
            if self.sack_ok:
                self.sb.clear()
        elif not self._in_recovery or ack_off >= self._recover or self.sack_ok:
            self.timers.rto = now + self.rtt._rto  # self._arm_rto(now, self.rtt.rto)
        if self._was_full and sndbuf.free > 0:
            self._was_full = False
            self._events.append(Writable(now, self.id))

    def _cwnd_limited(self) -> bool:
        """Did the flight fill cwnd lately? RFC 9438 §5.8: "CUBIC does not increase its congestion
        window if a flow is application-limited", held back by the sending application or by the
        receive window (RFC 7661 §4.3 asks the same of any controller). As Linux's
        tcp_is_cwnd_limited: the current window of data filled cwnd (``_note_cwnd_use``), or, in
        slow start, cwnd is less than twice the most in flight (so it may double once)."""
        if self._cwnd_full:
            return True
        cc = self.cc                 # (cc.cwnd < cc.ssthresh: the in_slow_start property's test)
        return cc.cwnd < cc.ssthresh and cc.cwnd < 2 * self._cwnd_used

    def _cc_on_ack(self, ack_off: int, acked: int, now: float, rtt: float | None) -> None:
        if self.sack_ok and self._una >= 0:
            return self._sack_cc_on_ack(ack_off, acked, now)
        if self._in_recovery:
            if ack_off >= self._recover:
                # full ACK: leave fast recovery (RFC 6582 §3.2 step 3, RFC 5681 §3.2 step 6).
                # ``_recover`` is the offset one past the highest octet sent, so an ACK that
                # covers "recover" (the highest sequence number sent) equals it.
                self._in_recovery = False
                self._inflate = 0
                if self.config.newreno_exit == "flight":
                    # RFC 6582 §3.2 step 3 option (1), so that no burst follows (§6)
                    self.cc.on_recovery_exit(now, self._nxt_for_rst() - self._una)
                else:
                    self.cc.on_recovery_exit(now)         # option (2): cwnd = ssthresh
                if self.log:
                    self.log(RecoveryExited(now, self.id, "newreno", self.cc.cwnd, self.cc.ssthresh))
                self._trace_cwnd(now, "recovery exit")
            else:
                # partial ACK (RFC 6582 §3.2 step 3): retransmit the first unacked segment,
                # deflate by the amount acked, add back one SMSS "If the partial ACK
                # acknowledges at least one SMSS of new data"
                self._inflate = max(self._inflate - acked + (self.mss if acked >= self.mss else 0), 0)
                self._retransmit_head(now)
                if not self._partial_acked or self.config.partial_ack_rto == "each":
                    # RFC 6582 §3.2 step 5: "For the first partial ACK that arrives during fast
                    # recovery, also reset the retransmit timer" (the Impatient variant: with
                    # many holes, a timeout and slow start repair them sooner than one per round
                    # trip, but slow start from one segment empties a long fat pipe). "each"
                    # restarts it on every partial ACK, as RFC 6298 §5.3 does for any ACK of new
                    # data (Slow-but-Steady, RFC 3782 §4; Linux and FreeBSD): the holes are
                    # repaired one per round trip while cwnd stays near ssthresh. RFC 6582 §8:
                    # "it is less important exactly which variant of NewReno is implemented".
                    self._partial_acked = True
                    self._arm_rto(now, self.rtt.rto)
            return
        self.cc.on_ack(now, acked, self.flight_size + acked, self.rtt.srtt)
        if self.log:
            self._trace_cwnd(now, "ack")

    def _undo_if_spurious(self, ts, now: float) -> None:
        """The first ACK of new data after a fast retransmit without SACK: did it come from the
        retransmission or from the original? An echoed timestamp older than the retransmission's
        says the original arrived after all, delayed (queued behind resent copies, reordered):
        the retransmission was spurious, so the window reduction is undone and fast recovery
        ends (Eifel detection, RFC 3522, and its response, RFC 4015; Linux tcp_packet_delayed
        and tcp_try_undo_*). SND.UNA must still pass "recover" before another fast retransmit
        (RFC 6582 §3.2 step 1), so the duplicate ACKs still on their way start none."""
        before, retrans_ts = self._undo            # type: ignore[misc]
        self._undo = None
        if not self._in_recovery or ts is None or not ts.ecr or not seq_lt(ts.ecr, retrans_ts):
            return
        self.cc = before
        self._in_recovery = False
        self._inflate = 0
        self._dupacks = 0
        if self.log:
            self.log(RecoveryExited(now, self.id, "newreno", self.cc.cwnd, self.cc.ssthresh))
        self._trace_cwnd(now, "undo: spurious fast retransmit")

    def _note_go_back_n(self, ack_off: int, now: float) -> None:
        """A cumulative ACK while go-back-N resends after a timeout (no SACK): which of the
        resent segments are duplicates still in the network?

        Go-back-N resends in order from SND.UNA, and the receiver already holds much of what it
        gets again. The ACK from SND.UNA to ``ack_off`` was sent when the resent segment at
        SND.UNA filled the hole there; every segment resent after it, up to ``ack_off``, is a
        duplicate the ACK overtook. Counting them as gone would let the sender send their worth
        at once on top of them (the burst RFC 6582 §6 warns of), and each one's arrival draws a
        duplicate ACK that would count towards a fast retransmit that no loss caused (the
        spurious retransmissions RFC 6582 §4 describes; its ACK heuristic, for the same jump of
        the cumulative ACK, says "do not enter fast retransmit"). So they stay in flight as
        "ghosts", each duplicate ACK takes one out (it left the network, like the packet
        conservation of RFC 5681 §3.2 step 4), and whatever the ACKs do not account for is
        forgotten when none came for an RTO."""
        dup = min(ack_off, self._nxt, self._gbn_end) - self._una - self.mss
        if dup > 0:
            self._ghost += dup
            self._ghost_until = now + self.rtt.rto

    def _maybe_dupack(self, seg: TcpSegment, now: float) -> None:
        """RFC 5681 §2 duplicate ACK; fast retransmit on the third (§3.2), NewReno (RFC 6582)."""
        if seg.payload or seg.flags & (SYN | FIN):
            return
        if self._ghost:
            # a duplicate resent after a timeout reached the receiver (see _note_go_back_n);
            # its ACK may carry a new window (the reader took what a resent segment completed)
            if now < self._ghost_until:
                self._ghost = max(self._ghost - self.mss, 0)
                self._ghost_until = now + self.rtt.rto
                # and it was delivered: without SACK a duplicate ACK stands for one segment of
                # DeliveredData (RFC 6937 §3), which slow start grows on. Otherwise a window
                # with holes far apart would be repaired at one hole, two segments of growth,
                # per round trip: every other segment the sender resends is one of these.
                self.cc.cwnd_limited = True
                self.cc.on_ack(now, self.mss, self.flight_size + self._ghost, self.rtt.srtt)
                if self.log:
                    self._trace_cwnd(now, "ack")
                if self._una < self._max:
                    # what was sent after the overtaking ACK waits behind the duplicates: its
                    # RTO runs from when they have left the network, not from that ACK
                    self._arm_rto(now, self.rtt.rto)
            else:
                self._ghost = 0
            return
        if self._una >= self._max or (seg.window << self.snd_wscale) != self.snd_wnd:
            return
        self._dupacks += 1
        if self._in_recovery:
            self._inflate += self.mss                     # RFC 5681 §3.2 step 4
            return
        # RFC 6582 §3.2 step 2: fast retransmit only "if the Cumulative Acknowledgment field
        # covers more than recover" (the highest octet sent when the last recovery or timeout
        # began; ``_recover`` is one past it), i.e. SND.UNA > _recover. Duplicates of an ACK of
        # exactly _recover are most likely copies that recovery or go-back-N sent again (§4):
        # they start no second reduction, and a loss they hide is left to the timer. (FreeBSD:
        # SEQ_GT(th_ack, snd_recover); Linux holds Reno in recovery until snd_una > high_seq.)
        if self._dupacks == self.config.dupthresh and self._una > self._recover:
            self._in_recovery = True
            self._recover = self._max
            # RFC 5681 §3.2 step 2 / RFC 3042 §2: Limited Transmit segments are not FlightSize
            flight = max(self.flight_size - self._lt_sent, 0)
            self._undo = (copy.copy(self.cc), self._ts_now(self._now)) if self.ts_ok else None
            self.cc.on_congestion_event(now, flight)
            self._ecn_reduced()
            self._inflate = 3 * self.mss                  # RFC 5681 §3.2 step 3
            if self.log:
                self.log(RecoveryEntered(now, self.id, "newreno", "dupacks", self._seq(self._recover), flight,
                                         self.cc.cwnd, self.cc.ssthresh))
            self._trace_cwnd(now, "fast retransmit")
            self._partial_acked = False
            self._retransmit_head(now)
            self._arm_rto(now, self.rtt.rto)

    def _retransmit_head(self, now: float) -> None:
        """Resend the first unacknowledged segment (data or FIN)."""
        off = self._una
        if off < 0:
            return
        n = min(self._payload_mss(), max(self.sndbuf.end - off, 0))
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
        # SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK), modulo 2**32: seq_lt and
        # seq_le written out (every ACK asks)
        wl1, sseq = self._wl1, seg.seq
        if force or 0 < (sseq - wl1) & MASK < HALF or (wl1 == sseq and (seg.ack - self._wl2) & MASK < HALF):
            self.snd_wnd = wnd = seg.window << self.snd_wscale
            if wnd > self.max_snd_wnd:
                self.max_snd_wnd = wnd                   # max(MAX.SND.WND, SND.WND)
            self._wl1, self._wl2 = seg.seq, seg.ack
            if wnd > 0 and self.timers.persist is not None:
                self.timers.persist = None
                self._persist_backoff = 0

    def _process_text_and_fin(self, seg: TcpSegment, now: float) -> None:
        st = self.state
        f = int(seg.flags)
        # ---- sixth: URG (§3.8.5, MUST-30/31) ----
        if f & _URG and st in SYNCHRONIZED_DATA_STATES + (S.SYN_RECEIVED,):
            up = (seg.seq + seg.urgent) & MASK
            if self._rcv_up is None or seq_lt(self._rcv_up, up):
                self._rcv_up = up
                # "inform the application layer asynchronously whenever it receives an urgent
                # pointer and there was previously no pending urgent data, or whenever the
                # urgent pointer advances in the data stream" (§3.8.5, MUST-32), here, before
                # the text: the data may be out of order or the window zero (MUST-66). Only a
                # pointer "in advance of the data consumed" is news (sixth step).
                pending = self.urgent_pending
                if pending:
                    ev = UrgentData(now, self.id, up, pending)
                    self._events.append(ev)
                    if self.log:
                        self.log(ev)
        # ---- seventh: segment text ----
        if seg.payload:
            if st not in SYNCHRONIZED_DATA_STATES:
                self._drop(seg, f"text ignored in {st}", now)       # after the peer's FIN
            elif self._read_closed and self.config.rst_on_close_with_unread:
                # data for an application that closed: RFC 9293 §3.10.4 / RFC 2525 §2.17
                self._reset_answering(seg)
                self.error = ConnectionReset("connection reset")
                self._advance(Cause.ABORT, now)
                return
            else:
                self._take_text(seg, now)
        # ---- eighth: FIN ----
        if f & _FIN and st is not _CLOSED and st is not _LISTEN and st is not _SYN_SENT:
            # (self._rcv_nxt(): the rcv_nxt property's method, called directly; seq_sub written out)
            d = (seg.seq - self._rcv_nxt()) & MASK
            off = self.rcvbuf.next_offset + (d - MOD if d >= HALF else d) + len(seg.payload)
            if self._fin_rcvd:
                self._ack_now = True                            # a repeated FIN: ACK it again
                if self.state is _TIME_WAIT:
                    self._arm("time_wait", now + 2 * self.config.msl, now)
            elif off == self.rcvbuf.next_offset:
                self._take_fin(now)
            else:
                self._peer_fin_off = off                        # the FIN waits for the hole to fill
                self._ack_now = True

    @property
    def urgent_pending(self) -> int:
        """Urgent octets the application has not read yet: from the read position up to RCV.UP,
        received or still to come; 0 when there are none (RFC 9293 §3.8.5, MUST-33: "how much
        urgent data remains to be read"). Urgent data is delivered inline by ``receive()``."""
        if self._rcv_up is None:
            return 0
        return max(seq_sub(self._rcv_up, (self.irs + 1 + self.rcvbuf.read_offset) & MASK), 0)

    def _take_text(self, seg: TcpSegment, now: float) -> None:
        rcvbuf = self.rcvbuf
        had_gap = rcvbuf._ooo > 0                   # rcvbuf.ooo_bytes > 0 (the property's attribute)
        nxt = rcvbuf.next_offset
        before = self._rcv_nxt()                    # RCV.NXT (the offset nxt) before the text
        d = (seg.seq - before) & MASK               # seq_sub(SEG.SEQ, RCV.NXT), written out
        off = nxt + (d - MOD if d >= HALF else d)
        in_order = off == nxt
        if had_gap and self.sack_ok:
            dup = rcvbuf.held_overlap(off, off + len(seg.payload))
            if dup is not None:
                self._note_dsack(*dup)              # a duplicate of out-of-order data (RFC 2883 §4.1.3)
        advanced = rcvbuf.insert(off, seg.payload)
        if advanced:
            # urgent: the octets just delivered start before RCV.UP, i.e. include urgent data
            # (§3.8.5, MUST-31/32: urgent data may span any number of segments)
            urgent = self._rcv_up is not None and seq_lt(before, self._rcv_up)
            self._events.append(_data_received(now, self.id, advanced, urgent))
        # When to ACK (§3.8.6.3, RFC 5681 §4.2): at once for out-of-order data and for data that
        # fills a hole; otherwise at least every second full-sized segment, else after ack_delay.
        if in_order and self.config.quickack:
            # Linux tcp_event_data_recv: quick ACKs for the first data and after a pause longer
            # than the RTO ("sender failed to restart window, so that we send ACKs quickly").
            if self._last_data_rcv is None or now - self._last_data_rcv > self.rtt._rto:    # rtt.rto
                self._enter_quickack(self.config.quickack)
            self._last_data_rcv = now
        if not in_order or had_gap:
            self._ack_now = True
        else:
            self._unacked_bytes += len(seg.payload)
            self._unacked_segs += 1
            if (self.config.ack_delay is None or (self._quickacks > 0 and not self._pingpong)
                    or self._unacked_bytes >= self.config.ack_every * self._rcv_full_segment()
                    or (self.config.ack_count_segments and self._unacked_segs >= self.config.ack_every)):
                self._ack_now = True
            elif self.timers.delayed_ack is None:
                self.timers.delayed_ack = now + self.config.ack_delay     # self._arm("delayed_ack", ...)
        if self._peer_fin_off is not None and rcvbuf.next_offset == self._peer_fin_off:
            self._take_fin(now)

    def _enter_quickack(self, most: int, leave_pingpong: bool = False) -> None:
        """Quick-ACK mode (TcpConfig.quickack; Linux tcp_incr_quickack): the next data segments
        are ACKed at once, as many as half the receive window holds in full-sized segments (at
        least 2), at most ``most``; ``leave_pingpong`` also ends interactive mode (Linux
        tcp_enter_quickack_mode). A delayed ACK (RFC 9293 §3.8.6.3) is a SHOULD with a MUST-40
        upper bound: ACKing sooner is always allowed."""
        # n = min(max(self.rcv_wnd // (2 * full segment), 2), most); quickacks = max(quickacks, n),
        # written out (the builtins and the rcv_wnd property cost several times a comparison)
        wnd = (self._rcv_adv - self._rcv_nxt()) & MASK
        if wnd >= HALF:
            wnd = 0                                 # self.rcv_wnd
        n = wnd // (2 * self._rcv_full_segment())
        if n < 2:
            n = 2
        if most < n:
            n = most
        if n > self._quickacks:
            self._quickacks = n
        if leave_pingpong:
            self._pingpong = False

    def _rcv_full_segment(self) -> int:
        """A full-sized segment from the peer: the MSS we advertised (RMSS, SHLD-19) less the
        timestamp option every segment carries once negotiated (RFC 7323 §3, RFC 6691)."""
        m = self.config.advertised_mss(self.ipv6) - (12 if self.ts_ok else 0)   # self.adv_mss - ...
        return m if m > 1 else 1                                                 # max(m, 1)

    def _take_fin(self, now: float) -> None:
        """The FIN is in order: RCV.NXT advances over it, ACK it, signal end of stream."""
        self._fin_rcvd = True
        self._peer_fin_off = None
        self._ack_now = True
        self._events.append(_end_of_stream(now, self.id))
        st = self.state
        if st is _ESTABLISHED or st is _SYN_RECEIVED or st is _FIN_WAIT_2:
            self._advance(_RCV_FIN, now)
        elif st is _FIN_WAIT_1:
            fin_acked = self._fin_off is not None and self._una > self._fin_off
            self._advance(_RCV_FIN_ACK_OF_FIN if fin_acked else _RCV_FIN, now)

    def _challenge_ack(self, now: float) -> None:
        """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, at most challenge_ack_limit a second (RFC 5961 §7)."""
        second = int(now)
        if second != self._chal_second:
            self._chal_second, self._chal_count = second, 0
        if self._chal_count < self.config.challenge_ack_limit:
            self._chal_count += 1
            self._ack_now = True


def acceptable(d: int, seg_len: int, wnd: int) -> bool:
    """RFC 9293 §3.10.7.4 first check, the four cases: a segment starting ``d`` past RCV.NXT,
    SEG.LEN ``seg_len``, against a receive window of ``wnd``."""
    if seg_len == 0:
        return (d == 0) if wnd == 0 else (0 <= d < wnd)
    if wnd == 0:
        return False
    return (0 <= d < wnd) or (0 < d + seg_len <= wnd)


def _urgent_after_cut(urgent: int, flags: Flags, cut: int) -> tuple[int, Flags]:
    """SEG.UP and the flags of a segment whose first ``cut`` sequence numbers (a SYN, octets
    already received) are taken off: the urgent pointer, SEG.SEQ + SEG.UP, stays where it was
    (RFC 9293 §3.8.5); one that pointed into the part taken off is old news and goes."""
    if not flags & URG:
        return urgent, flags
    if urgent >= cut:
        return urgent - cut, flags
    return 0, flags & ~URG


def rst_ts_echo(seg: TcpSegment, on: bool) -> tuple:
    """The options of a RST answering ``seg``. RFC 7323 §5.2 (RECOMMENDED): "if the segment
    causing the <RST> to be generated contains a Timestamps option, the <RST> should also
    contain a Timestamps option. In the <RST> segment, SEG.TSecr SHOULD be set to SEG.TSval
    from the incoming segment and SEG.TSval SHOULD be set to zero." ``on`` is
    ``TcpConfig.rst_timestamps`` (Linux and FreeBSD do otherwise; the packetdrill profiles say so)."""
    if not on or not seg.options:
        return ()
    ts = seg.option(Timestamps)
    return () if ts is None else (_NOP, _NOP, Timestamps(0, ts.val))   # type: ignore[union-attr]


def rst_for(seg: TcpSegment, ts_echo: bool = False) -> TcpSegment:
    """The RST answering a segment that has no connection (RFC 9293 §3.10.7.1; never for a RST):
    ACK-bearing -> <SEQ=SEG.ACK><CTL=RST>; else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    With ``ts_echo`` it echoes the segment's TSval (``rst_ts_echo``)."""
    opts = rst_ts_echo(seg, ts_echo)
    if seg.flags & ACK:
        return TcpSegment(seg.dport, seg.sport, seg.ack, 0, RST, 0, options=opts)
    return TcpSegment(seg.dport, seg.sport, 0, (seg.seq + seg.seg_len) & MASK, RST | ACK, 0, options=opts)
