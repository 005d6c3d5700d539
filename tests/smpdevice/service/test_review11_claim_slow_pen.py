"""B1 (review 11): a `pen.drive` after a lapse is answered only once the lapsed driver's loss has
been acted on (stop, disarm: pen round trips). The new driver's lease is counted from the
claim, before that wait. On a pen that answers 0.2 s late (a slow serial link, a loaded pen),
is a take-over with a short lease (the schema allows 200 ms) still a drive when answered?"""

from __future__ import annotations

import asyncio

import pytest

from firmware_protocol.codes import FirmwareState
from simulators import PenSimulator
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import PEN_LEASE_MS, connect, drive_needle, run, wait_until


@pytest.fixture
def slow_service(data_dir):
    with PenSimulator(seed=5, link_faults="delay=0.2") as sim:
        options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                                 lease_ms=PEN_LEASE_MS * 3, calibration=true_calibration(sim))
        with ServiceHandle(options) as handle:
            yield handle, sim


# realtime: the take-over's 300 ms driver lease runs on the wall clock (the service's own, as
# it is meant to): a test process a loaded machine stalls that long before its first heartbeat
# loses the pen
@pytest.mark.realtime
def test_a_take_over_after_a_lapse_still_drives_when_answered(slow_service):
    handle, sim = slow_service

    took = [0.0]
    shown: list[object] = [None]

    async def main() -> str:
        viewer = await connect(handle, Role.VIEWER, name="console")
        hung = await connect(handle, name="hung")
        other = await connect(handle, name="other")
        await drive_needle(hung, lease_ms=2000)
        await wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, what="running")
        hung.stop_heartbeats()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:  # the other operator takes the pen over as soon as it may
            try:
                asked = loop.time()
                await other.call("pen.drive", lease_ms=300)
                took[0] = loop.time() - asked
                break
            except ServiceError as exc:
                assert exc.code == -32004 and loop.time() < deadline, exc
                await asyncio.sleep(0.01)
        try:
            await other.call("pen.heartbeat")  # its first beat, at once after the answer
            outcome = "drives"
        except ServiceError as exc:
            outcome = f"refused: {exc}"
        drivers = []
        while True:
            try:
                drivers.append((await viewer.next_notification("pen.driver", timeout_s=0.2)
                                )["client"])
            except (AssertionError, TimeoutError, ServiceError):
                break
        shown[0] = drivers[-1] if drivers else "?"
        await other.close()
        await hung.close()
        await viewer.close()
        return outcome

    outcome = run(main())
    assert outcome == "drives", (
        f"pen.drive answered ok, then the first heartbeat was {outcome}: the lease ran out "
        f"while the claim waited {took[0]:.2f} s for the lapsed driver's stop; the last "
        f"pen.driver a console saw names {shown[0]!r}")
