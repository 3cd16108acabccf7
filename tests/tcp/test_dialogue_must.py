"""Packet dialogues for RFC 9293 requirements whose code was there before its test: a RST at a
zero receive window (§3.4, MUST-66) and retransmission into a window the peer shrank (§3.8.6,
SHLD-16)."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.errors import ConnectionReset
from synack.tcp.events import Closed, Reset, StateChanged
from synack.tcp.states import State
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
S = State


def _zero_window() -> Dialogue:
    """ESTABLISHED with our receive window closed: the peer filled the 1000-octet buffer."""
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(rcv_buf=1000, ack_delay=None))
    d.peer("P.", seq=R, ack=A, data=b"x" * 1000)
    d.expect(".", seq=A, ack=R + 1000, window=0)
    d.events()
    assert d.conn.rcv_wnd == 0
    return d


@pytest.mark.parametrize("flags,data", [("R", b""), ("R.", b""), ("R.", b"why")],
                         ids=["rst", "rst-ack", "rst-with-data"])
def test_rst_at_rcv_nxt_resets_with_a_zero_receive_window(flags, data):
    """RFC 9293 §3.4 (MUST-66): RST is processed even when the receive window is zero. A RST
    at RCV.NXT passes the acceptability test for RCV.WND = 0 (SEG.SEQ = RCV.NXT; with data,
    the "special allowance" for RSTs) and resets the connection; nothing is sent."""
    d = _zero_window()
    d.peer(flags, seq=R + 1000, ack=A, data=data)
    d.expect_nothing()
    assert d.state is S.CLOSED
    evs = d.events()
    assert [type(e) for e in evs] == [Reset, StateChanged, Closed] and not evs[0].refused
    assert isinstance(d.conn.error, ConnectionReset)


def test_rst_past_rcv_nxt_is_dropped_with_a_zero_receive_window():
    """The other side of MUST-66: with RCV.WND = 0 only SEG.SEQ = RCV.NXT is acceptable
    (§3.10.7.4 first check); a RST one octet further is dropped silently (no ACK for a RST)."""
    d = _zero_window()
    d.peer("R", seq=R + 1001, ack=A)
    d.expect_nothing(until=10.0)
    assert d.state is S.ESTABLISHED and d.events() == []


def test_rto_resends_only_what_the_shrunk_window_holds():
    """RFC 9293 §3.8.6 (SHLD-16): the peer shrinks its window under data in flight; after the
    retransmission timeout the old data is resent normally, but only what lies between SND.UNA
    and SND.UNA + SND.WND. The rest follows as the window moves on."""
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(nagle=False))
    for k in range(3):
        d.conn.send(bytes([97 + k]) * 100)
        d.expect("P.", seq=A + 100 * k, length=100)
    d.peer(".", seq=R, ack=A, window=150)             # same ACK, right edge pulled back to A + 150
    d.expect_nothing()                                # nothing new, nothing resent yet (SHLD-15)
    d.expect(".", seq=A, data=b"a" * 100 + b"b" * 50, at=1.0)     # the RTO: 150 octets, no more
    d.expect_nothing()
    d.peer(".", seq=R, ack=A + 150, window=150)       # the window moves on: the other 150 fit now
    d.expect("P.", seq=A + 150, data=b"b" * 50 + b"c" * 100)
    d.peer(".", seq=R, ack=A + 300, window=150)
    d.expect_nothing(until=100.0)
    assert d.state is S.ESTABLISHED
