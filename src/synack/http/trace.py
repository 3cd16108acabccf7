"""Per-connection trace records in memory, for the built-in site's pages about a connection.

``TraceStore`` is a log sink (STYLE.md §8): ``store.attach(stack)`` puts it in front of the
stack's own sink (which still gets every record). It keeps the records of each connection —
the first ``head`` and the last ``tail`` of them — in a ``ConnTrace``, numbered from 1 as
connections appear (a ``StateChanged`` out of CLOSED starts a new one, so a reused 4-tuple gets
a new number). Payloads are kept up to ``payload_budget`` bytes per connection, then only
their lengths: the capture then stores those packets cut after the headers, with their real
length (as a snaplen would). Old finished connections are forgotten beyond ``max_conns``.

From a ``ConnTrace``: ``dicts()`` (the JSON-lines encoding of synack.log.jsonl), ``capture()``
(a classic pcap of its SegmentIn/SegmentOut records, built with ``PcapWriter``) and
``model()`` (a ``synack.pictures`` connection for the sequence diagram).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
from collections import OrderedDict, deque
from typing import Any, Callable

from synack.log.jsonl import record_to_dict
from synack.tcp.events import ConnId, SegmentIn, SegmentOut, StateChanged
from synack.tcp.states import State
from synack.wire.packet import build_tcp_packet


class ConnTrace:
    """The kept records of one connection (see the module docstring)."""

    def __init__(self, serial: int, conn: ConnId, head: int, tail: int, payload_budget: int) -> None:
        self.serial = serial
        self.conn = conn
        self.head: list[tuple[Any, int]] = []         # (record, payload length on the wire)
        self.tail: deque[tuple[Any, int]] = deque(maxlen=tail)
        self.head_max = head
        self.skipped = 0                              # records between head and tail not kept
        self.payload_left = payload_budget
        self.ended = False
        self.first_t: float | None = None
        self.last_t: float | None = None

    def add(self, record: Any) -> None:
        plen = 0
        if isinstance(record, (SegmentIn, SegmentOut)):
            plen = len(record.seg.payload)
            if plen:
                if plen <= self.payload_left:
                    self.payload_left -= plen
                else:
                    record = dataclasses.replace(record, seg=dataclasses.replace(record.seg, payload=b""))
        t = getattr(record, "t", None)
        if isinstance(t, (int, float)):
            if self.first_t is None:
                self.first_t = t
            self.last_t = t
        if isinstance(record, StateChanged) and record.new in (State.CLOSED, State.TIME_WAIT):
            self.ended = True
        item = (record, plen)
        if len(self.head) < self.head_max:
            self.head.append(item)
        else:
            if len(self.tail) == self.tail.maxlen:
                self.skipped += 1
            self.tail.append(item)

    def items(self) -> list[tuple[Any, int]]:
        return self.head + list(self.tail)

    def records(self) -> list[Any]:
        return [r for r, _ in self.items()]

    def dicts(self) -> list[dict[str, Any]]:
        """The records as synack.log.jsonl writes them (payload lengths as on the wire)."""
        out = []
        for rec, plen in self.items():
            d = record_to_dict(rec)
            if plen and isinstance(d.get("seg"), dict):
                d["seg"]["len"] = plen
            out.append(d)
        return out

    def segments(self) -> int:
        return sum(1 for r, _ in self.items() if isinstance(r, (SegmentIn, SegmentOut)))

    def capture(self, epoch_offset: float = 0.0) -> bytes:
        """A classic pcap (LINKTYPE_RAW) of this connection's segments, as synack sent and
        received them; ``epoch_offset`` is added to the records' times (monotonic -> wall)."""
        from synack.link.pcap import PcapWriter
        buf = io.BytesIO()
        w = PcapWriter(buf)
        c = self.conn
        for rec, plen in self.items():
            if isinstance(rec, SegmentOut):
                src, dst = c.local_addr, c.remote_addr
            elif isinstance(rec, SegmentIn):
                src, dst = c.remote_addr, c.local_addr
            else:
                continue
            seg = rec.seg
            t = max(rec.t + epoch_offset, 0.0)
            if plen and len(seg.payload) != plen:          # payload not kept: headers only
                pkt = build_tcp_packet(src, dst, dataclasses.replace(seg, payload=bytes(plen)))
                w.write(pkt[:len(pkt) - plen], t, orig_len=len(pkt))
            else:
                w.write(build_tcp_packet(src, dst, seg), t)
        w.close()
        return buf.getvalue()

    def model(self):
        """This connection as a ``synack.pictures.model.Connection`` (None if no segment yet)."""
        from synack.pictures.model import from_records
        cap = from_records(self.dicts(), name=f"connection {self.serial}")
        return cap.connections[0] if cap.connections else None


class TraceStore:
    """A log sink keeping recent connections' records (see the module docstring)."""

    def __init__(self, downstream: Callable[[object], None] | None = None, *, max_conns: int = 256,
                 head: int = 600, tail: int = 400, payload_budget: int = 1 << 20) -> None:
        self.downstream = downstream
        self.max_conns = max_conns
        self.head, self.tail, self.payload_budget = head, tail, payload_budget
        self.by_serial: OrderedDict[int, ConnTrace] = OrderedDict()
        self.current: dict[ConnId, ConnTrace] = {}
        self._serials = itertools.count(1)

    def attach(self, stack: Any) -> "TraceStore":
        """Become ``stack.log``, passing every record on to the sink it had. Connections made
        before this keep the sink they had (attach before listening)."""
        if stack.log is not self:
            self.downstream = stack.log
            stack.log = self
        return self

    def __call__(self, record: Any) -> None:
        if self.downstream is not None:
            self.downstream(record)
        cid = getattr(record, "conn", None)
        if not isinstance(cid, ConnId):
            return
        tr = self.current.get(cid)
        if tr is None or (isinstance(record, StateChanged) and record.old is State.CLOSED):
            tr = ConnTrace(next(self._serials), cid, self.head, self.tail, self.payload_budget)
            self.current[cid] = tr
            self.by_serial[tr.serial] = tr
            self._evict()
        tr.add(record)

    def _evict(self) -> None:
        while len(self.by_serial) > self.max_conns:
            victim = next((t for t in self.by_serial.values() if t.ended), None)
            if victim is None:
                victim = next(iter(self.by_serial.values()))
            del self.by_serial[victim.serial]
            if self.current.get(victim.conn) is victim:
                del self.current[victim.conn]

    def get(self, serial: int) -> ConnTrace | None:
        return self.by_serial.get(serial)

    def of(self, conn: ConnId) -> ConnTrace | None:
        """The trace of the current connection on this 4-tuple (seen from synack's side)."""
        return self.current.get(conn)


__all__ = ["TraceStore", "ConnTrace"]
