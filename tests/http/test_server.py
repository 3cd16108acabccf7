"""The h11 server, the same code on two TCPs: the kernel's (asyncio on 127.0.0.1) and synack's
(two stacks over a DgramLink pair, in this process, no namespace). Every test runs on both."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time

import pytest

from http_helpers import KINDS, SECRET_TEXT, get, make_site, run_async, serving
from synack.http.server import Response, ServerConfig
from synack.http.static import StaticFiles, parse_range

pytestmark = pytest.mark.parametrize("kind", KINDS)


@pytest.fixture
def root(tmp_path):
    return make_site(tmp_path)


# ------------------------------------------------------------------ keep-alive, pipelining, HEAD

@run_async
async def test_keep_alive_serves_several_requests_on_one_connection(kind, root):
    async with serving(kind, StaticFiles(root)) as h:
        c = await h.client()
        for path, want in (("/hello.txt", b"hello, world\n"), ("/", (root / "index.html").read_bytes()),
                           ("/big.bin", (root / "big.bin").read_bytes())):
            await c.send(get(path))
            [r] = await c.responses(["GET"])
            assert r.status == 200 and r.body == want
            assert r.header("connection") is None
        await c.close()
        assert h.server.stats["connections"] == 1 and h.server.stats["requests"] == 3


@run_async
async def test_pipelined_requests_are_answered_in_order(kind, root):
    async with serving(kind, StaticFiles(root)) as h:
        c = await h.client()
        await c.send(get("/hello.txt") + get("/big.bin", method="HEAD") + get("/nope") + get("/sub/a.css"))
        rs = await c.responses(["GET", "HEAD", "GET", "GET"])
        assert [r.status for r in rs] == [200, 200, 404, 200]
        assert rs[0].body == b"hello, world\n"
        assert rs[1].body == b"" and rs[1].header("content-length") == "300000"
        assert rs[3].body == b"body{color:red}\n" and rs[3].header("content-type") == "text/css; charset=utf-8"
        await c.close()


@run_async
async def test_head_has_the_headers_of_get_and_no_body(kind, root):
    async with serving(kind, StaticFiles(root)) as h:
        c = await h.client()
        await c.send(get("/hello.txt", method="HEAD") + get("/hello.txt"))
        head, full = await c.responses(["HEAD", "GET"])
        assert head.status == 200 and head.body == b""
        for name in ("content-length", "content-type", "last-modified", "etag"):
            assert head.header(name) == full.header(name)
        assert full.body == b"hello, world\n"
        await c.close()


# ------------------------------------------------------------------ ranges and conditionals

@run_async
async def test_byte_ranges(kind, root):
    data = (root / "big.bin").read_bytes()
    async with serving(kind, StaticFiles(root)) as h:
        c = await h.client()
        cases = [("bytes=0-9", 206, data[:10], "bytes 0-9/300000"),
                 ("bytes=-5", 206, data[-5:], "bytes 299995-299999/300000"),
                 ("bytes=299990-", 206, data[299990:], "bytes 299990-299999/300000"),
                 ("bytes=100-199999999", 206, data[100:], "bytes 100-299999/300000"),
                 ("bytes=0-1,5-6", 200, data, None),              # several ranges: the whole file
                 ("lines=1-2", 200, data, None)]
        for rng, status, body, crange in cases:
            await c.send(get("/big.bin", f"Range: {rng}"))
            [r] = await c.responses(["GET"])
            assert (r.status, r.body, r.header("content-range")) == (status, body, crange), rng
        await c.send(get("/big.bin", "Range: bytes=300000-"))
        [r] = await c.responses(["GET"])
        assert r.status == 416 and r.header("content-range") == "bytes */300000"
        await c.send(get("/big.bin", "Range: bytes=0-3", 'If-Range: "stale"'))
        [r] = await c.responses(["GET"])
        assert r.status == 200 and r.body == data
        await c.close()


def test_parse_range_table(kind):
    assert parse_range("bytes=0-0", 10) == (0, 1)
    assert parse_range("bytes=-0", 10) == "unsatisfiable"
    assert parse_range("bytes=-20", 10) == (0, 10)
    assert parse_range("bytes=5-2", 10) is None
    assert parse_range("bytes=a-b", 10) is None
    assert parse_range("bytes=10-", 10) == "unsatisfiable"


@run_async
async def test_not_modified(kind, root):
    async with serving(kind, StaticFiles(root)) as h:
        c = await h.client()
        await c.send(get("/hello.txt"))
        [r] = await c.responses(["GET"])
        lm, etag = r.header("last-modified"), r.header("etag")
        await c.send(get("/hello.txt", f"If-Modified-Since: {lm}"))
        [r] = await c.responses(["GET"])
        assert r.status == 304 and r.body == b"" and r.header("etag") == etag
        old = email.utils.formatdate(time.time() - 86400 * 365 * 5, usegmt=True)
        (root / "hello.txt").touch()
        await c.send(get("/hello.txt", f"If-Modified-Since: {old}"))
        [r] = await c.responses(["GET"])
        assert r.status == 200
        await c.send(get("/hello.txt", f"If-None-Match: {r.header('etag')}"))
        [r] = await c.responses(["GET"])
        assert r.status == 304
        await c.close()


# ------------------------------------------------------------------ refusals

@run_async
async def test_path_traversal_is_refused(kind, root):
    async with serving(kind, StaticFiles(root)) as h:
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/sub/..%2f..%2fsecret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
                     "/..%5csecret.txt", "/%00", "/escape.txt", "/sub/../../secret.txt"):
            c = await h.client()
            await c.send(get(path))
            [r] = await c.responses(["GET"])
            assert r.status in (403, 404), path
            assert SECRET_TEXT not in r.body, path
            await c.close()


@run_async
async def test_status_codes_400_404_405(kind, root):
    async with serving(kind, StaticFiles(root)) as h:
        c = await h.client()
        await c.send(get("/missing"))
        [r] = await c.responses(["GET"])
        assert r.status == 404
        await c.send(get("/hello.txt", "Content-Length: 0", method="POST"))
        [r] = await c.responses(["POST"])
        assert r.status == 405 and r.header("allow") == "GET, HEAD"
        await c.close()
        for junk in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                     b"GET / HTTP/1.1\r\n\r\n",                           # HTTP/1.1 without Host
                     b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"):
            c = await h.client()
            await c.send(junk)
            [r] = await c.responses(["GET"])
            assert r.status == 400, junk
            assert r.header("connection") == "close"
            assert await c.closed_by_server()
            await c.close()


@run_async
async def test_body_too_large_413(kind, root):
    async def echo(req):
        return Response(200, [("content-type", "application/octet-stream")], req.body)
    async with serving(kind, echo, ServerConfig(max_body=1000)) as h:
        c = await h.client()
        await c.send(get("/", "Content-Length: 5", method="POST") + b"12345")
        [r] = await c.responses(["POST"])
        assert r.status == 200 and r.body == b"12345"
        await c.send(get("/", "Content-Length: 1000000", method="POST") + b"x" * 5000)
        [r] = await c.responses(["POST"])
        assert r.status == 413
        assert await c.closed_by_server()
        await c.close()
        c = await h.client()                                    # chunked: counted while reading
        chunk = b"400\r\n" + b"y" * 1024 + b"\r\n"
        await c.send(get("/", "Transfer-Encoding: chunked", method="POST") + chunk * 2 + b"0\r\n\r\n")
        [r] = await c.responses(["POST"])
        assert r.status == 413
        await c.close()


@run_async
async def test_header_too_large_431(kind, root):
    async with serving(kind, StaticFiles(root), ServerConfig(max_header_bytes=8192, max_headers=50)) as h:
        c = await h.client()
        await c.send(get("/", "X-Big: " + "a" * 20000))
        [r] = await c.responses(["GET"])
        assert r.status == 431
        await c.close()
        c = await h.client()
        await c.send(get("/", *[f"X-H{i}: v" for i in range(60)]))
        [r] = await c.responses(["GET"])
        assert r.status == 431
        await c.close()


# ------------------------------------------------------------------ timeouts and shutdown

@run_async
async def test_slow_client_times_out_while_others_are_served(kind, root):
    cfg = ServerConfig(header_timeout=0.6, idle_timeout=0.8)
    async with serving(kind, StaticFiles(root), cfg) as h:
        loop = asyncio.get_running_loop()
        slow = await h.client()
        t0 = loop.time()
        await slow.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n")          # ...and never the blank line
        for _ in range(3):                                                # others are served meanwhile
            c = await h.client()
            await c.send(get("/hello.txt"))
            [r] = await c.responses(["GET"])
            assert r.status == 200
            await c.close()
        assert loop.time() - t0 < 0.6
        [r] = await slow.responses(["GET"])
        assert r.status == 408
        assert 0.5 < loop.time() - t0 < 3.0
        assert await slow.closed_by_server()
        await slow.close()
        idle = await h.client()                     # a connection that never sends is closed quietly
        t0 = loop.time()
        assert await idle.closed_by_server(timeout=5.0)
        assert 0.7 < loop.time() - t0 < 3.0
        await idle.close()


@run_async
async def test_a_client_that_stops_reading_meets_the_write_timeout(kind, root):
    chunk, n = b"x" * 65536, 1024                        # 64 MiB: far more than any buffer holds

    async def big(req):
        return Response(200, [("content-type", "application/octet-stream")], (chunk for _ in range(n)),
                        length=n * len(chunk))
    async with serving(kind, big, ServerConfig(write_timeout=0.5)) as h:
        c = await h.client()
        await c.send(get("/"))
        await asyncio.sleep(2.0)                         # read nothing: the server's drain() waits
        got = 0
        with contextlib.suppress(ConnectionError, OSError):
            while data := await asyncio.wait_for(c.reader.read(1 << 20), 5):
                got += len(data)
        assert got < n * len(chunk)                      # the server gave up and aborted
        assert h.server.stats["connections"] == 1
        await c.close()


@run_async
async def test_graceful_shutdown_finishes_the_response_in_flight(kind, root):
    started = asyncio.Event()

    async def slow(req):
        if req.path == "/busy":          # not the idle client's request: that one set it too early
            started.set()
        await asyncio.sleep(0.4)
        return Response.text(200, "finished\n")
    async with serving(kind, slow) as h:
        busy = await h.client()
        idle = await h.client()
        await idle.send(get("/"))
        [r] = await idle.responses(["GET"])                # idle now: waiting for its next request
        await busy.send(get("/busy"))
        await asyncio.wait_for(started.wait(), 5)
        t0 = asyncio.get_running_loop().time()
        aborted = await h.server.shutdown(grace=5.0)
        assert aborted == 0
        [r] = await busy.responses(["GET"])
        assert r.status == 200 and r.body == b"finished\n" and r.header("connection") == "close"
        assert await idle.closed_by_server(timeout=2.0)
        assert asyncio.get_running_loop().time() - t0 < 3.0
        with pytest.raises((ConnectionError, OSError, asyncio.TimeoutError)):
            c = await asyncio.wait_for(h.client(), 3)        # no longer accepting
            await c.send(get("/"))
            rs = await c.responses(["GET"], timeout=2)
            if not rs:
                raise ConnectionResetError("closed")
        await busy.close()
        await idle.close()


@run_async
async def test_a_connection_that_never_sent_is_counted_and_closed_quietly_by_shutdown(kind, root):
    """A new connection's handler starts with its first input (HttpServer._made): until then the
    server counts it and ``shutdown()`` closes it as an idle one, with a FIN and nothing else."""
    async with serving(kind, StaticFiles(root)) as h:
        silent = await h.client()
        loop = asyncio.get_running_loop()
        for _ in range(100):
            if h.server.stats["connections"] == 1:
                break
            await asyncio.sleep(0.01)
        assert h.server.stats["connections"] == 1 and len(h.server.conns) == 1
        t0 = loop.time()
        assert await h.server.shutdown(grace=5.0) == 0
        assert await silent.closed_by_server(timeout=2.0)
        assert loop.time() - t0 < 1.0
        assert silent.reader.at_eof() and not h.server.conns
        await silent.close()


@run_async
async def test_a_connection_closed_before_sending_anything_is_handled(kind, root):
    """The handler of a connection whose first input is the client's FIN starts and ends with
    it; the server goes on serving others."""
    async with serving(kind, StaticFiles(root)) as h:
        quiet = await h.client()
        quiet.writer.write_eof()
        assert await quiet.closed_by_server(timeout=3.0)
        await quiet.close()
        c = await h.client()
        await c.send(get("/hello.txt"))
        [r] = await c.responses(["GET"])
        assert r.status == 200
        await c.close()
        for _ in range(100):
            if len(h.server.conns) == 0:
                break
            await asyncio.sleep(0.01)
        assert h.server.stats["connections"] == 2 and not h.server.conns


# ------------------------------------------------------------------ requests parsed once per head

@run_async
async def test_the_same_head_twice_gives_two_requests_each_with_its_own_fields(kind, root):
    """The server remembers what a head parses to; an application that changes one request's
    fields does not change the next request's."""
    seen = []

    async def app(req):
        seen.append((req.number, req.path, req.query, list(req.headers)))
        req.headers.append(("x-added", "by the app"))
        req.headers[0] = ("host", "changed")
        return Response.text(200, "ok\n")
    async with serving(kind, app) as h:
        c = await h.client()
        await c.send(get("/a%20b?q=1", "X-Test: 1") * 2)
        rs = await c.responses(["GET", "GET"])
        assert [r.status for r in rs] == [200, 200]
        await c.close()
    assert seen[0][1:] == seen[1][1:] and seen[0][:2] == (1, "/a b") and seen[1][0] == 2
    assert seen[0][2] == "q=1" and ("x-test", "1") in seen[0][3] and ("x-added", "by the app") not in seen[1][3]
    assert seen[1][3][0][0] == "host" and seen[1][3][0][1] != "changed"


# ------------------------------------------------------------------ directories

@run_async
async def test_directories(kind, root):
    async with serving(kind, StaticFiles(root)) as h:
        c = await h.client()
        await c.send(get("/sub"))
        [r] = await c.responses(["GET"])
        assert r.status == 301 and r.header("location") == "/sub/"
        await c.send(get("/sub/"))
        [r] = await c.responses(["GET"])
        assert r.status == 403                                   # listing is off by default
        await c.close()
    async with serving(kind, StaticFiles(root, listing=True)) as h:
        c = await h.client()
        await c.send(get("/sub/"))
        [r] = await c.responses(["GET"])
        assert r.status == 200 and b'href="a.css"' in r.body
        await c.close()
