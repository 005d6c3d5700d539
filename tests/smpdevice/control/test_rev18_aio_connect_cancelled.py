"""Review 18: `AsyncPenController.connect` given up by its caller (a task cancelled, a
`wait_for` timing out) waits for the handshake and closes what it connected: the port is free
for the next try, and the cancellation reaches the caller."""

from __future__ import annotations

import asyncio

import pytest

from simulators import PenSimulator
from smpdevice.control import PenController, State
from smpdevice.control.aio import AsyncPenController


async def connect_cancelled(url: str, *, after_yields: int) -> AsyncPenController | None:
    task = asyncio.create_task(AsyncPenController.connect(url))
    for _ in range(after_yields):
        await asyncio.sleep(0)
    task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        return None


@pytest.mark.parametrize("after_yields", [0, 1, 3])
def test_a_connect_given_up_leaves_the_port_free(after_yields):
    with PenSimulator(seed=7) as sim:
        held = asyncio.run(connect_cancelled(sim.url, after_yields=after_yields))
        if held is not None:  # connected before the cancel landed: the caller holds it
            asyncio.run(held.close())
        pen = PenController.connect(sim.url)  # the caller tries again
        try:
            assert pen.state is State.IDLE
        finally:
            pen.close()


def test_a_connect_timed_out_by_wait_for_leaves_the_port_free():
    async def timed_out(url: str) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(AsyncPenController.connect(url), timeout=0.001)
        pen = await AsyncPenController.connect(url)  # the next try gets the port
        assert pen.state is State.IDLE
        await pen.close()

    with PenSimulator(seed=7) as sim:
        asyncio.run(timed_out(sim.url))
