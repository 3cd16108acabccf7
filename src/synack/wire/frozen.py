"""A faster ``__init__`` for the frozen, slotted dataclasses made per segment.

A frozen dataclass's generated ``__init__`` stores each field with
``object.__setattr__(self, name, value)``: a global lookup, an attribute lookup and a call that
looks the slot up by name, per field. The segment path makes several such values per segment
(``TcpSegment``, ``Timestamps``, the connection's events), and a close-mode HTTP request around
twenty, where their construction was ~7 % of the stack's time. ``fast_init`` gives the class an
``__init__`` that stores through the slots' member descriptors instead (``descriptor.__set__``
writes the slot directly, without the name lookup): the same arguments, defaults, values and
frozenness (assignment after construction still raises ``FrozenInstanceError``), about 40 %
less time per object.

``maker(cls)`` is faster still, for the call sites that build such values per segment: a plain
function with the same parameters that returns an instance of ``cls`` without the class call
(``type.__call__`` and its ``__init__`` lookup) and without a call per field. It fills a
*twin* class -- the same ``__slots__`` (so the same memory layout) but not frozen -- with
ordinary attribute stores, then assigns ``__class__ = cls``: Python allows ``__class__``
assignment between classes of the same layout, and what comes out is an ordinary ``cls``
instance (``type(v) is cls``, equal and hashing as the class says, frozen from then on).
About a third of the time of ``cls(...)`` through ``fast_init``'s ``__init__``.
"""

from __future__ import annotations

import dataclasses


def fast_init(cls: type) -> type:
    """Class decorator, applied after ``@dataclass(frozen=True, slots=True)``. Only for classes
    whose fields are plain (no ``default_factory``, ``init=False``, ``kw_only`` or
    ``__post_init__``): anything else is refused, not silently changed."""
    fields = dataclasses.fields(cls)
    if not fields:
        return cls
    if hasattr(cls, "__post_init__") or "__slots__" not in cls.__dict__:
        raise TypeError(f"fast_init: {cls.__name__} needs slots and no __post_init__")
    if cls.__bases__ != (object,):      # (the maker's twin has the layout of a direct subclass of object)
        raise TypeError(f"fast_init: {cls.__name__} must derive from object only")
    ns: dict = {}
    params, body = [], []
    for f in fields:
        if f.default_factory is not dataclasses.MISSING or not f.init or f.kw_only:
            raise TypeError(f"fast_init: field {cls.__name__}.{f.name} is not a plain field")
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            ns[f"_d_{f.name}"] = f.default
            params.append(f"{f.name}=_d_{f.name}")
        ns[f"_s_{f.name}"] = cls.__dict__[f.name].__set__     # the slot's member descriptor
        body.append(f"    _s_{f.name}(self, {f.name})")
    src = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n"
    exec(src, ns)                                              # noqa: S102 - generated from field names
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
    # the twin and the maker (see the module docstring)
    twin = type(f"_{cls.__name__}Twin", (), {"__slots__": cls.__slots__})
    ns["_twin"], ns["_cls"], ns["_new"] = twin, cls, object.__new__
    stores = "".join(f"    v.{f.name} = {f.name}\n" for f in fields)
    src = (f"def make(" + ", ".join(params) + "):\n    v = _new(_twin)\n" + stores
           + "    v.__class__ = _cls\n    return v\n")
    exec(src, ns)                                              # noqa: S102 - generated from field names
    make = ns["make"]
    make.__qualname__ = make.__name__ = f"make_{cls.__name__}"
    make.__doc__ = f"``{cls.__name__}(...)``, built without the class call (synack.wire.frozen.maker)."
    _MAKERS[cls] = make
    return cls


_MAKERS: dict[type, object] = {}


def maker(cls: type):
    """The fast constructor of a ``fast_init`` class: ``maker(C)(*args)`` equals ``C(*args)``."""
    return _MAKERS[cls]


__all__ = ["fast_init", "maker"]
