"""The delay line of bench/delayline.py on its own: two namespaces joined only by it (25 ms each
way), a kernel TCP connection across it. The handshake and the kernel's SRTT take at least the
50 ms round trip, the bytes arrive intact, the relay counted both directions and kept up, and the
devices go with the relay."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _delayline_module():
    """bench/delayline.py loaded by path: putting bench/ on sys.path would let its http.py
    shadow the standard library's http package for every test collected after this one."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_delayline", BENCH / "delayline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                       reason="needs root (TUN device, network namespaces); runs in CI"),
]

SERVER = textwrap.dedent("""
    import hashlib, socket, sys
    ls = socket.socket(); ls.bind(("192.0.2.2", 5400)); ls.listen(1); ls.settimeout(10)
    print("ready", flush=True)
    s, _ = ls.accept(); s.settimeout(10); h = hashlib.sha256(); n = 0
    while (d := s.recv(65536)):
        h.update(d); n += len(d)
    s.close()
    print(n, h.hexdigest(), flush=True)
""")
CLIENT = textwrap.dedent("""
    import hashlib, os, socket, struct, time
    data = os.urandom(1 << 20)
    s = socket.socket(); s.settimeout(10)
    t0 = time.monotonic(); s.connect(("192.0.2.2", 5400)); t1 = time.monotonic()
    s.sendall(data)
    rtt = struct.unpack_from("24I", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 8)[15]
    s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
    print(t1 - t0, rtt / 1e6, len(data), hashlib.sha256(data).hexdigest(), flush=True)
""")


def test_delay_line_tcp_transfer():
    DelayLine = _delayline_module().DelayLine
    from synack.link.netns import in_netns, private_netns, remove_stale

    remove_stale()
    tag = os.getpid() % 100000
    procs = []
    with private_netns() as a, private_netns() as b:
        line = DelayLine(0.025, (a, f"dla{tag}", ["192.0.2.1/24"], []), (b, f"dlb{tag}", ["192.0.2.2/24"], []))
        try:
            names = line.names
            line.stats()
            srv = subprocess.Popen(in_netns(b, [sys.executable, "-c", SERVER]), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
            procs.append(srv)
            assert srv.stdout.readline().strip() == "ready"
            cli = subprocess.run(in_netns(a, [sys.executable, "-c", CLIENT]), capture_output=True, text=True,
                                 timeout=20)
            assert cli.returncode == 0, cli.stderr
            out, err = srv.communicate(timeout=20)
            assert srv.returncode == 0, err
            st = line.stats()
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.communicate()
            line.close()
        connect, srtt, n, digest = cli.stdout.split()
        assert 0.050 <= float(connect) < 1.0, cli.stdout          # SYN, SYN-ACK: one round trip
        assert float(srtt) >= 0.050, cli.stdout
        assert out.split() == [n, digest]                          # every byte, in order
        assert st["a->b"]["packets"] >= (1 << 20) // 1500 and st["b->a"]["packets"] > 10, st
        assert st["a->b"]["bytes"] > 1 << 20, st
        for d in ("a->b", "b->a"):
            assert st[d]["write_errors"] == 0, st
            assert st[d]["max_lag_ms"] < 25, st                    # behind by less than the delay
        # the relay is gone and the devices with it (in namespaces still there)
        for ns, name in ((a, names[0]), (b, names[1])):
            r = subprocess.run(in_netns(ns, ["ip", "link", "show", name]), capture_output=True, text=True)
            assert r.returncode != 0, r.stdout
