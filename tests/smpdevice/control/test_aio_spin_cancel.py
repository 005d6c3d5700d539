"""A given-up `AsyncPenController.calibration_spin` is stopped, as every other given-up call is
undone (closing-7 leftover). Before, the cancellation returned at once and the needle went on
spinning off skin until the spin's `duration_s` (here 30 s). Now the spin is ended by its
own `spin_cancel()` token, and the cancellation completes only once the needle is stopped and
disarmed.

The real simulator over pensim:// byte streams, on its virtual clock: the 30 s spin would run
for 30 virtual seconds; the test looks for strokes over several virtual seconds after the
cancellation and asserts no timing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from smpdevice.control.aio import AsyncPenController
from tests.smpdevice.conftest import true_calibration

pytestmark = pytest.mark.virtual_time

WAIT_S = 30.0  # wall-clock bound on the conditions below: generous, 2 loaded cores
SPIN_HZ = 150.0
SPIN_S = 30.0


async def _until(predicate: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < end, f"{what} not reached"
        await asyncio.sleep(0.005)


async def _connect(sim) -> AsyncPenController:
    return await AsyncPenController.connect(sim.url, calibration=true_calibration(sim),
                                            lease_ms=200, clock=sim.clock)


def _running(sim) -> Callable[[], bool]:
    return lambda: sim.firmware.state is FirmwareState.RUNNING


async def _assert_stopped_for_good(apen: AsyncPenController, sim) -> None:
    """Right after the cancellation: the needle is stopped, and no stroke comes for seconds
    of virtual time (the old code spun on for the rest of its 30 s)."""
    assert sim.firmware.state is not FirmwareState.RUNNING
    assert apen.state is State.CALIBRATING
    await asyncio.to_thread(sim.time.sleep, 0.2)  # the motor comes to rest (tau 20 ms)
    before = apen.last_telemetry
    await asyncio.to_thread(sim.time.sleep, 3.0)  # virtual seconds, the host running
    after = apen.last_telemetry
    assert before is not None and after is not None and after is not before
    assert not after.needle_running and after.strokes == before.strokes, (before, after)
    assert sim.firmware.state is FirmwareState.IDLE  # stopped and disarmed


@pytest.mark.parametrize("how", ["cancel", "wait_for"])
def test_a_spin_given_up_while_it_runs_stops_the_needle_before_the_cancellation_ends(sim, how):
    async def scenario() -> None:
        async with await _connect(sim) as apen:
            await apen.begin_calibration()
            task = asyncio.ensure_future(apen.calibration_spin(SPIN_HZ, SPIN_S))
            await _until(lambda: _running(sim)() or task.done(), "the needle running")
            assert not task.done()
            if how == "cancel":
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            else:  # the caller's own limit passed: it gives up now
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(task, 0.001)
            await _assert_stopped_for_good(apen, sim)
            # the pen is usable at once: the next speed check measures
            measured = await apen.calibration_spin(SPIN_HZ, 0.5)
            assert abs(measured - SPIN_HZ) < 0.05 * SPIN_HZ
            await apen.end_calibration(None)
            assert apen.state is State.IDLE

    asyncio.run(scenario())


def test_a_spin_given_up_before_its_turn_never_starts_the_needle(sim):
    """Queued behind another call: given up, it is withdrawn (the needle never starts)."""
    async def scenario() -> None:
        async with await _connect(sim) as apen:
            await apen.begin_calibration()
            ran: list[bool] = []
            apen.pen.add_telemetry_listener(lambda t: ran.append(t.needle_running))
            # The pen's clock stands still until the spin is given up: a loop thread starved
            # past the blocker's 1 s of virtual time (a loaded machine) let the spin start
            # before its cancel, and the case under test never happened (a 1 s stall there
            # failed it every time). Nothing here waits on virtual time.
            with sim.time.held():
                blocker = asyncio.ensure_future(apen.call(apen.pen.pause, 1.0))  # virtual 1 s
                task = asyncio.ensure_future(apen.calibration_spin(SPIN_HZ, SPIN_S))
                await asyncio.sleep(0)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            await blocker
            await asyncio.to_thread(sim.time.sleep, 1.0)
            assert ran and not any(ran)
            assert sim.firmware.state is FirmwareState.IDLE
            await apen.end_calibration(None)

    asyncio.run(scenario())
