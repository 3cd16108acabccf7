"""ISN = (M + F) mod 2**32, RFC 6528 §3 / RFC 9293 §3.4.1."""

import ipaddress

import pytest
from hypothesis import given, strategies as st

from synack.tcp.isn import IsnGenerator

SECRET = bytes(range(16))
A = ipaddress.ip_address("192.0.2.1").packed
B = ipaddress.ip_address("198.51.100.7").packed
A6 = ipaddress.ip_address("2001:db8::1").packed
B6 = ipaddress.ip_address("2001:db8::2").packed


def test_one_second_later_is_250000_ticks_later():
    g = IsnGenerator(SECRET)
    for now in (0.0, 12.5, 1234.000004, 17179.8):        # 17179.8 s: M wraps within the second
        a = g.isn(now, A, 40000, B, 80)
        b = g.isn(now + 1.0, A, 40000, B, 80)
        assert (b - a) % 2**32 == pytest.approx(250_000, abs=1)


def test_the_clock_wraps_modulo_2_32():
    g = IsnGenerator(SECRET)
    period = 2**32 / 250_000                              # ~4.77 hours (RFC 9293 §3.4.1: ~4.55 h)
    m, _ = g.isn_parts(period + 1.0, A, 1, B, 2)
    assert m == 250_000
    assert 0 <= g.isn(10 * period, A, 1, B, 2) < 2**32


def test_parts_add_up():
    g = IsnGenerator(SECRET)
    m, f = g.isn_parts(3.25, A, 1234, B, 443)
    assert m == int(3.25 * 250_000)
    assert 0 <= f < 2**32
    assert g.isn(3.25, A, 1234, B, 443) == (m + f) % 2**32


def test_deterministic_for_a_fixed_secret():
    assert IsnGenerator(SECRET).isn(7.0, A, 1, B, 2) == IsnGenerator(SECRET).isn(7.0, A, 1, B, 2)
    assert IsnGenerator(SECRET).isn(7.0, A, 1, B, 2) != IsnGenerator(b"other").isn(7.0, A, 1, B, 2)


def test_different_four_tuples_are_unrelated():
    g = IsnGenerator(SECRET)
    isns = [g.isn(5.0, A, port, B, 80) for port in range(40000, 40256)]
    assert len(set(isns)) == len(isns)
    steps = {(b - a) % 2**32 for a, b in zip(isns, isns[1:])}
    assert len(steps) > 250                  # no constant stride an attacker could extrapolate
    # Swapping ends, changing the address or the family all give new values too.
    variants = {g.isn(5.0, A, 1, B, 2), g.isn(5.0, B, 2, A, 1), g.isn(5.0, A, 2, B, 1),
                g.isn(5.0, B, 1, B, 2), g.isn(5.0, A6, 1, B6, 2), g.isn(5.0, B6, 1, A6, 2)}
    assert len(variants) == 6


@given(st.floats(0, 1e6), st.integers(0, 65535), st.integers(0, 65535))
def test_always_a_32_bit_number(now, lport, rport):
    assert 0 <= IsnGenerator(SECRET).isn(now, A6, lport, B6, rport) < 2**32


def test_secret_is_required_and_hidden():
    with pytest.raises(ValueError):
        IsnGenerator(b"")                    # an unkeyed F is computable outside (MUST-9)
    with pytest.raises(ValueError):
        IsnGenerator(bytes(65))
    assert SECRET.hex() not in repr(IsnGenerator(SECRET))


def _f_keyed_anew(secret: bytes, la: bytes, lp: int, ra: bytes, rp: int) -> int:
    """F as first written: a BLAKE2b keyed for each ISN, the tuple hashed in four updates."""
    import hashlib
    h = hashlib.blake2b(digest_size=4, key=secret)
    h.update(len(la).to_bytes(1, "big") + la)
    h.update(lp.to_bytes(2, "big"))
    h.update(len(ra).to_bytes(1, "big") + ra)
    h.update(rp.to_bytes(2, "big"))
    return int.from_bytes(h.digest(), "big")


@given(st.binary(min_size=1, max_size=64), st.sampled_from([A, B, A6, B6]), st.integers(0, 65535),
       st.sampled_from([A, B, A6, B6]), st.integers(0, 65535))
def test_the_copied_keyed_state_gives_the_same_f(secret, la, lp, ra, rp):
    # IsnGenerator copies one keyed state per ISN and hashes the tuple in one update: the same F
    g = IsnGenerator(secret)
    assert g.isn_parts(1.0, la, lp, ra, rp)[1] == _f_keyed_anew(secret, la, lp, ra, rp)
    assert g.isn_parts(2.0, la, lp, ra, rp)[1] == _f_keyed_anew(secret, la, lp, ra, rp)   # state not consumed
