"""Packets between the script's peer and the stack: building the injected ones, matching the
expected ones (packetdrill.md §4-§6), and printing both in packetdrill syntax.

Sequence spaces (§5). The peer's numbers are the script's, literally: its ISN is whatever its
first SYN says, and outbound ACKs and SACK blocks are compared as written. The stack's numbers
are relative to its ISN, learned from the first SYN or SYN-ACK it sends on a 4-tuple (0 before
that, so a RST answering a segment to a closed port carries absolute numbers). ``Flow`` keeps
that mapping, plus TS val mapping and the bytes the application wrote, per 4-tuple.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from synack.pdrill import ast as A
from synack.wire import icmp as icmpw
from synack.wire.errors import WireError
from synack.wire.ip4 import IPv4Packet, emit_ipv4
from synack.wire.ip6 import IPv6Packet, emit_ipv6
from synack.wire.packet import parse_packet
from synack.wire.tcp import (Eol, Flags, Mss, Nop, Sack, SackPermitted, TcpSegment, Timestamps,
                             UnknownOption, WindowScale, emit_options, emit_tcp, parse_tcp)

MASK = 0xFFFFFFFF
IPAddress = IPv4Address | IPv6Address

FLAG_LETTERS = {"S": Flags.SYN, "F": Flags.FIN, "R": Flags.RST, "P": Flags.PSH, ".": Flags.ACK,
                "U": Flags.URG, "E": Flags.ECE, "W": Flags.CWR}
_ECN_BITS = {"noecn": 0, "ect1": 1, "ect0": 2, "ect01": 3, "ce": 3}


def flags_of(letters: str) -> Flags:
    f = Flags(0)
    for c in letters:
        f |= FLAG_LETTERS[c]
    return f


def flag_letters(f: Flags) -> str:
    """packetdrill's spelling: S F R P U E W, then '.' for ACK."""
    out = "".join(c for c, bit in FLAG_LETTERS.items() if c != "." and f & bit)
    return out + ("." if f & Flags.ACK else "")


@dataclass
class Flow:
    """The script's view of one 4-tuple (local = the stack under test)."""
    local: IPAddress
    lport: int
    remote: IPAddress
    rport: int
    isn: int | None = None                 # the stack's ISN, once it sent a SYN
    ts_map: dict[int, int] = field(default_factory=dict)   # script TS val -> real TS val
    ts_delta: int | None = None            # real - script, of the latest mapping
    last_ts_val: int | None = None         # the latest TS val the stack sent
    written: bytearray = field(default_factory=bytearray)  # what the application wrote
    last_out: bytes | None = None          # the latest IP packet the stack sent (ICMP quotes)

    @property
    def offset(self) -> int:
        return self.isn or 0

    def key(self) -> tuple[int, int]:
        return self.lport, self.rport

    def out_seq(self, seq: int) -> int:
        """A sequence number the stack sent, relative to its ISN."""
        return (seq - self.offset) & MASK

    def in_ack(self, rel: int) -> int:
        """The script's number in the stack's space, made absolute."""
        return (rel + self.offset) & MASK

    def map_ecr(self, ecr: int) -> int:
        """An injected TS ecr: the real TS val the stack sent for the script's value."""
        if ecr == 0:
            return 0
        if ecr in self.ts_map:
            return self.ts_map[ecr]
        if self.ts_delta is not None:
            return (ecr + self.ts_delta) & MASK
        if self.last_ts_val is not None:
            return self.last_ts_val
        return ecr

    def learn_ts(self, script_val: int, real_val: int) -> None:
        self.ts_map[script_val] = real_val
        self.ts_delta = (real_val - script_val) & MASK


# --- building injected packets ----------------------------------------------------------------


def build_options(opts: tuple[A.PktOption, ...], flow: Flow) -> tuple:
    out: list = []
    for o in opts:
        if isinstance(o, A.Nop):
            out.append(Nop())
        elif isinstance(o, A.Eol):
            out.append(Eol())
        elif isinstance(o, A.Mss):
            out.append(Mss(o.value))
        elif isinstance(o, A.WScale):
            out.append(WindowScale(o.shift))
        elif isinstance(o, A.SackOK):
            out.append(SackPermitted())
        elif isinstance(o, A.Sack):
            out.append(Sack(tuple((flow.in_ack(a), flow.in_ack(b)) for a, b in o.blocks)))
        elif isinstance(o, A.Timestamp):
            out.append(Timestamps(o.val, flow.map_ecr(o.ecr)))
        else:
            raise TypeError(o)
    return tuple(out)


def build_segment(p: A.Packet, flow: Flow) -> TcpSegment:
    """The TCP segment for an injected packet line (checked by the caller: win given, seq known).
    Options are encoded literally, in the written order, unaligned if so written; only the end
    is zero-padded (EOL) to a multiple of 4 octets, as the header length requires."""
    flags = flags_of(p.flags)
    seq = p.seq_start & MASK                                   # the peer's space: literal
    ack = 0
    if p.ack is not None:
        ack = p.ack & MASK if p.seq_absolute else flow.in_ack(p.ack)
    opts = () if p.options in (None, A.ANY) else build_options(p.options, flow)   # type: ignore[arg-type]
    return TcpSegment(flow.rport, flow.lport, seq, ack, flags, p.win or 0, p.urg or 0, opts,
                      bytes(p.seq_len))


def ip_wrap(src: IPAddress, dst: IPAddress, proto: int, payload: bytes, ipinfo: A.IpInfo | None,
            ttl: int = 64) -> bytes:
    tos = 0
    if ipinfo is not None:
        if ipinfo.tos is not None:
            tos = ipinfo.tos
        if ipinfo.ttl is not None:
            ttl = ipinfo.ttl
        if ipinfo.ecn is not None:
            tos = (tos & ~3) | _ECN_BITS[ipinfo.ecn]
    if isinstance(src, IPv4Address):
        return emit_ipv4(IPv4Packet(src, dst, proto, payload, ttl=ttl, tos=tos))   # type: ignore[arg-type]
    flow_label = ipinfo.flowlabel if ipinfo is not None and ipinfo.flowlabel is not None else 0
    return emit_ipv6(IPv6Packet(src, dst, proto, payload, hop_limit=ttl,            # type: ignore[arg-type]
                                traffic_class=tos, flow_label=flow_label))


def build_tcp_ip(seg: TcpSegment, flow: Flow, ipinfo: A.IpInfo | None) -> bytes:
    raw = emit_tcp(seg, flow.remote.packed, flow.local.packed)
    return ip_wrap(flow.remote, flow.local, 6, raw, ipinfo)


# ICMP names (packetdrill's spellings) -> (IPv4 type, code), and the IPv6 equivalents
_UNREACH4 = {
    "net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2, "port_unreachable": 3,
    "frag_needed": 4, "source_route_failed": 5, "net_unknown": 6, "host_unknown": 7,
    "source_host_isolated": 8, "host_isolated": 8, "net_prohibited": 9, "host_prohibited": 10,
    "net_unreachable_for_tos": 11, "host_unreachable_for_tos": 12, "packet_filtered": 13,
    "admin_prohibited": 13, "precedence_violation": 14, "precedence_cutoff": 15,
}
_UNREACH6 = {
    "no_route": 0, "net_unreachable": 0, "host_unreachable": 3, "admin_prohibited": 1,
    "net_prohibited": 1, "host_prohibited": 1, "packet_filtered": 1, "beyond_scope": 2,
    "address_unreachable": 3, "port_unreachable": 4, "protocol_unreachable": 4,
    "source_address_failed": 5, "reject_route": 6,
}
# errno an ICMP error leaves as a soft error (Linux icmp_err_convert)
UNREACH_ERRNO4 = {0: "ENETUNREACH", 1: "EHOSTUNREACH", 2: "ENOPROTOOPT", 3: "ECONNREFUSED",
                  4: "EMSGSIZE", 5: "EOPNOTSUPP", 6: "ENETUNREACH", 7: "EHOSTDOWN", 8: "ENONET",
                  9: "ENETUNREACH", 10: "EHOSTUNREACH", 11: "ENETUNREACH", 12: "EHOSTUNREACH",
                  13: "EHOSTUNREACH", 14: "EHOSTUNREACH", 15: "EHOSTUNREACH"}
UNREACH_ERRNO6 = {0: "ENETUNREACH", 1: "EACCES", 2: "EHOSTUNREACH", 3: "EHOSTUNREACH",
                  4: "ECONNREFUSED", 5: "EACCES", 6: "ECONNREFUSED"}


def build_icmp(p: A.IcmpPacket, flow: Flow, quoted_ip: bytes) -> tuple[bytes, str | None]:
    """The ICMP error packet, quoting ``quoted_ip`` (a packet the stack sent, or one built to
    the script's ``[start:end(len)]``); also the errno name it would leave as a soft error."""
    v6 = isinstance(flow.local, IPv6Address)
    kind, code = p.kind.lower(), (p.code or "").lower()
    errno_name: str | None = None
    msg: icmpw.IcmpMessage
    if kind in ("unreachable", "dest_unreachable", "destination_unreachable"):
        if v6 and code in ("frag_needed", "packet_too_big"):
            msg = icmpw.PacketTooBig(p.mtu or 1280, quoted_ip)
            errno_name = "EMSGSIZE"
        elif v6:
            c = _code(p, _UNREACH6)
            msg = icmpw.DestUnreachable(c, quoted_ip)
            errno_name = UNREACH_ERRNO6.get(c)
        else:
            c = _code(p, _UNREACH4)
            msg = icmpw.DestUnreachable(c, quoted_ip, (p.mtu or 0) if c == 4 else 0)
            errno_name = UNREACH_ERRNO4.get(c)
    elif kind in ("packet_too_big", "too_big") and v6:
        msg = icmpw.PacketTooBig(p.mtu or 1280, quoted_ip)
        errno_name = "EMSGSIZE"
    elif kind == "time_exceeded":
        c = {"": 0, "ttl_exceeded": 0, "hop_limit_exceeded": 0, "ttl": 0,
             "reassembly_time_exceeded": 1, "frag_reassembly_time_exceeded": 1,
             "reassembly": 1}.get(code)
        if c is None:
            raise ValueError(f"unknown time_exceeded code '{p.code}'")
        msg = icmpw.TimeExceeded(c, quoted_ip)
        errno_name = "EHOSTUNREACH"
    elif kind == "parameter_problem":
        msg = icmpw.ParameterProblem(0, 0, quoted_ip)
        errno_name = "EPROTO"
    elif kind in ("source_quench", "redirect") and not v6:
        t = 4 if kind == "source_quench" else 5
        c = 0 if kind == "source_quench" else {"": 0, "net": 0, "redirect_net": 0, "host": 1,
                                               "redirect_host": 1, "tos_net": 2, "tos_host": 3}.get(code, 0)
        rest = bytes(4) if t == 4 else flow.remote.packed
        msg = icmpw.Icmp(t, c, rest, quoted_ip)
    else:
        raise ValueError(f"ICMP{'v6' if v6 else ''} message '{p.kind}' is not supported")
    src, dst = flow.remote, flow.local
    if v6:
        body = icmpw.emit_icmp6(msg, src, dst)                     # type: ignore[arg-type]
        return ip_wrap(src, dst, 58, body, p.ipinfo), errno_name
    return ip_wrap(src, dst, 1, icmpw.emit_icmp4(msg), p.ipinfo), errno_name


def _code(p: A.IcmpPacket, table: dict[str, int]) -> int:
    name = (p.code or "").lower()
    if name in table:
        return table[name]
    if name.isdigit():
        return int(name)
    raise ValueError(f"unknown ICMP unreachable code '{p.code}' ({', '.join(sorted(table))})")


def quote_segment(flow: Flow, start: int, length: int) -> bytes:
    """An IP packet of the stack's as an ICMP error would quote it: IP header + TCP header."""
    seg = TcpSegment(flow.lport, flow.rport, flow.in_ack(start), 0, Flags.ACK, 0)
    tcp = emit_tcp(seg, flow.local.packed, flow.remote.packed)
    pkt = ip_wrap(flow.local, flow.remote, 6, tcp + bytes(length), None)
    hlen = 20 if isinstance(flow.local, IPv4Address) else 40
    return pkt[:hlen + 20]


# --- outbound packets ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outbound:
    """A packet the stack sent, parsed once; ``seg`` is None for anything but valid TCP."""
    t: float
    raw: bytes
    src: IPAddress | None = None
    dst: IPAddress | None = None
    seg: TcpSegment | None = None
    tos: int = 0
    ttl: int = 64
    problem: str | None = None          # why it is not a valid TCP/IP packet

    @classmethod
    def parse(cls, raw: bytes, t: float) -> "Outbound":
        try:
            pkt = parse_packet(raw)
        except WireError as e:
            return cls(t, raw, problem=f"malformed IP packet: {e.reason}")
        if isinstance(pkt, IPv4Packet):
            proto, tos, ttl = pkt.proto, pkt.tos, pkt.ttl
        else:
            proto, tos, ttl = pkt.next_header, pkt.traffic_class, pkt.hop_limit
        if proto != 6:
            return cls(t, raw, pkt.src, pkt.dst, None, tos, ttl, problem=f"IP protocol {proto} (not TCP)")
        try:
            seg = parse_tcp(pkt.payload, pkt.src.packed, pkt.dst.packed)
        except WireError as e:
            return cls(t, raw, pkt.src, pkt.dst, None, tos, ttl, problem=f"bad TCP segment: {e.reason}")
        return cls(t, raw, pkt.src, pkt.dst, seg, tos, ttl)


def format_options(opts, flow: Flow | None, outbound: bool) -> str:
    parts = []
    for o in opts:
        if isinstance(o, Eol):
            parts.append("eol")
        elif isinstance(o, Nop):
            parts.append("nop")
        elif isinstance(o, Mss):
            parts.append(f"mss {o.value}")
        elif isinstance(o, WindowScale):
            parts.append(f"wscale {o.shift}")
        elif isinstance(o, SackPermitted):
            parts.append("sackOK")
        elif isinstance(o, Sack):
            if flow is not None and not outbound:
                blocks = " ".join(f"{flow.out_seq(a)}:{flow.out_seq(b)}" for a, b in o.blocks)
            else:
                blocks = " ".join(f"{a}:{b}" for a, b in o.blocks)
            parts.append(f"sack {blocks}")
        elif isinstance(o, Timestamps):
            parts.append(f"TS val {o.val} ecr {o.ecr}")
        elif isinstance(o, UnknownOption):
            parts.append(f"opt-{o.kind} {o.data.hex()}")
        else:
            parts.append(repr(o))
    return "<" + ",".join(parts) + ">"


def format_outbound(out: Outbound, flow: Flow | None) -> str:
    """The packet as a script line would write it (seq relative to the stack's ISN)."""
    if out.seg is None:
        return f"> [{out.problem}] {len(out.raw)} bytes"
    s = out.seg
    seq = flow.out_seq(s.seq) if flow is not None else s.seq
    n = len(s.payload)
    ecn = ("", "[ect1] ", "[ect0] ", "[ce] ")[out.tos & 3]     # as a script writes ipinfo
    text = f"> {ecn}{flag_letters(s.flags)} {seq}:{(seq + n) & MASK}({n})"
    if s.flags & Flags.ACK or s.ack:
        text += f" ack {s.ack}"
    text += f" win {s.window}"
    if s.flags & Flags.URG or s.urgent:
        text += f" urg {s.urgent}"
    if s.options:
        text += " " + format_options(s.options, flow, outbound=True)
    return text


def format_script_packet(p: A.Packet) -> str:
    """An AST packet line, normalised (what the script expects)."""
    text = f"{p.direction} "
    if p.ipinfo is not None and p.ipinfo.ecn is not None:
        text += f"[{p.ipinfo.ecn}] "
    text += f"{p.flags} "
    text += f"...({p.seq_len})" if p.seq_any else f"{p.seq_start}:{p.seq_end}({p.seq_len})"
    if p.seq_absolute:
        text += "!"
    if p.ack is not None:
        text += f" ack {p.ack}"
    if p.win is not None:
        text += f" win {p.win}"
    if p.urg is not None:
        text += f" urg {p.urg}"
    if p.options is A.ANY:
        text += " <...>"
    elif p.options is not None:
        text += " <" + ",".join(_ast_option(o) for o in p.options) + ">"   # type: ignore[union-attr]
    return text


def _ast_option(o: A.PktOption) -> str:
    if isinstance(o, A.Nop):
        return "nop"
    if isinstance(o, A.Eol):
        return "eol"
    if isinstance(o, A.Mss):
        return f"mss {o.value}"
    if isinstance(o, A.WScale):
        return f"wscale {o.shift}"
    if isinstance(o, A.SackOK):
        return "sackOK"
    if isinstance(o, A.Sack):
        return "sack " + " ".join(f"{a}:{b}" for a, b in o.blocks)
    if isinstance(o, A.Timestamp):
        return f"TS val {o.val} ecr {o.ecr}"
    return repr(o)


def compare(p: A.Packet, out: Outbound, flow: Flow, relaxed: bool) -> list[str]:
    """What differs between the expected packet ``p`` and what the stack sent (empty: a match).
    On a match, TS vals are learned into ``flow``."""
    if out.seg is None:
        return [out.problem or "not TCP"]
    s = out.seg
    diffs: list[str] = []
    if out.src != flow.local or out.dst != flow.remote:
        diffs.append(f"addresses {out.src} > {out.dst}, expected {flow.local} > {flow.remote}")
    if (s.sport, s.dport) != (flow.lport, flow.rport):
        diffs.append(f"ports {s.sport} > {s.dport}, expected {flow.lport} > {flow.rport}")
    want_flags = flags_of(p.flags)
    if s.flags != want_flags:
        diffs.append(f"flags {flag_letters(s.flags) or 'none'}, expected {p.flags}")
    if not p.seq_any:
        got = s.seq if p.seq_absolute else flow.out_seq(s.seq)
        if got != p.seq_start:
            diffs.append(f"seq {got}, expected {p.seq_start}")
    if len(s.payload) != p.seq_len:
        diffs.append(f"payload length {len(s.payload)}, expected {p.seq_len}")
    elif s.payload:
        start = flow.out_seq(s.seq) - 1
        expected = bytes(flow.written[start:start + len(s.payload)]) if 0 <= start else b""
        expected = expected.ljust(len(s.payload), b"\0")
        if s.payload != expected:
            diffs.append("payload bytes differ from what the application wrote")
    if want_flags & Flags.ACK:
        if p.ack is not None and s.ack != (p.ack & MASK):
            diffs.append(f"ack {s.ack}, expected {p.ack}")
    else:
        want = p.ack if p.ack is not None else 0
        if s.ack != want:
            diffs.append(f"ack field {s.ack} without the ACK flag, expected {want}")
    if p.win is not None and s.window != p.win:
        diffs.append(f"win {s.window}, expected {p.win}")
    if p.urg is not None and s.urgent != p.urg:
        diffs.append(f"urg {s.urgent}, expected {p.urg}")
    if p.options is not A.ANY:
        want_opts = p.options or ()
        d = _compare_options(want_opts, s.options, flow, relaxed)   # type: ignore[arg-type]
        if d:
            diffs.append(d)
    if p.ipinfo is not None:
        ip = p.ipinfo
        if ip.tos is not None and out.tos != ip.tos:
            diffs.append(f"tos 0x{out.tos:02x}, expected 0x{ip.tos:02x}")
        if ip.ttl is not None and out.ttl != ip.ttl:
            diffs.append(f"ttl {out.ttl}, expected {ip.ttl}")
        if ip.ecn is not None and (out.tos & 3) != _ECN_BITS[ip.ecn]:
            names = {0: "noecn", 1: "ect1", 2: "ect0", 3: "ce"}
            diffs.append(f"ECN {names[out.tos & 3]}, expected {ip.ecn}")
    if not diffs:
        _learn(p, s, flow)
    return diffs


def _learn(p: A.Packet, s: TcpSegment, flow: Flow) -> None:
    if p.options in (None, A.ANY):
        return
    want = [o for o in p.options if isinstance(o, A.Timestamp)]     # type: ignore[union-attr]
    got = s.timestamps
    if want and got is not None:
        flow.learn_ts(want[0].val, got.val)


def _compare_options(want: tuple[A.PktOption, ...], got: tuple, flow: Flow, relaxed: bool) -> str | None:
    if relaxed:
        return _compare_relaxed(want, got)
    # Exact: the option bytes, with TS val taken from the packet (it is not checked, only mapped).
    got_ts = next((o for o in got if isinstance(o, Timestamps)), None)
    expected = []
    for o in want:
        if isinstance(o, A.Timestamp):
            expected.append(Timestamps(got_ts.val if got_ts is not None else o.val, o.ecr))
        elif isinstance(o, A.Sack):
            expected.append(Sack(tuple((a & MASK, b & MASK) for a, b in o.blocks)))
        else:
            expected.extend(build_options((o,), flow))
    if emit_options(tuple(expected)) == emit_options(got):
        return None
    return (f"options {format_options(got, flow, True) if got else '(none)'}, "
            f"expected {'<' + ','.join(_ast_option(o) for o in want) + '>' if want else '(none)'}")


def _compare_relaxed(want: tuple[A.PktOption, ...], got: tuple) -> str | None:
    """Padding and order ignored; MSS and wscale values, SACK blocks (in order), sackOK and TS
    presence must match."""
    def canon_want() -> list[tuple]:
        out = []
        for o in want:
            if isinstance(o, A.Mss):
                out.append(("mss", o.value))
            elif isinstance(o, A.WScale):
                out.append(("wscale", o.shift))
            elif isinstance(o, A.SackOK):
                out.append(("sackOK",))
            elif isinstance(o, A.Sack):
                out.append(("sack", tuple((a & MASK, b & MASK) for a, b in o.blocks)))
            elif isinstance(o, A.Timestamp):
                out.append(("TS",))
        return sorted(out)

    def canon_got() -> list[tuple]:
        out = []
        for o in got:
            if isinstance(o, Mss):
                out.append(("mss", o.value))
            elif isinstance(o, WindowScale):
                out.append(("wscale", o.shift))
            elif isinstance(o, SackPermitted):
                out.append(("sackOK",))
            elif isinstance(o, Sack):
                out.append(("sack", o.blocks))
            elif isinstance(o, Timestamps):
                out.append(("TS",))
            elif isinstance(o, UnknownOption):
                out.append(("opt", o.kind, o.data))
        return sorted(out)

    w, g = canon_want(), canon_got()
    if w == g:
        return None
    return (f"options {format_options(got, None, True) if got else '(none)'}, expected "
            f"{'<' + ','.join(_ast_option(o) for o in want) + '>' if want else '(none)'} "
            "(relaxed: padding and order ignored)")

