"""A ``Link`` wrapper that logs every packet crossing it as a ``PacketOut``/``PacketIn`` record.

``Tracer(inner, log, name)``: ``log`` is a sink (a callable taking one record, e.g.
``synack.log.jsonl.JsonlLog``), ``name`` labels the link in each record. Records are stamped with
the caller's ``now``. The one-line ``summary`` comes from parsing the packet (``summarize``);
a packet that does not parse is summarised as such, never raised on: tracing must not change
what the stack sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from synack.wire import icmp
from synack.wire.packet import parse_packet, tcp_in

if TYPE_CHECKING:
    from synack.link.base import Link


@dataclass(frozen=True, slots=True)
class PacketOut:
    """A packet handed to the link (transmitted) at ``t``."""
    t: float
    link: str
    length: int
    summary: str


@dataclass(frozen=True, slots=True)
class PacketIn:
    """A packet the link delivered (received) at ``t``."""
    t: float
    link: str
    length: int
    summary: str


def _icmp_summary(pkt, version: int, verify: bool) -> str:
    if version == 4:
        msg = icmp.decode_icmp4(icmp.parse_icmp4(pkt.payload, verify=verify))
        name = "ICMP"
    else:
        msg = icmp.decode_icmp6(icmp.parse_icmp6(pkt.payload, pkt.src, pkt.dst, verify=verify))
        name = "ICMP6"
    if isinstance(msg, icmp.Echo):
        kind = "echo reply" if msg.reply else "echo request"
        return f"{name} {kind}, id {msg.ident}, seq {msg.seq}, length {len(msg.data)}"
    if isinstance(msg, icmp.Icmp):
        return f"{name} type {msg.type} code {msg.code}"
    return f"{name} {type(msg).__name__}"


def _summary(packet: bytes, verify: bool) -> str:
    pkt = parse_packet(packet, verify=verify)
    version = 4 if pkt.src.version == 4 else 6
    head = f"IP{'' if version == 4 else '6'} {pkt.src} > {pkt.dst}"
    proto = pkt.proto
    if pkt.is_fragment:
        return f"{head}: fragment, proto {proto}, length {len(packet)}"
    if proto == 6:
        seg = tcp_in(pkt, verify=verify)
        return f"{head}: {seg.sport} > {seg.dport} {seg.summary()}"
    if (version, proto) in ((4, 1), (6, 58)):
        return f"{head}: {_icmp_summary(pkt, version, verify)}"
    return f"{head}: proto {proto}, length {len(packet)}"


def summarize(packet: bytes) -> str:
    """A tcpdump-like line for an IP packet. Never raises: a packet that fails a check is
    summarised unverified with ``[bad: reason]`` appended; one that cannot be parsed at all
    is ``unparsable (reason)``."""
    try:
        return _summary(packet, True)
    except Exception as e:          # noqa: BLE001 - a trace must never break the link
        first = getattr(e, "reason", None) or str(e) or type(e).__name__
    try:
        return f"{_summary(packet, False)} [bad: {first}]"
    except Exception:               # noqa: BLE001
        return f"unparsable ({first}), length {len(packet)}"


class Tracer:
    """Log each packet through ``inner`` to ``log`` (None: trace nothing), then pass it on."""

    def __init__(self, inner: "Link", log: Callable[[object], None] | None, name: str) -> None:
        self.inner = inner
        self.log = log
        self.name = name

    def transmit(self, packet: bytes, now: float) -> None:
        if self.log is not None:
            self.log(PacketOut(now, self.name, len(packet), summarize(packet)))
        self.inner.transmit(packet, now)

    def receive(self, now: float) -> list[bytes]:
        packets = self.inner.receive(now)
        if self.log is not None:
            for p in packets:
                self.log(PacketIn(now, self.name, len(p), summarize(p)))
        return packets

    def next_timer(self) -> float | None:
        return self.inner.next_timer()


__all__ = ["Tracer", "PacketIn", "PacketOut", "summarize"]
