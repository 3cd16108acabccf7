"""Initial sequence numbers over time: ISN = M + F (RFC 6528 §3, RFC 9293 §3.4.1)."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

from synack.scenarios.lab import CLIENT, CLIENT_SECRET, SERVER, check, pyplot
from synack.scenarios.registry import Scenario, scenario
from synack.tcp import events as ev
from synack.tcp.isn import MOD, TICKS_PER_SECOND, IsnGenerator
from synack.tcp.states import State
from synack.wire.tcp import Flags

SCENARIOS: list[Scenario] = []
EVERY = 1800.0                   # s between rounds of connections
ROUNDS = 13                      # 0 h .. 6 h: M wraps once (every 2**32 / 250,000 s = 4.77 h)
TUPLES = ((40000, 80), (40001, 80), (40000, 8080))      # (client port, server port)


@scenario(SCENARIOS, "isn-over-time", group="isn", title="ISNs over time: M + F", teaching="""
    Every ISN is a clock M, ticking once every 4 µs and wrapping every 4.77 hours, plus F, a keyed
    hash of the 4-tuple (RFC 6528). Connections on the same 4-tuple get ever-larger ISNs, so
    segments of an old incarnation miss the new window; other 4-tuples sit at secret offsets, so
    one connection's ISN tells an attacker nothing about another's.""")
def isn_over_time(new_lab) -> None:
    lab = new_lab()
    lab.listen(80)
    lab.listen(8080)
    opened = []

    def round_of_connections():
        for cport, sport in TUPLES:
            opened.append(lab.connect(sport, local=(CLIENT, cport)))

    for k in range(ROUNDS):
        lab.at(k * EVERY, round_of_connections)
        lab.at(k * EVERY + 0.1, lambda: [s.abort() for s in opened if s.state is State.ESTABLISHED])
    lab.run_until(lambda: len(opened) == ROUNDS * len(TUPLES) and all(s.state is State.CLOSED for s in opened),
                  limit=ROUNDS * EVERY)
    gen = IsnGenerator(CLIENT_SECRET)
    a, b = ip_address(CLIENT).packed, ip_address(SERVER).packed
    syns = [r for r in lab.of(ev.SegmentOut) if r.conn.local_addr == CLIENT and r.seg.flags == Flags.SYN]
    check(len(syns) == ROUNDS * len(TUPLES), f"one SYN per connection, got {len(syns)}")
    for r in syns:
        m, f = gen.isn_parts(r.t, a, r.seg.sport, b, r.seg.dport)
        check(r.seg.seq == (m + f) % MOD, f"SYN at {r.t} s: ISN {r.seg.seq} = M + F = {m} + {f} mod 2**32")
    by_tuple: dict[tuple[int, int], list] = {}
    for r in syns:
        by_tuple.setdefault((r.seg.sport, r.seg.dport), []).append(r)
    for key, rs in by_tuple.items():
        for x, y in zip(rs, rs[1:]):
            check((y.seg.seq - x.seg.seq) % MOD == int(y.t * TICKS_PER_SECOND) - int(x.t * TICKS_PER_SECOND),
                  f"{key}: the ISN advanced by 250,000 per second between {x.t} and {y.t} s")
    offsets = {key: gen.isn_parts(0.0, a, key[0], b, key[1])[1] for key in TUPLES}
    check(len(set(offsets.values())) == len(TUPLES), "each 4-tuple has its own offset F")
    wrapped = [x for x, y in zip(by_tuple[TUPLES[0]], by_tuple[TUPLES[0]][1:]) if y.seg.seq < x.seg.seq]
    check(wrapped, "within 6 hours the ISN of one 4-tuple wrapped past 2**32")
    lab.notes.append(f"{len(syns)} connections over {(ROUNDS - 1) * EVERY / 3600:.0f} h")

    def draw(path: Path) -> None:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(11, 6.5), dpi=100)
        end = (ROUNDS - 1) * EVERY
        ts = [end * i / 2000 for i in range(2001)]
        colors = ("#1f4e9c", "#c0392b", "#27ae60")

        def sawtooth(values):            # break the line where it wraps
            xs, ys = [], []
            for t, v in zip(ts, values):
                if ys and v < ys[-1]:
                    xs.append(float("nan"))
                    ys.append(float("nan"))
                xs.append(t / 3600)
                ys.append(v)
            return xs, ys
        xs, ys = sawtooth([gen.isn_parts(t, a, 0, b, 0)[0] for t in ts])
        ax.plot(xs, ys, color="#888", linestyle="--", linewidth=1.0, label="M: 4 µs clock (wraps every 4.77 h)")
        for k, ((key, rs), color) in enumerate(zip(by_tuple.items(), colors)):
            f = offsets[key]
            xs, ys = sawtooth([(gen.isn_parts(t, a, key[0], b, key[1])[0] + f) % MOD for t in ts])
            name = f"{CLIENT}:{key[0]} > {SERVER}:{key[1]}"
            ax.plot(xs, ys, color=color, linewidth=1.2, alpha=0.6, label=f"M + F for {name}")
            ax.scatter([r.t / 3600 for r in rs], [r.seg.seq for r in rs], color=color, s=28, zorder=5)
            if k == 0:                   # F: how far this 4-tuple's line sits above M
                ax.annotate("", xy=(0.05, f), xytext=(0.05, 0),
                            arrowprops=dict(arrowstyle="<->", color=color, linewidth=1.2))
                ax.annotate(f"F = {f:,}", (-0.03, f / 2), fontsize=9, color=color, rotation=90,
                            ha="right", va="center")
        ax.scatter([], [], color="#444", s=28, label="ISN of a SYN in the event log")
        ax.set_title("Initial sequence numbers of synack's SYNs over 6 hours (RFC 6528: ISN = M + F)", fontsize=11)
        ax.set_xlabel("time (hours)")
        ax.set_ylabel("ISN")
        ax.set_ylim(0, MOD)
        ax.set_xlim(-0.4, end / 3600 + 0.2)
        ax.set_yticks([0, MOD // 4, MOD // 2, 3 * MOD // 4, MOD], ["0", "2³⁰", "2³¹", "3·2³⁰", "2³²"])
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, ncol=2, bbox_to_anchor=(0.0, -0.1))
        fig.tight_layout()
        fig.savefig(path, format="png")
        plt.close(fig)
    lab.figures["isn.png"] = draw
    lab.draw = f"{CLIENT}:{TUPLES[0][0]}>{SERVER}:{TUPLES[0][1]}"
