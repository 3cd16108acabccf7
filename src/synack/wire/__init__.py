"""Wire formats: bytes <-> immutable values. No state, no I/O."""

from synack.wire.errors import WireError

__all__ = ["WireError"]
