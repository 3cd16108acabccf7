"""Fault injection around any link: loss, duplication, reordering, delay, corruption, scripts.

``Faults(inner, rng, loss=0.2, reorder=0.1, dup=0.01, delay=0.05)`` is itself a ``Link``
(STYLE.md §6), so it wraps a TUN device, a ``MemoryLink`` or a simulator link alike and nests
with pcap and tracer wrappers. It holds packets itself (delay, reordering), so it needs no
netem and no kernel help; ``next_timer()`` reports when the next held packet is due.

Per packet, in each faulted direction, in this order (each step draws from ``rng`` only when its
probability is non-zero, so a run is a pure function of the seed and the traffic):

1. scripted rules (``drop_nth``, ``drop_if``): the packet is dropped, nothing else happens;
2. ``loss``: dropped;
3. ``corrupt``: ``corrupt_bits`` random bits are flipped. With one bit (the default) every
   IPv4 packet fails a checksum: a single-bit error always changes the ones'-complement sum
   (RFC 1071 §1), and the IPv4 header checksum (RFC 791 §3.1) plus the TCP/UDP/ICMP checksums
   cover every octet. IPv6 has no header checksum (RFC 8200 §5), so a flip in its Traffic
   Class, Flow Label or Hop Limit goes unseen, as it would on a real link without an L2 CRC.
   A TCP super-segment larger than the wrapped link's MTU (TSO, ``TcpConfig.tso_max``) carries
   only the pseudo-header sum for the link to complete, which would complete it over the flipped
   bits: such a packet is first cut into MTU-sized segments with their own checksums, as the
   kernel would cut it (``gso_segment``), the bits are flipped in one of them, and all of them
   go on (the other steps treat them as one packet);
4. ``dup``: a second, identical copy follows the packet;
5. ``delay``/``jitter``: each copy is held ``delay + uniform(-jitter, +jitter)`` seconds (at
   least 0), and never released before an earlier delayed packet: jitter alone does not
   reorder (unlike netem's), so reordering counts only come from step 6;
6. ``reorder``: the copy is held ``reorder_delay`` seconds more and skips the FIFO rule above,
   so packets sent after it overtake it.

``direction`` picks where random faults apply: ``"tx"`` (packets the wrapped side transmits),
``"rx"`` (packets it receives) or ``"both"``. Scripted rules name their own direction.

Every fault applied is one ``FaultApplied`` record sent to ``log``; ``tx`` and ``rx`` count
what happened in each direction.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Callable

from synack.link.base import link_mtu
from synack.link.tun import gso_segment
from synack.wire.errors import WireError

if TYPE_CHECKING:
    from synack.link.base import Link

Match = Callable[[bytes], bool]
DIRECTIONS = ("tx", "rx")


@dataclass(frozen=True, slots=True)
class FaultApplied:
    """One fault applied to one packet. ``kind`` is one of ``loss``, ``drop`` (a scripted rule),
    ``corrupt``, ``dup``, ``delay``, ``reorder``; ``length`` is the packet's size in octets."""
    t: float
    kind: str
    direction: str
    length: int
    detail: str = ""


@dataclass(slots=True)
class FaultCounters:
    """What a ``Faults`` wrapper did in one direction (``seen`` counts packets offered to it)."""
    seen: int = 0
    passed: int = 0       # copies handed on (immediately or after being held)
    loss: int = 0
    drop: int = 0         # scripted drops
    corrupt: int = 0
    dup: int = 0
    delay: int = 0
    reorder: int = 0

    def __add__(self, other: "FaultCounters") -> "FaultCounters":
        return FaultCounters(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(slots=True)
class ScriptedDrop:
    """A scripted rule, returned by ``Faults.drop_nth`` / ``drop_if``; ``dropped`` counts its hits.

    ``nth`` set: drop only the ``nth`` matching packet (1-based). Otherwise drop the next
    ``remaining`` matching packets (``None``: every one, forever).
    """
    direction: str
    match: Match | None
    label: str
    nth: int | None = None
    remaining: int | None = None
    matched: int = 0
    dropped: int = 0

    @property
    def done(self) -> bool:
        """True once this rule can never drop again."""
        if self.nth is not None:
            return self.matched >= self.nth
        return self.remaining == 0

    def check(self, packet: bytes) -> bool:
        """Count ``packet`` if it matches; True if this rule drops it."""
        if self.done:
            return False
        if self.match is not None:
            try:
                if not self.match(packet):
                    return False
            except WireError:      # a matcher that parses: a packet it cannot parse is no match
                return False
        self.matched += 1
        if self.nth is not None:
            hit = self.matched == self.nth
        else:
            hit = True
            if self.remaining is not None:
                self.remaining -= 1
        self.dropped += hit
        return hit


def _check_probability(name: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


class Faults:
    """A ``Link`` that applies faults to the packets crossing it (see the module docstring).

    ``rng`` is the only source of randomness: pass ``random.Random(seed)`` and print the seed.
    Times are seconds on the caller's clock (``now``); nothing here reads a clock.
    """

    def __init__(self, inner: "Link", rng: random.Random, *, loss: float = 0.0, dup: float = 0.0,
                 reorder: float = 0.0, reorder_delay: float = 0.01, delay: float = 0.0,
                 jitter: float = 0.0, corrupt: float = 0.0, corrupt_bits: int = 1,
                 direction: str = "both", log: Callable[[object], None] | None = None) -> None:
        if direction not in ("both", "tx", "rx"):
            raise ValueError(f"direction must be 'both', 'tx' or 'rx', got {direction!r}")
        if min(reorder_delay, delay, jitter) < 0:
            raise ValueError("reorder_delay, delay and jitter must be >= 0")
        if corrupt_bits < 1:
            raise ValueError("corrupt_bits must be >= 1")
        self.inner = inner
        self.rng = rng
        self.loss = _check_probability("loss", loss)
        self.dup = _check_probability("dup", dup)
        self.reorder = _check_probability("reorder", reorder)
        self.corrupt = _check_probability("corrupt", corrupt)
        self.reorder_delay = float(reorder_delay)
        self.delay = float(delay)
        self.jitter = float(jitter)
        self.corrupt_bits = corrupt_bits
        self.direction = direction
        self.log = log
        self.tx = FaultCounters()
        self.rx = FaultCounters()
        self.rules: list[ScriptedDrop] = []
        self._faulted = DIRECTIONS if direction == "both" else (direction,)
        self._held: dict[str, list[tuple[float, int, bytes]]] = {"tx": [], "rx": []}
        self._fifo_floor = {"tx": float("-inf"), "rx": float("-inf")}
        self._seq = itertools.count()

    # --- scripted faults ------------------------------------------------------------------

    def drop_nth(self, n: int, direction: str = "tx", match: Match | None = None) -> ScriptedDrop:
        """Drop the ``n``-th packet (1-based) in ``direction`` for which ``match(packet)`` is true
        (every packet if ``match`` is None): e.g. "the 2nd TCP segment A→B", "the first SYN-ACK"."""
        if n < 1:
            raise ValueError(f"n is 1-based, got {n!r}")
        return self._add_rule(ScriptedDrop(self._dir(direction), match, f"drop_nth({n})", nth=n))

    def drop_if(self, predicate: Match, count: int | None = 1, direction: str = "tx") -> ScriptedDrop:
        """Drop the next ``count`` packets in ``direction`` for which ``predicate(packet)`` is
        true (``count=None``: all of them). A predicate raising ``WireError`` means no match."""
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0 or None, got {count!r}")
        return self._add_rule(ScriptedDrop(self._dir(direction), predicate, f"drop_if(count={count})",
                                           remaining=count))

    def _add_rule(self, rule: ScriptedDrop) -> ScriptedDrop:
        self.rules.append(rule)
        return rule

    @staticmethod
    def _dir(direction: str) -> str:
        if direction not in DIRECTIONS:
            raise ValueError(f"a scripted rule's direction is 'tx' or 'rx', got {direction!r}")
        return direction

    # --- the Link protocol ----------------------------------------------------------------

    def transmit(self, packet: bytes, now: float) -> None:
        self._flush_tx(now)
        for release, p in self._apply(bytes(packet), "tx", now):
            if release <= now:
                self.tx.passed += 1
                self.inner.transmit(p, now)
            else:
                heapq.heappush(self._held["tx"], (release, next(self._seq), p))

    def receive(self, now: float) -> list[bytes]:
        self._flush_tx(now)
        fresh: list[bytes] = []
        for packet in self.inner.receive(now):
            for release, p in self._apply(packet, "rx", now):
                if release <= now:
                    fresh.append(p)
                else:
                    heapq.heappush(self._held["rx"], (release, next(self._seq), p))
        held = self._held["rx"]
        due: list[bytes] = []
        while held and held[0][0] <= now:
            due.append(heapq.heappop(held)[2])
        out = due + fresh     # held ones were sent before the ones arriving just now
        self.rx.passed += len(out)
        return out

    def next_timer(self) -> float | None:
        ts = [h[0][0] for h in self._held.values() if h]
        inner = self.inner.next_timer()
        if inner is not None:
            ts.append(inner)
        return min(ts, default=None)

    # --- queries --------------------------------------------------------------------------

    @property
    def counters(self) -> FaultCounters:
        """Both directions added up."""
        return self.tx + self.rx

    def held(self) -> int:
        """Packets held right now (delayed or reordered), both directions."""
        return sum(len(h) for h in self._held.values())

    # --- internals ------------------------------------------------------------------------

    def _flush_tx(self, now: float) -> None:
        held = self._held["tx"]
        while held and held[0][0] <= now:
            self.tx.passed += 1
            self.inner.transmit(heapq.heappop(held)[2], now)

    def _record(self, now: float, kind: str, direction: str, packet: bytes, detail: str = "") -> None:
        c = self.tx if direction == "tx" else self.rx
        setattr(c, kind, getattr(c, kind) + 1)
        if self.log is not None:
            self.log(FaultApplied(now, kind, direction, len(packet), detail))

    def _apply(self, packet: bytes, direction: str, now: float) -> list[tuple[float, bytes]]:
        """Decide this packet's fate: the copies to hand on, each with its release time."""
        (self.tx if direction == "tx" else self.rx).seen += 1
        for rule in self.rules:
            if rule.direction == direction and rule.check(packet):
                self._record(now, "drop", direction, packet, rule.label)
                return []
        if direction not in self._faulted:
            return [(now, packet)]
        rng = self.rng
        if self.loss and rng.random() < self.loss:
            self._record(now, "loss", direction, packet)
            return []
        pieces = [packet]
        if self.corrupt and packet and rng.random() < self.corrupt:
            pieces = self._cut(packet)
            i = rng.randrange(len(pieces)) if len(pieces) > 1 else 0
            pieces[i], bits = self._flip(pieces[i])
            self._record(now, "corrupt", direction, pieces[i], "bits " + ",".join(map(str, bits))
                         + (f" of piece {i + 1}/{len(pieces)}" if len(pieces) > 1 else ""))
        copies = [pieces]
        if self.dup and rng.random() < self.dup:
            copies.append(pieces)
            self._record(now, "dup", direction, packet)
        out = []
        for group in copies:
            p = group[0]
            release = now
            if self.delay or self.jitter:
                extra = self.delay + (rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0)
                release = max(now + max(extra, 0.0), self._fifo_floor[direction])
                self._fifo_floor[direction] = release
                if release > now:
                    self._record(now, "delay", direction, p, f"until {release!r}")
            if self.reorder and rng.random() < self.reorder:
                release += self.reorder_delay
                self._record(now, "reorder", direction, p, f"held until {release!r}")
            out += [(release, piece) for piece in group]
        return out

    def _cut(self, packet: bytes) -> list[bytes]:
        """``packet`` as the wrapped link would put it on the wire: a TCP super-segment over the
        link's MTU (partial checksum, TSO) cut into segments with full checksums; else itself."""
        mtu = link_mtu(self.inner) or 1500       # none says: Ethernet's
        if len(packet) <= mtu:
            return [packet]
        version = packet[0] >> 4
        proto = packet[9] if version == 4 else packet[6] if version == 6 else None
        if proto != 6:
            return [packet]
        return gso_segment(packet, mtu)

    def _flip(self, packet: bytes) -> tuple[bytes, list[int]]:
        buf = bytearray(packet)
        bits = sorted(self.rng.sample(range(len(buf) * 8), min(self.corrupt_bits, len(buf) * 8)))
        for b in bits:
            buf[b >> 3] ^= 0x80 >> (b & 7)       # bit 0 is the first octet's most significant bit
        return bytes(buf), bits


__all__ = ["Faults", "FaultApplied", "FaultCounters", "ScriptedDrop"]
