"""Packet dialogues: timers (RFC 9293 §3.8.4 keep-alive MUST-24..29, §3.8.6.3 delayed ACK MUST-40,
§3.10.8 timeouts, MUST-13 TIME-WAIT). Retransmission, persist and SYN timers have their own
dialogues in the open/data/flow files; this file holds the rest and the idle cases."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.errors import ConnectionTimedOut
from synack.tcp.events import TimedOut
from synack.tcp.states import State
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
S = State
KA = TcpConfig(keepalive=True)


def test_idle_connection_is_silent_forever():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.expect_nothing(until=10 * 86400.0)     # keep-alives default to off (MUST-25)
    assert d.conn.next_timer() is None


def test_keepalive_defaults():
    cfg = TcpConfig()
    assert cfg.keepalive is False
    assert cfg.keepalive_idle >= 7200.0      # MUST-28
    assert cfg.ack_delay < 0.5               # MUST-40


def test_keepalive_probe_after_two_hours_and_answer():
    d = Dialogue.established(iss=ISS, irs=IRS, config=KA)
    d.expect(".", seq=A - 1, ack=R, data=b"", at=7200.0)   # SEG.SEQ = SND.NXT - 1, no data
    d.peer(".", seq=R, ack=A)
    d.expect_nothing(until=7200.0 + 7199.0)
    d.expect(".", seq=A - 1, ack=R, at=14400.0)
    assert d.state is S.ESTABLISHED


def test_keepalive_gives_up_after_count():
    d = Dialogue.established(iss=ISS, irs=IRS, config=KA.copy(keepalive_count=3, keepalive_interval=75.0))
    d.expect(".", seq=A - 1, at=7200.0)
    d.expect(".", seq=A - 1, at=7275.0)
    d.expect(".", seq=A - 1, at=7350.0)
    d.expect("R", seq=A, at=7425.0)          # like Linux: RST, then "timed out"
    assert d.state is S.CLOSED
    assert any(isinstance(e, TimedOut) for e in d.events())
    with pytest.raises(ConnectionTimedOut):
        d.conn.send(b"x")


def test_keepalive_one_answer_resets_the_count():
    # MUST-29: a lost probe answer is no proof of a dead peer; any answer starts over
    d = Dialogue.established(iss=ISS, irs=IRS, config=KA.copy(keepalive_count=2))
    d.expect(".", seq=A - 1, at=7200.0)
    d.expect(".", seq=A - 1, at=7275.0)
    d.peer(".", seq=R, ack=A)
    d.expect(".", seq=A - 1, at=7275.0 + 7200.0)
    d.expect(".", seq=A - 1, at=7275.0 + 7275.0)
    assert d.state is S.ESTABLISHED


def test_keepalive_idle_counts_from_last_segment_received():
    d = Dialogue.established(iss=ISS, irs=IRS, config=KA)
    d.now = 5000.0
    d.peer(".", seq=R, ack=A)
    d.expect_nothing(until=12199.0)
    d.expect(".", seq=A - 1, at=12200.0)


def test_keepalive_not_sent_with_data_outstanding():
    # MUST-26: "only ... when no sent data is outstanding"
    d = Dialogue.established(iss=ISS, irs=IRS, config=KA.copy(keepalive_idle=10.0, keepalive_interval=5.0,
                                                               r2_retries=10))
    d.conn.send(b"unacked")
    for t in (0.0, 1.0, 3.0, 7.0, 15.0, 31.0):
        d.expect("P.", seq=A, data=b"unacked", at=t)
    d.peer(".", seq=R, ack=A + 7)
    d.expect(".", seq=A + 6, ack=R, at=d.now + 10.0)       # idle again: probe SND.NXT - 1


def test_keepalive_in_close_wait():
    d = Dialogue.in_state(S.CLOSE_WAIT, iss=ISS, irs=IRS, config=KA)
    d.expect(".", seq=A - 1, ack=R + 1, at=7200.0)


def test_delayed_ack_timer_value():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(ack_delay=0.2))
    d.now = 3.0
    d.peer("P.", seq=R, ack=A, data=b"x")
    d.expect_nothing(until=3.199)
    d.expect(".", ack=R + 1, at=3.2)
    d.expect_nothing(until=10.0)


def test_delayed_ack_not_restarted_by_more_data():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer("P.", seq=R, ack=A, data=b"a")
    d.now = 0.03
    d.peer("P.", seq=R + 1, ack=A, data=b"b")
    d.expect(".", ack=R + 2, at=0.04)


def test_pure_ack_is_not_acked():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer(".", seq=R, ack=A)
    d.expect_nothing(until=10.0)


def test_time_wait_uses_msl():
    d = Dialogue.in_state(S.TIME_WAIT, iss=ISS, irs=IRS, config=TcpConfig(msl=2.0))
    d.expect_nothing(until=3.99)
    assert d.state is S.TIME_WAIT
    d.advance(0.02)
    assert d.state is S.CLOSED
    assert d.conn.next_timer() is None


def test_user_timeout_gives_up_by_time():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(user_timeout=5.0))
    d.conn.send(b"x")
    d.expect("P.", seq=A, at=0.0)
    d.expect("P.", seq=A, at=1.0)
    d.expect("P.", seq=A, at=3.0)
    d.run_until(20.0)
    assert d.state is S.CLOSED
    assert any(isinstance(e, TimedOut) for e in d.events())


def test_no_timer_left_after_close():
    d = Dialogue.established(iss=ISS, irs=IRS, config=KA)
    d.conn.send(b"x")
    d.conn.abort(d.now)
    d.expect("R", seq=A)
    assert d.state is S.CLOSED
    assert d.conn.next_timer() is None


def test_giving_up_with_a_delayed_ack_due_at_the_same_time_leaves_nothing_to_send():
    # One handle_timer() call past both deadlines: the RTO gives up (R2 = 0 here) and the
    # connection is CLOSED; the delayed ACK, due too, must not make a segment owed afterwards
    # (that was a spin: next_timer() <= now with nothing to send; found by test_no_spin).
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(r2_retries=0))
    d.conn.send(b"x")
    d.expect("P.", seq=A, ack=R, data=b"x")
    d.peer("P.", seq=R, ack=A, data=b"y")        # our ACK of it is delayed (40 ms)
    d.conn.handle_timer(5.0)                      # the RTO (1 s) and the delayed ACK are both due
    assert d.conn.state is State.CLOSED
    assert d.conn.segments_to_send(5.0) == [] and d.conn.next_timer() is None
