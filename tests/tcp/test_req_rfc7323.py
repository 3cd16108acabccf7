"""Packet dialogues for RFC 7323 requirements (docs/rfc-requirements-timers-cc.md): the Window
Scale option (§2.2-2.4), the Timestamps option rules (§3.2), RTTM (§4.1, §4.3), PAWS (§5.2-5.5).
ISS and IRS lie just below 2**32, so sequence numbers wrap mid-test; the peer's TSval starts
just below 2**32 too, so timestamps wrap as well."""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.events import DataReceived, OptionError, RttSample, SegmentIn, SegmentOut
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.wire.tcp import Mss, Nop, SackPermitted, Timestamps, WindowScale

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
S = State
PEER_TS0 = 2**32 - 10                     # the peer's TSval on its SYN-ACK
TS_OK = (Mss(1000), SackPermitted(), Timestamps(PEER_TS0, 0), Nop(), WindowScale(7))


def ts(val, ecr=0):
    return (Nop(), Nop(), Timestamps(val & M, ecr & M))


def established(config=None, log=None, peer_options=TS_OK):
    """Active open at t=0 with timestamps (unless ``peer_options`` says otherwise)."""
    return Dialogue.established(iss=ISS, irs=IRS, config=config if config is not None else TcpConfig(),
                                peer_options=peer_options, log=log)


def echoed(seg):
    return seg.timestamps.ecr


# ---------------------------------------------------------------- §2 Window Scale

def test_wscale_is_offered_even_when_the_shift_is_zero():
    """§2.2: a TCP prepared to scale SHOULD send the option "even if its own scale factor is 1
    and the exponent 0"; shift.cnt MAY be zero. A 65535-octet buffer needs no shift."""
    d = Dialogue(iss=ISS, config=TcpConfig(rcv_buf=65535))
    d.conn.connect(d.now)
    syn = d.expect("S", seq=ISS, window=65535)
    assert syn.wscale == 0
    d.peer("S.", seq=IRS, ack=A, window=1000, options=(Mss(1000), Nop(), WindowScale(5)))
    d.expect(".", seq=A, ack=R, window=65535)            # our shift 0: the window as it is
    info = d.conn.info()
    assert info.wscale_ok and (info.snd_wscale, info.rcv_wscale) == (5, 0)


def test_syn_ack_carries_wscale_only_when_the_syn_did():
    """§2.2: WSopt MAY be sent in the SYN,ACK only if one was received in the initial SYN;
    §2.3: without it both shifts are zero."""
    d = Dialogue.in_state(S.LISTEN, iss=ISS)
    d.peer("S", seq=IRS, window=1000, options=(Mss(1000), SackPermitted(), Timestamps(7, 0)))
    synack = d.expect("S.", seq=ISS, ack=R, window=65535)
    assert synack.wscale is None and synack.timestamps is not None
    d.peer(".", seq=R, ack=A, window=1000, options=ts(8, synack.timestamps.val))
    info = d.conn.info()
    assert not info.wscale_ok and (info.snd_wscale, info.rcv_wscale) == (0, 0)
    assert info.snd_wnd == 1000
    d.conn.send(b"x")
    d.expect("P.", seq=A, ack=R, window=65535)           # 262144 capped, never shifted


def test_passive_open_takes_the_syn_window_unscaled():
    """§2.2: "The window field in a segment where the SYN bit is set ... MUST NOT be scaled";
    §2.3: from the next segment on, SND.WND = SEG.WND << Snd.Wind.Shift."""
    d = Dialogue.in_state(S.LISTEN, iss=ISS)
    d.peer("S", seq=IRS, window=1000, options=(Mss(1000), Nop(), WindowScale(7)))
    synack = d.expect("S.", seq=ISS, ack=R, window=65535)   # ours unscaled too
    assert synack.wscale == 3
    assert d.conn.info().snd_wnd == 1000
    d.peer(".", seq=R, ack=A, window=1000)
    assert d.conn.info().snd_wnd == 1000 << 7


def test_wscale_option_on_a_non_syn_segment_is_ignored():
    """§2.2: "A Window Scale option in a segment without a SYN bit MUST be ignored": the shifts
    stay what the SYNs agreed on, both ways."""
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS, config=TcpConfig(ack_delay=None))
    d.peer("S.", seq=IRS, ack=A, window=1000, options=(Mss(1000), Nop(), WindowScale(2)))
    d.expect(".", seq=A, ack=R, window=262144 >> 3)
    d.peer(".", seq=R, ack=A, window=100, options=(Nop(), WindowScale(9)))
    assert d.conn.info().snd_wnd == 100 << 2
    d.peer("P.", seq=R, ack=A, window=100, data=b"x" * 100, options=(Nop(), WindowScale(0)))
    d.expect(".", seq=A, ack=R + 100, window=(262144 - 100) >> 3)
    info = d.conn.info()
    assert (info.snd_wscale, info.rcv_wscale, info.snd_wnd) == (2, 3, 400)


def test_configured_shift_above_14_is_offered_as_14():
    """§2.3: "the shift count MUST be limited to 14": a configured wscale of 20 is offered, and
    applied to our window field, as 14."""
    d = Dialogue(iss=ISS, config=TcpConfig(wscale=20, rcv_buf=1 << 30))
    d.conn.connect(d.now)
    assert d.expect("S", seq=ISS).wscale == 14
    d.peer("S.", seq=IRS, ack=A, options=(Mss(1000), Nop(), WindowScale(0)))
    d.expect(".", seq=A, ack=R, window=((1 << 30) >> 14) - 1)   # 65535 << 14 covers 1 GiB - 2**14
    assert d.conn.info().rcv_wscale == 14


def test_received_shift_above_14_is_logged():
    """§2.3: "If a Window Scale option is received with a shift.cnt value larger than 14, the
    TCP SHOULD log the error but MUST use 14 instead": one ``OptionError`` record in the log."""
    log = []
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS, log=log.append)
    d.peer("S.", seq=IRS, ack=A, options=(Mss(1000), Nop(), WindowScale(15)))
    d.expect(".", seq=A, ack=R)
    assert d.conn.info().snd_wscale == 14
    assert [r for r in log if isinstance(r, OptionError)] == [OptionError(d.now, d.conn.id, "wscale", 15, 14)]


def test_segment_in_a_window_we_advertised_earlier_is_accepted():
    """§2.4 receiver rules 1) and 2): the scaled window rounds down, so a later ACK may announce
    a right edge a few octets left of an earlier one; a segment that was in window for any ACK
    we sent MUST be honoured, and the receiver tracks the largest right edge."""
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS, config=TcpConfig(rcv_buf=100001, wscale=4, ack_delay=None))
    d.peer("S.", seq=IRS, ack=A, options=(Mss(1000), Nop(), WindowScale(0)))
    d.expect(".", seq=A, ack=R, window=6250)             # right edge R + 100000
    d.peer("P.", seq=R, ack=A, data=b"a" * 1000)
    d.expect(".", seq=A, ack=R + 1000, window=6187)      # 99000 >> 4: edge R + 99992
    # 1000 octets ending at R + 100000: 8 past the last announced edge, inside the first one
    d.peer("P.", seq=R + 99000, ack=A, data=b"c" * 1000)
    d.expect(".", seq=A, ack=R + 1000)                   # out of order: held, duplicate ACK
    d.peer("P.", seq=R + 1000, ack=A, data=b"b" * 98000)
    d.expect(".", seq=A, ack=R + 100000)
    assert d.conn.receive(200000) == b"a" * 1000 + b"b" * 98000 + b"c" * 1000


# ---------------------------------------------------------------- §3.2 the Timestamps option

def test_syn_tsecr_is_zero_and_tsval_is_the_clock():
    """§3.2: without the ACK bit TSecr SHOULD be zero (the SYN and its retransmissions);
    §4.1 and §5.4: TSval comes from a clock proportional to real time (1 ms a tick)."""
    d = Dialogue(iss=ISS, now=5.0)
    d.conn.connect(d.now)
    assert d.expect("S", seq=ISS).timestamps == Timestamps(5000, 0)
    assert d.expect("S", seq=ISS, at=6.0).timestamps == Timestamps(6000, 0)


def test_every_segment_carries_the_timestamp_once_negotiated():
    """§3.2: "the TSopt MUST be sent in every non-<RST> segment for the duration of the
    connection": data, retransmissions, zero-window probes, keep-alives, pure ACKs and the FIN,
    each with TSecr = TS.Recent (§4.3 rule (3))."""
    d = established(TcpConfig(keepalive=True, keepalive_idle=100.0, ack_delay=None, nagle=False, sack=False))
    d.conn.send(b"a" * 10)
    d.expect("P.", seq=A, length=10, at=0.0)
    d.expect("P.", seq=A, length=10, at=1.0)             # RTO retransmission
    d.peer(".", seq=R, ack=A + 10, window=0, options=ts(5, 1000))
    d.conn.send(b"b" * 10)
    d.expect(".", seq=A + 10, length=1, at=2.0)          # zero-window probe
    d.peer(".", seq=R, ack=A + 10, window=100, options=ts(6, 2000))
    d.expect("P.", seq=A + 10, length=10)
    d.peer("P.", seq=R, ack=A + 20, window=100, data=b"hi", options=ts(7, 2000))
    d.expect(".", seq=A + 20, ack=R + 2)                  # pure ACK
    d.expect(".", seq=A + 19, ack=R + 2, at=102.0)        # keep-alive probe
    d.conn.shutdown_write(d.now)
    d.expect("F.", seq=A + 20, ack=R + 2)
    out = [s for _, way, s in d.history if way == ">"]
    assert len(out) == 9
    assert all(s.timestamps is not None for s in out)
    assert [echoed(s) for s in out[-4:]] == [6, 7, 7, 7]     # data, ACK, keep-alive, FIN


def test_tsecr_of_a_segment_without_ack_is_ignored():
    """§3.2: "When the ACK bit is not set, the receiver MUST ignore the value of the TSecr
    field": a simultaneous open's SYN carries a TSecr that is no echo of ours; only the SYN,ACK
    that follows gives an RTT sample."""
    log = []
    d = Dialogue.in_state(S.SYN_SENT, iss=ISS, log=log.append)
    d.now = 0.2
    d.peer("S", seq=IRS, options=(Mss(1000), SackPermitted(), Timestamps(50, 123456789), Nop(), WindowScale(7)))
    synack = d.expect("S.", seq=ISS, ack=R)
    assert echoed(synack) == 50
    assert not [r for r in log if isinstance(r, RttSample)]
    d.now = 0.3
    d.peer("S.", seq=IRS, ack=A, options=(Mss(1000), SackPermitted(), Timestamps(60, 0), Nop(), WindowScale(7)))
    d.peer(".", seq=R, ack=A, options=ts(61, synack.timestamps.val))
    assert d.state is S.ESTABLISHED
    assert [round(r.rtt, 6) for r in log if isinstance(r, RttSample)] == [0.1]


def test_timestamps_on_a_connection_that_did_not_agree_on_them_are_ignored():
    """§3.2: "If a TSopt is received on a connection where TSopt was not negotiated in the
    initial three-way handshake, the TSopt MUST be ignored and the packet processed normally":
    no PAWS, no TS.Recent, no RTT from TSecr, no TSopt in replies."""
    log = []
    d = established(TcpConfig(ack_delay=None), log=log.append, peer_options=(Mss(1000),))
    assert not d.conn.info().timestamps_ok
    log.clear()
    d.conn.send(b"ping")
    d.expect("P.", seq=A, data=b"ping", options=())
    d.now = 0.3
    d.peer("P.", seq=R, ack=A + 4, data=b"a", options=ts(500, 123456))
    d.expect(".", seq=A + 4, ack=R + 1, options=())
    d.peer("P.", seq=R + 1, ack=A + 4, data=b"b", options=ts(400))    # "older": no PAWS
    d.expect(".", seq=A + 4, ack=R + 2, options=())
    assert d.conn.receive(10) == b"ab"
    assert [round(r.rtt, 6) for r in log if isinstance(r, RttSample)] == [0.3]   # timed, not TSecr


# ---------------------------------------------------------------- §4 RTTM

def test_rtt_is_measured_only_from_acks_that_advance_snd_una():
    """§4.1 RTTM rule: a TSecr "MAY be used to update the averaged RTT measurement only if the
    segment advances the left edge of the send window": a duplicate ACK or a window update
    carrying an echo gives no sample; the ACK of new data does."""
    log = []
    d = established(log=log.append)
    log.clear()
    d.now = 5.0
    d.conn.send(b"x" * 100)
    seg = d.expect("P.", seq=A, length=100)
    d.now = 5.1
    d.peer(".", seq=R, ack=A, window=60000, options=ts(10, seg.timestamps.val))     # window update
    d.peer(".", seq=R, ack=A, window=60000, options=ts(11, seg.timestamps.val))     # duplicate
    assert not [r for r in log if isinstance(r, RttSample)]
    d.now = 5.25
    d.peer(".", seq=R, ack=A + 100, window=60000, options=ts(12, seg.timestamps.val))
    assert [round(r.rtt, 6) for r in log if isinstance(r, RttSample)] == [0.25]


def _ten_segments_acked_in_pairs_after_the_rtt_rose(config: TcpConfig) -> Dialogue:
    """SRTT 0.1 s from the handshake; then IW10 goes out and five ACKs (one per two segments)
    each echo the first segment's TSval 0.3 s later: five samples of 0.3 s in one window."""
    d = Dialogue(iss=ISS, config=config)
    d.irs = IRS
    d.conn.connect(d.now)
    d.expect("S", seq=ISS)
    d.now = 0.1
    d.peer("S.", seq=IRS, ack=A, options=(Mss(1000), Timestamps(PEER_TS0, 0)))
    d.expect(".", seq=A, ack=R)
    assert d.conn.rtt.srtt == pytest.approx(0.1)
    d.now = 1.0
    d.conn.send(b"x" * 9880)                              # IW10 of 988 octets
    sent = [d.expect(".", seq=A + 988 * i, length=988) for i in range(9)] + [d.expect("P.", seq=A + 8892)]
    d.now = 1.3                                           # the path's RTT rose to 0.3 s
    for k in range(1, 6):                                 # one ACK per two segments
        d.peer(".", seq=R, ack=A + 1976 * k, options=ts(k, sent[0].timestamps.val))
    return d


def test_many_samples_per_window_keep_the_rfc6298_history():
    """§4.2 SHOULD, Appendix G: a sample from each ACK weighs alpha / ExpectedSamples, with
    ExpectedSamples = ceiling(FlightSize / (SMSS * 2)) for the flight before that ACK: 5, 4, 3,
    2, 1 here. RFC 6298's weights per sample would give 0.3 - 0.2 * (7/8)**5 = 0.197."""
    d = _ten_segments_acked_in_pairs_after_the_rtt_rose(TcpConfig(nagle=False, sack=False))
    assert d.conn.rtt.srtt == pytest.approx(0.3 - 0.2 * (39 / 40 * 31 / 32 * 23 / 24 * 15 / 16 * 7 / 8))
    assert d.conn.rtt.srtt < 0.16


def test_rfc6298_gains_per_sample_when_appendix_g_is_off():
    """``rtt_appendix_g=False`` (the Linux and FreeBSD profiles): alpha = 1/8 for every sample."""
    d = _ten_segments_acked_in_pairs_after_the_rtt_rose(TcpConfig(nagle=False, sack=False, rtt_appendix_g=False))
    assert d.conn.rtt.srtt == pytest.approx(0.3 - 0.2 * (7 / 8) ** 5)


def test_ts_recent_is_the_segment_at_last_ack_sent_not_a_later_one():
    """§4.3 rule (2): SEG.TSval goes to TS.Recent only if SEG.SEQ <= Last.ACK.sent. With an ACK
    owed for the first segment, the next one (SEG.SEQ past Last.ACK.sent) does not replace it."""
    d = established()
    d.peer(".", seq=R, ack=A, data=b"a" * 100, options=ts(PEER_TS0 + 4))     # small: ACK delayed
    d.peer(".", seq=R + 100, ack=A, data=b"b" * 100, options=ts(PEER_TS0 + 8))
    assert echoed(d.expect(".", seq=A, ack=R + 200, at=0.04)) == PEER_TS0 + 4


# ---------------------------------------------------------------- §5 PAWS

def test_rst_does_not_update_ts_recent():
    """§5.2: for a received <RST> "information from the Timestamps option MUST NOT be used to
    update connection state information": a RST inside the window but not at RCV.NXT draws a
    challenge ACK (RFC 5961) that still echoes the old TS.Recent."""
    d = established(TcpConfig(ack_delay=None))
    d.peer("P.", seq=R, ack=A, data=b"abc", options=ts(1000))
    assert echoed(d.expect(".", seq=A, ack=R + 3)) == 1000
    d.peer("R", seq=R + 500, options=ts(90000))
    assert echoed(d.expect(".", seq=A, ack=R + 3)) == 1000
    assert d.state is S.ESTABLISHED
    d.peer("P.", seq=R + 3, ack=A, data=b"d", options=ts(2000))     # 2000 < 90000: still fine
    assert echoed(d.expect(".", seq=A, ack=R + 4)) == 2000


def test_paws_takes_precedence_over_the_ack_it_carries():
    """§5.3: "PAWS processing MUST take precedence over the regular TCP acceptability check":
    an old duplicate (SEG.TSval < TS.Recent) is ACKed and dropped whole, even its ACK of our
    data (R1); SND.UNA stays and the data is retransmitted as if nothing came."""
    d = established(TcpConfig(ack_delay=None, sack=False))
    d.peer("P.", seq=R, ack=A, data=b"abc", options=ts(1000))
    d.expect(".", seq=A, ack=R + 3)
    d.conn.send(b"xyz")
    d.expect("P.", seq=A, data=b"xyz")
    d.peer(".", seq=R + 3, ack=A + 3, options=ts(999))
    assert echoed(d.expect(".", seq=A + 3, ack=R + 3)) == 1000    # R1: ACK and drop
    assert d.conn.snd_una == A & M
    d.expect("P.", seq=A, data=b"xyz", at=1.0)
    d.peer(".", seq=R + 3, ack=A + 3, options=ts(1001))
    assert d.conn.snd_una == (A + 3) & M
    d.expect_nothing(until=100.0)


def test_queued_segments_are_not_checked_again():
    """§5.3: the timestamp "MUST be checked only when a segment first arrives"; the RFC's example:
    A.1 then C.1 and D.1 queued behind the lost B.1; B.2 fills the hole and everything is
    delivered (C.1, D.1 are not PAWS-checked against 2); TS.Recent becomes 2 (R3)."""
    d = established(TcpConfig(ack_delay=None))
    d.peer("P.", seq=R, ack=A, data=b"A" * 100, options=ts(1))
    assert echoed(d.expect(".", ack=R + 100)) == 1
    d.peer("P.", seq=R + 200, ack=A, data=b"C" * 100, options=ts(1))
    assert echoed(d.expect(".", ack=R + 100)) == 1
    d.peer("P.", seq=R + 300, ack=A, data=b"D" * 100, options=ts(1))
    assert echoed(d.expect(".", ack=R + 100)) == 1
    d.peer("P.", seq=R + 100, ack=A, data=b"B" * 100, options=ts(2))
    assert echoed(d.expect(".", ack=R + 400)) == 2
    assert d.conn.receive(1000) == b"A" * 100 + b"B" * 100 + b"C" * 100 + b"D" * 100
    assert sum(e.nbytes for e in d.events() if isinstance(e, DataReceived)) == 400


def test_abort_rst_carries_timestamps():
    """§5.2 SHOULD: a user abort's <RST> carries TSopt (TSval now, TSecr TS.Recent); a connection
    without timestamps sends none."""
    d = established()
    d.now = 2.0
    d.conn.abort(d.now)
    rst = d.expect("R", seq=A)
    assert rst.timestamps is not None and rst.timestamps.ecr == d.conn.ts_recent
    d = established(peer_options=(Mss(1000),))
    d.conn.abort(d.now)
    assert d.expect("R", seq=A).timestamps is None


def test_rst_answering_a_segment_echoes_its_tsval():
    """§5.2 RECOMMENDED: "if the segment causing the <RST> to be generated contains a
    Timestamps option, the <RST> should also contain" one, TSecr = SEG.TSval, TSval = 0."""
    d = established()
    d.conn.close(d.now)
    d.expect("F.", seq=A, ack=R)
    d.peer(".", seq=R, ack=A + 1, options=ts(50))
    d.peer("P.", seq=R, ack=A + 1, data=b"late", options=ts(51))    # data after close: RST
    rst = d.expect("R", seq=A + 1)
    assert rst.timestamps == Timestamps(0, 51)
