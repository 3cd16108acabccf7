"""Explicit Congestion Notification (RFC 3168 §6.1), as a part of ``TcpConnection``.

* Negotiation (§6.1.1): an active opener with ``TcpConfig.ecn == "on"`` sends an ECN-setup SYN
  (ECE and CWR); a host with ``ecn`` "on" or "accept" answers one with an ECN-setup SYN-ACK (ECE
  only). ECN is in use when an ECN-setup SYN and an ECN-setup SYN-ACK were exchanged and no
  non-ECN-setup SYN was sent.
* Sender (§6.1.2): new data leaves with ECT(0) in the IP header, never retransmissions (§6.1.5),
  pure ACKs (§6.1.4), SYNs (§6.1.1) or window probes (§6.1.6). An ECE reduces the window like a
  loss, once per window of data, through the controller's ``on_congestion_event``; after any
  reduction the first new data segment carries CWR.
* Receiver (§6.1.3): data arriving with CE makes every segment we send carry ECE until a segment
  with CWR arrives.

The IP layer asks ``ecn_codepoint(seg)`` for each segment ``segments_to_send`` returned, and
passes the received ECN field to ``receive_segment(seg, now, ecn=...)``.
"""

from __future__ import annotations

from synack.tcp.events import EcnSignal
from synack.tcp.states import State
from synack.wire.tcp import Flags, TcpSegment

ACK, SYN, RST, ECE, CWR = Flags.ACK, Flags.SYN, Flags.RST, Flags.ECE, Flags.CWR
_ACK, _ECE, _CWR = 0x10, 0x40, 0x80             # the same bits as plain ints
_LISTEN = State.LISTEN                          # (a member read off the Enum class is slow)
_NO_FLAGS = Flags(0)                            # (calling the Enum class is slow: made once)
_NO_ECT: dict = {}      # _ect_new and _ect_out of a connection without ECN: shared, never written
NOT_ECT, ECT1, ECT0, CE = 0, 1, 2, 3            # RFC 3168 §5, the two low bits of TOS / Traffic Class


class EcnMixin:
    __slots__ = ()                 # TcpConnection declares every attribute

    # ================================================================ queries (for the IP layer)

    def ecn_codepoint(self, seg: TcpSegment) -> int:
        """The ECN field of the IP header carrying ``seg``, one of the segments the last
        ``segments_to_send`` returned: ECT(0) on new data of an ECN connection ("When only one
        ECT codepoint is needed ... ECT(0) SHOULD be used", §6.1.2), else Not-ECT."""
        return ECT0 if self._ect_out.get(id(seg)) is seg else NOT_ECT

    def ip_tos(self, seg: TcpSegment) -> int:
        """The IPv4 TOS / IPv6 Traffic Class octet for ``seg``: ``TcpConfig.tos`` (the DSCP part;
        TCP owns the ECN bits, as Linux's IP_TOS on a stream socket) and ``ecn_codepoint``."""
        if not self._ect_out:
            return self.config.tos & ~3         # ecn_codepoint(seg) is Not-ECT (0) for every segment
        return (self.config.tos & ~3) | self.ecn_codepoint(seg)

    # ================================================================ negotiation (§6.1.1)

    def _ecn_syn_flags(self, syn_ack: bool) -> Flags:
        """ECE/CWR for the SYN or SYN-ACK about to leave (this records what was sent)."""
        if syn_ack:
            # "If a host has received an ECN-setup SYN packet, then it MAY send an ECN-setup
            # SYN-ACK packet. Otherwise, it MUST NOT" (§6.1.1): ecn_ok holds only then.
            return ECE if self.ecn_ok else _NO_FLAGS
        if self.config.ecn != "on":
            return _NO_FLAGS
        if self._syn_rexmits <= self.config.ecn_syn_retries:
            return ECE | CWR
        # §6.1.1.1: no answer to ECN-setup SYNs; the next ones go without ECE and CWR (MAY), and
        # then "A host MUST NOT set ECT on data packets unless ... has sent no non-ECN-setup SYN".
        self._ecn_plain_syn = True
        return _NO_FLAGS

    def _ecn_take_syn(self, seg: TcpSegment) -> None:
        """The peer's SYN (in LISTEN, or a simultaneous open's in SYN-SENT) or SYN-ACK decides
        ECN (§6.1.1): ECN-setup SYN is ECE and CWR, ECN-setup SYN-ACK is ECE without CWR."""
        flags = int(seg.flags)                  # (each ``&`` on Flags is a Python call)
        f = flags & (_ECE | _CWR)
        if self.state is _LISTEN:
            ok = self.config.ecn != "off" and f == _ECE | _CWR
        else:   # we sent a SYN: it must have been ECN-setup, and no plain one after it
            ok = (self.config.ecn == "on" and not self._ecn_plain_syn
                  and f == (_ECE if flags & _ACK else _ECE | _CWR))
        self.ecn_ok = ok
        if ok and self._ect_new is _NO_ECT:
            self._ect_new = {}                  # _ecn_mark_new writes here from now on
        if ok and self.log:
            self.log(EcnSignal(self._now, self.id, "negotiated"))

    # ================================================================ data

    def _ecn_mark_new(self, seg: TcpSegment) -> None:
        """``seg`` is new data (not a retransmission, not a window probe): ECT(0) (§6.1.2)."""
        if self.ecn_ok:
            self._ect_new[id(seg)] = seg

    def _ecn_batch_done(self) -> None:
        """``segments_to_send`` returns: what it returns is what ``ecn_codepoint`` answers for."""
        if self._ect_new or self._ect_out:
            self._ect_out, self._ect_new = self._ect_new, {}

    def _ecn_reduced(self) -> None:
        """The congestion window was reduced (ECE, fast retransmit, timeout): "the TCP sender
        sets the CWR flag in the TCP header of the first new data packet sent after the window
        reduction" (§6.1.2); ECE for data sent before now belongs to this reduction."""
        if self.ecn_ok:
            self._ecn_cwr = True
            self._ecn_high = self._max

    # ================================================================ arrivals

    def _ecn_in(self, seg: TcpSegment, had_data: bool, now: float) -> None:
        """An acceptable segment (within the window, §6.1.5: CE outside it is ignored)."""
        if not self.ecn_ok:
            return
        if seg.flags & CWR and self._ecn_echo:
            # §6.1.3: ECE "in all the ACK packets it sends ... until it receives a CWR packet"
            self._ecn_echo = False
            if self.log:
                self.log(EcnSignal(now, self.id, "cwr"))
        if self._ce_in and had_data and not self._ecn_echo:
            # §6.1.3: a CE data packet; window probes count too (§6.1.6, SHOULD respond)
            self._ecn_echo = True
            if self.log:
                self.log(EcnSignal(now, self.id, "ce"))
            if self.config.quickack:
                self._enter_quickack(2, leave_pingpong=True)   # Linux __tcp_ecn_check_ce: "better not delay acks"

    def _ecn_on_ack(self, seg: TcpSegment, ack_off: int, flight: int, before: int, now: float) -> None:
        """An acceptable ACK with ECE (§6.1.2): "treated just as a congestion loss", once per
        window of data, and not while loss recovery already reduced the window. ``flight`` and
        ``before``: FlightSize and cwnd as the ACK arrived (its own ACK processing may have
        grown cwnd since)."""
        if not (self.ecn_ok and seg.flags & ECE) or ack_off <= self._ecn_high or self._in_recovery:
            return
        self.cc.on_ecn_echo(now, flight)             # as for a loss, no recovery (CUBIC: RFC 9438 §4.6)
        if self.cc.cwnd > before:
            # "The sending TCP SHOULD NOT increase the congestion window in response to the
            # receipt of an ECN-Echo ACK packet" (the controller's floor is 2 SMSS)
            self.cc.cwnd = before
        if before <= self.mss:
            # §6.1.2: "the sending TCP MUST reset the retransmit timer on receiving the ECN-Echo
            # packet when the congestion window is one. The sending TCP will then be able to
            # send a new packet only when the retransmit timer expires." (RFC 9438 §4.6: below
            # 1 MSS the rate "MUST" fall further.) The timer restarts for what is in flight, and
            # new data waits one RTO whether anything is in flight or not (``ecn_hold``).
            if self._una < self._max:
                self._arm_rto(now, self.rtt.rto)
            self.timers.ecn_hold = now + self.rtt.rto
        self._ecn_reduced()
        if self.log:
            self.log(EcnSignal(now, self.id, "ece"))
        self._trace_cwnd(now, "ecn-echo")
