"""Whole IP packets: pick IPv4 or IPv6 by the version nibble, and TCP-in-IP helpers.

These are what a link (TUN, simulator, pcap) hands the stack and what the stack hands back.
Segments up to 64 KiB (TUN with offloads delivers them) go through unchanged.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Union

from synack.wire.checksum import checksum
from synack.wire.errors import WireError
from synack.wire.ip4 import IPv4Packet, emit_ipv4, parse_ipv4
from synack.wire.ip6 import IPv6Packet, emit_ipv6, parse_ipv6
from synack.wire.tcp import HEADER_LEN as TCP_HEADER_LEN
from synack.wire.tcp import PROTO_TCP, TcpSegment, emit_options, emit_tcp, parse_tcp

IPPacket = Union[IPv4Packet, IPv6Packet]
IPAddress = Union[IPv4Address, IPv6Address]


class ChecksumValid(bytes):
    """An IP packet whose link has already checked or computed its TCP checksum (virtio-net
    DATA_VALID, or a NEEDS_CSUM checksum the TUN link completed): the stack does not sum it a
    second time. Anything that rewrites the packet (a fault wrapper flipping bits) makes plain
    ``bytes``, which are verified as usual."""
    __slots__ = ()


def parse_packet(data: bytes | bytearray | memoryview, *, verify: bool = True) -> IPPacket:
    """Parse an IPv4 or IPv6 packet, chosen by the version nibble (RFC 791 §3.1, RFC 8200 §3).
    Raises ``WireError`` for any other version or malformed input."""
    if not data:
        raise WireError("empty packet")
    version = data[0] >> 4
    if version == 4:
        return parse_ipv4(data, verify=verify)
    if version == 6:
        return parse_ipv6(data, verify=verify)
    raise WireError(f"IP version {version}, expected 4 or 6")


def emit_packet(pkt: IPPacket) -> bytes:
    """Encode an ``IPv4Packet`` or ``IPv6Packet``."""
    if isinstance(pkt, IPv4Packet):
        return emit_ipv4(pkt)
    if isinstance(pkt, IPv6Packet):
        return emit_ipv6(pkt)
    raise WireError(f"not an IP packet: {type(pkt).__name__}")


def tcp_in(pkt: IPPacket, *, verify: bool = True) -> TcpSegment:
    """The TCP segment carried by ``pkt``, its checksum checked over the pseudo-header
    (RFC 9293 §3.1, MUST-2/MUST-3; RFC 8200 §8.1). Raises ``WireError`` if ``pkt`` is not TCP,
    is a fragment (synack does not reassemble), or the segment is malformed."""
    if isinstance(pkt, IPv4Packet):
        proto = pkt.proto
    elif isinstance(pkt, IPv6Packet):
        proto = pkt.next_header
    else:
        raise WireError(f"not an IP packet: {type(pkt).__name__}")
    if proto != PROTO_TCP:
        raise WireError(f"IP protocol {proto} is not TCP")
    if pkt.is_fragment:
        raise WireError("IP fragment: reassembly is not supported")
    return parse_tcp(pkt.payload, pkt.src.packed, pkt.dst.packed, verify=verify)


def build_tcp_packet(src: IPAddress | str, dst: IPAddress | str, seg: TcpSegment, ttl: int = 64,
                     *, partial_checksum: bool = False, tos: int = 0) -> bytes:
    """Encode ``seg`` with its checksum and wrap it in IPv4 or IPv6, by the addresses' family.
    ``partial_checksum``: the checksum field holds only the pseudo-header sum, for a link that
    completes it (virtio-net NEEDS_CSUM: a TSO segment the TUN kernel cuts and checksums).
    ``tos``: the IPv4 TOS / IPv6 Traffic Class octet (Diffserv and ECN bits).

    IPv4 datagrams carry DF and Identification 0: an atomic datagram (RFC 6864 §4.1)."""
    s = src if isinstance(src, (IPv4Address, IPv6Address)) else ip_address(src)
    d = dst if isinstance(dst, (IPv4Address, IPv6Address)) else ip_address(dst)
    if s.version != d.version:
        raise WireError(f"address families differ: {s} and {d}")
    sp, dp = s.packed, d.packed             # (a property that packs the address on each call)
    if s.version == 4 and not partial_checksum:
        return ipv4_tcp_packet(seg, sp, dp, int.from_bytes(sp + dp, "big"), ttl, tos)
    return _build(s, d, sp, dp, seg, ttl, partial_checksum, tos)


def _build(s: IPAddress, d: IPAddress, sp: bytes, dp: bytes, seg: TcpSegment, ttl: int, partial_checksum: bool,
           tos: int) -> bytes:
    """``build_tcp_packet`` the long way: ``emit_tcp``, then the IP header around it."""
    payload = emit_tcp(seg, sp, dp, partial=partial_checksum)
    if s.version == 4:
        # What emit_ipv4(IPv4Packet(s, d, PROTO_TCP, payload, ttl=ttl, tos=tos)) makes (tests/wire
        # check it), without building and checking the value: this runs for every segment sent.
        total = 20 + len(payload)
        if total > 65535 or not (0 <= ttl <= 255 and 0 <= tos <= 255):
            return emit_ipv4(IPv4Packet(s, d, PROTO_TCP, payload, ttl=ttl, tos=tos))   # raises WireError
        hdr = _IP4_TCP.pack(0x45, tos, total, 0, 0x4000, ttl, PROTO_TCP, 0, sp, dp)
        return hdr[:10] + checksum(hdr).to_bytes(2, "big") + hdr[12:] + payload
    return emit_ipv6(IPv6Packet(s, d, PROTO_TCP, payload, hop_limit=ttl, traffic_class=tos))


_IP4_TCP = struct.Struct("!BBHHHBBH4s4s")     # an IPv4 header without options (RFC 791 §3.1)
_IP4_TCP_HDRS = struct.Struct("!BBHHHBBH4s4sHHIIBBHHH")   # ... and a TCP header (RFC 9293 §3.1)


def ipv4_tcp_packet(seg: TcpSegment, src: bytes, dst: bytes, addr_sum: int, ttl: int = 64,
                    tos: int = 0) -> bytes:
    """``build_tcp_packet(IPv4Address(src), IPv4Address(dst), seg, ttl, tos=tos)`` (checksums in
    full) for addresses given as 4 packed octets each and ``addr_sum = int.from_bytes(src + dst,
    "big")``, which a sender works out once per connection; the same bytes (tests/wire check it).

    Both checksums are found without packing a header first: a ones'-complement sum of 16-bit
    words is the words' plain sum modulo 0xFFFF, and since 2**16 = 1 (mod 0xFFFF) a 32-bit field
    (or the addresses as one integer) adds as a number, like its two words (RFC 1071 §2). Neither
    sum can be zero (the protocol word is 6), so ``checksum`` folds them as it does the header's
    bytes. The IPv4 header is that of ``build_tcp_packet``: DF, Identification 0, no options."""
    opts = emit_options(seg.options) if seg.options else b""
    payload = seg.payload
    tcp_len = TCP_HEADER_LEN + len(opts) + len(payload)
    if len(opts) > 40 or tcp_len > 65515 or not (0 <= ttl <= 255 and 0 <= tos <= 255):
        return _build(IPv4Address(src), IPv4Address(dst), src, dst, seg, ttl, False, tos)   # raises WireError
    seq, ack = seg.seq & 0xFFFFFFFF, seg.ack & 0xFFFFFFFF
    off = ((TCP_HEADER_LEN + len(opts)) << 2) | (seg.reserved & 0x0F)    # data offset (words) << 4
    flags = int(seg.flags) & 0xFF
    sport, dport, window, urgent = seg.sport, seg.dport, seg.window, seg.urgent
    tcp_csum = checksum(payload, addr_sum + PROTO_TCP + tcp_len + sport + dport + seq + ack + (off << 8 | flags)
                        + window + urgent + int.from_bytes(opts, "big"))
    total = 20 + tcp_len
    ip_sum = (0x4500 | tos) + total + 0x4000 + (ttl << 8 | PROTO_TCP) + addr_sum
    ip_csum = 0xFFFF - (ip_sum % 0xFFFF or 0xFFFF)       # checksum() of the header's bytes
    return _IP4_TCP_HDRS.pack(0x45, tos, total, 0, 0x4000, ttl, PROTO_TCP, ip_csum, src, dst, sport, dport,
                              seq, ack, off, flags, window, tcp_csum, urgent) + opts + payload


__all__ = ["ChecksumValid", "IPPacket", "IPAddress", "parse_packet", "emit_packet", "tcp_in", "build_tcp_packet",
           "ipv4_tcp_packet"]
