"""IPv4 header (RFC 791 §3.1) and version dispatch (synack.wire.packet)."""

import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import ipv4_options, ipv4_packets

from synack.wire import WireError
from synack.wire.ip4 import IPv4Packet, emit_ipv4, parse_ipv4, parse_ipv4_options
from synack.wire.packet import emit_packet, parse_packet

PROPS = settings(max_examples=150, deadline=None, database=None)
A, B = IPv4Address("192.0.2.1"), IPv4Address("198.51.100.7")


def ref_csum(data: bytes) -> int:
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4_bytes(payload=b"", *, version=4, ihl=None, tos=0, total=None, ident=0, flags=0b010, frag=0,
              ttl=64, proto=6, src=A, dst=B, options=b"", csum=None) -> bytes:
    """An IPv4 header laid out as in RFC 791 §3.1 Figure 4; checksum by the reference sum."""
    ihl = 5 + len(options) // 4 if ihl is None else ihl
    total = 20 + len(options) + len(payload) if total is None else total
    hdr = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, tos, total, ident, (flags << 13) | frag,
                      ttl, proto, 0, src.packed, dst.packed) + options
    c = ref_csum(hdr) if csum is None else csum
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


# --- known-good vectors --------------------------------------------------------------------------

def test_rfc791_example_1():
    # RFC 791 Appendix A, Example 1: IHL 5, Total Length 21, Identification 111, no flags,
    # Time 123, Protocol 1, one octet of data.
    raw = ip4_bytes(b"\x2a", total=21, ident=111, flags=0, ttl=123, proto=1)
    assert raw[:4] == bytes([0x45, 0x00, 0x00, 0x15]) and len(raw) == 21
    pkt = parse_ipv4(raw)
    assert pkt == IPv4Packet(A, B, 1, b"\x2a", ttl=123, ident=111, df=False)
    assert not pkt.is_fragment and pkt.total_len == 21 and pkt.header_len == 20
    assert emit_ipv4(pkt) == raw


def test_all_fields_vector():
    opts = bytes([0x94, 4, 0, 0])            # Router Alert (RFC 2113), copied flag set
    raw = ip4_bytes(b"payload", tos=0xB8, ident=0xBEEF, flags=0b001, frag=185, ttl=1, proto=17,
                    options=opts)
    pkt = parse_ipv4(raw)
    assert (pkt.tos, pkt.ident, pkt.df, pkt.mf, pkt.frag_offset, pkt.ttl, pkt.proto) == \
        (0xB8, 0xBEEF, False, True, 185 * 8, 1, 17)
    assert pkt.options == opts and parse_ipv4_options(pkt.options) == ((0x94, b"\x00\x00"),)
    assert pkt.is_fragment
    assert emit_ipv4(pkt) == raw


def test_ethernet_padding_is_trimmed():
    raw = ip4_bytes(b"\x01\x02")
    pkt = parse_ipv4(raw + bytes(24))          # padded to a 46-octet Ethernet payload
    assert pkt.payload == b"\x01\x02"
    assert emit_ipv4(pkt) == raw


def test_reserved_flag_is_ignored():
    raw = ip4_bytes(b"x", flags=0b110)        # reserved + DF
    pkt = parse_ipv4(raw)
    assert pkt.df and not pkt.mf
    assert emit_ipv4(pkt) == ip4_bytes(b"x", flags=0b010)


@pytest.mark.parametrize("flags, frag, is_frag", [
    (0b010, 0, False), (0b000, 0, False),      # atomic / unfragmented
    (0b001, 0, True),                          # first fragment: MF
    (0b000, 1, True),                          # last fragment: offset 8
    (0b001, 0x1FFF, True),                     # largest offset: 65528
])
def test_fragments_reported(flags, frag, is_frag):
    pkt = parse_ipv4(ip4_bytes(b"12345678", flags=flags, frag=frag))
    assert pkt.is_fragment == is_frag
    assert pkt.frag_offset == frag * 8


def test_64k_datagram():
    payload = bytes(i & 0xFF for i in range(65535 - 20))
    raw = ip4_bytes(payload)
    assert struct.unpack("!H", raw[2:4])[0] == 65535
    pkt = parse_ipv4(raw)
    assert pkt.payload == payload and emit_ipv4(pkt) == raw
    with pytest.raises(WireError, match="too long"):
        emit_ipv4(pkt.replace(payload=payload + b"!"))


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", range(20))
def test_truncated_header(n):
    with pytest.raises(WireError, match="truncated"):
        parse_ipv4(ip4_bytes(b"abc")[:n])


@pytest.mark.parametrize("version", [0, 5, 6, 15])
def test_wrong_version(version):
    with pytest.raises(WireError, match="version"):
        parse_ipv4(ip4_bytes(version=version))


@pytest.mark.parametrize("ihl", range(5))
def test_ihl_below_5(ihl):
    with pytest.raises(WireError, match="IHL"):
        parse_ipv4(ip4_bytes(b"x" * 40, ihl=ihl))


def test_ihl_past_end():
    raw = ip4_bytes(ihl=6, total=20)
    with pytest.raises(WireError, match="past the end"):
        parse_ipv4(raw)


def test_total_length_lies():
    with pytest.raises(WireError, match="total length 19 < header"):
        parse_ipv4(ip4_bytes(total=19))
    with pytest.raises(WireError, match="total length 30 > 25"):
        parse_ipv4(ip4_bytes(b"abcde", total=30))
    with pytest.raises(WireError, match="< header length 24"):
        parse_ipv4(ip4_bytes(b"abcdefgh", options=b"\x01\x01\x01\x00", total=22))


def test_bad_header_checksum():
    raw = ip4_bytes(b"x")
    bad = raw[:10] + bytes([raw[10] ^ 0x10]) + raw[11:]
    with pytest.raises(WireError, match="checksum"):
        parse_ipv4(bad)
    assert parse_ipv4(bad, verify=False).payload == b"x"
    # A flipped TTL bit is caught too; the payload is not covered by the header checksum.
    with pytest.raises(WireError, match="checksum"):
        parse_ipv4(raw[:8] + bytes([raw[8] ^ 1]) + raw[9:])
    assert parse_ipv4(raw[:-1] + b"y").payload == b"y"


@pytest.mark.parametrize("opts, why", [
    (bytes([0x83, 0, 0, 0]), "illegal length 0"),
    (bytes([0x83, 1, 0, 0]), "illegal length 1"),
    (bytes([0x83, 7, 4, 0]), "runs past"),
    (bytes([1, 1, 1, 0x44]), "no length"),
])
def test_bad_option_lengths(opts, why):
    # RFC 1122 §3.2.1.8: an option length outside the possible range must not crash.
    with pytest.raises(WireError, match=why):
        parse_ipv4(ip4_bytes(b"x", options=opts))


def test_options_eol_and_nop():
    assert parse_ipv4_options(bytes([1, 1, 0x44, 4, 5, 0, 0, 0xFF])) == ((0x44, b"\x05\x00"),)
    assert parse_ipv4_options(bytes([0, 0x83, 0, 0])) == ()      # after EOL: padding


@pytest.mark.parametrize("changes", [
    {"options": b"\x01"}, {"options": bytes(44)}, {"frag_offset": 4}, {"frag_offset": 65536},
    {"ttl": 256}, {"ident": -1}, {"proto": 300}, {"src": "10.0.0.1"},
])
def test_emit_rejects_values_that_do_not_fit(changes):
    with pytest.raises(WireError):
        emit_ipv4(IPv4Packet(A, B, 6, b"").replace(**changes))


# --- round trips ---------------------------------------------------------------------------------

@PROPS
@given(ipv4_packets)
def test_parse_emit_roundtrip(pkt):
    raw = emit_ipv4(pkt)
    assert parse_ipv4(raw) == pkt
    assert emit_ipv4(parse_ipv4(raw)) == raw
    assert parse_packet(raw) == pkt and emit_packet(pkt) == raw


@PROPS
@given(ipv4_options())
def test_option_areas_validate(opts):
    assert len(opts) % 4 == 0 and len(opts) <= 40
    parse_ipv4_options(opts)


@PROPS
@given(st.binary(min_size=20, max_size=80))
def test_emit_of_parse_is_stable(raw):
    try:
        pkt = parse_ipv4(raw, verify=False)
    except WireError:
        return
    assert parse_ipv4(emit_ipv4(pkt)) == pkt


# --- parse_packet dispatch -----------------------------------------------------------------------

@pytest.mark.parametrize("first", [0x00, 0x15, 0x55, 0x75, 0xF5])
def test_parse_packet_unknown_version(first):
    with pytest.raises(WireError, match="version"):
        parse_packet(bytes([first]) + bytes(59))


def test_parse_packet_empty_and_non_packet():
    with pytest.raises(WireError, match="empty"):
        parse_packet(b"")
    with pytest.raises(WireError):
        emit_packet("not a packet")


def test_parse_packet_v4():
    raw = ip4_bytes(b"hello", proto=17)
    assert parse_packet(raw) == parse_ipv4(raw)
    assert parse_packet(bytearray(raw)) == parse_packet(memoryview(raw)) == parse_ipv4(raw)


def test_cached_address_is_a_plain_ipv4address():
    """The receive path's addresses (``_address``: hash, packed octets and text kept in slots)
    equal, hash, pack, print and pickle as plain ``IPv4Address`` values do, either way round as
    dict keys."""
    import copy
    import pickle

    from synack.wire.ip4 import _address
    for text in ("192.0.2.1", "0.0.0.0", "255.255.255.255", "10.1.2.3"):
        plain = IPv4Address(text)
        a = _address(plain.packed)
        assert a == plain and hash(a) == hash(plain) and a.packed == plain.packed
        assert str(a) == text and f"{a}" == text and repr(a) == repr(plain)
        assert {plain: 1}[a] == 1 and {a: 1}[plain] == 1
        assert {(a, 80, plain, 1): 1}[(plain, 80, a, 1)] == 1
        assert pickle.loads(pickle.dumps(a)) == plain and copy.copy(a) == plain
        assert _address(plain.packed) is a
