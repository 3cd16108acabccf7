"""Virtual time for the simulator: time jumps to the next deadline, it never passes by itself.

A 2-minute TIME-WAIT (RFC 9293 §3.4.2, 2*MSL) costs one clock jump, not two minutes. Nothing
here reads the wall clock; ``now`` is a float in seconds on the same scale as ``loop.time()``.

``Clock`` is also a small discrete-event scheduler: ``call_at(t, fn, *args)`` runs ``fn(*args)``
when the simulation reaches ``t`` (tests use it to ping every second, or to close a connection
at a given instant). Callbacks due at the same time run in the order they were scheduled.

The simulation stops with one of the ``SimError`` exceptions below, never by hanging.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable


class SimError(Exception):
    """A simulation run could not finish; ``now`` is the virtual time it stopped at."""

    def __init__(self, now: float, waiting: str, detail: str = "") -> None:
        self.now = now
        self.waiting = waiting
        self.detail = detail
        msg = f"at t={now!r}: still waiting for {waiting}"
        super().__init__(f"{msg}; {detail}" if detail else msg)


class Stalled(SimError):
    """Nothing is scheduled anywhere (no node, link or callback has a deadline) and the run's
    predicate is still false: no amount of waiting can change that. ``waiting`` names the
    predicate; ``detail`` summarises the nodes and links."""


class LimitReached(SimError):
    """The run reached its virtual time limit with the predicate still false (work was still
    scheduled, e.g. retransmissions backing off)."""


class Spinning(SimError):
    """Something kept reporting a deadline ``<= now`` without the time ever moving on: a timer
    that wakes with nothing to do (STYLE.md §5 no-spin invariant) or an endless zero-delay
    ping-pong."""


@dataclass(order=True, slots=True)
class Scheduled:
    """A pending callback; ``cancel()`` it to stop it running. Ordered by (when, seq)."""
    when: float
    seq: int
    fn: Callable[..., Any] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False, default=())
    cancelled: bool = field(compare=False, default=False)

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """Virtual time plus a heap of scheduled callbacks.

    ``now`` only moves through ``advance(t)``, which refuses to go backwards (the ``now``
    passed to nodes is monotonic, as STYLE.md §3 requires).
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._heap: list[Scheduled] = []
        self._seq = itertools.count()

    @property
    def now(self) -> float:
        return self._now

    def advance(self, t: float) -> None:
        """Jump to ``t`` (>= now). Scheduled callbacks are not run here: see ``run_due()``."""
        if t < self._now:
            raise ValueError(f"virtual time cannot go back: {t!r} < now {self._now!r}")
        self._now = float(t)

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> Scheduled:
        """Run ``fn(*args)`` once the simulation reaches ``when`` (at once if already past)."""
        h = Scheduled(float(when), next(self._seq), fn, args)
        heapq.heappush(self._heap, h)
        return h

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Scheduled:
        """``call_at(now + delay, fn, *args)``."""
        if delay < 0:
            raise ValueError(f"negative delay {delay!r}")
        return self.call_at(self._now + delay, fn, *args)

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)

    def next_timer(self) -> float | None:
        """When the earliest pending callback is due, or None. A pure query (apart from
        discarding cancelled entries)."""
        self._drop_cancelled()
        return self._heap[0].when if self._heap else None

    def run_due(self) -> int:
        """Run every callback due by ``now``, earliest first; return how many ran.

        A callback may schedule more; those due by ``now`` run in this same call.
        """
        ran = 0
        while True:
            self._drop_cancelled()
            if not self._heap or self._heap[0].when > self._now:
                return ran
            h = heapq.heappop(self._heap)
            h.fn(*h.args)
            ran += 1

    def pending(self) -> int:
        """How many callbacks are still scheduled."""
        return sum(1 for h in self._heap if not h.cancelled)


__all__ = ["Clock", "Scheduled", "SimError", "Stalled", "LimitReached", "Spinning"]
