"""Helpers for the HTTP tests: a site directory, the server on the kernel's TCP (asyncio on
127.0.0.1) or on synack (two stacks over a DgramLink pair, no namespace), and a raw client that
writes bytes and parses what comes back with h11. Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import h11

from synack.http.client import Reply
from synack.http.server import HttpServer, ServerConfig
from synack.testing.aio import bounded_run

TEST_TIMEOUT = 30.0
KINDS = ("kernel", "synack")
A_ADDR, B_ADDR = "192.0.2.1", "192.0.2.2"
SECRET_TEXT = b"this file is outside the site root\n"


def needs_root_or_ci():
    import pytest
    return pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                              reason="needs root (TUN device, network namespaces); runs in CI")


def make_site(base: Path) -> Path:
    """``base/site``: index.html, a text file, a 300 kB binary, a subdirectory without an index,
    a symlink leaving the root; ``base/secret.txt`` outside the root."""
    root = base / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>t</title><h1>index</h1>\n")
    (root / "hello.txt").write_text("hello, world\n")
    (root / "big.bin").write_bytes(random.Random(7).randbytes(300_000))
    (root / "sub" / "a.css").write_text("body{color:red}\n")
    (base / "secret.txt").write_bytes(SECRET_TEXT)
    os.symlink(base / "secret.txt", root / "escape.txt")
    return root


run_async = bounded_run(TEST_TIMEOUT)   # decorator: an ``async def`` test under asyncio.run


class Harness:
    """An ``HttpServer`` on the kernel's TCP or on synack, and a way to open client streams."""

    def __init__(self, kind: str, server: HttpServer) -> None:
        self.kind = kind
        self.server = server
        self.host = ""
        self.port = 0
        self._stacks: list[Any] = []
        self._links: list[Any] = []
        self.client_stack = None
        self.server_stack = None

    async def start(self) -> "Harness":
        if self.kind == "kernel":
            srv = await self.server.listen_kernel("127.0.0.1", 0)
            self.host, self.port = "127.0.0.1", srv.sockets[0].getsockname()[1]
        else:
            from synack.api.aio import AsyncStack
            from synack.http.trace import TraceStore
            from synack.link.dgram import DgramLink
            from synack.stack.host import Stack
            la, lb = DgramLink.pair()
            a = Stack([f"{A_ADDR}/24"], secret=b"http-test-A")
            b = Stack([f"{B_ADDR}/24"], secret=b"http-test-B")
            self.trace = TraceStore().attach(b)
            self.client_stack, self.server_stack = AsyncStack(a, la), AsyncStack(b, lb)
            self._stacks = [self.client_stack, self.server_stack]
            self._links = [la, lb]
            await self.server.listen_synack(self.server_stack, B_ADDR, 80)
            self.host, self.port = B_ADDR, 80
        return self

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.kind == "kernel":
            return await asyncio.open_connection(self.host, self.port)
        return await self.client_stack.open_connection(self.host, self.port)

    async def client(self) -> "RawClient":
        r, w = await self.open()
        return RawClient(r, w)

    async def close(self) -> None:
        await self.server.shutdown(grace=1.0)
        for s in self._stacks:
            s.close()
        for link in self._links:
            link.close()


@contextlib.asynccontextmanager
async def serving(kind: str, app: Callable[..., Awaitable[Any]], config: ServerConfig | None = None,
                  ) -> AsyncIterator[Harness]:
    h = await Harness(kind, HttpServer(app, config)).start()
    try:
        yield h
    finally:
        await h.close()


class RawClient:
    """Writes raw request bytes; parses responses with an h11 client told which methods were
    sent (so HEAD and pipelined responses frame correctly)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h = h11.Connection(h11.CLIENT)
        self.eof = False

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def responses(self, methods: list[str], timeout: float = 10.0) -> list[Reply]:
        """Parse one response per method (fewer if the server closes first)."""
        out: list[Reply] = []
        h = self.h
        for m in methods:
            if h.our_state is h11.DONE and h.their_state is h11.DONE:
                h.start_next_cycle()
            if h.our_state is not h11.IDLE:
                break
            h.send(h11.Request(method=m, target="/", headers=[("host", "x")]))
            h.send(h11.EndOfMessage())
            reply, body = None, bytearray()
            while True:
                ev = h.next_event()
                if ev is h11.NEED_DATA:
                    data = await asyncio.wait_for(self.reader.read(65536), timeout)
                    if not data:
                        self.eof = True
                    h.receive_data(data)
                    continue
                if isinstance(ev, h11.InformationalResponse):
                    continue
                if isinstance(ev, h11.Response):
                    reply = Reply(ev.status_code, [(k.decode(), v.decode()) for k, v in ev.headers])
                elif isinstance(ev, h11.Data):
                    body += ev.data
                elif isinstance(ev, h11.EndOfMessage):
                    reply.body = bytes(body)
                    out.append(reply)
                    break
                elif isinstance(ev, h11.ConnectionClosed):
                    return out
        return out

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server's FIN (or RST) arrives; False if nothing comes within ``timeout``."""
        if self.eof:
            return True
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not data:
                    return True
        except (ConnectionError, OSError):
            return True
        except asyncio.TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


def get(path: str, *extra: str, method: str = "GET") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: x", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
