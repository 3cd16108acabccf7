"""``type=`` functions for the command-line tools' numeric arguments: a bad value becomes
argparse's one-line usage error naming the argument (exit status 2), never a traceback."""

from __future__ import annotations

import argparse
import math
from typing import Callable


def whole_number(low: int, high: int | None = None, *, what: str = "") -> Callable[[str], int]:
    """A ``type=`` for a whole number from ``low`` to ``high`` (no upper bound if None);
    ``what`` names the value in the range error (e.g. "an MTU")."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if n < low or (high is not None and n > high):
            span = f"at least {low}" if high is None else f"{low} to {high}"
            raise argparse.ArgumentTypeError(f"{what + ' ' if what else ''}must be {span}, got {n}")
        return n
    return parse


def positive_seconds(text: str) -> float:
    """A ``type=`` for a time in seconds: a finite number above 0."""
    try:
        t = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (t > 0 and math.isfinite(t)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return t


__all__ = ["whole_number", "positive_seconds"]
