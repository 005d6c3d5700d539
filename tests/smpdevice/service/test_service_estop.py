"""E-stop through the service runs at once on the connection's own event loop: latched before
the service reads the connection's next message, with no thread started for it."""

from __future__ import annotations

import json
import threading

from websockets.asyncio.client import connect as ws_connect

from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from smpdevice.service.auth import Role

from .conftest import connect, drive_needle, run, wait_until


def test_estop_latches_on_the_loop_before_the_next_message_is_read(service, sim):
    latched_in: list[str] = []

    def on_state(old: State, new: State, reason: str) -> None:
        if new is State.ESTOP:
            latched_in.append(threading.current_thread().name)

    service.pen.add_state_listener(on_state)

    async def main() -> tuple[dict, dict]:
        op = await connect(service, Role.OPERATOR)
        await drive_needle(op)
        await wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, what="running")
        async with ws_connect(service.url, compression=None) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.hello",
                                      "params": {"token": service.token(Role.VIEWER)}}))
            json.loads(await ws.recv())
            # Both at once: the second is read only after the first has latched the E-stop.
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "pen.estop"}))
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "pen.state"}))
            answers = {}
            while len(answers) < 2:
                message = json.loads(await ws.recv())
                if "id" in message:
                    answers[message["id"]] = message["result"]
        await op.close()
        return answers[2], answers[3]

    estop, state = run(main())
    assert estop == {"ok": True, "state": "estop", "confirmed": True}
    assert state["state"] == "estop"  # the next message already saw it latched
    assert latched_in == ["smp-service"]  # the service's loop thread: no thread was started
    assert sim.firmware.state is FirmwareState.ESTOP
