"""CUBIC against the kernel's CUBIC with real packet loss: synack->kernel next to kernel->kernel.

    sudo .venv/bin/python bench/cc_tun.py [--mb 40] [--max-secs 20] [--loss 0 1] [--rate none 100mbit 50mbit 20mbit]

One run builds three private namespaces (192.0.2.0/24 only) and measures, for every bottleneck
rate and loss rate asked for, two bulk transfers back to back over the same router:

    synack (TUN, TcpConfig cc="cubic") --tun--+
                                              R --veth, tbf--> B  kernel receiver (Python socket)
    kernel sender A (cubic) ---------veth-----+

R forwards; an nftables table there drops ``numgen random`` packets in each direction (data
towards B, ACKs from B) and counts what it saw and dropped, so the printed loss is measured, not
assumed. ``--rate`` puts a tbf qdisc on R's egress to B (the bottleneck both senders share,
one at a time); ``none`` leaves the link CPU-bound. Offloads are off on every hop a sender's
data crosses (TUN without a vnet header, veth TSO/GSO/GRO off), so nft drops single MSS-sized
packets, not 64 KB super-segments. This kernel has neither netem nor fq, so there is no added
propagation delay: the RTT is the path's own (sub-millisecond) plus whatever queue the tbf holds.

Each transfer is bounded by ``--mb`` bytes and ``--max-secs`` seconds (the sender stops at
whichever comes first and closes); goodput is what the kernel receiver counted over its own
clock, from accept to EOF. Everything (processes by PID, TUN device, namespaces with their
veths, nft tables and qdiscs) is removed on exit, error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
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
from synack.tcp.config import TcpConfig  # noqa: E402
from tun_throughput import SINK, Source, wait_line  # noqa: E402

PORT = 5301
R_TUN, SYNACK = "192.0.2.1", "192.0.2.2"          # 192.0.2.0/26: TUN, R <-> synack
R_A, KSRC = "192.0.2.65", "192.0.2.66"             # 192.0.2.64/26: veth, R <-> kernel sender A
R_B, KDST = "192.0.2.129", "192.0.2.130"           # 192.0.2.128/26: veth, R <-> receiver B
TABLE = "cctun"

# Kernel sender (in A): cubic on the socket, bounded by bytes and seconds; samples TCP_INFO.
SENDER = textwrap.dedent("""
    import json, os, socket, struct, sys, time
    host, port, total, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    def info(s):   # struct tcp_info: 8 bytes of u8, then u32 rto(0) ... rtt(15) ... snd_cwnd(18) ... total_retrans(23)
        b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        u = struct.unpack_from("24I", b, 8)
        return {"rtt_us": u[15], "cwnd": u[18], "mss": u[2], "total_retrans": u[23]}
    block = os.urandom(1 << 18)
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"cubic")
    s.settimeout(secs + 30)
    s.connect((host, port))
    cc = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\\0").decode()
    t0 = time.monotonic(); end = t0 + secs; n = 0; rtts = []; cwnds = []; last = 0.0
    while n < total and (now := time.monotonic()) < end:
        k = min(len(block), total - n)
        s.sendall(block[:k]); n += k
        if now - last >= 0.02:
            i = info(s); rtts.append(i["rtt_us"]); cwnds.append(i["cwnd"]); last = now
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):          # the receiver's FIN: everything was read
        pass
    i = info(s)
    print(json.dumps({"sent": n, "secs": time.monotonic() - t0, "cc": cc, "retrans": i["total_retrans"],
                      "mss": i["mss"], "rtt_ms": [r / 1000 for r in rtts], "cwnd": cwnds}), flush=True)
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


def nft_script(loss_pct: float) -> str:
    """A fresh table (counters at zero) in R's forward hook: count every packet of the measured
    flow each way, drop ``loss_pct`` % of them at random (mod 10000, so fractions work)."""
    cut = round(loss_pct * 100)
    rules = []
    for name, match in (("data", f"ip daddr {KDST}"), ("ack", f"ip saddr {KDST}")):
        rules.append(f'{match} counter name "{name}_all"')
        if cut > 0:
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


def set_bottleneck(ns: str, dev: str, rate: str) -> None:
    """tbf on R's egress to B: ``rate``, a 32 KB bucket, a 10 ms queue at that rate (at least 64 KB)."""
    subprocess.run(in_netns(ns, ["tc", "qdisc", "del", "dev", dev, "root"]), capture_output=True, timeout=15)
    if rate != "none":
        bps = parse_rate(rate)
        limit = max(bps // 8 // 100, 65536)
        sh(ns, ["tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "32kb",
                "limit", str(limit)])


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

    def __call__(self, now: float) -> None:
        c = self.conn
        if c is not None and not self.done and self.t0 and time.monotonic() - self.t0 >= self.secs:
            self.total = min(self.total, self.sent)          # out of time: FIN after what was written
        super().__call__(now)
        if c is not None and now - self._last >= 0.02 and c.rtt.srtt is not None and self.sent < self.total:
            self.rtts.append(c.rtt.srtt * 1000)
            self.cwnds.append(c.cwnd // max(c.mss, 1))
            self._last = now


def receiver(procs: Procs, ns_b: str, port: int) -> subprocess.Popen:
    p = procs.popen(ns_b, [sys.executable, "-c", SINK, KDST, str(port)])
    line = wait_line(p, 20)
    if line != "ready":
        raise RuntimeError(f"receiver did not start: {line!r} {p.stderr.read() if p.poll() is not None else ''}")
    return p


def received(p: subprocess.Popen, timeout: float) -> tuple[int, float]:
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0 or not out.split():
        raise RuntimeError(f"receiver failed: {err[-1500:]}")
    n, secs = out.split()
    return int(n), float(secs)


def synack_run(procs: Procs, link: TunLink, ns_b: str, port: int, total: int, secs: float, seed: int) -> dict:
    p = receiver(procs, ns_b, port)
    stack = Stack([f"{SYNACK}/26"], secret=b"cc-tun-%d" % seed, config=TcpConfig(cc="cubic"))
    runner = StackRunner(stack, link)
    src = TimedSource(stack, (KDST, port), total, secs)
    runner.add_hook(src)
    runner.call_soon_threadsafe(lambda: src.start(runner.now()))
    tx_drop0 = link.counters.tx_dropped
    cpu0, wall0 = time.process_time(), time.monotonic()
    th = runner.start(timeout=secs + 40)
    try:
        n, dt = received(p, secs + 40)
        deadline = time.monotonic() + 10
        while not src.done and not src.error and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        runner.stop()
        th.join(10)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    if runner.error or src.error:
        raise RuntimeError(f"synack sender failed: {runner.error!r} {src.error!r}")
    c = src.conn
    if n != src.sent:
        raise RuntimeError(f"receiver counted {n} bytes, synack wrote {src.sent}")
    return {"bytes": n, "secs": dt, "retrans": c.total_retrans, "mss": c.mss, "cc": c.cc.name,
            "rtt_ms": src.rtts, "cwnd": src.cwnds, "cpu": cpu / wall if wall else 0.0,
            "tun_tx_dropped": link.counters.tx_dropped - tx_drop0}


def kernel_run(procs: Procs, ns_a: str, ns_b: str, port: int, total: int, secs: float) -> dict:
    p = receiver(procs, ns_b, port)
    s = procs.popen(ns_a, [sys.executable, "-c", SENDER, KDST, str(port), str(total), str(secs)])
    out, err = s.communicate(timeout=secs + 40)
    if s.returncode != 0:
        raise RuntimeError(f"kernel sender failed: {err[-1500:]}")
    r = json.loads(out)
    if r["cc"] != "cubic":
        raise RuntimeError(f"the kernel sender's socket uses {r['cc']!r}, not cubic")
    n, dt = received(p, 30)
    if n != r["sent"]:
        raise RuntimeError(f"receiver counted {n} bytes, kernel sender wrote {r['sent']}")
    r.update(bytes=n, secs=dt)
    return r


def median(xs: list[float]) -> float | None:
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def row(rate: str, loss: float, who: str, r: dict, cnt: dict) -> dict:
    d_all, d_drop = cnt.get("data_all", {}), cnt.get("data_drop", {})
    a_all, a_drop = cnt.get("ack_all", {}), cnt.get("ack_drop", {})
    data_pkts = d_all.get("packets", 0)
    return {
        "rate": rate, "loss": loss, "sender": who, "cc": r["cc"],
        "bytes": r["bytes"], "secs": r["secs"], "mbps": r["bytes"] * 8 / r["secs"] / 1e6 if r["secs"] else 0.0,
        "retrans": r["retrans"], "retrans_pct": 100 * r["retrans"] / data_pkts if data_pkts else 0.0,
        "rtt_ms": median(r["rtt_ms"]), "cwnd": median(r["cwnd"]),
        "data_pkts": data_pkts, "data_drops": d_drop.get("packets", 0),
        "data_bytes_per_pkt": d_all.get("bytes", 0) / data_pkts if data_pkts else 0.0,
        "ack_pkts": a_all.get("packets", 0), "ack_drops": a_drop.get("packets", 0),
        "cpu": r.get("cpu"), "tun_tx_dropped": r.get("tun_tx_dropped"),
    }


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.2f}" if b else "-"


def print_table(rows: list[dict]) -> None:
    print("| bottleneck | loss % | sender | goodput Mbit/s | synack/kernel | retrans (% of data pkts) "
          "| median SRTT ms | median cwnd pkts | data drops / pkts (%) | ACK drops / pkts (%) | synack CPU |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    kern = {(r["rate"], r["loss"]): r["mbps"] for r in rows if r["sender"] == "kernel"}
    for r in rows:
        k = kern.get((r["rate"], r["loss"]))
        ratio = f"{r['mbps'] / k:.2f}" if r["sender"] == "synack" and k else ""
        rtt = f"{r['rtt_ms']:.2f}" if r["rtt_ms"] is not None else "-"
        cwnd = f"{r['cwnd']:.0f}" if r["cwnd"] is not None else "-"
        cpu = f"{100 * r['cpu']:.0f} %" if r["cpu"] is not None else ""
        print(f"| {r['rate']} | {r['loss']:g} | {r['sender']} ({r['cc']}) | {r['mbps']:.1f} | {ratio} "
              f"| {r['retrans']} ({r['retrans_pct']:.2f}) | {rtt} | {cwnd} "
              f"| {r['data_drops']} / {r['data_pkts']} ({pct(r['data_drops'], r['data_pkts'])}) "
              f"| {r['ack_drops']} / {r['ack_pkts']} ({pct(r['ack_drops'], r['ack_pkts'])}) | {cpu} |", flush=True)


def setup(ns_r: str, ns_a: str, ns_b: str, tag: str) -> tuple[str, str]:
    """Veths A-R and R-B, addresses, routes, forwarding, CUBIC, offloads off. Returns R's device
    towards B (the bottleneck) and the kernel sender's device (for the offload check)."""
    from pyroute2 import IPRoute

    a_dev, ra_dev, rb_dev, b_dev = f"cca{tag}", f"ccra{tag}", f"ccrb{tag}", f"ccb{tag}"
    veth_pair(ns_a, ns_r, a_dev, ra_dev, f"{KSRC}/26", f"{R_A}/26")
    veth_pair(ns_r, ns_b, rb_dev, b_dev, f"{R_B}/26", f"{KDST}/26")
    for ns, gw in ((ns_a, R_A), (ns_b, R_B)):
        with IPRoute(netns=ns, flags=0) as ipr:
            ipr.route("add", dst="192.0.2.0", dst_len=24, gateway=gw)
    sh(ns_r, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    # The namespace default: a namespace other than the host's may only pick an algorithm in the
    # host-wide tcp_allowed_congestion_control list (EPERM otherwise), which this script leaves
    # alone. The kernel sender sets cubic on its socket (TCP_CONGESTION, allowed as root) and
    # reports what the socket really uses; the receiver only sends ACKs, its algorithm is idle.
    for ns in (ns_a, ns_b):
        subprocess.run(in_netns(ns, ["sysctl", "-qw", "net.ipv4.tcp_congestion_control=cubic"]),
                       capture_output=True, timeout=15)
    sh(ns_a, [sys.executable, "-c", OFFLOADS_OFF, a_dev])
    sh(ns_r, [sys.executable, "-c", OFFLOADS_OFF, ra_dev, rb_dev])
    sh(ns_b, [sys.executable, "-c", OFFLOADS_OFF, b_dev])
    return rb_dev, a_dev


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=40, help="at most this many MiB per transfer (default 40)")
    ap.add_argument("--max-secs", type=float, default=20, help="at most this many seconds per transfer (default 20)")
    ap.add_argument("--loss", type=float, nargs="+", default=[0, 1], help="loss %% each way (default 0 1)")
    ap.add_argument("--rate", nargs="+", default=["none", "100mbit", "50mbit", "20mbit"],
                    help="tbf bottleneck rates, 'none' for no qdisc (default none 100mbit 50mbit 20mbit)")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("needs root (TUN device, network namespaces)")
    for r in args.rate:
        if r != "none":
            parse_rate(r)
    total = int(args.mb * (1 << 20)) // (1 << 20) * (1 << 20) or (1 << 20)
    tag = str(os.getpid() % 100000)
    print(f"cc_tun: at most {total >> 20} MiB or {args.max_secs:g} s per transfer, Python "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, kernel {os.uname().release}", flush=True)
    rows: list[dict] = []
    procs = Procs()
    remove_stale()
    with private_netns() as ns_r, private_netns() as ns_a, private_netns() as ns_b:
        link = None
        try:
            rb_dev, _ = setup(ns_r, ns_a, ns_b, tag)
            link = TunLink(f"cct{tag}", offload=False, netns=ns_r, addresses=[f"{R_TUN}/26"])
            port = PORT
            for rate in args.rate:
                set_bottleneck(ns_r, rb_dev, rate)
                for loss in args.loss:
                    for who in ("synack", "kernel"):
                        sh(ns_r, ["nft", "-f", "-"], stdin=nft_script(loss))
                        if who == "synack":
                            r = synack_run(procs, link, ns_b, port, total, args.max_secs, port)
                        else:
                            r = kernel_run(procs, ns_a, ns_b, port, total, args.max_secs)
                        port += 1
                        rows.append(row(rate, loss, who, r, nft_counters(ns_r)))
                        procs.kill_all()
                        print(f"  {rate} {loss:g}% {who}: {rows[-1]['mbps']:.1f} Mbit/s in {r['secs']:.1f} s",
                              file=sys.stderr, flush=True)
        finally:
            procs.kill_all()
            if link is not None:
                link.close()
    print_table(rows)
    refused = sum(r["tun_tx_dropped"] or 0 for r in rows)
    if refused:
        print(f"(the TUN device refused {refused} of synack's writes: losses nft did not count)")
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
