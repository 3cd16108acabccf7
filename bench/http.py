"""HTTP on synack vs the kernel: one run, one private namespace, the same wrk, the same file.

    sudo .venv/bin/python bench/http.py [--duration 5] [--connections 8] [--size 1024] [--rounds 1]

Four servers serve the same directory:
  * synack:      synack.http's h11 server on synack's TCP (asyncio adapter, TUN, 192.0.2.2:80),
                 running in this process;
  * synack x2:   the same server in 2 worker processes (``--workers``), each with its own synack
                 stack on one queue of a multi-queue TUN device in the same namespace
                 (198.51.100.2:80; ``synack.http.workers``): TWO processes, so up to two CPUs,
                 where http.server below is ONE process (threads under one GIL);
  * kernel-h11:  the same h11 server on the kernel's TCP (``python -m synack.http``, 192.0.2.1:8080);
  * http.server: Python's ``python3 -m http.server`` on the kernel's TCP (192.0.2.1:8081; it
                 speaks HTTP/1.0 and closes every connection, so it never keeps alive).
``wrk`` runs inside the namespace against each, with keep-alive and with ``Connection: close``,
and the requests/s, the 99th-percentile latency and the server's CPU time per request (user +
system CPU of the serving process(es) over the run, divided by the requests wrk completed; the
system part, the kernel's work in those processes, also on its own) are
printed with the ratios. CPU per request is the figure to compare across runs on a shared
machine: req/s moves with whatever else runs, CPU per request much less. ``--rounds N`` runs the
whole sequence N times over, each round starting one server later in the order, and prints
the median of each ratio over the rounds (with the lowest and highest), since one run's ratios
move by 10-30 % on a shared machine. Not a test:
numbers depend on the machine (wrk shares the CPUs with the servers). Needs root, wrk and /dev/net/tun; everything it makes (namespace,
TUN device, server processes) is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from synack.api.aio import AsyncStack
from synack.http.server import HttpServer, ServerConfig
from synack.http.static import StaticFiles
from synack.http.workers import HttpWorkers, tune_gc
from synack.link.netns import kernel_peer
from synack.link.tun import TunLink
from synack.stack.host import Stack

KERNEL, SYNACK = "192.0.2.1", "192.0.2.2"
KERNEL_MQ, SYNACK_MQ = "198.51.100.1", "198.51.100.2"     # the workers' multi-queue TUN (RFC 5737)


def parse_wrk(text: str) -> dict:
    def num(pat: str) -> float | None:
        m = re.search(pat, text)
        return float(m.group(1)) if m else None

    def dur(pat: str) -> float | None:
        m = re.search(pat, text)
        if not m:
            return None
        v, unit = float(m.group(1)), m.group(2)
        return v * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {"rps": num(r"Requests/sec:\s+([\d.]+)"), "p99_ms": dur(r"\n\s+99%\s+([\d.]+)(us|ms|s|m)\b"),
            "p50_ms": dur(r"\n\s+50%\s+([\d.]+)(us|ms|s|m)\b"), "requests": num(r"(\d+) requests in"),
            "errors": sum(map(int, errors.groups())) if errors else 0,
            "non2xx": num(r"Non-2xx or 3xx responses: (\d+)") or 0}


_TICK = os.sysconf("SC_CLK_TCK")


def self_cpu() -> tuple[float, float]:
    """User and system CPU seconds of this process (all its threads: the synack row's server)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def pid_cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of another process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK      # utime, stime (fields 14, 15)


def cpu_sum(pids) -> tuple[float, float]:
    times = [pid_cpu(p) for p in pids]
    return sum(t[0] for t in times), sum(t[1] for t in times)


def wait_listening(peer, host: str, port: int, tries: int = 100) -> None:
    probe = f"import socket; socket.create_connection(('{host}', {port}), 1).close()"
    for _ in range(tries):
        if peer.run([sys.executable, "-c", probe], timeout=5).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    ap.add_argument("--size", type=int, default=1024, help="size of the file fetched (default 1024 bytes)")
    ap.add_argument("--workers", type=int, default=2, help="processes of the 'synack xN' row (default 2)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every server and mode this many times, interleaved, and print the "
                         "median of each ratio over the rounds (default 1)")
    args = ap.parse_args()
    if args.rounds < 1 or args.duration < 1 or args.connections < 1 or args.workers < 1:
        ap.error("--rounds, --duration, --connections and --workers must be at least 1")
    if shutil.which("wrk") is None:
        print("bench/http.py: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="synack-bench-http-"))
    (tmp / "file.bin").write_bytes(bytes(range(256)) * (args.size // 256) + b"x" * (args.size % 256))
    results: dict[tuple[str, str], list[dict]] = {}
    multi = f"synack x{args.workers}"
    workers = mq = None
    try:
        with kernel_peer(ipv6=False) as peer:
            # the workers fork first, while this process has no other thread
            mq = TunLink(f"snkmq{peer.link.name[3:]}"[:15], netns=peer.ns, addresses=[f"{KERNEL_MQ}/24"],
                         queues=args.workers)
            workers = HttpWorkers(StaticFiles(tmp), mq.queues, [f"{SYNACK_MQ}/24"], 80,
                                  config=ServerConfig(idle_timeout=30.0), secret=b"bench-http").start()
            stack = Stack(peer.stack_addresses, secret=b"bench-http")
            astack = AsyncStack.start_thread(stack, peer.link, "synack-bench")
            server = HttpServer(StaticFiles(tmp), ServerConfig(idle_timeout=30.0))
            astack.run(server.listen_synack(astack, None, 80, backlog=1024), timeout=5)
            tune_gc()                   # as each worker does (synack.http.workers.tune_gc)
            # the trampoline execs the server, so each Popen's pid is the server's own
            h11_kernel = peer.popen([sys.executable, "-m", "synack.http", "--bind", KERNEL, "--port", "8080",
                                     str(tmp)], stdout=subprocess_devnull(), stderr=subprocess_devnull())
            http_server = peer.popen([sys.executable, "-m", "http.server", "--bind", KERNEL, "8081",
                                      "--directory", str(tmp)],
                                     stdout=subprocess_devnull(), stderr=subprocess_devnull())
            wait_listening(peer, KERNEL, 8080)
            wait_listening(peer, KERNEL, 8081)
            targets = {"synack": f"http://{SYNACK}:80/file.bin", multi: f"http://{SYNACK_MQ}:80/file.bin",
                       "kernel-h11": f"http://{KERNEL}:8080/file.bin",
                       "http.server": f"http://{KERNEL}:8081/file.bin"}
            cpu_of = {"synack": self_cpu, multi: lambda: cpu_sum(workers.pids),
                      "kernel-h11": lambda: pid_cpu(h11_kernel.pid),
                      "http.server": lambda: pid_cpu(http_server.pid)}
            print(f"wrk -t1 -c{args.connections} -d{args.duration}s, {args.size}-byte file, "
                  f"namespace {peer.ns}", flush=True)
            names = list(targets)
            for rnd in range(1, args.rounds + 1):
                # each round starts one server later, so no server always runs right after the
                # same one (a kernel server's close-mode run leaves thousands of TIME-WAIT
                # sockets in the namespace for whichever runs next)
                k = (rnd - 1) % len(names)
                order = names[k:] + names[:k]
                for mode in ("keep-alive", "close"):
                    for name in order:
                        url = targets[name]
                        argv = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
                                "--timeout", "10s", url]
                        if mode == "close":
                            argv[1:1] = ["-H", "Connection: close"]
                        cpu0 = cpu_of[name]()
                        r = peer.run(argv, timeout=args.duration + 60)
                        cpu1 = cpu_of[name]()
                        res = parse_wrk(r.stdout)
                        n = res["requests"] or float("nan")
                        res["cpu_ms"] = (cpu1[0] + cpu1[1] - cpu0[0] - cpu0[1]) / n * 1e3
                        res["sys_ms"] = (cpu1[1] - cpu0[1]) / n * 1e3
                        results.setdefault((name, mode), []).append(res)
                        tag = f"[{rnd}] " if args.rounds > 1 else ""
                        print(f"  {tag}{name:<12} {mode:<10} {res['rps'] or 0:>9.0f} req/s"
                              f"  p50 {res['p50_ms'] or 0:>8.2f} ms  p99 {res['p99_ms'] or 0:>8.2f} ms"
                              f"  CPU {res['cpu_ms']:6.3f} ms/req (system {res['sys_ms']:5.3f})"
                              f"  errors {res['errors']:.0f}  non-2xx {res['non2xx']:.0f}", flush=True)
            try:
                astack.run(server.shutdown(1.0), timeout=5)
            finally:
                astack.close()
                stats, workers = workers.stop(), None
            for st in stats:
                print(f"  {multi}: worker {st['worker']} served {st['connections']} connections, "
                      f"{st['requests']} requests, {st['cpu_s']:.1f} s of CPU", flush=True)
    finally:
        if workers is not None:
            workers.stop()
        if mq is not None:
            mq.close()
        shutil.rmtree(tmp, ignore_errors=True)
    rounds = f", median of {args.rounds} rounds (min-max)" if args.rounds > 1 else ""
    print(f"\nratios (requests/s; p99 latency; CPU per request; {multi} is {args.workers} processes, "
          f"http.server one{rounds}):")
    for mode in ("keep-alive", "close"):
        for mine in ("synack", multi):
            for other in ("kernel-h11", "http.server"):
                pairs = list(zip(results[(mine, mode)], results[(other, mode)]))
                cols = []
                for key, what in (("rps", "req/s"), ("p99_ms", "p99"), ("cpu_ms", "CPU/req")):
                    rs = sorted(ratio(s[key], o[key]) for s, o in pairs)
                    spread = f" ({rs[0]:.2f}-{rs[-1]:.2f})" if len(rs) > 1 else ""
                    cols.append(f"{statistics.median(rs):6.2f}x {what}{spread}")
                print(f"  {mode:<10} {mine:<9} / {other:<12} " + "   ".join(cols))
    return 0


def ratio(a: float | None, b: float | None) -> float:
    return (a or 0) / b if b else float("nan")


def subprocess_devnull():
    import subprocess
    return subprocess.DEVNULL


if __name__ == "__main__":
    sys.exit(main())
