"""Packet dialogues: opening a connection (RFC 9293 §3.5, §3.10.7.2, §3.10.7.3, the SYN-RECEIVED
parts of §3.10.7.4) and option negotiation (§3.7.1, RFC 7323, RFC 2018).

ISS and IRS sit just below 2**32, so ISS + 1 ... and IRS + 1 ... wrap during each dialogue."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.errors import ConnectionRefused, ConnectionTimedOut
from synack.tcp.events import Connected, DataReceived, EndOfStream, Reset, TimedOut
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.wire.tcp import Mss, Nop, SackPermitted, Timestamps, UnknownOption, WindowScale

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1          # first data octets: both wrap past 2**32 a few octets later
S = State
NOACK = TcpConfig(ack_delay=None)


def types(d):
    return [type(e).__name__ for e in d.events()]


# ---------------------------------------------------------------- active open: SYN-SENT

def test_syn_carries_our_options_linux_order():
    d = Dialogue(iss=ISS)
    d.conn.connect(d.now)
    assert d.state is S.SYN_SENT
    # 262144-byte buffer: smallest shift with 65535 << s >= 262144 is 3 (RFC 7323 §2.3)
    d.expect("S", seq=ISS, window=65535,
             options=(Mss(1460), SackPermitted(), Timestamps(0, 0), Nop(), WindowScale(3)))
    d.expect_nothing()


def test_syn_without_optional_options():
    d = Dialogue(iss=ISS, config=TcpConfig(window_scaling=False, sack=False, timestamps=False, mss=1000))
    d.conn.connect(d.now)
    d.expect("S", seq=ISS, options=(Mss(1000),))


def test_syn_ack_completes_handshake():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("S.", seq=IRS, ack=A)
    d.expect(".", seq=A, ack=R)
    assert d.state is S.ESTABLISHED
    assert types(d) == ["StateChanged", "Connected"]
    d.expect_nothing(until=100.0)       # no RTO left armed: the SYN is acknowledged


@pytest.mark.parametrize("ack", [ISS, ISS - 1000, A + 1, A + 2**30])
def test_syn_sent_unacceptable_ack_gets_rst(ack):
    # §3.10.7.3 first: SEG.ACK =< ISS or SEG.ACK > SND.NXT -> <SEQ=SEG.ACK><CTL=RST>
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("S.", seq=IRS, ack=ack)
    d.expect("R", seq=ack)
    assert d.state is S.SYN_SENT
    d.expect_nothing()
    assert types(d) == []


def test_syn_sent_unacceptable_ack_with_rst_is_dropped():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("R.", seq=IRS, ack=A + 5)
    d.expect_nothing()                   # never answer a RST with a RST
    assert d.state is S.SYN_SENT


def test_syn_sent_rst_without_ack_is_dropped():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("R", seq=0)
    d.expect_nothing()
    assert d.state is S.SYN_SENT


def test_syn_sent_rst_ack_refuses():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("R.", seq=0, ack=A)
    d.expect_nothing(until=200.0)
    assert d.state is S.CLOSED
    ev = d.events()
    assert any(isinstance(e, Reset) and e.refused for e in ev)
    with pytest.raises(ConnectionRefused):
        d.conn.send(b"x")
    with pytest.raises(ConnectionRefused):
        d.conn.receive(10)


def test_syn_sent_ack_without_syn_is_dropped():
    # §3.10.7.3 fifth: neither SYN nor RST -> drop
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer(".", seq=IRS, ack=A)
    d.expect_nothing()
    assert d.state is S.SYN_SENT
    d.peer("F.", seq=IRS, ack=A)
    d.expect_nothing()
    assert d.state is S.SYN_SENT


def test_syn_ack_with_data_and_fin():
    # "If there are other controls or text in the segment, then continue processing at the
    # sixth step" (§3.10.7.3): the data is delivered and the FIN moves us to CLOSE-WAIT.
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS, config=NOACK)
    d.peer("SF.", seq=IRS, ack=A, data=b"hello")
    d.expect(".", seq=A, ack=R + 6)
    d.expect_nothing()
    assert d.state is S.CLOSE_WAIT
    ev = d.events()
    assert [type(e).__name__ for e in ev if not type(e).__name__ == "StateChanged"] == \
        ["Connected", "DataReceived", "EndOfStream"]
    assert d.conn.receive(100) == b"hello"
    assert d.conn.receive(100) == b""


def test_data_queued_in_syn_sent_goes_with_the_handshake_ack():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    assert d.conn.send(b"early") == 5
    d.expect_nothing()                   # queued until ESTABLISHED (§3.10.2)
    d.peer("S.", seq=IRS, ack=A)
    d.expect("P.", seq=A, ack=R, data=b"early")
    d.expect_nothing()


def test_syn_retransmission_backoff_and_timeout():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS, config=TcpConfig(syn_retries=3))
    d.expect("S", seq=ISS, at=1.0)
    d.expect("S", seq=ISS, at=3.0)
    d.expect("S", seq=ISS, at=7.0)
    d.expect_nothing(until=14.99)
    assert d.state is S.SYN_SENT
    d.advance(0.02)
    d.expect_nothing()                   # giving up in SYN-SENT sends nothing
    assert d.state is S.CLOSED
    ev = d.events()
    assert any(isinstance(e, TimedOut) for e in ev)
    with pytest.raises(ConnectionTimedOut):
        d.conn.send(b"x")
    assert d.conn.next_timer() is None


def test_syn_rexmit_drop_options_offers_only_mss_from_the_third_retransmission():
    # TcpConfig.syn_rexmit_drop_options (FreeBSD rexmit_drop_options): what the SYN-ACK then
    # offers is not taken up (window scale needs both SYNs, RFC 7323 §2.2; SACK-permitted and
    # timestamps likewise, RFC 2018 §2, RFC 7323 §3.2)
    full = (Mss(1460), SackPermitted(), Timestamps(0, 0), Nop(), WindowScale(7))
    d = Dialogue(iss=ISS, config=TcpConfig(syn_rexmit_drop_options=True))
    d.conn.connect(d.now)
    d.expect("S", seq=ISS, at=0.0)
    for t in (1.0, 3.0):
        assert len(d.expect("S", seq=ISS, at=t).options) == len(full)
    d.expect("S", seq=ISS, at=7.0, options=(Mss(1460),))
    d.expect("S", seq=ISS, at=15.0, options=(Mss(1460),))
    d.peer("S.", seq=IRS, ack=A, options=(Mss(1000), SackPermitted(), Timestamps(5, 15000), Nop(), WindowScale(7)))
    d.expect(".", seq=A, ack=R, options=())
    info = d.conn.info()
    assert info.state is S.ESTABLISHED and not (info.wscale_ok or info.sack_ok or info.timestamps_ok)


def test_rto_after_syn_timeout_is_three_seconds():
    # RFC 6298 §5.7 (MUST): after the SYN timed out, RTO is re-initialized to 3 s once data
    # transmission begins (Linux: TCP_TIMEOUT_FALLBACK).
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS, config=NOACK)
    d.expect("S", seq=ISS, at=1.0)
    d.peer("S.", seq=IRS, ack=A)
    d.expect(".", seq=A, ack=R)
    d.conn.send(b"data")
    t0 = d.now
    d.expect("P.", seq=A, data=b"data", at=t0)
    d.expect("P.", seq=A, data=b"data", at=t0 + 3.0)


# ---------------------------------------------------------------- simultaneous open (Figure 8)

def test_simultaneous_open_figure_8():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    # 3. <-- <SEQ=IRS><CTL=SYN>: SYN-SENT -> SYN-RECEIVED (§3.10.7.3 fourth, MUST-10)
    d.peer("S", seq=IRS)
    # 5. --> <SEQ=ISS><ACK=IRS+1><CTL=SYN,ACK>
    d.expect("S.", seq=ISS, ack=R)
    assert d.state is S.SYN_RECEIVED
    # 6. <-- <SEQ=IRS><ACK=ISS+1><CTL=SYN,ACK>: ESTABLISHED (Linux accepts it too)
    d.peer("S.", seq=IRS, ack=A)
    assert d.state is S.ESTABLISHED
    assert "Connected" in types(d)
    d.expect_nothing(until=100.0)


def test_simultaneous_open_completed_by_ack():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("S", seq=IRS)
    d.expect("S.", seq=ISS, ack=R)
    d.peer(".", seq=R, ack=A)
    assert d.state is S.ESTABLISHED
    d.expect_nothing(until=100.0)


def test_simultaneous_open_synack_retransmitted():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("S", seq=IRS)
    d.expect("S.", seq=ISS, ack=R, at=0.0)
    d.expect("S.", seq=ISS, ack=R, at=1.0)


def test_simultaneous_open_rst_refuses():
    # §3.10.7.4 second, SYN-RECEIVED from an active OPEN: "connection refused"
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("S", seq=IRS)
    d.expect("S.", seq=ISS, ack=R)
    d.peer("R", seq=R)
    d.expect_nothing()
    assert d.state is S.CLOSED
    with pytest.raises(ConnectionRefused):
        d.conn.send(b"x")


# ---------------------------------------------------------------- passive open: LISTEN

def test_listen_ignores_rst():
    d = Dialogue.in_state(S.LISTEN, iss=ISS)
    d.peer("R", seq=IRS)
    d.peer("R.", seq=IRS, ack=A)
    d.expect_nothing(until=100.0)
    assert d.state is S.LISTEN


@pytest.mark.parametrize("flags", [".", "P.", "F.", "S."])
def test_listen_answers_ack_with_rst(flags):
    d = Dialogue.in_state(S.LISTEN, iss=ISS)
    d.peer(flags, seq=IRS, ack=12345, data=b"x" if "P" in flags else b"")
    d.expect("R", seq=12345)             # <SEQ=SEG.ACK><CTL=RST>
    d.expect_nothing()
    assert d.state is S.LISTEN


@pytest.mark.parametrize("flags", ["", "F", "P", "U"])
def test_listen_drops_other_segments(flags):
    d = Dialogue.in_state(S.LISTEN, iss=ISS)
    d.peer(flags, seq=IRS, data=b"data")
    d.expect_nothing()
    assert d.state is S.LISTEN


def test_listen_syn_gets_syn_ack():
    d = Dialogue.in_state(S.LISTEN, iss=ISS)
    d.peer("S", seq=IRS)
    # peer offered no options: only MSS in reply (no wscale, sackOK or TS unless offered)
    d.expect("S.", seq=ISS, ack=R, window=65535, options=(Mss(1460),))
    assert d.state is S.SYN_RECEIVED


def test_listen_syn_with_options_negotiates():
    d = Dialogue.in_state(S.LISTEN, iss=ISS)
    d.peer("S", seq=IRS, options=(Mss(1000), SackPermitted(), Timestamps(700, 0), Nop(), WindowScale(7)))
    d.expect("S.", seq=ISS, ack=R, window=65535,
             options=(Mss(1460), SackPermitted(), Timestamps(0, 700), Nop(), WindowScale(3)))
    d.peer(".", seq=R, ack=A, window=10, options=(Nop(), Nop(), Timestamps(701, 0)))
    info = d.conn.info()
    assert (info.wscale_ok, info.sack_ok, info.timestamps_ok) == (True, True, True)
    assert info.snd_wnd == 10 << 7
    assert info.snd_mss == 1000 - 12     # timestamps take 12 octets of every segment (RFC 6691)


def test_unknown_options_are_skipped():
    # MUST-6: options of unknown kind are ignored
    d = Dialogue.in_state(S.LISTEN, iss=ISS, config=NOACK)
    d.peer("S", seq=IRS, options=(UnknownOption(99, b"abc"), Mss(1000), UnknownOption(200)))
    d.expect("S.", seq=ISS, ack=R, options=(Mss(1460),))
    d.peer("P.", seq=R, ack=A, data=b"abc", options=(UnknownOption(77, b"\x00" * 6),))
    d.expect(".", seq=A, ack=R + 3)
    assert d.conn.receive(10) == b"abc"


# ---------------------------------------------------------------- SYN-RECEIVED

def test_syn_received_ack_establishes():
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS)
    d.peer(".", seq=R, ack=A)
    d.expect_nothing(until=100.0)
    assert d.state is S.ESTABLISHED
    assert types(d) == ["StateChanged", "Connected"]


def test_syn_received_data_on_the_ack_is_kept():
    # The third segment of the handshake may carry data (§3.10.7.4 seventh step after
    # SYN-RECEIVED -> ESTABLISHED): it lies in the window our SYN,ACK offered.
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS, config=NOACK)
    d.peer("P.", seq=R, ack=A, data=b"GET / HTTP/1.0\r\n\r\n")
    d.expect(".", seq=A, ack=R + 18)
    assert d.state is S.ESTABLISHED
    assert d.conn.receive(100) == b"GET / HTTP/1.0\r\n\r\n"


def test_syn_received_ack_and_fin():
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS)
    d.peer("F.", seq=R, ack=A)
    d.expect(".", seq=A, ack=R + 1)
    assert d.state is S.CLOSE_WAIT
    ev = types(d)
    assert "Connected" in ev and "EndOfStream" in ev


@pytest.mark.parametrize("ack", [ISS, A + 1, ISS - 100])
def test_syn_received_unacceptable_ack_gets_rst(ack):
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS)
    d.peer(".", seq=R, ack=ack)
    d.expect("R", seq=ack)               # <SEQ=SEG.ACK><CTL=RST>
    assert d.state is S.SYN_RECEIVED


def test_syn_received_segment_without_ack_dropped():
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS)
    d.peer("P", seq=R, data=b"abc")
    d.expect_nothing()
    assert d.state is S.SYN_RECEIVED


def test_syn_received_retransmitted_syn_gets_syn_ack():
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS)
    d.peer("S", seq=IRS)
    d.expect("S.", seq=ISS, ack=R)
    d.expect_nothing()


def test_syn_received_rst_returns_to_listen_quietly():
    # passive OPEN: "return this connection to LISTEN state ... The user need not be informed";
    # the Listener in stack/ keeps listening, this half-open TCB is deleted.
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS)
    d.peer("R", seq=R)
    d.expect_nothing(until=100.0)
    assert d.state is S.CLOSED
    assert not any(isinstance(e, Reset) for e in d.events())


def test_syn_received_rst_in_window_challenged():
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS)
    d.peer("R", seq=R + 100)
    d.expect(".", seq=A, ack=R)
    assert d.state is S.SYN_RECEIVED


def test_syn_received_rst_outside_window_dropped():
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS)
    d.peer("R", seq=R + 70000)
    d.expect_nothing()
    assert d.state is S.SYN_RECEIVED


@pytest.mark.parametrize("where", [-1000, 70000])
def test_syn_received_out_of_window_segment_gets_ack(where):
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS)
    d.peer("P.", seq=R + where, ack=A, data=b"x")
    d.expect(".", seq=A, ack=R)          # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
    assert d.state is S.SYN_RECEIVED


def test_syn_received_new_syn_in_window():
    # §3.10.7.4 fourth, passive OPEN: return to LISTEN (this TCB goes away), no RST
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS)
    d.peer("S", seq=R + 10)
    d.expect_nothing()
    assert d.state is S.CLOSED


def test_syn_ack_retransmission_and_timeout():
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS, config=TcpConfig(synack_retries=2))
    d.expect("S.", seq=ISS, ack=R, at=1.0)
    d.expect("S.", seq=ISS, ack=R, at=3.0)
    d.expect_nothing(until=6.99)
    d.advance(0.02)
    assert d.state is S.CLOSED
    assert any(isinstance(e, TimedOut) for e in d.events())


def test_close_in_syn_received_retransmits_syn_ack_then_fin():
    # §3.10.4 SYN-RECEIVED: CLOSE -> FIN-WAIT-1; the FIN follows once our SYN is acknowledged,
    # and until then the SYN,ACK is still retransmitted.
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS)
    d.conn.shutdown_write(d.now)
    assert d.state is S.FIN_WAIT_1
    d.expect("S.", seq=ISS, ack=R, at=1.0)
    d.peer(".", seq=R, ack=A)
    d.expect("F.", seq=A, ack=R)
    d.peer(".", seq=R, ack=A + 1)
    assert d.state is S.FIN_WAIT_2


# ---------------------------------------------------------------- MSS and window scaling

def test_default_mss_536_when_option_absent():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(nagle=False))
    assert d.conn.send(b"x" * 1000) == 1000
    d.expect(".", seq=A, length=536)
    d.expect("P.", seq=A + 536, length=464)


def test_default_mss_1220_for_ipv6():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(nagle=False),
                             local=("2001:db8::2", 40000), remote=("2001:db8::1", 80))
    d.conn.send(b"x" * 1300)
    d.expect(".", seq=A, length=1220)
    d.expect("P.", seq=A + 1220, length=80)


def test_never_send_more_than_peer_mss():
    d = Dialogue.established(iss=ISS, irs=IRS, peer_options=(Mss(100),), config=TcpConfig(nagle=False))
    d.conn.send(b"y" * 250)
    d.expect(".", seq=A, length=100)
    d.expect(".", seq=A + 100, length=100)
    d.expect("P.", seq=A + 200, length=50)


def test_our_mss_limits_when_peer_mss_is_larger():
    d = Dialogue.established(iss=ISS, irs=IRS, peer_options=(Mss(9000),),
                             config=TcpConfig(nagle=False, mss=1000))
    d.conn.send(b"y" * 1500)
    d.expect(".", seq=A, length=1000)
    d.expect("P.", seq=A + 1000, length=500)


def test_window_scale_applied_after_syn():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("S.", seq=IRS, ack=A, window=1000, options=(Mss(1460), Nop(), WindowScale(4)))
    # our ACK: 262144 >> 3 (the shift we offered)
    d.expect(".", seq=A, ack=R, window=262144 >> 3)
    assert d.conn.info().snd_wnd == 1000            # the SYN's window is never scaled
    d.peer(".", seq=R, ack=A, window=1000)
    assert d.conn.info().snd_wnd == 16000


def test_window_scale_needs_both_syns():
    # our SYN without wscale: the peer's wscale is ignored (RFC 7323 §2.2)
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS, config=TcpConfig(window_scaling=False))
    d.peer("S.", seq=IRS, ack=A, window=1000, options=(Nop(), WindowScale(4)))
    d.expect(".", seq=A, ack=R, window=65535)
    d.peer(".", seq=R, ack=A, window=1000)
    assert d.conn.info().snd_wnd == 1000
    assert not d.conn.info().wscale_ok


def test_window_scale_not_offered_by_peer():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("S.", seq=IRS, ack=A, window=1000, options=(Mss(1460),))
    d.expect(".", seq=A, ack=R, window=65535)       # 262144 capped at 65535, unscaled
    d.peer(".", seq=R, ack=A, window=1000)
    assert d.conn.info().snd_wnd == 1000


def test_wscale_above_14_is_14():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("S.", seq=IRS, ack=A, window=1000, options=(Nop(), WindowScale(20)))
    d.expect(".", seq=A, ack=R)
    d.peer(".", seq=R, ack=A, window=1)
    assert d.conn.info().snd_wnd == 1 << 14


def test_timestamps_negotiated_and_echoed():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("S.", seq=IRS, ack=A, options=(Mss(1460), Nop(), Nop(), Timestamps(1000, 0)))
    d.expect(".", seq=A, ack=R, options=(Nop(), Nop(), Timestamps(0, 1000)))
    d.now = 0.5
    d.conn.send(b"hi")
    d.expect("P.", seq=A, ack=R, data=b"hi", options=(Nop(), Nop(), Timestamps(500, 1000)))


def test_timestamps_not_offered_by_peer_never_sent():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS)
    d.peer("S.", seq=IRS, ack=A, options=(Mss(1460),))
    d.expect(".", seq=A, ack=R, options=())
    assert not d.conn.info().timestamps_ok and not d.conn.info().sack_ok


def test_sack_negotiated_blocks_sent():
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS, config=NOACK)
    d.peer("S.", seq=IRS, ack=A, options=(Mss(1460), Nop(), Nop(), SackPermitted()))
    d.expect(".", seq=A, ack=R)
    assert d.conn.info().sack_ok
    from synack.wire.tcp import Sack
    d.peer(".", seq=R + 10, ack=A, data=b"z" * 10)
    d.expect(".", seq=A, ack=R, options=(Nop(), Nop(), Sack((((R + 10) & 0xFFFFFFFF, (R + 20) & 0xFFFFFFFF),))))


def test_events_of_an_accepted_connection():
    d = Dialogue.in_state(S.SYN_RECEIVED, iss=ISS, config=NOACK)
    d.peer("P.", seq=R, ack=A, data=b"x")
    ev = d.events()
    kinds = [type(e) for e in ev]
    assert Connected in kinds and DataReceived in kinds and EndOfStream not in kinds


def test_retransmitted_syn_ack_in_established_is_acked():
    # our handshake ACK was lost: the old SYN,ACK lies left of the window -> plain ACK (first check)
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.peer("S.", seq=IRS, ack=A)
    d.expect(".", seq=A, ack=R)
    d.expect_nothing()
    assert d.state is S.ESTABLISHED
