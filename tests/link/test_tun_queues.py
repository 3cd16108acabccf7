"""A multi-queue ``TunLink`` (IFF_MULTI_QUEUE): per-queue fds, and Linux keeping each TCP flow on
one queue while spreading flows over all of them (what ``synack.http.workers`` relies on)."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import threading

import pytest

from synack.api.aio import AsyncStack
from synack.link.netns import kernel_peer
from synack.link.tun import TunLink
from synack.stack.host import Stack

needs_root = pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                                reason="needs root (TUN device, network namespaces); runs in CI")


def test_queues_must_be_positive():
    with pytest.raises(ValueError, match="queues"):
        TunLink("snkq0", queues=0)


class FlowRecorder:
    """A link around one queue that notes the TCP flow (addresses and ports, either direction)
    of every packet it carries."""

    def __init__(self, queue) -> None:
        self.queue = queue
        self.flows: set[tuple] = set()
        self.lock = threading.Lock()

    def _note(self, pkt: bytes) -> None:
        if pkt[0] >> 4 == 4 and pkt[9] == 6:
            ihl = (pkt[0] & 0x0F) * 4
            a = (bytes(pkt[12:16]), pkt[ihl] << 8 | pkt[ihl + 1])
            b = (bytes(pkt[16:20]), pkt[ihl + 2] << 8 | pkt[ihl + 3])
            with self.lock:
                self.flows.add(tuple(sorted((a, b))))

    def fileno(self) -> int:
        return self.queue.fileno()

    def next_timer(self):
        return None

    def receive(self, now: float) -> list[bytes]:
        pkts = self.queue.receive(now)
        for p in pkts:
            self._note(p)
        return pkts

    def transmit(self, packet: bytes, now: float) -> None:
        self._note(packet)
        self.queue.transmit(packet, now)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


CLIENT = textwrap.dedent("""
    import socket, sys
    ok = 0
    for i in range(int(sys.argv[1])):
        s = socket.create_connection(("192.0.2.2", 7), timeout=5)
        msg = bytes([i % 256]) * 3000
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            d = s.recv(65536)
            if not d:
                break
            got += d
        s.close()
        ok += got == msg
    print(ok)
""")


@needs_root
def test_each_flow_stays_on_one_queue_and_both_queues_carry_flows():
    n = 40
    with kernel_peer(ipv6=False, queues=2) as peer:
        assert len(peer.link.queues) == 2
        assert len({q.fileno() for q in peer.link.queues}) == 2
        recorders = [FlowRecorder(q) for q in peer.link.queues]
        astacks = []
        try:
            for i, rec in enumerate(recorders):
                # the same secret in both: a SYN cookie made by one stack would pass in the other
                a = AsyncStack.start_thread(Stack(peer.stack_addresses, secret=b"queues"), rec, f"queue{i}")
                astacks.append(a)
                a.run(a.start_server(echo, None, 7), timeout=5)
            out = peer.run([sys.executable, "-c", CLIENT, str(n)], timeout=60)
        finally:
            for a in astacks:
                a.close()
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [str(n)]              # every echo came back whole
        flows = [r.flows for r in recorders]
        assert len(flows[0] | flows[1]) == n
        assert flows[0] & flows[1] == set()               # no flow had a packet on both queues
        assert flows[0] and flows[1]                      # the kernel used both queues
        counters = [q.counters for q in peer.link.queues]
        assert all(c.rx_packets > 0 and c.tx_packets > 0 for c in counters)
