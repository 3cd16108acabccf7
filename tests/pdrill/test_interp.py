"""The packetdrill interpreter: honest verdicts, at the right line, on the virtual clock."""

from __future__ import annotations

import json
import textwrap
import time

import pytest

from synack.link.pcap import read_pcap
from synack.pdrill import cli
from synack.pdrill.interp import run_script

HANDSHAKE = """\
0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 win 65535 <mss 1460>
+.1   < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
"""          # lines 1-7


def run(text: str, **kw):
    return run_script(textwrap.dedent(text), "t.pkt", **kw)


def test_a_correct_script_passes():
    o = run(HANDSHAKE + """\
+0    write(4, ..., 100) = 100
+0    > P. 1:101(100) ack 1 win 65535
+.1   < . 1:1(0) ack 101 win 65535
+0    %{ assert tcpi_state == TCPI_ESTABLISHED and tcpi_unacked == 0 }%
""")
    assert (o.result, o.message) == ("pass", "")
    assert o.virtual_time == pytest.approx(0.2)


def test_a_packet_synack_does_not_send_fails_at_its_line():
    o = run(HANDSHAKE + """\
+0    write(4, ..., 100) = 100
+0    > P. 1:101(100) ack 1
+.1   < . 1:1(0) ack 101 win 65535
+.2   > . 101:101(0) ack 1
""")
    assert o.result == "fail"
    assert o.line == 11
    assert "expected packet not sent" in o.message
    assert "> . 101:101(0) ack 1" in o.message


def test_a_different_packet_fails_showing_expected_and_actual():
    o = run(HANDSHAKE + """\
+0    write(4, ..., 100) = 100
+0    > P. 1:101(100) ack 2
""")
    assert (o.result, o.line) == ("fail", 9)
    assert "ack 1, expected 2" in o.message
    assert "expected: > P. 1:101(100) ack 2" in o.message
    assert "actual:   > P. 1:101(100) ack 1 win 65535" in o.message


def test_an_unexpected_extra_packet_fails_at_the_next_expected_line():
    # the data goes out at once: the script forgot it, so the FIN line sees the data
    o = run(HANDSHAKE + """\
+0    write(4, ..., 100) = 100
+.1   close(4) = 0
+0    > F. 1:1(0) ack 1
""")
    assert (o.result, o.line) == ("fail", 10)
    assert "flags P., expected F." in o.message


def test_wrong_syscall_result_fails():
    o = run(HANDSHAKE + """\
+0    read(4, ..., 100) = 100
""")
    # blocking read with nothing to read: it blocks, which the script did not allow
    assert (o.result, o.line) == ("fail", 8)
    assert "blocked" in o.message
    o = run(HANDSHAKE + """\
+0    fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0    read(4, ..., 100) = 100
""")
    assert (o.result, o.line) == ("fail", 9)
    assert "returned -1 EAGAIN" in o.message and "expected 100" in o.message
    o = run(HANDSHAKE + """\
+0    write(4, ..., 100) = -1 EPIPE
""")
    assert (o.result, o.line) == ("fail", 8)
    assert "returned 100, expected -1 EPIPE" in o.message


def test_getsockopt_value_is_checked():
    o = run(HANDSHAKE + """\
+0    getsockopt(4, SOL_SOCKET, SO_ERROR, [ECONNRESET], [4]) = 0
""")
    assert (o.result, o.line) == ("fail", 8)
    assert "SO_ERROR: [0], expected [ECONNRESET]" in o.message


def test_assert_failure_fails_with_the_values():
    o = run(HANDSHAKE + """\
+0    %{
assert tcpi_state == TCPI_ESTABLISHED
assert tcpi_snd_mss == 1000, "mss"
}%
""")
    assert (o.result, o.line) == ("fail", 8)
    assert "tcpi_snd_mss == 1000" in o.message and "tcpi_snd_mss=1460" in o.message


def test_python_names_persist_between_blocks():
    # cwnd0 from the first block is still there in the second. One segment of a 10-segment
    # window is application-limited, so the ACK does not grow cwnd (RFC 9438 §5.8); filling
    # the window does.
    fill = "".join(f"+0    > {'P.' if i == 9 else '.'} {1461 + 1460 * i}:{2921 + 1460 * i}(1460) ack 1\n"
                   for i in range(10))
    o = run(HANDSHAKE + """\
+0    %{ cwnd0 = tcpi_snd_cwnd }%
+0    write(4, ..., 1460) = 1460
+0    > P. 1:1461(1460) ack 1
+.1   < . 1:1(0) ack 1461 win 65535
+0    %{ assert tcpi_snd_cwnd == cwnd0, (tcpi_snd_cwnd, cwnd0) }%
+0    write(4, ..., 14600) = 14600
""" + fill + """\
+.1   < . 1:1(0) ack 16061 win 65535
+0    %{ assert tcpi_snd_cwnd > cwnd0, (tcpi_snd_cwnd, cwnd0) }%
""")
    assert o.result == "pass", o.message


def test_bad_python_is_an_error():
    o = run(HANDSHAKE + "+0    %{ assert tcpi_nonsense == 1 }%\n")
    assert (o.result, o.line) == ("error", 8)


@pytest.mark.parametrize("delay, tolerance, result", [
    (".040", None, "pass"),
    (".037", None, "pass"),        # 3 ms early: within the default 4 ms
    (".035", None, "fail"),        # 5 ms early
    (".045", None, "fail"),        # 5 ms late
    (".031", 10000, "pass"),       # --tolerance_usecs=10000
])
def test_timing_tolerance(delay, tolerance, result):
    o = run(HANDSHAKE + f"""\
+0    < P. 1:101(100) ack 1 win 65535
+{delay} > . 1:1(0) ack 101
""", tolerance_usecs=tolerance)
    assert o.result == result, o.message
    if result == "fail":
        assert o.line == 9 and "0.140000" in o.message   # when the ACK went (or would go)


def test_timing_tolerance_from_the_script_option():
    o = run("--tolerance_usecs=10000\n" + HANDSHAKE + """\
+0    < P. 1:101(100) ack 1 win 65535
+.031 > . 1:1(0) ack 101
""")
    assert o.result == "pass", o.message


def test_five_percent_of_the_gap_is_allowed():
    # the SYN goes again after 1 s; 1.045 is within 5 % of the 1 s gap, 1.06 is not
    base = """\
0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0    connect(3, ..., ...) = -1 EINPROGRESS
+0    > S 0:0(0) <...>
"""
    assert run(base + "+1.045 > S 0:0(0) <...>\n").result == "pass"
    o = run(base + "+1.06 > S 0:0(0) <...>\n")
    assert (o.result, o.line) == ("fail", 5)


def test_a_blocking_call_must_return_on_time():
    script = HANDSHAKE + """\
+0...{end} read(4, ..., 1000) = 100
+.3   < P. 1:101(100) ack 1 win 65535
"""
    assert run(script.format(end="0.3")).result == "pass"
    o = run(script.format(end="0.5"))
    assert (o.result, o.line) == ("fail", 8) and "expected at 0.600000" in o.message
    o = run(script.format(end="0.1"))
    assert (o.result, o.line) == ("fail", 8) and "still blocked" in o.message


def test_options_relaxed():
    script = """\
0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0    connect(3, ..., ...) = -1 EINPROGRESS
+0    > S 0:0(0) win 65535 <sackOK,TS val 1 ecr 0,mss 1460,wscale 6,eol>
"""
    o = run(script)
    assert (o.result, o.line) == ("fail", 4) and "options" in o.message
    assert run(script, relaxed=True).result == "pass"
    assert run("--relaxed-options\n" + script).result == "pass"
    # relaxed still checks values
    assert run(script.replace("wscale 6", "wscale 7"), relaxed=True).result == "fail"
    # and that options are there at all
    assert run(script.replace("sackOK,", ""), relaxed=True).result == "fail"


def test_options_any():
    assert run(HANDSHAKE.replace("<mss 1460>\n+.1", "<...>\n+.1")).result == "pass"


def test_unsupported_syscall_and_unknown_sysctl_are_errors():
    o = run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 getsockname(3, ..., ...) = 0\n")
    assert (o.result, o.line) == ("error", 2) and "getsockname" in o.message
    o = run("0 `sysctl -w net.inet.tcp.no_such_thing=1`\n")
    assert (o.result, o.line) == ("error", 1) and "unknown sysctl" in o.message
    o = run("0 `ls -l`\n")
    assert (o.result, o.line) == ("error", 1)
    o = run("0 `sysctl -w net.inet.tcp.ecn.enable=3`\n")
    assert o.result == "error" and "expected 0, 1 or 2" in o.message


def test_sockstat_counts_are_checked():
    ok = HANDSHAKE + "+0 `sockstat -4 -P tcp -s -p 8080 | grep -c ESTABLISHED | grep 1`\n"
    assert run(ok).result == "pass"
    o = run(ok.replace("grep 1`", "grep 2`"))
    assert (o.result, o.line) == ("fail", 8)
    assert "expected 2 connection(s) in ESTABLISHED on port 8080, found 1" in o.message


def test_mixed_rfc5961_sysctls_are_an_error():
    o = run("0 `sysctl -w net.inet.tcp.insecure_rst=1`\n+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert (o.result, o.line) == ("error", 1) and "TcpConfig.rfc5961" in o.message


def test_parse_errors_are_errors():
    o = run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) win 65535 <mss 1460,bogus 3>\n")
    assert (o.result, o.line) == ("error", 2)


def test_injected_packets_need_a_window():
    o = run(HANDSHAKE + "+0 < . 1:1(0) ack 1\n")
    assert (o.result, o.line) == ("error", 8) and "win" in o.message


def test_virtual_clock_only(monkeypatch):
    def no_sleep(*a):
        raise AssertionError("the interpreter slept")
    monkeypatch.setattr(time, "sleep", no_sleep)
    start = time.perf_counter()
    o = run(HANDSHAKE + """\
+3600 write(4, ..., 10) = 10
+0    > P. 1:11(10) ack 1
""")
    assert o.result == "pass", o.message
    assert o.virtual_time == pytest.approx(3600.1)
    assert time.perf_counter() - start < 5


def test_pcap(tmp_path):
    path = tmp_path / "t.pcap"
    assert run(HANDSHAKE, pcap=str(path)).result == "pass"
    records = list(read_pcap(str(path)))
    assert len(records) == 3                       # SYN in, SYN-ACK out, ACK in
    assert [round(r.t, 6) for r in records] == [0.0, 0.0, 0.1]


def test_verbose_trace():
    lines: list[str] = []
    assert run(HANDSHAKE, log=lines.append).result == "pass"
    assert any("> S. 0:0(0) ack 1 win 65535 <mss 1460>" in ln for ln in lines)


# --- the command line ----------------------------------------------------------------------------


def _cli(argv):
    import argparse
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return cli.run(p.parse_args(argv))


def _corpus(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.pkt").write_text(HANDSHAKE)
    (tmp_path / "sub" / "b.pkt").write_text(HANDSHAKE + "+0 > . 1:1(0) ack 1\n")
    (tmp_path / "sub" / "c.pkt").write_text("0 frobnicate(3) = 0\n")
    (tmp_path / "sub" / "notes.txt").write_text("not a script")


def test_cli_text(tmp_path, capsys):
    _corpus(tmp_path)
    assert _cli([str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("PASS") and out[0].endswith("a.pkt")
    assert out[1].startswith("FAIL") and "b.pkt:8: expected packet not sent" in out[1]
    assert any(ln.startswith("ERROR") and "c.pkt:1:" in ln for ln in out)
    assert out[-1] == "1 passed, 1 failed, 1 errors"


def test_cli_json_parallel(tmp_path, capsys):
    _corpus(tmp_path)
    assert _cli(["--json", "-j", "2", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    objs = [json.loads(ln) for ln in out[:-1]]
    assert [(o["result"], o["line"]) for o in objs] == [("pass", 0), ("fail", 8), ("error", 1)]
    assert set(objs[0]) == {"script", "result", "line", "message"}
    assert out[-1] == "1 passed, 1 failed, 1 errors"


def test_cli_all_pass_exit_0(tmp_path, capsys):
    (tmp_path / "a.pkt").write_text(HANDSHAKE)
    assert _cli(["--profile", "freebsd", "--pcap", str(tmp_path / "pcaps"), str(tmp_path / "a.pkt")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 passed, 0 failed"
    assert list((tmp_path / "pcaps").glob("*.pcap"))


def test_cli_missing_file_is_an_error(tmp_path, capsys):
    assert _cli([str(tmp_path / "nope.pkt")]) == 1
    assert "ERROR" in capsys.readouterr().out
