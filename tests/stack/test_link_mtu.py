"""The MSS a host offers and sends by comes from the MTU of the link it sends on (RFC 9293 §3.7.1:
MUST-16, the effective send MSS is bounded by MMS_S; MUST-67, the MSS option is the MTU less the
fixed IP and TCP headers, 40 octets for IPv4 and 60 for IPv6). Whoever attaches a link tells the
stack its MTU (the simulator, ``AsyncStack``, ``StackRunner``); an explicit ``TcpConfig.mtu`` is
held under it. ISNs come from the stack here; the SYN's options are what is checked."""

from __future__ import annotations

import pytest

from synack.link.base import link_mtu
from synack.link.faults import Faults
from synack.link.memory import MemoryLink
from synack.link.pcap import PcapLink
from synack.link.runner import StackRunner
from synack.sim.network import Network
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.wire.packet import parse_packet
from synack.wire.tcp import parse_tcp

A4, B4, A6, B6 = "192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"


def pair(mtu: int, cfg_a: TcpConfig | None = None, cfg_b: TcpConfig | None = None):
    net = Network(1)
    a = net.add_node("a", Stack([A4 + "/24", A6 + "/64"], secret=b"a" * 16, config=cfg_a))
    b = net.add_node("b", Stack([B4 + "/24", B6 + "/64"], secret=b"b" * 16, config=cfg_b))
    net.connect("a", "b", mtu=mtu, delay=0.001)
    return net, a, b


def syn_mss(net: Network, a: Stack, dst: str) -> int:
    """Open a connection from ``a`` and return the MSS option of its SYN (as it left)."""
    conn = a.connect((dst, 80), net.now)
    pkts = a.packets_to_send(net.now)
    p = parse_packet(pkts[0])
    seg = parse_tcp(p.payload, p.src.packed, p.dst.packed)
    assert seg.flags.short() == "S"
    a.conns.clear()                       # nothing else from this one
    del conn
    return seg.mss


@pytest.mark.parametrize("mtu, v4, v6", [(1500, 1460, 1440), (1280, 1240, 1220), (9000, 8960, 8940)])
def test_syn_offers_the_link_mtu_less_the_headers(mtu, v4, v6):
    net, a, _ = pair(mtu)
    assert a.link_mtu == mtu
    assert syn_mss(net, a, B4) == v4
    assert syn_mss(net, a, B6) == v6


def test_an_explicit_mtu_is_held_under_the_link():
    net, a, _ = pair(1280, cfg_a=TcpConfig(mtu=9000))
    assert syn_mss(net, a, B4) == 1240
    net, a, _ = pair(9000, cfg_a=TcpConfig(mtu=1400))
    assert syn_mss(net, a, B4) == 1360


def test_without_a_link_mtu_the_default_is_1500():
    st = Stack([A4 + "/24"], secret=b"a" * 16)
    assert st.link_mtu is None
    st.connect((B4, 80), 0.0)
    p = parse_packet(st.packets_to_send(0.0)[0])
    assert parse_tcp(p.payload, p.src.packed, p.dst.packed).mss == 1460


def test_data_fits_a_small_link_without_drops():
    """At MTU 1280 both ends offer 1240; 100 kB cross with no packet over the MTU (the simulator
    drops and counts those as "mtu")."""
    net, a, b = pair(1280)
    lst = b.listen(80)
    c = a.connect((B4, 80), net.now)
    net.run_until(lambda: c.state.synchronized, limit=5)
    data = bytes(range(256)) * 400
    c.send(data)
    a.touch(c)
    got = bytearray()
    srv = []

    def done() -> bool:
        while (s := b.accept(lst)) is not None:
            srv.append(s)
        for s in srv:
            got.extend(s.receive(1 << 20) or b"")
        return len(got) >= len(data)
    net.run_until(done, limit=10)
    assert bytes(got) == data
    assert net.end("a").counters.dropped.get("mtu", 0) == 0
    assert c.mss == 1240 - 12             # less the timestamps option every segment carries


def test_link_mtu_looks_through_wrappers():
    inner = MemoryLink("m")
    assert link_mtu(inner) is None

    class WithMtu:
        mtu = 1400
    import io
    import random
    wrapped = PcapLink(Faults(WithMtu(), random.Random(1)), io.BytesIO())  # type: ignore[arg-type]
    assert link_mtu(wrapped) == 1400


def test_stack_runner_tells_the_stack():
    class Tun(MemoryLink):
        mtu = 1280
    st = Stack([A4 + "/24"], secret=b"a" * 16)
    runner = StackRunner(st, Tun("t"))
    try:
        assert st.link_mtu == 1280
    finally:
        runner.close()
