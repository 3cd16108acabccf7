"""The real half of ``synack demo``: synack and the Linux kernel on one TUN link, in a private
network namespace made for the run and removed after it (also on Ctrl-C or an error).

The kernel is 192.0.2.1, synack 192.0.2.2 (``synack.link.netns.kernel_peer``). synack runs its
HTTP server (``synack.http``, the built-in site) on port 80 with the asyncio adapter, and:

  1. the kernel's ``curl`` fetches ``http://192.0.2.2/`` twice on one kept-alive connection:
     the page shows that very connection as synack saw it (ISNs, options, RTT, states, its
     sequence diagram so far); the second fetch sees the first in its diagram;
  2. synack is the client: it fetches a page from the kernel's ``python3 -m http.server`` on
     192.0.2.1:8000 (HTTP/1.0: the kernel's server closes first);
  3. a lossy fetch: synack's first SYN-ACK and one data segment of its answer are dropped on
     synack's side of the link (``Faults.drop_nth``): the kernel retransmits its SYN, synack
     retransmits the segment.

Everything synack sent and received is in ``out/demo.pcap`` (the vantage is synack's: dropped
packets are in it, as sent) and synack's event log in ``out/events.jsonl``. The diagrams are
drawn from the log: synack's states as it logged them; the kernel's side is not logged
(``both_logged`` is False), so its states are inferred from the packets.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from synack.link.tun import TunUnavailable

KERNEL, SYNACK = "192.0.2.1", "192.0.2.2"
KERNEL_HTTP_PORT = 8000
STEP_TIMEOUT = 15.0


@dataclass
class Step:
    name: str
    ok: bool
    summary: str


class Story(list):
    """The steps, in order; only synack's events are logged (the kernel's are not)."""
    both_logged = False


def _wall_writer(path: Path):
    """A ``PcapWriter`` stamping records with wall-clock time (the loop's clock is monotonic)."""
    from synack.link.pcap import PcapWriter

    class WallPcapWriter(PcapWriter):
        offset = time.time() - time.monotonic()

        def write(self, packet, t: float, **kw) -> None:
            super().write(packet, t + self.offset, **kw)
    return WallPcapWriter(path, autoflush=True)


def _check_available() -> None:
    if not os.path.exists("/dev/net/tun"):
        raise TunUnavailable(2, "no /dev/net/tun")
    if os.geteuid() != 0:
        raise TunUnavailable(1, "not root (TUN and network namespaces need root or CAP_NET_ADMIN)")
    if shutil.which("curl") is None:
        raise TunUnavailable(2, "curl is not installed (apt-get install curl)")


def run(out: Path, progress: Callable[[str], None] = print, cc: str = "cubic") -> Story:
    """Run the three steps; write out/demo.pcap and out/events.jsonl. Raises ``TunUnavailable``
    if the TUN device or the namespace cannot be made."""
    _check_available()
    from synack.link.netns import kernel_peer
    from synack.log.jsonl import JsonlLog

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = JsonlLog(out / "events.jsonl", meta={"demo": "tun", "pid": os.getpid()})
    writer = _wall_writer(out / "demo.pcap")
    try:
        try:
            peer_cm = kernel_peer(offload=False, ipv6=False)
            peer = peer_cm.__enter__()
        except TunUnavailable:
            raise
        except (OSError, ImportError) as e:
            raise TunUnavailable(getattr(e, "errno", None) or 1, f"cannot set up TUN and namespace: {e}") from e
        try:
            progress(f"  namespace {peer.ns}: the kernel is {KERNEL}, synack is {SYNACK} "
                     f"(TUN {peer.link.name}, no offloads)")
            return asyncio.run(_story(peer, out, log, writer, progress, cc))
        finally:
            peer_cm.__exit__(*sys.exc_info())
    finally:
        writer.close()
        log.close()


async def _in_ns(peer, argv: list[str], timeout: float = STEP_TIMEOUT) -> tuple[int, str, str]:
    """Run ``argv`` in the namespace; killed (by PID) on timeout or cancellation."""
    proc = await asyncio.create_subprocess_exec(*peer.command(argv), stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        so, se = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, so.decode(errors="replace"), se.decode(errors="replace")


def _is_synack(packet: bytes) -> bool:
    from synack.wire.packet import parse_packet, tcp_in
    from synack.wire.tcp import Flags
    try:
        seg = tcp_in(parse_packet(packet))
    except Exception:                     # noqa: BLE001 - not TCP: no match
        return False
    return seg.flags & (Flags.SYN | Flags.ACK) == Flags.SYN | Flags.ACK


def _is_full_data(packet: bytes) -> bool:
    from synack.wire.packet import parse_packet, tcp_in
    try:
        return len(tcp_in(parse_packet(packet)).payload) > 1000
    except Exception:                     # noqa: BLE001
        return False


async def _story(peer, out: Path, log, writer, progress, cc: str = "cubic") -> Story:
    from synack.api.aio import AsyncStack
    from synack.http.client import fetch
    from synack.http.runner import with_fileno
    from synack.http.server import HttpServer, ServerConfig
    from synack.http.site import Site
    from synack.http.trace import TraceStore
    from synack.link.faults import Faults
    from synack.link.pcap import PcapLink
    from synack.stack.host import Stack
    from synack.tcp.config import TcpConfig
    from synack.tcp.events import SegmentIn, SegmentOut
    from synack.wire.tcp import Flags

    loop = asyncio.get_running_loop()
    trace = TraceStore(log)
    stack = Stack([f"{SYNACK}/24"], secret=os.urandom(16), config=TcpConfig(min_rto=0.2, cc=cc), log=trace)
    faults = Faults(peer.link, random.Random(1), log=log)
    link = PcapLink(faults, writer, vantage="stack")
    astack = AsyncStack(stack, with_fileno(link))
    server = HttpServer(Site(trace), ServerConfig(idle_timeout=5.0))
    await server.listen_synack(astack, None, 80)
    story = Story()
    tmp = Path(tempfile.mkdtemp(prefix="synack-demo-"))
    try:
        # the kernel's web server, started now so that it is up by step 2
        page = _kernel_page()
        (tmp / "www").mkdir()
        (tmp / "www" / "page.html").write_bytes(page)
        peer.popen([sys.executable, "-m", "http.server", "--bind", KERNEL, str(KERNEL_HTTP_PORT),
                    "--directory", str(tmp / "www")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        # 1. curl, two fetches on one kept-alive connection
        progress("  1. the kernel's curl fetches http://192.0.2.2/ twice on one connection ...")
        before = dict(server.stats)
        first, second = tmp / "page-1.html", out / "page.html"
        rc, so, se = await _in_ns(peer, ["curl", "-sS", "--max-time", "10", "-o", str(first), "-o", str(second),
                                         "-w", "%{http_code} %{num_connects} %{size_download}\\n",
                                         f"http://{SYNACK}/", f"http://{SYNACK}/"])
        lines = [ln.split() for ln in so.splitlines() if ln.strip()]
        codes = [ln[0] for ln in lines]
        connects = sum(int(ln[1]) for ln in lines) if lines else -1
        sizes = [int(ln[2]) for ln in lines]
        accepted = server.stats["connections"] - before["connections"]
        text2 = second.read_text(errors="replace") if second.exists() else ""
        ok = (rc == 0 and codes == ["200", "200"] and connects == 1 and accepted == 1
              and "number 2 on this connection" in text2 and "<svg" in text2)
        summary = (f"HTTP {' '.join(codes) or 'nothing'}, {connects} connection(s) opened by curl, {accepted} "
                   f"accepted by synack; pages of {' and '.join(f'{s:,}' for s in sizes)} bytes"
                   + (f"; the second ({second}) shows the first in its diagram" if ok else f"; curl: {se.strip()}"))
        story.append(Step("curl, two fetches, one connection", ok, summary))
        progress(f"     {summary}")
        await _settle(astack, 3.0)

        # 2. synack as the client of the kernel's http.server
        progress(f"  2. synack fetches http://{KERNEL}:{KERNEL_HTTP_PORT}/page.html from the kernel's "
                 f"python3 -m http.server ...")
        ready = False
        for _ in range(50):
            rc, _, _ = await _in_ns(peer, [sys.executable, "-c", "import socket; socket.create_connection("
                                           f"('{KERNEL}', {KERNEL_HTTP_PORT}), 1).close()"], timeout=5)
            if rc == 0:
                ready = True
                break
            await asyncio.sleep(0.1)
        replies = []
        err = ""
        if ready:
            try:
                reader, w = await asyncio.wait_for(astack.open_connection(KERNEL, KERNEL_HTTP_PORT), 5)
                replies = await asyncio.wait_for(fetch(reader, w, KERNEL, ["/page.html"]), STEP_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as e:
                err = f"{type(e).__name__}: {e}"
        else:
            err = "the kernel's http.server did not come up"
        ok = bool(replies) and replies[0].status == 200 and replies[0].body == page
        summary = (f"HTTP/{replies[0].http_version} {replies[0].status}, {len(replies[0].body):,} bytes "
                   f"{'identical to the file served' if ok else 'DIFFERENT from the file'}; "
                   f"the kernel's server closed first" if replies else f"failed: {err}")
        story.append(Step("synack as the client", ok, summary))
        progress(f"     {summary}")
        await _settle(astack, 3.0)

        # 3. a lossy fetch
        progress("  3. the same page with synack's first SYN-ACK and one data segment dropped ...")
        faults.drop_nth(1, "tx", match=_is_synack)
        faults.drop_nth(2, "tx", match=_is_full_data)
        serial_before = max(trace.by_serial, default=0)
        t0 = loop.time()
        rc, so, se = await _in_ns(peer, ["curl", "-sS", "--max-time", "10", "-o", str(tmp / "lossy.html"),
                                         "-w", "%{http_code} %{time_connect} %{size_download}\\n",
                                         f"http://{SYNACK}/"])
        took = loop.time() - t0
        parts = so.split()
        new = [t for s, t in trace.by_serial.items() if s > serial_before and t.conn.local_port == 80]
        rexmits = [r for t in new for r in t.records() if isinstance(r, SegmentOut) and r.retransmit]
        syn_rexmit = sum(1 for r in rexmits if r.seg.flags & Flags.SYN)
        data_rexmit = sum(1 for r in rexmits if r.seg.payload)
        syns_in = sum(1 for t in new for r in t.records() if isinstance(r, SegmentIn) and r.seg.flags & Flags.SYN)
        drops = faults.tx.drop
        ok = rc == 0 and parts[:1] == ["200"] and drops == 2 and syn_rexmit + syns_in >= 2 and data_rexmit >= 1
        summary = (f"HTTP {parts[0] if parts else 'nothing'}, {int(parts[2]) if len(parts) > 2 else 0:,} bytes in "
                   f"{took:.2f} s; {drops} packets dropped; the handshake took "
                   f"{float(parts[1]) if len(parts) > 1 else 0:.2f} s ({syns_in} SYN(s) from the kernel, "
                   f"{syn_rexmit} SYN-ACK(s) retransmitted by synack), {data_rexmit} data segment(s) retransmitted"
                   + ("" if rc == 0 else f"; curl: {se.strip()}"))
        story.append(Step("lossy fetch", ok, summary))
        progress(f"     {summary}")
        await _settle(astack, 3.0)
    finally:
        await server.shutdown(grace=1.0)
        await _settle(astack, 0.3)
        astack.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return story


async def _settle(astack, limit: float) -> None:
    """Wait (at most ``limit`` s) until no connection of synack's is still closing."""
    from synack.tcp.states import State
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while loop.time() < end:
        busy = [c for c in astack.stack.conns.values() if c.state not in (State.TIME_WAIT, State.CLOSED)]
        if not busy:
            return
        await asyncio.sleep(0.05)


def _kernel_page() -> bytes:
    rows = "\n".join(f"<tr><td>{i}</td><td>{'synack ' * (i % 7 + 1)}</td></tr>" for i in range(300))
    return (f"<!doctype html><meta charset='utf-8'><title>the kernel's page</title>"
            f"<h1>Served by the Linux kernel's TCP, fetched by synack</h1><table>{rows}</table>\n").encode()


__all__ = ["run", "Story", "Step", "TunUnavailable"]
