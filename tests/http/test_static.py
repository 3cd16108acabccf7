"""StaticFiles called directly (no server): the path lookup and the small-file read."""

from __future__ import annotations

import asyncio
import os

from http_helpers import SECRET_TEXT, make_site
from synack.http.server import Request
from synack.http.static import SMALL, StaticFiles


def _get(files: StaticFiles, path: str, method: str = "GET", headers=()):
    req = Request(method=method, target=path, raw_path=path, path=path, query="", headers=list(headers),
                  http_version="1.1", body=b"", number=1, peername=None, sockname=None)
    return asyncio.run(files(req))


def test_symlinks_inside_the_root_are_followed_and_leaving_it_is_refused(tmp_path):
    root = make_site(tmp_path)
    os.symlink(root / "sub", root / "alias")                 # a directory symlink that stays inside
    os.symlink(root / "hello.txt", root / "sub" / "hi.txt")  # a file symlink below a real directory
    os.symlink(tmp_path, root / "up")                        # a directory symlink that leaves
    files = StaticFiles(root)
    assert _get(files, "/alias/a.css").body == b"body{color:red}\n"
    assert _get(files, "/sub/hi.txt").body == b"hello, world\n"
    for path in ("/escape.txt", "/up/secret.txt"):
        r = _get(files, path)
        assert r.status == 403 and SECRET_TEXT not in r.body, path
    assert _get(files, "/nope/x").status == 404
    assert _get(files, "/hello.txt/x").status == 404         # a file used as a directory


def test_small_files_are_bytes_large_ones_stream_and_both_say_their_length(tmp_path):
    root = make_site(tmp_path)
    (root / "edge.bin").write_bytes(b"e" * SMALL)
    (root / "empty").write_bytes(b"")
    files = StaticFiles(root)
    r = _get(files, "/edge.bin")
    assert r.body == b"e" * SMALL and r.length is None        # bytes: the server counts them
    r = _get(files, "/empty")
    assert r.status == 200 and r.body == b""
    r = _get(files, "/big.bin")                              # 300 kB: read in chunks as it is sent
    assert not isinstance(r.body, bytes) and r.length == 300_000
    assert b"".join(r.body) == (root / "big.bin").read_bytes()
    r = _get(files, "/hello.txt", headers=[("range", "bytes=7-")])
    assert r.status == 206 and r.body == b"world\n"
    r = _get(files, "/hello.txt", method="HEAD")
    assert r.length == 13 and dict(r.headers)["content-type"] == "text/plain; charset=utf-8"
