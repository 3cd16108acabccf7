"""HTTP on synack in N processes: one worker per queue of a multi-queue TUN device.

One Python process runs one synack ``Stack`` on one CPU (the GIL). To use more, shard the flows
the way kernels do with RSS or SO_REUSEPORT: ``TunLink(..., queues=N)`` makes the device with N
queues, Linux sends every packet of a TCP flow to the same queue (``synack.link.tun``), and
``HttpWorkers`` forks one process per queue, each with its own ``Stack`` (same addresses, same
secret, so a SYN cookie or an ISN made by one worker would pass in another), its own asyncio loop
(``AsyncStack``) and its own ``HttpServer`` listening on the same port::

    link = TunLink("synack0", netns=ns, addresses=["192.0.2.1/24"], queues=2)
    with HttpWorkers(StaticFiles(root), link.queues, ["192.0.2.2/24"], 80) as workers:
        ...                                    # serve; workers.pids, workers.stop() -> stats

Life cycle. ``start()`` forks the workers (``os.fork``: the app object is inherited as it is, so
any app works, nothing is pickled) and waits until each listens or fails; a failure stops the
others and raises ``WorkerError`` with the worker's traceback. From then on the queues belong to
the workers: the parent closes its copies of the queue fds, so a worker that dies takes its queue
with it (the kernel then spreads flows over the queues left) and the device goes away with the
last worker. ``stop()`` (also on leaving the ``with`` block, on error and on Ctrl-C) sends SIGTERM,
on which a worker stops accepting, gives requests in progress ``grace`` seconds, lets the
connections close and exits; a worker still alive after ``timeout`` is killed with SIGKILL, and
every worker is reaped. Workers ignore SIGINT (the parent stops them) and get SIGTERM if the
parent dies (PR_SET_PDEATHSIG), so none is left behind.

Limits: call ``start()`` from the main thread while it runs no event loop, best before the
process starts other threads (a child has only the forking thread, and asyncio's SIGTERM
handler needs the main thread; PR_SET_PDEATHSIG fires when the forking *thread* ends). Each worker sees only its own connections
(``HttpServer.stats``, connection lists); ``stop()`` returns each worker's statistics. A flow
stays on its queue as long as Linux's tun keeps it there (per-flow table, else a symmetric hash);
the single-process path (``AsyncStack`` on a one-queue ``TunLink``) is unchanged.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import os
import select
import signal
import time
import traceback
from typing import Any, Callable, Sequence

from synack.api.aio import AsyncStack
from synack.http.server import HttpServer, ServerConfig
from synack.link.tun import TunQueue
from synack.stack.host import Stack, StackConfig
from synack.tcp.config import TcpConfig

PR_SET_PDEATHSIG = 1


class WorkerError(RuntimeError):
    """A worker failed to start (its traceback is in the message) or died before it was ready."""


class HttpWorkers:
    """N forked HTTP servers on synack, one per TUN queue; see the module docstring.

    ``app`` and ``config`` are as for ``HttpServer``; ``addresses``, ``secret``, ``tcp_config``
    and ``stack_config`` as for ``Stack``; ``host``/``port``/``backlog`` as for ``listen_synack``.
    ``sites``, if given, replaces ``app``/``port``: one server per ``(port, make_app)``, where
    ``make_app(stack)`` is called in each worker with its own ``Stack``.
    """

    def __init__(self, app: Any, queues: Sequence[TunQueue], addresses: Sequence[str], port: int = 80, *,
                 host: str | None = None, config: ServerConfig | None = None, secret: bytes = b"synack-workers",
                 tcp_config: TcpConfig | None = None, stack_config: StackConfig | None = None,
                 backlog: int = 1024, grace: float = 1.0,
                 sites: Sequence[tuple[int, Callable[[Stack], Any]]] = ()) -> None:
        if not queues:
            raise ValueError("HttpWorkers needs at least one TUN queue")
        # (port, make_app): make_app(stack) runs in each worker, e.g. to attach a TraceStore
        self.sites = list(sites) if sites else [(port, lambda stack: app)]
        self.queues = list(queues)
        self.addresses = list(addresses)
        self.host = host
        self.config = config
        self.secret = secret
        self.tcp_config = tcp_config
        self.stack_config = stack_config
        self.backlog = backlog
        self.grace = grace
        self.pids: list[int] = []
        self.stats: list[dict] = []
        self._pipes: list[int] = []           # read ends, one per worker: "R" when ready, then stats
        self._reaped: set[int] = set()        # pids exited() reaped: never signalled again

    # ------------------------------------------------------------------ parent

    def start(self, timeout: float = 10.0) -> "HttpWorkers":
        """Fork one worker per queue; return when all listen. Raises ``WorkerError`` (after
        stopping the others) if one fails."""
        if self.pids:
            raise RuntimeError("HttpWorkers already started")
        parent = os.getpid()
        try:
            for i, q in enumerate(self.queues):
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:                                   # the worker; never returns
                    os.close(r)
                    _child(self, i, q, w, parent)
                os.close(w)
                self.pids.append(pid)
                self._pipes.append(r)
            for q in self.queues:                              # the workers own the queues now
                TunQueue.close(q)
            deadline = time.monotonic() + timeout
            for i, r in enumerate(self._pipes):
                line = _read_line(r, deadline)
                if line != "R":
                    raise WorkerError(f"worker {i} (pid {self.pids[i]}) did not start: "
                                      + (line[1:] if line.startswith("E") else line or "it exited"))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> list[dict]:
        """SIGTERM every worker, SIGKILL those alive after ``timeout`` seconds, reap them all.
        Returns the statistics of the workers that stopped cleanly (also in ``self.stats``)."""
        live = [pid for pid in self.pids if pid not in self._reaped]
        for pid in live:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        stats = []
        for r in self._pipes:
            line = _read_line(r, deadline)
            if line.startswith("R"):
                line = _read_line(r, deadline)
            if line.startswith("S"):
                stats.append(json.loads(line[1:]))
        for pid in live:
            if not _reap(pid, deadline):
                _signal(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        for r in self._pipes:
            os.close(r)
        self.pids, self._pipes, self._reaped = [], [], set()
        self.stats = stats
        return stats

    def exited(self) -> list[int]:
        """Workers that have exited by themselves (reaped here; ``stop()`` skips them)."""
        out = []
        for pid in self.pids:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue                                       # reaped before
            if done:
                out.append(pid)
                self._reaped.add(pid)
        return out

    def __enter__(self) -> "HttpWorkers":
        return self.start() if not self.pids else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ---------------------------------------------------------------------- worker

def _child(w: HttpWorkers, index: int, queue: TunQueue, wfd: int, parent: int) -> None:
    """The worker process: serve on ``queue`` until SIGTERM, report, exit (never returns)."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)           # Ctrl-C: the parent stops us
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):                      # pragma: no cover: not Linux
            pass
        if os.getppid() != parent:                             # the parent died before prctl
            os._exit(1)
        for r in w._pipes:                                     # earlier workers' pipes
            os.close(r)
        for q in w.queues:
            if q is not queue:
                TunQueue.close(q)                              # only this fd, not the whole device
        asyncio.events._set_running_loop(None)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        stats = loop.run_until_complete(_serve(w, index, queue, wfd))
        os.write(wfd, b"S" + json.dumps(stats).encode() + b"\n")
        code = 0
    except BaseException:                                      # noqa: BLE001 - report, then exit
        try:
            os.write(wfd, ("E" + traceback.format_exc().replace("\n", "\\n") + "\n").encode())
        except OSError:
            pass
    finally:
        os._exit(code)


async def _serve(w: HttpWorkers, index: int, queue: TunQueue, wfd: int) -> dict:
    loop = asyncio.get_running_loop()
    stack = Stack(w.addresses, secret=w.secret, config=w.tcp_config, stack_config=w.stack_config)
    astack = AsyncStack(stack, queue, loop)
    servers = [(port, HttpServer(make_app(stack), w.config)) for port, make_app in w.sites]
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        for port, server in servers:
            await server.listen_synack(astack, w.host, port, backlog=w.backlog)
        tune_gc()
        os.write(wfd, b"R\n")
        await stop.wait()
        await asyncio.gather(*(server.shutdown(w.grace) for _, server in servers))
        for _ in range(50):                                    # let FINs and their ACKs go (<= 0.5 s)
            if not stack.conns:
                break
            await asyncio.sleep(0.01)
    finally:
        astack.close()
    c, t = queue.counters, os.times()
    totals = {k: sum(server.stats[k] for _, server in servers) for k in ("connections", "requests", "errors")}
    return {"worker": index, "pid": os.getpid(), **totals, "cpu_s": round(t.user + t.system, 3),
            "rx_packets": c.rx_packets, "tx_packets": c.tx_packets, "tx_dropped": c.tx_dropped}


# ---------------------------------------------------------------------- helpers

GC_GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """For a process that now serves: move what setup made into the permanent generation
    (``gc.freeze``: the collector no longer walks it) and collect the youngest generation every
    10,000 net allocations instead of 700. Nearly everything a request allocates is freed by
    reference counting; at 700 the collector ran every few connections for little."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def _read_line(fd: int, deadline: float) -> str:
    """One line from a worker's pipe ("" at EOF or when ``deadline`` passes)."""
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return ""
        b = os.read(fd, 1)
        if not b:
            return ""
        buf += b
    return buf[:-1].decode(errors="replace").replace("\\n", "\n")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int, deadline: float) -> bool:
    """Wait for ``pid`` until ``deadline``; True once it is reaped."""
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


__all__ = ["HttpWorkers", "WorkerError", "tune_gc"]
