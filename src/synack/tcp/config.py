"""Every knob of a TCP connection, in one place. Profiles (``linux``, ``freebsd``) are values of
this class, never special cases in the TCP code."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(slots=True)
class TcpConfig:
    # --- segment sizes and buffers ---
    mtu: int | None = None          # MTU of the interface the connection leaves by (octets); None:
                                    # the link's, as the stack learns it (Stack.link_mtu), else 1500
    mss: int | None = None          # MSS we advertise; None: derived from mtu (advertised_mss)
    rcv_buf: int = 262144           # receive buffer: bounds the window we offer (SO_RCVBUF)
    snd_buf: int = 262144           # send buffer (SO_SNDBUF)
    # --- options offered on our SYN / SYN-ACK ---
    window_scaling: bool = True     # RFC 7323 §2
    wscale: int | None = None       # shift to offer; None: smallest that lets the window cover rcv_buf
    sack: bool = True               # RFC 2018 SACK-permitted
    timestamps: bool = True         # RFC 7323 §3
    tolerate_missing_ts: bool = False  # accept a segment without TSopt once timestamps are in use
                                    # (Linux; FreeBSD tolerate_missing_ts=1); False: drop it (RFC 7323
                                    # §3.2 SHOULD)
    syn_option_order: str = "linux"  # "linux": mss,sackOK,TS,nop,wscale; "freebsd": mss,nop,wscale,sackOK,TS
    syn_window: int | None = None   # window field in our SYN/SYN-ACK (None: min(65535, rcv_buf))
    syn_window_round_mss: bool = False  # ... rounded down to a multiple of the MSS the peer's segments
                                    # carry (less 12 octets when a SYN-ACK agrees on timestamps), as
                                    # Linux tcp_select_initial_window does: 64240, or 65160 with TS
    # --- acknowledgements (RFC 9293 §3.8.6.3, MUST-40 / SHLD-19) ---
    ack_delay: float | None = 0.040  # delayed-ACK timeout; None: ACK every segment at once
    ack_every: int = 2              # ACK at least every 2nd full-sized segment
    ack_count_segments: bool = False  # ... or every ack_every-th segment of any size (FreeBSD DELAY_ACK:
                                    # a second segment while the delayed ACK is pending is ACKed)
    quickack: int = 0               # Linux quick-ACK mode: ACK up to this many data segments at once
                                    # when data starts, after an idle gap longer than the RTO, and on
                                    # duplicate or out-of-window data (Linux TCP_MAX_QUICKACKS = 16);
                                    # 0 = off (RFC 9293 §3.8.6.3 delayed ACKs throughout)
    quickack_pingpong: bool = False  # ... and not while the connection is interactive: data sent within
                                    # ack_delay of data received ends quick ACKs until a delayed ACK
                                    # times out or quick-ACK mode is entered again (Linux pingpong)
    # --- sending ---
    nagle: bool = True              # RFC 896 / RFC 9293 §3.7.4; False = TCP_NODELAY
    nagle_minshall: bool = False    # Minshall's variant (Linux): a small segment waits only while an
                                    # earlier *small* segment is unacknowledged, not any data
    nagle_idle_tail: bool = False   # BSD: when nothing was in flight as an output pass began, its
                                    # last (sub-MSS) segment goes too (FreeBSD tcp_output "idle")
    initial_window: int | None = None  # bytes; None: RFC 6928 IW10
    cc: str = "cubic"               # congestion control by registry name (RFC 9438 CUBIC; "newreno")
    cc_options: tuple[tuple[str, object], ...] = ()   # keyword arguments for that algorithm's class,
                                    # e.g. (("fast_convergence", False),) for CUBIC alone on a path
                                    # (RFC 9438 §4.7 SHOULD disable it there)
    hystart: bool = True            # first slow start as HyStart++ (RFC 9406; RFC 9438 §4.10 SHOULD)
    tso_max: int = 0                # TSO: new data leaves in segments of up to this many payload bytes
                                    # (a multiple of the MSS) for a link that cuts them (virtio-net GSO);
                                    # 0 = off. Only when an MSS-sized piece fills the MTU exactly.
    # --- loss recovery (with SACK: RFC 6675 scoreboard, RFC 6937 PRR; without: RFC 6582) ---
    limited_transmit: bool = True   # RFC 3042 (SHOULD)
    dupthresh: int = 3              # DupThresh, RFC 5681 §3.2 / RFC 6675 §2
    partial_ack_rto: str = "first"  # without SACK, which partial ACKs of NewReno recovery restart the
                                    # RTO: "each" (RFC 6298 §5.3, the Slow-but-Steady variant of RFC
                                    # 3782 §4; Linux, FreeBSD) or "first" (RFC 6582 §3.2 step 5, the
                                    # Impatient variant: many holes end in a timeout and slow start)
    newreno_exit: str = "ssthresh"  # without SACK, cwnd when a full ACK ends recovery (RFC 6582 §3.2
                                    # step 3): "ssthresh" option (2) (Linux); "flight" option (1),
                                    # min(ssthresh, max(FlightSize, SMSS) + SMSS), no burst (FreeBSD;
                                    # 4-6 % less goodput in bench/cc.py's lossy cells without SACK)
    rack: bool = True               # RFC 8985 RACK-TLP loss detection (needs SACK); False: RFC 6675 IsLost
    tlp_max_ack_delay: float = 0.2  # RFC 8985 §7.2 TLP.max_ack_delay (Linux TCP_DELACK_MAX)
    # --- retransmission (RFC 6298, RFC 9293 §3.8.1, §3.8.3) ---
    initial_rto: float = 1.0
    min_rto: float = 1.0            # RFC 6298 §2.4 (SHOULD 1 s); Linux uses 0.2
    max_rto: float = 120.0
    rto_slop: float = 0.0           # added to each backed-off RTO (FreeBSD rexmit_slop)
    rtt_appendix_g: bool = True     # timestamp samples weigh alpha, beta / ceil(FlightSize / 2 SMSS)
                                    # (RFC 7323 §4.2 SHOULD, Appendix G); False: RFC 6298's per sample
    syn_retries: int = 7            # SYN retransmissions before "timed out": with the RTO bounds above
                                    # the last at 127 s, giving up at 247 s, so R2 for a SYN is over
                                    # 3 minutes (RFC 9293 §3.8.3, MUST-23; Linux tcp_syn_retries = 6:
                                    # 127 s, the linux profile)
    syn_rexmit_drop_options: bool = False  # the third SYN retransmission and later ones offer only MSS
                                    # (FreeBSD net.inet.tcp.rexmit_drop_options)
    synack_retries: int = 7         # SYN-ACK retransmissions: 247 s as for the SYN (MUST-23; Linux
                                    # tcp_synack_retries = 5: 63 s)
    r2_retries: int = 15            # data retransmissions before giving up (R2, MUST-20; Linux tcp_retries2)
    r1_retries: int | None = 3      # retransmissions of one segment (SYN included) that report a
                                    # SoftError, once until an ACK of new data (R1, RFC 9293 §3.8.3:
                                    # SHLD-9, SHLD-10 "at least 3"); None: no report
    user_timeout: float | None = None  # give up when unacked data is older than this (RFC 5482 / R2 in time)
    persist_max: float = 60.0       # cap of the zero-window probe interval (RFC 9293 §3.8.6.1)
    persist_min: float = 0.0        # floor of that interval (FreeBSD TCPTV_PERSMIN = 5 s)
    connect_timeout: float | None = None  # give up an opening connection after this long, whatever
                                          # the retries (FreeBSD keepinit, TCP_KEEPINIT); None: retries only
    rcv_buf_round_mss: bool = False  # after the handshake round rcv_buf up to a multiple of the MSS (FreeBSD)
    # --- closing ---
    msl: float = 30.0               # TIME-WAIT lasts 2*MSL (60 s, like Linux) (MUST-13)
    fin_wait_2_timeout: float | None = None  # after close(), FIN-WAIT-2 ends (silently) this long after
                                    # it began if no FIN came (Linux tcp_fin_timeout, 60 s); None: wait
    fin_wait_2_idle: bool = False   # ... counted from the last segment received instead, looked at
                                    # every keepalive_interval (FreeBSD tcp_timer_2msl, TP_MAXIDLE)
    rst_on_close_with_unread: bool = True   # RFC 2525 §2.17, RFC 9293 §3.10.4
    rst_timestamps: bool = True     # a RST answering a segment with a TSopt echoes it: TSval 0,
                                    # TSecr = SEG.TSval (RFC 7323 §5.2 RECOMMENDED); False: no TSopt
    rst_ack_on_abort: bool = False  # True: an abort's RST also carries ACK = RCV.NXT (Linux, FreeBSD);
                                    # False: <SEQ=SND.NXT><CTL=RST> as RFC 9293 §3.10.5 writes it
    # --- keep-alive (RFC 9293 §3.8.4, MUST-24..29) ---
    keepalive: bool = False         # off by default (MUST-25)
    keepalive_idle: float = 7200.0  # default no less than two hours (MUST-28)
    keepalive_interval: float = 75.0
    keepalive_count: int = 9
    # --- RFC 5961 ---
    rfc5961: bool = True            # challenge ACKs for in-window RST and for SYN (False: RFC 793 rules)
    challenge_ack_limit: int = 1000  # challenge ACKs per second (RFC 5961 §7)
    drop_synfin: bool = False
    # --- ECN (RFC 3168 §6.1) ---
    ecn: str = "accept"             # "off" | "on" (request on our SYN, accept) | "accept" (answer an
                                    # ECN-setup SYN only): Linux tcp_ecn 0/1/2, FreeBSD ecn.enable;
                                    # both kernels default to "accept"
    ecn_syn_retries: int = 1        # SYN retransmissions still ECN-setup; later ones have ECE and CWR
                                    # clear (§6.1.1.1; FreeBSD ecn.maxretries = 1, Linux 0)
    # --- IP ---
    tos: int = 0                    # IPv4 TOS / IPv6 Traffic Class of every segment; may change on
                                    # a live connection (RFC 9293 §3.9.1, MUST-48; IP_TOS)

    def __post_init__(self) -> None:
        """A knob that takes one of a few words takes only those: a misspelt one is an error
        here, not a silent default later."""
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"TcpConfig.{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")

    def copy(self, **changes) -> "TcpConfig":
        if changes:
            return replace(self, **changes)
        return _copy(self)          # every new connection takes a copy: replace() is ~10x slower

    def advertised_mss(self, ipv6: bool) -> int:
        """The MSS option we send: ``mss`` if set, else the MTU less the fixed IP and TCP headers,
        RFC 9293 §3.7.1 (MUST-14, MUST-67): 40 octets for IPv4, 60 for IPv6 (1460 / 1440 at MTU 1500)."""
        # (TcpConnection._eff_mss and OutputMixin._advertise_window write this out: a change
        # here goes to both)
        m = self.mss
        if m is not None:
            return m
        # max(..., 88) written out: asked several times per segment, and the builtin parses
        # keyword arguments on every call (~20 times the cost of the comparison)
        m = (self.mtu or 1500) - (60 if ipv6 else 40)
        return m if m > 88 else 88

    def syn_window_field(self, rcv_buf: int, mss: int) -> int:
        """The window field of our SYN or SYN-ACK (never scaled, RFC 7323 §2.2) with a receive
        buffer of ``rcv_buf`` octets, for segments of ``mss`` payload octets from the peer."""
        space = self.syn_window if self.syn_window is not None else rcv_buf
        if self.syn_window_round_mss and space > mss > 0:
            space -= space % mss
        return space if space < 65535 else 65535      # min(); asked for every SYN-ACK

    def offered_wscale(self) -> int:
        """The shift we offer: smallest s <= 14 with 65535 << s >= rcv_buf (RFC 7323 §2.3)."""
        if self.wscale is not None:
            return min(self.wscale, 14)     # RFC 7323 §2.3: "MUST be limited to 14"
        rcv_buf = self.rcv_buf
        if rcv_buf <= 65535:
            return 0
        if rcv_buf.__class__ is int:
            # the smallest s with 2**s >= ceil(rcv_buf / 65535), at most 14: what the loop
            # below finds, in one step (asked twice per connection)
            s = (-(-rcv_buf // 65535) - 1).bit_length()
            return s if s < 14 else 14
        s = 0
        while s < 14 and (65535 << s) < rcv_buf:
            s += 1
        return s


_CHOICES = {"syn_option_order": ("linux", "freebsd"), "partial_ack_rto": ("first", "each"),
            "newreno_exit": ("ssthresh", "flight"), "ecn": ("off", "on", "accept")}


def _field_copier():
    """A plain copy of every field (the dataclass's own list, so a field added later is copied
    too): ``replace()`` rebuilds keyword arguments and runs ``__init__``, costly per SYN."""
    names = [f.name for f in fields(TcpConfig)]
    body = "".join(f"    c.{n} = s.{n}\n" for n in names)
    ns: dict = {"new": object.__new__, "TcpConfig": TcpConfig}
    exec(f"def _copy(s):\n    c = new(TcpConfig)\n{body}    return c\n", ns)
    return ns["_copy"]


_copy = _field_copier()
