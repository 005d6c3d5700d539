"""A given-up `AsyncPenController.calibration_spin` at its edges (review 11a R04, R05).

- R05: a cancel that arrives as a spin ends must not stop the next caller's spin. Each spin
  now has its own stop (`spin_cancel()`), not the pen-wide `stop_spin()` count.
- R04: a second cancellation of the task that waits for the spin's stop (a nested wait_for, a
  TaskGroup, asyncio.run shutting down) no longer ends it before the needle has stopped.

The real simulator over pensim:// on its virtual clock; `delay_type=NEEDLE_STOP:S` makes the
pen see the stop S virtual seconds late, so "the needle still runs" is a state, not a race.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from tests.smpdevice.control.test_aio_spin_cancel import WAIT_S, _connect, _until
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


@pytest.mark.parametrize("cancels", [2, 3])
def test_a_spin_cancelled_again_completes_only_once_its_needle_is_stopped(cancels):
    with virtual_sim(seed=3, link_faults="delay_type=NEEDLE_STOP:0.15") as sim:
        async def scenario() -> tuple[FirmwareState, State]:
            apen = await _connect(sim)
            try:
                await apen.begin_calibration()
                task = asyncio.ensure_future(apen.calibration_spin(150.0, 30.0))
                await _until(lambda: sim.firmware.state is FirmwareState.RUNNING
                             or task.done(), "the needle running")
                assert not task.done()
                for _ in range(cancels):  # the later ones reach it while it waits for the stop
                    task.cancel()
                    for _ in range(5):
                        await asyncio.sleep(0)
                with pytest.raises(asyncio.CancelledError):
                    await task
                return sim.firmware.state, apen.state
            finally:
                await apen.close()

        pen_state, host_state = asyncio.run(scenario())
        assert pen_state is not FirmwareState.RUNNING, "cancelled while the needle still ran"
        assert host_state is State.CALIBRATING  # stopped and disarmed, still calibrating


def test_a_cancel_that_comes_as_a_spin_ends_leaves_the_next_callers_spin_alone():
    """The event loop is held (a plain wait in its thread) until spin A has ended and spin B,
    another task's, spins; then A's task, its result not yet delivered, is cancelled. B is
    measured: nobody gave it up."""
    with virtual_sim(seed=3) as sim:
        async def scenario() -> object:
            apen = await _connect(sim)
            try:
                await apen.begin_calibration()
                a = asyncio.ensure_future(apen.calibration_spin(150.0, 0.4))
                b = asyncio.ensure_future(apen.calibration_spin(120.0, 0.6))
                await asyncio.sleep(0)
                await asyncio.sleep(0)  # both submitted to the call worker, A first
                phases = iter([True, False, True])  # A runs, A ended, B runs
                want = next(phases)
                end = time.monotonic() + WAIT_S
                while True:  # the loop thread held: A's result cannot reach its task
                    if (sim.firmware.state is FirmwareState.RUNNING) == want:
                        nxt = next(phases, None)
                        if nxt is None:
                            break
                        want = nxt
                    assert time.monotonic() < end, "spin B never began"
                    time.sleep(0.001)
                a.cancel()  # A gave up just as it ended
                with pytest.raises(asyncio.CancelledError):
                    await a
                try:
                    return await b
                except Exception as exc:  # the assertion names it
                    return exc
            finally:
                await apen.close()

        got = asyncio.run(scenario())
        assert isinstance(got, float), f"spin B, given up by nobody, ended with {got!r}"


def test_a_spin_cancel_token_stops_only_its_own_spin():
    """`spin_cancel()` set before a spin refuses it; another spin, with its own token, runs."""
    with virtual_sim(seed=3) as sim:
        async def scenario() -> tuple[BaseException | float, float]:
            apen = await _connect(sim)
            try:
                await apen.begin_calibration()
                mine, other = apen.pen.spin_cancel(), apen.pen.spin_cancel()
                mine.set()
                refused: BaseException | float
                try:
                    refused = await apen.call(apen.pen.calibration_spin, 150.0, 0.3,
                                              cancel=mine)
                except Exception as exc:  # the assertion names it
                    refused = exc
                ran = await apen.call(apen.pen.calibration_spin, 150.0, 0.3, cancel=other)
                return refused, ran
            finally:
                await apen.close()

        refused, ran = asyncio.run(scenario())
        assert "caller gave it up" in str(refused) and isinstance(ran, float)
