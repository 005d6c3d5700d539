"""Review 11 B1: a `pen.drive` that lands after the driver's lease ran out, before the
watchdog's next look (its 20 ms poll), must not inherit the running needle: every loss of the
pen (a lease run out, a new claim) stops and disarms before anything else, and the clients are
told as for any lapse, whatever the watchdog's timing.

The lapse is driven on the lease's own clock (`lease_clock`), not raced against the poll: the
watchdog's thread is closed first, so the claim is the first to see the lapse (or, in the last
test, the test plays the watchdog's drop and holds its stop back until the claim is in).
Real service, real simulated pen over real bytes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from smpdevice.service.client import ServiceClient, ServiceError
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration

from .conftest import PEN_LEASE_MS, connect, drive_needle, run, wait_until

pytestmark = pytest.mark.usefixtures("data_dir")
HUNG_LEASE_MS = 300


class Clock:
    """The clients' lease clock, moved by the test only."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


@contextlib.contextmanager
def service_on(sim, data_dir, clock: Clock) -> Iterator[ServiceHandle]:
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim),
                             lease_clock=clock)
    with ServiceHandle(options) as handle:
        handle.server.service.watchdog.close()  # the lapse is seen by the claim, not the poll
        yield handle


def told(client: ServiceClient) -> list[dict[str, Any]]:
    """The notifications `client` has read so far, in arrival order (its reader queues them
    in the order the service sent them, answers included)."""
    queue = client._queue
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def lapses(notes: list[dict[str, Any]], who: str) -> list[dict[str, Any]]:
    return [n["params"] for n in notes if n["method"] == "pen.driver"
            and n["params"]["client"] is None and f"no heartbeat from {who}" in
            n["params"]["reason"]]


async def _hung_needle(handle: ServiceHandle, sim) -> ServiceClient:
    hung = await connect(handle, name="hung")
    await drive_needle(hung, lease_ms=HUNG_LEASE_MS)
    await wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, what="running")
    hung.stop_heartbeats()  # the driving client hangs
    await asyncio.sleep(0)
    return hung


def _at_rest(handle: ServiceHandle, sim) -> tuple[State, FirmwareState]:
    return handle.pen.state, sim.firmware.state


def test_another_clients_claim_after_a_lapse_stops_and_disarms_before_its_answer(sim,
                                                                                 data_dir):
    clock = Clock()
    with service_on(sim, data_dir, clock) as handle:
        async def main() -> None:
            other = await connect(handle, name="other")
            hung = await _hung_needle(handle, sim)
            told(other)
            clock.now_s += 1.0  # the hung driver's lease ran out; nobody has looked yet
            answer = await other.call("pen.drive", lease_ms=5000)
            assert answer["client"] == other.client_id
            # At the answer the hung driver's needle is stopped and the pen disarmed.
            assert _at_rest(handle, sim) == (State.IDLE, FirmwareState.IDLE)
            assert lapses(told(other), hung.client_id), "the clients were not told of the lapse"
            with pytest.raises(ServiceError) as info:  # the hung client no longer drives
                await hung.call("pen.arm")
            assert info.value.code == -32004
            await other.release()
            await hung.close()
            await other.close()

        run(main())


def test_the_same_client_reclaiming_after_its_own_lapse_finds_the_pen_at_rest(sim, data_dir):
    clock = Clock()
    with service_on(sim, data_dir, clock) as handle:
        async def main() -> None:
            hung = await _hung_needle(handle, sim)
            epoch = handle.server.service.lease.epoch
            clock.now_s += 1.0
            await hung.call("pen.drive", lease_ms=5000)  # back, after its own lapse
            assert _at_rest(handle, sim) == (State.IDLE, FirmwareState.IDLE)
            assert lapses(told(hung), hung.client_id)
            assert handle.server.service.lease.epoch != epoch  # a new claim
            await hung.call("pen.arm")  # it drives again, from a pen at rest
            assert handle.pen.state is State.ARMED
            await hung.release()
            await hung.close()

        run(main())


def test_a_claim_made_while_the_watchdog_still_stops_the_lapsed_needle_waits_for_it(sim,
                                                                                   data_dir):
    """The watchdog's look is two steps: drop the lapsed driver, then stop and disarm. A claim
    landing between them finds nobody driving; it is answered only once the stop has ended."""
    clock = Clock()
    with service_on(sim, data_dir, clock) as handle:
        service = handle.server.service

        async def main() -> None:
            other = await connect(handle, name="other")
            hung = await _hung_needle(handle, sim)
            told(other)
            clock.now_s += 1.0
            lapsed = service.lease.drop(hung.client_id)  # the watchdog's first step
            assert lapsed is not None
            claim = asyncio.ensure_future(other.call("pen.drive", lease_ms=5000))
            await wait_until(lambda: service.lease.holder() == other.client_id,
                             what="the claim")
            # An answer already sent would be read before this ping's (one connection, one
            # order): the claim must still wait, the lapsed needle not yet stopped.
            await other.call("rpc.ping")
            assert not claim.done(), "the claim was answered while the lapsed needle ran"
            # The watchdog's second step, in a thread of its own as the watchdog's.
            stop = threading.Thread(target=service.watchdog.lost,
                                    args=(lapsed, f"no heartbeat from {hung.client_id} for "
                                                  f"{HUNG_LEASE_MS} ms"))
            stop.start()
            await claim
            assert _at_rest(handle, sim) == (State.IDLE, FirmwareState.IDLE)
            notes = told(other)
            assert lapses(notes, hung.client_id), (
                "the claim was answered before the lapse was acted on and told: "
                f"{[n['params'] for n in notes]}")
            await asyncio.to_thread(stop.join)
            await other.release()
            await hung.close()
            await other.close()

        run(main())
