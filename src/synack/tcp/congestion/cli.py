"""``--cc NAME``: the one argument every command that makes connections takes (serve, demo, soak)."""

from __future__ import annotations

import argparse

from synack.tcp import congestion


def add_cc_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup, *, profile: bool = False) -> None:
    """``profile``: the command also takes ``--profile``, whose kernel's algorithm is then the default."""
    names = congestion.available()
    default = "cubic, or the --profile's" if profile else "cubic"
    p.add_argument("--cc", choices=names, default=None, metavar="NAME",
                   help=f"congestion control of synack's connections: {', '.join(names)} (default: {default})")


__all__ = ["add_cc_argument"]
