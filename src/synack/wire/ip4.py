"""IPv4 (RFC 791 §3.1): bytes <-> ``IPv4Packet``.

``parse_ipv4`` checks what a receiver must check before trusting a field (version, IHL, total
length, header checksum, option lengths) and raises ``WireError`` otherwise; ``emit_ipv4``
computes Total Length and the header checksum. Fragments are parsed and reported
(``is_fragment``), not reassembled.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from ipaddress import IPv4Address

from synack.wire.checksum import checksum
from synack.wire.errors import WireError

HEADER_LEN = 20
MAX_TOTAL_LEN = 0xFFFF            # Total Length is 16 bits (RFC 791 §3.1)
MAX_OPTIONS_LEN = 40              # IHL is 4 bits: at most 60 header octets
_HDR = struct.Struct("!BBHHHBBH4s4s")

_FLAG_RESERVED = 0x8000
_FLAG_DF = 0x4000
_FLAG_MF = 0x2000
_OFFSET_MASK = 0x1FFF

OPT_EOL = 0
OPT_NOP = 1


@dataclass(frozen=True, slots=True)
class IPv4Packet:
    """One IPv4 datagram (or fragment) as a value.

    ``frag_offset`` is in octets (the wire field times 8). ``options`` is the raw option area,
    padding included, a multiple of 4 octets long. Total Length, IHL and the header checksum are
    not fields: ``emit_ipv4`` derives them.
    """
    src: IPv4Address
    dst: IPv4Address
    proto: int
    payload: bytes
    ttl: int = 64
    tos: int = 0
    ident: int = 0
    df: bool = True
    mf: bool = False
    frag_offset: int = 0
    options: bytes = b""

    @property
    def is_fragment(self) -> bool:
        """True for any piece of a fragmented datagram (RFC 791 §3.2 "Fragmentation")."""
        return self.mf or self.frag_offset != 0

    @property
    def header_len(self) -> int:
        return HEADER_LEN + len(self.options)

    @property
    def total_len(self) -> int:
        return HEADER_LEN + len(self.options) + len(self.payload)

    def replace(self, **changes) -> "IPv4Packet":
        return replace(self, **changes)


def parse_ipv4_options(raw: bytes | bytearray | memoryview) -> tuple[tuple[int, bytes], ...]:
    """Split an IPv4 option area into ``(option-type, option-data)`` pairs.

    End of Option List and No Operation are not returned (RFC 1122 §3.2.1.8 passes all other
    options up). Lengths below 2 or running past the area raise ``WireError``: RFC 1122
    §3.2.1.8 "The IP layer must not crash as the result of an option length that is outside
    the possible range".
    """
    out: list[tuple[int, bytes]] = []
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        if kind == OPT_EOL:          # RFC 791 §3.1: one octet; the rest is padding
            break
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            raise WireError(f"IPv4 option type {kind} has no length octet")
        length = raw[i + 1]          # counts the type and length octets too (RFC 791 §3.1)
        if length < 2:
            raise WireError(f"IPv4 option type {kind} has illegal length {length}")
        if i + length > n:
            raise WireError(f"IPv4 option type {kind} length {length} runs past the header")
        out.append((kind, bytes(raw[i + 2:i + length])))
        i += length
    return tuple(out)


class _HashedIPv4Address(IPv4Address):
    """An ``IPv4Address`` whose hash, packed octets and text are worked out once, each read with
    no Python call. The stack hashes the addresses of every packet (its 4-tuple tables are keyed
    by them), packs them for checksums and names them in a new connection's ``ConnId``;
    ``IPv4Address`` works each out anew, in Python. Equal to, hashing like and printing as a
    plain ``IPv4Address``.

    ``packed`` is a slot that shadows the base class's property. ``__hash__`` and ``__str__`` are
    slots too, holding a bound method of the int and str computed once (``h.__index__``,
    ``s.__str__``: C methods that return the object itself): ``hash(a)`` and ``str(a)`` find the
    slot through the type, as they would a method, and call what it holds, all in C. A Python
    ``def __hash__`` ran a frame per call: ~590 instructions, against ~260, and a 4-tuple key
    holds two addresses (about 25 key hashes per close-mode connection; tests/wire pin equality)."""
    __slots__ = ("__hash__", "packed", "__str__")

    def __init__(self, address: object) -> None:
        super().__init__(address)
        self.__hash__ = IPv4Address.__hash__(self).__index__
        self.packed = IPv4Address.packed.fget(self)
        self.__str__ = IPv4Address.__str__(self).__str__

    def __repr__(self) -> str:
        return f"IPv4Address('{self}')"

    def __reduce__(self):
        return IPv4Address, (self._ip,)


_ADDRESSES: dict[bytes, IPv4Address] = {}


def _address(packed: bytes) -> IPv4Address:
    """One ``IPv4Address`` per address seen (bounded): building one per packet is slow."""
    a = _ADDRESSES.get(packed)
    if a is None:
        if len(_ADDRESSES) >= 4096:
            _ADDRESSES.clear()
        a = _ADDRESSES[packed] = _HashedIPv4Address(packed)
    return a


def parse_ipv4(data: bytes | bytearray | memoryview, *, verify: bool = True) -> IPv4Packet:
    """Parse one IPv4 datagram. Raises ``WireError`` (and nothing else) on malformed input.

    Octets past Total Length (link-layer padding, e.g. Ethernet's 46-octet minimum) are
    dropped; a buffer shorter than Total Length is an error. With ``verify`` the header
    checksum must be correct.
    """
    src, dst, proto, tos, hlen, total, ident, ttl, flags_off, _, _ = ipv4_fields(data, verify=verify)
    options = b""
    if hlen > HEADER_LEN:
        options = bytes(data[HEADER_LEN:hlen])
    # The reserved flag bit "must be zero" is a rule for senders; receivers ignore it.
    return IPv4Packet(
        src, dst, proto, bytes(data[hlen:total]),
        ttl, tos, ident,
        bool(flags_off & _FLAG_DF), bool(flags_off & _FLAG_MF),
        (flags_off & _OFFSET_MASK) * 8, options,
    )


def ipv4_fields(data: bytes | bytearray | memoryview, *, verify: bool = True) -> tuple:
    """The checks of ``parse_ipv4`` without building the value, for the stack's receive path:
    ``(src, dst, proto, tos, header length, total length, identification, ttl, flags and
    fragment offset field, src as 4 bytes, dst as 4 bytes)``; the payload is
    ``data[header length:total length]``. Raises ``WireError`` as ``parse_ipv4`` does."""
    n = len(data)
    if n < HEADER_LEN:
        raise WireError(f"IPv4 header truncated: {n} bytes")
    (ver_ihl, tos, total, ident, flags_off, ttl, proto, _csum,
     src, dst) = _HDR.unpack_from(data, 0)
    version = ver_ihl >> 4
    if version != 4:
        raise WireError(f"IP version {version}, expected 4")
    hlen = (ver_ihl & 0x0F) * 4
    if hlen < HEADER_LEN:
        # RFC 791 §3.1: "the minimum value for a correct header is 5".
        raise WireError(f"IPv4 IHL {hlen // 4} < 5")
    if hlen > n:
        raise WireError(f"IPv4 IHL {hlen // 4} runs past the end ({n} bytes)")
    if total < hlen:
        raise WireError(f"IPv4 total length {total} < header length {hlen}")
    if total > n:
        raise WireError(f"IPv4 total length {total} > {n} bytes received")
    if verify:
        # checksum(data[:hlen]) != 0 written out (this runs for every packet): the header's
        # ones'-complement sum is its value modulo 0xFFFF, folded to 0xFFFF when that is 0 and
        # the header is not all zeros (checksum.ones_sum); it checks iff that sum is 0xFFFF.
        n = int.from_bytes(data[:hlen], "big")
        if n % 0xFFFF or not n:
            # RFC 791 §3.2: "If the header checksum fails, the internet datagram is discarded
            # at once by the entity which detects the error."
            raise WireError("bad IPv4 header checksum")
    if hlen > HEADER_LEN:
        parse_ipv4_options(data[HEADER_LEN:hlen])
    a = _ADDRESSES                          # (_address(), its common case inlined)
    return (a.get(src) or _address(src), a.get(dst) or _address(dst), proto, tos, hlen, total, ident, ttl,
            flags_off, src, dst)


def emit_ipv4(pkt: IPv4Packet) -> bytes:
    """Encode ``pkt``, computing IHL, Total Length and the header checksum.

    Values that do not fit the header (options not a multiple of 4 or over 40 octets, a
    datagram over 65,535 octets, a fragment offset not a multiple of 8, fields out of range)
    raise ``WireError``. Option *contents* are not checked: a test may send malformed ones on
    purpose, and ``parse_ipv4`` is where they are rejected.
    """
    olen = len(pkt.options)
    if olen % 4 or olen > MAX_OPTIONS_LEN:
        raise WireError(f"IPv4 options must be a multiple of 4 octets, at most 40: got {olen}")
    hlen = HEADER_LEN + olen
    total = hlen + len(pkt.payload)
    if total > MAX_TOTAL_LEN:
        raise WireError(f"IPv4 datagram too long: {total} > {MAX_TOTAL_LEN}")
    off = pkt.frag_offset
    if off % 8 or not 0 <= off <= _OFFSET_MASK * 8:
        # RFC 791 §3.1: "The fragment offset is measured in units of 8 octets".
        raise WireError(f"IPv4 fragment offset {off} is not a multiple of 8 in 0..65528")
    if not (isinstance(pkt.src, IPv4Address) and isinstance(pkt.dst, IPv4Address)):
        raise WireError("IPv4Packet src and dst must be IPv4Address")
    flags_off = (off // 8) | (_FLAG_DF if pkt.df else 0) | (_FLAG_MF if pkt.mf else 0)
    try:
        hdr = _HDR.pack(0x40 | (hlen // 4), pkt.tos, total, pkt.ident, flags_off, pkt.ttl,
                        pkt.proto, 0, pkt.src.packed, pkt.dst.packed)
    except struct.error as e:
        raise WireError(f"IPv4 header field out of range: {e}") from None
    if olen:
        hdr += pkt.options
    # RFC 791 §3.1: the checksum is computed with the checksum field zero.
    c = checksum(hdr)
    return hdr[:10] + c.to_bytes(2, "big") + hdr[12:] + pkt.payload


__all__ = ["IPv4Packet", "parse_ipv4", "emit_ipv4", "parse_ipv4_options", "HEADER_LEN"]
