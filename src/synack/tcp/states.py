"""The 11 TCP states and every legal move between them, as data (RFC 9293 §3.3.2, Figure 5).

Segment processing in ``connection.py`` decides *what happened* (a ``Cause``); this table decides
*where that leads*. ``TcpConnection._advance()`` is the only writer of the state, and it goes
through ``advance()`` here, so a bug shows as ``IllegalTransition`` naming (state, cause) at once.
The state diagram in docs/ is drawn from this table (``python -m synack.pictures.fsm``).
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"

    synchronized: bool          # ESTABLISHED and later (set on each member below)

    def __str__(self) -> str:
        return self.value


# ``state.synchronized``: ESTABLISHED and later, both ISNs are known (RFC 9293 §3.5.2, group 3).
# A plain attribute of each member rather than a property: it is asked several times a segment.
for _s in State:
    _s.synchronized = _s not in (State.CLOSED, State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED)
del _s


class Cause(enum.Enum):
    """What happened, in the words of Figure 5's edge labels."""
    PASSIVE_OPEN = "passive OPEN"
    ACTIVE_OPEN = "active OPEN / snd SYN"
    RCV_SYN = "rcv SYN / snd SYN,ACK"
    RCV_SYN_ACK = "rcv SYN,ACK / snd ACK"
    RCV_ACK_OF_SYN = "rcv ACK of SYN"
    CLOSE = "CLOSE / snd FIN"
    RCV_FIN = "rcv FIN / snd ACK"
    RCV_ACK_OF_FIN = "rcv ACK of FIN"
    RCV_FIN_ACK_OF_FIN = "rcv FIN + ACK of FIN / snd ACK"
    TIMEOUT_2MSL = "Timeout=2MSL"
    RCV_RST = "rcv RST"
    ABORT = "ABORT / snd RST"
    TIMEOUT = "user timeout / retries exhausted"
    CLOSE_UNSYNCED = "CLOSE (delete TCB)"
    ICMP_HARD_ERROR = "ICMP hard error"


S, C = State, Cause

TRANSITIONS: dict[tuple[State, Cause], State] = {
    # opening (RFC 9293 §3.5)
    (S.CLOSED, C.PASSIVE_OPEN): S.LISTEN,
    (S.CLOSED, C.ACTIVE_OPEN): S.SYN_SENT,
    (S.LISTEN, C.RCV_SYN): S.SYN_RECEIVED,
    (S.LISTEN, C.CLOSE_UNSYNCED): S.CLOSED,
    (S.SYN_SENT, C.RCV_SYN_ACK): S.ESTABLISHED,
    (S.SYN_SENT, C.RCV_SYN): S.SYN_RECEIVED,             # simultaneous open (§3.5, Figure 8)
    (S.SYN_SENT, C.CLOSE_UNSYNCED): S.CLOSED,
    (S.SYN_SENT, C.ICMP_HARD_ERROR): S.CLOSED,          # RFC 1122 §4.2.3.9, RFC 5927 §5.2
    (S.SYN_RECEIVED, C.RCV_ACK_OF_SYN): S.ESTABLISHED,
    (S.SYN_RECEIVED, C.CLOSE): S.FIN_WAIT_1,
    (S.SYN_RECEIVED, C.RCV_FIN): S.CLOSE_WAIT,          # ACK of SYN and FIN in one segment
    # closing (§3.6)
    (S.ESTABLISHED, C.CLOSE): S.FIN_WAIT_1,
    (S.ESTABLISHED, C.RCV_FIN): S.CLOSE_WAIT,
    (S.FIN_WAIT_1, C.RCV_ACK_OF_FIN): S.FIN_WAIT_2,
    (S.FIN_WAIT_1, C.RCV_FIN): S.CLOSING,               # simultaneous close (§3.6, Figure 13)
    (S.FIN_WAIT_1, C.RCV_FIN_ACK_OF_FIN): S.TIME_WAIT,
    (S.FIN_WAIT_2, C.RCV_FIN): S.TIME_WAIT,
    (S.CLOSE_WAIT, C.CLOSE): S.LAST_ACK,
    (S.CLOSING, C.RCV_ACK_OF_FIN): S.TIME_WAIT,
    (S.LAST_ACK, C.RCV_ACK_OF_FIN): S.CLOSED,
    (S.TIME_WAIT, C.TIMEOUT_2MSL): S.CLOSED,
}

# RST received, ABORT and giving up lead to CLOSED from every state that has a TCB (§3.10.7, §3.10.5).
for _s in State:
    if _s is not S.CLOSED:
        TRANSITIONS.setdefault((_s, C.ABORT), S.CLOSED)
        TRANSITIONS.setdefault((_s, C.TIMEOUT), S.CLOSED)
        if _s is not S.LISTEN:
            TRANSITIONS.setdefault((_s, C.RCV_RST), S.CLOSED)
del _s


class IllegalTransition(Exception):
    """A (state, cause) pair that Figure 5 has no edge for."""


# The same table keyed by the members' names: ``Enum.__hash__`` is a Python function, and every
# transition (six or more per connection) would hash a state and a cause through it.
_BY_NAME: dict[tuple[str, str], State] = {(s._name_, c._name_): d for (s, c), d in TRANSITIONS.items()}


def advance(state: State, cause: Cause) -> State:
    try:
        return _BY_NAME[state._name_, cause._name_]
    except KeyError:
        raise IllegalTransition(f"{cause.name} is not allowed in {state.name}") from None
