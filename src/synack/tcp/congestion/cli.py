"""``--cc NAME``: the one argument every command that makes connections takes (serve, demo, soak)."""

from __future__ import annotations

import argparse

from synack.tcp import congestion


def add_cc_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    names = congestion.available()
    p.add_argument("--cc", choices=names, default=None, metavar="NAME",
                   help=f"congestion control of synack's connections: {', '.join(names)} "
                        "(default: cubic, or the --profile's)")


__all__ = ["add_cc_argument"]
