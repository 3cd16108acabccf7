"""Found by driving synack against the Linux kernel in private namespaces (interop hunt).

Each test builds its own namespace with ``kernel_peer`` (192.0.2.0/24, 2001:db8::/64 inside it),
bounds every wait, and removes everything on exit.

* Fault injection: ``Faults(corrupt=...)`` around a TUN with offloads used to let corrupted TSO
  super-segments reach the kernel with a valid checksum (the kernel completed the partial
  checksum over the flipped bytes), so the application got corrupted data; Faults now cuts such
  a super-segment into MTU-sized segments with full checksums before it flips a bit.
* Socket API: after ``recv()`` has raised ECONNRESET, Linux clears the pending error (SO_ERROR
  reads 0) and a later ``send()`` fails with EPIPE; synack's socket used to keep reporting
  ECONNRESET.
* Simultaneous open (synack in SYN-SENT receives the kernel's SYN) and nmap's scan types against
  a listening stack: both behave, and nothing else checks them against a real peer.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import struct
import subprocess
import sys
import textwrap
import time

import pytest

from synack.link.faults import Faults
from synack.link.netns import kernel_peer
from synack.link.tun import gso_segment
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.tcp.states import State
from synack.testing.peers import ECHO_CLIENT
from synack.wire.errors import WireError
from synack.wire.packet import build_tcp_packet, parse_packet
from synack.wire.tcp import Flags, TcpSegment, parse_tcp
from test_kernel_interop import EchoService, Sender, readline, stop

def needs_root(fn):
    """The marks of a test that needs root, a TUN device and namespaces (CI runs them)."""
    fn = pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                            reason="needs root (TUN device, network namespaces); runs in CI")(fn)
    return pytest.mark.root(fn)

SECRET = b"interop-hunt"
PORT = 7000


# ------------------------------------------------------------------ fault injection and TSO

@needs_root
def test_faults_corruption_of_tso_super_segments_is_caught_by_the_kernel():
    """synack's echo through Faults(corrupt=5 %, tx) on an offloading TUN, TSO on: the kernel
    client must get exactly its bytes back (a corrupted segment fails its checksum and is
    retransmitted), as it does with TSO off."""
    n, seed = 2_000_000, 3
    with kernel_peer(offload=True) as peer:
        cfg = TcpConfig()
        cfg.tso_max = 65535 - 100
        stack = Stack(peer.stack_addresses, secret=SECRET, config=cfg)
        link = Faults(peer.link, random.Random(5), corrupt=0.05, direction="tx")
        from synack.link.runner import StackRunner
        runner = StackRunner(stack, link)
        runner.add_hook(EchoService(stack, PORT))
        t = runner.start(timeout=60)
        try:
            r = peer.run([sys.executable, "-c", ECHO_CLIENT, peer.stack_v4, str(PORT), str(n), str(seed)],
                         timeout=45)
        finally:
            stop(runner, t)
        assert r.returncode == 0, r.stderr[-2000:]
        assert link.tx.corrupt > 0
        got, digest = r.stdout.split()
        assert (int(got), digest) == (n, hashlib.sha256(random.Random(seed).randbytes(n)).hexdigest()), \
            f"corrupted echo; faults {link.tx}"


class _Recorder:
    """A link that keeps what is transmitted."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def transmit(self, packet: bytes, now: float) -> None:
        self.sent.append(bytes(packet))

    def receive(self, now: float) -> list[bytes]:
        return []

    def next_timer(self):
        return None


def test_a_corrupted_tso_super_segment_does_not_verify_after_segmentation():
    """No root: the same as above at the packet level. One super-segment (3 MSS of payload,
    partial checksum) through Faults(corrupt=1.0, tx), then cut at the MTU as the kernel does:
    some piece must fail its TCP checksum."""
    seg = TcpSegment(40000, 7, 1000, 2000, Flags.ACK | Flags.PSH, 1000, 0, (), bytes(range(256)) * 17)
    pkt = build_tcp_packet("192.0.2.2", "192.0.2.1", seg, partial_checksum=True)
    rec = _Recorder()
    f = Faults(rec, random.Random(1), corrupt=1.0, direction="tx")
    for i in range(20):                        # 20 different single-bit flips
        f.transmit(pkt, float(i))
    caught = 0
    for p in rec.sent:
        bad = False
        for piece in gso_segment(p, 1500):
            try:
                ip = parse_packet(piece)
                parse_tcp(ip.payload, ip.src.packed, ip.dst.packed, verify=True)
            except WireError:
                bad = True
        caught += bad
    assert f.tx.corrupt == 20
    assert caught == 20, f"only {caught} of 20 corrupted super-segments fail a checksum after segmentation"


# ------------------------------------------------------------------ socket API errors vs Linux

# argv: host port. Accepts one connection, sends 10 bytes, waits, then closes with RST.
DATA_THEN_RST_SERVER = textwrap.dedent("""
    import socket, struct, sys, time
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port)); ls.listen(4); ls.settimeout(20)
    print("ready", flush=True)
    for _ in range(count):
        s, _ = ls.accept()
        s.sendall(b"0123456789"); time.sleep(0.2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()
""")

# What a socket module client sees: connect, wait for the RST, then recv, recv, SO_ERROR, send.
# argv: host port; ``socket`` is the stdlib module here (the kernel's reference answers).
AFTER_RESET_CLIENT = textwrap.dedent("""
    import socket, sys, time
    def after_reset(mod, make, host, port):
        out = []
        def rec(fn):
            try:
                out.append(repr(fn()))
            except OSError as e:
                out.append(f"errno {e.errno}")
        s = make()
        s.settimeout(5)
        s.connect((host, port))
        time.sleep(0.6)                         # the data and the RST have arrived
        rec(lambda: s.recv(100))                # the data
        rec(lambda: s.recv(100))                # ECONNRESET, reported once
        rec(lambda: s.getsockopt(mod.SOL_SOCKET, mod.SO_ERROR))
        rec(lambda: s.send(b"x"))
        s.close()
        return out
""")


@needs_root
def test_socket_errors_after_a_reset_match_linux():
    from synack import socket as ssock
    from synack.api.aio import AsyncStack
    ns = {}
    exec(AFTER_RESET_CLIENT, ns)
    with kernel_peer(ipv6=False) as peer:
        srv = peer.popen([sys.executable, "-c", DATA_THEN_RST_SERVER, peer.kernel_v4, "6100", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert readline(srv, 20).strip() == "ready"
        code = AFTER_RESET_CLIENT + "\nprint(' | '.join(after_reset(socket, socket.socket, sys.argv[1], 6100)))\n"
        r = peer.run([sys.executable, "-c", code, peer.kernel_v4], timeout=20)
        assert r.returncode == 0, r.stderr[-2000:]
        linux = r.stdout.strip().split(" | ")
        assert linux == ["b'0123456789'", "errno 104", "0", "errno 32"], linux   # the reference itself
        astack = AsyncStack.start_thread(Stack(peer.stack_addresses, secret=SECRET), peer.link)
        try:
            ours = ns["after_reset"](ssock, lambda: ssock.socket(stack=astack), peer.kernel_v4, 6100)
        finally:
            astack.close()
        assert ours == linux


# ------------------------------------------------------------------ regressions that pass

SIM_OPEN_KERNEL = textwrap.dedent("""
    import hashlib, socket, sys
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[3]))); s.settimeout(20)
    s.connect((sys.argv[2], int(sys.argv[4])))
    print("connected", flush=True)
    h, n = hashlib.sha256(), 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        h.update(b); n += len(b)
    s.sendall(f"{n} {h.hexdigest()}".encode()); s.close()
""")


@needs_root
def test_simultaneous_open_with_the_kernel():
    """synack connects first (its SYN is dropped by nft in the namespace, so it stays in
    SYN-SENT); the kernel then connects to synack's port from the port synack aims at. synack
    answers the kernel's SYN from SYN-SENT (RFC 9293 §3.5, Figure 8: to SYN-RECEIVED with a
    SYN-ACK), the connection opens, 1 MB goes over byte-exact and synack, closing first, reaches
    TIME-WAIT."""
    from synack.link.runner import StackRunner
    kport, sport = 7100, 7200
    with kernel_peer(ipv6=False) as peer:
        for cmd in (["nft", "add", "table", "inet", "t"],
                    ["nft", "add", "chain", "inet", "t", "c", "{ type filter hook input priority 0; }"],
                    ["nft", "add", "rule", "inet", "t", "c", "tcp", "dport", str(kport), "tcp", "flags", "==", "syn",
                     "drop"]):
            r = peer.run(cmd, timeout=10)
            assert r.returncode == 0, (cmd, r.stderr)
        stack = Stack(peer.stack_addresses, secret=SECRET)
        runner = StackRunner(stack, peer.link)
        data = random.Random(4).randbytes(1_000_000)
        snd = Sender(stack, (peer.kernel_v4, kport), data)

        def start(now: float) -> None:
            snd.conn = stack.connect((peer.kernel_v4, kport), now, local=(peer.stack_v4, sport))
        runner.add_hook(snd)
        runner.call_soon_threadsafe(lambda: start(runner.now()))
        t = runner.start(timeout=40)
        try:
            deadline = time.monotonic() + 5
            while (snd.conn is None or snd.conn.state is not State.SYN_SENT) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)
            assert snd.conn.state is State.SYN_SENT
            k = peer.popen([sys.executable, "-c", SIM_OPEN_KERNEL, peer.kernel_v4, peer.stack_v4, str(kport),
                            str(sport)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert readline(k, 10).strip() == "connected"
            out, err = k.communicate(timeout=20)
            assert k.returncode == 0, err[-2000:]
            deadline = time.monotonic() + 10
            while not (snd.eof and snd.conn.state is State.TIME_WAIT) and time.monotonic() < deadline:
                time.sleep(0.02)
            states = [st for _, st in snd.conn.state_history]
            final = snd.conn.state
        finally:
            stop(runner, t)
        assert snd.error is None, snd.error
        assert bytes(snd.received).decode() == f"{len(data)} {hashlib.sha256(data).hexdigest()}"
        assert states[:6] == [State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1,
                              State.FIN_WAIT_2, State.TIME_WAIT], states
        # Usually still TIME-WAIT. Now and then the kernel's tail-loss probe repeats its FIN before
        # our ACK reaches it; our second ACK then finds the kernel's socket gone and its RST (at
        # RCV.NXT) ends our TIME-WAIT (§3.10.7.4; RFC 1337's hazard, Linux does the same by default).
        assert final is State.TIME_WAIT or states[-2:] == [State.TIME_WAIT, State.CLOSED], states


NMAP = shutil.which("nmap")


@pytest.mark.skipif(NMAP is None, reason="nmap is not installed (apt-get install nmap)")
@needs_root
def test_nmap_scans_see_rfc9293_answers_and_synack_keeps_serving():
    """nmap -sS/-sT/-sA/-sF/-sN/-sX at synack's address only (inside the namespace), v4 and v6,
    echo listening on 7: SYN scans find 7 open and 5 closed (RST, §3.10.7.1); the ACK scan
    draws a RST from both (unfiltered); FIN/NULL/Xmas get a RST from the closed port and silence
    from the listener (§3.10.7.2: no SYN, no RST, no ACK: drop) -> "open|filtered". Afterwards
    an echo still works."""
    from synack.link.runner import StackRunner
    with kernel_peer() as peer:
        stack = Stack(peer.stack_addresses, secret=SECRET)
        runner = StackRunner(stack, peer.link)
        echo = EchoService(stack, 7)
        runner.add_hook(echo)
        t = runner.start(timeout=60)
        try:
            results = {}
            for host, v6 in ((peer.stack_v4, False), (peer.stack_v6, True)):
                for scan in ("-sS", "-sT", "-sA", "-sF", "-sN", "-sX"):
                    argv = [NMAP, "-n", "-Pn", "--max-retries", "1", "-oG", "-", scan, "-p", "5,7", host]
                    if v6:
                        argv.insert(1, "-6")
                    r = peer.run(argv, timeout=30)
                    assert r.returncode == 0, r.stderr[-1000:]
                    line = next(x for x in r.stdout.splitlines() if "Ports:" in x)
                    results[(host, scan)] = line.split("Ports:")[1].split("\t")[0].strip()
            r = peer.run([sys.executable, "-c", ECHO_CLIENT, peer.stack_v6, "7", "100000", "1"], timeout=30)
        finally:
            stop(runner, t)
        for (host, scan), ports in results.items():
            want = {"-sS": [("5", "closed"), ("7", "open")],
                    "-sT": [("5", "closed"), ("7", "open")],
                    "-sA": [("5", "unfiltered"), ("7", "unfiltered")]}.get(scan, [("5", "closed"), ("7", "open|filtered")])
            assert _ports(ports) == want, (host, scan, ports)
        assert r.returncode == 0, r.stderr[-1000:]
        assert r.stdout.split() == ["100000", hashlib.sha256(random.Random(1).randbytes(100000)).hexdigest()]
        # (the -sS/-sT probes end their connections with RST: those are echo.errors, as expected)


def _ports(s: str) -> list[tuple[str, str]]:
    """(port, state) pairs of a greppable nmap Ports: field, service names ignored."""
    return [tuple(p.strip().split("/")[:2]) for p in s.split(",")]
