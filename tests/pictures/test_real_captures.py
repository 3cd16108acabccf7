"""draw/plot on real captures of the Linux kernel's own TCP, made with tcpdump/dumpcap.

The captures under ``data/`` were taken inside two network namespaces joined by a veth pair
(192.0.2.1 client, 192.0.2.2 server; RFC 5737 addresses, inside namespaces only):

* ``tfo.pcap``: two TCP Fast Open connections (net.ipv4.tcp_fastopen=3, ECN on): the first asks
  for a cookie, the second carries 11 bytes of data on its SYN, which the SYN,ACK acknowledges
  (ack=12). Python client (``sendto(..., MSG_FASTOPEN)``) and server (``TCP_FASTOPEN``).
* ``rack_retransmit.pcapng``: 36 packets of an iperf3 bulk transfer, captured mid-connection by
  dumpcap at the sender with 5 % random loss (nft) at the receiver: the kernel retransmits a
  segment after a single SACK duplicate ACK (RACK), 50-200 µs after the first copy.
* ``snaplen64.pcap``: curl fetching 300 kB from ``python3 -m http.server``, ``tcpdump -s 64``:
  the SYN and SYN,ACK's 20 option bytes are cut after 10 (mss, sackOK, and 4 bytes of TS), so
  the window scale option is not in the capture.

Each test here failed before its fix (see the git log of this file for the xfail reasons).
"""

from pathlib import Path

import pytest

from picture_scenarios import run
from synack.pictures.model import load
from synack.pictures.seqdiag import render_mermaid, render_svg, render_text

DATA = Path(__file__).parent / "data"


def test_fast_open_data_on_the_syn_opens_the_connection():
    conn = load(DATA / "tfo.pcap").connection(2)
    syn = conn.segments[0]
    assert syn.flag_names.startswith("SYN") and syn.len == 11
    assert conn.segments[1].ack == 12
    a = [c.new for c in conn.states_of("A")]
    b = [c.new for c in conn.states_of("B")]
    # the server closes first: A is the passive closer
    assert a == ["SYN-SENT", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"], a
    assert b == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"] or \
        b == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "TIME-WAIT"], b
    assert "ESTABLISHED" in render_text(conn).split("SYN,ECE,ACK")[1]


def test_retransmission_after_one_sack_dup_ack_is_not_a_duplicate():
    conn = load(DATA / "rack_retransmit.pcapng").connection(1)
    dups = [s for s in conn.segments if "duplicate" in s.marks]
    assert dups == [], [(s.index, s.seq, s.len) for s in dups]
    second = [s for s in conn.segments if s.seq == 212160 and s.len == 65160]
    assert len(second) == 2
    assert "retransmission" in second[1].marks
    assert any(s.sack and s.ack == 212160 for s in conn.segments[second[0].index:second[1].index])


def test_options_cut_by_the_snaplen_are_said_to_be_cut(capsys):
    cap = load(DATA / "snaplen64.pcap")
    assert any("snaplen" in w for w in cap.warnings), cap.warnings
    conn = cap.connection(1)
    syn = conn.segments[0]
    assert "mss 1460" in syn.options and "sackOK" in syn.options
    label = render_text(conn).splitlines()
    syn_line = next(line for line in label if "SYN" in line and "seq=0" in line)
    assert "cut" in syn_line, syn_line
    assert run("draw", DATA / "snaplen64.pcap") == 0
    assert "snaplen" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["tfo.pcap", "rack_retransmit.pcapng", "snaplen64.pcap"])
def test_every_picture_of_the_real_captures(tmp_path, name, capsys):
    cap = load(DATA / name)
    for conn in cap.connections:
        render_text(conn)
        render_mermaid(conn)
        render_svg(conn)
    assert run("draw", DATA / name, "--list") == 0
    for kind in ("time-sequence", "inflight"):
        assert run("plot", DATA / name, "--kind", kind, "-o", tmp_path / f"{kind}.svg") == 0


def test_a_snaplen_inside_the_fixed_tcp_header_is_named_not_called_malformed(tmp_path):
    """The same capture re-cut to 44 bytes a frame (Ethernet 14 + IPv4 20 + 10 bytes of TCP), as
    ``tcpdump -s 44`` would have written it: no sequence numbers survive, and the warning says
    why rather than calling the packets malformed."""
    import struct
    raw = (DATA / "snaplen64.pcap").read_bytes()
    out, i = bytearray(raw[:24]), 24
    out[16:20] = struct.pack("<I", 44)
    while i < len(raw):
        sec, frac, incl, orig = struct.unpack_from("<IIII", raw, i)
        keep = min(incl, 44)
        out += struct.pack("<IIII", sec, frac, keep, orig) + raw[i + 16:i + 16 + keep]
        i += 16 + incl
    (tmp_path / "s44.pcap").write_bytes(bytes(out))
    cap = load(tmp_path / "s44.pcap")
    assert cap.connections == []
    assert any("snaplen" in w and "header" in w for w in cap.warnings), cap.warnings
    assert not any("malformed" in w for w in cap.warnings), cap.warnings
