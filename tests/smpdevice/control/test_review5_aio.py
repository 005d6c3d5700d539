"""REVIEW5 1: AsyncPenController after close() answers as the blocking controller does.

Before: a second close(), set_zone, arm and even the safety stop stop_needle raised a bare
RuntimeError ("cannot schedule new futures after shutdown") from the shut-down workers, and an
async telemetry iterator of a closed pen waited forever. Real simulator, real byte stream.
"""

from __future__ import annotations

import asyncio

import pytest

from simulators import PenSimulator
from smpdevice.control import PenController, StateError
from smpdevice.control.aio import AsyncPenController
from smpdevice.errors import SmpError
from tests.smpdevice.conftest import CROWN

WAIT_S = 20.0  # generous: 2 loaded cores
CALLS = {
    "set_zone": lambda p: p.set_zone("crown"),
    "set_setpoints": lambda p: p.set_setpoints(**CROWN),
    "arm": lambda p: p.arm(),
    "disarm": lambda p: p.disarm(),
    "start_needle": lambda p: p.start_needle(),
    "stop_needle": lambda p: p.stop_needle(),
    "estop": lambda p: p.estop(),
    "close": lambda p: p.close(),
}


@pytest.fixture
def sim():
    with PenSimulator(seed=5) as s:
        yield s


def _sync_outcome(url: str, name: str) -> type[BaseException] | None:
    pen = PenController.connect(url)
    pen.close()
    try:
        CALLS[name](pen)
    except BaseException as exc:  # the kind is what is compared
        return type(exc)
    return None


@pytest.mark.parametrize("name", sorted(CALLS))
def test_after_close_every_call_gives_the_blocking_controllers_answer(sim, name):
    expected = _sync_outcome(sim.url, name)
    assert expected is None or issubclass(expected, SmpError)

    async def main() -> type[BaseException] | None:
        apen = await AsyncPenController.connect(sim.url)
        await apen.close()
        assert apen.closed
        try:
            await asyncio.wait_for(CALLS[name](apen), WAIT_S)
        except SmpError as exc:
            return type(exc)
        return None

    assert asyncio.run(main()) is expected


def test_requests_after_close_are_state_errors(sim):
    async def main() -> None:
        apen = await AsyncPenController.connect(sim.url)
        await apen.close()
        await apen.close()  # twice is safe, as PenController.close()
        with pytest.raises(StateError, match="not connected"):
            await apen.set_zone("crown")
        with pytest.raises(StateError, match="not connected"):
            await apen.arm()

    asyncio.run(asyncio.wait_for(main(), WAIT_S))


def test_streams_end_when_the_pen_is_closed(sim):
    async def main() -> None:
        apen = await AsyncPenController.connect(sim.url)
        started = asyncio.Event()

        async def consume() -> int:
            seen = 0
            async for _ in apen.telemetry(max_queue=4):
                seen += 1
                started.set()
            return seen

        task = asyncio.create_task(consume())
        await asyncio.wait_for(started.wait(), WAIT_S)
        await apen.close()
        assert await asyncio.wait_for(task, WAIT_S) >= 1
        # opened after close: nothing will ever come, so they end at once
        assert [t async for t in apen.telemetry()] == []
        assert [c async for c in apen.state_changes()] == []

    asyncio.run(asyncio.wait_for(main(), WAIT_S))
