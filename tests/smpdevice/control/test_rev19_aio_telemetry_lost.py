"""`AsyncPenController.telemetry()` after the link is lost, against the real simulator on
virtual time (a `disconnect@T` fault spec, docs/simulator.md): with `until_lost=True` the
reader is told (LinkLost, after the frames before it) instead of waiting forever; by default
the stream outlives the loss and goes on after `reconnect()` (the service's telemetry pump
reads it so), while `state_changes()` says the loss."""

from __future__ import annotations

import asyncio

import pytest

from simulators import PenSimulator
from simulators.clock import VirtualClock
from smpdevice.checks import InvalidArgument
from smpdevice.control import State
from smpdevice.control.aio import AsyncPenController, LinkLost
from smpdevice.link.wire import LinkError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import TimeDriver

WAIT_S = 60.0  # a safety net only: every wait below is on a condition
LOSS_AT_S = 0.5  # the simulator's port fails 0.5 s (pen time) after it started


@pytest.fixture
def sim():
    clock = VirtualClock()
    with PenSimulator(seed=3, clock=clock, link_faults=f"disconnect@{LOSS_AT_S}") as s, \
            TimeDriver(clock) as driver:
        s.advance(0.06)  # booted
        s.time = driver
        yield s


async def time_passes_until(sim: PenSimulator, predicate, what: str) -> None:
    """Virtual time runs (an idle pen's reports need it) until `predicate()`: 5 s at most."""
    await asyncio.to_thread(sim.time.wait_until, predicate, 5.0, what)


async def _connect(sim: PenSimulator) -> AsyncPenController:
    return await AsyncPenController.connect(sim.url, calibration=true_calibration(sim),
                                            clock=sim.clock)


async def _reconnect(sim: PenSimulator, pen: AsyncPenController) -> None:
    sim.reconnect()  # the cable back in
    await pen.call(pen.pen.reconnect)
    assert pen.state is State.IDLE


def test_until_lost_raises_link_lost_after_the_frames_before_it(sim):
    async def main() -> None:
        pen = await _connect(sim)
        try:
            frames = []
            clock = asyncio.ensure_future(time_passes_until(
                sim, lambda: pen.state is State.DISCONNECTED, "the link lost"))
            with pytest.raises(LinkLost) as lost:
                async for t in pen.telemetry(until_lost=True):
                    frames.append(t)
            await clock
            assert isinstance(lost.value, LinkError) and "disconnected" in lost.value.reason
            assert "\n" not in str(lost.value) and "reconnect" in str(lost.value)
            assert len(frames) >= 10 and pen.state is State.DISCONNECTED
            with pytest.raises(LinkLost):  # a stream begun on a lost link: told at once
                await pen.telemetry(until_lost=True).__anext__()
            await _reconnect(sim, pen)
            stream = pen.telemetry(until_lost=True)
            first = asyncio.ensure_future(stream.__anext__())
            await time_passes_until(sim, first.done, "a frame after the reconnect")
            assert first.result().uptime_ms > 0
            await pen.call(pen.pen.close)  # the program's own close: the stream just ends
            assert [t async for t in stream if t is None] == []
        finally:
            await pen.close()

    asyncio.run(asyncio.wait_for(main(), WAIT_S))


def test_the_default_stream_outlives_the_loss_and_the_state_stream_says_it(sim):
    async def main() -> None:
        pen = await _connect(sim)
        try:
            lost = asyncio.Event()
            after: list = []
            enough = asyncio.Event()

            async def watch_states() -> None:
                async for _old, new, _reason in pen.state_changes():
                    if new is State.DISCONNECTED:
                        lost.set()
                        return

            async def read() -> None:  # as the service's pump reads: no until_lost
                async for t in pen.telemetry():
                    if lost.is_set() and pen.state is State.IDLE:
                        after.append(t)
                        if len(after) >= 5:
                            enough.set()

            states = asyncio.ensure_future(watch_states())
            reader = asyncio.ensure_future(read())
            await time_passes_until(sim, lambda: states.done(), "the loss told")
            assert lost.is_set() and not reader.done()  # waiting on, not ended by the loss
            await _reconnect(sim, pen)
            await time_passes_until(sim, enough.is_set, "frames after the reconnect")
            assert not reader.done()
            reader.cancel()
        finally:
            await pen.close()

    asyncio.run(asyncio.wait_for(main(), WAIT_S))


def test_until_lost_is_a_bool():
    async def main() -> None:
        with pytest.raises(InvalidArgument, match="until_lost"):
            await AsyncPenController.__new__(AsyncPenController).telemetry(
                until_lost="yes").__anext__()

    asyncio.run(main())
