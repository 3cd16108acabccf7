"""RFC 2883 (D-SACK) as packet dialogues: the receiver's rules of §4 and the examples of §4.1
and §4.2, and how the sender tells a D-SACK block apart (§5). Offsets in the comments are the
RFC's sequence numbers; the dialogue adds them to R (receiving) or A (sending), both just
below 2**32 so that the sequence numbers wrap."""

from synack.tcp.config import TcpConfig
from synack.tcp.events import ScoreboardChanged
from synack.testing import Dialogue
from synack.testing import sack_option as sack
from synack.wire.tcp import Mss, Nop, SackPermitted, Timestamps

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
SACK_OK = (Mss(1000), Nop(), Nop(), SackPermitted())


def rblocks(*pairs):
    return sack(*[(R + a, R + b) for a, b in pairs])


def established(config=None, *, peer_options=SACK_OK, log=None):
    cfg = config if config is not None else TcpConfig(nagle=False, ack_delay=None)
    return Dialogue.established(iss=ISS, irs=IRS, config=cfg, peer_options=peer_options, rtt=0.1, log=log)


def data(d, start, end, ack_to, blocks=()):
    """The peer sends octets [start, end) (RFC numbers, 500 = R + 500); we answer at once."""
    d.peer(".", seq=R + start, ack=A, data=b"d" * (end - start))
    d.expect(".", seq=A, ack=R + ack_to, options=rblocks(*blocks) if blocks else ())


# ---------------------------------------------------------------- §4 the receiver

def test_dsack_example2_duplicate_below_the_ack_then_the_sack_blocks():
    """§4.1.2: a duplicate below the cumulative ACK is reported in the first block, followed by
    the ordinary SACK blocks (rule (5): "additional SACK blocks ... as specified in RFC 2018")."""
    d = established()
    data(d, 0, 500, 500)                      # 3000-3499
    data(d, 500, 1000, 1000)                  # 3500-3999
    data(d, 1500, 2000, 1000, [(1500, 2000)])  # 4500-4999 (4000-4499 lost)
    data(d, 0, 500, 1000, [(0, 500), (1500, 2000)])   # 3000-3499 again: D-SACK first


def test_dsack_reported_once_per_duplicate_received():
    """§4 rule (2): "Each duplicate contiguous sequence of data received is reported in at most
    one D-SACK block. (I.e., the receiver sends two identical D-SACK blocks in subsequent packets
    only if the receiver receives two duplicate segments.)"; rule (1): only a duplicate in the
    most recent packet."""
    d = established()
    data(d, 0, 500, 500)
    data(d, 0, 500, 500, [(0, 500)])
    data(d, 0, 500, 500, [(0, 500)])          # a second duplicate: a second identical D-SACK
    data(d, 500, 600, 600)                    # new data: no D-SACK any more
    d.conn.send(b"x" * 100)
    d.expect("P.", seq=A, ack=R + 600, options=())


def test_dsack_example4_partial_duplicate_filling_the_hole():
    """§4.2.1: the first sub-segment [1000, 1500) is a duplicate, the rest fills the hole up to
    the held block [2000, 2500): ACK 2500, D-SACK 1000-1500 ("only the already received
    subsegment"), rule (3) edges."""
    d = established()
    data(d, 0, 500, 500)                      # 500-999 in the RFC (offset 500 = RCV.NXT start)
    data(d, 1500, 2000, 500, [(1500, 2000)])  # 2000-2499 held
    data(d, 500, 1000, 1000, [(1500, 2000)])  # 1000-1499 (delayed original)
    data(d, 500, 1500, 2000, [(500, 1000)])   # 1000-2000: dup 1000-1499, then fills to 2500


def test_dsack_example5_first_of_two_duplicates_below_the_ack():
    """§4.2.2: a segment with two non-contiguous duplicate sub-segments below the (new)
    cumulative ACK: only the first is reported."""
    d = established()
    data(d, 0, 500, 500)                                  # 500-999
    data(d, 2500, 3000, 500, [(2500, 3000)])              # 3000-3499 (1500-1999, 2500-2999 lost)
    data(d, 500, 1000, 1000, [(2500, 3000)])              # 1000-1499 delayed
    data(d, 1500, 2000, 1000, [(1500, 2000), (2500, 3000)])   # 2000-2499 delayed
    # 1000-2499 resent in one segment: dups 1000-1499 and 2000-2499, new 1500-1999
    data(d, 500, 2000, 2000, [(500, 1000), (2500, 3000)])


def test_dsack_example6_first_of_two_duplicates_above_the_ack_then_its_block():
    """§4.2.3 (as its errata read it: 2500-2999 is the delayed segment that arrives): two
    non-contiguous duplicate sub-segments above the cumulative ACK: the first in the D-SACK
    block, then rule (4): "the second SACK block ... should specify that (possibly larger) block
    of data", then the other blocks."""
    d = established()
    data(d, 0, 500, 500)                                               # 500-999
    data(d, 3000, 3500, 500, [(3000, 3500)])                           # 3500-3999
    data(d, 1000, 1500, 500, [(1000, 1500), (3000, 3500)])             # 1500-1999 delayed
    data(d, 2000, 2500, 500, [(2000, 2500), (1000, 1500), (3000, 3500)])   # 2500-2999 delayed
    # 1500-2999 resent: dups 1500-1999 and 2500-2999 around the new 2000-2499
    data(d, 1000, 2500, 500, [(1000, 1500), (1000, 2500), (3000, 3500)])


def test_dsack_then_holder_within_three_blocks_beside_timestamps():
    """§4 rule (5) with RFC 2018's room: a D-SACK, the block holding it and one more block make
    the three that fit beside the timestamp option; the oldest block is left out."""
    opts = (Mss(1000), SackPermitted(), Timestamps(100, 0))
    d = established(peer_options=opts)
    for k, start in enumerate((1000, 2000, 3000, 2000)):
        d.peer(".", seq=R + start, ack=A, data=b"d" * 500, options=(Nop(), Nop(), Timestamps(101 + k, 0)))
        seg = d.expect(".", ack=R)
    assert [((a - R) & M, (b - R) & M) for a, b in seg.sack_blocks] == [(2000, 2500), (2000, 2500),
                                                                          (3000, 3500)]


# ---------------------------------------------------------------- §5 the sender

def sender(log=None):
    d = established(TcpConfig(nagle=False), log=log)
    d.conn.send(b"x" * 4000)
    for i in range(4):
        d.expect("." if i < 3 else "P.", seq=A + 1000 * i, length=1000)
    return d


def test_dsack_below_the_ack_of_the_same_packet_is_recognised():
    """§5: "the sender should compare the sequence space in the first SACK block to the
    cumulative ACK which is carried IN THE SAME PACKET": below it, a duplicate. The block is not
    SACK information (nothing is marked, no DupAck), and RACK widens its reordering window
    (RFC 8985 §6.2 Step 4)."""
    log = []
    d = sender(log.append)
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 2000, options=sack((A, A + 1000)))
    assert d.conn.rack.reo_wnd_mult == 2
    assert d.conn.sb.sacked_bytes == 0 and d.conn._dupacks == 0
    assert [r.reason for r in log if isinstance(r, ScoreboardChanged)] == ["dsack"]


def test_dsack_inside_the_second_block_is_recognised():
    """§5: "If the sequence space in the first SACK block is greater than the cumulative ACK,
    then the sender next compares [it] with ... the second SACK block": inside it, a duplicate
    above the cumulative ACK (§4.1.3). The second block is ordinary SACK information."""
    d = sender()
    d.now += 0.1
    d.peer(".", seq=R, ack=A, options=sack((A + 2000, A + 3000)))
    assert d.conn.rack.reo_wnd_mult == 1 and d.conn.sb.sacked_bytes == 1000
    d.peer(".", seq=R, ack=A, options=sack((A + 2000, A + 3000), (A + 2000, A + 4000)))
    assert d.conn.rack.reo_wnd_mult == 2
    assert d.conn.sb.sacked_bytes == 2000 and d.conn.sb.ranges == [[2000, 4000]]


def test_sack_block_of_a_reordered_old_ack_is_not_taken_for_a_dsack():
    """§5: "An implementation MUST NOT compare the sequence space in the SACK block to the TCP
    state variable snd.una ... if ACK packets are reordered." An old ACK (SEG.ACK < SND.UNA)
    arrives late with a block between SEG.ACK and SND.UNA: against SND.UNA it would look like a
    D-SACK; it is not one, and it does not widen the reordering window."""
    d = sender()
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 2000)
    d.peer(".", seq=R, ack=A, options=sack((A + 1000, A + 2000)))   # sent before the one above
    assert d.conn.rack.reo_wnd_mult == 1 and d.conn.rack.dsack_round is None
    assert d.conn.snd_una == (A + 2000) & M
