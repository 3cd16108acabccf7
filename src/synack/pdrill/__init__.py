"""packetdrill for synack: read scripts (``parser``), run them against the stack on a virtual
clock (``interp``), with Linux and FreeBSD profiles (``profiles``), emulated sysctls and sockstat
(``sysctl``) and socket system calls (``syscalls``); ``synack pdrill`` is ``cli``."""

from __future__ import annotations

__all__ = ["run_file", "run_script", "Outcome", "ScriptError", "ScriptFailure", "parse_script", "parse_file"]


def __getattr__(name: str):
    # imported on first use, so ``synack.pdrill.parser`` stays light for tools that only parse
    if name in ("run_file", "run_script"):
        from synack.pdrill import interp
        return getattr(interp, name)
    if name in ("Outcome", "ScriptFailure"):
        from synack.pdrill import outcome
        return getattr(outcome, name)
    if name == "ScriptError":
        from synack.pdrill.errors import ScriptError
        return ScriptError
    if name in ("parse_script", "parse_file"):
        from synack.pdrill import parser
        return getattr(parser, name)
    raise AttributeError(name)
