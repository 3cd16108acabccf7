"""Addresses at the edge of the stack: RFC 9293 §3.9.1.1 / §3.9.2.1 and RFC 1122 §3.2.1.3.

OPEN to a broadcast or multicast address fails (MUST-46); segments from a broadcast or
multicast source, or addressed to one, are discarded silently (MUST-57, MUST-63); the source
address of an active open is the one whose prefix holds the destination (MUST-44).
"""

from __future__ import annotations

import errno

import pytest

from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.wire.packet import build_tcp_packet, parse_packet
from synack.wire.tcp import Flags, Mss, TcpSegment

SECRET = b"stack-address-test"


def make_stack(*addrs: str) -> Stack:
    return Stack(list(addrs) or ["192.0.2.2/24", "2001:db8::2/64"], secret=SECRET, config=TcpConfig(ack_delay=None))


@pytest.mark.parametrize("dst", ["224.0.0.1", "239.1.2.3", "255.255.255.255", "192.0.2.255", "0.0.0.0",
                                 "ff02::1", "::"])
def test_open_to_broadcast_or_multicast_fails(dst):
    st = make_stack()
    with pytest.raises(OSError) as e:
        st.connect((dst, 80), 0.0)
    assert e.value.errno == errno.EINVAL
    assert st.packets_to_send(0.0) == [] and not st.conns


@pytest.mark.parametrize("src,dst", [("224.0.0.5", "192.0.2.2"), ("255.255.255.255", "192.0.2.2"),
                                     ("0.0.0.0", "192.0.2.2"), ("ff02::1", "2001:db8::2")])
def test_syn_from_a_multicast_or_broadcast_source_is_dropped_silently(src, dst):
    st = make_stack()
    st.listen(80)
    syn = TcpSegment(40000, 80, 1000, 0, Flags.SYN, 65535, 0, (Mss(1460),))
    st.receive_packet(build_tcp_packet(src, dst, syn), 0.0)
    assert st.packets_to_send(0.0) == []
    assert not st.conns
    assert st.stats["drop: source not unicast"] == 1


@pytest.mark.parametrize("dst", ["192.0.2.255", "255.255.255.255", "224.0.0.1"])
def test_syn_to_a_broadcast_or_multicast_destination_is_dropped_silently(dst):
    st = make_stack()
    st.listen(80)
    syn = TcpSegment(40000, 80, 1000, 0, Flags.SYN, 65535, 0, (Mss(1460),))
    st.receive_packet(build_tcp_packet("192.0.2.1", dst, syn), 0.0)
    assert st.packets_to_send(0.0) == []
    assert not st.conns


def test_source_address_is_chosen_by_prefix():
    st = make_stack("192.0.2.2/24", "198.51.100.2/24", "2001:db8::2/64")
    conn = st.connect(("198.51.100.7", 80), 0.0)
    assert conn.id.local_addr == "198.51.100.2"
    pkt = parse_packet(st.packets_to_send(0.0)[0])
    assert str(pkt.src) == "198.51.100.2"
    assert st.connect(("192.0.2.9", 80), 0.0).id.local_addr == "192.0.2.2"


def test_foreign_local_address_is_refused():
    st = make_stack()
    with pytest.raises(OSError) as e:
        st.connect(("192.0.2.1", 80), 0.0, local=("203.0.113.5", 0))
    assert e.value.errno == errno.EADDRNOTAVAIL


def test_syn_from_a_subnet_broadcast_source_is_dropped_silently():
    st = make_stack()
    st.listen(80)
    syn = TcpSegment(40000, 80, 1000, 0, Flags.SYN, 65535, 0, (Mss(1460),))
    st.receive_packet(build_tcp_packet("192.0.2.255", "192.0.2.2", syn), 0.0)
    assert st.packets_to_send(0.0) == [] and not st.conns


@pytest.mark.parametrize("remote", ["192.0.2.1", "2001:db8::1"])
def test_tos_is_set_per_connection_and_can_change_while_it_lives(remote):
    """RFC 9293 §3.9.1 (MUST-48): the application sets the Diffserv field of the segments it
    sends, and may change it on a live connection."""
    st = make_stack()
    conn = st.connect((remote, 80), 0.0, config=TcpConfig(tos=0x20))
    syn = parse_packet(st.packets_to_send(0.0)[0])
    tos = syn.tos if syn.src.version == 4 else syn.traffic_class
    assert tos == 0x20
    conn.config.tos = 0xB8                              # EF, as setsockopt(IP_TOS) does
    t = st.next_timer()                                 # the SYN's retransmission timeout
    st.handle_timer(t)
    again = parse_packet(st.packets_to_send(t)[0])
    assert (again.tos if again.src.version == 4 else again.traffic_class) == 0xB8
