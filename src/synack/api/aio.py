"""asyncio adapter: a ``Stack`` run on the event loop thread (STYLE §9).

``AsyncStack(stack, link)`` watches ``link.fileno()`` with ``loop.add_reader`` and keeps ONE
``TimerHandle`` (``loop.call_at``) for the earliest deadline of the stack and the link, replaced
only when that deadline changes. Each wake-up is ``_pump(now)``: the shared ``drive.step()``, then
the stack's events go to whoever waits on that connection or listener, then the timer is
re-armed. ``now`` is ``loop.time()``; a timer callback uses ``max(deadline, loop.time())`` because
``call_at`` may fire a hair early, and a ``now`` before the deadline would fire nothing and spin.
A user call on a connection (write, read, close) asks for one pump at the next loop iteration
(``call_soon``, coalesced), so writes made in one loop iteration are sent together by one
``step()``. There are no threads and no queues between the fd and the stack.

On top of it, three ways in, all on the loop thread:

* **asyncio streams and transports.** ``open_connection`` / ``start_server`` return the standard
  ``asyncio.StreamReader`` / ``StreamWriter``; ``create_connection`` / ``create_server`` take any
  ``asyncio.Protocol`` factory. ``SynackTransport`` is an ``asyncio.Transport`` over a
  ``TcpConnection``: the connection's send buffer (SO_SNDBUF) is the write buffer, so
  ``pause_writing`` comes when it is full and ``drain()`` waits for the peer's ACKs; reads pull
  from the connection only while the protocol has not paused reading (``StreamReader`` pauses
  past ``2 * limit`` bytes), so a slow reader keeps the TCP receive window closed.
* **``AsyncConnection`` / ``AsyncListener``**: awaitable ``recv``/``send``/``accept`` straight on
  the connection; the blocking socket API (``synack.api.socket``) runs on these.

Errors surface as the connection's ``LocalError`` subclasses, which are the standard
``ConnectionResetError`` / ``ConnectionRefusedError`` / ``TimeoutError`` with ``errno`` set.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import ipaddress
import socket as _socket
import threading
from typing import Any, Callable

from synack.drive import earliest, step
from synack.link.base import link_mtu
from synack.stack.host import Listener, Stack
from synack.tcp.config import TcpConfig
from synack.tcp.connection import TcpConnection
from synack.tcp.states import State

_DEFAULT_LIMIT = 2 ** 16          # asyncio.streams' default StreamReader limit
_READ_CHUNK = 65536


def _endpoint(addr: str, port: int) -> tuple:
    """A socket-module style address: (host, port) for IPv4, (host, port, 0, 0) for IPv6."""
    return (addr, port, 0, 0) if ":" in addr else (addr, port)


# ====================================================================================== stack


class AsyncStack:
    """A ``Stack`` driven by an asyncio loop over a ``Link`` that has ``fileno()``.

    Construct it on the loop's thread (or before the loop runs), e.g. inside a coroutine:
    ``astack = AsyncStack(Stack(["192.0.2.1/24"], secret=...), TunLink(...))``. Every method
    must be called on the loop thread, except ``close()`` of a stack made by ``start_thread()``
    and ``call()``/``run()``, which are for other threads.

    A link may also offer ``wants_write`` (bool) and ``flush()``: while ``wants_write`` is true
    the fd is watched with ``add_writer`` and ``flush()`` is called when it is writable
    (``synack.link.dgram.DgramLink`` uses this for sockets that say EAGAIN).
    """

    def __init__(self, stack: Stack, link: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if loop is None:
            loop = asyncio.get_running_loop()
        self.stack = stack
        self.link = link
        self.loop = loop
        if (mtu := link_mtu(link)) is not None:
            stack.link_mtu = mtu                 # MSS from the link's MTU (RFC 9293 MUST-16/67)
        self._fd = link.fileno()
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._handlers: dict[int, Any] = {}        # id(conn or listener) -> handler with _on_event
        self._bound: dict[tuple[str | None, int], int] = {}   # bind()-only ports (socket API)
        self._reusable: set[tuple[str | None, int]] = set()    # bound/listened with SO_REUSEADDR
        self._writing = False
        # only a link with ``wants_write`` can ask for add_writer: others skip the look per pump
        self._watch_write = hasattr(link, "wants_write")
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pending: set[concurrent.futures.Future] = set()   # run() calls from other threads
        self._pending_lock = threading.Lock()
        self._pumping = False
        self._kicked = False
        self._soon: asyncio.Handle | None = None   # a pump asked for by _kick()
        self.pumps = 0                              # wake-ups so far (for tests and stats)
        loop.add_reader(self._fd, self._on_readable)
        self._kick()

    # ---- lifetime ----

    @classmethod
    def start_thread(cls, stack: Stack, link: Any, name: str = "synack-loop") -> "AsyncStack":
        """Run the stack on a new private event loop in a daemon thread (used by the blocking
        socket API: one loop thread per stack). ``close()`` stops the thread."""
        loop = asyncio.new_event_loop()
        astack = cls(stack, link, loop)        # the loop is not running yet: safe from here
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                try:
                    tasks = asyncio.all_tasks(loop)      # blocked socket calls: cancel, let finish
                    for task in tasks:
                        task.cancel()
                    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    loop.close()

        t = threading.Thread(target=main, name=name, daemon=True)
        astack._thread = t
        t.start()
        ready.wait(10)
        return astack

    def close(self) -> None:
        """Stop watching the fd and the clock (connections are left as they are). For a stack
        made by ``start_thread()`` this may be called from any thread and stops the loop."""
        if self._thread is not None and threading.current_thread() is not self._thread:
            if self.loop.is_running():
                done = threading.Event()

                def shut() -> None:
                    self._close_here()
                    done.set()
                try:
                    self.loop.call_soon_threadsafe(shut)
                    done.wait(10)
                    with self._pending_lock:
                        pending = list(self._pending)
                    for f in pending:               # threads blocked in a call: ENETDOWN
                        f.cancel()
                    self.loop.call_soon_threadsafe(self.loop.stop)
                except RuntimeError:                # the loop closed meanwhile
                    pass
            self._thread.join(10)
            return
        self._close_here()
        if self._thread is not None:
            self.loop.stop()

    def _close_here(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.loop.remove_reader(self._fd)
        if self._writing:
            self.loop.remove_writer(self._fd)
            self._writing = False
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._deadline = None
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def thread(self) -> threading.Thread | None:
        """The private loop thread made by ``start_thread()``, else None."""
        return self._thread

    def in_loop_thread(self) -> bool:
        if self._thread is not None:
            return threading.current_thread() is self._thread
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """From another thread: run ``fn(*args)`` on the loop thread, wait, return its result."""
        return self.run(_as_coro(fn, *args))

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """From another thread: run a coroutine on the loop thread and wait for its result."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("blocking call on the AsyncStack's own loop thread would deadlock")
        if self._closed or self.loop.is_closed() or not self.loop.is_running():
            coro.close()
            raise OSError(errno.ENETDOWN, "synack stack is closed" if self._closed
                          else "the synack stack's event loop is not running")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        with self._pending_lock:
            self._pending.add(fut)
        try:
            return fut.result(timeout)
        except concurrent.futures.CancelledError:
            if self._closed:
                raise OSError(errno.ENETDOWN, "synack stack is closed") from None
            raise
        except BaseException:
            fut.cancel()
            raise
        finally:
            with self._pending_lock:
                self._pending.discard(fut)

    # ---- the drive ----

    def now(self) -> float:
        return self.loop.time()

    def _on_readable(self) -> None:
        self._pump(self.loop.time())              # the link's receive() drains the batch

    def _on_timer(self, deadline: float) -> None:
        self._timer = self._deadline = None
        self._pump(max(deadline, self.loop.time()))   # call_at may fire a hair early

    def _on_writable(self) -> None:
        self.link.flush()
        self._update_writer()

    def _pump(self, now: float) -> None:
        if self._closed:
            return
        self.pumps += 1
        deadline = step(self.stack, self.link, now)   # the same step() the simulator and the tests use
        self._pumping, self._kicked = True, False
        try:
            self._dispatch_events()               # wake readers, writers, accepters
        finally:
            self._pumping = False
        if self._watch_write:
            self._update_writer()
        if self._kicked:                          # a handler made output (e.g. wrote from
            self._kick()                          # data_received): send it next iteration
        if deadline is not None and (self._timer is None or deadline < self._deadline):
            self._rearm(deadline)                 # else the handle kept is due no later

    def _rearm(self, deadline: float | None) -> None:
        """Keep one TimerHandle, due no later than ``deadline``; replace it only when the
        deadline moves earlier. One due earlier is kept: the stack's deadline moves later
        with most segments (an RTO restarted, a delayed ACK sent), and a new handle each time
        cost a call_at and a cancel per wake-up; the early one, when it fires, pumps once for
        nothing (``step`` finds nothing due) and arms the deadline then in force."""
        if self._closed:
            return
        if self._timer is not None and (deadline is None or self._deadline <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        if deadline is None:
            self._timer = self._deadline = None
            return
        self._deadline = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer, deadline)

    def _kick(self) -> None:
        """A user call changed a connection: pump at the next loop iteration (coalesced), by
        ``call_soon``: the deadline's TimerHandle stays as it is (moving it to "now" and back
        cost two handles and a cancel per user call)."""
        if self._pumping:
            self._kicked = True
            return
        if self._soon is not None or self._closed:
            return
        if self._deadline is not None and self._deadline <= self.loop.time():
            return                                # the timer pumps at the next iteration anyway
        self._soon = self.loop.call_soon(self._on_kick)

    def _on_kick(self) -> None:
        self._soon = None
        self._pump(self.loop.time())

    def _update_writer(self) -> None:
        want = bool(getattr(self.link, "wants_write", False))
        if want and not self._writing:
            self.loop.add_writer(self._fd, self._on_writable)
            self._writing = True
        elif not want and self._writing:
            self.loop.remove_writer(self._fd)
            self._writing = False

    def _dispatch_events(self) -> None:
        """Every handler is level-triggered (it looks at the connection or listener, not at the
        event), so the events of one pass are drained first and each object's handler runs once
        with the last of them, in the order the objects first had an event. A handshake, the
        request data and a FIN arriving together are one wake-up of the transport, not three.
        Handlers are looked up when they run: one may register another (an accept).

        One drain per pump: the stack queues events only while it takes packets, timers or
        collects output (``receive_packet``, ``handle_timer``, ``packets_to_send``: inside
        ``step()``); what a handler calls (receive, send, close, abort, accept, touch,
        close_listener) queues none, it marks the connection for the next ``packets_to_send``,
        whose events the next pump hands out (a handler's output asks for that pump by
        ``_kick``). So a second drain here would always find nothing."""
        handler = self._handlers.get
        for obj, ev in self.stack.last_events():    # each object once, with its last event
            h = handler(id(obj))
            if h is None:
                continue
            try:
                h._on_event(ev)
            except Exception as e:                # noqa: BLE001 - user code must not stop the stack
                self.loop.call_exception_handler({
                    "message": f"synack: exception in handler for {obj!r}", "exception": e})

    def _register(self, obj: Any, handler: Any) -> None:
        self._handlers[id(obj)] = handler

    def _unregister(self, obj: Any, handler: Any) -> None:
        if self._handlers.get(id(obj)) is handler:
            del self._handlers[id(obj)]

    # ---- addresses and ports ----

    def _check_local(self, addr: str | None) -> str | None:
        if addr in (None, "", "0.0.0.0", "::"):
            return None
        a = ipaddress.ip_address(addr)
        if a not in self.stack.addresses:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        return str(a)

    def port_in_use(self, addr: str | None, port: int, *, reuse: bool = False) -> bool:
        """Is ``port`` taken on ``addr`` (None: any) by a listener, a bind()-only socket or a
        connection? With ``reuse`` (SO_REUSEADDR) a connection (TIME-WAIT included) does not
        count if its socket had SO_REUSEADDR too: Linux asks it of both (inet_bind_conflict)."""
        for (a, p) in self.stack.listeners:
            if p == port and (a is None or addr is None or str(a) == addr):
                return True
        for (a, p) in self._bound:
            if p == port and (a is None or addr is None or a == addr):
                return True
        for key in list(self.stack.conns) + list(self.stack.time_wait):
            if key[1] == port and (addr is None or str(key[0]) == addr):
                if reuse and ((str(key[0]), port) in self._reusable or (None, port) in self._reusable):
                    continue
                return True
        return False

    def _mark_reusable(self, addr: str | None, port: int, reuse: bool) -> None:
        """Remember whether the socket bound to ``(addr, port)`` had SO_REUSEADDR (its
        connections, and their TIME-WAIT, keep that), for ``port_in_use``."""
        if reuse:
            self._reusable.add((addr, port))
        else:
            self._reusable.discard((addr, port))

    def choose_port(self, addr: str | None = None) -> int:
        """A free ephemeral port (RFC 6056 hash-based walk of the stack's allocator)."""
        local = ipaddress.ip_address(addr).packed if addr else b"\0\0\0\0"
        return self.stack.ports.choose(local, b"listen", 0, lambda p: self.port_in_use(addr, p))

    def _bind(self, addr: str | None, port: int) -> None:
        self._bound[(addr, port)] = self._bound.get((addr, port), 0) + 1

    def _unbind(self, addr: str | None, port: int) -> None:
        n = self._bound.get((addr, port), 0) - 1
        if n <= 0:
            self._bound.pop((addr, port), None)
        else:
            self._bound[(addr, port)] = n

    async def _resolve(self, host: str, port: int) -> str:
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            pass
        infos = await self.loop.getaddrinfo(host, port, type=_socket.SOCK_STREAM)
        versions = {a.version for a in self.stack.addresses}
        for family, _, _, _, sa in infos:
            a = ipaddress.ip_address(sa[0])
            if a.version in versions:
                return str(a)
        raise _socket.gaierror(_socket.EAI_NONAME, f"no address of {host!r} fits this stack")

    # ---- low level: connections and listeners ----

    def connect_nowait(self, host: str, port: int, *, local_addr: tuple[str, int] | None = None,
                       config: TcpConfig | None = None) -> "AsyncConnection":
        """Start an active open to an IP literal; the SYN leaves at the next pump."""
        conn = self.stack.connect((host, port), self.now(), local=local_addr, config=config)
        ac = AsyncConnection(self, conn)
        self._kick()
        return ac

    async def connect(self, host: str, port: int, *, local_addr: tuple[str, int] | None = None,
                      config: TcpConfig | None = None) -> "AsyncConnection":
        """Active open; returns once ESTABLISHED. Raises ConnectionRefusedError, TimeoutError
        (errno ETIMEDOUT), ... A cancelled connect is aborted."""
        addr = await self._resolve(host, port)
        ac = self.connect_nowait(addr, port, local_addr=local_addr, config=config)
        try:
            await ac.wait_connected()
        except BaseException:
            ac.abort()
            raise
        return ac

    def listen(self, host: str | None, port: int, *, backlog: int = 128,
               config: TcpConfig | None = None) -> "AsyncListener":
        addr = self._check_local(host)
        if port == 0:
            port = self.choose_port(addr)
        lst = self.stack.listen(port, addr, backlog, config)
        return AsyncListener(self, lst)

    # ---- asyncio transports and streams ----

    async def create_connection(self, protocol_factory: Callable[[], asyncio.Protocol], host: str,
                                port: int, *, local_addr: tuple[str, int] | None = None,
                                config: TcpConfig | None = None):
        """Like ``loop.create_connection``: returns ``(transport, protocol)`` once connected."""
        ac = await self.connect(host, port, local_addr=local_addr, config=config)
        protocol = protocol_factory()
        transport = SynackTransport(self, ac.conn, protocol)
        transport._start()
        return transport, protocol

    async def create_server(self, protocol_factory: Callable[[], asyncio.Protocol], host: str | None = None,
                            port: int = 0, *, backlog: int = 100, config: TcpConfig | None = None,
                            start_serving: bool = True) -> "SynackServer":
        """Like ``loop.create_server``; ``port=0`` picks an ephemeral port (``server.port``)."""
        lst = self.listen(host, port, backlog=backlog, config=config)
        server = SynackServer(self, lst, protocol_factory)
        if start_serving:
            await server.start_serving()
        return server

    async def open_connection(self, host: str, port: int, *, limit: int = _DEFAULT_LIMIT,
                              **kwds: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader = asyncio.StreamReader(limit=limit, loop=self.loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=self.loop)
        transport, _ = await self.create_connection(lambda: protocol, host, port, **kwds)
        writer = asyncio.StreamWriter(transport, protocol, reader, self.loop)
        return reader, writer

    async def start_server(self, client_connected_cb: Callable, host: str | None = None, port: int = 0, *,
                           limit: int = _DEFAULT_LIMIT, **kwds: Any) -> "SynackServer":
        loop = self.loop

        def factory() -> asyncio.StreamReaderProtocol:
            reader = asyncio.StreamReader(limit=limit, loop=loop)
            return asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)

        return await self.create_server(factory, host, port, **kwds)

    def __repr__(self) -> str:
        return f"<AsyncStack {[str(a) for a in self.stack.addresses]} conns={len(self.stack.conns)}>"


async def _as_coro(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


# ============================================================================ low-level API


class _Waitable:
    """Level-triggered wake-ups: any event on the object wakes every waiter, which re-checks."""

    def __init__(self, astack: AsyncStack) -> None:
        self._astack = astack
        self._waiters: list[asyncio.Future] = []

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)

    def _on_event(self, ev: Any) -> None:
        self._wake()

    async def _wait(self) -> None:
        f = self._astack.loop.create_future()
        self._waiters.append(f)
        try:
            await f
        finally:
            if f in self._waiters:
                self._waiters.remove(f)


class AsyncConnection(_Waitable):
    """Awaitable calls straight on a ``TcpConnection`` (the socket API's engine). ``try_*``
    never wait: None / 0 mean "would block". Errors are the connection's ``LocalError``s."""

    def __init__(self, astack: AsyncStack, conn: TcpConnection) -> None:
        super().__init__(astack)
        self.conn = conn
        astack._register(conn, self)

    def _touch(self) -> None:
        if self._astack.stack.touch(self.conn):
            self._astack._kick()

    @property
    def connected(self) -> bool:
        st = self.conn.state
        return st not in (State.CLOSED, State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED)

    async def wait_connected(self) -> None:
        while True:
            st = self.conn.state
            if st is State.CLOSED:
                if self.conn.error is not None:
                    raise self.conn.error
                if _was_established(self.conn):
                    return
                raise ConnectionAbortedError(errno.ECONNABORTED, "connection aborted")
            if st not in (State.SYN_SENT, State.SYN_RECEIVED, State.LISTEN):
                return
            await self._wait()

    def try_recv(self, n: int) -> bytes | None:
        data = self.conn.receive(n)
        if data:
            self._touch()                 # reading opens the window: a window update may be owed
        return data

    def peek(self, n: int) -> bytes | None:
        """Like try_recv, but the bytes stay (MSG_PEEK)."""
        data = self.conn.rcvbuf.peek(n)
        if data:
            return data
        return self.conn.receive(0) if self.conn.at_eof or self.conn.state is State.CLOSED else None

    async def recv(self, n: int) -> bytes:
        while True:
            data = self.try_recv(n)
            if data is not None:
                return data
            await self._wait()

    def try_send(self, data: bytes | bytearray | memoryview) -> int:
        n = self.conn.send(data)
        if n:
            self._touch()
        return n

    async def send(self, data: bytes | bytearray | memoryview) -> int:
        """Wait for room in the send buffer, then queue as much as fits; the count taken."""
        if not len(data):
            return self.try_send(data)
        while True:
            n = self.try_send(data)
            if n:
                return n
            await self._wait()

    async def sendall(self, data: bytes | bytearray | memoryview) -> None:
        with memoryview(data) as mv:
            off = 0
            while off < len(mv):
                off += await self.send(mv[off:])

    def shutdown_write(self) -> None:
        self.conn.shutdown_write(self._astack.now())
        self._touch()

    def close(self) -> None:
        self.conn.close(self._astack.now())
        self._touch()
        self._wake()

    def abort(self) -> None:
        self.conn.abort(self._astack.now())
        self._touch()
        self._wake()

    async def wait_state(self, pred: Callable[[State], bool]) -> State:
        while not pred(self.conn.state):
            await self._wait()
        return self.conn.state

    def _on_event(self, ev: Any) -> None:
        self._wake()
        if self.conn.state is State.CLOSED and not self._waiters:
            self._astack._unregister(self.conn, self)

    def detach(self) -> None:
        self._astack._unregister(self.conn, self)

    @property
    def sockname(self) -> tuple:
        return _endpoint(self.conn.id.local_addr, self.conn.id.local_port)

    @property
    def peername(self) -> tuple:
        return _endpoint(self.conn.id.remote_addr, self.conn.id.remote_port)


def socket_error(conn: TcpConnection) -> OSError | None:
    """The connection's error as a socket reports it: ``conn.error``, except that a reset in
    CLOSE-WAIT (after the peer's FIN) is EPIPE, not ECONNRESET, as Linux's tcp_reset() has it
    (RFC 9293 §3.10.7.4 only says "connection reset"; which errno is the API's choice)."""
    err = conn.error
    if err is None or not isinstance(err, ConnectionResetError):
        return err
    hist = conn.state_history
    if len(hist) < 2 or hist[-1][1] is not State.CLOSED or hist[-2][1] is not State.CLOSE_WAIT:
        return err
    return BrokenPipeError(errno.EPIPE, "Broken pipe")


def _was_established(conn: TcpConnection) -> bool:
    return any(st is not State.SYN_SENT and st is not State.SYN_RECEIVED and st is not State.CLOSED
               and st is not State.LISTEN for _, st in conn.state_history)


class AsyncListener(_Waitable):
    """A listener whose established connections wait in the stack's accept queue (so the
    backlog means what it says) until ``accept()`` takes one."""

    def __init__(self, astack: AsyncStack, lst: Listener) -> None:
        super().__init__(astack)
        self.listener = lst
        astack._register(lst, self)

    @property
    def port(self) -> int:
        return self.listener.port

    @property
    def sockname(self) -> tuple:
        a = self.listener.addr
        if a is None:
            a = "::" if all(x.version == 6 for x in self._astack.stack.addresses) else "0.0.0.0"
        return _endpoint(str(a), self.listener.port)

    def try_accept(self) -> AsyncConnection | None:
        if self.listener.closed:
            raise OSError(errno.EINVAL, "listener closed")
        conn = self._astack.stack.accept(self.listener)
        return AsyncConnection(self._astack, conn) if conn is not None else None

    async def accept(self) -> AsyncConnection:
        while True:
            ac = self.try_accept()
            if ac is not None:
                return ac
            await self._wait()

    def close(self) -> None:
        if self.listener.closed:
            return
        self._astack.stack.close_listener(self.listener, self._astack.now())
        self._astack._unregister(self.listener, self)
        self._astack._kick()
        self._wake()


# ========================================================================= module functions


def _need(stack: AsyncStack | None) -> AsyncStack:
    if stack is None:
        raise TypeError("pass stack=AsyncStack(...): synack streams run on an explicit stack")
    return stack


async def open_connection(host: str, port: int, *, stack: AsyncStack | None = None,
                          limit: int = _DEFAULT_LIMIT, **kwds: Any):
    """``asyncio.open_connection`` over synack: ``(StreamReader, StreamWriter)``."""
    return await _need(stack).open_connection(host, port, limit=limit, **kwds)


async def start_server(client_connected_cb: Callable, host: str | None = None, port: int = 0, *,
                       stack: AsyncStack | None = None, limit: int = _DEFAULT_LIMIT,
                       **kwds: Any) -> SynackServer:
    """``asyncio.start_server`` over synack; returns a ``SynackServer``."""
    return await _need(stack).start_server(client_connected_cb, host, port, limit=limit, **kwds)


__all__ = ["AsyncStack", "AsyncConnection", "AsyncListener", "SynackTransport", "SynackServer",
           "open_connection", "start_server"]


# The transport and server classes live in transport.py (they import this module's AsyncStack,
# so they are bound here last); they stay importable from here.
from synack.api.transport import SynackServer, SynackTransport  # noqa: E402
