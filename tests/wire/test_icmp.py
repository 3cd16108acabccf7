"""ICMPv4 (RFC 792, RFC 1191 §4), ICMPv6 (RFC 4443), and the quoted packet in errors."""

import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import ref_csum, icmp4_typed, icmp6_typed, icmp_generic, ipv6_addrs, tcp_segments

from synack.wire import WireError
from synack.wire.icmp import (DestUnreachable, Echo, Icmp, PacketTooBig, ParameterProblem, QuotedTcp,
                              TimeExceeded, decode_icmp4, decode_icmp6, emit_icmp4, emit_icmp6,
                              encode_icmp4, encode_icmp6, parse_icmp4, parse_icmp6, quoted_tcp,
                              quoted_transport)
from synack.wire.ip4 import IPv4Packet, emit_ipv4
from synack.wire.ip6 import IPv6Packet, emit_ipv6
from synack.wire.packet import build_tcp_packet, parse_packet
from synack.wire.tcp import Flags, TcpSegment

PROPS = settings(max_examples=150, deadline=None, database=None)
S6, D6 = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")




def icmp4_bytes(type_, code, rest, body=b"") -> bytes:
    """RFC 792 layout: type, code, checksum over the whole message, 4 octets, body."""
    msg = bytes([type_, code, 0, 0]) + rest + body
    return msg[:2] + struct.pack("!H", ref_csum(msg)) + msg[4:]


def icmp6_bytes(type_, code, rest, body=b"", src=S6, dst=D6) -> bytes:
    """RFC 4443 §2.3: the checksum also covers the RFC 8200 §8.1 pseudo-header, Next Header 58."""
    msg = bytes([type_, code, 0, 0]) + rest + body
    pseudo = src.packed + dst.packed + struct.pack("!I", len(msg)) + bytes([0, 0, 0, 58])
    return msg[:2] + struct.pack("!H", ref_csum(pseudo + msg)) + msg[4:]


SEG = TcpSegment(40000, 443, 0xFFFFFFF0, 77, Flags.ACK | Flags.PSH, 501, payload=b"x" * 100)
ORIG4 = build_tcp_packet("10.0.0.2", "93.184.216.34", SEG)
ORIG6 = build_tcp_packet(str(S6), str(D6), SEG)


# --- ICMPv4 vectors ------------------------------------------------------------------------------

def test_echo_request_v4_vector():
    raw = icmp4_bytes(8, 0, struct.pack("!HH", 0x1234, 7), b"ping data")
    msg = parse_icmp4(raw)
    assert msg == Icmp(8, 0, b"\x12\x34\x00\x07", b"ping data")
    assert decode_icmp4(msg) == Echo(0x1234, 7, b"ping data", reply=False)
    assert emit_icmp4(msg) == raw
    assert emit_icmp4(Echo(0x1234, 7, b"ping data")) == raw
    reply = emit_icmp4(Echo(0x1234, 7, b"ping data", reply=True))
    assert reply == icmp4_bytes(0, 0, struct.pack("!HH", 0x1234, 7), b"ping data")


def test_frag_needed_carries_next_hop_mtu():
    # RFC 1191 §4: unused = 0 (16 bits), Next-Hop MTU (16 bits); original = IP header + 64 bits.
    quote = ORIG4[:28]
    raw = icmp4_bytes(3, 4, struct.pack("!HH", 0, 1400), quote)
    m = decode_icmp4(parse_icmp4(raw))
    assert m == DestUnreachable(4, quote, next_hop_mtu=1400)
    assert emit_icmp4(m) == raw
    # For other codes the field is unused: ignored on receipt, zero when sent (RFC 792).
    port = decode_icmp4(parse_icmp4(icmp4_bytes(3, 3, struct.pack("!HH", 0, 1400), quote)))
    assert port == DestUnreachable(3, quote, 0)
    assert emit_icmp4(port) == icmp4_bytes(3, 3, bytes(4), quote)


def test_time_exceeded_and_parameter_problem_v4():
    quote = ORIG4[:28]
    assert decode_icmp4(parse_icmp4(icmp4_bytes(11, 0, b"\xff" * 4, quote))) == TimeExceeded(0, quote)
    assert emit_icmp4(TimeExceeded(1, quote)) == icmp4_bytes(11, 1, bytes(4), quote)
    raw = icmp4_bytes(12, 0, bytes([20, 0, 0, 0]), quote)
    assert decode_icmp4(parse_icmp4(raw)) == ParameterProblem(0, 20, quote)
    assert emit_icmp4(ParameterProblem(0, 20, quote)) == raw


def test_unknown_type_stays_generic():
    raw = icmp4_bytes(13, 0, b"\x00\x01\x00\x02", bytes(12))      # Timestamp
    msg = parse_icmp4(raw)
    assert decode_icmp4(msg) is msg and emit_icmp4(msg) == raw


# --- ICMPv6 vectors ------------------------------------------------------------------------------

def test_echo_request_v6_vector():
    raw = icmp6_bytes(128, 0, struct.pack("!HH", 1, 2), b"abc")
    msg = parse_icmp6(raw, S6, D6)
    assert decode_icmp6(msg) == Echo(1, 2, b"abc")
    assert emit_icmp6(Echo(1, 2, b"abc"), S6, D6) == raw
    assert emit_icmp6(Echo(1, 2, b"abc", reply=True), S6.packed, D6.packed) == \
        icmp6_bytes(129, 0, struct.pack("!HH", 1, 2), b"abc")
    with pytest.raises(WireError, match="checksum"):
        parse_icmp6(raw, S6, IPv6Address("2001:db8::3"))   # another destination in the pseudo-header
    # (Swapping src and dst would not be caught: the ones'-complement sum is commutative.)
    assert parse_icmp6(raw, D6, S6) == msg


def test_packet_too_big_v6():
    quote = ORIG6[:1232]
    raw = icmp6_bytes(2, 0, struct.pack("!I", 1280), quote)
    assert decode_icmp6(parse_icmp6(raw, S6, D6)) == PacketTooBig(1280, quote)
    assert emit_icmp6(PacketTooBig(1280, quote), S6, D6) == raw
    # RFC 4443 §3.2: the code is ignored by the receiver.
    odd = icmp6_bytes(2, 9, struct.pack("!I", 1500), quote)
    assert decode_icmp6(parse_icmp6(odd, S6, D6)) == PacketTooBig(1500, quote)


def test_other_errors_v6():
    q = ORIG6[:60]
    assert decode_icmp6(parse_icmp6(icmp6_bytes(1, 4, b"\x01\x02\x03\x04", q), S6, D6)) == DestUnreachable(4, q)
    assert decode_icmp6(parse_icmp6(icmp6_bytes(3, 1, bytes(4), q), S6, D6)) == TimeExceeded(1, q)
    raw = icmp6_bytes(4, 1, struct.pack("!I", 40), q)
    assert decode_icmp6(parse_icmp6(raw, S6, D6)) == ParameterProblem(1, 40, q)
    assert emit_icmp6(ParameterProblem(1, 40, q), S6, D6) == raw
    assert parse_icmp6(raw, S6, D6).is_error6 and not Icmp(128, 0).is_error6


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", range(8))
def test_truncated(n):
    raw = icmp4_bytes(8, 0, bytes(4))
    with pytest.raises(WireError, match="truncated"):
        parse_icmp4(raw[:n])
    with pytest.raises(WireError, match="truncated"):
        parse_icmp6(raw[:n], S6, D6)


def test_bad_checksums():
    raw = bytearray(icmp4_bytes(8, 0, bytes(4), b"data!"))
    raw[-1] ^= 0x80
    with pytest.raises(WireError, match="bad ICMPv4 checksum"):
        parse_icmp4(bytes(raw))
    assert parse_icmp4(bytes(raw), verify=False).body == b"data\xa1"
    raw6 = bytearray(icmp6_bytes(128, 0, bytes(4), b"data!"))
    raw6[2] ^= 1
    with pytest.raises(WireError, match="bad ICMPv6 checksum"):
        parse_icmp6(bytes(raw6), S6, D6)
    with pytest.raises(WireError, match="16-octet"):
        parse_icmp6(icmp6_bytes(128, 0, bytes(4)), b"\x00" * 4, D6)


@pytest.mark.parametrize("bad", [
    Icmp(8, 0, b"\x00"), Icmp(256, 0), Icmp(0, -1),
    Echo(70000, 0), DestUnreachable(3, b"", next_hop_mtu=1500), DestUnreachable(4, b"", 1 << 16),
    ParameterProblem(0, 256, b""), PacketTooBig(1280, b""), "not icmp",
])
def test_emit_icmp4_rejects(bad):
    with pytest.raises(WireError):
        emit_icmp4(bad)


@pytest.mark.parametrize("bad", [DestUnreachable(1, b"", 1280), PacketTooBig(1 << 32, b""),
                                 ParameterProblem(0, -1, b""), Echo(0, -1), "not icmp"])
def test_emit_icmp6_rejects(bad):
    with pytest.raises(WireError):
        emit_icmp6(bad, S6, D6)


# --- quoted packets ------------------------------------------------------------------------------

def test_quoted_tcp_v4_needs_only_8_octets():
    # RFC 792: "Internet Header + 64 bits of Original Data Datagram".
    q = quoted_tcp(ORIG4[:28])
    assert q == QuotedTcp(IPv4Address("10.0.0.2"), IPv4Address("93.184.216.34"), 40000, 443, 0xFFFFFFF0)
    assert quoted_tcp(ORIG4) == q            # more is fine
    for n in range(28):
        with pytest.raises(WireError):
            quoted_tcp(ORIG4[:n])


def test_quoted_tcp_v4_with_ip_options():
    ip = IPv4Packet(IPv4Address("10.0.0.2"), IPv4Address("10.0.0.1"), 6, ORIG4[20:],
                    options=bytes([0x94, 4, 0, 0]))
    raw = emit_ipv4(ip)
    assert quoted_tcp(raw[:32]).sport == 40000
    with pytest.raises(WireError, match="need 8"):
        quoted_tcp(raw[:31])


def test_quoted_tcp_v6_through_extension_headers():
    q = quoted_tcp(ORIG6[:48])
    assert q == QuotedTcp(S6, D6, 40000, 443, 0xFFFFFFF0)
    dst_opts = bytes([6, 0, 1, 4, 0, 0, 0, 0])
    frag_first = bytes([60, 0, 0, 1, 0, 0, 0, 9])        # offset 0, M=1: the TCP header follows
    ip = IPv6Packet(S6, D6, 6, ORIG6[40:], ext_headers=((44, frag_first), (60, dst_opts)))
    raw = emit_ipv6(ip)
    assert quoted_tcp(raw[:40 + 16 + 8]) == q
    later = IPv6Packet(S6, D6, 6, ORIG6[40:48], ext_headers=((44, bytes([6, 0, 0, 0x11, 0, 0, 0, 9])),))
    with pytest.raises(WireError, match="non-first fragment"):
        quoted_tcp(emit_ipv6(later))
    with pytest.raises(WireError):
        quoted_tcp(raw[:40 + 12])                          # cut inside the extension headers


def test_quoted_not_tcp_or_later_fragment():
    udp = emit_ipv4(IPv4Packet(IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"), 17, bytes(8)))
    with pytest.raises(WireError, match="not TCP"):
        quoted_tcp(udp)
    assert quoted_transport(udp)[2] == 17
    frag = emit_ipv4(IPv4Packet(IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"), 6, bytes(8),
                                frag_offset=8))
    with pytest.raises(WireError, match="non-first fragment"):
        quoted_tcp(frag)
    with pytest.raises(WireError, match="IHL"):
        quoted_tcp(bytes([0x44]) + ORIG4[1:28])
    with pytest.raises(WireError, match="version"):
        quoted_tcp(bytes([0x55]) + ORIG4[1:28])


def test_quote_from_a_full_icmp_packet():
    # What the stack will do: IP packet -> ICMP -> typed -> quoted TCP.
    icmp = emit_icmp4(DestUnreachable(4, ORIG4[:28], next_hop_mtu=1280))
    pkt = parse_packet(emit_ipv4(IPv4Packet(IPv4Address("192.0.2.254"), IPv4Address("10.0.0.2"), 1, icmp)))
    m = decode_icmp4(parse_icmp4(pkt.payload))
    assert isinstance(m, DestUnreachable) and m.next_hop_mtu == 1280
    assert quoted_tcp(m.original).seq == 0xFFFFFFF0


# --- round trips ---------------------------------------------------------------------------------

@PROPS
@given(icmp_generic)
def test_generic_roundtrip_v4(msg):
    raw = emit_icmp4(msg)
    assert parse_icmp4(raw) == msg and emit_icmp4(parse_icmp4(raw)) == raw


@PROPS
@given(icmp_generic, ipv6_addrs, ipv6_addrs)
def test_generic_roundtrip_v6(msg, src, dst):
    raw = emit_icmp6(msg, src, dst)
    assert parse_icmp6(raw, src, dst) == msg and emit_icmp6(parse_icmp6(raw, src, dst), src, dst) == raw


@PROPS
@given(icmp4_typed)
def test_typed_roundtrip_v4(m):
    assert decode_icmp4(parse_icmp4(emit_icmp4(m))) == m
    assert decode_icmp4(encode_icmp4(m)) == m


@PROPS
@given(icmp6_typed)
def test_typed_roundtrip_v6(m):
    assert decode_icmp6(parse_icmp6(emit_icmp6(m, S6, D6), S6, D6)) == m
    assert decode_icmp6(encode_icmp6(m)) == m


@settings(max_examples=100, deadline=None, database=None)
@given(tcp_segments, st.booleans(), st.integers(0, 200))
def test_quoted_tcp_matches_what_was_sent(seg, v6, extra):
    src, dst = ("2001:db8::a", "2001:db8::b") if v6 else ("10.1.2.3", "10.3.2.1")
    raw = build_tcp_packet(src, dst, seg)
    hlen = 40 if v6 else 20
    q = quoted_tcp(raw[:hlen + 8 + extra])
    assert (str(q.src), str(q.dst), q.sport, q.dport, q.seq) == (src, dst, seg.sport, seg.dport, seg.seq)
