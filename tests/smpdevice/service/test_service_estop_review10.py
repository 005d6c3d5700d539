"""Review 10 through a real service and simulated pen: an E-stop within the cap is run whatever
else its message holds (R01); over the cap nothing is read (R04); a batch's E-stop refused for
want of rpc.hello is not reported as run (R02); pen.stop stops a calibration's spin (R05); a
lone surrogate in a name or reason is -32602 (R03)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from smpdevice.service import rpc
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.service.conftest import connect, drive_needle, run, wait_until

E = '{"jsonrpc":"2.0","id":7,"method":"pen.estop"}'


async def _hello(ws: Any, token: str) -> None:
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.hello",
                              "params": {"token": token}}))
    while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("id") != 1:
        pass


async def _answer(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if "method" not in message:  # not a notification of the service's
            return message


async def _send_beside_a_running_needle(service, sim, raw: str, hello: bool) -> tuple[dict, str]:
    op = await connect(service, Role.OPERATOR)
    try:
        await drive_needle(op, lease_ms=5000)
        await wait_until(lambda: sim.firmware.state.name == "RUNNING", what="needle on")
        async with websockets.connect(service.url, max_size=None) as ws:
            if hello:
                await _hello(ws, service.token(Role.VIEWER))
            await ws.send(raw)
            answer = await _answer(ws)
            if hello:  # the E-stop, if run, ran before this answer; a ping orders the rest
                await ws.send('{"jsonrpc":"2.0","id":"end","method":"rpc.ping"}')
                while (await _answer(ws)).get("id") != "end":
                    pass
        return answer, sim.firmware.state.name
    finally:
        await op.close()


@pytest.mark.parametrize("raw", [
    "[" + E + ',{"jsonrpc":"2.0","id":8,"method":"rpc.ping","params":{"x":NaN}}]',
    '{"jsonrpc":"2.0","id":7,"method":"pen.estop","params":{"a":'
    + "[" * 5000 + "]" * 5000 + "}}",
    "\ufeff" + E,
], ids=["batch-with-nan", "nested-5000-deep", "byte-order-mark"])
def test_an_estop_within_the_cap_stops_the_needle_whatever_else_it_holds(service, sim, raw):
    answer, _ = run(_send_beside_a_running_needle(service, sim, raw, hello=True))

    async def stopped() -> None:
        await wait_until(lambda: sim.firmware.state.name == "ESTOP", 10,
                         what=f"the E-stop (the service answered {answer})")

    run(stopped())
    if raw.startswith("["):
        assert "its pen.estop was run all the same" in answer["error"]["message"], answer
    else:
        assert answer["result"]["state"] == "estop", answer


def test_an_estop_over_the_cap_is_refused_unread_and_says_so(service, sim):
    raw = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "pen.estop",
                      "params": {"pad": "x" * 300_000}})
    answer, state = run(_send_beside_a_running_needle(service, sim, raw, hello=True))
    assert answer["id"] is None and answer["error"]["code"] == rpc.INVALID_REQUEST
    assert "over the cap" in answer["error"]["message"] and state == "RUNNING"


def test_an_unauthenticated_batch_estop_is_said_not_to_have_run(service, sim):
    answer, state = run(_send_beside_a_running_needle(service, sim, "[" + E + "]",
                                                      hello=False))
    message = answer["error"]["message"]
    assert answer["error"]["code"] == rpc.INVALID_REQUEST and state == "RUNNING"
    assert "was run" not in message and "NOT run" in message and "rpc.hello" in message


def test_pen_stop_ends_a_calibration_spin_and_the_spin_says_so(service, sim):
    async def go() -> tuple[Any, Any, str]:
        tech = await connect(service, Role.TECHNICIAN)
        op = await connect(service, Role.OPERATOR)
        try:
            await tech.drive(lease_ms=2000)
            await tech.call("calibration.begin")
            spin = asyncio.ensure_future(tech.call("calibration.spin", speed_hz=60,
                                                   duration_s=10.0))
            await wait_until(lambda: sim.firmware.state.name == "RUNNING", what="spin runs")
            answer = await op.call("pen.stop")
            state = sim.firmware.state.name  # pen.stop answers once the spin has ended
            try:
                spun: Any = await asyncio.wait_for(spin, 30)
            except ServiceError as exc:
                spun = exc
            return answer, spun, state
        finally:
            await op.close()
            await tech.close()

    answer, spun, state = run(go())
    assert answer == {"ok": True} and state != "RUNNING", (answer, state)
    assert isinstance(spun, ServiceError) and "was stopped" in str(spun), spun


def test_a_lone_surrogate_reason_is_refused_naming_the_parameter(service):
    async def go() -> tuple[Any, str]:
        tech = await connect(service, Role.TECHNICIAN)
        try:
            await tech.call("pen.estop")
            try:
                answer: Any = await tech.call("pen.clear_faults", reason="checked \ud800")
            except ServiceError as exc:
                answer = exc
            return answer, (await tech.call("pen.state"))["state"]
        finally:
            await tech.close()

    answer, state = run(go())
    assert isinstance(answer, ServiceError) and answer.code == rpc.INVALID_PARAMS, answer
    assert "reason" in str(answer) and "U+D800" in str(answer) and state == "estop"
