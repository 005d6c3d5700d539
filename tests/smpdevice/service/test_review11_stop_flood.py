"""Review 11 B2: stops skip the rate limit and the in-flight cap, and outlive their
connection; they must not build a backlog. Stops are idempotent, so they share runs: a flood
of `pen.stop` (or `session.stop`) runs the stop at most twice (one under way, one queued that
begins after they all asked) and answers every one; a closed connection's stops stop waiting
once counted and queued, so `service.lasting` does not keep them.

The first stop run is held at its start (a delegating spy on the service's real pen), so "a run
under way" is deterministic; everything else is the real service over real WebSockets and a
real simulated pen."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect

from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle
from tests.smpdevice.conftest import CROWN

from .conftest import WAIT_S, connect, run, service_with_held_leases, wait_until

pytestmark = pytest.mark.usefixtures("data_dir")
CLIENTS = 4
PER_CLIENT = 8  # the documented cap of stops in flight per connection


class HeldRuns:
    """Wraps `fn`: counts its runs and holds the first at its start until `release`."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.runs = 0
        self.first_begun = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: Any) -> Any:
        self.runs += 1
        if self.runs == 1:
            self.first_begun.set()
            self.release.wait(WAIT_S)
        return self.fn(*args)


@pytest.fixture
def handle(sim, data_dir):
    with service_with_held_leases(sim, data_dir) as h:
        yield h


async def _armed_driver(handle: ServiceHandle):
    driver = await connect(handle, name="driver")
    await driver.drive(lease_ms=1000)
    await driver.call("pen.set_zone", zone="crown")
    await driver.call("pen.set_setpoints", **CROWN)
    await driver.call("pen.arm")  # between passes: every pen.stop goes to the pen
    return driver


def test_concurrent_pen_stops_share_at_most_two_runs_and_all_are_answered(handle):
    service = handle.server.service
    spy = HeldRuns(service.pen.stop_needle)

    async def main() -> None:
        driver = await _armed_driver(handle)
        service.pen.stop_needle = spy  # the lane reads it at each run
        held = asyncio.ensure_future(driver.call("pen.stop"))
        assert await asyncio.to_thread(spy.first_begun.wait, WAIT_S)
        others = [await connect(handle, name=f"op{i}") for i in range(CLIENTS)]
        asked = service.stops.asked
        calls = [asyncio.ensure_future(c.call("pen.stop")) for c in others
                 for _ in range(PER_CLIENT)]
        await wait_until(lambda: service.stops.asked == asked + CLIENTS * PER_CLIENT,
                         what="every stop counted")
        spy.release.set()
        answers = await asyncio.gather(held, *calls)
        assert answers == [{"ok": True}] * (1 + CLIENTS * PER_CLIENT)
        assert spy.runs == 2, f"{spy.runs} stop_needle runs for {len(answers)} stops"
        assert service.pen.state is State.ARMED
        for c in (driver, *others):
            await c.close()

    run(main())


async def _stop_and_leave(url: str, token: str, method: str) -> None:
    async with ws_connect(url) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.hello",
                                  "params": {"token": token}}))
        assert "result" in json.loads(await ws.recv())
        for i in range(PER_CLIENT):
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 10 + i, "method": method}))


def test_stops_of_closed_connections_leave_no_task_behind_while_the_stop_runs(handle):
    service = handle.server.service
    spy = HeldRuns(service.pen.stop_needle)

    async def main() -> None:
        driver = await _armed_driver(handle)
        service.pen.stop_needle = spy
        held = asyncio.ensure_future(driver.call("pen.stop"))
        assert await asyncio.to_thread(spy.first_begun.wait, WAIT_S)
        asked = service.stops.asked
        for _ in range(10):
            await _stop_and_leave(handle.url, handle.token(Role.OPERATOR), "pen.stop")
        await wait_until(lambda: service.stops.asked == asked + 10 * PER_CLIENT,
                         what="every stop counted")
        # The first run is still held: only the driver's own stop (its connection is live)
        # waits for it; the 80 of the closed connections are counted and queued, and gone.
        await wait_until(lambda: len(service.lasting) <= 1, what="service.lasting to drain")
        assert not held.done()
        spy.release.set()
        assert await held == {"ok": True}  # the first run: the 80 share the one after it
        await wait_until(lambda: spy.runs >= 2, what="the shared run")
        assert await driver.call("pen.stop") == {"ok": True}  # asked while it runs: one more
        assert spy.runs == 3, f"{spy.runs} stop_needle runs for 1 + 80 + 1 stops"
        await driver.close()

    run(main())


def test_a_flood_of_session_stops_shares_at_most_two_runs(handle):
    service = handle.server.service
    spy = HeldRuns(service._stop_session)

    async def main() -> None:
        driver = await _armed_driver(handle)
        service._stop_session = spy  # session.stop reads it at each request
        first = asyncio.ensure_future(driver.call("session.stop"))
        assert await asyncio.to_thread(spy.first_begun.wait, WAIT_S)
        others = [await connect(handle, name=f"op{i}") for i in range(CLIENTS)]
        asked = service.work.stops_asked
        calls = [asyncio.ensure_future(c.call("session.stop")) for c in others
                 for _ in range(PER_CLIENT)]
        await wait_until(lambda: service.work.stops_asked == asked + CLIENTS * PER_CLIENT,
                         what="every session.stop counted")
        spy.release.set()
        answers = await asyncio.gather(first, *calls)
        assert answers == [{"ok": True}] * (1 + CLIENTS * PER_CLIENT)
        assert spy.runs == 2
        await wait_until(lambda: service.pen.state is State.IDLE, what="disarmed")
        for c in (driver, *others):
            await c.close()

    run(main())
