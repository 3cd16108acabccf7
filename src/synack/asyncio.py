"""``synack.asyncio``: the asyncio streams API over a synack stack.

    from synack import asyncio as sasyncio
    reader, writer = await sasyncio.open_connection("192.0.2.2", 80, stack=astack)
    server = await sasyncio.start_server(handle, "192.0.2.1", 8080, stack=astack)

The readers and writers are the standard ``asyncio.StreamReader`` / ``StreamWriter``.
"""

from synack.api.aio import (AsyncConnection, AsyncListener, AsyncStack, SynackServer, SynackTransport,
                            open_connection, start_server)

__all__ = ["open_connection", "start_server", "AsyncStack", "AsyncConnection", "AsyncListener",
           "SynackServer", "SynackTransport"]
