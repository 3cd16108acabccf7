"""Client scenarios for tests/link/test_socket_differential.py, and the kernel peer they drive.

Standard library only: the same file runs three ways.

* ``python sockdiff_scenarios.py peer``: the kernel peer. It reads one command a line on stdin
  (listen, accept, connect, send, fin, rst, recv, drain, waitstate, ...) and answers one line on
  stdout, so a scenario decides exactly when the peer acts.
* ``python sockdiff_scenarios.py linux HOST HOST6``: every scenario with the stdlib ``socket``
  module and ``asyncio`` (Linux's answers; run inside the namespace, with a peer of its own),
  printed as JSON ``{name: [outcome, ...]}``.
* imported by the test, which runs the same scenarios with ``synack.socket`` / synack's asyncio
  streams against a peer in the namespace.

A scenario gets an ``Env`` and returns the list of outcomes: ``label: repr(result)`` or
``label: <builtin exception class> errno N``. Addresses are written as ADDR/ADDR6, the
scenario's own port as P and any other port as eph, so the kernel's loopback run and synack's
TUN run compare. Every wait is on an observable condition (a TCP state, bytes queued), bounded.
"""

from __future__ import annotations

import asyncio
import json
import socket as stdsocket
import struct
import subprocess
import sys
import threading
import time

BASE_PORT = 6300
WAIT = 8.0                  # the bound of every wait on a condition

# Linux's tcpi_state numbers (include/net/tcp_states.h), as synack's State names
LINUX_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECEIVED", 4: "FIN_WAIT_1", 5: "FIN_WAIT_2",
                6: "TIME_WAIT", 7: "CLOSED", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


# =============================================================================== the peer

def peer_main() -> None:
    socks: dict[int, stdsocket.socket] = {}
    listeners: dict[int, stdsocket.socket] = {}
    ids = iter(range(1, 1 << 30))

    def state(s: stdsocket.socket) -> str:
        return LINUX_STATES[s.getsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_INFO, 8)[0]]

    def do(cmd: str, a: list[str]) -> str:
        if cmd == "listen":                          # listen HOST PORT [RCVBUF]
            ls = stdsocket.socket(stdsocket.AF_INET6 if ":" in a[0] else stdsocket.AF_INET)
            ls.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR, 1)
            if len(a) > 2:
                ls.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, int(a[2]))
            ls.bind((a[0], int(a[1])))
            ls.listen(8)
            listeners[int(a[1])] = ls
            return "ok"
        if cmd == "unlisten":
            listeners.pop(int(a[0])).close()
            return "ok"
        if cmd == "accept":                          # accept PORT -> ID
            ls = listeners[int(a[0])]
            ls.settimeout(WAIT)
            s, _ = ls.accept()
            s.settimeout(WAIT)
            i = next(ids)
            socks[i] = s
            return f"ok {i}"
        if cmd == "connect":                         # connect HOST PORT -> ID
            s = stdsocket.socket(stdsocket.AF_INET6 if ":" in a[0] else stdsocket.AF_INET)
            s.settimeout(WAIT)
            s.connect((a[0], int(a[1])))
            i = next(ids)
            socks[i] = s
            return f"ok {i}"
        s = socks[int(a[0])]
        if cmd == "send":                            # send ID TEXT (\n for newlines)
            s.sendall(a[1].replace("\\n", "\n").encode())
        elif cmd == "fin":
            s.shutdown(stdsocket.SHUT_WR)
        elif cmd == "rst":
            s.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        elif cmd == "close":
            s.close()
        elif cmd == "recv":                          # recv ID N -> repr or error
            try:
                return "ok " + repr(s.recv(int(a[1])))
            except OSError as e:
                return f"ok errno {e.errno}"
        elif cmd == "drain":                         # bytes until EOF (or an error)
            n, end = 0, "eof"
            try:
                while (b := s.recv(1 << 16)):
                    n += len(b)
            except OSError as e:
                end = f"errno {e.errno}"
            return f"ok {n} {end}"
        elif cmd == "waitstate":                     # waitstate ID NAME
            deadline = time.monotonic() + WAIT
            while state(s) != a[1] and time.monotonic() < deadline:
                time.sleep(0.005)
            return f"ok {state(s)}"
        else:
            return f"error unknown command {cmd}"
        return "ok"

    for line in sys.stdin:
        cmd, *args = line.split()
        try:
            out = do(cmd, args)
        except Exception as e:                       # noqa: BLE001 - reported to the scenario
            out = f"error {type(e).__name__} {e}"
        print(out, flush=True)


class Ctl:
    """Commands to the peer process (thread-safe: one command at a time)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lock = threading.Lock()

    def __call__(self, *args: object) -> str:
        with self.lock:
            self.proc.stdin.write(" ".join(str(x) for x in args) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline().strip()
        if not line.startswith("ok"):
            raise RuntimeError(f"peer: {args} -> {line!r}")
        return line[3:]


# ========================================================================= recording

def _builtin_class(e: BaseException) -> str:
    for k in type(e).__mro__:
        if k.__module__ == "builtins":
            return k.__name__
    return type(e).__name__


class Env:
    """What a scenario gets: the module, the peer, the addresses and per-module probes."""

    def __init__(self, mod, make, host: str, host6: str | None, me: str, ctl: Ctl, port: int,
                 state, inq, aio=None, me6: str | None = None) -> None:
        self.mod, self._make, self.host, self.host6, self.me = mod, make, host, host6, me
        self.ctl, self.port = ctl, port
        self._state, self._inq = state, inq
        self.aio = aio              # (open_connection, start_server, transport_state)
        self.out: list[str] = []
        self.socks: list = []
        self.names = {host: "ADDR", me: "ADDR"}
        for a in (host6, me6):
            if a:
                self.names[a] = "ADDR6"

    def sock(self, family=None, timeout: float | None = 5.0):
        s = self._make(family if family is not None else self.mod.AF_INET)
        s.settimeout(timeout)
        self.socks.append(s)
        return s

    def norm(self, v):
        if isinstance(v, tuple) and len(v) in (2, 4) and isinstance(v[0], str) and isinstance(v[1], int):
            return (self.names.get(v[0], v[0]), "P" if v[1] == self.port else "eph") + tuple(v[2:])
        if isinstance(v, tuple):
            return tuple(self.norm(x) for x in v)
        return v

    def rec(self, label: str, fn):
        try:
            v = fn()
        except (OSError, ValueError, RuntimeError) as e:
            self.out.append(f"{label}: {_builtin_class(e)} errno {getattr(e, 'errno', None)}")
            return None
        self.out.append(f"{label}: {self.norm(v)!r}")
        return v

    async def arec(self, label: str, coro):
        try:
            v = await coro
        except (OSError, ValueError, RuntimeError, asyncio.IncompleteReadError) as e:
            self.out.append(f"{label}: {_builtin_class(e)} errno {getattr(e, 'errno', None)}")
            return None
        self.out.append(f"{label}: {self.norm(v)!r}")
        return v

    def note(self, label: str, v) -> None:
        self.out.append(f"{label}: {v!r}")

    # ---- waits on observable conditions (bounded; the outcome lists show a miss) ----

    def wait_state(self, s, *names: str) -> None:
        deadline = time.monotonic() + WAIT
        while self._state(s) not in names and time.monotonic() < deadline:
            time.sleep(0.005)
        if self._state(s) not in names:
            self.out.append(f"(wait for {names} missed: {self._state(s)})")

    def wait_inq(self, s, n: int) -> None:
        deadline = time.monotonic() + WAIT
        while self._inq(s) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        if self._inq(s) < n:
            self.out.append(f"(wait for {n} bytes missed)")

    async def await_state(self, writer, *names: str) -> None:
        st = self.aio[2]
        deadline = time.monotonic() + WAIT
        while st(writer) not in names and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if st(writer) not in names:
            self.out.append(f"(wait for {names} missed: {st(writer)})")

    async def actl(self, *args: object) -> str:
        """A peer command from a coroutine, off the loop (the loop may have to answer the peer)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.ctl, *args)

    def close_all(self) -> None:
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def _so_error(env, s):
    return s.getsockopt(env.mod.SOL_SOCKET, env.mod.SO_ERROR)


def _connected(env: Env, family=None, **listen):
    """A client socket connected to the peer, and the peer's id for it."""
    host = env.host if family in (None, env.mod.AF_INET) else env.host6
    env.ctl("listen", host, env.port, *listen.values())
    c = env.sock(family)
    c.connect((host, env.port))
    pid = env.ctl("accept", env.port)
    env.ctl("unlisten", env.port)
    return c, pid


# ========================================================================= scenarios

SCENARIOS: dict[str, object] = {}


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


@scenario
def reset_established_with_unread_data(env: Env) -> None:
    c, pid = _connected(env)
    env.ctl("send", pid, "hello")
    env.wait_inq(c, 5)
    env.ctl("rst", pid)
    env.wait_state(c, "CLOSED")
    env.rec("recv", lambda: c.recv(100))
    env.rec("recv", lambda: c.recv(100))
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("recv", lambda: c.recv(100))
    env.rec("send", lambda: c.send(b"x"))
    env.rec("getpeername", c.getpeername)
    env.rec("getsockname", c.getsockname)
    env.rec("shutdown WR", lambda: c.shutdown(env.mod.SHUT_WR))
    env.rec("close", c.close)


@scenario
def reset_established_send_first(env: Env) -> None:
    c, pid = _connected(env)
    env.ctl("rst", pid)
    env.wait_state(c, "CLOSED")
    env.rec("send", lambda: c.send(b"x"))
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("recv", lambda: c.recv(100))
    env.rec("send", lambda: c.send(b"x"))


@scenario
def reset_in_close_wait_recv_first(env: Env) -> None:
    c, pid = _connected(env)
    env.ctl("fin", pid)
    env.wait_state(c, "CLOSE_WAIT")
    env.rec("recv", lambda: c.recv(100))
    env.ctl("rst", pid)
    env.wait_state(c, "CLOSED")
    env.rec("recv", lambda: c.recv(100))
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("send", lambda: c.send(b"x"))
    env.rec("getpeername", c.getpeername)


@scenario
def reset_in_close_wait_send_first(env: Env) -> None:
    c, pid = _connected(env)
    env.ctl("fin", pid)
    env.wait_state(c, "CLOSE_WAIT")
    env.ctl("rst", pid)
    env.wait_state(c, "CLOSED")
    env.rec("send", lambda: c.send(b"x"))
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("recv", lambda: c.recv(100))
    env.rec("send", lambda: c.send(b"x"))


@scenario
def reset_in_close_wait_so_error_first(env: Env) -> None:
    c, pid = _connected(env)
    env.ctl("fin", pid)
    env.wait_state(c, "CLOSE_WAIT")
    env.ctl("rst", pid)
    env.wait_state(c, "CLOSED")
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("recv", lambda: c.recv(100))
    env.rec("send", lambda: c.send(b"x"))


@scenario
def reset_during_blocking_recv(env: Env) -> None:
    c, pid = _connected(env)
    c.settimeout(None)

    def later() -> None:
        time.sleep(0.3)          # either way recv ends with ECONNRESET: before or while it waits
        env.ctl("rst", pid)
    t = threading.Thread(target=later)
    t.start()
    try:
        env.rec("recv", lambda: c.recv(100))
    finally:
        t.join(WAIT)
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("recv", lambda: c.recv(100))


@scenario
def reset_during_blocking_send(env: Env) -> None:
    env.ctl("listen", env.host, env.port, 4096)
    c = env.sock()
    c.setsockopt(env.mod.SOL_SOCKET, env.mod.SO_SNDBUF, 8192)
    c.connect((env.host, env.port))
    pid = env.ctl("accept", env.port)
    env.ctl("unlisten", env.port)
    c.settimeout(None)

    def later() -> None:
        time.sleep(0.5)          # 8 MB cannot fit in the buffers: sendall is still blocked
        env.ctl("rst", pid)
    t = threading.Thread(target=later)
    t.start()
    try:
        env.rec("sendall 8MB", lambda: c.sendall(b"z" * 8_000_000))
    finally:
        t.join(WAIT)
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("send", lambda: c.send(b"x"))
    env.rec("recv", lambda: c.recv(100))


@scenario
def connect_refused_blocking(env: Env) -> None:
    c = env.sock(timeout=None)
    env.rec("connect", lambda: c.connect((env.host, env.port)))
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("recv", lambda: c.recv(100))
    env.rec("send", lambda: c.send(b"x"))
    env.rec("getpeername", c.getpeername)
    env.rec("connect_ex", lambda: c.connect_ex((env.host, env.port)))
    env.ctl("listen", env.host, env.port)
    env.rec("connect again", lambda: c.connect((env.host, env.port)))
    env.rec("getpeername", c.getpeername)
    env.ctl("accept", env.port)
    env.ctl("unlisten", env.port)


@scenario
def connect_refused_with_timeout(env: Env) -> None:
    # the socket module connects in timeout mode without blocking and polls: the failure is
    # read through SO_ERROR, the socket stays "connecting" for the kernel. (Linux answers the
    # next connect ECONNABORTED; synack connects again: a documented difference, not checked.)
    c = env.sock(timeout=5.0)
    env.rec("connect", lambda: c.connect((env.host, env.port)))
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("recv", lambda: c.recv(100))
    env.rec("send", lambda: c.send(b"x"))
    env.rec("getpeername", c.getpeername)


@scenario
def shutdown_then_connect(env: Env) -> None:
    c = env.sock()
    env.rec("shutdown RDWR unconnected", lambda: c.shutdown(env.mod.SHUT_RDWR))
    env.rec("recv", lambda: c.recv(100))
    env.rec("connect", lambda: c.connect((env.host, env.port)))
    w = env.sock()
    env.rec("shutdown WR unconnected", lambda: w.shutdown(env.mod.SHUT_WR))
    env.rec("recv", lambda: w.recv(100))
    env.rec("send", lambda: w.send(b"x"))


@scenario
def connect_nonblocking_refused(env: Env) -> None:
    c = env.sock(timeout=0.0)
    env.rec("connect", lambda: c.connect((env.host, env.port)))
    env.wait_state(c, "CLOSED")
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("recv", lambda: c.recv(100))
    env.rec("getpeername", c.getpeername)
    env.rec("connect after SO_ERROR", lambda: c.connect((env.host, env.port)))
    env.rec("recv", lambda: c.recv(100))


@scenario
def connect_nonblocking_refused_connect_again(env: Env) -> None:
    c = env.sock(timeout=0.0)
    env.rec("connect_ex", lambda: c.connect_ex((env.host, env.port)))
    env.wait_state(c, "CLOSED")
    env.rec("connect_ex", lambda: c.connect_ex((env.host, env.port)))
    env.rec("connect_ex", lambda: c.connect_ex((env.host, env.port)))


@scenario
def connect_nonblocking_ok(env: Env) -> None:
    env.ctl("listen", env.host, env.port)
    c = env.sock(timeout=0.0)
    env.rec("connect_ex", lambda: c.connect_ex((env.host, env.port)))
    env.wait_state(c, "ESTABLISHED")
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("connect_ex", lambda: c.connect_ex((env.host, env.port)))
    env.rec("connect_ex", lambda: c.connect_ex((env.host, env.port)))
    env.rec("connect", lambda: c.connect((env.host, env.port)))
    env.rec("getpeername", c.getpeername)
    env.rec("recv", lambda: c.recv(10))
    env.ctl("accept", env.port)
    env.ctl("unlisten", env.port)


@scenario
def half_close(env: Env) -> None:
    c, pid = _connected(env)
    env.rec("shutdown WR", lambda: c.shutdown(env.mod.SHUT_WR))
    env.rec("send", lambda: c.send(b"x"))
    env.rec("shutdown WR again", lambda: c.shutdown(env.mod.SHUT_WR))
    env.note("peer recv", env.ctl("recv", pid, 100))
    env.ctl("send", pid, "bye")
    env.ctl("fin", pid)
    env.ctl("waitstate", pid, "CLOSED")
    env.wait_inq(c, 3)
    env.rec("recv", lambda: c.recv(100))
    env.rec("recv", lambda: c.recv(100))
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("getpeername", c.getpeername)
    env.rec("shutdown WR", lambda: c.shutdown(env.mod.SHUT_WR))
    env.rec("shutdown RD", lambda: c.shutdown(env.mod.SHUT_RD))
    env.rec("send", lambda: c.send(b"x"))


@scenario
def peer_fin_then_us(env: Env) -> None:
    c, pid = _connected(env)
    env.ctl("send", pid, "data")
    env.ctl("fin", pid)
    env.wait_state(c, "CLOSE_WAIT")
    env.rec("recv", lambda: c.recv(100))
    env.rec("recv", lambda: c.recv(100))
    env.rec("recv MSG_PEEK", lambda: c.recv(100, env.mod.MSG_PEEK))
    env.rec("send", lambda: c.send(b"after fin"))
    env.note("peer recv", env.ctl("recv", pid, 100))
    env.rec("getpeername", c.getpeername)
    env.rec("shutdown WR", lambda: c.shutdown(env.mod.SHUT_WR))
    env.ctl("waitstate", pid, "CLOSED")
    env.wait_state(c, "CLOSED", "TIME_WAIT")
    env.rec("getpeername", c.getpeername)
    env.rec("send", lambda: c.send(b"x"))
    env.rec("recv", lambda: c.recv(100))
    env.rec("shutdown RDWR", lambda: c.shutdown(env.mod.SHUT_RDWR))


@scenario
def shutdown_rd(env: Env) -> None:
    c, pid = _connected(env)
    env.rec("shutdown RD", lambda: c.shutdown(env.mod.SHUT_RD))
    env.rec("recv", lambda: c.recv(100))
    env.ctl("send", pid, "late")
    env.wait_inq(c, 4)
    env.rec("recv", lambda: c.recv(100))
    env.rec("send", lambda: c.send(b"still"))
    env.note("peer recv", env.ctl("recv", pid, 100))
    env.rec("shutdown RD again", lambda: c.shutdown(env.mod.SHUT_RD))


@scenario
def shutdown_rdwr(env: Env) -> None:
    c, pid = _connected(env)
    env.rec("shutdown RDWR", lambda: c.shutdown(env.mod.SHUT_RDWR))
    env.rec("recv", lambda: c.recv(100))
    env.rec("send", lambda: c.send(b"x"))
    env.note("peer recv", env.ctl("recv", pid, 100))
    env.rec("shutdown bad how", lambda: c.shutdown(7))


@scenario
def shutdown_unconnected(env: Env) -> None:
    c = env.sock()
    env.rec("recv", lambda: c.recv(10))
    env.rec("shutdown WR", lambda: c.shutdown(env.mod.SHUT_WR))
    env.rec("shutdown RD", lambda: c.shutdown(env.mod.SHUT_RD))
    env.rec("getpeername", c.getpeername)
    env.rec("getsockname", c.getsockname)
    env.rec("recv", lambda: c.recv(10))
    env.rec("send", lambda: c.send(b"x"))
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("SO_TYPE", lambda: c.getsockopt(env.mod.SOL_SOCKET, env.mod.SO_TYPE))
    env.rec("SO_ACCEPTCONN", lambda: c.getsockopt(env.mod.SOL_SOCKET, env.mod.SO_ACCEPTCONN))


@scenario
def close_with_linger_zero(env: Env) -> None:
    c, pid = _connected(env)
    c.setsockopt(env.mod.SOL_SOCKET, env.mod.SO_LINGER, struct.pack("ii", 1, 0))
    env.rec("SO_LINGER", lambda: struct.unpack("ii", c.getsockopt(env.mod.SOL_SOCKET, env.mod.SO_LINGER, 8)))
    env.rec("close", c.close)
    env.note("peer recv", env.ctl("recv", pid, 100))


@scenario
def close_with_unread_data(env: Env) -> None:
    c, pid = _connected(env)
    env.ctl("send", pid, "unread")
    env.wait_inq(c, 6)
    env.rec("close", c.close)
    env.note("peer recv", env.ctl("recv", pid, 100))
    env.rec("SO_ERROR", lambda: _so_error(env, c))
    env.rec("recv", lambda: c.recv(10))
    env.rec("send", lambda: c.send(b"x"))
    env.rec("getpeername", c.getpeername)
    env.rec("getsockname", c.getsockname)
    env.rec("shutdown", lambda: c.shutdown(env.mod.SHUT_RDWR))
    env.rec("settimeout", lambda: c.settimeout(1))
    env.rec("fileno", c.fileno)
    env.rec("close again", c.close)


@scenario
def close_plain(env: Env) -> None:
    c, pid = _connected(env)
    c.sendall(b"last words")
    env.rec("close", c.close)
    env.note("peer recv", env.ctl("recv", pid, 100))
    env.note("peer recv", env.ctl("recv", pid, 100))


@scenario
def timeouts_and_nonblocking(env: Env) -> None:
    c, pid = _connected(env)
    c.settimeout(0.2)
    env.rec("gettimeout", c.gettimeout)
    env.rec("recv with timeout", lambda: c.recv(10))
    env.rec("recv MSG_PEEK with timeout", lambda: c.recv(10, env.mod.MSG_PEEK))
    # (MSG_DONTWAIT in timeout mode: the socket module waits first, synack does not: documented)
    c.settimeout(None)
    env.rec("recv MSG_DONTWAIT, blocking socket", lambda: c.recv(10, env.mod.MSG_DONTWAIT))
    env.rec("recv MSG_PEEK|MSG_DONTWAIT", lambda: c.recv(10, env.mod.MSG_PEEK | env.mod.MSG_DONTWAIT))
    c.setblocking(False)
    env.rec("gettimeout", c.gettimeout)
    env.rec("getblocking", c.getblocking)
    env.rec("recv non-blocking", lambda: c.recv(10))
    env.rec("recv_into non-blocking", lambda: c.recv_into(bytearray(10)))
    env.rec("recv(0)", lambda: c.recv(0))
    env.rec("send empty", lambda: c.send(b""))
    last = None
    for _ in range(20000):                        # the peer does not read: the buffers fill
        try:
            c.send(b"f" * 65536)
        except OSError as e:
            last = f"{_builtin_class(e)} errno {e.errno}"
            break
    env.note("send until full", last)
    c.settimeout(0.2)
    env.rec("sendall with timeout on a full buffer", lambda: c.sendall(b"g" * 65536))
    env.rec("settimeout(-1)", lambda: c.settimeout(-1))


@scenario
def listen_and_accept(env: Env) -> None:
    s = env.sock()
    env.rec("accept unbound", s.accept)
    env.rec("listen unbound? getsockname", s.getsockname)
    env.rec("bind", lambda: s.bind((env.me, env.port)))
    env.rec("bind again", lambda: s.bind((env.me, env.port)))
    env.rec("accept not listening", s.accept)
    env.rec("listen", lambda: s.listen(4))
    env.rec("listen again", lambda: s.listen(8))
    env.rec("SO_ACCEPTCONN", lambda: s.getsockopt(env.mod.SOL_SOCKET, env.mod.SO_ACCEPTCONN))
    env.rec("getsockname", s.getsockname)
    env.rec("getpeername", s.getpeername)
    s.settimeout(None)           # (in timeout mode the socket module would poll first)
    env.rec("recv on listener", lambda: s.recv(10))
    env.rec("send on listener", lambda: s.send(b"x"))
    env.rec("connect on listener", lambda: s.connect((env.host, env.port)))
    s.setblocking(False)
    env.rec("accept none waiting", s.accept)
    s.settimeout(0.2)
    env.rec("accept timeout", s.accept)
    s.settimeout(5)
    b = env.sock()
    env.rec("bind in use", lambda: b.bind((env.me, env.port)))
    b.setsockopt(env.mod.SOL_SOCKET, env.mod.SO_REUSEADDR, 1)
    env.rec("bind in use, SO_REUSEADDR", lambda: b.bind((env.me, env.port)))
    pid = env.ctl("connect", env.me, env.port)
    acc: list = []
    env.rec("accept", lambda: (acc.append(s.accept()), acc[0][1])[1])
    if acc:
        conn = acc[0][0]
        env.socks.append(conn)
        env.rec("accepted gettimeout", conn.gettimeout)
        env.rec("accepted getsockname", conn.getsockname)
        env.rec("accepted getpeername", conn.getpeername)
        env.rec("accepted SO_ACCEPTCONN", lambda: conn.getsockopt(env.mod.SOL_SOCKET, env.mod.SO_ACCEPTCONN))
        env.rec("accepted SO_REUSEADDR", lambda: conn.getsockopt(env.mod.SOL_SOCKET, env.mod.SO_REUSEADDR))
        env.rec("listen on connected", lambda: conn.listen(1))
        env.rec("bind connected", lambda: conn.bind((env.me, 0)))
        env.rec("close accepted", conn.close)        # we close first: TIME-WAIT on our side
        env.note("peer recv", env.ctl("recv", pid, 10))
        env.ctl("fin", pid)
        env.ctl("waitstate", pid, "CLOSED")
    env.rec("close listener", s.close)
    env.rec("accept closed", s.accept)
    n = env.sock()
    env.rec("bind over TIME-WAIT", lambda: n.bind((env.me, env.port)))
    r = env.sock()
    r.setsockopt(env.mod.SOL_SOCKET, env.mod.SO_REUSEADDR, 1)
    env.rec("bind over TIME-WAIT, SO_REUSEADDR", lambda: r.bind((env.me, env.port)))
    env.rec("listen", lambda: r.listen(1))


@scenario
def reuseaddr_over_time_wait(env: Env) -> None:
    s = env.sock()
    s.setsockopt(env.mod.SOL_SOCKET, env.mod.SO_REUSEADDR, 1)
    s.bind((env.me, env.port))
    s.listen(4)
    pid = env.ctl("connect", env.me, env.port)
    conn, _ = s.accept()
    env.socks.append(conn)
    env.rec("close accepted", conn.close)        # we close first: TIME-WAIT on our side
    env.note("peer recv", env.ctl("recv", pid, 10))
    env.ctl("fin", pid)
    env.ctl("waitstate", pid, "CLOSED")
    env.rec("close listener", s.close)
    n = env.sock()
    env.rec("bind over TIME-WAIT", lambda: n.bind((env.me, env.port)))
    r = env.sock()
    r.setsockopt(env.mod.SOL_SOCKET, env.mod.SO_REUSEADDR, 1)
    env.rec("bind over TIME-WAIT, SO_REUSEADDR", lambda: r.bind((env.me, env.port)))
    env.rec("listen", lambda: r.listen(1))
    pid = env.ctl("connect", env.me, env.port)
    env.rec("accept", lambda: r.accept()[1])


@scenario
def listener_shutdown(env: Env) -> None:
    s = env.sock()
    s.bind((env.me, env.port))
    s.listen(4)
    env.rec("shutdown listener", lambda: s.shutdown(env.mod.SHUT_RDWR))
    env.rec("accept after shutdown", s.accept)
    env.rec("SO_ACCEPTCONN", lambda: s.getsockopt(env.mod.SOL_SOCKET, env.mod.SO_ACCEPTCONN))


@scenario
def peek_recv_into_makefile_sendall(env: Env) -> None:
    c, pid = _connected(env)
    env.ctl("send", pid, "abc\\ndef\\nghi")
    env.wait_inq(c, 11)
    env.rec("recv MSG_PEEK", lambda: c.recv(3, env.mod.MSG_PEEK))
    env.rec("recv MSG_PEEK again", lambda: c.recv(3, env.mod.MSG_PEEK))
    buf = bytearray(8)
    env.rec("recv_into 2", lambda: c.recv_into(buf, 2))
    env.note("buf", bytes(buf))
    env.rec("recv_into too big", lambda: c.recv_into(buf, 20))
    env.ctl("fin", pid)
    env.wait_state(c, "CLOSE_WAIT")
    f = c.makefile("rb")
    env.rec("readline", f.readline)
    env.rec("readline", f.readline)
    env.rec("read", f.read)
    env.rec("readline at eof", f.readline)
    f.close()
    env.note("file closed", f.closed)
    got: list[str] = []
    th = threading.Thread(target=lambda: got.append(env.ctl("drain", pid)))
    th.start()
    try:
        env.rec("sendall 3MB", lambda: c.sendall(bytes(range(256)) * 12_000))
        env.rec("shutdown WR", lambda: c.shutdown(env.mod.SHUT_WR))
    finally:
        th.join(3 * WAIT)
    env.note("peer drained", got)


@scenario
def makefile_text_roundtrip(env: Env) -> None:
    c, pid = _connected(env)
    w = c.makefile("w", encoding="utf-8")
    w.write("héllo\n")
    w.flush()
    env.note("peer recv", env.ctl("recv", pid, 100))
    env.ctl("send", pid, "line one\\nline two\\n")
    r = c.makefile("r", encoding="utf-8", newline="")
    env.rec("readline", r.readline)
    env.rec("readline", r.readline)
    w.close()
    r.close()
    env.rec("close", c.close)
    env.note("peer recv", env.ctl("recv", pid, 100))


@scenario
def ipv6_names(env: Env) -> None:
    if env.host6 is None:
        env.note("skipped", "no IPv6")
        return
    c, pid = _connected(env, env.mod.AF_INET6)
    env.rec("getsockname", c.getsockname)
    env.rec("getpeername", c.getpeername)
    u = env.sock(env.mod.AF_INET6)
    env.rec("unbound getsockname", u.getsockname)
    env.rec("connect v4 address on v6 socket", lambda: u.connect((env.host, env.port)))


# ---------------------------------------------------------------- asyncio streams


async def aio_reset_with_unread_data(env: Env) -> None:
    open_connection, _, _ = env.aio
    await env.actl("listen", env.host, env.port)
    reader, writer = await open_connection(env.host, env.port)
    pid = await env.actl("accept", env.port)
    await env.actl("unlisten", env.port)
    env.note("peername", env.norm(writer.get_extra_info("peername")))
    env.note("sockname", env.norm(writer.get_extra_info("sockname")))
    await env.actl("send", pid, "data")
    await env.actl("rst", pid)
    await env.await_state(writer, "CLOSED")
    await asyncio.sleep(0.05)                   # let the transport see it
    env.note("is_closing", writer.is_closing())
    await env.arec("read", reader.read(100))
    env.note("at_eof", reader.at_eof())
    env.rec("write", lambda: writer.write(b"x"))
    await env.arec("drain", writer.drain())
    env.rec("close", writer.close)
    await env.arec("wait_closed", writer.wait_closed())


async def aio_reset_while_reading(env: Env) -> None:
    open_connection, _, _ = env.aio
    await env.actl("listen", env.host, env.port)
    reader, writer = await open_connection(env.host, env.port)
    pid = await env.actl("accept", env.port)
    await env.actl("unlisten", env.port)
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, lambda: loop.run_in_executor(None, env.ctl, "rst", pid))
    await env.arec("read", asyncio.wait_for(reader.read(100), WAIT))
    await env.arec("readexactly", reader.readexactly(1))
    writer.close()
    await env.arec("wait_closed", writer.wait_closed())


async def aio_peer_fin(env: Env) -> None:
    open_connection, _, _ = env.aio
    await env.actl("listen", env.host, env.port)
    reader, writer = await open_connection(env.host, env.port)
    pid = await env.actl("accept", env.port)
    await env.actl("unlisten", env.port)
    await env.actl("send", pid, "one\\ntwo")
    await env.actl("fin", pid)
    await env.await_state(writer, "CLOSE_WAIT")
    await env.arec("readline", reader.readline())
    await env.arec("readline", reader.readline())
    env.note("at_eof", reader.at_eof())
    await env.arec("read", reader.read())
    await env.arec("readexactly", reader.readexactly(1))
    env.note("is_closing", writer.is_closing())
    env.rec("can_write_eof", writer.can_write_eof)
    writer.write(b"reply")
    await env.arec("drain", writer.drain())
    env.note("peer recv", await env.actl("recv", pid, 100))
    env.rec("write_eof", writer.write_eof)
    env.note("peer recv", await env.actl("recv", pid, 100))
    env.rec("write after write_eof", lambda: writer.write(b"x"))
    writer.close()
    await env.arec("wait_closed", writer.wait_closed())
    env.rec("write after close", lambda: writer.write(b"x"))
    env.note("is_closing", writer.is_closing())


async def aio_close_then_write(env: Env) -> None:
    open_connection, _, _ = env.aio
    await env.actl("listen", env.host, env.port)
    reader, writer = await open_connection(env.host, env.port)
    pid = await env.actl("accept", env.port)
    await env.actl("unlisten", env.port)
    writer.write(b"bye")
    writer.close()
    env.note("is_closing", writer.is_closing())
    await env.arec("wait_closed", writer.wait_closed())
    env.rec("write after close", lambda: writer.write(b"x"))
    await env.arec("drain after close", writer.drain())
    await env.arec("read after close", reader.read(10))
    env.note("peer recv", await env.actl("recv", pid, 100))
    env.note("peer recv", await env.actl("recv", pid, 100))


async def aio_reset_in_close_wait(env: Env) -> None:
    open_connection, _, _ = env.aio
    await env.actl("listen", env.host, env.port)
    reader, writer = await open_connection(env.host, env.port)
    pid = await env.actl("accept", env.port)
    await env.actl("unlisten", env.port)
    await env.actl("fin", pid)
    await env.await_state(writer, "CLOSE_WAIT")
    await env.arec("read", reader.read(10))
    await env.actl("rst", pid)
    await env.await_state(writer, "CLOSED")
    writer.write(b"x")
    await asyncio.sleep(0.05)
    await env.arec("drain", writer.drain())
    env.note("is_closing", writer.is_closing())
    writer.close()
    await env.arec("wait_closed", writer.wait_closed())


async def aio_refused(env: Env) -> None:
    open_connection, _, _ = env.aio
    await env.arec("open_connection", open_connection(env.host, env.port))


async def aio_server(env: Env) -> None:
    _, start_server, _ = env.aio
    got: list = []
    done = asyncio.Event()

    async def handle(reader, writer) -> None:
        got.append(env.norm(writer.get_extra_info("peername")))
        got.append(env.norm(writer.get_extra_info("sockname")))
        got.append(await reader.readline())
        writer.write(b"pong\n")
        await writer.drain()
        got.append(await reader.read())
        writer.close()
        await writer.wait_closed()
        done.set()
    server = await start_server(handle, env.me, env.port)
    pid = await env.actl("connect", env.me, env.port)
    await env.actl("send", pid, "ping\\n")
    env.note("peer recv", await env.actl("recv", pid, 100))
    await env.actl("fin", pid)
    await asyncio.wait_for(done.wait(), WAIT)
    env.note("server saw", got)
    env.note("peer recv", await env.actl("recv", pid, 100))
    env.note("is_serving", server.is_serving())
    server.close()
    await server.wait_closed()
    env.note("is_serving", server.is_serving())


AIO_SCENARIOS = {f.__name__: f for f in (aio_reset_with_unread_data, aio_reset_while_reading, aio_peer_fin,
                                         aio_close_then_write, aio_reset_in_close_wait, aio_refused, aio_server)}
ALL = list(SCENARIOS) + list(AIO_SCENARIOS)


def port_of(name: str) -> int:
    return BASE_PORT + ALL.index(name)


# ========================================================================= runners

def run_all(make_env, run_aio) -> dict[str, list[str]]:
    """Every scenario, each with a fresh Env: {name: outcomes} (a crash is an outcome too)."""
    results = {}
    for name in ALL:
        env = make_env(port_of(name))
        try:
            if name in SCENARIOS:
                SCENARIOS[name](env)
            else:
                run_aio(AIO_SCENARIOS[name], env)
        except Exception as e:                          # noqa: BLE001 - shown in the diff
            env.out.append(f"CRASH {type(e).__name__}: {e}")
        finally:
            env.close_all()
        results[name] = env.out
    return results


def linux_main(host: str, host6: str | None) -> None:
    import fcntl
    import termios
    peer = subprocess.Popen([sys.executable, __file__, "peer"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    ctl = Ctl(peer)

    def state(s) -> str:
        try:
            return LINUX_STATES[s.getsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_INFO, 8)[0]]
        except OSError:
            return "CLOSED"

    def inq(s) -> int:
        return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0" * 4))[0]

    def tstate(writer) -> str:
        s = writer.get_extra_info("socket")
        try:
            return LINUX_STATES[s.getsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_INFO, 8)[0]]
        except OSError:
            return "CLOSED"

    aio = (asyncio.open_connection, asyncio.start_server, tstate)

    def make_env(port: int) -> Env:
        return Env(stdsocket, lambda fam: stdsocket.socket(fam, stdsocket.SOCK_STREAM), host, host6, host,
                   ctl, port, state, inq, aio)

    def run_aio(fn, env) -> None:
        asyncio.run(fn(env))
    try:
        print(json.dumps(run_all(make_env, run_aio)), flush=True)
    finally:
        peer.stdin.close()
        peer.wait(10)


if __name__ == "__main__":
    if sys.argv[1] == "peer":
        peer_main()
    elif sys.argv[1] == "linux":
        linux_main(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None)
