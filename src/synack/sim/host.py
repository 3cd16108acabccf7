"""``EchoHost``: the smallest node with the Stack interface, answering pings.

It proves the simulator, links and wrappers with real IP packets before any TCP exists, and
stays useful as a bystander. It answers ICMP Echo Requests addressed to it, IPv4 (RFC 792
"Echo or Echo Reply Message", RFC 1122 §3.2.2.6) and IPv6 (RFC 4443 §4.1, §4.2), and records
the Echo Replies it receives. Everything else is dropped and counted by reason: a packet that
fails a checksum ends up in ``dropped``, which is how the fault tests see corruption caught.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Callable

from synack.wire import icmp
from synack.wire.errors import WireError
from synack.wire.ip4 import IPv4Packet
from synack.wire.ip6 import IPv6Packet
from synack.wire.packet import emit_packet, parse_packet

Address = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class PingReply:
    """An Echo Reply that reached the host at ``t``."""
    t: float
    src: Address
    ident: int
    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class HostDropped:
    """A packet the host did not accept, and why."""
    t: float
    length: int
    reason: str


class EchoHost:
    """A node with one address that answers pings and can send them.

    ``log``, if given, receives ``PingReply`` and ``HostDropped`` records.
    """

    def __init__(self, address: str | Address, *, ttl: int = 64,
                 log: Callable[[object], None] | None = None) -> None:
        self.address: Address = address if isinstance(address, (IPv4Address, IPv6Address)) else ip_address(address)
        self.ttl = ttl
        self.log = log
        self.replies: list[PingReply] = []
        self.requests_answered = 0
        self.requests_sent = 0
        self.dropped: dict[str, int] = {}
        self._out: deque[tuple[float, bytes]] = deque()

    # --- user calls ---------------------------------------------------------------------------

    def ping(self, dst: str | Address, ident: int, seq: int, data: bytes, now: float) -> None:
        """Queue an Echo Request to ``dst``; it leaves at the next ``packets_to_send``."""
        d = dst if isinstance(dst, (IPv4Address, IPv6Address)) else ip_address(dst)
        self._queue(d, icmp.Echo(ident, seq, bytes(data)), now)
        self.requests_sent += 1

    # --- the Stack interface ------------------------------------------------------------------

    def receive_packet(self, packet: bytes, now: float) -> None:
        try:
            pkt = parse_packet(packet)                 # verifies the IPv4 header checksum
            if pkt.dst != self.address:
                return self._drop(packet, now, "not addressed to this host")
            if pkt.is_fragment:
                return self._drop(packet, now, "fragment (no reassembly)")
            if isinstance(pkt, IPv4Packet):
                if pkt.proto != icmp.PROTO_ICMP4:
                    return self._drop(packet, now, f"protocol {pkt.proto}")
                msg = icmp.decode_icmp4(icmp.parse_icmp4(pkt.payload))
            else:
                if pkt.next_header != icmp.PROTO_ICMP6:
                    return self._drop(packet, now, f"protocol {pkt.next_header}")
                msg = icmp.decode_icmp6(icmp.parse_icmp6(pkt.payload, pkt.src, pkt.dst))
        except WireError as e:
            return self._drop(packet, now, e.reason)
        if not isinstance(msg, icmp.Echo):
            return self._drop(packet, now, "ICMP other than echo")
        if msg.reply:
            rec = PingReply(now, pkt.src, msg.ident, msg.seq, msg.data)
            self.replies.append(rec)
            if self.log is not None:
                self.log(rec)
            return
        # RFC 792: addresses reversed, type changed to reply; RFC 1122 §3.2.2.6: "the data
        # received in an ICMP Echo Request MUST be entirely included in the resulting Echo Reply".
        self._queue(pkt.src, icmp.Echo(msg.ident, msg.seq, msg.data, reply=True), now)
        self.requests_answered += 1

    def packets_to_send(self, now: float) -> list[bytes]:
        out = [p for _, p in self._out]
        self._out.clear()
        return out

    def next_timer(self) -> float | None:
        """Output owed counts as due (STYLE.md §5): when the oldest queued packet was queued."""
        return self._out[0][0] if self._out else None

    def handle_timer(self, now: float) -> None:
        """No timers of its own; queued output leaves through ``packets_to_send``."""

    # --- internals ----------------------------------------------------------------------------

    def _queue(self, dst: Address, msg: icmp.Echo, now: float) -> None:
        if dst.version != self.address.version:
            raise ValueError(f"{self.address} cannot ping {dst}: address families differ")
        if isinstance(self.address, IPv4Address):
            pkt = IPv4Packet(self.address, dst, icmp.PROTO_ICMP4, icmp.emit_icmp4(msg), ttl=self.ttl)
        else:
            payload = icmp.emit_icmp6(msg, self.address, dst)
            pkt = IPv6Packet(self.address, dst, icmp.PROTO_ICMP6, payload, hop_limit=self.ttl)
        self._out.append((now, emit_packet(pkt)))

    def _drop(self, packet: bytes, now: float, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        if self.log is not None:
            self.log(HostDropped(now, len(packet), reason))

    def __repr__(self) -> str:
        return f"EchoHost({str(self.address)!r}, replies={len(self.replies)})"


__all__ = ["EchoHost", "PingReply", "HostDropped"]
