"""Adapters that run a sans-IO ``Stack`` for applications (STYLE §9).

* ``synack.api.aio``: ``AsyncStack`` on an asyncio loop; asyncio streams, transports and servers.
* ``synack.api.socket``: the blocking ``socket`` API, on one private loop thread per stack.

``synack.asyncio`` and ``synack.socket`` re-export them under the names of the stdlib modules.
"""

from synack.api.aio import (AsyncConnection, AsyncListener, AsyncStack, SynackServer, SynackTransport,
                            open_connection, start_server)

__all__ = ["AsyncStack", "AsyncConnection", "AsyncListener", "SynackServer", "SynackTransport",
           "open_connection", "start_server"]
