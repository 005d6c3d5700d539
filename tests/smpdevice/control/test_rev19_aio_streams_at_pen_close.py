"""Review 19 (fix3): docs/integration.md: "Either stream ends quietly at `close()`
(`apen.close()` or the controller's own `pen.close()`), also one begun after it."
`AsyncPenController.telemetry()` and `.state_changes()` hung after the controller's own
`pen.close()` (only `telemetry(until_lost=True)` looked at it), and on a controller closed
before the wrapper existed. Now every stream ends at the program's own close, whenever begun,
while a lost link still leaves the default streams waiting for the reconnect (the service's
telemetry pump reads so), and a closed pen reopened streams again."""

from __future__ import annotations

import asyncio

import pytest

from simulators import PenSimulator
from simulators.clock import VirtualClock
from smpdevice.control import PenController, State
from smpdevice.control.aio import AsyncPenController, LinkLost
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import TimeDriver

HANG_GUARD_S = 2.0  # only a guard against a hang: a stream that ends does so at once
WAIT_S = 60.0  # a safety net only: every wait below is on a condition
STREAMS = {
    "telemetry": lambda apen: apen.telemetry(),
    "telemetry_until_lost": lambda apen: apen.telemetry(until_lost=True),
    "state_changes": lambda apen: apen.state_changes(),
}


async def _items_if_it_ends(stream) -> list | None:
    """The stream's items if it ends (quietly) within the guard; None if it hangs."""
    items: list = []

    async def drain() -> None:
        async for item in stream:
            items.append(item)

    try:
        await asyncio.wait_for(drain(), HANG_GUARD_S)
    except TimeoutError:
        return None
    return items


@pytest.mark.parametrize("which", sorted(STREAMS))
def test_a_stream_begun_after_the_pens_own_close_ends(which):
    async def main() -> list | None:
        pen = PenController.connect("pensim://?clock=virtual")
        apen = AsyncPenController(pen)
        try:
            pen.close()  # the controller's own close
            return await _items_if_it_ends(STREAMS[which](apen))
        finally:
            await apen.close()

    assert asyncio.run(main()) == [], f"{which} begun after pen.close() never ended"


@pytest.mark.parametrize("which", sorted(STREAMS))
def test_a_stream_running_at_the_pens_own_close_ends(which):
    async def main() -> list | None:
        pen = PenController.connect("pensim://?clock=virtual")
        apen = AsyncPenController(pen)
        try:
            ended = asyncio.ensure_future(_items_if_it_ends(STREAMS[which](apen)))
            for _ in range(5):  # loop turns only: the stream registers its feed and waits
                await asyncio.sleep(0)
            await asyncio.to_thread(pen.close)  # the controller's own close
            return await ended
        finally:
            await apen.close()

    items = asyncio.run(main())
    assert items is not None, f"{which} running at pen.close() never ended"
    if which == "state_changes":  # the change to disconnected is told before the end
        assert items[-1] == (State.IDLE, State.DISCONNECTED, "closed")


@pytest.mark.parametrize("which", sorted(STREAMS))
def test_a_wrapper_around_a_controller_closed_before_it_ends_its_streams(which):
    async def main() -> list | None:
        pen = PenController.connect("pensim://?clock=virtual")
        pen.close()  # before any wrapper existed: none heard it
        apen = AsyncPenController(pen)
        try:
            return await _items_if_it_ends(STREAMS[which](apen))
        finally:
            await apen.close()

    assert asyncio.run(main()) == [], f"{which} of a wrapper made after pen.close() never ended"


@pytest.fixture
def sim():
    clock = VirtualClock()
    with PenSimulator(seed=3, clock=clock, link_faults="disconnect@0.5") as s, \
            TimeDriver(clock) as driver:
        s.advance(0.06)  # booted
        s.time = driver
        yield s


def test_a_lost_link_keeps_the_default_streams_and_a_reopened_pen_streams_again(sim):
    """Lost before the wrapper existed: not a close. The default streams wait on and carry
    the reconnect; the program's own close then ends them; reopened, new streams run."""
    async def main() -> None:
        pen = PenController(sim.url, calibration=true_calibration(sim), clock=sim.clock)
        await asyncio.to_thread(pen.open)
        await asyncio.to_thread(sim.time.wait_until, lambda: pen.state is State.DISCONNECTED,
                                5.0, "the link lost")
        apen = AsyncPenController(pen)
        try:
            with pytest.raises(LinkLost):  # until_lost: told at once, not ended quietly
                await apen.telemetry(until_lost=True).__anext__()
            frames: list = []
            changes: list = []

            async def read_frames() -> None:
                async for t in apen.telemetry():
                    frames.append(t)

            async def read_changes() -> None:
                async for change in apen.state_changes():
                    changes.append(change)

            readers = [asyncio.ensure_future(read_frames()),
                       asyncio.ensure_future(read_changes())]
            for _ in range(5):  # loop turns only: the streams register and wait
                await asyncio.sleep(0)
            assert not any(r.done() for r in readers)
            sim.reconnect()  # the cable back in
            await apen.call(pen.reconnect)
            await asyncio.to_thread(sim.time.wait_until, lambda: len(frames) >= 3, 5.0,
                                    "frames after the reconnect")
            assert not any(r.done() for r in readers)  # the loss ended neither
            assert (State.CONNECTING, State.IDLE, "connected") in changes
            await asyncio.to_thread(pen.close)  # the program's own close: both end
            await asyncio.wait_for(asyncio.gather(*readers), HANG_GUARD_S)
            assert changes[-1] == (State.IDLE, State.DISCONNECTED, "closed")
            await apen.call(pen.reconnect)  # reopened: a new stream is not ended by the close
            stream = apen.telemetry()
            first = asyncio.ensure_future(stream.__anext__())
            await asyncio.to_thread(sim.time.wait_until, first.done, 5.0, "a frame reopened")
            assert first.result().uptime_ms > 0
            await stream.aclose()
        finally:
            await apen.close()

    asyncio.run(asyncio.wait_for(main(), WAIT_S))
