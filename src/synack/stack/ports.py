"""Ephemeral port selection, RFC 6056 §3.3.3 (Algorithm 3, "Simple Hash-Based Port Selection").

The port sequence for a (local, remote, remote port) triple starts at a keyed-hash offset and
walks on from a counter, so ports are not predictable from outside yet rarely collide.
"""

from __future__ import annotations

import errno
import hashlib
from typing import Callable


class PortAllocator:
    def __init__(self, secret: bytes, low: int = 32768, high: int = 60999) -> None:
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"bad ephemeral port range {low}-{high}")
        self.secret = secret
        self.low, self.high = low, high
        self._next = 0

    def choose(self, local: bytes, remote: bytes, rport: int, in_use: Callable[[int], bool]) -> int:
        """A free port for this triple; raises OSError(EADDRNOTAVAIL) when none is left."""
        n = self.high - self.low + 1
        h = hashlib.blake2b(local + remote + rport.to_bytes(2, "big"), key=self.secret[:64], digest_size=4)
        offset = int.from_bytes(h.digest(), "big")
        for _ in range(n):
            port = self.low + (self._next + offset) % n
            self._next += 1
            if not in_use(port):
                return port
        raise OSError(errno.EADDRNOTAVAIL, "no ephemeral port free")
