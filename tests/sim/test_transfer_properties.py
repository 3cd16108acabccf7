"""Two synack hosts on the simulated network, random application behaviour and random faults:
every byte arrives exactly once and in order both ways, both ends finish in CLOSED or
TIME-WAIT, and no timer is left armed once CLOSED."""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synack.sim.transfer import run_transfer
from synack.tcp.states import State

EXAMPLES = int(os.environ.get("SYNACK_PROPERTY_EXAMPLES", "500"))


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1),
       size_ab=st.integers(0, 30_000), size_ba=st.integers(0, 30_000),
       loss=st.sampled_from([0.0, 0.01, 0.05, 0.1]),
       dup=st.sampled_from([0.0, 0.02, 0.05]),
       reorder=st.sampled_from([0.0, 0.02, 0.1]),
       corrupt=st.sampled_from([0.0, 0.01]),
       delay=st.sampled_from([0.0005, 0.01, 0.1]),
       max_chunk=st.sampled_from([1, 100, 1500, 8000]))
def test_every_byte_arrives_once_in_order(seed, size_ab, size_ba, loss, dup, reorder, corrupt, delay, max_chunk):
    if max_chunk == 1:       # byte-at-a-time writes: keep those runs short
        size_ab, size_ba = size_ab // 20, size_ba // 20
    r = run_transfer(seed, size_ab, size_ba, loss=loss, dup=dup, reorder=reorder, corrupt=corrupt,
                     delay=delay, max_chunk=max_chunk)
    assert r.ok, f"seed {seed}: {r.message}"
    assert r.a_state in (State.CLOSED, State.TIME_WAIT) and r.b_state in (State.CLOSED, State.TIME_WAIT)
    for conn in r.connections:
        if conn.state is State.CLOSED:
            assert conn.next_timer() is None, f"seed {seed}: timer armed in CLOSED: {conn.timers}"


def test_ten_megabytes_under_loss_and_reordering():
    """The issue's yardstick: 10 MB under 5 % loss + reordering, byte-exact."""
    r = run_transfer(7, 10_000_000, 0, loss=0.05, reorder=0.05, delay=0.005, bandwidth=100e6,
                     queue_limit=1000, max_chunk=65536)
    assert r.ok, r.message
    assert r.retransmits > 0
