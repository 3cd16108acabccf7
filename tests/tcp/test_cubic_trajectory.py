"""CUBIC through a whole connection (RFC 9438 = draft-ietf-tcpm-rfc8312bis): one bulk flow on
the simulator through a 5 Mbit/s bottleneck, 400 ms RTT, a drop-tail queue of one BDP, SACK
and RACK-TLP on (the defaults). From the event log alone: each fast recovery sets ssthresh to
β_cubic * min(FlightSize, cwnd) (§4.6) and leaves with cwnd = ssthresh; fast convergence lowers W_max to
W * (1 + β) / 2 (§4.7); and between two losses cwnd follows W_cubic(t) = C (t - K)^3 + W_max
(§4.2, C = 0.4) through its concave and convex regions, within 2 %."""

import bisect

from synack.tcp.config import TcpConfig
from synack.tcp.events import CwndChanged, RecoveryEntered, RecoveryExited, RtoBackoff
from synack.testing.bulk import bulk_flow

MSS = 1448
LINK, RTT = 5e6, 0.4


def run(duration: float) -> list:
    log: list = []
    bdp = LINK * RTT / 8
    cfg = TcpConfig(rcv_buf=int(4 * bdp), snd_buf=int(4 * bdp), min_rto=0.2, nagle=False)
    bulk_flow(cfg, rtt=RTT, bandwidth=LINK, queue_limit=int(bdp / 1500), duration=duration, log=log.append)
    return log


def test_cubic_cwnd_trajectory_through_the_connection():
    log = run(24.5)
    assert not [r for r in log if isinstance(r, RtoBackoff)]          # SACK + PRR: no timeouts
    entered = [r for r in log if isinstance(r, RecoveryEntered)]
    exited = [r for r in log if isinstance(r, RecoveryExited)]
    assert len(entered) >= 4 and len(exited) >= 3
    for e, x in zip(entered, exited):
        assert e.kind == "sack" and e.trigger == "rack"
        before = [r.cwnd for r in log[:log.index(e)] if isinstance(r, CwndChanged)][-1]
        assert abs(e.ssthresh - 0.7 * min(e.flight, before)) <= 1         # §4.6, Figure 5
        assert x.cwnd == e.ssthresh                                       # RFC 6675 §5 (A)
    # the longest congestion avoidance epoch after the first (which follows slow start): from a
    # recovery's end to the next loss; it runs through the plateau into convex growth
    ep = max(range(1, min(len(exited), len(entered) - 1)), key=lambda j: entered[j + 1].t - exited[j].t)
    start, end = exited[ep].t, entered[ep + 1].t
    pts = [(r.t, r.cwnd / MSS) for r in log if isinstance(r, CwndChanged) and r.reason == "ack"
           and start < r.t < end]
    t_e, cwnd0 = pts[0][0], exited[ep].cwnd / MSS
    # W_max: where growth is slowest (the plateau between the concave and convex regions)
    ts = [t for t, _ in pts]
    slopes = []
    for i, (t, w) in enumerate(pts):
        j = bisect.bisect_left(ts, t + RTT)
        if j < len(pts):
            slopes.append((pts[j][1] - w, t, w))
    _, t_plateau, w_max = min(slopes)
    k = ((w_max - cwnd0) / 0.4) ** (1 / 3)                                # §4.2 Figure 2
    assert abs((t_plateau - t_e) - k) < 2 * RTT
    # fast convergence (§4.7): W_max = W * (1 + β) / 2, W the window at the loss
    w_at_loss = [r.cwnd for r in log[:log.index(entered[ep])] if isinstance(r, CwndChanged)][-1] / MSS
    assert abs(w_max - w_at_loss * 0.85) / w_max < 0.03
    worst = max(abs(w - (0.4 * (t - t_e - k) ** 3 + w_max)) / w for t, w in pts if t - t_e > RTT)
    assert worst < 0.02
    assert pts[-1][1] > w_max * 1.05                                      # well into convex growth
