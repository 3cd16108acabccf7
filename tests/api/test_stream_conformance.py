"""check_stream (STYLE §7) on synack<->synack over a DgramLink pair, and on kernel<->kernel over
127.0.0.1 as the control: if the kernel fails a check, the check is wrong."""

from __future__ import annotations

import pytest

from synack.tcp.config import TcpConfig
from synack.testing.streams import CHECKS, DEFAULT_SEED, kernel_pair, run_check

from api_helpers import AioPair, run_async

SMALL = TcpConfig(rcv_buf=4096, snd_buf=4096)


def _synack_window_is_closed(pair):
    (_, wa), (rb, _) = pair
    sender = wa.get_extra_info("synack_connection")
    receiver = rb._transport.get_extra_info("synack_connection")
    assert receiver.rcv_wnd == 0, receiver.info()
    assert sender.snd_wnd == 0, sender.info()


@pytest.mark.parametrize("check", [*CHECKS, "backpressure"])
@pytest.mark.parametrize("impl", ["synack", "kernel"])
@run_async
async def test_check_stream(impl, check):
    print(f"seed {DEFAULT_SEED}")
    kw = {"size": 256 * 1024} if check == "backpressure" else {}
    if impl == "kernel":
        if check == "backpressure":
            async def make():
                return await kernel_pair(bufsize=4096, limit=1024, high_water=4096)
        else:
            make = kernel_pair
        await run_check(check, make, **kw)
        return
    pair = AioPair(config=SMALL if check == "backpressure" else None,
                   limit=1024 if check == "backpressure" else 2 ** 16)
    if check == "backpressure":
        kw["on_stalled"] = _synack_window_is_closed
    try:
        await run_check(check, pair.streams, **kw)
    finally:
        pair.close()
