"""synack against the Linux TCP stack, over a TUN device whose kernel side lives in a private
network namespace (``synack.link.netns.kernel_peer``).

Each test builds its own namespace (192.0.2.1 / 2001:db8::1 are the kernel, 192.0.2.2 /
2001:db8::2 are synack), runs the stack on a ``StackRunner`` thread and Python socket programs
inside the namespace, checks the bytes with SHA-256 and removes everything afterwards. Needs
root; skipped without it unless CI is set (CI runs as root and must run them).
"""

from __future__ import annotations

import hashlib
import os
import random
import select
import subprocess
import sys
import textwrap
import time

import pytest

from synack.link.netns import kernel_peer
from synack.testing.peers import ECHO_CLIENT, SINK_SERVER
from synack.link.runner import StackRunner
from synack.stack.host import Acceptable, Stack
from synack.tcp.errors import LocalError
from synack.tcp.states import State

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                       reason="needs root (TUN device, network namespaces); runs in CI"),
]

SECRET = b"kernel-interop-test"
PORT = 7000


def data_for(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


# ------------------------------------------------------------------ synack side (loop thread)

class EchoService:
    """A runner hook: accept on ``port``, send back everything received, FIN after the peer's.
    Reads only while less than ``max_pending`` bytes wait to be sent (flow control holds)."""

    def __init__(self, stack: Stack, port: int, max_pending: int = 1 << 20) -> None:
        self.stack = stack
        self.listener = stack.listen(port)
        self.max_pending = max_pending
        self.conns: dict = {}            # conn -> [pending bytearray, eof seen, FIN queued]
        self.accepted: list = []
        self.finished: list = []
        self.errors: list[Exception] = []
        self.echoed = 0

    def __call__(self, now: float) -> None:
        st = self.stack
        while (ev := st.next_event()) is not None:
            if isinstance(ev[1], Acceptable):
                while (c := st.accept(self.listener)) is not None:
                    self.conns[c] = [bytearray(), False, False]
                    self.accepted.append(c)
        for c, s in list(self.conns.items()):
            pend = s[0]
            acted = False
            try:
                for _ in range(64):
                    moved = False
                    if pend:
                        n = c.send(bytes(pend[:262144]))
                        if n:
                            del pend[:n]
                            self.echoed += n
                            moved = acted = True
                    if not s[1] and len(pend) < self.max_pending:
                        d = c.receive(65536)
                        if d == b"":
                            s[1] = acted = True
                        elif d:
                            pend += d
                            moved = acted = True
                    if not moved:
                        break
                if s[1] and not pend and not s[2]:
                    c.shutdown_write(now)
                    s[2] = acted = True
            except LocalError as e:
                self.errors.append(e)
                del self.conns[c]
                continue
            if acted:
                st.touch(c)
            if c.state in (State.CLOSED, State.TIME_WAIT):
                self.finished.append(c)
                del self.conns[c]


class Sender:
    """A runner hook: connect to the kernel, send ``data``, FIN, collect what comes back."""

    def __init__(self, stack: Stack, remote: tuple[str, int], data: bytes) -> None:
        self.stack, self.remote, self.data = stack, remote, memoryview(data)
        self.conn = None
        self.sent = 0
        self.received = bytearray()
        self.eof = False
        self.fin = False
        self.error: Exception | None = None

    def start(self, now: float) -> None:
        self.conn = self.stack.connect(self.remote, now)

    def __call__(self, now: float) -> None:
        st, c = self.stack, self.conn
        while st.next_event() is not None:
            pass
        if c is None or self.error is not None:
            return
        acted = False
        try:
            while self.sent < len(self.data):
                n = c.send(self.data[self.sent:self.sent + 262144])
                if not n:
                    break
                self.sent += n
                acted = True
            if self.sent == len(self.data) and not self.fin and c.state is not State.SYN_SENT:
                c.shutdown_write(now)
                self.fin = acted = True
            while not self.eof:
                d = c.receive(65536)
                if d is None:
                    break
                acted = True
                if d == b"":
                    self.eof = True
                else:
                    self.received += d
        except LocalError as e:
            self.error = e
        if acted:
            st.touch(c)


# ------------------------------------------------------------------ kernel side (namespace)

CLIENT, SERVER = ECHO_CLIENT, SINK_SERVER


def readline(p: subprocess.Popen, timeout: float) -> str:
    r, _, _ = select.select([p.stdout], [], [], timeout)
    if not r:
        raise TimeoutError(f"no output from {p.args[-4:]} in {timeout} s")
    return p.stdout.readline()


def finish(p: subprocess.Popen, timeout: float) -> tuple[str, str]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=5)
        raise AssertionError(f"namespace process timed out after {timeout} s: {err[-2000:]}")
    return out, err


def ss(peer) -> str:
    return peer.run(["ss", "-tan"], timeout=10).stdout


def running(peer, **kw):
    stack = Stack(peer.stack_addresses, secret=SECRET, **kw)
    return stack, StackRunner(stack, peer.link)


def stop(runner, thread) -> None:
    runner.stop()
    thread.join(10)
    assert not thread.is_alive(), "runner thread did not stop"
    runner.close()
    if runner.error is not None:
        raise runner.error


def kernel_echo(peer, stack, link, hosts, n: int, seed: int, *, client_timeout: float,
                runner_timeout: float, during=None):
    """synack's echo service on ``link``; for each of ``hosts`` the kernel client in the
    namespace sends ``n`` seeded bytes and must get exactly them back (SHA-256). ``during()``
    runs while the runner is still up; returns (the service, what ``during`` returned)."""
    runner = StackRunner(stack, link)
    echo = EchoService(stack, PORT)
    runner.add_hook(echo)
    t = runner.start(timeout=runner_timeout)
    extra = None
    try:
        for host in hosts:
            p = peer.popen([sys.executable, "-c", CLIENT, host, str(PORT), str(n), str(seed)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, err = finish(p, client_timeout)
            assert p.returncode == 0, err[-3000:]
            got, digest = out.split()
            assert int(got) == n
            assert digest == hashlib.sha256(data_for(seed, n)).hexdigest()
        if during is not None:
            extra = during()
    finally:
        stop(runner, t)
    return echo, extra


# ------------------------------------------------------------------ tests

@pytest.mark.parametrize("offload", [True, False], ids=["offload", "no-offload"])
@pytest.mark.parametrize("family", [4, 6], ids=["v4", "v6"])
def test_kernel_client_echo(offload, family):
    """(b, e, f) kernel client -> synack echo service: bytes come back intact."""
    n, seed = 4_000_000, 11
    with kernel_peer(offload=offload) as peer:
        host = peer.stack_v4 if family == 4 else peer.stack_v6
        echo, _ = kernel_echo(peer, Stack(peer.stack_addresses, secret=SECRET), peer.link, [host], n, seed,
                              client_timeout=100, runner_timeout=120)
        assert not echo.errors
        if offload:
            assert peer.link.counters.rx_gso > 0, "no super-segment arrived with offloads on"


@pytest.mark.parametrize("offload", [True, False], ids=["offload", "no-offload"])
@pytest.mark.parametrize("family", [4, 6], ids=["v4", "v6"])
def test_synack_client_to_kernel_server(offload, family):
    """(c, e, f) synack connects to a kernel server and sends; the server's digest matches."""
    n, seed = 3_000_000, 12
    data = data_for(seed, n)
    with kernel_peer(offload=offload) as peer:
        host = peer.kernel_v4 if family == 4 else peer.kernel_v6
        srv = peer.popen([sys.executable, "-c", SERVER, host, str(PORT)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert readline(srv, 20).strip() == "ready"
        stack, runner = running(peer)
        snd = Sender(stack, (host, PORT), data)
        runner.add_hook(snd)
        runner.call_soon_threadsafe(lambda: snd.start(runner.now()))
        t = runner.start(timeout=120)
        try:
            out, err = finish(srv, 100)
            assert srv.returncode == 0, err[-3000:]
            deadline = time.monotonic() + 20
            while not snd.eof and time.monotonic() < deadline and snd.error is None:
                time.sleep(0.05)
        finally:
            stop(runner, t)
        assert snd.error is None, snd.error
        expect = f"{n} {hashlib.sha256(data).hexdigest()}"
        assert out.strip() == expect
        assert snd.received.decode().strip() == expect


def test_connection_refused():
    """(d) a kernel client connecting to a closed synack port gets ECONNREFUSED, v4 and v6."""
    code = textwrap.dedent("""
        import errno, socket, sys
        for host in sys.argv[1:]:
            try:
                socket.create_connection((host, 9), timeout=10)
            except ConnectionRefusedError as e:
                print("refused", e.errno == errno.ECONNREFUSED)
            else:
                print("connected")
    """)
    with kernel_peer() as peer:
        stack, runner = running(peer)
        t = runner.start(timeout=60)
        try:
            r = peer.run([sys.executable, "-c", code, peer.stack_v4, peer.stack_v6], timeout=30)
        finally:
            stop(runner, t)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:2] == ["refused True", "refused True"]
        assert stack.stats["rst_out"] == 2


NFT_LOSS = [
    ["nft", "add", "table", "inet", "t"],
    ["nft", "add", "chain", "inet", "t", "c", "{ type filter hook input priority 0; }"],
    ["nft", "add", "rule", "inet", "t", "c", "ip", "saddr", "192.0.2.2", "numgen", "random", "mod", "100",
     "<", "2", "drop"],
    ["nft", "add", "chain", "inet", "t", "o", "{ type filter hook output priority 0; }"],
    ["nft", "add", "rule", "inet", "t", "o", "ip", "daddr", "192.0.2.2", "numgen", "random", "mod", "100",
     "<", "2", "drop"],
]


@pytest.mark.parametrize("offload", [True, False], ids=["offload", "no-offload"])
def test_transfer_with_loss(offload):
    """(g) 2% loss each way (nftables in the namespace): the echo is still byte-exact."""
    n, seed = 2_000_000, 13
    with kernel_peer(offload=offload) as peer:
        for cmd in NFT_LOSS:
            r = peer.run(cmd, timeout=10)
            assert r.returncode == 0, (cmd, r.stderr)
        echo, counters = kernel_echo(peer, Stack(peer.stack_addresses, secret=SECRET), peer.link,
                                     [peer.stack_v4], n, seed, client_timeout=140, runner_timeout=150,
                                     during=lambda: peer.run(["nft", "list", "ruleset"], timeout=10).stdout)
        assert len(echo.accepted) == 1
        assert echo.accepted[0].total_retrans > 0, f"2% loss but synack never retransmitted: {counters}"


def test_close_kernel_first_leaves_kernel_in_time_wait():
    """(h) the kernel sends FIN first (echo client): the kernel ends in TIME-WAIT, synack CLOSED."""
    with kernel_peer() as peer:
        stack, runner = running(peer)
        echo = EchoService(stack, PORT)
        runner.add_hook(echo)
        t = runner.start(timeout=60)
        try:
            r = peer.run([sys.executable, "-c", CLIENT, peer.stack_v4, str(PORT), "10000", "1"], timeout=30)
            assert r.returncode == 0, r.stderr
            deadline = time.monotonic() + 10
            while not echo.finished and time.monotonic() < deadline:
                time.sleep(0.02)
            table = ss(peer)
            states = runner.submit(lambda: [c.state for c in echo.finished]).result(5)
        finally:
            stop(runner, t)
        tw = [line for line in table.splitlines() if line.startswith("TIME-WAIT")]
        assert any(f"192.0.2.2:{PORT}" in line for line in tw), table
        assert states == [State.CLOSED]


def test_close_synack_first_leaves_synack_in_time_wait():
    """(h) synack sends FIN first: synack ends in TIME-WAIT; the kernel has no TIME-WAIT entry."""
    code = textwrap.dedent("""
        import socket, sys
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
        got = b""
        while b := s.recv(65536):
            got += b
        s.close()
        print(got.decode())
    """)
    with kernel_peer() as peer:
        stack, runner = running(peer)
        lst = stack.listen(PORT)
        conns = []

        def greet(now):
            while stack.next_event() is not None:
                pass
            while (c := stack.accept(lst)) is not None:
                c.send(b"hello from synack")
                c.close(now)
                stack.touch(c)
                conns.append(c)

        runner.add_hook(greet)
        t = runner.start(timeout=60)
        try:
            r = peer.run([sys.executable, "-c", code, peer.stack_v4, str(PORT)], timeout=30)
            assert r.returncode == 0, r.stderr
            deadline = time.monotonic() + 10
            state = None
            while time.monotonic() < deadline:
                state = runner.submit(lambda: conns[0].state if conns else None).result(5)
                if state is State.TIME_WAIT:
                    break
                time.sleep(0.02)
            table = ss(peer)
        finally:
            stop(runner, t)
        assert r.stdout.strip() == "hello from synack"
        assert state is State.TIME_WAIT
        assert not [line for line in table.splitlines()
                    if line.startswith("TIME-WAIT") and f"192.0.2.2:{PORT}" in line], table
