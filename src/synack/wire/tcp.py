"""TCP header and options (RFC 9293 §3.1, RFC 7323, RFC 2018): bytes <-> ``TcpSegment``.

``parse_tcp`` turns bytes into an immutable ``TcpSegment`` or raises ``WireError``; ``emit_tcp``
turns a segment back into bytes. Every flag bit is kept as it came: what to do with SYN+FIN or
SYN+RST is policy, and lives in ``synack.tcp``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, replace
from typing import Union

from synack.wire.checksum import checksum, ones_sum
from synack.wire.errors import WireError
from synack.wire.frozen import fast_init, maker

PROTO_TCP = 6
HEADER_LEN = 20
_HDR = struct.Struct("!HHIIBBHHH")


class Flags(enum.IntFlag):
    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80

    def short(self) -> str:
        """tcpdump-style flag letters: S, F, R, P, . (ACK), U, E, W."""
        out = ""
        for bit, ch in ((Flags.SYN, "S"), (Flags.FIN, "F"), (Flags.RST, "R"), (Flags.PSH, "P"),
                        (Flags.URG, "U"), (Flags.ECE, "E"), (Flags.CWR, "W"), (Flags.ACK, ".")):
            if self & bit:
                out += ch
        return out or "none"


# Every flag combination made once: building an IntFlag per parsed segment is slow in CPython.
_FLAGS = tuple(Flags(i) for i in range(256))


def _fast_flag_ops() -> None:
    """``&``, ``|``, ``^`` and ``~`` on Flags as plain int masks looked up in ``_FLAGS``: the
    same values as enum.IntFlag's operators (checked in tests/wire), without building a member
    through ``EnumType.__call__`` on every test of a flag bit, the top cost per segment."""
    table, i_and, i_or, i_xor = _FLAGS, int.__and__, int.__or__, int.__xor__
    slow = {name: getattr(Flags, name) for name in ("__and__", "__or__", "__xor__", "__invert__")}

    def binop(fast, name):
        orig = slow[name]

        def op(self, other):
            if other.__class__ is Flags or other.__class__ is int:
                r = fast(self, other)
                if 0 <= r < 256:
                    return table[r]
            return orig(self, other)
        op.__name__ = name
        return op
    Flags.__and__ = Flags.__rand__ = binop(i_and, "__and__")
    Flags.__or__ = Flags.__ror__ = binop(i_or, "__or__")
    Flags.__xor__ = Flags.__rxor__ = binop(i_xor, "__xor__")
    Flags.__invert__ = lambda self: table[~int(self) & 0xFF]


_fast_flag_ops()

# --- options (RFC 9293 §3.2; RFC 7323 §2, §3; RFC 2018 §2, §3) --------------------------------

@dataclass(frozen=True, slots=True)
class Eol:
    """End of option list (kind 0); what follows it is padding."""
    kind = 0


@dataclass(frozen=True, slots=True)
class Nop:
    kind = 1


@fast_init
@dataclass(frozen=True, slots=True)
class Mss:
    value: int
    kind = 2


@fast_init
@dataclass(frozen=True, slots=True)
class WindowScale:
    shift: int
    kind = 3


@dataclass(frozen=True, slots=True)
class SackPermitted:
    kind = 4


@fast_init
@dataclass(frozen=True, slots=True)
class Sack:
    blocks: tuple[tuple[int, int], ...]   # (left edge, right edge), right edge exclusive
    kind = 5


@fast_init
@dataclass(frozen=True, slots=True)
class Timestamps:
    val: int
    ecr: int
    kind = 8


@dataclass(frozen=True, slots=True)
class UnknownOption:
    """An option synack does not interpret (or a known kind with a length it cannot use):
    kept as its kind and data bytes, skipped by TCP (RFC 9293 §3.1, MUST-6)."""
    kind: int
    data: bytes = b""


TcpOption = Union[Eol, Nop, Mss, WindowScale, SackPermitted, Sack, Timestamps, UnknownOption]
_EOL, _NOP, _SACK_PERMITTED = Eol(), Nop(), SackPermitted()     # values without fields: one of each

_NOP_NOP_TS = b"\x01\x01\x08\x0a"        # NOP, NOP, Timestamps: what most segments carry
_NNTS = struct.Struct("!4sII")
_LINUX_SYN = struct.Struct("!2sH4sII3sB")


def parse_options(raw: bytes | memoryview) -> tuple[TcpOption, ...]:
    """Parse the option bytes of a TCP header. Illegal lengths raise ``WireError`` (MUST-7)."""
    i, n = 0, len(raw)
    if n == 12:                 # (its twin: parse_tcp_summed reads this case in place)
        lead, val, ecr = _NNTS.unpack_from(raw, 0)
        if lead == _NOP_NOP_TS:
            return (_NOP, _NOP, _new_timestamps(val, ecr))
    elif n == 20:
        m, mss, st, val, ecr, nw, shift = _LINUX_SYN.unpack_from(raw, 0)
        if m == b"\x02\x04" and st == b"\x04\x02\x08\x0a" and nw == b"\x01\x03\x03":
            # Linux's SYN: mss, sackOK, TS, nop, wscale
            return (Mss(mss), _SACK_PERMITTED, _new_timestamps(val, ecr), _NOP, WindowScale(shift))
    out: list[TcpOption] = []
    while i < n:
        kind = raw[i]
        if kind == 0:
            out.append(_EOL)
            break                       # the rest is padding
        if kind == 1:
            out.append(_NOP)
            i += 1
            continue
        if i + 1 >= n:
            raise WireError(f"option kind {kind} has no length byte")
        length = raw[i + 1]
        if length < 2:
            raise WireError(f"option kind {kind} has illegal length {length}")
        if i + length > n:
            raise WireError(f"option kind {kind} length {length} runs past the header")
        data = bytes(raw[i + 2:i + length])
        if kind == 2 and length == 4:
            out.append(Mss(int.from_bytes(data, "big")))
        elif kind == 3 and length == 3:
            out.append(WindowScale(data[0]))
        elif kind == 4 and length == 2:
            out.append(_SACK_PERMITTED)
        elif kind == 8 and length == 10:
            val, ecr = struct.unpack("!II", data)
            out.append(Timestamps(val, ecr))
        elif kind == 5 and length > 2 and (length - 2) % 8 == 0:
            blocks = tuple(struct.unpack("!II", data[j:j + 8]) for j in range(0, len(data), 8))
            out.append(Sack(blocks))
        else:
            # Unknown kinds, and known kinds with a length they never have (expected != length),
            # are kept but not interpreted: Linux ignores such options too.
            out.append(UnknownOption(kind, data))
        i += length
    return tuple(out)


def emit_options(options: tuple[TcpOption, ...] | list[TcpOption]) -> bytes:
    """Encode options in the order given, then pad with zeros to a multiple of 4 bytes."""
    if len(options) == 3:
        a, b, c = options
        if a.__class__ is Nop and b.__class__ is Nop and c.__class__ is Timestamps:
            return _NNTS.pack(_NOP_NOP_TS, c.val, c.ecr)
    parts: list[bytes] = []
    for o in options:
        cls = o.__class__                   # the option classes are final: no subclasses
        if cls is Nop:
            parts.append(b"\x01")
        elif cls is Timestamps:
            parts.append(struct.pack("!BBII", 8, 10, o.val, o.ecr))
        elif cls is Mss:
            parts.append(struct.pack("!BBH", 2, 4, o.value))
        elif cls is SackPermitted:
            parts.append(b"\x04\x02")
        elif cls is WindowScale:
            parts.append(struct.pack("!BBB", 3, 3, o.shift))
        elif cls is Eol:
            parts.append(b"\x00")
        elif cls is Sack:
            parts.append(struct.pack("!BB", 5, 2 + 8 * len(o.blocks)))
            parts.extend(struct.pack("!II", a, b) for a, b in o.blocks)
        elif cls is UnknownOption:
            parts.append(struct.pack("!BB", o.kind, 2 + len(o.data)) + o.data)
        else:
            raise TypeError(f"not a TCP option: {o!r}")
    raw = b"".join(parts)
    if len(raw) % 4:
        raw += b"\x00" * (4 - len(raw) % 4)
    return raw


# --- the segment ----------------------------------------------------------------------------

@fast_init
@dataclass(frozen=True, slots=True)
class TcpSegment:
    """One TCP segment as a value. ``ack`` is carried whether or not the ACK flag is set
    (packetdrill writes ``ack N`` on segments without ACK)."""
    sport: int
    dport: int
    seq: int
    ack: int
    flags: Flags
    window: int
    urgent: int = 0
    options: tuple[TcpOption, ...] = ()
    payload: bytes = b""
    reserved: int = 0          # the 4 bits between data offset and flags (AE is bit 0)

    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload octets plus one each for SYN and FIN (RFC 9293 §3.4)."""
        f = int(self.flags)                 # (an ``&`` on Flags is a Python call)
        return len(self.payload) + (1 if f & 0x02 else 0) + (f & 0x01)

    def option(self, kind: type) -> TcpOption | None:
        """The first option of the given class, or None."""
        for o in self.options:
            if o.__class__ is kind:         # the option classes are final: no subclasses
                return o
        return None

    @property
    def mss(self) -> int | None:
        o = self.option(Mss)
        return o.value if o else None  # type: ignore[union-attr]

    @property
    def wscale(self) -> int | None:
        o = self.option(WindowScale)
        return o.shift if o else None  # type: ignore[union-attr]

    @property
    def sack_permitted(self) -> bool:
        return self.option(SackPermitted) is not None

    @property
    def timestamps(self) -> Timestamps | None:
        opts = self.options                 # (self.option(Timestamps) inlined: asked per segment)
        if opts and opts[-1].__class__ is Timestamps:
            return opts[-1]                 # NOP, NOP, TS: where every segment but a SYN has it
        for o in opts:
            if o.__class__ is Timestamps:
                return o
        return None

    @property
    def sack_blocks(self) -> tuple[tuple[int, int], ...]:
        o = self.option(Sack)
        return o.blocks if o else ()  # type: ignore[union-attr]

    def replace(self, **changes) -> "TcpSegment":
        return replace(self, **changes)

    def summary(self) -> str:
        """One tcpdump-like line: ``S 4294967293:4294967293(0) win 65535 <mss 1460>``."""
        s = f"{self.flags.short()} {self.seq}:{(self.seq + len(self.payload)) & 0xFFFFFFFF}({len(self.payload)})"
        if self.flags & Flags.ACK:
            s += f" ack {self.ack}"
        s += f" win {self.window}"
        if self.flags & Flags.URG:
            s += f" urg {self.urgent}"
        if self.options:
            s += " <" + ",".join(format_option(o) for o in self.options) + ">"
        return s


# ``TcpSegment(...)`` and ``Timestamps(...)`` without the class call, for the values made per
# segment (synack.wire.frozen.maker): the same arguments, the same values
_new_segment = maker(TcpSegment)
_new_timestamps = maker(Timestamps)


def format_option(o: TcpOption) -> str:
    """packetdrill/tcpdump spelling of one option."""
    if isinstance(o, Eol):
        return "eol"
    if isinstance(o, Nop):
        return "nop"
    if isinstance(o, Mss):
        return f"mss {o.value}"
    if isinstance(o, WindowScale):
        return f"wscale {o.shift}"
    if isinstance(o, SackPermitted):
        return "sackOK"
    if isinstance(o, Sack):
        return "sack " + " ".join(f"{a}:{b}" for a, b in o.blocks)
    if isinstance(o, Timestamps):
        return f"TS val {o.val} ecr {o.ecr}"
    # TCP Fast Open (RFC 7413 §4.1.1): kind 34, or the experimental kind 254 with magic 0xF989
    # (RFC 6994); synack does not speak it, but names what others send, in tcpdump's words
    if o.kind == 34 or (o.kind == 254 and o.data[:2] == b"\xf9\x89"):
        name, cookie = ("tfo", o.data) if o.kind == 34 else ("exp-tfo", o.data[2:])
        return f"{name} cookie {cookie.hex()}" if cookie else f"{name} cookiereq"
    return f"opt-{o.kind} {o.data.hex()}"


def _pseudo_sum(src: bytes, dst: bytes, length: int) -> int:
    if len(src) == 4:
        return ones_sum(src + dst + struct.pack("!BBH", 0, PROTO_TCP, length))
    return ones_sum(src + dst + struct.pack("!IxxxB", length, PROTO_TCP))


def parse_tcp(data: bytes | bytearray | memoryview, src: bytes | None = None, dst: bytes | None = None,
              *, verify: bool = True) -> TcpSegment:
    """Parse a TCP segment (header + payload). With ``src``/``dst`` (4 or 16 address bytes) and
    ``verify``, a bad checksum raises ``WireError("bad checksum")``."""
    if verify and src is not None and dst is not None:
        return parse_tcp_summed(data, int.from_bytes(bytes(src) + bytes(dst), "big"))
    return parse_tcp_summed(data, None)


def parse_tcp_summed(data: bytes | bytearray | memoryview, addr_sum: int | None) -> TcpSegment:
    """``parse_tcp`` with the addresses' part of the pseudo-header sum given, for a caller that
    has it at hand (the stack reads both IPv4 addresses off the header as one integer):
    ``int.from_bytes(src + dst, "big")``, or any non-negative integer congruent to it modulo
    0xFFFF; None: the checksum is not verified. The protocol and TCP length words of the
    pseudo-header add as numbers (RFC 1071 §2, as in ``emit_tcp``), and the sum is never zero
    (the protocol word is 6), so ``checksum`` folds it as it does ``_pseudo_sum``'s."""
    n = len(data)
    if n < HEADER_LEN:
        raise WireError(f"TCP header truncated: {n} bytes")
    sport, dport, seq, ack, off_res, flags, window, csum, urgent = _HDR.unpack_from(data, 0)
    doff = (off_res >> 4) * 4
    if doff < HEADER_LEN:
        raise WireError(f"TCP data offset {doff // 4} < 5")
    if doff > n:
        raise WireError(f"TCP data offset {doff} past the end ({n} bytes)")
    if addr_sum is not None:
        if checksum(data, addr_sum + PROTO_TCP + n) != 0:
            raise WireError("bad TCP checksum")
    if doff == 32:
        # 12 option bytes: parse_options' first case (NOP, NOP, Timestamps: nearly every segment
        # but a SYN) read in place, without the memoryview slice and the call
        lead, val, ecr = _NNTS.unpack_from(data, HEADER_LEN)
        if lead == _NOP_NOP_TS:
            options = (_NOP, _NOP, _new_timestamps(val, ecr))
        else:
            options = parse_options(memoryview(data)[HEADER_LEN:doff])
    else:
        options = parse_options(memoryview(data)[HEADER_LEN:doff]) if doff > HEADER_LEN else ()
    # (no payload, as on most segments: b"" without slicing and copying an empty view)
    return _new_segment(sport, dport, seq, ack, _FLAGS[flags], window, urgent, options,
                        bytes(data[doff:]) if n > doff else b"", off_res & 0x0F)


def emit_tcp(seg: TcpSegment, src: bytes | None = None, dst: bytes | None = None,
             *, checksum_field: int | None = None, partial: bool = False) -> bytes:
    """Encode ``seg``. With ``src``/``dst`` the checksum is computed over the pseudo-header
    (``partial``: only the pseudo-header sum, not inverted, for a link that completes it, as
    virtio-net NEEDS_CSUM asks); ``checksum_field`` writes a given value instead (e.g. a
    deliberately bad one in a test)."""
    opts = emit_options(seg.options) if seg.options else b""
    doff = HEADER_LEN + len(opts)
    if doff > 60:
        raise WireError(f"TCP options too long: {len(opts)} bytes")
    fields = (seg.sport, seg.dport, seg.seq & 0xFFFFFFFF, seg.ack & 0xFFFFFFFF,
              ((doff // 4) << 4) | (seg.reserved & 0x0F), int(seg.flags) & 0xFF, seg.window)
    payload = seg.payload
    if checksum_field is not None:
        c = checksum_field
    elif src is not None and dst is not None:
        length = doff + len(payload)
        if partial:
            c = _pseudo_sum(bytes(src), bytes(dst), length)
        else:
            # One sum over pseudo-header, header and payload, each part summed as an integer:
            # the header and options are a multiple of 4 octets, so the payload's words line up
            # as in the whole segment, and 2**16 = 1 (mod 0xFFFF) lets the parts be added
            # (RFC 1071 §2). The pseudo-header's words are the addresses, the protocol and the
            # length; the TCP length and protocol add as numbers (an IPv6 32-bit length too).
            head = _HDR.pack(*fields, 0, seg.urgent) + opts
            c = checksum(payload, int.from_bytes(bytes(src) + bytes(dst), "big") + PROTO_TCP + length
                         + int.from_bytes(head, "big"))
    else:
        return _HDR.pack(*fields, 0, seg.urgent) + opts + payload
    return _HDR.pack(*fields, c, seg.urgent) + opts + payload


__all__ = [
    "Flags", "Eol", "Nop", "Mss", "WindowScale", "SackPermitted", "Sack", "Timestamps", "UnknownOption",
    "TcpOption", "TcpSegment", "parse_tcp", "parse_tcp_summed", "emit_tcp", "parse_options", "emit_options", "format_option",
    "PROTO_TCP",
]
