"""A host: IP addresses, TCP connections demultiplexed by 4-tuple, listeners with SYN and accept
queues and SYN cookies, RSTs for segments that match nothing, ICMP echo and ICMP errors.

Sans-IO like the connection: ``receive_packet(bytes, now)`` in, ``packets_to_send(now)`` out,
``next_timer()`` / ``handle_timer(now)`` for time. Adapters call ``touch(conn)`` after a user call
on a connection (send, receive, close...) so the stack collects what that call made sendable.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import heapq
import itertools
from collections import Counter, deque
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface

from synack.stack.cookies import SynCookies
from synack.stack.ports import PortAllocator
from synack.stack.timewait import TimeWait
from synack.tcp.config import TcpConfig
from synack.tcp.connection import TcpConnection, rst_for
from synack.tcp.events import ConnId, LogSink, SegmentOut
from synack.tcp.isn import IsnGenerator
from synack.tcp.output import syn_option_layout
from synack.tcp.states import State
from synack.wire import icmp as icmpw
from synack.wire.errors import WireError
from synack.wire.ip4 import IPv4Packet, emit_ipv4, ipv4_fields, parse_ipv4
from synack.wire.ip6 import IPv6Packet, emit_ipv6
from synack.wire.packet import ChecksumValid, build_tcp_packet, ipv4_tcp_packet, parse_packet
from synack.wire.seq import seq_gt
from synack.wire.tcp import Flags, Mss, SackPermitted, TcpSegment, Timestamps, WindowScale, parse_tcp_summed

IPAddress = IPv4Address | IPv6Address
Key = tuple[IPAddress, int, IPAddress, int]        # local addr, local port, remote addr, remote port


@dataclass(slots=True)
class StackConfig:
    syncookies: str = "on"          # "off" | "on" (when the SYN queue is full) | "always"
    syn_backlog: int = 256          # half-open connections per listener (SYN queue)
    ephemeral: tuple[int, int] = (32768, 60999)
    ttl: int = 64
    rst_for_closed_ports: bool = True   # False: "blackhole", stay silent
    icmp_echo: bool = True
    icmp_may_abort_syn_sent: bool = True   # hard ICMP errors abort SYN-SENT (RFC 1122 §4.2.3.9)


@dataclass(frozen=True, slots=True)
class StackDrop:
    """A packet the stack (not a connection) discarded, and why."""
    t: float
    reason: str
    length: int


@dataclass(frozen=True, slots=True)
class Acceptable:
    """A listener has a connection waiting in its accept queue."""
    t: float
    port: int


_BROADCAST = IPv4Address("255.255.255.255")
_SYN, _RST, _ACK = 0x02, 0x04, 0x10      # Flags bits as plain ints (``&`` on Flags is a Python call)
# States as module globals: a member read off the Enum class goes through EnumType.__getattr__'s
# attribute hook, some ten times the cost of a global, and the stack tests states per packet.
_CLOSED, _SYN_RECEIVED, _TIME_WAIT = State.CLOSED, State.SYN_RECEIVED, State.TIME_WAIT


@functools.lru_cache(maxsize=4096)
def _unicast(a: IPAddress) -> bool:
    """(Cached: ``is_multicast`` tests network membership, too slow for every packet.)"""
    return not (a.is_multicast or a.is_unspecified or (a.version == 4 and a == _BROADCAST))


def _unicast4(a: bytes) -> bool:
    """``_unicast`` for an IPv4 address given as its 4 octets (no address object to hash):
    not multicast (224.0.0.0/4, RFC 1112 §4), not 0.0.0.0, not the limited broadcast."""
    return a[0] & 0xF0 != 0xE0 and a != b"\0\0\0\0" and a != b"\xff\xff\xff\xff"


class Listener:
    """A passive open: a bounded SYN queue of half-open connections and a bounded accept queue
    of established ones (RFC 4987 §2.2, §3)."""

    def __init__(self, addr: IPAddress | None, port: int, backlog: int, syn_backlog: int,
                 config: TcpConfig | None) -> None:
        self.addr, self.port = addr, port
        self.backlog = backlog
        self.syn_backlog = syn_backlog
        self.config = config
        self.syn_queue: dict[Key, TcpConnection] = {}
        self.accept_queue: deque[TcpConnection] = deque()
        self.closed = False

    @property
    def state(self) -> State:
        return State.CLOSED if self.closed else State.LISTEN

    def __repr__(self) -> str:
        return f"<Listener {self.addr or '*'}:{self.port} syn={len(self.syn_queue)} accept={len(self.accept_queue)}>"


class Stack:
    # packets_to_send(now) starts with _run_due(now), all that handle_timer(now) does: step()
    # need not ask next_timer() and call handle_timer() first (drive.py)
    sends_run_timers = True

    def __init__(self, addresses: list[str] | tuple[str, ...], *, secret: bytes,
                 config: TcpConfig | None = None, stack_config: StackConfig | None = None,
                 log: LogSink = None) -> None:
        self.interfaces = [ip_interface(a) for a in addresses]
        self.addresses = [i.ip for i in self.interfaces]
        self._packed4 = frozenset(a.packed for a in self.addresses if a.version == 4)
        self._broadcasts = frozenset(i.network.broadcast_address for i in self.interfaces
                                     if i.version == 4 and i.network.prefixlen < 31)
        self._broadcasts4 = frozenset(a.packed for a in self._broadcasts)
        self.secret = secret
        self.config = config if config is not None else TcpConfig()
        self.sconfig = stack_config if stack_config is not None else StackConfig()
        self.log = log
        self.isn = IsnGenerator(secret)
        self.ports = PortAllocator(secret, *self.sconfig.ephemeral)
        self.cookies = SynCookies(secret)
        self.ts_offset = int.from_bytes(hashlib.blake2b(b"ts" + secret, digest_size=4).digest(), "big")
        # The MTU of the link this host sends on, set by whoever attaches one (the simulator,
        # AsyncStack, StackRunner): a TcpConfig without ``mtu`` takes it, one with ``mtu`` is
        # held under it (RFC 9293 §3.7.1 MUST-16/67: MMS_S comes from the interface's MTU).
        self.link_mtu: int | None = None
        self.conns: dict[Key, TcpConnection] = {}
        # Connections in TIME-WAIT, as compact records (timewait.py): not in ``conns``.
        self.time_wait: dict[Key, TimeWait] = {}
        self._tw_heap: list[tuple[float, int, TimeWait]] = []   # (deadline, seq, record); stale skipped
        # The records in ``time_wait``, as a set: "is this the current record for its key"
        # without hashing the key (its addresses hash in Python) for every heap entry looked at.
        self._tw_live: set[TimeWait] = set()
        self.listeners: dict[tuple[IPAddress | None, int], Listener] = {}
        # Per-connection tables are keyed by the TcpConnection itself (it hashes by identity, in
        # C, without the id() call an int key costs).
        self._owner: dict[TcpConnection, Listener] = {}    # conn -> its listener, while half-open
        self._out: list[bytes] = []
        self._touched: dict[TcpConnection, None] = {}      # insertion-ordered: deterministic output
        # One heap of (deadline, seq, conn) and, per connection, the deadline of its one live
        # entry: entries whose deadline no longer matches are stale and skipped (STYLE §5).
        self._heap: list[tuple[float, int, TcpConnection]] = []
        self._sched: dict[TcpConnection, float] = {}
        self._seq = itertools.count()
        self._events: deque = deque()                     # stack-level (listener, event) pairs
        self._with_events: dict[TcpConnection, None] = {}  # connections with events to pull
        self._now = 0.0
        self._keys: dict[TcpConnection, Key] = {}
        # What packets_to_send needs to put an IPv4 connection's segments in packets: its
        # addresses packed and their sum (ipv4_tcp_packet); None for IPv6.
        self._routes: dict[TcpConnection, tuple[bytes, bytes, int] | None] = {}
        self.stats: Counter[str] = Counter()

    # ================================================================ user calls

    def listen(self, port: int, addr: str | None = None, backlog: int = 128,
               config: TcpConfig | None = None) -> Listener:
        a = ip_address(addr) if addr else None
        # A wildcard listener covers every address, so it conflicts with a specific one on
        # the same port either way round (bind(2) without SO_REUSEPORT).
        if any(p == port and (x is None or a is None or x == a) for x, p in self.listeners):
            raise OSError(errno.EADDRINUSE, "address in use")
        lst = Listener(a, port, backlog, self.sconfig.syn_backlog, config)
        self.listeners[(a, port)] = lst
        return lst

    def close_listener(self, lst: Listener, now: float) -> None:
        """Stop listening; connections not yet accepted are reset."""
        lst.closed = True
        self.listeners.pop((lst.addr, lst.port), None)
        for c in list(lst.syn_queue.values()) + list(lst.accept_queue):
            c.abort(now)
            self.touch(c)
        lst.syn_queue.clear()
        lst.accept_queue.clear()

    def accept(self, lst: Listener) -> TcpConnection | None:
        return lst.accept_queue.popleft() if lst.accept_queue else None

    def connect(self, remote: tuple[str, int], now: float, local: tuple[str, int] | None = None,
                config: TcpConfig | None = None) -> TcpConnection:
        raddr, rport = ip_address(remote[0]), remote[1]
        if not _unicast(raddr) or any(raddr == i.network.broadcast_address for i in self.interfaces
                                      if i.version == 4 and i.network.prefixlen < 31):
            # RFC 9293 §3.9.1.1: an OPEN to a broadcast or multicast address MUST fail (MUST-46)
            raise OSError(errno.EINVAL, f"cannot connect to {raddr}: not a unicast address")
        if local and local[0]:
            laddr = ip_address(local[0])
            if laddr not in self.addresses:
                raise OSError(errno.EADDRNOTAVAIL, f"{laddr} is not an address of this host")
        else:
            laddr = self._source_for(raddr)
        lport = local[1] if local and local[1] else 0
        if lport == 0:
            lport = self.ports.choose(laddr.packed, raddr.packed, rport,
                                      lambda p: (laddr, p, raddr, rport) in self.conns
                                      or (laddr, p, raddr, rport) in self.time_wait
                                      or (None, p) in self.listeners or (laddr, p) in self.listeners)
        key = (laddr, lport, raddr, rport)
        if key in self.conns or key in self.time_wait:
            raise OSError(errno.EADDRINUSE, "address in use")
        conn = self._new_conn(key, now, config)
        conn.connect(now)
        self.touch(conn)
        return conn

    def _source_for(self, raddr: IPAddress) -> IPAddress:
        """The local address for a destination: one whose prefix holds it, else the first of the
        family (RFC 9293 §3.9.1.1, MUST-44; RFC 1122 §3.3.4.3)."""
        same = [i for i in self.interfaces if i.version == raddr.version]
        if not same:
            raise OSError(errno.ENETUNREACH, f"no IPv{raddr.version} address on this host")
        return next((i.ip for i in same if raddr in i.network), same[0].ip)

    def touch(self, conn: TcpConnection) -> bool:
        """Tell the stack a user call changed ``conn`` (it may have something to send). False:
        the stack will not look at it (a TIME-WAIT record stands in for it), so a driver need
        not wake up for it."""
        if conn.state is _TIME_WAIT and conn not in self._keys:
            return False    # its TIME-WAIT record answers for it; a call there (close again) sends nothing
        self._touched[conn] = None
        return True

    def _new_conn(self, key: Key, now: float, config: TcpConfig | None) -> TcpConnection:
        laddr, lport, raddr, rport = key
        sp, dp = laddr.packed, raddr.packed       # (a property: asked once)
        iss = self.isn.isn(now, sp, lport, dp, rport)
        conn = TcpConnection(ConnId(str(laddr), lport, str(raddr), rport), iss,
                             self._conn_config(config or self.config), log=self.log, ts_offset=self.ts_offset)
        self._register(conn, key, sp, dp)
        return conn

    def _register(self, conn: TcpConnection, key: Key, sp: bytes, dp: bytes) -> None:
        """``conn`` answers for ``key`` (whose addresses packed are ``sp``, ``dp``) from now on,
        until ``_forget``."""
        self.conns[key] = conn
        self._keys[conn] = key
        self._routes[conn] = (sp, dp, int.from_bytes(sp + dp, "big")) if len(sp) == 4 else None

    def _conn_config(self, cfg: TcpConfig) -> TcpConfig:
        """A new connection's own copy of ``cfg``, its MTU that of the link (see ``link_mtu``)."""
        c = cfg.copy()
        if self.link_mtu is not None and (c.mtu is None or c.mtu > self.link_mtu):
            c.mtu = self.link_mtu
        return c

    # ================================================================ packets in

    def receive_packet(self, packet: bytes, now: float) -> None:
        if now > self._now:
            self._now = now                       # max(self._now, now)
        self.stats["ip_in"] += 1
        if not packet or packet[0] >> 4 != 4:
            return self._ip_in(packet, now)
        # IPv4: the checks of _ip_in in the same order, without building an ``IPv4Packet`` for
        # every TCP segment (``ipv4_fields``); here, not in a method of its own: a call fewer
        try:
            src, dst, proto, tos, hlen, total, _, _, flags_off, src4, dst4 = ipv4_fields(packet)
        except WireError as e:
            return self._drop(now, f"bad IP packet: {e.reason}", len(packet))
        if dst4 not in self._packed4:
            return self._drop(now, "not for us", len(packet))
        if not _unicast4(src4) or src4 in self._broadcasts4:
            # RFC 9293 §3.9.2.1 / RFC 1122 §4.2.3.10 and §3.2.1.3 (MUST-63), as in _ip_in
            return self._drop(now, "source not unicast", len(packet))
        if flags_off & 0x3FFF:                      # MF or a fragment offset: a fragment
            return self._drop(now, "IP fragment (not reassembled)", len(packet))
        if proto != 6:
            if proto == 1:
                return self._icmp_in(parse_ipv4(packet), now)
            return self._drop(now, f"protocol {proto} not handled", len(packet))
        # The addresses' part of the pseudo-header sum: both, as one integer off the header
        # (parse_tcp_summed); None when the link checked the checksum already.
        addr_sum = None if packet.__class__ is ChecksumValid else int.from_bytes(packet[12:20], "big")
        payload = memoryview(packet)[hlen:total]
        try:                                        # self._parse_tcp(...), inlined
            seg = parse_tcp_summed(payload, addr_sum)
        except WireError as e:
            return self._bad_tcp(packet, e, now)
        self.stats["tcp_in"] += 1
        self._tcp_in(dst, src, seg, now, tos & 3)     # ECN field, RFC 3168 §5

    def _ip_in(self, packet: bytes, now: float) -> None:
        """``receive_packet`` for anything but IPv4 (IPv6, or no IP packet at all)."""
        try:
            pkt = parse_packet(packet)
        except WireError as e:
            return self._drop(now, f"bad IP packet: {e.reason}", len(packet))
        if pkt.dst not in self.addresses:
            return self._drop(now, "not for us", len(packet))
        if not _unicast(pkt.src) or pkt.src in self._broadcasts:
            # RFC 9293 §3.9.2.1 / RFC 1122 §4.2.3.10 and §3.2.1.3: a segment from a broadcast
            # (limited or of one of our subnets) or multicast source is dropped silently (MUST-63)
            return self._drop(now, "source not unicast", len(packet))
        if pkt.is_fragment:
            # Fragments are dropped and counted: synack sends DF and atomic datagrams itself,
            # and its MSS keeps peers' segments within the MTU (documented in docs/stack.md).
            return self._drop(now, "IP fragment (not reassembled)", len(packet))
        proto = pkt.proto if isinstance(pkt, IPv4Packet) else pkt.next_header
        if proto == 6:
            addr_sum = (None if packet.__class__ is ChecksumValid
                        else int.from_bytes(pkt.src.packed + pkt.dst.packed, "big"))
            seg = self._parse_tcp(packet, pkt.payload, addr_sum, now)
            if seg is None:
                return
            tos = pkt.tos if isinstance(pkt, IPv4Packet) else pkt.traffic_class
            self._tcp_in(pkt.dst, pkt.src, seg, now, tos & 3)     # ECN field, RFC 3168 §5
        elif proto == 1 and isinstance(pkt, IPv4Packet):
            self._icmp_in(pkt, now)
        elif proto == 58 and isinstance(pkt, IPv6Packet):
            self._icmp_in(pkt, now)
        else:
            self._drop(now, f"protocol {proto} not handled", len(packet))

    def _parse_tcp(self, packet: bytes, payload, addr_sum: int | None, now: float) -> TcpSegment | None:
        """The TCP segment in ``payload`` (checksum verified unless ``addr_sum`` is None: the
        link did it), or None when it is malformed: dropped and counted, never an exception
        (RFC 9293 MUST-7)."""
        try:
            seg = parse_tcp_summed(payload, addr_sum)
        except WireError as e:
            return self._bad_tcp(packet, e, now)
        self.stats["tcp_in"] += 1
        return seg

    def _bad_tcp(self, packet: bytes, e: WireError, now: float) -> None:
        """A malformed TCP segment: dropped and counted."""
        self.stats["tcp_bad"] += 1
        if "checksum" in e.reason:
            self.stats["tcp_bad_checksum"] += 1
        self._drop(now, f"bad TCP segment: {e.reason}", len(packet))

    def _drop(self, now: float, reason: str, length: int) -> None:
        self.stats["drop: " + reason.split(":")[0]] += 1
        if self.log:
            self.log(StackDrop(now, reason, length))

    def _tcp_in(self, laddr: IPAddress, raddr: IPAddress, seg: TcpSegment, now: float, ecn: int = 0) -> None:
        key = (laddr, seg.dport, raddr, seg.sport)
        conn = self.conns.get(key)
        if conn is not None and conn.state is _TIME_WAIT and self._timewait_accepts(conn, seg):
            # RFC 9293 §3.6.1 / RFC 6191: a new incarnation may reuse the 4-tuple in TIME-WAIT
            self._forget(conn)
            conn = None
        if conn is not None:
            owner = self._owner.get(conn) if self._owner else None
            if owner is not None and len(owner.accept_queue) >= owner.backlog \
                    and int(seg.flags) & (_ACK | _SYN | _RST) == _ACK:   # ACK, neither SYN nor RST
                # No room in the accept queue for the connection this ACK would complete: drop
                # the ACK and stay half-open; the SYN-ACK retransmission draws it again later
                # (RFC 4987 §2.2; Linux tcp_check_req -> listen_overflow).
                self.stats["listen_overflow"] += 1
                return self._drop(now, "listen: accept queue full", len(seg.payload))
            conn.receive_segment(seg, now, ecn=ecn)
            if self._owner:
                self._after(conn, now)
            else:
                self._touched[conn] = None        # all of _after(conn, now) when no connection has an owner
            return
        if self.time_wait:
            tw = self.time_wait.get(key)
            if tw is not None and self._time_wait_in(tw, seg, now, ecn):
                return
        lst = self.listeners.get((laddr, seg.dport)) or self.listeners.get((None, seg.dport))
        if lst is not None:
            return self._listener_in(lst, key, seg, now)
        # No TCB: RFC 9293 §3.10.7.1 — a RST answers anything but a RST.
        self.stats["no_tcb"] += 1
        if int(seg.flags) & _RST:                 # (a plain int: ``&`` on Flags is a Python call)
            return self._drop(now, "RST for no connection", len(seg.payload))
        if self.sconfig.rst_for_closed_ports:
            self._send_tcp(laddr, raddr, rst_for(seg, self.config.rst_timestamps))

    def _time_wait_in(self, tw: TimeWait, seg: TcpSegment, now: float, ecn: int) -> bool:
        """A segment for a connection in TIME-WAIT. False: the record is gone (a new SYN may open
        a new incarnation, RFC 6191; or the user aborted the TCB) and the segment goes on as if
        there were none."""
        tcb = tw.live_tcb()
        if tcb is not None and tcb.state is not _TIME_WAIT:
            self._tw_remove(tw)                   # ABORT in TIME-WAIT deleted the TCB (§3.10.5)
            return False
        if self._timewait_accepts(tw, seg):
            # RFC 9293 §3.6.1 / RFC 6191: a new incarnation may reuse the 4-tuple in TIME-WAIT
            self._tw_remove(tw)
            return False
        if tcb is not None:                       # someone still holds the TCB: it answers, as before
            tcb.receive_segment(seg, now, ecn=ecn)
            self._tw_collect(tw, tcb, now)
            return True
        segs, stays = tw.receive_segment(seg, now, self.log)
        laddr, raddr = tw.key[0], tw.key[2]
        for s in segs:
            self._send_tcp(laddr, raddr, s, tw.tos)
        if stays:
            self._tw_schedule(tw)
        else:
            self._tw_remove(tw)
        return True

    def _enter_time_wait(self, conn: TcpConnection, key: Key) -> None:
        """``conn`` reached TIME-WAIT: a compact record takes its place (timewait.py), and the
        stack keeps no strong reference to the TCB."""
        tw = TimeWait(key, conn)
        self._forget(conn)
        old = self.time_wait.setdefault(key, tw)  # (one lookup of the key where get and set take two)
        if old is not tw:                         # a record for the key already: replaced
            self._tw_live.discard(old)
            self.time_wait[key] = tw
        self._tw_live.add(tw)
        self._tw_schedule(tw)
        self.stats["time_wait"] += 1

    def _tw_collect(self, tw: TimeWait, tcb: TcpConnection, now: float) -> None:
        """After a held TCB in TIME-WAIT took input or a timer: its output, events, deadline."""
        laddr, raddr = tw.key[0], tw.key[2]
        for s in tcb.segments_to_send(now):
            self._send_tcp(laddr, raddr, s, tcb.ip_tos(s))
        if tcb.has_events:
            self._with_events[tcb] = None
        if tcb.state is _TIME_WAIT:
            tw.refresh(tcb)
            self._tw_schedule(tw)
        else:
            self._tw_remove(tw)

    def _tw_schedule(self, tw: TimeWait) -> None:
        heapq.heappush(self._tw_heap, (tw.expiry, next(self._seq), tw))

    def _tw_remove(self, tw: TimeWait) -> None:
        if tw in self._tw_live:                   # self.time_wait.get(tw.key) is tw
            self._tw_live.discard(tw)
            del self.time_wait[tw.key]

    def _tw_due(self, now: float) -> None:
        heap = self._tw_heap
        while heap and heap[0][0] <= now:
            t, _, tw = heapq.heappop(heap)
            if tw.expiry != t or tw not in self._tw_live:
                continue                          # stale: restarted, or gone already
            tcb = tw.live_tcb()
            if tcb is not None and tcb.state is _TIME_WAIT:
                tcb.handle_timer(now)             # the held TCB reaches CLOSED itself
                self._tw_collect(tw, tcb, now)
            elif tcb is not None:
                self._tw_remove(tw)               # ABORT in TIME-WAIT deleted it already (§3.10.5)
            else:
                tw.expire(now, self.log)          # §3.10.8: TIME-WAIT -> CLOSED, the record goes
                self._tw_remove(tw)

    def _tw_next(self) -> float | None:
        heap, live = self._tw_heap, self._tw_live
        while heap:
            t, _, tw = heap[0]
            if tw.expiry == t and tw in live:     # not stale: see _tw_due
                return t
            heapq.heappop(heap)
        return None

    def _timewait_accepts(self, conn: TcpConnection | TimeWait, seg: TcpSegment) -> bool:
        """Does ``seg`` open a new incarnation of a connection in TIME-WAIT? Only a SYN without
        ACK or RST, and (RFC 6191 §2) with newer timestamps when both used them, otherwise with
        an ISN beyond the old connection's final sequence number (RFC 1122 §4.2.2.13)."""
        if int(seg.flags) & (_SYN | _ACK | _RST) != _SYN:
            return False
        ts = seg.timestamps
        if conn.ts_ok and ts is not None:
            return seq_gt(ts.val, conn.ts_recent)
        return seq_gt(seg.seq, conn.rcv_nxt)

    def _listener_in(self, lst: Listener, key: Key, seg: TcpSegment, now: float) -> None:
        f = int(seg.flags)
        laddr, lport, raddr, rport = key
        if f & _RST:
            return self._drop(now, "listen: RST ignored", 0)
        if f & _ACK:
            if self.sconfig.syncookies != "off" and not f & _SYN and self._cookie_ack(lst, key, seg, now):
                return
            self._send_tcp(laddr, raddr, rst_for(seg, (lst.config or self.config).rst_timestamps))  # §3.10.7.2
            return
        if not f & _SYN:
            return self._drop(now, "listen: no SYN", 0)
        if len(lst.accept_queue) >= lst.backlog:
            self.stats["listen_overflow"] += 1
            return self._drop(now, "listen: accept queue full", 0)
        mode = self.sconfig.syncookies
        if mode == "always" or (mode == "on" and len(lst.syn_queue) >= lst.syn_backlog):
            return self._send_cookie(lst, key, seg, now)
        if len(lst.syn_queue) >= lst.syn_backlog:
            self.stats["syn_queue_full"] += 1
            return self._drop(now, "listen: SYN queue full", 0)
        conn = self._new_conn(key, now, lst.config)
        conn.listen(now)
        conn.receive_segment(seg, now)
        lst.syn_queue[key] = conn
        self._owner[conn] = lst
        self._after(conn, now)

    # ---- SYN cookies ----

    @staticmethod
    def _tuple_bytes(key: Key) -> bytes:
        laddr, lport, raddr, rport = key
        return laddr.packed + lport.to_bytes(2, "big") + raddr.packed + rport.to_bytes(2, "big")

    def _send_cookie(self, lst: Listener, key: Key, seg: TcpSegment, now: float) -> None:
        """Answer a SYN with a cookie SYN-ACK and keep nothing (RFC 4987 §3.6)."""
        laddr, lport, raddr, rport = key
        cfg = self._conn_config(lst.config or self.config)
        peer_mss = seg.mss if seg.mss is not None else (1220 if raddr.version == 6 else 536)
        iss = self.cookies.make(self._tuple_bytes(key), seg.seq, peer_mss, now)
        ts = seg.timestamps
        wscale, sack, our_ts = None, False, None
        if ts is not None and cfg.timestamps:
            # without timestamps there is nowhere to keep window scale and SACK-permitted
            wscale = seg.wscale if cfg.window_scaling else None
            sack = cfg.sack and seg.sack_permitted
            tsval = self.cookies.encode_ts((int(now * 1000) + self.ts_offset) & 0xFFFFFFFF, wscale, sack)
            our_ts = Timestamps(tsval, ts.val)
        opts = syn_option_layout(cfg.syn_option_order, Mss(cfg.advertised_mss(raddr.version == 6)),
                                 WindowScale(cfg.offered_wscale()) if wscale is not None else None, sack, our_ts)
        window = cfg.syn_window_field(cfg.rcv_buf, cfg.advertised_mss(raddr.version == 6) - (12 if our_ts else 0))
        synack = TcpSegment(lport, rport, iss, (seg.seq + 1) & 0xFFFFFFFF, Flags.SYN | Flags.ACK, window,
                            0, opts)
        self._send_tcp(laddr, raddr, synack)
        self.stats["syncookies_sent"] += 1
        if self.log:
            self.log(SegmentOut(now, ConnId(str(laddr), lport, str(raddr), rport), synack))

    def _cookie_ack(self, lst: Listener, key: Key, seg: TcpSegment, now: float) -> bool:
        """A bare ACK to a listener: is it the end of a cookie handshake?"""
        cookie = (seg.ack - 1) & 0xFFFFFFFF
        peer_isn = (seg.seq - 1) & 0xFFFFFFFF
        mss = self.cookies.check(self._tuple_bytes(key), peer_isn, cookie, now)
        if mss is None:
            self.stats["syncookies_failed"] += 1
            return False
        if len(lst.accept_queue) >= lst.backlog:
            self.stats["listen_overflow"] += 1
            return True
        cfg = lst.config or self.config
        ts = seg.timestamps
        opts: list = [Mss(mss)]
        if ts is not None and cfg.timestamps:
            wscale, sack = self.cookies.decode_ts(ts.ecr)
            if sack:
                opts.append(SackPermitted())
            opts.append(Timestamps(ts.val, 0))
            if wscale is not None:
                opts.append(WindowScale(wscale))
        laddr, lport, raddr, rport = key
        # Rebuilt without the log: the SYN and SYN-ACK below are reconstructions, not traffic
        # (the real SYN-ACK was logged when the cookie went out).
        conn = TcpConnection(ConnId(str(laddr), lport, str(raddr), rport), cookie,
                             self._conn_config(cfg), log=None, ts_offset=self.ts_offset)
        self._register(conn, key, laddr.packed, raddr.packed)
        # Rebuild the half-open state: the SYN as the peer sent it, the SYN-ACK as we sent it.
        syn = TcpSegment(rport, lport, peer_isn, 0, Flags.SYN, seg.window, 0, tuple(opts))
        conn.listen(now)
        conn.receive_segment(syn, now)
        conn.segments_to_send(now)          # the SYN-ACK left already, as the cookie
        conn.log = self.log
        self._owner[conn] = lst
        conn.receive_segment(seg, now)
        self.stats["syncookies_recv"] += 1
        self._after(conn, now)
        return True

    # ---- ICMP ----

    def _icmp_in(self, pkt: IPv4Packet | IPv6Packet, now: float) -> None:
        v6 = isinstance(pkt, IPv6Packet)
        try:
            raw = icmpw.parse_icmp6(pkt.payload, pkt.src, pkt.dst) if v6 else icmpw.parse_icmp4(pkt.payload)
            msg = icmpw.decode_icmp6(raw) if v6 else icmpw.decode_icmp4(raw)
        except WireError as e:
            return self._drop(now, f"bad ICMP: {e.reason}", len(pkt.payload))
        self.stats["icmp_in"] += 1
        if isinstance(msg, icmpw.Echo):
            if not msg.reply and self.sconfig.icmp_echo:
                reply = icmpw.Echo(msg.ident, msg.seq, msg.data, reply=True)
                if v6:
                    body = icmpw.emit_icmp6(reply, pkt.dst, pkt.src)
                    self._out.append(emit_ipv6(IPv6Packet(pkt.dst, pkt.src, 58, body, hop_limit=self.sconfig.ttl)))
                else:
                    body = icmpw.emit_icmp4(reply)
                    self._out.append(emit_ipv4(IPv4Packet(pkt.dst, pkt.src, 1, body, ttl=self.sconfig.ttl)))
                self.stats["icmp_echo_replies"] += 1
            return
        original = getattr(msg, "original", None)
        if original is None:
            return
        try:
            q = icmpw.quoted_tcp(original)
        except WireError as e:
            return self._drop(now, f"ICMP error quoting no TCP: {e.reason}", 0)
        conn = self.conns.get((q.src, q.sport, q.dst, q.dport))
        if conn is None:
            if (q.src, q.sport, q.dst, q.dport) in self.time_wait:
                self.stats["icmp_ignored"] += 1       # nothing of ours is in flight (RFC 5927 §4.1)
                return None
            return self._drop(now, "ICMP error for no connection", 0)
        if isinstance(msg, icmpw.PacketTooBig):
            kind, code, mtu = "packet_too_big", 0, msg.mtu
        elif isinstance(msg, icmpw.DestUnreachable):
            kind, code, mtu = "unreachable", msg.code, msg.next_hop_mtu
            if v6:
                kind = "unreachable6"
        elif isinstance(msg, icmpw.TimeExceeded):
            kind, code, mtu = "time_exceeded", msg.code, 0
        else:
            kind, code, mtu = "parameter_problem", getattr(msg, "code", 0), 0
        if conn.icmp_error(kind, code, mtu, q.seq, now, may_abort=self.sconfig.icmp_may_abort_syn_sent):
            self.stats["icmp_accepted"] += 1
        else:
            self.stats["icmp_ignored"] += 1
        self._after(conn, now)

    # ================================================================ packets out, timers

    def _send_tcp(self, laddr: IPAddress, raddr: IPAddress, seg: TcpSegment, tos: int = 0) -> None:
        self._out.append(build_tcp_packet(laddr, raddr, seg, ttl=self.sconfig.ttl, tos=tos))
        self.stats["tcp_out"] += 1
        if int(seg.flags) & _RST:
            self.stats["rst_out"] += 1

    def _after(self, conn: TcpConnection, now: float) -> None:
        """After input to a connection: move it between queues, collect it for output."""
        self._touched[conn] = None
        lst = self._owner.get(conn) if self._owner else None
        if lst is not None and conn.state is not _SYN_RECEIVED:
            del self._owner[conn]
            lst.syn_queue.pop(self._keys.get(conn), None)   # type: ignore[arg-type]
            if conn.state is not _CLOSED and not lst.closed:
                lst.accept_queue.append(conn)
                self._events.append((lst, Acceptable(now, lst.port)))

    def packets_to_send(self, now: float) -> list[bytes]:
        if now > self._now:
            self._now = now                       # max(self._now, now)
        self._run_due(now)
        out, self._out = self._out, []
        if not self._touched:
            return out
        touched, self._touched = self._touched, {}
        keys, routes, ttl, stats, sched = self._keys, self._routes, self.sconfig.ttl, self.stats, self._sched
        for conn in touched:
            key = keys.get(conn)
            if key is None and conn.state is _TIME_WAIT:
                continue                          # its TIME-WAIT record stands in for it
            segs = conn.segments_to_send(now)
            if segs and key is not None:
                mss = conn.mss if conn.config.tso_max else 1 << 30
                route = routes[conn]
                for seg in segs:
                    tos = conn.ip_tos(seg)
                    if route is not None and len(seg.payload) <= mss:
                        # build_tcp_packet(key[0], key[2], seg, ttl, tos=tos) for an IPv4
                        # connection, with its addresses packed and summed once
                        out.append(ipv4_tcp_packet(seg, route[0], route[1], route[2], ttl, tos))
                    else:
                        # a TSO segment (more than one MSS) is for a link that cuts and checksums it
                        out.append(build_tcp_packet(key[0], key[2], seg, ttl=ttl,
                                                    partial_checksum=len(seg.payload) > mss, tos=tos))
                    if int(seg.flags) & _RST:
                        stats["rst_out"] += 1
                stats["tcp_out"] += len(segs)
            if conn.has_events:
                self._with_events[conn] = None
            st = conn.state
            if st is _CLOSED:
                self._forget(conn)
            elif key is None:
                pass                              # forgotten: nothing of it reaches the wire
            elif st is _TIME_WAIT and conn not in self._owner:
                self._enter_time_wait(conn, key)
            else:
                t = conn.next_timer()             # self._schedule(conn), inlined
                if t is None:
                    sched.pop(conn, None)
                elif sched.get(conn) != t:
                    sched[conn] = t
                    heapq.heappush(self._heap, (t, next(self._seq), conn))
        if self._out:                             # what TIME-WAIT TCBs touched above answered
            out += self._out
            self._out = []
        return out

    def _schedule(self, conn: TcpConnection) -> None:
        """Keep exactly one live heap entry for ``conn``, at its current deadline."""
        t = conn.next_timer()
        if t is None:
            self._sched.pop(conn, None)
        elif self._sched.get(conn) != t:
            self._sched[conn] = t
            heapq.heappush(self._heap, (t, next(self._seq), conn))

    def _live(self, t: float, conn: TcpConnection) -> bool:
        return self._sched.get(conn) == t and conn in self._keys

    def _run_due(self, now: float) -> None:
        if self._tw_heap and self._tw_heap[0][0] <= now:
            self._tw_due(now)
        heap = self._heap
        while heap and heap[0][0] <= now:
            t, _, conn = heapq.heappop(heap)
            if self._live(t, conn):
                del self._sched[conn]
                self._touched[conn] = None

    def _forget(self, conn: TcpConnection) -> None:
        self._sched.pop(conn, None)
        self._routes.pop(conn, None)
        key = self._keys.pop(conn, None)
        if key is not None and self.conns.get(key) is conn:
            del self.conns[key]
        lst = self._owner.pop(conn, None)
        if lst is not None and key is not None:
            lst.syn_queue.pop(key, None)

    def next_timer(self) -> float | None:
        if self._out or self._touched:
            return self._now
        # Each heap's top entry checked here as _tw_next() and _conn_next() check it first; they
        # run (and pop stale entries) only when it is not live: one call fewer each, mostly.
        heap = self._tw_heap
        if heap:
            tw, _, rec = heap[0]
            if rec.expiry != tw or rec not in self._tw_live:
                tw = self._tw_next()
        else:
            tw = None
        heap = self._heap
        if heap:
            t, _, conn = heap[0]
            if self._sched.get(conn) != t or conn not in self._keys or conn.next_timer() != t:
                t = self._conn_next()
        else:
            t = None
        return tw if t is None or (tw is not None and tw < t) else t

    def _conn_next(self) -> float | None:
        heap, sched, keys = self._heap, self._sched, self._keys
        while heap:
            t, _, conn = heap[0]
            if sched.get(conn) != t or conn not in keys:       # not self._live(t, conn)
                heapq.heappop(heap)
                continue
            ct = conn.next_timer()
            if ct != t:
                # the deadline moved without the stack seeing it (a user call without touch())
                heapq.heappop(heap)
                del sched[conn]
                self._schedule(conn)
                continue
            return t
        return None

    def handle_timer(self, now: float) -> None:
        self._run_due(now)                        # (packets_to_send starts with it: sends_run_timers)

    def next_event(self):
        """``(listener, Acceptable)`` or ``(connection, event)`` pairs; None when there are none."""
        if self._events:
            return self._events.popleft()
        while self._with_events:
            conn = next(iter(self._with_events))
            e = conn.next_event()
            if e is not None:
                return conn, e
            del self._with_events[conn]
        return None

    def last_events(self) -> list[tuple]:
        """Drain every pending event, and for each listener or connection that had some return
        one ``(object, last event)`` pair, in the order the objects first had one — what
        ``next_event()`` in a loop gives a level-triggered consumer (the asyncio adapter), without
        a call per event."""
        if not self._events:
            # no listener events: the connections in _with_events are distinct keys already,
            # so the batch is them in order, without the dict (the common case)
            if not self._with_events:
                return []                        # (the adapter asks again after each batch)
            out = []
            for conn in self._with_events:
                evs = conn.drain_events()
                if evs:
                    out.append((conn, evs[-1]))
            self._with_events.clear()
            return out
        batch: dict[object, tuple] = {}          # listeners and connections hash by identity
        for item in self._events:
            batch[item[0]] = item                # a key keeps its first position
        self._events.clear()
        for conn in self._with_events:
            evs = conn.drain_events()
            if evs:
                batch[conn] = (conn, evs[-1])
        self._with_events.clear()
        return list(batch.values())

    # ================================================================ inspection

    def connections(self) -> list[TcpConnection]:
        return list(self.conns.values())
