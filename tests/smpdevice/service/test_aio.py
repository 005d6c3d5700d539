"""The asyncio seam over the real simulator (pensim://): awaitables, streams, stops first."""

from __future__ import annotations

import asyncio
import threading

import pytest

from simulators import PenSimulator, VirtualClock
from smpdevice.checks import InvalidArgument
from smpdevice.control import State
from smpdevice.control.aio import AsyncPenController
from smpdevice.errors import SmpError
from tests.smpdevice.conftest import CROWN, true_calibration

WAIT_S = 20.0  # generous: 2 loaded cores


@pytest.fixture
def sim():
    # on a clock the controller drives (docs/simulator.md "Virtual time"): a loaded machine
    # cannot starve the pen past its 300 ms lease or a request's four tries, as on the wall
    with PenSimulator(seed=11, clock=VirtualClock(host_driven=True)) as s:
        yield s


async def _connect(sim: PenSimulator) -> AsyncPenController:
    return await AsyncPenController.connect(sim.url, calibration=true_calibration(sim),
                                            lease_ms=300)


async def _run_needle(pen: AsyncPenController) -> None:
    await pen.set_zone("crown")
    await pen.set_setpoints(**CROWN)
    await pen.arm()
    await pen.start_needle()


def test_awaitables_drive_the_pen_and_telemetry_streams(sim):
    async def main() -> None:
        async with await _connect(sim) as pen:
            assert pen.state is State.IDLE and pen.identity.serial == sim.serial
            assert pen.simulated
            await _run_needle(pen)
            assert pen.state is State.RUNNING
            running = 0
            async for t in pen.telemetry(max_queue=8):
                running += t.needle_running
                if running >= 3:
                    break
            await pen.stop_needle()
            assert pen.state is State.ARMED
            await pen.disarm()
            assert pen.state is State.IDLE

    asyncio.run(asyncio.wait_for(main(), WAIT_S))


def test_estop_never_waits_behind_a_blocked_call(sim):
    """A call occupies the worker; E-stop still goes through and the needle stops."""
    release = threading.Event()

    async def main() -> None:
        async with await _connect(sim) as pen:
            await _run_needle(pen)
            blocked = asyncio.ensure_future(pen.call(release.wait, WAIT_S))
            await asyncio.sleep(0)  # the worker is now busy with `blocked`
            await pen.estop()
            assert not blocked.done()  # the E-stop did not queue behind it
            assert pen.state is State.ESTOP
            release.set()
            await blocked
            await pen.wait_for_state(State.ESTOP)
            for _ in range(200):  # the pen itself reports the stop
                t = pen.last_telemetry
                if t is not None and not t.needle_running and t.state.name == "ESTOP":
                    break
                await asyncio.sleep(0.05)
            t = pen.last_telemetry
            assert t is not None and not t.needle_running and t.state.name == "ESTOP"
            with pytest.raises(SmpError, match="estop|stopped"):
                await pen.start_needle()
            await pen.clear_faults()
            assert pen.state is State.IDLE

    try:
        asyncio.run(asyncio.wait_for(main(), WAIT_S))
    finally:
        release.set()


def test_state_changes_stream_in_order(sim):
    async def main() -> list[State]:
        async with await _connect(sim) as pen:
            seen: list[State] = []

            async def watch() -> None:
                async for _old, new, _why in pen.state_changes():
                    seen.append(new)
                    if new is State.ESTOP:
                        return

            watcher = asyncio.ensure_future(watch())
            await asyncio.sleep(0)
            await _run_needle(pen)
            await pen.estop()
            await asyncio.wait_for(watcher, WAIT_S)
            return seen

    seen = asyncio.run(asyncio.wait_for(main(), WAIT_S))
    # the connect's own "idle" may still be on its way when the stream starts
    assert seen[-3:] == [State.ARMED, State.RUNNING, State.ESTOP]
    assert set(seen[:-3]) <= {State.IDLE}


def test_a_slow_consumer_loses_the_oldest_frames_not_the_reader(sim):
    async def main() -> tuple[int, int]:
        async with await _connect(sim) as pen:
            stream = pen.telemetry(max_queue=2)
            first = await stream.__anext__()
            # The reader thread keeps delivering while we do not read. Listeners get each frame
            # in the order they were added, so once this one has seen a frame, the stream's own
            # listener has handed it to the loop (counting on `last_telemetry` instead raced the
            # delivery thread on a loaded machine).
            seen: list[int] = []
            pen.pen.add_telemetry_listener(lambda t: seen.append(t.telemetry_seq))
            loop = asyncio.get_running_loop()
            end_s = loop.time() + WAIT_S
            while not (seen and seen[-1] - first.telemetry_seq > 6) and loop.time() < end_s:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0)  # the deliveries already handed over run before this returns
            nxt = await stream.__anext__()
            await stream.aclose()
            return first.telemetry_seq, nxt.telemetry_seq

    first, nxt = asyncio.run(asyncio.wait_for(main(), WAIT_S))
    assert nxt - first > 2  # frames in between were dropped, the newest kept


def test_stream_arguments_are_checked(sim):
    async def main() -> None:
        async with await _connect(sim) as pen:
            with pytest.raises(InvalidArgument, match="max_queue"):
                await pen.telemetry(max_queue=0).__anext__()

    asyncio.run(asyncio.wait_for(main(), WAIT_S))


def test_wrapping_needs_a_controller():
    with pytest.raises(InvalidArgument, match="pen"):
        AsyncPenController("pensim://nothing")  # type: ignore[arg-type]
