"""The simulated half of ``synack demo``: a client fetches a page from a server, both synack,
on the simulated network (virtual clock, seeded), with a capture and an event log. It needs no
root and no TUN, and gives the same outputs as the real run.

Three connections tell the story:
  1. a clean fetch: three-way handshake, request, response, four-way close;
  2. the same with the first SYN-ACK dropped: the client's SYN is retransmitted after 1 s;
  3. the same with one data segment of the response dropped: recovered by retransmission.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from synack.link.pcap import PcapLink, PcapWriter
from synack.log.jsonl import JsonlLog
from synack.sim.network import Network
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.tcp.states import State
from synack.wire.packet import parse_packet, tcp_in

CLIENT, SERVER = "192.0.2.1", "192.0.2.2"
PAGE = (b"<!doctype html><title>synack</title><h1>Hello from synack</h1>"
        b"<p>This page came over a TCP written in Python.</p>\n" * 40)


@dataclass
class Fetch:
    name: str
    client_port: int
    request: bytes
    response: bytes
    ok: bool
    retransmits: int
    summary: str = ""


def _is(flags: str):
    """A packet predicate for scripted drops: the TCP flags match exactly (e.g. 'SA')."""
    from synack.wire.tcp import Flags
    want = 0
    for ch in flags:
        want |= {"S": Flags.SYN, "A": Flags.ACK, "F": Flags.FIN, "P": Flags.PSH, "R": Flags.RST}[ch]

    def match(packet: bytes) -> bool:
        try:
            seg = tcp_in(parse_packet(packet))
        except Exception:  # noqa: BLE001 - not a TCP packet: no match
            return False
        return int(seg.flags) == int(want)
    return match


def _has_payload(packet: bytes) -> bool:
    try:
        return len(tcp_in(parse_packet(packet)).payload) > 1000
    except Exception:  # noqa: BLE001
        return False


class Story(list):
    """The fetches, in order; ``both_logged``: both ends' events are in events.jsonl."""
    both_logged = True


def run(out: Path, seed: int = 1, progress=print, cc: str = "cubic") -> "Story":
    """Run the three fetches; write out/demo.pcap and out/events.jsonl; return what happened."""
    out.mkdir(parents=True, exist_ok=True)
    pcap_path, events_path = out / "demo.pcap", out / "events.jsonl"
    log = JsonlLog(events_path)
    writer = PcapWriter(pcap_path)
    net = Network(seed, log=log)
    cfg = TcpConfig(min_rto=0.2, cc=cc)     # a Linux-like client profile
    client = net.add_node("client", Stack([CLIENT + "/24"], secret=b"demo-client-secret", config=cfg, log=log))
    server = net.add_node("server", Stack([SERVER + "/24"], secret=b"demo-server-secret", config=cfg, log=log))
    net.connect("client", "server", delay=0.005, bandwidth=100e6,
                wrap=lambda name, link: PcapLink(link, writer) if name == "client" else link)
    lst = server.listen(80)
    fetches = Story()
    for name, fault in (("clean fetch", None), ("lost SYN-ACK", "synack"), ("lost data segment", "data")):
        if fault == "synack":
            net.faults_of("server").drop_nth(1, match=_is("SA"))
        elif fault == "data":
            net.faults_of("server").drop_nth(2, match=_has_payload)
        progress(f"  {name} ...")
        fetches.append(_fetch(net, client, server, lst, name))
        net.run_for(61.0)            # let TIME-WAIT run out between the stories
    writer.close()
    log.close()
    return fetches


def _fetch(net: Network, client: Stack, server: Stack, lst, name: str) -> Fetch:
    c = client.connect((SERVER, 80), net.now)
    request = b"GET / HTTP/1.1\r\nHost: 192.0.2.2\r\n\r\n"
    state = {"sent": False, "srv": None, "req": b"", "answered": False, "resp": bytearray(), "closed": False}

    def step() -> bool:
        if c.state is State.ESTABLISHED and not state["sent"]:
            c.send(request)
            client.touch(c)
            state["sent"] = True
        if state["srv"] is None:
            state["srv"] = server.accept(lst)
        s = state["srv"]
        if s is not None:
            while (d := s.receive(65536)):
                state["req"] += d
            if state["req"].endswith(b"\r\n\r\n") and not state["answered"]:
                hdr = f"HTTP/1.1 200 OK\r\nContent-Length: {len(PAGE)}\r\n\r\n".encode()
                s.send(hdr + PAGE)
                state["answered"] = True
                server.touch(s)
            if s.at_eof and s.state is State.CLOSE_WAIT:
                s.close(net.now)
                server.touch(s)
        while (d := c.receive(65536)):
            state["resp"] += d
            client.touch(c)
        if state["answered"] and len(state["resp"]) >= len(PAGE) and not state["closed"]:
            c.close(net.now)                  # the client closes first: it ends in TIME-WAIT
            client.touch(c)
            state["closed"] = True
        while client.next_event() or server.next_event():
            pass
        return state["closed"] and c.state is State.TIME_WAIT and s is not None and s.state is State.CLOSED

    def tick() -> None:
        if not step():
            net.call_later(0.01, tick)
    net.call_later(0.0, tick)
    net.run_until(step, limit=120.0, what=f"the {name}")
    body = bytes(state["resp"]).split(b"\r\n\r\n", 1)[-1]
    ok = hashlib.sha256(body).digest() == hashlib.sha256(PAGE).digest()
    srv = state["srv"]
    rexmit = c.total_retrans + (srv.total_retrans if srv is not None else 0)
    status = bytes(state["resp"]).split(b"\r\n", 1)[0].decode("latin-1")
    summary = (f"{status}, {len(body):,} bytes {'intact' if ok else 'CORRUPT'}, {rexmit} retransmission(s); "
               f"client :{c.id.local_port} closed first and ended in {c.state}")
    return Fetch(name, c.id.local_port, request, bytes(state["resp"]), ok, rexmit, summary)
