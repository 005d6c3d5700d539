"""JSON-RPC 2.0 at the service's edge: a notification is never answered (also when refused), and
an E-stop runs whatever shape its message has (positional params, any JSON number as id, a
batch, extra members) once the connection is authenticated; a message over the cap is refused
unread, E-stop or not (review 10, R04: the E-stop must fit the cap, and always does)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from smpdevice.service import rpc
from smpdevice.service.auth import Role
from smpdevice.service.limits import MAX_MESSAGE_BYTES
from tests.smpdevice.service.conftest import connect, drive_needle, run, wait_until

# ------------------------------------------------------------------ the parser alone


@pytest.mark.parametrize("raw, ident, has_id", [
    ('{"jsonrpc":"2.0","id":7,"method":"pen.estop","params":[]}', 7, True),
    ('{"jsonrpc":"2.0","id":7.5,"method":"pen.estop"}', 7.5, True),
    ('{"jsonrpc":"2.0","id":9007199254740992,"method":"pen.estop"}', 2**53, True),
    ('{"jsonrpc":"2.0","id":' + "9" * 40 + ',"method":"pen.estop"}', None, True),
    ('{"jsonrpc":"2.0","id":NaN,"method":"pen.estop"}', None, True),
    ('{"jsonrpc":"2.0","id":1,"method":"pen.estop","params":{"x":1e999}}', 1, True),
    ('{"jsonrpc":"1.0","id":"a","method":"pen.estop","extra":true}', "a", True),
    ('{"id":' + json.dumps("i" * 200) + ',"method":"pen.estop","params":[1,2]}', None,
     True),  # over the 64 characters every method's id may have: answered with "id": null
    ('{"jsonrpc":"2.0","method":"pen.estop","params":"x"}', None, False),
    ('{"jsonrpc":"2.0","id":{"a":1},"method":"pen.estop"}', None, True),
])
def test_any_message_naming_pen_estop_parses_as_the_estop(raw, ident, has_id):
    request = rpc.parse(raw)
    assert (request.method, request.params, request.id, request.has_id) == \
        ("pen.estop", {}, ident, has_id)


def test_an_estop_over_the_cap_is_refused_unread_like_any_message():
    """R04 (review 10): reading an over-cap message for an E-stop cost ~1 s of the event loop
    per 4 MiB message (every other client's E-stop waited). An E-stop is ~60 bytes: it fits."""
    raw = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "pen.estop",
                      "params": {"pad": "x" * MAX_MESSAGE_BYTES}})
    for message in (raw, raw.encode(), "[" + raw + "]"):
        with pytest.raises(rpc.RpcError) as info:
            rpc.parse(message)
        assert "over the cap" in info.value.message and not info.value.estop
        assert info.value.ident is None  # refused unread


def test_a_batch_holding_an_estop_is_refused_and_flagged_for_the_connection():
    with pytest.raises(rpc.RpcError) as info:
        rpc.parse('[{"jsonrpc":"2.0","id":1,"method":"rpc.ping"},'
                  '{"jsonrpc":"2.0","id":2,"method":"pen.estop"}]')
    # whether it ran is the connection's to say: it runs it only once authenticated (R02)
    assert info.value.estop and "was run" not in info.value.message
    with pytest.raises(rpc.RpcError) as info:
        rpc.parse('[{"jsonrpc":"2.0","id":1,"method":"rpc.ping"}]')
    assert not info.value.estop


@pytest.mark.parametrize("ident", [7.5, 2**53, -(2**62), "abc"])
def test_any_json_rpc_id_is_echoed(ident):
    request = rpc.parse(json.dumps({"jsonrpc": "2.0", "id": ident, "method": "rpc.ping",
                                    "params": []}))
    assert (request.id, request.params) == (ident, {})


# ------------------------------------------------------------------ through the service


async def _hello(ws: Any, role_token: str) -> None:
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.hello",
                              "params": {"token": role_token}}))
    while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("id") != 1:
        pass


async def _answers_until_ping(ws: Any) -> list[dict[str, Any]]:
    """Every answer (not the service's notifications) up to that of a ping with id "end"."""
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": "end", "method": "rpc.ping"}))
    answers = []
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if "method" in m:
            continue
        answers.append(m)
        if m.get("id") == "end":
            return answers


@pytest.mark.parametrize("notification", [
    {"jsonrpc": "2.0", "method": "no.such.method"},
    {"jsonrpc": "2.0", "method": "telemetry.subscribe", "params": {"rate_hz": "x"}},
    {"jsonrpc": "2.0", "method": "rpc.ping", "params": [1]},
    {"jsonrpc": "2.0", "method": "pen.arm"},                      # not the driver
    {"jsonrpc": "2.0", "method": "pen.clear_faults", "params": {"reason": "r"}},  # role
], ids=["unknown", "schema", "positional", "not-driver", "role"])
def test_a_refused_notification_is_never_answered(service, notification):
    async def go() -> None:
        async with websockets.connect(service.url) as ws:
            await _hello(ws, service.token(Role.OPERATOR))
            await ws.send(json.dumps(notification))
            assert [a["id"] for a in await _answers_until_ping(ws)] == ["end"]

    run(go())


def test_an_unauthenticated_notification_is_not_answered_but_a_bad_request_is(service):
    async def go() -> None:
        async with websockets.connect(service.url) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "method": "pen.state"}))
            await ws.send(json.dumps({"jsonrpc": "2.0", "method": "pen.estop"}))
            await ws.send("{not json")  # no id can be read: answered with id null
            answers = await _answers_until_ping(ws)
            assert [(a["id"], a["error"]["code"]) for a in answers] == \
                [(None, rpc.PARSE_ERROR), ("end", rpc.NOT_AUTHENTICATED)]

    run(go())


@pytest.mark.parametrize("request_", [
    {"jsonrpc": "2.0", "id": 7, "method": "pen.estop", "params": []},
    {"jsonrpc": "2.0", "id": 7.5, "method": "pen.estop"},
    {"jsonrpc": "2.0", "id": 2**53, "method": "pen.estop"},
    [{"jsonrpc": "2.0", "id": 7, "method": "pen.estop"}],
    {"jsonrpc": "2.0", "method": "pen.estop", "params": [1]},     # a notification
], ids=["positional", "fractional-id", "id-2**53", "batch", "notification"])
def test_an_estop_of_any_shape_stops_the_needle(service, sim, request_):
    async def go() -> None:
        op = await connect(service, Role.OPERATOR)
        try:
            await drive_needle(op, lease_ms=5000)
            await wait_until(lambda: sim.firmware.state.name == "RUNNING", what="needle on")
            async with websockets.connect(service.url) as ws:
                await _hello(ws, service.token(Role.VIEWER))
                await ws.send(json.dumps(request_))
                answers = await _answers_until_ping(ws)
            await wait_until(lambda: sim.firmware.state.name == "ESTOP", 10,
                             what=f"the E-stop (the service answered {answers})")
            ident = request_.get("id") if isinstance(request_, dict) else None
            if isinstance(request_, dict) and "id" in request_:  # answered, its id echoed
                assert answers[0]["id"] == ident and "result" in answers[0], answers
            elif isinstance(request_, list):
                assert "pen.estop was run" in answers[0]["error"]["message"]
            else:
                assert [a["id"] for a in answers] == ["end"]
        finally:
            await op.close()

    run(go())
