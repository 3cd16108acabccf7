"""Running ``async def`` tests without a plugin: ``asyncio.run`` with a time bound."""

from __future__ import annotations

import asyncio
import functools


def bounded_run(timeout: float):
    """Decorator factory: ``@bounded_run(20.0)`` runs an ``async def`` test with ``asyncio.run``,
    failing with ``TimeoutError`` if it takes longer than ``timeout`` seconds."""
    def decorate(coro_fn):
        @functools.wraps(coro_fn)
        def wrapper(*args, **kwargs):
            async def bounded():
                async with asyncio.timeout(timeout):
                    return await coro_fn(*args, **kwargs)
            return asyncio.run(bounded())
        return wrapper
    return decorate


__all__ = ["bounded_run"]
