"""The Internet checksum (RFC 1071), computed on whole buffers.

Summing 16-bit words one by one in Python is ~100x slower than folding the buffer as one big
integer: a ones'-complement sum of 16-bit words equals the big integer modulo 0xFFFF (RFC 1071
§2: the sum is associative and carries can be deferred), so we let CPython's big-int code do
the adding.
"""

import struct


def ones_sum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """Ones'-complement sum of ``data`` as 16-bit big-endian words, folded to 16 bits (not inverted)."""
    n = int.from_bytes(data, "big")
    if len(data) & 1:
        n <<= 8                             # an odd last octet is padded with a zero (no copy)
    n += initial
    if n == 0:
        return 0
    # x mod 0xFFFF, but ones'-complement arithmetic has two zeros: a non-zero sum that is a
    # multiple of 0xFFFF folds to 0xFFFF, not 0.
    r = n % 0xFFFF
    return r if r else 0xFFFF


def checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The 16-bit Internet checksum field value for ``data`` (plus a pre-summed ``initial``)."""
    # ~ones_sum(data, initial) & 0xFFFF with ones_sum written out (a call fewer per segment):
    # a zero sum gives 0xFFFF, a non-zero multiple of 0xFFFF (sum 0xFFFF) gives 0, else 0xFFFF - r
    n = int.from_bytes(data, "big")
    if len(data) & 1:
        n <<= 8
    n += initial
    if n == 0:
        return 0xFFFF
    r = n % 0xFFFF
    return 0xFFFF - r if r else 0


def pseudo_header_v4(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Partial sum of the IPv4 pseudo-header (RFC 9293 §3.1)."""
    return ones_sum(src + dst + struct.pack("!BBH", 0, proto, length))


def pseudo_header_v6(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1)."""
    return ones_sum(src + dst + struct.pack("!IxxxB", length, proto))
