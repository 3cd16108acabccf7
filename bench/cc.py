"""Congestion control on the simulator: goodput and fairness (not a test; see docs/congestion.md).

    python bench/cc.py                   # the quick subset (a few minutes)
    python bench/cc.py --full            # every algorithm x SACK x RTT x loss, and fairness
    python bench/cc.py --rtt 50 --loss 1 --cc cubic --sack on --duration 20

One sender and one receiver (or N of each pair, for fairness) across a 100 Mbit/s bottleneck
with a drop-tail queue of one bandwidth-delay product (in 1500-octet packets), random loss on the
data direction only. Every sender always has data (a send buffer topped up on each step) and
every receiver reads everything, so only the network and the congestion controller limit the
rate. Goodput counts the application bytes read after a warm-up, over the rest of the run.

Next to it the Mathis et al. bound, MSS / (RTT * sqrt(2p/3)) = 1.22 * MSS / (RTT * sqrt(p)), the
steady-state throughput of a Reno-like AIMD flow under random loss p (capped here by the link).
Jain's fairness index for n flows: (sum x)^2 / (n * sum x^2), 1 = perfectly fair.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import pathlib
import sys
import time

from synack.sim.network import Network
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.tcp.events import CwndChanged

LINK = 100e6                 # bits/s
PKT = 1500                   # octets, for the queue size in packets
MSS = 1448                   # payload per segment with timestamps (MTU 1500)
A_ADDR, B_ADDR = "192.0.2.1", "192.0.2.2"
DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def mathis(rtt: float, p: float) -> float:
    """Mathis bound in bits/s (inf without loss)."""
    if p <= 0:
        return math.inf
    return 1.22 * MSS * 8 / (rtt * math.sqrt(p))


def jain(xs: list[float]) -> float:
    s, q = sum(xs), sum(x * x for x in xs)
    return s * s / (len(xs) * q) if q else 1.0


def run(cc: str, sack: bool, rtt: float, loss: float, *, flows: int = 1, duration: float = 20.0,
        warmup: float | None = None, seed: int = 1, trace: bool = False, acks: str = "delayed",
        rack: bool = True) -> dict:
    """One run; returns goodput per flow (bits/s) and, with ``trace``, (t, cwnd) per flow."""
    bdp = LINK * rtt / 8
    queue = max(int(bdp / PKT), 2)
    buf = int(max(4 * bdp, 262144))
    cfg = TcpConfig(cc=cc, sack=sack, rcv_buf=buf, snd_buf=buf, min_rto=0.2, nagle=False, rack=rack)
    warmup = warmup if warmup is not None else min(duration / 4, 5.0)
    cwnds: dict[str, list[tuple[float, int]]] = {}

    def log(rec) -> None:
        if isinstance(rec, CwndChanged):
            cwnds.setdefault(str(rec.conn), []).append((rec.t, rec.cwnd))

    net = Network(seed)
    a = net.add_node("a", Stack([A_ADDR + "/24"], secret=b"a" * 16, config=cfg, log=log if trace else None))
    # the receiver: RFC 5681 §4.2 delayed ACKs (every 2nd segment, 40 ms timer), an ACK for
    # every segment, which is what the Mathis model assumes (its b = 1), or stretch ACKs (every
    # 4th full segment, 40 ms timer), about what a Linux receiver sent on the real path of
    # bench/cc_tun.py (3.75 segments per ACK there; Linux ACKs what the application read)
    rcfg = {"delayed": cfg, "every": cfg.copy(ack_delay=None), "stretch": cfg.copy(ack_every=4)}[acks]
    b = net.add_node("b", Stack([B_ADDR + "/24"], secret=b"b" * 16, config=rcfg))
    net.connect("a", "b", delay=rtt / 2, bandwidth=LINK, queue_limit=queue,
                faults=({"loss": loss}, None))
    lst = b.listen(80)
    senders = [a.connect((B_ADDR, 80), net.now) for _ in range(flows)]
    receivers: list = []
    got = [0] * flows
    marks = [0] * flows
    block = memoryview(b"\x5a" * 65536)
    faults, end = net.faults_of("a"), net.end("a")

    def drops() -> tuple[int, int]:
        """(data packets offered, of them dropped: random loss + tail drops), sender side."""
        return faults.tx.seen, faults.tx.loss + end.counters.dropped.get("queue", 0)

    mark_drops = [(0, 0)]
    t_end = net.now + duration
    t_warm = net.now + warmup
    warm_done = [False]

    def step() -> bool:
        while (c := b.accept(lst)) is not None:
            receivers.append(c)
        for c in senders:
            while c.state.synchronized and (free := c.sndbuf.free) > 0:
                if not c.send(block[:min(free, 65536)]):
                    break
                a.touch(c)
        for i, c in enumerate(receivers):
            n = 0
            while (d := c.receive(1 << 20)):
                n += len(d)
            if n:
                got[i] += n
                b.touch(c)
        if not warm_done[0] and net.now >= t_warm:
            warm_done[0] = True
            marks[:] = got
            mark_drops[0] = drops()
        return net.now >= t_end

    net.run_until(step, limit=duration + 1)
    span = net.now - t_warm
    rates = [(g - m) * 8 / span for g, m in zip(got, marks)]
    (seen0, lost0), (seen1, lost1) = mark_drops[0], drops()
    p = (lost1 - lost0) / (seen1 - seen0) if seen1 > seen0 else 0.0
    return {"rates": rates, "p": p, "cwnds": [cwnds.get(str(c.id), []) for c in senders]}


ALGOS = ["newreno", "cubic"]
RTTS = [0.010, 0.050, 0.200]
LOSSES = [0.0, 0.001, 0.01, 0.02]


def losses_duration(rtt: float, loss: float, base: float, losses: int, cap: float) -> float:
    """Virtual seconds for a lossy run: long enough for about ``losses`` random drops at the rate
    the Mathis bound predicts (the spread of a run is that of its loss count, ~1/sqrt(losses)),
    never shorter than ``base`` nor longer than ``cap``."""
    if loss <= 0:
        return base
    pps = min(mathis(rtt, loss), LINK) / (MSS * 8)
    return min(max(base, losses / (loss * pps)), max(cap, base))


def _timed(kw: dict) -> tuple[dict, float]:
    """``run(**kw)`` and its wall time (a top-level function, so worker processes can call it)."""
    t0 = time.perf_counter()
    return run(**kw), time.perf_counter() - t0


@contextlib.contextmanager
def _mapper(jobs: int):
    """A ``map`` over ``jobs`` worker processes (results in order, each as soon as it is ready),
    or the built-in ``map`` for one job."""
    if jobs <= 1:
        yield map
        return
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(jobs) as pool:
        yield pool.map


def goodput_table(cases, duration: float, out=sys.stdout, *, seeds: int = 1, jobs: int = 1,
                  losses: int = 0, cap: float = 60.0, acks: str = "delayed", rack: bool = True) -> list[tuple]:
    """One row per case: the mean goodput of ``seeds`` runs (seeds 1..N) with min-max beside it,
    the Mathis bound for the configured loss rate, and the mean over the runs of goodput divided
    by the bound at the loss rate each run met (random drops and tail drops after the warm-up)."""
    rows = []
    print("| cc | SACK | RTT ms | loss % | goodput Mbit/s | min-max | Mathis bound Mbit/s "
          "| loss met % | goodput / bound at loss met | virtual s x runs | wall s |", file=out)
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", file=out, flush=True)
    with _mapper(jobs) as pmap:
        for cc, sack, rtt, loss in cases:
            dur = losses_duration(rtt, loss, duration, losses, cap) if losses else duration
            work = [dict(cc=cc, sack=sack, rtt=rtt, loss=loss, duration=dur, seed=s, acks=acks,
                         rack=rack)
                    for s in range(1, seeds + 1)]
            results = list(pmap(_timed, work))
            gs = [r[0]["rates"][0] / 1e6 for r in results]
            ps = [r[0]["p"] for r in results]
            met = [x / (min(mathis(rtt, p), LINK) / 1e6) for x, p in zip(gs, ps)] if loss else []
            wall = sum(r[1] for r in results)
            g = sum(gs) / len(gs)
            m = min(mathis(rtt, loss), LINK) / 1e6
            rows.append((cc, sack, rtt, loss, g, m))
            ratio = f"{sum(met) / len(met):.2f}" if met else "-"
            print(f"| {cc} | {'on' if sack else 'off'} | {rtt * 1000:.0f} | {loss * 100:g} | {g:.2f} | "
                  f"{min(gs):.2f}-{max(gs):.2f} | {m:.2f}{' (link)' if m >= LINK / 1e6 else ''} | "
                  f"{sum(ps) / len(ps) * 100:.3f} | {ratio} | {dur:.0f} x {seeds} | {wall:.0f} |",
                  file=out, flush=True)
    return rows


def fairness_table(ccs, flow_counts, rtts, duration: float, out=sys.stdout, *, jobs: int = 1) -> None:
    """n flows of one algorithm started together; Jain's index of their goodputs after a warm-up
    of a quarter of the run (at least the 5 s of slow start and the first recovery)."""
    print("| cc | flows | RTT ms | per-flow Mbit/s | total Mbit/s | Jain index | virtual s | wall s |",
          file=out)
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |", file=out, flush=True)
    warmup = max(duration / 4, min(5.0, duration / 2))
    work = [dict(cc=cc, sack=True, rtt=rtt, loss=0.0, flows=n, duration=duration, warmup=warmup)
            for rtt in rtts for cc in ccs for n in flow_counts]
    with _mapper(jobs) as pmap:
        for w, (r, wall) in zip(work, pmap(_timed, work)):          # each row as it is done
            xs = r["rates"]
            print(f"| {w['cc']} | {w['flows']} | {w['rtt'] * 1000:.0f} | {' '.join(f'{x / 1e6:.1f}' for x in xs)} | "
                  f"{sum(xs) / 1e6:.1f} | {jain(xs):.3f} | {duration:.0f} | {wall:.0f} |", file=out, flush=True)


def plot(rows, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rtts = sorted({r[2] for r in rows})
    fig, axes = plt.subplots(1, len(rtts), figsize=(5 * len(rtts), 4), squeeze=False)
    for ax, rtt in zip(axes[0], rtts):
        for cc, sack in itertools.product(ALGOS, (True, False)):
            pts = sorted((r[3], r[4]) for r in rows if r[0] == cc and r[1] == sack and r[2] == rtt)
            if pts:
                ax.plot([max(p, 1e-4) * 100 for p, _ in pts], [g for _, g in pts], marker="o",
                        label=f"{cc}, SACK {'on' if sack else 'off'}")
        ps = [1e-3, 1e-2, 2e-2]             # the bound has no value at p = 0
        ax.plot([p * 100 for p in ps], [min(mathis(rtt, p), LINK) / 1e6 for p in ps], "k--", label="Mathis bound")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"RTT {rtt * 1000:.0f} ms, 100 Mbit/s, BDP queue")
        ax.set_xlabel("random loss % (0 plotted at 0.01 %)")
        ax.set_ylabel("goodput Mbit/s")
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def read_tables(paths: list[str]) -> list[tuple]:
    """Goodput rows back from tables this script printed (later files win)."""
    rows: dict[tuple, tuple] = {}
    for path in paths:
        for line in pathlib.Path(path).read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) in (7, 11) and cells[0] in ALGOS:      # before and after --seeds
                key = (cells[0], cells[1] == "on", float(cells[2]) / 1000, float(cells[3]) / 100)
                bound = cells[5] if len(cells) == 7 else cells[6]
                rows[key] = key + (float(cells[4]), float(bound.split()[0]))
    return list(rows.values())


def plot_cwnd(rtt: float, duration: float, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4))
    for cc in ALGOS:
        r = run(cc, True, rtt, 0.0, duration=duration, trace=True)
        pts = r["cwnds"][0]
        ax.plot([t for t, _ in pts], [c / MSS for _, c in pts], label=cc, lw=0.8)
    ax.set_xlabel("time s")
    ax.set_ylabel("cwnd (segments)")
    ax.set_title(f"one flow, 100 Mbit/s, RTT {rtt * 1000:.0f} ms, drop-tail queue of one BDP")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--full", action="store_true", help="the whole grid and fairness for 2 and 4 flows")
    p.add_argument("--cc", choices=ALGOS, action="append")
    p.add_argument("--sack", choices=["on", "off"], action="append")
    p.add_argument("--rtt", type=float, action="append", help="ms (repeatable)")
    p.add_argument("--loss", type=float, action="append", help="percent (repeatable)")
    p.add_argument("--duration", type=float, default=None, help="virtual seconds per run")
    p.add_argument("--seeds", type=int, default=None, help="runs per goodput row (seeds 1..N), mean reported")
    p.add_argument("--losses-per-run", type=int, default=None, metavar="K",
                   help="lengthen lossy runs to about K random drops each (capped by --max-duration)")
    p.add_argument("--max-duration", type=float, default=60.0, help="virtual seconds cap for --losses-per-run")
    p.add_argument("--jobs", "-j", type=int, default=1, help="runs in parallel processes")
    p.add_argument("--receiver-acks", choices=["delayed", "every", "stretch"], default="delayed",
                   help="goodput rows: receivers delay ACKs (RFC 5681 §4.2, the default), ACK every "
                        "segment (the Mathis model's assumption) or every 4th (stretch ACKs)")
    p.add_argument("--rack", choices=["on", "off"], default="on",
                   help="goodput rows: RACK-TLP loss detection (RFC 8985, the default) or, off, RFC "
                        "6675 IsLost() and DupThresh (with SACK only)")
    p.add_argument("--no-fairness", action="store_true")
    p.add_argument("--no-goodput", action="store_true")
    p.add_argument("--flows", type=int, action="append", help="fairness: flows sharing the link (repeatable)")
    p.add_argument("--fairness-rtt", type=float, action="append", help="fairness: RTT ms (repeatable)")
    p.add_argument("--fairness-duration", type=float, default=None, help="fairness: virtual seconds")
    p.add_argument("--plots", action="store_true", help=f"save PNGs to {DOCS}")
    p.add_argument("--plot-tables", nargs="+", metavar="FILE",
                   help="only redraw the goodput plot from tables printed earlier")
    a = p.parse_args(argv)
    for name in ("seeds", "losses_per_run", "jobs"):
        v = getattr(a, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.plot_tables:
        plot(read_tables(a.plot_tables), DOCS / "cc-goodput.png")
        return 0
    if a.full:
        ccs, sacks, rtts, losses, dur = ALGOS, [True, False], RTTS, LOSSES, a.duration or 10.0
        seeds, per_run, flows = a.seeds or 3, a.losses_per_run or 400, a.flows or [2, 4]
        f_rtts, f_dur = a.fairness_rtt or [10.0, 50.0], a.fairness_duration or 60.0
    else:
        ccs = a.cc or ALGOS
        sacks = [s == "on" for s in a.sack] if a.sack else [True, False]
        rtts = [r / 1000 for r in a.rtt] if a.rtt else [0.050]
        losses = [x / 100 for x in a.loss] if a.loss else [0.0, 0.01]
        dur = a.duration or 15.0
        seeds, per_run, flows = a.seeds or 1, a.losses_per_run or 0, a.flows or [2]
        f_rtts, f_dur = a.fairness_rtt or [10.0], a.fairness_duration or 30.0
    t0 = time.perf_counter()
    rows = []
    if not a.no_goodput:
        rows = goodput_table(list(itertools.product(ccs, sacks, rtts, losses)), dur, seeds=seeds,
                             jobs=a.jobs, losses=per_run, cap=a.max_duration, acks=a.receiver_acks,
                             rack=a.rack == "on")
    if not a.no_fairness:
        print()
        fairness_table(ccs, flows, [r / 1000 for r in f_rtts], f_dur, jobs=a.jobs)
    if a.plots:
        plot(rows, DOCS / "cc-goodput.png")
        plot_cwnd(0.050, 15.0, DOCS / "cc-cwnd.png")
    print(f"\n({time.perf_counter() - t0:.0f} s wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
