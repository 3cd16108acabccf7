"""RFC 6937 (Proportional Rate Reduction) as packet dialogues: the two examples of §3.1 (one
loss; 15 consecutive losses) with the §3 algorithm, PRR-SSRB, and DeliveredData (§2). NewReno
(ssthresh = FlightSize / 2, as the RFC's examples assume), RACK off (RFC 6675 IsLost), 20
segments in flight. ISS and IRS just below 2**32: sequence numbers wrap."""

from synack.tcp.config import TcpConfig
from synack.tcp.events import PipeChanged, RecoveryEntered
from synack.tcp.states import State
from synack.testing import Dialogue
from synack.wire.tcp import Mss, Nop, Sack, SackPermitted

ISS, IRS = 2**32 - 3, 2**32 - 5
A, R = ISS + 1, IRS + 1
M = 0xFFFFFFFF
SACK_OK = (Mss(1000), Nop(), Nop(), SackPermitted())


def established(log):
    cfg = TcpConfig(nagle=False, rack=False, cc="newreno", initial_window=20000)
    d = Dialogue(iss=ISS, config=cfg, log=log.append)
    d.irs = IRS
    d.conn.connect(d.now)
    d.expect("S", seq=ISS)
    d.now += 0.1
    d.peer("S.", seq=IRS, ack=A, options=SACK_OK)
    d.expect(".", seq=A, ack=R)
    assert d.state is State.ESTABLISHED
    d.conn.send(b"x" * 60000)
    for i in range(20):
        d.expect(".", seq=A + 1000 * i, length=1000)
    d.expect_nothing()
    d.now += 0.1
    return d


def ack_arrivals(d, lost):
    """The ACKs for segments 0..19 arriving in order, those in ``lost`` missing. Returns, per
    ACK, what was sent in answer: "N" new data, "R" a retransmission (one letter a segment)."""
    una, sacked, row = 0, [], []
    for k in range(20):
        if k in lost:
            continue
        if k == una:
            una += 1
        else:
            sacked.append(k)
        runs: list[list[int]] = []
        for s in sacked:
            if runs and runs[-1][1] == s:
                runs[-1][1] = s + 1
            else:
                runs.append([s, s + 1])
        blocks = [(A + 1000 * a, A + 1000 * b) for a, b in reversed(runs)][:4]
        d.peer(".", seq=R, ack=A + 1000 * una,
               options=(Nop(), Nop(), Sack(tuple((a & M, b & M) for a, b in blocks))) if blocks else ())
        d._collect()
        sent = ""
        while d.sent:
            sent += "R" if ((d.sent.popleft().seq - A) & M) // 1000 < 20 else "N"
        row.append(sent)
    return row


def test_prr_one_loss_sends_in_proportion_then_reaches_ssthresh():
    """§3.1, one loss (segment 0 of 20): two segments of Limited Transmit, the fast retransmit,
    then while pipe > ssthresh sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out,
    RecoverFS = snd.nxt - snd.una = 22 segments, ssthresh = 10: about one segment for every two
    delivered, spread over the round trip; then the reduction bound (§3 "else") tops pipe up to
    ssthresh and no further. At the end pipe = ssthresh, the target (§4: "PRR will converge to
    exactly the target window")."""
    log: list = []
    d = established(log)
    row = ack_arrivals(d, {0})
    assert row == ["N", "N", "R", "", "N", "", "N", "", "N", "", "N", "", "", "N", "", "N", "", "", "N"]
    assert [(r.flight, r.ssthresh) for r in log if isinstance(r, RecoveryEntered)] == [(20000, 10000)]
    assert d.conn._recover_fs == 22000
    assert d.conn.pipe == d.conn.cc.ssthresh == 10000


def test_prr_ssrb_fifteen_losses_slow_start_back_towards_ssthresh():
    """§3.1, segments 0-14 lost: the ACKs of 15 and 16 send new data (Limited Transmit); the
    third enters recovery with pipe (4) far below ssthresh (10): PRR-SSRB, "limit =
    MAX(prr_delivered - prr_out, DeliveredData) + MSS", sndcnt = MIN(ssthresh - pipe, limit):
    two retransmissions per ACK, the RFC's "N N 2R 2R 2R" (PRR-CRB would send one)."""
    log: list = []
    d = established(log)
    row = ack_arrivals(d, set(range(15)))
    assert row == ["N", "N", "RR", "RR", "RR"]
    pipes = [p.pipe for p in log if isinstance(p, PipeChanged)]
    assert pipes == [4000, 5000, 6000]                      # the RFC's pipe row: 4 5 6


def test_delivered_data_is_the_change_in_snd_una_plus_the_change_in_sackd():
    """§2: "DeliveredData can be computed precisely as the change in snd.una, plus the (signed)
    change in SACKd"; §3: prr_delivered sums it. An ACK during recovery that moves snd.una by
    one segment (the retransmission arrived) and SACKs one more delivers two."""
    log: list = []
    d = established(log)
    for k in range(1, 4):                                   # segments 0 and 5 lost
        d.peer(".", seq=R, ack=A, options=(Nop(), Nop(), Sack((((A + 1000) & M, (A + 1000 * (k + 1)) & M),))))
    before = [p for p in log if isinstance(p, PipeChanged)][-1].delivered
    # the retransmission of 0 arrives, 4 late, and 6 (5 is still missing): snd.una moves by 5000,
    # SACKd loses 1-3 (now acknowledged cumulatively) and gains 6: DeliveredData = the octets
    # of 0, 4 and 6
    d.peer(".", seq=R, ack=A + 5000, options=(Nop(), Nop(), Sack((((A + 6000) & M, (A + 7000) & M),))))
    after = [p for p in log if isinstance(p, PipeChanged)][-1].delivered
    assert after - before == 5000 - 3000 + 1000
