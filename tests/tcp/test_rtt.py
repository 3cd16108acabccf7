"""RFC 6298 RTO computation."""

import pytest
from hypothesis import given, strategies as st

from synack.tcp.rtt import RttEstimator


def test_before_any_sample():
    r = RttEstimator()
    assert r.srtt is None and r.rttvar is None
    assert r.rto == r.base_rto == 1.0                     # §2.1
    assert r.backoff_count == 0


def test_first_and_second_sample_worked_numbers():
    r = RttEstimator(min_rto=0.0)
    r.sample(0.5)                                         # §2.2
    assert r.srtt == 0.5 and r.rttvar == 0.25
    assert r.rto == pytest.approx(0.5 + 4 * 0.25)         # 1.5
    r.sample(0.3)                                         # §2.3, RTTVAR before SRTT
    assert r.rttvar == pytest.approx(0.75 * 0.25 + 0.25 * abs(0.5 - 0.3))   # 0.2375
    assert r.srtt == pytest.approx(0.875 * 0.5 + 0.125 * 0.3)               # 0.475
    assert r.rto == pytest.approx(0.475 + 4 * 0.2375)                       # 1.425
    r.sample(0.3)
    assert r.rttvar == pytest.approx(0.75 * 0.2375 + 0.25 * 0.175)
    assert r.srtt == pytest.approx(0.875 * 0.475 + 0.125 * 0.3)


def test_granularity_floor_on_the_variance_term():
    r = RttEstimator(min_rto=0.0, granularity=0.01)
    for _ in range(200):
        r.sample(0.1)                                     # RTTVAR decays towards 0
    assert r.rto == pytest.approx(0.1 + 0.01)             # §4: max(G, K*RTTVAR)


def test_min_and_max_clamps():
    r = RttEstimator()
    r.sample(0.01)
    assert r.rto == 1.0                                   # §2.4: rounded up to 1 s
    r = RttEstimator(min_rto=0.2)
    r.sample(0.01)
    assert r.rto == 0.2
    r = RttEstimator(max_rto=60.0)
    r.sample(100.0)                                       # 100 + 200 s
    assert r.rto == 60.0                                  # §2.5


def test_backoff_doubles_and_caps():
    r = RttEstimator(max_rto=60.0)
    seen = []
    for _ in range(8):
        r.backoff()                                       # §5.5, applies to the initial RTO too
        seen.append(r.rto)
    assert seen == [2, 4, 8, 16, 32, 60, 60, 60]
    assert r.backoff_count == 8
    assert r.base_rto == 1.0


def test_sample_clears_backoff():
    r = RttEstimator()
    r.sample(0.5)
    r.backoff()
    r.backoff()
    assert r.rto == pytest.approx(6.0)
    r.sample(0.5)                                         # RTO "collapses" (note after §5.7)
    assert r.backoff_count == 0
    assert r.rto == r.base_rto


def test_syn_timeout_reinitialises_to_three_seconds():
    r = RttEstimator()
    r.backoff()
    r.handshake_done(syn_timed_out=True)                  # §5.7
    assert r.rto == 3.0 and r.backoff_count == 0
    r = RttEstimator()
    r.handshake_done(syn_timed_out=False)
    assert r.rto == 1.0


def test_clear_restarts_from_the_first_sample_rule():
    r = RttEstimator()
    r.sample(0.2)
    r.sample(0.4)
    r.clear()
    r.sample(0.8)
    assert r.srtt == 0.8 and r.rttvar == 0.4


def test_bad_input():
    with pytest.raises(ValueError):
        RttEstimator().sample(-0.1)
    with pytest.raises(ValueError):
        RttEstimator(min_rto=2.0, max_rto=1.0)


@given(st.lists(st.one_of(st.floats(0, 100), st.none()), max_size=50))
def test_rto_always_within_bounds(events):
    r = RttEstimator(min_rto=0.2, max_rto=60.0)
    for e in events:
        if e is None:
            r.backoff()
        else:
            r.sample(e)
        assert 0.2 <= r.base_rto <= r.rto <= 60.0
