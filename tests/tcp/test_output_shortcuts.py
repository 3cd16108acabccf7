"""Shortcuts on the output path give what the calls they skip would give.

``_sendable`` and ``segments_to_send`` skip ``_next_data_segment()`` when nothing is unsent and no
FIN is owed (SND.NXT at the end of the send buffer, and past our FIN or no FIN yet): that call
must then say None. ``Scoreboard.clear()`` returns at once on an empty scoreboard: the state must
be a fresh one's. Seeded transfers over a faulty simulated link (loss, duplication, reordering,
both half-closes) check both after every output pass and every ACK.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synack.sim.transfer import run_transfer
from synack.tcp.config import TcpConfig
from synack.tcp.connection import TcpConnection
from synack.tcp.sack import Scoreboard


def _nothing_owed(c: TcpConnection) -> bool:
    """The shortcut's test, as _sendable and segments_to_send write it."""
    nxt = c._nxt
    return not (nxt < c.sndbuf.end or (c._fin_off is not None and nxt <= c._fin_off))


def _board(sb: Scoreboard) -> tuple:
    return (sb.recs, sb._starts, sb.ranges, sb.sacked_bytes, sb.lost_bytes, sb.sacked_segs, sb.dup_bytes,
            sb._tq, sb._tq_dirty, sb._lostq)


@settings(max_examples=20, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), size_ab=st.integers(0, 20_000), size_ba=st.integers(0, 20_000),
       loss=st.sampled_from([0.0, 0.05]), dup=st.sampled_from([0.0, 0.05]), reorder=st.sampled_from([0.0, 0.05]),
       sack=st.booleans(), nagle=st.booleans())
def test_skipped_calls_would_have_found_nothing(monkeypatch, seed, size_ab, size_ba, loss, dup, reorder, sack, nagle):
    checked = {"pass": 0, "skip": 0, "clear": 0}
    sendable, to_send, clear = TcpConnection._sendable, TcpConnection.segments_to_send, Scoreboard.clear

    def check(c: TcpConnection) -> None:
        checked["pass"] += 1
        if _nothing_owed(c):
            checked["skip"] += 1
            assert c._next_data_segment() is None

    def sendable_checked(self):
        check(self)
        return sendable(self)

    def to_send_checked(self, now):
        check(self)
        out = to_send(self, now)
        check(self)
        return out

    def clear_checked(self):
        clear(self)
        checked["clear"] += 1
        assert _board(self) == _board(Scoreboard())

    monkeypatch.setattr(TcpConnection, "_sendable", sendable_checked)
    monkeypatch.setattr(TcpConnection, "segments_to_send", to_send_checked)
    monkeypatch.setattr(Scoreboard, "clear", clear_checked)
    cfg = TcpConfig(sack=sack, nagle=nagle, rcv_buf=16384)
    r = run_transfer(seed, size_ab, size_ba, config=cfg, loss=loss, dup=dup, reorder=reorder, delay=0.005)
    assert r.ok, r.message
    assert checked["skip"] > 0

