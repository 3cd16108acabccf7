"""A user-space delay line: two TUN devices in two namespaces, a relay process copying packets
between them after a fixed one-way delay (this kernel has no netem).

::

    with DelayLine(0.1, ("ns_r", "dlr1", ["192.0.2.129/26"], []),
                        ("ns_b", "dlb1", ["192.0.2.130/26"], ["192.0.2.0/24"])) as line:
        ...                                   # R <-> B now have a 200 ms round trip
        line.stats()                          # the relay's counters since the last call

Each end is a ``TunLink`` without offloads (no vnet header: whole MSS-sized IP packets), made in
this process and moved into its namespace with the kernel's addresses and routes on it. Its fd
is handed to a separate relay process (``pass_fds``; this file run as a script) and closed
here, so the devices live exactly as long as the relay does: when it exits, for whatever reason,
the kernel deletes both. The relay is a process of its own, not a thread, so it does not share a
GIL with a synack stack running in the caller.

The relay keeps one FIFO per direction of (due time, packet): a packet read at t is written to
the other device at t + delay. It waits in ``select`` (microsecond timeout) until the head of
either FIFO is due or a device or its control pipe is readable, reads what is readable
(non-blocking, up to 512 packets per device per turn), writes everything due. Its counters
show whether it kept up: per direction packets, bytes, write errors, the largest lag of a write
behind its due time and how many writes were more than 1 and 5 ms late, the longest FIFO, the
most packets found waiting in one read turn; and its CPU time. Reads cannot be late-stamped
(a packet waiting in the TUN ring while the relay is busy is stamped when read): the longest
turn outside ``select`` bounds that, and a full ring shows as the device's own tx drops. A write
to a TUN device runs the receiving namespace's stack inside the relay's system call (a router
forwarding, a TCP receiver, an ACK reaching a kernel sender and the data it releases), so the
relay's CPU time and its longest turn include that kernel work.

By default the relay runs as SCHED_FIFO (priority 10): it sleeps in ``select`` nearly all the
time, but under the normal scheduler, on a small machine busy with the sender (and anything
else), a wake-up can wait for another task's slice: ``select`` timeouts overslept by up to 3-5 ms
on the 2-vCPU machine this was written on with two CPU-bound nice-19 jobs running, 0.7 ms as
SCHED_FIFO. The network it stands in for does not share a CPU with the hosts either. (The
kernel's RT throttling leaves other tasks 5 % of each CPU should it ever spin.) ``rt=0`` turns
this off.

The control pipe is the relay's stdin: a line "stats" is answered with one JSON line of the
counters since the previous one (lags and maxima reset); end of file ends the relay. So the
relay also ends when the process that started it dies.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import select
import subprocess
import sys
import time
from collections import deque
from typing import Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

READ_BATCH = 512
RT_PRIO = 10        # SCHED_FIFO priority of the relay (0: none); see the module docstring
_BUF = 65536


def _fresh(names: Sequence[str]) -> dict:
    d = {"packets": 0, "bytes": 0, "write_errors": 0, "max_lag_ms": 0.0, "late_1ms": 0, "late_5ms": 0,
         "max_queue": 0, "max_batch": 0, "errnos": {}}
    return {n: {k: (v.copy() if isinstance(v, dict) else v) for k, v in d.items()} for n in names}


def relay(fd_a: int, fd_b: int, delay: float, ctl: int = 0, out=sys.stdout) -> None:
    """Copy packets a -> b and b -> a, each ``delay`` seconds after it was read; answer "stats"
    lines on ``ctl``; return at its end of file."""
    mono = time.monotonic
    fds = (fd_a, fd_b)
    names = ("a->b", "b->a")
    qs: tuple[deque, deque] = (deque(), deque())
    st = _fresh(names)
    max_turn = 0.0
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = mono()
    ctl_buf = b""
    rd = [fd_a, fd_b, ctl]
    print("ready", file=out, flush=True)
    woke = mono()
    while True:
        # write everything due, oldest first, each to the other device
        now = mono()
        for i in (0, 1):
            q = qs[i]
            if q and q[0][0] <= now:
                s, dst = st[names[i]], fds[1 - i]
                while q and q[0][0] <= now:
                    due, pkt = q.popleft()
                    lag = now - due
                    if lag > 0.001:
                        s["late_1ms"] += 1
                        if lag > 0.005:
                            s["late_5ms"] += 1
                    if lag * 1000 > s["max_lag_ms"]:
                        s["max_lag_ms"] = lag * 1000
                    try:
                        os.write(dst, pkt)
                    except OSError as e:
                        s["write_errors"] += 1
                        k = errno.errorcode.get(e.errno, str(e.errno))
                        s["errnos"][k] = s["errnos"].get(k, 0) + 1
                        continue
                    s["packets"] += 1
                    s["bytes"] += len(pkt)
                now = mono()
        heads = [q[0][0] for q in qs if q]
        timeout = max(min(heads) - now, 0.0) if heads else None
        busy = mono() - woke              # this turn: reads, writes (and the kernel's work in them)
        if busy > max_turn:
            max_turn = busy
        r, _, _ = select.select(rd, [], [], timeout)
        t = woke = mono()
        for fd in r:
            if fd == ctl:
                data = os.read(ctl, 4096)
                if not data:
                    return
                ctl_buf += data
                while b"\n" in ctl_buf:
                    line, ctl_buf = ctl_buf.split(b"\n", 1)
                    if line.strip() == b"stats":
                        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
                        wall1 = mono()
                        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
                        rep = dict(st, max_turn_ms=max_turn * 1000, cpu=cpu / (wall1 - wall0) if wall1 > wall0 else 0.0,
                                   secs=wall1 - wall0, in_line={n: len(q) for n, q in zip(names, qs)})
                        print(json.dumps(rep), file=out, flush=True)
                        st, max_turn, cpu0, wall0 = _fresh(names), 0.0, cpu1, wall1
                continue
            i = 0 if fd == fd_a else 1
            q = qs[i]
            due = t + delay
            n = 0
            for n in range(1, READ_BATCH + 1):
                try:
                    q.append((due, os.read(fd, _BUF)))
                except BlockingIOError:
                    n -= 1
                    break
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EINTR):
                        n -= 1
                        break
                    raise
            s = st[names[i]]
            if n > s["max_batch"]:
                s["max_batch"] = n
            if len(q) > s["max_queue"]:
                s["max_queue"] = len(q)


# one end of the line: (namespace, device name, the kernel's addresses on it, extra routes through it)
End = tuple[str, str, Sequence[str], Sequence[str]]


class DelayLine:
    """Two TUN devices (ends ``a`` and ``b``) joined by a relay process that delays every packet
    by ``delay`` seconds each way; see the module docstring. ``close()`` (or leaving the ``with``)
    ends the relay, and with it both devices."""

    def __init__(self, delay: float, a: End, b: End, *, rt: int = RT_PRIO, python: str = sys.executable) -> None:
        from synack.link.tun import TunLink

        self.delay, self.rt = delay, rt
        self.proc: subprocess.Popen | None = None
        links = []
        try:
            for ns, name, addrs, routes in (a, b):
                links.append(TunLink(name, offload=False, netns=ns, addresses=addrs, routes=routes))
            self.names = [link.name for link in links]
            fa, fb = (link.fileno() for link in links)
            self.proc = subprocess.Popen(
                [python, os.path.abspath(__file__), "--fds", str(fa), str(fb), "--delay", repr(delay),
                 "--rt", str(rt)],
                pass_fds=(fa, fb), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
        finally:
            for link in links:          # the relay holds the devices now (or nobody: they go)
                link.close()
        line = self._line(20)
        if line != "ready":
            err = self.close() or ""
            raise RuntimeError(f"delay line relay did not start: {line!r} {err[-1500:]}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _line(self, timeout: float) -> str:
        p = self.proc
        r, _, _ = select.select([p.stdout], [], [], timeout)
        if not r:
            raise TimeoutError("no answer from the delay line relay")
        return p.stdout.readline().strip()

    def stats(self, timeout: float = 10) -> dict:
        """The relay's counters since the previous call (or its start)."""
        p = self.proc
        if p is None or p.poll() is not None:
            raise RuntimeError(f"the delay line relay is gone: {self.close()!r}")
        p.stdin.write("stats\n")
        p.stdin.flush()
        return json.loads(self._line(timeout))

    def close(self) -> str | None:
        """End the relay (stdin closed, then SIGKILL by PID after 5 s); its stderr."""
        p, self.proc = self.proc, None
        if p is None:
            return None
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
        err = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        return err

    def __enter__(self) -> "DelayLine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def lag_note(st: dict, limit_ms: float = 5.0) -> str | None:
    """A warning when the relay fell behind by more than ``limit_ms``, else None."""
    worst = max(st[d]["max_lag_ms"] for d in ("a->b", "b->a"))
    late = sum(st[d]["late_5ms"] for d in ("a->b", "b->a"))
    errs = sum(st[d]["write_errors"] for d in ("a->b", "b->a"))
    turn = st.get("max_turn_ms", 0)
    notes = []
    if worst > limit_ms:
        notes.append(f"the delay line relay fell behind: a write up to {worst:.1f} ms after its due time "
                     f"({late} writes over 5 ms late)")
    if turn > limit_ms:
        notes.append(f"one turn of the relay took {turn:.1f} ms (packets arriving then were read that much "
                     f"late; the kernel's own work in its writes counts in it)")
    if errs:
        notes.append(f"the delay line relay's TUN writes failed {errs} times")
    return "; ".join(notes) or None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fds", type=int, nargs=2, required=True, metavar=("A", "B"),
                    help="the two TUN fds (inherited), packets copied between them")
    ap.add_argument("--delay", type=float, required=True, help="one-way delay in seconds")
    ap.add_argument("--rt", type=int, default=0, metavar="PRIO",
                    help="run as SCHED_FIFO with this priority (0: the normal scheduler)")
    args = ap.parse_args(argv)
    for fd in args.fds:
        os.set_blocking(fd, False)
    if args.rt:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.rt))
    try:
        relay(args.fds[0], args.fds[1], args.delay)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
