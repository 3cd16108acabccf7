"""TSO (TcpConfig.tso_max) over a simulated link that cuts super-segments as the kernel's GSO
does (``synack.link.tun.gso_segment``): byte-exact transfers with loss, reordering and
duplication; the pieces are what per-MSS output would have sent."""

from __future__ import annotations

import random

import pytest

from synack.link.tun import gso_segment
from synack.sim.transfer import run_transfer
from synack.tcp.config import TcpConfig
from synack.wire.packet import build_tcp_packet, parse_packet, tcp_in
from synack.wire.tcp import Flags, Nop, TcpSegment, Timestamps

TSO = 65535 - 40 - 60


class Gso:
    """Cuts what the node transmits at ``mtu``, like a TUN device with TSO."""

    def __init__(self, inner, mtu: int = 1500) -> None:
        self.inner, self.mtu, self.big = inner, mtu, 0

    def transmit(self, packet: bytes, now: float) -> None:
        if len(packet) > self.mtu:
            self.big += 1
        for p in gso_segment(packet, self.mtu):
            self.inner.transmit(p, now)

    def receive(self, now: float) -> list[bytes]:
        return self.inner.receive(now)

    def next_timer(self) -> float | None:
        return self.inner.next_timer()


def test_gso_segment_cuts_like_the_kernel():
    opts = (Nop(), Nop(), Timestamps(7, 9))
    seg = TcpSegment(5000, 80, 2**32 - 1000, 1, Flags.ACK | Flags.PSH | Flags.FIN, 512, 0, opts,
                     bytes(range(256)) * 20)
    big = build_tcp_packet("192.0.2.2", "192.0.2.1", seg, partial_checksum=True)
    pieces = [tcp_in(parse_packet(p)) for p in gso_segment(big, 1500)]   # checksums verified
    assert [len(p.payload) for p in pieces] == [1448, 1448, 1448, 5120 - 3 * 1448]
    assert b"".join(p.payload for p in pieces) == seg.payload
    assert [p.seq for p in pieces] == [(seg.seq + i * 1448) % 2**32 for i in range(4)]
    assert [p.flags for p in pieces] == [Flags.ACK] * 3 + [seg.flags]
    assert all(p.options == opts for p in pieces)


@pytest.mark.parametrize("seed", range(12))
def test_tso_transfers_survive_faults(seed):
    rng = random.Random(seed)
    links: list[Gso] = []

    def wrap(name, link):
        links.append(Gso(link))
        return links[-1]

    loss, reorder, dup = rng.choice([(0.0, 0.0, 0.0), (0.02, 0.0, 0.0), (0.05, 0.05, 0.01), (0.0, 0.1, 0.0)])
    cfg = TcpConfig(rcv_buf=rng.choice([65536, 1 << 20]), snd_buf=1 << 20, tso_max=TSO,
                    nagle=rng.random() < 0.5)
    r = run_transfer(seed, rng.choice([1000, 100_000, 400_000]), rng.choice([0, 50_000]), loss=loss,
                     reorder=reorder, dup=dup, delay=0.01, bandwidth=rng.choice([None, 50e6]),
                     queue_limit=rng.choice([None, 50]), max_chunk=65536, config=cfg, wrap=wrap)
    assert r.ok, (seed, r.message)


def test_tso_sends_super_segments():
    links: list[Gso] = []

    def wrap(name, link):
        links.append(Gso(link))
        return links[-1]

    cfg = TcpConfig(rcv_buf=1 << 20, snd_buf=1 << 20, tso_max=TSO)
    r = run_transfer(3, 2_000_000, 0, loss=0, delay=0.001, bandwidth=None, queue_limit=None,
                     max_chunk=65536, config=cfg, wrap=wrap)
    assert r.ok and r.retransmits == 0
    assert sum(g.big for g in links) > 0


def test_without_a_cutting_link_tso_is_off_by_default():
    r = run_transfer(3, 300_000, 0, loss=0, delay=0.001, bandwidth=None, queue_limit=None,
                     max_chunk=65536, config=TcpConfig(rcv_buf=1 << 20, snd_buf=1 << 20))
    assert r.ok and r.retransmits == 0
