"""Differential tests: synack's socket and asyncio APIs against Linux's answers.

Each scenario in ``sockdiff_scenarios.py`` is client code written once for a socket module: it
connects to (or is connected to by) a kernel peer that does exactly what the scenario tells it
(send, FIN, RST, read, ...) and records what each call returned or raised. It runs twice in one
namespace made by ``kernel_peer``: with the stdlib ``socket``/``asyncio`` modules inside the
namespace (Linux's reference answers, over the namespace's loopback) and with ``synack.socket``
/ synack's asyncio streams over the TUN device. The two lists of outcomes must be equal.

Both runs happen once per module (a fixture, about 10-20 s); each test compares one scenario.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

import sockdiff_scenarios as sc
from synack.link.netns import kernel_peer
from synack.stack.host import Stack

SECRET = b"socket-differential"


def needs_root(fn):
    fn = pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                            reason="needs root (TUN device, network namespaces); runs in CI")(fn)
    return pytest.mark.root(fn)


def _synack_run(peer) -> dict[str, list[str]]:
    from synack import socket as ssock
    from synack.api.aio import AsyncStack
    proc = peer.popen([sys.executable, sc.__file__, "peer"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                      text=True)
    ctl = sc.Ctl(proc)
    astack = AsyncStack.start_thread(Stack(peer.stack_addresses, secret=SECRET), peer.link)

    def state(s) -> str:
        conn = s.connection if not s._closed else None
        return conn.state.name if conn is not None else "CLOSED"

    def inq(s) -> int:
        conn = s.connection
        return conn.readable if conn is not None else 0

    def tstate(writer) -> str:
        return writer.get_extra_info("synack_connection").state.name

    aio = (astack.open_connection, astack.start_server, tstate)

    def make_env(port: int) -> sc.Env:
        return sc.Env(ssock, lambda fam: ssock.socket(fam, ssock.SOCK_STREAM, stack=astack), peer.kernel_v4,
                      peer.kernel_v6, peer.stack_v4, ctl, port, state, inq, aio, peer.stack_v6)

    def run_aio(fn, env) -> None:
        astack.run(asyncio.wait_for(fn(env), 30))
    try:
        return sc.run_all(make_env, run_aio)
    finally:
        astack.close()
        proc.stdin.close()


@pytest.fixture(scope="module")
def outcomes():
    with kernel_peer() as peer:
        r = peer.run([sys.executable, sc.__file__, "linux", peer.kernel_v4, peer.kernel_v6], timeout=120)
        assert r.returncode == 0, r.stderr[-3000:]
        linux = json.loads(r.stdout)
        ours = _synack_run(peer)
    return linux, ours


# A difference that comes from the TCP core (src/synack/tcp), not from the API layer: pinned.
XFAIL: dict[str, str] = {}


def _params():
    for name in sc.ALL:
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[name])] if name in XFAIL else []
        yield pytest.param(name, marks=marks, id=name)


@needs_root
@pytest.mark.parametrize("name", list(_params()))
def test_same_as_linux(outcomes, name):
    linux, ours = outcomes
    assert ours[name] == linux[name]
