"""Shell lines of a packetdrill script, emulated: never run (packetdrill.md §7).

Understood:

* ``sysctl [-q] [-w] NAME=VALUE ...`` with Linux (``net.ipv4.tcp_*``, ``net.core.*``) and FreeBSD
  (``net.inet.tcp.*``, ``kern.ipc.*``) names, mapped onto ``TcpConfig`` / ``StackConfig`` at that
  moment of the script; ``sysctl [-n] NAME`` (a read) is accepted for a known name.
* ``sockstat -4|-6 -P tcp -s [-p PORT] [-l|-c] | grep ... | grep -c STATE | grep N``: the stack's
  sockets are listed as FreeBSD's sockstat(1) would, the greps filter them, and the final
  ``grep N`` after a count asserts exactly N (the script fails otherwise).
* the Linux corpora's untimed ``../common/defaults.sh`` (the profile *is* those defaults).
* several commands joined with ``;`` or ``&&``.

Anything else, an unknown sysctl name, or a value synack has no knob for, is a ``ScriptError``
saying so: never a silent pass.

Scopes. A kernel reads each sysctl at some moment; the emulation applies it to the same set of
configurations: ``socket`` (sockets created later: buffer sizes, initial RTO), ``syn`` (also
every existing socket and listener, for connections opened later: SYN options), ``live`` (also
the established connections: delayed ACK, RTO slop, keep-alive timing, RFC 5961, ...). A socket
option set with ``setsockopt`` wins over a later sysctl for that socket.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from synack.pdrill.errors import ScriptError
from synack.pdrill.outcome import ScriptFailure
from synack.tcp.config import TcpConfig

__all__ = ["Shell", "ShellTarget", "SockRow", "KNOWN_SYSCTLS"]


@dataclass(frozen=True, slots=True)
class SockRow:
    """One line of sockstat(1): a socket or a connection without a descriptor (TIME-WAIT...)."""
    proto: str              # "tcp4" | "tcp6"
    local: str              # "192.0.2.1:8080"
    foreign: str            # "192.0.2.2:40000" or "*:*"
    state: str              # FreeBSD spelling: ESTABLISHED, SYN_RCVD, TIME_WAIT, ...
    fd: int | None
    listening: bool = False

    def local_port(self) -> int | None:
        return _port(self.local)

    def foreign_port(self) -> int | None:
        return _port(self.foreign)

    def format(self) -> str:
        user, cmd, pid, fd = ("root", "packetdrill", "1000", str(self.fd)) if self.fd is not None \
            else ("??", "??", "??", "??")
        return f"{user:<8} {cmd:<11} {pid:<5} {fd:>3} {self.proto:<6} {self.local:<21} {self.foreign:<21} {self.state}"


def _port(endpoint: str) -> int | None:
    tail = endpoint.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


SOCKSTAT_HEADER = ("USER     COMMAND     PID    FD PROTO  LOCAL ADDRESS         FOREIGN ADDRESS       "
                   "CONN STATE")


class ShellTarget(Protocol):
    """What the shell emulation changes and reads (the interpreter implements it)."""

    def set_tcp(self, field: str, value: object, scope: str) -> None: ...
    def set_stack(self, field: str, value: object) -> None: ...
    def tcp_value(self, field: str) -> object: ...
    def sockstat_rows(self) -> list[SockRow]: ...


def has_knob(field: str) -> bool:
    return field in TcpConfig.__dataclass_fields__


# ---------------------------------------------------------------------------------------------


class Shell:
    """The emulated shell of one script run."""

    def __init__(self, target: ShellTarget, path: str) -> None:
        self.t = target
        self.path = path
        self.line = 0
        # state several sysctls share
        self._insecure = {"rst": False, "syn": False}     # "ack" joins once a script sets it
        self._delack_ms = 40.0
        self._delayed_ack = True
        self._rmem_max = 212992            # Linux net.core.rmem_max
        self._tcp_rmem_max = 6291456       # Linux tcp_rmem[2]
        self._syncookies = True
        self._syncookies_only = False
        self.pending_error: ScriptError | None = None

    # --- entry point --------------------------------------------------------------------------

    def run(self, command: str, line: int) -> None:
        """Run one backquoted command (possibly ``a; b`` or ``a && b``)."""
        self.line = line
        for part in re.split(r"\s*(?:;|&&)\s*", command.strip()):
            if part:
                self._one(part)

    def check_consistent(self, line: int) -> None:
        """Raise an error left by sysctls that only make sense together (see ``_rfc5961``)."""
        if self.pending_error is not None:
            err, self.pending_error = self.pending_error, None
            raise ScriptError(self.path, err.line, err.message)

    def _error(self, message: str) -> ScriptError:
        return ScriptError(self.path, self.line, message)

    def _one(self, command: str) -> None:
        if "|" in command:
            return self._pipeline([p.strip() for p in command.split("|")])
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise self._error(f"cannot read shell command `{command}`: {e}") from None
        if not argv:
            return
        prog = argv[0].rsplit("/", 1)[-1]
        if prog == "sysctl":
            return self._sysctl(argv[1:])
        if prog in ("defaults.sh", "set_sysctls.py") or argv[0].endswith("/defaults.sh"):
            return                          # the profile is the corpus defaults
        if prog in ("true", ":"):
            return
        if prog == "sockstat":
            raise self._error("sockstat alone checks nothing: use sockstat ... | grep -c STATE | grep N")
        raise self._error(f"shell command '{prog}' is not emulated (synack understands sysctl, "
                          "sockstat | grep pipelines and defaults.sh)")

    # --- sysctl ---------------------------------------------------------------------------------

    def _sysctl(self, args: list[str]) -> None:
        assigns: list[tuple[str, str]] = []
        reads: list[str] = []
        i = 0
        while i < len(args):
            a = args[i]
            i += 1
            if a in ("-w", "-q", "-n", "-e", "-b", "-i"):
                continue
            if a.startswith("-"):
                raise self._error(f"sysctl option {a} is not emulated")
            if "=" in a:
                name, _, value = a.partition("=")
                if value == "" and i < len(args) and not args[i].startswith("-") and "=" not in args[i]:
                    value = args[i]
                    i += 1
                assigns.append((name.strip(), value.strip().strip("\"'")))
            else:
                reads.append(a)
        if not assigns and not reads:
            raise self._error("sysctl without a name")
        for name in reads:
            if name not in KNOWN_SYSCTLS:
                raise self._error(f"unknown sysctl '{name}'")
        for name, value in assigns:
            self.set(name, value)

    def set(self, name: str, value: str) -> None:
        """Apply ``sysctl -w name=value``."""
        handler = _HANDLERS.get(name)
        if handler is None:
            hint = _suggest(name)
            raise self._error(f"unknown sysctl '{name}'" + (f" (did you mean '{hint}'?)" if hint else ""))
        handler(self, name, value)

    # value parsing

    def _int(self, name: str, value: str) -> int:
        try:
            return int(value, 0)
        except ValueError:
            raise self._error(f"sysctl {name}: expected an integer, got '{value}'") from None

    def _bool(self, name: str, value: str) -> bool:
        v = self._int(name, value)
        if v not in (0, 1):
            raise self._error(f"sysctl {name}: expected 0 or 1, got {v}")
        return bool(v)

    def _triple(self, name: str, value: str) -> tuple[int, int, int]:
        parts = value.replace(",", " ").split()
        if len(parts) != 3:
            raise self._error(f"sysctl {name}: expected three numbers 'min default max', got '{value}'")
        a, b, c = (self._int(name, p) for p in parts)
        return a, b, c

    def _knob(self, name: str, field: str, value: object, scope: str, why: str) -> None:
        """Set a TcpConfig field that synack may not have yet (a missing knob is an error)."""
        if not has_knob(field):
            raise self._error(f"sysctl {name}={value}: synack has no knob for this ({why}; "
                              f"TcpConfig.{field} is missing)")
        self.t.set_tcp(field, value, scope)

    def _only(self, name: str, value: str, accepted: tuple[int, ...], why: str) -> None:
        """A sysctl synack can honour only at the value(s) it behaves like."""
        v = self._int(name, value)
        if v not in accepted:
            raise self._error(f"sysctl {name}={v}: synack cannot do this ({why}); "
                              f"accepted: {', '.join(map(str, accepted))}")

    # --- RFC 5961 (one knob in synack for the RST, SYN and ACK checks) ---

    def _rfc5961(self, which: str, insecure: bool) -> None:
        self._insecure[which] = insecure
        values = set(self._insecure.values())
        if len(values) == 1:
            self.pending_error = None
            self.t.set_tcp("rfc5961", not insecure, "live")
        else:
            # TcpConfig.rfc5961 switches §3 (RST), §4 (SYN) and §5 (ACK) together: a mix cannot be
            # emulated. The next sysctl may restore agreement, so complain only at the next event.
            mixed = ", ".join(f"insecure_{k}={int(v)}" for k, v in self._insecure.items())
            self.pending_error = ScriptError(
                self.path, self.line, f"{mixed}: synack has one knob for the RFC 5961 checks "
                "(TcpConfig.rfc5961 covers RST, SYN and ACK together), so they must agree")

    # --- sockstat | grep ... ---

    def _pipeline(self, stages: list[str]) -> None:
        try:
            argvs = [shlex.split(s) for s in stages]
        except ValueError as e:
            raise self._error(f"cannot read shell pipeline: {e}") from None
        if not argvs[0] or argvs[0][0].rsplit("/", 1)[-1] != "sockstat":
            raise self._error("only 'sockstat ... | grep ...' pipelines are emulated")
        lines = self._sockstat(argvs[0][1:])
        counted: int | None = None
        for k, argv in enumerate(argvs[1:], start=1):
            if not argv or argv[0] != "grep":
                raise self._error(f"pipeline stage '{stages[k]}' is not grep")
            opts, pattern = self._grep_args(argv[1:], stages[k])
            if counted is not None and "-c" not in opts and "-v" not in opts and re.fullmatch(r"\d+", pattern):
                # `... | grep -c STATE | grep N`: exactly N (a substring match would take 10 for 1)
                if counted != int(pattern):
                    raise ScriptFailure(self.line, self._sockstat_failure(argvs, stages, counted, int(pattern)))
                lines = [str(counted)]
                counted = None
                continue
            matched = [ln for ln in lines if self._grep_match(opts, pattern, ln)]
            if "-c" in opts:
                counted = len(matched)
                lines = [str(counted)]
            else:
                counted = None
                lines = matched
        if counted is None and not lines:
            raise ScriptFailure(self.line, f"`{' | '.join(stages)}` matched nothing (grep exits 1); "
                                           f"sockets now:\n" + self._sockstat_dump())

    def _sockstat_failure(self, argvs, stages, counted: int, wanted: int) -> str:
        state = None
        for argv in argvs[1:]:
            if argv[0] == "grep" and "-c" in argv:
                state = argv[-1]
        port = None
        if "-p" in argvs[0]:
            port = argvs[0][argvs[0].index("-p") + 1]
        what = f"{wanted} connection(s) in {state}" if state else f"count {wanted}"
        where = f" on port {port}" if port else ""
        return (f"sockstat: expected {what}{where}, found {counted}\n    `{' | '.join(stages)}`\n"
                f"sockets now:\n{self._sockstat_dump()}")

    def _sockstat_dump(self) -> str:
        rows = self.t.sockstat_rows()
        return "\n".join("    " + r.format() for r in rows) if rows else "    (none)"

    def _sockstat(self, args: list[str]) -> list[str]:
        fam: set[str] = set()
        ports: set[int] = set()
        listening = connected = False
        proto_ok = True
        i = 0
        while i < len(args):
            a = args[i]
            i += 1
            if a in ("-4", "-6"):
                fam.add("tcp" + a[1])
            elif a == "-P":
                protos = args[i].split(",") if i < len(args) else []
                i += 1
                proto_ok = "tcp" in protos
            elif a == "-p":
                for p in (args[i].split(",") if i < len(args) else []):
                    if not p.isdigit():
                        raise self._error(f"sockstat -p: bad port '{p}'")
                    ports.add(int(p))
                i += 1
            elif a == "-l":
                listening = True
            elif a == "-c":
                connected = True
            elif a in ("-s", "-q", "-n", "-w", "-u", "-S"):
                continue
            elif re.fullmatch(r"-[46cslqnwuS]+", a):
                args[i:i] = ["-" + c for c in a[1:]]
            else:
                raise self._error(f"sockstat option {a} is not emulated")
        out = [] if "-q" in args else [SOCKSTAT_HEADER]
        if not proto_ok:
            return out
        for r in self.t.sockstat_rows():
            if fam and r.proto not in fam:
                continue
            if ports and r.local_port() not in ports and r.foreign_port() not in ports:
                continue
            if listening and not r.listening:
                continue
            if connected and r.listening:
                continue
            out.append(r.format())
        return out

    def _grep_args(self, args: list[str], stage: str) -> tuple[set[str], str]:
        opts: set[str] = set()
        pattern: str | None = None
        i = 0
        while i < len(args):
            a = args[i]
            i += 1
            if a == "-e":
                pattern = args[i] if i < len(args) else ""
                i += 1
            elif a.startswith("-") and len(a) > 1 and pattern is None:
                for c in a[1:]:
                    if c not in "cviwEFx":
                        raise self._error(f"grep -{c} is not emulated (in `{stage}`)")
                    opts.add("-" + c)
            elif pattern is None:
                pattern = a
            else:
                raise self._error(f"grep with files is not emulated (in `{stage}`)")
        if pattern is None:
            raise self._error(f"grep without a pattern (in `{stage}`)")
        return opts, pattern

    @staticmethod
    def _grep_match(opts: set[str], pattern: str, line: str) -> bool:
        flags = re.IGNORECASE if "-i" in opts else 0
        pat = re.escape(pattern) if "-F" in opts else _bre_to_python(pattern, "-E" in opts)
        if "-w" in opts:
            pat = rf"(?<!\w)(?:{pat})(?!\w)"
        if "-x" in opts:
            pat = rf"^(?:{pat})$"
        hit = re.search(pat, line, flags) is not None
        return hit != ("-v" in opts)


def _bre_to_python(pattern: str, extended: bool) -> str:
    """grep's basic regular expressions: ``+ ? | ( ) { }`` are literal unless escaped."""
    if extended:
        return pattern
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            n = pattern[i + 1]
            out.append(n if n in "+?|(){}" else "\\" + n)
            i += 2
            continue
        out.append("\\" + c if c in "+?|(){}" else c)
        i += 1
    return "".join(out)


# --- the table --------------------------------------------------------------------------------

Handler = Callable[[Shell, str, str], None]
_HANDLERS: dict[str, Handler] = {}


def _reg(*names: str):
    def deco(fn: Handler) -> Handler:
        for n in names:
            _HANDLERS[n] = fn
        return fn
    return deco


def _field(field: str, scope: str, conv: str = "bool", scale: float = 1.0):
    """A sysctl that maps straight onto one TcpConfig field."""
    def handler(sh: Shell, name: str, value: str) -> None:
        if conv == "bool":
            v: object = sh._bool(name, value)
        elif conv == "int":
            v = sh._int(name, value)
        else:   # seconds from an integer in units of `scale` seconds
            n = sh._int(name, value)
            if n < 0:
                raise sh._error(f"sysctl {name}: negative time {n}")
            v = n * scale
        sh.t.set_tcp(field, v, scope)
    return handler


def _noop(sh: Shell, name: str, value: str) -> None:
    """Tunes something synack does not have and scripts cannot observe through synack (offloads,
    pacing, metrics caches, autotuning of buffers never filled by a script)."""


# FreeBSD ---------------------------------------------------------------------------------------

_T = "net.inet.tcp."
_HANDLERS[_T + "sack.enable"] = _field("sack", "syn")
_HANDLERS[_T + "drop_synfin"] = _field("drop_synfin", "syn")
_HANDLERS[_T + "delayed_ack"] = lambda sh, n, v: _set_delack(sh, n, delayed=sh._bool(n, v))
_HANDLERS[_T + "delacktime"] = lambda sh, n, v: _set_delack(sh, n, ms=sh._int(n, v))
_HANDLERS[_T + "rexmit_initial"] = _field("initial_rto", "syn", "time", 0.001)
_HANDLERS[_T + "rexmit_min"] = _field("min_rto", "syn", "time", 0.001)
_HANDLERS[_T + "rexmit_slop"] = _field("rto_slop", "live", "time", 0.001)
_HANDLERS[_T + "keepidle"] = _field("keepalive_idle", "live", "time", 0.001)
_HANDLERS[_T + "keepintvl"] = _field("keepalive_interval", "live", "time", 0.001)
_HANDLERS[_T + "keepcnt"] = _field("keepalive_count", "live", "int")
_HANDLERS[_T + "always_keepalive"] = _field("keepalive", "syn")
_HANDLERS[_T + "msl"] = _field("msl", "live", "time", 0.001)
_HANDLERS[_T + "recvspace"] = _field("rcv_buf", "socket", "int")
_HANDLERS[_T + "sendspace"] = _field("snd_buf", "socket", "int")
for _n in ("hostcache.purgenow", "hostcache.purge", "recvbuf_auto", "sendbuf_auto",
           "isn_reseed_interval", "ts_offset_per_conn", "nolocaltimewait", "log_debug", "abc_l_var",
           "sack.maxholes", "sack.globalmaxholes", "maxtcptw", "per_cpu_timers", "soreceive_stream"):
    _HANDLERS[_T + _n] = _noop


@_reg(_T + "rfc1323")
def _rfc1323(sh: Shell, name: str, value: str) -> None:
    v = sh._int(name, value)           # 0 none, 1 both, 2 window scaling only, 3 timestamps only
    if v not in (0, 1, 2, 3):
        raise sh._error(f"sysctl {name}: expected 0..3, got {v}")
    sh.t.set_tcp("window_scaling", v in (1, 2), "syn")
    sh.t.set_tcp("timestamps", v in (1, 3), "syn")


@_reg("kern.ipc.maxsockbuf")
def _maxsockbuf(sh: Shell, name: str, value: str) -> None:
    v = sh._int(name, value)
    s = 0
    while s < 14 and (65535 << s) < v:   # packetdrill.md §7: smallest s with 65535 * 2^s >= maxsockbuf
        s += 1
    sh.t.set_tcp("wscale", s, "syn")


@_reg(_T + "ecn.enable", "net.ipv4.tcp_ecn")
def _ecn(sh: Shell, name: str, value: str) -> None:
    v = sh._int(name, value)
    if v not in (0, 1, 2):
        raise sh._error(f"sysctl {name}: expected 0, 1 or 2, got {v}")
    sh.t.set_tcp("ecn", {0: "off", 1: "on", 2: "accept"}[v], "syn")   # RFC 3168 §6.1.1


@_reg(_T + "ecn.maxretries")
def _ecn_maxretries(sh: Shell, name: str, value: str) -> None:
    v = sh._int(name, value)           # SYN retransmissions still ECN-setup (FreeBSD tcp_output)
    if v < 0:
        raise sh._error(f"sysctl {name}: negative count {v}")
    sh.t.set_tcp("ecn_syn_retries", v, "syn")


@_reg("net.ipv4.tcp_ecn_fallback")
def _ecn_fallback(sh: Shell, name: str, value: str) -> None:
    # 1 (default): a retransmitted SYN has ECE and CWR clear; 0: every SYN is ECN-setup
    sh.t.set_tcp("ecn_syn_retries", 0 if sh._bool(name, value) else 1 << 16, "syn")


@_reg(_T + "blackhole")
def _blackhole(sh: Shell, name: str, value: str) -> None:
    v = sh._int(name, value)
    if v == 0:
        sh.t.set_stack("rst_for_closed_ports", True)
    elif v == 2:
        sh.t.set_stack("rst_for_closed_ports", False)
    else:
        raise sh._error(f"sysctl {name}={v}: synack can answer every segment to a closed port with "
                        "RST (0) or none (2), not only non-SYN ones (StackConfig has one flag)")


@_reg(_T + "insecure_rst")
def _insecure_rst(sh: Shell, name: str, value: str) -> None:
    sh._rfc5961("rst", sh._bool(name, value))


@_reg(_T + "insecure_syn")
def _insecure_syn(sh: Shell, name: str, value: str) -> None:
    sh._rfc5961("syn", sh._bool(name, value))


@_reg(_T + "insecure_ack")
def _insecure_ack(sh: Shell, name: str, value: str) -> None:
    sh._rfc5961("ack", sh._bool(name, value))


@_reg(_T + "rexmit_drop_options")
def _drop_options(sh: Shell, name: str, value: str) -> None:
    v = sh._bool(name, value)
    if has_knob("syn_rexmit_drop_options"):
        sh.t.set_tcp("syn_rexmit_drop_options", v, "syn")
    elif v:
        raise sh._error(f"sysctl {name}=1: synack always repeats the SYN's options "
                        "(TcpConfig.syn_rexmit_drop_options is missing)")


@_reg(_T + "keepinit")
def _keepinit(sh: Shell, name: str, value: str) -> None:
    sh._knob(name, "connect_timeout", sh._int(name, value) / 1000.0, "socket",
             "a time limit for SYN-SENT / SYN-RECEIVED")


@_reg(_T + "icmp_may_rst")
def _icmp_may_rst(sh: Shell, name: str, value: str) -> None:
    sh.t.set_stack("icmp_may_abort_syn_sent", sh._bool(name, value))


@_reg(_T + "syncookies")
def _syncookies(sh: Shell, name: str, value: str) -> None:
    sh._syncookies = sh._bool(name, value)
    _apply_cookies(sh)


@_reg(_T + "syncookies_only")
def _syncookies_only(sh: Shell, name: str, value: str) -> None:
    sh._syncookies_only = sh._bool(name, value)
    _apply_cookies(sh)


def _apply_cookies(sh: Shell) -> None:
    mode = "always" if sh._syncookies_only else "on" if sh._syncookies else "off"
    sh.t.set_stack("syncookies", mode)


@_reg(_T + "tolerate_missing_ts")
def _tolerate(sh: Shell, name: str, value: str) -> None:
    v = sh._bool(name, value)
    if has_knob("tolerate_missing_ts"):
        sh.t.set_tcp("tolerate_missing_ts", v, "live")
    elif v:
        raise sh._error(f"sysctl {name}=1: synack drops segments without timestamps once they were "
                        "negotiated (RFC 7323 §3.2 SHOULD); TcpConfig.tolerate_missing_ts is missing")


@_reg(_T + "functions_default")
def _functions(sh: Shell, name: str, value: str) -> None:
    if value in ("freebsd", "default"):
        if has_knob("rack"):
            sh.t.set_tcp("rack", False, "socket")
    elif value == "rack" and has_knob("rack"):
        sh.t.set_tcp("rack", True, "socket")       # the RACK stack: RACK-TLP loss detection
    else:
        raise sh._error(f"sysctl {name}={value}: synack emulates the 'freebsd' and 'rack' stacks' "
                        "loss detection only")


@_reg(_T + "mssdflt")
def _mssdflt(sh: Shell, name: str, value: str) -> None:
    sh._only(name, value, (536,), "the MSS without an option is fixed at 536, RFC 9293 §3.7.1")


@_reg(_T + "initcwnd_segments")
def _initcwnd(sh: Shell, name: str, value: str) -> None:
    sh._only(name, value, (10,), "TcpConfig.initial_window is in bytes, not segments")


@_reg(_T + "cc.algorithm", "net.ipv4.tcp_congestion_control")
def _cc(sh: Shell, name: str, value: str) -> None:
    from synack.tcp import congestion
    try:
        congestion.get(value)
    except KeyError as e:
        raise sh._error(f"sysctl {name}={value}: {e.args[0]}") from None
    sh.t.set_tcp("cc", value, "socket")


def _set_delack(sh: Shell, name: str, ms: int | None = None, delayed: bool | None = None) -> None:
    if ms is not None:
        if ms <= 0:
            raise sh._error(f"sysctl {name}: delayed-ACK time must be positive, got {ms}")
        sh._delack_ms = float(ms)
    if delayed is not None:
        sh._delayed_ack = delayed
    sh.t.set_tcp("ack_delay", sh._delack_ms / 1000.0 if sh._delayed_ack else None, "live")


# Linux -----------------------------------------------------------------------------------------

_L = "net.ipv4."
_HANDLERS[_L + "tcp_sack"] = _field("sack", "syn")
_HANDLERS[_L + "tcp_window_scaling"] = _field("window_scaling", "syn")
_HANDLERS[_L + "tcp_syn_retries"] = _field("syn_retries", "socket", "int")
_HANDLERS[_L + "tcp_synack_retries"] = _field("synack_retries", "syn", "int")
_HANDLERS[_L + "tcp_retries2"] = _field("r2_retries", "live", "int")
_HANDLERS[_L + "tcp_keepalive_time"] = _field("keepalive_idle", "live", "time", 1.0)
_HANDLERS[_L + "tcp_keepalive_intvl"] = _field("keepalive_interval", "live", "time", 1.0)
_HANDLERS[_L + "tcp_keepalive_probes"] = _field("keepalive_count", "live", "int")
_HANDLERS[_L + "tcp_challenge_ack_limit"] = _field("challenge_ack_limit", "live", "int")
# Loss recovery, offload, pacing and autotuning knobs: synack has none of these mechanisms, and
# the corpora set them to pin Linux's behaviour, not to change what the script checks.
for _n in ("tcp_min_rtt_wlen", "tcp_frto", "tcp_fack", "tcp_dsack",
           "tcp_no_metrics_save", "tcp_autocorking", "tcp_tso_win_divisor", "tcp_min_tso_segs",
           "tcp_pacing_ss_ratio", "tcp_pacing_ca_ratio", "tcp_limit_output_bytes", "tcp_moderate_rcvbuf",
           "tcp_reordering", "tcp_max_reordering", "tcp_thin_linear_timeouts", "tcp_retries1",
           "tcp_mtu_probing", "tcp_base_mss", "tcp_tw_reuse", "tcp_invalid_ratelimit", "tcp_mem",
           "tcp_comp_sack_delay_ns", "tcp_comp_sack_nr", "tcp_comp_sack_slack_ns", "tcp_adv_win_scale",
           "tcp_app_win", "tcp_workaround_signed_windows", "tcp_notsent_lowat", "tcp_tso_rtt_log",
           "tcp_shrink_window", "tcp_backlog_ack_defer", "tcp_plb_enabled", "tcp_probe_threshold",
           "tcp_probe_interval", "tcp_thin_dupack", "tcp_low_latency", "tcp_max_tw_buckets",
           "tcp_orphan_retries", "tcp_max_orphans"):
    _HANDLERS[_L + _n] = _noop
for _n in ("net.core.rmem_default", "net.core.wmem_default", "net.core.wmem_max", "net.core.default_qdisc",
           "net.core.busy_poll", "net.core.busy_read", "net.core.optmem_max", "net.core.somaxconn",
           "net.ipv4.ip_no_pmtu_disc", "net.ipv4.ip_local_port_range"):
    _HANDLERS[_n] = _noop


@_reg(_L + "tcp_recovery")
def _linux_recovery(sh: Shell, name: str, value: str) -> None:
    v = sh._int(name, value)           # bit 0: RACK loss detection
    if has_knob("rack"):
        sh.t.set_tcp("rack", bool(v & 1), "live")
    elif v & 1:
        raise sh._error(f"sysctl {name}={v}: synack has no RACK (TcpConfig.rack is missing)")


@_reg(_L + "tcp_early_retrans")
def _linux_early_retrans(sh: Shell, name: str, value: str) -> None:
    # 3 and 4 (the defaults) enable TLP, which synack runs with RACK; other values switch TLP
    # off or use the old early retransmit, for which TcpConfig has no knob
    sh._only(name, value, (3, 4), "tail loss probes come with RACK (TcpConfig.rack); there is no "
                                  "separate TLP / early-retransmit knob")


@_reg(_T + "rfc3042")
def _rfc3042(sh: Shell, name: str, value: str) -> None:
    sh._knob(name, "limited_transmit", sh._bool(name, value), "live", "RFC 3042 limited transmit")


@_reg(_L + "tcp_timestamps")
def _linux_ts(sh: Shell, name: str, value: str) -> None:
    v = sh._int(name, value)           # 1: with a random offset per connection, 2: without
    if v not in (0, 1, 2):
        raise sh._error(f"sysctl {name}: expected 0, 1 or 2, got {v}")
    sh.t.set_tcp("timestamps", v != 0, "syn")


@_reg(_L + "tcp_syncookies")
def _linux_cookies(sh: Shell, name: str, value: str) -> None:
    v = sh._int(name, value)
    if v not in (0, 1, 2):
        raise sh._error(f"sysctl {name}: expected 0, 1 or 2, got {v}")
    sh.t.set_stack("syncookies", {0: "off", 1: "on", 2: "always"}[v])


@_reg(_L + "tcp_max_syn_backlog")
def _syn_backlog(sh: Shell, name: str, value: str) -> None:
    sh.t.set_stack("syn_backlog", max(sh._int(name, value), 1))


@_reg(_L + "tcp_rmem")
def _rmem(sh: Shell, name: str, value: str) -> None:
    _lo, default, hi = sh._triple(name, value)
    sh._tcp_rmem_max = hi
    sh.t.set_tcp("rcv_buf", default, "socket")
    _linux_wscale(sh)


@_reg("net.core.rmem_max")
def _rmem_max(sh: Shell, name: str, value: str) -> None:
    sh._rmem_max = sh._int(name, value)
    _linux_wscale(sh)


def _linux_wscale(sh: Shell) -> None:
    # tcp_select_initial_window(): space = max(tcp_rmem[2], rmem_max), shifted until <= 65535
    space, s = max(sh._tcp_rmem_max, sh._rmem_max), 0
    while space > 65535 and s < 14:
        space >>= 1
        s += 1
    sh.t.set_tcp("wscale", s, "syn")


@_reg(_L + "tcp_wmem")
def _wmem(sh: Shell, name: str, value: str) -> None:
    _lo, default, _hi = sh._triple(name, value)
    sh.t.set_tcp("snd_buf", default, "socket")


@_reg(_L + "tcp_fastopen")
def _fastopen(sh: Shell, name: str, value: str) -> None:
    sh._only(name, value, (0, 1), "synack has no TCP Fast Open server or client side")


@_reg(_L + "tcp_abort_on_overflow")
def _abort_overflow(sh: Shell, name: str, value: str) -> None:
    sh._only(name, value, (0,), "a full accept queue drops the handshake's ACK; there is no RST mode")


@_reg(_L + "tcp_slow_start_after_idle")
def _ssai(sh: Shell, name: str, value: str) -> None:
    sh._only(name, value, (1,), "the congestion controller always restarts after idle (RFC 5681 §4.1)")


@_reg(_L + "tcp_fin_timeout")
def _fin_timeout(sh: Shell, name: str, value: str) -> None:
    sh._knob(name, "fin_wait_2_timeout", float(sh._int(name, value)), "live",
             "an orphaned FIN-WAIT-2 timeout")


@_reg(_L + "tcp_rfc1337")
def _rfc1337(sh: Shell, name: str, value: str) -> None:
    sh._knob(name, "rfc1337", sh._bool(name, value), "live", "RST handling in TIME-WAIT")


KNOWN_SYSCTLS = frozenset(_HANDLERS)


def _suggest(name: str) -> str | None:
    import difflib
    m = difflib.get_close_matches(name, list(_HANDLERS), n=1, cutoff=0.8)
    return m[0] if m else None
