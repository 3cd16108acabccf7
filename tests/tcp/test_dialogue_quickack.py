"""Packet dialogues: quick-ACK mode (``TcpConfig.quickack``, the Linux profile's 16). Delayed ACKs
are a SHOULD with an upper bound (RFC 9293 §3.8.6.3, MUST-40, SHLD-18/19): ACKing sooner is
allowed. Linux (tcp_incr_quickack, tcp_enter_quickack_mode) ACKs the first data segments at once,
as many as half the receive window holds in full-sized segments (at least 2) and at most
``quickack``; again after a pause longer than the RTO, after duplicate or out-of-window data,
and (2 of them) when data first arrives marked CE on an ECN connection. With
``quickack_pingpong`` (Linux's interactive mode) a reply sent within ``ack_delay`` of the data
it answers ends quick ACKs, so later ACKs wait to ride on the replies, until a delayed ACK times
out."""

from synack.tcp.config import TcpConfig
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
DELAY = 0.040


def cfg(**kw) -> TcpConfig:
    base = dict(ack_delay=DELAY, quickack=16, timestamps=False, sack=False, window_scaling=False)
    base.update(kw)
    return TcpConfig(**base)


def small_segments(d: Dialogue, start: int, count: int, *, quick: bool) -> int:
    """``count`` 100-octet segments in order from ``start`` (relative to R); each is ACKed at
    once (``quick``) or after the delayed-ACK timeout. Returns the next relative offset."""
    for _ in range(count):
        d.peer("P.", seq=R + start, ack=A, data=b"q" * 100)
        start += 100
        if quick:
            d.expect(".", seq=A, ack=R + start, at=d.now)
        else:
            t = d.now
            d.expect_nothing()
            d.expect(".", seq=A, ack=R + start, at=t + DELAY)
    return start


def test_off_by_default_the_first_data_waits_for_the_delayed_ack():
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg(quickack=0))
    small_segments(d, 0, 2, quick=False)


def test_the_first_sixteen_segments_are_acked_at_once_then_delayed():
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg())    # 65535 / (2 * 1460) = 22 > 16
    off = small_segments(d, 0, 16, quick=True)
    small_segments(d, off, 2, quick=False)


def test_half_the_receive_window_bounds_the_quick_acks():
    # rcv_buf 4000: 4000 // (2 * 1460) = 1, raised to the minimum of 2
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg(rcv_buf=4000))
    off = small_segments(d, 0, 2, quick=True)
    small_segments(d, off, 1, quick=False)


def test_a_pause_longer_than_the_rto_grants_quick_acks_again():
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg(quickack=2))
    off = small_segments(d, 0, 2, quick=True)
    off = small_segments(d, off, 1, quick=False)
    d.advance(0.5)                                  # shorter than the RTO (1 s): still delayed
    off = small_segments(d, off, 1, quick=False)
    d.advance(1.5)
    off = small_segments(d, off, 2, quick=True)
    small_segments(d, off, 1, quick=False)


def test_duplicate_data_reenters_quick_ack_mode():
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg(quickack=2))
    off = small_segments(d, 0, 2, quick=True)
    off = small_segments(d, off, 1, quick=False)
    d.peer("P.", seq=R, ack=A, data=b"q" * 100)     # an old duplicate: ACKed at once (§3.10.7.4)
    d.expect(".", seq=A, ack=R + off)
    small_segments(d, off, 1, quick=True)           # ... and the next data too (Linux out_of_window)


def test_ce_on_an_ecn_connection_grants_two_quick_acks():
    d = Dialogue(iss=ISS, config=cfg(quickack=2))
    d.irs = IRS
    d.conn.listen(d.now)
    d.peer("SEW", seq=IRS)
    d.expect("SE.", seq=ISS, ack=R)
    d.peer(".", seq=R, ack=A)
    off = small_segments(d, 0, 2, quick=True)
    off = small_segments(d, off, 1, quick=False)
    d.peer("P.", seq=R + off, ack=A, data=b"c" * 100, ecn=3)
    d.expect("E.", seq=A, ack=R + off + 100)        # "better not delay acks" after a CE mark
    d.peer("P.", seq=R + off + 100, ack=A, data=b"c" * 100)
    d.expect("E.", seq=A, ack=R + off + 200)
    d.peer("P.", seq=R + off + 200, ack=A, data=b"c" * 100)
    d.expect_nothing()
    d.expect("E.", seq=A, ack=R + off + 300, at=d.now + DELAY)


def test_out_of_order_data_is_acked_at_once_whatever_the_mode():
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg(quickack=2))
    off = small_segments(d, 0, 2, quick=True)
    d.peer("P.", seq=R + off + 100, ack=A, data=b"o" * 100)   # a hole: RFC 5681 §4.2
    d.expect(".", seq=A, ack=R + off)
    d.peer("P.", seq=R + off, ack=A, data=b"f" * 100)         # filling it
    d.expect(".", seq=A, ack=R + off + 200)


# ---------------------------------------------------------------- interactive (pingpong) mode

def test_pingpong_a_quick_reply_makes_the_next_ack_ride_on_the_reply():
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg(quickack_pingpong=True))
    d.peer("P.", seq=R, ack=A, data=b"q" * 100)
    d.expect(".", seq=A, ack=R + 100)                  # quick ACK at the start
    d.advance(0.01)
    d.conn.send(b"r" * 50)                             # the reply, within ack_delay: interactive
    d.expect("P.", seq=A, ack=R + 100, length=50)
    d.peer("P.", seq=R + 100, ack=A + 50, data=b"q" * 100)
    d.expect_nothing()                                 # no quick ACK while interactive
    d.advance(0.01)
    d.conn.send(b"r" * 50)
    d.expect("P.", seq=A + 50, ack=R + 200, length=50)  # the ACK rides on the reply
    d.peer(".", seq=R + 200, ack=A + 100)
    d.expect_nothing(until=d.now + 1.0)               # no separate ACK was owed


def test_pingpong_ends_when_the_delayed_ack_times_out():
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg(quickack_pingpong=True))
    d.peer("P.", seq=R, ack=A, data=b"q" * 100)
    d.expect(".", seq=A, ack=R + 100)
    d.conn.send(b"r" * 50)
    d.expect("P.", seq=A, ack=R + 100, length=50)
    d.peer("P.", seq=R + 100, ack=A + 50, data=b"q" * 100)
    t = d.now
    d.expect(".", seq=A + 50, ack=R + 200, at=t + DELAY)   # no reply came: the timer ACKs
    d.peer("P.", seq=R + 200, ack=A + 50, data=b"q" * 100)
    d.expect(".", seq=A + 50, ack=R + 300, at=d.now)   # and quick ACKs are back


def test_without_pingpong_replies_do_not_stop_quick_acks():
    d = Dialogue.established(iss=ISS, irs=IRS, config=cfg())
    d.peer("P.", seq=R, ack=A, data=b"q" * 100)
    d.expect(".", seq=A, ack=R + 100)
    d.conn.send(b"r" * 50)
    d.expect("P.", seq=A, ack=R + 100, length=50)
    d.peer("P.", seq=R + 100, ack=A + 50, data=b"q" * 100)
    d.expect(".", seq=A + 50, ack=R + 200)
