"""A small HTTP/1.1 client on h11 over asyncio streams (kernel or synack), for the demo and tests.

    reader, writer = await synack.asyncio.open_connection("192.0.2.1", 8000, stack=astack)
    replies = await fetch(reader, writer, "192.0.2.1", ["/", "/a.txt"])    # one connection
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import h11


@dataclass(slots=True)
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    http_version: str = "1.1"

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), default)


async def fetch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, paths: list[str], *,
                method: str = "GET", headers: list[tuple[str, str]] | None = None,
                timeout: float = 10.0, close: bool = True) -> list[Reply]:
    """Send the requests one after another on this connection (keep-alive); return the replies.
    The last request says ``Connection: close`` when ``close``; the writer is closed at the end.
    Stops early (fewer replies) if the server closes the connection."""
    h = h11.Connection(h11.CLIENT)
    replies: list[Reply] = []
    try:
        for i, path in enumerate(paths):
            hs = [("host", host), ("user-agent", "synack-http-client")] + list(headers or [])
            if close and i == len(paths) - 1:
                hs.append(("connection", "close"))
            writer.write(h.send(h11.Request(method=method, target=path, headers=hs)) + h.send(h11.EndOfMessage()))
            await writer.drain()
            reply = None
            body = bytearray()
            while True:
                ev = h.next_event()
                if ev is h11.NEED_DATA:
                    data = await asyncio.wait_for(reader.read(65536), timeout)
                    h.receive_data(data)
                    continue
                if isinstance(ev, h11.Response):
                    reply = Reply(ev.status_code, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in ev.headers],
                                  http_version=ev.http_version.decode())
                elif isinstance(ev, h11.Data):
                    body += ev.data
                elif isinstance(ev, h11.EndOfMessage):
                    assert reply is not None
                    reply.body = bytes(body)
                    replies.append(reply)
                    break
                elif isinstance(ev, h11.ConnectionClosed):
                    return replies
            if h.our_state is h11.MUST_CLOSE or h.their_state is not h11.DONE:
                break
            h.start_next_cycle()
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), timeout)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass
    return replies


__all__ = ["fetch", "Reply"]
