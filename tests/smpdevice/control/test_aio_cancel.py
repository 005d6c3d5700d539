"""A caller who stops waiting for an async request leaves nothing running behind (review 9a
R08): `AsyncPenController` runs a request in a worker thread that cannot be interrupted, so a
start given up (`asyncio.wait_for` timeout, `task.cancel()`) used to go on and start the
needle, and a given-up arm left the pen armed with the lease renewed. Now a given-up start is
stopped (one still waiting for the depth never goes out) and a given-up arm that got through
is disarmed; the cancellation completes once that is done.

Real time (a cancellation is a wall-clock event); every wait is on a condition with a generous
limit, nothing asserts a timing. The windows are made wide on purpose: a slow depth actuator,
or the pen receiving ARM / NEEDLE_START late (the simulator's inbound delay).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from firmware_protocol.codes import FirmwareState, MsgType
from firmware_protocol.messages import Arm, NeedleStart
from simulators import PenSimulator
from simulators.pen_model import PenModel
from smpdevice.control import State
from smpdevice.control.aio import AsyncPenController
from tests.smpdevice.conftest import true_calibration

SP = dict(speed_hz=90, duty_pct=40, period_ms=120)
GRACE_S = 0.3  # the request is under way in its worker by then (if not, it is withdrawn)
# well inside the host's retry budget (15 x RTO >= 0.3 s), or the engine's own give-up answers
INBOUND_DELAY_S = 0.1
WAIT_S = 20.0  # generous: 2 loaded cores
# A lease no loaded machine lets lapse by a late renewal (a lapse is not what is tested here:
# at the default lease a renewal delayed past it on a loaded machine latched LEASE_EXPIRED)
LEASE_MS = 10_000
QUIET_FRAMES = 20  # telemetry frames (0.2 s at 100 Hz) after the last reply, nothing starts


def _pen(**model) -> PenSimulator:
    return PenSimulator(model=PenModel(**{"seed": 3, "lease_max_ms": LEASE_MS, **model}))


async def _connect(sim: PenSimulator) -> AsyncPenController:
    return await AsyncPenController.connect(sim.url, calibration=true_calibration(sim),
                                            lease_ms=LEASE_MS)


async def _until(predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, f"{what} not reached within {timeout_s} s"
        await asyncio.sleep(0.01)


async def _never(apen: AsyncPenController, predicate: Callable[[], bool], what: str) -> None:
    """`predicate()` stays false until every frame the host wrote has the pen's reply (so the
    delayed one, where the old code let the given-up request reach the pen, was executed or
    refused) and the pen has sent QUIET_FRAMES telemetry frames more."""
    frames: list[object] = []
    count = frames.append
    apen.pen.add_telemetry_listener(count)
    try:
        await _until(lambda: predicate() or _answered(apen), "every request answered")
        seen = len(frames)
        await _until(lambda: predicate() or len(frames) >= seen + QUIET_FRAMES,
                     f"{QUIET_FRAMES} telemetry frames more")
        assert not predicate(), what
    finally:
        apen.pen.remove_telemetry_listener(count)


def _answered(apen: AsyncPenController) -> bool:
    """Every frame the host wrote has a reply (a reply carries its request's seq)."""
    link = apen.pen.link
    if link is None:
        return False
    history = list(link.history)
    return {s for _, d, s, _ in history if d == "tx"} <= {s for _, d, s, _ in history
                                                           if d == "rx"}


def _written(apen: AsyncPenController, kind: type) -> Callable[[], bool]:
    """True once the host wrote a frame of `kind` (the link's own history)."""
    def written() -> bool:
        link = apen.pen.link
        return link is not None and any(
            d == "tx" and isinstance(m, kind) for _, d, _, m in list(link.history))
    return written


async def _give_up(coro, how: str, written: Callable[[], bool] | None = None) -> None:
    """Start `coro`, let it get under way (its frame `written`, or a grace period), then stop
    waiting for it as `how` says."""
    task = asyncio.ensure_future(coro)
    if written is None:
        await asyncio.sleep(GRACE_S)
    else:
        await _until(lambda: written() or task.done(), "the request written")
    assert not task.done(), "the request ended before it was given up: widen its window"
    if how == "cancel":
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:  # wait_for: the caller's own limit already passed; it gives up now
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(task, timeout=0.001)


@pytest.mark.parametrize("how", ["cancel", "wait_for"])
def test_a_start_given_up_while_the_depth_settles_never_runs_the_needle(how):

    async def scenario(sim: PenSimulator) -> None:
        apen = await _connect(sim)
        async with apen:
            ran: list[bool] = []
            apen.pen.add_telemetry_listener(lambda t: ran.append(t.needle_running))
            await apen.set_zone("crown")
            # The actuator starts at 0 mm: the start below waits for this depth to settle.
            await apen.set_setpoints(depth_mm=0.3, **SP)
            await apen.arm()
            await _until(lambda: _commanded(apen), "the pen reporting the new depth command")
            assert not _settled(apen), "the depth settled before the start: widen its window"
            await _give_up(apen.start_needle(settle_timeout_s=30.0), how)
            assert apen.state is State.ARMED
            ran.clear()
            # past the settle (where the old code started the needle), and some frames more
            await _until(lambda: _settled(apen), "the actuator at 0.3 mm")
            await asyncio.sleep(0.3)
            assert sim.firmware.state is not FirmwareState.RUNNING
            assert apen.state is State.ARMED
            assert ran and not any(ran), "the needle ran after its start was given up"

    with _pen(depth_slew_mm_per_s=0.25) as sim:  # 0 -> 0.3 mm deep takes ~2 s
        asyncio.run(scenario(sim))


def _commanded(apen: AsyncPenController) -> bool:
    """The pen's latest report carries the depth command (not the 0 mm it started at)."""
    t = apen.last_telemetry
    return t is not None and t.actuator_cmd_mm > 0.1


def _settled(apen: AsyncPenController) -> bool:
    """The actuator at the commanded position (the pen's latest report)."""
    t = apen.last_telemetry
    return t is not None and _commanded(apen) and abs(t.actuator_mm - t.actuator_cmd_mm) < 0.005


def test_a_start_given_up_after_needle_start_was_written_is_stopped():
    async def scenario(sim: PenSimulator) -> None:
        apen = await _connect(sim)
        async with apen:
            await apen.set_zone("crown")
            await apen.set_setpoints(depth_mm=0.5, **SP)
            await apen.arm()
            await _until(lambda: apen.last_telemetry is not None and abs(
                apen.last_telemetry.actuator_mm - apen.last_telemetry.actuator_cmd_mm) < 0.005,
                "the actuator at 0.5 mm")
            # the pen gets it late: the start is under way, written, not yet applied
            sim.link.delay_inbound(INBOUND_DELAY_S, MsgType.NEEDLE_START)
            await _give_up(apen.start_needle(), "cancel", _written(apen, NeedleStart))
            # the cancellation returned: the start went out and was stopped behind it
            assert apen.state is State.ARMED
            await _never(apen, lambda: sim.firmware.state is FirmwareState.RUNNING
                         or apen.state is not State.ARMED,
                         f"pen {sim.firmware.state.name}, controller {apen.state.value}: "
                         "the given-up start runs the needle")

    with _pen() as sim:
        asyncio.run(scenario(sim))


def test_an_arm_given_up_after_it_was_written_is_disarmed():
    async def scenario(sim: PenSimulator) -> None:
        apen = await _connect(sim)
        async with apen:
            await apen.set_zone("crown")
            await apen.set_setpoints(depth_mm=0.5, **SP)
            sim.link.delay_inbound(INBOUND_DELAY_S, MsgType.ARM)
            await _give_up(apen.arm(), "cancel", _written(apen, Arm))
            assert apen.state is State.IDLE  # the arm got through and was undone
            await _never(apen, lambda: sim.firmware.state is not FirmwareState.IDLE
                         or apen.state is not State.IDLE,
                         f"pen {sim.firmware.state.name}, controller {apen.state.value}: "
                         "the given-up arm left the pen armed")

    with _pen() as sim:
        asyncio.run(scenario(sim))


def test_a_request_given_up_before_its_worker_took_it_never_runs():
    """Queued behind another call: withdrawn, nothing to undo, the pen untouched."""
    async def scenario(sim: PenSimulator) -> None:
        apen = await _connect(sim)
        async with apen:
            await apen.set_zone("crown")
            await apen.set_setpoints(depth_mm=0.5, **SP)
            release = threading.Event()
            taken = threading.Event()

            def hold() -> None:  # holds the call worker until the arm was given up
                taken.set()
                assert release.wait(WAIT_S), "never released"

            busy = asyncio.ensure_future(apen.call(hold))
            await _until(taken.is_set, "the call worker held")
            arm = asyncio.ensure_future(apen.arm())
            await asyncio.sleep(0)  # one turn: the arm's first step queues it (`_request`)
            arm.cancel()
            with pytest.raises(asyncio.CancelledError):
                await arm
            release.set()
            await busy
            await apen.call(lambda: None)  # the worker took everything queued before this
            assert apen.state is State.IDLE
            assert sim.firmware.state is FirmwareState.IDLE
            assert not _written(apen, Arm)(), "the given-up arm was written"

    with _pen() as sim:
        asyncio.run(scenario(sim))
