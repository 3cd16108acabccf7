"""Packet dialogues: the kernels' variants of the Nagle algorithm. RFC 9293 §3.7.4 (MUST-17)
holds a small segment while *any* data is unacknowledged.

* Minshall's variant (``TcpConfig.nagle_minshall``, the Linux profile: tcp_nagle_check /
  tcp_minshall_check) holds it only while a previously sent *small* segment is, so the sub-MSS
  tail of one large write leaves at once and at most one small segment is in flight.
* BSD's (``TcpConfig.nagle_idle_tail``, the FreeBSD profile: tcp_output's ``idle``) lets the last
  segment of an output pass go when nothing was in flight as the pass began."""

from synack.tcp.config import TcpConfig
from synack.testing import Dialogue
from synack.wire.tcp import Mss

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
MSS = 1000


def established(minshall: bool = False, idle_tail: bool = False) -> Dialogue:
    config = TcpConfig(nagle_minshall=minshall, nagle_idle_tail=idle_tail, mss=MSS, timestamps=False,
                       sack=False, ack_delay=None)
    return Dialogue.established(iss=ISS, irs=IRS, config=config, peer_options=(Mss(MSS),))


def test_classic_nagle_holds_the_tail_of_a_large_write():
    d = established(minshall=False)
    d.conn.send(b"a" * 1500)
    d.expect(".", seq=A, length=1000)
    d.expect_nothing()                          # 500 octets wait: 1000 are unacknowledged
    d.peer(".", seq=R, ack=A + 1000)
    d.expect("P.", seq=A + 1000, length=500)


def test_minshall_sends_the_tail_of_a_large_write_at_once():
    d = established(minshall=True)
    d.conn.send(b"a" * 1500)
    d.expect(".", seq=A, length=1000)
    d.expect("P.", seq=A + 1000, length=500)    # no small segment is in flight


def test_minshall_holds_a_second_small_segment_until_the_first_is_acked():
    d = established(minshall=True)
    d.conn.send(b"a" * 1500)
    d.expect(".", seq=A, length=1000)
    d.expect("P.", seq=A + 1000, length=500)
    d.conn.send(b"b" * 200)
    d.expect_nothing()                          # the 500-octet segment is unacknowledged
    d.peer(".", seq=R, ack=A + 1000)            # only the full-sized one acknowledged
    d.expect_nothing()
    d.peer(".", seq=R, ack=A + 1500)            # the small one too: the next may go
    d.expect("P.", seq=A + 1500, length=200)


def test_minshall_never_holds_a_full_sized_segment():
    d = established(minshall=True)
    d.conn.send(b"a" * 300)
    d.expect("P.", seq=A, length=300)
    d.conn.send(b"b" * 1300)
    d.expect(".", seq=A + 300, length=1000)     # full-sized: Nagle does not apply
    d.expect_nothing()                          # the 300-octet tail waits for the small one
    d.peer(".", seq=R, ack=A + 300)
    d.expect("P.", seq=A + 1300, length=300)


def test_minshall_off_with_nodelay():
    config = TcpConfig(nagle=False, nagle_minshall=True, mss=MSS, timestamps=False, sack=False, ack_delay=None)
    d = Dialogue.established(iss=ISS, irs=IRS, config=config, peer_options=(Mss(MSS),))
    d.conn.send(b"a" * 100)
    d.expect("P.", seq=A, length=100)
    d.conn.send(b"b" * 100)
    d.expect("P.", seq=A + 100, length=100)     # TCP_NODELAY: no variant of Nagle applies


# ---------------------------------------------------------------- BSD: idle at the start of output

def test_idle_tail_sends_the_tail_of_a_write_on_an_idle_connection():
    d = established(idle_tail=True)
    d.conn.send(b"a" * 1500)
    d.expect(".", seq=A, length=1000)
    d.expect("P.", seq=A + 1000, length=500)    # the pass began with nothing in flight


def test_idle_tail_holds_a_small_segment_when_data_was_in_flight():
    d = established(idle_tail=True)
    d.conn.send(b"a" * 100)
    d.expect("P.", seq=A, length=100)
    d.conn.send(b"b" * 1500)
    d.expect(".", seq=A + 100, length=1000)     # full-sized: goes
    d.expect_nothing()                          # 500 octets wait: classic Nagle
    d.peer(".", seq=R, ack=A + 100)
    d.expect_nothing()                          # 1000 octets still unacknowledged
    d.peer(".", seq=R, ack=A + 1100)
    d.expect("P.", seq=A + 1100, length=500)


def test_idle_tail_small_writes_still_wait_for_the_ack():
    d = established(idle_tail=True)
    d.conn.send(b"a" * 100)
    d.expect("P.", seq=A, length=100)
    d.conn.send(b"b" * 100)
    d.expect_nothing()                          # the next pass did not begin idle
    d.peer(".", seq=R, ack=A + 100)
    d.expect("P.", seq=A + 100, length=100)
