"""Profiles as configuration, and the emulated shell (sysctl, sockstat | grep)."""

from __future__ import annotations

import pytest

from synack.pdrill.errors import ScriptError
from synack.pdrill.outcome import ScriptFailure
from synack.pdrill.profiles import FREEBSD, LINUX, PROFILES, get_profile, unsupported_knobs
from synack.pdrill.sysctl import KNOWN_SYSCTLS, Shell, SockRow
from synack.tcp.config import TcpConfig


class Target:
    def __init__(self, rows=()):
        self.tcp: dict[str, tuple[object, str]] = {}
        self.stack: dict[str, object] = {}
        self.rows = list(rows)

    def set_tcp(self, field, value, scope):
        assert field in TcpConfig.__dataclass_fields__, field
        self.tcp[field] = (value, scope)

    def set_stack(self, field, value):
        self.stack[field] = value

    def tcp_value(self, field):
        return self.tcp.get(field, (None,))[0]

    def sockstat_rows(self):
        return self.rows


def shell(rows=()):
    t = Target(rows)
    return Shell(t, "t.pkt"), t


def test_profiles_are_plain_configuration():
    assert set(PROFILES) == {"linux", "freebsd"}
    assert get_profile("linux") is LINUX
    with pytest.raises(ValueError):
        get_profile("windows")
    f, lx = FREEBSD.tcp_config(), LINUX.tcp_config()
    assert f is not FREEBSD.tcp and f == FREEBSD.tcp          # a fresh copy each time
    assert (f.syn_option_order, f.offered_wscale(), f.rto_slop, f.max_rto) == ("freebsd", 6, 0.2, 64.0)
    assert (lx.syn_option_order, lx.offered_wscale(), lx.min_rto) == ("linux", 7, 0.2)
    assert (lx.syn_window_field(lx.rcv_buf, 1460), lx.syn_window_field(lx.rcv_buf, 1448)) == (64240, 65160)
    assert f.ack_delay == lx.ack_delay == 0.040
    assert f.msl == lx.msl == 30.0                             # TIME-WAIT 60 s
    assert f.initial_rto == lx.initial_rto == 1.0
    assert FREEBSD.accept_limit(1) == 2 and LINUX.accept_limit(1) == 2
    assert FREEBSD.accept_limit(10) == 16 and LINUX.accept_limit(10) == 11
    assert FREEBSD.symbols()["TCPI_ESTABLISHED"] == 4 and LINUX.symbols()["TCP_ESTABLISHED"] == 1
    assert FREEBSD.symbols()["O_NONBLOCK"] == 4 and LINUX.symbols()["O_NONBLOCK"] == 0x800
    assert isinstance(unsupported_knobs("freebsd"), list)
    assert unsupported_knobs("freebsd") == unsupported_knobs("linux") == []
    assert (f.ecn, f.ecn_syn_retries, lx.ecn, lx.ecn_syn_retries) == ("accept", 1, "accept", 0)
    assert (f.quickack, lx.quickack, f.nagle_minshall, lx.nagle_minshall) == (0, 16, False, True)
    assert (f.quickack_pingpong, lx.quickack_pingpong) == (False, True)
    assert (f.tolerate_missing_ts, lx.tolerate_missing_ts) == (False, True)
    assert (f.nagle_idle_tail, lx.nagle_idle_tail) == (True, False)
    assert (f.ack_count_segments, lx.ack_count_segments) == (True, False)
    assert (f.fin_wait_2_timeout, lx.fin_wait_2_timeout, f.fin_wait_2_idle, lx.fin_wait_2_idle) == \
        (600.0, 60.0, True, False)


@pytest.mark.parametrize("cmd, field, value, scope", [
    ("sysctl -w net.inet.tcp.sack.enable=0", "sack", False, "syn"),
    ("sysctl -w net.inet.tcp.delacktime=100", "ack_delay", 0.1, "live"),
    ("sysctl -w net.inet.tcp.rexmit_initial=3000", "initial_rto", 3.0, "syn"),
    ("sysctl -w net.inet.tcp.rexmit_slop=0", "rto_slop", 0.0, "live"),
    ("sysctl -w net.inet.tcp.keepidle=5000", "keepalive_idle", 5.0, "live"),
    ("sysctl -w net.inet.tcp.keepcnt=3", "keepalive_count", 3, "live"),
    ("sysctl -w net.inet.tcp.recvspace=8192", "rcv_buf", 8192, "socket"),
    ("sysctl -w net.inet.tcp.drop_synfin=1", "drop_synfin", True, "syn"),
    ("sysctl -w kern.ipc.maxsockbuf=8388608", "wscale", 8, "syn"),
    ("sysctl -w kern.ipc.maxsockbuf=65535", "wscale", 0, "syn"),
    ("sysctl -q net.ipv4.tcp_sack=0", "sack", False, "syn"),
    ("sysctl -q net.ipv4.tcp_syn_retries=3", "syn_retries", 3, "socket"),
    ("sysctl -q net.ipv4.tcp_keepalive_time=60", "keepalive_idle", 60.0, "live"),
    ("sysctl -q net.ipv4.tcp_wmem='4096 16384 4194304'", "snd_buf", 16384, "socket"),
    ("sysctl -w net.ipv4.tcp_congestion_control=reno", "cc", "reno", "socket"),
    ("sysctl -w net.inet.tcp.ecn.enable=0", "ecn", "off", "syn"),
    ("sysctl -w net.inet.tcp.ecn.enable=1", "ecn", "on", "syn"),
    ("sysctl -q net.ipv4.tcp_ecn=2", "ecn", "accept", "syn"),
    ("sysctl -w net.inet.tcp.ecn.maxretries=3", "ecn_syn_retries", 3, "syn"),
    ("sysctl -q net.ipv4.tcp_ecn_fallback=1", "ecn_syn_retries", 0, "syn"),
    ("sysctl -w net.inet.tcp.tolerate_missing_ts=1", "tolerate_missing_ts", True, "live"),
    ("sysctl -w net.inet.tcp.rexmit_drop_options=1", "syn_rexmit_drop_options", True, "syn"),
    ("sysctl -q net.ipv4.tcp_fin_timeout=30", "fin_wait_2_timeout", 30.0, "live"),
])
def test_sysctl_maps_onto_config(cmd, field, value, scope):
    sh, t = shell()
    sh.run(cmd, 1)
    assert t.tcp[field] == (value, scope)


def test_rfc1323_and_rmem():
    sh, t = shell()
    sh.run("sysctl -w net.inet.tcp.rfc1323=2", 1)
    assert t.tcp["window_scaling"][0] is True and t.tcp["timestamps"][0] is False
    sh.run('sysctl -q net.ipv4.tcp_rmem="4096 87380 6291456"', 2)
    assert t.tcp["rcv_buf"][0] == 87380 and t.tcp["wscale"][0] == 7


def test_stack_sysctls():
    sh, t = shell()
    sh.run("sysctl -w net.inet.tcp.blackhole=2; sysctl -w net.inet.tcp.syncookies_only=1", 1)
    assert t.stack == {"rst_for_closed_ports": False, "syncookies": "always"}
    sh.run("sysctl -q net.ipv4.tcp_syncookies=0 && sysctl -w net.inet.tcp.icmp_may_rst=0", 2)
    assert t.stack["syncookies"] == "off" and t.stack["icmp_may_abort_syn_sent"] is False


def test_rfc5961_pair():
    sh, t = shell()
    sh.run("sysctl -w net.inet.tcp.insecure_rst=1", 1)
    assert "rfc5961" not in t.tcp
    with pytest.raises(ScriptError, match="must agree"):
        sh.check_consistent(2)
    sh.run("sysctl -w net.inet.tcp.insecure_syn=1", 3)
    sh.check_consistent(4)
    assert t.tcp["rfc5961"] == (False, "live")


@pytest.mark.parametrize("cmd, message", [
    ("sysctl -w net.inet.tcp.nonsense=1", "unknown sysctl"),
    ("sysctl -w net.inet.tcp.sack.enabel=1", "did you mean 'net.inet.tcp.sack.enable'"),
    ("sysctl -w net.inet.tcp.sack.enable=7", "expected 0 or 1"),
    ("sysctl -w net.inet.tcp.blackhole=1", "StackConfig has one flag"),
    ("sysctl -w net.ipv4.tcp_fastopen=3", "Fast Open"),
    ("tcpdrop 192.0.2.1 8080 192.0.2.2 40001", "not emulated"),
    ("sockstat -4 -s", "checks nothing"),
    ("sockstat -4 | sort", "not grep"),
])
def test_shell_errors(cmd, message):
    sh, _ = shell()
    with pytest.raises(ScriptError, match=message):
        sh.run(cmd, 7)


ROWS = [
    SockRow("tcp4", "192.0.2.1:8080", "*:*", "LISTEN", 3, listening=True),
    SockRow("tcp4", "192.0.2.1:8080", "192.0.2.2:40001", "ESTABLISHED", 4),
    SockRow("tcp4", "192.0.2.1:8080", "192.0.2.2:40002", "TIME_WAIT", None),
    SockRow("tcp4", "192.0.2.1:9000", "192.0.2.2:40003", "FIN_WAIT_2", 5),
]


@pytest.mark.parametrize("cmd", [
    "sockstat -4 -P tcp -s | grep -c LISTEN | grep 1",
    "sockstat -4 -P tcp -s -p 8080 | grep -c ESTABLISHED | grep 1",
    "sockstat -4 -P tcp -s -p 9000 | grep -c ESTABLISHED | grep 0",
    "sockstat -4 -P tcp -s | grep -c 'FIN_WAIT' | grep 1",
    "sockstat -4 -P tcp -s | grep -v LISTEN | grep -c 8080 | grep 2",
    "sockstat -4c -P tcp -s | grep -c 8080 | grep 2",
    "sockstat -4 -P tcp -s | grep -w ESTABLISHED",
    "sockstat -6 -P tcp -s | grep -c ESTABLISHED | grep 0",
])
def test_sockstat_pipelines_pass(cmd):
    sh, _ = shell(ROWS)
    sh.run(cmd, 1)


@pytest.mark.parametrize("cmd", [
    "sockstat -4 -P tcp -s | grep -c TIME_WAIT | grep 2",
    "sockstat -4 -P tcp -s | grep -c ESTABLISHED | grep 11",     # exact count, not a substring
    "sockstat -4 -P tcp -s | grep CLOSING",
])
def test_sockstat_pipelines_fail(cmd):
    sh, _ = shell(ROWS)
    with pytest.raises(ScriptFailure) as e:
        sh.run(cmd, 9)
    assert e.value.line == 9 and "TIME_WAIT" in e.value.message     # the table is shown


def test_known_sysctls_cover_the_documented_names():
    for name in ("sack.enable", "rfc1323", "recvspace", "sendspace", "ecn.enable", "ecn.maxretries",
                 "blackhole", "insecure_rst", "insecure_syn", "drop_synfin", "delacktime",
                 "rexmit_initial", "rexmit_slop", "rexmit_drop_options", "keepinit", "keepidle",
                 "keepintvl", "keepcnt", "icmp_may_rst", "syncookies", "syncookies_only",
                 "tolerate_missing_ts", "hostcache.purgenow"):
        assert "net.inet.tcp." + name in KNOWN_SYSCTLS
    assert "kern.ipc.maxsockbuf" in KNOWN_SYSCTLS
    for name in ("tcp_sack", "tcp_timestamps", "tcp_window_scaling", "tcp_syncookies", "tcp_rmem",
                 "tcp_wmem", "tcp_min_rtt_wlen", "tcp_early_retrans", "tcp_ecn"):
        assert "net.ipv4." + name in KNOWN_SYSCTLS
