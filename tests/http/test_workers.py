"""``HttpWorkers``: two forked HTTP servers on the two queues of a multi-queue TUN device, fetched
by curl and wrk in a private namespace; byte-exact answers, both workers serving, no process left
after stop, after an exception in the ``with`` block and after a worker that fails to start."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from http_helpers import needs_root_or_ci
from synack.http.server import ServerConfig
from synack.http.static import StaticFiles
from synack.http.workers import HttpWorkers, WorkerError
from synack.link.netns import kernel_peer
from synack.link.tun import TunQueue

pytestmark = [pytest.mark.root, needs_root_or_ci()]

SYNACK = "192.0.2.2"


def alive(pid: int) -> bool:
    """True if ``pid`` exists (a zombie counts: it was not reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def children() -> set[int]:
    """This process's child processes (zombies included), from /proc."""
    out: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            out.update(int(p) for p in f.read().split())
    return out


@pytest.fixture
def root(tmp_path):
    (tmp_path / "file.bin").write_bytes(bytes(range(256)) * 40 + b"tail")      # 10,244 bytes
    return tmp_path


def test_two_workers_serve_byte_exact_files_and_leave_nothing_behind(root):
    body = (root / "file.bin").read_bytes()
    with kernel_peer(ipv6=False, queues=2) as peer:
        workers = HttpWorkers(StaticFiles(root), peer.link.queues, peer.stack_addresses, 80,
                              config=ServerConfig(idle_timeout=5.0))
        with workers:
            pids = list(workers.pids)
            assert len(pids) == 2 and all(alive(p) for p in pids)
            assert os.getpid() not in pids
            assert set(pids) <= children()
            # 30 requests, each on a new connection (the server closes after answering)
            argv = ["curl", "-sS", "--fail", "-H", "Connection: close"]
            for i in range(30):
                argv += [f"http://{SYNACK}/file.bin", "-o", "/dev/stdout"]
            r = subprocess.run(peer.command(argv), capture_output=True, timeout=60)
            assert r.returncode == 0, r.stderr
            assert r.stdout == body * 30
            if shutil.which("wrk"):
                w = peer.run(["wrk", "-t1", "-c4", "-d1s", "-H", "Connection: close",
                              f"http://{SYNACK}/file.bin"], timeout=30)
                assert w.returncode == 0, w.stderr
                assert int(re.search(r"(\d+) requests in", w.stdout).group(1)) > 0
                assert "Non-2xx" not in w.stdout and "Socket errors" not in w.stdout, w.stdout
        assert workers.pids == []
        assert not any(alive(p) for p in pids) and not children() & set(pids)
        stats = sorted(workers.stats, key=lambda s: s["worker"])
        assert [s["pid"] for s in stats] == pids
        assert all(s["requests"] > 0 and s["errors"] == 0 for s in stats)          # both served
        assert sum(s["connections"] for s in stats) >= 30


def test_an_exception_in_the_with_block_stops_the_workers(root):
    with kernel_peer(ipv6=False, queues=2) as peer:
        workers = HttpWorkers(StaticFiles(root), peer.link.queues, peer.stack_addresses, 80)
        with pytest.raises(KeyboardInterrupt):
            with workers:
                pids = list(workers.pids)
                raise KeyboardInterrupt
        assert len(pids) == 2 and not any(alive(p) for p in pids)


def test_a_worker_that_fails_to_start_fails_start_and_stops_the_others(root):
    before = children()
    with kernel_peer(ipv6=False, queues=2) as peer:
        TunQueue.close(peer.link.queues[1])            # worker 1 gets a closed fd; worker 0 starts
        workers = HttpWorkers(StaticFiles(root), peer.link.queues, peer.stack_addresses, 80)
        with pytest.raises(WorkerError, match=r"(?s)worker 1 \(pid \d+\) did not start: .*Invalid file descriptor"):
            workers.start()
        assert workers.pids == []
        assert children() == before
