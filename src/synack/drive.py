"""The one drive function (STYLE.md §3): TUN, the simulator and the tests all call ``step()``.

A *node* is anything with the Stack interface::

    receive_packet(packet: bytes, now: float) -> None
    packets_to_send(now: float) -> list[bytes]
    next_timer() -> float | None          # a pure query; output owed now counts as due now
    handle_timer(now: float) -> None
    sends_run_timers: bool                # optional: True when packets_to_send(now) starts
                                          # with all that handle_timer(now) does

and a *link* implements ``synack.link.base.Link``. ``step()`` reads no clock: ``now`` is the
caller's (virtual time in the simulator, ``loop.time()`` under asyncio).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from synack.link.base import Link


class Node(Protocol):
    """What ``step()`` needs from a stack (``synack.stack.Stack``, ``synack.sim.host.EchoHost``)."""

    def receive_packet(self, packet: bytes, now: float) -> None: ...
    def packets_to_send(self, now: float) -> list[bytes]: ...
    def next_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


def earliest(*ts: float | None) -> float | None:
    """The smallest of the deadlines that are not None; None if all are None (or none given)."""
    best: float | None = None
    for t in ts:
        if t is not None and (best is None or t < best):
            best = t
    return best


def step(node: Node, link: "Link", now: float) -> float | None:
    """Run ``node`` over ``link`` once at ``now``; return when to call again (or None: idle).

    In order: every packet the link has due by ``now`` goes into the node; the node's timer
    fires if it is due; whatever the node has to send goes out on the link. The return value
    is the earlier of the node's and the link's next deadline; it may be ``<= now`` when the
    link already holds more due packets (e.g. a zero-delay peer answered), so callers loop.
    """
    for packet in link.receive(now):
        node.receive_packet(packet, now)
    if not getattr(node, "sends_run_timers", False):
        # (a node whose packets_to_send(now) first does all handle_timer(now) would, e.g. the
        # Stack, skips the query and the call: the same effect, two calls fewer)
        t = node.next_timer()
        if t is not None and t <= now:
            node.handle_timer(now)
    for packet in node.packets_to_send(now):
        link.transmit(packet, now)
    t, lt = node.next_timer(), link.next_timer()
    return t if lt is None or (t is not None and t <= lt) else lt     # earliest(t, lt)


__all__ = ["Node", "earliest", "step"]
