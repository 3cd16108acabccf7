"""`make bench`: every benchmark once, each printing synack's figures next to the kernel's.

    sudo .venv/bin/python bench/run.py [--full] [--only NAME ...]

Without ``--full`` each benchmark runs its quick form (a few minutes in all); ``--full`` runs the
forms the tables in docs/ come from (the congestion-control grid alone takes about half an hour).
The benchmarks that put synack on a TUN device need root and /dev/net/tun; without them they are
skipped with a one-line reason and the simulated ones still run. Each runs in its own process, so
one that fails does not stop the others; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name, needs root + TUN, quick arguments, full arguments
BENCHES: list[tuple[str, bool, list[str], list[str]]] = [
    ("host", True, ["--quick"], []),
    ("tun_throughput", True, ["--mb", "50"], ["--mb", "200"]),
    ("http", True, ["--duration", "3"], ["--duration", "5"]),
    ("http_cpu", False, ["-n", "500"], ["-n", "2000", "--concurrency", "8"]),
    ("cc", False, ["--rtt", "10", "--loss", "1", "--duration", "10", "--no-fairness"],
     ["--full"]),
    ("cc_tun", True, ["--mb", "10", "--rate", "none", "20mbit"], []),
    ("reno_model", False, ["--rounds", "100000"], []),
    ("tun_latency", True, ["--count", "100"], []),
]


def can_tun() -> str | None:
    """None when TUN benchmarks can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="the runs docs/ quotes (long)")
    ap.add_argument("--only", action="append", choices=[b[0] for b in BENCHES], metavar="NAME",
                    help="run just this benchmark (repeatable): " + ", ".join(b[0] for b in BENCHES))
    a = ap.parse_args(argv)
    why_not = can_tun()
    failed: list[str] = []
    for name, tun, quick, full in BENCHES:
        if a.only and name not in a.only:
            continue
        script = HERE / f"{name}.py"
        print(f"\n=== bench/{name}.py", flush=True)
        if tun and why_not:
            print(f"skipped: {why_not}", flush=True)
            continue
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script), *(full if a.full else quick)])
        print(f"(bench/{name}.py: exit {rc}, {time.perf_counter() - t0:.0f} s)", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
