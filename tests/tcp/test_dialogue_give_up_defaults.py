"""The default R2 thresholds of RFC 9293 §3.8.3, pinned by packet dialogues with the default
``TcpConfig``: a SYN or SYN,ACK is retransmitted for more than 3 minutes (MUST-23), data for
more than 100 seconds (SHLD-11), before the connection is given up."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.errors import ConnectionTimedOut
from synack.tcp.events import Closed, SoftError, StateChanged, TimedOut
from synack.tcp.states import State
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
S = State


@pytest.mark.parametrize("opening", [S.SYN_SENT, S.SYN_RECEIVED])
def test_default_syn_retransmission_lasts_over_3_minutes(opening):
    """MUST-23: "R2 for a SYN segment MUST be set large enough to provide retransmission of
    the segment for at least 3 minutes". Seven retransmissions (RTO 1 s doubling, capped at
    120 s): the last at 127 s, the connection given up at 247 s."""
    d = Dialogue.in_state(opening, iss=ISS, irs=IRS, config=TcpConfig())
    flags = "S" if opening is S.SYN_SENT else "S."
    for t in (1.0, 3.0, 7.0, 15.0, 31.0, 63.0, 127.0):
        d.expect(flags, seq=ISS, at=t)
    d.expect_nothing(until=246.9)
    assert d.state is opening
    d.expect_nothing(until=247.0)
    assert d.state is S.CLOSED and isinstance(d.conn.error, ConnectionTimedOut)
    evs = d.events()
    assert [type(e) for e in evs] == [SoftError, TimedOut, StateChanged, Closed]     # R1 at 7 s
    assert evs[0].t == 7.0 and evs[1].t == 247.0


def test_default_r2_for_data_lasts_over_100_seconds():
    """SHLD-11: R2 of at least 100 s. ``r2_retries=15`` with the default RTO bounds: the last
    retransmission at 1087 s, the connection given up at 1207 s."""
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig())
    d.conn.send(b"lost")
    d.expect("P.", seq=A, data=b"lost", at=0.0)
    t = 0.0
    for k in range(15):
        t += min(2.0 ** k, 120.0)
        d.expect("P.", seq=A, data=b"lost", at=t)
    assert t == 1087.0
    d.expect_nothing(until=1206.9)
    assert d.state is S.ESTABLISHED
    d.expect_nothing(until=1207.0)
    assert d.state is S.CLOSED
    assert [type(e) for e in d.events()] == [SoftError, TimedOut, StateChanged, Closed]
