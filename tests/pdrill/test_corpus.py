"""Every script of the corpus (tests/pdrill/scripts/**/*.pkt) must pass against synack.

Scripts are grouped by topic (open, reset, close, data, ack, nagle, window, keepalive,
reassembly, options, rto, rfc5961, icmp, sockets, ipv6), one behaviour each, with the RFC section
in the first comment. A script without a ``--profile`` line runs with the FreeBSD profile.

``XFAIL_TCP`` lists scripts where synack does not (yet) do what the script says, with the
reason: the script is right and stays as it is; the TCP code is to be fixed. ``XFAIL_KNOB`` lists
scripts stating a kernel's behaviour that no TcpConfig knob can express yet. The marks are
strict, so a fix makes the test XPASS-fail until the entry is removed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from synack.pdrill.interp import run_file

ROOT = Path(__file__).parent / "scripts"
SCRIPTS = sorted(ROOT.rglob("*.pkt"))

# Findings about the TCP code (the script follows the RFC or the profile table of
# packetdrill.md §8, which a TcpConfig value could express).
XFAIL_TCP: dict[str, str] = {}

# Profile gaps: the kernel does this, TcpConfig has no knob to say it (profiles.MISSING_KNOBS).
XFAIL_KNOB: dict[str, str] = {}

XFAIL = {**XFAIL_TCP, **XFAIL_KNOB}


def _params():
    out = []
    for path in SCRIPTS:
        rel = path.relative_to(ROOT).as_posix()
        marks = [pytest.mark.xfail(reason=XFAIL[rel], strict=True)] if rel in XFAIL else []
        out.append(pytest.param(path, id=rel, marks=marks))
    return out


def test_corpus_is_large_enough():
    assert len(SCRIPTS) >= 150
    assert all((ROOT / rel).exists() for rel in XFAIL), "an XFAIL entry names no script"


@pytest.mark.parametrize("path", _params())
def test_script(path: Path):
    o = run_file(str(path))
    rel = path.relative_to(ROOT).as_posix()
    if rel in XFAIL:
        # an expected failure must be a finding about synack, not a script that cannot run
        assert o.result != "error", f"{rel}:{o.line}: {o.message}"
    assert o.result == "pass", f"{rel}:{o.line}: {o.message}"
