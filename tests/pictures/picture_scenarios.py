"""Inputs for the picture tests: real synack connections on the simulator (seeded, so the
capture and the log are the same bytes every run), and hand-made captures for the tracker."""

from __future__ import annotations

from synack.link.pcap import PcapLink, PcapWriter
from synack.log.jsonl import JsonlLog
from synack.sim.network import Network
from synack.stack.host import Stack
from synack.tcp.states import State
from synack.wire.packet import build_tcp_packet
from synack.wire.tcp import Flags, Mss, SackPermitted, TcpSegment, WindowScale

SEED = 20250101
REQUEST = b"GET / HTTP/1.0\r\n\r\n"
RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n"


def sim_connection(tmp, *, seed: int = SEED, size: int = 0, loss: float = 0.0, name: str = "run"):
    """Client 192.0.2.1 asks, server 192.0.2.2:80 answers, the client closes first, then the
    server. ``size`` > 0: the client uploads that many bytes first (a bulk data phase).
    Writes ``tmp/name.pcap`` (client's vantage) and ``tmp/name.jsonl`` (both stacks); returns
    their paths."""
    pcap, jsonl = tmp / f"{name}.pcap", tmp / f"{name}.jsonl"
    log = JsonlLog(jsonl, meta={"seed": seed})
    writer = PcapWriter(pcap)
    net = Network(seed)
    a = net.add_node("a", Stack(["192.0.2.1/24"], secret=b"a" * 16, log=log))
    b = net.add_node("b", Stack(["192.0.2.2/24"], secret=b"b" * 16, log=log))
    net.connect("a", "b", delay=0.01, bandwidth=100e6, queue_limit=200, faults={"loss": loss},
                wrap=lambda n, link: PcapLink(link, writer, vantage="stack") if n == "a" else link)
    lst = b.listen(80)
    c = a.connect(("192.0.2.2", 80), net.now)
    body = bytes(range(256)) * (size // 256) + REQUEST
    st = {"server": None, "sent": 0, "got": bytearray(), "answered": False, "reply": bytearray(), "closed": False}

    def pump():
        srv = st["server"]
        if srv is None:
            srv = st["server"] = b.accept(lst)
        # the client talks only once the server has accepted: no data races the accept
        if srv is not None and c.state is State.ESTABLISHED and st["sent"] < len(body):
            n = c.send(body[st["sent"]:st["sent"] + 65536])
            st["sent"] += n
            if n:
                a.touch(c)
        if srv is not None:
            while (d := srv.receive(65536)):
                st["got"].extend(d)
                b.touch(srv)
            if not st["answered"] and st["got"].endswith(REQUEST):
                srv.send(RESPONSE)
                b.touch(srv)
                st["answered"] = True
            if srv.at_eof and srv.state is State.CLOSE_WAIT:
                srv.close(net.now)
                b.touch(srv)
        if c.state in (State.ESTABLISHED, State.CLOSE_WAIT):
            while (d := c.receive(65536)):
                st["reply"].extend(d)
                a.touch(c)
            if bytes(st["reply"]) == RESPONSE and not st["closed"]:
                c.close(net.now)
                a.touch(c)
                st["closed"] = True
        while a.next_event():
            pass
        while b.next_event():
            pass
        return srv is not None and srv.state is State.CLOSED and c.state is State.TIME_WAIT

    net.run_until(pump, limit=120)
    writer.close()
    log.close()
    return pcap, jsonl


# --- hand-made captures ------------------------------------------------------------------------

A_ADDR, B_ADDR, A_PORT, B_PORT = "192.0.2.1", "192.0.2.2", 40000, 80
ISS_A, ISS_B = 2**32 - 3, 2**32 - 5          # both sequence spaces wrap (STYLE.md §7)
_FL = {"S": Flags.SYN, "F": Flags.FIN, "R": Flags.RST, "P": Flags.PSH, ".": Flags.ACK}


def write_capture(path, script) -> None:
    """``script``: (t, "A"|"B", flags like "S." , seq offset, ack offset, payload length), the
    offsets relative to the sender's / receiver's ISN (ack None: no ACK value)."""
    with PcapWriter(path) as w:
        for t, side, flags, seq, ack, n in script:
            f = Flags(0)
            for ch in flags:
                f |= _FL[ch]
            mine, theirs = (ISS_A, ISS_B) if side == "A" else (ISS_B, ISS_A)
            opts = (Mss(1460), SackPermitted(), WindowScale(7)) if f & Flags.SYN else ()
            seg = TcpSegment(A_PORT if side == "A" else B_PORT, B_PORT if side == "A" else A_PORT,
                             (mine + seq) % 2**32, (theirs + ack) % 2**32 if ack is not None else 0, f, 500,
                             options=opts, payload=b"x" * n)
            src, dst = (A_ADDR, B_ADDR) if side == "A" else (B_ADDR, A_ADDR)
            w.write(build_tcp_packet(src, dst, seg), t)


HANDSHAKE = [(0.000, "A", "S", 0, None, 0), (0.010, "B", "S.", 0, 1, 0), (0.010, "A", ".", 1, 1, 0)]
DATA = [(0.011, "A", "P.", 1, 1, 100), (0.021, "B", ".", 1, 101, 0)]
CLOSE = HANDSHAKE + DATA + [(0.030, "A", "F.", 101, 1, 0), (0.040, "B", ".", 1, 102, 0),
                            (0.050, "B", "F.", 1, 102, 0), (0.050, "A", ".", 102, 2, 0)]
# Both FINs cross on the wire: neither acknowledges the other (RFC 9293 §3.6, Figure 13).
SIMULTANEOUS_CLOSE = HANDSHAKE + DATA + [(0.030, "A", "F.", 101, 1, 0), (0.031, "B", "F.", 1, 101, 0),
                                         (0.040, "A", ".", 102, 2, 0), (0.041, "B", ".", 2, 102, 0)]
FIN_WITH_ACK = HANDSHAKE + [(0.030, "A", "F.", 1, 1, 0), (0.040, "B", "F.", 1, 2, 0), (0.050, "A", ".", 2, 2, 0)]
REFUSED = [(0.000, "A", "S", 0, None, 0), (0.010, "B", "R.", 0, 1, 0)]
ABORT = HANDSHAKE + DATA + [(0.030, "A", "R", 101, None, 0)]
SIMULTANEOUS_OPEN = [(0.000, "A", "S", 0, None, 0), (0.001, "B", "S", 0, None, 0),
                     (0.010, "A", "S.", 0, 1, 0), (0.011, "B", "S.", 0, 1, 0)]
LOST_FIN = HANDSHAKE + [(0.030, "A", "F.", 1, 1, 0), (0.040, "B", ".", 1, 1, 0),       # FIN lost after us
                        (1.030, "A", "F.", 1, 1, 0), (1.040, "B", ".", 1, 2, 0),
                        (1.050, "B", "F.", 1, 2, 0), (1.060, "A", ".", 2, 2, 0)]


def run(*argv):
    """``synack draw|plot ARGV...`` in this process: the command's exit status."""
    import argparse

    from synack.pictures import cli
    parser = argparse.ArgumentParser(prog="synack")
    sub = parser.add_subparsers(dest="cmd")
    cli.add_draw_arguments(d := sub.add_parser("draw"))
    d.set_defaults(fn=cli.run_draw)
    cli.add_plot_arguments(p := sub.add_parser("plot"))
    p.set_defaults(fn=cli.run_plot)
    args = parser.parse_args([str(a) for a in argv])
    return args.fn(args)
