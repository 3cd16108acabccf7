"""synack.link.pcap: writing classic pcap, reading pcap/pcapng over many link types, PcapLink.

Captures are built byte by byte here (struct + synack.wire.checksum), so these tests need no
other synack module than wire.tcp; tshark and editcap check the files against Wireshark.
"""

from __future__ import annotations

import io
import ipaddress
import os
import shutil
import struct
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synack.link.pcap import (
    LINKTYPE_EN10MB, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP, LINKTYPE_NULL,
    LINKTYPE_RAW, PcapError, PcapLink, PcapRecord, PcapWriter, read_pcap,
)
from synack.wire.checksum import checksum
from synack.wire.tcp import Flags, Mss, Nop, SackPermitted, TcpSegment, Timestamps, WindowScale, emit_tcp

CLIENT, SERVER = "10.0.0.2", "10.0.0.1"
ISS, IRS = 2**32 - 6, 2**32 - 3         # both sequence spaces wrap during the conversation


# --- building packets and files ------------------------------------------------------------

def ip4_tcp(src: str, dst: str, seg: TcpSegment, ident: int = 0) -> bytes:
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    tcp = emit_tcp(seg, s, d)
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ident, 0x4000, 64, 6, 0, s, d))
    hdr[10:12] = struct.pack("!H", checksum(hdr))
    return bytes(hdr) + tcp


def ip6_tcp(src: str, dst: str, seg: TcpSegment) -> bytes:
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    tcp = emit_tcp(seg, s, d)
    return struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, s, d) + tcp


def conversation() -> list[tuple[float, bytes, TcpSegment]]:
    """A whole HTTP-ish exchange: handshake, data both ways, FIN both ways."""
    A, PA, S, SA, FA = Flags.ACK, Flags.PSH | Flags.ACK, Flags.SYN, Flags.SYN | Flags.ACK, Flags.FIN | Flags.ACK
    req, resp = b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\nhello"
    c, s = ISS + 1, IRS + 1
    M = 2**32
    steps = [
        (0.0, True, TcpSegment(40000, 80, ISS, 0, S, 64240, options=(
            Mss(1460), SackPermitted(), Timestamps(1, 0), Nop(), WindowScale(7)))),
        (0.010, False, TcpSegment(80, 40000, IRS, c, SA, 65160, options=(Mss(1460), Nop(), WindowScale(7)))),
        (0.020, True, TcpSegment(40000, 80, c, s, A, 502)),
        (0.020, True, TcpSegment(40000, 80, c, s, PA, 502, payload=req)),
        (0.030, False, TcpSegment(80, 40000, s, (c + len(req)) % M, A, 509)),
        (0.031, False, TcpSegment(80, 40000, s, (c + len(req)) % M, PA, 509, payload=resp)),
        (0.032, False, TcpSegment(80, 40000, (s + len(resp)) % M, (c + len(req)) % M, FA, 509)),
        (0.041, True, TcpSegment(40000, 80, (c + len(req)) % M, (s + len(resp) + 1) % M, FA, 502)),
        (0.050, False, TcpSegment(80, 40000, (s + len(resp) + 1) % M, (c + len(req) + 1) % M, A, 509)),
    ]
    out = []
    for i, (t, from_client, seg) in enumerate(steps):
        src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
        out.append((t, ip4_tcp(src, dst, seg, ident=i), seg))
    return out


def classic(records, linktype=LINKTYPE_RAW, order="<", magic=0xA1B2C3D4, units=10**6) -> bytes:
    """A classic pcap file from (t, frame) pairs, in either byte order."""
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for t, frame in records:
        n = round(t * units)
        out += struct.pack(order + "IIII", n // units, n % units, len(frame), len(frame))
        if magic == 0xA1B2CD34:
            out += b"\x00" * 8
        out += frame
    return out


def _pad(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def block(btype: int, body: bytes, order="<") -> bytes:
    body = _pad(body)
    return struct.pack(order + "II", btype, 12 + len(body)) + body + struct.pack(order + "I", 12 + len(body))


def option(code: int, value: bytes, order="<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad(value)


def shb(order="<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def idb(linktype: int, tsresol: int | None = None, order="<", tsoffset: int | None = None) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), order)
    if tsoffset is not None:
        opts += option(14, struct.pack(order + "q", tsoffset), order)
    if opts:
        opts += option(0, b"", order)
    return block(1, struct.pack(order + "HHI", linktype, 0, 0) + opts, order)


def epb(ifid: int, ts: int, frame: bytes, order="<", orig: int | None = None) -> bytes:
    body = struct.pack(order + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(frame),
                       len(frame) if orig is None else orig) + _pad(frame)
    return block(6, body, order)


def spb(frame: bytes, order="<") -> bytes:
    return block(3, struct.pack(order + "I", len(frame)) + frame, order)


def ether(payload: bytes, ethertype: int = 0x0800, vlans: tuple[int, ...] = ()) -> bytes:
    hdr = bytes.fromhex("020000000001") + bytes.fromhex("020000000002")
    for vid in vlans:
        hdr += struct.pack("!HH", 0x8100, vid)
    return hdr + struct.pack("!H", ethertype) + payload


PKT = ip4_tcp(CLIENT, SERVER, TcpSegment(40000, 80, ISS, 0, Flags.SYN, 64240, options=(Mss(1460),)))
PKT6 = ip6_tcp("2001:db8::2", "2001:db8::1", TcpSegment(40001, 443, 7, 0, Flags.SYN, 1000))


# --- writing and round trips ---------------------------------------------------------------

@pytest.mark.parametrize("nanosecond", [False, True])
def test_round_trip(tmp_path, nanosecond):
    conv = conversation()
    path = tmp_path / "c.pcap"
    with PcapWriter(path, nanosecond=nanosecond) as w:
        for t, pkt, _ in conv:
            w.write(pkt, t + 1_700_000_000.123456)
    reader = read_pcap(path)
    recs = list(reader)
    assert reader.format == "pcap" and reader.skipped == 0 and reader.warning is None
    assert [r.data for r in recs] == [pkt for _, pkt, _ in conv]
    assert all(r.linktype == LINKTYPE_RAW and r.orig_len == len(r.data) for r in recs)
    tol = 1e-9 if nanosecond else 1e-6
    for r, (t, _, _) in zip(recs, conv):
        assert abs(r.t - (t + 1_700_000_000.123456)) <= tol / 2 + 1e-7   # float spacing near 1.7e9


def test_timestamps_exact_at_their_resolution():
    buf = io.BytesIO()
    with PcapWriter(buf, nanosecond=True) as w:
        for t in (0.0, 0.1, 12345.678901234, 2.9999999999):
            w.write(b"x", t)
    assert [r.t for r in read_pcap(buf.getvalue())] == [0.0, 0.1, 12345.678901234, 3.0]
    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        w.write(b"x", 0.0000012)
        w.write(b"x", 0.2)
    assert [r.t for r in read_pcap(buf.getvalue())] == [0.000001, 0.2]


def test_header_bytes_and_determinism(tmp_path):
    def write(path):
        with PcapWriter(path) as w:
            for t, pkt, _ in conversation():
                w.write(pkt, t)
        return path.read_bytes()
    a, b = write(tmp_path / "a.pcap"), write(tmp_path / "b.pcap")
    assert a == b
    assert a[:24] == struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101)
    assert PcapWriter(io.BytesIO(), nanosecond=True)._file.getvalue()[:4] == bytes.fromhex("4d3cb2a1")


def test_snaplen_cuts_but_keeps_orig_len():
    buf = io.BytesIO()
    with PcapWriter(buf, snaplen=40) as w:
        w.write(PKT + b"payload" * 10, 1.0)
    (r,) = read_pcap(buf.getvalue())
    assert r.data == (PKT + b"payload" * 10)[:40] and r.orig_len == len(PKT) + 70


def test_writer_rejects_bad_input():
    w = PcapWriter(io.BytesIO())
    for t in (-1.0, float("nan"), float("inf"), 2.0**33):
        with pytest.raises(ValueError):
            w.write(b"x", t)
    w.close()
    w.close()
    with pytest.raises(ValueError):
        w.write(b"x", 1.0)
    with pytest.raises(ValueError):
        PcapWriter(io.BytesIO(), linktype=70000)


def test_writer_leaves_a_given_file_open():
    buf = io.BytesIO()
    PcapWriter(buf, autoflush=True).close()
    assert not buf.closed and len(buf.getvalue()) == 24


# --- reading other producers' layouts ------------------------------------------------------

@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("magic,units", [(0xA1B2C3D4, 10**6), (0xA1B23C4D, 10**9), (0xA1B2CD34, 10**6)])
def test_classic_both_byte_orders_and_magics(order, magic, units):
    data = classic([(1.5, PKT), (2.25, PKT6)], order=order, magic=magic, units=units)
    assert [(r.t, r.data) for r in read_pcap(data)] == [(1.5, PKT), (2.25, PKT6)]


@pytest.mark.parametrize("old_raw", [12, 14])
def test_old_raw_linktypes(old_raw):
    assert [r.data for r in read_pcap(classic([(0, PKT)], linktype=old_raw))] == [PKT]


def test_ethernet_vlan_padding_fcs_and_non_ip():
    small = ip4_tcp(CLIENT, SERVER, TcpSegment(1, 2, 3, 4, Flags.ACK, 5))     # 40 bytes: padded
    frames = [
        ether(PKT),
        ether(PKT6, 0x86DD, vlans=(100,)),
        ether(PKT, vlans=(100, 200)),                                         # QinQ, as 8100/8100
        ether(small) + b"\x00" * 6 + b"\xde\xad\xbe\xef",                     # padding + FCS
        ether(b"\x00\x01\x08\x00" + b"\x00" * 24, 0x0806),                    # ARP: skipped
        ether(b"\xaa\xaa\x03" + b"\x00" * 40, 46),                            # 802.3 length: skipped
    ]
    reader = read_pcap(classic([(i, f) for i, f in enumerate(frames)], linktype=LINKTYPE_EN10MB))
    recs = list(reader)
    assert [r.data for r in recs] == [PKT, PKT6, PKT, small]
    assert reader.skipped == 2
    assert recs[3].orig_len == 40 and recs[1].orig_len == len(PKT6)
    assert all(r.linktype == LINKTYPE_EN10MB for r in recs)
    assert [r.t for r in recs] == [0, 1, 2, 3]


def test_ethernet_802_1ad_outer_tag():
    frame = bytes.fromhex("020000000001020000000002") + struct.pack("!HHHHH", 0x88A8, 10, 0x8100, 20, 0x0800) + PKT
    assert [r.data for r in read_pcap(classic([(0, frame)], linktype=LINKTYPE_EN10MB))] == [PKT]


def test_linux_cooked_sll_and_sll2():
    sll = lambda proto, p: struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\0\0", proto) + p  # noqa: E731
    sll2 = lambda proto, p: struct.pack("!HHIHBB8s", proto, 0, 2, 1, 4, 6, b"\x02" * 8) + p   # noqa: E731
    r = read_pcap(classic([(0, sll(0x0800, PKT)), (1, sll(0x86DD, PKT6)), (2, sll(0x0806, b"arp"))],
                          linktype=LINKTYPE_LINUX_SLL))
    assert [x.data for x in r] == [PKT, PKT6] and r.skipped == 1
    r = read_pcap(classic([(0, sll2(0x86DD, PKT6)), (1, sll2(0x0800, PKT)), (2, sll2(0x0004, b"llc"))],
                          linktype=LINKTYPE_LINUX_SLL2))
    assert [(x.linktype, x.data) for x in r] == [(276, PKT6), (276, PKT)] and r.skipped == 1


def test_null_and_loop():
    frames = [struct.pack("<I", 2) + PKT, struct.pack(">I", 30) + PKT6,      # macOS, written big-endian
              struct.pack("<I", 24) + PKT6, struct.pack("<I", 7) + b"other"]
    r = read_pcap(classic(list(enumerate(frames)), linktype=LINKTYPE_NULL))
    assert [x.data for x in r] == [PKT, PKT6, PKT6] and r.skipped == 1
    r = read_pcap(classic([(0, struct.pack(">I", 2) + PKT), (1, struct.pack(">I", 28) + PKT6)],
                          linktype=LINKTYPE_LOOP))
    assert [x.data for x in r] == [PKT, PKT6]


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_resolutions_and_unknown_blocks(order):
    nrb = block(4, option(1, b"\x0a\x00\x00\x01host\x00", order) + option(0, b"", order), order)
    data = (shb(order)
            + idb(LINKTYPE_RAW, order=order)                              # if 0: µs (default)
            + idb(LINKTYPE_EN10MB, tsresol=9, order=order)                # if 1: ns
            + idb(LINKTYPE_LINUX_SLL2, tsresol=0x80 | 10, order=order, tsoffset=100)   # if 2: 2**-10 s
            + nrb
            + epb(0, 1_500_000, PKT, order)
            + epb(1, 2_000_000_001, ether(PKT6, 0x86DD), order)
            + block(0x0BAD, b"custom block, skipped", order)
            + epb(2, 512, struct.pack("!HHIHBB8s", 0x0800, 0, 1, 1, 0, 6, b"") + PKT, order)
            + spb(PKT6, order)
            + block(5, struct.pack(order + "III", 0, 0, 0), order))      # interface statistics
    reader = read_pcap(data)
    recs = list(reader)
    assert reader.format == "pcapng"
    assert recs == [
        PcapRecord(1.5, LINKTYPE_RAW, PKT, len(PKT)),
        PcapRecord(2.000000001, LINKTYPE_EN10MB, PKT6, len(PKT6)),
        PcapRecord(100.5, LINKTYPE_LINUX_SLL2, PKT, len(PKT)),
        PcapRecord(100.5, LINKTYPE_RAW, PKT6, len(PKT6)),   # SPB: interface 0, previous timestamp
    ]


def test_pcapng_sections_reset_interfaces_and_may_switch_byte_order():
    data = shb("<") + idb(LINKTYPE_RAW) + epb(0, 1, PKT) + shb(">") + idb(LINKTYPE_RAW, order=">") \
        + epb(0, 2, PKT6, ">")
    assert [r.data for r in read_pcap(data)] == [PKT, PKT6]
    bad = shb() + idb(LINKTYPE_RAW) + shb() + epb(0, 1, PKT)                # interface 0 is gone
    with pytest.raises(PcapError, match="interface 0"):
        list(read_pcap(bad))


def test_reads_from_binary_file_object():
    data = classic([(0, PKT)])
    f = io.BytesIO(data)
    assert [r.data for r in read_pcap(f)] == [PKT] and not f.closed


# --- malformed and truncated input ---------------------------------------------------------

GOOD = classic([(0, PKT), (1, PKT6)])
GOOD_NG = shb() + idb(LINKTYPE_RAW) + epb(0, 5, PKT) + epb(0, 6, PKT6)


@pytest.mark.parametrize("data,match", [
    (b"", "empty"),
    (b"\xd4\xc3", "too short"),
    (b"hello, this is not a capture at all", "not a pcap"),
    (GOOD[:20], "header truncated"),
    (struct.pack("<IHHiIII", 0xA1B2C3D4, 3, 0, 0, 0, 65535, 101), "version 3.0"),
    (classic([(0, PKT)], linktype=105), "unsupported link type 105"),
    (classic([(0, b"\x00" * 10)], linktype=LINKTYPE_EN10MB), "too short for its Ethernet"),
    (classic([(0, ether(b"", 0x8100)[:14] + b"\x00")], linktype=LINKTYPE_EN10MB), "VLAN"),
    (GOOD[:24] + struct.pack("<IIII", 0, 0, 2**30, 2**30), "claims"),
    (GOOD_NG[:-3], "ends inside a block"),
    (GOOD_NG[:-4] + b"\x00\x00\x00\x00", "trailing length"),
    (shb()[:8] + b"\x11\x22\x33\x44" + shb()[12:], "byte-order magic"),
    (shb() + idb(LINKTYPE_RAW)[:4] + struct.pack("<I", 13) + b"\x00" * 5, "invalid length 13"),
    (shb() + epb(0, 0, PKT), "only 0 described"),
    (shb() + spb(PKT), "before any interface"),
    (block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 2, 0, -1)), "pcapng version 2"),
    (shb() + block(1, struct.pack("<HHI", 101, 0, 0) + struct.pack("<HH", 9, 40)), "option 9"),
    (shb() + idb(LINKTYPE_RAW) + block(6, struct.pack("<IIIII", 0, 0, 0, 99, 99)), "runs past"),
])
def test_malformed_raises_pcap_error(data, match):
    with pytest.raises(PcapError, match=match):
        list(read_pcap(data))


@pytest.mark.parametrize("cut", [24 + 8, 24 + 16 + 10, len(GOOD) - 1])
def test_truncated_last_record(cut):
    data = GOOD[:cut]
    got = []
    with pytest.raises(PcapError, match="file ends inside a record") as e:
        for r in read_pcap(data):
            got.append(r.data)
    assert got == [PKT][: 1 if cut > 24 + 16 + len(PKT) else 0]    # complete records came first
    assert e.value.offset in (24, 24 + 16 + len(PKT))
    lenient = read_pcap(data, strict=False)
    assert [r.data for r in lenient] == got
    assert lenient.warning and "file ends inside" in lenient.warning


def test_truncated_pcapng_lenient():
    lenient = read_pcap(GOOD_NG[:-10], strict=False)
    assert [r.data for r in lenient] == [PKT] and "block" in lenient.warning


def test_missing_file_is_os_error(tmp_path):
    with pytest.raises(OSError):
        list(read_pcap(tmp_path / "nope.pcap"))


_PREFIXES = [b"", GOOD[:24], GOOD_NG[:28 + 20], classic([], linktype=LINKTYPE_EN10MB),
             classic([], linktype=LINKTYPE_NULL, order=">"), classic([], linktype=LINKTYPE_LINUX_SLL2)]


def _consume(data: bytes) -> None:
    try:
        for r in read_pcap(data):
            assert isinstance(r, PcapRecord)
    except PcapError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PREFIXES), st.binary(max_size=300))
def test_any_bytes_give_records_or_pcap_error(prefix, tail):
    _consume(prefix + tail)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([GOOD, GOOD_NG, shb(">") + idb(1, 9, ">") + epb(0, 1, ether(PKT), ">")]),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
       st.integers(0, 10**6))
def test_mutated_captures_give_records_or_pcap_error(good, flips, cut):
    data = bytearray(good)
    for i, v in flips:
        data[i % len(data)] = v
    _consume(bytes(data[: max(0, len(data) - cut % (len(data) + 1))]))


# --- PcapLink ------------------------------------------------------------------------------

class MemoryLink:
    def __init__(self):
        self.sent: list[tuple[bytes, float]] = []
        self.inbox: list[bytes] = []

    def transmit(self, packet: bytes, now: float) -> None:
        self.sent.append((packet, now))

    def receive(self, now: float) -> list[bytes]:
        out, self.inbox = self.inbox, []
        return out

    def next_timer(self) -> float | None:
        return 7.5 if self.inbox else None


def test_pcap_link_records_both_directions(tmp_path):
    inner = MemoryLink()
    path = tmp_path / "link.pcap"
    link = PcapLink(inner, path)
    assert link.vantage == "stack" and link.next_timer() is None
    link.transmit(PKT, 1.0)
    inner.inbox = [PKT6, PKT]
    assert link.next_timer() == 7.5
    assert link.receive(2.0) == [PKT6, PKT]
    assert link.receive(3.0) == []
    assert inner.sent == [(PKT, 1.0)]
    link.close()
    assert link.writer.closed
    assert [(r.t, r.data) for r in read_pcap(path)] == [(1.0, PKT), (2.0, PKT6), (2.0, PKT)]


def test_pcap_link_with_given_writer_and_vantage():
    buf = io.BytesIO()
    w = PcapWriter(buf, nanosecond=True)
    with PcapLink(MemoryLink(), w, vantage="wire") as link:
        link.transmit(PKT, 0.123456789)
    assert not w.closed and [r.t for r in read_pcap(buf.getvalue())] == [0.123456789]
    with pytest.raises(ValueError, match="vantage"):
        PcapLink(MemoryLink(), w, vantage="middle")


# --- checked by Wireshark's own tools ------------------------------------------------------

def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed, and CI must run this test (apt-get install tshark)")
        pytest.skip(f"{name} not installed")
    return path


_WS_FLAGS = [(Flags.CWR, "C"), (Flags.ECE, "E"), (Flags.URG, "U"), (Flags.ACK, "A"), (Flags.PSH, "P"),
             (Flags.RST, "R"), (Flags.SYN, "S"), (Flags.FIN, "F")]


def _wireshark_flags(flags: Flags) -> str:
    """tcp.flags.str: 3 reserved bits and AE as dots, then CEUAPRSF, a dot for each clear bit."""
    return "\u00b7" * 4 + "".join(ch if flags & f else "\u00b7" for f, ch in _WS_FLAGS)


def test_tshark_reads_conversation_with_good_checksums(tmp_path):
    tshark = _tool("tshark")
    conv = conversation()
    path = tmp_path / "conv.pcap"
    with PcapWriter(path) as w:
        for t, pkt, _ in conv:
            w.write(pkt, t)
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
         "-T", "fields", "-E", "separator=|", "-e", "frame.time_epoch", "-e", "tcp.flags.str",
         "-e", "tcp.seq_raw", "-e", "tcp.ack_raw", "-e", "tcp.len", "-e", "tcp.checksum.status",
         "-e", "ip.checksum.status"],
        capture_output=True, text=True, encoding="utf-8", check=True, timeout=120).stdout
    rows = [line.split("|") for line in out.splitlines() if line]
    assert len(rows) == len(conv)
    for row, (t, _, seg) in zip(rows, conv):
        epoch, flags, seq, ack, length, tcp_ok, ip_ok = row
        assert abs(float(epoch) - t) < 1e-6
        assert flags == _wireshark_flags(seg.flags)
        assert (int(seq), int(ack), int(length)) == (seg.seq, seg.ack, len(seg.payload))
        assert (tcp_ok, ip_ok) == ("1", "1"), "1 is Wireshark's PROTO_CHECKSUM_E_GOOD"


@pytest.mark.parametrize("nanosecond", [False, True])
def test_reads_editcap_pcapng(tmp_path, nanosecond):
    editcap = _tool("editcap")
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcapng"
    with PcapWriter(src, nanosecond=nanosecond) as w:
        for t, pkt, _ in conversation():
            w.write(pkt, 1_000_000 + t + 0.000000123)
    subprocess.run([editcap, "-F", "pcapng", str(src), str(dst)], check=True, capture_output=True, timeout=120)
    assert dst.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    ng = read_pcap(dst)
    assert list(ng) == list(read_pcap(src)) and ng.format == "pcapng"
