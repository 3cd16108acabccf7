"""A deterministic network simulator on virtual time (STYLE.md §7 "Virtual clock").

::

    net = Network(seed=7)
    a = net.add_node("a", EchoHost("10.0.0.1"))
    b = net.add_node("b", EchoHost("10.0.0.2"))
    net.connect("a", "b", delay=0.01, bandwidth=10e6, faults=dict(loss=0.01))
    a.ping("10.0.0.2", ident=1, seq=1, data=b"hi", now=net.now)
    net.run_until(lambda: a.replies, limit=5.0)

Nodes have the Stack interface (``receive_packet``, ``packets_to_send``, ``next_timer``,
``handle_timer``) and are driven by ``synack.drive.step``, exactly as over TUN. The loop steps
every node at ``now``, then jumps the clock to the earliest deadline of all nodes, links and
scheduled callbacks; no wall time passes while nothing happens.

Determinism: the network owns one ``random.Random(seed)``; every link's fault RNG is derived
from it (``derive_rng``) in the order links are created, whatever faults they use, so a run is a
function of the seed and the script. Nodes are stepped in the order they were added.

Links (``SimLink``) are point-to-point, full duplex, and each direction is a FIFO:

* ``mtu``: a packet longer than ``mtu`` octets (the whole IP packet; there is no link-layer
  header) is dropped at the sender and counted as ``"mtu"``. Nothing fragments it and no
  ICMP "fragmentation needed" / Packet Too Big comes back: that is a router's job (RFC 1191 §3,
  RFC 8201 §4), and a sim link is a wire, not a router;
* ``bandwidth`` (bits/s, None = infinite): a packet occupies the sender for ``len*8/bandwidth``
  seconds, starting when the packets before it are done (packets queue behind each other);
* ``queue_limit`` (packets) / ``queue_bytes`` (octets): how much may wait behind the packet
  being serialised; a packet that would exceed either is tail-dropped, counted as ``"queue"``.
  An idle link always takes a packet;
* ``delay`` (seconds): propagation delay, added after serialisation.

So a packet of ``n`` octets sent at ``t`` on an idle link arrives at ``t + n*8/bandwidth + delay``.
"""

from __future__ import annotations

import inspect
import random
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from synack.drive import earliest, step
from synack.link.faults import Faults
from synack.sim.clock import Clock, LimitReached, Scheduled, Spinning, Stalled

if TYPE_CHECKING:
    from synack.drive import Node
    from synack.link.base import Link

# Rounds allowed at one instant before the run is declared a spin: far more than any legitimate
# zero-delay exchange needs.
MAX_ROUNDS_PER_INSTANT = 10_000


@dataclass(slots=True)
class EndCounters:
    """One link end: what it sent (accepted onto the wire), received, and dropped by reason
    (``"mtu"``, ``"queue"``, ``"down"``). Packets offered = ``sent + sum(dropped.values())``."""
    sent: int = 0
    sent_bytes: int = 0
    received: int = 0
    received_bytes: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


class SimLinkEnd:
    """One end of a ``SimLink``; implements ``Link``. ``transmit`` sends towards the peer end."""

    def __init__(self, link: "SimLink", name: str) -> None:
        self.link = link
        self.name = name
        self.peer: SimLinkEnd
        self.counters = EndCounters()
        self._arrivals: deque[tuple[float, bytes]] = deque()   # towards this end, arrival order
        self._waiting: deque[tuple[float, int]] = deque()      # (start, len) queued from this end
        self._waiting_bytes = 0
        self._busy_until = float("-inf")                       # this end's transmitter

    @property
    def mtu(self) -> int:
        return self.link.mtu

    def transmit(self, packet: bytes, now: float) -> None:
        link, c, n = self.link, self.counters, len(packet)
        if not link.up:
            return c.drop("down")
        if n > link.mtu:
            return c.drop("mtu")
        while self._waiting and self._waiting[0][0] <= now:   # serialisation has started
            self._waiting_bytes -= self._waiting.popleft()[1]
        start = max(now, self._busy_until)
        if start > now:                                       # must wait behind others
            if ((link.queue_limit is not None and len(self._waiting) + 1 > link.queue_limit)
                    or (link.queue_bytes is not None and self._waiting_bytes + n > link.queue_bytes)):
                return c.drop("queue")                        # tail drop
            self._waiting.append((start, n))
            self._waiting_bytes += n
        finish = start + (n * 8 / link.bandwidth if link.bandwidth else 0.0)
        self._busy_until = finish
        self.peer._arrivals.append((finish + link.delay, bytes(packet)))
        c.sent += 1
        c.sent_bytes += n

    def receive(self, now: float) -> list[bytes]:
        out: list[bytes] = []
        arrivals = self._arrivals
        while arrivals and arrivals[0][0] <= now:
            out.append(arrivals.popleft()[1])
        self.counters.received += len(out)
        self.counters.received_bytes += sum(map(len, out))
        return out

    def next_timer(self) -> float | None:
        """When the next packet reaches this end."""
        return self._arrivals[0][0] if self._arrivals else None

    def in_flight(self) -> int:
        """Packets on their way to this end."""
        return len(self._arrivals)

    def __repr__(self) -> str:
        return f"SimLinkEnd({self.name!r}, {self.counters})"


class SimLink:
    """A point-to-point link between two named ends; see the module docstring for the model.

    Set ``up = False`` to cut it: packets transmitted meanwhile are dropped (``"down"``);
    packets already on the wire still arrive.
    """

    def __init__(self, a: str, b: str, *, delay: float = 0.001, bandwidth: float | None = None,
                 queue_limit: int | None = None, queue_bytes: int | None = None,
                 mtu: int = 1500) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay!r}")
        if bandwidth is not None and bandwidth <= 0:
            raise ValueError(f"bandwidth must be > 0 bits/s or None, got {bandwidth!r}")
        if (queue_limit is not None and queue_limit < 0) or (queue_bytes is not None and queue_bytes < 0):
            raise ValueError("queue limits must be >= 0 or None")
        if mtu < 1:
            raise ValueError(f"mtu must be >= 1, got {mtu!r}")
        self.delay, self.bandwidth, self.mtu = float(delay), bandwidth, mtu
        self.queue_limit, self.queue_bytes = queue_limit, queue_bytes
        self.up = True
        self.a, self.b = SimLinkEnd(self, a), SimLinkEnd(self, b)
        self.a.peer, self.b.peer = self.b, self.a

    def end(self, name: str) -> SimLinkEnd:
        if name == self.a.name:
            return self.a
        if name == self.b.name:
            return self.b
        raise KeyError(f"link {self.a.name}<->{self.b.name} has no end {name!r}")

    def __repr__(self) -> str:
        return f"SimLink({self.a.name!r}<->{self.b.name!r}, delay={self.delay}, bandwidth={self.bandwidth})"


class _Unconnected:
    """The link of a node that was never connected: it sends into the void."""

    def __init__(self) -> None:
        self.discarded = 0

    def transmit(self, packet: bytes, now: float) -> None:
        self.discarded += 1

    def receive(self, now: float) -> list[bytes]:
        return []

    def next_timer(self) -> float | None:
        return None


@dataclass(slots=True)
class Attachment:
    """A node and how it is wired: ``link`` is what ``step()`` uses (outermost wrapper),
    ``faults`` the fault wrapper on its transmissions, ``end`` the raw ``SimLinkEnd``."""
    name: str
    node: Any
    link: Any
    faults: Faults | None = None
    end: SimLinkEnd | None = None


def _describe(predicate: Callable[[], object]) -> str:
    name = getattr(predicate, "__qualname__", None) or repr(predicate)
    if name.endswith("<lambda>"):
        try:
            return inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            pass
    return name


class Network:
    """Nodes, point-to-point links between them, one clock and one seeded RNG.

    ``log``, if given, receives every link's ``FaultApplied`` records.
    """

    def __init__(self, seed: int, *, start: float = 0.0, log: Callable[[object], None] | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = Clock(start)
        self.log = log
        self.links: list[SimLink] = []
        self._nodes: dict[str, Attachment] = {}

    @property
    def now(self) -> float:
        return self.clock.now

    # --- building ---------------------------------------------------------------------------

    def derive_rng(self) -> random.Random:
        """A new ``Random`` seeded from the network's RNG: the n-th call always gets the same."""
        return random.Random(self.rng.getrandbits(64))

    def add_node(self, name: str, node: "Node") -> Any:
        """Add ``node`` under ``name``; returns ``node``. Nodes are stepped in the order added."""
        if name in self._nodes:
            raise ValueError(f"node {name!r} exists")
        self._nodes[name] = Attachment(name, node, _Unconnected())
        return node

    def connect(self, a: str, b: str, *, delay: float = 0.001, bandwidth: float | None = None,
                queue_limit: int | None = None, queue_bytes: int | None = None, mtu: int = 1500,
                faults: Mapping[str, Any] | tuple[Mapping[str, Any] | None, Mapping[str, Any] | None] | None = None,
                wrap: Callable[[str, "Link"], "Link"] | None = None) -> SimLink:
        """Wire nodes ``a`` and ``b`` with a new ``SimLink`` (parameters: module docstring).

        Each end is wrapped in a ``Faults`` (always, so scripted drops can be added later via
        ``faults_of(name)``) that by default acts on that end's transmissions (``direction
        "tx"``), so every packet meets exactly one fault stage. ``faults`` is a dict of
        ``Faults`` keyword arguments for both directions, or a pair ``(for a→b, for b→a)``.
        ``wrap(name, link)``, if given, wraps each end outermost (next to the node), e.g. a
        ``PcapLink`` or ``Tracer`` at the stack's vantage. One link per node: no routing yet.
        """
        for n in (a, b):
            if n not in self._nodes:
                raise KeyError(f"no node {n!r}: add_node() it first")
            if self._nodes[n].end is not None:
                raise ValueError(f"node {n!r} already has a link (no routing in the simulator yet)")
        if a == b:
            raise ValueError("cannot connect a node to itself")
        link = SimLink(a, b, delay=delay, bandwidth=bandwidth, queue_limit=queue_limit,
                       queue_bytes=queue_bytes, mtu=mtu)
        self.links.append(link)
        per_end = faults if isinstance(faults, tuple) else (faults, faults)
        for name, spec in zip((a, b), per_end):
            end = link.end(name)
            kwargs = {"direction": "tx", "log": self.log, **(spec or {})}
            f = Faults(end, self.derive_rng(), **kwargs)
            outer: Any = wrap(name, f) if wrap is not None else f
            att = self._nodes[name]
            att.link, att.faults, att.end = outer, f, end
            if hasattr(att.node, "link_mtu"):
                att.node.link_mtu = mtu               # a Stack sizes its MSS by it (MUST-16/67)
        return link

    # --- looking ---------------------------------------------------------------------------

    def node(self, name: str) -> Any:
        return self._nodes[name].node

    def link(self, name: str) -> "Link":
        """The (outermost) link node ``name`` is stepped with."""
        return self._nodes[name].link

    def faults_of(self, name: str) -> Faults:
        """The fault wrapper on node ``name``'s side (for ``drop_nth``, counters)."""
        f = self._nodes[name].faults
        if f is None:
            raise KeyError(f"node {name!r} is not connected")
        return f

    def end(self, name: str) -> SimLinkEnd:
        """Node ``name``'s raw link end (its ``counters``)."""
        e = self._nodes[name].end
        if e is None:
            raise KeyError(f"node {name!r} is not connected")
        return e

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> Scheduled:
        """Run ``fn(*args)`` when the simulation reaches ``when`` (before nodes step then)."""
        return self.clock.call_at(when, fn, *args)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Scheduled:
        return self.clock.call_later(delay, fn, *args)

    def next_timer(self) -> float | None:
        """The earliest deadline of any callback, node or link; None when all are idle."""
        ts = [self.clock.next_timer()]
        for att in self._nodes.values():
            ts.append(att.node.next_timer())
            ts.append(att.link.next_timer())
        return earliest(*ts)

    def summary(self) -> str:
        """One line per node: its link counters and held packets (for failure messages)."""
        parts = []
        for att in self._nodes.values():
            if att.end is None:
                parts.append(f"{att.name}: unconnected")
                continue
            c, f = att.end.counters, att.faults
            parts.append(f"{att.name}: sent={c.sent} received={c.received} dropped={c.dropped} "
                         f"faults_held={f.held() if f else 0}")
        return "; ".join(parts)

    # --- running ---------------------------------------------------------------------------

    def step_all(self) -> None:
        """Run the callbacks due now, then ``step()`` every node once at ``now``."""
        now = self.clock.now
        self.clock.run_due()
        for att in self._nodes.values():
            step(att.node, att.link, now)

    def run_until(self, predicate: Callable[[], object], limit: float = 60.0, *,
                  what: str | None = None) -> bool:
        """Run until ``predicate()`` is true; return True. ``limit`` is in virtual seconds from
        now.

        The predicate is checked first, then after every round. Raises ``Stalled`` when nothing
        is scheduled anywhere and the predicate is false; ``LimitReached`` (the clock left at
        ``now + limit``) when the next deadline lies beyond the limit. Raising rather than
        returning False means a forgotten ``assert`` cannot hide a failure; to run for a while
        and then look, use ``run_for``. ``what`` names the predicate in those errors.
        """
        if predicate():
            return True
        deadline = self.clock.now + limit
        rounds = 0
        while True:
            now = self.clock.now
            self.step_all()
            if predicate():
                return True
            nxt = self.next_timer()
            if nxt is None:
                raise Stalled(now, what or _describe(predicate), self.summary())
            if nxt > deadline:
                self.clock.advance(deadline)
                if predicate():
                    return True
                raise LimitReached(deadline, what or _describe(predicate), self.summary())
            if nxt <= now:
                rounds += 1
                if rounds > MAX_ROUNDS_PER_INSTANT:
                    raise Spinning(now, what or _describe(predicate), self.summary())
            else:
                rounds = 0
                self.clock.advance(nxt)

    def run_for(self, duration: float) -> None:
        """Run everything due within the next ``duration`` virtual seconds (deadlines at exactly
        ``now + duration`` included); the clock ends at ``now + duration``. Idle is fine here."""
        if duration < 0:
            raise ValueError(f"negative duration {duration!r}")
        end = self.clock.now + duration
        rounds = 0
        while True:
            now = self.clock.now
            self.step_all()
            nxt = self.next_timer()
            if nxt is None or nxt > end:       # nothing is due in (now, end]
                self.clock.advance(end)
                return
            if nxt <= now:
                rounds += 1
                if rounds > MAX_ROUNDS_PER_INSTANT:
                    raise Spinning(now, f"run_for({duration})", self.summary())
            else:
                rounds = 0
                self.clock.advance(nxt)


__all__ = ["Network", "SimLink", "SimLinkEnd", "EndCounters", "Attachment", "MAX_ROUNDS_PER_INSTANT"]
