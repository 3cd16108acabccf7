"""The ``synack`` command line. Each subcommand lives in its own module and is imported only
when it runs, so ``synack --help`` stays fast and a broken optional piece cannot break the rest."""

from __future__ import annotations

import argparse
import importlib
import sys

import synack

# name -> (module, one-line help). The module provides add_arguments(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synack",
        description="A user-space TCP/IP stack in pure Python: run TCP for real, see it on the wire, test other stacks.",
    )
    parser.add_argument("--version", action="version", version=f"synack {synack.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
