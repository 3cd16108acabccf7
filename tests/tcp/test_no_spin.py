"""Property: random user calls, peer segments and time steps against one connection never break
the connection's contracts (STYLE §3, §4, §5):

* user calls raise nothing but ``LocalError`` subclasses; segment arrival, timers and output raise
  nothing at all (in particular no ``IllegalTransition``: a peer can never force an illegal move);
* no spin: after ``segments_to_send(now)``, ``next_timer()`` is None or later than ``now``, unless
  another ``segments_to_send(now)`` really produces output (a connection still owing segments);
* ``rto``, ``persist`` and ``time_wait`` are never armed together;
* in CLOSED no timer is left armed;
* ``next_timer()`` is the earliest deadline of ``_due()``, the one predicate.

Only the public API is used: ``info()`` ([STATUS]) to aim segments near the live sequence numbers.
"""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synack.tcp.config import TcpConfig
from synack.tcp.errors import LocalError
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.wire.seq import MASK
from synack.wire.tcp import Flags, Mss, Nop, Sack, SackPermitted, TcpSegment, Timestamps, UnknownOption, WindowScale

ISS, IRS = 2**32 - 3, 2**32 - 5
OFFSETS = [-(2**31), -70000, -1000, -100, -2, -1, 0, 0, 0, 1, 2, 5, 100, 536, 1460, 65535, 70000]
DTS = [0.0, 0.0, 0.001, 0.039, 0.04, 0.2, 1.0, 3.0, 30.0, 75.0, 7200.0]

configs = st.builds(
    TcpConfig,
    rcv_buf=st.sampled_from([1000, 4000, 262144]),
    snd_buf=st.sampled_from([100, 5000, 262144]),
    nagle=st.booleans(),
    ack_delay=st.sampled_from([None, 0.04]),
    rfc5961=st.booleans(),
    keepalive=st.booleans(),
    keepalive_idle=st.sampled_from([5.0, 7200.0]),
    keepalive_interval=st.sampled_from([1.0, 75.0]),
    keepalive_count=st.sampled_from([1, 3]),
    syn_retries=st.sampled_from([0, 2, 6]),
    synack_retries=st.sampled_from([0, 2]),
    r2_retries=st.sampled_from([1, 3, 15]),
    msl=st.sampled_from([0.5, 30.0]),
    challenge_ack_limit=st.sampled_from([1, 1000]),
    persist_max=st.sampled_from([2.0, 60.0]),
    timestamps=st.booleans(),
    sack=st.booleans(),
    window_scaling=st.booleans(),
)

options = st.sampled_from([
    (), (), (),
    (Mss(100),), (Mss(1460), Nop(), WindowScale(7)), (SackPermitted(),),
    (Nop(), Nop(), Timestamps(1000, 0)), (UnknownOption(99, b"xy"),),
    (Nop(), Nop(), Sack(((1, 5),))),
])

segment = st.tuples(
    st.just("seg"),
    st.one_of(st.sampled_from([0x10, 0x10, 0x18, 0x11, 0x19, 0x04, 0x14, 0x02, 0x12, 0x30]),
              st.integers(0, 63)),        # FIN SYN RST PSH ACK URG: the usual ones, or any mix
    st.sampled_from(OFFSETS),             # seq relative to RCV.NXT
    st.sampled_from(["una", "nxt", "nxt+1", "old", "far"]),
    st.sampled_from([0, 0, 1, 10, 536, 1500]),
    st.sampled_from([0, 1, 100, 1000, 65535]),
    options,
    st.sampled_from([0, 1, 5]),
)
call = st.tuples(st.sampled_from(["connect", "listen", "send", "send_urgent", "receive", "shutdown", "close",
                                  "abort"]),
                 st.sampled_from([1, 10, 600, 3000]))
step = st.tuples(st.just("advance"), st.sampled_from(DTS + ["timer", "timer"]))
actions = st.lists(st.one_of(segment, segment, call, step, step), min_size=1, max_size=60)


def check_output(conn, now):
    """Pull everything owed at ``now``; then nothing may be due at or before ``now``."""
    conn.segments_to_send(now)
    for _ in range(5):
        nt = conn.next_timer()
        if nt is None or nt > now:
            break
        out = conn.segments_to_send(now)
        assert out, f"spin: next_timer() = {nt} <= now = {now} but nothing to send ({conn.info().timers})"
    nt = conn.next_timer()
    assert nt is None or nt > now, f"spin: next_timer() = {nt} <= now = {now}"
    due = conn._due()                    # next_timer() is the earliest of THE predicate's deadlines
    assert nt == (min(due.values()) if due else None), (nt, due)
    armed = set(conn.info().timers)
    assert len(armed & {"rto", "persist", "time_wait"}) <= 1, armed
    if conn.state is State.CLOSED:
        assert nt is None and not armed, armed


@settings(max_examples=int(os.environ.get("NOSPIN_EXAMPLES", "400")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.sampled_from(list(State)), config=configs, acts=actions)
def test_no_spin_no_illegal_transition(start, config, acts):
    d = Dialogue.in_state(start, iss=ISS, irs=IRS, config=config)
    conn, now = d.conn, d.now
    check_output(conn, now)
    for act in acts:
        kind = act[0]
        if kind == "seg":
            _, bits, off, ackc, dlen, win, opts, up = act
            info = conn.info()
            base = info.rcv_nxt if conn.state not in (State.CLOSED, State.LISTEN, State.SYN_SENT) else IRS
            ack = {"una": info.snd_una, "nxt": info.snd_nxt, "nxt+1": info.snd_nxt + 1,
                   "old": info.snd_una - 70000, "far": info.snd_una + 2**31}[ackc]
            seg = TcpSegment(80, 40000, (base + off) & MASK, ack & MASK, Flags(bits), win, up, opts,
                             bytes(dlen))
            conn.receive_segment(seg, now)
        elif kind == "advance":
            dt = act[1]
            if dt == "timer":
                nt = conn.next_timer()
                now = max(now, nt) if nt is not None else now + 1.0
            else:
                now += dt
            if (nt := conn.next_timer()) is not None and nt <= now:
                conn.handle_timer(now)
        else:
            name, n = act
            try:
                if name == "connect":
                    conn.connect(now)
                elif name == "listen":
                    conn.listen(now)
                elif name == "send":
                    conn.send(b"s" * n)
                elif name == "send_urgent":
                    conn.send(b"u" * n, urgent=True)
                elif name == "receive":
                    conn.receive(n)
                elif name == "shutdown":
                    conn.shutdown_write(now)
                elif name == "close":
                    conn.close(now)
                else:
                    conn.abort(now)
            except LocalError:
                pass
        check_output(conn, now)
        while conn.next_event() is not None:
            pass
