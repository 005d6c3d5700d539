"""Review 19 (extra): `AsyncPenController.start_needle` holds what the blocking one does: a start
decided for one zone never runs in another, one decided before a stop, an E-stop, a fault or a
lost link never goes out (cleared since or not), and, by default, a stop asked while the start
waits its turn behind another call wins over it (docs/integration.md, "Driving the needle").
Real simulator on its virtual clock; the event loop's moments are held facts (a call that
blocks the worker until released), never a passing state."""

from __future__ import annotations

import asyncio
import threading

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from smpdevice.control.aio import AsyncPenController
from smpdevice.control.states import StartOvertaken, StateError
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

WAIT_S = 20.0  # a hung call fails the test instead of hanging it (2 loaded cores)


def _scenario(body) -> None:
    with virtual_sim(seed=3) as sim:
        async def main() -> None:
            apen = await AsyncPenController.connect(sim.url, calibration=true_calibration(sim),
                                                    clock=sim.clock)
            try:
                await apen.set_zone("crown")
                await apen.set_setpoints(**CROWN)
                await apen.arm()
                await asyncio.wait_for(body(apen, sim), WAIT_S)
            finally:
                await apen.close()

        asyncio.run(main())


def test_a_start_for_another_zone_than_the_one_in_force_is_refused():
    async def body(apen, sim):
        with pytest.raises(StateError, match="'hairline'.*'crown'"):
            await apen.start_needle(zone="hairline")
        assert apen.state is State.ARMED
        await apen.start_needle(zone="crown")
        assert apen.state is State.RUNNING
        await apen.stop_needle()

    _scenario(body)


def test_a_start_decided_before_an_estop_cleared_since_is_refused():
    async def body(apen, sim):
        decided = apen.pen.stops_asked
        await apen.estop()
        await apen.clear_faults()
        await apen.set_zone("crown")
        await apen.set_setpoints(**CROWN)
        await apen.arm()
        with pytest.raises(StartOvertaken, match="E-stop"):
            await apen.start_needle(unless_stopped_since=decided)
        assert apen.state is State.ARMED

    _scenario(body)


def test_a_stop_asked_while_the_start_waits_its_turn_wins():
    async def body(apen, sim):
        release = threading.Event()
        blocker = asyncio.ensure_future(apen.call(release.wait, WAIT_S))  # holds the worker
        start = asyncio.ensure_future(apen.start_needle())  # asked now, queued behind it
        for _ in range(5):
            await asyncio.sleep(0)  # the start's request is submitted (its first await)
        assert not start.done()
        await apen.stop_needle()  # its own lane: done while the start still waits
        release.set()
        assert await blocker
        with pytest.raises(StartOvertaken):
            await start
        assert apen.state is State.ARMED
        assert sim.firmware.state is not FirmwareState.RUNNING
        await apen.start_needle()  # asked after the stop: it runs
        assert apen.state is State.RUNNING
        await apen.stop_needle()

    _scenario(body)
