"""The textbook sequence diagram of one connection: two lanes, one per endpoint, and an arrow
per segment, with each endpoint's states written beside its lane where they change.

Three renderers read the same ``plan`` (which segments to draw, which to fold, where each state
change goes): ``render_svg`` (hand-written SVG; arrows slanted by real time, or evenly with
``even=True``), ``render_mermaid`` (a Mermaid ``sequenceDiagram``) and ``render_text`` (Unicode
box drawing for a terminal, ANSI colours when asked). A long data phase is folded into one
summary arrow ("… 1,234 segments, 1.7 MB …") unless ``full=True``; the handshake, every FIN and
RST, and what follows the last data segment are always drawn.

Labels read like the textbooks: ``SYN seq=0 win=65535 <mss 1460,sackOK,TS,wscale 7>``,
``SYN,ACK seq=0 ack=1 …``, ``ACK seq=1 ack=1``, data with ``len=`` and the window (in bytes,
scaled) where it changed; marks (retransmission, duplicate, out of order, lost, dropped,
dup ACK) are written after the label and drawn distinctly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import median
from xml.sax.saxutils import escape

from synack.pictures.model import Connection, Segment, StateChange, human_bytes
from synack.wire.tcp import Flags

MARK_TEXT = {"retransmission": "retransmission", "duplicate": "duplicate", "out-of-order": "out of order",
             "lost": "lost", "dropped": "dropped by receiver", "dup-ack": "dup ACK"}
_MARK_ORDER = ("retransmission", "duplicate", "out-of-order", "lost", "dropped", "dup-ack")
KEEP = 3          # segments kept visible on each side of a folded run
MIN_FOLD = 8      # runs shorter than this are drawn in full


# --- the plan: blocks in order, states attached to them --------------------------------------

@dataclass(slots=True)
class Fold:
    """Consecutive segments drawn as one summary arrow."""
    indexes: list[int]
    sender: str
    label: str
    t0: float
    t1: float


@dataclass(slots=True)
class Plan:
    conn: Connection
    blocks: list[Segment | Fold]
    labels: dict[int, str]                    # segment index -> label (without marks)
    before: dict[int, list[StateChange]] = field(default_factory=dict)   # block -> states before it
    after: dict[int, list[StateChange]] = field(default_factory=dict)
    gaps: dict[int, float] = field(default_factory=dict)   # block -> idle seconds before it
    owd: float = 0.0                                       # typical one-way delay (s)
    # id(state change) -> idle seconds before it: a change no segment caused (a timer: 2 MSL,
    # retries exhausted) long after what precedes it is drawn at its own time, after a break
    late: dict[int, float] = field(default_factory=dict)

    @property
    def inferred(self) -> str:
        """"all", "some" or "none" of the states are inferred."""
        inf = [c.inferred for c in self.conn.states]
        return "all" if inf and all(inf) else "some" if any(inf) else "none"


def send_time(s: Segment) -> float:
    return s.t_sent if s.t_sent is not None else s.t


def _short_option(o: str) -> str | None:
    if o in ("nop", "eol"):
        return None
    if o.startswith("TS "):
        return "TS"
    if o.startswith("opt-"):
        return o.split()[0]
    return o


def segment_label(s: Segment, prev_rwnd: int | None) -> str:
    """"SYN,ACK seq=0 ack=1 win=65535 <mss 1460,sackOK,TS,wscale 7>" (marks not included)."""
    parts = [s.flag_names, f"seq={s.seq}"]
    if s.flags & Flags.ACK:
        parts.append(f"ack={s.ack}")
    if s.len:
        parts.append(f"len={s.len}")
    if s.flags & Flags.SYN or s.len or (prev_rwnd is not None and prev_rwnd != s.rwnd) or (
            prev_rwnd is None and not s.flags & Flags.RST):
        parts.append(f"win={s.rwnd}")
    if s.flags & Flags.SYN:
        opts = [x for x in (_short_option(o) for o in s.options) if x]
        if opts:
            parts.append("<" + ",".join(opts) + ">")
    elif s.sack:
        parts.append("<sack " + " ".join(f"{a}-{b}" for a, b in s.sack) + ">")
    return " ".join(parts)


def mark_suffix(s: Segment) -> str:
    return "".join(f" [{MARK_TEXT[m]}]" for m in _MARK_ORDER if m in s.marks)


def gap_threshold(owd: float) -> float:
    """Idle time worth a "… 1.0 s …" break: 8 one-way delays, and at least 50 ms."""
    return max(8 * owd, 0.05)


def plan(conn: Connection, *, full: bool = False) -> Plan:
    segs = conn.segments
    labels: dict[int, str] = {}
    last_rwnd: dict[str, int] = {}
    for s in segs:
        labels[s.index] = segment_label(s, last_rwnd.get(s.sender))
        last_rwnd[s.sender] = s.rwnd
    delays = [s.t_recv - s.t_sent for s in segs if s.t_recv is not None and s.t_sent is not None]
    owd = median(delays) if delays else 0.0
    blocks: list[Segment | Fold] = []
    runs = {} if full else {r[0]: r for r in _foldable(segs, gap_threshold(owd))}
    i = 0
    while i < len(segs):
        if i in runs:
            j = runs[i][-1] + 1
            blocks.append(_make_fold(segs[i:j]))
            i = j
        else:
            blocks.append(segs[i])
            i += 1
    for blk, nxt in zip(blocks, blocks[1:]):
        if isinstance(blk, Fold):
            # a summary ends where the next drawn segment starts, not with the last arrival in
            # it: the ACKs after a bulk transfer leave while its tail is still arriving, and
            # would be drawn across the fold
            nxt_t = nxt.t0 if isinstance(nxt, Fold) else send_time(nxt)
            blk.t1 = max(blk.t0, min(blk.t1, nxt_t))
    p = Plan(conn, blocks, labels, owd=owd)
    block_of: dict[int, int] = {}
    for b, blk in enumerate(blocks):
        for idx in (blk.indexes if isinstance(blk, Fold) else [blk.index]):
            block_of[idx] = b
    starts = [blk.t0 if isinstance(blk, Fold) else send_time(blk) for blk in blocks]
    for c in conn.states:
        if c.anchor is not None and c.anchor[2] in block_of:
            b = block_of[c.anchor[2]]
            (p.before if c.anchor[0] == "before" else p.after).setdefault(b, []).append(c)
        else:
            b = max((k for k, t in enumerate(starts) if t <= c.t), default=None)
            if b is None:
                p.before.setdefault(0, []).append(c)
            else:
                p.after.setdefault(b, []).append(c)
    thr = gap_threshold(owd)
    after_t: dict[int, float] = {}                 # block -> time of its last late state
    for b, cs in p.after.items():
        blk = blocks[b]
        ref = blk.t1 if isinstance(blk, Fold) else max(send_time(blk), blk.t_recv or 0.0)
        for c in cs:
            if c.anchor is None and c.t - ref > thr:
                p.late[id(c)] = c.t - ref
                ref = after_t[b] = c.t
    for b in range(1, len(blocks)):
        prev = blocks[b - 1]
        prev_t = prev.t1 if isinstance(prev, Fold) else send_time(prev)
        prev_t = max(prev_t, after_t.get(b - 1, prev_t))
        if starts[b] - prev_t > thr:
            p.gaps[b] = starts[b] - prev_t
    return p


def _foldable(segs: list[Segment], pause: float = float("inf")) -> list[range]:
    """The runs of segment indexes to fold, each at least ``MIN_FOLD`` unprotected segments. A
    run ends at an idle time longer than ``pause`` seconds: a fold must not hide a pause (an
    RTO, a zero window, an application thinking), which the diagram shows as a break."""
    n = len(segs)
    protected: set[int] = set()
    hs_end = -1
    if segs and segs[0].flags & Flags.SYN:
        hs_end = next((s.index for s in segs if not s.flags & Flags.SYN), n - 1)
    protected.update(range(0, hs_end + 1))
    last_data = max((s.index for s in segs if s.len), default=n - 1)
    protected.update(range(last_data, n))
    protected.update(s.index for s in segs if s.flags & (Flags.FIN | Flags.RST | Flags.SYN))
    for p in list(protected):                          # context around what is shown
        protected.update(range(max(0, p - KEEP), min(n, p + KEEP + 1)))
    out: list[range] = []
    i = 0
    while i < n:
        if i in protected:
            i += 1
            continue
        j = i + 1
        while j < n and j not in protected and send_time(segs[j]) - send_time(segs[j - 1]) <= pause:
            j += 1
        if j - i >= MIN_FOLD:
            out.append(range(i, j))
        i = j
    return out


def _make_fold(segs: list[Segment]) -> Fold:
    by = {"A": 0, "B": 0}
    for s in segs:
        by[s.sender] += s.len
    sender = "B" if by["B"] > by["A"] else "A"
    total = by["A"] + by["B"]
    extra = []
    for m, word in (("retransmission", "retransmission"), ("lost", "lost"), ("duplicate", "duplicate"),
                    ("out-of-order", "out of order")):
        k = sum(1 for s in segs if m in s.marks)
        if k:
            extra.append(f"{k:,} {word}" + ("s" if k != 1 and word.endswith("ion") else ""))
    label = f"… {len(segs):,} segments, {human_bytes(total)}{', ' + ', '.join(extra) if extra else ''} …"
    t1 = max(x for s in segs for x in (send_time(s), s.t_recv) if x is not None)
    return Fold([s.index for s in segs], sender, label, send_time(segs[0]), t1)


def title(conn: Connection) -> str:
    dur = conn.end - conn.start
    n = len(conn.segments)
    return (f"TCP {conn.four_tuple}: {n:,} segment{'s' if n != 1 else ''}, "
            f"{human_bytes(conn.payload_bytes())}, {dur:.3f} s")


def _state_name(c: StateChange, star: bool) -> str:
    return c.new + ("*" if star and c.inferred else "")


def _footer(p: Plan) -> list[str]:
    notes = []
    if p.inferred == "all":
        notes.append("states inferred from the packets (no event log)")
    elif p.inferred == "some":
        notes.append("* state inferred from the packets")
    if not p.conn.absolute:
        notes.append("sequence numbers relative to each side's ISN")
    return notes


# --- terminal text ---------------------------------------------------------------------------

_ANSI = {"state": "36", "time": "2", "retransmission": "31", "lost": "1;31", "dropped": "31",
         "duplicate": "33", "out-of-order": "35", "dup-ack": "2", "fold": "2", "gap": "2"}


def render_text(conn: Connection, *, full: bool = False, color: bool = False) -> str:
    """Box-drawing rendering, one row per segment (plus rows for states, folds and pauses).
    ``color``: ANSI colours (states, marks); padding is computed on the plain text."""
    p = plan(conn, full=full)
    star = p.inferred == "some"
    t0 = conn.start                    # a property walking every segment: once, not per row

    def paint(text: str, what: str) -> str:
        return f"\x1b[{_ANSI[what]}m{text}\x1b[0m" if color and what in _ANSI and text.strip() else text

    texts = [blk.label if isinstance(blk, Fold) else p.labels[blk.index] + mark_suffix(blk) for blk in p.blocks]
    gap = max([len(t) for t in texts] + [30]) + 4
    left = max([len(_state_name(c, star)) for c in conn.states if c.side == "A"] + [len(str(conn.a)) // 2, 8]) + 2
    tw = max([len(f"{send_time(s) - t0:.6f}") for s in conn.segments]
             + [len(f"{c.t - t0:.6f}") for c in conn.states if id(c) in p.late] + [8])
    xa = tw + 1 + left                                   # column of lane A
    head = [" "] * (xa + gap + 2 + len(str(conn.b)))
    for name, x in ((str(conn.a), xa), (str(conn.b), xa + gap + 1)):
        start = max(0, x - len(name) // 2)
        head[start:start + len(name)] = list(name)
    out: list[str] = [title(conn), "", "".join(head).rstrip()]

    def row(a: str = "│", b: str = "│", mid: str = "", mid_style: str = "", t: str = "",
            left_text: str = "", right_text: str = "") -> None:
        line = (paint(f"{t:>{tw}}", "time") + " " + " " * (left - len(left_text) - 1)
                + paint(left_text, "state") + (" " if left_text else " ") + a
                + paint(f"{mid:<{gap}}", mid_style) + b + (" " + paint(right_text, "state") if right_text else ""))
        out.append(line.rstrip())

    def state_rows(cs: list[StateChange]) -> None:
        for c in cs:
            t = ""
            if id(c) in p.late:
                row("┆", "┆", f"{'… ' + _secs(p.late[id(c)]) + ' …':^{gap}}", "gap")
                t = f"{c.t - t0:.6f}"
            if c.side == "A":
                row(a="┤", left_text=_state_name(c, star), t=t)
            else:
                row(b="├", right_text=_state_name(c, star), t=t)

    row()
    for b, blk in enumerate(p.blocks):
        if b in p.gaps:
            row("┆", "┆", f"{'… ' + _secs(p.gaps[b]) + ' …':^{gap}}", "gap")
        state_rows(p.before.get(b, []))
        if isinstance(blk, Fold):
            label, style, sender, t = blk.label, "fold", blk.sender, blk.t0
            ch, marks = "━", set()
        else:
            label, sender, t = p.labels[blk.index] + mark_suffix(blk), blk.sender, send_time(blk)
            marks = blk.marks
            style = next((m for m in _MARK_ORDER if m in marks), "")
            ch = {"retransmission": "╌", "duplicate": "═", "out-of-order": "┄"}.get(style, "─")
        n = gap - 1                                       # cells between the two lanes' tees
        if "lost" in marks:
            k = n * 3 // 5
            body = ch * k + "✕" + " " * (n - k)
        else:
            body = ch * n + ("✕" if "dropped" in marks else "▶")
        if sender == "B":
            body = body[::-1].replace("▶", "◀")
        row(mid=f"{label:^{gap}}".rstrip(), mid_style=style)
        row("├" if sender == "A" else "│", "┤" if sender == "B" else "│", body, style,
            t=f"{t - t0:.6f}")
        state_rows(p.after.get(b, []))
    row()
    out.extend(_footer(p))
    return "\n".join(out) + "\n"


def _secs(dt: float) -> str:
    return f"{dt:.3f} s" if dt < 10 else f"{dt:.1f} s"


# --- Mermaid ---------------------------------------------------------------------------------

def _mm(text: str) -> str:
    """Mermaid message text: entity codes for what its parser would take as syntax or HTML."""
    return (text.replace("#", "#35;").replace(";", "#59;").replace("<", "#lt;").replace(">", "#gt;"))


def render_mermaid(conn: Connection, *, full: bool = False) -> str:
    """A Mermaid ``sequenceDiagram``: states as ``Note over A: SYN-SENT``."""
    p = plan(conn, full=full)
    star = p.inferred == "some"
    out = ["sequenceDiagram", f"    %% {title(conn)}"]
    out += [f"    %% {n}" for n in _footer(p)]
    out += [f"    participant A as {conn.a}", f"    participant B as {conn.b}"]

    def notes(cs: list[StateChange]) -> None:
        for c in cs:
            if id(c) in p.late:
                out.append(f"    Note over A,B: … {_secs(p.late[id(c)])} …")
            out.append(f"    Note over {c.side}: {_state_name(c, star)}")

    for b, blk in enumerate(p.blocks):
        if b in p.gaps:
            out.append(f"    Note over A,B: … {_secs(p.gaps[b])} …")
        notes(p.before.get(b, []))
        if isinstance(blk, Fold):
            to = "B" if blk.sender == "A" else "A"
            out.append(f"    {blk.sender}-){to}: {_mm(blk.label)}")
        else:
            s = blk
            arrow = "-x" if "lost" in s.marks else "-->>" if s.marks & {"retransmission", "duplicate",
                                                                         "out-of-order"} else "->>"
            out.append(f"    {s.sender}{arrow}{s.receiver}: {_mm(p.labels[s.index] + mark_suffix(s))}")
        notes(p.after.get(b, []))
    return "\n".join(out) + "\n"


# --- SVG -------------------------------------------------------------------------------------

FONT = 12
CW = 7.4            # px per character of a 12 px monospace font, a little generous
ROW = 30            # px between two departures
SLANT = 40          # px an arrow drops (even spacing; real time: one typical one-way delay)
MIN_SLANT = 16
MAX_GAP = 90        # px: longer idle times are compressed (and marked when long)
BREAK = 36
LANE_SEP = 12       # px between two arrivals on one lane
COLORS = {"": "#222", "retransmission": "#c0392b", "duplicate": "#d68910", "out-of-order": "#7d3c98",
          "lost": "#c0392b", "dropped": "#a04000", "dup-ack": "#555", "fold": "#2e86c1"}
DASH = {"retransmission": "7 4", "duplicate": "2 3", "out-of-order": "10 3 2 3"}


@dataclass(slots=True)
class Label:
    """A placed text: its polygon (4 corners) for the overlap checks, and its SVG."""
    kind: str
    text: str
    poly: list[tuple[float, float]]
    svg: str
    owner: int | None = None          # the segment an arrow label belongs to


@dataclass(slots=True)
class Layout:
    width: float
    height: float
    xa: float
    xb: float
    arrows: list[tuple[int | None, float, float, float, float, str]]   # (segment, x1, y1, x2, y2, style)
    labels: list[Label]
    parts: list[str]

    def overlapping(self, *, arrows: bool = False) -> list[tuple[str, str]]:
        """Pairs of labels whose boxes overlap; with ``arrows``, also (label, segment index)
        for a label crossed by another segment's arrow."""
        out = [(p.text, q.text) for k, p in enumerate(self.labels) for q in self.labels[k + 1:]
               if _poly_overlap(p.poly, q.poly)]
        if arrows:
            for lb in self.labels:
                for idx, x1, y1, x2, y2, _style in self.arrows:
                    if lb.kind == "arrow" and lb.owner != idx and _poly_overlap(lb.poly, [(x1, y1), (x2, y2)]):
                        out.append((lb.text, str(idx)))
        return out


def _poly_overlap(p: list[tuple[float, float]], q: list[tuple[float, float]]) -> bool:
    """Separating-axis test for two convex polygons (a segment is a 2-point polygon)."""
    for poly in (p, q):
        n = len(poly)
        for k in range(n if n > 2 else 1):
            (x1, y1), (x2, y2) = poly[k], poly[(k + 1) % n]
            ax, ay = y1 - y2, x2 - x1
            pa = [ax * x + ay * y for x, y in p]
            qa = [ax * x + ay * y for x, y in q]
            if max(pa) <= min(qa) + 1e-6 or max(qa) <= min(pa) + 1e-6:
                return False
    return True


class _Grid:
    """Polygons bucketed by y, so a label only meets its neighbours (long diagrams stay fast)."""

    STEP = 60.0

    def __init__(self) -> None:
        self.cells: dict[int, list[tuple[float, float, float, float, int, list]]] = {}
        self.n = 0

    @staticmethod
    def _box(poly: list) -> tuple[float, float, float, float]:
        xs, ys = [x for x, _ in poly], [y for _, y in poly]
        return min(xs), min(ys), max(xs), max(ys)

    def add(self, poly: list, tag: int) -> None:
        x0, y0, x1, y1 = self._box(poly)
        for k in range(int(y0 // self.STEP), int(y1 // self.STEP) + 1):
            self.cells.setdefault(k, []).append((x0, y0, x1, y1, tag, poly))
        self.n += 1

    def hits(self, poly: list, skip: int | None = None) -> int:
        x0, y0, x1, y1 = self._box(poly)
        seen: set[int] = set()
        n = 0
        for k in range(int(y0 // self.STEP), int(y1 // self.STEP) + 1):
            for bx0, by0, bx1, by1, tag, other in self.cells.get(k, ()):
                if id(other) in seen or tag == skip or bx1 < x0 or x1 < bx0 or by1 < y0 or y1 < by0:
                    continue
                seen.add(id(other))
                if _poly_overlap(poly, other):
                    n += 1
        return n


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def layout_svg(conn: Connection, *, even: bool = False, full: bool = False) -> Layout:
    """Place everything; ``render_svg`` writes it out. Separate so tests can check geometry."""
    p = plan(conn, full=full)
    star = p.inferred == "some"
    t0 = conn.start
    texts = [len(blk.label if isinstance(blk, Fold) else p.labels[blk.index] + mark_suffix(blk)) * CW
             for blk in p.blocks]
    gap = max(max(texts, default=0) / 0.6 + 40, 380)
    sw = max([len(_state_name(c, star)) * CW for c in conn.states] + [12 * CW]) + 24
    time_w = 9 * CW + 16
    xa = time_w + sw
    xb = xa + gap
    width = xb + sw + 10
    y0 = 84
    scale = (SLANT / p.owd) if (p.owd > 0 and not even) else 0.0
    thr = gap_threshold(p.owd)

    # ticks: (time, key, kind, block, state)
    ticks: list[tuple] = []
    for b, blk in enumerate(p.blocks):
        if isinstance(blk, Fold):
            ticks.append((blk.t0, (blk.indexes[0], 0), "fold0", b, None))
            ticks.append((blk.t1, (blk.indexes[-1], 1), "fold1", b, None))
        else:
            ticks.append((send_time(blk), (blk.index, 0), "send", b, None))
            if blk.t_recv is not None:
                ticks.append((blk.t_recv, (blk.index, 1), "recv", b, None))
    base = sorted(ticks, key=lambda x: (x[0], x[1]))
    order: list[tuple] = []
    for tk in base:
        t, key, kind, b, _ = tk
        if kind in ("send", "fold0"):
            order += [(t, key, "state", b, c) for c in p.before.get(b, [])]
        order.append(tk)
        if kind in ("recv", "fold1") or (kind == "send" and p.blocks[b].t_recv is None):
            order += [(c.t if id(c) in p.late else t, key, "state", b, c) for c in p.after.get(b, [])]
    ys: dict[tuple[str, int], float] = {}
    state_y: list[tuple[StateChange, float]] = []
    breaks: list[tuple[float, float]] = []
    y, prev_t, last_send = float(y0), None, -1e9
    last_recv = {"A": -1e9, "B": -1e9}
    open_folds = 0
    lost_reach = -1e9                     # lowest point of a lost arrow (it stops part way)
    for t, _key, kind, b, c in order:
        if prev_t is not None and t > prev_t:
            dt = t - prev_t
            inc = dt * scale
            # no delay known (one side logged, never answered): no time scale, but a pause
            # still deserves its break
            if dt > thr and (inc > MAX_GAP or even or not scale) and not open_folds:
                y = max(y, lost_reach)        # the break goes below a lost arrow, not across it
                breaks.append((y + 4, dt))
                inc = max(min(inc, MAX_GAP), BREAK + FONT + 10)   # room for the next label above its arrow
            y += min(inc, MAX_GAP)
        prev_t = max(prev_t, t) if prev_t is not None else t
        open_folds += {"fold0": 1, "fold1": -1}.get(kind, 0)
        if kind in ("send", "fold0"):
            y = max(y, last_send + ROW)
            last_send = y
            ys[("s", b)] = y
            if kind == "send" and p.blocks[b].t_recv is None:
                # the stub, and room below it for its label (which follows the whole path)
                lost_reach = max(lost_reach, y + (SLANT if even else MIN_SLANT * 2) + FONT + 8)
        elif kind == "recv":
            y = max(y, ys[("s", b)] + (SLANT if even else MIN_SLANT), last_recv[p.blocks[b].receiver] + LANE_SEP)
            last_recv[p.blocks[b].receiver] = y
            ys[("r", b)] = y
        elif kind == "fold1":
            y = max(y, ys[("s", b)] + 2 * ROW)
            last_send = y
            ys[("r", b)] = y
        else:
            state_y.append((c, y))

    parts: list[str] = []
    labels: list[Label] = []
    arrows: list[tuple] = []
    obstacles: list[list[tuple[float, float]]] = []
    obstacle_tag: dict[int, int] = {}               # arrow number -> its obstacle's tag
    label_path: dict[int, tuple[float, float]] = {}  # lost arrow number -> where it would have ended
    crosses: list[list[tuple[float, float]]] = []    # the ✕ ending each lost arrow: no label on it
    x_of = {"A": xa, "B": xb}
    for b, blk in enumerate(p.blocks):
        y1 = ys[("s", b)]
        if isinstance(blk, Fold):
            y2 = ys[("r", b)]
            x1, x2 = x_of[blk.sender], x_of["B" if blk.sender == "A" else "A"]
            arrows.append((None, x1, y1, x2, y2, "fold"))
            continue
        x1, x2 = x_of[blk.sender], x_of[blk.receiver]
        style = next((m for m in _MARK_ORDER if m in blk.marks and m != "dup-ack"), "")
        if ("r", b) in ys:
            y2 = ys[("r", b)]
        else:                                     # lost: stop part way
            y2 = y1 + (SLANT if even else MIN_SLANT * 2)
            # its label goes where the whole arrow would have gone: a label as wide as the
            # short stub would crowd whatever meets its sender's lane at the same moment
            label_path[len(arrows)] = (x2, y2)
            x2, y2 = x1 + (x2 - x1) * 0.6, y1 + (y2 - y1) * 0.6
            crosses.append(_rect(x2 - 7, y2 - 7, x2 + 7, y2 + 7))     # the ✕ drawn there
        arrows.append((blk.index, x1, y1, x2, y2, style))
        obstacle_tag[len(arrows) - 1] = len(obstacles)
        obstacles.append([(x1, y1), (x2, y2)])

    # state labels first: they sit beside the lanes, in columns nothing else uses
    last_label = {"A": -1e9, "B": -1e9}
    for c, sy in state_y:
        name = _state_name(c, star)
        ly = max(sy + 4, last_label[c.side] + FONT + 3)
        last_label[c.side] = ly
        x = x_of[c.side]
        w = len(name) * CW
        tx, anchor = (x - 12, "end") if c.side == "A" else (x + 12, "start")
        x0 = tx - w if anchor == "end" else tx
        poly = _rect(x0, ly - FONT + 2, x0 + w, ly + 3)
        style = ' font-style="italic" fill="#1f618d"' if c.inferred else ' fill="#117a65"'
        tip = escape(f"{c.old} → {c.new}: {c.cause}" + (" (inferred)" if c.inferred else ""))
        svg = (f'<circle cx="{x:.1f}" cy="{sy:.1f}" r="3" fill="#117a65"/>'
               + (f'<line x1="{x:.1f}" y1="{sy:.1f}" x2="{tx:.1f}" y2="{ly - 4:.1f}" stroke="#aaa" stroke-width="0.8"/>'
                  if ly - 4 > sy + 2 else "")
               + f'<text x="{tx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" font-weight="bold"{style}>'
               f'<title>{tip}</title>{escape(name)}</text>')
        labels.append(Label("state", name, poly, svg))

    for b, blk in enumerate(p.blocks):             # departure times, in the left column
        t = blk.t0 if isinstance(blk, Fold) else send_time(blk)
        yy = ys[("s", b)] + 4
        txt = f"{t - t0:.6f}"
        labels.append(Label("time", txt, _rect(time_w - 8 - len(txt) * CW, yy - FONT + 2, time_w - 8, yy + 3),
                            f'<text x="{time_w - 8:.1f}" y="{yy:.1f}" text-anchor="end" fill="#888">{txt}</text>'))

    for c, sy in state_y:                          # a late state's own time (it follows a break)
        if id(c) in p.late:
            yy, txt = sy + 4, f"{c.t - t0:.6f}"
            labels.append(Label("time", txt, _rect(time_w - 8 - len(txt) * CW, yy - FONT + 2, time_w - 8, yy + 3),
                                f'<text x="{time_w - 8:.1f}" y="{yy:.1f}" text-anchor="end" fill="#888">{txt}</text>'))

    for by, dt in breaks:                          # "… 1.000 s …" between the lanes
        txt, yy = f"… {_secs(dt)} …", by + BREAK / 2 + 4
        w = len(txt) * CW
        labels.append(Label("break", txt, _rect((xa + xb - w) / 2, yy - FONT + 2, (xa + xb + w) / 2, yy + 3),
                            f'<text x="{(xa + xb) / 2:.1f}" y="{yy:.1f}" text-anchor="middle" fill="#888">'
                            f'{escape(txt)}</text>'))
    grid = _Grid()
    for lb in labels:
        grid.add(lb.poly, -1)
    for k, ob in enumerate(obstacles):
        grid.add(ob, k)
    for cross in crosses:
        grid.add(cross, -2)
    for k, ((idx, x1, y1, x2, y2, style), blk) in enumerate(zip(arrows, p.blocks)):
        text = blk.label if isinstance(blk, Fold) else p.labels[blk.index] + mark_suffix(blk)
        lx2, ly2 = label_path.get(k, (x2, y2))
        lab = _place_label(text, x1, y1, lx2, ly2, style, grid, obstacle_tag.get(k))
        lab.owner = idx
        labels.append(lab)
        grid.add(lab.poly, -1)

    height = max([y + 40] + [lb.poly[2][1] + 30 for lb in labels])
    legend = _legend(p, conn)
    height_total = height + 18 * len(legend) + 10
    parts.append(f'<text x="10" y="22" font-weight="bold">{escape(title(conn))}</text>')
    for side, x in (("A", xa), ("B", xb)):
        name = str(conn.endpoint(side))
        parts.append(f'<text x="{x:.1f}" y="52" text-anchor="middle" font-weight="bold">{escape(name)}</text>')
        parts.append(f'<line x1="{x:.1f}" y1="62" x2="{x:.1f}" y2="{height:.1f}" stroke="#999" stroke-width="2"/>')
    for by, dt in breaks:
        for x in (xa, xb):
            parts.append(f'<rect x="{x - 6:.1f}" y="{by:.1f}" width="12" height="{BREAK - 8}" fill="white"/>'
                         f'<path d="M{x - 6:.1f},{by + 3:.1f} l12,-6 M{x - 6:.1f},{by + BREAK - 5:.1f} l12,-6" '
                         f'stroke="#999" stroke-width="1.5"/>')

    for idx, x1, y1, x2, y2, style in arrows:
        color = COLORS.get(style, COLORS[""])
        if style == "fold":
            top, bot = min(y1, y2), max(y1, y2)
            parts.insert(0, f'<rect x="{min(x1, x2) + 4:.1f}" y="{top - 6:.1f}" width="{abs(x2 - x1) - 8:.1f}" '
                            f'height="{bot - top + 12:.1f}" fill="#d6eaf8" fill-opacity="0.6" rx="6"/>')
            parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
                         f'stroke-width="4" marker-end="url(#head-fold)"/>')
            continue
        dash = f' stroke-dasharray="{DASH[style]}"' if style in DASH else ""
        head = "" if style == "lost" else f' marker-end="url(#head-{style or "plain"})"'
        parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
                     f'stroke-width="1.6"{dash}{head}/>')
        if style in ("lost", "dropped"):
            cx, cy = (x2, y2) if style == "lost" else (x2 - (9 if x2 > x1 else -9), y2)
            parts.append(f'<path d="M{cx - 5:.1f},{cy - 5:.1f} l10,10 M{cx - 5:.1f},{cy + 5:.1f} l10,-10" '
                         f'stroke="{color}" stroke-width="2.2"/>')
    parts.extend(lb.svg for lb in labels)
    yl = height + 14
    for sample, text in legend:
        parts.append(sample.replace("{y}", f"{yl - 4:.1f}") +
                     f'<text x="54" y="{yl:.1f}" fill="#555">{escape(text)}</text>')
        yl += 18
    return Layout(width, height_total, xa, xb, arrows, labels, parts)


def _place_label(text: str, x1: float, y1: float, x2: float, y2: float, style: str, grid: _Grid,
                 own: int | None) -> Label:
    """Text along the arrow, above it; slid along the arrow until it overlaps nothing."""
    length = math.hypot(x2 - x1, y2 - y1)
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    if ux < 0:                                   # keep the text upright: read left to right
        ux, uy = -ux, -uy
    nx, ny = uy, -ux                             # "above" the line (towards smaller y)
    w = len(text) * CW
    best = None
    for off in (4, -FONT - 6):                   # above the line first, then below
        for f in (0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74, 0.18, 0.82):
            if f != 0.5 and abs(f - 0.5) * length + w / 2 > length / 2 - 6:
                continue                         # would run past the arrow's ends
            bx = x1 + (x2 - x1) * f + nx * off   # baseline centre
            by = y1 + (y2 - y1) * f + ny * off
            corners = [(bx + ux * du - nx * dv, by + uy * du - ny * dv)
                       for du, dv in ((-w / 2, 3), (w / 2, 3), (w / 2, -FONT + 1), (-w / 2, -FONT + 1))]
            hits = grid.hits(corners, skip=own)
            if best is None or hits < best[0]:
                best = (hits, bx, by, corners)
            if hits == 0:
                break
        if best is not None and best[0] == 0:
            break
    _, bx, by, corners = best
    angle = math.degrees(math.atan2(uy, ux))
    color = COLORS.get(style, COLORS[""])
    weight = ' font-weight="bold"' if style == "fold" else ""
    svg = (f'<text x="{bx:.1f}" y="{by:.1f}" text-anchor="middle" fill="{color}"{weight} '
           f'transform="rotate({angle:.2f} {bx:.1f} {by:.1f})">{escape(text)}</text>')
    return Label("arrow", text, corners, svg)


def _legend(p: Plan, conn: Connection) -> list[tuple[str, str]]:
    used = set().union(*(s.marks for s in conn.segments)) if conn.segments else set()
    if any(isinstance(b, Fold) for b in p.blocks):
        used.add("fold")
    out = []
    for m in ("retransmission", "duplicate", "out-of-order", "lost", "dropped", "fold"):
        if m in used:
            dash = f' stroke-dasharray="{DASH[m]}"' if m in DASH else ""
            sample = (f'<line x1="10" y1="{{y}}" x2="46" y2="{{y}}" stroke="{COLORS[m]}" '
                      f'stroke-width="{4 if m == "fold" else 1.6}"{dash}/>')
            out.append((sample, "folded data phase" if m == "fold" else MARK_TEXT[m]))
    for note in _footer(p):
        out.append(("", note))
    if any(s.estimated for s in conn.segments):
        out.append(("", "departure/arrival times partly estimated from the handshake"))
    return out


def render_svg(conn: Connection, *, even: bool = False, full: bool = False) -> str:
    """A standalone SVG document (UTF-8 text)."""
    lay = layout_svg(conn, even=even, full=full)
    markers = "".join(
        f'<marker id="head-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="{w}" markerHeight="{w}" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>'
        for name, color, w in [("plain", COLORS[""], 7)] + [(k, v, 7) for k, v in COLORS.items() if k and k != "fold"]
        + [("fold", COLORS["fold"], 4)])
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" height="{lay.height:.0f}" '
            f'viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" font-family="DejaVu Sans Mono, Menlo, Consolas, '
            f'monospace" font-size="{FONT}">\n<defs>{markers}</defs>\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(lay.parts) + "\n</svg>\n")


__all__ = ["plan", "Plan", "Fold", "segment_label", "render_text", "render_mermaid", "render_svg", "layout_svg",
           "Layout", "Label", "title"]
