"""Socket system calls, emulated over the sans-IO ``Stack`` on the virtual clock.

Each call is started with ``SocketLayer.start(syscall, line)`` and gives an ``Op``: its
``attempt(now, timed_out)`` returns the result (``Ret``) or None while the call would block. The
interpreter calls it at once, and again after every change in the stack (packet in, timer, packet
out) until it returns; a non-blocking socket never blocks, it answers ``EAGAIN`` /
``EINPROGRESS``. Output arguments (``getsockopt`` values, ``poll`` revents) are checked when the
call completes, and a difference is a ``ScriptFailure`` at the call's line.

Errors reported by the connection (reset, timed out, refused) are given to the application once,
by the first call that can report them or by ``SO_ERROR`` (read-and-clear, as in both kernels);
after that reads return 0 and writes ``EPIPE``.
"""

from __future__ import annotations

import errno as E
import os
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import TYPE_CHECKING, Callable

from synack.pdrill import ast as A
from synack.pdrill.errors import ScriptError
from synack.pdrill.names import LEVEL_ALIASES, SOCKOPT_LEVEL, errno_name, option_name
from synack.pdrill.outcome import ScriptFailure
from synack.pdrill.sysctl import has_knob
from synack.stack.host import Listener
from synack.tcp import congestion
from synack.tcp.config import TcpConfig
from synack.tcp.connection import TcpConnection
from synack.tcp.states import State

if TYPE_CHECKING:
    from synack.pdrill.interp import Interpreter

S = State
POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
POLLRDNORM, POLLWRNORM, POLLRDHUP = 0x40, 0x100, 0x2000
MSG_OOB, MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL = 0x1, 0x2, 0x40, 0x100
CONNECTING = (S.SYN_SENT, S.SYN_RECEIVED)
PEER_FIN_STATES = (S.CLOSE_WAIT, S.LAST_ACK, S.CLOSING, S.TIME_WAIT)
OUR_FIN_STATES = (S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK, S.TIME_WAIT)


@dataclass(frozen=True, slots=True)
class Ret:
    """A system call's result: ``value`` (-1 on error) and ``errno`` (0 on success)."""
    value: int
    errno: int = 0

    def text(self) -> str:
        """As a script writes it: ``-1 EAGAIN (Resource temporarily unavailable)``."""
        if self.errno:
            return f"-1 {errno_name(self.errno)} ({os.strerror(self.errno)})"
        return str(self.value)


def fail(err: int) -> Ret:
    return Ret(-1, err)


@dataclass
class Op:
    """A started system call. ``deadline``: when a blocked call gives up by itself (poll)."""
    attempt: Callable[[float, bool], Ret | None]
    deadline: float | None = None


@dataclass(eq=False)
class Sock:
    fd: int
    family: int
    config: TcpConfig
    nonblock: bool = False
    bound: tuple[str | None, int] | None = None
    listener: Listener | None = None
    conn: TcpConnection | None = None
    overrides: set[str] = field(default_factory=set)      # config fields set by setsockopt
    reuseaddr: int = 0
    reuseport: int = 0
    linger: tuple[int, int] = (0, 0)
    in_progress: bool = False           # connect() returned EINPROGRESS, not yet confirmed
    error_taken: bool = False           # the connection's error was reported
    soft_errno: int = 0                 # from an ICMP error (SO_ERROR)
    shut_rd: bool = False
    shut_wr: bool = False
    closed: bool = False
    ip_tos: int = 0
    ip_ttl: int = 64
    extra: dict[str, int] = field(default_factory=dict)   # stored-only options (SO_OOBINLINE...)

    def configs(self) -> list[TcpConfig]:
        """The socket's config and, when different, its live connection's."""
        out = [self.config]
        if self.conn is not None and self.conn.config is not self.config:
            out.append(self.conn.config)
        return out

    def set(self, fld: str, value: object) -> None:
        self.overrides.add(fld)
        for c in self.configs():
            setattr(c, fld, value)

    def pending_error(self) -> int:
        c = self.conn
        if c is not None and c.error is not None and not self.error_taken:
            return c.error.errno or E.ECONNRESET
        return 0

    def take_error(self) -> int:
        err = self.pending_error()
        if err:
            self.error_taken = True
            return err
        soft, self.soft_errno = self.soft_errno, 0
        return soft


class SocketLayer:
    """The file descriptor table and the system calls of one script run."""

    def __init__(self, interp: "Interpreter") -> None:
        self.ip = interp
        self.socks: dict[int, Sock] = {}
        self.under_test: Sock | None = None        # the latest socket()/accept() (for %{ }%)
        self.all_socks: list[Sock] = []
        self._next_port = 32768

    # --- helpers --------------------------------------------------------------------------------

    def err(self, line: int, message: str) -> ScriptError:
        return ScriptError(self.ip.path, line, message)

    def sock_of(self, conn: TcpConnection) -> Sock | None:
        for s in self.all_socks:
            if s.conn is conn:
                return s
        return None

    def _fd(self, expr: A.Expr, line: int) -> Sock | Ret:
        fd = self.ip.eval_int(expr, line, "file descriptor")
        s = self.socks.get(fd)
        return s if s is not None else fail(E.EBADF)

    def _touch(self, sock: Sock) -> None:
        if sock.conn is not None:
            self.ip.stack.touch(sock.conn)

    def _alloc_fd(self) -> int:
        fd = 3
        while fd in self.socks:
            fd += 1
        return fd

    # --- dispatch -------------------------------------------------------------------------------

    def start(self, sc: A.Syscall, line: int) -> Op:
        handler = getattr(self, "sys_" + sc.name, None)
        if handler is None:
            raise self.err(line, f"system call '{sc.name}' is not supported by the emulation "
                                 "(socket bind listen accept connect read write readv writev send "
                                 "sendto sendmsg recv recvfrom recvmsg close shutdown fcntl setsockopt "
                                 "getsockopt poll select)")
        return handler(sc.args, line)

    @staticmethod
    def done(ret: Ret) -> Op:
        return Op(lambda now, timed_out: ret)

    def _argc(self, name: str, args: tuple, line: int, *counts: int) -> None:
        if len(args) not in counts:
            raise self.err(line, f"{name}() takes {' or '.join(map(str, counts))} arguments, got {len(args)}")

    # --- socket, bind, listen -------------------------------------------------------------------

    def sys_socket(self, args, line):
        self._argc("socket", args, line, 3)
        ip = self.ip
        fam = ip.family_default if isinstance(args[0], A.Wildcard) else ip.eval_int(args[0], line, "domain")
        if fam not in (2, 10):
            raise self.err(line, "socket(): only AF_INET and AF_INET6 are emulated")
        typ = 1 if isinstance(args[1], A.Wildcard) else ip.eval_int(args[1], line, "type")
        nonblock = bool(typ & 0x800)
        if typ & 0xF != 1:
            raise self.err(line, "socket(): only SOCK_STREAM (TCP) is emulated")
        proto = 6 if isinstance(args[2], A.Wildcard) else ip.eval_int(args[2], line, "protocol")
        if proto not in (0, 6):
            raise self.err(line, "socket(): only IPPROTO_TCP is emulated")
        s = Sock(self._alloc_fd(), fam, ip.new_socket_config(), nonblock=nonblock)
        self.socks[s.fd] = s
        self.all_socks.append(s)
        self.under_test = s
        ip.on_socket(s)
        return self.done(Ret(s.fd))

    def _sockaddr(self, expr: A.Expr, line: int, default_addr, default_port: int) -> tuple[str | None, int]:
        """(address or None for any, port) from ``...`` (the defaults) or a sockaddr struct."""
        ip = self.ip
        if isinstance(expr, A.Wildcard):
            return str(default_addr), default_port
        if not isinstance(expr, A.Struct):
            raise self.err(line, "expected ... or a sockaddr {sin_family=..., sin_port=htons(N), sin_addr=...}")
        port_e = expr.get("sin_port") or expr.get("sin6_port")
        port = default_port if port_e is None or isinstance(port_e, A.Wildcard) \
            else ip.eval_int(port_e, line, "port")
        addr_e = expr.get("sin_addr") or expr.get("sin6_addr")
        if addr_e is None or isinstance(addr_e, A.Wildcard):
            return str(default_addr), port
        if isinstance(addr_e, A.Symbol) and addr_e.name in ("INADDR_ANY", "in6addr_any"):
            return None, port
        if isinstance(addr_e, A.Int) and addr_e.value == 0:
            return None, port
        if not (isinstance(addr_e, A.Call) and addr_e.args and isinstance(addr_e.args[0], A.String)):
            raise self.err(line, "sin_addr: expected inet_addr(\"...\"), INADDR_ANY or ...")
        text = addr_e.args[0].value
        try:
            a = ip_address(text)
        except ValueError:
            raise self.err(line, f"bad address '{text}'") from None
        if a.version != ip.local_ip.version:
            raise self.err(line, f"address {a} is not IPv{ip.local_ip.version} (--ip_version)")
        return str(a), port

    def sys_bind(self, args, line):
        self._argc("bind", args, line, 3)
        s = self._fd(args[0], line)
        if isinstance(s, Ret):
            return self.done(s)
        addr, port = self._sockaddr(args[1], line, self.ip.local_ip, self.ip.default_port)
        if s.bound is not None or s.conn is not None or s.listener is not None:
            return self.done(fail(E.EINVAL))
        if addr is not None:
            a = ip_address(addr)
            if a.is_unspecified:
                addr = None
            elif a not in self.ip.stack.addresses:
                return self.done(fail(E.EADDRNOTAVAIL))
        if port == 0:
            port = self._ephemeral()
        if self._port_busy(s, port):
            return self.done(fail(E.EADDRINUSE))
        s.bound = (addr, port)
        return self.done(Ret(0))

    def _port_busy(self, s: Sock, port: int) -> bool:
        for o in self.socks.values():
            if o is s or o.closed or o.bound is None or o.bound[1] != port:
                continue
            if not (s.reuseport and o.reuseport):
                return True
        if not s.reuseaddr:
            for key in list(self.ip.stack.conns) + list(self.ip.stack.time_wait):
                if key[1] == port:
                    return True
        return False

    def _ephemeral(self) -> int:
        while True:
            self._next_port += 1
            p = self._next_port
            if not any(o.bound and o.bound[1] == p for o in self.socks.values()) \
                    and not any(k[1] == p for k in self.ip.stack.conns) \
                    and not any(k[1] == p for k in self.ip.stack.time_wait):
                return p

    def sys_listen(self, args, line):
        self._argc("listen", args, line, 2)
        s = self._fd(args[0], line)
        if isinstance(s, Ret):
            return self.done(s)
        backlog = self.ip.eval_int(args[1], line, "backlog")
        limit = self.ip.profile.accept_limit(backlog)
        if s.listener is not None:
            s.listener.backlog = limit
            return self.done(Ret(0))
        if s.conn is not None:
            return self.done(fail(E.EINVAL))
        if s.bound is None:
            s.bound = (None, self._ephemeral())
        addr, port = s.bound
        try:
            s.listener = self.ip.stack.listen(port, addr, backlog=limit, config=s.config)
        except OSError as e:
            return self.done(fail(e.errno or E.EADDRINUSE))
        self.ip.on_listen(s)
        return self.done(Ret(0))

    # --- accept, connect ---------------------------------------------------------------------------

    def sys_accept(self, args, line):
        self._argc("accept", args, line, 3)
        s = self._fd(args[0], line)
        if isinstance(s, Ret):
            return self.done(s)
        if s.listener is None or s.listener.closed:
            return self.done(fail(E.EINVAL))
        lst = s.listener
        ip = self.ip

        def attempt(now: float, timed_out: bool) -> Ret | None:
            conn = ip.stack.accept(lst)
            if conn is None:
                return fail(E.EAGAIN) if s.nonblock else None
            n = Sock(self._alloc_fd(), s.family, conn.config,
                     nonblock=s.nonblock and ip.profile.name == "freebsd", conn=conn)
            n.overrides = set(s.overrides)
            n.reuseaddr, n.linger, n.ip_tos, n.ip_ttl = s.reuseaddr, s.linger, s.ip_tos, s.ip_ttl
            self.socks[n.fd] = n
            self.all_socks.append(n)
            self.under_test = n
            ip.on_accept(n)
            return Ret(n.fd)
        return Op(attempt)

    def sys_connect(self, args, line):
        self._argc("connect", args, line, 3)
        s = self._fd(args[0], line)
        if isinstance(s, Ret):
            return self.done(s)
        ip = self.ip
        prof = ip.profile
        if s.listener is not None:
            return self.done(fail(E.EISCONN))
        if s.conn is None:
            raddr, rport = self._sockaddr(args[1], line, ip.remote_ip, ip.connect_port)
            remote = raddr if raddr is not None else str(ip.remote_ip)
            local = None
            if s.bound is not None:
                local = (s.bound[0] or "", s.bound[1])
            try:
                conn = ip.stack.connect((remote, rport), ip.now, local=local, config=s.config)
            except OSError as e:
                return self.done(fail(e.errno or E.EADDRINUSE))
            s.conn = conn
            if s.bound is None:
                s.bound = (conn.id.local_addr, conn.id.local_port)
            ip.on_connect(s)
            if s.nonblock:
                s.in_progress = True
                return self.done(fail(E.EINPROGRESS))
        else:
            st = s.conn.state
            if st in CONNECTING:
                if s.nonblock:
                    return self.done(fail(E.EALREADY))
            elif st is S.CLOSED:
                err = s.take_error()
                if err:
                    s.in_progress = False
                    return self.done(fail(err))
                raise self.err(line, "connect() on a socket whose connection ended is not emulated")
            elif s.in_progress and prof.connect_again_returns_0:
                s.in_progress = False
                return self.done(Ret(0))
            else:
                return self.done(fail(E.EISCONN))

        def attempt(now: float, timed_out: bool) -> Ret | None:
            c = s.conn
            assert c is not None
            if c.state in CONNECTING:
                return None
            s.in_progress = False
            if c.state is S.CLOSED:
                err = s.take_error()
                return fail(err or E.ECONNREFUSED)
            return Ret(0)
        return Op(attempt)

    # --- reading ------------------------------------------------------------------------------------

    def _iov_total(self, expr: A.Expr, line: int) -> int:
        if isinstance(expr, A.Wildcard):
            raise self.err(line, "the iovec lengths are needed: [{..., N}, ...]")
        if not isinstance(expr, A.List):
            raise self.err(line, "expected an iovec list [{..., N}, ...]")
        total = 0
        for item in expr.items:
            if not isinstance(item, A.Struct) or not item.fields:
                raise self.err(line, "expected {..., N} (or {iov_base=..., iov_len=N}) in the iovec")
            n = item.get("iov_len")
            if n is None:
                n = item.fields[-1].value
            total += self.ip.eval_int(n, line, "iov_len")
        return total

    def _msghdr_iov(self, expr: A.Expr, line: int) -> int:
        if not isinstance(expr, A.Struct):
            raise self.err(line, "expected a msghdr {msg_name(...)=..., msg_iov(1)=[{..., N}], ...}")
        iov = expr.get("msg_iov")
        if iov is None:
            raise self.err(line, "msghdr without msg_iov")
        return self._iov_total(iov, line)

    def sys_read(self, args, line):
        self._argc("read", args, line, 3)
        return self._recv(args[0], self.ip.eval_int(args[2], line, "count"), 0, line)

    def sys_recv(self, args, line):
        self._argc("recv", args, line, 4)
        return self._recv(args[0], self.ip.eval_int(args[2], line, "length"),
                          self.ip.eval_int(args[3], line, "flags"), line)

    def sys_recvfrom(self, args, line):
        self._argc("recvfrom", args, line, 6)
        return self._recv(args[0], self.ip.eval_int(args[2], line, "length"),
                          self.ip.eval_int(args[3], line, "flags"), line)

    def sys_readv(self, args, line):
        self._argc("readv", args, line, 3)
        return self._recv(args[0], self._iov_total(args[1], line), 0, line)

    def sys_recvmsg(self, args, line):
        self._argc("recvmsg", args, line, 3)
        return self._recv(args[0], self._msghdr_iov(args[1], line),
                          self.ip.eval_int(args[2], line, "flags"), line)

    def _recv(self, fd_expr: A.Expr, count: int, flags: int, line: int) -> Op:
        s = self._fd(fd_expr, line)
        if isinstance(s, Ret):
            return self.done(s)
        if flags & ~(MSG_PEEK | MSG_DONTWAIT | MSG_WAITALL):
            raise self.err(line, f"receive flags 0x{flags:x} are not emulated (MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL)")
        nonblock = s.nonblock or bool(flags & MSG_DONTWAIT)
        prof = self.ip.profile

        def attempt(now: float, timed_out: bool) -> Ret | None:
            c = s.conn
            if s.listener is not None or c is None:
                return fail(E.ENOTCONN if s.listener is not None
                            else getattr(E, prof.read_unconnected_errno))
            if s.shut_rd:
                return Ret(0)
            if count == 0:
                return Ret(0)
            avail = c.readable
            if avail and (not flags & MSG_WAITALL or avail >= count or c.state in PEER_FIN_STATES
                          or c.state is S.CLOSED):
                if flags & MSG_PEEK:
                    return Ret(len(c.rcvbuf.peek(count)))
                data = c.receive(count) or b""
                self._touch(s)
                return Ret(len(data))
            if avail == 0 and c.at_eof:
                return Ret(0)
            if c.state is S.CLOSED:
                err = s.take_error()
                return fail(err) if err else Ret(0)
            if avail == 0 and s.pending_error():
                return fail(s.take_error())
            if nonblock and not (flags & MSG_WAITALL and avail):
                return fail(E.EAGAIN)
            return None
        return Op(attempt)

    # --- writing ------------------------------------------------------------------------------------

    def _payload(self, expr: A.Expr, count: int) -> bytes:
        if isinstance(expr, A.String):
            data = expr.value.encode("latin-1", "replace")
            return data[:count].ljust(count, b"\0")
        return bytes(count)

    def sys_write(self, args, line):
        self._argc("write", args, line, 3)
        n = self.ip.eval_int(args[2], line, "count")
        return self._send(args[0], self._payload(args[1], n), 0, line)

    def sys_send(self, args, line):
        self._argc("send", args, line, 4)
        n = self.ip.eval_int(args[2], line, "length")
        return self._send(args[0], self._payload(args[1], n), self.ip.eval_int(args[3], line, "flags"), line)

    def sys_sendto(self, args, line):
        self._argc("sendto", args, line, 6)
        n = self.ip.eval_int(args[2], line, "length")
        return self._send(args[0], self._payload(args[1], n), self.ip.eval_int(args[3], line, "flags"), line)

    def sys_writev(self, args, line):
        self._argc("writev", args, line, 3)
        return self._send(args[0], bytes(self._iov_total(args[1], line)), 0, line)

    def sys_sendmsg(self, args, line):
        self._argc("sendmsg", args, line, 3)
        return self._send(args[0], bytes(self._msghdr_iov(args[1], line)),
                          self.ip.eval_int(args[2], line, "flags"), line)

    def _send(self, fd_expr: A.Expr, data: bytes, flags: int, line: int) -> Op:
        s = self._fd(fd_expr, line)
        if isinstance(s, Ret):
            return self.done(s)
        if flags & ~(MSG_DONTWAIT | MSG_OOB | 0x4000 | 0x8000 | 0x80):
            raise self.err(line, f"send flags 0x{flags:x} are not emulated")
        if flags & 0x8000:
            raise self.err(line, "MSG_MORE is not emulated (synack has no corking)")
        nonblock = s.nonblock or bool(flags & MSG_DONTWAIT)
        prof = self.ip.profile
        sent = 0

        def attempt(now: float, timed_out: bool) -> Ret | None:
            nonlocal sent
            c = s.conn
            if s.listener is not None:
                return fail(E.ENOTCONN)
            if c is None:
                return fail(E.EPIPE if prof.write_while_connecting == "wait" else E.ENOTCONN)
            if c.state is S.CLOSED:
                if sent:
                    return Ret(sent)
                if prof.write_after_reset == "EPIPE":
                    return fail(E.EPIPE)        # FreeBSD sosend: SBS_CANTSENDMORE before so_error
                err = s.take_error()
                return fail(err or E.EPIPE)
            if c.state in CONNECTING and not c.passive:
                if prof.write_while_connecting != "wait":
                    return fail(E.ENOTCONN)
                return fail(E.EAGAIN) if nonblock else None
            if not data:
                return Ret(0)
            try:
                n = c.send(data[sent:], urgent=bool(flags & MSG_OOB))
            except OSError as e:
                if sent:
                    return Ret(sent)
                return fail(e.errno or E.EPIPE)
            if n:
                self.ip.note_written(c, data[sent:sent + n])
                self._touch(s)
            sent += n
            if sent == len(data):
                return Ret(sent)
            if nonblock:
                return Ret(sent) if sent else fail(E.EAGAIN)
            return None
        return Op(attempt)

    # --- close, shutdown, fcntl ---------------------------------------------------------------------

    def sys_close(self, args, line):
        self._argc("close", args, line, 1)
        s = self._fd(args[0], line)
        if isinstance(s, Ret):
            return self.done(s)
        ip = self.ip
        del self.socks[s.fd]
        s.closed = True
        if s.listener is not None:
            ip.stack.close_listener(s.listener, ip.now)
        elif s.conn is not None:
            if s.linger[0] and s.linger[1] == 0:
                s.conn.abort(ip.now)                # SO_LINGER {1, 0}: RST (RFC 9293 §3.10.5 ABORT)
            else:
                s.conn.close(ip.now)
            self._touch(s)
        return self.done(Ret(0))

    def sys_shutdown(self, args, line):
        self._argc("shutdown", args, line, 2)
        s = self._fd(args[0], line)
        if isinstance(s, Ret):
            return self.done(s)
        how = self.ip.eval_int(args[1], line, "how")
        if how not in (0, 1, 2):
            return self.done(fail(E.EINVAL))
        c = s.conn
        if c is None or c.state is S.CLOSED or s.listener is not None:
            return self.done(fail(E.ENOTCONN))
        if how in (0, 2):
            s.shut_rd = True
        if how in (1, 2):
            s.shut_wr = True
            try:
                c.shutdown_write(self.ip.now)
            except OSError as e:
                if e.errno == E.EPIPE:
                    return self.done(Ret(0))        # FIN already queued or sent: nothing more to do
                return self.done(fail(e.errno or E.ENOTCONN))
            self._touch(s)
        return self.done(Ret(0))

    def sys_fcntl(self, args, line):
        self._argc("fcntl", args, line, 2, 3)
        s = self._fd(args[0], line)
        if isinstance(s, Ret):
            return self.done(s)
        cmd = self.ip.eval_int(args[1], line, "command")
        onb = self.ip.profile.o_nonblock
        if cmd == 3:                                   # F_GETFL
            return self.done(Ret(2 | (onb if s.nonblock else 0)))
        if cmd == 4:                                   # F_SETFL
            if len(args) != 3:
                raise self.err(line, "fcntl(F_SETFL) needs the flags")
            s.nonblock = bool(self.ip.eval_int(args[2], line, "flags") & onb)
            return self.done(Ret(0))
        if cmd in (1, 2):                              # F_GETFD / F_SETFD
            return self.done(Ret(0))
        raise self.err(line, f"fcntl command {cmd} is not emulated (F_GETFL, F_SETFL)")

    # --- socket options ------------------------------------------------------------------------------

    def _optnames(self, level_e: A.Expr, opt_e: A.Expr, line: int) -> tuple[str, str]:
        ip = self.ip
        if isinstance(level_e, A.Symbol):
            level = LEVEL_ALIASES.get(level_e.name, level_e.name)
        else:
            level = SOCKOPT_LEVEL.get(ip.eval_int(level_e, line, "level"), "?")
        if level not in ("SOL_SOCKET", "IPPROTO_TCP", "IPPROTO_IP", "IPPROTO_IPV6"):
            raise self.err(line, f"socket option level {level} is not emulated")
        if isinstance(opt_e, A.Symbol):
            opt = opt_e.name
            ip.eval_int(opt_e, line, "option")            # known name?
        else:
            n = ip.eval_int(opt_e, line, "option")
            opt = option_name(level, n) or f"{n}"
        return level, opt

    def _int_value(self, expr: A.Expr, line: int) -> int:
        if isinstance(expr, A.List):
            if len(expr.items) != 1:
                raise self.err(line, "expected [value]")
            expr = expr.items[0]
        return self.ip.eval_int(expr, line, "option value")

    def sys_setsockopt(self, args, line):
        self._argc("setsockopt", args, line, 5)
        s = self._fd(args[0], line)
        if isinstance(s, Ret):
            return self.done(s)
        level, opt = self._optnames(args[1], args[2], line)
        val_e, len_e = args[3], args[4]
        optlen = None if isinstance(len_e, A.Wildcard) else self.ip.eval_int(len_e, line, "optlen")
        return self.done(self._setsockopt(s, level, opt, val_e, optlen, line))

    def _setsockopt(self, s: Sock, level: str, opt: str, val_e: A.Expr, optlen: int | None, line: int) -> Ret:
        ip, prof = self.ip, self.ip.profile
        c = s.conn
        if opt == "SO_LINGER":
            if not isinstance(val_e, A.Struct):
                raise self.err(line, "SO_LINGER takes {l_onoff=N, l_linger=N}")
            if optlen is not None and optlen < 8:
                return fail(E.EINVAL)
            on = val_e.get("l_onoff") or val_e.get("onoff")
            lg = val_e.get("l_linger") or val_e.get("linger")
            s.linger = (ip.eval_int(on, line, "l_onoff") if on is not None else 0,
                        ip.eval_int(lg, line, "l_linger") if lg is not None else 0)
            return Ret(0)
        if opt == "TCP_CONGESTION":
            if not isinstance(val_e, A.String):
                raise self.err(line, 'TCP_CONGESTION takes a name: "cubic"')
            try:
                congestion.get(val_e.value)
            except KeyError:
                return fail(E.ENOENT)
            if c is not None and c.state is not S.CLOSED and c.config.cc != val_e.value:
                raise self.err(line, "changing TCP_CONGESTION on a connection is not emulated")
            s.set("cc", val_e.value)
            return Ret(0)
        if optlen is not None and optlen < 4:
            return fail(E.EINVAL)
        v = self._int_value(val_e, line)
        if level == "SOL_SOCKET":
            if opt == "SO_REUSEADDR":
                s.reuseaddr = int(bool(v))
            elif opt == "SO_REUSEPORT":
                s.reuseport = int(bool(v))
            elif opt in ("SO_DEBUG", "SO_OOBINLINE", "SO_DONTROUTE", "SO_BROADCAST"):
                s.extra[opt] = int(bool(v))               # no effect on TCP's behaviour here
            elif opt in ("SO_RCVBUF", "SO_SNDBUF", "SO_RCVBUFFORCE", "SO_SNDBUFFORCE"):
                size = max(v, prof.min_sockbuf) * (2 if prof.sockbuf_doubled else 1)
                if opt.startswith("SO_RCVBUF"):
                    s.set("rcv_buf", size)
                    if c is not None:
                        c.rcvbuf.capacity = size
                else:
                    s.set("snd_buf", size)
                    if c is not None:
                        c.sndbuf.capacity = size
            elif opt == "SO_KEEPALIVE":
                s.set("keepalive", bool(v))
                self._rearm_keepalive(s)
            else:
                raise self.err(line, f"setsockopt {opt} is not emulated")
            return Ret(0)
        if level == "IPPROTO_TCP":
            if opt == "TCP_NODELAY":
                s.set("nagle", not v)
                self._touch(s)
            elif opt == "TCP_MAXSEG":
                if not 88 <= v <= 32767:
                    return fail(E.EINVAL)
                s.set("mss", v)
                s.extra["TCP_MAXSEG"] = v
            elif opt in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT"):
                if not 1 <= v <= (127 if opt == "TCP_KEEPCNT" else 32767):
                    return fail(E.EINVAL)
                fld = {"TCP_KEEPIDLE": "keepalive_idle", "TCP_KEEPINTVL": "keepalive_interval",
                       "TCP_KEEPCNT": "keepalive_count"}[opt]
                s.set(fld, v if opt == "TCP_KEEPCNT" else float(v))
                if opt == "TCP_KEEPIDLE":
                    self._rearm_keepalive(s)
            elif opt == "TCP_KEEPINIT":
                if not has_knob("connect_timeout"):
                    raise self.err(line, "TCP_KEEPINIT: synack has no connection-establishment time "
                                         "limit (TcpConfig.connect_timeout is missing)")
                s.set("connect_timeout", float(v))
            elif opt == "TCP_SYNCNT":
                if not 1 <= v <= 127:
                    return fail(E.EINVAL)
                s.set("syn_retries", v)
            elif opt == "TCP_USER_TIMEOUT":
                if v < 0:
                    return fail(E.EINVAL)
                s.set("user_timeout", v / 1000.0 if v else None)
            elif opt == "TCP_NOOPT":
                if v and not has_knob("syn_mss_option"):
                    raise self.err(line, "TCP_NOOPT: synack always sends the MSS option on a SYN "
                                         "(TcpConfig.syn_mss_option is missing)")
                for fld in ("window_scaling", "sack", "timestamps"):
                    s.set(fld, not v)
                if has_knob("syn_mss_option"):
                    s.set("syn_mss_option", not v)
                s.extra[opt] = int(bool(v))
            elif opt in ("TCP_NOPUSH", "TCP_CORK"):
                if v and not has_knob("cork"):
                    raise self.err(line, f"{opt}: synack has no corking (TcpConfig.cork is missing)")
                if has_knob("cork"):
                    s.set("cork", bool(v))
                s.extra[opt] = int(bool(v))
                self._touch(s)
            else:
                raise self.err(line, f"setsockopt {opt} is not emulated")
            return Ret(0)
        if opt in ("IP_TOS", "IPV6_TCLASS"):
            s.ip_tos = v & 0xFF          # kept for getsockopt; synack's packets carry TOS 0
        elif opt in ("IP_TTL", "IPV6_UNICAST_HOPS"):
            if not 1 <= v <= 255 and v != -1:
                return fail(E.EINVAL)
            s.ip_ttl = 64 if v == -1 else v   # kept for getsockopt; the stack's TTL is StackConfig.ttl
        else:
            raise self.err(line, f"setsockopt {opt} is not emulated")
        return Ret(0)

    def _rearm_keepalive(self, s: Sock) -> None:
        """A keep-alive option set on a live connection restarts its timer, as the kernels do."""
        c = s.conn
        if c is None:
            return
        c.keepalive_changed(self.ip.now)
        self._touch(s)

    def sys_getsockopt(self, args, line):
        self._argc("getsockopt", args, line, 5)
        s = self._fd(args[0], line)
        if isinstance(s, Ret):
            return self.done(s)
        level, opt = self._optnames(args[1], args[2], line)
        val_e, len_e = args[3], args[4]

        def attempt(now: float, timed_out: bool) -> Ret | None:
            value, size = self._getsockopt(s, level, opt, line)
            self._check_value(opt, val_e, value, line)
            if not isinstance(len_e, A.Wildcard):
                want = self._int_value(len_e, line)
                if want != size:
                    raise ScriptFailure(line, f"getsockopt {opt}: length {size}, expected {want}")
            return Ret(0)
        return Op(attempt)

    def _getsockopt(self, s: Sock, level: str, opt: str, line: int) -> tuple[object, int]:
        cfg = s.conn.config if s.conn is not None else s.config
        prof = self.ip.profile
        ints: dict[str, Callable[[], int]] = {
            "SO_ERROR": s.take_error,
            "SO_REUSEADDR": lambda: s.reuseaddr,
            "SO_REUSEPORT": lambda: s.reuseport,
            "SO_KEEPALIVE": lambda: int(cfg.keepalive),
            "SO_TYPE": lambda: 1,
            "SO_ACCEPTCONN": lambda: int(s.listener is not None),
            "SO_RCVBUF": lambda: cfg.rcv_buf,
            "SO_SNDBUF": lambda: cfg.snd_buf,
            "TCP_NODELAY": lambda: int(not cfg.nagle),
            "TCP_MAXSEG": lambda: self._maxseg(s),
            "TCP_KEEPIDLE": lambda: int(cfg.keepalive_idle),
            "TCP_KEEPINTVL": lambda: int(cfg.keepalive_interval),
            "TCP_KEEPCNT": lambda: int(cfg.keepalive_count),
            "TCP_SYNCNT": lambda: int(cfg.syn_retries),
            "TCP_USER_TIMEOUT": lambda: int((cfg.user_timeout or 0) * 1000),
            "IP_TOS": lambda: s.ip_tos, "IPV6_TCLASS": lambda: s.ip_tos,
            "IP_TTL": lambda: s.ip_ttl, "IPV6_UNICAST_HOPS": lambda: s.ip_ttl,
        }
        for name in ("SO_DEBUG", "SO_OOBINLINE", "SO_DONTROUTE", "SO_BROADCAST", "TCP_NOOPT",
                     "TCP_NOPUSH", "TCP_CORK"):
            ints.setdefault(name, lambda name=name: s.extra.get(name, 0))
        if opt in ints:
            return ints[opt](), 4
        if opt == "SO_LINGER":
            return {"l_onoff": s.linger[0], "l_linger": s.linger[1]}, 8
        if opt == "TCP_CONGESTION":
            return cfg.cc, 16
        if opt == "TCP_INFO":
            info = self.ip.tcp_info(s)
            return info, 104 if prof.name == "freebsd" else 232
        raise self.err(line, f"getsockopt {opt} is not emulated")

    def _maxseg(self, s: Sock) -> int:
        c = s.conn
        if c is not None and c.state.synchronized:
            return c.mss
        return s.extra.get("TCP_MAXSEG", 536)

    def _check_value(self, opt: str, want: A.Expr, got: object, line: int) -> None:
        ip = self.ip
        if isinstance(want, A.Wildcard):
            return
        if isinstance(got, dict):
            if not isinstance(want, A.Struct):
                raise self.err(line, f"getsockopt {opt}: expected a {{field=value, ...}} struct")
            for f in want.fields:
                if f.name is None or isinstance(f.value, A.Wildcard):
                    continue
                if f.name not in got:
                    raise self.err(line, f"getsockopt {opt}: no field '{f.name}'")
                w = ip.eval_int(f.value, line, f.name)
                if got[f.name] != w:
                    raise ScriptFailure(line, f"getsockopt {opt}: {f.name}={got[f.name]}, expected {w}")
            return
        if isinstance(got, str):
            if not isinstance(want, A.String):
                raise self.err(line, f"getsockopt {opt}: expected a string")
            if got != want.value:
                raise ScriptFailure(line, f'getsockopt {opt}: "{got}", expected "{want.value}"')
            return
        w = self._int_value(want, line)
        if got != w:
            if opt == "SO_ERROR":
                gtxt = errno_name(got) if got else "0"     # type: ignore[arg-type]
                wtxt = errno_name(w) if w else "0"
                raise ScriptFailure(line, f"getsockopt SO_ERROR: [{gtxt}], expected [{wtxt}]")
            raise ScriptFailure(line, f"getsockopt {opt}: [{got}], expected [{w}]")

    # --- poll, select --------------------------------------------------------------------------------

    def revents(self, s: Sock | None, events: int) -> int:
        if s is None:
            return POLLNVAL
        always = POLLERR | POLLHUP | POLLNVAL
        m = 0
        if s.listener is not None:
            if s.listener.accept_queue:
                m |= POLLIN | POLLRDNORM
            return m & (events | always)
        c = s.conn
        if c is None:
            return (POLLOUT | POLLWRNORM | POLLHUP) & (events | always)
        st = c.state
        if s.pending_error() or s.soft_errno:
            m |= POLLERR
        if st in CONNECTING and not c.passive:
            return m & (events | always)
        rd_shut = st in PEER_FIN_STATES or s.shut_rd or st is S.CLOSED
        wr_shut = st is S.CLOSED or st in OUR_FIN_STATES or s.shut_wr
        if rd_shut and wr_shut or st is S.CLOSED:
            m |= POLLHUP
        if rd_shut:
            m |= POLLIN | POLLRDNORM | POLLRDHUP
        if c.readable:
            m |= POLLIN | POLLRDNORM
        if wr_shut or c.sndbuf.free > 0:
            m |= POLLOUT | POLLWRNORM
        return m & (events | always)

    def sys_poll(self, args, line):
        self._argc("poll", args, line, 3)
        ip = self.ip
        if not isinstance(args[0], A.List):
            raise self.err(line, "poll() takes [{fd=N, events=..., revents=...}, ...]")
        entries = []
        for item in args[0].items:
            if not isinstance(item, A.Struct) or item.get("fd") is None:
                raise self.err(line, "poll(): each entry is {fd=N, events=..., revents=...}")
            fd = ip.eval_int(item.get("fd"), line, "fd")          # type: ignore[arg-type]
            ev_e = item.get("events")
            events = 0 if ev_e is None else ip.eval_int(ev_e, line, "events")
            entries.append((fd, events, item.get("revents")))
        nfds = ip.eval_int(args[1], line, "nfds")
        if nfds != len(entries):
            raise self.err(line, f"poll(): nfds {nfds} but {len(entries)} entries")
        timeout = ip.eval_int(args[2], line, "timeout")
        deadline = None if timeout < 0 else ip.now + timeout / 1000.0

        def attempt(now: float, timed_out: bool) -> Ret | None:
            got = [self.revents(self.socks.get(fd), ev) for fd, ev, _ in entries]
            ready = sum(1 for r in got if r)
            if not ready and not timed_out and timeout != 0:
                return None
            for (fd, _ev, want_e), r in zip(entries, got):
                if want_e is not None and not isinstance(want_e, A.Wildcard):
                    want = ip.eval_int(want_e, line, "revents")
                    if want != r:
                        raise ScriptFailure(line, f"poll: fd {fd} revents {_poll_names(r)}, "
                                                  f"expected {_poll_names(want)}")
            return Ret(ready)
        return Op(attempt, deadline)

    def sys_select(self, args, line):
        self._argc("select", args, line, 5)
        ip = self.ip

        def fdset(e: A.Expr) -> list[int]:
            if isinstance(e, (A.Wildcard,)) or (isinstance(e, A.Symbol) and e.name == "NULL") \
                    or (isinstance(e, A.Int) and e.value == 0):
                return []
            if not isinstance(e, A.List):
                raise self.err(line, "select(): fd sets are written [fd, ...]")
            return [ip.eval_int(x, line, "fd") for x in e.items]
        rd, wr, ex = fdset(args[1]), fdset(args[2]), fdset(args[3])
        t = args[4]
        if isinstance(t, A.Struct):
            sec, usec = t.get("tv_sec"), t.get("tv_usec")
            secs = (ip.eval_int(sec, line, "tv_sec") if sec is not None else 0) \
                + (ip.eval_int(usec, line, "tv_usec") if usec is not None else 0) / 1e6
            deadline: float | None = ip.now + secs
        else:
            secs, deadline = -1.0, None

        def attempt(now: float, timed_out: bool) -> Ret | None:
            n = sum(1 for fd in rd if self.revents(self.socks.get(fd), POLLIN) & (POLLIN | POLLHUP | POLLERR))
            n += sum(1 for fd in wr if self.revents(self.socks.get(fd), POLLOUT) & (POLLOUT | POLLERR))
            n += sum(1 for fd in ex if self.revents(self.socks.get(fd), POLLPRI) & POLLPRI)
            if n or timed_out or secs == 0:
                return Ret(n)
            return None
        return Op(attempt, deadline)


def _poll_names(mask: int) -> str:
    names = [(POLLIN, "POLLIN"), (POLLPRI, "POLLPRI"), (POLLOUT, "POLLOUT"), (POLLERR, "POLLERR"),
             (POLLHUP, "POLLHUP"), (POLLNVAL, "POLLNVAL"), (POLLRDNORM, "POLLRDNORM"),
             (POLLWRNORM, "POLLWRNORM"), (POLLRDHUP, "POLLRDHUP")]
    parts = [n for bit, n in names if mask & bit]
    rest = mask & ~sum(bit for bit, _ in names)
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) if parts else "0"
