"""The simulator: virtual clock, link model (delay, bandwidth, queues, MTU), run loop, determinism.

Times use dyadic fractions (1/8 s, 1/1024 s per octet) so virtual times compare exactly.
"""

from __future__ import annotations

import time

import pytest

from synack.link.pcap import PcapLink, read_pcap
from synack.sim.clock import Clock, LimitReached, Spinning, Stalled
from synack.sim.host import EchoHost
from synack.sim.network import Network

A4, B4 = "10.0.0.1", "10.0.0.2"
A6, B6 = "2001:db8::1", "2001:db8::2"
BYTE_TIME = 1 / 1024          # seconds per octet at 8192 bit/s
PING_LEN = 20 + 8 + 56        # IPv4 + ICMP header + 56 data octets = 84


def two_hosts(seed=1, a=A4, b=B4, **link):
    net = Network(seed)
    ha = net.add_node("a", EchoHost(a))
    hb = net.add_node("b", EchoHost(b))
    net.connect("a", "b", **link)
    return net, ha, hb


# --- RTT on the virtual clock ------------------------------------------------------------------

def test_rtt_is_twice_delay_plus_serialisation_exactly():
    net, a, b = two_hosts(delay=0.125, bandwidth=8192)
    a.ping(B4, 1, 1, bytes(56), net.now)
    assert net.run_until(lambda: a.replies, limit=5)
    # each way: 84 octets at 1/1024 s each, then 1/8 s of propagation
    assert a.replies[0].t == 2 * (0.125 + PING_LEN * BYTE_TIME) == 0.4140625
    assert net.now == a.replies[0].t
    assert b.requests_answered == 1
    assert net.end("a").counters.sent == 1 and net.end("a").counters.received == 1
    assert net.end("a").counters.sent_bytes == PING_LEN


def test_infinite_bandwidth_rtt_is_twice_delay():
    net, a, b = two_hosts(delay=0.25)
    a.ping(B4, 7, 9, b"abc", net.now)
    net.run_until(lambda: a.replies, limit=5)
    r = a.replies[0]
    assert (r.t, str(r.src), r.ident, r.seq, r.data) == (0.5, B4, 7, 9, b"abc")


def test_ipv6_ping():
    net, a, b = two_hosts(a=A6, b=B6, delay=0.125, bandwidth=8192)
    a.ping(B6, 1, 1, bytes(56), net.now)
    net.run_until(lambda: a.replies, limit=5)
    n = 40 + 8 + 56
    assert a.replies[0].t == 2 * (0.125 + n * BYTE_TIME)


def test_zero_delay_link_answers_at_the_same_instant():
    net, a, b = two_hosts(delay=0.0)
    net.run_for(3.0)
    a.ping(B4, 1, 1, b"", net.now)
    net.run_until(lambda: a.replies, limit=1)
    assert a.replies[0].t == 3.0


def test_back_to_back_packets_queue_behind_each_other():
    net, a, b = two_hosts(delay=0.125, bandwidth=8192)
    for seq in range(3):
        a.ping(B4, 1, seq, bytes(56), net.now)
    net.run_until(lambda: len(a.replies) == 3, limit=5)
    s = PING_LEN * BYTE_TIME
    # requests arrive at s+d, 2s+d, 3s+d; each reply waits for b's transmitter (idle by then)
    assert [r.t for r in a.replies] == [2 * s + 0.25, 3 * s + 0.25, 4 * s + 0.25]
    assert [r.seq for r in a.replies] == [0, 1, 2]


# --- queue and MTU drops ----------------------------------------------------------------------

def test_queue_tail_drop_in_packets():
    net, a, b = two_hosts(delay=0.01, bandwidth=8192, queue_limit=2)
    for seq in range(10):
        a.ping(B4, 1, seq, bytes(56), net.now)
    net.run_for(5)
    c = net.end("a").counters
    assert (c.sent, c.dropped) == (3, {"queue": 7})     # one on the wire, two waiting
    assert [r.seq for r in a.replies] == [0, 1, 2]      # the tail was dropped


def test_queue_tail_drop_in_bytes():
    net, a, b = two_hosts(delay=0.01, bandwidth=8192, queue_bytes=200)
    for seq in range(5):
        a.ping(B4, 1, seq, bytes(56), net.now)          # 84 octets each: 2 fit in 200
    net.run_for(5)
    assert net.end("a").counters.dropped == {"queue": 2}
    assert len(a.replies) == 3


def test_queue_drains_so_later_packets_are_taken():
    net, a, b = two_hosts(delay=0.01, bandwidth=8192, queue_limit=0)
    a.ping(B4, 1, 1, bytes(56), net.now)
    a.ping(B4, 1, 2, bytes(56), net.now)                # link busy, no queue: dropped
    net.run_for(1)
    a.ping(B4, 1, 3, bytes(56), net.now)                # link idle again: taken
    net.run_for(1)
    assert [r.seq for r in a.replies] == [1, 3]
    assert net.end("a").counters.dropped == {"queue": 1}


def test_packets_over_the_mtu_are_dropped_and_counted():
    net, a, b = two_hosts(mtu=576)
    a.ping(B4, 1, 1, bytes(576 - 28), net.now)          # exactly 576: fits
    a.ping(B4, 1, 2, bytes(576 - 27), net.now)          # 577: dropped, no fragmentation
    net.run_for(1)
    assert [r.seq for r in a.replies] == [1]
    assert net.end("a").counters.dropped == {"mtu": 1}
    assert b.dropped == {}


def test_link_down_drops():
    net, a, b = two_hosts()
    net.links[0].up = False
    a.ping(B4, 1, 1, b"", net.now)
    with pytest.raises(Stalled):
        net.run_until(lambda: a.replies, limit=5)
    assert net.end("a").counters.dropped == {"down": 1}


# --- the run loop ---------------------------------------------------------------------------

def test_stalled_when_nothing_is_pending():
    net, a, b = two_hosts(delay=0.5, mtu=100)
    a.ping(B4, 1, 1, bytes(200), net.now)               # dropped for size: nothing will happen
    with pytest.raises(Stalled) as ei:
        net.run_until(lambda: a.replies, limit=60)
    assert ei.value.now == 0.0
    assert "a.replies" in ei.value.waiting
    assert "mtu" in str(ei.value)


def test_stalled_after_traffic_dies_out():
    net, a, b = two_hosts(delay=0.5)
    a.ping(B4, 1, 1, b"", net.now)
    with pytest.raises(Stalled) as ei:
        net.run_until(lambda: len(a.replies) == 2, limit=60, what="two replies")
    assert ei.value.now == 1.0 and ei.value.waiting == "two replies"


def test_limit_reached_while_work_remains():
    net, a, b = two_hosts(delay=0.01)

    def ping_every_second(seq):
        a.ping(B4, 1, seq, b"", net.now)
        net.call_later(1.0, ping_every_second, seq + 1)

    net.call_at(0.0, ping_every_second, 0)
    with pytest.raises(LimitReached) as ei:
        net.run_until(lambda: len(a.replies) > 100, limit=10)
    assert ei.value.now == net.now == 10.0
    assert len(a.replies) == 10                         # pings at 0..9 answered; the 10th not yet


def test_run_until_returns_at_once_if_already_true():
    net, a, b = two_hosts()
    a.ping(B4, 1, 1, b"", net.now)
    assert net.run_until(lambda: True)
    assert net.now == 0.0 and net.end("a").counters.sent == 0


def test_run_for_ends_at_exactly_now_plus_duration():
    net, a, b = two_hosts(delay=0.25)
    a.ping(B4, 1, 1, b"", net.now)
    net.run_for(0.5)                                    # the reply arrives at exactly 0.5
    assert net.now == 0.5 and len(a.replies) == 1
    net.run_for(2.25)
    assert net.now == 2.75


class Spinner:
    """A broken node: its timer is always due and firing it changes nothing."""

    def receive_packet(self, packet, now): pass
    def packets_to_send(self, now): return []
    def next_timer(self): return 0.0
    def handle_timer(self, now): pass


def test_a_timer_that_never_clears_is_reported_as_spinning():
    net = Network(1)
    net.add_node("s", Spinner())
    with pytest.raises(Spinning):
        net.run_until(lambda: False, limit=1)


def test_scheduled_callbacks_run_in_time_then_schedule_order():
    c = Clock()
    seen = []
    c.call_at(2.0, seen.append, "b")
    c.call_at(1.0, seen.append, "a")
    c.call_at(2.0, seen.append, "c")
    c.call_at(1.5, seen.append, "x").cancel()
    assert c.next_timer() == 1.0
    c.advance(2.0)
    assert c.run_due() == 3 and seen == ["a", "b", "c"]
    assert c.next_timer() is None
    with pytest.raises(ValueError):
        c.advance(1.0)


# --- determinism ------------------------------------------------------------------------------

LOSSY = dict(loss=0.1, dup=0.05, reorder=0.1, reorder_delay=0.02, jitter=0.003, corrupt=0.02)


def capture(tmp_path, seed, name):
    path = tmp_path / f"{name}.pcap"
    links = []

    def wrap(node_name, link):
        if node_name != "a":
            return link
        links.append(PcapLink(link, path))
        return links[0]

    net = Network(seed)
    a = net.add_node("a", EchoHost(A4))
    net.add_node("b", EchoHost(B4))
    net.connect("a", "b", delay=0.01, bandwidth=1e6, queue_limit=8, faults=LOSSY, wrap=wrap)
    for i in range(200):
        net.call_at(i * 0.005, a.ping, B4, 1, i, bytes(i % 64), i * 0.005)
    net.run_for(5)
    links[0].close()
    return path.read_bytes()


def test_same_seed_gives_a_byte_identical_pcap(tmp_path):
    one, two = capture(tmp_path, 42, "one"), capture(tmp_path, 42, "two")
    assert one == two
    records = list(read_pcap(tmp_path / "one.pcap"))
    assert 300 < len(records) < 400                     # 200 out, ~170 replies in


def test_different_seeds_give_different_runs(tmp_path):
    assert capture(tmp_path, 42, "one") != capture(tmp_path, 43, "two")


def test_per_link_rngs_derive_from_the_seed_in_creation_order():
    assert Network(5).derive_rng().random() == Network(5).derive_rng().random()
    n = Network(5)
    assert n.derive_rng().random() != n.derive_rng().random()


# --- virtual time is cheap ----------------------------------------------------------------------

def test_two_minutes_of_pings_take_little_wall_time():
    net, a, b = two_hosts(delay=0.02, bandwidth=10e6)
    for i in range(120):
        net.call_at(float(i), a.ping, B4, 1, i, bytes(56), float(i))
    started = time.perf_counter()                       # measures the test, not the simulation
    net.run_until(lambda: len(a.replies) == 120, limit=300)
    net.run_for(120.0)                                  # an idle 2*MSL (RFC 9293 §3.4.2) passes in one jump
    wall = time.perf_counter() - started
    assert [r.seq for r in a.replies] == list(range(120))
    assert net.now == pytest.approx(119.04 + 120.0, abs=1e-3)
    assert wall < 2.0, f"{wall:.2f} s of wall time for 240 virtual seconds"
