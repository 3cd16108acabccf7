"""``python -m synack.http [--bind ADDR] [--port N] [DIR]``: the same HTTP server on the
kernel's TCP (plain asyncio), e.g. to compare it with synack (bench/http.py). Without DIR it
serves the built-in site, which then says that connection details are unavailable."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from synack.http.cli import app_for
from synack.http.server import HttpServer, ServerConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m synack.http", description=__doc__)
    p.add_argument("--bind", default="127.0.0.1", help="address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--listing", action="store_true", help="list directories without index.html")
    p.add_argument("dir", nargs="?", help="serve files from this directory (default: the built-in site)")
    args = p.parse_args(argv)

    async def serve() -> None:
        server = HttpServer(app_for(args.dir, listing=args.listing), ServerConfig())
        await server.listen_kernel(args.bind, args.port, backlog=1024)
        print(f"serving http://{args.bind}:{args.port}/ on the kernel's TCP", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(s, stop.set)
        await stop.wait()
        await server.shutdown(grace=2.0)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
