"""synack's congestion control against the kernel's with real packet loss: synack->kernel next to
kernel->kernel, both CUBIC (the default) or both Reno.

    sudo .venv/bin/python bench/cc_tun.py [--mb 40] [--max-secs 20] [--loss 0 1] [--rate none 100mbit 50mbit 20mbit]
                                          [--rtt MS] [--sack on|off] [--warmup SECS] [--cc cubic|reno]
                                          [--ack-loss same|none]

One run builds three private namespaces (192.0.2.0/24 only) and measures, for every bottleneck
rate and loss rate asked for, two bulk transfers back to back over the same router:

    synack (TUN, TcpConfig cc=CC) ------tun--+
                                             R --veth, tbf--> B  kernel receiver (Python socket)
    kernel sender A (TCP_CONGESTION CC) veth-+

``--cc cubic`` (the default) is synack's ``TcpConfig(cc="cubic")`` against the kernel's cubic;
``--cc reno`` is synack's ``TcpConfig(cc="newreno")`` (Reno with NewReno recovery, registered as
"reno" with the alias "newreno") against the kernel's reno, with whatever loss recovery the
kernel has on by default (SACK, RACK, PRR, tail loss probes). The kernel sender sets the algorithm
on its socket with TCP_CONGESTION and the run stops if the socket reports another one.

R forwards; an nftables table there drops ``numgen random`` packets in each direction (data
towards B, ACKs from B) and counts what it saw and dropped, so the printed loss is measured, not
assumed. ``--ack-loss none`` drops on the data direction only (as bench/cc.py's simulator does);
the ACKs are still counted. ``--rate`` puts a tbf qdisc on R's egress to B (the bottleneck both
senders share, one at a time); ``none`` leaves the link CPU-bound. Offloads are off on every hop a sender's
data crosses (TUN without a vnet header, veth TSO/GSO/GRO off), so nft drops single MSS-sized
packets, not 64 KB super-segments. This kernel has neither netem nor fq, so by default there is
no added propagation delay: the RTT is the path's own (sub-millisecond) plus whatever queue the
tbf holds.

``--rtt MS`` adds one: the R-B veth is replaced by a user-space delay line (bench/delayline.py:
a TUN device in R, one in B, a relay process between them delaying every packet by MS/2 each
way), the tbf sits on R's TUN device with a queue of one bandwidth-delay product (rate x RTT / 8
bytes, as bench/cc.py sizes the simulator's drop-tail queue), and synack takes bench/cc.py's
configuration (send and receive buffers of 4 BDP, min_rto 0.2 s, Nagle off). The kernels in A
and B may grow their buffers to 64 MB (tcp_rmem/tcp_wmem max) and keep no per-destination
metrics between runs (tcp_no_metrics_save). The relay's counters (packets each way, write
errors, how far behind the due time it wrote) are printed per transfer, with a warning when it
fell behind by more than 5 ms. ``--sack off`` turns SACK off for both senders (net.ipv4.tcp_sack
= 0 in A and B, ``TcpConfig(sack=False)``).

Each transfer is bounded by ``--mb`` bytes and ``--max-secs`` seconds (the sender stops at
whichever comes first and closes); goodput is what the kernel receiver counted over its own
clock, from accept to EOF, and again from ``--warmup`` seconds after accept to EOF (bench/cc.py
measures its table from 5 s of a 20 s run). A receiver still reading 30 s after the time bound
stops and the row is marked "cut". With loss and ``--rtt``, a second table sets the goodput
after warm-up against the Mathis et al. bound 1.22 * MSS / (RTT * sqrt(p)) (bench/cc.py's), at
the configured RTT, the connection's MSS and the p nft met on the data direction (its drops over
the data packets it saw towards B, retransmissions included), capped by the bottleneck rate; the
JSON rows carry the same fields (loss_met, mathis_mbps, mathis_ratio). Everything (processes by PID, TUN device, namespaces with their
veths, nft tables and qdiscs) is removed on exit, error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from synack.link.netns import in_netns, private_netns, remove_stale, veth_pair  # noqa: E402
from synack.link.runner import StackRunner  # noqa: E402
from synack.link.tun import TunLink  # noqa: E402
from synack.stack.host import Stack  # noqa: E402
from synack.tcp import congestion  # noqa: E402
from synack.tcp.config import TcpConfig  # noqa: E402
from delayline import DelayLine, lag_note  # noqa: E402
from tun_throughput import Source, wait_line  # noqa: E402

PORT = 5301
R_TUN, SYNACK = "192.0.2.1", "192.0.2.2"          # 192.0.2.0/26: TUN, R <-> synack
R_A, KSRC = "192.0.2.65", "192.0.2.66"             # 192.0.2.64/26: veth, R <-> kernel sender A
R_B, KDST = "192.0.2.129", "192.0.2.130"           # 192.0.2.128/26: veth or delay line, R <-> receiver B
TABLE = "cctun"
GRACE = 30.0          # seconds past --max-secs a transfer may take to end before it is cut off
BUF_MAX = 64 << 20    # with --rtt: tcp_rmem / tcp_wmem max in A and B, and synack's buffer cap

# Kernel receiver (in B): tun_throughput's SINK, also counting from a warm-up mark and bounded in
# time. Prints "ready", then "<bytes> <secs> <bytes after warm-up> <secs after warm-up> ok|cut".
SINK = textwrap.dedent("""
    import socket, sys, time
    host, port, warm, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port)); ls.listen(1); ls.settimeout(120)
    print("ready", flush=True)
    s, _ = ls.accept(); t0 = time.monotonic(); n = 0
    tw, nw, end, how = t0 + warm, None, t0 + limit, "ok"
    buf = bytearray(1 << 20)
    while True:
        now = time.monotonic()
        if nw is None and now >= tw:
            tw, nw = now, n
        if now >= end:
            how = "cut"; break
        s.settimeout(end - now)
        try:
            k = s.recv_into(buf)
        except socket.timeout:
            how = "cut"; break
        if not k:
            break
        n += k
    t1 = time.monotonic()
    print(n, t1 - t0, n - nw if nw is not None else 0, t1 - tw if nw is not None else 0, how, flush=True)
""")

# Kernel sender (in A): the algorithm argv[6] on the socket, bounded by bytes and seconds;
# samples TCP_INFO.
SENDER = textwrap.dedent("""
    import json, os, socket, struct, sys, time
    host, port, total, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    algo = sys.argv[6].encode()
    def info(s):   # struct tcp_info: 8 bytes of u8 (options at 5, SACK = 2), then u32 rto(0) ... rtt(15)
                   # ... snd_cwnd(18) ... total_retrans(23)
        b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        u = struct.unpack_from("24I", b, 8)
        return {"rtt_us": u[15], "cwnd": u[18], "mss": u[2], "total_retrans": u[23], "sack": bool(b[5] & 2)}
    block = memoryview(os.urandom(1 << 18))
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, algo)
    s.settimeout(30)
    s.connect((host, port))
    cc = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\\0").decode()
    t0 = time.monotonic(); end = t0 + secs; n = 0; rtts = []; cwnds = []; last = 0.0; done = True
    try:
        while n < total and (now := time.monotonic()) < end:
            s.settimeout(end - now)           # a stalled connection still stops at the bound
            try:
                n += s.send(block[n % len(block):min(len(block), n % len(block) + total - n)])
            except socket.timeout:
                pass
            if now - last >= 0.02:
                i = info(s); rtts.append(i["rtt_us"]); cwnds.append(i["cwnd"]); last = now
        s.shutdown(socket.SHUT_WR)
        s.settimeout(float(sys.argv[5]))
        while s.recv(65536):      # the receiver's FIN: everything was read
            pass
    except OSError:
        done = False              # not within the grace time, or the receiver gave up: report what there is
    i = info(s)
    print(json.dumps({"sent": n, "secs": time.monotonic() - t0, "cc": cc, "retrans": i["total_retrans"],
                      "mss": i["mss"], "rtt_ms": [r / 1000 for r in rtts], "cwnd": cwnds, "done": done,
                      "sack_ok": i["sack"]}),
          flush=True)
""")

# Offloads off on a device (legacy ethtool ioctls: STSO, SGSO, SGRO), run inside its namespace.
OFFLOADS_OFF = textwrap.dedent("""
    import ctypes, fcntl, socket, struct, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for dev in sys.argv[1:]:
        for cmd in (0x1f, 0x24, 0x2c):
            ev = ctypes.create_string_buffer(struct.pack("II", cmd, 0), 8)
            fcntl.ioctl(s, 0x8946, struct.pack("16sP", dev.encode(), ctypes.addressof(ev)).ljust(40, b"\\0"))
""")


class Procs:
    """Processes this script started, killed by PID at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def popen(self, ns: str, argv: list[str]) -> subprocess.Popen:
        p = subprocess.Popen(in_netns(ns, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.communicate(timeout=5)
            except (subprocess.TimeoutExpired, ValueError, OSError):
                pass
        self.procs.clear()


def sh(ns: str, argv: list[str], stdin: str | None = None, timeout: float = 15) -> str:
    r = subprocess.run(in_netns(ns, argv), input=stdin, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {ns}: {r.stderr.strip()}")
    return r.stdout


def nft_script(loss_pct: float, ack_loss: bool = True) -> str:
    """A fresh table (counters at zero) in R's forward hook: count every packet of the measured
    flow each way, drop ``loss_pct`` % of them at random (mod 10000, so fractions work): in both
    directions, or with ``ack_loss`` False only in the data direction (towards B)."""
    cut = round(loss_pct * 100)
    rules = []
    for name, match in (("data", f"ip daddr {KDST}"), ("ack", f"ip saddr {KDST}")):
        rules.append(f'{match} counter name "{name}_all"')
        if cut > 0 and (name == "data" or ack_loss):
            rules.append(f'{match} numgen random mod 10000 < {cut} counter name "{name}_drop" drop')
    body = "\n".join(f"    {r}" for r in rules)
    return textwrap.dedent(f"""\
        table inet {TABLE}
        delete table inet {TABLE}
        table inet {TABLE} {{
            counter data_all {{}}
            counter data_drop {{}}
            counter ack_all {{}}
            counter ack_drop {{}}
            chain loss {{
                type filter hook forward priority 0; policy accept;
        """) + body + "\n    }\n}\n"


def nft_counters(ns: str) -> dict[str, dict[str, int]]:
    out = json.loads(sh(ns, ["nft", "-j", "list", "counters", "table", "inet", TABLE]))
    res = {}
    for item in out["nftables"]:
        if "counter" in item:
            c = item["counter"]
            res[c["name"]] = {"packets": c["packets"], "bytes": c["bytes"]}
    return res


def queue_limit(rate: str, rtt: float) -> int | None:
    """The tbf queue in bytes: one bandwidth-delay product (``rtt`` in seconds > 0, as bench/cc.py's
    drop-tail queue), else 10 ms at the rate (at least 64 KB); None without a bottleneck."""
    if rate == "none":
        return None
    bps = parse_rate(rate)
    if rtt > 0:
        return max(int(bps * rtt / 8), 65536)
    return max(bps // 8 // 100, 65536)


def set_bottleneck(ns: str, dev: str, rate: str, rtt: float = 0.0) -> None:
    """tbf on R's egress to B: ``rate``, a 32 KB bucket, a queue of ``queue_limit`` bytes."""
    subprocess.run(in_netns(ns, ["tc", "qdisc", "del", "dev", dev, "root"]), capture_output=True, timeout=15)
    limit = queue_limit(rate, rtt)
    if limit is not None:
        sh(ns, ["tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "32kb",
                "limit", str(limit)])


def qdisc_drops(ns: str, dev: str) -> int:
    """Packets the root qdisc (the tbf) dropped so far: its queue overflowed."""
    out = json.loads(sh(ns, ["tc", "-s", "-j", "qdisc", "show", "dev", dev]) or "[]")
    return sum(q.get("drops", 0) for q in out if q.get("root"))


def dev_drops(ns: str, dev: str) -> dict[str, int]:
    """A device's own rx and tx drop counters (a TUN device's tx drops: its ring to the reading
    process was full)."""
    st = json.loads(sh(ns, ["ip", "-j", "-s", "link", "show", "dev", dev]))[0]["stats64"]
    return {"rx": st["rx"]["dropped"], "tx": st["tx"]["dropped"]}


def netstat(ns: str) -> dict[str, int]:
    """The namespace's TcpExt and Tcp counters (/proc/net/netstat and snmp are per namespace)."""
    out: dict[str, int] = {}
    for path in ("/proc/net/netstat", "/proc/net/snmp"):
        lines = sh(ns, ["cat", path]).splitlines()
        for head, vals in zip(lines[::2], lines[1::2]):
            proto, names = head.split(":", 1)
            if proto in ("TcpExt", "Tcp"):
                out.update((f"{proto}.{k}", int(v)) for k, v in zip(names.split(), vals.split(":", 1)[1].split()))
    return out


def kernel_events(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {"rtos": d.get("TcpExt.TCPTimeouts", 0),
            "recoveries": d.get("TcpExt.TCPRenoRecovery", 0) + d.get("TcpExt.TCPSackRecovery", 0),
            "loss_probes": d.get("TcpExt.TCPLossProbes", 0),
            "undos": sum(d.get(f"TcpExt.{k}", 0) for k in ("TCPFullUndo", "TCPPartialUndo", "TCPDSACKUndo",
                                                            "TCPLossUndo")),
            "spurious_rtos": d.get("TcpExt.TCPSpuriousRTOs", 0)}


def parse_rate(rate: str) -> int:
    units = {"kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "bit": 1}
    for u, m in units.items():
        if rate.endswith(u):
            return int(float(rate[: -len(u)]) * m)
    raise ValueError(f"rate {rate!r}: use e.g. 100mbit")


class TimedSource(Source):
    """tun_throughput's synack sender, also bounded in time, sampling SRTT and cwnd."""

    def __init__(self, stack: Stack, remote: tuple[str, int], total: int, secs: float) -> None:
        super().__init__(stack, remote, total)
        self.secs = secs
        self.rtts: list[float] = []
        self.cwnds: list[int] = []
        self._last = 0.0
        self.rtos = self.recoveries = 0          # episodes, seen as the flags rise (every turn)
        self._in_rto = self._in_rec = False

    def __call__(self, now: float) -> None:
        c = self.conn
        if c is not None and not self.done and self.t0 and time.monotonic() - self.t0 >= self.secs:
            self.total = min(self.total, self.sent)          # out of time: FIN after what was written
        super().__call__(now)
        if c is not None:
            r, f = c.retries > 0, c._in_recovery
            self.rtos += r and not self._in_rto
            self.recoveries += f and not self._in_rec
            self._in_rto, self._in_rec = r, f
        if c is not None and now - self._last >= 0.02 and c.rtt.srtt is not None and self.sent < self.total:
            self.rtts.append(c.rtt.srtt * 1000)
            self.cwnds.append(c.cwnd // max(c.mss, 1))
            self._last = now


def receiver(procs: Procs, ns_b: str, port: int, warm: float, limit: float) -> subprocess.Popen:
    p = procs.popen(ns_b, [sys.executable, "-c", SINK, KDST, str(port), str(warm), str(limit)])
    line = wait_line(p, 20)
    if line != "ready":
        raise RuntimeError(f"receiver did not start: {line!r} {p.stderr.read() if p.poll() is not None else ''}")
    return p


def received(p: subprocess.Popen, timeout: float) -> dict:
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0 or not out.split():
        raise RuntimeError(f"receiver failed: {err[-1500:]}")
    n, secs, n_warm, secs_warm, how = out.split()
    return {"bytes": int(n), "secs": float(secs), "bytes_warm": int(n_warm), "secs_warm": float(secs_warm),
            "cut": how == "cut"}


def synack_run(procs: Procs, link: TunLink, ns_b: str, port: int, total: int, secs: float, seed: int,
               config: TcpConfig, warm: float) -> dict:
    p = receiver(procs, ns_b, port, warm, secs + GRACE)
    stack = Stack([f"{SYNACK}/26"], secret=b"cc-tun-%d" % seed, config=config)
    runner = StackRunner(stack, link)
    src = TimedSource(stack, (KDST, port), total, secs)
    runner.add_hook(src)
    runner.call_soon_threadsafe(lambda: src.start(runner.now()))
    tx_drop0 = link.counters.tx_dropped
    cpu0, wall0 = time.process_time(), time.monotonic()
    th = runner.start(timeout=secs + GRACE + 15)
    try:
        got = received(p, secs + GRACE + 15)
        deadline = time.monotonic() + (1 if got["cut"] else 10)
        while not src.done and not src.error and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        runner.stop()
        th.join(10)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    if runner.error or src.error:
        raise RuntimeError(f"synack sender failed: {runner.error!r} {src.error!r}")
    c = src.conn
    if type(c.cc) is not congestion.get(config.cc):
        raise RuntimeError(f"synack's connection uses {c.cc.name!r}, not {config.cc!r}")
    if got["bytes"] != src.sent and not got["cut"]:
        raise RuntimeError(f"receiver counted {got['bytes']} bytes, synack wrote {src.sent}")
    return {**got, "retrans": c.total_retrans, "mss": c.mss, "cc": c.cc.name,
            "rtt_ms": src.rtts, "cwnd": src.cwnds, "cpu": cpu / wall if wall else 0.0,
            "tun_tx_dropped": link.counters.tx_dropped - tx_drop0, "rtos": src.rtos, "recoveries": src.recoveries,
            "sack_ok": c.sack_ok}


def kernel_run(procs: Procs, ns_a: str, ns_b: str, port: int, total: int, secs: float, warm: float,
               cc: str = "cubic") -> dict:
    p = receiver(procs, ns_b, port, warm, secs + GRACE)
    before = netstat(ns_a)
    s = procs.popen(ns_a, [sys.executable, "-c", SENDER, KDST, str(port), str(total), str(secs), str(GRACE), cc])
    out, err = s.communicate(timeout=secs + 2 * GRACE + 15)
    if s.returncode != 0:
        raise RuntimeError(f"kernel sender failed: {err[-1500:]}")
    r = json.loads(out)
    if r["cc"] != cc:
        raise RuntimeError(f"the kernel sender's socket uses {r['cc']!r}, not {cc}")
    got = received(p, GRACE + 15)
    if got["bytes"] != r["sent"] and not got["cut"]:
        raise RuntimeError(f"receiver counted {got['bytes']} bytes, kernel sender wrote {r['sent']}")
    r.update(got)
    r.update(kernel_events(before, netstat(ns_a)))
    return r


def median(xs: list[float]) -> float | None:
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def row(rate: str, loss: float, who: str, r: dict, cnt: dict, path_rtt_ms: float = 0.0, sack: bool = True,
        ack_loss: str = "same") -> dict:
    d_all, d_drop = cnt.get("data_all", {}), cnt.get("data_drop", {})
    a_all, a_drop = cnt.get("ack_all", {}), cnt.get("ack_drop", {})
    data_pkts = d_all.get("packets", 0)
    return {
        "rate": rate, "loss": loss, "sender": who, "cc": r["cc"], "path_rtt_ms": path_rtt_ms, "sack": sack,
        "ack_loss": ack_loss,
        "bytes": r["bytes"], "secs": r["secs"], "mbps": r["bytes"] * 8 / r["secs"] / 1e6 if r["secs"] else 0.0,
        "mbps_warm": r["bytes_warm"] * 8 / r["secs_warm"] / 1e6 if r["secs_warm"] else None,
        "secs_warm": r["secs_warm"], "cut": r["cut"], "sack_ok": r["sack_ok"],
        "kernel_events": {k: r[k] for k in ("loss_probes", "undos", "spurious_rtos") if k in r}, "rtos": r.get("rtos"), "recoveries": r.get("recoveries"),
        "rtt_min_ms": min(r["rtt_ms"]) if r["rtt_ms"] else None,
        "mss": r["mss"],
        "retrans": r["retrans"], "retrans_pct": 100 * r["retrans"] / data_pkts if data_pkts else 0.0,
        "rtt_ms": median(r["rtt_ms"]), "cwnd": median(r["cwnd"]),
        "data_pkts": data_pkts, "data_drops": d_drop.get("packets", 0),
        "data_bytes_per_pkt": d_all.get("bytes", 0) / data_pkts if data_pkts else 0.0,
        "ack_pkts": a_all.get("packets", 0), "ack_drops": a_drop.get("packets", 0),
        "cpu": r.get("cpu"), "tun_tx_dropped": r.get("tun_tx_dropped"),
    }


def mathis(rtt: float, p: float, mss: int) -> float:
    """The Mathis et al. bound in bits/s, 1.22 * MSS / (RTT * sqrt(p)) (bench/cc.py's, with the
    connection's MSS; ``rtt`` in seconds); inf without loss."""
    if p <= 0:
        return math.inf
    return 1.22 * mss * 8 / (rtt * math.sqrt(p))


def mathis_fields(r: dict) -> dict:
    """For a row with loss and an added RTT: the data-direction loss rate nft met (its drops over
    the data packets it saw towards B, retransmissions included, over the whole transfer), the
    Mathis bound at the configured RTT, that loss and the row's MSS (capped by the bottleneck
    rate, as bench/cc.py caps it by its link), and the goodput after warm-up over the bound.
    ``loss_met_tbf`` also counts the tbf's tail drops, as bench/cc.py's p does (not used for the
    bound). Empty for rows without loss or without an added RTT."""
    if not r["loss"] or not r["path_rtt_ms"] or not r["data_pkts"] or not r.get("mss"):
        return {}
    p = r["data_drops"] / r["data_pkts"]
    bound = mathis(r["path_rtt_ms"] / 1000, p, r["mss"])
    capped = r["rate"] != "none" and parse_rate(r["rate"]) < bound
    if capped:
        bound = parse_rate(r["rate"])
    warm = r["mbps_warm"]
    return {"loss_met": p, "loss_met_tbf": (r["data_drops"] + (r.get("queue_drops") or 0)) / r["data_pkts"],
            "mathis_mbps": bound / 1e6 if bound != math.inf else None, "mathis_capped": capped,
            "mathis_ratio": warm / (bound / 1e6) if warm is not None and 0 < bound < math.inf else None}


def print_mathis_table(rows: list[dict]) -> None:
    """Goodput after warm-up against the Mathis bound, for the rows that have one."""
    rows = [r for r in rows if r.get("mathis_mbps") is not None]
    if not rows:
        return
    print("| bottleneck | loss % | sender | after warm-up Mbit/s | data loss met % (nft drops / pkts) | MSS "
          "| tbf drops | Mathis bound Mbit/s at RTT, loss met | goodput / bound |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        warm = f"{r['mbps_warm']:.2f}" if r["mbps_warm"] is not None else "-"
        ratio = f"{r['mathis_ratio']:.2f}" if r["mathis_ratio"] is not None else "-"
        print(f"| {r['rate']} | {r['loss']:g} | {r['sender']} ({r['cc']}) | {warm} "
              f"| {100 * r['loss_met']:.3f} ({r['data_drops']} / {r['data_pkts']}) | {r['mss']} "
              f"| {r.get('queue_drops', '-')} | {r['mathis_mbps']:.2f} at {r['path_rtt_ms']:g} ms"
              f"{' (link)' if r['mathis_capped'] else ''} | {ratio} |", flush=True)


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.2f}" if b else "-"


def print_table(rows: list[dict]) -> None:
    print("| bottleneck | loss % | sender | goodput Mbit/s | synack/kernel | after warm-up Mbit/s | synack/kernel "
          "| retrans (% of data pkts) | RTOs / recoveries | median (min) SRTT ms | median cwnd pkts "
          "| data drops / pkts (%) | ACK drops / pkts (%) | tbf drops | synack CPU |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    kern = {(r["rate"], r["loss"]): r for r in rows if r["sender"] == "kernel"}

    def ratio(r: dict, key: str) -> str:
        k = kern.get((r["rate"], r["loss"]))
        return f"{r[key] / k[key]:.2f}" if r["sender"] == "synack" and k and k[key] and r[key] is not None else ""

    for r in rows:
        rtt = f"{r['rtt_ms']:.2f} ({r['rtt_min_ms']:.2f})" if r["rtt_ms"] is not None else "-"
        cwnd = f"{r['cwnd']:.0f}" if r["cwnd"] is not None else "-"
        cpu = f"{100 * r['cpu']:.0f} %" if r["cpu"] is not None else ""
        warm = f"{r['mbps_warm']:.1f}" if r["mbps_warm"] is not None else "-"
        cut = " (cut)" if r["cut"] else ""
        ev = f"{r['rtos']} / {r['recoveries']}" if r["rtos"] is not None else "-"
        print(f"| {r['rate']} | {r['loss']:g} | {r['sender']} ({r['cc']}) | {r['mbps']:.1f}{cut} | {ratio(r, 'mbps')} "
              f"| {warm} | {ratio(r, 'mbps_warm')} | {r['retrans']} ({r['retrans_pct']:.2f}) | {ev} | {rtt} | {cwnd} "
              f"| {r['data_drops']} / {r['data_pkts']} ({pct(r['data_drops'], r['data_pkts'])}) "
              f"| {r['ack_drops']} / {r['ack_pkts']} ({pct(r['ack_drops'], r['ack_pkts'])}) "
              f"| {r.get('queue_drops', '-')} | {cpu} |", flush=True)


def print_relay_table(rows: list[dict]) -> None:
    """The delay line's own counters per transfer (R->B is data, B->R ACKs)."""
    print("| bottleneck | loss % | sender | relay packets R->B / B->R | max lag ms R->B / B->R "
          "| writes > 1 ms / > 5 ms late | longest turn ms | most read at once | most in line R->B "
          "| relay CPU | write errors | TUN ring drops R / B |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        st = r.get("relay")
        if not st:
            continue
        f, b = st["a->b"], st["b->a"]
        print(f"| {r['rate']} | {r['loss']:g} | {r['sender']} | {f['packets']} / {b['packets']} "
              f"| {f['max_lag_ms']:.2f} / {b['max_lag_ms']:.2f} "
              f"| {f['late_1ms'] + b['late_1ms']} / {f['late_5ms'] + b['late_5ms']} | {st['max_turn_ms']:.2f} "
              f"| {max(f['max_batch'], b['max_batch'])} | {f['max_queue']} | {100 * st['cpu']:.0f} % "
              f"| {f['write_errors'] + b['write_errors']} | {r['ring_drops_r']} / {r['ring_drops_b']} |", flush=True)


def setup(ns_r: str, ns_a: str, ns_b: str, tag: str, delay_line: bool = False,
          cc: str = "cubic") -> tuple[str, str]:
    """Veths A-R and (without ``delay_line``) R-B, addresses, routes, forwarding, ``cc``, offloads
    off. Returns R's device towards B (the bottleneck; with ``delay_line`` the caller made it) and
    the kernel sender's device (for the offload check)."""
    from pyroute2 import IPRoute

    a_dev, ra_dev, rb_dev, b_dev = f"cca{tag}", f"ccra{tag}", f"ccrb{tag}", f"ccb{tag}"
    veth_pair(ns_a, ns_r, a_dev, ra_dev, f"{KSRC}/26", f"{R_A}/26")
    if delay_line:
        rb_dev = f"ccdr{tag}"
    else:
        veth_pair(ns_r, ns_b, rb_dev, b_dev, f"{R_B}/26", f"{KDST}/26")
    for ns, gw in ((ns_a, R_A),) + (() if delay_line else ((ns_b, R_B),)):
        with IPRoute(netns=ns, flags=0) as ipr:
            ipr.route("add", dst="192.0.2.0", dst_len=24, gateway=gw)
    sh(ns_r, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    # The namespace default: a namespace other than the host's may only pick an algorithm in the
    # host-wide tcp_allowed_congestion_control list (EPERM otherwise), which this script leaves
    # alone. The kernel sender sets ``cc`` on its socket (TCP_CONGESTION, allowed as root) and
    # reports what the socket really uses; the receiver only sends ACKs, its algorithm is idle.
    for ns in (ns_a, ns_b):
        subprocess.run(in_netns(ns, ["sysctl", "-qw", f"net.ipv4.tcp_congestion_control={cc}"]),
                       capture_output=True, timeout=15)
    sh(ns_a, [sys.executable, "-c", OFFLOADS_OFF, a_dev])
    if delay_line:        # TUN devices without a vnet header have no offloads to turn off
        sh(ns_r, [sys.executable, "-c", OFFLOADS_OFF, ra_dev])
    else:
        sh(ns_r, [sys.executable, "-c", OFFLOADS_OFF, ra_dev, rb_dev])
        sh(ns_b, [sys.executable, "-c", OFFLOADS_OFF, b_dev])
    return rb_dev, a_dev


def tune(ns_a: str, ns_b: str, rtt: float, sack: bool) -> None:
    """Per-namespace sysctls of the sender A and receiver B: SACK off if asked; with a delay,
    buffers that may grow to BUF_MAX and no metrics kept from one run for the next."""
    for ns in (ns_a, ns_b):
        if not sack:
            sh(ns, ["sysctl", "-qw", "net.ipv4.tcp_sack=0"])
        if rtt > 0:
            for key in ("net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"):
                lo, mid, hi = sh(ns, ["sysctl", "-n", key]).split()
                sh(ns, ["sysctl", "-qw", f"{key}={lo} {mid} {max(int(hi), BUF_MAX)}"])
            sh(ns, ["sysctl", "-qw", "net.ipv4.tcp_no_metrics_save=1"])


def autogroup() -> str:
    """This process's autogroup and its nice value. With sched_autogroup_enabled, every session
    is a group of its own and the groups share the CPUs equally: the nice value of a process
    counts only against the others of its session, so a niced job started elsewhere still takes
    its group's full share from this benchmark."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            on = f.read().strip() == "1"
        with open("/proc/self/autogroup") as f:
            me = f.read().strip()
    except OSError:
        return "no autogroups"
    return (f"autogroups on, this benchmark in {me} (a niced job in another session still gets a "
            f"whole group's share)" if on else "autogroups off")


SYNACK_CC = {"cubic": "cubic", "reno": "newreno"}     # --cc -> synack's registry name


def synack_config(rate: str, rtt: float, sack: bool, cc: str = "cubic") -> TcpConfig:
    """Without a delay, as before: ``TcpConfig(cc=...)`` ("cubic", or "newreno" for ``cc``
    "reno"). With one, bench/cc.py's: buffers of 4 BDP (at the rate, 1 Gbit/s without one; at
    least 256 KB, at most BUF_MAX), min_rto 0.2 s, Nagle off."""
    name = SYNACK_CC[cc]
    if rtt <= 0:
        return TcpConfig(cc=name) if sack else TcpConfig(cc=name, sack=False)
    bps = parse_rate(rate) if rate != "none" else 10**9
    buf = int(min(max(4 * bps * rtt / 8, 262144), BUF_MAX))
    return TcpConfig(cc=name, sack=sack, rcv_buf=buf, snd_buf=buf, min_rto=0.2, nagle=False)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=40, help="at most this many MiB per transfer (default 40)")
    ap.add_argument("--max-secs", type=float, default=20, help="at most this many seconds per transfer (default 20)")
    ap.add_argument("--loss", type=float, nargs="+", default=[0, 1],
                    help="loss %% each way, or on data only with --ack-loss none (default 0 1)")
    ap.add_argument("--rate", nargs="+", default=["none", "100mbit", "50mbit", "20mbit"],
                    help="tbf bottleneck rates, 'none' for no qdisc (default none 100mbit 50mbit 20mbit)")
    ap.add_argument("--rtt", type=float, default=0, metavar="MS",
                    help="added round-trip time in ms, through a user-space delay line between R and B "
                         "(default 0: a veth, no delay)")
    ap.add_argument("--sack", choices=["on", "off"], default="on", help="SACK for both senders (default on)")
    ap.add_argument("--cc", choices=sorted(SYNACK_CC), default="cubic",
                    help="congestion control of both senders: the kernel's cubic or reno on its socket, "
                         "synack's cubic or newreno (default cubic)")
    ap.add_argument("--warmup", type=float, default=5, metavar="SECS",
                    help="the second goodput counts from this many seconds after accept (default 5)")
    ap.add_argument("--ack-loss", choices=["same", "none"], default="same",
                    help="loss on the ACK direction (from B): 'same' as --loss, or 'none' (data direction "
                         "only, as bench/cc.py; default same)")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("needs root (TUN device, network namespaces)")
    for r in args.rate:
        if r != "none":
            parse_rate(r)
    if args.rtt < 0:
        ap.error("--rtt must not be negative")
    rtt, sack = args.rtt / 1000, args.sack == "on"
    total = int(args.mb * (1 << 20)) // (1 << 20) * (1 << 20) or (1 << 20)
    tag = str(os.getpid() % 100000)
    print(f"cc_tun: at most {total >> 20} MiB or {args.max_secs:g} s per transfer, Python "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, kernel {os.uname().release}", flush=True)
    print(f"scheduler: {autogroup()}", flush=True)
    queue = (f"a tbf queue of one BDP ({', '.join(f'{r} {queue_limit(r, rtt)} B' for r in args.rate if r != 'none')})"
             if rtt > 0 else "a tbf queue of 10 ms (at least 64 KB)")
    print(f"path: {'RTT %g ms added by a delay line (%g ms each way)' % (args.rtt, args.rtt / 2) if rtt > 0 else 'no added delay'}, "
          f"SACK {args.sack}, {queue}; loss {'both ways' if args.ack_loss == 'same' else 'on data only'}; "
          f"congestion control {args.cc} (synack: {SYNACK_CC[args.cc]}); "
          f"goodput after warm-up counts from {args.warmup:g} s", flush=True)
    rows: list[dict] = []
    procs = Procs()
    remove_stale()
    with private_netns() as ns_r, private_netns() as ns_a, private_netns() as ns_b:
        link = line = None
        try:
            if rtt > 0:
                line = DelayLine(rtt / 2, (ns_r, f"ccdr{tag}", [f"{R_B}/26"], []),
                                 (ns_b, f"ccdb{tag}", [f"{KDST}/26"], ["192.0.2.0/24"]))
            rb_dev, _ = setup(ns_r, ns_a, ns_b, tag, delay_line=line is not None, cc=args.cc)
            tune(ns_a, ns_b, rtt, sack)
            link = TunLink(f"cct{tag}", offload=False, netns=ns_r, addresses=[f"{R_TUN}/26"])
            port = PORT
            for rate in args.rate:
                set_bottleneck(ns_r, rb_dev, rate, rtt)
                for loss in args.loss:
                    for who in ("synack", "kernel"):
                        sh(ns_r, ["nft", "-f", "-"], stdin=nft_script(loss, args.ack_loss == "same"))
                        tun0, q0 = dev_drops(ns_r, link.name)["tx"], qdisc_drops(ns_r, rb_dev)
                        if line is not None:
                            line.stats()                     # the relay's counters start over
                            ring0 = (dev_drops(ns_r, rb_dev)["tx"], dev_drops(ns_b, f"ccdb{tag}")["tx"])
                        if who == "synack":
                            r = synack_run(procs, link, ns_b, port, total, args.max_secs, port,
                                           synack_config(rate, rtt, sack, args.cc), args.warmup)
                        else:
                            r = kernel_run(procs, ns_a, ns_b, port, total, args.max_secs, args.warmup, args.cc)
                        port += 1
                        rows.append(row(rate, loss, who, r, nft_counters(ns_r), rtt * 1000, sack, args.ack_loss))
                        rows[-1]["tun_ring_drops"] = dev_drops(ns_r, link.name)["tx"] - tun0
                        rows[-1]["queue_drops"] = qdisc_drops(ns_r, rb_dev) - q0
                        rows[-1].update(mathis_fields(rows[-1]))
                        procs.kill_all()
                        if line is not None:
                            st = line.stats()
                            rows[-1].update(relay=st, ring_drops_r=dev_drops(ns_r, rb_dev)["tx"] - ring0[0],
                                            ring_drops_b=dev_drops(ns_b, f"ccdb{tag}")["tx"] - ring0[1])
                        x = rows[-1]
                        warm = x["mbps_warm"]
                        print(f"  {rate} {loss:g}% {who}: {x['mbps']:.1f} Mbit/s in {r['secs']:.1f} s"
                              + (f", {warm:.1f} after warm-up" if warm is not None else "")
                              + (" (cut off)" if r["cut"] else "")
                              + f"; {x['retrans']} retransmitted, {x['rtos']} RTOs, {x['recoveries']} recoveries, "
                              f"{x['queue_drops']} tbf drops, median SRTT {x['rtt_ms'] or 0:.1f} ms"
                              + "".join(f", {k} {v}" for k, v in x["kernel_events"].items()),
                              file=sys.stderr, flush=True)
        finally:
            procs.kill_all()
            if link is not None:
                link.close()
            if line is not None:
                line.close()
    print_table(rows)
    if any(r.get("mathis_mbps") is not None for r in rows):
        print()
        print(f"Mathis bound 1.22 * MSS / (RTT * sqrt(p)) at the configured RTT ({args.rtt:g} ms, the delay line's; "
              f"the path's own and the tbf queue add to it), p = the data packets nft dropped over those it saw "
              f"towards B (retransmissions included, the whole transfer; tbf drops not in p), the connection's MSS; "
              f"goodput after warm-up over the bound:")
        print_mathis_table(rows)
    refused = sum(r["tun_tx_dropped"] or 0 for r in rows)
    if refused:
        print(f"(the TUN device refused {refused} of synack's writes: losses nft did not count)")
    for r in rows:
        if r["sack_ok"] != sack:
            print(f"({r['rate']} {r['loss']:g}% {r['sender']}: SACK was {'on' if r['sack_ok'] else 'off'} "
                  f"on the connection, not {args.sack} as asked)")
    ring = sum(r["tun_ring_drops"] for r in rows if r["sender"] == "synack")
    if ring:
        print(f"(synack's TUN device dropped {ring} packets to synack, ACKs it did not read in time: "
              f"losses nft counted as delivered)")
    if rtt > 0:
        print()
        print_relay_table(rows)
        for r in rows:
            note = lag_note(r["relay"])
            if note:
                print(f"({r['rate']} {r['loss']:g}% {r['sender']}: {note})")
            if r["ring_drops_r"] or r["ring_drops_b"]:
                print(f"({r['rate']} {r['loss']:g}% {r['sender']}: the delay line's TUN devices dropped "
                      f"{r['ring_drops_r']} (R) and {r['ring_drops_b']} (B) packets the relay did not read in time)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


_MAIN_PID = os.getpid()


def _sigterm(signum, frame):
    if os.getpid() != _MAIN_PID:          # a helper process pyroute2 forked: die as usual
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise KeyboardInterrupt("SIGTERM")    # the main process: unwind, so every finally cleans up


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    main()
