"""A blocking ``socket`` API over synack, so code written for the ``socket`` module ports by
changing its import (``from synack import socket``).

It is not a second engine: each ``AsyncStack`` runs on one private event-loop thread
(``AsyncStack.start_thread``) and every call here is a coroutine on that loop, submitted with
``asyncio.run_coroutine_threadsafe`` (STYLE §9). Blocking, timeout (``settimeout``) and
non-blocking modes behave as in the ``socket`` module, with the same exceptions: ``OSError``
subclasses carrying ``errno`` (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ENOTCONN, EPIPE,
EADDRINUSE, EINPROGRESS, EAGAIN) and ``socket.timeout`` (``TimeoutError("timed out")``, errno
None) when a timeout expires. As on Linux, a connection's error (reset, timeout, refused) is
reported once, by whichever of ``recv``, ``send`` and SO_ERROR comes first; after that SO_ERROR
reads 0, ``recv`` returns ``b""`` and ``send`` raises EPIPE.

Linux's answers that code may lean on, checked against the kernel by
tests/link/test_socket_differential.py: a reset after the peer's FIN (CLOSE-WAIT) is EPIPE, not
ECONNRESET (tcp_reset); once the connection is over (reset, or both FINs: Linux's socket is
then CLOSE, synack's connection may still be TIME-WAIT) ``getpeername`` and ``shutdown`` raise
ENOTCONN; after ``shutdown(SHUT_RD)`` ``recv`` still returns data that was queued or arrives,
and ``b""`` instead of waiting; a connect that failed in timeout or non-blocking mode leaves
the socket "connecting" as the kernel sees it (``recv`` returns ``b""``; after a non-blocking
one, the next ``connect`` raises the error if nothing reported it, else ECONNABORTED), while a
failed blocking connect may be retried at once; ``send`` on a listener raises EPIPE;
SO_REUSEADDR lets ``bind`` take a port held by a connection (or its TIME-WAIT) only if that
connection's socket had SO_REUSEADDR too.

Two differences are deliberate, both from the socket module's timeout mode (``settimeout(t)``,
t > 0), where CPython polls before each call: MSG_DONTWAIT never waits here (the socket module
waits for readiness first, then raises ``socket.timeout``), and after a connect failed in
timeout mode the next ``connect`` tries again (Linux answers it ECONNABORTED, the one after
tries again).

The stack comes from ``stack=`` or from the module default set with ``use_stack()``. Options:
TCP_NODELAY, SO_KEEPALIVE with TCP_KEEPIDLE/KEEPINTVL/KEEPCNT, SO_RCVBUF/SO_SNDBUF (returned as
set: Linux would report twice the value), SO_LINGER (``l_onoff=1, l_linger=0``: close sends
RST; ``l_linger>0``: a blocking close waits up to that long for the FIN to be acknowledged),
SO_REUSEADDR, SO_ERROR (read and clear), SO_TYPE, SO_ACCEPTCONN, TCP_MAXSEG, TCP_CONGESTION
(the algorithm's name as bytes, ``synack.tcp.congestion.available()``; ENOENT for an unknown
one; on a live connection the new algorithm takes over the window as it stands). There is no
kernel file descriptor: ``fileno()`` is -1, so ``select``/``selectors`` cannot watch these.
"""

from __future__ import annotations

import asyncio
import errno
import io
import ipaddress
import socket as _std
import struct
import threading
from typing import Any, Callable

from synack.api.aio import AsyncConnection, AsyncListener, AsyncStack, _was_established, socket_error
from synack.tcp import congestion
from synack.tcp.errors import NotConnected
from synack.tcp.states import State

# The constants code uses with a socket, re-exported so ``from synack import socket`` suffices.
from socket import (AF_INET, AF_INET6, IP_TOS, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, IPV6_TCLASS, MSG_DONTWAIT, MSG_PEEK, SHUT_RD,  # noqa: F401
                    SHUT_RDWR, SHUT_WR, SO_ACCEPTCONN, SO_ERROR, SO_KEEPALIVE, SO_LINGER, SO_RCVBUF,
                    SO_REUSEADDR, SO_SNDBUF, SO_TYPE, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, SOL_SOCKET,
                    TCP_CONGESTION, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_MAXSEG, TCP_NODELAY, gaierror,
                    getaddrinfo, getdefaulttimeout, herror, inet_aton, inet_ntoa, inet_ntop, inet_pton,
                    setdefaulttimeout, timeout)

error = OSError

_default_stack: AsyncStack | None = None
_default_lock = threading.Lock()


def use_stack(stack: AsyncStack | Any, link: Any = None) -> AsyncStack | None:
    """Set the stack ``socket()`` uses when given no ``stack=``.

    Pass an ``AsyncStack`` whose loop runs in another thread (``AsyncStack.start_thread``), or a
    ``Stack`` and its ``link``: a private loop thread is started for them. Returns the AsyncStack.
    ``use_stack(None)`` forgets the default.
    """
    global _default_stack
    astack = None if stack is None else _as_async_stack(stack, link)
    with _default_lock:
        _default_stack = astack
    return astack


def default_stack() -> AsyncStack:
    if _default_stack is None:
        raise RuntimeError("no synack stack: call synack.socket.use_stack(...) or pass stack=")
    return _default_stack


def _as_async_stack(stack: Any, link: Any = None) -> AsyncStack:
    if isinstance(stack, AsyncStack):
        if link is not None:
            raise TypeError("link= is only for a plain Stack")
        return stack
    if link is None:
        raise TypeError("a plain Stack needs its link: use_stack(stack, link)")
    return AsyncStack.start_thread(stack, link)


def _timed_out() -> OSError:
    return timeout("timed out")


def _would_block() -> BlockingIOError:
    return BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")


def _bad_fd() -> OSError:
    return OSError(errno.EBADF, "Bad file descriptor")


def _not_connected() -> OSError:
    return OSError(errno.ENOTCONN, "Transport endpoint is not connected")


class socket:
    """A TCP socket on a synack stack (``family`` AF_INET or AF_INET6, ``type`` SOCK_STREAM)."""

    def __init__(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0,
                 fileno: int | None = None, *, stack: AsyncStack | None = None) -> None:
        if fileno is not None:
            raise OSError(errno.EBADF, "synack sockets cannot wrap a kernel file descriptor")
        if family not in (AF_INET, AF_INET6):
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        if type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC) != SOCK_STREAM:
            raise OSError(errno.ESOCKTNOSUPPORT, "Socket type not supported")
        if proto not in (0, IPPROTO_TCP):
            raise OSError(errno.EPROTONOSUPPORT, "Protocol not supported")
        self._astack = stack if stack is not None else default_stack()
        self.family = family
        self.type = SOCK_STREAM
        self.proto = proto
        self._timeout: float | None = 0.0 if type & SOCK_NONBLOCK else getdefaulttimeout()
        self._config = self._astack.stack.config.copy()
        self._bound: tuple[str | None, int] | None = None
        self._bind_held = False
        self._conn: AsyncConnection | None = None
        self._lst: AsyncListener | None = None
        self._connecting = False          # a non-blocking connect in progress
        self._retry_ok = False            # a timeout-mode connect failed: the next one starts afresh
        self._was_connected = False
        self._error = 0                   # SO_ERROR waiting to be read
        self._error_taken: set[int] = set()   # id(error) already reported through SO_ERROR
        self._linger = (0, 0)
        self._reuseaddr = 0
        self._shut_rd = False
        self._closed = False
        self._io_refs = 0

    @classmethod
    def _from_conn(cls, astack: AsyncStack, ac: AsyncConnection, family: int, opts: dict) -> "socket":
        s = cls(family, SOCK_STREAM, stack=astack)
        s._conn = ac
        s._was_connected = True
        s._config = ac.conn.config
        s._linger = opts["linger"]
        s._reuseaddr = opts["reuseaddr"]
        return s

    # ---- running things on the loop thread ----

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the loop thread (non-blocking work) and return its result."""
        return self._astack.call(fn, *args)

    def _run(self, make_coro: Callable[[], Any], timeout_: float | None) -> Any:
        """Run a coroutine on the loop thread, with this socket's timeout applied to all of it."""
        async def bounded() -> Any:
            if timeout_ is None:
                return await make_coro()
            try:
                async with asyncio.timeout(timeout_) as cm:
                    return await make_coro()
            except TimeoutError:
                if cm.expired():
                    raise _timed_out() from None
                raise
        return self._astack.run(bounded())

    def _check_open(self) -> None:
        if self._closed:
            raise _bad_fd()

    # ---- addresses ----

    def _parse_addr(self, address: Any, *, for_bind: bool) -> tuple[str | None, int]:
        if not isinstance(address, tuple) or len(address) < 2:
            raise TypeError(f"{'AF_INET6' if self.family == AF_INET6 else 'AF_INET'} address must be a tuple "
                            "(host, port)")
        host, port = address[0], address[1]
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise OverflowError("port must be 0-65535.")
        if host in ("", None) or (for_bind and host in ("0.0.0.0", "::")):
            return None, port
        try:
            a = ipaddress.ip_address(host)
        except ValueError:
            infos = getaddrinfo(host, port, self.family, SOCK_STREAM)
            a = ipaddress.ip_address(infos[0][4][0])
        if (a.version == 6) != (self.family == AF_INET6):
            raise gaierror(_std.EAI_ADDRFAMILY if hasattr(_std, "EAI_ADDRFAMILY") else _std.EAI_FAMILY,
                           "Address family for hostname not supported")
        return str(a), port

    def _endpoint(self, addr: str, port: int) -> tuple:
        return (addr, port, 0, 0) if self.family == AF_INET6 else (addr, port)

    # ---- setup ----

    def bind(self, address: Any) -> None:
        self._check_open()
        if self._bound is not None or self._conn is not None or self._lst is not None:
            raise OSError(errno.EINVAL, "Invalid argument")
        addr, port = self._parse_addr(address, for_bind=True)
        reuse = bool(self._reuseaddr)

        def do() -> tuple[str | None, int]:
            a = self._astack._check_local(addr)
            p = port or self._astack.choose_port(a)
            if self._astack.port_in_use(a, p, reuse=reuse):
                raise OSError(errno.EADDRINUSE, "Address already in use")
            self._astack._bind(a, p)
            self._astack._mark_reusable(a, p, reuse)
            return a, p
        self._bound = self._call(do)
        self._bind_held = True

    def _release_bind(self) -> None:
        if self._bind_held and self._bound is not None:
            self._bind_held = False
            a, p = self._bound
            self._astack._unbind(a, p)

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self._conn is not None:
            raise OSError(errno.EINVAL, "Invalid argument")
        if self._lst is not None:
            self._lst.listener.backlog = max(backlog, 0)
            return
        if self._bound is None:
            self.bind(("", 0))
        addr, port = self._bound  # type: ignore[misc]

        reuse = bool(self._reuseaddr)

        def do() -> AsyncListener:
            self._release_bind()
            self._astack._mark_reusable(addr, port, reuse)
            return self._astack.listen(addr, port, backlog=max(backlog, 0), config=self._config)
        self._lst = self._call(do)

    def accept(self) -> tuple["socket", tuple]:
        self._check_open()
        if self._lst is None:
            raise OSError(errno.EINVAL, "Invalid argument")
        lst = self._lst
        if self._timeout == 0.0:
            ac = self._call(lst.try_accept)
            if ac is None:
                raise _would_block()
        else:
            ac = self._run(lst.accept, self._timeout)
        opts = {"linger": self._linger, "reuseaddr": self._reuseaddr}
        s = socket._from_conn(self._astack, ac, self.family, opts)
        if getdefaulttimeout() is None and self._timeout is not None:
            s._timeout = None             # like the socket module: accepted sockets block
        return s, ac.peername

    def connect(self, address: Any) -> None:
        self._check_open()
        err = self._connect(address)
        if err:
            if err == errno.EINPROGRESS:
                raise BlockingIOError(errno.EINPROGRESS, "Operation now in progress")
            raise OSError(err, _strerror(err))

    def connect_ex(self, address: Any) -> int:
        self._check_open()
        try:
            return self._connect(address)
        except timeout:
            return errno.EAGAIN
        except OSError as e:
            if e.errno is None:
                raise
            return e.errno

    def _connect(self, address: Any) -> int:
        """0 once connected; EINPROGRESS/EALREADY in non-blocking mode; raises other errors."""
        if self._lst is not None:
            raise OSError(errno.EISCONN, "Transport endpoint is already connected")
        if self._conn is not None and self._retry_ok:
            self._retry_ok = False        # a failed timeout-mode connect: connect again at once
            self._conn = None
        if self._conn is not None:
            ac = self._conn
            err = ac.conn.error
            if ac.conn.state is State.CLOSED and err is not None and not _was_established(ac.conn):
                # A connect that failed (refused, timed out) and that connect() has not reported:
                # Linux reports the error if SO_ERROR/recv/send have not, else ECONNABORTED, and
                # the socket is unconnected again (__inet_stream_connect, SS_CONNECTING in CLOSE).
                self._connecting = False
                self._conn = None
                unreported = self._claim_error(ac)
                if unreported is not None:
                    raise unreported
                raise ConnectionAbortedError(errno.ECONNABORTED, "Software caused connection abort")
            if self._connecting:
                st = ac.conn.state
                if ac.connected or st is State.CLOSED:
                    self._connecting = False
                    if st is State.CLOSED and ac.conn.error is not None:
                        self._take_error_of(ac)
                        self._conn = None
                        raise ac.conn.error
                    self._was_connected = True
                    return 0                              # Linux: the first connect after EINPROGRESS
                if self._timeout == 0.0:
                    return errno.EALREADY
                self._wait_connected(ac)
                return 0
            raise OSError(errno.EISCONN, "Transport endpoint is already connected")
        addr, port = self._parse_addr(address, for_bind=False)
        self._retry_ok = False
        local = None
        if self._bound is not None:
            local = (self._bound[0] or "", self._bound[1])

        def start() -> AsyncConnection:
            self._release_bind()
            return self._astack.connect_nowait(addr, port, local_addr=local, config=self._config)
        ac = self._call(start)
        self._conn = ac
        if self._timeout == 0.0:
            self._connecting = True
            return errno.EINPROGRESS
        self._wait_connected(ac)
        return 0

    def _wait_connected(self, ac: AsyncConnection) -> None:
        try:
            self._run(ac.wait_connected, self._timeout)
        except timeout:
            self._call(ac.abort)
            self._conn = None
            self._connecting = False
            raise
        except OSError:
            self._connecting = False
            if self._timeout is None:
                self._conn = None         # blocking: may be retried at once, as on Linux
                raise
            # Timeout mode: the socket module connects without blocking and polls, so Linux's
            # socket stays "connecting" in CLOSE: recv returns b"" and send raises EPIPE. Keep
            # the failed connection for that (its error is reported by this raise). The next
            # connect starts afresh (Linux would answer it ECONNABORTED: module docstring).
            self._take_error_of(ac)
            self._retry_ok = True
            raise
        self._connecting = False
        self._was_connected = True

    # ---- data ----

    def _connected(self) -> AsyncConnection:
        self._check_open()
        ac = self._conn
        if ac is None:
            raise _not_connected()
        if self._connecting:
            if not self._call(lambda: ac.connected or ac.conn.state is State.CLOSED):
                raise _would_block() if self._timeout == 0.0 else _not_connected()
            self._connecting = False
        return ac

    def send(self, data: Any, flags: int = 0) -> int:
        if self._conn is None and not self._closed:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")      # Linux: send() unconnected or listening
        ac = self._connected()
        mv = memoryview(data).cast("B")
        if not len(mv):
            return 0
        try:
            if self._nonblocking(flags):
                n = self._call(ac.try_send, mv)
                if n == 0:
                    raise _would_block()
                return n
            return self._run(lambda: ac.send(mv), self._timeout)
        except NotConnected:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe") from None
        except OSError as e:
            self._report_once(ac, e)
            raise BrokenPipeError(errno.EPIPE, "Broken pipe") from None

    def sendall(self, data: Any, flags: int = 0) -> None:
        if self._nonblocking(flags):
            mv = memoryview(data).cast("B")
            off = 0
            while off < len(mv):
                off += self.send(mv[off:], flags)
            return
        if self._conn is None and not self._closed:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        ac = self._connected()
        mv = memoryview(data).cast("B")
        try:
            self._run(lambda: ac.sendall(mv), self._timeout)
        except NotConnected:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe") from None
        except OSError as e:
            self._report_once(ac, e)
            raise BrokenPipeError(errno.EPIPE, "Broken pipe") from None

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        if offset:
            file.seek(offset)
        total = 0
        while count is None or total < count:
            chunk = file.read(65536 if count is None else min(65536, count - total))
            if not chunk:
                break
            self.sendall(chunk)
            total += len(chunk)
        return total

    def _nonblocking(self, flags: int) -> bool:
        """Does this call not wait? Non-blocking mode or MSG_DONTWAIT, also in timeout mode (see
        the module docstring: there the socket module waits for readiness first)."""
        return self._timeout == 0.0 or bool(flags & MSG_DONTWAIT)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if self._conn is None and self._shut_rd and not self._closed and self._lst is None:
            return b""                    # Linux: shutdown(SHUT_RD) marks even an unconnected socket
        ac = self._connected()
        if bufsize == 0:
            return b""
        if flags & MSG_PEEK:
            op = ac.peek
        else:
            op = ac.try_recv
        try:
            if self._nonblocking(flags) or self._shut_rd:
                data = self._call(op, bufsize)
                if data is None and self._shut_rd:
                    return b""            # shut for reading: what is queued, else b"" at once
                if data is None:
                    raise _would_block()
                return data
            if flags & MSG_PEEK:
                async def peek_wait() -> bytes:
                    while (d := ac.peek(bufsize)) is None:
                        await ac._wait()
                    return d
                return self._run(peek_wait, self._timeout)
            return self._run(lambda: ac.recv(bufsize), self._timeout)
        except OSError as e:
            self._report_once(ac, e)
            return b""             # Linux: the reset was reported; the socket is shut both ways

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        mv = memoryview(buffer).cast("B")
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        n = nbytes or len(mv)
        if n > len(mv):
            raise ValueError("buffer too small for requested bytes")
        data = self.recv(n, flags)
        mv[:len(data)] = data
        return len(data)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        return self.recv(bufsize, flags), None

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        return self.recv_into(buffer, nbytes, flags), None

    # ---- closing ----

    def shutdown(self, how: int) -> None:
        self._check_open()
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            raise OSError(errno.EINVAL, "Invalid argument")
        if self._lst is not None:
            self._call(self._lst.close)         # Linux: shutdown() of a listener stops it
            return
        ac = self._conn
        if how in (SHUT_RD, SHUT_RDWR):
            self._shut_rd = True          # Linux marks the socket even when it says ENOTCONN
        if ac is None or ac.conn.state in (State.CLOSED, State.TIME_WAIT):
            raise _not_connected()        # (Linux's socket is CLOSE once the connection is over)
        if how in (SHUT_WR, SHUT_RDWR):
            def do() -> None:
                st = ac.conn.state
                if st is State.CLOSED and ac.conn.error is None:
                    return
                if st in (State.CLOSING, State.LAST_ACK, State.TIME_WAIT):
                    return                    # already shut: Linux returns 0 too
                ac.shutdown_write()
            try:
                self._call(do)
            except OSError as e:
                if e.errno in (errno.ECONNRESET, errno.ETIMEDOUT, errno.ECONNREFUSED):
                    raise _not_connected() from None
                raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _decref_socketios(self) -> None:
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed and self._io_refs <= 0:
            self._real_close()

    def _real_close(self) -> None:
        astack = self._astack
        if astack.closed:
            return
        lst, ac = self._lst, self._conn
        self._lst = self._conn = None
        onoff, linger = self._linger

        def do() -> None:
            self._release_bind()
            if lst is not None:
                lst.close()
            if ac is not None:
                if onoff and linger == 0:
                    ac.abort()                        # SO_LINGER 0: RST (like Linux's tcp_close)
                else:
                    ac.close()
        try:
            self._call(do)
        except RuntimeError:
            return
        if ac is not None and onoff and linger > 0 and self._timeout != 0.0:
            # SO_LINGER with a time: a blocking close waits for the FIN to be acknowledged
            done = (State.FIN_WAIT_2, State.TIME_WAIT, State.CLOSED)
            try:
                self._run(lambda: ac.wait_state(lambda st: st in done), float(linger))
            except (timeout, OSError):
                pass

    def detach(self) -> int:
        raise OSError(errno.EOPNOTSUPP, "synack sockets have no kernel file descriptor")

    def __enter__(self) -> "socket":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed and (self._conn is not None or self._lst is not None):
                import warnings
                warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self)
        except Exception:         # noqa: BLE001 - interpreter shutdown
            pass

    # ---- modes ----

    def settimeout(self, value: float | None) -> None:
        self._check_open()                # the socket module: EBADF on a closed socket
        if value is not None:
            value = float(value)
            if value < 0:
                raise ValueError("Timeout value out of range")
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._check_open()
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    # ---- names ----

    def fileno(self) -> int:
        """Always -1: there is no kernel descriptor behind a synack socket."""
        return -1

    def getpeername(self) -> tuple:
        self._check_open()
        ac = self._conn
        if ac is None or self._connecting and not ac.connected:
            raise _not_connected()
        if ac.conn.state in (State.CLOSED, State.TIME_WAIT):
            raise _not_connected()        # Linux: ENOTCONN once the socket is CLOSE (reset, or both FINs)
        return ac.peername

    def getsockname(self) -> tuple:
        self._check_open()
        if self._conn is not None:
            return self._conn.sockname
        if self._lst is not None:
            return self._endpoint(self._lst.sockname[0], self._lst.port) if self._lst.listener.addr is not None \
                else self._endpoint("::" if self.family == AF_INET6 else "0.0.0.0", self._lst.port)
        if self._bound is not None:
            a, p = self._bound
            return self._endpoint(a or ("::" if self.family == AF_INET6 else "0.0.0.0"), p)
        return self._endpoint("::" if self.family == AF_INET6 else "0.0.0.0", 0)

    # ---- options ----

    def _live(self) -> Any:
        """The TcpConnection to update along with the socket's own config, if there is one."""
        return self._conn.conn if self._conn is not None else None

    def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> None:
        self._check_open()
        if value is None:
            raise TypeError("setsockopt() with value None needs optlen")
        if isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            ival = int.from_bytes(raw[:4].ljust(4, b"\0"), "little", signed=True) if raw else 0
        else:
            raw = None
            ival = int(value)
        cfg = self._config
        key = (level, optname)
        conn = self._live()
        if key == (IPPROTO_TCP, TCP_NODELAY):
            self._apply(lambda c: setattr(c, "nagle", not ival), conn)
        elif key == (SOL_SOCKET, SO_KEEPALIVE):
            self._apply(lambda c: setattr(c, "keepalive", bool(ival)), conn)
            if conn is not None:
                self._call(self._arm_keepalive)
        elif key in ((IPPROTO_TCP, TCP_KEEPIDLE), (IPPROTO_TCP, TCP_KEEPINTVL), (IPPROTO_TCP, TCP_KEEPCNT)):
            limit = 255 if optname == TCP_KEEPCNT else 32767
            if not 1 <= ival <= limit:
                raise OSError(errno.EINVAL, "Invalid argument")
            attr = {TCP_KEEPIDLE: "keepalive_idle", TCP_KEEPINTVL: "keepalive_interval",
                    TCP_KEEPCNT: "keepalive_count"}[optname]
            self._apply(lambda c: setattr(c, attr, float(ival) if attr != "keepalive_count" else ival), conn)
            if conn is not None and optname == TCP_KEEPIDLE:
                self._call(self._arm_keepalive)
        elif key == (SOL_SOCKET, SO_RCVBUF):
            v = max(ival, 256)
            self._apply(lambda c: setattr(c, "rcv_buf", v), conn)
            if conn is not None:
                self._call(lambda: setattr(conn.rcvbuf, "capacity", v))
        elif key == (SOL_SOCKET, SO_SNDBUF):
            v = max(ival, 256)
            self._apply(lambda c: setattr(c, "snd_buf", v), conn)
            if conn is not None:
                self._call(lambda: setattr(conn.sndbuf, "capacity", v))
        elif key == (SOL_SOCKET, SO_LINGER):
            if raw is None or len(raw) < 8:
                raise OSError(errno.EINVAL, "Invalid argument")
            onoff, linger = struct.unpack("ii", raw[:8])
            self._linger = (1 if onoff else 0, max(linger, 0))
        elif key == (SOL_SOCKET, SO_REUSEADDR):
            self._reuseaddr = 1 if ival else 0
        elif key == (IPPROTO_TCP, TCP_MAXSEG):
            if not 88 <= ival <= 32767:
                raise OSError(errno.EINVAL, "Invalid argument")
            cfg.mss = ival
        elif key == (IPPROTO_TCP, TCP_CONGESTION):
            # Linux: a name of up to TCP_CA_NAME_MAX (16) bytes, ENOENT when no such algorithm
            name = raw.split(b"\0", 1)[0].decode("ascii", "replace") if raw is not None else ""
            try:
                congestion.get(name)
            except KeyError:
                raise OSError(errno.ENOENT, "No such file or directory") from None
            # a name only, as Linux takes it: options given for another algorithm do not carry over
            self._apply(lambda c: (setattr(c, "cc", name), setattr(c, "cc_options", ())), conn)
            if conn is not None:
                self._call(lambda: conn.congestion_control_changed(self._astack.now()))
        elif key in ((IPPROTO_IP, IP_TOS), (IPPROTO_IPV6, IPV6_TCLASS)):
            v = ival & 0xFF             # the TOS / Traffic Class octet, also on a live connection
            self._apply(lambda c: setattr(c, "tos", v), conn)
        else:
            raise OSError(errno.ENOPROTOOPT, "Protocol not available")

    def _apply(self, fn: Callable[[Any], None], conn: Any) -> None:
        """Change the socket's config and, on the loop thread, the live connection's."""
        if conn is None:
            fn(self._config)
            return
        ac = self._conn

        def do() -> None:
            fn(self._config)
            if conn.config is not self._config:
                fn(conn.config)
            if ac is not None:
                ac._touch()               # e.g. Nagle turned off: what waited may go now
        self._call(do)

    def _arm_keepalive(self) -> None:
        """A keep-alive option set on a live connection takes effect now."""
        ac = self._conn
        if ac is None:
            return
        ac.conn.keepalive_changed(self._astack.now(), restart=False)
        ac._touch()

    def getsockopt(self, level: int, optname: int, buflen: int = 0) -> Any:
        self._check_open()
        key = (level, optname)
        cfg = self._config if self._conn is None else self._conn.conn.config
        if key == (SOL_SOCKET, SO_ERROR):
            v = self._take_error()
        elif key == (SOL_SOCKET, SO_TYPE):
            v = int(SOCK_STREAM)
        elif key == (SOL_SOCKET, SO_ACCEPTCONN):
            v = 1 if self._lst is not None and not self._lst.listener.closed else 0
        elif key == (IPPROTO_TCP, TCP_NODELAY):
            v = 0 if cfg.nagle else 1
        elif key == (SOL_SOCKET, SO_KEEPALIVE):
            v = 1 if cfg.keepalive else 0
        elif key == (IPPROTO_TCP, TCP_KEEPIDLE):
            v = int(cfg.keepalive_idle)
        elif key == (IPPROTO_TCP, TCP_KEEPINTVL):
            v = int(cfg.keepalive_interval)
        elif key == (IPPROTO_TCP, TCP_KEEPCNT):
            v = int(cfg.keepalive_count)
        elif key == (SOL_SOCKET, SO_RCVBUF):
            v = cfg.rcv_buf
        elif key == (SOL_SOCKET, SO_SNDBUF):
            v = cfg.snd_buf
        elif key == (SOL_SOCKET, SO_REUSEADDR):
            v = self._reuseaddr
        elif key == (IPPROTO_TCP, TCP_MAXSEG):
            v = self._conn.conn.mss if self._conn is not None and self._conn.connected else cfg.advertised_mss(self.family == AF_INET6)
        elif key == (SOL_SOCKET, SO_LINGER):
            raw = struct.pack("ii", *self._linger)
            return raw[:buflen] if buflen else self._linger[0]
        elif key in ((IPPROTO_IP, IP_TOS), (IPPROTO_IPV6, IPV6_TCLASS)):
            v = cfg.tos
        elif key == (IPPROTO_TCP, TCP_CONGESTION):
            name = (self._conn.conn.cc.name if self._conn is not None else congestion.get(cfg.cc).name).encode()
            if buflen:                  # Linux copies the name, NUL-padded to what was asked
                return name[:buflen].ljust(buflen, b"\0")
            v = int.from_bytes(name[:4].ljust(4, b"\0"), "little", signed=True)   # (as an int option)
        else:
            raise OSError(errno.ENOPROTOOPT, "Protocol not available")
        if buflen:
            return struct.pack("i", v)[:buflen].ljust(buflen, b"\0")
        return v

    def _take_error(self) -> int:
        """SO_ERROR: the pending error, cleared by reading it."""
        if self._error:
            e, self._error = self._error, 0
            return e
        ac = self._conn
        unreported = self._claim_error(ac) if ac is not None else None
        return unreported.errno or 0 if unreported is not None else 0

    def _claim_error(self, ac: AsyncConnection) -> OSError | None:
        """The connection's error as the socket reports it (``socket_error``), if no call has
        reported it yet; it counts as reported from now on. None when there is none to report."""
        err = ac.conn.error
        if err is None or id(err) in self._error_taken:
            return None
        self._error_taken.add(id(err))
        return socket_error(ac.conn)

    def _report_once(self, ac: AsyncConnection, e: OSError) -> None:
        """Raise ``e`` if it is the connection's error (reset, timeout, refused) not reported yet,
        and mark it reported; return if it was reported before; re-raise anything else. Linux
        reports a connection's error once (sock_error() clears sk_err): then SO_ERROR reads 0,
        recv() returns b"" and send() fails with EPIPE (the reset shut the socket both ways,
        tcp_done)."""
        if e is not ac.conn.error:
            raise e
        unreported = self._claim_error(ac)
        if unreported is not None:
            raise unreported

    def _take_error_of(self, ac: AsyncConnection) -> None:
        if ac.conn.error is not None:
            self._error_taken.add(id(ac.conn.error))

    # ---- extras ----

    def tcp_info(self) -> Any:
        """The connection's ``TcpInfo`` snapshot (Linux TCP_INFO as a dataclass)."""
        ac = self._conn
        if ac is None:
            raise _not_connected()
        return self._call(ac.conn.info)

    @property
    def connection(self) -> Any:
        """The underlying ``TcpConnection`` (touch it only on the stack's loop thread)."""
        return self._conn.conn if self._conn is not None else None

    @property
    def timeout(self) -> float | None:
        return self._timeout

    def makefile(self, mode: str = "r", buffering: int | None = None, *, encoding: str | None = None,
                 errors: str | None = None, newline: str | None = None) -> Any:
        """Like ``socket.makefile`` (the stdlib's ``SocketIO`` over this socket)."""
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
        writing = "w" in mode
        reading = "r" in mode or not writing
        binary = "b" in mode
        rawmode = ("r" if reading else "") + ("w" if writing else "")
        raw = _std.SocketIO(self, rawmode)  # type: ignore[arg-type]
        self._io_refs += 1
        if buffering is None:
            buffering = -1
        if buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        if reading and writing:
            buffer: Any = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        text = io.TextIOWrapper(buffer, encoding, errors, newline)
        text.mode = mode
        return text

    def __repr__(self) -> str:
        state = "closed" if self._closed else (
            f"listening {self._lst.sockname}" if self._lst is not None else
            f"{self._conn.conn.id} {self._conn.conn.state.name}" if self._conn is not None else "unconnected")
        return f"<synack.socket {state}>"


def _strerror(err: int) -> str:
    import os
    return os.strerror(err)


SocketType = socket


def create_connection(address: tuple[str, int], timeout: Any = _std._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                      source_address: tuple[str, int] | None = None, *,
                      stack: AsyncStack | None = None) -> socket:
    """Like ``socket.create_connection`` for an IP literal (or a name ``getaddrinfo`` resolves)."""
    host, port = address
    family = AF_INET6 if ":" in str(host) else AF_INET
    s = socket(family, SOCK_STREAM, stack=stack)
    try:
        if timeout is not _std._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
            s.settimeout(timeout)
        if source_address:
            s.bind(source_address)
        s.connect((host, port))
        return s
    except BaseException:
        s.close()
        raise


def create_server(address: tuple[str, int], *, family: int = AF_INET, backlog: int | None = None,
                  reuse_port: bool = False, stack: AsyncStack | None = None) -> socket:
    """Like ``socket.create_server``."""
    s = socket(family, SOCK_STREAM, stack=stack)
    try:
        s.bind(address)
        s.listen(128 if backlog is None else backlog)
        return s
    except BaseException:
        s.close()
        raise


__all__ = ["socket", "SocketType", "use_stack", "default_stack", "create_connection", "create_server",
           "timeout", "error", "gaierror", "herror",
           "AF_INET", "AF_INET6", "SOCK_STREAM", "SOCK_NONBLOCK", "SOCK_CLOEXEC", "SOL_SOCKET",
           "IPPROTO_TCP", "IPPROTO_IP", "SHUT_RD", "SHUT_WR", "SHUT_RDWR", "MSG_PEEK", "MSG_DONTWAIT",
           "SO_ERROR", "SO_KEEPALIVE", "SO_LINGER", "SO_RCVBUF", "SO_SNDBUF", "SO_REUSEADDR", "SO_TYPE",
           "SO_ACCEPTCONN", "TCP_NODELAY", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_MAXSEG",
           "TCP_CONGESTION",
           "getdefaulttimeout", "setdefaulttimeout", "getaddrinfo", "inet_aton", "inet_ntoa",
           "inet_pton", "inet_ntop"]
