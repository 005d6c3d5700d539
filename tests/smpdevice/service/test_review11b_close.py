"""Review 11 (revb) B6: the service's close stops the needle and disarms first, whatever its
clients do; a hung driver (its loop no longer runs: no heartbeat, no answer to the close)
does not keep the needle running for its lease or the closing handshake."""

from __future__ import annotations

import asyncio
import threading

from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import PEN_LEASE_MS, WAIT_S, connect, drive_needle

CLIENT_LEASE_MS = 10_000  # the longest a client may ask: the old close waited for it


def test_the_close_stops_a_hung_drivers_needle_before_closing_its_connection(sim, data_dir):
    # The clients' leases are held (their clock stands still): only the close can stop the
    # needle (the old close did so only once every connection had closed).
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim),
                             lease_clock=lambda: 0.0)
    handle = ServiceHandle(options)
    service = handle.server.service
    client_loop = asyncio.new_event_loop()
    connected_at_rest: list[bool] = []

    def on_state(old: State, new: State, reason: str) -> None:
        if old is State.RUNNING and not connected_at_rest:
            connected_at_rest.append(client.client_id in service.clients)

    try:
        async def start():
            client = await connect(handle, Role.OPERATOR)
            await drive_needle(client, lease_ms=CLIENT_LEASE_MS)
            return client
        client = client_loop.run_until_complete(start())
        assert sim.firmware.state.name == "RUNNING"
        handle.pen.add_state_listener(on_state)
        # The client now hangs: its loop no longer runs (no heartbeat, no closing handshake).
        stopping = threading.Thread(target=handle.stop, name="test-stop")
        stopping.start()
        handle.pen.wait_for_state(*(s for s in State if s not in (State.RUNNING, State.ARMED)),
                                  timeout_s=WAIT_S)
        stopping.join(WAIT_S)
        assert not stopping.is_alive()
        assert connected_at_rest == [True], "the needle ran until the hung client was gone"
        assert sim.firmware.state.name == "IDLE", sim.firmware.state
    finally:
        handle.stop()
        client_loop.run_until_complete(asyncio.wait_for(client.close(), WAIT_S))
        client_loop.close()
