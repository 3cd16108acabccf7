"""``ServerStream``: the ``StreamReader``/``StreamWriter`` pair the HTTP server uses, as one
asyncio protocol object, for ``loop.create_server`` and synack's ``AsyncStack.create_server``.

``HttpServer.listen_kernel`` and ``listen_synack`` use it instead of ``asyncio.start_server``'s
``StreamReaderProtocol`` + ``StreamReader`` + ``StreamWriter`` (three objects, a future for the
protocol's close, a bytearray every received byte is copied into and out of): per connection
one object, and ``read`` hands over the bytes the transport delivered as they are when they fit.
It has what the server calls and nothing else, with ``asyncio``'s semantics:

* reading: ``read(n)`` (at most ``n`` bytes; ``b""`` at EOF; the connection's error, if it was
  lost with one), ``exception()``; reading is paused while more than ``2 * limit`` bytes wait,
  resumed when ``limit`` or fewer do (as ``StreamReader``: unread bytes stay in TCP's buffers
  and its window closes);
* writing: ``write``, ``write_eof``, ``can_write_eof``, ``drain`` (waits while the transport has
  paused the protocol; ``ConnectionResetError`` once the connection is lost), ``close``,
  ``is_closing``, ``get_extra_info``, ``transport``;
* and one thing of its own: ``drop_input`` (input dropped from then on, a callback at EOF, at
  the connection's loss or after a limit), for the server's lingering close without a task.

``HttpServer.handle(reader, writer)`` still takes any ``StreamReader``/``StreamWriter`` pair.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

LIMIT = 65536             # as asyncio's streams: reading pauses beyond 2 * LIMIT waiting bytes


class ServerStream(asyncio.Protocol):
    """One accepted connection: ``cb(self, self)`` runs as a task from ``connection_made``.

    With ``made`` (a *deferred start*), ``connection_made`` calls ``made(self)`` instead, and the
    task starts when the first input comes (bytes, EOF or the connection's loss), or when
    ``start()`` is called: a new connection costs no task step, no future and no wake-up of its
    handler before there is something to read (``HttpServer`` uses it and keeps the idle
    timeout of such a connection itself). ``tag`` is for the owner of ``made``."""

    __slots__ = ("_cb", "_loop", "_limit", "_chunks", "_size", "_eof", "_exc", "_waiter", "_lost",
                 "_read_paused", "_write_paused", "_drain_waiters", "_task", "transport", "_made",
                 "_started", "tag", "_drop_end", "_dropped", "_drop_limit")

    def __init__(self, cb: Callable[[Any, Any], Awaitable[None]], loop: asyncio.AbstractEventLoop,
                 limit: int = LIMIT, made: Callable[["ServerStream"], Any] | None = None) -> None:
        self._made = made
        self._started = False          # the task was started (or never will be: see start())
        self.tag: Any = None
        self._cb = cb
        self._loop = loop
        self._limit = limit
        self._chunks: list[bytes] = []           # received, not yet read
        self._size = 0
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future | None = None
        self._lost = False
        self._read_paused = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future] = []
        self._task: asyncio.Task | None = None
        self.transport: Any = None
        self._drop_end: tuple | None = None       # (fn, arg) while input is dropped: drop_input()
        self._dropped = 0
        self._drop_limit = 0

    # ------------------------------------------------------------------ protocol

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self._made is None:
            self.start()
        else:
            self._made(self)

    @property
    def started(self) -> bool:
        """The task was started (or ``start(run=False)`` said it never will be)."""
        return self._started

    def start(self, run: bool = True) -> None:
        """Start the task now, if it has not started yet; ``run=False``: never start it (the
        owner closed the connection before any input came)."""
        if not self._started:
            self._started = True
            if run:
                self._task = self._loop.create_task(self._cb(self, self))

    def data_received(self, data: bytes) -> None:
        if not data:
            return
        if not self._started:
            self.start()
        if self._drop_end is not None:           # a lingering close: dropped (see drop_input)
            self._dropped += len(data)
            if self._dropped >= self._drop_limit:
                self._end_drop()
            return
        if type(data) is not bytes:
            data = bytes(data)
        self._chunks.append(data)
        self._size += len(data)
        self._wake()
        if not self._read_paused and self._size > 2 * self._limit:
            try:
                self.transport.pause_reading()
            except NotImplementedError:
                pass
            else:
                self._read_paused = True

    def eof_received(self) -> bool:
        if not self._started:
            self.start()
        self._eof = True
        self._wake()
        if self._drop_end is not None:
            self._end_drop()
        return True                    # keep the transport open: we may still write (half-close)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._started:
            self.start()
        self._lost = True
        if exc is None:
            self._eof = True
            self._wake()
        else:
            self._exc = exc
            w = self._waiter
            if w is not None and not w.done():
                w.set_exception(exc)
        if self._write_paused:
            for w in self._drain_waiters:
                if not w.done():
                    if exc is None:
                        w.set_result(None)
                    else:
                        w.set_exception(exc)
        self._task = None
        if self._drop_end is not None:
            self._end_drop()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # ------------------------------------------------------------------ reading

    def exception(self) -> BaseException | None:
        return self._exc

    def read_ready(self) -> bool:
        """Would ``read()`` return (or raise) without waiting?"""
        return bool(self._size or self._eof or self._exc is not None)

    async def read(self, n: int) -> bytes:
        """At most ``n`` (> 0) bytes, as soon as there are any; ``b""`` at EOF."""
        if self._exc is not None:
            raise self._exc
        if not self._size and not self._eof:
            if self._read_paused:
                self._read_paused = False
                self.transport.resume_reading()
            if self._waiter is not None:
                raise RuntimeError("read() called while another coroutine is already waiting for incoming data")
            self._waiter = w = self._loop.create_future()
            try:
                await w
            finally:
                self._waiter = None
        chunks = self._chunks
        if not chunks:
            return b""
        first = chunks[0]
        if len(first) <= n:
            del chunks[0]
            if chunks and len(first) < n:
                more = [first]
                left = n - len(first)
                while chunks and left:
                    c = chunks[0]
                    if len(c) <= left:
                        more.append(c)
                        del chunks[0]
                        left -= len(c)
                    else:
                        more.append(c[:left])
                        chunks[0] = c[left:]
                        left = 0
                first = b"".join(more)
            data = first
        else:
            data = first[:n]
            chunks[0] = first[n:]
        self._size -= len(data)
        if self._read_paused and self._size <= self._limit:
            self._read_paused = False
            self.transport.resume_reading()
        return data

    def drop_input(self, limit: int, fn: Callable[[Any], Any], arg: Any) -> None:
        """From now on, received bytes are dropped instead of kept for ``read`` (those waiting
        are dropped now), and ``fn(arg)`` is called once: at EOF, at the connection's loss, or
        when ``limit`` bytes or more have been dropped; at once if one of these came already.
        What ``HttpServer``'s lingering close does without a task (see ``_linger_detached``)."""
        self._drop_end, self._dropped, self._drop_limit = (fn, arg), self._size, limit
        self._chunks.clear()
        self._size = 0
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()
        if self._eof or self._lost or self._exc is not None or self._dropped >= limit:
            self._end_drop()

    def _end_drop(self) -> None:
        fn, arg = self._drop_end
        self._drop_end = None
        fn(arg)

    # ------------------------------------------------------------------ writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.transport.write(data)

    def write_eof(self) -> None:
        self.transport.write_eof()

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()

    def close(self) -> None:
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    async def drain(self) -> None:
        """As ``StreamWriter.drain``: the reading side's error first; a transport closing gets
        one turn of the loop (for ``connection_lost`` to come); a lost connection raises; else
        wait while the transport has paused writing."""
        if self._exc is not None:
            raise self._exc
        if self.transport.is_closing():
            await asyncio.sleep(0)
        if self._lost:
            raise ConnectionResetError("Connection lost")
        if not self._write_paused:
            return
        w = self._loop.create_future()
        self._drain_waiters.append(w)
        try:
            await w
        finally:
            self._drain_waiters.remove(w)


def stream_factory(cb: Callable[[Any, Any], Awaitable[None]], loop: asyncio.AbstractEventLoop,
                   limit: int = LIMIT, made: Callable[[ServerStream], Any] | None = None
                   ) -> Callable[[], ServerStream]:
    """A ``protocol_factory`` for ``create_server``: each connection a ``ServerStream``."""
    return lambda: ServerStream(cb, loop, limit, made)


__all__ = ["ServerStream", "stream_factory", "LIMIT"]
