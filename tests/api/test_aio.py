"""The asyncio adapter: standard StreamReader/StreamWriter over two synack stacks joined by a
DgramLink pair (192.0.2.1 <-> 192.0.2.2), on one event loop."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import random

import pytest

from api_helpers import A_ADDR, B_ADDR, AioPair, make_stacks, run_async
from synack import asyncio as sasyncio
from synack.api.aio import AsyncStack, SynackTransport
from synack.link.dgram import DgramLink
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.tcp.states import State


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _settle(cond, timeout: float = 5.0) -> None:
    """Wait (bounded) until cond() is true, yielding to the loop."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.005)


@run_async
async def test_echo_server_and_client():
    a, b, la, lb = make_stacks()
    A, B = AsyncStack(a, la), AsyncStack(b, lb)
    server = await sasyncio.start_server(_echo, B_ADDR, 7, stack=B)
    assert server.is_serving() and server.port == 7 and server.sockname == (B_ADDR, 7)
    reader, writer = await sasyncio.open_connection(B_ADDR, 7, stack=A)
    assert writer.get_extra_info("peername") == (B_ADDR, 7)
    assert writer.get_extra_info("sockname")[0] == A_ADDR
    conn = writer.get_extra_info("synack_connection")
    assert conn.state is State.ESTABLISHED and isinstance(writer.transport, SynackTransport)
    for line in (b"hello\n", b"synack says hi\n", b"x" * 5000 + b"\n"):
        writer.write(line)
        assert await reader.readline() == line
    writer.write_eof()
    assert await reader.read() == b""                    # the server closed after our EOF
    writer.close()
    await writer.wait_closed()
    assert writer.transport.is_closing()
    server.close()
    await server.wait_closed()
    assert not server.is_serving()
    A.close()
    B.close()


@run_async
async def test_large_transfer_hash_check():
    pair = AioPair()
    (ra, wa), (rb, wb) = await pair.streams()
    rng = random.Random(7)
    data = rng.randbytes(3 << 20)

    async def send():
        view = memoryview(data)
        for off in range(0, len(data), 100_000):
            wa.write(view[off:off + 100_000])
            await wa.drain()
        wa.write_eof()

    async def receive():
        h, n = hashlib.sha256(), 0
        while chunk := await rb.read(1 << 16):
            h.update(chunk)
            n += len(chunk)
        return n, h.hexdigest()

    _, (n, digest) = await asyncio.gather(send(), receive())
    assert n == len(data) and digest == hashlib.sha256(data).hexdigest()
    info = wa.get_extra_info("synack_connection").info()
    assert info.total_retrans == 0                       # a loss-free link: nothing resent
    for w in (wa, wb):
        w.close()
    pair.close()


@run_async
async def test_slow_reader_keeps_window_closed_and_writer_in_drain():
    """The StreamReader is not fed without bound: past 2*limit the transport stops pulling from
    the connection, TCP's receive buffer fills, the window goes to 0 and the writer blocks."""
    limit = 4096
    pair = AioPair(limit=limit, config=TcpConfig(min_rto=0.2))   # Linux's minimum RTO
    (ra, wa), (rb, wb) = await pair.streams()
    sender = wa.get_extra_info("synack_connection")
    receiver = wb.get_extra_info("synack_connection")
    data = random.Random(3).randbytes(2 << 20)
    progress = 0

    async def write_all():
        nonlocal progress
        for off in range(0, len(data), 16384):
            wa.write(data[off:off + 16384])
            await wa.drain()
            progress = off + 16384

    task = asyncio.create_task(write_all())
    last, quiet = -1, 0
    async with asyncio.timeout(5):
        while quiet < 20:                                 # 20 polls (~0.1 s) without progress
            await asyncio.sleep(0.005)
            quiet = quiet + 1 if progress == last else 0
            last = progress
    assert not task.done()
    # Sender SWS avoidance (RFC 9293 §3.8.6.2.1) may hold back a last sub-MSS piece of the
    # window until its override (here the persist timer, one RTO) sends it; then it is 0.
    assert receiver.rcv_wnd < sender.mss and sender.flight_size == 0
    await _settle(lambda: receiver.rcv_wnd == 0 and sender.snd_wnd == 0, timeout=3)
    assert receiver.readable == receiver.config.rcv_buf   # the unread bytes sit in TCP
    assert len(rb._buffer) <= 2 * limit + 65536          # the StreamReader was not flooded
    assert wa.transport.get_write_buffer_size() > 0
    assert progress < len(data)
    got = bytearray()
    while len(got) < len(data):
        got += await rb.read(65536)
    await task
    assert bytes(got) == data
    for w in (wa, wb):
        w.close()
    pair.close()


@run_async
async def test_connection_refused():
    pair = await AioPair().start()
    with pytest.raises(ConnectionRefusedError) as e:
        await pair.A.open_connection(B_ADDR, 9)
    assert e.value.errno == errno.ECONNREFUSED
    pair.close()


@run_async
async def test_reset_by_peer_surfaces_as_connection_reset():
    pair = AioPair()
    (ra, wa), (rb, wb) = await pair.streams()
    wa.write(b"hi")
    assert await rb.readexactly(2) == b"hi"
    wb.transport.abort()                                 # RST from B
    with pytest.raises(ConnectionResetError) as e:
        async with asyncio.timeout(5):
            await ra.read(100)
    assert e.value.errno == errno.ECONNRESET
    with pytest.raises(ConnectionResetError):
        wa.write(b"more")
        await wa.drain()
    wa.close()
    with pytest.raises(ConnectionResetError):
        await wa.wait_closed()
    pair.close()


@run_async
async def test_connect_timeout_is_timeout_error_with_etimedout():
    la, lb = DgramLink.pair()                            # nobody reads lb: a black hole
    fast = TcpConfig(initial_rto=0.05, min_rto=0.05, syn_retries=2)
    A = AsyncStack(Stack([f"{A_ADDR}/24"], secret=b"x", config=fast), la)
    with pytest.raises(TimeoutError) as e:
        await A.open_connection(B_ADDR, 80)
    assert e.value.errno == errno.ETIMEDOUT
    A.close()
    la.close()
    lb.close()


@run_async
async def test_keepalive_timeout_reaches_the_reader():
    ka = TcpConfig(keepalive=True, keepalive_idle=0.1, keepalive_interval=0.05, keepalive_count=2)
    pair = AioPair(config=ka)
    (ra, wa), (rb, wb) = await pair.streams()
    pair.B.close()                                       # B goes silent: probes go unanswered
    with pytest.raises(TimeoutError) as e:
        async with asyncio.timeout(5):
            await ra.read(10)
    assert e.value.errno == errno.ETIMEDOUT
    pair.close()


@run_async
async def test_cancelled_connect_is_aborted():
    la, lb = DgramLink.pair()
    A = AsyncStack(Stack([f"{A_ADDR}/24"], secret=b"x"), la)
    task = asyncio.create_task(A.open_connection(B_ADDR, 80))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _settle(lambda: not A.stack.conns)             # no SYN-SENT left behind
    A.close()
    la.close()
    lb.close()


@run_async
async def test_protocol_api_and_ephemeral_server_port():
    pair = await AioPair().start()
    events = []
    done = asyncio.get_running_loop().create_future()

    class Proto(asyncio.Protocol):
        def connection_made(self, transport):
            events.append("made")
            self.t = transport

        def data_received(self, data):
            events.append(data)
            self.t.write(data.upper())

        def eof_received(self):
            events.append("eof")
            self.t.close()
            return True

        def connection_lost(self, exc):
            events.append(("lost", exc))
            done.set_result(None)

    server = await pair.B.create_server(Proto, B_ADDR, 0)
    assert 32768 <= server.port <= 60999
    reader, writer = await pair.A.open_connection(B_ADDR, server.port)
    writer.write(b"abc")
    assert await reader.readexactly(3) == b"ABC"
    writer.write_eof()
    assert await reader.read() == b""
    async with asyncio.timeout(5):
        await done
    assert events == ["made", b"abc", "eof", ("lost", None)]
    writer.close()
    await writer.wait_closed()
    server.close()
    pair.close()


@run_async
async def test_idle_stack_does_not_spin():
    pair = AioPair()
    (ra, wa), (rb, wb) = await pair.streams()
    wa.write(b"x")
    assert await rb.readexactly(1) == b"x"
    await asyncio.sleep(0.1)                             # delayed ACK and friends settle
    before = pair.A.pumps + pair.B.pumps
    await asyncio.sleep(0.2)
    assert pair.A.pumps + pair.B.pumps - before <= 2     # nothing due: no wake-ups
    # one timer handle per stack, never later than the stack's own deadline (when the deadline
    # moves later the earlier handle is kept: it wakes once for nothing and arms the new one)
    for s in (pair.A, pair.B):
        t = s.stack.next_timer()
        assert t is None or (s._deadline is not None and s._deadline <= t)
        assert (s._timer is None) == (s._deadline is None)
    for w in (wa, wb):
        w.close()
    pair.close()


@run_async
async def test_write_buffer_limits_and_write_after_eof():
    pair = AioPair(config=TcpConfig(snd_buf=8192))
    (ra, wa), (rb, wb) = await pair.streams()
    t = wa.transport
    assert t.get_write_buffer_limits() == (0, 0)
    t.set_write_buffer_limits(high=100_000)
    assert t.get_write_buffer_limits() == (25_000, 100_000)
    wa.write(b"z" * 50_000)                              # 8 KiB fit in the send buffer
    assert 0 < t.get_write_buffer_size() <= 50_000 - 8192
    assert not wa.transport._protocol_paused            # under the high-water mark
    wa.write_eof()
    with pytest.raises(RuntimeError):
        wa.write(b"late")
    got = await rb.read()                                 # everything, then EOF
    assert got == b"z" * 50_000
    for w in (wa, wb):
        w.close()
    pair.close()


@run_async
async def test_a_timer_kept_early_wakes_once_and_rearms_at_the_deadline():
    pair = AioPair()
    (ra, wa), (rb, wb) = await pair.streams()
    s = pair.A
    loop = asyncio.get_running_loop()
    s._rearm(loop.time() + 0.05)                         # as if a deadline had moved later since
    early = s._deadline
    await asyncio.sleep(0.15)
    assert s._deadline is None or s._deadline > early    # it fired, and what is armed now is ...
    t = s.stack.next_timer()
    assert t is None or (s._deadline is not None and s._deadline <= t)   # ... no later than due
    before = s.pumps
    await asyncio.sleep(0.1)
    assert s.pumps - before <= 1                         # and no spinning
    for w in (wa, wb):
        w.close()
    pair.close()


@run_async
async def test_a_transport_hands_over_what_came_before_it_at_once():
    """Data and FIN that reached the stack before the server accepted: the new transport passes
    them on right after connection_made, inside start_serving(), not at a later loop pass."""
    pair = await AioPair().start()
    events = []

    class Proto(asyncio.Protocol):
        def connection_made(self, transport):
            events.append("made")

        def data_received(self, data):
            events.append(data)

        def eof_received(self):
            events.append("eof")
            return True

    server = await pair.B.create_server(Proto, B_ADDR, 5001, start_serving=False)
    reader, writer = await pair.A.open_connection(B_ADDR, 5001)
    writer.write(b"abc")
    writer.write_eof()
    lst = server.listener
    await _settle(lambda: lst.accept_queue and lst.accept_queue[0].state is State.CLOSE_WAIT)
    assert events == []
    await server.start_serving()
    assert events == ["made", b"abc", "eof"]
    writer.close()
    server.close()
    pair.close()
