"""Congestion control: a plain name-to-class table (no side-effect imports).

    cc = congestion.get(config.cc)(mss=1460)

``register`` is also a class decorator for third-party algorithms; the built-in ones are
imported and registered explicitly below, so ``available()`` never depends on import order.
"""

from __future__ import annotations

from synack.tcp.congestion.base import INFINITE_SSTHRESH, CongestionControl, initial_window
from synack.tcp.congestion.cubic import Cubic
from synack.tcp.congestion.reno import Reno

__all__ = ["CongestionControl", "Cubic", "INFINITE_SSTHRESH", "Reno", "available", "get",
           "initial_window", "make", "register"]

_REGISTRY: dict[str, type[CongestionControl]] = {}


def register(cls: type[CongestionControl]) -> type[CongestionControl]:
    """Register ``cls`` under ``cls.name`` and each of ``cls.aliases``; returns ``cls``.

    Raises ``ValueError`` if the class has no name or a name is taken by a different class.
    """
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no 'name'")
    names = (cls.name, *cls.aliases)
    for n in names:
        other = _REGISTRY.get(n)
        if other is not None and other is not cls:
            raise ValueError(f"congestion control {n!r} is already {other.__qualname__}")
    for n in names:
        _REGISTRY[n] = cls
    return cls


def get(name: str) -> type[CongestionControl]:
    """The class registered as ``name``; ``KeyError`` naming the available ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown congestion control {name!r}; available: "
                       f"{', '.join(available())}") from None


def make(config, mss: int) -> CongestionControl:
    """A new controller for a connection with ``config`` (a ``TcpConfig``): its ``cc`` by name,
    with ``cc_options`` as keyword arguments; ``ValueError`` for an option the class does not take."""
    cls = _REGISTRY.get(config.cc) or get(config.cc)     # (get() only to name what is there)
    # (no options, the usual case made per connection: the same call without the dict and **)
    options = dict(config.cc_options) if config.cc_options else None
    try:
        if options is None:
            return cls(mss, config.initial_window, hystart=config.hystart)
        return cls(mss, config.initial_window, hystart=config.hystart, **options)
    except TypeError as e:
        raise ValueError(f"congestion control {config.cc!r} does not take the options {sorted(options or {})}: {e}") from None


def available() -> list[str]:
    """Every registered name, aliases included, sorted."""
    return sorted(_REGISTRY)


register(Reno)
register(Cubic)
