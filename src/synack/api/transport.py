"""asyncio's transport and server interfaces over synack connections: ``SynackTransport`` (an
``asyncio.Transport`` over one ``TcpConnection``) and ``SynackServer`` (an
``asyncio.AbstractServer`` over one listener). ``AsyncStack`` (``synack.api.aio``) creates them;
they run on its event loop thread.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from synack.api.aio import _READ_CHUNK, AsyncListener, AsyncStack, _endpoint, socket_error
from synack.stack.host import Listener
from synack.tcp.connection import TcpConnection
from synack.tcp.errors import NotConnected
from synack.tcp.states import State

# State.CLOSED as a module global: a member read off the Enum class goes through EnumType's
# attribute hook, some ten times the cost of a global (each _service asks)
_CLOSED = State.CLOSED


class SynackTransport(asyncio.Transport):
    """An ``asyncio.Transport`` over one ``TcpConnection``.

    Writing: bytes go straight into the connection's send buffer; what does not fit waits here,
    and the protocol is paused while more than the high-water mark waits (default 0: as soon as
    the send buffer is full), resumed when it is down to the low-water mark (default 0). Reading:
    bytes are pulled from the connection only while reading is not paused, so unread data stays
    in TCP's receive buffer and the window closes. ``write_eof`` is the half close
    (``shutdown_write``), ``close`` the full close after pending writes, ``abort`` sends RST.
    """

    def __init__(self, astack: AsyncStack, conn: TcpConnection, protocol: asyncio.BaseProtocol,
                 extra: dict | None = None) -> None:
        cid = conn.id
        info = {"peername": _endpoint(cid.remote_addr, cid.remote_port),
                "sockname": _endpoint(cid.local_addr, cid.local_port),
                "synack_connection": conn, "synack_stack": astack, "socket": None}
        if extra:
            info.update(extra)
        super().__init__(info)
        self._astack = astack
        self._loop = astack.loop
        self.conn = conn
        self._protocol = protocol
        self._wbuf = bytearray()
        self._high = 0
        self._low = 0
        self._protocol_paused = False
        self._reading_paused = False
        self._eof_requested = False
        self._eof_written = False
        self._eof_received = False
        self._closing = False
        self._lost = False
        self._pull_scheduled = False
        self._conn_lost_writes = 0
        astack._register(conn, self)

    def _start(self) -> None:
        """connection_made, then at once look at what already arrived (data, EOF, even a RST):
        in a pump, the connection's own event may have been handed out before this transport
        registered for it. At once, not by ``call_soon``: that cost a handle and a pass of the loop
        per connection, usually to find nothing. Only when there is something: bytes, the
        peer's FIN, an error or bytes ``connection_made`` wrote that did not fit (else
        ``_service`` finds nothing to do: a connection closed without an error has nothing to
        read, one still open nothing yet)."""
        self._protocol.connection_made(self)
        conn = self.conn
        if conn.readable or conn.at_eof or conn.error is not None or self._wbuf:
            self._service()

    def _now(self) -> float:
        return self._astack.now()

    def _touch(self) -> None:
        if self._astack.stack.touch(self.conn):   # else nothing to pump for (closed in TIME-WAIT)
            self._astack._kick()

    # ---- events from the stack (level-triggered: re-check everything) ----

    def _schedule_service(self) -> None:
        if not self._pull_scheduled:
            self._pull_scheduled = True
            self._loop.call_soon(self._service_soon)

    def _service_soon(self) -> None:
        self._pull_scheduled = False
        self._service()

    def _service(self, ev: Any = None) -> None:
        if self._lost:
            return
        conn = self.conn
        if conn.state is _CLOSED and conn.error is not None:
            self._fatal(conn.error)
            return
        if self._wbuf:
            self._flush()
        if not self._reading_paused and not self._closing:
            self._pull()

    _on_event = _service          # the stack's events: the handler looks, not at the event

    def _pull(self) -> None:
        got = False
        try:
            while not self._reading_paused and not self._eof_received and not self._closing:
                data = self.conn.receive(_READ_CHUNK)
                if data is None:
                    break
                if not data:
                    self._eof_received = True
                    keep_open = self._protocol.eof_received()
                    if not keep_open:
                        self.close()
                    break
                got = True
                self._protocol.data_received(data)
        except OSError as e:
            if isinstance(e, NotConnected) and self.conn.error is None:
                return                    # aborted or closed locally: nothing more to read
            self._fatal(e)
        finally:
            if got:
                self._touch()              # reading is what opens the window (STYLE §9)

    def _flush(self) -> None:
        conn = self.conn
        if self._wbuf:
            # ask for one byte more than fits so the connection notes it was full and reports
            # Writable when ACKs free space
            take = min(len(self._wbuf), conn.sndbuf.free + 1)
            try:
                n = conn.send(bytes(self._wbuf[:take]))
            except OSError as e:
                self._fatal(e)
                return
            if n:
                del self._wbuf[:n]
                self._touch()
        if not self._wbuf:
            if self._eof_requested and not self._eof_written:
                self._write_eof_now()
            if self._closing and not self._lost:
                self._finish_close()
                return
        self._maybe_resume_protocol()

    # ---- WriteTransport ----

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof_requested:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._lost or self._closing:
            self._conn_lost_writes += 1
            return
        if not data:
            return
        if not self._wbuf:
            try:
                n = self.conn.send(data)
            except OSError as e:
                self._fatal(e)
                return
            if n:
                self._touch()
            if n == len(data):
                return
            data = memoryview(data)[n:]
        self._wbuf += data
        self._maybe_pause_protocol()

    def writelines(self, list_of_data) -> None:
        for d in list_of_data:
            self.write(d)

    def write_eof(self) -> None:
        if self._closing or self._eof_requested:
            return
        self._eof_requested = True
        if not self._wbuf:
            self._write_eof_now()

    def _write_eof_now(self) -> None:
        self._eof_written = True
        try:
            self.conn.shutdown_write(self._now())
        except OSError as e:
            self._fatal(e)
            return
        self._touch()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        """Bytes waiting here for room in the connection's send buffer."""
        return len(self._wbuf)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 0 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._maybe_pause_protocol()
        self._maybe_resume_protocol()

    def _maybe_pause_protocol(self) -> None:
        if len(self._wbuf) > self._high and not self._protocol_paused:
            self._protocol_paused = True
            try:
                self._protocol.pause_writing()
            except Exception as e:          # noqa: BLE001
                self._loop.call_exception_handler({"message": "protocol.pause_writing() failed",
                                                   "exception": e, "transport": self,
                                                   "protocol": self._protocol})

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and len(self._wbuf) <= self._low:
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except Exception as e:          # noqa: BLE001
                self._loop.call_exception_handler({"message": "protocol.resume_writing() failed",
                                                   "exception": e, "transport": self,
                                                   "protocol": self._protocol})

    # ---- ReadTransport ----

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._schedule_service()

    # ---- BaseTransport ----

    def is_closing(self) -> bool:
        return self._closing

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if not self._wbuf and not self._lost:
            self._finish_close()

    def _finish_close(self) -> None:
        try:
            self.conn.close(self._now())
        except OSError:
            pass
        self._touch()
        self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        self._wbuf.clear()
        self.conn.abort(self._now())
        self._touch()
        self._loop.call_soon(self._call_connection_lost, None)

    def _fatal(self, exc: BaseException) -> None:
        if self._lost:
            return
        if exc is self.conn.error:
            exc = socket_error(self.conn)     # e.g. a reset in CLOSE-WAIT is EPIPE, as on Linux
        self._closing = True
        self._wbuf.clear()
        if self.conn.state is not _CLOSED:
            self.conn.abort(self._now())
            self._touch()
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._astack._unregister(self.conn, self)
        if self._protocol_paused:
            self._protocol_paused = False
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._protocol = _Closed()

    def __repr__(self) -> str:
        return f"<SynackTransport {self.conn.id} {self.conn.state.name}{' closing' if self._closing else ''}>"


class _Closed(asyncio.Protocol):
    """Stands in for the protocol after connection_lost (keeps late callbacks harmless)."""


# ========================================================================== asyncio server


class SynackServer(asyncio.AbstractServer):
    """What ``create_server``/``start_server`` return: an ``asyncio.AbstractServer``. ``port`` and
    ``sockname`` tell where it listens (``sockets`` is empty: there is no kernel socket)."""

    def __init__(self, astack: AsyncStack, lst: AsyncListener,
                 protocol_factory: Callable[[], asyncio.BaseProtocol]) -> None:
        self._astack = astack
        self._lst = lst
        self._factory = protocol_factory
        self._serving = False
        self._closed = False
        self._serving_forever: asyncio.Future | None = None
        self._waiters: list[asyncio.Future] = []
        astack._register(lst.listener, self)

    @property
    def port(self) -> int:
        return self._lst.port

    @property
    def sockname(self) -> tuple:
        return self._lst.sockname

    @property
    def sockets(self) -> tuple:
        return ()

    @property
    def listener(self) -> Listener:
        return self._lst.listener

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._astack.loop

    def is_serving(self) -> bool:
        return self._serving and not self._closed

    async def start_serving(self) -> None:
        if self._closed:
            raise RuntimeError("server is closed")
        self._serving = True
        self._accept_all()

    def _on_event(self, ev: Any) -> None:
        if self._serving and not self._closed:
            self._accept_all()

    def _accept_all(self) -> None:
        astack = self._astack
        while (conn := astack.stack.accept(self._lst.listener)) is not None:
            try:
                protocol = self._factory()
                transport = SynackTransport(astack, conn, protocol)
                transport._start()
            except Exception as e:           # noqa: BLE001
                conn.abort(astack.now())
                astack.stack.touch(conn)
                astack._kick()
                astack.loop.call_exception_handler({"message": "synack: accepting a connection failed",
                                                    "exception": e})

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._serving = False
        self._astack._unregister(self._lst.listener, self)
        self._lst.close()
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
        for w in self._waiters:
            if not w.done():
                w.set_result(None)
        self._waiters.clear()

    async def wait_closed(self) -> None:
        if self._closed:
            return
        w = self._astack.loop.create_future()
        self._waiters.append(w)
        await w

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError("server is already being awaited on serve_forever()")
        if self._closed:
            raise RuntimeError("server is closed")
        await self.start_serving()
        self._serving_forever = self._astack.loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    def __repr__(self) -> str:
        return f"<SynackServer {self.sockname}>"


__all__ = ["SynackTransport", "SynackServer"]
