"""HyStart++ (RFC 9406) in the controller's slow start, then through a whole connection.

The controller is fed what the connection feeds it: per ACK an RTT sample with SND.UNA and the
highest octet sent (``on_rtt_sample``), then the ACK itself (``on_ack``). A round ends when an
ACK covers the highest octet sent when the round began.
"""

import pytest

from synack.tcp.config import TcpConfig
from synack.tcp.congestion import INFINITE_SSTHRESH, Cubic, Reno
from synack.tcp.events import RecoveryEntered, RtoBackoff
from synack.testing.bulk import bulk_flow

MSS = 1000


class Sender:
    """An ACK-clocked bulk sender around a controller: every ACK acknowledges one MSS, then the
    window is refilled (``high`` = SND.UNA + cwnd), as the connection does.

    ``hround(rtt)`` runs one HyStart++ round: the ACK that covers the round's ``window_end``
    begins the next round, so a round is that ACK plus every ACK up to the next such one."""

    def __init__(self, cc):
        self.cc, self.una, self.high, self.now = cc, 0, cc.cwnd, 0.0

    def ack(self, rtt):
        self.now += 0.001
        self.una += MSS
        self.cc.on_rtt_sample(self.now, rtt, self.una, self.high)
        self.cc.on_ack(self.now, MSS, self.high - self.una + MSS, rtt)
        self.high = max(self.high, self.una + self.cc.cwnd)

    def hround(self, rtts):
        hs = self.cc.hystart
        end = hs.window_end if hs is not None and hs.window_end is not None else self.high
        n = max((end - self.una) // MSS, 1)         # the ACKs until the one that reaches ``end``
        rtts = rtts if isinstance(rtts, list) else [rtts] * (n + 1)
        self.ack(rtts[0])                            # this one reaches the old end: a new round
        i = 1
        while self.cc.hystart is not None and self.una + MSS < self.cc.hystart.window_end:
            self.ack(rtts[min(i, len(rtts) - 1)])
            i += 1
        return i


def test_flat_rtt_is_standard_slow_start():
    s = Sender(Reno(MSS, hystart=True))
    s.hround(0.050)                                   # the first round: IW
    for _ in range(5):
        before = s.cc.cwnd
        acks = s.hround(0.050)
        assert s.cc.cwnd == before + acks * MSS      # one MSS per ACK of one MSS: doubling
    assert not s.cc.hystart.css and s.cc.ssthresh == INFINITE_SSTHRESH


def test_rtt_rise_enters_css_after_eight_samples_with_quarter_growth():
    s = Sender(Reno(MSS, hystart=True))
    s.hround(0.050)
    s.hround(0.050)                                   # lastRoundMinRTT = 50 ms
    # RttThresh = clamp(50 ms / 8, 4 ms, 16 ms) = 6.25 ms: a round at +7 ms enters CSS once it
    # has N_RTT_SAMPLE = 8 samples
    for _ in range(7):
        s.ack(0.057)
    assert not s.cc.hystart.css
    s.ack(0.057)
    assert s.cc.hystart.css and s.cc.hystart.css_baseline == 0.057
    before = s.cc.cwnd
    for _ in range(8):
        s.ack(0.057)
    assert s.cc.cwnd - before == 8 * MSS // 4         # a quarter of slow start's growth


@pytest.mark.parametrize("base, rise, css", [
    (0.100, 0.0124, False), (0.100, 0.0125, True),   # RttThresh = 100 ms / 8 = 12.5 ms
    (0.200, 0.0159, False), (0.200, 0.0160, True),   # 200 ms / 8 = 25 ms, capped at 16 ms
    (0.010, 0.0039, False), (0.010, 0.0040, True),   # 10 ms / 8 = 1.25 ms, at least 4 ms
])
def test_rtt_threshold_is_an_eighth_clamped_to_4_16_ms(base, rise, css):
    s = Sender(Reno(MSS, hystart=True))
    s.hround(base)
    s.hround(base)
    s.hround(base + rise)
    assert s.cc.hystart.css is css


def test_rtt_falling_back_in_css_resumes_slow_start():
    s = Sender(Reno(MSS, hystart=True))
    s.hround(0.050)
    s.hround(0.050)
    s.hround(0.060)                                   # CSS, baseline 60 ms
    assert s.cc.hystart.css
    s.hround([0.070] * 8 + [0.055] + [0.070])         # this round's minimum drops below it
    assert not s.cc.hystart.css
    before = s.cc.cwnd
    acks = s.hround(0.055)                            # 55 ms is no rise: slow start again
    assert s.cc.cwnd == before + acks * MSS


def test_a_dip_later_in_the_round_css_began_in_does_not_resume_slow_start():
    # The baseline is this round's minimum over its first N_RTT_SAMPLE samples: in slow start
    # the RTT rises and falls within a round with the bursts the ACK clock sends, and a sample
    # of the same round below the baseline is no news about the queue. Only a round that began
    # in CSS ("CSS rounds") can show the rise was spurious.
    s = Sender(Reno(MSS, hystart=True))
    s.hround(0.050)
    s.hround(0.050)
    s.hround([0.060] * 8 + [0.051] + [0.060])       # CSS after 8 samples; then a dip to 51 ms
    assert s.cc.hystart.css and s.cc.hystart.css_baseline == 0.060
    s.hround(0.055)                                   # the next round, in CSS: below 60 ms
    assert not s.cc.hystart.css


def test_five_css_rounds_end_slow_start_without_loss():
    cc = Reno(MSS, hystart=True)
    s = Sender(cc)
    s.hround(0.050)
    s.hround(0.050)
    s.hround(0.060)
    assert cc.hystart.css
    for _ in range(4):                                # CSS rounds 2..5
        s.hround(0.060)
        assert cc.ssthresh == INFINITE_SSTHRESH and cc.hystart.css
    s.ack(0.060)                                      # the ACK that would begin the 6th
    assert cc.hystart is None
    assert cc.ssthresh == cc.cwnd and not cc.in_slow_start
    before = cc.cwnd
    for _ in range(before // MSS):                    # one window of ACKs in congestion avoidance
        s.ack(0.060)
    assert cc.cwnd == before + MSS


def test_loss_ends_hystart_and_later_slow_start_is_standard():
    cc = Cubic(MSS, hystart=True)
    s = Sender(cc)
    s.hround(0.050)
    cc.on_congestion_event(s.now, cc.cwnd)
    assert cc.hystart is None
    cc.on_rto(s.now, cc.cwnd)
    assert cc.cwnd == MSS and cc.in_slow_start
    for _ in range(3):
        before = cc.cwnd
        for _ in range(before // MSS):
            s.ack(0.080 + 0.010 * before / MSS)       # RTT rising fast: no CSS any more
        assert cc.cwnd == min(2 * before, cc.ssthresh)


def test_off_means_standard_slow_start():
    s = Sender(Reno(MSS))
    assert s.cc.hystart is None
    for rtt in (0.050, 0.050, 0.200, 0.400):
        before = s.cc.cwnd
        for _ in range(before // MSS):
            s.ack(rtt)
        assert s.cc.cwnd == 2 * before


@pytest.mark.parametrize("cc", ["cubic", "newreno"])
def test_connection_leaves_slow_start_before_the_queue_overflows(cc):
    """10 Mbit/s, 40 ms RTT, a deep drop-tail queue (16 BDPs, "bufferbloat"): standard slow
    start doubles into the queue until it overflows; HyStart++ sees the round's minimum RTT
    grow, slows to a quarter and ends slow start with ssthresh = cwnd, before any loss."""
    def first_losses(hystart):
        log = []
        rtt, link = 0.040, 10e6
        bdp = link * rtt / 8
        cfg = TcpConfig(cc=cc, hystart=hystart, rcv_buf=int(32 * bdp), snd_buf=int(32 * bdp),
                        min_rto=0.2, nagle=False)
        c = bulk_flow(cfg, rtt=rtt, bandwidth=link, queue_limit=int(16 * bdp / 1500), duration=3.0,
                      log=log.append)
        losses = [r for r in log if isinstance(r, (RecoveryEntered, RtoBackoff))]
        return losses, c.cc

    losses, cc_on = first_losses(True)
    assert losses == []
    assert cc_on.hystart is None and cc_on.ssthresh < INFINITE_SSTHRESH
    losses_off, _ = first_losses(False)
    assert losses_off                                 # the same path without it: a loss
