"""Running HTTP servers on a synack stack from a blocking program (``synack serve --http``).

``AsyncRunner`` has the interface of ``synack.link.runner.StackRunner`` that ``synack serve``
uses (``add_hook``, ``run(until, timeout)``, ``stop``, ``submit``, ``now``, ``close``), but drives
the stack with the asyncio adapter (``synack.api.aio.AsyncStack``) on a private event loop, run
in the calling thread during ``run()``. So asyncio servers (``HttpServer``) and StackRunner hooks
(``synack.services.ServiceHost``) share one stack:

* events of connections and listeners that an asyncio transport or server registered go to it;
* all other events wait for the hooks, which see them through ``runner.hook_stack`` — the same
  ``Stack`` whose ``next_event()`` yields only those (give it to ``ServiceHost``);
* hooks run after every pump, as after every StackRunner step.

``with_fileno(link)`` lets the adapter watch a wrapped link (``PcapLink``, ``Faults``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
from typing import Any, Callable

from synack.api.aio import AsyncStack
from synack.link.runner import link_fileno


class FdLink:
    """A link wrapper adding ``fileno()`` (and ``wants_write``/``flush``) from the link it wraps,
    however deep, for adapters that watch the fd."""

    def __init__(self, link: Any) -> None:
        fd = link_fileno(link)
        if fd is None:
            raise ValueError(f"{link!r} has no file descriptor to watch")
        self.inner = link
        self._fd = fd
        self._writer = link
        while self._writer is not None and not hasattr(self._writer, "flush"):
            self._writer = getattr(self._writer, "inner", None)

    def fileno(self) -> int:
        return self._fd

    def transmit(self, packet: bytes, now: float) -> None:
        self.inner.transmit(packet, now)

    def receive(self, now: float) -> list[bytes]:
        return self.inner.receive(now)

    def next_timer(self) -> float | None:
        return self.inner.next_timer()

    @property
    def wants_write(self) -> bool:
        return bool(getattr(self._writer, "wants_write", False))

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()


def with_fileno(link: Any) -> Any:
    """``link`` itself if it has ``fileno()``, else an ``FdLink`` around it."""
    return link if hasattr(link, "fileno") else FdLink(link)


class _HookedStack(AsyncStack):
    """An ``AsyncStack`` that keeps unclaimed events for hooks and runs the hooks after a pump."""

    def __init__(self, stack: Any, link: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.unclaimed: deque = deque()
        self.hooks: list[Callable[[float], Any]] = []
        super().__init__(stack, link, loop)

    def _dispatch_events(self) -> None:
        stack = self.stack
        while (item := stack.next_event()) is not None:
            h = self._handlers.get(id(item[0]))
            if h is None:
                self.unclaimed.append(item)
                continue
            try:
                h._on_event(item[1])
            except Exception as e:             # noqa: BLE001 - user code must not stop the stack
                self.loop.call_exception_handler({"message": "synack: exception in handler", "exception": e})
        if self.hooks:
            now = self.loop.time()
            for hook in list(self.hooks):
                hook(now)
            t = stack.next_timer()
            if t is not None and t <= now:
                self._kick()                   # a hook made output: pump again at once
        self.unclaimed.clear()                 # a hook that wanted them has pulled them


class HookStack:
    """``hook_stack``: the stack as hooks see it (``next_event`` yields unclaimed events only)."""

    def __init__(self, runner: "AsyncRunner") -> None:
        self._runner = runner

    def next_event(self):
        q = self._runner.astack.unclaimed
        return q.popleft() if q else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner.stack, name)


class AsyncRunner:
    """See the module docstring. Construct it in the thread that will call ``run()``."""

    def __init__(self, stack: Any, link: Any) -> None:
        self.stack = stack
        self.link = link
        self.loop = asyncio.new_event_loop()
        self.astack = _HookedStack(stack, with_fileno(link), self.loop)
        self.hook_stack = HookStack(self)
        self.steps = 0
        self.error: BaseException | None = None
        self._stop: asyncio.Future | None = None
        self._stop_requested = False
        self._thread: threading.Thread | None = None

    @property
    def hooks(self) -> list[Callable[[float], Any]]:
        return self.astack.hooks

    def add_hook(self, fn: Callable[[float], Any]) -> None:
        self.astack.hooks.append(fn)

    def now(self) -> float:
        return self.loop.time()

    def run_coroutine(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a coroutine on the loop (from the thread that owns it, while ``run()`` is not)."""
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def run(self, until: Callable[[], bool] | None = None, timeout: float | None = None) -> bool:
        """Run the loop until ``until()`` is true after a pump (True), ``stop()`` or ``timeout``."""
        loop = self.loop
        self._thread = threading.current_thread()
        self._stop = loop.create_future()
        if self._stop_requested:
            self._stop_requested = False
            self._stop.set_result(False)

        def check(now: float) -> None:
            self.steps += 1
            if until is not None and until() and not self._stop.done():
                self._stop.set_result(True)
        self.astack.hooks.append(check)
        self.astack._kick()
        try:
            return loop.run_until_complete(asyncio.wait_for(asyncio.shield(self._stop), timeout)
                                           if timeout is not None else self._stop)
        except asyncio.TimeoutError:
            return False
        finally:
            self.astack.hooks.remove(check)
            self._thread = None
            self._stop = None

    def stop(self) -> None:
        """Make ``run()`` return (safe from a signal handler and from other threads)."""
        def do() -> None:
            if self._stop is not None and not self._stop.done():
                self._stop.set_result(False)
            elif self._stop is None:
                self._stop_requested = True
        try:
            self.loop.call_soon_threadsafe(do)
        except RuntimeError:
            pass

    def submit(self, fn: Callable, *args: Any) -> concurrent.futures.Future:
        """Run ``fn(*args)`` on the loop at its next turn; on the loop thread itself, at once."""
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def call() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args))
            except BaseException as e:     # noqa: BLE001
                fut.set_exception(e)
            self.astack._kick()
        if threading.current_thread() is self._thread:
            call()
        else:
            self.loop.call_soon_threadsafe(call)
        return fut

    def call_soon_threadsafe(self, fn: Callable, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.astack.close()
        tasks = asyncio.all_tasks(self.loop)
        for t in tasks:
            t.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()


__all__ = ["AsyncRunner", "FdLink", "HookStack", "with_fileno"]
