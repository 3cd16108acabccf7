"""The stack's shortcuts equal the general tests they stand for."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

from synack.stack.host import _unicast, _unicast4


def test_unicast4_is_unicast():
    rng = random.Random(1)
    cands = [bytes([a, b, c, d]) for a in range(256) for (b, c, d) in ((0, 0, 0), (255, 255, 255), (1, 2, 3))]
    cands += [rng.randbytes(4) for _ in range(5000)]
    for p in cands:
        assert _unicast4(p) == _unicast(IPv4Address(p)), p
