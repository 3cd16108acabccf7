"""The small classic services a real host answers on: echo (RFC 862, port 7), discard
(RFC 863, port 9) and character generator (RFC 864, port 19).

``ServiceHost`` is a ``StackRunner`` hook (it runs on the loop thread, after every step): it
pulls the stack's events, accepts new connections from its listeners and gives each connection
to a small per-connection state machine that moves bytes with backpressure and closes when the
peer closes::

    host = ServiceHost(stack, on_open=print_open, on_close=print_close)
    host.add("echo", 7)
    host.add("chargen", 19)
    runner.add_hook(host)
    ...
    host.shutdown(now)                           # on the loop thread: FIN everywhere
    runner.run(until=host.finished, timeout=3)

It is event-driven: a connection is looked at only when the stack reports an event for it
(data arrived, send space opened, state changed) or when it stopped early last time to let
the others have a turn. Backpressure is TCP's own: echo stops reading while
``max_pending`` bytes wait to go back, so the receive window closes on a peer that sends
without reading; chargen writes only while the send buffer takes bytes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from synack.stack.host import Acceptable, Listener, Stack
from synack.tcp.connection import TcpConnection
from synack.tcp.errors import LocalError
from synack.tcp.events import Closed, Reset, TimedOut
from synack.tcp.states import State

DEFAULT_PORTS = {"echo": 7, "discard": 9, "chargen": 19}
CHUNK = 65536              # bytes per receive()/send() call
ROUNDS = 64                # receive/send rounds per connection per turn, then the others' turn
_DONE_STATES = (State.CLOSED, State.TIME_WAIT)


def chargen_cycle() -> bytes:
    """One full period of the RFC 864 pattern: 95 lines of 72 printable ASCII characters, each
    line starting one character further along, each ending in CR LF (95 * 74 = 7030 octets)."""
    chars = bytes(range(32, 127))
    twice = chars + chars
    return b"".join(twice[i:i + 72] + b"\r\n" for i in range(len(chars)))


CHARGEN = chargen_cycle()
_CHARGEN_RUN = CHARGEN * (CHUNK // len(CHARGEN) + 2)    # any CHUNK-long slice from offset < 7030


# ------------------------------------------------------------------ per-connection handlers

class Handler:
    """One connection's service. ``pump()`` moves what it can and returns whether it stopped
    early (then it is pumped again next turn without waiting for an event)."""
    name = "?"

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.closed = False          # close() was called on the connection

    def pump(self, conn: TcpConnection, now: float) -> bool:
        raise NotImplementedError

    def shutdown(self, conn: TcpConnection, now: float) -> None:
        """The host is going down: input is read and dropped, FIN follows the queued data."""
        if not self.closed:
            self.closed = True
            if conn.state is not State.CLOSED:
                self._drain(conn)
            conn.close(now)

    def _drain(self, conn: TcpConnection) -> bool | None:
        """Read and drop everything readable: True at EOF, None when it stopped early."""
        for _ in range(ROUNDS):
            d = conn.receive(CHUNK)
            if d is None:
                return False
            if d == b"":
                return True
            self.bytes_in += len(d)
        return None


class Echo(Handler):
    """RFC 862: everything received is sent back; FIN after the peer's FIN and the last byte."""
    name = "echo"

    def __init__(self, max_pending: int = 262144) -> None:
        super().__init__()
        self.pending = bytearray()
        self.max_pending = max_pending
        self.eof = False

    def pump(self, conn: TcpConnection, now: float) -> bool:
        pend = self.pending
        for _ in range(ROUNDS):
            moved = False
            if pend:
                n = conn.send(bytes(pend[:CHUNK]))
                if n:
                    del pend[:n]
                    self.bytes_out += n
                    moved = True
            if not self.eof and not self.closed and len(pend) < self.max_pending:
                d = conn.receive(CHUNK)
                if d == b"":
                    self.eof = True
                elif d:
                    pend += d
                    self.bytes_in += len(d)
                    moved = True
            if not moved:
                break
        else:
            return True
        if self.eof and not pend and not self.closed:
            self.closed = True
            conn.close(now)
        return False

    def shutdown(self, conn: TcpConnection, now: float) -> None:
        """Echo what was received so far, then FIN; if the send buffer cannot take it all,
        RST, so the peer does not take a cut echo for a whole one."""
        if self.closed or conn.state is State.CLOSED:
            self.closed = True
            return
        self.closed = True
        pend = self.pending
        if not self.eof:
            while (d := conn.receive(CHUNK)):
                pend += d
                self.bytes_in += len(d)
        if pend:
            n = conn.send(bytes(pend))
            self.bytes_out += n
            del pend[:n]
        if pend or conn.readable:
            conn.abort(now)
        else:
            conn.close(now)


class Discard(Handler):
    """RFC 863: everything received is thrown away; FIN after the peer's FIN."""
    name = "discard"

    def pump(self, conn: TcpConnection, now: float) -> bool:
        eof = self._drain(conn)
        if eof is None:
            return True
        if eof and not self.closed:
            self.closed = True
            conn.close(now)
        return False


class Chargen(Handler):
    """RFC 864: send the rotating pattern for as long as the peer keeps the connection open;
    what the peer sends is thrown away; its FIN ends the stream (our FIN follows the queued
    data)."""
    name = "chargen"

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0              # position in the 7030-octet cycle

    def pump(self, conn: TcpConnection, now: float) -> bool:
        eof = self._drain(conn)
        if eof and not self.closed:
            self.closed = True
            conn.close(now)
            return False
        if self.closed:
            return False
        n = len(CHARGEN)
        for _ in range(ROUNDS):
            o = self.offset
            chunk = _CHARGEN_RUN[o:o + CHUNK]
            took = conn.send(chunk)
            self.bytes_out += took
            self.offset = (o + took) % n
            if took < len(chunk):
                return eof is None        # the send buffer is full: a Writable event follows
        return True


HANDLERS: dict[str, Callable[[], Handler]] = {"echo": Echo, "discard": Discard, "chargen": Chargen}


# ------------------------------------------------------------------ the host

@dataclass(slots=True)
class Record:
    """One accepted connection, as the services see it."""
    conn: TcpConnection
    service: str
    handler: Handler
    opened: float
    reason: str = ""              # why it ended: "closed", "reset", "timed out", "shutdown"
    ended: float | None = None


@dataclass(slots=True)
class _Bound:
    listener: Listener
    service: str
    factory: Callable[[], Handler]
    accepted: int = 0
    records: dict[int, Record] = field(default_factory=dict)


class ServiceHost:
    """A runner hook serving ``echo``/``discard``/``chargen`` on a ``Stack``; see the module
    docstring. ``on_open(record)`` / ``on_close(record)`` are called on the loop thread."""

    def __init__(self, stack: Stack, *, on_open: Callable[[Record], None] | None = None,
                 on_close: Callable[[Record], None] | None = None) -> None:
        self.stack = stack
        self.on_open = on_open
        self.on_close = on_close
        self.counters: Counter[str] = Counter()
        self.half_open_max = 0
        self.shutting_down = False
        self.now = 0.0                              # the last turn's ``now``
        self._bound: dict[int, _Bound] = {}        # id(listener) -> binding
        self._records: dict[int, Record] = {}       # id(conn) -> record, until it ends
        self._busy: set[int] = set()                # ids of records to pump without an event

    # ---------------------------------------------------------------- setup

    def add(self, service: str, port: int | None = None, addr: str | None = None,
            backlog: int = 128, factory: Callable[[], Handler] | None = None) -> Listener:
        """Listen on ``port`` (default: the service's well-known port) and serve ``service``.
        Raises ``OSError(EADDRINUSE)`` when the port is taken, ``ValueError`` for an unknown
        service."""
        if factory is None:
            if service not in HANDLERS:
                raise ValueError(f"unknown service {service!r}: one of {', '.join(HANDLERS)}")
            factory = HANDLERS[service]
        lst = self.stack.listen(DEFAULT_PORTS.get(service, 0) if port is None else port, addr, backlog)
        self._bound[id(lst)] = _Bound(lst, service, factory)
        return lst

    @property
    def listeners(self) -> list[tuple[str, Listener]]:
        return [(b.service, b.listener) for b in self._bound.values()]

    def service_of(self, conn: TcpConnection) -> str | None:
        r = self._records.get(id(conn))
        return r.service if r is not None else None

    def records(self) -> list[Record]:
        return list(self._records.values())

    # ---------------------------------------------------------------- the hook

    def __call__(self, now: float) -> None:
        stack = self.stack
        self.now = now
        ready = self._busy
        self._busy = set()
        records = self._records
        while (item := stack.next_event()) is not None:
            obj, ev = item
            if isinstance(ev, Acceptable):
                b = self._bound.get(id(obj))
                if b is not None:
                    self._accept(b, now, ready)
            elif id(obj) in records:
                ready.add(id(obj))
                r = records[id(obj)]
                if isinstance(ev, Reset):
                    r.reason = r.reason or ("refused" if ev.refused else "reset")
                elif isinstance(ev, TimedOut):
                    r.reason = r.reason or "timed out"
                elif isinstance(ev, Closed):
                    r.reason = r.reason or "closed"
        for rid in ready:
            r = records.get(rid)
            if r is not None:
                self._pump(r, now)
        half_open = 0
        for b in self._bound.values():
            half_open += len(b.listener.syn_queue)
        if half_open > self.half_open_max:
            self.half_open_max = half_open

    def _accept(self, b: _Bound, now: float, ready: set[int]) -> None:
        while (conn := self.stack.accept(b.listener)) is not None:
            r = Record(conn, b.service, b.factory(), now)
            b.accepted += 1
            self.counters["conn_opened"] += 1
            self.counters[f"{b.service}_opened"] += 1
            self._records[id(conn)] = r
            ready.add(id(conn))
            if self.on_open is not None:
                self.on_open(r)
            if self.shutting_down:
                r.handler.shutdown(conn, now)
                self.stack.touch(conn)

    def _pump(self, r: Record, now: float) -> None:
        conn, h = r.conn, r.handler
        before_in, before_out = h.bytes_in, h.bytes_out
        again = False
        if conn.state is not State.CLOSED:
            try:
                again = h.pump(conn, now)
            except LocalError as e:          # reset or timed out under us: the connection is over
                r.reason = r.reason or ("reset" if isinstance(e, ConnectionResetError) else str(e))
            self.stack.touch(conn)
        self.counters[f"{r.service}_bytes_in"] += h.bytes_in - before_in
        self.counters[f"{r.service}_bytes_out"] += h.bytes_out - before_out
        if conn.state in _DONE_STATES:
            self._end(r, now, "closed")
        elif again:
            self._busy.add(id(conn))

    def _end(self, r: Record, now: float, reason: str) -> None:
        if self._records.pop(id(r.conn), None) is None:
            return
        self._busy.discard(id(r.conn))
        r.reason = r.reason or reason
        r.ended = now
        self.counters["conn_closed"] += 1
        if r.reason in ("reset", "timed out", "refused"):
            self.counters[f"conn_{r.reason.replace(' ', '_')}"] += 1
        if self.on_close is not None:
            self.on_close(r)

    # ---------------------------------------------------------------- going down

    def shutdown(self, now: float) -> None:
        """Stop listening (connections not yet accepted are reset) and close every connection:
        FIN after the data already queued, RST where input is left unread (RFC 9293 §3.10.4)."""
        self.shutting_down = True
        for b in list(self._bound.values()):
            self.stack.close_listener(b.listener, now)
        for r in list(self._records.values()):
            if not r.handler.closed:
                r.reason = r.reason or "shutdown"
            try:
                r.handler.shutdown(r.conn, now)
            except LocalError:
                pass
            self.stack.touch(r.conn)

    def finished(self) -> bool:
        """After ``shutdown()``: every connection's FIN is acknowledged (FIN-WAIT-2, TIME-WAIT)
        or the connection is gone. Ends the records that got there."""
        done = True
        for r in list(self._records.values()):
            st = r.conn.state
            if st in _DONE_STATES or st is State.FIN_WAIT_2:
                self._end(r, self.now, "closed")
            else:
                done = False
        return done

    def abort_all(self, now: float) -> None:
        """Reset what is still open (the grace period is over) and end every record."""
        for r in list(self._records.values()):
            if r.conn.state not in _DONE_STATES and r.conn.state is not State.FIN_WAIT_2:
                r.conn.abort(now)
                self.stack.touch(r.conn)
                r.reason = "aborted at shutdown"
            self._end(r, now, "shutdown")


__all__ = ["ServiceHost", "Record", "Handler", "Echo", "Discard", "Chargen", "HANDLERS", "DEFAULT_PORTS",
           "CHARGEN", "chargen_cycle"]
