"""Whole scripts in the style of the public Linux (Google) and FreeBSD (nplab) corpora."""

from __future__ import annotations

from synack.pdrill import ast as A
from synack.pdrill.parser import parse_script

AT, RANGE, BLOCKING, ANY_TIME = A.TimeKind.AT, A.TimeKind.RANGE, A.TimeKind.BLOCKING, A.TimeKind.ANY
S, I, W = A.Symbol, A.Int, A.Wildcard()


def shape(script: A.Script) -> list[tuple[int, str]]:
    """Each event as (line, short description): enough to see the script was cut up right."""
    out = []
    for ev in script.events:
        b = ev.body
        if isinstance(b, A.Syscall):
            what = b.name
        elif isinstance(b, A.Packet):
            what = f"{b.direction} {b.flags}"
        elif isinstance(b, A.IcmpPacket):
            what = f"{b.direction} icmp {b.kind}"
        elif isinstance(b, A.Shell):
            what = "`" + b.command.split()[0]
        else:
            what = "%{}%"
        out.append((ev.line, what))
    return out


LINUX_PASSIVE = """\
// Passive open, a request and a response, then a close started by the server.
`../common/defaults.sh`

// Initialize a server socket.
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0

   +0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
 +.01 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
   +0 %{ assert tcpi_state == TCP_ESTABLISHED, tcpi_state }%

// The client sends a request; the server ACKs it (quick-ACK mode) and reads it.
   +0 < P. 1:101(100) ack 1 win 257
   +0 > . 1:1(0) ack 101
   +0 read(4, ..., 1000) = 100

// The server answers with 2000 bytes: both segments fit in the initial window.
   +0 write(4, ..., 2000) = 2000
   +0 > . 1:1001(1000) ack 101
   +0 > P. 1001:2001(1000) ack 101
 +.01 < . 101:101(0) ack 2001 win 257 <sack 1:11,nop,nop>   // a (bogus) D-SACK
   +0 %{
assert tcpi_unacked == 0, tcpi_unacked
assert tcpi_snd_cwnd >= 10
}%

// The server closes; the client closes too.
   +0 close(4) = 0
   +0 > F. 2001:2001(0) ack 101
 +.01 < F. 101:101(0) ack 2002 win 257
   +0 > . 2002:2002(0) ack 102
"""


def test_linux_passive_open_data_close():
    s = parse_script(LINUX_PASSIVE, path="passive.pkt")
    assert s.options == {} and s.init_command == A.Shell("../common/defaults.sh")
    assert shape(s) == [
        (5, "socket"), (6, "setsockopt"), (7, "bind"), (8, "listen"),
        (10, "< S"), (11, "> S."), (12, "< ."), (13, "accept"), (14, "%{}%"),
        (17, "< P."), (18, "> ."), (19, "read"),
        (22, "write"), (23, "> ."), (24, "> P."), (25, "< ."), (26, "%{}%"),
        (32, "close"), (33, "> F."), (34, "< F."), (35, "> .")]
    ev = s.events
    assert ev[4] == A.Event(10, A.Time(AT, 0.0, relative=True), A.Packet(
        "<", "S", 0, 0, 0, win=32792,
        options=(A.Mss(1000), A.SackOK(), A.Nop(), A.Nop(), A.Nop(), A.WScale(7))))
    assert ev[6].time == A.Time(AT, 0.01, relative=True)
    assert ev[15].body.options == (A.Sack(((1, 11),)), A.Nop(), A.Nop())
    assert ev[16].body.source.strip().splitlines() == [
        "assert tcpi_unacked == 0, tcpi_unacked", "assert tcpi_snd_cwnd >= 10"]
    assert ev[-1].body == A.Packet(">", ".", 2002, 2002, 0, ack=102)


LINUX_ACTIVE = """\
// Non-blocking connect: EINPROGRESS, poll until writable, exchange data.
--tolerance_usecs=10000
`../common/defaults.sh`

    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)
   +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0

   +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
   +0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>
   +0 poll([{fd=3, events=POLLOUT, revents=0}], 1, 0) = 0
 +.05 < S. 0:0(0) ack 1 win 5792 <mss 1460,sackOK,TS val 700 ecr 100,nop,wscale 7>
   +0 > . 1:1(0) ack 1 <nop,nop,TS val 105 ecr 700>
   +0 poll([{fd=3, events=POLLOUT, revents=POLLOUT}], 1, 0) = 1
   +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0

   +0 sendmsg(3, {msg_name(...)=...,
                  msg_iov(1)=[{..., 1000}],
                  msg_flags=0}, 0) = 1000
   +0 > P. 1:1001(1000) ack 1 <nop,nop,TS val 105 ecr 700>
 +.05 < . 1:1(0) ack 1001 win 257 <nop,nop,TS val 750 ecr 105>
   +0 read(3, ..., 1000) = -1 EAGAIN (Resource temporarily unavailable)

// The reply arrives while poll() waits.
   +0...0.02 poll([{fd=3, events=POLLIN, revents=POLLIN}], 1, 1000) = 1
 +.02 < P. 1:11(10) ack 1001 win 257 <nop,nop,TS val 760 ecr 105>
   +0 read(3, ..., 1000) = 10
0.14~0.2 > . 1001:1001(0) ack 11 <...>
    * > F. 1001:1001(0) ack 11 <...>
   +0 close(3) = 0
"""


def test_linux_active_open_einprogress_and_poll():
    s = parse_script(LINUX_ACTIVE, path="active.pkt")
    assert s.options == {"tolerance_usecs": "10000"}
    assert shape(s) == [
        (5, "socket"), (6, "fcntl"), (7, "fcntl"), (9, "connect"), (10, "> S"), (11, "poll"),
        (12, "< S."), (13, "> ."), (14, "poll"), (15, "getsockopt"), (17, "sendmsg"),
        (20, "> P."), (21, "< ."), (22, "read"), (25, "poll"), (26, "< P."), (27, "read"),
        (28, "> ."), (29, "> F."), (30, "close")]
    ev = s.events
    assert ev[3].body == A.Syscall("connect", (I(3), W, W), I(-1), "EINPROGRESS",
                                   "Operation now in progress")
    assert ev[4].body.options == (A.Mss(1460), A.SackOK(), A.Timestamp(100, 0), A.Nop(),
                                  A.WScale(8))
    assert ev[10].body.args[1].get("msg_iov") == A.List(
        (A.Struct((A.Field(None, W), A.Field(None, I(1000)))),))
    assert ev[13].body.errno == "EAGAIN"
    assert ev[14].time == A.Time(BLOCKING, 0.0, 0.02, relative=True)
    assert ev[17].time == A.Time(RANGE, 0.14, 0.2)
    assert ev[18].time == A.Time(ANY_TIME) and ev[18].body.options is A.ANY


FREEBSD_RST = """\
/*-
 * Copyright (c) 2018 Example Author
 * All rights reserved.
 *
 * Redistribution and use in source and binary forms, with or without
 * modification, are permitted provided that the conditions are met.
 */

/*
 * An in-window RST with the wrong sequence number: RFC 5961 section 3
 * (insecure_rst=0) answers with a challenge ACK, RFC 793 resets.
 */

--ip_version=ipv4

 0.00 `sysctl -w net.inet.tcp.sack.enable=1`
+0.00 `sysctl -w net.inet.tcp.rfc1323=0`
+0.00 `sysctl -w net.inet.tcp.insecure_rst=0`
#ifdef FreeBSD
+0.00 `sysctl -w net.inet.tcp.functions_default=freebsd`
#endif
+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0.00 bind(3, ..., ...) = 0
+0.00 listen(3, 1) = 0
+0.00 < S 0:0(0) win 65535 <mss 1460,sackOK,eol,eol>
+0.00 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>
+0.05 < . 1:1(0) ack 1 win 65535
+0.00 accept(3, ..., ...) = 4
+0.00 close(3) = 0
+0.00 `sockstat -4 -P tcp -s -p 8080 | grep -c ESTABLISHED | grep 1`
// Send an in-window RST with a sequence number that is not the expected one.
+0.00 < R 1000:1000(0) win 0
#ifdef STANDARD
+0.00 > . 1:1(0) ack 1 win 65535
+0.00 `sockstat -4 -P tcp -s -p 8080 | grep -c ESTABLISHED | grep 1`
#endif
#ifdef Linux
+0.00 > . 1:1(0) ack 1 win 502
#endif
// The exact RST closes the connection.
+0.00 < R 1:1(0) win 0
+0.00 `sockstat -4 -P tcp -s -p 8080 | grep -c ESTABLISHED | grep 0`
+0.00 close(4) = 0
#ifdef FreeBSD
+0.00 `tcpdrop 192.168.0.1 8080 192.0.2.1 54321`
#endif
"""


def test_freebsd_script_with_ifdefs_sysctls_and_sockstat():
    s = parse_script(FREEBSD_RST, path="rst-wrong-seq.pkt")
    assert s.options == {"ip_version": "ipv4"} and s.init_command is None
    assert shape(s) == [
        (16, "`sysctl"), (17, "`sysctl"), (18, "`sysctl"),
        (22, "socket"), (23, "setsockopt"), (24, "bind"), (25, "listen"), (26, "< S"),
        (27, "> S."), (28, "< ."), (29, "accept"), (30, "close"), (31, "`sockstat"),
        (33, "< R"), (35, "> ."), (36, "`sockstat"),
        (42, "< R"), (43, "`sockstat"), (44, "close")]
    ev = s.events
    assert ev[0] == A.Event(16, A.Time(AT, 0.0), A.Shell("sysctl -w net.inet.tcp.sack.enable=1"))
    assert ev[7].body == A.Packet("<", "S", 0, 0, 0, win=65535,
                                  options=(A.Mss(1460), A.SackOK(), A.Eol(), A.Eol()))
    assert ev[12].body.command == "sockstat -4 -P tcp -s -p 8080 | grep -c ESTABLISHED | grep 1"
    assert ev[13].body == A.Packet("<", "R", 1000, 1000, 0, win=0)


def test_freebsd_script_as_freebsd_sees_it():
    s = parse_script(FREEBSD_RST, defines={"FreeBSD"})
    lines = [e.line for e in s.events]
    assert 20 in lines and 46 in lines          # the FreeBSD blocks
    assert 35 not in lines and 39 not in lines  # neither STANDARD nor Linux


ICMP_AND_TIMEOUTS = """\
--tolerance_usecs=50000
--mtu=1500
// A connect that times out, then a connection that learns a smaller path MTU.
0 `sysctl -q net.ipv4.tcp_syn_retries=2`

0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
0.000...7.000 connect(3, ..., ...) = -1 ETIMEDOUT (Connection timed out)
0.000 > S 0:0(0) <...>
1.000 > S 0:0(0) <...>
3.000 > S 0:0(0) <...>

7.100 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4
+0 setsockopt(4, SOL_TCP, TCP_NODELAY, [1], 4) = 0
+0 setsockopt(4, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0
+0 connect(4, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>
+.01 < S. 0:0(0) ack 1 win 65535 <mss 1460,nop,wscale 6>
+0 > . 1:1(0) ack 1
+0 write(4, ..., 2920) = 2920
+0 > . 1:1461(1460) ack 1
+0 > P. 1461:2921(1460) ack 1
+.01 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]
+0 > . 1:1161(1160) ack 1
+0 < [ect0] (tos 0x2) . 1:1(0) ack 2921 win 1024
+0 < icmp unreachable port_unreachable [2921:2921(0)]
+0 getsockopt(4, SOL_SOCKET, SO_ERROR, [0], [4]) = 0
+0 close(4) = 0
+0 > R. 2921:2921(0) ack 1
"""


def test_timeouts_icmp_and_linger():
    s = parse_script(ICMP_AND_TIMEOUTS)
    assert s.options == {"tolerance_usecs": "50000", "mtu": "1500"}
    ev = s.events
    assert len(ev) == 23 and [e.line for e in ev[:5]] == [4, 6, 7, 8, 9]
    assert ev[2].time == A.Time(BLOCKING, 0.0, 7.0)
    assert ev[2].body.errno == "ETIMEDOUT" and ev[2].body.note == "Connection timed out"
    assert ev[4].time == A.Time(AT, 1.0) and ev[4].body.options is A.ANY
    assert ev[16] == A.Event(22, A.Time(AT, 0.01, relative=True), A.IcmpPacket(
        "<", "unreachable", "frag_needed", 1200, (1, 1461, 1460)))
    assert ev[18].body.ipinfo == A.IpInfo(tos=2, ecn="ect0")
    assert ev[19].body.quoted == (2921, 2921, 0)
    assert ev[22].body == A.Packet(">", "R.", 2921, 2921, 0, ack=1)
