"""Keeps docs/rfc9293-requirements.md true as the code moves.

The document has one markdown table row per requirement ID of RFC 9293 Appendix B:

    | ID | requirement (short) | status | where (file:function) | test |

with code named as `src/synack/<path>.py:Name` or `...:Class.method` and tests as
`tests/<path>.py::test_name` (several per cell, each in backticks). This checks:

* every MUST-n of Appendix B (MUST-1 ... MUST-69) has exactly one row, and so does every other ID
  (SHLD-n, MAY-n, REC-1); no row names an ID Appendix B does not have;
* the status is one of implemented / partial / missing / n.a.;
* an "implemented" row names code and a test;
* every code reference resolves: the file exists and defines each dotted part (a function,
  class, method, or class/module attribute; checked with ``ast``);
* every test reference resolves: the file exists and defines that test function;
* the summary table and the list of missing/partial MUSTs agree with the rows.

Only table rows count as "appearing" for an ID: the summary list at the top of the document
names IDs too, and is checked against the rows separately.

The ID list is Appendix B's, written out below. If the RFC text is at hand (``$SYNACK_RFC9293``,
or /work/shared/rfc/rfc9293.txt) the list is also checked against its Appendix B.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest
from requirements_refs import CODE_RE, ROOT, STATUSES, TEST_RE, resolve_code, resolve_test, stated_summary

DOC = ROOT / "docs" / "rfc9293-requirements.md"

# RFC 9293 Appendix B, Table 8: every requirement ID it names (some on several lines).
APPENDIX_B = ({f"MUST-{n}" for n in range(1, 70)} | {f"SHLD-{n}" for n in range(1, 32)}
              | {f"MAY-{n}" for n in range(1, 19)} | {"REC-1"})
MUSTS = sorted((i for i in APPENDIX_B if i.startswith("MUST-")), key=lambda i: int(i[5:]))
CLASSES = ("MUST", "SHLD", "REC", "MAY")

ID_RE = re.compile(r"^(MUST|SHLD|MAY|REC)-(\d+)$")


def _rfc_path() -> Path | None:
    for p in (os.environ.get("SYNACK_RFC9293"), "/work/shared/rfc/rfc9293.txt"):
        if p and Path(p).is_file():
            return Path(p)
    return None


class Row:
    def __init__(self, line_no: int, cells: list[str]) -> None:
        self.line_no = line_no
        self.id = cells[0].strip("* ")
        self.requirement = cells[1]
        self.status_cell = cells[2]
        self.where = cells[3]
        self.test = cells[4]
        m = re.match(r"[*\s]*(implemented|partial|missing|n\.a\.)", self.status_cell)
        self.status = m.group(1) if m else None
        self.code_refs = CODE_RE.findall(self.where)
        self.test_refs = TEST_RE.findall(self.test)

    def __repr__(self) -> str:
        return f"{self.id} (docs line {self.line_no})"


@lru_cache(maxsize=None)
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def rows() -> tuple[Row, ...]:
    out = []
    for no, line in enumerate(doc_text().splitlines(), 1):
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if ID_RE.match(cells[0].strip("* ")):
            assert len(cells) == 5, f"docs line {no}: expected 5 cells, got {len(cells)}: {line}"
            out.append(Row(no, cells))
    return tuple(out)


def _rows_by_status(status: str) -> list[Row]:
    return [r for r in rows() if r.status == status]


# --------------------------------------------------------------------------- IDs


def test_the_id_list_is_appendix_b():
    path = _rfc_path()
    if path is None:
        pytest.skip("RFC 9293 text not found (set SYNACK_RFC9293 to check the ID list against it)")
    text = path.read_text(encoding="utf-8", errors="replace")
    start = text.index("Appendix B.  TCP Requirement Summary", text.index("Appendix A.  Other"))
    end = text.index("Table 8: TCP Requirements Summary", start)
    found = set(re.findall(r"\|\s*((?:MUST|SHLD|MAY|REC)-\d+)\s*\|", text[start:end]))
    assert found == APPENDIX_B


@pytest.mark.parametrize("req", MUSTS)
def test_every_must_has_exactly_one_row(req):
    n = sum(1 for r in rows() if r.id == req)
    assert n == 1, f"{req} has {n} rows in {DOC.name}"


def test_every_appendix_b_id_has_exactly_one_row_and_no_other_ids():
    counts = Counter(r.id for r in rows())
    assert set(counts) - APPENDIX_B == set(), "IDs that Appendix B does not have"
    assert APPENDIX_B - set(counts) == set(), "Appendix B IDs without a row"
    assert {i: c for i, c in counts.items() if c != 1} == {}, "IDs with more than one row"


# --------------------------------------------------------------------------- statuses and references


def test_every_status_is_known():
    bad = [(r, r.status_cell) for r in rows() if r.status not in STATUSES]
    assert bad == []


def test_implemented_rows_name_code_and_a_test():
    bad = [r for r in _rows_by_status("implemented") if not r.code_refs or not r.test_refs]
    assert bad == [], "implemented rows need `src/...py:function` and `tests/...py::test_name`"


def _all_code_refs() -> list[tuple[Row, str, str]]:
    return [(r, f, name) for r in rows() for f, name in r.code_refs]


def _all_test_refs() -> list[tuple[Row, str, str]]:
    return [(r, f, name) for r in rows() for f, name in r.test_refs]


def test_code_references_resolve():
    problems = [f"{r}: `{f}:{name}`: {why}" for r, f, name in _all_code_refs()
                if (why := resolve_code(f, name)) is not None]
    assert problems == []


def test_test_references_resolve():
    problems = [f"{r}: {why}" for r, f, name in _all_test_refs() if (why := resolve_test(f, name)) is not None]
    assert problems == []


def test_there_are_references_to_check():
    # a parsing slip (e.g. a changed backtick style) must not make the two tests above vacuous
    assert len(_all_code_refs()) > 50 and len(_all_test_refs()) > 50


# --------------------------------------------------------------------------- the summary


def test_summary_counts_match_the_rows():
    stated = stated_summary(doc_text())
    assert stated is not None, "summary table not found"
    actual = {}
    for cls in CLASSES:
        mine = [r for r in rows() if r.id.split("-")[0] == cls]
        counts = tuple(sum(1 for r in mine if r.status == s) for s in STATUSES)
        actual[cls] = counts + (len(mine),)
    assert stated == actual


def test_must_gap_list_matches_the_rows():
    text = doc_text()
    start = text.index("### MUST rows that are missing or partial")
    end = text.index("\n## ", start)
    listed = {}
    for line in text[start:end].splitlines():
        m = re.match(r"- \*\*(MUST-\d+)\*\* \((missing|partial)\b", line)
        if m:
            assert m.group(1) not in listed, f"{m.group(1)} listed twice"
            listed[m.group(1)] = m.group(2)
    expected = {r.id: r.status for r in rows()
                if r.id.startswith("MUST-") and r.status in ("missing", "partial")}
    assert listed == expected
