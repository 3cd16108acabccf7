"""``synack demo`` end to end: as root against the kernel in a private namespace, and as an
unprivileged user, where it falls back to the simulated network. Its outputs must exist and
parse. The root run needs root; skipped without it unless CI is set."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from http_helpers import needs_root_or_ci
from synack.link.pcap import read_pcap
from synack.log.jsonl import read_jsonl
from synack.pictures.model import load

NOBODY = 65534


def _check_outputs(out: Path, connections: int) -> None:
    for name in ("demo.pcap", "events.jsonl", "index.html", "connection-1.svg", "connection-1.mmd"):
        assert (out / name).stat().st_size > 0, name
    assert len(list(read_pcap(out / "demo.pcap"))) > 20
    recs = list(read_jsonl(out / "events.jsonl"))
    assert any(r["ev"] == "SegmentOut" for r in recs) and any(r["ev"] == "StateChanged" for r in recs)
    cap = load(str(out / "demo.pcap"))
    assert len(cap.connections) == connections
    assert (out / "connection-1.svg").read_text().lstrip().startswith("<svg")


@pytest.mark.root
@needs_root_or_ci()
def test_demo_as_root_runs_against_the_kernel(tmp_path):
    out = tmp_path / "demo"
    p = subprocess.Popen([sys.executable, "-m", "synack", "demo", "--out", str(out), "--color", "never"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, stdout + stderr
    assert "in a private network namespace" in stdout
    for what in ("curl, two fetches, one connection", "synack as the client", "lossy fetch"):
        assert what in stdout
    assert "1 connection(s) opened by curl, 1 accepted by synack" in stdout
    assert "SYN,ACK" in stdout and "TIME-WAIT" in stdout                # the terminal diagram
    _check_outputs(out, connections=3)
    page = (out / "page.html").read_text()
    assert "number 2 on this connection" in page and "<svg" in page
    # nothing left behind: the run's namespace (named after its PID) and TUN device are gone
    spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"synack-{p.pid}-" not in spaces
    devs = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"snk{p.pid % 100000}x" not in devs


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to an unprivileged user needs root")
def test_demo_as_nobody_falls_back_to_the_simulated_network():
    out_parent = Path(tempfile.mkdtemp(prefix="synack-demo-nobody-"))
    try:
        os.chmod(out_parent, 0o777)
        out = out_parent / "demo"
        env = dict(os.environ, MPLCONFIGDIR=str(out_parent / "mpl"), HOME=str(out_parent))
        r = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                            sys.executable, "-m", "synack", "demo", "--out", str(out), "--color", "never"],
                           capture_output=True, text=True, timeout=300, env=env, cwd=str(out_parent))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "not root" in r.stdout and "simulated network" in r.stdout
        _check_outputs(out, connections=3)
        assert (out / "demo.pcap").stat().st_uid == NOBODY
    finally:
        shutil.rmtree(out_parent, ignore_errors=True)


@pytest.mark.parametrize("kind", ["file", "under-a-file"])
def test_demo_out_that_cannot_be_a_directory_is_a_one_line_error(tmp_path, kind):
    """--out naming a file, or a path below one, exits 2 with one line, before anything runs."""
    f = tmp_path / "a-file"
    f.write_text("x")
    out = f if kind == "file" else f / "demo"
    r = subprocess.run([sys.executable, "-m", "synack", "demo", "--sim", "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith(f"synack demo: error: --out {out}: ") and len(r.stderr.splitlines()) == 1
    assert f.read_text() == "x"
