"""What a connection tells the world.

Two kinds of records, both frozen dataclasses:

* **Application events** (``Connected``, ``DataReceived``, ``EndOfStream``, ``Reset``, ``TimedOut``,
  ``Closed``, ``StateChanged``, ...) are queued on the connection and pulled with ``next_event()``.
* **Trace records** (``SegmentIn``, ``SegmentOut``, ``TimerSet``, ``TimerFired``, ``Dropped``,
  ``RttSample``, ``CwndChanged``, ...) go to an optional ``log`` sink, a callable taking one record.
  ``synack.log.jsonl`` writes them as JSON lines; pictures and plots read that log.

``conn`` in every record is a ``ConnId`` naming the 4-tuple from the local side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from synack.tcp.states import State
from synack.wire.tcp import TcpSegment


@dataclass(frozen=True, slots=True)
class ConnId:
    """The 4-tuple, seen from this end. Addresses are printable strings ("192.0.2.2", "2001:db8::1")."""
    local_addr: str
    local_port: int
    remote_addr: str
    remote_port: int

    def __str__(self) -> str:
        def ep(a: str, p: int) -> str:
            return f"[{a}]:{p}" if ":" in a else f"{a}:{p}"
        return f"{ep(self.local_addr, self.local_port)}>{ep(self.remote_addr, self.remote_port)}"


# --- application events (pulled with next_event()) -------------------------------------------

@dataclass(frozen=True, slots=True)
class StateChanged:
    t: float
    conn: ConnId
    old: State
    new: State
    cause: str


@dataclass(frozen=True, slots=True)
class Connected:
    """The handshake completed: the connection reached ESTABLISHED (RFC 9293 §3.5)."""
    t: float
    conn: ConnId


@dataclass(frozen=True, slots=True)
class DataReceived:
    """In-order bytes are waiting: ``receive()`` returns them. ``urgent`` is set when the peer's
    urgent pointer marks data up to and including this point (RFC 9293 §3.8.5, MUST-31)."""
    t: float
    conn: ConnId
    nbytes: int
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The peer sent FIN and all data before it was received: ``receive()`` returns b"" after the
    buffered bytes (RFC 9293 §3.10.7.4, eighth step)."""
    t: float
    conn: ConnId


@dataclass(frozen=True, slots=True)
class Writable:
    """Send-buffer space opened after it had been full."""
    t: float
    conn: ConnId


@dataclass(frozen=True, slots=True)
class Reset:
    """The peer reset the connection ("connection reset by peer"), or refused it in SYN-SENT."""
    t: float
    conn: ConnId
    refused: bool = False


@dataclass(frozen=True, slots=True)
class TimedOut:
    """Retransmissions (R2), SYN retries or keep-alive probes were exhausted (RFC 9293 §3.8.3)."""
    t: float
    conn: ConnId
    reason: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection reached CLOSED and its TCB may be deleted."""
    t: float
    conn: ConnId


@dataclass(frozen=True, slots=True)
class SoftError:
    """An ICMP error reported for an established connection (RFC 1122 §4.2.3.9: soft)."""
    t: float
    conn: ConnId
    message: str


TcpEvent = StateChanged | Connected | DataReceived | EndOfStream | Writable | Reset | TimedOut | Closed | SoftError


# --- trace records (sent to the log sink) ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class SegmentOut:
    t: float
    conn: ConnId
    seg: TcpSegment
    retransmit: bool = False


@dataclass(frozen=True, slots=True)
class SegmentIn:
    t: float
    conn: ConnId
    seg: TcpSegment


@dataclass(frozen=True, slots=True)
class Dropped:
    """A received segment that was discarded, and the rule that discarded it."""
    t: float
    conn: ConnId
    seg: TcpSegment
    reason: str


@dataclass(frozen=True, slots=True)
class TimerSet:
    t: float
    conn: ConnId
    timer: str
    deadline: float


@dataclass(frozen=True, slots=True)
class TimerFired:
    t: float
    conn: ConnId
    timer: str


@dataclass(frozen=True, slots=True)
class DataDelivered:
    """Bytes handed to the application by ``receive()``."""
    t: float
    conn: ConnId
    nbytes: int


@dataclass(frozen=True, slots=True)
class RttSample:
    t: float
    conn: ConnId
    rtt: float
    srtt: float
    rttvar: float
    rto: float


@dataclass(frozen=True, slots=True)
class CwndChanged:
    t: float
    conn: ConnId
    cwnd: int
    ssthresh: int
    reason: str


LogSink = Optional[Callable[[object], None]]
