"""One conformance suite for byte streams, many implementations (STYLE §7).

``await check_stream(make_pair, clogged=None, seed=...)`` runs every check on asyncio stream
pairs; ``make_pair`` is an async callable returning two connected ends, each a
``(StreamReader, StreamWriter)`` pair: ``((reader_a, writer_a), (reader_b, writer_b))``.
``clogged`` makes pairs whose buffers are tiny (a small TCP window, small reader limits) for the
backpressure check; without it that check is skipped. Each check gets fresh pairs and closes
them; a failure raises ``AssertionError`` naming the check and the seed.

The checks (each is also a coroutine of its own, listed in ``CHECKS``):

* ``ordered``: pieces of every size arrive intact and in order, both ways.
* ``both_ways``: 1 MiB each way at the same time, written and read in random (seeded) chunks.
* ``half_close``: after ``write_eof`` the peer reads EOF yet can still send, then closes too.
* ``abort``: ``transport.abort()`` reaches the peer as ``ConnectionResetError``, not as EOF. On a
  kernel socket abort only sends RST with SO_LINGER {1, 0}, so that is set first when there is a
  socket behind the transport.
* ``backpressure``: a writer whose peer does not read ends up blocked in ``drain()`` with a
  bounded amount buffered; once the peer reads, everything arrives.

Run it on synack and on kernel sockets (``kernel_pair``) alike: if the kernel fails a check, the
check is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
import struct
from typing import Any, Awaitable, Callable

End = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Pair = tuple[End, End]
MakePair = Callable[[], Awaitable[Pair]]

DEFAULT_SEED = 20240607


class StreamCheckFailed(AssertionError):
    pass


def _digest(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:16]


async def close_end(end: End, timeout: float = 5.0) -> None:
    """Close one end and wait (bounded) for the transport to finish; errors are ignored."""
    _, w = end
    with contextlib.suppress(Exception):
        w.close()
    with contextlib.suppress(Exception, asyncio.TimeoutError):
        async with asyncio.timeout(timeout):
            await w.wait_closed()


async def close_pair(pair: Pair) -> None:
    await asyncio.gather(close_end(pair[0]), close_end(pair[1]))


def abort_end(end: End) -> None:
    """Abort: RST to the peer (SO_LINGER {1, 0} first if a kernel socket is behind it)."""
    _, w = end
    sock = w.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.transport.abort()


async def _read_all(r: asyncio.StreamReader, rng: random.Random | None = None, max_n: int = 65536) -> bytes:
    buf = bytearray()
    while True:
        n = max_n if rng is None else int(2 ** rng.uniform(0, 16.01))
        d = await r.read(n)
        if not d:
            return bytes(buf)
        buf += d


async def _write_chunks(w: asyncio.StreamWriter, data: bytes, rng: random.Random, eof: bool = True) -> None:
    off = 0
    while off < len(data):
        n = int(2 ** rng.uniform(0, 16.01))
        w.write(data[off:off + n])
        off += n
        await w.drain()
    if eof:
        w.write_eof()


# ============================================================================== the checks


async def check_ordered(make_pair: MakePair, seed: int = DEFAULT_SEED) -> None:
    rng = random.Random(seed)
    pair = await make_pair()
    try:
        for (src_r, src_w), (dst_r, dst_w) in (pair, pair[::-1]):
            pieces = [b"a", b"", b"bc", bytes(range(256)), rng.randbytes(1460), rng.randbytes(1461),
                      rng.randbytes(7), rng.randbytes(70000), b"end"]
            for p in pieces:
                src_w.write(p)
            await src_w.drain()
            want = b"".join(pieces)
            got = await dst_r.readexactly(len(want))
            if got != want:
                raise StreamCheckFailed(f"ordered: {len(want)} bytes sent, {_digest(want)} != {_digest(got)}")
        # a request/response exchange, byte by byte
        (ra, wa), (rb, wb) = pair
        for i in range(20):
            wa.write(bytes([i]))
            if await rb.readexactly(1) != bytes([i]):
                raise StreamCheckFailed("ordered: ping-pong byte mismatch")
            wb.write(bytes([255 - i]))
            if await ra.readexactly(1) != bytes([255 - i]):
                raise StreamCheckFailed("ordered: ping-pong byte mismatch")
    finally:
        await close_pair(pair)


async def check_both_ways(make_pair: MakePair, seed: int = DEFAULT_SEED, size: int = 1 << 20) -> None:
    rng = random.Random(seed)
    ab, ba = rng.randbytes(size), rng.randbytes(size)
    pair = await make_pair()
    (ra, wa), (rb, wb) = pair
    try:
        results = await asyncio.gather(
            _write_chunks(wa, ab, random.Random(seed + 1)),
            _write_chunks(wb, ba, random.Random(seed + 2)),
            _read_all(rb, random.Random(seed + 3)),
            _read_all(ra, random.Random(seed + 4)))
        got_ab, got_ba = results[2], results[3]
        for name, want, got in (("a->b", ab, got_ab), ("b->a", ba, got_ba)):
            if got != want:
                first = next((i for i, (x, y) in enumerate(zip(want, got)) if x != y), min(len(want), len(got)))
                raise StreamCheckFailed(f"both_ways {name} (seed {seed}): sent {len(want)} bytes "
                                        f"{_digest(want)}, got {len(got)} {_digest(got)}, first difference at {first}")
    finally:
        await close_pair(pair)


async def check_half_close(make_pair: MakePair, seed: int = DEFAULT_SEED) -> None:
    rng = random.Random(seed)
    pair = await make_pair()
    (ra, wa), (rb, wb) = pair
    try:
        wa.write(b"ping")
        if not wa.can_write_eof():
            raise StreamCheckFailed("half_close: transport cannot write EOF")
        wa.write_eof()
        got = await _read_all(rb)
        if got != b"ping":
            raise StreamCheckFailed(f"half_close: before EOF got {got!r}")
        if not rb.at_eof():
            raise StreamCheckFailed("half_close: reader not at EOF after reading b''")
        if await rb.read(10) != b"":
            raise StreamCheckFailed("half_close: read after EOF is not b''")
        # the other direction still works
        reply = rng.randbytes(100_000)
        wb.write(reply)
        await wb.drain()
        wb.write_eof()
        got = await _read_all(ra)
        if got != reply:
            raise StreamCheckFailed(f"half_close: after the peer's EOF, {len(reply)} bytes sent, "
                                    f"{len(got)} received ({_digest(reply)} vs {_digest(got)})")
    finally:
        await close_pair(pair)


async def check_abort(make_pair: MakePair, seed: int = DEFAULT_SEED, timeout: float = 10.0) -> None:
    pair = await make_pair()
    (ra, wa), (rb, wb) = pair
    try:
        wa.write(b"x")
        await wa.drain()
        if await rb.readexactly(1) != b"x":
            raise StreamCheckFailed("abort: first byte wrong")
        abort_end(pair[0])
        try:
            async with asyncio.timeout(timeout):
                while True:
                    d = await rb.read(65536)
                    if not d:
                        raise StreamCheckFailed("abort: the peer saw EOF, not a reset")
        except ConnectionResetError:
            pass
        except TimeoutError as e:
            if isinstance(e, ConnectionError) or getattr(e, "errno", None):
                raise
            raise StreamCheckFailed(f"abort: no reset seen within {timeout} s") from None
    finally:
        await close_pair(pair)


async def _wait_stalled(progress: Callable[[], int], done: Callable[[], bool], quiet: float,
                        limit: float) -> bool:
    """Poll until ``progress()`` has not moved for ``quiet`` seconds (True) or ``done()`` (False)."""
    loop = asyncio.get_running_loop()
    last, since, start = progress(), loop.time(), loop.time()
    while loop.time() - start < limit:
        await asyncio.sleep(0.01)
        if done():
            return False
        p = progress()
        if p != last:
            last, since = p, loop.time()
        elif loop.time() - since >= quiet:
            return True
    raise StreamCheckFailed(f"backpressure: the writer never stalled in {limit} s")


async def check_backpressure(clogged: MakePair, seed: int = DEFAULT_SEED, size: int = 1 << 20,
                             max_buffered: int = 512 * 1024, quiet: float = 0.15,
                             on_stalled: Callable[[Pair], Any] | None = None) -> None:
    """``on_stalled(pair)`` may look inside once the writer is blocked (e.g. assert a 0 window)."""
    rng = random.Random(seed)
    data = rng.randbytes(size)
    pair = await clogged()
    (ra, wa), (rb, wb) = pair
    written = 0

    async def writer() -> None:
        nonlocal written
        for off in range(0, len(data), 4096):
            wa.write(data[off:off + 4096])
            await wa.drain()
            written = off + len(data[off:off + 4096])
        wa.write_eof()

    task = asyncio.create_task(writer())
    try:
        stalled = await _wait_stalled(lambda: written, task.done, quiet, 10.0)
        if not stalled:
            raise StreamCheckFailed(f"backpressure: all {size} bytes were written though nobody read")
        if written > max_buffered:
            raise StreamCheckFailed(f"backpressure: {written} bytes accepted before blocking "
                                    f"(limit {max_buffered})")
        if on_stalled is not None:
            r = on_stalled(pair)
            if asyncio.iscoroutine(r):
                await r
        got = await _read_all(rb)
        async with asyncio.timeout(10):
            await task
        if got != data:
            raise StreamCheckFailed(f"backpressure: {size} bytes sent, {len(got)} received")
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await close_pair(pair)


CHECKS: dict[str, Callable[..., Awaitable[None]]] = {
    "ordered": check_ordered,
    "both_ways": check_both_ways,
    "half_close": check_half_close,
    "abort": check_abort,
}


async def check_stream(make_pair: MakePair, clogged: MakePair | None = None, *, seed: int = DEFAULT_SEED,
                       timeout: float = 30.0) -> None:
    """Run every check; each one is bounded by ``timeout`` seconds."""
    for name, check in CHECKS.items():
        await run_check(name, make_pair, seed=seed, timeout=timeout)
    if clogged is not None:
        await run_check("backpressure", clogged, seed=seed, timeout=timeout)


async def run_check(name: str, make_pair: MakePair, *, seed: int = DEFAULT_SEED, timeout: float = 30.0,
                    **kw: Any) -> None:
    """Run one named check (``CHECKS`` keys or "backpressure") within ``timeout`` seconds."""
    check = check_backpressure if name == "backpressure" else CHECKS[name]
    try:
        async with asyncio.timeout(timeout):
            await check(make_pair, seed=seed, **kw)
    except TimeoutError as e:
        if getattr(e, "errno", None):
            raise
        raise StreamCheckFailed(f"{name}: did not finish within {timeout} s (seed {seed})") from None


# ============================================================================ kernel control


async def kernel_pair(host: str = "127.0.0.1", *, bufsize: int | None = None, limit: int = 2 ** 16,
                      high_water: int | None = None) -> Pair:
    """Two connected kernel TCP stream ends over ``host`` (the control for ``check_stream``).
    ``bufsize`` sets SO_RCVBUF/SO_SNDBUF on both sockets (before connecting, so the window is
    small from the start); ``limit`` is the StreamReader limit; ``high_water`` the writers'."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    accepted: asyncio.Future = loop.create_future()

    def small(s: socket.socket) -> socket.socket:
        if bufsize:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
        return s

    lsock = small(socket.socket(family, socket.SOCK_STREAM))
    lsock.bind((host, 0))
    lsock.listen(1)
    lsock.setblocking(False)

    def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if not accepted.done():
            accepted.set_result((r, w))

    server = await asyncio.start_server(on_client, sock=lsock, limit=limit)
    try:
        csock = small(socket.socket(family, socket.SOCK_STREAM))
        csock.setblocking(False)
        await loop.sock_connect(csock, lsock.getsockname()[:2])
        a = await asyncio.open_connection(sock=csock, limit=limit)
        async with asyncio.timeout(5):
            b = await accepted
    finally:
        server.close()                  # stop listening; the accepted connection stays open
    if high_water is not None:
        for _, w in (a, b):
            w.transport.set_write_buffer_limits(high=high_water)
    return a, b


__all__ = ["check_stream", "run_check", "CHECKS", "check_ordered", "check_both_ways", "check_half_close",
           "check_abort", "check_backpressure", "kernel_pair", "abort_end", "close_pair", "close_end",
           "StreamCheckFailed", "DEFAULT_SEED"]
