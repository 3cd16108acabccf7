"""TIME-WAIT as a compact record (``synack.stack.timewait``), packet by packet.

A server closes first and ends in TIME-WAIT; the test then lets go of the ``TcpConnection`` and
checks that nothing holds it any more (``live_tcb() is None``), so every answer below comes from
the record alone: RFC 9293 §3.10.7.4 for TIME-WAIT, RFC 5961 challenge ACKs, RFC 7323 PAWS,
RFC 6191 reuse and the 2 MSL timeout (§3.6, MUST-13; §3.10.8). Both sequence spaces wrap: the
peer's ISN is 2**32 - 3 and it sends 5 bytes before its FIN, and the test starts at a virtual
time at which the stack's ISN (RFC 6528: a hash plus 4 µs ticks) is 2**32 - 10.
"""

from __future__ import annotations

import gc

import pytest
from ipaddress import ip_address

from synack.stack.host import Stack, StackConfig
from synack.tcp.config import TcpConfig
from synack.tcp.events import Dropped, SegmentOut, StateChanged, TimerFired
from synack.tcp.states import State
from synack.wire.packet import build_tcp_packet, parse_packet
from synack.wire.tcp import Flags, Mss, TcpSegment, Timestamps, parse_tcp

S4, P4 = "192.0.2.2", "192.0.2.1"
M = 2 ** 32
PISN = M - 3
ISS = M - 10
SYN, ACK, FIN, RST, PSH = Flags.SYN, Flags.ACK, Flags.FIN, Flags.RST, Flags.PSH
KEY = (ip_address(S4), 80, ip_address(P4), 45000)
MSL = 30.0


class World:
    """A stack serving port 80, a hand-built peer at 45000, and the log of the stack."""

    def __init__(self, ts: bool = True, **cfg) -> None:
        self.log: list = []
        self.st = Stack([f"{S4}/24"], secret=b"time-wait-test", config=TcpConfig(ack_delay=None, msl=MSL, **cfg),
                        stack_config=StackConfig(syncookies="off"), log=self.log.append)
        self.lst = self.st.listen(80)
        self.ts = ts
        h = self.st.isn.isn(0.0, ip_address(S4).packed, 80, ip_address(P4).packed, 45000)
        self.t0 = ((ISS - h) % M) / 250_000 + 1e-7          # our ISN is ISS at t0 (4 µs ticks)
        self.tsval = 1000

    def send(self, flags, seq, ack, data=b"", t=0.0, tsval=None, ts=True) -> None:
        if tsval is None:
            self.tsval += 1
            tsval = self.tsval
        opts = (Timestamps(tsval, self.last_ts),) if self.ts and ts else ()
        seg = TcpSegment(45000, 80, seq % M, ack % M, flags, 65535, 0, opts, data)
        self.st.receive_packet(build_tcp_packet(P4, S4, seg), self.t0 + t)

    def out(self, t=0.0) -> list[TcpSegment]:
        segs = []
        for b in self.st.packets_to_send(self.t0 + t):
            p = parse_packet(b)
            s = parse_tcp(p.payload, p.src.packed, p.dst.packed)
            if s.timestamps is not None:
                self.last_ts = s.timestamps.val
            segs.append(s)
        return segs

    def to_time_wait(self, hold: bool = False) -> None:
        """Handshake, 5 bytes from the peer, our close (FIN), the peer's ACK and FIN: TIME-WAIT.
        ``hold``: keep the TcpConnection (``self.conn``), so that it answers behind the record."""
        self.last_ts = 0
        opts = (Mss(1460), Timestamps(self.tsval, 0)) if self.ts else (Mss(1460),)
        self.st.receive_packet(build_tcp_packet(P4, S4, TcpSegment(45000, 80, PISN, 0, SYN, 65535, 0, opts)),
                               self.t0)
        [sa] = self.out()
        assert sa.flags == SYN | ACK and sa.seq == ISS and sa.ack == (PISN + 1) % M
        self.send(ACK | PSH, PISN + 1, ISS + 1, b"hello")           # 5 bytes across the wrap
        conn = self.st.accept(self.lst)
        assert conn.receive(100) == b"hello"
        conn.close(self.t0 + 0.1)
        self.st.touch(conn)
        [fin] = self.out(0.1)
        assert fin.flags == FIN | ACK and fin.seq == (ISS + 1) % M and fin.ack == (PISN + 6) % M
        self.send(ACK | FIN, PISN + 6, ISS + 2, t=0.2)
        [ack] = self.out(0.2)
        assert ack.flags == ACK and ack.seq == (ISS + 2) % M and ack.ack == (PISN + 7) % M
        assert conn.state is State.TIME_WAIT and KEY not in self.st.conns
        while self.st.next_event() is not None:
            pass
        self.conn = conn if hold else None
        del conn
        self.out(2.0)           # stale timer entries of the TCB pass; then nothing holds it
        gc.collect()
        self.tw = self.st.time_wait[KEY]
        assert (self.tw.live_tcb() is not None) == hold
        assert self.tw.expiry == self.t0 + 0.2 + 2 * MSL
        self.rcv_nxt, self.snd_nxt = (PISN + 7) % M, (ISS + 2) % M     # 4 and 2**32 - 8


def expect_ack(segs, w: World) -> TcpSegment:
    assert len(segs) == 1, [s.summary() for s in segs]
    s = segs[0]
    assert s.flags == ACK and s.seq == w.snd_nxt and s.ack == w.rcv_nxt, s.summary()
    return s


def test_retransmitted_fin_is_acked_again_and_restarts_2msl():
    w = World()
    w.to_time_wait()
    w.send(ACK | FIN, PISN + 6, ISS + 2, t=10.0)             # our ACK of the FIN was lost
    ack = expect_ack(w.out(10.0), w)
    # the echo is still the first FIN's TSval: an unacceptable segment leaves TS.Recent alone
    # (RFC 7323 §5.3: R3 comes after the acceptability test), as the TCB does
    assert ack.timestamps.ecr == w.tsval - 1
    assert w.tw.expiry == w.t0 + 10.0 + 2 * MSL              # MUST-13: the 2 MSL start again
    assert w.st.next_timer() == w.t0 + 10.0 + 2 * MSL
    assert w.out(0.2 + 2 * MSL + 1) == [] and KEY in w.st.time_wait   # the old deadline passes
    assert w.out(10.0 + 2 * MSL) == [] and KEY not in w.st.time_wait


def test_expiry_removes_the_record_and_logs_closed():
    w = World()
    w.to_time_wait()
    assert w.out(0.2 + 2 * MSL - 0.001) == [] and KEY in w.st.time_wait
    assert w.out(0.2 + 2 * MSL) == []
    assert KEY not in w.st.time_wait and w.st.next_timer() is None
    t = w.t0 + 0.2 + 2 * MSL
    assert [type(r) for r in w.log[-2:]] == [TimerFired, StateChanged]
    assert w.log[-1].old is State.TIME_WAIT and w.log[-1].new is State.CLOSED and w.log[-1].t == t
    # the 4-tuple is free: an ACK now gets the RST of "no TCB" (§3.10.7.1)
    w.send(ACK, PISN + 7, ISS + 2, t=0.2 + 2 * MSL + 1)
    [rst] = w.out(0.2 + 2 * MSL + 1)
    assert rst.flags == RST and rst.seq == (ISS + 2) % M


def test_rst_at_rcv_nxt_closes():
    w = World()
    w.to_time_wait()
    w.send(RST, PISN + 7, 0, t=5.0, ts=False)
    assert w.out(5.0) == [] and KEY not in w.st.time_wait
    assert isinstance(w.log[-1], StateChanged) and w.log[-1].cause == "rcv RST"


def test_rst_in_window_elsewhere_gets_a_challenge_ack():
    w = World()
    w.to_time_wait()
    w.send(RST, PISN + 7 + 100, 0, t=5.0, ts=False)           # in the window, not at RCV.NXT
    expect_ack(w.out(5.0), w)                                 # RFC 5961 §3.2
    assert KEY in w.st.time_wait


def test_rst_outside_the_window_is_dropped_silently():
    w = World()
    w.to_time_wait()
    w.send(RST, PISN + 7 + 10_000_000, 0, t=5.0, ts=False)
    assert w.out(5.0) == [] and KEY in w.st.time_wait


def test_new_syn_with_newer_timestamp_opens_a_new_incarnation():
    w = World()
    w.to_time_wait()
    # an ISN below the old RCV.NXT: only the newer timestamp lets it in (RFC 6191 §2)
    w.st.receive_packet(build_tcp_packet(P4, S4, TcpSegment(45000, 80, PISN - 100, 0, SYN, 65535, 0,
                                                            (Mss(1460), Timestamps(w.tsval + 50, 0)))), w.t0 + 5.0)
    [sa] = w.out(5.0)
    assert sa.flags == SYN | ACK and sa.ack == (PISN - 99) % M
    assert KEY not in w.st.time_wait and w.st.conns[KEY].state is State.SYN_RECEIVED


def test_new_syn_with_old_timestamp_gets_a_challenge_ack():
    w = World()
    w.to_time_wait()
    w.st.receive_packet(build_tcp_packet(P4, S4, TcpSegment(45000, 80, PISN + 1000, 0, SYN, 65535, 0,
                                                            (Mss(1460), Timestamps(w.tsval - 500, 0)))), w.t0 + 5.0)
    # PAWS (RFC 7323 §5.3 R1) drops it with an ACK before anything else
    expect_ack(w.out(5.0), w)
    assert KEY in w.st.time_wait and KEY not in w.st.conns
    assert isinstance(w.log[-1], Dropped) and "PAWS" in w.log[-1].reason


def test_new_syn_without_timestamps_needs_a_higher_isn():
    w = World(ts=False)
    w.to_time_wait()
    w.send(SYN, PISN + 7 - 50, 0, t=5.0)                      # below RCV.NXT: an old SYN
    expect_ack(w.out(5.0), w)                                 # unacceptable: ACK (first step)
    assert KEY in w.st.time_wait
    w.send(SYN, PISN + 7 + 1000, 0, t=6.0)                    # beyond the old connection's end
    [sa] = w.out(6.0)
    assert sa.flags == SYN | ACK and sa.ack == (PISN + 1008) % M
    assert KEY not in w.st.time_wait and w.st.conns[KEY].state is State.SYN_RECEIVED


def test_stray_data_is_acked_and_dropped():
    w = World()
    w.to_time_wait()
    w.send(ACK | PSH, PISN + 1, ISS + 2, b"hello", t=3.0)     # an old duplicate of the data
    expect_ack(w.out(3.0), w)
    w.send(ACK | PSH, PISN + 7 + 10_000_000, ISS + 2, b"far", t=3.5)   # beyond the window
    expect_ack(w.out(3.5), w)
    assert w.tw.expiry == w.t0 + 0.2 + 2 * MSL                # neither restarts the 2 MSL
    assert [r.reason for r in w.log if isinstance(r, Dropped)][-2:] == ["unacceptable sequence number"] * 2


def test_text_in_the_window_is_ignored():
    w = World()
    w.to_time_wait()
    w.send(ACK | PSH, PISN + 7, ISS + 2, b"late", t=3.0)      # seventh step: the FIN came already
    assert w.out(3.0) == [] and KEY in w.st.time_wait
    assert isinstance(w.log[-1], Dropped) and "text ignored" in w.log[-1].reason


def test_pure_ack_is_absorbed():
    w = World()
    w.to_time_wait()
    w.send(ACK, PISN + 7, ISS + 2, t=3.0)
    assert w.out(3.0) == [] and w.tw.expiry == w.t0 + 0.2 + 2 * MSL


def test_ack_of_unsent_data_is_answered_with_an_ack():
    w = World()
    w.to_time_wait()
    w.send(ACK, PISN + 7, ISS + 2 + 500, t=3.0)
    expect_ack(w.out(3.0), w)


def test_segment_without_timestamp_is_dropped_when_they_are_in_use():
    w = World()
    w.to_time_wait()
    w.send(ACK | FIN, PISN + 6, ISS + 2, t=3.0, ts=False)     # RFC 7323 §3.2
    assert w.out(3.0) == [] and w.tw.expiry == w.t0 + 0.2 + 2 * MSL


def test_a_held_tcb_answers_for_itself_and_reaches_closed():
    """While something holds the TcpConnection, the record hands it every segment and its
    deadline: the TCB behaves as it always did and reaches CLOSED at 2 MSL."""
    w = World()
    w.last_ts = 0
    w.st.receive_packet(build_tcp_packet(P4, S4, TcpSegment(45000, 80, PISN, 0, SYN, 65535, 0,
                                                            (Mss(1460), Timestamps(w.tsval, 0)))), w.t0)
    w.out()
    w.send(ACK, PISN + 1, ISS + 1)
    conn = w.st.accept(w.lst)
    conn.close(w.t0 + 0.1)
    w.st.touch(conn)
    w.out(0.1)
    w.send(ACK | FIN, PISN + 1, ISS + 2, t=0.2)
    w.out(0.2)
    tw = w.st.time_wait[KEY]
    assert tw.live_tcb() is conn and conn.state is State.TIME_WAIT
    w.send(ACK | FIN, PISN + 1, ISS + 2, t=10.0)              # a retransmitted FIN, via the TCB
    [ack] = w.out(10.0)
    assert ack.flags == ACK and ack.ack == (PISN + 2) % M
    assert conn.timers.time_wait == tw.expiry == w.t0 + 10.0 + 2 * MSL
    assert any(isinstance(r, SegmentOut) and r.seg.ack == ack.ack for r in w.log[-3:])
    w.out(10.0 + 2 * MSL)
    assert conn.state is State.CLOSED and KEY not in w.st.time_wait


PROBES = {
    "retransmitted FIN": dict(flags=ACK | FIN, seq=PISN + 6, ack=ISS + 2),
    "FIN at RCV.NXT": dict(flags=ACK | FIN, seq=PISN + 7, ack=ISS + 2),
    "old data": dict(flags=ACK | PSH, seq=PISN + 1, ack=ISS + 2, data=b"hello"),
    "data in window": dict(flags=ACK | PSH, seq=PISN + 7, ack=ISS + 2, data=b"late"),
    "data beyond window": dict(flags=ACK | PSH, seq=PISN + 7 + 10_000_000, ack=ISS + 2, data=b"far"),
    "pure ACK": dict(flags=ACK, seq=PISN + 7, ack=ISS + 2),
    "ACK of unsent": dict(flags=ACK, seq=PISN + 7, ack=ISS + 502),
    "ACK far below": dict(flags=ACK, seq=PISN + 7, ack=ISS + 2 - 2**30),
    "RST at RCV.NXT": dict(flags=RST, seq=PISN + 7, ack=0, ts=False),
    "RST in window": dict(flags=RST, seq=PISN + 107, ack=0, ts=False),
    "old SYN": dict(flags=SYN, seq=PISN - 50, ack=0, tsval=1),
    "SYN in window, old TS": dict(flags=SYN, seq=PISN + 107, ack=0, tsval=1),
    "no timestamp": dict(flags=ACK | FIN, seq=PISN + 6, ack=ISS + 2, ts=False),
    "PAWS": dict(flags=ACK, seq=PISN + 7, ack=ISS + 2, tsval=5),
}


@pytest.mark.parametrize("probe", list(PROBES), ids=list(PROBES))
@pytest.mark.parametrize("rfc5961", [True, False], ids=["rfc5961", "rfc793"])
def test_the_record_answers_byte_for_byte_as_the_tcb(probe, rfc5961):
    """Differential: the same segment at the same time to a stack whose TCB is held (it answers)
    and to one whose record answers alone; what goes out, and whether TIME-WAIT stays, agree."""
    got = []
    for hold in (True, False):
        w = World(rfc5961=rfc5961)
        w.to_time_wait(hold=hold)
        p = dict(PROBES[probe])
        w.send(p.pop("flags"), p.pop("seq"), p.pop("ack"), t=7.0, **p)
        got.append(([bytes(b) for b in w.st.packets_to_send(w.t0 + 7.0)], KEY in w.st.time_wait,
                    w.st.next_timer()))
    assert got[0] == got[1]


def test_abort_of_a_held_tcb_in_time_wait_deletes_it():
    """§3.10.5: ABORT in TIME-WAIT deletes the TCB; the record goes with it, so the next
    segment for the 4-tuple meets no connection (§3.10.7.1: RST)."""
    w = World()
    w.to_time_wait(hold=True)
    w.conn.abort(w.t0 + 5.0)
    w.st.touch(w.conn)
    assert w.out(5.0) == [] and w.conn.state is State.CLOSED
    w.send(ACK, PISN + 7, ISS + 2, t=6.0)
    [rst] = w.out(6.0)
    assert rst.flags == RST and KEY not in w.st.time_wait


def test_ss_lists_time_wait_records():
    from synack.control import connection_rows, format_ss
    w = World()
    w.to_time_wait()
    [row] = connection_rows(w.st)
    assert row["state"] == "TIME-WAIT" and row["local"] == "192.0.2.2:80" and row["peer"] == "192.0.2.1:45000"
    assert row["timers"] == {"time_wait": round(w.t0 + 0.2 + 2 * MSL, 3)}
    text = format_ss({"connections": [row]})
    assert "TIME-WAIT" in text and "192.0.2.1:45000" in text and "time_wait," in text


def test_touch_says_when_a_record_stands_in_for_the_tcb():
    # The asyncio adapter wakes only when touch() says the stack will look at the connection:
    # a held TCB in TIME-WAIT, its record answering for it, is not looked at (close again sends
    # nothing), a live connection is.
    w = World()
    w.to_time_wait(hold=True)
    assert w.st.touch(w.conn) is False
    w.conn.close(w.t0 + 3.0)                                 # a second close: nothing to send
    assert w.st.touch(w.conn) is False and w.out(3.0) == []
    w.send(SYN, PISN + 1000, 0, t=4.0, tsval=w.tsval + 100)  # a new incarnation (RFC 6191)
    [sa] = w.out(4.0)
    assert sa.flags == SYN | ACK
    assert w.st.touch(w.st.conns[KEY]) is True
