"""A SYN flood against a listener, with SYN cookies off and on (RFC 4987)."""

from __future__ import annotations

import random
from pathlib import Path

from synack.drive import earliest
from synack.scenarios.lab import SERVER, check, pyplot
from synack.scenarios.registry import Scenario, scenario
from synack.stack.host import Stack, StackConfig
from synack.tcp import events as ev
from synack.tcp.config import TcpConfig
from synack.tcp.states import State
from synack.wire.packet import build_tcp_packet, parse_packet
from synack.wire.tcp import Flags, Mss, TcpSegment

SCENARIOS: list[Scenario] = []
SYN_BACKLOG = 16              # the server's SYN queue: half-open connections per listener
RATE = 10.0                   # attack SYNs per second
ATTACK = (0.5, 25.0)          # s: when the flood runs
LEGIT_AT = 5.0                # s: when the real client connects
WINDOW = 25.0                 # s shown in the plot
REQUEST, REPLY = b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\nserved\n"


class SharedLink:
    """The client's end of the link: the real client host, and an attacker on the same path
    sending SYNs from spoofed addresses (198.51.100.0/24) that never answer. Packets for the
    client go to it; the SYN-ACKs to the spoofed addresses vanish."""

    def __init__(self, client: Stack, rng: random.Random) -> None:
        self.client, self.rng = client, rng
        self.next_syn = ATTACK[0]
        self.sent = 0
        self.blackholed = 0

    def receive_packet(self, packet: bytes, now: float) -> None:
        if parse_packet(packet, verify=False).dst in self.client.addresses:
            self.client.receive_packet(packet, now)
        else:
            self.blackholed += 1

    def packets_to_send(self, now: float) -> list[bytes]:
        out = self.client.packets_to_send(now)
        while self.next_syn <= now and self.next_syn < ATTACK[1]:
            src = f"198.51.100.{self.rng.randrange(1, 255)}"
            seg = TcpSegment(self.rng.randrange(1024, 65536), 80, self.rng.getrandbits(32), 0, Flags.SYN, 64240,
                             options=(Mss(1460),))
            out.append(build_tcp_packet(src, SERVER, seg))
            self.sent += 1
            self.next_syn += 1 / RATE
        return out

    def next_timer(self) -> float | None:
        return earliest(self.client.next_timer(), self.next_syn if self.next_syn < ATTACK[1] else None)

    def handle_timer(self, now: float) -> None:
        self.client.handle_timer(now)


def _flood(new_lab, cookies: str):
    lab = new_lab(client_node=lambda client: SharedLink(client, random.Random(4987)),
                  client_config=TcpConfig(syn_retries=3),
                  server_stack=StackConfig(syncookies=cookies, syn_backlog=SYN_BACKLOG))
    srv = lab.listen(80)
    lst = srv.listener
    samples: list[tuple[float, int, int]] = []     # (t, SYN queue length, cookies sent so far)

    def sample():
        samples.append((lab.now, len(lst.syn_queue), lab.server.stats["syncookies_sent"]))
        if lab.now < WINDOW:
            lab.at(lab.now + 0.05, sample)
    lab.at(0.0, sample)

    def on_accept(s):
        def hook():
            if bytes(s.received) == REQUEST and not s.sent:
                s.send(REPLY)
                s.close()
        lab.hooks.append(hook)
    srv.on_accept = on_accept
    box = {}

    def legit():
        c = box["c"] = lab.connect(80)
        c.send(REQUEST)

    def client_closes():
        c = box.get("c")
        if c is not None and c.eof and c.state is State.CLOSE_WAIT:
            c.close()
    lab.hooks.append(client_closes)
    lab.at(LEGIT_AT, legit)
    lab.run_until(lambda: "c" in box and box["c"].state in (State.CLOSED, State.TIME_WAIT), limit=60)
    lab.run_for(max(WINDOW - lab.now, 0.0) + 0.05)
    c = box["c"]
    lab.draw = str(c.conn.id)
    return lab, srv, c, samples


def _queue_figure(lab, c, samples, cookies: str):
    syns = [r.t for r in lab.sent(c, flags="S")]

    def draw(path: Path) -> None:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(11, 6), dpi=100)
        ax.axhline(SYN_BACKLOG, color="#888", linestyle=":", linewidth=2.5,
                   label=f"queue limit (syn_backlog = {SYN_BACKLOG})")
        ax.step([t for t, _, _ in samples], [q for _, q, _ in samples], where="post", color="#1f4e9c",
                linewidth=1.6, label="half-open connections in the SYN queue")
        ax.axvspan(ATTACK[0], min(ATTACK[1], WINDOW), color="#f5b7b1", alpha=0.25,
                   label=f"flood: {RATE:g} spoofed SYNs/s")
        for k, t in enumerate(syns):
            ax.axvline(t, color="#27ae60", linewidth=1.2, label="the real client's SYNs" if k == 0 else None)
        mark_y = SYN_BACKLOG * 1.25
        for e in lab.events_of(c, ev.Connected):
            ax.plot([e.t], [mark_y], "o", color="#27ae60", markersize=9, label="the client connected")
            ax.annotate(f"connected at {e.t:.2f} s", (e.t, mark_y), xytext=(8, -4), textcoords="offset points",
                        fontsize=9, color="#1e8449")
        for e in lab.events_of(c, ev.TimedOut):
            ax.plot([e.t], [mark_y], "X", color="#c0392b", markersize=10, label="the client gave up (timed out)")
            ax.annotate(f"timed out at {e.t:.0f} s", (e.t, mark_y), xytext=(8, -4), textcoords="offset points",
                        fontsize=9, color="#922b21")
        ax.set_ylim(0, SYN_BACKLOG * 1.5)
        ax.set_xlim(0, WINDOW)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("SYN queue occupancy")
        handles, names = ax.get_legend_handles_labels()
        if cookies != "off":
            ax2 = ax.twinx()
            ax2.step([t for t, _, _ in samples], [k for _, _, k in samples], where="post", color="#d68910",
                     linewidth=1.2, label="SYN cookies sent (cumulative, right axis)")
            ax2.set_ylim(0, max(k for _, _, k in samples) * 1.5)
            ax2.set_ylabel("SYN cookies sent")
            h2, n2 = ax2.get_legend_handles_labels()
            handles, names = handles + h2, names + n2
        ax.set_title(f"SYN flood against port 80, SYN cookies {cookies}", fontsize=11)
        ax.grid(True, alpha=0.3)
        ax.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=9)
        fig.tight_layout()
        fig.savefig(path, format="png")
        plt.close(fig)
    lab.figures["syn-queue.png"] = draw


@scenario(SCENARIOS, "syn-flood-no-cookies", group="syn-flood", title="SYN flood, SYN cookies off", teaching="""
    Spoofed SYNs, ten a second, from addresses that never answer fill the listener's SYN queue
    with half-open connections, each held for four minutes of SYN-ACK retransmissions. With SYN
    cookies off the server drops every new SYN while the queue is full, the real client's
    included: it retries at 1, 2 and 4 s and gives up, timed out.""")
def syn_flood_no_cookies(new_lab) -> None:
    lab, srv, c, samples = _flood(new_lab, "off")
    _queue_figure(lab, c, samples, "off")
    check(max(q for _, q, _ in samples) == SYN_BACKLOG, "the flood filled the SYN queue")
    check(lab.server.stats["syn_queue_full"] > 100, f"SYNs dropped: {lab.server.stats['syn_queue_full']}")
    check(len(lab.sent(c, flags="S")) == 4, f"the client sent its SYN four times, got {len(lab.sent(c, flags='S'))}")
    check(lab.events_of(c, ev.TimedOut) and c.state is State.CLOSED, "the client's connect timed out")
    check(not lab.arrived(c), "the client never heard from the server")
    check(srv.first is None, "the server never accepted a connection")
    lab.notes.append(f"{lab.server.stats['syn_queue_full']} SYNs dropped, client timed out")


@scenario(SCENARIOS, "syn-flood-cookies", group="syn-flood", title="SYN flood, SYN cookies on", teaching="""
    The same flood with SYN cookies on (RFC 4987 §3.6): once the SYN queue is full, the server
    answers each SYN with a SYN-ACK whose ISN encodes the connection and keeps no state at all.
    Only a real client returns the ACK, from which the server rebuilds the connection: it is
    served at once while the queue stays full.""", source="pcap")
def syn_flood_cookies(new_lab) -> None:
    lab, srv, c, samples = _flood(new_lab, "on")
    _queue_figure(lab, c, samples, "on")
    check(max(q for _, q, _ in samples) == SYN_BACKLOG, "the flood filled the SYN queue")
    check(lab.server.stats["syncookies_sent"] > 100, f"cookies sent: {lab.server.stats['syncookies_sent']}")
    check(lab.server.stats["syncookies_recv"] == 1, "exactly one cookie came back: the real client's")
    check(len(lab.sent(c, flags="S")) == 1, "the client's first SYN was answered")
    check(bytes(c.received) == REPLY, "the client was served")
    check(abs(lab.events_of(c, ev.Connected)[0].t - LEGIT_AT - 0.020) < 0.005, "connected one RTT after its SYN")
    lab.notes.append(f"{lab.server.stats['syncookies_sent']} cookies sent, client served")


__all__ = ["SCENARIOS", "SharedLink"]
