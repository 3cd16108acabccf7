"""The fast big-int Internet checksum against a word-by-word reference (RFC 1071)."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from synack.wire.checksum import checksum, ones_sum, pseudo_header_v4, pseudo_header_v6

FAST = settings(max_examples=150, deadline=None, database=None)


def ref_ones_sum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 §1, literally: add 16-bit big-endian words (an odd last byte padded with a
    zero byte), then fold the carries back in."""
    if len(data) % 2:
        data += b"\x00"
    total = initial
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)     # end-around carry after every add
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def ref_checksum(data: bytes, initial: int = 0) -> int:
    return ~ref_ones_sum(data, initial) & 0xFFFF


def test_rfc1071_numerical_example():
    # RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (after the end-around carries).
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_sum(data) == 0xDDF2
    assert ref_ones_sum(data) == 0xDDF2
    assert checksum(data) == 0x220D
    # Appending the checksum makes the whole thing sum to 0xFFFF: the receiver's check.
    assert ones_sum(data + b"\x22\x0d") == 0xFFFF
    assert checksum(data + b"\x22\x0d") == 0


def test_ipv4_header_vector():
    # A captured IPv4 header (UDP, 192.168.0.1 -> 192.168.0.199) whose checksum is b861.
    hdr = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert checksum(hdr) == 0xB861
    assert checksum(hdr[:10] + b"\xb8\x61" + hdr[12:]) == 0


def test_odd_length_pads_with_zero_byte():
    assert ones_sum(b"\x12") == 0x1200
    assert ones_sum(b"\x12\x34\x56") == 0x1234 + 0x5600
    assert checksum(b"\xab") == ref_checksum(b"\xab")


def test_edge_values():
    assert ones_sum(b"") == 0
    assert ones_sum(b"\x00\x00") == 0
    assert checksum(b"") == 0xFFFF
    # Ones' complement has two zeros; a non-zero sum that is a multiple of 0xFFFF is 0xFFFF.
    assert ones_sum(b"\xff\xff") == 0xFFFF
    assert ones_sum(b"\xff\xff\xff\xff") == 0xFFFF
    assert ones_sum(b"\x00\x01\xff\xfe") == 0xFFFF
    assert ones_sum(b"\xff\xff" * 40000) == 0xFFFF
    assert ones_sum(b"\x80\x00\x80\x00") == 0x0001     # carry wraps around


def test_memoryview_and_bytearray():
    data = bytes(range(256)) * 3 + b"\x07"
    assert checksum(memoryview(data)) == checksum(bytearray(data)) == checksum(data) == ref_checksum(data)


@FAST
@given(st.binary(max_size=2000), st.integers(0, 0xFFFF))
def test_fast_equals_reference(data, initial):
    assert ones_sum(data, initial) == ref_ones_sum(data, initial)
    assert checksum(data, initial) == ref_checksum(data, initial)


@FAST
@given(st.binary(min_size=1, max_size=1000).filter(lambda b: len(b) % 2 == 1))
def test_odd_lengths_equal_reference(data):
    assert ones_sum(data) == ref_ones_sum(data)


@FAST
@given(st.binary(max_size=500), st.binary(max_size=500))
def test_sum_is_associative_over_even_splits(a, b):
    # RFC 1071 §2(C): parallel summation. A split at an even offset sums independently.
    if len(a) % 2:
        a += b"\x00"
    assert ones_sum(a + b) == ref_ones_sum(b, ones_sum(a))


@FAST
@given(st.binary(max_size=1500).map(lambda b: b if len(b) % 2 == 0 else b + b"\x00"))
def test_inserting_checksum_verifies(data):
    c = checksum(data)
    assert checksum(data + struct.pack("!H", c)) == 0


def test_pseudo_headers_match_rfc_layout():
    src4, dst4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    # RFC 9293 §3.1: src, dst, zero, PTCL, TCP length.
    assert pseudo_header_v4(src4, dst4, 6, 40) == ref_ones_sum(src4 + dst4 + bytes([0, 6, 0, 40]))
    src6, dst6 = bytes(range(16)), bytes(range(16, 32))
    # RFC 8200 §8.1: src, dst, 32-bit upper-layer length, 3 zero octets, Next Header.
    assert pseudo_header_v6(src6, dst6, 58, 70000) == ref_ones_sum(
        src6 + dst6 + struct.pack("!I", 70000) + bytes([0, 0, 0, 58]))


def test_64k_buffer():
    data = bytes((i * 7 + 3) & 0xFF for i in range(65535))
    assert checksum(data) == ref_checksum(data)


@FAST
@given(st.binary(min_size=1, max_size=1500).filter(any), st.integers(0, 0xFFFF))
def test_checksum_of_nonzero_data_is_never_ffff(data, initial):
    # The sum of anything non-zero is never the "positive zero" 0x0000, so the checksum written is
    # never 0xFFFF: where 0 is computed, synack writes 0x0000 (tshark flags 0xFFFF; RFC 1624 §3).
    assert checksum(data, initial) != 0xFFFF


def test_checksum_is_inverted_ones_sum_at_the_folds():
    """``checksum`` writes ``ones_sum`` out; at its three cases (zero sum, a non-zero multiple of
    0xFFFF, anything else) it is ``~ones_sum(...) & 0xFFFF``."""
    for data, initial in [(b"", 0), (b"\x00\x00", 0), (b"\xff\xff", 0), (b"\xff\xff\xff\xff", 0),
                          (b"\x00\x01", 0xFFFE), (b"\x12\x34\x56", 7), (b"\xff", 0xFF),
                          (b"", 0xFFFF * 3), (b"\x00", 1)]:
        assert checksum(data, initial) == ~ones_sum(data, initial) & 0xFFFF, (data, initial)


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=1 << 40))
@FAST
def test_checksum_is_inverted_ones_sum(data, initial):
    assert checksum(data, initial) == ~ones_sum(data, initial) & 0xFFFF
