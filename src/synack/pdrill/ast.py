"""The parsed form of a packetdrill script: what ``synack.pdrill.parser`` produces.

Everything is a frozen, slotted dataclass that compares with ``==`` and prints readably, so the
parser's tests state whole events and the interpreter can ``match`` on body types. The tree says
what the script *wrote*; meaning (relative sequence numbers, tolerances, syscall semantics) belongs
to the interpreter. Numbers are plain ``int`` (times: ``float`` seconds).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

# --- time ---------------------------------------------------------------------------------------


class TimeKind(enum.Enum):
    AT = "at"               # `1.0`, `+0.1`: the event happens at this time
    ANY = "any"             # `*`: at any time
    RANGE = "range"         # `0.1~0.2`, `+0~+0.3`: somewhere in the window
    BLOCKING = "blocking"   # `1.0...6.0 call()`: the call starts at `start` and returns at `end`


@dataclass(frozen=True, slots=True)
class Time:
    """When an event happens, in seconds.

    ``relative`` (the script wrote ``+``): ``start`` and ``end`` are offsets from the actual time of
    the previous event; both share that base, so ``+0...0.1`` starts at the previous event and
    returns 0.1 s after it. ``start``/``end`` are None for ``*``; ``end`` is None for AT.
    """
    kind: TimeKind
    start: float | None = None
    end: float | None = None
    relative: bool = False


# --- expressions (system call arguments and results) --------------------------------------------


@dataclass(frozen=True, slots=True)
class Int:
    """``3``, ``-1``, ``0x2``."""
    value: int


@dataclass(frozen=True, slots=True)
class Wildcard:
    """``...``: any value (when checked) or a sensible default (when passed in)."""


@dataclass(frozen=True, slots=True)
class Symbol:
    """A named constant: ``SOCK_STREAM``, ``EINPROGRESS``, ``TCP_ESTABLISHED``."""
    name: str


@dataclass(frozen=True, slots=True)
class BitOr:
    """``O_RDWR|O_NONBLOCK``: two or more terms (symbols or ints) or-ed together."""
    terms: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class String:
    """``"cubic"``, escapes decoded."""
    value: str


@dataclass(frozen=True, slots=True)
class List:
    """``[1]``, ``[ECONNREFUSED]``, ``[{..., 10}, {..., 20}]``."""
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Field:
    """One member of a ``{...}`` struct.

    ``l_onoff=1`` has a name; ``msg_iov(1)=[...]`` also an ``index`` (packetdrill's length
    annotation); the members of an iovec ``{..., 10}`` have neither.
    """
    name: str | None
    value: Expr
    index: Expr | None = None


@dataclass(frozen=True, slots=True)
class Struct:
    """``{l_onoff=1, l_linger=0}``; ``{...}`` is one unnamed ``Wildcard`` field."""
    fields: tuple[Field, ...]

    def get(self, name: str) -> Expr | None:
        """The value of the field called ``name``, or None."""
        for f in self.fields:
            if f.name == name:
                return f.value
        return None


@dataclass(frozen=True, slots=True)
class Call:
    """``htons(8080)``, ``inet_addr("192.0.2.1")``: a helper applied to arguments."""
    name: str
    args: tuple[Expr, ...]


Expr = Union[Int, Wildcard, Symbol, BitOr, String, List, Struct, Call]


# --- event bodies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Syscall:
    """``connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)``.

    ``errno`` is the symbol after the result, ``note`` the text in parentheses after that (a
    comment: ``Operation now in progress``, ``flags O_RDWR``), both None when absent.
    """
    name: str
    args: tuple[Expr, ...]
    result: Expr
    errno: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class IpInfo:
    """``(tos 0x20)``, ``(ttl 4)``, ``[ect0]``: IP header fields written before the TCP flags."""
    tos: int | None = None
    ttl: int | None = None
    ecn: str | None = None          # 'noecn' | 'ect0' | 'ect1' | 'ect01' | 'ce'
    flowlabel: int | None = None


@dataclass(frozen=True, slots=True)
class Nop:
    pass


@dataclass(frozen=True, slots=True)
class Eol:
    pass


@dataclass(frozen=True, slots=True)
class Mss:
    value: int


@dataclass(frozen=True, slots=True)
class WScale:
    shift: int


@dataclass(frozen=True, slots=True)
class SackOK:
    pass


@dataclass(frozen=True, slots=True)
class Sack:
    """``sack 1:11 21:31``: blocks as written (left, right), in the script's sequence space."""
    blocks: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Timestamp:
    """``TS val 100 ecr 0``."""
    val: int
    ecr: int


PktOption = Union[Nop, Eol, Mss, WScale, SackOK, Sack, Timestamp]


class AnyOptions(enum.Enum):
    """``<...>``: the options are not checked."""
    ANY = "<...>"

    def __repr__(self) -> str:
        return "ANY"


ANY = AnyOptions.ANY


@dataclass(frozen=True, slots=True)
class Packet:
    """``> S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>``.

    ``direction`` '<' is injected by the script, '>' expected from the stack. ``flags`` is the
    letters as written (``S.``, ``P.``, ``.``). The sequence part ``start:end(len)`` gives
    ``seq_start``/``seq_end``/``seq_len``; a trailing ``!`` sets ``seq_absolute``; ``...(len)``
    sets ``seq_any`` and leaves start and end None. ``ack``, ``win`` and ``urg`` are None when not
    written (``ack`` may be written without the ACK flag). ``options``: None when not written,
    ``ANY`` for ``<...>``, else the options in the written order.
    """
    direction: str
    flags: str
    seq_start: int | None
    seq_end: int | None
    seq_len: int
    seq_absolute: bool = False
    seq_any: bool = False
    ack: int | None = None
    win: int | None = None
    urg: int | None = None
    options: tuple[PktOption, ...] | AnyOptions | None = None
    ipinfo: IpInfo | None = None


@dataclass(frozen=True, slots=True)
class IcmpPacket:
    """``< icmp unreachable frag_needed mtu 1234 [1:1461(1460)]``.

    ``kind`` and ``code`` are the names as written (``code`` None when absent). ``quoted`` is the
    segment of the stack's that the ICMP message quotes, ``(start, end, len)`` in the script's
    sequence space, or None when not written or written as ``[...]``.
    """
    direction: str
    kind: str
    code: str | None = None
    mtu: int | None = None
    quoted: tuple[int, int, int] | None = None
    ipinfo: IpInfo | None = None


@dataclass(frozen=True, slots=True)
class Shell:
    """A backquoted command, as written between the backquotes (emulated, never run)."""
    command: str


@dataclass(frozen=True, slots=True)
class Code:
    """The Python between ``%{`` and ``}%``, as written (not dedented)."""
    source: str


Body = Union[Syscall, Packet, IcmpPacket, Shell, Code]


@dataclass(frozen=True, slots=True)
class Event:
    """One timed line of the script; ``line`` is where its time stands (1-based)."""
    line: int
    time: Time
    body: Body


@dataclass(frozen=True, slots=True)
class Script:
    """A parsed script.

    ``options`` are the ``--name=value`` lines (a bare ``--name`` maps to ""), overridden by the
    caller's ``options_override``; names are kept as written. ``init_command`` is an untimed
    backquoted command before the first event (Linux corpora: ``../common/defaults.sh``).
    """
    options: dict[str, str]
    events: tuple[Event, ...]
    path: str = "<string>"
    init_command: Shell | None = None
