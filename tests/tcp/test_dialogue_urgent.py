"""Packet dialogues for the receiving side of urgent data (RFC 9293 §3.8.5 and §3.10.7.4, sixth
step): the application is told when the urgent pointer appears or advances, whether or not the
urgent data can be taken yet (MUST-32; out of order, zero window: MUST-66), and can ask how
many urgent octets it has still to read (MUST-33)."""

from synack.tcp.config import TcpConfig
from synack.tcp.events import DataReceived, UrgentData
from synack.tcp.states import State
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
S = State
M = 2**32
NOACK = TcpConfig(ack_delay=None)


def urgent(d: Dialogue, pointer: int, pending: int) -> UrgentData:
    return UrgentData(d.now, d.id, pointer % M, pending)


def test_urgent_pointer_beyond_a_hole_is_signalled_before_its_data():
    """MUST-32: the pointer arrives on an out-of-order segment; the event comes at once,
    though no octet can be delivered. MUST-33: ``urgent_pending`` (and ``TcpInfo``) count the
    urgent octets not yet read, received or not, down to zero as the application reads."""
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("UP.", seq=R + 10, ack=A, data=b"0123456789", urgent=5)   # RCV.UP = R + 15
    d.expect(".", seq=A, ack=R)                                       # out of order: ACK at once
    assert d.events() == [urgent(d, R + 15, 15)]
    assert d.conn.urgent_pending == 15 and d.conn.info().urgent_pending == 15
    assert d.conn.receive(100) is None
    d.peer("P.", seq=R, ack=A, data=b"abcdefghij")                    # the hole fills
    d.expect(".", seq=A, ack=R + 20)
    assert d.events() == [DataReceived(d.now, d.id, 20, urgent=True)]    # no second UrgentData
    assert d.conn.receive(12) == b"abcdefghij01"
    assert d.conn.urgent_pending == 3 and d.conn.info().urgent_pending == 3
    assert d.conn.receive(3) == b"234"                                # the last urgent octet
    assert d.conn.urgent_pending == 0 and d.conn.info().urgent_pending == 0


def test_urgent_pointer_at_a_zero_window_is_signalled():
    """MUST-66 (URG half): with the receive window closed the peer's probe octet is not taken,
    but its urgent pointer is (§3.10.7.4 first step, "special allowance ... URGs"): the
    application hears of it, and learns that everything up to the pointer is urgent."""
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(rcv_buf=1000, ack_delay=None))
    d.peer("P.", seq=R, ack=A, data=b"x" * 1000)
    d.expect(".", seq=A, ack=R + 1000, window=0)
    d.events()
    d.peer("UP.", seq=R + 1000, ack=A, data=b"!", urgent=1)         # RCV.UP = R + 1001
    d.expect(".", seq=A, ack=R + 1000, window=0)                    # the octet is not taken
    assert d.events() == [urgent(d, R + 1001, 1001)]
    assert d.conn.receive(1000) == b"x" * 1000
    assert d.conn.urgent_pending == 1
    d.expect(".", seq=A, ack=R + 1000, window=1000)                 # window update
    d.peer("UP.", seq=R + 1000, ack=A, data=b"!", urgent=1)         # the probe again
    d.expect(".", seq=A, ack=R + 1001)
    assert d.events() == [DataReceived(d.now, d.id, 1, urgent=True)]
    assert d.conn.receive(10) == b"!" and d.conn.urgent_pending == 0


def test_urgent_pointer_advance_is_signalled_each_time_and_only_then():
    """MUST-32: "whenever the urgent pointer advances in the data stream", even while urgent
    data is still unread; a repeated pointer, or one at or before what was read, says nothing
    new (sixth step: RCV.UP <- max(RCV.UP, SEG.UP))."""
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("UP.", seq=R, ack=A, data=b"ab", urgent=2)
    d.expect(".", seq=A, ack=R + 2)
    assert d.events() == [urgent(d, R + 2, 2), DataReceived(d.now, d.id, 2, urgent=True)]
    d.peer("UP.", seq=R + 2, ack=A, data=b"cd", urgent=2)             # advances to R + 4, unread
    d.expect(".", seq=A, ack=R + 4)
    assert d.events() == [urgent(d, R + 4, 4), DataReceived(d.now, d.id, 2, urgent=True)]
    d.peer("UP.", seq=R + 4, ack=A, data=b"ef", urgent=0)             # SEG.SEQ + SEG.UP = R + 4 again
    d.expect(".", seq=A, ack=R + 6)
    assert d.events() == [DataReceived(d.now, d.id, 2, urgent=False)]
    assert d.conn.receive(100) == b"abcdef" and d.conn.urgent_pending == 0
    d.peer("UP.", seq=R + 6, ack=A, data=b"g", urgent=0)              # pointer at the read position
    d.expect(".", seq=A, ack=R + 7)
    assert d.events() == [DataReceived(d.now, d.id, 1, urgent=False)]
    assert d.conn.urgent_pending == 0


def test_urgent_pointer_of_a_partly_old_segment_keeps_its_place():
    """The first check trims octets already received off the front of a segment; the urgent
    pointer is SEG.SEQ + SEG.UP of the segment as sent (§3.8.5), so it must not move with the
    trimmed start."""
    d = Dialogue.established(iss=ISS, irs=IRS, config=NOACK)
    d.peer("P.", seq=R, ack=A, data=b"abcd")
    d.expect(".", seq=A, ack=R + 4)
    d.events()
    d.peer("UP.", seq=R, ack=A, data=b"abcdef", urgent=6)             # RCV.UP = R + 6
    d.expect(".", seq=A, ack=R + 6)
    assert d.events() == [urgent(d, R + 6, 6), DataReceived(d.now, d.id, 2, urgent=True)]
    assert d.conn.urgent_pending == 6


def test_urgent_pointer_on_a_syn_ack_counts_from_the_syn():
    """SEG.UP counts from SEG.SEQ, which on a SYN,ACK is the SYN's own sequence number: data
    and urgent pointer on the SYN,ACK ("continue processing at the sixth step", §3.10.7.3)."""
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS, irs=IRS, config=NOACK)
    d.peer("S.UP", seq=IRS, ack=A, data=b"xy", urgent=3)             # RCV.UP = IRS + 3 = R + 2
    d.expect(".", seq=A, ack=R + 2)
    evs = [e for e in d.events() if isinstance(e, (UrgentData, DataReceived))]
    assert evs == [urgent(d, R + 2, 2), DataReceived(d.now, d.id, 2, urgent=True)]
    assert d.conn.urgent_pending == 2
