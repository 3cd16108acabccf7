"""A private network namespace with the kernel at one end of a TUN link and synack at the other.

::

    with kernel_peer(offload=True) as peer:          # namespace + TUN, all removed on exit
        stack = Stack([peer.stack_v4 + "/24", peer.stack_v6 + "/64"], secret=...)
        runner = StackRunner(stack, peer.link)
        peer.popen(["python3", "-c", "..."])          # runs inside the namespace

The TUN fd stays in this process; the net device is moved into the namespace, where the kernel
owns 192.0.2.1/24 and 2001:db8::1/64 on it and routes 192.0.2.0/24 and 2001:db8::/64 to synack,
which answers as 192.0.2.2 and 2001:db8::2 (RFC 5737 and RFC 3849 documentation prefixes).
Nothing touches the host's own namespace besides creating and removing the new one.

Commands run in the namespace through a tiny Python trampoline (``setns(2)`` then ``execvp``),
so neither ``ip netns exec`` nor a ``fork`` of this possibly threaded process is needed.
Everything is undone on exit, on exception and on Ctrl-C: processes started with ``popen`` are
killed by PID, the TUN fd closed (deleting the device), the namespace removed.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from synack.link.tun import TunLink, TunUnavailable

NETNS_RUN_DIR = "/var/run/netns"
KERNEL_V4, STACK_V4, PREFIX_V4 = "192.0.2.1", "192.0.2.2", 24
KERNEL_V6, STACK_V6, PREFIX_V6 = "2001:db8::1", "2001:db8::2", 64

_counter = itertools.count()

# argv: nspath, command... ; CLONE_NEWNET = 0x40000000
_TRAMPOLINE = (
    "import ctypes,os,sys\n"
    "fd=os.open(sys.argv[1],os.O_RDONLY)\n"
    "libc=ctypes.CDLL(None,use_errno=True)\n"
    "if libc.setns(fd,0x40000000)!=0:\n"
    "    e=ctypes.get_errno(); sys.exit('setns %s: %s'%(sys.argv[1],os.strerror(e)))\n"
    "os.close(fd)\n"
    "os.execvp(sys.argv[2],sys.argv[2:])\n"
)


def unique_name(prefix: str = "synack") -> str:
    """A namespace name no other process of this host will pick: prefix, PID, counter."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


def remove_stale(prefix: str = "synack") -> list[str]:
    """Remove namespaces named by ``unique_name`` whose creating process is gone (a run killed
    before it could clean up). Namespaces of live processes are left alone."""
    from pyroute2 import netns
    removed = []
    pat = re.compile(re.escape(prefix) + r"-(\d+)-\d+$")
    for name in netns.listnetns():
        m = pat.match(name)
        if m and int(m.group(1)) != os.getpid() and not os.path.exists(f"/proc/{m.group(1)}"):
            try:
                netns.remove(name)
                removed.append(name)
            except OSError:
                pass
    return removed


def in_netns(ns: str, argv: Sequence[str]) -> list[str]:
    """``argv`` rewritten to run inside namespace ``ns`` (a name in /var/run/netns or a path)."""
    path = ns if "/" in ns else os.path.join(NETNS_RUN_DIR, ns)
    return [sys.executable, "-c", _TRAMPOLINE, path, *argv]


@contextmanager
def private_netns(name: str | None = None) -> Iterator[str]:
    """Create a network namespace (pyroute2 ``netns.create``), yield its name, remove it."""
    try:
        from pyroute2 import netns
    except ImportError as e:                                  # pragma: no cover
        raise RuntimeError("pyroute2 is needed for network namespaces (pip install pyroute2)") from e
    name = name or unique_name()
    try:
        netns.create(name)
    except PermissionError as e:
        raise TunUnavailable(e.errno, "creating a network namespace needs root or CAP_SYS_ADMIN; "
                                      "the simulated network (synack.sim) works without") from e
    try:
        yield name
    finally:
        try:
            netns.remove(name)
        except FileNotFoundError:
            pass


@dataclass
class KernelPeer:
    """What ``kernel_peer()`` yields: the namespace, the TUN link and the addresses."""
    ns: str
    link: TunLink
    kernel_v4: str = KERNEL_V4
    stack_v4: str = STACK_V4
    kernel_v6: str | None = KERNEL_V6
    stack_v6: str | None = STACK_V6
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def stack_addresses(self) -> list[str]:
        """The addresses to give ``Stack(addresses=...)``."""
        out = [f"{self.stack_v4}/{PREFIX_V4}"]
        if self.stack_v6:
            out.append(f"{self.stack_v6}/{PREFIX_V6}")
        return out

    def command(self, argv: Sequence[str]) -> list[str]:
        return in_netns(self.ns, argv)

    def popen(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        """Start ``argv`` in the namespace; it is killed (by PID) when the context exits."""
        p = subprocess.Popen(self.command(argv), **kwargs)
        self.procs.append(p)
        return p

    def run(self, argv: Sequence[str], timeout: float = 30.0, **kwargs) -> subprocess.CompletedProcess:
        """Run ``argv`` in the namespace to completion (killed after ``timeout`` seconds)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(argv), timeout=timeout, **kwargs)

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:     # pragma: no cover: SIGKILL not taken in 5 s
                pass
            for f in (p.stdin, p.stdout, p.stderr):
                if f is not None:
                    f.close()
        self.procs.clear()


def veth_pair(ns_a: str, ns_b: str, name_a: str, name_b: str,
              addr_a: str = "192.0.2.1/24", addr_b: str = "192.0.2.2/24") -> None:
    """Join two namespaces with a veth pair, one address at each end, both up (pyroute2).
    The devices go away with the namespaces; this is how the benchmarks measure kernel<->kernel."""
    from pyroute2 import IPRoute

    for ns, ifname, addr, create in ((ns_a, name_a, addr_a, True), (ns_b, name_b, addr_b, False)):
        ip, plen = addr.split("/")
        with IPRoute(netns=ns, flags=0) as ipr:
            if create:
                ipr.link("add", ifname=name_a, kind="veth", peer={"ifname": name_b, "net_ns_fd": ns_b})
            idx = ipr.link_lookup(ifname=ifname)[0]
            ipr.addr("add", index=idx, address=ip, prefixlen=int(plen))
            ipr.link("set", index=idx, state="up")


@contextmanager
def kernel_peer(*, ns: str | None = None, ifname: str | None = None, offload: bool = True,
                mtu: int = 1500, ipv6: bool = True, queues: int = 1) -> Iterator[KernelPeer]:
    """A fresh namespace whose kernel reaches synack over a TUN link; see the module docstring.
    ``queues`` > 1 makes a multi-queue device (``peer.link.queues``; see ``synack.link.tun``)."""
    ifname = ifname or f"snk{os.getpid() % 100000}x{next(_counter)}"[:15]
    if ns is None:
        remove_stale()
    with private_netns(ns) as name:
        addrs = [f"{KERNEL_V4}/{PREFIX_V4}"] + ([f"{KERNEL_V6}/{PREFIX_V6}"] if ipv6 else [])
        link = TunLink(ifname, offload=offload, mtu=mtu, netns=name, addresses=addrs, queues=queues)
        peer = KernelPeer(name, link, kernel_v6=KERNEL_V6 if ipv6 else None,
                          stack_v6=STACK_V6 if ipv6 else None)
        try:
            yield peer
        finally:
            try:
                peer.kill_all()
            finally:
                link.close()


__all__ = ["KernelPeer", "kernel_peer", "private_netns", "in_netns", "unique_name", "remove_stale",
           "KERNEL_V4", "STACK_V4", "KERNEL_V6", "STACK_V6"]
