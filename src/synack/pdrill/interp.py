"""Run a packetdrill script against synack, on a virtual clock (packetdrill.md §2-§7).

The stack under test is ``synack.stack.host.Stack`` at 192.0.2.1 (IPv6 2001:db8::1); the
script plays the peer at 192.0.2.2 (2001:db8::2). Events run in order:

* ``<`` packets and ICMP messages are built from the script and handed to the stack at their
  time exactly; system calls, shell lines and ``%{ }%`` run at their time too.
* ``>`` packets are taken from the queue of what the stack sent, in emission order, and compared
  field by field (§6); the clock advances through the stack's timers until one is sent or the
  time window plus tolerance is over. A packet synack does not send is a failure; an extra
  packet fails at the next ``>`` line; packets left at the end are ignored.
* A system call that blocks waits in virtual time: ``start...end`` calls keep running while the
  later events do, and must return at ``end``; any other call must return at once.

Tolerance: max(``--tolerance_usecs`` (4000 µs by default), 5 % of the gap to the previous event).
Nothing here sleeps or reads a clock; a whole script takes as long as Python needs to run it.
"""

from __future__ import annotations

import textwrap
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address

from synack.pdrill import ast as A
from synack.pdrill.errors import ScriptError
from synack.pdrill.outcome import Outcome, ScriptFailure
from synack.pdrill.packets import (Flow, Outbound, build_icmp, build_segment, build_tcp_ip, compare,
                                   flags_of, format_outbound, format_script_packet, quote_segment)
from synack.pdrill.profiles import Profile, get_profile
from synack.pdrill.sysctl import Shell, SockRow
from synack.pdrill.syscalls import Op, Ret, Sock, SocketLayer
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.tcp.states import State
from synack.wire.tcp import Flags

__all__ = ["Interpreter", "run_script", "run_file", "DEFAULT_TOLERANCE_USECS"]

DEFAULT_TOLERANCE_USECS = 4000
SECRET = b"synack-pdrill"
EPS = 1e-9
REMOTE_PORT_BASE = 40000
_SPIN_LIMIT = 10000

# Script options that are honoured, and those that make no difference to an emulated run.
_OPTIONS = {"tolerance_usecs", "ip_version", "mtu", "local_ip", "remote_ip", "bind_port", "connect_port",
            "relaxed_options", "profile"}
_IGNORED_OPTIONS = {"speed", "debug", "verbose", "dry_run", "so_filename", "wire_client", "wire_server",
                    "wire_server_ip", "wire_server_port", "wire_client_dev", "wire_server_dev", "init_scripts",
                    "gateway_ip", "netmask_ip", "local_linklocal_ip", "remote_linklocal_ip", "define",
                    "strict_segments", "tcp_ts_tick_usecs"}


@dataclass
class Pending:
    """A system call blocked in virtual time."""
    op: Op
    sc: A.Syscall
    line: int
    start: float
    end: float | None          # when it must return (None: any time)
    tol: float
    declared: bool = True      # written start...end (else it was expected not to block)


class Interpreter:
    def __init__(self, script: A.Script, profile: Profile | str | None = None, *, relaxed: bool = False,
                 tolerance_usecs: int | None = None, log: Callable[[str], None] | None = None,
                 pcap: str | None = None, source: str | None = None) -> None:
        self.script = script
        self.path = script.path
        self.lines = source.splitlines() if source is not None else None
        opts = {name.replace("-", "_"): value for name, value in script.options.items()}
        for name in opts:
            if name not in _OPTIONS and name not in _IGNORED_OPTIONS:
                raise ScriptError(self.path, 0, f"unknown option --{name}")
        # the script's own --profile line wins; then the caller's choice; then a guess: the Google
        # (Linux) corpus starts with an init command (defaults.sh), the nplab one does not
        if opts.get("profile"):
            profile = opts["profile"]
        elif profile is None:
            profile = "linux" if script.init_command is not None else "freebsd"
        if isinstance(profile, str):
            try:
                profile = get_profile(profile)
            except ValueError as e:
                raise ScriptError(self.path, 0, str(e)) from None
        self.profile = profile
        self.relaxed = relaxed or "relaxed_options" in opts
        tol = tolerance_usecs
        if tol is None:
            tol = self._opt_int(opts, "tolerance_usecs", DEFAULT_TOLERANCE_USECS)
        self.tolerance = tol / 1e6
        self.log = log
        # --- addresses ---
        version = opts.get("ip_version", "ipv4")
        if version not in ("ipv4", "ipv6", "ipv4-mapped-ipv6"):
            raise ScriptError(self.path, 0, f"--ip_version={version}: ipv4, ipv6 or ipv4-mapped-ipv6")
        v6 = version == "ipv6"
        self.family_default = 10 if version != "ipv4" else 2
        try:
            self.local_ip = ip_address(opts.get("local_ip", "2001:db8::1" if v6 else "192.0.2.1"))
            self.remote_ip = ip_address(opts.get("remote_ip", "2001:db8::2" if v6 else "192.0.2.2"))
        except ValueError as e:
            raise ScriptError(self.path, 0, f"bad address option: {e}") from None
        if self.local_ip.version != self.remote_ip.version:
            raise ScriptError(self.path, 0, "--local_ip and --remote_ip are of different families")
        self.default_port = self._opt_int(opts, "bind_port", profile.default_port)
        self.connect_port = self._opt_int(opts, "connect_port", profile.default_port)
        # --- the stack under test ---
        self.base = profile.tcp_config()
        mtu = self._opt_int(opts, "mtu", 1500)
        if hasattr(self.base, "mtu"):
            self.base.mtu = mtu                 # the advertised MSS follows (MTU - 40 / - 60)
        if not hasattr(self.base, "mtu") or self.base.mss is not None:
            self.base.mss = mtu - (60 if self.local_ip.version == 6 else 40)
        prefix = 64 if self.local_ip.version == 6 else 24
        self.stack = Stack([f"{self.local_ip}/{prefix}"], secret=SECRET, config=self.base.copy(),
                           stack_config=profile.stack_config(), log=self._on_record)
        self.symbols = profile.symbols()
        self.symbols["SOCK_NONBLOCK"] = 0x800
        self.symbols["NULL"] = 0
        self.sockets = SocketLayer(self)
        self.shell = Shell(self, self.path)
        self.now = 0.0
        self.prev = 0.0                     # actual time of the previous event
        self.outq: deque[Outbound] = deque()
        self.flows: dict[tuple[int, int], Flow] = {}
        self.current: Flow | None = None
        self.listen_pending: Sock | None = None
        self.pending: Pending | None = None
        self.line = 0
        self._next_rport = REMOTE_PORT_BASE
        self._ca_state: dict[object, int] = {}
        self._py_ns: dict[str, object] = {}
        self._pcap = None
        if pcap is not None:
            from synack.link.pcap import PcapWriter
            self._pcap = PcapWriter(pcap)

    def _opt_int(self, opts: dict[str, str], name: str, default):
        if name not in opts:
            return default
        try:
            return int(opts[name], 0)
        except ValueError:
            raise ScriptError(self.path, 0, f"--{name}={opts[name]}: expected an integer") from None

    # ================================================================ running

    def run(self) -> Outcome:
        try:
            try:
                if self.script.init_command is not None:
                    self.shell.run(self.script.init_command.command, 0)
                for ev in self.script.events:
                    self.event(ev)
                self.finish()
            finally:
                if self._pcap is not None:
                    self._pcap.close()
        except ScriptFailure as f:
            return Outcome(self.path, "fail", f.line, f.message, self.now)
        except ScriptError as e:
            return Outcome(self.path, "error", e.line, e.message, self.now)
        except Exception as e:     # noqa: BLE001 - a crash is reported, never propagated
            tb = traceback.extract_tb(e.__traceback__)
            where = tb[-1] if tb else None
            in_stack = where is not None and "/synack/pdrill/" not in where.filename.replace("\\", "/")
            kind = "synack raised" if in_stack else "interpreter bug:"
            loc = f" ({where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
            return Outcome(self.path, "fail" if in_stack else "error", self.line,
                           f"{kind} {type(e).__name__}: {e}{loc}", self.now)
        return Outcome(self.path, "pass", 0, "", self.now)

    def event(self, ev: A.Event) -> None:
        self.line = ev.line
        body = ev.body
        if not isinstance(body, A.Shell):
            self.shell.check_consistent(ev.line)
        if isinstance(body, A.Packet) and body.direction == ">":
            return self.expect(ev, body)
        if isinstance(body, A.IcmpPacket) and body.direction == ">":
            raise self.error("expected (outbound) ICMP packets are not supported")
        when = self.start_time(ev.time)
        self.advance_to(when)
        when = max(when, self.now)
        if isinstance(body, A.Packet):
            self.inject(body)
        elif isinstance(body, A.IcmpPacket):
            self.inject_icmp(body)
        elif isinstance(body, A.Syscall):
            self.syscall(ev, body, when)
        elif isinstance(body, A.Shell):
            self.trace(f"`{body.command}`")
            self.shell.run(body.command, ev.line)
        elif isinstance(body, A.Code):
            self.code(body)
        self.prev = when

    def finish(self) -> None:
        p = self.pending
        if p is not None:
            limit = (p.end if p.end is not None else self.now) + p.tol
            self.advance_to(limit)
            if self.pending is not None:
                raise ScriptFailure(p.line, f"{self.source(p.line)}: the call is still blocked at "
                                            f"{self.now:.6f} (expected to return at {_t(p.end)})")

    # ================================================================ time

    def start_time(self, t: A.Time) -> float:
        if t.kind is A.TimeKind.ANY:
            return self.now
        base = self.prev if t.relative else 0.0
        return base + (t.start or 0.0)

    def tol_for(self, expected: float, prev: float) -> float:
        return max(self.tolerance, 0.05 * max(expected - prev, 0.0))

    def next_wake(self) -> float | None:
        cands = [self.stack.next_timer()]
        p = self.pending
        if p is not None:
            cands.append(p.op.deadline)
            if p.end is not None:
                cands.append(p.end + p.tol)
        cands = [c for c in cands if c is not None]
        return min(cands) if cands else None

    def advance_to(self, t: float) -> None:
        """Run the stack (timers, packets out, blocked calls) up to time ``t``."""
        spins = 0
        while True:
            wake = self.next_wake()
            if wake is None or wake > t + EPS:
                break
            before = (self.now, len(self.outq))
            self.step(max(wake, self.now))
            if (self.now, len(self.outq)) == before:
                spins += 1
                if spins > _SPIN_LIMIT:
                    raise ScriptFailure(self.line, f"the stack keeps asking to be woken at "
                                                   f"{self.now:.6f} without doing anything")
            else:
                spins = 0
        if t > self.now:
            self.now = t

    def step(self, t: float) -> None:
        self.now = t
        self.stack.handle_timer(t)
        self.collect()
        p = self.pending
        if p is not None and p.op.deadline is not None and t + EPS >= p.op.deadline:
            r = p.op.attempt(t, True)
            if r is not None:
                self.complete(r)
                self.collect()
        p = self.pending
        if p is not None and p.end is not None and t + EPS >= p.end + p.tol:
            self.pending = None
            if not p.declared:
                raise ScriptFailure(p.line, f"{self.source(p.line)}: the call blocked (a blocking call "
                                            "is written start...end)")
            raise ScriptFailure(p.line, f"{self.source(p.line)}: still blocked at {t:.6f}, expected to "
                                        f"return at {p.end:.6f} (tolerance {p.tol * 1000:g} ms)")

    def collect(self) -> None:
        """Take what the stack sends now; let a blocked call retry after each change."""
        for _ in range(_SPIN_LIMIT):
            pkts = self.stack.packets_to_send(self.now)
            for raw in pkts:
                self.record_out(raw)
            while self.stack.next_event() is not None:
                pass
            done = False
            p = self.pending
            if p is not None:
                r = p.op.attempt(self.now, False)
                if r is not None:
                    self.complete(r)
                    done = True
            if not pkts and not done:
                return
        raise ScriptFailure(self.line, "the stack keeps sending without end")

    def _on_record(self, rec: object) -> None:
        """The stack's trace records: loss recovery gives TCP_INFO's tcpi_ca_state (Open /
        Recovery / Loss); with --verbose, dropped segments are shown with the reason."""
        name = type(rec).__name__
        if name == "RecoveryEntered":
            self._ca_state[rec.conn] = 4 if getattr(rec, "kind", "") == "rto" else 3   # type: ignore[attr-defined]
        elif name == "RecoveryExited":
            self._ca_state[rec.conn] = 0                                               # type: ignore[attr-defined]
        elif self.log is not None and name in ("Dropped", "StackDrop"):
            self.log(f"{self.now:10.6f}        (dropped: {getattr(rec, 'reason', '?')})")

    # ================================================================ packets

    def record_out(self, raw: bytes) -> None:
        out = Outbound.parse(raw, self.now)
        flow = None
        if out.seg is not None:
            s = out.seg
            flow = self.flows.get((s.sport, s.dport))
            if flow is not None:
                if s.flags & Flags.SYN and flow.isn != s.seq:
                    if flow.isn is not None:          # a new incarnation of the 4-tuple
                        flow.written.clear()
                        flow.ts_map.clear()
                        flow.ts_delta = None
                    flow.isn = s.seq
                ts = s.timestamps
                if ts is not None:
                    flow.last_ts_val = ts.val
                flow.last_out = raw
        self.outq.append(out)
        if self._pcap is not None:
            self._pcap.write(raw, self.now)
        self.trace(format_outbound(out, flow), sent=True)

    def flow_for(self, out: Outbound) -> Flow:
        if out.seg is not None:
            f = self.flows.get((out.seg.sport, out.seg.dport))
            if f is not None:
                return f
        return self.current or self._phantom()

    def expect(self, ev: A.Event, p: A.Packet) -> None:
        t = ev.time
        base = self.prev if t.relative else 0.0
        if t.kind is A.TimeKind.ANY:
            lo = hi = None
        elif t.kind is A.TimeKind.RANGE:
            lo, hi = base + (t.start or 0.0), base + (t.end or 0.0)
        else:
            lo = hi = base + (t.start or 0.0)
        tol = self.tol_for(lo, self.prev) if lo is not None else 0.0
        deadline = hi + tol if hi is not None else None
        while not self.outq:
            wake = self.next_wake()
            if wake is None or (deadline is not None and wake > deadline + EPS):
                if deadline is not None:
                    self.advance_to(deadline)
                if self.outq:
                    break
                nxt = self.stack.next_timer()
                after = f"; its next timer is at {nxt:.6f}" if nxt is not None else "; nothing is scheduled"
                raise ScriptFailure(ev.line, f"expected packet not sent by {_t(deadline)}{after}\n"
                                             f"    expected: {format_script_packet(p)}  at {_t(lo)}")
            self.advance_to(max(wake, self.now))
        out = self.outq.popleft()
        flow = self.flow_for(out)
        diffs = compare(p, out, flow, self.relaxed)
        if lo is not None and not (lo - tol - EPS <= out.t <= hi + tol + EPS):   # type: ignore[operator]
            want = f"{lo:.6f}" if lo == hi else f"{lo:.6f}~{hi:.6f}"
            diffs.append(f"sent at {out.t:.6f}, expected at {want} (tolerance {tol * 1000:g} ms)")
        if diffs:
            raise ScriptFailure(ev.line, "outbound packet differs: " + "; ".join(diffs)
                                + f"\n    expected: {format_script_packet(p)}  at {_t(lo)}"
                                + f"\n    actual:   {format_outbound(out, flow)}  at {out.t:.6f}")
        self.prev = out.t

    def _phantom(self) -> Flow:
        sut = self.sockets.under_test
        lport = sut.bound[1] if sut is not None and sut.bound is not None else self.default_port
        return self._new_flow(self.local_ip, lport, self._alloc_rport())

    def _alloc_rport(self) -> int:
        while True:
            self._next_rport += 1
            if not any(k[1] == self._next_rport for k in self.flows):
                return self._next_rport

    def _new_flow(self, local, lport: int, rport: int) -> Flow:
        f = Flow(local, lport, self.remote_ip, rport)
        self.flows[f.key()] = f
        self.current = f
        return f

    def route_inbound(self, flags: Flags) -> Flow:
        """Which 4-tuple an injected segment belongs to (packetdrill's socket-under-test rule):
        a SYN after listen() opens a new connection from a fresh peer port; anything else goes to
        the latest connection."""
        lst = self.listen_pending
        if flags & Flags.SYN and not flags & Flags.ACK and lst is not None and lst.listener is not None \
                and not lst.closed:
            self.listen_pending = None
            a = lst.listener.addr
            return self._new_flow(a if a is not None else self.local_ip, lst.listener.port, self._alloc_rport())
        if self.current is not None:
            return self.current
        return self._phantom()

    def inject(self, p: A.Packet) -> None:
        if p.win is None:
            raise self.error("an injected packet needs 'win N'")
        if p.seq_any:
            raise self.error("an injected packet needs its sequence numbers (start:end(len))")
        if p.options is A.ANY:
            raise self.error("an injected packet cannot have <...> options")
        flow = self.route_inbound(flags_of(p.flags))
        seg = build_segment(p, flow)
        raw = build_tcp_ip(seg, flow, p.ipinfo)
        self.trace(format_script_packet(p))
        self.send_in(raw)

    def send_in(self, raw: bytes) -> None:
        if self._pcap is not None:
            self._pcap.write(raw, self.now)
        self.stack.receive_packet(raw, self.now)
        self.collect()

    def inject_icmp(self, p: A.IcmpPacket) -> None:
        flow = self.current
        if flow is None:
            raise self.error("an ICMP message needs a connection to quote")
        if p.quoted is not None:
            quote = quote_segment(flow, p.quoted[0], p.quoted[2])
        elif flow.last_out is not None:
            quote = flow.last_out
        else:
            raise self.error("an ICMP message quotes a segment of the stack's, and it sent none yet")
        try:
            raw, err_name = build_icmp(p, flow, quote)
        except ValueError as e:
            raise self.error(str(e)) from None
        key = (flow.local, flow.lport, flow.remote, flow.rport)
        conn = self.stack.conns.get(key)      # type: ignore[arg-type]
        before = conn.soft_error if conn is not None else None
        self.trace(f"< icmp {p.kind} {p.code or ''}".rstrip())
        self.send_in(raw)
        if conn is not None and conn.soft_error is not None and conn.soft_error != before and err_name:
            s = self.sockets.sock_of(conn)
            if s is not None:
                s.soft_errno = self.symbols.get(err_name, 0)

    # ================================================================ system calls

    def syscall(self, ev: A.Event, sc: A.Syscall, when: float) -> None:
        if self.pending is not None:
            raise self.error(f"a system call is still blocked (line {self.pending.line}); "
                             "overlapping blocking calls are not supported")
        self.trace(self.source(ev.line).strip() or sc.name)
        op = self.sockets.start(sc, ev.line)
        r = op.attempt(self.now, False)
        blocking = ev.time.kind is A.TimeKind.BLOCKING
        if blocking:
            base = self.prev if ev.time.relative else 0.0
            end = base + (ev.time.end or 0.0)
            tol = self.tol_for(end, when)
        else:
            end, tol = when, self.tolerance
        if ev.time.kind is A.TimeKind.ANY:
            end = None
        if r is not None:
            self.collect()
            if blocking and end is not None and end - self.now > tol + EPS:
                raise ScriptFailure(ev.line, f"{self.source(ev.line)}: returned {r.text()} at once "
                                             f"({self.now:.6f}), expected to block until {end:.6f}")
            self.check_result(sc, r, ev.line)
            return
        self.pending = Pending(op, sc, ev.line, when, end, tol, declared=blocking)
        self.collect()
        if not blocking and self.pending is not None:
            # the script says it returns at once: only timers within the tolerance may finish it
            self.advance_to(when + tol)

    def complete(self, r: Ret) -> None:
        p = self.pending
        assert p is not None
        self.pending = None
        if p.end is not None and abs(self.now - p.end) > p.tol + EPS:
            raise ScriptFailure(p.line, f"{self.source(p.line)}: returned {r.text()} at {self.now:.6f}, "
                                        f"expected at {p.end:.6f} (tolerance {p.tol * 1000:g} ms)")
        self.check_result(p.sc, r, p.line)

    def check_result(self, sc: A.Syscall, r: Ret, line: int) -> None:
        want = sc.result
        if isinstance(want, A.Wildcard):
            return
        wv = self.eval_int(want, line, "result")
        if sc.errno is not None:
            if sc.errno not in self.symbols:
                raise ScriptError(self.path, line, f"unknown errno name {sc.errno}")
            ok = r.value == wv and r.errno == self.symbols[sc.errno]
            text = f"{wv} {sc.errno}"
        else:
            ok = r.value == wv and (r.errno == 0 or wv == -1)
            text = str(wv)
        if not ok:
            raise ScriptFailure(line, f"{self.source(line).strip() or sc.name}\n    returned {r.text()}, "
                                      f"expected {text}")

    # --- what the socket layer asks of the interpreter ---

    def new_socket_config(self) -> TcpConfig:
        return self.base.copy()

    def on_connect(self, s: Sock) -> None:
        c = s.conn
        assert c is not None
        self.listen_pending = None
        key = (c.id.local_port, c.id.remote_port)
        f = self.flows.get(key) or self._new_flow(ip_address(c.id.local_addr), c.id.local_port,
                                                  c.id.remote_port)
        f.remote = ip_address(c.id.remote_addr)
        self.current = f

    def on_accept(self, s: Sock) -> None:
        c = s.conn
        assert c is not None
        self.listen_pending = None
        f = self.flows.get((c.id.local_port, c.id.remote_port))
        if f is not None:
            self.current = f

    def on_listen(self, s: Sock) -> None:
        self.listen_pending = s

    def on_socket(self, s: Sock) -> None:
        self.listen_pending = None

    def note_written(self, conn, data: bytes) -> None:
        f = self.flows.get((conn.id.local_port, conn.id.remote_port))
        if f is not None:
            f.written.extend(data)

    def eval_int(self, e: A.Expr, line: int, what: str) -> int:
        if isinstance(e, A.Int):
            return e.value
        if isinstance(e, A.Symbol):
            if e.name in self.symbols:
                return self.symbols[e.name]
            raise ScriptError(self.path, line, f"unknown name {e.name} (as {what})")
        if isinstance(e, A.BitOr):
            v = 0
            for term in e.terms:
                v |= self.eval_int(term, line, what)
            return v
        if isinstance(e, A.Call) and e.name in ("htons", "htonl", "ntohs", "ntohl") and len(e.args) == 1:
            return self.eval_int(e.args[0], line, what)
        if isinstance(e, A.List) and len(e.items) == 1:
            return self.eval_int(e.items[0], line, what)
        raise ScriptError(self.path, line, f"expected a number for the {what}")

    # ================================================================ shell and code

    # ShellTarget
    def set_tcp(self, field: str, value: object, scope: str) -> None:
        setattr(self.base, field, value)
        setattr(self.stack.config, field, value)
        if scope == "socket":
            return
        for s in self.sockets.all_socks:
            if field in s.overrides:
                continue
            setattr(s.config, field, value)
            if scope == "live" and s.conn is not None:
                setattr(s.conn.config, field, value)
        if scope == "live":
            for conn in self.stack.conns.values():
                s = self.sockets.sock_of(conn)
                if s is None or field not in s.overrides:
                    setattr(conn.config, field, value)

    def set_stack(self, field: str, value: object) -> None:
        setattr(self.stack.sconfig, field, value)
        if field == "syn_backlog":
            for lst in self.stack.listeners.values():
                lst.syn_backlog = value     # type: ignore[assignment]

    def tcp_value(self, field: str) -> object:
        return getattr(self.base, field)

    def sockstat_rows(self) -> list[SockRow]:
        from synack.pdrill.names import SOCKSTAT_STATE
        rows: list[SockRow] = []
        seen = set()
        v = "tcp6" if self.local_ip.version == 6 else "tcp4"

        def ep(a, p) -> str:
            return f"{a}:{p}" if a is not None else f"*:{p}"
        for s in sorted(self.sockets.socks.values(), key=lambda s: s.fd):
            if s.listener is not None:
                rows.append(SockRow(v, ep(s.listener.addr, s.listener.port), "*:*", "LISTEN", s.fd, True))
            elif s.conn is not None:
                c = s.conn
                seen.add(id(c))
                rows.append(SockRow(v, ep(c.id.local_addr, c.id.local_port),
                                    ep(c.id.remote_addr, c.id.remote_port), SOCKSTAT_STATE[c.state], s.fd))
            else:
                b = s.bound
                rows.append(SockRow(v, ep(b[0], b[1]) if b else "*:*", "*:*", "CLOSED", s.fd))
        for c in self.stack.conns.values():
            if id(c) not in seen:
                rows.append(SockRow(v, ep(c.id.local_addr, c.id.local_port),
                                    ep(c.id.remote_addr, c.id.remote_port), SOCKSTAT_STATE[c.state], None))
        for tw in self.stack.time_wait.values():       # TIME-WAIT records (synack.stack.timewait)
            tcb = tw.live_tcb()
            if tcb is None or id(tcb) not in seen:
                c = tw.id
                rows.append(SockRow(v, ep(c.local_addr, c.local_port), ep(c.remote_addr, c.remote_port),
                                    SOCKSTAT_STATE[tw.state], None))
        return rows

    def tcp_info(self, s: Sock | None) -> dict[str, int]:
        """TCP_INFO of a socket as Linux/FreeBSD name the fields (times in µs, windows in
        segments where Linux counts segments)."""
        states = self.profile.states
        c = s.conn if s is not None else None
        if c is None:
            st = State.LISTEN if s is not None and s.listener is not None and not s.closed else State.CLOSED
            info = {k: 0 for k in _TCPI_FIELDS}
            info["tcpi_state"] = states[st]
            info["tcpi_rto"] = int(self.base.initial_rto * 1e6)
            info["tcpi_snd_mss"] = 536
            info["tcpi_rcv_mss"] = 536
            return info
        i = c.info()
        mss = max(i.snd_mss, 1)
        opts = ((1 if i.timestamps_ok else 0) | (2 if i.sack_ok else 0) | (4 if i.wscale_ok else 0)
                | (8 if i.ecn_ok else 0))
        ssthresh = min(i.snd_ssthresh // mss, 0x7FFFFFFF)
        return {
            "tcpi_state": states[i.state],
            "tcpi_ca_state": self._ca_state.get(c.id, 0) or (4 if i.retransmits else 0),
            "tcpi_retransmits": i.retransmits, "tcpi_probes": 0, "tcpi_backoff": i.backoff,
            "tcpi_options": opts, "tcpi_snd_wscale": i.snd_wscale, "tcpi_rcv_wscale": i.rcv_wscale,
            "tcpi_rto": int(round(i.rto * 1e6)), "tcpi_ato": int((c.config.ack_delay or 0) * 1e6),
            "tcpi_snd_mss": i.snd_mss, "tcpi_rcv_mss": i.rcv_mss, "tcpi_advmss": c.config.mss,
            "tcpi_unacked": -(-i.unacked // mss), "tcpi_sacked": 0, "tcpi_lost": 0,
            "tcpi_retrans": 0, "tcpi_fackets": 0, "tcpi_pmtu": c.mss + 40 + (12 if i.timestamps_ok else 0),
            "tcpi_rcv_ssthresh": i.rcv_wnd, "tcpi_rtt": int(round((i.rtt or 0) * 1e6)),
            "tcpi_rttvar": int(round((i.rttvar or 0) * 1e6)), "tcpi_snd_ssthresh": ssthresh,
            "tcpi_snd_cwnd": i.snd_cwnd // mss, "tcpi_reordering": 3, "tcpi_rcv_rtt": 0,
            "tcpi_rcv_space": i.rcv_wnd, "tcpi_total_retrans": i.total_retrans,
            "tcpi_snd_wnd": i.snd_wnd, "tcpi_rcv_wnd": i.rcv_wnd, "tcpi_snd_bwnd": 0,
            "tcpi_snd_nxt": i.snd_nxt, "tcpi_rcv_nxt": i.rcv_nxt, "tcpi_snd_una": i.snd_una,
            "tcpi_notsent_bytes": max(i.send_queue - i.unacked, 0), "tcpi_last_data_sent": 0,
            "tcpi_last_data_recv": 0, "tcpi_last_ack_recv": 0,
        }

    def code(self, body: A.Code) -> None:
        info = self.tcp_info(self.sockets.under_test)
        # one namespace for the whole script, as packetdrill keeps one Python interpreter:
        # a name bound in one block is seen by the later ones
        ns = self._py_ns
        if not ns:
            ns.update(self.symbols)
        ns.update(info)
        src = textwrap.dedent(body.source).strip("\n")
        try:
            compiled = compile(src, f"{self.path}:{self.line}", "exec")
        except IndentationError:
            src = "\n".join(ln.strip() for ln in src.splitlines())
            try:
                compiled = compile(src, f"{self.path}:{self.line}", "exec")
            except SyntaxError as e:
                raise self.error(f"%{{ }}%: {e.msg}") from None
        except SyntaxError as e:
            raise self.error(f"%{{ }}%: {e.msg}") from None
        try:
            exec(compiled, ns)      # noqa: S102 - the script's own code, by design
        except AssertionError as e:
            tb = traceback.extract_tb(e.__traceback__)
            lineno = tb[-1].lineno if tb else 1
            stmt = src.splitlines()[lineno - 1].strip() if lineno and lineno <= len(src.splitlines()) else ""
            used = {k: v for k, v in info.items() if k in stmt}
            values = ", ".join(f"{k}={v}" for k, v in used.items())
            detail = f" ({e})" if str(e) else ""
            raise ScriptFailure(self.line, f"assertion failed: {stmt}{detail}"
                                + (f"\n    with {values}" if values else "")) from None
        except NameError as e:
            raise self.error(f"%{{ }}%: {e}") from None
        except Exception as e:     # noqa: BLE001
            raise self.error(f"%{{ }}% raised {type(e).__name__}: {e}") from None

    # ================================================================ messages

    def error(self, message: str) -> ScriptError:
        return ScriptError(self.path, self.line, message)

    def source(self, line: int) -> str:
        if self.lines is not None and 0 < line <= len(self.lines):
            return self.lines[line - 1].strip()
        return f"line {line}"

    def trace(self, text: str, sent: bool = False) -> None:
        if self.log is not None:
            where = "      " if sent else f"{self.line:5d} "
            self.log(f"{self.now:10.6f} {where}{text}")


_TCPI_FIELDS = ("tcpi_state", "tcpi_ca_state", "tcpi_retransmits", "tcpi_probes", "tcpi_backoff",
                "tcpi_options", "tcpi_snd_wscale", "tcpi_rcv_wscale", "tcpi_rto", "tcpi_ato",
                "tcpi_snd_mss", "tcpi_rcv_mss", "tcpi_advmss", "tcpi_unacked", "tcpi_sacked", "tcpi_lost",
                "tcpi_retrans", "tcpi_fackets", "tcpi_pmtu", "tcpi_rcv_ssthresh", "tcpi_rtt", "tcpi_rttvar",
                "tcpi_snd_ssthresh", "tcpi_snd_cwnd", "tcpi_reordering", "tcpi_rcv_rtt", "tcpi_rcv_space",
                "tcpi_total_retrans", "tcpi_snd_wnd", "tcpi_rcv_wnd", "tcpi_snd_bwnd", "tcpi_snd_nxt",
                "tcpi_rcv_nxt", "tcpi_snd_una", "tcpi_notsent_bytes", "tcpi_last_data_sent",
                "tcpi_last_data_recv", "tcpi_last_ack_recv")


def _t(t: float | None) -> str:
    return "any time" if t is None else f"{t:.6f}"


# ================================================================ entry points


def run_script(text: str, path: str = "<string>", *, profile: Profile | str | None = None,
               relaxed: bool = False, tolerance_usecs: int | None = None,
               log: Callable[[str], None] | None = None, pcap: str | None = None) -> Outcome:
    """Parse and run one script given as text; never raises for a bad script (``error``)."""
    from synack.pdrill.parser import parse_script
    try:
        script = parse_script(text, path)
        interp = Interpreter(script, profile, relaxed=relaxed, tolerance_usecs=tolerance_usecs,
                             log=log, pcap=pcap, source=text)
    except ScriptError as e:
        return Outcome(path, "error", e.line, e.message)
    return interp.run()


def run_file(path: str, **kwargs) -> Outcome:
    """Read, parse and run the script at ``path`` (see ``run_script`` for the options)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        text = data.decode("utf-8")
    except OSError as e:
        return Outcome(str(path), "error", 0, f"cannot read script: {e.strerror or e}")
    except UnicodeDecodeError:
        return Outcome(str(path), "error", 0, "not UTF-8 text")
    return run_script(text, str(path), **kwargs)
