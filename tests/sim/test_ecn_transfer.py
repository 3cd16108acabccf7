"""ECN end to end over the simulator (RFC 3168 §6.1): two synack hosts with ``TcpConfig.ecn="on"``
and a "router" that marks CE on ECT packets instead of dropping them. Every byte arrives, the
marks come back as ECE, the senders reduce their windows and answer with CWR; nothing is lost,
so nothing is retransmitted."""

from __future__ import annotations

import dataclasses
import random

from synack.sim.transfer import run_transfer
from synack.tcp.config import TcpConfig
from synack.tcp.events import CwndChanged, EcnSignal, SegmentOut
from synack.wire.ip4 import IPv4Packet, emit_ipv4
from synack.wire.packet import parse_packet
from synack.wire.tcp import Flags


class CeMarker:
    """A Link wrapper: ECT packets it transmits are marked CE with probability ``p``."""

    def __init__(self, link, rng: random.Random, p: float, counts: dict) -> None:
        self.link, self.rng, self.p, self.counts = link, rng, p, counts

    def transmit(self, packet: bytes, now: float) -> None:
        pkt = parse_packet(packet)
        if isinstance(pkt, IPv4Packet):
            ecn = pkt.tos & 3
            self.counts[ecn] = self.counts.get(ecn, 0) + 1
            if ecn in (1, 2) and self.rng.random() < self.p:
                packet = emit_ipv4(dataclasses.replace(pkt, tos=pkt.tos | 3))
                self.counts["marked"] = self.counts.get("marked", 0) + 1
        self.link.transmit(packet, now)

    def receive(self, now: float) -> list[bytes]:
        return self.link.receive(now)

    def next_timer(self) -> float | None:
        return self.link.next_timer()


def test_ce_marks_are_echoed_and_answered_without_loss():
    seed = 11
    counts: dict = {}
    records: list = []
    rng = random.Random(seed)
    r = run_transfer(seed, size_ab=300_000, size_ba=50_000, config=TcpConfig(ecn="on", rcv_buf=65536),
                     wrap=lambda name, link: CeMarker(link, rng, 0.02, counts), log=records.append)
    assert r.ok, f"seed {seed}: {r.message}"
    assert counts.get("marked", 0) >= 5 and counts.get(2, 0) > 100     # ECT(0) data, some CE
    signals = [e.signal for e in records if isinstance(e, EcnSignal)]
    assert signals.count("negotiated") == 2
    assert signals.count("ce") >= 1 and signals.count("ece") >= 1 and signals.count("cwr") >= 1
    assert any(isinstance(e, CwndChanged) and e.reason == "ecn-echo" for e in records)
    out = [e for e in records if isinstance(e, SegmentOut)]
    assert any(e.seg.flags & Flags.CWR and not e.seg.flags & Flags.SYN for e in out)
    assert not any(e.retransmit for e in out)                          # marks, not drops


def test_ecn_off_sends_no_ect():
    counts: dict = {}
    rng = random.Random(3)
    r = run_transfer(3, size_ab=50_000, size_ba=5_000, config=TcpConfig(ecn="off"),
                     wrap=lambda name, link: CeMarker(link, rng, 0.5, counts))
    assert r.ok and counts.get("marked", 0) == 0 and set(counts) == {0}
