"""The scenario table and the runner that turns one scenario into a folder of pictures.

A scenario is a function ``fn(new_lab)``: it builds its bench with ``new_lab(**Lab options)``,
scripts the applications, runs the simulated network and checks its own outcome with
``check()``. The runner then draws what the event log recorded:

    DIR/NAME/capture.pcap    the client's view (open it in Wireshark)
    DIR/NAME/events.jsonl    both stacks' event log (docs/events.md)
    DIR/NAME/diagram.svg     the sequence diagram (also .mmd for Mermaid, .txt for a terminal)
    DIR/NAME/KIND.png        the scenario's plots (time-sequence, cwnd, rtt, ...) and figures

The table is built here from the group modules, imported explicitly in the order the gallery
shows them (no registration by import side effect).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from synack.scenarios.lab import Lab, ScenarioFailed
from synack.sim.clock import SimError

DIAGRAM = "diagram"           # file stem of the sequence diagram


@dataclass(frozen=True)
class Scenario:
    name: str                  # the CLI name and folder: "lost-syn"
    title: str                 # the gallery heading: "Lost SYN and its retransmission"
    group: str                 # "opening", "closing", "data", "loss", "isn", "syn-flood"
    teaching: str              # one or two sentences: what the pictures show
    fn: Callable[[Callable[..., Lab]], None]
    plots: tuple[str, ...] = ()   # synack.pictures.plots kinds drawn of the diagram's connection
    seed: int = 1
    full: bool = False            # draw every segment (no folded data phase)
    source: str = "events"        # what the pictures are drawn from: "events" or "pcap" (the capture)


def scenario(into: list[Scenario], name: str, *, title: str, teaching: str, group: str,
             plots: tuple[str, ...] = (), seed: int = 1, full: bool = False, source: str = "events"):
    """Decorator: append the function as a ``Scenario`` to the module's list ``into``."""
    if source not in ("events", "pcap"):
        raise ValueError(f"source is 'events' or 'pcap', not {source!r}")

    def deco(fn):
        into.append(Scenario(name, title, group, " ".join(teaching.split()), fn, tuple(plots), seed, full,
                             source))
        return fn
    return deco


def all_scenarios() -> list[Scenario]:
    from synack.scenarios import closing, data, isn, loss, opening, synflood
    out: list[Scenario] = []
    for module in (opening, closing, data, loss, isn, synflood):
        out.extend(module.SCENARIOS)
    names = [s.name for s in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"scenario names used twice: {', '.join(sorted(dup))}")
    return out


def get(name: str) -> Scenario:
    for s in all_scenarios():
        if s.name == name:
            return s
    raise KeyError(f"no scenario {name!r} (see `synack scenarios list`)")


@dataclass
class Result:
    scenario: Scenario
    ok: bool
    message: str = ""
    files: list[Path] = field(default_factory=list)
    wall: float = 0.0
    virtual: float = 0.0
    notes: list[str] = field(default_factory=list)
    drawn: str | None = None      # the connection the pictures show ("a:p>b:q"; None: the first)


def run(sc: Scenario, out_root: Path | str, *, pictures: bool = True) -> Result:
    """Run ``sc`` into ``out_root/NAME/``; never raises for a scenario's failure (the result
    says), so ``--all`` goes on with the others. The pictures are drawn even after a failure,
    as far as the log goes: they are how one sees what went wrong."""
    out = Path(out_root) / sc.name
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():               # a re-run must not leave stale pictures behind
        if old.is_file():
            old.unlink()
    labs: list[Lab] = []

    def new_lab(**kwargs) -> Lab:
        if labs:
            raise RuntimeError("one lab per scenario")
        lab = Lab(out, seed=sc.seed, meta={"scenario": sc.name}, **kwargs)
        labs.append(lab)
        return lab

    t0 = time.perf_counter()
    ok, message = True, ""
    try:
        sc.fn(new_lab)
    except ScenarioFailed as e:
        ok, message = False, f"check failed: {e}"
    except SimError as e:
        ok, message = False, f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - a crash is a failed scenario, with its traceback
        ok, message = False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    finally:
        for lab in labs:
            lab.close_files()
    lab = labs[0] if labs else None
    files: list[Path] = []
    if lab is not None:
        files += [out / "capture.pcap", out / "events.jsonl"]
        if pictures:
            try:
                files += draw(sc, lab, out)
            except Exception as e:  # noqa: BLE001 - a picture that cannot be drawn fails the scenario
                if ok:
                    ok, message = False, f"pictures: {type(e).__name__}: {e}"
    return Result(sc, ok, message, files, time.perf_counter() - t0, lab.now if lab else 0.0,
                  list(lab.notes) if lab else [], lab.draw if lab else None)


def draw(sc: Scenario, lab: Lab, out: Path) -> list[Path]:
    """The sequence diagram (SVG, Mermaid, text), the plots and the scenario's own figures."""
    from synack.pictures import seqdiag
    from synack.pictures.model import load
    files: list[Path] = []
    cap = load([str(out / ("events.jsonl" if sc.source == "events" else "capture.pcap"))])
    if cap.connections:
        conn = cap.connection(lab.draw)
        full = sc.full
        for ext, text in ((".svg", seqdiag.render_svg(conn, full=full)),
                          (".mmd", seqdiag.render_mermaid(conn, full=full)),
                          (".txt", seqdiag.render_text(conn, full=full))):
            p = out / (DIAGRAM + ext)
            p.write_text(text, encoding="utf-8")
            files.append(p)
        if sc.plots:
            from synack.pictures.plots import plot
            for kind in sc.plots:
                p = out / f"{kind}.png"
                plot(conn, kind, p)
                files.append(p)
    for name, fn in lab.figures.items():
        p = out / name
        fn(p)
        files.append(p)
    return files


__all__ = ["Scenario", "Result", "scenario", "all_scenarios", "get", "run", "draw", "DIAGRAM"]
