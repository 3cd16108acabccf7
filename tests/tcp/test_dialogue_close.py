"""Packet dialogues: closing (RFC 9293 §3.6, Figures 12 and 13; the FIN-WAIT, CLOSE-WAIT, CLOSING,
LAST-ACK and TIME-WAIT parts of §3.10.7.4; §3.10.8 TIME-WAIT timeout, MUST-13)."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.errors import BrokenPipe, ConnectionReset
from synack.tcp.events import Closed, EndOfStream, Reset
from synack.tcp.states import State
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
S = State
NOACK = TcpConfig(ack_delay=None)


def types(d):
    return [type(e).__name__ for e in d.events()]


# ---------------------------------------------------------------- active close (Figure 12)

def test_active_close_full_sequence_and_time_wait():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.conn.close(d.now)
    d.expect("F.", seq=A, ack=R)
    assert d.state is S.FIN_WAIT_1
    d.peer(".", seq=R, ack=A + 1)
    d.expect_nothing()
    assert d.state is S.FIN_WAIT_2
    d.peer("F.", seq=R, ack=A + 1)
    d.expect(".", seq=A + 1, ack=R + 1)
    assert d.state is S.TIME_WAIT
    assert "EndOfStream" in types(d)
    d.expect_nothing(until=59.999)       # 2 * MSL = 60 s (MUST-13)
    assert d.state is S.TIME_WAIT
    d.advance(0.002)
    assert d.state is S.CLOSED
    assert "Closed" in types(d)
    assert d.conn.next_timer() is None


def test_fin_and_ack_of_fin_together_fin_wait_1_to_time_wait():
    d = Dialogue.in_state(S.FIN_WAIT_1, iss=ISS, irs=IRS)
    d.peer("F.", seq=R, ack=A + 1)
    d.expect(".", seq=A + 1, ack=R + 1)
    assert d.state is S.TIME_WAIT


def test_fin_wait_1_fin_retransmitted_with_backoff():
    d = Dialogue.in_state(S.FIN_WAIT_1, iss=ISS, irs=IRS)
    d.expect("F.", seq=A, ack=R, at=1.0)
    d.expect("F.", seq=A, ack=R, at=3.0)
    d.expect("F.", seq=A, ack=R, at=7.0)
    d.peer(".", seq=R, ack=A + 1)
    assert d.state is S.FIN_WAIT_2
    d.expect_nothing(until=1000.0)       # FIN-WAIT-2 waits for the peer (no orphan timeout here)


def test_fin_wait_1_gives_up_after_r2():
    d = Dialogue.in_state(S.FIN_WAIT_1, iss=ISS, irs=IRS, config=TcpConfig(r2_retries=2))
    d.expect("F.", seq=A, at=1.0)
    d.expect("F.", seq=A, at=3.0)
    d.expect_nothing(until=6.99)
    d.advance(0.02)
    assert d.state is S.CLOSED
    assert "TimedOut" in types(d)


def test_fin_wait_1_old_ack_keeps_state():
    d = Dialogue.in_state(S.FIN_WAIT_1, iss=ISS, irs=IRS)
    d.peer(".", seq=R, ack=A)            # acknowledges nothing new
    d.expect_nothing()
    assert d.state is S.FIN_WAIT_1


def test_fin_wait_1_ack_above_snd_nxt():
    d = Dialogue.in_state(S.FIN_WAIT_1, iss=ISS, irs=IRS)
    d.peer(".", seq=R, ack=A + 2)
    d.expect(".", seq=A + 1, ack=R)      # "send an ACK, drop the segment, and return"
    assert d.state is S.FIN_WAIT_1


def test_fin_after_data_queued():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.conn.send(b"last words")
    d.conn.shutdown_write(d.now)
    d.expect("FP.", seq=A, ack=R, data=b"last words")
    d.peer(".", seq=R, ack=A + 5)        # half of it
    assert d.state is S.FIN_WAIT_1
    d.peer(".", seq=R, ack=A + 11)
    assert d.state is S.FIN_WAIT_2


def test_half_close_peer_keeps_sending_for_long():
    # FIN-WAIT-2 goes on receiving (§3.6.1 half-closed connections); data flows one way for ages
    d = Dialogue.in_state(S.FIN_WAIT_2, iss=ISS, irs=IRS, config=NOACK)
    seq = R
    for i in range(200):
        d.now += 30.0
        chunk = bytes([i % 256]) * 500
        d.peer("P.", seq=seq, ack=A + 1, data=chunk)
        seq += 500
        d.expect(".", seq=A + 1, ack=seq)
        assert d.conn.receive(1000) == chunk
    assert d.state is S.FIN_WAIT_2
    d.peer("F.", seq=seq, ack=A + 1)
    d.expect(".", seq=A + 1, ack=seq + 1)
    assert d.state is S.TIME_WAIT
    assert d.conn.receive(10) == b""


def test_half_close_we_keep_sending_in_close_wait():
    d = Dialogue.in_state(S.CLOSE_WAIT, iss=ISS, irs=IRS)
    seq = A
    for i in range(100):
        d.now += 60.0
        d.conn.send(b"%05d" % i)
        d.expect("P.", seq=seq, ack=R + 1, data=b"%05d" % i)
        seq += 5
        d.peer(".", seq=R + 1, ack=seq)
    assert d.state is S.CLOSE_WAIT
    d.conn.close(d.now)
    d.expect("F.", seq=seq, ack=R + 1)
    d.peer(".", seq=R + 1, ack=seq + 1)
    assert d.state is S.CLOSED


def test_half_close_data_in_fin_wait_1():
    d = Dialogue.in_state(S.FIN_WAIT_1, iss=ISS, irs=IRS, config=NOACK)
    d.peer("P.", seq=R, ack=A, data=b"still talking")
    d.expect(".", seq=A + 1, ack=R + 13)
    assert d.conn.receive(100) == b"still talking"
    assert d.state is S.FIN_WAIT_1


# ---------------------------------------------------------------- simultaneous close (Figure 13)

def test_simultaneous_close_closing_then_time_wait():
    d = Dialogue.in_state(S.FIN_WAIT_1, iss=ISS, irs=IRS)
    d.peer("F.", seq=R, ack=A)           # the peer's FIN crossed ours
    d.expect(".", seq=A + 1, ack=R + 1)
    assert d.state is S.CLOSING
    d.peer(".", seq=R + 1, ack=A + 1)
    d.expect_nothing()
    assert d.state is S.TIME_WAIT
    d.expect_nothing(until=59.9)
    d.advance(0.2)
    assert d.state is S.CLOSED


def test_closing_retransmits_fin():
    d = Dialogue.in_state(S.CLOSING, iss=ISS, irs=IRS)
    d.expect("F.", seq=A, ack=R + 1, at=1.0)


def test_closing_repeated_fin_reacked():
    d = Dialogue.in_state(S.CLOSING, iss=ISS, irs=IRS)
    d.peer("F.", seq=R, ack=A)
    d.expect(".", seq=A + 1, ack=R + 1)
    assert d.state is S.CLOSING


def test_closing_ack_not_of_fin_ignored():
    d = Dialogue.in_state(S.CLOSING, iss=ISS, irs=IRS)
    d.peer(".", seq=R + 1, ack=A)
    d.expect_nothing()
    assert d.state is S.CLOSING


# ---------------------------------------------------------------- passive close

def test_passive_close_close_wait_last_ack_closed():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer("P.", seq=R, ack=A, data=b"bye")
    d.peer("F.", seq=R + 3, ack=A)
    d.expect(".", seq=A, ack=R + 4)      # a FIN is acknowledged at once
    assert d.state is S.CLOSE_WAIT
    ev = types(d)
    assert ev.count("EndOfStream") == 1
    assert d.conn.receive(10) == b"bye"
    assert d.conn.receive(10) == b""
    assert d.conn.send(b"reply") == 5    # CLOSE-WAIT still sends (§3.10.2)
    d.expect("P.", seq=A, ack=R + 4, data=b"reply")
    d.conn.close(d.now)
    d.expect("F.", seq=A + 5, ack=R + 4)
    assert d.state is S.LAST_ACK
    d.peer(".", seq=R + 4, ack=A + 6)
    d.expect_nothing(until=300.0)
    assert d.state is S.CLOSED
    assert "Closed" in types(d)


def test_last_ack_fin_retransmitted():
    d = Dialogue.in_state(S.LAST_ACK, iss=ISS, irs=IRS)
    d.expect("F.", seq=A, ack=R + 1, at=1.0)
    d.expect("F.", seq=A, ack=R + 1, at=3.0)


def test_last_ack_peer_fin_retransmitted_is_reacked():
    d = Dialogue.in_state(S.LAST_ACK, iss=ISS, irs=IRS)
    d.peer("F.", seq=R, ack=A)
    d.expect(".", seq=A + 1, ack=R + 1)
    assert d.state is S.LAST_ACK


def test_last_ack_old_ack_ignored():
    d = Dialogue.in_state(S.LAST_ACK, iss=ISS, irs=IRS)
    d.peer(".", seq=R + 1, ack=A)
    d.expect_nothing()
    assert d.state is S.LAST_ACK


def test_close_wait_repeated_fin_reacked():
    d = Dialogue.in_state(S.CLOSE_WAIT, iss=ISS, irs=IRS)
    d.peer("F.", seq=R, ack=A)
    d.expect(".", seq=A, ack=R + 1)
    assert d.state is S.CLOSE_WAIT
    assert types(d) == []                # no second EndOfStream


@pytest.mark.parametrize("state", [S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT])
def test_text_after_fin_is_ignored(state):
    # §3.10.7.4 seventh: "This should not occur since a FIN has been received ... Ignore"
    d = Dialogue.in_state(state, iss=ISS, irs=IRS, config=NOACK)
    d.peer("P.", seq=R + 1, ack=A + (1 if state is S.TIME_WAIT else 0), data=b"late")
    assert d.conn.receive(10) == b""
    assert state is d.state
    assert "DataReceived" not in types(d)


# ---------------------------------------------------------------- TIME-WAIT

def test_time_wait_retransmitted_fin_reacked_and_timer_restarted():
    d = Dialogue.in_state(S.TIME_WAIT, iss=ISS, irs=IRS)
    d.advance(50.0)
    assert d.state is S.TIME_WAIT
    d.peer("F.", seq=R, ack=A + 1)       # our ACK of its FIN was lost
    d.expect(".", seq=A + 1, ack=R + 1)
    d.expect_nothing(until=109.99)       # 2 MSL from the retransmission (§3.10.7.4 eighth)
    assert d.state is S.TIME_WAIT
    d.advance(0.02)
    assert d.state is S.CLOSED


def test_time_wait_rst_closes():
    d = Dialogue.in_state(S.TIME_WAIT, iss=ISS, irs=IRS)
    d.peer("R", seq=R + 1)
    d.expect_nothing()
    assert d.state is S.CLOSED


def test_time_wait_ack_ignored():
    d = Dialogue.in_state(S.TIME_WAIT, iss=ISS, irs=IRS)
    d.peer(".", seq=R + 1, ack=A + 1)
    d.expect_nothing()
    assert d.state is S.TIME_WAIT


def test_time_wait_syn_challenge_ack():
    d = Dialogue.in_state(S.TIME_WAIT, iss=ISS, irs=IRS)
    d.peer("S", seq=R + 1000)
    d.expect(".", seq=A + 1, ack=R + 1)
    assert d.state is S.TIME_WAIT


def test_time_wait_sends_nothing_else():
    d = Dialogue.in_state(S.TIME_WAIT, iss=ISS, irs=IRS)
    d.expect_nothing(until=59.0)


# ---------------------------------------------------------------- FIN beyond a hole

def test_out_of_order_fin_waits_for_the_hole():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer("F.", seq=R + 5, ack=A)       # FIN after 5 missing octets
    d.expect(".", seq=A, ack=R)          # out of order: dup ACK at once
    assert d.state is S.ESTABLISHED
    assert "EndOfStream" not in types(d)
    d.peer("P.", seq=R, ack=A, data=b"12345")
    d.expect(".", seq=A, ack=R + 6)
    assert d.state is S.CLOSE_WAIT
    assert d.conn.receive(10) == b"12345"
    assert d.conn.receive(10) == b""


def test_data_and_fin_beyond_hole():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer("FP.", seq=R + 3, ack=A, data=b"def")
    d.expect(".", seq=A, ack=R)
    d.peer("P.", seq=R, ack=A, data=b"abc")
    d.expect(".", seq=A, ack=R + 7)
    assert d.state is S.CLOSE_WAIT
    assert d.conn.receive(10) == b"abcdef"


# ---------------------------------------------------------------- close() with unread data

def test_close_with_unread_data_sends_rst():
    # RFC 9293 §3.10.4 / RFC 2525 §2.17: data the application will never read -> RST
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("P.", seq=R, ack=A, data=b"unread")
    d.expect(".", seq=A, ack=R + 6)
    d.conn.close(d.now)
    d.expect("R", seq=A)
    d.expect_nothing(until=100.0)
    assert d.state is S.CLOSED


def test_data_after_close_gets_rst():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.conn.close(d.now)
    d.expect("F.", seq=A, ack=R)
    d.peer(".", seq=R, ack=A + 1)
    assert d.state is S.FIN_WAIT_2
    d.peer("P.", seq=R, ack=A + 1, data=b"too late")
    d.expect("R", seq=A + 1)
    assert d.state is S.CLOSED


def test_data_after_shutdown_write_is_fine():
    d = Dialogue.in_state(S.FIN_WAIT_2, iss=ISS, irs=IRS, config=NOACK)
    d.peer("P.", seq=R, ack=A + 1, data=b"fine")
    d.expect(".", seq=A + 1, ack=R + 4)
    assert d.state is S.FIN_WAIT_2


# ---------------------------------------------------------------- RST in the closing states

@pytest.mark.parametrize("state", [S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT])
def test_rst_in_closing_states_with_user_reports_reset(state):
    d = Dialogue.in_state(state, iss=ISS, irs=IRS)
    rcv_nxt = R + (1 if state is S.CLOSE_WAIT else 0)
    d.peer("R", seq=rcv_nxt)
    d.expect_nothing()
    assert d.state is S.CLOSED
    ev = d.events()
    assert any(isinstance(e, Reset) for e in ev) and any(isinstance(e, Closed) for e in ev)
    with pytest.raises(ConnectionReset):
        d.conn.send(b"x")


@pytest.mark.parametrize("state", [S.CLOSING, S.LAST_ACK, S.TIME_WAIT])
def test_rst_in_last_states_just_closes(state):
    d = Dialogue.in_state(state, iss=ISS, irs=IRS)
    d.peer("R", seq=R + 1)
    d.expect_nothing()
    assert d.state is S.CLOSED
    assert "Closed" in types(d)


def test_send_after_close_is_connection_closing():
    d = Dialogue.in_state(S.FIN_WAIT_1, iss=ISS, irs=IRS)
    with pytest.raises(BrokenPipe, match="connection closing"):
        d.conn.send(b"x")


def test_end_of_stream_event_once():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer("F.", seq=R, ack=A)
    ev = d.events()
    assert [type(e) for e in ev].count(EndOfStream) == 1


def test_fin_wait_1_data_fin_and_ack_of_fin_in_one_segment():
    d = Dialogue.in_state(S.FIN_WAIT_1, iss=ISS, irs=IRS)
    d.peer("FP.", seq=R, ack=A + 1, data=b"tail")
    d.expect(".", seq=A + 1, ack=R + 5)
    assert d.state is S.TIME_WAIT
    assert d.conn.receive(10) == b"tail"
    assert d.conn.receive(10) == b""


# ---------------------------------------------------------------- orphaned FIN-WAIT-2 (Linux)

def test_fin_wait_2_after_close_ends_after_fin_wait_2_timeout():
    # TcpConfig.fin_wait_2_timeout (Linux tcp_fin_timeout): RFC 9293 waits in FIN-WAIT-2 for the
    # peer's FIN; after close() nobody could read what comes, so the connection goes silently
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(fin_wait_2_timeout=60.0))
    d.conn.close(d.now)
    d.expect("F.", seq=A, ack=R)
    d.advance(0.5)
    d.peer(".", seq=R, ack=A + 1)
    assert d.state is State.FIN_WAIT_2
    d.expect_nothing(until=60.499)
    assert d.state is State.FIN_WAIT_2
    d.expect_nothing(until=60.501)
    assert d.state is State.CLOSED and "Closed" in types(d)
    assert d.conn.next_timer() is None


def test_fin_wait_2_timeout_needs_close_and_a_fin_still_wins():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(fin_wait_2_timeout=60.0))
    d.conn.shutdown_write(d.now)           # half-close: the application may still read
    d.expect("F.", seq=A, ack=R)
    d.peer(".", seq=R, ack=A + 1)
    d.expect_nothing(until=100.0)
    assert d.state is State.FIN_WAIT_2
    d.conn.close(d.now)                    # now orphaned: the timer starts
    d.advance(30.0)
    d.peer("F.", seq=R, ack=A + 1)         # the FIN before the timeout: TIME-WAIT as usual
    d.expect(".", seq=A + 1, ack=R + 1)
    assert d.state is State.TIME_WAIT
    d.expect_nothing(until=d.now + 59.9)
    assert d.state is State.TIME_WAIT


def test_fin_wait_2_idle_counts_from_the_last_segment_received():
    # TcpConfig.fin_wait_2_idle (FreeBSD tcp_timer_2msl): the timer looks again every
    # keepalive_interval while segments keep coming, and ends the connection once idle that long
    cfg = TcpConfig(fin_wait_2_timeout=600.0, fin_wait_2_idle=True, keepalive_interval=75.0)
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg)
    d.conn.close(d.now)
    d.expect("F.", seq=A, ack=R)
    d.peer(".", seq=R, ack=A + 1)          # FIN-WAIT-2 at 0: first look at 600
    d.advance(500.0)
    d.peer(".", seq=R, ack=A + 1)          # heard from the peer at 500: idle only from here
    d.expect_nothing(until=1124.9)         # looks at 600, 675, ..., 1050: never idle 600 s yet
    assert d.state is State.FIN_WAIT_2
    d.expect_nothing(until=1125.1)         # the look at 1125 finds 625 s of silence
    assert d.state is State.CLOSED
