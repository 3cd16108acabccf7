"""What packetdrill scripts assume about the stack under test, as synack configuration.

A profile is plain values: a ``TcpConfig`` (defaults and SYN option layout), a ``StackConfig``,
and the few facts of the socket layer a script can see (``O_NONBLOCK``'s value, SO_RCVBUF
doubling, listen backlog arithmetic, TCP_INFO state numbering). Never a special case in the TCP
code (packetdrill.md §8). Where the table asks for something ``TcpConfig`` has no knob for, the
profile comment says so; ``MISSING_KNOBS`` lists them for the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from synack.pdrill import names
from synack.stack.host import StackConfig
from synack.tcp.config import TcpConfig
from synack.tcp.states import State


@dataclass(frozen=True)
class Profile:
    name: str
    tcp: TcpConfig
    stack: StackConfig
    o_nonblock: int                     # fcntl(F_GETFL) bit
    sockbuf_doubled: bool               # Linux: SO_RCVBUF/SO_SNDBUF set N, reserve (and report) 2N
    min_sockbuf: int                    # smallest buffer setsockopt accepts
    accept_extra: str                   # "plus1" (Linux: backlog + 1) | "3/2" (FreeBSD: 3*backlog/2 + 1)
    connect_again_returns_0: bool       # Linux: connect() after EINPROGRESS completed -> 0 once
    write_while_connecting: str         # "wait" (Linux: block / EAGAIN) | "ENOTCONN" (FreeBSD)
    read_unconnected_errno: str         # read() on a never-connected socket
    write_after_reset: str              # "error" (Linux: ECONNRESET first) | "EPIPE" (FreeBSD sosend)
    states: dict[State, int] = field(default_factory=dict)   # tcpi_state numbering
    default_port: int = 8080            # packetdrill's --bind_port / --connect_port

    def tcp_config(self) -> TcpConfig:
        """A fresh, mutable copy of the TCP defaults."""
        return self.tcp.copy()

    def stack_config(self) -> StackConfig:
        s = self.stack
        return StackConfig(**{f: getattr(s, f) for f in s.__dataclass_fields__})

    def accept_limit(self, backlog: int) -> int:
        """How many established connections the accept queue holds for listen(fd, backlog)."""
        backlog = max(backlog, 0)
        if self.accept_extra == "plus1":
            return backlog + 1          # Linux sk_acceptq_is_full(): ack_backlog > max_ack_backlog
        return 3 * backlog // 2 + 1     # FreeBSD solisten/sonewconn: qlen > 3 * qlimit / 2

    def symbols(self) -> dict[str, int]:
        table = names.symbol_table(self.o_nonblock)
        table.update(names.state_names(self.states))
        return table


_TCP_FIELDS = {f.name for f in fields(TcpConfig)}


def _tcp(knobs: dict) -> TcpConfig:
    """A TcpConfig from the knobs it has. Knobs that do not exist (yet) in TcpConfig are left
    out; ``unsupported_knobs(name)`` lists them."""
    return TcpConfig(**{k: v for k, v in knobs.items() if k in _TCP_FIELDS})


# FreeBSD (nplab corpora): win 65535, <mss 1460,nop,wscale 6,sackOK,TS val ecr 0>.
_FREEBSD_TCP = dict(
    mtu=1500,
    mss=None if "mtu" in _TCP_FIELDS else 1460,   # MTU - 40 (or - 60 for IPv6)
    # net.inet.tcp.recvspace = 65536; FreeBSD rounds the buffer up to a multiple of the MSS
    # after the handshake (65700 at MSS 1460). TcpConfig has no "round rcv_buf to the MSS"
    # knob (MISSING_KNOBS): 65536 is kept, which differs once more than 164 bytes are unread.
    rcv_buf=65536,
    snd_buf=32768,                  # net.inet.tcp.sendspace
    window_scaling=True,
    wscale=6,                       # kern.ipc.maxsockbuf = 2 MiB: 65535 << 6 >= 2 MiB
    sack=True,
    timestamps=True,
    tolerate_missing_ts=False,      # net.inet.tcp.tolerate_missing_ts = 0
    syn_option_order="freebsd",     # mss,nop,wscale,sackOK,TS; SYN-ACK: what the peer offered
    syn_window=None,                # min(65535, SO_RCVBUF)
    ack_delay=0.040,                # net.inet.tcp.delacktime (the table's 40 ms)
    ack_every=2,
    ack_count_segments=True,        # DELAY_ACK: the delayed ACK is not pending yet, else ACK now
    nagle=True,
    nagle_idle_tail=True,           # tcp_output(): "idle" at the start lets the tail of a write go
    initial_window=None,            # RFC 6928 IW10
    cc="newreno",
    hystart=False,                  # newreno's classic slow start (MISSING_KNOBS: hystart)
    limited_transmit=True,          # net.inet.tcp.rfc3042
    dupthresh=3,
    partial_ack_rto="each",         # tcp_newreno_partial_ack(): REXMT stopped, tcp_output restarts it
    newreno_exit="flight",          # newreno_after_recovery(): min(ssthresh, max(pipe, MSS) + MSS)
    rack=False,                     # the default FreeBSD stack has no RACK-TLP
    initial_rto=1.0,                # net.inet.tcp.rexmit_initial
    min_rto=0.030,                  # net.inet.tcp.rexmit_min
    max_rto=64.0,                   # TCPTV_REXMTMAX
    rto_slop=0.200,                 # net.inet.tcp.rexmit_slop: 1, 2.2, 4.2, ...
    syn_retries=6,                  # FreeBSD stops at keepinit (75 s): connect_timeout. Like the
                                    # SYN-ACK's below, under RFC 9293's 3 minutes (MUST-23)
    syn_rexmit_drop_options=False,  # net.inet.tcp.rexmit_drop_options = 0
    synack_retries=3,               # syncache: SYN-ACK sent 1 + 3 times
    r2_retries=12,                  # TCP_MAXRXTSHIFT
    r1_retries=None,                # TCP_MAXRXTSHIFT / 4 only drops the route (in_losing); no report
    msl=30.0,                       # net.inet.tcp.msl: TIME-WAIT 60 s
    fin_wait_2_timeout=600.0,       # orphaned FIN-WAIT-2: TP_MAXIDLE = keepcnt x keepintvl idle
    fin_wait_2_idle=True,           # tcp_timer_2msl: idle since the last segment, checked every keepintvl
    rst_on_close_with_unread=False,  # tcp_disconnect(): flush unread data, then FIN
    rst_timestamps=False,           # no RFC 7323 §5.2 echo (TSval 0, TSecr = SEG.TSval) on a RST
    rtt_appendix_g=False,           # tcp_xmit_timer(): RFC 6298's gains for every sample
    keepalive=False,
    keepalive_idle=7200.0,          # net.inet.tcp.keepidle
    keepalive_interval=75.0,        # net.inet.tcp.keepintvl
    keepalive_count=8,              # net.inet.tcp.keepcnt
    rfc5961=True,                   # insecure_rst = 0, insecure_syn = 0
    drop_synfin=False,
    ecn="accept",                   # net.inet.tcp.ecn.enable = 2
    ecn_syn_retries=1,              # net.inet.tcp.ecn.maxretries = 1
    persist_min=5.0,                # TCPTV_PERSMIN
    connect_timeout=75.0,           # net.inet.tcp.keepinit
    rcv_buf_round_mss=True,         # tcp_mss(): so_rcv rounded up to a multiple of the MSS
)
FREEBSD = Profile(
    name="freebsd",
    tcp=_tcp(_FREEBSD_TCP),
    stack=StackConfig(syncookies="on", rst_for_closed_ports=True),
    o_nonblock=0x0004,
    sockbuf_doubled=False,
    min_sockbuf=1,
    accept_extra="3/2",
    connect_again_returns_0=False,
    write_while_connecting="ENOTCONN",
    read_unconnected_errno="ENOTCONN",
    write_after_reset="EPIPE",
    states=names.FREEBSD_STATES,
)

# Linux (Google corpus): win 64240, <mss 1460,sackOK,TS val ecr 0,nop,wscale 7>.
_LINUX_TCP = dict(
    mtu=1500,
    mss=None if "mtu" in _TCP_FIELDS else 1460,
    # tcp_rmem[1] = 131072. Linux starts the window at 64240 and grows it (rcv_ssthresh,
    # autotuning); TcpConfig has no initial-window clamp (MISSING_KNOBS), so after the
    # handshake synack offers the whole buffer.
    rcv_buf=131072,
    snd_buf=16384,                  # tcp_wmem[1]
    window_scaling=True,
    wscale=7,                       # tcp_rmem[2] = 6 MiB
    sack=True,
    timestamps=True,
    tolerate_missing_ts=True,       # tcp_validate_incoming: PAWS only for segments with TSopt
    syn_option_order="linux",       # mss,sackOK,TS,nop,wscale / mss,nop,nop,sackOK,nop,wscale
    syn_window=65536,               # tcp_full_space() of the default 131072-octet buffer
    syn_window_round_mss=True,      # tcp_select_initial_window: 64240 (1460), 65160 (1448, with TS)
    ack_delay=0.040,                # TCP_DELACK_MIN
    ack_every=2,
    quickack=16,                    # TCP_MAX_QUICKACKS: quick-ACK mode at the start
    quickack_pingpong=True,         # TCP_PINGPONG_THRESH = 1: interactive after one quick reply
    nagle=True,
    nagle_minshall=True,            # tcp_nagle_check / tcp_minshall_check
    initial_window=None,            # IW10
    cc="cubic",
    hystart=False,                  # Linux's HyStart is not HyStart++ (MISSING_KNOBS: hystart)
    limited_transmit=True,
    dupthresh=3,
    partial_ack_rto="each",         # tcp_ack(): FLAG_SET_XMIT_TIMER on every ACK of new data
    newreno_exit="ssthresh",        # tcp_end_cwnd_reduction(): cwnd = ssthresh
    rack=True,                      # tcp_recovery=1: RACK-TLP (RFC 8985)
    tlp_max_ack_delay=0.2,
    initial_rto=1.0,                # TCP_TIMEOUT_INIT
    min_rto=0.200,                  # TCP_RTO_MIN
    max_rto=120.0,                  # TCP_RTO_MAX
    rto_slop=0.0,
    syn_retries=6,                  # tcp_syn_retries: gives up after 127 s (the SYN-ACK after
    synack_retries=5,               # tcp_synack_retries: 63 s), under RFC 9293's 3 minutes (MUST-23)
    r2_retries=15,                  # tcp_retries2
    r1_retries=None,                # tcp_retries1 = 3: negative advice to the route and MTU probing,
                                    # no report to the application
    msl=30.0,                       # TCP_TIMEWAIT_LEN = 60 s
    fin_wait_2_timeout=60.0,        # tcp_fin_timeout
    rst_on_close_with_unread=True,  # tcp_close(): data_was_unread -> RST (RFC 2525 §2.17)
    rst_timestamps=False,           # tcp_v4_send_reset(): no TSopt on a RST answering a segment
    rtt_appendix_g=False,           # tcp_rtt_estimator(): its own gains for every sample
    keepalive=False,
    keepalive_idle=7200.0,          # tcp_keepalive_time
    keepalive_interval=75.0,        # tcp_keepalive_intvl
    keepalive_count=9,              # tcp_keepalive_probes
    rfc5961=True,
    drop_synfin=False,
    ecn="accept",                   # tcp_ecn = 2
    ecn_syn_retries=0,              # tcp_ecn_fallback = 1: a retransmitted SYN is not ECN-setup
    rst_ack_on_abort=True,          # tcp_send_active_reset: RST|ACK
)
LINUX = Profile(
    name="linux",
    tcp=_tcp(_LINUX_TCP),
    stack=StackConfig(syncookies="on", rst_for_closed_ports=True),
    o_nonblock=0x0800,
    sockbuf_doubled=True,
    min_sockbuf=2304,                   # SOCK_MIN_RCVBUF / 2 (Linux doubles it)
    accept_extra="plus1",
    connect_again_returns_0=True,
    write_while_connecting="wait",
    read_unconnected_errno="ENOTCONN",
    write_after_reset="error",
    states=names.LINUX_STATES,
)

PROFILES: dict[str, Profile] = {"freebsd": FREEBSD, "linux": LINUX}
_KNOBS = {"freebsd": _FREEBSD_TCP, "linux": _LINUX_TCP}


def unsupported_knobs(name: str) -> list[str]:
    """The profile's TcpConfig knobs that TcpConfig does not have (yet): left at synack's
    behaviour, so scripts depending on them fail (see also ``MISSING_KNOBS``)."""
    return sorted(k for k in _KNOBS[name] if k not in _TCP_FIELDS)

# What §8 of packetdrill.md asks for that TcpConfig / StackConfig cannot say (for the report).
MISSING_KNOBS: dict[str, str] = {
    "initial_rcv_window": "Linux advertises 64240 at first and grows the window (rcv_ssthresh / "
                          "autotuning); synack offers the whole rcv_buf at once",
    "hystart": "Linux CUBIC leaves slow start by its own HyStart (ACK trains and delay, not RFC 9406); "
               "synack's HyStart++ is off in both profiles, so slow start there is RFC 5681's",
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r} (linux or freebsd)") from None
