"""One bulk flow on the simulator: A sends as fast as TCP lets it, B reads everything.

For tests that watch congestion control through a whole connection (the event log of the
sender), the same shape ``bench/cc.py`` measures: a link of ``bandwidth`` bits/s, one-way delay
``rtt / 2``, a drop-tail queue of ``queue_limit`` packets, no other faults.
"""

from __future__ import annotations

from synack.sim.network import Network
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.tcp.connection import TcpConnection


def bulk_flow(cfg: TcpConfig, *, rtt: float, bandwidth: float, queue_limit: int, duration: float,
              log=None, seed: int = 1) -> TcpConnection:
    """Run one flow A -> B for ``duration`` virtual seconds; return A's connection. ``log``
    receives A's events."""
    net = Network(seed)
    a = net.add_node("a", Stack(["192.0.2.1/24"], secret=b"a" * 16, config=cfg, log=log))
    b = net.add_node("b", Stack(["192.0.2.2/24"], secret=b"b" * 16, config=cfg))
    net.connect("a", "b", delay=rtt / 2, bandwidth=bandwidth, queue_limit=queue_limit)
    lst = b.listen(80)
    c = a.connect(("192.0.2.2", 80), net.now)
    peer: list[TcpConnection] = []
    block = b"\x5a" * 65536

    def step() -> bool:
        if not peer and (p := b.accept(lst)) is not None:
            peer.append(p)
        while c.state.synchronized and c.sndbuf.free and c.send(block[:c.sndbuf.free]):
            a.touch(c)
        if peer:
            while peer[0].receive(1 << 20):
                b.touch(peer[0])
        return net.now >= duration

    net.run_until(step, limit=duration + 1)
    return c


__all__ = ["bulk_flow"]
