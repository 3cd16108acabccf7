"""``synack.http.server._read_within``: ``asyncio.timeout`` around a read, written out (it runs
twice per close-mode request). The same outcomes as ``async with asyncio.timeout(s): await
reader.read(n)``: the data, ``TimeoutError`` when the time is up, a cancellation from elsewhere
stays a cancellation."""

import asyncio

import pytest

from synack.http.server import _read_within


async def _reference(reader: asyncio.StreamReader, seconds: float) -> bytes:
    async with asyncio.timeout(seconds):
        return await reader.read(65536)


@pytest.mark.parametrize("read", [_read_within, _reference])
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
        assert not asyncio.get_running_loop()._scheduled or all(
            h.cancelled() for h in asyncio.get_running_loop()._scheduled)   # no timer left armed
    asyncio.run(main())


@pytest.mark.parametrize("read", [_read_within, _reference])
def test_a_cancel_from_elsewhere_is_not_a_timeout(read):
    async def main():
        r = asyncio.StreamReader()
        t = asyncio.ensure_future(read(r, 5.0))
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
    asyncio.run(main())


@pytest.mark.parametrize("read", [_read_within, _reference])
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
