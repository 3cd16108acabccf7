"""Two synack hosts on the simulated network moving bytes both ways: the workhorse of the
property tests, the soak runs (``python -m synack.sim.transfer --seeds 10000``) and demos.

Everything random (chunk sizes, when each side reads, writes and half-closes, the link's
faults) is drawn from one seed, so a failing seed replays exactly.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from dataclasses import dataclass, field

from synack.sim.network import Network
from synack.stack.host import Stack, StackConfig
from synack.tcp.config import TcpConfig
from synack.tcp.congestion.cli import add_cc_argument
from synack.tcp.connection import TcpConnection
from synack.tcp.states import State

A_ADDR, B_ADDR = "192.0.2.1", "192.0.2.2"
PORT = 80


@dataclass
class Side:
    """One application endpoint: what it still has to write, what it has read."""
    rng: random.Random
    outgoing: bytes
    conn: TcpConnection | None = None
    written: int = 0
    received: bytearray = field(default_factory=bytearray)
    shut: bool = False
    closed: bool = False
    close_called: bool = False
    eof: bool = False

    def step(self, stack: Stack, now: float, max_chunk: int) -> None:
        c = self.conn
        if c is None:
            return
        # read a random amount (sometimes not at all: the window must close and reopen)
        if self.rng.random() < 0.8:
            while (d := c.receive(self.rng.randint(1, 2 * max_chunk))):
                self.received.extend(d)
                stack.touch(c)
            if c.at_eof:
                self.eof = True
        if c.state is State.CLOSED or self.closed:
            self.closed = True
            return
        # write a random chunk
        if self.written < len(self.outgoing) and c.state in (State.ESTABLISHED, State.CLOSE_WAIT,
                                                             State.SYN_SENT, State.SYN_RECEIVED):
            n = self.rng.randint(1, max_chunk)
            took = c.send(self.outgoing[self.written:self.written + n])
            self.written += took
            if took:
                stack.touch(c)
        # half-close once everything is written
        if not self.shut and self.written == len(self.outgoing) and c.state in (State.ESTABLISHED, State.CLOSE_WAIT):
            c.shutdown_write(now)
            self.shut = True
            stack.touch(c)


@dataclass
class TransferResult:
    seed: int
    ok: bool
    virtual_time: float
    wall_time: float
    a_state: State
    b_state: State
    a_to_b: bool
    b_to_a: bool
    message: str = ""
    retransmits: int = 0
    connections: tuple = ()


def run_transfer(seed: int, size_ab: int = 20_000, size_ba: int = 10_000, *, loss: float = 0.0,
                 dup: float = 0.0, reorder: float = 0.0, corrupt: float = 0.0, delay: float = 0.01,
                 bandwidth: float | None = 10e6, queue_limit: int | None = 100, max_chunk: int = 4000,
                 config: TcpConfig | None = None, limit: float = 3600.0, log=None, wrap=None,
                 cc: str | None = None) -> TransferResult:
    """One seeded run: A connects to B, both write their bytes in random chunks, read at random
    moments, half-close when done, and close when they have seen the other's FIN."""
    rng = random.Random(seed)
    data_ab = rng.randbytes(size_ab)
    data_ba = rng.randbytes(size_ba)
    cfg = config if config is not None else TcpConfig(rcv_buf=rng.choice([4096, 16384, 65536, 262144]),
                                                      nagle=rng.random() < 0.5)
    if cc is not None:
        cfg = cfg.copy(cc=cc)
    net = Network(seed, log=log)
    a = net.add_node("a", Stack([A_ADDR + "/24"], secret=rng.randbytes(16), config=cfg, log=log))
    b = net.add_node("b", Stack([B_ADDR + "/24"], secret=rng.randbytes(16), config=cfg,
                                stack_config=StackConfig(), log=log))
    faults = {"loss": loss, "dup": dup, "reorder": reorder, "corrupt": corrupt}
    net.connect("a", "b", delay=delay, bandwidth=bandwidth, queue_limit=queue_limit, faults=faults, wrap=wrap)
    lst = b.listen(PORT)
    sa = Side(random.Random(rng.getrandbits(64)), data_ab)
    sb = Side(random.Random(rng.getrandbits(64)), data_ba)
    sa.conn = a.connect((B_ADDR, PORT), net.now)

    def done() -> bool:
        if sb.conn is None:
            sb.conn = b.accept(lst)
        for side, stack in ((sa, a), (sb, b)):
            side.step(stack, net.now, max_chunk)
            if side.eof and side.shut and side.conn is not None and not side.close_called \
                    and side.conn.state in (State.CLOSE_WAIT, State.LAST_ACK, State.FIN_WAIT_2,
                                            State.TIME_WAIT, State.CLOSING, State.FIN_WAIT_1):
                side.conn.close(net.now)
                side.close_called = True
                stack.touch(side.conn)
        while a.next_event():
            pass
        while b.next_event():
            pass
        return all(s.conn is not None and s.eof and s.conn.state in (State.CLOSED, State.TIME_WAIT)
                   for s in (sa, sb))

    def app_tick() -> None:
        # the applications also act on their own clock, not only when packets arrive
        if not done():
            net.call_later(0.05, app_tick)
    net.call_later(0.05, app_tick)

    t0 = time.perf_counter()
    msg = ""
    try:
        net.run_until(done, limit=limit)
    except Exception as e:  # noqa: BLE001 - reported in the result, with the seed
        msg = f"{type(e).__name__}: {e}"
    wall = time.perf_counter() - t0
    ab = bytes(sb.received) == data_ab
    ba = bytes(sa.received) == data_ba
    st_a = sa.conn.state if sa.conn else State.CLOSED
    st_b = sb.conn.state if sb.conn else State.CLOSED
    ok = ab and ba and not msg
    if not ok and not msg:
        msg = (f"a->b {len(sb.received)}/{len(data_ab)} exact={ab}; b->a {len(sa.received)}/{len(data_ba)} "
               f"exact={ba}")
    rx = (sa.conn.total_retrans if sa.conn else 0) + (sb.conn.total_retrans if sb.conn else 0)
    conns = tuple(s.conn for s in (sa, sb) if s.conn is not None)
    return TransferResult(seed, ok, net.now, wall, st_a, st_b, ab, ba, msg, rx, conns)


def digest(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:16]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, default=100, help="how many seeds (default 100)")
    p.add_argument("--first", type=int, default=0, help="first seed")
    p.add_argument("--loss", type=float, default=0.02)
    p.add_argument("--reorder", type=float, default=0.02)
    p.add_argument("--dup", type=float, default=0.01)
    p.add_argument("--corrupt", type=float, default=0.005)
    p.add_argument("--size", type=int, default=20_000, help="bytes A sends to B (B sends half)")
    add_cc_argument(p)


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1 or args.size < 0:
        print("synack soak: --seeds must be at least 1 and --size not negative", file=sys.stderr)
        return 2
    for name in ("loss", "reorder", "dup", "corrupt"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            print(f"synack soak: --{name} must be a probability between 0 and 1", file=sys.stderr)
            return 2
    failed = 0
    t0 = time.perf_counter()
    for seed in range(args.first, args.first + args.seeds):
        r = run_transfer(seed, args.size, args.size // 2, loss=args.loss, reorder=args.reorder,
                         dup=args.dup, corrupt=args.corrupt, cc=args.cc)
        if not r.ok:
            failed += 1
            print(f"seed {seed}: FAIL {r.message} (states {r.a_state}, {r.b_state})", flush=True)
    print(f"{args.seeds - failed} passed, {failed} failed ({time.perf_counter() - t0:.1f} s)")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m synack.sim.transfer",
                                description="Soak: seeded two-host transfers under random faults.")
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
