"""bench/cc_tun.py's pure functions (no root, no namespaces): the nft script with and without
loss on the ACK direction, the Mathis bound and the goodput over it, synack's configuration per
--cc. The transfers themselves are in test_cc_tun.py (root)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def cc_tun():
    """bench/cc_tun.py loaded by path. It puts bench/ on sys.path for its own imports; that is
    undone here, or bench/http.py would shadow the standard library's http package for every test
    collected after this one."""
    path = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location("bench_cc_tun", BENCH / "cc_tun.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path[:] = path
    assert not str(getattr(sys.modules.get("http"), "__file__", "")).startswith(str(BENCH))
    return mod


def rules(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if line.strip().startswith("ip ")]


def test_nft_script_loss_both_ways(cc_tun):
    r = rules(cc_tun.nft_script(1.5))
    kdst = cc_tun.KDST
    assert r == [f'ip daddr {kdst} counter name "data_all"',
                 f'ip daddr {kdst} numgen random mod 10000 < 150 counter name "data_drop" drop',
                 f'ip saddr {kdst} counter name "ack_all"',
                 f'ip saddr {kdst} numgen random mod 10000 < 150 counter name "ack_drop" drop']


def test_nft_script_no_ack_loss(cc_tun):
    """--ack-loss none: the only drop rule is on the data direction (towards B); ACKs are still
    counted, and every counter the script reads afterwards is declared."""
    script = cc_tun.nft_script(2, ack_loss=False)
    kdst = cc_tun.KDST
    assert rules(script) == [f'ip daddr {kdst} counter name "data_all"',
                             f'ip daddr {kdst} numgen random mod 10000 < 200 counter name "data_drop" drop',
                             f'ip saddr {kdst} counter name "ack_all"']
    for name in ("data_all", "data_drop", "ack_all", "ack_drop"):
        assert f"counter {name} {{}}" in script
    assert [x for x in rules(cc_tun.nft_script(0, ack_loss=False)) if "drop" in x] == []


def test_mathis(cc_tun):
    assert cc_tun.mathis(0.010, 0.01, 1448) == pytest.approx(1.22 * 1448 * 8 / (0.010 * 0.1))
    assert cc_tun.mathis(0.050, 0.02, 1448) / 1e6 == pytest.approx(1.9986, abs=1e-3)
    assert cc_tun.mathis(0.010, 0.0, 1448) == math.inf


def base_row(**kw) -> dict:
    r = {"rate": "100mbit", "loss": 1.0, "sender": "kernel", "cc": "reno", "path_rtt_ms": 10.0,
         "data_pkts": 20000, "data_drops": 250, "queue_drops": 50, "mss": 1448, "mbps_warm": 9.0}
    r.update(kw)
    return r


def test_mathis_fields_ratio(cc_tun):
    """p is nft's data drops over the data packets it saw (not the configured loss), the bound is at
    the configured RTT and the row's MSS, the ratio uses the goodput after warm-up."""
    f = cc_tun.mathis_fields(base_row())
    p = 250 / 20000
    bound = 1.22 * 1448 * 8 / (0.010 * math.sqrt(p)) / 1e6
    assert f["loss_met"] == pytest.approx(p)
    assert f["loss_met_tbf"] == pytest.approx(300 / 20000)
    assert f["mathis_mbps"] == pytest.approx(bound) and not f["mathis_capped"]
    assert f["mathis_ratio"] == pytest.approx(9.0 / bound)
    # another MSS, another bound
    assert cc_tun.mathis_fields(base_row(mss=1000))["mathis_mbps"] == pytest.approx(bound * 1000 / 1448)


def test_mathis_fields_capped_and_absent(cc_tun):
    f = cc_tun.mathis_fields(base_row(rate="5mbit"))
    assert f["mathis_capped"] and f["mathis_mbps"] == pytest.approx(5.0)
    assert f["mathis_ratio"] == pytest.approx(9.0 / 5.0)
    assert cc_tun.mathis_fields(base_row(rate="none"))["mathis_capped"] is False
    assert cc_tun.mathis_fields(base_row(mbps_warm=None))["mathis_ratio"] is None
    for kw in ({"loss": 0}, {"path_rtt_ms": 0.0}, {"data_pkts": 0}):
        assert cc_tun.mathis_fields(base_row(**kw)) == {}


def test_synack_config_cc(cc_tun):
    from synack.tcp import congestion
    for rtt in (0.0, 0.010):
        assert cc_tun.synack_config("100mbit", rtt, True).cc == "cubic"
        cfg = cc_tun.synack_config("100mbit", rtt, False, "reno")
        assert cfg.cc == "newreno" and cfg.sack is False
        assert congestion.get(cfg.cc).name == "reno"
