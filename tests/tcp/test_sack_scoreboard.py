"""Units: the SACK scoreboard (RFC 6675 §3-4 in offsets), RACK's arithmetic (RFC 8985 §6),
the windowed min filter, and the advertised MSS per address family (RFC 9293 §3.7.1)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from synack.tcp.config import TcpConfig
from synack.tcp.rack import Rack, WindowedMin
from synack.tcp.sack import Scoreboard
from synack.testing import Dialogue
from synack.wire.tcp import Mss


def board(n, size=100, now=0.0):
    sb = Scoreboard()
    for i in range(n):
        sb.on_transmit(i * size, (i + 1) * size, now + i * 0.001)
    return sb


def test_sack_marks_whole_records_and_splits_at_block_edges():
    sb = board(5)
    assert sb.pipe == 500
    newly = sb.sack([(150, 300)])                  # half of record 1 and all of record 2
    assert [(r.start, r.end) for r in newly] == [(150, 200), (200, 300)]
    assert sb.sacked_bytes == 150 and sb.sacked_segs == 2 and sb.pipe == 350
    assert sb.sack([(150, 300)]) == []            # nothing new: not a duplicate ACK (RFC 6675 §2)
    sb.check()
    assert [(r.start, r.end) for r in sb.holes()] == [(0, 100), (100, 150), (300, 400), (400, 500)]


def test_cumulative_ack_drops_records_and_sacked_counts():
    sb = board(5)
    sb.sack([(200, 300)])
    fresh = sb.ack(250)
    assert [(r.start, r.end) for r in fresh] == [(0, 100), (100, 200)]   # SACKed ones are not new
    assert sb.una == 250 and sb.sacked_bytes == 50 and sb.ranges == [[250, 300]]
    sb.check()


def test_islost_boundary_rfc6675():
    sb = board(10)
    sb.sack([(300, 400)])
    assert sb.lost_below(3, 100) == 0              # one block, 100 octets: nothing lost
    sb.sack([(500, 600)])
    sb.sack([(700, 800)])
    assert sb.lost_below(3, 100) == 300            # three discontiguous blocks above 0..299
    sb2 = board(10)
    sb2.sack([(400, 700)])                          # 300 > (3 - 1) * 100 octets above
    assert sb2.lost_below(3, 100) == 400


def test_lost_and_retransmitted_records_in_pipe():
    sb = board(4)
    sb.sack([(100, 200)])
    assert sb.mark_lost(sb.recs[0]) and not sb.mark_lost(sb.recs[0])
    assert sb.pipe == 400 - 100 - 100              # SetPipe(): neither SACKed nor lost
    assert sb.first_lost() is sb.recs[0]
    sb.retransmitted(sb.recs[0], 1.0)
    assert sb.pipe == 300 and sb.first_lost() is None and sb.recs[0].retrans


def test_rule3_retransmission_counts_twice_in_pipe_until_sacked_acked_or_lost():
    """RFC 6675 §4 SetPipe(): an octet not lost by IsLost() and at or below HighRxt counts twice
    ("two copies of the same data considered to be in the network (and also in the pipe
    estimate, in the case of (3))"); once SACKed or acknowledged, not at all; once IsLost(),
    once (it was retransmitted)."""
    sb = board(6)
    sb.sack([(300, 400)])
    r1, r2 = sb.recs[1], sb.recs[2]
    sb.retransmitted(r1, 1.0)
    sb.mark_dup(r1)
    sb.retransmitted(r2, 1.0)
    sb.mark_dup(r2)
    assert sb.dup_bytes == 200 and sb.pipe == 600 - 100 + 200
    sb.split_at(250)                               # the right piece keeps the mark
    assert sb.recs[3].dup and sb.dup_bytes == 200
    sb.check()
    sb.sack([(100, 200)])                          # r1 delivered: neither copy counts
    assert sb.dup_bytes == 100 and sb.pipe == 600 - 200 + 100
    sb.clear_dup(sb.recs[2])                       # IsLost(200..249): counted once
    assert sb.dup_bytes == 50
    sb.ack(260)                                    # the cumulative ACK trims the last piece
    assert sb.dup_bytes == 40 and sb.pipe == 600 - 260 - 100 + 40
    sb.ack(300)
    assert sb.dup_bytes == 0 and sb.pipe == 600 - 300 - 100
    sb.check()


def test_first_and_last_hole_skip_sacked_runs():
    sb = board(8)
    sb.sack([(100, 300), (500, 700)])
    assert (sb.first_hole(0, 800).start, sb.first_hole(100, 800).start) == (0, 300)
    assert sb.first_hole(350, 800).start == 300    # the hole holding 350: the caller splits it
    assert sb.first_hole(500, 700) is None and sb.first_hole(500, 800).start == 700
    assert sb.last_hole().start == 700
    sb.sack([(700, 800)])
    assert sb.last_hole().start == 400
    sb.sack([(0, 100), (300, 500)])
    assert sb.last_hole() is None and sb.first_hole(0, 800) is None


def test_clear_sacks_after_rto():
    sb = board(4)
    sb.sack([(100, 300)])
    sb.clear_sacks()
    assert sb.sacked_bytes == 0 and sb.ranges == [] and sb.pipe == 400
    sb.check()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("sack"), st.integers(0, 2000), st.integers(1, 600)),
    st.tuples(st.just("ack"), st.integers(0, 2000), st.just(0)),
    st.tuples(st.just("send"), st.integers(1, 300), st.just(0)),
    st.tuples(st.just("lose"), st.integers(0, 30), st.just(0)),
    st.tuples(st.just("rexmit"), st.integers(0, 30), st.just(0)),
    st.tuples(st.just("dup"), st.integers(0, 30), st.just(0)),
    st.tuples(st.just("split"), st.integers(0, 2000), st.just(0)),
    st.tuples(st.just("clear"), st.just(0), st.just(0))), max_size=60))
def test_scoreboard_invariants(ops):
    sb = board(8)
    t = 1.0
    for op, a, b in ops:
        t += 0.001
        if op == "sack":
            sb.sack([(a, a + b)])
        elif op == "ack":
            sb.ack(min(a, sb.high))
        elif op == "send":
            sb.on_transmit(sb.high, sb.high + a, t)
        elif op == "lose" and sb.recs:
            sb.mark_lost(sb.recs[a % len(sb.recs)])
        elif op == "rexmit" and sb.recs:
            sb.retransmitted(sb.recs[a % len(sb.recs)], t)
        elif op == "dup" and sb.recs:
            sb.mark_dup(sb.recs[a % len(sb.recs)])
        elif op == "split":
            sb.split_at(a)
        elif op == "clear":
            sb.clear_sacks()
        sb.check()
        assert 0 <= sb.pipe <= 2 * (sb.high - sb.una)
        holes = [r for r in sb.recs if not r.sacked]
        assert sb.last_hole() is (holes[-1] if holes else None)
        lo, hi = min(a, b), max(a, b)
        want = next((r for r in holes if r.end > lo and r.start < hi and lo < sb.high and hi > sb.una), None)
        assert sb.first_hole(lo, hi) is want, (lo, hi, sb.recs)


def test_rack_detects_by_time_and_reports_the_wait():
    sb = board(3, now=0.0)                          # sent at 0, 1 and 2 ms
    rack = Rack()
    rack.rtt_sample(0.0, 0.1)
    newly = sb.sack([(200, 300)])
    rack.update(newly, 0.102, None, lambda t: 0)
    assert abs(rack.rtt - 0.1) < 1e-9 and rack.end_seq == 300
    rack.update_reo_wnd(0, 300, False, False, sb.sacked_segs, 3, 0.1)
    assert rack.reo_wnd == 0.025                    # min_RTT / 4
    lost, timeout = rack.detect_loss(sb, 0.102)
    # records 0 and 1 were sent 2 and 1 ms before record 2: lost 23 and 24 ms from now; the
    # timer waits for the later one (RFC 8985 §6.2: timeout = max(remaining))
    assert lost == [] and abs(timeout - 0.024) < 1e-9
    lost, _ = rack.detect_loss(sb, 0.1255)
    assert [(r.start, r.end) for r in lost] == [(0, 100)]
    lost, _ = rack.detect_loss(sb, 0.1265)
    assert [(r.start, r.end) for r in lost] == [(0, 100), (100, 200)]


def test_rack_reordering_seen_keeps_a_window_in_recovery():
    sb = board(3)
    rack = Rack()
    rack.rtt_sample(0.0, 0.1)
    rack.update(sb.sack([(200, 300)]), 0.1, None, lambda t: 0)
    rack.update(sb.ack(100), 0.1, None, lambda t: 0)     # record 0 delivered after record 2
    assert rack.reordering_seen
    assert rack.update_reo_wnd(100, 300, False, True, 3, 3, 0.1) == 0.025


def test_windowed_min_expires_old_minimum():
    f = WindowedMin(10.0)
    f.update(0.0, 0.05)
    f.update(1.0, 0.2)
    assert f.value == 0.05
    f.update(11.0, 0.2)
    f.update(12.0, 0.3)
    assert f.value == 0.2


# ---------------------------------------------------------------- advertised MSS (RFC 9293 §3.7.1)

def test_advertised_mss_per_address_family():
    cfg = TcpConfig()
    assert cfg.advertised_mss(ipv6=False) == 1460 and cfg.advertised_mss(ipv6=True) == 1440
    assert TcpConfig(mtu=9000).advertised_mss(True) == 8940
    assert TcpConfig(mss=1200).advertised_mss(True) == 1200


def test_syn_carries_mtu_minus_60_on_ipv6():
    d = Dialogue(local=("2001:db8::2", 40000), remote=("2001:db8::1", 80))
    d.conn.connect(0.0)
    assert d.expect("S").mss == 1440
    d4 = Dialogue()
    d4.conn.connect(0.0)
    assert d4.expect("S").mss == 1460
    d6 = Dialogue(local=("2001:db8::2", 40000), remote=("2001:db8::1", 80), config=TcpConfig(mss=1000))
    d6.conn.connect(0.0)
    assert d6.expect("S").options[0] == Mss(1000)
