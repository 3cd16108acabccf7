"""Closing a connection: FIN in each direction, half-close, simultaneous close, TIME-WAIT, RST."""

from __future__ import annotations

from synack.scenarios.lab import check, flags_are, pattern
from synack.scenarios.registry import Scenario, scenario
from synack.tcp import events as ev
from synack.tcp.errors import ConnectionReset
from synack.tcp.states import State

SCENARIOS: list[Scenario] = []
REQUEST = b"GET / HTTP/1.0\r\n\r\n"
MSL2 = 60.0                    # 2*MSL with the default MSL of 30 s (TcpConfig.msl)


def _request_reply(lab, reply: bytes, *, server_closes_after: float | None = None):
    """A client asks, the server answers ``reply``; with ``server_closes_after``, the server
    closes that long after it has seen the client's FIN (end of stream)."""
    def on_accept(s):
        def hook():
            if s.received == REQUEST and not s.sent:
                s.send(reply)
            if server_closes_after is not None and s.eof and s.state is State.CLOSE_WAIT \
                    and not getattr(s, "_closing", False):
                s._closing = True
                lab.at(lab.now + server_closes_after, s.close)
        lab.hooks.append(hook)
    srv = lab.listen(80, on_accept=on_accept)
    c = lab.connect(80)
    c.send(REQUEST)
    return srv, c


@scenario(SCENARIOS, "four-way-close", group="closing", title="Four-way close", teaching="""
    Each direction is closed by its own FIN and its own ACK. The client, done first, goes
    FIN-WAIT-1 and FIN-WAIT-2; the server, told by end of stream, closes 200 ms later from
    CLOSE-WAIT through LAST-ACK; the client waits in TIME-WAIT for 2 MSL (60 s) before the
    connection is gone.""")
def four_way_close(new_lab) -> None:
    lab = new_lab()
    srv, c = _request_reply(lab, b"HTTP/1.0 200 OK\r\n\r\nhello\n", server_closes_after=0.2)
    lab.run_until(lambda: c.received.endswith(b"hello\n"), limit=5)
    c.close()
    lab.run_until(lambda: c.state is State.CLOSED, limit=MSL2 + 5)
    s = srv.first
    check(lab.states(c)[-5:] == ["ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSED"],
          f"client went {' → '.join(lab.states(c))}")
    check(lab.states(s)[-4:] == ["ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"],
          f"server went {' → '.join(lab.states(s))}")
    fins = lab.sent(c, flags="FA") + lab.sent(s, flags="FA")
    check(len(fins) == 2, f"one FIN each way, got {len(fins)}")
    tw = lab.state_at(c, State.CLOSED) - lab.state_at(c, State.TIME_WAIT)
    check(abs(tw - MSL2) < 1e-6, f"TIME-WAIT lasted 2 MSL = 60 s, lasted {tw:.3f} s")
    lab.notes.append(f"TIME-WAIT {tw:.0f} s")


@scenario(SCENARIOS, "close-while-sending", group="closing", title="Close with data still flowing", teaching="""
    The client has said all it will say and closes its side after the request; the server, in
    CLOSE-WAIT, keeps streaming its 30 kB answer for another half second, and the client, in
    FIN-WAIT-2, keeps receiving and acknowledging it. A FIN closes one direction only.""",
          plots=("time-sequence",))
def close_while_sending(new_lab) -> None:
    lab = new_lab()
    chunks = [pattern(10_000)] * 3

    def on_accept(s):
        def hook():
            if s.received == REQUEST and not s.sent and not getattr(s, "_started", False):
                s._started = True
                for k, chunk in enumerate(chunks):
                    lab.at(lab.now + 0.05 + 0.25 * k, s.send, chunk)
                lab.at(lab.now + 0.05 + 0.25 * len(chunks), s.close)
        lab.hooks.append(hook)
    srv = lab.listen(80, on_accept=on_accept)
    c = lab.connect(80)
    c.send(REQUEST)
    lab.run_until(lambda: srv.first is not None and srv.first.received == REQUEST, limit=5)
    c.shutdown()                     # done talking, still listening
    lab.run_until(lambda: c.eof and c.state is State.TIME_WAIT and srv.first.state is State.CLOSED, limit=10)
    s = srv.first
    check(bytes(c.received) == b"".join(chunks), f"the client got all {sum(map(len, chunks))} bytes")
    cw = lab.state_at(s, State.CLOSE_WAIT)
    after = [r for r in lab.sent(s, data=True) if r.t > cw]
    check(sum(len(r.seg.payload) for r in after) >= 20_000,
          f"the server sent most of its data from CLOSE-WAIT ({sum(len(r.seg.payload) for r in after)} bytes)")
    fw2 = lab.state_at(c, State.FIN_WAIT_2)
    acks = [r for r in lab.sent(c, flags="A") if r.t > fw2 and r.seg.ack != lab.sent(c, flags="A")[0].seg.ack]
    check(acks, "the client acknowledged data while in FIN-WAIT-2")
    lab.notes.append(f"{len(after)} data segments after the client's FIN")


@scenario(SCENARIOS, "simultaneous-close", group="closing", title="Simultaneous close (CLOSING)", teaching="""
    Both applications close at the same instant, so the two FINs cross on the wire. Each end, in
    FIN-WAIT-1, receives a FIN that does not acknowledge its own and moves to CLOSING; the ACKs
    that follow take both to TIME-WAIT (RFC 9293 §3.6, Figure 13).""")
def simultaneous_close(new_lab) -> None:
    lab = new_lab()
    srv = lab.listen(80)
    c = lab.connect(80)
    lab.run_until(lambda: c.established and srv.first is not None and srv.first.established, limit=5)
    s = srv.first
    t = lab.now + 0.1
    lab.at(t, c.close)
    lab.at(t, s.close)
    lab.run_until(lambda: c.state is State.TIME_WAIT and s.state is State.TIME_WAIT, limit=5)
    for x in (c, s):
        check(lab.states(x)[-4:] == ["ESTABLISHED", "FIN-WAIT-1", "CLOSING", "TIME-WAIT"],
              f"{x.name} went {' → '.join(lab.states(x))}")
    fc, = lab.sent(c, flags="FA")
    fs, = lab.sent(s, flags="FA")
    check(abs(fc.t - fs.t) < 1e-9, "the FINs left at the same instant")
    check(fc.seg.ack == fs.seg.seq and fs.seg.ack == fc.seg.seq, "they crossed: neither FIN acknowledges the other")


@scenario(SCENARIOS, "half-close", group="closing", title="Half-close", teaching="""
    The client sends lines to sort and shuts down its sending side: the FIN is how the server
    learns the input is complete (receive returns end of stream), so only then can it answer.
    The server sends the sorted lines back over the direction still open, then closes.""")
def half_close(new_lab) -> None:
    lab = new_lab()
    lines = [f"line {(k * 37) % 101:03d}\n".encode() for k in range(400)]
    out = b"".join(sorted(lines))
    seen = {}

    def on_accept(s):
        def hook():
            if s.eof and "eof" not in seen:
                seen["eof"] = lab.now
                s.send(b"".join(sorted(s.received.splitlines(keepends=True))))
                s.close()
        lab.hooks.append(hook)
    srv = lab.listen(80, on_accept=on_accept)
    c = lab.connect(80)
    c.send(b"".join(lines))
    c.shutdown()
    lab.run_until(lambda: c.eof and c.state is State.TIME_WAIT and srv.first.state is State.CLOSED, limit=10)
    s = srv.first
    check(bytes(c.received) == out, "the client got its lines back, sorted")
    first = lab.sent(s, data=True)[0]
    check(first.t >= lab.state_at(s, State.CLOSE_WAIT),
          "the server's first data byte left after the client's FIN (end of stream)")
    check(lab.states(c)[-3:] == ["FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"], f"client went {lab.states(c)}")
    lab.notes.append(f"{len(out)} bytes each way")


@scenario(SCENARIOS, "time-wait-retransmitted-fin", group="closing",
          title="TIME-WAIT catching a retransmitted FIN", teaching="""
    The client's last ACK is lost, so the server, in LAST-ACK, sends its FIN again (a tail loss
    probe, 240 ms later). The client is still there in TIME-WAIT to acknowledge it once more and
    restarts its 2 MSL wait: that is what TIME-WAIT is for (RFC 9293 §3.6.1).""")
def time_wait_retransmitted_fin(new_lab) -> None:
    lab = new_lab()
    srv, c = _request_reply(lab, b"HTTP/1.0 200 OK\r\n\r\nhello\n", server_closes_after=0.0)
    is_ack = flags_are("A", payload=False)
    lab.faults("client").drop_if(lambda p: is_ack(p) and c.state is State.TIME_WAIT, count=1)
    lab.run_until(lambda: c.received.endswith(b"hello\n"), limit=5)
    c.close()
    lab.run_until(lambda: c.state is State.CLOSED, limit=MSL2 + 10)
    s = srv.first
    fins = lab.sent(s, flags="FA")
    check(len(fins) == 2 and fins[1].retransmit, f"the server retransmitted its FIN ({len(fins)} sent)")
    tw = lab.state_at(c, State.TIME_WAIT)
    last_acks = [r for r in lab.sent(c, flags="A") if r.t >= tw]
    check(len(last_acks) == 2, f"the client ACKed the FIN twice from TIME-WAIT, got {len(last_acks)}")
    check(s.state is State.CLOSED, "the server closed once the second ACK arrived")
    fin2_in = [r for r in lab.arrived(c, flags="FA")][-1].t
    closed = lab.state_at(c, State.CLOSED)
    check(abs(closed - fin2_in - MSL2) < 1e-6,
          f"the 2 MSL timer restarted at the second FIN: closed {closed - fin2_in:.3f} s after it")
    lab.notes.append(f"FIN retransmitted after {fins[1].t - fins[0].t:.3f} s")


@scenario(SCENARIOS, "abort-reset-by-peer", group="closing", title='Abort and "connection reset by peer"',
          teaching="""
    The client aborts in the middle of a conversation: one RST, no FIN, no TIME-WAIT, and any data
    still queued is thrown away. The server's connection goes straight to CLOSED and its next read
    fails with "connection reset by peer" (ECONNRESET).""")
def abort_reset_by_peer(new_lab) -> None:
    lab = new_lab()
    srv = lab.listen(80)
    c = lab.connect(80)
    c.send(b"first request\n")
    lab.run_until(lambda: srv.first is not None and srv.first.received == b"first request\n", limit=5)
    s = srv.first
    s.auto_read = False
    lab.run_for(0.1)
    c.abort()
    lab.run_until(lambda: s.state is State.CLOSED, limit=5)
    rst, = lab.sent(c, flags="R")
    check(not lab.sent(c, flags="FA"), "no FIN: an abort sends only a RST")
    resets = lab.events_of(s, ev.Reset)
    check(len(resets) == 1 and not resets[0].refused, f"the server saw a reset, not a refusal: {resets}")
    s.read()
    check(isinstance(s.error, ConnectionReset), f"the server's read failed with ECONNRESET, got {s.error!r}")
    check(lab.states(c)[-2:] == ["ESTABLISHED", "CLOSED"] and lab.states(s)[-2:] == ["ESTABLISHED", "CLOSED"],
          "both ends went from ESTABLISHED straight to CLOSED")
    lab.notes.append(f"read: {s.error}")
