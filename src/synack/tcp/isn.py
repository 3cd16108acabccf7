"""Initial sequence numbers: ISN = M + F(4-tuple, secret) (RFC 6528 §3; RFC 9293 §3.4.1).

M is the "clock" RFC 9293 §3.4.1 requires (MUST-8): a 32-bit counter ticking every 4 µs, here
``int(now * 250_000)`` from the caller's ``now`` (sans-IO: no clock is read in this module).
F is a keyed hash of the connection's 4-tuple (SHLD-1), keyed BLAKE2b rather than RFC 6528's MD5
(§3 invites "functions with stronger security properties"). Because the key is secret, F is not
computable from the outside (MUST-9).

The caller chooses the secret (tests pass a fixed one and get fixed ISNs). RFC 6528 §3: "Key
lengths of 128 bits should be adequate"; §4: random secrets "MUST be chosen in accordance with
the recommendations given in [RFC4086]" (e.g. ``secrets.token_bytes(16)`` in the caller).
"""

from __future__ import annotations

import hashlib
import struct

TICKS_PER_SECOND = 250_000          # RFC 9293 §3.4.1: "increments ... once every roughly 4 microseconds"
MOD = 1 << 32
# The hash input's layouts by address lengths (4 or 16): length, address, port, twice, packed in
# one call (the same bytes as the to_bytes() pieces below, one call instead of a dozen)
_LAYOUTS = {(a, b): struct.Struct(f">B{a}sHB{b}sH") for a in (4, 16) for b in (4, 16)}


class IsnGenerator:
    """ISN generator for one host (or one secret epoch).

    >>> g = IsnGenerator(b"0123456789abcdef")
    >>> a = g.isn(0.0, bytes(4), 1, bytes(4), 2)
    >>> (g.isn(1.0, bytes(4), 1, bytes(4), 2) - a) % 2**32
    250000
    """

    __slots__ = ("_secret", "_keyed")

    def __init__(self, secret: bytes) -> None:
        # An empty key makes F an unkeyed hash anyone can compute: RFC 9293 §3.4.1, MUST-9.
        if not secret:
            raise ValueError("ISN secret must not be empty (RFC 9293 §3.4.1, MUST-9)")
        if len(secret) > hashlib.blake2b.MAX_KEY_SIZE:
            raise ValueError(f"ISN secret longer than {hashlib.blake2b.MAX_KEY_SIZE} bytes")
        self._secret = bytes(secret)
        # The keyed state after the key block: each ISN copies it rather than keying anew.
        self._keyed = hashlib.blake2b(digest_size=4, key=self._secret)

    def isn_parts(self, now: float, local_addr: bytes, local_port: int,
                  remote_addr: bytes, remote_port: int) -> tuple[int, int]:
        """Return ``(M, F)``: the 4 µs clock reading and the keyed hash, each in [0, 2**32).

        ``now`` is in seconds (any monotonic origin); addresses are packed (4 or 16 bytes).
        """
        m = int(now * TICKS_PER_SECOND) % MOD
        h = self._keyed.copy()
        # Length-prefix the addresses so (v4, v6) mixes cannot collide by concatenation (one
        # update of the whole input hashes as the four parts one after the other would).
        la, ra = len(local_addr), len(remote_addr)
        layout = _LAYOUTS.get((la, ra))
        if layout is not None and local_addr.__class__ is bytes and remote_addr.__class__ is bytes:
            h.update(layout.pack(la, local_addr, local_port & 0xFFFF, ra, remote_addr, remote_port & 0xFFFF))
        else:
            h.update(la.to_bytes(1, "big") + bytes(local_addr)
                     + (local_port & 0xFFFF).to_bytes(2, "big")
                     + ra.to_bytes(1, "big") + bytes(remote_addr)
                     + (remote_port & 0xFFFF).to_bytes(2, "big"))
        f = int.from_bytes(h.digest(), "big")
        return m, f

    def isn(self, now: float, local_addr: bytes, local_port: int,
            remote_addr: bytes, remote_port: int) -> int:
        """ISN = (M + F) mod 2**32 (RFC 6528 §3, RFC 9293 §3.4.1 SHLD-1)."""
        m, f = self.isn_parts(now, local_addr, local_port, remote_addr, remote_port)
        return (m + f) % MOD

    def __repr__(self) -> str:               # never print the secret
        return "IsnGenerator(secret=<hidden>)"
