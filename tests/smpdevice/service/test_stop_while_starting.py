"""`pen.stop` wins over every `pen.start` the service received before it (review 9c R11).

Whatever the controller's state says when the stop comes -- idle (the driver's arm still on its
way), armed (its start queued behind other requests, or on the wire) -- no start received before
the stop runs the needle after it, and when the stop is answered the needle is not running. The
pen's replies come 150 ms late (a slow adapter), so requests stay in flight for a while; the
clients' lease clock stands still, so no lease runs out here. The pen is on virtual time (the
service's controller drives its clock): its time stands still while the test sets up the race
(`PenMoment(hold=True)`), so the requests are in flight however long a loaded machine takes
to send the stop, and it moves, as fast as the computer computes, once the service has the
stop (`pen_time_runs`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from simulators import PenSimulator, VirtualClock
from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.service.conftest import (
    PEN_LEASE_MS,
    InNeedleRun,
    PenMoment,
    connect,
    pen_time_runs,
    run,
    wait_until,
    while_held,
)


@pytest.fixture
def slow_sim() -> Iterator[PenSimulator]:
    with PenSimulator(seed=5, link_faults="delay=0.15",
                      clock=VirtualClock(host_driven=True)) as s:
        yield s


@pytest.fixture
def slow_service(slow_sim, data_dir) -> Iterator[ServiceHandle]:
    options = ServiceOptions(port=slow_sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(slow_sim),
                             lease_clock=lambda: 0.0)
    with ServiceHandle(options) as handle:
        yield handle


def _stops_inflight(service: ServiceHandle, name: str) -> int:
    """Stops the service has dispatched for the connection called `name`, not yet answered:
    each has marked what it wins over before it first waits."""
    return sum(c.stops_inflight for c in list(service.server.service.clients.values())
               if c.name == name)


def _inflight(service: ServiceHandle, name: str) -> int:
    """Requests the service has dispatched for the connection called `name`, not yet answered."""
    return sum(c.inflight for c in list(service.server.service.clients.values())
               if c.name == name)


async def _outcome(call: asyncio.Future) -> str:
    try:
        await call
    except ServiceError as exc:
        return f"refused: {exc}"
    return "ok"


# "idle": the stop comes while the driver's arm is still queued (the host reads idle);
# "armed": the pen is armed, the start waits behind set_setpoints in the call worker.
@pytest.mark.parametrize("when", ["idle", "armed"])
def test_a_stop_wins_over_a_start_queued_before_it(slow_service, slow_sim, when):
    service, sim = slow_service, slow_sim

    async def main() -> None:
        driver = await connect(service, Role.OPERATOR, name="driver")
        other = await connect(service, Role.OPERATOR, name="second tab")
        try:
            await driver.drive(lease_ms=10_000)
            await driver.call("pen.set_zone", zone="crown")
            if when == "armed":
                await driver.call("pen.set_setpoints", **CROWN)
                await driver.call("pen.arm")
                queue = [("pen.set_setpoints", CROWN)] * 3  # >= 450 ms ahead of the start
            else:
                queue = [("pen.set_setpoints", CROWN)] * 2 + [("pen.arm", {})]
            held = PenMoment(sim, hold=True)  # the pen's time stands still from its next step
            try:
                await held.reached("the pen's time held")
                calls = [asyncio.ensure_future(driver.call(m, **p)) for m, p in queue]
                start = asyncio.ensure_future(driver.call("pen.start"))
                await wait_until(lambda: _inflight(service, "driver") == len(queue) + 1,
                                 what="the start dispatched behind the driver's other requests")
                stopped = await while_held(held, other.call("pen.stop"),
                                           lambda: _stops_inflight(service, "second tab") == 1)
            finally:
                held.release()
            assert stopped == {"ok": True}
            assert sim.firmware.state.name != "RUNNING", "pen.stop answered, the needle runs"
            outcome = await _outcome(start)
            await asyncio.gather(*calls)  # the driver's other requests are not a stop's business
            assert sim.firmware.state.name != "RUNNING", f"the needle runs; the start: {outcome}"
            assert service.pen.state is State.ARMED
            assert outcome.startswith("refused") and "stop" in outcome, outcome
            # a start sent after the stop is not lost to it
            await driver.call("pen.start")
            await wait_until(lambda: sim.firmware.state.name == "RUNNING", what="needle on")
            await driver.call("pen.stop")
            await wait_until(lambda: sim.firmware.state.name == "ARMED", what="needle off")
        finally:
            await driver.close()
            await other.close()

    with pen_time_runs(sim):  # the pen's delays pass as fast as the computer computes them
        run(main())


def test_a_stop_while_the_start_is_on_the_wire_leaves_the_needle_stopped(slow_service, slow_sim):
    """The pen runs the needle, its acknowledgement is on the way (the host reads armed)."""
    service, sim = slow_service, slow_sim

    async def main() -> None:
        driver = await connect(service, Role.OPERATOR, name="driver")
        other = await connect(service, Role.OPERATOR, name="second tab")
        try:
            await driver.drive(lease_ms=10_000)
            await driver.call("pen.set_zone", zone="crown")
            await driver.call("pen.set_setpoints", **CROWN)
            await driver.call("pen.arm")
            on = InNeedleRun(sim, 0, hold=True, at_start=True)  # its ack 150 ms away
            start = asyncio.ensure_future(driver.call("pen.start"))
            try:
                await on.reached("needle on")
                assert service.pen.state is State.ARMED, "the start's ack came already"
                stopped = await while_held(on, other.call("pen.stop"),
                                           lambda: _stops_inflight(service, "second tab") == 1)
            finally:
                on.release()
            assert stopped == {"ok": True}
            assert sim.firmware.state.name != "RUNNING", "pen.stop answered, the needle runs"
            await _outcome(start)  # ok or refused: either way the needle must be off now
            await wait_until(lambda: service.pen.state is State.ARMED, 10, what="host armed")
            assert sim.firmware.state.name != "RUNNING"
        finally:
            await driver.close()
            await other.close()

    with pen_time_runs(sim):  # the pen's delays pass as fast as the computer computes them
        run(main())
