"""What running a script yields: pass, fail (synack did something else than the script says) or
error (the script cannot be run), and the exception that carries a failure."""

from __future__ import annotations

from dataclasses import asdict, dataclass


class ScriptFailure(Exception):
    """The stack under test did not do what the script says, at ``line`` (1-based; 0 = no line).

    ``message`` shows expected against actual in packetdrill syntax. Distinct from
    ``ScriptError`` (a script that cannot be run): a failure is a finding about synack.
    """

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")

    def __reduce__(self):
        return (type(self), (self.line, self.message))


@dataclass(frozen=True, slots=True)
class Outcome:
    """One script's result, as ``synack pdrill --json`` prints it."""
    script: str
    result: str                 # "pass" | "fail" | "error"
    line: int = 0
    message: str = ""
    virtual_time: float = 0.0   # seconds of virtual time the script covered

    @property
    def passed(self) -> bool:
        return self.result == "pass"

    def to_json(self) -> dict:
        d = asdict(self)
        d["virtual_time"] = round(self.virtual_time, 6)
        return d
