"""Packet dialogues: Explicit Congestion Notification (RFC 3168 §6.1). Negotiation (§6.1.1),
ECT(0) on new data only (§6.1.2, §6.1.4-6.1.6), the receiver's ECE until CWR (§6.1.3) and the
sender's one reduction per window with CWR on the next new data (§6.1.2). ``ecn=`` on
``peer``/``expect`` is the IP header's ECN field: 0 Not-ECT, 2 ECT(0), 3 CE."""

from synack.tcp.config import TcpConfig
from synack.tcp.events import CwndChanged, EcnSignal
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.wire.tcp import Mss

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
NOT_ECT, ECT0, CE = 0, 2, 3
MSS = 1000


def cfg(**kw) -> TcpConfig:
    base = dict(ack_delay=None, cc="newreno", mss=MSS, timestamps=False, sack=False, window_scaling=False)
    base.update(kw)
    return TcpConfig(**base)


def passive(config: TcpConfig, syn_flags: str = "SEW", log=None) -> Dialogue:
    """LISTEN, the peer's SYN (ECN-setup by default), our SYN-ACK, the peer's ACK."""
    d = Dialogue(iss=ISS, config=config, log=log)
    d.irs = IRS
    d.conn.listen(d.now)
    d.peer(syn_flags, seq=IRS, window=65535, options=(Mss(MSS),))
    synack = d.expect("SE." if syn_flags == "SEW" and config.ecn != "off" else "S.", seq=ISS, ack=R,
                      ecn=NOT_ECT)                     # §6.1.1: "MUST NOT set ECT on SYN or SYN-ACK"
    assert synack is not None
    d.peer(".", seq=R, ack=A)
    assert d.state is State.ESTABLISHED
    d.events()
    return d


def active(config: TcpConfig, synack_flags: str = "SE.") -> Dialogue:
    d = Dialogue(iss=ISS, config=config)
    d.irs = IRS
    d.conn.connect(d.now)
    d.expect("SEW", seq=ISS, ecn=NOT_ECT)
    d.peer(synack_flags, seq=IRS, ack=A, options=(Mss(MSS),))
    d.expect(".", seq=A, ack=R, ecn=NOT_ECT)
    d.events()
    return d


# ---------------------------------------------------------------- negotiation (§6.1.1)

def test_accept_answers_an_ecn_setup_syn_and_marks_new_data_ect0():
    log: list = []
    d = passive(cfg(), log=log.append)
    assert d.conn.ecn_ok
    assert EcnSignal(0.0, d.id, "negotiated") in log
    d.conn.send(b"x" * 300)
    d.expect("P.", seq=A, ack=R, length=300, ecn=ECT0)     # §6.1.2: ECT(0) on data
    d.peer("P.", seq=R, ack=A + 300, data=b"y" * 10)
    d.expect(".", seq=A + 300, ack=R + 10, ecn=NOT_ECT)     # §6.1.4: a pure ACK is Not-ECT


def test_plain_syn_gets_plain_synack_and_no_ect():
    d = passive(cfg(), syn_flags="S")
    assert not d.conn.ecn_ok
    d.conn.send(b"x" * 300)
    d.expect("P.", seq=A, length=300, ecn=NOT_ECT)


def test_half_ecn_setup_syn_is_not_ecn_setup():
    # ECE alone (or CWR alone) on a SYN is a non-ECN-setup SYN (§6.1.1)
    d = Dialogue(iss=ISS, config=cfg())
    d.conn.listen(d.now)
    d.peer("SE", seq=IRS)
    d.expect("S.", seq=ISS, ack=R)
    assert not d.conn.ecn_ok


def test_ecn_off_answers_an_ecn_setup_syn_without_ece():
    d = passive(cfg(ecn="off"))
    assert not d.conn.ecn_ok
    d.conn.send(b"x" * 10)
    d.expect("P.", seq=A, length=10, ecn=NOT_ECT)


def test_accept_only_does_not_request_ecn_on_its_syn():
    d = Dialogue(iss=ISS, config=cfg())
    d.conn.connect(d.now)
    d.expect("S", seq=ISS)
    d.peer("SE.", seq=IRS, ack=A)       # an ECN-setup SYN-ACK to a plain SYN: not ECN (MUST NOT)
    d.expect(".", seq=A, ack=R)
    assert not d.conn.ecn_ok


def test_on_requests_ecn_and_an_ecn_setup_synack_completes_it():
    d = active(cfg(ecn="on"))
    assert d.conn.ecn_ok
    d.conn.send(b"x" * 100)
    d.expect("P.", seq=A, ack=R, length=100, ecn=ECT0)


def test_reflected_flags_on_synack_are_not_ecn_setup():
    # §6.1.1.2: a SYN-ACK with ECE and CWR (a reflection of our SYN's bits) is non-ECN-setup
    d = active(cfg(ecn="on"), synack_flags="SEW.")
    assert not d.conn.ecn_ok
    d.conn.send(b"x" * 100)
    d.expect("P.", seq=A, length=100, ecn=NOT_ECT)


def test_syn_retransmissions_fall_back_to_plain_syn_and_then_no_ecn():
    # §6.1.1.1: after ecn_syn_retries ECN-setup retransmissions the SYN goes without ECE/CWR;
    # having sent a non-ECN-setup SYN, ECT is not allowed (§6.1.1) even if the SYN-ACK agrees.
    d = Dialogue(iss=ISS, config=cfg(ecn="on", ecn_syn_retries=1))
    d.conn.connect(d.now)
    d.expect("SEW", seq=ISS, at=0.0)
    d.expect("SEW", seq=ISS, at=1.0)
    d.expect("S", seq=ISS, at=3.0)
    d.peer("SE.", seq=IRS, ack=A)
    d.expect(".", seq=A, ack=R)
    assert d.state is State.ESTABLISHED and not d.conn.ecn_ok


def test_simultaneous_open_with_ecn_setup_syns():
    d = Dialogue(iss=ISS, config=cfg(ecn="on"))
    d.conn.connect(d.now)
    d.expect("SEW", seq=ISS)
    d.peer("SEW", seq=IRS)
    d.expect("SE.", seq=ISS, ack=R, ecn=NOT_ECT)       # our SYN-ACK is ECN-setup: ECE only
    assert d.conn.ecn_ok


# ---------------------------------------------------------------- the receiver (§6.1.3)

def test_ce_data_is_echoed_with_ece_until_cwr_arrives():
    log: list = []
    d = passive(cfg(), log=log.append)
    d.peer("P.", seq=R, ack=A, data=b"a" * 100, ecn=CE)
    d.expect("E.", seq=A, ack=R + 100)                 # ECE on the ACK of the CE packet
    d.peer("P.", seq=R + 100, ack=A, data=b"b" * 100, ecn=ECT0)
    d.expect("E.", seq=A, ack=R + 200)                 # ... and on every ACK until CWR
    d.conn.send(b"c" * 50)
    d.expect("PE.", seq=A, ack=R + 200, length=50, ecn=ECT0)   # data carries ECE too
    d.peer("PW.", seq=R + 200, ack=A + 50, data=b"d" * 100, ecn=ECT0)
    d.expect(".", seq=A + 50, ack=R + 300)             # CWR: the echo stops
    d.peer("P.", seq=R + 300, ack=A + 50, data=b"e" * 100, ecn=ECT0)
    d.expect(".", seq=A + 50, ack=R + 400)
    assert [e.signal for e in log if isinstance(e, EcnSignal)] == ["negotiated", "ce", "cwr"]


def test_ce_and_cwr_on_one_segment_keep_the_echo():
    d = passive(cfg())
    d.peer("P.", seq=R, ack=A, data=b"a" * 100, ecn=CE)
    d.expect("E.", ack=R + 100)
    d.peer("PW.", seq=R + 100, ack=A, data=b"b" * 100, ecn=CE)   # CWR, then a new CE mark
    d.expect("E.", ack=R + 200)


def test_ce_on_an_out_of_window_segment_is_ignored():
    # §6.1.5: "the TCP data receiver SHOULD ignore the CE codepoint on out-of-window packets"
    d = passive(cfg())
    d.peer("P.", seq=R, ack=A, data=b"a" * 100)
    d.expect(".", ack=R + 100)
    d.peer("P.", seq=R, ack=A, data=b"a" * 100, ecn=CE)         # an old duplicate
    d.expect(".", ack=R + 100)
    d.peer("P.", seq=R + 100, ack=A, data=b"b" * 100)
    d.expect(".", ack=R + 200)


def test_ce_without_ecn_is_ignored():
    d = passive(cfg(), syn_flags="S")
    d.peer("P.", seq=R, ack=A, data=b"a" * 100, ecn=CE)
    d.expect(".", ack=R + 100)


# ---------------------------------------------------------------- the sender (§6.1.2)

def send_flight(d: Dialogue, n: int) -> None:
    d.conn.send(b"z" * (n * MSS))
    for i in range(n):
        d.expect("P." if i == n - 1 else ".", seq=A + i * MSS, length=MSS, ecn=ECT0)


def test_ece_halves_the_window_once_and_cwr_goes_on_the_next_new_data():
    log: list = []
    d = passive(cfg(), log=log.append)
    send_flight(d, 4)
    assert d.conn.cc.cwnd >= 10 * MSS                 # IW10
    d.peer("E.", seq=R, ack=A + MSS)                   # an ECN-Echo ACK
    # treated as a loss: ssthresh = FlightSize / 2 (RFC 5681 eq. 4, 4 segments in flight)
    assert (d.conn.cc.ssthresh, d.conn.cc.cwnd) == (2 * MSS, 2 * MSS)
    assert any(isinstance(e, CwndChanged) and e.reason == "ecn-echo" for e in log)
    d.expect_nothing()                                 # 3 segments in flight > cwnd 2
    d.peer("E.", seq=R, ack=A + 2 * MSS)               # same window: no second reduction
    d.peer("E.", seq=R, ack=A + 3 * MSS)
    assert d.conn.cc.ssthresh == 2 * MSS
    d.conn.send(b"n" * 2 * MSS)
    d.expect("W.", seq=A + 4 * MSS, length=MSS, ecn=ECT0)      # CWR on the first new data only
    d.expect("P.", seq=A + 5 * MSS, length=MSS, ecn=ECT0)
    d.peer(".", seq=R, ack=A + 6 * MSS)
    assert [e.signal for e in log if isinstance(e, EcnSignal)] == ["negotiated", "ece"]


def test_ece_for_data_sent_after_the_reduction_reduces_again():
    d = passive(cfg())
    send_flight(d, 4)
    d.peer("E.", seq=R, ack=A + 4 * MSS)
    assert d.conn.cc.ssthresh == 2 * MSS
    send_flight_from = A + 4 * MSS
    d.conn.send(b"n" * 2 * MSS)
    d.expect("W.", seq=send_flight_from, length=MSS, ecn=ECT0)
    d.expect("P.", seq=send_flight_from + MSS, length=MSS, ecn=ECT0)
    d.peer("E.", seq=R, ack=send_flight_from + MSS)    # a new CE mark, in the new window
    assert d.conn.cc.ssthresh == 2 * MSS and d.conn.cc.cwnd == 2 * MSS    # the 2 SMSS floor
    d.conn.send(b"m" * MSS)
    d.expect("PW.", seq=send_flight_from + 2 * MSS, length=MSS, ecn=ECT0)


def test_retransmissions_are_not_ect_and_carry_no_cwr():
    d = passive(cfg())
    d.conn.send(b"q" * MSS)
    d.expect("P.", seq=A, length=MSS, ecn=ECT0)
    # the RTO (1 s) resends it: Not-ECT (§6.1.5); the window was reduced, yet CWR waits for new data
    d.expect("P.", seq=A, length=MSS, at=1.0, ecn=NOT_ECT)
    d.peer(".", seq=R, ack=A + MSS)
    d.conn.send(b"r" * 10)
    d.expect("PW.", seq=A + MSS, length=10, ecn=ECT0)


def test_window_probes_are_not_ect():
    # §6.1.6: "the TCP data sender MUST NOT set either an ECT codepoint or the CWR bit on window probes"
    d = passive(cfg())
    d.peer(".", seq=R, ack=A, window=0)
    d.conn.send(b"p" * 10)
    d.expect_nothing()
    d.expect(".", seq=A, length=1, at=1.0, ecn=NOT_ECT)


def test_simultaneous_open_peer_synack_ece_is_not_an_ecn_echo():
    # the peer's ECN-setup SYN-ACK (ECE) completing a simultaneous open is taken as the ACK it
    # carries: its ECE is the setup flag, not congestion (§6.1.1), so no window reduction
    log: list = []
    d = Dialogue(iss=ISS, config=cfg(ecn="on"), log=log.append)
    d.conn.connect(d.now)
    d.expect("SEW", seq=ISS)
    d.peer("SEW", seq=IRS, options=(Mss(MSS),))
    d.expect("SE.", seq=ISS, ack=R)
    cwnd = d.conn.cc.cwnd
    d.peer("SE.", seq=IRS, ack=A, options=(Mss(MSS),))
    assert d.state is State.ESTABLISHED and d.conn.ecn_ok
    assert d.conn.cc.cwnd >= cwnd and not [e for e in log if isinstance(e, EcnSignal) and e.signal == "ece"]
    d.conn.send(b"x" * 10)
    d.expect("P.", seq=A, length=10, ecn=ECT0)          # no CWR: there was no reduction
