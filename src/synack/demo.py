"""``synack demo``: the main job. Fetch a page over synack's TCP and show what happened on the
wire: the sequence diagram of the first connection with both sides' states, a short summary,
and a folder of outputs (pcap, events.jsonl, SVG and Mermaid diagrams, a time-sequence plot,
index.html tying them together).

With root and /dev/net/tun the story runs against the Linux kernel in a private network
namespace (see ``synack.demo_tun``); otherwise it says so in one line and runs the same story
on the simulated network.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import time
from pathlib import Path


from synack.tcp.congestion.cli import add_cc_argument

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="synack-demo", metavar="DIR", help="where to write the outputs (default: synack-demo)")
    p.add_argument("--sim", action="store_true", help="use the simulated network even with root and TUN")
    p.add_argument("--seed", type=int, default=1, help="seed of the simulated run (default 1)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colours in the terminal diagram")
    add_cc_argument(p)


def tun_available() -> tuple[bool, str]:
    """Can the real demo run? (root or CAP_NET_ADMIN, and /dev/net/tun)"""
    if not os.path.exists("/dev/net/tun"):
        return False, "no /dev/net/tun"
    if os.geteuid() != 0:
        return False, "not root (the real demo needs root or CAP_NET_ADMIN for TUN and namespaces)"
    try:
        import synack.demo_tun  # noqa: F401
    except ImportError as e:
        return False, f"the TUN demo is not available ({e})"
    return True, ""


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = "it is a file, not a directory" if out.exists() else f"cannot make that directory ({e.strerror})"
        print(f"synack demo: error: --out {out}: {why}", file=sys.stderr)
        return 2
    if not os.access(out, os.W_OK | os.X_OK):
        print(f"synack demo: error: --out {out}: cannot write there", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    ok, why = (False, "--sim given") if args.sim else tun_available()
    if ok:
        from synack import demo_tun
        print("synack demo: the Linux kernel and synack, in a private network namespace")
        try:
            story = demo_tun.run(out, progress=print, cc=args.cc or "cubic")
        except demo_tun.TunUnavailable as e:
            print(f"synack demo: {e}; running the same story on the simulated network")
            ok = False
    if not ok:
        if not args.sim:
            print(f"synack demo: {why}; running the same story on the simulated network instead")
        else:
            print("synack demo: the simulated network (virtual clock, seeded)")
        from synack import demo_sim
        story = demo_sim.run(out, seed=args.seed, progress=print, cc=args.cc or "cubic")
    return report(out, story, color=args.color, started=t0)


def report(out: Path, story, *, color: str = "auto", started: float) -> int:
    """Draw the first connection, summarise, write the diagrams, plot and index.html."""
    from synack.pictures import seqdiag
    from synack.pictures.model import describe, load
    pcap = out / "demo.pcap"
    # Draw from the event log: synack's states are then the ones it went through, not guesses,
    # and the segments it sent that the link dropped are known. A side that logs nothing (the
    # kernel, on TUN) has its states inferred from the packets (pictures.model infers only the
    # sides no log speaks for). The capture is the source only when there is no log.
    log = out / "events.jsonl"
    source = log if log.exists() and log.stat().st_size else pcap
    cap = load([str(source)])
    if not cap.connections:
        print(f"synack demo: no TCP connection in {pcap}", file=sys.stderr)
        return 1
    first = cap.connections[0]
    use_color = color == "always" or (color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    print()
    print(seqdiag.render_text(first, color=use_color))
    files = {"capture (open in Wireshark)": pcap, "event log (JSON lines)": out / "events.jsonl"}
    for i, conn in enumerate(cap.connections, 1):
        svg = out / f"connection-{i}.svg"
        svg.write_text(seqdiag.render_svg(conn))
        mmd = out / f"connection-{i}.mmd"
        mmd.write_text(seqdiag.render_mermaid(conn))
        files[f"connection {i}: sequence diagram (SVG)"] = svg
        files[f"connection {i}: sequence diagram (Mermaid)"] = mmd
    try:
        from synack.pictures.plots import plot
        ts = out / "time-sequence.png"
        plot(cap.connections[-1], "time-sequence", str(ts))
        files["time-sequence plot of the lossy fetch"] = ts
    except ImportError:
        pass
    print("What happened:")
    for f in story:
        print(f"  {f.name}: {f.summary}")
    print()
    origin = min(c.start for c in cap.connections)
    for conn in cap.connections:
        print("  " + describe(conn, origin))
    index = out / "index.html"
    index.write_text(_index_html(cap.connections, story, files))
    files["index"] = index
    print()
    for what, path in files.items():
        print(f"  {what}: {path}")
    print(f"\nsynack demo: done in {time.monotonic() - started:.1f} s; open {index}")
    return 0 if all(f.ok for f in story) else 1


def _index_html(conns, story, files) -> str:
    items = "\n".join(f'<li><a href="{html.escape(p.name)}">{html.escape(w)}</a></li>' for w, p in files.items()
                      if w != "index")
    stories = "\n".join(f"<li><b>{html.escape(f.name)}</b>: {html.escape(f.summary)}</li>" for f in story)
    figs = "\n".join(f'<h2>Connection {i}</h2><img src="connection-{i}.svg" alt="sequence diagram {i}">'
                     for i in range(1, len(conns) + 1))
    return f"""<!doctype html><meta charset="utf-8"><title>synack demo</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}} img{{max-width:100%;border:1px solid #ccc}}</style>
<h1>synack demo</h1><ul>{stories}</ul>
<h2>Files</h2><ul>{items}</ul>
{figs}
"""
