"""The bench every scenario runs on: two synack hosts on the simulated network, a capture at the
client's side, one event log for both stacks, and small "applications" scripted in a few lines.

::

    lab = Lab(out_dir, seed=1)
    srv = lab.listen(80)                       # the server's accepted sockets appear in srv.accepted
    c = lab.connect(80)                        # a Sock: send/read/shutdown/close/abort, all touching
    lab.run_until(lambda: c.established)       # virtual time; raises if it cannot happen
    lab.at(0.5, c.send, b"hello")              # an application action at a given instant

Everything is a function of the seed: the network's, and the hosts' fixed secrets (ISNs,
ports). Assertions read the log records kept in memory (``lab.records``: the same dataclasses
events.jsonl holds) and the sockets, and fail with ``ScenarioFailed`` (never ``assert``, which
``python -O`` removes).
"""

from __future__ import annotations

import heapq
import itertools
from pathlib import Path
from typing import Any, Callable, Iterable

from synack.link.pcap import PcapLink, PcapWriter
from synack.log.jsonl import JsonlLog
from synack.sim.network import Network
from synack.stack.host import Listener, Stack, StackConfig
from synack.tcp import events as ev
from synack.tcp.config import TcpConfig
from synack.tcp.connection import TcpConnection
from synack.tcp.states import State
from synack.wire.errors import WireError
from synack.wire.packet import parse_packet, tcp_in
from synack.wire.tcp import Flags, TcpSegment

CLIENT, SERVER = "192.0.2.1", "192.0.2.2"
CLIENT_SECRET, SERVER_SECRET = b"scenario-client!", b"scenario-server!"


class ScenarioFailed(AssertionError):
    """A scenario's own check failed: the message says what was expected and what happened."""


def check(ok: object, message: str) -> None:
    """Fail the scenario with ``message`` unless ``ok``."""
    if not ok:
        raise ScenarioFailed(message)


# --- packet predicates for scripted faults -----------------------------------------------------

_LETTERS = {"S": Flags.SYN, "A": Flags.ACK, ".": Flags.ACK, "F": Flags.FIN, "P": Flags.PSH, "R": Flags.RST}


def segment_of(packet: bytes) -> TcpSegment | None:
    """The TCP segment in an IP packet, or None (not TCP, malformed)."""
    try:
        return tcp_in(parse_packet(packet, verify=False), verify=False)
    except WireError:
        return None


def flags_are(letters: str, *, payload: bool | None = None) -> Callable[[bytes], bool]:
    """A packet predicate: the TCP flags are exactly ``letters`` ("S", "SA", "FA", "A"; PSH is
    ignored unless named) and, if ``payload`` is given, the segment carries data or not."""
    want = Flags(0)
    for ch in letters:
        want |= _LETTERS[ch]
    mask = ~Flags.PSH if "P" not in letters else ~Flags(0)

    def match(packet: bytes) -> bool:
        seg = segment_of(packet)
        if seg is None or (int(seg.flags) & int(mask)) != int(want):
            return False
        return payload is None or bool(seg.payload) == payload
    return match


def has_data(packet: bytes) -> bool:
    seg = segment_of(packet)
    return seg is not None and bool(seg.payload)


# --- links that hold or copy one chosen packet (deterministic reordering, duplication) ---------

class Scripted:
    """A ``Link`` wrapper (outermost, next to the node) acting on the ``n``-th packet that
    ``match`` accepts, in ``direction`` "tx" (sent by this node) or "rx" (arriving at it): the
    packet is held ``hold`` seconds (packets behind it overtake it: out of order), or with
    ``copies=2`` passed on and sent again ``hold`` seconds later (a duplicate)."""

    def __init__(self, inner, *, match: Callable[[bytes], bool], n: int = 1, hold: float = 0.0,
                 copies: int = 1, direction: str = "tx") -> None:
        if direction not in ("tx", "rx"):
            raise ValueError(f"direction is 'tx' or 'rx', not {direction!r}")
        self.inner, self.match, self.n, self.hold, self.copies = inner, match, n, hold, copies
        self.direction = direction
        self.seen = 0
        self.applied = 0
        self._held: list[tuple[float, int, bytes]] = []
        self._seq = itertools.count()

    def _take(self, packet: bytes, now: float) -> list[bytes]:
        """What passes now; the held copies go to ``_held``."""
        if not self.match(packet):
            return [packet]
        self.seen += 1
        if self.seen != self.n:
            return [packet]
        self.applied += 1
        for _ in range(self.copies if self.copies == 1 else self.copies - 1):
            heapq.heappush(self._held, (now + self.hold, next(self._seq), packet))
        return [] if self.copies == 1 else [packet]

    def _due(self, now: float) -> list[bytes]:
        out = []
        while self._held and self._held[0][0] <= now:
            out.append(heapq.heappop(self._held)[2])
        return out

    def transmit(self, packet: bytes, now: float) -> None:
        if self.direction == "tx":
            for p in self._due(now) + self._take(packet, now):
                self.inner.transmit(p, now)
        else:
            self.inner.transmit(packet, now)

    def receive(self, now: float) -> list[bytes]:
        if self.direction == "tx":
            for p in self._due(now):
                self.inner.transmit(p, now)
            return self.inner.receive(now)
        fresh: list[bytes] = []
        for p in self.inner.receive(now):
            fresh += self._take(p, now)
        return self._due(now) + fresh

    def next_timer(self) -> float | None:
        t = self.inner.next_timer()
        if self._held and (t is None or self._held[0][0] < t):
            return self._held[0][0]
        return t


# --- sockets: a connection plus the stack it lives on ------------------------------------------

class Sock:
    """An application's handle on one connection. Every call that changes the connection
    touches its stack (``Stack.touch``), so what it made sendable leaves in the same instant.

    ``auto_read``: the lab drains ``receive()`` into ``received`` after every round (an
    application that reads as soon as it can); set it False to let the window fill up.
    ``outbox``: bytes still to write; the lab feeds them in as the send buffer takes them."""

    def __init__(self, lab: "Lab", stack: Stack, conn: TcpConnection, *, auto_read: bool = True) -> None:
        self.lab, self.stack, self.conn = lab, stack, conn
        self.auto_read = auto_read
        self.received = bytearray()
        self.eof = False
        self.outbox = bytearray()
        self.sent = 0
        self.error: Exception | None = None
        self._shutdown_after_outbox = False

    @property
    def state(self) -> State:
        return self.conn.state

    @property
    def established(self) -> bool:
        return self.conn.state is State.ESTABLISHED

    @property
    def name(self) -> str:
        return str(self.conn.id)

    def send(self, data: bytes) -> None:
        """Queue ``data``: written now as far as the send buffer allows, the rest later."""
        self.outbox.extend(data)
        self._feed()

    def _feed(self) -> None:
        if self.outbox and self.conn.state not in (State.CLOSED, State.LISTEN):
            n = self.conn.send(bytes(self.outbox))
            if n:
                del self.outbox[:n]
                self.sent += n
                self.stack.touch(self.conn)
        if self._shutdown_after_outbox and not self.outbox and self.conn.state.synchronized:
            self._shutdown_after_outbox = False
            self.shutdown()

    def read(self) -> bytes:
        """Everything readable now (b"" if nothing); notes end of stream."""
        got = bytearray()
        if self.error is not None and self.conn.state is State.CLOSED:
            return b""
        try:
            while (d := self.conn.receive(65536)):
                got.extend(d)
        except OSError as e:       # reset, timed out: kept for the checks
            self.error = self.error or e
        if self.conn.at_eof:
            self.eof = True
        if got:
            self.received.extend(got)
            self.stack.touch(self.conn)
        return bytes(got)

    def shutdown(self) -> None:
        """Half close (SHUT_WR): FIN after the queued data, once the outbox is written and the
        handshake is done (a CLOSE in SYN-SENT would delete the TCB, RFC 9293 §3.10.4)."""
        if self.outbox or not self.conn.state.synchronized:
            self._shutdown_after_outbox = True
            return
        self.conn.shutdown_write(self.lab.now)
        self.stack.touch(self.conn)

    def close(self) -> None:
        self.conn.close(self.lab.now)
        self.stack.touch(self.conn)

    def abort(self) -> None:
        self.conn.abort(self.lab.now)
        self.stack.touch(self.conn)

    def pump(self) -> None:
        if self.auto_read:
            self.read()
        self._feed()


class Server:
    """A listener and the sockets accepted from it (``accepted``), each ``on_accept``'ed."""

    def __init__(self, lab: "Lab", stack: Stack, listener: Listener, on_accept, auto_read: bool) -> None:
        self.lab, self.stack, self.listener = lab, stack, listener
        self.on_accept = on_accept
        self.auto_read = auto_read
        self.accepted: list[Sock] = []

    @property
    def first(self) -> Sock | None:
        return self.accepted[0] if self.accepted else None

    def pump(self) -> None:
        while (conn := self.stack.accept(self.listener)) is not None:
            s = Sock(self.lab, self.stack, conn, auto_read=self.auto_read)
            self.accepted.append(s)
            self.lab.socks.append(s)
            if self.on_accept is not None:
                self.on_accept(s)


# --- the lab -----------------------------------------------------------------------------------

class Lab:
    """Two hosts (``client`` 192.0.2.1, ``server`` 192.0.2.2) joined by one simulated link.

    ``out``: the scenario's directory (capture.pcap, events.jsonl). ``delay`` (one way, s),
    ``bandwidth`` (bit/s), ``queue_limit`` (packets): the link. ``client_config`` /
    ``server_config``: each host's ``TcpConfig``; ``server_stack``: its ``StackConfig``.
    ``client_node(client)``: the node on the client's end of the link, built around the client
    host (e.g. the client plus an attacker sharing its link). ``wrap``: extra link wrappers per
    end, applied inside the capture (``{"server": lambda link: Scripted(link, ...)}``).
    """

    def __init__(self, out: Path, *, seed: int, delay: float = 0.010, bandwidth: float | None = 10e6,
                 queue_limit: int | None = None, client_config: TcpConfig | None = None,
                 server_config: TcpConfig | None = None, server_stack: StackConfig | None = None,
                 client_node: Callable[[Stack], Any] | None = None,
                 wrap: dict[str, Callable] | None = None, meta: dict | None = None) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.records: list[object] = []
        self._jsonl = JsonlLog(self.out / "events.jsonl", meta={"seed": seed, **(meta or {})})
        self._pcap = PcapWriter(self.out / "capture.pcap")
        self.net = Network(seed, log=self.log)
        self.client = Stack([CLIENT + "/24"], secret=CLIENT_SECRET, config=client_config or TcpConfig(),
                            log=self.log)
        self.server = Stack([SERVER + "/24"], secret=SERVER_SECRET, config=server_config or TcpConfig(),
                            stack_config=server_stack or StackConfig(), log=self.log)
        self.net.add_node("client", client_node(self.client) if client_node is not None else self.client)
        self.net.add_node("server", self.server)
        extra = wrap or {}

        def wrapper(name: str, link):
            if name in extra:
                link = extra[name](link)
            return PcapLink(link, self._pcap, vantage="stack") if name == "client" else link
        self.link = self.net.connect("client", "server", delay=delay, bandwidth=bandwidth,
                                     queue_limit=queue_limit, wrap=wrapper)
        self.socks: list[Sock] = []
        self.servers: list[Server] = []
        self.app_events: list[tuple[str, object]] = []   # (socket name, event) in order
        self.draw: str | None = None     # which connection the pictures show: "a:p>b:q" (default: first)
        self.figures: dict[str, Callable[[Path], None]] = {}   # extra pictures: file name -> writer
        self.notes: list[str] = []       # what the run measured, for the summary line
        self.hooks: list[Callable[[], None]] = []   # called after every round, before predicates
        self._closed = False

    # --- plumbing ---

    def log(self, record: object) -> None:
        self.records.append(record)
        self._jsonl(record)

    @property
    def now(self) -> float:
        return self.net.now

    def faults(self, name: str):
        """The fault wrapper on ``name``'s transmissions ("client" or "server")."""
        return self.net.faults_of(name)

    def close_files(self) -> None:
        if not self._closed:
            self._closed = True
            self._pcap.close()
            self._jsonl.close()

    # --- applications ---

    def listen(self, port: int = 80, *, on_accept: Callable[[Sock], None] | None = None,
               auto_read: bool = True, backlog: int = 128) -> Server:
        lst = self.server.listen(port, backlog=backlog)
        srv = Server(self, self.server, lst, on_accept, auto_read)
        self.servers.append(srv)
        return srv

    def connect(self, port: int = 80, *, stack: Stack | None = None, to: str = SERVER,
                local: tuple[str, int] | None = None, auto_read: bool = True) -> Sock:
        st = stack or self.client
        conn = st.connect((to, port), self.now, local=local)
        s = Sock(self, st, conn, auto_read=auto_read)
        self.socks.append(s)
        return s

    def at(self, t: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` at virtual time ``t`` (absolute)."""
        self.net.call_at(t, fn, *args)

    def pump(self) -> None:
        """What the applications do after every round: accept, read, write, collect events."""
        for srv in self.servers:
            srv.pump()
        for s in list(self.socks):
            s.pump()
        for stack in {id(n): n for n in (self.client, self.server)}.values():
            while (pair := stack.next_event()) is not None:
                who, e = pair
                self.app_events.append((str(getattr(who, "id", who)), e))
        for h in self.hooks:
            h()

    def run_until(self, predicate: Callable[[], object], limit: float = 120.0, what: str | None = None) -> None:
        """Run until ``predicate()`` holds (the applications act after every round)."""
        def done() -> bool:
            self.pump()
            return bool(predicate())
        self.net.run_until(done, limit=limit, what=what)

    def run_for(self, duration: float) -> None:
        """Let ``duration`` virtual seconds pass, the applications acting after every round."""
        end = self.now + duration
        self.net.call_at(end, lambda: None)          # something is always due by then: no Stalled
        self.run_until(lambda: self.now >= end, limit=duration, what=f"run_for({duration})")

    # --- reading the log ---

    def of(self, kind: type, sock: Sock | None = None) -> list:
        """Records of type ``kind`` (from synack.tcp.events), of ``sock``'s connection if given."""
        cid = sock.conn.id if sock is not None else None
        return [r for r in self.records if isinstance(r, kind) and (cid is None or getattr(r, "conn", None) == cid)]

    def sent(self, sock: Sock, *, flags: str | None = None, data: bool | None = None,
             retransmit: bool | None = None) -> list[ev.SegmentOut]:
        """``sock``'s SegmentOut records, filtered: ``flags`` exactly (PSH ignored), ``data``,
        ``retransmit``."""
        out = []
        for r in self.of(ev.SegmentOut, sock):
            if flags is not None and not _flags_match(r.seg.flags, flags):
                continue
            if data is not None and bool(r.seg.payload) != data:
                continue
            if retransmit is not None and r.retransmit != retransmit:
                continue
            out.append(r)
        return out

    def arrived(self, sock: Sock, *, flags: str | None = None, data: bool | None = None) -> list[ev.SegmentIn]:
        return [r for r in self.of(ev.SegmentIn, sock)
                if (flags is None or _flags_match(r.seg.flags, flags))
                and (data is None or bool(r.seg.payload) == data)]

    def states(self, sock: Sock) -> list[str]:
        """The states ``sock``'s connection went through, in order (from StateChanged)."""
        recs = self.of(ev.StateChanged, sock)
        return ([str(recs[0].old)] if recs else []) + [str(r.new) for r in recs]

    def state_at(self, sock: Sock, state: State) -> float:
        """When ``sock`` entered ``state`` (the first time); fails the scenario if it never did."""
        for r in self.of(ev.StateChanged, sock):
            if r.new is state:
                return r.t
        raise ScenarioFailed(f"{sock.name} never entered {state} (went {' → '.join(self.states(sock))})")

    def events_of(self, sock: Sock, kind: type) -> list:
        return [e for who, e in self.app_events if who == sock.name and isinstance(e, kind)]


def _flags_match(f: Flags, letters: str) -> bool:
    want = Flags(0)
    for ch in letters:
        want |= _LETTERS[ch]
    mask = ~Flags.PSH if "P" not in letters else ~Flags(0)
    return (int(f) & int(mask)) == int(want)


def pyplot():
    """matplotlib's pyplot on the Agg backend (imported only when a figure is drawn)."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def pattern(n: int) -> bytes:
    """``n`` recognisable bytes (so a reordering or duplicate bug shows as a mismatch)."""
    block = bytes(range(32, 127))
    return (block * (n // len(block) + 1))[:n]


def gaps(times: Iterable[float]) -> list[float]:
    ts = list(times)
    return [round(b - a, 6) for a, b in zip(ts, ts[1:])]


__all__ = ["Lab", "Sock", "Server", "Scripted", "ScenarioFailed", "check", "flags_are", "has_data",
           "segment_of", "pattern", "gaps", "pyplot", "CLIENT", "SERVER"]
