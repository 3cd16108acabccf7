"""The receive buffer: in-order bytes waiting for the application plus out-of-order reassembly.

Positions are **stream offsets** (Python ints from 0, never wrapping); the connection maps
sequence numbers to offsets (offset 0 is IRS + 1). Three marks, in order:

    read_offset  <=  next_offset  <=  read_offset + capacity
    (RCV.USER)       (RCV.NXT)        (RCV.NXT + RCV.WND when nothing is held out of order)

``[read_offset, next_offset)`` is readable; out-of-order ranges lie in
``(next_offset, read_offset + capacity)`` and are kept so a retransmission of the hole delivers
them at once (RFC 9293 §3.10.7.4, first step: "Segments with higher beginning sequence numbers
SHOULD be held for later processing (SHLD-31)"; RFC 1122 §4.2.2.20). Bytes beyond
``read_offset + capacity`` are discarded, so the buffer never holds more than ``capacity`` bytes
(except readable bytes left over after ``capacity`` was lowered) and ``window`` never promises
more than it can keep.

Keeping the advertised right edge from moving left when ``capacity`` shrinks ("A TCP receiver
SHOULD NOT shrink the window", RFC 9293 §3.8.6, SHLD-14) is the connection's job; ``window``
here is simply the free space.
"""

from __future__ import annotations

from bisect import bisect_right


class ReceiveBuffer:
    """Reassembly buffer in stream offsets. No per-byte Python loops: bytes move by slices."""

    __slots__ = ("_capacity", "_ready", "_read", "next_offset", "_starts", "_bufs", "_stamps", "_clock", "_ooo",
                 "_cut", "_edge_max")

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self._capacity = capacity
        self._ready = bytearray()          # in-order bytes [read_offset, next_offset)
        self._read = 0                     # read_offset
        # Offset of the next byte expected in order: RCV.NXT as an offset, read_offset +
        # len(_ready) (a plain attribute, not a property: the connection asks for RCV.NXT
        # many times a segment). Only bytes appended in order move it (read() moves bytes
        # from _ready to _read, which leaves the sum alone).
        self.next_offset = 0
        # Out-of-order ranges, sorted, disjoint and non-adjacent (adjacent ones are coalesced):
        # range k covers [_starts[k], _starts[k] + len(_bufs[k])). _stamps[k] says when it last
        # received bytes, for the SACK block order of RFC 2018 §4.
        self._starts: list[int] = []
        self._bufs: list[bytearray] = []
        self._stamps: list[int] = []
        self._clock = 0
        self._ooo = 0                      # total bytes held out of order
        # The newest segment, when it arrived out of order and was cut short by a lowered
        # capacity (reneging): its edges still lead the next SACK option (RFC 2018 §8).
        self._cut: tuple[int, int] | None = None
        self._edge_max = capacity          # the farthest read_offset + capacity has reached

    # --- network side --------------------------------------------------------------------------

    def insert(self, offset: int, data: bytes) -> int:
        """Store a segment's payload starting at stream offset ``offset``.

        Returns how far ``next_offset`` advanced (0 for duplicates and out-of-order data; more
        than ``len(data)`` when the segment fills a hole and held bytes become contiguous).
        Bytes before ``next_offset`` are duplicates and ignored; bytes at or beyond
        ``read_offset + capacity`` are discarded (RFC 9293 §3.10.7.4, first step: "trimming off
        any portions that lie outside the window").
        """
        nxt = self.next_offset
        s = offset if offset > nxt else nxt          # max(offset, nxt)
        end = offset + len(data)
        limit = self._read + self._capacity
        e = end if end < limit else limit            # min(end, limit)
        if limit > self._edge_max:
            self._edge_max = limit
        # cut short below an edge the buffer once allowed: capacity was lowered (reneging)
        self._cut = (s, end) if s > nxt and e < min(end, self._edge_max) else None
        if e <= s:
            return 0
        if offset == nxt and e == end and not self._starts:
            # the usual segment: in order, whole, nothing held out of order. What
            # _append_in_order does then (the slice is all of data, no held range to absorb).
            self._ready += data
            self.next_offset = e
            return e - s
        with memoryview(data) as mv:
            if s == nxt:
                return self._append_in_order(mv, offset, s, e)
            self._insert_ooo(mv[s - offset:e - offset], s, e)
            return 0

    def _append_in_order(self, mv: memoryview, offset: int, s: int, e: int) -> int:
        ready = self._ready
        ready += mv[s - offset:e - offset]
        end = e
        # Absorb held ranges that the new bytes reach or overlap.
        starts, bufs = self._starts, self._bufs
        k = 0
        while k < len(starts) and starts[k] <= end:
            rs, rb = starts[k], bufs[k]
            re = rs + len(rb)
            if re > end:
                ready += rb[end - rs:]
                end = re
            self._ooo -= len(rb)
            k += 1
        if k:
            del starts[:k], bufs[:k], self._stamps[:k]
        self.next_offset = end
        return end - s

    def _insert_ooo(self, d: memoryview, s: int, e: int) -> None:
        starts, bufs, stamps = self._starts, self._bufs, self._stamps
        i = bisect_right(starts, s) - 1
        if i >= 0 and starts[i] + len(bufs[i]) >= s:
            base = i                       # overlaps or touches the range on the left
        else:
            base = i + 1
            starts.insert(base, s)
            bufs.insert(base, bytearray())
            stamps.insert(base, 0)
        bs, buf = starts[base], bufs[base]
        before = len(buf)
        end = bs + before
        j = base + 1
        # Walk right, filling gaps from the new bytes and swallowing ranges they reach.
        while j < len(starts) and starts[j] <= max(end, e):
            ns, nb = starts[j], bufs[j]
            if ns > end:                   # then ns <= e: the gap [end, ns) comes from d
                buf += d[end - s:ns - s]
                end = ns
            ne = ns + len(nb)
            if ne > end:
                buf += nb[end - ns:]
                end = ne
            before += len(nb)              # its bytes were already counted in _ooo
            del starts[j], bufs[j], stamps[j]
        if e > end:
            buf += d[end - s:]
        self._ooo += len(buf) - before
        self._clock += 1
        stamps[base] = self._clock         # RFC 2018 §4: this block is reported first

    # --- application side ----------------------------------------------------------------------

    def read(self, max_bytes: int) -> bytes:
        """Remove and return up to ``max_bytes`` in-order bytes (RFC 9293 §3.10.3 RECEIVE)."""
        ready = self._ready
        if not ready:
            return b""                     # (what peek() returns then; asked often, in vain)
        if max_bytes >= len(ready):
            # all of it (a request's read, usually): peek()'s copy without the memoryview, and
            # the buffer emptied as ``del ready[:len(data)]`` would
            data = bytes(ready)
            ready.clear()
            self._read += len(data)
            return data
        data = self.peek(max_bytes)
        if data:
            del self._ready[:len(data)]
            self._read += len(data)
        return data

    def peek(self, max_bytes: int) -> bytes:
        """Return up to ``max_bytes`` in-order bytes without consuming them."""
        n = len(self._ready)
        if max_bytes < n:
            n = max_bytes                  # min(max_bytes, len(self._ready))
        if n <= 0:
            return b""
        with memoryview(self._ready) as mv:
            piece = mv[:n]
            try:
                return bytes(piece)
            finally:
                piece.release()

    # --- state ---------------------------------------------------------------------------------

    @property
    def read_offset(self) -> int:
        """Offset of the next byte ``read`` returns."""
        return self._read

    @property
    def readable(self) -> int:
        return len(self._ready)

    @property
    def window(self) -> int:
        """Free space the receiver may advertise: ``capacity - readable`` (never negative).

        Out-of-order bytes lie inside this window (between RCV.NXT and RCV.NXT + RCV.WND), so
        they do not reduce it."""
        free = self._capacity - len(self._ready)
        return free if free > 0 else 0     # max(0, free)

    @property
    def ooo_bytes(self) -> int:
        """Bytes held out of order (beyond ``next_offset``)."""
        return self._ooo

    def ooo_ranges(self) -> list[tuple[int, int]]:
        """Held out-of-order ranges as sorted, disjoint half-open ``(start, end)`` offsets."""
        return [(s, s + len(b)) for s, b in zip(self._starts, self._bufs)]

    def held_overlap(self, start: int, end: int) -> tuple[int, int] | None:
        """The first sub-range of ``[start, end)`` already held out of order, or None: what a
        D-SACK block reports for a duplicate of out-of-order data (RFC 2883 §4, §4.2)."""
        starts, bufs = self._starts, self._bufs
        i = max(bisect_right(starts, start) - 1, 0)
        while i < len(starts) and starts[i] < end:
            s, e = max(starts[i], start), min(starts[i] + len(bufs[i]), end)
            if s < e:
                return (s, e)
            i += 1
        return None

    def range_holding(self, start: int, end: int) -> tuple[int, int] | None:
        """The held out-of-order range that contains ``[start, end)``, or None."""
        i = bisect_right(self._starts, start) - 1
        if i >= 0 and self._starts[i] + len(self._bufs[i]) >= end:
            return (self._starts[i], self._starts[i] + len(self._bufs[i]))
        return None

    def sack_ranges(self, max_blocks: int) -> list[tuple[int, int]]:
        """Up to ``max_blocks`` out-of-order ranges for a SACK option (RFC 2018 §4).

        The range holding the most recently inserted out-of-order bytes comes first ("MUST
        specify the contiguous block of data containing the segment which triggered this ACK"),
        then the others from most to least recently extended ("SHOULD be filled out by repeating
        the most recently reported SACK blocks"). When the latest segment advanced RCV.NXT the
        first block is simply the most recent remaining one, which §4 allows.
        """
        if max_blocks <= 0:
            return []
        order = sorted(range(len(self._starts)), key=self._stamps.__getitem__, reverse=True)
        blocks = [(self._starts[k], self._starts[k] + len(self._bufs[k])) for k in order]
        cut = self._cut
        if cut is not None and cut[0] > self.next_offset:
            # RFC 2018 §8: "Even if the newest segment is going to be discarded and the receiver
            # has already discarded adjacent or prior data, the first SACK block MUST report, at
            # a minimum, the left and right edges of the newest segment" (with the part of it
            # still held, if any); the other blocks report only data still held.
            first = cut
            for b in blocks:
                if b[0] <= cut[0] <= b[1]:
                    first = (b[0], cut[1])
            blocks = [first] + [b for b in blocks if b[1] < first[0] or b[0] > first[1]]
        return blocks[:max_blocks]

    @property
    def capacity(self) -> int:
        return self._capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        """Change the buffer size (SO_RCVBUF). Lowering it drops held out-of-order bytes beyond
        the new limit (they were never acknowledged cumulatively; RFC 2018 §8 lets a receiver
        discard even SACKed data); readable bytes are always kept."""
        if value < 0:
            raise ValueError("capacity must be >= 0")
        self._edge_max = max(self._edge_max, self._read + self._capacity)
        self._capacity = value
        limit = self._read + value
        starts, bufs = self._starts, self._bufs
        while starts and starts[-1] + len(bufs[-1]) > limit:
            s, b = starts[-1], bufs[-1]
            if s >= limit:
                self._ooo -= len(b)
                starts.pop(), bufs.pop(), self._stamps.pop()
            else:
                self._ooo -= len(b) - (limit - s)
                del b[limit - s:]

    def __repr__(self) -> str:
        return (f"ReceiveBuffer(read={self._read}, next={self.next_offset}, "
                f"ooo={self.ooo_ranges()}, capacity={self._capacity})")
