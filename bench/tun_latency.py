"""How long synack's TUN path adds to a round trip: ICMP echo to synack next to the kernel's own.

    sudo .venv/bin/python bench/tun_latency.py [--count 300] [--gap 0.005 0.05]

A private namespace (192.0.2.0/24) with the kernel at one end of a TUN device and synack at the
other, driven by ``StackRunner`` as ``synack serve`` drives it. A small raw-socket pinger runs
in the namespace and times ICMP echo requests (RFC 792) with ``time.perf_counter``: to synack
(kernel -> TUN -> poll wakes synack -> Python parses and answers -> TUN -> kernel), and to the
namespace's own address (the kernel alone, through loopback) as the floor. ``--gap`` is the pause
between requests: a longer one lets the CPUs go idle between them, as a sender waiting for ACKs
does. Everything it makes (namespace, TUN device, pinger process) is removed at the end.

Not a test: the figures depend on the machine. docs/congestion.md uses them to explain part of
the longer round trip synack's senders see on the real paths of bench/cc_tun.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from synack.link.netns import kernel_peer
from synack.link.runner import StackRunner
from synack.stack.host import Stack

PINGER = textwrap.dedent("""
    import socket, struct, sys, time
    dst, n, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(1.0)
    def csum(b):
        t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        t = (t >> 16) + (t & 0xFFFF)
        return ~(t + (t >> 16)) & 0xFFFF
    rtts, data = [], b"synack-latency-probe" + bytes(36)
    for i in range(n):
        body = struct.pack("!BBHHH", 8, 0, 0, 4242, i) + data
        pkt = body[:2] + struct.pack("!H", csum(body)) + body[4:]
        t0 = time.perf_counter()
        s.sendto(pkt, (dst, 0))
        deadline = t0 + 1.0
        while time.perf_counter() < deadline:
            try:
                r = s.recv(2048)
            except socket.timeout:
                break
            ihl = (r[0] & 15) * 4
            if r[ihl] == 0 and struct.unpack("!HH", r[ihl + 4:ihl + 8]) == (4242, i):
                rtts.append((time.perf_counter() - t0) * 1000)
                break
        time.sleep(gap)
    print(len(rtts), *sorted(rtts))
""")


def summary(name: str, gap: float, sent: int, out: str) -> str:
    fields = out.split()
    if not fields:
        return f"  {name:<28} gap {gap * 1000:5.1f} ms: no output"
    got, rtts = int(fields[0]), [float(x) for x in fields[1:]]
    if not rtts:
        return f"  {name:<28} gap {gap * 1000:5.1f} ms: 0/{sent} replies"
    pct = lambda q: rtts[min(int(len(rtts) * q), len(rtts) - 1)]   # noqa: E731
    return (f"  {name:<28} gap {gap * 1000:5.1f} ms: {got}/{sent} replies, min {rtts[0]:.3f}  "
            f"median {pct(0.5):.3f}  p90 {pct(0.9):.3f}  p99 {pct(0.99):.3f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=300, help="echo requests per row (default 300)")
    ap.add_argument("--gap", type=float, nargs="+", default=[0.005, 0.05],
                    help="seconds between requests, one row each (default 0.005 0.05)")
    a = ap.parse_args(argv)
    if not 1 <= a.count <= 100_000 or any(not 0 <= g <= 1 for g in a.gap):
        ap.error("--count must be 1..100000 and every --gap 0..1 s")
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("tun_latency: needs root and /dev/net/tun", file=sys.stderr)
        return 1
    print(f"ICMP echo round trips, {a.count} per row, raw socket in a private namespace")
    with kernel_peer(offload=False, ipv6=False) as peer:
        runner = StackRunner(Stack(peer.stack_addresses, secret=b"tun-latency-1234"), peer.link)
        runner.start(timeout=60 + a.count * (max(a.gap) + 1.0) * 3)
        try:
            for gap in a.gap:
                for name, dst in (("synack (TUN, Python)", peer.stack_v4),
                                  ("the kernel's own address", peer.kernel_v4)):
                    r = peer.run([sys.executable, "-c", PINGER, dst, str(a.count), str(gap)],
                                 timeout=30 + a.count * (gap + 1.0))
                    print(summary(name, gap, a.count, r.stdout if r.returncode == 0 else ""), flush=True)
                    if r.returncode != 0:
                        print(f"    pinger failed: {r.stderr.strip()[-300:]}")
        finally:
            runner.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
