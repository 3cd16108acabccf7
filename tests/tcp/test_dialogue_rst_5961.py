"""Packet dialogues: every synchronized state × each incoming-segment class of RFC 9293 §3.10.7.4,
the CLOSED-state replies of §3.10.7.1, and RFC 5961 (§3 RST, §4 SYN, §5 ACK, §7 throttling)."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.errors import ConnectionReset
from synack.tcp.events import Reset
from synack.tcp.states import State
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
S = State
NOACK = TcpConfig(ack_delay=None)

# (SND.NXT, RCV.NXT) after Dialogue.in_state(state): our FIN takes A, the peer's FIN takes R.
SYNC = {
    S.ESTABLISHED: (A, R), S.FIN_WAIT_1: (A + 1, R), S.FIN_WAIT_2: (A + 1, R),
    S.CLOSE_WAIT: (A, R + 1), S.CLOSING: (A + 1, R + 1), S.LAST_ACK: (A + 1, R + 1),
    S.TIME_WAIT: (A + 1, R + 1),
}
STATES = list(SYNC)


def types(d):
    return [type(e).__name__ for e in d.events()]


def una(state):
    """An ACK value acknowledging nothing new (SND.UNA)."""
    return A if state in (S.ESTABLISHED, S.FIN_WAIT_1, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK) else A + 1


# ---------------------------------------------------------------- the matrix

@pytest.mark.parametrize("state", STATES)
def test_rst_at_rcv_nxt_closes(state):
    d = Dialogue.in_state(state, iss=ISS, irs=IRS)
    d.peer("R", seq=SYNC[state][1])
    d.expect_nothing(until=500.0)
    assert d.state is S.CLOSED
    assert d.conn.next_timer() is None


@pytest.mark.parametrize("state", STATES)
def test_rst_in_window_gets_challenge_ack(state):
    d = Dialogue.in_state(state, iss=ISS, irs=IRS)
    nxt, rcv = SYNC[state]
    d.peer("R", seq=rcv + 1)
    d.expect(".", seq=nxt, ack=rcv)      # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (RFC 5961 §3.2)
    d.expect_nothing()
    assert d.state is state
    d.peer("R.", seq=rcv + 60000, ack=una(state))
    d.expect(".", seq=nxt, ack=rcv)
    assert d.state is state


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("where", [-1, -70000, 65535, 1 << 30])
def test_rst_outside_window_silently_dropped(state, where):
    d = Dialogue.in_state(state, iss=ISS, irs=IRS)
    d.peer("R", seq=SYNC[state][1] + where)
    d.expect_nothing()                   # never answer a RST, not even with an ACK
    assert d.state is state


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("where", [0, 100, -100, 1 << 31])
def test_syn_gets_challenge_ack(state, where):
    # RFC 5961 §4.2: "irrespective of the sequence number" -> challenge ACK, drop
    d = Dialogue.in_state(state, iss=ISS, irs=IRS)
    nxt, rcv = SYNC[state]
    d.peer("S", seq=rcv + where)
    d.expect(".", seq=nxt, ack=rcv)
    d.expect_nothing()
    assert d.state is state
    assert "Reset" not in types(d)


@pytest.mark.parametrize("state", STATES)
def test_ack_of_unsent_data_gets_ack(state):
    d = Dialogue.in_state(state, iss=ISS, irs=IRS)
    nxt, rcv = SYNC[state]
    d.peer(".", seq=rcv, ack=nxt + 1)
    d.expect(".", seq=nxt, ack=rcv)
    assert d.state is state


@pytest.mark.parametrize("state", STATES)
def test_old_duplicate_segment_gets_ack(state):
    d = Dialogue.in_state(state, iss=ISS, irs=IRS, config=NOACK)
    nxt, rcv = SYNC[state]
    d.peer("P.", seq=rcv - 20, ack=una(state), data=b"x" * 10)
    d.expect(".", seq=nxt, ack=rcv)
    d.expect_nothing()
    assert d.state is state
    assert "DataReceived" not in types(d)


@pytest.mark.parametrize("state", STATES)
def test_data_beyond_window_gets_ack(state):
    d = Dialogue.in_state(state, iss=ISS, irs=IRS, config=NOACK)
    nxt, rcv = SYNC[state]
    d.peer("P.", seq=rcv + 65535, ack=una(state), data=b"x" * 10)
    d.expect(".", seq=nxt, ack=rcv)
    assert d.state is state


@pytest.mark.parametrize("state", STATES)
def test_segment_without_ack_dropped(state):
    # §3.10.7.4 fifth: "if the ACK bit is off, drop the segment and return"
    d = Dialogue.in_state(state, iss=ISS, irs=IRS, config=NOACK)
    rcv = SYNC[state][1]
    d.peer("P", seq=rcv, data=b"no ack")
    d.peer("F", seq=rcv)
    d.expect_nothing()
    assert d.state is state
    assert d.conn.receive(100) in (None, b"")


# ---------------------------------------------------------------- RST effects

def test_rst_in_established_reports_reset():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer("R.", seq=R, ack=A)
    d.expect_nothing()
    assert d.state is S.CLOSED
    ev = d.events()
    assert any(isinstance(e, Reset) and not e.refused for e in ev)
    for call in (lambda: d.conn.send(b"x"), lambda: d.conn.receive(1), lambda: d.conn.shutdown_write(d.now)):
        with pytest.raises(ConnectionReset, match="connection reset"):
            call()


def test_rst_flushes_pending_output():
    d = Dialogue.established(iss=ISS, irs=IRS, window=0)
    d.conn.send(b"queued")
    d.peer("R", seq=R)
    d.expect_nothing(until=1000.0)       # no retransmission, no probe after the reset


def test_data_delivered_before_rst_still_readable():
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("P.", seq=R, ack=A, data=b"last")
    d.expect(".", ack=R + 4)
    d.peer("R", seq=R + 4)
    assert d.conn.receive(10) == b"last"
    with pytest.raises(ConnectionReset):
        d.conn.receive(10)


# ---------------------------------------------------------------- RFC 5961 §5: ACK range

def test_ack_below_una_minus_max_window_dropped_with_challenge():
    d = Dialogue.established(iss=ISS, irs=IRS, window=1000, config=NOACK)
    d.peer("P.", seq=R, ack=A - 1001, data=b"injected")
    d.expect(".", seq=A, ack=R)          # data not taken: ACK still says R
    assert d.conn.receive(100) is None
    assert d.state is S.ESTABLISHED


def test_old_ack_within_max_window_is_ignored_and_data_taken():
    d = Dialogue.established(iss=ISS, irs=IRS, window=1000, config=NOACK)
    d.peer("P.", seq=R, ack=A - 1000, data=b"fine")
    d.expect(".", seq=A, ack=R + 4)
    assert d.conn.receive(100) == b"fine"


def test_ack_check_uses_largest_window_seen():
    d = Dialogue.established(iss=ISS, irs=IRS, window=1000, config=NOACK)
    d.peer(".", seq=R, ack=A, window=5000)      # MAX.SND.WND becomes 5000
    d.peer(".", seq=R, ack=A, window=100)
    d.peer("P.", seq=R, ack=A - 4000, data=b"ok")
    d.expect(".", seq=A, ack=R + 2)


# ---------------------------------------------------------------- RFC 5961 §7: throttling

def test_challenge_acks_are_rate_limited():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(challenge_ack_limit=2))
    for _ in range(5):
        d.peer("R", seq=R + 10)
    d.expect(".", seq=A, ack=R)
    d.expect(".", seq=A, ack=R)
    d.expect_nothing()
    d.peer("S", seq=R + 10)
    d.expect_nothing()
    d.now += 1.0
    d.peer("R", seq=R + 10)
    d.expect(".", seq=A, ack=R)
    assert d.state is S.ESTABLISHED


# ---------------------------------------------------------------- rfc5961=False: RFC 793 rules

def test_rfc793_rst_in_window_resets():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(rfc5961=False))
    d.peer("R", seq=R + 100)
    d.expect_nothing()
    assert d.state is S.CLOSED
    assert any(isinstance(e, Reset) for e in d.events())


def test_rfc793_syn_in_window_resets():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(rfc5961=False))
    d.peer("S", seq=R + 100)
    d.expect("R", seq=A)
    assert d.state is S.CLOSED
    with pytest.raises(ConnectionReset):
        d.conn.send(b"x")


def test_rfc793_syn_outside_window_gets_ack():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(rfc5961=False))
    d.peer("S", seq=R - 100)
    d.expect(".", seq=A, ack=R)
    assert d.state is S.ESTABLISHED


def test_rfc793_old_ack_far_below_is_ignored():
    d = Dialogue.established(iss=ISS, irs=IRS, window=1000, config=TcpConfig(rfc5961=False, ack_delay=None))
    d.peer("P.", seq=R, ack=A - 100000, data=b"taken")
    d.expect(".", seq=A, ack=R + 5)
    assert d.conn.receive(10) == b"taken"


def test_rfc793_rst_outside_window_dropped():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(rfc5961=False))
    d.peer("R", seq=R - 1)
    d.expect_nothing()
    assert d.state is S.ESTABLISHED


# ---------------------------------------------------------------- CLOSED (§3.10.7.1)

def test_closed_answers_ack_bearing_segment():
    d = Dialogue(iss=ISS)
    d.peer("P.", seq=IRS, ack=777, data=b"abc")
    d.expect("R", seq=777)               # <SEQ=SEG.ACK><CTL=RST>
    d.expect_nothing()


def test_closed_answers_segment_without_ack():
    d = Dialogue(iss=ISS)
    d.peer("SP", seq=IRS, data=b"abc")
    d.expect("R.", seq=0, ack=IRS + 4)    # <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    d.peer("F", seq=IRS)
    d.expect("R.", seq=0, ack=IRS + 1)


def test_closed_never_answers_rst():
    d = Dialogue(iss=ISS)
    d.peer("R", seq=IRS)
    d.peer("R.", seq=IRS, ack=5)
    d.expect_nothing(until=100.0)
    assert d.state is S.CLOSED


@pytest.mark.parametrize("state", [S.LISTEN, S.SYN_SENT, S.SYN_RECEIVED] + STATES)
def test_never_answer_rst_with_rst(state):
    d = Dialogue.in_state(state, iss=ISS, irs=IRS)
    for seq, ack in ((IRS - 100000, ISS - 100000), (IRS + 100000, ISS + 100000)):
        d.peer("R.", seq=seq, ack=ack)
        d.peer("R", seq=seq)
        for seg in list(d.sent):
            assert not seg.flags & 0x04, seg.summary()
    assert d.state is state
