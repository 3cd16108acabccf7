"""`make bench` runs bench/run.py: every benchmark it lists exists and parses its arguments.

The benchmarks themselves are not tests (their figures depend on the machine); this only keeps
the entry point from rotting.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
_spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)


def test_makefile_runs_bench_run():
    makefile = (BENCH.parent / "Makefile").read_text()
    assert "bench/run.py" in makefile
    assert (BENCH / "run.py").exists()


@pytest.mark.parametrize("name", [b[0] for b in run.BENCHES])
def test_each_benchmark_answers_help(name):
    out = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_unknown_benchmark_is_a_usage_error():
    out = subprocess.run([sys.executable, str(BENCH / "run.py"), "--only", "nope"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
