"""A Linux TUN device as a ``Link`` (STYLE.md §6): synack's packets meet the kernel's stack.

``TunLink("synack0", offload=True, mtu=1500, netns="ns1", addresses=["192.0.2.1/24"])`` opens
``/dev/net/tun`` (IFF_TUN | IFF_NO_PI: whole IP packets, no link header), makes the fd
non-blocking and configures the kernel side of the device with pyroute2 (netlink; nothing
shells out to ``ip``): MTU, the kernel's addresses on it (which also route their prefixes
through it), extra routes, link up. With ``netns`` the net device is moved into that (existing)
namespace first; the fd stays in this process, so the kernel stack in the namespace sees synack
as the peer at the other end of a point-to-point link. Closing the fd deletes the device.

**Offloads** (``offload=True``): IFF_VNET_HDR puts a 10-byte ``virtio_net_hdr`` before each
packet, and TUNSETOFFLOAD (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) lets the kernel skip checksums
and segmentation. What that means for each direction:

* **kernel -> synack**: TCP arrives in super-segments of up to 64 KB (``gso_type`` TCPV4/TCPV6,
  ``gso_size`` the MSS), their IP headers already describing the whole packet. With
  ``NEEDS_CSUM`` the checksum field holds only the pseudo-header sum: ``receive()`` completes it
  (RFC 1071 over ``csum_start..end``), so captures show a real checksum. Such packets, and those
  the kernel marks ``DATA_VALID``, come as ``wire.packet.ChecksumValid``: the stack does not
  sum them a second time (a 64 KB sum costs ~0.2 ms in Python).
* **synack -> kernel**: a TCP packet longer than the MTU is sent as one super-segment with
  ``gso_size`` = MTU - headers, ``NEEDS_CSUM`` and the pseudo-header sum in the checksum field;
  the kernel cuts it (or, delivering locally, takes it whole). Packets within the MTU go out as
  they are, with an all-zero header. The stack makes such packets when ``TcpConfig.tso_max`` is
  set (TSO; they already carry the pseudo-header sum); ``gso_segment()`` does the kernel's cut
  for tests and simulated links.

``receive(now)`` drains up to 64 packets per call; ``next_timer()`` is None: the device holds
nothing for synack, the fd (``fileno()``) says when to read. ``now`` is not used.

**Queues** (``queues=N``, N > 1): the device is made with IFF_MULTI_QUEUE and N fds, one per
queue; ``link.queues[i]`` is a ``TunQueue`` (the ``TunLink`` itself is queue 0) with its own fd,
``receive``/``transmit`` and ``counters``, so N processes can each run a ``Stack`` on one queue
(``synack.http.workers``). Linux's tun picks the queue of each packet it sends to synack from a
flow table (flow -> the queue that last *wrote* a packet of that flow) or, for a flow not in the
table, from a symmetric hash of its addresses and ports (``tun_automq_select_queue``): both are
per flow, and a queue answers a flow on the queue it came in on, so a TCP connection stays on
one queue (tests/link/test_tun_queues.py checks it). All N fds are opened here, in this process,
*before* the device is moved to ``netns``: a queue attaches with TUNSETIFF by device name, which
the kernel looks up in the opener's namespace, so opening them later would need each worker to
enter the namespace (setns needs a single-threaded process and leaves the worker there). Open
fds are simply inherited by ``fork()``: a worker keeps its queue and closes the others. The
device lives until every queue's fd is closed, in every process.
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import struct
from dataclasses import dataclass
from ipaddress import ip_interface, ip_network
from typing import Sequence

from synack.wire.checksum import checksum, ones_sum
from synack.wire.packet import ChecksumValid

# <linux/if_tun.h>
TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUNSETVNETLE = 0x400454DC
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_MULTI_QUEUE = 0x0100
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
# <linux/virtio_net.h>: struct virtio_net_hdr, little-endian (TUNSETVNETLE)
VNET_HDR = struct.Struct("<BBHHHH")     # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_HDR_LEN = VNET_HDR.size            # 10
_CSUM_AT = struct.Struct("<HH")         # its csum_start, csum_offset (at offset 6)
_CSUM = struct.Struct("!H")
F_NEEDS_CSUM = 0x01
F_DATA_VALID = 0x02
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3
GSO_TCPV6 = 4
GSO_ECN = 0x80
IFA_F_NODAD = 0x02

_write, _writev = os.write, os.writev     # one global lookup per packet, not two
MAX_READS = 64                          # STYLE.md §6: drain up to 64 reads per receive()
_BUF = 65535 + 40 + VNET_HDR_LEN + 256  # the largest IPv6 packet without jumbograms, and a header
_ZERO_HDR = bytes(VNET_HDR_LEN)
_HINT = ("a TUN device needs root or CAP_NET_ADMIN (and /dev/net/tun); "
         "the simulated network (synack.sim) works without either")


class TunUnavailable(OSError):
    """The TUN device could not be opened or configured for lack of privilege or kernel support."""


@dataclass(slots=True)
class TunCounters:
    rx_packets: int = 0
    rx_bytes: int = 0
    rx_gso: int = 0            # super-segments received (offload)
    rx_csum_completed: int = 0  # partial checksums completed (offload)
    tx_packets: int = 0
    tx_bytes: int = 0
    tx_gso: int = 0            # super-segments handed to the kernel to cut (offload)
    tx_dropped: int = 0        # writes the kernel refused (device down, queue full)
    rx_dropped: int = 0        # reads with a header we could not use


class TunQueue:
    """One queue of a TUN device: its fd and the ``Link`` protocol on it (``TunLink`` is queue 0
    of its device; ``TunLink.queues`` lists them all). Closing a queue detaches it; the kernel
    then spreads flows over the queues left."""

    def __init__(self, fd: int, name: str, *, offload: bool, mtu: int, index: int = 0,
                 netns: str | None = None) -> None:
        self._fd = fd
        self.name = name
        self.offload = offload
        self.mtu = mtu
        self.index = index
        self.netns = netns
        self.counters = TunCounters()
        self._buf = bytearray(_BUF)
        self._reader: io.FileIO | None = None    # reads self._fd; made at the first receive()

    # ---------------------------------------------------------------- the Link protocol

    def fileno(self) -> int:
        return self._fd

    def next_timer(self) -> float | None:
        return None

    def receive(self, now: float) -> list[bytes]:
        """Up to 64 packets the kernel has sent to synack ([] when none), checksums complete."""
        out: list[bytes] = []
        fd, buf, c = self._fd, self._buf, self.counters
        if fd < 0:
            return out
        reader = self._reader
        if reader is None or reader.fileno() != fd:
            # FileIO.readinto on a non-blocking fd returns None for EAGAIN: the read that ends
            # every drain does not raise (an exception per wake-up, ~0.3 us of the read's ~1.5)
            reader = self._reader = io.FileIO(fd, "rb", closefd=False)
        readinto, offload = reader.readinto, self.offload
        for _ in range(MAX_READS):
            try:
                n = readinto(buf)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EINTR):
                    break
                raise
            if n is None:                         # EAGAIN: drained
                break
            if not offload:
                pkt = bytes(buf[:n])
            else:
                if n < VNET_HDR_LEN:
                    c.rx_dropped += 1
                    continue
                flags = buf[0]
                if buf[1] != GSO_NONE:            # gso_type
                    c.rx_gso += 1
                if flags & F_NEEDS_CSUM:
                    cstart, coff = _CSUM_AT.unpack_from(buf, 6)
                    pkt = _complete_checksum(buf, VNET_HDR_LEN, n, cstart, coff)
                    if pkt is None:
                        c.rx_dropped += 1
                        continue
                    c.rx_csum_completed += 1
                elif flags & F_DATA_VALID:
                    pkt = ChecksumValid(buf[VNET_HDR_LEN:n])      # the kernel checked it
                else:
                    pkt = bytes(buf[VNET_HDR_LEN:n])
            c.rx_packets += 1
            c.rx_bytes += len(pkt)
            out.append(pkt)
        return out

    def transmit(self, packet: bytes, now: float) -> None:
        """Write one IP packet to the kernel. With offloads, TCP packets over the MTU go as one
        super-segment for the kernel to cut at MTU-sized boundaries."""
        fd = self._fd
        if fd < 0:
            raise OSError(errno.EBADF, f"TUN device {getattr(self, 'name', '?')} is closed")
        c = self.counters
        try:
            if not self.offload:
                _write(fd, packet)
            elif len(packet) <= self.mtu:
                _writev(fd, (_ZERO_HDR, packet))
            else:
                hdr, body = _gso_header(packet, self.mtu)
                if hdr is not _ZERO_HDR:
                    c.tx_gso += 1
                _writev(fd, (hdr, body))
        except (BlockingIOError, InterruptedError):
            c.tx_dropped += 1
            return
        except OSError as e:
            if e.errno in (errno.EIO, errno.ENOBUFS, errno.EAGAIN, errno.EINVAL):
                c.tx_dropped += 1       # device down, queue full, or a packet it would not take
                return
            raise
        c.tx_packets += 1
        c.tx_bytes += len(packet)

    # ---------------------------------------------------------------- life

    def close(self) -> None:
        """Close this queue's fd (in this process)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        ns = f" netns={self.netns}" if self.netns else ""
        return (f"<{type(self).__name__} {getattr(self, 'name', '?')} queue {self.index} mtu={self.mtu} "
                f"offload={self.offload}{ns} fd={self._fd}>")


class TunLink(TunQueue):
    """A TUN device; see the module docstring. ``addresses`` are the *kernel's* addresses on the
    device (e.g. ``"192.0.2.1/24"``: then 192.0.2.0/24 is routed to synack), ``routes`` extra
    prefixes routed through it. With ``queues=N`` (N > 1) the device has N queues (IFF_MULTI_QUEUE):
    this object is queue 0 and ``queues`` lists all N; ``close()`` closes them all."""

    def __init__(self, name: str = "synack0", *, offload: bool = True, mtu: int = 1500,
                 netns: str | None = None, addresses: Sequence[str] = (),
                 routes: Sequence[str] = (), up: bool = True, queues: int = 1) -> None:
        if len(name.encode()) > 15:
            raise ValueError(f"interface name {name!r} is longer than 15 bytes (IFNAMSIZ)")
        if queues < 1:
            raise ValueError(f"queues must be at least 1, not {queues}")
        super().__init__(-1, name, offload=offload, mtu=mtu, netns=netns)
        self.queues: list[TunQueue] = [self]
        flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if offload else 0) | (IFF_MULTI_QUEUE if queues > 1 else 0)
        self._fd = _open_queue()
        try:
            self.name = _set_iff(self._fd, name, flags)
            if offload:
                try:
                    fcntl.ioctl(self._fd, TUNSETVNETLE, struct.pack("i", 1))
                except OSError:
                    pass   # kernels without it use the host's order, little-endian on x86 and arm64
                fcntl.ioctl(self._fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
                fcntl.ioctl(self._fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
            for i in range(1, queues):        # attach by name, while the device is in our namespace
                q = TunQueue(-1, self.name, offload=offload, mtu=mtu, index=i, netns=netns)
                self.queues.append(q)
                q._fd = _open_queue()
                _set_iff(q._fd, self.name, flags)
            self._configure(addresses, routes, up)
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- netlink configuration

    def _configure(self, addresses: Sequence[str], routes: Sequence[str], up: bool) -> None:
        from pyroute2 import IPRoute            # imported here: the sans-IO layers never load it
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            with IPRoute() as ipr:
                (idx,) = ipr.link_lookup(ifname=self.name)
                if self.netns is not None:
                    ipr.link("set", index=idx, net_ns_fd=self.netns)
            with (IPRoute(netns=self.netns, flags=0) if self.netns is not None else IPRoute()) as ipr:
                (idx,) = ipr.link_lookup(ifname=self.name)
                ipr.link("set", index=idx, mtu=self.mtu)
                for a in addresses:
                    i = ip_interface(a)
                    ipr.addr("add", index=idx, address=str(i.ip), prefixlen=i.network.prefixlen,
                             **({"flags": IFA_F_NODAD} if i.version == 6 else {}))
                if up:
                    ipr.link("set", index=idx, state="up")
                    if self.netns is not None:
                        lo = ipr.link_lookup(ifname="lo")
                        if lo:
                            ipr.link("set", index=lo[0], state="up")
                for r in routes:
                    n = ip_network(r)
                    ipr.route("replace", dst=str(n.network_address), dst_len=n.prefixlen, oif=idx,
                              family=10 if n.version == 6 else 2)
        except NetlinkError as e:
            if e.code == errno.EPERM:
                raise TunUnavailable(e.code, f"configuring {self.name}: {_HINT}") from e
            raise OSError(e.code, f"configuring {self.name} over netlink: {e}") from e

    # ---------------------------------------------------------------- life

    def close(self) -> None:
        """Close every queue's fd; once no process holds one, the kernel deletes the
        (non-persistent) device, in its namespace too."""
        for q in self.queues[1:]:
            q.close()
        super().close()

    def __enter__(self) -> "TunLink":
        return self


def _open_queue() -> int:
    """A fresh /dev/net/tun fd; TUNSETIFF on it makes (or, multi-queue, attaches to) the device."""
    try:
        return os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise TunUnavailable(e.errno, f"/dev/net/tun does not exist: {_HINT}") from e
    except PermissionError as e:
        raise TunUnavailable(e.errno, f"cannot open /dev/net/tun ({e.strerror}): {_HINT}") from e


def _set_iff(fd: int, name: str, flags: int) -> str:
    """TUNSETIFF: bind ``fd`` to device ``name`` (made if absent); the device's name."""
    try:
        ifr = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
    except PermissionError as e:
        raise TunUnavailable(e.errno, f"TUNSETIFF {name}: {e.strerror}: {_HINT}") from e
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise OSError(e.errno, f"TUN device {name} exists and is in use: pick another name") from e
        raise
    return ifr[:16].rstrip(b"\0").decode()


def _complete_checksum(buf: bytearray, start: int, end: int, cstart: int, coff: int) -> bytes | None:
    """The packet in ``buf[start:end]`` with the checksum at ``cstart + coff`` completed: that
    field holds the pseudo-header sum, so the ones'-complement sum of everything from
    ``cstart`` on, inverted, is the checksum (the kernel's ``skb_checksum_help``)."""
    cs = start + cstart
    at = cs + coff
    if at + 2 > end or cs >= end:
        return None
    _CSUM.pack_into(buf, at, checksum(memoryview(buf)[cs:end]))
    return ChecksumValid(buf[start:end])             # computed here: no need to verify it again


def _gso_header(packet: bytes, mtu: int) -> tuple[bytes, bytes]:
    """A virtio-net header (and the packet, checksum field rewritten) asking the kernel to cut
    a TCP super-segment into segments that fit ``mtu``. Anything else: a zero header."""
    version = packet[0] >> 4
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        if packet[9] != 6 or len(packet) < ihl + 20:
            return _ZERO_HDR, packet
        tcp_len = len(packet) - ihl
        pseudo = ones_sum(packet[12:20] + struct.pack("!BBH", 0, 6, tcp_len))
        gso = GSO_TCPV4
    elif version == 6:
        ihl = 40
        if packet[6] != 6 or len(packet) < ihl + 20:
            return _ZERO_HDR, packet
        tcp_len = len(packet) - ihl
        pseudo = ones_sum(packet[8:40] + struct.pack("!IxxxB", tcp_len, 6))
        gso = GSO_TCPV6
    else:
        return _ZERO_HDR, packet
    thl = (packet[ihl + 12] >> 4) * 4
    mss = mtu - ihl - thl
    if mss <= 0:
        return _ZERO_HDR, packet
    if packet[ihl + 13] & 0x80:          # CWR: the kernel must know to clear it after segment one
        gso |= GSO_ECN
    body = bytearray(packet)
    body[ihl + 16:ihl + 18] = pseudo.to_bytes(2, "big")   # pseudo-header sum, not inverted
    hdr = VNET_HDR.pack(F_NEEDS_CSUM, gso, ihl + thl, mss, ihl, 16)
    return hdr, bytes(body)


def gso_segment(packet: bytes, mtu: int) -> list[bytes]:
    """What the kernel makes of a TCP super-segment written with ``_gso_header``: pieces of
    ``mtu`` - headers payload octets, sequence numbers advanced, FIN and PSH on the last piece
    only, CWR on the first only, lengths and checksums recomputed (tcp_gso_segment). A packet
    that fits ``mtu`` comes back as it is. For tests and simulated links with "TSO"."""
    if len(packet) <= mtu:
        return [packet]
    version = packet[0] >> 4
    ihl = (packet[0] & 0x0F) * 4 if version == 4 else 40
    thl = (packet[ihl + 12] >> 4) * 4
    step = mtu - ihl - thl
    iph, tcph, data = packet[:ihl], bytearray(packet[ihl:ihl + thl]), packet[ihl + thl:]
    seq = struct.unpack_from("!I", tcph, 4)[0]
    flags = tcph[13]
    out = []
    for i in range(0, len(data), step):
        chunk = data[i:i + step]
        last = i + step >= len(data)
        t = bytearray(tcph)
        struct.pack_into("!I", t, 4, (seq + i) & 0xFFFFFFFF)
        t[13] = flags & ~((0 if last else 0x09) | (0x80 if i else 0))
        t[16:18] = b"\0\0"
        ip = bytearray(iph)
        tcp_len = thl + len(chunk)
        if version == 4:
            struct.pack_into("!H", ip, 2, ihl + tcp_len)
            ip[10:12] = b"\0\0"
            struct.pack_into("!H", ip, 10, ~ones_sum(ip) & 0xFFFF)
            pseudo = ones_sum(bytes(ip[12:20]) + struct.pack("!BBH", 0, 6, tcp_len))
        else:
            struct.pack_into("!H", ip, 4, tcp_len)
            pseudo = ones_sum(bytes(ip[8:40]) + struct.pack("!IxxxB", tcp_len, 6))
        struct.pack_into("!H", t, 16, ~ones_sum(bytes(t) + chunk, pseudo) & 0xFFFF)
        out.append(bytes(ip) + bytes(t) + chunk)
    return out


__all__ = ["TunLink", "TunQueue", "TunUnavailable", "TunCounters", "VNET_HDR", "F_NEEDS_CSUM", "GSO_TCPV4",
           "GSO_TCPV6", "gso_segment"]
