"""Shared by the requirements-document checks: does a `src/...py:Name` or `tests/...py::test`
reference in a document still name something that exists? (Parsed with ``ast``, not imported.)"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_RE = re.compile(r"`(src/synack/[\w/.-]+\.py):([A-Za-z_][\w.]*)`")
TEST_RE = re.compile(r"`(tests/[\w/.-]+\.py)::([A-Za-z_]\w*)`")
STATUSES = ("implemented", "partial", "missing", "n.a.")


@lru_cache(maxsize=None)
def _module(path: str) -> ast.Module:
    return ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)


def _defined_names(body: list[ast.stmt]) -> dict[str, ast.AST]:
    """Names a module or class body defines: functions, classes and assigned attributes."""
    names: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    names[t.id] = node
    return names


def resolve_code(path: str, dotted: str) -> str | None:
    """None if ``dotted`` (``func``, ``Class``, ``Class.method``, ``Class.field``) is defined in
    ``path``; otherwise what is wrong."""
    if not (ROOT / path).is_file():
        return f"{path} does not exist"
    body: list[ast.stmt] = _module(path).body
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        node = _defined_names(body).get(part)
        if node is None:
            where = ".".join(parts[:i]) or path
            return f"{part!r} is not defined in {where} ({path})"
        if i < len(parts) - 1:
            if not isinstance(node, ast.ClassDef):
                return f"{'.'.join(parts[:i + 1])} in {path} is not a class"
            body = node.body
    return None


def resolve_test(path: str, name: str) -> str | None:
    """None if ``path`` defines the test function ``name``; otherwise what is wrong."""
    p = ROOT / path
    if not p.is_file():
        return f"{path} does not exist"
    if not re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", p.read_text(encoding="utf-8"), re.M):
        return f"{path} has no test {name}"
    return None


def stated_summary(text: str) -> dict[str, tuple[int, ...]] | None:
    """The document's summary table (``| Class | implemented | partial | missing | n.a. | total |``)
    as {class: counts}, or None if it has none."""
    m = re.search(r"^\| Class \| implemented \| partial \| missing \| n\.a\. \| total \|\n\|[-|]+\|\n"
                  r"((?:\|.*\|\n)+)", text, re.M)
    if m is None:
        return None
    stated = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        stated[cells[0]] = tuple(int(c) for c in cells[1:])
    return stated
