"""Wire formats: bytes <-> immutable values. No state, no I/O.

Every ``parse_*`` raises ``WireError`` and nothing else, whatever bytes it is given.
"""

from synack.wire.checksum import checksum, ones_sum, pseudo_header_v4, pseudo_header_v6
from synack.wire.errors import WireError
from synack.wire.icmp import (
    DestUnreachable,
    Echo,
    Icmp,
    IcmpMessage,
    PacketTooBig,
    ParameterProblem,
    QuotedTcp,
    TimeExceeded,
    decode_icmp4,
    decode_icmp6,
    emit_icmp4,
    emit_icmp6,
    encode_icmp4,
    encode_icmp6,
    parse_icmp4,
    parse_icmp6,
    quoted_tcp,
    quoted_transport,
)
from synack.wire.ip4 import IPv4Packet, emit_ipv4, parse_ipv4, parse_ipv4_options
from synack.wire.ip6 import IPv6Packet, emit_ipv6, parse_ipv6
from synack.wire.packet import IPPacket, build_tcp_packet, emit_packet, parse_packet, tcp_in
from synack.wire.seq import seq_add, seq_ge, seq_gt, seq_in, seq_le, seq_lt, seq_max, seq_min, seq_sub
from synack.wire.tcp import (
    Eol,
    Flags,
    Mss,
    Nop,
    Sack,
    SackPermitted,
    TcpOption,
    TcpSegment,
    Timestamps,
    UnknownOption,
    WindowScale,
    emit_tcp,
    parse_tcp,
)

__all__ = [
    "WireError",
    "checksum", "ones_sum", "pseudo_header_v4", "pseudo_header_v6",
    "seq_add", "seq_sub", "seq_lt", "seq_le", "seq_gt", "seq_ge", "seq_max", "seq_min", "seq_in",
    "Flags", "TcpSegment", "TcpOption", "Eol", "Nop", "Mss", "WindowScale", "SackPermitted", "Sack",
    "Timestamps", "UnknownOption", "parse_tcp", "emit_tcp",
    "IPv4Packet", "parse_ipv4", "emit_ipv4", "parse_ipv4_options",
    "IPv6Packet", "parse_ipv6", "emit_ipv6",
    "Icmp", "IcmpMessage", "Echo", "DestUnreachable", "PacketTooBig", "TimeExceeded", "ParameterProblem",
    "parse_icmp4", "emit_icmp4", "parse_icmp6", "emit_icmp6",
    "decode_icmp4", "encode_icmp4", "decode_icmp6", "encode_icmp6",
    "QuotedTcp", "quoted_tcp", "quoted_transport",
    "IPPacket", "parse_packet", "emit_packet", "tcp_in", "build_tcp_packet",
]
