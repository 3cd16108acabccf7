"""``synack serve --http PORT[:DIR]``: the command-line side of the HTTP server.

For ``synack serve`` (``synack/serve.py``)::

    attach_http(parser)                             # in add_arguments: --http PORT[:DIR] and options
    http = HttpService(args, stack) if args.http else None      # right after the Stack is made
    runner = http.make_runner(link) if http else StackRunner(stack, link)
    host = ServiceHost(runner.hook_stack if http else stack, ...)   # the classic services, if any
    ready += http.start(runner)                     # listen; returns "http on 80 (...)" strings
    ...
    http.stop(runner, GRACE)                        # at shutdown, with host.shutdown()

``--http 80`` serves the built-in site (``synack.http.site``: each visitor's own connection as
synack saw it, ``/connections``, ``/events/N``, ``/capture/N.pcap``); ``--http 8080:/srv/www``
serves files from a directory (``synack.http.static``). ``--http`` may be repeated.

``python -m synack.http`` runs the same server on the kernel's TCP (see ``__main__.py``).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from synack.argtypes import positive_seconds, whole_number
from synack.http.server import HttpServer, ServerConfig


def parse_http_spec(text: str) -> tuple[int, str | None]:
    """``"80"`` -> (80, None); ``"8080:/srv/www"`` -> (8080, "/srv/www")."""
    port_s, sep, directory = text.partition(":")
    try:
        port = int(port_s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--http wants PORT or PORT:DIR, not {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} out of range 1-65535")
    if sep:
        if not directory:
            raise argparse.ArgumentTypeError(f"--http {text}: the directory after ':' is empty")
        if not os.path.isdir(directory):
            raise argparse.ArgumentTypeError(f"--http {text}: {directory} is not a directory")
        return port, directory
    return port, None


def attach_http(p: argparse.ArgumentParser) -> None:
    """Add the HTTP options to a parser (``synack serve``)."""
    g = p.add_argument_group("HTTP (h11 on synack's TCP)")
    g.add_argument("--http", type=parse_http_spec, action="append", metavar="PORT[:DIR]",
                   help="serve HTTP on PORT: files from DIR, or without DIR the built-in site that shows "
                        "each visitor its own connection (repeatable)")
    g.add_argument("--http-listing", action="store_true", help="list directories that have no index.html")
    g.add_argument("--http-max-body", type=whole_number(0), default=1 << 20, metavar="BYTES",
                   help="largest request body accepted (default 1 MiB; larger: 413)")
    g.add_argument("--http-idle-timeout", type=positive_seconds, default=15.0, metavar="SECONDS",
                   help="close a kept-alive connection idle this long (default 15)")


def app_for(directory: str | None, *, listing: bool = False, trace: Any = None):
    """The application for one ``--http`` spec."""
    if directory is None:
        from synack.http.site import Site
        return Site(trace)
    from synack.http.static import StaticFiles
    return StaticFiles(directory, listing=listing)


class HttpService:
    """The ``--http`` servers of one ``synack serve`` run (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, stack: Any) -> None:
        self.specs: list[tuple[int, str | None]] = list(args.http or [])
        self.stack = stack
        self.config = ServerConfig(max_body=getattr(args, "http_max_body", 1 << 20),
                                   idle_timeout=getattr(args, "http_idle_timeout", 15.0))
        self.listing = bool(getattr(args, "http_listing", False))
        self.trace = None
        if any(d is None for _, d in self.specs):
            from synack.http.trace import TraceStore
            self.trace = TraceStore().attach(stack)      # before any connection exists
        self.servers: list[HttpServer] = []

    def make_runner(self, link: Any):
        from synack.http.runner import AsyncRunner
        return AsyncRunner(self.stack, link)

    def start(self, runner: Any) -> list[str]:
        """Listen on every ``--http`` port; returns one description per port. Raises OSError
        (e.g. EADDRINUSE)."""
        out = []
        for port, directory in self.specs:
            server = HttpServer(app_for(directory, listing=self.listing, trace=self.trace), self.config)
            runner.run_coroutine(server.listen_synack(runner.astack, None, port), timeout=5)
            self.servers.append(server)
            out.append(f"http on {port} ({'files from ' + directory if directory else 'built-in site'})")
        return out

    def stop(self, runner: Any, grace: float) -> int:
        """Graceful shutdown of every server (runs the loop meanwhile); connections aborted."""
        aborted = 0
        for s in self.servers:
            aborted += runner.run_coroutine(s.shutdown(grace), timeout=grace + 2)
        return aborted

    def open_connections(self) -> int:
        return sum(len(s.conns) for s in self.servers)


__all__ = ["attach_http", "parse_http_spec", "app_for", "HttpService"]
