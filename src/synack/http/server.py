"""An HTTP/1.1 server on h11, written against asyncio streams.

The same ``HttpServer`` runs on the kernel's TCP (``loop.create_server``) and on synack's
(``AsyncStack.create_server``): it sees only a ``StreamReader``/``StreamWriter`` pair (its
listeners give it a ``synack.http.stream.ServerStream``, both in one protocol object; ``handle``
takes ``asyncio.start_server``'s pair as well), plus
``writer.get_extra_info("synack_connection")`` when synack carries the connection. All HTTP
parsing and framing is h11's (RFC 9112); this module adds the policies around it:

* keep-alive, and pipelined requests answered in order (h11 keeps bytes that arrive early for
  the next cycle, and we read the next request only after the response is out);
* limits: the request head (request line and fields) ``max_header_bytes`` and ``max_headers``
  -> 431 (RFC 6585 §5); a body over ``max_body`` -> 413 (RFC 9110 §15.5.14), checked against
  Content-Length before reading and while reading chunks; anything h11 rejects -> 400;
* timeouts: ``idle_timeout`` between requests on a kept-alive connection (closed quietly);
  ``header_timeout`` from the first byte of a request to the end of its head, and
  ``body_timeout`` per read of the body (a slowloris gets 408 and the connection is closed);
  ``write_timeout`` for a client that stops reading (the connection is aborted);
* graceful shutdown (``shutdown()``): stop accepting, close idle connections, let requests in
  progress finish with ``Connection: close``, abort whatever is left after the grace period.

Applications are ``async def app(request: Request) -> Response``; see ``Response`` for bodies.
Errors the application raises become a 500. After an error response the connection is closed
with a lingering close (FIN, then input is read and dropped for a moment), so the client sees
the response rather than a reset caused by the bytes we did not read.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import heapq
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Iterator
from urllib.parse import unquote

import h11

from synack.http.stream import LIMIT, ServerStream, stream_factory

log = logging.getLogger("synack.http")

SERVER_NAME = "synack-http (h11)"
READ_CHUNK = 65536
WRITE_CHUNK = 65536

REASONS = {
    100: "Continue", 200: "OK", 204: "No Content", 206: "Partial Content", 301: "Moved Permanently",
    304: "Not Modified", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 413: "Content Too Large", 416: "Range Not Satisfiable",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable",
}


@dataclass(slots=True)
class ServerConfig:
    """Limits and timeouts (seconds). The defaults suit a small public server."""
    max_body: int = 1 << 20              # bytes of request body; more: 413
    max_header_bytes: int = 16384        # request line + fields; more: 431 (h11 max_incomplete_event_size)
    max_headers: int = 100               # header fields; more: 431
    idle_timeout: float = 15.0           # keep-alive: no new request this long -> close
    header_timeout: float = 10.0         # first byte of a request -> end of its head; else 408
    body_timeout: float = 10.0           # each read of a request body; else 408
    write_timeout: float = 30.0          # a response that cannot be written this long -> abort
    linger: float = 2.0                  # lingering close after an error: read and drop this long
    max_requests: int | None = None      # per connection; then Connection: close
    shutdown_grace: float = 10.0         # shutdown(): time given to requests in progress
    server_name: str = SERVER_NAME


@dataclass(slots=True)
class Request:
    """One request as the application sees it. ``path`` is the target's path, percent-decoded
    (``raw_path`` keeps it encoded), ``query`` the raw query string; ``headers`` are
    ``(name, value)`` with names in lower case, decoded as Latin-1. ``number`` counts the
    requests on this connection from 1. ``conn`` is synack's ``TcpConnection`` carrying it
    (None on the kernel's TCP) and ``astack`` synack's ``AsyncStack``."""
    method: str
    target: str
    raw_path: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    http_version: str
    body: bytes
    number: int
    peername: Any
    sockname: Any
    conn: Any = None
    astack: Any = None
    server: "HttpServer | None" = None

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first field called ``name`` (case-insensitive), or ``default``."""
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default


Body = bytes | Iterable[bytes] | Callable[[], Iterator[bytes]]


@dataclass(slots=True)
class Response:
    """``body``: bytes, or an iterable of byte chunks (e.g. a generator reading a file; it is
    closed if the client goes away), sent with ``length`` as Content-Length when given, else
    chunked. ``headers`` must not contain Content-Length or Transfer-Encoding for a bytes body:
    they are computed. A response to HEAD sends the headers of the GET and no body."""
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Body = b""
    length: int | None = None

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8",
             headers: Iterable[tuple[str, str]] = ()) -> "Response":
        return cls(status, [("content-type", content_type), *headers], text.encode("utf-8"))

    @classmethod
    def html(cls, text: str, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> "Response":
        return cls.text(status, text, "text/html; charset=utf-8", headers)

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> "Response":
        return cls(status, [("content-type", "application/json")],
                   json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8") + b"\n")

    @classmethod
    def error(cls, status: int, detail: str = "", headers: Iterable[tuple[str, str]] = ()) -> "Response":
        reason = REASONS.get(status, "Error")
        return cls.text(status, f"{status} {reason}\n" + (f"{detail}\n" if detail else ""), headers=headers)


App = Callable[[Request], Awaitable[Response]]


class _Close(Exception):
    """End this connection (quietly unless ``status``: then answer it first, lingering close)."""

    def __init__(self, status: int | None = None, detail: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# h11's names, looked up once (the per-request paths test event types with ``type(ev) is``)
_Request, _Data, _EndOfMessage, _ConnectionClosed = h11.Request, h11.Data, h11.EndOfMessage, h11.ConnectionClosed
_NEED_DATA, _MUST_CLOSE = h11.NEED_DATA, h11.MUST_CLOSE
_RemoteProtocolError = h11.RemoteProtocolError
_END = h11.EndOfMessage()         # one for every response: h11's events are frozen

_date_cache: tuple[int, str] = (0, "")


@functools.lru_cache(maxsize=1024)
def _formatdate(t: int) -> str:
    """(Cached: a static file's Last-Modified is the same second request after request.)"""
    return email.utils.formatdate(t, usegmt=True)


def http_date(t: float | None = None) -> str:
    """RFC 9110 §5.6.7 IMF-fixdate; the current time is cached per second."""
    global _date_cache
    if t is not None:
        return _formatdate(int(t)) if t == int(t) else email.utils.formatdate(t, usegmt=True)
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


@dataclass(slots=True, eq=False)
class _Conn:
    """What the server knows of one open connection (for shutdown and stats)."""
    task: asyncio.Task | None
    writer: asyncio.StreamWriter
    idle: bool = True                # waiting for the first byte of a request
    stopping: bool = False           # shutdown() interrupted the idle wait
    requests: int = 0
    idle_wait: list | None = None    # before a deferred start: the idle timeout (ReadTimeouts entry)
    linger_wait: list | None = None  # a lingering close after the task: its end (ReadTimeouts entry)
    lingered: asyncio.Future | None = None   # shutdown() waits on it for such a lingering close


class HttpServer:
    """Serve ``app`` over any number of listeners (kernel or synack). ``handle`` is the
    ``client_connected_cb`` for ``asyncio.start_server``-style functions::

        server = HttpServer(app)
        await server.listen_kernel("127.0.0.1", 8080)            # asyncio on the kernel's TCP
        await server.listen_synack(astack, None, 80)              # synack's TCP
        ...
        await server.shutdown()
    """

    def __init__(self, app: App, config: ServerConfig | None = None) -> None:
        self.app = app
        self.config = config if config is not None else ServerConfig()
        self.listeners: list[Any] = []
        self.conns: set[_Conn] = set()
        self.closing = False
        self.stats = {"connections": 0, "requests": 0, "errors": 0}
        self._all_done: asyncio.Event | None = None
        self._reads = ReadTimeouts()

    # ------------------------------------------------------------------ listening

    # Both take ``asyncio.start_server``'s keywords; each connection is a ``ServerStream``
    # (synack.http.stream), reader and writer in one protocol object, served by ``handle``.

    async def listen_kernel(self, host: str | None, port: int, **kw: Any) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        factory = stream_factory(self.handle, loop, kw.pop("limit", LIMIT), self._made)
        srv = await loop.create_server(factory, host, port, **kw)
        self.listeners.append(srv)
        return srv

    async def listen_synack(self, astack: Any, host: str | None, port: int, **kw: Any) -> Any:
        factory = stream_factory(self.handle, astack.loop, kw.pop("limit", LIMIT), self._made)
        srv = await astack.create_server(factory, host, port, **kw)
        self.listeners.append(srv)
        return srv

    def _made(self, stream: Any) -> None:
        """A new connection on one of our listeners (a ``ServerStream``): counted and known to
        ``shutdown()`` now, its handler task started by its first input (``handle`` then takes
        this record over). Until then its idle timeout is kept here, with what ``handle``'s
        first read would do at the end of it: close quietly. A new connection has nothing to
        read until its first bytes come, so the task that would start now only waits for them:
        a task step, a future and a wake-up per connection saved. While shutting down, the
        handler starts at once, as before (it closes the connection without reading)."""
        c = _Conn(None, stream)
        stream.tag = c
        self.conns.add(c)
        self.stats["connections"] += 1
        if self.closing:
            stream.start()
            return
        c.idle_wait = self._reads.call_later(self.config.idle_timeout, self._idle_expired, c)

    def _idle_expired(self, c: _Conn) -> None:
        """No input within the idle timeout and the handler never started: close quietly."""
        c.idle_wait = None
        self._close_unstarted(c)

    def _close_unstarted(self, c: _Conn) -> None:
        c.writer.tag = None
        c.writer.start(run=False)
        self.conns.discard(c)
        if not c.writer.is_closing():
            c.writer.close()

    @property
    def ports(self) -> list[int]:
        out = []
        for srv in self.listeners:
            port = getattr(srv, "port", None)
            if port is None and getattr(srv, "sockets", None):
                port = srv.sockets[0].getsockname()[1]
            out.append(port)
        return out

    # ------------------------------------------------------------------ shutdown

    async def shutdown(self, grace: float | None = None) -> int:
        """Stop accepting, close idle connections, give requests in progress ``grace`` seconds
        (default ``config.shutdown_grace``) to finish, then abort the rest. Returns how many
        connections had to be aborted."""
        grace = self.config.shutdown_grace if grace is None else grace
        self.closing = True
        for srv in self.listeners:
            srv.close()
        for c in list(self.conns):
            if c.idle and c.task is not None and not c.task.done():
                c.stopping = True
                c.task.cancel()
            elif c.idle_wait is not None:             # a deferred start, its handler not running
                self._reads.cancel(c.idle_wait)
                c.idle_wait = None
                if not c.writer.started:
                    self._close_unstarted(c)
                # else its first input came and its task is about to run: it sees self.closing
                # before it reads and closes the connection quietly, as an idle one
        tasks = [c.task for c in self.conns if c.task is not None and not c.task.done()]
        for c in self.conns:
            if c.linger_wait is not None:             # a lingering close after its task ended
                c.lingered = asyncio.get_running_loop().create_future()
                tasks.append(c.lingered)
        aborted = 0
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=grace)
            for t in pending:
                aborted += 1
                t.cancel()
            for c in list(self.conns):
                if c.task in pending or c.lingered in pending:
                    _abort(c.writer)
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        return aborted

    # ------------------------------------------------------------------ one connection

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until it closes (the ``client_connected_cb``)."""
        c = getattr(writer, "tag", None)
        if type(c) is _Conn:                  # a deferred start (see _made): known already
            writer.tag = None                 # (no cycle stream -> record -> stream left to the gc)
            if c.idle_wait is not None:
                self._reads.cancel(c.idle_wait)
                c.idle_wait = None
            c.task = asyncio.current_task()
        else:
            c = _Conn(asyncio.current_task(), writer)
            self.conns.add(c)
            self.stats["connections"] += 1
        detached = False
        try:
            detached = await self._serve(c, reader, writer)
        except asyncio.CancelledError:
            if not c.stopping:
                _abort(writer)
                raise
        except (ConnectionError, OSError, TimeoutError):
            _abort(writer)
        except Exception:                                 # noqa: BLE001 - a bug must not kill the server
            log.exception("HTTP connection handler failed")
            _abort(writer)
        finally:
            if not detached:                 # else the lingering close does it, at its end
                self.conns.discard(c)
                if not writer.is_closing():
                    writer.close()

    async def _serve(self, c: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve requests until the connection is to close. True: a lingering close goes on
        without the task (``_linger_detached``), which will close the connection."""
        cfg = self.config
        h = _H11(h11.SERVER, max_incomplete_event_size=cfg.max_header_bytes)
        extra = writer.transport.get_extra_info     # (the writer's own asks the transport)
        conn, astack = extra("synack_connection"), extra("synack_stack")
        peer, sock = extra("peername"), extra("sockname")
        fresh = True                  # h11 holds no bytes yet: no need to ask it for an event first
        while True:
            # ---- the head of the next request
            try:
                ev = await self._next_head(c, h, reader, fresh)
                fresh = False
            except _Close as e:
                if e.status is not None:
                    await self._send_error(h, writer, e.status, e.detail)
                    if self._linger_detached(c, reader, False):
                        return True
                    await _linger(reader, writer, cfg.linger, read=self._reads.read)
                return False
            if ev is None:                                     # peer closed between requests
                return False
            c.requests += 1
            self.stats["requests"] += 1
            # ---- body, with limits
            try:
                req = self._request(ev, c.requests, peer, sock, conn, astack)
                try:
                    first: Any = h.next_event()
                except _RemoteProtocolError as e:
                    first = e
                if type(first) is not _EndOfMessage:               # else no body (GET, HEAD, ...)
                    req.body = await self._read_body(h, reader, writer, req, first)
            except _Close as e:
                if e.status is not None:
                    await self._send_error(h, writer, e.status, e.detail)
                    if self._linger_detached(c, reader, False):
                        return True
                    await _linger(reader, writer, cfg.linger, read=self._reads.read)
                return False
            # ---- the application
            try:
                resp = await self.app(req)
            except Exception:                                  # noqa: BLE001
                log.exception("HTTP application failed on %s %s", req.method, req.target)
                self.stats["errors"] += 1
                resp = Response.error(500)
            last = self.closing or (cfg.max_requests is not None and c.requests >= cfg.max_requests)
            eof = await self._send(h, writer, req.method, resp, close=last)
            if h.our_state is h11.MUST_CLOSE or h.their_state in (h11.MUST_CLOSE, h11.CLOSED) or last:
                if h.their_state is not h11.CLOSED:
                    if self._linger_detached(c, reader, eof):
                        return True
                    await _linger(reader, writer, cfg.linger, eof_sent=eof, read=self._reads.read)
                return False
            if h.our_state is not h11.DONE or h.their_state is not h11.DONE:
                return False
            h.start_next_cycle()

    async def _next_head(self, c: _Conn, h: h11.Connection, reader: asyncio.StreamReader,
                         fresh: bool = False) -> h11.Request | None:
        """Wait for the next request's head. None: the peer closed cleanly before one began.
        Raises ``_Close`` for a timeout, an oversized head or a malformed one. ``fresh``: h11
        has been given no bytes yet (a new connection), so the first step is a read."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        deadline: float | None = None                 # set once the first byte of the head is here
        fed = 0                                       # bytes given to h11 here
        carried = not fresh                           # h11 may hold bytes given before this call
        c.idle = True
        try:
            while True:
                if fresh:
                    ev = _NEED_DATA
                else:
                    try:
                        ev = h.next_event()
                    except _RemoteProtocolError as e:
                        status = e.error_status_hint if e.error_status_hint in (400, 431) else 400
                        raise _Close(status, str(e)) from None
                if type(ev) is _Request:
                    if len(ev.headers) > cfg.max_headers:
                        raise _Close(431, f"more than {cfg.max_headers} header fields")
                    # h11 bounds only a head still incomplete; one that arrived whole is measured
                    # here, unless what h11 was given (head and more) is within the bound: this
                    # size is at most the head's bytes plus one per field ("name:value" counts 4)
                    if carried or fed + len(ev.headers) > cfg.max_header_bytes:
                        size = len(ev.method) + len(ev.target) + 12 + sum(len(k) + len(v) + 4 for k, v in ev.headers)
                        if size > cfg.max_header_bytes:
                            raise _Close(431, f"the request head may be at most {cfg.max_header_bytes} bytes")
                    return ev
                if type(ev) is _ConnectionClosed:
                    return None
                if ev is not _NEED_DATA:              # PAUSED cannot happen: a cycle was started
                    raise _Close(None, f"unexpected {ev!r}")
                if fresh:
                    fresh = False
                elif h.trailing_data[0]:
                    c.idle = False
                    if deadline is None:
                        deadline = loop.time() + cfg.header_timeout
                if c.idle and self.closing:
                    return None
                timeout = cfg.idle_timeout if deadline is None else deadline - loop.time()
                if timeout <= 0:
                    raise _Close(408, "the request head took too long")
                try:
                    data = await self._reads.read(reader, timeout)
                except TimeoutError:
                    if deadline is None:
                        raise _Close(None, "idle") from None
                    raise _Close(408, "the request head took too long") from None
                except asyncio.CancelledError:
                    if c.stopping:
                        raise _Close(None, "shutting down") from None
                    raise
                if data:
                    c.idle = False
                    fed += len(data)
                    if deadline is None:
                        deadline = loop.time() + cfg.header_timeout
                try:
                    h.receive_data(data)
                except _RemoteProtocolError as e:
                    raise _Close(400, str(e)) from None
        finally:
            c.idle = False

    def _linger_detached(self, c: _Conn, reader: Any, eof_sent: bool) -> bool:
        """``_linger`` (its twin, for any reader) on a ``ServerStream``, without the task: the
        stream drops its input (``drop_input``) and ``_linger_end`` closes the connection at the
        peer's FIN, at the connection's loss, after 1 MiB dropped, or ``linger`` seconds from
        now. The task ends at once: waiting for the FIN cost it a wake-up, a task step and a
        pass of the event loop per close-mode connection. ``c`` stays in ``conns`` until the
        end (``shutdown()`` waits for it as for a task). False: not done (another reader, no
        time to linger, or the half-close failed): the caller closes as ``_linger`` would."""
        if type(reader) is not ServerStream or reader is not c.writer or self.config.linger <= 0:
            return False
        try:
            if not eof_sent and reader.can_write_eof():
                reader.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            return False
        c.linger_wait = self._reads.call_later(self.config.linger, self._linger_end, c)
        reader.drop_input(1 << 20, self._linger_end, c)
        return True

    def _linger_end(self, c: _Conn) -> None:
        """The end of ``_linger_detached``'s lingering close (the first of its ends; the others
        find it done): close, as ``handle`` does after ``_linger``."""
        if c.linger_wait is None:
            return
        self._reads.cancel(c.linger_wait)
        c.linger_wait = None
        self.conns.discard(c)
        if not c.writer.is_closing():
            c.writer.close()
        if c.lingered is not None and not c.lingered.done():
            c.lingered.set_result(None)

    def _request(self, ev: h11.Request, number: int, peer: Any, sock: Any, conn: Any, astack: Any) -> Request:
        hit = _request_parts.get(id(ev))
        if hit is None or hit[0] is not ev:
            hit = _decode_request(ev)
        _, method, target, raw_path, path, query, headers, version = hit
        return Request(method, target, raw_path, path, query, list(headers), version, b"", number,
                       peer, sock, conn, astack, self)

    async def _read_body(self, h: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         req: Request, ev: Any) -> bytes:
        """The body; ``ev`` is h11's first event after the head (or the error it raised)."""
        cfg = self.config
        cl = req.header("content-length")                     # before any of the body is taken
        if cl is not None and cl.isdigit() and int(cl) > cfg.max_body:
            raise _Close(413, f"the body may be at most {cfg.max_body} bytes")
        if isinstance(ev, _RemoteProtocolError):
            raise _Close(400, str(ev))
        chunks: list[bytes] = []
        size = 0
        while True:
            if isinstance(ev, h11.Data):
                size += len(ev.data)
                if size > cfg.max_body:
                    raise _Close(413, f"the body may be at most {cfg.max_body} bytes")
                chunks.append(bytes(ev.data))
            elif isinstance(ev, h11.EndOfMessage):
                return b"".join(chunks)
            elif isinstance(ev, h11.ConnectionClosed):
                raise _Close(None, "closed during the body")
            elif ev is not h11.NEED_DATA:
                raise _Close(None, f"unexpected {ev!r}")
            else:
                if h.they_are_waiting_for_100_continue:           # RFC 9110 §10.1.1
                    await self._write(writer, h.send(h11.InformationalResponse(status_code=100, headers=[])))
                try:
                    data = await self._reads.read(reader, cfg.body_timeout)
                except TimeoutError:
                    raise _Close(408, "the request body took too long") from None
                try:
                    h.receive_data(data)
                except h11.RemoteProtocolError as e:
                    raise _Close(400, str(e)) from None
            try:
                ev = h.next_event()
            except h11.RemoteProtocolError as e:
                raise _Close(400, str(e)) from None

    # ------------------------------------------------------------------ writing

    def _headers(self, resp: Response, close: bool, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
        hs = [("date", http_date()), ("server", self.config.server_name)]
        hs += [(k.lower(), v) for k, v in resp.headers]
        hs += extra
        if close:
            hs.append(("connection", "close"))
        return hs

    async def _send(self, h: h11.Connection, writer: asyncio.StreamWriter, method: str, resp: Response,
                    *, close: bool) -> bool:
        """Write ``resp``; True if the FIN went with it (the connection's last response)."""
        body = resp.body
        status = resp.status
        extra: list[tuple[str, str]] = []
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        if isinstance(body, (bytes, bytearray, memoryview)):
            if status != 204 and status != 304:
                extra.append(("content-length", str(len(body))))
            chunks: Iterable[bytes] = (body if type(body) is bytes else bytes(body),) if body else ()
        else:
            if resp.length is not None and status not in (204, 304):
                extra.append(("content-length", str(resp.length)))
            chunks = body() if callable(body) else body
        head = _response_head(status, self._headers(resp, close, extra))
        # The head and the first chunks go out in one write: one segment for a small response,
        # not a header segment and then the body (Nagle would hold the body for an ACK).
        # h11's send_with_data_passthrough gives the pieces its send() would join (the head; a
        # chunk as it is, with its framing if chunked; the end): they are joined once, below.
        send = h.send_with_data_passthrough
        pending = send(head)
        size = 0
        try:
            if not no_body:
                for chunk in chunks:
                    if chunk:
                        pieces = send(_Data(data=chunk))
                        pending += pieces
                        for piece in pieces:
                            size += len(piece)
                        if size >= WRITE_CHUNK:
                            await self._write(writer, b"".join(pending))
                            pending.clear()
                            size = 0
            pending += send(_END)
            # The last response on this connection: the FIN goes with it (RFC 9112 §9.6: the
            # server closes after the final response; half-close first, see _linger), in the
            # same segment for a small response rather than one more segment after the drain.
            eof = h.our_state is _MUST_CLOSE and writer.can_write_eof()
            await self._write(writer, b"".join(pending), eof=eof)
            return eof
        finally:
            close_it = getattr(chunks, "close", None)
            if close_it is not None:
                close_it()

    async def _send_error(self, h: h11.Connection, writer: asyncio.StreamWriter, status: int, detail: str) -> None:
        self.stats["errors"] += 1
        if h.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        resp = Response.error(status, detail)
        head = _response_head(status, self._headers(resp, True, [("content-length", str(len(resp.body)))]))
        try:
            data = h.send(head) + h.send(h11.Data(data=resp.body)) + h.send(h11.EndOfMessage())
            await self._write(writer, data)
        except h11.LocalProtocolError:
            pass
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass

    async def _write(self, writer: asyncio.StreamWriter, data: bytes | None, *, eof: bool = False) -> None:
        if not data:
            return
        writer.write(data)
        if eof:
            writer.write_eof()
        transport = writer.transport
        if not transport.get_write_buffer_size() and not transport.is_closing():
            # Everything went to the transport's socket (or synack's send buffer): drain() has
            # nothing to wait for, so no timer for write_timeout (one fewer per response).
            await writer.drain()
            return
        try:
            async with asyncio.timeout(self.config.write_timeout):
                await writer.drain()
        except TimeoutError:
            _abort(writer)
            raise ConnectionAbortedError("the client stopped reading") from None


MEMO_HEAD_MAX = 2048                    # bytes of a request head at most, for it to be remembered
_request_parts: dict[int, tuple] = {}   # id(h11 event) -> (the event, what _decode_request made)


def _decode_request(ev: h11.Request) -> tuple:
    """A request head's fields as ``Request`` holds them (str, the path percent-decoded),
    remembered per h11 event: the same event comes back for the same head (see
    ``_memo_read_from_idle_client``)."""
    target = ev.target.decode("latin-1")
    raw = target
    if raw[:1] != "/" and raw.startswith(("http://", "https://")):   # absolute-form (RFC 9112 §3.2.2)
        rest = raw.split("://", 1)[1]
        raw = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    raw_path, _, query = raw.partition("?")
    raw_path = raw_path.split("#", 1)[0]
    out = (ev, ev.method.decode("latin-1"), target, raw_path, unquote(raw_path, errors="replace"), query,
           tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in ev.headers),
           ev.http_version.decode("latin-1"))
    if len(raw) + sum(len(k) + len(v) for k, v in out[6]) <= MEMO_HEAD_MAX:
        if len(_request_parts) >= 512:
            _request_parts.clear()
        _request_parts[id(ev)] = out      # the event is held: its id stays its own
    return out


_heads: dict[tuple, Any] = {}        # (status, *header list) -> the h11 Response made from them


def _response_head(status: int, headers: list[tuple[str, str]]) -> h11.Response:
    """``h11.Response(status_code=status, headers=headers, reason=...)``, with the validation of
    the headers done once per distinct header list: h11 takes the ``Headers`` value of an
    earlier event as it is (it is checked already), and a server sends the same few header
    lists again and again within a second (same Date, same file). The checks are h11's own,
    run on the first use of each list; they were ~20 us of a request. The event itself is
    reused (h11's events are frozen)."""
    key = (status, *headers)
    ev = _heads.get(key)
    if ev is None:
        if len(_heads) >= 512:
            _heads.clear()
        hs = h11.Response(status_code=status, headers=headers).headers
        ev = _heads[key] = h11.Response(status_code=status, headers=hs, reason=_REASON_BYTES.get(status, b""))
    return ev


_REASON_BYTES = {k: v.encode() for k, v in REASONS.items()}


def _idle_client_reader() -> tuple[Any, Any] | None:
    """h11's reader of a request head and its receive buffer class, if this h11 has them."""
    try:
        from h11._readers import READERS
        from h11._receivebuffer import ReceiveBuffer
        return READERS[(h11.CLIENT, h11.IDLE)], ReceiveBuffer
    except (ImportError, KeyError, TypeError):
        return None


_IDLE_READER, _ReceiveBuffer = _idle_client_reader() or (None, None)
_parsed_heads: dict[bytes, h11.Request] = {}


def _memo_read_from_idle_client(buf: Any) -> h11.Request | None:
    """h11's reader of a request head (``maybe_read_from_IDLE_client``), with the event it
    makes remembered per distinct head: a client sends the same head again and again, and h11's
    events are frozen. h11 does the parsing: the head's lines, as h11 splits them off its
    buffer, are joined again (each line ended by CRLF, as h11 would split them the same way)
    and given to h11's own reader, on the first sight of a head and whenever it is malformed
    (its error is raised anew each time)."""
    lines = buf.maybe_extract_lines()
    if lines is None:
        if buf.is_next_line_obviously_invalid_request_line():
            raise h11.LocalProtocolError("illegal request line")
        return None
    key = b"\n".join(lines)
    ev = _parsed_heads.get(key)
    if ev is None:
        head = _ReceiveBuffer()
        head += b"".join(line + b"\r\n" for line in lines) + b"\r\n"
        ev = _IDLE_READER(head)
        if len(key) <= MEMO_HEAD_MAX:
            if len(_parsed_heads) >= 512:
                _parsed_heads.clear()
            _parsed_heads[key] = ev
    return ev


class _MemoH11(h11.Connection):
    """``h11.Connection`` whose response-header clean-up (its framing headers, and ``Connection:
    close`` when the client asked for it or spoke HTTP/1.0) is remembered per cached ``Headers``
    value (see ``_response_head``) and per everything else it reads: the status, the request
    method, keep-alive and the client's HTTP version. h11 makes the decision, once per
    distinct case; what it makes is then reused as it is. Without this, every close-mode
    response had its headers rebuilt and validated again (~4 % of a close-mode connection's
    instructions, ``bench/http_cpu.py``). It overrides one private h11 method, so it is used
    only where that method and the attributes it keys on exist (``_H11`` below); tests check
    the bytes are h11's own.

    Likewise the parsing of a request head is remembered per distinct head
    (``_memo_read_from_idle_client``; ~2 % of a close-mode connection), by putting that
    reader in the place of h11's when h11 has just picked its own: at the start and at the start
    of each next cycle, the only ways to a client's IDLE state."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        if self._reader is _IDLE_READER and _IDLE_READER is not None:
            self._reader = _memo_read_from_idle_client

    def start_next_cycle(self) -> None:
        super().start_next_cycle()          # the other way back to reading a request head
        if self._reader is _IDLE_READER and _IDLE_READER is not None:
            self._reader = _memo_read_from_idle_client

    def _clean_up_response_headers_for_sending(self, response: h11.Response) -> h11.Response:
        hs = response.headers
        key = (id(hs), response.status_code, self._request_method, self._cstate.keep_alive,
               self.their_http_version)
        hit = _cleaned.get(key)
        if hit is None or hit[0] is not hs:
            out = super()._clean_up_response_headers_for_sending(response)
            if len(_cleaned) >= 512:
                _cleaned.clear()
            _cleaned[key] = (hs, out)              # hs is held: its id stays its own
            return out
        out = hit[1]
        if out.http_version == response.http_version and out.reason == response.reason:
            return out                              # the same event again (h11's are frozen)
        return h11.Response(headers=out.headers, status_code=response.status_code,
                            http_version=response.http_version, reason=response.reason)


_cleaned: dict[tuple, tuple] = {}


def _memo_supported() -> bool:
    probe = h11.Connection(h11.SERVER)
    return (callable(getattr(h11.Connection, "_clean_up_response_headers_for_sending", None))
            and hasattr(probe, "_request_method") and hasattr(getattr(probe, "_cstate", None), "keep_alive"))


_H11 = _MemoH11 if _memo_supported() else h11.Connection


def _abort(writer: asyncio.StreamWriter) -> None:
    try:
        writer.transport.abort()
    except Exception:                       # noqa: BLE001 - already gone
        pass


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float,
                  *, read: Callable[[asyncio.StreamReader, float], Awaitable[bytes]],
                  eof_sent: bool = False) -> None:
    """Half-close (unless ``eof_sent``: done already), then read and drop the peer's input until
    its FIN (at most ``seconds``; ``read`` is ``ReadTimeouts.read``), so that closing with unread
    bytes does not send a RST that could destroy our last response before the client reads it
    (RFC 9112 §9.6)."""
    try:
        if not eof_sent and writer.can_write_eof():
            writer.write_eof()
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        dropped = 0
        while dropped < (1 << 20):
            left = end - loop.time()
            if left <= 0:
                break
            data = await read(reader, left)
            if not data:
                break
            dropped += len(data)
    except (TimeoutError, ConnectionError, OSError, RuntimeError):
        pass


class ReadTimeouts:
    """``read(reader, seconds)``: ``reader.read(READ_CHUNK)`` raising ``TimeoutError`` after
    ``seconds`` (``async with asyncio.timeout(seconds)`` around it), for all of a server's reads
    at once. Each read pushes its deadline on a heap; one ``call_at`` handle waits for the
    earliest, and it is moved only when a read's deadline is earlier still. A read that ends
    leaves its entry behind (popped when it comes to the top, or in a rebuild when the heap
    holds many more ended reads than waiting ones), so the common read, answered before its
    deadline, costs a heap push and no ``TimerHandle`` made, cancelled and popped (two per
    close-mode request; ~1.5 % of a close-mode connection's instructions in
    ``bench/http_cpu.py``). A timed-out read gets ``TimeoutError`` at its deadline, as with
    ``asyncio.timeout``; a cancellation from elsewhere stays a cancellation."""

    __slots__ = ("_heap", "_seq", "_waiting", "_loop", "_handle", "_at")

    def __init__(self) -> None:
        # (deadline, seq, [task or None, expired]); an entry of call_later() is
        # [(fn, arg) or None, None]: the same heap and handle serve both
        self._heap: list[tuple[float, int, list]] = []
        self._seq = itertools.count()
        self._waiting = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._at = float("inf")                          # when _handle fires

    async def read(self, reader: asyncio.StreamReader, seconds: float) -> bytes:
        if type(reader) is ServerStream and reader.read_ready():
            # the read returns without waiting (the first read of a connection whose handler its
            # first bytes started): no time can pass, so no deadline to keep
            return await reader.read(READ_CHUNK)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:                       # first use, or a new loop: start afresh
            self.__init__()
            self._loop = loop
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        when = loop.time() + seconds
        entry = [task, False]
        heapq.heappush(self._heap, (when, next(self._seq), entry))
        self._waiting += 1
        if when < self._at:
            self._arm(when)
        try:
            data = await reader.read(READ_CHUNK)
        except BaseException as e:
            if entry[1] and task.uncancel() <= cancelling and isinstance(e, asyncio.CancelledError):
                raise TimeoutError from None
            raise
        finally:
            entry[0] = None
            self._waiting -= 1
            if len(self._heap) > 4 * self._waiting + 256:
                self._compact()
        if entry[1]:                      # it fired as the data came: the task's cancel stays pending
            task.uncancel()
        return data

    def call_later(self, seconds: float, fn: Callable[[Any], Any], arg: Any) -> list:
        """``fn(arg)`` after ``seconds`` unless ``cancel()``-ed first: a deadline in the same heap
        (a connection's idle timeout before its handler starts, see ``HttpServer._made``)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self.__init__()
            self._loop = loop
        when = loop.time() + seconds
        entry = [(fn, arg), None]
        heapq.heappush(self._heap, (when, next(self._seq), entry))
        self._waiting += 1
        if when < self._at:
            self._arm(when)
        return entry

    def cancel(self, entry: list) -> None:
        """Forget an entry of ``call_later()`` (left in the heap, as an ended read's is)."""
        if entry[0] is not None:
            entry[0] = None
            self._waiting -= 1

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_at(when, self._fire)
        self._at = when

    def _fire(self) -> None:
        self._handle, self._at = None, float("inf")
        heap = self._heap
        now = self._loop.time()
        while heap:
            when, _, entry = heap[0]
            task = entry[0]
            if task is not None:
                if when > now:
                    self._arm(when)
                    return
                if entry[1] is None:                     # call_later(): (fn, arg)
                    entry[0] = None
                    self._waiting -= 1
                    heapq.heappop(heap)
                    task[0](task[1])
                    continue
                if not task.done():
                    entry[1] = True
                    task.cancel()
            heapq.heappop(heap)

    def _compact(self) -> None:
        self._heap = [x for x in self._heap if x[2][0] is not None]
        heapq.heapify(self._heap)


async def serve_forever_kernel(app: App, host: str, port: int, config: ServerConfig | None = None,
                               ready: Callable[[HttpServer], Any] | None = None) -> None:
    """Run ``app`` on the kernel's TCP until cancelled; then shut down gracefully."""
    server = HttpServer(app, config)
    await server.listen_kernel(host, port)
    if ready is not None:
        ready(server)
    try:
        await asyncio.Event().wait()
    finally:
        await server.shutdown()


__all__ = ["HttpServer", "ServerConfig", "Request", "Response", "App", "REASONS", "http_date",
           "serve_forever_kernel"]
