"""Throughput of synack over TUN against the Linux kernel, next to kernel <-> kernel over veth.

    sudo .venv/bin/python bench/tun_throughput.py [--mb 200] [--only tun|veth]

For offloads off and on, one ~200 MB transfer each way between synack (StackRunner on a TUN
device) and a Python socket program in a private namespace; then the same Python sockets between
two namespaces joined by a veth pair (and iperf3 there, if it is installed). Prints Gbit/s.
Everything lives in namespaces this script creates and removes (192.0.2.0/24 only).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from synack.link.netns import in_netns, kernel_peer, private_netns, veth_pair  # noqa: E402
from synack.link.runner import StackRunner  # noqa: E402
from synack.stack.host import Acceptable, Stack  # noqa: E402
from synack.tcp.config import TcpConfig  # noqa: E402
from synack.tcp.errors import LocalError  # noqa: E402

PORT = 5201
TSO_MAX = 65535 - 40 - 60      # IPv4 total length limit, less the largest IP and TCP headers
BLOCK = os.urandom(1 << 20)

# kernel side programs: print "ready" when listening, then "<bytes> <seconds>" at the end
SINK = textwrap.dedent("""
    import socket, sys, time
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((sys.argv[1], int(sys.argv[2]))); ls.listen(1); ls.settimeout(120)
    print("ready", flush=True)
    s, _ = ls.accept(); t0 = time.monotonic(); n = 0
    buf = bytearray(1 << 20)
    while (k := s.recv_into(buf)):
        n += k
    print(n, time.monotonic() - t0, flush=True)
""")
SOURCE = textwrap.dedent("""
    import os, socket, sys, time
    host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    block = os.urandom(1 << 20)
    s = socket.create_connection((host, port), timeout=120)
    t0 = time.monotonic(); n = 0
    while n < total:
        s.sendall(block); n += len(block)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):          # the receiver's FIN: everything was read
        pass
    print(n, time.monotonic() - t0, flush=True)
""")


class Sink:
    """synack: accept, read and discard, FIN after the peer's."""

    def __init__(self, stack: Stack, port: int) -> None:
        self.stack, self.lst = stack, stack.listen(port)
        self.conns: list = []
        self.got = 0

    def __call__(self, now: float) -> None:
        st = self.stack
        while (ev := st.next_event()) is not None:
            if isinstance(ev[1], Acceptable):
                while (c := st.accept(self.lst)) is not None:
                    self.conns.append(c)
        for c in list(self.conns):
            acted = False
            try:
                for _ in range(256):
                    d = c.receive(1 << 20)
                    if not d:
                        break
                    self.got += len(d)
                    acted = True
                if d == b"":
                    c.shutdown_write(now)
                    self.conns.remove(c)
                    acted = True
            except LocalError:
                self.conns.remove(c)
            if acted:
                st.touch(c)


class Source:
    """synack: connect, send ``total`` bytes of ``BLOCK``, FIN, wait for the peer's FIN."""

    def __init__(self, stack: Stack, remote: tuple[str, int], total: int) -> None:
        self.stack, self.remote, self.total = stack, remote, total
        self.conn = None
        self.sent = 0
        self.done = False
        self.t0 = self.t1 = 0.0
        self.error: Exception | None = None

    def start(self, now: float) -> None:
        self.conn = self.stack.connect(self.remote, now)
        self.t0 = time.monotonic()

    def __call__(self, now: float) -> None:
        st, c = self.stack, self.conn
        while st.next_event() is not None:
            pass
        if c is None or self.done or self.error:
            return
        acted = False
        try:
            while self.sent < self.total:
                off = self.sent % len(BLOCK)
                n = c.send(memoryview(BLOCK)[off:])
                if not n:
                    break
                self.sent += n
                acted = True
            if self.sent >= self.total and c._fin_off is None and c.state.synchronized:
                c.shutdown_write(now)
                acted = True
            d = c.receive(65536)
            if d == b"":
                self.done, self.t1 = True, time.monotonic()
        except LocalError as e:
            self.error = e
        if acted:
            st.touch(c)


def gbps(nbytes: float, secs: float) -> float:
    return nbytes * 8 / secs / 1e9


def wait_line(p: subprocess.Popen, timeout: float) -> str:
    import select
    r, _, _ = select.select([p.stdout], [], [], timeout)
    if not r:
        raise TimeoutError("no output from namespace process")
    return p.stdout.readline().strip()


def tun_runs(total: int, offload: bool, config: TcpConfig | None) -> dict[str, float]:
    res: dict[str, float] = {}
    with kernel_peer(offload=offload) as peer:
        # kernel -> synack
        stack = Stack(peer.stack_addresses, secret=b"bench", config=config)
        runner = StackRunner(stack, peer.link)
        sink = Sink(stack, PORT)
        runner.add_hook(sink)
        th = runner.start(timeout=600)
        p = peer.popen([sys.executable, "-c", SOURCE, peer.stack_v4, str(PORT), str(total)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=600)
        runner.stop(); th.join(10); runner.close()
        if p.returncode != 0 or runner.error:
            raise RuntimeError(f"kernel->synack failed: {err[-1500:]} {runner.error!r}")
        n, secs = out.split()
        assert sink.got == int(n), (sink.got, n)
        res["kernel->synack"] = gbps(int(n), float(secs))
        res["rx_gso"] = peer.link.counters.rx_gso
        # synack -> kernel (a fresh stack: new ports, no TIME-WAIT to think about)
        srv = peer.popen([sys.executable, "-c", SINK, peer.kernel_v4, str(PORT + 1)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert wait_line(srv, 20) == "ready"
        stack = Stack(peer.stack_addresses, secret=b"bench2", config=config)
        runner = StackRunner(stack, peer.link)
        src = Source(stack, (peer.kernel_v4, PORT + 1), total)
        runner.add_hook(src)
        runner.call_soon_threadsafe(lambda: src.start(runner.now()))
        th = runner.start(timeout=600)
        out, err = srv.communicate(timeout=600)
        deadline = time.monotonic() + 30
        while not src.done and time.monotonic() < deadline and not src.error:
            time.sleep(0.01)
        runner.stop(); th.join(10); runner.close()
        if srv.returncode != 0 or runner.error or src.error:
            raise RuntimeError(f"synack->kernel failed: {err[-1500:]} {runner.error!r} {src.error!r}")
        n, secs = out.split()
        assert int(n) == total, (n, total)
        res["synack->kernel"] = gbps(int(n), float(secs))
        conn = src.conn
        res["retrans"] = conn.total_retrans
        res["tx_gso"] = peer.link.counters.tx_gso
    return res


def veth_runs(total: int) -> dict[str, float]:
    """Kernel <-> kernel: two namespaces joined by a veth pair, Python sockets (and iperf3)."""
    res: dict[str, float] = {}
    with private_netns() as a, private_netns() as b:
        veth_pair(a, b, f"sva{os.getpid() % 10000}", f"svb{os.getpid() % 10000}")
        procs: list[subprocess.Popen] = []
        try:
            time.sleep(0.2)
            srv = subprocess.Popen(in_netns(a, [sys.executable, "-c", SINK, "192.0.2.1", str(PORT)]),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(srv)
            assert wait_line(srv, 20) == "ready"
            cli = subprocess.run(in_netns(b, [sys.executable, "-c", SOURCE, "192.0.2.1", str(PORT), str(total)]),
                                 capture_output=True, text=True, timeout=300)
            out, _ = srv.communicate(timeout=60)
            n, secs = out.split()
            res["python sockets"] = gbps(int(n), float(secs))
            if shutil.which("iperf3"):
                s = subprocess.Popen(in_netns(a, ["iperf3", "-s", "-1", "-B", "192.0.2.1"]),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                procs.append(s)
                time.sleep(0.5)
                r = subprocess.run(in_netns(b, ["iperf3", "-c", "192.0.2.1", "-n", str(total), "-J"]),
                                   capture_output=True, text=True, timeout=120)
                import json
                res["iperf3"] = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
            del cli
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait(5)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="megabytes per transfer (default 200)")
    ap.add_argument("--only", choices=["tun", "veth"])
    ap.add_argument("--rcv-buf", type=int, default=None, help="synack TcpConfig.rcv_buf/snd_buf (bytes)")
    ap.add_argument("--no-tso", action="store_true", help="offloads on, but no TSO (TcpConfig.tso_max=0)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (TUN device, network namespaces)")
    total = args.mb << 20
    config = TcpConfig(rcv_buf=args.rcv_buf, snd_buf=args.rcv_buf) if args.rcv_buf else None
    print(f"transfer: {args.mb} MiB each, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if args.only != "veth":
        for offload in (False, True):
            t0 = time.monotonic()
            cfg = config
            if offload and not args.no_tso:
                # TSO: segments up to 64 KB for the TUN link to hand over as GSO super-segments
                cfg = (config or TcpConfig()).copy(tso_max=TSO_MAX)
            r = tun_runs(total, offload, cfg)
            print(f"synack over TUN, offloads {'on ' if offload else 'off'}: "
                  f"kernel->synack {r['kernel->synack']:.3f} Gbit/s   synack->kernel {r['synack->kernel']:.3f} Gbit/s"
                  f"   (rx super-segments {r['rx_gso']}, tx super-segments {r['tx_gso']}, retransmissions {r['retrans']}, {time.monotonic() - t0:.0f} s)",
                  flush=True)
    if args.only != "tun":
        r = veth_runs(total)
        line = "  ".join(f"{k} {v:.2f} Gbit/s" for k, v in r.items())
        print(f"kernel <-> kernel over veth: {line}", flush=True)


if __name__ == "__main__":
    main()
