"""Review 19 (fix2): docs/integration.md: `telemetry(until_lost=True)` raises LinkLost on a
lost link ("at once when the link is already lost"); "Either stream ends quietly at
close()". A stream begun after the controller's own close (`pen.close()`, CLOSED_BY_PROGRAM:
no lost pen) raises "link to the pen lost" instead: `telemetry()` looks at the state
(DISCONNECTED) and not at why. It now ends quietly when the disconnect was the program's
own close (CLOSED_BY_PROGRAM), as `lost_watch` does for a close during the stream."""

from __future__ import annotations

import asyncio

import pytest

from simulators import PenSimulator
from simulators.clock import VirtualClock
from smpdevice.control.aio import AsyncPenController
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import TimeDriver


@pytest.fixture
def sim():
    clock = VirtualClock()
    with PenSimulator(seed=3, clock=clock) as s, TimeDriver(clock) as driver:
        s.advance(0.06)
        s.time = driver
        yield s


def test_a_stream_begun_after_the_programs_own_close_ends_quietly(sim):
    async def main() -> list:
        pen = await AsyncPenController.connect(sim.url, calibration=true_calibration(sim),
                                               clock=sim.clock)
        try:
            await pen.call(pen.pen.close)  # the program's own close: no lost link
            return [t async for t in pen.telemetry(until_lost=True)]
        finally:
            await pen.close()

    assert asyncio.run(asyncio.wait_for(main(), 30)) == []

