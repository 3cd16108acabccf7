"""A ``Link`` over an AF_UNIX datagram socket: real file descriptors, one IP packet per datagram.

``a, b = DgramLink.pair()`` gives two ends of a ``socketpair(AF_UNIX, SOCK_DGRAM)``, so two
stacks in one process talk over real I/O: an asyncio adapter watches ``fileno()`` with
``add_reader`` exactly as it would a TUN device, with no simulator clock involved (STYLE §7:
never mix sim time and a fd).

Linux lets a datagram socket queue only ``net.unix.max_dgram_qlen`` datagrams (often 10) at the
receiving end; a burst larger than that makes ``send`` fail with EAGAIN. Rather than drop what a
loopback wire would deliver, the link keeps those packets in a bounded backlog (``backlog_max``
packets; beyond it packets are dropped and counted, like a full NIC queue) and says so with
``wants_write``; a driver then waits for ``fileno()`` to be writable and calls ``flush()``.
``synack.api.aio.AsyncStack`` does this. Packets leave in order: once a backlog exists, new
packets join it instead of overtaking it.
"""

from __future__ import annotations

import errno
import socket
from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class DgramCounters:
    sent: int = 0            # packets written to the socket
    sent_bytes: int = 0
    received: int = 0        # packets read from the socket
    received_bytes: int = 0
    deferred: int = 0        # packets that met EAGAIN and waited in the backlog
    dropped: int = 0         # packets dropped because the backlog was full or the peer is gone


class DgramLink:
    """One end of a datagram-socket link. ``now`` is accepted and ignored: the kernel decides
    when packets arrive, and ``next_timer()`` is always None (nothing is held for later)."""

    MAX_PACKET = 65535
    RECV_BATCH = 256         # reads per receive(); epoll reports the fd again if more wait

    def __init__(self, sock: socket.socket, *, backlog_max: int = 4096) -> None:
        if sock.type != socket.SOCK_DGRAM:
            raise ValueError("DgramLink needs a SOCK_DGRAM socket")
        sock.setblocking(False)
        self.sock = sock
        self.backlog_max = backlog_max
        self._backlog: deque[bytes] = deque()
        self.counters = DgramCounters()
        self.closed = False

    @classmethod
    def pair(cls, *, backlog_max: int = 4096, bufsize: int | None = 1 << 20) -> tuple["DgramLink", "DgramLink"]:
        """Two connected ends over ``socket.socketpair(AF_UNIX, SOCK_DGRAM)``. ``bufsize`` asks
        for larger socket buffers (the kernel caps it at ``net.core.wmem_max``/``rmem_max``)."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        if bufsize:
            for s in (a, b):
                for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                    try:
                        s.setsockopt(socket.SOL_SOCKET, opt, bufsize)
                    except OSError:
                        pass
        return cls(a, backlog_max=backlog_max), cls(b, backlog_max=backlog_max)

    # ---- the Link protocol ----

    def transmit(self, packet: bytes, now: float) -> None:
        if self.closed:
            self.counters.dropped += 1
            return
        if self._backlog:
            self._defer(packet)
            self.flush()
            return
        if not self._send(packet):
            self._defer(packet)

    def receive(self, now: float) -> list[bytes]:
        """Everything the socket has queued (up to ``RECV_BATCH`` reads), oldest first."""
        out: list[bytes] = []
        if self.closed:
            return out
        recv = self.sock.recv
        for _ in range(self.RECV_BATCH):
            try:
                p = recv(self.MAX_PACKET)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno in (errno.ECONNREFUSED, errno.ENOTCONN):
                    break
                raise
            out.append(p)
        if out:
            self.counters.received += len(out)
            self.counters.received_bytes += sum(map(len, out))
        if self._backlog:                 # the peer read: room may have opened for us too
            self.flush()
        return out

    def next_timer(self) -> float | None:
        return None

    # ---- fd integration ----

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def wants_write(self) -> bool:
        """True while packets wait in the backlog for the socket to become writable."""
        return bool(self._backlog)

    def flush(self) -> None:
        """Send backlogged packets until the socket says EAGAIN again."""
        while self._backlog:
            if not self._send(self._backlog[0]):
                return
            self._backlog.popleft()

    def close(self) -> None:
        self.closed = True
        self.counters.dropped += len(self._backlog)
        self._backlog.clear()
        self.sock.close()

    # ---- internals ----

    def _send(self, packet: bytes) -> bool:
        try:
            self.sock.send(packet)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as e:
            if e.errno in (errno.ENOBUFS, errno.EAGAIN):
                return False
            # ECONNREFUSED / EPIPE: the other end is closed; a wire to nowhere drops the packet
            self.counters.dropped += 1
            return True
        self.counters.sent += 1
        self.counters.sent_bytes += len(packet)
        return True

    def _defer(self, packet: bytes) -> None:
        if len(self._backlog) >= self.backlog_max:
            self.counters.dropped += 1
            return
        self._backlog.append(bytes(packet))
        self.counters.deferred += 1

    def __repr__(self) -> str:
        return f"DgramLink(fd={self.sock.fileno()}, backlog={len(self._backlog)})"


__all__ = ["DgramLink", "DgramCounters"]
