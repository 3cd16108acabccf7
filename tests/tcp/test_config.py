"""TcpConfig: the knobs that take one of a few words refuse anything else at construction."""

from __future__ import annotations

import pytest

from synack.tcp.config import TcpConfig


@pytest.mark.parametrize("name,good,bad", [
    ("syn_option_order", "freebsd", "bsd"),
    ("partial_ack_rto", "each", "every"),
    ("newreno_exit", "flight", "flightsize"),
    ("ecn", "on", "yes"),
])
def test_word_knobs_take_their_words_only(name, good, bad):
    assert getattr(TcpConfig(**{name: good}), name) == good
    assert getattr(TcpConfig().copy(**{name: good}), name) == good
    with pytest.raises(ValueError, match=f"TcpConfig.{name} must be one of .* not {bad!r}"):
        TcpConfig(**{name: bad})
    with pytest.raises(ValueError, match=f"TcpConfig.{name}"):
        TcpConfig().copy(**{name: bad})
