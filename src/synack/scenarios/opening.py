"""Opening a connection: the three-way handshake, its losses, simultaneous open, refusal."""

from __future__ import annotations

from synack.scenarios.lab import CLIENT, SERVER, check, flags_are, gaps
from synack.scenarios.registry import Scenario, scenario
from synack.tcp import events as ev
from synack.tcp.states import State
from synack.wire.tcp import Mss, SackPermitted, Timestamps, WindowScale

SCENARIOS: list[Scenario] = []


@scenario(SCENARIOS, "three-way-handshake", group="opening", title="Three-way handshake", teaching="""
    SYN, SYN-ACK, ACK: each side picks an initial sequence number and acknowledges the other's,
    and the SYNs carry the options both ends agree on (MSS, window scaling, SACK, timestamps).
    The client is ESTABLISHED one round trip after its SYN, the server half a round trip later.""")
def three_way_handshake(new_lab) -> None:
    lab = new_lab()
    srv = lab.listen(80)
    c = lab.connect(80)
    lab.run_until(lambda: c.established and srv.first is not None and srv.first.established, limit=5)
    s = srv.first
    check(lab.states(c) == ["CLOSED", "SYN-SENT", "ESTABLISHED"], f"client went {lab.states(c)}")
    check(lab.states(s) == ["CLOSED", "LISTEN", "SYN-RECEIVED", "ESTABLISHED"], f"server went {lab.states(s)}")
    syn, = lab.sent(c, flags="S")
    synack, = lab.sent(s, flags="SA")
    ack, = lab.sent(c, flags="A")
    check(synack.seg.ack == (syn.seg.seq + 1) % 2**32, "the SYN-ACK acknowledges ISN+1 of the client")
    check(ack.seg.ack == (synack.seg.seq + 1) % 2**32, "the ACK acknowledges ISN+1 of the server")
    for seg in (syn.seg, synack.seg):
        kinds = {type(o) for o in seg.options}
        check({Mss, SackPermitted, Timestamps, WindowScale} <= kinds, f"SYN options {seg.options}")
    rtt = lab.state_at(c, State.ESTABLISHED) - syn.t
    check(abs(rtt - 0.020) < 0.002, f"client established one RTT (20 ms) after its SYN, took {rtt:.4f} s")
    lab.notes.append(f"established after {rtt * 1000:.1f} ms")


@scenario(SCENARIOS, "lost-syn", group="opening", title="Lost SYN and its retransmission", teaching="""
    The network loses the client's first SYN. Nothing comes back, so when the initial RTO of one
    second runs out (RFC 6298 §2.1) the client sends the same SYN again, same ISN, and the
    handshake completes one round trip later.""")
def lost_syn(new_lab) -> None:
    lab = new_lab()
    lab.faults("client").drop_nth(1, match=flags_are("S"))
    srv = lab.listen(80)
    c = lab.connect(80)
    lab.run_until(lambda: c.established and srv.first is not None and srv.first.established, limit=10)
    syns = lab.sent(c, flags="S")
    check(len(syns) == 2, f"two SYNs sent, got {len(syns)}")
    check(syns[1].retransmit and syns[0].seg.seq == syns[1].seg.seq, "the second SYN is a retransmission, same ISN")
    check(abs(gaps(r.t for r in syns)[0] - 1.0) < 1e-6, f"retransmitted after 1 s, gaps {gaps(r.t for r in syns)}")
    check(len(lab.arrived(srv.first, flags="S")) == 1, "the server saw only the second SYN")
    took = lab.state_at(c, State.ESTABLISHED) - syns[0].t
    check(abs(took - 1.020) < 0.002, f"established 1 s + one RTT after the first SYN, took {took:.4f} s")
    lab.notes.append(f"SYN retransmitted after {gaps(r.t for r in syns)[0]:.3f} s")


@scenario(SCENARIOS, "lost-syn-ack", group="opening", title="Lost SYN-ACK", teaching="""
    The server's SYN-ACK is lost, so both ends wait: the client for an answer to its SYN, the
    server for the ACK of its SYN-ACK. After 1 s both retransmit; the server's second SYN-ACK
    completes the handshake, and the client's second SYN, which that SYN-ACK answers already,
    is discarded.""")
def lost_syn_ack(new_lab) -> None:
    lab = new_lab()
    lab.faults("server").drop_nth(1, match=flags_are("SA"))
    srv = lab.listen(80)
    c = lab.connect(80)
    lab.run_until(lambda: c.established and srv.first is not None and srv.first.established, limit=10)
    lab.run_for(1.0)
    s = srv.first
    synacks = lab.sent(s, flags="SA")
    check(len(synacks) >= 2 and synacks[1].retransmit, f"the SYN-ACK was retransmitted ({len(synacks)} sent)")
    check(abs(synacks[1].t - synacks[0].t - 1.0) < 0.05, f"after about 1 s: gaps {gaps(r.t for r in synacks)}")
    check(len(set(r.seg.seq for r in synacks)) == 1, "every SYN-ACK carries the same ISN")
    syns = lab.sent(c, flags="S")
    check(len(syns) == 2 and syns[1].retransmit, f"the client retransmitted its SYN too ({len(syns)} sent)")
    check(s.state is State.ESTABLISHED and c.state is State.ESTABLISHED, "both ends established")
    drops = [r for r in lab.of(ev.Dropped, s) if r.seg.flags == syns[1].seg.flags]
    check(len(drops) == 1, f"the server discarded the duplicate SYN: {[r.reason for r in lab.of(ev.Dropped, s)]}")
    lab.notes.append(f"{len(synacks)} SYN-ACKs, {len(syns)} SYNs")


@scenario(SCENARIOS, "simultaneous-open", group="opening", title="Simultaneous open", teaching="""
    Two hosts connect to each other's fixed port at the same moment, and neither listens. Each
    SYN crosses the other on the wire; each end, in SYN-SENT, gets a SYN instead of a SYN-ACK and
    moves to SYN-RECEIVED, answers SYN-ACK, and is ESTABLISHED when the other's SYN-ACK arrives:
    one connection, four segments, no client and no server (RFC 9293 §3.5, Figure 8).""")
def simultaneous_open(new_lab) -> None:
    lab = new_lab()
    a = lab.connect(6000, local=(CLIENT, 5000), to=SERVER)
    b = lab.connect(5000, stack=lab.server, local=(SERVER, 6000), to=CLIENT)
    lab.run_until(lambda: a.established and b.established, limit=5)
    for s in (a, b):
        check(lab.states(s) == ["CLOSED", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED"],
              f"{s.name} went {' → '.join(lab.states(s))}")
        check(len(lab.sent(s, flags="S")) == 1 and len(lab.sent(s, flags="SA")) == 1,
              f"{s.name} sent one SYN and one SYN-ACK")
    lab.run_for(0.05)                   # a pause, so the data exchange is drawn apart from the handshake
    a.send(b"hello from A")
    b.send(b"hello from B")
    lab.run_until(lambda: a.received == b"hello from B" and b.received == b"hello from A", limit=5)


@scenario(SCENARIOS, "connection-refused", group="opening", title="Connection refused (RST)", teaching="""
    Nothing listens on port 81. The server host answers the SYN with a RST whose ACK field
    acknowledges the SYN (RFC 9293 §3.10.7.1), and the client's connect fails at once with
    "connection refused": no retransmission, no timeout.""")
def connection_refused(new_lab) -> None:
    lab = new_lab()
    lab.listen(80)
    c = lab.connect(81)
    lab.run_until(lambda: c.state is State.CLOSED, limit=5)
    resets = lab.events_of(c, ev.Reset)
    check(len(resets) == 1 and resets[0].refused, f"the client saw a refusal, got {resets}")
    syn, = lab.sent(c, flags="S")
    rst, = lab.arrived(c, flags="RA")
    check(rst.seg.ack == (syn.seg.seq + 1) % 2**32 and rst.seg.seq == 0, "the RST acknowledges the SYN, seq 0")
    check(lab.states(c) == ["CLOSED", "SYN-SENT", "CLOSED"], f"client went {lab.states(c)}")
    check(lab.server.stats["rst_out"] == 1, "the server host sent one RST")
    lab.notes.append(f"refused after {rst.t - syn.t:.3f} s")
