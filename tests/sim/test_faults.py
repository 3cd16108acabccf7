"""Each fault kind over the simulator, counted over many packets with fixed seeds.

Faults act on a→b only (``faults=(spec, None)``), so b's replies come back clean and every
effect shows in what b receives. The seeds are fixed, so the counts are exact run to run; the
bounds are what the probability allows (about ±4 standard deviations), so a change of RNG use
that keeps the statistics right keeps the tests green.
"""

from __future__ import annotations

import math

import pytest

from synack.link.faults import FaultApplied
from synack.sim.host import EchoHost
from synack.sim.network import Network
from synack.wire import icmp
from synack.wire.packet import parse_packet

A, B = "10.0.0.1", "10.0.0.2"
N = 2000


def lossy(spec, seed=1, n=N, interval=0.001, delay=0.01, log=None):
    """a pings b ``n`` times, one every ``interval`` s, with ``spec`` faults on a→b."""
    net = Network(seed, log=log)
    a = net.add_node("a", EchoHost(A))
    b = net.add_node("b", EchoHost(B))
    net.connect("a", "b", delay=delay, faults=(spec, None))
    for i in range(n):
        net.call_at(i * interval, a.ping, B, 1, i % 65536, i.to_bytes(4, "big"), i * interval)
    net.run_for(n * interval + 1.0)
    return net, a, b


def within(count, n, p, sds=4.0):
    sd = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= sds * sd


def test_loss():
    net, a, b = lossy(dict(loss=0.2))
    lost = net.faults_of("a").tx.loss
    assert within(lost, N, 0.2), lost
    assert b.requests_answered == len(a.replies) == N - lost
    assert net.faults_of("b").counters.loss == 0


def test_duplication():
    net, a, b = lossy(dict(dup=0.1))
    dups = net.faults_of("a").tx.dup
    assert within(dups, N, 0.1), dups
    assert b.requests_answered == N + dups
    assert len(a.replies) == N + dups
    assert len({r.seq for r in a.replies}) == N


def test_reordering_actually_reorders():
    net, a, b = lossy(dict(reorder=0.1, reorder_delay=0.005))
    held = net.faults_of("a").tx.reorder
    assert within(held, N, 0.1), held
    seqs = [r.seq for r in a.replies]
    assert sorted(seqs) == list(range(N))               # nothing lost
    # a packet is late if a later-sent one arrived before it: exactly the held ones, bar any
    # held among the last five, which nothing sent after them could overtake
    late, top = 0, -1
    for s in seqs:
        late += s < top
        top = max(top, s)
    assert held - 5 <= late <= held
    assert sum(1 for i, s in enumerate(seqs) if s != i) >= 4 * late


def test_extra_delay_is_exact_and_jitter_keeps_order():
    net, a, b = lossy(dict(delay=0.125), n=10, interval=0.25, delay=0.25)
    assert [r.t - i * 0.25 for i, r in enumerate(a.replies)] == [0.625] * 10
    assert net.faults_of("a").tx.delay == 10
    net, a, b = lossy(dict(delay=0.05, jitter=0.04), n=500)
    rtts = [r.t - r.seq * 0.001 for r in a.replies]
    assert [r.seq for r in a.replies] == list(range(500))   # jitter alone never reorders
    assert min(rtts) >= 0.02 + 0.01 - 1e-9 and max(rtts) <= 0.02 + 0.09 + 0.5
    assert len(set(round(x, 9) for x in rtts)) > 100         # and it does vary


def test_corruption_is_caught_by_checksums():
    net, a, b = lossy(dict(corrupt=0.05))
    corrupted = net.faults_of("a").tx.corrupt
    assert within(corrupted, N, 0.05), corrupted
    # one flipped bit always fails the IPv4 header or the ICMP checksum (RFC 1071 §1); a flip
    # in Version, IHL or Total Length may be refused even before the checksum is looked at
    assert sum(b.dropped.values()) == corrupted
    assert b.dropped["bad IPv4 header checksum"] + b.dropped["bad ICMPv4 checksum"] > 0.75 * corrupted
    assert all("checksum" in r or r.startswith("IP") for r in b.dropped), b.dropped
    assert len(a.replies) == N - corrupted


def test_drop_nth_matching_packet():
    net = Network(1)
    a = net.add_node("a", EchoHost(A))
    b = net.add_node("b", EchoHost(B))
    net.connect("a", "b")
    rule = net.faults_of("a").drop_nth(2)                 # the 2nd packet a→b
    first_reply = net.faults_of("b").drop_nth(1, match=is_echo_reply)   # the first reply b→a
    for i in range(5):
        net.call_at(i * 0.1, a.ping, B, 1, i, b"", i * 0.1)
    net.run_for(1)
    assert b.requests_answered == 4                        # seq 1 never reached b
    assert [r.seq for r in a.replies] == [2, 3, 4]         # seq 0's reply was dropped
    assert rule.dropped == 1 and rule.done and first_reply.dropped == 1
    assert net.faults_of("a").tx.drop == 1 and net.faults_of("b").tx.drop == 1


def test_drop_if_counts_down():
    net2 = Network(1)
    a = net2.add_node("a", EchoHost(A))
    b = net2.add_node("b", EchoHost(B))
    net2.connect("a", "b")
    even = net2.faults_of("a").drop_if(lambda p: icmp.decode_icmp4(
        icmp.parse_icmp4(parse_packet(p).payload)).seq % 2 == 0, count=3)
    for i in range(10):
        net2.call_at(i * 0.1, a.ping, B, 1, i, b"", i * 0.1)
    net2.run_for(2)
    assert [r.seq for r in a.replies] == [1, 3, 5, 6, 7, 8, 9]
    assert even.dropped == 3 and even.done


def is_echo_reply(p: bytes) -> bool:
    pkt = parse_packet(p)
    return isinstance(m := icmp.decode_icmp4(icmp.parse_icmp4(pkt.payload)), icmp.Echo) and m.reply


def test_every_fault_is_logged_and_matches_the_counters():
    records = []
    net, a, b = lossy(dict(loss=0.05, dup=0.05, reorder=0.05, corrupt=0.05, delay=0.001),
                      n=500, log=records.append)
    assert records and all(isinstance(r, FaultApplied) for r in records)
    c = net.faults_of("a").tx
    kinds = {k: sum(1 for r in records if r.kind == k) for k in ("loss", "dup", "reorder", "corrupt", "delay")}
    assert kinds == {"loss": c.loss, "dup": c.dup, "reorder": c.reorder, "corrupt": c.corrupt, "delay": c.delay}
    assert all(v > 0 for v in kinds.values())
    assert {r.direction for r in records} == {"tx"}
    assert c.seen == 500 and c.passed == 500 - c.loss + c.dup
    assert all(r.length == 20 + 8 + 4 for r in records)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_lossy_run_is_a_function_of_the_seed(seed):
    def run():
        net, a, b = lossy(dict(loss=0.1, dup=0.1, reorder=0.1, jitter=0.002, corrupt=0.1), seed=seed, n=300)
        return [(r.t, r.seq) for r in a.replies], dict(b.dropped)
    assert run() == run()
