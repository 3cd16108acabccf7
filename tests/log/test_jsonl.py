"""synack.log.jsonl: every record type serialises, the log reads back, bad logs fail clearly,
and docs/events.md stays true to the code."""

from __future__ import annotations

import dataclasses
import io
import json
import pathlib
import re

import pytest

import synack.tcp.events as events
from synack.log.jsonl import (
    HEADER, JsonlLog, LogFormatError, dumps, read_jsonl, record_to_dict, segment_to_dict,
)
from synack.tcp.events import ConnId, Dropped, SegmentOut, StateChanged, TimerSet
from synack.tcp.states import Cause, State
from synack.wire.tcp import (
    Flags, Mss, Nop, Sack, SackPermitted, TcpSegment, Timestamps, UnknownOption, WindowScale,
)

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "events.md"
CONN = ConnId("10.0.0.2", 40000, "10.0.0.1", 80)
SEG = TcpSegment(40000, 80, 2**32 - 3, 17, Flags.SYN | Flags.ACK, 65535, urgent=0, options=(
    Mss(1460), SackPermitted(), Timestamps(7, 0), Nop(), WindowScale(7)), payload=b"")
HEADER_LINE = '{"ev":"header","format":"synack-events","version":1}'


def record_types() -> list[type]:
    """Every record dataclass in synack.tcp.events (those with a ``t`` field)."""
    return [o for o in vars(events).values()
            if isinstance(o, type) and dataclasses.is_dataclass(o) and o.__module__ == events.__name__
            and "t" in {f.name for f in dataclasses.fields(o)}]


_SAMPLES = {"float": 0.25, "ConnId": CONN, "State": State.SYN_SENT, "TcpSegment": SEG, "str": "why",
            "int": 3, "bool": True, "Cause": Cause.RCV_SYN, "bytes": b"abc"}


def make(cls: type):
    """One instance of ``cls`` with a sample value for every field, by its annotation."""
    kwargs = {}
    for f in dataclasses.fields(cls):
        ann = f.type if isinstance(f.type, str) else f.type.__name__
        key = ann.split("|")[0].strip().split(".")[-1]
        assert key in _SAMPLES, f"no sample for {cls.__name__}.{f.name}: {ann}; add one to _SAMPLES"
        kwargs[f.name] = _SAMPLES[key]
    return cls(**kwargs)


ALL = record_types()


def test_found_the_record_types():
    names = {c.__name__ for c in ALL}
    assert {"StateChanged", "Connected", "SegmentOut", "SegmentIn", "Dropped", "TimerSet",
            "TimerFired", "RttSample", "CwndChanged"} <= names
    assert "ConnId" not in names and "TcpSegment" not in names


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_record_type_serialises(cls):
    rec = make(cls)
    d = record_to_dict(rec)
    names = [f.name for f in dataclasses.fields(cls)]
    assert list(d)[:3] == ["t", "ev", "conn"]
    assert list(d) == ["t", "ev", "conn"] + [n for n in names if n not in ("t", "conn")]
    assert d["ev"] == cls.__name__ and d["conn"] == "10.0.0.2:40000>10.0.0.1:80" and d["t"] == 0.25
    line = dumps(rec)
    assert "\n" not in line and json.loads(line) == d
    for value in d.values():     # only JSON-native values: nothing was left to str() by accident
        assert isinstance(value, (str, int, float, bool, list, dict)) or value is None


def test_state_changed_exact_line():
    rec = StateChanged(0.1 + 0.1, CONN, State.SYN_SENT, State.ESTABLISHED, "rcv SYN,ACK / snd ACK")
    assert dumps(rec) == ('{"t":0.2,"ev":"StateChanged","conn":"10.0.0.2:40000>10.0.0.1:80",'
                          '"old":"SYN-SENT","new":"ESTABLISHED","cause":"rcv SYN,ACK / snd ACK"}')
    assert record_to_dict(StateChanged(0.0, CONN, State.CLOSED, State.SYN_SENT,
                                       Cause.ACTIVE_OPEN))["cause"] == "active OPEN / snd SYN"


def test_segment_encoding():
    seg = TcpSegment(1, 2, 5, 6, Flags.PSH | Flags.ACK, 512, urgent=9, payload=b"hello", options=(
        Sack(((100, 200), (300, 400))), UnknownOption(30, b"\x01\x02")), reserved=1)
    assert segment_to_dict(seg) == {
        "sport": 1, "dport": 2, "seq": 5, "ack": 6, "flags": "P.", "win": 512, "urg": 9, "len": 5,
        "options": ["sack 100:200 300:400", "opt-30 0102"], "reserved": 1}
    d = record_to_dict(SegmentOut(1.0, CONN, SEG, retransmit=True))
    assert d["seg"] == {"sport": 40000, "dport": 80, "seq": 4294967293, "ack": 17, "flags": "S.",
                        "win": 65535, "urg": 0, "len": 0,
                        "options": ["mss 1460", "sackOK", "TS val 7 ecr 0", "nop", "wscale 7"]}
    assert d["retransmit"] is True
    assert record_to_dict(Dropped(0, CONN, seg.replace(flags=Flags(0)), "x"))["seg"]["flags"] == "none"
    assert "hello" not in dumps(SegmentOut(1.0, CONN, seg))


def test_value_encoding_rules():
    @dataclasses.dataclass(frozen=True, slots=True)
    class Odd:
        t: float
        blob: bytes
        pair: tuple
        big: float
        nan: float
        flags: Flags
        inner: ConnId

    d = record_to_dict(Odd(1 / 3, b"12345", (1, 2.0000000004), float("inf"), float("nan"),
                           Flags.FIN | Flags.ACK, CONN))
    assert d == {"t": 0.333333333, "ev": "Odd", "blob": 5, "pair": [1, 2.0], "big": "inf", "nan": "nan",
                 "flags": "F.", "inner": "10.0.0.2:40000>10.0.0.1:80"}
    v6 = ConnId("2001:db8::2", 1, "2001:db8::1", 2)
    assert record_to_dict(TimerSet(1.0, v6, "rto", 2.0))["conn"] == "[2001:db8::2]:1>[2001:db8::1]:2"
    with pytest.raises(TypeError):
        record_to_dict({"t": 1})
    with pytest.raises(TypeError):
        record_to_dict(SegmentOut)


# --- writing and reading back ----------------------------------------------------------------

def test_header_and_read_back(tmp_path):
    path = tmp_path / "run.jsonl"
    recs = [make(cls) for cls in ALL]
    with JsonlLog(path) as log:
        for r in recs:
            log(r)
    assert log.count == len(recs) and log.closed
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER_LINE
    assert json.loads(lines[0]) == HEADER
    assert len(lines) == 1 + len(recs)
    assert list(read_jsonl(path)) == [record_to_dict(r) for r in recs]
    assert next(iter(read_jsonl(path, include_header=True))) == HEADER


def test_each_line_is_on_disk_before_log_returns(tmp_path):
    path = tmp_path / "crash.jsonl"
    log = JsonlLog(path, meta={"seed": 42})
    log(TimerSet(0.5, CONN, "rto", 1.5))
    text = path.read_text(encoding="utf-8")            # not closed: as a crash would leave it
    assert text.splitlines() == [
        '{"ev":"header","format":"synack-events","version":1,"meta":{"seed":42}}',
        '{"t":0.5,"ev":"TimerSet","conn":"10.0.0.2:40000>10.0.0.1:80","timer":"rto","deadline":1.5}']
    log.close()
    with pytest.raises(ValueError):
        log(TimerSet(0.5, CONN, "rto", 1.5))


def test_file_object_is_flushed_not_closed():
    class Spy(io.StringIO):
        flushes = 0

        def flush(self):
            self.flushes += 1
            super().flush()

    buf = Spy()
    log = JsonlLog(buf)
    log(TimerSet(0.5, CONN, "rto", 1.5))
    assert buf.flushes == 2
    log.close()
    assert not buf.closed
    assert [r["ev"] for r in read_jsonl(io.StringIO(buf.getvalue()))] == ["TimerSet"]
    assert [r["ev"] for r in read_jsonl(buf.getvalue().splitlines(keepends=True))] == ["TimerSet"]


# --- malformed logs --------------------------------------------------------------------------

GOOD = HEADER_LINE + "\n" + dumps(TimerSet(0.5, CONN, "rto", 1.5)) + "\n"


@pytest.mark.parametrize("text,match", [
    ("", "empty log"),
    ("\n\n", "empty log"),
    ('{"t":1,"ev":"TimerSet"}\n', "not a synack event log"),
    ('{"ev":"header","format":"pcap","version":1}\n', "not a synack event log"),
    ('{"ev":"header","format":"synack-events","version":2}\n', "unsupported log version 2"),
    ('{"ev":"header","format":"synack-events","version":"1"}\n', "unsupported log version"),
    ("not json at all\n", "line 1: header expected: not JSON"),
    (GOOD + "{broken\n", "line 3: not JSON"),
    (GOOD + "[1, 2]\n", "line 3: a list, not a JSON object"),
    (GOOD + '{"t": 1}\n', 'line 3: no string "ev"'),
    (GOOD + '{"t":1,"ev":"TimerSet"' + "[" * 100000 + "\n", "line 3: not JSON"),
])
def test_malformed_raises(text, match):
    with pytest.raises(LogFormatError, match=match):
        list(read_jsonl(io.StringIO(text)))


def test_lenient_skips_bad_lines_but_not_a_bad_header(tmp_path):
    path = tmp_path / "cut.jsonl"
    path.write_bytes(GOOD.encode() + b"\xff\xfe garbage\n" + b"[]\n" + GOOD.splitlines()[1].encode()
                     + b"\n" + b'{"t":2.0,"ev":"TimerF')     # a half-written last line
    with pytest.raises(LogFormatError, match="line 3: not UTF-8"):
        list(read_jsonl(path))
    assert [r["t"] for r in read_jsonl(path, strict=False)] == [0.5, 0.5]
    with pytest.raises(LogFormatError, match="header"):
        list(read_jsonl(io.StringIO("oops\n" + GOOD), strict=False))


# --- docs/events.md is true to the code ------------------------------------------------------

def _doc_examples() -> list[dict]:
    text = DOCS.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"t":')]


def test_docs_have_a_section_and_example_per_record_type():
    text = DOCS.read_text(encoding="utf-8")
    sections = set(re.findall(r"^### (\w+)$", text, re.M))
    assert sections == {c.__name__ for c in ALL}
    examples = {e["ev"] for e in _doc_examples()}
    assert examples == {c.__name__ for c in ALL}
    assert HEADER_LINE in text


def test_doc_examples_have_exactly_the_keys_the_code_writes():
    by_name = {c.__name__: c for c in ALL}
    for ex in _doc_examples():
        want = record_to_dict(make(by_name[ex["ev"]]))
        assert list(ex) == list(want), ex["ev"]
        if "seg" in ex:
            assert list(ex["seg"]) == list(want["seg"])
        for key, value in want.items():
            assert type(ex[key]) is type(value) or {type(ex[key]), type(value)} <= {int, float}, (ex["ev"], key)
