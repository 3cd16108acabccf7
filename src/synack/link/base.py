"""The one sans-IO ``Link`` protocol (STYLE.md §6).

A link moves whole IP packets (bytes, no link-layer header) between a stack and something else:
a TUN device, an in-memory pipe, the simulator. Wrappers (pcap, tracer, faults) implement the
same protocol around any link, so they nest freely. ``now`` is the caller's clock in float
seconds (virtual or ``loop.time()``); a link never reads the wall clock to decide anything.
"""

from __future__ import annotations

from typing import Protocol


class Link(Protocol):
    def transmit(self, packet: bytes, now: float) -> None:
        """Hand one IP packet to the link at time ``now``."""
        ...

    def receive(self, now: float) -> list[bytes]:
        """The IP packets due by ``now``, oldest first (TUN: drain up to 64 reads); [] if none."""
        ...

    def next_timer(self) -> float | None:
        """Earliest time a held packet (delay, reordering) becomes due, or None. A pure query."""
        ...


def link_mtu(link) -> int | None:
    """The MTU of ``link``: its own ``mtu``, or that of the link it wraps (``.inner``, as
    ``Faults``, ``PcapLink`` and ``Tracer`` have); None when no layer says (a memory link)."""
    for _ in range(16):
        mtu = getattr(link, "mtu", None)
        if isinstance(mtu, int) and mtu > 0:
            return mtu
        link = getattr(link, "inner", None)
        if link is None:
            return None
    return None
