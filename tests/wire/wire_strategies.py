"""Hypothesis strategies for synack.wire values, shared by the tests/wire files.

Every strategy here produces *canonical* values: ones whose encoding parses back to the same
value (e.g. TCP option lists that end on a 4-octet boundary or with EOL, IPv6 extension
headers with correct lengths and chaining). That is what ``parse(emit(v)) == v`` needs.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

from hypothesis import strategies as st

from synack.wire import ip6
from synack.wire.icmp import DestUnreachable, Echo, Icmp, PacketTooBig, ParameterProblem, TimeExceeded
from synack.wire.ip4 import IPv4Packet
from synack.wire.ip6 import IPv6Packet
from synack.wire.tcp import (Eol, Flags, Mss, Nop, Sack, SackPermitted, TcpSegment, Timestamps,
                             UnknownOption, WindowScale)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

ipv4_addrs = st.builds(IPv4Address, u32)
ipv6_addrs = st.builds(IPv6Address, st.integers(0, 2**128 - 1))

# --- TCP -----------------------------------------------------------------------------------------

_KNOWN_TCP_KINDS = {0, 1, 2, 3, 4, 5, 8}

tcp_option = st.one_of(
    st.just(Nop()),
    st.builds(Mss, u16),
    st.builds(WindowScale, u8),
    st.just(SackPermitted()),
    st.builds(Sack, st.lists(st.tuples(u32, u32), min_size=1, max_size=4).map(tuple)),
    st.builds(Timestamps, u32, u32),
    st.builds(UnknownOption, u8.filter(lambda k: k not in _KNOWN_TCP_KINDS), st.binary(max_size=12)),
)


@st.composite
def tcp_options(draw) -> tuple:
    """At most 40 octets of options; if they do not end on a 4-octet boundary they end with
    EOL (what follows EOL is padding, RFC 9293 §3.1), so they parse back unchanged."""
    opts: list = []
    size = 0
    for o in draw(st.lists(tcp_option, max_size=8)):
        n = _opt_len(o)
        if size + n > 40:
            break
        opts.append(o)
        size += n
    if size % 4 or (size < 40 and draw(st.integers(0, 3)) == 0):
        opts.append(Eol())          # size <= 39 here, so it fits
    return tuple(opts)


def _opt_len(o) -> int:
    """Encoded size of one option, before padding."""
    if isinstance(o, (Nop, Eol)):
        return 1
    sizes = {Mss: 4, WindowScale: 3, SackPermitted: 2, Timestamps: 10}
    if type(o) in sizes:
        return sizes[type(o)]
    if isinstance(o, Sack):
        return 2 + 8 * len(o.blocks)
    return 2 + len(o.data)


tcp_segments = st.builds(
    TcpSegment,
    sport=u16, dport=u16, seq=u32, ack=u32,
    flags=st.builds(Flags, u8),
    window=u16, urgent=u16,
    options=tcp_options(),
    payload=st.binary(max_size=64),
    reserved=st.integers(0, 15),
)

# --- IPv4 ----------------------------------------------------------------------------------------


@st.composite
def ipv4_options(draw) -> bytes:
    """A valid IPv4 option area: TLVs and NOPs, padded with EOL/zeros to 4 octets, <= 40."""
    raw = b""
    for kind, data in draw(st.lists(st.tuples(st.integers(2, 255), st.binary(max_size=8)), max_size=4)):
        item = bytes((kind, 2 + len(data))) + data
        if len(raw) + len(item) > 40:
            break
        raw += item
    if draw(st.booleans()) and len(raw) < 40:
        raw += b"\x01"
    return raw + b"\x00" * (-len(raw) % 4)


ipv4_packets = st.builds(
    IPv4Packet,
    src=ipv4_addrs, dst=ipv4_addrs, proto=u8, payload=st.binary(max_size=64),
    ttl=u8, tos=u8, ident=u16, df=st.booleans(), mf=st.booleans(),
    frag_offset=st.integers(0, 0x1FFF).map(lambda n: n * 8),
    options=ipv4_options(),
)

# --- IPv6 ----------------------------------------------------------------------------------------


@st.composite
def ipv6_option_header(draw, kind: int) -> bytes:
    """A Hop-by-Hop or Destination Options header with Pad1, PadN and skippable (action 00)
    options, padded to a multiple of 8 octets. The Next Header octet is 0 (emit fixes it)."""
    body = b""
    for otype, data in draw(st.lists(st.tuples(st.integers(2, 0x3F), st.binary(max_size=10)), max_size=3)):
        body += bytes((otype, len(data))) + data
    if draw(st.booleans()):
        body += b"\x00"                                 # a Pad1
    pad = -(2 + len(body)) % 8
    if pad == 1:
        body += b"\x00"
    elif pad:
        body += bytes((1, pad - 2)) + bytes(pad - 2)    # PadN
    total = 2 + len(body)
    return bytes((0, total // 8 - 1)) + body


@st.composite
def routing_header(draw) -> bytes:
    """A Routing header with Segments Left 0 (which a host must skip, RFC 8200 §4.4)."""
    units = draw(st.integers(0, 3))
    data = draw(st.binary(min_size=4 + 8 * units, max_size=4 + 8 * units))
    return bytes((0, units, draw(u8), 0)) + data


def fragment_header(offset_units: int, more: bool, ident: int) -> bytes:
    return struct.pack("!BBHI", 0, 0, (offset_units << 3) | int(more), ident)


@st.composite
def ipv6_packets(draw) -> IPv6Packet:
    exts: list[tuple[int, bytes]] = []
    if draw(st.booleans()):
        exts.append((ip6.HOP_BY_HOP, draw(ipv6_option_header(ip6.HOP_BY_HOP))))
    for kind in draw(st.lists(st.sampled_from([ip6.DEST_OPTIONS, ip6.ROUTING, ip6.FRAGMENT]), max_size=3)):
        if kind == ip6.DEST_OPTIONS:
            exts.append((kind, draw(ipv6_option_header(kind))))
        elif kind == ip6.ROUTING:
            exts.append((kind, draw(routing_header())))
        else:   # an atomic fragment: offset 0, M = 0 (a whole packet, walked through)
            exts.append((kind, fragment_header(0, False, draw(u32))))
    payload = draw(st.binary(max_size=64))
    next_header = draw(u8.filter(lambda n: n not in ip6.EXT_HEADERS))
    if draw(st.integers(0, 3)) == 0:    # a real fragment: the walk stops at its header
        offset, more = draw(st.integers(0, 0x1FFF)), draw(st.booleans())
        if offset == 0:
            more = True
        if more:
            payload = payload[: len(payload) // 8 * 8]
        exts.append((ip6.FRAGMENT, fragment_header(offset, more, draw(u32))))
        next_header = draw(u8)
    # Chain the Next Header octets the way emit_ipv6 will, so the value round-trips.
    chained = []
    for i, (kind, raw) in enumerate(exts):
        nxt = exts[i + 1][0] if i + 1 < len(exts) else next_header
        chained.append((kind, bytes((nxt,)) + raw[1:]))
    return IPv6Packet(draw(ipv6_addrs), draw(ipv6_addrs), next_header, payload,
                      hop_limit=draw(u8), traffic_class=draw(u8), flow_label=draw(st.integers(0, 0xFFFFF)),
                      ext_headers=tuple(chained))


# --- ICMP ----------------------------------------------------------------------------------------

icmp_generic = st.builds(Icmp, u8, u8, st.binary(min_size=4, max_size=4), st.binary(max_size=64))
_original = st.binary(max_size=64)
echoes = st.builds(Echo, u16, u16, st.binary(max_size=64), st.booleans())
icmp4_typed = st.one_of(
    echoes,
    st.builds(DestUnreachable, u8.filter(lambda c: c != 4), _original),
    st.builds(DestUnreachable, st.just(4), _original, u16),
    st.builds(TimeExceeded, u8, _original),
    st.builds(ParameterProblem, u8, u8, _original),
)
icmp6_typed = st.one_of(
    echoes,
    st.builds(DestUnreachable, u8, _original),
    st.builds(PacketTooBig, u32, _original),
    st.builds(TimeExceeded, u8, _original),
    st.builds(ParameterProblem, u8, u32, _original),
)


def ref_csum(data: bytes) -> int:
    """RFC 1071 the slow way: 16-bit words summed one by one, carries folded."""
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
