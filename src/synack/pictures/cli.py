"""``synack draw`` and ``synack plot``: pictures of real connections from a capture or a log.

``synack draw INPUT [--list] [--conn N|4-tuple] [-o FILE] [--format svg|mermaid|text] [--even]
[--full] [--absolute] [--color auto|always|never]``: the sequence diagram; without ``-o`` it is
drawn as text on stdout. ``synack plot INPUT --kind KIND -o FILE.png|.svg [--conn ...]``.

Each subcommand is a pair ``add_*_arguments(parser)`` / ``run_*(args) -> int``. Bad input or
arguments print one line, ``synack draw: error: ...``, and return 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from synack.pictures.model import PictureError, describe, load

_EXT_FORMAT = {".svg": "svg", ".mmd": "mermaid", ".mermaid": "mermaid", ".txt": "text"}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="+", metavar="INPUT",
                        help="a pcap/pcapng capture, or synack events.jsonl log(s) of one run")
    parser.add_argument("--conn", metavar="N|4-TUPLE",
                        help="which connection: its number in --list, or addr:port>addr:port (default: the first)")
    parser.add_argument("--absolute", action="store_true", help="absolute sequence numbers (default: relative)")
    parser.add_argument("--partial", action="store_true",
                        help="read a capture or log that ends inside a record (a capture killed "
                             "mid-write) up to its last whole one, with a warning, instead of failing")


def add_draw_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--list", action="store_true", help="list the connections and exit")
    parser.add_argument("-o", "--output", metavar="FILE", help="write FILE (.svg, .mmd or .txt) instead of stdout")
    parser.add_argument("--format", choices=("svg", "mermaid", "text"),
                        help="output format (default: from -o's extension; text on stdout)")
    parser.add_argument("--even", action="store_true", help="space arrows evenly instead of by real time")
    parser.add_argument("--full", action="store_true", help="draw every segment; do not fold the data phase")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="ANSI colours in text output (auto: when stdout is a terminal)")


def add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    from synack.pictures.plots import KINDS
    _common(parser)
    parser.add_argument("--kind", required=True, choices=KINDS, help="which plot")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE.png or FILE.svg")


def _fail(cmd: str, msg: str) -> int:
    print(f"synack {cmd}: error: {msg}", file=sys.stderr)
    return 2


def _pick(cap, spec: str | None, cmd: str):
    conn = cap.connection(spec)
    if spec is None and len(cap.connections) > 1:
        print(f"synack {cmd}: note: {len(cap.connections)} connections, drawing 1 (see --list, --conn)",
              file=sys.stderr)
    return conn


def _load(args: argparse.Namespace, cmd: str):
    try:
        return load(args.input, absolute=args.absolute, strict=not args.partial)
    except PictureError as e:
        if not args.partial and "ends inside" in str(e):
            raise PictureError(f"{e} (--partial reads it up to the cut)") from None
        raise


def run_draw(args: argparse.Namespace) -> int:
    from synack.pictures import seqdiag
    try:
        fmt = args.format
        if fmt is None and args.output:
            ext = os.path.splitext(args.output)[1].lower()
            if ext not in _EXT_FORMAT:
                return _fail("draw", f"{args.output}: cannot tell the format from {ext or 'no extension'!r}; "
                                     "use .svg, .mmd or .txt, or --format")
            fmt = _EXT_FORMAT[ext]
        fmt = fmt or "text"
        cap = _load(args, "draw")
        for w in cap.warnings:
            print(f"synack draw: warning: {w}", file=sys.stderr)
        if args.list:
            if not cap.connections:
                return _fail("draw", f"{cap.source}: no TCP connections found")
            origin = min(c.start for c in cap.connections)
            for c in cap.connections:
                print(describe(c, origin))
            return 0
        conn = _pick(cap, args.conn, "draw")
        if fmt == "svg":
            text = seqdiag.render_svg(conn, even=args.even, full=args.full)
        elif fmt == "mermaid":
            text = seqdiag.render_mermaid(conn, full=args.full)
        else:
            color = args.color == "always" or (args.color == "auto" and not args.output and sys.stdout.isatty()
                                               and not os.environ.get("NO_COLOR"))
            text = seqdiag.render_text(conn, full=args.full, color=color)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
        return 0
    except PictureError as e:
        return _fail("draw", str(e))
    except OSError as e:
        return _fail("draw", f"{e.filename or args.output}: {e.strerror or e}")


def run_plot(args: argparse.Namespace) -> int:
    try:
        from synack.pictures.plots import plot
        cap = _load(args, "plot")
        for w in cap.warnings:
            print(f"synack plot: warning: {w}", file=sys.stderr)
        plot(_pick(cap, args.conn, "plot"), args.kind, args.output)
        return 0
    except PictureError as e:
        return _fail("plot", str(e))
    except ImportError as e:
        return _fail("plot", f"matplotlib is needed for plots ({e})")


__all__ = ["add_draw_arguments", "run_draw", "add_plot_arguments", "run_plot"]
