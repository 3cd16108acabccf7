"""Fixtures for the adapter tests; helpers live in api_helpers.py."""

from __future__ import annotations

import pytest

from api_helpers import make_stacks
from synack.api.aio import AsyncStack


@pytest.fixture
def threaded_stacks():
    """A and B each on a private loop thread (the socket API's setting)."""
    a, b, la, lb = make_stacks()
    A, B = AsyncStack.start_thread(a, la, "synack-A"), AsyncStack.start_thread(b, lb, "synack-B")
    yield A, B
    A.close()
    B.close()
    la.close()
    lb.close()
