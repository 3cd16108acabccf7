"""Two synack stacks (192.0.2.1 and 192.0.2.2) joined by a DgramLink pair: real fds, real
event loops, no simulator clock. Every wait in these tests is bounded by a timeout."""

from __future__ import annotations

import asyncio

from synack.api.aio import AsyncStack
from synack.link.dgram import DgramLink
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.testing.aio import bounded_run

A_ADDR, B_ADDR = "192.0.2.1", "192.0.2.2"
TEST_TIMEOUT = 20.0


def make_stacks(config: TcpConfig | None = None) -> tuple[Stack, Stack, DgramLink, DgramLink]:
    la, lb = DgramLink.pair()
    a = Stack([f"{A_ADDR}/24"], secret=b"synack-test-A", config=config)
    b = Stack([f"{B_ADDR}/24"], secret=b"synack-test-B", config=config)
    return a, b, la, lb


run_async = bounded_run(TEST_TIMEOUT)   # decorator: an ``async def`` test under asyncio.run


class AioPair:
    """Both stacks on the running loop; ``await pair.streams()`` gives two connected stream ends
    (client on A, server end on B)."""

    def __init__(self, config: TcpConfig | None = None, limit: int = 2 ** 16) -> None:
        self.config = config
        self.limit = limit
        self.A: AsyncStack | None = None
        self.B: AsyncStack | None = None
        self.server = None
        self._accepted: asyncio.Queue | None = None

    async def start(self) -> "AioPair":
        a, b, la, lb = make_stacks()
        self.links = (la, lb)
        self.A, self.B = AsyncStack(a, la), AsyncStack(b, lb)
        self._accepted = asyncio.Queue()

        async def on_client(r, w):
            await self._accepted.put((r, w))

        self.server = await self.B.start_server(on_client, B_ADDR, 5000, limit=self.limit, config=self.config)
        return self

    async def streams(self):
        if self.A is None:
            await self.start()
        client = await self.A.open_connection(B_ADDR, 5000, limit=self.limit, config=self.config)
        async with asyncio.timeout(5):
            server_end = await self._accepted.get()
        return client, server_end

    __call__ = streams

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for s in (self.A, self.B):
            if s is not None:
                s.close()
        for link in getattr(self, "links", ()):
            link.close()
