"""``synack serve`` end to end: the real command in a subprocess, the kernel's programs (python,
socat) in the namespace it creates, ``synack ss`` / ``synack stats`` against its control socket,
and a clean exit on SIGINT/SIGTERM. Needs root; skipped without it unless CI is set.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from serve_helpers import ServeProcess, netns_exists, pids_mentioning, readline, stop_pid, synack, unique_ns
from synack.services import CHARGEN
from synack.testing.peers import ECHO_CLIENT

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                       reason="needs root (TUN device, network namespaces); runs in CI"),
]

CHARGEN_CLIENT = textwrap.dedent("""
    import hashlib, socket, sys
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    s = socket.create_connection((host, port), timeout=30)
    got = bytearray()
    while len(got) < n:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.shutdown(socket.SHUT_WR)           # RFC 864: the user ends the stream
    total = len(got)
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        total += len(b)
    s.close()
    print(hashlib.sha256(bytes(got[:n])).hexdigest(), total, flush=True)
""")

HOLD_CLIENT = textwrap.dedent("""
    import socket, sys
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
    s.sendall(b"hold"); assert s.recv(4) == b"hold"
    print(s.getsockname()[1], flush=True)
    try:
        b = s.recv(10)
        print("eof" if b == b"" else "data", flush=True)
    except ConnectionResetError:
        print("reset", flush=True)
""")

CONCURRENT_CLIENT = textwrap.dedent("""
    import asyncio, random, sys, time
    host, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    async def one(i):
        data = random.Random(i).randbytes(size)
        r, w = await asyncio.open_connection(host, port)
        w.write(data)
        await w.drain()
        w.write_eof()
        got = await r.read(-1)
        w.close()
        return got == data
    async def main():
        t0 = time.monotonic()
        res = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True), 90)
        ok = sum(1 for x in res if x is True)
        errs = sorted({repr(x) for x in res if x is not True})[:5]
        print(ok, round(time.monotonic() - t0, 3), errs, flush=True)
    asyncio.run(main())
""")


@pytest.fixture(scope="module")
def serve():
    ns = unique_ns("serve")
    with ServeProcess(ns, "--echo", "--discard", "--chargen") as sp:
        yield sp
        assert sp.stop() == 0, sp.stderr
    assert not netns_exists(ns)


def stats(sp: ServeProcess) -> dict[str, int]:
    r = synack("stats", "--control", sp.control)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("#synack pid")
    out = {}
    for line in lines[1:]:
        name, value = line.rsplit(None, 1)
        out[name.strip()] = int(value) if value.lstrip("-").isdigit() else float(value)
    return out


def parse_ss(text: str) -> list[dict]:
    """Rows of ``synack ss`` output: the table line plus its tab-indented detail line."""
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["State", "Recv-Q", "Send-Q"], lines[0]
    rows = []
    for line in lines[1:]:
        if line.startswith("\t"):
            rows[-1]["detail"] = dict(kv.split(":", 1) if ":" in kv else (kv, "")
                                      for kv in line.split())
            continue
        f = line.split()
        rows.append({"state": f[0], "recv_q": int(f[1]), "send_q": int(f[2]), "local": f[3], "peer": f[4],
                     "process": f[5] if len(f) > 5 else None, "detail": {}})
    return rows


# ------------------------------------------------------------------ services

@pytest.mark.parametrize("host", ["192.0.2.2", "2001:db8::2"], ids=["v4", "v6"])
def test_echo_one_megabyte(serve, host):
    n, seed = 1 << 20, 21
    t0 = time.monotonic()
    r = serve.python(ECHO_CLIENT, host, 7, n, seed, timeout=60)
    got, digest = r.stdout.split()
    assert int(got) == n
    assert digest == hashlib.sha256(random.Random(seed).randbytes(n)).hexdigest()
    assert time.monotonic() - t0 < 60
    serve.wait_for(r"close echo .* in 1048576 B  out 1048576 B", 10)


def test_discard_with_socat(serve, tmp_path):
    before = stats(serve).get("svc.discard_bytes_in", 0)
    blob = tmp_path / "blob"
    blob.write_bytes(random.Random(3).randbytes(1 << 20))
    r = serve.run(["socat", "-u", f"OPEN:{blob}", "TCP:192.0.2.2:9"], timeout=60)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 10
    while stats(serve).get("svc.discard_bytes_in", 0) - before < 1 << 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stats(serve)["svc.discard_bytes_in"] - before == 1 << 20


def test_chargen_pattern(serve):
    n = 200_000
    r = serve.python(CHARGEN_CLIENT, "192.0.2.2", 19, n, timeout=60)
    digest, total = r.stdout.split()
    expect = (CHARGEN * (n // len(CHARGEN) + 1))[:n]
    assert digest == hashlib.sha256(expect).hexdigest()
    assert int(total) >= n
    assert CHARGEN[:74] == b' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n'


def test_two_hundred_concurrent_echo_connections(serve):
    opened = serve.count(r"^open  echo")
    t0 = time.monotonic()
    r = serve.python(CONCURRENT_CLIENT, "192.0.2.2", 7, 200, 2000, timeout=120)
    ok, secs, errs = r.stdout.split(" ", 2)
    assert int(ok) == 200, (ok, errs)
    assert time.monotonic() - t0 < 120
    deadline = time.monotonic() + 10
    while serve.count(r"^open  echo") - opened < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert serve.count(r"^open  echo") - opened == 200


# ------------------------------------------------------------------ ss and stats

def test_ss_and_stats(serve):
    p = serve.popen([sys.executable, "-c", HOLD_CLIENT, "192.0.2.2", "7"], stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)
    try:
        port = int(readline(p, 20))
        r = synack("ss", "--control", serve.control)
        assert r.returncode == 0, r.stderr
        rows = parse_ss(r.stdout)
        mine = [x for x in rows if x["peer"] == f"192.0.2.1:{port}"]
        assert len(mine) == 1, r.stdout
        row = mine[0]
        assert row["state"] == "ESTAB" and row["local"] == "192.0.2.2:7" and row["process"] == "echo"
        assert row["recv_q"] == 0 and row["send_q"] == 0
        d = row["detail"]
        srtt, rttvar = (float(x) for x in d["rtt"].split("/"))
        assert 0 <= srtt < 1000 and rttvar >= 0          # ms; the TS echo has 1 ms resolution
        assert int(d["cwnd"]) >= 1 and int(d["mss"]) > 0 and d["retrans"] == "0/0"
        assert int(d["rto"]) >= 200
        # listeners: -l shows only them
        lrows = parse_ss(synack("ss", "-l", "--control", serve.control).stdout)
        assert {(x["state"], x["local"], x["process"]) for x in lrows} == {
            ("LISTEN", "*:7", "echo"), ("LISTEN", "*:9", "discard"), ("LISTEN", "*:19", "chargen")}
        # the JSON form and the name form of --control
        js = json.loads(synack("ss", "--json", "--control", serve.control).stdout)
        assert any(c["peer"] == f"192.0.2.1:{port}" and c["state"] == "ESTABLISHED" for c in js["connections"])
        if serve.control == f"/run/synack/{serve.ns}.sock":
            assert synack("ss", "--control", serve.ns).returncode == 0
        s = stats(serve)
        assert s["tcp_in"] > 0 and s["tcp_out"] > 0 and s["ip_in"] >= s["tcp_in"]
        assert s["svc.echo_opened"] >= 1 and s["conns"] >= 1 and s["services_open"] >= 1
        assert s["tun.rx_packets"] == s["ip_in"]
        assert s["rss_kb"] > 0
    finally:
        stop_pid(p, signal.SIGTERM)


def test_ss_without_a_server_fails_cleanly(tmp_path):
    r = synack("ss", "--control", str(tmp_path / "nothing.sock"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ stopping

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_closes_with_fin_and_removes_everything(sig):
    ns = unique_ns("sig")
    with ServeProcess(ns, "--echo") as sp:
        p = sp.popen([sys.executable, "-c", HOLD_CLIENT, "192.0.2.2", "7"], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
        try:
            readline(p, 20)
            assert os.path.exists(sp.control)
            t0 = time.monotonic()
            assert sp.stop(sig) == 0, sp.stderr
            assert time.monotonic() - t0 < 10
            assert readline(p, 10).strip() == "eof"          # a FIN, not a reset
        finally:
            stop_pid(p, signal.SIGKILL)
        assert sp.wait_for(r"^close echo .*\(shutdown\)", 1)
        assert sp.wait_for(rf"stopped \({signal.Signals(sig).name}\)", 1)
    assert not netns_exists(ns)
    assert not os.path.exists(sp.control)
    assert pids_mentioning(ns) == []


def test_existing_namespace_is_left_in_place():
    ns = unique_ns("keep")
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    try:
        with ServeProcess(ns, "--echo", "--duration", "30") as sp:
            assert "(created)" not in sp.ready
            r = sp.python("import socket,sys; s=socket.create_connection(('192.0.2.2',7),5); "
                          "s.sendall(b'x'); print(s.recv(1).decode())")
            assert r.stdout.strip() == "x"
            assert sp.stop() == 0
        assert netns_exists(ns)
    finally:
        subprocess.run(["ip", "netns", "delete", ns], timeout=10)


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("args", [
    ["--netns", "BADARGS", "--syncookies", "maybe"],
    ["--netns", "BADARGS", "--loss", "2"],
    ["--netns", "BADARGS", "--echo", "70000"],
    ["--netns", "BADARGS", "--syn-backlog", "0"],
    ["--netns", "BADARGS", "--addr", "192.0.2.2"],
    ["--netns", "BADARGS", "--peer-addr", "198.51.100.1"],
    ["--netns", "BADARGS", "--echo", "7", "--discard", "7"],
    ["--echo"],
    ["--netns", "BADARGS", "--cc", "vegas"],
    ["--netns", "BADARGS", "--profile", "windows"],
    ["--netns", "BADARGS", "--mtu", "10"],
    ["--netns", "BADARGS", "--mtu", "70000"],
    ["--netns", "BADARGS", "--mtu", "1000"],
    ["--netns", "BADARGS", "--http", "8080", "--http-max-body", "-5"],
    ["--netns", "BADARGS", "--http", "8080", "--http-idle-timeout", "nan"],
], ids=["cookies", "loss", "port", "backlog", "no-prefix", "peer-outside", "same-port", "no-netns-no-tun",
        "cc", "profile", "mtu-small", "mtu-large", "mtu-ipv6", "max-body", "idle-timeout"])
def test_bad_arguments_exit_2_with_one_line(args):
    r = synack("serve", *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("synack serve: error: ")
    assert not netns_exists("BADARGS")


def test_without_privileges_says_what_is_needed():
    setpriv = "/usr/bin/setpriv"
    if not os.path.exists(setpriv) or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to drop to an unprivileged user")
    r = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                        *[sys.executable, "-m", "synack", "serve", "--netns", "snk-nopriv"]],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                       env={**os.environ, "XDG_RUNTIME_DIR": "/tmp"})
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "root or CAP_NET_ADMIN" in r.stderr and "synack demo --sim" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not netns_exists("snk-nopriv")
    assert re.search(r"\S", r.stdout) is None


def test_profile_and_cc_shape_the_connections():
    """``--profile freebsd --cc reno``: a kernel client's connection to the echo service offers
    FreeBSD's window scale (6) and runs Reno, as ``synack ss --json`` reports it."""
    ns = unique_ns("serveprof")
    with ServeProcess(ns, "--echo", "--profile", "freebsd", "--cc", "reno") as sp:
        p = sp.popen([sys.executable, "-c", HOLD_CLIENT, "192.0.2.2", "7"], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
        try:
            port = int(readline(p, 20))
            js = json.loads(synack("ss", "--json", "--control", sp.control).stdout)
            mine = [c for c in js["connections"] if c["peer"] == f"192.0.2.1:{port}"]
            assert len(mine) == 1, js
            assert mine[0]["cc"] == "reno"
            assert mine[0]["wscale"][1] == 6          # [snd, rcv]: the shift synack offered
        finally:
            stop_pid(p, signal.SIGTERM)
        assert sp.stop() == 0, sp.stderr
    assert not netns_exists(ns)
