"""The wire module's shortcuts give the same bytes and values as the general paths they stand
for: ``ipv4_tcp_packet`` as ``emit_tcp`` inside ``emit_ipv4``; ``parse_tcp_summed`` as
``parse_tcp`` with the addresses, and its options read in place (12 option bytes) as
``parse_options``; ``ipv4_fields``' checksum test as ``checksum(header) != 0``."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synack.wire.checksum import checksum
from synack.wire.errors import WireError
from synack.wire.ip4 import IPv4Packet, emit_ipv4, ipv4_fields
from synack.wire.packet import build_tcp_packet, ipv4_tcp_packet
from synack.wire.tcp import (_FLAGS, Eol, Mss, Nop, Sack, SackPermitted, TcpSegment, Timestamps, UnknownOption,
                             WindowScale, emit_tcp, parse_options, parse_tcp, parse_tcp_summed)

u16, u32 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
option = st.one_of(st.just(Nop()), st.just(SackPermitted()), st.just(Eol()), st.builds(Mss, u16),
                   st.builds(WindowScale, st.integers(0, 255)), st.builds(Timestamps, u32, u32),
                   st.builds(Sack, st.lists(st.tuples(u32, u32), min_size=1, max_size=3).map(tuple)),
                   st.builds(UnknownOption, st.integers(9, 250), st.binary(max_size=6)))
segments = st.builds(TcpSegment, u16, u16, st.integers(-2**33, 2**33), st.integers(-2**33, 2**33),
                     st.integers(0, 255).map(lambda f: _FLAGS[f]), u16, u16,
                     st.lists(option, max_size=4).map(tuple), st.binary(max_size=300), st.integers(0, 15))
addr = st.binary(min_size=4, max_size=4)


def _general(sp: bytes, dp: bytes, seg: TcpSegment, ttl: int, tos: int) -> bytes:
    """What build_tcp_packet made before the shortcut: emit_tcp in emit_ipv4."""
    payload = emit_tcp(seg, sp, dp)
    return emit_ipv4(IPv4Packet(IPv4Address(sp), IPv4Address(dp), 6, payload, ttl=ttl, tos=tos))


@settings(max_examples=400)
@given(segments, addr, addr, st.integers(0, 255), st.integers(0, 255))
def test_ipv4_tcp_packet_is_emit_tcp_in_emit_ipv4(seg, sp, dp, ttl, tos):
    try:
        want = _general(sp, dp, seg, ttl, tos)
    except (WireError, struct.error) as e:
        with pytest.raises(type(e)):
            ipv4_tcp_packet(seg, sp, dp, int.from_bytes(sp + dp, "big"), ttl, tos)
        return
    assert ipv4_tcp_packet(seg, sp, dp, int.from_bytes(sp + dp, "big"), ttl, tos) == want
    assert build_tcp_packet(IPv4Address(sp), IPv4Address(dp), seg, ttl, tos=tos) == want


@pytest.mark.parametrize("sp, dp", [(bytes(4), bytes(4)), (b"\xff" * 4, b"\xff" * 4), (b"\xff\xff\0\0", bytes(4))])
@pytest.mark.parametrize("payload", [b"", b"\0", b"\xff" * 7, bytes(64)])
def test_ipv4_tcp_packet_extreme_sums(sp, dp, payload):
    """Sums that fold to 0 or 0xFFFF: the ones'-complement zero is kept as the general path keeps it."""
    for seg in (TcpSegment(0, 0, 0, 0, _FLAGS[0], 0, 0, (), payload),
                TcpSegment(0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, _FLAGS[255], 0xFFFF, 0xFFFF, (), payload, 15)):
        for ttl, tos in ((0, 0), (255, 255), (64, 0)):
            assert ipv4_tcp_packet(seg, sp, dp, int.from_bytes(sp + dp, "big"), ttl, tos) == _general(sp, dp, seg, ttl, tos)


def test_ipv4_tcp_packet_errors_as_general_path():
    seg = TcpSegment(1, 2, 3, 4, _FLAGS[0x10], 5, options=(UnknownOption(99, bytes(40)),))
    with pytest.raises(WireError, match="options too long"):
        ipv4_tcp_packet(seg, bytes(4), bytes(4), 0, 64, 0)
    big = TcpSegment(1, 2, 3, 4, _FLAGS[0x10], 5, payload=bytes(65516))
    with pytest.raises(WireError, match="too long"):
        ipv4_tcp_packet(big, bytes(4), bytes(4), 0, 64, 0)
    with pytest.raises(WireError):
        ipv4_tcp_packet(TcpSegment(1, 2, 3, 4, _FLAGS[0x10], 5), bytes(4), bytes(4), 0, 256, 0)


@settings(max_examples=300)
@given(segments, addr, addr, st.booleans(), st.integers(0, 0xFFFF))
def test_parse_tcp_summed_is_parse_tcp(seg, sp, dp, corrupt, where):
    try:
        raw = bytearray(emit_tcp(seg, sp, dp))
    except (WireError, struct.error):
        return
    if corrupt:
        raw[where % len(raw)] ^= 0x5A
    raw = bytes(raw)
    try:
        want = parse_tcp(raw, sp, dp)
    except WireError as e:
        with pytest.raises(WireError) as got:
            parse_tcp_summed(raw, int.from_bytes(sp + dp, "big"))
        assert got.value.reason == e.reason
        return
    assert parse_tcp_summed(raw, int.from_bytes(sp + dp, "big")) == want
    assert parse_tcp_summed(raw, None) == parse_tcp(raw, verify=False)


@settings(max_examples=300)
@given(st.binary(min_size=20, max_size=60), st.booleans())
def test_ipv4_fields_checksum_check(raw, fix):
    """ipv4_fields rejects exactly the headers whose checksum() is not 0 (RFC 791 §3.2)."""
    hdr = bytearray(raw)
    hdr[0] = 0x40 | (len(hdr) // 4)
    hdr[2:4] = len(hdr).to_bytes(2, "big")
    hdr = bytes(hdr[:len(hdr) // 4 * 4])
    hdr = hdr[:1] + bytes([hdr[1]]) + (len(hdr)).to_bytes(2, "big") + hdr[4:]
    if len(hdr) > 20:                        # options: NOPs, which parse
        hdr = hdr[:20] + b"\x01" * (len(hdr) - 20)
    if fix:
        hdr = hdr[:10] + b"\0\0" + hdr[12:]
        hdr = hdr[:10] + checksum(hdr).to_bytes(2, "big") + hdr[12:]
    ok = checksum(hdr) == 0
    if ok:
        assert ipv4_fields(hdr)[5] == len(hdr)
    else:
        with pytest.raises(WireError, match="checksum"):
            ipv4_fields(hdr)


_TWELVE = [(Nop(), Nop(), Timestamps(1, 2)), (Timestamps(0xFFFFFFFF, 0), Nop(), Nop()),
           (Nop(), Nop(), Nop(), Nop(), Mss(1460), WindowScale(7), Eol()), (Sack(((5, 9),)), Nop(), Nop()),
           (UnknownOption(30, b"0123456789"),), (Mss(536), Mss(1), Nop(), Nop(), Nop(), Nop())]


@pytest.mark.parametrize("opts", _TWELVE)
def test_twelve_option_bytes_read_in_place_as_parse_options(opts):
    raw = emit_tcp(TcpSegment(1, 2, 3, 4, _FLAGS[0x18], 5, 0, opts, b"data"))
    assert (raw[12] >> 4) * 4 == 32
    for data in (raw, memoryview(raw), bytearray(raw)):
        seg = parse_tcp_summed(data, None)
        assert seg.options == parse_options(raw[20:32]) and seg.payload == b"data"


@settings(max_examples=300, deadline=None)
@given(segments)
def test_options_of_any_segment_as_parse_options(seg):
    try:
        raw = emit_tcp(seg)
    except WireError:
        return                                    # more than 40 option bytes: no segment
    doff = (raw[12] >> 4) * 4
    got = parse_tcp_summed(memoryview(raw), None)
    assert got.options == (parse_options(raw[20:doff]) if doff > 20 else ())
    assert got.payload == raw[doff:] and type(got.payload) is bytes     # b"" too, without the slice
