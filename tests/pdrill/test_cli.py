"""``synack pdrill`` on the command line: a script's errors and bad arguments are reported in
one line each, with exit status 2 for a usage error, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts"


def pdrill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synack", "pdrill", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args", [["-j", "0"], ["-j", "-3"], ["-j", "two"], ["--profile", "windows"]],
                         ids=["jobs-0", "jobs-negative", "jobs-word", "profile"])
def test_bad_arguments_exit_2_with_one_line(args):
    r = pdrill(*args, str(SCRIPT))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("synack pdrill: error: ") and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stdout == ""


def test_script_errors_are_reported_per_script(tmp_path):
    """A script that does not parse, one that is not text and one that is missing: each an ERROR
    line naming it, a summary, and exit status 1."""
    (tmp_path / "cut.pkt").write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bogus(\n")
    (tmp_path / "binary.pkt").write_bytes(b"\xff\xfe\x00")
    r = pdrill(str(tmp_path / "cut.pkt"), str(tmp_path / "binary.pkt"), str(tmp_path / "missing.pkt"))
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split()[0] for ln in lines[:3]] == ["ERROR"] * 3, lines
    assert "cut.pkt:2:" in lines[0] and "not UTF-8" in lines[1] and "cannot read script" in lines[2]
    assert lines[-1] == "0 passed, 0 failed, 3 errors"
    assert "Traceback" not in r.stderr
