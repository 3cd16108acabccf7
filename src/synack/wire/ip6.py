"""IPv6 (RFC 8200 §3, §4): bytes <-> ``IPv6Packet``.

``parse_ipv6`` walks the extension-header chain (Hop-by-Hop 0, Routing 43, Fragment 44,
Destination Options 60) up to the upper-layer header or No Next Header (59). Each extension
header is kept verbatim in ``ext_headers`` so ``emit_ipv6(parse_ipv6(b)) == b``. A packet whose
Fragment header says it is a real fragment is reported (``is_fragment``), not reassembled: the
walk stops at that Fragment header and ``payload`` is the fragment data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from ipaddress import IPv6Address

from synack.wire.errors import WireError

HEADER_LEN = 40
MAX_PAYLOAD_LEN = 0xFFFF          # no jumbograms (RFC 2675): Payload Length is 16 bits
_HDR = struct.Struct("!IHBB16s16s")

HOP_BY_HOP = 0
ROUTING = 43
FRAGMENT = 44
DEST_OPTIONS = 60
NO_NEXT_HEADER = 59
EXT_HEADERS = frozenset({HOP_BY_HOP, ROUTING, FRAGMENT, DEST_OPTIONS})

_PAD1 = 0
_PADN = 1


@dataclass(frozen=True, slots=True)
class IPv6Packet:
    """One IPv6 packet as a value.

    ``next_header`` is the upper-layer protocol found after the extension headers (59 if there
    is none; for a fragment, the Next Header of its Fragment header). ``ext_headers`` holds
    ``(header type, raw bytes)`` pairs in wire order; each raw header includes its own Next
    Header and length octets (``emit_ipv6`` rewrites the Next Header octets to chain them).
    """
    src: IPv6Address
    dst: IPv6Address
    next_header: int
    payload: bytes
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0
    ext_headers: tuple[tuple[int, bytes], ...] = ()

    @property
    def is_fragment(self) -> bool:
        """True if a Fragment header has a non-zero offset or the M flag (RFC 8200 §4.5).

        An "atomic fragment" (offset 0, M = 0) is a whole packet and does not count."""
        for kind, raw in self.ext_headers:
            if kind == FRAGMENT and len(raw) >= 4 and int.from_bytes(raw[2:4], "big") & 0xFFF9:
                return True
        return False

    @property
    def fragment(self) -> tuple[int, bool, int] | None:
        """``(offset in octets, more fragments, identification)`` of the first Fragment header."""
        for kind, raw in self.ext_headers:
            if kind == FRAGMENT and len(raw) == 8:
                off_m, ident = struct.unpack("!HI", raw[2:8])
                return (off_m & 0xFFF8, bool(off_m & 1), ident)
        return None

    @property
    def proto(self) -> int:
        """Alias of ``next_header``, the name IPv4Packet uses."""
        return self.next_header

    @property
    def ttl(self) -> int:
        """Alias of ``hop_limit``, the name IPv4Packet uses."""
        return self.hop_limit

    def replace(self, **changes) -> "IPv6Packet":
        return replace(self, **changes)


def _check_options(buf: bytes | bytearray | memoryview, start: int, end: int, kind: int) -> None:
    """Walk the TLV options of a Hop-by-Hop or Destination Options header (RFC 8200 §4.2)."""
    i = start
    while i < end:
        otype = buf[i]
        if otype == _PAD1:             # Pad1 has no length octet
            i += 1
            continue
        if i + 1 >= end:
            raise WireError(f"IPv6 option type {otype} in header {kind} has no length octet")
        olen = buf[i + 1]
        if i + 2 + olen > end:
            raise WireError(f"IPv6 option type {otype} length {olen} runs past header {kind}")
        if otype != _PADN and otype & 0xC0:
            # RFC 8200 §4.2: an unrecognized option whose two high-order bits are 01, 10 or 11
            # means "discard the packet" (10/11 add an ICMP Parameter Problem, code 2, which is
            # the stack's business). We recognize only Pad1 and PadN, so such options are fatal.
            raise WireError(f"unrecognized IPv6 option type 0x{otype:02x} in header {kind}: discard")
        i += 2 + olen


def walk_ext_headers(buf: bytes | bytearray | memoryview, nh: int, off: int, end: int,
                     *, quoted: bool = False) -> tuple[int, int, list[tuple[int, bytes]], bool]:
    """Walk extension headers in ``buf[off:end]``, starting with header type ``nh``.

    Returns ``(upper-layer protocol, offset of the upper-layer data, headers, is_fragment)``.
    The walk stops at the first header that is not an extension header, at No Next Header, or
    right after a Fragment header of a real fragment. Raises ``WireError`` if a header runs
    past ``end`` or breaks a rule that says the packet must be discarded.

    ``quoted=True`` is for the (truncated) packet quoted in an ICMPv6 error: the walk goes on
    through the Fragment header of a first fragment, whose upper-layer header follows, and a
    later fragment (no upper-layer header at all) raises ``WireError``.
    """
    end = min(end, len(buf))
    exts: list[tuple[int, bytes]] = []
    while nh in EXT_HEADERS:
        if nh == HOP_BY_HOP and exts:
            # RFC 8200 §4: Hop-by-Hop must immediately follow the IPv6 header; a Next Header
            # of zero elsewhere is treated like an unrecognized one: discard.
            raise WireError("IPv6 Hop-by-Hop header not directly after the IPv6 header")
        if off + 8 > end:
            raise WireError(f"IPv6 extension header {nh} truncated at offset {off}")
        if nh == FRAGMENT:
            hlen = 8                    # RFC 8200 §4.5: fixed size; octet 1 is reserved
        else:
            # Hdr Ext Len: 8-octet units, not counting the first 8 (RFC 8200 §4.3, §4.4, §4.6)
            hlen = (buf[off + 1] + 1) * 8
            if off + hlen > end:
                raise WireError(f"IPv6 extension header {nh} length {hlen} runs past the end")
        nxt = buf[off]
        if nh == HOP_BY_HOP or nh == DEST_OPTIONS:
            _check_options(buf, off + 2, off + hlen, nh)
        elif nh == ROUTING:
            if buf[off + 3] != 0:
                # RFC 8200 §4.4: an unrecognized Routing Type with Segments Left non-zero
                # "must discard the packet". A host recognizes none (type 0 is deprecated,
                # RFC 5095).
                raise WireError(f"IPv6 Routing header type {buf[off + 2]} with "
                                f"{buf[off + 3]} segments left: discard")
        exts.append((nh, bytes(buf[off:off + hlen])))
        off += hlen
        nh = nxt
        if exts[-1][0] == FRAGMENT:
            off_m = (buf[off - 6] << 8) | buf[off - 5]
            if quoted and off_m & 0xFFF8:
                raise WireError("quoted IPv6 packet is a non-first fragment: no upper-layer header")
            if off_m & 0xFFF9 and not quoted:   # offset != 0 or M = 1: a real fragment
                if off_m & 1 and (end - off) % 8:
                    # RFC 8200 §4.5: a fragment with M = 1 whose length is not a multiple
                    # of 8 octets "must be discarded".
                    raise WireError(f"IPv6 fragment of {end - off} octets with M=1 "
                                    "is not a multiple of 8")
                return nh, off, exts, True
    return nh, off, exts, False


def parse_ipv6(data: bytes | bytearray | memoryview, *, verify: bool = True) -> IPv6Packet:
    """Parse one IPv6 packet. Raises ``WireError`` (and nothing else) on malformed input.

    Octets past Payload Length (link-layer padding) are dropped; a buffer shorter than it is an
    error. IPv6 has no header checksum; ``verify`` is accepted for symmetry with ``parse_ipv4``.
    """
    n = len(data)
    if n < HEADER_LEN:
        raise WireError(f"IPv6 header truncated: {n} bytes")
    vtf, plen, nh, hop, src, dst = _HDR.unpack_from(data, 0)
    version = vtf >> 28
    if version != 6:
        raise WireError(f"IP version {version}, expected 6")
    end = HEADER_LEN + plen
    if end > n:
        raise WireError(f"IPv6 payload length {plen} > {n - HEADER_LEN} bytes received")
    upper, off, exts, _frag = walk_ext_headers(data, nh, HEADER_LEN, end)
    return IPv6Packet(IPv6Address(src), IPv6Address(dst), upper, bytes(data[off:end]),
                      hop, (vtf >> 20) & 0xFF, vtf & 0xFFFFF, tuple(exts))


def emit_ipv6(pkt: IPv6Packet) -> bytes:
    """Encode ``pkt``: Payload Length is computed and the Next Header octets are chained
    (IPv6 header -> each extension header -> ``pkt.next_header``). Extension headers whose
    length does not match their Hdr Ext Len, or values out of range, raise ``WireError``.
    Their contents (options, Segments Left) are not checked, so tests can send what
    ``parse_ipv6`` would reject."""
    if not 0 <= pkt.next_header <= 0xFF:
        raise WireError(f"IPv6 next header {pkt.next_header} out of range")
    parts: list[bytes] = []
    exts = pkt.ext_headers
    for i, (kind, raw) in enumerate(exts):
        if kind not in EXT_HEADERS:
            raise WireError(f"not an IPv6 extension header type: {kind}")
        if kind == HOP_BY_HOP and i:
            raise WireError("IPv6 Hop-by-Hop header must come first (RFC 8200 §4)")
        want = 8 if kind == FRAGMENT else ((raw[1] + 1) * 8 if len(raw) >= 2 else -1)
        if len(raw) != want:
            raise WireError(f"IPv6 extension header {kind}: {len(raw)} octets, length field says {want}")
        nxt = exts[i + 1][0] if i + 1 < len(exts) else pkt.next_header
        parts.append(bytes((nxt,)) + raw[1:])
    parts.append(pkt.payload)
    body = b"".join(parts)
    if len(body) > MAX_PAYLOAD_LEN:
        raise WireError(f"IPv6 payload too long: {len(body)} > {MAX_PAYLOAD_LEN}")
    first = exts[0][0] if exts else pkt.next_header
    if not (isinstance(pkt.src, IPv6Address) and isinstance(pkt.dst, IPv6Address)):
        raise WireError("IPv6Packet src and dst must be IPv6Address")
    if not (0 <= pkt.traffic_class <= 0xFF and 0 <= pkt.flow_label <= 0xFFFFF):
        raise WireError("IPv6 traffic class or flow label out of range")
    vtf = (6 << 28) | (pkt.traffic_class << 20) | pkt.flow_label
    try:
        hdr = _HDR.pack(vtf, len(body), first, pkt.hop_limit, pkt.src.packed, pkt.dst.packed)
    except struct.error as e:
        raise WireError(f"IPv6 header field out of range: {e}") from None
    return hdr + body


__all__ = ["IPv6Packet", "parse_ipv6", "emit_ipv6", "walk_ext_headers", "HEADER_LEN",
           "HOP_BY_HOP", "ROUTING", "FRAGMENT", "DEST_OPTIONS", "NO_NEXT_HEADER"]
