"""bench/reno_model.py, the round-trip model of a standard Reno sender next to the Mathis bound:
without its two departures from the fluid sawtooth it lands on the bound (so the model is the
paper's), each departure costs throughput, and bad arguments are refused."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _module():
    # loaded by path: bench/ on sys.path would let bench/http.py shadow the stdlib's http
    spec = importlib.util.spec_from_file_location("bench_reno_model", BENCH / "reno_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("pct", [1, 2])
def test_fluid_sawtooth_meets_the_bound_and_each_departure_costs(pct):
    m = _module()
    ratios = {}
    for whole in (False, True):
        for rec in (False, True):
            rate, met = m.model(pct / 100, whole=whole, recovery_round=rec, rounds=60_000, seed=3)
            assert abs(met - pct / 100) < 0.1 * pct / 100
            ratios[whole, rec] = rate / (1.22 / math.sqrt(met))
    assert 0.97 < ratios[False, False] < 1.08
    assert ratios[True, True] < ratios[True, False] < ratios[False, False]
    assert ratios[True, True] < ratios[False, True] < ratios[False, False]


@pytest.mark.parametrize("argv", [["--loss", "0"], ["--loss", "100"], ["--rounds", "0"]])
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as e:
        _module().main(argv)
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err
