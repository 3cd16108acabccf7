"""Tokens of the packetdrill language, pulled one at a time by the parser.

Like packetdrill's own lexer this one ignores line ends: an event may span lines (a long
``sendmsg`` struct), and events are told apart by the grammar (each starts with a time). Comments
(``//``, ``/* */``) and the nplab preprocessor lines (``#ifdef NAME``, ``#ifndef``, ``#else``,
``#endif``, at the start of a line) are trivia, handled here; skipped ``#ifdef`` regions are not
tokenized at all (they hold other systems' syntax). A few parts of the language are not token
sequences (TCP flags ``S.``, the note after a syscall result); the parser reads those raw with
``raw()`` / ``note()``.

All failures are ``ScriptError`` with line and column.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from synack.pdrill.errors import ScriptError

# Token kinds
NUM, WORD, STRING, PUNCT, ELLIPSIS, SHELL, CODE, OPTION, EOF = (
    "number", "word", "string", "punctuation", "'...'", "shell command", "%{ }% block", "option",
    "end of script")

_NUM = re.compile(r"0[xX][0-9a-fA-F]+|\d+(?:\.(?!\.\.)\d*)?|\.\d+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPTION = re.compile(r"--(?:(?![ \t]//|[ \t]/\*)[^\n])*")   # up to the line end or a comment
_PUNCT = set("()[]{}<>,=|:~+-*!.")
_MAX_NUMBER_CHARS = 40       # far beyond any 32-bit value; keeps int() away from its digit limit
_DIRECTIVE = re.compile(r"#[ \t]*([A-Za-z_]*)[ \t]*([A-Za-z_0-9]*)(.*)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'",
            "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str        # the source text (for STRING/SHELL/CODE/OPTION: the content, decoded)
    line: int
    col: int
    start: int       # offsets into the source
    end: int
    space_before: bool

    def describe(self) -> str:
        if self.kind == EOF:
            return "end of script"
        if self.kind in (SHELL, CODE):
            return self.kind
        text = self.text if len(self.text) <= 20 else self.text[:20] + "..."
        return f"'{text}'" if self.kind in (PUNCT, ELLIPSIS) else f"{self.kind} '{text}'"


class Lexer:
    """Pull lexer over one script: ``peek()``, ``next()``, plus raw reads for the odd spots."""

    def __init__(self, text: str, path: str, defines: frozenset[str] | set[str]) -> None:
        self.text = text
        self.path = path
        self.defines = frozenset(defines)
        self.pos = 0
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._peeked: Token | None = None
        self._last_end = 0                          # end of the last token consumed
        self._ifs: list[tuple[int, bool]] = []     # open #ifdef: (line, already past its #else)

    # --- positions and errors ---------------------------------------------------------------

    def where(self, offset: int) -> tuple[int, int]:
        """(line, column), both 1-based, of a source offset."""
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def source_line(self, line: int) -> str:
        if not 1 <= line <= len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return (self.text[start:] if end < 0 else self.text[start:end]).rstrip("\r")

    def error_at(self, offset: int, message: str) -> ScriptError:
        line, col = self.where(offset)
        return ScriptError(self.path, line, message, col, self.source_line(line))

    def error(self, tok: Token, message: str) -> ScriptError:
        if tok.kind == EOF:     # point just after the last token, not at trailing blank lines
            return self.error_at(self._last_end, message)
        return ScriptError(self.path, tok.line, message, tok.col, self.source_line(tok.line))

    # --- the token interface ----------------------------------------------------------------

    def peek(self) -> Token:
        if self._peeked is None:
            space = self._skip_trivia()
            self._peeked = self._scan(space)
        return self._peeked

    def next(self) -> Token:
        tok = self.peek()
        self._peeked = None
        self.pos = self._last_end = tok.end
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        tok = self.peek()
        return tok.kind == kind and (text is None or tok.text == text)

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        return self.next() if self.at(kind, text) else None

    def expect(self, kind: str, text: str | None = None, what: str | None = None) -> Token:
        tok = self.peek()
        if tok.kind != kind or (text is not None and tok.text != text):
            want = what or (f"'{text}'" if text is not None else kind)
            raise self.error(tok, f"expected {want}, found {tok.describe()}")
        return self.next()

    def raw(self, pattern: re.Pattern[str]) -> Token | None:
        """Match ``pattern`` at the next non-trivia character; a WORD-kind token, or None."""
        space = self._unpeek()
        space = self._skip_trivia() or space
        m = pattern.match(self.text, self.pos)
        if not m or not m.group():
            return None
        line, col = self.where(self.pos)
        tok = Token(WORD, m.group(), line, col, self.pos, m.end(), space)
        self.pos = self._last_end = m.end()
        return tok

    def note(self) -> str | None:
        """The ``(text)`` comment after a syscall result, if it starts on the result's line."""
        tok = self.peek()
        if tok.kind != PUNCT or tok.text != "(" or "\n" in self.text[self._last_end:tok.start]:
            return None
        self._unpeek()
        start, depth, i = self.pos, 0, self.pos
        while i < len(self.text) and self.text[i] != "\n":
            if self.text[i] == "(":
                depth += 1
            elif self.text[i] == ")":
                depth -= 1
                if depth == 0:
                    self.pos = self._last_end = i + 1
                    return " ".join(self.text[start + 1:i].split())
            i += 1
        raise self.error_at(start, "unterminated '(' note: expected ')' on the same line")

    def finish(self) -> None:
        """At the end of the script: every ``#ifdef`` must have been closed."""
        if self._ifs:
            line = self._ifs[-1][0]
            raise ScriptError(self.path, line, "#ifdef without #endif", 1, self.source_line(line))

    def _unpeek(self) -> bool:
        """Forget the peeked token (its trivia stays consumed); whether space preceded it."""
        tok, self._peeked = self._peeked, None
        if tok is None:
            return False
        self.pos = tok.start
        return tok.space_before

    # --- trivia -----------------------------------------------------------------------------

    def _skip_trivia(self) -> bool:
        """Skip whitespace, comments and directive lines; True if anything was skipped."""
        text, n, start = self.text, len(self.text), self.pos
        while self.pos < n:
            c = text[self.pos]
            if c in " \t\r\n\f\v":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error_at(self.pos, "unterminated /* comment")
                self.pos = end + 2
            elif c == "#" and self._at_line_start(self.pos):
                self._directive()
            else:
                break
        return self.pos > start

    def _at_line_start(self, offset: int) -> bool:
        line_start = self.text.rfind("\n", 0, offset) + 1
        return not self.text[line_start:offset].strip()

    def _line_end(self, offset: int) -> int:
        end = self.text.find("\n", offset)
        return len(self.text) if end < 0 else end + 1

    def _directive(self) -> None:
        """Handle the ``#`` line at ``self.pos`` (nplab preprocessor) and move past it."""
        start = self.pos
        end = self._line_end(start)
        m = _DIRECTIVE.match(self.text, start, end)
        assert m is not None   # the pattern matches any '#' line
        name, arg, rest = m.group(1), m.group(2), m.group(3).strip()
        line = self.where(start)[0]
        if name not in ("ifdef", "ifndef", "else", "endif"):
            shown = f"#{name}" if name else "'#'"
            raise self.error_at(start, f"unknown preprocessor directive {shown} "
                                       "(#ifdef, #ifndef, #else and #endif are supported)")
        if rest and not rest.startswith(("//", "/*")) and name not in ("else", "endif"):
            raise self.error_at(m.start(3), f"unexpected text after #{name} {arg}".rstrip())
        self.pos = end
        if name in ("ifdef", "ifndef"):
            if not arg:
                raise self.error_at(start, f"#{name} needs a name")
            if (arg in self.defines) == (name == "ifdef"):
                self._ifs.append((line, False))
            elif self._skip_region(start, stop_at_else=True):
                self._ifs.append((line, True))
        else:      # #else, #endif: text after them is a label, as C compilers allow
            if not self._ifs:
                raise self.error_at(start, f"#{name} without #ifdef")
            if name == "endif":
                self._ifs.pop()
            elif self._ifs[-1][1]:
                raise self.error_at(start, "second #else for one #ifdef")
            else:
                self._skip_region(start, stop_at_else=False)
                self._ifs.pop()

    def _skip_region(self, opened_at: int, stop_at_else: bool) -> bool:
        """Skip whole lines up to the matching #endif (or #else); True if stopped at #else."""
        depth = 0
        while self.pos < len(self.text):
            end = self._line_end(self.pos)
            m = _DIRECTIVE.match(self.text[self.pos:end].lstrip())
            self.pos = end
            if not m:
                continue
            name = m.group(1)
            if name in ("ifdef", "ifndef"):
                depth += 1
            elif name == "endif":
                if depth == 0:
                    return False
                depth -= 1
            elif name == "else" and depth == 0 and stop_at_else:
                return True
        what = "#ifdef" if stop_at_else else "#else"
        raise self.error_at(opened_at, f"{what} without #endif")

    # --- tokens -----------------------------------------------------------------------------

    def _scan(self, space: bool) -> Token:
        text, pos = self.text, self.pos
        kind, value, end = self._scan_at(text, pos)
        line, col = self.where(pos)
        return Token(kind, value, line, col, pos, end, space)

    def _scan_at(self, text: str, pos: int) -> tuple[str, str, int]:
        """(kind, value, end) of the token at ``pos``."""
        if pos >= len(text):
            return EOF, "", pos
        c = text[pos]
        m = _WORD.match(text, pos)
        if m:
            return WORD, m.group(), m.end()
        if text.startswith("...", pos):
            return ELLIPSIS, "...", pos + 3
        m = _NUM.match(text, pos)
        if m:
            if len(m.group()) > _MAX_NUMBER_CHARS:
                raise self.error_at(pos, "number too long")
            return NUM, m.group(), m.end()
        if text.startswith("--", pos):
            m = _OPTION.match(text, pos)
            assert m is not None
            return OPTION, m.group().rstrip(), m.end()
        if text.startswith("%{", pos):
            end = text.find("}%", pos + 2)
            if end < 0:
                raise self.error_at(pos, "unterminated %{ block: expected }%")
            return CODE, text[pos + 2:end], end + 2
        if c == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                raise self.error_at(pos, "unterminated shell command: expected a closing backquote")
            return SHELL, text[pos + 1:end], end + 1
        if c == '"':
            value, end = self._string(pos)
            return STRING, value, end
        if c in _PUNCT:
            return PUNCT, c, pos + 1
        shown = repr(c) if c.isprintable() else f"U+{ord(c):04X}"
        raise self.error_at(pos, f"unexpected character {shown}")

    def _string(self, pos: int) -> tuple[str, int]:
        """A C-style string literal starting at the quote at ``pos``: (decoded value, end)."""
        text, i, out = self.text, pos + 1, []
        while i < len(text):
            c = text[i]
            if c == '"':
                return "".join(out), i + 1
            if c == "\n":
                break
            if c == "\\" and i + 1 < len(text):
                e = text[i + 1]
                hexm = re.match(r"x([0-9a-fA-F]{1,2})", text[i + 1:i + 4])
                if hexm:
                    out.append(chr(int(hexm.group(1), 16)))
                    i += 1 + hexm.end()
                    continue
                out.append(_ESCAPES.get(e, e))
                i += 2
                continue
            out.append(c)
            i += 1
        raise self.error_at(pos, "unterminated string: expected '\"' on the same line")
