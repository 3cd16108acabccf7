"""Sans-IO tests of ``synack.stack.host.Stack``: whole IP packets in, whole IP packets out, no
TUN, no clock. A ``Peer`` builds the other end's packets by hand, so every test states exactly
what crossed the wire. Sequence numbers sit just below 2**32 so the dialogues cross the wrap.

Covered: RSTs for segments that match nothing (RFC 9293 §3.10.7.1), SYN and accept queue bounds
(RFC 4987 §2.2), SYN cookies off/on/always (RFC 4987 §3.6), ephemeral port choice (RFC 6056),
EADDRINUSE, TIME-WAIT reuse (RFC 6191), ICMP echo (RFC 792, RFC 4443) and ICMP errors reaching
TCP (RFC 1122 §4.2.3.9, RFC 5927, RFC 1191/8201), and the counters.
"""

from __future__ import annotations

import errno
from ipaddress import ip_address

import pytest

from synack.stack.host import Acceptable, Stack, StackConfig
from synack.tcp.config import TcpConfig
from synack.tcp.errors import ConnectionRefused
from synack.tcp.events import Reset, SoftError
from synack.tcp.states import State
from synack.wire import icmp as icmpw
from synack.wire.ip4 import IPv4Packet, emit_ipv4
from synack.wire.ip6 import IPv6Packet, emit_ipv6
from synack.wire.packet import build_tcp_packet, parse_packet
from synack.wire.tcp import Flags, Mss, SackPermitted, TcpSegment, Timestamps, WindowScale, parse_tcp

S4, P4 = "192.0.2.2", "192.0.2.1"              # the stack, the hand-built peer
S6, P6 = "2001:db8::2", "2001:db8::1"
SECRET = b"stack-unit-test"
M = 2 ** 32
PISN = M - 3                                  # the peer's ISN: its sequence space wraps at once
SYN, ACK, FIN, RST, PSH = Flags.SYN, Flags.ACK, Flags.FIN, Flags.RST, Flags.PSH


def make_stack(**kw) -> Stack:
    tcp = kw.pop("config", TcpConfig(ack_delay=None))
    return Stack([f"{S4}/24", f"{S6}/64"], secret=kw.pop("secret", SECRET), config=tcp,
                 stack_config=StackConfig(**kw))


class Peer:
    """The other end, by hand: sends TCP segments / raw packets, reads what the stack sent."""

    def __init__(self, stack: Stack, addr: str = P4, stack_addr: str = S4) -> None:
        self.stack, self.addr, self.stack_addr = stack, addr, stack_addr

    def send(self, seg: TcpSegment, now: float = 0.0) -> None:
        self.stack.receive_packet(build_tcp_packet(self.addr, self.stack_addr, seg), now)

    def raw(self, packet: bytes, now: float = 0.0) -> None:
        self.stack.receive_packet(packet, now)

    def packets(self, now: float = 0.0) -> list:
        return [parse_packet(b) for b in self.stack.packets_to_send(now)]

    def segs(self, now: float = 0.0) -> list[TcpSegment]:
        out = []
        for p in self.packets(now):
            proto = p.proto if isinstance(p, IPv4Packet) else p.next_header
            assert proto == 6, f"expected TCP, got protocol {proto}"
            assert str(p.src) == self.stack_addr and str(p.dst) == self.addr
            out.append(parse_tcp(p.payload, p.src.packed, p.dst.packed))
        return out

    def one(self, now: float = 0.0) -> TcpSegment:
        segs = self.segs(now)
        assert len(segs) == 1, [s.summary() for s in segs]
        return segs[0]

    def syn(self, sport: int, dport: int, isn: int = PISN, opts=(Mss(1460),), now: float = 0.0) -> TcpSegment:
        """Send a SYN and return the SYN-ACK it got."""
        self.send(TcpSegment(sport, dport, isn, 0, SYN, 65535, 0, tuple(opts)), now)
        sa = self.one(now)
        assert sa.flags == SYN | ACK and sa.ack == (isn + 1) % M, sa.summary()
        return sa

    def handshake(self, sport: int, dport: int, isn: int = PISN, opts=(Mss(1460),), now: float = 0.0,
                  data: bytes = b"") -> TcpSegment:
        sa = self.syn(sport, dport, isn, opts, now)
        ts = sa.timestamps
        mine = next((o.val for o in opts if isinstance(o, Timestamps)), 0)
        ack_opts = (Timestamps(mine + 1, ts.val),) if ts is not None else ()
        self.send(TcpSegment(sport, dport, (isn + 1) % M, (sa.seq + 1) % M, ACK | (PSH if data else 0), 65535, 0,
                             ack_opts, data), now)
        return sa


def drain_events(stack: Stack) -> list:
    out = []
    while (e := stack.next_event()) is not None:
        out.append(e)
    return out


# ================================================================ RST for segments matching nothing

def test_rst_for_ack_bearing_segment_takes_seq_from_seg_ack():
    """RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST>, no ACK."""
    st = make_stack()
    peer = Peer(st)
    peer.send(TcpSegment(40000, 81, M - 5, M - 2, ACK | PSH, 1000, 0, (), b"hello"))
    rst = peer.one()
    assert rst.flags == RST
    assert (rst.sport, rst.dport, rst.seq) == (81, 40000, M - 2)
    assert not rst.payload
    assert st.stats["rst_out"] == 1 and st.stats["no_tcb"] == 1


@pytest.mark.parametrize("flags,payload,expect_ack", [
    (SYN, b"", 0),                            # (M - 1) + 1 wraps to 0
    (FIN, b"", 0),
    (SYN | FIN, b"abc", 4),                   # SEG.LEN counts SYN, FIN and the data
    (PSH, b"0123456789", 9),
], ids=["syn", "fin", "syn-fin-data", "data-no-ack"])
def test_rst_for_segment_without_ack_acks_seg_seq_plus_len(flags, payload, expect_ack):
    """RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    st = make_stack()
    peer = Peer(st)
    peer.send(TcpSegment(40001, 81, M - 1, 0, flags, 1000, 0, (), payload))
    rst = peer.one()
    assert rst.flags == RST | ACK
    assert rst.seq == 0 and rst.ack == expect_ack


@pytest.mark.parametrize("flags", [RST, RST | ACK], ids=["rst", "rst-ack"])
def test_no_rst_for_a_rst(flags):
    st = make_stack()
    peer = Peer(st)
    peer.send(TcpSegment(40002, 81, 5, 7, flags, 0))
    assert peer.segs() == []
    assert st.stats["rst_out"] == 0
    assert st.stats["drop: RST for no connection"] == 1


def test_rst_for_stray_segment_over_ipv6():
    st = make_stack()
    peer = Peer(st, P6, S6)
    peer.send(TcpSegment(40003, 22, M - 1, 0, SYN, 1000))
    rst = peer.one()
    assert rst.flags == RST | ACK and rst.ack == 0


@pytest.mark.parametrize("flags,seq,ack", [(ACK | PSH, M - 2, 0), (SYN, 0, 0)], ids=["ack", "syn"])
def test_rst_for_a_segment_with_timestamps_echoes_its_tsval(flags, seq, ack):
    """RFC 7323 §5.2 (RECOMMENDED): the RST carries a TSopt with TSecr = SEG.TSval and TSval = 0."""
    st = make_stack()
    peer = Peer(st)
    peer.send(TcpSegment(40005, 81, M - 1, M - 2, flags, 1000, 0, (Timestamps(M - 7, 12345),), b""))
    rst = peer.one()
    assert (rst.seq, rst.ack) == (seq, ack) and rst.flags & RST
    assert rst.timestamps == Timestamps(0, M - 7)


def test_rst_for_a_segment_without_timestamps_or_with_rst_timestamps_off_has_no_options():
    peer = Peer(make_stack())
    peer.send(TcpSegment(40006, 81, 1, 2, ACK, 1000))
    assert peer.one().options == ()
    peer = Peer(make_stack(config=TcpConfig(ack_delay=None, rst_timestamps=False)))
    peer.send(TcpSegment(40006, 81, 1, 2, ACK, 1000, 0, (Timestamps(99, 1),)))
    assert peer.one().options == ()


def test_listener_answers_a_stray_ack_with_a_rst_echoing_its_tsval():
    """RFC 9293 §3.10.7.2 second check (an ACK to a LISTEN socket, cookies off) and RFC 7323 §5.2."""
    st = make_stack(syncookies="off")
    st.listen(80)
    peer = Peer(st)
    peer.send(TcpSegment(40007, 80, 5, M - 1, ACK, 1000, 0, (Timestamps(777, 3),)))
    rst = peer.one()
    assert rst.flags == RST and rst.seq == M - 1 and rst.timestamps == Timestamps(0, 777)
    assert st.stats["no_tcb"] == 0                          # the listener, not the no-TCB path, answered


def test_blackhole_mode_stays_silent():
    st = make_stack(rst_for_closed_ports=False)
    peer = Peer(st)
    peer.send(TcpSegment(40004, 81, 1, 0, SYN, 1000))
    assert peer.segs() == []


def test_ack_to_listener_is_reset_with_seg_ack():
    """§3.10.7.2, second check: an ACK in LISTEN gets <SEQ=SEG.ACK><CTL=RST> (cookies off)."""
    st = make_stack(syncookies="off")
    st.listen(80)
    peer = Peer(st)
    peer.send(TcpSegment(40005, 80, M - 2, M - 9, ACK, 1000))
    rst = peer.one()
    assert rst.flags == RST and rst.seq == M - 9
    assert st.stats["syncookies_failed"] == 0


# ================================================================ listener queues

def test_syn_queue_is_bounded():
    st = make_stack(syncookies="off", syn_backlog=4)
    lst = st.listen(80)
    peer = Peer(st)
    for i in range(10):
        peer.send(TcpSegment(41000 + i, 80, PISN, 0, SYN, 65535, 0, (Mss(1460),)))
    out = peer.segs()
    assert [s.flags for s in out] == [SYN | ACK] * 4
    assert len(lst.syn_queue) == 4 and len(st.conns) == 4
    assert st.stats["syn_queue_full"] == 6
    assert st.stats["drop: listen"] == 6


def test_accept_queue_is_bounded_at_syn_time():
    st = make_stack(syncookies="off")
    lst = st.listen(80, backlog=2)
    peer = Peer(st)
    for i in range(2):
        peer.handshake(42000 + i, 80)
    assert len(lst.accept_queue) == 2
    peer.send(TcpSegment(42002, 80, PISN, 0, SYN, 65535, 0, (Mss(1460),)))
    assert peer.segs() == []                                  # no SYN-ACK: nowhere to put it
    assert st.stats["listen_overflow"] == 1
    assert st.accept(lst) is not None                         # room again
    peer.handshake(42003, 80)
    assert len(lst.accept_queue) == 2


def test_accept_queue_is_bounded_when_handshakes_complete():
    """Three SYNs fit the SYN queue while the accept queue holds 2: the third handshake's ACK
    is dropped (Linux: tcp_v4_syn_recv_sock, LINUX_MIB_LISTENOVERFLOWS) and the connection
    stays half-open; its SYN-ACK is retransmitted and it completes once there is room."""
    st = make_stack(syncookies="off")
    lst = st.listen(80, backlog=2)
    peer = Peer(st)
    synacks = [peer.syn(43000 + i, 80) for i in range(3)]
    for i, sa in enumerate(synacks):
        peer.send(TcpSegment(43000 + i, 80, PISN + 1, (sa.seq + 1) % M, ACK, 65535))
    assert len(lst.accept_queue) == 2
    assert len(lst.syn_queue) == 1
    assert st.stats["listen_overflow"] == 1
    peer.segs()
    first = st.accept(lst)
    assert first is not None and first.state is State.ESTABLISHED
    # the SYN-ACK retransmission (RTO 1 s) draws the peer's ACK again
    again = [s for s in peer.segs(1.5) if s.flags == SYN | ACK]
    assert again and again[0].dport == 43002
    peer.send(TcpSegment(43002, 80, PISN + 1, (synacks[2].seq + 1) % M, ACK, 65535), 1.5)
    assert len(lst.accept_queue) == 2 and not lst.syn_queue


def test_accepted_connection_gets_acceptable_event():
    st = make_stack()
    lst = st.listen(80)
    Peer(st).handshake(43100, 80)
    Peer(st).segs()
    events = drain_events(st)
    assert any(o is lst and isinstance(e, Acceptable) and e.port == 80 for o, e in events)
    conn = st.accept(lst)
    assert conn.state is State.ESTABLISHED
    assert conn.id.remote_port == 43100


# ================================================================ SYN cookies

SYN_OPTS = (Mss(1460), SackPermitted(), Timestamps(777, 0), WindowScale(7))


def test_cookies_on_only_when_the_syn_queue_is_full():
    st = make_stack(syncookies="on", syn_backlog=2)
    lst = st.listen(80)
    peer = Peer(st)
    peer.syn(44000, 80)
    peer.syn(44001, 80)
    assert st.stats["syncookies_sent"] == 0
    sa = peer.syn(44002, 80, opts=SYN_OPTS)                   # queue full: a cookie, no state
    assert st.stats["syncookies_sent"] == 1
    assert len(st.conns) == 2 and len(lst.syn_queue) == 2
    # the handshake's ACK, carrying data, brings the connection back from the cookie
    ts = sa.timestamps
    assert ts is not None and ts.ecr == 777
    peer.send(TcpSegment(44002, 80, PISN + 1, (sa.seq + 1) % M, ACK | PSH, 1000, 0,
                         (Timestamps(778, ts.val),), b"early data"))
    assert st.stats["syncookies_recv"] == 1
    conn = st.conns[(ip_address(S4), 80, ip_address(P4), 44002)]
    assert conn.state is State.ESTABLISHED
    assert list(lst.accept_queue) == [conn]
    assert conn.receive(100) == b"early data"
    info = conn.info()
    assert info.wscale_ok and info.snd_wscale == 7           # kept in the TSval's low bits
    assert info.sack_ok and info.timestamps_ok
    assert info.snd_mss == 1460 - 12                          # MSS 1460 is in the cookie's table
    acks = peer.segs()
    assert acks and acks[-1].ack == (PISN + 1 + 10) % M


@pytest.mark.parametrize("ms", range(0, 64, 3))
def test_cookie_tsval_is_never_ahead_of_the_clock(ms):
    """The option bits in the SYN-ACK's TSval must not push it past the TS clock: the peer
    keeps it as TS.Recent and PAWS (RFC 7323 §5.3) would drop our next segment (found by
    test_flood: a third of cookie connections lost their first data segment)."""
    st = make_stack(syncookies="always")
    st.listen(80)
    peer = Peer(st)
    now = 10.0 + ms / 1000
    sa = peer.syn(44600, 80, opts=(Mss(1460), SackPermitted(), Timestamps(777, 0), WindowScale(14)), now=now)
    peer.send(TcpSegment(44600, 80, PISN + 1, (sa.seq + 1) % M, ACK | PSH, 1000, 0,
                         (Timestamps(778, sa.timestamps.val),), b"x"), now)
    conn = st.conns[(ip_address(S4), 80, ip_address(P4), 44600)]
    assert conn.receive(10) == b"x"
    conn.send(b"y")
    st.touch(conn)
    data = [s for s in peer.segs(now) if s.payload]
    assert data, "no data segment"
    diff = (data[0].timestamps.val - sa.timestamps.val) % M
    assert diff < 2 ** 31, f"SYN-ACK TSval {sa.timestamps.val} is ahead of the next one {data[0].timestamps.val}"


def test_cookie_without_timestamps_loses_wscale_and_sack():
    st = make_stack(syncookies="always")
    st.listen(80)
    peer = Peer(st)
    sa = peer.syn(44100, 80, opts=(Mss(1400), SackPermitted(), WindowScale(5)))
    assert len(st.conns) == 0
    peer.send(TcpSegment(44100, 80, PISN + 1, (sa.seq + 1) % M, ACK, 1000))
    conn = st.conns[(ip_address(S4), 80, ip_address(P4), 44100)]
    info = conn.info()
    assert info.state is State.ESTABLISHED and not info.wscale_ok and not info.sack_ok
    assert info.snd_mss == 1400


@pytest.mark.parametrize("mode", ["off", "always"])
def test_synack_window_rounded_to_the_mss_cookie_or_not(mode):
    """TcpConfig.syn_window_round_mss (Linux): a multiple of the MSS the peer will send, 12 octets
    less with timestamps; the cookie SYN-ACK looks like the ordinary one."""
    st = make_stack(syncookies=mode, config=TcpConfig(syn_window=65536, syn_window_round_mss=True))
    st.listen(80)
    peer = Peer(st)
    assert peer.syn(44700, 80, opts=(Mss(1460),)).window == 64240                         # 44 * 1460
    assert peer.syn(44701, 80, opts=(Mss(1460), Timestamps(5, 0))).window == 65160        # 45 * 1448


@pytest.mark.parametrize("mode", ["on", "always"])
def test_forged_cookie_ack_is_dropped_and_reset(mode):
    st = make_stack(syncookies=mode, syn_backlog=1)
    lst = st.listen(80)
    peer = Peer(st)
    if mode == "on":
        peer.syn(44200, 80)                                   # fill the queue
    sa = peer.syn(44201, 80)
    bad_ack = (sa.seq + 2) % M                                # not the cookie + 1
    peer.send(TcpSegment(44201, 80, PISN + 1, bad_ack, ACK, 1000))
    rst = peer.one()
    assert rst.flags == RST and rst.seq == bad_ack
    assert st.stats["syncookies_failed"] == 1 and st.stats["syncookies_recv"] == 0
    assert (ip_address(S4), 80, ip_address(P4), 44201) not in st.conns
    assert not lst.accept_queue
    # a cookie made for another 4-tuple does not open this one either
    peer.send(TcpSegment(44202, 80, PISN + 1, (sa.seq + 1) % M, ACK, 1000))
    assert peer.one().flags == RST
    assert st.stats["syncookies_failed"] == 2


@pytest.mark.parametrize("delay,accepted", [(100.0, True), (200.0, False)])
def test_stale_cookie_is_dropped_and_reset(delay, accepted):
    """The cookie's 5-bit counter ticks every 64 s and is good for two ticks (64-128 s)."""
    st = make_stack(syncookies="always")
    st.listen(80)
    peer = Peer(st)
    sa = peer.syn(44300, 80, now=0.0)
    peer.send(TcpSegment(44300, 80, PISN + 1, (sa.seq + 1) % M, ACK, 1000), delay)
    if accepted:
        assert st.stats["syncookies_recv"] == 1
        assert len(st.conns) == 1
    else:
        rst = peer.one(delay)
        assert rst.flags == RST and rst.seq == (sa.seq + 1) % M
        assert st.stats["syncookies_failed"] == 1 and len(st.conns) == 0


def test_cookies_always_keep_no_tcb_for_10000_syns():
    st = make_stack(syncookies="always", syn_backlog=16)
    lst = st.listen(80)
    peer = Peer(st)
    n = 10_000
    answered = 0
    for i in range(n):
        peer.send(TcpSegment(1024 + i, 80, (PISN + i * 7919) % M, 0, SYN, 65535, 0, (Mss(1460),)))
        assert len(st.conns) == 0 and not lst.syn_queue
        if i % 500 == 499:
            answered += sum(1 for s in peer.segs() if s.flags == SYN | ACK)
    answered += sum(1 for s in peer.segs() if s.flags == SYN | ACK)
    assert answered == n
    assert st.stats["syncookies_sent"] == n
    assert len(st.conns) == 0 and st.next_timer() is None     # nothing held, nothing armed


def test_cookies_off_never_sends_a_cookie():
    st = make_stack(syncookies="off", syn_backlog=1)
    st.listen(80)
    peer = Peer(st)
    peer.syn(44400, 80)
    peer.send(TcpSegment(44401, 80, PISN, 0, SYN, 65535))
    assert peer.segs() == []
    assert st.stats["syncookies_sent"] == 0 and st.stats["syn_queue_full"] == 1


def test_cookie_ack_when_accept_queue_is_full_is_dropped_silently():
    st = make_stack(syncookies="always")
    lst = st.listen(80, backlog=1)
    peer = Peer(st)
    sa1 = peer.syn(44500, 80)
    sa2 = peer.syn(44501, 80)
    peer.send(TcpSegment(44500, 80, PISN + 1, (sa1.seq + 1) % M, ACK, 1000))
    assert len(lst.accept_queue) == 1
    peer.segs()
    peer.send(TcpSegment(44501, 80, PISN + 1, (sa2.seq + 1) % M, ACK, 1000))
    assert peer.segs() == []                                  # no RST: the peer may retry
    assert st.stats["listen_overflow"] == 1 and len(st.conns) == 1


# ================================================================ ports

def test_ephemeral_ports_are_not_sequential_across_destinations():
    """RFC 6056 §3.3.3: the port sequence starts at a keyed hash of (local, remote, port)."""
    st = make_stack()
    ports = [st.connect((P4, 1000 + i), 0.0).id.local_port for i in range(200)]
    assert len(set(ports)) > 190                              # 4-tuples differ: a repeat is legal
    assert all(32768 <= p <= 60999 for p in ports)
    steps = sum(1 for a, b in zip(ports, ports[1:]) if b - a == 1)
    assert steps < 5, ports[:20]
    assert max(ports) - min(ports) > 10_000                  # spread over the range
    other = make_stack(secret=b"another host")
    ports2 = [other.connect((P4, 1000 + i), 0.0).id.local_port for i in range(200)]
    assert sum(1 for a, b in zip(ports, ports2) if a == b) < 5   # the secret decides


def test_ephemeral_ports_to_one_destination_never_collide():
    st = make_stack()
    ports = [st.connect((P4, 80), 0.0).id.local_port for _ in range(300)]
    assert len(set(ports)) == 300


def test_eaddrinuse_on_bind_conflicts():
    st = make_stack()
    st.listen(80)
    for args in [(80,), (80, S4), (80, S6)]:
        with pytest.raises(OSError) as e:
            st.listen(*args)
        assert e.value.errno == errno.EADDRINUSE
    st.listen(8080, S4)
    with pytest.raises(OSError) as e:
        st.listen(8080, S4)
    assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(OSError) as e:
        st.listen(8080)                                       # the wildcard covers S4:8080
    assert e.value.errno == errno.EADDRINUSE
    st.listen(8080, S6)                                       # another address: fine
    st.connect((P4, 5000), 0.0, local=(S4, 50000))
    with pytest.raises(OSError) as e:
        st.connect((P4, 5000), 0.0, local=(S4, 50000))
    assert e.value.errno == errno.EADDRINUSE
    st.connect((P4, 5001), 0.0, local=(S4, 50000))           # another 4-tuple: fine


# ================================================================ TIME-WAIT reuse (RFC 6191)

def _server_in_time_wait(ts: bool):
    """The stack accepts, closes first and ends in TIME-WAIT; returns (stack, peer, conn)."""
    st = make_stack(syncookies="off")
    lst = st.listen(80)
    peer = Peer(st)
    opts = (Mss(1460), Timestamps(5000, 0)) if ts else (Mss(1460),)
    sa = peer.handshake(45000, 80, opts=opts)
    conn = st.accept(lst)
    conn.close(0.1)
    st.touch(conn)
    fin = peer.one(0.1)
    assert fin.flags & FIN
    tsopt = (Timestamps(5100, fin.timestamps.val),) if ts else ()
    peer.send(TcpSegment(45000, 80, PISN + 1, (sa.seq + 2) % M, ACK | FIN, 65535, 0, tsopt), 0.2)
    assert conn.state is State.TIME_WAIT
    peer.segs(0.2)
    return st, peer, conn


@pytest.mark.parametrize("tsval,accepted", [(9000, True), (5100, False), (4000, False)],
                         ids=["newer-ts", "same-ts", "older-ts"])
def test_time_wait_reuse_by_timestamp(tsval, accepted):
    st, peer, old = _server_in_time_wait(ts=True)
    # ISN below the old RCV.NXT: only the timestamp may decide (RFC 6191 §2)
    peer.send(TcpSegment(45000, 80, PISN - 100, 0, SYN, 65535, 0, (Mss(1460), Timestamps(tsval, 0))), 1.0)
    segs = peer.segs(1.0)
    key = (ip_address(S4), 80, ip_address(P4), 45000)
    if accepted:
        assert [s.flags for s in segs] == [SYN | ACK] and segs[0].ack == (PISN - 99) % M
        assert st.conns[key] is not old and st.conns[key].state is State.SYN_RECEIVED
    else:
        # the TIME-WAIT record stays, and the test's reference keeps the TCB answering behind it
        assert key not in st.conns and st.time_wait[key].live_tcb() is old and old.state is State.TIME_WAIT
        assert all(not s.flags & SYN for s in segs)


@pytest.mark.parametrize("isn_delta,accepted", [(1000, True), (-1000, False)], ids=["higher-isn", "lower-isn"])
def test_time_wait_reuse_by_isn_without_timestamps(isn_delta, accepted):
    st, peer, old = _server_in_time_wait(ts=False)
    new_isn = (old.rcv_nxt + isn_delta) % M                   # PISN + 2 + 1000 wraps past 2**32
    peer.send(TcpSegment(45000, 80, new_isn, 0, SYN, 65535, 0, (Mss(1460),)), 1.0)
    segs = peer.segs(1.0)
    key = (ip_address(S4), 80, ip_address(P4), 45000)
    if accepted:
        assert [s.flags for s in segs] == [SYN | ACK]
        assert st.conns[key].state is State.SYN_RECEIVED
    else:
        # the TIME-WAIT record stays, and the test's reference keeps the TCB answering behind it
        assert key not in st.conns and st.time_wait[key].live_tcb() is old and old.state is State.TIME_WAIT
        assert all(not s.flags & SYN for s in segs)


# ================================================================ ICMP echo

def test_icmp_echo_v4():
    st = make_stack()
    req = icmpw.emit_icmp4(icmpw.Echo(0x1234, 7, b"ping data"))
    st.receive_packet(emit_ipv4(IPv4Packet(ip_address(P4), ip_address(S4), 1, req)), 0.0)
    (p,) = Peer(st).packets()
    assert (str(p.src), str(p.dst), p.proto) == (S4, P4, 1)
    assert icmpw.decode_icmp4(icmpw.parse_icmp4(p.payload)) == icmpw.Echo(0x1234, 7, b"ping data", reply=True)
    assert st.stats["icmp_echo_replies"] == 1


def test_icmp_echo_v6():
    st = make_stack()
    src, dst = ip_address(P6), ip_address(S6)
    req = icmpw.emit_icmp6(icmpw.Echo(0x4321, 9, b"ping6"), src, dst)
    st.receive_packet(emit_ipv6(IPv6Packet(src, dst, 58, req)), 0.0)
    (p,) = Peer(st, P6, S6).packets()
    assert (p.src, p.dst, p.next_header) == (dst, src, 58)
    msg = icmpw.decode_icmp6(icmpw.parse_icmp6(p.payload, p.src, p.dst))
    assert msg == icmpw.Echo(0x4321, 9, b"ping6", reply=True)


def test_icmp_echo_can_be_turned_off_and_replies_are_not_answered():
    st = make_stack(icmp_echo=False)
    st.receive_packet(emit_ipv4(IPv4Packet(ip_address(P4), ip_address(S4), 1,
                                           icmpw.emit_icmp4(icmpw.Echo(1, 1)))), 0.0)
    st2 = make_stack()
    st2.receive_packet(emit_ipv4(IPv4Packet(ip_address(P4), ip_address(S4), 1,
                                            icmpw.emit_icmp4(icmpw.Echo(1, 1, reply=True)))), 0.0)
    assert st.packets_to_send(0.0) == [] and st2.packets_to_send(0.0) == []


# ================================================================ ICMP errors reaching TCP

def _icmp4_error(msg, now=0.0, src=P4) -> bytes:
    return emit_ipv4(IPv4Packet(ip_address(src), ip_address(S4), 1, icmpw.emit_icmp4(msg)))


def _client(stack: Stack, port: int = 80, opts=(Mss(1460),)):
    """The stack connects out; the peer answers SYN-ACK; returns (conn, peer, syn packet)."""
    peer = Peer(stack)
    conn = stack.connect((P4, port), 0.0)
    (syn_pkt,) = stack.packets_to_send(0.0)
    syn = parse_tcp(parse_packet(syn_pkt).payload)
    return conn, peer, syn_pkt, syn


def _established_client(stack: Stack):
    conn, peer, _, syn = _client(stack)
    peer.send(TcpSegment(80, syn.sport, PISN, (syn.seq + 1) % M, SYN | ACK, 65535, 0, (Mss(1460),)), 0.01)
    assert conn.state is State.ESTABLISHED
    peer.segs(0.01)
    drain_events(stack)
    return conn, peer, syn


def test_icmp_port_unreachable_refuses_syn_sent():
    st = make_stack()
    conn, peer, syn_pkt, _ = _client(st)
    st.receive_packet(_icmp4_error(icmpw.DestUnreachable(3, syn_pkt[:28])), 0.05)
    assert conn.state is State.CLOSED
    assert isinstance(conn.error, ConnectionRefused)
    st.packets_to_send(0.05)
    assert any(isinstance(e, Reset) and e.refused for _, e in drain_events(st))
    assert st.stats["icmp_accepted"] == 1
    assert not st.conns


def test_icmp_port_unreachable_is_soft_in_syn_sent_when_aborts_are_off():
    """StackConfig.icmp_may_abort_syn_sent=False (FreeBSD icmp_may_rst=0): the connect goes on."""
    st = make_stack(icmp_may_abort_syn_sent=False)
    conn, peer, syn_pkt, _ = _client(st)
    st.receive_packet(_icmp4_error(icmpw.DestUnreachable(3, syn_pkt[:28])), 0.05)
    assert conn.state is State.SYN_SENT
    st.packets_to_send(0.05)
    assert any(isinstance(e, SoftError) for _, e in drain_events(st))


def test_icmp_unreachable_is_a_soft_error_when_established():
    st = make_stack()
    conn, peer, syn = _established_client(st)
    conn.send(b"x" * 100)
    st.touch(conn)
    (data_pkt,) = st.packets_to_send(0.02)
    st.receive_packet(_icmp4_error(icmpw.DestUnreachable(3, data_pkt[:28])), 0.03)
    assert conn.state is State.ESTABLISHED
    assert conn.soft_error and "unreachable" in conn.soft_error
    st.packets_to_send(0.03)
    assert any(isinstance(e, SoftError) for _, e in drain_events(st))
    assert st.stats["icmp_accepted"] == 1


def test_icmp_error_quoting_a_sequence_not_in_flight_is_ignored():
    """RFC 5927 §4.1: the quoted SEQ must lie in SND.UNA..SND.MAX, or it is likely forged."""
    st = make_stack()
    conn, peer, syn_pkt, syn = _client(st)
    forged = bytearray(syn_pkt[:28])
    forged[24:28] = ((syn.seq + 5000) % M).to_bytes(4, "big")
    st.receive_packet(_icmp4_error(icmpw.DestUnreachable(3, bytes(forged))), 0.05)
    assert conn.state is State.SYN_SENT
    assert st.stats["icmp_ignored"] == 1 and st.stats["icmp_accepted"] == 0


def test_icmp_error_for_no_connection_is_dropped():
    st = make_stack()
    quoted = build_tcp_packet(S4, P4, TcpSegment(55555, 80, 1, 0, SYN, 1000))[:28]
    st.receive_packet(_icmp4_error(icmpw.DestUnreachable(3, quoted)), 0.0)
    assert st.stats["drop: ICMP error for no connection"] == 1


def test_frag_needed_lowers_the_path_mss_and_resends_smaller():
    st = make_stack()
    conn, peer, syn = _established_client(st)
    assert conn.info().snd_mss == 1460
    conn.send(bytes(4000))
    st.touch(conn)
    pkts = st.packets_to_send(0.02)
    sizes = [len(parse_tcp(parse_packet(p).payload).payload) for p in pkts]
    assert max(sizes) == 1460
    st.receive_packet(_icmp4_error(icmpw.DestUnreachable(4, pkts[0][:28], next_hop_mtu=1000)), 0.03)
    assert conn.info().snd_mss == 960                          # 1000 - 20 (IPv4) - 20 (TCP)
    again = [parse_tcp(parse_packet(p).payload) for p in st.packets_to_send(0.03)]
    assert again and max(len(s.payload) for s in again) <= 960
    assert again[0].seq == (syn.seq + 1) % M                   # resent from SND.UNA


def test_packet_too_big_v6_lowers_the_path_mss():
    st = make_stack()
    peer = Peer(st, P6, S6)
    conn = st.connect((P6, 80), 0.0)
    syn = parse_tcp(parse_packet(st.packets_to_send(0.0)[0]).payload)
    peer.send(TcpSegment(80, syn.sport, PISN, (syn.seq + 1) % M, SYN | ACK, 65535, 0, (Mss(1440),)), 0.01)
    peer.segs(0.01)
    conn.send(bytes(3000))
    st.touch(conn)
    pkts = st.packets_to_send(0.02)
    src, dst = ip_address(P6), ip_address(S6)
    body = icmpw.emit_icmp6(icmpw.PacketTooBig(1280, pkts[0][:48]), src, dst)
    st.receive_packet(emit_ipv6(IPv6Packet(src, dst, 58, body)), 0.03)
    assert conn.info().snd_mss == 1220                         # 1280 - 40 (IPv6) - 20 (TCP)


# ================================================================ counters

def test_counters():
    st = make_stack()
    st.listen(80)
    peer = Peer(st)
    peer.handshake(46000, 80)
    peer.segs()
    good = build_tcp_packet(P4, S4, TcpSegment(46001, 80, 1, 0, SYN, 1000))
    bad = bytearray(good)
    bad[-1] ^= 0xFF                                            # flips the checksum's sum
    bad[-3] ^= 0x01
    st.receive_packet(bytes(bad), 0.0)
    st.receive_packet(build_tcp_packet(P4, "192.0.2.99", TcpSegment(1, 80, 1, 0, SYN, 1000)), 0.0)
    st.receive_packet(b"\x45\x00", 0.0)
    st.receive_packet(emit_ipv4(IPv4Packet(ip_address(P4), ip_address(S4), 17, b"12345678")), 0.0)
    s = st.stats
    assert s["ip_in"] == 6
    assert s["tcp_in"] == 2 and s["tcp_out"] == 1               # SYN + ACK in, SYN-ACK out
    assert s["tcp_bad_checksum"] == 1
    assert s["drop: not for us"] == 1
    assert s["drop: bad IP packet"] == 1
    assert s["drop: protocol 17 not handled"] == 1
