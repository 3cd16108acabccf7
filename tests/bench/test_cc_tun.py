"""Smoke test of bench/cc_tun.py: tiny transfers, every row present and sensible.

The benchmark itself (synack->kernel next to kernel->kernel, both CUBIC or both Reno, nft loss, tbf
bottleneck) is in bench/cc_tun.py; its numbers are in docs/congestion.md. Here it runs with 4 MiB
per transfer, 0 and 1 % loss, no bottleneck and 100 Mbit/s: eight transfers, a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cc_tun.py"

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                       reason="needs root (TUN device, network namespaces); runs in CI"),
]


def run_bench(args: list[str], out: Path) -> tuple[subprocess.Popen, str, list[dict]]:
    """Run the bench with ``args`` (and ``--json out``); on a timeout SIGTERM first, so that it
    cleans up. Returns the process, its stdout and the rows it wrote."""
    p = subprocess.Popen([sys.executable, str(BENCH), *args, "--json", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.terminate()
            try:
                p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
    assert p.returncode == 0, stderr[-3000:]
    return p, stdout, json.loads(out.read_text())


def test_cc_tun_smoke(tmp_path):
    out = tmp_path / "rows.json"
    mib = 4
    p, stdout, rows = run_bench(["--mb", str(mib), "--max-secs", "5", "--loss", "0", "1",
                                 "--rate", "none", "100mbit"], out)
    assert [(r["rate"], r["loss"], r["sender"]) for r in rows] == [
        (rate, loss, who) for rate in ("none", "100mbit") for loss in (0, 1) for who in ("synack", "kernel")]
    for r in rows:
        where = f"{r['rate']} {r['loss']}% {r['sender']}: {r}"
        assert r["cc"] == "cubic", where
        assert r["bytes"] == mib << 20 and r["mbps"] > 0, where
        assert r["data_pkts"] >= (mib << 20) // 1448, where          # every data packet crossed the nft rule
        assert r["data_bytes_per_pkt"] <= 1500, where                  # one MSS per packet: offloads off
        if r["rate"] != "none":
            assert r["mbps"] < 100, where                              # the tbf bottleneck is in the path
        if r["loss"]:
            # ~1 % of ~2,900 data packets: fewer than 3 drops has odds far below 1e-6
            assert 0.001 < r["data_drops"] / r["data_pkts"] < 0.05, where
            assert r["retrans"] > 0, where
        else:
            assert r["data_drops"] == 0 and r["ack_drops"] == 0, where
    # ACKs are fewer (a fast kernel receiver acknowledges many segments at once): counted together
    lossy = [r for r in rows if r["loss"]]
    assert sum(r["ack_drops"] for r in lossy) > 0, lossy
    assert 0.001 < sum(r["ack_drops"] for r in lossy) / sum(r["ack_pkts"] for r in lossy) < 0.05, lossy
    for line in ("| none | 1 | synack (cubic) |", "| 100mbit | 0 | kernel (cubic) |"):
        assert line in stdout, stdout
    # what it created is gone: its namespaces (named synack-<its pid>-<n>, the veths, nft table,
    # qdisc and TUN device inside them) were removed before it exited
    left = [n for n in os.listdir("/var/run/netns") if n.startswith(f"synack-{p.pid}-")] \
        if os.path.isdir("/var/run/netns") else []
    assert not left, left


def test_cc_tun_delay_line(tmp_path):
    """--rtt 50 --sack off: the delay line is in the path (both senders' SRTT at least 50 ms, the
    relay counted the data), SACK is off on both connections, and the warm-up goodput is there."""
    out = tmp_path / "rows.json"
    mib = 2
    p, stdout, rows = run_bench(["--mb", str(mib), "--max-secs", "5", "--loss", "0", "--rate", "20mbit",
                                 "--rtt", "50", "--sack", "off", "--warmup", "0.5"], out)
    assert [r["sender"] for r in rows] == ["synack", "kernel"], rows
    for r in rows:
        where = f"{r['sender']}: {r}"
        # without SACK a slow-start overshoot into the BDP queue can take the kernel longer than
        # the 5 s bound (it repairs about one hole per round trip), so not every byte is asked for
        assert 0 < r["bytes"] <= mib << 20 and not r["cut"], where
        assert r["sack"] is False and r["sack_ok"] is False, where
        assert r["rtt_min_ms"] >= 50, where                           # the delay line's 50 ms
        assert r["mbps"] < 20 and r["mbps_warm"] is not None, where
        relay = r["relay"]
        # every byte crossed the line R -> B (tbf tail drops are counted by nft, not by the relay)
        assert r["bytes"] // 1448 <= relay["a->b"]["packets"] <= r["data_pkts"], where
        assert relay["b->a"]["packets"] > 0 and relay["a->b"]["write_errors"] == 0, where
    assert "| 20mbit | 0 | synack (cubic) |" in stdout and "relay packets R->B" in stdout, stdout
    left = [n for n in os.listdir("/var/run/netns") if n.startswith(f"synack-{p.pid}-")] \
        if os.path.isdir("/var/run/netns") else []
    assert not left, left


def test_cc_tun_reno_no_ack_loss(tmp_path):
    """--cc reno --ack-loss none --rtt 20: both senders use Reno (the kernel's socket says "reno",
    synack's "newreno" is its Reno), nft drops data and no ACK while counting both ways, and the
    Mathis table and fields are there (the bound at 20 ms and the loss nft met)."""
    out = tmp_path / "rows.json"
    p, stdout, rows = run_bench(["--mb", "2", "--max-secs", "5", "--loss", "2", "--rate", "20mbit",
                                 "--rtt", "20", "--warmup", "1", "--cc", "reno", "--ack-loss", "none"], out)
    assert [r["sender"] for r in rows] == ["synack", "kernel"], rows
    for r in rows:
        where = f"{r['sender']}: {r}"
        assert r["cc"] == "reno" and r["ack_loss"] == "none", where
        assert r["ack_pkts"] > 0 and r["ack_drops"] == 0, where
        assert 0 < r["data_drops"] < r["data_pkts"], where
        assert r["loss_met"] == r["data_drops"] / r["data_pkts"], where
        assert r["mss"] == 1448 and r["mathis_mbps"] > 0 and r["mathis_ratio"] > 0, where
    assert "| 20mbit | 2 | synack (reno) |" in stdout and "| 20mbit | 2 | kernel (reno) |" in stdout, stdout
    assert "Mathis bound Mbit/s" in stdout and "on data only" in stdout, stdout
    left = [n for n in os.listdir("/var/run/netns") if n.startswith(f"synack-{p.pid}-")] \
        if os.path.isdir("/var/run/netns") else []
    assert not left, left
