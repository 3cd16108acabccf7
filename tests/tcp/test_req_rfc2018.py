"""RFC 2018 (SACK) requirements as packet dialogues: SACK-permitted only on SYNs (§2), the
receiver's blocks (§4, and the §7 examples), the sender after a timeout (§5, §5.1) and reneging
(§8). Each test names the rule it shows; docs/rfc-requirements-sack-recovery.md lists them.

ISS and IRS sit just below 2**32, so sequence numbers wrap during every test."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.events import ScoreboardChanged
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.testing import sack_option as sack
from synack.wire.tcp import Mss, Nop, SackPermitted, Timestamps

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
SACK_OK = (Mss(1000), Nop(), Nop(), SackPermitted())


def rblocks(*pairs):
    """Our SACK option for receive-side blocks relative to R (RFC 2018 §3: left edge, and the
    sequence number after the last octet)."""
    return sack(*[(R + a, R + b) for a, b in pairs])


def rel(blocks):
    """Blocks of a segment we sent, relative to R."""
    return [((a - R) & M, (b - R) & M) for a, b in blocks]


def established(config=None, *, peer_options=SACK_OK, log=None, rtt=0.1):
    return Dialogue.established(iss=ISS, irs=IRS, config=config if config is not None else TcpConfig(nagle=False),
                                peer_options=peer_options, rtt=rtt, log=log)


# ---------------------------------------------------------------- §2 SACK-permitted

def test_sack_permitted_only_on_our_syn_never_after():
    """§2: SACK-permitted "MAY be sent in a SYN" and "MUST NOT be sent on non-SYN segments":
    the SYN offers it; no later segment (pure ACKs, data, ACKs with SACK blocks, D-SACKs,
    retransmissions) carries it."""
    d = Dialogue(iss=ISS, config=TcpConfig(nagle=False, ack_delay=None))
    d.irs = IRS
    d.conn.connect(d.now)
    syn = d.expect("S", seq=ISS)
    assert any(isinstance(o, SackPermitted) for o in syn.options)
    d.now += 0.1
    d.peer("S.", seq=IRS, ack=A, options=SACK_OK)
    d.expect(".", seq=A, ack=R)
    d.peer(".", seq=R + 500, ack=A, data=b"b" * 500)             # out of order: SACK block
    d.expect(".", ack=R, options=rblocks((500, 1000)))
    d.peer(".", seq=R + 500, ack=A, data=b"b" * 500)             # duplicate: D-SACK
    d.expect(".", ack=R, options=rblocks((500, 1000), (500, 1000)))
    d.conn.send(b"x" * 300)
    d.expect("P.", seq=A, ack=R, length=300)                     # data with a SACK block
    d.expect("P.", seq=A, length=300, at=d.now + 0.4)            # a tail loss probe (RFC 8985)
    d.peer(".", seq=R, ack=A + 300, data=b"a" * 500)
    d.expect(".", ack=R + 1000, options=())
    ours = [s for _, way, s in d.history if way == ">"]
    assert len(ours) == 7
    assert [s for s in ours[1:] if any(isinstance(o, SackPermitted) for o in s.options)] == []


def test_syn_ack_offers_sack_permitted_only_to_a_syn_that_did():
    """§2, §4: a passive open answers SACK-permitted with SACK-permitted, and a SYN without it
    with a SYN-ACK without it (the connection then never sends SACK options)."""
    d = Dialogue.in_state(State.LISTEN, iss=ISS)
    d.peer("S", seq=IRS, options=(Mss(1000), Nop(), Nop(), SackPermitted()))
    sa = d.expect("S.", seq=ISS, ack=R)
    assert sa.sack_permitted and d.conn.sack_ok
    d = Dialogue.in_state(State.LISTEN, iss=ISS)
    d.peer("S", seq=IRS, options=(Mss(1000),))
    sa = d.expect("S.", seq=ISS, ack=R)
    assert not sa.sack_permitted and not d.conn.sack_ok


# ---------------------------------------------------------------- §4 the data receiver

def test_no_sack_option_without_sack_permitted():
    """§4: "If the data receiver has not received a SACK-Permitted option for a given
    connection, it MUST NOT send SACK options on that connection": out-of-order data is
    ACKed at once, without a block."""
    d = established(TcpConfig(), peer_options=(Mss(1000),))
    d.peer(".", seq=R + 500, ack=A, data=b"b" * 500)
    d.expect(".", ack=R, options=())
    d.peer(".", seq=R + 1500, ack=A, data=b"c" * 500)
    d.expect(".", ack=R, options=())
    d.conn.send(b"x" * 100)
    d.expect("P.", seq=A, ack=R, options=())


def test_sack_on_every_ack_while_data_is_held_out_of_order():
    """§4: "SACK options SHOULD be included in all ACKs which do not ACK the highest sequence
    number in the data receiver's queue", and "The receiver SHOULD send an ACK for every valid
    segment that arrives containing new data, and each of these "duplicate" ACKs SHOULD bear a
    SACK option". With delayed ACKs on (40 ms): every segment with new data is ACKed at once
    while a hole remains, every ACK (our data segments too) carries the block, and the one that
    fills the hole carries none."""
    d = established(TcpConfig(nagle=False))
    assert d.conn.config.ack_delay == 0.040
    d.peer(".", seq=R + 1000, ack=A, data=b"c" * 500)
    d.expect(".", ack=R, options=rblocks((1000, 1500)))
    d.conn.send(b"x" * 100)
    d.expect("P.", seq=A, ack=R, length=100, options=rblocks((1000, 1500)))
    d.peer(".", seq=R, ack=A + 100, data=b"a" * 500)            # in order, the hole stays
    d.expect(".", ack=R + 500, options=rblocks((1000, 1500)))
    d.peer(".", seq=R + 500, ack=A + 100, data=b"b" * 500)      # fills the hole
    d.expect(".", ack=R + 1500, options=())
    d.expect_nothing(until=d.now + 1)


def test_rfc2018_section7_case1_in_order_data_has_no_sack():
    """§7 case 1: the first 4 of 8 segments arrive: normal ACKs, no SACK option."""
    d = established(TcpConfig(ack_delay=None))
    for k in range(4):
        d.peer(".", seq=R + 500 * k, ack=A, data=b"d" * 500)
        d.expect(".", ack=R + 500 * (k + 1), options=())


def test_rfc2018_section7_case2_one_growing_block():
    """§7 case 2: the first segment is dropped, the other seven arrive: each ACK acknowledges
    the left edge and reports one block, growing (first block = the block holding the segment
    that triggered the ACK, §4)."""
    d = established(TcpConfig())
    for k in range(1, 8):
        d.peer(".", seq=R + 500 * k, ack=A, data=b"d" * 500)
        d.expect(".", ack=R, options=rblocks((500, 500 * (k + 1))))


def test_rfc2018_section7_case3_three_blocks_beside_timestamps():
    """§7 case 3, with the timestamp option (§3: 3 blocks at most): the 2nd, 4th, 6th and 8th
    segments are dropped; then the 4th arrives out of order, then the 2nd. The blocks are
    exactly those of the RFC's tables: the newest block first (§4 MUST), then the most recently
    reported ones (§4 SHOULD)."""
    opts = (Mss(1000), SackPermitted(), Timestamps(100, 0))
    d = established(TcpConfig(ack_delay=None), peer_options=opts)
    base = 5000                                   # the RFC's left edge; offsets below are - 5000
    tsv = [101]

    def seg(start):
        tsv[0] += 1
        d.peer(".", seq=R + start - base, ack=A, data=b"d" * 500,
               options=(Nop(), Nop(), Timestamps(tsv[0], 0)))
        out = d.expect(".")
        return (out.ack - R) & M, [(a + base, b + base) for a, b in rel(out.sack_blocks)]

    assert seg(5000) == (500, [])
    assert seg(6000) == (500, [(6000, 6500)])
    assert seg(7000) == (500, [(7000, 7500), (6000, 6500)])
    assert seg(8000) == (500, [(8000, 8500), (7000, 7500), (6000, 6500)])
    assert seg(6500) == (500, [(6000, 7500), (8000, 8500)])
    assert seg(5500) == (2500, [(8000, 8500)])


# ---------------------------------------------------------------- §5 the data sender after a timeout

def test_rto_forgets_sack_bits_and_resends_unreported_sacked_data():
    """§5: "After a retransmit timeout the data sender SHOULD turn off all of the SACKed bits"
    and "MUST retransmit the segment at the left edge"; §5.1: "the data sender MUST ignore prior
    SACK information in determining which data to retransmit". Segment 2 was SACKed; after the
    timeout the ACK of the left edge reports no block (the receiver reneged), so segment 2 is
    sent again like the others, in sequence order."""
    log = []
    d = established(TcpConfig(nagle=False), log=log.append)
    d.conn.send(b"x" * 4000)
    for i in range(4):
        d.expect("." if i < 3 else "P.", seq=A + 1000 * i, length=1000)
    t0 = d.now
    d.now += 0.1
    d.peer(".", seq=R, ack=A, options=sack((A + 2000, A + 3000)))
    assert d.conn.sb.sacked_bytes == 1000
    # RACK: one SACKed segment, reo_wnd = min_RTT/4; the RACK timer marks segments 0 and 1 lost
    # at t0 + 0.125 and fast recovery (PRR) resends the first; then nothing is heard: the timeout
    d.expect(".", seq=A, length=1000, at=t0 + 0.125)
    seg = d.expect(".", seq=A, length=1000, at=t0 + 0.125 + 1.0)  # the left edge again
    assert seg.payload == b"x" * 1000
    assert d.conn.sb.sacked_bytes == 0 and d.conn.sb.ranges == []
    assert [r.reason for r in log if isinstance(r, ScoreboardChanged)][-1] == "rto"
    d.expect_nothing()                                          # cwnd = 1 SMSS (RFC 5681 §3.1)
    d.now += 0.1
    d.peer(".", seq=R, ack=A + 1000)                             # no SACK block: reneged
    d.expect(".", seq=A + 1000, length=1000)
    d.expect(".", seq=A + 2000, length=1000)                     # SACKed before the timeout
    d.expect_nothing()


# ---------------------------------------------------------------- §8 reneging

def _receiver_holding_two_blocks():
    d = established(TcpConfig(ack_delay=None, rcv_buf=8000))
    d.peer(".", seq=R + 1000, ack=A, data=b"b" * 500)
    d.expect(".", ack=R, options=rblocks((1000, 1500)))
    d.peer(".", seq=R + 3000, ack=A, data=b"c" * 500)
    d.expect(".", ack=R, options=rblocks((3000, 3500), (1000, 1500)))
    return d


def test_reneging_receiver_reports_only_data_it_still_holds():
    """§8: the receiver "MAY elect not to keep data which it has reported in a SACK option"
    (synack does when SO_RCVBUF is lowered); then "all SACK blocks MUST NOT report any old data
    which is no longer actually held by the receiver"."""
    d = _receiver_holding_two_blocks()
    d.conn.rcvbuf.capacity = 2000                               # SO_RCVBUF lowered: [3000, 3500) goes
    d.peer(".", seq=R + 1500, ack=A, data=b"b" * 100)
    d.expect(".", ack=R, options=rblocks((1000, 1600)))
    d.peer(".", seq=R, ack=A, data=b"a" * 1000)
    d.expect(".", ack=R + 1600, options=())


def test_reneging_receiver_reports_the_newest_segment_even_when_discarding_it():
    """§8: "The first SACK block MUST reflect the newest segment. Even if the newest segment is
    going to be discarded ... the first SACK block MUST report, at a minimum, the left and right
    edges of the newest segment." The segment lies inside the window advertised before SO_RCVBUF
    was lowered (the edge never moves left), beyond what the smaller buffer keeps."""
    d = _receiver_holding_two_blocks()
    d.conn.rcvbuf.capacity = 2000
    d.peer(".", seq=R + 2500, ack=A, data=b"c" * 100)           # accepted, then discarded
    d.expect(".", ack=R, options=rblocks((2500, 2600), (1000, 1500)))
    assert d.conn.rcvbuf.ooo_ranges() == [(1000, 1500)]        # nothing of it is kept
    d.peer(".", seq=R + 1500, ack=A, data=b"b" * 100)           # the next segment: held data only
    d.expect(".", ack=R, options=rblocks((1000, 1600)))


def test_reneging_receiver_reports_the_kept_part_and_the_edges_of_a_segment_it_cuts():
    """§8, a segment partly inside the lowered buffer: the first block runs from the held range
    that holds its first part to the segment's right edge."""
    d = _receiver_holding_two_blocks()
    d.conn.rcvbuf.capacity = 2000
    d.peer(".", seq=R + 1500, ack=A, data=b"b" * 1000)          # [1500, 2000) kept, the rest cut
    d.expect(".", ack=R, options=rblocks((1000, 2500)))
    assert d.conn.rcvbuf.ooo_ranges() == [(1000, 2000)]
