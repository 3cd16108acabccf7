"""The control socket of a running ``synack serve``, and ``synack ss`` / ``synack stats``.

Each ``synack serve`` process listens on one Unix stream socket (``--control PATH``; default
``/run/synack/NAME.sock`` as root, else ``$XDG_RUNTIME_DIR/synack/NAME.sock``, NAME being the
namespace or TUN device). The protocol is one JSON request line, one JSON reply line::

    {"cmd": "ss"}      -> {"ok": true, "connections": [...], "listeners": [...], ...}
    {"cmd": "stats"}   -> {"ok": true, "counters": {...}, "gauges": {...}, ...}
    {"cmd": "info"}    -> {"ok": true, "pid": 1234, "name": "...", ...}

Threads: the socket is accepted, read and written by a small server thread with short
timeouts, so a slow or stuck client never stalls the stack. The answer itself is computed on
the runner's loop thread (``StackRunner.submit``): that thread alone touches the stack, and a
request costs it one snapshot, no I/O.

``synack ss`` prints the table like ``ss -tni`` (state, Recv-Q, Send-Q, local, peer, then a
tab-indented line of ``key:value`` details: rtt, rto, cwnd, retransmits...); ``synack stats``
prints the counters like ``nstat``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import select
import socket
import stat
import sys
import threading
from typing import Any, Callable

MAX_REQUEST = 65536
IO_TIMEOUT = 2.0
ANSWER_TIMEOUT = 5.0

SS_STATE = {
    "ESTABLISHED": "ESTAB", "SYN-SENT": "SYN-SENT", "SYN-RECEIVED": "SYN-RECV", "FIN-WAIT-1": "FIN-WAIT-1",
    "FIN-WAIT-2": "FIN-WAIT-2", "TIME-WAIT": "TIME-WAIT", "CLOSED": "UNCONN", "CLOSE-WAIT": "CLOSE-WAIT",
    "LAST-ACK": "LAST-ACK", "LISTEN": "LISTEN", "CLOSING": "CLOSING",
}


class ControlError(RuntimeError):
    pass


# ------------------------------------------------------------------ where sockets live

def control_dirs() -> list[str]:
    """Directories searched for control sockets, in order."""
    dirs = ["/run/synack"]
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        dirs.append(os.path.join(xdg, "synack"))
    return dirs


def default_control_path(name: str) -> str:
    """``/run/synack/NAME.sock`` when this process may create it, else under
    ``$XDG_RUNTIME_DIR/synack/``; raises ``ControlError`` when neither is usable."""
    for d in control_dirs():
        try:
            os.makedirs(d, mode=0o755, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK | os.X_OK):
            return os.path.join(d, f"{name}.sock")
    raise ControlError("no writable directory for the control socket "
                       f"(tried {', '.join(control_dirs())}); give --control PATH")


def find_sockets() -> list[str]:
    out: list[str] = []
    for d in control_dirs():
        out.extend(sorted(glob.glob(os.path.join(d, "*.sock"))))
    return out


# ------------------------------------------------------------------ server side

class ControlServer:
    """Serve ``handlers[cmd]()`` (run through ``call``, e.g. ``runner.submit``) on a Unix socket
    at ``path``. ``start()`` binds (refusing a path a live server answers on) and starts the
    thread; ``close()`` stops it and removes the socket file."""

    def __init__(self, path: str, handlers: dict[str, Callable[[], dict]],
                 call: Callable[..., Any]) -> None:
        self.path = path
        self.handlers = handlers
        self.call = call
        self.requests = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stop = False

    def start(self) -> None:
        d = os.path.dirname(self.path) or "."
        os.makedirs(d, mode=0o755, exist_ok=True)
        if os.path.lexists(self.path):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise ControlError(f"{self.path} exists and is not a socket")
            try:
                request(self.path, "info", timeout=1.0)
            except (OSError, ControlError):
                os.unlink(self.path)            # left by a process that died
            else:
                raise ControlError(f"another synack serve answers on {self.path}; give --control PATH")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)                   # the socket is the owner's only (0600)
        try:
            s.bind(self.path)
        finally:
            os.umask(old)
        s.listen(16)
        s.setblocking(False)
        self._sock = s
        self._thread = threading.Thread(target=self._serve, name="synack-control", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop = True
        try:
            os.write(self._wfd, b"\0")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(IO_TIMEOUT + ANSWER_TIMEOUT + 1)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        for fd in (self._rfd, self._wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._rfd = self._wfd = -1

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop:
            r, _, _ = select.select([self._sock, self._rfd], [], [])
            if self._stop:
                return
            if self._sock in r:
                try:
                    c, _ = self._sock.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                with c:
                    self._one(c)

    def _one(self, c: socket.socket) -> None:
        c.settimeout(IO_TIMEOUT)
        try:
            buf = b""
            while b"\n" not in buf and len(buf) < MAX_REQUEST:
                chunk = c.recv(4096)
                if not chunk:
                    break
                buf += chunk
            reply = self.answer(buf)
            c.sendall(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
        except OSError:
            pass                                 # the client went away or stalled: its loss

    def answer(self, raw: bytes) -> dict:
        self.requests += 1
        try:
            req = json.loads(raw.decode("utf-8").strip() or "null")
        except (UnicodeDecodeError, ValueError) as e:
            return {"ok": False, "error": f"bad request: {e}"}
        cmd = req.get("cmd") if isinstance(req, dict) else None
        fn = self.handlers.get(cmd) if isinstance(cmd, str) else None
        if fn is None:
            return {"ok": False, "error": f"unknown command {cmd!r}; one of {', '.join(sorted(self.handlers))}"}
        try:
            result = self.call(fn).result(ANSWER_TIMEOUT)
        except Exception as e:                   # noqa: BLE001 - reported to the client
            return {"ok": False, "error": f"{type(e).__name__}: {e}"}
        return {"ok": True, **result}


# ------------------------------------------------------------------ snapshots (loop thread)

def _ep(addr: Any, port: Any) -> str:
    a = "*" if addr is None else str(addr)
    return f"[{a}]:{port}" if ":" in a else f"{a}:{port}"


def connection_rows(stack, service_of: Callable[[Any], str | None] = lambda c: None) -> list[dict]:
    """Every TCB of ``stack`` as a JSON-ready dict (call on the loop thread)."""
    rows = []
    for (laddr, lport, raddr, rport), conn in list(stack.conns.items()):
        i = conn.info()
        rows.append({
            "state": i.state.value, "recv_q": i.recv_queue, "send_q": i.send_queue,
            "local": _ep(laddr, lport), "peer": _ep(raddr, rport), "service": service_of(conn),
            "rtt": i.rtt, "rttvar": i.rttvar, "rto": i.rto, "cwnd": i.snd_cwnd, "ssthresh": i.snd_ssthresh,
            "mss": i.snd_mss, "rcv_mss": i.rcv_mss, "unacked": i.unacked, "retransmits": i.retransmits,
            "total_retrans": i.total_retrans, "snd_wnd": i.snd_wnd, "rcv_wnd": i.rcv_wnd,
            "wscale": [i.snd_wscale, i.rcv_wscale] if i.wscale_ok else None, "ts": i.timestamps_ok,
            "sack": i.sack_ok, "cc": i.cc, "timers": {k: round(v, 3) for k, v in i.timers.items()},
        })
    for (laddr, lport, raddr, rport), tw in list(stack.time_wait.items()):
        # a compact TIME-WAIT record (synack.stack.timewait): no TCB, only its deadline
        rows.append({"state": tw.state.value, "recv_q": 0, "send_q": 0, "local": _ep(laddr, lport),
                     "peer": _ep(raddr, rport), "service": None, "time_wait": True,
                     "timers": {"time_wait": round(tw.expiry, 3)}})
    return rows


def listener_rows(listeners: list[tuple[str, Any]]) -> list[dict]:
    return [{"state": "LISTEN", "recv_q": len(lst.accept_queue), "send_q": lst.backlog,
             "local": _ep(lst.addr, lst.port), "peer": "*:*", "service": name,
             "syn_queue": len(lst.syn_queue), "syn_backlog": lst.syn_backlog}
            for name, lst in listeners if not lst.closed]


# ------------------------------------------------------------------ client side

def request(path: str, cmd: str, timeout: float = ANSWER_TIMEOUT + IO_TIMEOUT) -> dict:
    """Send ``{"cmd": cmd}`` to the control socket at ``path``; the reply dict. Raises
    ``OSError`` if nobody answers there, ``ControlError`` if the server reports an error."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    try:
        reply = json.loads(buf.decode())
    except ValueError as e:
        raise ControlError(f"{path}: unreadable reply: {e}") from None
    if not reply.get("ok"):
        raise ControlError(f"{path}: {reply.get('error', 'error')}")
    return reply


def _targets(args: argparse.Namespace, prog: str) -> list[str] | int:
    if args.control:
        path = args.control
        if os.sep not in path and not path.endswith(".sock"):
            for d in control_dirs():                 # a name: NETNS or TUN of the serve
                cand = os.path.join(d, f"{path}.sock")
                if os.path.exists(cand):
                    return [cand]
            print(f"{prog}: no control socket named {path!r} in {', '.join(control_dirs())}", file=sys.stderr)
            return 1
        return [path]
    found = find_sockets()
    if not found:
        print(f"{prog}: no running `synack serve` found (no control socket in {', '.join(control_dirs())}); "
              "give --control PATH", file=sys.stderr)
        return 1
    return found


def _query_all(args: argparse.Namespace, prog: str, cmd: str) -> list[tuple[str, dict]] | int:
    targets = _targets(args, prog)
    if isinstance(targets, int):
        return targets
    out = []
    for path in targets:
        try:
            out.append((path, request(path, cmd)))
        except (OSError, ControlError) as e:
            if args.control:
                print(f"{prog}: {path}: {e}", file=sys.stderr)
                return 1
            print(f"{prog}: skipping {path}: {e}", file=sys.stderr)   # a stale socket
    if not out:
        return 1
    return out


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.3f}".rstrip("0").rstrip(".")


def format_ss(reply: dict, *, listening: bool = False, all_: bool = False, info: bool = True) -> str:
    rows = []
    if listening or all_:
        rows += reply.get("listeners", [])
    if not listening:
        rows += reply.get("connections", [])
    lw = max([len(r["local"]) for r in rows] + [len("Local Address:Port")])
    pw = max([len(r["peer"]) for r in rows] + [len("Peer Address:Port")])
    lines = [f"{'State':<11}{'Recv-Q':<7}{'Send-Q':<7}{'Local Address:Port':>{lw}}   {'Peer Address:Port':<{pw}}  Process"]
    for r in rows:
        lines.append(f"{SS_STATE.get(r['state'], r['state']):<11}{r['recv_q']:<7}{r['send_q']:<7}"
                     f"{r['local']:>{lw}}   {r['peer']:<{pw}}  {r.get('service') or ''}".rstrip())
        if not info:
            continue
        if r["state"] == "LISTEN":
            lines.append(f"\t syn_queue:{r['syn_queue']}/{r['syn_backlog']}")
            continue
        if r.get("time_wait"):
            lines.append("\t timer:(" + ",".join(f"{k},{v}" for k, v in sorted(r["timers"].items())) + ")")
            continue
        d = [r["cc"]]
        if r.get("wscale"):
            d.append(f"wscale:{r['wscale'][0]},{r['wscale'][1]}")
        if r.get("ts"):
            d.append("ts")
        if r.get("sack"):
            d.append("sack")
        d.append(f"rto:{round(r['rto'] * 1000)}")
        if r.get("rtt") is not None:
            d.append(f"rtt:{_ms(r['rtt'])}/{_ms(r['rttvar'])}")
        mss = max(r["mss"], 1)
        d += [f"mss:{r['mss']}", f"rcvmss:{r['rcv_mss']}", f"cwnd:{r['cwnd'] // mss}",
              f"ssthresh:{r['ssthresh'] // mss}" if r["ssthresh"] < 1 << 30 else "",
              f"unacked:{r['unacked']}" if r["unacked"] else "",
              f"retrans:{r['retransmits']}/{r['total_retrans']}",
              f"snd_wnd:{r['snd_wnd']}", f"rcv_wnd:{r['rcv_wnd']}"]
        if r.get("timers"):
            d.append("timer:(" + ",".join(f"{k},{v}" for k, v in sorted(r["timers"].items())) + ")")
        lines.append("\t " + " ".join(x for x in d if x))
    return "\n".join(lines)


def format_stats(reply: dict) -> str:
    lines = [f"#synack pid {reply.get('pid')} {reply.get('name', '')}".rstrip()]
    items = {**reply.get("counters", {}), **reply.get("gauges", {})}
    for k in sorted(items):
        lines.append(f"{k:<32}{items[k]}")
    return "\n".join(lines)


def add_ss_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--control", metavar="PATH|NAME",
                   help="control socket of the `synack serve` to ask (default: every one running)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-l", "--listening", action="store_true", help="listeners only")
    g.add_argument("-a", "--all", action="store_true", help="listeners and connections")
    p.add_argument("--brief", action="store_true", help="no per-connection detail line (like ss without -i)")
    p.add_argument("--json", action="store_true", help="the raw reply as JSON")


def run_ss(args: argparse.Namespace) -> int:
    got = _query_all(args, "synack ss", "ss")
    if isinstance(got, int):
        return got
    for n, (path, reply) in enumerate(got):
        if args.json:
            print(json.dumps(reply))
            continue
        if len(got) > 1:
            print(("\n" if n else "") + f"# {reply.get('name', path)} (pid {reply.get('pid')}, {path})")
        print(format_ss(reply, listening=args.listening, all_=args.all, info=not args.brief))
    return 0


def add_stats_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--control", metavar="PATH|NAME",
                   help="control socket of the `synack serve` to ask (default: every one running)")
    p.add_argument("--json", action="store_true", help="the raw reply as JSON")


def run_stats(args: argparse.Namespace) -> int:
    got = _query_all(args, "synack stats", "stats")
    if isinstance(got, int):
        return got
    for n, (path, reply) in enumerate(got):
        if args.json:
            print(json.dumps(reply))
            continue
        if n:
            print()
        print(format_stats(reply))
    return 0


__all__ = ["ControlServer", "ControlError", "request", "default_control_path", "control_dirs", "find_sockets",
           "connection_rows", "listener_rows", "format_ss", "format_stats",
           "add_ss_arguments", "run_ss", "add_stats_arguments", "run_stats"]
