"""ICMP for IPv4 (RFC 792, RFC 1191 §4) and IPv6 (RFC 4443): bytes <-> values.

Two levels:

* ``Icmp(type, code, rest, body)`` is the generic, lossless value: ``rest`` is the 4 octets
  after the checksum, ``body`` the rest of the message. ``parse_icmp4``/``parse_icmp6`` return
  it, so ``emit(parse(b)) == b`` for every well-formed message, known type or not.
* ``Echo``, ``DestUnreachable``, ``PacketTooBig``, ``TimeExceeded``, ``ParameterProblem`` are
  typed views of the messages TCP cares about. ``decode_icmp4``/``decode_icmp6`` turn an
  ``Icmp`` into one of them (or return it unchanged if the type is not one of these); this
  ignores "unused" fields as receivers must (RFC 792 "Message Formats"; RFC 4443 §3.1, §3.3).
  ``emit_icmp4``/``emit_icmp6`` take either level.

``quoted_tcp`` digs the TCP 4-tuple and sequence number out of the packet quoted in an error
message, needing only the first 8 octets of the TCP header (RFC 792 quotes just 64 bits).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple, Union

from synack.wire import ip4, ip6
from synack.wire.checksum import checksum, pseudo_header_v6
from synack.wire.errors import WireError

PROTO_ICMP4 = 1
PROTO_ICMP6 = 58
HEADER_LEN = 8

# ICMPv4 types (RFC 792, "Summary of Message Types")
ICMP4_ECHO_REPLY = 0
ICMP4_DEST_UNREACHABLE = 3
ICMP4_SOURCE_QUENCH = 4
ICMP4_REDIRECT = 5
ICMP4_ECHO = 8
ICMP4_TIME_EXCEEDED = 11
ICMP4_PARAMETER_PROBLEM = 12
ICMP4_FRAG_NEEDED = 4             # Destination Unreachable code: "fragmentation needed and DF set"
ICMP4_ERRORS = frozenset({ICMP4_DEST_UNREACHABLE, ICMP4_SOURCE_QUENCH, ICMP4_REDIRECT,
                          ICMP4_TIME_EXCEEDED, ICMP4_PARAMETER_PROBLEM})

# ICMPv6 types (RFC 4443 §2.1)
ICMP6_DEST_UNREACHABLE = 1
ICMP6_PACKET_TOO_BIG = 2
ICMP6_TIME_EXCEEDED = 3
ICMP6_PARAMETER_PROBLEM = 4
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129

_ZERO4 = bytes(4)


@dataclass(frozen=True, slots=True)
class Icmp:
    """Any ICMPv4 or ICMPv6 message, field for field (the checksum is derived, not kept)."""
    type: int
    code: int
    rest: bytes = _ZERO4
    body: bytes = b""

    @property
    def is_error6(self) -> bool:
        """ICMPv6 error messages have types 0-127 (RFC 4443 §2.1)."""
        return self.type < 128

    @property
    def is_error4(self) -> bool:
        return self.type in ICMP4_ERRORS


@dataclass(frozen=True, slots=True)
class Echo:
    """Echo / Echo Reply (RFC 792 "Echo or Echo Reply Message"; RFC 4443 §4.1, §4.2)."""
    ident: int
    seq: int
    data: bytes = b""
    reply: bool = False


@dataclass(frozen=True, slots=True)
class DestUnreachable:
    """Destination Unreachable (RFC 792 type 3; RFC 4443 §3.1 type 1).

    ``original`` is the quoted invoking packet. ``next_hop_mtu`` is only meaningful for ICMPv4
    code 4, "fragmentation needed and DF set" (RFC 1191 §4: low-order 16 bits of the unused
    field); it is 0 otherwise."""
    code: int
    original: bytes
    next_hop_mtu: int = 0


@dataclass(frozen=True, slots=True)
class PacketTooBig:
    """ICMPv6 Packet Too Big (RFC 4443 §3.2). ICMPv4 says this with DestUnreachable code 4."""
    mtu: int
    original: bytes


@dataclass(frozen=True, slots=True)
class TimeExceeded:
    """Time Exceeded (RFC 792 type 11; RFC 4443 §3.3 type 3). Code 0: TTL / hop limit;
    code 1: fragment reassembly."""
    code: int
    original: bytes


@dataclass(frozen=True, slots=True)
class ParameterProblem:
    """Parameter Problem (RFC 792 type 12, 8-bit pointer; RFC 4443 §3.4 type 4, 32-bit pointer)."""
    code: int
    pointer: int
    original: bytes


IcmpMessage = Union[Icmp, Echo, DestUnreachable, PacketTooBig, TimeExceeded, ParameterProblem]


# --- generic parse / emit ----------------------------------------------------------------------

def _split(data: bytes | bytearray | memoryview, family: str) -> Icmp:
    n = len(data)
    if n < HEADER_LEN:
        raise WireError(f"{family} message truncated: {n} bytes")
    return Icmp(data[0], data[1], bytes(data[4:8]), bytes(data[8:]))


def _join(msg: Icmp) -> bytes:
    if len(msg.rest) != 4:
        raise WireError(f"ICMP rest-of-header must be 4 octets, got {len(msg.rest)}")
    if not (0 <= msg.type <= 0xFF and 0 <= msg.code <= 0xFF):
        raise WireError(f"ICMP type {msg.type} / code {msg.code} out of range")
    return bytes((msg.type, msg.code, 0, 0)) + msg.rest + msg.body


def _with_checksum(raw: bytes, c: int) -> bytes:
    return raw[:2] + c.to_bytes(2, "big") + raw[4:]


def _addr6(a: IPv6Address | bytes | bytearray) -> bytes:
    b = a.packed if isinstance(a, IPv6Address) else bytes(a)
    if len(b) != 16:
        raise WireError(f"ICMPv6 pseudo-header needs 16-octet addresses, got {len(b)}")
    return b


def parse_icmp4(data: bytes | bytearray | memoryview, verify: bool = True) -> Icmp:
    """Parse an ICMPv4 message (the IPv4 payload). With ``verify`` the checksum, over the whole
    message starting with the Type octet (RFC 792), must be correct."""
    msg = _split(data, "ICMPv4")
    if verify and checksum(data) != 0:
        raise WireError("bad ICMPv4 checksum")
    return msg


def emit_icmp4(msg: IcmpMessage) -> bytes:
    """Encode an ICMPv4 message (generic or typed), computing its checksum."""
    raw = _join(msg if isinstance(msg, Icmp) else encode_icmp4(msg))
    return _with_checksum(raw, checksum(raw))


def parse_icmp6(data: bytes | bytearray | memoryview, src: IPv6Address | bytes, dst: IPv6Address | bytes,
                verify: bool = True) -> Icmp:
    """Parse an ICMPv6 message (the upper-layer payload). With ``verify`` the checksum, which
    covers the IPv6 pseudo-header with Next Header 58 (RFC 4443 §2.3), must be correct."""
    msg = _split(data, "ICMPv6")
    if verify:
        pseudo = pseudo_header_v6(_addr6(src), _addr6(dst), PROTO_ICMP6, len(data))
        if checksum(data, pseudo) != 0:
            raise WireError("bad ICMPv6 checksum")
    return msg


def emit_icmp6(msg: IcmpMessage, src: IPv6Address | bytes, dst: IPv6Address | bytes) -> bytes:
    """Encode an ICMPv6 message (generic or typed), computing the pseudo-header checksum."""
    raw = _join(msg if isinstance(msg, Icmp) else encode_icmp6(msg))
    return _with_checksum(raw, checksum(raw, pseudo_header_v6(_addr6(src), _addr6(dst), PROTO_ICMP6, len(raw))))


# --- typed views -------------------------------------------------------------------------------

def _echo_rest(m: Echo) -> bytes:
    if not (0 <= m.ident <= 0xFFFF and 0 <= m.seq <= 0xFFFF):
        raise WireError(f"echo identifier {m.ident} / sequence {m.seq} out of range")
    return struct.pack("!HH", m.ident, m.seq)


def _u16(v: int, what: str) -> bytes:
    if not 0 <= v <= 0xFFFF:
        raise WireError(f"{what} {v} out of range")
    return v.to_bytes(2, "big")


def decode_icmp4(msg: Icmp) -> IcmpMessage:
    """The typed view of an ICMPv4 message, or ``msg`` itself for other types."""
    t, r = msg.type, msg.rest
    if len(r) != 4:
        raise WireError(f"ICMP rest-of-header must be 4 octets, got {len(r)}")
    if t == ICMP4_ECHO or t == ICMP4_ECHO_REPLY:
        ident, seq = struct.unpack("!HH", r)
        return Echo(ident, seq, msg.body, t == ICMP4_ECHO_REPLY)
    if t == ICMP4_DEST_UNREACHABLE:
        # RFC 1191 §4: the Next-Hop MTU is in the low-order 16 bits for code 4 only.
        mtu = int.from_bytes(r[2:4], "big") if msg.code == ICMP4_FRAG_NEEDED else 0
        return DestUnreachable(msg.code, msg.body, mtu)
    if t == ICMP4_TIME_EXCEEDED:
        return TimeExceeded(msg.code, msg.body)
    if t == ICMP4_PARAMETER_PROBLEM:
        return ParameterProblem(msg.code, r[0], msg.body)
    return msg


def encode_icmp4(m: IcmpMessage) -> Icmp:
    """The generic ICMPv4 ``Icmp`` for a typed message. Unused fields are zero (RFC 792)."""
    if isinstance(m, Icmp):
        return m
    if isinstance(m, Echo):
        return Icmp(ICMP4_ECHO_REPLY if m.reply else ICMP4_ECHO, 0, _echo_rest(m), m.data)
    if isinstance(m, DestUnreachable):
        if m.next_hop_mtu and m.code != ICMP4_FRAG_NEEDED:
            raise WireError("ICMPv4 next-hop MTU belongs only in code 4 (RFC 1191 §4)")
        return Icmp(ICMP4_DEST_UNREACHABLE, m.code, b"\x00\x00" + _u16(m.next_hop_mtu, "next-hop MTU"),
                    m.original)
    if isinstance(m, TimeExceeded):
        return Icmp(ICMP4_TIME_EXCEEDED, m.code, _ZERO4, m.original)
    if isinstance(m, ParameterProblem):
        if not 0 <= m.pointer <= 0xFF:
            raise WireError(f"ICMPv4 parameter-problem pointer {m.pointer} out of range")
        return Icmp(ICMP4_PARAMETER_PROBLEM, m.code, bytes((m.pointer, 0, 0, 0)), m.original)
    if isinstance(m, PacketTooBig):
        raise WireError("ICMPv4 has no Packet Too Big: use DestUnreachable(4, original, next_hop_mtu)")
    raise WireError(f"not an ICMP message: {m!r}")


def decode_icmp6(msg: Icmp) -> IcmpMessage:
    """The typed view of an ICMPv6 message, or ``msg`` itself for other types."""
    t, r = msg.type, msg.rest
    if len(r) != 4:
        raise WireError(f"ICMP rest-of-header must be 4 octets, got {len(r)}")
    if t == ICMP6_ECHO_REQUEST or t == ICMP6_ECHO_REPLY:
        ident, seq = struct.unpack("!HH", r)
        return Echo(ident, seq, msg.body, t == ICMP6_ECHO_REPLY)
    if t == ICMP6_DEST_UNREACHABLE:
        return DestUnreachable(msg.code, msg.body)
    if t == ICMP6_PACKET_TOO_BIG:
        # RFC 4443 §3.2: Code is "ignored by the receiver".
        return PacketTooBig(int.from_bytes(r, "big"), msg.body)
    if t == ICMP6_TIME_EXCEEDED:
        return TimeExceeded(msg.code, msg.body)
    if t == ICMP6_PARAMETER_PROBLEM:
        return ParameterProblem(msg.code, int.from_bytes(r, "big"), msg.body)
    return msg


def encode_icmp6(m: IcmpMessage) -> Icmp:
    """The generic ICMPv6 ``Icmp`` for a typed message. Unused fields are zero (RFC 4443)."""
    if isinstance(m, Icmp):
        return m
    if isinstance(m, Echo):
        return Icmp(ICMP6_ECHO_REPLY if m.reply else ICMP6_ECHO_REQUEST, 0, _echo_rest(m), m.data)
    if isinstance(m, DestUnreachable):
        if m.next_hop_mtu:
            raise WireError("ICMPv6 Destination Unreachable has no MTU: use PacketTooBig")
        return Icmp(ICMP6_DEST_UNREACHABLE, m.code, _ZERO4, m.original)
    if isinstance(m, PacketTooBig):
        if not 0 <= m.mtu <= 0xFFFFFFFF:
            raise WireError(f"MTU {m.mtu} out of range")
        return Icmp(ICMP6_PACKET_TOO_BIG, 0, m.mtu.to_bytes(4, "big"), m.original)
    if isinstance(m, TimeExceeded):
        return Icmp(ICMP6_TIME_EXCEEDED, m.code, _ZERO4, m.original)
    if isinstance(m, ParameterProblem):
        if not 0 <= m.pointer <= 0xFFFFFFFF:
            raise WireError(f"ICMPv6 parameter-problem pointer {m.pointer} out of range")
        return Icmp(ICMP6_PARAMETER_PROBLEM, m.code, m.pointer.to_bytes(4, "big"), m.original)
    raise WireError(f"not an ICMP message: {m!r}")


# --- the quoted packet -------------------------------------------------------------------------

class QuotedTcp(NamedTuple):
    """What an ICMP error says about the TCP segment that caused it (RFC 9293 §3.9.2.2)."""
    src: IPv4Address | IPv6Address
    dst: IPv4Address | IPv6Address
    sport: int
    dport: int
    seq: int


def quoted_transport(original: bytes | bytearray | memoryview
                     ) -> tuple[IPv4Address | IPv6Address, IPv4Address | IPv6Address, int, bytes]:
    """``(src, dst, upper-layer protocol, transport bytes)`` of the packet quoted in an ICMP
    error. The quote is usually cut short, so Total Length / Payload Length and the IPv4 header
    checksum (which describe the original packet) are not checked."""
    n = len(original)
    if n < 1:
        raise WireError("quoted packet is empty")
    version = original[0] >> 4
    if version == 4:
        if n < ip4.HEADER_LEN:
            raise WireError(f"quoted IPv4 header truncated: {n} bytes")
        hlen = (original[0] & 0x0F) * 4
        if hlen < ip4.HEADER_LEN:
            raise WireError(f"quoted IPv4 IHL {hlen // 4} < 5")
        if hlen > n:
            raise WireError(f"quoted IPv4 IHL {hlen // 4} runs past the quote ({n} bytes)")
        if (original[6] << 8 | original[7]) & 0x1FFF:
            raise WireError("quoted IPv4 packet is a non-first fragment: no transport header")
        return (IPv4Address(bytes(original[12:16])), IPv4Address(bytes(original[16:20])),
                original[9], bytes(original[hlen:]))
    if version == 6:
        if n < ip6.HEADER_LEN:
            raise WireError(f"quoted IPv6 header truncated: {n} bytes")
        upper, off, _exts, _frag = ip6.walk_ext_headers(original, original[6], ip6.HEADER_LEN, n,
                                                        quoted=True)
        return (IPv6Address(bytes(original[8:24])), IPv6Address(bytes(original[24:40])),
                upper, bytes(original[off:]))
    raise WireError(f"quoted packet has IP version {version}")


def quoted_tcp(original: bytes | bytearray | memoryview) -> QuotedTcp:
    """``(src, dst, sport, dport, seq)`` of the TCP segment quoted in an ICMP error, as the
    sender of that segment wrote them. Needs only the first 8 octets of the TCP header
    ("Internet Header + 64 bits of Original Data Datagram", RFC 792)."""
    src, dst, proto, tcp = quoted_transport(original)
    if proto != 6:
        raise WireError(f"quoted packet carries protocol {proto}, not TCP")
    if len(tcp) < 8:
        raise WireError(f"quoted TCP header has {len(tcp)} octets, need 8")
    sport, dport, seq = struct.unpack_from("!HHI", tcp, 0)
    return QuotedTcp(src, dst, sport, dport, seq)


__all__ = [
    "Icmp", "Echo", "DestUnreachable", "PacketTooBig", "TimeExceeded", "ParameterProblem", "IcmpMessage",
    "parse_icmp4", "emit_icmp4", "parse_icmp6", "emit_icmp6",
    "decode_icmp4", "encode_icmp4", "decode_icmp6", "encode_icmp6",
    "QuotedTcp", "quoted_tcp", "quoted_transport", "PROTO_ICMP4", "PROTO_ICMP6",
]
