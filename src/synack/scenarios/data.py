"""Moving data: delayed and piggybacked ACKs, reordering, duplicates, flow control."""

from __future__ import annotations

from synack.scenarios.lab import Scripted, check, has_data, pattern
from synack.scenarios.registry import Scenario, scenario
from synack.tcp import events as ev
from synack.tcp.config import TcpConfig
from synack.tcp.states import State
from synack.wire.seq import seq_sub
from synack.wire.tcp import Flags, Sack

SCENARIOS: list[Scenario] = []
MSS = 1448                  # payload per full segment: MSS 1460 less the timestamp option


def _pure_acks(records):
    return [r for r in records if not r.seg.payload and not r.seg.flags & (Flags.SYN | Flags.FIN | Flags.RST)]


@scenario(SCENARIOS, "delayed-ack", group="data", title="Delayed ACK and piggybacked ACKs", teaching="""
    A receiver need not acknowledge at once: it waits up to 40 ms in case it has data to send
    anyway, and then the ACK rides on the data for free (piggybacked). Here a fast answer carries
    the ACK of its request, a slow one (150 ms) is preceded by a pure ACK when the 40 ms run out,
    and the client's delayed ACK is saved once by its next request.""")
def delayed_ack(new_lab) -> None:
    lab = new_lab()
    think = {1: 0.010, 2: 0.150, 3: 0.010}          # the server's time to answer request k
    st = {"answered": 0, "scheduled": 0, "asked3": False}

    def answer(s, k):
        s.read()
        s.send(f"reply {k}: ".encode() + b"x" * 100)
        st["answered"] = k

    def on_accept(s):
        def hook():
            k = st["scheduled"] + 1
            if s.conn.readable and k in think and st["answered"] == st["scheduled"]:
                st["scheduled"] = k
                lab.at(lab.now + think[k], answer, s, k)
        lab.hooks.append(hook)
    srv = lab.listen(80, on_accept=on_accept, auto_read=False)
    c = lab.connect(80)

    def client_hook():
        if c.received.count(b"reply") == 2 and not st["asked3"]:
            st["asked3"] = True
            lab.at(lab.now + 0.005, c.send, b"GET /3\n")
    lab.hooks.append(client_hook)
    lab.run_until(lambda: c.established, limit=5)
    lab.at(lab.now + 0.05, c.send, b"GET /1\n")
    lab.at(lab.now + 0.30, c.send, b"GET /2\n")
    lab.run_until(lambda: c.received.count(b"reply") == 3, limit=5)
    lab.run_for(0.2)
    s = srv.first
    reqs = lab.arrived(s, data=True)
    replies = lab.sent(s, data=True)
    c_in = lab.arrived(c, data=True)
    check(len(reqs) == 3 and len(replies) == 3, f"3 requests and 3 replies, got {len(reqs)} and {len(replies)}")
    # 1: answered within 10 ms, so the reply carries the ACK and no pure ACK went before it
    early = [r for r in _pure_acks(lab.sent(s)) if reqs[0].t <= r.t < replies[0].t]
    check(not early and replies[0].seg.ack == (reqs[0].seg.seq + len(reqs[0].seg.payload)) % 2**32,
          "reply 1 carries the ACK of request 1 (piggybacked), no pure ACK before it")
    # the client has nothing to say after reply 1: its ACK waits the full 40 ms
    c_acks = [r for r in _pure_acks(lab.sent(c)) if r.t > c_in[0].t]
    check(c_acks and abs(c_acks[0].t - c_in[0].t - 0.040) < 1e-6,
          f"the client's delayed ACK left 40 ms after reply 1 ({c_acks[0].t - c_in[0].t if c_acks else None})")
    # 2: the server thinks 150 ms: a pure ACK after 40 ms, then the reply
    mid = [r for r in _pure_acks(lab.sent(s)) if reqs[1].t <= r.t < replies[1].t]
    check(len(mid) == 1 and abs(mid[0].t - reqs[1].t - 0.040) < 1e-6,
          f"one delayed ACK 40 ms after request 2, got {[round(r.t - reqs[1].t, 4) for r in mid]}")
    # 3: the client asks again 5 ms after reply 2: that request carries the ACK
    req3 = lab.sent(c, data=True)[2]
    between = [r for r in _pure_acks(lab.sent(c)) if c_in[1].t <= r.t < req3.t]
    check(not between and req3.seg.ack == (c_in[1].seg.seq + len(c_in[1].seg.payload)) % 2**32,
          "request 3 carries the ACK of reply 2 (piggybacked)")
    lab.notes.append(f"{len(_pure_acks(lab.sent(s)))} pure ACKs from the server, "
                     f"{len(_pure_acks(lab.sent(c)))} from the client")


@scenario(SCENARIOS, "out-of-order", group="data", title="Out-of-order arrival and reassembly", teaching="""
    The network holds the second of six data segments back for 3 ms, so the third and fourth
    overtake it. The receiver keeps them and answers at once with ACKs that stay at the gap, their
    SACK blocks saying what it holds beyond it; when the missing segment arrives one cumulative
    ACK covers it and the two that overtook it, and the application reads the bytes in order.""", plots=("time-sequence",))
def out_of_order(new_lab) -> None:
    lab = new_lab(wrap={"server": lambda link: Scripted(link, match=has_data, n=2, hold=0.003, direction="rx")})
    srv = lab.listen(80)
    c = lab.connect(80)
    data = pattern(6 * MSS)
    lab.run_until(lambda: c.established, limit=5)
    c.send(data)
    lab.run_until(lambda: srv.first is not None and bytes(srv.first.received) == data, limit=5)
    lab.run_for(0.1)
    s = srv.first
    ins = lab.arrived(s, data=True)
    order = [seq_sub(r.seg.seq, ins[0].seg.seq) // MSS for r in ins]
    check(order[:4] == [0, 2, 3, 1], f"segments arrived in the order {order}")
    acks = [r for r in lab.sent(s, flags="A") if r.t >= ins[0].t]
    sacked = [r for r in acks if any(isinstance(o, Sack) for o in r.seg.options)]
    check(len(sacked) >= 2 and len({r.seg.ack for r in sacked}) == 1,
          f"duplicate ACKs with SACK blocks for the segments beyond the hole ({len(sacked)})")
    fill = next(r for r in ins if r is ins[order.index(1)])
    jump = [r for r in acks if r.t >= fill.t][0]
    check(seq_sub(jump.seg.ack, ins[0].seg.seq) == 4 * MSS and abs(jump.t - fill.t) < 1e-9,
          "the segment filling the hole is ACKed at once, the ACK covering all four")
    check(not lab.sent(c, retransmit=True), "nothing was retransmitted: two duplicate ACKs are below DupThresh")
    lab.notes.append(f"arrival order {order}")


@scenario(SCENARIOS, "duplicate-segment", group="data", title="Duplicate segments discarded", teaching="""
    The network delivers one data segment twice. The copy lies entirely below RCV.NXT, so the
    receiver discards it, answers with an immediate ACK carrying a D-SACK block that reports the
    duplicate to the sender (RFC 2883), and the application sees every byte once.""")
def duplicate_segment(new_lab) -> None:
    lab = new_lab(wrap={"client": lambda link: Scripted(link, match=has_data, n=2, hold=0.004, copies=2)})
    srv = lab.listen(80)
    c = lab.connect(80)
    data = pattern(3 * MSS)
    lab.run_until(lambda: c.established, limit=5)
    c.send(data)
    lab.run_until(lambda: srv.first is not None and bytes(srv.first.received) == data, limit=5)
    lab.run_for(0.1)
    s = srv.first
    check(bytes(s.received) == data, "every byte delivered once, in order")
    ins = lab.arrived(s, data=True)
    check(len(ins) == 4, f"four data segments arrived for three sent, got {len(ins)}")
    drops = lab.of(ev.Dropped, s)
    check(len(drops) == 1 and drops[0].seg == ins[-1].seg, f"the late copy was discarded: {[d.reason for d in drops]}")
    dup_ack = [r for r in lab.sent(s, flags="A") if r.t >= drops[0].t][0]
    blocks = [o for o in dup_ack.seg.options if isinstance(o, Sack)]
    check(blocks and blocks[0].blocks[0][0] == ins[-1].seg.seq and abs(dup_ack.t - drops[0].t) < 1e-9,
          "an immediate ACK reports the duplicate in a D-SACK block")
    lab.notes.append(f"dropped: {drops[0].reason}")


@scenario(SCENARIOS, "zero-window", group="data", title="Zero window and persist probes", teaching="""
    The server's application stops reading, so its 8 kB receive buffer fills, the window it
    advertises shrinks to zero and the sender stops. The sender's persist timer then probes the
    window with one byte, 1 s and then 2 s later (RFC 9293 §3.8.6.1), until the application
    reads again at 8 s and a window update restarts the transfer.""", plots=("time-sequence",), full=True)
def zero_window(new_lab) -> None:
    lab = new_lab(server_config=TcpConfig(rcv_buf=8192))
    srv = lab.listen(80, auto_read=False)
    c = lab.connect(80)
    data = pattern(24_000)
    lab.run_until(lambda: c.established, limit=5)
    c.send(data)
    reading_at = 8.0

    def start_reading():
        srv.first.auto_read = True
        srv.first.read()
    lab.at(reading_at, start_reading)
    lab.run_until(lambda: srv.first is not None and bytes(srv.first.received) == data, limit=20)
    lab.run_for(0.2)
    s = srv.first
    zero = [r for r in lab.sent(s, flags="A") if r.seg.window == 0]
    check(zero, "the server advertised a zero window")
    fired = [r.t for r in lab.of(ev.TimerFired, c) if r.timer == "persist"]
    check(len(fired) >= 2, f"the persist timer fired {len(fired)} times before the reader woke")
    probes = [r for r in lab.sent(c, data=True) if len(r.seg.payload) == 1]
    check(len(probes) >= 2, f"one-byte window probes were sent ({len(probes)})")
    intervals = [b - a for a, b in zip(fired, fired[1:])]
    check(all(b > a for a, b in zip(intervals, intervals[1:])), f"probe intervals grow: {intervals}")
    check(all(r.t < reading_at for r in probes), "the probes stopped once the window opened")
    check(c.state is State.ESTABLISHED and bytes(s.received) == data, "the transfer completed")
    lab.notes.append("window probes at " + ", ".join(f"{r.t:.3f}" for r in probes) + " s")
