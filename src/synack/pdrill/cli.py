"""``synack pdrill``: run packetdrill scripts against synack.

    synack pdrill [--profile linux|freebsd] [--relaxed-options] [--tolerance-usecs N] [--json]
                  [-j N] [--pcap DIR] [--verbose] PATH...

PATHs are scripts or directories (searched recursively for ``*.pkt``). Each script prints PASS,
FAIL or ERROR with its first mismatch (``--json``: one object per line with script, result,
line, message); the last line is ``N passed, N failed`` (and ``, N errors``). The exit status is
0 only if every script passed; one bad script never stops the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from synack.argtypes import whole_number
from synack.pdrill.outcome import Outcome

__all__ = ["add_arguments", "run", "find_scripts"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="scripts, or directories of *.pkt")
    parser.add_argument("--profile", choices=("linux", "freebsd"), default=None,
                        help="what the scripts assume about the stack, for scripts without a "
                             "--profile line of their own (default: linux for scripts with an init "
                             "command (Google corpus), else freebsd)")
    parser.add_argument("--relaxed-options", action="store_true",
                        help="ignore TCP option padding and order (the set must still match)")
    parser.add_argument("--tolerance-usecs", type=int, default=None, metavar="N",
                        help="timing tolerance in µs (default: the script's, else 4000); 5%% of "
                             "the gap to the previous event is allowed when larger")
    parser.add_argument("--json", action="store_true", help="one JSON object per script per line")
    parser.add_argument("-j", "--jobs", type=whole_number(1), default=1, metavar="N",
                        help="run N scripts in parallel (processes)")
    parser.add_argument("--pcap", metavar="DIR", default=None,
                        help="write each script's packets (both directions) to DIR/<script>.pcap")
    parser.add_argument("--verbose", action="store_true",
                        help="print every event and every packet the stack sent, with virtual times")


def find_scripts(paths: list[str]) -> list[str]:
    """Files as given; directories searched recursively for ``*.pkt`` (sorted)."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(str(f) for f in sorted(path.rglob("*.pkt")) if f.is_file())
        else:
            out.append(str(path))
    return out


def _pcap_name(directory: str, script: str) -> str:
    stem = script.replace(os.sep, "_").replace("/", "_").lstrip("._")
    if stem.endswith(".pkt"):
        stem = stem[:-4]
    return os.path.join(directory, stem + ".pcap")


def _run_one(job: tuple[str, dict]) -> tuple[Outcome, list[str]]:
    """Worker: run one script; returns its outcome and (with --verbose) its trace."""
    path, opts = job
    from synack.pdrill.interp import run_file
    trace: list[str] = []
    kwargs = dict(opts)
    if kwargs.pop("verbose", False):
        kwargs["log"] = trace.append
    pcap_dir = kwargs.pop("pcap_dir", None)
    if pcap_dir is not None:
        kwargs["pcap"] = _pcap_name(pcap_dir, path)
    try:
        return run_file(path, **kwargs), trace
    except Exception as e:      # noqa: BLE001 - one bad script never stops the run
        return Outcome(path, "error", 0, f"{type(e).__name__}: {e}"), trace


def _format(o: Outcome) -> str:
    if o.result == "pass":
        return f"PASS  {o.script}"
    label = "FAIL " if o.result == "fail" else "ERROR"
    where = f"{o.script}:{o.line}" if o.line else o.script
    first, _, rest = o.message.partition("\n")
    text = f"{label} {where}: {first}"
    if rest:
        text += "\n" + "\n".join("      " + ln for ln in rest.splitlines())
    return text


def run(args: argparse.Namespace) -> int:
    scripts = find_scripts(args.paths)
    if not scripts:
        print("no scripts found", file=sys.stderr)
        return 2
    if args.pcap:
        os.makedirs(args.pcap, exist_ok=True)
    opts = {"profile": args.profile, "relaxed": args.relaxed_options,
            "tolerance_usecs": args.tolerance_usecs, "verbose": args.verbose, "pcap_dir": args.pcap}
    jobs = [(s, opts) for s in scripts]
    counts = {"pass": 0, "fail": 0, "error": 0}

    def report(outcome: Outcome, trace: list[str]) -> None:
        counts[outcome.result] = counts.get(outcome.result, 0) + 1
        if args.json:
            print(json.dumps({k: v for k, v in outcome.to_json().items() if k != "virtual_time"}))
        else:
            if trace:
                print(f"--- {outcome.script}")
                for ln in trace:
                    print(ln)
            print(_format(outcome))
        sys.stdout.flush()

    n = args.jobs
    if n == 1 or len(jobs) == 1:
        for job in jobs:
            report(*_run_one(job))
    else:
        import multiprocessing
        with multiprocessing.Pool(min(n, len(jobs))) as pool:
            for result in pool.imap(_run_one, jobs):
                report(*result)
    summary = f"{counts['pass']} passed, {counts['fail']} failed"
    if counts["error"]:
        summary += f", {counts['error']} errors"
    print(summary)
    return 0 if counts["fail"] == 0 and counts["error"] == 0 else 1
