"""Running ``synack serve`` as a subprocess in the tests, and programs in its namespace.

Every wait is bounded; every process started here is stopped by its PID; the namespace a
serve created is removed by it, and by ``ServeProcess.close()`` if the serve died first.
"""

from __future__ import annotations

import itertools
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

from synack.link.netns import in_netns

SYNACK = [sys.executable, "-m", "synack"]
_count = itertools.count()


def unique_ns(tag: str) -> str:
    return f"snk-{tag}-{os.getpid()}-{next(_count)}"


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/var/run/netns/{name}")


def synack(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    """``python -m synack ARGS`` to completion (killed after ``timeout``)."""
    return subprocess.run([*SYNACK, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class ServeProcess:
    """``synack serve --netns NS ...`` with its stdout read by a thread into ``lines``."""

    def __init__(self, ns: str, *args: str, control: str | None = None, ready_timeout: float = 30.0,
                 use_control: bool = True) -> None:
        self.ns = ns
        self.control = control or f"/run/synack/{ns}.sock"
        argv = [*SYNACK, "serve", "--netns", ns, *(("--control", self.control) if use_control else ()), *args]
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr = ""
        self.owns_ns = not netns_exists(ns)          # the serve will create it
        try:
            self.ready = self.wait_for(r"synack serve: ready", ready_timeout)
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> str:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no line matching {pattern!r} in {timeout} s; rc={self.proc.poll()} "
                                         f"stdout={self.lines[-20:]} stderr={self._stderr_now()}")
                self._cond.wait(min(left, 0.2))

    def count(self, pattern: str) -> int:
        rx = re.compile(pattern)
        with self._cond:
            return sum(1 for line in self.lines if rx.search(line))

    def _stderr_now(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        try:
            return self.proc.stderr.read()[-3000:]
        except (OSError, ValueError):
            return ""

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """Send ``sig`` to the serve (by PID) and wait for it to exit; its exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"synack serve did not exit within {timeout} s of {signal.Signals(sig).name}")
        self._reader.join(5)
        self.stderr = self.proc.stderr.read() if self.proc.stderr else ""
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        if self.owns_ns and netns_exists(self.ns):   # the serve died before removing it
            subprocess.run(["ip", "netns", "delete", self.ns], capture_output=True, timeout=10)

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- programs inside the namespace

    def popen(self, argv, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(in_netns(self.ns, argv), **kw)

    def run(self, argv, timeout: float = 60.0, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(in_netns(self.ns, argv), timeout=timeout, **kw)

    def python(self, code: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        r = self.run([sys.executable, "-c", code, *map(str, args)], timeout=timeout)
        assert r.returncode == 0, f"namespace program failed (rc {r.returncode}): {r.stderr[-3000:]}"
        return r


def readline(p: subprocess.Popen, timeout: float) -> str:
    r, _, _ = select.select([p.stdout], [], [], timeout)
    if not r:
        raise AssertionError(f"no output from {p.args[-3:]} in {timeout} s")
    return p.stdout.readline()


def stop_pid(p: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 5.0) -> tuple[str, str]:
    """Stop a process we started: ``sig`` by PID, then SIGKILL; returns its (stdout, stderr)."""
    if p.poll() is None:
        p.send_signal(sig)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=5)
    return out or "", err or ""


def pids_mentioning(text: str) -> list[int]:
    """PIDs (other than ours) whose command line contains ``text``."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out
