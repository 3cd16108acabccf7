"""Packet dialogues: SACK as receiver (RFC 2018 §4, D-SACK RFC 2883 §4) and as sender (RFC 6675
scoreboard and recovery, RFC 3042 Limited Transmit, RFC 6937 PRR), NewReno without SACK
(RFC 6582), reneging (RFC 2018 §8) and the retransmission timeout (RFC 5681 §3.1, RFC 2018 §5)."""

from synack.tcp.config import TcpConfig
from synack.tcp.events import RecoveryEntered, RecoveryExited, ScoreboardChanged, SegmentLost
from synack.testing import Dialogue
from synack.testing import sack_option as sack
from synack.wire.tcp import Mss, Nop, SackPermitted, Timestamps

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
SACK_OK = (Mss(1000), Nop(), Nop(), SackPermitted())


def rblocks(*pairs):
    """Our SACK option for receive-side blocks given relative to R."""
    return sack(*[(R + a, R + b) for a, b in pairs])


def established(config=None, *, rtt=0.1, peer_options=SACK_OK, log=None):
    """Active open with an RTT of ``rtt`` seconds measured on the handshake."""
    return Dialogue.established(iss=ISS, irs=IRS, config=config if config is not None else TcpConfig(nagle=False),
                                peer_options=peer_options, rtt=rtt, log=log)


def send_segments(d, n, size=1000, start=A):
    d.conn.send(b"x" * (size * n))
    for i in range(n):
        d.expect("." if i < n - 1 else "P.", seq=start + size * i, length=size)


# ---------------------------------------------------------------- receiver: SACK blocks

def test_sack_blocks_most_recent_first_at_most_four():
    d = established(TcpConfig(ack_delay=None))
    for k, (a, b) in enumerate([(100, 200), (300, 400), (500, 600), (700, 800), (900, 1000)]):
        d.peer(".", seq=R + a, ack=A, data=b"d" * (b - a))
        want = [(900, 1000), (700, 800), (500, 600), (300, 400), (100, 200)][4 - k:][:4]
        d.expect(".", ack=R, options=rblocks(*want))
    # [200, 300) joins [100, 200) and [300, 400): the merged block holds the newest segment
    d.peer(".", seq=R + 200, ack=A, data=b"d" * 100)
    d.expect(".", ack=R, options=rblocks((100, 400), (900, 1000), (700, 800), (500, 600)))
    # the hole at RCV.NXT filled: RCV.NXT moves to 400, the rest stays reported
    d.peer(".", seq=R, ack=A, data=b"d" * 100)
    d.expect(".", ack=R + 400, options=rblocks((900, 1000), (700, 800), (500, 600)))


def test_sack_blocks_three_beside_timestamps():
    opts = SACK_OK[:1] + (SackPermitted(), Timestamps(10, 0))
    d = established(TcpConfig(ack_delay=None), peer_options=opts)
    for k, a in enumerate((100, 300, 500, 700)):
        d.peer(".", seq=R + a, ack=A, data=b"d" * 100, options=(Nop(), Nop(), Timestamps(11 + k, 0)))
        seg = d.expect(".", ack=R)
        blocks = seg.sack_blocks
        assert len(blocks) == min(k + 1, 3)
        assert blocks[0] == ((R + a) & M, (R + a + 100) & M)    # the newest first


# ---------------------------------------------------------------- receiver: D-SACK

def test_dsack_for_a_duplicate_below_rcv_nxt():
    d = established(TcpConfig(ack_delay=None))
    d.peer(".", seq=R, ack=A, data=b"a" * 500)
    d.expect(".", ack=R + 500, options=())
    d.peer(".", seq=R, ack=A, data=b"a" * 500)                  # RFC 2883 §4.1.1
    d.expect(".", ack=R + 500, options=rblocks((0, 500)))
    d.peer(".", seq=R + 500, ack=A, data=b"b" * 100)            # reported once only (rule 2)
    d.expect(".", ack=R + 600, options=())


def test_dsack_for_a_duplicate_of_out_of_order_data_then_its_block():
    d = established(TcpConfig(ack_delay=None))
    d.peer(".", seq=R + 500, ack=A, data=b"c" * 500)
    d.expect(".", ack=R, options=rblocks((500, 1000)))
    d.peer(".", seq=R + 1000, ack=A, data=b"d" * 500)
    d.expect(".", ack=R, options=rblocks((500, 1500)))
    d.peer(".", seq=R + 1000, ack=A, data=b"d" * 500)           # RFC 2883 §4.1.3, example 3
    d.expect(".", ack=R, options=rblocks((1000, 1500), (500, 1500)))


def test_dsack_for_a_partial_duplicate():
    d = established(TcpConfig(ack_delay=None))
    d.peer(".", seq=R, ack=A, data=b"a" * 500)
    d.expect(".", ack=R + 500)
    d.peer(".", seq=R + 300, ack=A, data=b"a" * 200 + b"b" * 300)   # §4.2: only the old part
    d.expect(".", ack=R + 800, options=rblocks((300, 500)))
    assert d.conn.receive(2000) == b"a" * 500 + b"b" * 300


def test_no_dsack_without_sack_permitted():
    d = established(TcpConfig(ack_delay=None), peer_options=(Mss(1000),))
    d.peer(".", seq=R, ack=A, data=b"a" * 500)
    d.expect(".", ack=R + 500)
    d.peer(".", seq=R, ack=A, data=b"a" * 500)
    d.expect(".", ack=R + 500, options=())


# ---------------------------------------------------------------- sender: RFC 6675 with Limited Transmit

def test_fast_retransmit_on_third_sack_dupack_with_limited_transmit():
    """RACK off: RFC 6675 DupAcks and IsLost. The window changes on every duplicate (as Linux's
    does): with SACK they count all the same (RFC 6675 §2). The first two send new data (§5 step
    3, RFC 3042); the third retransmits the hole (IsLost(HighACK+1): 3000 > 2 * SMSS SACKed)."""
    log = []
    d = established(TcpConfig(nagle=False, rack=False), log=log.append)
    d.conn.send(b"x" * 12000)
    for i in range(10):                                       # IW10 (RFC 6928)
        d.expect(".", seq=A + 1000 * i, length=1000)
    d.expect_nothing()
    d.now += 0.1
    d.peer(".", seq=R, ack=A, window=60000, options=sack((A + 1000, A + 2000)))
    d.expect(".", seq=A + 10000, length=1000)                  # Limited Transmit
    # this one carries data too: still a duplicate ACK by RFC 6675 §2 (new SACKed octets)
    d.peer("P.", seq=R, ack=A, window=50000, data=b"!", options=sack((A + 1000, A + 3000)))
    d.expect("P.", seq=A + 11000, ack=R + 1, length=1000)      # Limited Transmit (+ our ACK)
    d.expect_nothing()
    d.peer(".", seq=R + 1, ack=A, window=40000, options=sack((A + 1000, A + 4000)))
    d.expect(".", seq=A, length=1000)                          # fast retransmit
    d.expect_nothing()
    entered = [r for r in log if isinstance(r, RecoveryEntered)]
    # FlightSize without the two Limited Transmit segments (RFC 5681 §3.2 step 2, RFC 6675 §5
    # (4.2), RFC 3042 §2); CUBIC: 0.7 * min(FlightSize, cwnd), both 10000 here
    assert [(r.kind, r.trigger, r.flight) for r in entered] == [("sack", "dupacks", 10000)]
    assert d.conn.info().snd_ssthresh == 7000
    # the rest arrives; one cumulative ACK ends recovery: cwnd = ssthresh (RFC 6675 §5 (A))
    d.peer(".", seq=R + 1, ack=A + 12000)
    assert [type(r).__name__ for r in log if isinstance(r, RecoveryExited)] == ["RecoveryExited"]
    assert d.conn.info().snd_cwnd == 7000
    d.expect_nothing(until=d.now + 100)


def test_newreno_fast_retransmit_with_limited_transmit_without_sack():
    d = established(TcpConfig(nagle=False), peer_options=(Mss(1000),))
    d.conn.send(b"x" * 12000)
    for i in range(10):
        d.expect(".", seq=A + 1000 * i, length=1000)
    d.now += 0.1
    d.peer(".", seq=R, ack=A)                                 # RFC 5681 duplicates: same window
    d.expect(".", seq=A + 10000, length=1000)                  # RFC 3042: cwnd + 1 segment
    d.peer(".", seq=R, ack=A)
    d.expect("P.", seq=A + 11000, length=1000)                 # cwnd + 2 segments
    d.peer(".", seq=R, ack=A)
    d.expect(".", seq=A, length=1000)                          # third: fast retransmit
    # Limited Transmit segments are not FlightSize (RFC 3042 §2): 0.7 * 10000
    assert d.conn.info().snd_ssthresh == 7000


def test_newreno_partial_acks_repair_one_hole_per_round_trip():
    """No SACK: RFC 6582 §3.2 step 5, each partial ACK retransmits the next hole at once."""
    d = established(TcpConfig(nagle=False, cc="newreno", newreno_exit="ssthresh"), peer_options=(Mss(1000),))
    send_segments(d, 10)
    d.now += 0.1
    for _ in range(3):
        d.peer(".", seq=R, ack=A)                              # segments 0, 3 and 6 lost
    d.expect(".", seq=A, length=1000)
    d.peer(".", seq=R, ack=A + 3000)                          # partial ACK
    d.expect(".", seq=A + 3000, length=1000)
    d.peer(".", seq=R, ack=A + 6000)                          # partial ACK
    d.expect(".", seq=A + 6000, length=1000)
    d.peer(".", seq=R, ack=A + 10000)                         # full ACK
    assert d.conn.info().snd_cwnd == 5000                      # ssthresh = FlightSize / 2
    d.expect_nothing(until=d.now + 100)


# ---------------------------------------------------------------- sender: several losses, one recovery

def test_several_losses_in_one_window_repaired_in_one_recovery():
    """Segments 1, 4 and 7 of 10 are lost. The SACKs arrive one by one; RACK marks each hole
    lost once three segments are SACKed (RFC 8985 §6.2 Step 4: no reordering seen, reo_wnd = 0)
    and PRR paces the repairs: each lost segment is sent exactly once, SACKed data never, and
    one recovery episode covers all three holes (no RTO)."""
    log = []
    d = established(log=log.append)
    send_segments(d, 10)
    d.now += 0.1
    arrived = [0, 2, 3, 5, 6, 8, 9]
    una, sacked = 0, []
    rexmits = []
    for k in arrived:
        if k == una:
            una += 1
        else:
            sacked.append(k)
        blocks = _blocks(sacked, una)
        d.peer(".", seq=R, ack=A + 1000 * una, options=sack(*blocks) if blocks else ())
        while d.sent:
            rexmits.append(d.sent.popleft())
        d._collect()
        while d.sent:
            rexmits.append(d.sent.popleft())
    assert [((s.seq - A) & M) // 1000 for s in rexmits] == [1, 4, 7]
    assert all(len(s.payload) == 1000 for s in rexmits)
    # the retransmissions arrive: one cumulative ACK for everything
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 10000)
    kinds = [type(r).__name__ for r in log if isinstance(r, (RecoveryEntered, RecoveryExited))]
    assert kinds == ["RecoveryEntered", "RecoveryExited"]
    lost = sorted(((r.seq - A) & M) // 1000 for r in log if isinstance(r, SegmentLost))
    assert lost == [1, 4, 7]
    assert d.conn.info().total_retrans == 3
    d.expect_nothing(until=d.now + 100)


def _blocks(sacked, una):
    """SACK blocks for segment numbers ``sacked`` (contiguous runs, newest run first)."""
    runs = []
    for k in sacked:
        if k < una:
            continue
        if runs and runs[-1][1] == k:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1])
    runs.reverse()
    return [(A + 1000 * a, A + 1000 * b) for a, b in runs][:4]


# ---------------------------------------------------------------- reneging and the RTO

def test_reneged_sack_data_is_kept_and_sent_again():
    """RFC 2018 §8: SACKed data stays in the send buffer until cumulatively acknowledged. The
    receiver SACKs segment 2, then acknowledges up to segment 2 without SACK: it dropped it."""
    log = []
    d = established(TcpConfig(nagle=False, rack=False), log=log.append)
    send_segments(d, 3)
    d.now += 0.1
    d.peer(".", seq=R, ack=A, options=sack((A + 1000, A + 2000)))
    d.peer(".", seq=R, ack=A + 1000)                          # SACKed data at SND.UNA: reneged
    assert [r.reason for r in log if isinstance(r, ScoreboardChanged)] == ["sack", "reneged"]
    # the timeout resends from SND.UNA: the reneged segment too, with the same bytes
    seg = d.expect(".", seq=A + 1000, length=1000, at=1.2)   # RTO re-armed by the ACK at 0.2
    assert seg.payload == b"x" * 1000


def test_rto_restarts_slow_start_at_one_segment():
    """RFC 5681 §3.1: after the timeout cwnd = LW = 1 SMSS, ssthresh = 0.7 FlightSize (CUBIC
    §4.8); only the first segment goes (RFC 2018 §5: the left edge); the next ACK opens 2."""
    d = established(TcpConfig(nagle=False, rack=False))
    send_segments(d, 5)
    d.expect(".", seq=A, length=1000, at=1.1)                 # RTO 1 s (min_rto) after sending
    d.expect_nothing()
    info = d.conn.info()
    assert info.snd_cwnd == 1000 and info.snd_ssthresh == 3500
    d.peer(".", seq=R, ack=A + 1000)
    d.expect(".", seq=A + 1000, length=1000)
    d.expect(".", seq=A + 2000, length=1000)
    d.expect_nothing()


def test_sacked_data_is_not_sent_again_after_rto():
    """RFC 2018 §5: SACK bits off after a timeout; the ACK of the retransmission reports the
    blocks again, and RFC 6675 §5.1 uses them: segment 2 (SACKed) is skipped."""
    d = established(TcpConfig(nagle=False, rack=False))
    send_segments(d, 4)
    d.now += 0.1
    d.peer(".", seq=R, ack=A, options=sack((A + 2000, A + 3000)))
    d.expect(".", seq=A, length=1000, at=1.1)                 # the timeout
    d.peer(".", seq=R, ack=A + 1000, options=sack((A + 2000, A + 3000)))
    d.expect(".", seq=A + 1000, length=1000)
    d.expect("P.", seq=A + 3000, length=1000)
    d.expect_nothing()


def test_prr_sends_in_proportion_to_delivered_data():
    """RFC 6937 §3: while pipe > ssthresh, sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS)
    - prr_out. NewReno's ssthresh is half of RecoverFS (20 segments): one segment for every
    two delivered, the first being the fast retransmit (RFC 6675 §5 step 4.3)."""
    d = established(TcpConfig(nagle=False, rack=False, cc="newreno", initial_window=20000))
    d.conn.send(b"x" * 40000)
    for i in range(20):
        d.expect(".", seq=A + 1000 * i, length=1000)
    d.expect_nothing()
    d.now += 0.1
    sent = []
    for k in range(1, 13):                                    # segment 0 lost, 1..12 SACKed
        d.peer(".", seq=R, ack=A, options=sack((A + 1000, A + 1000 * (k + 1))))
        d._collect()
        while d.sent:
            sent.append((k, ((d.sent.popleft().seq - A) & M) // 1000))
    # duplicates 1 and 2: each SACK takes a segment out of pipe, cwnd - pipe = 1 segment of new
    # data (RFC 6675 §5 step 3); from the third on, recovery: 10 ACKs send 5 segments
    lt = [s for k, s in sent if k < 3]
    rec = [s for k, s in sent if k >= 3]
    assert lt == [20, 21]                                     # Limited Transmit (pipe-based)
    assert rec == [0, 22, 23, 24, 25]                         # retransmission, then new data
    assert [k for k, _ in sent if k >= 3] == [3, 5, 7, 9, 11]
