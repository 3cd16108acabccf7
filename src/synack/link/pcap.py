"""Packet captures: write classic pcap, read pcap and pcapng, and a ``Link`` wrapper that records.

Writing (``PcapWriter``) produces classic libpcap files (little-endian, version 2.4, µs or ns
timestamps) that tcpdump, tshark and Wireshark open. Timestamps are the ``t`` the caller passes,
virtual or real: the same packets at the same times give a byte-identical file (STYLE.md §6).

Reading (``read_pcap``) accepts classic pcap in either byte order with µs, ns or the "modified"
(Kuznetsov) magic, and pcapng (Section Header, Interface Description, Enhanced, Simple and the
obsolete Packet blocks; per-interface link type, ``if_tsresol`` and ``if_tsoffset``; other blocks
skipped). It yields the *IP packet* of each frame, link header removed, for these link types:

* RAW (101, and the old DLT values 12 and 14), IPV4 (228), IPV6 (229): the frame is the packet;
* EN10MB (1): Ethernet II, with any number of 802.1Q/802.1ad VLAN tags;
* LINUX_SLL (113) and LINUX_SLL2 (276): Linux "cooked" captures (``tcpdump -i any``);
* NULL (0) and LOOP (108): BSD loopback, the address family in host or network byte order.

Frames that carry no IP (ARP, LLC, other families) are skipped and counted in ``skipped``. For
link types with a header, bytes after the IP packet's own length (Ethernet padding, an FCS) are
trimmed; RAW frames are returned exactly as stored.

Errors: anything wrong with the content raises ``PcapError`` (a ``ValueError``) naming the reason
and byte offset, and no other exception; opening a path can still raise ``OSError``. A file cut
short inside its last record (a killed tcpdump) is an error too, raised after every complete
record before it was yielded; with ``strict=False`` iteration ends quietly there instead and the
reader's ``warning`` says what was cut.
"""

from __future__ import annotations

import io
import math
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Union

from synack.link.base import Link
from synack.outfile import OwnedFile

LINKTYPE_NULL = 0
LINKTYPE_EN10MB = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
_RAW_TYPES = frozenset({LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6})
SUPPORTED_LINKTYPES = frozenset(_RAW_TYPES | {LINKTYPE_NULL, LINKTYPE_EN10MB, LINKTYPE_LOOP,
                                              LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2})

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
MAGIC_MODIFIED = 0xA1B2CD34        # Kuznetsov's patched libpcap: 8 more bytes per record header
_SHB = b"\x0a\x0d\x0d\x0a"         # pcapng Section Header Block type: the same in both byte orders
_BLOCK_IDB, _BLOCK_OPB, _BLOCK_SPB, _BLOCK_EPB = 1, 2, 3, 6

MAX_RECORD = 1 << 24               # 16 MiB: larger than any IP frame (BIG TCP GSO included)
_MAX_BLOCK = 1 << 26
_ETH_IPV4, _ETH_IPV6 = 0x0800, 0x86DD
_ETH_VLAN = frozenset({0x8100, 0x88A8, 0x9100})
# link type -> (header length, offset of its 16-bit ethertype, name)
_HEADERS = {LINKTYPE_EN10MB: (14, 12, "Ethernet"), LINKTYPE_LINUX_SLL: (16, 14, "Linux cooked (SLL)"),
            LINKTYPE_LINUX_SLL2: (20, 0, "Linux cooked v2 (SLL2)")}
_AF_INET6 = frozenset({24, 28, 30})   # NetBSD/OpenBSD, FreeBSD, macOS (libpcap LINKTYPE_NULL)

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


class PcapError(ValueError):
    """A capture file could not be read; ``reason`` says why, ``offset`` where (bytes), if known."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        super().__init__(reason if offset is None else f"{reason} (at byte {offset})")
        self.reason = reason
        self.offset = offset


@dataclass(frozen=True, slots=True)
class PcapRecord:
    """One captured IP packet.

    ``t``: the capture timestamp in float seconds. ``linktype``: the link type it was captured
    on. ``data``: the IP packet, link header (and trailer) removed; shorter than the packet was
    if the capture's snaplen cut it. ``orig_len``: the IP packet's length on the wire, so
    ``orig_len > len(data)`` means the capture is partial.
    """
    t: float
    linktype: int
    data: bytes
    orig_len: int


# --- writing ---------------------------------------------------------------------------------

class PcapWriter(OwnedFile):
    """Write a classic pcap file: ``PcapWriter(path_or_file, linktype, nanosecond, snaplen)``.

    ``file_or_path``: a path (the file is created, truncated, and closed by ``close()``) or a
    binary file object (left open by ``close()``, only flushed). ``linktype`` goes into the file
    header; ``write()`` stores packets as given, so with the default ``LINKTYPE_RAW`` they are IP
    packets. ``nanosecond`` picks the ns-resolution magic. Packets longer than ``snaplen`` are
    cut, their original length kept. ``autoflush`` flushes after every record, so a killed
    process loses nothing. The header is little-endian whatever the host, so output is the same
    everywhere.
    """

    def __init__(self, file_or_path: str | os.PathLike | BinaryIO, linktype: int = LINKTYPE_RAW,
                 nanosecond: bool = False, snaplen: int = 262144, *, autoflush: bool = False) -> None:
        if not 0 <= linktype <= 0xFFFF:
            raise ValueError(f"link type {linktype} out of range")
        if not 0 < snaplen <= 0xFFFFFFFF:
            raise ValueError(f"snaplen {snaplen} out of range")
        super().__init__(file_or_path, "wb")
        self.linktype = linktype
        self.nanosecond = nanosecond
        self.snaplen = snaplen
        self.autoflush = autoflush
        self._units = 1_000_000_000 if nanosecond else 1_000_000
        magic = MAGIC_NSEC if nanosecond else MAGIC_USEC
        self._file.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        if autoflush:
            self._file.flush()

    def write(self, packet: bytes | bytearray | memoryview, t: float, *, orig_len: int | None = None) -> None:
        """Append one record stamped ``t`` (float seconds, >= 0). ``orig_len``: the packet's
        length on the wire when ``packet`` holds only its first bytes (the record is then
        partial, as a snaplen makes it). Raises ``ValueError`` if closed, if ``orig_len`` is
        shorter than ``packet``, or if ``t`` is negative, not finite, or past the 32-bit seconds
        field (year 2106)."""
        if self._closed:
            raise ValueError("write to a closed PcapWriter")
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"pcap timestamp must be finite and >= 0, got {t!r}")
        sec = math.floor(t)
        frac = round((t - sec) * self._units)    # t - floor(t) is exact: one rounding in all
        if frac >= self._units:
            sec, frac = sec + 1, frac - self._units
        if sec > 0xFFFFFFFF:
            raise ValueError(f"pcap timestamp {t!r} does not fit 32-bit seconds")
        n = len(packet)
        incl = min(n, self.snaplen)
        if orig_len is not None:
            if orig_len < n:
                raise ValueError(f"orig_len {orig_len} is shorter than the {n} bytes given")
            n = orig_len
        self._file.write(struct.pack("<IIII", sec, frac, incl, n) + bytes(packet[:incl]))
        if self.autoflush:
            self._file.flush()


# --- reading ---------------------------------------------------------------------------------

def read_pcap(source: Source, *, strict: bool = True) -> "PcapReader":
    """Iterate over the IP packets in a pcap or pcapng capture, as ``PcapRecord`` values.

    ``source``: a path, the file's bytes, or a binary file object (read from its current
    position, not closed). The returned iterator reads lazily; after (or during) iteration its
    ``format`` is ``"pcap"`` or ``"pcapng"``, ``skipped`` counts non-IP frames, and ``warning``
    is set if ``strict=False`` stopped at a truncated last record. Raises ``PcapError``.
    """
    return PcapReader(source, strict=strict)


class PcapReader:
    """The iterator ``read_pcap`` returns; see there."""

    def __init__(self, source: Source, *, strict: bool = True) -> None:
        self.source = source
        self.strict = strict
        self.format: str | None = None
        self.skipped = 0
        self.warning: str | None = None
        self._pos = 0
        self._gen = self._run()

    def __iter__(self) -> "PcapReader":
        return self

    def __next__(self) -> PcapRecord:
        return next(self._gen)

    def close(self) -> None:
        """Stop early and release the file (a path source is closed)."""
        self._gen.close()

    # -- plumbing --

    def _run(self) -> Iterator[PcapRecord]:
        src = self.source
        if isinstance(src, (str, os.PathLike)):
            f: BinaryIO = open(src, "rb")
            owned = True
        elif isinstance(src, (bytes, bytearray, memoryview)):
            f, owned = io.BytesIO(bytes(src)), True
        elif hasattr(src, "read"):
            f, owned = src, False
        else:
            raise TypeError(f"read_pcap wants a path, bytes or a binary file, not {type(src).__name__}")
        try:
            self._f = f
            magic = self._read(4)
            if not magic:
                raise PcapError("empty file: no pcap or pcapng header", 0)
            if len(magic) < 4:
                raise PcapError(f"file too short for a header ({len(magic)} bytes)", 0)
            if magic == _SHB:
                self.format = "pcapng"
                yield from self._pcapng(magic)
            else:
                yield from self._pcap(magic)
        finally:
            if owned:
                f.close()

    def _read(self, n: int) -> bytes:
        b = self._f.read(n)
        if not isinstance(b, (bytes, bytearray)):
            raise PcapError(f"source returned {type(b).__name__}, not bytes (open it in binary mode)")
        self._pos += len(b)
        return bytes(b)

    def _truncated(self, what: str, offset: int) -> None:
        """A record cut short by the end of the file: raise, or (not strict) note it and stop."""
        if self.strict:
            raise PcapError(f"file ends inside {what}", offset)
        self.warning = f"file ends inside {what} at byte {offset}; stopped there"

    # -- classic pcap --

    def _pcap(self, magic: bytes) -> Iterator[PcapRecord]:
        for order in "<>":
            (m,) = struct.unpack(order + "I", magic)
            if m in (MAGIC_USEC, MAGIC_NSEC, MAGIC_MODIFIED):
                break
        else:
            raise PcapError(f"not a pcap or pcapng file (magic {magic.hex()})", 0)
        self.format = "pcap"
        rest = self._read(20)
        if len(rest) < 20:
            raise PcapError("file header truncated", self._pos)
        major, minor, _zone, _sigfigs, _snaplen, linkfield = struct.unpack(order + "HHiIII", rest)
        if major != 2:
            raise PcapError(f"unsupported pcap version {major}.{minor}", 4)
        linktype = linkfield & 0xFFFF     # the upper bits carry FCS length/flags (pcap spec §8)
        units = 1_000_000_000 if m == MAGIC_NSEC else 1_000_000
        hlen = 24 if m == MAGIC_MODIFIED else 16
        rec = struct.Struct(order + "IIII")
        while True:
            start = self._pos
            hdr = self._read(hlen)
            if not hdr:
                return
            if len(hdr) < hlen:
                return self._truncated(f"a record header ({len(hdr)} of {hlen} bytes)", start)
            sec, frac, incl, orig = rec.unpack_from(hdr)
            if incl > MAX_RECORD:
                raise PcapError(f"record claims {incl} captured bytes (limit {MAX_RECORD})", start)
            data = self._read(incl)
            if len(data) < incl:
                return self._truncated(f"a record ({len(data)} of {incl} bytes)", start)
            out = self._strip(linktype, data, orig, (sec * units + frac) / units, start)
            if out is not None:
                yield out

    # -- pcapng --

    def _pcapng(self, first: bytes) -> Iterator[PcapRecord]:
        order: str | None = None
        # per interface: (linktype, snaplen, units per second, offset in seconds)
        ifaces: list[tuple[int, int, int, int]] = []
        last_t = 0.0
        prefix = first
        while True:
            start = self._pos - len(prefix)
            head = prefix + self._read(8 - len(prefix))
            prefix = b""
            if not head:
                return
            if len(head) < 8:
                return self._truncated(f"a block header ({len(head)} of 8 bytes)", start)
            lead = b""
            if head[:4] == _SHB:
                lead = self._read(4)
                if len(lead) < 4:
                    return self._truncated("a section header", start)
                if lead == b"\x4d\x3c\x2b\x1a":
                    order = "<"
                elif lead == b"\x1a\x2b\x3c\x4d":
                    order = ">"
                else:
                    raise PcapError(f"pcapng byte-order magic {lead.hex()} is neither order", start + 8)
                btype = 0x0A0D0D0A
                (blen,) = struct.unpack(order + "I", head[4:])
            elif order is None:
                raise PcapError("pcapng: first block is not a Section Header Block", start)
            else:
                btype, blen = struct.unpack(order + "II", head)
            if blen < 12 + len(lead) or blen % 4 or blen > _MAX_BLOCK:
                raise PcapError(f"pcapng block type {btype:#x} has invalid length {blen}", start)
            rest = self._read(blen - 8 - len(lead))
            if len(rest) < blen - 8 - len(lead):
                return self._truncated(f"a block ({len(rest) + 8 + len(lead)} of {blen} bytes)", start)
            body, trailer = lead + rest[:-4], rest[-4:]
            if struct.unpack(order + "I", trailer)[0] != blen:
                raise PcapError(f"pcapng block type {btype:#x}: trailing length differs from {blen}", start)

            if btype == 0x0A0D0D0A:
                if len(body) < 16:
                    raise PcapError("pcapng section header too short", start)
                major, minor = struct.unpack_from(order + "HH", body, 4)
                if major != 1:
                    raise PcapError(f"unsupported pcapng version {major}.{minor}", start)
                ifaces = []           # interface ids are per section
                continue
            if btype == _BLOCK_IDB:
                if len(body) < 8:
                    raise PcapError("pcapng interface description too short", start)
                linktype, _res, snaplen = struct.unpack_from(order + "HHI", body, 0)
                units, offset = 1_000_000, 0
                for code, value in _options(body, 8, order, start):
                    if code == 9 and len(value) == 1:          # if_tsresol
                        v = value[0]
                        units = 2 ** (v & 0x7F) if v & 0x80 else 10 ** v
                    elif code == 14 and len(value) == 8:       # if_tsoffset, seconds
                        (offset,) = struct.unpack(order + "q", value)
                ifaces.append((linktype, snaplen, units, offset))
                continue
            if btype == _BLOCK_EPB or btype == _BLOCK_OPB:
                if len(body) < 20:
                    raise PcapError("pcapng packet block too short", start)
                if btype == _BLOCK_EPB:
                    ifid, hi, lo, cap, orig = struct.unpack_from(order + "IIIII", body, 0)
                else:
                    ifid, _drops, hi, lo, cap, orig = struct.unpack_from(order + "HHIIII", body, 0)
                if cap > len(body) - 20:
                    raise PcapError(f"pcapng packet of {cap} bytes runs past its block", start)
                if ifid >= len(ifaces):
                    raise PcapError(f"pcapng packet names interface {ifid}, "
                                    f"only {len(ifaces)} described", start)
                linktype, _snap, units, offset = ifaces[ifid]
                last_t = (((hi << 32) | lo) + offset * units) / units
                data = body[20:20 + cap]
            elif btype == _BLOCK_SPB:
                if len(body) < 4:
                    raise PcapError("pcapng simple packet block too short", start)
                if not ifaces:
                    raise PcapError("pcapng simple packet block before any interface", start)
                (orig,) = struct.unpack_from(order + "I", body, 0)
                linktype, snap, _units, _offset = ifaces[0]
                cap = min(orig, len(body) - 4, snap or orig)
                data = body[4:4 + cap]   # no timestamp: keeps the previous packet's ``t``
            else:
                continue                 # name resolution, statistics, secrets, custom, ...
            out = self._strip(linktype, data, orig, last_t, start)
            if out is not None:
                yield out

    # -- link layers --

    def _strip(self, linktype: int, data: bytes, orig: int, t: float, offset: int) -> PcapRecord | None:
        """The IP packet inside one frame, or None (counted in ``skipped``) if it carries none."""
        if linktype in _RAW_TYPES:
            return PcapRecord(t, linktype, data, max(orig, len(data)))
        if linktype in _HEADERS:
            hlen, at, name = _HEADERS[linktype]
            _need(data, hlen, name, offset)
            ethertype = _u16(data, at)
        elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            _need(data, 4, "loopback", offset)
            # NULL: the capturing host's byte order, unknown here; families are < 65536, so two
            # leading zero bytes mean big-endian. LOOP is always big-endian.
            big = linktype == LINKTYPE_LOOP or data[:2] == b"\x00\x00"
            family = int.from_bytes(data[:4], "big" if big else "little")
            hlen = 4
            ethertype = _ETH_IPV4 if family == 2 else _ETH_IPV6 if family in _AF_INET6 else 0
        else:
            raise PcapError(f"unsupported link type {linktype} (supported: "
                            f"{', '.join(map(str, sorted(SUPPORTED_LINKTYPES)))})", offset)
        while ethertype in _ETH_VLAN:                     # 802.1Q / 802.1ad tags: TCI, then type
            _need(data, hlen + 4, "VLAN tag", offset)
            ethertype = _u16(data, hlen + 2)
            hlen += 4
        if ethertype not in (_ETH_IPV4, _ETH_IPV6):
            self.skipped += 1
            return None
        packet = _trim_to_ip_length(data[hlen:])
        trailer = len(data) - hlen - len(packet)
        return PcapRecord(t, linktype, packet, max(orig - hlen - trailer, len(packet)))


def _need(data: bytes, n: int, what: str, offset: int) -> None:
    if len(data) < n:
        raise PcapError(f"{len(data)}-byte frame too short for its {what} header ({n} bytes)", offset)


def _u16(data: bytes, i: int) -> int:
    return (data[i] << 8) | data[i + 1]


def _trim_to_ip_length(p: bytes) -> bytes:
    """Drop link-layer padding or FCS after an IP packet, going by the IP header's own length."""
    if len(p) >= 20 and p[0] >> 4 == 4:
        total = _u16(p, 2)
        if 20 <= total < len(p):
            return p[:total]
    elif len(p) >= 40 and p[0] >> 4 == 6:
        payload = _u16(p, 4)
        if payload and 40 + payload < len(p):      # 0: a jumbogram (RFC 2675), keep it all
            return p[:40 + payload]
    return p


def _options(body: bytes, i: int, order: str, offset: int) -> Iterator[tuple[int, bytes]]:
    """pcapng options (code, value) from ``body[i:]``, up to opt_endofopt or the end."""
    while i + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, i)
        if code == 0:
            return
        if i + 4 + length > len(body):
            raise PcapError(f"pcapng option {code} runs past its block", offset)
        yield code, body[i + 4:i + 4 + length]
        i += 4 + (length + 3) // 4 * 4


# --- the Link wrapper ------------------------------------------------------------------------

VANTAGES = ("stack", "wire")


class PcapLink:
    """A ``Link`` that records every packet through it, stamped with ``now``, and passes it on.

    ``PcapLink(inner, writer, vantage="stack")``: ``writer`` is a ``PcapWriter`` (left open by
    ``close()``) or a path (a RAW writer is opened, and closed by ``close()``).

    ``vantage`` names where this wrapper sits, because that decides what the file shows:

    * ``"stack"``: outermost, right next to the stack, e.g. ``PcapLink(Faults(tun), ...)``. The
      file holds every packet the stack sent (including ones the faults then drop, delay or
      duplicate) and exactly what the stack received.
    * ``"wire"``: innermost, around the real link, e.g. ``Faults(PcapLink(tun, ...))``. The file
      holds what crossed the wire: what survived the faults outbound, everything inbound.

    The wrapper cannot see where it sits; ``vantage`` is a label for humans and tools (it is
    checked to be one of ``VANTAGES``), so one file never mixes two vantage points unannounced.
    """

    def __init__(self, inner: Link, writer: PcapWriter | str | os.PathLike, vantage: str = "stack") -> None:
        if vantage not in VANTAGES:
            raise ValueError(f"vantage must be one of {VANTAGES}, not {vantage!r}")
        self.inner = inner
        if isinstance(writer, PcapWriter):
            self.writer, self._owned = writer, False
        else:
            self.writer, self._owned = PcapWriter(writer), True
        self.vantage = vantage

    def transmit(self, packet: bytes, now: float) -> None:
        self.writer.write(packet, now)
        self.inner.transmit(packet, now)

    def receive(self, now: float) -> list[bytes]:
        packets = self.inner.receive(now)
        for p in packets:
            self.writer.write(p, now)
        return packets

    def next_timer(self) -> float | None:
        return self.inner.next_timer()

    def close(self) -> None:
        """Close the writer if this link opened it, else flush it. The inner link is untouched."""
        if self._owned:
            self.writer.close()
        else:
            self.writer.flush()

    def __enter__(self) -> "PcapLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "PcapWriter", "PcapReader", "PcapRecord", "PcapError", "PcapLink", "read_pcap", "VANTAGES",
    "LINKTYPE_NULL", "LINKTYPE_EN10MB", "LINKTYPE_RAW", "LINKTYPE_LOOP", "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2", "LINKTYPE_IPV4", "LINKTYPE_IPV6", "SUPPORTED_LINKTYPES", "MAX_RECORD",
]
