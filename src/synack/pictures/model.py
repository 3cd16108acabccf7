"""A neutral model of TCP connections, loaded from a capture (pcap, pcapng) or an event log.

``load(path)`` gives a ``Capture``: its ``connections`` (both directions of a 4-tuple merged,
listed in order of first packet, numbered from 1), each a ``Connection`` holding the ordered
``segments`` and the ``states`` of both endpoints. Pictures read only this (STYLE.md §8).

Endpoint A is the sender of the connection's first segment (the client, for a normal open).
Sequence and acknowledgment numbers are relative to each direction's ISN (the SYN's sequence
number, else the first one seen), or absolute with ``absolute=True``.

Times. A capture has one vantage point: each segment has the time it passed there (``t``); when
it left and when it arrived are *estimated* from the handshake (the vantage is (t3-t2)/2 from A
and (t2-t1)/2 from B, for SYN at t1, SYN,ACK at t2, the ACK at t3), so pictures can slant the
arrows. An event log from both stacks has the real times (SegmentOut, SegmentIn); from one
stack, the other end's times are estimated the same way.

Marks on segments (``Segment.marks``):

* ``retransmission``: sequence space sent before again (a log says so: ``retransmit``);
* ``duplicate``: the same segment seen twice (the network duplicated it);
* ``out-of-order``: arrived after a segment sent later (logs), or filled a gap sooner than an
  RTT after the highest sequence number was seen (captures, Wireshark's rule);
* ``lost``: sent but never seen at the other side (only when both sides' events are known);
* ``dropped``: arrived but discarded by the receiver (a ``Dropped`` record);
* ``dup-ack``: a pure ACK repeating the previous ACK while data is outstanding.

States come from ``StateChanged`` records where an endpoint logged them; otherwise from the
passive tracker in ``tracker.py``, marked ``inferred``. Errors: ``PictureError``, one line.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Sequence

from synack.link.pcap import PcapError, read_pcap
from synack.log.jsonl import LogFormatError, read_jsonl
from synack.pictures.tracker import StateChange, infer_states
from synack.wire.errors import WireError
from synack.wire.packet import parse_packet, tcp_in
from synack.wire.seq import MASK, seq_sub
from synack.wire.tcp import Flags, Sack, WindowScale, format_option

MARKS = ("retransmission", "duplicate", "out-of-order", "lost", "dropped", "dup-ack")
_LETTERS = {"S": Flags.SYN, "F": Flags.FIN, "R": Flags.RST, "P": Flags.PSH, "U": Flags.URG,
            "E": Flags.ECE, "W": Flags.CWR, ".": Flags.ACK}
_NAMES = ((Flags.SYN, "SYN"), (Flags.FIN, "FIN"), (Flags.RST, "RST"), (Flags.PSH, "PSH"),
          (Flags.URG, "URG"), (Flags.ECE, "ECE"), (Flags.CWR, "CWR"), (Flags.ACK, "ACK"))
_PCAP_MAGICS = {bytes.fromhex(m) for m in ("d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d", "34cdb2a1",
                                           "a1b2cd34", "0a0d0d0a")}
DUP_WINDOW = 0.2            # s: an identical segment sooner than this (min RTO) is a duplicate
OPTIONS_CUT = "options cut by snaplen"   # the last of a segment's options when the capture cut them
DEFAULT_RTT = 0.003         # s: Wireshark's out-of-order threshold when no handshake was seen


class PictureError(ValueError):
    """An input could not be turned into a picture; the message is one line saying why."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    addr: str
    port: int

    def __str__(self) -> str:
        return f"[{self.addr}]:{self.port}" if ":" in self.addr else f"{self.addr}:{self.port}"


@dataclass(slots=True)
class Segment:
    """One TCP segment of a connection. ``seq``/``ack``/``sack`` are relative (or absolute, as the
    connection says); ``raw_*`` are the wire values. ``window`` is the field as sent, ``rwnd``
    the window in bytes (scaled when both SYNs offered window scaling, RFC 7323 §2.2).
    ``t_sent``/``t_recv``: when it left / arrived (None: unknown or never); ``estimated``: one
    of them is a guess (module docstring)."""
    index: int
    t: float
    sender: str
    flags: Flags
    seq: int
    ack: int
    len: int
    window: int
    options: tuple[str, ...] = ()
    sack: tuple[tuple[int, int], ...] = ()
    raw_seq: int = 0
    raw_ack: int = 0
    rwnd: int = 0
    t_sent: float | None = None
    t_recv: float | None = None
    estimated: bool = False
    marks: set[str] = field(default_factory=set)

    @property
    def receiver(self) -> str:
        return "B" if self.sender == "A" else "A"

    @property
    def direction(self) -> str:
        return f"{self.sender}→{self.receiver}"

    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload plus one each for SYN and FIN (RFC 9293 §3.4)."""
        return self.len + (1 if self.flags & Flags.SYN else 0) + (1 if self.flags & Flags.FIN else 0)

    @property
    def flag_names(self) -> str:
        """"SYN,ACK", "PSH,ACK", "none"."""
        return ",".join(n for f, n in _NAMES if self.flags & f) or "none"


@dataclass(slots=True)
class Connection:
    """Both directions of one TCP connection. ``records``: the event-log records of it (each
    with an added ``"side"``), empty for a capture; ``logged``: the sides whose events are
    known. ``delays``: estimated one-way delay from the vantage point to each side (seconds)."""
    index: int
    a: Endpoint
    b: Endpoint
    segments: list[Segment]
    states: list[StateChange]
    source: str
    absolute: bool = False
    isn: dict[str, int] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    logged: frozenset[str] = frozenset()
    delays: dict[str, float] = field(default_factory=dict)

    def endpoint(self, side: str) -> Endpoint:
        return self.a if side == "A" else self.b

    @property
    def four_tuple(self) -> str:
        return f"{self.a} > {self.b}"

    def states_of(self, side: str) -> list[StateChange]:
        return [c for c in self.states if c.side == side]

    def final_state(self, side: str) -> str | None:
        s = self.states_of(side)
        return s[-1].new if s else None

    @property
    def start(self) -> float:
        """The earliest time known of any segment (a departure may precede its capture)."""
        return min((min(x for x in (s.t, s.t_sent) if x is not None) for s in self.segments), default=0.0)

    @property
    def end(self) -> float:
        return max((max(x for x in (s.t, s.t_sent, s.t_recv) if x is not None) for s in self.segments),
                   default=0.0)

    def payload_bytes(self, side: str | None = None) -> int:
        """Payload bytes sent (retransmissions included) by ``side``, or by both."""
        return sum(s.len for s in self.segments if side is None or s.sender == side)

    def matches(self, spec: str) -> bool:
        """``spec`` names this connection: "addr:port>addr:port" (either order; "-", "," or
        " > " also separate), or one endpoint "addr:port"."""
        mine = {str(self.a), str(self.b)}
        for sep in (" > ", ">", " - ", ",", " "):
            if sep in spec:
                parts = [p.strip() for p in spec.split(sep) if p.strip()]
                return len(parts) == 2 and set(parts) == mine
        return spec.strip() in mine


@dataclass(slots=True)
class Capture:
    """Everything loaded from one input. ``format``: "pcap", "pcapng" or "events"."""
    source: str
    format: str
    connections: list[Connection]
    warnings: list[str] = field(default_factory=list)

    def connection(self, spec: int | str | None = None) -> Connection:
        """Connection number ``spec`` (1-based), or the one a 4-tuple names, or the first one.
        Raises ``PictureError`` if there is none."""
        if not self.connections:
            raise PictureError(f"{self.source}: no TCP connections found")
        if spec is None:
            return self.connections[0]
        if isinstance(spec, int) or str(spec).strip().isdigit():
            n = int(spec)
            if not 1 <= n <= len(self.connections):
                raise PictureError(f"{self.source}: no connection {n} (there are {len(self.connections)})")
            return self.connections[n - 1]
        found = [c for c in self.connections if c.matches(str(spec))]
        if not found:
            raise PictureError(f"{self.source}: no connection matches {spec!r} (see --list)")
        return found[0]


# --- loading ---------------------------------------------------------------------------------

def load(source: str | os.PathLike | Sequence[str | os.PathLike], *, absolute: bool = False,
         strict: bool = True) -> Capture:
    """Load a pcap/pcapng capture or synack event log(s) (several logs of one run are merged).

    ``absolute``: keep sequence numbers as on the wire. ``strict=False``: read a capture cut
    short up to its last whole packet (the cut goes into ``warnings``) instead of failing.
    Raises ``PictureError`` (unreadable, malformed or truncated input)."""
    paths = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not paths:
        raise PictureError("no input given")
    kinds = [_sniff(p) for p in paths]
    if "capture" in kinds and len(paths) > 1:
        raise PictureError("give one capture, or one or more event logs, not a mix")
    name = ", ".join(os.fspath(p) for p in paths)
    if kinds[0] == "capture":
        return _load_capture(os.fspath(paths[0]), absolute, strict)
    return _load_events([os.fspath(p) for p in paths], name, absolute, strict)


def _sniff(path: str | os.PathLike) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise PictureError(f"{os.fspath(path)}: {e.strerror or e}") from None
    if head in _PCAP_MAGICS:
        return "capture"
    if head[:1] in (b"{", b" ", b"\n", b"\r", b"\t"):
        return "events"
    if not head:
        raise PictureError(f"{os.fspath(path)}: empty file")
    raise PictureError(f"{os.fspath(path)}: not a pcap, pcapng or synack event log (starts with {head.hex()})")


class _Raw:
    """A segment before relative numbering: wire values plus what the input knows."""
    __slots__ = ("t", "sender", "flags", "seq", "ack", "len", "window", "options", "sack", "wscale",
                 "t_sent", "t_recv", "key", "retx", "dup", "dropped", "rec_order")

    def __init__(self, t, sender, flags, seq, ack, length, window, options, sack, wscale, key):
        self.t, self.sender, self.flags, self.seq, self.ack = t, sender, flags, seq, ack
        self.len, self.window, self.options, self.sack, self.wscale = length, window, options, sack, wscale
        self.t_sent: float | None = None
        self.t_recv: float | None = None
        self.key = key
        self.retx: bool | None = None        # known from a log
        self.dup = False
        self.dropped = False


def _load_capture(path: str, absolute: bool, strict: bool) -> Capture:
    groups: dict[frozenset, list] = {}          # current connection of each 4-tuple
    order: list[list] = []                      # [A endpoint, B endpoint, raws]
    warnings: list[str] = []
    malformed = header_cut = options_cut = 0
    reader = read_pcap(path, strict=strict)
    try:
        for rec in reader:
            data = rec.data
            cut = rec.orig_len > len(data)
            if cut:                             # snaplen cut the payload: the headers still tell
                data = data + bytes(rec.orig_len - len(data))
            try:
                pkt = parse_packet(data, verify=False)
                seg = tcp_in(pkt, verify=False)   # offloaded checksums are not yet filled in
            except WireError as e:
                if "is not TCP" not in str(e):
                    if cut:
                        header_cut += 1
                    else:
                        malformed += 1
                continue
            options = seg.options
            if cut:
                got = _options_captured(data, len(rec.data), len(pkt.payload))
                if got is None:                 # the fixed TCP header itself was cut: no numbers
                    header_cut += 1
                    continue
                if got[1]:
                    options = options[:got[0]]
                    options_cut += 1
                    cut_note: tuple[str, ...] = (OPTIONS_CUT,)
                else:
                    cut_note = ()
            else:
                cut_note = ()
            src, dst = Endpoint(str(pkt.src), seg.sport), Endpoint(str(pkt.dst), seg.dport)
            k = frozenset((src, dst))
            g = groups.get(k)
            if g is not None and _restarts(g, src, seg):
                g = None
            if g is None:
                g = [src, dst, []]
                groups[k] = g
                order.append(g)
            sender = "A" if src == g[0] else "B"
            sack = next((o.blocks for o in options if isinstance(o, Sack)), ())
            ws = next((o.shift for o in options if isinstance(o, WindowScale)), None)
            opts = tuple(format_option(o) for o in options) + cut_note
            key = (seg.seq, seg.ack, int(seg.flags), seg.window, len(seg.payload), opts)
            g[2].append(_Raw(rec.t, sender, Flags(seg.flags), seg.seq, seg.ack, len(seg.payload),
                             seg.window, opts, sack, ws, key))
    except PcapError as e:
        raise PictureError(f"{path}: bad or truncated capture: {e}") from None
    except OSError as e:
        raise PictureError(f"{path}: {e.strerror or e}") from None
    if reader.warning:
        warnings.append(reader.warning)
    if malformed:
        warnings.append(f"{malformed} malformed TCP/IP packet(s) skipped")
    if header_cut:
        warnings.append(f"{header_cut} packet(s) cut by the capture's snaplen inside their IP/TCP header skipped")
    if options_cut:
        warnings.append(f"{options_cut} packet(s) cut by the capture's snaplen inside their TCP options: "
                        "options past the cut (window scale, SACK blocks, timestamps) are unknown")
    conns = [_finish(i + 1, a, b, raws, "capture", absolute, {}, frozenset())
             for i, (a, b, raws) in enumerate(order)]
    return Capture(path, reader.format or "pcap", conns, warnings)


def _tcp_header(data: bytes, payload_len: int) -> tuple[int, int]:
    """(offset of the TCP header in the IP packet ``data``, its length from the data offset)."""
    if data[0] >> 4 == 4:
        total = _u16(data, 2) or len(data)           # 0: a TSO super-packet's unfilled length
    else:
        total = 40 + _u16(data, 4) if _u16(data, 4) else len(data)     # 0: a jumbogram
    at = min(total, len(data)) - payload_len
    return at, (data[at + 12] >> 4) * 4


def _options_captured(data: bytes, captured: int, payload_len: int) -> tuple[int, bool] | None:
    """For a snaplen-cut segment: how many of its options (NOPs included) lie wholly in the
    ``captured`` bytes, and whether any option bytes were cut off (an end-of-options inside the
    captured bytes means none were); None if even the 20-byte fixed TCP header was cut."""
    at, hlen = _tcp_header(data, payload_len)
    end = captured - at
    if end < 20:
        return None
    tcp = data[at:at + hlen]
    i, n = 20, 0
    while i < min(hlen, end):
        kind = tcp[i]
        if kind == 0:
            return n + 1, False
        if kind == 1:
            i, n = i + 1, n + 1
            continue
        if i + 1 >= end or tcp[i + 1] < 2 or i + tcp[i + 1] > end:
            break
        i, n = i + tcp[i + 1], n + 1
    return n, end < hlen


def _u16(b: bytes, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def _restarts(g: list, src: Endpoint, seg) -> bool:
    """A new SYN with a new ISN on a 4-tuple whose connection already ended: a new connection."""
    if not (seg.flags & Flags.SYN) or seg.flags & Flags.ACK:
        return False
    raws = g[2]
    ended = any(r.flags & (Flags.RST | Flags.FIN) for r in raws)
    old_syn = next((r for r in raws if r.flags & Flags.SYN and (r.sender == "A") == (src == g[0])), None)
    return ended and (old_syn is None or old_syn.seq != seg.seq)


def _parse_conn(s: str) -> tuple[Endpoint, Endpoint]:
    def ep(x: str) -> Endpoint:
        addr, _, port = x.rpartition(":")
        return Endpoint(addr.strip("[]"), int(port))
    local, _, remote = s.partition(">")
    return ep(local), ep(remote)


def _seg_from_dict(d: dict, t: float, sender: str) -> _Raw:
    flags = Flags(0)
    if d.get("flags", "none") != "none":
        for ch in d["flags"]:
            flags |= _LETTERS.get(ch, Flags(0))
    opts = tuple(d.get("options", ()))
    sack: tuple = ()
    ws = None
    for o in opts:
        if o.startswith("sack "):
            sack = tuple(tuple(int(x) for x in b.split(":")) for b in o[5:].split())
        elif o.startswith("wscale "):
            ws = int(o[7:])
    key = (d["seq"], d["ack"], d["flags"], d["win"], d["len"], opts)
    return _Raw(t, sender, flags, d["seq"], d["ack"], d["len"], d["win"], opts, sack, ws, key)


def _load_events(paths: list[str], name: str, absolute: bool, strict: bool) -> Capture:
    recs: list[dict] = []
    try:
        for p in paths:
            recs.extend(read_jsonl(p, strict=strict))
    except LogFormatError as e:
        raise PictureError(f"{name}: {e}") from None
    except OSError as e:
        raise PictureError(f"{name}: {e.strerror or e}") from None
    if len(paths) > 1:
        recs.sort(key=lambda r: r.get("t", 0.0) if isinstance(r.get("t"), (int, float)) else 0.0)
    return from_records(recs, name=name, absolute=absolute)


def from_records(recs: Sequence[dict[str, Any]], *, name: str = "records", absolute: bool = False) -> Capture:
    """A ``Capture`` from event-log records already in memory (dicts as ``read_jsonl`` yields
    them, in time order), e.g. an HTTP server's trace of one connection. Raises
    ``PictureError`` for a malformed record."""
    # One group per incarnation of a 4-tuple: a side opening a new TCB (a StateChanged out of
    # CLOSED) after its previous one on that 4-tuple reached CLOSED starts a new connection, as
    # a new SYN after the end does in a capture (``_restarts``).
    groups: list[list[tuple[Endpoint, Endpoint, dict]]] = []
    current: dict[frozenset, int] = {}                  # 4-tuple -> index of its open group
    last_state: dict[tuple[int, Endpoint], str] = {}    # (group, local side) -> its latest state
    try:
        for r in recs:
            c = r.get("conn")
            if not isinstance(c, str) or ">" not in c or not isinstance(r.get("t"), (int, float)):
                continue
            local, remote = _parse_conn(c)
            key = frozenset((local, remote))
            g = current.get(key)
            if g is not None and r.get("ev") == "StateChanged" and r.get("old") == "CLOSED" \
                    and last_state.get((g, local)) == "CLOSED":
                g = None
            if g is None:
                g = current[key] = len(groups)
                groups.append([])
            groups[g].append((local, remote, r))
            if r.get("ev") == "StateChanged":
                last_state[(g, local)] = str(r.get("new"))
        built = [_events_conn(items, absolute) for items in groups]
    except (KeyError, ValueError, TypeError) as e:
        raise PictureError(f"{name}: malformed record ({type(e).__name__}: {e})") from None
    built = [c for c in built if c is not None]
    built.sort(key=lambda c: c.start)
    for i, c in enumerate(built):
        c.index = i + 1
    return Capture(name, "events", built, [])


def _events_conn(items: list[tuple[Endpoint, Endpoint, dict]], absolute: bool) -> Connection | None:
    first = next(((loc, rem, r) for loc, rem, r in items if r["ev"] in ("SegmentOut", "SegmentIn")), None)
    if first is None:
        return None
    loc, rem, r0 = first
    a, b = (loc, rem) if r0["ev"] == "SegmentOut" else (rem, loc)
    side_of = {a: "A", b: "B"}
    raws: list[_Raw] = []
    unmatched: dict[tuple, list[_Raw]] = {}     # (sender, key) -> sent, not yet seen arriving
    arrived: dict[tuple, _Raw] = {}             # (sender, key) -> last one matched
    last_in: dict[str, _Raw] = {}
    records: list[dict] = []
    logged: set[str] = set()
    states: list[StateChange] = []
    pending_before: dict[str, list[int]] = {}   # side -> indexes of states waiting for their tick
    last_tick: dict[str, tuple[float, str, _Raw]] = {}
    before_causes = ("active OPEN", "CLOSE /", "ABORT", "passive OPEN")

    def tick(side: str, kind: str, raw: _Raw, t: float) -> None:
        for si in pending_before.pop(side, []):
            st = states[si]
            if st.t == t:
                states[si] = StateChange(st.t, st.side, st.old, st.new, st.cause, False, ("before", kind, id(raw)))
        last_tick[side] = (t, kind, raw)

    for local, _remote, r in items:
        side = side_of[local]
        logged.add(side)
        rr = dict(r)
        rr["side"] = side
        records.append(rr)
        ev, t = r["ev"], float(r["t"])
        if ev == "SegmentOut":
            raw = _seg_from_dict(r["seg"], t, side)
            raw.t_sent = t
            raw.retx = bool(r.get("retransmit", False))
            raws.append(raw)
            unmatched.setdefault((side, raw.key), []).append(raw)
            tick(side, "send", raw, t)
        elif ev == "SegmentIn":
            sender = "B" if side == "A" else "A"
            probe = _seg_from_dict(r["seg"], t, sender)
            queue = unmatched.get((sender, probe.key))
            if queue:
                raw = queue.pop(0)
                raw.t_recv = t
                arrived[(sender, probe.key)] = raw
            elif (sender, probe.key) in arrived:      # the network delivered it twice
                orig = arrived[(sender, probe.key)]
                raw = probe
                raw.t, raw.t_sent, raw.t_recv, raw.dup, raw.retx = orig.t, orig.t_sent, t, True, False
                raws.append(raw)
            else:                                     # its sender's log (if any) lacks it
                raw = probe
                raw.t_recv = t
                raws.append(raw)
            last_in[side] = raw
            tick(side, "recv", raw, t)
        elif ev == "Dropped" and side in last_in:
            last_in[side].dropped = True
        elif ev == "StateChanged":
            anchor = None
            if str(r.get("cause", "")).startswith(before_causes):
                pending_before.setdefault(side, []).append(len(states))
            elif side in last_tick and last_tick[side][0] == t and last_tick[side][1] == "recv":
                anchor = ("after", "recv", id(last_tick[side][2]))
            states.append(StateChange(t, side, str(r["old"]), str(r["new"]), str(r.get("cause", "")),
                                      False, anchor))
    raws.sort(key=lambda x: x.t)                     # stable: the log's order among equal times
    for x in raws:
        if x.t_sent is None and x.t_recv is not None:
            x.t = x.t_recv
    raws.sort(key=lambda x: x.t)
    pos = {id(x): i for i, x in enumerate(raws)}
    states = [StateChange(s.t, s.side, s.old, s.new, s.cause, False,
                          (s.anchor[0], s.anchor[1], pos[s.anchor[2]]) if s.anchor and s.anchor[2] in pos else None)
              for s in states]
    conn = _finish(0, a, b, raws, "events", absolute, {"states": states}, frozenset(logged))
    conn.records = records
    return conn


# --- finishing: numbering, timing, marks, states ---------------------------------------------

def _unwrap(rel32: int, ref: int) -> int:
    """The number congruent to ``rel32`` mod 2**32 nearest to ``ref``: connections past 4 GiB."""
    base = ref - (ref & MASK) + rel32
    if base - ref > 1 << 31:
        base -= 1 << 32
    elif ref - base > 1 << 31:
        base += 1 << 32
    return base


def _finish(index: int, a: Endpoint, b: Endpoint, raws: list[_Raw], kind: str, absolute: bool,
            known: dict, logged: frozenset) -> Connection:
    isn: dict[str, int] = {}
    for r in raws:
        if r.flags & Flags.SYN and r.sender not in isn:
            isn[r.sender] = r.seq
    for r in raws:
        isn.setdefault(r.sender, r.seq)
    ws = {side: next((r.wscale for r in raws if r.sender == side and r.flags & Flags.SYN), None)
          for side in ("A", "B")}
    scaled = ws["A"] is not None and ws["B"] is not None
    unwrapped: dict[str, int] = {"A": 0, "B": 0}

    def rel(v: int, side: str) -> int:
        if absolute or side not in isn:
            return v
        u = _unwrap((v - isn[side]) & MASK, unwrapped[side])
        return u

    segs: list[Segment] = []
    for i, r in enumerate(raws):
        peer = "B" if r.sender == "A" else "A"
        seq = rel(r.seq, r.sender)
        if not absolute:
            unwrapped[r.sender] = max(unwrapped[r.sender], seq)
        ack = rel(r.ack, peer) if r.flags & Flags.ACK else (r.ack if absolute else 0)
        sack = tuple((rel(x, peer), rel(y, peer)) for x, y in r.sack)
        shift = ws[r.sender] if scaled and not r.flags & Flags.SYN else 0
        segs.append(Segment(i, r.t, r.sender, r.flags, seq, ack, r.len, r.window, r.options, sack,
                            r.seq, r.ack, r.window << (shift or 0), r.t_sent, r.t_recv))
    conn = Connection(index, a, b, segs, [], kind, absolute, isn, [], logged)
    _estimate_times(conn)
    _mark(conn, raws)
    logged_states: list[StateChange] = known.get("states", [])
    inferred, arrivals = infer_states(segs)
    for i, t in arrivals.items():
        s = segs[i]
        if s.estimated and s.t_recv is not None and t > s.t_recv:
            s.t_recv = t
    have = {c.side for c in logged_states}
    states = [c for c in logged_states] + [c for c in inferred if c.side not in have]
    states.sort(key=lambda c: c.t)
    conn.states = states
    return conn


def _estimate_times(conn: Connection) -> None:
    """Fill unknown departure/arrival times from the handshake (module docstring)."""
    segs = conn.segments
    measured = {"A": [], "B": []}          # one-way delays seen in the log, per sender
    for s in segs:
        if s.t_sent is not None and s.t_recv is not None:
            measured[s.sender].append(s.t_recv - s.t_sent)
    d = {"A": 0.0, "B": 0.0}
    syn = next((s for s in segs if s.sender == "A" and s.flags & Flags.SYN and not s.flags & Flags.ACK), None)
    synack = next((s for s in segs if s.sender == "B" and s.flags & Flags.SYN and s.flags & Flags.ACK), None)
    b_syn = next((s for s in segs if s.sender == "B" and s.flags & Flags.SYN), None)
    if syn is not None and synack is not None and b_syn is synack:    # not after a simultaneous open
        ack = next((s for s in segs if s.sender == "A" and s.index > synack.index and s.flags & Flags.ACK
                    and not s.flags & Flags.SYN), None)
        # A lost SYN or SYN-ACK means retransmissions, and a timeout between them is no delay:
        # B's delay is from the last SYN to the first SYN-ACK after it; A's from the last SYN-ACK
        # to the ACK answering it.
        end = ack.index if ack is not None else len(segs)
        syn = [s for s in segs if s.sender == "A" and s.flags & Flags.SYN and not s.flags & Flags.ACK
               and s.index < end][-1]
        answer = next((s for s in segs if s.sender == "B" and s.flags & Flags.SYN and s.flags & Flags.ACK
                       and s.index > syn.index and s.index < end), synack)
        d["B"] = max(answer.t - syn.t, 0.0) / 2
        if ack is not None:
            last = [s for s in segs if s.sender == "B" and s.flags & Flags.SYN and s.flags & Flags.ACK
                    and s.index < ack.index][-1]
            d["A"] = max(ack.t - last.t, 0.0) / 2
    conn.delays = d
    for s in segs:
        if measured[s.sender]:                        # a log of both sides: use what it measured
            owd = median(measured[s.sender])
            if s.t_sent is None and s.t_recv is not None:
                s.t_sent, s.estimated = s.t_recv - owd, True
            continue
        if conn.source == "events" and s.t_sent is not None and s.t_recv is None and conn.logged >= {"A", "B"}:
            continue                                  # both logged and never arrived: lost
        if s.t_sent is None:
            s.t_sent, s.estimated = s.t - d[s.sender], True
        if s.t_recv is None:
            s.t_recv, s.estimated = s.t_sent + d[s.sender] + d[s.receiver], True
    _acked_before_arrival(segs)
    if conn.source == "events":
        _sent_after_what_it_acks(segs, conn.logged)


def _acked_before_arrival(segs: list[Segment]) -> None:
    """An estimated arrival cannot come after the receiver sent the ACK covering it."""
    acks = {side: sorted(((s.t_sent, s) for s in segs if s.sender == side and s.flags & Flags.ACK
                          and s.t_sent is not None), key=lambda p: p[0]) for side in ("A", "B")}
    for s in segs:
        if not (s.estimated and s.seg_len and s.t_recv is not None and s.t_sent is not None):
            continue
        end = (s.raw_seq + s.seg_len) & MASK
        peer = acks[s.receiver]
        k = bisect_left(peer, s.t_sent, key=lambda p: p[0])
        for t, a in peer[k:k + 64]:                      # the covering ACK comes within a window
            if a.index != s.index and seq_sub(a.raw_ack, end) >= 0:
                if t < s.t_recv:
                    s.t_recv = max(t, s.t_sent)
                break


def _sent_after_what_it_acks(segs: list[Segment], logged: set[str]) -> None:
    """A guessed departure (of a side no log speaks for) cannot come before the departure of a
    segment it acknowledges, which had to arrive first: e.g. the kernel's last ACK of synack's
    FIN, drawn from synack's log alone, when the handshake's delay estimate is longer than
    this segment took."""
    for i, s in enumerate(segs):
        if s.sender in logged or not (s.estimated and s.flags & Flags.ACK and s.t_sent is not None):
            continue
        for p in reversed(segs[max(0, i - 64):i]):        # what it acknowledges came shortly before
            if p.sender != s.sender and p.seg_len and p.t_sent is not None \
                    and seq_sub(s.raw_ack, (p.raw_seq + p.seg_len) & MASK) >= 0:
                if p.t_sent > s.t_sent:
                    s.t_sent = p.t_sent if s.t_recv is None else min(p.t_sent, s.t_recv)
                break


def _handshake_rtt(segs: list[Segment]) -> float:
    syn = next((s for s in segs if s.flags & Flags.SYN and not s.flags & Flags.ACK), None)
    if syn is None:
        return DEFAULT_RTT
    ack = next((s for s in segs if s.sender == syn.sender and s.index > syn.index and s.flags & Flags.ACK
                and not s.flags & Flags.SYN), None)
    return max(ack.t - syn.t, 1e-6) if ack is not None else DEFAULT_RTT


def _mark(conn: Connection, raws: list[_Raw]) -> None:
    segs = conn.segments
    rtt = _handshake_rtt(segs)
    heur = _heuristic_marks(segs, raws, rtt)
    both = conn.logged >= {"A", "B"}
    for s, r, h in zip(segs, raws, heur):
        m: set[str] = set()
        if conn.source == "events":
            if r.retx is not None:
                if r.retx:
                    m.add("retransmission")
            elif "retransmission" in h:
                m.add("retransmission")
            if r.dup:
                m.add("duplicate")
            if both and r.t_recv is None and not s.estimated:
                m.add("lost")
            if s.receiver in conn.logged and not both and "out-of-order" in h:
                m.add("out-of-order")
            if r.dropped:
                m.add("dropped")
            m |= h & {"dup-ack"}
        else:
            m = h
        s.marks = m
    if both:                                  # arrived after a segment sent later had arrived
        for side in ("A", "B"):
            mine = [s for s in segs if s.sender == side and s.t_recv is not None and "duplicate" not in s.marks
                    and not s.estimated]
            earliest_later = float("inf")
            for s in reversed(mine):
                if s.t_recv > earliest_later and s.seg_len:
                    s.marks.add("out-of-order")
                earliest_later = min(earliest_later, s.t_recv)


def _heuristic_marks(segs: list[Segment], raws: list[_Raw], rtt: float) -> list[set[str]]:
    """Marks from the packets alone (module docstring), in the order first seen."""
    out: list[set[str]] = [set() for _ in segs]
    covered: dict[str, list[list[int]]] = {"A": [], "B": []}    # merged [start, end) ranges
    high: dict[str, tuple[int, float] | None] = {"A": None, "B": None}
    seen: dict[tuple, tuple[float, int, int]] = {}     # (sender, key) -> (t, peer's dup-ACKs then, index)
    last_ack: dict[str, tuple[int, int] | None] = {"A": None, "B": None}
    dupacks: dict[str, int] = {"A": 0, "B": 0}
    base = {side: next((r.seq for r in raws if r.sender == side), 0) for side in ("A", "B")}
    for i, (s, r) in enumerate(zip(segs, raws)):
        side, peer = s.sender, s.receiver
        n = s.seg_len
        if n and not s.flags & Flags.RST:
            ref = high[side][0] if high[side] else 0
            start = _unwrap(seq_sub(r.seq, base[side]) & MASK, ref)
            end = start + n
            prev = seen.get((side, r.key))
            # identical, soon, and not after the dup-ACKs that trigger a fast retransmit, nor
            # after a SACK that reported it missing (RACK retransmits on one such ACK)
            if prev is not None and s.t - prev[0] < DUP_WINDOW and dupacks[peer] - prev[1] < 2 \
                    and not _hole_reported(raws, prev[2], i, r.seq):
                out[i].add("duplicate")
            elif high[side] is not None and start < high[side][0]:
                if _overlaps(covered[side], start, end):
                    out[i].add("retransmission")
                elif s.t - high[side][1] < rtt:
                    out[i].add("out-of-order")
                else:
                    out[i].add("retransmission")
            _add_range(covered[side], start, end)
            if high[side] is None or end > high[side][0]:
                high[side] = (end, s.t)
            seen.setdefault((side, r.key), (s.t, dupacks[peer], i))
        elif not s.flags & (Flags.RST | Flags.SYN | Flags.FIN) and s.flags & Flags.ACK and not s.len:
            la = last_ack[side]
            outstanding = high[peer] is not None and _unwrap(seq_sub(r.ack, base[peer]) & MASK,
                                                             high[peer][0]) < high[peer][0]
            if la is not None and la == (r.ack, r.window) and outstanding:
                out[i].add("dup-ack")
                dupacks[side] += 1
        if s.flags & Flags.ACK:
            last_ack[side] = (r.ack, r.window)
    return out


def _hole_reported(raws: list[_Raw], first: int, i: int, seq: int) -> bool:
    """Between segments ``first`` and ``i``, the peer of ``raws[i]``'s sender acknowledged up to
    ``seq`` at most and selectively acknowledged data above it (RFC 2018): ``seq`` was missing
    there, so a copy of it sent after that is a retransmission, not a network duplicate."""
    sender = raws[i].sender
    for r in raws[max(first + 1, i - 256):i]:
        if r.sender != sender and r.flags & Flags.ACK and r.sack and seq_sub(r.ack, seq) <= 0 \
                and any(seq_sub(b, seq) > 0 for _a, b in r.sack):
            return True
    return False


def _overlaps(ranges: list[list[int]], start: int, end: int) -> bool:
    return any(a < end and start < b for a, b in ranges)


def _add_range(ranges: list[list[int]], start: int, end: int) -> None:
    ranges.append([start, end])
    ranges.sort()
    merged: list[list[int]] = []
    for a, b in ranges:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    ranges[:] = merged


# --- small helpers the renderers share ----------------------------------------------------------

def human_bytes(n: float) -> str:
    """1.7 MB, 12 kB, 512 B (decimal units, as network tools count)."""
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            v = n / k
            return f"{v:.1f} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return f"{int(n)} B"


def describe(conn: Connection, origin: float | None = None) -> str:
    """One line for ``--list``. Times are seconds from ``origin`` (the capture's first packet,
    when the caller gives it), so wall-clock captures do not print epoch seconds."""
    fa, fb = conn.final_state("A") or "?", conn.final_state("B") or "?"
    n = len(conn.segments)
    o = 0.0 if origin is None else origin
    return (f"{conn.index:>3}  {conn.four_tuple:<47}  {n} segment{'s' if n != 1 else ''}, "
            f"{human_bytes(conn.payload_bytes())}, {conn.start - o:.6f}-{conn.end - o:.6f} s, A {fa}, B {fb}")


__all__ = ["PictureError", "Endpoint", "Segment", "Connection", "Capture", "StateChange", "MARKS",
           "load", "from_records", "human_bytes", "describe"]
