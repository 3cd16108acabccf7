"""TCP header and options (RFC 9293 §3.1, RFC 7323, RFC 2018), TCP-in-IP helpers, seq laws."""

import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import ref_csum, ipv4_addrs, ipv6_addrs, tcp_options, tcp_segments, u32

from synack.wire import WireError
from synack.wire.ip4 import IPv4Packet, emit_ipv4, parse_ipv4
from synack.wire.ip6 import IPv6Packet, emit_ipv6
from synack.wire.packet import build_tcp_packet, parse_packet, tcp_in
from synack.wire.seq import seq_add, seq_ge, seq_gt, seq_in, seq_le, seq_lt, seq_max, seq_min, seq_sub
from synack.wire.tcp import (Eol, Flags, Mss, Nop, Sack, SackPermitted, TcpSegment, Timestamps,
                             UnknownOption, WindowScale, emit_options, emit_tcp, format_option, parse_options,
                             parse_tcp)

PROPS = settings(max_examples=150, deadline=None, database=None)
SRC4, DST4 = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
SRC6, DST6 = IPv6Address("2001:db8::1").packed, IPv6Address("2001:db8::2").packed




def tcp_bytes(sport=1234, dport=80, seq=1, ack=2, doff=5, res=0, flags=0x02, win=65535, csum=0,
              urg=0, opts=b"", payload=b"", src=SRC4, dst=DST4, fix=True) -> bytes:
    """A TCP segment laid out field by field as in RFC 9293 §3.1, checksum by the reference sum."""
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (doff << 4) | res, flags, win, 0, urg)
    seg = hdr + opts + payload
    if fix:
        proto = bytes([0, 6]) + struct.pack("!H", len(seg)) if len(src) == 4 else \
            struct.pack("!I", len(seg)) + bytes([0, 0, 0, 6])
        csum = ref_csum(src + dst + proto + seg)
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


# --- known-good vectors --------------------------------------------------------------------------

def test_syn_with_all_option_kinds_vector():
    opts = (bytes([2, 4, 0x05, 0xB4])                      # MSS 1460
            + bytes([1, 3, 3, 7])                          # NOP, window scale 7
            + bytes([4, 2])                                # SACK permitted
            + bytes([8, 10]) + struct.pack("!II", 0xDEADBEEF, 0)   # timestamps
            + bytes([5, 10]) + struct.pack("!II", 1, 2)    # SACK, 1 block
            + bytes([0xFE, 6, 0xAB, 0xCD, 0xEF, 0x01])     # unknown kind 254 (experimental)
            + bytes([0, 0, 0, 0]))                         # EOL + padding
    assert len(opts) == 40
    raw = tcp_bytes(seq=2**32 - 3, ack=0, doff=15, flags=0x02, win=29200, opts=opts, payload=b"hi")
    seg = parse_tcp(raw, SRC4, DST4)
    assert seg == TcpSegment(1234, 80, 2**32 - 3, 0, Flags.SYN, 29200, 0,
                             (Mss(1460), Nop(), WindowScale(7), SackPermitted(),
                              Timestamps(0xDEADBEEF, 0), Sack(((1, 2),)),
                              UnknownOption(0xFE, b"\xab\xcd\xef\x01"), Eol()), b"hi")
    assert seg.mss == 1460 and seg.wscale == 7 and seg.sack_permitted
    assert seg.timestamps == Timestamps(0xDEADBEEF, 0) and seg.sack_blocks == ((1, 2),)
    assert emit_tcp(seg, SRC4, DST4) == raw
    assert seg.seg_len == 3


def test_plain_ack_vector_and_every_flag_bit_kept():
    raw = tcp_bytes(sport=80, dport=40000, seq=7, ack=2**32 - 1, flags=0xFF, res=0x0F, urg=9,
                    win=0, payload=b"x" * 11)
    seg = parse_tcp(raw, SRC4, DST4)
    assert (seg.sport, seg.dport, seg.seq, seg.ack, seg.window, seg.urgent) == (80, 40000, 7, 2**32 - 1, 0, 9)
    assert seg.flags == Flags(0xFF) and seg.reserved == 0x0F and seg.payload == b"x" * 11
    assert seg.seg_len == 13                # payload + SYN + FIN (RFC 9293 §3.4)
    assert emit_tcp(seg, SRC4, DST4) == raw


def test_ipv6_pseudo_header_checksum_vector():
    raw = tcp_bytes(flags=0x12, src=SRC6, dst=DST6, payload=b"abc")
    seg = parse_tcp(raw, SRC6, DST6)
    assert emit_tcp(seg, SRC6, DST6) == raw
    with pytest.raises(WireError, match="checksum"):
        parse_tcp(raw, SRC4, DST4)        # same bytes, wrong pseudo-header


def test_emit_without_addresses_leaves_checksum_zero_and_checksum_field():
    seg = TcpSegment(1, 2, 3, 4, Flags.ACK, 5)
    assert emit_tcp(seg)[16:18] == b"\x00\x00"
    assert emit_tcp(seg, checksum_field=0x1234)[16:18] == b"\x12\x34"


def test_segment_64k():
    payload = bytes(i & 0xFF for i in range(65535 - 20 - 20))
    seg = TcpSegment(1, 2, 2**32 - 100, 0, Flags.ACK | Flags.PSH, 65535, payload=payload)
    raw = emit_tcp(seg, SRC4, DST4)
    assert len(raw) == 65515
    assert parse_tcp(raw, SRC4, DST4) == seg
    pkt = build_tcp_packet(IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2"), seg)
    assert len(pkt) == 65535 and struct.unpack("!H", pkt[2:4])[0] == 65535
    assert tcp_in(parse_packet(pkt)) == seg
    big6 = TcpSegment(1, 2, 3, 4, Flags.ACK, 5, payload=bytes(65535 - 20))
    pkt6 = build_tcp_packet("2001:db8::1", "2001:db8::2", big6)
    assert len(pkt6) == 40 + 65535 and tcp_in(parse_packet(pkt6)) == big6


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", range(20))
def test_truncated_header(n):
    with pytest.raises(WireError, match="truncated"):
        parse_tcp(tcp_bytes()[:n])


@pytest.mark.parametrize("doff", range(5))
def test_data_offset_below_5(doff):
    with pytest.raises(WireError, match="< 5"):
        parse_tcp(tcp_bytes(doff=doff, fix=False), verify=False)


def test_data_offset_past_end():
    raw = tcp_bytes(doff=6, fix=False)                 # says 24 octets of header, has 20
    with pytest.raises(WireError, match="past the end"):
        parse_tcp(raw)
    raw = tcp_bytes(doff=15, opts=bytes(36), fix=False)  # 56 < 60
    with pytest.raises(WireError, match="past the end"):
        parse_tcp(raw)
    assert parse_tcp(tcp_bytes(doff=15, opts=bytes(40)), verify=False).options == (Eol(),)


@pytest.mark.parametrize("opts, why", [
    (bytes([2, 0, 0, 0]), "illegal length 0"),        # length 0 would loop forever
    (bytes([2, 1, 0, 0]), "illegal length 1"),
    (bytes([254, 1, 1, 1]), "illegal length 1"),
    (bytes([8, 10, 0, 0]), "runs past"),              # timestamps cut short by the data offset
    (bytes([1, 1, 1, 3]), "no length byte"),          # kind 3 is the last octet
    (bytes([1, 1, 5, 0xFF]), "runs past"),
])
def test_bad_option_lengths(opts, why):
    # RFC 9293 §3.1 MUST-7: an illegal option length must not crash or loop; we reject it.
    with pytest.raises(WireError, match=why):
        parse_tcp(tcp_bytes(doff=6, opts=opts), SRC4, DST4)


def test_bad_checksum():
    raw = bytearray(tcp_bytes(payload=b"data"))
    raw[-1] ^= 0x01
    with pytest.raises(WireError, match="bad TCP checksum"):
        parse_tcp(bytes(raw), SRC4, DST4)
    assert parse_tcp(bytes(raw), SRC4, DST4, verify=False).payload == b"dat`"


def test_checksum_field_of_ffff_where_0000_is_computed_is_accepted():
    # Ones' complement has two zeros: a sender may put 0xFFFF where 0x0000 is computed (the Linux
    # kernel does, about once in 65,536 segments), and it verifies, since adding 0xFFFF leaves a
    # ones'-complement sum as it was (RFC 1624 §3). Two payload octets chosen to make it 0x0000:
    c = struct.unpack("!H", tcp_bytes(payload=b"ab\x00\x00")[16:18])[0]
    raw = tcp_bytes(payload=b"ab" + struct.pack("!H", c))
    assert raw[16:18] == b"\x00\x00"
    seg = parse_tcp(raw[:16] + b"\xff\xff" + raw[18:], SRC4, DST4)
    assert seg.payload == b"ab" + struct.pack("!H", c)
    assert emit_tcp(seg, SRC4, DST4) == raw         # synack itself writes 0x0000


def test_odd_length_checksum():
    raw = tcp_bytes(payload=b"abc")
    assert len(raw) % 2 == 1
    assert parse_tcp(raw, SRC4, DST4).payload == b"abc"


def test_known_kind_with_wrong_length_is_kept_unknown():
    # MSS with length 6, window scale with length 4, SACK with a 4-octet block: not usable,
    # kept as UnknownOption (Linux ignores such options too) but still length-checked.
    opts = bytes([2, 6, 0, 0, 0, 1, 3, 4, 9, 9, 5, 6, 1, 2, 3, 4])
    seg = parse_tcp(tcp_bytes(doff=9, opts=opts), SRC4, DST4)
    assert seg.options == (UnknownOption(2, b"\x00\x00\x00\x01"), UnknownOption(3, b"\x09\x09"),
                           UnknownOption(5, b"\x01\x02\x03\x04"))
    assert seg.mss is None and seg.wscale is None and seg.sack_blocks == ()


def test_options_after_eol_are_padding():
    assert parse_options(bytes([1, 0, 2, 4, 5, 0xB4])) == (Nop(), Eol())


def test_emit_rejects_too_many_options():
    with pytest.raises(WireError):
        emit_tcp(TcpSegment(1, 2, 3, 4, Flags.SYN, 5, options=(Timestamps(1, 2),) * 5))


# --- round trips ---------------------------------------------------------------------------------

@PROPS
@given(tcp_segments, st.sampled_from([(SRC4, DST4), (SRC6, DST6)]))
def test_parse_emit_roundtrip(seg, addrs):
    raw = emit_tcp(seg, *addrs)
    assert parse_tcp(raw, *addrs) == seg
    assert emit_tcp(parse_tcp(raw, *addrs), *addrs) == raw


@settings(max_examples=100, deadline=None, database=None)
@given(tcp_options())
def test_options_roundtrip(opts):
    raw = emit_options(opts)
    assert len(raw) % 4 == 0 and len(raw) <= 40
    assert parse_options(raw) == opts


@PROPS
@given(st.binary(min_size=20, max_size=80))
def test_emit_of_parse_is_stable(raw):
    # Whatever parses, re-emitting gives bytes that parse to the same value.
    try:
        seg = parse_tcp(raw)
    except WireError:
        return
    assert parse_tcp(emit_tcp(seg)) == seg


# --- TCP in IP -----------------------------------------------------------------------------------

def test_build_and_tcp_in_v4_and_v6():
    seg = TcpSegment(5000, 80, 2**32 - 3, 0, Flags.SYN, 65535, options=(Mss(1460), Eol()))
    raw4 = build_tcp_packet("10.0.0.2", "10.0.0.1", seg, ttl=7)
    ip = parse_ipv4(raw4)
    assert (ip.proto, ip.ttl, ip.df, ip.ident) == (6, 7, True, 0)
    assert tcp_in(ip) == seg
    raw6 = build_tcp_packet(IPv6Address("2001:db8::2"), IPv6Address("2001:db8::1"), seg, ttl=9)
    ip6 = parse_packet(raw6)
    assert ip6.hop_limit == 9 and tcp_in(ip6) == seg


def test_tcp_in_rejects_bad_checksum_other_proto_and_fragments():
    seg = TcpSegment(1, 2, 3, 4, Flags.ACK, 5, payload=b"zz")
    good = parse_ipv4(build_tcp_packet("10.0.0.2", "10.0.0.1", seg))
    # Same TCP bytes, but the pseudo-header addresses differ: the checksum must fail.
    moved = good.replace(src=IPv4Address("10.0.0.3"))
    with pytest.raises(WireError, match="checksum"):
        tcp_in(moved)
    assert tcp_in(moved, verify=False) == seg
    with pytest.raises(WireError, match="not TCP"):
        tcp_in(good.replace(proto=17))
    with pytest.raises(WireError, match="fragment"):
        tcp_in(good.replace(mf=True))
    six = IPv6Packet(IPv6Address("::1"), IPv6Address("::2"), 6,
                     emit_tcp(seg, IPv6Address("::1").packed, IPv6Address("::3").packed))
    with pytest.raises(WireError, match="checksum"):
        tcp_in(six)
    with pytest.raises(WireError, match="families"):
        build_tcp_packet("10.0.0.1", "::1", seg)


@settings(max_examples=150, deadline=None, database=None)
@given(tcp_segments, st.one_of(st.tuples(ipv4_addrs, ipv4_addrs), st.tuples(ipv6_addrs, ipv6_addrs)),
       st.integers(0, 255), st.integers(0, 255))
def test_build_tcp_packet_roundtrip(seg, addrs, ttl, tos):
    raw = build_tcp_packet(addrs[0], addrs[1], seg, ttl=ttl, tos=tos)
    pkt = parse_packet(raw)
    assert (pkt.src, pkt.dst, pkt.ttl) == (addrs[0], addrs[1], ttl)
    assert (pkt.tos if isinstance(pkt, IPv4Packet) else pkt.traffic_class) == tos
    assert tcp_in(pkt) == seg
    emit = emit_ipv4 if isinstance(pkt, IPv4Packet) else emit_ipv6
    assert emit(pkt) == raw                  # the IPv4 fast path makes what emit_ipv4 makes


def test_build_tcp_packet_rejects_what_emit_ipv4_rejects():
    seg = TcpSegment(1, 2, 3, 4, Flags.ACK, 5)
    for bad in ({"ttl": 256}, {"tos": -1}):
        with pytest.raises(WireError):
            build_tcp_packet("10.0.0.2", "10.0.0.1", seg, **bad)


# --- sequence arithmetic (RFC 9293 §3.4) ---------------------------------------------------------

SEQ = settings(max_examples=150, deadline=None, database=None)
near_wrap = st.one_of(u32, st.integers(2**32 - 1000, 2**32 - 1), st.integers(0, 1000))
dist = st.integers(-(2**31) + 1, 2**31 - 1)


@SEQ
@given(near_wrap, near_wrap)
def test_seq_lt_antisymmetric_and_total_off_the_antipode(a, b):
    assert not (seq_lt(a, b) and seq_lt(b, a))
    assert not seq_lt(a, a)
    if a != b and (a - b) % 2**32 != 2**31:
        assert seq_lt(a, b) != seq_lt(b, a)
    assert seq_le(a, b) == (seq_lt(a, b) or a == b)
    assert seq_gt(a, b) == seq_lt(b, a) and seq_ge(a, b) == seq_le(b, a)


@SEQ
@given(near_wrap, dist)
def test_seq_add_sub_inverse(a, n):
    b = seq_add(a, n)
    assert 0 <= b < 2**32
    assert seq_sub(b, a) == n
    assert seq_add(b, -n) == a
    assert seq_lt(a, b) == (n > 0)


@SEQ
@given(near_wrap, st.integers(1, 2**31 - 1), st.integers(0, 2**31))
def test_seq_in(lo, size, k):
    hi = seq_add(lo, size)
    x = seq_add(lo, k)
    assert seq_in(x, lo, hi) == (k < size)
    assert not seq_in(x, lo, lo)                   # empty window
    assert seq_in(lo, lo, hi) and not seq_in(hi, lo, hi)


@SEQ
@given(near_wrap, dist)
def test_seq_max_min(a, n):
    b = seq_add(a, n)
    assert {seq_max(a, b), seq_min(a, b)} == {a, b}
    assert seq_le(seq_min(a, b), seq_max(a, b))


def test_seq_across_the_wrap():
    assert seq_lt(2**32 - 1, 0) and seq_lt(2**32 - 3, 5) and not seq_lt(5, 2**32 - 3)
    assert seq_sub(5, 2**32 - 3) == 8 and seq_add(2**32 - 3, 8) == 5
    assert seq_in(0, 2**32 - 2, 3) and not seq_in(3, 2**32 - 2, 3)
    assert not seq_lt(0, 2**31) and not seq_lt(2**31, 0)     # the antipode: neither is less


@pytest.mark.parametrize("kind, data, text", [
    (34, b"", "tfo cookiereq"),
    (34, bytes.fromhex("0011223344556677"), "tfo cookie 0011223344556677"),
    (254, bytes.fromhex("f989"), "exp-tfo cookiereq"),
    (254, bytes.fromhex("f989aabbccdd"), "exp-tfo cookie aabbccdd"),
    (254, bytes.fromhex("0102"), "opt-254 0102"),
    (99, b"\x01", "opt-99 01"),
])
def test_fast_open_options_are_named_as_tcpdump_names_them(kind, data, text):
    """RFC 7413 §4.1.1 (kind 34) and its experimental form (kind 254, magic 0xF989, RFC 6994):
    synack does not speak TCP Fast Open, but diagrams of others' captures name the option."""
    assert format_option(UnknownOption(kind, data)) == text
