"""Sequence-number arithmetic modulo 2**32 (RFC 9293 §3.4).

All comparisons of TCP sequence numbers go through these helpers: Python's ``<`` on raw
numbers goes silently wrong once the space wraps.
"""

MOD = 1 << 32
HALF = 1 << 31
MASK = MOD - 1


def seq_add(a: int, n: int) -> int:
    return (a + n) & MASK


def seq_sub(a: int, b: int) -> int:
    """Signed distance a - b, in [-2**31, 2**31)."""
    d = (a - b) & MASK
    return d - MOD if d >= HALF else d


def seq_lt(a: int, b: int) -> bool:
    return 0 < ((b - a) & MASK) < HALF


def seq_le(a: int, b: int) -> bool:
    return ((b - a) & MASK) < HALF


def seq_gt(a: int, b: int) -> bool:
    return seq_lt(b, a)


def seq_ge(a: int, b: int) -> bool:
    return seq_le(b, a)


def seq_max(a: int, b: int) -> int:
    return b if seq_lt(a, b) else a


def seq_min(a: int, b: int) -> int:
    return a if seq_lt(a, b) else b


def seq_in(x: int, lo: int, hi: int) -> bool:
    """lo <= x < hi in sequence space (an empty range when lo == hi)."""
    return ((x - lo) & MASK) < ((hi - lo) & MASK)
