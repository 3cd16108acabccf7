"""Plots (matplotlib, Agg) and the ``draw`` / ``plot`` subcommands."""

import xml.etree.ElementTree as ET

import pytest

from picture_scenarios import run, sim_connection
from synack.pictures.model import PictureError, load
from synack.pictures.plots import KINDS, plot

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bulk(tmp_path_factory):
    return sim_connection(tmp_path_factory.mktemp("bulk"), size=100_000, loss=0.03, seed=5, name="bulk")


@pytest.mark.parametrize("kind", KINDS)
def test_every_plot_from_a_log(bulk, tmp_path, kind):
    conn = load(bulk[1]).connection(1)
    out = tmp_path / f"{kind}.png"
    plot(conn, kind, out)
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 5000


@pytest.mark.parametrize("kind", ["time-sequence", "throughput", "inflight"])
def test_capture_plots_as_svg(bulk, tmp_path, kind):
    out = tmp_path / f"{kind}.svg"
    plot(load(bulk[0]).connection(1), kind, out)
    assert ET.parse(out).getroot().tag.endswith("svg")


@pytest.mark.parametrize("kind, match", [("cwnd", "needs CwndChanged"), ("rtt", "needs RttSample")])
def test_log_only_plots_refuse_a_capture(bulk, tmp_path, kind, match):
    with pytest.raises(PictureError, match=match):
        plot(load(bulk[0]).connection(1), kind, tmp_path / "x.png")


def test_plot_errors(bulk, tmp_path):
    conn = load(bulk[1]).connection(1)
    with pytest.raises(PictureError, match=r"\.png or \.svg"):
        plot(conn, "throughput", tmp_path / "x.jpg")
    with pytest.raises(PictureError, match="unknown plot kind"):
        plot(conn, "pie", tmp_path / "x.png")


def test_draw_to_stdout_and_files(bulk, tmp_path, capsys):
    pcap, jsonl = bulk
    assert run("draw", pcap) == 0
    out = capsys.readouterr().out
    assert "SYN seq=0" in out and "segments," in out and "\x1b[" not in out
    assert run("draw", jsonl, "--list") == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 1 and listing[0].split()[0] == "1" and "A TIME-WAIT, B CLOSED" in listing[0]
    for ext, check in ((".svg", lambda t: ET.fromstring(t)), (".mmd", lambda t: t.startswith("sequenceDiagram")),
                       (".txt", lambda t: "SYN seq=0" in t)):
        out_path = tmp_path / f"d{ext}"
        assert run("draw", jsonl, "-o", out_path, "--full", "--even", "--conn", "1") == 0
        assert check(out_path.read_text(encoding="utf-8"))
    assert run("draw", pcap, "--format", "mermaid", "--absolute") == 0
    assert capsys.readouterr().out.startswith("sequenceDiagram")
    assert run("draw", pcap, "--color", "always") == 0
    assert "\x1b[" in capsys.readouterr().out


def test_plot_command(bulk, tmp_path):
    assert run("plot", bulk[1], "--kind", "cwnd", "-o", tmp_path / "c.png") == 0
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("argv, match", [
    (["draw", "{missing}"], "No such file"),
    (["draw", "{pcap}", "-o", "{tmp}/x.png"], "cannot tell the format"),
    (["draw", "{pcap}", "--conn", "7"], "no connection 7"),
    (["draw", "{pcap}", "--conn", "10.0.0.1:1>10.0.0.2:2"], "no connection matches"),
    (["draw", "{garbage}"], "not a pcap, pcapng or synack event log"),
    (["draw", "{truncated}"], "(--partial reads it up to the cut)"),
    (["plot", "{pcap}", "--kind", "rtt", "-o", "{tmp}/r.png"], "needs RttSample"),
    (["plot", "{jsonl}", "--kind", "rtt", "-o", "{tmp}/r.gif"], ".png or .svg"),
    (["draw", "{pcap}", "-o", "{tmp}/no/such/dir/x.svg"], "No such file"),
])
def test_errors_are_one_line_and_exit_2(bulk, tmp_path, capsys, argv, match):
    pcap, jsonl = bulk
    (tmp_path / "garbage").write_bytes(b"hello world")
    (tmp_path / "truncated").write_bytes(pcap.read_bytes()[:-5])
    names = {"missing": tmp_path / "missing.pcap", "pcap": pcap, "jsonl": jsonl, "tmp": tmp_path,
             "garbage": tmp_path / "garbage", "truncated": tmp_path / "truncated"}
    assert run(*[a.format(**names) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"synack {argv[0]}: error: ") and match in err[0]


def test_partial_reads_a_capture_cut_inside_a_record(bulk, tmp_path, capsys):
    """A capture whose writer was killed mid-record: --partial draws what is whole and warns."""
    pcap, _ = bulk
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(pcap.read_bytes()[:-5])
    assert run("draw", str(cut), "--list", "--partial") == 0
    out, err = capsys.readouterr()
    assert "1  " in out and "segments" in out
    assert err.startswith("synack draw: warning: file ends inside a record") and len(err.splitlines()) == 1
    assert run("plot", str(cut), "--kind", "time-sequence", "-o", str(tmp_path / "t.png"), "--partial") == 0
    assert (tmp_path / "t.png").stat().st_size > 0


def test_bad_arguments_exit_2(bulk):
    with pytest.raises(SystemExit) as e:
        run("plot", bulk[0], "--kind", "pie", "-o", "x.png")
    assert e.value.code == 2
