"""``synack serve``: run synack as a real host on a TUN device, serving echo, discard and chargen.

::

    synack serve --netns lab --echo --discard --chargen        # private namespace, made and removed
    ip netns exec lab nc 192.0.2.2 7                            # the kernel in "lab" talks to synack
    synack ss ; synack stats                                    # from another terminal

``--netns NAME`` puts the kernel's side of the TUN link in namespace NAME (created if missing,
removed on exit if this process created it); ``--tun NAME`` names the device, which stays in the
current namespace unless ``--netns`` is given too. synack answers as ``--addr`` (default
192.0.2.2/24 and 2001:db8::2/64); the kernel's side gets ``--peer-addr`` (default: the first
host of each ``--addr`` prefix, 192.0.2.1 and 2001:db8::1), routing the prefix to synack.

One line is printed per connection as it opens and as it closes. SIGINT (Ctrl-C) or SIGTERM:
stop listening, close every connection with FIN (a few seconds' grace, then RST), flush the
pcap and event files, remove the control socket, the device and the namespace; a second signal
skips the grace. Exit status: 0 after a clean stop, 2 for bad arguments, 1 for anything else
(no privileges: the message says what is needed).

``--workers N`` (with ``--http`` only) serves HTTP from N processes, one per queue of a
multi-queue TUN device (``synack.http.workers``), to use N CPUs. Limits: no echo/discard/chargen,
``--pcap``, ``--events``, ``--loss`` or control socket (``synack ss``/``stats``) then, no line per
connection, and each worker's built-in pages (``/connections``, ``/events/N``) see only the
connections of that worker; the totals of all workers are printed at the stop.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import ipaddress
import os
import random
import signal
import sys
import time
from typing import NoReturn

from synack.argtypes import whole_number
from synack.pdrill.profiles import PROFILES
from synack.tcp.congestion.cli import add_cc_argument
from synack.control import ControlError, ControlServer, connection_rows, default_control_path, listener_rows
from synack.link.pcap import PcapWriter
from synack.services import DEFAULT_PORTS, Record, ServiceHost

DEFAULT_ADDRS = ("192.0.2.2/24", "2001:db8::2/64")
GRACE = 3.0                  # seconds for FINs to be acknowledged at shutdown
CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21
NO_PRIVILEGE = ("needs root or CAP_NET_ADMIN (and CAP_SYS_ADMIN for --netns) to create a TUN device "
                "and a network namespace; the simulated network works without: synack demo --sim")


class UsageError(ValueError):
    """Arguments that parse but make no sense together: exit status 2."""


# ------------------------------------------------------------------ arguments

def _port(s: str) -> int:
    try:
        n = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {s!r}") from None
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"port {n} out of range 1-65535")
    return n


_positive = whole_number(1)
# a link MTU: RFC 791, every IPv4 module must take 68-octet datagrams; 65535 is a TUN device's largest
_mtu = whole_number(68, 65535, what="an MTU")


def _probability(s: str) -> float:
    try:
        p = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a probability: {s!r}") from None
    if not 0.0 <= p < 1.0:
        raise argparse.ArgumentTypeError(f"loss must be in [0, 1), got {p}")
    return p


def _interface(s: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    try:
        i = ipaddress.ip_interface(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address/prefix: {s!r}") from None
    if "/" not in s:
        raise argparse.ArgumentTypeError(f"give the prefix length too, e.g. {s}/24")
    return i


def _address(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {s!r}") from None


def _ifname(s: str) -> str:
    if not s or len(s.encode()) > 15 or "/" in s or s.strip() != s:
        raise argparse.ArgumentTypeError(f"bad interface name {s!r} (1-15 bytes, no '/' or spaces)")
    return s


def _nsname(s: str) -> str:
    if not s or "/" in s or s in (".", "..") or len(s) > 200:
        raise argparse.ArgumentTypeError(f"bad namespace name {s!r}")
    return s


def _one_line_error(prog: str, message: str) -> NoReturn:
    """argparse's error(), as one line: ``synack serve: error: ...``, exit status 2."""
    print(f"{prog}: error: {message} (see {prog} --help)", file=sys.stderr)
    sys.exit(2)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.error = functools.partial(_one_line_error, p.prog)        # type: ignore[method-assign]
    where = p.add_argument_group("where")
    where.add_argument("--netns", type=_nsname, metavar="NAME",
                       help="namespace for the kernel's side (created if missing, removed on exit if created)")
    where.add_argument("--tun", type=_ifname, metavar="NAME",
                       help="TUN device name (in the current namespace unless --netns is given)")
    where.add_argument("--addr", type=_interface, action="append", metavar="ADDR/LEN",
                       help="synack's address, repeatable (default 192.0.2.2/24 and 2001:db8::2/64)")
    where.add_argument("--peer-addr", type=_address, action="append", metavar="ADDR",
                       help="the kernel's address on the link, repeatable (default: first host of each prefix)")
    where.add_argument("--mtu", type=_mtu, default=1500,
                       help="link MTU, 68-65535 (default 1500; 1280 at least with an IPv6 address)")
    where.add_argument("--no-offload", action="store_true", help="no virtio-net offloads (GSO/checksum) on the TUN")
    svc = p.add_argument_group("services (all three on their well-known ports if none is given)")
    for name, port in DEFAULT_PORTS.items():
        svc.add_argument(f"--{name}", type=_port, nargs="?", const=port, metavar="PORT",
                         help=f"serve {name} (default port {port})")
    tcp = p.add_argument_group("listeners")
    tcp.add_argument("--syncookies", choices=("off", "on", "always"), default="on",
                     help="SYN cookies: never, when the SYN queue is full (default), always")
    tcp.add_argument("--syn-backlog", type=_positive, default=256, metavar="N",
                     help="half-open connections per listener (default 256)")
    tcp.add_argument("--backlog", type=_positive, default=128, metavar="N",
                     help="accept queue per listener (default 128)")
    tcp.add_argument("--profile", choices=sorted(PROFILES), default=None,
                     help="TCP defaults of a kernel, as synack pdrill --profile uses them "
                          "(default: synack's own, RFC-first)")
    add_cc_argument(tcp, profile=True)
    out = p.add_argument_group("recording and faults")
    out.add_argument("--pcap", metavar="FILE", help="write every packet synack sends and receives (pcap)")
    out.add_argument("--events", metavar="FILE", help="write the event log (JSON lines)")
    out.add_argument("--loss", type=_probability, default=0.0, metavar="P",
                     help="drop packets with probability P, both ways, on synack's side")
    out.add_argument("--seed", type=int, default=None, help="seed of --loss (default: random, printed)")
    run = p.add_argument_group("running")
    run.add_argument("--control", metavar="PATH",
                     help="control socket for synack ss/stats (default /run/synack/NAME.sock)")
    run.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                     help="stop by itself after this long (default: until SIGINT/SIGTERM)")
    run.add_argument("-q", "--quiet", action="store_true", help="no line per connection")
    run.add_argument("--workers", type=_positive, default=1, metavar="N",
                     help="HTTP only: N processes, one per queue of a multi-queue TUN (default 1); "
                          "no other services, pcap, events, loss or control socket then")
    from synack.http.cli import attach_http
    attach_http(p)


def plan_addresses(addrs, peers) -> tuple[list, list]:
    """``(synack's interfaces, the kernel's interfaces)``; raises ``UsageError``."""
    addrs = list(addrs or [ipaddress.ip_interface(a) for a in DEFAULT_ADDRS])
    if peers:
        kernel = []
        for p in peers:
            net = next((a.network for a in addrs if a.version == p.version and p in a.network), None)
            if net is None:
                raise UsageError(f"--peer-addr {p} is in no --addr prefix ({', '.join(map(str, addrs))})")
            if any(p == a.ip for a in addrs):
                raise UsageError(f"--peer-addr {p} is synack's own address")
            kernel.append(ipaddress.ip_interface(f"{p}/{net.prefixlen}"))
    else:
        kernel = []
        for a in addrs:
            hosts = (h for h in (a.network.network_address + 1, a.network.network_address + 2)
                     if h in a.network and h != a.ip and h != a.network.broadcast_address)
            h = next(hosts, None)
            if h is None or a.network.prefixlen >= (31 if a.version == 4 else 127):
                raise UsageError(f"--addr {a}: the prefix leaves no room for the kernel; give a shorter prefix")
            kernel.append(ipaddress.ip_interface(f"{h}/{a.network.prefixlen}"))
    seen = set()
    for a in addrs:
        if a.ip in seen:
            raise UsageError(f"--addr {a.ip} given twice")
        seen.add(a.ip)
    for a in addrs:
        if not any(k.version == a.version and a.ip in k.network for k in kernel):
            raise UsageError(f"--addr {a}: no --peer-addr in its prefix, the kernel could not reach it")
    return addrs, kernel


def _services(args: argparse.Namespace) -> list[tuple[str, int]]:
    chosen = [(n, getattr(args, n)) for n in DEFAULT_PORTS if getattr(args, n) is not None]
    if not chosen:
        chosen = [] if getattr(args, "http", None) else list(DEFAULT_PORTS.items())
    ports = [p for _, p in chosen]
    dup = {p for p in ports if ports.count(p) > 1}
    if dup:
        raise UsageError(f"port {min(dup)} given to two services")
    return chosen


# ------------------------------------------------------------------ privileges

def _capabilities() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def missing_privilege(netns: bool) -> bool:
    caps = _capabilities()
    need = (1 << CAP_NET_ADMIN) | ((1 << CAP_SYS_ADMIN) if netns else 0)
    return caps & need != need


def _netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join("/var/run/netns", name))


# ------------------------------------------------------------------ running

class _Signals:
    """SIGINT/SIGTERM: count them and stop the runner's current ``run()``. Nothing else happens
    inside the handler (no locks: it may interrupt the loop thread anywhere)."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.count = 0
        self.last: str | None = None
        self._old: dict[int, object] = {}

    def __enter__(self) -> "_Signals":
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.count += 1
        self.last = signal.Signals(signum).name
        self.runner.stop()

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def _say(*parts: object) -> None:
    print(*parts, flush=True)


def _line(verb: str, r: Record, now: float | None = None) -> str:
    c = r.conn.id
    text = f"{verb:<5} {r.service:<7} {_ep(c.remote_addr, c.remote_port)} -> {_ep(c.local_addr, c.local_port)}"
    if verb == "close":
        dur = (r.ended if r.ended is not None else now or r.opened) - r.opened
        text += (f"  in {r.handler.bytes_in} B  out {r.handler.bytes_out} B  {dur:.3f} s"
                 f"  ({r.reason or 'closed'})")
    return text


def _ep(a: str, p: int) -> str:
    return f"[{a}]:{p}" if ":" in a else f"{a}:{p}"


def _rss_kb() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class _WallPcap(PcapWriter):
    """A pcap writer stamping records with wall-clock time (the loop's clock is monotonic)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.offset = time.time() - time.monotonic()

    def write(self, packet, t: float) -> None:
        super().write(packet, t + self.offset)


def _open_tun(args: argparse.Namespace, prog: str, ifname: str, kernel, undo: contextlib.ExitStack,
              *, queues: int):
    """The TUN device (in ``--netns``, made if missing), closed by ``undo``: (tun, made the
    namespace), or None after a one-line error."""
    from synack.link.netns import private_netns
    from synack.link.tun import TunLink, TunUnavailable

    made_ns = False
    try:
        if args.netns is not None and not _netns_exists(args.netns):
            undo.enter_context(private_netns(args.netns))
            made_ns = True
        tun = TunLink(ifname, offload=not args.no_offload, mtu=args.mtu, netns=args.netns,
                      addresses=[str(k) for k in kernel], queues=queues)
    except (TunUnavailable, PermissionError) as e:
        print(f"{prog}: {e.strerror or e}; {NO_PRIVILEGE}", file=sys.stderr)
        return None
    except OSError as e:
        print(f"{prog}: {e.strerror or e}", file=sys.stderr)
        return None
    undo.callback(tun.close)
    return tun, made_ns


def run(args: argparse.Namespace) -> int:
    prog = "synack serve"
    try:
        return _run(args, prog)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, prog: str) -> int:
    if args.netns is None and args.tun is None:
        raise UsageError("give --netns NAME (a private namespace for the kernel's side; safest) or --tun NAME")
    addrs, kernel = plan_addresses(args.addr, args.peer_addr)
    if args.mtu < 1280 and any(a.version == 6 for a in addrs):
        # RFC 8200 §5: every link carrying IPv6 has an MTU of 1280 or more (Linux turns IPv6 off
        # on a device below it, and adding the address fails)
        raise UsageError(f"--mtu {args.mtu}: IPv6 needs an MTU of 1280 or more; give IPv4 addresses "
                         "only (--addr) or a larger MTU")
    services = _services(args)
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be positive")
    if args.seed is not None and args.loss == 0:
        raise UsageError("--seed only matters with --loss")
    if getattr(args, "workers", 1) > 1:
        _check_workers(args)
    if missing_privilege(args.netns is not None):
        print(f"{prog}: {NO_PRIVILEGE}", file=sys.stderr)
        return 1
    if getattr(args, "workers", 1) > 1:
        return _run_workers(args, prog, addrs, kernel)

    from synack.link.faults import Faults
    from synack.link.pcap import PcapLink
    from synack.link.runner import StackRunner
    from synack.log.jsonl import JsonlLog
    from synack.stack.host import Stack

    name = args.netns or args.tun
    ifname = args.tun or f"snk{os.getpid()}"[:15]
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    with contextlib.ExitStack() as undo:
        # -- the link
        opened = _open_tun(args, prog, ifname, kernel, undo, queues=1)
        if opened is None:
            return 1
        tun, made_ns = opened
        link = tun
        faults = None
        log = None
        if args.events:
            log = JsonlLog(args.events, meta={"argv": sys.argv, "seed": seed if args.loss else None,
                                              "pid": os.getpid()})
            undo.callback(log.close)
        if args.loss:
            faults = link = Faults(link, random.Random(seed), loss=args.loss, log=log)
        if args.pcap:
            writer = _WallPcap(args.pcap)
            undo.callback(writer.close)
            link = PcapLink(link, writer, vantage="stack")
        # -- the stack and its services
        tcp, sconf = _configs(args)
        stack = Stack([str(a) for a in addrs], secret=os.urandom(32), log=log, config=tcp,
                      stack_config=sconf)
        say_open = None if args.quiet else (lambda r: _say(_line("open", r)))
        say_close = None if args.quiet else (lambda r: _say(_line("close", r)))
        http = None
        if args.http:
            from synack.http.cli import HttpService
            http = HttpService(args, stack)
        runner = http.make_runner(link) if http else StackRunner(stack, link)
        undo.callback(runner.close)
        host = ServiceHost(runner.hook_stack if http else stack, on_open=say_open, on_close=say_close)
        for svc, port in services:
            try:
                host.add(svc, port, backlog=args.backlog)
            except OSError as e:
                raise UsageError(f"--{svc} {port}: {e.strerror}") from None
        http_ready = []
        if http:
            try:
                http_ready = http.start(runner)
            except OSError as e:
                raise UsageError(f"--http: {e.strerror or e}") from None
            from synack.http.workers import tune_gc
            tune_gc()                      # as each --workers process does once it serves
        runner.add_hook(host)
        started = time.monotonic()

        def snapshot_ss() -> dict:
            return {"pid": os.getpid(), "name": name, "connections": connection_rows(stack, host.service_of),
                    "listeners": listener_rows(host.listeners)}

        def snapshot_stats() -> dict:
            counters = dict(stack.stats)
            counters.update({f"svc.{k}": v for k, v in host.counters.items()})
            for f in ("rx_packets", "rx_bytes", "rx_gso", "tx_packets", "tx_bytes", "tx_gso", "tx_dropped",
                      "rx_dropped"):
                counters[f"tun.{f}"] = getattr(tun.counters, f)
            if faults is not None:
                for d in ("tx", "rx"):
                    counters[f"faults.{d}_loss"] = getattr(faults, d).loss
            syn_q = sum(len(lst.syn_queue) for _, lst in host.listeners)
            acc_q = sum(len(lst.accept_queue) for _, lst in host.listeners)
            gauges = {"conns": len(stack.conns), "half_open": syn_q, "half_open_max": host.half_open_max,
                      "accept_queue": acc_q, "services_open": len(host.records()), "rss_kb": _rss_kb(),
                      "uptime_s": round(time.monotonic() - started, 3)}
            return {"pid": os.getpid(), "name": name, "counters": counters, "gauges": gauges}

        def info() -> dict:
            return {"pid": os.getpid(), "name": name, "netns": args.netns, "tun": tun.name,
                    "addresses": [str(a) for a in addrs], "peer": [str(k.ip) for k in kernel]}

        try:
            path = args.control or default_control_path(name)
            control = ControlServer(path, {"ss": snapshot_ss, "stats": snapshot_stats, "info": info},
                                    runner.submit)
            control.start()
        except (ControlError, OSError) as e:
            print(f"{prog}: control socket: {e}", file=sys.stderr)
            return 1
        undo.callback(control.close)

        where = f"tun {tun.name}" + (f" in netns {args.netns}" + (" (created)" if made_ns else "")
                                     if args.netns else "")
        extras = []
        if args.loss:
            extras.append(f"loss {args.loss} seed {seed}")
        if args.pcap:
            extras.append(f"pcap {args.pcap}")
        if args.events:
            extras.append(f"events {args.events}")
        _say(f"{prog}: ready: " + ", ".join([f"{s} on {p}" for s, p in services] + http_ready)
             + f" at {', '.join(str(a.ip) for a in addrs)}; kernel at {', '.join(str(k.ip) for k in kernel)}"
             + f" ({where}); syncookies {args.syncookies}; control {path}"
             + (f"; {'; '.join(extras)}" if extras else ""))

        with _Signals(runner) as sig:
            runner.run(timeout=args.duration)
            why = sig.last or ("duration over" if args.duration else "stopped")
            # graceful close: FIN everywhere, GRACE seconds for the ACKs, RST for the rest
            runner.submit(host.shutdown, runner.now())
            if http:
                http.stop(runner, GRACE if sig.count < 2 else 0.1)
            if sig.count < 2:
                runner.run(until=host.finished, timeout=GRACE)
            runner.submit(host.abort_all, runner.now())
            runner.run(timeout=0.05)              # send the last FINs/RSTs
    c = host.counters
    _say(f"{prog}: stopped ({why}): {c['conn_opened']} connections, "
         f"{stack.stats['tcp_in']} segments in, {stack.stats['tcp_out']} out; "
         f"removed {'netns ' + str(args.netns) + ', ' if made_ns else ''}tun {tun.name}, {path}")
    return 0


def _configs(args: argparse.Namespace):
    """The ``TcpConfig`` and ``StackConfig`` the options ask for."""
    from synack.stack.host import StackConfig
    from synack.tcp.config import TcpConfig

    # With offloads the TUN cuts super-segments at our MSS: let TCP send them (TSO).
    tcp, sconf = TcpConfig(), StackConfig()
    if args.profile:
        prof = PROFILES[args.profile]
        tcp, sconf = prof.tcp_config(), prof.stack_config()
    tcp.mtu, tcp.tso_max = args.mtu, 0 if args.no_offload else 65535 - 40 - 60
    tcp.mss = None                     # from this link's MTU, whatever the profile assumed
    if args.cc:
        tcp.cc = args.cc
    sconf.syncookies, sconf.syn_backlog = args.syncookies, args.syn_backlog
    return tcp, sconf


# ------------------------------------------------------------------ --workers N

def _check_workers(args: argparse.Namespace) -> None:
    if not args.http:
        raise UsageError("--workers serves HTTP only: give --http PORT[:DIR]")
    for flag, given in (("--echo/--discard/--chargen", any(getattr(args, n) is not None for n in DEFAULT_PORTS)),
                        ("--pcap", args.pcap), ("--events", args.events), ("--loss", args.loss),
                        ("--control", args.control)):
        if given:
            raise UsageError(f"{flag} does not work with --workers (each worker is its own stack)")


def _worker_app(directory: str | None, listing: bool, stack):
    """An ``--http`` application made in a worker, for that worker's ``stack``."""
    from synack.http.cli import app_for
    from synack.http.trace import TraceStore
    return app_for(directory, listing=listing, trace=TraceStore().attach(stack) if directory is None else None)


class _StopFlag:
    """What ``_Signals`` stops in ``_run_workers``: a flag the parent's wait loop reads."""
    stopped = False

    def stop(self) -> None:
        self.stopped = True


def _run_workers(args: argparse.Namespace, prog: str, addrs, kernel) -> int:
    from synack.http.server import ServerConfig
    from synack.http.workers import HttpWorkers, WorkerError

    ifname = args.tun or f"snk{os.getpid()}"[:15]
    with contextlib.ExitStack() as undo:
        opened = _open_tun(args, prog, ifname, kernel, undo, queues=args.workers)
        if opened is None:
            return 1
        tun, made_ns = opened
        tcp, sconf = _configs(args)
        listing = bool(args.http_listing)
        sites = [(port, functools.partial(_worker_app, directory, listing)) for port, directory in args.http]
        workers = HttpWorkers(None, tun.queues, [str(a) for a in addrs], sites=sites, secret=os.urandom(32),
                              config=ServerConfig(max_body=args.http_max_body, idle_timeout=args.http_idle_timeout),
                              tcp_config=tcp, stack_config=sconf, backlog=args.backlog, grace=GRACE)
        flag = _StopFlag()
        with _Signals(flag) as sig:
            try:
                workers.start()
            except WorkerError as e:
                print(f"{prog}: {e}", file=sys.stderr)
                return 1
            undo.callback(workers.stop)
            where = f"tun {tun.name} ({args.workers} queues)" + (
                f" in netns {args.netns}" + (" (created)" if made_ns else "") if args.netns else "")
            ready = [f"http on {p} ({'files from ' + d if d else 'built-in site'})" for p, d in args.http]
            _say(f"{prog}: ready: " + ", ".join(ready) + f" at {', '.join(str(a.ip) for a in addrs)}; "
                 f"kernel at {', '.join(str(k.ip) for k in kernel)} ({where}); "
                 f"{args.workers} workers, pids {' '.join(map(str, workers.pids))}")
            end = None if args.duration is None else time.monotonic() + args.duration
            why = "duration over"
            while end is None or time.monotonic() < end:
                if flag.stopped:
                    why = sig.last or "stopped"
                    break
                gone = workers.exited()
                if gone:
                    why = f"worker pid {gone[0]} exited"
                    break
                time.sleep(0.1)
            stats = workers.stop(timeout=GRACE + 2 if sig.count < 2 else 0.5)
    total = {k: sum(st[k] for st in stats) for k in ("connections", "requests", "errors")}
    _say(f"{prog}: stopped ({why}): {len(stats)} of {args.workers} workers stopped cleanly; "
         f"{total['connections']} connections, {total['requests']} requests, {total['errors']} errors; "
         f"removed {'netns ' + str(args.netns) + ', ' if made_ns else ''}tun {tun.name}")
    return 0


__all__ = ["add_arguments", "run", "plan_addresses", "NO_PRIVILEGE", "UsageError"]
