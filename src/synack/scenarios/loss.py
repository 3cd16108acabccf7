"""Loss and congestion: the retransmission timer, fast retransmit, slow start."""

from __future__ import annotations

from synack.scenarios.lab import check, gaps, has_data, pattern
from synack.scenarios.registry import Scenario, scenario
from synack.tcp import events as ev
from synack.tcp.config import TcpConfig
from synack.wire.seq import seq_sub
from synack.wire.tcp import Sack

SCENARIOS: list[Scenario] = []
MSS = 1448


@scenario(SCENARIOS, "rto-backoff", group="loss", title="Retransmission timeout with backoff", teaching="""
    A request is lost, and so are its next three copies: a tail loss probe 240 ms later
    (RFC 8985) and two retransmissions on timeout. Each time the retransmission timer expires,
    the timeout doubles, 1 s, 2 s, 4 s (exponential backoff, RFC 6298 §5.5), so a sender facing
    a dead path backs off instead of flooding it.""", plots=("time-sequence", "rtt"))
def rto_backoff(new_lab) -> None:
    lab = new_lab()
    srv = lab.listen(80)
    c = lab.connect(80)
    lab.run_until(lambda: c.established, limit=5)
    lab.faults("client").drop_if(has_data, count=4)
    request = b"GET /slow HTTP/1.0\r\n\r\n"
    c.send(request)
    lab.run_until(lambda: srv.first is not None and bytes(srv.first.received) == request, limit=30)
    lab.run_for(0.5)
    sent = lab.sent(c, data=True)
    check(len(sent) == 5 and all(r.retransmit for r in sent[1:]), f"one send and four retransmissions, got {len(sent)}")
    g = gaps(r.t for r in sent)
    probes = lab.of(ev.LossProbe, c)
    check(len(probes) == 1 and abs(probes[0].t - sent[1].t) < 1e-9 and g[0] < 0.5,
          f"the first copy was a tail loss probe, {g[0]:.3f} s after the original")
    check(all(abs(a - b) < 1e-6 for a, b in zip(g[1:], (1.0, 2.0, 4.0))), f"then timeouts of 1, 2, 4 s, got {g[1:]}")
    backoff = lab.of(ev.RtoBackoff, c)
    check([r.backoffs for r in backoff] == [1, 2, 3], f"RtoBackoff records {[r.backoffs for r in backoff]}")
    check(lab.of(ev.RttSample, c)[-1].rto <= 1.0 + 1e-9, "the next RTT sample brought the RTO back down")
    lab.notes.append("retransmitted after " + ", ".join(f"{x:g}" for x in g) + " s")


@scenario(SCENARIOS, "fast-retransmit", group="loss", title="Fast retransmit", teaching="""
    One segment out of ten is lost. The segments after it draw ACKs that repeat the same
    acknowledgment number and list what did arrive in SACK blocks; once three segments beyond
    the hole are reported (DupThresh, RFC 6675), the sender resends the missing one at once
    instead of waiting a second for its timer, and halves its congestion window.""",
          plots=("time-sequence", "cwnd"), full=True)
def fast_retransmit(new_lab) -> None:
    lab = new_lab(client_config=TcpConfig(rack=False, cc="reno"))
    srv = lab.listen(80)
    c = lab.connect(80)
    lab.run_until(lambda: c.established, limit=5)
    lab.faults("client").drop_nth(3, match=has_data)
    data = pattern(10 * MSS)
    c.send(data)
    lab.run_until(lambda: srv.first is not None and bytes(srv.first.received) == data, limit=10)
    lab.run_for(0.1)
    rexmit = lab.sent(c, retransmit=True)
    check(len(rexmit) == 1, f"exactly one retransmission, got {len(rexmit)}")
    first = lab.sent(c, data=True)[0]
    original = next(r for r in lab.sent(c, data=True) if r.seg.seq == rexmit[0].seg.seq)
    check(seq_sub(original.seg.seq, first.seg.seq) == 2 * MSS, "the third data segment was the one resent")
    dup = [r for r in lab.arrived(c, flags="A") if r.seg.ack == original.seg.seq and r.t <= rexmit[0].t
           and any(isinstance(o, Sack) for o in r.seg.options)]
    check(len(dup) == 3, f"three ACKs reported the hole (SACK) before the retransmission, got {len(dup)}")
    check(abs(rexmit[0].t - dup[2].t) < 1e-9, "the retransmission left on the third of them")
    check(rexmit[0].t - original.t < 0.2, f"well before any RTO ({rexmit[0].t - original.t:.3f} s)")
    check(not [r for r in lab.of(ev.TimerFired, c) if r.timer == "rto"], "the RTO never fired")
    rec = lab.of(ev.RecoveryEntered, c)
    check(len(rec) == 1 and rec[0].trigger == "dupacks", f"fast recovery entered on dupacks: {rec}")
    check(rec[0].ssthresh == max(rec[0].flight // 2, 2 * MSS), "ssthresh = FlightSize / 2 (RFC 5681 eq. 4)")
    lab.notes.append(f"resent {rexmit[0].t - original.t:.3f} s after the original")


@scenario(SCENARIOS, "slow-start", group="loss", title="Slow start into congestion avoidance", teaching="""
    A 1 MB upload over a 4 Mbit/s, 40 ms path with a 10-packet queue, Reno congestion control and
    the classic slow start of RFC 5681 (HyStart++ off). From ten segments the congestion window
    doubles every round trip until the queue overflows; the loss halves it and sets ssthresh, and
    from there it grows by one segment per round trip (congestion avoidance), the sawtooth of
    RFC 5681.""", plots=("cwnd", "time-sequence"))
def slow_start(new_lab) -> None:
    lab = new_lab(delay=0.020, bandwidth=4e6, queue_limit=10,
                  client_config=TcpConfig(cc="reno", hystart=False))
    srv = lab.listen(80)
    c = lab.connect(80)
    lab.run_until(lambda: c.established, limit=5)
    data = pattern(1_000_000)
    c.send(data)
    lab.run_until(lambda: srv.first is not None and len(srv.first.received) == len(data), limit=30)
    check(bytes(srv.first.received) == data, "every byte arrived, in order")
    cw = lab.of(ev.CwndChanged, c)
    first_loss = next((k for k, r in enumerate(cw) if r.ssthresh < 1 << 40), None)
    check(first_loss is not None, "a loss ended slow start (ssthresh was set)")
    peak = max(r.cwnd for r in cw[:first_loss])
    check(peak >= 4 * 10 * MSS, f"slow start grew cwnd from 10 segments to {peak // MSS} segments")
    after = cw[first_loss:]
    ssthresh = after[0].ssthresh
    check(ssthresh <= peak // 2 + MSS, f"the loss set ssthresh to about half ({ssthresh} of peak {peak})")
    ca = [r for r in after if r.reason == "ack" and r.cwnd >= r.ssthresh]
    steps = [b.cwnd - a.cwnd for a, b in zip(ca, ca[1:]) if b.ssthresh == a.ssthresh]
    check(ca and max(steps, default=0) <= MSS, f"in congestion avoidance cwnd grows by at most one MSS a step: {max(steps, default=0)}")
    check(max(r.cwnd for r in after) > ssthresh + 3 * MSS, "and it does grow: the sawtooth climbs again")
    lab.notes.append(f"peak {peak // MSS} segments, ssthresh {ssthresh // MSS} segments")
