"""Packet dialogues for the R1 threshold of RFC 9293 §3.8.3 (MUST-20, SHLD-9, SHLD-10): when one
segment has been retransmitted R1 times (``TcpConfig.r1_retries``, 3 by default) the
application gets a ``SoftError`` (MUST-47), once until an ACK of new data arrives; the same for
a SYN or SYN,ACK (MUST-22). The connection goes on until R2."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.events import Closed, Connected, SoftError, StateChanged, TimedOut
from synack.tcp.states import State
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
S = State


def soft(d: Dialogue, what: str, n: int = 3) -> SoftError:
    return SoftError(d.now, d.id, f"{what} retransmitted {n} times (R1)")


def test_r1_reported_once_per_episode_of_data_retransmissions():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(r2_retries=6))
    d.conn.send(b"lost")
    d.expect("P.", seq=A, data=b"lost", at=0.0)
    for n, t in enumerate((1.0, 3.0, 7.0), 1):                # RTO 1 s, doubling (RFC 6298 §5.5)
        d.expect("P.", seq=A, data=b"lost", at=t)
        assert d.events() == ([soft(d, "segment")] if n == 3 else []), n
    d.expect("P.", seq=A, data=b"lost", at=15.0)             # the fourth: no second report
    assert d.events() == []
    d.peer(".", seq=R, ack=A + 4)                             # an ACK of new data ends the episode
    assert d.events() == [] and d.state is S.ESTABLISHED
    d.conn.send(b"gone")
    d.expect("P.", seq=A + 4, data=b"gone")
    start = d.now
    for n, dt in enumerate((16.0, 48.0, 112.0), 1):          # the backed-off RTO is kept (RFC 6298 §5.7)
        d.expect("P.", seq=A + 4, data=b"gone", at=start + dt)
        assert d.events() == ([soft(d, "segment")] if n == 3 else []), n
    d.peer(".", seq=R, ack=A + 8)
    d.expect_nothing(until=d.now + 1000)
    assert d.events() == [] and d.state is S.ESTABLISHED


def test_r1_reported_before_r2_gives_up():
    """R2 > R1: the report comes first, the connection closes only at R2 (§3.8.3 (c), (e))."""
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(r2_retries=4))
    d.conn.send(b"lost")
    d.expect("P.", seq=A, data=b"lost", at=0.0)
    seen = []
    for t in (1.0, 3.0, 7.0, 15.0):
        d.expect("P.", seq=A, data=b"lost", at=t)
        seen += [(t, type(e)) for e in d.events()]
    d.expect_nothing(until=31.0)
    seen += [(31.0, type(e)) for e in d.events()]
    assert seen == [(7.0, SoftError), (31.0, TimedOut), (31.0, StateChanged), (31.0, Closed)]


@pytest.mark.parametrize("opening", [S.SYN_SENT, S.SYN_RECEIVED])
def test_r1_reported_for_syn_retransmissions(opening):
    """MUST-22: "SYN retransmissions MUST be handled in the general way ... including
    notification of the application layer"; the handshake then completes as usual."""
    d = Dialogue.in_state(opening, iss=ISS, irs=IRS)
    flags = "S" if opening is S.SYN_SENT else "S."
    for n, t in enumerate((1.0, 3.0, 7.0), 1):
        d.expect(flags, seq=ISS, at=t)
        assert d.events() == ([soft(d, "SYN")] if n == 3 else []), n
    if opening is S.SYN_SENT:
        d.peer("S.", seq=IRS, ack=A)
        d.expect(".", seq=A, ack=R)
    else:
        d.peer(".", seq=R, ack=A)
    assert d.state is S.ESTABLISHED
    assert [type(e) for e in d.events()] == [StateChanged, Connected]


def test_r1_off():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(r1_retries=None, r2_retries=5))
    d.conn.send(b"lost")
    d.expect("P.", seq=A, data=b"lost", at=0.0)
    for t in (1.0, 3.0, 7.0, 15.0, 31.0):
        d.expect("P.", seq=A, data=b"lost", at=t)
        assert d.events() == []
    d.expect_nothing(until=63.0)
    assert [type(e) for e in d.events()] == [TimedOut, StateChanged, Closed]


def test_zero_window_probes_are_not_excessive_retransmissions():
    """Resending the head segment as a window probe while the peer answers with a zero window
    (MUST-37) does not count towards R1, as it does not towards R2."""
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(nagle=False))
    d.conn.send(b"a" * 100)
    d.expect("P.", seq=A, length=100)
    d.peer(".", seq=R, ack=A, window=0)
    t = d.now
    for k in range(6):
        t += 2.0 ** k
        d.expect("P.", seq=A, length=100, at=t)
        d.peer(".", seq=R, ack=A, window=0)
    assert d.events() == [] and d.state is S.ESTABLISHED
