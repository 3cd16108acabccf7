"""The JSON-lines event log: one line per record, written as it happens (STYLE.md §8).

``JsonlLog(path)`` is a log sink (a callable taking one record) for the ``log=`` parameter of a
stack or connection. The first line is a header; every other line is one record from
``synack.tcp.events`` turned into a JSON object by ``record_to_dict``. Each line goes out in one
``write`` and is flushed at once, so a crash loses nothing already logged. ``read_jsonl`` reads a
log back as dicts. The schema is in docs/events.md.

Encoding, generic over dataclasses (no per-record code, so a new record type needs none):

* keys ``t``, ``ev`` (the class name), ``conn`` (``str(ConnId)``) first, then the other fields
  in declaration order;
* floats rounded to 9 decimals (ns); inf and nan, which JSON lacks, as the strings "inf", "-inf",
  "nan";
* ``Flags`` as tcpdump letters ("S.", "FP.", "none"); other enums by value if it is a string
  (``State.SYN_SENT`` -> "SYN-SENT"), else by name;
* a ``TcpSegment`` as ``{"sport","dport","seq","ack","flags","win","urg","len","options"}``
  (``len`` is the payload length; the payload itself is never logged), plus ``"reserved"``
  only when those header bits are non-zero;
* bytes as their length; tuples and lists as lists; other dataclasses as dicts; anything else
  as ``str()``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from typing import IO, Any, Iterable, Iterator, Union

from synack.outfile import OwnedFile
from synack.tcp.events import ConnId
from synack.wire.tcp import Flags, TcpSegment, format_option

FORMAT = "synack-events"
VERSION = 1
HEADER = {"ev": "header", "format": FORMAT, "version": VERSION}
_FIRST = ("t", "ev", "conn")


class LogFormatError(ValueError):
    """A log could not be read; ``line`` is the 1-based line number, if known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.reason = reason
        self.line = line


# --- encoding --------------------------------------------------------------------------------

def record_to_dict(record: Any) -> dict[str, Any]:
    """One record (a dataclass instance) as a JSON-ready dict: ``t``, ``ev``, ``conn``, then the
    other fields in declaration order, encoded as the module docstring says.
    Raises ``TypeError`` for a non-dataclass."""
    if not dataclasses.is_dataclass(record) or isinstance(record, type):
        raise TypeError(f"a log record must be a dataclass instance, not {type(record).__name__}")
    fields = [f.name for f in dataclasses.fields(record)]
    out: dict[str, Any] = {}
    if "t" in fields:
        out["t"] = _encode(record.t)
    out["ev"] = type(record).__name__
    if "conn" in fields:
        out["conn"] = _encode(record.conn)
    for name in fields:
        if name not in _FIRST:
            out[name] = _encode(getattr(record, name))
    return out


def segment_to_dict(seg: TcpSegment) -> dict[str, Any]:
    """A segment's header fields; the payload appears only as its length ``len``."""
    d: dict[str, Any] = {
        "sport": seg.sport, "dport": seg.dport, "seq": seg.seq, "ack": seg.ack,
        "flags": seg.flags.short(), "win": seg.window, "urg": seg.urgent, "len": len(seg.payload),
        "options": [format_option(o) for o in seg.options],
    }
    if seg.reserved:
        d["reserved"] = seg.reserved
    return d


def _encode(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, Flags):                     # before int: Flags is an IntFlag
        return v.short()
    if isinstance(v, enum.Enum):
        return v.value if isinstance(v.value, str) else v.name
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return round(v, 9)
    if isinstance(v, ConnId):
        return str(v)
    if isinstance(v, TcpSegment):
        return segment_to_dict(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return len(v)
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_encode(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _encode(x) for k, x in v.items()}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _encode(getattr(v, f.name)) for f in dataclasses.fields(v)}
    return str(v)


def dumps(record: Any) -> str:
    """One log line for ``record``, without the newline."""
    return json.dumps(record_to_dict(record), separators=(",", ":"), ensure_ascii=False)


# --- writing ---------------------------------------------------------------------------------

class JsonlLog(OwnedFile):
    """A log sink writing JSON lines: ``log = JsonlLog("run.jsonl"); log(record)``.

    ``file_or_path``: a path (created or truncated, closed by ``close()``) or a text file object
    (left open by ``close()``). ``meta``: optional JSON-ready dict stored in the header under
    ``"meta"`` (a seed, a command line). Every record becomes one line, written with one call and
    flushed before ``log()`` returns.
    """

    def __init__(self, file_or_path: str | os.PathLike | IO[str], *, meta: dict | None = None) -> None:
        super().__init__(file_or_path, "w", encoding="utf-8", buffering=1)
        self.count = 0
        header = dict(HEADER)
        if meta is not None:
            header["meta"] = meta
        self._line(json.dumps(header, separators=(",", ":"), ensure_ascii=False))

    def __call__(self, record: Any) -> None:
        """Append ``record`` as one line. Raises ``ValueError`` once closed, ``TypeError`` for a
        non-dataclass."""
        if self._closed:
            raise ValueError("log to a closed JsonlLog")
        self._line(dumps(record))
        self.count += 1

    def _line(self, text: str) -> None:
        self._file.write(text + "\n")
        self._file.flush()



# --- reading ---------------------------------------------------------------------------------

def read_jsonl(source: Union[str, os.PathLike, IO[str], Iterable[str]], *, strict: bool = True,
               include_header: bool = False) -> Iterator[dict[str, Any]]:
    """The records of a log, as dicts, in file order.

    ``source``: a path, a text file object or any iterable of lines. The first line must be the
    header (format ``synack-events``, version <= ``VERSION``), else ``LogFormatError``; it is
    yielded too with ``include_header``. Blank lines are skipped. A line that is not a JSON
    object with a string ``ev`` raises ``LogFormatError`` naming the line, or is skipped when
    ``strict=False`` (e.g. to read past the half-written last line of a killed process).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:                # decoded per line: bad bytes name their line
            yield from _read_lines(f, strict, include_header)
    else:
        yield from _read_lines(source, strict, include_header)


def _read_lines(lines: Iterable[str], strict: bool, include_header: bool) -> Iterator[dict[str, Any]]:
    header_seen = False
    for lineno, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                if not header_seen or strict:
                    raise LogFormatError(f"not UTF-8: {e}", lineno) from None
                continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as e:    # JSONDecodeError, number limits, deep nesting
            obj, problem = None, f"not JSON ({type(e).__name__}: {e})"
        else:
            problem = None
            if not isinstance(obj, dict):
                problem = f"a {type(obj).__name__}, not a JSON object"
            elif not isinstance(obj.get("ev"), str):
                problem = 'no string "ev" field'
        if not header_seen:
            if problem is not None:
                raise LogFormatError(f"header expected: {problem}", lineno)
            _check_header(obj, lineno)
            header_seen = True
            if include_header:
                yield obj
            continue
        if problem is not None:
            if strict:
                raise LogFormatError(problem, lineno)
            continue
        yield obj
    if not header_seen:
        raise LogFormatError("empty log: no header line")


def _check_header(obj: dict[str, Any], lineno: int) -> None:
    if obj.get("ev") != "header" or obj.get("format") != FORMAT:
        raise LogFormatError(f'not a synack event log: header must be {json.dumps(HEADER)}', lineno)
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise LogFormatError(f"unsupported log version {version!r} (this reader knows 1..{VERSION})",
                             lineno)


__all__ = ["JsonlLog", "LogFormatError", "record_to_dict", "segment_to_dict", "dumps", "read_jsonl",
           "FORMAT", "VERSION", "HEADER"]
