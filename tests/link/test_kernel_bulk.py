"""Bulk transfers against the Linux kernel over TUN, and tshark reading synack's own capture.

(The issue's "100 MB each way checked by SHA-256" and "tshark reads synack's pcap of these runs
with no malformed packets or bad checksums".) Same namespace set-up as test_kernel_interop.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from synack.link.netns import kernel_peer
from synack.link.pcap import PcapLink, PcapWriter
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from test_kernel_interop import SECRET, kernel_echo

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                       reason="needs root (TUN device, network namespaces); runs in CI"),
]


def test_hundred_megabytes_each_way_through_the_echo_service():
    """A kernel client sends 100 MB to synack's echo service and reads 100 MB back while it
    sends: 100 MB each way at once, both checked by SHA-256 on the kernel side."""
    n, seed = 100_000_000, 21
    with kernel_peer(offload=True) as peer:
        echo, _ = kernel_echo(peer, Stack(peer.stack_addresses, secret=SECRET), peer.link, [peer.stack_v4],
                              n, seed, client_timeout=580, runner_timeout=600)
    assert echo.echoed == n and not echo.errors


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_tso_echo_both_ways(family):
    """With TcpConfig.tso_max synack sends segments of up to 64 KB that the TUN device cuts
    (GSO): 20 MB each way at once, checked by SHA-256, with super-segments actually sent."""
    n, seed = 20_000_000, 23
    with kernel_peer(offload=True) as peer:
        stack = Stack(peer.stack_addresses, secret=SECRET, config=TcpConfig(tso_max=65535 - 40 - 60))
        host = peer.stack_v4 if family == "v4" else peer.stack_v6
        echo, _ = kernel_echo(peer, stack, peer.link, [host], n, seed, client_timeout=280, runner_timeout=300)
    assert echo.echoed == n and not echo.errors
    assert peer.link.counters.tx_gso > 0


@pytest.mark.skipif(shutil.which("tshark") is None and not os.environ.get("CI"), reason="tshark not installed")
def test_tshark_finds_no_malformed_packets_or_bad_checksums_in_synacks_capture(tmp_path):
    """synack's capture of a real exchange with the kernel (stack vantage): every packet parses
    in tshark, and every IP and TCP checksum is good."""
    pcap = tmp_path / "run.pcap"
    n, seed = 2_000_000, 22
    with kernel_peer(offload=False) as peer:
        writer = PcapWriter(pcap)
        try:
            kernel_echo(peer, Stack(peer.stack_addresses, secret=SECRET), PcapLink(peer.link, writer),
                        [peer.stack_v4, peer.stack_v6], n, seed, client_timeout=100, runner_timeout=120)
        finally:
            writer.close()
    total = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "frame.number"],
                           capture_output=True, text=True, timeout=120)
    assert total.returncode == 0, total.stderr
    frames = len(total.stdout.split())
    assert frames > 1000
    # A TCP checksum field of 0xFFFF where tshark computes 0x0000 is the other ones'-complement
    # zero: it verifies (the sum over the segment is the same; RFC 1624 §3), and the kernel's
    # checksum code sends it about once in 65,536 segments. tshark marks its status Bad, so it is
    # let through here; synack's own checksum() never yields 0xFFFF (tests/wire/test_checksum.py).
    checks = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]
    flagged = ("_ws.malformed || _ws.expert.severity == error || ip.checksum.status == 0 "
               "|| (tcp.checksum.status == 0 && !(tcp.checksum == 0xffff && tcp.checksum_calculated == 0))")
    bad = subprocess.run(["tshark", "-r", str(pcap), *checks, "-Y", flagged, "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 0, bad.stderr
    if bad.stdout.split():
        detail = subprocess.run(["tshark", "-r", str(pcap), *checks, "-Y", flagged, "-V"],
                                capture_output=True, text=True, timeout=120).stdout
        pytest.fail(f"{len(bad.stdout.split())} of {frames} frames flagged by tshark:\n{detail[:6000]}")
