"""``--cc NAME`` on the commands that make connections (serve is checked in tests/stack/test_serve.py)."""

import subprocess
import sys

from synack.sim.transfer import run_transfer


def synack(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "synack", *args], capture_output=True, text=True, timeout=timeout)


def test_soak_runs_with_each_algorithm():
    for cc in ("reno", "newreno", "cubic"):
        r = synack("soak", "--seeds", "3", "--cc", cc)
        assert r.returncode == 0, r.stderr
        assert "3 passed, 0 failed" in r.stdout


def record_cc(monkeypatch, module) -> list[str]:
    """Every Stack ``module`` builds from now on appends its TcpConfig.cc to the list returned."""
    made: list[str] = []
    real = module.Stack

    def recording_stack(*a, **kw):
        made.append(kw["config"].cc)
        return real(*a, **kw)

    monkeypatch.setattr(module, "Stack", recording_stack)
    return made


def test_transfer_uses_the_algorithm_asked_for(monkeypatch):
    import synack.sim.transfer as transfer

    made = record_cc(monkeypatch, transfer)
    assert run_transfer(7, 50_000, 1_000, loss=0.02, cc="newreno").ok
    assert made == ["newreno", "newreno"]


def test_unknown_algorithm_is_a_one_line_usage_error():
    for cmd in ("soak", "demo"):
        r = synack(cmd, "--cc", "vegas")
        assert r.returncode == 2
        assert len(r.stderr.strip().splitlines()) == 1 and "invalid choice: 'vegas'" in r.stderr


def test_demo_on_the_simulator_with_newreno(tmp_path, monkeypatch):
    """The demo's stacks are built with the algorithm asked for (the log does not name it)."""
    import synack.demo_sim as demo_sim
    from synack.cli import main

    made = record_cc(monkeypatch, demo_sim)
    assert main(["demo", "--sim", "--cc", "newreno", "--out", str(tmp_path / "d"), "--color", "never"]) == 0
    assert made == ["newreno", "newreno"]
    assert (tmp_path / "d" / "events.jsonl").stat().st_size > 0
