"""Recursive-descent parser for packetdrill scripts (Google's dialect and the nplab/FreeBSD fork).

    script  := (option | `init command`)* event*
    event   := time body
    time    := NUM | '+' NUM | '*' | ['+'] NUM '~' ['+'] NUM | ['+'] NUM '...' NUM  (syscalls)
    body    := syscall | packet | icmp | `shell` | %{ code }%
    syscall := WORD '(' [expr (',' expr)*] ')' '=' expr [ERRNO] ['(' note ')']
    packet  := ('<'|'>') [ipinfo] FLAGS seq ('ack' N | 'win' N | 'urg' N | '<' options '>')*
    seq     := N ':' N '(' N ')' ['!'] | '...' '(' N ')'
    icmp    := ('<'|'>') [ipinfo] ['[' seq ']'] 'icmp' KIND [CODE] ['mtu' N] ['[' seq | '...' ']']
    expr    := term ('|' term)*
    term    := '...' | ['-'] N | WORD ['(' args ')'] | STRING | '[' exprs ']' | '{' fields '}'
    field   := WORD '=' expr | WORD '(' expr ')' '=' expr | expr

Line ends mean nothing (as in packetdrill): an event may span lines, and the next one starts
where a time does. Whatever the text, the parser returns a ``Script`` or raises ``ScriptError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from synack.pdrill import ast as A
from synack.pdrill.errors import ScriptError
from synack.pdrill.lexer import CODE, ELLIPSIS, EOF, NUM, OPTION, PUNCT, SHELL, STRING, WORD
from synack.pdrill.lexer import Lexer, Token

__all__ = ["parse_script", "parse_file", "ScriptError", "DEFAULT_DEFINES"]

# nplab: STANDARD marks the RFC behaviour; FreeBSD and Linux (OS-specific blocks) stay undefined
DEFAULT_DEFINES = frozenset({"STANDARD"})

_U32 = 2**32
_MAX_DEPTH = 50
_FLAGS_RAW = re.compile(r"[A-Za-z.]+")
_FLAG_LETTERS = "SFRPUEW."
_OPTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_ERRNO = re.compile(r"E[A-Z0-9_]+\Z")
_ECN = ("noecn", "ect0", "ect1", "ect01", "ce")
_MPTCP = {"mp_capable", "mp_join", "dss", "add_address", "add_addr", "remove_address", "mp_prio",
          "mp_fail", "mp_fastclose", "mp_tcprst", "mptcp"}
_OPTION_HELP = "mss, nop, eol, wscale, sackOK, sack, TS or <...>"


def parse_script(text: str, path: str = "<string>", defines: Iterable[str] = DEFAULT_DEFINES,
                 options_override: dict[str, str] | None = None) -> A.Script:
    """Parse packetdrill script ``text``; ``path`` is for messages only.

    ``defines`` are the names ``#ifdef`` tests (default ``{"STANDARD"}``). ``options_override``
    (command-line options) replaces the script's own ``--name=value`` lines of the same name.
    Raises ``ScriptError`` (with line and column) and nothing else.
    """
    if isinstance(defines, str):
        defines = (defines,)
    if text.startswith("\ufeff"):
        text = text[1:]
    lexer = Lexer(text, path, frozenset(defines))
    options, init, events = _Parser(lexer).script()
    if options_override:
        options.update({str(k): str(v) for k, v in options_override.items()})
    return A.Script(options=options, events=tuple(events), path=path, init_command=init)


def parse_file(path: str, defines: Iterable[str] = DEFAULT_DEFINES,
               options_override: dict[str, str] | None = None) -> A.Script:
    """Read and parse the script at ``path`` (UTF-8); unreadable files are a ``ScriptError`` too."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ScriptError(path, 0, f"cannot read script: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ScriptError(path, line, f"not UTF-8 text (byte 0x{data[e.start]:02x})") from None
    return parse_script(text, path, defines, options_override)


class _Parser:
    def __init__(self, lexer: Lexer) -> None:
        self.lx = lexer
        self.depth = 0

    # --- script and events --------------------------------------------------------------------

    def script(self) -> tuple[dict[str, str], A.Shell | None, list[A.Event]]:
        lx = self.lx
        options: dict[str, str] = {}
        init: A.Shell | None = None
        events: list[A.Event] = []
        while (tok := lx.peek()).kind != EOF:
            if tok.kind == OPTION:
                if events:
                    raise lx.error(tok, "option lines must come before the first event")
                self._options(lx.next(), options)
            elif tok.kind == SHELL and not events:
                if init is not None:
                    raise lx.error(tok, "a second untimed shell command: give it a time, "
                                        "such as 0 `...`")
                init = A.Shell(lx.next().text)
            else:
                events.append(self.event())
        lx.finish()
        return options, init, events

    def _options(self, tok: Token, options: dict[str, str]) -> None:
        """``--name=value``, ``--name value`` or ``--flag``, possibly several on the line."""
        words = tok.text.split()
        i = 0
        while i < len(words):
            word = words[i]
            if not word.startswith("--"):
                raise self.lx.error(tok, f"expected an option --name=value, found '{word}'")
            name, eq, value = word[2:].partition("=")
            i += 1
            if not eq and i < len(words) and not words[i].startswith("--"):
                value = words[i]
                i += 1
            if not _OPTION_NAME.match(name):
                raise self.lx.error(tok, f"bad option name '{word}'")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            options[name] = value

    def event(self) -> A.Event:
        lx = self.lx
        first = lx.peek()
        time = self.time()
        tok = lx.peek()
        if tok.kind == PUNCT and tok.text in "<>":
            body: A.Body = self.packet()
        elif tok.kind == WORD:
            body = self.syscall()
        elif tok.kind == SHELL:
            body = A.Shell(lx.next().text)
        elif tok.kind == CODE:
            body = A.Code(lx.next().text)
        else:
            raise lx.error(tok, "expected a system call, a packet ('<' or '>'), a `shell command` "
                                f"or a %{{ }}% block after the time, found {tok.describe()}")
        if time.kind is A.TimeKind.BLOCKING and not isinstance(body, A.Syscall):
            raise lx.error(first, "a blocking time (start...end) is only allowed on a system call")
        return A.Event(first.line, time, body)

    def time(self) -> A.Time:
        lx = self.lx
        tok = lx.peek()
        if lx.accept(PUNCT, "*"):
            return A.Time(A.TimeKind.ANY)
        if tok.kind not in (NUM, PUNCT) or (tok.kind == PUNCT and tok.text != "+"):
            raise lx.error(tok, f"expected an event time (such as 0.1, +0.1 or *), "
                                f"found {tok.describe()}")
        relative = lx.accept(PUNCT, "+") is not None
        start = self._seconds()
        if lx.at(PUNCT, "~"):
            kind = A.TimeKind.RANGE
        elif lx.at(ELLIPSIS):
            kind = A.TimeKind.BLOCKING
        else:
            return A.Time(A.TimeKind.AT, start, None, relative)
        sep = lx.next()
        plus = lx.accept(PUNCT, "+")
        if plus and not relative:
            raise lx.error(plus, "the end of a time range is relative ('+') but its start is not")
        end = self._seconds()
        if end < start:
            raise lx.error(sep, f"time range ends ({end:g}) before it starts ({start:g})")
        return A.Time(kind, start, end, relative)

    def _seconds(self) -> float:
        tok = self.lx.expect(NUM, what="a time in seconds")
        if tok.text[:2].lower() == "0x":
            raise self.lx.error(tok, "a time is a decimal number of seconds")
        return float(tok.text)

    # --- system calls and expressions ---------------------------------------------------------

    def syscall(self) -> A.Syscall:
        lx = self.lx
        name = lx.next()
        if not lx.at(PUNCT, "("):
            raise lx.error(lx.peek(), f"expected '(' after system call name '{name.text}', "
                                      f"found {lx.peek().describe()}")
        args = self._args()
        if not lx.at(PUNCT, "="):
            raise lx.error(lx.peek(), f"expected '= result' after {name.text}(...), "
                                      f"found {lx.peek().describe()}")
        lx.next()
        result = self.expr(allow_call=False)
        errno = lx.next().text if lx.at(WORD) and _ERRNO.match(lx.peek().text) else None
        return A.Syscall(name.text, args, result, errno, lx.note())

    def _args(self, close: str = ")") -> tuple[A.Expr, ...]:
        """``( expr, ... )`` or ``[ expr, ... ]``: the opener is the next token."""
        lx = self.lx
        lx.next()
        items: list[A.Expr] = []
        if lx.accept(PUNCT, close):
            return ()
        while True:
            items.append(self.expr())
            if lx.accept(PUNCT, close):
                return tuple(items)
            tok = lx.peek()
            if not lx.accept(PUNCT, ","):
                raise lx.error(tok, f"expected ',' or '{close}', found {tok.describe()}")

    def expr(self, allow_call: bool = True) -> A.Expr:
        return self._or_rest(self._term(allow_call))

    def _or_rest(self, first: A.Expr) -> A.Expr:
        terms = [first]
        while self.lx.accept(PUNCT, "|"):
            terms.append(self._term(True))
        return terms[0] if len(terms) == 1 else A.BitOr(tuple(terms))

    def _term(self, allow_call: bool) -> A.Expr:
        lx = self.lx
        tok = lx.peek()
        if tok.kind == ELLIPSIS:
            lx.next()
            return A.Wildcard()
        if tok.kind == NUM:
            return A.Int(self._int(lx.next()))
        if tok.kind == PUNCT and tok.text == "-":
            lx.next()
            return A.Int(-self._int(lx.expect(NUM, what="a number after '-'")))
        if tok.kind == STRING:
            return A.String(lx.next().text)
        if tok.kind == WORD:
            lx.next()
            if allow_call and lx.at(PUNCT, "("):
                return A.Call(tok.text, self._nested(self._args, ")"))
            return A.Symbol(tok.text)
        if tok.kind == PUNCT and tok.text == "[":
            return A.List(self._nested(self._args, "]"))
        if tok.kind == PUNCT and tok.text == "{":
            return A.Struct(self._nested(self._fields))
        raise lx.error(tok, f"expected a value, found {tok.describe()}")

    def _nested(self, fn, *args):
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.lx.error(self.lx.peek(), "values nested too deeply")
        try:
            return fn(*args)
        finally:
            self.depth -= 1

    def _fields(self) -> tuple[A.Field, ...]:
        lx = self.lx
        lx.next()
        fields: list[A.Field] = []
        if lx.accept(PUNCT, "}"):
            return ()
        while True:
            fields.append(self._field())
            if lx.accept(PUNCT, "}"):
                return tuple(fields)
            tok = lx.peek()
            if not lx.accept(PUNCT, ","):
                raise lx.error(tok, f"expected ',' or '}}', found {tok.describe()}")

    def _field(self) -> A.Field:
        """``name=value``, ``name(index)=value`` or a bare value (iovec ``{..., 10}``)."""
        lx = self.lx
        if not lx.at(WORD):
            return A.Field(None, self.expr())
        name = lx.next()
        if lx.accept(PUNCT, "="):
            return A.Field(name.text, self.expr())
        if lx.at(PUNCT, "("):
            args = self._nested(self._args, ")")
            if lx.at(PUNCT, "="):
                if len(args) != 1:
                    raise lx.error(lx.peek(), f"'{name.text}(...)=' takes one value in parentheses")
                lx.next()
                return A.Field(name.text, self.expr(), index=args[0])
            return A.Field(None, self._or_rest(A.Call(name.text, args)))
        return A.Field(None, self._or_rest(A.Symbol(name.text)))

    def _int(self, tok: Token) -> int:
        text = tok.text
        if text[:2].lower() == "0x":
            return int(text, 16)
        if "." in text:
            raise self.lx.error(tok, f"expected an integer, found '{text}'")
        return int(text, 10)

    def _uint(self, what: str, limit: int) -> int:
        tok = self.lx.expect(NUM, what=f"a number ({what})")
        value = self._int(tok)
        if value >= limit:
            raise self.lx.error(tok, f"{what} {value} is out of range (at most {limit - 1})")
        return value

    # --- packets ------------------------------------------------------------------------------

    def packet(self) -> A.Packet | A.IcmpPacket:
        lx = self.lx
        direction = lx.next().text
        ip: dict[str, int | str] = {}
        quoted = None
        while lx.at(PUNCT, "(") or (lx.at(PUNCT, "[") and quoted is None):
            bracket = lx.next()
            if bracket.text == "[" and (lx.at(NUM) or lx.at(ELLIPSIS)):
                quoted = self._quote(bracket)
            else:
                self._ipinfo("]" if bracket.text == "[" else ")", ip)
        ipinfo = A.IpInfo(**ip) if ip else None   # type: ignore[arg-type]
        tok = lx.peek()
        if tok.kind == WORD and tok.text == "icmp":
            lx.next()
            return self._icmp(direction, ipinfo, quoted)
        if quoted is not None:
            raise lx.error(tok, f"expected 'icmp' after the quoted segment, found {tok.describe()}")
        if tok.kind == WORD and tok.text.lower() in ("udp", "sctp", "gre", "mpls", "icmpv6"):
            raise lx.error(tok, f"{tok.text} packets are not supported (TCP and ICMP only)")
        flags = self._flags()
        seq_start, seq_end, seq_len, absolute, seq_any = self._seq()
        fields: dict[str, int] = {}
        options: tuple[A.PktOption, ...] | A.AnyOptions | None = None
        while True:
            tok = lx.peek()
            if tok.kind == WORD and tok.text in ("ack", "win", "urg"):
                lx.next()
                if tok.text in fields:
                    raise lx.error(tok, f"'{tok.text}' given twice")
                limit = _U32 if tok.text == "ack" else 2**16
                what = {"ack": "ack number", "win": "window", "urg": "urgent pointer"}[tok.text]
                fields[tok.text] = self._uint(what, limit)
            elif tok.kind == PUNCT and tok.text == "<":
                if options is not None:
                    raise lx.error(tok, "TCP options given twice")
                options = self._tcp_options()
            else:
                break
        return A.Packet(direction, flags, seq_start, seq_end, seq_len, absolute, seq_any,
                        fields.get("ack"), fields.get("win"), fields.get("urg"), options, ipinfo)

    def _flags(self) -> str:
        lx = self.lx
        where = lx.peek()
        tok = lx.raw(_FLAGS_RAW)
        if tok is None or tok.text.startswith("..."):
            raise lx.error(where, f"expected TCP flags (letters of {_FLAG_LETTERS}), "
                                  f"found {where.describe()}")
        seen = set()
        for i, c in enumerate(tok.text):
            if c not in _FLAG_LETTERS:
                raise lx.error_at(tok.start + i, f"unknown TCP flag '{c}' in '{tok.text}' "
                                                 "(S F R P U E W and . for ACK)")
            if c in seen:
                raise lx.error_at(tok.start + i, f"TCP flag '{c}' repeated in '{tok.text}'")
            seen.add(c)
        return tok.text

    def _seq(self) -> tuple[int | None, int | None, int, bool, bool]:
        """``start:end(len)[!]`` or ``...(len)``: (start, end, len, absolute, any)."""
        lx = self.lx
        if lx.accept(ELLIPSIS):
            return None, None, self._paren_len(), False, True
        start_tok = lx.peek()
        start = self._uint("sequence number", _U32)
        lx.expect(PUNCT, ":", what="':' in start:end(len)")
        end = self._uint("sequence number", _U32)
        length = self._paren_len()
        if (end - start) % _U32 != length:
            raise lx.error(start_tok, f"segment length ({length}) does not match "
                                      f"end - start ({end} - {start})")
        absolute = lx.accept(PUNCT, "!") is not None
        return start, end, length, absolute, False

    def _paren_len(self) -> int:
        self.lx.expect(PUNCT, "(", what="'(' and the segment length")
        length = self._uint("segment length", 2**16)
        self.lx.expect(PUNCT, ")", what="')' after the segment length")
        return length

    def _quote(self, bracket: Token) -> tuple[int, int, int] | None:
        """After '[': ``start:end(len)]`` or ``...]``; None for the latter."""
        lx = self.lx
        if lx.accept(ELLIPSIS):
            quoted = None
        else:
            start, end, length, _, _ = self._seq()
            quoted = (start, end, length)
        lx.expect(PUNCT, "]", what="']' after the quoted segment")
        return quoted   # type: ignore[return-value]

    def _icmp(self, direction: str, ipinfo: A.IpInfo | None,
              quoted: tuple[int, int, int] | None) -> A.IcmpPacket:
        lx = self.lx
        kind = lx.expect(WORD, what="an ICMP type (unreachable, time_exceeded, ...)").text
        code = None
        if lx.at(WORD) and lx.peek().text != "mtu":
            code = lx.next().text
        mtu = None
        if lx.accept(WORD, "mtu"):
            mtu = self._uint("mtu", 2**16)
        if lx.at(PUNCT, "["):
            bracket = lx.next()
            if quoted is not None:
                raise lx.error(bracket, "the quoted segment is given twice")
            quoted = self._quote(bracket)
        return A.IcmpPacket(direction, kind, code, mtu, quoted, ipinfo)

    def _ipinfo(self, close: str, got: dict[str, int | str]) -> None:
        """After '(' or '[': ``tos 0x20``, ``ttl 4``, ``ect0``, ``ce, tos 0x3`` ... into ``got``."""
        lx = self.lx
        while True:
            tok = lx.expect(WORD, what="an IP field (tos, ttl, flowlabel) or ECN codepoint "
                                       "(noecn, ect0, ect1, ect01, ce)")
            name = tok.text.lower()
            if name in _ECN:
                key, value = "ecn", name
            elif name in ("tos", "ttl", "flowlabel", "flow_label"):
                key = "flowlabel" if name == "flow_label" else name
                value = self._uint(key, 2**20 if key == "flowlabel" else 256)
            else:
                raise lx.error(tok, f"unknown IP field '{tok.text}' (tos N, ttl N, flowlabel N, "
                                    "noecn, ect0, ect1, ect01, ce)")
            if key in got:
                raise lx.error(tok, f"IP field '{key}' given twice")
            got[key] = value
            if lx.accept(PUNCT, close):
                return
            lx.accept(PUNCT, ",")

    def _tcp_options(self) -> tuple[A.PktOption, ...] | A.AnyOptions:
        lx = self.lx
        lx.next()
        if lx.accept(ELLIPSIS):
            lx.expect(PUNCT, ">", what="'>' after '<...'")
            return A.ANY
        if lx.accept(PUNCT, ">"):
            return ()
        options: list[A.PktOption] = []
        while True:
            options.append(self._tcp_option())
            if lx.accept(PUNCT, ">"):
                return tuple(options)
            tok = lx.peek()
            if not lx.accept(PUNCT, ","):
                raise lx.error(tok, "expected ',' or '>' after a TCP option, "
                                    f"found {tok.describe()}")

    def _tcp_option(self) -> A.PktOption:
        lx = self.lx
        tok = lx.expect(WORD, what=f"a TCP option ({_OPTION_HELP})")
        name = tok.text
        if name == "nop":
            return A.Nop()
        if name == "eol":
            return A.Eol()
        if name == "sackOK":
            return A.SackOK()
        if name == "mss":
            return A.Mss(self._uint("mss", 2**16))
        if name == "wscale":
            return A.WScale(self._uint("wscale", 256))
        if name == "sack":
            blocks = []
            while lx.at(NUM):
                left = self._uint("SACK block edge", _U32)
                lx.expect(PUNCT, ":", what="':' in a SACK block left:right")
                blocks.append((left, self._uint("SACK block edge", _U32)))
            if not blocks:
                raise lx.error(lx.peek(), "expected SACK blocks (left:right ...) after 'sack'")
            return A.Sack(tuple(blocks))
        if name == "TS":
            lx.expect(WORD, "val", what="'val' in TS val N ecr N")
            val = self._uint("TS val", _U32)
            lx.expect(WORD, "ecr", what="'ecr' in TS val N ecr N")
            return A.Timestamp(val, self._uint("TS ecr", _U32))
        if name.lower() in _MPTCP:
            raise lx.error(tok, f"MPTCP option '{name}' is not supported (synack has no MPTCP)")
        if name.lower() in ("fo", "foexp", "exp", "md5", "tfo", "ao"):
            raise lx.error(tok, f"TCP option '{name}' is not supported ({_OPTION_HELP})")
        for known in ("nop", "eol", "sackOK", "mss", "wscale", "sack", "TS"):
            if name.lower() == known.lower():
                raise lx.error(tok, f"unknown TCP option '{name}' (did you mean '{known}'?)")
        raise lx.error(tok, f"unknown TCP option '{name}' ({_OPTION_HELP})")
