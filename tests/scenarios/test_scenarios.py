"""The scenario gallery: every scenario runs, checks its own outcome, and leaves pictures that
parse; docs/gallery.md lists every scenario; the CLI lists and runs them."""

import argparse
import pathlib
import xml.etree.ElementTree as ET

import pytest

from synack.link.pcap import read_pcap
from synack.log.jsonl import read_jsonl
from synack.pictures import seqdiag
from synack.pictures.model import load
from synack.scenarios import cli, registry
from synack.scenarios.gallery import MARKER
from synack.scenarios.lab import check

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = registry.all_scenarios()
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("scenarios")


@pytest.fixture(scope="module")
def results(out):
    """Each scenario run once, on demand, shared by the tests below."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = registry.run(registry.get(name), out)
        return cache[name]
    return get


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_scenario_runs_checks_itself_and_draws(results, out, name):
    r = results(name)
    assert r.ok, r.message
    d = out / name
    packets = list(read_pcap(d / "capture.pcap"))
    assert packets, "the capture is empty"
    records = list(read_jsonl(d / "events.jsonl"))
    assert any(x["ev"] == "SegmentOut" for x in records)
    root = ET.parse(d / "diagram.svg").getroot()
    assert root.tag.endswith("svg")
    assert (d / "diagram.mmd").read_text().startswith("sequenceDiagram")
    assert "TCP " in (d / "diagram.txt").read_text()
    for kind in r.scenario.plots:
        assert (d / f"{kind}.png").read_bytes()[:8] == PNG
    for p in r.files:
        assert p.exists() and p.stat().st_size > 0, p
    pngs = [p for p in r.files if p.suffix == ".png"]
    assert len(pngs) >= len(r.scenario.plots)
    for p in pngs:
        assert p.read_bytes()[:8] == PNG, p
    # readable: no two labels of the sequence diagram on top of each other
    cap = load([str(d / ("events.jsonl" if r.scenario.source == "events" else "capture.pcap"))])
    conn = cap.connection(r.drawn)
    assert seqdiag.layout_svg(conn, full=r.scenario.full).overlapping() == []


def test_every_scenario_states_its_point():
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names))
    for s in SCENARIOS:
        assert s.title and 40 < len(s.teaching) < 480, s.name
        assert s.teaching.count(". ") <= 2, f"{s.name}: one or two sentences"


def test_the_pictures_show_the_point(results, out):
    # TIME-WAIT's 2 MSL is drawn as time passing, not squeezed against the last segment
    results("four-way-close")
    text = (out / "four-way-close" / "diagram.txt").read_text().splitlines()
    k = next(i for i, line in enumerate(text) if "… 60.0 s …" in line)
    assert "CLOSED" in text[k + 1]
    # a 4-tuple used 13 times is 13 connections in the pictures, not one
    results("isn-over-time")
    cap = load([str(out / "isn-over-time" / "events.jsonl")])
    assert len(cap.connections) == 39
    assert all(len(c.segments) == 4 for c in cap.connections)
    # the server's pauses between chunks are breaks, not hidden inside one folded summary
    results("close-while-sending")
    p = seqdiag.plan(load([str(out / "close-while-sending" / "events.jsonl")]).connections[0])
    assert len(p.gaps) >= 3


def test_a_failed_check_fails_the_scenario(tmp_path):
    def broken(new_lab):
        lab = new_lab()
        lab.listen(80)
        c = lab.connect(80)
        lab.run_until(lambda: c.established, limit=5)
        check(False, "the handshake should have taken 3 s")
    sc = registry.Scenario("broken", "Broken", "test", "A scenario that fails on purpose.", broken)
    r = registry.run(sc, tmp_path)
    assert not r.ok and "the handshake should have taken 3 s" in r.message
    assert (tmp_path / "broken" / "diagram.svg").exists()        # drawn anyway: that is how one looks


def test_gallery_page_lists_every_scenario():
    md = (ROOT / "docs" / "gallery.md").read_text(encoding="utf-8")
    for s in SCENARIOS:
        assert MARKER.format(name=s.name) in md, f"docs/gallery.md lacks {s.name}: run make gallery"
        assert f"### {s.title}" in md
        assert s.teaching in md, f"docs/gallery.md has an old text for {s.name}: run make gallery"
        assert (ROOT / "docs" / "gallery" / s.name / "diagram.svg").exists()
    assert md.count("```mermaid") == len(SCENARIOS)


def _cli(argv):
    p = argparse.ArgumentParser(prog="synack scenarios")
    cli.add_arguments(p)
    return cli.run(p.parse_args(argv))


def test_cli_list_run_and_errors(tmp_path, capsys):
    assert _cli(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(s.name in listed for s in SCENARIOS)
    assert _cli(["run", "three-way-handshake", "connection-refused", "--out", str(tmp_path)]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out
    assert (tmp_path / "connection-refused" / "diagram.svg").exists()
    assert _cli(["run", "no-such-scenario"]) == 2
    assert _cli(["run"]) == 2
    assert _cli([]) == 2
