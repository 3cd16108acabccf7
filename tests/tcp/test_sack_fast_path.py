"""``RecoveryMixin._sack_ack_all``, the fast path for an ACK that leaves nothing outstanding,
does what ``_sack_ack_general`` does: seeded transfers over a faulty simulated link (loss,
duplication, reordering; RACK on and off) log the very same records, segment for segment,
with the fast path and with every ACK taken through the general path."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synack.sim.transfer import run_transfer
from synack.tcp.config import TcpConfig
from synack.tcp.connection import TcpConnection
from synack.tcp.recovery import RecoveryMixin


def _snapshot(c: TcpConnection) -> tuple:
    """What an ACK may change besides the log: RACK, TLP, the scoreboard, timers, counters."""
    rk, sb, t = c.rack, c.sb, c.tlp
    return (rk.rtt, rk.xmit_ts, rk.end_seq, rk.ack_ts, rk.fack, rk.reordering_seen, rk.reo_wnd, rk.reo_wnd_mult,
            rk.reo_wnd_persist, rk.dsack_round, rk.min_rtt.value, t.end_seq, t.is_retrans, t.rtt_sampled,
            [(r.start, r.end, r.xmit_ts, r.retrans, r.sacked, r.lost, r.dup) for r in sb.recs],
            [list(x) for x in sb.ranges], sb.una, sb.high, sb.sacked_bytes, sb.lost_bytes, sb.sacked_segs,
            sb.dup_bytes, [(r.start, r.end) for r in sb.in_flight_by_time()], repr(c.timers), c._lt_credit,
            c._dupacks, c._in_recovery, c._rto_recovery, c._una, c._max, c.cc.cwnd, c.cc.ssthresh,
            c.rtt.srtt, c.rtt.rto, c.snd_wnd)


def _run(monkeypatch, impl, seed: int, size_ab: int, size_ba: int, faults: dict, cfg: TcpConfig):
    """The log records and a snapshot after each ACK, with ``impl`` as ``_sack_ack``."""
    records: list[str] = []
    states: list[tuple] = []

    def sack_ack(self, seg, ack_off, now):
        impl(self, seg, ack_off, now)
        states.append(_snapshot(self))

    with monkeypatch.context() as m:
        m.setattr(TcpConnection, "_sack_ack", sack_ack)
        r = run_transfer(seed, size_ab, size_ba, config=cfg, log=lambda rec: records.append(repr(rec)), **faults)
    assert r.ok, r.message
    return records, states


def _both(monkeypatch, seed, size_ab, size_ba, faults, cfg):
    fast = _run(monkeypatch, RecoveryMixin._sack_ack, seed, size_ab, size_ba, faults, cfg)
    slow = _run(monkeypatch, RecoveryMixin._sack_ack_general, seed, size_ab, size_ba, faults, cfg)
    assert fast[1] == slow[1]
    assert fast[0] == slow[0]


@settings(max_examples=25, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), size_ab=st.integers(0, 20_000), size_ba=st.integers(0, 20_000),
       loss=st.sampled_from([0.0, 0.02, 0.1]), dup=st.sampled_from([0.0, 0.05]),
       reorder=st.sampled_from([0.0, 0.05]), rack=st.booleans(), rcv_buf=st.sampled_from([4096, 65536]))
def test_fast_path_logs_what_the_general_path_logs(monkeypatch, seed, size_ab, size_ba, loss, dup, reorder,
                                                   rack, rcv_buf):
    cfg = TcpConfig(rcv_buf=rcv_buf, rack=rack)
    _both(monkeypatch, seed, size_ab, size_ba, {"loss": loss, "dup": dup, "reorder": reorder, "delay": 0.005}, cfg)


def test_request_response_takes_the_fast_path(monkeypatch):
    """A small exchange with no loss: the ACKs that leave nothing outstanding take the fast path."""
    taken = []
    fast = RecoveryMixin._sack_ack_all

    def counting(self, seg, ack_off, now):
        taken.append(ack_off)
        fast(self, seg, ack_off, now)

    monkeypatch.setattr(TcpConnection, "_sack_ack_all", counting)
    r = run_transfer(1, 300, 1000, config=TcpConfig(), delay=0.005)
    assert r.ok, r.message
    assert taken
