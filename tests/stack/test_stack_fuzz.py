"""Bad input at the stack's edge: mutants of a real exchange's packets, fed to two hosts that hold
a listener (SYN cookies on, and always), an established connection, one that is closing and a
TIME-WAIT record, must never raise, and must leave the hosts able to open and use a new
connection. ``tests/wire/test_fuzz.py`` covers the parsers alone; this covers what the stack does
with what they let through: demultiplexing, the receive path's own IPv4 handling, listeners and
cookies, TIME-WAIT records, urgent data, options. Half the mutants get their IPv4 header checksum
and their TCP checksum sealed again so they reach the TCP state machines instead of the first
check. Seeded: every run feeds the same inputs."""

from __future__ import annotations

import random

import pytest

from synack.sim.clock import LimitReached, Stalled
from synack.sim.network import Network
from synack.stack.host import Stack, StackConfig
from synack.tcp.config import TcpConfig
from synack.wire.checksum import checksum
from synack.wire.errors import WireError
from synack.wire.packet import build_tcp_packet, parse_packet
from synack.wire.tcp import parse_tcp

MUTANTS = 5000                       # per world; 4 worlds, each mutant to both hosts


class Capture:
    """Records every packet that crosses ``inner`` (both directions)."""

    def __init__(self, inner, store: list[bytes]) -> None:
        self.inner, self.store = inner, store

    def transmit(self, packet: bytes, now: float) -> None:
        self.store.append(bytes(packet))
        self.inner.transmit(packet, now)

    def receive(self, now: float) -> list[bytes]:
        got = self.inner.receive(now)
        self.store.extend(bytes(p) for p in got)
        return got

    def next_timer(self):
        return self.inner.next_timer()


def run_for(net: Network, dt: float) -> None:
    try:
        net.run_until(lambda: False, limit=dt)
    except (Stalled, LimitReached):
        pass


def world(seed: int, cookies: str, v6: bool):
    """a opens two connections to b:80; data, urgent data; b closes the first (so b keeps a
    TIME-WAIT record), a closes its end; the second stays established."""
    store: list[bytes] = []
    net = Network(seed)
    cfg = TcpConfig(msl=5.0)
    a = net.add_node("a", Stack(["192.0.2.1/24", "2001:db8::1/64"], secret=b"a" * 16, config=cfg))
    b = net.add_node("b", Stack(["192.0.2.2/24", "2001:db8::2/64"], secret=b"b" * 16, config=cfg,
                                stack_config=StackConfig(syncookies=cookies)))
    net.connect("a", "b", delay=0.01, wrap=lambda n, link: Capture(link, store) if n == "b" else link)
    lst = b.listen(80)
    dst = "2001:db8::2" if v6 else "192.0.2.2"
    c1, c2 = a.connect((dst, 80), net.now), a.connect((dst, 80), net.now)
    net.run_until(lambda: c1.state.synchronized and c2.state.synchronized, limit=5)
    srv: list = []
    while len(srv) < 2:
        run_for(net, 0.05)
        while (s := b.accept(lst)) is not None:
            srv.append(s)
    c1.send(b"x" * 5000)
    c2.send(b"GET / HTTP/1.1\r\n\r\n", urgent=True)
    a.touch(c1)
    a.touch(c2)
    run_for(net, 0.5)
    for s in srv:
        s.receive(1 << 20)
    srv[0].close(net.now)
    b.touch(srv[0])
    run_for(net, 0.5)
    c1.close(net.now)
    a.touch(c1)
    run_for(net, 0.5)
    assert b.time_wait, "the world should hold a TIME-WAIT record"
    return net, a, b, lst, store


def mutate(rng: random.Random, p: bytes) -> bytes:
    out = bytearray(p)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif op == 2:
            del out[rng.randrange(len(out) + 1):]
        elif op == 3 and len(out) > 20:
            i = rng.randrange(20, len(out))
            out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif op == 4 and len(out) > 2:
            i = rng.randrange(len(out) - 1)
            out[i:i + 2] = rng.choice([0, 1, 5, 20, 40, 60, 0x7FFF, 0x8000, 0xFFFF]).to_bytes(2, "big")
    return bytes(out)


def seal(p: bytes) -> bytes:
    """Fix the IPv4 header checksum, then (if it still parses as TCP) the TCP checksum."""
    if len(p) >= 20 and p[0] >> 4 == 4:
        hlen = (p[0] & 15) * 4
        if 20 <= hlen <= len(p):
            hdr = p[:10] + b"\0\0" + p[12:hlen]
            p = hdr[:10] + checksum(hdr).to_bytes(2, "big") + p[12:]
    try:
        pkt = parse_packet(p, verify=False)
        if getattr(pkt, "proto", getattr(pkt, "next_header", None)) != 6:
            return p
        seg = parse_tcp(pkt.payload, pkt.src.packed, pkt.dst.packed, verify=False)
        return build_tcp_packet(pkt.src, pkt.dst, seg)
    except WireError:
        return p


@pytest.mark.parametrize("cookies", ["on", "always"])
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_mutated_packets_never_raise_and_the_hosts_still_work(cookies, v6):
    net, a, b, lst, store = world(7, cookies, v6)
    rng = random.Random(f"{cookies}-{v6}")
    now = net.now
    for _ in range(MUTANTS):
        m = mutate(rng, rng.choice(store))
        if rng.random() < 0.5:
            m = seal(m)
        for host in (a, b):
            host.receive_packet(m, now)            # anything raising here fails the test
            host.packets_to_send(now)
            now += 0.0005
            if (t := host.next_timer()) is not None and t <= now:
                host.handle_timer(now)
    # the hosts still work: a new connection carries data both ways, byte for byte
    run_for(net, now - net.now + 0.01)           # the simulator's clock catches up
    dst = "2001:db8::2" if v6 else "192.0.2.2"
    c = a.connect((dst, 80), net.now)
    net.run_until(lambda: c.state.synchronized, limit=10)
    srv = None

    def accepted():
        # A replayed cookie ACK (a mutant that kept its TCP fields) may have opened a connection
        # of its own within the cookie's lifetime (RFC 4987 §3.6): take the one c opened.
        nonlocal srv
        while srv is None and (s := b.accept(lst)) is not None:
            if (s.id.remote_port, s.id.local_port) == (c.id.local_port, c.id.remote_port):
                srv = s
        return srv is not None
    net.run_until(accepted, limit=10)
    c.send(b"after the storm")
    a.touch(c)
    srv.send(b"and back")
    b.touch(srv)
    got, back = bytearray(), bytearray()

    def arrived():
        got.extend(srv.receive(1 << 20) or b"")
        back.extend(c.receive(1 << 20) or b"")
        return bytes(got) == b"after the storm" and bytes(back) == b"and back"
    net.run_until(arrived, limit=10)
