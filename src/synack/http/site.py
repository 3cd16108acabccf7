"""The built-in site: a page about the visitor's own connection, as synack saw it.

* ``/`` — the 4-tuple, both ISNs, the options each side offered and what was agreed (MSS,
  window scale, SACK, timestamps), RTT and RTO, the state history, and the sequence diagram
  of this connection so far (SVG, drawn by ``synack.pictures`` from the connection's trace
  records). On the kernel's TCP none of this is visible to a program: the page says so.
* ``/connections`` — a live table like ``ss``: every connection and listener of the stack
  (``/connections.json`` the same as JSON).
* ``/events/N`` — connection N's trace records as JSON (``/events/N.jsonl``: a synack event
  log that ``synack draw`` reads); ``/capture/N.pcap`` — its packets as a pcap. ``N`` is the
  number shown on the pages, or ``self`` for the connection asking.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

from synack.http.server import Request, Response
from synack.http.trace import ConnTrace, TraceStore
from synack.tcp.events import SegmentIn, SegmentOut
from synack.wire.tcp import Flags, format_option

ALLOW = "GET, HEAD"

CSS = """
body{font-family:system-ui,sans-serif;max-width:72em;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.5em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:.2em .7em;border-bottom:1px solid #ddd;text-align:left;
vertical-align:top} th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace} .you{background:#fff7d6}
.diagram{overflow-x:auto;border:1px solid #ccc;padding:.3em;background:#fff} .muted{color:#777}
nav a{margin-right:1em}
"""


def _page(title: str, body: str, refresh: int | None = None) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{html.escape(title)}'
            f'</title><style>{CSS}</style></head><body><nav><a href="/">your connection</a>'
            f'<a href="/connections">all connections</a></nav>\n{body}\n</body></html>\n')


def _ep(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v * 1000:.2f} ms"


class Site:
    """The built-in site as an HTTP application: ``HttpServer(Site(trace))``. ``trace`` is the
    ``TraceStore`` attached to the stack (None: no diagrams, events or captures)."""

    def __init__(self, trace: TraceStore | None = None) -> None:
        self.trace = trace
        self.epoch_offset = time.time() - time.monotonic()     # loop.time() is monotonic

    async def __call__(self, req: Request) -> Response:
        if req.method not in ("GET", "HEAD"):
            return Response.error(405, f"{req.method} is not allowed here", [("allow", ALLOW)])
        p = req.path
        if p == "/" or p == "/index.html":
            return Response.html(self.index(req), headers=[("cache-control", "no-store")])
        if p == "/connections":
            return Response.html(self.connections_page(req), headers=[("cache-control", "no-store")])
        if p == "/connections.json":
            return Response.json(self.connections_json(req))
        if p.startswith("/events/"):
            name = p[len("/events/"):]
            jsonl = name.endswith(".jsonl")
            tr = self._find(req, name.removesuffix(".jsonl"))
            if tr is None:
                return Response.error(404, "no such connection (or it was forgotten)")
            if jsonl:
                lines = [json.dumps({"ev": "header", "format": "synack-events", "version": 1})]
                lines += [json.dumps(d, separators=(",", ":")) for d in tr.dicts()]
                return Response(200, [("content-type", "application/x-ndjson; charset=utf-8")],
                                ("\n".join(lines) + "\n").encode())
            return Response.json({"serial": tr.serial, "conn": str(tr.conn), "skipped": tr.skipped,
                                  "records": tr.dicts()})
        if p.startswith("/capture/") and p.endswith(".pcap"):
            tr = self._find(req, p[len("/capture/"):-len(".pcap")])
            if tr is None:
                return Response.error(404, "no such connection (or it was forgotten)")
            return Response(200, [("content-type", "application/vnd.tcpdump.pcap"),
                                  ("content-disposition", f'attachment; filename="synack-conn-{tr.serial}.pcap"')],
                            tr.capture(self.epoch_offset))
        return Response.error(404)

    def _find(self, req: Request, name: str) -> ConnTrace | None:
        if self.trace is None:
            return None
        if name == "self":
            return self.trace.of(req.conn.id) if req.conn is not None else None
        if name.isdigit():
            return self.trace.get(int(name))
        return None

    # ------------------------------------------------------------------ /

    def index(self, req: Request) -> str:
        conn = req.conn
        if conn is None:
            peer, sock = req.peername, req.sockname
            you = _ep(peer[0], peer[1]) if peer else "?"
            me = _ep(sock[0], sock[1]) if sock else "?"
            return _page("Your connection", f"""<h1>Your connection</h1>
<p>You are <code>{html.escape(you)}</code>, talking to <code>{html.escape(me)}</code>
(request {req.number} on this connection).</p>
<p><b>This server runs on the operating system's TCP</b>, so the details of your connection
(sequence numbers, options, round-trip time, states, the segments themselves) are unavailable to
it. Served by <code>synack serve --http</code>, the same page shows all of them, and the
sequence diagram of your connection.</p>""")
        cid = conn.id
        info = conn.info()
        tr = self.trace.of(cid) if self.trace is not None else None
        rows = [
            ("you (client)", f"<code>{html.escape(_ep(cid.remote_addr, cid.remote_port))}</code>"),
            ("synack (server)", f"<code>{html.escape(_ep(cid.local_addr, cid.local_port))}</code>"),
            ("this request", f"number {req.number} on this connection"
                             + (" (the connection was kept alive)" if req.number > 1 else "")),
            ("your ISN", f"<code>{info.irs}</code>"),
            ("synack's ISN", f"<code>{info.iss}</code>"),
        ]
        yours, mine = _syn_options(tr)
        rows.append(("your SYN offered", _opts(yours)))
        rows.append(("synack's SYN-ACK offered", _opts(mine)))
        rows += [
            ("MSS", f"synack sends segments of up to {info.snd_mss} bytes of data "
                    f"(you offered {_mss_of(yours) or conn.peer_mss}, synack offered {_mss_of(mine) or '?'})"),
            ("window scaling", f"yes: your windows are shifted by {info.snd_wscale}, synack's by {info.rcv_wscale}"
             if info.wscale_ok else "not in use"),
            ("SACK", "permitted" if info.sack_ok else "not in use"),
            ("timestamps", "in use" if info.timestamps_ok else "not in use"),
            ("round-trip time", f"smoothed {_ms(info.rtt)}, variation {_ms(info.rttvar)}; "
                                f"retransmission timeout {_ms(info.rto)}"),
            ("congestion window", f"{info.snd_cwnd} bytes ({info.cc}); {info.total_retrans} retransmission(s)"),
            ("windows", f"yours {info.snd_wnd} bytes, synack's {info.rcv_wnd} bytes"),
            ("state now", f"<b>{html.escape(str(info.state))}</b>"),
        ]
        hist = conn.state_history
        t0 = hist[0][0] if hist else 0.0
        history = " → ".join(f'{html.escape(str(st))} <span class="muted">+{(t - t0) * 1000:.1f} ms</span>'
                             for t, st in hist)
        rows.append(("state history", history or "–"))
        table = "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        links = ""
        diagram = '<p class="muted">No trace of this connection is kept.</p>'
        if tr is not None:
            links = (f'<p>Connection {tr.serial}: <a href="/events/{tr.serial}">its events (JSON)</a>, '
                     f'<a href="/events/{tr.serial}.jsonl">event log</a>, '
                     f'<a href="/capture/{tr.serial}.pcap">its packets (pcap)</a>.</p>')
            diagram = _diagram(tr)
        return _page("Your connection, as synack saw it", f"""<h1>Your connection, as synack saw it</h1>
<p>This page came to you over a TCP written in Python (synack). Here is your connection, up to
the moment this request arrived.</p>
<table>{table}</table>
{links}
<h2>Sequence diagram so far</h2>
<div class="diagram">{diagram}</div>
<p class="muted">Times and states are synack's; your side's are estimated from the handshake.
This response itself is not in the diagram yet: reload to see it.</p>""")

    # ------------------------------------------------------------------ /connections

    def _rows(self, req: Request) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        astack = req.astack
        if astack is None:
            return None
        stack = astack.stack
        me = req.conn
        conns = []
        for c in list(stack.conns.values()):
            cid = c.id
            i = c.info()
            tr = self.trace.of(cid) if self.trace is not None else None
            conns.append({
                "n": tr.serial if tr is not None else None, "state": str(c.state),
                "recv_q": i.recv_queue, "send_q": i.send_queue,
                "local": _ep(cid.local_addr, cid.local_port), "peer": _ep(cid.remote_addr, cid.remote_port),
                "rtt_ms": None if i.rtt is None else round(i.rtt * 1000, 3), "rto_ms": round(i.rto * 1000, 1),
                "cwnd": i.snd_cwnd, "mss": i.snd_mss, "retrans": i.total_retrans, "you": c is me,
            })
        conns.sort(key=lambda r: (r["n"] is None, r["n"] or 0))
        listeners = [{"local": _ep(str(a) if a else "*", p), "syn_q": len(lst.syn_queue),
                      "accept_q": len(lst.accept_queue), "backlog": lst.backlog}
                     for (a, p), lst in list(stack.listeners.items())]
        return conns, listeners

    def connections_json(self, req: Request) -> Any:
        rows = self._rows(req)
        if rows is None:
            return {"error": "this server runs on the operating system's TCP: connections unavailable"}
        return {"connections": rows[0], "listeners": rows[1]}

    def connections_page(self, req: Request) -> str:
        rows = self._rows(req)
        if rows is None:
            return _page("Connections", "<h1>Connections</h1><p>This server runs on the operating system's "
                                        "TCP: its connection table is unavailable here.</p>")
        conns, listeners = rows
        head = ("<tr><th>#</th><th>State</th><th>Recv-Q</th><th>Send-Q</th><th>Local</th><th>Peer</th>"
                "<th>RTT</th><th>RTO</th><th>cwnd</th><th>MSS</th><th>retrans</th><th></th></tr>")
        body = []
        for r in conns:
            n = r["n"]
            links = (f'<a href="/events/{n}">events</a> <a href="/capture/{n}.pcap">pcap</a>' if n else "")
            body.append(
                f'<tr class="{"you" if r["you"] else ""}"><td class="n">{n or ""}</td><td>{r["state"]}</td>'
                f'<td class="n">{r["recv_q"]}</td><td class="n">{r["send_q"]}</td>'
                f'<td class="mono">{html.escape(r["local"])}</td><td class="mono">{html.escape(r["peer"])}</td>'
                f'<td class="n">{"–" if r["rtt_ms"] is None else r["rtt_ms"]}</td><td class="n">{r["rto_ms"]}</td>'
                f'<td class="n">{r["cwnd"]}</td><td class="n">{r["mss"]}</td><td class="n">{r["retrans"]}</td>'
                f'<td>{links}{" (you)" if r["you"] else ""}</td></tr>')
        lrows = "".join(f'<tr><td>LISTEN</td><td class="mono">{html.escape(r["local"])}</td>'
                        f'<td class="n">{r["syn_q"]}</td><td class="n">{r["accept_q"]}</td>'
                        f'<td class="n">{r["backlog"]}</td></tr>' for r in listeners)
        older = ""
        if self.trace is not None:
            live = {r["n"] for r in conns}
            gone = [t for t in self.trace.by_serial.values() if t.serial not in live][-20:]
            if gone:
                older = "<h2>Recently closed</h2><ul>" + "".join(
                    f'<li>{t.serial}: <span class="mono">{html.escape(str(t.conn))}</span> — '
                    f'<a href="/events/{t.serial}">events</a> <a href="/capture/{t.serial}.pcap">pcap</a></li>'
                    for t in reversed(gone)) + "</ul>"
        return _page("Connections", f"""<h1>Connections</h1>
<p class="muted">Like <code>ss -tni</code>, refreshed every 2 seconds. Times in milliseconds, sizes in bytes.</p>
<table>{head}{"".join(body)}</table>
<h2>Listeners</h2>
<table><tr><th>State</th><th>Local</th><th>SYN queue</th><th>accept queue</th><th>backlog</th></tr>{lrows}</table>
{older}""", refresh=2)


def _syn_options(tr: ConnTrace | None) -> tuple[list[str] | None, list[str] | None]:
    """The options on the first SYN received and the first SYN sent, from the trace."""
    yours = mine = None
    if tr is None:
        return None, None
    for rec in tr.records():
        if isinstance(rec, (SegmentIn, SegmentOut)) and rec.seg.flags & Flags.SYN:
            opts = [format_option(o) for o in rec.seg.options if format_option(o) not in ("nop", "eol")]
            if isinstance(rec, SegmentIn) and yours is None:
                yours = opts
            elif isinstance(rec, SegmentOut) and mine is None:
                mine = opts
        if yours is not None and mine is not None:
            break
    return yours, mine


def _mss_of(opts: list[str] | None) -> str | None:
    return next((o.split()[1] for o in opts or () if o.startswith("mss ")), None)


def _opts(opts: list[str] | None) -> str:
    if opts is None:
        return '<span class="muted">not in the trace</span>'
    return ", ".join(f"<code>{html.escape(o)}</code>" for o in opts) or "none"


def _diagram(tr: ConnTrace) -> str:
    try:
        from synack.pictures.seqdiag import render_svg
        model = tr.model()
        if model is None:
            return '<p class="muted">No segments yet.</p>'
        svg = render_svg(model)
    except Exception as e:                  # noqa: BLE001 - the page is still useful without it
        return f'<p class="muted">The diagram could not be drawn: {html.escape(str(e))}</p>'
    i = svg.find("<svg")
    return svg[i:] if i >= 0 else svg


__all__ = ["Site"]
