"""Named constants a packetdrill script may write, and their values in the emulation.

Scripts compare results by name (``= -1 ECONNREFUSED``, ``[ECONNREFUSED]``, ``O_RDWR|O_NONBLOCK``),
so the numbers only have to be consistent inside the interpreter: they are Linux's (errno from
Python's ``errno`` module, which is the host's). Where FreeBSD and Linux differ in a value a script
can see as a number (``O_NONBLOCK`` in ``fcntl(F_GETFL)``), the profile decides
(``synack.pdrill.profiles``). Socket option names are dispatched by name, so the FreeBSD-only
ones (``TCP_NOPUSH``, ``TCP_NOOPT``, ``TCP_KEEPINIT``) just need distinct values.
"""

from __future__ import annotations

import errno as _errno

from synack.tcp.states import State

# --- errno ------------------------------------------------------------------------------------

ERRNO: dict[str, int] = {name: getattr(_errno, name) for name in dir(_errno)
                         if name.startswith("E") and name.isupper() and isinstance(getattr(_errno, name), int)}
ERRNO.setdefault("EWOULDBLOCK", _errno.EAGAIN)


def errno_name(value: int) -> str:
    """``EAGAIN`` for 11 (the name a script most likely wrote)."""
    preferred = {_errno.EAGAIN: "EAGAIN", _errno.ENOTSUP: "EOPNOTSUPP"}
    if value in preferred:
        return preferred[value]
    return _errno.errorcode.get(value, f"errno {value}")


# --- sockets, options, flags ------------------------------------------------------------------

SOCKET: dict[str, int] = {
    # families, types, protocols
    "AF_UNSPEC": 0, "AF_INET": 2, "AF_INET6": 10, "PF_INET": 2, "PF_INET6": 10,
    "SOCK_STREAM": 1, "SOCK_DGRAM": 2, "SOCK_RAW": 3,
    "IPPROTO_IP": 0, "IPPROTO_TCP": 6, "IPPROTO_UDP": 17, "IPPROTO_IPV6": 41, "IPPROTO_SCTP": 132,
    "SOL_SOCKET": 1, "SOL_TCP": 6, "SOL_IP": 0, "SOL_IPV6": 41,
    "INADDR_ANY": 0,
    # SOL_SOCKET options (Linux numbers)
    "SO_DEBUG": 1, "SO_REUSEADDR": 2, "SO_TYPE": 3, "SO_ERROR": 4, "SO_DONTROUTE": 5,
    "SO_BROADCAST": 6, "SO_SNDBUF": 7, "SO_RCVBUF": 8, "SO_KEEPALIVE": 9, "SO_OOBINLINE": 10,
    "SO_LINGER": 13, "SO_REUSEPORT": 15, "SO_RCVLOWAT": 18, "SO_SNDLOWAT": 19, "SO_RCVTIMEO": 20,
    "SO_SNDTIMEO": 21, "SO_ACCEPTCONN": 30, "SO_SNDBUFFORCE": 32, "SO_RCVBUFFORCE": 33,
    # IPPROTO_TCP options (Linux numbers; FreeBSD-only names get values of their own)
    "TCP_NODELAY": 1, "TCP_MAXSEG": 2, "TCP_CORK": 3, "TCP_KEEPIDLE": 4, "TCP_KEEPINTVL": 5,
    "TCP_KEEPCNT": 6, "TCP_SYNCNT": 7, "TCP_LINGER2": 8, "TCP_DEFER_ACCEPT": 9,
    "TCP_WINDOW_CLAMP": 10, "TCP_INFO": 11, "TCP_QUICKACK": 12, "TCP_CONGESTION": 13,
    "TCP_USER_TIMEOUT": 18, "TCP_NOTSENT_LOWAT": 25,
    "TCP_NOPUSH": 0x1004, "TCP_NOOPT": 0x1008, "TCP_KEEPINIT": 0x1080,
    # IPPROTO_IP / IPPROTO_IPV6 options
    "IP_TOS": 1, "IP_TTL": 2, "IP_MTU_DISCOVER": 10, "IPV6_UNICAST_HOPS": 16, "IPV6_TCLASS": 67,
    "IPV6_V6ONLY": 26,
    # send/recv flags
    "MSG_OOB": 0x1, "MSG_PEEK": 0x2, "MSG_DONTROUTE": 0x4, "MSG_TRUNC": 0x20, "MSG_DONTWAIT": 0x40,
    "MSG_EOR": 0x80, "MSG_WAITALL": 0x100, "MSG_NOSIGNAL": 0x4000, "MSG_MORE": 0x8000,
    # shutdown
    "SHUT_RD": 0, "SHUT_WR": 1, "SHUT_RDWR": 2,
    # fcntl (O_NONBLOCK comes from the profile)
    "F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3, "F_SETFL": 4, "O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2,
    "FD_CLOEXEC": 1,
    # poll
    "POLLIN": 0x1, "POLLPRI": 0x2, "POLLOUT": 0x4, "POLLERR": 0x8, "POLLHUP": 0x10, "POLLNVAL": 0x20,
    "POLLRDNORM": 0x40, "POLLRDBAND": 0x80, "POLLWRNORM": 0x100, "POLLWRBAND": 0x200,
    "POLLRDHUP": 0x2000,
    # TCP_INFO tcpi_options bits (Linux include/uapi/linux/tcp.h; FreeBSD uses the same bits)
    "TCPI_OPT_TIMESTAMPS": 1, "TCPI_OPT_SACK": 2, "TCPI_OPT_WSCALE": 4, "TCPI_OPT_ECN": 8,
    "TCPI_OPT_ECN_SEEN": 16, "TCPI_OPT_SYN_DATA": 32, "TCPI_OPT_TOE": 0x40,
    # IP_MTU_DISCOVER values
    "IP_PMTUDISC_DONT": 0, "IP_PMTUDISC_WANT": 1, "IP_PMTUDISC_DO": 2, "IP_PMTUDISC_PROBE": 3,
    # congestion avoidance states (tcpi_ca_state)
    "TCP_CA_Open": 0, "TCP_CA_Disorder": 1, "TCP_CA_CWR": 2, "TCP_CA_Recovery": 3, "TCP_CA_Loss": 4,
}

# the inverse for a level or option written as a number
SOCKOPT_LEVEL = {1: "SOL_SOCKET", 6: "IPPROTO_TCP", 0: "IPPROTO_IP", 41: "IPPROTO_IPV6"}
LEVEL_ALIASES = {"SOL_TCP": "IPPROTO_TCP", "SOL_IP": "IPPROTO_IP", "SOL_IPV6": "IPPROTO_IPV6"}
_OPTS_BY_LEVEL = {
    "SOL_SOCKET": [n for n in SOCKET if n.startswith("SO_")],
    "IPPROTO_TCP": [n for n in SOCKET if n.startswith("TCP_") and not n.startswith("TCP_CA_")],
    "IPPROTO_IP": [n for n in SOCKET if n.startswith("IP_") and not n.startswith("IP_PMTUDISC_")],
    "IPPROTO_IPV6": [n for n in SOCKET if n.startswith("IPV6_")],
}


def option_name(level: str, value: int) -> str | None:
    """The name of option number ``value`` at ``level`` (a level name), or None."""
    for name in _OPTS_BY_LEVEL.get(level, ()):
        if SOCKET[name] == value:
            return name
    return None


# --- TCP states as TCP_INFO reports them ------------------------------------------------------

# Linux numbering (include/net/tcp_states.h)
LINUX_STATES: dict[State, int] = {
    State.ESTABLISHED: 1, State.SYN_SENT: 2, State.SYN_RECEIVED: 3, State.FIN_WAIT_1: 4,
    State.FIN_WAIT_2: 5, State.TIME_WAIT: 6, State.CLOSED: 7, State.CLOSE_WAIT: 8,
    State.LAST_ACK: 9, State.LISTEN: 10, State.CLOSING: 11,
}
# FreeBSD numbering (netinet/tcp_fsm.h, TCPS_*)
FREEBSD_STATES: dict[State, int] = {
    State.CLOSED: 0, State.LISTEN: 1, State.SYN_SENT: 2, State.SYN_RECEIVED: 3,
    State.ESTABLISHED: 4, State.CLOSE_WAIT: 5, State.FIN_WAIT_1: 6, State.CLOSING: 7,
    State.LAST_ACK: 8, State.FIN_WAIT_2: 9, State.TIME_WAIT: 10,
}

# Every spelling a script may use for a state, in the TCP_*, TCPI_* and TCPS_* families.
STATE_SPELLINGS: dict[State, tuple[str, ...]] = {
    State.CLOSED: ("CLOSE", "CLOSED"),
    State.LISTEN: ("LISTEN",),
    State.SYN_SENT: ("SYN_SENT",),
    State.SYN_RECEIVED: ("SYN_RECV", "SYN_RECEIVED", "SYN_RCVD"),
    State.ESTABLISHED: ("ESTABLISHED",),
    State.FIN_WAIT_1: ("FIN_WAIT1", "FIN_WAIT_1"),
    State.FIN_WAIT_2: ("FIN_WAIT2", "FIN_WAIT_2"),
    State.CLOSE_WAIT: ("CLOSE_WAIT",),
    State.CLOSING: ("CLOSING",),
    State.LAST_ACK: ("LAST_ACK",),
    State.TIME_WAIT: ("TIME_WAIT",),
}

# FreeBSD's names, as sockstat(1) prints them
SOCKSTAT_STATE: dict[State, str] = {
    State.CLOSED: "CLOSED", State.LISTEN: "LISTEN", State.SYN_SENT: "SYN_SENT",
    State.SYN_RECEIVED: "SYN_RCVD", State.ESTABLISHED: "ESTABLISHED", State.CLOSE_WAIT: "CLOSE_WAIT",
    State.FIN_WAIT_1: "FIN_WAIT_1", State.CLOSING: "CLOSING", State.LAST_ACK: "LAST_ACK",
    State.FIN_WAIT_2: "FIN_WAIT_2", State.TIME_WAIT: "TIME_WAIT",
}


def state_names(numbering: dict[State, int]) -> dict[str, int]:
    """``TCP_ESTABLISHED``, ``TCPI_ESTABLISHED``, ``TCPS_ESTABLISHED``... -> number."""
    out: dict[str, int] = {}
    for state, spellings in STATE_SPELLINGS.items():
        for s in spellings:
            for prefix in ("TCP_", "TCPI_", "TCPS_"):
                out[prefix + s] = numbering[state]
    return out


def symbol_table(o_nonblock: int) -> dict[str, int]:
    """Every name a system call argument or result may use."""
    table = dict(ERRNO)
    table.update(SOCKET)
    table["O_NONBLOCK"] = o_nonblock
    table["O_NDELAY"] = o_nonblock
    return table
