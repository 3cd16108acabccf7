"""``TcpInfo``: a snapshot of a connection, like Linux's TCP_INFO (RFC 9293 §3.10.6 STATUS)."""

from __future__ import annotations

from dataclasses import dataclass, field

from synack.tcp.states import State


@dataclass(frozen=True, slots=True)
class TcpInfo:
    state: State
    rto: float                 # seconds, current (with backoff)
    rtt: float | None          # SRTT, seconds
    rttvar: float | None
    snd_cwnd: int              # bytes
    snd_ssthresh: int          # bytes
    snd_mss: int               # effective send MSS
    rcv_mss: int
    unacked: int               # bytes in flight (SND.NXT - SND.UNA)
    retransmits: int           # consecutive RTOs so far
    total_retrans: int
    backoff: int
    snd_wnd: int
    rcv_wnd: int
    snd_wscale: int
    rcv_wscale: int
    wscale_ok: bool
    timestamps_ok: bool
    sack_ok: bool
    iss: int
    irs: int
    snd_una: int
    snd_nxt: int
    rcv_nxt: int
    send_queue: int            # bytes written and not yet acknowledged
    recv_queue: int            # bytes received in order and not yet read
    cc: str
    timers: dict = field(default_factory=dict)
    ecn_ok: bool = False       # ECN negotiated (RFC 3168 §6.1.1; Linux TCPI_OPT_ECN)
    urgent_pending: int = 0    # urgent octets not yet read (RFC 9293 §3.8.5, MUST-33)
