"""Every parser, fed random and mutated bytes, returns a value or raises WireError: nothing else.

Hypothesis drives it. Its per-example overhead is ~0.6 ms on the 2-vCPU CI machine, so each
example carries a batch of inputs (several random buffers, or a chain of mutations of one valid
packet), and every input goes through every parser. ``test_zz_fuzz_volume`` checks at the end
that at least 100,000 inputs went in.

Beyond "no other exception", whatever parses must survive a re-emit: for a parsed value v,
``parse(emit(v)) == v``.
"""

from __future__ import annotations

import struct
from collections import Counter
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from wire_strategies import (icmp4_typed, icmp6_typed, ipv4_packets, ipv6_packets, tcp_options,
                             tcp_segments)

from synack.wire import WireError
from synack.wire.checksum import checksum
from synack.wire.icmp import (DestUnreachable, Echo, PacketTooBig, ParameterProblem, TimeExceeded,
                              decode_icmp4, decode_icmp6, emit_icmp4, emit_icmp6, parse_icmp4,
                              parse_icmp6, quoted_tcp, quoted_transport)
from synack.wire.ip4 import IPv4Packet, emit_ipv4, parse_ipv4, parse_ipv4_options
from synack.wire.ip6 import IPv6Packet, emit_ipv6, parse_ipv6, walk_ext_headers
from synack.wire.packet import build_tcp_packet, emit_packet, parse_packet, tcp_in
from synack.wire.tcp import (Eol, Flags, Mss, Nop, Sack, SackPermitted, TcpSegment, Timestamps,
                             UnknownOption, WindowScale, emit_tcp, parse_options, parse_tcp)

S4, D4 = IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2")
S6, D6 = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")
FUZZ = dict(deadline=None, database=None, phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

COUNT: Counter = Counter()
DONE: set[str] = set()


# --- the harness ---------------------------------------------------------------------------------

S4P, D4P, S6P, D6P = S4.packed, D4.packed, S6.packed, D6.packed
TCP_PSEUDO = ((None, None), (S4P, D4P), (S6P, D6P))


def _tcp_checks(b: bytes) -> None:
    for src, dst in TCP_PSEUDO:
        try:
            seg = parse_tcp(b, src, dst)
        except WireError:
            continue
        assert parse_tcp(emit_tcp(seg, src, dst), src, dst) == seg


def _ip_checks(b: bytes) -> None:
    # verify=False only when verify=True failed: where both pass they do the same work.
    for verify in (True, False):
        try:
            pkt = parse_packet(b, verify=verify)
        except WireError:
            continue
        assert parse_packet(emit_packet(pkt)) == pkt
        try:
            tcp_in(pkt, verify=verify)
        except WireError:
            pass
        try:
            if isinstance(pkt, IPv4Packet) and pkt.proto == 1:
                m = decode_icmp4(parse_icmp4(pkt.payload, verify=verify))
            elif isinstance(pkt, IPv6Packet) and pkt.next_header == 58:
                m = decode_icmp6(parse_icmp6(pkt.payload, pkt.src, pkt.dst, verify=verify))
            else:
                continue
            if hasattr(m, "original"):
                quoted_tcp(m.original)
        except WireError:
            pass
        return


def _try(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except WireError:
        return None


def _others(b: bytes) -> None:
    if not b or b[0] >> 4 not in (4, 6):    # otherwise parse_packet has called them already
        _try(parse_ipv4, b)
        _try(parse_ipv6, b)
    _try(parse_options, b)
    _try(parse_ipv4_options, b)
    _try(walk_ext_headers, b, b[0] if b else 0, 1, len(b))
    _try(quoted_transport, b)
    _try(quoted_tcp, b)
    msg = _try(parse_icmp4, b) or _try(parse_icmp4, b, verify=False)
    if msg is not None:
        assert parse_icmp4(emit_icmp4(msg)) == msg
        decode_icmp4(msg)
    msg = _try(parse_icmp6, b, S6P, D6P) or _try(parse_icmp6, b, S6P, D6P, verify=False)
    if msg is not None:
        assert parse_icmp6(emit_icmp6(msg, S6P, D6P), S6P, D6P) == msg
        decode_icmp6(msg)


def feed(b: bytes) -> None:
    """Run ``b`` through every parser. Anything but a value or WireError fails the test."""
    COUNT["inputs"] += 1
    try:
        _tcp_checks(b)
        _ip_checks(b)
        _others(b)
    except WireError as e:      # a parser's WireError escaping the harness would be a harness bug
        raise AssertionError(f"unexpected WireError escaped: {e}") from e
    COUNT["parser_calls"] += 13


def fix_ipv4_checksum(b: bytes) -> bytes:
    """Re-seal a mutated IPv4 header so ``verify=True`` parsing reaches the fields behind it."""
    if len(b) < 20 or b[0] >> 4 != 4:
        return b
    hlen = (b[0] & 0x0F) * 4
    if hlen < 20 or hlen > len(b):
        return b
    hdr = b[:10] + b"\x00\x00" + b[12:hlen]
    return hdr[:10] + checksum(hdr).to_bytes(2, "big") + b[12:]


INTERESTING_WORDS = [0, 1, 2, 4, 5, 7, 8, 15, 19, 20, 21, 40, 59, 60, 255, 256, 0x7FFF, 0x8000, 0xFFFF]


def mutate(b: bytes, op: int, pos: int, val: int) -> bytes:
    """One mutation: bit flip, truncation, insertion, deletion, byte overwrite, or an
    interesting 16-bit value written over a (length) field."""
    n = len(b)
    if op == 0 and n:
        i = pos % (8 * n)
        return b[:i // 8] + bytes([b[i // 8] ^ (1 << (i % 8))]) + b[i // 8 + 1:]
    if op == 1:
        return b[:pos % (n + 1)]
    if op == 2:
        i = pos % (n + 1)
        return b[:i] + bytes([val & 0xFF]) * (1 + (val >> 14)) + b[i:]
    if op == 3 and n:
        i = pos % n
        return b[:i] + b[i + 1 + (val & 3):]
    if op == 4 and n:
        i = pos % n
        return b[:i] + bytes([val & 0xFF]) + b[i + 1:]
    if n >= 2:
        i = pos % (n - 1)
        w = INTERESTING_WORDS[val % len(INTERESTING_WORDS)]
        return b[:i] + struct.pack("!H", w) + b[i + 2:]
    return b


# A fixed corpus of valid packets, each protocol and feature at least once.
SEG_SYN = TcpSegment(40000, 80, 2**32 - 3, 0, Flags.SYN, 65535,
                     options=(Mss(1460), SackPermitted(), Timestamps(1, 0), Nop(), WindowScale(7)))
SEG_DATA = TcpSegment(80, 40000, 5, 2**32 - 2, Flags.ACK | Flags.PSH, 501,
                      options=(Nop(), Nop(), Sack(((1, 2), (3, 4))), UnknownOption(254, b"xy"), Eol()),
                      payload=b"GET / HTTP/1.1\r\n\r\n")
_orig4 = build_tcp_packet(S4, D4, SEG_DATA)
_orig6 = build_tcp_packet(S6, D6, SEG_DATA)
_hbh = bytes([0, 0, 1, 4, 0, 0, 0, 0])
_dst = bytes([0, 1, 0x1E, 2, 1, 2, 1, 8]) + bytes(8)
_rt = bytes([0, 1, 4, 0]) + bytes(12)
_frag_atomic = bytes([0, 0, 0, 0, 0, 0, 0, 7])
CORPUS = [
    build_tcp_packet(S4, D4, SEG_SYN),
    _orig4,
    _orig6,
    emit_ipv4(IPv4Packet(S4, D4, 6, emit_tcp(SEG_SYN, S4.packed, D4.packed), options=bytes([0x94, 4, 0, 0, 1, 0x44, 6, 5, 0, 0, 0, 0]))),
    emit_ipv6(IPv6Packet(S6, D6, 6, emit_tcp(SEG_DATA, S6.packed, D6.packed),
                         ext_headers=((0, _hbh), (60, _dst), (43, _rt), (44, _frag_atomic)))),
    emit_ipv6(IPv6Packet(S6, D6, 6, b"12345678" * 3, ext_headers=((44, bytes([0, 0, 0, 0x19, 0, 0, 0, 7])),))),
    emit_ipv4(IPv4Packet(S4, D4, 6, b"12345678", mf=True, frag_offset=1480)),
    emit_ipv4(IPv4Packet(S4, D4, 1, emit_icmp4(DestUnreachable(4, _orig4[:28], 1400)))),
    emit_ipv4(IPv4Packet(S4, D4, 1, emit_icmp4(Echo(1, 2, b"ping")))),
    emit_ipv4(IPv4Packet(S4, D4, 1, emit_icmp4(TimeExceeded(0, _orig4[:60])))),
    emit_ipv6(IPv6Packet(S6, D6, 58, emit_icmp6(PacketTooBig(1280, _orig6), S6, D6))),
    emit_ipv6(IPv6Packet(S6, D6, 58, emit_icmp6(ParameterProblem(1, 40, _orig6[:64]), S6, D6))),
    emit_ipv6(IPv6Packet(S6, D6, 58, emit_icmp6(Echo(7, 8, b"x" * 10, reply=True), S6, D6))),
    emit_tcp(SEG_SYN, S4.packed, D4.packed),
    emit_tcp(SEG_DATA, S6.packed, D6.packed),
    emit_icmp4(DestUnreachable(3, _orig4[:28])),
    _orig4[:28],
    _orig6[:48],
]

def mutations(blob: bytes):
    """Decode 5-octet groups of hypothesis-drawn bytes into (op, pos, val) mutations: one
    binary draw is far cheaper for hypothesis than a list of tuples, and still shrinks."""
    for i in range(0, len(blob) - 4, 5):
        yield blob[i] % 6, int.from_bytes(blob[i + 1:i + 3], "big"), int.from_bytes(blob[i + 3:i + 5], "big")


def run_chain(base: bytes, blob: bytes, fix: bool) -> None:
    """Feed 1-, 2- and 3-fold mutants of ``base`` in turn (restarting from ``base`` every third
    mutation keeps the inputs close to valid, where the interesting checks are)."""
    b = base
    for i, (op, pos, val) in enumerate(mutations(blob)):
        b = mutate(base if i % 3 == 0 else b, op, pos, val)
        if fix:
            b = fix_ipv4_checksum(b)
        feed(b)


# --- the fuzz tests ------------------------------------------------------------------------------
# Sizes: (max_examples x inputs per example) summed over the tests below is >= 100,000.

RANDOM_EXAMPLES, RANDOM_BATCH, RANDOM_MAX = 800, 10, 64
MUTATE_EXAMPLES, MUTATE_CHAIN = 2600, 31
GENERATED_EXAMPLES, GENERATED_CHAIN = 300, 45
FIRST_OCTETS = [0x45, 0x46, 0x4F, 0x60, 0x6F, 0x50, 0x08, 0x80]


def chunks(blob: bytes):
    """Split a fixed-size blob into RANDOM_BATCH inputs of 0..RANDOM_MAX octets; half of them get
    their first octet pinned to a likely IP version/IHL or ICMP type."""
    step = RANDOM_MAX + 2
    for k in range(RANDOM_BATCH):
        c = blob[k * step:(k + 1) * step]
        b = c[2:2 + c[0] % (RANDOM_MAX + 1)]
        if c[1] & 1 and b:
            b = bytes([FIRST_OCTETS[(c[1] >> 1) % len(FIRST_OCTETS)]]) + b[1:]
        yield b


@settings(max_examples=RANDOM_EXAMPLES, **FUZZ)
@given(st.binary(min_size=RANDOM_BATCH * (RANDOM_MAX + 2), max_size=RANDOM_BATCH * (RANDOM_MAX + 2)))
def test_random_bytes(blob):
    for b in chunks(blob):
        feed(b)
    DONE.add("random")


@settings(max_examples=MUTATE_EXAMPLES, **FUZZ)
@given(st.sampled_from(CORPUS), st.binary(min_size=5 * MUTATE_CHAIN, max_size=5 * MUTATE_CHAIN),
       st.booleans())
def test_mutated_corpus(base, blob, fix):
    run_chain(base, blob, fix)
    DONE.add("corpus")


def _generated_packet():
    tcp4 = st.builds(lambda s: build_tcp_packet(S4, D4, s), tcp_segments)
    tcp6 = st.builds(lambda s: build_tcp_packet(S6, D6, s), tcp_segments)
    v4 = ipv4_packets.map(emit_ipv4)
    v6 = ipv6_packets().map(emit_ipv6)
    i4 = icmp4_typed.map(lambda m: emit_ipv4(IPv4Packet(S4, D4, 1, emit_icmp4(m))))
    i6 = icmp6_typed.map(lambda m: emit_ipv6(IPv6Packet(S6, D6, 58, emit_icmp6(m, S6, D6))))
    opts = tcp_options().map(lambda o: emit_tcp(TcpSegment(1, 2, 3, 4, Flags.SYN, 5, options=o)))
    return st.one_of(tcp4, tcp6, v4, v6, i4, i6, opts)


@settings(max_examples=GENERATED_EXAMPLES, **FUZZ)
@given(_generated_packet(), st.binary(min_size=5 * GENERATED_CHAIN, max_size=5 * GENERATED_CHAIN),
       st.booleans())
def test_mutated_generated(base, blob, fix):
    feed(base)
    run_chain(base, blob, fix)
    DONE.add("generated")


@pytest.mark.parametrize("base", CORPUS[:3])
def test_every_truncation_and_bit_flip(base):
    # Exhaustive over the first packets: each prefix, and each single-bit flip of the headers.
    for n in range(len(base) + 1):
        feed(base[:n])
    for i in range(min(len(base), 80) * 8):
        feed(fix_ipv4_checksum(mutate(base, 0, i, 0)))


def test_64k_packets_mutated():
    big4 = build_tcp_packet(S4, D4, TcpSegment(1, 2, 3, 4, Flags.ACK, 5, payload=bytes(65535 - 40)))
    big6 = build_tcp_packet(S6, D6, TcpSegment(1, 2, 3, 4, Flags.ACK, 5, payload=bytes(65535 - 20)))
    for big in (big4, big6):
        feed(big)
        for op, pos in ((0, 17), (0, 33), (1, 65000), (5, 2), (5, 4), (2, 30), (3, 0)):
            feed(fix_ipv4_checksum(mutate(big, op, pos, 0xFFFF)))


def test_zz_fuzz_volume():
    planned = (RANDOM_EXAMPLES * RANDOM_BATCH + MUTATE_EXAMPLES * MUTATE_CHAIN
               + GENERATED_EXAMPLES * (GENERATED_CHAIN + 1))
    assert planned >= 100_000
    if DONE != {"random", "corpus", "generated"}:
        pytest.skip("only part of test_fuzz.py ran")
    print(f"\nfuzz: {COUNT['inputs']} inputs, ~{COUNT['parser_calls']} parser calls")
    assert COUNT["inputs"] >= 100_000
