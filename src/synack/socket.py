"""``synack.socket``: the blocking ``socket`` API over a synack stack; port code by changing
``import socket`` to ``from synack import socket`` (after ``socket.use_stack(...)``).
"""

from synack.api.socket import *  # noqa: F401,F403
from synack.api.socket import __all__  # noqa: F401
