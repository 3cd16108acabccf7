"""Flags' fast operators give exactly what enum.IntFlag's would (values and type)."""

import enum

from synack.wire.tcp import Flags


class Reference(enum.IntFlag):
    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


def test_flag_operators_match_intflag():
    others = list(range(256)) + [-3, -1, 0x1FF, -256]
    for a in range(256):
        fa, ra = Flags(a), Reference(a)
        assert int(~fa) == int(~ra) and type(~fa) is Flags
        for b in others:
            fb = Flags(b) if 0 <= b < 256 else b
            rb = Reference(b) if 0 <= b < 256 else b
            for x, y in ((fa & fb, ra & rb), (fa | fb, ra | rb), (fa ^ fb, ra ^ rb),
                         (b & fa, b & ra), (b | fa, b | ra), (b ^ fa, b ^ ra)):
                assert int(x) == int(y)
                assert (type(x) is Flags) == (type(y) is Reference)
