"""Dead-man end to end: a driving client lost in any way stops the simulated needle."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.service.deadman import DriverLease, GatedPenController, NotDriving
from tests.smpdevice.conftest import true_calibration

from .conftest import connect, drive_needle, run, wait_until


def _needle_stopped(sim) -> bool:
    return sim.firmware.state is not FirmwareState.RUNNING


def test_a_driving_client_whose_connection_dies_stops_the_needle(service, sim):
    async def main() -> None:
        watcher = await connect(service, Role.VIEWER)
        driver = await connect(service, Role.OPERATOR)
        await drive_needle(driver)
        await wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, what="running")
        driver.ws.transport.abort()  # a crash: no close frame, no release
        lost = await watcher.next_notification("pen.driver", where=lambda p: p["client"] is None)
        assert "disconnected" in lost["reason"]
        await wait_until(lambda: _needle_stopped(sim), what="the simulated needle to stop")
        await wait_until(lambda: service.pen.state is State.IDLE, what="idle")
        assert (await watcher.call("pen.state"))["driver"] is None
        await watcher.close()

    run(main())


def test_a_hung_driving_client_stops_the_needle(service, sim):
    async def main() -> None:
        driver = await connect(service, Role.OPERATOR)
        await drive_needle(driver, lease_ms=400)
        await wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, what="running")
        driver.stop_heartbeats()  # hung: connected, silent
        await wait_until(lambda: _needle_stopped(sim), what="the simulated needle to stop")
        with pytest.raises(ServiceError) as info:
            await driver.call("pen.start")
        assert info.value.code == -32004  # its lease ran out: it no longer drives
        await wait_until(lambda: service.pen.state in (State.IDLE, State.FAULT),
                         what="disarmed (or faulted by the pen's own lease)")
        await driver.close()

    run(main())


def test_a_viewer_that_disconnects_changes_nothing(service, sim):
    async def main() -> None:
        driver = await connect(service, Role.OPERATOR)
        viewer = await connect(service, Role.VIEWER)
        viewer_id = viewer.client_id
        await drive_needle(driver)
        viewer.ws.transport.abort()
        inner = service.server.service
        await wait_until(lambda: viewer_id not in inner.clients, what="the viewer to be gone")
        seq = service.pen.telemetry.telemetry_seq
        # several more telemetry frames: the needle still runs, the driver still drives
        await wait_until(lambda: service.pen.telemetry.telemetry_seq > seq + 5, what="frames")
        assert sim.firmware.state is FirmwareState.RUNNING
        assert service.pen.state is State.RUNNING
        assert (await driver.call("pen.state"))["driver"] == driver.client_id
        await driver.call("pen.stop")
        await driver.release()
        await wait_until(lambda: service.pen.state is State.IDLE, what="idle after release")
        await driver.close()

    run(main())


def test_one_driver_at_a_time_and_watchers_never_hold_the_pen(service):
    async def main() -> None:
        first = await connect(service, Role.OPERATOR)
        second = await connect(service, Role.TECHNICIAN)
        await first.drive(lease_ms=1000)
        with pytest.raises(ServiceError, match="driven by"):
            await second.drive(lease_ms=1000)
        with pytest.raises(ServiceError) as info:
            await second.call("pen.arm")
        assert info.value.code == -32004
        await first.release()
        await second.drive(lease_ms=1000)  # free again
        await first.close()
        await second.close()

    run(main())


def test_the_gate_withholds_the_pen_lease_without_the_event_loop(sim):
    """The pen's lease renewal asks the driver's lease itself (engine thread, monotonic
    clock): an expired driver closes the gate even if no service code runs at all."""
    now = [0.0]
    lease = DriverLease(clock=lambda: now[0])
    pen = GatedPenController(sim.url, calibration=true_calibration(sim), lease_ms=300)
    pen.lease_gate = lease.valid
    pen.open()
    try:
        lease.claim("c1", 500)
        pen.set_zone("crown")
        pen.set_setpoints(depth_mm=0.5, speed_hz=100.0, duty_pct=40.0, period_ms=100.0)
        pen.arm()
        pen.start_needle()
        assert pen.lease_needed()
        now[0] = 0.5  # the driver's lease ran out; nobody stops anything
        assert not pen.lease_needed()
        # The pen's own lease runs out: the simulated pen stops the needle by itself.
        pen.wait_for_state(State.FAULT, State.IDLE, State.ARMED, timeout_s=30)
        assert sim.firmware.state is not FirmwareState.RUNNING
        with pytest.raises(NotDriving, match="ran out"):
            lease.renew("c1")
    finally:
        pen.close()


def test_flood_from_one_client_never_delays_another_clients_estop(service, sim):
    async def flood(url: str, token: str, stop: asyncio.Event) -> tuple[int, int | None]:
        """(messages sent, the close code when the service cut the flooder: 1008, as
        docs/service.md says of a client that keeps flooding)."""
        sent = 0
        # The flooder never reads its answers: its closing handshake, queued behind the backlog
        # both ways, waited out websockets' close timeout (10 s of the test's wall time every
        # run). It is not what is tested: the flooder leaves without waiting for it.
        async with websockets.connect(url, max_size=None, close_timeout=0.2) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "rpc.hello",
                                      "params": {"token": token}}))
            junk = ["{not json", "[" * 5000, "x" * 300_000,
                    json.dumps({"jsonrpc": "2.0", "id": 1, "method": "no.such"}),
                    json.dumps({"jsonrpc": "2.0", "id": 2, "method": "rpc.ping"})]
            try:
                while not stop.is_set():
                    await ws.send(junk[sent % len(junk)])
                    sent += 1
                    if sent % 50 == 0:
                        await asyncio.sleep(0)
            except websockets.ConnectionClosed as closed:
                return sent, closed.rcvd.code if closed.rcvd else None
        return sent, None

    async def main() -> tuple[tuple[int, int | None], dict]:
        driver = await connect(service, Role.OPERATOR)
        viewer = await connect(service, Role.VIEWER)
        await drive_needle(driver)
        stop = asyncio.Event()
        flooder = asyncio.ensure_future(flood(service.url, service.token(Role.VIEWER), stop))
        await asyncio.sleep(0.3)  # the flood is under way
        answer = await viewer.estop()
        stop.set()
        sent = await flooder
        # The pen latched it (confirmed above). The controller shows it too, once it has heard
        # the pen again: on loaded cores the flood can starve this process's simulated pen
        # long enough for its silence watch to reconnect (seen: CONNECTING right after).
        await wait_until(lambda: service.pen.state is State.ESTOP, what="the controller's ESTOP")
        await driver.close()
        await viewer.close()
        return sent, answer

    (sent, cut), answer = run(main())
    assert sent > 16, sent  # the flood ran (and was cut for it, or stopped by the test)
    assert cut in (None, 1008), cut
    assert answer["state"] == "estop" and answer["confirmed"] is True
    assert service.pen.state is State.ESTOP
    assert sim.firmware.state is FirmwareState.ESTOP
