"""The one error type of the packetdrill front end: a script that cannot be read or run."""

from __future__ import annotations


class ScriptError(ValueError):
    """Something is wrong with a packetdrill script at ``path``, ``line`` (1-based; 0: whole file).

    The parser raises this and nothing else, whatever text it is given; the interpreter raises it
    for scripts that parse but cannot run (an unsupported system call, an unknown sysctl).
    ``column`` (1-based) and ``source_line`` are filled in when known, and ``str()`` then shows the
    line with a caret under the column, compiler style.
    """

    def __init__(self, path: str, line: int, message: str, column: int | None = None,
                 source_line: str | None = None) -> None:
        self.path = path
        self.line = line
        self.message = message
        self.column = column
        self.source_line = source_line
        super().__init__(self._format())

    def _format(self) -> str:
        where = f"{self.path}:{self.line}"
        if self.column is not None:
            where += f":{self.column}"
        text = f"{where}: {self.message}"
        if self.source_line is not None and self.source_line.strip():
            src = self.source_line.rstrip("\n")
            text += f"\n    {src}"
            if self.column is not None:
                # keep tabs so the caret lines up with the column however tabs are shown
                pad = "".join(c if c == "\t" else " " for c in src[: self.column - 1])
                text += f"\n    {pad}^"
        return text

    def __reduce__(self):
        return (type(self), (self.path, self.line, self.message, self.column, self.source_line))
