"""A real kernel-to-kernel TCP connection, captured with tcpdump and drawn.

Two network namespaces joined by a veth pair carry 192.0.2.1/24 and 192.0.2.2/24 (RFC 5737
documentation addresses, only inside namespaces this test creates and deletes). tcpdump captures
on the client's veth (an Ethernet capture with offloaded, unfilled checksums) while a Python
client asks and a Python server answers; the client closes first, so the tracker must find it
in TIME-WAIT and the server CLOSED. Needs root (runs in CI as root); skipped only when not root
and CI is not set.
"""

import os
import select
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from synack.pictures.model import load
from synack.pictures.seqdiag import layout_svg, render_mermaid, render_svg, render_text

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"), reason="needs root (network namespaces)"),
]

SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.2", 8080)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
data = b""
while not data.endswith(b"\r\n\r\n"):
    data += c.recv(4096)
c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
while c.recv(4096):            # wait for the client's FIN: the client closes first
    pass
c.close(); s.close()
"""

CLIENT = r"""
import socket
c = socket.create_connection(("192.0.2.2", 8080), timeout=5)
c.sendall(b"GET / HTTP/1.0\r\n\r\n")
got = b""
while not got.endswith(b"hello\n"):
    got += c.recv(4096)
c.close()
print("done", flush=True)
"""


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=20)


def wait_for_line(proc: subprocess.Popen, stream, word: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    buf = ""
    while time.monotonic() < deadline:
        r, _, _ = select.select([stream], [], [], 0.1)
        if r:
            line = stream.readline()
            buf += line
            if word in line:
                return
            if not line and proc.poll() is not None:
                break
    raise AssertionError(f"never saw {word!r}: {buf!r}")


def test_kernel_to_kernel_capture_is_drawn(tmp_path):
    for tool in ("ip", "tcpdump"):
        assert shutil.which(tool), f"{tool} is not installed (apt-get install iproute2 tcpdump)"
    tag = f"{os.getpid() % 100000}"
    ns_c, ns_s = f"synack-pic-c{tag}", f"synack-pic-s{tag}"
    veth_c, veth_s = f"spc{tag}", f"sps{tag}"
    pcap = tmp_path / "kernel.pcap"
    procs: list[subprocess.Popen] = []
    try:
        sh("ip", "netns", "add", ns_c)
        sh("ip", "netns", "add", ns_s)
        sh("ip", "link", "add", veth_c, "type", "veth", "peer", "name", veth_s)
        sh("ip", "link", "set", veth_c, "netns", ns_c)
        sh("ip", "link", "set", veth_s, "netns", ns_s)
        for ns, dev, addr in ((ns_c, veth_c, "192.0.2.1/24"), (ns_s, veth_s, "192.0.2.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        dump = subprocess.Popen(["ip", "netns", "exec", ns_c, "tcpdump", "-i", veth_c, "-n", "-U", "-Z", "root",
                                 "-w", str(pcap), "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(dump)
        wait_for_line(dump, dump.stderr, "listening on")
        server = subprocess.Popen(["ip", "netns", "exec", ns_s, sys.executable, "-c", SERVER],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(server)
        wait_for_line(server, server.stdout, "ready")
        client = subprocess.run(["ip", "netns", "exec", ns_c, sys.executable, "-c", CLIENT],
                                capture_output=True, text=True, timeout=20)
        assert client.returncode == 0 and "done" in client.stdout, client.stderr
        assert server.wait(timeout=10) == 0, server.stderr.read()
        # the server's FIN and the client's last ACK follow within microseconds on a veth
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and pcap.stat().st_size < 24 + 10 * 60:
            time.sleep(0.05)
        time.sleep(0.3)
        dump.send_signal(2)                   # SIGINT: tcpdump flushes and exits
        dump.wait(timeout=10)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        for ns in (ns_c, ns_s):                # deleting a namespace deletes its veth end
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)

    cap = load(pcap)
    assert len(cap.connections) == 1
    conn = cap.connection(1)
    assert conn.a.addr == "192.0.2.1" and str(conn.b) == "192.0.2.2:8080"
    a = [c.new for c in conn.states_of("A")]
    b = [c.new for c in conn.states_of("B")]
    assert all(c.inferred for c in conn.states)
    assert a[:3] == ["SYN-SENT", "ESTABLISHED", "FIN-WAIT-1"] and a[-1] == "TIME-WAIT", a
    assert b[:3] == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED"], b
    assert b[-3:] == ["CLOSE-WAIT", "LAST-ACK", "CLOSED"], b
    flags = [s.flag_names for s in conn.segments]
    assert flags[:3] == ["SYN", "SYN,ACK", "ACK"]
    assert sum(s.len for s in conn.segments if s.sender == "A") == len(b"GET / HTTP/1.0\r\n\r\n")

    text = render_text(conn)
    assert "TIME-WAIT" in text and "<mss " in text
    assert render_mermaid(conn).startswith("sequenceDiagram")
    svg = render_svg(conn)
    ET.fromstring(svg)
    (tmp_path / "kernel.svg").write_text(svg, encoding="utf-8")
    keep = os.environ.get("SYNACK_KEEP_PICTURES")
    if keep:                                   # for looking at it (e.g. rendered to PNG)
        shutil.copy(tmp_path / "kernel.svg", keep)
        shutil.copy(pcap, os.path.splitext(keep)[0] + ".pcap")
    for even in (False, True):
        assert layout_svg(conn, even=even).overlapping() == []
