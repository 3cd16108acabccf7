"""The packetdrill parser, one construct at a time: text in, AST (or ScriptError at a line) out."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synack.pdrill import ast as A
from synack.pdrill.errors import ScriptError
from synack.pdrill.parser import parse_file, parse_script


def events(text: str, **kw) -> tuple[A.Event, ...]:
    return parse_script(text, **kw).events


def body(text: str) -> A.Body:
    """The body of a script holding one event at time 0."""
    (ev,) = events("0 " + text)
    return ev.body


def error(text: str, **kw) -> ScriptError:
    with pytest.raises(ScriptError) as info:
        parse_script(text, path="t.pkt", **kw)
    return info.value


TCP3 = (A.Int(3),)
SYN = A.Packet("<", "S", 0, 0, 0, win=65535)


# --- file structure: comments, whitespace, options ------------------------------------------------

def test_line_comment_and_trailing_comment():
    (ev,) = events("// header\n0 close(3) = 0   // trailing\n// end")
    assert ev == A.Event(2, A.Time(A.TimeKind.AT, 0.0), A.Syscall("close", TCP3, A.Int(0)))


def test_block_comment_spanning_lines_and_inside_an_event():
    evs = events("/* a\n   b */ 0 close(3) = 0\n+0 close(/* fd */ 4) = 0 /* x\n */")
    assert [e.line for e in evs] == [2, 3]
    assert evs[1].body.args == (A.Int(4),)


def test_free_whitespace_inside_events():
    assert body("write (3 ,  ... ,\t10 )  =  10") == A.Syscall(
        "write", (A.Int(3), A.Wildcard(), A.Int(10)), A.Int(10))
    assert body("< S 0:0(0) win 1 < nop , nop >").options == (A.Nop(), A.Nop())


def test_event_spanning_lines_keeps_the_line_of_its_time():
    evs = events("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
                 "+0 setsockopt(3, SOL_SOCKET, SO_LINGER,\n"
                 "              {l_onoff=1,\n"
                 "               l_linger=0}, 8) = 0\n"
                 "+0 close(3) = 0\n")
    assert [e.line for e in evs] == [1, 2, 5]


def test_option_lines():
    s = parse_script("--tolerance_usecs=10000\n--ip_version ipv4\n--relaxed-options\n"
                     "--mtu=1500 --local_ip=192.168.0.1  // comment\n0 close(3) = 0")
    assert s.options == {"tolerance_usecs": "10000", "ip_version": "ipv4", "relaxed-options": "",
                         "mtu": "1500", "local_ip": "192.168.0.1"}


def test_options_override_wins():
    s = parse_script("--mtu=1500\n--ip_version=ipv4\n",
                     options_override={"mtu": "9000", "tolerance_usecs": "5000"})
    assert s.options == {"mtu": "9000", "ip_version": "ipv4", "tolerance_usecs": "5000"}


def test_option_after_first_event_is_an_error():
    e = error("0 close(3) = 0\n--mtu=1500\n")
    assert (e.line, e.column) == (2, 1) and "before the first event" in e.message


def test_untimed_init_command():
    s = parse_script("--mtu=1500\n`../common/defaults.sh`\n0 close(3) = 0\n")
    assert s.init_command == A.Shell("../common/defaults.sh")
    assert len(s.events) == 1


def test_empty_script():
    s = parse_script("// nothing\n\n", path="x.pkt")
    assert s == A.Script({}, (), "x.pkt", None)


def test_crlf_line_ends_and_bom():
    evs = events("\ufeff0 close(3) = 0\r\n+0 close(4) = 0\r\n")
    assert [e.line for e in evs] == [1, 2]


# --- #ifdef (nplab) -------------------------------------------------------------------------------

IFDEF = """\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
#ifdef FreeBSD
+0 `tcpdrop 1.2.3.4 80 5.6.7.8 9000`
#endif
#ifdef Windows
a skipped block is never tokenized: {{{ ^^^ "
#endif
#ifdef STANDARD
+0 close(3) = 0
#endif
#ifdef Linux
+0 close(99) = 0
#else
+0 close(5) = 0
#endif // Linux
"""


def test_ifdef_standard_defined_freebsd_and_linux_not():
    assert [(e.line, e.body.args) for e in events(IFDEF)] == [
        (1, (A.Wildcard(), A.Symbol("SOCK_STREAM"), A.Symbol("IPPROTO_TCP"))),
        (9, (A.Int(3),)), (14, (A.Int(5),))]


def test_ifdef_with_other_defines():
    evs = events(IFDEF, defines={"Linux"})
    assert [e.line for e in evs] == [1, 12]
    assert events(IFDEF, defines={"FreeBSD"})[1].body == A.Shell("tcpdrop 1.2.3.4 80 5.6.7.8 9000")


def test_ifndef_and_nesting():
    text = "#ifndef FreeBSD\n0 close(3) = 0\n#ifdef X\n0 close(4) = 0\n#endif\n#endif\n"
    assert [e.line for e in events(text)] == [2]
    assert [e.line for e in events(text, defines={"X"})] == [2, 4]


def test_ifdef_errors_point_at_the_line():
    e = error("0 close(3) = 0\n#ifdef FreeBSD\n0 close(4) = 0\n")
    assert e.line == 2 and "without #endif" in e.message
    e = error("0 close(3) = 0\n#ifdef STANDARD\n0 close(4) = 0\n")
    assert e.line == 2 and "without #endif" in e.message
    e = error("0 close(3) = 0\n\n#endif\n")
    assert e.line == 3 and "#endif without #ifdef" in e.message
    e = error("#define FOO 1\n")
    assert e.line == 1 and "unknown preprocessor directive #define" in e.message
    e = error("#ifdef\n#endif\n")
    assert "needs a name" in e.message
    e = error("0 close(3) = 0 # not at line start\n")
    assert e.message == "unexpected character '#'"


# --- shell lines and %{ }% ------------------------------------------------------------------------

def test_shell_line():
    assert body("`sysctl -w net.inet.tcp.delacktime=40`") == A.Shell(
        "sysctl -w net.inet.tcp.delacktime=40")


def test_shell_line_with_pipeline_and_comment_like_text():
    cmd = "sockstat -4 -P tcp -s -p 8080 | grep 8080 | grep -c ESTABLISHED | grep 1 // x /* y"
    assert body(f"`{cmd}`") == A.Shell(cmd)


def test_shell_spanning_lines():
    evs = events("0 `sysctl -w net.ipv4.tcp_sack=1;\n   sysctl -w net.ipv4.tcp_ecn=0`\n"
                 "+0 close(3) = 0")
    assert evs[0].body == A.Shell("sysctl -w net.ipv4.tcp_sack=1;\n   sysctl -w net.ipv4.tcp_ecn=0")
    assert evs[1].line == 3


def test_code_block_one_line():
    assert body("%{ assert tcpi_state == TCPI_ESTABLISHED }%") == A.Code(
        " assert tcpi_state == TCPI_ESTABLISHED ")


def test_code_block_multi_line_keeps_python_comments_and_floor_division():
    src = "\nassert tcpi_rto // 1000 == 200, tcpi_rto  # ms\n/* not a comment */\n"
    evs = events(f"0 %{{{src}}}%\n+0 close(3) = 0\n")
    assert evs[0].body == A.Code(src)
    assert evs[1].line == 5


# --- time -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, time", [
    ("1.5", A.Time(A.TimeKind.AT, 1.5)),
    ("0", A.Time(A.TimeKind.AT, 0.0)),
    ("+0.1", A.Time(A.TimeKind.AT, 0.1, relative=True)),
    ("+.1", A.Time(A.TimeKind.AT, 0.1, relative=True)),
    ("*", A.Time(A.TimeKind.ANY)),
    ("0.1~0.2", A.Time(A.TimeKind.RANGE, 0.1, 0.2)),
    ("+0~+0.3", A.Time(A.TimeKind.RANGE, 0.0, 0.3, relative=True)),
    ("+0 ~ 0.3", A.Time(A.TimeKind.RANGE, 0.0, 0.3, relative=True)),
    ("1.0...6.0", A.Time(A.TimeKind.BLOCKING, 1.0, 6.0)),
    ("1...6", A.Time(A.TimeKind.BLOCKING, 1.0, 6.0)),
    ("+0...0.1", A.Time(A.TimeKind.BLOCKING, 0.0, 0.1, relative=True)),
])
def test_time_forms(text, time):
    (ev,) = events(f"{text} read(4, ..., 10) = 10")
    assert ev.time == time


@pytest.mark.parametrize("text, message", [
    ("0.2~0.1 close(3) = 0", "time range ends (0.1) before it starts (0.2)"),
    ("1...0.5 close(3) = 0", "time range ends (0.5) before it starts (1)"),
    ("0~+1 close(3) = 0", "relative ('+') but its start is not"),
    ("0x10 close(3) = 0", "decimal number of seconds"),
    ("0...1 < S 0:0(0) win 1", "only allowed on a system call"),
    ("close(3) = 0", "expected an event time (such as 0.1, +0.1 or *), found word 'close'"),
    ("0", "found end of script"),
    ("+ close(3) = 0", "expected a time in seconds"),
])
def test_time_errors(text, message):
    e = error(text)
    assert e.line == 1 and message in e.message


# --- system calls ---------------------------------------------------------------------------------

S, I, W = A.Symbol, A.Int, A.Wildcard()


@pytest.mark.parametrize("text, call", [
    ("socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
     A.Syscall("socket", (W, S("SOCK_STREAM"), S("IPPROTO_TCP")), I(3))),
    ("setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0",
     A.Syscall("setsockopt", (I(3), S("SOL_SOCKET"), S("SO_REUSEADDR"), A.List((I(1),)), I(4)),
               I(0))),
    ("setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0",
     A.Syscall("setsockopt", (I(3), S("SOL_SOCKET"), S("SO_LINGER"),
                              A.Struct((A.Field("l_onoff", I(1)), A.Field("l_linger", I(0)))),
                              I(8)), I(0))),
    ("getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0",
     A.Syscall("getsockopt", (I(3), S("SOL_SOCKET"), S("SO_ERROR"), A.List((S("ECONNREFUSED"),)),
                              A.List((I(4),))), I(0))),
    ("fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0",
     A.Syscall("fcntl", (I(3), S("F_SETFL"), A.BitOr((S("O_RDWR"), S("O_NONBLOCK")))), I(0))),
    ("fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)",
     A.Syscall("fcntl", (I(3), S("F_GETFL")), I(2), note="flags O_RDWR")),
    ("connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)",
     A.Syscall("connect", (I(3), W, W), I(-1), "EINPROGRESS", "Operation now in progress")),
    ("read(4, ..., 1000) = 1000", A.Syscall("read", (I(4), W, I(1000)), I(1000))),
    ("write(4, ..., 10) = -1 EAGAIN", A.Syscall("write", (I(4), W, I(10)), I(-1), "EAGAIN")),
    ("writev(4, [{..., 10}, {..., 20}], 2) = 30",
     A.Syscall("writev", (I(4), A.List((A.Struct((A.Field(None, W), A.Field(None, I(10)))),
                                        A.Struct((A.Field(None, W), A.Field(None, I(20)))))),
                          I(2)), I(30))),
    ("poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, 0) = 1",
     A.Syscall("poll", (A.List((A.Struct((A.Field("fd", I(4)), A.Field("events", S("POLLIN")),
                                          A.Field("revents", S("POLLIN")))),)), I(1), I(0)), I(1))),
    ("sendto(4, ..., 1000, 0, ..., ...) = 1000",
     A.Syscall("sendto", (I(4), W, I(1000), I(0), W, W), I(1000))),
    ("recvfrom(4, ..., 10, MSG_PEEK, ..., ...) = 10",
     A.Syscall("recvfrom", (I(4), W, I(10), S("MSG_PEEK"), W, W), I(10))),
    ("sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 10}], msg_flags=0}, 0) = 10",
     A.Syscall("sendmsg", (I(4), A.Struct((
         A.Field("msg_name", W, index=W),
         A.Field("msg_iov", A.List((A.Struct((A.Field(None, W), A.Field(None, I(10)))),)),
                 index=I(1)),
         A.Field("msg_flags", I(0)))), I(0)), I(10))),
    ("getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, tcpi_options=TCPI_OPT_SACK|"
     "TCPI_OPT_TIMESTAMPS}, ...) = 0",
     A.Syscall("getsockopt", (I(4), S("SOL_TCP"), S("TCP_INFO"), A.Struct((
         A.Field("tcpi_state", S("TCP_ESTABLISHED")),
         A.Field("tcpi_options", A.BitOr((S("TCPI_OPT_SACK"), S("TCPI_OPT_TIMESTAMPS")))))),
         W), I(0))),
    ("setsockopt(3, SOL_TCP, TCP_CONGESTION, \"cubic\", 5) = 0",
     A.Syscall("setsockopt", (I(3), S("SOL_TCP"), S("TCP_CONGESTION"), A.String("cubic"), I(5)),
               I(0))),
    ("bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"192.0.2.1\")}, 16)"
     " = 0",
     A.Syscall("bind", (I(3), A.Struct((
         A.Field("sa_family", S("AF_INET")), A.Field("sin_port", A.Call("htons", (I(8080),))),
         A.Field("sin_addr", A.Call("inet_addr", (A.String("192.0.2.1"),))))), I(16)), I(0))),
    ("shutdown(4, SHUT_WR) = 0", A.Syscall("shutdown", (I(4), S("SHUT_WR")), I(0))),
    ("getpid() = ...", A.Syscall("getpid", (), W)),
    ("setsockopt(3, SOL_SOCKET, SO_LINGER, {...}, 8) = 0",
     A.Syscall("setsockopt", (I(3), S("SOL_SOCKET"), S("SO_LINGER"), A.Struct((A.Field(None, W),)),
                              I(8)), I(0))),
])
def test_syscall_forms(text, call):
    assert body(text) == call


def test_expression_details():
    call = body('f(0x1F, -5, A|B|0x4, "a\\"b\\n\\x41", [], {}, [[1], [2]], {a=f(g(1))}) = 0')
    assert call.args == (I(31), I(-5), A.BitOr((S("A"), S("B"), I(4))), A.String('a"b\nA'),
                         A.List(()), A.Struct(()), A.List((A.List((I(1),)), A.List((I(2),)))),
                         A.Struct((A.Field("a", A.Call("f", (A.Call("g", (I(1),)),))),)))
    assert A.Struct((A.Field("a", I(1)),)).get("a") == I(1)


def test_errno_and_note():
    (a, b, c) = events("0 connect(3, ..., ...) = -1 ECONNREFUSED (Connection refused)\n"
                       "+0 fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)\n"
                       "+0 read(3, ..., 5) = -1 EAGAIN /* c */ (Resource temporarily unavailable)")
    assert (a.body.errno, a.body.note) == ("ECONNREFUSED", "Connection refused")
    assert (b.body.result, b.body.note) == (I(0x802), "flags O_RDWR|O_NONBLOCK")
    assert (c.body.errno, c.body.note) == ("EAGAIN", "Resource temporarily unavailable")


def test_note_must_start_on_the_result_line():
    e = error("0 close(3) = 0\n(stray note)\n")
    assert e.line == 2 and "expected an event time" in e.message


@pytest.mark.parametrize("text, line, col, message", [
    ("0 close 3) = 0", 1, 9, "expected '(' after system call name 'close'"),
    ("0 close(3)", 1, 11, "expected '= result' after close(...)"),
    ("0 close(3 4) = 0", 1, 11, "expected ',' or ')', found number '4'"),
    ("0 close(3) = 0 (no end", 1, 16, "unterminated '(' note"),
    ("0 f({a=1 b=2}) = 0", 1, 10, "expected ',' or '}', found word 'b'"),
    ("0 f(\"abc) = 0", 1, 5, "unterminated string"),
    ("0 f(1.5) = 0", 1, 5, "expected an integer, found '1.5'"),
    ("0 f({a(1, 2)=3}) = 0", 1, 13, "takes one value in parentheses"),
    ("0 f(" + "[" * 60 + "]" * 60 + ") = 0", 1, 55, "nested too deeply"),
    ("0 f(1" + "1" * 50 + ") = 0", 1, 5, "number too long"),
    ("0 f(@) = 0", 1, 5, "unexpected character '@'"),
])
def test_syscall_errors(text, line, col, message):
    e = error(text)
    assert (e.line, e.column) == (line, col) and message in e.message, e


# --- TCP packets ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, packet", [
    ("< S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 10>",
     A.Packet("<", "S", 0, 0, 0, win=32792, options=(
         A.Mss(1000), A.SackOK(), A.Nop(), A.Nop(), A.Nop(), A.WScale(10)))),
    ("> S. 0:0(0) ack 1 <...>", A.Packet(">", "S.", 0, 0, 0, ack=1, options=A.ANY)),
    ("> P. 1:1001(1000) ack 1", A.Packet(">", "P.", 1, 1001, 1000, ack=1)),
    ("< . 1:1(0) ack 1001 win 257 <sack 1:11,nop,nop>",
     A.Packet("<", ".", 1, 1, 0, ack=1001, win=257,
              options=(A.Sack(((1, 11),)), A.Nop(), A.Nop()))),
    ("> R 0:0(0)", A.Packet(">", "R", 0, 0, 0)),
    ("< R. 1:1(0) ack 1 win 0", A.Packet("<", "R.", 1, 1, 0, ack=1, win=0)),
    ("> . ...(100)", A.Packet(">", ".", None, None, 100, seq_any=True)),
    ("> R 1:1(0)!", A.Packet(">", "R", 1, 1, 0, seq_absolute=True)),
    ("< S 0:0(0) ack 7 win 100", A.Packet("<", "S", 0, 0, 0, ack=7, win=100)),
    ("< U. 1:2(1) ack 1 win 100 urg 5", A.Packet("<", "U.", 1, 2, 1, ack=1, win=100, urg=5)),
    ("< (tos 0x20) S 0:0(0) win 1", A.Packet("<", "S", 0, 0, 0, win=1, ipinfo=A.IpInfo(tos=0x20))),
    ("< (ttl 4) S 0:0(0) win 1", A.Packet("<", "S", 0, 0, 0, win=1, ipinfo=A.IpInfo(ttl=4))),
    ("> [ect0] P. 1:11(10) ack 1",
     A.Packet(">", "P.", 1, 11, 10, ack=1, ipinfo=A.IpInfo(ecn="ect0"))),
    ("< [ce] . 1:1(0) ack 1 win 1",
     A.Packet("<", ".", 1, 1, 0, ack=1, win=1, ipinfo=A.IpInfo(ecn="ce"))),
    ("< [noecn] (tos 0x3, ttl 64) . 1:1(0) ack 1 win 1",
     A.Packet("<", ".", 1, 1, 0, ack=1, win=1, ipinfo=A.IpInfo(tos=3, ttl=64, ecn="noecn"))),
    ("< [ect1, flowlabel 0x12345] . 1:1(0) ack 1 win 1", A.Packet(
        "<", ".", 1, 1, 0, ack=1, win=1, ipinfo=A.IpInfo(ecn="ect1", flowlabel=0x12345))),
    ("< S 0:0(0) win 1 <TS val 100 ecr 0>",
     A.Packet("<", "S", 0, 0, 0, win=1, options=(A.Timestamp(100, 0),))),
    ("> . 1:1(0) ack 1 <nop,nop,sack 1:11 21:31 41:51>",
     A.Packet(">", ".", 1, 1, 0, ack=1, options=(A.Nop(), A.Nop(),
                                                  A.Sack(((1, 11), (21, 31), (41, 51)))))),
    ("< S 0:0(0) win 1 <eol>", A.Packet("<", "S", 0, 0, 0, win=1, options=(A.Eol(),))),
    ("< S 0:0(0) win 1 <>", A.Packet("<", "S", 0, 0, 0, win=1, options=())),
    ("< F. 4294967295:0(1) ack 1 win 1", A.Packet("<", "F.", 2**32 - 1, 0, 1, ack=1, win=1)),
    ("< .1:1(0) ack 1 win 1", A.Packet("<", ".", 1, 1, 0, ack=1, win=1)),
])
def test_packet_forms(text, packet):
    assert body(text) == packet


@pytest.mark.parametrize("flags", ["S", ".", "S.", ".S", "P.", "F.", "R", "R.", "SEW", "WES.",
                                   "FSRPUEW.", ".WEUPRSF", "U"])
def test_flag_letters_in_any_order(flags):
    assert body(f"< {flags} 0:0(0) win 1").flags == flags


@pytest.mark.parametrize("text, col, message", [
    ("< SX 0:0(0)", 6, "unknown TCP flag 'X' in 'SX'"),
    ("< SS 0:0(0)", 6, "TCP flag 'S' repeated"),
    ("< 0:0(0)", 5, "expected TCP flags"),
    ("< S 0:1(0) win 1", 7, "segment length (0) does not match end - start (1 - 0)"),
    ("< S 0:0(0) win 65536", 18, "window 65536 is out of range (at most 65535)"),
    ("< S 0:0(0) win 1 ack 4294967296", 24, "ack number 4294967296 is out of range"),
    ("< S 0:0(0) win 1 win 2", 20, "'win' given twice"),
    ("< S 0:0(0) win 1 <mss 1460", 29, "expected ',' or '>' after a TCP option"),
    ("< S 0:0(0) win 1 <mss 1460 nop>", 30, "expected ',' or '>' after a TCP option, found word"),
    ("< S 0:0(0) win 1 <mss 70000>", 25, "mss 70000 is out of range"),
    ("< S 0:0(0) win 1 <mp_capable 1234>", 21, "MPTCP option 'mp_capable' is not supported"),
    ("< S 0:0(0) win 1 <FO 0x1234>", 21, "TCP option 'FO' is not supported"),
    ("< S 0:0(0) win 1 <foo>", 21, "unknown TCP option 'foo'"),
    ("< S 0:0(0) win 1 <sackok>", 21, "did you mean 'sackOK'?"),
    ("< S 0:0(0) win 1 <sack>", 25, "expected SACK blocks"),
    ("< S 0:0(0) win 1 <TS val 1>", 29, "'ecr' in TS val N ecr N"),
    ("< S 0:0(0) win 1 <nop><nop>", 25, "TCP options given twice"),
    ("< (tos 256) S 0:0(0)", 10, "tos 256 is out of range"),
    ("< [ect2] S 0:0(0)", 6, "unknown IP field 'ect2'"),
    ("< [ce, ce] S 0:0(0)", 10, "IP field 'ecn' given twice"),
    ("< udp (1000)", 5, "udp packets are not supported"),
    ("< S 0:0 win 1", 11, "'(' and the segment length"),
])
def test_packet_errors(text, col, message):
    e = error("0 " + text)
    assert (e.line, e.column) == (1, col) and message in e.message, e


# --- ICMP -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, icmp", [
    ("< icmp unreachable port_unreachable [1:1(0)]",
     A.IcmpPacket("<", "unreachable", "port_unreachable", quoted=(1, 1, 0))),
    ("< icmp unreachable frag_needed mtu 1234 [1:1461(1460)]",
     A.IcmpPacket("<", "unreachable", "frag_needed", 1234, (1, 1461, 1460))),
    ("< icmp unreachable frag_needed mtu 1234 [...]",
     A.IcmpPacket("<", "unreachable", "frag_needed", 1234, None)),
    ("< [1:1461(1460)] icmp unreachable frag_needed mtu 1200",
     A.IcmpPacket("<", "unreachable", "frag_needed", 1200, (1, 1461, 1460))),
    ("< icmp time_exceeded ttl_exceeded [0:0(0)]",
     A.IcmpPacket("<", "time_exceeded", "ttl_exceeded", quoted=(0, 0, 0))),
    ("< icmp source_quench", A.IcmpPacket("<", "source_quench")),
    ("< icmp unreachable host_unreachable", A.IcmpPacket("<", "unreachable", "host_unreachable")),
    ("< (tos 0xc0) icmp unreachable net_prohibited",
     A.IcmpPacket("<", "unreachable", "net_prohibited", ipinfo=A.IpInfo(tos=0xC0))),
])
def test_icmp_forms(text, icmp):
    assert body(text) == icmp


def test_icmp_errors():
    assert "expected an ICMP type" in error("0 < icmp [1:1(0)]").message
    e = error("0 < [1:1(0)] icmp unreachable [1:1(0)]")
    assert "quoted segment is given twice" in e.message
    assert "expected 'icmp' after the quoted segment" in error("0 < [1:1(0)] S 0:0(0)").message


# --- errors: where and how ------------------------------------------------------------------------

def test_error_message_format_with_caret():
    e = error("0 close(3) = 0\n\t+0 close(3 4) = 0\n")
    assert (e.path, e.line, e.column) == ("t.pkt", 2, 13)
    assert str(e) == ("t.pkt:2:13: expected ',' or ')', found number '4'\n"
                      "    \t+0 close(3 4) = 0\n"
                      "    \t           ^")


def test_error_line_numbers_after_comments_and_skipped_blocks():
    text = ("/* one\n two */\n#ifdef FreeBSD\n+0 junk junk\n#endif\n"
            "0 close(3) = 0\n+0 < S 0:0(0) win 1 <wscale>\n")
    e = error(text)
    assert (e.line, e.column) == (7, 28) and "expected a number (wscale)" in e.message


@pytest.mark.parametrize("text, line, message", [
    ("0 `ls\n\n", 1, "unterminated shell command"),
    ("0 close(3) = 0\n+0 %{ x = 1\n", 2, "unterminated %{ block"),
    ("0 close(3) = 0\n/* open\n", 2, "unterminated /* comment"),
    ("0 close(3) = 0\n+0 ` a ` \n`b`\n", 3, "found shell command"),
    ("`a`\n`b`\n", 2, "a second untimed shell command"),
    ("--=3\n", 1, "bad option name"),
    ("0 close(3) = 0\n+0 > icmp\n", 2, "expected an ICMP type"),
    ("0 close(3) = 0\n+0 ?\n", 2, "unexpected character '?'"),
    ("0 close(3) = 0\n+0 [1]\n", 2, "expected a system call, a packet"),
])
def test_error_lines(text, line, message):
    e = error(text)
    assert e.line == line and message in e.message, e


def test_parse_file(tmp_path):
    p = tmp_path / "a.pkt"
    p.write_text("--mtu=1500\n0 close(3) = 0\n")
    s = parse_file(str(p))
    assert s.path == str(p) and s.options == {"mtu": "1500"} and len(s.events) == 1
    with pytest.raises(ScriptError) as info:
        parse_file(str(tmp_path / "missing.pkt"))
    assert info.value.line == 0 and "cannot read script" in info.value.message
    p.write_bytes(b"0 close(3) = 0\n+0 close(\xff) = 0\n")
    with pytest.raises(ScriptError) as info:
        parse_file(str(p))
    assert info.value.line == 2 and "not UTF-8" in info.value.message


# --- properties -----------------------------------------------------------------------------------

FRAGMENTS = ["0", "+0", "+.1", "1.5", "*", "~", "...", " ", "\n", "\t", "<", ">", "(", ")", "[",
             "]", "{", "}", ",", "=", "|", ":", "!", "-", "S", ".", "P.", "S.", "R", "F.", "ack",
             "win", "urg", "1:1(0)", "0:0(0)", "<...>", "mss 1460", "nop", "eol", "wscale 7", "sackOK",
             "sack 1:2", "TS val 1 ecr 2", "icmp", "unreachable", "mtu", "socket", "close(3)",
             "= 0", "= -1 EAGAIN", "(note)", "[1]", "{a=1}", "msg_iov(1)=", '"s"', "0x2f", "`ls`",
             "`", "%{", "}%", "%{ x }%", "//", "/*", "*/", "#ifdef STANDARD\n", "#ifdef X\n",
             "#else\n", "#endif\n", "#", "--mtu=1", "--", "(tos 0x20)", "[ect0]", "[ce]", "\\",
             "\r", "\x00", "\u00e9", "A|B", "htons(1)", "1" * 45]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_only_raises_script_error(text):
    try:
        parse_script(text)
    except ScriptError as e:
        assert isinstance(str(e), str) and e.line >= 0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_grammar_soup_only_raises_script_error(text):
    try:
        parse_script(text)
    except ScriptError as e:
        assert 0 <= e.line <= text.count("\n") + 1


MUTATION_BASE = """--tolerance_usecs=10000
`../common/defaults.sh`
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0
#ifdef STANDARD
+0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 10>
#else
+0 junk
#endif
+0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
+.1 < . 1:1(0) ack 1 win 257 <sack 1:11,nop,nop,TS val 1 ecr 2>
+0...0.1 sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 10}], msg_flags=0}, 0) = 10
* > [ect0] (tos 0x2) P. 1:11(10) ack 1 <...>
0.1~0.2 < icmp unreachable frag_needed mtu 1234 [1:1461(1460)]
+0 fcntl(3, F_GETFL) = 0x2 (flags O_RDWR) // c
+0 `sysctl -w x=1` /* c */
+0 %{ assert tcpi_state == TCPI_ESTABLISHED }%
"""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(MUTATION_BASE)), st.integers(0, 6),
                          st.sampled_from(FRAGMENTS + [""])), min_size=1, max_size=4))
def test_mutated_script_only_raises_script_error(edits):
    text = MUTATION_BASE
    for pos, cut, insert in edits:
        pos = min(pos, len(text))
        text = text[:pos] + insert + text[pos + cut:]
    try:
        parse_script(text)
    except ScriptError as e:
        assert 1 <= e.line <= text.count("\n") + 1


u32 = st.integers(0, 2**32 - 1)
opt = st.one_of(st.just((A.Nop(), "nop")), st.just((A.Eol(), "eol")),
                st.just((A.SackOK(), "sackOK")),
                st.integers(0, 65535).map(lambda v: (A.Mss(v), f"mss {v}")),
                st.integers(0, 255).map(lambda v: (A.WScale(v), f"wscale {v}")),
                st.tuples(u32, u32).map(lambda t: (A.Timestamp(*t), f"TS val {t[0]} ecr {t[1]}")),
                st.lists(st.tuples(u32, u32), min_size=1, max_size=4).map(
                    lambda bs: (A.Sack(tuple(bs)), "sack " + " ".join(f"{a}:{b}" for a, b in bs))))


@given(st.sampled_from("<>"), st.sets(st.sampled_from("SFRPUEW."), min_size=1), u32,
       st.integers(0, 65535), st.none() | u32, st.none() | st.integers(0, 65535),
       st.none() | st.lists(opt, max_size=6))
def test_written_packets_parse_back(direction, flags, start, length, ack, win, opts):
    flags = "".join(sorted(flags))
    end = (start + length) % 2**32
    text = f"0 {direction} {flags} {start}:{end}({length})"
    text += f" ack {ack}" if ack is not None else ""
    text += f" win {win}" if win is not None else ""
    text += " <" + ", ".join(t for _, t in opts) + ">" if opts is not None else ""
    options = tuple(o for o, _ in opts) if opts is not None else None
    assert body(text[2:]) == A.Packet(direction, flags, start, end, length, ack=ack, win=win,
                                      options=options)
