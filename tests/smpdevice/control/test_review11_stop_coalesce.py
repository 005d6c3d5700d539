"""Review 11 B2: `AsyncPenController.stop_needle()` is idempotent, so a flood of stops never
builds a backlog on the stop lane. A stop that comes while another is queued and has not begun
shares that run; one that comes while a run is under way queues (at most) one more. Each
caller's run began after it asked; a caller cancelled meanwhile still sees the stop run (its
CancelledError comes once the run has ended), and its cancellation never cancels the run the
others share.

Real simulated pen over real bytes; the controller is a subclass that counts its `stop_needle`
runs and can hold the first one at its start, so the "run under way" is deterministic (no
timing races). The pen is on a clock its controller drives (`pensim://?clock=virtual`'s): at
the wall's pace while nobody waits on it, never ahead of a host a loaded machine stalls, so the
running needle's lease cannot lapse while the first stop is held."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from simulators import PenSimulator, VirtualClock
from smpdevice.control import PenController, State
from smpdevice.control.aio import AsyncPenController
from tests.smpdevice.conftest import CROWN, true_calibration

WAIT_S = 30.0  # generous: 2 loaded cores; every wait ends on a condition
FLOOD = 50


class CountingPen(PenController):
    """A real controller that records when each `stop_needle` run begins and ends, and holds
    the first run at its start until `release` is set."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.begun_s: list[float] = []
        self.ended_s: list[float] = []
        self.first_begun = threading.Event()
        self.release = threading.Event()

    def stop_needle(self) -> None:
        self.begun_s.append(time.monotonic())
        if len(self.begun_s) == 1:
            self.first_begun.set()
            assert self.release.wait(WAIT_S), "the test never released the first stop"
        try:
            super().stop_needle()
        finally:
            self.ended_s.append(time.monotonic())


@pytest.fixture
def pen():
    with PenSimulator(seed=5, clock=VirtualClock(host_driven=True)) as sim:
        pen = CountingPen(sim.url, calibration=true_calibration(sim), lease_ms=1000)
        pen.open()
        try:
            pen.set_zone("crown")
            pen.set_setpoints(**CROWN)
            pen.arm()
            pen.start_needle()
            yield pen
        finally:
            pen.release.set()
            pen.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, WAIT_S * 2))


def test_a_flood_of_stops_runs_stop_needle_at_most_twice_and_answers_every_one(pen):
    async def main() -> None:
        apen = AsyncPenController(pen)
        arrived_s: list[float] = []

        async def stop() -> None:
            arrived_s.append(time.monotonic())
            await apen.stop_needle()

        first = asyncio.ensure_future(stop())
        assert await asyncio.to_thread(pen.first_begun.wait, WAIT_S)  # a run under way
        flood = [asyncio.ensure_future(stop()) for _ in range(FLOOD)]
        while len(arrived_s) < FLOOD + 1:  # every stop of the flood has asked
            await asyncio.sleep(0)
        pen.release.set()
        results = await asyncio.gather(first, *flood, return_exceptions=True)
        assert results == [None] * (FLOOD + 1)  # every caller answered, none failed
        assert len(pen.begun_s) == 2, f"{len(pen.begun_s)} stop_needle runs for {FLOOD + 1} stops"
        assert pen.begun_s[1] > max(arrived_s[1:])  # the shared run began after they all asked
        assert pen.state is State.ARMED  # the needle stopped
        await apen.close()

    run(main())


def test_a_stop_after_the_shared_run_began_gets_a_run_of_its_own(pen):
    async def main() -> None:
        apen = AsyncPenController(pen)
        first = asyncio.ensure_future(apen.stop_needle())
        assert await asyncio.to_thread(pen.first_begun.wait, WAIT_S)
        second = asyncio.ensure_future(apen.stop_needle())
        await asyncio.sleep(0)  # asked while the first runs: one more run queued
        pen.release.set()
        await asyncio.gather(first, second)
        third = asyncio.ensure_future(apen.stop_needle())  # after both ended: a run of its own
        await third
        assert len(pen.begun_s) == 3
        assert len(pen.ended_s) == 3
        await apen.close()

    run(main())


def test_a_sharer_cancelled_still_sees_the_stop_run_and_the_others_keep_it(pen):
    async def main() -> None:
        apen = AsyncPenController(pen)
        first = asyncio.ensure_future(apen.stop_needle())
        assert await asyncio.to_thread(pen.first_begun.wait, WAIT_S)
        sharers = [asyncio.ensure_future(apen.stop_needle()) for _ in range(3)]
        await asyncio.sleep(0)  # all three share the queued run
        ends_seen: list[int] = []
        sharers[0].add_done_callback(lambda _: ends_seen.append(len(pen.ended_s)))
        sharers[0].cancel()
        await asyncio.sleep(0)
        assert not sharers[0].done()  # cancelled, it waits for the stop it asked for
        pen.release.set()
        results = await asyncio.gather(first, *sharers, return_exceptions=True)
        assert isinstance(results[1], asyncio.CancelledError)
        assert results[0] is None and results[2:] == [None, None]
        assert len(pen.begun_s) == 2  # the shared run was not cancelled with its sharer
        assert ends_seen == [2]  # the cancellation came once the shared run had ended
        await apen.close()

    run(main())
