"""Packet dialogues: flow control. The receive window and receiver SWS avoidance (RFC 9293
§3.8.6.2.2, MUST-39), Nagle (§3.7.4, MUST-17), sender SWS avoidance (§3.8.6.2.1, MUST-38) and
zero-window probing (§3.8.6.1, MUST-36/37)."""

from synack.tcp.config import TcpConfig
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.wire.tcp import Nop, WindowScale

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
S = State


# ---------------------------------------------------------------- receive window

def test_syn_window_never_exceeds_buffer():
    d = Dialogue(iss=ISS, config=TcpConfig(rcv_buf=3000))
    d.conn.connect(d.now)
    d.expect("S", seq=ISS, window=3000)


def test_syn_window_rounded_to_the_mss_like_linux():
    # TcpConfig.syn_window_round_mss: our SYN counts on our own MSS (no timestamps agreed yet)
    d = Dialogue(iss=ISS, config=TcpConfig(syn_window=65536, syn_window_round_mss=True))
    d.conn.connect(d.now)
    d.expect("S", seq=ISS, window=64240)                  # 44 * 1460


def test_window_shrinks_as_data_waits_unread():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(rcv_buf=3000, ack_delay=None))
    d.peer("P.", seq=R, ack=A, data=b"a" * 1000)
    d.expect(".", ack=R + 1000, window=2000)
    d.peer("P.", seq=R + 1000, ack=A, data=b"b" * 1460)
    d.expect(".", ack=R + 2460, window=540)
    d.peer("P.", seq=R + 2460, ack=A, data=b"c" * 540)
    d.expect(".", ack=R + 3000, window=0)


def test_scaled_window_rounds_down_never_promises_more():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS, config=TcpConfig(rcv_buf=100000, wscale=4, ack_delay=None))
    d.peer("S.", seq=IRS, ack=A, options=(Nop(), WindowScale(0)))
    d.expect(".", ack=R, window=100000 >> 4)
    d.peer("P.", seq=R, ack=A, data=b"x" * 1000)
    # the right edge stays where it was (SWS): 99000 octets left, 99000 >> 4 = 6187 (rounded down)
    d.expect(".", ack=R + 1000, window=99000 >> 4)


def test_receiver_sws_and_window_update_after_reads():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(rcv_buf=4000, ack_delay=None))
    d.peer(".", seq=R, ack=A, data=b"a" * 1460)
    d.expect(".", ack=R + 1460, window=2540)
    d.peer(".", seq=R + 1460, ack=A, data=b"b" * 1460)
    d.expect(".", ack=R + 2920, window=1080)
    d.peer("P.", seq=R + 2920, ack=A, data=b"c" * 1080)
    d.expect(".", ack=R + 4000, window=0)
    assert len(d.conn.receive(1000)) == 1000
    d.expect_nothing()                   # 1000 < min(4000/2, MSS): no update yet (SWS)
    assert len(d.conn.receive(500)) == 500
    d.expect(".", ack=R + 4000, window=1500)
    assert len(d.conn.receive(2500)) == 2500
    d.expect(".", ack=R + 4000, window=4000)
    d.expect_nothing(until=100.0)


def test_right_edge_kept_while_small_reads():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(rcv_buf=4000, ack_delay=None))
    d.peer("P.", seq=R, ack=A, data=b"a" * 1000)
    d.expect(".", ack=R + 1000, window=3000)
    d.conn.receive(1000)
    d.expect_nothing()
    d.peer("P.", seq=R + 1000, ack=A, data=b"b" * 500)
    # 4000 free, 2500 offered: the edge moves only by at least 1460, so 500 more is not enough
    d.expect(".", ack=R + 1500, window=2500)


def test_no_window_update_when_the_field_cannot_grow():
    # a 262144-octet buffer without window scaling offers 65535: reading does not change that
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(ack_delay=None))
    for i in range(5):
        d.peer("P.", seq=R + 100 * i, ack=A, data=b"x" * 100)
        d.expect(".", ack=R + 100 * (i + 1), window=65535)
        d.conn.receive(100)
        d.expect_nothing()               # a useless update would look like a duplicate ACK



def test_no_window_update_for_the_first_read_after_a_passive_open():
    # The SYN,ACK offered 65535 (a SYN's window is never scaled); the buffer is 262144. A request
    # read after the handshake leaves the peer nearly all of that window: no ACK of its own just
    # to announce the larger buffer (Linux neither); the response carries it.
    d = Dialogue.accepted(iss=ISS, irs=IRS, peer_options=(Nop(), WindowScale(7)))
    d.peer("P.", seq=R, ack=A, data=b"GET / HTTP/1.1\r\n\r\n")
    assert d.conn.receive(100) == b"GET / HTTP/1.1\r\n\r\n"
    d.expect_nothing(until=0.01)
    d.conn.send(b"HTTP/1.1 200 OK\r\n\r\n")
    d.expect("P.", seq=A, ack=R + 18, window=262144 >> d.conn.rcv_wscale)


# ---------------------------------------------------------------- Nagle

def test_nagle_holds_small_segments_while_unacked():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.conn.send(b"a")
    d.expect("P.", seq=A, data=b"a")
    d.conn.send(b"b")
    d.conn.send(b"c")
    d.expect_nothing(until=0.5)
    d.peer(".", seq=R, ack=A + 1)
    d.expect("P.", seq=A + 1, data=b"bc")


def test_nagle_sends_full_segments():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.conn.send(b"a")
    d.expect("P.", seq=A, data=b"a")
    d.conn.send(b"b" * 600)              # one full segment (536) goes, the 64-octet tail waits
    d.expect(".", seq=A + 1, length=536)
    d.expect_nothing()
    d.peer(".", seq=R, ack=A + 537)
    d.expect("P.", seq=A + 537, length=64)


def test_nagle_off_sends_at_once():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(nagle=False))
    for i, ch in enumerate(b"xyz"):
        d.conn.send(bytes([ch]))
        d.expect("P.", seq=A + i, data=bytes([ch]))


def test_nagle_does_not_hold_the_fin():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.conn.send(b"a")
    d.expect("P.", seq=A, data=b"a")
    d.conn.send(b"b")
    d.conn.shutdown_write(d.now)
    d.expect("FP.", seq=A + 1, data=b"b")


# ---------------------------------------------------------------- sender SWS avoidance

def test_sender_sws_waits_for_half_the_max_window_then_override():
    d = Dialogue.established(iss=ISS, irs=IRS)          # MAX(SND.WND) = 65535
    d.peer(".", seq=R, ack=A, window=100)
    d.conn.send(b"x" * 1000)
    d.expect_nothing()                   # 100 < MSS and < 65535 / 2
    # the override timeout (here: the persist timer, one RTO) forces what fits
    d.expect(".", seq=A, length=100, at=1.0)
    d.peer(".", seq=R, ack=A + 100, window=1000)
    d.expect(".", seq=A + 100, length=536)
    d.expect_nothing()                   # Nagle holds the 364-octet tail
    d.peer(".", seq=R, ack=A + 636, window=1000)
    d.expect("P.", seq=A + 636, length=364)


def test_sender_sends_when_window_is_half_the_max():
    d = Dialogue.established(iss=ISS, irs=IRS, window=1000, config=TcpConfig(nagle=False))
    d.peer(".", seq=R, ack=A, window=500)
    d.conn.send(b"y" * 800)
    d.expect(".", seq=A, length=500)     # 500 >= Fs * Max(SND.WND) = 500: send (rule 3)
    d.expect_nothing()


def test_window_update_from_peer_releases_data():
    d = Dialogue.established(iss=ISS, irs=IRS, window=0)
    d.conn.send(b"waiting")
    d.expect_nothing()
    d.peer(".", seq=R, ack=A, window=1000)
    d.expect("P.", seq=A, data=b"waiting")


def test_old_ack_does_not_update_window():
    # SND.WL1/SND.WL2 (§3.10.7.4 fifth step): a reordered older ACK must not reopen the window
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(ack_delay=None, nagle=False))
    d.conn.send(b"0123456789")
    d.expect("P.", seq=A, length=10)
    d.peer(".", seq=R, ack=A + 10, window=0)
    d.peer(".", seq=R, ack=A + 5, window=5000)      # SEG.ACK < SND.UNA: window untouched
    d.conn.send(b"abc")
    d.expect_nothing()
    d.peer(".", seq=R, ack=A + 10, window=5000)
    d.expect("P.", seq=A + 10, data=b"abc")


# ---------------------------------------------------------------- zero-window probing

def test_zero_window_probes_back_off_and_never_give_up():
    d = Dialogue.established(iss=ISS, irs=IRS, window=0, config=TcpConfig(r2_retries=2, persist_max=60.0))
    d.conn.send(b"hello")
    d.expect_nothing()
    t = 0.0
    for interval in (1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60, 60):
        t += interval
        d.expect(".", seq=A, data=b"h", at=t)        # one octet of new data (MUST-36)
        d.peer(".", seq=R, ack=A, window=0)         # ACKed, window still closed
    assert d.state is S.ESTABLISHED      # MUST-37: probes ACKed -> stay open, whatever R2 says
    d.peer(".", seq=R, ack=A, window=1000)
    d.expect("P.", seq=A, data=b"hello")


def test_zero_window_probe_octet_accepted():
    d = Dialogue.established(iss=ISS, irs=IRS, window=0)
    d.conn.send(b"hello")
    d.expect(".", seq=A, data=b"h", at=1.0)
    d.peer(".", seq=R, ack=A + 1, window=1000)     # the receiver took the probe octet
    d.expect("P.", seq=A + 1, data=b"ello")
    d.peer(".", seq=R, ack=A + 5, window=1000)
    d.expect_nothing(until=100.0)


def test_window_closes_with_data_in_flight():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(nagle=False))
    d.conn.send(b"a" * 100)
    d.expect("P.", seq=A, length=100)
    d.conn.send(b"b" * 100)
    d.expect("P.", seq=A + 100, length=100)
    d.peer(".", seq=R, ack=A + 200, window=0)
    d.conn.send(b"c" * 10)
    d.expect(".", seq=A + 200, data=b"c", at=d.now + 1.0)
    d.peer(".", seq=R, ack=A + 200, window=0)
    d.peer(".", seq=R, ack=A + 200, window=0)
    d.peer(".", seq=R, ack=A + 200, window=0)
    d.expect_nothing()                   # probe answers are no duplicate ACKs: no fast retransmit


def test_window_shrinks_to_zero_under_data_in_flight():
    # The peer ACKs part of the flight and closes its window. The RTO still sends the first
    # unacknowledged segment (§3.10.8: "send the segment at the front of the retransmission
    # queue again"); as in Linux (tcp_retransmit_timer) these become window probes, and the
    # connection lives on while the peer answers them (MUST-37), whatever R2 says.
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(nagle=False, r2_retries=2))
    d.conn.send(b"a" * 100)
    d.expect("P.", seq=A, length=100)
    d.conn.send(b"b" * 100)
    d.expect("P.", seq=A + 100, length=100)
    d.peer(".", seq=R, ack=A + 100, window=0)
    t = d.now
    for k in range(6):
        t += 2.0 ** k
        d.expect("P.", seq=A + 100, length=100, at=t)
        d.peer(".", seq=R, ack=A + 100, window=0)
    assert d.state is S.ESTABLISHED
    d.peer(".", seq=R, ack=A + 200, window=1000)
    d.expect_nothing(until=d.now + 100)
