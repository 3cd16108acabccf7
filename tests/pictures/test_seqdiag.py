"""Sequence diagrams: golden text and Mermaid of a simulated connection, SVG that parses and
stays readable (no overlapping labels, arrows in time order), folding of long data phases.

Golden files live in tests/pictures/golden/; after a deliberate change, regenerate them with
``SYNACK_UPDATE_GOLDEN=1 pytest tests/pictures`` and review the diff.
"""

import os
import pathlib
import xml.etree.ElementTree as ET

import pytest

from picture_scenarios import (ABORT, CLOSE, FIN_WITH_ACK, LOST_FIN, REFUSED, SIMULTANEOUS_CLOSE, sim_connection,
                               write_capture)
from synack.pictures.model import load
from synack.pictures.seqdiag import Fold, layout_svg, plan, render_mermaid, render_svg, render_text

GOLDEN = pathlib.Path(__file__).parent / "golden"
SVG = "{http://www.w3.org/2000/svg}"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SYNACK_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with SYNACK_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden copy"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return sim_connection(tmp_path_factory.mktemp("sim"))


@pytest.fixture(scope="module")
def bulk(tmp_path_factory):
    return sim_connection(tmp_path_factory.mktemp("bulk"), size=300_000, loss=0.02, seed=3, name="bulk")


def test_golden_text_from_the_log(sim):
    check_golden("handshake_close.events.txt", render_text(load(sim[1]).connection(1)))


def test_golden_text_from_the_capture(sim):
    check_golden("handshake_close.pcap.txt", render_text(load(sim[0]).connection(1)))


def test_golden_mermaid_from_the_log(sim):
    check_golden("handshake_close.events.mmd", render_mermaid(load(sim[1]).connection(1)))


def test_golden_mermaid_from_the_capture(sim):
    check_golden("handshake_close.pcap.mmd", render_mermaid(load(sim[0]).connection(1)))


def test_text_reads_like_the_textbook(sim):
    text = render_text(load(sim[1]).connection(1))
    for label in ("SYN seq=0 win=", "<mss 1460,sackOK,TS,wscale", "SYN,ACK seq=0 ack=1", "ACK seq=1 ack=1",
                  "PSH,ACK seq=1 ack=1 len=18", "FIN,ACK seq=19 ack=52"):
        assert label in text
    lines = text.splitlines()
    assert any(ln.strip().startswith("SYN-SENT ┤") for ln in lines)
    assert any(ln.rstrip().endswith("├ SYN-RECEIVED") for ln in lines)
    assert "\x1b[" not in text
    assert "\x1b[36m" in render_text(load(sim[1]).connection(1), color=True)


def test_mermaid_syntax(sim):
    mm = render_mermaid(load(sim[0]).connection(1))
    lines = mm.splitlines()
    assert lines[0] == "sequenceDiagram"
    assert "    Note over A: SYN-SENT" in lines and "    Note over B: LISTEN" in lines
    assert "    participant A as 192.0.2.1:" + lines[lines.index("    Note over A: SYN-SENT") - 2].split(":")[-1] \
        in lines
    body = [ln for ln in lines[1:] if not ln.strip().startswith(("%%", "participant", "Note"))]
    assert all(("->>" in ln or "-->>" in ln or "-x" in ln or "-)" in ln) for ln in body)
    assert not any("<" in ln or ">" in ln.split(":", 1)[1] for ln in body)   # escaped as #lt; #gt;
    assert any("#lt;mss 1460" in ln for ln in body)


def _svg_checks(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert float(root.get("width")) > 0 and float(root.get("height")) > 0
    return root


@pytest.mark.parametrize("even", [False, True])
@pytest.mark.parametrize("source", ["events", "pcap"])
def test_svg_of_the_simulated_connection(sim, source, even):
    conn = load(sim[1] if source == "events" else sim[0]).connection(1)
    root = _svg_checks(render_svg(conn, even=even))
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    for state in ("SYN-SENT", "LISTEN", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT",
                  "CLOSE-WAIT", "LAST-ACK", "CLOSED"):
        assert any(t.endswith(state) for t in texts), state
    lay = layout_svg(conn, even=even)
    assert lay.overlapping() == []
    assert lay.overlapping(arrows=True) == []
    # arrows leave in time order, top to bottom, and never arrive before they leave
    ys = [(conn.segments[i].t_sent, y1) for i, x1, y1, x2, y2, _ in lay.arrows]
    assert [y for _, y in sorted(ys, key=lambda p: p[0])] == sorted(y for _, y in ys)
    assert all(y2 > y1 for _, _, y1, _, y2, _ in lay.arrows)


@pytest.mark.parametrize("script", [CLOSE, SIMULTANEOUS_CLOSE, FIN_WITH_ACK, REFUSED, ABORT, LOST_FIN],
                         ids=["close", "simultaneous-close", "fin-with-ack", "refused", "abort", "lost-fin"])
@pytest.mark.parametrize("even", [False, True])
def test_no_overlapping_labels_in_standard_scenarios(tmp_path, script, even):
    write_capture(tmp_path / "x.pcap", script)
    conn = load(tmp_path / "x.pcap").connection(1)
    _svg_checks(render_svg(conn, even=even))
    lay = layout_svg(conn, even=even)
    assert lay.overlapping() == []
    assert lay.overlapping(arrows=True) == []


def test_marks_are_drawn_distinctly(tmp_path):
    write_capture(tmp_path / "x.pcap", LOST_FIN)
    conn = load(tmp_path / "x.pcap").connection(1)
    svg = render_svg(conn)
    assert "[retransmission]" in svg and 'stroke-dasharray="7 4"' in svg
    assert "[retransmission]" in render_text(conn) and "╌" in render_text(conn)
    assert "-->>" in render_mermaid(conn)


def test_lost_segments_from_a_log(bulk):
    conn = load(bulk[1]).connection(1)
    lost = [s for s in conn.segments if "lost" in s.marks]
    assert lost
    full = render_text(conn, full=True)
    assert "[lost]" in full and "✕" in full
    assert "-x" in render_mermaid(conn, full=True)
    _svg_checks(render_svg(conn, full=True))


def test_long_data_phase_is_folded_but_handshake_and_close_are_not(bulk):
    conn = load(bulk[0]).connection(1)
    p = plan(conn)
    folds = [b for b in p.blocks if isinstance(b, Fold)]
    assert folds and sum(len(f.indexes) for f in folds) > 100
    assert folds[0].label.startswith("… ") and " segments, " in folds[0].label and "kB" in folds[0].label
    shown = [b for b in p.blocks if not isinstance(b, Fold)]
    assert [s.flag_names for s in shown[:3]] == ["SYN", "SYN,ACK", "ACK"]
    fins = [s for s in conn.segments if "FIN" in s.flag_names]
    assert all(any(b is s for b in shown) for s in fins)
    assert all(s.index > max(folds[-1].indexes) for s in shown[-4:])
    text = render_text(conn)
    assert folds[0].label in text and "━" in text
    assert len(text.splitlines()) < len(render_text(conn, full=True).splitlines()) / 4
    assert all(not isinstance(b, Fold) for b in plan(conn, full=True).blocks)
    lay = layout_svg(conn)
    assert lay.overlapping() == []
    _svg_checks(render_svg(conn))
    assert folds[0].label.replace("…", "") .strip() in render_mermaid(conn)


def test_inferred_states_are_marked(sim):
    svg = render_svg(load(sim[0]).connection(1))
    assert 'font-style="italic"' in svg and "states inferred from the packets" in svg
    svg = render_svg(load(sim[1]).connection(1))
    assert 'font-style="italic"' not in svg and "(inferred)" not in svg
