# ruff: noqa: F811  (fixtures, imported)
"""Rev 19: the stop after a driver's loss never waits behind the loop's shared pool. A driver
that releases the pen, or re-authenticates below driving, loses it; its needle's stop ran in
`asyncio.to_thread` (the loop's default pool): with that pool full (viewers' reads of a locked
log, a session's start, anything blocking) the needle ran on until a thread came free. Now it
runs on a thread of its own, as the close's stop (test_rev18b_close_stop_lane.py)."""
from __future__ import annotations

import asyncio
import os
import threading

import pytest

from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import (  # noqa: F401 - fixtures
    connect,
    data_dir,
    drive_needle,
    run,
    service_with_held_leases,
    sim,
    wait_until,
)


async def _fill_default_pool(loop: asyncio.AbstractEventLoop, gate: threading.Event) -> None:
    async def fill() -> None:  # every thread of the loop's default pool held by other work
        for _ in range(min(32, (os.cpu_count() or 1) + 4)):
            loop.run_in_executor(None, gate.wait)

    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fill(), loop))


@pytest.mark.parametrize("how", ["release", "reauth_viewer"])
def test_a_lost_drivers_stop_is_asked_with_the_default_pool_full(sim, data_dir, how):
    gate = threading.Event()
    seen: dict[str, object] = {}
    try:
        with service_with_held_leases(sim, data_dir) as handle:
            service = handle.server.service

            async def main() -> None:
                op = await connect(handle, Role.OPERATOR)
                await drive_needle(op, lease_ms=1000)
                await wait_until(lambda: sim.firmware.state.name == "RUNNING", what="needle")
                stops_before = service.pen.stops_asked
                await _fill_default_pool(service.loop, gate)
                if how == "release":
                    lost = asyncio.ensure_future(op.call("pen.release"))
                else:  # the same token, asking for less than driving needs
                    lost = asyncio.ensure_future(op.call(
                        "rpc.hello", token=handle.token(Role.OPERATOR), role="viewer"))
                await wait_until(lambda: service.pen.stops_asked > stops_before
                                 and sim.firmware.state.name != "RUNNING",
                                 what="the needle's stop with the default pool held")
                seen["stopped"] = True
                seen["holder"] = service.lease.holder()
                gate.set()
                await lost
                await op.close()

            run(main())
    finally:
        gate.set()
    assert seen == {"stopped": True, "holder": None}, seen
