"""`pen.stop` wins over every `pen.start` the service received before it (review 9c R11).

Whatever the controller's state says when the stop comes -- idle (the driver's arm still on its
way), armed (its start queued behind other requests, or on the wire) -- no start received before
the stop runs the needle after it, and when the stop is answered the needle is not running. The
pen's replies come 150 ms late (a slow adapter), so requests stay in flight for a while; the
clients' lease clock stands still, so no lease runs out here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from simulators import PenSimulator
from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.service.conftest import PEN_LEASE_MS, connect, run, wait_until


@pytest.fixture
def slow_sim() -> Iterator[PenSimulator]:
    with PenSimulator(seed=5, link_faults="delay=0.15") as s:
        yield s


@pytest.fixture
def slow_service(slow_sim, data_dir) -> Iterator[ServiceHandle]:
    options = ServiceOptions(port=slow_sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(slow_sim),
                             lease_clock=lambda: 0.0)
    with ServiceHandle(options) as handle:
        yield handle


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
            calls = [asyncio.ensure_future(driver.call(m, **p)) for m, p in queue]
            start = asyncio.ensure_future(driver.call("pen.start"))
            await wait_until(lambda: _inflight(service, "driver") == len(queue) + 1,
                             what="the start dispatched behind the driver's other requests")
            assert await other.call("pen.stop") == {"ok": True}
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
            start = asyncio.ensure_future(driver.call("pen.start"))
            await wait_until(lambda: sim.firmware.state.name == "RUNNING", what="needle on")
            assert await other.call("pen.stop") == {"ok": True}
            assert sim.firmware.state.name != "RUNNING", "pen.stop answered, the needle runs"
            await _outcome(start)  # ok or refused: either way the needle must be off now
            await wait_until(lambda: service.pen.state is State.ARMED, 10, what="host armed")
            assert sim.firmware.state.name != "RUNNING"
        finally:
            await driver.close()
            await other.close()

    run(main())
