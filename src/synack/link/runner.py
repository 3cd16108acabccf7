"""``StackRunner``: a stack, a link and one blocking loop in one thread.

The loop waits in ``poll(2)`` on the link's fd (if it has one) and a wake-up pipe, with the
timeout the stack's (and link's) next deadline asks for on ``time.monotonic()``, then calls
``drive.step`` (STYLE.md §3) and the hooks. The stack is touched only by that thread: other
threads hand it work with ``call_soon_threadsafe(fn, *args)`` or ``submit(fn, *args)`` (a
``concurrent.futures.Future``), which write one byte to the pipe to wake the loop.

::

    runner = StackRunner(stack, link)
    runner.add_hook(lambda now: serve(stack, now))   # after every step, on the loop thread
    t = runner.start()                               # run() in a daemon thread, or call run()
    conn = runner.submit(stack.connect, ("192.0.2.1", 80), runner.now()).result(5)
    runner.stop(); t.join()

It is deliberately small: the asyncio adapter (STYLE.md §9) is the fast, event-driven one.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable

from synack.drive import earliest, step
from synack.link.base import link_mtu

_MAX_WAIT = 3600.0


class StackRunner:
    def __init__(self, stack, link, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stack = stack
        self.link = link
        self.clock = clock
        if (mtu := link_mtu(link)) is not None and hasattr(stack, "link_mtu"):
            stack.link_mtu = mtu                 # MSS from the link's MTU (RFC 9293 MUST-16/67)
        self.hooks: list[Callable[[float], Any]] = []
        self.steps = 0
        self._calls: deque[tuple[Callable, tuple]] = deque()
        self._lock = threading.Lock()
        self._rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stop = False
        self._thread: threading.Thread | None = None     # the thread inside run(), if any
        self.error: BaseException | None = None           # what ended a ``start()``ed loop

    # ---------------------------------------------------------------- for any thread

    def now(self) -> float:
        return self.clock()

    def call_soon_threadsafe(self, fn: Callable, *args) -> None:
        """Run ``fn(*args)`` on the loop thread at its next turn. An exception ends ``run()``."""
        with self._lock:
            self._calls.append((fn, args))
        self._wake()

    def submit(self, fn: Callable, *args) -> Future:
        """Run ``fn(*args)`` on the loop thread; the future gets its result or exception.
        Called on the loop thread itself, ``fn`` runs at once."""
        fut: Future = Future()

        def call() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args))
            except BaseException as e:
                fut.set_exception(e)

        if threading.current_thread() is self._thread:
            call()
        else:
            self.call_soon_threadsafe(call)
        return fut

    def stop(self) -> None:
        """Make ``run()`` return after its current turn (or its first, if it has not begun)."""
        self._stop = True
        self._wake()

    def add_hook(self, fn: Callable[[float], Any]) -> None:
        """``fn(now)`` runs on the loop thread after every step (serve events, move data...)."""
        self.hooks.append(fn)

    def _wake(self) -> None:
        try:
            os.write(self._wfd, b"\0")
        except (BlockingIOError, OSError):
            pass                       # the pipe is full (a wake-up is pending anyway) or closed

    # ---------------------------------------------------------------- the loop

    def run(self, until: Callable[[], bool] | None = None, timeout: float | None = None) -> bool:
        """Run the loop in this thread until ``until()`` is true (checked after every turn:
        returns True), ``stop()`` is called or ``timeout`` seconds pass (returns False)."""
        if self._thread is not None:
            raise RuntimeError("StackRunner.run() is already running in another thread")
        self._thread = threading.current_thread()
        poller = select.poll()
        fd = link_fileno(self.link)
        if fd is not None:
            poller.register(fd, select.POLLIN)
        poller.register(self._rfd, select.POLLIN)
        clock, stack, link = self.clock, self.stack, self.link
        end = None if timeout is None else clock() + timeout
        try:
            while True:
                now = clock()
                self._run_calls()
                step(stack, link, now)
                self.steps += 1
                for hook in self.hooks:
                    hook(now)
                if until is not None and until():
                    return True
                if self._stop:
                    return False
                now = clock()
                if end is not None and now >= end:
                    return False
                deadline = earliest(stack.next_timer(), link.next_timer(), end)
                wait = _MAX_WAIT if deadline is None else min(max(deadline - now, 0.0), _MAX_WAIT)
                if wait > 0 and not self._calls:
                    # poll() takes milliseconds: round up, or a deadline 0.4 ms away spins
                    events = poller.poll(int(wait * 1000) + 1)
                    for fd, _ in events:
                        if fd == self._rfd:
                            self._drain_pipe()
        finally:
            self._thread = None
            self._stop = False          # cleared here, so a stop() just before run() still counts

    def start(self, until: Callable[[], bool] | None = None, timeout: float | None = None,
              name: str = "synack-runner") -> threading.Thread:
        """``run()`` in a new daemon thread; returns the thread (``stop()`` then ``join()`` it)."""
        started = threading.Event()

        def main() -> None:
            started.set()
            try:
                self.run(until, timeout)
            except BaseException as e:     # kept for the joiner, who must check ``error``
                self.error = e

        self.error = None
        t = threading.Thread(target=main, name=name, daemon=True)
        t.start()
        started.wait(5)
        return t

    def _run_calls(self) -> None:
        while True:
            with self._lock:
                if not self._calls:
                    return
                fn, args = self._calls.popleft()
            fn(*args)

    def _drain_pipe(self) -> None:
        try:
            while os.read(self._rfd, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        """Close the wake-up pipe (not the link: its owner closes it)."""
        for fd in (self._rfd, self._wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._rfd = self._wfd = -1


def link_fileno(link) -> int | None:
    """The fd to wait on for ``link``: its own ``fileno()``, or that of the link it wraps
    (``.inner``, as ``Faults``, ``PcapLink`` and ``Tracer`` have), or None (e.g. a memory link)."""
    for _ in range(16):
        fileno = getattr(link, "fileno", None)
        if fileno is not None:
            return fileno()
        link = getattr(link, "inner", None)
        if link is None:
            return None
    return None


__all__ = ["StackRunner", "link_fileno"]
