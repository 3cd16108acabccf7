"""What a standard Reno sender can reach under random loss, next to the Mathis bound (not a test).

    python bench/reno_model.py [--loss 1 2] [--rounds 400000] [--seed 1]

Mathis et al. derive 1.22 * MSS / (RTT * sqrt(p)) from a fluid sawtooth: the window W falls to
W/2 the instant a loss happens and grows by one segment every round trip, always. A sender that
follows RFC 5681/6675/6937 differs from that in two ways, both modelled here, round trip by
round trip, under independent (Bernoulli) loss of each packet with probability p:

- whole segments: it sends floor(cwnd) segments a round, and halves to whole segments;
- a recovery round: the round trip after the one that lost data repairs the loss and sends,
  under PRR, about ssthresh segments, with no growth (RFC 5681 §3.2: cwnd grows again only after
  recovery). Losses in that round start the next reduction.

Several losses in one round make one reduction (SACK repairs them together), as in the
simulator. The four rows switch each difference on and off, so each one's cost shows; the last
row is the standard sender. p in the bound is the loss rate met, over every packet sent.
bench/cc.py runs synack itself on the simulated network; docs/congestion.md compares the two.
"""

from __future__ import annotations

import argparse
import math
import random


def model(p: float, *, whole: bool, recovery_round: bool, rounds: int, seed: int) -> tuple[float, float]:
    """(segments delivered per round trip, loss rate met) over ``rounds`` round trips. A fluid
    window of w segments sends floor(w) of them and one more with probability w - floor(w)."""
    rng = random.Random(seed)
    tally = [0, 0, 0]                 # segments sent, lost, round trips

    def round_trip(w: float) -> tuple[int, int]:
        """One round trip of a window of w segments: (sent, lost)."""
        n = int(w) + (not whole and rng.random() < w - int(w))
        k = sum(rng.random() < p for _ in range(n))
        tally[0] += n
        tally[1] += k
        tally[2] += 1
        return n, k

    w = 10.0
    pending_loss = False
    while tally[2] < rounds:
        n, k = round_trip(w)
        if k or pending_loss:
            w = max(n // 2 if whole else w / 2, 2)
            pending_loss = False
            if recovery_round:
                # the repair round: about ssthresh segments (the retransmissions among them)
                pending_loss = round_trip(w)[1] > 0
        else:
            w += 1
    sent, lost, t = tally
    delivered = sent - lost
    return delivered / t, lost / sent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loss", type=float, nargs="+", default=[0.1, 1, 2], help="loss %% (default 0.1 1 2)")
    ap.add_argument("--rounds", type=int, default=400_000, help="round trips per row (default 400000)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    if a.rounds < 1 or any(not 0 < x < 100 for x in a.loss):
        ap.error("--rounds must be positive and every --loss between 0 and 100 (exclusive)")
    print("| loss % | whole segments | recovery round | segments / RTT | loss met % | Mathis bound | ratio |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for pct in a.loss:
        for whole, rec in ((False, False), (True, False), (False, True), (True, True)):
            rate, met = model(pct / 100, whole=whole, recovery_round=rec, rounds=a.rounds, seed=a.seed)
            bound = 1.22 / math.sqrt(met)
            print(f"| {pct:g} | {'yes' if whole else 'no'} | {'yes' if rec else 'no'} | {rate:.2f} | "
                  f"{met * 100:.3f} | {bound:.2f} | {rate / bound:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
