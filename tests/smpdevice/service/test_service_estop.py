"""E-stop through the service runs at once on the connection's own event loop: latched before
the service reads the connection's next message, with no thread started for it."""

from __future__ import annotations

import json
import threading

from websockets.asyncio.client import connect as ws_connect

from firmware_protocol.codes import FirmwareState
from smpdevice.service.auth import Role

from .conftest import connect, drive_needle, run, wait_until


def test_estop_latches_on_the_loop_before_the_next_message_is_read(service, sim, monkeypatch):
    started: list[str] = []
    start = threading.Thread.start

    def recording_start(self: threading.Thread) -> None:
        started.append(self.name)
        start(self)

    async def main() -> tuple[dict, dict]:
        op = await connect(service, Role.OPERATOR)
        await drive_needle(op)
        await wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, what="running")
        async with ws_connect(service.url, compression=None) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.hello",
                                      "params": {"token": service.token(Role.VIEWER)}}))
            json.loads(await ws.recv())
            monkeypatch.setattr(threading.Thread, "start", recording_start)
            # Both at once: the second is read only after the first has latched the E-stop.
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "pen.estop"}))
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "pen.state"}))
            answers = {}
            while len(answers) < 2:
                message = json.loads(await ws.recv())
                if "id" in message:
                    answers[message["id"]] = message["result"]
            monkeypatch.undo()
        await op.close()
        return answers[2], answers[3]

    estop, state = run(main())
    assert estop == {"ok": True, "state": "estop", "confirmed": True}
    assert state["state"] == "estop"  # the next message already saw it latched
    assert started == []  # handled on the service's loop: no thread started for it
    assert sim.firmware.state is FirmwareState.ESTOP


def test_an_unconfirmed_estop_answers_so_and_the_pen_stops_by_its_own_lease(service, sim):
    from firmware_protocol.codes import MsgType

    async def main() -> tuple[dict, dict, dict]:
        op = await connect(service, Role.OPERATOR)
        viewer = await connect(service, Role.VIEWER)
        await drive_needle(op)
        await wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, what="running")
        sim.link.drop_inbound(MsgType.ESTOP)  # every ESTOP frame is lost on the way
        answer = await viewer.estop()
        state = await viewer.call("pen.state")  # the connection still answers
        ping = await op.call("rpc.ping")  # and so does everyone else's
        await wait_until(lambda: sim.firmware.state is not FirmwareState.RUNNING,
                         what="the pen stopping by itself")
        sim.link.clear_inbound()
        await op.close()
        await viewer.close()
        return answer, state, ping

    answer, state, ping = run(main())
    assert answer == {"ok": True, "state": "estop", "confirmed": False}
    assert state["state"] == "estop" and ping == {"ok": True}
    assert sim.firmware.state is not FirmwareState.RUNNING  # no ESTOP arrived: its lease did it
