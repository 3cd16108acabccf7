"""Loading captures and event logs into the neutral model."""

import pytest

from picture_scenarios import CLOSE, ISS_A, ISS_B, sim_connection, write_capture
from synack.link.pcap import PcapWriter
from synack.pictures.model import PictureError, load
from synack.wire.packet import build_tcp_packet
from synack.wire.tcp import Flags, TcpSegment


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return sim_connection(tmp_path_factory.mktemp("sim"))


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    return sim_connection(tmp_path_factory.mktemp("lossy"), size=150_000, loss=0.03, seed=7, name="lossy")


def test_capture_and_log_give_the_same_segments(sim):
    pcap, jsonl = sim
    a, b = load(pcap).connection(1), load(jsonl).connection(1)
    assert (str(a.a), str(a.b)) == (str(b.a), str(b.b))
    assert str(a.b) == "192.0.2.2:80" and a.a.addr == "192.0.2.1"
    key = lambda c: [(s.sender, s.flag_names, s.seq, s.ack, s.len) for s in c.segments]
    assert key(a) == key(b)
    first = a.segments[:3]
    assert [s.flag_names for s in first] == ["SYN", "SYN,ACK", "ACK"]
    assert [(s.seq, s.ack) for s in first] == [(0, 0), (0, 1), (1, 1)]
    assert "mss 1460" in first[0].options and first[0].direction == "A→B"


def test_times_from_the_log_are_real_and_from_the_capture_estimated(sim):
    pcap, jsonl = sim
    logged = load(jsonl).connection(1)
    assert not any(s.estimated for s in logged.segments)
    assert all(s.t_recv - s.t_sent == pytest.approx(0.01, abs=1e-3) for s in logged.segments)
    cap = load(pcap).connection(1)
    assert cap.delays["B"] == pytest.approx(0.01, abs=1e-3) and cap.delays["A"] == pytest.approx(0, abs=1e-3)
    assert all(s.estimated and s.t_sent <= s.t_recv for s in cap.segments)


def test_absolute_sequence_numbers(tmp_path):
    write_capture(tmp_path / "c.pcap", CLOSE)
    rel = load(tmp_path / "c.pcap").connection(1)
    ab = load(tmp_path / "c.pcap", absolute=True).connection(1)
    assert rel.segments[0].seq == 0 and ab.segments[0].seq == ISS_A
    assert rel.segments[1].ack == 1 and ab.segments[1].ack == (ISS_A + 1) % 2**32
    assert ab.segments[1].seq == ISS_B and ab.absolute
    # across the wrap, relative numbers keep counting up
    assert [s.seq for s in rel.segments if s.sender == "A"] == [0, 1, 1, 101, 102]


def test_marks_from_a_lossy_run(lossy):
    pcap, jsonl = lossy
    logged = load(jsonl).connection(1)
    seen = load(pcap).connection(1)
    count = lambda c, m: sum(1 for s in c.segments if m in s.marks)
    assert count(logged, "retransmission") > 0 and count(logged, "lost") > 0
    assert count(seen, "retransmission") > 0
    assert count(seen, "lost") == 0                      # one vantage point cannot know
    assert count(seen, "dup-ack") > 0
    # every retransmission the sender logged, the capture at the sender saw as one
    logged_rtx = {(s.seq, s.len) for s in logged.segments if "retransmission" in s.marks and s.sender == "A"}
    seen_rtx = {(s.seq, s.len) for s in seen.segments if "retransmission" in s.marks and s.sender == "A"}
    assert logged_rtx <= seen_rtx | {(s.seq, s.len) for s in seen.segments if "duplicate" in s.marks}
    for s in logged.segments:
        if "lost" in s.marks:
            assert s.t_recv is None


def test_connections_are_split_by_four_tuple_in_order_of_first_packet(tmp_path):
    path = tmp_path / "two.pcap"
    with PcapWriter(path) as w:
        for t, sport in ((0.0, 5001), (0.5, 5000), (0.6, 5001)):
            seg = TcpSegment(sport, 80, 1000, 0, Flags.SYN if t < 0.6 else Flags.ACK, 100)
            w.write(build_tcp_packet("192.0.2.1", "192.0.2.2", seg), t)
        udp_like = bytearray(build_tcp_packet("192.0.2.1", "192.0.2.2", TcpSegment(1, 2, 0, 0, Flags.ACK, 0)))
        udp_like[9] = 17                                  # not TCP: skipped silently
        w.write(bytes(udp_like), 0.7)
    cap = load(path)
    assert [c.index for c in cap.connections] == [1, 2]
    assert [c.a.port for c in cap.connections] == [5001, 5000]
    assert len(cap.connection(1).segments) == 2
    assert cap.connection("192.0.2.2:80>192.0.2.1:5000").index == 2
    assert cap.connection("192.0.2.1:5000 > 192.0.2.2:80").index == 2
    with pytest.raises(PictureError, match="no connection 3"):
        cap.connection(3)
    with pytest.raises(PictureError, match="no connection matches"):
        cap.connection("10.0.0.1:1>10.0.0.2:2")


def test_truncated_capture_is_a_clear_error(tmp_path, sim):
    pcap, _ = sim
    data = pcap.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:len(data) - 7])
    with pytest.raises(PictureError, match=r"cut\.pcap: bad or truncated capture: .*ends inside a record"):
        load(cut)
    partial = load(cut, strict=False)
    assert partial.warnings and len(partial.connection(1).segments) == len(load(pcap).connection(1).segments) - 1


@pytest.mark.parametrize("content, match", [
    (b"", "empty file"),
    (b"GIF89a....", "not a pcap, pcapng or synack event log"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "bad or truncated capture"),
    (b'{"ev":"header","format":"other","version":1}\n', "not a synack event log"),
    (b'{"ev":"header","format":"synack-events","version":1}\n{"t":0,"ev":"SegmentOut","conn":"1.2.3.4:1>5.6.7.8:2"}\n',
     "malformed record"),
])
def test_malformed_inputs(tmp_path, content, match):
    p = tmp_path / "bad"
    p.write_bytes(content)
    with pytest.raises(PictureError, match=match) as e:
        load(p)
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(PictureError, match="No such file"):
        load(tmp_path / "nope.pcap")


def test_capture_without_tcp_has_no_connections(tmp_path):
    p = tmp_path / "empty.pcap"
    PcapWriter(p).close()
    cap = load(p)
    assert cap.connections == []
    with pytest.raises(PictureError, match="no TCP connections"):
        cap.connection()


def test_one_side_logged_guessed_departures_stay_after_what_they_acknowledge(sim):
    # Only the server's log (the kernel-peer case of `synack demo`): the client's departures are
    # guessed from the handshake's delay. Make its last ACK arrive 1 ms after the server's FIN
    # left (a handshake delay of 10 ms would put its departure 9 ms before that FIN).
    from synack.log.jsonl import read_jsonl
    from synack.pictures.model import from_records
    _, jsonl = sim
    recs = [r for r in read_jsonl(jsonl) if str(r.get("conn", "")).startswith("192.0.2.2:80>")]
    fin = next(r for r in recs if r["ev"] == "SegmentOut" and "F" in r["seg"]["flags"])
    last = [r for r in recs if r["ev"] == "SegmentIn"][-1]
    for r in recs:
        if r["t"] >= last["t"]:
            r["t"] = fin["t"] + 0.001
    conn = from_records(recs).connection(1)
    fin_seg = next(s for s in conn.segments if s.sender == "B" and s.flags & Flags.FIN)
    ack_seg = conn.segments[-1]
    assert ack_seg.sender == "A" and ack_seg.estimated
    assert fin_seg.t_sent <= ack_seg.t_sent <= ack_seg.t_recv
