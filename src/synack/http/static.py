"""Static files from a directory: GET and HEAD, conditional requests, single byte ranges.

* Content-Type from ``mimetypes`` (text types get ``charset=utf-8``), Content-Length,
  Last-Modified and a validator ETag (RFC 9110 §8.8);
* If-None-Match, else If-Modified-Since -> 304 (RFC 9110 §13.1.2, §13.1.3, evaluated in the
  order of §13.2.2);
* Range: one byte range -> 206 with Content-Range, an unsatisfiable one -> 416 with
  ``Content-Range: bytes */size`` (RFC 9110 §14); several ranges are answered with the whole
  file (200), which §14.2 allows; If-Range is honoured;
* a directory: its ``index.html``, else a listing if ``listing=True``, else 403; a directory
  named without its trailing slash is redirected (301) to it;
* traversal is refused (403): a ``..`` segment, an encoded ``/`` or ``\\`` or NUL in a segment,
  or a path (after symlinks) that leaves the root;
* small files (up to ``SMALL`` bytes) are kept in memory with their headers, found by the
  request's path; each request still walks the path with one ``lstat`` per segment, as an
  uncached request does, and serves the copy only if no segment is a symlink now and the file's
  inode, size, mtime and ctime are what they were when it was read. A file whose ctime is less
  than ``RACY`` seconds old is not kept: a second write within the file system's timestamp
  granularity could leave all four the same (git's "racy clean" problem).
"""

from __future__ import annotations

import email.utils
import functools
import html
import mimetypes
import os
import stat
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, unquote

from synack.http.server import Request, Response, http_date

CHUNK = 65536
SMALL = 65536          # files up to this size are read at once and sent as bytes
ALLOW = "GET, HEAD"
CACHE_FILES = 1024     # small files kept in memory (see the module docstring) ...
CACHE_BYTES = 16 << 20  # ... and their bytes at most
RACY = 3.0             # seconds: a file changed more recently than this is read afresh each time


class _Cached:
    """A small file as read: the paths its lookup lstats (root/a, root/a/b, ...), the identity
    it had (inode, device, size, mtime, ctime), its headers and its bytes."""
    __slots__ = ("chain", "ident", "meta", "data")

    def __init__(self, chain: tuple[str, ...], ident: tuple, meta: "_Meta", data: bytes) -> None:
        self.chain, self.ident, self.meta, self.data = chain, ident, meta, data


class _Meta:
    """What a file's responses say of it, from one stat."""
    __slots__ = ("size", "mtime", "etag", "ctype", "validators", "full")

    def __init__(self, path: str | os.PathLike, st: os.stat_result) -> None:
        self.size = st.st_size
        self.mtime = int(st.st_mtime)
        self.etag = f'"{st.st_mtime_ns:x}-{self.size:x}"'
        self.ctype, enc = _content_type(os.path.basename(path))
        # a 304 carries these; a 200 or 206 has Content-Type first
        self.validators = [("last-modified", http_date(self.mtime)), ("etag", self.etag),
                           ("accept-ranges", "bytes")]
        if enc:
            self.validators.append(("content-encoding", enc))
        self.full = [("content-type", self.ctype), *self.validators]


def _ident(st: os.stat_result) -> tuple:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StaticFiles:
    """``await StaticFiles(root)(request)`` -> ``Response``. ``prefix`` is stripped from the
    path first (e.g. "/files")."""

    def __init__(self, root: str | os.PathLike, *, listing: bool = False, index: str = "index.html",
                 prefix: str = "") -> None:
        self.root = Path(root).resolve(strict=True)
        if not self.root.is_dir():
            raise NotADirectoryError(f"{root}: not a directory")
        self._root = str(self.root)             # the per-request checks work on strings (pathlib
        self._under = self._root.rstrip(os.sep) + os.sep   # objects cost more than the I/O here)
        self.listing = listing
        self.index = index
        self.prefix = prefix.rstrip("/")
        self._cache: dict[str, _Cached] = {}    # path after the prefix -> the file as read
        self._cached_bytes = 0

    async def __call__(self, req: Request) -> Response:
        if req.method not in ("GET", "HEAD"):
            return Response.error(405, f"{req.method} is not allowed here", [("allow", ALLOW)])
        raw = req.raw_path
        if self.prefix:
            if not (raw == self.prefix or raw.startswith(self.prefix + "/")):
                return Response.error(404)
            raw = raw[len(self.prefix):] or "/"
        hit = self._cache.get(raw)
        if hit is not None:
            if self._still_valid(hit):
                return self._respond(req, hit.meta, hit.data, None)
            self._forget(raw)
        parts = self.segments(raw)
        if parts is None:
            return Response.error(403, "path traversal refused")
        found = self._lookup(parts)
        if isinstance(found, Response):
            return found
        real, st, plain = found
        if plain and req.method == "GET" and stat.S_ISREG(st.st_mode) and st.st_size <= SMALL:
            cached = self._remember(raw, parts, real, st)
            if cached is not None:
                return self._respond(req, cached.meta, cached.data, None)
        if stat.S_ISDIR(st.st_mode):
            if not req.raw_path.endswith("/"):
                loc = req.raw_path + "/" + (f"?{req.query}" if req.query else "")
                return Response(301, [("location", loc), ("content-type", "text/plain; charset=utf-8")],
                                b"301 Moved Permanently\n")
            idx = Path(real) / self.index
            if self.index and idx.is_file():
                try:
                    return self.file(req, idx.resolve(strict=True), idx.stat())
                except OSError:
                    return Response.error(404)
            if self.listing:
                return self.list_dir(req, Path(real))
            return Response.error(403, "directory listing is off")
        if not stat.S_ISREG(st.st_mode):
            return Response.error(404)
        return self.file(req, real, st)

    def _lookup(self, parts: list[str]) -> tuple[str, os.stat_result, bool] | Response:
        """The real path of root/parts, its stat and whether no segment is a symlink (then the
        path is root/parts as it is), or the error response. The root is real
        (resolved once); when no segment below it is a symlink, root/parts is the real path and
        one lstat per segment says so (the last one is the file's stat). A symlink anywhere
        takes the full ``realpath`` and the check that the result stays under the root."""
        cur = self._root
        try:
            for p in parts:
                cur = os.path.join(cur, p)
                st = os.lstat(cur)
                if stat.S_ISLNK(st.st_mode):
                    break
            else:
                return cur, os.stat(cur) if not parts else st, True
        except OSError:
            return Response.error(404)
        target = os.path.join(self._root, *parts)
        try:
            real = os.path.realpath(target, strict=True)   # what Path.resolve(strict=True) does
        except (FileNotFoundError, NotADirectoryError):
            return Response.error(404)
        except (OSError, RuntimeError):                 # symlink loop, permissions
            return Response.error(404)
        if real != self._root and not real.startswith(self._under):
            return Response.error(403, "path traversal refused")
        try:
            return real, os.stat(real), False
        except OSError:
            return Response.error(404)

    # ------------------------------------------------------------------ the small-file cache

    def _still_valid(self, e: _Cached) -> bool:
        """The lookup's lstat walk again: no segment a symlink now, the file what it was."""
        try:
            for path in e.chain:
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    return False
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and _ident(st) == e.ident

    def _remember(self, raw: str, parts: list[str], real: str, st: os.stat_result) -> _Cached | None:
        """Read the file and keep it, unless it changed too recently to be told apart from its
        next version (``RACY``) or changed while being read. None: not kept."""
        if time.time() - st.st_ctime < RACY:
            return None
        try:
            data = _read_small(real, 0, st.st_size)
        except OSError:
            return None
        if len(data) != st.st_size:
            return None
        chain, cur = [], self._root
        for p in parts:
            cur = os.path.join(cur, p)
            chain.append(cur)
        e = _Cached(tuple(chain), _ident(st), _Meta(real, st), data)
        while self._cache and (len(self._cache) >= CACHE_FILES or self._cached_bytes + len(data) > CACHE_BYTES):
            self._forget(next(iter(self._cache)))          # the oldest entry
        self._cache[raw] = e
        self._cached_bytes += len(data)
        return e

    def _forget(self, raw: str) -> None:
        e = self._cache.pop(raw, None)
        if e is not None:
            self._cached_bytes -= len(e.data)

    @staticmethod
    def segments(raw_path: str) -> list[str] | None:
        """The path's segments, percent-decoded; None if any would leave the root or is unsafe."""
        out: list[str] = []
        for seg in raw_path.split("/"):
            try:
                s = unquote(seg, errors="strict")
            except UnicodeDecodeError:
                return None
            if s in ("", "."):
                continue
            if s == ".." or "/" in s or "\\" in s or "\0" in s:
                return None
            out.append(s)
        return out

    # ------------------------------------------------------------------ files

    def file(self, req: Request, path: str | os.PathLike, st: os.stat_result) -> Response:
        return self._respond(req, _Meta(path, st), None, path)

    def _respond(self, req: Request, meta: _Meta, data: bytes | None, path: str | os.PathLike | None) -> Response:
        """The response for a file: ``data`` is its whole content when it is held in memory,
        else it is read from ``path``."""
        size, mtime, etag = meta.size, meta.mtime, meta.etag
        inm = ims = rng = if_range = None
        for k, v in req.headers:
            if k == "if-none-match":
                inm = v if inm is None else inm
            elif k == "if-modified-since":
                ims = v if ims is None else ims
            elif k == "range":
                rng = v if rng is None else rng
            elif k == "if-range":
                if_range = v if if_range is None else if_range
        # RFC 9110 §13.2.2: If-None-Match, else If-Modified-Since (GET and HEAD only)
        if inm is not None:
            if _etag_matches(inm, etag):
                return Response(304, list(meta.validators))
        elif ims is not None:
            since = _parse_date(ims)
            if since is not None and mtime <= since:
                return Response(304, list(meta.validators))
        headers = list(meta.full)
        start, end = 0, size                     # [start, end)
        status = 200
        if rng is not None and req.method == "GET" and _if_range_ok(if_range, etag, mtime):
            r = parse_range(rng, size)
            if r == "unsatisfiable":
                return Response(416, [("content-range", f"bytes */{size}"),
                                      ("content-type", "text/plain; charset=utf-8")],
                                b"416 Range Not Satisfiable\n")
            if isinstance(r, tuple):
                start, end = r
                status = 206
                headers.append(("content-range", f"bytes {start}-{end - 1}/{size}"))
        length = end - start
        if data is not None:
            if req.method == "HEAD":
                return Response(status, headers, (), length=length)
            return Response(status, headers, data if length == size else data[start:end])
        if length <= SMALL and req.method == "GET":
            # One pread for a small file, sent as bytes: no generator, no buffered file object
            # (io.open costs an fstat, an ioctl and a seek besides the open). A file that
            # changed size since the stat gives what is there, and Content-Length says so.
            try:
                data = _read_small(path, start, length)
            except OSError:
                return Response.error(404)
            return Response(status, headers, data)
        return Response(status, headers, _reader(path, start, length), length=length)

    def list_dir(self, req: Request, path: Path) -> Response:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            return Response.error(403)
        title = html.escape(req.path)
        rows = []
        if req.path != "/":
            rows.append('<li><a href="../">../</a></li>')
        for e in entries:
            name = e.name + ("/" if e.is_dir() else "")
            rows.append(f'<li><a href="{quote(name)}">{html.escape(name)}</a></li>')
        page = (f"<!doctype html><meta charset='utf-8'><title>Index of {title}</title>"
                f"<h1>Index of {title}</h1><ul>\n" + "\n".join(rows) + "\n</ul>\n")
        return Response.html(page)


def parse_range(value: str, size: int) -> tuple[int, int] | str | None:
    """One byte range of RFC 9110 §14.1.2 as ``(start, end)``, end exclusive; ``"unsatisfiable"``
    (-> 416); None when the field is malformed, has several ranges or another unit (-> ignore
    it, send the whole representation)."""
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or not spec or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if first == "":
        if not last.isdigit():
            return None
        n = int(last)                          # suffix range: the last n bytes
        if n == 0 or size == 0:
            return "unsatisfiable"
        return (max(size - n, 0), size)
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    a = int(first)
    if last and int(last) < a:
        return None                            # invalid: ignored (§14.1.1)
    if a >= size:
        return "unsatisfiable"
    b = int(last) if last else size - 1
    return (a, min(b, size - 1) + 1)


@functools.lru_cache(maxsize=1024)
def _content_type(name: str) -> tuple[str, str | None]:
    """Content-Type and Content-Encoding for a file name. (Cached: ``mimetypes.guess_type``
    parses the name anew each time, and a server asks for the same few names again and again.)"""
    ctype, enc = mimetypes.guess_type(name)
    if ctype is None:
        ctype = "application/octet-stream"
    elif ctype.startswith("text/") or ctype in ("application/javascript", "application/json", "image/svg+xml"):
        ctype += "; charset=utf-8"
    return ctype, enc


def _read_small(path: str | os.PathLike, offset: int, length: int) -> bytes:
    """``length`` bytes from ``offset`` (fewer if the file is shorter now), with os calls only."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts = []
        while length > 0:
            chunk = os.pread(fd, length, offset)
            if not chunk:
                break
            parts.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)
    finally:
        os.close(fd)


def _reader(path: str | os.PathLike, offset: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


def _parse_date(value: str) -> int | None:
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return int(dt.timestamp())


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §8.8.3.2), as If-None-Match uses."""
    if header.strip() == "*":
        return True
    mine = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == mine for t in header.split(","))


def _if_range_ok(value: str | None, etag: str, mtime: int) -> bool:
    """RFC 9110 §13.1.5: honour Range only if the validator still matches (strong comparison)."""
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"'):
        return value == etag
    if value.startswith("W/"):
        return False
    d = _parse_date(value)
    return d is not None and d == mtime


__all__ = ["StaticFiles", "parse_range"]
