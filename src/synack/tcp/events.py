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
from synack.wire.frozen import fast_init
from synack.wire.tcp import TcpSegment


@fast_init                # made for every connection (synack.wire.frozen)
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

@fast_init                # made for every connection (synack.wire.frozen)
@dataclass(frozen=True, slots=True)
class StateChanged:
    t: float
    conn: ConnId
    old: State
    new: State
    cause: str


@fast_init                # made for every connection (synack.wire.frozen)
@dataclass(frozen=True, slots=True)
class Connected:
    """The handshake completed: the connection reached ESTABLISHED (RFC 9293 §3.5)."""
    t: float
    conn: ConnId


@fast_init                # made for every connection (synack.wire.frozen)
@dataclass(frozen=True, slots=True)
class DataReceived:
    """In-order bytes are waiting: ``receive()`` returns them. ``urgent`` is set when the peer's
    urgent pointer marks data up to and including this point (RFC 9293 §3.8.5, MUST-31)."""
    t: float
    conn: ConnId
    nbytes: int
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class UrgentData:
    """The peer's urgent pointer (RCV.UP) appeared, or advanced, ahead of what the application
    has read: RFC 9293 §3.8.5 (MUST-32), whether or not the urgent data itself can be taken yet
    (it may lie beyond a hole, or come at a zero window). ``pointer``: RCV.UP, the sequence
    number after the last urgent octet (MUST-62); ``pending``: octets up to it not yet read,
    received or not (``TcpConnection.urgent_pending`` tells the same later, MUST-33)."""
    t: float
    conn: ConnId
    pointer: int
    pending: int


@fast_init                # made for every connection (synack.wire.frozen)
@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The peer sent FIN and all data before it was received: ``receive()`` returns b"" after the
    buffered bytes (RFC 9293 §3.10.7.4, eighth step)."""
    t: float
    conn: ConnId


@fast_init                # made for every connection (synack.wire.frozen)
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


@fast_init                # made for every connection (synack.wire.frozen)
@dataclass(frozen=True, slots=True)
class Closed:
    """The connection reached CLOSED and its TCB may be deleted."""
    t: float
    conn: ConnId


@dataclass(frozen=True, slots=True)
class SoftError:
    """A soft error (RFC 9293 §3.9.1.8, MUST-47): an ICMP error that does not abort the
    connection (§3.9.2.2; RFC 1122 §4.2.3.9), or retransmissions reaching R1 (§3.8.3, SHLD-9)."""
    t: float
    conn: ConnId
    message: str


TcpEvent = (StateChanged | Connected | DataReceived | UrgentData | EndOfStream | Writable | Reset | TimedOut | Closed
            | SoftError)


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


@dataclass(frozen=True, slots=True)
class RtoBackoff:
    """The retransmission timer expired and RTO doubled (RFC 6298 §5.5). ``rto`` in seconds,
    ``backoffs``: consecutive doublings since the last RTT sample."""
    t: float
    conn: ConnId
    rto: float
    backoffs: int


@dataclass(frozen=True, slots=True)
class RecoveryEntered:
    """Loss recovery began. ``kind``: "sack" (RFC 6675 + RFC 6937 PRR), "newreno" (RFC 6582) or
    "rto" (after a retransmission timeout); ``trigger``: what detected the loss ("dupacks",
    "rack", "rack-timer", "timeout"); ``recover``: the recovery point (sequence number one past
    HighData); ``flight``: FlightSize (bytes) when it began."""
    t: float
    conn: ConnId
    kind: str
    trigger: str
    recover: int
    flight: int
    cwnd: int
    ssthresh: int


@dataclass(frozen=True, slots=True)
class RecoveryExited:
    """Loss recovery ended: the recovery point was cumulatively acknowledged."""
    t: float
    conn: ConnId
    kind: str
    cwnd: int
    ssthresh: int


@dataclass(frozen=True, slots=True)
class PipeChanged:
    """The sender's in-flight estimate during SACK recovery (RFC 6675 pipe), the window PRR
    allows (RFC 6937, bytes) and its counters ``delivered`` (prr_delivered) and ``sent``
    (prr_out)."""
    t: float
    conn: ConnId
    pipe: int
    cwnd: int
    delivered: int
    sent: int


@dataclass(frozen=True, slots=True)
class ScoreboardChanged:
    """The SACK scoreboard changed (RFC 6675 §3). ``reason``: "sack" (new SACKed octets),
    "dsack" (a D-SACK block arrived, RFC 2883), "reneged" (SACKed data at SND.UNA: the receiver
    discarded it, RFC 2018 §8) or "rto" (SACK bits dropped after a timeout, RFC 2018 §5);
    ``ranges``: the SACKed sequence ranges "a:b c:d"; ``sacked``, ``lost``, ``pipe`` in bytes."""
    t: float
    conn: ConnId
    reason: str
    ranges: str
    sacked: int
    lost: int
    pipe: int


@dataclass(frozen=True, slots=True)
class SegmentLost:
    """A sent segment was deemed lost. ``detector``: "rack" (RFC 8985 time threshold),
    "rack-timer", "sack" (RFC 6675 IsLost), "dupthresh" (RFC 6675 §5 step 4), "rto" or "pmtu"."""
    t: float
    conn: ConnId
    seq: int
    length: int
    detector: str


@dataclass(frozen=True, slots=True)
class LossProbe:
    """A tail loss probe left (RFC 8985 §7.3): new data, or the last segment again
    (``retransmit``)."""
    t: float
    conn: ConnId
    seq: int
    length: int
    retransmit: bool


@dataclass(frozen=True, slots=True)
class EcnSignal:
    """ECN (RFC 3168 §6.1). ``signal``: "negotiated" (ECN-setup SYN and SYN-ACK exchanged,
    §6.1.1), "ce" (data arrived with CE: ECE on our segments from now, §6.1.3), "cwr" (a CWR
    arrived: ECE stops), "ece" (an ECE arrived: the window was reduced, §6.1.2)."""
    t: float
    conn: ConnId
    signal: str


@dataclass(frozen=True, slots=True)
class OptionError:
    """A received option with a value the RFC says to log and correct, and what was used
    instead (RFC 7323 §2.3: a Window Scale shift.cnt above 14 "SHOULD log the error but MUST
    use 14")."""
    t: float
    conn: ConnId
    option: str
    received: int
    used: int


LogSink = Optional[Callable[[object], None]]
