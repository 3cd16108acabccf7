"""``synack serve --http ... --workers 2``: two processes on a two-queue TUN, fetched with curl in
the namespace the serve creates; byte-exact files, both workers counted, a clean stop that leaves
no process, device or namespace. Needs root; skipped without it unless CI is set."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from serve_helpers import ServeProcess, netns_exists, synack, unique_ns

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                       reason="needs root (TUN device, network namespaces); runs in CI"),
]


def test_two_workers_serve_files_and_the_site_then_stop_cleanly(tmp_path):
    body = bytes(range(256)) * 20 + b"end"
    (tmp_path / "f.bin").write_bytes(body)
    ns = unique_ns("workers")
    with ServeProcess(ns, "--http", "80", "--http", f"8080:{tmp_path}", "--workers", "2",
                      use_control=False) as sp:
        assert re.search(r"http on 80 \(built-in site\), http on 8080 \(files from .*\) at 192\.0\.2\.2", sp.ready)
        pids = [int(p) for p in re.search(r"2 workers, pids (\d+ \d+)", sp.ready).group(1).split()]
        argv = ["curl", "-sS", "--fail", "-H", "Connection: close"]
        for _ in range(20):
            argv += ["http://192.0.2.2:8080/f.bin", "-o", "/dev/stdout"]
        r = sp.run(argv, text=False)
        assert r.returncode == 0, r.stderr
        assert r.stdout == body * 20
        site = sp.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{http_code}", "http://192.0.2.2/"])
        assert site.stdout == "200", site.stderr
        assert sp.stop(signal.SIGINT) == 0, sp.stderr
        line = sp.wait_for(r"stopped \(SIGINT\)", 1)
        assert "2 of 2 workers stopped cleanly" in line
        assert int(re.search(r"(\d+) connections", line).group(1)) >= 21
        assert re.search(r"(\d+) requests, 0 errors", line)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}")
    assert not netns_exists(ns)


@pytest.mark.parametrize("args", [["--workers", "2"], ["--workers", "2", "--http", "80", "--echo"],
                                  ["--workers", "2", "--http", "80", "--loss", "0.1"],
                                  ["--workers", "0", "--http", "80"]],
                         ids=["no-http", "echo", "loss", "zero"])
def test_workers_with_what_they_cannot_do_exit_2(args):
    r = synack("serve", "--netns", "BADARGS", *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("synack serve: error: ")
    assert not netns_exists("BADARGS")
