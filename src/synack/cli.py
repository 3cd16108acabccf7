"""The ``synack`` command line. Each subcommand lives in its own module, which provides a
function adding its arguments and a function running it (returning the exit status)."""

from __future__ import annotations

import argparse
import importlib
import sys

import synack

# name -> (module, add-arguments function, run function, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str, str, str]] = {
    "demo": ("synack.demo", "add_arguments", "run",
             "fetch a page over synack and draw what happened on the wire (the main job)"),
    "draw": ("synack.pictures.cli", "add_draw_arguments", "run_draw",
             "sequence diagram of a connection from a pcap/pcapng or events.jsonl"),
    "plot": ("synack.pictures.cli", "add_plot_arguments", "run_plot",
             "time-sequence, throughput, cwnd, RTT or in-flight plot of a connection"),
    "scenarios": ("synack.scenarios.cli", "add_arguments", "run",
                  "TCP scenarios on the simulated network, checked and drawn (list | run NAME | run --all)"),
    "pdrill": ("synack.pdrill.cli", "add_arguments", "run",
               "run packetdrill scripts against synack on a virtual clock"),
    "serve": ("synack.serve", "add_arguments", "run",
              "run synack as a host on a TUN device: HTTP, echo, discard, chargen"),
    "ss": ("synack.control", "add_ss_arguments", "run_ss",
           "connection table of a running synack serve, like ss -tni"),
    "stats": ("synack.control", "add_stats_arguments", "run_stats",
              "counters of a running synack serve, like nstat"),
    "soak": ("synack.sim.transfer", "add_arguments", "run",
             "seeded two-host transfers under random faults on the simulated network"),
}


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr, exit status 2 (usage stays in --help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="synack",
        description="A user-space TCP/IP stack in pure Python: run TCP for real, see it on the wire, test other stacks.",
    )
    parser.add_argument("--version", action="version", version=f"synack {synack.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, add, run, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module, _run=run)
        getattr(importlib.import_module(module), add)(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    try:
        return int(getattr(importlib.import_module(args._module), args._run)(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
