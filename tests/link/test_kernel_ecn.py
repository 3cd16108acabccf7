"""ECN (RFC 3168 §6.1) between synack and the Linux kernel over TUN, in a private namespace. The
kernel says in TCP_INFO whether ECN was negotiated (TCPI_OPT_ECN) and whether ECT packets arrived
(TCPI_OPT_ECN_SEEN): that second bit is the kernel's word that synack's data left ECT(0)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from synack.link.netns import kernel_peer
from synack.link.runner import StackRunner
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.tcp.states import State

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                       reason="needs root (TUN device, network namespaces); runs in CI"),
]

SECRET = b"kernel-ecn-test"
PORT = 7100
TCPI_OPT_ECN, TCPI_OPT_ECN_SEEN = 8, 16

# struct tcp_info starts with six u8: state, ca_state, retransmits, probes, backoff, options
SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.listen(1)
    print("ready", flush=True)
    c, _ = s.accept()
    n = 0
    while b := c.recv(65536):
        n += len(b)
    opts = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[5]
    c.sendall(f"{n} {opts}".encode())
    c.close()
    print(n, opts, flush=True)
""")

CLIENT = textwrap.dedent("""
    import socket, sys
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
    c.sendall(b"e" * int(sys.argv[3]))
    c.shutdown(socket.SHUT_WR)
    got = b""
    while b := c.recv(65536):
        got += b
    opts = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[5]
    print(len(got), opts, flush=True)
""")


def test_synack_requests_ecn_from_a_kernel_server():
    """ecn="on": ECN-setup SYN; the kernel (tcp_ecn=2, accept) agrees and sees our ECT(0)."""
    n = 300_000
    with kernel_peer(ipv6=False) as peer:
        srv = peer.popen([sys.executable, "-c", SERVER, peer.kernel_v4, str(PORT)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert srv.stdout.readline().strip() == "ready"
        stack = Stack(peer.stack_addresses, secret=SECRET, config=TcpConfig(ecn="on"))
        runner = StackRunner(stack, peer.link)
        box: dict = {"got": b""}

        def hook(now: float) -> None:
            while stack.next_event() is not None:
                pass
            c = box.get("conn")
            if c is None:
                return
            if box.setdefault("sent", 0) < n:
                box["sent"] += c.send(b"x" * (n - box["sent"]))
            if box["sent"] == n and not box.get("fin") and c.state is State.ESTABLISHED:
                c.shutdown_write(now)
                box["fin"] = True
            while (d := c.receive(65536)):
                box["got"] += d
            stack.touch(c)

        def start() -> None:
            box["conn"] = stack.connect((peer.kernel_v4, PORT), runner.now())

        runner.add_hook(hook)
        runner.call_soon_threadsafe(start)
        t = runner.start(timeout=60)
        try:
            out, err = srv.communicate(timeout=40)
            deadline = time.monotonic() + 10
            while not box["got"] and time.monotonic() < deadline:
                time.sleep(0.05)
            ecn_ok = runner.submit(lambda: box["conn"].ecn_ok).result(5)
        finally:
            runner.stop()
            t.join(10)
            runner.close()
        assert srv.returncode == 0, err[-2000:]
        got, opts = map(int, out.split())
        assert got == n
        assert ecn_ok
        assert opts & TCPI_OPT_ECN and opts & TCPI_OPT_ECN_SEEN, f"kernel tcpi_options {opts:#x}"
        assert box["got"].decode() == f"{n} {opts}"


def test_kernel_client_requesting_ecn_is_accepted():
    """The kernel with net.ipv4.tcp_ecn=1 asks; synack's default ("accept") agrees."""
    n = 200_000
    with kernel_peer(ipv6=False) as peer:
        r = peer.run(["sysctl", "-w", "net.ipv4.tcp_ecn=1"], timeout=10)
        assert r.returncode == 0, r.stderr
        stack = Stack(peer.stack_addresses, secret=SECRET)
        lst = stack.listen(PORT)
        runner = StackRunner(stack, peer.link)
        conns: list = []
        pending: dict = {}

        def echo(now: float) -> None:
            while stack.next_event() is not None:
                pass
            while (c := stack.accept(lst)) is not None:
                conns.append(c)
                pending[c] = b""
            for c in conns:
                if c.state not in (State.ESTABLISHED, State.CLOSE_WAIT):
                    continue
                while (d := c.receive(65536)):
                    pending[c] += d
                if pending[c]:
                    k = c.send(pending[c])
                    pending[c] = pending[c][k:]
                if c.state is State.CLOSE_WAIT and not pending[c]:
                    c.close(now)
                stack.touch(c)

        runner.add_hook(echo)
        t = runner.start(timeout=60)
        try:
            r = peer.run([sys.executable, "-c", CLIENT, peer.stack_v4, str(PORT), str(n)], timeout=40)
            ecn_ok = runner.submit(lambda: [c.ecn_ok for c in conns]).result(5)
        finally:
            runner.stop()
            t.join(10)
            runner.close()
        assert r.returncode == 0, r.stderr[-2000:]
        got, opts = map(int, r.stdout.split())
        assert got == n
        assert ecn_ok == [True]
        assert opts & TCPI_OPT_ECN and opts & TCPI_OPT_ECN_SEEN, f"kernel tcpi_options {opts:#x}"
