"""A given-up `AsyncPenController.calibration_spin` at its edges (review 11a R04, R05).

- R05: a cancel that arrives as a spin ends must not stop the next caller's spin. Each spin
  now has its own stop (`spin_cancel()`), not the pen-wide `stop_spin()` count.
- R04: a second cancellation of the task that waits for the spin's stop (a nested wait_for, a
  TaskGroup, asyncio.run shutting down) no longer ends it before the needle has stopped.

The real simulator over pensim:// on its virtual clock; `delay_type=NEEDLE_STOP:S` makes the
pen see the stop S virtual seconds late, so "the needle still runs" is a state, not a race.
The event loop's thread is not one the clock's driver waits for (virtual time moves while it
runs), so a moment the test acts in is held on the clock (`sim.time.held()`), or found by facts
that stay true (a count), never by catching a passing state.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from smpdevice.control.aio import AsyncPenController
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.control.test_aio_spin_cancel import WAIT_S, _connect, _until
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

# The lease is not the subject here: the pen's longest, so a stop seen 0.15 s late always
# comes within it, whatever the renewal's phase when the stop began (with 200 ms it lapsed
# first, the pen latched LEASE_EXPIRED, when the host was slow between the cancel and the stop).
LONG_LEASE_MS = 2000


@pytest.mark.parametrize("cancels", [2, 3])
def test_a_spin_cancelled_again_completes_only_once_its_needle_is_stopped(cancels):
    with virtual_sim(seed=3, link_faults="delay_type=NEEDLE_STOP:0.15") as sim:
        async def scenario() -> tuple[FirmwareState, State, str]:
            apen = await AsyncPenController.connect(
                sim.url, calibration=true_calibration(sim), lease_ms=LONG_LEASE_MS,
                clock=sim.clock)
            try:
                await apen.begin_calibration()
                task = asyncio.ensure_future(apen.calibration_spin(150.0, 30.0))
                await _until(lambda: sim.firmware.state is FirmwareState.RUNNING
                             or task.done(), "the needle running")
                assert not task.done()
                with sim.time.held():  # the pen sees the stop 0.15 s later: it still runs
                    for _ in range(cancels):  # the later ones reach it while it waits
                        task.cancel()
                        for _ in range(5):
                            await asyncio.sleep(0)
                    assert sim.firmware.state is FirmwareState.RUNNING
                    assert not task.done(), "the cancellation completed while the needle ran"
                with pytest.raises(asyncio.CancelledError):
                    await task
                return sim.firmware.state, apen.state, str(apen.pen.last_fault)
            finally:
                await apen.close()

        pen_state, host_state, fault = asyncio.run(scenario())
        assert pen_state is not FirmwareState.RUNNING, "cancelled while the needle still ran"
        # stopped and disarmed, still calibrating
        assert host_state is State.CALIBRATING, (host_state, fault)


def test_a_cancel_that_comes_as_a_spin_ends_leaves_the_next_callers_spin_alone():
    """The event loop is held (a plain wait in its thread) until spin A has ended and spin B,
    another task's, spins; then A's task, its result not yet delivered, is cancelled. B is
    measured: nobody gave it up. A call queued between the two marks A's end; the pen's
    impression count, which only grows, marks B's start."""
    with virtual_sim(seed=3) as sim:
        async def scenario() -> object:
            apen = await _connect(sim)
            try:
                await apen.begin_calibration()
                a_ended = threading.Event()
                mark: list[int] = []

                def between() -> None:  # in the call worker, after A, before B
                    mark.append(sim.firmware.impressions)  # the needle stopped: it stays
                    a_ended.set()

                a = asyncio.ensure_future(apen.calibration_spin(150.0, 0.4))
                between_done = asyncio.ensure_future(apen.call(between))
                # long, so that it still spins when A is cancelled, however slow the machine
                b = asyncio.ensure_future(apen.calibration_spin(120.0, 3.0))
                for _ in range(3):
                    await asyncio.sleep(0)  # all three submitted to the call worker, in order
                # the loop thread held from here: A's result cannot reach its task
                assert a_ended.wait(WAIT_S), "spin A never ended"
                end = time.monotonic() + WAIT_S
                while sim.firmware.impressions <= mark[0]:  # B's NEEDLE_START not yet seen
                    assert time.monotonic() < end, "spin B never began"
                    time.sleep(0.001)
                a.cancel()  # A gave up just as it ended
                with pytest.raises(asyncio.CancelledError):
                    await a
                await between_done
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
