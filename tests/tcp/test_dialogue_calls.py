"""Every user call in every state (RFC 9293 §3.10.1-3.10.6): what goes on the wire, where the
connection goes, and the error raised in the RFC's words."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.errors import (BrokenPipe, ConnectionExists, ConnectionRefused, ConnectionReset,
                               ConnectionTimedOut, LocalError, NotConnected)
from synack.tcp.states import State
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
S = State
ALL = list(State)
SND_NXT = {S.SYN_RECEIVED: A, S.ESTABLISHED: A, S.FIN_WAIT_1: A + 1, S.FIN_WAIT_2: A + 1, S.CLOSE_WAIT: A}
RCV_NXT = {S.SYN_RECEIVED: R, S.ESTABLISHED: R, S.FIN_WAIT_1: R, S.FIN_WAIT_2: R, S.CLOSE_WAIT: R + 1}


def make(state):
    return Dialogue.in_state(state, iss=ISS, irs=IRS)


# ---------------------------------------------------------------- OPEN (§3.10.1)

@pytest.mark.parametrize("state", ALL)
def test_connect(state):
    d = make(state)
    if state is S.CLOSED:
        d.conn.connect(d.now)
        d.expect("S", seq=ISS)
        assert d.state is S.SYN_SENT
    else:
        # "error: connection already exists"; LISTEN too (Linux connect() on a listener: EISCONN)
        with pytest.raises(ConnectionExists, match="connection already exists"):
            d.conn.connect(d.now)
        assert d.state is state
        d.expect_nothing()


@pytest.mark.parametrize("state", ALL)
def test_listen(state):
    d = make(state)
    if state is S.CLOSED:
        d.conn.listen(d.now)
        assert d.state is S.LISTEN
    else:
        with pytest.raises(ConnectionExists):
            d.conn.listen(d.now)
        assert d.state is state
    d.expect_nothing()


# ---------------------------------------------------------------- SEND (§3.10.2)

@pytest.mark.parametrize("state", ALL)
def test_send(state):
    d = make(state)
    if state in (S.CLOSED, S.LISTEN):
        with pytest.raises(NotConnected, match="connection does not exist"):
            d.conn.send(b"data")
    elif state in (S.SYN_SENT, S.SYN_RECEIVED):
        assert d.conn.send(b"data") == 4          # queued until ESTABLISHED
        d.expect_nothing()
    elif state in (S.ESTABLISHED, S.CLOSE_WAIT):
        assert d.conn.send(b"data") == 4
        d.expect("P.", seq=A, ack=RCV_NXT[state], data=b"data")
    else:
        with pytest.raises(BrokenPipe, match="connection closing"):
            d.conn.send(b"data")
        d.expect_nothing()
    assert d.state is state


def test_send_short_write_when_buffer_full():
    d = Dialogue.established(iss=ISS, irs=IRS, window=0, config=TcpConfig(snd_buf=10))
    assert d.conn.send(b"0123456789abc") == 10
    assert d.conn.send(b"more") == 0


def test_send_urgent_sets_pointer_after_urgent_data():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.conn.send(b"abc", urgent=True)
    d.expect("UP.", seq=A, data=b"abc", urgent=3)   # MUST-62: the octet after the urgent data


# ---------------------------------------------------------------- RECEIVE (§3.10.3)

@pytest.mark.parametrize("state", ALL)
def test_receive(state):
    d = make(state)
    if state is S.CLOSED:
        with pytest.raises(NotConnected):
            d.conn.receive(10)
    elif state in (S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT):
        assert d.conn.receive(10) == b""          # end of stream: the peer's FIN was received
    else:
        assert d.conn.receive(10) is None         # nothing yet
    d.expect_nothing()
    assert d.state is state


# ---------------------------------------------------------------- CLOSE (§3.10.4)

@pytest.mark.parametrize("state", ALL)
def test_shutdown_write(state):
    d = make(state)
    if state is S.CLOSED:
        with pytest.raises(NotConnected):
            d.conn.shutdown_write(d.now)
    elif state in (S.LISTEN, S.SYN_SENT):
        d.conn.shutdown_write(d.now)             # delete the TCB
        assert d.state is S.CLOSED
        d.expect_nothing()
        assert d.conn.next_timer() is None
    elif state is S.SYN_RECEIVED:
        d.conn.shutdown_write(d.now)
        assert d.state is S.FIN_WAIT_1
    elif state is S.ESTABLISHED:
        d.conn.shutdown_write(d.now)
        d.expect("F.", seq=A, ack=R)
        assert d.state is S.FIN_WAIT_1
    elif state is S.CLOSE_WAIT:
        d.conn.shutdown_write(d.now)
        d.expect("F.", seq=A, ack=R + 1)
        assert d.state is S.LAST_ACK
    elif state in (S.FIN_WAIT_1, S.FIN_WAIT_2):
        d.conn.shutdown_write(d.now)             # "ok", and no second FIN
        d.expect_nothing()
        assert d.state is state
    else:
        with pytest.raises(BrokenPipe, match="connection closing"):
            d.conn.shutdown_write(d.now)
        assert d.state is state


@pytest.mark.parametrize("state", ALL)
def test_close_never_raises(state):
    d = make(state)
    d.conn.close(d.now)
    d.conn.close(d.now)
    after = {S.LISTEN: S.CLOSED, S.SYN_SENT: S.CLOSED, S.SYN_RECEIVED: S.FIN_WAIT_1,
             S.ESTABLISHED: S.FIN_WAIT_1, S.CLOSE_WAIT: S.LAST_ACK}.get(state, state)
    assert d.state is after


# ---------------------------------------------------------------- ABORT (§3.10.5)

@pytest.mark.parametrize("state", ALL)
def test_abort(state):
    d = make(state)
    d.conn.abort(d.now)
    if state in SND_NXT:
        d.expect("R", seq=SND_NXT[state])        # <SEQ=SND.NXT><CTL=RST>
    d.expect_nothing(until=1000.0)
    assert d.state is S.CLOSED
    assert d.conn.next_timer() is None
    if state is not S.CLOSED:
        assert "Closed" in [type(e).__name__ for e in d.events()]


def test_abort_rst_covers_data_in_flight():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.conn.send(b"12345")
    d.expect("P.", seq=A, data=b"12345")
    d.conn.abort(d.now)
    d.expect("R", seq=A + 5)


def test_abort_flushes_queued_data():
    d = Dialogue.established(iss=ISS, irs=IRS, window=0)
    d.conn.send(b"never sent")
    d.conn.abort(d.now)
    d.expect("R", seq=A)
    d.expect_nothing(until=1000.0)


# ---------------------------------------------------------------- errors after the end

def _after(how):
    if how == "reset":
        d = Dialogue.established(iss=ISS, irs=IRS)
        d.peer("R", seq=R)
        return d, ConnectionReset
    if how == "refused":
        d = make(S.SYN_SENT)
        d.peer("R.", seq=0, ack=A)
        return d, ConnectionRefused
    d = make(S.SYN_SENT)
    d.conn.config.syn_retries = 0
    d.run_until(5.0)
    return d, ConnectionTimedOut


@pytest.mark.parametrize("how", ["reset", "refused", "timeout"])
def test_calls_after_the_connection_died(how):
    d, err = _after(how)
    assert d.state is S.CLOSED
    for call in (lambda: d.conn.send(b"x"), lambda: d.conn.receive(1), lambda: d.conn.shutdown_write(d.now)):
        with pytest.raises(err):
            call()
    d.conn.close(d.now)                  # never raises
    d.conn.abort(d.now)
    d.expect_nothing()


def test_all_errors_are_local_errors_with_errno():
    import errno
    for cls, no in ((NotConnected, errno.ENOTCONN), (BrokenPipe, errno.EPIPE),
                    (ConnectionExists, errno.EISCONN), (ConnectionReset, errno.ECONNRESET),
                    (ConnectionRefused, errno.ECONNREFUSED), (ConnectionTimedOut, errno.ETIMEDOUT)):
        e = cls("x")
        assert isinstance(e, LocalError) and e.errno == no


# ---------------------------------------------------------------- STATUS (§3.10.6)

@pytest.mark.parametrize("state", ALL)
def test_status(state):
    d = make(state)
    assert d.conn.info().state is state
