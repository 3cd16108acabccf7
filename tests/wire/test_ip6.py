"""IPv6 header and extension headers (RFC 8200 §3, §4)."""

import struct
from ipaddress import IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import fragment_header, ipv6_packets

from synack.wire import WireError
from synack.wire.ip6 import IPv6Packet, emit_ipv6, parse_ipv6
from synack.wire.packet import emit_packet, parse_packet

PROPS = settings(max_examples=150, deadline=None, database=None)
A, B = IPv6Address("2001:db8::1"), IPv6Address("fe80::1234:5678")


def ip6_bytes(body=b"", *, nh=6, version=6, tc=0, flow=0, plen=None, hop=64) -> bytes:
    """An IPv6 header laid out as in RFC 8200 §3; ``body`` is extension headers + payload."""
    plen = len(body) if plen is None else plen
    return struct.pack("!IHBB16s16s", (version << 28) | (tc << 20) | flow, plen, nh, hop,
                       A.packed, B.packed) + body


def opts_hdr(nh: int, options: bytes) -> bytes:
    """Hop-by-Hop / Destination Options header (RFC 8200 §4.3, §4.6); options fill it exactly."""
    assert (2 + len(options)) % 8 == 0
    return bytes([nh, (2 + len(options)) // 8 - 1]) + options


def routing_hdr(nh: int, rtype=0, left=0, data=bytes(4)) -> bytes:
    return bytes([nh, (4 + len(data)) // 8 - 1, rtype, left]) + data


def frag_hdr(nh: int, offset_units=0, more=False, ident=0x12345678) -> bytes:
    return bytes([nh]) + fragment_header(offset_units, more, ident)[1:]


PADN6 = bytes([1, 4, 0, 0, 0, 0])
PAD1 = b"\x00"


# --- known-good vectors --------------------------------------------------------------------------

def test_plain_header_vector():
    raw = ip6_bytes(b"tcp bytes", tc=0xB8, flow=0xABCDE, hop=255)
    assert raw[:4] == bytes([0x6B, 0x8A, 0xBC, 0xDE]) and raw[4:6] == b"\x00\x09"
    pkt = parse_ipv6(raw)
    assert pkt == IPv6Packet(A, B, 6, b"tcp bytes", 255, 0xB8, 0xABCDE)
    assert not pkt.is_fragment and pkt.proto == 6 and pkt.ttl == 255
    assert emit_ipv6(pkt) == raw


def test_extension_header_chain_is_walked():
    hbh = opts_hdr(60, PADN6)                              # Hop-by-Hop -> Dest Options
    dst1 = opts_hdr(43, bytes([0x1E, 2, 7, 7]) + PAD1 + PAD1)   # unknown option, action 00: skip
    rt = routing_hdr(44, rtype=4, left=0, data=bytes(12))  # SRH with Segments Left 0 -> Fragment
    frag = frag_hdr(60)                                    # atomic fragment -> Dest Options
    dst2 = opts_hdr(6, bytes([1, 12]) + bytes(12))         # PadN of 14 -> TCP
    raw = ip6_bytes(hbh + dst1 + rt + frag + dst2 + b"SEG", nh=0)
    pkt = parse_ipv6(raw)
    assert pkt.next_header == 6 and pkt.payload == b"SEG"
    assert [k for k, _ in pkt.ext_headers] == [0, 60, 43, 44, 60]
    assert pkt.ext_headers[2] == (43, rt)
    assert not pkt.is_fragment                             # atomic: offset 0, M 0
    assert pkt.fragment == (0, False, 0x12345678)
    assert emit_ipv6(pkt) == raw


def test_no_next_header():
    raw = ip6_bytes(opts_hdr(59, PADN6) + b"ignored", nh=60)
    pkt = parse_ipv6(raw)
    assert pkt.next_header == 59 and pkt.payload == b"ignored"   # kept, so emit gives it back
    assert emit_ipv6(pkt) == raw
    assert parse_ipv6(ip6_bytes(nh=59)).payload == b""


@pytest.mark.parametrize("offset, more", [(0, True), (1, False), (185, True), (0x1FFF, False)])
def test_fragment_reported_and_walk_stops(offset, more):
    # After a real fragment's header, the rest is fragment data, not headers (RFC 8200 §4.5).
    data = opts_hdr(6, PADN6)[:8] + b"12345678"
    raw = ip6_bytes(frag_hdr(60, offset, more) + data, nh=44)
    pkt = parse_ipv6(raw)
    assert pkt.is_fragment
    assert pkt.next_header == 60 and pkt.payload == data
    assert pkt.fragment == (offset * 8, more, 0x12345678)
    assert emit_ipv6(pkt) == raw


def test_padding_is_trimmed():
    raw = ip6_bytes(b"ab")
    assert parse_ipv6(raw + bytes(10)).payload == b"ab"


def test_64k_payload():
    payload = bytes(i & 0xFF for i in range(65535 - 8))
    raw = ip6_bytes(opts_hdr(6, bytes([1, 2]) + bytes(4)) + payload, nh=60)
    assert raw[4:6] == b"\xff\xff"
    pkt = parse_ipv6(raw)
    assert pkt.payload == payload and emit_ipv6(pkt) == raw
    with pytest.raises(WireError, match="too long"):
        emit_ipv6(pkt.replace(payload=payload + b"!"))


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 8, 39])
def test_truncated_header(n):
    with pytest.raises(WireError, match="truncated"):
        parse_ipv6(ip6_bytes()[:n])


@pytest.mark.parametrize("version", [0, 4, 7, 15])
def test_wrong_version(version):
    with pytest.raises(WireError, match="version"):
        parse_ipv6(ip6_bytes(version=version))


def test_payload_length_lies():
    with pytest.raises(WireError, match="payload length 10 > 3"):
        parse_ipv6(ip6_bytes(b"abc", plen=10))


@pytest.mark.parametrize("body, nh, why", [
    (bytes([6, 0, 1, 4, 0, 0]), 0, "truncated"),                   # under 8 octets
    (bytes([6, 1, 1, 4, 0, 0, 0, 0]), 0, "runs past"),              # says 16 octets, has 8
    (opts_hdr(6, PADN6) + b"x", 0, None),                          # fine: control case
    (bytes([6, 0]) + bytes([1, 5, 0, 0, 0, 0]), 60, "runs past header"),    # PadN too long
    (bytes([6, 0]) + bytes([1, 1, 0, 0, 0, 1]), 60, "no length octet"),     # option at the last octet
    (bytes([6, 0]) + bytes([0x41, 0, 1, 2, 0, 0]), 60, "unrecognized"),     # action 01: discard
    (bytes([6, 0]) + bytes([0x80, 0, 1, 2, 0, 0]), 60, "unrecognized"),     # action 10
    (bytes([6, 0]) + bytes([0xC2, 4, 0, 1, 0, 0]), 0, "unrecognized"),      # Jumbo Payload: action 11
    (routing_hdr(6, rtype=0, left=1), 43, "segments left"),
    (frag_hdr(6)[:7], 44, "truncated"),
    (opts_hdr(0, PADN6) + opts_hdr(6, PADN6), 60, "Hop-by-Hop"),  # Hop-by-Hop not first
    (opts_hdr(0, PADN6) + opts_hdr(6, PADN6), 0, "Hop-by-Hop"),   # two of them
])
def test_bad_extension_headers(body, nh, why):
    raw = ip6_bytes(body, nh=nh)
    if why is None:
        parse_ipv6(raw)
        return
    with pytest.raises(WireError, match=why):
        parse_ipv6(raw)


def test_extension_header_runs_past_payload_length_not_buffer():
    # The buffer holds the header, but Payload Length cuts it off: the length lies.
    body = opts_hdr(6, PADN6)
    with pytest.raises(WireError):
        parse_ipv6(ip6_bytes(body, nh=60, plen=4) + body[4:])


def test_fragment_with_more_must_be_multiple_of_8():
    raw = ip6_bytes(frag_hdr(6, 0, True) + b"1234567", nh=44)
    with pytest.raises(WireError, match="multiple of 8"):
        parse_ipv6(raw)
    assert parse_ipv6(ip6_bytes(frag_hdr(6, 3, False) + b"1234567", nh=44)).is_fragment


@pytest.mark.parametrize("changes", [
    {"hop_limit": 256}, {"traffic_class": 256}, {"flow_label": 1 << 20}, {"next_header": 256},
    {"ext_headers": ((60, bytes(7)),)}, {"ext_headers": ((60, bytes([0, 1]) + bytes(6)),)},
    {"ext_headers": ((44, bytes(16)),)}, {"ext_headers": ((6, bytes(8)),)},
    {"ext_headers": ((60, bytes(8)), (0, bytes(8)))}, {"src": "::1"},
])
def test_emit_rejects_values_that_do_not_fit(changes):
    with pytest.raises(WireError):
        emit_ipv6(IPv6Packet(A, B, 6, b"").replace(**changes))


# --- round trips ---------------------------------------------------------------------------------

@PROPS
@given(ipv6_packets())
def test_parse_emit_roundtrip(pkt):
    raw = emit_ipv6(pkt)
    assert parse_ipv6(raw) == pkt
    assert emit_ipv6(parse_ipv6(raw)) == raw
    assert parse_packet(raw) == pkt and emit_packet(pkt) == raw


@PROPS
@given(st.binary(min_size=40, max_size=100), st.sampled_from([0, 6, 43, 44, 59, 60]))
def test_emit_of_parse_is_stable(raw, nh):
    raw = bytes([0x60]) + raw[1:6] + bytes([nh]) + raw[7:]
    try:
        pkt = parse_ipv6(raw)
    except WireError:
        return
    assert parse_ipv6(emit_ipv6(pkt)) == pkt


def test_parse_packet_v6():
    raw = ip6_bytes(b"x", nh=17)
    assert parse_packet(raw) == parse_ipv6(raw)
