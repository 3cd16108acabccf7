"""StaticFiles' small-file cache: a copy is served only while the file (and every segment of
its path) is what it was when it was read; any change is seen by the next request."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from http_helpers import SECRET_TEXT, make_site
from synack.http import static
from synack.http.server import Request
from synack.http.static import StaticFiles


def _get(files: StaticFiles, path: str, method: str = "GET", headers=()):
    req = Request(method=method, target=path, raw_path=path, path=path, query="", headers=list(headers),
                  http_version="1.1", body=b"", number=1, peername=None, sockname=None)
    return asyncio.run(files(req))


@pytest.fixture
def reads(monkeypatch):
    """Count the file reads; the files the tests make are seconds old at most, so let the cache
    keep them (``RACY`` 0) except where a test says otherwise."""
    monkeypatch.setattr(static, "RACY", 0.0)
    calls = []
    real = static._read_small

    def counting(path, offset, length):
        calls.append(str(path))
        return real(path, offset, length)
    monkeypatch.setattr(static, "_read_small", counting)
    return calls


def test_a_cached_file_is_served_without_reading_it_again(tmp_path, reads):
    files = StaticFiles(make_site(tmp_path))
    first = _get(files, "/sub/a.css")
    assert first.status == 200 and first.body == b"body{color:red}\n" and len(reads) == 1
    again = _get(files, "/sub/a.css")
    assert again.body == first.body and again.headers == first.headers and len(reads) == 1
    head = _get(files, "/sub/a.css", method="HEAD")
    assert head.status == 200 and head.length == len(first.body) and head.headers == first.headers
    part = _get(files, "/sub/a.css", headers=[("range", "bytes=5-9")])
    assert part.status == 206 and part.body == b"color" and ("content-range", "bytes 5-9/16") in part.headers
    etag = dict(first.headers)["etag"]
    assert _get(files, "/sub/a.css", headers=[("if-none-match", etag)]).status == 304
    assert len(reads) == 1


def test_a_file_changed_in_place_is_read_again(tmp_path, reads):
    root = make_site(tmp_path)
    files = StaticFiles(root)
    path = root / "hello.txt"
    assert _get(files, "/hello.txt").body == b"hello, world\n"
    st = os.stat(path)
    with open(path, "r+b") as f:                      # same size, same inode
        f.write(b"HELLO")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))   # the old mtime put back: only ctime moves
    while os.stat(path).st_ctime_ns == st.st_ctime_ns:    # (file times move in ticks of a coarse
        time.sleep(0.001)                                  # clock: wait for the next one)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = _get(files, "/hello.txt")
    assert r.body == b"HELLO, world\n" and len(reads) == 2


def test_a_file_replaced_by_rename_is_read_again(tmp_path, reads):
    root = make_site(tmp_path)
    files = StaticFiles(root)
    assert _get(files, "/hello.txt").body == b"hello, world\n"
    (root / "new.txt").write_text("howdy, world\n")    # same size, a new inode
    os.replace(root / "new.txt", root / "hello.txt")
    assert _get(files, "/hello.txt").body == b"howdy, world\n"


def test_a_removed_file_is_404(tmp_path, reads):
    root = make_site(tmp_path)
    files = StaticFiles(root)
    assert _get(files, "/sub/a.css").status == 200
    (root / "sub" / "a.css").unlink()
    assert _get(files, "/sub/a.css").status == 404


def test_a_segment_turned_into_a_symlink_out_of_the_root_is_refused(tmp_path, reads):
    root = make_site(tmp_path)
    files = StaticFiles(root)
    assert _get(files, "/sub/a.css").status == 200
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "a.css").write_bytes(SECRET_TEXT)
    os.rename(root / "sub", tmp_path / "old-sub")
    os.symlink(tmp_path / "elsewhere", root / "sub")
    r = _get(files, "/sub/a.css")
    assert r.status == 403 and SECRET_TEXT not in r.body


def test_a_file_changed_just_now_is_read_each_time(tmp_path, reads, monkeypatch):
    """With the real ``RACY``: a file written a moment ago could be rewritten within the same
    timestamp tick at the same size, leaving inode, size, mtime and ctime all as they were, so
    it is not kept; each request reads it."""
    monkeypatch.setattr(static, "RACY", 3.0)
    root = make_site(tmp_path)
    files = StaticFiles(root)
    path = root / "hello.txt"
    assert time.time() - os.stat(path).st_ctime < 3.0
    assert _get(files, "/hello.txt").body == b"hello, world\n"
    with open(path, "r+b") as f:                      # same size, maybe the same ctime and mtime
        f.write(b"HELLO")
    assert _get(files, "/hello.txt").body == b"HELLO, world\n"
    assert len(reads) == 2 and not files._cache


def test_the_cache_is_bounded(tmp_path, reads, monkeypatch):
    monkeypatch.setattr(static, "CACHE_FILES", 2)
    root = make_site(tmp_path)
    files = StaticFiles(root)
    for name in ("/hello.txt", "/index.html", "/sub/a.css"):
        assert _get(files, name).status == 200
    assert len(files._cache) == 2 and "/hello.txt" not in files._cache       # the oldest went
    monkeypatch.setattr(static, "CACHE_BYTES", 20)
    assert _get(files, "/hello.txt").status == 200
    assert files._cached_bytes <= 20 and list(files._cache) == ["/hello.txt"]
