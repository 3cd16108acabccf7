"""Stack-level packet dialogues for RFC 9293 MUSTs that live between IP and TCP: listening on a
port that an opening connection uses (MUST-42), the local address of a multihomed host
(MUST-43, MUST-45), IP options and extension headers (MUST-50), ICMP Source Quench (MUST-55)
and ICMP soft errors while opening (MUST-56), and one ACK for a batch of segments (MUST-59).

Whole IP packets in, whole IP packets out, no TUN, no clock. Sequence numbers sit just below
2**32 so the dialogues cross the wrap.
"""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from synack.drive import step
from synack.link.memory import MemoryLink
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.tcp.events import Reset, SoftError, StateChanged
from synack.tcp.states import State
from synack.wire import icmp as icmpw
from synack.wire.ip4 import IPv4Packet, emit_ipv4
from synack.wire.ip6 import DEST_OPTIONS, IPv6Packet, emit_ipv6
from synack.wire.packet import build_tcp_packet, parse_packet
from synack.wire.tcp import Flags, Mss, SackPermitted, TcpSegment, parse_tcp

S4, S4B, P4 = "192.0.2.2", "198.51.100.2", "192.0.2.1"   # the stack's two IPv4 addresses, the peer
S6, P6 = "2001:db8::2", "2001:db8::1"
SECRET = b"stack-must-test"
M = 2 ** 32
PISN = M - 3                                  # the peer's ISN: its sequence space wraps at once
SYN, ACK, FIN, RST, PSH = Flags.SYN, Flags.ACK, Flags.FIN, Flags.RST, Flags.PSH


def make_stack(*addrs: str, **tcp) -> Stack:
    cfg = TcpConfig(ack_delay=None, **tcp)
    return Stack(list(addrs) or [f"{S4}/24", f"{S6}/64"], secret=SECRET, config=cfg)


def out(stack: Stack, now: float = 0.0) -> list[tuple[str, str, TcpSegment]]:
    """What the stack sent: (source, destination, segment) per TCP packet."""
    res = []
    for raw in stack.packets_to_send(now):
        p = parse_packet(raw)
        assert (p.proto if isinstance(p, IPv4Packet) else p.next_header) == 6
        res.append((str(p.src), str(p.dst), parse_tcp(p.payload, p.src.packed, p.dst.packed)))
    return res


def send(stack: Stack, src: str, dst: str, seg: TcpSegment, now: float = 0.0) -> None:
    stack.receive_packet(build_tcp_packet(src, dst, seg), now)


def events(stack: Stack) -> list:
    res = []
    while (e := stack.next_event()) is not None:
        res.append(e[1])
    return res


# ================================================================ MUST-42

@pytest.mark.parametrize("opening", [State.SYN_SENT, State.SYN_RECEIVED])
def test_listen_on_the_port_of_an_opening_connection(opening):
    """RFC 9293 §3.9.1.1 (MUST-42): LISTEN on a port while a connection with that local port is
    in SYN-SENT or SYN-RECEIVED. The listener takes SYNs from others; the opening connection
    goes on and completes."""
    st = make_stack()
    conn = st.connect((P4, 80), 0.0, local=(S4, 5000))
    ((_, _, syn),) = out(st)
    assert syn.flags == SYN and syn.sport == 5000
    if opening is State.SYN_RECEIVED:
        # simultaneous open (§3.5 Figure 8): the peer's own SYN crosses ours
        send(st, P4, S4, TcpSegment(80, 5000, PISN, 0, SYN, 65535, 0, (Mss(1460),)))
        ((_, _, sa),) = out(st)
        assert sa.flags == SYN | ACK and sa.seq == syn.seq and sa.ack == (PISN + 1) % M
    assert conn.state is opening
    lst = st.listen(5000)                                  # no EADDRINUSE
    # a SYN from someone else reaches the listener ...
    send(st, P4, S4, TcpSegment(6000, 5000, 1000, 0, SYN, 65535, 0, (Mss(1460),)))
    ((_, _, sa2),) = out(st)
    assert sa2.flags == SYN | ACK and (sa2.sport, sa2.dport, sa2.ack) == (5000, 6000, 1001)
    assert len(lst.syn_queue) == 1
    # ... and the opening connection completes as before, untouched by the listener
    if opening is State.SYN_SENT:
        send(st, P4, S4, TcpSegment(80, 5000, PISN, (syn.seq + 1) % M, SYN | ACK, 65535, 0, (Mss(1460),)))
        ((_, _, a),) = out(st)
        assert a.flags == ACK and a.ack == (PISN + 1) % M
    else:
        send(st, P4, S4, TcpSegment(80, 5000, (PISN + 1) % M, (syn.seq + 1) % M, ACK, 65535))
        assert out(st) == []
    assert conn.state is State.ESTABLISHED
    assert len(lst.syn_queue) == 1 and not lst.accept_queue


# ================================================================ MUST-43, MUST-45

def test_active_open_uses_the_local_address_given():
    """RFC 9293 §3.9.1.1 (MUST-43): the optional local IP address of an OPEN is used, even
    when another address's prefix holds the destination (MUST-44 would choose that one)."""
    st = make_stack(f"{S4}/24", f"{S4B}/24")
    conn = st.connect((P4, 80), 0.0, local=(S4B, 0))
    assert conn.id.local_addr == S4B
    ((src, dst, syn),) = out(st)
    assert (src, dst, syn.flags) == (S4B, P4, SYN)
    other = st.connect((P4, 80), 0.0)                     # no local address: the prefix decides
    ((src2, _, _),) = out(st)
    assert other.id.local_addr == S4 and src2 == S4


def test_passive_open_on_one_address_takes_only_syns_sent_to_it():
    """MUST-43 for a passive OPEN: "will await an incoming connection request to that
    address"; a SYN to the host's other address finds no listener and gets a RST."""
    st = make_stack(f"{S4}/24", f"{S4B}/24")
    lst = st.listen(80, S4B)
    send(st, P4, S4, TcpSegment(40000, 80, PISN, 0, SYN, 65535, 0, (Mss(1460),)))
    ((src, _, rst),) = out(st)
    assert src == S4 and rst.flags == RST | ACK and rst.ack == (PISN + 1) % M
    assert not lst.syn_queue
    send(st, P4, S4B, TcpSegment(40001, 80, PISN, 0, SYN, 65535, 0, (Mss(1460),)))
    ((src, dst, sa),) = out(st)
    assert (src, dst, sa.flags) == (S4B, P4, SYN | ACK)
    send(st, P4, S4B, TcpSegment(40001, 80, (PISN + 1) % M, (sa.seq + 1) % M, ACK, 65535))
    conn = st.accept(lst)
    assert conn is not None and conn.id.local_addr == S4B


def _every_source(st: Stack, conn, peer_port: int, local: str, now: float) -> list[tuple[float, str]]:
    """Data out, the peer silent so it is retransmitted, then ACKed; the peer's data, ACKed;
    close, FIN, ACK of our FIN, the peer's FIN, our ACK. The source address of each segment."""
    seen: list[tuple[float, str]] = []

    def collect(t: float) -> list[TcpSegment]:
        segs = []
        for src, _, seg in out(st, t):
            seen.append((t, src))
            segs.append(seg)
        return segs

    a, r = conn.snd_nxt, conn.rcv_nxt
    lport = conn.id.local_port
    conn.send(b"x" * 100)
    st.touch(conn)
    assert [s.seq for s in collect(now)] == [a]
    t = st.next_timer()                                    # the RTO: the same segment again
    st.handle_timer(t)
    assert [s.seq for s in collect(t)] == [a]
    send(st, P4, local, TcpSegment(peer_port, lport, r, (a + 100) % M, ACK | PSH, 65535, 0, (), b"y" * 10), t)
    assert [s.ack for s in collect(t)] == [(r + 10) % M]
    assert conn.receive(100) == b"y" * 10
    conn.close(t)
    st.touch(conn)
    assert [s.flags for s in collect(t)] == [FIN | ACK]
    send(st, P4, local, TcpSegment(peer_port, lport, (r + 10) % M, (a + 101) % M, FIN | ACK, 65535), t)
    assert [s.flags for s in collect(t)] == [ACK]
    assert conn.state is State.TIME_WAIT
    return seen


def test_multihomed_passive_connection_sends_every_segment_from_the_address_the_syn_reached():
    """RFC 9293 §3.9.1.1 (MUST-45): after the first segment, every segment uses the same local
    address. A wildcard listener on a two-address host; the SYN goes to the second address
    (MUST-43: the passive OPEN then binds that address)."""
    st = make_stack(f"{S4}/24", f"{S4B}/24")
    lst = st.listen(80)
    send(st, P4, S4B, TcpSegment(40000, 80, PISN, 0, SYN, 65535, 0, (Mss(1460),)))
    ((src, _, sa),) = out(st)
    assert src == S4B
    send(st, P4, S4B, TcpSegment(40000, 80, (PISN + 1) % M, (sa.seq + 1) % M, ACK, 65535), 0.01)
    conn = st.accept(lst)
    assert conn.id.local_addr == S4B
    seen = _every_source(st, conn, 40000, S4B, 0.02)
    assert len(seen) == 5 and {s for _, s in seen} == {S4B}


def test_multihomed_active_connection_sends_every_segment_from_the_address_given():
    """MUST-45 for an active OPEN with a local address that the prefix rule would not pick:
    the SYN, its retransmission, and every later segment leave from that address."""
    st = make_stack(f"{S4}/24", f"{S4B}/24")
    conn = st.connect((P4, 80), 0.0, local=(S4B, 0))
    ((src, _, syn),) = out(st)
    t = st.next_timer()                                    # the SYN is lost: again after 1 s
    st.handle_timer(t)
    ((src2, _, syn2),) = out(st, t)
    assert (src, src2) == (S4B, S4B) and syn2.seq == syn.seq
    send(st, P4, S4B, TcpSegment(80, syn.sport, PISN, (syn.seq + 1) % M, SYN | ACK, 65535, 0, (Mss(1460),)), t)
    ((src3, _, a),) = out(st, t)
    assert src3 == S4B and a.flags == ACK
    seen = _every_source(st, conn, 80, S4B, t + 0.01)
    assert len(seen) == 5 and {s for _, s in seen} == {S4B}


# ================================================================ MUST-50

_RECORD_ROUTE = bytes([7, 7, 4, 0, 0, 0, 0]) + bytes([0])      # RR with room for one address, EOL
_ROUTER_ALERT = bytes([148, 4, 0, 0])                           # RFC 2113
_UNKNOWN_OPT = bytes([0x9E, 4, 0xAB, 0xCD])                     # an option type no one defines


def test_syn_in_an_ipv4_datagram_with_options_gets_a_normal_syn_ack():
    """RFC 9293 §3.9.2 (MUST-50): IP options TCP does not understand are ignored; the SYN is
    answered exactly as one without options (the SYN-ACK carries no IP options)."""
    plain, opts = make_stack(), make_stack()
    for st in (plain, opts):
        st.listen(80)
    syn = TcpSegment(40000, 80, PISN, 0, SYN, 65535, 0, (Mss(1460), SackPermitted()))
    send(plain, P4, S4, syn)
    seg_tcp = build_tcp_packet(P4, S4, syn)[20:]
    opts.receive_packet(emit_ipv4(IPv4Packet(ip_address(P4), ip_address(S4), 6, seg_tcp,
                                             options=_RECORD_ROUTE + _ROUTER_ALERT + _UNKNOWN_OPT)), 0.0)
    (want,) = plain.packets_to_send(0.0)
    (got,) = opts.packets_to_send(0.0)
    sa = parse_tcp(parse_packet(got).payload)
    assert sa.flags == SYN | ACK and sa.ack == (PISN + 1) % M and sa.mss == 1460 and sa.sack_permitted
    assert got == want                                        # the same packet, octet for octet
    assert parse_packet(got).options == b""
    assert opts.stats["drop: bad IP packet"] == 0


def test_syn_in_an_ipv6_packet_with_destination_options_gets_a_normal_syn_ack():
    """MUST-50 for IPv6: a Destination Options header (an option of an unknown type whose
    action bits say "skip", RFC 8200 §4.2, then PadN) before the SYN changes nothing."""
    plain, opts = make_stack(), make_stack()
    for st in (plain, opts):
        st.listen(80)
    syn = TcpSegment(40000, 80, PISN, 0, SYN, 65535, 0, (Mss(1440),))
    send(plain, P6, S6, syn)
    seg_tcp = build_tcp_packet(P6, S6, syn)[40:]
    dest_opts = bytes([0, 0, 0x1E, 2, 0xAB, 0xCD, 1, 0])       # next header (chained by emit), len 0
    opts.receive_packet(emit_ipv6(IPv6Packet(ip_address(P6), ip_address(S6), 6, seg_tcp,
                                             ext_headers=((DEST_OPTIONS, dest_opts),))), 0.0)
    (want,) = plain.packets_to_send(0.0)
    (got,) = opts.packets_to_send(0.0)
    sa = parse_tcp(parse_packet(got).payload)
    assert sa.flags == SYN | ACK and sa.ack == (PISN + 1) % M and sa.mss == 1440
    assert got == want
    assert parse_packet(got).ext_headers == ()


# ================================================================ MUST-55, MUST-56

def _icmp4(msg, src: str = P4) -> bytes:
    return emit_ipv4(IPv4Packet(ip_address(src), ip_address(S4), 1, icmpw.emit_icmp4(msg)))


def _icmp6(msg, src: str = P6) -> bytes:
    return emit_ipv6(IPv6Packet(ip_address(src), ip_address(S6), 58, icmpw.emit_icmp6(msg, ip_address(src),
                                                                                    ip_address(S6))))


def _established(st: Stack):
    conn = st.connect((P4, 80), 0.0)
    ((_, _, syn),) = out(st)
    send(st, P4, S4, TcpSegment(80, syn.sport, PISN, (syn.seq + 1) % M, SYN | ACK, 65535, 0, (Mss(1460),)), 0.01)
    out(st, 0.01)
    events(st)
    return conn


@pytest.mark.parametrize("state", [State.SYN_SENT, State.ESTABLISHED])
def test_source_quench_is_discarded_silently(state):
    """RFC 9293 §3.9.2.2 (MUST-55): a Source Quench quoting our segment changes nothing (no
    window reduction, no soft error, no event) and draws no reply."""
    st = make_stack()
    if state is State.SYN_SENT:
        conn = st.connect((P4, 80), 0.0)
        (quoted,) = st.packets_to_send(0.0)
        events(st)
    else:
        conn = _established(st)
        conn.send(b"z" * 1000)
        st.touch(conn)
        (quoted,) = st.packets_to_send(0.02)
    before = conn.info()
    st.receive_packet(_icmp4(icmpw.Icmp(icmpw.ICMP4_SOURCE_QUENCH, 0, bytes(4), quoted[:28])), 0.03)
    assert st.packets_to_send(0.03) == []
    assert events(st) == []
    assert conn.state is state and conn.soft_error is None
    assert conn.info() == before                              # cwnd, ssthresh, RTO, timers: all as they were
    assert st.stats["icmp_in"] == 1 and st.stats["icmp_accepted"] == 0


_SOFT4 = [icmpw.DestUnreachable(0, b""), icmpw.DestUnreachable(1, b""), icmpw.DestUnreachable(5, b""),
          icmpw.TimeExceeded(0, b""), icmpw.TimeExceeded(1, b""), icmpw.ParameterProblem(0, 20, b"")]
_SOFT6 = [icmpw.DestUnreachable(0, b""), icmpw.DestUnreachable(3, b""), icmpw.TimeExceeded(0, b""),
          icmpw.TimeExceeded(1, b""), icmpw.ParameterProblem(0, 40, b""), icmpw.ParameterProblem(1, 40, b""),
          icmpw.ParameterProblem(2, 40, b"")]


def _ids(msgs):
    return [f"{type(m).__name__}-{m.code}" for m in msgs]


@pytest.mark.parametrize("v6,msg", [(False, m) for m in _SOFT4] + [(True, m) for m in _SOFT6],
                         ids=[f"v4-{i}" for i in _ids(_SOFT4)] + [f"v6-{i}" for i in _ids(_SOFT6)])
def test_soft_icmp_error_leaves_a_syn_sent_connection_open(v6, msg):
    """RFC 9293 §3.9.2.2 (MUST-56): Destination Unreachable codes 0, 1, 5 (ICMPv6: 0, 3), Time
    Exceeded and Parameter Problem are soft errors: the opening connection is not aborted, the
    application hears of it (SHLD-25: a SoftError event and ``soft_error``), the SYN is
    retransmitted on time and a SYN-ACK still completes the handshake."""
    st = make_stack()
    local, peer = (S6, P6) if v6 else (S4, P4)
    conn = st.connect((peer, 80), 0.0)
    (syn_pkt,) = st.packets_to_send(0.0)
    syn = parse_tcp(parse_packet(syn_pkt).payload)
    events(st)
    quoted = syn_pkt[:48] if v6 else syn_pkt[:28]
    msg = type(msg)(*[quoted if f == "original" else getattr(msg, f) for f in msg.__slots__])
    st.receive_packet(_icmp6(msg) if v6 else _icmp4(msg), 0.5)
    assert st.packets_to_send(0.5) == []                       # nothing sent in answer
    assert conn.state is State.SYN_SENT
    evs = events(st)
    assert [type(e) for e in evs] == [SoftError], evs
    assert conn.soft_error == evs[0].message and f"code {msg.code}" in conn.soft_error
    assert st.stats["icmp_accepted"] == 1
    assert st.next_timer() == 1.0                              # the SYN's RTO, not moved
    st.handle_timer(1.0)
    ((_, _, again),) = out(st, 1.0)
    assert again.flags == SYN and again.seq == syn.seq
    send(st, peer, local, TcpSegment(80, syn.sport, PISN, (syn.seq + 1) % M, SYN | ACK, 65535, 0, (Mss(1400),)),
         1.2)
    ((_, _, a),) = out(st, 1.2)
    assert a.flags == ACK and conn.state is State.ESTABLISHED
    assert not any(isinstance(e, Reset) for e in events(st))


# ================================================================ MUST-59

def test_a_batch_of_segments_is_acked_once():
    """RFC 9293 §3.10.7.4 (MUST-59): segments queued together are all processed before any
    ACK is sent. With ``ack_delay=None`` each segment alone would be ACKed at once; three that
    arrive in one batch (one ``step()`` over a link) get one ACK, for all of them."""
    st = make_stack()
    conn = _established(st)
    a, r, lport = conn.snd_nxt, conn.rcv_nxt, conn.id.local_port
    ours, theirs = MemoryLink.pair()
    for i in range(3):
        theirs.transmit(build_tcp_packet(P4, S4, TcpSegment(80, lport, (r + 100 * i) % M, a, ACK | PSH, 65535, 0,
                                                            (), bytes([65 + i]) * 100)), 0.02)
    step(st, ours, 0.02)
    got = [parse_tcp(parse_packet(p).payload) for p in theirs.receive(0.02)]
    assert [(s.flags, s.seq, s.ack) for s in got] == [(ACK, a, (r + 300) % M)]
    assert conn.receive(1000) == b"A" * 100 + b"B" * 100 + b"C" * 100


def test_a_batch_of_out_of_order_segments_is_acked_once():
    """MUST-59 where each segment would draw an immediate ACK on its own (out of order,
    §3.10.7.4; RFC 5681 §4.2): one ACK for the batch, its SACK block covering all three."""
    st = make_stack()
    st.listen(80)
    send(st, P4, S4, TcpSegment(40000, 80, PISN, 0, SYN, 65535, 0, (Mss(1460), SackPermitted())))
    ((_, _, sa),) = out(st)
    a, r = (sa.seq + 1) % M, (PISN + 1) % M
    send(st, P4, S4, TcpSegment(40000, 80, r, a, ACK, 65535))
    ours, theirs = MemoryLink.pair()
    for i in range(1, 4):                                      # the first 100 octets are missing
        theirs.transmit(build_tcp_packet(P4, S4, TcpSegment(40000, 80, (r + 100 * i) % M, a, ACK, 65535, 0,
                                                            (), b"q" * 100)), 0.02)
    step(st, ours, 0.02)
    got = [parse_tcp(parse_packet(p).payload) for p in theirs.receive(0.02)]
    assert len(got) == 1 and got[0].flags == ACK and got[0].ack == r
    assert got[0].sack_blocks == (((r + 100) % M, (r + 400) % M),)
