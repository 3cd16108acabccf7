"""SendBuffer and ReceiveBuffer, in stream offsets, against simple byte-by-byte models."""

import pytest
from hypothesis import example, given, settings, strategies as st

from synack.tcp.recvbuf import ReceiveBuffer
from synack.tcp.sendbuf import SendBuffer

# --- ReceiveBuffer -------------------------------------------------------------------------------


class Model:
    """Per-byte reference: which stream offsets are held, and which were read."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held: set[int] = set()
        self.read = 0
        self.edge_max = capacity        # the farthest read + capacity has been
        self.cut: tuple[int, int] | None = None   # the newest segment, if a lowered capacity cut it

    @property
    def nxt(self) -> int:
        n = self.read
        while n in self.held:
            n += 1
        return n

    def insert(self, off: int, length: int) -> int:
        before = self.nxt
        limit = self.read + self.capacity
        self.edge_max = max(self.edge_max, limit)
        s, end = max(off, before), off + length
        self.cut = (s, end) if s > before and min(end, limit) < min(end, self.edge_max) else None
        for p in range(s, min(end, limit)):
            self.held.add(p)
        return self.nxt - before

    def set_capacity(self, value: int) -> None:
        """SO_RCVBUF changed: held out-of-order bytes beyond the new limit go (RFC 2018 §8)."""
        self.edge_max = max(self.edge_max, self.read + self.capacity)
        self.capacity = value
        nxt = self.nxt
        self.held = {p for p in self.held if p < nxt or p < self.read + value}

    def sack_blocks(self) -> list[tuple[int, int]]:
        """What the SACK option reports, as a set: the held ranges, except that a cut newest
        segment's edges lead, joined to the held range holding its first octet (RFC 2018 §8)."""
        ranges = self.ooo_ranges()
        if self.cut is None or self.cut[0] <= self.nxt:
            return ranges
        first = self.cut
        for b in ranges:
            if b[0] <= first[0] <= b[1]:
                first = (b[0], self.cut[1])
        return sorted([first] + [b for b in ranges if b[1] < first[0] or b[0] > first[1]])

    def ooo_ranges(self) -> list[tuple[int, int]]:
        nxt = self.nxt
        runs: list[tuple[int, int]] = []
        for p in sorted(x for x in self.held if x > nxt):
            if runs and runs[-1][1] == p:
                runs[-1] = (runs[-1][0], p + 1)
            else:
                runs.append((p, p + 1))
        return runs

    def do_read(self, n: int) -> int:
        got = min(n, self.nxt - self.read)
        for p in range(self.read, self.read + got):
            self.held.discard(p)
        self.read += got
        return got


def check(rb: ReceiveBuffer, model: Model) -> None:
    assert rb.read_offset == model.read
    assert rb.next_offset == model.nxt
    assert rb.readable == rb.next_offset - rb.read_offset
    assert rb.window >= 0
    assert rb.window == max(0, rb.capacity - rb.readable)
    ranges = rb.ooo_ranges()
    assert ranges == model.ooo_ranges()             # sorted, disjoint, coalesced
    assert rb.ooo_bytes == sum(e - s for s, e in ranges)
    assert rb.readable + rb.ooo_bytes <= max(rb.capacity, rb.readable)   # a lowered capacity keeps what is readable
    assert all(s > rb.next_offset and e <= rb.read_offset + rb.capacity for s, e in ranges)
    assert sorted(rb.sack_ranges(len(ranges) + 3)) == model.sack_blocks()


segment = st.tuples(st.integers(0, 2100), st.integers(0, 400))
op = st.one_of(st.tuples(st.just("ins"), segment), st.tuples(st.just("read"), st.integers(0, 600)),
               st.tuples(st.just("cap"), st.integers(1, 2500)))


@settings(max_examples=300, deadline=None)
@given(stream=st.binary(min_size=1, max_size=2000), capacity=st.integers(1, 2500),
       ops=st.lists(op, max_size=60))
@example(stream=bytes(range(256)) * 4, capacity=1000,          # a reneging receiver cuts the newest
         ops=[("ins", (100, 50)), ("cap", 200), ("ins", (150, 100)), ("ins", (300, 100)), ("read", 10)])
def test_any_segmentation_reassembles_the_stream(stream, capacity, ops):
    """Random segmentation, overlap, duplication, reordering, reads and SO_RCVBUF changes
    (reneging, RFC 2018 §8), then a clean finish."""
    rb, model, out = ReceiveBuffer(capacity), Model(capacity), bytearray()
    for kind, arg in ops:
        if kind == "ins":
            off, length = arg
            data = stream[off:off + length]
            if not data:
                continue
            nxt = rb.next_offset
            advanced = rb.insert(off, data)
            assert advanced == model.insert(off, len(data))
            assert rb.next_offset == nxt + advanced
            s, e = max(off, nxt), min(off + len(data), rb.read_offset + rb.capacity)
            if advanced == 0 and e > s:             # held out of order: reported first (2018 §4)
                first = rb.sack_ranges(1)[0]
                assert first[0] <= s and e <= first[1]
        elif kind == "cap":
            rb.capacity = arg
            model.set_capacity(arg)
        else:
            got = rb.read(arg)
            assert len(got) == model.do_read(arg)
            out += got
        check(rb, model)
    # The sender retransmits whatever is missing until everything is through.
    while rb.read_offset < len(stream):
        n = rb.next_offset
        model.insert(n, min(rb.window, len(stream) - n))
        rb.insert(n, stream[n:n + rb.window])
        out += rb.read(len(stream))
        model.do_read(len(stream))
        check(rb, model)
    assert bytes(out) == stream


def test_held_data_becomes_readable_when_the_hole_fills():
    rb = ReceiveBuffer(100)
    assert rb.insert(10, b"k" * 10) == 0            # [10, 20)
    assert rb.insert(30, b"m" * 5) == 0             # [30, 35)
    assert rb.insert(20, b"l" * 10) == 0            # bridges: [10, 35)
    assert rb.ooo_ranges() == [(10, 35)] and rb.ooo_bytes == 25
    assert rb.window == 100                          # held bytes sit inside the window
    assert rb.insert(0, b"j" * 10 + b"kk") == 35     # overlaps the held range
    assert rb.read(100) == b"j" * 10 + b"k" * 10 + b"l" * 10 + b"m" * 5
    assert rb.ooo_ranges() == [] and rb.ooo_bytes == 0


def test_duplicates_and_beyond_window_are_ignored():
    rb = ReceiveBuffer(10)
    assert rb.insert(0, b"abcdef") == 6
    assert rb.insert(2, b"cd") == 0                  # duplicate
    assert rb.insert(8, b"ijklmnop") == 0            # only [8, 10) fits
    assert rb.ooo_ranges() == [(8, 10)]
    assert rb.insert(10, b"zz") == 0                 # entirely beyond read_offset + capacity
    assert rb.window == 4
    assert rb.read(3) == b"abc"
    assert rb.window == 7
    assert rb.insert(6, b"gh") == 4                  # fills the hole, [8, 10) follows
    assert rb.peek(100) == b"defghij" and rb.read(100) == b"defghij"
    assert rb.insert(0, b"abc") == 0 and rb.readable == 0


def test_sack_order_most_recent_first():
    rb = ReceiveBuffer(1000)
    rb.insert(100, b"a" * 10)
    rb.insert(300, b"b" * 10)
    rb.insert(500, b"c" * 10)
    assert rb.sack_ranges(4) == [(500, 510), (300, 310), (100, 110)]
    assert rb.sack_ranges(2) == [(500, 510), (300, 310)]
    rb.insert(105, b"a" * 10)                        # extends the oldest block: now first
    assert rb.sack_ranges(3) == [(100, 115), (500, 510), (300, 310)]
    rb.insert(310, b"b" * 190)                       # merges the middle and last blocks
    assert rb.sack_ranges(3) == [(300, 510), (100, 115)]
    assert rb.sack_ranges(0) == []


def test_shrinking_capacity_drops_held_bytes_beyond_the_limit():
    rb = ReceiveBuffer(100)
    rb.insert(0, b"x" * 20)
    rb.insert(30, b"y" * 30)                         # [30, 60)
    rb.insert(70, b"z" * 10)                         # [70, 80)
    rb.capacity = 40
    assert rb.ooo_ranges() == [(30, 40)]
    assert rb.readable + rb.ooo_bytes <= 40
    rb.capacity = 10                                 # below the readable bytes: kept, window 0
    assert rb.readable == 20 and rb.ooo_bytes == 0 and rb.window == 0


def test_large_transfer_with_periodic_holes_is_not_quadratic():
    seg, total = 1460, 8 << 20
    stream = bytes(range(256)) * (total // 256)
    rb = ReceiveBuffer(1 << 20)
    out = []
    pos = 0
    while pos < total:
        burst = [(o, stream[o:o + seg]) for o in range(pos, min(pos + 64 * seg, total), seg)]
        for o, d in burst[1:]:
            rb.insert(o, d)                          # the first segment of each burst is late
        rb.insert(*burst[0])
        out.append(rb.read(1 << 20))
        pos = burst[-1][0] + len(burst[-1][1])
    assert b"".join(out) == stream


# --- SendBuffer ----------------------------------------------------------------------------------

send_op = st.one_of(
    st.tuples(st.just("append"), st.binary(max_size=300)),
    st.tuples(st.just("ack"), st.integers(0, 400)),
    st.tuples(st.just("peek"), st.tuples(st.integers(0, 500), st.integers(0, 400))),
    st.tuples(st.just("cap"), st.integers(0, 1000)),
)


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(0, 1000), ops=st.lists(send_op, max_size=60))
def test_sendbuf_matches_a_model(capacity, ops):
    sb = SendBuffer(capacity)
    written = bytearray()                            # everything ever taken, by offset
    for kind, arg in ops:
        if kind == "append":
            free = sb.free
            taken = sb.append(arg)
            assert taken == min(len(arg), free)
            written += arg[:taken]
        elif kind == "ack":
            target = sb.start + arg
            if target > sb.end:
                with pytest.raises(ValueError):
                    sb.ack_to(target)
            else:
                start = sb.start
                assert sb.ack_to(target) == target - start
                assert sb.ack_to(target - 1) == 0    # an old ACK frees nothing
        elif kind == "peek":
            rel, n = arg
            off = sb.start + rel
            assert sb.peek(off, n) == bytes(written[off:off + n])
        else:
            sb.capacity = arg
        assert sb.end == len(written)
        assert len(sb) == sb.end - sb.start
        assert sb.free == max(0, sb.capacity - len(sb))
        assert sb.peek(sb.start, len(sb)) == bytes(written[sb.start:])
    if sb.start > 0:
        with pytest.raises(ValueError):
            sb.peek(sb.start - 1, 1)


def test_sendbuf_short_write_and_offsets_keep_counting():
    sb = SendBuffer(10)
    assert sb.append(b"0123456789abc") == 10
    assert sb.free == 0 and sb.append(b"x") == 0
    assert sb.ack_to(4) == 4
    assert (sb.start, sb.end, len(sb), sb.free) == (4, 10, 6, 4)
    assert sb.append(b"abcdef") == 4
    assert sb.peek(8, 100) == b"89abcd"
    assert sb.peek(14, 5) == b"" and sb.peek(20, 5) == b""
    assert sb.ack_to(14) == 10 and len(sb) == 0


def test_sendbuf_megabytes_with_64k_peeks():
    sb = SendBuffer(4 << 20)
    chunk = bytes(range(256)) * 256                  # 64 KiB
    sent = 0
    for _ in range(256):                             # 16 MiB through a 4 MiB buffer
        while sb.free >= len(chunk):
            sb.append(chunk)
        assert sb.peek(sent, len(chunk)) == chunk
        assert sb.peek(sb.end - 100, 65536) == chunk[-100:]
        sent += len(chunk)
        sb.ack_to(sent)
    assert sb.start == 16 << 20
