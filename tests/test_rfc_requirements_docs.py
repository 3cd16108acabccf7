"""Keeps the RFC requirement audits (docs/rfc-requirements-*.md) true as the code moves.

Each document has one markdown table row per normative statement of the RFCs it covers:

    | ID | requirement (short) | status | where (file:function) | test |

with IDs like ``7323-5.3-R1`` or ``cubic-4.6-R3`` (RFC or short name, section, index). The
requirement cell starts with its class: ``MUST:`` / ``MUST (step 2):`` / ``(MUST)``, ``MUST NOT``, ``REQUIRED``,
``SHALL`` and ``(step)`` (an algorithm step without a key word) count as MUST; ``SHOULD``,
``SHOULD NOT``, ``RECOMMENDED`` and ``NOT RECOMMENDED`` as SHOULD; ``MAY`` and ``OPTIONAL`` as MAY. A document whose summary has a
``step`` row counts the steps there instead of under MUST.
For every document this checks:

* IDs are unique, every row has five cells and a known class and status;
* an "implemented" row names code and a test;
* every code and test reference resolves (``tests/requirements_refs.py``, as for RFC 9293);
* the summary table matches the rows, and so does the list of MUST rows missing or partial.

docs/rfc9293-requirements.md has its own, stricter check (tests/test_requirements_doc.py): its
IDs are the RFC's own Appendix B list.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import pytest
from requirements_refs import CODE_RE, ROOT, STATUSES, TEST_RE, resolve_code, resolve_test, stated_summary

DOCS = sorted((ROOT / "docs").glob("rfc-requirements-*.md"))
ID_RE = re.compile(r"^[0-9a-z]+-[0-9A-Za-z.]+-R\d+$")
CLASS_OF = {"MUST": "MUST", "MUST NOT": "MUST", "REQUIRED": "MUST", "SHALL": "MUST", "SHALL NOT": "MUST",
            "step": "MUST", "SHOULD": "SHOULD", "SHOULD NOT": "SHOULD", "RECOMMENDED": "SHOULD",
            "NOT RECOMMENDED": "SHOULD", "MAY": "MAY", "OPTIONAL": "MAY"}
CLASS_RE = re.compile(r"^\(?(" + "|".join(sorted(map(re.escape, CLASS_OF), key=len, reverse=True))
                      + r")(?:\s*\([^)]*\)(?:\s*[,–-]\s*\([^)]*\))*)?[):]")
CLASSES = ("MUST", "SHOULD", "MAY")


class Row:
    def __init__(self, doc: str, line_no: int, cells: list[str], steps_apart: bool) -> None:
        self.where_in_doc = f"{doc}:{line_no}"
        self.id = cells[0].strip("* ")
        m = CLASS_RE.match(cells[1])
        self.cls = CLASS_OF[m.group(1)] if m else None
        if m and m.group(1) == "step" and steps_apart:
            self.cls = "step"
        m = re.match(r"[*\s]*(implemented|partial|missing|n\.a\.)", cells[2])
        self.status = m.group(1) if m else None
        self.code_refs = CODE_RE.findall(cells[3])
        self.test_refs = TEST_RE.findall(cells[4])
        self.n_cells = len(cells)

    def __repr__(self) -> str:
        return f"{self.id} ({self.where_in_doc})"


@lru_cache(maxsize=None)
def rows(name: str) -> tuple[Row, ...]:
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    steps_apart = re.search(r"^\| step \|", text, re.M) is not None
    out = []
    for no, line in enumerate(text.splitlines(), 1):
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if ID_RE.match(cells[0].strip("* ")):
                out.append(Row(name, no, cells, steps_apart))
    return tuple(out)


names = pytest.mark.parametrize("name", [d.name for d in DOCS])


def test_there_are_audits():
    assert len(DOCS) >= 2


@names
def test_rows_are_well_formed(name):
    rs = rows(name)
    assert len(rs) >= 20
    assert [r for r in rs if r.n_cells != 5] == []
    assert {i: n for i, n in Counter(r.id for r in rs).items() if n > 1} == {}
    assert [r for r in rs if r.cls is None] == [], "the requirement cell starts with its class"
    assert [r for r in rs if r.status not in STATUSES] == []


@names
def test_implemented_rows_name_code_and_a_test(name):
    assert [r for r in rows(name) if r.status == "implemented" and not (r.code_refs and r.test_refs)] == []


@names
def test_references_resolve(name):
    code = [(r, f, n) for r in rows(name) for f, n in r.code_refs]
    tests = [(r, f, n) for r in rows(name) for f, n in r.test_refs]
    assert len(code) > 20 and len(tests) > 20          # a parsing slip must not make this vacuous
    problems = [f"{r}: `{f}:{n}`: {why}" for r, f, n in code if (why := resolve_code(f, n))]
    problems += [f"{r}: {why}" for r, f, n in tests if (why := resolve_test(f, n))]
    assert problems == []


@names
def test_summary_matches_the_rows(name):
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    stated = stated_summary(text)
    assert stated is not None, "summary table not found"
    actual = {}
    for cls in CLASSES + (("step",) if "step" in stated else ()):
        mine = [r for r in rows(name) if r.cls == cls]
        actual[cls] = tuple(sum(1 for r in mine if r.status == s) for s in STATUSES) + (len(mine),)
    assert stated == actual


@names
def test_must_gap_list_matches_the_rows(name):
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    start = text.index("### MUST rows that are missing or partial")
    end = text.index("\n## ", start)
    listed = dict(re.findall(r"^- \*\*([0-9a-z]+-[0-9A-Za-z.]+-R\d+)\*\* \((missing|partial)\b", text[start:end], re.M))
    expected = {r.id: r.status for r in rows(name) if r.cls == "MUST" and r.status in ("missing", "partial")}
    assert listed == expected
