"""Session 20 (defect 1): `pen.close()` on a controller whose link was already lost changed no
state, so nothing told `AsyncPenController`'s default streams (they wait across a loss for the
reconnect): `telemetry()` and `state_changes()` waited for ever, and a blocking
`wait_for_state` on the pen waited out its whole timeout. Now a close ends every wait on the
pen whatever state it closed from (`PenController.closed`, `close_listeners`): the streams
end (StopAsyncIteration), a waiter gets StateError, a request after it says it was closed.

Real simulator over a real byte stream, on virtual time. No wall-clock figure is asserted: the
streams' END is handed to the event loop before `pen.close()` returns, so a bounded number of
loop turns (no clock) sees them end; a thread's join has a generous guard against a hang only.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from simulators import PenSimulator
from simulators.clock import VirtualClock
from smpdevice.control import PenController, State, StateError
from smpdevice.control.aio import AsyncPenController, LinkLost
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import TimeDriver

TURNS = 20  # event-loop turns for an ended stream's reader to return (it needs 2 or 3)
HANG_GUARD_S = 120.0  # wall time, a guard against a hang only (never a speed assertion)
DAY_S = 86400.0  # a waiter's timeout: never reached on virtual time in a test's life


def _simulator(faults: str | None):
    clock = VirtualClock()
    with PenSimulator(seed=5, clock=clock, link_faults=faults) as s, \
            TimeDriver(clock) as driver:
        s.advance(0.06)  # booted
        s.time = driver
        yield s


@pytest.fixture
def sim():
    """A pen whose cable is pulled 0.5 s (virtual) into its life."""
    yield from _simulator("disconnect@0.5")


@pytest.fixture
def steady_sim():
    yield from _simulator(None)


async def _turns(n: int = TURNS) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def _wait_in_thread(pen: PenController) -> tuple[threading.Thread, list]:
    """`pen.wait_for_state(IDLE)` for a day of virtual time, in a thread: what it raised."""
    got: list = []

    def body() -> None:
        try:
            got.append(pen.wait_for_state(State.IDLE, timeout_s=DAY_S))
        except Exception as exc:  # the outcome is what is checked
            got.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, got


def test_close_after_a_lost_link_ends_every_stream_and_wait(sim):
    async def main() -> None:
        pen = PenController(sim.url, calibration=true_calibration(sim), clock=sim.clock)
        await asyncio.to_thread(pen.open)
        await asyncio.to_thread(sim.time.wait_until, lambda: pen.state is State.DISCONNECTED,
                                5.0, "the link lost")
        apen = AsyncPenController(pen)
        try:
            with pytest.raises(LinkLost):  # until_lost: told of the loss at once
                await apen.telemetry(until_lost=True).__anext__()
            items: dict[str, list] = {"telemetry": [], "state_changes": []}

            async def read(name: str, stream) -> None:
                async for item in stream:
                    items[name].append(item)

            readers = {"telemetry": asyncio.ensure_future(read("telemetry", apen.telemetry())),
                       "state_changes": asyncio.ensure_future(
                           read("state_changes", apen.state_changes()))}
            await _turns()
            assert not any(r.done() for r in readers.values())  # the loss ends neither
            waiter, waited = _wait_in_thread(pen)

            await asyncio.to_thread(pen.close)  # the controller's own close, link lost

            await _turns()
            hung = sorted(name for name, r in readers.items() if not r.done())
            assert not hung, f"still waiting after pen.close() on a lost link: {hung}"
            for r in readers.values():
                r.result()  # ended quietly (StopAsyncIteration inside `async for`)
            assert items == {"telemetry": [], "state_changes": []}  # no change was made
            await asyncio.to_thread(waiter.join, HANG_GUARD_S)
            assert not waiter.is_alive(), "wait_for_state(IDLE) still waits after close()"
            assert isinstance(waited[0], StateError) and "closed" in str(waited[0]), waited
            assert pen.closed and apen.state is State.DISCONNECTED
            for stream in (apen.telemetry(), apen.telemetry(until_lost=True),
                           apen.state_changes()):  # begun after the close: end at once
                with pytest.raises(StopAsyncIteration):
                    await stream.__anext__()
            with pytest.raises(StateError, match="was closed"):  # a request after it
                await apen.set_zone("crown")
            with pytest.raises(StateError, match="was closed"):  # closed: no wait at all
                await asyncio.to_thread(pen.wait_for_state, State.IDLE, timeout_s=DAY_S)
            assert await apen.wait_for_state(State.DISCONNECTED) is State.DISCONNECTED
            sim.reconnect()  # reopened: no longer closed, its streams run again
            await apen.call(pen.reconnect)
            assert not pen.closed  # a reopened pen is not closed (a lost link is none either)
            stream = apen.telemetry()
            first = asyncio.ensure_future(stream.__anext__())
            await asyncio.to_thread(sim.time.wait_until, first.done, 5.0, "a frame reopened")
            assert first.result().uptime_ms > 0
            await stream.aclose()
        finally:
            await apen.close()

    asyncio.run(main())


def test_a_close_from_idle_still_delivers_the_last_change_before_the_end(steady_sim):
    """The close that makes a change: `state_changes()` gets (idle, disconnected, closed)
    first, then ends (the END comes through `close_listeners`, after every change is told)."""
    sim = steady_sim

    async def main() -> list:
        pen = PenController(sim.url, calibration=true_calibration(sim), clock=sim.clock)
        await asyncio.to_thread(pen.open)
        apen = AsyncPenController(pen)
        try:
            changes: list = []

            async def read() -> None:
                async for change in apen.state_changes():
                    changes.append(change)

            reader = asyncio.ensure_future(read())
            await _turns()
            await asyncio.to_thread(pen.close)
            await _turns()
            assert reader.done(), "state_changes() still waits after pen.close()"
            reader.result()
            return changes
        finally:
            await apen.close()

    assert asyncio.run(main()) == [(State.IDLE, State.DISCONNECTED, "closed")]


def test_a_pause_ends_at_close_on_a_pen_whose_clock_then_stands_still():
    """`pensim://?clock=virtual`: the controller drives the pen's clock and stops driving it
    at close(), so a `pause()` then waited for ever (nothing moved its deadline). It ends at
    the close now, and one asked after it returns at once."""
    pen = PenController.connect("pensim://?clock=virtual")
    try:
        paused = threading.Thread(target=pen.pause, args=(DAY_S,), daemon=True)
        paused.start()  # waiting by the close, or begun after it: either ends
    finally:
        pen.close()
    paused.join(HANG_GUARD_S)
    assert not paused.is_alive(), "pause() still waits after close()"
    after = threading.Thread(target=pen.pause, args=(0.01,), daemon=True)
    after.start()
    after.join(HANG_GUARD_S)
    assert not after.is_alive(), "pause(0.01) on a closed pen waits for ever"
