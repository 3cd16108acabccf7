"""A passive tracker: both endpoints' RFC 9293 states inferred from the packets alone.

A capture shows what crossed the wire at one vantage point, not what either end did with it, so
every state here is an inference (``StateChange.inferred``). The rules are Figure 5's edges
(RFC 9293 §3.3.2), applied to each endpoint as if it had *sent* each of its segments and
*received* each of its peer's, in time order:

* send SYN from CLOSED: SYN-SENT; send FIN: FIN-WAIT-1 (or LAST-ACK from CLOSE-WAIT); send RST
  from a synchronized state: CLOSED (ABORT).
* A SYN received in CLOSED is kept pending until the receiver answers it: SYN,ACK means it was
  listening (LISTEN, then SYN-RECEIVED at the SYN's arrival); a bare SYN means a simultaneous
  open (§3.5, Figure 8); RST means nobody was listening (it stays CLOSED).
* receive SYN,ACK acking our SYN: ESTABLISHED; receive the ACK of our SYN: ESTABLISHED;
  receive a FIN: CLOSE-WAIT, CLOSING (simultaneous close, §3.6 Figure 13), or TIME-WAIT;
  receive the ACK of our FIN: FIN-WAIT-2, TIME-WAIT or CLOSED; receive an acceptable RST: CLOSED
  (back to LISTEN from a passive SYN-RECEIVED, §3.10.7.4).

When arrival times are unknown (a capture, or one side's log), two facts from the peer's own
segments sharpen them: a SYN or FIN counts as delivered in its *last* copy sent before the peer
first acknowledged it (earlier copies were lost), and it cannot have arrived before the peer's
last segment that did not acknowledge it yet. That second bound is what tells a simultaneous
close (the peer's FIN does not ack ours: CLOSING) from an ordinary one.

TIME-WAIT's 2MSL timeout is not visible on the wire and is not inferred.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from synack.tcp.states import State
from synack.wire.seq import seq_add, seq_gt
from synack.wire.tcp import Flags

CLOSED, LISTEN, SYN_SENT, SYN_RCVD = State.CLOSED.value, State.LISTEN.value, State.SYN_SENT.value, State.SYN_RECEIVED.value
ESTAB, FIN_WAIT_1, FIN_WAIT_2 = State.ESTABLISHED.value, State.FIN_WAIT_1.value, State.FIN_WAIT_2.value
CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT = (State.CLOSE_WAIT.value, State.CLOSING.value, State.LAST_ACK.value,
                                            State.TIME_WAIT.value)
_SYNCHRONIZED = {ESTAB, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT}


@dataclass(frozen=True, slots=True)
class StateChange:
    """One endpoint moved from ``old`` to ``new`` at time ``t`` (seconds, the input's clock).

    ``side``: "A" or "B". ``cause``: Figure 5's words ("rcv SYN,ACK / snd ACK"). ``inferred``:
    guessed by this tracker rather than logged by the endpoint. ``anchor``: the segment event it
    belongs to, ``("before", "send", i)`` (e.g. SYN-SENT just before segment ``i`` leaves) or
    ``("after", "recv", i)`` (e.g. ESTABLISHED just after segment ``i`` arrives), or None.
    """
    t: float
    side: str
    old: str
    new: str
    cause: str
    inferred: bool = False
    anchor: tuple[str, str, int] | None = None


class TrackedSegment(Protocol):
    """What the tracker reads from a segment: the model's ``Segment`` has all of it."""
    sender: str
    t: float
    t_sent: float | None
    t_recv: float | None
    estimated: bool
    flags: Flags
    raw_seq: int
    raw_ack: int
    len: int


def _other(side: str) -> str:
    return "B" if side == "A" else "A"


def _seg_len(s: TrackedSegment) -> int:
    return s.len + (1 if s.flags & Flags.SYN else 0) + (1 if s.flags & Flags.FIN else 0)


def _acks(s: TrackedSegment, pos: int) -> bool:
    """``s`` acknowledges the sequence number ``pos`` (its ACK field is past it)."""
    return bool(s.flags & Flags.ACK) and seq_gt(s.raw_ack, pos)


def _send_time(s: TrackedSegment) -> float:
    return s.t_sent if s.t_sent is not None else s.t


def delivery(segments: Sequence[TrackedSegment]) -> dict[int, tuple[float, tuple]]:
    """When each segment reached its receiver, as ``{index: (time, sort key)}``; a segment
    missing from the result is taken as never delivered (lost, or a SYN/FIN copy the peer's
    acknowledgements show was not the one that got through). The sort key orders events that
    share a time; see the module docstring for the rules."""
    out: dict[int, tuple[float, tuple]] = {}
    by_sender: dict[str, list[int]] = {"A": [], "B": []}
    for i, s in enumerate(segments):
        by_sender.setdefault(s.sender, []).append(i)
    control_copies: dict[tuple[str, int, int], list[int]] = {}   # (sender, flag, seq pos) -> copies
    for i, s in enumerate(segments):
        if not s.estimated:
            if s.t_recv is not None:
                out[i] = (s.t_recv, (i, 1))
            continue
        t = s.t_recv if s.t_recv is not None else s.t
        out[i] = (t, (i, 1))
        if s.flags & Flags.SYN:           # a SYN,ACK after our SYN (simultaneous open) is no copy of it
            control_copies.setdefault((s.sender, 1 + 2 * bool(s.flags & Flags.ACK), s.raw_seq), []).append(i)
        if s.flags & Flags.FIN:
            control_copies.setdefault((s.sender, 2, seq_add(s.raw_seq, s.len + (1 if s.flags & Flags.SYN else 0))),
                                      []).append(i)
    for (sender, _kind, pos), copies in control_copies.items():
        peer = by_sender.get(_other(sender), [])
        first_ack = next((j for j in peer if _acks(segments[j], pos)
                          and _send_time(segments[j]) >= _send_time(segments[copies[0]])), None)
        if first_ack is None:
            continue                      # never acknowledged: assume the first copy got there
        t_ack = _send_time(segments[first_ack])
        before = [c for c in copies if _send_time(segments[c]) <= t_ack and c < first_ack] or copies[:1]
        chosen = before[-1]
        for c in copies:
            if c != chosen and c in out and segments[c].estimated:
                del out[c]
        # It arrived after the peer's last segment that did not acknowledge it yet.
        t0 = _send_time(segments[chosen])
        blind = [j for j in peer if j < first_ack and _send_time(segments[j]) >= t0
                 and not _acks(segments[j], pos)]
        if blind:
            j = blind[-1]
            tj = _send_time(segments[j])
            t, key = out[chosen]
            if (tj, (j, 2)) > (t, key):
                out[chosen] = (tj, (j, 2))
    return out


class _End:
    __slots__ = ("state", "iss", "syn_end", "fin_pos", "peer_fin_seen", "passive", "pending_syn")

    def __init__(self) -> None:
        self.state = CLOSED
        self.iss: int | None = None
        self.syn_end: int | None = None        # SND.NXT after our SYN: ISS+1, plus any data on it (TFO)
        self.fin_pos: int | None = None        # sequence number of our FIN
        self.peer_fin_seen = False
        self.passive = False
        self.pending_syn: tuple[float, int] | None = None   # (arrival time, segment index)


def infer_states(segments: Sequence[TrackedSegment]) -> tuple[list[StateChange], dict[int, float]]:
    """Infer both endpoints' state changes from ``segments`` (in the order first seen).

    Returns the changes, sorted by time, and the arrival time the tracker settled on for each
    delivered segment (``{index: time}``), which a picture can use where the input had none."""
    ends = {"A": _End(), "B": _End()}
    changes: list[StateChange] = []
    arrivals = delivery(segments)

    def move(side: str, new: str, cause: str, t: float, anchor: tuple[str, str, int]) -> None:
        e = ends[side]
        if e.state != new:
            changes.append(StateChange(t, side, e.state, new, cause, True, anchor))
            e.state = new

    events: list[tuple[float, tuple, str, int]] = []
    for i, s in enumerate(segments):
        events.append((_send_time(s), (i, 0), "send", i))
        if i in arrivals:
            t, key = arrivals[i]
            events.append((t, key, "recv", i))
    events.sort(key=lambda e: (e[0], e[1]))

    if segments and not segments[0].flags & (Flags.SYN | Flags.RST):
        first = segments[0]
        for side in ("A", "B"):
            move(side, ESTAB, "already open when the capture began", _send_time(first), ("before", "send", 0))

    for t, _key, kind, i in events:
        s = segments[i]
        if kind == "send":
            _on_send(ends[s.sender], s, i, t, lambda new, cause, t=t, i=i, side=s.sender:
                     move(side, new, cause, t, ("before", "send", i)), move, s.sender)
        else:
            r = _other(s.sender)
            _on_recv(ends[r], s, i, t, lambda new, cause, t=t, i=i, side=r:
                     move(side, new, cause, t, ("after", "recv", i)))
    changes.sort(key=lambda c: c.t)
    return changes, {i: t for i, (t, _k) in arrivals.items()}


def _on_send(e: _End, s: TrackedSegment, i: int, t: float, go, move, side: str) -> None:
    f = s.flags
    if f & Flags.RST:
        if e.state in _SYNCHRONIZED or e.state in (SYN_SENT, SYN_RCVD):
            go(CLOSED, "ABORT / snd RST")
        e.pending_syn = None              # a RST answering a SYN: nobody was listening
        return
    if f & Flags.SYN:
        if e.iss is None:
            e.iss = s.raw_seq
        if s.raw_seq == e.iss:
            end = seq_add(e.iss, 1 + s.len)
            if e.syn_end is None or seq_gt(end, e.syn_end):
                e.syn_end = end
        if e.state == CLOSED:
            pending = e.pending_syn
            if f & Flags.ACK and pending is not None:
                ta, j = pending
                move(side, LISTEN, "passive OPEN", ta, ("before", "recv", j))
                move(side, SYN_RCVD, "rcv SYN / snd SYN,ACK", ta, ("after", "recv", j))
                e.passive = True
            else:
                go(SYN_SENT, "active OPEN / snd SYN")
                if pending is not None:   # its SYN crossed ours: simultaneous open (§3.5, Figure 8)
                    go(SYN_RCVD, "rcv SYN / snd SYN,ACK")
            e.pending_syn = None
    if f & Flags.FIN:
        if e.fin_pos is None:
            e.fin_pos = seq_add(s.raw_seq, s.len + (1 if f & Flags.SYN else 0))
        if e.state in (ESTAB, SYN_RCVD):
            go(FIN_WAIT_1, "CLOSE / snd FIN")
        elif e.state == CLOSE_WAIT:
            go(LAST_ACK, "CLOSE / snd FIN")


def _acks_our_syn(e: _End, s: TrackedSegment) -> bool:
    """SYN-SENT's acceptable ACK, SND.UNA < SEG.ACK =< SND.NXT (RFC 9293 §3.10.7.3): ISS+1, or
    up to the end of data sent on the SYN (TCP Fast Open, RFC 7413)."""
    return e.iss is not None and e.syn_end is not None and seq_gt(s.raw_ack, e.iss) \
        and not seq_gt(s.raw_ack, e.syn_end)


def _on_recv(e: _End, s: TrackedSegment, i: int, t: float, go) -> None:
    f = s.flags
    if f & Flags.RST:
        if e.state == SYN_SENT:
            if f & Flags.ACK and _acks_our_syn(e, s):
                go(CLOSED, "rcv RST")         # connection refused (§3.10.7.3)
        elif e.state == SYN_RCVD and e.passive:
            go(LISTEN, "rcv RST")             # back to LISTEN (§3.10.7.4, second check)
        elif e.state not in (CLOSED, LISTEN):
            go(CLOSED, "rcv RST")
        return
    if f & Flags.SYN and not f & Flags.ACK:
        if e.state == CLOSED:
            e.pending_syn = (t, i)
        elif e.state == SYN_SENT:
            go(SYN_RCVD, "rcv SYN / snd SYN,ACK")
        return
    if f & Flags.SYN and f & Flags.ACK:
        if e.state == SYN_SENT and _acks_our_syn(e, s):
            go(ESTAB, "rcv SYN,ACK / snd ACK")
        elif e.state == SYN_RCVD and e.iss is not None and _acks(s, e.iss):
            go(ESTAB, "rcv ACK of SYN")
        return
    fin_acked = e.fin_pos is not None and _acks(s, e.fin_pos)
    if f & Flags.ACK:
        if e.state == SYN_RCVD and e.iss is not None and _acks(s, e.iss):
            go(ESTAB, "rcv ACK of SYN")
        if fin_acked:
            if e.state == FIN_WAIT_1 and not f & Flags.FIN:
                go(FIN_WAIT_2, "rcv ACK of FIN")
            elif e.state == CLOSING:
                go(TIME_WAIT, "rcv ACK of FIN")
            elif e.state == LAST_ACK:
                go(CLOSED, "rcv ACK of FIN")
    if f & Flags.FIN and not e.peer_fin_seen and e.state not in (CLOSED, LISTEN, SYN_SENT):
        e.peer_fin_seen = True
        if e.state in (ESTAB, SYN_RCVD):
            go(CLOSE_WAIT, "rcv FIN / snd ACK")
        elif e.state == FIN_WAIT_1:
            if fin_acked:
                go(TIME_WAIT, "rcv FIN + ACK of FIN / snd ACK")
            else:
                go(CLOSING, "rcv FIN / snd ACK")
        elif e.state == FIN_WAIT_2:
            go(TIME_WAIT, "rcv FIN / snd ACK")


__all__ = ["StateChange", "infer_states", "delivery"]
