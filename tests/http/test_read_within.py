"""``synack.http.server.ReadTimeouts.read`` (what the server uses: one timer for all its reads):
``asyncio.timeout`` around a read, written out (it runs twice per close-mode request). The same outcomes as ``async with asyncio.timeout(s): await reader.read(n)``: the data,
``TimeoutError`` when the time is up, a cancellation from elsewhere stays a cancellation."""

import asyncio

import pytest

from synack.http.server import ReadTimeouts


async def _reference(reader: asyncio.StreamReader, seconds: float) -> bytes:
    async with asyncio.timeout(seconds):
        return await reader.read(65536)


async def _shared(reader: asyncio.StreamReader, seconds: float) -> bytes:
    return await _SHARED.read(reader, seconds)

_SHARED = ReadTimeouts()        # it starts afresh on each new event loop
READS = [_reference, _shared]


@pytest.mark.parametrize("read", READS)
def test_data_in_time_eof_and_timeout(read):
    async def main():
        r = asyncio.StreamReader()
        asyncio.get_running_loop().call_later(0.01, r.feed_data, b"abc")
        assert await read(r, 5.0) == b"abc"
        with pytest.raises(TimeoutError):
            await read(r, 0.02)
        r.feed_eof()
        assert await read(r, 5.0) == b""
        task = asyncio.current_task()
        assert task.cancelling() == 0               # no cancel request left behind
        armed = [h for h in asyncio.get_running_loop()._scheduled if not h.cancelled()]
        assert len(armed) <= (read is _shared)      # no timer left armed (the shared one: one at most)
    asyncio.run(main())


@pytest.mark.parametrize("read", READS)
def test_a_cancel_from_elsewhere_is_not_a_timeout(read):
    async def main():
        r = asyncio.StreamReader()
        t = asyncio.ensure_future(read(r, 5.0))
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
    asyncio.run(main())


@pytest.mark.parametrize("read", READS)
def test_a_timeout_inside_an_outer_cancel_stays_a_cancel(read):
    async def main():
        r = asyncio.StreamReader()

        async def body():
            asyncio.current_task().cancel()        # an outer cancel is pending when the read starts
            return await read(r, 0.01)
        t = asyncio.ensure_future(body())
        with pytest.raises(asyncio.CancelledError):
            await t
    asyncio.run(main())


def test_shared_timeouts_expire_each_read_at_its_own_deadline():
    """Reads with different timeouts, the later ones started with earlier deadlines: each ends
    with TimeoutError, none before its time, while a read that gets its data is unharmed."""
    async def main():
        loop = asyncio.get_running_loop()
        timeouts = ReadTimeouts()
        ended = {}

        async def one(name, seconds, reader):
            t0 = loop.time()
            try:
                ended[name] = await timeouts.read(reader, seconds)
            except TimeoutError:
                ended[name] = ("timeout", loop.time() - t0 >= seconds - 0.005)
        fed = asyncio.StreamReader()
        loop.call_later(0.03, fed.feed_data, b"data")
        tasks = [asyncio.ensure_future(one("slow", 0.3, asyncio.StreamReader())),
                 asyncio.ensure_future(one("fed", 0.2, fed)),
                 asyncio.ensure_future(one("mid", 0.1, asyncio.StreamReader())),
                 asyncio.ensure_future(one("fast", 0.05, asyncio.StreamReader()))]
        await asyncio.gather(*tasks)
        assert ended == {"slow": ("timeout", True), "mid": ("timeout", True), "fast": ("timeout", True),
                         "fed": b"data"}
        assert all(t.cancelling() == 0 for t in tasks)
    asyncio.run(main())


def test_shared_timeouts_do_not_keep_every_read_that_ended():
    async def main():
        timeouts = ReadTimeouts()
        r = asyncio.StreamReader()
        for _ in range(5000):
            r.feed_data(b"x")
            assert await timeouts.read(r, 30.0) == b"x"
        assert len(timeouts._heap) <= 300
    asyncio.run(main())


def test_call_later_shares_the_heap_with_reads_and_can_be_cancelled():
    """``call_later`` (a new connection's idle timeout before its handler starts): ``fn(arg)``
    at its deadline, in deadline order with the reads' timeouts; a cancelled one never runs."""
    async def main():
        t = ReadTimeouts()
        fired = []
        r = asyncio.StreamReader()
        first = t.call_later(0.05, fired.append, "first")
        dropped = t.call_later(0.01, fired.append, "dropped")
        t.cancel(dropped)
        t.cancel(dropped)                            # twice: no harm
        with pytest.raises(TimeoutError):
            await t.read(r, 0.02)
        assert fired == []
        t.call_later(0.01, fired.append, "second")
        await asyncio.sleep(0.1)
        assert fired == ["second", "first"]          # second: due at ~0.03 s, first at 0.05 s
        assert t._waiting == 0
    asyncio.run(main())
