"""``synack scenarios``: list the scenarios, or run them into a folder of pictures.

    synack scenarios list [-v]
    synack scenarios run NAME [NAME ...] [--out DIR]
    synack scenarios run --all [--out DIR]

Each run writes DIR/NAME/ (capture.pcap, events.jsonl, diagram.svg/.mmd/.txt, plots) and prints
one line per scenario; the exit status is 1 if any scenario's own checks failed, 2 for bad
arguments (an unknown name).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

DEFAULT_OUT = "synack-scenarios"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scenarios_command", metavar="list|run", parser_class=type(parser))
    ls = sub.add_parser("list", help="the scenarios and what each shows")
    ls.add_argument("-v", "--verbose", action="store_true", help="also print what each scenario teaches")
    run = sub.add_parser("run", help="run scenarios and draw their pictures")
    run.add_argument("names", nargs="*", metavar="NAME", help="scenario names (see `synack scenarios list`)")
    run.add_argument("--all", action="store_true", help="run every scenario")
    run.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                     help=f"where to write DIR/NAME/ (default: {DEFAULT_OUT})")


def run(args: argparse.Namespace) -> int:
    from synack.scenarios import registry
    cmd = getattr(args, "scenarios_command", None)
    scenarios = registry.all_scenarios()
    if cmd == "list":
        width = max(len(s.name) for s in scenarios)
        group = None
        for s in scenarios:
            if s.group != group:
                group = s.group
                print(f"{group}:")
            print(f"  {s.name:<{width}}  {s.title}")
            if args.verbose:
                print(textwrap.fill(s.teaching, 96, initial_indent=" " * (width + 4),
                                    subsequent_indent=" " * (width + 4)))
        return 0
    if cmd != "run":
        print("synack scenarios: say `list` or `run NAME | run --all` (see synack scenarios --help)",
              file=sys.stderr)
        return 2
    if args.all == bool(args.names):
        print("synack scenarios run: give scenario names or --all (not both)", file=sys.stderr)
        return 2
    by_name = {s.name: s for s in scenarios}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        print(f"synack scenarios run: no scenario {', '.join(map(repr, unknown))} (see synack scenarios list)",
              file=sys.stderr)
        return 2
    chosen = scenarios if args.all else [by_name[n] for n in args.names]
    out = Path(args.out)
    width = max(len(s.name) for s in chosen)
    failed = 0
    t0 = time.perf_counter()
    for sc in chosen:
        r = registry.run(sc, out)
        status = "ok  " if r.ok else "FAIL"
        detail = "; ".join(r.notes) if r.ok else r.message.splitlines()[0]
        print(f"{status}  {sc.name:<{width}}  {r.wall:5.2f} s  {detail}", flush=True)
        if not r.ok:
            failed += 1
            rest = r.message.splitlines()[1:]
            if rest:
                print(textwrap.indent("\n".join(rest), "      "), file=sys.stderr)
    print(f"{len(chosen) - failed} passed, {failed} failed in {time.perf_counter() - t0:.1f} s; "
          f"pictures in {out}/NAME/")
    return 1 if failed else 0


__all__ = ["add_arguments", "run"]
