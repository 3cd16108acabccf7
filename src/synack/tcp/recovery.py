"""SACK-based loss recovery, as a part of ``TcpConnection`` (used when SACK was negotiated).

* ACK processing: the scoreboard (``sack.py``) takes the cumulative ACK and the SACK blocks
  (RFC 2018 §5, RFC 6675 Update()), D-SACK blocks are told apart (RFC 2883 §4), reneging is
  detected (RFC 2018 §8), DupAcks are counted the RFC 6675 §2 way (new SACKed octets, whatever
  the window or payload did).
* Loss detection: RACK (RFC 8985 §6, ``rack.py``) by default; with ``TcpConfig.rack`` off, RFC
  6675 IsLost() and DupThresh. Either marks scoreboard records lost.
* Recovery: entered when a record is marked lost (RFC 6675 §5 step 4, RFC 8985 §3.4); during it
  PRR (RFC 6937, PRR-SSRB) sets how much may be sent per ACK, ``_sack_send_budget``; what is sent
  is RFC 6675 NextSeg(): lost records first (rule 1), then new data (rule 2); with RACK off,
  then the "last resort" rules (3) and (4) (``_sack_last_resort``).
* Tail loss probes (RFC 8985 §7) and the RACK reordering timer, as ``Timers.tlp`` and
  ``Timers.rack``; the retransmission timeout's SACK part (RFC 2018 §5, RFC 8985 §6.3).

Without SACK the connection keeps RFC 5681 duplicate ACKs and NewReno (RFC 6582) in input.py.
"""

from __future__ import annotations

from synack.tcp.events import (LossProbe, PipeChanged, RecoveryEntered, RecoveryExited, ScoreboardChanged,
                               SegmentLost)
from synack.tcp.sack import Rec
from synack.wire.seq import MASK, seq_sub
from synack.wire.tcp import Flags, Sack, TcpSegment, Timestamps

ACK, FIN, PSH = Flags.ACK, Flags.FIN, Flags.PSH
PTO_MIN = 0.010


class RecoveryMixin:
    __slots__ = ()                 # TcpConnection declares every attribute

    # ================================================================ state queries

    @property
    def _rack_on(self) -> bool:
        """RACK-TLP needs SACK (RFC 8985 §4, 1.)."""
        return self.config.rack and self.sack_ok

    @property
    def _rto_recovering(self) -> bool:
        """After a timeout, until the recovery point is acknowledged (RFC 6675 §5.1)."""
        return self._rto_recovery and self._una < self._recover

    def _sack_send_budget(self) -> int:
        """Bytes that may enter the network now: cwnd - pipe (RFC 6675 §5 (C), and §5 step 3
        for Limited Transmit); during fast recovery cwnd is PRR's (RFC 6937 §3)."""
        sb = self.sb                                   # (sb._pipe(): the sb.pipe property's method)
        if self._in_recovery:
            return self._prr_cwnd - sb._pipe()
        if self.config.limited_transmit:
            return self.cc.cwnd - sb._pipe()
        return self.cc.cwnd - (sb.high - sb.una - sb.lost_bytes)

    def _sack_rexmit_due(self) -> Rec | None:
        """The record NextSeg() rule 1 would retransmit now, if the budget allows any."""
        if self.sb.lost_bytes <= 0 or self._sack_send_budget() <= 0:
            return None
        return self.sb.first_lost()

    def _sack_last_resort(self) -> tuple[Rec, bool] | None:
        """RFC 6675 §4 NextSeg() rules (3) and (4), for when rules (1) and (2) fail (the caller
        asks only then): the record to resend, and whether it is the rescue retransmission.
        Only in fast recovery with RACK off: RFC 8985 §9.2, "the algorithm [RFC6675] MUST NOT
        be used with RACK-TLP"; RACK marks a tail lost by time once a later (re)transmission is
        delivered (§6.2), which is the case rule (4) rescues, and does not resend what it has
        not found lost (rule (3)). After an RTO, "NextSeg () is inappropriate" (§5.1)."""
        if not self._in_recovery or self._rack_on or self._sack_send_budget() <= 0:
            return None
        sb = self.sb
        top = sb.highest_sacked
        if top is not None:
            # (3): "an unSACKed sequence number 'S3' that meets the criteria for detecting loss
            # given in steps (1.a) and (1.b)": above HighRxt, below the highest SACKed octet
            r = sb.first_hole(self._high_rxt, top)
            if r is not None:
                return r, False
        # (4): "If HighACK is greater than RescueRxt ..., then one segment of up to SMSS octets
        # that MUST include the highest outstanding unSACKed sequence number SHOULD be
        # returned" — once per recovery: it sets RescueRxt to RecoveryPoint. ``_rescue_rxt`` is
        # one past RescueRxt, as ``_una`` is one past HighACK: HighACK > RescueRxt iff
        # _una > _rescue_rxt. (4.3) defines it before any rule (4) may run.
        if self._rescue_rxt is not None and self._una > self._rescue_rxt:
            r = sb.last_hole()
            if r is not None:
                return r, True
        return None

    def _sack_resend_last_resort(self, now: float) -> TcpSegment | None:
        """Send what ``_sack_last_resort`` names (RFC 6675 §5 (C.1)-(C.4))."""
        found = self._sack_last_resort()
        if found is None:
            return None
        rec, rescue = found
        sb = self.sb
        room = self._payload_mss()
        if rescue:
            self._rescue_rxt = self._recover               # "RescueRxt set to RecoveryPoint"
            data_end = min(rec.end, self.sndbuf.end)
            if data_end - rec.start > room:                # the last segment of the hole
                sb.split_at(max(data_end - room, rec.start + 1))
                rec = sb.last_hole()
                assert rec is not None
            # "HighRxt MUST NOT be updated" (rule (4), and (C.2) "unless NextSeg () rule (4)
            # was invoked"); pipe counts the record once, as before (it is above HighRxt)
            return self._retransmit_rec(rec, now, rescue=True)
        if rec.start < self._high_rxt:
            sb.split_at(self._high_rxt)                    # (1.a): S3 above HighRxt
            rec = sb.recs[sb.index(self._high_rxt)]
        seg = self._retransmit_rec(rec, now)               # (C.2): HighRxt moves up
        sb.mark_dup(rec)                                   # (C.4): pipe counts both copies
        return seg

    # ================================================================ ACK arrival

    def _sack_blocks_in(self, seg: TcpSegment, ack_off: int) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
        """The segment's SACK blocks as offsets, and its D-SACK block if the first one is one:
        below the cumulative ACK, or inside the second block (RFC 2883 §4, sender side §5)."""
        raw = seg.sack_blocks
        if not raw:
            return [], None
        blocks = [(self._ack_off(a), self._ack_off(b)) for a, b in raw]
        dsack = None
        s0, e0 = blocks[0]
        if s0 < e0 and (e0 <= ack_off or (len(blocks) > 1 and blocks[1][0] <= s0 and e0 <= blocks[1][1])):
            dsack = blocks[0]
            blocks = blocks[1:]
        out = []
        for s, e in blocks:
            s, e = max(s, ack_off), min(e, self._max)
            if s < e:
                out.append((s, e))
        return out, dsack

    def _sack_ack(self, seg: TcpSegment, ack_off: int, now: float) -> None:
        """An acceptable ACK (SND.UNA =< SEG.ACK) on a SACK connection: RFC 6675 §5."""
        if ack_off >= self._max and not self._in_recovery:
            sb = self.sb
            if ack_off > self._una or (not sb.recs and not sb._tq and not sb._tq_dirty):   # sb.idle
                blocks = ()                            # seg.sack_blocks, without the property
                for o in seg.options:
                    if o.__class__ is Sack:
                        blocks = o.blocks
                        break
                if not blocks:
                    return self._sack_ack_all(seg, ack_off, now)
        self._sack_ack_general(seg, ack_off, now)

    def _sack_ack_all(self, seg: TcpSegment, ack_off: int, now: float) -> None:
        """``_sack_ack_general`` for an ACK that leaves nothing outstanding (SEG.ACK = SND.MAX),
        carries no SACK option and arrives outside fast recovery: in a request-response
        exchange, nearly every ACK. It does what the general path does then, and skips the
        steps that provably find nothing to do there:

        * no SACK blocks: no D-SACK, nothing newly SACKed, no scoreboard ``reason`` to log;
        * the scoreboard is empty and needs no re-sorting (``Scoreboard.idle``): ``_new_ack``
          clears it when SND.UNA reaches SND.MAX, and without a cumulative part the caller
          checked. So no reneging (no head record), RACK finds no loss (``detect_loss`` looks
          at no record, the RACK timer is disarmed below) and RFC 6675 IsLost has no SACKed
          ranges to look at;
        * RACK Step 2 on no delivered record changes nothing (``Rack.update``);
        * not in fast recovery before, and ``_new_ack`` only ever ends one: no PRR, and with
          SND.UNA = SND.MAX no recovery to enter, no TLP to arm; both timers are disarmed.

        tests/tcp/test_sack_fast_path.py runs seeded transfers with and without this path
        and compares every log record and the RACK, TLP, scoreboard, timer and window state
        after every ACK."""
        prior_una = self._una
        self._lt_credit = 0
        delivered_recs = None
        if ack_off > prior_una:
            delivered_recs = self.sb.ack(ack_off)
            prior_cwnd = self.cc.cwnd
            self._new_ack(ack_off, seg, now)       # frees data, RTT, cwnd, RTO; clears the scoreboard
            self._dupacks = 0                      # "MUST reset DupAcks to zero" (RFC 6675 §5)
            # what this ACK's cumulative part lets out is not Limited Transmit (_transmit_new)
            credit = ack_off - prior_una + self.cc.cwnd - prior_cwnd
            self._lt_credit = credit if credit > 0 else 0      # max(credit, 0)
        # (self._rack_on, self._rto_recovering and self.rtt.srtt read through what the
        # properties return: a property read costs a C call and a frame, several per ACK)
        if self.config.rack and self.sack_ok:
            if delivered_recs:
                if self.ts_ok:
                    opts = seg.options                 # seg.timestamps, its usual case written out
                    ts = opts[-1] if opts and opts[-1].__class__ is Timestamps else seg.timestamps
                else:
                    ts = None
                self.rack.update(delivered_recs, now, ts.ecr if ts is not None else None, self._ts_now)
            self.rack.update_reo_wnd(self._una, self._max, False,
                                     self._in_recovery or (self._rto_recovery and self._una < self._recover),
                                     self.sb.sacked_segs, self.config.dupthresh, self.rtt._srtt)
        if self.tlp.end_seq is not None:
            self._tlp_on_ack(seg, ack_off, prior_una, None, now)
        self.timers.tlp = self.timers.rack = None

    def _sack_ack_general(self, seg: TcpSegment, ack_off: int, now: float) -> None:
        """``_sack_ack``, any ACK."""
        sb = self.sb
        cfg = self.config
        blocks, dsack = self._sack_blocks_in(seg, ack_off)
        prior_una, prior_sacked = self._una, sb.sacked_bytes
        delivered_recs: list[Rec] = []
        self._lt_credit = 0
        if ack_off > self._una:
            delivered_recs = sb.ack(ack_off)
            prior_cwnd = self.cc.cwnd
            self._new_ack(ack_off, seg, now)       # frees data, RTT, cwnd or recovery exit, RTO
            self._dupacks = 0                      # "MUST reset DupAcks to zero" (RFC 6675 §5)
            # what this ACK's cumulative part lets out is not Limited Transmit (_transmit_new)
            self._lt_credit = max(ack_off - prior_una + self.cc.cwnd - prior_cwnd, 0)
        newly = sb.sack(blocks) if blocks else []
        delivered_recs += newly
        reason = "sack" if newly else "dsack" if dsack is not None else None
        head = sb.head()
        if head is not None and head.sacked:
            # RFC 2018 §8: the receiver may discard SACKed data; SACKed octets at SND.UNA mean it
            # did (it would have acknowledged them otherwise). Forget the SACK bits; the data
            # is still held (only SEG.ACK frees it) and goes again as needed.
            sb.clear_sacks()
            reason = "reneged"
        delivered = (ack_off - prior_una) + (sb.sacked_bytes - prior_sacked)   # RFC 6937 §2
        if newly and not self._in_recovery:
            self._dupacks += 1                     # a duplicate ACK by RFC 6675 §2
        # ---- loss detection
        trigger = "dupacks"
        if self._rack_on:
            ts = seg.timestamps if self.ts_ok else None
            self.rack.update(delivered_recs, now, ts.ecr if ts is not None else None, self._ts_now)
            self.rack.update_reo_wnd(self._una, self._max, dsack is not None,
                                     self._in_recovery or self._rto_recovering, sb.sacked_segs,
                                     cfg.dupthresh, self.rtt.srtt)
            self._rack_detect(now, "rack")
            trigger = "rack"
        elif sb.ranges:
            self._islost_detect(now)
        if reason is not None and self.log:
            self.log(ScoreboardChanged(now, self.id, reason, sb.ranges_str(self._seq), sb.sacked_bytes,
                                       sb.lost_bytes, sb.pipe))
        self._tlp_on_ack(seg, ack_off, prior_una, dsack, now)
        # ---- recovery (RFC 6675 §5 steps 1, 2, 4; RFC 8985 §3.4)
        if self._in_recovery:
            self._prr_on_ack(delivered, now)
        elif self._una >= self._recover and self._una < self._max:
            dup_trigger = not self._rack_on and self._dupacks >= cfg.dupthresh
            if sb.lost_bytes > 0 or dup_trigger:
                self._enter_sack_recovery(now, delivered, trigger, prior_una)
        if self._una >= self._max:
            self.timers.tlp = self.timers.rack = None
        elif ack_off > prior_una:
            self._arm_tlp(now)                     # RFC 8985 §7.2: on a cumulative ACK

    def _islost_detect(self, now: float) -> None:
        """RFC 6675 IsLost() on every un-SACKed record above HighRxt (not retransmitted in this
        recovery: NextSeg() rule (1.a))."""
        sb = self.sb
        bound = sb.lost_below(self.config.dupthresh, self.mss)
        if bound <= sb.una:
            return
        floor = self._high_rxt if self._in_recovery else sb.una
        for r in list(sb.holes(limit=bound)):
            if r.start >= floor:
                if sb.mark_lost(r):
                    self._trace_lost(r, "sack", now)
            elif r.dup:
                sb.clear_dup(r)        # a rule (3) copy now IsLost(): SetPipe() counts it once

    def _rack_detect(self, now: float, detector: str) -> None:
        """RACK_detect_loss_and_arm_timer() (RFC 8985 §6.2 Step 5)."""
        lost, timeout = self.rack.detect_loss(self.sb, now)
        for r in lost:
            if self.sb.mark_lost(r):
                self._trace_lost(r, detector, now)
        self.timers.rack = now + timeout if timeout > 0 else None

    def _trace_lost(self, r: Rec, detector: str, now: float) -> None:
        if self.log:
            self.log(SegmentLost(now, self.id, self._seq(r.start), r.length, detector))

    # ================================================================ fast recovery and PRR

    def _enter_sack_recovery(self, now: float, delivered: int, trigger: str, prior_una: int) -> None:
        """RFC 6675 §5 step 4 with RFC 6937 §3 initialisation. ``prior_una``: SND.UNA before the
        ACK that found the loss (SND.UNA itself when the RACK timer found it)."""
        sb = self.sb
        # FlightSize as the ACKs that found the loss arrived: from SND.UNA at the last output
        # pass, before their cumulative acknowledgments. The stack reads what the link holds
        # and makes one output pass after it (host.Stack.packets_to_send), so several ACKs may
        # come in together, and those ahead of the one that finds the loss have emptied the
        # flight with no chance to refill it. RFC 6937 §3 sets "RecoverFS = snd.nxt-snd.una //
        # FlightSize at the start of recovery" and counts what is delivered from then on in
        # prr_delivered, so that "prr_delivered will approach RecoverFS" as prr_out approaches
        # ssthresh (§3): both count from that SND.UNA here (``delivered`` takes the batch's
        # cumulative part). And eq. (4) of RFC 5681 halves "the amount of outstanding data in
        # the network" (§3.1) when the loss is signalled: behind a receiver that stretches its
        # ACKs (Linux acknowledges what the application read, often 4-12 segments at once),
        # halving what those ACKs left made ssthresh a quarter of the window, not half. Linux
        # and FreeBSD (tcp_reno_ssthresh, newreno_cong_signal) halve cwnd, which only grows
        # while the flight fills it; ``_reduction_base`` keeps the smaller of the two (RFC 7661
        # §4.3).
        base_una = min(prior_una, self._una, max(self._out_una, 0))
        delivered += prior_una - base_una if prior_una > base_una else 0
        flight = self._max - base_una                        # FlightSize
        self._in_recovery = True
        self._recover = self._max                            # (4.1) RecoveryPoint = HighData
        # (4.2) ssthresh (CongCtrlAlg()) from FlightSize less the Limited Transmit segments of
        # step 3: RFC 6675 §5 (4.2), RFC 5681 §3.2 step 2 ("MUST NOT be included")
        cc_flight = max(flight - self._lt_sent, 0)
        self.cc.on_congestion_event(now, cc_flight)
        self._ecn_reduced()                                  # RFC 3168 §6.1.2: CWR follows
        self._prr_delivered = 0
        self._prr_out = 0
        self._recover_fs = max(flight, 1)                    # RecoverFS = snd.nxt - snd.una
        self._high_rxt = self._una
        self._rescue_rxt = None              # (4.3) sets it, with the first retransmission
        if not self._rack_on:
            head = sb.head()
            # (4.3) "Retransmit the first data segment presumed dropped": with DupThresh
            # duplicates but IsLost(HighACK + 1) false (small segments), the head is the one.
            if head is not None and sb.mark_lost(head):
                self._trace_lost(head, "dupthresh", now)
        self.tlp.reset()                                     # RFC 8985 §7.1
        self.timers.tlp = None
        if self.log:
            self.log(RecoveryEntered(now, self.id, "sack", trigger, self._seq(self._recover), cc_flight,
                                     self.cc.cwnd, self.cc.ssthresh))
        self._prr_on_ack(delivered, now)
        self._trace_cwnd(now, "fast recovery")

    def _prr_on_ack(self, delivered: int, now: float) -> None:
        """RFC 6937 §3, "On every ACK during recovery", PRR-SSRB. The result is kept as a window
        (pipe + sndcnt, as Linux does) so losses marked later by the RACK timer, which lower
        pipe, may be repaired before the next ACK."""
        self._prr_delivered = max(self._prr_delivered + delivered, 0)
        pipe = self.sb.pipe
        ssthresh = self.cc.ssthresh
        mss = self.mss
        if pipe > ssthresh:
            # Proportional Rate Reduction: CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out
            sndcnt = -(-self._prr_delivered * ssthresh // self._recover_fs) - self._prr_out
        else:
            # Slow Start Reduction Bound
            limit = max(self._prr_delivered - self._prr_out, delivered) + mss
            sndcnt = min(ssthresh - pipe, limit)
        sndcnt = max(sndcnt, 0)
        if self._prr_out == 0 and sndcnt < mss:
            sndcnt = mss       # the fast retransmit itself (RFC 6675 §5 step 4.3) always goes
        self._prr_cwnd = pipe + sndcnt
        if self.log:
            self.log(PipeChanged(now, self.id, pipe, self._prr_cwnd, self._prr_delivered, self._prr_out))

    def _sack_cc_on_ack(self, ack_off: int, acked: int, now: float) -> None:
        """Congestion control for a cumulative ACK on a SACK connection."""
        if self._rto_recovery and ack_off >= self._recover:
            self._rto_recovery = False
            self.rack.recovery_exited()
            if self.log:
                self.log(RecoveryExited(now, self.id, "rto", self.cc.cwnd, self.cc.ssthresh))
        if self._in_recovery:
            if ack_off >= self._recover:
                # RFC 6675 §5 (A): the recovery point is acknowledged; cwnd = ssthresh
                # (RFC 6937 §3: PRR has brought pipe to ssthresh meanwhile).
                self._in_recovery = False
                self.cc.on_recovery_exit(now)
                self.rack.recovery_exited()
                if self.log:
                    self.log(RecoveryExited(now, self.id, "sack", self.cc.cwnd, self.cc.ssthresh))
                    self._trace_cwnd(now, "recovery exit")
            return
        # (self.flight_size and self.rtt.srtt: what the properties return, read directly)
        flight = self._nxt - self._una
        self.cc.on_ack(now, acked, (flight if flight > 0 else 0) + acked, self.rtt._srtt)
        if self.log:
            self._trace_cwnd(now, "ack")

    # ================================================================ retransmission

    def _retransmit_rec(self, rec: Rec, now: float, *, rescue: bool = False) -> TcpSegment:
        """Build the retransmission of one scoreboard record (at most one segment of it: a
        record longer than the payload room now is split first). ``rescue``: RFC 6675 §4 rule
        (4), which leaves HighRxt alone."""
        sb = self.sb
        room = self._payload_mss()
        data_end = self.sndbuf.end
        if min(rec.end, data_end) - rec.start > room:
            sb.split_at(rec.start + room)
        off = rec.start
        n = max(min(rec.end, data_end) - off, 0)
        fin = self._fin_off is not None and rec.end == self._fin_off + 1
        payload = self.sndbuf.peek(off, n) if n else b""
        flags = ACK | (PSH if payload and off + n == data_end else 0) | (FIN if fin else 0)
        sb.retransmitted(rec, now)
        if self._rtt_off is not None and off <= self._rtt_off < rec.end:
            self._rtt_off = None                       # Karn (RFC 6298 §3)
        self.total_retrans += 1
        if self._in_recovery:
            self._prr_out += rec.length                # RFC 6937 §3: prr_out += (data sent)
            if self._rescue_rxt is None:
                # RFC 6675 §5 (4.3): "set both HighRxt and RescueRxt to the highest sequence
                # number in the retransmitted segment" (the fast retransmit, HighACK + 1)
                self._rescue_rxt = rec.end
        if not rescue:
            self._high_rxt = max(self._high_rxt, rec.end)  # RFC 6675 §5 (C.2)
        self._last_data_snd = now
        if self.timers.rto is None or self._in_recovery:
            # RFC 6675 §6 (MAY): during recovery re-arm on each retransmission, so a recovery
            # longer than one RTO (a queue full of new data ahead of the repair) does not end
            # in a needless timeout and go-back-N.
            self._arm_rto(now, self.rtt.rto)
        return self._segment(self._seq(off), flags, payload)

    def _sack_on_rto(self, now: float) -> None:
        """The SACK side of a retransmission timeout: RFC 2018 §5 (turn off the SACKed bits;
        retransmit the segment at the left edge), RFC 8985 §6.3 (which segments are lost), RFC
        6675 §5.1 (no new recovery before the recovery point is acknowledged)."""
        sb = self.sb
        if sb.sacked_bytes:
            sb.clear_sacks()
            if self.log:
                self.log(ScoreboardChanged(now, self.id, "rto", "", 0, sb.lost_bytes, sb.pipe))
        lost = self.rack.lost_on_rto(sb, now) if self._rack_on else list(sb.holes())
        for r in lost:
            if sb.mark_lost(r):
                self._trace_lost(r, "rto", now)
        self._high_rxt = sb.high
        self._rto_recovery = True
        self.tlp.reset()
        self.timers.tlp = self.timers.rack = None
        head = sb.head()
        if head is not None:
            self._emit_now(self._retransmit_rec(head, now), now, retransmit=True)
        if self.log:
            self.log(RecoveryEntered(now, self.id, "rto", "timeout", self._seq(self._recover),
                                     sb.high - sb.una, self.cc.cwnd, self.cc.ssthresh))

    def _sack_pmtu_lowered(self, now: float) -> None:
        """A smaller path MTU: every segment in flight was too big; resend them smaller."""
        for r in list(self.sb.holes()):
            if self.sb.mark_lost(r):
                self._trace_lost(r, "pmtu", now)

    # ================================================================ timers: RACK and TLP

    def _on_rack_timer(self, now: float) -> None:
        """RFC 8985 §6.2: the reordering timer re-runs loss detection; losses found outside
        recovery start it (§3.4)."""
        if not self._rack_on or self._una >= self._max or not self.state.synchronized:
            return
        self._rack_detect(now, "rack-timer")
        if (not self._in_recovery and self.sb.lost_bytes > 0 and self._una >= self._recover):
            self._enter_sack_recovery(now, 0, "rack-timer", self._una)

    def _arm_tlp(self, now: float) -> None:
        """RFC 8985 §7.2 TLP_calc_PTO(), armed unless in recovery or with SACKed segments."""
        # (not self._rack_on or ... self._rto_recovering ...: the properties written out)
        if (not (self.config.rack and self.sack_ok) or self._in_recovery
                or (self._rto_recovery and self._una < self._recover) or self.sb.sacked_segs
                or self._una >= self._max or self._una < 0):
            self.timers.tlp = None
            return
        srtt = self.rtt._srtt                  # self.rtt.srtt
        if srtt is not None:
            # 2*SRTT, at least 10 ms (Linux TCP_TIMEOUT_MIN): an SRTT of ~0 on a local path
            # must not turn every flight into an immediate probe.
            pto = 2 * srtt
            if PTO_MIN > pto:
                pto = PTO_MIN                  # max(2 * srtt, PTO_MIN)
            if len(self.sb.recs) == 1:
                pto += self.config.tlp_max_ack_delay
        else:
            pto = 1.0
        timers = self.timers
        rto_at = timers.rto
        if rto_at is not None and now + pto > rto_at:
            pto = rto_at - now
        if 0.0 > pto:
            pto = 0.0                          # max(pto, 0.0)
        timers.tlp = now + pto

    def _on_tlp_timer(self, now: float) -> None:
        """RFC 8985 §7.3 TLP_send_probe(): new data if the peer's window allows, else the last
        segment again; then the RTO (not the PTO) is re-armed."""
        if not self._rack_on or self._una >= self._max or not self.state.synchronized or self._una < 0:
            return
        t = self.tlp
        if t.end_seq is None and t.rtt_sampled:
            flight = self._max - self._una
            nf = self._next_data_segment(probe=True)
            if nf is not None:
                n, fin = nf
                seg = self._transmit_new(self._nxt, n, fin, now)
                self._emit_now(seg, now, retransmit=False)
                t.is_retrans = False
            else:
                rec = self.sb.last()
                assert rec is not None
                room = self._payload_mss()
                if min(rec.end, self.sndbuf.end) - rec.start > room:
                    self.sb.split_at(max(min(rec.end, self.sndbuf.end) - room, rec.start + 1))
                    rec = self.sb.last()
                    assert rec is not None
                seg = self._retransmit_rec(rec, now)
                self._emit_now(seg, now, retransmit=True)
                t.is_retrans = True
            t.end_seq = self._max
            t.rtt_sampled = False
            self._tlp_flight = flight
            if self.log:
                self.log(LossProbe(now, self.id, seg.seq, len(seg.payload), t.is_retrans))
        if self._max > self._una:
            self._arm_rto(now, self.rtt.rto)

    def _tlp_on_ack(self, seg: TcpSegment, ack_off: int, prior_una: int, dsack: tuple[int, int] | None,
                    now: float) -> None:
        """RFC 8985 §7.4.2 TLP_process_ack(): was the probe's loss episode real?"""
        t = self.tlp
        if t.end_seq is None or ack_off < t.end_seq:
            return
        if not t.is_retrans:
            t.end_seq = None                    # a probe of new data was delivered
        elif dsack is not None and dsack[0] < t.end_seq <= dsack[1]:
            t.end_seq = None                    # both copies arrived: no loss (case 1)
        elif ack_off > t.end_seq:
            t.end_seq = None                    # the probe repaired a loss: respond to it
            self.cc.on_congestion_event(now, self._tlp_flight)
            self.cc.on_recovery_exit(now)
            self._trace_cwnd(now, "tlp repaired a loss")
        elif ack_off == prior_una and not seg.sack_blocks:
            t.end_seq = None                    # a DupAck without SACK: no loss (case 2)

    # ================================================================ receiver: D-SACK

    def _note_dsack(self, start: int, end: int) -> None:
        """Remember a duplicate (receive offsets) for the next ACK's first block (RFC 2883 §4):
        only the first duplicate of a segment, each reported once."""
        if self.sack_ok and end > start and not self._dsack_seg:
            self._dsack = (start, end)
            self._dsack_seg = True
            self._ack_now = True

    def _sack_out_blocks(self) -> list[tuple[int, int]]:
        """SACK blocks for an outgoing ACK, receive offsets: a D-SACK block first, then the
        block holding it (RFC 2883 §4 (4)), then the most recent first (RFC 2018 §4); at most
        4, or 3 beside the timestamp option."""
        limit = 3 if self.ts_ok else 4
        out: list[tuple[int, int]] = []
        if self._dsack is not None:
            out.append(self._dsack)
            holder = self.rcvbuf.range_holding(*self._dsack)
            if holder is not None:
                out.append(holder)
        for r in self.rcvbuf.sack_ranges(limit):
            if r not in out:
                out.append(r)
        return out[:limit]

    def _rcv_off(self, seq: int) -> int:
        """Receive-stream offset of sequence number ``seq`` (near RCV.NXT)."""
        nxt = self.rcvbuf.next_offset
        return nxt + seq_sub(seq, (self.irs + 1 + nxt) & MASK)
