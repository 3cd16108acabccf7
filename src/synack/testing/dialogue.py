"""Packet dialogues: put a connection in a state, feed one segment, expect exactly these
segments (or silence), then the state and the events. Time is virtual: ``Dialogue.now``.

    d = Dialogue.established(iss=2**32 - 3, irs=2**32 - 5)
    d.peer("P.", seq=d.irs + 1, ack=d.iss + 1, data=b"hello")
    d.expect(".", seq=d.iss + 1, ack=d.irs + 6)

Flags are written as packetdrill writes them: S . F R P U E W (``A`` is accepted for ACK).
"""

from __future__ import annotations

from collections import deque

from synack.tcp.config import TcpConfig
from synack.tcp.connection import TcpConnection
from synack.tcp.events import ConnId
from synack.tcp.states import State
from synack.wire.seq import MASK
from synack.wire.tcp import Flags, Nop, Sack, TcpSegment

_LETTERS = {"S": Flags.SYN, ".": Flags.ACK, "A": Flags.ACK, "F": Flags.FIN, "R": Flags.RST,
            "P": Flags.PSH, "U": Flags.URG, "E": Flags.ECE, "W": Flags.CWR}

LOCAL = ("192.0.2.2", 40000)
REMOTE = ("192.0.2.1", 80)


def parse_flags(s: str) -> Flags:
    f = Flags(0)
    for ch in s.replace(" ", ""):
        if ch not in _LETTERS:
            raise ValueError(f"unknown flag letter {ch!r} in {s!r}")
        f |= _LETTERS[ch]
    return f


def sack_option(*blocks: tuple[int, int]) -> tuple:
    """The options of a segment carrying a SACK option (RFC 2018 §3) with these blocks, given as
    (left edge, right edge) sequence numbers that may run past 2^32: NOP, NOP, SACK."""
    return (Nop(), Nop(), Sack(tuple((a & MASK, b & MASK) for a, b in blocks)))


class DialogueMismatch(AssertionError):
    pass


class Dialogue:
    def __init__(self, *, iss: int = 2**32 - 3, config: TcpConfig | None = None, log=None,
                 local=LOCAL, remote=REMOTE, now: float = 0.0) -> None:
        self.now = now
        self.id = ConnId(local[0], local[1], remote[0], remote[1])
        self.conn = TcpConnection(self.id, iss, config if config is not None else TcpConfig(), log=log)
        self.iss = iss & MASK
        self.irs = 0
        self.sent: deque[TcpSegment] = deque()     # segments the connection sent, not yet expected
        self.history: list[tuple[float, str, TcpSegment]] = []
        self.all_events: list = []
        self._ecn_out: dict[int, int] = {}        # id(segment sent) -> its IP ECN field

    # ---- building states ----
    @classmethod
    def established(cls, *, iss: int = 2**32 - 3, irs: int = 2**32 - 5, config: TcpConfig | None = None,
                    peer_options: tuple = (), window: int = 65535, rtt: float = 0.0, **kw) -> "Dialogue":
        """Active open completed: SYN out, SYN-ACK in ``rtt`` seconds later (the handshake's RTT
        sample), ACK out; events drained."""
        d = cls(iss=iss, config=config, **kw)
        d.irs = irs & MASK
        d.conn.connect(d.now)
        d.expect("S", seq=d.iss)
        d.now += rtt
        d.peer("S.", seq=d.irs, ack=d.iss + 1, window=window, options=peer_options)
        d.expect(".", seq=d.iss + 1, ack=d.irs + 1)
        assert d.conn.state is State.ESTABLISHED, d.conn.state
        d.events()
        return d

    @classmethod
    def syn_received(cls, *, iss: int = 2**32 - 3, irs: int = 2**32 - 5, config: TcpConfig | None = None,
                     peer_options: tuple = (), window: int = 65535, **kw) -> "Dialogue":
        """Passive open: LISTEN, SYN in, SYN-ACK out."""
        d = cls(iss=iss, config=config, **kw)
        d.irs = irs & MASK
        d.conn.listen(d.now)
        d.peer("S", seq=d.irs, window=window, options=peer_options)
        d.expect("S.", seq=d.iss, ack=d.irs + 1)
        d.events()
        return d

    @classmethod
    def accepted(cls, **kw) -> "Dialogue":
        """Passive open completed: ... and the peer's ACK in."""
        window = kw.get("window", 65535)
        d = cls.syn_received(**kw)
        d.peer(".", seq=d.irs + 1, ack=d.iss + 1, window=window)
        assert d.conn.state is State.ESTABLISHED, d.conn.state
        d.events()
        return d

    @classmethod
    def in_state(cls, state: State, **kw) -> "Dialogue":
        """A connection brought into ``state`` by the shortest packet dialogue, events drained.
        Synchronized states start from an active open (``established``); the FIN exchanges are
        the ones of RFC 9293 §3.6, Figures 12 and 13 (with ISS/IRS as given)."""
        S = State
        if state is S.CLOSED:
            return cls(**{k: v for k, v in kw.items() if k not in ("irs", "peer_options", "window")})
        if state is S.LISTEN:
            d = cls(**{k: v for k, v in kw.items() if k not in ("irs", "peer_options", "window")})
            d.conn.listen(d.now)
            d.events()
            return d
        if state is S.SYN_SENT:
            d = cls(**{k: v for k, v in kw.items() if k not in ("irs", "peer_options", "window")})
            d.irs = kw.get("irs", 2**32 - 5) & MASK
            d.conn.connect(d.now)
            d.expect("S", seq=d.iss)
            d.events()
            return d
        if state is S.SYN_RECEIVED:
            return cls.syn_received(**kw)
        d = cls.established(**kw)
        a, r = d.iss + 1, d.irs + 1
        if state in (S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.TIME_WAIT):
            d.conn.shutdown_write(d.now)
            d.expect("F.", seq=a, ack=r)
            if state is S.FIN_WAIT_2 or state is S.TIME_WAIT:
                d.peer(".", seq=r, ack=a + 1)
            if state is S.TIME_WAIT:
                d.peer("F.", seq=r, ack=a + 1)
                d.expect(".", seq=a + 1, ack=r + 1)
            elif state is S.CLOSING:
                d.peer("F.", seq=r, ack=a)
                d.expect(".", seq=a + 1, ack=r + 1)
        elif state in (S.CLOSE_WAIT, S.LAST_ACK):
            d.peer("F.", seq=r, ack=a)
            d.expect(".", seq=a, ack=r + 1)
            if state is S.LAST_ACK:
                d.conn.shutdown_write(d.now)
                d.expect("F.", seq=a, ack=r + 1)
        assert d.conn.state is state, (d.conn.state, state)
        d.events()
        return d

    # ---- the dialogue ----
    def peer(self, flags: str, *, seq: int, ack: int = 0, data: bytes = b"", window: int = 65535,
             options: tuple = (), urgent: int = 0, ecn: int = 0) -> None:
        """The peer sends one segment now; ``ecn``: the ECN field of its IP header (3 = CE)."""
        f = parse_flags(flags)
        seg = TcpSegment(self.id.remote_port, self.id.local_port, seq & MASK, ack & MASK, f, window,
                         urgent, tuple(options), bytes(data))
        self.history.append((self.now, "<", seg))
        self._collect()
        self.conn.receive_segment(seg, self.now, ecn=ecn)
        self._collect()

    def _collect(self) -> None:
        for s in self.conn.segments_to_send(self.now):
            self.history.append((self.now, ">", s))
            self.sent.append(s)
            self._ecn_out[id(s)] = self.conn.ecn_codepoint(s)

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds pass, firing timers on the way; what is sent meanwhile is kept."""
        self.run_until(self.now + dt)

    def run_until(self, t: float) -> None:
        self._collect()
        while (nt := self.conn.next_timer()) is not None and nt <= t:
            self.now = max(self.now, nt)
            self._collect()
            if self.conn.next_timer() == nt and not self.sent:
                break
        self.now = max(self.now, t)
        self._collect()

    def expect(self, flags: str, *, seq: int | None = None, ack: int | None = None, data: bytes | None = None,
               length: int | None = None, window: int | None = None, options: tuple | None = None,
               at: float | None = None, within: float = 1e-6, urgent: int | None = None,
               ecn: int | None = None) -> TcpSegment:
        """The connection sends exactly this next. With ``at``, time may pass until then
        (timers fire) and the segment must leave at ``at`` (within ``within``). ``ecn``: the
        ECN field its IP header must carry (0 Not-ECT, 2 ECT(0))."""
        self._collect()
        if not self.sent:
            nt = self.conn.next_timer()
            while not self.sent and nt is not None and (at is None or nt <= at + within):
                self.now = max(self.now, nt)
                self._collect()
                nt2 = self.conn.next_timer()
                if nt2 == nt and not self.sent:
                    break
                nt = nt2
        if not self.sent:
            raise DialogueMismatch(f"expected {flags} seq={seq} ack={ack}, but nothing was sent"
                                   f" (now={self.now}, next timer={self.conn.next_timer()}, state={self.conn.state})\n"
                                   + self.transcript())
        seg = self.sent.popleft()
        problems = []
        if seg.flags != parse_flags(flags):
            problems.append(f"flags {seg.flags.short()} != {parse_flags(flags).short()}")
        if seq is not None and seg.seq != seq & MASK:
            problems.append(f"seq {seg.seq} != {seq & MASK}")
        if ack is not None and seg.ack != ack & MASK:
            problems.append(f"ack {seg.ack} != {ack & MASK}")
        if data is not None and seg.payload != data:
            problems.append(f"data {seg.payload[:40]!r}({len(seg.payload)}) != {data[:40]!r}({len(data)})")
        if length is not None and len(seg.payload) != length:
            problems.append(f"length {len(seg.payload)} != {length}")
        if window is not None and seg.window != window:
            problems.append(f"window {seg.window} != {window}")
        if options is not None and tuple(seg.options) != tuple(options):
            problems.append(f"options {seg.options} != {tuple(options)}")
        if urgent is not None and seg.urgent != urgent:
            problems.append(f"urgent {seg.urgent} != {urgent}")
        if ecn is not None and self._ecn_out.get(id(seg)) != ecn:
            problems.append(f"IP ECN field {self._ecn_out.get(id(seg))} != {ecn}")
        if at is not None and abs(self.now - at) > within:
            problems.append(f"sent at {self.now} instead of {at}")
        if problems:
            raise DialogueMismatch("; ".join(problems) + f"\n  got: {seg.summary()}\n" + self.transcript())
        return seg

    def expect_nothing(self, until: float | None = None) -> None:
        """Silence now, and (with ``until``) through every timer up to that time."""
        self._collect()
        if self.sent:
            raise DialogueMismatch(f"expected silence, got {self.sent[0].summary()}\n" + self.transcript())
        if until is not None:
            self.run_until(until)
            if self.sent:
                raise DialogueMismatch(f"expected silence until {until}, got {self.sent[0].summary()}"
                                       f" at {self.now}\n" + self.transcript())

    def events(self) -> list:
        out = []
        while (e := self.conn.next_event()) is not None:
            out.append(e)
        self.all_events.extend(out)
        return out

    def event_types(self) -> list[str]:
        return [type(e).__name__ for e in self.events()]

    @property
    def state(self) -> State:
        return self.conn.state

    def transcript(self) -> str:
        return "\n".join(f"  {t:10.6f} {d} {s.summary()}" for t, d, s in self.history[-20:])
