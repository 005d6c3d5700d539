"""A stop the service received is never lost (review 15a, REVASYNC R01-R03).

R01: a `pen.stop` sent by a non-driving operator just before its connection closes still stops
the needle (the close used to cancel the stop while it waited for the stop worker).
R02: a driver that re-hellos as viewer and closes at once is stopped and disarmed by the
service (the close used to cancel the stop queued behind the hello; only the pen's own lease
stopped the needle, with a latched LEASE_EXPIRED fault, and nobody was told).
R03: `pen.stop` is never refused "busy" (-32006) with 8 requests in flight, nor "rate limited"
(-32005) with the connection's budget spent; the stops have a cap of their own.

Real simulator, service and websockets. The races are made deterministic by holding a worker
the service hands its work to (the stop worker, the call worker, the loop's default executor)
with a job that waits on an Event, then releasing it once the service has seen the close."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any, cast

from websockets.asyncio.client import connect as ws_connect

from smpdevice.control import State
from smpdevice.control.aio import AsyncPenController
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.service.rpc import BUSY, RATE_LIMITED
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.service.conftest import (  # noqa: F401  (fixtures)
    connect,
    data_dir,
    drive_needle,
    run,
    service_with_held_leases,
    sim,
    wait_until,
)

# More than a default executor ever has workers (min(32, CPUs + 4)): all busy, the rest queued.
DEFAULT_EXECUTOR_HOLDS = 33
STOPPED_WAIT_S = 10.0  # after the release; the old code ran into it (nothing stopped the needle)


@contextlib.contextmanager
def held(executor: Executor) -> Iterator[None]:
    """`executor`'s one worker busy until the block ends: work handed to it meanwhile queues."""
    release = threading.Event()
    executor.submit(release.wait)
    try:
        yield
    finally:
        release.set()


async def on_service_loop(service: ServiceHandle, fn: Callable[[], Any]) -> Any:
    """`fn()` run on the service's event loop (the thread that owns its connections)."""
    async def call() -> Any:
        return fn()
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), service.loop))


async def _ask(ws: Any, ident: int, method: str, **params: Any) -> Any:
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": ident, "method": method,
                              "params": params}))
    while True:
        message = json.loads(await ws.recv())
        if message.get("id") == ident:
            assert "error" not in message, message
            return message["result"]


def _client(service: ServiceHandle, client_id: str | None) -> Any:
    """The service's own record of a connection."""
    assert client_id is not None
    return service.server.service.clients[client_id]


def test_a_stop_sent_just_before_its_connection_closes_still_stops_the_needle(sim, data_dir):  # noqa: F811
    with service_with_held_leases(sim, data_dir) as service:
        pen, svc = service.pen, service.server.service

        async def main() -> None:
            driver = await connect(service, Role.OPERATOR, name="driver")  # heartbeats on
            await drive_needle(driver, lease_ms=1000)
            await wait_until(lambda: pen.state is State.RUNNING, what="running")
            asked = svc.stops.asked
            with held(svc.apen._stops):  # the stop queues behind it, surely, when the close comes
                async with ws_connect(service.url) as ws:
                    stopper = (await _ask(ws, 1, "rpc.hello", token=service.token(Role.OPERATOR),
                                          client="stopper"))["client_id"]
                    await ws.send(json.dumps({"jsonrpc": "2.0", "method": "pen.stop",
                                              "params": {}}))
                await wait_until(lambda: stopper not in svc.clients, what="the close seen")
                await driver.call("rpc.ping")  # a later turn of the loop: the close is handled
                assert svc.stops.asked == asked + 1, "the stop was not received"
                assert pen.state is State.RUNNING  # the stopper drove nothing: only it may stop
            # Whatever was queued for the stop worker before this has run once this has.
            await asyncio.wrap_future(svc.apen._stops.submit(lambda: None))
            await wait_until(lambda: pen.state is not State.RUNNING, timeout_s=STOPPED_WAIT_S,
                             what="the needle stopped by the pen.stop sent before the close")
            assert pen.state is State.ARMED
            await driver.close()

        run(main())


def test_a_driver_that_rehellos_as_viewer_and_leaves_is_stopped_and_disarmed(sim, data_dir):  # noqa: F811
    # The pen's own lease is long: from the hello on, nobody renews it, and the host's stop
    # (held below until the close is handled) must come first, also on loaded cores.
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=10_000, calibration=true_calibration(sim),
                             lease_clock=lambda: 0.0)
    with ServiceHandle(options) as service:
        pen, svc = service.pen, service.server.service
        release = threading.Event()

        def hold_default_executor() -> None:  # where the hello hands its stop (to_thread)
            for _ in range(DEFAULT_EXECUTOR_HOLDS):
                service.loop.run_in_executor(None, release.wait)

        async def main() -> dict[str, Any]:
            tech = await connect(service, Role.TECHNICIAN, name="tech")
            try:
                async with ws_connect(service.url) as ws:
                    driver = (await _ask(ws, 1, "rpc.hello", token=service.token(Role.OPERATOR),
                                         client="driver"))["client_id"]
                    await _ask(ws, 2, "pen.drive", lease_ms=1000)
                    await _ask(ws, 3, "pen.set_zone", zone="crown")
                    await _ask(ws, 4, "pen.set_setpoints", **CROWN)
                    await _ask(ws, 5, "pen.arm")
                    await _ask(ws, 6, "pen.start")
                    assert pen.state is State.RUNNING
                    await on_service_loop(service, hold_default_executor)
                    await ws.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "rpc.hello",
                                              "params": {"token": service.token(Role.OPERATOR),
                                                         "role": "viewer", "client": "driver"}}))
                    await wait_until(lambda: svc.lease.holder() is None, what="the drive dropped")
                await wait_until(lambda: driver not in svc.clients, what="the close seen")
                await tech.call("rpc.ping")  # a later turn of the loop: the close is handled
            finally:
                release.set()
            # The old code left the needle to the pen's own lease (10 s): a latched fault.
            await wait_until(lambda: pen.state in (State.IDLE, State.FAULT, State.ESTOP),
                             what="the needle stopped and the pen disarmed")
            assert pen.state is State.IDLE, (pen.state, pen.last_fault)  # stopped and disarmed
            assert pen.last_fault is None, pen.last_fault  # no LEASE_EXPIRED
            told = await tech.next_notification("pen.driver", timeout_s=STOPPED_WAIT_S,
                                                where=lambda p: p["client"] is None)
            await tech.close()
            return told

        told = cast(dict[str, Any], run(main()))
        assert "re-authenticated as viewer" in told["reason"], told


def test_pen_stop_is_answered_while_8_requests_are_in_flight(sim, data_dir):  # noqa: F811
    with service_with_held_leases(sim, data_dir) as service:
        pen, svc = service.pen, service.server.service

        async def main() -> None:
            op = await connect(service, Role.OPERATOR, name="console")
            await drive_needle(op, lease_ms=1000)
            await wait_until(lambda: pen.state is State.RUNNING, what="running")
            console = _client(service, op.client_id)
            with held(svc.apen._calls):  # the set_setpoints stay in flight
                tweaks = [asyncio.ensure_future(op.call("pen.set_setpoints", **CROWN))
                          for _ in range(8)]
                await wait_until(lambda: console.inflight >= 8, what="8 requests in flight")
                try:
                    await op.call("pen.state")
                    raise AssertionError("a 9th request was not refused busy")
                except ServiceError as exc:  # the cap still holds for everything else
                    assert exc.code == BUSY, exc
                assert await op.call("pen.stop") == {"ok": True}
                assert pen.state is State.ARMED
            await asyncio.gather(*tweaks, return_exceptions=True)
            await op.close()

        run(main())


def test_pen_stop_is_answered_with_the_connections_rate_budget_spent(sim, data_dir):  # noqa: F811
    with service_with_held_leases(sim, data_dir) as service:
        pen = service.pen

        async def main() -> None:
            driver = await connect(service, Role.OPERATOR, name="driver")
            await drive_needle(driver, lease_ms=1000)
            await wait_until(lambda: pen.state is State.RUNNING, what="running")
            op = await connect(service, Role.OPERATOR, name="console")  # any operator may stop
            bucket = _client(service, op.client_id).bucket

            def spend() -> None:  # all its tokens taken, and none come back during the test
                bucket.rate = 0.0
                while bucket.take():
                    pass

            await on_service_loop(service, spend)
            try:
                await op.call("rpc.ping")
                raise AssertionError("the connection's budget was not spent")
            except ServiceError as exc:
                assert exc.code == RATE_LIMITED, exc
            assert await op.call("pen.stop") == {"ok": True}
            assert pen.state is State.ARMED
            await op.close()
            await driver.close()

        run(main())


def test_a_ninth_stop_in_flight_is_refused_busy_naming_the_stops(sim, data_dir):  # noqa: F811
    with service_with_held_leases(sim, data_dir) as service:
        pen, svc = service.pen, service.server.service

        async def main() -> list[Any]:
            driver = await connect(service, Role.OPERATOR, name="driver")
            await drive_needle(driver, lease_ms=1000)
            await wait_until(lambda: pen.state is State.RUNNING, what="running")
            op = await connect(service, Role.OPERATOR, name="console")
            console = _client(service, op.client_id)
            in_flight = lambda: console.inflight + getattr(console, "stops_inflight", 0)  # noqa: E731
            with held(svc.apen._stops):  # the stops stay in flight
                stops = [asyncio.ensure_future(op.call("pen.stop")) for _ in range(8)]
                await wait_until(lambda: in_flight() >= 8, what="8 stops in flight")
                try:
                    await op.call("pen.stop")
                    raise AssertionError("a 9th stop in flight was not refused")
                except ServiceError as exc:
                    assert exc.code == BUSY, exc
                    assert "8 stops are already in flight" in str(exc), exc
            answers = await asyncio.gather(*stops)
            await wait_until(lambda: pen.state is State.ARMED, what="stopped")
            await op.close()
            await driver.close()
            return answers

        assert run(main()) == [{"ok": True}] * 8


def test_a_stop_needle_cancelled_while_queued_still_runs(sim):  # noqa: F811
    """R01's lower half: AsyncPenController.stop_needle() whose caller is cancelled while the
    stop waits for the stop worker still stops the needle, then raises CancelledError (the
    cancel used to take the queued stop back)."""
    async def main() -> None:
        async with await AsyncPenController.connect(
                sim.url, calibration=true_calibration(sim), lease_ms=1000) as apen:
            await apen.set_zone("crown")
            await apen.set_setpoints(**CROWN)
            await apen.arm()
            await apen.start_needle()
            assert apen.pen.state is State.RUNNING
            with held(apen._stops):
                stop = asyncio.ensure_future(apen.stop_needle())
                await asyncio.sleep(0)  # its first step: handed to the (busy) stop worker
                stop.cancel()
                await asyncio.sleep(0)
            try:
                await stop
                raise AssertionError("the cancelled stop_needle() did not raise CancelledError")
            except asyncio.CancelledError:
                pass
            await asyncio.wrap_future(apen._stops.submit(lambda: None))  # queued before: run
            await wait_until(lambda: apen.pen.state is not State.RUNNING,
                             timeout_s=STOPPED_WAIT_S, what="the cancelled stop to stop the needle")
            assert apen.pen.state is State.ARMED

    run(main())
