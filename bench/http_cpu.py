"""CPU per close-mode HTTP connection on synack, deterministic and in one process.

    PYTHONPATH=src .venv/bin/python bench/http_cpu.py [-n 2000] [--concurrency 1] [--reps 5]
    PYTHONPATH=src .venv/bin/python bench/http_cpu.py --callgrind [-n 400]
    PYTHONPATH=src .venv/bin/python bench/http_cpu.py --profile out.prof

The server is what ``bench/http.py`` runs in its "synack" row: ``HttpServer(StaticFiles(dir))``
on ``AsyncStack`` over a ``Stack`` (no log, no pcap, ``tune_gc()``), a 1 KiB file. Instead of a
TUN device its link is an in-memory queue, and instead of wrk a scripted client plays what
Linux and wrk send for one ``Connection: close`` request: SYN (MSS, SACK-permitted,
timestamps, window scale), the handshake's ACK, the request, the ACK of the response (which
carries the server's FIN), then the client's FIN. Each of those is one wake-up of the adapter
(``AsyncStack._on_readable``), after which the event loop runs until nothing is ready.

The loop's clock is virtual (it moves 50 us per step), and the wall clock the server reads
(``time.time``: the Date header, the file cache) follows it from a fixed whole second, so the
ISNs, timestamps and every segment are the same from run to run, and nothing waits on a real timer. That makes two
things possible:

* The client's work is taken out of the figure: a first pass *records* the client's packets
  (built with ``synack.wire`` from the server's answers), then each timed pass *replays* them
  into a fresh stack and server at the same virtual times; what the replay times is the
  server: the adapter, the stack, h11, the HTTP server, the file read. Each replay checks
  that the server sent the same segments (TCP header fields and lengths; the Date header's
  bytes may differ) as in the record pass.
* ``--callgrind`` counts instructions (valgrind), repeatable on a noisy machine: it runs this
  script under callgrind twice, recording only and recording plus one replay, and prints the
  difference divided by the connections: the server's instructions per connection.

Packets go in with their checksums, as plain ``bytes``: the stack verifies them, which stands
for the TUN link completing the kernel's partial checksums in the real benchmark.
``--concurrency K`` runs K connections in lockstep (each step of K connections is one wake-up,
as when wrk's connections arrive together). Not a test; numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import heapq
import os
import re
import selectors
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from synack.api.aio import AsyncStack
from synack.http.server import HttpServer, ServerConfig
from synack.http.static import StaticFiles
from synack.http.workers import tune_gc
from synack.stack.host import Stack
from synack.wire.packet import build_tcp_packet, parse_packet, tcp_in
from synack.wire.tcp import Flags, Mss, Nop, SackPermitted, TcpSegment, Timestamps, WindowScale

CLIENT, SERVER = "192.0.2.1", "192.0.2.2"
STEP = 50e-6                      # virtual seconds between the client's steps
T0 = 1000.0
# The wall clock the server reads (the Date header, the static-file cache's age check) during a
# pass: a whole second ten seconds from now, moved by the virtual clock. Real time would make
# the count depend on how fast the machine runs (a Date is formatted again whenever a second
# turns; a file younger than RACY is read afresh), so two runs would not count the same.
WALL0 = float(int(time.time()) + 10)


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is ``self.vnow``: moved only by the client."""

    def __init__(self) -> None:
        super().__init__(selectors.EpollSelector())
        self.vnow = T0

    def time(self) -> float:
        return self.vnow


class QueueLink:
    """The server's link: ``receive`` drains what the client queued, ``transmit`` keeps what the
    server sent. ``fileno()`` is a pipe nobody writes: the client calls the adapter's
    ``_on_readable`` itself, as the loop would when a TUN device becomes readable."""

    mtu = 1500

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        self.inbox: deque[bytes] = deque()
        self.sent: list[bytes] = []

    def fileno(self) -> int:
        return self._r

    def receive(self, now: float) -> list[bytes]:
        out = list(self.inbox)
        self.inbox.clear()
        return out

    def transmit(self, packet: bytes, now: float) -> None:
        self.sent.append(packet)

    def next_timer(self) -> float | None:
        return None

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)


def _summary(packets: list[bytes]) -> list[tuple]:
    """What a replay must reproduce of the server's packets: TCP header fields and lengths."""
    out = []
    for p in packets:
        seg = tcp_in(parse_packet(p), verify=False)
        out.append((seg.dport, seg.seq, seg.ack, int(seg.flags), seg.window, len(seg.payload)))
    return out


class Client:
    """The scripted Linux/wrk client, recording the packets it sends, step by step."""

    REQ = b"GET /file.bin HTTP/1.1\r\nHost: 192.0.2.2\r\nConnection: close\r\n\r\n"

    def __init__(self, sport: int, isn: int) -> None:
        self.sport, self.iss = sport, isn
        self.ts = 0x10000000 + sport * 1000
        self.rcv_nxt = 0
        self.tsecr = 0
        self.snd_nxt = isn

    def _pkt(self, flags: Flags, opts: tuple = (), data: bytes = b"", window: int = 502) -> bytes:
        self.ts = (self.ts + 1) & 0xFFFFFFFF
        if not opts:
            opts = (Nop(), Nop(), Timestamps(self.ts, self.tsecr))
        seg = TcpSegment(self.sport, 80, self.snd_nxt, self.rcv_nxt if flags & Flags.ACK else 0, flags,
                         window, 0, opts, data)
        self.snd_nxt = (self.snd_nxt + seg.seg_len) & 0xFFFFFFFF
        return build_tcp_packet(CLIENT, SERVER, seg)

    def heard(self, seg: TcpSegment) -> None:
        end = (seg.seq + seg.seg_len) & 0xFFFFFFFF
        if seg.seg_len and (end - self.rcv_nxt) % 2**32 < 2**31 or seg.flags & Flags.SYN:
            self.rcv_nxt = end
        ts = seg.option(Timestamps)
        if ts is not None:
            self.tsecr = ts.val

    def step(self, i: int) -> list[bytes]:
        """The packets of step ``i`` (0..4)."""
        if i == 0:
            opts = (Mss(1460), SackPermitted(), Timestamps(self.ts + 1, 0), Nop(), WindowScale(7))
            return [self._pkt(Flags.SYN, opts, window=64240)]
        if i == 1:
            return [self._pkt(Flags.ACK)]
        if i == 2:
            return [self._pkt(Flags.ACK | Flags.PSH, data=self.REQ)]
        if i == 3:
            return [self._pkt(Flags.ACK)]
        return [self._pkt(Flags.ACK | Flags.FIN)]


STEPS = 5
# What the server must have sent after each step, per connection (the flags, in order).
EXPECT = {0: ["SA"], 1: [], 2: ["FPA"], 3: [], 4: ["A"]}


def _flags(seg: TcpSegment) -> str:
    f = seg.flags
    return "".join(c for c, b in (("S", Flags.SYN), ("F", Flags.FIN), ("R", Flags.RST), ("P", Flags.PSH),
                                  ("A", Flags.ACK)) if f & b)


def _settle(loop: VirtualLoop) -> None:
    """Run the loop until it has nothing ready and no timer due at the (frozen) virtual time:
    one ``_run_once`` per iteration, as ``run_forever`` would, with no task of the client's in
    between (what runs is the server's)."""
    ready, sched = loop._ready, loop._scheduled                  # noqa: SLF001 - a bench's look inside
    while True:
        while sched and sched[0]._cancelled:                     # noqa: SLF001 - as _run_once does,
            heapq.heappop(sched)                                 # so that its select() never waits
            loop._timer_cancelled_count -= 1                     # noqa: SLF001
        if not ready and not (sched and sched[0]._when <= loop.vnow):   # noqa: SLF001
            return
        loop._run_once()                                         # noqa: SLF001


def run(root: Path, n: int, k: int, script: list | None) -> tuple[float, list, list]:
    """Serve ``n`` connections, ``k`` at a time. ``script`` None: record (the client builds its
    packets from the server's answers); else replay it. Returns (seconds spent serving, the
    script, the server's packets summarised per step). The seconds are this process's CPU time."""
    loop = VirtualLoop()
    asyncio.set_event_loop(loop)
    link = QueueLink()
    record = script is None
    if record:
        script = []
    seen: list = []
    elapsed = 0.0
    real_time, time.time = time.time, lambda: WALL0 + (loop.vnow - T0)   # see WALL0

    async def start() -> tuple:
        stack = Stack([f"{SERVER}/24"], secret=b"bench-http")
        astack = AsyncStack(stack, link)
        server = HttpServer(StaticFiles(root), ServerConfig(idle_timeout=30.0))
        await server.listen_synack(astack, None, 80, backlog=1024)
        return astack, server

    def main() -> None:
        nonlocal elapsed
        astack, server = loop.run_until_complete(start())
        asyncio.events._set_running_loop(loop)                   # noqa: SLF001 - _settle runs it
        _settle(loop)
        tune_gc()
        pc = time.process_time          # CPU time: on a busy machine wall time counts others' turns
        idx = 0
        for first in range(0, n, k):
            group = range(first, min(first + k, n))
            clients = {}
            if record:
                clients = {i: Client(10000 + i % 50000, (i * 2654435761 + 12345) & 0xFFFFFFFF) for i in group}
            for s in range(STEPS):
                if record:
                    pkts = [p for i in group for p in clients[i].step(s)]
                    script.append(pkts)
                else:
                    pkts = script[idx]
                idx += 1
                loop.vnow += STEP
                t = pc()
                link.inbox.extend(pkts)
                astack._on_readable()                        # noqa: SLF001 - as the fd being readable
                _settle(loop)
                elapsed += pc() - t
                out, link.sent = link.sent, []
                if record:
                    by_port: dict[int, list[str]] = {}
                    for p in out:
                        seg = tcp_in(parse_packet(p))
                        for i in group:
                            if clients[i].sport == seg.dport:
                                clients[i].heard(seg)
                        by_port.setdefault(seg.dport, []).append(_flags(seg))
                    for i in group:
                        got = by_port.get(clients[i].sport, [])
                        if got != EXPECT[s]:
                            raise AssertionError(f"connection {i}, step {s}: server sent {got}, expected {EXPECT[s]}")
                seen.append(_summary(out) if record or idx <= 25 else len(out))
        asyncio.events._set_running_loop(None)                   # noqa: SLF001
        for srv in server.listeners:
            srv.close()
        astack.close()

    try:
        main()
    finally:
        time.time = real_time
        asyncio.events._set_running_loop(None)                   # noqa: SLF001
        loop.close()
        link.close()
        asyncio.set_event_loop(None)
        gc.unfreeze()
        gc.collect()
    return elapsed, script, seen


def _check(ref: list, got: list) -> None:
    for j, (a, b) in enumerate(zip(ref, got)):
        if isinstance(b, int):
            if len(a) != b:
                raise AssertionError(f"replay step {j}: {b} packets, recorded {len(a)}")
        elif a != b:
            raise AssertionError(f"replay step {j}: server sent {b}, recorded {a}")


def make_root() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="synack-http-cpu-"))
    (tmp / "file.bin").write_bytes(bytes(range(256)) * 4)
    return tmp


def callgrind(n: int, k: int) -> int:
    """Run this script once under callgrind: collect only inside the two replays (of n/2 and of
    n connections, each inside a ``functools.reduce`` call, the only one in the process), one
    dump after each; the difference of the two counts divided by n/2 leaves out what a replay
    costs once (a new loop, stack and server) and the client's record pass."""
    with tempfile.TemporaryDirectory() as d:
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/cg.out",
                "--toggle-collect=functools_reduce", "--dump-after=functools_reduce", sys.executable,
                __file__, "-n", str(n), "--concurrency", str(k), "--replay-twice"]
        env = dict(os.environ)
        env.setdefault("PYTHONHASHSEED", "0")       # str hashes, so dict and set orders, too
        r = subprocess.run(argv, capture_output=True, text=True, env=env)
        counts = []
        for f in sorted(Path(d).glob("cg.out.*"), key=lambda f: int(f.name.rsplit(".", 1)[1])):
            m = re.search(r"^(?:summary|totals): (\d+)", f.read_text(), re.M)
            if m:
                counts.append(int(m.group(1)))
    if r.returncode or len(counts) < 2:
        print(r.stdout, r.stderr, counts, file=sys.stderr)
        return 1
    half = _half(n, k)
    per = (counts[1] - counts[0]) / (n - half)
    print(f"callgrind: concurrency {k}: {per / 1e6:.3f} M instructions per connection, server side "
          f"(replays of {n} and {half} connections: {counts[1]:,} and {counts[0]:,})")
    return 0


def _half(n: int, k: int) -> int:
    return (n // 2) // k * k


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="connections per pass (default 2000)")
    ap.add_argument("--concurrency", type=int, default=1, help="connections in lockstep (default 1)")
    ap.add_argument("--reps", type=int, default=5, help="timed replays (default 5)")
    ap.add_argument("--callgrind", action="store_true", help="count instructions with valgrind")
    ap.add_argument("--profile", metavar="FILE", help="cProfile one replay into FILE")
    ap.add_argument("--replay-twice", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n, k = args.n, args.concurrency
    if args.callgrind:
        return callgrind(n, k)
    root = make_root()
    t_rec, script, ref = run(root, n, k, None)
    if args.replay_twice:                   # under callgrind: see callgrind()
        half = _half(n, k)
        functools.reduce(lambda a, b: run(root, half, k, script[:half // k * STEPS]), [0, 1])
        functools.reduce(lambda a, b: run(root, n, k, script), [0, 1])
        return 0
    if args.profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
        run(root, n, k, script)
        prof.disable()
        prof.dump_stats(args.profile)
        print(f"profile of one replay of {n} connections in {args.profile}")
        return 0
    times = []
    for _ in range(args.reps):
        t, _, seen = run(root, n, k, script)
        _check(ref, seen)
        times.append(t / n * 1e6)
    times.sort()
    print(f"{n} close-mode connections, concurrency {k}, {args.reps} replays: server "
          f"{times[0]:.1f} us/conn (min), {times[len(times) // 2]:.1f} (median); "
          f"record pass with the client {t_rec / n * 1e6:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
