"""An in-memory pair of links with no delay, for unit tests.

``a, b = MemoryLink.pair()``: whatever ``a.transmit(p, now)`` gets, ``b.receive(now)`` returns
(at the same ``now``), oldest first, and vice versa. Nothing is lost, reordered or limited; wrap
an end in ``synack.link.faults.Faults`` for that, or use ``synack.sim.network`` for delay,
bandwidth and queues.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class MemoryCounters:
    sent: int = 0            # packets handed to transmit()
    sent_bytes: int = 0
    received: int = 0        # packets returned by receive()
    received_bytes: int = 0


class MemoryLink:
    """One end of an in-memory pipe. Build ends with ``MemoryLink.pair()``."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.peer: MemoryLink | None = None
        self._inbox: deque[tuple[float, bytes]] = deque()
        self.counters = MemoryCounters()

    @classmethod
    def pair(cls, names: tuple[str, str] = ("a", "b")) -> tuple["MemoryLink", "MemoryLink"]:
        """Two connected ends: what one transmits, the other receives."""
        a, b = cls(names[0]), cls(names[1])
        a.peer, b.peer = b, a
        return a, b

    def transmit(self, packet: bytes, now: float) -> None:
        if self.peer is None:
            raise RuntimeError("MemoryLink end is not connected: build ends with MemoryLink.pair()")
        self.counters.sent += 1
        self.counters.sent_bytes += len(packet)
        self.peer._inbox.append((now, bytes(packet)))

    def receive(self, now: float) -> list[bytes]:
        """The packets transmitted to this end at or before ``now``, oldest first."""
        out: list[bytes] = []
        while self._inbox and self._inbox[0][0] <= now:
            out.append(self._inbox.popleft()[1])
        self.counters.received += len(out)
        self.counters.received_bytes += sum(map(len, out))
        return out

    def next_timer(self) -> float | None:
        """When the oldest waiting packet was sent (so a driver knows to call ``receive``), or
        None when nothing is waiting."""
        return self._inbox[0][0] if self._inbox else None

    def pending(self) -> int:
        """Packets waiting to be received at this end."""
        return len(self._inbox)

    def __repr__(self) -> str:
        return f"MemoryLink({self.name!r}, pending={len(self._inbox)})"


__all__ = ["MemoryLink", "MemoryCounters"]
