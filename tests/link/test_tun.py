"""``TunLink``, ``kernel_peer`` and ``StackRunner``.

Pure parts (virtio-net headers, checksum completion, errors, the runner over a memory link) run
anywhere; the device tests need root and are skipped without it unless CI is set.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from synack.link import tun as tunmod
from synack.link.memory import MemoryLink
from synack.link.netns import in_netns, kernel_peer
from synack.link.runner import StackRunner
from synack.link.tun import F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, VNET_HDR, TunLink, TunUnavailable
from synack.stack.host import Stack
from synack.wire.checksum import ones_sum
from synack.wire.ip4 import IPv4Packet
from synack.wire.packet import ChecksumValid, build_tcp_packet, parse_packet, tcp_in
from synack.wire.tcp import Flags, TcpSegment

needs_root = pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                                reason="needs root (TUN device, network namespaces); runs in CI")


# ------------------------------------------------------------------ virtio-net headers (no root)

def big_segment(src: str, dst: str, n: int) -> bytes:
    seg = TcpSegment(40000, 80, 1000, 2000, Flags.ACK | Flags.PSH, 512, 0, (), bytes(range(256)) * (n // 256))
    return build_tcp_packet(src, dst, seg)


@pytest.mark.parametrize("src,dst,gso,ihl", [("192.0.2.2", "192.0.2.1", GSO_TCPV4, 20),
                                             ("2001:db8::2", "2001:db8::1", GSO_TCPV6, 40)])
def test_gso_header_for_a_super_segment(src, dst, gso, ihl):
    pkt = big_segment(src, dst, 20480)
    hdr, body = tunmod._gso_header(pkt, 1500)
    flags, gso_type, hdr_len, gso_size, cstart, coff = VNET_HDR.unpack(hdr)
    assert (flags, gso_type, hdr_len, gso_size, cstart, coff) == (F_NEEDS_CSUM, gso, ihl + 20, 1500 - ihl - 20,
                                                                ihl, 16)
    # the checksum field holds the pseudo-header sum: completing it gives the original packet back
    assert body != pkt
    buf = bytearray(hdr + body)
    assert tunmod._complete_checksum(buf, 10, len(buf), cstart, coff) == pkt


def _partial(pkt: bytes) -> bytes:
    """``pkt`` (IPv4, TCP) as the kernel hands it over with offloads: the TCP checksum field
    holds only the pseudo-header sum."""
    tcp_len = len(pkt) - 20
    pseudo = ones_sum(pkt[12:20] + bytes([0, 6]) + tcp_len.to_bytes(2, "big"))
    return pkt[:36] + pseudo.to_bytes(2, "big") + pkt[38:]


def test_receive_drains_what_is_queued_and_completes_checksums():
    """``TunQueue.receive`` over a socket pair that keeps packet boundaries, as the TUN fd does:
    an empty queue gives [] (the read that finds nothing ends the drain, it does not raise);
    each header kind gives the packet the stack should see, partial checksums completed."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.setblocking(False)
    q = tunmod.TunQueue(a.fileno(), "test", offload=True, mtu=1500)
    try:
        assert q.receive(0.0) == []
        pkts = [build_tcp_packet("192.0.2.1", "192.0.2.2",
                                 TcpSegment(40000, 80, 1000 + i, 2000, Flags.ACK | Flags.PSH, 512, 0, (), data))
                for i, data in enumerate([b"odd", b"even", b"", bytes(1001)])]
        big = big_segment("192.0.2.1", "192.0.2.2", 4096)
        b.send(VNET_HDR.pack(F_NEEDS_CSUM, 0, 0, 0, 20, 16) + _partial(pkts[0]))    # odd length
        b.send(VNET_HDR.pack(F_NEEDS_CSUM, 0, 0, 0, 20, 16) + _partial(pkts[1]))
        b.send(VNET_HDR.pack(tunmod.F_DATA_VALID, 0, 0, 0, 0, 0) + pkts[2])         # checked by the kernel
        b.send(bytes(5))                                                             # shorter than a header
        b.send(bytes(10) + pkts[3])                                                  # nothing said
        b.send(VNET_HDR.pack(F_NEEDS_CSUM, GSO_TCPV4, 40, 1448, 20, 16) + _partial(big))
        got = q.receive(0.0)
        assert got == pkts + [big]
        assert [type(p) for p in got] == [ChecksumValid, ChecksumValid, ChecksumValid, bytes, ChecksumValid]
        for p in got:
            tcp_in(parse_packet(p))              # every checksum verifies
        c = q.counters
        assert (c.rx_packets, c.rx_csum_completed, c.rx_gso, c.rx_dropped) == (5, 3, 1, 1)
        assert q.receive(0.0) == []
        for i in range(tunmod.MAX_READS + 6):     # at most MAX_READS per call
            b.send(bytes(10) + pkts[i % 4])
        assert len(q.receive(0.0)) == tunmod.MAX_READS
        assert len(q.receive(0.0)) == 6
        a.detach()                               # the queue closes the fd
        q.close()
        assert q.receive(0.0) == []
    finally:
        a.close()
        b.close()


def test_receive_without_offload_takes_packets_as_they_are():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.setblocking(False)
    q = tunmod.TunQueue(a.fileno(), "test", offload=False, mtu=1500)
    try:
        pkt = big_segment("192.0.2.1", "192.0.2.2", 512)
        b.send(pkt)
        b.send(_partial(pkt))                    # not completed: the stack checks it and drops it
        assert q.receive(0.0) == [pkt, _partial(pkt)]
        assert q.receive(0.0) == []
    finally:
        a.close()
        b.close()


def test_gso_header_leaves_other_packets_alone():
    hdr, body = tunmod._gso_header(bytes([0x45]) + bytes(9) + bytes(30), 1500)   # proto 0, not TCP
    assert hdr == bytes(10)


def test_receive_completes_a_partial_checksum():
    pkt = big_segment("192.0.2.1", "192.0.2.2", 4096)
    # what the kernel hands over with offloads: the TCP checksum field holds the pseudo sum only
    _, partial = tunmod._gso_header(pkt, 1500)
    buf = bytearray(VNET_HDR.pack(F_NEEDS_CSUM, GSO_TCPV4, 40, 1448, 20, 16) + partial)
    out = tunmod._complete_checksum(buf, 10, len(buf), 20, 16)
    assert out == pkt
    seg = tcp_in(parse_packet(out))            # verifies the checksum
    assert len(seg.payload) == 4096


def test_missing_dev_net_tun_says_what_is_needed(monkeypatch):
    def no_tun(path, *a, **k):
        raise FileNotFoundError(2, "No such file or directory", path)
    monkeypatch.setattr(tunmod.os, "open", no_tun)
    with pytest.raises(TunUnavailable) as ei:
        TunLink("synack-t0")
    msg = str(ei.value)
    assert "root or CAP_NET_ADMIN" in msg and "simulated network" in msg


def test_no_permission_says_what_is_needed(monkeypatch):
    def denied(path, *a, **k):
        raise PermissionError(1, "Operation not permitted", path)
    monkeypatch.setattr(tunmod.os, "open", denied)
    with pytest.raises(TunUnavailable, match="CAP_NET_ADMIN"):
        TunLink("synack-t0")


def test_interface_name_too_long():
    with pytest.raises(ValueError, match="IFNAMSIZ"):
        TunLink("a-very-long-interface-name")


# ------------------------------------------------------------------ StackRunner (no root)

class TimerNode:
    """Fires ``handle_timer`` at the deadlines it is given; records when."""

    def __init__(self) -> None:
        self.deadlines: list[float] = []
        self.fired: list[tuple[float, float]] = []

    def receive_packet(self, packet, now): pass
    def packets_to_send(self, now): return []

    def next_timer(self):
        return min(self.deadlines) if self.deadlines else None

    def handle_timer(self, now):
        due = [d for d in self.deadlines if d <= now]
        self.deadlines = [d for d in self.deadlines if d > now]
        self.fired += [(d, now) for d in due]


def test_runner_fires_timers_on_time_and_stops_on_until():
    node = TimerNode()
    r = StackRunner(node, MemoryLink())
    t0 = time.monotonic()
    node.deadlines = [t0 + 0.05, t0 + 0.10]
    assert r.run(until=lambda: len(node.fired) == 2, timeout=5) is True
    assert all(0 <= now - d < 0.03 for d, now in node.fired), node.fired   # on time, give or take
    assert r.steps < 50                                                 # it slept, it did not spin
    r.close()


def test_runner_timeout_and_cross_thread_calls():
    node = TimerNode()
    r = StackRunner(node, MemoryLink())
    t0 = time.monotonic()
    assert r.run(until=lambda: False, timeout=0.1) is False
    assert 0.09 < time.monotonic() - t0 < 1.0
    th = r.start(timeout=10)
    try:
        where = r.submit(lambda: threading.current_thread().name).result(5)
        assert where == "synack-runner"
        with pytest.raises(ZeroDivisionError):
            r.submit(lambda: 1 / 0).result(5)
        box = []
        r.call_soon_threadsafe(box.append, 1)
        deadline = time.monotonic() + 5
        while not box and time.monotonic() < deadline:
            time.sleep(0.01)
        assert box == [1]
    finally:
        r.stop()
        th.join(5)
    assert not th.is_alive() and r.error is None
    r.close()


def test_runner_pumps_a_stack_over_memory_links():
    """Two stacks, one runner each side on one thread's turn: a handshake and a few bytes."""
    a_link, b_link = MemoryLink.pair()
    a = Stack(["192.0.2.2/24"], secret=b"a")
    b = Stack(["192.0.2.1/24"], secret=b"b")
    lst = b.listen(80)
    rb = StackRunner(b, b_link)
    ra = StackRunner(a, a_link)
    box = {}

    def drive_b(now):
        while b.next_event() is not None:
            pass
        c = b.accept(lst)
        if c is not None:
            box["b"] = c

    rb.add_hook(drive_b)
    conn = a.connect(("192.0.2.1", 80), time.monotonic())
    deadline = time.monotonic() + 5
    while "b" not in box and time.monotonic() < deadline:
        ra.run(until=lambda: True)
        rb.run(until=lambda: True)
    assert "b" in box and conn.state.name == "ESTABLISHED"
    ra.close()
    rb.close()


# ------------------------------------------------------------------ the device (root)

PING = textwrap.dedent("""
    import os, socket, struct, sys, time
    def csum(b):
        b += b"\\0" * (len(b) % 2)
        n = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        while n >> 16:
            n = (n & 0xFFFF) + (n >> 16)
        return ~n & 0xFFFF
    for host in sys.argv[1:]:
        v6 = ":" in host
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                          socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
        s.settimeout(3)
        ident, ok = os.getpid() & 0xFFFF, 0
        for seq in range(3):
            payload = b"synack-ping-%d" % seq + bytes(100)
            typ = 128 if v6 else 8
            msg = struct.pack("!BBHHH", typ, 0, 0, ident, seq) + payload
            if not v6:                        # the kernel fills the ICMPv6 checksum itself
                msg = msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]
            s.sendto(msg, (host, 0))
            end = time.monotonic() + 3
            while time.monotonic() < end:
                b, _ = s.recvfrom(2048)
                if not v6:
                    b = b[(b[0] & 15) * 4:]
                rtyp, _, _, rid, rseq = struct.unpack("!BBHHH", b[:8])
                if rtyp == (129 if v6 else 0) and rid == ident and rseq == seq and b[8:] == payload:
                    ok += 1
                    break
        print(host, ok)
""")


@needs_root
@pytest.mark.parametrize("offload", [True, False], ids=["offload", "no-offload"])
def test_kernel_pings_synack_v4_and_v6(offload):
    """(a) the kernel in the namespace pings synack; synack's Stack answers, v4 and v6."""
    with kernel_peer(offload=offload) as peer:
        stack = Stack(peer.stack_addresses, secret=b"ping")
        r = StackRunner(stack, peer.link)
        t = r.start(timeout=60)
        try:
            res = peer.run([sys.executable, "-c", PING, peer.stack_v4, peer.stack_v6], timeout=30)
        finally:
            r.stop()
            t.join(10)
            r.close()
        assert res.returncode == 0, res.stderr
        assert res.stdout.split("\n")[:2] == [f"{peer.stack_v4} 3", f"{peer.stack_v6} 3"]
        assert stack.stats["icmp_echo_replies"] == 6


@needs_root
def test_device_lives_in_the_namespace_and_goes_away():
    with kernel_peer(offload=False) as peer:
        name, ns = peer.link.name, peer.ns
        inside = peer.run([sys.executable, "-c", "import socket; print([n for _, n in socket.if_nameindex()])"])
        assert name in inside.stdout
        import socket
        assert name not in [n for _, n in socket.if_nameindex()]        # not in the host namespace
        assert os.path.exists(f"/var/run/netns/{ns}")
    assert not os.path.exists(f"/var/run/netns/{ns}")
    assert peer.link.closed


@needs_root
def test_cleanup_on_exception_kills_processes_and_removes_the_namespace():
    with pytest.raises(RuntimeError, match="boom"):
        with kernel_peer() as peer:
            ns = peer.ns
            p = peer.popen(["sleep", "60"])
            raise RuntimeError("boom")
    assert p.returncode is not None
    assert not os.path.exists(f"/var/run/netns/{ns}")


@needs_root
@pytest.mark.parametrize("offload", [True, False], ids=["offload", "no-offload"])
def test_udp_from_the_kernel_arrives_with_a_valid_checksum(offload):
    """With offloads the kernel leaves UDP checksums partial too: receive() completes them."""
    code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.sendto(b'x' * 3000, ('192.0.2.2', 9999))")
    with kernel_peer(offload=offload) as peer:
        assert peer.run([sys.executable, "-c", code]).returncode == 0
        pkts = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pkts += [p for p in peer.link.receive(0.0) if p[0] >> 4 == 4 and p[9] == 17]
            if pkts:
                break
            time.sleep(0.01)
    assert pkts, "no UDP datagram arrived"
    p = pkts[0]
    ihl = (p[0] & 15) * 4
    assert len(p) == 1500 or len(p) == ihl + 8 + 3000      # fragmented at the MTU, or whole
    if len(p) == ihl + 8 + 3000:
        udp = p[ihl:]
        pseudo = p[12:20] + bytes([0, 17]) + len(udp).to_bytes(2, "big")
        assert ones_sum(pseudo + udp) == 0xFFFF


class Coalesce:
    """Test-only TSO: merges runs of contiguous data segments synack emits in one step into
    one super-segment, so ``TunLink.transmit`` hands the kernel GSO packets to cut."""

    def __init__(self, inner: TunLink, limit: int = 60000) -> None:
        self.inner, self.limit = inner, limit
        self._held: bytes | None = None
        self.merged = 0

    def fileno(self):
        return self.inner.fileno()

    def receive(self, now):
        self.flush(now)
        return self.inner.receive(now)

    def next_timer(self):
        return 0.0 if self._held is not None else None

    def flush(self, now):
        if self._held is not None:
            held, self._held = self._held, None
            self.inner.transmit(held, now)

    def transmit(self, packet, now):
        pkt = parse_packet(packet)
        if not isinstance(pkt, IPv4Packet) or pkt.proto != 6:
            self.flush(now)
            return self.inner.transmit(packet, now)
        seg = tcp_in(pkt)
        if not seg.payload or seg.flags & ~(Flags.ACK | Flags.PSH):
            self.flush(now)
            return self.inner.transmit(packet, now)
        if self._held is not None:
            hp = parse_packet(self._held)
            hs = tcp_in(hp)
            if (hs.sport, hs.dport, hs.ack) == (seg.sport, seg.dport, seg.ack) and not hs.flags & Flags.PSH \
                    and (hs.seq + len(hs.payload)) & 0xFFFFFFFF == seg.seq \
                    and len(hs.payload) + len(seg.payload) <= self.limit:
                merged = hs.replace(payload=hs.payload + seg.payload, flags=seg.flags)
                self._held = build_tcp_packet(hp.src, hp.dst, merged)
                self.merged += 1
                return
            self.flush(now)
        self._held = packet


@needs_root
def test_super_segments_from_synack_reach_the_kernel_intact():
    """With offloads, TCP packets over the MTU go out as GSO frames the kernel accepts."""
    sys.path.insert(0, os.path.dirname(__file__))
    from test_kernel_interop import SERVER, Sender, finish, readline
    n = 2_000_000
    data = os.urandom(n)
    with kernel_peer(offload=True) as peer:
        srv = peer.popen([sys.executable, "-c", SERVER, peer.kernel_v4, "7001"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert readline(srv, 20).strip() == "ready"
        stack = Stack(peer.stack_addresses, secret=b"gso")
        link = Coalesce(peer.link)
        r = StackRunner(stack, link)
        snd = Sender(stack, (peer.kernel_v4, 7001), data)
        r.add_hook(snd)
        r.call_soon_threadsafe(lambda: snd.start(r.now()))
        t = r.start(timeout=90)
        try:
            out, err = finish(srv, 80)
        finally:
            r.stop()
            t.join(10)
            r.close()
        assert r.error is None, r.error
        assert srv.returncode == 0, err[-2000:]
        assert out.strip() == f"{n} {hashlib.sha256(data).hexdigest()}"
        assert peer.link.counters.tx_gso > 0 and link.merged > 0


def test_in_netns_builds_a_trampoline():
    argv = in_netns("x", ["ss", "-tan"])
    assert argv[0] == sys.executable and argv[3] == "/var/run/netns/x" and argv[4:] == ["ss", "-tan"]


@needs_root
def test_stale_namespaces_of_dead_processes_are_removed():
    from pyroute2 import netns
    from synack.link.netns import remove_stale
    dead = "synack-999999999-0"                 # beyond any pid_max: that process is gone
    netns.create(dead)
    try:
        assert dead in remove_stale()
        assert dead not in netns.listnetns()
    finally:
        if dead in netns.listnetns():
            netns.remove(dead)
