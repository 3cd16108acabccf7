"""SYN cookies (RFC 4987 §3.6): the listener answers a SYN without keeping any state, and
rebuilds the connection from the cookie when the handshake's ACK comes back.

Cookie layout (the SYN-ACK's ISN), as RFC 4987 §3.6 describes:

    bits 31-27  t mod 32, t = now // 64 s (a slowly ticking counter)
    bits 26-24  index into MSS_TABLE of the largest MSS <= the peer's
    bits 23-0   keyed hash of (4-tuple, the peer's ISN, t)

Options that need state survive in our timestamp, as Linux does: the low 6 bits of the
SYN-ACK's TSval carry the peer's window scale (4 bits, 15 = none) and SACK-permitted (1 bit);
the peer echoes them in TSecr. Without timestamps, window scaling and SACK are lost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MSS_TABLE = (216, 536, 1200, 1220, 1300, 1400, 1440, 1460)
PERIOD = 64.0            # seconds per counter tick
MAX_AGE = 2              # a cookie is good for the current and the previous tick (64-128 s)
TS_OPT_BITS = 6
_WS_NONE = 15


@dataclass(frozen=True, slots=True)
class CookieOptions:
    mss: int
    wscale: int | None
    sack: bool


class SynCookies:
    def __init__(self, secret: bytes) -> None:
        self.key = hashlib.blake2b(b"syncookie" + secret, digest_size=32).digest()

    def _hash(self, four_tuple: bytes, peer_isn: int, t: int) -> int:
        h = hashlib.blake2b(four_tuple + peer_isn.to_bytes(4, "big") + bytes([t]), key=self.key, digest_size=4)
        return int.from_bytes(h.digest(), "big") & 0xFFFFFF

    @staticmethod
    def _tick(now: float) -> int:
        return int(now // PERIOD) & 31

    def make(self, four_tuple: bytes, peer_isn: int, peer_mss: int, now: float) -> int:
        """The ISN for the SYN-ACK."""
        idx = max((i for i, m in enumerate(MSS_TABLE) if m <= peer_mss), default=0)
        t = self._tick(now)
        return (t << 27) | (idx << 24) | self._hash(four_tuple, peer_isn, t)

    def check(self, four_tuple: bytes, peer_isn: int, cookie: int, now: float) -> int | None:
        """The MSS the cookie encodes, or None when it is forged or too old."""
        t = cookie >> 27
        age = (self._tick(now) - t) & 31
        if age >= MAX_AGE:
            return None
        if self._hash(four_tuple, peer_isn, t) != cookie & 0xFFFFFF:
            return None
        return MSS_TABLE[(cookie >> 24) & 7]

    @staticmethod
    def encode_ts(ts_now: int, wscale: int | None, sack: bool) -> int:
        """The SYN-ACK's TSval: ``ts_now`` with the option bits in its low 6 bits, never ahead
        of ``ts_now``. A TSval ahead of the clock becomes the peer's TS.Recent, and PAWS
        (RFC 7323 §5.3) then drops our next segments, whose TSvals are lower; so step one
        64-tick period back when the bits would push it ahead (Linux cookie_init_timestamp)."""
        bits = (_WS_NONE if wscale is None else min(wscale, 14)) | (0x10 if sack else 0)
        ts = ((ts_now & ~((1 << TS_OPT_BITS) - 1)) | bits) & 0xFFFFFFFF
        if 0 < (ts - ts_now) % 2**32 < 2**31:
            ts = (ts - (1 << TS_OPT_BITS)) & 0xFFFFFFFF
        return ts

    @staticmethod
    def decode_ts(ecr: int) -> tuple[int | None, bool]:
        ws = ecr & 0x0F
        return (None if ws == _WS_NONE else ws), bool(ecr & 0x10)
