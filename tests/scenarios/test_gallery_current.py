"""docs/gallery.md is generated (``make gallery``); this checks it is what the scenarios give
now, so a change in behaviour cannot leave the gallery's diagrams describing the old one. The
page holds every scenario's Mermaid diagram as text; the SVG and PNG files are made from the
same runs."""

from __future__ import annotations

from pathlib import Path

from synack.scenarios.gallery import build

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_docs_gallery_is_what_the_scenarios_give_now(tmp_path):
    out = tmp_path / "gallery"
    results = build(out, tmp_path / "gallery.md", progress=lambda *a, **k: None)
    assert results and all(r.ok for r in results), [r for r in results if not r.ok]
    assert (tmp_path / "gallery.md").read_text() == (DOCS / "gallery.md").read_text(), \
        "docs/gallery.md is stale: run `make gallery` and commit docs/gallery.md and docs/gallery/"
