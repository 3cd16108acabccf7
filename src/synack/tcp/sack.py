"""The sender's SACK scoreboard (RFC 2018 §5, RFC 6675 §3-4), in send-stream offsets.

Every segment sent since SND.UNA is one ``Rec`` (RFC 2018 §5: "a retransmission queue that
contains the segments that have been transmitted but not yet acknowledged, in sequence-number
order", each with a "SACKed" bit). The records cover ``[una, high)`` without gaps, where ``high``
is HighData + 1 (the connection's ``_max``). A SACK block that starts or ends inside a record
splits it, so "SACKed" is always a property of a whole record and the byte counts below are exact.

Per record the scoreboard also keeps what RACK needs (RFC 8985 §5.2): the time of the latest
(re)transmission and whether it was retransmitted; and ``lost``, set by a loss detector (RACK, or
RFC 6675 IsLost) and cleared when the record is retransmitted. With those,

    pipe = (high - una) - SACKed octets - octets marked lost and not yet retransmitted
           + octets resent by NextSeg() rule (3) (``dup``)

which is RFC 6675 SetPipe() (octets neither SACKed nor lost, plus octets retransmitted), the
in-flight estimate RFC 6937 and RFC 8985 use too. SetPipe() counts an octet twice when it is not
lost by IsLost() and at or below HighRxt: a rule (3) retransmission, "two copies of the same data
considered to be in the network (and also in the pipe estimate, in the case of (3))" (RFC 6675
§4); ``dup`` marks those records until they are SACKed, acknowledged, or found lost.

Two indexes keep ACK processing cheap when thousands of segments are in flight: the records
in flight (neither SACKed nor lost) in transmission-time order, as RFC 8985 §6.2 suggests ("a
separate doubly linked list ordered by Segment.xmit_ts"), so RACK looks only at segments sent
before the one just delivered; and a heap of lost records by sequence number, so the next
retransmission is found without walking the holes.

Nothing here knows sequence numbers, clocks or the connection: plain offsets and ``now`` floats.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from itertools import count
from typing import Iterator


class Rec:
    """One transmitted segment (RFC 8985 §5.2 per-segment variables)."""

    __slots__ = ("start", "end", "xmit_ts", "retrans", "sacked", "lost", "dup")

    def __init__(self, start: int, end: int, xmit_ts: float, retrans: bool = False) -> None:
        self.start = start
        self.end = end
        self.xmit_ts = xmit_ts          # Segment.xmit_ts: the latest (re)transmission
        self.retrans = retrans          # Segment.retransmitted
        self.sacked = False
        self.lost = False               # Segment.lost
        self.dup = False                # resent though not lost: two copies in pipe (RFC 6675 §4 (3))

    @property
    def length(self) -> int:
        return self.end - self.start

    def __repr__(self) -> str:
        flags = "".join(c for c, on in (("S", self.sacked), ("L", self.lost), ("R", self.retrans),
                                        ("D", self.dup)) if on)
        return f"Rec({self.start}:{self.end} t={self.xmit_ts:g} {flags or '-'})"


class Scoreboard:
    """SACK scoreboard over ``[una, high)``; see the module docstring."""

    __slots__ = ("recs", "_starts", "ranges", "una", "high", "sacked_bytes", "lost_bytes", "sacked_segs",
                 "dup_bytes", "_tq", "_tq_dirty", "_lostq", "_tick")   # (one per connection: no __dict__)

    def __init__(self) -> None:
        self.recs: list[Rec] = []
        self._starts: list[int] = []           # recs[i].start, for bisect
        self.ranges: list[list[int]] = []      # SACKed octets, coalesced [start, end) pairs
        self.una = 0
        self.high = 0
        self.sacked_bytes = 0
        self.lost_bytes = 0                    # lost and not SACKed (retransmission clears lost)
        self.sacked_segs = 0                   # RACK.segs_sacked
        self.dup_bytes = 0                     # records marked ``dup``: a second copy in pipe
        self._tq: dict[Rec, None] = {}         # in flight, by (xmit_ts, end): insertion order
        self._tq_dirty = False                 # a split or clear_sacks broke the order: re-sort
        self._lostq: list[tuple[int, int, Rec]] = []   # heap of (start, tiebreak, lost record)
        self._tick = count()

    # --- queries -------------------------------------------------------------------------------

    def _pipe(self) -> int:
        """RFC 6675 §4 SetPipe(): octets believed to be in the network. (A method, with the
        ``pipe`` property as its alias: the connection asks on every output pass, and a
        method call costs a fraction of a property read.)"""
        return (self.high - self.una) - self.sacked_bytes - self.lost_bytes + self.dup_bytes

    pipe = property(_pipe)

    @property
    def highest_sacked(self) -> int | None:
        """One past the highest SACKed octet (RACK.fack's sequence bound), or None."""
        return self.ranges[-1][1] if self.ranges else None

    @property
    def idle(self) -> bool:
        """No record, and none to re-sort: ``head()`` is None and ``in_flight_by_time()`` is
        empty and changes nothing."""
        return not self.recs and not self._tq and not self._tq_dirty

    def head(self) -> Rec | None:
        return self.recs[0] if self.recs else None

    def last(self) -> Rec | None:
        return self.recs[-1] if self.recs else None

    def index(self, off: int) -> int:
        """Index of the record holding offset ``off`` (``off`` in ``[una, high)``)."""
        return bisect_right(self._starts, off) - 1

    def holes(self, limit: int | None = None) -> Iterator[Rec]:
        """Records not SACKed, in sequence order, skipping SACKed runs in one step each (the
        cost is the number of holes, not of records). ``limit``: stop at this offset."""
        recs, starts = self.recs, self._starts
        pos = self.una
        end = self.high if limit is None else min(limit, self.high)
        for rs, re in self.ranges + [[self.high, self.high]]:
            i = bisect_right(starts, pos) - 1
            stop = min(rs, end)
            while 0 <= i < len(recs) and recs[i].start < stop:
                if not recs[i].sacked:
                    yield recs[i]
                i += 1
            pos = re
            if pos >= end:
                return

    def _range_end_at(self, off: int) -> int:
        """The end of the SACKed range holding ``off`` (``off`` must be SACKed)."""
        i = bisect_right(self.ranges, [off, self.high + 1]) - 1
        return self.ranges[i][1]

    def first_hole(self, lo: int, hi: int) -> Rec | None:
        """The lowest un-SACKed record ending above ``lo`` and starting below ``hi`` (it may
        begin below ``lo``: the caller splits it). SACKed runs are skipped in one step each."""
        lo, hi = max(lo, self.una), min(hi, self.high)
        while lo < hi:
            r = self.recs[self.index(lo)]
            if not r.sacked:
                return r
            lo = self._range_end_at(r.start)
        return None

    def last_hole(self) -> Rec | None:
        """The highest un-SACKed record (RFC 6675 §4 rule (4): "the highest outstanding
        unSACKed sequence number")."""
        rs = self.ranges
        i = len(rs) - 1
        off = self.high
        while off > self.una:
            r = self.recs[self.index(off - 1)]
            if not r.sacked:
                return r
            while i >= 0 and rs[i][0] > r.start:
                i -= 1
            off = rs[i][0]
        return None

    def first_lost(self) -> Rec | None:
        """The lowest record marked lost (RFC 6675 NextSeg() rule 1 / RACK's retransmit queue)."""
        if self.lost_bytes <= 0:
            return None
        q = self._lostq
        while q:
            start, _, r = q[0]
            if r.lost and not r.sacked and r.start == start:
                return r
            heapq.heappop(q)                   # stale: retransmitted, SACKed, acked or moved
        return None

    def in_flight_by_time(self) -> Iterator[Rec]:
        """Records neither SACKed nor lost, oldest (re)transmission first (ties: sequence)."""
        if self._tq_dirty:
            live = [r for r in self.recs if not r.sacked and not r.lost]
            live.sort(key=lambda r: (r.xmit_ts, r.end))
            self._tq = dict.fromkeys(live)
            self._tq_dirty = False
        return iter(self._tq)

    def ranges_str(self, seq_of) -> str:
        """The SACKed ranges as ``"a:b c:d"`` in sequence numbers (``seq_of(offset)``)."""
        return " ".join(f"{seq_of(s)}:{seq_of(e)}" for s, e in self.ranges)

    # --- transmission --------------------------------------------------------------------------

    def on_transmit(self, start: int, end: int, now: float) -> None:
        """Octets ``[start, end)`` left now (RFC 8985 §6.1). New data is appended; octets that
        were sent before become retransmitted records (split at the edges)."""
        if end <= start:
            return
        if start >= self.high:
            if start > self.high:              # never expected: keep the records contiguous
                self.high = start
                if not self.recs:
                    self.una = max(self.una, start)
            r = Rec(start, end, now)
            self.recs.append(r)
            self._starts.append(start)
            self._tq[r] = None
            self.high = end
            return
        start = max(start, self.una)
        top = min(end, self.high)
        if start < top:
            self._split(start)
            self._split(top)
            i = self.index(start)
            while i < len(self.recs) and self.recs[i].start < top:
                self.retransmitted(self.recs[i], now)
                i += 1
        if end > self.high:
            self.on_transmit(self.high, end, now)

    def on_transmit_pieces(self, start: int, end: int, step: int, now: float) -> None:
        """``on_transmit`` for a TSO segment ``[start, end)`` the link cuts every ``step``
        octets: one record per piece, as if each had been sent alone."""
        if start != self.high:
            while end - start > step:
                self.on_transmit(start, start + step, now)
                start += step
            self.on_transmit(start, end, now)
            return
        recs, starts, tq = self.recs, self._starts, self._tq
        for s in range(start, end, step):
            r = Rec(s, min(s + step, end), now)
            recs.append(r)
            starts.append(s)
            tq[r] = None
        self.high = end

    def retransmitted(self, rec: Rec, now: float) -> None:
        """RFC 8985 §6.1 RACK_retransmit_data: a new xmit_ts, retransmitted, not lost."""
        if rec.lost and not rec.sacked:
            self.lost_bytes -= rec.length
        rec.lost = False
        rec.retrans = True
        rec.xmit_ts = now
        if not rec.sacked:
            self._tq.pop(rec, None)
            self._tq[rec] = None               # now the most recently sent

    def split_at(self, off: int) -> None:
        """Make ``off`` a record boundary (e.g. to resend a record in smaller segments)."""
        self._split(off)

    def _split(self, off: int) -> None:
        i = self.index(off)
        if i < 0 or off <= self.recs[i].start or off >= self.recs[i].end:
            return
        r = self.recs[i]
        right = Rec(off, r.end, r.xmit_ts, r.retrans)
        right.sacked, right.lost, right.dup = r.sacked, r.lost, r.dup
        if r.sacked:
            self.sacked_segs += 1
        elif r.lost:
            heapq.heappush(self._lostq, (off, next(self._tick), right))
        else:
            self._tq_dirty = True              # the new piece belongs next to r in time order
        r.end = off
        self.recs.insert(i + 1, right)
        self._starts.insert(i + 1, off)

    # --- acknowledgements ----------------------------------------------------------------------

    def ack(self, una: int) -> list[Rec]:
        """Cumulative ACK up to ``una``: drop the records below it. Returns the records newly
        delivered by it (those not SACKed before), for RACK's Step 2 (RFC 8985 §6.2)."""
        if una <= self.una:
            return []
        k = bisect_right(self._starts, una - 1)
        if k and self.recs[k - 1].end > una:
            # the ACK ends inside a record: trim that one in place (it keeps its place in the
            # time order) instead of splitting it
            r = self.recs[k - 1]
            cut = una - r.start
            if r.sacked:
                self.sacked_bytes -= cut
            elif r.lost:
                self.lost_bytes -= cut
                heapq.heappush(self._lostq, (una, next(self._tick), r))
            elif r.dup:
                self.dup_bytes -= cut
            r.start = una
            self._starts[k - 1] = una
            k -= 1
        gone = self.recs[:k]
        fresh = [r for r in gone if not r.sacked]
        tq = self._tq
        for r in gone:
            if r.sacked:
                self.sacked_bytes -= r.length
                self.sacked_segs -= 1
            elif r.lost:
                self.lost_bytes -= r.length
                r.lost = False
            else:
                tq.pop(r, None)
                if r.dup:
                    self.dup_bytes -= r.length
                    r.dup = False
        del self.recs[:k], self._starts[:k]
        self.una = una
        self.high = max(self.high, una)
        while self.ranges and self.ranges[0][1] <= una:
            del self.ranges[0]
        if self.ranges and self.ranges[0][0] < una:
            self.ranges[0][0] = una
        return fresh

    def sack(self, blocks: list[tuple[int, int]]) -> list[Rec]:
        """Record SACK blocks (offsets, already clipped to ``[una, high)``); RFC 6675 Update().
        Returns the records newly SACKed, in sequence order."""
        newly: list[Rec] = []
        for s, e in blocks:
            s, e = max(s, self.una), min(e, self.high)
            if s >= e:
                continue
            for ns, ne in self._new_parts(s, e):
                self._split(ns)
                self._split(ne)
                i = self.index(ns)
                while i < len(self.recs) and self.recs[i].start < ne:
                    r = self.recs[i]
                    if not r.sacked:
                        r.sacked = True
                        self.sacked_bytes += r.length
                        self.sacked_segs += 1
                        if r.lost:
                            self.lost_bytes -= r.length
                            r.lost = False             # delivered: nothing to repair
                        else:
                            self._tq.pop(r, None)
                        if r.dup:
                            self.dup_bytes -= r.length
                            r.dup = False
                        newly.append(r)
                    i += 1
                self._add_range(ns, ne)
        newly.sort(key=lambda r: r.start)
        return newly

    def _new_parts(self, s: int, e: int) -> list[tuple[int, int]]:
        """``[s, e)`` less the octets already SACKed."""
        out = []
        pos = s
        i = max(bisect_right([r[0] for r in self.ranges], s) - 1, 0)
        for rs, re in self.ranges[i:]:
            if rs >= e:
                break
            if re <= pos:
                continue
            if rs > pos:
                out.append((pos, min(rs, e)))
            pos = max(pos, re)
            if pos >= e:
                break
        if pos < e:
            out.append((pos, e))
        return out

    def _add_range(self, s: int, e: int) -> None:
        rs = self.ranges
        i = 0
        while i < len(rs) and rs[i][1] < s:
            i += 1
        j = i
        while j < len(rs) and rs[j][0] <= e:
            s, e = min(s, rs[j][0]), max(e, rs[j][1])
            j += 1
        rs[i:j] = [[s, e]]

    def mark_lost(self, rec: Rec) -> bool:
        """Mark a record lost (RACK Step 5, RFC 6675 IsLost). False if it already was or is SACKed."""
        if rec.lost or rec.sacked:
            return False
        self.clear_dup(rec)                    # lost: SetPipe() counts it once, when resent
        rec.lost = True
        self.lost_bytes += rec.length
        self._tq.pop(rec, None)
        heapq.heappush(self._lostq, (rec.start, next(self._tick), rec))
        return True

    def mark_dup(self, rec: Rec) -> None:
        """``rec`` was resent though not lost (RFC 6675 §4 rule (3)): pipe counts it twice."""
        if not (rec.dup or rec.sacked or rec.lost):
            rec.dup = True
            self.dup_bytes += rec.length

    def clear_dup(self, rec: Rec) -> None:
        """IsLost() now holds for a rule (3) retransmission: SetPipe() counts it once."""
        if rec.dup:
            rec.dup = False
            self.dup_bytes -= rec.length

    def clear_sacks(self) -> None:
        """Forget every SACKed bit: after a retransmission timeout (RFC 2018 §5, SHOULD) or when
        the receiver reneged (§8). The data was never freed: SND.UNA alone frees it."""
        for r in self.recs:
            r.sacked = False
        self.ranges = []
        self.sacked_bytes = 0
        self.sacked_segs = 0
        self._tq_dirty = True

    def clear(self) -> None:
        """Nothing outstanding any more (all of it was acknowledged)."""
        if not (self.recs or self._tq or self._tq_dirty or self._lostq or self.ranges or self.sacked_bytes
                or self.lost_bytes or self.sacked_segs or self.dup_bytes):
            return                             # cleared already (a fresh one: the handshake's ACK)
        self.recs, self._starts, self.ranges = [], [], []
        self.sacked_bytes = self.lost_bytes = self.sacked_segs = self.dup_bytes = 0
        self._tq, self._lostq, self._tq_dirty = {}, [], False

    # --- RFC 6675 IsLost -----------------------------------------------------------------------

    def lost_below(self, dupthresh: int, smss: int) -> int:
        """The offset below which every un-SACKed octet is lost by RFC 6675 IsLost(): "DupThresh
        discontiguous SACKed sequences have arrived above 'SeqNum' or more than (DupThresh - 1) *
        SMSS bytes with sequence numbers greater than 'SeqNum' have been SACKed". IsLost only
        grows towards lower sequence numbers, so one boundary says it for all octets."""
        count = nbytes = 0
        for s, e in reversed(self.ranges):
            count += 1
            nbytes += e - s
            if count >= dupthresh or nbytes > (dupthresh - 1) * smss:
                return s
        return self.una

    def check(self) -> None:
        """Invariants (for tests): contiguous records over [una, high), exact counters."""
        pos = self.una
        sb = ls = ss = ds = 0
        for r, st in zip(self.recs, self._starts):
            assert r.start == st == pos and r.end > r.start, (r, pos)
            assert not (r.dup and (r.sacked or r.lost)), r
            pos = r.end
            ds += r.length if r.dup else 0
            sb += r.length if r.sacked else 0
            ss += 1 if r.sacked else 0
            ls += r.length if r.lost and not r.sacked else 0
        assert not self.recs or pos == self.high, (pos, self.high)
        assert (sb, ls, ss, ds) == (self.sacked_bytes, self.lost_bytes, self.sacked_segs, self.dup_bytes), \
            ((sb, ls, ss, ds), (self.sacked_bytes, self.lost_bytes, self.sacked_segs, self.dup_bytes))
        assert sum(e - s for s, e in self.ranges) == sb, (self.ranges, sb)
        live = [r for r in self.in_flight_by_time()]
        assert set(live) == {r for r in self.recs if not r.sacked and not r.lost}
        keys = [r.xmit_ts for r in live]
        assert keys == sorted(keys), keys
        lost = [r for r in self.recs if r.lost and not r.sacked]
        assert self.first_lost() is (lost[0] if lost else None)
