"""``synack.http.stream.ServerStream``: the reader/writer pair of the server in one protocol
object, with asyncio's stream semantics for what the server uses (the server's own tests run it
on both TCPs; these drive it with a recording transport)."""

from __future__ import annotations

import asyncio

import pytest

from synack.http.stream import ServerStream


class FakeTransport:
    def __init__(self) -> None:
        self.calls: list = []
        self.closing = False

    def pause_reading(self) -> None:
        self.calls.append("pause_reading")

    def resume_reading(self) -> None:
        self.calls.append("resume_reading")

    def write(self, data) -> None:
        self.calls.append(("write", bytes(data)))

    def write_eof(self) -> None:
        self.calls.append("write_eof")

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.calls.append("close")

    def abort(self) -> None:
        self.closing = True
        self.calls.append("abort")

    def get_extra_info(self, name, default=None):
        return {"peername": ("192.0.2.1", 1234)}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0


def _stream(limit: int = 16):
    started = []

    async def cb(reader, writer):
        started.append((reader, writer))
    s = ServerStream(cb, asyncio.get_running_loop(), limit)
    t = FakeTransport()
    s.connection_made(t)
    return s, t, started


def test_read_gives_what_arrived_in_order_and_then_eof():
    async def main():
        s, t, started = _stream()
        await asyncio.sleep(0)
        assert started == [(s, s)]                       # the callback runs as a task
        chunk = b"GET / HTTP/1.1\r\n"
        s.data_received(chunk)
        assert await s.read(100) is chunk                # handed over as it came, no copy
        s.data_received(b"abc")
        s.data_received(b"defg")
        assert await s.read(5) == b"abcde"               # across two deliveries
        assert await s.read(5) == b"fg"
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, s.data_received, b"late")
        assert await s.read(2) == b"la"                  # waits for data
        assert await s.read(10) == b"te"
        loop.call_later(0.01, s.eof_received)
        assert await s.read(10) == b""                   # waits for EOF
        assert await s.read(10) == b""
        assert s.eof_received() is True                  # the transport stays open: half-close
    asyncio.run(main())


def test_a_lost_connection_wakes_the_reader_with_its_error_and_drain_raises():
    async def main():
        s, t, _ = _stream()
        r = asyncio.ensure_future(s.read(10))
        await asyncio.sleep(0)
        s.connection_lost(ConnectionResetError("reset by peer"))
        with pytest.raises(ConnectionResetError, match="reset by peer"):
            await r
        with pytest.raises(ConnectionResetError):
            await s.read(10)
        assert isinstance(s.exception(), ConnectionResetError)
        with pytest.raises(ConnectionResetError):
            await s.drain()
    asyncio.run(main())


def test_a_clean_close_is_eof_and_drain_then_says_connection_lost():
    async def main():
        s, t, _ = _stream()
        s.data_received(b"tail")
        s.connection_lost(None)
        assert await s.read(10) == b"tail" and await s.read(10) == b""
        with pytest.raises(ConnectionResetError, match="Connection lost"):
            await s.drain()
    asyncio.run(main())


def test_reading_pauses_beyond_twice_the_limit_and_resumes_at_the_limit():
    async def main():
        s, t, _ = _stream(limit=16)
        s.data_received(b"x" * 20)
        s.data_received(b"y" * 12)
        assert "pause_reading" not in t.calls            # 32 bytes: not beyond 2 * 16
        s.data_received(b"z")
        assert t.calls == ["pause_reading"]
        assert await s.read(10) == b"x" * 10             # 23 wait: still paused
        assert t.calls == ["pause_reading"]
        assert await s.read(10) == b"x" * 10             # 13 wait: resumed
        assert t.calls == ["pause_reading", "resume_reading"]
        assert await s.read(100) == b"y" * 12 + b"z"
    asyncio.run(main())


def test_writing_passes_through_and_drain_waits_while_paused():
    async def main():
        s, t, _ = _stream()
        s.write(b"hello")
        s.write_eof()
        assert s.can_write_eof() and s.get_extra_info("peername") == ("192.0.2.1", 1234)
        assert s.transport is t and t.calls == [("write", b"hello"), "write_eof"]
        await s.drain()                                  # not paused: returns at once
        s.pause_writing()
        d = asyncio.ensure_future(s.drain())
        await asyncio.sleep(0.01)
        assert not d.done()
        s.resume_writing()
        await asyncio.wait_for(d, 1)
        assert not s.is_closing()
        s.close()
        assert s.is_closing() and t.calls[-1] == "close"
    asyncio.run(main())


def test_handle_still_serves_asyncio_start_server_streams():
    """``HttpServer.handle`` as ``asyncio.start_server``'s callback (StreamReader/StreamWriter)."""
    from synack.http.server import HttpServer, Response

    async def app(req):
        return Response.text(200, f"hi {req.path}\n")

    async def main():
        server = HttpServer(app)
        srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(r.read(), 5)
        assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"hi /x\n")
        w.close()
        srv.close()
        await srv.wait_closed()
    asyncio.run(main())


def _hi_server_stream(config=None):
    """An HttpServer answering "hi" and a ServerStream of it (deferred start) over a
    FakeTransport, connection made: (server, stream, transport). Call in a running loop."""
    from synack.http.server import HttpServer, Response

    async def app(req):
        return Response.text(200, "hi\n")

    server = HttpServer(app, config)
    s = ServerStream(server.handle, asyncio.get_running_loop(), 1024, server._made)
    t = FakeTransport()
    s.connection_made(t)
    return server, s, t


def test_a_deferred_start_waits_for_input_and_shutdown_between_input_and_handler_is_quiet():
    """With ``made`` the task starts at the first input, not at connection_made; a shutdown of
    the server after that input but before the handler ran closes the connection as an idle
    one (no response), as cancelling an idle handler's read did."""
    async def main():
        server, s, t = _hi_server_stream()
        await asyncio.sleep(0)
        assert not s.started and server.stats["connections"] == 1 and len(server.conns) == 1
        s.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.started
        assert await server.shutdown(grace=1.0) == 0     # before the handler's first step
        for _ in range(3):
            await asyncio.sleep(0)
        assert t.calls == ["close"] and not server.conns and server.stats["requests"] == 0
        assert server.stats["connections"] == 1                 # counted once

        server, s, t = _hi_server_stream()                # the same without the shutdown: served
        s.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for _ in range(3):
            await asyncio.sleep(0)
        assert t.calls[0][0] == "write" and t.calls[0][1].startswith(b"HTTP/1.1 200 ")
        assert server.stats["requests"] == 1
        s.eof_received()
        for _ in range(3):
            await asyncio.sleep(0)
        assert t.calls[-1] == "close" and not server.conns
    asyncio.run(main())


def _served_close_mode(config=None):
    """A server on a ServerStream over a FakeTransport, after one ``Connection: close`` request
    was answered: (server, stream, transport, the handler's task)."""
    async def start():
        server, s, t = _hi_server_stream(config)
        s.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        task = s._task
        for _ in range(3):
            await asyncio.sleep(0)
        assert t.calls[0][0] == "write" and t.calls[0][1].startswith(b"HTTP/1.1 200 ")
        assert t.calls[1:] == ["write_eof"]
        return server, s, t, task
    return start()


def test_the_lingering_close_after_a_close_mode_response_goes_on_without_the_task():
    """HttpServer._linger_detached: the task ends after the response; the stream drops what
    comes (it is not kept for a read), the connection stays known to the server, and the
    peer's FIN closes it, as ``_linger`` (read and drop until EOF, then close) does."""
    async def main():
        server, s, t, task = await _served_close_mode()
        assert task.done() and len(server.conns) == 1
        s.data_received(b"more bytes the client sent")
        assert t.calls[-1] == "write_eof" and not s.read_ready() and len(server.conns) == 1
        s.eof_received()
        assert t.calls[-1] == "close" and not server.conns
        s.connection_lost(None)                           # the end comes once
        assert t.calls.count("close") == 1
    asyncio.run(main())


def test_the_detached_lingering_close_ends_at_its_time_or_after_1_mib_or_at_a_loss():
    from synack.http.server import ServerConfig

    async def main():
        loop = asyncio.get_running_loop()
        server, s, t, task = await _served_close_mode(ServerConfig(linger=0.2))
        t0 = loop.time()
        while t.calls[-1] != "close":
            await asyncio.sleep(0.01)
            assert loop.time() - t0 < 2.0
        assert 0.15 < loop.time() - t0 and not server.conns

        server, s, t, task = await _served_close_mode()
        for _ in range(15):
            s.data_received(b"x" * 65536)                # 15 * 64 KiB: not yet 1 MiB
        assert t.calls[-1] == "write_eof"
        s.data_received(b"x" * 65536)
        assert t.calls[-1] == "close" and not server.conns

        server, s, t, task = await _served_close_mode()
        s.connection_lost(ConnectionResetError())
        assert t.calls[-1] == "close" and not server.conns
    asyncio.run(main())


def test_a_fin_with_the_request_ends_the_lingering_close_at_once():
    async def main():
        server, s, t = _hi_server_stream()
        s.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.eof_received()
        for _ in range(3):
            await asyncio.sleep(0)
        assert [c if isinstance(c, str) else c[0] for c in t.calls] == ["write", "write_eof", "close"]
        assert not server.conns
    asyncio.run(main())


def test_shutdown_waits_for_a_detached_lingering_close_and_aborts_it_after_the_grace():
    async def main():
        loop = asyncio.get_running_loop()
        server, s, t, task = await _served_close_mode()
        loop.call_later(0.1, s.eof_received)
        t0 = loop.time()
        assert await server.shutdown(grace=5.0) == 0
        assert loop.time() - t0 < 1.0 and t.calls[-1] == "close" and not server.conns

        server, s, t, task = await _served_close_mode()
        assert await server.shutdown(grace=0.1) == 1
        assert t.calls[-1] == "abort"
        s.connection_lost(None)                           # as the transport's abort brings
        assert not server.conns and "close" not in t.calls
    asyncio.run(main())
