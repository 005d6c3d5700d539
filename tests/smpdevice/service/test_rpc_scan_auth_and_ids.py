"""The E-stop scan runs only for an authenticated connection (before rpc.hello an E-stop is
refused anyway: the scan's cost is not spent there), an unauthenticated E-stop is still refused
and says it did not run; an E-stop's id is echoed by the same rule as every method's (at most
64 characters, integers within +-(2**63 - 1)); a check that breaks never answers a
notification; a name breaking the one-line rule is refused for its real cause."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from smpdevice.service import connection, rpc
from smpdevice.service.auth import Role
from smpdevice.service.jsonschema_lite import SchemaViolation, validate
from smpdevice.service.schema import MAX_ID_CHARS, METHODS
from tests.smpdevice.service.conftest import run

E = '{"jsonrpc":"2.0","id":7,"method":"pen.estop"}'


async def _hello(ws: Any, token: str) -> None:
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.hello",
                              "params": {"token": token}}))
    while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("id") != 1:
        pass


async def _answers_until_ping(ws: Any) -> list[dict[str, Any]]:
    await ws.send('{"jsonrpc":"2.0","id":"end","method":"rpc.ping"}')
    answers = []
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if "method" in m:  # a notification of the service's
            continue
        answers.append(m)
        if m.get("id") == "end":
            return answers


def test_parse_without_the_scan_reads_strictly_and_still_tells_an_estop():
    broken = '{"jsonrpc":"2.0","id":7,"method":"pen.estop","params":{"x":NaN}}'
    assert rpc.parse(broken).method == "pen.estop"  # scanned: an E-stop whatever it holds
    with pytest.raises(rpc.RpcError) as info:
        rpc.parse(broken, scan=False)
    assert info.value.code == rpc.PARSE_ERROR and not info.value.estop
    request = rpc.parse(E, scan=False)  # one JSON reads is still told, to be refused
    assert (request.method, request.id, request.has_id) == ("pen.estop", 7, True)
    with pytest.raises(rpc.RpcError) as info:
        rpc.parse("[" + E + "]", scan=False)
    assert info.value.estop and info.value.code == rpc.INVALID_REQUEST


def test_an_unauthenticated_connection_is_not_scanned_and_its_estop_says_it_did_not_run(
        service, monkeypatch):
    scanned: list[int] = []
    real = rpc.find_estop

    def counting(raw: Any) -> Any:
        scanned.append(len(raw))
        return real(raw)

    monkeypatch.setattr(rpc, "find_estop", counting)

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with websockets.connect(service.url) as ws:
            await ws.send(E)
            await ws.send("[" + E + "]")
            before = await _answers_until_ping(ws)
            assert scanned == []  # nothing scanned before rpc.hello
            await _hello(ws, service.token(Role.VIEWER))
            await ws.send('{"jsonrpc":"2.0","id":8,"method":"pen.estop","params":{"x":NaN}}')
            return before, await _answers_until_ping(ws)

    before, after = run(go())
    assert before[0]["id"] == 7 and before[0]["error"]["code"] == rpc.NOT_AUTHENTICATED
    assert "rpc.hello" in before[0]["error"]["message"]
    assert before[1]["error"]["code"] == rpc.INVALID_REQUEST
    assert "NOT run" in before[1]["error"]["message"]
    assert scanned, "an authenticated connection's E-stop is scanned"
    assert after[0]["id"] == 8 and after[0]["result"]["state"] == "estop", after


@pytest.mark.parametrize("ident, echoed", [
    ("i" * MAX_ID_CHARS, "i" * MAX_ID_CHARS),
    ("i" * (MAX_ID_CHARS + 1), None),
    (2**63 - 1, 2**63 - 1),
    (2**63, None),
    (-(2**63), None),
])
def test_an_estop_echoes_its_id_by_the_rule_of_every_method(ident, echoed):
    for extra in ("", ',"params":{"x":NaN}'):  # read strictly, and by the lenient scan
        raw = '{"jsonrpc":"2.0","id":' + json.dumps(ident) + ',"method":"pen.estop"' + \
            extra + "}"
        strict_reads = not extra and (echoed is not None or isinstance(ident, str))
        for scan in (True, False) if strict_reads else (True,):  # strict: wide ints refused
            request = rpc.parse(raw, scan=scan)
            assert (request.method, request.id, request.has_id) == ("pen.estop", echoed, True)


def test_a_check_that_breaks_never_answers_a_notification(service, monkeypatch):
    real = connection.parse

    def breaking(raw: Any, **kw: Any) -> Any:
        if "boom" in raw:
            raise RuntimeError("a check that broke")
        return real(raw, **kw)

    monkeypatch.setattr(connection, "parse", breaking)

    async def go() -> list[dict[str, Any]]:
        async with websockets.connect(service.url) as ws:
            await _hello(ws, service.token(Role.OPERATOR))
            await ws.send('{"jsonrpc":"2.0","method":"boom"}')  # a notification
            await ws.send('{"jsonrpc":"2.0","id":"b","method":"boom"}')
            return await _answers_until_ping(ws)

    answers = run(go())
    assert [(a["id"], a.get("error", {}).get("code")) for a in answers] == \
        [("b", -32603), ("end", None)], answers  # the connection lives on


@pytest.mark.parametrize("reason, why", [
    ("\u200b\u200b\u200b", "must not be blank"),          # zero-width: blank, not a control
    ("   ", "must not be blank"),
    ("ok \u2028 then", "U+2028"),
    ("ok \ud800 then", "U+D800"),
    ("ok \u061c then", "U+061C"),
    ("ok \x1b then", "U+001B"),
])
def test_a_reason_breaking_the_one_line_rule_is_refused_for_its_real_cause(reason, why):
    with pytest.raises(SchemaViolation) as info:
        validate(METHODS["pen.clear_faults"].params, {"reason": reason})
    message = str(info.value)
    assert why in message and "override" not in message, message
    if why.startswith("U+"):
        assert "line or paragraph separator or lone surrogate" in message
