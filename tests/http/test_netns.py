"""synack's HTTP server on a TUN device in a private namespace, fetched by real clients run
inside that namespace: curl, ab, wrk and headless Chromium. Needs root; skipped without it
unless CI is set (CI runs as root and must run them). Tools missing in CI fail the test."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from http_helpers import make_site, needs_root_or_ci

pytestmark = [pytest.mark.root, needs_root_or_ci()]

SYNACK = "192.0.2.2"


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        import os
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed and CI must run this test (apt-get install {package})")
        pytest.skip(f"{tool} is not installed (apt-get install {package})")
    return path


@dataclass
class Lab:
    peer: object
    astack: object
    site: object         # HttpServer with the built-in site, port 80
    files: object        # HttpServer with StaticFiles, port 8080
    root: Path

    def run(self, argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
        return self.peer.run(argv, timeout=timeout)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from synack.api.aio import AsyncStack
    from synack.http.server import HttpServer, ServerConfig
    from synack.http.site import Site
    from synack.http.static import StaticFiles
    from synack.http.trace import TraceStore
    from synack.link.netns import kernel_peer
    from synack.stack.host import Stack

    root = make_site(tmp_path_factory.mktemp("lab"))
    with kernel_peer(ipv6=False) as peer:
        stack = Stack(peer.stack_addresses, secret=b"http-netns-test")
        trace = TraceStore().attach(stack)
        astack = AsyncStack.start_thread(stack, peer.link, "synack-http-test")
        site = HttpServer(Site(trace))
        files = HttpServer(StaticFiles(root), ServerConfig(idle_timeout=5.0))
        try:
            astack.run(site.listen_synack(astack, None, 80), timeout=5)
            astack.run(files.listen_synack(astack, None, 8080), timeout=5)
            yield Lab(peer, astack, site, files, root)
        finally:
            for s in (site, files):
                try:
                    astack.run(s.shutdown(1.0), timeout=5)
                except Exception:           # noqa: BLE001 - the loop may be gone already
                    pass
            astack.close()


def test_curl_pages_are_byte_exact_on_one_kept_alive_connection(lab, tmp_path):
    need("curl", "curl")
    names = ["hello.txt", "big.bin", "sub/a.css", "index.html"]
    outs = []
    for i, _ in enumerate(names):
        outs += ["-o", str(tmp_path / f"out{i}")]
    before = dict(lab.files.stats)
    r = lab.run(["curl", "-sS", "--max-time", "20", *outs, "-w", "%{http_code} %{num_connects}\\n",
                 *[f"http://{SYNACK}:8080/{n}" for n in names]])
    assert r.returncode == 0, r.stderr
    lines = [ln.split() for ln in r.stdout.splitlines()]
    assert [ln[0] for ln in lines] == ["200"] * len(names)
    assert sum(int(ln[1]) for ln in lines) == 1                      # curl opened one connection
    assert lab.files.stats["connections"] - before["connections"] == 1   # synack accepted one
    assert lab.files.stats["requests"] - before["requests"] == len(names)
    for i, n in enumerate(names):
        assert (tmp_path / f"out{i}").read_bytes() == (lab.root / n).read_bytes(), n


def test_curl_range_head_and_conditional(lab, tmp_path):
    need("curl", "curl")
    data = (lab.root / "big.bin").read_bytes()
    r = lab.run(["curl", "-sS", "-r", "1000-1999", "-o", str(tmp_path / "part"), "-w", "%{http_code}",
                 f"http://{SYNACK}:8080/big.bin"])
    assert r.stdout == "206" and (tmp_path / "part").read_bytes() == data[1000:2000]
    r = lab.run(["curl", "-sS", "-I", f"http://{SYNACK}:8080/big.bin"])
    assert r.stdout.startswith("HTTP/1.1 200") and "content-length: 300000" in r.stdout.lower()
    lm = re.search(r"(?im)^last-modified: (.+?)\r?$", r.stdout).group(1)
    r = lab.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"If-Modified-Since: {lm}",
                 f"http://{SYNACK}:8080/big.bin"])
    assert r.stdout == "304"


def test_ab_without_failures(lab):
    need("ab", "apache2-utils")
    for extra in ([], ["-k"]):         # -k: HTTP/1.0 keep-alive, which h11 answers with close
        r = lab.run(["ab", "-q", "-n", "300", "-c", "8", "-s", "10", *extra, f"http://{SYNACK}:8080/hello.txt"],
                    timeout=60)
        assert r.returncode == 0, r.stderr
        assert re.search(r"Complete requests:\s+300\b", r.stdout), r.stdout
        assert re.search(r"Failed requests:\s+0\b", r.stdout), r.stdout
        assert re.search(r"Document Length:\s+13 bytes", r.stdout)


def test_wrk_reuses_connections(lab):
    need("wrk", "wrk")
    before = dict(lab.files.stats)
    r = lab.run(["wrk", "-t1", "-c4", "-d2s", "--timeout", "5s", f"http://{SYNACK}:8080/hello.txt"], timeout=30)
    assert r.returncode == 0, r.stderr
    m = re.search(r"(\d+) requests in", r.stdout)
    assert m and int(m.group(1)) >= 50, r.stdout
    assert "Socket errors" not in r.stdout and "Non-2xx" not in r.stdout, r.stdout
    conns = lab.files.stats["connections"] - before["connections"]
    reqs = lab.files.stats["requests"] - before["requests"]
    assert conns <= 8 and reqs >= int(m.group(1))                  # keep-alive: few connections


def test_chromium_renders_the_page_with_its_diagram(lab, tmp_path):
    chromium = need("chromium", "chromium")
    profile = tempfile.mkdtemp(prefix="synack-chromium-")
    shot = tmp_path / "page.png"
    before = lab.site.stats["requests"]
    try:
        r = lab.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
                     "--window-size=1200,1800", f"--screenshot={shot}", f"http://{SYNACK}/"], timeout=90)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert shot.exists(), r.stderr[-2000:]
    assert lab.site.stats["requests"] > before
    from PIL import Image
    img = Image.open(shot).convert("RGB")
    small = img.resize((img.width // 4, img.height // 4))
    raw = small.tobytes()
    px = [tuple(raw[i:i + 3]) for i in range(0, len(raw), 3)]
    ink = sum(1 for p in px if sum(p) < 600) / len(px)
    assert ink > 0.01, f"the screenshot is (nearly) blank: {ink:.4f} ink"
    blue = sum(1 for (r_, g, b) in px if b > 150 and r_ < 120)        # the diagram's coloured arrows
    assert len(set(px)) > 20 and blue > 0


def test_serve_runner_hosts_http_and_the_classic_services(tmp_path):
    """What ``synack serve --http`` does: AsyncRunner, HttpService and ServiceHost on one stack."""
    need("curl", "curl")
    import argparse
    import sys

    from synack.http.cli import HttpService, attach_http
    from synack.link.netns import kernel_peer
    from synack.services import ServiceHost
    from synack.stack.host import Stack

    p = argparse.ArgumentParser()
    attach_http(p)
    root = make_site(tmp_path)
    args = p.parse_args(["--http", "80", "--http", f"8080:{root}"])
    with kernel_peer(ipv6=False) as peer:
        stack = Stack(peer.stack_addresses, secret=b"serve-http-test")
        http = HttpService(args, stack)
        runner = http.make_runner(peer.link)
        host = ServiceHost(runner.hook_stack)
        host.add("echo", 7)
        runner.add_hook(host)
        ready = http.start(runner)
        assert ready == ["http on 80 (built-in site)", f"http on 8080 (files from {root})"]
        t = threading.Thread(target=runner.run, kwargs={"timeout": 30}, daemon=True)
        t.start()
        try:
            r = peer.run(["curl", "-sS", "--max-time", "10", f"http://{SYNACK}/", f"http://{SYNACK}:8080/hello.txt"])
            assert r.returncode == 0, r.stderr
            assert "Your connection, as synack saw it" in r.stdout and r.stdout.endswith("hello, world\n")
            echo = peer.run([sys.executable, "-c", "import socket; s = socket.create_connection(('192.0.2.2', 7), 5);"
                             "s.sendall(b'ping'); s.shutdown(1); print(s.recv(100).decode())"])
            assert echo.stdout.strip() == "ping", echo.stderr
        finally:
            runner.stop()
            t.join(10)
        assert not t.is_alive()
        host.shutdown(runner.now())
        assert http.stop(runner, 1.0) == 0
        runner.run(until=host.finished, timeout=2.0)
        runner.close()
