"""Plots of one connection with matplotlib (Agg, imported only when a plot is drawn).

* ``time_sequence``: the Stevens/tcptrace graph of one direction's data: each data segment a
  vertical bar from its first to its last sequence number, the peer's ACK line and receive-window
  line (ack + window) as steps, SACK blocks, retransmissions in red, RTO expiries (from a log)
  as vertical marks, lost segments (both sides logged) as crosses.
* ``throughput``: payload bits per second per direction, in time bins.
* ``cwnd``, ``rtt``: from an event log's ``CwndChanged`` / ``RttSample`` records.
* ``inflight``: bytes sent and not yet acknowledged over time, from the sender's view (its own
  log when there is one), with cwnd beside it when logged.

Every function writes ``path``; the extension picks the format (``.png`` or ``.svg``). Errors
(nothing to plot, unknown extension): ``PictureError``.
"""

from __future__ import annotations

import os
from typing import Any

from synack.pictures.model import Connection, PictureError, Segment
from synack.wire.tcp import Flags

KINDS = ("time-sequence", "throughput", "cwnd", "rtt", "inflight")
_BIG = 1 << 40            # an ssthresh at or above this is "infinite" (not yet set)


def _figure(title: str):
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(11, 6.5), dpi=100)
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    return plt, fig, ax


def _save(plt, fig, path: str | os.PathLike) -> None:
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in (".png", ".svg"):
        plt.close(fig)
        raise PictureError(f"{os.fspath(path)}: plots are written as .png or .svg, not {ext or 'no extension'!r}")
    fig.tight_layout()
    try:
        fig.savefig(path, format=ext[1:], metadata={"Date": None} if ext == ".svg" else None)
    except OSError as e:
        raise PictureError(f"{os.fspath(path)}: {e.strerror or e}") from None
    finally:
        plt.close(fig)


def data_sender(conn: Connection) -> str:
    """The side that sent more payload ("A" on a tie)."""
    return "B" if conn.payload_bytes("B") > conn.payload_bytes("A") else "A"


def _sent_at(s: Segment) -> float:
    return s.t_sent if s.t_sent is not None else s.t


def _seen_by_sender_at(s: Segment, conn: Connection) -> float | None:
    """When an ACK segment reached the data sender: its log's arrival time when both directions
    are known there, else the capture time."""
    if conn.source == "events" and s.receiver in conn.logged:
        return s.t_recv
    return s.t


def time_sequence(conn: Connection, path: str | os.PathLike, *, side: str | None = None) -> None:
    side = side or data_sender(conn)
    peer = "B" if side == "A" else "A"
    data = [s for s in conn.segments if s.sender == side and (s.len or s.flags & (Flags.SYN | Flags.FIN))]
    if not data:
        raise PictureError(f"connection {conn.index}: {side} sent no data: nothing for a time-sequence graph")
    t0 = conn.start
    plt, fig, ax = _figure(f"time-sequence: {conn.endpoint(side)} → {conn.endpoint(peer)} (connection {conn.index})")
    for style, pick, color, label in (("new", lambda s: not s.marks & {"retransmission", "lost"}, "#1f4e9c", "data"),
                                      ("retx", lambda s: "retransmission" in s.marks, "#c0392b", "retransmission"),
                                      ("lost", lambda s: "lost" in s.marks and "retransmission" not in s.marks,
                                       "#888", "lost")):
        segs = [s for s in data if pick(s)]
        if not segs:
            continue
        xs = [_sent_at(s) - t0 for s in segs]
        lo = [s.seq for s in segs]
        hi = [s.seq + max(s.seg_len, 1) for s in segs]
        ax.vlines(xs, lo, hi, colors=color, linewidth=1.6, label=label)
        ax.scatter(xs, hi, marker="_", s=30, color=color, linewidths=1.2)
        ax.scatter(xs, lo, marker="_", s=30, color=color, linewidths=1.2)
        if style == "lost":
            ax.scatter(xs, hi, marker="x", s=28, color="#c0392b", zorder=5)
    acks = [(x - t0, s) for s in conn.segments if s.sender == peer and s.flags & Flags.ACK
            and (x := _seen_by_sender_at(s, conn)) is not None]
    acks.sort(key=lambda p: p[0])
    if acks:
        ax.step([x for x, _ in acks], [s.ack for _, s in acks], where="post", color="#27ae60", linewidth=1.1,
                label="ACK")
        top = max(max(s.seq + max(s.seg_len, 1) for s in data), max(s.ack for _, s in acks))
        edge = [s.ack + s.rwnd for _, s in acks]
        clipped = max(edge) > 2 * top
        ax.step([x for x, _ in acks], edge, where="post", color="#d4ac0d", linewidth=1.0,
                label="receive window (ack + rwnd)" + (", partly above the plot" if clipped else ""))
        if clipped:
            # a window far above the data would squash it into the bottom strip: the data is
            # the story, so the axis follows it and the window line runs off the top
            ax.set_ylim(min(min(s.seq for s in data), 0) - top * 0.03, top * 1.25)
        sx, slo, shi = [], [], []
        for x, s in acks:
            for a, b in s.sack:
                sx.append(x)
                slo.append(a)
                shi.append(b)
        if sx:
            ax.vlines(sx, slo, shi, colors="#8e44ad", linewidth=3, alpha=0.7, label="SACK blocks")
    rtos = [r["t"] - t0 for r in conn.records if r.get("ev") == "TimerFired" and r.get("timer") == "rto"
            and r.get("side") == side]
    if rtos:
        for k, x in enumerate(rtos):
            ax.axvline(x, color="#c0392b", linestyle=":", linewidth=1.2, label="RTO fired" if k == 0 else None)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("sequence number (bytes" + (", relative)" if not conn.absolute else ")"))
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.legend(loc="upper left", fontsize=9)
    _save(plt, fig, path)


def throughput(conn: Connection, path: str | os.PathLike, *, bins: int | None = None) -> None:
    segs = [s for s in conn.segments if s.len]
    if not segs:
        raise PictureError(f"connection {conn.index}: no payload bytes: nothing for a throughput graph")
    t0 = conn.start
    span = max(conn.end - t0, 1e-6)
    n = bins or max(10, min(200, len(segs) // 4))
    width = span / n
    plt, fig, ax = _figure(f"throughput (connection {conn.index}, {width * 1000:.3g} ms bins)")
    for side, color in (("A", "#1f4e9c"), ("B", "#c0392b")):
        mine = [s for s in segs if s.sender == side]
        if not mine:
            continue
        total = [0.0] * n
        good = [0.0] * n
        for s in mine:
            k = min(int((_sent_at(s) - t0) / width), n - 1)
            total[k] += s.len * 8
            if "retransmission" not in s.marks:
                good[k] += s.len * 8
        xs = [(k + 0.5) * width for k in range(n)]
        ax.step(xs, [v / width / 1e6 for v in total], where="mid", color=color, linewidth=1.3,
                label=f"{conn.endpoint(side)} → sent")
        if any(g != t for g, t in zip(good, total)):
            ax.step(xs, [v / width / 1e6 for v in good], where="mid", color=color, linewidth=1.0, linestyle="--",
                    label=f"{conn.endpoint(side)} → new data (no retransmissions)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("Mbit/s")
    ax.legend(loc="upper right", fontsize=9)
    _save(plt, fig, path)


def _records(conn: Connection, ev: str) -> list[dict[str, Any]]:
    return [r for r in conn.records if r.get("ev") == ev]


def _need_log(conn: Connection, ev: str, what: str) -> list[dict[str, Any]]:
    recs = _records(conn, ev)
    if not recs:
        src = "this capture has no event log" if conn.source != "events" else "the log has none"
        raise PictureError(f"connection {conn.index}: {what} needs {ev} records ({src}; log with JsonlLog)")
    return recs


def _cwnd_series(conn: Connection, side: str) -> list[dict[str, Any]]:
    """``side``'s congestion window over time: its CwndChanged records, and during SACK loss
    recovery the window PRR allows, which the log records in PipeChanged (RFC 6937): without
    them the line would sit still through every recovery."""
    recs = [r for r in conn.records if r.get("side") == side and r.get("ev") in ("CwndChanged", "PipeChanged")]
    recs.sort(key=lambda r: r["t"])                 # stable: the log's order at equal times
    return recs


def cwnd(conn: Connection, path: str | os.PathLike) -> None:
    recs = _need_log(conn, "CwndChanged", "a cwnd plot")
    t0 = conn.start                    # a property walking every segment: once, not per record
    plt, fig, ax = _figure(f"congestion window (connection {conn.index})")
    senders = {r["side"] for r in recs if conn.payload_bytes(r["side"])} or {r["side"] for r in recs}
    for side, color in (("A", "#1f4e9c"), ("B", "#c0392b")):
        if side not in senders:        # a side that sent no data: its window never mattered
            continue
        series = _cwnd_series(conn, side)
        mine = [r for r in series if r["ev"] == "CwndChanged"]
        if not mine:
            continue
        ax.step([r["t"] - t0 for r in series], [r["cwnd"] for r in series], where="post", color=color,
                linewidth=1.4, label=f"cwnd {conn.endpoint(side)}")
        xs = [r["t"] - t0 for r in mine]
        ss = [(x, r["ssthresh"]) for x, r in zip(xs, mine) if isinstance(r["ssthresh"], (int, float))
              and r["ssthresh"] < _BIG]
        if ss:
            ax.step([x for x, _ in ss], [v for _, v in ss], where="post", color=color, linewidth=1.0,
                    linestyle="--", label=f"ssthresh {conn.endpoint(side)}")
        for r, x in zip(mine, xs):
            if r.get("reason") in ("rto", "fast retransmit", "fast recovery"):
                ax.annotate(r["reason"], (x, r["cwnd"]), fontsize=7, color=color, rotation=60,
                            xytext=(2, 6), textcoords="offset points")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)          # room above the peaks for the annotations
    ax.set_xlabel("time (s)")
    ax.set_ylabel("bytes")
    ax.legend(loc="upper left", fontsize=9)
    _save(plt, fig, path)


def rtt(conn: Connection, path: str | os.PathLike) -> None:
    recs = _need_log(conn, "RttSample", "an RTT plot")
    t0 = conn.start
    plt, fig, ax = _figure(f"RTT estimator, RFC 6298 (connection {conn.index})")
    for side, color in (("A", "#1f4e9c"), ("B", "#c0392b")):
        mine = [r for r in recs if r["side"] == side]
        if not mine:
            continue
        xs = [r["t"] - t0 for r in mine]
        name = conn.endpoint(side)
        ax.scatter(xs, [r["rtt"] * 1000 for r in mine], s=10, color=color, alpha=0.6, label=f"RTT sample {name}")
        ax.plot(xs, [r["srtt"] * 1000 for r in mine], color=color, linewidth=1.4, label=f"SRTT {name}")
        # the RTO as it really was: set by each sample, doubled by each expiry (RtoBackoff,
        # RFC 6298 §5.5), else a backed-off timer would not show at all
        rto = sorted((r for r in conn.records if r.get("side") == side and r.get("ev") in ("RttSample", "RtoBackoff")),
                     key=lambda r: r["t"])
        ax.step([r["t"] - t0 for r in rto], [r["rto"] * 1000 for r in rto], where="post", color=color,
                linewidth=1.0, linestyle="--", label=f"RTO {name}")
        backoffs = [r for r in rto if r["ev"] == "RtoBackoff"]
        if backoffs:
            ax.scatter([r["t"] - t0 for r in backoffs], [r["rto"] * 1000 for r in backoffs], marker="^", s=30,
                       color=color, label=f"RTO doubled on expiry {name}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.legend(loc="best", fontsize=9)             # the RTO steps climb into the upper left
    _save(plt, fig, path)


def inflight(conn: Connection, path: str | os.PathLike, *, side: str | None = None) -> None:
    side = side or data_sender(conn)
    peer = "B" if side == "A" else "A"
    events: list[tuple[float, int, Segment]] = []
    for s in conn.segments:
        if s.sender == side and s.seg_len:
            events.append((_sent_at(s), 0, s))
        elif s.sender == peer and s.flags & Flags.ACK:
            x = _seen_by_sender_at(s, conn)
            if x is not None:
                events.append((x, 1, s))
    if not any(k == 0 for _, k, _ in events):
        raise PictureError(f"connection {conn.index}: {side} sent nothing: no bytes in flight")
    events.sort(key=lambda e: (e[0], e[1]))
    t0 = conn.start
    nxt = una = None
    xs, ys = [], []
    for x, kind, s in events:
        if kind == 0:
            end = s.seq + s.seg_len
            nxt = end if nxt is None else max(nxt, end)
            una = s.seq if una is None else una
        elif una is not None:
            una = max(una, s.ack)
        if nxt is not None and una is not None:
            xs.append(x - t0)
            ys.append(max(nxt - una, 0))
    plt, fig, ax = _figure(f"bytes in flight: {conn.endpoint(side)} → {conn.endpoint(peer)} "
                           f"(connection {conn.index})")
    ax.step(xs, ys, where="post", color="#1f4e9c", linewidth=1.3, label="in flight (snd.nxt - snd.una)")
    cw = _cwnd_series(conn, side)
    if any(r["ev"] == "CwndChanged" for r in cw):
        ax.step([r["t"] - t0 for r in cw], [r["cwnd"] for r in cw], where="post", color="#c0392b",
                linewidth=1.0, linestyle="--", label="cwnd")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("bytes")
    ax.legend(loc="upper left", fontsize=9)
    _save(plt, fig, path)


PLOTTERS = {"time-sequence": time_sequence, "throughput": throughput, "cwnd": cwnd, "rtt": rtt,
            "inflight": inflight}


def plot(conn: Connection, kind: str, path: str | os.PathLike) -> None:
    """Draw plot ``kind`` (one of ``KINDS``) of ``conn`` into ``path`` (.png or .svg)."""
    try:
        fn = PLOTTERS[kind]
    except KeyError:
        raise PictureError(f"unknown plot kind {kind!r} (one of {', '.join(KINDS)})") from None
    fn(conn, path)


__all__ = ["KINDS", "plot", "time_sequence", "throughput", "cwnd", "rtt", "inflight", "data_sender"]
